/* Calibration observers on synthetic distributions whose best ranges are known: exact
 * extremes, quantiles of a uniform, the MSE-optimal clipping of a Laplace (checked against a
 * brute-force search on the raw samples), KL ignoring outliers, Vitis-AI-style pow2
 * positions, and the exactness of the histogram's range doubling. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/passes.h"
#include "nnedge/qops.h"
#include "testutil.h"

#define N 200000

static float g_x[N];
static nne_histogram g_h, g_h2;

static void fill_uniform(float lo, float hi, unsigned long long seed) {
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    for (int i = 0; i < N; i++) g_x[i] = lo + (hi - lo) * (float)nne_test_rng_uniform(&r);
}

static void fill_laplace(double b, unsigned long long seed) {
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    for (int i = 0; i < N; i++) {
        double u = nne_test_rng_uniform(&r) - 0.5;
        if (u == -0.5) u = 0.0;
        g_x[i] = (float)(-b * (u < 0 ? -1 : 1) * log(1.0 - 2.0 * fabs(u)));
    }
}

static void fill_gauss(unsigned long long seed) {
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    for (int i = 0; i < N; i++) {
        double u1 = nne_test_rng_uniform(&r), u2 = nne_test_rng_uniform(&r);
        g_x[i] = (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(2 * M_PI * u2));
    }
}

static void hist_of_data(void) {
    nne_histogram_init(&g_h);
    nne_histogram_add(&g_h, g_x, N);
}

static void range_of(nne_observer_kind k, bool sym, double pct, float *lo, float *hi) {
    nne_observer_opts o = {.kind = k, .percentile = pct, .symmetric = sym};
    CHECK_OK(nne_observer_range(&g_h, &o, lo, hi));
}

/* Exact MSE of the raw samples under (scale, zp). */
static double raw_mse(float scale, int32_t zp, bool pow2) {
    double e = 0.0;
    for (int i = 0; i < N; i++) {
        const int32_t q = nne_quantize_value(g_x[i], scale, zp, -128, 127, pow2);
        const double d = g_x[i] - (double)(q - zp) * scale;
        e += d * d;
    }
    return e / N;
}

static void test_names(void) {
    nne_observer_kind k;
    CHECK_OK(nne_observer_from_name("kl", &k));
    CHECK(k == NNE_OBSERVER_KL);
    CHECK_STATUS(nne_observer_from_name("entropy", &k), NNE_ERR_INVALID_ARG);
    nne_qscheme s;
    CHECK_OK(nne_qscheme_from_name("pow2", &s));
    CHECK(s == NNE_QSCHEME_POW2 && strcmp(nne_qscheme_name(s), "pow2") == 0);
    CHECK_STATUS(nne_qscheme_from_name("per-layer", &s), NNE_ERR_INVALID_ARG);
    hist_of_data();
    float lo, hi;
    nne_observer_opts o = {.kind = NNE_OBSERVER_PERCENTILE, .percentile = 40};
    CHECK_STATUS(nne_observer_range(&g_h, &o, &lo, &hi), NNE_ERR_INVALID_ARG);
}

static void test_minmax_and_growth(void) {
    fill_uniform(-3.0f, 5.0f, 1);
    hist_of_data();
    float lo, hi;
    range_of(NNE_OBSERVER_MINMAX, false, 0, &lo, &hi);
    float mn = g_x[0], mx = g_x[0];
    for (int i = 0; i < N; i++) {
        mn = fminf(mn, g_x[i]);
        mx = fmaxf(mx, g_x[i]);
    }
    CHECK(lo == mn && hi == mx);
    CHECK(g_h.range == 8.0f && g_h.total == N);
    /* Same data in batches of growing magnitude: the doubling merges are exact, so the
     * histogram equals the one built in one go. Sorted by |x| so the range grows often. */
    float *s = malloc(N * sizeof *s);
    memcpy(s, g_x, N * sizeof *s);
    for (int i = 0; i < N; i++) s[i] = s[i] * 1e-3f * (float)(i + 1) / N * 1000.0f;
    nne_histogram_init(&g_h);
    nne_histogram_add(&g_h, s, N);
    nne_histogram_init(&g_h2);
    for (int i = 0; i < N; i += 1000) nne_histogram_add(&g_h2, s + i, 1000);
    CHECK(g_h.range == g_h2.range);
    CHECK(memcmp(g_h.bins, g_h2.bins, sizeof g_h.bins) == 0);
    free(s);
    /* Only positive data: the range still contains 0. */
    fill_uniform(2.0f, 3.0f, 2);
    hist_of_data();
    range_of(NNE_OBSERVER_MINMAX, false, 0, &lo, &hi);
    CHECK(lo == 0.0f && hi <= 3.0f && hi > 2.99f);
}

static void test_percentile(void) {
    fill_uniform(-1.0f, 1.0f, 3);
    hist_of_data();
    float lo, hi;
    range_of(NNE_OBSERVER_PERCENTILE, false, 99.0, &lo, &hi);
    /* Quantiles 1% and 99% of U(-1, 1): -0.98 and 0.98 (bin width 2/8192, sampling noise
     * sqrt(.01*.99/N)*2 = 4.5e-4). */
    CHECK_NEAR(lo, -0.98, 0.004);
    CHECK_NEAR(hi, 0.98, 0.004);
    range_of(NNE_OBSERVER_PERCENTILE, true, 99.0, &lo, &hi);
    CHECK(lo == -hi);
    range_of(NNE_OBSERVER_PERCENTILE, false, 100.0, &lo, &hi);
    CHECK_NEAR(hi, 1.0, 1e-3);
}

static void test_mse_laplace(void) {
    fill_laplace(1.0, 4);
    hist_of_data();
    float lo, hi, s;
    int32_t z;
    range_of(NNE_OBSERVER_MSE, true, 0, &lo, &hi);
    /* Brute force on the raw samples over symmetric clips alpha in (0, max]. */
    double best = INFINITY, best_a = 0;
    const double amax = fmax(-g_h.min, g_h.max);
    for (int i = 1; i <= 400; i++) {
        const double a = amax * i / 400;
        nne_qparams_from_range((float)-a, (float)a, true, false, &s, &z);
        const double e = raw_mse(s, z, false);
        if (e < best) {
            best = e;
            best_a = a;
        }
    }
    nne_qparams_from_range(lo, hi, true, false, &s, &z);
    const double got = raw_mse(s, z, false);
    CHECK_MSG(got <= best * 1.03, "histogram MSE range %g: mse %g, brute force %g at %g", hi, got,
              best, best_a);
    /* ACIQ (Banner et al. 2019): the optimal 8-bit clip of a Laplace(b) is ~9.89 b. */
    CHECK_MSG(hi > 8.0f && hi < 12.0f, "alpha %g", hi);
    nne_qparams_from_range((float)g_h.min, (float)g_h.max, true, false, &s, &z);
    CHECK(got < 0.8 * raw_mse(s, z, false)); /* better than min-max */
    /* Affine search on a uniform: no clipping is optimal. */
    fill_uniform(-1.0f, 3.0f, 5);
    hist_of_data();
    range_of(NNE_OBSERVER_MSE, false, 0, &lo, &hi);
    CHECK(lo <= -0.95f && hi >= 2.9f);
}

static void test_kl_outliers(void) {
    fill_gauss(6);
    for (int i = 0; i < 10; i++) g_x[i] = i % 2 ? 50.0f : -50.0f;
    hist_of_data();
    float lo, hi;
    range_of(NNE_OBSERVER_KL, false, 0, &lo, &hi);
    CHECK_MSG(hi > 2.5f && hi < 8.0f && lo < -2.5f && lo > -8.0f, "KL range [%g, %g]", lo, hi);
    range_of(NNE_OBSERVER_MINMAX, false, 0, &lo, &hi);
    CHECK(hi == 50.0f);
}

static void test_qparams(void) {
    float s;
    int32_t z;
    nne_qparams_from_range(-1.0f, 3.0f, false, false, &s, &z);
    CHECK_NEAR(s, 4.0 / 255.0, 1e-9);
    CHECK(z == -64); /* -128 - round(-63.75) */
    CHECK(nne_quantize_value(0.0f, s, z, -128, 127, false) == z);
    CHECK(nne_quantize_value(-1.0f, s, z, -128, 127, false) == -128);
    CHECK(nne_quantize_value(3.0f, s, z, -128, 127, false) == 127);
    nne_qparams_from_range(-1.0f, 3.0f, true, false, &s, &z);
    CHECK(z == 0 && s == 3.0f / 127.0f);
    nne_qparams_from_range(-1.0f, 3.0f, true, true, &s, &z);
    CHECK(z == 0 && s == 1.0f / 32.0f); /* 3 * 32 = 96 < 127.5, 3 * 64 >= 127.5 */
    nne_qparams_from_range(0.0f, 0.0f, false, false, &s, &z);
    CHECK(s == 1.0f && z == 0);
    /* Uniform on [-1, 1]: fp0 = 6 (127/64 covers 1), but fp 7 (0.992) has less error. */
    fill_uniform(-1.0f, 1.0f, 7);
    hist_of_data();
    CHECK(nne_histogram_pow2_fp(&g_h, -1.0f, 1.0f) == 7);
    CHECK(nne_histogram_qerror(&g_h, 1.0f / 128, 0, true) <
          nne_histogram_qerror(&g_h, 1.0f / 64, 0, true));
}

int main(void) {
    NNE_RUN(test_names);
    NNE_RUN(test_minmax_and_growth);
    NNE_RUN(test_percentile);
    NNE_RUN(test_mse_laplace);
    NNE_RUN(test_kl_outliers);
    NNE_RUN(test_qparams);
    return nne_test_summary();
}
