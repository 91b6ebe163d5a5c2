#!/usr/bin/python3
"""Reference Bjontegaard deltas for tests/metrics/test_bdrate.c, computed independently of
nnedge's C code with NumPy and SciPy (Debian's python3-numpy / python3-scipy):

    /usr/bin/python3 scripts/gen_golden_bd.py

  * cubic: numpy.polyfit(x, y, 3) + numpy.polyint, evaluated at the ends of the common
    interval (Bjontegaard's VCEG-M33 procedure, as in the widely copied bd_rate scripts);
  * pchip: scipy.interpolate.PchipInterpolator(x, y).integrate(lo, hi).

BD-rate: x = PSNR, y = ln(rate), result 100 * (exp(mean gap) - 1) %.
BD-PSNR: x = ln(rate), y = PSNR, result = mean gap in dB.
The curves below are made up (no test data involved): a reference and a test codec with
different point counts, spacing and curvature, so that both methods give different values.
Prints the C initialisers pasted into the test.
"""
import numpy as np
from scipy.interpolate import PchipInterpolator

REF_RATE = [0.118, 0.205, 0.331, 0.497, 0.742, 1.104]
REF_PSNR = [26.41, 28.37, 30.02, 31.66, 33.41, 35.38]
TEST_RATE = [0.092, 0.151, 0.240, 0.366, 0.551, 0.812, 1.210, 1.655]
TEST_PSNR = [26.95, 28.62, 30.31, 31.86, 33.52, 35.07, 36.80, 38.02]


def gap(xa, ya, xb, yb, method):
    ia, ib = np.argsort(xa), np.argsort(xb)
    xa, ya, xb, yb = np.asarray(xa)[ia], np.asarray(ya)[ia], np.asarray(xb)[ib], np.asarray(yb)[ib]
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if method == "cubic":
        pa, pb = np.polyint(np.polyfit(xa, ya, 3)), np.polyint(np.polyfit(xb, yb, 3))
        inta = np.polyval(pa, hi) - np.polyval(pa, lo)
        intb = np.polyval(pb, hi) - np.polyval(pb, lo)
    else:
        inta = PchipInterpolator(xa, ya).integrate(lo, hi)
        intb = PchipInterpolator(xb, yb).integrate(lo, hi)
    return (intb - inta) / (hi - lo)


def bd_rate(ra, qa, rb, qb, method):
    return 100 * np.expm1(gap(qa, np.log(ra), qb, np.log(rb), method))


def bd_psnr(ra, qa, rb, qb, method):
    return gap(np.log(ra), qa, np.log(rb), qb, method)


for m in ("cubic", "pchip"):
    print("/* %s */ bd_rate %.12f %%, bd_psnr %.12f dB" % (
        m, bd_rate(REF_RATE, REF_PSNR, TEST_RATE, TEST_PSNR, m),
        bd_psnr(REF_RATE, REF_PSNR, TEST_RATE, TEST_PSNR, m)))
