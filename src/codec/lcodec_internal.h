/* Learned codec internals exposed to the tests and the fuzz target (not public API). */
#ifndef NNE_CODEC_LCODEC_INTERNAL_H
#define NNE_CODEC_LCODEC_INTERNAL_H

#include "nnedge/backend.h"
#include "nnedge/entropy.h"
#include "nnedge/lcodec.h"

/* The integer symbols and y_hat of the last successful nne_lcodec_encode or decode. */
typedef struct nne_lcodec_symbols {
    int32_t *y;   /* [ny] y symbols: round(y - mean) */
    int32_t *z;   /* [nz] z symbols (nz = 0 for the factorized model) */
    float *y_hat; /* [ny] what g_s was (or would be) given: y + mean */
    size_t ny, nz;
} nne_lcodec_symbols;
const nne_lcodec_symbols *nne_lcodec_last_symbols(const nne_lcodec *c);

/* The factorized tables the codec built (one per channel of the bottleneck). */
const nne_cdf_set *nne_lcodec_factorized_tables(const nne_lcodec *c);

/* The encoder's analysis of x ([1][height][width][3] f32 in [0, 1], sizes multiples of the
 * alignment): y_hat ([height/16][width/16][M]) exactly as the encoder derives it, i.e. what
 * the decoder feeds g_s. The calibration data of the int8 synthesis (lcodec_quant.c). */
nne_status nne_lcodec_latents(nne_lcodec *c, const float *x, int32_t height, int32_t width,
                              float *y_hat);

/* Run the int8 parts of an int8 codec on `be` (NULL: cpu-s8, the default), e.g. the
 * reference int8 backend "cpu-s8-ref" in tests; nothing for an f32 codec. */
void nne_lcodec_set_s8_backend(nne_lcodec *c, const nne_backend *be);

/* Latent refinement (lcodec_refine.c; nne_lcodec_set_refine). The refiner keeps the
 * NNE_RD_REFINE graph and its trainer for the last padded size. */
typedef struct nne_lcodec_refiner nne_lcodec_refiner;
/* Refine y ([ph/16][pw/16][M], g_a's output on x [1][ph][pw][3]) in place with the weights of
 * `weights` (the codec's training graph); loss[0] / loss[1]: the estimated loss of y before
 * and after, *its: the gradient steps taken. *r is created (or rebuilt for a new size). */
nne_status nne_lcodec__refine(nne_lcodec_refiner **r, const nne_rdmodel_config *cfg,
                              const nne_graph *weights, const nne_lcodec_refine_opts *o,
                              float lambda, int32_t ph, int32_t pw, const float *x, float *y,
                              double loss[2], int32_t *its);
void nne_lcodec__refiner_free(nne_lcodec_refiner *r);

#endif
