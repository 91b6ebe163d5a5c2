/* Fast convolution training kernels: im2col + nne_gemm_f32, threaded (docs/training.md,
 * "Fast path"). The loop kernels of layers.c stay the oracle (tests/train/test_conv_gemm.c).
 *
 * Both convolutions are written with one primitive, a *gather*: destination pixel
 * (b, y, x) and tap (ky, kx) read source pixel (b, y*sh - pt + ky*dh, x*sw - pl + kx*dw)
 * (zero outside the source). cols[p][ky][kx][c] is the gather of c channels for the
 * destination pixels p of a tile (im2col); col2im is its adjoint (scatter-add).
 *
 *   conv2d (source x [n][ih][iw][ic], destination grid oh x ow, K = kh*kw*ic):
 *     forward  y[P][oc]      = cols(x)[P][K] . w[oc][K]^T          (NT)  + bias
 *     dW       dw[oc][K]    += dy[P][oc]^T . cols(x)[P][K]          (TN)
 *     dX       dcols[P][K]   = dy[P][oc] . w[oc][K]                 (NN), col2im -> dx
 *   conv_transpose2d (the same triples, source = the *output* y / dy [n][oh][ow][oc],
 *   destination grid ih x iw, K = kh*kw*oc, wt[ic][ky][kx][oc] = w[oc][ky][kx][ic]):
 *     forward  cols[P][K]    = x[P][ic] . wt[ic][K]                  (NN), col2im -> y
 *     dX       dx[P][ic]     = cols(dy)[P][K] . wt[ic][K]^T          (NT)
 *     dW       dwt[K][ic]   += cols(dy)[P][K]^T . x[P][ic]           (TN), dw[o][t][c] =
 * dwt[t][o][c]
 *
 * Work partition. The destination rows (n * dst_h of them, images one after the other) are
 * cut into tiles of R rows (the im2col tile, ~cg_tile_floats floats, bounded scratch) and
 * the tiles into CG_CHUNKS contiguous chunks; a pool task is one chunk, its tiles in order.
 * The partition depends on the geometry only, never on the thread count, and
 *   - gathers (forward conv2d, convT dX) write disjoint outputs per chunk;
 *   - weight gradients go to one partial dW per chunk (the GEMM accumulates the chunk's
 *     tiles in order), summed in chunk order at the end; bias gradients likewise, in double;
 *   - scatters (conv2d dX, convT forward) run in two phases, even chunks then odd chunks:
 *     chunk k writes source rows [a_k*s - pt, (a_{k+1}-1)*s - pt + (kh-1)*dh], so chunks k
 *     and k+2 are disjoint when chunk k+1 has R >= floor((kh-1)*dh / s) rows, and every
 *     overlapping row gets its contributions in chunk order.
 * Each element is therefore computed by the same operations in the same order whatever the
 * number of threads or the schedule: results are bitwise identical for any thread count.
 * Inside a task the GEMM runs serially (pool NULL) on the task thread's own scratch.
 *
 * Groups > 1 (not used by the CAE models) take the reference loops, serially. */
#include <assert.h>
#include <string.h>

#include "nnedge/gemm.h"
#include "nnedge/threadpool.h"
#include "nnedge/train.h"
#include "train/conv_gemm_private.h"
#include "train/train_internal.h"

enum { CG_CHUNKS = 16 }; /* tasks per pass (a constant: thread-count independent) */

/* Target im2col tile: 64 Ki floats (256 KiB) so that patches, their packed copy and the
 * GEMM's output stay in L2. Tests shrink it (conv_gemm_private.h) to reach the multi-tile,
 * multi-chunk and two-phase paths with small shapes; set it before sizing scratch. */
static size_t cg_tile_floats = (size_t)1 << 16;
/* ... but at least CG_MIN_TILE_PX destination pixels: the weight-gradient GEMM (TN) runs
 * over a tile's pixels as its K dimension and reads and writes its [oc][K] partial once per
 * tile, so small-image layers (16x16 to 32x32 outputs, 5x5 kernels: 2 rows = 32-64 pixels)
 * spent more on packing and partial traffic than on multiply-adds (57-65 GFLOP/s against
 * 70-77 with 256-pixel tiles, 1 thread, CPU time). The tests' tiny tiles turn it off. */
enum { CG_MIN_TILE_PX = 256 };
static size_t cg_min_tile_px = CG_MIN_TILE_PX;

void nne_conv_gemm_set_tile_floats(size_t floats) {
    cg_tile_floats = floats ? floats : (size_t)1 << 16;
    cg_min_tile_px = floats ? 1 : CG_MIN_TILE_PX;
}

typedef struct cg_gather {
    int32_t n, src_h, src_w, c; /* source image [n][src_h][src_w][c] */
    int32_t dst_h, dst_w;       /* destination grid */
    int32_t kh, kw, sh, sw, dh, dw, pt, pl;
} cg_gather;

typedef struct cg_plan {
    cg_gather gt;
    bool transpose, ref, identity; /* identity: 1x1, stride 1, no padding: cols = source */
    int32_t taps, kc;              /* kc = taps * gt.c: width of a cols row */
    int32_t rows, tile_rows, n_tiles, n_chunks;
    size_t part_floats;            /* one partial weight gradient: kh*kw*ic*oc */
    size_t off_part, off_bsum;     /* [n_chunks][part_floats] f32, [n_chunks][oc] f64 */
    size_t off_wt, off_thread;     /* wt [ic][kc] (transpose), first per-thread area */
    size_t cols_bytes, per_thread; /* per thread: cols [tile px][kc], then GEMM scratch */
    size_t total;
} cg_plan;

static size_t cg_align(size_t x) { return (x + 63) & ~(size_t)63; }
static size_t cg_max(size_t a, size_t b) { return a > b ? a : b; }

static void cg_make_plan(const nne_conv2d_geom *g, bool transpose, int threads, cg_plan *p) {
    memset(p, 0, sizeof *p);
    if (threads < 1) threads = 1;
    p->transpose = transpose;
    if (g->groups != 1) { /* reference loops: their float scratch */
        p->ref = true;
        p->total = nne_conv2d_backward_scratch_size(g) * sizeof(float);
        return;
    }
    cg_gather *t = &p->gt;
    t->n = g->n;
    t->src_h = transpose ? g->oh : g->ih;
    t->src_w = transpose ? g->ow : g->iw;
    t->c = transpose ? g->oc : g->ic;
    t->dst_h = transpose ? g->ih : g->oh;
    t->dst_w = transpose ? g->iw : g->ow;
    t->kh = g->kh, t->kw = g->kw, t->sh = g->stride_h, t->sw = g->stride_w;
    t->dh = g->dil_h, t->dw = g->dil_w, t->pt = g->pad_t, t->pl = g->pad_l;
    p->identity = g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1 &&
                  g->pad_t == 0 && g->pad_l == 0 && t->src_h == t->dst_h && t->src_w == t->dst_w;
    p->taps = g->kh * g->kw;
    p->kc = p->taps * t->c;
    p->rows = g->n * t->dst_h;
    const size_t row_floats = (size_t)t->dst_w * (size_t)p->kc;
    int32_t r_min = (g->kh - 1) * g->dil_h / g->stride_h; /* scatter phases (see top) */
    if (r_min < 1) r_min = 1;
    size_t r = cg_tile_floats / (row_floats ? row_floats : 1);
    const size_t r_px = (cg_min_tile_px + (size_t)t->dst_w - 1) / (size_t)t->dst_w;
    if (r < r_px) r = r_px;
    if (r < (size_t)r_min) r = (size_t)r_min;
    if (r > (size_t)p->rows) r = (size_t)p->rows;
    p->tile_rows = (int32_t)r;
    p->n_tiles = (p->rows + p->tile_rows - 1) / p->tile_rows;
    p->n_chunks = p->n_tiles < CG_CHUNKS ? p->n_tiles : CG_CHUNKS;
    p->part_floats = (size_t)p->taps * (size_t)g->ic * (size_t)g->oc;

    /* The GEMMs of a tile of P pixels (serial, threads = 1), for the two tile sizes that
     * occur: full tiles and the last one (the GEMM's K blocking, hence its scratch, is not
     * monotone in K: a dW product over a shorter tile can need a larger K block). */
    const int32_t K = p->kc, oc = g->oc, ic = g->ic;
    const int32_t last_rows = p->rows - (p->n_tiles - 1) * p->tile_rows;
    const int32_t tile_px[2] = {p->tile_rows * t->dst_w, last_rows * t->dst_w};
    size_t gs = 0;
    for (int k = 0; k < 2; k++) {
        const int32_t P = tile_px[k];
        if (!transpose) {
            gs = cg_max(gs, nne_gemm_f32_scratch_size(P, oc, K, 1)); /* forward NT */
            gs = cg_max(gs, nne_gemm_f32_scratch_size(oc, K, P, 1)); /* dW TN */
            gs = cg_max(gs, nne_gemm_f32_scratch_size(P, K, oc, 1)); /* dcols NN */
        } else {
            gs = cg_max(gs, nne_gemm_f32_scratch_size(P, K, ic, 1)); /* forward NN */
            gs = cg_max(gs, nne_gemm_f32_scratch_size(P, ic, K, 1)); /* dX NT */
            gs = cg_max(gs, nne_gemm_f32_scratch_size(K, ic, P, 1)); /* dW TN */
        }
    }
    const int32_t P = tile_px[0];
    p->cols_bytes = cg_align((size_t)P * (size_t)K * sizeof(float));
    p->per_thread = p->cols_bytes + cg_align(gs);
    p->off_part = 0;
    p->off_bsum = cg_align((size_t)p->n_chunks * p->part_floats * sizeof(float));
    p->off_wt = p->off_bsum + cg_align((size_t)p->n_chunks * (size_t)oc * sizeof(double));
    p->off_thread = p->off_wt + (transpose ? cg_align((size_t)ic * (size_t)K * sizeof(float)) : 0);
    p->total = p->off_thread + (size_t)threads * p->per_thread;
}

size_t nne_conv2d_gemm_scratch_size(const nne_conv2d_geom *g, int threads) {
    cg_plan p;
    cg_make_plan(g, false, threads, &p);
    return p.total;
}

size_t nne_conv_transpose2d_gemm_scratch_size(const nne_conv2d_geom *g, int threads) {
    cg_plan p;
    cg_make_plan(g, true, threads, &p);
    return p.total;
}

/* ---- im2col / col2im over destination rows [r0, r1) ------------------------------------ */

/* cols[p][ky][kx][c] = src[b][iy][ix][c] or 0, p = (r - r0) * dst_w + x. */
static void cg_im2col(const cg_gather *g, const float *src, int32_t r0, int32_t r1, float *cols) {
    const int32_t c = g->c;
    const size_t krow = (size_t)g->kw * c, kc = (size_t)g->kh * krow; /* floats */
    for (int32_t r = r0; r < r1; r++) {
        const int32_t b = r / g->dst_h, y = r % g->dst_h;
        const float *sb = src + (size_t)b * g->src_h * g->src_w * c; /* [src_h][src_w][c] */
        for (int32_t x = 0; x < g->dst_w; x++, cols += kc) {
            const int32_t ix0 = x * g->sw - g->pl;
            const bool whole = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->src_w;
            for (int32_t ky = 0; ky < g->kh; ky++) {
                float *d = cols + (size_t)ky * krow; /* [kw][c] */
                const int32_t iy = y * g->sh - g->pt + ky * g->dh;
                if (iy < 0 || iy >= g->src_h) {
                    memset(d, 0, krow * sizeof(float));
                    continue;
                }
                const float *s = sb + (size_t)iy * g->src_w * c; /* [src_w][c] */
                if (whole) {                                     /* kw contiguous pixels */
                    memcpy(d, s + (size_t)ix0 * c, krow * sizeof(float));
                    continue;
                }
                for (int32_t kx = 0; kx < g->kw; kx++, d += c) {
                    const int32_t ix = ix0 + kx * g->dw;
                    if (ix < 0 || ix >= g->src_w)
                        memset(d, 0, (size_t)c * sizeof(float));
                    else
                        memcpy(d, s + (size_t)ix * c, (size_t)c * sizeof(float));
                }
            }
        }
    }
}

/* The adjoint: dst[b][iy][ix][c] += cols[p][ky][kx][c] for every in-image tap. */
static void cg_col2im(const cg_gather *g, const float *cols, int32_t r0, int32_t r1, float *dst) {
    const int32_t c = g->c;
    const size_t krow = (size_t)g->kw * c, kc = (size_t)g->kh * krow;
    for (int32_t r = r0; r < r1; r++) {
        const int32_t b = r / g->dst_h, y = r % g->dst_h;
        float *db = dst + (size_t)b * g->src_h * g->src_w * c;
        for (int32_t x = 0; x < g->dst_w; x++, cols += kc) {
            const int32_t ix0 = x * g->sw - g->pl;
            const bool whole = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->src_w;
            for (int32_t ky = 0; ky < g->kh; ky++) {
                const int32_t iy = y * g->sh - g->pt + ky * g->dh;
                if (iy < 0 || iy >= g->src_h) continue;
                const float *s = cols + (size_t)ky * krow;
                float *d = db + (size_t)iy * g->src_w * c;
                if (whole) {
                    d += (size_t)ix0 * c;
                    for (size_t i = 0; i < krow; i++) d[i] += s[i];
                    continue;
                }
                for (int32_t kx = 0; kx < g->kw; kx++, s += c) {
                    const int32_t ix = ix0 + kx * g->dw;
                    if (ix < 0 || ix >= g->src_w) continue;
                    float *dp = d + (size_t)ix * c;
                    for (int32_t i = 0; i < c; i++) dp[i] += s[i];
                }
            }
        }
    }
}

/* ---- tasks ------------------------------------------------------------------------------ */

typedef enum cg_pass {
    CG_CONV_FWD,  /* gather + NT, bias */
    CG_CONV_BWD,  /* dW (TN) and/or dX (NN + col2im, phased) */
    CG_TCONV_FWD, /* NN + col2im (phased) */
    CG_TCONV_BWD, /* gather of dy; dX (NT) and/or dW (TN) */
    CG_FILL,      /* out[pixel][oc] = bias or 0 over chunks of pixels */
    CG_BIAS_GRAD, /* per-chunk double sums of dy over its rows */
} cg_pass;

typedef struct cg_ctx {
    const cg_plan *p;
    const nne_conv2d_geom *g;
    cg_pass pass;
    int phase; /* scatter passes: chunk = 2 * task + phase; -1: chunk = task */
    const float *x, *w, *dy, *bias, *wt;
    float *y, *dx;
    bool want_dw;
    int64_t fill_px; /* CG_FILL: y[fill_px][fill_c] = bias or 0 */
    int32_t fill_c;
    uint32_t gf; /* extra nne_gemm_f32 flags: 0 or NNE_GEMM_BF16 */
    unsigned char *scratch;
} cg_ctx;

static void cg_chunk_tiles(const cg_plan *p, int chunk, int32_t *t0, int32_t *t1) {
    *t0 = (int32_t)((int64_t)chunk * p->n_tiles / p->n_chunks);
    *t1 = (int32_t)((int64_t)(chunk + 1) * p->n_tiles / p->n_chunks);
}

/* Rows [r0, r1) of `rows` for chunk `chunk` of `n_chunks` (fill and bias passes). */
static void cg_split(int64_t rows, int chunk, int n_chunks, int64_t *r0, int64_t *r1) {
    *r0 = rows * chunk / n_chunks;
    *r1 = rows * (chunk + 1) / n_chunks;
}

static void cg_task(void *vctx, int task, int thread) {
    const cg_ctx *c = vctx;
    const cg_plan *p = c->p;
    const nne_conv2d_geom *g = c->g;
    const int chunk = c->phase < 0 ? task : 2 * task + c->phase;
    const int32_t dw_ = p->gt.dst_w, K = p->kc, ic = g->ic, oc = g->oc;
    unsigned char *ts = c->scratch + p->off_thread + (size_t)thread * p->per_thread;
    float *cols = (float *)(void *)ts;
    void *gs = ts + p->cols_bytes;
    float *part = (float *)(void *)(c->scratch + p->off_part) + (size_t)chunk * p->part_floats;

    if (c->pass == CG_FILL) {
        int64_t q0, q1;
        const size_t fc = (size_t)c->fill_c;
        cg_split(c->fill_px, chunk, p->n_chunks, &q0, &q1);
        float *o = c->y + (size_t)q0 * fc;
        if (!c->bias) {
            memset(o, 0, (size_t)(q1 - q0) * fc * sizeof(float));
            return;
        }
        for (int64_t q = q0; q < q1; q++, o += fc) memcpy(o, c->bias, fc * sizeof(float));
        return;
    }
    if (c->pass == CG_BIAS_GRAD) {
        /* Rows of dy [n*oh][ow][oc]: per row a float sum of ow pixels, added in double (the
         * reference's order), channels in blocks of 64 so that the row sums stay on the stack. */
        double *bs = (double *)(void *)(c->scratch + p->off_bsum) + (size_t)chunk * oc;
        int64_t q0, q1;
        cg_split((int64_t)g->n * g->oh, chunk, p->n_chunks, &q0, &q1);
        for (int32_t o0 = 0; o0 < oc; o0 += 64) {
            const int32_t nb = oc - o0 < 64 ? oc - o0 : 64;
            float row[64];
            for (int32_t o = 0; o < nb; o++) bs[o0 + o] = 0.0;
            for (int64_t q = q0; q < q1; q++) {
                const float *d = c->dy + (size_t)q * g->ow * oc + o0; /* [ow][oc] */
                for (int32_t o = 0; o < nb; o++) row[o] = 0.0f;
                for (int32_t xx = 0; xx < g->ow; xx++, d += oc)
                    for (int32_t o = 0; o < nb; o++) row[o] += d[o];
                for (int32_t o = 0; o < nb; o++) bs[o0 + o] += row[o];
            }
        }
        return;
    }

    int32_t t0, t1;
    cg_chunk_tiles(p, chunk, &t0, &t1);
    for (int32_t t = t0; t < t1; t++) {
        const int32_t r0 = t * p->tile_rows;
        const int32_t r1 = r0 + p->tile_rows < p->rows ? r0 + p->tile_rows : p->rows;
        const int32_t P = (r1 - r0) * dw_;
        const size_t px0 = (size_t)r0 * dw_; /* first destination pixel */
        const uint32_t acc = t > t0 ? NNE_GEMM_ACCUMULATE : 0, gf = c->gf;
        switch (c->pass) {
        case CG_CONV_FWD: {
            const float *a = c->x + px0 * ic; /* 1x1: the pixels are the patches */
            if (!p->identity) {
                cg_im2col(&p->gt, c->x, r0, r1, cols);
                a = cols;
            }
            float *y = c->y + px0 * oc;
            nne_gemm_f32(NULL, NNE_GEMM_TRANS_B | gf, P, oc, K, a, K, c->w, K, y, oc, gs);
            if (c->bias)
                for (int32_t q = 0; q < P; q++)
                    for (int32_t o = 0; o < oc; o++) y[(size_t)q * oc + o] += c->bias[o];
            break;
        }
        case CG_CONV_BWD: {
            const float *dy = c->dy + px0 * oc; /* [P][oc] */
            if (c->want_dw) {
                const float *b = c->x + px0 * ic;
                if (!p->identity) {
                    cg_im2col(&p->gt, c->x, r0, r1, cols);
                    b = cols;
                }
                nne_gemm_f32(NULL, NNE_GEMM_TRANS_A | acc | gf, oc, K, P, dy, oc, b, K, part, K,
                             gs);
            }
            if (c->dx) {
                nne_gemm_f32(NULL, gf, P, K, oc, dy, oc, c->w, K, cols, K, gs);
                cg_col2im(&p->gt, cols, r0, r1, c->dx);
            }
            break;
        }
        case CG_TCONV_FWD:
            nne_gemm_f32(NULL, gf, P, K, ic, c->x + px0 * ic, ic, c->wt, K, cols, K, gs);
            cg_col2im(&p->gt, cols, r0, r1, c->y);
            break;
        case CG_TCONV_BWD: {
            const float *a = c->dy + px0 * oc;
            if (!p->identity) {
                cg_im2col(&p->gt, c->dy, r0, r1, cols);
                a = cols;
            }
            if (c->dx)
                nne_gemm_f32(NULL, NNE_GEMM_TRANS_B | gf, P, ic, K, a, K, c->wt, K,
                             c->dx + px0 * ic, ic, gs);
            if (c->want_dw)
                nne_gemm_f32(NULL, NNE_GEMM_TRANS_A | acc | gf, K, ic, P, a, K, c->x + px0 * ic, ic,
                             part, ic, gs);
            break;
        }
        default:
            break;
        }
    }
}

/* Run pass `pass` over every chunk: in two phases (even, odd chunks) when it scatters. */
static void cg_run(nne_threadpool *pool, cg_ctx *c, bool phased) {
    const int n = c->p->n_chunks;
    if (!phased) {
        c->phase = -1;
        nne_threadpool_run(pool, n, cg_task, c);
        return;
    }
    c->phase = 0;
    nne_threadpool_run(pool, (n + 1) / 2, cg_task, c);
    c->phase = 1;
    nne_threadpool_run(pool, n / 2, cg_task, c);
}

/* dw += sum over chunks of the partials (chunk order); convT partials are [t][o][c]. */
static void cg_reduce_dw(const cg_plan *p, const nne_conv2d_geom *g, const unsigned char *scratch,
                         float *dw) {
    const float *part = (const float *)(const void *)(scratch + p->off_part);
    const size_t n = p->part_floats;
    if (!p->transpose) {
        nne_train__sum_partials(part, n, n, p->n_chunks, dw);
        return;
    }
    const int32_t taps = p->taps, oc = g->oc, ic = g->ic;
    for (int32_t t = 0; t < taps; t++)
        for (int32_t o = 0; o < oc; o++) {
            const size_t src = ((size_t)t * oc + o) * ic, dst = ((size_t)o * taps + t) * ic;
            for (int32_t ci = 0; ci < ic; ci++) {
                float s = part[src + ci];
                for (int32_t k = 1; k < p->n_chunks; k++) s += part[(size_t)k * n + src + ci];
                dw[dst + ci] += s;
            }
        }
}

static void cg_bias_grad(nne_threadpool *pool, cg_ctx *c, float *db) {
    const cg_plan *p = c->p;
    c->pass = CG_BIAS_GRAD;
    cg_run(pool, c, false);
    const double *bs = (const double *)(const void *)(c->scratch + p->off_bsum);
    for (int32_t o = 0; o < c->g->oc; o++) {
        double s = 0.0;
        for (int32_t k = 0; k < p->n_chunks; k++) s += bs[(size_t)k * c->g->oc + o];
        db[o] += (float)s;
    }
}

/* wt[c][t][o] = w[o][t][c]. */
static void cg_transpose_w(const cg_plan *p, const nne_conv2d_geom *g, const float *w, float *wt) {
    const int32_t taps = p->taps, oc = g->oc, ic = g->ic;
    for (int32_t o = 0; o < oc; o++)
        for (int32_t t = 0; t < taps; t++)
            for (int32_t ci = 0; ci < ic; ci++)
                wt[((size_t)ci * taps + t) * oc + o] = w[((size_t)o * taps + t) * ic + ci];
}

/* ---- entry points ----------------------------------------------------------------------- */

void nne_conv2d_forward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                             const float *w, const float *b, float *y, void *scratch,
                             uint32_t gemm_flags) {
    assert(g && x && w && y);
    cg_plan p;
    cg_make_plan(g, false, nne_threadpool_threads(pool), &p);
    if (p.ref) {
        nne_conv2d_forward(g, x, w, b, y);
        return;
    }
    assert(scratch && ((uintptr_t)scratch & 63) == 0);
    cg_ctx c = {.p = &p,
                .g = g,
                .pass = CG_CONV_FWD,
                .x = x,
                .w = w,
                .bias = b,
                .y = y,
                .gf = gemm_flags & NNE_GEMM_BF16,
                .scratch = scratch};
    cg_run(pool, &c, false);
}

void nne_conv2d_backward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                              const float *w, const float *dy, float *dx, float *dw, float *db,
                              void *scratch, uint32_t gemm_flags) {
    assert(g && x && w && dy && scratch);
    cg_plan p;
    cg_make_plan(g, false, nne_threadpool_threads(pool), &p);
    if (p.ref) {
        nne_conv2d_backward(g, x, w, dy, dx, dw, db, scratch);
        return;
    }
    assert(scratch && ((uintptr_t)scratch & 63) == 0);
    cg_ctx c = {.p = &p,
                .g = g,
                .x = x,
                .w = w,
                .dy = dy,
                .y = dx,
                .dx = dx,
                .want_dw = dw != NULL,
                .gf = gemm_flags & NNE_GEMM_BF16,
                .scratch = scratch};
    if (dx) { /* dx is a sum of scatters: clear it first */
        c.pass = CG_FILL;
        c.fill_px = (int64_t)g->n * g->ih * g->iw;
        c.fill_c = g->ic;
        cg_run(pool, &c, false);
    }
    if (dx || dw) {
        c.pass = CG_CONV_BWD;
        cg_run(pool, &c, dx != NULL);
        if (dw) cg_reduce_dw(&p, g, scratch, dw);
    }
    if (db) cg_bias_grad(pool, &c, db);
}

void nne_conv_transpose2d_forward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g,
                                       const float *x, const float *w, const float *b, float *y,
                                       void *scratch, uint32_t gemm_flags) {
    assert(g && x && w && y);
    cg_plan p;
    cg_make_plan(g, true, nne_threadpool_threads(pool), &p);
    if (p.ref) {
        nne_conv_transpose2d_forward(g, x, w, b, y);
        return;
    }
    assert(scratch && ((uintptr_t)scratch & 63) == 0);
    float *wt = (float *)(void *)((unsigned char *)scratch + p.off_wt);
    cg_transpose_w(&p, g, w, wt);
    cg_ctx c = {.p = &p,
                .g = g,
                .pass = CG_FILL,
                .x = x,
                .w = w,
                .wt = wt,
                .bias = b,
                .y = y,
                .fill_px = (int64_t)g->n * g->oh * g->ow,
                .fill_c = g->oc,
                .gf = gemm_flags & NNE_GEMM_BF16,
                .scratch = scratch};
    cg_run(pool, &c, false); /* y = bias, then the scatter adds every tap */
    c.pass = CG_TCONV_FWD;
    cg_run(pool, &c, true);
}

void nne_conv_transpose2d_backward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g,
                                        const float *x, const float *w, const float *dy, float *dx,
                                        float *dw, float *db, void *scratch, uint32_t gemm_flags) {
    assert(g && x && w && dy && scratch);
    cg_plan p;
    cg_make_plan(g, true, nne_threadpool_threads(pool), &p);
    if (p.ref) {
        nne_conv_transpose2d_backward(g, x, w, dy, dx, dw, db, scratch);
        return;
    }
    assert(scratch && ((uintptr_t)scratch & 63) == 0);
    float *wt = (float *)(void *)((unsigned char *)scratch + p.off_wt);
    if (dx) cg_transpose_w(&p, g, w, wt);
    cg_ctx c = {.p = &p,
                .g = g,
                .pass = CG_TCONV_BWD,
                .x = x,
                .w = w,
                .wt = wt,
                .dy = dy,
                .dx = dx,
                .want_dw = dw != NULL,
                .gf = gemm_flags & NNE_GEMM_BF16,
                .scratch = scratch};
    if (dx || dw) {
        cg_run(pool, &c, false);
        if (dw) cg_reduce_dw(&p, g, scratch, dw);
    }
    if (db) cg_bias_grad(pool, &c, db);
}
