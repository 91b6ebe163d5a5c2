/* Tiny learned-codec models for tests and fuzz targets. nne_tiny_lcodec_model: nne_model_rd with N
 * = 8, M = 12, initialised with a fixed seed and trained for 20 rate-distortion steps (NNE_LOSS_RD,
 * Adam 1e-2, lambda 0.01) on one synthetic 64x64 image, then stored into the training
 * graph, as `nnedge train` leaves a model. Deterministic (the trainer is bit-exact for any
 * thread count), about a second per kind. Header-only so that fuzz/ can use it. */
#ifndef NNE_TESTS_TINY_LCODEC_H
#define NNE_TESTS_TINY_LCODEC_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/image.h"
#include "nnedge/lcodec.h"
#include "nnedge/metrics.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/train.h"

#define NNE_TINY_N     8
#define NNE_TINY_M     12
#define NNE_TINY_STEPS 20

/* Smooth RGB pattern with edges, [h][w][3] floats in [0, 1]. */
static inline void nne_tiny_pattern(float *x, int32_t h, int32_t w, int32_t phase) {
    for (int32_t i = 0; i < h; i++)
        for (int32_t j = 0; j < w; j++)
            for (int32_t c = 0; c < 3; c++) {
                float v = 0.5f + 0.35f * sinf(0.21f * (float)(i + phase) + (float)c) *
                                     cosf(0.13f * (float)j - 0.5f * (float)c);
                if ((i / 11 + j / 7 + c) % 3 == 0) v = 0.8f * v + 0.15f;
                x[((size_t)i * w + j) * 3 + c] = v;
            }
}

/* The pattern as an RGB8 image (nne_image_free). */
static inline nne_status nne_tiny_image(nne_image *img, int32_t w, int32_t h, int32_t phase) {
    nne_status s = nne_image_alloc(img, w, h, 3);
    if (s) return s;
    float *x = (float *)malloc((size_t)w * h * 3 * sizeof *x);
    if (!x) {
        nne_image_free(img);
        return NNE_ERR_NOMEM;
    }
    nne_tiny_pattern(x, h, w, phase);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img->data[i] = (uint8_t)(x[i] * 255.0f + 0.5f);
    free(x);
    return NNE_OK;
}

/* PSNR (dB, peak 255) of two RGB8 images of the same size. */
static inline double nne_tiny_psnr(const nne_image *a, const nne_image *b) {
    double se = 0;
    const size_t n = (size_t)a->width * a->height * 3;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a->data[i] - (double)b->data[i];
        se += d * d;
    }
    return nne_psnr_from_mse(se / (double)n, 255.0);
}

/* Rate-distortion training of the tiny models: Adam at a constant `lr`, lambda 0.01, noise
 * seeded with `seed`, one thread. */
static inline nne_trainer_config nne_tiny_rd_config(float lr, uint64_t seed) {
    nne_trainer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.optim = nne_optim_config_adam();
    cfg.lr.kind = NNE_LR_CONSTANT;
    cfg.lr.lr = lr;
    cfg.loss = NNE_LOSS_RD;
    cfg.rd_lambda = 0.01f;
    cfg.noise_seed = seed;
    cfg.threads = 1;
    return cfg;
}

#define NNE_TINY_CAL 64 /* calibration crops: 64x64 (the hyperpriors' alignment) */

/* Calibration image i: the pattern at phase 5 + 7i (not the test images' phases). */
static inline nne_status nne_tiny_calib_sample(void *ctx, int32_t i, float *x) {
    (void)ctx;
    nne_tiny_pattern(x, NNE_TINY_CAL, NNE_TINY_CAL, 5 + 7 * i);
    return NNE_OK;
}

/* nne_lcodec_quantize options for the tiny models: `scheme`, min-max on 3 calibration crops. */
static inline nne_lcodec_quantize_opts nne_tiny_quantize_opts(nne_qscheme scheme) {
    nne_lcodec_quantize_opts o;
    memset(&o, 0, sizeof o);
    o.q.scheme = scheme;
    o.q.observer.kind = NNE_OBSERVER_MINMAX;
    o.q.n_samples = 3;
    o.q.sample = nne_tiny_calib_sample;
    o.height = o.width = NNE_TINY_CAL;
    return o;
}

/* The trained training graph (NNE_RD_TRAIN at 64x64) in *out; free with nne_graph_free. */
static inline nne_status nne_tiny_lcodec_model(nne_rdmodel_kind kind, uint64_t seed,
                                               nne_graph **out) {
    *out = NULL;
    const nne_rdmodel_config mc = {kind, NNE_TINY_N, NNE_TINY_M, NNE_QUANTIZE_NOISE, false};
    nne_graph *g = NULL;
    nne_trainer *tr = NULL;
    float x[64 * 64 * 3];
    nne_tiny_pattern(x, 64, 64, 0);
    nne_status s = nne_model_rd(&mc, 1, 64, 64, NNE_RD_TRAIN, &g);
    if (!s) s = nne_train_init_params(g, seed);
    const nne_trainer_config cfg = nne_tiny_rd_config(1e-2f, seed);
    if (!s) s = nne_trainer_create(g, &cfg, &tr);
    for (int k = 0; k < NNE_TINY_STEPS && !s; k++) s = nne_trainer_step(tr, x, x, NULL);
    if (!s) nne_trainer_store(tr);
    nne_trainer_free(tr);
    if (s) {
        nne_graph_free(g);
        return s;
    }
    *out = g;
    return NNE_OK;
}

/* An untrained model (N = 8, M = 12, weights from nne_train_init_params(seed)) whose latent
 * is scaled by `scale`: g_a's last layer (weights and bias) times scale, g_s's first layer's
 * weights divided by it. A larger scale gives a finer quantization of the same analysis, so
 * scales 16, 64, 256, 1024 (the random y is ~0.01) make a ladder whose rate grows with the
 * index, as a trained ladder's does. */
static inline nne_status nne_tiny_lcodec_scaled(nne_rdmodel_kind kind, uint64_t seed, float scale,
                                                nne_graph **out) {
    *out = NULL;
    const nne_rdmodel_config mc = {kind, NNE_TINY_N, NNE_TINY_M, NNE_QUANTIZE_NOISE, false};
    nne_graph *g = NULL;
    nne_status s = nne_model_rd(&mc, 1, 64, 64, NNE_RD_TRAIN, &g);
    if (!s) s = nne_train_init_params(g, seed);
    const char *names[3] = {"g_a.6.weight", "g_a.6.bias", "g_s.0.weight"};
    for (int k = 0; k < 3 && !s; k++) {
        const int32_t t = nne_graph_find_tensor(g, names[k]);
        if (t < 0) {
            s = NNE_ERR_NOT_FOUND;
            break;
        }
        float *d = (float *)g->tensors[t].data;
        for (int64_t i = 0; i < nne_shape_numel(&g->tensors[t].shape); i++)
            d[i] = k < 2 ? d[i] * scale : d[i] / scale;
    }
    if (s) {
        nne_graph_free(g);
        return s;
    }
    *out = g;
    return NNE_OK;
}

/* A ladder DIR/<kind>-q<q>.nne, q = 1..4, of nne_tiny_lcodec_scaled(kind, seed, 2^(2q +
 * shift)) (latent scales 16, 64, 256, 1024 for shift 2), for nnedge rd / compress --bpp.
 * DIR must exist. */
static inline nne_status nne_tiny_lcodec_ladder(const char *dir, nne_rdmodel_kind kind,
                                                uint64_t seed, int shift) {
    nne_status s = NNE_OK;
    for (int q = 1; q <= 4 && !s; q++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-q%d.nne", dir, nne_rdmodel_kind_name(kind), q);
        nne_graph *g = NULL;
        s = nne_tiny_lcodec_scaled(kind, seed, (float)(1 << (2 * q + shift)), &g);
        if (!s) s = nne_model_write_file(g, path);
        nne_graph_free(g);
    }
    return s;
}

#endif
