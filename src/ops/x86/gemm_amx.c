/* bf16 GEMM on AMX tiles (NNE_GEMM_BF16, include/nnedge/gemm.h; docs/perf-gemm.md, "bf16
 * on AMX"). Compiled with -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl (CMake:
 * *_amx.c under x86/); reached only from dispatch.c when the CPU reports AMX-BF16 and
 * AVX-512 (with AVX512_BF16), the kernel granted the tile state (nne_cpu_request_amx) and the ISA
 * in use is avx512.
 *
 * What it computes: op(A) and op(B) rounded to bf16 by vcvtne2ps2bf16 (round to nearest
 * even, NaN kept NaN: nne_f32_to_bf16's bits, except that subnormal inputs become zero,
 * which tdpbf16ps would make of their bf16 anyway), products exact, summed in f32 by
 * tdpbf16ps, which flushes subnormal results. Within the f32
 * tolerance of gemm.h against nne_gemm_f32__ref with NNE_GEMM_BF16 (the same rounded
 * inputs, another summation order).
 *
 * Blocking (the f32 driver's loops, gemm_f32_driver.h, with AMX panels):
 *   jc over N by NC:  pc over K by kc (a multiple of 32, a function of K only):
 *     pack op(B) into 32-column panels: per 32-deep chunk two VNNI tiles (columns 0-15,
 *       16-31), each 16 rows (pairs of k) x 16 columns x 2 bf16 = 1 KiB
 *     ic over M by MC:  pack op(A) into 32-row panels: per chunk two tiles (rows 0-15,
 *         16-31), each 16 rows x 32 bf16 = 1 KiB
 *       jr by 32:  ir by 32:  four C tiles (32 x 32 f32) from zero, two A and two B tile
 *         loads and four tdpbf16ps per chunk, then stored to a buffer and written (beta 0,
 *         first K block) or added to C with masked AVX-512 stores.
 * Rows, columns and k past the matrix are packed as zeros. The K blocks are a function of
 * K, each element of C is computed by one task in the same order whatever the thread count:
 * bitwise identical results for every pool size.
 *
 * Tiles: 0-3 C, 4-5 A, 6-7 B, all 16 rows x 64 bytes (palette 1). Each task loads the
 * configuration and releases the tiles when it is done (tile state is per thread). */
#if defined(__x86_64__)

#include <assert.h>
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gemm_common.h"
#include "nnedge/gemm.h"

#define AMX_MR          32   /* rows of C per micro-tile (two A tiles) */
#define AMX_NR          32   /* columns of C per micro-tile (two B tiles) */
#define AMX_KCH         32   /* k per tile chunk (32 bf16 = 64 bytes per A tile row) */
#define AMX_KC          512  /* largest K block: 16 chunks */
#define AMX_MC          128  /* A block rows: 128 x 512 bf16 = 128 KiB */
#define AMX_NC          512  /* B panel columns: 512 x 512 bf16 = 512 KiB */
#define AMX_CHUNK_BYTES 2048 /* two 1 KiB tiles */

typedef struct amx_plan {
    gemm_split split;
    int32_t kc; /* K block, a multiple of 32 */
    size_t a_bytes, b_bytes, c_bytes, per_thread;
} amx_plan;

static inline int32_t amx_min(int32_t x, int32_t y) { return x < y ? x : y; }
static inline size_t amx_align64(size_t x) { return (x + 63) & ~(size_t)63; }

static void amx_make_plan(int32_t m, int32_t n, int32_t k, int threads, amx_plan *p) {
    memset(p, 0, sizeof *p);
    if (m <= 0 || n <= 0 || k <= 0) return;
    p->split = gemm_split_tasks(m, n, k, threads, AMX_MR, AMX_NR);
    int64_t nkb = gemm_ceil_div64(k, AMX_KC);
    p->kc = (int32_t)(gemm_ceil_div64(gemm_ceil_div64(k, nkb), AMX_KCH) * AMX_KCH);
    int64_t mc = amx_min(AMX_MC, (int32_t)gemm_ceil_div64(p->split.tasks_m, AMX_MR) * AMX_MR);
    int64_t nc = amx_min(AMX_NC, (int32_t)gemm_ceil_div64(p->split.tasks_n, AMX_NR) * AMX_NR);
    int64_t chunks = p->kc / AMX_KCH;
    p->a_bytes = amx_align64((size_t)(mc / AMX_MR * chunks) * AMX_CHUNK_BYTES);
    p->b_bytes = amx_align64((size_t)(nc / AMX_NR * chunks) * AMX_CHUNK_BYTES);
    p->c_bytes = (size_t)AMX_MR * AMX_NR * sizeof(float) + 64; /* the C buffer + tile config */
    p->per_thread = p->a_bytes + p->b_bytes + p->c_bytes;
}

/* ---- f32 -> bf16: vcvtne2ps2bf16 (round to nearest even, NaN to quiet NaN, subnormal
 * inputs as zero, as tdpbf16ps would treat their bf16 anyway) ---- */

static inline __mmask16 amx_mask(int32_t valid) {
    return valid >= 16 ? (__mmask16)0xFFFF : valid <= 0 ? 0 : (__mmask16)((1u << valid) - 1u);
}

/* 32 consecutive floats (the first `valid`, zeros after) as 32 bf16 in order. */
static inline __m512i amx_cvt32(const float *p, int32_t valid) {
    const __m512 lo = _mm512_maskz_loadu_ps(amx_mask(valid), p);
    const __m512 hi = _mm512_maskz_loadu_ps(amx_mask(valid - 16), p + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* Dword j = bf16(r0[j]) | bf16(r1[j]) << 16 for the first `valid` j (zero after); r1 NULL:
 * zeros in the upper halves. */
static inline __m512i amx_pair16(const float *r0, const float *r1, int32_t valid) {
    const __mmask16 mk = amx_mask(valid);
    const __m512 lo = _mm512_maskz_loadu_ps(mk, r0);
    const __m512 hi = r1 ? _mm512_maskz_loadu_ps(mk, r1) : _mm512_setzero_ps();
    /* words 0-15: r0, 16-31: r1; interleave them: word 2j <- j, 2j+1 <- 16+j */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* Transpose a 16 x 16 matrix of dwords held in 16 rows. */
static inline void amx_transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* r[4q + s] now holds, in each 128-bit lane L, columns 4L..4L+3 of row 4q+s' where the
     * rows of 128-bit block (q, L) are 4q..4q+3 in the order s = 0, 1, 2, 3 of the
     * unpacks (0, 1, 2, 3 -> rows 0, 1, 2, 3 after the two stages). Exchange the lanes. */
    for (int s = 0; s < 4; s++) {
        const __m512i a = r[s], b = r[4 + s], c = r[8 + s], d = r[12 + s];
        const __m512i ab_lo = _mm512_shuffle_i32x4(a, b, 0x88); /* a0 a2 b0 b2 */
        const __m512i ab_hi = _mm512_shuffle_i32x4(a, b, 0xDD); /* a1 a3 b1 b3 */
        const __m512i cd_lo = _mm512_shuffle_i32x4(c, d, 0x88);
        const __m512i cd_hi = _mm512_shuffle_i32x4(c, d, 0xDD);
        t[s] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88);      /* a0 b0 c0 d0 */
        t[8 + s] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0xDD);  /* a2 b2 c2 d2 */
        t[4 + s] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88);  /* a1 b1 c1 d1 */
        t[12 + s] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0xDD); /* a3 b3 c3 d3 */
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* ---- Packing ----
 * A block: panels of 32 rows; panel p, chunk q at dst + (p * chunks + q) * 2048: tile h
 * (rows 16h..16h+15) at + 1024 h, row r at + 64 r: op(A)[i][k0 .. k0+31] in bf16. */
static void amx_pack_a(bool trans, const float *a, int32_t lda, int32_t i0, int32_t p0, int32_t mb,
                       int32_t kb, int32_t chunks, unsigned char *dst) {
    for (int32_t ip = 0; ip < mb; ip += AMX_MR) {
        for (int32_t q = 0; q < chunks; q++) {
            unsigned char *chunk = dst + ((size_t)(ip / AMX_MR) * chunks + q) * AMX_CHUNK_BYTES;
            const int32_t k0 = q * AMX_KCH, kvalid = amx_min(AMX_KCH, kb - k0);
            for (int h = 0; h < 2; h++) {
                const int32_t r0 = ip + 16 * h, rows = amx_min(16, mb - r0);
                unsigned char *tile = chunk + 1024 * h;
                if (!trans) {
                    for (int r = 0; r < 16; r++) {
                        __m512i v = _mm512_setzero_si512();
                        if (r < rows && kvalid > 0)
                            v = amx_cvt32(a + (size_t)(i0 + r0 + r) * lda + p0 + k0, kvalid);
                        _mm512_store_si512((void *)(tile + 64 * r), v);
                    }
                } else {
                    /* A stored [K][lda]: pair rows k, k+1 give one dword per row i; the
                     * transpose makes them tile rows. */
                    __m512i v[16];
                    for (int pr = 0; pr < 16; pr++) {
                        const int32_t kk = k0 + 2 * pr;
                        if (kk >= kb || rows <= 0) {
                            v[pr] = _mm512_setzero_si512();
                            continue;
                        }
                        const float *s0 = a + (size_t)(p0 + kk) * lda + i0 + r0;
                        v[pr] = amx_pair16(s0, kk + 1 < kb ? s0 + lda : NULL, rows);
                    }
                    amx_transpose16(v);
                    for (int r = 0; r < 16; r++) _mm512_store_si512((void *)(tile + 64 * r), v[r]);
                }
            }
        }
    }
}

/* B panel: panels of 32 columns; panel p, chunk q at dst + (p * chunks + q) * 2048: tile h
 * (columns 16h..16h+15) at + 1024 h, row r (k pair k0 + 2r, k0 + 2r + 1) at + 64 r,
 * column j at + 4 j: the two bf16 of op(B)[k0+2r][j] and op(B)[k0+2r+1][j]. */
static void amx_pack_b(bool trans, const float *b, int32_t ldb, int32_t p0, int32_t j0, int32_t kb,
                       int32_t nb, int32_t chunks, unsigned char *dst) {
    for (int32_t jp = 0; jp < nb; jp += AMX_NR) {
        for (int32_t q = 0; q < chunks; q++) {
            unsigned char *chunk = dst + ((size_t)(jp / AMX_NR) * chunks + q) * AMX_CHUNK_BYTES;
            const int32_t k0 = q * AMX_KCH, kvalid = amx_min(AMX_KCH, kb - k0);
            for (int h = 0; h < 2; h++) {
                const int32_t c0 = jp + 16 * h, cols = amx_min(16, nb - c0);
                unsigned char *tile = chunk + 1024 * h;
                if (!trans) { /* B stored [K][ldb]: rows k, k+1 interleave into one tile row */
                    for (int pr = 0; pr < 16; pr++) {
                        const int32_t kk = k0 + 2 * pr;
                        __m512i v = _mm512_setzero_si512();
                        if (kk < kb && cols > 0) {
                            const float *s0 = b + (size_t)(p0 + kk) * ldb + j0 + c0;
                            v = amx_pair16(s0, kk + 1 < kb ? s0 + ldb : NULL, cols);
                        }
                        _mm512_store_si512((void *)(tile + 64 * pr), v);
                    }
                } else { /* B stored [N][ldb]: a column's 32 k are 16 pairs; transpose */
                    __m512i v[16];
                    for (int c = 0; c < 16; c++)
                        v[c] = c < cols && kvalid > 0
                                   ? amx_cvt32(b + (size_t)(j0 + c0 + c) * ldb + p0 + k0, kvalid)
                                   : _mm512_setzero_si512();
                    amx_transpose16(v);
                    for (int r = 0; r < 16; r++) _mm512_store_si512((void *)(tile + 64 * r), v[r]);
                }
            }
        }
    }
}

/* ---- Micro-kernel: C[mr][nr] (=|+=) the 32 x 32 product of one A and one B panel ---- */
static void amx_ukernel(int32_t chunks, const unsigned char *ap, const unsigned char *bp,
                        float *cbuf, float *c, int32_t ldc, bool overwrite, int mr, int nr) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int32_t q = 0; q < chunks; q++, ap += AMX_CHUNK_BYTES, bp += AMX_CHUNK_BYTES) {
        _tile_loadd(4, ap, 64);
        _tile_loadd(5, ap + 1024, 64);
        _tile_loadd(6, bp, 64);
        _tile_loadd(7, bp + 1024, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    /* cbuf [32][32] f32: tile 0 rows 0-15 cols 0-15, 1 cols 16-31, 2 and 3 rows 16-31 */
    _tile_stored(0, cbuf, AMX_NR * 4);
    _tile_stored(1, cbuf + 16, AMX_NR * 4);
    _tile_stored(2, cbuf + 16 * AMX_NR, AMX_NR * 4);
    _tile_stored(3, cbuf + 16 * AMX_NR + 16, AMX_NR * 4);
    const __mmask16 m0 = amx_mask(nr), m1 = amx_mask(nr - 16);
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        const float *br = cbuf + (size_t)r * AMX_NR;
        __m512 v0 = _mm512_load_ps(br), v1 = _mm512_load_ps(br + 16);
        if (!overwrite) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

typedef struct amx_ctx {
    amx_plan plan;
    gemm_args g;
} amx_ctx;

static void amx_task(void *vctx, int task, int thread) {
    const amx_ctx *x = vctx;
    const amx_plan *p = &x->plan;
    int32_t m0, m1, n0, n1;
    gemm_task_range(&p->split, task, x->g.m, x->g.n, &m0, &m1, &n0, &n1);
    unsigned char *base = x->g.scratch + (size_t)thread * p->per_thread;
    unsigned char *ap = base, *bp = base + p->a_bytes;
    float *cbuf = (float *)(void *)(base + p->a_bytes + p->b_bytes);
    unsigned char *cfg = (unsigned char *)(cbuf + AMX_MR * AMX_NR);
    memset(cfg, 0, 64);
    cfg[0] = 1; /* palette 1 */
    for (int t = 0; t < 8; t++) {
        const uint16_t colsb = 64;
        memcpy(cfg + 16 + 2 * t, &colsb, 2);
        cfg[48 + t] = 16;
    }
    _tile_loadconfig(cfg);
    const bool ta = x->g.flags & NNE_GEMM_TRANS_A, tb = x->g.flags & NNE_GEMM_TRANS_B;
    const bool beta0 = !(x->g.flags & NNE_GEMM_ACCUMULATE);
    for (int32_t jc = n0; jc < n1; jc += AMX_NC) {
        const int32_t nb = amx_min(AMX_NC, n1 - jc);
        for (int32_t pc = 0; pc < x->g.k; pc += p->kc) {
            const int32_t kb = amx_min(p->kc, x->g.k - pc);
            const int32_t chunks = (int32_t)gemm_ceil_div64(kb, AMX_KCH);
            const bool overwrite = beta0 && pc == 0;
            amx_pack_b(tb, x->g.b, x->g.ldb, pc, jc, kb, nb, chunks, bp);
            for (int32_t ic = m0; ic < m1; ic += AMX_MC) {
                const int32_t mb = amx_min(AMX_MC, m1 - ic);
                amx_pack_a(ta, x->g.a, x->g.lda, ic, pc, mb, kb, chunks, ap);
                for (int32_t jr = 0; jr < nb; jr += AMX_NR) {
                    const int nr = amx_min(AMX_NR, nb - jr);
                    const unsigned char *bpan =
                        bp + (size_t)(jr / AMX_NR) * chunks * AMX_CHUNK_BYTES;
                    for (int32_t ir = 0; ir < mb; ir += AMX_MR) {
                        const int mr = amx_min(AMX_MR, mb - ir);
                        amx_ukernel(chunks, ap + (size_t)(ir / AMX_MR) * chunks * AMX_CHUNK_BYTES,
                                    bpan, cbuf, x->g.c + (size_t)(ic + ir) * x->g.ldc + jc + jr,
                                    x->g.ldc, overwrite, mr, nr);
                    }
                }
            }
        }
    }
    _tile_release();
}

void nne_gemm_f32__amx(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                       const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                       int32_t ldc, void *scratch) {
    if (gemm_trivial(flags, m, n, k, lda, ldb, c, ldc, scratch)) return;
    amx_ctx x = {.g = gemm_args_make(flags, m, n, k, a, lda, b, ldb, c, ldc, scratch)};
    amx_make_plan(m, n, k, nne_threadpool_threads(pool), &x.plan);
    nne_threadpool_run(pool, x.plan.split.n_tasks, amx_task, &x);
}

size_t nne_gemm_f32_scratch_size__amx(int32_t m, int32_t n, int32_t k, int threads) {
    amx_plan p;
    amx_make_plan(m, n, k, threads, &p);
    return p.per_thread * (size_t)(threads < 1 ? 1 : threads);
}

#endif
