/* nnedge learned codec: images <-> .nnc bitstreams with the learned-codec models of
 * include/nnedge/models.h (bmshj2018-factorized, bmshj2018-hyperprior, mbt2018-mean).
 * Pipeline, padding, table construction and determinism guarantees: docs/codec.md.
 * Container: docs/bitstream.md.
 *
 * Simple API (one call each way, like libwebp's WebPEncodeRGB / WebPDecodeRGB):
 *
 *   uint8_t *nnc; size_t n;
 *   nne_lcodec_encode_rgb("models/bmshj2018-hyperprior-q3.nne", rgb, w, h, w * 3, &nnc, &n);
 *   uint8_t *pix; int32_t w2, h2;
 *   nne_lcodec_decode_rgb("models/bmshj2018-hyperprior-q3.nne", nnc, n, &pix, &w2, &h2);
 *   nne_free(nnc); nne_free(pix);
 *
 * Advanced API: a codec object bound to one trained model (nne_lcodec_create from a graph or
 * nne_lcodec_load from a file) that builds its entropy tables once and keeps the network
 * parts of the last image size, for folders of images; with per-image statistics.
 *
 * Int8 codecs (docs/codec.md, "Int8 codecs"): nne_lcodec_quantize attaches int8 analysis and
 * synthesis transforms to a model; a codec created from such a model runs them on cpu-s8
 * (the hyperprior and the entropy coding stay f32), with the same API and bitstream format. */
#ifndef NNEDGE_LCODEC_H
#define NNEDGE_LCODEC_H

#include "nnedge/graph.h"
#include "nnedge/image.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Simple API ------------------------------------------------------------------------ */

/* Encode width x height RGB8 pixels (rows `stride` bytes apart, stride >= 3 * width) with the
 * trained model file `model_path` (quality index 0 in the container). *out (nne_malloc;
 * release with nne_free) receives the .nnc bytes. */
nne_status nne_lcodec_encode_rgb(const char *model_path, const uint8_t *rgb, int32_t width,
                                 int32_t height, int32_t stride, uint8_t **out, size_t *out_size);
/* Decode .nnc bytes with the model that encoded them. *rgb (nne_malloc) receives
 * width * height * 3 bytes, rows packed. */
nne_status nne_lcodec_decode_rgb(const char *model_path, const uint8_t *data, size_t size,
                                 uint8_t **rgb, int32_t *width, int32_t *height);

/* ---- Advanced API ---------------------------------------------------------------------- */

typedef struct nne_lcodec nne_lcodec;

/* Tables: half-width limit and tail mass of the factorized tables (docs/codec.md). */
#define NNE_LCODEC_FACT_MAX_HALF  1024
#define NNE_LCODEC_FACT_TAIL_MASS 1e-9
/* Fixed-point formats of the hyper-synthesis outputs (docs/codec.md, "Determinism"). */
#define NNE_LCODEC_SCALE_FRAC_BITS 16 /* scale -> table index: q = ceil(scale * 2^16) */
#define NNE_LCODEC_MEAN_FRAC_BITS  8  /* means rounded to multiples of 2^-8 */

/* `model`: a learned-codec graph (normally the training graph NNE_RD_TRAIN read from a model
 * file) with meta "model" (a kind name of nne_rdmodel_kind_from_name), "model.N" and
 * "model.M", holding every weight of the kind's training graph by name. The weights are
 * copied (model may be freed after the call) and checked finite. `quality` (0..255) is
 * written into every container as the rate index. Builds the entropy tables. A model with
 * attached graphs is an int8 codec: they must be exactly "<kind>.g_a" and "<kind>.g_s" from
 * nne_lcodec_quantize, which are copied and checked by building them on cpu-s8. Statuses:
 * UNSUPPORTED (not a learned-codec model; an int8 part cpu-s8 cannot run), FORMAT
 * (missing/bad meta, non-finite weights, other attached graphs), NOT_FOUND / SHAPE (a weight,
 * or a tensor of an int8 part, missing or of another shape), INVALID_ARG, NOMEM. */
nne_status nne_lcodec_create(const nne_graph *model, int32_t quality, nne_lcodec **out);
/* The same from a model file. */
nne_status nne_lcodec_load(const char *path, int32_t quality, nne_lcodec **out);
void nne_lcodec_free(nne_lcodec *c);

typedef struct nne_lcodec_info {
    const char *model_id; /* the kind's name, written as the container's model id */
    nne_rdmodel_kind kind;
    int32_t n, m;        /* channels N (hidden, z) and M (latent y) */
    int32_t align;       /* padding multiple: 16 (factorized) or 64 (hyperpriors) */
    int32_t quality;     /* as given to create */
    const uint8_t *hash; /* 32 bytes: SHA-256 of the weights, the integer tables and (int8)
                            the quantized parts */
    const char *precision; /* "f32", or "int8": g_a and g_s on cpu-s8 */
    const char *scheme;    /* int8: the parts' quant.scheme (per-tensor, ...); else NULL */
    int64_t weight_bytes;  /* the constants the codec runs with at their storage precision
                              (int8 parts: s8 weights, s32 biases; scales not counted) */
    int64_t sparse_weight_bytes; /* the same constants stored sparse: a tensor with zeros
                                    (nne_tensor_count_nonzero) as its nonzero elements plus a
                                    presence bitmap of 1 bit per element where that is
                                    smaller (docs/pruning.md, "Magnitude-pruned learned
                                    codecs"); = weight_bytes without zeros */
} nne_lcodec_info;
void nne_lcodec_get_info(const nne_lcodec *c, nne_lcodec_info *info);

/* What nne_lcodec_encode measured (any pointer may be NULL where optional). */
typedef struct nne_lcodec_stats {
    int32_t y_shape[3], z_shape[3]; /* latent heights, widths, channels ({0} if no z) */
    size_t y_bytes, z_bytes;        /* stream sizes */
    size_t file_bytes;              /* the whole container */
    /* Sum of -log2 P under the model's float densities (the training's rate term, with its
     * likelihood floor 1e-9 and the Gaussian scale bounded to the tables' [0.11, 256]). */
    double y_bits_est, z_bits_est;
    /* The ideal code length under the integer tables (nne_entropy_cost_bits): what the
     * streams hold, less the 8 state bytes and rounding. It departs from the float estimate
     * by the 16-bit quantization and where values fall outside a table: an escape costs
     * 20 to 56 bits where the floored density says up to 30. */
    double y_bits_table, z_bits_table;
    double bpp; /* file_bytes * 8 / (width * height) */
    /* With want_reconstruction: the encoder also runs the synthesis on its own y_hat (what
     * the decoder will compute) and reports the PSNR (dB, RGB8, peak 255) of that image
     * against the input; NaN otherwise. */
    double psnr;
    /* Latent refinement (nne_lcodec_set_refine): the estimated rate-distortion loss
     * lambda 255^2 MSE + bpp of g_a's latents (refine_loss[0]) and of the refined ones that
     * were coded (refine_loss[1], never above [0]), on the padded image with the model's
     * float densities; both 0 without refinement. */
    double refine_loss[2];
    int32_t refine_iterations; /* gradient steps taken (0 without refinement) */
} nne_lcodec_stats;

/* Encode an RGB image (3 channels, any size from 1x1 to the image limits). The image is
 * padded to `align` by edge replication (docs/codec.md). *out (nne_malloc) receives the .nnc
 * bytes. stats may be NULL; want_reconstruction costs one synthesis run. */
nne_status nne_lcodec_encode(nne_lcodec *c, const nne_image *img, bool want_reconstruction,
                             uint8_t **out, size_t *out_size, nne_lcodec_stats *stats);
/* Decode .nnc bytes to an RGB image of the original size. A container from another model
 * (model id or hash differ) is NNE_ERR_INVALID_ARG naming both; a damaged container or
 * stream is FORMAT / CHECKSUM / UNSUPPORTED / LIMIT as nne_nnc_read_mem and
 * nne_entropy_decode say. *out is zeroed on failure. */
nne_status nne_lcodec_decode(nne_lcodec *c, const uint8_t *data, size_t size, nne_image *out);

/* Make nne_lcodec_decode refuse (NNE_ERR_LIMIT) containers whose padded image exceeds
 * max_pixels (default NNE_IMAGE_MAX_PIXELS). A stream of near-certain symbols costs almost no
 * bytes, so a tiny hostile file can ask for a huge synthesis run: services and fuzzers bound
 * that work here. */
void nne_lcodec_set_max_pixels(nne_lcodec *c, int64_t max_pixels);

/* ---- Latent refinement (encoder effort) ------------------------------------------------ */

/* Encoder-side latent refinement (docs/codec.md, "Latent refinement"): instead of coding
 * g_a's latents y as they are, the encoder runs `iterations` steps of Adam on y (and through
 * h_a on z) against the model's own rate-distortion loss lambda 255^2 MSE(g_s(y_hat), x) +
 * bpp, where y_hat and z_hat are stochastic Gumbel annealing samples (SGA; Yang, Bamler &
 * Mandt 2020: a soft rounding whose temperature falls from NNE_LCODEC_REFINE_TAU0 to _TAU1),
 * and codes the iterate with the lowest true loss (hard rounding, f32, checked every tenth
 * step and after the last; g_a's own y if none is lower). The decoder and the bitstream do
 * not change: a refined stream decodes anywhere, bit-exact as before. The encoder's bytes
 * stay independent of the thread count but depend on the machine's ISA (the trainer's GEMM
 * paths; bf16 on AMX). Costs about iterations x (a forward and backward pass of g_s, h_a and
 * h_s, without weight gradients) per image. */
#define NNE_LCODEC_REFINE_LR      0.01f /* default Adam step size, in quantization bins */
#define NNE_LCODEC_REFINE_TAU0    0.3   /* SGA temperature at the first step */
#define NNE_LCODEC_REFINE_TAU1    0.05  /* ... and at the last, geometric in between */
#define NNE_LCODEC_REFINE_SEED    0x5A6AULL /* the Gumbel samples' seed (nne_trainer) */
#define NNE_LCODEC_REFINE_MAX_ITS 100000
typedef struct nne_lcodec_refine_opts {
    int32_t iterations; /* 0 = off (the default of a new codec) */
    float lr;           /* Adam step size; 0 = NNE_LCODEC_REFINE_LR; cosine decay to 0 */
    float lambda;       /* the rate-distortion trade-off; 0 = the model's meta train.lambda */
    int32_t threads;    /* 0 = the process-wide pool, n >= 1 a pool of n threads (1: serial) */
} nne_lcodec_refine_opts;
/* Set (o->iterations > 0) or turn off (o NULL or iterations 0) refinement for the following
 * encodes. INVALID_ARG for values out of range, or lambda 0 with a model that has no
 * train.lambda. */
nne_status nne_lcodec_set_refine(nne_lcodec *c, const nne_lcodec_refine_opts *o);

/* ---- Int8 codecs ------------------------------------------------------------------------- */

typedef struct nne_lcodec_quantize_opts {
    /* As for nne_quantize_graph: scheme, observer, bias_correction, weight_bits, progress,
     * ctx, n_samples and sample, which fills calibration image i as [1][height][width][3] f32
     * in [0, 1]. fixed_range (optional) gives ranges by tensor name for both parts: the names
     * of the training graph (g_a's "image", "g_a.K:out", "y"; g_s's "y_hat", "g_s.K:out",
     * "x_hat"), as a QAT state on it has them (nne_qat_get_range); with every range fixed
     * (and no bias correction) nothing is calibrated and sample may be NULL, n_samples 0.
     * output_lo / output_hi (e.g. 0 and 1: x_hat on the 8-bit pixel grid) apply to g_s only,
     * whose output is the image; g_a's is the latent. */
    nne_quantize_opts q;
    int32_t height, width; /* calibration crop: positive multiples of the kind's alignment */
} nne_lcodec_quantize_opts;

/* The node-name prefixes of the parts an int8 codec runs in int8, {"g_a.", "g_s.", NULL}:
 * they select exactly the nodes of nne_model_rd's NNE_RD_ANALYSIS and NNE_RD_SYNTHESIS graphs
 * within its NNE_RD_TRAIN graph. Quantization-aware training of a codec simulates these
 * (nne_qat_config.only; docs/training.md, "QAT of a learned codec"). */
const char *const *nne_lcodec_int8_prefixes(void);

/* Make the f32 learned-codec model `model` (as for nne_lcodec_create) an int8 codec: g_a,
 * built at height x width, is quantized with nne_quantize_graph on the calibration images;
 * g_s on the y_hat the f32 codec derives from the same images (round(y - mean) + mean, what
 * a decoder gives g_s), and both are attached to `model` (nne_graph_attach) as "<kind>.g_a"
 * and "<kind>.g_s", with their quant.* metadata. h_a, h_s and the entropy model are not
 * quantized. With o->q.fixed_range the parts take the given ranges (the QAT hand-off: the
 * result is the int8 codec the QAT forward pass simulated). Write `model` with
 * nne_model_write_file to keep it. UNSUPPORTED for a model that has attached graphs
 * already; errors of nne_lcodec_create and nne_quantize_graph (prefixed with the part);
 * `model` is unchanged on error. */
nne_status nne_lcodec_quantize(nne_graph *model, const nne_lcodec_quantize_opts *o);

#ifdef __cplusplus
}
#endif
#endif
