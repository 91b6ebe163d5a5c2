/* bench_rans: throughput of the rANS symbol-stream coder (include/nnedge/entropy.h) on a
 * hyperprior-like latent, against a single-state rANS loop over the same per-symbol code (the
 * ryg_rans baseline the 2-way interleaving has to beat) and zstd on the same values.
 *
 *   bench_rans [--symbols N] [--reps R] [--seed S]
 *
 * Data. A y-latent of a 768x512 image through a 16x downsampling scale hyperprior:
 * 32 x 48 x 192 = 294,912 symbols (default N). Each of the 192 channels has a typical scale:
 * a third of them "dead" (sigma in [0.11, 0.3], as trained hyperpriors switch many channels
 * off), the rest log-uniform in [0.3, 40]; each element's scale is its channel's times a
 * log-normal factor exp(N(0, 0.5^2)). Values are round(N(0, sigma)), indexes the default
 * 64-scale Gaussian table (nne_gauss_scale_index), means 0. The same data for every
 * implementation.
 *
 * Method. Every implementation is checked first (decode == input; zstd decompresses back),
 * then each operation runs R times (default 21) after one warm-up; the table gives the median
 * and the min..max range. MB/s counts compressed bytes (written by the encoder, read by the
 * decoder), Msym/s symbols. Output: Markdown on stdout. Single-threaded. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "entropy/symbol.h"
#include "nnedge/entropy.h"

typedef struct data {
    size_t n;
    int32_t *values, *index, *back;
    int16_t *v16, *back16;
    uint8_t *buf;
    size_t cap;
    const nne_cdf_set *set;
} data;

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double uniform(void) { /* xorshift64*, [0, 1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static double normal(void) {
    const double u = uniform(), v = uniform();
    return sqrt(-2 * log(1 - u)) * cos(6.283185307179586 * v);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- The single-state peer: the same symbols and escapes on one rANS state. ---- */

static size_t enc_1way(const data *d) {
    const nne_cdf_set *s = d->set;
    nne_rans_out o = {d->buf, (ptrdiff_t)d->cap};
    uint32_t x;
    nne_rans_enc_init(&x);
    for (size_t i = d->n; i-- > 0;) {
        const int32_t t = d->index[i];
        nne_symbol_enc(&x, &o, s->cdf + s->start[t], s->length[t],
                       (int64_t)d->values[i] - s->offset[t], (uint32_t)s->precision);
    }
    nne_rans_enc_flush(&x, &o);
    if (o.pos < 0) return 0;
    const size_t size = d->cap - (size_t)o.pos;
    memmove(d->buf, d->buf + o.pos, size);
    return size;
}

static int dec_1way(const data *d, size_t size) {
    const nne_cdf_set *s = d->set;
    nne_rans_in in = {d->buf, 0, size};
    uint32_t x;
    if (!nne_rans_dec_init(&x, &in)) return 0;
    for (size_t i = 0; i < d->n; i++) {
        const int32_t t = d->index[i];
        int64_t v;
        if (!nne_symbol_dec(&x, &in, s->cdf + s->start[t], s->length[t], (uint32_t)s->precision,
                            &v))
            return 0;
        d->back[i] = (int32_t)(v + s->offset[t]);
    }
    return in.pos == size && x == NNE_RANS_L;
}

/* ---- Timing ---- */

typedef struct result {
    double med, lo, hi; /* seconds */
} result;

#define MAX_REPS 1001

typedef enum op { ENC2, DEC2, ENC1, DEC1, ZENC3, ZDEC3, ZENC19, ZDEC19 } op;

static size_t g_size[8]; /* compressed size per encoder, for the decoders */

static int run_op(data *d, op k) {
    size_t out = 0;
    switch (k) {
    case ENC2:
        if (nne_entropy_encode(d->set, d->values, d->index, NULL, d->n, d->buf, d->cap, &out))
            return 0;
        g_size[ENC2] = out;
        return 1;
    case DEC2:
        return nne_entropy_decode(d->set, d->buf, g_size[ENC2], d->index, NULL, d->n, d->back) ==
               NNE_OK;
    case ENC1:
        return (g_size[ENC1] = enc_1way(d)) != 0;
    case DEC1:
        return dec_1way(d, g_size[ENC1]);
    case ZENC3:
    case ZENC19:
        out = ZSTD_compress(d->buf, d->cap, d->v16, d->n * 2, k == ZENC3 ? 3 : 19);
        if (ZSTD_isError(out)) return 0;
        g_size[k] = out;
        return 1;
    case ZDEC3:
    case ZDEC19:
        out = ZSTD_decompress(d->back16, d->n * 2, d->buf, g_size[k - 1]);
        return !ZSTD_isError(out) && out == d->n * 2;
    }
    return 0;
}

/* Run encoder `e` once to fill the buffer, check the decoder, then time both. */
static int bench_pair(data *d, op e, int reps, result *re, result *rd) {
    static double te[MAX_REPS], td[MAX_REPS];
    for (int r = -1; r < reps; r++) {
        uint64_t t0 = nne_time_ns();
        if (!run_op(d, e)) return 0;
        uint64_t t1 = nne_time_ns();
        memset(d->back, 0, d->n * sizeof *d->back);
        if (!run_op(d, (op)(e + 1))) return 0;
        uint64_t t2 = nne_time_ns();
        if (e == ZENC3 || e == ZENC19) {
            if (memcmp(d->back16, d->v16, d->n * 2)) return 0;
        } else if (memcmp(d->back, d->values, d->n * sizeof *d->back)) {
            return 0;
        }
        if (r >= 0) {
            te[r] = (double)(t1 - t0) * 1e-9;
            td[r] = (double)(t2 - t1) * 1e-9;
        }
    }
    qsort(te, (size_t)reps, sizeof te[0], cmp_double);
    qsort(td, (size_t)reps, sizeof td[0], cmp_double);
    *re = (result){te[reps / 2], te[0], te[reps - 1]};
    *rd = (result){td[reps / 2], td[0], td[reps - 1]};
    return 1;
}

static void row(const char *name, const char *opname, const result *r, size_t bytes, size_t n) {
    printf("| %s | %s | %.1f | %.1f | %.1f .. %.1f | %.2f |\n", name, opname,
           (double)bytes / r->med * 1e-6, (double)n / r->med * 1e-6, (double)bytes / r->hi * 1e-6,
           (double)bytes / r->lo * 1e-6, r->med * 1e3);
}

int main(int argc, char **argv) {
    size_t n = 32 * 48 * 192;
    int reps = 21;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--symbols") && i + 1 < argc)
            n = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            g_rng = (uint64_t)atoll(argv[++i]) | 1;
        else {
            fprintf(stderr, "usage: bench_rans [--symbols N] [--reps R] [--seed S]\n");
            return 2;
        }
    }
    if (n < 1 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "bench_rans: --symbols >= 1, --reps 1..%d\n", MAX_REPS);
        return 2;
    }
    double scales[NNE_GAUSS_SCALES];
    nne_gauss_scale_table(scales, NNE_GAUSS_SCALES);
    nne_cdf_set set;
    if (nne_cdf_set_gaussian(scales, NNE_GAUSS_SCALES, NNE_GAUSS_TAIL_MASS, 16, &set)) {
        fprintf(stderr, "bench_rans: %s\n", nne_last_error());
        return 1;
    }
    data d = {.n = n, .set = &set};
    d.values = malloc(n * 4);
    d.index = malloc(n * 4);
    d.back = malloc(n * 4);
    d.v16 = malloc(n * 2);
    d.back16 = malloc(n * 2);
    d.cap = nne_entropy_encode_bound(n);
    if (ZSTD_compressBound(n * 2) > d.cap) d.cap = ZSTD_compressBound(n * 2);
    d.buf = malloc(d.cap);
    if (!d.values || !d.index || !d.back || !d.v16 || !d.back16 || !d.buf) return 1;

    enum { C = 192 };
    double chan[C];
    for (int c = 0; c < C; c++)
        chan[c] = c % 3 == 0 ? 0.11 + 0.19 * uniform() : 0.3 * exp(uniform() * log(40 / 0.3));
    double ideal = 0, entropy_bits = 0;
    for (size_t i = 0; i < n; i++) {
        const double sd = chan[i % C] * exp(0.5 * normal());
        const double v = round(sd * normal());
        d.values[i] = (int32_t)v;
        d.v16[i] = (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
        d.index[i] = nne_gauss_scale_index(scales, NNE_GAUSS_SCALES, sd);
        const int32_t t = d.index[i];
        const uint32_t *cd = set.cdf + set.start[t];
        const int64_t s = (int64_t)d.values[i] - set.offset[t];
        const int64_t e = set.length[t] - 1;
        ideal += 16 - log2((double)(s >= 0 && s < e ? cd[s + 1] - cd[s] : cd[e + 1] - cd[e]));
        /* -log2 P(v) under the true Gaussian of this element, for reference. */
        const double a = fabs(v);
        double p = 0.5 * (erfc((a - 0.5) / sd / sqrt(2.0)) - erfc((a + 0.5) / sd / sqrt(2.0)));
        if (a == 0) p = erf(0.5 / sd / sqrt(2.0));
        entropy_bits -= log2(p > 1e-300 ? p : 1e-300);
    }

    printf("# bench_rans: %zu symbols, %d repetitions, median (min..max)\n\n", n, reps);
    result e2, d2, e1, d1, z3e, z3d, z19e, z19d;
    if (!bench_pair(&d, ENC2, reps, &e2, &d2) || !bench_pair(&d, ENC1, reps, &e1, &d1) ||
        !bench_pair(&d, ZENC3, reps < 5 ? reps : 5, &z3e, &z3d) ||
        !bench_pair(&d, ZENC19, 1, &z19e, &z19d)) {
        fprintf(stderr, "bench_rans: a round trip failed: %s\n", nne_last_error());
        return 1;
    }
    printf("Size: nne_entropy %zu bytes = %.4f bits/symbol; single-state %zu bytes; ideal under "
           "the quantized tables %.4f bits/symbol (coder overhead %+.3f%%); -log2 of the true "
           "Gaussians %.4f bits/symbol; zstd -3 %zu bytes, zstd -19 %zu bytes (int16 values).\n\n",
           g_size[ENC2], 8.0 * (double)g_size[ENC2] / (double)n, g_size[ENC1], ideal / (double)n,
           100 * (8.0 * (double)g_size[ENC2] - ideal) / ideal, entropy_bits / (double)n,
           g_size[ZENC3], g_size[ZENC19]);
    printf("| implementation | op | MB/s (compressed) | Msym/s | MB/s min..max | ms |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    row("nne_entropy (2-way rANS)", "encode", &e2, g_size[ENC2], n);
    row("nne_entropy (2-way rANS)", "decode", &d2, g_size[ENC2], n);
    row("single-state rANS", "encode", &e1, g_size[ENC1], n);
    row("single-state rANS", "decode", &d1, g_size[ENC1], n);
    row("zstd -3 (int16)", "compress", &z3e, g_size[ZENC3], n);
    row("zstd -3 (int16)", "decompress", &z3d, g_size[ZENC3], n);
    row("zstd -19 (int16, 1 run)", "compress", &z19e, g_size[ZENC19], n);
    row("zstd -19 (int16, 1 run)", "decompress", &z19d, g_size[ZENC19], n);
    free(d.values);
    free(d.index);
    free(d.back);
    free(d.v16);
    free(d.back16);
    free(d.buf);
    nne_cdf_set_free(&set);
    return 0;
}
