/* nnedge reference kernels (f32). Plain, readable C: the oracle for every optimized kernel.
 *
 * Rules (see DESIGN.md / docs/ARCHITECTURE.md):
 *  - Kernels never allocate, never fail on valid arguments and never print. Shapes and
 *    parameters are validated by the graph layer (nne_graph_infer) before a kernel runs;
 *    kernels only assert programmer errors.
 *  - Activations are NHWC, contiguous. Conv weights are OHWI:
 *    w[oc][ky][kx][ic_in_group], with ic_in_group = ic / groups.
 *  - Naming: nne_<op>_<dtype>__<variant>, e.g. nne_conv2d_f32__ref.
 *  - Element-wise kernels allow y == x (in place).
 */
#ifndef NNEDGE_OPS_H
#define NNEDGE_OPS_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry of a 2-D convolution or transposed convolution, fully resolved (explicit
 * padding). Produced by nne_graph_infer from the node's parameters.
 *
 * conv2d:  out[oy] gathers in[oy*stride - pad_top + ky*dilation], ky in [0, kh).
 *          oh = (ih + pad_t + pad_b - dil_h*(kh-1) - 1) / stride_h + 1.
 * conv_transpose2d (PyTorch semantics): in[iy] scatters to out[iy*stride - pad_top + ky*dil].
 *          oh = (ih-1)*stride_h - pad_t - pad_b + dil_h*(kh-1) + out_pad_h + 1.
 *          Weights are OHWI with O = output channels, I = input channels / groups:
 *          w[oc][ky][kx][ic_in_group]. (PyTorch's (Cin, Cout/g, kh, kw) maps to it by
 *          regrouping; see scripts/gen_golden_ops.py.) */
typedef struct nne_conv2d_geom {
    int32_t n;          /* batch */
    int32_t ih, iw, ic; /* input NHWC */
    int32_t oh, ow, oc; /* output NHWC */
    int32_t kh, kw;     /* kernel */
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_t, pad_l, pad_b, pad_r; /* conv: zero padding; transpose: cropping */
    int32_t out_pad_h, out_pad_w;       /* transpose only: extra rows/cols at the end */
    int32_t groups;                     /* ic % groups == 0 && oc % groups == 0 */
} nne_conv2d_geom;

/* Output extent of one spatial axis; <= 0 means the geometry is invalid (callers check).
 * conv:       (in + pad_begin + pad_end - dil*(k-1) - 1) / stride + 1  (floor; negative
 *             numerators return 0 rather than rounding toward zero to 1).
 * transpose:  (in-1)*stride - pad_begin - pad_end + dil*(k-1) + out_pad + 1.
 * pool:       conv with dil = 1. Arithmetic is done in int64 and saturates to 0 on
 *             out-of-range results, so hostile shapes cannot overflow. */
static inline int32_t nne_conv_out_dim(int32_t in, int32_t k, int32_t stride, int32_t dil,
                                       int32_t pad_begin, int32_t pad_end) {
    if (in <= 0 || k <= 0 || stride <= 0 || dil <= 0 || pad_begin < 0 || pad_end < 0) return 0;
    int64_t span = (int64_t)in + pad_begin + pad_end - (int64_t)dil * (k - 1) - 1;
    if (span < 0) return 0;
    int64_t o = span / stride + 1;
    return o > INT32_MAX ? 0 : (int32_t)o;
}
static inline int32_t nne_conv_transpose_out_dim(int32_t in, int32_t k, int32_t stride, int32_t dil,
                                                 int32_t pad_begin, int32_t pad_end,
                                                 int32_t out_pad) {
    if (in <= 0 || k <= 0 || stride <= 0 || dil <= 0 || pad_begin < 0 || pad_end < 0 || out_pad < 0)
        return 0;
    int64_t o =
        ((int64_t)in - 1) * stride - pad_begin - pad_end + (int64_t)dil * (k - 1) + out_pad + 1;
    return o <= 0 || o > INT32_MAX ? 0 : (int32_t)o;
}

/* y[n][oh][ow][oc] = bias[oc] + sum w * x. bias may be NULL (zero).
 * Reference summation order (f32 accumulator, starting at 0): ky, then kx, then the input
 * channels of the group in increasing order; the bias is added last. Optimized kernels
 * may reorder and are compared within a tolerance (docs/ops.md). */
void nne_conv2d_f32__ref(const nne_conv2d_geom *g, const float *x, const float *w,
                         const float *bias, float *y);
void nne_conv_transpose2d_f32__ref(const nne_conv2d_geom *g, const float *x, const float *w,
                                   const float *bias, float *y);

/* Dense / fully connected: y[n][out] = bias[out] + sum_i w[out][i] * x[n][i]. bias may be NULL. */
void nne_dense_f32__ref(int32_t n, int32_t in, int32_t out, const float *x, const float *w,
                        const float *bias, float *y);

typedef enum nne_pool_kind { NNE_POOL_MAX = 0, NNE_POOL_AVG = 1 } nne_pool_kind;

/* 2-D pooling geometry; oh = floor((ih + pad_t + pad_b - kh) / stride_h) + 1 (no ceil mode).
 * Max pooling ignores padded positions. Average pooling divides by kh*kw when
 * count_include_pad, else by the number of in-image taps (PyTorch's two conventions). */
typedef struct nne_pool2d_geom {
    int32_t n, ih, iw, c, oh, ow;
    int32_t kh, kw, stride_h, stride_w;
    int32_t pad_t, pad_l, pad_b, pad_r;
    int32_t count_include_pad;
} nne_pool2d_geom;

/* Valid pooling geometry (asserted by the kernel): pad_t, pad_b < kh and pad_l, pad_r < kw,
 * so that every window holds at least one in-image tap. oh = nne_conv_out_dim(ih, kh,
 * stride_h, 1, pad_t, pad_b). */
void nne_pool2d_f32__ref(const nne_pool2d_geom *g, nne_pool_kind kind, const float *x, float *y);
/* [n][h][w][c] -> [n][1][1][c], mean over h*w. */
void nne_global_avgpool_f32__ref(int32_t n, int32_t h, int32_t w, int32_t c, const float *x,
                                 float *y);

/* Element-wise activations over `count` elements. */
void nne_relu_f32__ref(size_t count, const float *x, float *y);
void nne_relu6_f32__ref(size_t count, const float *x, float *y);
/* y = x >= 0 ? x : alpha * x */
void nne_leaky_relu_f32__ref(size_t count, float alpha, const float *x, float *y);
void nne_sigmoid_f32__ref(size_t count, const float *x, float *y);
void nne_tanh_f32__ref(size_t count, const float *x, float *y);
/* y = x * relu6(x + 3) / 6 */
void nne_hardswish_f32__ref(size_t count, const float *x, float *y);

/* PReLU over `pixels` rows of `c` channels: y = x >= 0 ? x : slope[ch] * x.
 * n_slope is 1 (shared) or c (per channel). */
void nne_prelu_f32__ref(size_t pixels, int32_t c, const float *x, const float *slope,
                        int32_t n_slope, float *y);

/* GDN (Balle et al. 2016) over `pixels` rows of `c` channels:
 *   GDN:  y[i] = x[i] / sqrt(beta[i] + sum_j gamma[i][j] * x[j]^2)
 *   IGDN: y[i] = x[i] * sqrt(beta[i] + sum_j gamma[i][j] * x[j]^2)
 * gamma is [c][c] row-major (row i = output channel). Not in place. */
void nne_gdn_f32__ref(size_t pixels, int32_t c, const float *x, const float *beta,
                      const float *gamma, bool inverse, float *y);

/* Inference batch norm: y = (x - mean[ch]) / sqrt(var[ch] + eps) * gamma[ch] + beta[ch]. */
void nne_batchnorm_f32__ref(size_t pixels, int32_t c, const float *x, const float *mean,
                            const float *var, const float *gamma, const float *beta, float eps,
                            float *y);

/* y = a + b, same shape. */
void nne_add_f32__ref(size_t count, const float *a, const float *b, float *y);

/* Concatenation along an axis, expressed as: `outer` blocks; input k contributes a
 * contiguous run of inner[k] elements to each block. For NHWC channel concat,
 * outer = N*H*W and inner[k] = C_k. */
void nne_concat_f32__ref(size_t outer, int32_t n_inputs, const float *const *xs,
                         const size_t *inner, float *y);

typedef enum nne_upsample_mode {
    NNE_UPSAMPLE_NEAREST = 0,
    NNE_UPSAMPLE_BILINEAR = 1
} nne_upsample_mode;

/* Upsample [n][ih][iw][c] -> [n][oh][ow][c] by integer factors oh = ih*sh, ow = iw*sw.
 * nearest: src = floor(dst / s). bilinear: PyTorch align_corners=False (half-pixel centers,
 * source coordinate clamped at 0 and at the edge). */
void nne_upsample_f32__ref(int32_t n, int32_t ih, int32_t iw, int32_t c, int32_t sh, int32_t sw,
                           nne_upsample_mode mode, const float *x, float *y);

/* Softmax over the innermost `cols` elements of each of `rows` rows (max-subtracted). */
void nne_softmax_f32__ref(size_t rows, int32_t cols, const float *x, float *y);

/* ---- Entropy models of the learned codecs (src/ops/entropy_model.c, docs/ops.md) ------ */

/* y = |x| (y may alias x). */
void nne_abs_f32__ref(size_t count, const float *x, float *y);
/* y = round(x - m) + m with m = means[i] (NULL: 0); round half away from zero (roundf).
 * This is the inference meaning of the quantize op; training replaces it (train.h). */
void nne_quantize_f32__ref(size_t count, const float *x, const float *means, float *y);

/* Factorized density (Balle et al. 2018, appendix 6.1; CompressAI's EntropyBottleneck with
 * filters (3, 3, 3)): one univariate cumulative c(v) = sigmoid(f(v)) per channel, with
 * f = f_3 . f_2 . f_1 . f_0 mapping 1 -> 3 -> 3 -> 3 -> 1 values:
 *   u_k = softplus(H_k) h_k + b_k;  h_{k+1} = u_k + tanh(a_k) * tanh(u_k) (k < 3);  f = u_3.
 * One channel's NNE_FACT_PARAMS parameters, in this order (row-major matrices [out][in]):
 *   H_0[3][1] H_1[3][3] H_2[3][3] H_3[1][3] | b_0[3] b_1[3] b_2[3] b_3[1] | a_0[3] a_1[3] a_2[3]
 * H is stored before the softplus (as CompressAI stores its matrices). The likelihood of an
 * integer-spaced value v is c(v + 0.5) - c(v - 0.5), computed as
 * |sigmoid(s f(v + 0.5)) - sigmoid(s f(v - 0.5))| with s = -1 if f(v - 0.5) + f(v + 0.5) > 0
 * else +1, which is the same number evaluated in the precise tail of the sigmoid. */
#define NNE_FACT_LAYERS 4
#define NNE_FACT_PARAMS 43
#define NNE_FACT_TRACE  9 /* pre-gating values u_0, u_1, u_2 (3 each) */
#define NNE_FACT_AUX    (2 + 2 * NNE_FACT_TRACE)
/* f(v) for one channel's parameters p [NNE_FACT_PARAMS]. trace (NULL: not wanted) receives
 * the NNE_FACT_TRACE pre-gating values the backward pass needs. */
float nne_factorized_logit(const float *p, float v, float *trace);
/* Backward of nne_factorized_logit: given dL/df, sets *dv = dL/dv (dv may be NULL) and
 * ACCUMULATES dL/dp into dp [NNE_FACT_PARAMS] (NULL: not wanted). */
void nne_factorized_logit_backward(const float *p, float v, const float *trace, float dlogit,
                                   float *dv, float *dp);
/* Likelihood of v (no lower bound). aux (NULL: not wanted) receives [NNE_FACT_AUX] values:
 * f(v - 0.5), f(v + 0.5) and both traces, for the backward pass (train.h). */
float nne_factorized_likelihood(const float *p, float v, float *aux);
/* The same three functions with the functions of the parameters alone (softplus(H), its
 * derivative sigmoid(H), tanh(a)) computed once per channel by nne_factorized_prepare
 * instead of once per call: bit for bit the same results, several times faster when a
 * channel has many elements (the trainer's kernels, train.h). */
typedef struct nne_fact_prep {
    float sp[24];  /* softplus of H_0..H_3 (offsets 0..23 of the parameters) */
    float sig[24]; /* sigmoid of H_0..H_3: d softplus / dH */
    float ta[9];   /* tanh of a_0..a_2 */
} nne_fact_prep;
void nne_factorized_prepare(const float *p, nne_fact_prep *q);
/* Kernels prepare channels in blocks of NNE_FACT_BLOCK: q[k] for channel c0 + k of
 * params [c][NNE_FACT_PARAMS], k < min(NNE_FACT_BLOCK, c - c0), which it returns. */
#define NNE_FACT_BLOCK 16
int32_t nne_factorized_prepare_block(const float *params, int32_t c, int32_t c0,
                                     nne_fact_prep q[NNE_FACT_BLOCK]);
float nne_factorized_logit_prep(const float *p, const nne_fact_prep *q, float v, float *trace);
void nne_factorized_logit_backward_prep(const float *p, const nne_fact_prep *q, float v,
                                        const float *trace, float dlogit, float *dv, float *dp);
float nne_factorized_likelihood_prep(const float *p, const nne_fact_prep *q, float v, float *aux);
/* x, y [pixels][c]; params [c][NNE_FACT_PARAMS]; y = max(likelihood, lik_min). */
void nne_factorized_likelihood_f32__ref(size_t pixels, int32_t c, const float *x,
                                        const float *params, float lik_min, float *y);

/* Discretized Gaussian of the scale hyperprior (Balle et al. 2018): with s = max(scale,
 * scale_min) and v = |x - mean|, P = Phi((0.5 - v) / s) - Phi((-0.5 - v) / s), in double. */
float nne_gaussian_likelihood(float x, float scale, float mean, float scale_min);
/* x, scales, means, y [count]; means may be NULL (0); y = max(P, lik_min). */
void nne_gaussian_likelihood_f32__ref(size_t count, const float *x, const float *scales,
                                      const float *means, float scale_min, float lik_min,
                                      float *y);

#ifdef __cplusplus
}
#endif
#endif
