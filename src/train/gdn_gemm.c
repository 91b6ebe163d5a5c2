/* Fast GDN / IGDN training kernels: the normalizer as a 1x1 convolution of x^2 through
 * nne_gemm_f32, threaded (docs/training.md, "Fast path"). The per-pixel loops of layers.c
 * stay the oracle (tests/train/test_fast_kernels.c).
 *
 * Per tile of T pixels (x, dy, dx [T][c], gamma [c][c], row i = output channel):
 *   sq    = x * x                                  [T][c]
 *   norm  = sq . gamma^T                 (NT GEMM)  [T][c]
 *   s     = sqrt(norm + beta)
 *   forward   y = x / s (GDN) or x * s (IGDN)
 *   backward  (the normalizer is recomputed, not stored: one GEMM, no activation-sized
 *             buffer per GDN node)
 *     dn     = -dy x / (2 s^3) (GDN) or dy x / (2 s) (IGDN)  [T][c]
 *     dbeta += column sums of dn
 *     dgamma += dn^T . sq                (TN GEMM)  [c][c]
 *     t      = dn . gamma                (NN GEMM)  [T][c]
 *     dx     = dy / s (or dy * s) + 2 x t
 * The three GEMMs are the per-pixel loops' c^2 terms (norm, dgamma, the dx sum); the rest is
 * element-wise, written as loops over whole tiles that the compiler vectorizes.
 *
 * gemm_flags NNE_GEMM_BF16 (the trainer's --matmul bf16) runs the three GEMMs with bf16
 * inputs (x^2, gamma, dn rounded; f32 sums; AMX tiles where the CPU has them): the recipe of
 * autocast, under which a GDN written as a 1x1 convolution of x^2 runs in bf16 too. The
 * element-wise parts, beta and every stored tensor stay f32.
 *
 * Partition and determinism as conv_gemm.c: the pixels are cut into tiles of GG_TILE
 * pixels and the tiles into at most GG_CHUNKS contiguous chunks, both fixed by the pixel
 * count; a pool task is one chunk, its tiles in order, each GEMM serial on the task
 * thread's scratch. The parameter gradients go to one partial [c + c*c] per chunk (the
 * chunk's tiles accumulated in order), summed in chunk order at the end. Every output is
 * computed by the same operations whatever the thread count: bitwise identical results. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "nnedge/gemm.h"
#include "nnedge/threadpool.h"
#include "nnedge/train.h"
#include "train/train_internal.h"

enum {
    GG_TILE = 128,  /* pixels per GEMM: sq, norm, dn of c = 64 in 32 KiB each */
    GG_CHUNKS = 16, /* tasks per pass (a constant: thread-count independent) */
};

/* sqrt over whole vectors: GCC leaves a loop of sqrtf scalar unless -fno-math-errno is on
 * for the file (the optimize attribute does not do it), so the SSE instruction is written
 * out where there is one (sqrtps is correctly rounded: the same bits as sqrtf). */
#if defined(__SSE2__)
#include <immintrin.h>
#define GG_SSE 1
#endif

typedef struct gg_plan {
    size_t pixels;
    int32_t c, n_tiles, n_chunks;
    size_t part_floats;            /* dbeta [c] then dgamma [c][c] */
    size_t off_thread, per_thread; /* per thread: sq, norm, dn [GG_TILE][c], GEMM scratch */
    size_t tile_bytes, total;
} gg_plan;

static size_t gg_align(size_t x) { return (x + 63) & ~(size_t)63; }
static size_t gg_max(size_t a, size_t b) { return a > b ? a : b; }

static void gg_make_plan(size_t pixels, int32_t c, int threads, gg_plan *p) {
    memset(p, 0, sizeof *p);
    if (threads < 1) threads = 1;
    p->pixels = pixels;
    p->c = c;
    p->n_tiles = (int32_t)((pixels + GG_TILE - 1) / GG_TILE);
    p->n_chunks = p->n_tiles < GG_CHUNKS ? p->n_tiles : GG_CHUNKS;
    p->part_floats = (size_t)c + (size_t)c * c;
    /* The GEMMs of a tile (T <= GG_TILE pixels; scratch is not monotone in K, so both the
     * full and the last tile are sized). */
    const int32_t last = (int32_t)(pixels - (size_t)(p->n_tiles - 1) * GG_TILE);
    const int32_t tile_px[2] = {GG_TILE, last > 0 ? last : 1};
    size_t gs = 0;
    for (int k = 0; k < 2; k++) {
        const int32_t T = tile_px[k];
        gs = gg_max(gs, nne_gemm_f32_scratch_size(T, c, c, 1)); /* norm NT, t NN */
        gs = gg_max(gs, nne_gemm_f32_scratch_size(c, c, T, 1)); /* dgamma TN */
    }
    p->tile_bytes = gg_align((size_t)GG_TILE * (size_t)c * sizeof(float));
    p->per_thread = 3 * p->tile_bytes + gg_align(gs);
    p->off_thread =
        gg_align((size_t)(p->n_chunks > 0 ? p->n_chunks : 1) * p->part_floats * sizeof(float));
    p->total = p->off_thread + (size_t)threads * p->per_thread;
}

size_t nne_gdn_gemm_scratch_size(size_t pixels, int32_t c, int threads) {
    gg_plan p;
    gg_make_plan(pixels, c, threads, &p);
    return p.total;
}

typedef struct gg_ctx {
    const gg_plan *p;
    const float *x, *beta, *gamma, *dy;
    bool inverse, backward;
    uint32_t gemm_flags; /* 0 or NNE_GEMM_BF16, added to every GEMM */
    float *y, *dx;
    unsigned char *scratch;
} gg_ctx;

/* s = sqrt(norm + beta) in place over a tile of T pixels. */
static void gg_sqrt(float *nrm, const float *beta, int32_t T, size_t c) {
    for (int32_t q = 0; q < T; q++, nrm += c) {
        size_t i = 0;
#ifdef GG_SSE
        for (; i + 4 <= c; i += 4)
            _mm_storeu_ps(nrm + i,
                          _mm_sqrt_ps(_mm_add_ps(_mm_loadu_ps(nrm + i), _mm_loadu_ps(beta + i))));
#endif
        for (; i < c; i++) nrm[i] = sqrtf(nrm[i] + beta[i]);
    }
}

static void gg_forward_tile(const gg_ctx *g, size_t px0, int32_t T, float *sq, float *s, void *gs) {
    const size_t c = (size_t)g->p->c, n = (size_t)T * c;
    const float *x = g->x + px0 * c;
    float *y = g->y + px0 * c;
    for (size_t i = 0; i < n; i++) sq[i] = x[i] * x[i];
    nne_gemm_f32(NULL, NNE_GEMM_TRANS_B | g->gemm_flags, T, (int32_t)c, (int32_t)c, sq, (int32_t)c,
                 g->gamma, (int32_t)c, s, (int32_t)c, gs);
    gg_sqrt(s, g->beta, T, c);
    if (g->inverse)
        for (size_t i = 0; i < n; i++) y[i] = x[i] * s[i];
    else
        for (size_t i = 0; i < n; i++) y[i] = x[i] / s[i];
}

static void gg_backward_tile(const gg_ctx *g, size_t px0, int32_t T, float *sq, float *s, float *dn,
                             float *part, bool first, void *gs) {
    const int32_t ci = g->p->c;
    const size_t c = (size_t)ci, n = (size_t)T * c;
    const float *x = g->x + px0 * c, *dy = g->dy + px0 * c;
    for (size_t i = 0; i < n; i++) sq[i] = x[i] * x[i];
    const uint32_t gf = g->gemm_flags;
    nne_gemm_f32(NULL, NNE_GEMM_TRANS_B | gf, T, ci, ci, sq, ci, g->gamma, ci, s, ci, gs);
    gg_sqrt(s, g->beta, T, c);
    if (g->inverse)
        for (size_t i = 0; i < n; i++) dn[i] = 0.5f * dy[i] * x[i] / s[i];
    else
        for (size_t i = 0; i < n; i++) dn[i] = -0.5f * dy[i] * x[i] / (s[i] * s[i] * s[i]);
    /* dbeta: per tile an f32 column sum of T pixels, added to the chunk's partial. */
    float *db = part;
    for (int32_t q = 0; q < T; q++)
        for (size_t i = 0; i < c; i++) db[i] += dn[(size_t)q * c + i];
    nne_gemm_f32(NULL, NNE_GEMM_TRANS_A | gf | (first ? 0u : NNE_GEMM_ACCUMULATE), ci, ci, T, dn,
                 ci, sq, ci, part + c, ci, gs);
    if (!g->dx) return;
    float *dx = g->dx + px0 * c;
    if (g->inverse)
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * s[i];
    else
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] / s[i];
    nne_gemm_f32(NULL, gf, T, ci, ci, dn, ci, g->gamma, ci, sq, ci, gs); /* t, over sq */
    for (size_t i = 0; i < n; i++) dx[i] += 2.0f * x[i] * sq[i];
}

static void gg_task(void *vctx, int task, int thread) {
    const gg_ctx *g = vctx;
    const gg_plan *p = g->p;
    unsigned char *ts = g->scratch + p->off_thread + (size_t)thread * p->per_thread;
    float *sq = (float *)(void *)ts, *s = (float *)(void *)(ts + p->tile_bytes);
    float *dn = (float *)(void *)(ts + 2 * p->tile_bytes);
    void *gs = ts + 3 * p->tile_bytes;
    float *part = (float *)(void *)g->scratch + (size_t)task * p->part_floats;
    const int32_t t0 = (int32_t)((int64_t)task * p->n_tiles / p->n_chunks);
    const int32_t t1 = (int32_t)((int64_t)(task + 1) * p->n_tiles / p->n_chunks);
    if (g->backward) memset(part, 0, (size_t)p->c * sizeof(float)); /* dbeta; dgamma by GEMM */
    for (int32_t t = t0; t < t1; t++) {
        const size_t px0 = (size_t)t * GG_TILE;
        const int32_t T = (int32_t)(p->pixels - px0 < GG_TILE ? p->pixels - px0 : GG_TILE);
        if (g->backward)
            gg_backward_tile(g, px0, T, sq, s, dn, part, t == t0, gs);
        else
            gg_forward_tile(g, px0, T, sq, s, gs);
    }
}

/* Plan for (pixels, c) and the pool, then every chunk of g (its pass and buffers set). */
static void gg_run(nne_threadpool *pool, size_t pixels, int32_t c, gg_plan *p, gg_ctx *g) {
    assert(g->scratch && ((uintptr_t)g->scratch & 63) == 0);
    assert((g->gemm_flags & ~(uint32_t)NNE_GEMM_BF16) == 0);
    gg_make_plan(pixels, c, nne_threadpool_threads(pool), p);
    g->p = p;
    nne_threadpool_run(pool, p->n_chunks, gg_task, g);
}

void nne_gdn_forward_gemm(nne_threadpool *pool, size_t pixels, int32_t c, const float *x,
                          const float *beta, const float *gamma, bool inverse, float *y,
                          void *scratch, uint32_t gemm_flags) {
    assert(x && beta && gamma && y && c > 0 && x != y);
    if (pixels == 0) return;
    gg_plan p;
    gg_ctx g = {.x = x,
                .beta = beta,
                .gamma = gamma,
                .inverse = inverse,
                .gemm_flags = gemm_flags,
                .y = y,
                .scratch = scratch};
    gg_run(pool, pixels, c, &p, &g);
}

void nne_gdn_backward_gemm(nne_threadpool *pool, size_t pixels, int32_t c, const float *x,
                           const float *beta, const float *gamma, bool inverse, const float *dy,
                           float *dx, float *dbeta, float *dgamma, void *scratch,
                           uint32_t gemm_flags) {
    assert(x && beta && gamma && dy && dbeta && dgamma && c > 0);
    assert(dx != x && dx != dy);
    if (pixels == 0) return;
    gg_plan p;
    gg_ctx g = {.x = x,
                .beta = beta,
                .gamma = gamma,
                .dy = dy,
                .inverse = inverse,
                .backward = true,
                .gemm_flags = gemm_flags,
                .dx = dx,
                .scratch = scratch};
    gg_run(pool, pixels, c, &p, &g);
    const float *part = (const float *)(const void *)scratch; /* [n_chunks][c + c*c] */
    nne_train__sum_partials(part, (size_t)c, p.part_floats, p.n_chunks, dbeta);
    nne_train__sum_partials(part + c, (size_t)c * (size_t)c, p.part_floats, p.n_chunks, dgamma);
}
