/* Tiling plan shared by the fast f32 and int8 convolutions (conv_fast.c, conv_fast_s8.c;
 * include/nnedge/conv.h, docs/conv.md).
 *
 * Both operators are written as gathers over *phases*. Along one axis (stride s, dilation
 * d, padding p, input size in):
 *   conv:        one phase; output o = q reads input q*s - p + k*d for every tap k.
 *   transposed:  s phases r = (o + p) mod s; the outputs of phase r are o = o0 + q*s
 *                (o0 the first o >= 0 with (o + p) mod s == r) and read, through the taps
 *                k with (k*d) mod s == r only, input q + (o0 + p - k*d) / s (exact division).
 * So in both cases input = q * istep + off(k) over the phase's taps, zero outside [0, in),
 * and output = o0 + q * ostep. A 2-D phase is a pair (row phase, column phase); its pixels
 * (b, q, qx) are numbered b*qh*qw + q*qw + qx and cut into tiles of `tile_px` consecutive
 * pixels. A task is one tile of one phase; tasks are numbered phase after phase.
 *
 * Everything here depends on the geometry (and the tile target) only, never on the thread
 * count, which is what makes the kernels deterministic. */
#ifndef NNE_OPS_CONV_PLAN_H
#define NNE_OPS_CONV_PLAN_H

#include <string.h>

#include "nnedge/ops.h"

/* One axis of one phase. */
typedef struct conv_axis_phase {
    int32_t o0, ostep; /* first output coordinate, output step */
    int32_t q;         /* outputs in the phase along this axis */
    int32_t istep;     /* input step per output step */
    int32_t r, s, d;   /* taps k with (k*d) mod s == r (conv: s = 1, r = 0: every tap) */
    int32_t taps;      /* taps of the phase */
    bool transposed;
    int32_t pad, in;
} conv_axis_phase;

static inline void conv_axis_make(conv_axis_phase *a, bool transposed, int32_t r, int32_t out,
                                  int32_t in, int32_t k, int32_t s, int32_t d, int32_t p) {
    memset(a, 0, sizeof *a);
    a->transposed = transposed;
    a->pad = p;
    a->in = in;
    a->d = d;
    if (!transposed) {
        a->o0 = 0, a->ostep = 1, a->q = out, a->istep = s, a->r = 0, a->s = 1, a->taps = k;
        return;
    }
    a->s = s;
    a->r = r;
    a->o0 = ((r - p) % s + s) % s;
    a->ostep = s;
    a->istep = 1;
    a->q = a->o0 < out ? (out - a->o0 + s - 1) / s : 0;
    for (int32_t t = 0; t < k; t++) a->taps += (t * d) % s == r;
}

/* Whether tap k belongs to the phase. */
static inline bool conv_axis_has(const conv_axis_phase *a, int32_t k) {
    return (k * a->d) % a->s == a->r;
}

/* Input coordinate of phase coordinate q through tap k (of the phase), or -1 (padding or
 * no input). */
static inline int32_t conv_axis_src(const conv_axis_phase *a, int32_t q, int32_t k) {
    int32_t i;
    if (!a->transposed)
        i = q * a->istep - a->pad + k * a->d;
    else
        i = q + (a->o0 + a->pad - k * a->d) / a->s; /* exact: o0 + p == k*d (mod s) */
    return i >= 0 && i < a->in ? i : -1;
}

typedef struct conv_phase {
    conv_axis_phase y, x;
    int32_t k;       /* taps * icg: the GEMM depth */
    int64_t pixels;  /* n * y.q * x.q */
    int32_t n_tiles; /* ceil(pixels / tile_px) */
    int32_t first_task;
    size_t w_off; /* transposed: first element of the phase's weights [oc][taps][icg] */
} conv_phase;

typedef struct conv_plan {
    nne_conv2d_geom g;
    bool transposed;
    int32_t icg, ocg;
    int32_t ph_y, ph_x; /* phases per axis */
    int32_t tile_px;    /* pixels per tile */
    int32_t k_max;      /* largest phase depth */
    int32_t n_tasks;
    bool direct; /* one phase, unit output step: a tile is a contiguous run of y */
} conv_plan;

/* Phase `ph` (row phase ph / ph_x, column phase ph % ph_x). */
static inline void conv_plan_phase(const conv_plan *p, int32_t ph, conv_phase *out) {
    const nne_conv2d_geom *g = &p->g;
    conv_axis_make(&out->y, p->transposed, ph / p->ph_x, g->oh, g->ih, g->kh, g->stride_h,
                   g->dil_h, g->pad_t);
    conv_axis_make(&out->x, p->transposed, ph % p->ph_x, g->ow, g->iw, g->kw, g->stride_w,
                   g->dil_w, g->pad_l);
    out->k = out->y.taps * out->x.taps * p->icg;
    out->pixels = (int64_t)g->n * out->y.q * out->x.q;
    out->n_tiles = (int32_t)((out->pixels + p->tile_px - 1) / p->tile_px);
    out->first_task = 0;
    out->w_off = 0;
}

/* Fill the plan. tile_elems: target gathered tile (pixels x depth elements). tile_align:
 * tile_px is a multiple of it (the micro-kernels' row blocks). */
static inline void conv_plan_make(conv_plan *p, const nne_conv2d_geom *g, bool transposed,
                                  int64_t tile_elems, int32_t tile_align) {
    memset(p, 0, sizeof *p);
    p->g = *g;
    p->transposed = transposed;
    p->icg = g->ic / g->groups;
    p->ocg = g->oc / g->groups;
    p->ph_y = transposed ? g->stride_h : 1;
    p->ph_x = transposed ? g->stride_w : 1;
    p->direct = p->ph_y == 1 && p->ph_x == 1;
    p->tile_px = 1; /* for the k_max pass */
    for (int32_t ph = 0; ph < p->ph_y * p->ph_x; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        if (c.k > p->k_max) p->k_max = c.k;
    }
    int64_t t = tile_elems / (p->k_max > 0 ? p->k_max : 1);
    t = t / tile_align * tile_align;
    if (t < tile_align) t = tile_align;
    if (t > 8192) t = 8192; /* bounds the output tile when the depth is tiny */
    p->tile_px = (int32_t)t;
    int64_t tasks = 0;
    for (int32_t ph = 0; ph < p->ph_y * p->ph_x; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        tasks += c.n_tiles;
    }
    p->n_tasks = (int32_t)tasks;
}

/* The phase and the tile within it of task `task`; phase weights offsets accumulate
 * oc * taps * icg per phase (the transposed kernels' repacked weights). */
static inline void conv_plan_task(const conv_plan *p, int32_t task, conv_phase *out,
                                  int32_t *tile) {
    int32_t first = 0;
    size_t w_off = 0;
    memset(out, 0, sizeof *out);
    for (int32_t ph = 0; ph < p->ph_y * p->ph_x; ph++) {
        conv_plan_phase(p, ph, out);
        out->first_task = first;
        out->w_off = w_off;
        if (task < first + out->n_tiles) {
            *tile = task - first;
            return;
        }
        first += out->n_tiles;
        w_off += (size_t)p->g.oc * (size_t)out->k;
    }
    *tile = -1; /* not reached for task < n_tasks */
}

/* Output pixel offset (in pixels of y) of phase pixel `pix`. */
static inline size_t conv_out_pixel(const conv_plan *p, const conv_phase *c, int64_t pix) {
    const int64_t per_img = (int64_t)c->y.q * c->x.q;
    const int64_t b = pix / per_img, rem = pix % per_img;
    const int32_t oy = c->y.o0 + (int32_t)(rem / c->x.q) * c->y.ostep;
    const int32_t ox = c->x.o0 + (int32_t)(rem % c->x.q) * c->x.ostep;
    return ((size_t)b * p->g.oh + oy) * p->g.ow + ox;
}

/* Walks the pixels of a tile in order and resolves their taps (conv_gather_*):
 *   rows[ty] = element offset in x of input row (b, iy) of the phase's ty-th row tap, or -1
 *   cols[tx] = element offset of input column ix within a row (ix * ic), or -1
 * so tap (ty, tx) of the current pixel reads x + rows[ty] + cols[tx] (+ the group's first
 * channel) unless either is -1 (padding, or no input for a transposed tap). rows is
 * recomputed only when the pixel starts a new row. `contig`: every column tap is in the
 * image and they are consecutive pixels (conv2d with dilation 1 away from the borders), so
 * a row tap with groups == 1 is one run of x.taps * ic elements. */
typedef struct conv_gather_it {
    const conv_plan *p;
    const conv_phase *c;
    int64_t b;
    int32_t qy, qx;
    bool rows_ok, contig;
    int64_t *rows; /* [kh] */
    int64_t *cols; /* [kw] */
} conv_gather_it;

static inline void conv_gather_begin(conv_gather_it *it, const conv_plan *p, const conv_phase *c,
                                     int64_t pix0, int64_t *rows, int64_t *cols) {
    const int64_t per_img = (int64_t)c->y.q * c->x.q;
    it->p = p, it->c = c, it->rows = rows, it->cols = cols;
    it->b = pix0 / per_img;
    it->qy = (int32_t)(pix0 % per_img / c->x.q);
    it->qx = (int32_t)(pix0 % c->x.q);
    it->rows_ok = false;
}

/* Resolve the current pixel's taps (rows, cols, contig). */
static inline void conv_gather_pixel(conv_gather_it *it) {
    const conv_plan *p = it->p;
    const conv_phase *c = it->c;
    const nne_conv2d_geom *g = &p->g;
    if (!it->rows_ok) {
        int32_t t = 0;
        for (int32_t ky = 0; ky < g->kh; ky++) {
            if (!conv_axis_has(&c->y, ky)) continue;
            const int32_t iy = conv_axis_src(&c->y, it->qy, ky);
            it->rows[t++] = iy < 0 ? -1 : (it->b * g->ih + iy) * (int64_t)g->iw * g->ic;
        }
        it->rows_ok = true;
    }
    int32_t t = 0;
    bool contig = p->icg == g->ic;
    for (int32_t kx = 0; kx < g->kw; kx++) {
        if (!conv_axis_has(&c->x, kx)) continue;
        const int32_t ix = conv_axis_src(&c->x, it->qx, kx);
        it->cols[t] = ix < 0 ? -1 : (int64_t)ix * g->ic;
        contig = contig && ix >= 0 && it->cols[t] == it->cols[0] + (int64_t)t * g->ic;
        t++;
    }
    /* A phase without column taps (transposed, stride > kernel) has no run: tcols[0] is then
     * never written, and reading it would form a pointer from stale scratch. */
    it->contig = contig && t > 0;
}

static inline void conv_gather_next(conv_gather_it *it) {
    if (++it->qx < it->c->x.q) return;
    it->qx = 0;
    it->rows_ok = false;
    if (++it->qy < it->c->y.q) return;
    it->qy = 0;
    it->b++;
}

/* Gather (im2col) m pixels of a tile, from phase pixel pix0, into cols [m][ld] elements of
 * `elem` bytes: pixel i's row holds its taps (ty, tx) in the phase's order, icg elements each,
 * read from xg (x offset to the group's first channel), zero for padding; elements
 * [c->k, ld) are left as they are. rows, tcols: [kh], [kw] scratch for the iterator.
 * Shared by the f32 implicit GEMM (elem 4) and the bf16 pair kernels (elem 2). */
static inline void conv_gather_tile(const conv_plan *p, const conv_phase *c, int64_t pix0,
                                    int32_t m, const void *xg, size_t elem, void *cols, size_t ld,
                                    int64_t *rows, int64_t *tcols) {
    const size_t run = (size_t)p->icg * elem; /* bytes of one tap */
    const unsigned char *xb = xg;
    conv_gather_it it;
    conv_gather_begin(&it, p, c, pix0, rows, tcols);
    for (int32_t i = 0; i < m; i++, conv_gather_next(&it)) {
        conv_gather_pixel(&it);
        unsigned char *d = (unsigned char *)cols + (size_t)i * ld * elem;
        for (int32_t ty = 0; ty < c->y.taps; ty++) {
            if (it.contig && rows[ty] >= 0) { /* one run of x.taps pixels */
                memcpy(d, xb + (size_t)(rows[ty] + tcols[0]) * elem, (size_t)c->x.taps * run);
                d += (size_t)c->x.taps * run;
                continue;
            }
            for (int32_t tx = 0; tx < c->x.taps; tx++, d += run) {
                if (rows[ty] < 0 || tcols[tx] < 0)
                    memset(d, 0, run);
                else
                    memcpy(d, xb + (size_t)(rows[ty] + tcols[tx]) * elem, run);
            }
        }
    }
}

/* Transposed kernels: the weights of every phase, [phase][oc][taps of the phase][icg], from
 * OHWI w [oc][kh][kw][icg]; elem bytes per weight. Returns the elements written (= w's). */
static inline size_t conv_plan_phase_weights(const conv_plan *p, const void *w, size_t elem,
                                             void *dst) {
    const nne_conv2d_geom *g = &p->g;
    unsigned char *d = dst;
    const unsigned char *s = w;
    const size_t run = (size_t)p->icg * elem;
    for (int32_t ph = 0; ph < p->ph_y * p->ph_x; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        for (int32_t o = 0; o < g->oc; o++)
            for (int32_t ky = 0; ky < g->kh; ky++) {
                if (!conv_axis_has(&c.y, ky)) continue;
                for (int32_t kx = 0; kx < g->kw; kx++) {
                    if (!conv_axis_has(&c.x, kx)) continue;
                    memcpy(d, s + (((size_t)o * g->kh + ky) * g->kw + kx) * run, run);
                    d += run;
                }
            }
    }
    return (size_t)(d - (unsigned char *)dst) / elem;
}

#endif
