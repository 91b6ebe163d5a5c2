/* 2-D convolution, f32 reference kernel.
 *
 * Layouts (see include/nnedge/ops.h):
 *   x    [n][ih][iw][ic]                    NHWC input
 *   w    [oc][kh][kw][icg], icg = ic/groups OHWI weights
 *   bias [oc] or NULL
 *   y    [n][oh][ow][oc]                    NHWC output
 *
 * Output channel oc belongs to group grp = oc / ocg (ocg = oc/groups) and reads input
 * channels [grp*icg, (grp+1)*icg). Depthwise convolution is groups == ic (icg == 1).
 *
 * Output pixel (oy, ox) gathers the taps
 *   iy = oy*stride_h - pad_t + ky*dil_h,  ix = ox*stride_w - pad_l + kx*dil_w
 * and taps outside [0, ih) x [0, iw) read zero (padding); pad_b / pad_r only enter the
 * output size. Accumulation is in float, in the order ky, kx, input channel, starting from
 * 0, with the bias added last: this order *is* the reference semantics; optimized kernels
 * are compared against it within a tolerance. */
#include <assert.h>

#include "nnedge/ops.h"
#include "ops_internal.h"

void nne_conv2d_f32__ref(const nne_conv2d_geom *g, const float *x, const float *w,
                         const float *bias, float *y) {
    assert(g && x && w && y && nne_conv2d_geom_ok(g, false));

    const int32_t icg = g->ic / g->groups; /* input channels per group */
    const int32_t ocg = g->oc / g->groups; /* output channels per group */

    for (int32_t b = 0; b < g->n; b++) {
        const float *xb = x + (size_t)b * g->ih * g->iw * g->ic; /* [ih][iw][ic] */
        for (int32_t oy = 0; oy < g->oh; oy++) {
            for (int32_t ox = 0; ox < g->ow; ox++) {
                float *yp = y + (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc; /* [oc] */
                for (int32_t o = 0; o < g->oc; o++) {
                    const int32_t c0 = (o / ocg) * icg; /* first input channel of the group */
                    float acc = 0.0f;
                    for (int32_t ky = 0; ky < g->kh; ky++) {
                        const int32_t iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                        if (iy < 0 || iy >= g->ih) continue; /* zero padding */
                        for (int32_t kx = 0; kx < g->kw; kx++) {
                            const int32_t ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                            if (ix < 0 || ix >= g->iw) continue;
                            const float *xp = xb + ((size_t)iy * g->iw + ix) * g->ic + c0;
                            const float *wp = w + (((size_t)o * g->kh + ky) * g->kw + kx) * icg;
                            for (int32_t c = 0; c < icg; c++) acc += wp[c] * xp[c];
                        }
                    }
                    yp[o] = bias ? acc + bias[o] : acc;
                }
            }
        }
    }
}
