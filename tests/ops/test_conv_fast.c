/* ops/conv_fast: the fast f32 and int8 convolutions (include/nnedge/conv.h) against the
 * reference kernels on random geometries: channels 1..70 (most not multiples of 8 or 16),
 * kernels 1x1..4x4, strides 1-3, dilation 1-2, asymmetric padding, output padding, groups
 * 1, depthwise and in between, batch 1-2. Under every ISA this CPU runs (NNEDGE_ISA ref,
 * avx2, avx512; the others are reported as skipped), serial and with a 2-thread pool:
 *   - the two thread counts give bitwise identical outputs;
 *   - f32: within NNE_CONV_F32_TOL of the reference plus the activation, elementwise, with
 *     the bound computed from the same convolution on |x|, |w|, |bias| (see conv.h); the
 *     _exact variants bitwise equal to it;
 *   - int8: bit-exact with nne_conv2d_s8__ref / nne_conv_transpose2d_s8__ref, per-tensor and
 *     per-channel Q31 and power-of-two output stages, fused ReLU clamps, and fused PReLUs
 *     (nne_qoutput.rq_neg: a quarter of the cases, and test_prelu_fused).
 * Outputs are poisoned (NaN / a marker byte) before each run, so an unwritten element fails.
 * An indexing error (a lost or doubled tap, a wrong phase) changes a value by ~|x w| ~ 0.1,
 * several orders above the tolerance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_geom.h"
#include "nnedge/conv.h"
#include "nnedge/gemm.h"
#include "ops/conv_band.h" /* nne_conv_band_disable, CONV_BAND_* */
#include "testutil.h"

static const char *const isas[] = {"ref", "avx2", "avx512"};

/* Whether check_*_geom also runs a groups-1 geometry on the implicit GEMM (forced with
 * nne_conv_band_disable; the default sends it to the band kernels): on for the random
 * suites, so that both paths keep their coverage; off for the band-specific tests. */
static bool also_gemm;

/* 0: check_s8_geom draws int8 weights over the whole range; else in [-w_lim, w_lim] with
 * +-w_lim and the extreme inputs frequent (the w7 panel, test_band_w7). */
static int w_lim;

/* ---- f32 -------------------------------------------------------------------------------- */

static float frand(nne_test_rng *r) { return (float)(nne_test_rng_uniform(r) * 2.0 - 1.0); }

/* One f32 geometry under every ISA, serial and with pool2. */
static void check_f32_geom(nne_test_rng *r, nne_conv2d_geom g, bool transposed,
                           nne_threadpool *pool2) {
    char desc[200];
    nne_test_conv_geom_str(&g, desc, sizeof desc);
    const size_t nx = nne_test_conv_x_len(&g), ny = nne_test_conv_y_len(&g),
                 nw = nne_test_conv_w_len(&g);
    float *x = malloc(nx * sizeof *x), *ax = malloc(nx * sizeof *ax);
    float *w = malloc(nw * sizeof *w), *aw = malloc(nw * sizeof *aw);
    float *b = malloc((size_t)g.oc * sizeof *b), *ab = malloc((size_t)g.oc * sizeof *ab);
    float *slope = malloc((size_t)g.oc * sizeof *slope);
    float *yr = malloc(ny * sizeof *yr), *ya = malloc(ny * sizeof *ya);
    float *y1 = malloc(ny * sizeof *y1), *y2 = malloc(ny * sizeof *y2);
    for (size_t i = 0; i < nx; i++) ax[i] = fabsf(x[i] = frand(r));
    for (size_t i = 0; i < nw; i++) aw[i] = fabsf(w[i] = frand(r));
    for (int32_t o = 0; o < g.oc; o++) {
        ab[o] = fabsf(b[o] = frand(r));
        slope[o] = frand(r) * 0.5f;
    }
    const bool has_bias = nne_test_rng_int(r, 0, 3) != 0;
    nne_conv_act act = {(nne_conv_act_kind)nne_test_rng_int(r, 0, 2), slope,
                        nne_test_rng_int(r, 0, 1) ? g.oc : 1};
    if (transposed) {
        nne_conv_transpose2d_f32__ref(&g, x, w, has_bias ? b : NULL, yr);
        nne_conv_transpose2d_f32__ref(&g, ax, aw, has_bias ? ab : NULL, ya);
    } else {
        nne_conv2d_f32__ref(&g, x, w, has_bias ? b : NULL, yr);
        nne_conv2d_f32__ref(&g, ax, aw, has_bias ? ab : NULL, ya);
    }
    const size_t c = (size_t)g.oc;
    if (act.kind == NNE_CONV_ACT_RELU) nne_relu_f32__ref(ny, yr, yr);
    if (act.kind == NNE_CONV_ACT_PRELU)
        nne_prelu_f32__ref(ny / c, g.oc, yr, slope, act.n_slope, yr);
    const double k = (double)g.kh * g.kw * (g.ic / g.groups);
    /* groups 1 runs on the band kernels; path 1 forces the implicit GEMM (also_gemm) */
    for (int path = 0; path < (g.groups == 1 && also_gemm ? 2 : 1); path++) {
        nne_conv_band_disable = path;
        size_t ss = transposed ? nne_conv_transpose2d_f32_scratch_size(&g, 2)
                               : nne_conv2d_f32_scratch_size(&g, 2);
        void *scratch = nne_aligned_alloc(ss ? ss : 64);
        for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
            if (!nne_ops_isa_supported(isas[v])) continue;
            CHECK_OK(nne_ops_set_isa(isas[v]));
            for (size_t i = 0; i < ny; i++) y1[i] = y2[i] = NAN;
            if (transposed) {
                nne_conv_transpose2d_f32(NULL, &g, x, w, has_bias ? b : NULL, &act, y1, scratch);
                nne_conv_transpose2d_f32(pool2, &g, x, w, has_bias ? b : NULL, &act, y2, scratch);
            } else {
                nne_conv2d_f32(NULL, &g, x, w, has_bias ? b : NULL, &act, y1, scratch);
                nne_conv2d_f32(pool2, &g, x, w, has_bias ? b : NULL, &act, y2, scratch);
            }
            CHECK_MSG(memcmp(y1, y2, ny * sizeof *y1) == 0, "%s %s%s: 1 vs 2 threads differ",
                      isas[v], path ? "(gemm) " : "", desc);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < ny; i++) {
                const double tol = NNE_CONV_F32_TOL * (k + 2) * ya[i];
                if (!(fabs((double)y1[i] - yr[i]) <= tol)) {
                    if (!bad) first = i;
                    bad++;
                }
            }
            CHECK_MSG(bad == 0, "%s %s%s%s act %d: %zu bad, first [%zu] %.9g vs ref %.9g", isas[v],
                      path ? "(gemm) " : "", transposed ? "T " : "", desc, (int)act.kind, bad,
                      first, (double)y1[first], (double)yr[first]);
            /* The exact variants (never on the band kernels): the reference's bits, serial
             * and on 2 threads. */
            for (int t = 0; t < 2 && path == 0; t++) {
                float *ye = t ? y2 : y1;
                for (size_t i = 0; i < ny; i++) ye[i] = NAN;
                if (transposed)
                    nne_conv_transpose2d_f32_exact(t ? pool2 : NULL, &g, x, w, has_bias ? b : NULL,
                                                   &act, ye, scratch);
                else
                    nne_conv2d_f32_exact(t ? pool2 : NULL, &g, x, w, has_bias ? b : NULL, &act, ye,
                                         scratch);
                CHECK_MSG(memcmp(ye, yr, ny * sizeof *ye) == 0,
                          "%s exact %s%s act %d, %d thread(s): not the reference's bits", isas[v],
                          transposed ? "T " : "", desc, (int)act.kind, t + 1);
            }
        }
        nne_aligned_free(scratch);
    }
    nne_conv_band_disable = 0;
    free(x), free(ax), free(w), free(aw), free(b), free(ab), free(slope);
    free(yr), free(ya), free(y1), free(y2);
}

static void check_f32_case(nne_test_rng *r, bool transposed, nne_threadpool *pool2) {
    nne_conv2d_geom g;
    nne_test_conv_geom_rand(r, transposed, &g);
    check_f32_geom(r, g, transposed, pool2);
}

static nne_threadpool *pool2;

static void test_conv2d_f32_random(void) {
    nne_test_rng r;
    also_gemm = true;
    nne_test_rng_seed(&r, 1);
    for (int i = 0; i < 60; i++) check_f32_case(&r, false, pool2);
    also_gemm = false;
}

static void test_conv_transpose2d_f32_random(void) {
    nne_test_rng r;
    also_gemm = true;
    nne_test_rng_seed(&r, 2);
    for (int i = 0; i < 60; i++) check_f32_case(&r, true, pool2);
    also_gemm = false;
}

/* cae-seed's shapes at a small size (3x3 valid, strides 1 and 2, output padding 1): the
 * paths the backend takes, with tiles crossing rows and images. */
static void test_cae_shapes_f32(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 3);
    for (int i = 0; i < 2; i++) check_f32_case(&r, false, pool2); /* keep the rng moving */
    const int32_t chans[][2] = {{3, 32}, {32, 32}, {32, 64}, {64, 64}, {64, 32}};
    for (int t = 0; t < 2; t++) {
        for (int l = 0; l < 5; l++) {
            nne_conv2d_geom g = {
                .n = 2, .ih = 37, .iw = 29, .kh = 3, .kw = 3, .dil_h = 1, .dil_w = 1, .groups = 1};
            g.ic = chans[l][t ? 1 : 0], g.oc = chans[l][t ? 0 : 1];
            g.stride_h = g.stride_w = l == 0 || l == 2 ? 1 : 2;
            if (t) g.out_pad_h = g.stride_h - 1;
            nne_test_conv_geom_out(&g, t);
            const size_t nx = nne_test_conv_x_len(&g), ny = nne_test_conv_y_len(&g),
                         nw = nne_test_conv_w_len(&g);
            float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)g.oc * 4);
            float *yr = malloc(ny * 4), *y = malloc(ny * 4), *slope = malloc((size_t)g.oc * 4);
            for (size_t i = 0; i < nx; i++) x[i] = frand(&r);
            for (size_t i = 0; i < nw; i++) w[i] = frand(&r) * 0.2f;
            for (int32_t o = 0; o < g.oc; o++) b[o] = frand(&r), slope[o] = 0.25f;
            nne_conv_act act = {NNE_CONV_ACT_PRELU, slope, g.oc};
            if (t)
                nne_conv_transpose2d_f32__ref(&g, x, w, b, yr);
            else
                nne_conv2d_f32__ref(&g, x, w, b, yr);
            nne_prelu_f32__ref(ny / (size_t)g.oc, g.oc, yr, slope, g.oc, yr);
            size_t ss = t ? nne_conv_transpose2d_f32_scratch_size(&g, 2)
                          : nne_conv2d_f32_scratch_size(&g, 2);
            void *scratch = nne_aligned_alloc(ss);
            if (t)
                nne_conv_transpose2d_f32(pool2, &g, x, w, b, &act, y, scratch);
            else
                nne_conv2d_f32(pool2, &g, x, w, b, &act, y, scratch);
            double maxerr = 0;
            for (size_t i = 0; i < ny; i++) {
                double e = fabs((double)y[i] - yr[i]);
                if (!(e <= maxerr)) maxerr = e;
            }
            CHECK_MSG(maxerr < 1e-4, "cae layer %d%s: max error %g", l + 1, t ? " (T)" : "",
                      maxerr);
            nne_aligned_free(scratch);
            free(x), free(w), free(b), free(yr), free(y), free(slope);
        }
    }
}

/* ---- int8 ------------------------------------------------------------------------------- */

/* A prepared layer made from copies of w, bias and out (rq and rq_neg) that are overwritten
 * right after nne_conv_s8_prep_create: the prepared layer must not read the caller's
 * arguments later. */
static nne_conv_s8_prep *prep_copy(const nne_conv2d_geom *g, bool transposed, int32_t x_zp,
                                   const int8_t *w, const int32_t *bias, const nne_qoutput *out) {
    const size_t nw = nne_test_conv_w_len(g);
    const int32_t n_neg = out->rq_neg ? out->neg_count : 0;
    int8_t *wc = malloc(nw);
    int32_t *bc = malloc((size_t)g->oc * sizeof *bc);
    nne_requant *rc = malloc((size_t)out->count * sizeof *rc);
    nne_requant *nc = malloc((size_t)(n_neg ? n_neg : 1) * sizeof *nc);
    memcpy(wc, w, nw);
    if (bias) memcpy(bc, bias, (size_t)g->oc * sizeof *bc);
    memcpy(rc, out->rq, (size_t)out->count * sizeof *rc);
    if (n_neg) memcpy(nc, out->rq_neg, (size_t)n_neg * sizeof *nc);
    nne_qoutput oc = *out;
    oc.rq = rc;
    if (n_neg) oc.rq_neg = nc;
    nne_conv_s8_prep *prep = NULL;
    CHECK_OK(nne_conv_s8_prep_create(g, transposed, x_zp, wc, bias ? bc : NULL, &oc, &prep));
    memset(wc, 0x3c, nw);
    memset(bc, 0x3c, (size_t)g->oc * sizeof *bc);
    memset(rc, 0x3c, (size_t)out->count * sizeof *rc);
    memset(nc, 0x3c, (size_t)(n_neg ? n_neg : 1) * sizeof *nc);
    free(wc), free(bc), free(rc), free(nc);
    return prep;
}

/* The fast kernels on one int8 layer against the reference's output yr: under every ISA,
 * serial and with pool, per call and prepared (this ISA's and one prepared under "ref"), on
 * the band kernels and (also_gemm, groups 1) the implicit GEMM. */
static void check_s8_run(const nne_conv2d_geom *gp, bool transposed, const int8_t *x, int32_t x_zp,
                         const int8_t *w, const int32_t *bias, const nne_qoutput *outp,
                         const int8_t *yr, nne_threadpool *pool) {
    const nne_conv2d_geom g = *gp;
    const nne_qoutput out = *outp;
    char desc[200];
    nne_test_conv_geom_str(&g, desc, sizeof desc);
    const size_t ny = nne_test_conv_y_len(&g);
    int8_t *y1 = malloc(ny), *y2 = malloc(ny);
    for (int path = 0; path < (g.groups == 1 && also_gemm ? 2 : 1); path++) { /* as f32 */
        nne_conv_band_disable = path;
        size_t ss = transposed ? nne_conv_transpose2d_s8_scratch_size(&g, 2)
                               : nne_conv2d_s8_scratch_size(&g, 2);
        void *scratch = nne_aligned_alloc(ss ? ss : 64);
        /* prepared under "ref": under the other ISAs it takes the per-call fallback */
        CHECK_OK(nne_ops_set_isa("ref"));
        nne_conv_s8_prep *prep_ref = prep_copy(&g, transposed, x_zp, w, bias, &out);
        for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
            if (!nne_ops_isa_supported(isas[v])) continue;
            CHECK_OK(nne_ops_set_isa(isas[v]));
            /* prepared layers, 1 and 2 threads: this ISA's, and the stale one */
            nne_conv_s8_prep *prep = prep_copy(&g, transposed, x_zp, w, bias, &out);
            for (int k = 0; k < 2; k++) {
                memset(y1, 0x5a, ny);
                memset(y2, 0xa5, ny);
                nne_conv_s8_prep_run(NULL, k ? prep_ref : prep, x, y1, scratch);
                nne_conv_s8_prep_run(pool, k ? prep_ref : prep, x, y2, scratch);
                size_t bad = 0;
                for (size_t i = 0; i < ny; i++) bad += y1[i] != yr[i] || y2[i] != yr[i];
                CHECK_MSG(bad == 0, "%s %sprepared%s %s%s%s: %zu differ", isas[v],
                          path ? "(gemm) " : "", k ? " under ref" : "", transposed ? "T " : "",
                          desc, out.rq_neg ? " prelu" : "", bad);
            }
            nne_conv_s8_prep_free(prep);
            memset(y1, 0x5a, ny);
            memset(y2, 0xa5, ny);
            if (transposed) {
                nne_conv_transpose2d_s8(NULL, &g, x, x_zp, w, bias, &out, y1, scratch);
                nne_conv_transpose2d_s8(pool, &g, x, x_zp, w, bias, &out, y2, scratch);
            } else {
                nne_conv2d_s8(NULL, &g, x, x_zp, w, bias, &out, y1, scratch);
                nne_conv2d_s8(pool, &g, x, x_zp, w, bias, &out, y2, scratch);
            }
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < ny; i++)
                if (y1[i] != yr[i] || y2[i] != yr[i]) {
                    if (!bad) first = i;
                    bad++;
                }
            CHECK_MSG(bad == 0,
                      "%s (%s) %s%s%s zp %d mode %d count %d prelu %d: %zu differ, first [%zu] "
                      "%d %d ref %d",
                      isas[v], nne_conv_s8_isa(), path ? "(gemm) " : "", transposed ? "T " : "",
                      desc, (int)x_zp, (int)out.mode, (int)out.count,
                      out.rq_neg ? (int)out.neg_count : 0, bad, first, y1[first], y2[first],
                      yr[first]);
        }
        nne_conv_s8_prep_free(prep_ref);
        nne_aligned_free(scratch);
    }
    nne_conv_band_disable = 0;
    free(y1), free(y2);
}

/* The fused PReLU variants of check_s8_geom draw from their own generator, so that the
 * geometries and data the other draws give stay those of the unfused suites. */
static nne_test_rng prelu_rng;
/* 0: check_s8_geom adds a fused-PReLU run to a quarter of its cases; 1: to every case. */
static int prelu_always;
/* Outputs that the fused runs checked must change against the plain stage (all cases). */
static size_t prelu_far;

/* The real value of a Q31 multiplier. */
static double rq_real(nne_requant rq) { return ldexp((double)rq.multiplier, -31 - rq.shift); }

/* A fused PReLU for output stage `out` (Q31, clamp [-128, 127]): neg_count 1 or oc
 * (independently of out->count), slopes among 0, 0.01, 0.25, 0.9, -0.3, 1.5 and random in
 * [-2, 2] (none within 0.1 of 1); rq_neg[c] = Q31(slope_c M_c) as nne_qoutput_fuse_prelu makes it,
 * so negative and zero mantissas and left shifts on one side only occur. rq_neg has room for oc. */
static void draw_prelu(nne_test_rng *r, int32_t oc, nne_qoutput *out, nne_requant *rq_neg) {
    static const double slopes[] = {0.0, 0.01, 0.25, 0.9, -0.3, 1.5};
    out->neg_count = nne_test_rng_int(r, 0, 1) ? oc : 1;
    const bool shared = nne_test_rng_int(r, 0, 1);
    double a = 0;
    for (int32_t c = 0; c < out->neg_count; c++) {
        if (c == 0 || !shared) {
            const int k = nne_test_rng_int(r, 0, 6);
            a = k < 6 ? slopes[k] : nne_test_rng_uniform(r) * 3.8 - 2.0;
            if (a > 0.9 && a < 1.1) a += 0.2; /* |a - 1| >= 0.09 (0.9): see check_s8_geom */
        }
        const double m = rq_real(out->rq[out->count == 1 ? 0 : c]);
        CHECK_OK(nne_quant_multiplier_from_scale(a * m, &rq_neg[c]));
    }
    out->rq_neg = rq_neg;
}

/* One int8 geometry: random data and output stage, the fast kernels against the reference
 * (check_s8_run); then, for a quarter of the cases (every case with prelu_always), the same layer
 * with a fused PReLU (Q31, clamp [-128, 127]) against the reference with that output stage,
 * whose output must differ from the plain one (the fusion is no no-op). */
static void check_s8_geom(nne_test_rng *r, nne_conv2d_geom g, bool transposed,
                          nne_threadpool *pool) {
    const size_t nx = nne_test_conv_x_len(&g), ny = nne_test_conv_y_len(&g),
                 nw = nne_test_conv_w_len(&g);
    int8_t *x = malloc(nx), *w = malloc(nw), *yr = malloc(ny), *yf = malloc(ny);
    int32_t *bias = malloc((size_t)g.oc * sizeof *bias);
    nne_requant *rq = malloc((size_t)g.oc * sizeof *rq);
    nne_requant *rq_neg = malloc((size_t)g.oc * sizeof *rq_neg);
    /* Extreme codes are common: -128 and 127 inputs, -128 weights, zero points at the ends.
     * With w_lim: weights in [-w_lim, w_lim], half of them +-w_lim, and half the inputs 127
     * (x + 128 = 255: the w7 panel's worst case) or -128 (0). */
    const int xodds = w_lim ? 1 : 7;
    for (size_t i = 0; i < nx; i++)
        x[i] = (int8_t)(nne_test_rng_int(r, 0, xodds) ? nne_test_rng_int(r, -128, 127)
                                                      : (nne_test_rng_int(r, 0, 3) ? 127 : -128));
    for (size_t i = 0; i < nw; i++)
        if (w_lim)
            w[i] =
                (int8_t)(nne_test_rng_int(r, 0, 1) ? nne_test_rng_int(r, -w_lim, w_lim)
                                                   : (nne_test_rng_int(r, 0, 1) ? w_lim : -w_lim));
        else
            w[i] = (int8_t)(nne_test_rng_int(r, 0, 15) ? nne_test_rng_int(r, -127, 127) : -128);
    const int zsel = nne_test_rng_int(r, 0, 3);
    const int32_t x_zp = zsel == 0 ? -128 : zsel == 1 ? 127 : nne_test_rng_int(r, -128, 127);
    for (int32_t o = 0; o < g.oc; o++) bias[o] = nne_test_rng_int(r, -200000, 200000);
    const bool has_bias = nne_test_rng_int(r, 0, 3) != 0;
    const int32_t *b = has_bias ? bias : NULL;
    nne_qoutput out = {0};
    out.mode = nne_test_rng_int(r, 0, 1) ? NNE_RQ_POW2 : NNE_RQ_Q31;
    out.count = nne_test_rng_int(r, 0, 1) ? g.oc : 1;
    out.rq = rq;
    for (int32_t o = 0; o < out.count; o++) {
        if (out.mode == NNE_RQ_POW2) {
            rq[o].multiplier = 0;
            rq[o].shift = nne_test_rng_int(r, -2, 16);
        } else {
            /* M in [2^-14, 2^1): right shifts 0..14 and a left shift */
            double m = ldexp(0.5 + 0.5 * nne_test_rng_uniform(r), -nne_test_rng_int(r, -1, 13));
            CHECK_OK(nne_quant_multiplier_from_scale(m, &rq[o]));
        }
    }
    out.zero_point = nne_test_rng_int(r, -128, 127);
    out.act_min = -128, out.act_max = 127;
    if (nne_test_rng_int(r, 0, 1)) out.act_min = out.zero_point; /* fused ReLU */
    if (transposed)
        nne_conv_transpose2d_s8__ref(&g, x, x_zp, w, b, &out, yr);
    else
        nne_conv2d_s8__ref(&g, x, x_zp, w, b, &out, yr);
    check_s8_run(&g, transposed, x, x_zp, w, b, &out, yr, pool);

    nne_test_rng *fr = &prelu_rng;
    if (prelu_always || nne_test_rng_int(fr, 0, 3) == 0) {
        /* Q31 (pow2 stages get Q31 multipliers from fr, and with prelu_always every stage,
         * M in [2^-8, 2): left shifts on one side only are frequent), no clamp, the PReLU */
        if (out.mode == NNE_RQ_POW2 || prelu_always) {
            out.mode = NNE_RQ_Q31;
            for (int32_t o = 0; o < out.count; o++) {
                const int e = nne_test_rng_int(fr, -1, prelu_always ? 7 : 13);
                CHECK_OK(nne_quant_multiplier_from_scale(
                    ldexp(0.5 + 0.5 * nne_test_rng_uniform(fr), -e), &rq[o]));
            }
        }
        out.act_min = -128;
        draw_prelu(fr, g.oc, &out, rq_neg);
        if (transposed)
            nne_conv_transpose2d_s8__ref(&g, x, x_zp, w, b, &out, yf);
        else
            nne_conv2d_s8__ref(&g, x, x_zp, w, b, &out, yf);
        check_s8_run(&g, transposed, x, x_zp, w, b, &out, yf, pool);
        /* Against the plain stage (rq_neg NULL): an output above the zero point had acc >= 0
         * and must not change; one in [-127, zp - 20] had acc M <= -19.25 (each rounding is
         * within 0.75 of the real value), so the PReLU moves it by |s - 1| * 19.25, s =
         * M_neg / M the channel's effective slope: by 1.73 > 2 * 0.75 when |s - 1| >= 0.09
         * (every slope draw_prelu draws; a shared rq_neg with per-channel rq gives others),
         * and then it must change. */
        nne_qoutput plain = out;
        plain.rq_neg = NULL;
        if (transposed)
            nne_conv_transpose2d_s8__ref(&g, x, x_zp, w, b, &plain, yr);
        else
            nne_conv2d_s8__ref(&g, x, x_zp, w, b, &plain, yr);
        size_t bad = 0, far = 0;
        for (size_t i = 0; i < ny; i++) {
            const int32_t c = (int32_t)(i % (size_t)g.oc);
            const double s = rq_real(out.rq_neg[out.neg_count == 1 ? 0 : c]) /
                             rq_real(out.rq[out.count == 1 ? 0 : c]);
            const bool must_change =
                fabs(s - 1) >= 0.09 && yr[i] >= -127 && yr[i] <= out.zero_point - 20;
            far += must_change;
            bad += yr[i] > out.zero_point ? yf[i] != yr[i] : must_change && yf[i] == yr[i];
        }
        prelu_far += far;
        CHECK_MSG(bad == 0, "fused prelu against the plain stage: %zu of %zu wrong (%zu far)", bad,
                  ny, far);
    }
    free(x), free(w), free(yr), free(yf), free(bias), free(rq), free(rq_neg);
}

static void check_s8_case(nne_test_rng *r, bool transposed, nne_threadpool *pool) {
    nne_conv2d_geom g;
    nne_test_conv_geom_rand(r, transposed, &g);
    check_s8_geom(r, g, transposed, pool);
}

static void test_conv2d_s8_random(void) {
    nne_test_rng r;
    also_gemm = true;
    nne_test_rng_seed(&r, 11);
    for (int i = 0; i < 80; i++) check_s8_case(&r, false, pool2);
    also_gemm = false;
}

static void test_conv_transpose2d_s8_random(void) {
    nne_test_rng r;
    also_gemm = true;
    nne_test_rng_seed(&r, 12);
    for (int i = 0; i < 80; i++) check_s8_case(&r, true, pool2);
    also_gemm = false;
}

/* ---- direct band kernels (src/ops/conv_band.h) ------------------------------------------ */

/* A random geometry that conv_band_select sends to a band kernel: groups 1 and either small
 * K (ic 1..4, kernels up to 3x3 with dilation: K <= 36 <= CONV_BAND_SMALL_K, oc 5..40) or
 * tiny N (oc 1..4, ic 1..40, kernels up to 4x4). Strides, dilations and paddings as
 * rand_geom's, images up to 2 x 13 x 23 so that rows cross tile tails (6 and 4 pixels). */
static void rand_band_geom(nne_test_rng *r, bool transposed, bool tinyn, nne_conv2d_geom *g) {
    do {
        nne_test_conv_geom_rand(r, transposed, g);
        g->groups = 1;
        if (tinyn) {
            g->oc = nne_test_rng_int(r, 1, 4);
            g->ic = nne_test_rng_int(r, 1, 40);
        } else {
            g->oc = nne_test_rng_int(r, 5, 40);
            g->ic = nne_test_rng_int(r, 1, 4);
            g->kh = nne_test_rng_int(r, 1, 3);
            g->kw = nne_test_rng_int(r, 1, 3);
        }
        g->ih = nne_test_rng_int(r, 1, 13);
        g->iw = nne_test_rng_int(r, 1, 23);
        nne_test_conv_geom_out(g, transposed);
    } while (g->oh <= 0 || g->ow <= 0);
}

static void test_band_random(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 21);
    for (int i = 0; i < 160; i++) {
        const bool transposed = i & 1, tinyn = i & 2;
        nne_conv2d_geom g;
        rand_band_geom(&r, transposed, tinyn, &g);
        if (i & 4)
            check_s8_geom(&r, g, transposed, pool2);
        else
            check_f32_geom(&r, g, transposed, pool2);
    }
}

/* cae-seed's RGB layers (conv2d_1: 3 -> 32, K = 27; conv2d_transpose_5: 32 -> 3, a full
 * 3x3 convolution with 2 pixels of padding) on 2 images of 24 x 250: wide enough that the
 * last layer's bands are cut into column tiles (f32 and int8) and that tiles cross the
 * image's padded borders. Also the stride-2 cousins (phases, output padding). */
static void test_band_cae_layers(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 22);
    for (int l = 0; l < 4; l++) {
        const bool transposed = l & 1;
        nne_conv2d_geom g = {
            .n = 2, .ih = 24, .iw = 250, .kh = 3, .kw = 3, .dil_h = 1, .dil_w = 1, .groups = 1};
        g.ic = transposed ? 32 : 3, g.oc = transposed ? 3 : 32;
        g.stride_h = g.stride_w = l < 2 ? 1 : 2;
        if (transposed) g.out_pad_h = g.out_pad_w = g.stride_h - 1;
        nne_test_conv_geom_out(&g, transposed);
        check_f32_geom(&r, g, transposed, pool2);
        check_s8_geom(&r, g, transposed, pool2);
    }
}

/* The panel kernel on deep layers (cae-seed's middle layers and channel counts that are not
 * multiples of 16), on rows wide enough that a tile row is cut into several kernel calls
 * (conv_band_chunk: 6..60 pixels here, rows of 39..162) with a ragged last call; stride 1 and 2,
 * dilation 2, padding, and the transposed cousins (phases). Then the depth limits: K just under and
 * over CONV_BAND_MAX_K_F32 (f32 band / GEMM) and CONV_BAND_MAX_K_S8 (int8 band / GEMM). */
/* Column tiles (conv_band_phase_make): rows too wide for the band target are cut into column
 * tiles of even widths, a multiple of 6 pixels when that fits. cae-seed's conv2d_5 (64 -> 32
 * channels, 3x3 stride 2, valid) on 21 x 189 and two odd channel counts (37 -> 45 with
 * padding, 61 -> 19 stride 2: channels not a multiple of 16), each under every ISA, serial and
 * with 2 threads (check_*_geom), int8 full range and with weights in +-64 (the w7 panel). */
static void test_band_col_tiles(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 29);
    const int32_t ch[][3] = {{64, 32, 2}, {37, 45, 1}, {61, 19, 2}};
    for (int l = 0; l < 3; l++) {
        nne_conv2d_geom g = {.n = 1,
                             .ih = 21,
                             .iw = 189,
                             .ic = ch[l][0],
                             .oc = ch[l][1],
                             .kh = 3,
                             .kw = 3,
                             .stride_h = ch[l][2],
                             .stride_w = ch[l][2],
                             .dil_h = 1,
                             .dil_w = 1,
                             .groups = 1};
        if (l == 1) g.pad_t = g.pad_b = g.pad_l = g.pad_r = 1;
        nne_test_conv_geom_out(&g, false);
        for (int s8 = 0; s8 < 2; s8++) {
            conv_plan p;
            conv_plan_make(&p, &g, false, 1 << 16, 24);
            conv_band_phase b;
            conv_band_phase_make(&p, 0, (int64_t)(128 * 1024 / (s8 ? 2 : 4)), &b);
            const int32_t qw = b.c.x.q;
            /* cut into columns, evenly: rounding the even width up to a multiple of 6 takes
             * less than 6 pixels per tile from the last one (without rounding: 1) */
            CHECK_MSG(b.tiles_x > 1 && b.C * (b.tiles_x - 1) < qw && b.C * b.tiles_x >= qw,
                      "layer %d s8 %d: %d tiles of %d columns for %d", l, s8, b.tiles_x, b.C, qw);
            CHECK_MSG(qw - b.C * (b.tiles_x - 1) > b.C - (b.C % 6 ? 2 : 6) * b.tiles_x,
                      "layer %d s8 %d: last tile of %d columns, others %d", l, s8,
                      qw - b.C * (b.tiles_x - 1), b.C);
        }
        if (l == 0) { /* conv2d_5: 94 columns in 24 + 24 + 24 + 22 (int8) */
            conv_plan p;
            conv_plan_make(&p, &g, false, 1 << 16, 24);
            conv_band_phase b;
            conv_band_phase_make(&p, 0, 64 * 1024, &b);
            CHECK_MSG(b.C == 24 && b.tiles_x == 4, "conv2d_5: %d x %d columns", b.tiles_x, b.C);
        }
        check_f32_geom(&r, g, false, pool2);
        check_s8_geom(&r, g, false, pool2);
        w_lim = 64;
        check_s8_geom(&r, g, false, pool2);
        w_lim = 0;
    }
}

static void test_band_panel_deep(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 23);
    const int32_t ch[][2] = {{32, 32}, {32, 64}, {64, 64}, {64, 32}, {37, 45}, {61, 19}};
    for (int l = 0; l < 12; l++) {
        const bool transposed = l >= 6;
        nne_conv2d_geom g = {.n = 1 + (l & 1),
                             .ih = 5,
                             .iw = 80,
                             .kh = 3,
                             .kw = 3,
                             .dil_h = 1,
                             .dil_w = 1,
                             .groups = 1};
        g.ic = ch[l % 6][0], g.oc = ch[l % 6][1];
        g.stride_h = g.stride_w = (l % 6) & 1 ? 2 : 1;
        if (l % 6 == 4) g.dil_w = 2, g.pad_l = 2, g.pad_r = 1;
        if (l % 6 == 5) g.pad_t = 1, g.pad_b = 1, g.pad_l = 1, g.pad_r = 1;
        if (transposed) g.out_pad_h = g.out_pad_w = g.stride_h - 1;
        nne_test_conv_geom_out(&g, transposed);
        check_f32_geom(&r, g, transposed, pool2);
        check_s8_geom(&r, g, transposed, pool2);
    }
    /* 3x3 kernels: K = 9 ic; f32 limit 1024 (ic 113 -> 1017, 114 -> 1026), int8 limit 2048
     * (ic 227 -> 2043, 228 -> 2052) */
    const int32_t deep_ic[] = {113, 114, 227, 228};
    for (int i = 0; i < 4; i++) {
        nne_conv2d_geom g = {.n = 1,
                             .ih = 5,
                             .iw = 9,
                             .ic = deep_ic[i],
                             .oc = 20,
                             .kh = 3,
                             .kw = 3,
                             .stride_h = 1,
                             .stride_w = 1,
                             .dil_h = 1,
                             .dil_w = 1,
                             .pad_l = 1,
                             .pad_r = 1,
                             .groups = 1,
                             .oh = 3,
                             .ow = 9};
        conv_plan p;
        conv_plan_make(&p, &g, false, 1 << 16, 24);
        CHECK(conv_band_select(&p, i >= 2) == (i & 1 ? CONV_BAND_NONE : CONV_BAND_PANEL));
        if (i < 2)
            check_f32_geom(&r, g, false, pool2);
        else
            check_s8_geom(&r, g, false, pool2);
    }
}

/* The w7 panel (vpmaddubsw, conv_band.h): taken when every weight is within +-64, exact
 * there; with one weight at +-65 the int16 panel runs (vpmaddubsw would saturate:
 * 2 x 255 x 65 > 32767). Random panel geometries (small and deep K, conv and transposed) and
 * cae-seed's conv2d_1 / conv2d_2, with weights at the limits and inputs 127 / -128 frequent,
 * bit-exact under every ISA x 1 / 2 threads (check_s8_geom). */
static void test_band_w7(void) {
    const int8_t in[] = {64, -64, 0, 17, -64, 64}, out1[] = {64, -65, 3}, out2[] = {65, 0};
    CHECK(conv_band_s8_w7(in, sizeof in));
    CHECK(!conv_band_s8_w7(out1, sizeof out1));
    CHECK(!conv_band_s8_w7(out2, sizeof out2));
    nne_test_rng r;
    nne_test_rng_seed(&r, 24);
    const int lims[] = {64, 65};
    for (int li = 0; li < 2; li++) {
        w_lim = lims[li];
        for (int i = 0; i < 40; i++) {
            const bool transposed = i & 1;
            nne_conv2d_geom g;
            rand_band_geom(&r, transposed, false, &g);
            if (i & 2) g.ic = nne_test_rng_int(&r, 5, 70); /* deeper K: segments of odd length */
            check_s8_geom(&r, g, transposed, pool2);
        }
        for (int l = 0; l < 2; l++) { /* conv2d_1 (3 -> 32, valid), conv2d_2 (32 -> 64, s2) */
            nne_conv2d_geom g = {
                .n = 1, .ih = 9, .iw = 70, .kh = 3, .kw = 3, .dil_h = 1, .dil_w = 1, .groups = 1};
            g.ic = l ? 32 : 3, g.oc = l ? 64 : 32;
            g.stride_h = g.stride_w = l ? 2 : 1;
            nne_test_conv_geom_out(&g, false);
            check_s8_geom(&r, g, false, pool2);
        }
    }
    w_lim = 0;
}

/* Fused PReLU output stages (nne_qoutput.rq_neg) on every int8 path: random groups-1
 * conv2d and conv_transpose2d, kernels 1x1..5x5, strides 1-2, padding, channels 1..40 with
 * 3 and non-multiples of 8 / 16 frequent, per-tensor and per-channel multipliers, shared and
 * per-channel slopes (zero and negative included: draw_prelu), each bit-exact with the
 * reference under every ISA, 1 and 2 threads, per call and prepared (check_s8_run), on the
 * band kernels and the implicit GEMM (also_gemm); a third of the cases with weights in +-64
 * (the w7 panel). The draws are counted so that every path is known to be reached: band
 * panel, w7 panel, tiny N and GEMM. */
static void test_prelu_fused(void) {
    static const int32_t chans[] = {1, 3, 3, 5, 8, 13, 16, 17, 24, 32, 33, 40};
    nne_test_rng r;
    nne_test_rng_seed(&r, 31);
    also_gemm = true;
    prelu_always = 1;
    int reached[4] = {0}; /* panel, w7 panel, tiny N, implicit GEMM */
    const size_t far0 = prelu_far;
    for (int i = 0; i < 96; i++) {
        const bool transposed = i & 1;
        nne_conv2d_geom g;
        do {
            memset(&g, 0, sizeof g);
            g.n = nne_test_rng_int(&r, 1, 2);
            g.ic = chans[nne_test_rng_int(&r, 0, 11)];
            g.oc = i % 6 < 2 ? nne_test_rng_int(&r, 1, 4) : chans[nne_test_rng_int(&r, 0, 11)];
            g.kh = nne_test_rng_int(&r, 1, 5), g.kw = nne_test_rng_int(&r, 1, 5);
            g.stride_h = nne_test_rng_int(&r, 1, 2), g.stride_w = nne_test_rng_int(&r, 1, 2);
            g.dil_h = g.dil_w = 1;
            g.groups = 1;
            g.pad_t = nne_test_rng_int(&r, 0, g.kh - 1),
            g.pad_b = nne_test_rng_int(&r, 0, g.kh - 1);
            g.pad_l = nne_test_rng_int(&r, 0, g.kw - 1),
            g.pad_r = nne_test_rng_int(&r, 0, g.kw - 1);
            if (transposed) {
                g.out_pad_h = nne_test_rng_int(&r, 0, g.stride_h - 1);
                g.out_pad_w = nne_test_rng_int(&r, 0, g.stride_w - 1);
            }
            g.ih = nne_test_rng_int(&r, 1, 14), g.iw = nne_test_rng_int(&r, 1, 30);
            nne_test_conv_geom_out(&g, transposed);
        } while (g.oh <= 0 || g.ow <= 0);
        w_lim = i % 3 == 2 ? 64 : 0;
        conv_plan p;
        conv_plan_make(&p, &g, transposed, 1 << 16, 24);
        const conv_band_kind kind = conv_band_select(&p, true);
        reached[kind == CONV_BAND_TINYN ? 2 : w_lim ? 1 : 0]++;
        reached[3]++; /* also_gemm: every case also runs on the implicit GEMM */
        check_s8_geom(&r, g, transposed, pool2);
    }
    w_lim = 0;
    prelu_always = 0;
    also_gemm = false;
    CHECK_MSG(reached[0] >= 16 && reached[1] >= 16 && reached[2] >= 16 && reached[3] == 96,
              "paths reached: panel %d, w7 %d, tiny N %d, GEMM %d", reached[0], reached[1],
              reached[2], reached[3]);
    CHECK_MSG(prelu_far - far0 >= 1000, "only %zu outputs checked to change", prelu_far - far0);
}

/* The micro-kernel names follow the ISA; VNNI only where the CPU has it. */
static void test_s8_isa_names(void) {
    CHECK_OK(nne_ops_set_isa("ref"));
    CHECK(strcmp(nne_conv_s8_isa(), "ref") == 0);
    if (nne_ops_isa_supported("avx2")) {
        CHECK_OK(nne_ops_set_isa("avx2"));
        CHECK(strcmp(nne_conv_s8_isa(), "avx2") == 0);
    }
    if (!(nne_cpu_features() & NNE_CPU_AVX512VNNI))
        printf("  note: no AVX-512 VNNI on this CPU: the avx512vnni int8 kernel is not tested\n");
    if (!nne_ops_isa_supported("avx512"))
        printf("  note: no AVX-512 on this CPU: NNEDGE_ISA=avx512 cases skipped\n");
}

/* nne_gdn_f32_exact against nne_gdn_f32__ref, bitwise, GDN and IGDN, every ISA, serial
 * and on 2 threads; pixel counts around the 96-pixel tiles. */
static void test_gdn_exact(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 4);
    for (int it = 0; it < 40; it++) {
        const size_t px = it < 4 ? (size_t)(95 + it) : (size_t)nne_test_rng_int(&r, 1, 300);
        const int32_t c = nne_test_rng_int(&r, 1, 70);
        const bool inverse = it % 2;
        float *x = malloc(px * c * sizeof *x), *yr = malloc(px * c * sizeof *yr);
        float *y = malloc(px * c * sizeof *y), *beta = malloc(c * sizeof *beta);
        float *gamma = malloc((size_t)c * c * sizeof *gamma);
        for (size_t i = 0; i < px * c; i++) x[i] = 3 * frand(&r);
        for (int32_t i = 0; i < c; i++) beta[i] = 1e-3f + fabsf(frand(&r));
        for (int32_t i = 0; i < c * c; i++) gamma[i] = 0.1f * fabsf(frand(&r));
        nne_gdn_f32__ref(px, c, x, beta, gamma, inverse, yr);
        void *scratch = nne_aligned_alloc(nne_gdn_f32_scratch_size(c, 2));
        for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
            if (!nne_ops_isa_supported(isas[v])) continue;
            CHECK_OK(nne_ops_set_isa(isas[v]));
            for (int t = 0; t < 2; t++) {
                for (size_t i = 0; i < px * c; i++) y[i] = NAN;
                nne_gdn_f32_exact(t ? pool2 : NULL, px, c, x, beta, gamma, inverse, y, scratch);
                CHECK_MSG(memcmp(y, yr, px * c * sizeof *y) == 0,
                          "%s gdn px %zu c %d inverse %d, %d thread(s): not the reference's bits",
                          isas[v], px, (int)c, (int)inverse, t + 1);
            }
        }
        nne_aligned_free(scratch);
        free(x), free(yr), free(y), free(beta), free(gamma);
    }
}

int main(void) {
    CHECK_OK(nne_threadpool_create(2, &pool2));
    nne_test_rng_seed(&prelu_rng, 30);
    NNE_RUN(test_conv2d_f32_random);
    NNE_RUN(test_conv_transpose2d_f32_random);
    NNE_RUN(test_cae_shapes_f32);
    NNE_RUN(test_gdn_exact);
    NNE_RUN(test_conv2d_s8_random);
    NNE_RUN(test_conv_transpose2d_s8_random);
    NNE_RUN(test_band_random);
    NNE_RUN(test_band_cae_layers);
    NNE_RUN(test_band_panel_deep);
    NNE_RUN(test_band_col_tiles);
    NNE_RUN(test_band_w7);
    NNE_RUN(test_prelu_fused);
    NNE_RUN(test_s8_isa_names);
    nne_threadpool_free(pool2);
    nne_ops_set_isa(NULL);
    return nne_test_summary();
}
