/* f32 direct band convolutions (conv_band.h, docs/conv.md "Direct band kernels"): the driver
 * conv_fast.c calls for every groups-1 layer with K <= CONV_BAND_MAX_K_F32
 * (panel and tiny-N kernels), and the portable kernels.
 *
 * Per call, serially: the weights of every phase are packed for the kernel (conv_band.h).
 * Per task (one tile of R x C phase pixels of one image): the band is x itself when it lies
 * inside the image, else a zero-padded copy in the thread's scratch; then kernel calls of
 * conv_band_chunk pixels per tile row write act(bias + conv) straight to y.
 * Scratch: conv_band_layout. */
#include <assert.h>

#include "conv_band.h"
#include "ops_internal.h"

int nne_conv_band_disable = 0; /* conv_band.h: tests only */

/* ---- portable kernels ---------------------------------------------------------------------- */

/* Sequential sums in depth order (the reference's order); w_at gives the packed index. */
static void band_f32_ref(const conv_band_run *r, const float *w, const float *bias,
                         const nne_conv_act *act, float *y, bool tinyn) {
    const float *a = r->a;
    const int32_t K = r->nseg * r->seglen, lp = conv_band_up(r->seglen, 8);
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

static void band_f32_panel_ref(const conv_band_run *r, const float *w, const float *bias,
                               const nne_conv_act *act, float *y) {
    band_f32_ref(r, w, bias, act, y, false);
}

static void band_f32_tinyn_ref(const conv_band_run *r, const float *w, const float *bias,
                               const nne_conv_act *act, float *y) {
    band_f32_ref(r, w, bias, act, y, true);
}

/* ---- run ----------------------------------------------------------------------------------- */

/* Zero-padded copy of tile t's band (rows of bw * ic floats). */
static void band_f32_fill(const nne_conv2d_geom *g, const float *x, const conv_band_tile *t,
                          float *d) {
    const size_t ic = (size_t)g->ic, row = (size_t)t->bw * ic;
    int32_t lo, hi;
    conv_band_cols(g, t, &lo, &hi);
    for (int32_t r = 0; r < t->bh; r++, d += row) {
        const int32_t iy = t->iy0 + r;
        if (iy < 0 || iy >= g->ih || hi == lo) {
            memset(d, 0, row * sizeof *d);
            continue;
        }
        memset(d, 0, (size_t)lo * ic * sizeof *d);
        memcpy(d + lo * ic, x + (((size_t)t->b * g->ih + iy) * g->iw + t->ix0 + lo) * ic,
               (size_t)(hi - lo) * ic * sizeof *d);
        memset(d + hi * ic, 0, (size_t)(t->bw - hi) * ic * sizeof *d);
    }
}

void nne_conv_band_f32_tile(const conv_band_f32_layer *L, const float *x, const conv_band_tile *t,
                            unsigned char *ts, float *y, int64_t y_row) {
    const conv_band_layout *l = &L->l;
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    const conv_band_phase *b = &L->phases[t->ph];
    float *buf = (float *)(void *)(ts + l->band_off);
    int64_t *soff = (int64_t *)(void *)(ts + l->soff_off);
    const float *band = buf;
    int64_t bstride = (int64_t)t->bw * g->ic;
    if (b->nseg == 0) { /* no tap reaches this phase: y = act(bias) */
        bstride = 0;
    } else if (t->inside) { /* read x in place */
        band = x + (((size_t)t->b * g->ih + t->iy0) * g->iw + t->ix0) * g->ic;
        bstride = (int64_t)g->iw * g->ic;
    } else {
        band_f32_fill(g, x, t, buf);
    }
    conv_band_soff(p, b, bstride, soff);
    conv_band_run run = {t->cols,
                         b->nseg,
                         b->seglen,
                         g->oc,
                         NULL,
                         (int64_t)b->c.x.istep * g->ic,
                         (int64_t)b->c.x.ostep * g->oc,
                         soff};
    const float *w = L->wp + L->woff[t->ph];
    /* panel: calls of `chunk` pixels, whose band part stays in L1 across the channel panels */
    const int32_t chunk =
        l->kind == CONV_BAND_PANEL ? conv_band_chunk(b, g->ic, sizeof(float)) : t->cols;
    for (int32_t r = 0; r < t->rows; r++) {
        const float *a = band + (size_t)r * b->c.y.istep * bstride;
        float *yr = y + r * y_row;
        for (int32_t c0 = 0; c0 < t->cols; c0 += chunk) {
            run.m = t->cols - c0 < chunk ? t->cols - c0 : chunk;
            run.a = a + c0 * run.a_step;
            L->fn(&run, w, L->bias, L->act, yr + (size_t)c0 * run.y_step);
        }
    }
}

void nne_conv_band_f32_prepare(conv_band_f32_layer *L, const conv_plan *p, const float *w,
                               const float *bias, const nne_conv_act *act, void *global) {
    unsigned char *s = global;
    conv_band_layout *l = &L->l;
    conv_band_phase *phases = (conv_band_phase *)(void *)(s + 0); /* phases_off */
    conv_band_layout_make(l, p, false, phases);
    assert(l->kind != CONV_BAND_NONE);
    size_t *woff = (size_t *)(void *)(s + l->woff_off);
    float *wp = (float *)(void *)(s + l->w_off), *tmp = (float *)(void *)(s + l->tmp_off);
    const int32_t oc = p->g.oc;
    size_t at = 0;
    for (int32_t ph = 0; ph < l->n_phases; ph++) {
        const conv_band_phase *b = &phases[ph];
        const int32_t K = conv_band_phase_weights(p, &b->c, w, sizeof(float), tmp);
        float *d = wp + at;
        woff[ph] = at;
        if (l->kind == CONV_BAND_PANEL) { /* [oc/16][K][16] */
            for (int32_t o = 0; o < conv_band_up(oc, 16); o++)
                for (int32_t k = 0; k < K; k++)
                    d[((size_t)(o / 16) * K + k) * 16 + o % 16] =
                        o < oc ? tmp[(size_t)o * K + k] : 0.0f;
        } else { /* [oc][nseg][lp] */
            const int32_t lp = conv_band_up(b->seglen, 8);
            for (int32_t o = 0; o < oc; o++)
                for (int32_t sg = 0; sg < b->nseg; sg++)
                    for (int32_t e = 0; e < lp; e++)
                        d[((size_t)o * b->nseg + sg) * lp + e] =
                            e < b->seglen ? tmp[(size_t)o * K + (size_t)sg * b->seglen + e] : 0.0f;
        }
        at += conv_band_wsize(l, b);
    }
    L->phases = phases;
    L->woff = woff;
    L->wp = wp;
    L->bias = bias;
    L->act = act;
    L->fn = l->kind == CONV_BAND_PANEL ? band_f32_panel_ref : band_f32_tinyn_ref;
#if defined(__x86_64__) || defined(__i386__)
    if (conv_band_use_avx2())
        L->fn = l->kind == CONV_BAND_PANEL ? nne_conv_band_f32_panel__avx2
                                           : nne_conv_band_f32_tinyn__avx2;
#endif
}

typedef struct band_f32_ctx {
    const conv_band_f32_layer *L;
    const float *x;
    float *y;
    unsigned char *scratch; /* the per-thread areas */
} band_f32_ctx;

static void band_f32_task(void *vctx, int task, int thread) {
    const band_f32_ctx *x = vctx;
    const conv_band_layout *l = &x->L->l;
    conv_band_tile t;
    const conv_band_phase *b = conv_band_task(l, x->L->phases, task, &t);
    nne_conv_band_f32_tile(x->L, x->x, &t, x->scratch + (size_t)thread * l->per_thread,
                           x->y + conv_band_y_at(&l->plan, &b->c, t.b, t.qy0, t.qx0),
                           conv_band_y_row(&l->plan, &b->c));
}

void nne_conv_band_f32_run(nne_threadpool *pool, const conv_plan *p, const float *x, const float *w,
                           const float *bias, const nne_conv_act *act, float *y, void *scratch) {
    conv_band_f32_layer L;
    nne_conv_band_f32_prepare(&L, p, w, bias, act, scratch);
    int32_t n_tasks = 0;
    for (int32_t ph = 0; ph < L.l.n_phases; ph++) n_tasks += L.phases[ph].n_tasks;
    band_f32_ctx ctx = {&L, x, y, (unsigned char *)scratch + L.l.global};
    nne_threadpool_run(pool, n_tasks, band_f32_task, &ctx);
}
