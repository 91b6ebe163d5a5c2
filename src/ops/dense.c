/* Dense (fully connected) layer, f32 reference kernel.
 *
 *   x    [n][in]
 *   w    [out][in]   (PyTorch nn.Linear layout)
 *   bias [out] or NULL
 *   y    [n][out],   y[b][o] = bias[o] + sum_i w[o][i] * x[b][i]
 *
 * Accumulation is in float over i in increasing order, starting from 0, bias added last
 * (the same convention as nne_conv2d_f32__ref, so a 1x1 convolution equals this kernel
 * bit for bit). */
#include <assert.h>

#include "nnedge/ops.h"

void nne_dense_f32__ref(int32_t n, int32_t in, int32_t out, const float *x, const float *w,
                        const float *bias, float *y) {
    assert(n >= 0 && in >= 0 && out >= 0 && x && w && y);
    for (int32_t b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * in;
        for (int32_t o = 0; o < out; o++) {
            const float *wo = w + (size_t)o * in;
            float acc = 0.0f;
            for (int32_t i = 0; i < in; i++) acc += wo[i] * xb[i];
            y[(size_t)b * out + o] = bias ? acc + bias[o] : acc;
        }
    }
}
