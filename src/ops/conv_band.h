/* Direct "band" convolutions: every groups-1 convolution and transposed convolution whose
 * depth fits (docs/conv.md, "Direct band kernels"). Two kernels:
 *   panel    tile 6 pixels x a panel of 16 output channels, broadcasting the pixels' depth
 *            elements from the band (the register tile of a GEMM micro-kernel, minus the
 *            packing of A); used for any oc > CONV_BAND_TINY_N and K = taps * ic up to
 *            CONV_BAND_MAX_K_F32 / CONV_BAND_MAX_K_S8. First written for K = 27 (an RGB first
 *            layer, where a gather costs as much as the multiplication), it also beats the
 *            implicit GEMM of conv_fast*.c on 3x3 x 32..64-channel layers: no gather of
 *            taps x the input, no separate C tile and output pass (docs/perf.md);
 *   tiny N   oc <= CONV_BAND_TINY_N (an RGB last layer: 3 channels): 3 of every 16 lanes of
 *            a channel panel would do useful work, so it is vectorized along the depth.
 * Both read their taps straight from a *band*: the input rows and columns one tile of output
 * pixels needs, zero outside the image (padding; taps that reach no input), so the kernels
 * have no border cases and each input element is copied about once instead of taps times.
 * f32 reads x itself when the band lies inside the image; int8 always converts the band to
 * int16 x - x_zp (the exact operands of vpmaddwd, conv_s8_kernels.h).
 *
 * Geometry, per phase (conv_plan.h) and axis: tap j of the phase, in ascending input order,
 * reads input q * istep + off for phase coordinate q (conv: kernel index k ascending,
 * off = k*d - pad; transposed: k descending, off = (o0 + pad - k*d) / s, exact). A tile is
 * R x C phase pixels of one image; its band starts at input (qy0 * istep_y + offy0,
 * qx0 * istep_x + offx0) and is ((R-1) istep_y + span_y) x ((C-1) istep_x + span_x) pixels.
 * In the band (row stride bstride elements), the taps of pixel (qy, qx) start at element
 *   base = (qy - qy0) istep_y bstride + (qx - qx0) istep_x ic
 * and are nseg *segments* of seglen contiguous elements at base + soff[s]: one per row tap of
 * tx * ic elements when the column taps are consecutive (dilation 1), else one per tap of ic.
 * The depth order is (row tap, column tap, channel), and the weights are packed in it.
 *
 * Tiles depend on the geometry only, so results do not depend on the thread count. */
#ifndef NNE_OPS_CONV_BAND_H
#define NNE_OPS_CONV_BAND_H

#include "conv_plan.h"
#include "nnedge/conv.h"
#include "nnedge/gemm.h" /* nne_ops_isa */

/* Largest depth K of the panel kernel. It does not block K, so one 16-channel weight panel
 * (K x 16 elements) is streamed from L2 per call: up to 64 KiB (f32 1024 x 16 x 4 bytes,
 * int16 2048 x 16 x 2). Deeper layers take the implicit GEMM, which blocks K (f32). */
#define CONV_BAND_MAX_K_F32 1024
#define CONV_BAND_MAX_K_S8  2048
/* Band bytes one panel-kernel call may read (conv_band_chunk): kept in L1 (32 KiB on Zen 3)
 * next to a weight panel while the kernel passes over the channel panels. */
#define CONV_BAND_CALL_BYTES (12 * 1024)
#define CONV_BAND_TINY_N     4 /* output channels at or below which the tiny-N kernel runs */
/* Elements past a band that the int8 kernels may read (times zero weights): zeroed. */
#define CONV_BAND_SLACK 16

typedef enum conv_band_kind {
    CONV_BAND_NONE = 0, /* implicit GEMM */
    CONV_BAND_PANEL,    /* 6 pixels x 16 channels */
    CONV_BAND_TINYN,
} conv_band_kind;

/* One call of a band kernel: m pixels of one tile row. Pixel i's depth is the nseg segments
 * a + i * a_step + soff[s], seglen elements each; its oc outputs go to y + i * y_step. */
typedef struct conv_band_run {
    int32_t m, nseg, seglen, oc;
    const void *a; /* float or int16 */
    int64_t a_step, y_step;
    const int64_t *soff;
} conv_band_run;

/* f32: y[i][o] = act(bias[o] + sum_k a[i][k] w[o][k]). Packed weights:
 *   panel    [ceil(oc/16)][K][16]            K = nseg * seglen, zero past oc
 *   tiny N   [oc][nseg][round_up(seglen, 8)] zero past seglen */
typedef void (*conv_band_f32_fn)(const conv_band_run *r, const float *w, const float *bias,
                                 const nne_conv_act *act, float *y);

/* int8 output stage spread per channel as nne_s8_output_fn wants it (conv_s8_kernels.h),
 * each array [round_up(oc, 16)], zero past oc. */
typedef struct conv_band_s8_out {
    const nne_qoutput *out;
    const int32_t *addv;             /* bias (0 without) */
    const int32_t *mult, *lsh, *rsh; /* Q31 mantissa, max(-shift, 0), max(shift, 0) */
    /* the same of out->rq_neg (a fused PReLU: used where the accumulator is < 0); all NULL
     * without one */
    const int32_t *nmult, *nlsh, *nrsh;
} conv_band_s8_out;

/* int8: y[i][o] = out(addv[o] + sum_k a[i][k] w[o][k]), a int16 (x - x_zp), w int16:
 *   panel    pairs: [ceil(oc/16)][K2/2][16][2], K2 = nseg * round_up(seglen, 2); a segment of
 *            odd length is paired with the element after it, whose weight is 0
 *   tiny N   [oc][nseg][round_up(seglen, 16)], zero past seglen (the kernels read up to 15
 *            elements past a segment: CONV_BAND_SLACK)
 * Exact: |x - x_zp| <= 255, |w| <= 128; |acc| <= K * 255 * 128 <= INT32_MAX for K <=
 * NNE_S8_MAX_K, and the zero-weight extras add 0. */
typedef void (*conv_band_s8_fn)(const conv_band_run *r, const void *w, const conv_band_s8_out *q,
                                int8_t *y);

/* int8 "w7" panel (AVX2 vpmaddubsw), for layers whose weights all lie in
 * [-CONV_BAND_W7, CONV_BAND_W7] (conv_band_s8_w7): a u8 band x + 128 (padding x_zp + 128)
 * and s8 weights in quads [ceil(oc/16)][K4/4][16][4], K4 = nseg * round_up(seglen, 4) (a
 * segment's tail is completed by the band elements after it, times weight 0; CONV_BAND_SLACK
 * covers the last). vpmaddubsw adds two u8 x s8 products into a *saturating* int16: with
 * |w| <= 64 the pair is at most 2 x 255 x 64 = 32640 <= 32767, so it is exact (65 would not
 * be: 2 x 255 x 65 = 33150). The kernel sums (x + 128) w; addv is then the phase's
 * bias - (x_zp + 128) sum_k w (the driver's per-phase compensation, as the VNNI kernel's), so
 * acc + addv is the reference's exact accumulator. */
#define CONV_BAND_W7 64
void nne_conv_band_s8_panel_w7__avx2(const conv_band_run *r, const void *w,
                                     const conv_band_s8_out *q, int8_t *y);

/* Whether n int8 weights all lie in [-CONV_BAND_W7, CONV_BAND_W7] (the w7 panel is exact). */
static inline bool conv_band_s8_w7(const int8_t *w, size_t n) {
    int32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= w[i] > CONV_BAND_W7 || w[i] < -CONV_BAND_W7;
    return !bad;
}

void nne_conv_band_f32_panel__avx2(const conv_band_run *r, const float *w, const float *bias,
                                   const nne_conv_act *act, float *y);
void nne_conv_band_f32_tinyn__avx2(const conv_band_run *r, const float *w, const float *bias,
                                   const nne_conv_act *act, float *y);
void nne_conv_band_s8_panel__avx2(const conv_band_run *r, const void *w, const conv_band_s8_out *q,
                                  int8_t *y);
/* int8 band conversion d[e] = s[e] - zp (int16), n elements (conv_band_s8.c's fill). */
void nne_conv_band_s8_cvt__avx2(const int8_t *s, int32_t zp, int16_t *d, size_t n);
void nne_conv_band_s8_tinyn__avx2(const conv_band_run *r, const void *w, const conv_band_s8_out *q,
                                  int8_t *y);

/* Drivers (conv_band_f32.c, conv_band_s8.c), called by conv_fast*.c when conv_band_select
 * picks a kernel (scratch: conv_band_scratch below): the arguments of nne_conv2d_f32 /
 * nne_conv2d_s8, p made by conv_plan_make. */
void nne_conv_band_f32_run(nne_threadpool *pool, const conv_plan *p, const float *x, const float *w,
                           const float *bias, const nne_conv_act *act, float *y, void *scratch);
void nne_conv_band_s8_run(nne_threadpool *pool, const conv_plan *p, const int8_t *x, int32_t x_zp,
                          const int8_t *w, const int32_t *bias, const nne_qoutput *out, int8_t *y,
                          void *scratch);

/* Whether the band kernels take the AVX2 path: the ISA in use is not "ref" and the CPU has
 * AVX2 + FMA (there is no AVX-512 band kernel; "avx512" runs the AVX2 one). */
static inline bool conv_band_use_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    const uint32_t need = NNE_CPU_AVX2 | NNE_CPU_FMA;
    return strcmp(nne_ops_isa(), "ref") != 0 && (nne_cpu_features() & need) == need;
#else
    return false;
#endif
}

/* The f32 epilogue of one output: act(v) for channel o, exactly as nne_relu_f32__ref /
 * nne_prelu_f32__ref (act NULL: none). */
static inline float conv_f32_act(float v, int32_t o, const nne_conv_act *act) {
    if (!act || act->kind == NNE_CONV_ACT_NONE) return v;
    if (act->kind == NNE_CONV_ACT_RELU)
        return v < 0.0f ? 0.0f : v; /* nne_relu_f32__ref's form: NaN, -0 kept */
    return v < 0.0f ? v * act->slope[act->n_slope == 1 ? 0 : o] : v;
}

/* Phase axis a's taps in ascending input order: tap j (0 <= j < kn, skipping kernel indices
 * outside the phase) is kernel index conv_band_k(a, kn, j), reading input q * istep +
 * conv_band_off(a, k). */
static inline int32_t conv_band_k(const conv_axis_phase *a, int32_t kn, int32_t j) {
    return a->transposed ? kn - 1 - j : j;
}

static inline int32_t conv_band_off(const conv_axis_phase *a, int32_t k) {
    return a->transposed ? (a->o0 + a->pad - k * a->d) / a->s : k * a->d - a->pad;
}

/* Taps of axis a and their first and last input offsets (unchanged when there is none). */
static inline int32_t conv_band_axis_span(const conv_axis_phase *a, int32_t kn, int32_t *first,
                                          int32_t *last) {
    int32_t t = 0;
    for (int32_t j = 0; j < kn; j++) {
        const int32_t k = conv_band_k(a, kn, j);
        if (!conv_axis_has(a, k)) continue;
        if (t++ == 0) *first = conv_band_off(a, k);
        *last = conv_band_off(a, k);
    }
    return t;
}

/* Per phase: taps, tile size and band extent. */
typedef struct conv_band_phase {
    conv_phase c;
    int32_t offy0, spany, offx0, spanx; /* first offset and span (last - first + 1) per axis */
    bool xrun;                          /* column taps consecutive: one segment per row tap */
    int32_t nseg, seglen;
    int32_t R, C, tiles_y, tiles_x; /* tile rows and columns (phase pixels); tiles per axis */
    int32_t n_tasks;
} conv_band_phase;

static inline int32_t conv_band_up(int32_t x, int32_t m) { return (x + m - 1) / m * m; }

/* Band elements of an r x c tile. */
static inline int64_t conv_band_elems(const conv_band_phase *b, int32_t ic, int32_t r, int32_t c) {
    return (int64_t)((r - 1) * b->c.y.istep + b->spany) * ((c - 1) * b->c.x.istep + b->spanx) * ic;
}

/* Fill the band plan of phase ph; target: band elements per tile. */
static inline void conv_band_phase_make(const conv_plan *p, int32_t ph, int64_t target,
                                        conv_band_phase *b) {
    const nne_conv2d_geom *g = &p->g;
    memset(b, 0, sizeof *b);
    conv_plan_phase(p, ph, &b->c);
    int32_t ly = 0, lx = 0;
    const int32_t ty = conv_band_axis_span(&b->c.y, g->kh, &b->offy0, &ly);
    const int32_t tx = conv_band_axis_span(&b->c.x, g->kw, &b->offx0, &lx);
    b->spany = ty > 0 ? ly - b->offy0 + 1 : 1;
    b->spanx = tx > 0 ? lx - b->offx0 + 1 : 1;
    b->xrun = b->spanx == tx;
    b->nseg = b->xrun ? ty : ty * tx;
    b->seglen = b->xrun ? tx * g->ic : g->ic;
    if (ty == 0 || tx == 0) b->nseg = 0, b->seglen = 0;
    const int32_t qh = b->c.y.q, qw = b->c.x.q;
    if (qh == 0 || qw == 0 || g->n == 0) return;
    /* Whole rows when 8 of them fit (or the phase has fewer), the most rows up to 64;
     * else 8 rows (fewer if even one column is too big) and the most columns. */
    int32_t R = qh < 8 ? qh : 8, C = qw;
    if (conv_band_elems(b, g->ic, R, qw) <= target) {
        while (R < qh && R < 64 && conv_band_elems(b, g->ic, R + 1, qw) <= target) R++;
    } else {
        while (R > 1 && conv_band_elems(b, g->ic, R, 1) > target) R /= 2;
        C = 1;
        while (C < qw && conv_band_elems(b, g->ic, R, C + 1) <= target) C++;
        /* As many column tiles, of even widths, a multiple of the kernels' 6-pixel tile when
         * that still fits: each tile row ends in a partial 6-pixel tile whose padding pixels
         * are computed and dropped. conv2d_5 int8 (94 columns, 29 fit): 29 + 29 + 29 + 7
         * computed 102 pixels per row, 24 + 24 + 24 + 22 computes 96. */
        const int32_t nt = (qw + C - 1) / C, even = (qw + nt - 1) / nt;
        C = conv_band_up(even, 6) <= C ? conv_band_up(even, 6) : even;
    }
    b->R = R, b->C = C;
    b->tiles_y = (qh + R - 1) / R, b->tiles_x = (qw + C - 1) / C;
    b->n_tasks = g->n * b->tiles_y * b->tiles_x;
}

/* Tests only: 1 sends every geometry to the implicit GEMM (conv_band_select returns
 * CONV_BAND_NONE), so that its groups-1 cases stay covered; 0 (default): automatic. Read by
 * both the scratch size and the run, so set it only between calls. Defined in
 * conv_band_f32.c. */
extern int nne_conv_band_disable;
/* Tests only: 1 makes nne_conv2d_pair_ok false (the backends then run the layers one by one,
 * as NNEDGE_FUSE=0 does); defined in conv_pair.c. */
extern int nne_conv_pair_disable;

/* Which band kernel, if any, runs the geometry of plan p (groups 1 only); s8: the int8
 * drivers (their own depth limit). Depends on the geometry only, not on the ISA. */
static inline conv_band_kind conv_band_select(const conv_plan *p, bool s8) {
    const nne_conv2d_geom *g = &p->g;
    if (g->groups != 1 || nne_conv_band_disable) return CONV_BAND_NONE;
    if (g->oc <= CONV_BAND_TINY_N) return CONV_BAND_TINYN;
    if (p->k_max <= (s8 ? CONV_BAND_MAX_K_S8 : CONV_BAND_MAX_K_F32)) return CONV_BAND_PANEL;
    return CONV_BAND_NONE;
}

/* Pixels per panel-kernel call in a tile row of phase b (elem bytes per band element): the
 * call passes over every 16-channel panel, so the band elements it reads, at most
 * nseg x (m istep_x ic + seglen), should stay in L1 between panels
 * (CONV_BAND_CALL_BYTES). A multiple of the kernels' 6-pixel tile, at least 6. Each
 * pixel's sums do not depend on the call it falls in. Measured on conv2d_3 (252 x 380 x 64,
 * K = 288), int8: one call per 202-pixel tile row ran the kernel at 19.6 MAC/cycle, calls of
 * 36-60 pixels at 23 (bench in docs/perf.md). */
static inline int32_t conv_band_chunk(const conv_band_phase *b, int32_t ic, size_t elem) {
    const int64_t per_px = (int64_t)(b->nseg > 0 ? b->nseg : 1) * b->c.x.istep * ic * (int64_t)elem;
    const int64_t fixed = (int64_t)b->nseg * b->seglen * (int64_t)elem;
    int64_t m = per_px > 0 ? (CONV_BAND_CALL_BYTES - fixed) / per_px : 0;
    m = m / 6 * 6;
    return m < 6 ? 6 : m > 1 << 20 ? 1 << 20 : (int32_t)m;
}

/* Scratch layout shared by the f32 and int8 drivers: global [phase plans][packed weight
 * offsets (elements)][packed weights][OHWI in depth order: oc x k_max][int8: addv, mult, lsh,
 * rsh, nmult, nlsh, nrsh (rq_neg), then one addv per phase (w7 panel): int32 [round_up(oc, 16)]
 * each] then per thread [band +
 * CONV_BAND_SLACK][soff int64 [kh * kw]]. Element: float (f32) or int16 (int8: band x - x_zp and
 * packed weights). */
typedef struct conv_band_layout {
    conv_plan plan;
    conv_band_kind kind;
    bool s8;
    int32_t n_phases;
    size_t phases_off, woff_off, w_off, tmp_off, q_off, global; /* global area, bytes */
    size_t band_off, soff_off, per_thread;                      /* per thread */
} conv_band_layout;

static inline size_t conv_band_al64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Packed weight elements of phase b (conv_band_f32_fn / conv_band_s8_fn), rounded up to
 * 64 bytes. */
static inline size_t conv_band_wsize(const conv_band_layout *l, const conv_band_phase *b) {
    const int32_t oc = l->plan.g.oc;
    size_t n;
    if (l->kind == CONV_BAND_PANEL)
        n = (size_t)conv_band_up(oc, 16) * b->nseg * conv_band_up(b->seglen, l->s8 ? 2 : 1);
    else
        n = (size_t)oc * b->nseg * conv_band_up(b->seglen, l->s8 ? 16 : 8);
    const size_t elem = l->s8 ? 2 : 4;
    return conv_band_al64(n * elem) / elem;
}

/* phases: NULL (sizes only) or storage for the n_phases plans. Band target: 128 KiB. */
static inline void conv_band_layout_make(conv_band_layout *l, const conv_plan *p, bool s8,
                                         conv_band_phase *phases) {
    const nne_conv2d_geom *g = &p->g;
    const size_t elem = s8 ? 2 : 4;
    memset(l, 0, sizeof *l);
    l->plan = *p;
    l->kind = conv_band_select(p, s8);
    l->s8 = s8;
    l->n_phases = p->ph_y * p->ph_x;
    size_t w_elems = 0, band = 0;
    for (int32_t ph = 0; ph < l->n_phases; ph++) {
        conv_band_phase b;
        conv_band_phase_make(p, ph, (int64_t)(128 * 1024 / elem), &b);
        if (phases) phases[ph] = b;
        w_elems += conv_band_wsize(l, &b);
        if (b.n_tasks && b.nseg) {
            const size_t e = (size_t)conv_band_elems(&b, g->ic, b.R, b.C);
            if (e > band) band = e;
        }
    }
    l->phases_off = 0;
    l->woff_off = conv_band_al64((size_t)l->n_phases * sizeof(conv_band_phase));
    l->w_off = l->woff_off + conv_band_al64((size_t)l->n_phases * sizeof(size_t));
    l->tmp_off = l->w_off + w_elems * elem;
    l->q_off = l->tmp_off + conv_band_al64((size_t)g->oc * p->k_max * (s8 ? 1 : 4));
    l->global =
        l->q_off + (s8 ? (size_t)(7 + l->n_phases) * conv_band_up(g->oc, 16) * sizeof(int32_t) : 0);
    l->band_off = 0;
    l->soff_off = conv_band_al64((band + CONV_BAND_SLACK) * elem);
    l->per_thread = l->soff_off + conv_band_al64((size_t)g->kh * g->kw * sizeof(int64_t));
}

static inline size_t conv_band_scratch(const conv_plan *p, bool s8, int threads) {
    conv_band_layout l;
    conv_band_layout_make(&l, p, s8, NULL);
    return l.global + l.per_thread * (size_t)(threads < 1 ? 1 : threads);
}

/* A task's tile: phase, image, first phase row / column and size; its band: first input row
 * and column (may lie outside the image), size in pixels, and whether it lies inside. */
typedef struct conv_band_tile {
    int32_t ph, b, qy0, qx0, rows, cols;
    int32_t iy0, ix0, bh, bw;
    bool inside;
} conv_band_tile;

/* The tile of phase b (number ph) of image img at phase pixel (qy0, qx0), at most rows x cols
 * pixels (clipped to the phase). */
static inline void conv_band_tile_at(const nne_conv2d_geom *g, const conv_band_phase *b, int32_t ph,
                                     int32_t img, int32_t qy0, int32_t qx0, int32_t rows,
                                     int32_t cols, conv_band_tile *t) {
    t->ph = ph;
    t->b = img;
    t->qy0 = qy0;
    t->qx0 = qx0;
    t->rows = b->c.y.q - t->qy0 < rows ? b->c.y.q - t->qy0 : rows;
    t->cols = b->c.x.q - t->qx0 < cols ? b->c.x.q - t->qx0 : cols;
    t->iy0 = t->qy0 * b->c.y.istep + b->offy0;
    t->ix0 = t->qx0 * b->c.x.istep + b->offx0;
    t->bh = (t->rows - 1) * b->c.y.istep + b->spany;
    t->bw = (t->cols - 1) * b->c.x.istep + b->spanx;
    t->inside = t->iy0 >= 0 && t->iy0 + t->bh <= g->ih && t->ix0 >= 0 && t->ix0 + t->bw <= g->iw;
}

/* Task numbering: phase after phase, then image, tile row, tile column. */
static inline const conv_band_phase *conv_band_task(const conv_band_layout *l,
                                                    const conv_band_phase *bp, int32_t task,
                                                    conv_band_tile *t) {
    int32_t ph = 0;
    while (ph < l->n_phases - 1 && task >= bp[ph].n_tasks) task -= bp[ph++].n_tasks;
    const conv_band_phase *b = &bp[ph];
    const int32_t per_img = b->tiles_y * b->tiles_x;
    conv_band_tile_at(&l->plan.g, b, ph, task / per_img, task % per_img / b->tiles_x * b->R,
                      task % b->tiles_x * b->C, b->R, b->C, t);
    return b;
}

/* The columns [lo, hi) of a band row of tile t that lie inside the image. */
static inline void conv_band_cols(const nne_conv2d_geom *g, const conv_band_tile *t, int32_t *lo,
                                  int32_t *hi) {
    *lo = t->ix0 < 0 ? (-t->ix0 < t->bw ? -t->ix0 : t->bw) : 0;
    *hi = g->iw - t->ix0 < t->bw ? (g->iw - t->ix0 > *lo ? g->iw - t->ix0 : *lo) : t->bw;
}

/* Segment offsets (elements) for a band of row stride bstride: soff [nseg]. */
static inline void conv_band_soff(const conv_plan *p, const conv_band_phase *b, int64_t bstride,
                                  int64_t *soff) {
    const nne_conv2d_geom *g = &p->g;
    const conv_axis_phase *ay = &b->c.y, *ax = &b->c.x;
    int32_t s = 0;
    for (int32_t i = 0; i < g->kh && b->nseg; i++) {
        const int32_t ky = conv_band_k(ay, g->kh, i);
        if (!conv_axis_has(ay, ky)) continue;
        for (int32_t j = 0; j < g->kw; j++) {
            const int32_t kx = conv_band_k(ax, g->kw, j);
            if (!conv_axis_has(ax, kx)) continue;
            soff[s++] = (conv_band_off(ay, ky) - b->offy0) * bstride +
                        (int64_t)(conv_band_off(ax, kx) - b->offx0) * g->ic;
            if (b->xrun) break; /* one segment per row tap */
        }
    }
}

/* Offset in y (elements) of phase pixel (b, qy, qx). */
static inline size_t conv_band_y_at(const conv_plan *p, const conv_phase *c, int32_t b, int32_t qy,
                                    int32_t qx) {
    const nne_conv2d_geom *g = &p->g;
    const int32_t oy = c->y.o0 + qy * c->y.ostep, ox = c->x.o0 + qx * c->x.ostep;
    return (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc;
}

/* Copy the weights of phase c in band depth order: dst [oc][K] (elem bytes per weight) from
 * OHWI w. Returns K. */
static inline int32_t conv_band_phase_weights(const conv_plan *p, const conv_phase *c,
                                              const void *w, size_t elem, void *dst) {
    const nne_conv2d_geom *g = &p->g;
    const size_t run = (size_t)g->ic * elem;
    unsigned char *d = dst;
    const unsigned char *s = w;
    for (int32_t o = 0; o < g->oc; o++)
        for (int32_t i = 0; i < g->kh; i++) {
            const int32_t ky = conv_band_k(&c->y, g->kh, i);
            if (!conv_axis_has(&c->y, ky)) continue;
            for (int32_t j = 0; j < g->kw; j++) {
                const int32_t kx = conv_band_k(&c->x, g->kw, j);
                if (!conv_axis_has(&c->x, kx)) continue;
                memcpy(d, s + (((size_t)o * g->kh + ky) * g->kw + kx) * run, run);
                d += run;
            }
        }
    return c->k;
}

/* A layer prepared for the band kernels (conv_band_f32.c / conv_band_s8.c): weights packed
 * into the layout's global area (l.global bytes at `global`, 64-byte aligned), kernel chosen
 * for the ISA in use, output stage spread per channel (int8). nne_conv_band_*_run prepare one
 * layer and run its tiles; the fused pairs (conv_pair.c) prepare two and run their own
 * schedule, through the same per-tile code (nne_conv_band_*_tile) and kernels. */
typedef struct conv_band_f32_layer {
    conv_band_layout l;
    const conv_band_phase *phases; /* [l.n_phases], in the global area */
    const size_t *woff;            /* packed weights of phase ph at wp + woff[ph] */
    const float *wp;
    conv_band_f32_fn fn;
    const float *bias;
    const nne_conv_act *act;
} conv_band_f32_layer;

typedef struct conv_band_s8_layer {
    conv_band_layout l;
    const conv_band_phase *phases;
    const size_t *woff;
    const int16_t *wp; /* int16 pairs, or (w7) s8 quads */
    conv_band_s8_fn fn;
    bool avx2; /* AVX2 band conversion */
    bool w7;   /* the w7 panel: u8 band, per-phase addv at addv_ph + ph * ocp */
    const int32_t *addv_ph;
    int32_t x_zp;
    conv_band_s8_out q;
} conv_band_s8_layer;

void nne_conv_band_f32_prepare(conv_band_f32_layer *L, const conv_plan *p, const float *w,
                               const float *bias, const nne_conv_act *act, void *global);
void nne_conv_band_s8_prepare(conv_band_s8_layer *L, const conv_plan *p, int32_t x_zp,
                              const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                              void *global);
/* Run prepared layer L on x into y: its tiles on the pool; threads_area: the per-thread areas
 * (threads x l.per_thread bytes, 64-byte aligned). */
void nne_conv_band_s8_exec(nne_threadpool *pool, const conv_band_s8_layer *L, const int8_t *x,
                           int8_t *y, void *threads_area);
/* The band layer of a prepared int8 layer (conv_fast_s8.c), or NULL when it is not on the band
 * kernels or was prepared for another kernel than the ISA in use now picks (the caller then
 * takes the per-call path). */
const conv_band_s8_layer *nne_conv_s8_prep_band(const nne_conv_s8_prep *prep);
/* The arguments prep was created with (its own copies; l->g points into prep). */
void nne_conv_s8_prep_layer(const nne_conv_s8_prep *prep, nne_conv_s8_layer *l);
/* Tile t of layer L on input x: row r of the tile goes to y + r * y_row (elements; y: the
 * tile's first output pixel); ts: the thread's area (l.per_thread bytes). */
void nne_conv_band_f32_tile(const conv_band_f32_layer *L, const float *x, const conv_band_tile *t,
                            unsigned char *ts, float *y, int64_t y_row);
void nne_conv_band_s8_tile(const conv_band_s8_layer *L, const int8_t *x, const conv_band_tile *t,
                           unsigned char *ts, int8_t *y, int64_t y_row);

/* Elements between consecutive rows of a tile of phase c in y (the y_row of a separate call's
 * nne_conv_band_*_tile). */
static inline int64_t conv_band_y_row(const conv_plan *p, const conv_phase *c) {
    return (int64_t)c->y.ostep * p->g.ow * p->g.oc;
}

#endif
