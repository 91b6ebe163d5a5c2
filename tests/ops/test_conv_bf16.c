/* ops/conv_bf16: the bf16 kernels (include/nnedge/bf16.h, docs/bf16.md).
 *
 *  - array conversions (AVX2 and portable) equal the scalar RNE conversion on every ISA,
 *    for lengths 0..80 (vector bodies and tails) and special values;
 *  - the bf16 reference equals the f32 reference run on the widened bf16 values, bit for bit
 *    (products of bf16 are exact in f32: an independent check of the reference's semantics),
 *    and stays within NNE_BF16_VS_F32_TOL of the f32 reference on the unrounded values;
 *  - the fast kernels on random geometries (channels 1..70, strides, dilation, asymmetric and
 *    output padding, groups, batch 2, bias or not, activation none / ReLU / PReLU) under every
 *    NNEDGE_ISA this CPU runs plus the pair driver on the portable vdpbf16ps emulation: serial
 *    and 2 threads bitwise equal; within NNE_CONV_BF16_TOL of the reference plus activation;
 *    bit-identical to it where the f32 kernel keeps the reference's order (conv2d on the band
 *    kernels: the portable ones under "ref", the panel kernel under avx2/avx512);
 *  - the AVX512_BF16 micro-kernel against the emulation (skipped, with a note, on CPUs
 *    without AVX512_BF16: it has not run on the development machine). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_geom.h"
#include "nnedge/bf16.h"
#include "nnedge/gemm.h"
#include "ops/conv_band.h"
#include "ops/conv_bf16.h"
#include "testutil.h"

static const char *const isas[] = {"ref", "avx2", "avx512"};
static nne_threadpool *pool2;

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float frand(nne_test_rng *r) { return (float)(nne_test_rng_uniform(r) * 2.0 - 1.0); }

/* A random value already on the bf16 grid (what a bf16 tensor holds). */
static nne_bf16 brand(nne_test_rng *r, float scale) { return nne_f32_to_bf16(frand(r) * scale); }

static void test_array_cvt(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 11);
    enum { N = 80 };
    float x[N], back[N], want_f[N];
    nne_bf16 y[N], want[N], h[N];
    static const uint32_t special[] = {0x7FC00000, 0xFFC00001, 0x7F800001, 0x7FFFFFFF, 0x7F800000,
                                       0xFF800000, 0x3F808000, 0x3F818000, 0x3F808001, 0x00008000,
                                       0x00018000, 0x807FFFFF, 0x7F7F8000, 0x80000000, 0x00000001};
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
        if (!nne_ops_isa_supported(isas[v])) continue;
        CHECK_OK(nne_ops_set_isa(isas[v]));
        for (int n = 0; n <= N; n++) {
            for (int i = 0; i < n; i++) {
                uint32_t u = (uint32_t)nne_test_rng_u64(&r);
                if (i % 3 == 0) u = special[(size_t)(i / 3) % (sizeof special / sizeof *special)];
                x[i] = bits_f32(u);
                want[i] = nne_f32_to_bf16(x[i]);
                h[i] = (nne_bf16)nne_test_rng_u64(&r);
                want_f[i] = nne_bf16_to_f32(h[i]);
            }
            memset(y, 0xAB, sizeof y);
            nne_f32_to_bf16_array(x, y, (size_t)n);
            CHECK_MSG(memcmp(y, want, (size_t)n * sizeof *y) == 0, "%s: f32 -> bf16, n %d", isas[v],
                      n);
            CHECK(n == N || y[n] == 0xABAB); /* nothing written past n */
            nne_bf16_to_f32_array(h, back, (size_t)n);
            CHECK_MSG(memcmp(back, want_f, (size_t)n * sizeof *back) == 0, "%s: bf16 -> f32, n %d",
                      isas[v], n);
        }
    }
    CHECK_OK(nne_ops_set_isa(NULL));
}

/* The bf16 reference is the f32 reference on the widened values, bit for bit. */
static void test_ref_is_f32_on_bf16(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 12);
    for (int it = 0; it < 40; it++) {
        const bool transposed = it & 1;
        nne_conv2d_geom g;
        nne_test_conv_geom_rand(&r, transposed, &g);
        const size_t nx = nne_test_conv_x_len(&g), nw = nne_test_conv_w_len(&g),
                     ny = nne_test_conv_y_len(&g);
        float *xf = malloc(nx * 4), *wf = malloc(nw * 4), *xr = malloc(nx * 4),
              *wr = malloc(nw * 4), *b = malloc((size_t)g.oc * 4), *axw = malloc(ny * 4);
        float *ax = malloc(nx * 4), *aw = malloc(nw * 4), *y32 = malloc(ny * 4),
              *yb = malloc(ny * 4), *yw = malloc(ny * 4);
        nne_bf16 *x = malloc(nx * 2), *w = malloc(nw * 2);
        for (size_t i = 0; i < nx; i++) {
            xf[i] = frand(&r) * 4.0f; /* f32 values, off the bf16 grid */
            ax[i] = fabsf(xf[i]);
        }
        for (size_t i = 0; i < nw; i++) aw[i] = fabsf(wf[i] = frand(&r) * 0.5f);
        for (int32_t o = 0; o < g.oc; o++) b[o] = frand(&r);
        nne_f32_to_bf16_array(xf, x, nx);
        nne_f32_to_bf16_array(wf, w, nw);
        nne_bf16_to_f32_array(x, xr, nx);
        nne_bf16_to_f32_array(w, wr, nw);
        void (*ref32)(const nne_conv2d_geom *, const float *, const float *, const float *,
                      float *) = transposed ? nne_conv_transpose2d_f32__ref : nne_conv2d_f32__ref;
        (transposed ? nne_conv_transpose2d_bf16__ref : nne_conv2d_bf16__ref)(&g, x, w, b, yb);
        ref32(&g, xr, wr, b, yw);
        char desc[200];
        nne_test_conv_geom_str(&g, desc, sizeof desc);
        CHECK_MSG(memcmp(yb, yw, ny * 4) == 0, "%s%s: bf16 ref != f32 ref on bf16 values",
                  transposed ? "T " : "", desc);
        /* the cost of bf16 against f32 (bf16.h): S = sum |x w| from the f32 values */
        ref32(&g, xf, wf, b, y32);
        ref32(&g, ax, aw, NULL, axw);
        const double k = (double)g.kh * g.kw * (g.ic / g.groups);
        size_t bad = 0;
        for (size_t i = 0; i < ny; i++) {
            const double tol = NNE_BF16_VS_F32_TOL * axw[i] +
                               2 * NNE_CONV_F32_TOL * (k + 2) * (axw[i] * 1.01 + 1.0);
            bad += !(fabs((double)yb[i] - y32[i]) <= tol);
        }
        CHECK_MSG(bad == 0, "%s%s: %zu outputs past NNE_BF16_VS_F32_TOL", transposed ? "T " : "",
                  desc, bad);
        free(xf), free(wf), free(xr), free(wr), free(b), free(axw), free(ax), free(aw);
        free(y32), free(yb), free(yw), free(x), free(w);
    }
    /* dense: a 1x1 conv2d, and the f32 dense reference on the widened values */
    const int32_t n = 3, in = 37, out = 19;
    nne_bf16 x[3 * 37], w[19 * 37];
    float xr[3 * 37], wr[19 * 37], b[19], yb[3 * 19], yw[3 * 19], yf[3 * 19];
    for (int i = 0; i < n * in; i++) xr[i] = nne_bf16_to_f32(x[i] = brand(&r, 2.0f));
    for (int i = 0; i < out * in; i++) wr[i] = nne_bf16_to_f32(w[i] = brand(&r, 0.3f));
    for (int i = 0; i < out; i++) b[i] = frand(&r);
    nne_dense_bf16__ref(n, in, out, x, w, b, yb);
    nne_dense_f32__ref(n, in, out, xr, wr, b, yw);
    CHECK(memcmp(yb, yw, sizeof yb) == 0);
    void *scratch = nne_aligned_alloc(nne_dense_bf16_scratch_size(n, in, out, 2));
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
        if (!nne_ops_isa_supported(isas[v])) continue;
        CHECK_OK(nne_ops_set_isa(isas[v]));
        for (int i = 0; i < n * out; i++) yf[i] = NAN;
        nne_dense_bf16(pool2, n, in, out, x, w, b, yf, scratch);
        for (int i = 0; i < n * out; i++) {
            double s = fabs(b[i % out]);
            for (int k = 0; k < in; k++)
                s += fabs((double)xr[i / out * in + k] * wr[i % out * in + k]);
            CHECK_MSG(fabs((double)yf[i] - yb[i]) <= NNE_CONV_BF16_TOL * (in + 2) * s,
                      "%s dense [%d]: %.9g vs %.9g", isas[v], i, (double)yf[i], (double)yb[i]);
        }
    }
    CHECK_OK(nne_ops_set_isa(NULL));
    nne_aligned_free(scratch);
}

/* Whether the widen path runs g on a kernel that sums in the reference's order: conv2d on
 * the band kernels, portable ones (ISA ref) or the AVX2 panel kernel. */
static bool keeps_order(const nne_conv2d_geom *g, bool transposed, const char *isa) {
    if (transposed) return false;
    conv_plan p;
    conv_plan_make(&p, g, false, 1024, 24);
    const conv_band_kind k = conv_band_select(&p, false);
    return k == CONV_BAND_PANEL || (k != CONV_BAND_NONE && !strcmp(isa, "ref"));
}

static int n_exact_checked;

static void check_geom(nne_test_rng *r, const nne_conv2d_geom *g, bool transposed) {
    char desc[200];
    nne_test_conv_geom_str(g, desc, sizeof desc);
    const size_t nx = nne_test_conv_x_len(g), nw = nne_test_conv_w_len(g),
                 ny = nne_test_conv_y_len(g);
    nne_bf16 *x = malloc(nx * 2), *w = malloc(nw * 2);
    float *ax = malloc(nx * 4), *aw = malloc(nw * 4), *b = malloc((size_t)g->oc * 4),
          *ab = malloc((size_t)g->oc * 4), *slope = malloc((size_t)g->oc * 4);
    float *yr = malloc(ny * 4), *ya = malloc(ny * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4);
    /* Weights up to 64 (the f32 kernels' tolerance is relative to sum |x w|): products of
     * bf16 have up to 16 significant bits, so the f32 sums do round. */
    for (size_t i = 0; i < nx; i++) ax[i] = fabsf(nne_bf16_to_f32(x[i] = brand(r, 3.0f)));
    for (size_t i = 0; i < nw; i++) aw[i] = fabsf(nne_bf16_to_f32(w[i] = brand(r, 64.0f)));
    for (int32_t o = 0; o < g->oc; o++) {
        ab[o] = fabsf(b[o] = frand(r) * 8.0f);
        slope[o] = frand(r) * 0.5f;
    }
    const bool has_bias = nne_test_rng_int(r, 0, 3) != 0;
    const float *bias = has_bias ? b : NULL;
    nne_conv_act act = {(nne_conv_act_kind)nne_test_rng_int(r, 0, 2), slope,
                        nne_test_rng_int(r, 0, 1) ? g->oc : 1};
    /* |x| and |w| through the f32 reference: the tolerance's sum_k |x_k w_k| + |bias| */
    float *axf = malloc(nx * 4);
    for (size_t i = 0; i < nx; i++) axf[i] = ax[i];
    if (transposed) {
        nne_conv_transpose2d_bf16__ref(g, x, w, bias, yr);
        nne_conv_transpose2d_f32__ref(g, axf, aw, has_bias ? ab : NULL, ya);
    } else {
        nne_conv2d_bf16__ref(g, x, w, bias, yr);
        nne_conv2d_f32__ref(g, axf, aw, has_bias ? ab : NULL, ya);
    }
    free(axf);
    if (act.kind == NNE_CONV_ACT_RELU) nne_relu_f32__ref(ny, yr, yr);
    if (act.kind == NNE_CONV_ACT_PRELU)
        nne_prelu_f32__ref(ny / (size_t)g->oc, g->oc, yr, slope, act.n_slope, yr);
    const double k = (double)g->kh * g->kw * (g->ic / g->groups);
    const size_t ss = transposed ? nne_conv_transpose2d_bf16_scratch_size(g, 2)
                                 : nne_conv2d_bf16_scratch_size(g, 2);
    void *scratch = nne_aligned_alloc(ss);
    /* every ISA on the dispatched path, then the pair driver on the emulation */
    for (size_t v = 0; v <= sizeof isas / sizeof isas[0]; v++) {
        const bool emul = v == sizeof isas / sizeof isas[0];
        const char *isa = emul ? "avx2" : isas[v];
        if (!nne_ops_isa_supported(isa)) continue;
        CHECK_OK(nne_ops_set_isa(isa));
        nne_conv_bf16_force_pair_emul(emul);
        const char *path = nne_conv_bf16_isa();
        for (size_t i = 0; i < ny; i++) y1[i] = y2[i] = NAN;
        if (transposed) {
            nne_conv_transpose2d_bf16(NULL, g, x, w, bias, &act, y1, scratch);
            nne_conv_transpose2d_bf16(pool2, g, x, w, bias, &act, y2, scratch);
        } else {
            nne_conv2d_bf16(NULL, g, x, w, bias, &act, y1, scratch);
            nne_conv2d_bf16(pool2, g, x, w, bias, &act, y2, scratch);
        }
        CHECK_MSG(memcmp(y1, y2, ny * 4) == 0, "%s %s%s: 1 vs 2 threads differ", path,
                  transposed ? "T " : "", desc);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < ny; i++) {
            const double tol = NNE_CONV_BF16_TOL * (k + 2) * ya[i];
            if (!(fabs((double)y1[i] - yr[i]) <= tol)) {
                if (!bad) first = i;
                bad++;
            }
        }
        CHECK_MSG(bad == 0, "%s %s%s act %d: %zu bad, first [%zu] %.9g vs ref %.9g", path,
                  transposed ? "T " : "", desc, (int)act.kind, bad, first, (double)y1[first],
                  (double)yr[first]);
        if (!emul && !strcmp(path, isa) && keeps_order(g, transposed, isa)) {
            CHECK_MSG(memcmp(y1, yr, ny * 4) == 0, "%s %s act %d: not the reference's bits", path,
                      desc, (int)act.kind);
            n_exact_checked++;
        }
    }
    nne_conv_bf16_force_pair_emul(false);
    CHECK_OK(nne_ops_set_isa(NULL));
    nne_aligned_free(scratch);
    free(x), free(w), free(ax), free(aw), free(b), free(ab), free(slope);
    free(yr), free(ya), free(y1), free(y2);
}

static void test_conv2d_random(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 13);
    n_exact_checked = 0;
    for (int i = 0; i < 60; i++) {
        nne_conv2d_geom g;
        nne_test_conv_geom_rand(&r, false, &g);
        check_geom(&r, &g, false);
    }
    printf("  %d (geometry, ISA) cases checked bit for bit\n", n_exact_checked);
    CHECK(n_exact_checked >= 30); /* the order-keeping kernels are really exercised */
}

static void test_conv_transpose2d_random(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 14);
    for (int i = 0; i < 60; i++) {
        nne_conv2d_geom g;
        nne_test_conv_geom_rand(&r, true, &g);
        check_geom(&r, &g, true);
    }
}

/* cae-seed's layer shapes (3x3 valid, strides 1 and 2, output padding 1) at a small size,
 * and a deep one past the band kernels' depth (the implicit GEMM). */
static void test_cae_shapes(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 15);
    const int32_t chans[][2] = {{3, 32}, {32, 32}, {32, 64}, {64, 64}, {64, 32}, {130, 20}};
    for (int t = 0; t < 2; t++)
        for (int l = 0; l < 6; l++) {
            nne_conv2d_geom g = {
                .n = 1, .ih = 21, .iw = 27, .kh = 3, .kw = 3, .dil_h = 1, .dil_w = 1, .groups = 1};
            g.ic = chans[l][t ? 1 : 0], g.oc = chans[l][t ? 0 : 1];
            g.stride_h = g.stride_w = l == 0 || l == 2 || l == 5 ? 1 : 2;
            if (t) g.out_pad_h = g.out_pad_w = g.stride_h - 1;
            nne_test_conv_geom_out(&g, t);
            check_geom(&r, &g, t);
        }
}

static void test_isa_names(void) {
    const bool hw =
        (nne_cpu_features() & (NNE_CPU_AVX512F | NNE_CPU_AVX512BW | NNE_CPU_AVX512BF16)) ==
        (NNE_CPU_AVX512F | NNE_CPU_AVX512BW | NNE_CPU_AVX512BF16);
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
        if (!nne_ops_isa_supported(isas[v])) continue;
        CHECK_OK(nne_ops_set_isa(isas[v]));
        const char *want = hw && !strcmp(isas[v], "avx512") ? "avx512bf16" : isas[v];
        CHECK_MSG(!strcmp(nne_conv_bf16_isa(), want), "%s: %s", isas[v], nne_conv_bf16_isa());
    }
    nne_conv_bf16_force_pair_emul(true);
    CHECK(!strcmp(nne_conv_bf16_isa(), "emul"));
    nne_conv_bf16_force_pair_emul(false);
    CHECK_OK(nne_ops_set_isa(NULL));
}

/* The vdpbf16ps micro-kernel against its emulation, bit for bit, on normal values. */
static void test_avx512bf16_kernel(void) {
    const uint32_t need = NNE_CPU_AVX512F | NNE_CPU_AVX512BW | NNE_CPU_AVX512BF16;
    if ((nne_cpu_features() & need) != need) {
        printf("  SKIPPED: this CPU has no AVX512_BF16; nne_conv_bf16_pair__avx512bf16 is "
               "compiled but has not run here\n");
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    nne_test_rng r;
    nne_test_rng_seed(&r, 16);
    enum { M = 21, PAIRS = 37, LDA = 2 * PAIRS + 4 };
    static nne_bf16 a[M * LDA], b[PAIRS * 32];
    static float c1[M * 16], c2[M * 16];
    for (int i = 0; i < M * LDA; i++) a[i] = brand(&r, 2.0f);
    for (int i = 0; i < PAIRS * 32; i++) b[i] = brand(&r, 2.0f);
    nne_conv_bf16_pair__emul(M, PAIRS, a, LDA, b, c1);
    nne_conv_bf16_pair__avx512bf16(M, PAIRS, a, LDA, b, c2);
    CHECK(memcmp(c1, c2, sizeof c1) == 0);
#endif
}

int main(void) {
    CHECK_OK(nne_threadpool_create(2, &pool2));
    NNE_RUN(test_array_cvt);
    NNE_RUN(test_ref_is_f32_on_bf16);
    NNE_RUN(test_conv2d_random);
    NNE_RUN(test_conv_transpose2d_random);
    NNE_RUN(test_cae_shapes);
    NNE_RUN(test_isa_names);
    NNE_RUN(test_avx512bf16_kernel);
    nne_threadpool_free(pool2);
    return nne_test_summary();
}
