/* Peak arithmetic throughput of this machine, measured (bench_gemm.c, bench_conv.c):
 * f32 FMA loops (12 independent chains of 256-bit or 512-bit FMAs per thread) and an int16
 * multiply-add loop (vpmaddwd + vpaddd, 12 chains), run on every thread of a pool, best of 5.
 * Header-only (static functions) so that each bench program stays one file. */
#ifndef NNE_BENCH_PEAK_H
#define NNE_BENCH_PEAK_H

#include <immintrin.h>

#include "nnedge/threadpool.h"

typedef struct peak_ctx {
    long iters;
    int zmm;
    float sink[NNE_THREADPOOL_MAX_THREADS];
} peak_ctx;

__attribute__((target("avx2,fma"))) static float fma_loop_ymm(long iters) {
    __m256 m = _mm256_set1_ps(0.999999f), d = _mm256_set1_ps(1e-7f);
    __m256 a[12];
    for (int j = 0; j < 12; j++) a[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) a[j] = _mm256_fmadd_ps(a[j], m, d);
    }
    __m256 s = a[0];
    for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, a[j]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

__attribute__((target("avx512f"))) static float fma_loop_zmm(long iters) {
    __m512 m = _mm512_set1_ps(0.999999f), d = _mm512_set1_ps(1e-7f);
    __m512 a[12];
    for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) a[j] = _mm512_fmadd_ps(a[j], m, d);
    }
    __m512 s = a[0];
    for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, a[j]);
    return _mm512_reduce_add_ps(s);
}

static void peak_task(void *vctx, int task, int thread) {
    peak_ctx *p = vctx;
    p->sink[task] = p->zmm ? fma_loop_zmm(p->iters) : fma_loop_ymm(p->iters);
}

/* Peak GFLOP/s with `threads` threads (best of 5). */
static double measure_peak(nne_threadpool *pool, int threads, int zmm) {
    peak_ctx p = {.iters = 20 * 1000 * 1000, .zmm = zmm};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = nne_time_ns();
        nne_threadpool_run(pool, threads, peak_task, &p);
        double s = (double)(nne_time_ns() - t0) * 1e-9;
        double gf = (double)p.iters * 12 * (zmm ? 16 : 8) * 2 * threads / s * 1e-9;
        if (gf > best) best = gf;
    }
    return best;
}

/* int16 multiply-add: one vpmaddwd ymm = 16 multiplies + 8 adds into int32 (+ 8 adds of
 * the accumulation): counted as 32 int ops, the unit of the int8 GOP/s (2 x MACs). */
__attribute__((target("avx2"))) static int32_t madd_loop_ymm(long iters) {
    __m256i m = _mm256_set1_epi16(3), a[12];
    for (int j = 0; j < 12; j++) a[j] = _mm256_set1_epi32(j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) a[j] = _mm256_add_epi32(a[j], _mm256_madd_epi16(a[j], m));
    }
    __m256i s = a[0];
    for (int j = 1; j < 12; j++) s = _mm256_add_epi32(s, a[j]);
    return _mm256_extract_epi32(s, 0);
}

__attribute__((unused)) static void madd_task(void *vctx, int task, int thread) {
    peak_ctx *p = vctx;
    p->sink[task] = (float)madd_loop_ymm(p->iters);
}

/* Peak int8-as-int16 GOP/s (2 x int16 MACs per second) with `threads` threads (best of 5). */
__attribute__((unused)) static double measure_peak_madd(nne_threadpool *pool, int threads) {
    peak_ctx p = {.iters = 20 * 1000 * 1000};
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = nne_time_ns();
        nne_threadpool_run(pool, threads, madd_task, &p);
        double s = (double)(nne_time_ns() - t0) * 1e-9;
        double gop = (double)p.iters * 12 * 16 * 2 * threads / s * 1e-9;
        if (gop > best) best = gop;
    }
    return best;
}

#endif
