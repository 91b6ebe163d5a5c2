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

typedef struct band_f32_ctx {
    const conv_band_layout *l;
    const conv_band_phase *phases;
    const size_t *woff;
    conv_band_f32_fn fn;
    const float *x, *bias;
    const nne_conv_act *act;
    float *y;
    unsigned char *scratch;
} band_f32_ctx;

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

static void band_f32_task(void *vctx, int task, int thread) {
    const band_f32_ctx *x = vctx;
    const conv_band_layout *l = x->l;
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    conv_band_tile t;
    const conv_band_phase *b = conv_band_task(l, x->phases, task, &t);
    unsigned char *ts = x->scratch + l->global + (size_t)thread * l->per_thread;
    float *buf = (float *)(void *)(ts + l->band_off);
    int64_t *soff = (int64_t *)(void *)(ts + l->soff_off);
    const float *band = buf;
    int64_t bstride = (int64_t)t.bw * g->ic;
    if (b->nseg == 0) { /* no tap reaches this phase: y = act(bias) */
        bstride = 0;
    } else if (t.inside) { /* read x in place */
        band = x->x + (((size_t)t.b * g->ih + t.iy0) * g->iw + t.ix0) * g->ic;
        bstride = (int64_t)g->iw * g->ic;
    } else {
        band_f32_fill(g, x->x, &t, buf);
    }
    conv_band_soff(p, b, bstride, soff);
    conv_band_run run = {t.cols, b->nseg, b->seglen, g->oc, NULL, (int64_t)b->c.x.istep * g->ic,
                         (int64_t)b->c.x.ostep * g->oc, soff};
    const float *w = (const float *)(const void *)(x->scratch + l->w_off) + x->woff[t.ph];
    /* panel: calls of `chunk` pixels, whose band part stays in L1 across the channel panels */
    const int32_t chunk =
        l->kind == CONV_BAND_PANEL ? conv_band_chunk(b, g->ic, sizeof(float)) : t.cols;
    for (int32_t r = 0; r < t.rows; r++) {
        const float *a = band + (size_t)r * b->c.y.istep * bstride;
        float *yr = x->y + conv_band_y_at(p, &b->c, t.b, t.qy0 + r, t.qx0);
        for (int32_t c0 = 0; c0 < t.cols; c0 += chunk) {
            run.m = t.cols - c0 < chunk ? t.cols - c0 : chunk;
            run.a = a + c0 * run.a_step;
            x->fn(&run, w, x->bias, x->act, yr + (size_t)c0 * run.y_step);
        }
    }
}

void nne_conv_band_f32_run(nne_threadpool *pool, const conv_plan *p, const float *x,
                           const float *w, const float *bias, const nne_conv_act *act, float *y,
                           void *scratch) {
    unsigned char *s = scratch;
    conv_band_layout l;
    conv_band_phase *phases = (conv_band_phase *)(void *)s;
    conv_band_layout_make(&l, p, false, phases);
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
        if (l.kind == CONV_BAND_PANEL) { /* [oc/16][K][16] */
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
        at += conv_band_wsize(&l, b);
    }
    const bool avx2 = conv_band_use_avx2();
    conv_band_f32_fn fn = l.kind == CONV_BAND_PANEL ? band_f32_panel_ref : band_f32_tinyn_ref;
#if defined(__x86_64__) || defined(__i386__)
    if (avx2)
        fn = l.kind == CONV_BAND_PANEL ? nne_conv_band_f32_panel__avx2
                                       : nne_conv_band_f32_tinyn__avx2;
#else
    (void)avx2;
#endif
    int32_t n_tasks = 0;
    for (int32_t ph = 0; ph < l.n_phases; ph++) n_tasks += phases[ph].n_tasks;
    band_f32_ctx ctx = {&l, phases, woff, fn, x, bias, act, y, s};
    nne_threadpool_run(pool, n_tasks, band_f32_task, &ctx);
}
