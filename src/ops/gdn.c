/* Generalized divisive normalization (Balle, Laparra, Simoncelli 2016), f32 reference.
 *
 *   x, y  [pixels][c]
 *   beta  [c]       (> 0 in a trained model)
 *   gamma [c][c]    row-major, row i = output channel: gamma[i*c + j] weighs x[j]^2
 *
 *   norm[i] = beta[i] + sum_j gamma[i][j] * x[j]^2   (f32, j increasing, beta added last)
 *   GDN:  y[i] = x[i] / sqrt(norm[i])
 *   IGDN: y[i] = x[i] * sqrt(norm[i])
 *
 * This is a 1x1 convolution of x^2 with weights gamma and bias beta, followed by an
 * element-wise (r)sqrt; PyTorch golden data is computed exactly that way. y must not
 * alias x: every output reads all c inputs of its pixel. */
#include <assert.h>
#include <math.h>

#include "nnedge/ops.h"

void nne_gdn_f32__ref(size_t pixels, int32_t c, const float *x, const float *beta,
                      const float *gamma, bool inverse, float *y) {
    assert(x && beta && gamma && y && c >= 0);
    assert(x != y || pixels == 0);
    for (size_t p = 0; p < pixels; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        for (int32_t i = 0; i < c; i++) {
            const float *gi = gamma + (size_t)i * c;
            float acc = 0.0f;
            for (int32_t j = 0; j < c; j++) acc += gi[j] * (xp[j] * xp[j]);
            const float s = sqrtf(acc + beta[i]);
            yp[i] = inverse ? xp[i] * s : xp[i] / s;
        }
    }
}
