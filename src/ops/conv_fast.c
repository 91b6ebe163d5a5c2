/* Fast f32 convolution and transposed convolution for inference (include/nnedge/conv.h,
 * docs/conv.md): implicit GEMM over output tiles on top of nne_gemm_f32, with the bias and
 * the activation applied to each tile while it is in cache. Groups-1 layers with
 * K <= CONV_BAND_MAX_K_F32 go to the direct band kernels instead (conv_band.h: faster on every
 * cae-seed layer, docs/perf.md); this path runs grouped / depthwise and deeper layers.
 *
 * Per task (one tile of `tile_px` output pixels of one phase, conv_plan.h), per group:
 *   cols [P][K]   = gather of the tile's taps (zero for padding), K = taps * icg
 *   C    [P][ocg] = cols . W[ocg][K]^T          nne_gemm_f32, NT, serial (pool NULL)
 * then y = act(C + bias). When the tile is a contiguous run of y (conv2d, stride-1
 * transposed), C is y itself (ldc = oc) and the epilogue runs in place; otherwise C is a
 * per-thread tile and the epilogue writes it to the phase's output pixels.
 *
 * The _exact variants multiply with nne_gemm_f32_seq instead: the gathered taps are in the
 * reference kernels' order (ky, kx, input channel; a padding tap adds 0 * w = +-0, which
 * leaves every f32 sum unchanged) and the bias is added last, so for finite weights the
 * result is the reference's, bit for bit, on every ISA and thread count.
 *
 * Scratch: [transposed: phase weights, oc*kh*kw*icg floats] then per thread
 * [cols tile_px x k_max][C tile_px x oc, non-direct only][GEMM scratch]. */
#include <assert.h>

#include "conv_band.h"
#include "nnedge/conv.h"
#include "nnedge/gemm.h"
#include "ops_internal.h"

/* Target gathered tile: 32 Ki floats (128 KiB), so that cols, the GEMM's packed copy of it
 * and the output tile share a 512 KiB L2. */
#define CONV_F32_TILE_FLOATS (32 * 1024)
/* Tile rows are a multiple of 24: whole micro-tiles of the 6-row AVX2 and 12-row AVX-512
 * GEMM kernels. */
#define CONV_F32_TILE_ALIGN 24

typedef struct conv_f32_layout {
    conv_plan plan;
    size_t w_bytes;   /* phase weights (transposed), 64-byte multiple */
    size_t cols_off;  /* within a thread's area */
    size_t c_off;     /* C tile (non-direct) */
    size_t gemm_off;  /* GEMM scratch */
    size_t taps_off;  /* gather state: int64 [kh + kw] */
    size_t per_thread;
} conv_f32_layout;

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }

static void conv_f32_layout_make(conv_f32_layout *l, const nne_conv2d_geom *g, bool transposed) {
    memset(l, 0, sizeof *l);
    conv_plan *p = &l->plan;
    conv_plan_make(p, g, transposed, CONV_F32_TILE_FLOATS, CONV_F32_TILE_ALIGN);
    if (transposed)
        l->w_bytes = al64((size_t)g->oc * g->kh * g->kw * (size_t)p->icg * sizeof(float));
    size_t gs = 0;
    for (int32_t ph = 0; ph < p->ph_y * p->ph_x; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        if (c.pixels == 0) continue;
        /* The GEMM's scratch is not monotone in M or K: size the two tile heights used. */
        const int64_t last = c.pixels - (int64_t)(c.n_tiles - 1) * p->tile_px;
        const int32_t ms[2] = {c.pixels < p->tile_px ? (int32_t)c.pixels : p->tile_px,
                               (int32_t)last};
        for (int i = 0; i < 2; i++) {
            size_t s = nne_gemm_f32_scratch_size(ms[i], p->ocg, c.k, 1);
            const size_t s2 = nne_gemm_f32_seq_scratch_size(ms[i], p->ocg, c.k);
            if (s2 > s) s = s2; /* the same scratch serves both numerics */
            if (s > gs) gs = s;
        }
    }
    l->cols_off = 0;
    l->c_off = al64((size_t)p->tile_px * (size_t)p->k_max * sizeof(float));
    l->gemm_off = l->c_off + (p->direct ? 0 : al64((size_t)p->tile_px * g->oc * sizeof(float)));
    l->taps_off = l->gemm_off + al64(gs);
    l->per_thread = l->taps_off + al64((size_t)(g->kh + g->kw) * sizeof(int64_t));
}

static size_t conv_f32_scratch(const nne_conv2d_geom *g, bool transposed, int threads) {
    conv_f32_layout l;
    conv_f32_layout_make(&l, g, transposed);
    const size_t gemm = l.w_bytes + l.per_thread * (size_t)(threads < 1 ? 1 : threads);
    if (conv_band_select(&l.plan, false) == CONV_BAND_NONE) return gemm;
    /* the band kernels, or the GEMM path of the exact variants: one size serves both */
    const size_t band = conv_band_scratch(&l.plan, false, threads);
    return band > gemm ? band : gemm;
}

size_t nne_conv2d_f32_scratch_size(const nne_conv2d_geom *g, int threads) {
    return conv_f32_scratch(g, false, threads);
}

size_t nne_conv_transpose2d_f32_scratch_size(const nne_conv2d_geom *g, int threads) {
    return conv_f32_scratch(g, true, threads);
}

typedef struct conv_f32_ctx {
    const conv_f32_layout *l;
    const float *x, *w, *bias;
    const nne_conv_act *act;
    float *y;
    unsigned char *scratch;
    nne_gemm_f32_fn gemm; /* nne_gemm_f32, or nne_gemm_f32_seq for the exact variants */
} conv_f32_ctx;

/* y[o] = act(c[o] + bias[o]) for one pixel of oc channels (c may be y). */
static void conv_f32_epilogue(const float *c, float *y, int32_t oc, const float *bias,
                              const nne_conv_act *act) {
    for (int32_t o = 0; o < oc; o++) y[o] = conv_f32_act(bias ? c[o] + bias[o] : c[o], o, act);
}

static void conv_f32_task(void *vctx, int task, int thread) {
    const conv_f32_ctx *x = vctx;
    const conv_f32_layout *l = x->l;
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    conv_phase c;
    int32_t tile;
    conv_plan_task(p, task, &c, &tile);
    const int64_t pix0 = (int64_t)tile * p->tile_px;
    const int32_t m = (int32_t)(c.pixels - pix0 < p->tile_px ? c.pixels - pix0 : p->tile_px);
    unsigned char *ts = x->scratch + l->w_bytes + (size_t)thread * l->per_thread;
    float *cols = (float *)(void *)(ts + l->cols_off);
    void *gemm_scratch = ts + l->gemm_off;
    float *ct; /* C tile [m][oc] */
    int32_t ldc = g->oc;
    if (p->direct)
        ct = x->y + (size_t)pix0 * g->oc; /* phase pixel index == output pixel index */
    else
        ct = (float *)(void *)(ts + l->c_off);
    /* Phase weights: OHWI itself for conv2d, the repacked [oc][taps][icg] for transposed. */
    const float *wph = p->transposed ? (const float *)(const void *)x->scratch + c.w_off : x->w;
    int64_t *rows = (int64_t *)(void *)(ts + l->taps_off), *tcols = rows + g->kh;
    const size_t icg = (size_t)p->icg;
    for (int32_t grp = 0; grp < g->groups; grp++) {
        conv_gather_tile(p, &c, pix0, m, x->x + (size_t)grp * icg, sizeof(float), cols, (size_t)c.k,
                         rows, tcols);
        x->gemm(NULL, NNE_GEMM_TRANS_B, m, p->ocg, c.k, cols, c.k, wph + (size_t)grp * p->ocg * c.k,
                c.k, ct + (size_t)grp * p->ocg, ldc, gemm_scratch);
    }
    for (int32_t i = 0; i < m; i++) {
        float *yp = p->direct ? ct + (size_t)i * ldc
                              : x->y + conv_out_pixel(p, &c, pix0 + i) * (size_t)g->oc;
        conv_f32_epilogue(ct + (size_t)i * ldc, yp, g->oc, x->bias, x->act);
    }
}

static void conv_f32_run(nne_threadpool *pool, const nne_conv2d_geom *g, bool transposed,
                         bool exact, const float *x, const float *w, const float *bias,
                         const nne_conv_act *act, float *y, void *scratch) {
    assert(g && x && w && y && scratch && ((uintptr_t)scratch & 63) == 0);
    assert(nne_conv2d_geom_ok(g, transposed));
    assert(!act || act->kind != NNE_CONV_ACT_PRELU ||
           (act->slope && (act->n_slope == 1 || act->n_slope == g->oc)));
    conv_f32_layout l;
    conv_f32_layout_make(&l, g, transposed);
    /* groups 1: conv_band.h (FMA kernels, so not for the exact variants) */
    if (!exact && conv_band_select(&l.plan, false) != CONV_BAND_NONE) {
        nne_conv_band_f32_run(pool, &l.plan, x, w, bias, act, y, scratch);
        return;
    }
    if (transposed) conv_plan_phase_weights(&l.plan, w, sizeof(float), scratch);
    conv_f32_ctx ctx = {&l, x, w, bias, act, y, scratch, exact ? nne_gemm_f32_seq : nne_gemm_f32};
    nne_threadpool_run(pool, l.plan.n_tasks, conv_f32_task, &ctx);
}

void nne_conv2d_f32(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                    const float *w, const float *bias, const nne_conv_act *act, float *y,
                    void *scratch) {
    conv_f32_run(pool, g, false, false, x, w, bias, act, y, scratch);
}

void nne_conv_transpose2d_f32(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                              const float *w, const float *bias, const nne_conv_act *act,
                              float *y, void *scratch) {
    conv_f32_run(pool, g, true, false, x, w, bias, act, y, scratch);
}

void nne_conv2d_f32_exact(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                          const float *w, const float *bias, const nne_conv_act *act, float *y,
                          void *scratch) {
    conv_f32_run(pool, g, false, true, x, w, bias, act, y, scratch);
}

void nne_conv_transpose2d_f32_exact(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                                    const float *w, const float *bias, const nne_conv_act *act,
                                    float *y, void *scratch) {
    conv_f32_run(pool, g, true, true, x, w, bias, act, y, scratch);
}
