/* rANS symbol streams (include/nnedge/entropy.h, docs/bitstream.md "Symbol streams"): the
 * core coder at every precision, random round trips with random tables, escapes up to the
 * int32 limits, single-symbol alphabets, empty streams, compression within 1% of the entropy,
 * hostile streams (every truncation, bit flips, random bytes), buffer limits, determinism and
 * a golden vector that freezes the format. NNE_REGEN_GOLDEN=1 rewrites
 * tests/golden/entropy/stream_v1.bin. */
#include <math.h>
#include <string.h>

#include "entropy/rans.h"
#include "nnedge/entropy.h"
#include "testutil.h"
#include "toy_codec.h"

/* The core coder alone: random symbols of random tables at every precision 1..16, one state,
 * plus raw bits; decode in reverse-of-encode order. */
static void test_core(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 1);
    enum { N = 3000 };
    static uint32_t start[N], freq[N], bits[N];
    static uint8_t buf[N * 4 + 16];
    for (uint32_t b = 1; b <= NNE_RANS_MAX_BITS; b++) {
        for (int i = 0; i < N; i++) {
            bits[i] = i % 3 == 2 ? (uint32_t)nne_test_rng_int(&r, 1, 16) : b;
            const uint32_t t = 1u << bits[i];
            freq[i] = 1 + (uint32_t)(nne_test_rng_u64(&r) % t);
            start[i] = (uint32_t)(nne_test_rng_u64(&r) % (t - freq[i] + 1));
        }
        nne_rans_out o = {buf, (ptrdiff_t)sizeof buf};
        uint32_t x;
        nne_rans_enc_init(&x);
        for (int i = N; i-- > 0;) nne_rans_enc_put(&x, &o, start[i], freq[i], bits[i]);
        nne_rans_enc_flush(&x, &o);
        CHECK(o.pos >= 0);
        nne_rans_in in = {buf + o.pos, 0, sizeof buf - (size_t)o.pos};
        CHECK(nne_rans_dec_init(&x, &in));
        int bad = 0;
        for (int i = 0; i < N; i++) {
            const uint32_t cum = nne_rans_dec_get(x, bits[i]);
            bad += cum < start[i] || cum >= start[i] + freq[i];
            nne_rans_dec_advance(&x, &in, start[i], freq[i], bits[i]);
        }
        CHECK_MSG(bad == 0 && x == NNE_RANS_L && in.pos == in.size, "bits %u: %d bad", b, bad);
    }
    /* States outside [L, 2^31) are refused (the decoder could not terminate on x = 0). */
    const uint8_t zero[4] = {0, 0, 0, 0}, big[4] = {0, 0, 0, 0x80}, low[4] = {0xff, 0xff, 0x7f, 0};
    uint32_t x;
    nne_rans_in in0 = {zero, 0, 4}, in1 = {big, 0, 4}, in2 = {low, 0, 4}, in3 = {zero, 0, 3};
    CHECK(!nne_rans_dec_init(&x, &in0));
    CHECK(!nne_rans_dec_init(&x, &in1));
    CHECK(!nne_rans_dec_init(&x, &in2));
    CHECK(!nne_rans_dec_init(&x, &in3));
}

/* A random table set: n_tables tables of random lengths and shapes at `prec` bits. */
static void random_set(nne_test_rng *r, int32_t n_tables, int32_t prec, int32_t max_len,
                       nne_cdf_set *set) {
    int32_t *len = nne_malloc((size_t)n_tables * sizeof *len);
    int32_t *off = nne_malloc((size_t)n_tables * sizeof *off);
    double *tail = nne_malloc((size_t)n_tables * sizeof *tail);
    double *pmf = nne_malloc((size_t)n_tables * (size_t)max_len * sizeof *pmf);
    size_t p = 0;
    int32_t cap = (1 << prec) - 1;
    if (cap > max_len) cap = max_len;
    for (int32_t t = 0; t < n_tables; t++) {
        len[t] = nne_test_rng_int(r, 1, cap);
        off[t] = nne_test_rng_int(r, -100, 100) - len[t] / 2;
        tail[t] = nne_test_rng_uniform(r) * 0.05;
        const double decay = nne_test_rng_uniform(r);
        for (int32_t i = 0; i < len[t]; i++)
            pmf[p++] = exp(-decay * fabs(i - len[t] / 2.0)) * (0.5 + nne_test_rng_uniform(r));
    }
    CHECK_OK(nne_cdf_set_factorized(n_tables, pmf, len, off, tail, prec, set));
    nne_free(len);
    nne_free(off);
    nne_free(tail);
    nne_free(pmf);
}

/* Draw a value from table t's quantized distribution (escape: a random out-of-range value). */
static int32_t draw(nne_test_rng *r, const nne_cdf_set *set, int32_t t) {
    const uint32_t *c = set->cdf + set->start[t];
    const uint32_t u = (uint32_t)(nne_test_rng_u64(r) % (1u << set->precision));
    int32_t s = 0;
    while (c[s + 1] <= u) s++;
    if (s < set->length[t] - 1) return set->offset[t] + s;
    const int64_t far = nne_test_rng_int(r, 0, 3) == 0 ? (int64_t)nne_test_rng_int(r, 0, 1 << 30)
                                                       : nne_test_rng_int(r, 0, 20);
    const int64_t v = nne_test_rng_int(r, 0, 1)
                          ? (int64_t)set->offset[t] - 1 - far
                          : (int64_t)set->offset[t] + set->length[t] - 1 + far;
    return (int32_t)(v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);
}

typedef struct stream_case {
    size_t n;
    int32_t *values, *index, *means, *back;
    uint8_t *buf;
    size_t cap, size;
} stream_case;

static void case_alloc(stream_case *c, size_t n) {
    memset(c, 0, sizeof *c);
    c->n = n;
    const size_t m = n ? n : 1;
    c->values = nne_calloc(m, sizeof(int32_t));
    c->index = nne_calloc(m, sizeof(int32_t));
    c->means = nne_calloc(m, sizeof(int32_t));
    c->back = nne_calloc(m, sizeof(int32_t));
    c->cap = nne_entropy_encode_bound(n);
    c->buf = nne_malloc(c->cap);
}

static void case_free(stream_case *c) {
    nne_free(c->values);
    nne_free(c->index);
    nne_free(c->means);
    nne_free(c->back);
    nne_free(c->buf);
}

/* Encode, then decode from an exact-size copy (so ASan sees any over-read); true if equal. */
static bool round_trip(const nne_cdf_set *set, stream_case *c, bool use_means) {
    const int32_t *means = use_means ? c->means : NULL;
    nne_status s =
        nne_entropy_encode(set, c->values, c->index, means, c->n, c->buf, c->cap, &c->size);
    CHECK_OK(s);
    if (s) return false;
    CHECK(c->size <= c->cap);
    uint8_t *exact = nne_malloc(c->size ? c->size : 1);
    memcpy(exact, c->buf, c->size);
    s = nne_entropy_decode(set, exact, c->size, c->index, means, c->n, c->back);
    CHECK_OK(s);
    nne_free(exact);
    return s == NNE_OK && memcmp(c->values, c->back, c->n * sizeof(int32_t)) == 0;
}

static void test_random_round_trips(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 2);
    int failures = 0;
    for (int it = 0; it < 120; it++) {
        const int32_t prec = nne_test_rng_int(&r, 1, 16);
        const int32_t n_tables = nne_test_rng_int(&r, 1, 12);
        nne_cdf_set set;
        random_set(&r, n_tables, prec, 300, &set);
        if (!set.cdf) return;
        stream_case c;
        case_alloc(&c, (size_t)nne_test_rng_int(&r, 0, 4000));
        for (size_t i = 0; i < c.n; i++) {
            c.index[i] = nne_test_rng_int(&r, 0, n_tables - 1);
            c.means[i] = nne_test_rng_int(&r, -1000, 1000);
            c.values[i] = draw(&r, &set, c.index[i]);
        }
        const bool use_means = it % 2;
        if (use_means)
            for (size_t i = 0; i < c.n; i++) {
                const int64_t v = (int64_t)c.values[i] + c.means[i];
                c.values[i] = (int32_t)(v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);
            }
        failures += !round_trip(&set, &c, use_means);
        case_free(&c);
        nne_cdf_set_free(&set);
    }
    CHECK_MSG(failures == 0, "%d round trips failed", failures);
}

/* A small fixed set: table 0 a 3-value alphabet, table 1 a single-symbol alphabet. */
static void small_set(nne_cdf_set *set, int32_t prec) {
    const double pmfs[4] = {1, 6, 1, 1};
    const int32_t lens[2] = {3, 1}, offs[2] = {-1, 5};
    CHECK_OK(nne_cdf_set_factorized(2, pmfs, lens, offs, NULL, prec, set));
}

/* Escapes: values at the int32 limits, with means at the opposite limits (so value - mean
 * spans 33 bits), all-escape streams, and single-symbol alphabets. */
static void test_escapes(void) {
    nne_cdf_set set;
    small_set(&set, 16);
    if (!set.cdf) return;
    const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, -65536,        -2,       2, 6,
                                7,         1 << 20,       INT32_MAX - 1, INT32_MAX};
    const size_t ne = sizeof extremes / sizeof extremes[0];
    stream_case c;
    case_alloc(&c, ne * ne * 2);
    size_t k = 0;
    for (size_t a = 0; a < ne; a++)
        for (size_t b = 0; b < ne; b++)
            for (int t = 0; t < 2; t++, k++) {
                c.values[k] = extremes[a];
                c.means[k] = extremes[b];
                c.index[k] = t;
            }
    CHECK(round_trip(&set, &c, true));
    CHECK(round_trip(&set, &c, false));
    /* Every value escapes with table 1 (it only holds 5): the worst case, within the bound. */
    for (size_t i = 0; i < c.n; i++) c.index[i] = 1;
    CHECK(round_trip(&set, &c, true));
    CHECK_MSG(c.size <= c.cap, "%zu > bound %zu", c.size, c.cap);
    case_free(&c);

    /* A single-symbol alphabet costs almost nothing for its one value. */
    case_alloc(&c, 10000);
    for (size_t i = 0; i < c.n; i++) {
        c.index[i] = 1;
        c.values[i] = 5;
    }
    CHECK(round_trip(&set, &c, false));
    CHECK_MSG(c.size <= 16, "10000 certain symbols took %zu bytes", c.size);
    c.values[1234] = 6; /* one escape among them */
    CHECK(round_trip(&set, &c, false));
    case_free(&c);
    nne_cdf_set_free(&set);
}

static void test_empty(void) {
    nne_cdf_set set;
    small_set(&set, 16);
    if (!set.cdf) return;
    size_t n = 99;
    uint8_t b[16];
    int32_t v[1];
    CHECK_OK(nne_entropy_encode(&set, NULL, NULL, NULL, 0, b, sizeof b, &n));
    CHECK(n == 0);
    CHECK_OK(nne_entropy_decode(&set, NULL, 0, NULL, NULL, 0, v));
    CHECK_STATUS(nne_entropy_decode(&set, b, 1, NULL, NULL, 0, v), NNE_ERR_FORMAT);
    CHECK(nne_entropy_encode_bound(0) > 0);
    CHECK(nne_entropy_encode_bound(SIZE_MAX / 4) == 0);
    nne_cdf_set_free(&set);
}

/* Coded size against the entropy. (a) A long stream drawn from one fixed 64-symbol
 * distribution: within 1% of the empirical entropy of the values. (b) A hyperprior-like mix
 * of Gaussian tables: within 0.1% of the ideal code length under the tables themselves, i.e.
 * the coder adds nothing measurable to the model. */
static void test_efficiency(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 4);
    double p[64], sum = 0;
    for (int i = 0; i < 64; i++) sum += p[i] = exp(-0.12 * i) * (1 + 0.3 * sin(i));
    const int32_t len = 64, off = 0;
    nne_cdf_set set;
    CHECK_OK(nne_cdf_set_factorized(1, p, &len, &off, NULL, 16, &set));
    if (!set.cdf) return;
    stream_case c;
    case_alloc(&c, 200000);
    double cdfp[65];
    cdfp[0] = 0;
    for (int i = 0; i < 64; i++) cdfp[i + 1] = cdfp[i] + p[i] / sum;
    size_t hist[64] = {0};
    for (size_t i = 0; i < c.n; i++) {
        const double u = nne_test_rng_uniform(&r);
        int s = 0;
        while (s < 63 && cdfp[s + 1] <= u) s++;
        c.values[i] = s;
        hist[s]++;
    }
    double h = 0;
    for (int i = 0; i < 64; i++)
        if (hist[i]) h -= (double)hist[i] * log2((double)hist[i] / (double)c.n);
    CHECK(round_trip(&set, &c, false));
    const double bits = 8.0 * (double)c.size;
    CHECK_MSG(bits < 1.01 * h && bits > 0.99 * h, "%.0f bits coded, entropy %.0f bits", bits, h);
    if (getenv("NNE_TEST_VERBOSE"))
        printf("  fixed pmf: %.5f bits/symbol, entropy %.5f (+%.3f%%)\n", bits / (double)c.n,
               h / (double)c.n, 100 * (bits - h) / h);
    case_free(&c);
    nne_cdf_set_free(&set);

    double s[NNE_GAUSS_SCALES];
    nne_gauss_scale_table(s, NNE_GAUSS_SCALES);
    CHECK_OK(nne_cdf_set_gaussian(s, NNE_GAUSS_SCALES, NNE_GAUSS_TAIL_MASS, 16, &set));
    if (!set.cdf) return;
    case_alloc(&c, 200000);
    double ideal = 0;
    for (size_t i = 0; i < c.n; i++) {
        c.index[i] = nne_test_rng_int(&r, 0, 50);
        c.values[i] = draw(&r, &set, c.index[i]);
        const int32_t t = c.index[i];
        const uint32_t *cd = set.cdf + set.start[t];
        const int64_t v = (int64_t)c.values[i] - set.offset[t];
        if (v >= 0 && v < set.length[t] - 1)
            ideal += 16 - log2((double)(cd[v + 1] - cd[v]));
        else /* escape symbol + count + chunks */
            ideal += 16 - log2((double)(cd[set.length[t]] - cd[set.length[t] - 1])) + 4;
    }
    CHECK(round_trip(&set, &c, false));
    const double got = 8.0 * (double)c.size;
    /* Escapes are rare here (tail 1e-9), so `ideal` omits their chunks' few bits. */
    CHECK_MSG(got < 1.001 * ideal + 64, "%.0f bits coded, ideal %.0f", got, ideal);
    case_free(&c);
    nne_cdf_set_free(&set);
}

/* A stream built from fixed tables and values for the hostile-input tests. */
static void make_fixed(nne_cdf_set *set, stream_case *c, size_t n) {
    double s[16];
    for (int j = 0; j < 16; j++) s[j] = 0.25 * pow(1.6, j);
    CHECK_OK(nne_cdf_set_gaussian(s, 16, NNE_GAUSS_TAIL_MASS, 16, set));
    case_alloc(c, n);
    nne_test_rng r;
    nne_test_rng_seed(&r, 7);
    for (size_t i = 0; i < n; i++) {
        c->index[i] = (int32_t)(i % 16);
        c->means[i] = nne_test_rng_int(&r, -3, 3);
        c->values[i] = (int32_t)lround(s[i % 16] * (nne_test_rng_uniform(&r) - 0.5) * 4) +
                       (i % 97 == 0 ? 100000 : 0); /* some escapes */
    }
    if (set->cdf) CHECK(round_trip(set, c, true));
}

/* Every proper prefix is refused (the decoder needs every byte the encoder wrote); no crash. */
static void test_truncation(void) {
    nne_cdf_set set;
    stream_case c;
    make_fixed(&set, &c, 500);
    if (!set.cdf) return;
    int accepted = 0;
    for (size_t cut = 0; cut < c.size; cut++) {
        uint8_t *p = nne_malloc(cut ? cut : 1);
        memcpy(p, c.buf, cut);
        nne_status s = nne_entropy_decode(&set, p, cut, c.index, c.means, c.n, c.back);
        if (s == NNE_OK)
            accepted++;
        else
            CHECK(s == NNE_ERR_FORMAT && strncmp(nne_last_error(), "entropy: decode", 15) == 0);
        nne_free(p);
    }
    CHECK_MSG(accepted == 0, "%d of %zu truncations accepted", accepted, c.size);
    /* One byte too many is refused as trailing data. */
    uint8_t *p = nne_malloc(c.size + 1);
    memcpy(p, c.buf, c.size);
    p[c.size] = 0;
    CHECK_STATUS(nne_entropy_decode(&set, p, c.size + 1, c.index, c.means, c.n, c.back),
                 NNE_ERR_FORMAT);
    nne_free(p);
    case_free(&c);
    nne_cdf_set_free(&set);
}

/* Bit flips and random bytes: an error or some values, never a crash or an over-read (ASan).
 * Most flips are caught by the final-state and length checks. */
static void test_corruption(void) {
    nne_cdf_set set;
    stream_case c;
    make_fixed(&set, &c, 2000);
    if (!set.cdf) return;
    nne_test_rng r;
    nne_test_rng_seed(&r, 8);
    uint8_t *p = nne_malloc(c.size);
    int detected = 0;
    const int trials = 2000;
    for (int it = 0; it < trials; it++) {
        memcpy(p, c.buf, c.size);
        const int flips = 1 + it % 3;
        for (int k = 0; k < flips; k++) {
            const size_t at = (size_t)(nne_test_rng_u64(&r) % c.size);
            p[at] ^= (uint8_t)(1u << nne_test_rng_int(&r, 0, 7));
        }
        detected += nne_entropy_decode(&set, p, c.size, c.index, c.means, c.n, c.back) != NNE_OK;
    }
    if (getenv("NNE_TEST_VERBOSE")) printf("  %d of %d corruptions detected\n", detected, trials);
    CHECK_MSG(detected > trials * 9 / 10, "only %d of %d corruptions detected", detected, trials);
    for (int it = 0; it < 300; it++) {
        const size_t n = (size_t)nne_test_rng_int(&r, 0, (int)c.size);
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)nne_test_rng_u64(&r);
        (void)nne_entropy_decode(&set, p, n, c.index, c.means, c.n, c.back);
    }
    nne_free(p);
    case_free(&c);
    nne_cdf_set_free(&set);
}

static void test_bad_args(void) {
    nne_cdf_set set;
    stream_case c;
    make_fixed(&set, &c, 300);
    if (!set.cdf) return;
    /* Too small a buffer: LIMIT with the size needed; one byte more than needed is fine. */
    size_t n;
    CHECK_STATUS(nne_entropy_encode(&set, c.values, c.index, c.means, c.n, c.buf, c.size - 1, &n),
                 NNE_ERR_LIMIT);
    char want[64];
    snprintf(want, sizeof want, "needs %zu bytes", c.size);
    CHECK(strstr(nne_last_error(), want) != NULL);
    CHECK_STATUS(nne_entropy_encode(&set, c.values, c.index, c.means, c.n, c.buf, 0, &n),
                 NNE_ERR_LIMIT);
    CHECK_OK(nne_entropy_encode(&set, c.values, c.index, c.means, c.n, c.buf, c.size, &n));
    CHECK(n == c.size);
    c.index[17] = 16;
    CHECK_STATUS(nne_entropy_encode(&set, c.values, c.index, c.means, c.n, c.buf, c.cap, &n),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_entropy_decode(&set, c.buf, n, c.index, c.means, c.n, c.back),
                 NNE_ERR_INVALID_ARG);
    c.index[17] = -1;
    CHECK_STATUS(nne_entropy_decode(&set, c.buf, n, c.index, c.means, c.n, c.back),
                 NNE_ERR_INVALID_ARG);
    case_free(&c);
    nne_cdf_set_free(&set);
}

/* Non-canonical escapes (a leading zero chunk, or more than 9 chunks) are refused: no encoder
 * writes them, and accepting them would give two streams for the same values. */
static void test_malformed_escape(void) {
    nne_cdf_set set;
    small_set(&set, 8);
    if (!set.cdf) return;
    const uint32_t *c = set.cdf + set.start[1];
    for (int variant = 0; variant < 3; variant++) {
        /* One symbol with table 1 (state 0): escape, count, chunks; state 1 untouched. */
        uint8_t buf[64];
        nne_rans_out o = {buf, sizeof buf};
        uint32_t x0, x1;
        nne_rans_enc_init(&x0);
        nne_rans_enc_init(&x1);
        const uint32_t count = variant == 0 ? 2 : variant == 1 ? 10 : 1;
        const uint32_t chunks[10] = {3, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        for (uint32_t j = count; j-- > 0;) nne_rans_enc_put_bits(&x0, &o, chunks[j], 4);
        nne_rans_enc_put_bits(&x0, &o, count, 4);
        nne_rans_enc_put(&x0, &o, c[1], c[2] - c[1], 8);
        nne_rans_enc_flush(&x1, &o);
        nne_rans_enc_flush(&x0, &o);
        const int32_t index = 1;
        int32_t v;
        nne_status s =
            nne_entropy_decode(&set, buf + o.pos, sizeof buf - (size_t)o.pos, &index, NULL, 1, &v);
        if (variant == 2) {
            /* The canonical form of the same value: raw 3 -> value -(3 + 1) / 2 + 5 = 3. */
            CHECK_OK(s);
            CHECK(v == 3);
        } else {
            CHECK_STATUS(s, NNE_ERR_FORMAT);
            CHECK(strstr(nne_last_error(), "malformed escape") != NULL);
        }
    }
    nne_cdf_set_free(&set);
}

/* Determinism and the golden vector: fixed tables (tests/toy_codec.h: quantized from
 * rational PMFs, so no libm) and fixed values must give the committed bytes. A change here is a
 * format change. */
static void golden_case(nne_cdf_set *set, stream_case *c) {
    CHECK_OK(nne_toy_tables(set));
    case_alloc(c, 1000);
    uint32_t state = 12345; /* a local LCG: the vector must not depend on test helpers */
    for (size_t i = 0; i < c->n; i++) {
        state = state * 1103515245u + 12345u;
        const int32_t u = (int32_t)(state >> 16) & 0x7fff;
        c->index[i] = (int32_t)(i % 3);
        c->means[i] = (int32_t)(i % 5) - 2;
        c->values[i] = (u % 9) - 4 + (u % 211 == 0 ? 40000 * ((int32_t)(i % 2) * 2 - 1) : 0);
    }
    if (set->cdf) CHECK(round_trip(set, c, true));
}

static void test_golden(void) {
    nne_cdf_set set, set2;
    stream_case c, c2;
    golden_case(&set, &c);
    golden_case(&set2, &c2);
    if (!set.cdf || !set2.cdf) return;
    CHECK(c.size == c2.size && memcmp(c.buf, c2.buf, c.size) == 0); /* deterministic */
    CHECK(set.cdf_size == set2.cdf_size &&
          memcmp(set.cdf, set2.cdf, set.cdf_size * sizeof *set.cdf) == 0);
    size_t gn = 0;
    unsigned char *gold =
        nne_test_golden_bytes("tests/golden/entropy/stream_v1.bin", c.buf, c.size, &gn);
    if (gold) {
        CHECK_OK(nne_entropy_decode(&set, gold, gn, c.index, c.means, c.n, c.back));
        CHECK(memcmp(c.back, c.values, c.n * sizeof(int32_t)) == 0);
    }
    nne_free(gold);
    case_free(&c);
    case_free(&c2);
    nne_cdf_set_free(&set);
    nne_cdf_set_free(&set2);
}

/* With NNE_REGEN_GOLDEN=1, write raw-stream seeds for fuzz/fuzz_bitstream.c's second mode:
 * 4 bytes (set, count low, count high, pattern), then the stream, with the table and mean
 * pattern that target derives from the pattern byte. */
static void test_fuzz_seeds(void) {
    for (int k = 0; k < 2; k++) {
        nne_cdf_set set;
        if (k == 0) {
            CHECK_OK(nne_toy_tables(&set));
        } else {
            double s[NNE_GAUSS_SCALES];
            nne_gauss_scale_table(s, NNE_GAUSS_SCALES);
            CHECK_OK(nne_cdf_set_gaussian(s, NNE_GAUSS_SCALES, NNE_GAUSS_TAIL_MASS, 16, &set));
        }
        if (!set.cdf) return;
        const uint8_t pat = k == 0 ? 0x00 : 0x19;
        stream_case c;
        case_alloc(&c, k == 0 ? 300 : 1000);
        nne_test_rng r;
        nne_test_rng_seed(&r, 20 + (unsigned)k);
        for (size_t i = 0; i < c.n; i++) {
            c.index[i] = (int32_t)((i * (pat | 1u) + (pat >> 4)) % (size_t)set.n_tables);
            c.means[i] = pat & 8 ? (int32_t)(i % 7) - 3 : 0;
            c.values[i] = draw(&r, &set, c.index[i]) + c.means[i];
        }
        CHECK(round_trip(&set, &c, true));
        if (nne_test_regen()) {
            const char *rel = k == 0 ? "fuzz/corpus/fuzz_bitstream/raw_toy.bin"
                                     : "fuzz/corpus/fuzz_bitstream/raw_gauss.bin";
            uint8_t *seed = nne_malloc(4 + c.size);
            seed[0] = (uint8_t)k;
            seed[1] = (uint8_t)c.n;
            seed[2] = (uint8_t)(c.n >> 8);
            seed[3] = pat;
            memcpy(seed + 4, c.buf, c.size);
            nne_test_write_rel(rel, seed, 4 + c.size);
            nne_free(seed);
        }
        case_free(&c);
        nne_cdf_set_free(&set);
    }
}

int main(void) {
    NNE_RUN(test_core);
    NNE_RUN(test_random_round_trips);
    NNE_RUN(test_escapes);
    NNE_RUN(test_empty);
    NNE_RUN(test_efficiency);
    NNE_RUN(test_truncation);
    NNE_RUN(test_corruption);
    NNE_RUN(test_bad_args);
    NNE_RUN(test_malformed_escape);
    NNE_RUN(test_golden);
    NNE_RUN(test_fuzz_seeds);
    return nne_test_summary();
}
