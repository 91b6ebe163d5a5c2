/* bf16 convolutions and dense layers (include/nnedge/bf16.h, docs/bf16.md).
 *
 * Reference. One gather loop for conv2d and conv_transpose2d (as conv_s8.c: they differ in
 * which input pixel a tap reads) and dense as a 1x1 conv2d. Each product of two bf16 values
 * is exact in f32, so `acc += w * x` rounds once per tap, in the f32 references' order.
 *
 * Fast paths (nne_conv_bf16_isa()):
 *   widen ("ref", "avx2", "avx512"): x and w widened to f32 in scratch (a 16-bit shift,
 *       threaded over the pool), then nne_conv2d_f32 / nne_conv_transpose2d_f32 / nne_gemm_f32,
 *       which follow the same ISA. An FMA on an exact product is the reference's
 *       multiply-then-add, so only the f32 kernel's summation order can differ.
 *   pair ("avx512bf16", and the emulation for tests): implicit GEMM over the tiles of
 *       conv_plan.h; per tile and group the taps are gathered as bf16 (conv_gather_tile,
 *       rows padded to an even depth with a zero), multiplied by weight panels packed once
 *       per call in vdpbf16ps's pair interleave [phase][group][panel][K/2][16][2] (zero
 *       weights past the depth and past the group's channels), then act(c + bias) per panel.
 *
 * Scratch: max(widen: [x f32][w f32][f32 kernel scratch],
 *              pair:  [phase weights bf16, transposed][packed panels]
 *                     then per thread [cols tile_px x kp_max bf16][c tile_px x 16 f32][taps]). */
#include <assert.h>
#include <string.h>

#include "conv_band.h"
#include "conv_bf16.h"
#include "conv_plan.h"
#include "nnedge/gemm.h"
#include "ops_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#define NNE_HAVE_X86 1
#else
#define NNE_HAVE_X86 0
#endif

/* ---- Array conversion ---- */

static bool use_avx2(void) { return NNE_HAVE_X86 && strcmp(nne_ops_isa(), "ref") != 0; }

void nne_f32_to_bf16_array(const float *x, nne_bf16 *y, size_t n) {
#if NNE_HAVE_X86
    if (use_avx2()) {
        nne_f32_to_bf16_array__avx2(x, y, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] = nne_f32_to_bf16(x[i]);
}

void nne_bf16_to_f32_array(const nne_bf16 *x, float *y, size_t n) {
#if NNE_HAVE_X86
    if (use_avx2()) {
        nne_bf16_to_f32_array__avx2(x, y, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] = nne_bf16_to_f32(x[i]);
}

/* ---- Reference ---- */

static void conv_bf16_gather(const nne_conv2d_geom *g, bool transposed, const nne_bf16 *x,
                             const nne_bf16 *w, const float *bias, float *y) {
    assert(g && x && w && y && nne_conv2d_geom_ok(g, transposed));
    const int32_t icg = g->ic / g->groups; /* input channels per group */
    const int32_t ocg = g->oc / g->groups; /* output channels per group */
    int32_t (*src)(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t) =
        transposed ? nne_tconv_src : nne_conv_src;
    for (int32_t b = 0; b < g->n; b++) {
        const nne_bf16 *xb = x + (size_t)b * g->ih * g->iw * g->ic; /* [ih][iw][ic] */
        for (int32_t oy = 0; oy < g->oh; oy++) {
            for (int32_t ox = 0; ox < g->ow; ox++) {
                float *yp = y + (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc; /* [oc] */
                for (int32_t o = 0; o < g->oc; o++) {
                    const int32_t c0 = (o / ocg) * icg; /* first input channel of the group */
                    float acc = 0.0f;
                    for (int32_t ky = 0; ky < g->kh; ky++) {
                        const int32_t iy = src(oy, ky, g->stride_h, g->dil_h, g->pad_t, g->ih);
                        if (iy < 0) continue;
                        for (int32_t kx = 0; kx < g->kw; kx++) {
                            const int32_t ix = src(ox, kx, g->stride_w, g->dil_w, g->pad_l, g->iw);
                            if (ix < 0) continue;
                            const nne_bf16 *xp = xb + ((size_t)iy * g->iw + ix) * g->ic + c0;
                            const nne_bf16 *wp = w + (((size_t)o * g->kh + ky) * g->kw + kx) * icg;
                            /* the product of two 8-bit significands is exact in f32 (outside
                             * the subnormal range): one rounding per tap, in the add */
                            for (int32_t c = 0; c < icg; c++)
                                acc += nne_bf16_to_f32(wp[c]) * nne_bf16_to_f32(xp[c]);
                        }
                    }
                    yp[o] = bias ? acc + bias[o] : acc;
                }
            }
        }
    }
}

void nne_conv2d_bf16__ref(const nne_conv2d_geom *g, const nne_bf16 *x, const nne_bf16 *w,
                          const float *bias, float *y) {
    conv_bf16_gather(g, false, x, w, bias, y);
}

void nne_conv_transpose2d_bf16__ref(const nne_conv2d_geom *g, const nne_bf16 *x, const nne_bf16 *w,
                                    const float *bias, float *y) {
    conv_bf16_gather(g, true, x, w, bias, y);
}

/* A dense layer as the 1x1 conv2d of n pixels of `in` channels. */
static nne_conv2d_geom dense_geom(int32_t n, int32_t in, int32_t out) {
    nne_conv2d_geom g = {0};
    g.n = n, g.ih = g.iw = g.oh = g.ow = 1, g.ic = in, g.oc = out;
    g.kh = g.kw = g.stride_h = g.stride_w = g.dil_h = g.dil_w = g.groups = 1;
    return g;
}

void nne_dense_bf16__ref(int32_t n, int32_t in, int32_t out, const nne_bf16 *x, const nne_bf16 *w,
                         const float *bias, float *y) {
    assert(n >= 0 && in > 0 && out > 0);
    if (n == 0) return;
    const nne_conv2d_geom g = dense_geom(n, in, out);
    conv_bf16_gather(&g, false, x, w, bias, y);
}

/* ---- Path selection ---- */

typedef enum bf16_path { PATH_WIDEN, PATH_PAIR_AVX512BF16, PATH_PAIR_EMUL } bf16_path;

static _Atomic bool force_emul;

void nne_conv_bf16_force_pair_emul(bool on) { force_emul = on; }

#define NEEDS_AVX512BF16 (NNE_CPU_AVX512F | NNE_CPU_AVX512BW | NNE_CPU_AVX512BF16)

static bool cpu_has_avx512bf16(void) {
    return NNE_HAVE_X86 && (nne_cpu_features() & NEEDS_AVX512BF16) == NEEDS_AVX512BF16;
}

/* AVX-512 BF16 follows the "avx512" ISA as VNNI does for int8 (conv.h). AMX (tdpbf16ps) has
 * no kernel yet; one would be chosen here, after nne_cpu_request_amx() (docs/bf16.md). */
static bf16_path conv_bf16_path(void) {
    if (force_emul) return PATH_PAIR_EMUL;
    if (cpu_has_avx512bf16() && strcmp(nne_ops_isa(), "avx512") == 0) return PATH_PAIR_AVX512BF16;
    return PATH_WIDEN;
}

const char *nne_conv_bf16_isa(void) {
    switch (conv_bf16_path()) {
    case PATH_PAIR_AVX512BF16:
        return "avx512bf16";
    case PATH_PAIR_EMUL:
        return "emul";
    default:
        return nne_ops_isa();
    }
}

/* ---- Threaded array conversion (the widen path) ---- */

#define CVT_CHUNK (64 * 1024) /* elements per task */

typedef struct widen_ctx {
    const nne_bf16 *x;
    float *y;
    size_t n;
} widen_ctx;

static void widen_task(void *vctx, int task, int thread) {
    (void)thread;
    const widen_ctx *c = vctx;
    const size_t i0 = (size_t)task * CVT_CHUNK;
    const size_t n = c->n - i0 < CVT_CHUNK ? c->n - i0 : CVT_CHUNK;
    nne_bf16_to_f32_array(c->x + i0, c->y + i0, n);
}

static void widen(nne_threadpool *pool, const nne_bf16 *x, float *y, size_t n) {
    widen_ctx c = {x, y, n};
    nne_threadpool_run(pool, (int)((n + CVT_CHUNK - 1) / CVT_CHUNK), widen_task, &c);
}

static size_t al64(size_t x) { return (x + 63) & ~(size_t)63; }

static size_t numel_x(const nne_conv2d_geom *g) {
    return (size_t)g->n * (size_t)g->ih * (size_t)g->iw * (size_t)g->ic;
}
static size_t numel_w(const nne_conv2d_geom *g) {
    return (size_t)g->oc * (size_t)g->kh * (size_t)g->kw * (size_t)(g->ic / g->groups);
}

/* ---- The pair driver ---- */

#define BF16_TILE_ELEMS (32 * 1024) /* gathered bf16 per tile (64 KiB) */
#define BF16_TILE_ALIGN 8           /* row blocks of the AVX-512 micro-kernel */

typedef struct pair_layout {
    conv_plan plan;
    int32_t npanel;    /* 16-channel panels per group */
    size_t pack_off;   /* packed panels (after the transposed phase weights) */
    size_t global;     /* bytes before the per-thread areas */
    size_t c_off;      /* within a thread's area: C tile [tile_px][16] f32 */
    size_t taps_off;   /* gather state int64 [kh + kw] */
    size_t per_thread; /* cols [tile_px][kp_max] bf16 first */
} pair_layout;

static int32_t even_up(int32_t k) { return (k + 1) & ~1; }

static void pair_layout_make(pair_layout *l, const nne_conv2d_geom *g, bool transposed) {
    memset(l, 0, sizeof *l);
    conv_plan *p = &l->plan;
    conv_plan_make(p, g, transposed, BF16_TILE_ELEMS, BF16_TILE_ALIGN);
    l->npanel = (p->ocg + CONV_BF16_PANEL - 1) / CONV_BF16_PANEL;
    size_t packed = 0; /* elements */
    for (int32_t ph = 0; ph < p->ph_y * p->ph_x; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        packed += (size_t)g->groups * l->npanel * (size_t)even_up(c.k) * CONV_BF16_PANEL;
    }
    l->pack_off = transposed ? al64(numel_w(g) * sizeof(nne_bf16)) : 0;
    l->global = l->pack_off + al64(packed * sizeof(nne_bf16));
    l->c_off = al64((size_t)p->tile_px * (size_t)even_up(p->k_max) * sizeof(nne_bf16));
    l->taps_off = l->c_off + al64((size_t)p->tile_px * CONV_BF16_PANEL * sizeof(float));
    l->per_thread = l->taps_off + al64((size_t)(g->kh + g->kw) * sizeof(int64_t));
}

/* Pack every phase's weights ([oc][c.k] at src + w_off) into the pair interleave. */
static void pair_pack(const pair_layout *l, const nne_bf16 *w, unsigned char *scratch) {
    const conv_plan *p = &l->plan;
    const nne_bf16 *src = w;
    if (p->transposed) {
        conv_plan_phase_weights(p, w, sizeof(nne_bf16), scratch);
        src = (const nne_bf16 *)(const void *)scratch;
    }
    nne_bf16 *d = (nne_bf16 *)(void *)(scratch + l->pack_off);
    size_t w_off = 0;
    for (int32_t ph = 0; ph < p->ph_y * p->ph_x; ph++) {
        conv_phase c;
        conv_plan_phase(p, ph, &c);
        const int32_t kp = even_up(c.k);
        for (int32_t grp = 0; grp < p->g.groups; grp++)
            for (int32_t pn = 0; pn < l->npanel; pn++)
                for (int32_t k = 0; k < kp; k += 2)
                    for (int32_t j = 0; j < CONV_BF16_PANEL; j++)
                        for (int32_t e = 0; e < 2; e++) {
                            const int32_t oj = pn * CONV_BF16_PANEL + j; /* within the group */
                            const bool in = k + e < c.k && oj < p->ocg;
                            *d++ = in ? src[w_off + (size_t)(grp * p->ocg + oj) * c.k + k + e] : 0;
                        }
        w_off += (size_t)p->g.oc * (size_t)c.k;
    }
}

typedef struct pair_ctx {
    const pair_layout *l;
    const nne_bf16 *x;
    const float *bias;
    const nne_conv_act *act;
    float *y;
    unsigned char *scratch;
    conv_bf16_pair_fn fn;
} pair_ctx;

static void pair_task(void *vctx, int task, int thread) {
    const pair_ctx *x = vctx;
    const pair_layout *l = x->l;
    const conv_plan *p = &l->plan;
    const nne_conv2d_geom *g = &p->g;
    /* the task's phase, and where its packed panels start */
    conv_phase c;
    size_t pack = 0;
    int32_t first = 0, ph = 0;
    for (;; ph++) {
        conv_plan_phase(p, ph, &c);
        if (task < first + c.n_tiles) break;
        first += c.n_tiles;
        pack += (size_t)g->groups * l->npanel * (size_t)even_up(c.k) * CONV_BF16_PANEL;
    }
    const int64_t pix0 = (int64_t)(task - first) * p->tile_px;
    const int32_t m = (int32_t)(c.pixels - pix0 < p->tile_px ? c.pixels - pix0 : p->tile_px);
    const int32_t kp = even_up(c.k);
    unsigned char *ts = x->scratch + l->global + (size_t)thread * l->per_thread;
    nne_bf16 *cols = (nne_bf16 *)(void *)ts;
    float *ct = (float *)(void *)(ts + l->c_off);
    int64_t *rows = (int64_t *)(void *)(ts + l->taps_off), *tcols = rows + g->kh;
    const nne_bf16 *packed = (const nne_bf16 *)(const void *)(x->scratch + l->pack_off) + pack;
    for (int32_t grp = 0; grp < g->groups; grp++) {
        conv_gather_tile(p, &c, pix0, m, x->x + (size_t)grp * p->icg, sizeof(nne_bf16), cols,
                         (size_t)kp, rows, tcols);
        if (kp != c.k) /* the pad element of an odd depth meets a zero weight, but must not
                        * be NaN or inf (0 * inf = NaN) */
            for (int32_t i = 0; i < m; i++) cols[(size_t)i * kp + c.k] = 0;
        for (int32_t pn = 0; pn < l->npanel; pn++) {
            const size_t panel = (size_t)grp * l->npanel + pn;
            x->fn(m, kp / 2, cols, (size_t)kp, packed + panel * kp * CONV_BF16_PANEL, ct);
            const int32_t o0 = grp * p->ocg + pn * CONV_BF16_PANEL;
            const int32_t nj = p->ocg - pn * CONV_BF16_PANEL < CONV_BF16_PANEL
                                   ? p->ocg - pn * CONV_BF16_PANEL
                                   : CONV_BF16_PANEL;
            for (int32_t i = 0; i < m; i++) {
                float *yp = x->y + conv_out_pixel(p, &c, pix0 + i) * (size_t)g->oc + o0;
                const float *cr = ct + (size_t)i * CONV_BF16_PANEL;
                for (int32_t j = 0; j < nj; j++)
                    yp[j] = conv_f32_act(x->bias ? cr[j] + x->bias[o0 + j] : cr[j], o0 + j, x->act);
            }
        }
    }
}

/* ---- Convolution entry points ---- */

static size_t pair_scratch(const nne_conv2d_geom *g, bool transposed, int threads) {
    pair_layout l;
    pair_layout_make(&l, g, transposed);
    return l.global + l.per_thread * (size_t)(threads < 1 ? 1 : threads);
}

static size_t widen_scratch(const nne_conv2d_geom *g, bool transposed, int threads) {
    return al64(numel_x(g) * sizeof(float)) + al64(numel_w(g) * sizeof(float)) +
           (transposed ? nne_conv_transpose2d_f32_scratch_size(g, threads)
                       : nne_conv2d_f32_scratch_size(g, threads));
}

/* Both paths' sizes: the pair one is small (weights and tiles), and tests may force it. */
static size_t conv_bf16_scratch(const nne_conv2d_geom *g, bool transposed, int threads) {
    const size_t a = widen_scratch(g, transposed, threads),
                 b = pair_scratch(g, transposed, threads);
    return a > b ? a : b;
}

size_t nne_conv2d_bf16_scratch_size(const nne_conv2d_geom *g, int threads) {
    return conv_bf16_scratch(g, false, threads);
}

size_t nne_conv_transpose2d_bf16_scratch_size(const nne_conv2d_geom *g, int threads) {
    return conv_bf16_scratch(g, true, threads);
}

static void conv_bf16_run(nne_threadpool *pool, const nne_conv2d_geom *g, bool transposed,
                          const nne_bf16 *x, const nne_bf16 *w, const float *bias,
                          const nne_conv_act *act, float *y, void *scratch) {
    assert(g && x && w && y && scratch && ((uintptr_t)scratch & 63) == 0);
    assert(nne_conv2d_geom_ok(g, transposed));
    assert(!act || act->kind != NNE_CONV_ACT_PRELU ||
           (act->slope && (act->n_slope == 1 || act->n_slope == g->oc)));
    const bf16_path path = conv_bf16_path();
    if (path == PATH_WIDEN) {
        unsigned char *s = scratch;
        float *xf = (float *)(void *)s;
        float *wf = (float *)(void *)(s + al64(numel_x(g) * sizeof(float)));
        void *rest = s + al64(numel_x(g) * sizeof(float)) + al64(numel_w(g) * sizeof(float));
        widen(pool, x, xf, numel_x(g));
        nne_bf16_to_f32_array(w, wf, numel_w(g));
        (transposed ? nne_conv_transpose2d_f32 : nne_conv2d_f32)(pool, g, xf, wf, bias, act, y,
                                                                 rest);
        return;
    }
    pair_layout l;
    pair_layout_make(&l, g, transposed);
    pair_pack(&l, w, scratch);
    conv_bf16_pair_fn fn = nne_conv_bf16_pair__emul;
#if NNE_HAVE_X86
    if (path == PATH_PAIR_AVX512BF16) fn = nne_conv_bf16_pair__avx512bf16;
#endif
    pair_ctx ctx = {&l, x, bias, act, y, scratch, fn};
    nne_threadpool_run(pool, l.plan.n_tasks, pair_task, &ctx);
}

void nne_conv2d_bf16(nne_threadpool *pool, const nne_conv2d_geom *g, const nne_bf16 *x,
                     const nne_bf16 *w, const float *bias, const nne_conv_act *act, float *y,
                     void *scratch) {
    conv_bf16_run(pool, g, false, x, w, bias, act, y, scratch);
}

void nne_conv_transpose2d_bf16(nne_threadpool *pool, const nne_conv2d_geom *g, const nne_bf16 *x,
                               const nne_bf16 *w, const float *bias, const nne_conv_act *act,
                               float *y, void *scratch) {
    conv_bf16_run(pool, g, true, x, w, bias, act, y, scratch);
}

/* ---- Dense: widen, then the dispatched GEMM (NT) and the bias ---- */

size_t nne_dense_bf16_scratch_size(int32_t n, int32_t in, int32_t out, int threads) {
    return al64((size_t)n * in * sizeof(float)) + al64((size_t)out * in * sizeof(float)) +
           nne_gemm_f32_scratch_size(n, out, in, threads);
}

void nne_dense_bf16(nne_threadpool *pool, int32_t n, int32_t in, int32_t out, const nne_bf16 *x,
                    const nne_bf16 *w, const float *bias, float *y, void *scratch) {
    assert(n >= 0 && in > 0 && out > 0 && x && w && y && scratch);
    unsigned char *s = scratch;
    float *xf = (float *)(void *)s;
    float *wf = (float *)(void *)(s + al64((size_t)n * in * sizeof(float)));
    void *rest = s + al64((size_t)n * in * sizeof(float)) + al64((size_t)out * in * sizeof(float));
    widen(pool, x, xf, (size_t)n * in);
    widen(pool, w, wf, (size_t)out * in);
    nne_gemm_f32(pool, NNE_GEMM_TRANS_B, n, out, in, xf, in, wf, in, y, out, rest);
    if (bias)
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = 0; j < out; j++) y[(size_t)i * out + j] += bias[j];
}

/* ---- The portable emulation of vdpbf16ps (conv_bf16.h) ---- */

/* Subnormal bf16 input -> zero of the same sign (DAZ). */
static float daz(nne_bf16 h) {
    return nne_bf16_to_f32((h & 0x7F80) == 0 ? (nne_bf16)(h & 0x8000) : h);
}

/* Subnormal f32 result -> zero of the same sign (FTZ). */
static float ftz(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    memcpy(&v, &u, 4);
    return v;
}

void nne_conv_bf16_pair__emul(int32_t m, int32_t pairs, const nne_bf16 *a, size_t lda,
                              const nne_bf16 *b, float *c) {
    for (int32_t i = 0; i < m; i++) {
        const nne_bf16 *ar = a + (size_t)i * lda;
        float *cr = c + (size_t)i * CONV_BF16_PANEL;
        for (int32_t j = 0; j < CONV_BF16_PANEL; j++) {
            float acc = 0.0f;
            for (int32_t p = 0; p < pairs; p++) {
                const nne_bf16 *bp = b + ((size_t)p * CONV_BF16_PANEL + j) * 2;
                acc = ftz(acc + daz(ar[2 * p + 1]) * daz(bp[1]));
                acc = ftz(acc + daz(ar[2 * p]) * daz(bp[0]));
            }
            cr[j] = acc;
        }
    }
}
