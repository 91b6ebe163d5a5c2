/* 2-D transposed convolution ("deconvolution"), f32 reference kernel, PyTorch semantics.
 *
 * Layouts:
 *   x    [n][ih][iw][ic]                    NHWC input
 *   w    [oc][kh][kw][icg], icg = ic/groups OHWI weights, O = *output* channels
 *   bias [oc] or NULL
 *   y    [n][oh][ow][oc]                    NHWC output
 *   oh = (ih-1)*stride_h - pad_t - pad_b + dil_h*(kh-1) + out_pad_h + 1
 *
 * Definition (scatter form, as PyTorch documents it): input pixel iy contributes
 * w[..][ky] * x[iy] to output row  oy = iy*stride_h - pad_t + ky*dil_h;  rows that fall
 * outside [0, oh) are cropped (pad_t at the start, pad_b at the end), and out_pad_h only
 * adds rows at the end that receive fewer (possibly no) contributions. It is the adjoint of
 * nne_conv2d_f32__ref with the same geometry read backwards (tests/ops/test_ops_props.c).
 *
 * This kernel evaluates the equivalent gather form so that every output is written once,
 * with a well-defined accumulation order: for output row oy and tap ky the contributing
 * input row is iy = (oy + pad_t - ky*dil_h) / stride_h, when that division is exact and
 * 0 <= iy < ih. Accumulation is in float, in the order ky, kx, input channel of the group,
 * starting from 0, with the bias added last. Output channel o belongs to group
 * grp = o / ocg and reads input channels [grp*icg, (grp+1)*icg).
 *
 * PyTorch stores ConvTranspose2d weights as (Cin, Cout/groups, kh, kw); the OHWI tensor is
 *   w[grp*ocg + j][ky][kx][c] = W_torch[grp*icg + c][j][ky][kx]. */
#include <assert.h>

#include "nnedge/ops.h"
#include "ops_internal.h"

void nne_conv_transpose2d_f32__ref(const nne_conv2d_geom *g, const float *x, const float *w,
                                   const float *bias, float *y) {
    assert(g && x && w && y && nne_conv2d_geom_ok(g, true));

    const int32_t icg = g->ic / g->groups;
    const int32_t ocg = g->oc / g->groups;

    for (int32_t b = 0; b < g->n; b++) {
        const float *xb = x + (size_t)b * g->ih * g->iw * g->ic; /* [ih][iw][ic] */
        for (int32_t oy = 0; oy < g->oh; oy++) {
            for (int32_t ox = 0; ox < g->ow; ox++) {
                float *yp = y + (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc; /* [oc] */
                for (int32_t o = 0; o < g->oc; o++) {
                    const int32_t c0 = (o / ocg) * icg;
                    float acc = 0.0f;
                    for (int32_t ky = 0; ky < g->kh; ky++) {
                        const int32_t iy =
                            nne_tconv_src(oy, ky, g->stride_h, g->dil_h, g->pad_t, g->ih);
                        if (iy < 0) continue;
                        for (int32_t kx = 0; kx < g->kw; kx++) {
                            const int32_t ix =
                                nne_tconv_src(ox, kx, g->stride_w, g->dil_w, g->pad_l, g->iw);
                            if (ix < 0) continue;
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
