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

/* cae-seed at height x width with the channel widths of `model`: a cae-seed graph (full,
 * encoder or decoder, at any size) whose layers may have fewer channels than the paper's,
 * e.g. after channel pruning (prune.h). Each hidden layer's width is dim 0 of its weight
 * "<layer>.weight" in `model` (the paper's width where the layer is absent; the latent width
 * of a decoder-only model is conv2d_transpose_1's input channels); NULL = the paper's
 * widths (nne_model_cae_seed). Widths are limited to 1..4096. Weights are not copied: use
 * nne_model_copy_weights. */
nne_status nne_model_cae_seed_like(const nne_graph *model, int32_t height, int32_t width,
                                   nne_cae_part part, nne_graph **out);

/* Image sides cae-seed is trained on and coded at (docs/models.md, "The border"): with sides
 * that are multiples of 8, conv2d_transpose_1 needs no output padding and conv2d_transpose_2
 * and _4 need one row (the layout of 256x256 training crops and of Kodak's 512x768); other
 * sizes put bias-only rows where training never had them, so the latent codec pads images to
 * a multiple of NNE_CAE_ALIGN (edge replication, bottom and right) and validation crops to it. */
#define NNE_CAE_ALIGN 8

/* The reconstruction's border that cae-seed's decoder cannot reconstruct (docs/models.md,
 * "The border"). Where an axis of `size` input pixels is even, conv2d_transpose_4 needs an
 * output padding of 1 to land on the encoder's size, and that row (column) gets no tap: it is
 * the bias alone, whatever the latent. conv2d_transpose_5 (3x3, stride 1, valid) spreads it
 * over the last 3 rows of the reconstruction, the last of which sees nothing else. Returns
 * that count of trailing rows (or columns) for an axis of `size` pixels: 3 or 0 (0 also for
 * a size the encoder does not accept). Derived from the layer geometry, not from parity. */
int32_t nne_cae_seed_border(int32_t size);

/* Replace the trailing nne_cae_seed_border(h) rows and nne_cae_seed_border(w) columns of a
 * reconstruction x [n][h][w][c] (f32, NHWC) by copies of the last row / column before them
 * (edge replication), as every cae-seed decoder in nnedge does (the latent codec, nnedge
 * eval and run on every backend, validation during training). Needs h, w > 3 + border. */
void nne_cae_seed_fill_border(float *x, int32_t n, int32_t h, int32_t w, int32_t c);

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

/* The lenient form, to start one model from another of a different kind (a factorized-prior
 * codec from a mean-scale codec's g_a/g_s): copies every constant of `dst` for which `src`
 * has a constant of the same name, dtype and shape, and leaves the others as they are.
 * *n_copied / *n_constants (either may be NULL) receive how many constants were copied and
 * how many `dst` has. Only NNE_ERR_NOMEM (quantization parameters) can fail midway. */
nne_status nne_model_copy_weights_matching(nne_graph *dst, const nne_graph *src,
                                           int32_t *n_copied, int32_t *n_constants);

/* Widening (net2net): start a model from a narrower one of the same structure, e.g. an
 * mbt2018-mean codec with M = 192 latent channels from one with M = 96. As
 * nne_model_copy_weights_matching, and further, for every unquantized f32 constant of `dst`
 * whose namesake in `src` has the same rank and no larger extent on any axis: src's values go
 * to the leading block (index i of src -> index i of dst on every axis); the rest of `dst`
 * keeps its values (the caller's fresh initialisation), except that in the weights of
 * conv2d / conv_transpose2d nodes (OHWI: input channels last) the elements of new input
 * channels become 0 (grouped convolutions' weights are not widened). So the new channels a
 * layer reads contribute nothing, and a graph whose
 * only growth is channels produced by one layer and read by the next computes what `src`
 * computes on the old channels (the new ones are extra outputs, for training to put to use).
 * *n_widened receives how many constants were widened. */
nne_status nne_model_copy_weights_widen(nne_graph *dst, const nne_graph *src, int32_t *n_copied,
                                        int32_t *n_widened, int32_t *n_constants);

/* ---- Learned codecs (src/models/bmshj2018.c, docs/models.md "Learned codecs") ---------- */

typedef enum nne_rdmodel_kind {
    NNE_RD_FACTORIZED = 0, /* bmshj2018-factorized: y coded with a factorized density */
    NNE_RD_HYPERPRIOR = 1, /* bmshj2018-hyperprior: y ~ N(0, scales(z_hat)), z factorized */
    NNE_RD_MEAN_SCALE = 2, /* mbt2018-mean: y ~ N(means(z_hat), scales(z_hat)) */
} nne_rdmodel_kind;

typedef enum nne_rd_part {
    NNE_RD_TRAIN = 0,           /* image -> x_hat, likelihoods_y [, likelihoods_z] */
    NNE_RD_ANALYSIS = 1,        /* g_a: image -> y [B][H/16][W/16][M] */
    NNE_RD_SYNTHESIS = 2,       /* g_s: y_hat -> x_hat */
    NNE_RD_HYPER_ANALYSIS = 3,  /* h_a: y -> z [B][H/64][W/64][N] (hyperpriors only) */
    NNE_RD_HYPER_SYNTHESIS = 4, /* h_s: z_hat -> scales [, means] (hyperpriors only) */
    /* The training graph without g_a: y -> x_hat, likelihoods_y [, likelihoods_z], input "y"
     * [B][H/16][W/16][M]. What an encoder differentiates to refine its latents for one image
     * (docs/codec.md, "Latent refinement"); built with train_mode STE it measures the rate
     * and distortion of the rounded symbols. */
    NNE_RD_REFINE = 5,
} nne_rd_part;

#define NNE_RD_LIK_MIN   1e-9f /* likelihood floor (CompressAI) */
#define NNE_RD_SCALE_MIN 0.11f /* Gaussian scale floor (CompressAI) */

typedef struct nne_rdmodel_config {
    nne_rdmodel_kind kind;
    int32_t n, m;                       /* channels: N (hidden), M (latent y) */
    nne_quantize_train_mode train_mode; /* what training does at the quantize nodes */
    /* With train_mode NOISE: also STE-rounded copies for the networks after them ("mixed",
     * Minnen & Singh 2020): the rate terms (likelihoods) take y + u and z + u, while g_s and h_s
     * take round(y - means) + means and round(z), the values they get when decoding. The
     * training graph gains the nodes quantize_y_ste / quantize_z_ste (no weights: every part
     * keeps its names). Ignored with STE. */
    bool mixed;
} nne_rdmodel_config;

/* Build part `part` of a learned codec for batch x height x width x 3 images in [0, 1].
 * height and width must be positive multiples of nne_rdmodel_alignment(kind) (16 for the
 * factorized model, 64 for the hyperpriors). Constants are named so that every part shares
 * the names of the training graph (g_a.0.weight, entropy_bottleneck.params, ...):
 * nne_model_copy_weights moves trained weights into a part built at another size. Values
 * are placeholders (nne_train_init_params or a model file). Meta: model (the kind's name),
 * model.part, model.N, model.M. */
nne_status nne_model_rd(const nne_rdmodel_config *c, int32_t batch, int32_t height, int32_t width,
                        nne_rd_part part, nne_graph **out);
int32_t nne_rdmodel_alignment(nne_rdmodel_kind kind);
/* "bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean"; NULL if invalid. */
const char *nne_rdmodel_kind_name(nne_rdmodel_kind kind);
nne_status nne_rdmodel_kind_from_name(const char *name, nne_rdmodel_kind *kind);

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
