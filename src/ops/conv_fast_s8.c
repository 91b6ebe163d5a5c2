/* Fast int8 convolution and transposed convolution (include/nnedge/conv.h, docs/conv.md),
 * bit-exact with nne_conv2d_s8__ref / nne_conv_transpose2d_s8__ref. Groups-1 layers with
 * K <= CONV_BAND_MAX_K_S8 go to the direct band kernels instead (conv_band.h, docs/perf.md);
 * this implicit GEMM runs grouped / depthwise and deeper layers.
 *
 * The same tiles and phases as the f32 kernels (conv_plan.h). Per call, serially: the
 * weights of every (phase, group) are packed into micro-kernel panels (conv_s8_kernels.h)
 * and, for the u8 x s8 kernels, the compensation comp[o] = (x_zp + 128) * sum_k w[o][k] is
 * computed. Per task (one tile), per group:
 *   A [P][kp]   gather: int16 (x - x_zp), or uint8 (x + 128) with padding x_zp + 128
 *   C [P][ocg]  int32 = A . B (micro-kernel, exact)
 *   y           = nne_qoutput_apply(out, o, C + bias[o] - comp[o])
 * acc is then the reference's exact sum: sum (x - x_zp) w = sum (x + 128) w - comp, and the
 * reference skips padding taps, which contribute (x_zp - x_zp) w = 0 here.
 *
 * The output stage runs on 8 channels at a time where the ISA has a vector version
 * (nne_s8_output__avx2), on addv = bias - comp and the per-channel multipliers and shifts
 * spread out once per call (and those of out->rq_neg, a fused PReLU).
 *
 * Scratch: [phase offsets][packed B, int16 size][addv int32 [phases][oc]][mult, lsh, rsh,
 * then the same of rq_neg: int32 [6][oc]][transposed: phase
 * weights, oc*kh*kw*icg bytes] then per thread
 * [A tile_px x kp_max int16][C tile_px x ocg int32][gather state]. The layout does not depend
 * on the micro-kernel (B is sized for int16, the larger), so it is valid for every ISA. */
#include <assert.h>

#include "conv_band.h"
#include "conv_s8_kernels.h"
#include "nnedge/conv.h"
#include "nnedge/gemm.h"
#include "ops_internal.h"

/* Target gathered tile: 64 Ki int16 elements (128 KiB), as the f32 kernel's bytes. */
#define CONV_S8_TILE_ELEMS (64 * 1024)
#define CONV_S8_TILE_ALIGN 24

/* ---- portable micro-kernel (kgroup 2) ----------------------------------------------------- */

static void s8_ukernel_ref(int32_t m, int32_t n, int32_t kp, const void *va, int32_t lda,
                           const void *vb, int32_t *c, int32_t ldc) {
    const int16_t *a = va, *b = vb;
    for (int32_t i = 0; i < m; i++) {
        const int16_t *ai = a + (size_t)i * lda;
        for (int32_t j = 0; j < n; j++) {
            const int16_t *bj = b + (size_t)(j / NNE_S8_NR) * kp * NNE_S8_NR + (j % NNE_S8_NR) * 2;
            int32_t acc = 0; /* |acc| <= K * 255 * 128 <= INT32_MAX (conv_s8_kernels.h) */
            for (int32_t k = 0; k < kp; k += 2, bj += 2 * NNE_S8_NR)
                acc += ai[k] * bj[0] + ai[k + 1] * bj[1];
            c[(size_t)i * ldc + j] = acc;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#define NNE_HAVE_X86 1
#else
#define NNE_HAVE_X86 0
#endif

static const nne_s8_ukernel ukernels[] = {
    {"ref", 0, 2, s8_ukernel_ref, NULL},
#if NNE_HAVE_X86
    {"avx2", NNE_CPU_AVX2, 2, nne_s8_ukernel__avx2, nne_s8_output__avx2},
    {"avx512vnni", NNE_CPU_AVX2 | NNE_CPU_AVX512F | NNE_CPU_AVX512BW | NNE_CPU_AVX512VNNI, 4,
     nne_s8_ukernel__avx512vnni, nne_s8_output__avx2},
#endif
};

/* The micro-kernel for the ISA in use (nne_ops_isa): the best one at or below it. */
static const nne_s8_ukernel *s8_ukernel_pick(void) {
    const char *isa = nne_ops_isa();
    int want = 0;
    if (strcmp(isa, "avx2") == 0) want = 1;
    if (strcmp(isa, "avx512") == 0) want = 2;
    const int n = (int)(sizeof ukernels / sizeof ukernels[0]);
    if (want >= n) want = n - 1;
    for (int i = want; i > 0; i--)
        if ((nne_cpu_features() & ukernels[i].cpu_needs) == ukernels[i].cpu_needs)
            return &ukernels[i];
    return &ukernels[0];
}

const char *nne_conv_s8_isa(void) { return s8_ukernel_pick()->isa; }

/* ---- plan and scratch --------------------------------------------------------------------- */

typedef struct conv_s8_layout {
    conv_plan plan;
    int32_t n_phases, ocp; /* ocp: ocg rounded up to NNE_S8_NR */
    size_t boff_off;       /* size_t [n_phases]: first packed element of each phase */
    size_t b_off, comp_off, q_off, wph_off, global;
    size_t a_off, c_off, taps_off, per_thread;
} conv_s8_layout;

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }
static int32_t kpad(int32_t k) { return (k + 3) & ~3; }

static void conv_s8_layout_make(conv_s8_layout *l, const nne_conv2d_geom *g, bool transposed) {
    memset(l, 0, sizeof *l);
    conv_plan *p = &l->plan;
    conv_plan_make(p, g, transposed, CONV_S8_TILE_ELEMS, CONV_S8_TILE_ALIGN);
    l->n_phases = p->ph_y * p->ph_x;
    l->ocp = (p->ocg + NNE_S8_NR - 1) / NNE_S8_NR * NNE_S8_NR;
    size_t b_elems = 0;
    for (int32_t ph = 0; ph < l->n_phases; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        b_elems += (size_t)g->groups * l->ocp * (size_t)kpad(c.k);
    }
    l->boff_off = 0;
    l->b_off = al64((size_t)l->n_phases * sizeof(size_t));
    l->comp_off = l->b_off + al64(b_elems * sizeof(int16_t));
    l->q_off = l->comp_off + al64((size_t)l->n_phases * g->oc * sizeof(int32_t));
    l->wph_off = l->q_off + al64((size_t)6 * g->oc * sizeof(int32_t));
    l->global = l->wph_off + (transposed ? al64((size_t)g->oc * g->kh * g->kw * p->icg) : 0);
    const size_t lda = (size_t)kpad(p->k_max);
    l->a_off = 0;
    l->c_off = al64((size_t)p->tile_px * lda * sizeof(int16_t));
    l->taps_off = l->c_off + al64((size_t)p->tile_px * p->ocg * sizeof(int32_t));
    l->per_thread = l->taps_off + al64((size_t)(g->kh + g->kw) * sizeof(int64_t));
}

static size_t conv_s8_scratch(const nne_conv2d_geom *g, bool transposed, int threads) {
    conv_s8_layout l;
    conv_s8_layout_make(&l, g, transposed);
    if (conv_band_select(&l.plan, true) != CONV_BAND_NONE)
        return conv_band_scratch(&l.plan, true, threads);
    return l.global + l.per_thread * (size_t)(threads < 1 ? 1 : threads);
}

size_t nne_conv2d_s8_scratch_size(const nne_conv2d_geom *g, int threads) {
    return conv_s8_scratch(g, false, threads);
}

size_t nne_conv_transpose2d_s8_scratch_size(const nne_conv2d_geom *g, int threads) {
    return conv_s8_scratch(g, true, threads);
}

/* ---- weight packing ----------------------------------------------------------------------- */

/* Pack the rows w[ocg][k] of one (phase, group) into panels [ocp/16][kp/kg][16][kg]; comp[o]
 * (kgroup 4) = (x_zp + 128) * sum_k w[o][k]; |comp| <= 255 * 128 * K <= INT32_MAX. */
static void s8_pack_b(const int8_t *w, int32_t ocg, int32_t k, int kg, int32_t x_zp, void *dst,
                      int32_t *comp) {
    const int32_t kp = kpad(k);
    const int32_t ocp = (ocg + NNE_S8_NR - 1) / NNE_S8_NR * NNE_S8_NR;
    for (int32_t o = 0; o < ocp; o++) {
        const int32_t panel = o / NNE_S8_NR, j = o % NNE_S8_NR;
        int32_t sum = 0;
        for (int32_t kk = 0; kk < kp; kk++) {
            const int32_t v = o < ocg && kk < k ? w[(size_t)o * k + kk] : 0;
            sum += v;
            const size_t at =
                (((size_t)panel * (kp / kg) + kk / kg) * NNE_S8_NR + j) * kg + kk % kg;
            if (kg == 2)
                ((int16_t *)dst)[at] = (int16_t)v;
            else
                ((int8_t *)dst)[at] = (int8_t)v;
        }
        if (o < ocg) comp[o] = kg == 4 ? (x_zp + 128) * sum : 0;
    }
}

/* ---- tasks -------------------------------------------------------------------------------- */

typedef struct conv_s8_ctx {
    const conv_s8_layout *l;
    const nne_s8_ukernel *uk;
    const int8_t *x;
    int32_t x_zp;
    const int32_t *bias;
    const nne_qoutput *out;
    int8_t *y;
    const unsigned char *global; /* the packed weights and output stage (l->global bytes) */
    unsigned char *threads_area; /* per-thread areas, l->per_thread bytes each */
} conv_s8_ctx;

/* Gather one tile of one group into A [m][lda] (kgroup 2: int16, 4: uint8), zero past k. */
static void s8_gather(const conv_plan *p, const conv_phase *c, int64_t pix0, int32_t m,
                      const int8_t *xg, int32_t x_zp, int kg, void *a, int32_t lda, int64_t *rows,
                      int64_t *cols) {
    const int32_t icg = p->icg, ntx = c->x.taps;
    conv_gather_it it;
    conv_gather_begin(&it, p, c, pix0, rows, cols);
    for (int32_t i = 0; i < m; i++, conv_gather_next(&it)) {
        conv_gather_pixel(&it);
        if (kg == 2) {
            int16_t *d = (int16_t *)a + (size_t)i * lda;
            for (int32_t ty = 0; ty < c->y.taps; ty++) {
                if (it.contig && rows[ty] >= 0) { /* one run of ntx pixels */
                    const int8_t *s = xg + rows[ty] + cols[0];
                    for (int32_t e = 0; e < ntx * icg; e++) d[e] = (int16_t)(s[e] - x_zp);
                    d += (size_t)ntx * icg;
                    continue;
                }
                for (int32_t tx = 0; tx < ntx; tx++, d += icg) {
                    if (rows[ty] < 0 || cols[tx] < 0) {
                        memset(d, 0, (size_t)icg * sizeof *d);
                        continue;
                    }
                    const int8_t *s = xg + rows[ty] + cols[tx];
                    for (int32_t e = 0; e < icg; e++) d[e] = (int16_t)(s[e] - x_zp);
                }
            }
            for (int32_t e = c->k; e < kpad(c->k); e++) *d++ = 0;
        } else {
            uint8_t *d = (uint8_t *)a + (size_t)i * lda;
            const uint8_t pad = (uint8_t)(x_zp + 128);
            for (int32_t ty = 0; ty < c->y.taps; ty++)
                for (int32_t tx = 0; tx < ntx; tx++, d += icg) {
                    if (rows[ty] < 0 || cols[tx] < 0) {
                        memset(d, pad, (size_t)icg);
                        continue;
                    }
                    const int8_t *s = xg + rows[ty] + cols[tx];
                    for (int32_t e = 0; e < icg; e++) d[e] = (uint8_t)(s[e] ^ 0x80);
                }
            for (int32_t e = c->k; e < kpad(c->k); e++) *d++ = 0;
        }
    }
}

static void conv_s8_task(void *vctx, int task, int thread) {
    const conv_s8_ctx *x = vctx;
    const conv_s8_layout *l = x->l;
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    conv_phase c;
    int32_t tile;
    conv_plan_task(p, task, &c, &tile);
    const int32_t ph = c.y.r * p->ph_x + c.x.r;
    const int64_t pix0 = (int64_t)tile * p->tile_px;
    const int32_t m = (int32_t)(c.pixels - pix0 < p->tile_px ? c.pixels - pix0 : p->tile_px);
    unsigned char *ts = x->threads_area + (size_t)thread * l->per_thread;
    void *a = ts + l->a_off;
    int32_t *ct = (int32_t *)(void *)(ts + l->c_off);
    int64_t *rows = (int64_t *)(void *)(ts + l->taps_off), *cols = rows + g->kh;
    const size_t *boff = (const size_t *)(const void *)(x->global + l->boff_off);
    const int32_t *comp =
        (const int32_t *)(const void *)(x->global + l->comp_off) + (size_t)ph * g->oc;
    const int kg = x->uk->kgroup, kp = kpad(c.k), lda = kpad(p->k_max);
    const size_t elem = kg == 2 ? sizeof(int16_t) : 1;
    for (int32_t grp = 0; grp < g->groups; grp++) {
        const void *b =
            x->global + l->b_off + (boff[ph] + (size_t)grp * l->ocp * (size_t)kp) * elem;
        s8_gather(p, &c, pix0, m, x->x + (size_t)grp * p->icg, x->x_zp, kg, a, lda, rows, cols);
        x->uk->fn(m, p->ocg, kp, a, lda, b, ct, p->ocg);
        const int32_t o0 = grp * p->ocg;
        const int32_t *addv = comp + o0;
        const int32_t *q = (const int32_t *)(const void *)(x->global + l->q_off);
        const int32_t *nq = q + 3 * g->oc; /* the fused PReLU's negative side */
        const nne_qoutput *out = x->out;
        const bool neg = out->rq_neg != NULL;
        for (int32_t i = 0; i < m; i++) {
            int8_t *yp = x->y + conv_out_pixel(p, &c, pix0 + i) * (size_t)g->oc + o0;
            const int32_t *ci = ct + (size_t)i * p->ocg;
            int32_t j = 0;
            if (x->uk->output)
                j = x->uk->output(p->ocg, ci, addv, q + o0, q + g->oc + o0, q + 2 * g->oc + o0,
                                  neg ? nq + o0 : NULL, neg ? nq + g->oc + o0 : NULL,
                                  neg ? nq + 2 * g->oc + o0 : NULL, out->mode == NNE_RQ_POW2,
                                  out->zero_point, out->act_min, out->act_max, yp);
            /* The reference's exact accumulator (see the top); within the bound. */
            for (; j < p->ocg; j++) yp[j] = nne_qoutput_apply(out, o0 + j, ci[j] + addv[j]);
        }
    }
}

/* Pack the weights of every (phase, group) for micro-kernel uk into global (l->global bytes),
 * with addv = bias - comp per phase and the output stage's per-channel parts. */
static void conv_s8_pack(const conv_s8_layout *l, const nne_s8_ukernel *uk, int32_t x_zp,
                         const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                         unsigned char *s) {
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    size_t *boff = (size_t *)(void *)(s + l->boff_off);
    int32_t *comp = (int32_t *)(void *)(s + l->comp_off);
    const size_t elem = uk->kgroup == 2 ? sizeof(int16_t) : 1;
    /* Transposed: the phase weights [phase][oc][taps][icg] first, packed from there. */
    const int8_t *wsrc = w;
    if (p->transposed) {
        wsrc = (const int8_t *)(s + l->wph_off);
        conv_plan_phase_weights(p, w, 1, s + l->wph_off);
    }
    size_t at = 0, w_at = 0;
    for (int32_t ph = 0; ph < l->n_phases; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        boff[ph] = at;
        for (int32_t grp = 0; grp < g->groups; grp++) {
            s8_pack_b(wsrc + w_at + (size_t)grp * p->ocg * c.k, p->ocg, c.k, uk->kgroup, x_zp,
                      s + l->b_off + at * elem, comp + (size_t)ph * g->oc + (size_t)grp * p->ocg);
            at += (size_t)l->ocp * (size_t)kpad(c.k);
        }
        w_at += (size_t)g->oc * c.k;
        /* addv = bias - comp: |.| <= INT32_MAX as nne_s8_acc_bound(K, |bias|) is */
        for (int32_t o = 0; o < g->oc; o++)
            comp[(size_t)ph * g->oc + o] = (bias ? bias[o] : 0) - comp[(size_t)ph * g->oc + o];
    }
    int32_t *q = (int32_t *)(void *)(s + l->q_off); /* mult, lsh, rsh [oc] each, rq then rq_neg */
    nne_s8_spread_rq(out->rq, out->count, g->oc, q, q + g->oc, q + 2 * g->oc);
    if (out->rq_neg)
        nne_s8_spread_rq(out->rq_neg, out->neg_count, g->oc, q + 3 * g->oc, q + 4 * g->oc,
                         q + 5 * g->oc);
}

static void conv_s8_args_check(const nne_conv2d_geom *g, bool transposed, int32_t x_zp,
                               const int8_t *w, const nne_qoutput *out) {
    assert(g && w && out);
    assert(nne_conv2d_geom_ok(g, transposed));
    assert(out->count == 1 || out->count == g->oc);
    assert(!out->rq_neg || out->neg_count == 1 || out->neg_count == g->oc);
    assert(x_zp >= -128 && x_zp <= 127);
    assert((int64_t)g->kh * g->kw * (g->ic / g->groups) <= NNE_S8_MAX_K);
    (void)g, (void)transposed, (void)x_zp, (void)w, (void)out;
}

static void conv_s8_run(nne_threadpool *pool, const nne_conv2d_geom *g, bool transposed,
                        const int8_t *x, int32_t x_zp, const int8_t *w, const int32_t *bias,
                        const nne_qoutput *out, int8_t *y, void *scratch) {
    assert(x && y && scratch && ((uintptr_t)scratch & 63) == 0);
    conv_s8_args_check(g, transposed, x_zp, w, out);
    conv_s8_layout l;
    conv_s8_layout_make(&l, g, transposed);
    const conv_plan *p = &l.plan;
    if (conv_band_select(p, true) != CONV_BAND_NONE) { /* groups 1: conv_band.h */
        nne_conv_band_s8_run(pool, p, x, x_zp, w, bias, out, y, scratch);
        return;
    }
    /* the workers wake while the weights are packed (nne_threadpool_prewake) */
    nne_threadpool_prewake(pool);
    const nne_s8_ukernel *uk = s8_ukernel_pick();
    unsigned char *s = scratch;
    conv_s8_pack(&l, uk, x_zp, w, bias, out, s);
    conv_s8_ctx ctx = {&l, uk, x, x_zp, bias, out, y, s, s + l.global};
    nne_threadpool_run(pool, p->n_tasks, conv_s8_task, &ctx);
}

void nne_conv2d_s8(nne_threadpool *pool, const nne_conv2d_geom *g, const int8_t *x,
                   int32_t x_zero_point, const int8_t *w, const int32_t *bias,
                   const nne_qoutput *out, int8_t *y, void *scratch) {
    conv_s8_run(pool, g, false, x, x_zero_point, w, bias, out, y, scratch);
}

void nne_conv_transpose2d_s8(nne_threadpool *pool, const nne_conv2d_geom *g, const int8_t *x,
                             int32_t x_zero_point, const int8_t *w, const int32_t *bias,
                             const nne_qoutput *out, int8_t *y, void *scratch) {
    conv_s8_run(pool, g, true, x, x_zero_point, w, bias, out, y, scratch);
}

/* ---- prepared layers ---------------------------------------------------------------------- */

struct nne_conv_s8_prep {
    conv_s8_layout l; /* the plan (both paths) and the implicit GEMM's layout */
    conv_band_kind kind;
    int32_t x_zp;
    /* copies of the arguments: the output stage the kernels read, and what the per-call path
     * needs when the ISA in use no longer picks the prepared kernel */
    nne_qoutput out;
    nne_requant *rq; /* [out.count] then [out.neg_count] (rq_neg, a fused PReLU) */
    int8_t *w;
    int32_t *bias;
    /* the packed weights for the kernel picked at create */
    unsigned char *global;
    conv_band_s8_layer band;  /* band kinds */
    bool band_avx2;           /* band: conv_band_use_avx2() at create */
    const nne_s8_ukernel *uk; /* implicit GEMM: the micro-kernel packed for */
};

void nne_conv_s8_prep_free(nne_conv_s8_prep *prep) {
    if (!prep) return;
    nne_aligned_free(prep->global);
    nne_free(prep->rq);
    nne_free(prep->w);
    nne_free(prep->bias);
    nne_free(prep);
}

nne_status nne_conv_s8_prep_create(const nne_conv2d_geom *g, bool transposed, int32_t x_zero_point,
                                   const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                                   nne_conv_s8_prep **prep_out) {
    if (!prep_out) return nne_error(NNE_ERR_INVALID_ARG, "conv_s8_prep: prep is NULL");
    *prep_out = NULL;
    if (!g || !w || !out || !nne_conv2d_geom_ok(g, transposed) ||
        (out->count != 1 && out->count != g->oc) ||
        (out->rq_neg && out->neg_count != 1 && out->neg_count != g->oc) || x_zero_point < -128 ||
        x_zero_point > 127 || (int64_t)g->kh * g->kw * (g->ic / g->groups) > NNE_S8_MAX_K)
        return nne_error(NNE_ERR_INVALID_ARG, "conv_s8_prep: invalid arguments");
    nne_conv_s8_prep *r = nne_calloc(1, sizeof *r);
    if (!r) return NNE_ERR_NOMEM;
    conv_s8_layout_make(&r->l, g, transposed);
    const conv_plan *p = &r->l.plan;
    r->kind = conv_band_select(p, true);
    r->x_zp = x_zero_point;
    const size_t nw = (size_t)g->oc * g->kh * g->kw * p->icg;
    conv_band_layout bl;
    if (r->kind != CONV_BAND_NONE) conv_band_layout_make(&bl, p, true, NULL);
    const size_t global = r->kind != CONV_BAND_NONE ? bl.global : r->l.global;
    const int32_t n_neg = out->rq_neg ? out->neg_count : 0;
    r->rq = nne_calloc((size_t)(out->count + n_neg), sizeof *r->rq);
    r->w = nne_calloc(nw, 1);
    r->bias = bias ? nne_calloc((size_t)g->oc, sizeof *r->bias) : NULL;
    r->global = nne_aligned_alloc(global > 0 ? global : 64);
    if (!r->rq || !r->w || (bias && !r->bias) || !r->global) {
        nne_conv_s8_prep_free(r);
        return NNE_ERR_NOMEM;
    }
    memcpy(r->rq, out->rq, (size_t)out->count * sizeof *r->rq);
    if (n_neg) memcpy(r->rq + out->count, out->rq_neg, (size_t)n_neg * sizeof *r->rq);
    r->out = *out;
    r->out.rq = r->rq;
    r->out.rq_neg = n_neg ? r->rq + out->count : NULL;
    memcpy(r->w, w, nw);
    if (bias) memcpy(r->bias, bias, (size_t)g->oc * sizeof *r->bias);
    if (r->kind != CONV_BAND_NONE) {
        r->band_avx2 = conv_band_use_avx2();
        nne_conv_band_s8_prepare(&r->band, p, r->x_zp, r->w, r->bias, &r->out, r->global);
    } else {
        r->uk = s8_ukernel_pick();
        conv_s8_pack(&r->l, r->uk, r->x_zp, r->w, r->bias, &r->out, r->global);
    }
    *prep_out = r;
    return NNE_OK;
}

/* Whether the ISA in use (and the band switch of the tests) still picks the prepared kernel. */
static bool conv_s8_prep_current(const nne_conv_s8_prep *r) {
    if (conv_band_select(&r->l.plan, true) != r->kind) return false;
    return r->kind != CONV_BAND_NONE ? conv_band_use_avx2() == r->band_avx2
                                     : s8_ukernel_pick() == r->uk;
}

const conv_band_s8_layer *nne_conv_s8_prep_band(const nne_conv_s8_prep *prep) {
    return prep->kind != CONV_BAND_NONE && conv_s8_prep_current(prep) ? &prep->band : NULL;
}

void nne_conv_s8_prep_layer(const nne_conv_s8_prep *prep, nne_conv_s8_layer *l) {
    *l = (nne_conv_s8_layer){&prep->l.plan.g, prep->x_zp, prep->w, prep->bias, &prep->out};
}

void nne_conv_s8_prep_run(nne_threadpool *pool, const nne_conv_s8_prep *prep, const int8_t *x,
                          int8_t *y, void *scratch) {
    assert(prep && x && y && scratch && ((uintptr_t)scratch & 63) == 0);
    const conv_s8_layout *l = &prep->l;
    if (!conv_s8_prep_current(prep)) { /* the per-call path, packing into scratch */
        conv_s8_run(pool, &l->plan.g, l->plan.transposed, x, prep->x_zp, prep->w, prep->bias,
                    &prep->out, y, scratch);
        return;
    }
    if (prep->kind != CONV_BAND_NONE) {
        nne_conv_band_s8_exec(pool, &prep->band, x, y, scratch);
        return;
    }
    conv_s8_ctx ctx = {l, prep->uk,     x,      prep->x_zp, prep->bias, &prep->out,
                       y, prep->global, scratch};
    nne_threadpool_run(pool, l->plan.n_tasks, conv_s8_task, &ctx);
}
