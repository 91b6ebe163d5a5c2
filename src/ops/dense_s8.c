/* Dense (fully connected) layer, int8 reference kernel (docs/quantization.md, section 3).
 *
 *   x    [n][in]    s8, zero point x_zp
 *   w    [out][in]  s8, symmetric, per tensor or per output (o->count 1 or out)
 *   bias [out] int32 at scale s_x * s_w[o], or NULL
 *   y    [n][out]   y[b][o] = o(bias[o] + sum_i (x[b][i] - x_zp) * w[o][i])
 *
 * Identical to a 1x1 stride-1 nne_conv2d_s8__ref (property test). */
#include <assert.h>

#include "nnedge/qops.h"

void nne_dense_s8__ref(int32_t n, int32_t in, int32_t out, const int8_t *x, int32_t x_zero_point,
                       const int8_t *w, const int32_t *bias, const nne_qoutput *o, int8_t *y) {
    assert(n >= 0 && in >= 0 && out >= 0 && x && w && o && y);
    assert(o->count == 1 || o->count == out);
    assert(in <= NNE_S8_MAX_K && x_zero_point >= -128 && x_zero_point <= 127);
    for (int32_t b = 0; b < n; b++) {
        const int8_t *xb = x + (size_t)b * in;
        for (int32_t j = 0; j < out; j++) {
            const int8_t *wj = w + (size_t)j * in;
            /* |acc| <= in * 255 * 128 + |bias| <= INT32_MAX (precondition, nne_s8_acc_bound) */
            int32_t acc = 0;
            for (int32_t i = 0; i < in; i++) acc += (xb[i] - x_zero_point) * wj[i];
            if (bias) acc += bias[j];
            y[(size_t)b * out + j] = nne_qoutput_apply(o, j, acc);
        }
    }
}
