/* Bjontegaard deltas (see include/nnedge/bdrate.h).
 *
 * Both methods reduce to: fit y(x) for each curve, integrate each fit over the common x
 * interval [lo, hi], and divide the difference of the integrals by (hi - lo). For BD-rate
 * x = quality and y = ln(rate); for BD-quality x = ln(rate) and y = quality.
 *
 * The cubic fit is done in a centred and scaled abscissa t = (x - c) / s (s = half the
 * range), so the 4x4 normal equations stay well conditioned whatever the units (PSNR values
 * around 30-40 would otherwise put 1e4-1e6 on the diagonal); they are solved by Gaussian
 * elimination with partial pivoting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/bdrate.h"

typedef struct curve {
    int n;
    double x[NNE_BD_MAX_POINTS], y[NNE_BD_MAX_POINTS];
} curve;

const char *nne_bd_method_name(nne_bd_method m) {
    return m == NNE_BD_CUBIC ? "cubic" : m == NNE_BD_PCHIP ? "pchip" : "?";
}

static int cmp_pair(const void *a, const void *b) {
    const double *p = a, *q = b;
    return p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : 0;
}

/* Build a curve sorted by x from (rate, q): log_x selects x = ln rate (else x = q). */
static nne_status make_curve(const double *rate, const double *q, int n, bool log_x, curve *c,
                             const char *which) {
    if (!rate || !q) return nne_error(NNE_ERR_INVALID_ARG, "bd: %s curve: NULL array", which);
    if (n < 4 || n > NNE_BD_MAX_POINTS)
        return nne_error(NNE_ERR_INVALID_ARG, "bd: %s curve has %d points, need 4..%d", which, n,
                         NNE_BD_MAX_POINTS);
    double pairs[NNE_BD_MAX_POINTS][2];
    for (int i = 0; i < n; i++) {
        if (!(rate[i] > 0) || !isfinite(rate[i]) || !isfinite(q[i]))
            return nne_error(NNE_ERR_INVALID_ARG, "bd: %s curve point %d: rate %g, quality %g",
                             which, i, rate[i], q[i]);
        const double lr = log(rate[i]);
        pairs[i][0] = log_x ? lr : q[i];
        pairs[i][1] = log_x ? q[i] : lr;
    }
    qsort(pairs, (size_t)n, sizeof pairs[0], cmp_pair);
    c->n = n;
    for (int i = 0; i < n; i++) {
        c->x[i] = pairs[i][0];
        c->y[i] = pairs[i][1];
    }
    return NNE_OK;
}

/* ---- Least-squares cubic -------------------------------------------------------------- */

typedef struct cubic {
    double c, s;  /* t = (x - c) / s */
    double a[4];  /* y = a0 + a1 t + a2 t^2 + a3 t^3 */
} cubic;

static nne_status fit_cubic(const curve *cv, cubic *f) {
    const double lo = cv->x[0], hi = cv->x[cv->n - 1];
    f->c = 0.5 * (lo + hi);
    f->s = hi > lo ? 0.5 * (hi - lo) : 1.0;
    double m[4][5] = {{0}}; /* normal equations [V^T V | V^T y] */
    for (int i = 0; i < cv->n; i++) {
        const double t = (cv->x[i] - f->c) / f->s;
        double p[7];
        p[0] = 1;
        for (int k = 1; k < 7; k++) p[k] = p[k - 1] * t;
        for (int r = 0; r < 4; r++) {
            for (int k = 0; k < 4; k++) m[r][k] += p[r + k];
            m[r][4] += p[r] * cv->y[i];
        }
    }
    for (int col = 0; col < 4; col++) {
        int piv = col;
        for (int r = col + 1; r < 4; r++)
            if (fabs(m[r][col]) > fabs(m[piv][col])) piv = r;
        if (!(fabs(m[piv][col]) > 1e-12 * fabs(m[0][0])))
            return nne_error(NNE_ERR_INVALID_ARG,
                             "bd: the points do not determine a cubic (fewer than 4 distinct)");
        if (piv != col)
            for (int k = 0; k < 5; k++) {
                const double tmp = m[col][k];
                m[col][k] = m[piv][k];
                m[piv][k] = tmp;
            }
        for (int r = col + 1; r < 4; r++) {
            const double g = m[r][col] / m[col][col];
            for (int k = col; k < 5; k++) m[r][k] -= g * m[col][k];
        }
    }
    for (int r = 3; r >= 0; r--) {
        double v = m[r][4];
        for (int k = r + 1; k < 4; k++) v -= m[r][k] * f->a[k];
        f->a[r] = v / m[r][r];
    }
    return NNE_OK;
}

/* Integral of the cubic from x = lo to x = hi. */
static double int_cubic(const cubic *f, double lo, double hi) {
    const double t0 = (lo - f->c) / f->s, t1 = (hi - f->c) / f->s;
    double F0 = 0, F1 = 0;
    for (int k = 3; k >= 0; k--) {
        F0 = (F0 + f->a[k] / (k + 1)) * t0;
        F1 = (F1 + f->a[k] / (k + 1)) * t1;
    }
    return (F1 - F0) * f->s;
}

/* ---- PCHIP ---------------------------------------------------------------------------- */

static double sgn(double v) { return v > 0 ? 1 : v < 0 ? -1 : 0; }

/* scipy's PchipInterpolator._edge_case: a three-point end slope, shape-preserving. */
static double pchip_edge(double h0, double h1, double m0, double m1) {
    double d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1);
    if (sgn(d) != sgn(m0))
        d = 0;
    else if (sgn(m0) != sgn(m1) && fabs(d) > 3 * fabs(m0))
        d = 3 * m0;
    return d;
}

static nne_status pchip_slopes(const curve *cv, double *d, const char *which) {
    const int n = cv->n;
    double h[NNE_BD_MAX_POINTS], m[NNE_BD_MAX_POINTS];
    for (int k = 0; k < n - 1; k++) {
        h[k] = cv->x[k + 1] - cv->x[k];
        if (!(h[k] > 0))
            return nne_error(NNE_ERR_INVALID_ARG,
                             "bd: %s curve: two points share the abscissa %g (pchip needs "
                             "distinct values)",
                             which, cv->x[k]);
        m[k] = (cv->y[k + 1] - cv->y[k]) / h[k];
    }
    for (int k = 1; k < n - 1; k++) {
        if (m[k - 1] * m[k] <= 0) {
            d[k] = 0; /* local extremum or flat: keep the interpolant monotone */
        } else {
            const double w1 = 2 * h[k] + h[k - 1], w2 = h[k] + 2 * h[k - 1];
            d[k] = (w1 + w2) / (w1 / m[k - 1] + w2 / m[k]);
        }
    }
    d[0] = pchip_edge(h[0], h[1], m[0], m[1]);
    d[n - 1] = pchip_edge(h[n - 2], h[n - 3], m[n - 2], m[n - 3]);
    return NNE_OK;
}

/* Integral of the Hermite interpolant from x[0] to x (x within [x[0], x[n-1]]). On a piece
 * of width h with u = (x - x_k) / h: p = y0 h00 + h d0 h10 + y1 h01 + h d1 h11, whose
 * integrals from 0 to u are given below. */
static double pchip_cumint(const curve *cv, const double *d, double x) {
    double sum = 0;
    for (int k = 0; k < cv->n - 1; k++) {
        const double x0 = cv->x[k], x1 = cv->x[k + 1], h = x1 - x0;
        if (x <= x0) break;
        const double u = x >= x1 ? 1.0 : (x - x0) / h;
        const double u2 = u * u, u3 = u2 * u, u4 = u3 * u;
        const double H00 = u4 / 2 - u3 + u, H10 = u4 / 4 - 2 * u3 / 3 + u2 / 2;
        const double H01 = -u4 / 2 + u3, H11 = u4 / 4 - u3 / 3;
        sum += h * (cv->y[k] * H00 + h * d[k] * H10 + cv->y[k + 1] * H01 + h * d[k + 1] * H11);
    }
    return sum;
}

/* ---- The common frame ----------------------------------------------------------------- */

/* Mean of (test fit - ref fit) over the common x interval. */
static nne_status bd_mean_gap(const double *ref_rate, const double *ref_q, int ref_n,
                              const double *test_rate, const double *test_q, int test_n,
                              nne_bd_method m, bool log_x, double *gap) {
    if (m != NNE_BD_CUBIC && m != NNE_BD_PCHIP)
        return nne_error(NNE_ERR_INVALID_ARG, "bd: unknown method %d", (int)m);
    if (!gap) return nne_error(NNE_ERR_INVALID_ARG, "bd: NULL result");
    curve a, b;
    nne_status s = make_curve(ref_rate, ref_q, ref_n, log_x, &a, "reference");
    if (!s) s = make_curve(test_rate, test_q, test_n, log_x, &b, "test");
    if (s) return s;
    const double lo = fmax(a.x[0], b.x[0]), hi = fmin(a.x[a.n - 1], b.x[b.n - 1]);
    if (!(hi > lo))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "bd: the curves do not overlap in %s (reference %g..%g, test %g..%g)",
                         log_x ? "log rate" : "quality", a.x[0], a.x[a.n - 1], b.x[0],
                         b.x[b.n - 1]);
    double ia, ib;
    if (m == NNE_BD_CUBIC) {
        cubic fa, fb;
        s = fit_cubic(&a, &fa);
        if (!s) s = fit_cubic(&b, &fb);
        if (s) return s;
        ia = int_cubic(&fa, lo, hi);
        ib = int_cubic(&fb, lo, hi);
    } else {
        double da[NNE_BD_MAX_POINTS], db[NNE_BD_MAX_POINTS];
        s = pchip_slopes(&a, da, "reference");
        if (!s) s = pchip_slopes(&b, db, "test");
        if (s) return s;
        ia = pchip_cumint(&a, da, hi) - pchip_cumint(&a, da, lo);
        ib = pchip_cumint(&b, db, hi) - pchip_cumint(&b, db, lo);
    }
    *gap = (ib - ia) / (hi - lo);
    return NNE_OK;
}

nne_status nne_bd_rate(const double *ref_rate, const double *ref_q, int ref_n,
                       const double *test_rate, const double *test_q, int test_n,
                       nne_bd_method m, double *bd_rate_pct) {
    double g;
    nne_status s =
        bd_mean_gap(ref_rate, ref_q, ref_n, test_rate, test_q, test_n, m, false, &g);
    if (s) return s;
    *bd_rate_pct = 100.0 * expm1(g);
    return NNE_OK;
}

nne_status nne_bd_quality(const double *ref_rate, const double *ref_q, int ref_n,
                          const double *test_rate, const double *test_q, int test_n,
                          nne_bd_method m, double *bd_db) {
    return bd_mean_gap(ref_rate, ref_q, ref_n, test_rate, test_q, test_n, m, true, bd_db);
}
