/* Bjontegaard deltas: exact cases (identical curves, a pure rate scaling, a pure quality
 * offset, swapping the curves), golden values from NumPy/SciPy, and the argument checks. */
#include <math.h>

#include "nnedge/bdrate.h"
#include "testutil.h"

/* The made-up curves of scripts/gen_golden_bd.py. */
static const double k_ref_rate[] = {0.118, 0.205, 0.331, 0.497, 0.742, 1.104};
static const double k_ref_psnr[] = {26.41, 28.37, 30.02, 31.66, 33.41, 35.38};
static const double k_test_rate[] = {0.092, 0.151, 0.240, 0.366, 0.551, 0.812, 1.210, 1.655};
static const double k_test_psnr[] = {26.95, 28.62, 30.31, 31.86, 33.52, 35.07, 36.80, 38.02};
static const nne_bd_method k_methods[] = {NNE_BD_CUBIC, NNE_BD_PCHIP};

static void test_identical(void) {
    for (int m = 0; m < 2; m++) {
        double r = 1, q = 1;
        CHECK_OK(nne_bd_rate(k_ref_rate, k_ref_psnr, 6, k_ref_rate, k_ref_psnr, 6, k_methods[m],
                             &r));
        CHECK_OK(nne_bd_quality(k_ref_rate, k_ref_psnr, 6, k_ref_rate, k_ref_psnr, 6,
                                k_methods[m], &q));
        CHECK_NEAR(r, 0, 1e-12);
        CHECK_NEAR(q, 0, 1e-12);
    }
}

/* Every rate times (1 + x/100) at the same PSNR: BD-rate is exactly x, whatever the fit
 * (ln R shifts by a constant, and both fits commute with adding a constant). Every PSNR plus
 * d dB at the same rates: BD-PSNR is exactly d. */
static void test_exact_shifts(void) {
    const double xs[] = {-30, -5, 12.5, 100};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 4; i++) {
            double rate[8], psnr[8];
            for (int k = 0; k < 8; k++) {
                rate[k] = k_test_rate[k] * (1 + xs[i] / 100);
                psnr[k] = k_test_psnr[k] + xs[i] / 50;
            }
            double r, q;
            CHECK_OK(nne_bd_rate(k_test_rate, k_test_psnr, 8, rate, k_test_psnr, 8, k_methods[m],
                                 &r));
            CHECK_NEAR(r, xs[i], 1e-9);
            CHECK_OK(nne_bd_quality(k_test_rate, k_test_psnr, 8, k_test_rate, psnr, 8,
                                    k_methods[m], &q));
            CHECK_NEAR(q, xs[i] / 50, 1e-9);
        }
}

/* Swapping reference and test negates the mean gap: (1 + a)(1 + b) = 1 for BD-rate,
 * a = -b for BD-PSNR. Point order does not matter. */
static void test_swap_and_order(void) {
    for (int m = 0; m < 2; m++) {
        double ab, ba, qab, qba;
        CHECK_OK(nne_bd_rate(k_ref_rate, k_ref_psnr, 6, k_test_rate, k_test_psnr, 8,
                             k_methods[m], &ab));
        CHECK_OK(nne_bd_rate(k_test_rate, k_test_psnr, 8, k_ref_rate, k_ref_psnr, 6,
                             k_methods[m], &ba));
        CHECK_NEAR((1 + ab / 100) * (1 + ba / 100), 1, 1e-12);
        CHECK_OK(nne_bd_quality(k_ref_rate, k_ref_psnr, 6, k_test_rate, k_test_psnr, 8,
                                k_methods[m], &qab));
        CHECK_OK(nne_bd_quality(k_test_rate, k_test_psnr, 8, k_ref_rate, k_ref_psnr, 6,
                                k_methods[m], &qba));
        CHECK_NEAR(qab, -qba, 1e-12);
        const double rr[6] = {0.742, 0.118, 1.104, 0.331, 0.205, 0.497};
        const double rq[6] = {33.41, 26.41, 35.38, 30.02, 28.37, 31.66};
        double shuffled;
        CHECK_OK(nne_bd_rate(rr, rq, 6, k_test_rate, k_test_psnr, 8, k_methods[m], &shuffled));
        CHECK_NEAR(shuffled, ab, 1e-12);
    }
}

/* Golden values: /usr/bin/python3 scripts/gen_golden_bd.py (numpy.polyfit/polyint and
 * scipy.interpolate.PchipInterpolator.integrate). */
static void test_golden(void) {
    const double want_rate[2] = {-29.862401644357, -29.690808259810};
    const double want_psnr[2] = {1.357834704861, 1.354457985086};
    for (int m = 0; m < 2; m++) {
        double r, q;
        CHECK_OK(nne_bd_rate(k_ref_rate, k_ref_psnr, 6, k_test_rate, k_test_psnr, 8,
                             k_methods[m], &r));
        CHECK_OK(nne_bd_quality(k_ref_rate, k_ref_psnr, 6, k_test_rate, k_test_psnr, 8,
                                k_methods[m], &q));
        CHECK_NEAR(r, want_rate[m], 1e-9);
        CHECK_NEAR(q, want_psnr[m], 1e-9);
    }
}

static void test_errors(void) {
    double r = 7;
    CHECK_STATUS(nne_bd_rate(k_ref_rate, k_ref_psnr, 3, k_test_rate, k_test_psnr, 8,
                             NNE_BD_CUBIC, &r),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_bd_rate(NULL, k_ref_psnr, 6, k_test_rate, k_test_psnr, 8, NNE_BD_PCHIP, &r),
                 NNE_ERR_INVALID_ARG);
    const double bad_rate[4] = {0.1, 0.2, 0.0, 0.4}, q4[4] = {25, 27, 29, 31};
    CHECK_STATUS(nne_bd_rate(bad_rate, q4, 4, k_test_rate, k_test_psnr, 8, NNE_BD_CUBIC, &r),
                 NNE_ERR_INVALID_ARG);
    const double nan_q[4] = {25, NAN, 29, 31}, r4[4] = {0.1, 0.2, 0.3, 0.4};
    CHECK_STATUS(nne_bd_rate(r4, nan_q, 4, k_test_rate, k_test_psnr, 8, NNE_BD_CUBIC, &r),
                 NNE_ERR_INVALID_ARG);
    /* No overlap in PSNR: refused rather than extrapolated. */
    const double high_q[4] = {40, 41, 42, 43};
    CHECK_STATUS(nne_bd_rate(r4, high_q, 4, k_ref_rate, k_ref_psnr, 6, NNE_BD_PCHIP, &r),
                 NNE_ERR_INVALID_ARG);
    /* PCHIP needs distinct abscissae; the cubic fit does not. */
    const double dup_q[5] = {25, 27, 27, 29, 31}, r5[5] = {0.1, 0.2, 0.25, 0.3, 0.4};
    CHECK_STATUS(nne_bd_rate(r5, dup_q, 5, k_ref_rate, k_ref_psnr, 6, NNE_BD_PCHIP, &r),
                 NNE_ERR_INVALID_ARG);
    CHECK_OK(nne_bd_rate(r5, dup_q, 5, k_ref_rate, k_ref_psnr, 6, NNE_BD_CUBIC, &r));
    CHECK_STATUS(nne_bd_rate(k_ref_rate, k_ref_psnr, 6, k_test_rate, k_test_psnr, 8,
                             (nne_bd_method)7, &r),
                 NNE_ERR_INVALID_ARG);
}

int main(void) {
    NNE_RUN(test_identical);
    NNE_RUN(test_exact_shifts);
    NNE_RUN(test_swap_and_order);
    NNE_RUN(test_golden);
    NNE_RUN(test_errors);
    return nne_test_summary();
}
