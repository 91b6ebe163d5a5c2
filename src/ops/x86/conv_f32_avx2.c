/* f32 direct band kernels, AVX2 + FMA (conv_band.h; compiled with -mavx2 -mfma and reached
 * only through conv_band_f32.c when the CPU has both).
 *
 * panel: tile 6 pixels x 16 channels: 12 ymm accumulators, 2 weight vectors, 1 broadcast.
 *   Per depth step: 2 weight loads + 6 broadcasts from the band (vbroadcastss from memory is
 *   a plain load on Zen and Intel), 12 FMAs. No packing of A: the band is read in place, so
 *   a K = 27 layer does no gather at all. Bias and activation on the registers, then y.
 * tiny N: tile 4 pixels x 3 channels, vectorized along the depth: 12 accumulators, 3 weight
 *   vectors, 1 input vector. Per 8 depth elements: 4 + 3 loads, 12 FMAs. Each accumulator is
 *   reduced by a hadd tree; a segment's tail is read with vmaskmovps (lanes past it neither
 *   read nor counted: no NaN from a neighbour can leak in).
 * Each pixel's sums run in the same order wherever it sits in a tile (rows past m repeat the
 * last pixel and are not stored), so results do not depend on the thread count. */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include "ops/conv_band.h"

/* Lanes [0, n) set, n in [0, 8]. */
static inline __m256i lane_mask(int32_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* act(v) on 8 lanes, as conv_f32_act: ReLU v > 0 ? v : 0 (max_ps returns its second operand,
 * 0, for NaN as the reference does); PReLU v < 0 ? v * slope : v. */
static inline __m256 act8(__m256 v, nne_conv_act_kind kind, __m256 slope) {
    const __m256 zero = _mm256_setzero_ps();
    if (kind == NNE_CONV_ACT_RELU) return _mm256_max_ps(v, zero);
    if (kind == NNE_CONV_ACT_PRELU)
        return _mm256_blendv_ps(v, _mm256_mul_ps(v, slope), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    return v;
}

#define MR 6

void nne_conv_band_f32_panel__avx2(const conv_band_run *r, const float *w, const float *bias,
                                   const nne_conv_act *act, float *y) {
    const float *a = r->a;
    const int32_t K = r->nseg * r->seglen;
    const nne_conv_act_kind kind = act ? act->kind : NNE_CONV_ACT_NONE;
    for (int32_t j = 0; j < r->oc; j += 16) {
        const int32_t nr = r->oc - j < 16 ? r->oc - j : 16;
        const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
        const __m256 zero = _mm256_setzero_ps();
        const __m256 bias0 = bias ? _mm256_maskload_ps(bias + j, m0) : zero;
        const __m256 bias1 = bias && nr > 8 ? _mm256_maskload_ps(bias + j + 8, m1) : zero;
        __m256 sl0 = zero, sl1 = zero;
        if (kind == NNE_CONV_ACT_PRELU) {
            if (act->n_slope == 1) {
                sl0 = sl1 = _mm256_set1_ps(act->slope[0]);
            } else {
                sl0 = _mm256_maskload_ps(act->slope + j, m0);
                if (nr > 8) sl1 = _mm256_maskload_ps(act->slope + j + 8, m1);
            }
        }
        const float *wp = w + (size_t)(j / 16) * K * 16;
        for (int32_t i = 0; i < r->m; i += MR) {
            const int32_t mr = r->m - i < MR ? r->m - i : MR;
            const float *p[MR];
            for (int t = 0; t < MR; t++) p[t] = a + (i + (t < mr ? t : mr - 1)) * r->a_step;
            __m256 c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
            __m256 c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
            const float *b = wp;
            for (int32_t s = 0; s < r->nseg; s++) {
                const int64_t so = r->soff[s];
                const float *q0 = p[0] + so, *q1 = p[1] + so, *q2 = p[2] + so;
                const float *q3 = p[3] + so, *q4 = p[4] + so, *q5 = p[5] + so;
                for (int32_t e = 0; e < r->seglen; e++, b += 16) {
                    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                    __m256 av = _mm256_broadcast_ss(q0 + e);
                    c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01);
                    av = _mm256_broadcast_ss(q1 + e);
                    c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11);
                    av = _mm256_broadcast_ss(q2 + e);
                    c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);
                    av = _mm256_broadcast_ss(q3 + e);
                    c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);
                    av = _mm256_broadcast_ss(q4 + e);
                    c40 = _mm256_fmadd_ps(av, b0, c40), c41 = _mm256_fmadd_ps(av, b1, c41);
                    av = _mm256_broadcast_ss(q5 + e);
                    c50 = _mm256_fmadd_ps(av, b0, c50), c51 = _mm256_fmadd_ps(av, b1, c51);
                }
            }
            const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                       {c30, c31}, {c40, c41}, {c50, c51}};
            for (int t = 0; t < mr; t++) {
                float *yr = y + (i + t) * r->y_step + j;
                const __m256 v0 = act8(_mm256_add_ps(acc[t][0], bias0), kind, sl0);
                const __m256 v1 = act8(_mm256_add_ps(acc[t][1], bias1), kind, sl1);
                if (nr == 16) {
                    _mm256_storeu_ps(yr, v0);
                    _mm256_storeu_ps(yr + 8, v1);
                } else {
                    _mm256_maskstore_ps(yr, m0, v0);
                    if (nr > 8) _mm256_maskstore_ps(yr + 8, m1, v1);
                }
            }
        }
    }
}

/* [sum(a) sum(b) sum(c) sum(d)] */
static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

#define TP 4 /* pixels per tile */
#define TC 3 /* channels per tile */

void nne_conv_band_f32_tinyn__avx2(const conv_band_run *r, const float *w, const float *bias,
                                   const nne_conv_act *act, float *y) {
    const float *a = r->a;
    const int32_t lp = (r->seglen + 7) & ~7, full = r->seglen & ~7;
    const __m256i tail = lane_mask(r->seglen - full);
    const size_t wstride = (size_t)r->nseg * lp; /* one channel's packed weights */
    for (int32_t j = 0; j < r->oc; j += TC) {
        const int32_t nc = r->oc - j < TC ? r->oc - j : TC;
        const float *w0 = w + (size_t)j * wstride;
        const float *w1 = w + (size_t)(j + (nc > 1 ? 1 : 0)) * wstride;
        const float *w2 = w + (size_t)(j + (nc > 2 ? 2 : nc - 1)) * wstride;
        for (int32_t i = 0; i < r->m; i += TP) {
            const int32_t mr = r->m - i < TP ? r->m - i : TP;
            const float *p[TP];
            for (int t = 0; t < TP; t++) p[t] = a + (i + (t < mr ? t : mr - 1)) * r->a_step;
            const __m256 zero = _mm256_setzero_ps();
            __m256 c00 = zero, c01 = zero, c02 = zero, c10 = zero, c11 = zero, c12 = zero;
            __m256 c20 = zero, c21 = zero, c22 = zero, c30 = zero, c31 = zero, c32 = zero;
            for (int32_t s = 0; s < r->nseg; s++) {
                const int64_t so = r->soff[s];
                const float *q0 = p[0] + so, *q1 = p[1] + so, *q2 = p[2] + so, *q3 = p[3] + so;
                const float *v0 = w0 + (size_t)s * lp, *v1 = w1 + (size_t)s * lp;
                const float *v2 = w2 + (size_t)s * lp;
                int32_t e = 0;
#define TINYN_STEP(LOAD)                                                                           \
    do {                                                                                           \
        const __m256 b0 = _mm256_loadu_ps(v0 + e), b1 = _mm256_loadu_ps(v1 + e);                   \
        const __m256 b2 = _mm256_loadu_ps(v2 + e);                                                 \
        __m256 x = LOAD(q0 + e);                                                                   \
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);                      \
        c02 = _mm256_fmadd_ps(x, b2, c02);                                                         \
        x = LOAD(q1 + e);                                                                          \
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);                      \
        c12 = _mm256_fmadd_ps(x, b2, c12);                                                         \
        x = LOAD(q2 + e);                                                                          \
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);                      \
        c22 = _mm256_fmadd_ps(x, b2, c22);                                                         \
        x = LOAD(q3 + e);                                                                          \
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);                      \
        c32 = _mm256_fmadd_ps(x, b2, c32);                                                         \
    } while (0)
#define LOAD_FULL(ptr) _mm256_loadu_ps(ptr)
#define LOAD_TAIL(ptr) _mm256_maskload_ps(ptr, tail)
                for (; e < full; e += 8) TINYN_STEP(LOAD_FULL);
                if (e < r->seglen) TINYN_STEP(LOAD_TAIL); /* weights are zero past seglen */
#undef LOAD_FULL
#undef LOAD_TAIL
#undef TINYN_STEP
            }
            float sums[TC][TP];
            _mm_storeu_ps(sums[0], hsum4(c00, c10, c20, c30));
            _mm_storeu_ps(sums[1], hsum4(c01, c11, c21, c31));
            _mm_storeu_ps(sums[2], hsum4(c02, c12, c22, c32));
            for (int t = 0; t < mr; t++) {
                float *yr = y + (i + t) * r->y_step + j;
                for (int32_t c = 0; c < nc; c++)
                    yr[c] = conv_f32_act(bias ? sums[c][t] + bias[j + c] : sums[c][t], j + c, act);
            }
        }
    }
}

#endif
