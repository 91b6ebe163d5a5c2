/* Requantization parameters and the standalone output stages (docs/quantization.md, 4-5).
 *
 * The arithmetic itself (nne_requantize, nne_qoutput_apply) is static inline in qops.h so
 * that every kernel shares one definition; this file derives the integer parameters from
 * float scales, once per node, and holds the element-wise output stages. */
#include <assert.h>
#include <math.h>

#include "nnedge/qops.h"

nne_requant nne_requant_identity(nne_rq_mode mode) {
    /* Q31: 2^30 * 2^-31 * 2^1 = 1; a << 1 then SRDHM(., 2^30) halves it back exactly. */
    nne_requant rq = {mode == NNE_RQ_POW2 ? 0 : (int32_t)1 << 30, mode == NNE_RQ_POW2 ? 0 : -1};
    return rq;
}

nne_status nne_quant_multiplier_from_scale(double m, nne_requant *rq) {
    rq->multiplier = 0;
    rq->shift = 0;
    if (!isfinite(m)) return nne_error(NNE_ERR_INVALID_ARG, "requantization multiplier %g", m);
    if (m == 0.0) return NNE_OK;
    int e = 0;
    const double q = frexp(m, &e);                       /* m = q * 2^e, 0.5 <= |q| < 1 */
    long long mant = llround(q * 2147483648.0);          /* q * 2^31 is exact: one rounding */
    if (mant == 2147483648LL || mant == -2147483648LL) { /* |q| rounded up to 1 */
        mant /= 2;
        e++;
    }
    if (e > NNE_REQUANT_SHIFT_MAX)
        return nne_error(NNE_ERR_INVALID_ARG, "requantization multiplier %g >= 2^31", m);
    if (-e > NNE_REQUANT_SHIFT_MAX) return NNE_OK; /* |m| < 2^-32: every int32 maps to 0 */
    rq->multiplier = (int32_t)mant;
    rq->shift = -e;
    return NNE_OK;
}

nne_status nne_quant_pow2_shift(float scale, int32_t *fp) {
    int e = 0;
    if (!(scale > 0.0f) || !isfinite(scale) || frexpf(scale, &e) != 0.5f)
        return nne_error(NNE_ERR_INVALID_ARG, "scale %g is not a power of two", (double)scale);
    *fp = 1 - e; /* scale = 0.5 * 2^e = 2^-(1-e) */
    return NNE_OK;
}

void nne_qact_range(nne_qact act, float y_scale, int32_t y_zero_point, bool pow2, int32_t *lo,
                    int32_t *hi) {
    assert(y_zero_point >= -128 && y_zero_point <= 127);
    *lo = -128;
    *hi = 127;
    if (act == NNE_QACT_RELU || act == NNE_QACT_RELU6) *lo = y_zero_point; /* Q(0) */
    if (act == NNE_QACT_RELU6)
        *hi = nne_quantize_value(6.0f, y_scale, y_zero_point, -128, 127, pow2);
}

static nne_status check_scale(float s, const char *what) {
    if (!(s > 0.0f) || !isfinite(s))
        return nne_error(NNE_ERR_INVALID_ARG, "%s scale %g is not positive and finite", what,
                         (double)s);
    return NNE_OK;
}

static nne_status check_zero_point(int32_t zp, const char *what) {
    if (zp < -128 || zp > 127)
        return nne_error(NNE_ERR_INVALID_ARG, "%s zero point %d outside [-128, 127]", what,
                         (int)zp);
    return NNE_OK;
}

/* Pow2 shift of a real multiplier 2^-(fx + fw - fy), range-checked. */
static nne_status pow2_rq(float x_scale, float w_scale, float y_scale, nne_requant *rq) {
    int32_t fx = 0, fw = 0, fy = 0;
    nne_status st = nne_quant_pow2_shift(x_scale, &fx);
    if (st == NNE_OK) st = nne_quant_pow2_shift(w_scale, &fw);
    if (st == NNE_OK) st = nne_quant_pow2_shift(y_scale, &fy);
    if (st != NNE_OK) return st;
    const int32_t s = fx + fw - fy;
    if (s < -NNE_REQUANT_SHIFT_MAX || s > NNE_REQUANT_SHIFT_MAX)
        return nne_error(NNE_ERR_INVALID_ARG, "power-of-two rescale by 2^%d out of range", (int)-s);
    rq->multiplier = 0;
    rq->shift = s;
    return NNE_OK;
}

nne_status nne_qoutput_init(nne_qoutput *out, nne_requant *rq, int32_t count, float x_scale,
                            const float *w_scale, float y_scale, int32_t y_zero_point, bool pow2,
                            nne_qact act) {
    if (count < 1) return nne_error(NNE_ERR_INVALID_ARG, "output stage with %d channels", count);
    nne_status st = check_scale(x_scale, "input");
    if (st == NNE_OK) st = check_scale(y_scale, "output");
    if (st == NNE_OK) st = check_zero_point(y_zero_point, "output");
    for (int32_t c = 0; st == NNE_OK && c < count; c++) {
        const float ws = w_scale ? w_scale[c] : 1.0f;
        st = check_scale(ws, "weight");
        if (st != NNE_OK) break;
        if (pow2)
            st = pow2_rq(x_scale, ws, y_scale, &rq[c]);
        else
            st = nne_quant_multiplier_from_scale((double)x_scale * ws / y_scale, &rq[c]);
    }
    if (st != NNE_OK) return st;
    out->mode = pow2 ? NNE_RQ_POW2 : NNE_RQ_Q31;
    out->count = count;
    out->rq = rq;
    out->zero_point = y_zero_point;
    nne_qact_range(act, y_scale, y_zero_point, pow2, &out->act_min, &out->act_max);
    out->rq_neg = NULL;
    out->neg_count = 0;
    return NNE_OK;
}

static nne_status check_per_tensor(const nne_quant *q, const char *what) {
    if (!q || q->count != 1 || q->axis >= 0 || !q->scale || !q->zero_point)
        return nne_error(NNE_ERR_UNSUPPORTED, "%s must be quantized per tensor", what);
    return NNE_OK;
}

nne_status nne_qoutput_from_quant(nne_qoutput *out, nne_requant *rq, int32_t rq_capacity,
                                  const nne_quant *x, const nne_quant *w, const nne_quant *y,
                                  nne_qact act) {
    nne_status st = check_per_tensor(x, "input");
    if (st == NNE_OK) st = check_per_tensor(y, "output");
    if (st != NNE_OK) return st;
    st = check_zero_point(x->zero_point[0], "input");
    if (st != NNE_OK) return st;
    int32_t count = 1;
    bool pow2 = x->pow2 && y->pow2;
    if (w) {
        if (w->count < 1 || !w->scale || !w->zero_point || (w->count > 1 && w->axis != 0))
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "weights must be quantized per tensor or per output channel");
        for (int32_t c = 0; c < w->count; c++)
            if (w->zero_point[c] != 0)
                return nne_error(NNE_ERR_UNSUPPORTED,
                                 "weight zero point %d (channel %d): weights must be symmetric",
                                 (int)w->zero_point[c], (int)c);
        count = w->count;
        pow2 = pow2 && w->pow2;
    }
    if (count > rq_capacity)
        return nne_error(NNE_ERR_INVALID_ARG, "%d requantization multipliers, room for %d",
                         (int)count, (int)rq_capacity);
    return nne_qoutput_init(out, rq, count, x->scale[0], w ? w->scale : NULL, y->scale[0],
                            y->zero_point[0], pow2, act);
}

nne_status nne_qoutput_fuse_prelu(nne_qoutput *out, nne_requant *rq_neg, int32_t count,
                                  float x_scale, const float *w_scale, float y_scale,
                                  const float *slope, int32_t n_slope) {
    if (!out || !rq_neg || !slope)
        return nne_error(NNE_ERR_INVALID_ARG, "PReLU fusion: NULL argument");
    if (out->mode == NNE_RQ_POW2)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "PReLU fusion into a power-of-two output stage (Q31 only)");
    const int32_t want = out->count > n_slope ? out->count : n_slope;
    if (count < 1 || (out->count != 1 && out->count != count) ||
        (n_slope != 1 && n_slope != count) || count != want)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "PReLU fusion: %d channels, output stage of %d, %d slopes", (int)count,
                         (int)out->count, (int)n_slope);
    if (out->act_min != -128 || out->act_max != 127)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "PReLU fusion into an output stage clamped to [%d, %d] (a fused "
                         "ReLU/ReLU6 and a PReLU do not combine)",
                         (int)out->act_min, (int)out->act_max);
    nne_status st = check_scale(x_scale, "input");
    if (st == NNE_OK) st = check_scale(y_scale, "output");
    for (int32_t c = 0; st == NNE_OK && c < count; c++) {
        const float ws = w_scale ? w_scale[out->count == 1 ? 0 : c] : 1.0f;
        const float a = slope[n_slope == 1 ? 0 : c];
        st = check_scale(ws, "weight");
        if (st == NNE_OK && !isfinite(a))
            st = nne_error(NNE_ERR_INVALID_ARG, "PReLU slope %g (channel %d)", (double)a, (int)c);
        /* M_neg = slope * M with M computed as nne_qoutput_init does: slope 1 gives rq[c]
         * exactly; a negative slope gives a signed Q31 mantissa, slope 0 {0, 0}. */
        if (st == NNE_OK)
            st = nne_quant_multiplier_from_scale((double)x_scale * ws / y_scale * a, &rq_neg[c]);
    }
    if (st != NNE_OK) return st;
    out->rq_neg = rq_neg;
    out->neg_count = count;
    return NNE_OK;
}

void nne_requantize_s32_s8__ref(size_t pixels, int32_t c, const int32_t *acc,
                                const nne_qoutput *out, int8_t *y) {
    assert(acc && out && y && c >= 0 && (out->count == 1 || out->count == c));
    for (size_t p = 0; p < pixels; p++)
        for (int32_t ch = 0; ch < c; ch++)
            y[p * c + ch] = nne_qoutput_apply(out, ch, acc[p * c + ch]);
}

nne_status nne_qrescale_init(nne_qoutput *out, nne_requant *rq, float x_scale, float y_scale,
                             int32_t y_zero_point, bool pow2, int32_t *mul) {
    nne_status st =
        nne_qoutput_init(out, rq, 1, x_scale, NULL, y_scale, y_zero_point, pow2, NNE_QACT_NONE);
    *mul = 1;
    if (st != NNE_OK || pow2) return st;
    /* v (|v| <= 255) enters as v * 2^FRAC and the multiplier is 2^FRAC smaller, so that SRDHM
     * keeps FRAC fraction bits and only the final shift rounds (NNE_Q31_DIFF_FRAC). A
     * multiplier below 2^-32 becomes 0: v * M < 2^-23 rounds to 0. */
    st = nne_quant_multiplier_from_scale((double)x_scale / y_scale * ldexp(1.0, -NNE_Q31_DIFF_FRAC),
                                         rq);
    if (st == NNE_OK) *mul = 1 << NNE_Q31_DIFF_FRAC;
    return st;
}

void nne_rescale_s8__ref(size_t count, const int8_t *x, int32_t x_zero_point,
                         const nne_qoutput *out, int32_t mul, int8_t *y) {
    assert(x && out && y && out->count == 1 && mul >= 1 && mul <= 1 << NNE_Q31_DIFF_FRAC);
    /* |(x - zp) * mul| <= 255 * 2^16 */
    for (size_t i = 0; i < count; i++)
        y[i] = nne_qoutput_apply(out, 0, (x[i] - x_zero_point) * mul);
}

nne_status nne_qadd_init(nne_qadd *p, float a_scale, int32_t a_zero_point, float b_scale,
                         int32_t b_zero_point, float y_scale, int32_t y_zero_point, bool pow2,
                         nne_qact act) {
    nne_status st = check_scale(a_scale, "first input");
    if (st == NNE_OK) st = check_scale(b_scale, "second input");
    if (st == NNE_OK) st = check_scale(y_scale, "output");
    if (st == NNE_OK) st = check_zero_point(a_zero_point, "first input");
    if (st == NNE_OK) st = check_zero_point(b_zero_point, "second input");
    if (st == NNE_OK) st = check_zero_point(y_zero_point, "output");
    if (st != NNE_OK) return st;
    p->mode = pow2 ? NNE_RQ_POW2 : NNE_RQ_Q31;
    p->a_zero_point = a_zero_point;
    p->b_zero_point = b_zero_point;
    p->y_zero_point = y_zero_point;
    if (pow2) {
        int32_t fa = 0, fb = 0, fy = 0;
        st = nne_quant_pow2_shift(a_scale, &fa);
        if (st == NNE_OK) st = nne_quant_pow2_shift(b_scale, &fb);
        if (st == NNE_OK) st = nne_quant_pow2_shift(y_scale, &fy);
        if (st != NNE_OK) return st;
        /* Align both inputs exactly to 2^-(fy + F); keep left shifts <= 22 so that
         * |t| <= 2 * 255 * 2^22 < 2^31. */
        const int32_t fmin = fa < fb ? fa : fb, fmax = fa > fb ? fa : fb;
        int32_t f = fmax - fy > 0 ? fmax - fy : 0;
        if (fy + f - fmin > 22) f = 22 - fy + fmin;
        p->a_rq = (nne_requant){0, fa - fy - f};
        p->b_rq = (nne_requant){0, fb - fy - f};
        p->y_rq = (nne_requant){0, f};
        const int32_t shifts[3] = {p->a_rq.shift, p->b_rq.shift, f};
        for (int i = 0; i < 3; i++)
            if (shifts[i] < -NNE_REQUANT_SHIFT_MAX || shifts[i] > NNE_REQUANT_SHIFT_MAX)
                return nne_error(NNE_ERR_UNSUPPORTED,
                                 "add of fixed-point positions %d, %d -> %d out of range", (int)fa,
                                 (int)fb, (int)fy);
    } else {
        /* TFLite: inputs normalised by twice the larger scale, 20 extra fraction bits:
         * |M_k| <= 2^19, so |rq(x - z, M_k)| <= 255 * 2^19 + 1 < 2^27 and |t| < 2^28. */
        const double twice_max = 2.0 * (a_scale > b_scale ? a_scale : b_scale);
        const double f = 1048576.0; /* 2^20 */
        st = nne_quant_multiplier_from_scale(a_scale / twice_max * f, &p->a_rq);
        if (st == NNE_OK) st = nne_quant_multiplier_from_scale(b_scale / twice_max * f, &p->b_rq);
        if (st == NNE_OK) st = nne_quant_multiplier_from_scale(twice_max / (f * y_scale), &p->y_rq);
        if (st != NNE_OK) return st;
    }
    nne_qact_range(act, y_scale, y_zero_point, pow2, &p->act_min, &p->act_max);
    return NNE_OK;
}

bool nne_slope_pow2(float slope, int32_t *code, int32_t *k) {
    if (!isfinite(slope)) return false;
    if (slope == 0.0f) {
        *code = 0;
        *k = 0;
        return true;
    }
    int e = 0;
    /* slope = m * 2^e, |m| in [0.5, 1): m * 2^24 is an integer (f32 has 24 significant
     * bits), so slope = a * 2^(e - 24) with a integer; strip a's factors of two. */
    int64_t a = (int64_t)ldexp((double)frexpf(slope, &e), 24);
    int32_t kk = 24 - e;
    while (a % 2 == 0) {
        a /= 2;
        kk--;
    }
    if (a > 127 || a < -127) return false;
    *code = (int32_t)a;
    *k = kk;
    return true;
}

nne_status nne_quantize_slopes_pow2(int32_t n, const float *slope, float *out, int32_t *fa) {
    if (n < 1 || !slope || !out)
        return nne_error(NNE_ERR_INVALID_ARG, "slope quantization of %d slopes", (int)n);
    float scale = 1.0f;
    /* One group of n values, 8 bits, pow2: section 11's rule, codes in [-127, 127]. */
    const nne_shape sh = nne_shape_1d(n);
    nne_status st = nne_fake_quantize_tensor(&sh, slope, 8, false, true, out, &scale);
    if (st != NNE_OK) return st;
    if (fa) (void)nne_quant_pow2_shift(scale, fa);
    return NNE_OK;
}

nne_status nne_qprelu_init(nne_qoutput *pos, nne_requant *pos_rq, int32_t *pos_mul,
                           nne_qoutput *neg, nne_requant *neg_rq, int32_t *neg_slope,
                           float x_scale, const float *slope, int32_t n_slope, float y_scale,
                           int32_t y_zero_point, bool pow2) {
    if (n_slope < 1) return nne_error(NNE_ERR_INVALID_ARG, "PReLU with %d slopes", (int)n_slope);
    nne_status st = nne_qrescale_init(pos, pos_rq, x_scale, y_scale, y_zero_point, pow2, pos_mul);
    if (st != NNE_OK) return st;
    if (pow2) {
        /* slope a * 2^-k: the integer a multiplies v (a one-tap MAC whose weight a has the
         * scale 2^-k), and the shift grows by k. */
        float wscale[64], *ws = n_slope <= 64 ? wscale : nne_malloc((size_t)n_slope * sizeof *ws);
        if (!ws) return NNE_ERR_NOMEM;
        for (int32_t c = 0; c < n_slope && st == NNE_OK; c++) {
            int32_t k = 0;
            if (!nne_slope_pow2(slope[c], &neg_slope[c], &k))
                st = nne_error(NNE_ERR_UNSUPPORTED,
                               "PReLU slope %g (channel %d) is not an integer of at most 7 bits "
                               "times a power of two",
                               (double)slope[c], (int)c);
            else if (k < -126 || k > 126)
                st = nne_error(NNE_ERR_UNSUPPORTED, "PReLU slope %g (channel %d) out of range",
                               (double)slope[c], (int)c);
            else
                ws[c] = ldexpf(1.0f, -k);
        }
        if (st == NNE_OK)
            st = nne_qoutput_init(neg, neg_rq, n_slope, x_scale, ws, y_scale, y_zero_point, true,
                                  NNE_QACT_NONE);
        if (ws != wscale) nne_free(ws);
        return st;
    }
    /* The negative side as the positive one (nne_qrescale_init): v * 2^FRAC into multipliers
     * 2^FRAC smaller. Slopes may be negative or zero: M_neg = slope * x / y with a signed Q31
     * mantissa. */
    const double frac = ldexp(1.0, -NNE_Q31_DIFF_FRAC);
    for (int32_t c = 0; c < n_slope; c++) {
        if (!isfinite(slope[c]))
            return nne_error(NNE_ERR_INVALID_ARG, "PReLU slope %g (channel %d)", (double)slope[c],
                             (int)c);
        st = nne_quant_multiplier_from_scale((double)slope[c] * x_scale / y_scale * frac,
                                             &neg_rq[c]);
        if (st != NNE_OK) return st;
        neg_slope[c] = 1 << NNE_Q31_DIFF_FRAC;
    }
    *neg = *pos;
    neg->count = n_slope;
    neg->rq = neg_rq;
    return NNE_OK;
}
