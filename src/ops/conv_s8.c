/* 2-D convolution and transposed convolution, int8 reference kernels
 * (docs/quantization.md, section 3; geometry and layouts as the f32 kernels in ops.h).
 *
 *   x    [n][ih][iw][ic]       s8 codes, zero point x_zp (per tensor)
 *   w    [oc][kh][kw][icg]     s8 codes, symmetric, scale per tensor or per output channel
 *   bias [oc] int32 at scale s_x * s_w[oc], or NULL
 *   y    [n][oh][ow][oc]       s8, out->count 1 or oc
 *
 *   acc = bias[o] + sum_{ky, kx, c} (x[iy][ix][grp*icg + c] - x_zp) * w[o][ky][kx][c]
 *   y   = out(acc)   (requantize, add the output zero point, clamp)
 *
 * Both kernels are one gather loop: they differ only in which input pixel a tap reads
 * (conv: iy = oy*stride - pad + ky*dil; transposed: the iy with iy*stride - pad + ky*dil ==
 * oy, see nne_conv_transpose2d_f32__ref). Taps that read padding or no input contribute
 * nothing: padding is the real value 0, the code x_zp. Integer sums are exact, so the
 * order is free; this one matches the f32 kernels (ky, kx, c). */
#include <assert.h>

#include "nnedge/qops.h"
#include "ops_internal.h"

static void conv_s8_gather(const nne_conv2d_geom *g, bool transposed, const int8_t *x, int32_t x_zp,
                           const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                           int8_t *y) {
    assert(g && x && w && out && y && nne_conv2d_geom_ok(g, transposed));
    assert(out->count == 1 || out->count == g->oc);
    assert(x_zp >= -128 && x_zp <= 127);
    const int32_t icg = g->ic / g->groups; /* input channels per group */
    const int32_t ocg = g->oc / g->groups; /* output channels per group */
    assert((int64_t)g->kh * g->kw * icg <= NNE_S8_MAX_K);
    int32_t (*src)(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t) =
        transposed ? nne_tconv_src : nne_conv_src;

    for (int32_t b = 0; b < g->n; b++) {
        const int8_t *xb = x + (size_t)b * g->ih * g->iw * g->ic; /* [ih][iw][ic] */
        for (int32_t oy = 0; oy < g->oh; oy++) {
            for (int32_t ox = 0; ox < g->ow; ox++) {
                int8_t *yp = y + (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc; /* [oc] */
                for (int32_t o = 0; o < g->oc; o++) {
                    const int32_t c0 = (o / ocg) * icg; /* first input channel of the group */
                    /* |acc| <= K * 255 * 128 + |bias| <= INT32_MAX, K = kh*kw*icg
                     * (precondition, nne_s8_acc_bound); |x - x_zp| <= 255, |w| <= 128. */
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < g->kh; ky++) {
                        const int32_t iy = src(oy, ky, g->stride_h, g->dil_h, g->pad_t, g->ih);
                        if (iy < 0) continue;
                        for (int32_t kx = 0; kx < g->kw; kx++) {
                            const int32_t ix = src(ox, kx, g->stride_w, g->dil_w, g->pad_l, g->iw);
                            if (ix < 0) continue;
                            const int8_t *xp = xb + ((size_t)iy * g->iw + ix) * g->ic + c0;
                            const int8_t *wp = w + (((size_t)o * g->kh + ky) * g->kw + kx) * icg;
                            for (int32_t c = 0; c < icg; c++) acc += (xp[c] - x_zp) * wp[c];
                        }
                    }
                    if (bias) acc += bias[o];
                    yp[o] = nne_qoutput_apply(out, o, acc);
                }
            }
        }
    }
}

void nne_conv2d_s8__ref(const nne_conv2d_geom *g, const int8_t *x, int32_t x_zero_point,
                        const int8_t *w, const int32_t *bias, const nne_qoutput *out, int8_t *y) {
    conv_s8_gather(g, false, x, x_zero_point, w, bias, out, y);
}

void nne_conv_transpose2d_s8__ref(const nne_conv2d_geom *g, const int8_t *x, int32_t x_zero_point,
                                  const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                                  int8_t *y) {
    conv_s8_gather(g, true, x, x_zero_point, w, bias, out, y);
}
