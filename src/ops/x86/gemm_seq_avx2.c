/* f32 GEMM in the reference's arithmetic, AVX2 (include/nnedge/gemm.h, nne_gemm_f32_seq):
 * bit-identical to nne_gemm_f32__ref. Compiled with -mavx2 -mfma but uses no FMA: every
 * product is rounded (vmulps) and then added (vaddps) to an f32 accumulator that starts at
 * 0 and runs over k in increasing order, exactly the reference's scalar sequence, one
 * element per SIMD lane. The library is built with -ffp-contract=off, so the compiler does
 * not fuse the two either (and tests/ops/test_gemm_seq.c checks the bits).
 *
 * Only the NT case (C = A B^T, A [m][lda], B [n][ldb]: im2col patches times OHWI weights)
 * is vectorized, across rows of A: A is packed into panels of 8 rows, k-major
 * (ap[panel][k][8], rows past m zero), so one aligned load gives 8 rows at one k, and each
 * B element is broadcast. Register tile: 2 panels x 4 columns = 8 accumulators; per k,
 * 2 loads + 4 broadcasts feed 8 vmulps + 8 vaddps. On Zen 3 multiplies (pipes 0/1) and adds
 * (pipes 2/3) issue in parallel, so this runs at the FMA kernel's peak rate in principle;
 * what it lacks is the FMA GEMM's K and N blocking (fine for the convolution tiles, whose
 * A tile is ~128 KiB). Edge tiles reuse the last valid row panel / column and drop the
 * extra results. Serial. */
#if defined(__x86_64__) || defined(__i386__)

#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "nnedge/gemm.h"

#define SEQ_PANEL 8 /* rows per A panel: one ymm */
#define SEQ_NP    2 /* panels per register tile */
#define SEQ_NC    4 /* columns per register tile */

size_t nne_gemm_f32_seq_scratch_size__avx2(int32_t m, int32_t n, int32_t k) {
    (void)n;
    const size_t panels = ((size_t)(m > 0 ? m : 0) + SEQ_PANEL - 1) / SEQ_PANEL;
    return (panels * SEQ_PANEL * (size_t)(k > 0 ? k : 0) * sizeof(float) + 63) & ~(size_t)63;
}

/* acc[r][j] = sum_k a_r[k][0..7] * b_j[k], in k order, product rounded before the add. */
static inline void seq_tile(int32_t k, const float *a0, const float *a1, const float *b0,
                            const float *b1, const float *b2, const float *b3,
                            __m256 acc[SEQ_NP][SEQ_NC]) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps(),
           c03 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(),
           c12 = _mm256_setzero_ps(), c13 = _mm256_setzero_ps();
    for (int32_t p = 0; p < k; p++) {
        const __m256 x0 = _mm256_load_ps(a0 + (size_t)p * SEQ_PANEL);
        const __m256 x1 = _mm256_load_ps(a1 + (size_t)p * SEQ_PANEL);
        __m256 w = _mm256_broadcast_ss(b0 + p);
        c00 = _mm256_add_ps(c00, _mm256_mul_ps(x0, w));
        c10 = _mm256_add_ps(c10, _mm256_mul_ps(x1, w));
        w = _mm256_broadcast_ss(b1 + p);
        c01 = _mm256_add_ps(c01, _mm256_mul_ps(x0, w));
        c11 = _mm256_add_ps(c11, _mm256_mul_ps(x1, w));
        w = _mm256_broadcast_ss(b2 + p);
        c02 = _mm256_add_ps(c02, _mm256_mul_ps(x0, w));
        c12 = _mm256_add_ps(c12, _mm256_mul_ps(x1, w));
        w = _mm256_broadcast_ss(b3 + p);
        c03 = _mm256_add_ps(c03, _mm256_mul_ps(x0, w));
        c13 = _mm256_add_ps(c13, _mm256_mul_ps(x1, w));
    }
    acc[0][0] = c00, acc[0][1] = c01, acc[0][2] = c02, acc[0][3] = c03;
    acc[1][0] = c10, acc[1][1] = c11, acc[1][2] = c12, acc[1][3] = c13;
}

void nne_gemm_f32_seq__avx2(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                            const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                            int32_t ldc, void *scratch) {
    (void)pool;
    assert(flags == NNE_GEMM_TRANS_B || flags == (NNE_GEMM_TRANS_B | NNE_GEMM_ACCUMULATE));
    assert(m >= 0 && n >= 0 && k >= 0 && lda >= k && ldb >= k && ldc >= n);
    const bool acc_c = flags & NNE_GEMM_ACCUMULATE;
    if (m == 0 || n == 0) return;
    if (k == 0) {
        if (!acc_c)
            for (int32_t i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof *c);
        return;
    }
    assert(scratch && ((uintptr_t)scratch & 31) == 0);
    /* Pack A: panel q holds rows 8q..8q+7, k-major. */
    float *ap = scratch;
    const int32_t np = (m + SEQ_PANEL - 1) / SEQ_PANEL;
    for (int32_t q = 0; q < np; q++) {
        float *d = ap + (size_t)q * k * SEQ_PANEL;
        for (int32_t r = 0; r < SEQ_PANEL; r++) {
            const int32_t i = q * SEQ_PANEL + r;
            const float *src = a + (size_t)i * lda;
            for (int32_t p = 0; p < k; p++) d[(size_t)p * SEQ_PANEL + r] = i < m ? src[p] : 0.0f;
        }
    }
    for (int32_t j = 0; j < n; j += SEQ_NC) {
        const float *bj[SEQ_NC];
        for (int t = 0; t < SEQ_NC; t++) bj[t] = b + (size_t)(j + t < n ? j + t : n - 1) * ldb;
        for (int32_t q = 0; q < np; q += SEQ_NP) {
            const float *a0 = ap + (size_t)q * k * SEQ_PANEL;
            const float *a1 = q + 1 < np ? a0 + (size_t)k * SEQ_PANEL : a0;
            __m256 acc[SEQ_NP][SEQ_NC];
            seq_tile(k, a0, a1, bj[0], bj[1], bj[2], bj[3], acc);
            for (int r = 0; r < SEQ_NP && q + r < np; r++)
                for (int t = 0; t < SEQ_NC && j + t < n; t++) {
                    float v[SEQ_PANEL];
                    _mm256_storeu_ps(v, acc[r][t]);
                    for (int l = 0; l < SEQ_PANEL; l++) {
                        const int32_t i = (q + r) * SEQ_PANEL + l;
                        if (i >= m) break;
                        float *cij = c + (size_t)i * ldc + j + t;
                        *cij = acc_c ? *cij + v[l] : v[l];
                    }
                }
        }
    }
}

#endif
