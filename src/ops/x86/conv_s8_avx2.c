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

/* Saturating per-lane left shift by s in [0, 31]: v << s, or INT32_MIN / INT32_MAX by v's
 * sign when the shift overflows (nne_sat_s32(v * 2^s)). */
static inline __m256i sat_shl(__m256i v, __m256i s) {
    const __m256i sh = _mm256_sllv_epi32(v, s);
    const __m256i ok = _mm256_cmpeq_epi32(_mm256_srav_epi32(sh, s), v);
    const __m256i sat = _mm256_xor_si256(_mm256_set1_epi32(INT32_MAX), _mm256_srai_epi32(v, 31));
    return _mm256_blendv_epi8(sat, sh, ok);
}

/* The output stage of qops.h, 8 channels per step (conv_s8_kernels.h):
 *   Q31:  a = sat_shl(acc, lsh); h = SRDHM(a, m) = floor((a m + 2^30) / 2^31) (equal to
 *         gemmlowp's truncating form, docs/quantization.md 4.2), 64-bit products of the even
 *         lanes and of the odd lanes (vpmuldq); r = RDBP(h, rsh), ties away from zero
 *   pow2: a = sat_shl(acc, lsh); r = (a >> rsh) + bit rsh-1 of a (= floor(a / 2^rsh + 1/2))
 * then r is clamped to [lo - zp, hi - zp] (|.| <= 255: no overflow) and zp added. */
int32_t nne_s8_output__avx2(int32_t n, const int32_t *acc, const int32_t *addv,
                            const int32_t *mult, const int32_t *lsh, const int32_t *rsh, bool pow2,
                            int32_t zero_point, int32_t lo, int32_t hi, int8_t *y) {
    const __m256i vlo = _mm256_set1_epi32(lo - zero_point), vhi = _mm256_set1_epi32(hi - zero_point);
    const __m256i vzp = _mm256_set1_epi32(zero_point), one = _mm256_set1_epi32(1);
    const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30), zero = _mm256_setzero_si256();
    int32_t j = 0;
    for (; j + 8 <= n; j += 8) {
        /* acc + addv is the reference's exact accumulator (within nne_s8_acc_bound) */
        const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + j)),
                                           _mm256_loadu_si256((const __m256i *)(addv + j)));
        const __m256i ls = _mm256_loadu_si256((const __m256i *)(lsh + j));
        const __m256i rs = _mm256_loadu_si256((const __m256i *)(rsh + j));
        const __m256i a = sat_shl(v, ls);
        __m256i r;
        if (pow2) {
            const __m256i rs1 = _mm256_max_epi32(_mm256_sub_epi32(rs, one), zero);
            const __m256i bit = _mm256_and_si256(_mm256_and_si256(_mm256_srav_epi32(a, rs1), one),
                                                 _mm256_cmpgt_epi32(rs, zero));
            r = _mm256_add_epi32(_mm256_srav_epi32(a, rs), bit);
        } else {
            const __m256i m = _mm256_loadu_si256((const __m256i *)(mult + j));
            const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(a, m), nudge);
            const __m256i po = _mm256_add_epi64(
                _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32)), nudge);
            /* bits 31..62 of each 64-bit sum: even lanes shifted down, odd lanes up by 1 */
            const __m256i h = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31),
                                                 _mm256_slli_epi64(po, 1), 0xAA);
            const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rs), one);
            const __m256i rem = _mm256_and_si256(h, mask);
            const __m256i thr =
                _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(h, 31));
            r = _mm256_sub_epi32(_mm256_srav_epi32(h, rs), _mm256_cmpgt_epi32(rem, thr));
        }
        r = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r, vlo), vhi), vzp);
        const __m256i p16 = _mm256_packs_epi32(r, r);    /* [r0-3 r0-3 | r4-7 r4-7] */
        const __m256i p8 = _mm256_packs_epi16(p16, p16); /* bytes r0-3 .. | r4-7 .. */
        const int32_t lo4 = _mm256_cvtsi256_si32(p8), hi4 = _mm256_extract_epi32(p8, 4);
        memcpy(y + j, &lo4, 4);
        memcpy(y + j + 4, &hi4, 4);
    }
    return j;
}

#endif
