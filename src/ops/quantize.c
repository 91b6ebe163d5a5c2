/* Float <-> int8 conversion (docs/quantization.md, sections 2 and 11). nne_quantize_value is
 * the one definition of float-to-code rounding; every quantizer below goes through it. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "nnedge/qops.h"

static const char *const k_scheme_names[] = {"per-tensor", "per-channel", "pow2"};

const char *nne_qscheme_name(nne_qscheme s) { return (unsigned)s < 3 ? k_scheme_names[s] : NULL; }

nne_status nne_qscheme_from_name(const char *name, nne_qscheme *s) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, k_scheme_names[i]) == 0) {
            *s = (nne_qscheme)i;
            return NNE_OK;
        }
    return nne_error(NNE_ERR_INVALID_ARG, "unknown scheme '%s' (per-tensor, per-channel, pow2)",
                     name ? name : "");
}

/* Round half even (f32 product, PyTorch) or half up (pow2, the DPU's rounding). */
static double round_code(double v, bool pow2) { return pow2 ? floor(v + 0.5) : nearbyint(v); }

int32_t nne_quantize_value(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax,
                           bool pow2) {
    assert(scale > 0.0f && qmin <= qmax);
    double r;
    if (isnan(x)) r = zero_point;
    /* pow2: 1/scale and the product are exact in double (for |x| < 2^52 * scale). General:
     * the f32 product x * (1.0f / scale) rounded half even, as PyTorch's fake quantization. */
    else if (pow2)
        r = round_code((double)x * (1.0 / (double)scale), true) + zero_point;
    else
        r = nearbyintf(x * (1.0f / scale)) + (double)zero_point;
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

void nne_qparams_from_range(float lo, float hi, bool symmetric, bool pow2, float *scale,
                            int32_t *zero_point) {
    lo = fminf(lo, 0.0f);
    hi = fmaxf(hi, 0.0f);
    const float a = fmaxf(-lo, hi);
    *zero_point = 0;
    if (pow2) {
        /* Largest fp with round_half_up(a * 2^fp) <= 127, i.e. a * 2^fp < 127.5. */
        int32_t fp = 0;
        if (a > 0.0f) {
            fp = (int32_t)floor(log2(127.5 / a));
            while (ldexp(a, fp) >= 127.5) fp--;
            while (ldexp(a, fp + 1) < 127.5) fp++;
        }
        *scale = ldexpf(1.0f, -fp);
        return;
    }
    if (symmetric) {
        *scale = a > 0.0f ? a / 127.0f : 1.0f;
        return;
    }
    if (!(hi - lo > 0.0f)) {
        *scale = 1.0f;
        return;
    }
    *scale = (hi - lo) / 255.0f;
    long z = -128 - lroundf(lo / *scale);
    *zero_point = (int32_t)(z < -128 ? -128 : z > 127 ? 127 : z);
}

/* Scale of a symmetric group with A = max|w| for codes in [-qmax, qmax]. */
static float group_scale(float amax, int32_t qmax, bool pow2) {
    if (amax == 0.0f) return 1.0f;
    if (!pow2) {
        const float s = amax / (float)qmax;
        return s > 0.0f ? s : 1.0f; /* subnormal amax: the group quantizes to 0 either way */
    }
    /* Largest fp with R(A * 2^fp) <= qmax: start from the estimate and step until it holds
     * and fp + 1 does not (the estimate is off by at most one). 2^-149 is the smallest f32. */
    const int fp_max = 149;
    int fp = (int)floor(log2((double)qmax / amax));
    if (fp > fp_max) fp = fp_max;
    while (nne_quantize_value(amax, ldexpf(1.0f, -fp), 0, -qmax - 1, qmax + 1, true) > qmax) fp--;
    while (fp < fp_max &&
           nne_quantize_value(amax, ldexpf(1.0f, -(fp + 1)), 0, -qmax - 1, qmax + 1, true) <= qmax)
        fp++;
    return ldexpf(1.0f, -fp);
}

/* Shared by the s8 quantizer and the fake quantizers: groups along axis 0 (or one group),
 * codes to q and/or scale * code to y, scales to scale[]. */
static nne_status quantize_groups(const nne_shape *shape, const float *w, int32_t qmax,
                                  bool per_channel, bool pow2, int8_t *q, float *y, float *scale) {
    if (!shape || !w || qmax < 1 || qmax > 127)
        return nne_error(NNE_ERR_INVALID_ARG, "weight quantization to codes within +-%d",
                         (int)qmax);
    nne_status st = nne_shape_validate(shape);
    if (st != NNE_OK) return st;
    if (per_channel && shape->ndim < 1)
        return nne_error(NNE_ERR_INVALID_ARG, "per-channel quantization of a scalar");
    const int64_t groups = per_channel ? shape->dim[0] : 1;
    const size_t per = (size_t)(nne_shape_numel(shape) / groups); /* elements per group */
    for (int64_t gi = 0; gi < groups; gi++) {
        const float *wg = w + (size_t)gi * per;
        float amax = 0.0f;
        for (size_t i = 0; i < per; i++) {
            if (!isfinite(wg[i]))
                return nne_error(NNE_ERR_INVALID_ARG, "weight %zu is not finite",
                                 (size_t)gi * per + i);
            amax = fmaxf(amax, fabsf(wg[i]));
        }
        const float s = group_scale(amax, qmax, pow2);
        if (scale) scale[gi] = s;
        for (size_t i = 0; i < per; i++) {
            const int32_t c = nne_quantize_value(wg[i], s, 0, -qmax, qmax, pow2);
            if (q) q[(size_t)gi * per + i] = (int8_t)c;
            if (y) y[(size_t)gi * per + i] = (float)c * s; /* = nne_dequantize: zero point 0 */
        }
    }
    return NNE_OK;
}

nne_status nne_quantize_tensor_s8(const nne_shape *shape, const float *w, bool per_channel,
                                  bool pow2, int8_t *q, nne_quant *quant) {
    if (!q || !quant) return nne_error(NNE_ERR_INVALID_ARG, "no output for weight quantization");
    const int32_t count = per_channel && shape && shape->ndim > 0 ? (int32_t)shape->dim[0] : 1;
    float *scale = nne_malloc((size_t)count * sizeof *scale);
    int32_t *zero = nne_calloc((size_t)count, sizeof *zero);
    nne_status st = scale && zero ? NNE_OK : NNE_ERR_NOMEM;
    if (st == NNE_OK) st = quantize_groups(shape, w, 127, per_channel, pow2, q, NULL, scale);
    if (st == NNE_OK) st = nne_quant_set(quant, per_channel ? 0 : -1, count, scale, zero, pow2);
    nne_free(scale);
    nne_free(zero);
    return st;
}

nne_status nne_weight_scales_s8(const nne_shape *shape, const float *w, nne_qscheme scheme,
                                float *scale) {
    return nne_weight_scales_s8_qmax(shape, w, scheme, 127, scale);
}

nne_status nne_weight_scales_s8_qmax(const nne_shape *shape, const float *w, nne_qscheme scheme,
                                     int32_t qmax, float *scale) {
    if (!scale || (unsigned)scheme > NNE_QSCHEME_POW2)
        return nne_error(NNE_ERR_INVALID_ARG, "weight scales: bad scheme or no output");
    const bool pow2 = scheme == NNE_QSCHEME_POW2;
    nne_status st =
        quantize_groups(shape, w, qmax, scheme == NNE_QSCHEME_PER_CHANNEL, pow2, NULL, NULL, scale);
    if (st != NNE_OK || !pow2) return st;
    /* fp0 .. fp0 + 3 by squared error over the whole tensor; ties keep the coarser. */
    const size_t n = (size_t)nne_shape_numel(shape);
    int32_t fp0 = 0, best_fp = 0;
    nne_quant_pow2_shift(scale[0], &fp0);
    double best = INFINITY;
    for (int32_t fp = fp0; fp <= fp0 + 3; fp++) {
        const float sc = ldexpf(1.0f, -fp);
        double e = 0.0;
        for (size_t i = 0; i < n; i++) {
            const double d = w[i] - (double)nne_quantize_value(w[i], sc, 0, -qmax, qmax, true) * sc;
            e += d * d;
        }
        if (e < best) {
            best = e;
            best_fp = fp;
        }
    }
    scale[0] = ldexpf(1.0f, -best_fp);
    return NNE_OK;
}

nne_status nne_fake_quantize_tensor(const nne_shape *shape, const float *w, int bits,
                                    bool per_channel, bool pow2, float *y, float *scale) {
    if (!y) return nne_error(NNE_ERR_INVALID_ARG, "no output for fake quantization");
    if (bits < 2 || bits > 8)
        return nne_error(NNE_ERR_INVALID_ARG, "weight quantization to %d bits", bits);
    return quantize_groups(shape, w, (1 << (bits - 1)) - 1, per_channel, pow2, NULL, y, scale);
}

nne_status nne_dequantize_tensor_s8(const nne_shape *shape, const int8_t *q, const nne_quant *quant,
                                    float *w) {
    if (!shape || !q || !quant || !w || quant->count < 1 || !quant->scale || !quant->zero_point)
        return nne_error(NNE_ERR_INVALID_ARG, "dequantize: missing tensor or parameters");
    nne_status st = nne_shape_validate(shape);
    if (st != NNE_OK) return st;
    /* outer x count x inner blocks; per tensor: count = 1, inner = everything. */
    int64_t outer = 1, inner = nne_shape_numel(shape);
    if (quant->axis >= 0) {
        if (quant->axis >= shape->ndim || shape->dim[quant->axis] != quant->count)
            return nne_error(NNE_ERR_SHAPE, "%d scales along axis %d do not fit the shape",
                             (int)quant->count, (int)quant->axis);
        inner = 1;
        for (int i = 0; i < quant->axis; i++) outer *= shape->dim[i];
        for (int i = quant->axis + 1; i < shape->ndim; i++) inner *= shape->dim[i];
    } else if (quant->count != 1) {
        return nne_error(NNE_ERR_SHAPE, "per-tensor quantization with %d scales",
                         (int)quant->count);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int32_t c = 0; c < quant->count; c++) {
            const size_t off = (size_t)((o * quant->count + c) * inner);
            nne_dequantize_s8_f32__ref((size_t)inner, q + off, quant->scale[c],
                                       quant->zero_point[c], w + off);
        }
    return NNE_OK;
}

void nne_fake_quantize_f16(size_t count, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = nne_f16_to_f32(nne_f32_to_f16(x[i]));
}
