/* ops/gemm: every GEMM variant this CPU can run against the reference on random and edge
 * shapes (all transpose combinations, beta 0/1, padded leading dimensions, 1-3 threads);
 * bitwise determinism across thread counts; the dispatched entry point and NNEDGE_ISA.
 *
 * Tolerance (named GEMM_TOL): the reference and a variant sum the same K products in
 * different orders (blocked, FMA), each within K u sum|a b| of the exact value (u = 2^-24,
 * Higham's gamma_K), so
 *   |got - ref| <= 2 (K + 1) u (K max|a| max|b| + |c0|)
 * where c0 is C's initial value when accumulating (0 otherwise). Inputs are uniform in
 * [-1, 1]; an indexing bug (a lost or repeated product, a wrong row) errs by ~|a b| ~ 0.3,
 * far above the bound (0.011 at K = 300). */
#include <stdlib.h>
#include <string.h>

#include "nnedge/gemm.h"
#include "testutil.h"

#define U_F32 5.9604644775390625e-8 /* 2^-24 */

static double gemm_tol(int32_t k, double amax, double bmax, double c0) {
    return 2.0 * (k + 1) * U_F32 * ((double)k * amax * bmax + c0);
}

typedef struct mats {
    int32_t m, n, k, lda, ldb, ldc;
    uint32_t flags;
    float *a, *b, *c0, *c_ref, *c;
    size_t a_len, b_len, c_len;
} mats;

static float *rand_buf(nne_test_rng *r, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(nne_test_rng_uniform(r) * 2.0 - 1.0);
    return p;
}

static void mats_make(mats *x, nne_test_rng *r, int32_t m, int32_t n, int32_t k, uint32_t flags,
                      int pad) {
    memset(x, 0, sizeof *x);
    x->m = m, x->n = n, x->k = k, x->flags = flags;
    bool ta = flags & NNE_GEMM_TRANS_A, tb = flags & NNE_GEMM_TRANS_B;
    x->lda = (ta ? m : k) + (pad ? nne_test_rng_int(r, 0, 5) : 0);
    x->ldb = (tb ? k : n) + (pad ? nne_test_rng_int(r, 0, 5) : 0);
    x->ldc = n + (pad ? nne_test_rng_int(r, 0, 5) : 0);
    if (x->lda == 0) x->lda = 1;
    if (x->ldb == 0) x->ldb = 1;
    if (x->ldc == 0) x->ldc = 1;
    x->a_len = (size_t)(ta ? k : m) * x->lda;
    x->b_len = (size_t)(tb ? n : k) * x->ldb;
    x->c_len = (size_t)m * x->ldc;
    x->a = rand_buf(r, x->a_len);
    x->b = rand_buf(r, x->b_len);
    x->c0 = rand_buf(r, x->c_len);
    /* Beta 0 must not read C: poison it (padding columns too, which must stay as they are). */
    if (!(flags & NNE_GEMM_ACCUMULATE))
        for (size_t i = 0; i < x->c_len; i++) x->c0[i] = NAN;
    x->c_ref = malloc((x->c_len ? x->c_len : 1) * sizeof(float));
    x->c = malloc((x->c_len ? x->c_len : 1) * sizeof(float));
}

static void mats_free(mats *x) { free(x->a), free(x->b), free(x->c0), free(x->c_ref), free(x->c); }

static void run_variant(const nne_gemm_f32_variant *v, nne_threadpool *pool, mats *x, float *c) {
    size_t bytes =
        v->scratch_size ? v->scratch_size(x->m, x->n, x->k, nne_threadpool_threads(pool)) : 0;
    void *scratch = bytes ? nne_aligned_alloc(bytes) : NULL;
    memcpy(c, x->c0, x->c_len * sizeof(float));
    v->gemm(pool, x->flags, x->m, x->n, x->k, x->a, x->lda, x->b, x->ldb, c, x->ldc, scratch);
    nne_aligned_free(scratch);
}

static void run_ref(mats *x) {
    memcpy(x->c_ref, x->c0, x->c_len * sizeof(float));
    nne_gemm_f32__ref(NULL, x->flags, x->m, x->n, x->k, x->a, x->lda, x->b, x->ldb, x->c_ref,
                      x->ldc, NULL);
}

static double absmax(const float *p, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(p[i]) > m ? fabs(p[i]) : m;
    return m;
}

/* Compare x->c with x->c_ref; returns false (and reports once) on a mismatch. */
static bool compare(const char *isa, const mats *x, int threads) {
    double amax = absmax(x->a, x->a_len), bmax = absmax(x->b, x->b_len);
    bool acc = x->flags & NNE_GEMM_ACCUMULATE;
    for (int32_t i = 0; i < x->m; i++) {
        for (int32_t j = 0; j < x->ldc; j++) {
            size_t o = (size_t)i * x->ldc + j;
            float got = x->c[o], want = x->c_ref[o];
            bool ok;
            if (j >= x->n) /* padding: untouched, bit for bit (NaN included) */
                ok = memcmp(&got, &x->c0[o], sizeof got) == 0;
            else
                ok = fabs((double)got - want) <=
                     gemm_tol(x->k, amax, bmax, acc ? fabs((double)x->c0[o]) : 0.0);
            if (!ok) {
                CHECK_MSG(ok,
                          "%s m=%d n=%d k=%d flags=%u lda=%d ldb=%d ldc=%d threads=%d: "
                          "C[%d][%d] = %.9g, ref %.9g",
                          isa, x->m, x->n, x->k, x->flags, x->lda, x->ldb, x->ldc, threads, i, j,
                          got, want);
                return false;
            }
        }
    }
    return true;
}

/* Sizes around the micro-tiles (6x16, 12x32), the blocks (MC 144/192, KC 256/320), primes. */
static const int32_t edge_sizes[] = {1,   2,   3,   4,   5,   6,   7,   8,   9,   11,  12,  13,
                                     15,  16,  17,  23,  24,  25,  31,  32,  33,  47,  48,  49,
                                     63,  64,  65,  97,  101, 127, 128, 131, 143, 144, 145, 191,
                                     192, 193, 211, 251, 255, 256, 257, 293, 300};
#define N_EDGE ((int)(sizeof edge_sizes / sizeof edge_sizes[0]))

static int32_t pick_dim(nne_test_rng *r) {
    int u = nne_test_rng_int(r, 0, 9);
    if (u < 5) return edge_sizes[nne_test_rng_int(r, 0, N_EDGE - 1)];
    if (u < 8) return nne_test_rng_int(r, 1, 40);
    return nne_test_rng_int(r, 1, 300);
}

static nne_threadpool *pools[4]; /* [t] has t threads; [0] = NULL (serial) */

/* extra: flags added to every case (NNE_GEMM_BF16 for the bf16 runs). */
static void check_variant_random(const nne_gemm_f32_variant *v, uint32_t extra) {
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 12345 + extra);
    int n_cases = 0;
    double work = 0;
    for (int it = 0; it < 400 && work < 6e8; it++) {
        int32_t m = pick_dim(&rng), n = pick_dim(&rng), k = pick_dim(&rng);
        uint32_t flags = (uint32_t)(it % 8) | extra; /* every transpose x beta combination */
        int threads = it % 4;
        mats x;
        mats_make(&x, &rng, m, n, k, flags, it % 3 != 0);
        run_ref(&x);
        run_variant(v, pools[threads], &x, x.c);
        bool ok = compare(v->isa, &x, threads);
        mats_free(&x);
        work += (double)m * n * k;
        n_cases++;
        if (!ok) break;
    }
    printf("  %s%s: %d random cases\n", v->isa, extra & NNE_GEMM_BF16 ? " bf16" : "", n_cases);
}

/* Shapes that cross the larger blocks: several K blocks, N beyond NC, M beyond MC, the
 * conv shapes (NT forward, NN input gradient, TN weight gradient), K = 0, empty C. */
static void check_variant_special(const nne_gemm_f32_variant *v, uint32_t extra) {
    static const struct {
        int32_t m, n, k;
    } shapes[] = {
        {3, 4100, 5},  {2, 3100, 17},   {700, 20, 33},   {37, 45, 1000},
        {13, 35, 641}, {1000, 64, 288}, {1000, 288, 64}, {64, 288, 3000},
        {0, 5, 7},     {5, 0, 7},       {5, 7, 0},       {1, 1, 1},
    };
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 99);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (uint32_t flags = 0; flags < 8; flags++) {
            mats x;
            mats_make(&x, &rng, shapes[s].m, shapes[s].n, shapes[s].k, flags | extra, 1);
            run_ref(&x);
            run_variant(v, pools[2], &x, x.c);
            bool ok = compare(v->isa, &x, 2);
            mats_free(&x);
            if (!ok) return;
        }
    }
}

/* Bitwise identical for NULL, 1, 2 and 3 threads. */
static void check_variant_determinism(const nne_gemm_f32_variant *v, uint32_t extra) {
    static const struct {
        int32_t m, n, k;
        uint32_t flags;
    } shapes[] = {
        {300, 257, 301, 0},
        {1001, 64, 288, NNE_GEMM_TRANS_B},
        {64, 288, 2000, NNE_GEMM_TRANS_A | NNE_GEMM_ACCUMULATE},
        {50, 700, 650, NNE_GEMM_TRANS_A | NNE_GEMM_TRANS_B},
    };
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 5);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        mats x;
        mats_make(&x, &rng, shapes[s].m, shapes[s].n, shapes[s].k, shapes[s].flags | extra, 1);
        run_variant(v, NULL, &x, x.c_ref);
        for (int t = 1; t <= 3; t++) {
            run_variant(v, pools[t], &x, x.c);
            CHECK_MSG(memcmp(x.c, x.c_ref, x.c_len * sizeof(float)) == 0,
                      "%s %dx%dx%d flags %u: %d threads differ from serial", v->isa, x.m, x.n, x.k,
                      x.flags, t);
        }
        mats_free(&x);
    }
}

static void test_variants(void) {
    int count = 0;
    const nne_gemm_f32_variant *vs = nne_gemm_f32_variants(&count);
    CHECK(count >= 1 && strcmp(vs[0].isa, "ref") == 0);
    int ran = 0;
    for (int i = 1; i < count; i++) {
        if (!nne_ops_isa_supported(vs[i].isa)) {
            printf("  %s: skipped (CPU lacks it)\n", vs[i].isa);
            continue;
        }
        for (uint32_t extra = 0; extra <= NNE_GEMM_BF16; extra += NNE_GEMM_BF16) {
            check_variant_random(&vs[i], extra);
            check_variant_special(&vs[i], extra);
            check_variant_determinism(&vs[i], extra);
        }
        ran++;
    }
    /* The reference against itself through the same harness: shapes, k = 0, padding. */
    check_variant_special(&vs[0], 0);
    check_variant_special(&vs[0], NNE_GEMM_BF16);
#if defined(__x86_64__)
    if (nne_cpu_features() & NNE_CPU_AVX2) CHECK(ran >= 1);
#endif
}

/* The AMX kernel (bf16 only) against the reference with NNE_GEMM_BF16, as the variants. */
static void test_amx(void) {
#if defined(__x86_64__)
    if (!nne_gemm_amx_usable()) {
        printf("  amx: skipped (CPU or kernel lacks AMX-BF16)\n");
        return;
    }
    const nne_gemm_f32_variant amx = {"amx", 0, nne_gemm_f32__amx, nne_gemm_f32_scratch_size__amx};
    check_variant_random(&amx, NNE_GEMM_BF16);
    check_variant_special(&amx, NNE_GEMM_BF16);
    check_variant_determinism(&amx, NNE_GEMM_BF16);
    /* The dispatched entry point routes bf16 calls to it under avx512 only. */
    CHECK_OK(nne_ops_set_isa("avx512"));
    CHECK(strcmp(nne_gemm_bf16_path(), "amx") == 0);
    CHECK_OK(nne_ops_set_isa("avx2"));
    CHECK(strcmp(nne_gemm_bf16_path(), "avx2") == 0);
    nne_ops_set_isa(NULL);
#endif
}

/* Rounding of NNE_GEMM_BF16, exact on every path: ties to even (1 + 2^-8 -> 1, 1 + 3 2^-8
 * -> 1 + 2^-6), carries, signs, NaN propagation; truncation or round-half-up fail. The
 * sums are exact in f32, so every order gives the same bits. */
static void test_bf16_rounding(void) {
    const float u8 = 1.0f / 256.0f;
    /* A [2][4], B [4][1]: row 0 dots ties with 1, row 1 carries and a plain value */
    const float a[8] = {1 + u8, 1 + 3 * u8, -(1 + u8), 2 - u8 / 2, 1, 0.5f, 3, 1 + u8 / 2};
    const float b[4] = {1, 1, 1, 1};
    const double want0 = 1.0 + (1.0 + 4 * u8) - 1.0 + 2.0; /* 2 - 2^-9 rounds up to 2 */
    const double want1 = 1.0 + 0.5 + 3.0 + 1.0;            /* 1 + 2^-9 rounds down */
    const char *isas[] = {"ref", "avx2", "avx512"};
    for (int v = 0; v < 3; v++) {
        if (!nne_ops_isa_supported(isas[v])) continue;
        CHECK_OK(nne_ops_set_isa(isas[v]));
        float c[2];
        void *scratch = nne_aligned_alloc(nne_gemm_f32_scratch_size(2, 1, 4, 1) + 64);
        nne_gemm_f32(NULL, NNE_GEMM_BF16, 2, 1, 4, a, 4, b, 1, c, 1, scratch);
        CHECK_MSG(c[0] == (float)want0 && c[1] == (float)want1, "%s (%s): %.9g %.9g", isas[v],
                  nne_gemm_bf16_path(), c[0], c[1]);
        const float an[8] = {1, NAN, 1, 1, 1, 1, 1, 1};
        nne_gemm_f32(NULL, NNE_GEMM_BF16, 2, 1, 4, an, 4, b, 1, c, 1, scratch);
        CHECK_MSG(isnan(c[0]) && c[1] == 4.0f, "%s NaN: %g %g", isas[v], c[0], c[1]);
        nne_aligned_free(scratch);
    }
    nne_ops_set_isa(NULL);
}

/* The reference on a hand-computed case (it is the oracle, so it gets an exact check). */
static void test_ref_exact(void) {
    const float a[2 * 3] = {1, 2, 3, 4, 5, 6};     /* [2][3] */
    const float b[3 * 2] = {7, 8, 9, 10, 11, 12};  /* [3][2] */
    const float at[3 * 2] = {1, 4, 2, 5, 3, 6};    /* A^T stored [3][2] */
    const float bt[2 * 3] = {7, 9, 11, 8, 10, 12}; /* B^T stored [2][3] */
    const float want[4] = {58, 64, 139, 154};
    for (uint32_t f = 0; f < 4; f++) {
        float c[4];
        nne_gemm_f32__ref(NULL, f, 2, 2, 3, f & NNE_GEMM_TRANS_A ? at : a,
                          f & NNE_GEMM_TRANS_A ? 2 : 3, f & NNE_GEMM_TRANS_B ? bt : b,
                          f & NNE_GEMM_TRANS_B ? 3 : 2, c, 2, NULL);
        CHECK(memcmp(c, want, sizeof c) == 0);
        nne_gemm_f32__ref(NULL, f | NNE_GEMM_ACCUMULATE, 2, 2, 3, f & NNE_GEMM_TRANS_A ? at : a,
                          f & NNE_GEMM_TRANS_A ? 2 : 3, f & NNE_GEMM_TRANS_B ? bt : b,
                          f & NNE_GEMM_TRANS_B ? 3 : 2, c, 2, NULL);
        for (int i = 0; i < 4; i++) CHECK(c[i] == 2 * want[i]);
    }
}

/* The dispatched entry point equals the selected variant bit for bit, and NNEDGE_ISA works. */
static void test_dispatch(void) {
    CHECK_OK(nne_ops_dispatch_init()); /* ctest runs without NNEDGE_ISA, or with a valid one */
    int count = 0;
    const nne_gemm_f32_variant *vs = nne_gemm_f32_variants(&count);
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 77);
    mats x;
    mats_make(&x, &rng, 150, 77, 99, NNE_GEMM_TRANS_B | NNE_GEMM_ACCUMULATE, 1);
    size_t bytes = nne_gemm_f32_scratch_size(x.m, x.n, x.k, 2);
    void *scratch = nne_aligned_alloc(bytes ? bytes : 64);
    for (int i = 0; i < count; i++) {
        if (!nne_ops_isa_supported(vs[i].isa)) continue;
        if (vs[i].scratch_size) CHECK(vs[i].scratch_size(x.m, x.n, x.k, 2) <= bytes);
        CHECK_OK(nne_ops_set_isa(vs[i].isa));
        CHECK(strcmp(nne_ops_isa(), vs[i].isa) == 0);
        run_variant(&vs[i], pools[2], &x, x.c_ref);
        memcpy(x.c, x.c0, x.c_len * sizeof(float));
        nne_gemm_f32(pools[2], x.flags, x.m, x.n, x.k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, scratch);
        CHECK_MSG(memcmp(x.c, x.c_ref, x.c_len * sizeof(float)) == 0, "dispatch to %s", vs[i].isa);
    }
    nne_aligned_free(scratch);
    mats_free(&x);

    /* The environment variable, re-read by nne_ops_set_isa(NULL). */
    const char *saved = getenv("NNEDGE_ISA");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("NNEDGE_ISA", "ref", 1);
    CHECK_OK(nne_ops_set_isa(NULL));
    CHECK(strcmp(nne_ops_isa(), "ref") == 0);
    setenv("NNEDGE_ISA", "sse9", 1);
    CHECK_STATUS(nne_ops_set_isa(NULL), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "sse9") != NULL);
    CHECK(nne_ops_isa_supported(nne_ops_isa()));
    setenv("NNEDGE_ISA", "avx512", 1);
    if (nne_ops_isa_supported("avx512")) {
        CHECK_OK(nne_ops_set_isa(NULL));
        CHECK(strcmp(nne_ops_isa(), "avx512") == 0);
    } else {
        /* Refused with a message naming what is missing; falls back to the best below. */
        CHECK_STATUS(nne_ops_set_isa(NULL), NNE_ERR_UNSUPPORTED);
        CHECK(strstr(nne_last_error(), "avx512f") != NULL);
        CHECK(strcmp(nne_ops_isa(), nne_ops_isa_supported("avx2") ? "avx2" : "ref") == 0);
    }
    CHECK_STATUS(nne_ops_set_isa("avx9000"), NNE_ERR_INVALID_ARG);
    CHECK(!nne_ops_isa_supported("avx9000") && nne_ops_isa_supported("ref"));
    if (copy) {
        setenv("NNEDGE_ISA", copy, 1);
        free(copy);
    } else {
        unsetenv("NNEDGE_ISA");
    }
    nne_ops_set_isa(NULL);
}

/* Scratch stays bounded for huge shapes (packing buffers, not copies of the operands). */
static void test_scratch_bounded(void) {
    size_t s = nne_gemm_f32_scratch_size(1 << 20, 1 << 20, 1 << 20, 2);
    CHECK_MSG(s <= (size_t)2 * 16 * 1024 * 1024, "%zu bytes", s);
    CHECK(nne_gemm_f32_scratch_size(0, 10, 10, 2) == 0);
    CHECK(nne_gemm_f32_scratch_size(10, 10, 0, 2) == 0);
}

/* nne_gemm_f32_seq: the reference's bits for every ISA and layout (NT through the AVX2
 * kernel, the others through the reference), beta 0 and 1, padded leading dimensions, edge
 * sizes around the 8-row panels and 4-column tiles, k = 0. A single FMA or a reordered sum
 * changes the last bits of most elements. */
static void test_seq_exact(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 77);
    const char *isas[] = {"ref", "avx2", "avx512"};
    for (int it = 0; it < 120; it++) {
        const uint32_t flags =
            (it % 4 == 3 ? (uint32_t)nne_test_rng_int(&r, 0, 3) : (uint32_t)NNE_GEMM_TRANS_B) |
            (it % 2 ? (uint32_t)NNE_GEMM_ACCUMULATE : 0u);
        const int32_t m = pick_dim(&r), n = it % 3 ? nne_test_rng_int(&r, 1, 9) : pick_dim(&r);
        const int32_t k = it == 5 ? 0 : pick_dim(&r);
        mats x;
        mats_make(&x, &r, m, n, k, flags, 1);
        run_ref(&x);
        void *scratch = nne_aligned_alloc(nne_gemm_f32_seq_scratch_size(m, n, k) + 64);
        for (int v = 0; v < 3; v++) {
            if (!nne_ops_isa_supported(isas[v])) continue;
            CHECK_OK(nne_ops_set_isa(isas[v]));
            memcpy(x.c, x.c0, x.c_len * sizeof(float));
            nne_gemm_f32_seq(NULL, flags, m, n, k, x.a, x.lda, x.b, x.ldb, x.c, x.ldc, scratch);
            CHECK_MSG(memcmp(x.c, x.c_ref, x.c_len * sizeof(float)) == 0,
                      "seq %s flags %u m %d n %d k %d: not the reference's bits", isas[v],
                      (unsigned)flags, (int)m, (int)n, (int)k);
        }
        nne_aligned_free(scratch);
        mats_free(&x);
    }
    nne_ops_set_isa(NULL);
}

int main(void) {
    for (int t = 1; t < 4; t++) CHECK_OK(nne_threadpool_create(t, &pools[t]));
    NNE_RUN(test_ref_exact);
    NNE_RUN(test_seq_exact);
    NNE_RUN(test_variants);
    NNE_RUN(test_amx);
    NNE_RUN(test_bf16_rounding);
    NNE_RUN(test_dispatch);
    NNE_RUN(test_scratch_bounded);
    for (int t = 1; t < 4; t++) nne_threadpool_free(pools[t]);
    return nne_test_summary();
}
