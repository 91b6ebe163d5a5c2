/* Helpers shared by the codec pipelines (cae.c: the float latent, lcodec.c: the learned
 * codec). Private to src/codec and its tests. */
#ifndef NNE_CODEC_CODEC_INTERNAL_H
#define NNE_CODEC_CODEC_INTERNAL_H

#include "nnedge/graph.h"
#include "nnedge/sha256.h"

/* Feed the f32 constants of `g` in name order into `h` (docs/latent-format.md, "Model
 * hash"): per constant u32 name length, name bytes, u32 dtype, u32 ndim, ndim x u32 dims,
 * then the data as little-endian f32. NNE_ERR_UNSUPPORTED (message prefixed `who`) for a
 * constant of another dtype; NNE_ERR_NOMEM. */
nne_status nne_codec_hash_weights(nne_sha256 *h, const nne_graph *g, const char *who);

/* NNE_ERR_FORMAT naming the tensor if a constant of `g` holds a NaN or infinity: a trained
 * model has no business producing non-finite outputs, so its weights are refused at load
 * rather than every image later. */
nne_status nne_codec_check_finite(const nne_graph *g, const char *who);

/* Reconstruction to 8 bits: clamp to [0, 1] (NaN -> 0), then floor(x * 255 + 0.5). */
static inline uint8_t nne_codec_to_u8(float v) {
    if (!(v > 0.0f)) return 0; /* also NaN */
    if (v >= 1.0f) return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

#endif
