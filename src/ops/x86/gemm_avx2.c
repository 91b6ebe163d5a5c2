/* f32 GEMM, AVX2 + FMA variant. Compiled with -mavx2 -mfma (CMake: *_avx2.c under x86/);
 * only reached through the dispatch table when the CPU has both.
 *
 * Micro-kernel 6x16: 12 ymm accumulators (6 rows x 2 vectors of 8 columns), 2 for the B
 * row, 1 for the broadcast A element: 15 of 16 registers; 12 FMAs per k against 8 loads,
 * which keeps both FMA pipes of a Zen 3 / Skylake core busy (the BLIS haswell/zen shape).
 * Blocking for 32 KiB L1d / 512 KiB..1 MiB L2: B micro-panel kc x 16 x 4 B <= 20 KiB (kc
 * <= 320), A block 144 x kc x 4 B <= 180 KiB, B panel kc x 4080 x 4 B <= 5.1 MiB (L3). */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define GEMM_MR 6
#define GEMM_NR 16
#define GEMM_MC 144
#define GEMM_KC 320
#define GEMM_NC 4080

/* c[mr][nr] (ldc) = (overwrite ? 0 : c) + sum_k a[k][0..5] (x) b[k][0..15]. a, b packed;
 * b 32-byte aligned. The full 6x16 tile is always computed. */
static inline void gemm_ukernel(int32_t kc, const float *restrict a, const float *restrict b,
                                float *restrict c, int32_t ldc, bool overwrite, int mr, int nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    if (mr == GEMM_MR) /* warm the C rows that the epilogue will read or write */
        for (int r = 0; r < GEMM_MR; r++)
            _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
    for (int32_t p = 0; p < kc; p++, a += GEMM_MR, b += GEMM_NR) {
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 av = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
    }
    __m256 acc[GEMM_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                              {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == GEMM_MR && nr == GEMM_NR) {
        for (int r = 0; r < GEMM_MR; r++) {
            float *cr = c + (size_t)r * ldc;
            if (overwrite) {
                _mm256_storeu_ps(cr, acc[r][0]);
                _mm256_storeu_ps(cr + 8, acc[r][1]);
            } else {
                _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), acc[r][0]));
                _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[r][1]));
            }
        }
        return;
    }
    /* Edge tile: same sums, stored element-wise (one f32 add, like the vector path). */
    float tmp[GEMM_MR][GEMM_NR] __attribute__((aligned(32)));
    for (int r = 0; r < GEMM_MR; r++) {
        _mm256_store_ps(tmp[r], acc[r][0]);
        _mm256_store_ps(tmp[r] + 8, acc[r][1]);
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        for (int j = 0; j < nr; j++) cr[j] = overwrite ? tmp[r][j] : cr[j] + tmp[r][j];
    }
}

#include "gemm_f32_driver.h"

void nne_gemm_f32__avx2(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                        const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                        int32_t ldc, void *scratch) {
    gemm_driver(pool, flags, m, n, k, a, lda, b, ldb, c, ldc, scratch);
}

size_t nne_gemm_f32_scratch_size__avx2(int32_t m, int32_t n, int32_t k, int threads) {
    return gemm_scratch_size(m, n, k, threads);
}

#endif
