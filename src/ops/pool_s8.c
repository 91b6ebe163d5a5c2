/* 2-D max / average pooling, int8 reference kernel (docs/quantization.md, section 7).
 * Geometry and window conventions as nne_pool2d_f32__ref.
 *
 *   x [n][ih][iw][c] s8, zero point x_zp  ->  y [n][oh][ow][c] s8, out->count == 1
 *   max: y = out((max over in-image taps of x  - x_zp) * mul)   (padding never wins)
 *   avg: S = sum over in-image taps of (x - x_zp)               (padding is the real 0: adds 0)
 *        d = kh*kw if count_include_pad else the number of in-image taps
 *        y = out(round_half_away(S * mul / d))
 * out and mul from nne_qrescale_init: in Q31 mode mul = 2^16 carries the mean's fraction into
 * the output stage, so the result is S / d * s_x / s_y rounded once (to 2^-16 of a step); in
 * pow2 mode mul = 1. With equal input and output quantization the output stage is exact. */
#include <assert.h>

#include "nnedge/qops.h"
#include "ops_internal.h"

/* round_half_away(s / d), d > 0, as TFLite's average pooling. */
static int64_t div_round_half_away(int64_t s, int64_t d) {
    return s >= 0 ? (s + d / 2) / d : (s - d / 2) / d; /* C division truncates toward 0 */
}

void nne_pool2d_s8__ref(const nne_pool2d_geom *g, nne_pool_kind kind, const int8_t *x,
                        int32_t x_zero_point, const nne_qoutput *out, int32_t mul, int8_t *y) {
    assert(g && x && out && y && out->count == 1 && nne_pool2d_geom_ok(g));
    assert(mul >= 1 && mul <= 1 << NNE_Q31_DIFF_FRAC);
    assert(kind == NNE_POOL_MAX || kind == NNE_POOL_AVG);
    assert((int64_t)g->kh * g->kw <= INT32_MAX / 255);
    assert(x_zero_point >= -128 && x_zero_point <= 127);

    const size_t pixels = (size_t)g->n * g->oh * g->ow;
    for (size_t p = 0; p < pixels; p++) {
        const nne_pool_win w = nne_pool_window(g, p); /* window clipped to the image */
        assert(w.y0 < w.y1 && w.x0 < w.x1);
        const int8_t *xb = x + (size_t)w.b * g->ih * g->iw * g->c; /* [ih][iw][c] */
        for (int32_t ch = 0; ch < g->c; ch++) {
            /* Max: the largest code; avg: |sum| <= kh*kw * 255 <= INT32_MAX (asserted). */
            int32_t m = -128, sum = 0;
            for (int32_t iy = w.y0; iy < w.y1; iy++)
                for (int32_t ix = w.x0; ix < w.x1; ix++) {
                    const int32_t t = xb[((size_t)iy * g->iw + ix) * g->c + ch];
                    m = t > m ? t : m;
                    sum += t - x_zero_point;
                }
            const int32_t d = g->count_include_pad ? g->kh * g->kw : (w.y1 - w.y0) * (w.x1 - w.x0);
            /* |v| <= 255 * mul <= 255 * 2^16: the mean of values in [-255, 255] */
            const int32_t v = kind == NNE_POOL_MAX
                                  ? (m - x_zero_point) * mul
                                  : (int32_t)div_round_half_away((int64_t)sum * mul, d);
            y[p * g->c + ch] = nne_qoutput_apply(out, 0, v);
        }
    }
}
