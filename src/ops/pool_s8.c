/* 2-D max / average pooling, int8 reference kernel (docs/quantization.md, section 7).
 * Geometry and window conventions as nne_pool2d_f32__ref.
 *
 *   x [n][ih][iw][c] s8, zero point x_zp  ->  y [n][oh][ow][c] s8, out->count == 1
 *   max: y = out(max over in-image taps of x  - x_zp)     (padding never wins)
 *   avg: S = sum over in-image taps of (x - x_zp)         (padding is the real 0: adds 0)
 *        d = kh*kw if count_include_pad else the number of in-image taps
 *        y = out(round_half_away(S / d))
 * With equal input and output quantization, out is the identity plus x_zp. */
#include <assert.h>

#include "nnedge/qops.h"
#include "ops_internal.h"

/* round_half_away(s / d), d > 0, as TFLite's average pooling. */
static int32_t div_round_half_away(int32_t s, int32_t d) {
    return s >= 0 ? (s + d / 2) / d : (s - d / 2) / d; /* C division truncates toward 0 */
}

void nne_pool2d_s8__ref(const nne_pool2d_geom *g, nne_pool_kind kind, const int8_t *x,
                        int32_t x_zero_point, const nne_qoutput *out, int8_t *y) {
    assert(g && x && out && y && out->count == 1);
    assert(kind == NNE_POOL_MAX || kind == NNE_POOL_AVG);
    assert(g->pad_t < g->kh && g->pad_b < g->kh && g->pad_l < g->kw && g->pad_r < g->kw);
    assert(g->oh == nne_conv_out_dim(g->ih, g->kh, g->stride_h, 1, g->pad_t, g->pad_b));
    assert(g->ow == nne_conv_out_dim(g->iw, g->kw, g->stride_w, 1, g->pad_l, g->pad_r));
    assert((int64_t)g->kh * g->kw <= INT32_MAX / 255 && x_zero_point >= -128 && x_zero_point <= 127);

    for (int32_t b = 0; b < g->n; b++) {
        const int8_t *xb = x + (size_t)b * g->ih * g->iw * g->c; /* [ih][iw][c] */
        for (int32_t oy = 0; oy < g->oh; oy++) {
            int32_t y0, y1, x0, x1;
            nne_pool_span(oy, g->stride_h, g->pad_t, g->kh, g->ih, &y0, &y1);
            for (int32_t ox = 0; ox < g->ow; ox++) {
                nne_pool_span(ox, g->stride_w, g->pad_l, g->kw, g->iw, &x0, &x1);
                assert(y0 < y1 && x0 < x1);
                int8_t *yp = y + (((size_t)b * g->oh + oy) * g->ow + ox) * g->c; /* [c] */
                for (int32_t ch = 0; ch < g->c; ch++) {
                    int32_t v;
                    if (kind == NNE_POOL_MAX) {
                        int32_t m = -128;
                        for (int32_t iy = y0; iy < y1; iy++)
                            for (int32_t ix = x0; ix < x1; ix++) {
                                const int32_t t = xb[((size_t)iy * g->iw + ix) * g->c + ch];
                                if (t > m) m = t;
                            }
                        v = m - x_zero_point;
                    } else {
                        /* |sum| <= kh*kw * 255 <= INT32_MAX (asserted above) */
                        int32_t sum = 0;
                        for (int32_t iy = y0; iy < y1; iy++)
                            for (int32_t ix = x0; ix < x1; ix++)
                                sum += xb[((size_t)iy * g->iw + ix) * g->c + ch] - x_zero_point;
                        const int32_t d =
                            g->count_include_pad ? g->kh * g->kw : (y1 - y0) * (x1 - x0);
                        v = div_round_half_away(sum, d);
                    }
                    yp[ch] = nne_qoutput_apply(out, 0, v);
                }
            }
        }
    }
}
