/* f32 direct band convolutions (conv_band.h, docs/conv.md "Direct band kernels"): the driver
 * conv_fast.c calls for small-K and tiny-N geometries, and the portable kernels.
 *
 * Per call, serially: the weights of every phase are packed for the kernel (conv_band.h).
 * Per task (one tile of R x C phase pixels of one image): the band is x itself when it lies
 * inside the image, else a zero-padded copy in the thread's scratch; then one kernel call per
 * tile row writes act(bias + conv) straight to y.
 *
 * Scratch: [phase plans][packed weight offsets][packed weights][OHWI copy in depth order,
 * oc x k_max] then per thread [band: max tile band + CONV_BAND_SLACK floats][segment offsets
 * int64 kh * kw]. */
#include <assert.h>

#include "conv_band.h"
#include "ops_internal.h"

/* Band target: 32 Ki floats (128 KiB), as the GEMM path's gathered tile. */
#define BAND_F32_ELEMS (32 * 1024)

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }
static int32_t up(int32_t x, int32_t m) { return (x + m - 1) / m * m; }

/* ---- portable kernels ---------------------------------------------------------------------- */

/* Sequential sums in depth order (the reference's order); w_at gives the packed index. */
static void band_f32_ref(const conv_band_run *r, const float *w, const float *bias,
                         const nne_conv_act *act, float *y, bool tinyn) {
    const float *a = r->a;
    const int32_t K = r->nseg * r->seglen, lp = up(r->seglen, 8);
    for (int32_t i = 0; i < r->m; i++)
        for (int32_t o = 0; o < r->oc; o++) {
            float acc = 0.0f;
            for (int32_t s = 0, k = 0; s < r->nseg; s++)
                for (int32_t e = 0; e < r->seglen; e++, k++) {
                    const size_t wi = tinyn ? ((size_t)o * r->nseg + s) * lp + e
                                            : ((size_t)(o / 16) * K + k) * 16 + o % 16;
                    acc += a[i * r->a_step + r->soff[s] + e] * w[wi];
                }
            y[i * r->y_step + o] = conv_f32_act(bias ? acc + bias[o] : acc, o, act);
        }
}

static void band_f32_smallk_ref(const conv_band_run *r, const float *w, const float *bias,
                                const nne_conv_act *act, float *y) {
    band_f32_ref(r, w, bias, act, y, false);
}

static void band_f32_tinyn_ref(const conv_band_run *r, const float *w, const float *bias,
                               const nne_conv_act *act, float *y) {
    band_f32_ref(r, w, bias, act, y, true);
}

/* ---- layout -------------------------------------------------------------------------------- */

typedef struct band_f32_layout {
    conv_plan plan;
    conv_band_kind kind;
    int32_t n_phases;
    size_t phases_off, woff_off, w_off, tmp_off, global; /* global area */
    size_t band_off, soff_off, per_thread;               /* per thread */
} band_f32_layout;

/* Packed weight floats of phase b. */
static size_t band_f32_wsize(conv_band_kind kind, const conv_band_phase *b, int32_t oc) {
    if (kind == CONV_BAND_SMALLK) return (size_t)up(oc, 16) * b->c.k;
    return (size_t)oc * b->nseg * up(b->seglen, 8);
}

/* phases: NULL (sizes only) or storage for the phase plans. */
static void band_f32_layout_make(band_f32_layout *l, const conv_plan *p, conv_band_phase *phases) {
    const nne_conv2d_geom *g = &p->g;
    memset(l, 0, sizeof *l);
    l->plan = *p;
    l->kind = conv_band_select(p);
    l->n_phases = p->ph_y * p->ph_x;
    size_t w_elems = 0, band = 0;
    for (int32_t ph = 0; ph < l->n_phases; ph++) {
        conv_band_phase b;
        conv_band_phase_make(p, ph, BAND_F32_ELEMS, &b);
        if (phases) phases[ph] = b;
        w_elems += al64(band_f32_wsize(l->kind, &b, g->oc) * sizeof(float)) / sizeof(float);
        if (b.n_tasks && b.nseg) {
            const size_t e = (size_t)conv_band_elems(&b, g->ic, b.R, b.C);
            if (e > band) band = e;
        }
    }
    l->phases_off = 0;
    l->woff_off = al64((size_t)l->n_phases * sizeof(conv_band_phase));
    l->w_off = l->woff_off + al64((size_t)l->n_phases * sizeof(size_t));
    l->tmp_off = l->w_off + w_elems * sizeof(float);
    l->global = l->tmp_off + al64((size_t)g->oc * p->k_max * sizeof(float));
    l->band_off = 0;
    l->soff_off = al64((band + CONV_BAND_SLACK) * sizeof(float));
    l->per_thread = l->soff_off + al64((size_t)g->kh * g->kw * sizeof(int64_t));
}

size_t nne_conv_band_f32_scratch(const conv_plan *p, int threads) {
    band_f32_layout l;
    band_f32_layout_make(&l, p, NULL);
    return l.global + l.per_thread * (size_t)(threads < 1 ? 1 : threads);
}

/* ---- run ----------------------------------------------------------------------------------- */

typedef struct band_f32_ctx {
    const band_f32_layout *l;
    const conv_band_phase *phases;
    const size_t *woff;
    conv_band_f32_fn fn;
    const float *x, *bias;
    const nne_conv_act *act;
    float *y;
    unsigned char *scratch;
} band_f32_ctx;

/* Zero-padded copy of input rows [iy0, iy0 + bh) x columns [ix0, ix0 + bw) of image b. */
static void band_f32_fill(const nne_conv2d_geom *g, const float *x, int32_t b, int32_t iy0,
                          int32_t ix0, int32_t bh, int32_t bw, float *d) {
    const size_t ic = (size_t)g->ic;
    const int32_t lo = ix0 < 0 ? (-ix0 < bw ? -ix0 : bw) : 0;
    const int32_t hi = g->iw - ix0 < bw ? (g->iw - ix0 > lo ? g->iw - ix0 : lo) : bw;
    for (int32_t r = 0; r < bh; r++, d += (size_t)bw * ic) {
        const int32_t iy = iy0 + r;
        if (iy < 0 || iy >= g->ih || hi == lo) {
            memset(d, 0, (size_t)bw * ic * sizeof *d);
            continue;
        }
        memset(d, 0, (size_t)lo * ic * sizeof *d);
        memcpy(d + lo * ic, x + (((size_t)b * g->ih + iy) * g->iw + ix0 + lo) * ic,
               (size_t)(hi - lo) * ic * sizeof *d);
        memset(d + hi * ic, 0, (size_t)(bw - hi) * ic * sizeof *d);
    }
}

static void band_f32_task(void *vctx, int task, int thread) {
    const band_f32_ctx *x = vctx;
    const band_f32_layout *l = x->l;
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    conv_band_tile t;
    conv_band_task(x->phases, l->n_phases, task, &t);
    const conv_band_phase *b = &x->phases[t.ph];
    unsigned char *ts = x->scratch + l->global + (size_t)thread * l->per_thread;
    float *buf = (float *)(void *)(ts + l->band_off);
    int64_t *soff = (int64_t *)(void *)(ts + l->soff_off);
    int32_t iy0, ix0, bh, bw;
    conv_band_extent(b, &t, &iy0, &ix0, &bh, &bw);
    const float *band = buf;
    int64_t bstride = (int64_t)bw * g->ic;
    if (b->nseg == 0) { /* no tap reaches this phase: y = act(bias) */
        bstride = 0;
    } else if (iy0 >= 0 && iy0 + bh <= g->ih && ix0 >= 0 && ix0 + bw <= g->iw) {
        band = x->x + (((size_t)t.b * g->ih + iy0) * g->iw + ix0) * g->ic;
        bstride = (int64_t)g->iw * g->ic;
    } else {
        band_f32_fill(g, x->x, t.b, iy0, ix0, bh, bw, buf);
    }
    conv_band_soff(p, b, bstride, soff);
    conv_band_run run = {t.cols, b->nseg, b->seglen, g->oc, NULL, (int64_t)b->c.x.istep * g->ic,
                         (int64_t)b->c.x.ostep * g->oc, soff};
    const float *w = (const float *)(const void *)(x->scratch + l->w_off) + x->woff[t.ph];
    for (int32_t r = 0; r < t.rows; r++) {
        run.a = band + (size_t)r * b->c.y.istep * bstride;
        x->fn(&run, w, x->bias, x->act, x->y + conv_band_y_at(p, &b->c, t.b, t.qy0 + r, t.qx0));
    }
}

void nne_conv_band_f32_run(nne_threadpool *pool, const conv_plan *p, const float *x,
                           const float *w, const float *bias, const nne_conv_act *act, float *y,
                           void *scratch) {
    unsigned char *s = scratch;
    band_f32_layout l;
    conv_band_phase *phases = (conv_band_phase *)(void *)s;
    band_f32_layout_make(&l, p, phases);
    assert(l.kind != CONV_BAND_NONE);
    size_t *woff = (size_t *)(void *)(s + l.woff_off);
    float *wp = (float *)(void *)(s + l.w_off), *tmp = (float *)(void *)(s + l.tmp_off);
    const int32_t oc = p->g.oc;
    size_t at = 0;
    for (int32_t ph = 0; ph < l.n_phases; ph++) {
        const conv_band_phase *b = &phases[ph];
        const int32_t K = conv_band_phase_weights(p, &b->c, w, sizeof(float), tmp);
        float *d = wp + at;
        woff[ph] = at;
        if (l.kind == CONV_BAND_SMALLK) { /* [oc/16][K][16] */
            for (int32_t o = 0; o < up(oc, 16); o++)
                for (int32_t k = 0; k < K; k++)
                    d[((size_t)(o / 16) * K + k) * 16 + o % 16] =
                        o < oc ? tmp[(size_t)o * K + k] : 0.0f;
        } else { /* [oc][nseg][lp] */
            const int32_t lp = up(b->seglen, 8);
            for (int32_t o = 0; o < oc; o++)
                for (int32_t sg = 0; sg < b->nseg; sg++)
                    for (int32_t e = 0; e < lp; e++)
                        d[((size_t)o * b->nseg + sg) * lp + e] =
                            e < b->seglen ? tmp[(size_t)o * K + (size_t)sg * b->seglen + e] : 0.0f;
        }
        at += al64(band_f32_wsize(l.kind, b, oc) * sizeof(float)) / sizeof(float);
    }
    const bool avx2 = conv_band_use_avx2();
    conv_band_f32_fn fn = l.kind == CONV_BAND_SMALLK ? band_f32_smallk_ref : band_f32_tinyn_ref;
#if defined(__x86_64__) || defined(__i386__)
    if (avx2)
        fn = l.kind == CONV_BAND_SMALLK ? nne_conv_band_f32_smallk__avx2
                                        : nne_conv_band_f32_tinyn__avx2;
#else
    (void)avx2;
#endif
    int32_t n_tasks = 0;
    for (int32_t ph = 0; ph < l.n_phases; ph++) n_tasks += phases[ph].n_tasks;
    band_f32_ctx ctx = {&l, phases, woff, fn, x, bias, act, y, s};
    nne_threadpool_run(pool, n_tasks, band_f32_task, &ctx);
}
