/* int8 direct band convolutions (conv_band.h, docs/conv.md "Direct band kernels"), bit-exact
 * with nne_conv2d_s8__ref / nne_conv_transpose2d_s8__ref: the driver conv_fast_s8.c calls for
 * every groups-1 layer with K <= CONV_BAND_MAX_K_S8 (panel and tiny-N kernels), and the
 * portable kernels.
 *
 * Serially, once per layer (nne_conv_s8_prep_create, conv_fast_s8.c) or per call
 * (nne_conv2d_s8, the pool's workers pre-woken meanwhile): the weights of every phase are
 * packed as int16 for the kernel (conv_band.h) and the output stage is spread per channel
 * (addv = bias, Q31 mantissa, left and right shifts, and those of a fused PReLU's rq_neg,
 * zero past oc): nne_conv_band_s8_prepare.
 * Per task (one tile of R x C phase pixels of one image):
 * the band is converted to int16 x - x_zp (AVX2: nne_conv_band_s8_cvt__avx2), zero outside
 * the image (padding contributes (x_zp - x_zp) w = 0, as the reference skips it), then
 * kernel calls of conv_band_chunk pixels per tile row write the requantized outputs
 * straight to y. Integer sums are exact, so every kernel and thread
 * count gives the reference's bytes.
 *
 * Scratch: conv_band_layout. */
#include <assert.h>

#include "conv_band.h"
#include "conv_s8_kernels.h"
#include "ops_internal.h"

/* ---- portable kernels ---------------------------------------------------------------------- */

/* |acc| <= K * 255 * 128 <= INT32_MAX (K <= NNE_S8_MAX_K); w_at gives the packed index. */
static void band_s8_ref(const conv_band_run *r, const int16_t *w, const conv_band_s8_out *q,
                        int8_t *y, bool tinyn) {
    const int16_t *a = r->a;
    const int32_t lp2 = conv_band_up(r->seglen, 2), lp16 = conv_band_up(r->seglen, 16);
    const int32_t K2 = r->nseg * lp2;
    for (int32_t i = 0; i < r->m; i++)
        for (int32_t o = 0; o < r->oc; o++) {
            int32_t acc = 0;
            for (int32_t s = 0; s < r->nseg; s++)
                for (int32_t e = 0; e < r->seglen; e++) {
                    const int32_t k2 = s * lp2 + e; /* panel: pair k2 / 2, lane k2 % 2 */
                    const size_t wi =
                        tinyn ? ((size_t)o * r->nseg + s) * lp16 + e
                              : (((size_t)(o / 16) * K2 / 2 + k2 / 2) * 16 + o % 16) * 2 + k2 % 2;
                    acc += a[i * r->a_step + r->soff[s] + e] * w[wi];
                }
            y[i * r->y_step + o] = nne_qoutput_apply(q->out, o, acc + q->addv[o]);
        }
}

static void band_s8_panel_ref(const conv_band_run *r, const void *w, const conv_band_s8_out *q,
                              int8_t *y) {
    band_s8_ref(r, w, q, y, false);
}

static void band_s8_tinyn_ref(const conv_band_run *r, const void *w, const conv_band_s8_out *q,
                              int8_t *y) {
    band_s8_ref(r, w, q, y, true);
}

/* ---- run ----------------------------------------------------------------------------------- */

/* int16 x - x_zp copy of tile t's band (rows of bw * ic), zero outside the image, then
 * CONV_BAND_SLACK zeros. */
static void band_s8_fill(const nne_conv2d_geom *g, const int8_t *x, int32_t x_zp,
                         const conv_band_tile *t, bool avx2, int16_t *d) {
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
        const int8_t *s = x + (((size_t)t->b * g->ih + iy) * g->iw + t->ix0 + lo) * ic;
        const size_t n = (size_t)(hi - lo) * ic;
        int16_t *dd = d + lo * ic;
#if defined(__x86_64__) || defined(__i386__)
        if (avx2) {
            nne_conv_band_s8_cvt__avx2(s, x_zp, dd, n);
        } else
#endif
        {
            for (size_t e = 0; e < n; e++) dd[e] = (int16_t)(s[e] - x_zp);
        }
        memset(d + hi * ic, 0, (size_t)(t->bw - hi) * ic * sizeof *d);
    }
    memset(d, 0, CONV_BAND_SLACK * sizeof *d);
}

/* The w7 panel's u8 band: x + 128 (x ^ 0x80), padding x_zp + 128, then CONV_BAND_SLACK
 * bytes of it (the kernel reads up to 3 past a segment, times weight 0). */
static void band_s8_fill_u8(const nne_conv2d_geom *g, const int8_t *x, int32_t x_zp,
                            const conv_band_tile *t, uint8_t *d) {
    const size_t ic = (size_t)g->ic, row = (size_t)t->bw * ic;
    const int pad = x_zp + 128;
    int32_t lo, hi;
    conv_band_cols(g, t, &lo, &hi);
    for (int32_t r = 0; r < t->bh; r++, d += row) {
        const int32_t iy = t->iy0 + r;
        if (iy < 0 || iy >= g->ih || hi == lo) {
            memset(d, pad, row);
            continue;
        }
        memset(d, pad, (size_t)lo * ic);
        const int8_t *s = x + (((size_t)t->b * g->ih + iy) * g->iw + t->ix0 + lo) * ic;
        const size_t n = (size_t)(hi - lo) * ic;
        uint8_t *dd = d + lo * ic;
        for (size_t e = 0; e < n; e++) dd[e] = (uint8_t)((uint8_t)s[e] ^ 0x80);
        memset(d + hi * ic, pad, (size_t)(t->bw - hi) * ic);
    }
    memset(d, pad, CONV_BAND_SLACK);
}

void nne_conv_band_s8_tile(const conv_band_s8_layer *L, const int8_t *x, const conv_band_tile *t,
                           unsigned char *ts, int8_t *y, int64_t y_row) {
    const conv_band_layout *l = &L->l;
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    const conv_band_phase *b = &L->phases[t->ph];
    unsigned char *band = ts + l->band_off;
    int64_t *soff = (int64_t *)(void *)(ts + l->soff_off);
    const size_t elem = L->w7 ? 1 : sizeof(int16_t); /* band element bytes */
    int64_t bstride = 0;                             /* no tap reaches this phase: y = out(bias) */
    if (b->nseg) {
        if (L->w7)
            band_s8_fill_u8(g, x, L->x_zp, t, band);
        else
            band_s8_fill(g, x, L->x_zp, t, L->avx2, (int16_t *)(void *)band);
        bstride = (int64_t)t->bw * g->ic;
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
    const int16_t *w = L->wp + L->woff[t->ph];
    conv_band_s8_out q = L->q;
    if (L->w7) q.addv = L->addv_ph + (size_t)t->ph * conv_band_up(g->oc, 16);
    /* panel: calls of `chunk` pixels, whose band part stays in L1 across the channel panels */
    const int32_t chunk = l->kind == CONV_BAND_PANEL ? conv_band_chunk(b, g->ic, elem) : t->cols;
    for (int32_t r = 0; r < t->rows; r++) {
        const unsigned char *a = band + (size_t)r * b->c.y.istep * bstride * elem;
        int8_t *yr = y + r * y_row;
        for (int32_t c0 = 0; c0 < t->cols; c0 += chunk) {
            run.m = t->cols - c0 < chunk ? t->cols - c0 : chunk;
            run.a = a + (size_t)c0 * run.a_step * elem;
            L->fn(&run, w, &q, yr + (size_t)c0 * run.y_step);
        }
    }
}

typedef struct band_s8_ctx {
    const conv_band_s8_layer *L;
    const int8_t *x;
    int8_t *y;
    unsigned char *scratch; /* the per-thread areas */
} band_s8_ctx;

static void band_s8_task(void *vctx, int task, int thread) {
    const band_s8_ctx *x = vctx;
    const conv_band_layout *l = &x->L->l;
    conv_band_tile t;
    const conv_band_phase *b = conv_band_task(l, x->L->phases, task, &t);
    nne_conv_band_s8_tile(x->L, x->x, &t, x->scratch + (size_t)thread * l->per_thread,
                          x->y + conv_band_y_at(&l->plan, &b->c, t.b, t.qy0, t.qx0),
                          conv_band_y_row(&l->plan, &b->c));
}

void nne_conv_band_s8_prepare(conv_band_s8_layer *L, const conv_plan *p, int32_t x_zp,
                              const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                              void *global) {
    unsigned char *s = global;
    conv_band_layout l;
    conv_band_phase *phases = (conv_band_phase *)(void *)s;
    conv_band_layout_make(&l, p, true, phases);
    assert(l.kind != CONV_BAND_NONE);
    size_t *woff = (size_t *)(void *)(s + l.woff_off);
    int16_t *wp = (int16_t *)(void *)(s + l.w_off);
    int8_t *tmp = (int8_t *)(s + l.tmp_off);
    const int32_t oc = p->g.oc, ocp = conv_band_up(oc, 16);
    const bool avx2 = conv_band_use_avx2();
    /* the w7 panel when every weight is within +-CONV_BAND_W7 (exact, conv_band.h) */
    const bool w7 = avx2 && l.kind == CONV_BAND_PANEL &&
                    conv_band_s8_w7(w, (size_t)oc * p->g.kh * p->g.kw * p->g.ic);
    /* addv, mult, lsh, rsh, nmult, nlsh, nrsh [ocp] each */
    int32_t *q = (int32_t *)(void *)(s + l.q_off);
    int32_t *addv_ph = q + 7 * ocp; /* then one addv per phase (w7) */
    size_t at = 0;
    for (int32_t ph = 0; ph < l.n_phases; ph++) {
        const conv_band_phase *b = &phases[ph];
        const int32_t K = conv_band_phase_weights(p, &b->c, w, 1, tmp);
        int16_t *d = wp + at;
        woff[ph] = at;
        if (w7) { /* quads [oc/16][K4/4][16][4], zero pads; fits: round_up(seglen, 4) bytes
                   * <= 2 round_up(seglen, 2) */
            const int32_t lp4 = conv_band_up(b->seglen, 4), K4 = b->nseg * lp4;
            int8_t *d8 = (int8_t *)d;
            for (int32_t o = 0; o < ocp; o++) {
                int32_t sum = 0; /* |sum| <= K * 64 */
                for (int32_t k4 = 0; k4 < K4; k4++) {
                    const int32_t sg = k4 / lp4, e = k4 % lp4;
                    const int8_t v = o < oc && e < b->seglen
                                         ? tmp[(size_t)o * K + (size_t)sg * b->seglen + e]
                                         : 0;
                    d8[(((size_t)(o / 16) * K4 / 4 + k4 / 4) * 16 + o % 16) * 4 + k4 % 4] = v;
                    sum += v;
                }
                /* bias - (x_zp + 128) sum w, in int64 (|(x_zp + 128) sum| <= 255 * K * 64),
                 * kept mod 2^32: the kernel's sum (x + 128) w (|.| <= K * 255 * 64) plus it
                 * is the reference's accumulator, within int32, and the vector adds wrap */
                const int64_t v =
                    (int64_t)(o < oc && bias ? bias[o] : 0) - (int64_t)(x_zp + 128) * sum;
                addv_ph[(size_t)ph * ocp + o] = (int32_t)(uint32_t)(uint64_t)v;
            }
        } else if (l.kind == CONV_BAND_PANEL) { /* pairs [oc/16][K2/2][16][2], zero pads */
            const int32_t lp2 = conv_band_up(b->seglen, 2), K2 = b->nseg * lp2;
            for (int32_t o = 0; o < ocp; o++)
                for (int32_t k2 = 0; k2 < K2; k2++) {
                    const int32_t sg = k2 / lp2, e = k2 % lp2;
                    d[(((size_t)(o / 16) * K2 / 2 + k2 / 2) * 16 + o % 16) * 2 + k2 % 2] =
                        (int16_t)(o < oc && e < b->seglen
                                      ? tmp[(size_t)o * K + (size_t)sg * b->seglen + e]
                                      : 0);
                }
        } else { /* [oc][nseg][lp16] */
            const int32_t lp = conv_band_up(b->seglen, 16);
            for (int32_t o = 0; o < oc; o++)
                for (int32_t sg = 0; sg < b->nseg; sg++)
                    for (int32_t e = 0; e < lp; e++)
                        d[((size_t)o * b->nseg + sg) * lp + e] =
                            (int16_t)(e < b->seglen
                                          ? tmp[(size_t)o * K + (size_t)sg * b->seglen + e]
                                          : 0);
        }
        at += conv_band_wsize(&l, b);
    }
    memset(q, 0, (size_t)7 * ocp * sizeof *q);
    for (int32_t o = 0; o < oc; o++) q[o] = bias ? bias[o] : 0;
    nne_s8_spread_rq(out->rq, out->count, oc, q + ocp, q + 2 * ocp, q + 3 * ocp);
    const bool neg = out->rq_neg != NULL; /* a fused PReLU */
    if (neg)
        nne_s8_spread_rq(out->rq_neg, out->neg_count, oc, q + 4 * ocp, q + 5 * ocp, q + 6 * ocp);
    conv_band_s8_fn fn = l.kind == CONV_BAND_PANEL ? band_s8_panel_ref : band_s8_tinyn_ref;
#if defined(__x86_64__) || defined(__i386__)
    if (avx2)
        fn = w7                          ? nne_conv_band_s8_panel_w7__avx2
             : l.kind == CONV_BAND_PANEL ? nne_conv_band_s8_panel__avx2
                                         : nne_conv_band_s8_tinyn__avx2;
#else
    (void)avx2;
#endif
    *L = (conv_band_s8_layer){l,
                              phases,
                              woff,
                              wp,
                              fn,
                              avx2,
                              w7,
                              addv_ph,
                              x_zp,
                              {out, q, q + ocp, q + 2 * ocp, q + 3 * ocp, neg ? q + 4 * ocp : NULL,
                               neg ? q + 5 * ocp : NULL, neg ? q + 6 * ocp : NULL}};
}

void nne_conv_band_s8_exec(nne_threadpool *pool, const conv_band_s8_layer *L, const int8_t *x,
                           int8_t *y, void *threads_area) {
    int32_t n_tasks = 0;
    for (int32_t ph = 0; ph < L->l.n_phases; ph++) n_tasks += L->phases[ph].n_tasks;
    band_s8_ctx ctx = {L, x, y, threads_area};
    nne_threadpool_run(pool, n_tasks, band_s8_task, &ctx);
}

void nne_conv_band_s8_run(nne_threadpool *pool, const conv_plan *p, const int8_t *x, int32_t x_zp,
                          const int8_t *w, const int32_t *bias, const nne_qoutput *out, int8_t *y,
                          void *scratch) {
    /* the workers wake while the weights are packed (nne_threadpool_prewake) */
    nne_threadpool_prewake(pool);
    conv_band_s8_layer L;
    nne_conv_band_s8_prepare(&L, p, x_zp, w, bias, out, scratch);
    nne_conv_band_s8_exec(pool, &L, x, y, (unsigned char *)scratch + L.l.global);
}
