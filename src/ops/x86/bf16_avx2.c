/* bf16 <-> f32 array conversion, AVX2 (conv_bf16.h): 16 elements per step, scalar tails.
 * The same bits as nne_f32_to_bf16 / nne_bf16_to_f32 (common.h), tested against them. */
#include <immintrin.h>

#include "ops/conv_bf16.h"

/* 8 floats -> 8 bf16 in the low 16 bits of each 32-bit lane, rounded as nne_f32_to_bf16:
 * u + 0x7FFF + ((u >> 16) & 1), shifted down; NaN: (u >> 16) | 0x40. */
static inline __m256i round8(__m256 v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    /* |u| > inf as signed compare on the magnitude bits (0 .. 0x7FFFFFFF) */
    const __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
    const __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7F800000));
    return _mm256_blendv_epi8(r, q, nan);
}

void nne_f32_to_bf16_array__avx2(const float *x, nne_bf16 *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = round8(_mm256_loadu_ps(x + i)), b = round8(_mm256_loadu_ps(x + i + 8));
        /* lanes hold 0..0xFFFF, so the unsigned saturating pack is exact; it interleaves the
         * 128-bit halves (a0 b0 a1 b1), the permute puts them back in order */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
        _mm256_storeu_si256((__m256i *)(void *)(y + i), p);
    }
    for (; i < n; i++) y[i] = nne_f32_to_bf16(x[i]);
}

void nne_bf16_to_f32_array__avx2(const nne_bf16 *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        const __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(h));
        const __m256i hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(lo, 16)));
        _mm256_storeu_ps(y + i + 8, _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16)));
    }
    for (; i < n; i++) y[i] = nne_bf16_to_f32(x[i]);
}
