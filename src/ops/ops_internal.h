/* Private helpers shared by the f32 and int8 kernels of the ops module. */
#ifndef NNE_OPS_INTERNAL_H
#define NNE_OPS_INTERNAL_H

#include "nnedge/ops.h"

/* Transposed convolution, gather form: the input coordinate feeding output coordinate `o`
 * through tap `k`, or -1 if none (in[i] scatters to out[i*stride - pad + k*dil]). */
static inline int32_t nne_tconv_src(int32_t o, int32_t k, int32_t stride, int32_t dil, int32_t pad,
                                    int32_t in) {
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

/* The output size a conv2d (or transposed conv2d) geometry must have: asserted by the kernels. */
static inline bool nne_conv2d_geom_ok(const nne_conv2d_geom *g, bool transposed) {
    if (g->groups <= 0 || g->ic % g->groups != 0 || g->oc % g->groups != 0) return false;
    if (transposed)
        return g->oh == nne_conv_transpose_out_dim(g->ih, g->kh, g->stride_h, g->dil_h, g->pad_t,
                                                   g->pad_b, g->out_pad_h) &&
               g->ow == nne_conv_transpose_out_dim(g->iw, g->kw, g->stride_w, g->dil_w, g->pad_l,
                                                   g->pad_r, g->out_pad_w);
    return g->oh == nne_conv_out_dim(g->ih, g->kh, g->stride_h, g->dil_h, g->pad_t, g->pad_b) &&
           g->ow == nne_conv_out_dim(g->iw, g->kw, g->stride_w, g->dil_w, g->pad_l, g->pad_r);
}

/* A valid pooling geometry: every pad smaller than the kernel (so every window holds an
 * in-image tap) and the documented output size. */
static inline bool nne_pool2d_geom_ok(const nne_pool2d_geom *g) {
    return g->pad_t < g->kh && g->pad_b < g->kh && g->pad_l < g->kw && g->pad_r < g->kw &&
           g->oh == nne_conv_out_dim(g->ih, g->kh, g->stride_h, 1, g->pad_t, g->pad_b) &&
           g->ow == nne_conv_out_dim(g->iw, g->kw, g->stride_w, 1, g->pad_l, g->pad_r);
}

/* The window of pooling output pixel p (flat index over n*oh*ow) clipped to the image: batch
 * b, rows [y0, y1), cols [x0, x1). Non-empty for a valid geometry. */
typedef struct nne_pool_win {
    int32_t b, y0, y1, x0, x1;
} nne_pool_win;

static inline nne_pool_win nne_pool_window(const nne_pool2d_geom *g, size_t p) {
    const int32_t ox = (int32_t)(p % (size_t)g->ow),
                  oy = (int32_t)(p / (size_t)g->ow % (size_t)g->oh);
    const int32_t wy = oy * g->stride_h - g->pad_t, wx = ox * g->stride_w - g->pad_l;
    nne_pool_win w;
    w.b = (int32_t)(p / (size_t)g->ow / (size_t)g->oh);
    w.y0 = wy < 0 ? 0 : wy;
    w.y1 = wy + g->kh > g->ih ? g->ih : wy + g->kh;
    w.x0 = wx < 0 ? 0 : wx;
    w.x1 = wx + g->kw > g->iw ? g->iw : wx + g->kw;
    return w;
}

#endif
