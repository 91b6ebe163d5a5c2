/* nnedge int8 reference kernels and quantization helpers.
 *
 * The semantics (zero points, requantization, rounding, saturation, accumulator bounds) are
 * specified in docs/quantization.md; these kernels implement it literally and every optimized
 * int8 kernel must be bit-exact with them. Rules as in ops.h: kernels never allocate, never
 * fail on valid arguments (asserts only for programmer errors), never print; activations are
 * NHWC, weights OHWI ([out][in] for dense), and the f32 geometry structs are reused.
 *
 * Storage: every kernel takes s8 codes. A u8 tensor is the same tensor after flipping the
 * top bit (q_s8 = q_u8 - 128, z_s8 = z_u8 - 128; nne_convert_u8_s8__ref). Weights are
 * symmetric (zero point 0), per tensor or per output channel. Activations are per tensor with
 * a zero point in [-128, 127].
 *
 * Typical use by a backend, once per node at compile time and then per run:
 *     nne_requant rq[oc];
 *     nne_qoutput out;
 *     nne_qoutput_from_quant(&out, rq, oc, &x->quant, &w->quant, &y->quant, NNE_QACT_RELU);
 *     nne_conv2d_s8__ref(&geom, x, x->quant.zero_point[0], w, bias, &out, y);
 */
#ifndef NNEDGE_QOPS_H
#define NNEDGE_QOPS_H

#include "nnedge/common.h"
#include "nnedge/ops.h"
#include "nnedge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Requantization (docs/quantization.md, section 4) ---------------------------------- */

/* How an int32 is rescaled. */
typedef enum nne_rq_mode {
    NNE_RQ_Q31 = 0,  /* general: Q31 mantissa + shift, gemmlowp rounding (SRDHM + RDBP) */
    NNE_RQ_POW2 = 1, /* power-of-two scales (DPU): shift only, round half up */
} nne_rq_mode;

/* A real multiplier M.
 *   NNE_RQ_Q31:  M = multiplier * 2^-31 * 2^-shift, multiplier in [2^30, 2^31) (positive M),
 *                (-2^31, -2^30] (negative M, PReLU slopes) or 0 (M = 0).
 *   NNE_RQ_POW2: M = 2^-shift; multiplier is unused (0).
 * shift > 0 is a right shift, shift < 0 a left shift; |shift| <= 31. */
typedef struct nne_requant {
    int32_t multiplier;
    int32_t shift;
} nne_requant;

#define NNE_REQUANT_SHIFT_MAX 31

/* Saturate an int64 to int32. */
static inline int32_t nne_sat_s32(int64_t v) {
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* gemmlowp SaturatingRoundingDoublingHighMul: floor(a * b / 2^31 + 1/2), i.e. the high half
 * of 2*a*b rounded to nearest with ties toward +inf. Exact in int64; saturates the single
 * overflowing case a == b == INT32_MIN. */
static inline int32_t nne_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    const int64_t ab = (int64_t)a * b; /* |ab| <= 2^62 */
    const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates toward 0 */
}

/* gemmlowp RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero; e in [0, 31]. */
static inline int32_t nne_rdbp(int32_t x, int32_t e) {
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) +
           (remainder > threshold ? 1 : 0); /* >> of a negative: arithmetic (GCC/Clang) */
}

/* THE requantization primitive: acc * M rounded as documented for `mode`, as int32 (no zero
 * point, no clamp). Every int8 kernel goes through it. */
static inline int32_t nne_requantize(int32_t acc, nne_requant rq, nne_rq_mode mode) {
    const int32_t s = rq.shift;
    if (mode == NNE_RQ_POW2) {
        if (s > 0) return (int32_t)(((int64_t)acc + ((int64_t)1 << (s - 1))) >> s); /* half up */
        return s == 0 ? acc : nne_sat_s32((int64_t)acc * ((int64_t)1 << -s));
    }
    const int32_t a = s < 0 ? nne_sat_s32((int64_t)acc * ((int64_t)1 << -s)) : acc;
    const int32_t h = nne_srdhm(a, rq.multiplier);
    return s > 0 ? nne_rdbp(h, s) : h;
}

/* The multiplier 1, exact in both modes ({2^30, -1} in Q31, shift 0 in pow2). */
nne_requant nne_requant_identity(nne_rq_mode mode);

/* Q31 mantissa and shift of a real multiplier (docs/quantization.md, 4.3). M = 0 and
 * |M| < 2^-32 give {0, 0}. NNE_ERR_INVALID_ARG if M is not finite or |M| >= 2^31. */
nne_status nne_quant_multiplier_from_scale(double real_multiplier, nne_requant *rq);

/* Fixed-point position fp of a power-of-two scale, scale = 2^-fp (any finite positive f32
 * power of two, fp in [-127, 149]). NNE_ERR_INVALID_ARG if scale is not one. */
nne_status nne_quant_pow2_shift(float scale, int32_t *fp);

/* ---- Output stage (docs/quantization.md, section 5) ------------------------------------ */

/* Fused activation of an output stage. */
typedef enum nne_qact { NNE_QACT_NONE = 0, NNE_QACT_RELU = 1, NNE_QACT_RELU6 = 2 } nne_qact;

/* Rescale + zero point + clamp applied to every int32 accumulator of a kernel:
 *   y = clamp(nne_requantize(acc, rq[count == 1 ? 0 : ch], mode) + zero_point,
 *             act_min, act_max)
 * with rq_neg[neg_count == 1 ? 0 : ch] in place of rq[...] when rq_neg is set and acc < 0
 * (a fused PReLU). rq and rq_neg are caller-owned storage (the struct does not own them).
 * Zero-initialized trailing members mean no fusion, so positional initializers of the first
 * six members stay valid. */
typedef struct nne_qoutput {
    nne_rq_mode mode;
    int32_t count;         /* 1 (per tensor) or the number of output channels */
    const nne_requant *rq; /* [count] */
    int32_t zero_point;    /* output zero point, [-128, 127] */
    int32_t act_min;       /* clamp, -128 <= act_min <= act_max <= 127 */
    int32_t act_max;
    /* Fused PReLU / leaky ReLU (docs/quantization.md, 5): NULL = none. An accumulator < 0 is
     * requantized with rq_neg[neg_count == 1 ? 0 : ch] instead of rq[...]: M_neg = slope * M,
     * so y = clamp(R(acc * M * (acc < 0 ? slope : 1)) + zero_point): one rounding of the real
     * PReLU output. Q31 mode only. */
    const nne_requant *rq_neg;
    int32_t neg_count; /* 1, or the number of output channels */
} nne_qoutput;

/* The output stage for channel ch. acc is the full accumulator (bias included): M > 0, so
 * its sign is the sign of the real output, the PReLU's test. */
static inline int8_t nne_qoutput_apply(const nne_qoutput *o, int32_t ch, int32_t acc) {
    const nne_requant rq = o->rq_neg && acc < 0 ? o->rq_neg[o->neg_count == 1 ? 0 : ch]
                                                : o->rq[o->count == 1 ? 0 : ch];
    const int64_t r = (int64_t)nne_requantize(acc, rq, o->mode) +
                      o->zero_point; /* int64: r may be near INT32_MAX */
    return (int8_t)(r < o->act_min ? o->act_min : r > o->act_max ? o->act_max : r);
}

/* Clamp range of a fused activation for an s8 output with (scale, zero_point): none
 * [-128, 127], ReLU [zp, 127], ReLU6 [zp, min(127, Q(6))] (Q = nne_quantize_value). A zero
 * point outside [-128, 127] is a programmer error. */
void nne_qact_range(nne_qact act, float y_scale, int32_t y_zero_point, bool pow2, int32_t *lo,
                    int32_t *hi);

/* Fill an output stage from raw scales, M[c] = x_scale * w_scale[c] / y_scale.
 *   rq         caller storage of `count` entries; out->rq points to it
 *   count      1, or the number of output channels (per-channel weights)
 *   w_scale    [count] weight scales, or NULL when the layer has no weights (M = x/y)
 *   pow2       every scale is a power of two: NNE_RQ_POW2 with shift = fx + fw - fy;
 *              NNE_ERR_INVALID_ARG if one is not
 * Errors: NNE_ERR_INVALID_ARG for non-positive/non-finite scales, a zero point outside
 * [-128, 127], a multiplier out of range. */
nne_status nne_qoutput_init(nne_qoutput *out, nne_requant *rq, int32_t count, float x_scale,
                            const float *w_scale, float y_scale, int32_t y_zero_point, bool pow2,
                            nne_qact act);

/* The same from a graph's quantization parameters: x and y per tensor, w (or NULL) per tensor
 * or along axis 0 with zero points 0. Per-tensor weights give count 1; per-channel weights
 * need rq_capacity >= w->count. Pow2 mode iff x, y (and w) are all marked pow2. */
nne_status nne_qoutput_from_quant(nne_qoutput *out, nne_requant *rq, int32_t rq_capacity,
                                  const nne_quant *x, const nne_quant *w, const nne_quant *y,
                                  nne_qact act);

/* Fuse a PReLU (n_slope = count: per channel) or leaky ReLU / shared-slope PReLU (n_slope = 1)
 * into an output stage made by nne_qoutput_init / nne_qoutput_from_quant with the same scales:
 *   rq_neg[c] = Q31(slope[c] * x_scale * w_scale[c] / y_scale)   (nne_quant_multiplier_from_scale)
 * for c < count, count = max(out->count, n_slope), where out->count and n_slope are each 1 or
 * count; w_scale has out->count entries (NULL: 1, a layer without weights). Slopes may be
 * negative or zero (zero gives {0, 0}: y = zero_point for acc < 0). out->rq_neg = rq_neg,
 * out->neg_count = count. Errors: NNE_ERR_UNSUPPORTED in pow2 mode (out->mode == NNE_RQ_POW2),
 * NNE_ERR_INVALID_ARG for non-finite slopes, bad counts, or a clamp narrower than [-128, 127]
 * on out (a fused ReLU/ReLU6 and a PReLU do not combine). out is unchanged on error. */
nne_status nne_qoutput_fuse_prelu(nne_qoutput *out, nne_requant *rq_neg, int32_t count,
                                  float x_scale, const float *w_scale, float y_scale,
                                  const float *slope, int32_t n_slope);

/* int32 accumulator bound of a MAC layer with k taps: k * 255 * 128 + max|bias|, for x and
 * zero points in [-128, 127] and |w| <= 128. The layer is safe iff it is <= INT32_MAX. */
static inline int64_t nne_s8_acc_bound(int64_t k, int64_t max_abs_bias) {
    return k * 255 * 128 + max_abs_bias;
}
/* Largest k with nne_s8_acc_bound(k, 0) <= INT32_MAX; kernels assert k <= this. */
#define NNE_S8_MAX_K 65793

/* ---- Float <-> int ------------------------------------------------------------------------ */

/* THE scalar quantizer: clamp(R(x * (1/scale)) + zero_point, qmin, qmax), R = round half even
 * on the f32 product (PyTorch fake quantization), or round half up when pow2 (DPU). NaN gives
 * zero_point (clamped). scale > 0. */
int32_t nne_quantize_value(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                           bool pow2);

/* Per-tensor quantize / dequantize of `count` elements (pow2 picks the rounding as above). */
void nne_quantize_f32_s8__ref(size_t count, const float *x, float scale, int32_t zero_point,
                              bool pow2, int8_t *y);
void nne_quantize_f32_u8__ref(size_t count, const float *x, float scale, int32_t zero_point,
                              bool pow2, uint8_t *y);
/* y = (float)(q - zero_point) * scale */
void nne_dequantize_s8_f32__ref(size_t count, const int8_t *x, float scale, int32_t zero_point,
                                float *y);
void nne_dequantize_u8_f32__ref(size_t count, const uint8_t *x, float scale, int32_t zero_point,
                                float *y);
/* u8 <-> s8 re-encoding: y = x ^ 0x80 (q_s8 = q_u8 - 128, zero points shift by 128). */
void nne_convert_u8_s8__ref(size_t count, const uint8_t *x, int8_t *y);
void nne_convert_s8_u8__ref(size_t count, const int8_t *x, uint8_t *y);

/* int32 bias at scale x_scale * w_scale[c]: q[c] = clamp(R(b[c] / (x_scale * w_scale[c])))
 * in double (R as nne_quantize_value), saturated to int32. w_count is 1 or n. */
void nne_quantize_bias_s32(int32_t n, const float *bias, float x_scale, const float *w_scale,
                           int32_t w_count, bool pow2, int32_t *q);

/* ---- Weight quantization (docs/quantization.md, section 11) --------------------------------
 * Symmetric, narrow range: a group (the whole tensor, or one index along axis 0 = the output
 * channel of OHWI / [out][in] weights) with A = max|w| gets
 *   general: scale = A / qmax
 *   pow2:    scale = 2^-fp with the largest fp such that R(A * 2^fp) <= qmax
 * with qmax = 2^(bits-1) - 1 (127 for int8, 7 for int4, 1 for int2); an all-zero group gets
 * scale 1. Codes are nne_quantize_value(w, scale, 0, -qmax, qmax, pow2). */

/* w [shape] f32 -> q [shape] s8 codes, and quant (set with nne_quant_set: axis -1 / count 1
 * or axis 0 / count dim[0], zero points 0, pow2 flag). NNE_ERR_INVALID_ARG for a non-finite
 * weight or a scalar shape with per_channel; NNE_ERR_NOMEM if quant cannot be allocated. */
nne_status nne_quantize_tensor_s8(const nne_shape *shape, const float *w, bool per_channel,
                                  bool pow2, int8_t *q, nne_quant *quant);
/* q [shape] s8 -> w [shape] f32 with quant per tensor or along any axis:
 * w = (float)(q - zero_point[i]) * scale[i]. NNE_ERR_SHAPE if quant does not fit the shape. */
nne_status nne_dequantize_tensor_s8(const nne_shape *shape, const int8_t *q, const nne_quant *quant,
                                    float *w);
/* The int8 schemes of the quantization pass and of quantization-aware training
 * (docs/quantization.md, sections 11, 14 and 17). */
typedef enum nne_qscheme {
    NNE_QSCHEME_PER_TENSOR = 0,  /* weights one scale per tensor, affine activations */
    NNE_QSCHEME_PER_CHANNEL = 1, /* weights one scale per output channel, affine activations */
    NNE_QSCHEME_POW2 = 2,        /* DPU: every scale 2^-fp, zero points 0, per-tensor weights */
} nne_qscheme;
/* "per-tensor", "per-channel", "pow2"; NULL if invalid. */
const char *nne_qscheme_name(nne_qscheme s);
nne_status nne_qscheme_from_name(const char *name, nne_qscheme *s);

/* The int8 weight scales of a scheme: THE rule of the quantization pass, shared with
 * quantization-aware training so that both give the same codes for the same weights.
 *   per-tensor / per-channel: the section 11 rule above (scale = max|w| / 127 per group);
 *   pow2: one scale per tensor, 2^-fp with fp among fp0 .. fp0 + 3 (fp0: the section 11 rule,
 *         no clipping) minimizing sum (w - scale * code)^2, the first on ties (as the Vitis AI
 *         quantizer; the finer positions clip the largest weights).
 * scale receives 1 (per-tensor, pow2) or dim[0] (per-channel) scales. Codes are then
 * nne_quantize_value(w, scale, 0, -127, 127, scheme == NNE_QSCHEME_POW2).
 * Errors as nne_quantize_tensor_s8. */
nne_status nne_weight_scales_s8(const nne_shape *shape, const float *w, nne_qscheme scheme,
                                float *scale);
/* The same rule for codes within [-qmax, qmax] (1..127; nne_weight_scales_s8 is qmax 127):
 * qmax 64 gives the "7-bit" weights the exact vpmaddubsw kernel runs (docs/conv.md,
 * nne_quantize_opts.weight_bits). Codes are nne_quantize_value(w, scale, 0, -qmax, qmax, pow2). */
nne_status nne_weight_scales_s8_qmax(const nne_shape *shape, const float *w, nne_qscheme scheme,
                                     int32_t qmax, float *scale);

/* s8 activation parameters for a range (docs/quantization.md, "The quantization pass"):
 *   affine:    scale = (hi - lo) / 255, zero_point = -128 - round(lo / scale), clamped;
 *   symmetric: scale = max(|lo|, |hi|) / 127, zero_point = 0;
 *   pow2:      scale = 2^-fp with zero_point 0, fp the largest with round_half_up(A 2^fp) <= 127,
 *              A = max(|lo|, |hi|).
 * lo is raised to 0 and hi lowered to 0 first (0 is always representable). An empty range
 * [0, 0] gives scale 1 (pow2: 2^0). */
void nne_qparams_from_range(float lo, float hi, bool symmetric, bool pow2, float *scale,
                            int32_t *zero_point);

/* Fake quantization (quantize, then dequantize) to `bits` in [2, 8] with the rules above:
 * y = scale * code. bits = 8 equals nne_quantize_tensor_s8 + nne_dequantize_tensor_s8 bit for
 * bit; 4 and 2 are QuTiBench's INT4 / INT2 (int2 is ternary {-scale, 0, scale}). y may alias w.
 * scale [1 or dim[0]] receives the scales (may be NULL). Errors as nne_quantize_tensor_s8. */
nne_status nne_fake_quantize_tensor(const nne_shape *shape, const float *w, int bits,
                                    bool per_channel, bool pow2, float *y, float *scale);
/* FP16 round trip of f32 values (storage precision; round to nearest even, overflow to inf):
 * y = f16_to_f32(f32_to_f16(x)). y may alias x. */
void nne_fake_quantize_f16(size_t count, const float *x, float *y);

/* ---- MAC layers (docs/quantization.md, section 3) ----------------------------------------
 * acc[o] = bias[o] + sum (x - x_zero_point) * w over the taps; padding / missing taps add 0.
 * bias: [oc] int32 at scale s_x * s_w[o], or NULL. out: count 1 or oc.
 * Precondition (the graph checks it): nne_s8_acc_bound(K, max|bias|) <= INT32_MAX with
 * K = kh*kw*ic/groups (dense: in); kernels assert K <= NNE_S8_MAX_K. */

/* Convolution, geometry and layouts as nne_conv2d_f32__ref (groups, stride, dilation,
 * asymmetric padding). x [n][ih][iw][ic], w [oc][kh][kw][ic/groups], y [n][oh][ow][oc]. */
void nne_conv2d_s8__ref(const nne_conv2d_geom *g, const int8_t *x, int32_t x_zero_point,
                        const int8_t *w, const int32_t *bias, const nne_qoutput *out, int8_t *y);
/* Transposed convolution, geometry and layouts as nne_conv_transpose2d_f32__ref. */
void nne_conv_transpose2d_s8__ref(const nne_conv2d_geom *g, const int8_t *x, int32_t x_zero_point,
                                  const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                                  int8_t *y);
/* Dense: x [n][in], w [out][in], y [n][out]. */
void nne_dense_s8__ref(int32_t n, int32_t in, int32_t out, const int8_t *x, int32_t x_zero_point,
                       const int8_t *w, const int32_t *bias, const nne_qoutput *o, int8_t *y);

/* Standalone output stage: acc [pixels][c] int32 -> y [pixels][c] s8 (out->count 1 or c).
 * For backends that compute accumulators elsewhere (GEMM) and for tests. */
void nne_requantize_s32_s8__ref(size_t pixels, int32_t c, const int32_t *acc,
                                const nne_qoutput *out, int8_t *y);
/* Fraction bits a Q31 output stage gives a bare s8 difference v = x - z_x (|v| <= 255)
 * before requantizing (PReLU, rescale, concat, pooling): nne_requantize rounds twice (SRDHM,
 * then the final shift; docs/quantization.md 4.2), which on a bare v with a shift of 1 or
 * more (a multiplier below 1/2) leaves ties that the shift rounds away from zero: off by one
 * code in up to a tenth of the outputs, a bias. With v * 2^16 and a multiplier 2^16 times
 * smaller the first rounding is 2^16 times finer, so the result is v * M rounded once
 * (section 6). */
#define NNE_Q31_DIFF_FRAC 16

/* Output stage for rescaling a bare difference v = x - z_x (count 1) from x_scale to
 * (y_scale, y_zero_point), and the integer factor *mul that v is multiplied by first:
 *   Q31:  *mul = 2^NNE_Q31_DIFF_FRAC, M = x/y * 2^-FRAC (one rounding of v * x/y);
 *   pow2: *mul = 1, M = x/y (a shift: one rounding, half up).
 * y = out->apply(v * *mul); |v * *mul| <= 255 * 2^16. Errors as nne_qoutput_init. */
nne_status nne_qrescale_init(nne_qoutput *out, nne_requant *rq, float x_scale, float y_scale,
                             int32_t y_zero_point, bool pow2, int32_t *mul);
/* Rescale an s8 tensor to other parameters: y = out((x - x_zero_point) * mul), out->count 1,
 * out and mul from nne_qrescale_init. y may alias x. */
void nne_rescale_s8__ref(size_t count, const int8_t *x, int32_t x_zero_point,
                         const nne_qoutput *out, int32_t mul, int8_t *y);

/* ---- Pooling (docs/quantization.md, section 7) ---------------------------------------------
 * Geometry as nne_pool2d_f32__ref; out and mul from nne_qrescale_init. max: y = out((max(x) -
 * x_zp) * mul); avg: y = out(a) with a = round_half_away(sum(x - x_zp) * mul / divisor)
 * (int64). out->count == 1. Asserts kh*kw <= 8421504. */
void nne_pool2d_s8__ref(const nne_pool2d_geom *g, nne_pool_kind kind, const int8_t *x,
                        int32_t x_zero_point, const nne_qoutput *out, int32_t mul, int8_t *y);

/* ---- add, concat (docs/quantization.md, section 8) ---------------------------------------- */

/* Parameters of an int8 add: t = rq(a - a_zp, a_rq) + rq(b - b_zp, b_rq) (exact int32),
 * y = clamp(rq(t, y_rq) + y_zp, act_min, act_max). Built by nne_qadd_init. */
typedef struct nne_qadd {
    nne_rq_mode mode;
    int32_t a_zero_point, b_zero_point, y_zero_point;
    nne_requant a_rq, b_rq, y_rq;
    int32_t act_min, act_max;
} nne_qadd;

/* Derive nne_qadd from the three tensors' scales and zero points (F = 20 extra fraction
 * bits in Q31 mode; exact alignment in pow2 mode). Errors as nne_qoutput_init. */
nne_status nne_qadd_init(nne_qadd *p, float a_scale, int32_t a_zero_point, float b_scale,
                         int32_t b_zero_point, float y_scale, int32_t y_zero_point, bool pow2,
                         nne_qact act);
/* y = a + b element-wise, same shape; y may alias a and/or b. */
void nne_add_s8__ref(size_t count, const int8_t *a, const int8_t *b, const nne_qadd *p, int8_t *y);

/* Concatenation, layout as nne_concat_f32__ref (outer blocks, input k contributes inner[k]
 * elements per block). Input k is rescaled with outs[k] (count 1; all outs share mode, zero
 * point and clamp; from nne_qrescale_init, which gives them all the same mul):
 * y = outs[k]((x_k - x_zero_points[k]) * mul). y must not alias an input. */
void nne_concat_s8__ref(size_t outer, int32_t n_inputs, const int8_t *const *xs,
                        const size_t *inner, const int32_t *x_zero_points, const nne_qoutput *outs,
                        int32_t mul, int8_t *y);

/* ---- Activations (docs/quantization.md, section 6) ----------------------------------------- */

/* y = clamp(x, lo, hi): ReLU / ReLU6 with nne_qact_range limits. y may alias x. */
void nne_clamp_s8__ref(size_t count, const int8_t *x, int32_t lo, int32_t hi, int8_t *y);

/* PReLU / leaky ReLU over x, y [pixels][c]: v = x - x_zp;
 *   y = v >= 0 ? pos(v * pos_mul) : neg(v * neg_slope[k], k)    k = neg->count == 1 ? 0 : ch
 * pos->count == 1; neg->count 1 (leaky) or c (per-channel slopes); both share zero point and
 * clamp. pos_mul and neg_slope [neg->count] are the integer factors from nne_qprelu_init
 * (Q31: 2^NNE_Q31_DIFF_FRAC, pow2: 1 and the slope codes); |v * factor| <= 255 * 2^16.
 * y may alias x. */
void nne_prelu_s8__ref(size_t pixels, int32_t c, const int8_t *x, int32_t x_zero_point,
                       const nne_qoutput *pos, int32_t pos_mul, const nne_qoutput *neg,
                       const int32_t *neg_slope, int8_t *y);
/* Output stages of a PReLU (n_slope 1 or c entries of neg_rq and neg_slope; section 6):
 *   Q31:  *pos_mul = neg_slope[i] = 2^NNE_Q31_DIFF_FRAC, M_pos = x/y * 2^-FRAC,
 *         M_neg[i] = slope[i] * x/y * 2^-FRAC (any finite slope);
 *   pow2: *pos_mul = 1, M_pos = x/y, slope[i] = a * 2^-k exactly with |a| <= 127
 *         (nne_slope_pow2; zero and negative slopes included): neg_slope[i] = a,
 *         M_neg[i] = 2^-k * x/y. Any other slope is NNE_ERR_UNSUPPORTED (quantize it with
 *         nne_quantize_slopes_pow2). */
nne_status nne_qprelu_init(nne_qoutput *pos, nne_requant *pos_rq, int32_t *pos_mul,
                           nne_qoutput *neg, nne_requant *neg_rq, int32_t *neg_slope,
                           float x_scale, const float *slope, int32_t n_slope, float y_scale,
                           int32_t y_zero_point, bool pow2);
/* A slope as an integer slope at a power of two, as pow2 PReLU and the DPU use it:
 * slope = code * 2^-k exactly, code odd with |code| <= 127 (slope 0: code 0, k 0). false
 * (outputs untouched) for a non-finite slope or one that needs more than 7 bits. */
bool nne_slope_pow2(float slope, int32_t *code, int32_t *k);
/* The pow2 scheme's rule for the slopes of one PReLU (n values) or a leaky ReLU (n = 1),
 * section 6: int8 codes at one fixed-point position fa per layer, the pow2 weight rule of
 * section 11: fa is the largest with round_half_up(max|slope| * 2^fa) <= 127 (all zero:
 * fa = 0), out[i] = 2^-fa * nne_quantize_value(slope[i], 2^-fa, 0, -127, 127, true) (exact in
 * f32, so every out[i] passes nne_slope_pow2). out may alias slope; fa may be NULL.
 * NNE_ERR_INVALID_ARG for a non-finite slope or n < 1. */
nne_status nne_quantize_slopes_pow2(int32_t n, const float *slope, float *out, int32_t *fa);

/* An f32 element-wise kernel (nne_sigmoid_f32__ref, nne_hardswish_f32__ref, ...). */
typedef void (*nne_unary_f32_fn)(size_t count, const float *x, float *y);
/* table[q + 128] = Q_y(f(x_scale * (q - x_zp))) for q in [-128, 127], by running f on the 256
 * dequantized codes and quantizing with nne_quantize_value. */
void nne_lut_s8_build(nne_unary_f32_fn f, float x_scale, int32_t x_zero_point, float y_scale,
                      int32_t y_zero_point, bool pow2, int8_t table[256]);
/* y[i] = table[x[i] + 128]. y may alias x. */
void nne_lut_s8__ref(size_t count, const int8_t table[256], const int8_t *x, int8_t *y);

/* GDN / IGDN in f32 between int8 tensors (docs/quantization.md, section 9): per pixel,
 * dequantize c values, nne_gdn_f32__ref, quantize (rounding per y_pow2, as
 * nne_quantize_value). x, y [pixels][c], not aliased; scratch of nne_gdn_s8_scratch_size(c)
 * bytes, float-aligned. */
size_t nne_gdn_s8_scratch_size(int32_t c);
void nne_gdn_s8__ref(size_t pixels, int32_t c, const int8_t *x, float x_scale, int32_t x_zero_point,
                     const float *beta, const float *gamma, bool inverse, float y_scale,
                     int32_t y_zero_point, bool y_pow2, void *scratch, int8_t *y);

#ifdef __cplusplus
}
#endif
#endif
