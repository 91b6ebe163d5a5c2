/* Integer CDF tables: quantization of a PMF (docs/bitstream.md, "CDF quantization"), table
 * sets, the factorized prior and the Gaussian conditional, and the scale-index searches. */
#include <math.h>
#include <string.h>

#include "nnedge/entropy.h"

/* ---- Table sets ---- */

void nne_cdf_set_free(nne_cdf_set *s) {
    if (!s) return;
    nne_free(s->offset);
    nne_free(s->length);
    nne_free(s->start);
    nne_free(s->cdf);
    memset(s, 0, sizeof *s);
}

static int32_t max_length(int32_t precision) {
    const int64_t t = (int64_t)1 << precision;
    return t < NNE_CDF_MAX_SYMBOLS ? (int32_t)t : NNE_CDF_MAX_SYMBOLS;
}

nne_status nne_cdf_set_create(int32_t n_tables, const int32_t *length, int32_t precision,
                              nne_cdf_set *out) {
    memset(out, 0, sizeof *out);
    if (n_tables < 1 || n_tables > NNE_CDF_MAX_TABLES || !length)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: %d tables (expected 1..%d)", n_tables,
                         NNE_CDF_MAX_TABLES);
    if (precision < 1 || precision > NNE_CDF_PRECISION_MAX)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: precision %d out of range [1, %d]",
                         precision, NNE_CDF_PRECISION_MAX);
    size_t total = 0;
    for (int32_t t = 0; t < n_tables; t++) {
        if (length[t] < 2 || length[t] > max_length(precision))
            return nne_error(NNE_ERR_INVALID_ARG,
                             "entropy: table %d has %d symbols (expected 2..%d at %d-bit "
                             "precision, escape included)",
                             t, length[t], max_length(precision), precision);
        total += (size_t)length[t] + 1; /* <= 2^16 * (2^16 + 1): no overflow */
    }
    out->offset = nne_calloc((size_t)n_tables, sizeof *out->offset);
    out->length = nne_calloc((size_t)n_tables, sizeof *out->length);
    out->start = nne_calloc((size_t)n_tables, sizeof *out->start);
    out->cdf = nne_calloc(total, sizeof *out->cdf);
    if (!out->offset || !out->length || !out->start || !out->cdf) {
        nne_cdf_set_free(out);
        return NNE_ERR_NOMEM;
    }
    out->n_tables = n_tables;
    out->precision = precision;
    out->cdf_size = total;
    uint32_t pos = 0;
    for (int32_t t = 0; t < n_tables; t++) {
        out->length[t] = length[t];
        out->start[t] = pos;
        pos += (uint32_t)length[t] + 1;
    }
    return NNE_OK;
}

nne_status nne_cdf_set_validate(const nne_cdf_set *s) {
    if (!s || !s->offset || !s->length || !s->start || !s->cdf)
        return nne_error(NNE_ERR_FORMAT, "entropy: CDF set is missing arrays");
    if (s->n_tables < 1 || s->n_tables > NNE_CDF_MAX_TABLES)
        return nne_error(NNE_ERR_FORMAT, "entropy: CDF set has %d tables (expected 1..%d)",
                         s->n_tables, NNE_CDF_MAX_TABLES);
    if (s->precision < 1 || s->precision > NNE_CDF_PRECISION_MAX)
        return nne_error(NNE_ERR_FORMAT, "entropy: CDF precision %d out of range [1, %d]",
                         s->precision, NNE_CDF_PRECISION_MAX);
    const uint32_t total = 1u << s->precision;
    size_t pos = 0;
    for (int32_t t = 0; t < s->n_tables; t++) {
        const int32_t len = s->length[t];
        if (len < 2 || len > max_length(s->precision))
            return nne_error(NNE_ERR_FORMAT,
                             "entropy: CDF table %d has %d symbols (expected 2..%d, escape "
                             "included)",
                             t, len, max_length(s->precision));
        if (s->start[t] != pos || pos + (size_t)len + 1 > s->cdf_size)
            return nne_error(NNE_ERR_FORMAT,
                             "entropy: CDF table %d does not start at entry %zu or runs past the "
                             "%zu entries",
                             t, pos, s->cdf_size);
        const uint32_t *c = s->cdf + pos;
        if (c[0] != 0 || c[len] != total)
            return nne_error(NNE_ERR_FORMAT,
                             "entropy: CDF table %d runs from %u to %u (expected 0 to %u)", t, c[0],
                             c[len], total);
        for (int32_t i = 0; i < len; i++)
            if (c[i + 1] <= c[i])
                return nne_error(NNE_ERR_FORMAT,
                                 "entropy: CDF table %d: symbol %d has frequency 0 (entries %u, "
                                 "%u)",
                                 t, i, c[i], c[i + 1]);
        pos += (size_t)len + 1;
    }
    if (pos != s->cdf_size)
        return nne_error(NNE_ERR_FORMAT, "entropy: CDF set has %zu entries, its tables use %zu",
                         s->cdf_size, pos);
    return NNE_OK;
}

/* ---- Quantization ---- */

/* A binary max-heap of symbol indices ordered by key[], ties to the lower index, so the
 * greedy below is fully deterministic. */
typedef struct heap {
    int32_t *h;
    int32_t n;
    const double *key;
} heap;

static bool heap_before(const heap *hp, int32_t a, int32_t b) {
    return hp->key[a] > hp->key[b] || (hp->key[a] == hp->key[b] && a < b);
}

static void heap_sift_down(heap *hp, int32_t i) {
    for (;;) {
        int32_t best = i;
        const int32_t l = 2 * i + 1, r = l + 1;
        if (l < hp->n && heap_before(hp, hp->h[l], hp->h[best])) best = l;
        if (r < hp->n && heap_before(hp, hp->h[r], hp->h[best])) best = r;
        if (best == i) return;
        const int32_t tmp = hp->h[i];
        hp->h[i] = hp->h[best];
        hp->h[best] = tmp;
        i = best;
    }
}

static void heap_build(heap *hp) {
    for (int32_t i = hp->n / 2; i-- > 0;) heap_sift_down(hp, i);
}

/* Algorithm (docs/bitstream.md): with total T = 2^precision and m = n + 1 symbols,
 *  1. q[i] = p[i] * (T / sum p): the ideal real frequencies;
 *  2. f[i] = max(1, floor(q[i])): every symbol codable;
 *  3. while sum f < T: add 1 to the symbol with the largest q[i] / (f[i] + 1/2);
 *     while sum f > T: take 1 from the symbol with f[i] > 1 and the smallest q[i] / (f[i] - 1/2).
 * q / (f +- 1/2) approximates q * |ln((f +- 1) / f)|, the change in expected code length,
 * without libm, so the greedy minimises the coding loss step by step; ties go to the lower
 * index. Step 3 only runs in one direction, at most m - 1 times (step 2 loses < 1 per symbol
 * and adds < 1 per bumped symbol), and at most sum(f - 1) = F - m >= F - T decrements are
 * available because m <= T. */
nne_status nne_cdf_quantize(const double *pmf, int32_t n, double tail, int32_t precision,
                            uint32_t *cdf) {
    if (precision < 1 || precision > NNE_CDF_PRECISION_MAX)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: precision %d out of range [1, %d]",
                         precision, NNE_CDF_PRECISION_MAX);
    if (n < 1 || n + 1 > max_length(precision) || !pmf || !cdf)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "entropy: a PMF of %d symbols (plus the escape) does not fit a %d-bit "
                         "table of at most %d symbols",
                         n, precision, max_length(precision));
    const int32_t m = n + 1;
    double sum = 0;
    for (int32_t i = 0; i < m; i++) {
        const double p = i < n ? pmf[i] : tail;
        if (!(p >= 0) || !isfinite(p))
            return nne_error(NNE_ERR_INVALID_ARG, "entropy: probability %d is %g", i, p);
        sum += p;
    }
    if (!(sum > 0) || !isfinite(sum))
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: probabilities sum to %g", sum);

    double *q = nne_malloc((size_t)m * 2 * sizeof *q);
    int32_t *f = nne_malloc((size_t)m * sizeof *f);
    int32_t *h = nne_malloc((size_t)m * sizeof *h);
    if (!q || !f || !h) {
        nne_free(q);
        nne_free(f);
        nne_free(h);
        return NNE_ERR_NOMEM;
    }
    double *key = q + m;
    const int64_t total = (int64_t)1 << precision;
    const double scale = (double)total / sum;
    int64_t fsum = 0;
    for (int32_t i = 0; i < m; i++) {
        q[i] = (i < n ? pmf[i] : tail) * scale;
        const double fl = floor(q[i]);
        f[i] = fl < 1 ? 1 : fl > (double)total ? (int32_t)total : (int32_t)fl;
        fsum += f[i];
    }
    heap hp = {h, 0, key};
    if (fsum < total) {
        for (int32_t i = 0; i < m; i++) {
            key[i] = q[i] / (f[i] + 0.5);
            h[hp.n++] = i;
        }
        heap_build(&hp);
        for (; fsum < total; fsum++) {
            const int32_t i = h[0];
            f[i]++;
            key[i] = q[i] / (f[i] + 0.5);
            heap_sift_down(&hp, 0);
        }
    } else if (fsum > total) {
        for (int32_t i = 0; i < m; i++)
            if (f[i] > 1) {
                key[i] = -q[i] / (f[i] - 0.5); /* max-heap of -cost: cheapest first */
                h[hp.n++] = i;
            }
        heap_build(&hp);
        for (; fsum > total; fsum--) {
            const int32_t i = h[0]; /* hp.n > 0: see the capacity argument above */
            f[i]--;
            if (f[i] > 1) {
                key[i] = -q[i] / (f[i] - 0.5);
            } else {
                h[0] = h[--hp.n];
            }
            heap_sift_down(&hp, 0);
        }
    }
    cdf[0] = 0;
    for (int32_t i = 0; i < m; i++) cdf[i + 1] = cdf[i] + (uint32_t)f[i];
    nne_free(q);
    nne_free(f);
    nne_free(h);
    if (cdf[m] != (uint32_t)total) /* unreachable: the loops above end at fsum == total */
        return nne_error(NNE_ERR_INTERNAL, "entropy: quantized CDF sums to %u", cdf[m]);
    return NNE_OK;
}

/* ---- Factorized prior ---- */

nne_status nne_cdf_set_factorized(int32_t channels, const double *pmfs, const int32_t *pmf_length,
                                  const int32_t *offset, const double *tail, int32_t precision,
                                  nne_cdf_set *out) {
    memset(out, 0, sizeof *out);
    if (channels < 1 || channels > NNE_CDF_MAX_TABLES || !pmfs || !pmf_length || !offset)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: factorized prior: %d channels", channels);
    int32_t *len = nne_malloc((size_t)channels * sizeof *len);
    if (!len) return NNE_ERR_NOMEM;
    for (int32_t c = 0; c < channels; c++) {
        /* +1 for the escape; a length over the limit is refused by nne_cdf_set_create. */
        len[c] = pmf_length[c] < 1 || pmf_length[c] >= NNE_CDF_MAX_SYMBOLS ? 0 : pmf_length[c] + 1;
    }
    nne_status s = nne_cdf_set_create(channels, len, precision, out);
    nne_free(len);
    if (s) return s;
    size_t p = 0;
    for (int32_t c = 0; c < channels; c++) {
        const int32_t n = pmf_length[c];
        s = nne_cdf_quantize(pmfs + p, n, tail ? tail[c] : 0.0, precision,
                             out->cdf + out->start[c]);
        if (s) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", nne_last_error());
            nne_cdf_set_free(out);
            return nne_error(s, "%s (channel %d)", msg, c);
        }
        out->offset[c] = offset[c];
        p += (size_t)n;
    }
    return NNE_OK;
}

/* ---- Gaussian conditional ---- */

void nne_gauss_scale_table(double *scales, int32_t n) {
    if (n < 2) {
        if (n == 1) scales[0] = NNE_GAUSS_SCALE_MIN;
        return;
    }
    const double lo = log(NNE_GAUSS_SCALE_MIN), hi = log(NNE_GAUSS_SCALE_MAX);
    for (int32_t j = 0; j < n; j++) scales[j] = exp(lo + (double)j * (hi - lo) / (double)(n - 1));
    scales[0] = NNE_GAUSS_SCALE_MIN; /* exact end points, whatever exp(log(x)) rounds to */
    scales[n - 1] = NNE_GAUSS_SCALE_MAX;
}

/* Standard normal CDF. */
static double phi(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

/* z with 2 * Phi(-z) = tail_mass, by bisection (erfc is decreasing; 0 < tail_mass < 1). */
static double tail_quantile(double tail_mass) {
    double lo = 0, hi = 40;
    for (int it = 0; it < 200; it++) {
        const double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (2 * phi(-mid) > tail_mass)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

nne_status nne_cdf_set_gaussian(const double *scales, int32_t n, double tail_mass,
                                int32_t precision, nne_cdf_set *out) {
    memset(out, 0, sizeof *out);
    if (n < 1 || n > NNE_CDF_MAX_TABLES || !scales)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: gaussian: %d scales", n);
    if (!(tail_mass > 0 && tail_mass < 1))
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: gaussian: tail mass %g not in (0, 1)",
                         tail_mass);
    for (int32_t j = 0; j < n; j++)
        if (!(scales[j] > 0) || !isfinite(scales[j]) || (j > 0 && !(scales[j] > scales[j - 1])))
            return nne_error(NNE_ERR_INVALID_ARG,
                             "entropy: gaussian: scale %d (%g) is not finite, positive and "
                             "larger than the previous one",
                             j, scales[j]);
    const double z = tail_quantile(tail_mass);
    int32_t *len = nne_malloc((size_t)n * sizeof *len);
    if (!len) return NNE_ERR_NOMEM;
    int32_t kmax = 0;
    for (int32_t j = 0; j < n; j++) {
        const double k = ceil(scales[j] * z);
        /* 2K + 1 values + escape; an oversized table is refused by nne_cdf_set_create. */
        len[j] = k > (double)NNE_CDF_MAX_SYMBOLS ? NNE_CDF_MAX_SYMBOLS + 1 : 2 * (int32_t)k + 2;
        if (len[j] / 2 - 1 > kmax) kmax = len[j] / 2 - 1;
    }
    nne_status s = nne_cdf_set_create(n, len, precision, out);
    nne_free(len);
    if (s) return s;
    double *pmf = nne_malloc(((size_t)2 * (size_t)kmax + 1) * sizeof *pmf);
    if (!pmf) {
        nne_cdf_set_free(out);
        return NNE_ERR_NOMEM;
    }
    for (int32_t j = 0; j < n && !s; j++) {
        const int32_t k = out->length[j] / 2 - 1;
        const double sd = scales[j];
        /* Symmetric by construction: both halves come from |v|, and from the lower tail of
         * the Gaussian where erfc keeps full relative precision. */
        for (int32_t i = 0; i <= 2 * k; i++) {
            const double a = fabs((double)(i - k));
            pmf[i] = phi((0.5 - a) / sd) - phi((-0.5 - a) / sd);
        }
        const double tail = 2 * phi((-0.5 - (double)k) / sd);
        out->offset[j] = -k;
        s = nne_cdf_quantize(pmf, 2 * k + 1, tail, precision, out->cdf + out->start[j]);
    }
    nne_free(pmf);
    if (s) nne_cdf_set_free(out);
    return s;
}

int32_t nne_gauss_scale_index(const double *scales, int32_t n, double scale) {
    /* First j in [0, n - 1) with scale <= scales[j]; n - 1 otherwise (NaN compares false). */
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (scale <= scales[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < 0 ? 0 : lo;
}

int32_t nne_entropy_index_search(const int32_t *thr, int32_t n_thr, int32_t q) {
    int32_t lo = 0, hi = n_thr;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (q <= thr[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

nne_status nne_gauss_scale_thresholds(const double *scales, int32_t n, int32_t frac_bits,
                                      int32_t *thr) {
    if (frac_bits < 0 || frac_bits > 24)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: %d fractional bits (expected 0..24)",
                         frac_bits);
    for (int32_t j = 0; j + 1 < n; j++) {
        const double v = floor(ldexp(scales[j], frac_bits)); /* exact: a power-of-two scale */
        if (!(v >= 0 && v <= (double)INT32_MAX))
            return nne_error(NNE_ERR_INVALID_ARG,
                             "entropy: scale %g does not fit %d fractional bits in int32",
                             scales[j], frac_bits);
        thr[j] = (int32_t)v;
    }
    return NNE_OK;
}

double nne_entropy_cost_bits(const nne_cdf_set *set, const int32_t *values, const int32_t *index,
                             const int32_t *means, size_t n) {
    double bits = 0;
    for (size_t i = 0; i < n; i++) {
        const int32_t t = index[i], e = set->length[t] - 1;
        const uint32_t *cdf = set->cdf + set->start[t];
        /* int64: value - mean - offset spans 2^33 (docs/bitstream.md, "Escape code"). */
        const int64_t v = (int64_t)values[i] - (means ? means[i] : 0) - set->offset[t];
        if (v >= 0 && v < e) {
            bits += set->precision - log2((double)(cdf[v + 1] - cdf[v]));
            continue;
        }
        bits += set->precision - log2((double)(cdf[e + 1] - cdf[e])) + 4;
        for (uint64_t raw = v < 0 ? (uint64_t)(-2 * v - 1) : (uint64_t)(2 * (v - e)); raw;
             raw >>= 4)
            bits += 4;
    }
    return bits;
}
