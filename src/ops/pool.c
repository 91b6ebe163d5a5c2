/* 2-D max / average pooling and global average pooling, f32 reference kernels.
 *
 *   x [n][ih][iw][c] -> y [n][oh][ow][c]   (NHWC)
 *   window of output (oy, ox): rows [oy*stride_h - pad_t, oy*stride_h - pad_t + kh),
 *                              cols [ox*stride_w - pad_l, ox*stride_w - pad_l + kw)
 *   oh = floor((ih + pad_t + pad_b - kh) / stride_h) + 1   (PyTorch ceil_mode=False)
 *
 * Max pooling takes the maximum over the in-image taps only (padding is never selected,
 * i.e. it behaves as -inf padding). Average pooling sums the in-image taps (row-major
 * order, f32 accumulator) and divides by kh*kw when count_include_pad (padding counts as
 * zeros), else by the number of in-image taps. Without ceil mode a window never extends
 * past the padded extent, so kh*kw is also PyTorch's divisor. NaN inputs propagate
 * through max pooling as PyTorch does. */
#include <assert.h>
#include <math.h>

#include "nnedge/ops.h"
#include "ops_internal.h"

void nne_pool2d_f32__ref(const nne_pool2d_geom *g, nne_pool_kind kind, const float *x, float *y) {
    assert(g && x && y && nne_pool2d_geom_ok(g));
    assert(kind == NNE_POOL_MAX || kind == NNE_POOL_AVG);

    const size_t pixels = (size_t)g->n * g->oh * g->ow;
    for (size_t p = 0; p < pixels; p++) {
        const nne_pool_win w = nne_pool_window(g, p); /* window clipped to the image */
        assert(w.y0 < w.y1 && w.x0 < w.x1);
        const float *xb = x + (size_t)w.b * g->ih * g->iw * g->c; /* [ih][iw][c] */
        float *yp = y + p * g->c;                                 /* [c] */
        for (int32_t ch = 0; ch < g->c; ch++) {
            if (kind == NNE_POOL_MAX) {
                float m = -INFINITY;
                for (int32_t iy = w.y0; iy < w.y1; iy++)
                    for (int32_t ix = w.x0; ix < w.x1; ix++) {
                        const float v = xb[((size_t)iy * g->iw + ix) * g->c + ch];
                        /* A NaN tap wins and sticks (as torch.max_pool2d). */
                        if (v > m || isnan(v)) m = v;
                    }
                yp[ch] = m;
            } else {
                float sum = 0.0f;
                for (int32_t iy = w.y0; iy < w.y1; iy++)
                    for (int32_t ix = w.x0; ix < w.x1; ix++)
                        sum += xb[((size_t)iy * g->iw + ix) * g->c + ch];
                const int32_t count =
                    g->count_include_pad ? g->kh * g->kw : (w.y1 - w.y0) * (w.x1 - w.x0);
                yp[ch] = sum / (float)count;
            }
        }
    }
}

/* y[b][ch] = (sum over the h*w pixels of x[b][.][.][ch], row-major, f32) / (h*w). */
void nne_global_avgpool_f32__ref(int32_t n, int32_t h, int32_t w, int32_t c, const float *x,
                                 float *y) {
    assert(n >= 0 && h > 0 && w > 0 && c >= 0 && x && y);
    const size_t hw = (size_t)h * w;
    for (int32_t b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * hw * c; /* [h*w][c] */
        for (int32_t ch = 0; ch < c; ch++) {
            float sum = 0.0f;
            for (size_t p = 0; p < hw; p++) sum += xb[p * c + ch];
            y[(size_t)b * c + ch] = sum / (float)hw;
        }
    }
}
