/* GDN / IGDN for inference (include/nnedge/conv.h), bit-identical to nne_gdn_f32__ref: the
 * normalizer is a 1x1 convolution of x^2 with weights gamma, so per tile of GDN_TILE_PX
 * pixels: sq = x * x (one rounding, as the reference's xp[j] * xp[j]), n = sq . gamma^T
 * with nne_gemm_f32_seq (the reference's order: from 0, j increasing, each product rounded;
 * gamma[i][j] * sq[j] equals sq[j] * gamma[i][j] bit for bit), then y = x / sqrtf(n + beta)
 * or x * sqrtf(n + beta) (correctly rounded). Tiles are threads' tasks; each output is
 * written by one task with the same operations for any thread count. Scratch per thread:
 * sq [tile][c], n [tile][c], the GEMM's packed tile. */
#include <assert.h>
#include <math.h>

#include "nnedge/conv.h"
#include "nnedge/gemm.h"

#define GDN_TILE_PX 96 /* pixels per task: 12 row panels of the sequential GEMM */

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }

static size_t gdn_per_thread(int32_t c) {
    const size_t tile = (size_t)GDN_TILE_PX * (size_t)c * sizeof(float);
    return 2 * al64(tile) + al64(nne_gemm_f32_seq_scratch_size(GDN_TILE_PX, c, c));
}

size_t nne_gdn_f32_scratch_size(int32_t c, int threads) {
    return gdn_per_thread(c) * (size_t)(threads < 1 ? 1 : threads);
}

typedef struct gdn_ctx {
    size_t pixels;
    int32_t c;
    const float *x, *beta, *gamma;
    bool inverse;
    float *y;
    unsigned char *scratch;
} gdn_ctx;

static void gdn_task(void *vctx, int task, int thread) {
    const gdn_ctx *g = vctx;
    const size_t c = (size_t)g->c, p0 = (size_t)task * GDN_TILE_PX;
    const int32_t m = (int32_t)(g->pixels - p0 < GDN_TILE_PX ? g->pixels - p0 : GDN_TILE_PX);
    unsigned char *ts = g->scratch + (size_t)thread * gdn_per_thread(g->c);
    const size_t tile = al64((size_t)GDN_TILE_PX * c * sizeof(float));
    float *sq = (float *)(void *)ts, *nrm = (float *)(void *)(ts + tile);
    const float *x = g->x + p0 * c;
    for (size_t i = 0; i < (size_t)m * c; i++) sq[i] = x[i] * x[i];
    nne_gemm_f32_seq(NULL, NNE_GEMM_TRANS_B, m, g->c, g->c, sq, g->c, g->gamma, g->c, nrm, g->c,
                     ts + 2 * tile);
    float *y = g->y + p0 * c;
    for (int32_t p = 0; p < m; p++)
        for (size_t i = 0; i < c; i++) {
            const size_t k = (size_t)p * c + i;
            const float s = sqrtf(nrm[k] + g->beta[i]);
            y[k] = g->inverse ? x[k] * s : x[k] / s;
        }
}

void nne_gdn_f32_exact(nne_threadpool *pool, size_t pixels, int32_t c, const float *x,
                       const float *beta, const float *gamma, bool inverse, float *y,
                       void *scratch) {
    assert(x && beta && gamma && y && c >= 0 && (x != y || pixels == 0));
    assert(scratch && ((uintptr_t)scratch & 63) == 0);
    if (pixels == 0 || c == 0) return;
    gdn_ctx ctx = {pixels, c, x, beta, gamma, inverse, y, scratch};
    const size_t tasks = (pixels + GDN_TILE_PX - 1) / GDN_TILE_PX;
    assert(tasks <= (size_t)INT32_MAX);
    nne_threadpool_run(pool, (int)tasks, gdn_task, &ctx);
}
