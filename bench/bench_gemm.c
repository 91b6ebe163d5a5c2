/* bench_gemm: GFLOP/s of the f32 GEMM variants (and oneDNN's dnnl_sgemm when linked) on
 * square sizes and on the cae-seed convolutions written as im2col GEMMs, with 1 and 2
 * threads, as a fraction of the machine's measured peak FMA throughput. With NNE_GEMM_BF16
 * (bf16 inputs, f32 sums): the avx512 variant rounding its packed panels ("avx512 bf16")
 * and the AMX tile kernel ("amx bf16", when the CPU and kernel allow it); their "of peak"
 * is against the 512-bit f32 FMA peak, for comparison (AMX's own peak is far higher).
 *
 *   bench_gemm [--quick] [--threads LIST] [--min-time SECONDS] [--only SUBSTRING]
 *
 * Method. Each (shape, threads, implementation) is first checked (64 sampled elements
 * against a double-precision dot product, tolerance as in tests/ops/test_gemm.c), then run
 * once to warm up and then repeatedly until at least --min-time seconds (default 0.3) and
 * 5 repetitions have elapsed (at most 200). The table gives the median GFLOP/s (2 M N K /
 * time), the min-max range over the repetitions, and the median as a percentage of the
 * peak measured for that thread count by an FMA loop (12 independent chains of 256-bit FMAs
 * per thread; 512-bit on AVX-512 machines for the avx512 rows). oneDNN runs with the same
 * number of OpenMP threads (omp_set_num_threads via dlsym). Output: Markdown on stdout. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_peak.h"
#include "nnedge/gemm.h"

#ifdef NNE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

typedef struct shape {
    const char *name;
    int32_t m, n, k;
    uint32_t flags;
} shape;

/* im2col GEMMs of cae-seed at 512x768 (docs/models.md): forward M = oh*ow pixels,
 * K = 3*3*ic, N = oc, patches times OHWI weights = NT; conv2d_3's input gradient (NN) and
 * weight gradient (TN). */
static const shape conv_shapes[] = {
    {"conv2d_1 fwd", 510 * 766, 32, 27, NNE_GEMM_TRANS_B},
    {"conv2d_2 fwd", 254 * 382, 32, 288, NNE_GEMM_TRANS_B},
    {"conv2d_3 fwd", 252 * 380, 64, 288, NNE_GEMM_TRANS_B},
    {"conv2d_4 fwd", 125 * 189, 64, 576, NNE_GEMM_TRANS_B},
    {"conv2d_5 fwd", 62 * 94, 32, 576, NNE_GEMM_TRANS_B},
    {"conv2d_3 dX", 252 * 380, 288, 64, 0},
    {"conv2d_3 dW", 64, 288, 252 * 380, NNE_GEMM_TRANS_A},
};

/* ---- Implementations ---- */

typedef struct impl {
    const char *name;
    const nne_gemm_f32_variant *v; /* NULL: oneDNN */
    uint32_t extra;                /* flags added to the shape's (NNE_GEMM_BF16) */
} impl;

static void (*omp_set_threads)(int);

static void run_impl(const impl *im, nne_threadpool *pool, const shape *s, const float *a,
                     int32_t lda, const float *b, int32_t ldb, float *c, void *scratch) {
    if (im->v) {
        im->v->gemm(pool, s->flags | im->extra, s->m, s->n, s->k, a, lda, b, ldb, c, s->n, scratch);
        return;
    }
#ifdef NNE_HAVE_DNNL
    dnnl_sgemm(s->flags & NNE_GEMM_TRANS_A ? 'T' : 'N', s->flags & NNE_GEMM_TRANS_B ? 'T' : 'N',
               s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
#endif
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static unsigned long long rng_state = 88172645463325252ull;
static double rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}

static double as_bf16(double v) { return nne_bf16_to_f32(nne_f32_to_bf16((float)v)); }

/* Sampled check of C = op(A) op(B) against double precision (of the bf16-rounded inputs
 * with NNE_GEMM_BF16); returns false on mismatch. */
static bool verify(const shape *s, uint32_t extra, const float *a, int32_t lda, const float *b,
                   int32_t ldb, const float *c) {
    bool ta = s->flags & NNE_GEMM_TRANS_A, tb = s->flags & NNE_GEMM_TRANS_B;
    bool bf16 = extra & NNE_GEMM_BF16;
    for (int t = 0; t < 64; t++) {
        int32_t i = (int32_t)(rnd() * s->m), j = (int32_t)(rnd() * s->n);
        double acc = 0;
        for (int32_t p = 0; p < s->k; p++) {
            double av = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
            double bv = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
            acc += bf16 ? as_bf16(av) * as_bf16(bv) : av * bv;
        }
        double tol = 2.0 * (s->k + 1) * 0x1.0p-24 * s->k; /* |a|, |b| <= 1 */
        if (!(fabs(acc - c[(size_t)i * s->n + j]) <= tol)) {
            fprintf(stderr, "%s: C[%d][%d] = %g, want %g\n", s->name, i, j, c[(size_t)i * s->n + j],
                    acc);
            return false;
        }
    }
    return true;
}

static void bench_shape(const shape *s, const impl *impls, int n_impls, nne_threadpool **pools,
                        const int *thread_list, int n_thread_list, const double *peak_ymm,
                        const double *peak_zmm, double min_time) {
    bool ta = s->flags & NNE_GEMM_TRANS_A, tb = s->flags & NNE_GEMM_TRANS_B;
    int32_t lda = ta ? s->m : s->k, ldb = tb ? s->k : s->n;
    size_t a_len = (size_t)s->m * s->k, b_len = (size_t)s->k * s->n, c_len = (size_t)s->m * s->n;
    float *a = nne_aligned_alloc(a_len * sizeof(float));
    float *b = nne_aligned_alloc(b_len * sizeof(float));
    float *c = nne_aligned_alloc(c_len * sizeof(float));
    for (size_t i = 0; i < a_len; i++) a[i] = (float)(rnd() * 2 - 1);
    for (size_t i = 0; i < b_len; i++) b[i] = (float)(rnd() * 2 - 1);
    double flop = 2.0 * s->m * s->n * s->k;
    for (int ti = 0; ti < n_thread_list; ti++) {
        int threads = thread_list[ti];
        nne_threadpool *pool = pools[threads];
        size_t bytes = nne_gemm_f32_scratch_size(s->m, s->n, s->k, threads);
        void *scratch = nne_aligned_alloc(bytes ? bytes : 64);
        for (int ii = 0; ii < n_impls; ii++) {
            const impl *im = &impls[ii];
            bool is_ref = im->v && strcmp(im->v->isa, "ref") == 0;
            if (is_ref && (flop > 1e9 || threads > 1)) continue; /* serial, ~1 GFLOP/s */
            if (!im->v && omp_set_threads) omp_set_threads(threads);
            run_impl(im, pool, s, a, lda, b, ldb, c, scratch);
            if (!verify(s, im->extra, a, lda, b, ldb, c)) {
                printf("| %s | %d x %d x %d | %d | %s | WRONG RESULT | | |\n", s->name, s->m, s->n,
                       s->k, threads, im->name);
                continue;
            }
            double times[200];
            int n = 0;
            double total = 0;
            while (n < 200 && (n < 5 || total < min_time)) {
                uint64_t t0 = nne_time_ns();
                run_impl(im, pool, s, a, lda, b, ldb, c, scratch);
                times[n] = (double)(nne_time_ns() - t0) * 1e-9;
                total += times[n++];
            }
            qsort(times, (size_t)n, sizeof times[0], cmp_double);
            double med = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
            double peak =
                im->v && (strcmp(im->v->isa, "avx512") == 0 || strcmp(im->v->isa, "amx") == 0)
                    ? peak_zmm[threads]
                    : peak_ymm[threads];
            printf("| %s | %d x %d x %d | %d | %s | %.1f | %.1f-%.1f | %.0f%% |\n", s->name, s->m,
                   s->n, s->k, threads, im->name, flop / med * 1e-9, flop / times[n - 1] * 1e-9,
                   flop / times[0] * 1e-9, 100.0 * flop / med * 1e-9 / peak);
            fflush(stdout);
        }
        nne_aligned_free(scratch);
    }
    nne_aligned_free(a);
    nne_aligned_free(b);
    nne_aligned_free(c);
}

int main(int argc, char **argv) {
    bool quick = false;
    const char *only = NULL; /* run only shapes whose name contains this */
    double min_time = 0.3;
    int thread_list[8] = {1, 2}, n_thread_list = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--min-time") == 0 && i + 1 < argc) {
            min_time = atof(argv[++i]);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            n_thread_list = 0;
            for (char *t = strtok(argv[++i], ","); t && n_thread_list < 8; t = strtok(NULL, ",")) {
                int v = atoi(t);
                if (v < 1 || v > 64) {
                    fprintf(stderr, "bench_gemm: bad thread count %s\n", t);
                    return 2;
                }
                thread_list[n_thread_list++] = v;
            }
        } else {
            fprintf(stderr,
                    "usage: bench_gemm [--quick] [--threads 1,2] [--min-time S] [--only NAME]\n");
            return 2;
        }
    }
    uint32_t cpu = nne_cpu_features();
    if (!(cpu & NNE_CPU_AVX2) || !(cpu & NNE_CPU_FMA)) {
        fprintf(stderr, "bench_gemm: needs AVX2+FMA to measure the peak\n");
        return 1;
    }
    nne_threadpool *pools[65] = {0};
    double peak_ymm[65] = {0}, peak_zmm[65] = {0};
    char feat[256];
    printf("# bench_gemm\n\nCPU features: %s; dispatched ISA: %s\n\n",
           nne_cpu_features_str(cpu, feat, sizeof feat), nne_ops_isa());
    for (int i = 0; i < n_thread_list; i++) {
        int t = thread_list[i];
        if (!pools[t] && nne_threadpool_create(t, &pools[t]) != NNE_OK) {
            fprintf(stderr, "bench_gemm: %s\n", nne_last_error());
            return 1;
        }
        peak_ymm[t] = measure_peak(pools[t], t, 0);
        peak_zmm[t] = cpu & NNE_CPU_AVX512F ? measure_peak(pools[t], t, 1) : 0;
        printf("Peak FMA throughput, %d thread(s): %.1f GFLOP/s (256-bit; %.2f GHz x 32 "
               "flop/cycle/core)",
               t, peak_ymm[t], peak_ymm[t] / (32.0 * t));
        if (peak_zmm[t] > 0) printf(", %.1f GFLOP/s (512-bit)", peak_zmm[t]);
        printf("\n\n");
    }

    impl impls[8];
    int n_impls = 0, count = 0;
    const nne_gemm_f32_variant *vs = nne_gemm_f32_variants(&count);
    for (int i = 0; i < count; i++)
        if (nne_ops_isa_supported(vs[i].isa)) impls[n_impls++] = (impl){vs[i].isa, &vs[i], 0};
    /* bf16 inputs (NNE_GEMM_BF16): the best f32 variant rounding its panels, and AMX */
    if (count > 1 && nne_ops_isa_supported(vs[count - 1].isa))
        impls[n_impls++] = (impl){"avx512 bf16", &vs[count - 1], NNE_GEMM_BF16};
    static const nne_gemm_f32_variant amx = {"amx", 0, nne_gemm_f32__amx,
                                             nne_gemm_f32_scratch_size__amx};
    if (nne_gemm_amx_usable()) impls[n_impls++] = (impl){"amx bf16", &amx, NNE_GEMM_BF16};
#ifdef NNE_HAVE_DNNL
    impls[n_impls++] = (impl){"oneDNN", NULL, 0};
    omp_set_threads = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    dnnl_version_t const *ver = dnnl_version();
    printf("oneDNN %d.%d.%d (dnnl_sgemm, %s)\n\n", ver->major, ver->minor, ver->patch,
           omp_set_threads ? "OpenMP threads set per row" : "default threads");
#endif

    printf("| shape | M x N x K | threads | impl | GFLOP/s (median) | range | of peak |\n");
    printf("|---|---|---|---|---|---|---|\n");
    const int32_t squares[] = {64, 128, 256, 512, 1024};
    for (size_t i = 0; i < sizeof squares / sizeof squares[0]; i++) {
        if (quick && squares[i] > 256) break;
        shape s = {"square NN", squares[i], squares[i], squares[i], 0};
        if (only && !strstr(s.name, only)) continue;
        bench_shape(&s, impls, n_impls, pools, thread_list, n_thread_list, peak_ymm, peak_zmm,
                    min_time);
    }
    for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++) {
        if (quick && i > 2) break;
        if (only && !strstr(conv_shapes[i].name, only)) continue;
        bench_shape(&conv_shapes[i], impls, n_impls, pools, thread_list, n_thread_list, peak_ymm,
                    peak_zmm, min_time);
    }
    for (int t = 0; t < 65; t++) nne_threadpool_free(pools[t]);
    return 0;
}
