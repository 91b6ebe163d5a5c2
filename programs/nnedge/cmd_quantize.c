/* nnedge quantize MODEL --calib DIR -o OUT.nne: post-training int8 quantization with
 * calibration on a folder of images (docs/quantization.md, "Calibration" and "The
 * quantization pass"). cae-seed models are rebuilt at --crop x --crop for calibration (the
 * quantized model is written at that size; nne_quantize_like moves it to any other size);
 * other models calibrate on crops of their input size. With --eval DIR, the f32 and int8
 * models are compared on every image of DIR (PSNR of the reconstruction, cae-seed only).
 * A learned codec (bmshj2018-*, mbt2018-mean) becomes an int8 codec: its g_a and g_s are
 * quantized (nne_lcodec_quantize) and attached to the f32 model (docs/codec.md, "Int8
 * codecs"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "nnedge/backend.h"
#include "nnedge/codec.h"
#include "nnedge/dataset.h"
#include "nnedge/lcodec.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"
#include "nnedge/qat.h"

static const char *const k_cmd = "quantize";

static void help(void) {
    printf("usage: nnedge quantize MODEL --calib DIR -o OUT.nne [options]\n"
           "       nnedge quantize MODEL --fake --scheme fp16|int8|int4|int2 -o OUT.nne\n\n"
           "Post-training int8 quantization: calibrate MODEL (a model file or built-in name)\n"
           "on crops of the images in DIR and write the quantized model (s8 activations and\n"
           "weights, s32 biases; runs on the cpu-s8 backend). A learned codec (bmshj2018-*,\n"
           "mbt2018-mean) becomes an int8 codec: its analysis and synthesis transforms are\n"
           "quantized (the synthesis on the f32 codec's quantized latents of the crops) and\n"
           "stored with the f32 model; nnedge compress / decompress / rd run it.\n"
           "With --fake: round the weights of the f32 MODEL to a lower precision and write an\n"
           "f32 model (fake quantization, for accuracy studies: fp16 every constant; int8,\n"
           "int4, int2 the conv/dense weights per output channel); no calibration.\n\n"
           "options:\n"
           "  --calib DIR            calibration images (never Kodak: refused); optional for\n"
           "                         a model from 'nnedge train --qat', whose learned\n"
           "                         activation ranges (qat.* metadata) are used as they are\n"
           "  --scheme S             per-tensor | per-channel (default) | pow2 (DPU); a QAT\n"
           "                         model's own scheme by default, and only that one;\n"
           "                         with --fake: fp16 | int8 | int4 | int2\n"
           "  --fake                 weight fake quantization (see above); prints and records\n"
           "                         the weights' size at their storage precision\n"
           "  --observer O           minmax (default) | percentile | mse | kl\n"
           "  --percentile P         for --observer percentile (default 99.99)\n"
           "  --weight-bits B        8 (default): weight codes in [-127, 127]; 7: [-64, 64]\n"
           "                         (same rules, qmax 64), which the AVX2 int8 kernels run\n"
           "                         faster, still exactly (docs/quantization.md)\n"
           "  --bias-correction      correct conv biases by the mean output shift of the\n"
           "                         quantized weights over the calibration data\n"
           "  --equalize             cross-layer equalization first: balance the weight\n"
           "                         ranges of conv -> PReLU/ReLU -> conv pairs (same f32\n"
           "                         function; docs/quantization.md)\n"
           "  --equalize-act ALPHA   equalize the calibrated per-channel activation ranges of\n"
           "                         those pairs instead: channel scales (1/r)^ALPHA, ALPHA in\n"
           "                         (0, 1] (1: every channel as wide as the widest)\n"
           "  --equalize-linear      with --equalize / --equalize-act: also conv -> conv pairs\n"
           "                         with nothing between (cae-seed's latent: its units change,\n"
           "                         so its latent files are this model's only)\n"
           "  --no-fuse-prelu        keep each conv -> PReLU as two int8 steps (requantize, then\n"
           "                         the PReLU); by default they are one layer, one rounding\n"
           "                         (per-tensor / per-channel; pow2 never fuses)\n"
           "  --output-range LO,HI   the range the model's output is clipped to when read;\n"
           "                         0,1 for an image (cae-seed, a codec's synthesis): the\n"
           "                         int8 output is then exactly the 8-bit pixel grid\n"
           "                         (scale 1/255, zero point -128; docs/quantization.md)\n"
           "  --max-images N         calibrate on at most N images (default 32)\n"
           "  --crop N               calibration crop side: cae-seed 128 by default; a learned\n"
           "                         codec 256, a multiple of its alignment (16 or 64)\n"
           "  --seed N               crop positions (default 1)\n"
           "  --eval DIR             compare f32 and int8 PSNR on the images of DIR (cae-seed)\n"
           "  --eval-max N           evaluate at most N images of DIR\n"
           "  -o FILE                output model file (.nne), written atomically\n"
           "  --json                 result as JSON on stdout\n"
           "  -q                     no progress bar\n");
}

/* --fake: round the weights of an f32 model to `scheme` (fp16, int8, int4, int2) and write
 * it; no calibration. */
static int fake_quantize(const char *in, const char *scheme, const cli_common *co) {
    nne_wformat f;
    if (!scheme) return cli_usage_error(k_cmd, "--fake needs --scheme fp16|int8|int4|int2");
    if (nne_wformat_from_name(scheme, &f))
        return cli_usage_error(k_cmd, "--fake --scheme '%s': expected fp16, int8, int4 or int2",
                               scheme);
    nne_graph *g = NULL;
    int64_t bytes = 0;
    nne_status st = cli_load_model(in, &g);
    if (!st) st = nne_graph_infer(g);
    if (!st && ((g->n_inputs > 0 && g->tensors[g->inputs[0]].dtype != NNE_F32) || g->n_attached))
        st = nne_error(NNE_ERR_UNSUPPORTED, "a quantized model%s; --fake takes an f32 model",
                       g->n_attached ? " (an int8 codec)" : "");
    if (!st) st = nne_fake_quantize_weights(g, f, &bytes);
    if (st) {
        cli_error(k_cmd, "%s: %s: %s", in, nne_status_str(st), nne_last_error());
        nne_graph_free(g);
        return NNE_EXIT_RUNTIME;
    }
    /* fp16: every constant is now an f16 value, stored as one (half the file; the reader
     * widens them back, exactly) */
    const nne_model_write_opts wo = {.f16_exact = f == NNE_WFORMAT_FP16};
    if ((st = nne_model_write_file_opts(g, &wo, co->output))) {
        cli_error(k_cmd, "%s: %s: %s", co->output, nne_status_str(st), nne_last_error());
        nne_graph_free(g);
        return NNE_EXIT_RUNTIME;
    }
    nne_graph_free(g);
    if (co->json)
        printf("{\"model\": \"%s\", \"output\": \"%s\", \"fake\": \"%s\", "
               "\"storage_bytes\": %lld}\n",
               in, co->output, nne_wformat_name(f), (long long)bytes);
    else if (!co->quiet)
        printf("%s: %s weights (fake-quantized, %s), %lld bytes at storage precision -> %s\n",
               in, nne_wformat_name(f),
               f == NNE_WFORMAT_FP16 ? "stored as f16, read back as f32" : "kept in f32",
               (long long)bytes, co->output);
    return NNE_EXIT_OK;
}

/* Calibration context: the shared crop sampler and progress bar (cli_calib, first member so
 * cli_calib_sample/cli_calib_progress take a qctx), plus the ranges QAT learned. */
typedef struct qctx {
    cli_calib cal;
    const nne_qat *qat; /* ranges learned by quantization-aware training, or NULL */
} qctx;

static bool qat_range(void *ctx, const char *tensor, float *lo, float *hi) {
    const qctx *c = ctx;
    return c->qat && nne_qat_get_range(c->qat, tensor, lo, hi);
}

/* Reconstruction of one image by a graph (f32 or quantized) on a backend, as f32 in [0,1]. */
static nne_status run_image(nne_graph *g, const nne_backend *be, const float *x, float *y) {
    nne_session *s = NULL;
    nne_status st = nne_session_create(g, be, &s);
    const size_t n = (size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape);
    if (!st) st = nne_session_set_input_f32(s, 0, x, n);
    if (!st) st = nne_session_run(s);
    if (!st) st = nne_session_get_output_f32(s, 0, y, n);
    nne_session_free(s);
    return st;
}

static double psnr_f32(const float *a, const float *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        /* 8-bit output as the codec writes it: floor(x * 255 + 0.5), clamped */
        const double q = fmin(255.0, fmax(0.0, floor((double)b[i] * 255.0 + 0.5)));
        const double d = q - (double)a[i] * 255.0;
        se += d * d;
    }
    return 10.0 * log10(255.0 * 255.0 / fmax(se / (double)n, 1e-12));
}

typedef struct eval_sum {
    int n;
    double psnr_f32, psnr_s8;
} eval_sum;

/* f32 vs int8 PSNR on each image of dir, measured as nnedge eval does: cae-seed rebuilt at
 * the image's coded size (padded to a multiple of 8), the border filled, the padding cropped
 * (nne_cae_input_padded, nne_cae_output_crop; docs/models.md, "The border"). */
static int evaluate(const char *dir, int max, nne_graph *f32, const nne_graph *q, bool quiet,
                    eval_sum *sum) {
    nne_dataset *ds = NULL;
    const nne_dataset_opts o = {false, false, 21, 21};
    nne_status st = nne_dataset_open(dir, &o, &ds);
    if (st) return cli_fail(k_cmd, st);
    const int n = nne_dataset_size(ds) < max ? nne_dataset_size(ds) : max;
    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < n && !st; i++) {
        nne_image img = {0};
        bool owned = false;
        nne_graph *gf = NULL, *gq = NULL;
        float *x = NULL, *yf = NULL, *yq = NULL;
        st = nne_dataset_image(ds, i, &img, &owned);
        const int32_t ph = nne_cae_coded_size(img.height), pw = nne_cae_coded_size(img.width);
        if (!st) st = nne_model_cae_seed_like(f32, ph, pw, NNE_CAE_FULL, &gf);
        if (!st) st = nne_model_copy_weights(gf, f32);
        if (!st) st = nne_quantize_like(gf, q, &gq);
        const size_t m = (size_t)img.width * img.height * 3, mp = (size_t)pw * ph * 3;
        if (!st) {
            x = nne_malloc(mp * sizeof *x);
            yf = nne_malloc(mp * sizeof *yf);
            yq = nne_malloc(mp * sizeof *yq);
            if (!x || !yf || !yq) st = NNE_ERR_NOMEM;
        }
        if (!st) nne_cae_input_padded(&img, ph, pw, x);
        if (!st) st = run_image(gf, nne_backend_cpu_ref(), x, yf);
        if (!st) st = run_image(gq, nne_backend_cpu_s8(), x, yq);
        if (!st) {
            nne_cae_output_crop(yf, ph, pw, img.height, img.width);
            nne_cae_output_crop(yq, ph, pw, img.height, img.width);
            for (size_t k = 0; k < m; k++) x[k] = img.data[k] / 255.0f; /* the reference */
            const double pf = psnr_f32(x, yf, m), pq = psnr_f32(x, yq, m);
            sum->psnr_f32 += pf;
            sum->psnr_s8 += pq;
            sum->n++;
            if (!quiet)
                fprintf(stderr, "[%d/%d] %s: f32 %.2f dB, int8 %.2f dB\n", i + 1, n,
                        nne_dataset_path(ds, i), pf, pq);
        }
        nne_free(x);
        nne_free(yf);
        nne_free(yq);
        nne_graph_free(gf);
        nne_graph_free(gq);
        if (owned) nne_image_free(&img);
    }
    nne_dataset_free(ds);
    if (st) return cli_fail(k_cmd, st);
    if (sum->n) {
        sum->psnr_f32 /= sum->n;
        sum->psnr_s8 /= sum->n;
    }
    return 0;
}

/* A learned codec: g_a and g_s quantized on crop x crop crops of the calibration folder
 * and attached to the model, which is written whole to co->output. */
static int quantize_codec(nne_graph *model, const char *in, const char *calib,
                          nne_quantize_opts *qo, int64_t max_images, int64_t crop, int64_t seed,
                          const cli_common *co) {
    nne_rdmodel_kind kind;
    nne_rdmodel_kind_from_name(nne_graph_get_meta(model, "model"), &kind);
    const int32_t align = nne_rdmodel_alignment(kind);
    if (crop % align)
        return cli_usage_error(k_cmd, "--crop %lld: %s needs a multiple of %d", (long long)crop,
                               nne_rdmodel_kind_name(kind), (int)align);
    nne_dataset *ds = NULL;
    const nne_dataset_opts dopts = {
        .recursive = true, .cache = false, .min_width = (int32_t)crop, .min_height = (int32_t)crop};
    nne_status st = nne_dataset_open(calib, &dopts, &ds);
    if (st) return cli_fail(k_cmd, st);
    cli_calib cal = {.ds = ds,
                     .crop = {.batch = 1,
                              .height = (int32_t)crop,
                              .width = (int32_t)crop,
                              .seed = (uint64_t)seed},
                     .cmd = k_cmd,
                     .quiet = co->quiet || co->json,
                     .t0 = nne_time_ns()};
    nne_lcodec_quantize_opts o = {.q = *qo, .height = (int32_t)crop, .width = (int32_t)crop};
    o.q.n_samples = nne_dataset_size(ds) < max_images ? nne_dataset_size(ds) : (int32_t)max_images;
    o.q.sample = cli_calib_sample;
    o.q.progress = cli_calib_progress;
    o.q.ctx = &cal;
    st = nne_lcodec_quantize(model, &o);
    for (int32_t i = 0; !st && i < model->n_attached; i++)
        st = nne_graph_set_meta(model->attached[i], "quant.calib", calib);
    nne_dataset_free(ds);
    if (st) {
        cli_error(k_cmd, "%s: %s: %s", in, nne_status_str(st), nne_last_error());
        return NNE_EXIT_RUNTIME;
    }
    if ((st = nne_model_write_file(model, co->output))) {
        cli_error(k_cmd, "%s: %s: %s", co->output, nne_status_str(st), nne_last_error());
        return NNE_EXIT_RUNTIME;
    }
    if (co->json)
        printf("{\"model\": \"%s\", \"output\": \"%s\", \"codec\": \"%s\", \"scheme\": \"%s\", "
               "\"observer\": \"%s\", \"bias_correction\": %s, \"samples\": %d, \"crop\": %lld%s}\n",
               in, co->output, nne_rdmodel_kind_name(kind), nne_qscheme_name(o.q.scheme),
               nne_observer_name(o.q.observer.kind), o.q.bias_correction ? "true" : "false",
               (int)o.q.n_samples, (long long)crop,
               o.q.output_lo < o.q.output_hi ? ", \"output_range\": true" : "");
    else if (!co->quiet)
        printf("%s: int8 %s codec (g_a, g_s %s, %s observer%s; hyperprior and entropy model "
               "f32), %d calibration crops of %lldx%lld -> %s\n",
               in, nne_rdmodel_kind_name(kind), nne_qscheme_name(o.q.scheme),
               nne_observer_name(o.q.observer.kind), o.q.bias_correction ? ", bias correction" : "",
               (int)o.q.n_samples, (long long)crop, (long long)crop, co->output);
    return NNE_EXIT_OK;
}

int nne_cmd_quantize(int argc, char **argv) {
    cli_common co;
    const char *calib = NULL, *scheme_s = NULL, *obs_s = "minmax", *pct_s = NULL, *max_s = NULL,
               *crop_s = NULL, *seed_s = NULL, *eval = NULL, *eval_max_s = NULL, *wbits_s = NULL,
               *eq_act_s = NULL, *orange_s = NULL;
    bool bias_corr = false, fake = false, equalize = false, no_fuse = false, eq_linear = false;
    const cli_option opts[] = {
        {"fake", 0, false, NULL, &fake},
        {"calib", 0, true, &calib, NULL},
        {"scheme", 0, true, &scheme_s, NULL},
        {"observer", 0, true, &obs_s, NULL},
        {"percentile", 0, true, &pct_s, NULL},
        {"bias-correction", 0, false, NULL, &bias_corr},
        {"equalize", 0, false, NULL, &equalize},
        {"equalize-act", 0, true, &eq_act_s, NULL},
        {"equalize-linear", 0, false, NULL, &eq_linear},
        {"weight-bits", 0, true, &wbits_s, NULL},
        {"no-fuse-prelu", 0, false, NULL, &no_fuse},
        {"output-range", 0, true, &orange_s, NULL},
        {"max-images", 0, true, &max_s, NULL},
        {"crop", 0, true, &crop_s, NULL},
        {"seed", 0, true, &seed_s, NULL},
        {"eval", 0, true, &eval, NULL},
        {"eval-max", 0, true, &eval_max_s, NULL},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[2];
    int n_pos = 0;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 2, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one MODEL");
    if (!co.output) return cli_usage_error(k_cmd, "missing -o OUT.nne");
    if (cli_same_file(co.output, pos[0])) {
        cli_error(k_cmd, "%s: refusing to overwrite the input model", co.output);
        return NNE_EXIT_USAGE;
    }
    if (fake) {
        if (calib || bias_corr || equalize || eq_act_s || eq_linear || eval || wbits_s || no_fuse ||
            orange_s)
            return cli_usage_error(
                k_cmd, "--fake takes no --calib, --bias-correction, --equalize[-act, -linear], "
                       "--weight-bits, "
                       "--no-fuse-prelu, --output-range or --eval (evaluate the f32 output with "
                       "'nnedge eval')");
        return fake_quantize(pos[0], scheme_s, &co);
    }
    nne_quantize_opts qo = {0};
    nne_wformat wf;
    if (scheme_s && !nne_wformat_from_name(scheme_s, &wf))
        return cli_usage_error(k_cmd,
                               "--scheme '%s' is a weight format for --fake (simulated in f32%s); "
                               "an int8 model takes per-tensor, per-channel or pow2",
                               scheme_s,
                               wf == NNE_WFORMAT_INT8 ? ", weights only" : ": no kernels");
    if (scheme_s && nne_qscheme_from_name(scheme_s, &qo.scheme))
        return cli_usage_error(k_cmd, "--scheme '%s': expected per-tensor, per-channel or pow2",
                               scheme_s);
    if (nne_observer_from_name(obs_s, &qo.observer.kind))
        return cli_usage_error(k_cmd, "--observer '%s': expected minmax, percentile, mse or kl",
                               obs_s);
    int64_t max_images = 32, crop = 128, seed = 1, eval_max = 1 << 30, wbits = 8;
    if (wbits_s && (!cli_parse_i64(wbits_s, 7, 8, &wbits)))
        return cli_usage_error(k_cmd, "--weight-bits '%s': expected 7 or 8", wbits_s);
    qo.weight_bits = (int32_t)wbits;
    qo.no_fuse_prelu = no_fuse;
    if (orange_s && !cli_parse_range(orange_s, &qo.output_lo, &qo.output_hi))
        return cli_usage_error(k_cmd, "--output-range '%s': expected LO,HI with LO < HI, e.g. 0,1",
                               orange_s);
    double pct = 99.99;
    if (pct_s && !cli_parse_f64(pct_s, 50.000001, 100.0, &pct))
        return cli_usage_error(k_cmd, "--percentile '%s': expected (50, 100]", pct_s);
    if (max_s && !cli_parse_i64(max_s, 1, 100000, &max_images))
        return cli_usage_error(k_cmd, "--max-images '%s': expected 1..100000", max_s);
    if (crop_s && !cli_parse_i64(crop_s, 21, 4096, &crop))
        return cli_usage_error(k_cmd, "--crop '%s': expected 21..4096", crop_s);
    if (seed_s && !cli_parse_i64(seed_s, 0, INT64_MAX, &seed))
        return cli_usage_error(k_cmd, "--seed '%s': expected a non-negative integer", seed_s);
    if (eval_max_s && !cli_parse_i64(eval_max_s, 1, 1 << 30, &eval_max))
        return cli_usage_error(k_cmd, "--eval-max '%s': expected a positive integer", eval_max_s);
    qo.observer.percentile = pct;
    qo.bias_correction = bias_corr;
    qo.equalize = equalize;
    if (eq_act_s) {
        double alpha = 0.0;
        if (equalize) return cli_usage_error(k_cmd, "--equalize and --equalize-act: choose one");
        if (!cli_parse_f64(eq_act_s, 1e-6, 1.0, &alpha))
            return cli_usage_error(k_cmd, "--equalize-act '%s': expected (0, 1]", eq_act_s);
        qo.equalize = equalize = true;
        qo.equalize_kind = NNE_EQUALIZE_ACTIVATIONS;
        qo.equalize_alpha = (float)alpha;
    }
    if (eq_linear && !equalize)
        return cli_usage_error(k_cmd, "--equalize-linear: with --equalize or --equalize-act");
    qo.equalize_linear = eq_linear;
    char real[4096];
    int rc = calib ? cli_check_data_dir(k_cmd, "--calib", calib, real, sizeof real) : 0;
    if (rc) return rc;

    rc = NNE_EXIT_RUNTIME;
    nne_graph *model = NULL, *g = NULL, *q = NULL;
    nne_dataset *ds = NULL;
    nne_qat *qat = NULL;
    nne_qat_config qcfg;
    bool is_qat = false;
    nne_status st = cli_load_model(pos[0], &model);
    if (!st) st = nne_graph_infer(model);
    if (!st) st = nne_qat_config_from_meta(model, &qcfg, &is_qat);
    if (st) {
        cli_error(k_cmd, "%s: %s: %s", pos[0], nne_status_str(st), nne_last_error());
        goto done;
    }
    /* A QAT model: its scheme, and its ranges instead of calibration (docs/quantization.md
     * section 17). */
    if (is_qat && scheme_s && qo.scheme != qcfg.scheme) {
        rc = cli_usage_error(k_cmd,
                             "--scheme %s: %s was trained for %s (quantization-aware); quantize "
                             "it with that scheme, or train it again",
                             scheme_s, pos[0], nne_qscheme_name(qcfg.scheme));
        goto done;
    }
    if (is_qat && equalize) { /* its learned ranges are those of the unequalized activations */
        rc = cli_usage_error(k_cmd, "--equalize: %s was trained quantization-aware; its learned "
                                    "activation ranges belong to its own weights",
                             pos[0]);
        goto done;
    }
    /* QAT trained the weights on the codes of its qat.weight_bits: 8 [-127, 127], 7 [-64, 64] */
    if (is_qat && wbits_s && wbits != qcfg.weight_bits) {
        rc = cli_usage_error(k_cmd, "--weight-bits %d: %s was trained for %d-bit weights",
                             (int)wbits, pos[0], (int)qcfg.weight_bits);
        goto done;
    }
    /* ... and simulated conv + PReLU as one or two int8 steps (qat.fuse_prelu) */
    if (is_qat && no_fuse && !qcfg.no_fuse_prelu) {
        rc = cli_usage_error(k_cmd, "--no-fuse-prelu: %s was trained with each conv + PReLU "
                                    "as one int8 layer",
                             pos[0]);
        goto done;
    }
    if (is_qat) {
        qo.scheme = qcfg.scheme;
        qo.weight_bits = qcfg.weight_bits;
        qo.no_fuse_prelu = qcfg.no_fuse_prelu;
        if (!orange_s) { /* its qat.output_range, unless given */
            qo.output_lo = qcfg.output_lo;
            qo.output_hi = qcfg.output_hi;
        }
    } else if (!scheme_s) {
        qo.scheme = NNE_QSCHEME_PER_CHANNEL;
    }
    if (model->n_attached) { /* `nnedge train --qat` of a codec writes the int8 codec itself */
        cli_error(k_cmd,
                  "%s has attached graphs already: an int8 learned codec (int8 g_a and g_s); "
                  "quantize the f32 model",
                  pos[0]);
        goto done;
    }
    if (!calib && !is_qat) {
        rc = cli_usage_error(k_cmd, "missing --calib DIR");
        goto done;
    }
    const char *mname = nne_graph_get_meta(model, "model");
    nne_rdmodel_kind rd_kind;
    if (mname && nne_rdmodel_kind_from_name(mname, &rd_kind) == NNE_OK) {
        if (eval)
            rc = cli_usage_error(k_cmd, "--eval: a learned codec is evaluated with 'nnedge rd' "
                                        "(bpp, PSNR, MS-SSIM)");
        else
            rc = quantize_codec(model, pos[0], real, &qo, max_images, crop_s ? crop : 256, seed,
                                &co);
        goto done;
    }
    const bool cae = mname && strcmp(mname, "cae-seed") == 0 && model->n_inputs == 1 &&
                     nne_graph_find_node(model, "conv2d_transpose_5") >= 0;
    if (cae) { /* calibrate at crop x crop: the weights do not depend on the size */
        st = nne_model_cae_seed_like(model, (int32_t)crop, (int32_t)crop, NNE_CAE_FULL, &g);
        if (!st) st = nne_model_copy_weights(g, model);
        for (int32_t i = 0; !st && i < model->n_meta; i++)
            st = nne_graph_set_meta(g, model->meta[i].key, model->meta[i].value);
    } else {
        g = model;
        model = NULL;
    }
    if (!st) st = nne_graph_infer(g);
    if (st) {
        rc = cli_fail(k_cmd, st);
        goto done;
    }
    const nne_shape *is = &g->tensors[g->inputs[0]].shape;
    if (g->n_inputs != 1 || is->ndim != 4 || is->dim[0] != 1 || is->dim[3] != 3) {
        cli_error(k_cmd, "%s: the model's input must be one [1][H][W][3] image", pos[0]);
        goto done;
    }
    const nne_dataset_opts dopts = {.recursive = true,
                                    .cache = false,
                                    .min_width = (int32_t)is->dim[2],
                                    .min_height = (int32_t)is->dim[1]};
    if (calib && (st = nne_dataset_open(real, &dopts, &ds))) {
        rc = cli_fail(k_cmd, st);
        goto done;
    }
    if (is_qat &&
        ((st = nne_qat_create(g, &qcfg, &qat)) || (st = nne_qat_load_meta(qat, cae ? model : g)))) {
        rc = cli_fail(k_cmd, st);
        goto done;
    }
    qctx c = {.cal = {.ds = ds,
                      .crop = {.batch = 1,
                               .height = (int32_t)is->dim[1],
                               .width = (int32_t)is->dim[2],
                               .seed = (uint64_t)seed},
                      .cmd = k_cmd,
                      .quiet = co.quiet || co.json,
                      .t0 = nne_time_ns()},
              .qat = qat};
    qo.n_samples = !ds                                 ? 0
                   : nne_dataset_size(ds) < max_images ? nne_dataset_size(ds)
                                                       : (int32_t)max_images;
    qo.sample = ds ? cli_calib_sample : NULL;
    qo.fixed_range = qat_range;
    qo.progress = cli_calib_progress;
    qo.ctx = &c;
    if ((st = nne_quantize_graph(g, &qo, &q))) {
        rc = cli_fail(k_cmd, st);
        goto done;
    }
    if ((calib && (st = nne_graph_set_meta(q, "quant.calib", calib))) ||
        (st = nne_model_write_file(q, co.output))) {
        cli_error(k_cmd, "%s: %s: %s", co.output, nne_status_str(st), nne_last_error());
        goto done;
    }
    eval_sum ev = {0};
    if (eval) {
        if (!cae) {
            cli_error(k_cmd, "--eval needs a cae-seed model");
            goto done;
        }
        if ((rc = evaluate(eval, (int)eval_max, g, q, co.quiet || co.json, &ev))) goto done;
        rc = NNE_EXIT_RUNTIME;
    }
    if (co.json) {
        printf("{\"model\": \"%s\", \"output\": \"%s\", \"scheme\": \"%s\", \"observer\": \"%s\", "
               "\"bias_correction\": %s, \"equalize\": %s, \"samples\": %d, \"ranges\": \"%s\"",
               pos[0], co.output, nne_qscheme_name(qo.scheme), nne_observer_name(qo.observer.kind),
               bias_corr ? "true" : "false", equalize ? "true" : "false", (int)qo.n_samples,
               nne_graph_get_meta(q, "quant.ranges") ? nne_graph_get_meta(q, "quant.ranges")
                                                     : "observer");
        if (eq_act_s) printf(", \"equalize_alpha\": %g", (double)qo.equalize_alpha);
        if (equalize)
            printf(", \"equalize_pairs\": %s, \"equalize_linear\": %s",
                   nne_graph_get_meta(q, "quant.equalize_pairs")
                       ? nne_graph_get_meta(q, "quant.equalize_pairs")
                       : "null",
                   eq_linear ? "true" : "false");
        printf(", \"fuse_prelu\": %s",
               !strcmp(nne_graph_get_meta(q, "quant.fuse_prelu"), "1") ? "true" : "false");
        if (qo.output_lo < qo.output_hi)
            printf(", \"output_range\": [%.9g, %.9g]", (double)qo.output_lo, (double)qo.output_hi);
        if (eval)
            printf(", \"eval\": {\"images\": %d, \"psnr_f32\": %.4f, \"psnr_int8\": %.4f}", ev.n,
                   ev.psnr_f32, ev.psnr_s8);
        printf("}\n");
    } else if (!co.quiet) {
        if (qat)
            printf("%s: %s, activation ranges learned by QAT%s -> %s\n", pos[0],
                   nne_qscheme_name(qo.scheme), bias_corr ? ", bias correction" : "", co.output);
        else
            printf("%s: %s, %s observer%s%s, %d calibration crops of %lldx%lld -> %s\n", pos[0],
                   nne_qscheme_name(qo.scheme), nne_observer_name(qo.observer.kind),
                   bias_corr ? ", bias correction" : "",
                   eq_act_s ? ", activation ranges equalized" : equalize ? ", equalized" : "",
                   (int)qo.n_samples, (long long)is->dim[1],
                   (long long)is->dim[2], co.output);
        if (eval)
            printf("eval %s: %d images, mean PSNR f32 %.2f dB, int8 %.2f dB (%+.2f dB)\n", eval,
                   ev.n, ev.psnr_f32, ev.psnr_s8, ev.psnr_s8 - ev.psnr_f32);
    }
    rc = NNE_EXIT_OK;
done:
    nne_qat_free(qat);
    nne_dataset_free(ds);
    nne_graph_free(q);
    nne_graph_free(g);
    nne_graph_free(model);
    return rc;
}
