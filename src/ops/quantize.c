/* Float <-> int8 conversion (docs/quantization.md, section 2). nne_quantize_value is the one
 * definition of float-to-code rounding; every quantizer below goes through it. */
#include <assert.h>
#include <math.h>

#include "nnedge/qops.h"

/* Round half even (f32 product, PyTorch) or half up (pow2, the DPU's rounding). */
static double round_code(double v, bool pow2) { return pow2 ? floor(v + 0.5) : nearbyint(v); }

int32_t nne_quantize_value(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                           bool pow2) {
    assert(scale > 0.0f && qmin <= qmax);
    double r;
    if (isnan(x)) r = zero_point;
    /* pow2: 1/scale and the product are exact in double (for |x| < 2^52 * scale). General:
     * the f32 product x * (1.0f / scale) rounded half even, as PyTorch's fake quantization. */
    else if (pow2) r = round_code((double)x * (1.0 / (double)scale), true) + zero_point;
    else r = nearbyintf(x * (1.0f / scale)) + (double)zero_point;
    return r < qmin ? qmin : r > qmax ? qmax : (int32_t)r; /* clamp before converting: no UB */
}

void nne_quantize_f32_s8__ref(size_t count, const float *x, float scale, int32_t zero_point,
                              bool pow2, int8_t *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++)
        y[i] = (int8_t)nne_quantize_value(x[i], scale, zero_point, -128, 127, pow2);
}

void nne_quantize_f32_u8__ref(size_t count, const float *x, float scale, int32_t zero_point,
                              bool pow2, uint8_t *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++)
        y[i] = (uint8_t)nne_quantize_value(x[i], scale, zero_point, 0, 255, pow2);
}

void nne_dequantize_s8_f32__ref(size_t count, const int8_t *x, float scale, int32_t zero_point,
                                float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = (float)(x[i] - zero_point) * scale;
}

void nne_dequantize_u8_f32__ref(size_t count, const uint8_t *x, float scale, int32_t zero_point,
                                float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = (float)(x[i] - zero_point) * scale;
}

void nne_convert_u8_s8__ref(size_t count, const uint8_t *x, int8_t *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = (int8_t)(x[i] - 128);
}

void nne_convert_s8_u8__ref(size_t count, const int8_t *x, uint8_t *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = (uint8_t)(x[i] + 128);
}

void nne_quantize_bias_s32(int32_t n, const float *bias, float x_scale, const float *w_scale,
                           int32_t w_count, bool pow2, int32_t *q) {
    assert(n >= 0 && bias && w_scale && q && (w_count == 1 || w_count == n));
    for (int32_t c = 0; c < n; c++) {
        const double s = (double)x_scale * w_scale[w_count == 1 ? 0 : c]; /* exact */
        const double r = isnan(bias[c]) ? 0.0 : round_code(bias[c] / s, pow2);
        q[c] = r < INT32_MIN ? INT32_MIN : r > INT32_MAX ? INT32_MAX : (int32_t)r;
    }
}
