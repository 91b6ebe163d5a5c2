/* Learned codec internals exposed to the tests and the fuzz target (not public API). */
#ifndef NNE_CODEC_LCODEC_INTERNAL_H
#define NNE_CODEC_LCODEC_INTERNAL_H

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

#endif
