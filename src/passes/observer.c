/* Calibration observers: a growing power-of-two histogram per tensor, and the rules that turn
 * it into a clipping range (min-max, percentile, MSE-optimal, TensorRT's KL) and into s8
 * parameters (docs/quantization.md, "Calibration"). */
#include <math.h>
#include <string.h>

#include "nnedge/passes.h"
#include "nnedge/qops.h"

static const char *const k_observer_names[] = {"minmax", "percentile", "mse", "kl"};

const char *nne_observer_name(nne_observer_kind k) {
    return (unsigned)k < 4 ? k_observer_names[k] : NULL;
}

nne_status nne_observer_from_name(const char *name, nne_observer_kind *k) {
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, k_observer_names[i]) == 0) {
            *k = (nne_observer_kind)i;
            return NNE_OK;
        }
    return nne_error(NNE_ERR_INVALID_ARG, "unknown observer '%s' (minmax, percentile, mse, kl)",
                     name ? name : "");
}

void nne_histogram_init(nne_histogram *h) {
    memset(h, 0, sizeof *h);
    h->min = INFINITY;
    h->max = -INFINITY;
}

/* Double the range: with N bins over [-R, R] (width w = 2R/N), old bin j covers
 * [-R + j w, -R + (j+1) w], which is new bin N/4 + floor(j/2) of width 2w over [-2R, 2R]
 * (because R = N w / 2 and N % 4 == 0): the merge is exact. */
static void hist_grow(nne_histogram *h) {
    uint64_t nb[NNE_HIST_BINS] = {0};
    for (int j = 0; j < NNE_HIST_BINS; j++) nb[NNE_HIST_BINS / 4 + j / 2] += h->bins[j];
    memcpy(h->bins, nb, sizeof nb);
    h->range *= 2.0f;
}

void nne_histogram_add(nne_histogram *h, const float *x, size_t n) {
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        amax = fmaxf(amax, fabsf(x[i]));
        if (x[i] < h->min) h->min = x[i];
        if (x[i] > h->max) h->max = x[i];
    }
    if (h->range == 0.0f) {
        /* Smallest power of two >= amax (2^-40 for all-zero data, so bin 0 is exact). */
        int e = 0;
        frexpf(amax, &e);
        h->range = amax > 0.0f ? ldexpf(1.0f, e) : ldexpf(1.0f, -40);
    }
    while (amax > h->range) hist_grow(h);
    const double inv_w = NNE_HIST_BINS / (2.0 * h->range);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            h->nonfinite++;
            continue;
        }
        int64_t b = (int64_t)floor(((double)x[i] + h->range) * inv_w);
        b = b < 0 ? 0 : b >= NNE_HIST_BINS ? NNE_HIST_BINS - 1 : b;
        h->bins[b]++;
        h->total++;
    }
}

static double bin_width(const nne_histogram *h) { return 2.0 * h->range / NNE_HIST_BINS; }
static double bin_center(const nne_histogram *h, int b) {
    return -(double)h->range + (b + 0.5) * bin_width(h);
}

double nne_histogram_qerror(const nne_histogram *h, float scale, int32_t zero_point, bool pow2) {
    if (!h->total) return 0.0;
    double err = 0.0;
    for (int b = 0; b < NNE_HIST_BINS; b++) {
        if (!h->bins[b]) continue;
        const double c = bin_center(h, b);
        const int32_t q = nne_quantize_value((float)c, scale, zero_point, -128, 127, pow2);
        const double d = c - (double)(q - zero_point) * scale;
        err += (double)h->bins[b] * d * d;
    }
    return err / (double)h->total;
}

int32_t nne_histogram_pow2_fp(const nne_histogram *h, float lo, float hi) {
    float s0;
    int32_t zp, fp0;
    nne_qparams_from_range(lo, hi, true, true, &s0, &zp);
    nne_quant_pow2_shift(s0, &fp0);
    int32_t best = fp0;
    double best_err = INFINITY;
    for (int32_t fp = fp0; fp <= fp0 + 3; fp++) {
        const double e = nne_histogram_qerror(h, ldexpf(1.0f, -fp), 0, true);
        if (e < best_err) { /* ties keep the coarser (non-clipping) position */
            best_err = e;
            best = fp;
        }
    }
    return best;
}

/* Value below which a fraction q of the histogram lies (linear within a bin). */
static double quantile(const nne_histogram *h, double q) {
    const double target = q * (double)h->total;
    double cum = 0.0;
    for (int b = 0; b < NNE_HIST_BINS; b++) {
        const double next = cum + (double)h->bins[b];
        if (next >= target && h->bins[b]) {
            const double f = (target - cum) / (double)h->bins[b];
            return -(double)h->range + (b + f) * bin_width(h);
        }
        cum = next;
    }
    return h->range;
}

/* MSE-optimal range: a grid over the shrink factors of both ends (affine) or of the
 * symmetric bound, each candidate scored with the exact s8 grid it would get. */
static void range_mse(const nne_histogram *h, bool symmetric, float *lo, float *hi) {
    const float lo0 = fminf((float)h->min, 0.0f), hi0 = fmaxf((float)h->max, 0.0f);
    const int steps = symmetric ? 256 : 64;
    double best = INFINITY;
    float blo = lo0, bhi = hi0;
    for (int i = steps; i >= 1; i--) {
        const float a = (float)i / steps;
        for (int j = symmetric ? i : steps; j >= (symmetric ? i : 1); j--) {
            const float b = (float)j / steps;
            const float cl = symmetric ? -fmaxf(-lo0, hi0) * a : lo0 * a;
            const float ch = symmetric ? fmaxf(-lo0, hi0) * a : hi0 * b;
            float s;
            int32_t z;
            nne_qparams_from_range(cl, ch, symmetric, false, &s, &z);
            const double e = nne_histogram_qerror(h, s, z, false);
            if (e < best) {
                best = e;
                blo = cl;
                bhi = ch;
            }
        }
    }
    *lo = blo;
    *hi = bhi;
}

/* TensorRT entropy calibration on the |x| histogram (M = NNE_HIST_BINS / 2 bins over
 * [0, range]): for each threshold i >= levels bins, P = the first i bins with the outliers
 * folded into bin i - 1, Q = the first i bins merged into `levels` groups and spread evenly
 * over each group's non-empty bins; the threshold minimizing KL(P || Q) wins. */
static double range_kl(const nne_histogram *h, int levels) {
    enum { M = NNE_HIST_BINS / 2 };
    static _Thread_local double a[M], p[M], qd[M];
    double total = 0.0;
    for (int k = 0; k < M; k++) {
        a[k] = (double)(h->bins[M + k] + h->bins[M - 1 - k]);
        total += a[k];
    }
    const double w = (double)h->range / M;
    if (total == 0.0) return 0.0;
    int last = M; /* past the last non-empty bin */
    while (last > 0 && a[last - 1] == 0.0) last--;
    if (last <= levels) return last * w;
    double best = INFINITY;
    int best_i = last;
    double tail = 0.0;
    for (int k = levels; k < M; k++) tail += a[k];
    for (int i = levels; i <= last; i++) {
        if (i > levels) tail -= a[i - 1];
        for (int k = 0; k < i; k++) p[k] = a[k];
        p[i - 1] += tail; /* outliers clipped into the last bin */
        for (int j = 0; j < levels; j++) {
            const int s = (int)((int64_t)j * i / levels), e = (int)((int64_t)(j + 1) * i / levels);
            double sum = 0.0;
            int nz = 0;
            for (int k = s; k < e; k++) {
                sum += a[k];
                nz += a[k] != 0.0;
            }
            for (int k = s; k < e; k++) qd[k] = a[k] != 0.0 ? sum / nz : 0.0;
        }
        double ps = 0.0, qs = 0.0;
        for (int k = 0; k < i; k++) {
            ps += p[k];
            qs += qd[k];
        }
        double kl = 0.0;
        for (int k = 0; k < i && qs > 0.0; k++) {
            if (p[k] == 0.0) continue;
            const double pk = p[k] / ps, qk = fmax(qd[k] / qs, 1e-12); /* smoothing */
            kl += pk * log(pk / qk);
        }
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    return best_i * w;
}

nne_status nne_observer_range(const nne_histogram *h, const nne_observer_opts *o, float *lo,
                              float *hi) {
    *lo = *hi = 0.0f;
    double pct = o->percentile == 0.0 ? 99.99 : o->percentile;
    if (o->kind == NNE_OBSERVER_PERCENTILE && !(pct > 50.0 && pct <= 100.0))
        return nne_error(NNE_ERR_INVALID_ARG, "percentile %g outside (50, 100]", pct);
    if ((unsigned)o->kind > NNE_OBSERVER_KL)
        return nne_error(NNE_ERR_INVALID_ARG, "invalid observer %d", (int)o->kind);
    if (!h->total) return NNE_OK;
    double l = h->min, u = h->max;
    switch (o->kind) {
    case NNE_OBSERVER_MINMAX:
        break;
    case NNE_OBSERVER_PERCENTILE:
        l = fmax(h->min, quantile(h, 1.0 - pct / 100.0));
        u = fmin(h->max, quantile(h, pct / 100.0));
        break;
    case NNE_OBSERVER_MSE: {
        float fl, fu;
        range_mse(h, o->symmetric, &fl, &fu);
        l = fl;
        u = fu;
        break;
    }
    case NNE_OBSERVER_KL: {
        /* KL compares bin-level distributions; with fewer values than bins it measures
         * sampling noise, so small tensors keep their exact extremes. */
        if (h->total < NNE_HIST_BINS) break;
        const bool two_sided = h->min < 0.0 && h->max > 0.0;
        const double t = range_kl(h, o->symmetric || two_sided ? 128 : 256);
        l = fmax(h->min, -t);
        u = fmin(h->max, t);
        break;
    }
    }
    *lo = (float)fmin(l, 0.0);
    *hi = (float)fmax(u, 0.0);
    if (o->symmetric) {
        const float a = fmaxf(-*lo, *hi);
        *lo = -a;
        *hi = a;
    }
    return NNE_OK;
}
