/* Bjontegaard delta rate and delta quality between two rate-distortion curves.
 *
 * Each curve is n >= 4 points (rate, quality): rate > 0 in any unit (bpp, bytes; the same
 * for both curves), quality in dB (PSNR, or MS-SSIM as -10 log10(1 - MS-SSIM)). Points may
 * come in any order; they are sorted by the abscissa of each fit.
 *
 * BD-rate: the mean horizontal gap between the curves in the log-rate domain over the
 * quality interval both curves cover, as a percentage: 100 * (exp(mean(ln R_test -
 * ln R_ref)) - 1). Negative = the test codec needs fewer bits for the same quality.
 * BD-quality (BD-PSNR): the mean vertical gap in dB over the log-rate interval both curves
 * cover. Positive = the test codec is better.
 *
 * Two interpolations of ln R as a function of quality (and of quality as a function of
 * ln R for BD-PSNR):
 *  - NNE_BD_CUBIC: Bjontegaard's original (VCEG-M33, 2001): a least-squares cubic polynomial
 *    through all points, integrated exactly. Matches numpy polyfit(deg=3) + polyint.
 *  - NNE_BD_PCHIP: piecewise cubic Hermite interpolation through every point with
 *    monotonicity-preserving slopes (Fritsch-Carlson with the Fritsch-Butland harmonic mean
 *    and scipy's end-point rule), integrated exactly per piece. Matches
 *    scipy.interpolate.PchipInterpolator(...).integrate. Needs strictly increasing
 *    abscissae after sorting (no two points with the same quality, resp. rate).
 * docs/rd.md says which one `nnedge rd` reports and why.
 *
 * Errors: NNE_ERR_INVALID_ARG for NULL arrays, n < 4 or n > NNE_BD_MAX_POINTS, a rate <= 0
 * or a non-finite value, duplicate abscissae for PCHIP, or curves whose intervals do not
 * overlap (the result would be an extrapolation).
 */
#ifndef NNEDGE_BDRATE_H
#define NNEDGE_BDRATE_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_BD_MAX_POINTS 64

typedef enum nne_bd_method {
    NNE_BD_CUBIC = 0, /* least-squares cubic polynomial (VCEG-M33) */
    NNE_BD_PCHIP = 1, /* piecewise cubic Hermite interpolation */
} nne_bd_method;

/* "cubic" / "pchip". */
const char *nne_bd_method_name(nne_bd_method m);

/* BD-rate of `test` against `ref`, in percent. */
nne_status nne_bd_rate(const double *ref_rate, const double *ref_q, int ref_n,
                       const double *test_rate, const double *test_q, int test_n,
                       nne_bd_method m, double *bd_rate_pct);

/* BD-quality (BD-PSNR when q is PSNR) of `test` against `ref`, in dB. */
nne_status nne_bd_quality(const double *ref_rate, const double *ref_q, int ref_n,
                          const double *test_rate, const double *test_q, int test_n,
                          nne_bd_method m, double *bd_db);

#ifdef __cplusplus
}
#endif
#endif
