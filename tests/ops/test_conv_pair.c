/* ops/conv_pair: fused pairs of convolutions (conv.h "Fused pairs", docs/conv.md
 * "Cross-layer fusion") against the two layers run one by one with the same kernels:
 *   f32   nne_conv2d_f32 (l1 with its act), nne_conv2d_f32 (l2)  -> bitwise equal
 *   int8  nne_conv2d_s8 (l1), the int8 activation on the whole tensor (clamp / PReLU, qops.h),
 *         nne_conv2d_s8 (l2)                                     -> bitwise equal
 * on random pairs: channels 1..40 (few multiples of 16; l2 with 1..4 channels takes the
 * tiny-N kernel), kernels 1..3 (l2 up to 3x3 with dilation 1..2), strides 1..2, padding
 * "valid" or "same"-like (asymmetric 0..2), odd sizes, batch 1..2, act none / ReLU / PReLU
 * between and after; int8 also with weights in +-64 (the w7 panel, a u8 ring) and pow2 / Q31
 * stages. Each under every ISA the CPU runs (ref, avx2, avx512), serial and with 2 threads
 * (rows split into several tasks, so the recomputed overlap rows are exercised); outputs
 * poisoned before each run. Plus cae-seed's conv2d_1 -> conv2d_2 shape (3 -> 32 -> 32, stride
 * 1 then 2, valid) on a 61 x 90 image; int8 l1 with a fused PReLU (nne_qoutput.rq_neg, mid
 * none) for a third of the pairs and three more cae-seed pairs, also against two reference
 * convolutions; and the planner's rules (ring budget, the int8 policy,
 * NNEDGE_FUSE=0, nne_conv_pair_disable, geometry mismatch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/conv.h"
#include "nnedge/gemm.h"
#include "ops/conv_band.h" /* nne_conv_pair_disable */
#include "testutil.h"

static const char *const isas[] = {"ref", "avx2", "avx512"};

static nne_conv2d_geom geom(int32_t n, int32_t ih, int32_t iw, int32_t ic, int32_t oc, int32_t k,
                            int32_t s, int32_t d, int32_t pt, int32_t pl, int32_t pb, int32_t pr) {
    nne_conv2d_geom g;
    memset(&g, 0, sizeof g);
    g.n = n, g.ih = ih, g.iw = iw, g.ic = ic, g.oc = oc;
    g.kh = g.kw = k, g.stride_h = g.stride_w = s, g.dil_h = g.dil_w = d;
    g.pad_t = pt, g.pad_l = pl, g.pad_b = pb, g.pad_r = pr;
    g.groups = 1;
    g.oh = (ih + pt + pb - (k - 1) * d - 1) / s + 1;
    g.ow = (iw + pl + pr - (k - 1) * d - 1) / s + 1;
    return g;
}

/* A random pair: l1's output is l2's input. */
static void rand_pair(nne_test_rng *r, nne_conv2d_geom *g1, nne_conv2d_geom *g2) {
    for (;;) {
        const int32_t n = nne_test_rng_int(r, 1, 2), ih = nne_test_rng_int(r, 3, 29),
                      iw = nne_test_rng_int(r, 3, 37);
        const int32_t ic =
            nne_test_rng_int(r, 0, 1) ? nne_test_rng_int(r, 1, 4) : nne_test_rng_int(r, 1, 40);
        const int32_t mid = nne_test_rng_int(r, 1, 40);
        const int32_t oc =
            nne_test_rng_int(r, 0, 2) ? nne_test_rng_int(r, 5, 40) : nne_test_rng_int(r, 1, 4);
        const int32_t k1 = nne_test_rng_int(r, 1, 3), s1 = nne_test_rng_int(r, 1, 2);
        const int32_t k2 = nne_test_rng_int(r, 1, 3), s2 = nne_test_rng_int(r, 1, 2);
        const int32_t d2 = nne_test_rng_int(r, 0, 3) ? 1 : 2;
        const bool same1 = nne_test_rng_int(r, 0, 1), same2 = nne_test_rng_int(r, 0, 1);
        const int32_t p1 = same1 ? k1 / 2 : 0, p2 = same2 ? (k2 - 1) * d2 / 2 : 0;
        *g1 =
            geom(n, ih, iw, ic, mid, k1, s1, 1, p1, p1, same1 ? nne_test_rng_int(r, 0, 2) : 0, p1);
        if (g1->oh < 1 || g1->ow < 1) continue;
        *g2 = geom(n, g1->oh, g1->ow, mid, oc, k2, s2, d2, p2, nne_test_rng_int(r, 0, p2), p2,
                   same2 ? nne_test_rng_int(r, 0, 2) : 0);
        if (g2->oh >= 1 && g2->ow >= 1) return;
    }
}

static size_t numel(int32_t n, int32_t h, int32_t w, int32_t c) { return (size_t)n * h * w * c; }

static float frand(nne_test_rng *r) { return (float)(nne_test_rng_uniform(r) * 2.0 - 1.0); }

static void desc_of(const nne_conv2d_geom *a, const nne_conv2d_geom *b, char *s, size_t n) {
    snprintf(s, n,
             "n%d %dx%dx%d -k%d s%d p%d,%d,%d,%d-> %dx%dx%d -k%d s%d d%d p%d,%d,%d,%d-> %dx%dx%d",
             a->n, a->ih, a->iw, a->ic, a->kh, a->stride_h, a->pad_t, a->pad_l, a->pad_b, a->pad_r,
             a->oh, a->ow, a->oc, b->kh, b->stride_h, b->dil_h, b->pad_t, b->pad_l, b->pad_b,
             b->pad_r, b->oh, b->ow, b->oc);
}

/* ---- f32 ---------------------------------------------------------------------------------- */

static void check_f32_pair(nne_test_rng *r, const nne_conv2d_geom *g1, const nne_conv2d_geom *g2,
                           nne_threadpool *pool2) {
    char desc[256];
    desc_of(g1, g2, desc, sizeof desc);
    CHECK_MSG(nne_conv2d_pair_ok(g1, g2, false, 2) && nne_conv2d_pair_ok(g1, g2, false, 1),
              "f32 %s: not fused", desc);
    const size_t nx = numel(g1->n, g1->ih, g1->iw, g1->ic);
    const size_t nm = numel(g1->n, g1->oh, g1->ow, g1->oc);
    const size_t ny = numel(g2->n, g2->oh, g2->ow, g2->oc);
    const size_t nw1 = (size_t)g1->oc * g1->kh * g1->kw * g1->ic;
    const size_t nw2 = (size_t)g2->oc * g2->kh * g2->kw * g2->ic;
    float *x = malloc(nx * 4), *m = malloc(nm * 4), *yu = malloc(ny * 4), *yf = malloc(ny * 4);
    float *w1 = malloc(nw1 * 4), *w2 = malloc(nw2 * 4);
    float *b1 = malloc((size_t)g1->oc * 4), *b2 = malloc((size_t)g2->oc * 4);
    float *s1 = malloc((size_t)g1->oc * 4), *s2 = malloc((size_t)g2->oc * 4);
    for (size_t i = 0; i < nx; i++) x[i] = frand(r);
    for (size_t i = 0; i < nw1; i++) w1[i] = frand(r);
    for (size_t i = 0; i < nw2; i++) w2[i] = frand(r);
    for (int32_t o = 0; o < g1->oc; o++) b1[o] = frand(r), s1[o] = frand(r) * 0.5f;
    for (int32_t o = 0; o < g2->oc; o++) b2[o] = frand(r), s2[o] = frand(r) * 0.5f;
    const nne_conv_act a1 = {(nne_conv_act_kind)nne_test_rng_int(r, 0, 2), s1,
                             nne_test_rng_int(r, 0, 1) ? g1->oc : 1};
    const nne_conv_act a2 = {(nne_conv_act_kind)nne_test_rng_int(r, 0, 2), s2,
                             nne_test_rng_int(r, 0, 1) ? g2->oc : 1};
    const nne_conv_f32_layer l1 = {g1, w1, nne_test_rng_int(r, 0, 3) ? b1 : NULL, &a1};
    const nne_conv_f32_layer l2 = {g2, w2, nne_test_rng_int(r, 0, 3) ? b2 : NULL, &a2};
    size_t ss = nne_conv2d_f32_scratch_size(g1, 2);
    if (nne_conv2d_f32_scratch_size(g2, 2) > ss) ss = nne_conv2d_f32_scratch_size(g2, 2);
    void *su = nne_aligned_alloc(ss);
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
        if (!nne_ops_isa_supported(isas[v])) continue;
        CHECK_OK(nne_ops_set_isa(isas[v]));
        for (int t = 1; t <= 2; t++) {
            nne_threadpool *pool = t == 2 ? pool2 : NULL;
            nne_conv2d_f32(pool, g1, x, l1.w, l1.bias, l1.act, m, su);
            nne_conv2d_f32(pool, g2, m, l2.w, l2.bias, l2.act, yu, su);
            void *sf = nne_aligned_alloc(nne_conv2d_pair_f32_scratch_size(g1, g2, t));
            for (size_t i = 0; i < ny; i++) yf[i] = NAN;
            nne_conv2d_pair_f32(pool, &l1, &l2, x, yf, sf);
            nne_aligned_free(sf);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < ny; i++)
                if (memcmp(&yf[i], &yu[i], 4) != 0 && !bad++) first = i;
            CHECK_MSG(bad == 0, "f32 %s %d thr %s act %d/%d: %zu differ, first [%zu] %.9g vs %.9g",
                      isas[v], t, desc, (int)a1.kind, (int)a2.kind, bad, first, (double)yf[first],
                      (double)yu[first]);
        }
    }
    nne_aligned_free(su);
    free(x), free(m), free(yu), free(yf), free(w1), free(w2), free(b1), free(b2), free(s1);
    free(s2);
}

/* ---- int8 --------------------------------------------------------------------------------- */

/* A random output stage for oc channels (rq: oc entries). */
static void rand_out(nne_test_rng *r, int32_t oc, nne_requant *rq, nne_qoutput *out) {
    out->mode = nne_test_rng_int(r, 0, 1) ? NNE_RQ_POW2 : NNE_RQ_Q31;
    out->count = nne_test_rng_int(r, 0, 1) ? oc : 1;
    out->rq = rq;
    for (int32_t o = 0; o < out->count; o++) {
        if (out->mode == NNE_RQ_POW2) {
            rq[o].multiplier = 0;
            rq[o].shift = nne_test_rng_int(r, 4, 14);
        } else {
            const double mm =
                ldexp(0.5 + 0.5 * nne_test_rng_uniform(r), -nne_test_rng_int(r, 4, 12));
            CHECK_OK(nne_quant_multiplier_from_scale(mm, &rq[o]));
        }
    }
    out->zero_point = nne_test_rng_int(r, -128, 127);
    out->act_min = -128, out->act_max = 127;
    if (nne_test_rng_int(r, 0, 2) == 0) out->act_min = out->zero_point; /* fused ReLU */
}

static void rand_s8(nne_test_rng *r, int8_t *v, size_t n, int lim) {
    for (size_t i = 0; i < n; i++)
        v[i] = (int8_t)(nne_test_rng_int(r, 0, 7) ? nne_test_rng_int(r, -lim, lim)
                                                  : (nne_test_rng_int(r, 0, 1) ? lim : -lim));
}

/* l1 with a fused PReLU (nne_qoutput.rq_neg; mid none, as a backend runs it): drawn from
 * its own generator, so that the other draws stay those of the unfused pairs; for a third of
 * the int8 pairs, or every one with prelu_always. */
static nne_test_rng prelu_rng;
static int prelu_always;

static void check_s8_pair(nne_test_rng *r, const nne_conv2d_geom *g1, const nne_conv2d_geom *g2,
                          nne_threadpool *pool2) {
    char desc[256];
    desc_of(g1, g2, desc, sizeof desc);
    /* the geometry rules (the int8 policy keeps deep l1 inputs unfused, but they must run) */
    CHECK_MSG(nne_conv2d_pair_s8_scratch_size(g1, g2, 1) > 0, "int8 %s: refused", desc);
    const size_t nx = numel(g1->n, g1->ih, g1->iw, g1->ic);
    const size_t nm = numel(g1->n, g1->oh, g1->ow, g1->oc);
    const size_t ny = numel(g2->n, g2->oh, g2->ow, g2->oc);
    const size_t nw1 = (size_t)g1->oc * g1->kh * g1->kw * g1->ic;
    const size_t nw2 = (size_t)g2->oc * g2->kh * g2->kw * g2->ic;
    int8_t *x = malloc(nx), *m = malloc(nm), *yu = malloc(ny), *yf = malloc(ny);
    int8_t *w1 = malloc(nw1), *w2 = malloc(nw2);
    int32_t *b1 = malloc((size_t)g1->oc * 4), *b2 = malloc((size_t)g2->oc * 4);
    nne_requant *rq1 = malloc((size_t)g1->oc * sizeof *rq1);
    nne_requant *rq2 = malloc((size_t)g2->oc * sizeof *rq2);
    nne_requant *rq1_neg = malloc((size_t)g1->oc * sizeof *rq1_neg);
    rand_s8(r, x, nx, 127);
    /* weights in +-64 take the w7 panel (u8 band, for l2 a u8 ring) on AVX2 */
    rand_s8(r, w1, nw1, nne_test_rng_int(r, 0, 2) ? 127 : 64);
    rand_s8(r, w2, nw2, nne_test_rng_int(r, 0, 1) ? 127 : 64);
    for (int32_t o = 0; o < g1->oc; o++) b1[o] = nne_test_rng_int(r, -20000, 20000);
    for (int32_t o = 0; o < g2->oc; o++) b2[o] = nne_test_rng_int(r, -20000, 20000);
    nne_qoutput o1 = {0}, o2 = {0};
    rand_out(r, g1->oc, rq1, &o1);
    rand_out(r, g2->oc, rq2, &o2);
    /* the activation between: none, a clamp, or a PReLU (Q31 or pow2 slopes) */
    nne_conv_s8_mid mid;
    memset(&mid, 0, sizeof mid);
    mid.kind = (nne_conv_s8_mid_kind)nne_test_rng_int(r, 0, 2);
    int32_t x2_zp = o1.zero_point;
    nne_qoutput pos, neg;
    nne_requant pos_rq, neg_rq[40];
    int32_t neg_slope[40], pos_mul = 0;
    float slope[40];
    if (mid.kind == NNE_CONV_S8_MID_CLAMP) {
        mid.lo = o1.zero_point + nne_test_rng_int(r, 0, 10);
        mid.hi = nne_test_rng_int(r, mid.lo < 100 ? 100 : mid.lo, 127);
    } else if (mid.kind == NNE_CONV_S8_MID_PRELU) {
        const int32_t ns = nne_test_rng_int(r, 0, 1) ? g1->oc : 1;
        const bool pow2 = nne_test_rng_int(r, 0, 1);
        for (int32_t c = 0; c < ns; c++)
            slope[c] = pow2 ? (float)nne_test_rng_int(r, -8, 8) * 0.0625f : frand(r) * 0.5f;
        x2_zp = nne_test_rng_int(r, -128, 127);
        const float ys = pow2 ? 0.03125f : 0.04f + 0.02f * (float)nne_test_rng_uniform(r);
        CHECK_OK(nne_qprelu_init(&pos, &pos_rq, &pos_mul, &neg, neg_rq, neg_slope,
                                 pow2 ? 0.0625f : 0.05f, slope, ns, ys, x2_zp, pow2));
        mid.x_zero_point = o1.zero_point;
        mid.pos = &pos, mid.neg = &neg, mid.neg_slope = neg_slope, mid.pos_mul = pos_mul;
    }
    nne_test_rng *fr = &prelu_rng;
    const bool fused = prelu_always || nne_test_rng_int(fr, 0, 2) == 0;
    if (fused) { /* Q31 (M from fr), no clamp, slopes shared or per channel, mid none */
        o1.mode = NNE_RQ_Q31;
        for (int32_t o = 0; o < o1.count; o++)
            CHECK_OK(nne_quant_multiplier_from_scale(
                ldexp(0.5 + 0.5 * nne_test_rng_uniform(fr), -nne_test_rng_int(fr, 4, 12)),
                &rq1[o]));
        o1.act_min = -128;
        float a[40], wsc[40];
        const int32_t ns = nne_test_rng_int(fr, 0, 1) ? g1->oc : 1;
        for (int32_t c = 0; c < ns; c++)
            a[c] =
                nne_test_rng_int(fr, 0, 4) ? (float)(nne_test_rng_uniform(fr) * 2.0 - 0.5) : 0.0f;
        /* x and y scale 1, w_scale = M: the scales o1's multipliers stand for */
        for (int32_t o = 0; o < o1.count; o++)
            wsc[o] = (float)ldexp((double)rq1[o].multiplier, -31 - rq1[o].shift);
        CHECK_OK(nne_qoutput_fuse_prelu(&o1, rq1_neg, o1.count > ns ? o1.count : ns, 1.0f, wsc,
                                        1.0f, a, ns));
        memset(&mid, 0, sizeof mid);
        x2_zp = o1.zero_point;
    }
    const int32_t x_zp = nne_test_rng_int(r, -128, 127);
    const nne_conv_s8_layer l1 = {g1, x_zp, w1, nne_test_rng_int(r, 0, 3) ? b1 : NULL, &o1};
    const nne_conv_s8_layer l2 = {g2, x2_zp, w2, nne_test_rng_int(r, 0, 3) ? b2 : NULL, &o2};
    int8_t *yr = NULL; /* fused: l1 then l2 by nne_conv2d_s8__ref */
    if (fused) {
        int8_t *mr = malloc(nm);
        yr = malloc(ny);
        nne_conv2d_s8__ref(g1, x, x_zp, w1, l1.bias, &o1, mr);
        nne_conv2d_s8__ref(g2, mr, x2_zp, w2, l2.bias, &o2, yr);
        free(mr);
    }
    size_t ss = nne_conv2d_s8_scratch_size(g1, 2);
    if (nne_conv2d_s8_scratch_size(g2, 2) > ss) ss = nne_conv2d_s8_scratch_size(g2, 2);
    void *su = nne_aligned_alloc(ss);
    nne_conv_s8_prep *p1_ref = NULL, *p1 = NULL, *p2 = NULL;
    CHECK_OK(nne_ops_set_isa("ref"));
    CHECK_OK(nne_conv_s8_prep_create(g1, false, x_zp, w1, l1.bias, &o1, &p1_ref));
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
        if (!nne_ops_isa_supported(isas[v])) continue;
        CHECK_OK(nne_ops_set_isa(isas[v]));
        CHECK_OK(nne_conv_s8_prep_create(g1, false, x_zp, w1, l1.bias, &o1, &p1));
        CHECK_OK(nne_conv_s8_prep_create(g2, false, x2_zp, w2, l2.bias, &o2, &p2));
        for (int t = 1; t <= 2; t++) {
            nne_threadpool *pool = t == 2 ? pool2 : NULL;
            nne_conv2d_s8(pool, g1, x, x_zp, w1, l1.bias, &o1, m, su);
            if (mid.kind == NNE_CONV_S8_MID_CLAMP) nne_clamp_s8__ref(nm, m, mid.lo, mid.hi, m);
            if (mid.kind == NNE_CONV_S8_MID_PRELU)
                nne_prelu_s8__ref(nm / (size_t)g1->oc, g1->oc, m, o1.zero_point, &pos, pos_mul,
                                  &neg, neg_slope, m);
            nne_conv2d_s8(pool, g2, m, x2_zp, w2, l2.bias, &o2, yu, su);
            if (yr) /* and the two reference convolutions */
                CHECK_MSG(memcmp(yr, yu, ny) == 0,
                          "int8 %s %d thr %s l1 prelu: not the reference's", isas[v], t, desc);
            void *sf = nne_aligned_alloc(nne_conv2d_pair_s8_scratch_size(g1, g2, t));
            memset(yf, 0x5a, ny);
            nne_conv2d_pair_s8(pool, &l1, &mid, &l2, x, yf, sf);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < ny; i++)
                if (yf[i] != yu[i] && !bad++) first = i;
            CHECK_MSG(bad == 0, "int8 %s %d thr %s mid %d%s: %zu differ, first [%zu] %d vs %d",
                      isas[v], t, desc, (int)mid.kind, fused ? " l1 prelu" : "", bad, first,
                      yf[first], yu[first]);
            /* on prepared layers: this ISA's, then l1 prepared under ref (per-call fallback) */
            for (int k = 0; k < 2; k++) {
                memset(yf, 0xa5, ny);
                nne_conv2d_pair_s8_prep(pool, k ? p1_ref : p1, &mid, p2, x, yf, sf);
                bad = 0;
                for (size_t i = 0; i < ny; i++) bad += yf[i] != yu[i];
                CHECK_MSG(bad == 0, "int8 prepared%s %s %d thr %s mid %d%s: %zu differ",
                          k ? " (l1 under ref)" : "", isas[v], t, desc, (int)mid.kind,
                          fused ? " l1 prelu" : "", bad);
            }
            nne_aligned_free(sf);
        }
        nne_conv_s8_prep_free(p1), nne_conv_s8_prep_free(p2);
    }
    nne_conv_s8_prep_free(p1_ref);
    nne_aligned_free(su);
    free(x), free(m), free(yu), free(yf), free(w1), free(w2), free(b1), free(b2), free(rq1);
    free(rq2), free(rq1_neg), free(yr);
}

/* ---- tests -------------------------------------------------------------------------------- */

static nne_threadpool *pool2;

static void test_pair_random(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 0xF05Eu);
    for (int i = 0; i < 120; i++) {
        nne_conv2d_geom g1, g2;
        rand_pair(&r, &g1, &g2);
        if (i % 2)
            check_s8_pair(&r, &g1, &g2, pool2);
        else
            check_f32_pair(&r, &g1, &g2, pool2);
    }
    CHECK_OK(nne_ops_set_isa(NULL));
}

/* cae-seed's first two encoder layers (3 -> 32, 3x3 stride 1 valid; 32 -> 32, 3x3 stride 2
 * valid) on a 61 x 90 image: 2 threads split the 29 output rows of l2 into 4 tasks. */
static void test_pair_cae_shape(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 0xCAE1u);
    const nne_conv2d_geom g1 = geom(1, 61, 90, 3, 32, 3, 1, 1, 0, 0, 0, 0);
    const nne_conv2d_geom g2 = geom(1, g1.oh, g1.ow, 32, 32, 3, 2, 1, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        check_f32_pair(&r, &g1, &g2, pool2);
        check_s8_pair(&r, &g1, &g2, pool2);
    }
    /* conv2d_1 with its PReLU fused into the output stage (mid none), also with weights in
     * +-64 (the w7 panel; drawn by check_s8_pair) */
    prelu_always = 1;
    for (int i = 0; i < 3; i++) check_s8_pair(&r, &g1, &g2, pool2);
    prelu_always = 0;
    CHECK_OK(nne_ops_set_isa(NULL));
}

/* The planner's rules. */
static void test_pair_ok(void) {
    const nne_conv2d_geom g1 = geom(1, 512, 768, 3, 32, 3, 1, 1, 0, 0, 0, 0);
    const nne_conv2d_geom g2 = geom(1, g1.oh, g1.ow, 32, 32, 3, 2, 1, 0, 0, 0, 0);
    CHECK(nne_conv2d_pair_ok(&g1, &g2, false, 1));
    CHECK(nne_conv2d_pair_ok(&g1, &g2, true, 2));
    CHECK(nne_conv2d_pair_f32_scratch_size(&g1, &g2, 2) >
          nne_conv2d_pair_f32_scratch_size(&g1, &g2, 1));
    /* the ring of 3 rows x 2398 x 32 f32 (921 KB) is over the budget; int16 (460 KB) too */
    const nne_conv2d_geom w1 = geom(1, 64, 2400, 3, 32, 3, 1, 1, 0, 0, 0, 0);
    const nne_conv2d_geom w2 = geom(1, w1.oh, w1.ow, 32, 32, 3, 2, 1, 0, 0, 0, 0);
    CHECK(!nne_conv2d_pair_ok(&w1, &w2, false, 1));
    CHECK(!nne_conv2d_pair_ok(&w1, &w2, true, 1));
    CHECK_MSG(nne_conv2d_pair_f32_scratch_size(&w1, &w2, 1) == 0, "no scratch for a refused pair");
    /* the measured policy: int8 fuses only shallow l1 inputs (conv2d_3 + conv2d_4: 32) */
    const nne_conv2d_geom g3 = geom(1, 254, 382, 32, 64, 3, 1, 1, 0, 0, 0, 0);
    const nne_conv2d_geom g4 = geom(1, g3.oh, g3.ow, 64, 64, 3, 2, 1, 0, 0, 0, 0);
    CHECK(nne_conv2d_pair_ok(&g3, &g4, false, 2));
    CHECK(!nne_conv2d_pair_ok(&g3, &g4, true, 2));
    CHECK(nne_conv2d_pair_s8_scratch_size(&g3, &g4, 2) > 0);
    /* l1's output is not l2's input */
    nne_conv2d_geom b2 = g2;
    b2.ic = 16;
    CHECK(!nne_conv2d_pair_ok(&g1, &b2, false, 1));
    b2 = g2, b2.ih++;
    CHECK(!nne_conv2d_pair_ok(&g1, &b2, false, 1));
    /* grouped l2 */
    b2 = g2, b2.groups = 2;
    CHECK(!nne_conv2d_pair_ok(&g1, &b2, false, 1));
    /* the switches */
    nne_conv_pair_disable = 1;
    CHECK(!nne_conv2d_pair_ok(&g1, &g2, false, 1));
    nne_conv_pair_disable = 0;
    nne_conv_band_disable = 1; /* the pair runs on the band kernels only */
    CHECK(!nne_conv2d_pair_ok(&g1, &g2, false, 1));
    nne_conv_band_disable = 0;
    setenv("NNEDGE_FUSE", "0", 1);
    CHECK(!nne_conv2d_pair_ok(&g1, &g2, true, 1));
    setenv("NNEDGE_FUSE", "1", 1);
    CHECK(nne_conv2d_pair_ok(&g1, &g2, true, 1));
    unsetenv("NNEDGE_FUSE");
}

int main(void) {
    CHECK_OK(nne_threadpool_create(2, &pool2));
    nne_test_rng_seed(&prelu_rng, 0xF0A1u);
    NNE_RUN(test_pair_ok);
    NNE_RUN(test_pair_cae_shape);
    NNE_RUN(test_pair_random);
    nne_threadpool_free(pool2);
    return nne_test_summary();
}
