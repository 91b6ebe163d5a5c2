/* The bf16 pair micro-kernel on AVX512_BF16 (conv_bf16.h): vdpbf16ps, 8 rows x 16 output
 * channels per block (8 zmm accumulators), one weight load and 8 broadcasts of a bf16 pair
 * per pair of depth elements. Compiled with -mavx512bf16 and dispatched only when CPUID
 * reports AVX512F, AVX512BW and AVX512_BF16 (conv_bf16.c). The driver around it is tested on
 * every CPU with the portable emulation nne_conv_bf16_pair__emul, which follows the same
 * instruction's pseudocode; on AVX512_BF16 CPUs the kernel is compared with it bit for bit
 * (tests/ops/test_conv_bf16.c, passing on an Intel Xeon on 2026-11-22). */
#include <immintrin.h>
#include <string.h>

#include "ops/conv_bf16.h"

/* The pair of bf16 at p (4 bytes) in every 32-bit lane. */
static inline __m512i bcast_pair(const nne_bf16 *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

#define DP(acc, a, b) acc = _mm512_dpbf16_ps(acc, (__m512bh)(a), (__m512bh)(b))

void nne_conv_bf16_pair__avx512bf16(int32_t m, int32_t pairs, const nne_bf16 *a, size_t lda,
                                    const nne_bf16 *b, float *c) {
    int32_t i = 0;
    for (; i + 8 <= m; i += 8) {
        const nne_bf16 *ar = a + (size_t)i * lda;
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
               c7 = c0;
        for (int32_t p = 0; p < pairs; p++) {
            const __m512i w = _mm512_loadu_si512((const void *)(b + (size_t)p * 32));
            const nne_bf16 *ap = ar + 2 * (size_t)p;
            DP(c0, bcast_pair(ap), w);
            DP(c1, bcast_pair(ap + lda), w);
            DP(c2, bcast_pair(ap + 2 * lda), w);
            DP(c3, bcast_pair(ap + 3 * lda), w);
            DP(c4, bcast_pair(ap + 4 * lda), w);
            DP(c5, bcast_pair(ap + 5 * lda), w);
            DP(c6, bcast_pair(ap + 6 * lda), w);
            DP(c7, bcast_pair(ap + 7 * lda), w);
        }
        float *cr = c + (size_t)i * CONV_BF16_PANEL;
        _mm512_storeu_ps(cr, c0);
        _mm512_storeu_ps(cr + 16, c1);
        _mm512_storeu_ps(cr + 32, c2);
        _mm512_storeu_ps(cr + 48, c3);
        _mm512_storeu_ps(cr + 64, c4);
        _mm512_storeu_ps(cr + 80, c5);
        _mm512_storeu_ps(cr + 96, c6);
        _mm512_storeu_ps(cr + 112, c7);
    }
    for (; i < m; i++) { /* the last m % 8 rows, one accumulator each */
        const nne_bf16 *ar = a + (size_t)i * lda;
        __m512 acc = _mm512_setzero_ps();
        for (int32_t p = 0; p < pairs; p++)
            DP(acc, bcast_pair(ar + 2 * (size_t)p),
               _mm512_loadu_si512((const void *)(b + (size_t)p * 32)));
        _mm512_storeu_ps(c + (size_t)i * CONV_BF16_PANEL, acc);
    }
}
