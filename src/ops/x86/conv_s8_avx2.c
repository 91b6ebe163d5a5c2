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

#include "ops/conv_band.h"
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

/* The output stage of qops.h on 8 lanes (conv_s8_kernels.h), v = acc + addv:
 *   Q31:  a = sat_shl(v, lsh); h = SRDHM(a, m) = floor((a m + 2^30) / 2^31) (equal to
 *         gemmlowp's truncating form, docs/quantization.md 4.2), 64-bit products of the even
 *         lanes and of the odd lanes (vpmuldq); r = RDBP(h, rsh), ties away from zero:
 *         (h >> rsh) + (rem > (mask >> 1) + (h < 0)), rem = h & mask, mask = 2^rsh - 1
 *   pow2: a = sat_shl(v, lsh); r = (a >> rsh) + bit rsh-1 of a (= floor(a / 2^rsh + 1/2))
 * then r is clamped to [lo - zp, hi - zp] (|.| <= 255: no overflow) and zp added: the int32
 * lanes hold the output codes. The per-channel parts that do not depend on v are made once
 * per 8 channels (s8_q8_load); the saturating shift is skipped when no lane shifts left. */
typedef struct s8_stage {
    __m256i vlo, vhi, vzp; /* lo - zp, hi - zp, zp */
    bool pow2;
} s8_stage;

static inline s8_stage s8_stage_make(bool pow2, int32_t zero_point, int32_t lo, int32_t hi) {
    s8_stage st = {_mm256_set1_epi32(lo - zero_point), _mm256_set1_epi32(hi - zero_point),
                   _mm256_set1_epi32(zero_point), pow2};
    return st;
}

typedef struct s8_q8 {
    __m256i ls, rs, m, m_odd, mask, half, rs1;
    bool shl; /* some lane shifts left */
} s8_q8;

static inline s8_q8 s8_q8_make(__m256i m, __m256i ls, __m256i rs) {
    const __m256i one = _mm256_set1_epi32(1);
    s8_q8 q;
    q.ls = ls, q.rs = rs, q.m = m;
    q.m_odd = _mm256_srli_epi64(m, 32);
    q.mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, rs), one);
    q.half = _mm256_srli_epi32(q.mask, 1);
    q.rs1 = _mm256_max_epi32(_mm256_sub_epi32(rs, one), _mm256_setzero_si256());
    q.shl = !_mm256_testz_si256(ls, ls);
    return q;
}

static inline s8_q8 s8_q8_load(const int32_t *mult, const int32_t *lsh, const int32_t *rsh) {
    return s8_q8_make(_mm256_loadu_si256((const __m256i *)mult),
                      _mm256_loadu_si256((const __m256i *)lsh),
                      _mm256_loadu_si256((const __m256i *)rsh));
}

/* r = nne_requantize(v, q) on 8 lanes: no zero point, no clamp. */
static inline __m256i s8_rq8(const s8_stage *st, const s8_q8 *q, __m256i v) {
    const __m256i one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
    const __m256i a = q->shl ? sat_shl(v, q->ls) : v;
    __m256i r;
    if (st->pow2) {
        const __m256i bit = _mm256_and_si256(_mm256_and_si256(_mm256_srav_epi32(a, q->rs1), one),
                                             _mm256_cmpgt_epi32(q->rs, zero));
        r = _mm256_add_epi32(_mm256_srav_epi32(a, q->rs), bit);
    } else {
        const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
        const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(a, q->m), nudge);
        const __m256i po =
            _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), q->m_odd), nudge);
        /* bits 31..62 of each 64-bit sum: even lanes shifted down, odd lanes up by 1 */
        const __m256i h =
            _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
        const __m256i rem = _mm256_and_si256(h, q->mask);
        const __m256i thr = _mm256_sub_epi32(q->half, _mm256_srai_epi32(h, 31));
        r = _mm256_sub_epi32(_mm256_srav_epi32(h, q->rs), _mm256_cmpgt_epi32(rem, thr));
    }
    return r;
}

/* The clamp and zero point of r: the output codes. */
static inline __m256i s8_finish8(const s8_stage *st, __m256i r) {
    return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r, st->vlo), st->vhi), st->vzp);
}

static inline __m256i s8_requant8(const s8_stage *st, const s8_q8 *q, __m256i v) {
    return s8_finish8(st, s8_rq8(st, q, v));
}

/* The same with a fused PReLU (nne_qoutput.rq_neg), as nne_qoutput_apply: each lane takes
 * the negative side's parameters where v < 0 (vblendvps selects on v's sign bit), then the
 * one requantization, clamp and zero point. Selecting the parameters costs 4 blends and a
 * shift where a second requantization and a blend of the results would cost ~15 operations
 * (docs/conv.md, "Fused PReLU output stage"). */
static inline __m256i s8_requant8_prelu(const s8_stage *st, const s8_q8 *qp, const s8_q8 *qn,
                                        __m256i v) {
    const __m256 neg = _mm256_castsi256_ps(v);
#define SEL(f)                                                                                     \
    _mm256_castps_si256(                                                                           \
        _mm256_blendv_ps(_mm256_castsi256_ps(qp->f), _mm256_castsi256_ps(qn->f), neg))
    s8_q8 q;
    q.shl = qp->shl || qn->shl;
    q.ls = q.shl ? SEL(ls) : qp->ls; /* all zero when neither side shifts left */
    q.rs = SEL(rs);
    if (st->pow2) {
        q.rs1 = SEL(rs1);
    } else {
        q.m = SEL(m);
        q.m_odd = _mm256_srli_epi64(q.m, 32); /* lane 2i + 1's in lane 2i: not a blend by v */
        q.mask = SEL(mask);
        q.half = SEL(half);
    }
#undef SEL
    return s8_finish8(st, s8_rq8(st, &q, v));
}

/* 8 int32 codes (in [-128, 127]) to 8 bytes at y. */
static inline void store8(__m256i r, int8_t *y) {
    const __m256i p16 = _mm256_packs_epi32(r, r);    /* [r0-3 r0-3 | r4-7 r4-7] */
    const __m256i p8 = _mm256_packs_epi16(p16, p16); /* bytes r0-3 .. | r4-7 .. */
    const int32_t lo4 = _mm256_cvtsi256_si32(p8), hi4 = _mm256_extract_epi32(p8, 4);
    memcpy(y, &lo4, 4);
    memcpy(y + 4, &hi4, 4);
}

/* 16 int32 codes (r0 then r1) to 16 bytes: one store. */
static inline __m128i pack16(__m256i r0, __m256i r1) {
    const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
    return _mm_packs_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
}

/* The output stage of the first n & ~7 channels of one pixel (nne_s8_output_fn); a fused
 * PReLU (nmult set) takes its own loop, so that the plain one is unchanged. */
int32_t nne_s8_output__avx2(int32_t n, const int32_t *acc, const int32_t *addv, const int32_t *mult,
                            const int32_t *lsh, const int32_t *rsh, const int32_t *nmult,
                            const int32_t *nlsh, const int32_t *nrsh, bool pow2, int32_t zero_point,
                            int32_t lo, int32_t hi, int8_t *y) {
    const s8_stage st = s8_stage_make(pow2, zero_point, lo, hi);
    int32_t j = 0;
    if (nmult) {
        for (; j + 8 <= n; j += 8) {
            const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + j)),
                                               _mm256_loadu_si256((const __m256i *)(addv + j)));
            const s8_q8 qp = s8_q8_load(mult + j, lsh + j, rsh + j);
            const s8_q8 qn = s8_q8_load(nmult + j, nlsh + j, nrsh + j);
            store8(s8_requant8_prelu(&st, &qp, &qn, v), y + j);
        }
        return j;
    }
    for (; j + 8 <= n; j += 8) {
        /* acc + addv is the reference's exact accumulator (within nne_s8_acc_bound) */
        const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + j)),
                                           _mm256_loadu_si256((const __m256i *)(addv + j)));
        const s8_q8 q = s8_q8_load(mult + j, lsh + j, rsh + j);
        store8(s8_requant8(&st, &q, v), y + j);
    }
    return j;
}

/* ---- direct band kernels (conv_band.h) ----------------------------------------------------- */

/* Band conversion d[e] = s[e] - zp as int16, 32 elements per step (vpmovsxbw, vpsubw:
 * |s - zp| <= 255, exact), the tail in C. */
void nne_conv_band_s8_cvt__avx2(const int8_t *s, int32_t zp, int16_t *d, size_t n) {
    const __m256i z = _mm256_set1_epi16((int16_t)zp);
    size_t e = 0;
    for (; e + 32 <= n; e += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(s + e));
        const __m256i lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
        const __m256i hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
        _mm256_storeu_si256((__m256i *)(d + e), _mm256_sub_epi16(lo, z));
        _mm256_storeu_si256((__m256i *)(d + e + 16), _mm256_sub_epi16(hi, z));
    }
    for (; e < n; e++) d[e] = (int16_t)(s[e] - zp);
}

#define BMR 6 /* panel kernel: pixels per tile */

/* panel, tile 6 pixels x 16 channels: 12 accumulators, 2 weight vectors, 1 broadcast pair.
 * Per pair of depth elements: 2 weight loads, 6 broadcasts of an int16 pair of the band,
 * 12 vpmaddwd + 12 vpaddd (exact, see the top). The output stage runs on the registers. */
/* The output stage of a 16-channel panel (channels j..j+15 of q; the spread arrays are
 * zero-padded to a multiple of 16 channels); nrq0, nrq1: a fused PReLU's negative side. */
typedef struct panel_q {
    s8_stage st;
    __m256i add0, add1;
    s8_q8 rq0, rq1, nrq0, nrq1;
} panel_q;

static inline panel_q panel_q_make(const conv_band_s8_out *q, int32_t j, bool prelu) {
    const nne_qoutput *out = q->out;
    panel_q pq;
    pq.st = s8_stage_make(out->mode == NNE_RQ_POW2, out->zero_point, out->act_min, out->act_max);
    pq.add0 = _mm256_loadu_si256((const __m256i *)(q->addv + j));
    pq.add1 = _mm256_loadu_si256((const __m256i *)(q->addv + j + 8));
    pq.rq0 = s8_q8_load(q->mult + j, q->lsh + j, q->rsh + j);
    pq.rq1 = s8_q8_load(q->mult + j + 8, q->lsh + j + 8, q->rsh + j + 8);
    if (prelu) {
        pq.nrq0 = s8_q8_load(q->nmult + j, q->nlsh + j, q->nrsh + j);
        pq.nrq1 = s8_q8_load(q->nmult + j + 8, q->nlsh + j + 8, q->nrsh + j + 8);
    }
    return pq;
}

/* Requantize mr pixels x nr (<= 16) channels of a panel tile and store them at y (pixel
 * stride y_step); prelu: with pq's negative side. */
static inline void panel_store(const panel_q *pq, const __m256i acc[][2], int32_t mr, int32_t nr,
                               int8_t *y, int64_t y_step, bool prelu) {
    for (int32_t t = 0; t < mr; t++) {
        int8_t *yr = y + t * y_step;
        /* acc + addv: the reference's exact accumulator, within nne_s8_acc_bound */
        const __m256i v0 = _mm256_add_epi32(acc[t][0], pq->add0);
        const __m256i v1 = _mm256_add_epi32(acc[t][1], pq->add1);
        const __m128i v =
            prelu ? pack16(s8_requant8_prelu(&pq->st, &pq->rq0, &pq->nrq0, v0),
                           s8_requant8_prelu(&pq->st, &pq->rq1, &pq->nrq1, v1))
                  : pack16(s8_requant8(&pq->st, &pq->rq0, v0), s8_requant8(&pq->st, &pq->rq1, v1));
        if (nr == NNE_S8_NR) {
            _mm_storeu_si128((__m128i *)yr, v);
        } else {
            int8_t tmp[NNE_S8_NR];
            _mm_storeu_si128((__m128i *)tmp, v);
            memcpy(yr, tmp, (size_t)nr);
        }
    }
}

/* The kernels' bodies take `prelu` as a compile-time constant (always inlined into one
 * copy per value; the entry points branch once per call), so that the plain output stage
 * keeps its code. */
#define NNE_ALWAYS_INLINE inline __attribute__((always_inline))

static NNE_ALWAYS_INLINE void band_panel(const conv_band_run *r, const void *vw,
                                         const conv_band_s8_out *q, int8_t *y, bool prelu) {
    const int16_t *a = r->a, *w = vw;
    const int32_t np = (r->seglen + 1) / 2, K2 = r->nseg * np * 2; /* pairs per segment */
    for (int32_t j = 0; j < r->oc; j += NNE_S8_NR) {
        const int32_t nr = r->oc - j < NNE_S8_NR ? r->oc - j : NNE_S8_NR;
        const panel_q pq = panel_q_make(q, j, prelu);
        const int16_t *wp = w + (size_t)(j / NNE_S8_NR) * K2 * NNE_S8_NR;
        for (int32_t i = 0; i < r->m; i += BMR) {
            const int32_t mr = r->m - i < BMR ? r->m - i : BMR;
            const int16_t *p[BMR];
            for (int t = 0; t < BMR; t++) p[t] = a + (i + (t < mr ? t : mr - 1)) * r->a_step;
            const __m256i z = _mm256_setzero_si256();
            __m256i c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z;
            __m256i c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
            const int16_t *b = wp;
            for (int32_t s = 0; s < r->nseg; s++) {
                const int64_t so = r->soff[s];
                const int16_t *q0 = p[0] + so, *q1 = p[1] + so, *q2 = p[2] + so;
                const int16_t *q3 = p[3] + so, *q4 = p[4] + so, *q5 = p[5] + so;
                for (int32_t e = 0; e < 2 * np; e += 2, b += 2 * NNE_S8_NR) {
                    const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
                    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
                    int32_t pair;
#define PAIR(Q, C0, C1)                                                                            \
    do {                                                                                           \
        memcpy(&pair, Q + e, 4);                                                                   \
        const __m256i av = _mm256_set1_epi32(pair);                                                \
        C0 = _mm256_add_epi32(C0, _mm256_madd_epi16(av, b0));                                      \
        C1 = _mm256_add_epi32(C1, _mm256_madd_epi16(av, b1));                                      \
    } while (0)
                    PAIR(q0, c00, c01);
                    PAIR(q1, c10, c11);
                    PAIR(q2, c20, c21);
                    PAIR(q3, c30, c31);
                    PAIR(q4, c40, c41);
                    PAIR(q5, c50, c51);
#undef PAIR
                }
            }
            const __m256i acc[BMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                         {c30, c31}, {c40, c41}, {c50, c51}};
            panel_store(&pq, acc, mr, nr, y + i * r->y_step + j, r->y_step, prelu);
        }
    }
}

void nne_conv_band_s8_panel__avx2(const conv_band_run *r, const void *w, const conv_band_s8_out *q,
                                  int8_t *y) {
    if (q->nmult)
        band_panel(r, w, q, y, true);
    else
        band_panel(r, w, q, y, false);
}

/* w7 panel (conv_band.h), tile 6 pixels x 16 channels on a u8 band (x + 128) and s8 weights
 * in [-64, 64]: per quad of depth elements 2 weight loads, 6 broadcasts of 4 band bytes,
 * 12 vpmaddubsw (u8 x s8 pairs -> int16: |.| <= 2 x 255 x 64 = 32640, never saturates) +
 * 12 vpmaddwd by ones (int16 pairs -> the int32 sum of 4 products) + 12 vpaddd: 3 instructions
 * per 32 MACs against the int16 panel's 4. acc = sum (x + 128) w, |acc| <= K * 255 * 64;
 * addv holds bias - (x_zp + 128) sum w (driver), so acc + addv is exact. */
static NNE_ALWAYS_INLINE void band_panel_w7(const conv_band_run *r, const void *vw,
                                            const conv_band_s8_out *q, int8_t *y, bool prelu) {
    const uint8_t *a = r->a;
    const int8_t *w = vw;
    const int32_t nq = (r->seglen + 3) / 4, K4 = r->nseg * nq * 4; /* quads per segment */
    const __m256i ones = _mm256_set1_epi16(1);
    for (int32_t j = 0; j < r->oc; j += NNE_S8_NR) {
        const int32_t nr = r->oc - j < NNE_S8_NR ? r->oc - j : NNE_S8_NR;
        const panel_q pq = panel_q_make(q, j, prelu);
        const int8_t *wp = w + (size_t)(j / NNE_S8_NR) * K4 * NNE_S8_NR;
        for (int32_t i = 0; i < r->m; i += BMR) {
            const int32_t mr = r->m - i < BMR ? r->m - i : BMR;
            const uint8_t *p[BMR];
            for (int t = 0; t < BMR; t++) p[t] = a + (i + (t < mr ? t : mr - 1)) * r->a_step;
            const __m256i z = _mm256_setzero_si256();
            __m256i c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z;
            __m256i c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z;
            const int8_t *b = wp;
            for (int32_t s = 0; s < r->nseg; s++) {
                const int64_t so = r->soff[s];
                const uint8_t *q0 = p[0] + so, *q1 = p[1] + so, *q2 = p[2] + so;
                const uint8_t *q3 = p[3] + so, *q4 = p[4] + so, *q5 = p[5] + so;
                for (int32_t e = 0; e < 4 * nq; e += 4, b += 4 * NNE_S8_NR) {
                    const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
                    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 32));
                    int32_t quad;
#define QUAD(Q, C0, C1)                                                                            \
    do {                                                                                           \
        memcpy(&quad, Q + e, 4);                                                                   \
        const __m256i av = _mm256_set1_epi32(quad);                                                \
        C0 = _mm256_add_epi32(C0, _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));          \
        C1 = _mm256_add_epi32(C1, _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));          \
    } while (0)
                    QUAD(q0, c00, c01);
                    QUAD(q1, c10, c11);
                    QUAD(q2, c20, c21);
                    QUAD(q3, c30, c31);
                    QUAD(q4, c40, c41);
                    QUAD(q5, c50, c51);
#undef QUAD
                }
            }
            const __m256i acc[BMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                         {c30, c31}, {c40, c41}, {c50, c51}};
            panel_store(&pq, acc, mr, nr, y + i * r->y_step + j, r->y_step, prelu);
        }
    }
}

void nne_conv_band_s8_panel_w7__avx2(const conv_band_run *r, const void *w,
                                     const conv_band_s8_out *q, int8_t *y) {
    if (q->nmult)
        band_panel_w7(r, w, q, y, true);
    else
        band_panel_w7(r, w, q, y, false);
}

/* [sum(a) sum(b) sum(c) sum(d)] of int32 lanes. */
static inline __m128i hsum4_epi32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* tiny N, tile 4 pixels x 3 channels, vectorized along the depth: per 16 depth elements
 * 4 band loads (up to 15 int16 past a segment: zero weights, CONV_BAND_SLACK), 3 weight
 * loads, 12 vpmaddwd + 12 vpaddd. Then a hadd tree and the scalar output stage (3 channels). */
static NNE_ALWAYS_INLINE void band_tinyn(const conv_band_run *r, const void *vw,
                                         const conv_band_s8_out *q, int8_t *y, bool prelu) {
    const int16_t *a = r->a, *w = vw;
    const int32_t lp = (r->seglen + 15) & ~15;
    const size_t wstride = (size_t)r->nseg * lp; /* one channel's packed weights */
    const nne_qoutput *out = q->out;
    const s8_stage st =
        s8_stage_make(out->mode == NNE_RQ_POW2, out->zero_point, out->act_min, out->act_max);
    for (int32_t j = 0; j < r->oc; j += 3) {
        const int32_t nc = r->oc - j < 3 ? r->oc - j : 3;
        const int32_t j1 = j + (nc > 1 ? 1 : 0), j2 = j + (nc > 2 ? 2 : nc - 1);
        const int16_t *w0 = w + (size_t)j * wstride;
        const int16_t *w1 = w + (size_t)j1 * wstride;
        const int16_t *w2 = w + (size_t)j2 * wstride;
        /* Output stage lanes: [channel j x 4 pixels | channel j1 x 4], [channel j2 x 4 | same] */
#define PAIRV(A, B, ARR) _mm256_setr_m128i(_mm_set1_epi32(ARR[A]), _mm_set1_epi32(ARR[B]))
        const s8_q8 qa =
            s8_q8_make(PAIRV(j, j1, q->mult), PAIRV(j, j1, q->lsh), PAIRV(j, j1, q->rsh));
        const s8_q8 qb =
            s8_q8_make(PAIRV(j2, j2, q->mult), PAIRV(j2, j2, q->lsh), PAIRV(j2, j2, q->rsh));
        s8_q8 nqa = qa, nqb = qb; /* a fused PReLU's negative side */
        if (prelu) {
            nqa = s8_q8_make(PAIRV(j, j1, q->nmult), PAIRV(j, j1, q->nlsh), PAIRV(j, j1, q->nrsh));
            nqb =
                s8_q8_make(PAIRV(j2, j2, q->nmult), PAIRV(j2, j2, q->nlsh), PAIRV(j2, j2, q->nrsh));
        }
        const __m256i adda = PAIRV(j, j1, q->addv), addb = PAIRV(j2, j2, q->addv);
#undef PAIRV
        for (int32_t i = 0; i < r->m; i += 4) {
            const int32_t mr = r->m - i < 4 ? r->m - i : 4;
            const int16_t *p[4];
            for (int t = 0; t < 4; t++) p[t] = a + (i + (t < mr ? t : mr - 1)) * r->a_step;
            const __m256i z = _mm256_setzero_si256();
            __m256i c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z;
            __m256i c20 = z, c21 = z, c22 = z, c30 = z, c31 = z, c32 = z;
            for (int32_t s = 0; s < r->nseg; s++) {
                const int64_t so = r->soff[s];
                const int16_t *q0 = p[0] + so, *q1 = p[1] + so, *q2 = p[2] + so, *q3 = p[3] + so;
                const int16_t *v0 = w0 + (size_t)s * lp, *v1 = w1 + (size_t)s * lp;
                const int16_t *v2 = w2 + (size_t)s * lp;
                for (int32_t e = 0; e < lp; e += 16) {
                    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(v0 + e));
                    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(v1 + e));
                    const __m256i b2 = _mm256_loadu_si256((const __m256i *)(v2 + e));
#define ROW(Q, C0, C1, C2)                                                                         \
    do {                                                                                           \
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(Q + e));                           \
        C0 = _mm256_add_epi32(C0, _mm256_madd_epi16(xv, b0));                                      \
        C1 = _mm256_add_epi32(C1, _mm256_madd_epi16(xv, b1));                                      \
        C2 = _mm256_add_epi32(C2, _mm256_madd_epi16(xv, b2));                                      \
    } while (0)
                    ROW(q0, c00, c01, c02);
                    ROW(q1, c10, c11, c12);
                    ROW(q2, c20, c21, c22);
                    ROW(q3, c30, c31, c32);
#undef ROW
                }
            }
            /* + addv: the reference's exact accumulator, within nne_s8_acc_bound */
            const __m128i s2 = hsum4_epi32(c02, c12, c22, c32);
            const __m256i va =
                _mm256_setr_m128i(hsum4_epi32(c00, c10, c20, c30), hsum4_epi32(c01, c11, c21, c31));
            const __m256i vb = _mm256_setr_m128i(s2, s2);
            int8_t codes[16]; /* [channel][pixel] */
            const __m256i wa = _mm256_add_epi32(va, adda), wb = _mm256_add_epi32(vb, addb);
            _mm_storeu_si128((__m128i *)codes,
                             prelu ? pack16(s8_requant8_prelu(&st, &qa, &nqa, wa),
                                            s8_requant8_prelu(&st, &qb, &nqb, wb))
                                   : pack16(s8_requant8(&st, &qa, wa), s8_requant8(&st, &qb, wb)));
            for (int t = 0; t < mr; t++) {
                int8_t *yr = y + (i + t) * r->y_step + j;
                for (int32_t c = 0; c < nc; c++) yr[c] = codes[c * 4 + t];
            }
        }
    }
}

void nne_conv_band_s8_tinyn__avx2(const conv_band_run *r, const void *w, const conv_band_s8_out *q,
                                  int8_t *y) {
    if (q->nmult)
        band_tinyn(r, w, q, y, true);
    else
        band_tinyn(r, w, q, y, false);
}

#endif
