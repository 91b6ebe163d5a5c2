/* Element-wise activations, f32 reference kernels. All allow y == x (in place).
 *
 * NaN handling follows PyTorch: a NaN input gives a NaN output for every activation
 * (the comparisons below are written so that NaN falls through to the `x` branch). */
#include <assert.h>
#include <math.h>

#include "nnedge/ops.h"

/* y = max(x, 0) */
void nne_relu_f32__ref(size_t count, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* y = min(max(x, 0), 6) */
void nne_relu6_f32__ref(size_t count, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) {
        const float v = x[i];
        y[i] = v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
    }
}

/* y = x >= 0 ? x : alpha * x */
void nne_leaky_relu_f32__ref(size_t count, float alpha, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = x[i] < 0.0f ? alpha * x[i] : x[i];
}

/* y = 1 / (1 + exp(-x)). For x < -88.7, exp(-x) overflows to +inf and y = 0 exactly;
 * for x > 17, y rounds to 1. */
void nne_sigmoid_f32__ref(size_t count, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* y = tanh(x), from libm. */
void nne_tanh_f32__ref(size_t count, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = tanhf(x[i]);
}

/* y = x * relu6(x + 3) / 6 (MobileNetV3; PyTorch's operation order). */
void nne_hardswish_f32__ref(size_t count, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) {
        const float v = x[i];
        const float t = v + 3.0f;
        const float r6 = t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t;
        y[i] = v * r6 / 6.0f;
    }
}

/* x, y [pixels][c]; slope [n_slope] with n_slope == 1 (shared) or c (per channel).
 * y = x >= 0 ? x : slope[ch] * x */
void nne_prelu_f32__ref(size_t pixels, int32_t c, const float *x, const float *slope,
                        int32_t n_slope, float *y) {
    assert(x && slope && y && c >= 0);
    assert(n_slope == 1 || n_slope == c);
    for (size_t p = 0; p < pixels; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        for (int32_t ch = 0; ch < c; ch++) {
            const float a = slope[n_slope == 1 ? 0 : ch];
            yp[ch] = xp[ch] < 0.0f ? a * xp[ch] : xp[ch];
        }
    }
}
