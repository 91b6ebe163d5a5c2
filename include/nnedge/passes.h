/* nnedge graph passes: post-training int8 quantization with calibration.
 *
 * The pass turns an f32 graph into the quantized representation of docs/quantization.md
 * ("The quantization pass"): s8 activations and weights, s32 biases, nne_quant parameters
 * on every quantized tensor, GDN/IGDN and PReLU parameters kept in f32 (the kernels fold
 * them at compile time). The graph keeps its nodes and names; only dtypes, constants and
 * quantization parameters change, so the result is a valid graph (nne_graph_infer), a valid
 * .nne model file and runs on the cpu-s8 backend.
 *
 * Calibration runs the f32 graph on the cpu-ref backend over caller-provided samples,
 * accumulates one histogram per activation tensor (graph inputs included) and picks each
 * tensor's clipping range with an observer.
 */
#ifndef NNEDGE_PASSES_H
#define NNEDGE_PASSES_H

#include "nnedge/graph.h"
#include "nnedge/qops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Observers: histogram -> clipping range ------------------------------------------------ */

/* How the clipping range [lo, hi] of an activation is chosen from its histogram. */
typedef enum nne_observer_kind {
    NNE_OBSERVER_MINMAX = 0,     /* the exact extremes seen */
    NNE_OBSERVER_PERCENTILE = 1, /* the (100 - p)% and p% quantiles (p = 99.99 by default) */
    NNE_OBSERVER_MSE = 2,        /* the range minimizing the histogram's quantization MSE */
    NNE_OBSERVER_KL = 3,         /* TensorRT's entropy calibration on |x| */
} nne_observer_kind;

/* "minmax", "percentile", "mse", "kl"; NULL if invalid. */
const char *nne_observer_name(nne_observer_kind k);
/* NNE_ERR_INVALID_ARG if the name is unknown. */
nne_status nne_observer_from_name(const char *name, nne_observer_kind *k);

#define NNE_HIST_BINS 8192 /* divisible by 4 (see nne_histogram_add) */

/* Histogram of one tensor over the symmetric range [-range, range], `range` a power of two
 * that doubles (merging bin pairs exactly) when a larger value arrives, so data can be added
 * in any number of batches without a first min/max pass. min/max are exact. */
typedef struct nne_histogram {
    double min, max;    /* exact extremes of the finite values seen (+inf/-inf if none) */
    float range;        /* bins cover [-range, range]; 0 before the first value */
    uint64_t total;     /* finite values counted */
    uint64_t nonfinite; /* NaN / inf values seen (ignored) */
    uint64_t bins[NNE_HIST_BINS];
} nne_histogram;

void nne_histogram_init(nne_histogram *h);
void nne_histogram_add(nne_histogram *h, const float *x, size_t n);

/* Observer parameters. */
typedef struct nne_observer_opts {
    nne_observer_kind kind;
    double percentile; /* NNE_OBSERVER_PERCENTILE: in (50, 100]; 0 = 99.99 */
    bool symmetric;    /* the range will be used with zero point 0 (pow2 scheme) */
} nne_observer_opts;

/* Clipping range of a histogram: lo <= 0 <= hi always (0 is representable); an empty
 * histogram gives [0, 0]. symmetric: lo = -hi. NNE_ERR_INVALID_ARG for bad options. */
nne_status nne_observer_range(const nne_histogram *h, const nne_observer_opts *o, float *lo,
                              float *hi);

/* Mean squared quantization error of the histogram under (scale, zero_point) with s8 codes,
 * using bin centres (the pass's MSE criterion, exposed for tests). */
double nne_histogram_qerror(const nne_histogram *h, float scale, int32_t zero_point, bool pow2);

/* Power-of-two fixed-point position for a histogram, as the Vitis AI quantizer does: among
 * the candidates fp0 .. fp0 + 3 (fp0: the coarsest that does not clip [lo, hi]) the one with
 * the smallest nne_histogram_qerror. Returns fp; scale = 2^-fp. */
int32_t nne_histogram_pow2_fp(const nne_histogram *h, float lo, float hi);

/* ---- Cross-layer equalization ---------------------------------------------------------------
 * Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction"
 * (section 4.1); docs/quantization.md, "Cross-layer equalization". For every pair
 *   A -> act -> B
 * of conv2d / conv_transpose2d nodes (groups 1, f32 constant weights, optional f32 bias) with a
 * positively homogeneous activation between (PReLU with one or per-channel slopes, ReLU, leaky
 * ReLU: f(s x) = s f(x) for s > 0), whose two tensors have no other reader and are not graph
 * outputs, output channel c of A (w_A[c][..], b_A[c]) is divided by s_c and input channel c of
 * B (w_B[..][c], the innermost OHWI axis for both ops) multiplied by it, with
 *   s_c = sqrt(r_A[c] / r_B[c]),  r_A[c] = max |w_A[c][..]|,  r_B[c] = max |w_B[..][c]|,
 * which makes both ranges sqrt(r_A[c] r_B[c]). A channel with r = 0 on either side keeps
 * s_c = 1. Sweeps over all pairs repeat until no s_c differs from 1 by more than 1e-4, or
 * max_sweeps. The result computes the same function up to f32 rounding. Two convolutions with
 * no activation between are left alone: such a tensor (a codec's latent) is often read in its
 * own units by other graphs. */
/* What the channel scales balance. */
typedef enum nne_equalize_kind {
    NNE_EQUALIZE_WEIGHTS = 0, /* the weight ranges of both layers (above; data-free) */
    /* The activation ranges of the pair's two tensors (A's output and the activation's),
     * measured by the caller (act_range): channel c is multiplied by
     *   t_c = (1 / r_c)^alpha,  r_c = max(rA[c] / max_k rA[k], rM[c] / max_k rM[k])
     * (output channel c of A by t_c, input channel c of B by 1 / t_c), so that the narrow
     * channels of both tensors use more of the int8 grid while neither tensor's widest
     * channel grows: alpha = 1 makes the narrower-normalized channel as wide as the widest,
     * smaller alphas leave part of the imbalance (B's weights of the scaled channels shrink
     * by t_c, which costs weight resolution: the trade-off alpha sets). One sweep (the
     * pairs' tensors are disjoint). A channel with r_c = 0 keeps t_c = 1. */
    NNE_EQUALIZE_ACTIVATIONS = 1,
} nne_equalize_kind;

typedef struct nne_equalize_opts {
    int32_t max_sweeps; /* 0: 64 (weights) */
    nne_equalize_kind kind;
    /* NNE_EQUALIZE_ACTIVATIONS: act_range[t] = the range (max - min) of each channel (the
     * last axis) of tensor t over the calibration data, [channels] floats, for the tensors
     * of g (NULL entries: a pair through such a tensor is left alone). */
    const float *const *act_range;
    float alpha; /* NNE_EQUALIZE_ACTIVATIONS: in (0, 1]; 0 means 1 */
    /* Also conv -> conv pairs with no activation between (a linear tensor read only by the
     * second conv, e.g. cae-seed's latent), either kind. Exact in f32 like the others, but the
     * tensor's units change: off by default, since another graph may read it in its own
     * units (a codec's latent); a cae-seed latent file names its model's weights (hash), so
     * an equalized model never decodes another's. */
    bool linear;
} nne_equalize_opts;

typedef struct nne_equalize_info {
    int32_t pairs;  /* pairs equalized */
    int32_t sweeps; /* sweeps run */
} nne_equalize_info;

/* *out: a new inferred graph with the equalized constants (names, nodes, metadata of g; o and
 * info may be NULL: weights). A graph with no pair gives an unchanged copy.
 * NNE_ERR_INVALID_ARG: activations without act_range, alpha outside [0, 1]. */
nne_status nne_equalize_graph(nne_graph *g, const nne_equalize_opts *o, nne_graph **out,
                              nne_equalize_info *info);

/* ---- The quantization pass ----------------------------------------------------------------- */

/* nne_qscheme (per-tensor, per-channel, pow2) is declared in qops.h. */

/* Fill the f32 input (shape of graph input 0, NHWC) of calibration sample i. */
typedef nne_status (*nne_calib_sample_fn)(void *ctx, int32_t i, float *x);
/* Called after each calibration run (done = 1 .. total) and once per phase; may be NULL. */
typedef void (*nne_calib_progress_fn)(void *ctx, const char *phase, int32_t done, int32_t total);

typedef struct nne_quantize_opts {
    nne_qscheme scheme;
    nne_observer_opts observer; /* observer.symmetric is set by the pass from the scheme */
    bool bias_correction;       /* correct conv biases by E[y_f32 - y_qweights] */
    bool equalize;              /* nne_equalize_graph first (calibration on its result) */
    /* With equalize: NNE_EQUALIZE_ACTIVATIONS measures every activation's per-channel range
     * on the calibration samples first (one more f32 pass over them) and balances those,
     * with equalize_alpha (0: 1); NNE_EQUALIZE_WEIGHTS (0) the weight ranges. */
    nne_equalize_kind equalize_kind;
    float equalize_alpha;
    bool equalize_linear; /* nne_equalize_opts.linear */
    /* With equalize: when not NULL, *equalized receives the equalized f32 graph that was
     * quantized (the caller frees it; NULL on error), e.g. for quantization-aware training
     * to continue from the weights the int8 ranges belong to. */
    nne_graph **equalized;
    int32_t n_samples;          /* calibration samples, >= 1 */
    nne_calib_sample_fn sample; /* required */
    nne_calib_progress_fn progress;
    void *ctx; /* passed to sample, progress and fixed_range */
    /* Optional: activation ranges fixed by the caller, e.g. learned by quantization-aware
     * training (qat.h, docs/quantization.md section 17). For each input/activation that gets
     * its own parameters, a true return gives its range [lo, hi], turned into parameters with
     * nne_qparams_from_range (pow2: the non-clipping position, no histogram search) exactly
     * as QAT does; false leaves it to the observer. With every range fixed and no bias
     * correction, calibration is skipped and n_samples may be 0. */
    bool (*fixed_range)(void *ctx, const char *tensor, float *lo, float *hi);
    /* Weight code range of conv / transposed conv / dense (every scheme): 0 or 8: [-127, 127];
     * 7: [-64, 64], the same rules with qmax 64 (nne_weight_scales_s8_qmax), which the AVX2
     * int8 kernels run with vpmaddubsw, exactly (docs/quantization.md, "Weight bits").
     * Other values: NNE_ERR_INVALID_ARG. Recorded as quant.weight_bits. */
    int32_t weight_bits;
    /* Keep every PReLU / leaky ReLU after a conv2d / conv_transpose2d / dense as its own int8
     * step (requantize to s8, then the activation: two roundings), as models quantized before
     * conv + PReLU fusion were. By default (false) each such pair (nne_graph_fusable_prelu) is
     * one int8 layer in the per-tensor and per-channel schemes: the tensor between them gets no
     * parameters and the backends apply the slope to the accumulator. Power-of-two graphs never
     * fuse this way (the DPU's PReLU shares its input's grid, section 6). Recorded as
     * quant.fuse_prelu ("1" when fused, "0"). */
    bool no_fuse_prelu;
    /* The range the graph's outputs are clipped to by whatever reads them: output_lo <
     * output_hi, or both 0 (none: outputs are calibrated like any activation). An image
     * model's output, read as 8-bit pixels, is clipped to [0, 1] and rounded to multiples of
     * 1/255; the range [0, 1] gives the s8 output exactly that grid (scale 1/255, zero point
     * -128: code c is pixel value c + 128), so the int8 output adds no error the 8-bit image
     * does not have (docs/quantization.md section 23; pow2 can only take the smallest power of
     * two covering the range). It goes to the tensor whose parameters an output shares (through
     * relu, max pool, reshape, ...) and takes precedence over fixed_range. Recorded as
     * quant.output_range ("lo hi"). lo > hi, or one of them not finite: NNE_ERR_INVALID_ARG. */
    float output_lo, output_hi;
} nne_quantize_opts;

/* Quantize the f32 graph `g` (one f32 input, every op supported by cpu-s8: conv2d,
 * conv_transpose2d, dense, relu, relu6, leaky_relu, prelu, sigmoid, tanh, hardswish, GDN,
 * IGDN, max/avg pool, add, concat, reshape, flatten). Calibration runs `g` on cpu-ref
 * n_samples times. *out is a new inferred graph; g is unchanged (it is inferred if it was
 * not). Metadata is copied, plus quant.scheme, quant.observer, quant.samples,
 * quant.bias_correction, quant.weight_bits, quant.fuse_prelu, quant.output_range (when set)
 * and quant.equalize ("0", or "1" and quant.equalize_pairs). Errors name the node or tensor (unsupported op, non-finite weight,
 * accumulator bound exceeded). */
nne_status nne_quantize_graph(nne_graph *g, const nne_quantize_opts *o, nne_graph **out);

/* Apply the quantization of `q` (a graph from nne_quantize_graph) to the f32 graph `g`
 * with the same tensor and node names, e.g. the same model built for another input size:
 * every constant of the result is q's constant of the same name (data, dtype, quant), every
 * input and activation gets q's quantization. Nodes and shapes come from g. NNE_ERR_NOT_FOUND
 * names a tensor of g that q lacks; NNE_ERR_SHAPE a constant that differs in shape. */
nne_status nne_quantize_like(nne_graph *g, const nne_graph *q, nne_graph **out);

/* A copy of `g` in which every activation is also a graph output, so a session keeps all of
 * them alive after a run (calibration, per-layer debugging and tests); in an int8 graph, all
 * but the tensors between a conv and the PReLU fused into it (s8 without parameters), which
 * the backends never write. */
nne_status nne_graph_expose_activations(nne_graph *g, nne_graph **out);

/* ---- Lower-precision weight formats, simulated in f32 (accuracy studies) -------------------
 * QuTiBench's FP16 / INT4 / INT2 precisions (and INT8 weights alone) have no kernels here; a
 * model with its weights rounded to such a format, kept in f32, measures the quality cost
 * (docs/quantization.md, section 11 and "Results table"). */
typedef enum nne_wformat {
    NNE_WFORMAT_FP16 = 0, /* every constant rounded through IEEE binary16 */
    NNE_WFORMAT_INT8 = 1, /* conv / transposed-conv / dense weights, 8 bits per output channel */
    NNE_WFORMAT_INT4 = 2, /* ... 4 bits */
    NNE_WFORMAT_INT2 = 3, /* ... 2 bits (ternary) */
} nne_wformat;

/* "fp16", "int8", "int4", "int2"; NULL if invalid. */
const char *nne_wformat_name(nne_wformat f);
/* NNE_ERR_INVALID_ARG if the name is unknown. */
nne_status nne_wformat_from_name(const char *name, nne_wformat *f);

/* Round the constants of the f32 graph `g` to format f, in place (fake quantization: the
 * values stay f32): FP16 every constant (nne_fake_quantize_f16); INTn the weights (input 1)
 * of every conv2d, conv_transpose2d and dense with nne_fake_quantize_tensor(n bits, per
 * output channel, symmetric, scale max|w| / (2^(n-1) - 1)), everything else unchanged.
 * *storage_bytes (may be NULL) receives the size of every constant at its storage precision:
 * 2 bytes per value for FP16; for INTn ceil(numel * n / 8) per weight tensor plus 4 bytes per
 * value of the other constants (f32 PReLU slopes and GDN parameters, biases as int32 or f32);
 * per-channel scales are not counted, as the int8 models' weight bytes of nnedge info do not
 * count theirs. Sets the metadata quant.fake (the format's name) and quant.storage_bytes.
 * Errors: a constant that is not f32 (NNE_ERR_UNSUPPORTED, naming it), a non-finite weight
 * (NNE_ERR_INVALID_ARG). On error the constants may be partly rounded. */
nne_status nne_fake_quantize_weights(nne_graph *g, nne_wformat f, int64_t *storage_bytes);

#ifdef __cplusplus
}
#endif
#endif
