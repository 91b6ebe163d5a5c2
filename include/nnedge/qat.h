/* nnedge quantization-aware training (QAT) and knowledge distillation, on top of the
 * graph trainer (train.h). Semantics, the hand-off to the quantization pass and the
 * measured results: docs/quantization.md section 17 and docs/training.md.
 *
 * QAT simulates the int8 model of the quantization pass (docs/quantization.md, sections
 * 1-14) inside the f32 trainer, for any graph the trainer accepts:
 *  - weights of every conv2d / conv_transpose2d are fake-quantized with the scheme's scales
 *    (nne_weight_scales_s8, the pass's own rule) before each forward pass;
 *  - the graph input and every activation that the pass gives its own parameters (all but
 *    the outputs of relu / relu6 / max pooling / reshape / flatten, which share their input's)
 *    are fake-quantized with per-tensor s8 parameters from a range [lo, hi]
 *    (nne_qparams_from_range, the pass's rule), right after the node that produces them;
 *  - pow2 only: PReLU slopes are quantized with the pass's nne_quantize_slopes_pow2, and a
 *    PReLU output (which shares its input's parameters in pow2 graphs) is rounded to that
 *    input's grid, as cpu-s8 and dpu-sim compute it;
 *  - backward: straight-through estimator, the gradient passes where the unclamped code lies
 *    in the code range and is 0 where it saturates (weights: [-127, 127], or [-64, 64] for
 *    7-bit weights, nne_qat_config.weight_bits; activations [-128, 127]).
 * A conv2d / conv_transpose2d whose output only a PReLU reads (nne_graph_fusable_prelu) is one
 * int8 layer with it (per-tensor / per-channel, unless no_fuse_prelu): that tensor is not
 * fake-quantized.
 * Activation ranges come from calibration (nne_qat_ranges_from_quantized on the output of
 * nne_quantize_graph, or nne_qat_set_range) and stay fixed (ema = 0), or follow an
 * exponential moving average of each training batch's min/max (ema > 0). They are stored as
 * model metadata (qat.*), which is how they reach checkpoints and the quantization pass.
 */
#ifndef NNEDGE_QAT_H
#define NNEDGE_QAT_H

#include "nnedge/qops.h"
#include "nnedge/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Fake quantization with a straight-through estimator =========================== */

/* Per-tensor s8 activation fake quantization:
 *   y = scale * (clamp(R(x * (1/scale)) + zero_point, -128, 127) - zero_point)
 * with R exactly nne_quantize_value's (half even on the f32 product; pow2: half up), so y is
 * the dequantized code the cpu-s8 backend would hold. mask [count] (NULL to skip) receives 1
 * where R(x/scale) + zero_point lies in [-128, 127] (NaN counts as inside) and 0 where the
 * clamp saturates. y may alias x. */
void nne_fake_quant_act_forward(size_t count, const float *x, float scale, int32_t zero_point,
                                bool pow2, float *y, uint8_t *mask);

/* The straight-through estimator: dx = mask ? dy : 0. dx may alias dy. */
void nne_fake_quant_backward(size_t count, const uint8_t *mask, const float *dy, float *dx);

/* s8 weight fake quantization with the quantization pass's scales (nne_weight_scales_s8):
 * y = scale[g] * nne_quantize_value(w, scale[g], 0, -127, 127, pow2) per group g (the tensor,
 * or the output channel along axis 0 for per-channel). mask (NULL to skip) is 1 where
 * |R(w/scale)| <= 127 (0 only for the largest weights under a clipping pow2 position).
 * scale [1 or dim[0]] receives the scales (NULL to skip). y may alias w. Errors: a
 * non-finite weight (NNE_ERR_INVALID_ARG), NNE_ERR_NOMEM. */
nne_status nne_fake_quant_weight_forward(const nne_shape *shape, const float *w, nne_qscheme scheme,
                                         float *y, uint8_t *mask, float *scale);
/* The same for codes in [-qmax, qmax] (1..127) with the scales of nne_weight_scales_s8_qmax:
 * qmax 64 is the quantization pass's 7-bit weights (nne_quantize_opts.weight_bits = 7);
 * nne_fake_quant_weight_forward is qmax 127. */
nne_status nne_fake_quant_weight_forward_qmax(const nne_shape *shape, const float *w,
                                              nne_qscheme scheme, int32_t qmax, float *y,
                                              uint8_t *mask, float *scale);

/* ==== QAT state for a graph ========================================================== */

typedef struct nne_qat_config {
    nne_qscheme scheme;
    /* Activation ranges in training steps: 0 = fixed (set by calibration), else the EMA
     * averaging constant c in (0, 1]: lo += c (batch_min - lo), hi += c (batch_max - hi),
     * the first batch setting them when no range is set (PyTorch's
     * MovingAverageMinMaxObserver; 0.01 is its default). Evaluation never changes them. */
    float ema;
    /* Weight codes: 0 or 8 = [-127, 127], 7 = [-64, 64] (the pass's weight_bits 7, which the
     * AVX2 w7 kernels run exactly on vpmaddubsw; docs/quantization.md section 11). Other
     * values: NNE_ERR_INVALID_ARG. Stored as qat.weight_bits. */
    int32_t weight_bits;
    /* The nodes simulated in int8: NULL = every node; else a NULL-terminated list of node-name
     * prefixes, for a graph of which only some parts run in int8 (a learned codec's g_a and
     * g_s: nne_lcodec_int8_prefixes). Outside them nothing is fake-quantized; the region's
     * inputs from outside (its boundary) are quantized as a quantized part's inputs are,
     * and a boundary tensor that nodes outside also read is fake-quantized in a copy that
     * only the region's readers see (the others keep the f32 values, as in the deployed
     * model). The strings must outlive the QAT state; they are not stored in metadata. */
    const char *const *only;
    /* As nne_quantize_opts.no_fuse_prelu: false (the default) simulates each conv + PReLU pair
     * of nne_graph_fusable_prelu as the quantization pass builds it in the per-tensor and
     * per-channel schemes, one int8 layer, so the tensor between them is not fake-quantized;
     * true keeps it quantized (two roundings, the models of before the fusion). Stored as
     * qat.fuse_prelu ("1" / "0"); a model without the key was trained unfused. */
    bool no_fuse_prelu;
    /* Learned step sizes (LSQ, Esser et al. 2020): 0 = off (the ranges stay as set). > 0: the
     * scale s of every quantized activation but the graph input is trained, its zero point
     * kept: each training step (nne_trainer_step) moves log s by Adam (0.9, 0.999, 1e-8) at
     * the step's learning rate times `lsq`, on
     *   dL/d log s = s / sqrt(N * 127) * sum_i dL/dy_i * (y_i in range ? round(x_i/s) - x_i/s
     *                                                                  : y_i / s)
     * (y = the fake-quantized tensor of N elements, the clamp case being (q - z) of the clamped
     * code), and the range becomes [s (-128 - z), s (127 - z)]. Per-tensor and per-channel
     * schemes with fixed ranges (ema 0) only (pow2: NNE_ERR_UNSUPPORTED; ema > 0:
     * NNE_ERR_INVALID_ARG); tensors fake-quantized in a copy (cfg.only boundaries) keep theirs.
     * Stored as qat.lsq, with the Adam state as qat.lsq_t and qat.lsq_state.<tensor>, so that a
     * resumed run continues exactly. */
    float lsq;
    /* As nne_quantize_opts.output_lo / output_hi (both 0: none): the graph outputs produced by
     * simulated nodes (a codec's x_hat, not its likelihoods) are fake-quantized on [lo, hi]
     * (0, 1: the 8-bit pixel grid), held there through calibration, nne_qat_set_range (which
     * then leaves them as they are), loading, EMA and LSQ alike.
     * Stored as qat.output_range ("lo hi"); `nnedge quantize` of the model applies it. */
    float output_lo, output_hi;
} nne_qat_config;

typedef struct nne_qat nne_qat;

/* QAT state for the inferred f32 graph g (the trainer's graph): which tensors are
 * fake-quantized, their ranges (initially unset), buffers for the fake-quantized weights and
 * the STE masks (one byte per element of every quantized activation). g must outlive it.
 * Every simulated node (all, or those of c->only) needs an int8 kernel (NNE_ERR_UNSUPPORTED
 * naming it); c->only matching no node is NNE_ERR_NOT_FOUND. */
nne_status nne_qat_create(const nne_graph *g, const nne_qat_config *c, nne_qat **out);
void nne_qat_free(nne_qat *q);
const nne_qat_config *nne_qat_get_config(const nne_qat *q);

/* Number of quantized activations (graph input included), and the graph tensor of the i-th. */
int32_t nne_qat_num_activations(const nne_qat *q);
int32_t nne_qat_activation_tensor(const nne_qat *q, int32_t i);
/* Number of fake-quantized weight tensors (conv / transposed-conv weights; pow2 PReLU slopes),
 * and the graph tensor of the i-th (-1 out of range). */
int32_t nne_qat_num_weights(const nne_qat *q);
int32_t nne_qat_weight_tensor(const nne_qat *q, int32_t i);
/* True if node i of the graph is simulated in int8 (all nodes without c->only). */
bool nne_qat_node_simulated(const nne_qat *q, int32_t node);
/* The range of a quantized activation by tensor name: set (lo <= 0 <= hi after the usual
 * widening to include 0; finite; NNE_ERR_NOT_FOUND for a tensor that is not quantized) or get
 * (false if the tensor is not an activation or has no range yet; the output of a relu, relu6,
 * max pool, reshape or flatten gives the range of the tensor whose parameters it shares). */
nne_status nne_qat_set_range(nne_qat *q, const char *tensor, float lo, float hi);
bool nne_qat_get_range(const nne_qat *q, const char *tensor, float *lo, float *hi);
/* The int8 parameters of a quantized activation (nne_qparams_from_range of its range with
 * the scheme); false if it has no range. */
bool nne_qat_get_qparams(const nne_qat *q, const char *tensor, float *scale, int32_t *zero_point);

/* Ranges from a graph quantized by nne_quantize_graph (calibration with an observer): each
 * quantized activation gets the range whose parameters are the quantized tensor's own:
 * affine [s (-128 - z), s (127 - z)], pow2 [-127 s, 127 s] (so the pass's histogram choice
 * of the fixed-point position is kept). Tensors are matched by name; a missing or
 * unquantized one is NNE_ERR_NOT_FOUND. */
nne_status nne_qat_ranges_from_quantized(nne_qat *q, const nne_graph *quantized);
/* The same from several quantized graphs, e.g. the int8 parts nne_lcodec_quantize attaches to
 * a codec: each quantized activation takes its range from the first of parts[0, n) that has
 * a tensor of its name (NNE_ERR_NOT_FOUND if none has, or that one is not quantized per
 * tensor). */
nne_status nne_qat_ranges_from_parts(nne_qat *q, const nne_graph *const *parts, int32_t n);
/* Copy the ranges of every same-named quantized activation of src (e.g. the trainer's QAT
 * state into a QAT state for a validation graph built at another size). */
nne_status nne_qat_copy_ranges(nne_qat *dst, const nne_qat *src);

/* Metadata: qat.scheme (nne_qscheme_name spelling), qat.ema (%.9g), qat.weight_bits ("8" or
 * "7"; absent = 8, as in models from before it), qat.fuse_prelu ("1" or "0"; absent = 0, as in
 * models from before the fusion), and one
 * qat.range.<tensor> = "lo hi" (%.9g each, exact for f32) per activation with a range.
 * store replaces earlier qat.* keys of g; load reads the ranges of q's tensors from g (a
 * tensor without a key keeps its state) and checks qat.scheme, qat.weight_bits and
 * qat.fuse_prelu against q's. config_from_meta
 * gives the configuration of a graph's qat.* keys (*present = false without qat.scheme). */
nne_status nne_qat_store_meta(const nne_qat *q, nne_graph *g);
nne_status nne_qat_load_meta(nne_qat *q, const nne_graph *g);
nne_status nne_qat_config_from_meta(const nne_graph *g, nne_qat_config *c, bool *present);

/* LSQ (cfg.lsq > 0): the gradient dL/ds summed by the last backward pass for the scale of
 * activation `tensor` (before the 1/sqrt(N * 127) scaling; 0 if none), for tests and
 * diagnostics. */
double nne_qat_lsq_grad(const nne_qat *q, const char *tensor);

/* Attach q (built for the trainer's graph, or NULL to detach) to a trainer: from then on
 * every forward pass (step, grad, eval) runs the fake-quantized model and backward passes
 * apply the STE. Training steps update the ranges when q's ema > 0. A step or eval with an
 * activation that has no range fails (NNE_ERR_INVALID_ARG naming it) unless the step can set
 * it (ema > 0). q must outlive the trainer or be detached. */
nne_status nne_trainer_set_qat(nne_trainer *t, nne_qat *q);

/* ==== Knowledge distillation ========================================================== */

/* The loss with a teacher (Hinton et al. 2015, and the FPGA/SoC report's
 * `soft_target_loss_weight * soft + ce_loss_weight * label`):
 *   L = alpha * L_task(y, target) + (1 - alpha) * L_distill(y, y_teacher)
 *   NNE_DISTILL_OUTPUT (regression, e.g. an autoencoder's reconstruction): L_distill is the
 *     trainer's own task loss (MSE or 1 - MS-SSIM) against the teacher's output, so both
 *     terms have the same units; temperature must be 1 (it cancels: T^2 MSE(y/T, t/T) =
 *     MSE(y, t); docs/training.md).
 *   NNE_DISTILL_SOFTMAX (the output's last axis holds logits): L_distill =
 *     nne_distill_softmax_loss with the temperature.
 * Rate-distortion training (NNE_LOSS_RD) is not supported. */
typedef enum nne_distill_kind {
    NNE_DISTILL_OUTPUT = 0,
    NNE_DISTILL_SOFTMAX = 1,
} nne_distill_kind;

typedef struct nne_distill_config {
    nne_distill_kind kind;
    float alpha;       /* weight of the task loss, in [0, 1] */
    float temperature; /* > 0; 1 for NNE_DISTILL_OUTPUT */
} nne_distill_config;

/* T^2 * (1/rows) * sum_rows KL(softmax(t/T) || softmax(s/T)) over rows of `classes` logits,
 * in double. The report's form, -T^2/rows sum p_t log p_s, differs from it by the teacher's
 * entropy (a constant), so the gradient is the same:
 *   ds = T / rows * (softmax(s/T) - softmax(t/T))   (overwritten; NULL to skip). */
double nne_distill_softmax_loss(size_t rows, int32_t classes, const float *s, const float *t,
                                float temperature, float *ds);

/* Enable (c != NULL) or disable distillation. Errors: alpha outside [0, 1], temperature
 * <= 0 or != 1 for NNE_DISTILL_OUTPUT, the rate-distortion loss (NNE_ERR_UNSUPPORTED). */
nne_status nne_trainer_set_distill(nne_trainer *t, const nne_distill_config *c);
/* The teacher's output for the current batch [trainer output shape], read by every following
 * step / grad / eval until set again; it must be set when distillation is on. */
void nne_trainer_set_teacher_output(nne_trainer *t, const float *y_teacher);
/* The two terms of the last loss with distillation (task, distill; 0 without). */
void nne_trainer_last_distill(const nne_trainer *t, double *task, double *distill);

#ifdef __cplusplus
}
#endif
#endif
