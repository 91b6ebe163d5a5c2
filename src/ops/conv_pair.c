/* Fused pairs of convolutions (conv.h "Fused pairs", docs/conv.md "Cross-layer fusion"):
 * conv2d l1 -> (activation) -> conv2d l2 without writing l1's output to memory.
 *
 * Schedule. A task is a band of l2's output rows of one image. Its thread keeps a *ring* of
 * l2's input rows (l1's output rows, laid out as l2's band: l2's left / right padding as
 * zero columns around l1's columns), ring_rows = l2's row span ((kh - 1) dil + 1) rows, row iy
 * in slot iy mod ring_rows. For each output row q of l2 the rows iy0 = q s - pad_t ..
 * iy0 + ring_rows - 1 must be in the ring: the ones not there yet are computed (l1's band
 * kernel over that row, by column tiles of l1's own plan; a row outside l1's output is l2's
 * zero padding), then l2's band kernel reads its segments straight from the ring (one
 * segment offset per row tap, pointing at that row's slot: the kernels take any segment
 * offsets). int8: l1 writes its codes into a row buffer, the activation runs on it, and the
 * row is converted into the ring in l2's band format (int16 x - x_zp, or u8 x + 128 when l2
 * takes the w7 panel), which is the conversion l2's own band fill does, done once per row.
 *
 * Exactness. l1's outputs come from the same kernel and packed weights as in a separate call
 * (each pixel's sums do not depend on the tile or call it falls in, conv_band.h), and l2's
 * segments hold the same values in the same order as its band would: so the result is the
 * separate calls' bits, for any split of the rows into tasks, hence any thread count.
 *
 * Cost. Rows are computed once per task except the ring_rows - stride rows (if positive) that
 * a task shares with the previous band, recomputed: conv_pair_rows_per_task keeps that small.
 *
 * Scratch: [l1 global][l2 global] then per thread [l1 per thread: band, soff][int8: l1 output
 * row: ow1 x oc1 codes][ring + CONV_BAND_SLACK elements][l2 soff, column offsets: kh x kw
 * int64 each]. */
#include <assert.h>
#include <stdlib.h>

#include "conv_band.h"
#include "ops_internal.h"

int nne_conv_pair_disable = 0; /* conv_band.h: tests only */

/* Largest ring (bytes) the planner accepts: it shares Zen 3's 512 KiB L2 with l1's input rows,
 * l2's weights (36 KiB f32 for cae-seed's conv2d_2) and the output rows. cae-seed at
 * 512 x 768: 3 rows x 765 pixels x 32 channels = 287 KiB f32, 143 KiB int16. */
#define CONV_PAIR_RING_BYTES (384 * 1024)

#define CONV_PAIR_TILE_ELEMS 32768 /* conv_plan_make's arguments; unused by the band path */
#define CONV_PAIR_TILE_ALIGN 24

typedef struct conv_pair_plan {
    conv_plan p1, p2;
    conv_band_layout l1, l2;    /* sizes only */
    conv_band_phase b2;         /* l2's phase */
    int32_t ring_rows, ring_px; /* ring: ring_rows x ring_px pixels x ic2 */
    int64_t ring_row;           /* elements per ring row */
    int32_t rows_per_task, tasks_per_img;
    size_t g2_off, global;                                /* global area */
    size_t mid_off, ring_off, soff_off, per_thread, elem; /* per thread */
} conv_pair_plan;

/* l2 output rows per task: one task per image with one thread (nothing recomputed); else
 * about 4 tasks per thread (balance when a thread is late), at least 8 rows each. */
static int32_t conv_pair_rows_per_task(int32_t oh2, int threads) {
    if (threads <= 1) return oh2 > 0 ? oh2 : 1;
    int32_t r = (oh2 + 4 * threads - 1) / (4 * threads);
    if (r < 8) r = 8;
    return r;
}

/* The geometry rules; fills pl. */
static bool conv_pair_make(conv_pair_plan *pl, const nne_conv2d_geom *g1, const nne_conv2d_geom *g2,
                           bool s8, int threads) {
    memset(pl, 0, sizeof *pl);
    if (!nne_conv2d_geom_ok(g1, false) || !nne_conv2d_geom_ok(g2, false)) return false;
    if (g1->groups != 1 || g2->groups != 1 || g1->n != g2->n || g1->oh != g2->ih ||
        g1->ow != g2->iw || g1->oc != g2->ic || g1->n < 1 || g2->oh < 1 || g2->ow < 1 ||
        g1->oh < 1 || g1->ow < 1)
        return false;
    conv_plan_make(&pl->p1, g1, false, CONV_PAIR_TILE_ELEMS, CONV_PAIR_TILE_ALIGN);
    conv_plan_make(&pl->p2, g2, false, CONV_PAIR_TILE_ELEMS, CONV_PAIR_TILE_ALIGN);
    if (conv_band_select(&pl->p1, s8) == CONV_BAND_NONE ||
        conv_band_select(&pl->p2, s8) == CONV_BAND_NONE)
        return false;
    conv_band_layout_make(&pl->l1, &pl->p1, s8, NULL);
    conv_band_layout_make(&pl->l2, &pl->p2, s8, NULL);
    const size_t elem = s8 ? sizeof(int16_t) : sizeof(float);
    conv_band_phase_make(&pl->p2, 0, (int64_t)(128 * 1024 / elem), &pl->b2);
    const conv_band_phase *b = &pl->b2;
    if (b->nseg == 0) return false;
    pl->ring_rows = b->spany;
    pl->ring_px = (g2->ow - 1) * b->c.x.istep + b->spanx;
    pl->ring_row = (int64_t)pl->ring_px * g2->ic;
    const size_t ring = (size_t)pl->ring_rows * (size_t)pl->ring_row;
    if (ring * elem > CONV_PAIR_RING_BYTES) return false;
    pl->rows_per_task = conv_pair_rows_per_task(g2->oh, threads);
    pl->tasks_per_img = (g2->oh + pl->rows_per_task - 1) / pl->rows_per_task;
    pl->elem = elem;
    pl->g2_off = conv_band_al64(pl->l1.global);
    pl->global = pl->g2_off + conv_band_al64(pl->l2.global);
    pl->mid_off = conv_band_al64(pl->l1.per_thread);
    pl->ring_off = pl->mid_off + (s8 ? conv_band_al64((size_t)g1->ow * g1->oc) : 0);
    pl->soff_off = pl->ring_off + conv_band_al64((ring + CONV_BAND_SLACK) * elem);
    pl->per_thread = pl->soff_off + conv_band_al64((size_t)2 * g2->kh * g2->kw * sizeof(int64_t));
    return true;
}

/* int8: the deepest l1 input the planner fuses. l1 runs one row per band kernel call, so its
 * int8 input band (int16 x - x_zp) is converted spany1 times per row instead of (R + 2) / R
 * times (R: the rows of a separate call's tile, 3 for conv2d_3); with a deep l1 input that
 * eats what the saved round trip of l1's output gains. Measured under load (docs/perf.md,
 * "Fused pairs"), unfused / fused time: conv2d_1 + conv2d_2 (3 input channels) 1.01-1.13 in 8
 * of 8 runs; conv2d_3 + conv2d_4 (32) 0.93-1.07, median 1.01: no reliable gain, so off. f32
 * reads a valid l1's input in place (no conversion): both pairs 1.08-1.25. */
#define CONV_PAIR_S8_MAX_IC1 4

/* Whether the measured policy keeps the fused pair (the thread count did not change it:
 * 1 and 2 threads measured). */
static bool conv_pair_pays(const nne_conv2d_geom *g1, bool s8, int threads) {
    (void)threads;
    return !s8 || g1->ic <= CONV_PAIR_S8_MAX_IC1;
}

bool nne_conv2d_pair_ok(const nne_conv2d_geom *g1, const nne_conv2d_geom *g2, bool s8,
                        int threads) {
    const char *e = getenv("NNEDGE_FUSE");
    if (nne_conv_pair_disable || (e && strcmp(e, "0") == 0)) return false;
    conv_pair_plan pl;
    return conv_pair_make(&pl, g1, g2, s8, threads) && conv_pair_pays(g1, s8, threads);
}

static size_t conv_pair_scratch(const nne_conv2d_geom *g1, const nne_conv2d_geom *g2, bool s8,
                                int threads) {
    conv_pair_plan pl;
    if (!conv_pair_make(&pl, g1, g2, s8, threads)) return 0;
    return pl.global + pl.per_thread * (size_t)(threads < 1 ? 1 : threads);
}

size_t nne_conv2d_pair_f32_scratch_size(const nne_conv2d_geom *g1, const nne_conv2d_geom *g2,
                                        int threads) {
    return conv_pair_scratch(g1, g2, false, threads);
}

size_t nne_conv2d_pair_s8_scratch_size(const nne_conv2d_geom *g1, const nne_conv2d_geom *g2,
                                       int threads) {
    return conv_pair_scratch(g1, g2, true, threads);
}

/* ---- the schedule, shared by f32 and int8 --------------------------------------------------- */

typedef struct conv_pair_ctx {
    const conv_pair_plan *pl;
    bool s8;
    /* f32 */
    const conv_band_f32_layer *f1, *f2;
    const float *xf;
    float *yf;
    /* int8 */
    const conv_band_s8_layer *q1, *q2;
    const nne_conv_s8_mid *mid;
    const int8_t *xq;
    int8_t *yq;
    unsigned char *threads; /* the per-thread areas */
} conv_pair_ctx;

static int32_t conv_pair_slot(int32_t iy, int32_t n) {
    const int32_t s = iy % n;
    return s < 0 ? s + n : s;
}

/* Ring row `dst` (ring_row elements) := l1's output row iy of image img (or l2's padding). */
static void conv_pair_row(const conv_pair_ctx *c, unsigned char *ts, int32_t img, int32_t iy,
                          unsigned char *dst) {
    const conv_pair_plan *pl = c->pl;
    const nne_conv2d_geom *g1 = &pl->p1.g, *g2 = &pl->p2.g;
    const int32_t pad_l = -pl->b2.offx0; /* l1's column 0 in the ring row */
    const size_t ic = (size_t)g2->ic, row = (size_t)pl->ring_row;
    const bool u8 = c->s8 && c->q2->w7;
    const int pad = u8 ? c->q2->x_zp + 128 : 0; /* u8: x_zp + 128; int16, f32: 0 */
    if (iy < 0 || iy >= g2->ih) {               /* l2's zero padding */
        if (u8)
            memset(dst, pad, row);
        else
            memset(dst, 0, row * pl->elem);
        return;
    }
    /* l1's columns [0, ncols) are read by l2 (a valid stride-2 l2 may skip the last); around
     * them, l2's left and right padding columns */
    const int32_t ncols = g1->ow < pl->ring_px - pad_l ? g1->ow : pl->ring_px - pad_l;
    const size_t lo = (size_t)pad_l * ic, hi = ((size_t)pad_l + (size_t)ncols) * ic;
    if (u8) {
        memset(dst, pad, lo);
        memset(dst + hi, pad, row - hi);
    } else {
        memset(dst, 0, lo * pl->elem);
        memset(dst + hi * pl->elem, 0, (row - hi) * pl->elem);
    }
    /* l1's row iy, by the column tiles of l1's plan (its band buffer holds one) */
    if (!c->s8) {
        const conv_band_phase *b1 = &c->f1->phases[0];
        float *d = (float *)(void *)dst + lo;
        for (int32_t qx0 = 0; qx0 < ncols; qx0 += b1->C) {
            conv_band_tile t;
            conv_band_tile_at(g1, b1, 0, img, iy, qx0, 1, ncols - qx0 < b1->C ? ncols - qx0 : b1->C,
                              &t);
            nne_conv_band_f32_tile(c->f1, c->xf, &t, ts, d + (size_t)qx0 * g1->oc, 0);
        }
        return;
    }
    const conv_band_phase *b1 = &c->q1->phases[0];
    int8_t *m = (int8_t *)(ts + pl->mid_off);
    for (int32_t qx0 = 0; qx0 < ncols; qx0 += b1->C) {
        conv_band_tile t;
        conv_band_tile_at(g1, b1, 0, img, iy, qx0, 1, ncols - qx0 < b1->C ? ncols - qx0 : b1->C,
                          &t);
        nne_conv_band_s8_tile(c->q1, c->xq, &t, ts, m + (size_t)qx0 * g1->oc, 0);
    }
    const size_t n = (size_t)ncols * g1->oc;
    const nne_conv_s8_mid *mid = c->mid;
    if (mid && mid->kind == NNE_CONV_S8_MID_CLAMP)
        nne_clamp_s8__ref(n, m, mid->lo, mid->hi, m);
    else if (mid && mid->kind == NNE_CONV_S8_MID_PRELU)
        nne_prelu_s8__ref((size_t)ncols, g1->oc, m, mid->x_zero_point, mid->pos, mid->pos_mul,
                          mid->neg, mid->neg_slope, m);
    if (u8) { /* the w7 panel's band: x + 128 */
        uint8_t *d = dst + lo;
        for (size_t e = 0; e < n; e++) d[e] = (uint8_t)((uint8_t)m[e] ^ 0x80);
        return;
    }
    int16_t *d = (int16_t *)(void *)dst + lo;
    const int32_t zp = c->q2->x_zp;
#if defined(__x86_64__) || defined(__i386__)
    if (c->q2->avx2) {
        nne_conv_band_s8_cvt__avx2(m, zp, d, n);
        return;
    }
#endif
    for (size_t e = 0; e < n; e++) d[e] = (int16_t)(m[e] - zp);
}

static void conv_pair_task(void *vctx, int task, int thread) {
    const conv_pair_ctx *c = vctx;
    const conv_pair_plan *pl = c->pl;
    const nne_conv2d_geom *g2 = &pl->p2.g;
    const conv_band_phase *b = &pl->b2;
    unsigned char *ts = c->threads + (size_t)thread * pl->per_thread;
    unsigned char *ring = ts + pl->ring_off;
    int64_t *soff = (int64_t *)(void *)(ts + pl->soff_off);
    const int32_t img = task / pl->tasks_per_img;
    const int32_t q0 = task % pl->tasks_per_img * pl->rows_per_task;
    const int32_t q1 = q0 + pl->rows_per_task < g2->oh ? q0 + pl->rows_per_task : g2->oh;
    const bool u8 = c->s8 && c->q2->w7;
    const size_t elem = u8 ? 1 : pl->elem; /* ring element bytes */
    const size_t ring_bytes = (size_t)pl->ring_rows * (size_t)pl->ring_row * elem;
    /* the slack after the ring that the int8 kernels may read (times zero weights) */
    memset(ring + ring_bytes, u8 ? c->q2->x_zp + 128 : 0, CONV_BAND_SLACK * elem);
    /* Column offsets of the segments (the row offsets are added per output row): soff with
     * a row stride of 0; segment s belongs to row tap s (xrun) or s / kw. */
    int64_t *col = soff + (size_t)g2->kh * g2->kw;
    conv_band_soff(&pl->p2, b, 0, col);
    const int32_t per_tap = b->xrun ? 1 : g2->kw;
    int32_t have = INT32_MIN; /* next l1 row not in the ring */
    conv_band_run run = {0,
                         b->nseg,
                         b->seglen,
                         g2->oc,
                         NULL,
                         (int64_t)b->c.x.istep * g2->ic,
                         (int64_t)b->c.x.ostep * g2->oc,
                         soff};
    const int32_t chunk =
        pl->l2.kind == CONV_BAND_PANEL ? conv_band_chunk(b, g2->ic, elem) : g2->ow;
    for (int32_t q = q0; q < q1; q++) {
        const int32_t iy0 = q * b->c.y.istep + b->offy0;
        for (int32_t iy = have > iy0 ? have : iy0; iy < iy0 + pl->ring_rows; iy++)
            conv_pair_row(c, ts, img, iy,
                          ring + (size_t)conv_pair_slot(iy, pl->ring_rows) * pl->ring_row * elem);
        have = iy0 + pl->ring_rows;
        for (int32_t s = 0; s < b->nseg; s++) {
            const int32_t ky = s / per_tap; /* conv2d: every row tap, offsets ky * dil_h */
            soff[s] = col[s] + conv_pair_slot(iy0 + ky * g2->dil_h, pl->ring_rows) * pl->ring_row;
        }
        const size_t yo = (((size_t)img * g2->oh + q) * g2->ow) * g2->oc;
        for (int32_t c0 = 0; c0 < g2->ow; c0 += chunk) {
            run.m = g2->ow - c0 < chunk ? g2->ow - c0 : chunk;
            run.a = ring + (size_t)c0 * run.a_step * elem;
            if (c->s8) {
                conv_band_s8_out qo = c->q2->q;
                if (c->q2->w7) qo.addv = c->q2->addv_ph; /* one phase */
                c->q2->fn(&run, c->q2->wp + c->q2->woff[0], &qo,
                          c->yq + yo + (size_t)c0 * run.y_step);
            } else {
                c->f2->fn(&run, c->f2->wp + c->f2->woff[0], c->f2->bias, c->f2->act,
                          c->yf + yo + (size_t)c0 * run.y_step);
            }
        }
    }
}

static int conv_pair_threads(nne_threadpool *pool) {
    return pool ? nne_threadpool_threads(pool) : 1;
}

void nne_conv2d_pair_f32(nne_threadpool *pool, const nne_conv_f32_layer *l1,
                         const nne_conv_f32_layer *l2, const float *x, float *y, void *scratch) {
    assert(l1 && l2 && x && y && scratch && ((uintptr_t)scratch & 63) == 0);
    conv_pair_plan pl;
    const bool ok = conv_pair_make(&pl, l1->g, l2->g, false, conv_pair_threads(pool));
    assert(ok);
    (void)ok;
    unsigned char *s = scratch;
    conv_band_f32_layer f1, f2;
    nne_conv_band_f32_prepare(&f1, &pl.p1, l1->w, l1->bias, l1->act, s);
    nne_conv_band_f32_prepare(&f2, &pl.p2, l2->w, l2->bias, l2->act, s + pl.g2_off);
    conv_pair_ctx ctx = {&pl, false, &f1, &f2, x, y, NULL, NULL, NULL, NULL, NULL, s + pl.global};
    nne_threadpool_run(pool, l1->g->n * pl.tasks_per_img, conv_pair_task, &ctx);
}

/* The int8 pair on prepared layers q1, q2 (their global areas hold the packed weights). */
static void conv_pair_s8_exec(nne_threadpool *pool, const conv_pair_plan *pl,
                              const conv_band_s8_layer *q1, const nne_conv_s8_mid *mid,
                              const conv_band_s8_layer *q2, const int8_t *x, int8_t *y,
                              unsigned char *threads_area) {
    conv_pair_ctx ctx = {pl, true, NULL, NULL, NULL, NULL, q1, q2, mid, x, y, threads_area};
    nne_threadpool_run(pool, pl->p1.g.n * pl->tasks_per_img, conv_pair_task, &ctx);
}

void nne_conv2d_pair_s8(nne_threadpool *pool, const nne_conv_s8_layer *l1,
                        const nne_conv_s8_mid *mid, const nne_conv_s8_layer *l2, const int8_t *x,
                        int8_t *y, void *scratch) {
    assert(l1 && l2 && x && y && scratch && ((uintptr_t)scratch & 63) == 0);
    conv_pair_plan pl;
    const bool ok = conv_pair_make(&pl, l1->g, l2->g, true, conv_pair_threads(pool));
    assert(ok);
    (void)ok;
    nne_threadpool_prewake(pool); /* the workers wake while the weights are packed */
    unsigned char *s = scratch;
    conv_band_s8_layer q1, q2;
    nne_conv_band_s8_prepare(&q1, &pl.p1, l1->x_zero_point, l1->w, l1->bias, l1->out, s);
    nne_conv_band_s8_prepare(&q2, &pl.p2, l2->x_zero_point, l2->w, l2->bias, l2->out,
                             s + pl.g2_off);
    conv_pair_s8_exec(pool, &pl, &q1, mid, &q2, x, y, s + pl.global);
}

void nne_conv2d_pair_s8_prep(nne_threadpool *pool, const nne_conv_s8_prep *p1,
                             const nne_conv_s8_mid *mid, const nne_conv_s8_prep *p2,
                             const int8_t *x, int8_t *y, void *scratch) {
    assert(p1 && p2 && x && y && scratch && ((uintptr_t)scratch & 63) == 0);
    nne_conv_s8_layer l1, l2;
    nne_conv_s8_prep_layer(p1, &l1);
    nne_conv_s8_prep_layer(p2, &l2);
    const conv_band_s8_layer *q1 = nne_conv_s8_prep_band(p1), *q2 = nne_conv_s8_prep_band(p2);
    if (!q1 || !q2) { /* prepared for another kernel: pack per call */
        nne_conv2d_pair_s8(pool, &l1, mid, &l2, x, y, scratch);
        return;
    }
    conv_pair_plan pl;
    const bool ok = conv_pair_make(&pl, l1.g, l2.g, true, conv_pair_threads(pool));
    assert(ok);
    (void)ok;
    conv_pair_s8_exec(pool, &pl, q1, mid, q2, x, y, (unsigned char *)scratch + pl.global);
}
