/* Blocked, packed f32 GEMM driver (GotoBLAS/BLIS structure), shared by the x86 variants.
 *
 * Included once by each ISA file (gemm_avx2.c, gemm_avx512.c) after it defines
 *   GEMM_MR, GEMM_NR     micro-tile (rows of C x columns of C; GEMM_NR a multiple of 8)
 *   GEMM_MC, GEMM_NC     A block rows (multiple of MR; sized for L2), B panel columns (L3)
 *   GEMM_KC              largest K block (B micro-panel kc x NR sized for L1)
 *   gemm_ukernel()       C[mr][nr] (=|+=) Apanel[kc][MR] * Bpanel[kc][NR]
 * so that every function here is compiled with that file's ISA flags. Everything is static.
 * The packing routines use AVX2 (available on every CPU that runs either variant).
 *
 * Loops, per task (a block of rows or of columns of C):
 *   jc over N by NC:  pc over K by kc:  pack B[pc:+kc][jc:+NC] into NR-wide micro-panels
 *     ic over M by MC:  pack A[ic:+MC][pc:+kc] into MR-tall micro-panels
 *       jr over the panel by NR:  ir by MR:  micro-kernel on one MR x NR tile of C
 * Each micro-kernel call accumulates its tile over one K block from zero in registers
 * (FMA, k increasing) and then stores it (first block, beta = 0) or adds it to C. Edge
 * tiles run the same full-size computation on zero-padded panels and store through a
 * temporary, so the arithmetic applied to an element does not depend on where it sits in a
 * tile or which task computes it: with kc a function of K only, results are bitwise
 * identical for every thread count.
 *
 * Threads: C is split into contiguous slabs of whole micro-tiles along its larger dimension
 * (unless that has fewer tiles than threads), one task per pool thread. Each task packs its own
 * panels into its thread's slice of the caller's scratch; no barrier and no sharing between tasks.
 */
#ifndef NNE_GEMM_F32_DRIVER_H
#define NNE_GEMM_F32_DRIVER_H

#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "gemm_common.h"
#include "nnedge/gemm.h"

#if GEMM_MC % GEMM_MR || GEMM_NC % GEMM_NR || GEMM_NR % 8 || GEMM_MR > 16
#error "bad GEMM blocking parameters"
#endif

/* Extra floats after the packed A block: the 8-wide transposing stores of pack_a may run
 * up to 8 floats past the last panel's end (they are overwritten or unused). */
#define GEMM_A_SLACK 16
typedef struct gemm_plan {
    gemm_split split;
    int32_t kc;     /* K block: ceil(K / nkb) rounded up to 8, nkb = ceil(K / GEMM_KC) */
    size_t a_bytes; /* packed A block, 64-byte multiple */
    size_t b_bytes; /* packed B panel, 64-byte multiple */
    size_t per_thread;
} gemm_plan;

static inline int32_t gemm_min(int32_t x, int32_t y) { return x < y ? x : y; }
static inline int64_t gemm_ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

/* A function of (m, n, k, threads) only: nne_gemm_f32_scratch_size and the kernel agree. */
static void gemm_make_plan(int32_t m, int32_t n, int32_t k, int threads, gemm_plan *p) {
    memset(p, 0, sizeof *p);
    if (m <= 0 || n <= 0 || k <= 0) return;
    p->split = gemm_split_tasks(m, n, k, threads, GEMM_MR, GEMM_NR);
    int64_t nkb = gemm_ceil_div(k, GEMM_KC);
    int64_t kc = (gemm_ceil_div(k, nkb) + 7) / 8 * 8;
    p->kc = (int32_t)(kc < k ? kc : k);
    int64_t mc = gemm_min(GEMM_MC, (int32_t)gemm_ceil_div(p->split.tasks_m, GEMM_MR) * GEMM_MR);
    int64_t nc = gemm_min(GEMM_NC, (int32_t)gemm_ceil_div(p->split.tasks_n, GEMM_NR) * GEMM_NR);
    p->a_bytes = nne_align_up((size_t)(mc * p->kc + GEMM_A_SLACK) * sizeof(float), 64);
    p->b_bytes = nne_align_up((size_t)(nc * p->kc) * sizeof(float), 64);
    p->per_thread = p->a_bytes + p->b_bytes;
}

static size_t gemm_scratch_size(int32_t m, int32_t n, int32_t k, int threads) {
    gemm_plan p;
    gemm_make_plan(m, n, k, threads, &p);
    return p.per_thread * (size_t)(threads < 1 ? 1 : threads);
}

/* In-register transpose of an 8x8 block: r[i] lane j <- r[j] lane i. */
static inline void gemm_transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Pack op(A)[i0 : i0+mb][p0 : p0+kb] as ceil(mb/MR) micro-panels, each [kb][MR] with rows
 * past mb zero: dst[panel][kk][r] = op(A)[i0 + panel*MR + r][p0 + kk]. */
static void gemm_pack_a(bool trans, const float *a, int32_t lda, int32_t i0, int32_t p0, int32_t mb,
                        int32_t kb, float *dst) {
    if (trans) { /* A stored [K][lda]: MR contiguous floats per k and panel. k outer, so
                  * that the source is read row after row (one stream, not one per k). */
        const float *src = a + (size_t)p0 * lda + i0;
        for (int32_t kk = 0; kk < kb; kk++, src += lda) {
            float *d = dst + (size_t)kk * GEMM_MR;
            for (int32_t ip = 0; ip < mb; ip += GEMM_MR, d += (size_t)GEMM_MR * kb) {
                const int mr = gemm_min(GEMM_MR, mb - ip);
                memcpy(d, src + ip, (size_t)mr * sizeof(float));
                for (int r = mr; r < GEMM_MR; r++) d[r] = 0.0f;
            }
        }
        return;
    }
    for (int32_t ip = 0; ip < mb; ip += GEMM_MR, dst += (size_t)GEMM_MR * kb) {
        const int mr = gemm_min(GEMM_MR, mb - ip);
        /* A stored [M][lda]: gather 8 k of each row, transpose, store rows of MR with
         * overlapping 8-wide stores in increasing address order (each store's spill past MR
         * is overwritten by the next one, the last lands in the slack). */
        const float *src = a + (size_t)(i0 + ip) * lda + p0;
        int32_t kk = 0;
        for (; kk + 8 <= kb; kk += 8) {
            __m256 v[(GEMM_MR + 7) / 8][8];
            for (int g = 0; g < (GEMM_MR + 7) / 8; g++) {
                for (int r = 0; r < 8; r++) {
                    int row = g * 8 + r;
                    v[g][r] = row < mr ? _mm256_loadu_ps(src + (size_t)row * lda + kk)
                                       : _mm256_setzero_ps();
                }
                gemm_transpose8(v[g]);
            }
            for (int j = 0; j < 8; j++)
                for (int g = 0; g < (GEMM_MR + 7) / 8; g++)
                    _mm256_storeu_ps(dst + (size_t)(kk + j) * GEMM_MR + g * 8, v[g][j]);
        }
        for (; kk < kb; kk++)
            for (int r = 0; r < GEMM_MR; r++)
                dst[(size_t)kk * GEMM_MR + r] = r < mr ? src[(size_t)r * lda + kk] : 0.0f;
    }
}

/* Pack op(B)[p0 : p0+kb][j0 : j0+nb] as ceil(nb/NR) micro-panels, each [kb][NR] with
 * columns past nb zero: dst[panel][kk][c] = op(B)[p0 + kk][j0 + panel*NR + c]. */
static void gemm_pack_b(bool trans, const float *b, int32_t ldb, int32_t p0, int32_t j0, int32_t kb,
                        int32_t nb, float *dst) {
    if (!trans) { /* B stored [K][ldb]: NR contiguous floats per k and panel; k outer */
        const float *src = b + (size_t)p0 * ldb + j0;
        for (int32_t kk = 0; kk < kb; kk++, src += ldb) {
            float *d = dst + (size_t)kk * GEMM_NR;
            for (int32_t jp = 0; jp < nb; jp += GEMM_NR, d += (size_t)GEMM_NR * kb) {
                const int nr = gemm_min(GEMM_NR, nb - jp);
                if (nr == GEMM_NR) {
                    for (int c = 0; c < GEMM_NR; c += 8)
                        _mm256_store_ps(d + c, _mm256_loadu_ps(src + jp + c));
                } else {
                    memcpy(d, src + jp, (size_t)nr * sizeof(float));
                    for (int c = nr; c < GEMM_NR; c++) d[c] = 0.0f;
                }
            }
        }
        return;
    }
    for (int32_t jp = 0; jp < nb; jp += GEMM_NR, dst += (size_t)GEMM_NR * kb) {
        const int nr = gemm_min(GEMM_NR, nb - jp);
        /* B stored [N][ldb] (row j of storage = column j of op(B)): transpose 8x8 blocks. */
        const float *src = b + (size_t)(j0 + jp) * ldb + p0;
        int32_t kk = 0;
        for (; kk + 8 <= kb; kk += 8) {
            for (int g = 0; g < GEMM_NR / 8; g++) {
                __m256 v[8];
                for (int r = 0; r < 8; r++) {
                    int col = g * 8 + r;
                    v[r] = col < nr ? _mm256_loadu_ps(src + (size_t)col * ldb + kk)
                                    : _mm256_setzero_ps();
                }
                gemm_transpose8(v);
                for (int j = 0; j < 8; j++)
                    _mm256_store_ps(dst + (size_t)(kk + j) * GEMM_NR + g * 8, v[j]);
            }
        }
        for (; kk < kb; kk++)
            for (int c = 0; c < GEMM_NR; c++)
                dst[(size_t)kk * GEMM_NR + c] = c < nr ? src[(size_t)c * ldb + kk] : 0.0f;
    }
}

/* NNE_GEMM_BF16: round n packed floats to bf16 in place (nne_f32_to_bf16's bits, kept as
 * f32 with zero low halves), so that the micro-kernel multiplies the rounded values. */
static void gemm_round_bf16(float *p, size_t n) {
    const __m256i lsb1 = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7FFF);
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u), absm = _mm256_set1_epi32(0x7FFFFFFF);
    const __m256i inf = _mm256_set1_epi32(0x7F800000), quiet = _mm256_set1_epi32(0x00400000);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        __m256i r = _mm256_add_epi32(
            u, _mm256_add_epi32(half, _mm256_and_si256(_mm256_srli_epi32(u, 16), lsb1)));
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absm), inf);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(u, quiet), nan);
        _mm256_storeu_si256((__m256i *)(void *)(p + i), _mm256_and_si256(r, hi));
    }
    for (; i < n; i++) p[i] = nne_bf16_to_f32(nne_f32_to_bf16(p[i]));
}

typedef struct gemm_ctx {
    gemm_plan plan;
    gemm_args g;
} gemm_ctx;

static void gemm_task(void *vctx, int task, int thread) {
    const gemm_ctx *x = vctx;
    const gemm_plan *p = &x->plan;
    int32_t m0, m1, n0, n1;
    gemm_task_range(&p->split, task, x->g.m, x->g.n, &m0, &m1, &n0, &n1);
    float *ap = (float *)(void *)(x->g.scratch + (size_t)thread * p->per_thread);
    float *bp = (float *)(void *)(x->g.scratch + (size_t)thread * p->per_thread + p->a_bytes);
    const bool ta = x->g.flags & NNE_GEMM_TRANS_A, tb = x->g.flags & NNE_GEMM_TRANS_B;
    const bool beta0 = !(x->g.flags & NNE_GEMM_ACCUMULATE), bf16 = x->g.flags & NNE_GEMM_BF16;
    for (int32_t jc = n0; jc < n1; jc += GEMM_NC) {
        const int32_t nb = gemm_min(GEMM_NC, n1 - jc);
        for (int32_t pc = 0; pc < x->g.k; pc += p->kc) {
            const int32_t kb = gemm_min(p->kc, x->g.k - pc);
            const bool overwrite = beta0 && pc == 0;
            gemm_pack_b(tb, x->g.b, x->g.ldb, pc, jc, kb, nb, bp);
            if (bf16) gemm_round_bf16(bp, (size_t)gemm_ceil_div(nb, GEMM_NR) * GEMM_NR * kb);
            for (int32_t ic = m0; ic < m1; ic += GEMM_MC) {
                const int32_t mb = gemm_min(GEMM_MC, m1 - ic);
                gemm_pack_a(ta, x->g.a, x->g.lda, ic, pc, mb, kb, ap);
                if (bf16) gemm_round_bf16(ap, (size_t)gemm_ceil_div(mb, GEMM_MR) * GEMM_MR * kb);
                for (int32_t jr = 0; jr < nb; jr += GEMM_NR) {
                    const int nr = gemm_min(GEMM_NR, nb - jr);
                    for (int32_t ir = 0; ir < mb; ir += GEMM_MR) {
                        const int mr = gemm_min(GEMM_MR, mb - ir);
                        gemm_ukernel(kb, ap + (size_t)ir * kb, bp + (size_t)jr * kb,
                                     x->g.c + (size_t)(ic + ir) * x->g.ldc + jc + jr, x->g.ldc,
                                     overwrite, mr, nr);
                    }
                }
            }
        }
    }
}

static void gemm_driver(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                        const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                        int32_t ldc, void *scratch) {
    if (gemm_trivial(flags, m, n, k, lda, ldb, c, ldc, scratch)) return;
    gemm_ctx x = {.g = gemm_args_make(flags, m, n, k, a, lda, b, ldb, c, ldc, scratch)};
    gemm_make_plan(m, n, k, nne_threadpool_threads(pool), &x.plan);
    nne_threadpool_run(pool, x.plan.split.n_tasks, gemm_task, &x);
}

#endif
