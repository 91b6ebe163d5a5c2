/* Inference batch normalization, f32 reference kernel. Allows y == x.
 *
 *   x, y [pixels][c];  mean, var, gamma, beta [c]
 *   y = (x - mean[ch]) / sqrt(var[ch] + eps) * gamma[ch] + beta[ch]
 *
 * Evaluated literally in that order in f32 (no folding into a scale and shift: folding is
 * a graph pass, and this kernel is what the folded result is checked against). */
#include <assert.h>
#include <math.h>

#include "nnedge/ops.h"

void nne_batchnorm_f32__ref(size_t pixels, int32_t c, const float *x, const float *mean,
                            const float *var, const float *gamma, const float *beta, float eps,
                            float *y) {
    assert(x && mean && var && gamma && beta && y && c >= 0);
    for (size_t p = 0; p < pixels; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        for (int32_t ch = 0; ch < c; ch++)
            yp[ch] = (xp[ch] - mean[ch]) / sqrtf(var[ch] + eps) * gamma[ch] + beta[ch];
    }
}
