/* CDF tables (include/nnedge/entropy.h, docs/bitstream.md "CDF quantization"): the quantizer's
 * invariants and optimality on small cases, the Gaussian and factorized table sets, set
 * validation, and the float and integer scale-index searches. */
#include <math.h>
#include <string.h>

#include "nnedge/entropy.h"
#include "testutil.h"

/* Cross-entropy in bits per symbol of coding p (normalised) with frequencies f / 2^prec. */
static double cross_entropy(const double *p, int32_t m, const uint32_t *cdf, int32_t prec) {
    double sum = 0, h = 0;
    for (int32_t i = 0; i < m; i++) sum += p[i];
    for (int32_t i = 0; i < m; i++)
        if (p[i] > 0) h -= p[i] / sum * log2((double)(cdf[i + 1] - cdf[i]) / ldexp(1, prec));
    return h;
}

static bool cdf_ok(const uint32_t *cdf, int32_t m, int32_t prec) {
    if (cdf[0] != 0 || cdf[m] != (1u << prec)) return false;
    for (int32_t i = 0; i < m; i++)
        if (cdf[i + 1] <= cdf[i]) return false;
    return true;
}

/* A worked example (docs/bitstream.md): four equal symbols and an escape of mass 0 at 4 bits:
 * q = 4,4,4,4,0, f = 4,4,4,4,1 (17 > 16); the cheapest decrement is a tie of the four, and the
 * lowest index loses one. */
static void test_quantize_example(void) {
    const double p[4] = {1, 1, 1, 1};
    uint32_t cdf[6];
    CHECK_OK(nne_cdf_quantize(p, 4, 0.0, 4, cdf));
    const uint32_t want[6] = {0, 3, 7, 11, 15, 16};
    CHECK(memcmp(cdf, want, sizeof want) == 0);
    /* A PMF that already is a power-of-two split keeps it (the escape takes 1 from the
     * cheapest symbol). */
    const double h[2] = {0.5, 0.5};
    CHECK_OK(nne_cdf_quantize(h, 2, 0.0, 16, cdf));
    CHECK(cdf[1] == 32767 && cdf[2] == 65535 && cdf[3] == 65536);
}

/* Random PMFs (skewed, with zeros and tiny masses) at random precisions: every symbol keeps
 * frequency >= 1, the total is exactly 2^precision, and the result is deterministic. */
static void test_quantize_random(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 11);
    double p[600];
    uint32_t cdf[602], again[602];
    for (int it = 0; it < 400; it++) {
        const int32_t prec = nne_test_rng_int(&r, 1, 16);
        int32_t maxn = (1 << prec) - 1;
        if (maxn > 599) maxn = 599;
        const int32_t n = nne_test_rng_int(&r, 1, maxn);
        const int kind = it % 4;
        for (int32_t i = 0; i < n; i++) {
            const double u = nne_test_rng_uniform(&r);
            p[i] = kind == 0   ? u
                   : kind == 1 ? exp(-30 * u)                /* tiny masses */
                   : kind == 2 ? (u < 0.5 ? 0 : u)           /* zeros */
                               : (i == 0 ? 1e6 : 1e-12 * u); /* one dominant symbol */
        }
        if (kind == 2) p[n - 1] = 1; /* a positive sum */
        const double tail = nne_test_rng_uniform(&r) < 0.5 ? 0 : 1e-9;
        CHECK_OK(nne_cdf_quantize(p, n, tail, prec, cdf));
        CHECK_MSG(cdf_ok(cdf, n + 1, prec), "it %d n %d prec %d", it, n, prec);
        CHECK_OK(nne_cdf_quantize(p, n, tail, prec, again));
        CHECK(memcmp(cdf, again, (size_t)(n + 2) * sizeof *cdf) == 0);
    }
}

/* On tiny alphabets the greedy finds the best table: exhaustive search over every frequency
 * vector (each >= 1, sum 2^prec) for the minimum cross-entropy. */
static void best_rec(const double *p, int32_t m, int32_t i, int32_t left, uint32_t *cdf,
                     int32_t prec, double *best) {
    if (i == m - 1) {
        cdf[m] = cdf[m - 1] + (uint32_t)left;
        const double h = cross_entropy(p, m, cdf, prec);
        if (h < *best) *best = h;
        return;
    }
    for (int32_t f = 1; f <= left - (m - 1 - i); f++) {
        cdf[i + 1] = cdf[i] + (uint32_t)f;
        best_rec(p, m, i + 1, left - f, cdf, prec, best);
    }
}

static void test_quantize_near_optimal(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 5);
    int optimal = 0, total = 0;
    for (int it = 0; it < 300; it++) {
        const int32_t prec = nne_test_rng_int(&r, 2, 5);
        const int32_t n = nne_test_rng_int(&r, 1, 4);
        if (n + 1 > (1 << prec)) continue;
        double p[5];
        for (int32_t i = 0; i < n; i++) p[i] = pow(nne_test_rng_uniform(&r), 3);
        p[n] = nne_test_rng_uniform(&r) < 0.5 ? 0 : 0.01 * nne_test_rng_uniform(&r);
        double sum = 0;
        for (int32_t i = 0; i <= n; i++) sum += p[i];
        if (!(sum > 0)) continue;
        uint32_t cdf[7], tmp[7] = {0};
        CHECK_OK(nne_cdf_quantize(p, n, p[n], prec, cdf));
        double best = INFINITY;
        best_rec(p, n + 1, 0, 1 << prec, tmp, prec, &best);
        const double got = cross_entropy(p, n + 1, cdf, prec);
        /* The cost proxy q / (f +- 1/2) may pick a neighbour of the optimum: a loss of at
         * most 2% of a bit per symbol on these tiny tables, none on most. */
        CHECK_MSG(got <= best + 0.02, "n %d prec %d: %.6f vs best %.6f", n, prec, got, best);
        optimal += got <= best + 1e-12;
        total++;
    }
    CHECK_MSG(optimal * 10 >= total * 9, "optimal in %d of %d cases", optimal, total);
}

/* At 16 bits a smooth PMF loses almost nothing. */
static void test_quantize_loss(void) {
    double p[64], h = 0, sum = 0;
    for (int i = 0; i < 64; i++) sum += p[i] = exp(-0.15 * i);
    for (int i = 0; i < 64; i++) h -= p[i] / sum * log2(p[i] / sum);
    uint32_t cdf[66];
    CHECK_OK(nne_cdf_quantize(p, 64, 0.0, 16, cdf));
    double pe[65];
    memcpy(pe, p, sizeof p);
    pe[64] = 0;
    const double ce = cross_entropy(pe, 65, cdf, 16);
    CHECK_MSG(ce - h < 1e-4 * h, "cross-entropy %.8f vs entropy %.8f", ce, h);
}

static void test_quantize_errors(void) {
    double p[4] = {1, 2, 3, 4};
    uint32_t cdf[300];
    CHECK_STATUS(nne_cdf_quantize(p, 4, 0, 2, cdf), NNE_ERR_INVALID_ARG); /* 5 > 4 symbols */
    CHECK_STATUS(nne_cdf_quantize(p, 0, 0, 16, cdf), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_cdf_quantize(p, 4, 0, 0, cdf), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_cdf_quantize(p, 4, 0, 17, cdf), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_cdf_quantize(p, 4, -1, 16, cdf), NNE_ERR_INVALID_ARG);
    p[2] = NAN;
    CHECK_STATUS(nne_cdf_quantize(p, 4, 0, 16, cdf), NNE_ERR_INVALID_ARG);
    p[2] = INFINITY;
    CHECK_STATUS(nne_cdf_quantize(p, 4, 0, 16, cdf), NNE_ERR_INVALID_ARG);
    const double z[3] = {0, 0, 0};
    CHECK_STATUS(nne_cdf_quantize(z, 3, 0, 16, cdf), NNE_ERR_INVALID_ARG);
    /* The limit itself: 2^8 - 1 symbols plus the escape fill an 8-bit table with ones. */
    double u[255];
    for (int i = 0; i < 255; i++) u[i] = 1;
    CHECK_OK(nne_cdf_quantize(u, 255, 0, 8, cdf));
    for (int i = 0; i <= 256; i++) CHECK(cdf[i] == (uint32_t)i);
}

static void test_scale_table(void) {
    double s[NNE_GAUSS_SCALES];
    nne_gauss_scale_table(s, NNE_GAUSS_SCALES);
    CHECK(s[0] == NNE_GAUSS_SCALE_MIN && s[NNE_GAUSS_SCALES - 1] == NNE_GAUSS_SCALE_MAX);
    const double ratio = pow(NNE_GAUSS_SCALE_MAX / NNE_GAUSS_SCALE_MIN, 1.0 / 63);
    for (int j = 1; j < NNE_GAUSS_SCALES; j++) CHECK_NEAR(s[j] / s[j - 1], ratio, 1e-12);
}

/* The default Gaussian set: valid, exact totals, nearly symmetric, close to the real PMF, and
 * with the documented ranges. */
static void test_gaussian(void) {
    double s[NNE_GAUSS_SCALES];
    nne_gauss_scale_table(s, NNE_GAUSS_SCALES);
    nne_cdf_set g;
    CHECK_OK(nne_cdf_set_gaussian(s, NNE_GAUSS_SCALES, NNE_GAUSS_TAIL_MASS, 16, &g));
    if (!g.cdf) return;
    CHECK_OK(nne_cdf_set_validate(&g));
    CHECK(g.n_tables == NNE_GAUSS_SCALES && g.precision == 16);
    /* z = 6.1094102048... (2 Phi(-z) = 1e-9): K = ceil(0.11 z) = 1, ceil(256 z) = 1565. */
    CHECK(g.offset[0] == -1 && g.length[0] == 4);
    CHECK(g.offset[63] == -1565 && g.length[63] == 2 * 1565 + 2);
    for (int32_t j = 0; j < g.n_tables; j++) {
        const uint32_t *c = g.cdf + g.start[j];
        const int32_t len = g.length[j], k = -g.offset[j];
        CHECK(len == 2 * k + 2);
        CHECK(cdf_ok(c, len, 16));
        CHECK(k == (int32_t)ceil(s[j] * 6.109410204869)); /* scipy.stats.norm.isf(5e-10) */
        for (int32_t v = 1; v <= k; v++) {
            const int64_t fp = c[k + v + 1] - c[k + v], fm = c[k - v + 1] - c[k - v];
            CHECK_MSG(llabs(fp - fm) <= 1, "scale %d value %d: %lld vs %lld", j, v, (long long)fp,
                      (long long)fm);
        }
        /* P(0) against the closed form: off by at most the rounding and the mass the
         * quantizer moved to tail values whose ideal frequency is below 1. */
        const double p0 = erf(0.5 / s[j] / sqrt(2.0));
        int32_t bumped = 0;
        for (int32_t v = -k; v <= k; v++)
            bumped += 65536 *
                          (erf((fabs((double)v) + 0.5) / s[j] / sqrt(2.0)) -
                           erf((fabs((double)v) - 0.5) / s[j] / sqrt(2.0))) /
                          2 <
                      1;
        CHECK_NEAR((double)(c[k + 1] - c[k]) / 65536, p0, (2.0 + bumped) / 65536);
        /* The coding loss of the table: cross-entropy against the exact PMF within 0.5% of
         * its entropy (once the entropy is large enough for a ratio to mean something). */
        double h = 0, ce = 0;
        for (int32_t v = -k; v <= k; v++) {
            const double a = fabs((double)v);
            const double pv =
                (erfc((a - 0.5) / s[j] / sqrt(2.0)) - erfc((a + 0.5) / s[j] / sqrt(2.0))) / 2;
            const double pv0 = v == 0 ? p0 : pv;
            if (pv0 <= 0) continue;
            h -= pv0 * log2(pv0);
            ce -= pv0 * log2((c[k + v + 1] - c[k + v]) / 65536.0);
        }
        if (getenv("NNE_TEST_VERBOSE"))
            printf("  scale %8.4f K %5d entropy %8.5f cross %8.5f (+%.3f%%)\n", s[j], k, h, ce,
                   100 * (ce - h) / h);
        if (h > 0.5) CHECK_MSG(ce - h < 0.005 * h, "scale %g: %.5f vs %.5f bits", s[j], ce, h);
        /* The escape carries about 1e-9 of mass: the minimum frequency. */
        CHECK(c[len] - c[len - 1] == 1);
    }
    nne_cdf_set_free(&g);
    CHECK(g.cdf == NULL && g.n_tables == 0);

    CHECK_STATUS(nne_cdf_set_gaussian(s, NNE_GAUSS_SCALES, NNE_GAUSS_TAIL_MASS, 8, &g),
                 NNE_ERR_INVALID_ARG); /* 3132 symbols do not fit 8 bits */
    const double bad[3] = {1, 0.5, 2};
    CHECK_STATUS(nne_cdf_set_gaussian(bad, 3, 1e-9, 16, &g), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_cdf_set_gaussian(s, 4, 0, 16, &g), NNE_ERR_INVALID_ARG);
    CHECK(g.cdf == NULL);
}

static void test_factorized(void) {
    const double pmfs[2 + 5 + 1] = {3, 1, 1, 2, 4, 2, 1, 1};
    const int32_t lens[3] = {2, 5, 1}, offs[3] = {0, -2, 7};
    const double tails[3] = {0.1, 0, 0};
    nne_cdf_set f;
    CHECK_OK(nne_cdf_set_factorized(3, pmfs, lens, offs, tails, 12, &f));
    if (!f.cdf) return;
    CHECK_OK(nne_cdf_set_validate(&f));
    CHECK(f.length[0] == 3 && f.length[1] == 6 && f.length[2] == 2);
    CHECK(f.offset[1] == -2 && f.offset[2] == 7);
    CHECK(f.start[1] == 4 && f.start[2] == 11 && f.cdf_size == 14);
    /* Channel 2 is a single-symbol alphabet: everything but the escape's 1. */
    CHECK(f.cdf[f.start[2] + 1] == 4095);
    nne_cdf_set_free(&f);
    const int32_t bad_len[3] = {2, 0, 1};
    CHECK_STATUS(nne_cdf_set_factorized(3, pmfs, bad_len, offs, NULL, 12, &f), NNE_ERR_INVALID_ARG);
    const double neg[8] = {3, 1, 1, -2, 4, 2, 1, 1};
    CHECK_STATUS(nne_cdf_set_factorized(3, neg, lens, offs, NULL, 12, &f), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "channel 1") != NULL);
    CHECK(f.cdf == NULL);
}

/* Each rule of nne_cdf_set_validate is enforced. */
static void test_validate(void) {
    const double pmfs[6] = {1, 2, 3, 3, 2, 1};
    const int32_t lens[2] = {3, 3}, offs[2] = {0, 0};
    nne_cdf_set f;
    CHECK_OK(nne_cdf_set_factorized(2, pmfs, lens, offs, NULL, 10, &f));
    if (!f.cdf) return;
    CHECK_OK(nne_cdf_set_validate(&f));
    uint32_t *c = f.cdf + f.start[1];
    const uint32_t keep = c[2];
    c[2] = c[1]; /* a zero frequency */
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    c[2] = c[3] + 1; /* decreasing */
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    c[2] = keep;
    c[4] = 1023; /* wrong total */
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    c[4] = 1024;
    f.start[1]++;
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    f.start[1]--;
    f.length[0] = 1;
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    f.length[0] = 4;
    f.precision = 17;
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    f.precision = 10;
    f.cdf_size++;
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    f.cdf_size--;
    CHECK_OK(nne_cdf_set_validate(&f));
    nne_cdf_set_free(&f);
    CHECK_STATUS(nne_cdf_set_validate(&f), NNE_ERR_FORMAT);
    const int32_t too_long[1] = {257};
    CHECK_STATUS(nne_cdf_set_create(1, too_long, 8, &f), NNE_ERR_INVALID_ARG);
}

/* CompressAI's rule: the first table scale >= the predicted scale, the last if none; the
 * integer search over fixed-point thresholds gives the same index for every fixed-point
 * scale. */
static void test_scale_index(void) {
    double s[NNE_GAUSS_SCALES];
    nne_gauss_scale_table(s, NNE_GAUSS_SCALES);
    const int32_t n = NNE_GAUSS_SCALES;
    CHECK(nne_gauss_scale_index(s, n, -1) == 0);
    CHECK(nne_gauss_scale_index(s, n, 0) == 0);
    CHECK(nne_gauss_scale_index(s, n, 0.11) == 0);
    CHECK(nne_gauss_scale_index(s, n, nextafter(0.11, 1)) == 1);
    CHECK(nne_gauss_scale_index(s, n, s[5]) == 5);
    CHECK(nne_gauss_scale_index(s, n, nextafter(s[5], 1e9)) == 6);
    CHECK(nne_gauss_scale_index(s, n, 255.9) == 63);
    CHECK(nne_gauss_scale_index(s, n, 1e9) == 63);
    CHECK(nne_gauss_scale_index(s, n, NAN) == 63);
    CHECK(nne_gauss_scale_index(s, n, INFINITY) == 63);
    /* Brute force against the definition. */
    nne_test_rng r;
    nne_test_rng_seed(&r, 3);
    for (int it = 0; it < 2000; it++) {
        const double v = exp(nne_test_rng_uniform(&r) * 9 - 3);
        int32_t want = n - 1;
        for (int32_t j = 0; j < n - 1; j++)
            if (v <= s[j]) {
                want = j;
                break;
            }
        CHECK(nne_gauss_scale_index(s, n, v) == want);
    }
    for (int32_t fb = 0; fb <= 12; fb += 4) {
        int32_t thr[NNE_GAUSS_SCALES - 1];
        CHECK_OK(nne_gauss_scale_thresholds(s, n, fb, thr));
        int bad = 0;
        for (int32_t q = -3; q <= (300 << fb); q++)
            bad += nne_entropy_index_search(thr, n - 1, q) !=
                   nne_gauss_scale_index(s, n, ldexp((double)q, -fb));
        CHECK_MSG(bad == 0, "frac_bits %d: %d disagreements", fb, bad);
    }
    int32_t thr[NNE_GAUSS_SCALES - 1];
    CHECK_STATUS(nne_gauss_scale_thresholds(s, n, 25, thr), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_gauss_scale_thresholds(s, n, 24, thr), NNE_ERR_INVALID_ARG); /* 2^32 */
}

int main(void) {
    NNE_RUN(test_quantize_example);
    NNE_RUN(test_quantize_random);
    NNE_RUN(test_quantize_near_optimal);
    NNE_RUN(test_quantize_loss);
    NNE_RUN(test_quantize_errors);
    NNE_RUN(test_scale_table);
    NNE_RUN(test_gaussian);
    NNE_RUN(test_factorized);
    NNE_RUN(test_validate);
    NNE_RUN(test_scale_index);
    return nne_test_summary();
}
