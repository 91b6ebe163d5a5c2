/* nnedge built-in model definitions. */
#ifndef NNEDGE_MODELS_H
#define NNEDGE_MODELS_H

#include "nnedge/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nne_cae_part {
    NNE_CAE_FULL = 0,    /* encoder + decoder: image -> reconstruction */
    NNE_CAE_ENCODER = 1, /* image -> latent */
    NNE_CAE_DECODER = 2, /* latent -> image */
} nne_cae_part;

/* The CAE paper's network ("cae-seed", docs/models.md, ../shared/specs/dpu.md): five 3x3
 * "valid" convolutions (3->32 s1, 32->32 s2, 32->64 s1, 64->64 s2, 64->32 s2) with PReLU, a
 * 32-channel latent, and the mirrored decoder of 3x3 transposed convolutions. Input
 * [1][height][width][3] in [0,1]; height and width must give the exact mirrored sizes
 * (for 512x768: latent 62x94x32). Weights are zero-filled except PReLU slopes (0.25):
 * load trained weights from a model file. */
nne_status nne_model_cae_seed(int32_t height, int32_t width, nne_cae_part part, nne_graph **out);

/* Rebind trained weights to a graph built for another input size: copy the data (and the
 * quantization parameters) of every constant of `dst` from the constant of the same name in
 * `src`. Convolution weights do not depend on the input size, so a model trained on 256x256
 * crops can be rebuilt with nne_model_cae_seed at an image's size and given its weights.
 * Every constant of `dst` must be a constant of `src` with the same dtype and shape
 * (NNE_ERR_NOT_FOUND / NNE_ERR_SHAPE naming the tensor); constants only `src` has are
 * ignored. Everything is checked before anything is copied, so on such an error `dst` is
 * unchanged (only NNE_ERR_NOMEM while copying quantization parameters can leave it partly
 * updated). Inference results and the plan of `dst` stay valid (shapes do not change). */
nne_status nne_model_copy_weights(nne_graph *dst, const nne_graph *src);

/* Names of the built-in models, NULL-terminated. */
const char *const *nne_builtin_model_names(void);
/* For a built-in model made of parts (cae-seed: its encoder and decoder), the NULL-terminated
 * names of the part models; NULL if the model has no parts or is unknown. */
const char *const *nne_builtin_model_parts(const char *name);
/* Build a built-in model by name at its default input size. */
nne_status nne_builtin_model(const char *name, nne_graph **out);

#ifdef __cplusplus
}
#endif
#endif
