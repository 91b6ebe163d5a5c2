/* f32 GEMM, AVX-512F variant. Compiled with -mavx512f -mavx512bw -mavx512vl -mfma (CMake:
 * *_avx512.c under x86/); only reached through the dispatch table when the CPU has them.
 *
 * Micro-kernel 12x32: 24 zmm accumulators (12 rows x 2 vectors of 16 columns), 2 for the B
 * row, one for the broadcast A element: 24 FMAs per k against 14
 * loads, enough to saturate two 512-bit FMA pipes. Blocking for 48 KiB L1d / 1-2 MiB L2:
 * B micro-panel kc x 32 x 4 B <= 32 KiB (kc <= 256), A block 192 x kc x 4 B <= 192 KiB,
 * B panel kc x 3072 x 4 B <= 3 MiB. */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define GEMM_MR 12
#define GEMM_NR 32
#define GEMM_MC 192
#define GEMM_KC 256
#define GEMM_NC 3072

/* c[mr][nr] (ldc) = (overwrite ? 0 : c) + sum_k a[k][0..11] (x) b[k][0..31]. a, b packed;
 * b 64-byte aligned. The full 12x32 tile is always computed. */
static inline void gemm_ukernel(int32_t kc, const float *restrict a, const float *restrict b,
                                float *restrict c, int32_t ldc, bool overwrite, int mr, int nr) {
    __m512 acc[GEMM_MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < GEMM_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    if (mr == GEMM_MR) {
#pragma GCC unroll 12
        for (int r = 0; r < GEMM_MR; r++) {
            _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
        }
    }
    for (int32_t p = 0; p < kc; p++, a += GEMM_MR, b += GEMM_NR) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < GEMM_MR; r++) {
            const __m512 av = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    if (mr == GEMM_MR && nr == GEMM_NR) {
#pragma GCC unroll 12
        for (int r = 0; r < GEMM_MR; r++) {
            float *cr = c + (size_t)r * ldc;
            if (overwrite) {
                _mm512_storeu_ps(cr, acc[r][0]);
                _mm512_storeu_ps(cr + 16, acc[r][1]);
            } else {
                _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]));
                _mm512_storeu_ps(cr + 16, _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc[r][1]));
            }
        }
        return;
    }
    /* Edge tile: same sums, stored element-wise (one f32 add, like the vector path). */
    float tmp[GEMM_MR][GEMM_NR] __attribute__((aligned(64)));
    for (int r = 0; r < GEMM_MR; r++) {
        _mm512_store_ps(tmp[r], acc[r][0]);
        _mm512_store_ps(tmp[r] + 16, acc[r][1]);
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        for (int j = 0; j < nr; j++) cr[j] = overwrite ? tmp[r][j] : cr[j] + tmp[r][j];
    }
}

#include "gemm_f32_driver.h"

void nne_gemm_f32__avx512(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                          const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                          int32_t ldc, void *scratch) {
    gemm_driver(pool, flags, m, n, k, a, lda, b, ldb, c, ldc, scratch);
}

size_t nne_gemm_f32_scratch_size__avx512(int32_t m, int32_t n, int32_t k, int threads) {
    return gemm_scratch_size(m, n, k, threads);
}

#endif
