/* Activations on int8 tensors (docs/quantization.md, sections 6 and 9): clamps (ReLU,
 * ReLU6), PReLU / leaky ReLU with integer slopes, 256-entry tables for any other
 * element-wise function (sigmoid, hardswish, tanh), and GDN in f32 between int8 tensors. */
#include <assert.h>

#include "nnedge/qops.h"

void nne_clamp_s8__ref(size_t count, const int8_t *x, int32_t lo, int32_t hi, int8_t *y) {
    assert(x && y && -128 <= lo && lo <= hi && hi <= 127);
    for (size_t i = 0; i < count; i++) y[i] = (int8_t)(x[i] < lo ? lo : x[i] > hi ? hi : x[i]);
}

/* x, y [pixels][c]; v = x - x_zp in [-255, 255];
 * y = v >= 0 ? pos(v * pos_mul) : neg(v * a[ch], ch); the factors are 2^16 (Q31) or int8
 * slope codes (pow2), so |v * factor| <= 255 * 2^16 < 2^24. */
void nne_prelu_s8__ref(size_t pixels, int32_t c, const int8_t *x, int32_t x_zero_point,
                       const nne_qoutput *pos, int32_t pos_mul, const nne_qoutput *neg,
                       const int32_t *neg_slope, int8_t *y) {
    assert(x && pos && neg && neg_slope && y && c >= 0 && pos->count == 1);
    assert(neg->count == 1 || neg->count == c);
    for (size_t p = 0; p < pixels; p++)
        for (int32_t ch = 0; ch < c; ch++) {
            const int32_t v = x[p * c + ch] - x_zero_point;
            const int32_t k = neg->count == 1 ? 0 : ch;
            y[p * c + ch] = v >= 0 ? nne_qoutput_apply(pos, 0, v * pos_mul)
                                   : nne_qoutput_apply(neg, ch, v * neg_slope[k]);
        }
}

void nne_lut_s8_build(nne_unary_f32_fn f, float x_scale, int32_t x_zero_point, float y_scale,
                      int32_t y_zero_point, bool pow2, int8_t table[256]) {
    assert(f && table);
    float v[256]; /* v[q + 128]: the real value of code q, then f of it */
    for (int32_t q = -128; q <= 127; q++) v[q + 128] = (float)(q - x_zero_point) * x_scale;
    f(256, v, v); /* every f32 element-wise kernel allows y == x */
    nne_quantize_f32_s8__ref(256, v, y_scale, y_zero_point, pow2, table);
}

void nne_lut_s8__ref(size_t count, const int8_t table[256], const int8_t *x, int8_t *y) {
    assert(table && x && y);
    for (size_t i = 0; i < count; i++) y[i] = table[x[i] + 128];
}

size_t nne_gdn_s8_scratch_size(int32_t c) { return 2 * (size_t)(c > 0 ? c : 0) * sizeof(float); }

void nne_gdn_s8__ref(size_t pixels, int32_t c, const int8_t *x, float x_scale, int32_t x_zero_point,
                     const float *beta, const float *gamma, bool inverse, float y_scale,
                     int32_t y_zero_point, bool y_pow2, void *scratch, int8_t *y) {
    assert(x && beta && gamma && y && c >= 0 && (scratch || c == 0));
    float *xf = scratch;              /* [c] dequantized input pixel */
    float *yf = (float *)scratch + c; /* [c] f32 GDN output */
    for (size_t p = 0; p < pixels; p++) {
        nne_dequantize_s8_f32__ref((size_t)c, x + p * c, x_scale, x_zero_point, xf);
        nne_gdn_f32__ref(1, c, xf, beta, gamma, inverse, yf);
        nne_quantize_f32_s8__ref((size_t)c, yf, y_scale, y_zero_point, y_pow2, y + p * c);
    }
}
