/* Private helpers shared by the f32 and int8 kernels of the ops module. */
#ifndef NNE_OPS_INTERNAL_H
#define NNE_OPS_INTERNAL_H

#include "nnedge/ops.h"

/* Transposed convolution, gather form: the input coordinate feeding output coordinate `o`
 * through tap `k`, or -1 if none (in[i] scatters to out[i*stride - pad + k*dil]). */
static inline int32_t nne_tconv_src(int32_t o, int32_t k, int32_t stride, int32_t dil,
                                    int32_t pad, int32_t in) {
    const int32_t t = o + pad - k * dil; /* = i * stride for the contributing input i */
    if (t < 0 || t % stride != 0) return -1;
    const int32_t i = t / stride;
    return i < in ? i : -1;
}

/* Convolution: the input coordinate read by output coordinate `o` through tap `k`, or -1 for
 * padding. */
static inline int32_t nne_conv_src(int32_t o, int32_t k, int32_t stride, int32_t dil, int32_t pad,
                                   int32_t in) {
    const int32_t i = o * stride - pad + k * dil;
    return i >= 0 && i < in ? i : -1;
}

/* Pooling: the window of output coordinate `o` clipped to the image, [*lo, *hi). Non-empty
 * for a valid geometry (pad < k). */
static inline void nne_pool_span(int32_t o, int32_t stride, int32_t pad, int32_t k, int32_t in,
                                 int32_t *lo, int32_t *hi) {
    const int32_t w0 = o * stride - pad;
    *lo = w0 < 0 ? 0 : w0;
    *hi = w0 + k > in ? in : w0 + k;
}

#endif
