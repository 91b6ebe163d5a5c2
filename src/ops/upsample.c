/* Upsampling by integer factors, f32 reference kernel.
 *
 *   x [n][ih][iw][c] -> y [n][ih*sh][iw*sw][c]   (NHWC)
 *
 * Nearest: y[oy][ox] = x[oy / sh][ox / sw] (integer division = floor).
 *
 * Bilinear, PyTorch align_corners=False (half-pixel centres). Per axis, with the f32 scale
 * r = 1/s (PyTorch uses 1/scale_factor, rounded to float; ih/oh rounds to the same float):
 *   src = max(r * (dst + 0.5) - 0.5, 0)       (f32)
 *   i0  = floor(src),  i1 = min(i0 + 1, in - 1),  l1 = src - i0,  l0 = 1 - l1
 *   y   = l0y * (l0x * x[i0y][i0x] + l1x * x[i0y][i1x])
 *       + l1y * (l0x * x[i1y][i0x] + l1x * x[i1y][i1x])
 * This mirrors ATen's upsample_bilinear2d CPU kernel operation for operation. */
#include <assert.h>
#include <string.h>

#include "nnedge/ops.h"

/* Source index and weights along one axis for output coordinate `dst`. */
static void nne_bilinear_src(int32_t dst, float r, int32_t in, int32_t *i0, int32_t *i1, float *l0,
                             float *l1) {
    float src = r * ((float)dst + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int32_t i = (int32_t)src; /* floor, src >= 0 */
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l1 = src - (float)i;
    *l0 = 1.0f - *l1;
}

void nne_upsample_f32__ref(int32_t n, int32_t ih, int32_t iw, int32_t c, int32_t sh, int32_t sw,
                           nne_upsample_mode mode, const float *x, float *y) {
    assert(n >= 0 && ih > 0 && iw > 0 && c >= 0 && sh > 0 && sw > 0 && x && y);
    assert(mode == NNE_UPSAMPLE_NEAREST || mode == NNE_UPSAMPLE_BILINEAR);
    const int32_t oh = ih * sh, ow = iw * sw;
    const float rh = 1.0f / (float)sh, rw = 1.0f / (float)sw;
    for (int32_t b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * ih * iw * c; /* [ih][iw][c] */
        for (int32_t oy = 0; oy < oh; oy++) {
            for (int32_t ox = 0; ox < ow; ox++) {
                float *yp = y + (((size_t)b * oh + oy) * ow + ox) * c; /* [c] */
                if (mode == NNE_UPSAMPLE_NEAREST) {
                    const float *xp = xb + ((size_t)(oy / sh) * iw + ox / sw) * c;
                    memcpy(yp, xp, (size_t)c * sizeof(float));
                    continue;
                }
                int32_t y0, y1, x0, x1;
                float ly0, ly1, lx0, lx1;
                nne_bilinear_src(oy, rh, ih, &y0, &y1, &ly0, &ly1);
                nne_bilinear_src(ox, rw, iw, &x0, &x1, &lx0, &lx1);
                const float *p00 = xb + ((size_t)y0 * iw + x0) * c;
                const float *p01 = xb + ((size_t)y0 * iw + x1) * c;
                const float *p10 = xb + ((size_t)y1 * iw + x0) * c;
                const float *p11 = xb + ((size_t)y1 * iw + x1) * c;
                for (int32_t ch = 0; ch < c; ch++)
                    yp[ch] = ly0 * (lx0 * p00[ch] + lx1 * p01[ch]) +
                             ly1 * (lx0 * p10[ch] + lx1 * p11[ch]);
            }
        }
    }
}
