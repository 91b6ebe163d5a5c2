/* int8 convolution micro-kernel, AVX2 (conv_s8_kernels.h; compiled with -mavx2 -mfma and
 * reached only through conv_fast_s8.c's table when the CPU has AVX2).
 *
 * Exact by construction: A holds x - x_zp as int16 (in [-255, 255]) and B the weights as
 * int16 ([-128, 127]); vpmaddwd multiplies int16 pairs into int32 and adds the two products
 * (|sum| <= 2 * 255 * 128 = 65280: no saturation, which only happens for -32768 * -32768
 * pairs). The u8 x s8 instruction vpmaddubsw is not used: it adds two u8 x s8 products in
 * *saturating* int16 (255 * 127 * 2 = 64770 > 32767), which is not exact for int8 data.
 * The int32 sums are bounded by nne_s8_acc_bound(K, 0) <= INT32_MAX (K <= NNE_S8_MAX_K).
 *
 * Tile 4 x 16: 8 ymm accumulators (4 rows x 2 vectors of 8 channels), 2 B vectors, one
 * broadcast pair and one product: 12 registers. Per k pair: 2 loads, 4 broadcasts, 8 vpmaddwd,
 * 8 vpaddd. */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

#include "ops/conv_s8_kernels.h"

#define MR 4

void nne_s8_ukernel__avx2(int32_t m, int32_t n, int32_t kp, const void *va, int32_t lda,
                          const void *vb, int32_t *c, int32_t ldc) {
    const int16_t *a = va, *b = vb;
    for (int32_t i = 0; i < m; i += MR) {
        const int mr = m - i < MR ? m - i : MR;
        const int16_t *r[MR]; /* rows past m repeat the last row; their sums are dropped */
        for (int t = 0; t < MR; t++) r[t] = a + (size_t)(i + (t < mr ? t : mr - 1)) * lda;
        for (int32_t j = 0; j < n; j += NNE_S8_NR) {
            const int16_t *bp = b + (size_t)(j / NNE_S8_NR) * kp * NNE_S8_NR;
            __m256i c00 = _mm256_setzero_si256(), c01 = _mm256_setzero_si256();
            __m256i c10 = _mm256_setzero_si256(), c11 = _mm256_setzero_si256();
            __m256i c20 = _mm256_setzero_si256(), c21 = _mm256_setzero_si256();
            __m256i c30 = _mm256_setzero_si256(), c31 = _mm256_setzero_si256();
            for (int32_t k = 0; k < kp; k += 2, bp += 2 * NNE_S8_NR) {
                const __m256i b0 = _mm256_load_si256((const __m256i *)bp);
                const __m256i b1 = _mm256_load_si256((const __m256i *)(bp + 16));
                int32_t pair;
                memcpy(&pair, r[0] + k, 4);
                __m256i av = _mm256_set1_epi32(pair);
                c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(av, b0));
                c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(av, b1));
                memcpy(&pair, r[1] + k, 4);
                av = _mm256_set1_epi32(pair);
                c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(av, b0));
                c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(av, b1));
                memcpy(&pair, r[2] + k, 4);
                av = _mm256_set1_epi32(pair);
                c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(av, b0));
                c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(av, b1));
                memcpy(&pair, r[3] + k, 4);
                av = _mm256_set1_epi32(pair);
                c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(av, b0));
                c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(av, b1));
            }
            const __m256i acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
            const int nr = n - j < NNE_S8_NR ? n - j : NNE_S8_NR;
            for (int t = 0; t < mr; t++) {
                int32_t *cr = c + (size_t)(i + t) * ldc + j;
                if (nr == NNE_S8_NR) {
                    _mm256_storeu_si256((__m256i *)cr, acc[t][0]);
                    _mm256_storeu_si256((__m256i *)(cr + 8), acc[t][1]);
                } else {
                    int32_t tmp[NNE_S8_NR] __attribute__((aligned(32)));
                    _mm256_store_si256((__m256i *)tmp, acc[t][0]);
                    _mm256_store_si256((__m256i *)(tmp + 8), acc[t][1]);
                    memcpy(cr, tmp, (size_t)nr * sizeof *cr);
                }
            }
        }
    }
}

#endif
