/* Int8 reference kernels (include/nnedge/qops.h) against docs/quantization.md.
 *
 * The oracle is an independent "float simulation of the same integer math": accumulators are
 * summed in int64 in a different loop structure (scatter over input pixels instead of the
 * kernels' gather), and requantization is evaluated in long double (64-bit mantissa, so
 * acc * m < 2^62 is exact) with libm's floorl/roundl for the documented tie rules instead of
 * the kernels' masks and nudges. Kernels must agree with it exactly. Then: int8 results
 * approximate the f32 reference kernels within the quantization step when inputs are
 * quantized from float (scale bookkeeping), and rounding / saturation edge cases. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "nnedge/qops.h"
#include "testutil.h"

/* ---- Oracle ------------------------------------------------------------------------------ */

static long double clampl_(long double v, long double lo, long double hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* docs/quantization.md 4.1 / 4.2, literally:
 *   pow2: floor(acc / 2^s + 1/2), left shifts saturate;
 *   Q31:  a = sat(acc * 2^-s) (s < 0); h = floor(a * m / 2^31 + 1/2);
 *         r = s > 0 ? round_half_away(h / 2^s) : h. */
static int64_t sim_requant(int64_t acc, nne_requant rq, nne_rq_mode mode) {
    long double v = (long double)acc;
    if (mode == NNE_RQ_POW2) {
        v = ldexpl(v, -rq.shift);
        if (rq.shift > 0) v = floorl(v + 0.5L);
        return (int64_t)clampl_(v, INT32_MIN, INT32_MAX);
    }
    if (rq.shift < 0) v = clampl_(ldexpl(v, -rq.shift), INT32_MIN, INT32_MAX);
    long double h = floorl(ldexpl(v * (long double)rq.multiplier, -31) + 0.5L);
    if (rq.shift > 0) h = roundl(ldexpl(h, -rq.shift)); /* roundl: ties away from zero */
    return (int64_t)h;
}

/* With a fused PReLU (rq_neg), a negative accumulator takes rq_neg (docs/quantization.md 5). */
static int8_t sim_out(const nne_qoutput *o, int32_t ch, int64_t acc) {
    const nne_requant rq = o->rq_neg && acc < 0 ? o->rq_neg[o->neg_count == 1 ? 0 : ch]
                                                : o->rq[o->count == 1 ? 0 : ch];
    const int64_t r = sim_requant(acc, rq, o->mode) + o->zero_point;
    return (int8_t)(r < o->act_min ? o->act_min : r > o->act_max ? o->act_max : r);
}

/* ---- Random data --------------------------------------------------------------------------- */

static int8_t *rand_s8(nne_test_rng *r, size_t n, int lo, int hi) {
    int8_t *p = nne_malloc(n ? n : 1);
    for (size_t i = 0; p && i < n; i++) p[i] = (int8_t)nne_test_rng_int(r, lo, hi);
    return p;
}

static float rand_f(nne_test_rng *r, double lo, double hi) {
    return (float)(lo + (hi - lo) * nne_test_rng_uniform(r));
}

/* A scale: a power of two 2^-k (k in [klo, khi]) when pow2, else log-uniform in the same
 * range. Q31 mode sometimes gets powers of two too: then m = 2^30 and SRDHM meets ties. */
static float rand_scale(nne_test_rng *r, bool pow2, int klo, int khi) {
    const int k = nne_test_rng_int(r, klo, khi);
    if (pow2 || nne_test_rng_int(r, 0, 3) == 0) return ldexpf(1.0f, -k);
    return ldexpf(rand_f(r, 1.0, 2.0), -k);
}

static nne_qact rand_act(nne_test_rng *r) { return (nne_qact)nne_test_rng_int(r, 0, 2); }

/* Output extent, written out independently of nne_conv_out_dim (the kernels assert that the
 * two agree): the dilated kernel spans dil*(k-1) + 1 inputs. */
static int32_t out_size(int32_t in, int32_t k, int32_t stride, int32_t dil, int32_t pads,
                        int32_t out_pad, bool transposed) {
    const int32_t span = dil * (k - 1) + 1;
    if (transposed) return stride * (in - 1) + span + out_pad - pads;
    return in + pads < span ? 0 : (in + pads - span) / stride + 1;
}

/* Random conv geometry: channels 1..19 per group (not multiples of 8/16 in general), groups
 * 1-3 or depthwise, strides 1-2, dilation 1-2, asymmetric padding, output padding. */
static nne_conv2d_geom rand_geom(nne_test_rng *r, bool transposed) {
    nne_conv2d_geom g;
    for (;;) {
        memset(&g, 0, sizeof g);
        g.n = nne_test_rng_int(r, 1, 2);
        const int kind = nne_test_rng_int(r, 0, 3);
        g.groups = kind == 0 ? nne_test_rng_int(r, 2, 3) : 1;
        g.ic = g.groups * nne_test_rng_int(r, 1, 19);
        g.oc = g.groups * nne_test_rng_int(r, 1, 19);
        if (kind == 1) { /* depthwise, channel multiplier 1-2 */
            g.ic = g.groups = nne_test_rng_int(r, 1, 17);
            g.oc = g.ic * nne_test_rng_int(r, 1, 2);
        }
        g.ih = nne_test_rng_int(r, 1, 9), g.iw = nne_test_rng_int(r, 1, 9);
        g.kh = nne_test_rng_int(r, 1, 4), g.kw = nne_test_rng_int(r, 1, 4);
        g.stride_h = nne_test_rng_int(r, 1, 2), g.stride_w = nne_test_rng_int(r, 1, 2);
        g.dil_h = nne_test_rng_int(r, 1, 2), g.dil_w = nne_test_rng_int(r, 1, 2);
        const int32_t eh = g.dil_h * (g.kh - 1), ew = g.dil_w * (g.kw - 1);
        g.pad_t = nne_test_rng_int(r, 0, eh), g.pad_b = nne_test_rng_int(r, 0, eh);
        g.pad_l = nne_test_rng_int(r, 0, ew), g.pad_r = nne_test_rng_int(r, 0, ew);
        if (transposed) {
            g.out_pad_h = nne_test_rng_int(r, 0, g.stride_h - 1);
            g.out_pad_w = nne_test_rng_int(r, 0, g.stride_w - 1);
        }
        g.oh =
            out_size(g.ih, g.kh, g.stride_h, g.dil_h, g.pad_t + g.pad_b, g.out_pad_h, transposed);
        g.ow =
            out_size(g.iw, g.kw, g.stride_w, g.dil_w, g.pad_l + g.pad_r, g.out_pad_w, transposed);
        if (g.oh > 0 && g.ow > 0) return g;
    }
}

static size_t n_in(const nne_conv2d_geom *g) { return (size_t)g->n * g->ih * g->iw * g->ic; }
static size_t n_out(const nne_conv2d_geom *g) { return (size_t)g->n * g->oh * g->ow * g->oc; }
static size_t n_w(const nne_conv2d_geom *g) {
    return (size_t)g->oc * g->kh * g->kw * (g->ic / g->groups);
}

/* Oracle accumulators, scatter form: every input pixel, through every tap, adds into the
 * output it reaches. conv: in[iy] reaches out[oy] iff oy*stride - pad + ky*dil == iy;
 * transposed: out[iy*stride - pad + ky*dil]. int64, bias included. */
static void oracle_conv_acc(const nne_conv2d_geom *g, bool transposed, const int8_t *x, int32_t xz,
                            const int8_t *w, const int32_t *bias, int64_t *acc) {
    const int32_t icg = g->ic / g->groups, ocg = g->oc / g->groups;
    for (size_t i = 0; i < n_out(g); i++) acc[i] = bias ? bias[i % g->oc] : 0;
    for (int32_t b = 0; b < g->n; b++)
        for (int32_t iy = 0; iy < g->ih; iy++)
            for (int32_t ix = 0; ix < g->iw; ix++)
                for (int32_t ky = 0; ky < g->kh; ky++)
                    for (int32_t kx = 0; kx < g->kw; kx++) {
                        int32_t oy, ox;
                        if (transposed) {
                            oy = iy * g->stride_h - g->pad_t + ky * g->dil_h;
                            ox = ix * g->stride_w - g->pad_l + kx * g->dil_w;
                        } else {
                            const int32_t ty = iy + g->pad_t - ky * g->dil_h;
                            const int32_t tx = ix + g->pad_l - kx * g->dil_w;
                            if (ty < 0 || tx < 0 || ty % g->stride_h || tx % g->stride_w) continue;
                            oy = ty / g->stride_h, ox = tx / g->stride_w;
                        }
                        if (oy < 0 || ox < 0 || oy >= g->oh || ox >= g->ow) continue;
                        const int8_t *xp = x + (((size_t)b * g->ih + iy) * g->iw + ix) * g->ic;
                        int64_t *ap = acc + (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc;
                        for (int32_t o = 0; o < g->oc; o++) {
                            const int32_t grp = o / ocg;
                            const int8_t *wp = w + (((size_t)o * g->kh + ky) * g->kw + kx) * icg;
                            for (int32_t c = 0; c < icg; c++)
                                ap[o] += (int64_t)(xp[grp * icg + c] - xz) * wp[c];
                        }
                    }
}

/* ---- Requantization edge cases ----------------------------------------------------------- */

static int32_t rq_pow2(int32_t acc, int32_t s) {
    return nne_requantize(acc, (nne_requant){0, s}, NNE_RQ_POW2);
}
static int32_t rq_q31(int32_t acc, int32_t m, int32_t s) {
    return nne_requantize(acc, (nne_requant){m, s}, NNE_RQ_Q31);
}

static void test_requant_edges(void) {
    /* pow2: round half up (toward +inf). */
    CHECK(rq_pow2(5, 1) == 3 && rq_pow2(-5, 1) == -2 && rq_pow2(3, 1) == 2 && rq_pow2(-3, 1) == -1);
    CHECK(rq_pow2(6, 2) == 2 && rq_pow2(-6, 2) == -1 && rq_pow2(-7, 2) == -2 && rq_pow2(7, 2) == 2);
    CHECK(rq_pow2(12345, 0) == 12345 && rq_pow2(-7, 0) == -7);                         /* shift 0 */
    CHECK(rq_pow2(-3, -4) == -48 && rq_pow2(1, -31) == INT32_MAX);                     /* left */
    CHECK(rq_pow2(INT32_MAX, -1) == INT32_MAX && rq_pow2(INT32_MIN, -1) == INT32_MIN); /* sat */
    CHECK(rq_pow2(INT32_MAX, 1) == 1073741824 && rq_pow2(INT32_MIN, 1) == -1073741824);
    CHECK(rq_pow2(INT32_MIN, 31) == -1 && rq_pow2(INT32_MAX, 31) == 1);
    CHECK(rq_pow2(-(1 << 30), 31) == 0); /* -0.5 -> 0 (half up) */

    /* Q31, SRDHM alone (shift 0, m = 2^30 is M = 1/2): ties half up. */
    const int32_t half = 1 << 30;
    CHECK(rq_q31(1, half, 0) == 1 && rq_q31(-1, half, 0) == 0);
    CHECK(rq_q31(3, half, 0) == 2 && rq_q31(-3, half, 0) == -1);
    CHECK(rq_q31(INT32_MAX, half, 0) == 1073741824 && rq_q31(INT32_MIN, half, 0) == -1073741824);
    /* RDBP ties away from zero: SRDHM(10, 2^30) = 5 exactly, then 5 / 2 = 2.5 -> 3. */
    CHECK(rq_q31(10, half, 1) == 3 && rq_q31(-10, half, 1) == -3);
    CHECK(rq_q31(6, half, 1) == 2 && rq_q31(-6, half, 1) == -2); /* 1.5 -> 2 */
    /* Double rounding, as gemmlowp: 5 * 1/4: h = SRDHM(5, 2^30) = 3 (2.5 up), RDBP(3, 1) = 2. */
    CHECK(rq_q31(5, half, 1) == 2 && rq_q31(-5, half, 1) == -1);
    /* Identity {2^30, -1}: exact on |acc| < 2^30; saturating beyond (then the s8 clamp). */
    const nne_requant id = nne_requant_identity(NNE_RQ_Q31);
    CHECK(id.multiplier == half && id.shift == -1);
    const int32_t idv[] = {0, 1, -1, 127, -128, 255, -255, (1 << 30) - 1, -(1 << 30)};
    for (size_t i = 0; i < sizeof idv / sizeof idv[0]; i++)
        CHECK_MSG(nne_requantize(idv[i], id, NNE_RQ_Q31) == idv[i], "identity(%d)", idv[i]);
    CHECK(nne_requantize(INT32_MAX, id, NNE_RQ_Q31) == 1073741824);
    CHECK(nne_requantize(INT32_MIN, id, NNE_RQ_Q31) == -1073741824);
    CHECK(nne_requantize(77, nne_requant_identity(NNE_RQ_POW2), NNE_RQ_POW2) == 77);
    /* Multiplier 0, negative multipliers, shifts +-31. */
    CHECK(rq_q31(INT32_MAX, 0, 5) == 0 && rq_q31(INT32_MIN, 0, -31) == 0);
    CHECK(rq_q31(3, -half, 0) == -1 && rq_q31(-3, -half, 0) == 2); /* -1.5 -> -1, 1.5 -> 2 */
    CHECK(rq_q31(INT32_MIN, INT32_MAX, 31) == -1);                 /* (-2^31 * ~1) / 2^31 ≈ -1 */
    CHECK(rq_q31(1, INT32_MAX, -31) == INT32_MAX - 1);             /* a saturates to INT32_MAX */
    CHECK(rq_q31(-1, INT32_MAX, -31) == -INT32_MAX);

    /* Random: the primitive against the long double oracle, including the int32 extremes. */
    nne_test_rng r;
    nne_test_rng_seed(&r, 101);
    const int32_t special[] = {INT32_MIN, INT32_MIN + 1, -(1 << 30),    -1,       0,
                               1,         (1 << 30),     INT32_MAX - 1, INT32_MAX};
    size_t bad = 0;
    for (int it = 0; it < 300000; it++) {
        const nne_rq_mode mode = (nne_rq_mode)(it & 1);
        nne_requant rq;
        rq.shift = nne_test_rng_int(&r, -31, 31);
        const int mk = nne_test_rng_int(&r, 0, 9);
        rq.multiplier = mode == NNE_RQ_POW2 ? 0
                        : mk == 0           ? 0
                        : mk == 1           ? half
                        : mk == 2           ? INT32_MAX
                        : mk == 3 ? -(int32_t)(half + (int32_t)(nne_test_rng_u64(&r) % half))
                                  : (int32_t)(half + (int32_t)(nne_test_rng_u64(&r) % half));
        int32_t acc;
        const int ak = nne_test_rng_int(&r, 0, 3);
        if (ak == 0)
            acc = special[nne_test_rng_int(&r, 0, 8)];
        else if (ak == 1)
            acc = nne_test_rng_int(&r, -70000, 70000);
        else
            acc = (int32_t)(uint32_t)nne_test_rng_u64(&r);
        const int64_t want = sim_requant(acc, rq, mode);
        const int32_t got = nne_requantize(acc, rq, mode);
        if (got != want && bad++ < 5)
            fprintf(stderr, "  acc %d m %d s %d mode %d: got %d want %lld\n", acc, rq.multiplier,
                    rq.shift, mode, got, (long long)want);
    }
    CHECK_MSG(bad == 0, "%zu mismatches", bad);
}

static void test_multiplier_from_scale(void) {
    nne_requant rq;
    CHECK_OK(nne_quant_multiplier_from_scale(1.0, &rq));
    CHECK(rq.multiplier == (1 << 30) && rq.shift == -1);
    CHECK_OK(nne_quant_multiplier_from_scale(0.25, &rq));
    CHECK(rq.multiplier == (1 << 30) && rq.shift == 1);
    CHECK_OK(nne_quant_multiplier_from_scale(-0.75, &rq));
    CHECK(rq.multiplier == -(3 << 29) && rq.shift == 0);
    CHECK_OK(nne_quant_multiplier_from_scale(1.0 - ldexp(1.0, -40), &rq)); /* rounds to 1 */
    CHECK(rq.multiplier == (1 << 30) && rq.shift == -1);
    CHECK_OK(nne_quant_multiplier_from_scale(0.0, &rq));
    CHECK(rq.multiplier == 0 && rq.shift == 0);
    CHECK_OK(nne_quant_multiplier_from_scale(ldexp(1.0, -33), &rq)); /* underflow: 0 */
    CHECK(rq.multiplier == 0 && rq.shift == 0);
    CHECK_OK(nne_quant_multiplier_from_scale(ldexp(1.0, -32), &rq)); /* smallest kept */
    CHECK(rq.multiplier == (1 << 30) && rq.shift == 31);
    CHECK_OK(nne_quant_multiplier_from_scale(ldexp(1.0, 30), &rq));
    CHECK(rq.multiplier == (1 << 30) && rq.shift == -31);
    CHECK_STATUS(nne_quant_multiplier_from_scale(ldexp(1.0, 31), &rq), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_quant_multiplier_from_scale(NAN, &rq), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_quant_multiplier_from_scale(INFINITY, &rq), NNE_ERR_INVALID_ARG);
    /* Random: |m * 2^-31 * 2^-s - M| <= 2^-32 * 2^-s (one rounding of the mantissa). */
    nne_test_rng r;
    nne_test_rng_seed(&r, 102);
    for (int it = 0; it < 20000; it++) {
        const double m = ldexp(1.0 + nne_test_rng_uniform(&r), nne_test_rng_int(&r, -32, 29));
        CHECK_OK(nne_quant_multiplier_from_scale(m, &rq));
        const double back = ldexp((double)rq.multiplier, -31 - rq.shift);
        if (!(rq.multiplier >= (1 << 30) && fabs(back - m) <= ldexp(1.0, -32 - rq.shift))) {
            CHECK_MSG(0, "M %.17g -> {%d, %d}", m, rq.multiplier, rq.shift);
            break;
        }
    }
    int32_t fp = 99;
    CHECK_OK(nne_quant_pow2_shift(0.25f, &fp));
    CHECK(fp == 2);
    CHECK_OK(nne_quant_pow2_shift(8.0f, &fp));
    CHECK(fp == -3);
    CHECK_OK(nne_quant_pow2_shift(ldexpf(1.0f, -149), &fp)); /* smallest subnormal */
    CHECK(fp == 149);
    CHECK_STATUS(nne_quant_pow2_shift(0.3f, &fp), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_quant_pow2_shift(0.0f, &fp), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_quant_pow2_shift(-0.5f, &fp), NNE_ERR_INVALID_ARG);
}

static void test_quantize_value(void) {
    /* General: half even on the f32 product. */
    CHECK(nne_quantize_value(0.5f, 1.0f, 0, -128, 127, false) == 0);
    CHECK(nne_quantize_value(1.5f, 1.0f, 0, -128, 127, false) == 2);
    CHECK(nne_quantize_value(2.5f, 1.0f, 0, -128, 127, false) == 2);
    CHECK(nne_quantize_value(-0.5f, 1.0f, 0, -128, 127, false) == 0);
    CHECK(nne_quantize_value(-1.5f, 1.0f, 0, -128, 127, false) == -2);
    CHECK(nne_quantize_value(0.3f, 0.1f, 0, -128, 127, false) == 3);
    /* pow2: half up. */
    CHECK(nne_quantize_value(0.5f, 1.0f, 0, -128, 127, true) == 1);
    CHECK(nne_quantize_value(2.5f, 1.0f, 0, -128, 127, true) == 3);
    CHECK(nne_quantize_value(-0.5f, 1.0f, 0, -128, 127, true) == 0);
    CHECK(nne_quantize_value(-1.5f, 1.0f, 0, -128, 127, true) == -1);
    CHECK(nne_quantize_value(0.375f, 0.25f, 3, -128, 127, true) == 5); /* 1.5 -> 2, + 3 */
    /* Zero point, saturation, NaN / inf, u8 range. */
    CHECK(nne_quantize_value(0.0f, 0.1f, -37, -128, 127, false) == -37);
    CHECK(nne_quantize_value(1e9f, 0.1f, 5, -128, 127, false) == 127);
    CHECK(nne_quantize_value(-1e30f, 1e-30f, 5, -128, 127, false) == -128);
    CHECK(nne_quantize_value(NAN, 0.1f, 9, -128, 127, false) == 9);
    CHECK(nne_quantize_value(INFINITY, 0.1f, 9, -128, 127, true) == 127);
    CHECK(nne_quantize_value(-INFINITY, 0.1f, 9, 0, 255, false) == 0);
    CHECK(nne_quantize_value(1.0f, 1.0f / 255, 0, 0, 255, false) == 255);

    /* u8 with zero point z is s8 with zero point z - 128, after the top-bit flip. */
    nne_test_rng r;
    nne_test_rng_seed(&r, 103);
    float x[500], back8[500], backu[500];
    int8_t q8[500], q8c[500];
    uint8_t qu[500];
    for (int i = 0; i < 500; i++) x[i] = rand_f(&r, -3, 3);
    const int32_t zu = 131;
    const float s = 0.019f;
    nne_quantize_f32_u8__ref(500, x, s, zu, false, qu);
    nne_quantize_f32_s8__ref(500, x, s, zu - 128, false, q8);
    nne_convert_u8_s8__ref(500, qu, q8c);
    CHECK(memcmp(q8, q8c, sizeof q8) == 0);
    nne_convert_s8_u8__ref(500, q8c, qu);
    nne_dequantize_u8_f32__ref(500, qu, s, zu, backu);
    nne_dequantize_s8_f32__ref(500, q8, s, zu - 128, back8);
    CHECK(memcmp(backu, back8, sizeof back8) == 0);
    size_t bad = 0;
    for (int i = 0; i < 500; i++) {
        const float lo = s * (-128 - (zu - 128)), hi = s * (127 - (zu - 128));
        const float xc = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
        bad += !(fabsf(back8[i] - xc) <= 0.5f * s * 1.0001f);
    }
    CHECK_MSG(bad == 0, "%zu values off by more than half a step", bad);

    /* Bias: round(b / (sx * sw)), saturated, per channel. */
    const float b[4] = {1.0f, -0.375f, 1e30f, 0.0625f};
    const float ws[4] = {0.5f, 0.5f, 0.5f, 0.25f};
    int32_t qb[4];
    nne_quantize_bias_s32(4, b, 0.25f, ws, 4, true, qb);
    CHECK(qb[0] == 8 && qb[1] == -3 && qb[2] == INT32_MAX && qb[3] == 1);
    nne_quantize_bias_s32(4, b, 0.25f, ws, 4, false, qb);
    CHECK(qb[1] == -3 && qb[3] == 1);      /* -3 exact; 0.0625/0.0625 = 1 */
    const float b2[2] = {0.625f, -0.625f}; /* / (0.5 * 0.5) = +-2.5 */
    nne_quantize_bias_s32(2, b2, 0.5f, ws, 1, false, qb);
    CHECK(qb[0] == 2 && qb[1] == -2);
    nne_quantize_bias_s32(2, b2, 0.5f, ws, 1, true, qb);
    CHECK(qb[0] == 3 && qb[1] == -2);
}

/* ---- Output stages from graph quantization parameters ------------------------------------- */

static void test_qoutput_from_quant(void) {
    nne_quant x = {0}, w = {0}, y = {0};
    const float sx = 0.25f, sy = 0.5f, sw[3] = {0.125f, 0.0625f, 0.25f};
    const int32_t zx = 3, zy = -4, zw[3] = {0, 0, 0}, zbad[3] = {0, 1, 0};
    CHECK_OK(nne_quant_set(&x, -1, 1, &sx, &zx, true));
    CHECK_OK(nne_quant_set(&y, -1, 1, &sy, &zy, true));
    CHECK_OK(nne_quant_set(&w, 0, 3, sw, zw, true));
    nne_requant rq[3];
    nne_qoutput out;
    CHECK_OK(nne_qoutput_from_quant(&out, rq, 3, &x, &w, &y, NNE_QACT_RELU));
    CHECK(out.mode == NNE_RQ_POW2 && out.count == 3 && out.zero_point == zy);
    CHECK(rq[0].shift == 2 + 3 - 1 && rq[1].shift == 2 + 4 - 1 && rq[2].shift == 2 + 2 - 1);
    CHECK(out.act_min == zy && out.act_max == 127);
    CHECK_STATUS(nne_qoutput_from_quant(&out, rq, 2, &x, &w, &y, NNE_QACT_NONE),
                 NNE_ERR_INVALID_ARG);
    /* One non-pow2 tensor: Q31 mode. */
    w.pow2 = false;
    CHECK_OK(nne_qoutput_from_quant(&out, rq, 3, &x, &w, &y, NNE_QACT_RELU6));
    CHECK(out.mode == NNE_RQ_Q31 && rq[0].multiplier == (1 << 30) && rq[0].shift == 3);
    CHECK(out.act_max == zy + 12); /* 6 / 0.5 */
    /* No weights (pool, concat): M = sx / sy. */
    CHECK_OK(nne_qoutput_from_quant(&out, rq, 1, &x, NULL, &y, NNE_QACT_NONE));
    CHECK(out.count == 1 && out.mode == NNE_RQ_POW2 && rq[0].shift == 1);
    nne_quant_free(&w);
    CHECK_OK(nne_quant_set(&w, 0, 3, sw, zbad, false));
    CHECK_STATUS(nne_qoutput_from_quant(&out, rq, 3, &x, &w, &y, NNE_QACT_NONE),
                 NNE_ERR_UNSUPPORTED);
    nne_quant_free(&w);
    CHECK_OK(nne_quant_set(&w, 1, 3, sw, zw, false)); /* per input channel */
    CHECK_STATUS(nne_qoutput_from_quant(&out, rq, 3, &x, &w, &y, NNE_QACT_NONE),
                 NNE_ERR_UNSUPPORTED);
    nne_quant_free(&w);
    CHECK_STATUS(nne_qoutput_from_quant(&out, rq, 3, &x, &x, &w, NNE_QACT_NONE),
                 NNE_ERR_UNSUPPORTED); /* y not quantized */
    /* Raw init: bad scales, zero points, non-pow2 scale in pow2 mode. */
    CHECK_STATUS(nne_qoutput_init(&out, rq, 1, 0.0f, NULL, 1.0f, 0, false, NNE_QACT_NONE),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_init(&out, rq, 1, 1.0f, NULL, 1.0f, 128, false, NNE_QACT_NONE),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_init(&out, rq, 1, 0.3f, NULL, 1.0f, 0, true, NNE_QACT_NONE),
                 NNE_ERR_INVALID_ARG);
    nne_quant_free(&x), nne_quant_free(&y);
}

/* ---- MAC layers ---------------------------------------------------------------------------- */

typedef struct {
    bool pow2;
    int32_t xz;
    nne_requant rq[64], rq_neg[64];
    nne_qoutput out;
    float sx, sy, sw[64];
    int32_t *bias;
} qlayer;

/* The fused PReLUs of rand_layer draw from their own generator, so that the other draws
 * (geometries, data) stay those of the unfused suites. */
static nne_test_rng fuse_rng;

/* Random quantization of a layer with `oc` outputs and K taps: x scale, per-tensor or
 * per-channel weight scales, output scale sized so that most outputs land inside the s8 range
 * (some saturate), random zero points and fused activation: in Q31 mode, a third of the
 * layers have a fused PReLU instead (nne_qoutput_fuse_prelu; shared or per-channel slopes in
 * [-0.5, 1.5], zero included). */
static void rand_layer(nne_test_rng *r, qlayer *L, int32_t oc, int64_t k, bool pow2) {
    L->pow2 = pow2;
    L->xz = nne_test_rng_int(r, 0, 2) == 0 ? 0 : nne_test_rng_int(r, -128, 127);
    L->sx = rand_scale(r, pow2, 4, 9);
    const int32_t count = nne_test_rng_int(r, 0, 1) ? oc : 1;
    for (int32_t c = 0; c < count; c++) L->sw[c] = rand_scale(r, pow2, 6, 9);
    /* Typical |acc| ~ sqrt(K) * 75 * 73 codes; aim for about a third of the s8 range. */
    const double typ = sqrt((double)k) * 75.0 * 73.0 * L->sx * L->sw[0] / 40.0;
    L->sy = pow2 ? ldexpf(1.0f, (int)floor(log2(typ))) : (float)(typ * rand_f(r, 0.7, 1.4));
    const int32_t zy = nne_test_rng_int(r, -20, 20);
    CHECK_OK(nne_qoutput_init(&L->out, L->rq, count, L->sx, L->sw, L->sy, zy, pow2, rand_act(r)));
    nne_test_rng *f = &fuse_rng;
    if (!pow2 && nne_test_rng_int(f, 0, 2) == 0) {
        CHECK_OK(
            nne_qoutput_init(&L->out, L->rq, count, L->sx, L->sw, L->sy, zy, false, NNE_QACT_NONE));
        float slope[64];
        const int32_t n_slope = nne_test_rng_int(f, 0, 1) ? oc : 1;
        for (int32_t c = 0; c < n_slope; c++)
            slope[c] = nne_test_rng_int(f, 0, 5) ? rand_f(f, -0.5, 1.5) : 0.0f;
        CHECK_OK(nne_qoutput_fuse_prelu(&L->out, L->rq_neg, count > n_slope ? count : n_slope,
                                        L->sx, L->sw, L->sy, slope, n_slope));
    }
    L->bias = nne_malloc((size_t)oc * sizeof(int32_t));
    const int32_t bmax = (int32_t)(sqrt((double)k) * 8000.0); /* comparable to sum(x w) */
    for (int32_t c = 0; c < oc; c++)
        L->bias[c] = nne_test_rng_int(r, 0, 3) == 0 ? 0 : nne_test_rng_int(r, -bmax, bmax);
}

/* Compare kernel output y with the oracle applied to acc; count outputs strictly inside the
 * clamp range (so that a test cannot pass on saturated outputs alone). */
static size_t check_out(const int8_t *y, const int64_t *acc, size_t count, int32_t oc,
                        const qlayer *L, size_t *inside, const char *what, int iter) {
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        const int8_t want = sim_out(&L->out, (int32_t)(i % oc), acc[i]);
        if (y[i] != want && bad++ < 3)
            fprintf(stderr, "  %s iter %d: y[%zu] = %d, oracle %d (acc %lld)\n", what, iter, i,
                    y[i], want, (long long)acc[i]);
        *inside += y[i] > L->out.act_min && y[i] < L->out.act_max;
    }
    return bad;
}

static void test_conv_vs_oracle(bool transposed) {
    nne_test_rng r;
    nne_test_rng_seed(&r, transposed ? 202 : 201);
    size_t bad = 0, total = 0, inside = 0;
    for (int iter = 0; iter < 300; iter++) {
        const nne_conv2d_geom g = rand_geom(&r, transposed);
        qlayer L;
        const int64_t k = (int64_t)g.kh * g.kw * (g.ic / g.groups);
        rand_layer(&r, &L, g.oc, k, iter % 2 == 1);
        int8_t *x = rand_s8(&r, n_in(&g), -128, 127);
        int8_t *w = rand_s8(&r, n_w(&g), iter % 3 ? -127 : -128, 127);
        int8_t *y = rand_s8(&r, n_out(&g), -128, 127);
        int64_t *acc = nne_malloc(n_out(&g) * sizeof *acc);
        const int32_t *bias = iter % 5 == 4 ? NULL : L.bias;
        if (transposed)
            nne_conv_transpose2d_s8__ref(&g, x, L.xz, w, bias, &L.out, y);
        else
            nne_conv2d_s8__ref(&g, x, L.xz, w, bias, &L.out, y);
        oracle_conv_acc(&g, transposed, x, L.xz, w, bias, acc);
        bad += check_out(y, acc, n_out(&g), g.oc, &L, &inside, transposed ? "tconv" : "conv", iter);
        total += n_out(&g);
        nne_free(x), nne_free(w), nne_free(y), nne_free(acc), nne_free(L.bias);
    }
    CHECK_MSG(bad == 0, "%zu of %zu outputs differ from the oracle", bad, total);
    CHECK_MSG(inside * 3 > total, "only %zu of %zu outputs unsaturated", inside, total);
}
static void test_conv2d_vs_oracle(void) { test_conv_vs_oracle(false); }
static void test_conv_transpose2d_vs_oracle(void) { test_conv_vs_oracle(true); }

static void test_dense_vs_oracle(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 203);
    size_t bad = 0, total = 0, inside = 0;
    for (int iter = 0; iter < 200; iter++) {
        const int32_t n = nne_test_rng_int(&r, 1, 3), in = nne_test_rng_int(&r, 1, 300);
        const int32_t out = nne_test_rng_int(&r, 1, 40);
        qlayer L;
        rand_layer(&r, &L, out, in, iter % 2 == 1);
        int8_t *x = rand_s8(&r, (size_t)n * in, -128, 127);
        int8_t *w = rand_s8(&r, (size_t)out * in, -128, 127);
        int8_t *y = rand_s8(&r, (size_t)n * out, -128, 127);
        int64_t *acc = nne_calloc((size_t)n * out, sizeof *acc);
        nne_dense_s8__ref(n, in, out, x, L.xz, w, L.bias, &L.out, y);
        for (int32_t i = 0; i < in; i++) /* input-major: a different order */
            for (int32_t b = 0; b < n; b++)
                for (int32_t o = 0; o < out; o++)
                    acc[b * out + o] += (int64_t)(x[b * in + i] - L.xz) * w[o * in + i];
        for (int32_t b = 0; b < n; b++)
            for (int32_t o = 0; o < out; o++) acc[b * out + o] += L.bias[o];
        bad += check_out(y, acc, (size_t)n * out, out, &L, &inside, "dense", iter);
        total += (size_t)n * out;
        /* A 1x1 stride-1 convolution over n pixels is the same layer, bit for bit. */
        nne_conv2d_geom g;
        memset(&g, 0, sizeof g);
        g.n = n, g.ic = in, g.oc = out;
        g.ih = g.iw = g.oh = g.ow = g.kh = g.kw = 1;
        g.stride_h = g.stride_w = g.dil_h = g.dil_w = g.groups = 1;
        int8_t *yc = rand_s8(&r, (size_t)n * out, -128, 127);
        nne_conv2d_s8__ref(&g, x, L.xz, w, L.bias, &L.out, yc);
        CHECK(memcmp(y, yc, (size_t)n * out) == 0);
        nne_free(x), nne_free(w), nne_free(y), nne_free(yc), nne_free(acc), nne_free(L.bias);
    }
    CHECK_MSG(bad == 0, "%zu of %zu outputs differ", bad, total);
    CHECK_MSG(inside * 3 > total, "only %zu of %zu outputs unsaturated", inside, total);
}

/* The worst case of the documented bound: K = NNE_S8_MAX_K terms of (-128 - 127) * -128 plus
 * a bias reaching INT32_MAX exactly. The accumulator must not wrap (UBSan checks the ASan
 * build); with M = 2^-24 and zero point -100 the output is round(INT32_MAX / 2^24) - 100 =
 * 28, while a wrapped accumulator would saturate to -128. */
static void test_acc_bound_worst_case(void) {
    const int32_t k = NNE_S8_MAX_K;
    CHECK(nne_s8_acc_bound(k, 0) <= INT32_MAX && nne_s8_acc_bound(k + 1, 0) > INT32_MAX);
    int8_t *x = nne_malloc((size_t)k), *w = nne_malloc((size_t)k);
    memset(x, 0x80, (size_t)k); /* -128 */
    memset(w, 0x80, (size_t)k);
    const int32_t bias = (int32_t)(INT32_MAX - (int64_t)k * 255 * 128);
    CHECK(bias == 127);
    const nne_requant rq = {0, 24};
    const nne_qoutput out = {NNE_RQ_POW2, 1, &rq, -100, -128, 127, NULL, 0};
    int8_t y = 0;
    nne_dense_s8__ref(1, k, 1, x, 127, w, &bias, &out, &y);
    CHECK_MSG(y == 28, "y = %d", y);
    CHECK(y == sim_out(&out, 0, INT32_MAX));
    nne_free(x), nne_free(w);
}

/* Int8 conv approximates the f32 reference kernel: x quantized affine, w per channel
 * symmetric (narrow range), bias int32. Against f32 conv on the *dequantized* inputs the
 * only errors are the output rounding (<= 1/2 + 1/2^(s+1) steps in Q31 mode, 1/2 in pow2),
 * the multiplier's 2^-31 and f32 summation; a wrong scale, zero point or bias scale breaks
 * it by whole steps. Against f32 on the original inputs the input quantization error adds
 * sum_t (|w| sx/2 + |x^| sw/2) + sb/2. */
static void test_conv_approximates_f32(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 204);
    double worst_tight = 0, worst_loose = 0;
    for (int iter = 0; iter < 120; iter++) {
        const bool transposed = iter % 4 == 3, pow2 = iter % 2 == 1;
        const nne_conv2d_geom g = rand_geom(&r, transposed);
        const int32_t icg = g.ic / g.groups;
        const size_t nx = n_in(&g), nw = n_w(&g), ny = n_out(&g), per_oc = nw / g.oc;
        float *xf = nne_malloc(nx * sizeof *xf), *xd = nne_malloc(nx * sizeof *xd);
        float *wf = nne_malloc(nw * sizeof *wf), *wd = nne_malloc(nw * sizeof *wd);
        float *bf = nne_malloc(g.oc * sizeof *bf), *bd = nne_malloc(g.oc * sizeof *bd);
        float *yf = nne_malloc(ny * sizeof *yf), *yo = nne_malloc(ny * sizeof *yo);
        float *yq = nne_malloc(ny * sizeof *yq);
        int8_t *xq = nne_malloc(nx), *wq = nne_malloc(nw), *y = nne_malloc(ny);
        int32_t *bq = nne_malloc(g.oc * sizeof *bq);
        float sw[64];
        nne_requant rq[64];
        /* x in [-0.3, 1.7]: affine with a non-zero zero point. */
        const float xlo = -0.3f, xhi = 1.7f;
        float sx = (xhi - xlo) / 255.0f;
        if (pow2) sx = ldexpf(1.0f, (int)ceil(log2(sx)));
        const int32_t zx = (int32_t)lrintf(-128 - xlo / sx);
        for (size_t i = 0; i < nx; i++) xf[i] = rand_f(&r, xlo, xhi);
        nne_quantize_f32_s8__ref(nx, xf, sx, zx, pow2, xq);
        nne_dequantize_s8_f32__ref(nx, xq, sx, zx, xd);
        for (int32_t o = 0; o < g.oc; o++) {
            float amax = 0;
            const float range = rand_f(&r, 0.05, 1.0); /* channels of different magnitude */
            for (size_t i = 0; i < per_oc; i++) {
                wf[o * per_oc + i] = rand_f(&r, -range, range) / sqrtf((float)per_oc);
                amax = fmaxf(amax, fabsf(wf[o * per_oc + i]));
            }
            sw[o] = amax / 127.0f;
            if (pow2) sw[o] = ldexpf(1.0f, (int)ceil(log2(sw[o])));
            nne_quantize_f32_s8__ref(per_oc, wf + o * per_oc, sw[o], 0, pow2, wq + o * per_oc);
            nne_dequantize_s8_f32__ref(per_oc, wq + o * per_oc, sw[o], 0, wd + o * per_oc);
            bf[o] = rand_f(&r, -0.5, 0.5);
        }
        nne_quantize_bias_s32(g.oc, bf, sx, sw, g.oc, pow2, bq);
        for (int32_t o = 0; o < g.oc; o++) bd[o] = (float)((double)bq[o] * sx * sw[o]);
        /* Output range: from the f32 result, so that few outputs saturate. */
        if (transposed) {
            nne_conv_transpose2d_f32__ref(&g, xd, wd, bd, yf);
            nne_conv_transpose2d_f32__ref(&g, xf, wf, bf, yo);
        } else {
            nne_conv2d_f32__ref(&g, xd, wd, bd, yf);
            nne_conv2d_f32__ref(&g, xf, wf, bf, yo);
        }
        float ymax = 1e-3f;
        for (size_t i = 0; i < ny; i++) ymax = fmaxf(ymax, fabsf(yf[i]));
        float sy = ymax / 100.0f;
        if (pow2) sy = ldexpf(1.0f, (int)ceil(log2(sy)));
        const int32_t zy = nne_test_rng_int(&r, -10, 10);
        nne_qoutput out;
        CHECK_OK(nne_qoutput_init(&out, rq, g.oc, sx, sw, sy, zy, pow2, NNE_QACT_NONE));
        if (transposed)
            nne_conv_transpose2d_s8__ref(&g, xq, zx, wq, bq, &out, y);
        else
            nne_conv2d_s8__ref(&g, xq, zx, wq, bq, &out, y);
        nne_dequantize_s8_f32__ref(ny, y, sy, zy, yq);
        const double lo = (double)sy * (-128 - zy), hi = (double)sy * (127 - zy);
        size_t bad = 0;
        const int64_t k = (int64_t)g.kh * g.kw * icg;
        for (size_t i = 0; i < ny; i++) {
            const int32_t o = (int32_t)(i % g.oc);
            /* Q31 rounds twice: 1/2 + 1/2^(s+1) steps when the RDBP shift s > 0. */
            const int32_t s = rq[o].shift;
            const double steps = pow2 || s <= 0 ? 0.5 : 0.5 + ldexp(0.5, -s);
            const double ref = fmin(fmax(yf[i], lo), hi);
            const double tol = sy * (steps + 1e-6) + 1e-5 * (fabs(ref) + 1.0);
            const double err = fabs(yq[i] - ref);
            worst_tight = fmax(worst_tight, err / sy);
            bad += err > tol;
            /* Loose: against the unquantized inputs. */
            /* |w| <= 1/sqrt(per_oc), |x^| <= 1.7 + sx/2; |dx| <= sx/2, |dw| <= sw/2. */
            const double in_err = (double)k * (0.5 * sx / sqrt((double)per_oc) +
                                               0.5 * sw[o] * (xhi + sx) + 0.25 * sx * sw[o]) +
                                  0.5 * sx * sw[o];
            const double ro = fmin(fmax(yo[i], lo), hi);
            worst_loose = fmax(worst_loose, fabs(yq[i] - ro) / (tol + in_err));
            bad += fabs(yq[i] - ro) > tol + in_err;
        }
        CHECK_MSG(bad == 0, "iter %d (%s, %s): %zu outputs off", iter,
                  transposed ? "tconv" : "conv", pow2 ? "pow2" : "q31", bad);
        nne_free(xf), nne_free(xd), nne_free(wf), nne_free(wd), nne_free(bf), nne_free(bd);
        nne_free(yf), nne_free(yo), nne_free(yq), nne_free(xq), nne_free(wq), nne_free(y);
        nne_free(bq);
    }
    printf("  conv vs f32 on dequantized inputs: worst error %.3f output steps\n", worst_tight);
    printf("  conv vs f32 on float inputs: worst error %.3f of the bound\n", worst_loose);
}

/* ---- Pooling ------------------------------------------------------------------------------ */

static void test_pool_vs_oracle(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 205);
    size_t bad = 0, approx_bad = 0, total = 0;
    for (int iter = 0; iter < 300; iter++) {
        nne_pool2d_geom g = {0};
        g.n = nne_test_rng_int(&r, 1, 2), g.c = nne_test_rng_int(&r, 1, 19);
        g.ih = nne_test_rng_int(&r, 1, 9), g.iw = nne_test_rng_int(&r, 1, 9);
        g.kh = nne_test_rng_int(&r, 1, 4), g.kw = nne_test_rng_int(&r, 1, 4);
        g.stride_h = nne_test_rng_int(&r, 1, 2), g.stride_w = nne_test_rng_int(&r, 1, 2);
        g.pad_t = nne_test_rng_int(&r, 0, g.kh - 1), g.pad_b = nne_test_rng_int(&r, 0, g.kh - 1);
        g.pad_l = nne_test_rng_int(&r, 0, g.kw - 1), g.pad_r = nne_test_rng_int(&r, 0, g.kw - 1);
        g.count_include_pad = nne_test_rng_int(&r, 0, 1);
        g.oh = nne_conv_out_dim(g.ih, g.kh, g.stride_h, 1, g.pad_t, g.pad_b);
        g.ow = nne_conv_out_dim(g.iw, g.kw, g.stride_w, 1, g.pad_l, g.pad_r);
        if (g.oh <= 0 || g.ow <= 0) continue;
        const nne_pool_kind kind = (nne_pool_kind)(iter % 2);
        const bool pow2 = iter % 3 == 0, same = iter % 4 < 2;
        const int32_t xz = nne_test_rng_int(&r, -128, 127);
        const float sx = rand_scale(&r, pow2, 3, 8);
        const float sy = same ? sx : rand_scale(&r, pow2, 3, 8);
        const int32_t zy = same ? xz : nne_test_rng_int(&r, -128, 127);
        nne_requant rq;
        nne_qoutput out;
        int32_t mul = 0;
        CHECK_OK(nne_qrescale_init(&out, &rq, sx, sy, zy, pow2, &mul));
        CHECK(mul == (pow2 ? 1 : 1 << NNE_Q31_DIFF_FRAC));
        const size_t nx = (size_t)g.n * g.ih * g.iw * g.c, ny = (size_t)g.n * g.oh * g.ow * g.c;
        int8_t *x = rand_s8(&r, nx, -128, 127), *y = rand_s8(&r, ny, -128, 127);
        nne_pool2d_s8__ref(&g, kind, x, xz, &out, mul, y);
        for (size_t i = 0; i < ny; i++) {
            const int32_t ch = (int32_t)(i % g.c);
            const size_t pix = i / g.c;
            const int32_t ox = (int32_t)(pix % g.ow), oy = (int32_t)(pix / g.ow % g.oh);
            const int32_t b = (int32_t)(pix / g.ow / g.oh);
            int64_t sum = 0, taps = 0, m = INT64_MIN;
            for (int32_t ky = 0; ky < g.kh; ky++)
                for (int32_t kx = 0; kx < g.kw; kx++) {
                    const int32_t iy = oy * g.stride_h - g.pad_t + ky;
                    const int32_t ix = ox * g.stride_w - g.pad_l + kx;
                    if (iy < 0 || ix < 0 || iy >= g.ih || ix >= g.iw) continue;
                    const int64_t v = x[(((size_t)b * g.ih + iy) * g.iw + ix) * g.c + ch] - xz;
                    sum += v, taps++;
                    if (v > m) m = v;
                }
            const long double d = g.count_include_pad ? g.kh * g.kw : taps;
            const int64_t v = kind == NNE_POOL_MAX ? m * mul : (int64_t)roundl(sum * mul / d);
            const int8_t want = sim_out(&out, 0, v);
            if (y[i] != want && bad++ < 3)
                fprintf(stderr, "  pool iter %d: y[%zu] = %d, oracle %d\n", iter, i, y[i], want);
            /* Same quantization: max is the plain max, avg within half a step of the mean. */
            if (same && kind == NNE_POOL_MAX) bad += y[i] != m + xz;
            if (same && kind == NNE_POOL_AVG) bad += fabsl(y[i] - xz - sum / d) > 0.5L;
            /* Any scales, Q31 and pow2 max: one rounding of the real result (Q31: the mean
             * and the multiplier carry 16 fraction bits), i.e. within half an output step
             * plus 2^-14 of one, unless saturated; rounding twice (Q31 before
             * NNE_Q31_DIFF_FRAC) was up to a step off. pow2 avg rounds the mean to an input
             * code first, as the DPU (docs/quantization.md 7): half an input step more. */
            const long double M = (long double)sx / sy;
            const long double real = (kind == NNE_POOL_MAX ? (long double)m : sum / d) * M;
            const long double clamped = fminl(fmaxl(real, -128 - zy), 127 - zy);
            const long double tol =
                0.5L + (pow2 && kind == NNE_POOL_AVG ? 0.5L * M : pow2 ? 0.0L : 0x1p-14L);
            if (fabsl(y[i] - zy - clamped) > tol && approx_bad++ < 3)
                fprintf(stderr, "  pool iter %d: y[%zu] = %d, real %.6Lf\n", iter, i, y[i],
                        real + zy);
        }
        total += ny;
        nne_free(x), nne_free(y);
    }
    CHECK_MSG(bad == 0, "%zu of %zu pool outputs wrong", bad, total);
    CHECK_MSG(approx_bad == 0, "%zu of %zu pool outputs not the real result rounded once",
              approx_bad, total);
}

/* ---- add, concat -------------------------------------------------------------------------- */

static void test_add(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 206);
    size_t bad = 0, approx_bad = 0, total = 0;
    enum { N = 3000 };
    int8_t a[N], b[N], y[N];
    for (int iter = 0; iter < 60; iter++) {
        const bool pow2 = iter % 2 == 1;
        const float sa = rand_scale(&r, pow2, 2, 9), sb = rand_scale(&r, pow2, 2, 9);
        const float sy = rand_scale(&r, pow2, 1, 8);
        const int32_t za = nne_test_rng_int(&r, -128, 127), zb = nne_test_rng_int(&r, -128, 127);
        const int32_t zy = nne_test_rng_int(&r, -30, 30);
        const nne_qact act = rand_act(&r);
        nne_qadd p;
        CHECK_OK(nne_qadd_init(&p, sa, za, sb, zb, sy, zy, pow2, act));
        for (int i = 0; i < N; i++) {
            a[i] = (int8_t)nne_test_rng_int(&r, -128, 127);
            b[i] = (int8_t)nne_test_rng_int(&r, -128, 127);
        }
        nne_add_s8__ref(N, a, b, &p, y);
        const nne_qoutput out = {p.mode, 1, &p.y_rq, zy, p.act_min, p.act_max, NULL, 0};
        for (int i = 0; i < N; i++) {
            const int64_t t =
                sim_requant(a[i] - za, p.a_rq, p.mode) + sim_requant(b[i] - zb, p.b_rq, p.mode);
            CHECK(llabs(t) < ((int64_t)1 << 31));
            bad += y[i] != sim_out(&out, 0, t);
            /* Real arithmetic: within 1/2 step (pow2: inputs aligned exactly) or 1/2 + 2^-s
             * (two roundings of the final Q31 rescale) plus the input rescales' 2^-20. */
            const double real = (double)sa * (a[i] - za) + (double)sb * (b[i] - zb);
            const double ref = fmin(fmax(real, sy * (p.act_min - zy)), sy * (p.act_max - zy));
            approx_bad += fabs(sy * (y[i] - zy) - ref) > sy * (pow2 ? 0.5 : 0.5 + 0.5) * 1.0001;
        }
        total += N;
    }
    CHECK_MSG(bad == 0, "%zu of %zu add outputs differ from the oracle", bad, total);
    CHECK_MSG(approx_bad == 0, "%zu of %zu add outputs off by more than a step", approx_bad, total);
    /* Equal pow2 positions: y = sat(a + b). y aliases a. */
    nne_qadd p;
    CHECK_OK(nne_qadd_init(&p, 0.125f, 0, 0.125f, 0, 0.125f, 0, true, NNE_QACT_NONE));
    const int8_t ea[4] = {100, -100, 3, -128}, eb[4] = {100, -100, -5, 0};
    int8_t ey[4];
    memcpy(ey, ea, 4);
    nne_add_s8__ref(4, ey, eb, &p, ey);
    CHECK(ey[0] == 127 && ey[1] == -128 && ey[2] == -2 && ey[3] == -128);
    /* Extreme pow2 alignment: positions 0 and 40 into 0 stays within int32. */
    CHECK_OK(nne_qadd_init(&p, 1.0f, 0, ldexpf(1.0f, -40), 0, 1.0f, 0, true, NNE_QACT_NONE));
    const int8_t xa[2] = {-128, 127}, xb[2] = {-128, 127};
    nne_add_s8__ref(2, xa, xb, &p, ey);
    CHECK(ey[0] == -128 && ey[1] == 127);
}

static void test_concat(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 207);
    const size_t outer = 37;
    const size_t inner[3] = {5, 0, 11};
    int8_t *x0 = rand_s8(&r, outer * inner[0], -128, 127),
           *x2 = rand_s8(&r, outer * inner[2], -128, 127);
    const int8_t *xs[3] = {x0, NULL, x2};
    int8_t y[37 * 16];
    for (int mode = 0; mode < 2; mode++) {
        const bool pow2 = mode == 1;
        const float sy = pow2 ? 0.0625f : 0.05f;
        const int32_t zy = 7;
        const float s[3] = {sy, 1.0f, pow2 ? 0.25f : 0.0155f};
        const int32_t z[3] = {zy, 0, -20};
        nne_requant rq[3];
        nne_qoutput outs[3];
        int32_t mul = 0;
        for (int k = 0; k < 3; k++)
            CHECK_OK(nne_qrescale_init(&outs[k], &rq[k], s[k], sy, zy, pow2, &mul));
        nne_concat_s8__ref(outer, 3, xs, inner, z, outs, mul, y);
        size_t bad = 0, approx_bad = 0;
        for (size_t o = 0; o < outer; o++) {
            /* Input 0 has the output's parameters: copied unchanged. */
            bad += memcmp(y + o * 16, x0 + o * 5, 5) != 0;
            for (size_t j = 0; j < 11; j++) {
                const int32_t v = x2[o * 11 + j] - z[2], got = y[o * 16 + 5 + j];
                bad += got != sim_out(&outs[2], 0, (int64_t)v * mul);
                /* One rounding of v * s_2 / s_y (0.31 in Q31: a shift of 1, where rounding
                 * twice was a code off for some v), unless saturated. */
                const double real = fmin(fmax((double)v * s[2] / sy, -128 - zy), 127 - zy);
                approx_bad += fabs(got - zy - real) > 0.5 + 0x1p-14;
            }
        }
        CHECK_MSG(bad == 0, "mode %d: %zu wrong", mode, bad);
        CHECK_MSG(approx_bad == 0, "mode %d: %zu not the real result rounded once", mode,
                  approx_bad);
    }
    nne_free(x0), nne_free(x2);
}

/* ---- Activations ------------------------------------------------------------------------- */

static void test_clamp_relu(void) {
    int8_t x[256], y[256];
    for (int i = 0; i < 256; i++) x[i] = (int8_t)(i - 128);
    int32_t lo, hi;
    nne_qact_range(NNE_QACT_RELU6, 0.05f, -17, false, &lo, &hi);
    CHECK(lo == -17 && hi == -17 + 120);
    nne_qact_range(NNE_QACT_RELU6, 0.03125f, 100, true, &lo, &hi);
    CHECK(lo == 100 && hi == 127);
    nne_qact_range(NNE_QACT_NONE, 0.03125f, 100, true, &lo, &hi);
    CHECK(lo == -128 && hi == 127);
    nne_qact_range(NNE_QACT_RELU, 0.05f, -17, false, &lo, &hi);
    CHECK(lo == -17 && hi == 127);
    nne_clamp_s8__ref(256, x, lo, hi, y);
    size_t bad = 0;
    for (int i = 0; i < 256; i++) {
        const float v = 0.05f * (x[i] + 17);
        bad += 0.05f * (y[i] + 17) != (v < 0 ? 0.0f : v); /* ReLU in the real domain */
    }
    CHECK(bad == 0);
    nne_clamp_s8__ref(256, x, -3, 5, x); /* in place */
    CHECK(x[0] == -3 && x[255] == 5 && x[128] == 0);
}

static void test_prelu(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 208);
    size_t bad = 0, approx_bad = 0, total = 0;
    for (int iter = 0; iter < 80; iter++) {
        const bool pow2 = iter % 2 == 1;
        const int32_t c = nne_test_rng_int(&r, 1, 19);
        const int32_t n_slope = nne_test_rng_int(&r, 0, 1) ? c : 1;
        const size_t pixels = (size_t)nne_test_rng_int(&r, 1, 40);
        float slope[19];
        /* pow2: integer slopes a * 2^-k (a in [-127, 127], zero and negative included), or
         * plain powers of two. */
        for (int32_t i = 0; i < n_slope; i++)
            slope[i] = !pow2           ? rand_f(&r, i == 0 ? -0.5 : 0.0, 1.2)
                       : iter % 4 == 1 ? ldexpf(1.0f, -nne_test_rng_int(&r, 0, 5))
                                       : ldexpf((float)nne_test_rng_int(&r, -127, 127),
                                                -nne_test_rng_int(&r, 0, 9));
        if (n_slope > 1) slope[n_slope - 1] = 0.0f; /* a zero slope */
        const float sx = rand_scale(&r, pow2, 3, 7), sy = rand_scale(&r, pow2, 3, 7);
        const int32_t xz = pow2 ? 0 : nne_test_rng_int(&r, -128, 127),
                      zy = pow2 ? 0 : nne_test_rng_int(&r, -60, 60);
        nne_requant prq, nrq[19];
        int32_t codes[19], pos_mul = 0;
        nne_qoutput pos, neg;
        CHECK_OK(nne_qprelu_init(&pos, &prq, &pos_mul, &neg, nrq, codes, sx, slope, n_slope, sy,
                                 zy, pow2));
        int8_t *x = rand_s8(&r, pixels * c, -128, 127), *y = rand_s8(&r, pixels * c, -128, 127);
        float *xf = nne_malloc(pixels * c * sizeof *xf), *yf = nne_malloc(pixels * c * sizeof *yf);
        nne_prelu_s8__ref(pixels, c, x, xz, &pos, pos_mul, &neg, codes, y);
        nne_dequantize_s8_f32__ref(pixels * c, x, sx, xz, xf);
        nne_prelu_f32__ref(pixels, c, xf, slope, n_slope, yf);
        for (size_t i = 0; i < pixels * c; i++) {
            const int32_t ch = (int32_t)(i % c), v = x[i] - xz;
            int8_t want;
            if (v >= 0) {
                want = sim_out(&pos, 0, (int64_t)v * pos_mul);
            } else if (pow2) { /* exact: every factor is a small integer times 2^n */
                const long double e =
                    floorl((long double)v * slope[n_slope == 1 ? 0 : ch] * sx / sy + 0.5L) + zy;
                want = (int8_t)(e < -128 ? -128 : e > 127 ? 127 : e);
            } else {
                want = sim_out(&neg, ch, (int64_t)v * codes[n_slope == 1 ? 0 : ch]);
            }
            bad += y[i] != want;
            const double ref = fmin(fmax(yf[i], sy * (-128.0 - zy)), sy * (127.0 - zy));
            /* one rounding of the exact result in both modes (Q31: up to 2^-17 of a step
             * more, NNE_Q31_DIFF_FRAC); the f32 kernel's own rounding is far below 1e-6 */
            approx_bad += fabs(sy * (y[i] - zy) - ref) > sy * 0.5 + 1e-6;
        }
        total += pixels * c;
        nne_free(x), nne_free(y), nne_free(xf), nne_free(yf);
    }
    CHECK_MSG(bad == 0, "%zu of %zu PReLU outputs differ from the oracle", bad, total);
    CHECK_MSG(approx_bad == 0, "%zu of %zu PReLU outputs off the f32 kernel", approx_bad, total);
    nne_requant prq, nrq;
    int32_t code, pos_mul;
    nne_qoutput pos, neg;
    const float bad_slope = 0.1f; /* not 7 bits at any power of two */
    CHECK_STATUS(nne_qprelu_init(&pos, &prq, &pos_mul, &neg, &nrq, &code, 0.25f, &bad_slope, 1,
                                 0.25f, 0, true),
                 NNE_ERR_UNSUPPORTED);
}

/* nne_qoutput_fuse_prelu: a PReLU / leaky ReLU fused into a MAC layer's output stage.
 *   - M_neg = slope * M: apply equals the direct formula (rq_neg for acc < 0, rq else) and the
 *     long-double oracle, for random and extreme accumulators (INT32_MIN .. INT32_MAX);
 *   - one rounding: every output is within half a step (plus the final shift's double rounding,
 *     2^-(s+1) of a step, docs/quantization.md 4.2) of the exact zp + prelu(acc x w / y),
 *     clamped, for the slopes 0, 0.01, 0.25, 0.9, -0.3, 1.5, shared or per channel, with
 *     per-tensor and per-channel weight scales; the two-step path (requantize to s8, then
 *     nne_prelu_s8__ref) is off by more;
 *   - slope 1 gives rq_neg == rq, slope 0 gives y = zero point for acc < 0;
 *   - errors: pow2, counts, clamps, non-finite slopes; out untouched on error. */
static void test_qoutput_fuse_prelu(void) {
    static const float slopes[6] = {0.0f, 0.01f, 0.25f, 0.9f, -0.3f, 1.5f};
    nne_test_rng r;
    nne_test_rng_seed(&r, 212);
    size_t bad_direct = 0, bad_oracle = 0, bad_bound = 0, total = 0, unclamped_neg = 0;
    double max_err = 0, max_err_s6 = 0, max_err_2step = 0; /* s6: final shift >= 6 */
    for (int iter = 0; iter < 96; iter++) {
        const int32_t c = 3;
        const int32_t count = iter % 4 < 2 ? c : 1; /* per-channel / per-tensor weights */
        const int32_t n_slope = iter % 2 ? c : 1;   /* per-channel / shared slopes */
        const int32_t nc = count > n_slope ? count : n_slope;
        float slope[3], sw[3];
        for (int32_t i = 0; i < n_slope; i++) slope[i] = slopes[(iter / 4 + i) % 6];
        /* M = sx sw / sy in [2^-15, 2^-2] mostly, [2^-1, 2) for an eighth of the layers (no
         * right shift: SRDHM alone rounds) */
        const float sx = rand_scale(&r, false, 4, 9), sy = rand_scale(&r, false, 3, 8);
        for (int32_t i = 0; i < count; i++)
            sw[i] = iter % 8 == 7 ? ldexpf(rand_f(&r, 1.0, 2.0), -1) * sy / sx
                                  : rand_scale(&r, false, 4, 9);
        const int32_t zy = nne_test_rng_int(&r, -100, 100);
        nne_requant rq[3], rq_neg[3];
        nne_qoutput out;
        memset(&out, 0xff, sizeof out); /* init must clear rq_neg */
        CHECK_OK(nne_qoutput_init(&out, rq, count, sx, sw, sy, zy, false, NNE_QACT_NONE));
        CHECK(out.rq_neg == NULL && out.neg_count == 0);
        CHECK_OK(nne_qoutput_fuse_prelu(&out, rq_neg, nc, sx, sw, sy, slope, n_slope));
        CHECK(out.rq_neg == rq_neg && out.neg_count == nc);
        /* the two-step path: conv output at y's parameters, then the PReLU y -> y */
        nne_qoutput plain = out, pos, neg;
        plain.rq_neg = NULL;
        nne_requant prq, nrq[3];
        int32_t codes[3], pos_mul = 0;
        CHECK_OK(nne_qprelu_init(&pos, &prq, &pos_mul, &neg, nrq, codes, sy, slope, n_slope, sy, zy,
                                 false));
        for (int32_t ch = 0; ch < nc; ch++) {
            const nne_requant p = rq[count == 1 ? 0 : ch], q = rq_neg[nc == 1 ? 0 : ch];
            const float a = slope[n_slope == 1 ? 0 : ch];
            if (a == 1.0f) CHECK(q.multiplier == p.multiplier && q.shift == p.shift);
            if (a == 0.0f) CHECK(q.multiplier == 0 && q.shift == 0);
            CHECK((q.multiplier < 0) == (a < 0.0f));
        }
        const double m_real = (double)sx / sy; /* times sw[k] */
        for (int i = 0; i < 400; i++) {
            const int32_t ch = nne_test_rng_int(&r, 0, nc - 1);
            const double m = m_real * sw[count == 1 ? 0 : ch];
            int32_t acc;
            const int kind = nne_test_rng_int(&r, 0, 7);
            if (kind == 0) { /* extremes */
                static const int32_t ext[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX};
                acc = ext[nne_test_rng_int(&r, 0, 5)];
            } else if (kind == 1) { /* anywhere in int32: mostly saturating */
                acc = (int32_t)(uint32_t)nne_test_rng_u64(&r);
            } else { /* outputs within about +-300 steps */
                const double lim = fmin(300.0 / m, 2e9);
                acc = (int32_t)((nne_test_rng_uniform(&r) * 2 - 1) * lim);
            }
            const int8_t y = nne_qoutput_apply(&out, ch, acc);
            const nne_requant used = acc < 0 ? rq_neg[nc == 1 ? 0 : ch] : rq[count == 1 ? 0 : ch];
            const int64_t d = (int64_t)nne_requantize(acc, used, NNE_RQ_Q31) + zy;
            bad_direct += y != (int8_t)(d < -128 ? -128 : d > 127 ? 127 : d);
            bad_oracle += y != sim_out(&out, ch, acc);
            const double a = acc < 0 ? slope[n_slope == 1 ? 0 : ch] : 1.0;
            const double exact = fmin(127.0, fmax(-128.0, zy + a * (double)acc * m));
            const double tol = 0.5 + (used.shift > 0 ? ldexp(1.0, -used.shift - 1) : 0.0) + 1e-6;
            const double err = fabs(y - exact);
            bad_bound += err > tol;
            if (err > max_err) max_err = err;
            if (used.shift >= 6 && err > max_err_s6) max_err_s6 = err;
            if (acc < 0 && exact > -128 && exact < 127) unclamped_neg++;
            /* two steps: s8 at y's parameters, then the PReLU (one rounding each) */
            const int8_t y1 = nne_qoutput_apply(&plain, ch, acc);
            int8_t y2;
            nne_qoutput neg1 = neg; /* channel ch's slope as a one-channel PReLU */
            neg1.count = 1;
            neg1.rq = &nrq[n_slope == 1 ? 0 : ch];
            nne_prelu_s8__ref(1, 1, &y1, zy, &pos, pos_mul, &neg1, codes + (n_slope == 1 ? 0 : ch),
                              &y2);
            /* (where y1 is not clamped: the intermediate clamp is another loss) */
            if (y1 > -128 && y1 < 127 && fabs(y2 - exact) > max_err_2step)
                max_err_2step = fabs(y2 - exact);
            if (a == 0.0 && acc < 0) bad_direct += y != zy;
            total++;
        }
    }
    CHECK_MSG(bad_direct == 0, "%zu of %zu fused outputs differ from the direct formula",
              bad_direct, total);
    CHECK_MSG(bad_oracle == 0, "%zu of %zu fused outputs differ from the oracle", bad_oracle,
              total);
    CHECK_MSG(bad_bound == 0,
              "%zu of %zu fused outputs off the exact PReLU by more than half a "
              "step (max %.4f)",
              bad_bound, total, max_err);
    CHECK_MSG(unclamped_neg * 4 > total, "only %zu of %zu negative unclamped", unclamped_neg,
              total);
    /* A conv layer's M is small (x w / y ~ 2^-6 .. 2^-14): the final shift s >= 6 leaves at
     * most 2^-7 of a step over the half; rounding twice in two int8 steps (half a step, then
     * half a step more after the PReLU) shows on this many samples. */
    CHECK_MSG(max_err_s6 <= 0.5 + 1.0 / 128 && max_err_2step > 0.55,
              "max error: fused %.4f (shift >= 6: %.4f), two steps %.4f steps", max_err, max_err_s6,
              max_err_2step);
    printf("  max |y - exact PReLU| in steps: fused %.4f (final shift >= 6: %.4f), two int8 "
           "steps %.4f (%zu outputs)\n",
           max_err, max_err_s6, max_err_2step, total);

    /* errors: out is left untouched */
    const float sx = 0.02f, sy = 0.05f, sw[3] = {0.01f, 0.02f, 0.03f}, one = 0.25f;
    const float three[3] = {0.1f, 0.2f, 0.3f}, two[2] = {0.1f, 0.2f};
    nne_requant rq[3], rq_neg[3];
    nne_qoutput out;
    CHECK_OK(nne_qoutput_init(&out, rq, 3, sx, sw, sy, 5, false, NNE_QACT_NONE));
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 1, sx, sw, sy, &one, 1), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 4, sx, sw, sy, &one, 1), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 2, sx, sw, sy, two, 2), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, two, 2), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 0, sx, sw, sy, &one, 1), NNE_ERR_INVALID_ARG);
    const float nan_slope[3] = {0.1f, NAN, 0.3f}, inf_slope = INFINITY, huge = 3e38f;
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, nan_slope, 3),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, &inf_slope, 1),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, &huge, 1),
                 NNE_ERR_INVALID_ARG); /* M_neg >= 2^31 */
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 3, 0.0f, sw, sy, &one, 1),
                 NNE_ERR_INVALID_ARG);
    CHECK(out.rq_neg == NULL && out.neg_count == 0);
    CHECK_OK(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, &one, 1));
    CHECK(out.rq_neg == rq_neg && out.neg_count == 3);
    CHECK_OK(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, three, 3));
    /* per-tensor weights, per-channel slopes: count 3; no weights (w_scale NULL): M = x / y */
    CHECK_OK(nne_qoutput_init(&out, rq, 1, sx, NULL, sy, 5, false, NNE_QACT_NONE));
    CHECK_OK(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, NULL, sy, three, 3));
    CHECK(out.neg_count == 3);
    nne_requant want;
    CHECK_OK(nne_quant_multiplier_from_scale((double)sx / sy * three[2], &want));
    CHECK(rq_neg[2].multiplier == want.multiplier && rq_neg[2].shift == want.shift);
    /* a fused ReLU / ReLU6 clamp does not combine with a PReLU */
    CHECK_OK(nne_qoutput_init(&out, rq, 3, sx, sw, sy, 5, false, NNE_QACT_RELU));
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, &one, 1), NNE_ERR_INVALID_ARG);
    CHECK_OK(nne_qoutput_init(&out, rq, 3, sx, sw, sy, 5, false, NNE_QACT_RELU6));
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 3, sx, sw, sy, &one, 1), NNE_ERR_INVALID_ARG);
    CHECK(out.rq_neg == NULL);
    /* power-of-two output stages: unsupported */
    const float p2w = 0.125f;
    CHECK_OK(nne_qoutput_init(&out, rq, 1, 0.25f, &p2w, 0.5f, 0, true, NNE_QACT_NONE));
    CHECK_STATUS(nne_qoutput_fuse_prelu(&out, rq_neg, 1, 0.25f, &p2w, 0.5f, &one, 1),
                 NNE_ERR_UNSUPPORTED);
    CHECK(out.rq_neg == NULL);
}

/* Q31 PReLU rounds once: every code equals the exact result rounded to nearest. The
 * parameters are cae-seed's conv2d_1.prelu (int8 per-channel, docs/quantization.md, "Why
 * cae-seed loses in PTQ"), where rounding twice (SRDHM, then a shift of 1 or 2) put 6% of the
 * outputs one code lower, e.g. v = -1 -> -0.29 steps -> -1 instead of 0. */
static void test_prelu_q31_rounding(void) {
    const float sx = 0.00654755f, sy = 0.0043932f;
    const int32_t zx = 31, zy = -16;
    const float slopes[4] = {0.197f, 0.05f, 0.9f, -0.3f};
    nne_requant prq, nrq[4];
    int32_t codes[4], pos_mul = 0;
    nne_qoutput pos, neg;
    CHECK_OK(nne_qprelu_init(&pos, &prq, &pos_mul, &neg, nrq, codes, sx, slopes, 4, sy, zy, false));
    int8_t x[256 * 4], y[256 * 4];
    for (int i = 0; i < 256; i++)
        for (int c = 0; c < 4; c++) x[i * 4 + c] = (int8_t)(i - 128);
    nne_prelu_s8__ref(256, 4, x, zx, &pos, pos_mul, &neg, codes, y);
    int bad = 0, shift_sum = 0;
    for (int i = 0; i < 256 * 4; i++) {
        const int32_t v = x[i] - zx;
        const double r = (v >= 0 ? v : v * (double)slopes[i % 4]) * (double)sx / (double)sy;
        const double f = r - floor(r);
        if (fabs(f - 0.5) < 1e-4) continue; /* a near tie: either neighbour is right */
        const double w = fmin(127.0, fmax(-128.0, floor(r + 0.5) + zy));
        if (y[i] != (int8_t)w && bad++ < 3)
            fprintf(stderr, "  v %d slope %g: %d, exact %.4f -> %d\n", (int)v,
                    (double)slopes[i % 4], y[i], r, (int)w);
        shift_sum += y[i] - (int)w;
    }
    CHECK_MSG(bad == 0, "%d of 1024 PReLU codes not rounded once (sum of errors %d)", bad,
              shift_sum);
}

/* Integer slopes at a power of two, and the pow2 scheme's slope rule. */
static void test_slopes_pow2(void) {
    const struct {
        float s;
        bool ok;
        int32_t code, k;
    } cases[] = {
        {0.375f, true, 3, 3},    {-0.25f, true, -1, 2},        {96.0f, true, 3, -5},
        {0.0f, true, 0, 0},      {127.0f / 512, true, 127, 9}, {255.0f / 512, false, 0, 0},
        {0.1f, false, 0, 0},     {-127.0f, true, -127, 0},     {NAN, false, 0, 0},
        {INFINITY, false, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t code = 99, k = 99;
        const bool ok = nne_slope_pow2(cases[i].s, &code, &k);
        CHECK_MSG(ok == cases[i].ok && (!ok || (code == cases[i].code && k == cases[i].k)),
                  "slope %g: ok %d code %d k %d", (double)cases[i].s, ok, (int)code, (int)k);
    }
    /* max 0.25 -> fa 8 (64 <= 127 < 128); 0.1 * 256 = 25.6 -> 26; -7.68 -> -8 (half up is
     * irrelevant here; nearest). */
    const float in[3] = {0.25f, 0.1f, -0.03f};
    float out[3];
    int32_t fa = -1;
    CHECK_OK(nne_quantize_slopes_pow2(3, in, out, &fa));
    CHECK(fa == 8 && out[0] == 0.25f && out[1] == 26.0f / 256 && out[2] == -8.0f / 256);
    for (int i = 0; i < 3; i++) {
        int32_t code, k;
        CHECK(nne_slope_pow2(out[i], &code, &k) && k <= fa);
    }
    /* leaky 0.1 alone: fa 10, 102 / 1024 */
    CHECK_OK(nne_quantize_slopes_pow2(1, &in[1], out, &fa));
    CHECK(fa == 10 && out[0] == 102.0f / 1024);
    const float zeros[2] = {0.0f, -0.0f};
    CHECK_OK(nne_quantize_slopes_pow2(2, zeros, out, &fa));
    CHECK(fa == 0 && out[0] == 0.0f && out[1] == 0.0f);
    const float nan = NAN;
    CHECK_STATUS(nne_quantize_slopes_pow2(1, &nan, out, &fa), NNE_ERR_INVALID_ARG);
}

static void sigmoid_f64(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

/* Tables are correctly quantized (within half a step of the exact function) and the gather
 * indexes them by code. */
static void test_lut(void) {
    int8_t x[256], y[256], tab[256];
    for (int i = 0; i < 256; i++) x[i] = (int8_t)(127 - i); /* reversed order */
    const struct {
        nne_unary_f32_fn f;
        float sx, sy;
        int32_t zx, zy;
        bool pow2;
    } cases[] = {
        {nne_sigmoid_f32__ref, 0.0625f, 1.0f / 256, 0, -128, true},
        {nne_sigmoid_f32__ref, 0.047f, 1.0f / 255, 11, -128, false},
        {nne_hardswish_f32__ref, 0.05f, 0.04f, -3, -90, false},
        {nne_hardswish_f32__ref, 0.0625f, 0.0625f, 0, -48, true},
        {nne_tanh_f32__ref, 0.03f, 1.0f / 128, 0, 0, false},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        nne_lut_s8_build(cases[t].f, cases[t].sx, cases[t].zx, cases[t].sy, cases[t].zy,
                         cases[t].pow2, tab);
        nne_lut_s8__ref(256, tab, x, y);
        size_t bad = 0;
        for (int i = 0; i < 256; i++) {
            const double v = (double)cases[t].sx * (x[i] - cases[t].zx);
            double f;
            if (cases[t].f == nne_sigmoid_f32__ref)
                f = 1.0 / (1.0 + exp(-v));
            else if (cases[t].f == nne_tanh_f32__ref)
                f = tanh(v);
            else
                f = v * fmin(fmax(v + 3.0, 0.0), 6.0) / 6.0;
            f = fmin(fmax(f, cases[t].sy * (-128.0 - cases[t].zy)),
                     cases[t].sy * (127.0 - cases[t].zy));
            const double got = (double)cases[t].sy * (y[i] - cases[t].zy);
            bad += fabs(got - f) > cases[t].sy * 0.5 + 1e-6;
        }
        CHECK_MSG(bad == 0, "table %zu: %zu entries off by more than half a step", t, bad);
    }
    /* The table builder is the f32 kernel + nne_quantize_value: an f64 sigmoid agrees on all
     * but (at most) codes within 1e-6 of a rounding boundary. */
    int8_t tab64[256];
    nne_lut_s8_build(nne_sigmoid_f32__ref, 0.047f, 11, 1.0f / 255, -128, false, tab);
    nne_lut_s8_build(sigmoid_f64, 0.047f, 11, 1.0f / 255, -128, false, tab64);
    int diff = 0;
    for (int i = 0; i < 256; i++) diff += tab[i] != tab64[i];
    CHECK(diff <= 2);
}

static void test_gdn_s8(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 209);
    const int32_t c = 13;
    const size_t pixels = 50;
    float beta[13], gamma[13 * 13];
    for (int i = 0; i < c; i++) beta[i] = rand_f(&r, 0.5, 1.5);
    for (int i = 0; i < c * c; i++) gamma[i] = rand_f(&r, 0.0, 0.2);
    int8_t *x = rand_s8(&r, pixels * c, -128, 127), *y = rand_s8(&r, pixels * c, -128, 127);
    float *xf = nne_malloc(pixels * c * sizeof *xf), *yf = nne_malloc(pixels * c * sizeof *yf);
    CHECK(nne_gdn_s8_scratch_size(c) == 2 * 13 * sizeof(float));
    float scratch[26];
    for (int inverse = 0; inverse < 2; inverse++) {
        const float sx = 0.02f, sy = inverse ? 0.05f : 0.015f;
        const int32_t zx = 5, zy = -3;
        nne_gdn_s8__ref(pixels, c, x, sx, zx, beta, gamma, inverse, sy, zy, false, scratch, y);
        nne_dequantize_s8_f32__ref(pixels * c, x, sx, zx, xf);
        nne_gdn_f32__ref(pixels, c, xf, beta, gamma, inverse, yf);
        size_t bad = 0, inside = 0;
        for (size_t i = 0; i < pixels * c; i++) {
            bad += y[i] != (int8_t)nne_quantize_value(yf[i], sy, zy, -128, 127, false);
            inside += y[i] > -128 && y[i] < 127;
        }
        CHECK_MSG(bad == 0 && inside > pixels * c / 2, "inverse %d: %zu wrong, %zu inside", inverse,
                  bad, inside);
    }
    nne_free(x), nne_free(y), nne_free(xf), nne_free(yf);
}

/* ---- Weight quantization, INT4/INT2 and FP16 fake quantization ----------------------------- */

static void test_quantize_tensor(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 210);
    const nne_shape shape = nne_shape_4d(7, 3, 3, 5); /* OHWI, 7 output channels */
    const size_t n = 7 * 45, per = 45;
    float w[315], back[315], fq[315], scale[7];
    int8_t q[315];
    for (size_t i = 0; i < n; i++) w[i] = rand_f(&r, -1, 1) * (float)(1 + i / per) * 0.1f;
    for (size_t i = 0; i < per; i++) w[3 * per + i] = 0.0f; /* an all-zero channel */
    w[5 * per + 7] = 0.7f;                                  /* an outlier */
    for (int mode = 0; mode < 4; mode++) {
        const bool per_channel = mode & 1, pow2 = mode & 2;
        nne_quant qt = {0};
        CHECK_OK(nne_quantize_tensor_s8(&shape, w, per_channel, pow2, q, &qt));
        CHECK(qt.count == (per_channel ? 7 : 1) && qt.axis == (per_channel ? 0 : -1));
        CHECK(qt.pow2 == pow2);
        CHECK_OK(nne_dequantize_tensor_s8(&shape, q, &qt, back));
        size_t bad = 0;
        for (int32_t c = 0; c < qt.count; c++) {
            const size_t len = per_channel ? per : n, off = per_channel ? c * per : 0;
            float amax = 0;
            int32_t cmax = 0;
            for (size_t i = off; i < off + len; i++) {
                amax = fmaxf(amax, fabsf(w[i]));
                cmax = q[i] > cmax ? q[i] : -q[i] > cmax ? -q[i] : cmax;
                bad += q[i] < -127 || fabsf(back[i] - w[i]) > 0.5f * qt.scale[c] * 1.0001f;
            }
            bad += qt.zero_point[c] != 0;
            if (amax == 0) {
                bad += qt.scale[c] != 1.0f || cmax != 0;
            } else if (pow2) {
                int32_t fp;
                bad += nne_quant_pow2_shift(qt.scale[c], &fp) != NNE_OK;
                bad += cmax > 127 || cmax < 64; /* one more fraction bit would overflow */
            } else {
                bad += qt.scale[c] != amax / 127.0f || cmax != 127;
            }
        }
        CHECK_MSG(bad == 0, "mode %d: %zu bad values or scales", mode, bad);
        /* bits = 8 fake quantization is the same computation. */
        CHECK_OK(nne_fake_quantize_tensor(&shape, w, 8, per_channel, pow2, fq, scale));
        CHECK(memcmp(fq, back, sizeof fq) == 0);
        CHECK(memcmp(scale, qt.scale, (size_t)qt.count * sizeof *scale) == 0);
        nne_quant_free(&qt);
    }
    /* Per-channel scales follow the channel magnitudes; per tensor is set by the outlier. */
    nne_quant qt = {0};
    CHECK_OK(nne_quantize_tensor_s8(&shape, w, true, false, q, &qt));
    CHECK(qt.scale[0] < qt.scale[6] && qt.scale[5] == 0.7f / 127.0f);
    nne_quant_free(&qt);
    /* pow2 takes the largest fp whose rounded codes fit: 63.65 * 2 = 127.3 rounds to 127, so
     * the scale is 1/2 although 63.65 * 2 > 127. */
    const float edge[2] = {63.65f, -1.0f};
    int8_t qe[2];
    const nne_shape s2 = nne_shape_1d(2);
    CHECK_OK(nne_quantize_tensor_s8(&s2, edge, false, true, qe, &qt));
    CHECK(qt.scale[0] == 0.5f && qe[0] == 127 && qe[1] == -2);
    nne_quant_free(&qt);
    /* Errors: non-finite weight, bad bit width, dequantize with a mismatched quant. */
    w[10] = NAN;
    CHECK_STATUS(nne_quantize_tensor_s8(&shape, w, false, false, q, &qt), NNE_ERR_INVALID_ARG);
    w[10] = 0.0f;
    CHECK_STATUS(nne_fake_quantize_tensor(&shape, w, 1, false, false, fq, NULL),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_fake_quantize_tensor(&shape, w, 9, false, false, fq, NULL),
                 NNE_ERR_INVALID_ARG);
    const float s3[3] = {1, 1, 1};
    const int32_t z3[3] = {0, 0, 0};
    CHECK_OK(nne_quant_set(&qt, 1, 3, s3, z3, false));
    CHECK_OK(nne_dequantize_tensor_s8(&shape, q, &qt, back)); /* along axis 1 (kh = 3) */
    CHECK(back[0] == (float)q[0] && back[45] == (float)q[45]);
    CHECK_STATUS(nne_dequantize_tensor_s8(&shape, q,
                                          &(nne_quant){3, 3, qt.scale, qt.zero_point, false}, back),
                 NNE_ERR_SHAPE); /* axis 3 has 5 entries */
    nne_quant_free(&qt);
}

static void test_fake_quant_low_bits(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 211);
    const nne_shape shape = nne_shape_2d(4, 200); /* dense [out][in] */
    float w[800], y[800], scale[4];
    for (int i = 0; i < 800; i++) w[i] = rand_f(&r, -1, 1) * (float)(1 + i / 200);
    const int bits_list[3] = {4, 2, 3};
    for (int b = 0; b < 3; b++)
        for (int mode = 0; mode < 4; mode++) {
            const int bits = bits_list[b], qmax = (1 << (bits - 1)) - 1;
            const bool per_channel = mode & 1, pow2 = mode & 2;
            CHECK_OK(nne_fake_quantize_tensor(&shape, w, bits, per_channel, pow2, y, scale));
            size_t bad = 0;
            for (int i = 0; i < 800; i++) {
                const float s = scale[per_channel ? i / 200 : 0];
                const float code = y[i] / s;
                /* On the grid {-qmax..qmax} * s, within half a step of w (no clipping). */
                bad += code != rintf(code) || fabsf(code) > (float)qmax;
                bad += fabsf(y[i] - w[i]) > 0.5f * s * 1.0001f;
            }
            CHECK_MSG(bad == 0, "bits %d mode %d: %zu bad", bits, mode, bad);
        }
    /* INT2 is ternary: every output is -s, 0 or s; in place. */
    CHECK_OK(nne_fake_quantize_tensor(&shape, w, 2, false, false, w, scale));
    size_t levels[3] = {0, 0, 0};
    for (int i = 0; i < 800; i++) {
        if (w[i] == -scale[0])
            levels[0]++;
        else if (w[i] == 0.0f)
            levels[1]++;
        else if (w[i] == scale[0])
            levels[2]++;
    }
    CHECK(levels[0] + levels[1] + levels[2] == 800 && levels[0] && levels[1] && levels[2]);
}

static void test_fake_quant_f16(void) {
    const float x[6] = {1.0f / 3.0f, 1.0f, -2.5f, 65504.0f, 1e6f, 1e-9f};
    float y[6];
    nne_fake_quantize_f16(6, x, y);
    CHECK(fabsf(y[0] - x[0]) <= ldexpf(x[0], -11) && y[0] != x[0]); /* rounded to 11 bits */
    CHECK(y[1] == 1.0f && y[2] == -2.5f && y[3] == 65504.0f);       /* exact */
    CHECK(isinf(y[4]) && y[5] == 0.0f);                             /* overflow, underflow */
    float z[6];
    memcpy(z, y, sizeof z);
    nne_fake_quantize_f16(6, z, z); /* in place; f16 values are fixed points */
    CHECK(memcmp(y, z, sizeof z) == 0);
}

int main(void) {
    if (LDBL_MANT_DIG < 64) nne_test_skip("the oracle needs a 64-bit long double mantissa");
    nne_test_rng_seed(&fuse_rng, 213);
    NNE_RUN(test_requant_edges);
    NNE_RUN(test_multiplier_from_scale);
    NNE_RUN(test_quantize_value);
    NNE_RUN(test_qoutput_from_quant);
    NNE_RUN(test_conv2d_vs_oracle);
    NNE_RUN(test_conv_transpose2d_vs_oracle);
    NNE_RUN(test_dense_vs_oracle);
    NNE_RUN(test_acc_bound_worst_case);
    NNE_RUN(test_conv_approximates_f32);
    NNE_RUN(test_pool_vs_oracle);
    NNE_RUN(test_add);
    NNE_RUN(test_concat);
    NNE_RUN(test_clamp_relu);
    NNE_RUN(test_prelu);
    NNE_RUN(test_prelu_q31_rounding);
    NNE_RUN(test_qoutput_fuse_prelu);
    NNE_RUN(test_slopes_pow2);
    NNE_RUN(test_lut);
    NNE_RUN(test_gdn_s8);
    NNE_RUN(test_quantize_tensor);
    NNE_RUN(test_fake_quant_low_bits);
    NNE_RUN(test_fake_quant_f16);
    return nne_test_summary();
}
