/* int8 convolution micro-kernel, AVX-512 VNNI (conv_s8_kernels.h; compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni, reached only through conv_fast_s8.c's table
 * when CPUID reports AVX512F, AVX512BW and AVX512_VNNI).
 *
 * vpdpbusd adds, per int32 lane, four u8 x s8 products to the accumulator without any
 * intermediate saturation (the non-"s" form wraps, and cannot wrap here). A holds x + 128
 * as u8 (padding x_zp + 128, the real 0), B the s8 weights, so a lane sums
 * (x + 128) * w = (x - x_zp) * w + (x_zp + 128) * w; the driver subtracts the second term
 * (comp, precomputed per output channel). |sum| <= K * 255 * 128 <= INT32_MAX for
 * K <= NNE_S8_MAX_K (nne_s8_acc_bound).
 *
 * Tile 8 x 16: 8 zmm accumulators, one B vector (16 channels x 4 k) per k quad, 8 broadcasts.
 * Its tests skip without VNNI; they ran and passed on an AVX512_VNNI Xeon (2026-11-22). */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

#include "ops/conv_s8_kernels.h"

#define MR 8

void nne_s8_ukernel__avx512vnni(int32_t m, int32_t n, int32_t kp, const void *va, int32_t lda,
                                const void *vb, int32_t *c, int32_t ldc) {
    const uint8_t *a = va;
    const int8_t *b = vb;
    for (int32_t i = 0; i < m; i += MR) {
        const int mr = m - i < MR ? m - i : MR;
        const uint8_t *r[MR]; /* rows past m repeat the last row; their sums are dropped */
        for (int t = 0; t < MR; t++) r[t] = a + (size_t)(i + (t < mr ? t : mr - 1)) * lda;
        for (int32_t j = 0; j < n; j += NNE_S8_NR) {
            const int8_t *bp = b + (size_t)(j / NNE_S8_NR) * kp * NNE_S8_NR;
            __m512i acc[MR];
            for (int t = 0; t < MR; t++) acc[t] = _mm512_setzero_si512();
            for (int32_t k = 0; k < kp; k += 4, bp += 4 * NNE_S8_NR) {
                const __m512i bv = _mm512_loadu_si512((const void *)bp);
                for (int t = 0; t < MR; t++) {
                    int32_t quad;
                    memcpy(&quad, r[t] + k, 4);
                    acc[t] = _mm512_dpbusd_epi32(acc[t], _mm512_set1_epi32(quad), bv);
                }
            }
            const int nr = n - j < NNE_S8_NR ? n - j : NNE_S8_NR;
            const __mmask16 mask = (__mmask16)((1u << nr) - 1);
            for (int t = 0; t < mr; t++)
                _mm512_mask_storeu_epi32(c + (size_t)(i + t) * ldc + j, mask, acc[t]);
        }
    }
}

#endif
