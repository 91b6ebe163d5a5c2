/* Softmax over the last axis, f32 reference kernel. Allows y == x.
 *
 *   x, y [rows][cols]
 *   m = max_j x[j];  e[j] = exp(x[j] - m);  y[j] = e[j] / sum_j e[j]
 * Subtracting the row maximum keeps exp() in range (the largest term is exp(0) = 1, so the
 * sum is in [1, cols]); the sum is accumulated in f32 with j increasing. */
#include <assert.h>
#include <math.h>

#include "nnedge/ops.h"

void nne_softmax_f32__ref(size_t rows, int32_t cols, const float *x, float *y) {
    assert(x && y && cols > 0);
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float m = xr[0];
        for (int32_t j = 1; j < cols; j++) m = xr[j] > m ? xr[j] : m;
        float sum = 0.0f;
        for (int32_t j = 0; j < cols; j++) {
            const float e = expf(xr[j] - m);
            yr[j] = e; /* xr[j] is not read again, so in place is fine */
            sum += e;
        }
        for (int32_t j = 0; j < cols; j++) yr[j] /= sum;
    }
}
