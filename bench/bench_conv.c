/* bench_conv: cae-seed's encoder and decoder at 512x768 (docs/models.md), per layer and in
 * total, f32, int8 and bf16, 1 and 2 threads: nnedge's fast kernels (include/nnedge/conv.h) against
 * oneDNN's convolution / deconvolution primitives (when linked) in the same run.
 *
 *   bench_conv [--reps N] [--threads LIST] [--only SUBSTRING] [--height H --width W]
 *              [--gap-ms MS] [--blocked] [--pairs] [--s8-per-call] [--s8-prelu]
 *
 * --pairs times the fused pairs instead (docs/conv.md "Cross-layer fusion", docs/perf.md
 * "Fused pairs"): conv2d_1+conv2d_2 and conv2d_3+conv2d_4, f32 and int8, nnedge's fused pair
 * against nnedge's two layers and oneDNN's two layers, round-robin; then the encoder on
 * sessions with fusion on and off (NNEDGE_FUSE=0) at the default pool's thread count
 * (NNEDGE_THREADS).
 *
 * int8 rows time a prepared layer (nne_conv_s8_prep_create before the timed calls, then
 * nne_conv_s8_prep_run), as the cpu-s8 backend runs it: the weights are packed once, outside
 * the timed loop, as oneDNN's weights are reordered once in dnnl_setup. --s8-per-call times
 * nne_conv2d_s8 / nne_conv_transpose2d_s8 instead, which pack at every call.
 *
 * Layers and geometry come from the model itself (nne_model_cae_seed, nne_graph_infer). f32
 * layers have their PReLU (per channel, 0.25) fused; oneDNN gets the same activation as an
 * eltwise post-op (leaky ReLU 0.25, a shared slope). int8 layers (s8 activations with a zero
 * point, per-channel weight scales, Q31 requantization) clamp at the output zero point (fused
 * ReLU) on both sides; with --s8-prelu they apply the PReLU instead (slope 0.25) as the
 * quantization pass deploys cae-seed, fused into the output stage (nne_qoutput_fuse_prelu,
 * docs/quantization.md section 5), and oneDNN gets a leaky ReLU 0.25 post-op. bf16 layers
 * (bf16.h: bf16 x and w, f32 bias, sums and output) are the f32 layers with x and w rounded
 * to bf16; oneDNN gets bf16 source and weights, f32 bias and destination. When oneDNN has
 * no optimized bf16 kernel for this CPU (it then picks a reference implementation, "ref:any"
 * or similar, e.g. on AVX2 without AVX512_BF16) the row says so and is not timed: its ratio
 * would compare against a loop nest, not a peer.
 *
 * Method. Before timing, nnedge's output is checked on 256 sampled elements against a
 * direct evaluation of the reference formula (f32: within NNE_CONV_F32_TOL; int8: exact).
 * Then one warm-up each and N timed runs (default 20), nnedge and oneDNN alternating call by
 * call, each call after a pause of --gap-ms (default 10; time_pair). The table gives the
 * median time, the min-max spread, GOP/s = 2 x MACs / median (MACs: input-side taps for transposed
 * layers, as docs/models.md counts them; for a transposed layer this counts the taps that reach an
 * output), and the fraction of the peak the bench measures first: f32 FMA throughput for
 * f32 rows, int16 vpmaddwd throughput for int8 rows (the AVX2 int8 kernel's instruction).
 * oneDNN runs with the same OpenMP thread count (omp_set_num_threads via dlsym). Two ratio
 * tables close the output: nnedge / oneDNN of the medians and of the minima. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_peak.h"
#include "nnedge/backend.h"
#include "nnedge/bf16.h"
#include "nnedge/conv.h"
#include "nnedge/gemm.h"
#include "nnedge/graph.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"

#ifdef NNE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

typedef struct layer {
    char name[64];
    const char *part; /* "encoder" / "decoder" */
    nne_conv2d_geom g;
    bool transposed, prelu;
    double macs;
} layer;

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static double rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int load_layers(int32_t h, int32_t w, layer *out, int cap) {
    int n = 0;
    for (int part = 0; part < 2; part++) {
        nne_graph *g = NULL;
        if (nne_model_cae_seed(h, w, part ? NNE_CAE_DECODER : NNE_CAE_ENCODER, &g) ||
            nne_graph_infer(g)) {
            fprintf(stderr, "bench_conv: %s\n", nne_last_error());
            exit(1);
        }
        for (int32_t i = 0; i < g->n_nodes && n < cap; i++) {
            const nne_node *nd = &g->nodes[i];
            if (nd->op != NNE_OP_CONV2D && nd->op != NNE_OP_CONV_TRANSPOSE2D) continue;
            layer *L = &out[n++];
            snprintf(L->name, sizeof L->name, "%s", nd->name);
            L->part = part ? "decoder" : "encoder";
            L->g = nd->conv_geom;
            L->transposed = nd->op == NNE_OP_CONV_TRANSPOSE2D;
            L->prelu = i + 1 < g->n_nodes && g->nodes[i + 1].op == NNE_OP_PRELU;
            const nne_conv2d_geom *c = &L->g;
            L->macs = L->transposed ? (double)c->n * c->ih * c->iw * c->kh * c->kw * c->ic * c->oc
                                    : (double)c->n * c->oh * c->ow * c->kh * c->kw * c->ic * c->oc;
        }
        nne_graph_free(g);
    }
    return n;
}

/* The input pixel tap (ky, kx) of output (b, oy, ox) reads, or -1 (reference formulas). */
static int64_t tap_src(const layer *L, int32_t b, int32_t oy, int32_t ox, int32_t ky, int32_t kx) {
    const nne_conv2d_geom *g = &L->g;
    int32_t iy, ix;
    if (!L->transposed) {
        iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
        ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
    } else {
        int32_t ty = oy + g->pad_t - ky * g->dil_h, tx = ox + g->pad_l - kx * g->dil_w;
        if (ty < 0 || tx < 0 || ty % g->stride_h || tx % g->stride_w) return -1;
        iy = ty / g->stride_h, ix = tx / g->stride_w;
    }
    if (iy < 0 || ix < 0 || iy >= g->ih || ix >= g->iw) return -1;
    return (((int64_t)b * g->ih + iy) * g->iw + ix) * g->ic;
}

/* ---- timing ---------------------------------------------------------------------------- */

typedef struct result {
    double med, lo, hi; /* seconds */
} result;

typedef void (*run_fn)(void *ctx);

static result summarize(double *t, int reps) {
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    result res = {reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]), t[0],
                  t[reps - 1]};
    return res;
}

/* Pause before each timed call, so that a call does not run into the previous one's memory
 * traffic. It does not outlast every idle spin: nnedge's pool sleeps after 50 us
 * (NNEDGE_SPIN_US), but libgomp's workers, with its default wait policy, were measured still
 * awake after it (oneDNN 1.16 ms per conv2d_5 call against 1.93 with OMP_WAIT_POLICY=passive;
 * docs/perf.md, "Timing protocol"). --blocked separates the two implementations. */
static long gap_ns = 10000000L; /* --gap-ms */

static void gap(void) {
    struct timespec ts = {gap_ns / 1000000000L, gap_ns % 1000000000L};
    nanosleep(&ts, NULL);
}

/* --blocked: time each implementation's reps in one block instead of round-robin. */
static bool blocked = false;

/* Times fns[0..n-1] round-robin: f0, f1, ..., f0, f1, ... so that a load that drifts during
 * the run (another process on the cores) weighs on all alike, and their ratios mean
 * something even when the absolute times do not. One warm-up call each; a gap before each
 * timed call. --blocked: all reps of f0, then all of f1, ..., each block after a 200 ms
 * pause (the previous implementation's idle threads stop spinning: libgomp's spin for
 * milliseconds) and a warm-up call; with --gap-ms 0 every implementation then runs
 * back-to-back with its own threads awake, as the layers of a network do. */
static void time_n(run_fn *fns, void **ctxs, int n, int reps, result *res) {
    static double t[4][1000];
    if (reps > 1000) reps = 1000;
    if (blocked) {
        for (int k = 0; k < n; k++) {
            const struct timespec settle = {0, 200000000L};
            nanosleep(&settle, NULL);
            fns[k](ctxs[k]);
            for (int r = 0; r < reps; r++) {
                gap();
                const uint64_t t0 = nne_time_ns();
                fns[k](ctxs[k]);
                t[k][r] = (double)(nne_time_ns() - t0) * 1e-9;
            }
            res[k] = summarize(t[k], reps);
        }
        return;
    }
    for (int k = 0; k < n; k++) fns[k](ctxs[k]);
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < n; k++) {
            gap();
            const uint64_t t0 = nne_time_ns();
            fns[k](ctxs[k]);
            t[k][r] = (double)(nne_time_ns() - t0) * 1e-9;
        }
    for (int k = 0; k < n; k++) res[k] = summarize(t[k], reps);
}

/* Times fa and, when fb is not NULL, fb, alternating: a, b, a, b, ... (time_n). */
static void time_pair(run_fn fa, void *ca, run_fn fb, void *cb, int reps, result *ra, result *rb) {
    run_fn fns[2] = {fa, fb};
    void *ctxs[2] = {ca, cb};
    result res[2];
    time_n(fns, ctxs, fb ? 2 : 1, reps, res);
    *ra = res[0];
    if (fb) *rb = res[1];
}

/* ---- nnedge ---------------------------------------------------------------------------- */

typedef struct nne_run {
    const layer *L;
    nne_threadpool *pool;
    bool s8, bf16; /* bf16: xb, wb run; x, w hold their f32 values (for the check) */
    const nne_bf16 *xb, *wb;
    const float *x, *w, *b;
    float *y;
    const nne_conv_act *act;
    const int8_t *xq, *wq;
    int32_t x_zp;
    const int32_t *bq;
    const nne_qoutput *out;
    int8_t *yq;
    const nne_conv_s8_prep *prep; /* int8: the prepared layer (NULL: --s8-per-call) */
    void *scratch;
} nne_run;

static void nne_run_fn(void *vctx) {
    nne_run *r = vctx;
    if (r->s8 && r->prep) {
        nne_conv_s8_prep_run(r->pool, r->prep, r->xq, r->yq, r->scratch);
    } else if (r->s8) {
        if (r->L->transposed)
            nne_conv_transpose2d_s8(r->pool, &r->L->g, r->xq, r->x_zp, r->wq, r->bq, r->out, r->yq,
                                    r->scratch);
        else
            nne_conv2d_s8(r->pool, &r->L->g, r->xq, r->x_zp, r->wq, r->bq, r->out, r->yq,
                          r->scratch);
    } else if (r->bf16) {
        (r->L->transposed ? nne_conv_transpose2d_bf16 : nne_conv2d_bf16)(
            r->pool, &r->L->g, r->xb, r->wb, r->b, r->act, r->y, r->scratch);
    } else if (r->L->transposed) {
        nne_conv_transpose2d_f32(r->pool, &r->L->g, r->x, r->w, r->b, r->act, r->y, r->scratch);
    } else {
        nne_conv2d_f32(r->pool, &r->L->g, r->x, r->w, r->b, r->act, r->y, r->scratch);
    }
}

/* Sampled check of an output against the reference formulas, on 256 points drawn from a
 * fixed seed, so that nnedge's and oneDNN's outputs are checked at the same elements. f32:
 * returns the number of points outside the tolerance. int8: returns the number of points that
 * differ from exact int8 arithmetic and stores the largest difference (in output LSBs) in
 * *max_diff. yq / y: the output to check (both implementations write the same buffer).
 * halve: int8 only, the model of oneDNN's AVX2 kernels for s8 sources: each weight w becomes
 * 2 * rint(w / 2) (its reorder scales the weights by 0.5, rounding half to even, and doubles
 * the output scale), the rest exact. */
static int check_output(const nne_run *r, const int8_t *yq, const float *y, int *max_diff,
                        bool halve, bool report) {
    const nne_conv2d_geom *g = &r->L->g;
    unsigned long long s = 0x2545F4914F6CDD1Dull;
    int bad = 0, worst = 0;
    for (int k = 0; k < 256; k++) {
        double u[3];
        for (int j = 0; j < 3; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            u[j] = (double)(s >> 11) * 0x1.0p-53;
        }
        const int32_t b = 0, oy = (int32_t)(u[0] * g->oh), ox = (int32_t)(u[1] * g->ow);
        const int32_t o = (int32_t)(u[2] * g->oc);
        double acc = 0, mag = 0;
        int64_t iacc = 0;
        for (int32_t ky = 0; ky < g->kh; ky++)
            for (int32_t kx = 0; kx < g->kw; kx++) {
                const int64_t src = tap_src(r->L, b, oy, ox, ky, kx);
                if (src < 0) continue;
                const size_t wo = (((size_t)o * g->kh + ky) * g->kw + kx) * g->ic;
                for (int32_t c = 0; c < g->ic; c++) {
                    if (r->s8) {
                        const int32_t wv = halve ? 2 * (int32_t)rint(0.5 * r->wq[wo + c])
                                                 : r->wq[wo + c];
                        iacc += (int64_t)(r->xq[src + c] - r->x_zp) * wv;
                    } else {
                        acc += (double)r->x[src + c] * r->w[wo + c];
                        mag += fabs((double)r->x[src + c] * r->w[wo + c]);
                    }
                }
            }
        const size_t at = (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc + o;
        if (r->s8) {
            const int8_t want = nne_qoutput_apply(r->out, o, (int32_t)iacc + r->bq[o]);
            if (yq[at] != want) {
                const int d = abs((int)yq[at] - (int)want);
                if (d > worst) worst = d;
                if (report && !bad)
                    fprintf(stderr, "%s int8: y[%zu] = %d, want %d\n", r->L->name, at, yq[at],
                            want);
                bad++;
            }
        } else {
            double v = acc + r->b[o];
            if (r->act && r->act->kind == NNE_CONV_ACT_PRELU && v < 0) v *= r->act->slope[o];
            const double tol = NNE_CONV_F32_TOL * (g->kh * g->kw * g->ic + 2) * (mag + 1) + 1e-6;
            if (!(fabs(v - y[at]) <= tol)) {
                if (report && !bad)
                    fprintf(stderr, "%s f32: y[%zu] = %g, want %g\n", r->L->name, at, y[at], v);
                bad++;
            }
        }
    }
    if (max_diff) *max_diff = worst;
    return bad;
}

static bool verify(const nne_run *r) { return check_output(r, r->yq, r->y, NULL, false, true) == 0; }

static bool g_s8_prelu; /* --s8-prelu: int8 layers with their PReLU fused */

/* ---- oneDNN ---------------------------------------------------------------------------- */

#ifdef NNE_HAVE_DNNL
typedef struct dnnl_run {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bia, dst;
    char impl[64]; /* the implementation oneDNN chose (dnnl_query_impl_info_str) */
} dnnl_run;

static void dnnl_run_fn(void *vctx) {
    dnnl_run *d = vctx;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, d->src},
                               {DNNL_ARG_WEIGHTS, d->wei},
                               {DNNL_ARG_BIAS, d->bia},
                               {DNNL_ARG_DST, d->dst}};
    dnnl_primitive_execute(d->prim, d->stream, 4, args);
    dnnl_stream_wait(d->stream);
}

static dnnl_status_t dnnl_last; /* the status of the call that made dnnl_setup fail */

#define DNNL_OK(x)                                                                                 \
    do {                                                                                           \
        if ((dnnl_last = (x)) != dnnl_success) return false;                                       \
    } while (0)

/* Build the primitive for layer L (dt f32, s8 or bf16: bf16 source and weights, f32 bias and
 * destination) over the user buffers; weights are reordered once from OHWI to the
 * primitive's layout (outside the timing). */
static bool dnnl_setup(dnnl_run *d, const layer *L, dnnl_data_type_t dt, void *x, void *w, void *b,
                       void *y, float scale, int32_t x_zp, int32_t y_zp) {
    const nne_conv2d_geom *g = &L->g;
    const bool s8 = dt == dnnl_s8;
    dnnl_memory_desc_t src_md, wei_md, wei_user_md, bia_md, dst_md;
    dnnl_dims_t sd = {g->n, g->ic, g->ih, g->iw}, wd = {g->oc, g->ic, g->kh, g->kw};
    dnnl_dims_t bd = {g->oc}, dd = {g->n, g->oc, g->oh, g->ow};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dt, dnnl_nhwc));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wei_md, 4, wd, dt, dnnl_format_tag_any));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wei_user_md, 4, wd, dt, dnnl_ohwi));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&bia_md, 1, bd, s8 ? dnnl_s32 : dnnl_f32, dnnl_a));
    DNNL_OK(
        dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dt == dnnl_bf16 ? dnnl_f32 : dt, dnnl_nhwc));
    dnnl_dims_t strides = {g->stride_h, g->stride_w}, pl = {g->pad_t, g->pad_l};
    dnnl_dims_t pr = {g->pad_b, g->pad_r};
    if (L->transposed) { /* output padding as (negative) right padding */
        pr[0] = (dnnl_dim_t)(g->ih - 1) * g->stride_h + g->kh - g->oh - g->pad_t;
        pr[1] = (dnnl_dim_t)(g->iw - 1) * g->stride_w + g->kw - g->ow - g->pad_l;
    }
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t ops;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    DNNL_OK(dnnl_post_ops_create(&ops));
    if (s8) {
        DNNL_OK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale));
        DNNL_OK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &x_zp));
        DNNL_OK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_DST, 1, 0, &y_zp));
        if (L->prelu)
            DNNL_OK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu,
                                                 g_s8_prelu ? 0.25f : 0.0f, 0));
    } else if (L->prelu) {
        DNNL_OK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.25f, 0));
    }
    DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, ops));
    dnnl_primitive_desc_t pd;
    if (L->transposed) {
        dnnl_deconvolution_desc_t cd;
        DNNL_OK(dnnl_deconvolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                     dnnl_deconvolution_direct, &src_md, &wei_md,
                                                     &bia_md, &dst_md, strides, pl, pr));
        DNNL_OK(dnnl_primitive_desc_create(&pd, &cd, attr, d->eng, NULL));
    } else {
        dnnl_convolution_desc_t cd;
        DNNL_OK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                   dnnl_convolution_direct, &src_md, &wei_md,
                                                   &bia_md, &dst_md, strides, pl, pr));
        DNNL_OK(dnnl_primitive_desc_create(&pd, &cd, attr, d->eng, NULL));
    }
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        impl = "?";
    snprintf(d->impl, sizeof d->impl, "%s", impl);
    DNNL_OK(dnnl_primitive_create(&d->prim, pd));
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wuser;
    DNNL_OK(dnnl_memory_create(&wuser, &wei_user_md, d->eng, w));
    DNNL_OK(dnnl_memory_create(&d->wei, wmd, d->eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &wei_user_md, d->eng, wmd, d->eng, NULL));
    DNNL_OK(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, wuser}, {DNNL_ARG_TO, d->wei}};
    DNNL_OK(dnnl_primitive_execute(reorder, d->stream, 2, rargs));
    dnnl_stream_wait(d->stream);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(wuser);
    DNNL_OK(dnnl_memory_create(&d->src, &src_md, d->eng, x));
    DNNL_OK(dnnl_memory_create(&d->bia, &bia_md, d->eng, b));
    DNNL_OK(dnnl_memory_create(&d->dst, &dst_md, d->eng, y));
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    return true;
}

static void dnnl_teardown(dnnl_run *d) {
    if (d->prim) dnnl_primitive_destroy(d->prim);
    if (d->src) dnnl_memory_destroy(d->src);
    if (d->wei) dnnl_memory_destroy(d->wei);
    if (d->bia) dnnl_memory_destroy(d->bia);
    if (d->dst) dnnl_memory_destroy(d->dst);
    d->prim = NULL, d->src = d->wei = d->bia = d->dst = NULL;
}
#endif

/* ---- fused pairs (--pairs) ------------------------------------------------------------- */

/* conv2d l1 -> conv2d l2 of the encoder, three ways: nnedge's fused pair
 * (nne_conv2d_pair_*), nnedge's two layers one after the other, oneDNN's two layers. f32:
 * PReLU 0.25 after each (oneDNN: leaky ReLU post-ops); int8: the ReLU clamp after each (the
 * per-layer rows' setup: x zero point -10, outputs -5, M = 2^-12), nothing between. */
typedef struct pair_run {
    const layer *L1, *L2;
    nne_threadpool *pool;
    bool s8, fused;
    const float *x, *w1, *b1, *w2, *b2;
    const nne_conv_act *act;
    float *mid, *y;
    const int8_t *xq, *wq1, *wq2;
    const int32_t *bq1, *bq2;
    const nne_qoutput *o1, *o2;
    int8_t *midq, *yq;
    void *scratch;
} pair_run;

static void pair_run_fn(void *vctx) {
    const pair_run *r = vctx;
    const nne_conv2d_geom *g1 = &r->L1->g, *g2 = &r->L2->g;
    if (r->s8 && r->fused) {
        const nne_conv_s8_layer l1 = {g1, -10, r->wq1, r->bq1, r->o1};
        const nne_conv_s8_layer l2 = {g2, -5, r->wq2, r->bq2, r->o2};
        nne_conv2d_pair_s8(r->pool, &l1, NULL, &l2, r->xq, r->yq, r->scratch);
    } else if (r->s8) {
        nne_conv2d_s8(r->pool, g1, r->xq, -10, r->wq1, r->bq1, r->o1, r->midq, r->scratch);
        nne_conv2d_s8(r->pool, g2, r->midq, -5, r->wq2, r->bq2, r->o2, r->yq, r->scratch);
    } else if (r->fused) {
        const nne_conv_f32_layer l1 = {g1, r->w1, r->b1, r->act}, l2 = {g2, r->w2, r->b2, r->act};
        nne_conv2d_pair_f32(r->pool, &l1, &l2, r->x, r->y, r->scratch);
    } else {
        nne_conv2d_f32(r->pool, g1, r->x, r->w1, r->b1, r->act, r->mid, r->scratch);
        nne_conv2d_f32(r->pool, g2, r->mid, r->w2, r->b2, r->act, r->y, r->scratch);
    }
}

#ifdef NNE_HAVE_DNNL
typedef struct dnnl_pair {
    dnnl_run a, b;
} dnnl_pair;

static void dnnl_pair_fn(void *vctx) {
    dnnl_pair *d = vctx;
    dnnl_run_fn(&d->a);
    dnnl_run_fn(&d->b);
}
#endif

/* The cae-seed encoder at h x w on a session, fused pairs on (the planner's choice) and off
 * (NNEDGE_FUSE=0 at compile); f32 on "cpu", int8 on "cpu-s8" (quantized at 64 x 96 on random
 * images, then nne_quantize_like at h x w). Times the two sessions alternating. */
typedef struct enc_run {
    nne_session *s;
} enc_run;

static void enc_run_fn(void *vctx) { nne_session_run(((enc_run *)vctx)->s); }

static nne_status enc_sample(void *ctx, int32_t i, float *x) {
    const size_t n = *(const size_t *)ctx;
    rng_state = 0x1234567ull + (unsigned long long)i;
    for (size_t k = 0; k < n; k++) x[k] = (float)rnd();
    return NNE_OK;
}

static nne_graph *enc_graph(int32_t h, int32_t w, bool s8) {
    nne_graph *g = NULL, *small = NULL, *q = NULL, *out = NULL;
    if (nne_model_cae_seed(h, w, NNE_CAE_ENCODER, &g)) return NULL;
    rng_state = 0x9E3779B97F4A7C15ull;
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || t->dtype != NNE_F32) continue;
        const int64_t n = nne_shape_numel(&t->shape);
        const float a = t->shape.ndim == 4 ? sqrtf(3.0f / (float)(n / t->shape.dim[0])) : 0.25f;
        for (int64_t k = 0; k < n; k++) ((float *)t->data)[k] = (float)(rnd() * 2 - 1) * a;
    }
    if (!s8) return g;
    if (!nne_model_cae_seed(64, 96, NNE_CAE_ENCODER, &small)) {
        for (int32_t i = 0; i < small->n_tensors; i++) /* the same weights */
            if (small->tensors[i].kind == NNE_TENSOR_CONSTANT && small->tensors[i].dtype == NNE_F32)
                memcpy(small->tensors[i].data, g->tensors[i].data,
                       nne_tensor_nbytes(&g->tensors[i]));
        size_t n_in = (size_t)nne_shape_numel(&small->tensors[small->inputs[0]].shape);
        nne_quantize_opts o = {
            .scheme = NNE_QSCHEME_PER_CHANNEL, .n_samples = 2, .sample = enc_sample, .ctx = &n_in};
        if (!nne_quantize_graph(small, &o, &q)) nne_quantize_like(g, q, &out);
    }
    nne_graph_free(small), nne_graph_free(q), nne_graph_free(g);
    return out;
}

static void bench_encoder(int32_t h, int32_t w, int reps) {
    const int threads = nne_threadpool_threads(nne_threadpool_default());
    for (int s8 = 0; s8 < 2; s8++) {
        nne_graph *g = enc_graph(h, w, s8);
        nne_session *on = NULL, *off = NULL;
        const char *be = s8 ? "cpu-s8" : "cpu";
        if (!g || nne_session_create(g, nne_backend_by_name(be), &on)) {
            fprintf(stderr, "bench_conv: encoder %s: %s\n", be, nne_last_error());
            nne_graph_free(g);
            continue;
        }
        setenv("NNEDGE_FUSE", "0", 1);
        const nne_status st = nne_session_create(g, nne_backend_by_name(be), &off);
        unsetenv("NNEDGE_FUSE");
        if (st) {
            fprintf(stderr, "bench_conv: encoder %s: %s\n", be, nne_last_error());
            nne_session_free(on), nne_graph_free(g);
            continue;
        }
        size_t n = (size_t)nne_shape_numel(&nne_session_input_tensor(on, 0)->shape);
        float *x = malloc(n * sizeof *x);
        enc_sample(&n, 0, x);
        nne_session_set_input_f32(on, 0, x, n);
        nne_session_set_input_f32(off, 0, x, n);
        free(x);
        enc_run a = {on}, b = {off};
        result r[2];
        time_n((run_fn[]){enc_run_fn, enc_run_fn}, (void *[]){&a, &b}, 2, reps, r);
        const size_t m = nne_tensor_nbytes(nne_session_output_tensor(on, 0));
        const bool same = memcmp(nne_session_output(on, 0), nne_session_output(off, 0), m) == 0;
        for (int k = 0; k < 2; k++)
            printf("| encoder (session, %s) | %s | %d | %s | %.2f | %.2f-%.2f | %s |\n", be,
                   s8 ? "int8" : "f32", threads, k ? "fusion off" : "fusion on", r[k].med * 1e3,
                   r[k].lo * 1e3, r[k].hi * 1e3,
                   k      ? ""
                   : same ? "output identical"
                          : "OUTPUT DIFFERS");
        printf("| encoder (session, %s) | %s | %d | on / off | %.3f | | |\n", be,
               s8 ? "int8" : "f32", threads, r[0].med / r[1].med);
        nne_session_free(on), nne_session_free(off), nne_graph_free(g);
    }
}

/* --pairs: the fused pairs (conv2d_1 + conv2d_2, conv2d_3 + conv2d_4) against the unfused
 * pair and oneDNN's two layers, f32 and int8, at each thread count; then the encoder on
 * sessions, fusion on / off, at the default pool's thread count (NNEDGE_THREADS). */
static int bench_pairs(const layer *layers, int n_layers, const int *thread_list, int n_threads,
                       int reps, int32_t h, int32_t w) {
    int failures = 0;
    printf("| pair | dtype | threads | impl | ms (median) | ms (min-max) | ratio to fused |\n"
           "|---|---|---|---|---|---|---|\n");
    for (int ti = 0; ti < n_threads; ti++) {
        const int threads = thread_list[ti];
        nne_threadpool *pool = NULL;
        if (nne_threadpool_create(threads, &pool)) return 1;
#ifdef NNE_HAVE_DNNL
        void (*omp_set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
        if (omp_set_threads) omp_set_threads(threads);
        dnnl_engine_t eng;
        dnnl_stream_t stream;
        dnnl_engine_create(&eng, dnnl_cpu, 0);
        dnnl_stream_create(&stream, eng, dnnl_stream_default_flags);
#endif
        for (int li = 0; li + 1 < n_layers; li++) {
            const layer *L1 = &layers[li], *L2 = &layers[li + 1];
            if (L1->transposed || L2->transposed || L1->g.oc != L2->g.ic || L1->g.oh != L2->g.ih ||
                strcmp(L1->part, L2->part) != 0 || li % 2)
                continue;
            const nne_conv2d_geom *g1 = &L1->g, *g2 = &L2->g;
            char name[160];
            snprintf(name, sizeof name, "%.63s+%.63s", L1->name, L2->name);
            const size_t nx = (size_t)g1->n * g1->ih * g1->iw * g1->ic;
            const size_t nm = (size_t)g1->n * g1->oh * g1->ow * g1->oc;
            const size_t ny = (size_t)g2->n * g2->oh * g2->ow * g2->oc;
            const size_t nw1 = (size_t)g1->oc * g1->kh * g1->kw * g1->ic;
            const size_t nw2 = (size_t)g2->oc * g2->kh * g2->kw * g2->ic;
            float *x = nne_aligned_alloc(nx * 4), *mid = nne_aligned_alloc(nm * 4);
            float *y = nne_aligned_alloc(ny * 4), *y2 = nne_aligned_alloc(ny * 4);
            float *w1 = nne_aligned_alloc(nw1 * 4), *w2 = nne_aligned_alloc(nw2 * 4);
            float *b1 = nne_aligned_alloc(256 * 4), *b2 = nne_aligned_alloc(256 * 4);
            float *slope = nne_aligned_alloc(256 * 4);
            int8_t *xq = nne_aligned_alloc(nx), *midq = nne_aligned_alloc(nm);
            int8_t *yq = nne_aligned_alloc(ny), *yq2 = nne_aligned_alloc(ny);
            int8_t *wq1 = nne_aligned_alloc(nw1), *wq2 = nne_aligned_alloc(nw2);
            int32_t *bq1 = nne_aligned_alloc(256 * 4), *bq2 = nne_aligned_alloc(256 * 4);
            nne_requant *rq = nne_aligned_alloc(sizeof *rq);
            for (size_t i = 0; i < nx; i++)
                x[i] = (float)rnd(), xq[i] = (int8_t)(rnd() * 256 - 128);
            for (size_t i = 0; i < nw1; i++)
                w1[i] = (float)(rnd() - 0.5) * 0.2f, wq1[i] = (int8_t)(rnd() * 254 - 127);
            for (size_t i = 0; i < nw2; i++)
                w2[i] = (float)(rnd() - 0.5) * 0.2f, wq2[i] = (int8_t)(rnd() * 254 - 127);
            for (int o = 0; o < 256; o++) {
                b1[o] = (float)(rnd() - 0.5), b2[o] = (float)(rnd() - 0.5), slope[o] = 0.25f;
                bq1[o] = (int32_t)(rnd() * 2000 - 1000), bq2[o] = (int32_t)(rnd() * 2000 - 1000);
            }
            const float scale = 1.0f / 4096;
            nne_qoutput out;
            nne_qoutput_init(&out, rq, 1, 1.0f, &scale, 1.0f, -5, false, NNE_QACT_RELU);
            const nne_conv_act act = {NNE_CONV_ACT_PRELU, slope, 256};
            for (int s8 = 0; s8 < 2; s8++) {
                const char *dt = s8 ? "int8" : "f32";
                if (!nne_conv2d_pair_ok(g1, g2, s8, threads))
                    printf("| %s | %s | %d | fused | off (nne_conv2d_pair_ok) | | |\n", name, dt,
                           threads);
                size_t ss = s8 ? nne_conv2d_pair_s8_scratch_size(g1, g2, threads)
                               : nne_conv2d_pair_f32_scratch_size(g1, g2, threads);
                const size_t s1 = s8 ? nne_conv2d_s8_scratch_size(g1, threads)
                                     : nne_conv2d_f32_scratch_size(g1, threads);
                const size_t s2 = s8 ? nne_conv2d_s8_scratch_size(g2, threads)
                                     : nne_conv2d_f32_scratch_size(g2, threads);
                if (ss == 0) {
                    printf("| %s | %s | %d | fused | geometry refused | | |\n", name, dt, threads);
                    continue;
                }
                ss = ss > s1 ? ss : s1;
                ss = ss > s2 ? ss : s2;
                void *scratch = nne_aligned_alloc(ss);
                pair_run fz = {L1, L2, pool, s8,  true, x,   w1,   b1,   w2,   b2, &act,   mid,
                               y,  xq, wq1,  wq2, bq1,  bq2, &out, &out, midq, yq, scratch};
                pair_run un = fz;
                un.fused = false, un.y = y2, un.yq = yq2;
                pair_run_fn(&fz);
                pair_run_fn(&un);
                const bool same = s8 ? memcmp(yq, yq2, ny) == 0 : memcmp(y, y2, ny * 4) == 0;
                if (!same) {
                    printf("| %s | %s | %d | fused | WRONG RESULT (differs from unfused) | | |\n",
                           name, dt, threads);
                    failures++;
                }
                run_fn fns[3] = {pair_run_fn, pair_run_fn, NULL};
                void *ctxs[3] = {&fz, &un, NULL};
                int nf = 2;
#ifdef NNE_HAVE_DNNL
                dnnl_pair dp = {{eng, stream, NULL, NULL, NULL, NULL, NULL, ""},
                                {eng, stream, NULL, NULL, NULL, NULL, NULL, ""}};
                if (dnnl_setup(&dp.a, L1, s8 ? dnnl_s8 : dnnl_f32, s8 ? (void *)xq : x,
                               s8 ? (void *)wq1 : w1, s8 ? (void *)bq1 : b1,
                               s8 ? (void *)midq : mid, scale, -10, -5) &&
                    dnnl_setup(&dp.b, L2, s8 ? dnnl_s8 : dnnl_f32, s8 ? (void *)midq : mid,
                               s8 ? (void *)wq2 : w2, s8 ? (void *)bq2 : b2, s8 ? (void *)yq2 : y2,
                               scale, -5, -5))
                    fns[2] = dnnl_pair_fn, ctxs[2] = &dp, nf = 3;
#endif
                result r[3];
                time_n(fns, ctxs, nf, reps, r);
                static const char *const impl[3] = {"nnedge fused", "nnedge unfused",
                                                    "oneDNN (sum of the 2 layers)"};
                for (int k = 0; k < nf; k++)
                    printf("| %s | %s | %d | %s | %.2f | %.2f-%.2f | %.3f |\n", name, dt, threads,
                           impl[k], r[k].med * 1e3, r[k].lo * 1e3, r[k].hi * 1e3,
                           r[k].med / r[0].med);
                fflush(stdout);
#ifdef NNE_HAVE_DNNL
                dnnl_teardown(&dp.a), dnnl_teardown(&dp.b);
#endif
                nne_aligned_free(scratch);
            }
            nne_aligned_free(x), nne_aligned_free(mid), nne_aligned_free(y), nne_aligned_free(y2);
            nne_aligned_free(w1), nne_aligned_free(w2), nne_aligned_free(b1);
            nne_aligned_free(b2), nne_aligned_free(slope), nne_aligned_free(xq);
            nne_aligned_free(midq), nne_aligned_free(yq), nne_aligned_free(yq2);
            nne_aligned_free(wq1), nne_aligned_free(wq2), nne_aligned_free(bq1);
            nne_aligned_free(bq2), nne_aligned_free(rq);
        }
#ifdef NNE_HAVE_DNNL
        dnnl_stream_destroy(stream);
        dnnl_engine_destroy(eng);
#endif
        nne_threadpool_free(pool);
    }
    printf("\n| model | dtype | threads | sessions | ms (median) | ms (min-max) | check |\n"
           "|---|---|---|---|---|---|---|\n");
    bench_encoder(h, w, reps);
    return failures ? 1 : 0;
}

/* ---- main ------------------------------------------------------------------------------ */

/* Row dtypes: "int8 w7" is int8 with weights in [-64, 64] (nnedge quantize --weight-bits 7),
 * which the w7 band kernel (vpmaddubsw, docs/conv.md) runs; oneDNN gets the same weights. */
#define NDT 4
enum { DT_F32, DT_S8, DT_S8W7, DT_BF16 };
static const char *const dtypes[NDT] = {"f32", "int8", "int8 w7", "bf16"};

#ifdef NNE_HAVE_DNNL
/* oneDNN picked one of its reference (plain loop) implementations. */
static bool dnnl_impl_is_ref(const char *impl) { return strstr(impl, "ref") != NULL; }
#endif

typedef struct total {
    double t[2][NDT][2]; /* [part][dtype][impl] seconds at the current thread count */
    double macs[2];
} total;

static void print_row(const char *name, const char *dtype, int threads, const char *impl,
                      double macs, result r, double peak) {
    const double gop = 2 * macs / r.med * 1e-9;
    printf("| %s | %s | %d | %s | %.2f | %.2f-%.2f | %.1f | %.0f%% |\n", name, dtype, threads, impl,
           r.med * 1e3, r.lo * 1e3, r.hi * 1e3, gop, 100 * gop / peak);
    fflush(stdout);
}

/* One ratio table nnedge / oneDNN from t[thread index][layer, encoder, decoder][dtype][impl]. */
static void print_ratios(const char *what, double t[8][18][NDT][2], const layer *layers,
                         int n_layers, const char *only, const int *thread_list, int n_threads) {
    printf("\nnnedge / oneDNN (%s; < 1: nnedge is faster)\n\n| layer |", what);
    for (int dt = 0; dt < NDT; dt++)
        for (int ti = 0; ti < n_threads; ti++) printf(" %s %d thr |", dtypes[dt], thread_list[ti]);
    printf("\n|---|");
    for (int c = 0; c < NDT * n_threads; c++) printf("---|");
    printf("\n");
    for (int li = 0; li < 18; li++) {
        if (li >= n_layers && li < 16) continue;
        const char *name = li < 16 ? layers[li].name : li == 16 ? "**encoder**" : "**decoder**";
        if (only && li < 16 && !strstr(name, only)) continue;
        printf("| %s |", name);
        for (int dt = 0; dt < NDT; dt++)
            for (int ti = 0; ti < n_threads; ti++) {
                const double a = t[ti][li][dt][0], b = t[ti][li][dt][1];
                if (a > 0 && b > 0)
                    printf(" %.2f |", a / b);
                else
                    printf(" - |");
            }
        printf("\n");
    }
}

int main(int argc, char **argv) {
    int reps = 20;
    const char *only = NULL;
    int32_t height = 512, width = 768;
    int thread_list[8] = {1, 2}, n_threads = 2;
    bool pairs = false, s8_per_call = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--gap-ms") == 0 && i + 1 < argc) {
            gap_ns = (long)(atof(argv[++i]) * 1e6);
        } else if (strcmp(argv[i], "--blocked") == 0) {
            blocked = true;
        } else if (strcmp(argv[i], "--s8-per-call") == 0) {
            s8_per_call = true;
        } else if (strcmp(argv[i], "--s8-prelu") == 0) {
            g_s8_prelu = true;
        } else if (strcmp(argv[i], "--pairs") == 0) {
            pairs = true;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--height") == 0 && i + 1 < argc) {
            height = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--width") == 0 && i + 1 < argc) {
            width = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            n_threads = 0;
            for (char *t = strtok(argv[++i], ","); t && n_threads < 8; t = strtok(NULL, ",")) {
                int v = atoi(t);
                if (v < 1 || v > 64) {
                    fprintf(stderr, "bench_conv: bad thread count %s\n", t);
                    return 2;
                }
                thread_list[n_threads++] = v;
            }
        } else {
            fprintf(stderr, "usage: bench_conv [--reps N] [--threads 1,2] [--only NAME] "
                            "[--height H --width W] [--gap-ms MS] [--blocked] [--pairs] "
                            "[--s8-per-call] [--s8-prelu]\n");
            return 2;
        }
    }
    if (reps < 1 || height < 21 || width < 21 || gap_ns < 0 || gap_ns > 1000000000L) {
        fprintf(stderr, "bench_conv: --reps >= 1, sizes >= 21, --gap-ms 0..1000\n");
        return 2;
    }
    const uint32_t cpu = nne_cpu_features();
    if (!(cpu & NNE_CPU_AVX2) || !(cpu & NNE_CPU_FMA)) {
        fprintf(stderr, "bench_conv: needs AVX2+FMA to measure the peak\n");
        return 1;
    }
    layer layers[16];
    const int n_layers = load_layers(height, width, layers, 16);
    char feat[256];
    printf("# bench_conv: cae-seed at %dx%d\n\nCPU features: %s; ISA: %s; int8 kernel: %s; "
           "bf16 path: %s; AMX: %s\n\n",
           height, width, nne_cpu_features_str(cpu, feat, sizeof feat), nne_ops_isa(),
           nne_conv_s8_isa(), nne_conv_bf16_isa(),
           !(cpu & NNE_CPU_AMX_TILE) ? "none"
           : nne_cpu_request_amx()   ? "usable (permission granted)"
                                     : "refused by the OS");
    printf("Timing: %s, %.1f ms pause before each timed call, %d reps\n\n",
           blocked ? "blocked (all reps of one implementation, then the other)"
                   : "round-robin (nnedge and oneDNN alternating call by call)",
           (double)gap_ns * 1e-6, reps);
    void (*omp_set_threads)(int) = NULL;
#ifdef NNE_HAVE_DNNL
    omp_set_threads = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    const dnnl_version_t *ver = dnnl_version();
    printf("oneDNN %d.%d.%d (convolution / deconvolution primitives, %s)\n\n", ver->major,
           ver->minor, ver->patch, omp_set_threads ? "OpenMP threads set per row" : "default");
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_engine_create(&eng, dnnl_cpu, 0);
    dnnl_stream_create(&stream, eng, dnnl_stream_default_flags);
#endif
    if (pairs) return bench_pairs(layers, n_layers, thread_list, n_threads, reps, height, width);
    nne_threadpool *pools[65] = {0};
    double peak_f[65] = {0}, peak_i[65] = {0};
    for (int i = 0; i < n_threads; i++) {
        const int t = thread_list[i];
        if (!pools[t] && nne_threadpool_create(t, &pools[t]) != NNE_OK) {
            fprintf(stderr, "bench_conv: %s\n", nne_last_error());
            return 1;
        }
        peak_f[t] = measure_peak(pools[t], t, 0);
        peak_i[t] = measure_peak_madd(pools[t], t);
        printf("Peak, %d thread(s): f32 FMA %.1f GFLOP/s, int16 vpmaddwd %.1f GOP/s\n\n", t,
               peak_f[t], peak_i[t]);
    }
    printf("| layer | dtype | threads | impl | ms (median) | ms (min-max) | GOP/s | of peak |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    int failures = 0;
    /* medians [thread index][layer, then encoder / decoder total][dtype][impl], 0 = none */
    static double med[8][18][NDT][2], mins[8][18][NDT][2]; /* mins: the same for the minima */
    /* oneDNN's int8 outputs that differ from exact int8 arithmetic, of 256 sampled, and the
     * largest difference in output LSBs, per [layer][dtype]; -1: not checked */
    static int dnnl_bad[16][3], dnnl_maxdiff[16][3];
    static int dnnl_bad_halved[16][3]; /* the same against exact math on halved weights */
    /* oneDNN's bf16 implementation per layer, and its outputs outside the tolerance of the
     * bf16 semantics (of 256 sampled; -1: not checked) */
    static char dnnl_bf16_impl[16][64];
    static int dnnl_bf16_bad[16];
    for (int li = 0; li < 16; li++) dnnl_bf16_bad[li] = -1;
    for (int li = 0; li < 16; li++)
        for (int dt = 0; dt < 3; dt++) dnnl_bad[li][dt] = -1;
    for (int ti = 0; ti < n_threads; ti++) {
        const int threads = thread_list[ti];
        if (omp_set_threads) omp_set_threads(threads);
        total tot;
        memset(&tot, 0, sizeof tot);
        bool have_dnnl[2][NDT] = {{true, true, true, true}, {true, true, true, true}};
        for (int li = 0; li < n_layers; li++) {
            const layer *L = &layers[li];
            if (only && !strstr(L->name, only)) continue;
            const nne_conv2d_geom *g = &L->g;
            const int part = strcmp(L->part, "decoder") == 0;
            tot.macs[part] += L->macs;
            const size_t nx = (size_t)g->n * g->ih * g->iw * g->ic;
            const size_t ny = (size_t)g->n * g->oh * g->ow * g->oc;
            const size_t nw = (size_t)g->oc * g->kh * g->kw * g->ic;
            float *x = nne_aligned_alloc(nx * 4), *w = nne_aligned_alloc(nw * 4);
            float *b = nne_aligned_alloc((size_t)g->oc * 4), *y = nne_aligned_alloc(ny * 4);
            float *slope = nne_aligned_alloc((size_t)g->oc * 4);
            int8_t *xq = nne_aligned_alloc(nx), *wq = nne_aligned_alloc(nw);
            int8_t *wq7 = nne_aligned_alloc(nw);
            int8_t *yq = nne_aligned_alloc(ny);
            int32_t *bq = nne_aligned_alloc((size_t)g->oc * 4);
            nne_requant *rq = nne_aligned_alloc((size_t)g->oc * sizeof *rq);
            nne_bf16 *xb = nne_aligned_alloc(nx * 2), *wb = nne_aligned_alloc(nw * 2);
            float *xr = nne_aligned_alloc(nx * 4), *wr = nne_aligned_alloc(nw * 4);
            for (size_t i = 0; i < nx; i++)
                x[i] = (float)rnd(), xq[i] = (int8_t)(rnd() * 256 - 128);
            for (size_t i = 0; i < nw; i++)
                w[i] = (float)(rnd() - 0.5) * 0.2f, wq[i] = (int8_t)(rnd() * 254 - 127),
                wq7[i] = (int8_t)(rnd() * 128 - 64);
            /* bf16: the same x and w rounded; xr, wr their f32 values for the check */
            nne_f32_to_bf16_array(x, xb, nx);
            nne_f32_to_bf16_array(w, wb, nw);
            nne_bf16_to_f32_array(xb, xr, nx);
            nne_bf16_to_f32_array(wb, wr, nw);
            for (int32_t o = 0; o < g->oc; o++) {
                b[o] = (float)(rnd() - 0.5), slope[o] = 0.25f;
                bq[o] = (int32_t)(rnd() * 2000 - 1000);
            }
            /* int8: M = 2^-12 (x zero point -10, y zero point -5; per-tensor so that oneDNN
             * gets the same single scale), ReLU clamp where the f32 model has a PReLU. */
            const float scale = 1.0f / 4096;
            nne_qoutput out;
            nne_requant rq_neg;
            const float shared = 0.25f;
            const bool fuse = L->prelu && g_s8_prelu;
            if (nne_qoutput_init(&out, rq, 1, 1.0f, &scale, 1.0f, -5, false,
                                 L->prelu && !fuse ? NNE_QACT_RELU : NNE_QACT_NONE) ||
                (fuse && nne_qoutput_fuse_prelu(&out, &rq_neg, 1, 1.0f, &scale, 1.0f, &shared, 1))) {
                fprintf(stderr, "bench_conv: %s\n", nne_last_error());
                return 1;
            }
            const nne_conv_act act = {L->prelu ? NNE_CONV_ACT_PRELU : NNE_CONV_ACT_NONE, slope,
                                      g->oc};
            for (int dt = 0; dt < NDT; dt++) {
                const bool s8 = dt == DT_S8 || dt == DT_S8W7, bf16 = dt == DT_BF16;
                int8_t *wqd = dt == DT_S8W7 ? wq7 : wq;
                size_t ss =
                    s8     ? (L->transposed ? nne_conv_transpose2d_s8_scratch_size(g, threads)
                                            : nne_conv2d_s8_scratch_size(g, threads))
                    : bf16 ? (L->transposed ? nne_conv_transpose2d_bf16_scratch_size(g, threads)
                                            : nne_conv2d_bf16_scratch_size(g, threads))
                           : (L->transposed ? nne_conv_transpose2d_f32_scratch_size(g, threads)
                                            : nne_conv2d_f32_scratch_size(g, threads));
                void *scratch = nne_aligned_alloc(ss);
                /* int8: weights packed once, outside the timed calls, as oneDNN's reorder
                 * (dnnl_setup); --s8-per-call times the per-call functions instead */
                nne_conv_s8_prep *prep = NULL;
                if (s8 && !s8_per_call &&
                    nne_conv_s8_prep_create(g, L->transposed, -10, wqd, bq, &out, &prep)) {
                    fprintf(stderr, "bench_conv: %s\n", nne_last_error());
                    return 1;
                }
                nne_run r = {.L = L,
                             .pool = pools[threads],
                             .s8 = s8,
                             .bf16 = bf16,
                             .xb = xb,
                             .wb = wb,
                             .x = bf16 ? xr : x,
                             .w = bf16 ? wr : w,
                             .b = b,
                             .y = y,
                             .act = &act,
                             .xq = xq,
                             .wq = wqd,
                             .x_zp = -10,
                             .bq = bq,
                             .out = &out,
                             .yq = yq,
                             .prep = prep,
                             .scratch = scratch};
                nne_run_fn(&r);
                const char *dtype = dtypes[dt];
                const double peak = s8 ? peak_i[threads] : peak_f[threads];
                const bool ok = verify(&r);
                if (!ok) {
                    printf("| %s | %s | %d | nnedge | WRONG RESULT | | | |\n", L->name, dtype,
                           threads);
                    failures++;
                }
                bool dnnl_ok = false;
#ifdef NNE_HAVE_DNNL
                dnnl_run d = {eng, stream, NULL, NULL, NULL, NULL, NULL, ""};
                dnnl_ok = dnnl_setup(&d, L,
                                     s8     ? dnnl_s8
                                     : bf16 ? dnnl_bf16
                                            : dnnl_f32,
                                     s8     ? (void *)xq
                                     : bf16 ? (void *)xb
                                            : x,
                                     s8     ? (void *)wqd
                                     : bf16 ? (void *)wb
                                            : w,
                                     s8 ? (void *)bq : b, s8 ? (void *)yq : y, scale, -10, -5);
                if (bf16 && dnnl_ok) snprintf(dnnl_bf16_impl[li], 64, "%s", d.impl);
                /* a reference implementation is not a peer: not timed (header comment) */
                const bool dnnl_ref = dnnl_ok && bf16 && dnnl_impl_is_ref(d.impl);
                if (dnnl_ref) dnnl_ok = false;
#endif
                result rn = {0, 0, 0}, rd = {0, 0, 0};
                /* nnedge and oneDNN alternate rep by rep (time_pair) */
#ifdef NNE_HAVE_DNNL
                time_pair(nne_run_fn, &r, dnnl_ok ? dnnl_run_fn : NULL, &d, ok ? reps : 1, &rn,
                          &rd);
#else
                (void)dnnl_ok;
                time_pair(nne_run_fn, &r, NULL, NULL, ok ? reps : 1, &rn, &rd);
#endif
                if (ok) {
                    tot.t[part][dt][0] += rn.med;
                    med[ti][li][dt][0] = rn.med;
                    mins[ti][li][dt][0] = rn.lo;
                    mins[ti][16 + part][dt][0] += rn.lo;
                    print_row(L->name, dtype, threads, "nnedge", L->macs, rn, peak);
                }
                nne_aligned_free(scratch);
                nne_conv_s8_prep_free(prep);
#ifdef NNE_HAVE_DNNL
                if (dnnl_ok) {
                    if (bf16 && ti == n_threads - 1) /* oneDNN wrote y last */
                        dnnl_bf16_bad[li] = check_output(&r, yq, y, NULL, false, false);
                    /* oneDNN wrote yq last (time_pair ends with it): how exact is it? */
                    if (s8 && ti == n_threads - 1)
                    {
                        dnnl_bad[li][dt] =
                            check_output(&r, yq, y, &dnnl_maxdiff[li][dt], false, false);
                        dnnl_bad_halved[li][dt] = check_output(&r, yq, y, NULL, true, false);
                    }
                    tot.t[part][dt][1] += rd.med;
                    med[ti][li][dt][1] = rd.med;
                    mins[ti][li][dt][1] = rd.lo;
                    mins[ti][16 + part][dt][1] += rd.lo;
                    print_row(L->name, dtype, threads, "oneDNN", L->macs, rd, peak);
                } else {
                    if (dnnl_ref)
                        printf("| %s | %s | %d | oneDNN | not timed: reference implementation "
                               "%s | | | |\n",
                               L->name, dtype, threads, d.impl);
                    else
                        printf("| %s | %s | %d | oneDNN | unsupported%s | | | |\n", L->name, dtype,
                               threads,
                               dnnl_last == dnnl_unimplemented
                                   ? " (dnnl_unimplemented: no implementation for this CPU)"
                                   : "");
                    have_dnnl[part][dt] = false;
                }
                dnnl_teardown(&d);
#else
                have_dnnl[part][dt] = false;
#endif
            }
            nne_aligned_free(x), nne_aligned_free(w), nne_aligned_free(b), nne_aligned_free(y);
            nne_aligned_free(slope), nne_aligned_free(xq), nne_aligned_free(wq);
            nne_aligned_free(wq7), nne_aligned_free(xb), nne_aligned_free(wb);
            nne_aligned_free(xr), nne_aligned_free(wr);
            nne_aligned_free(yq), nne_aligned_free(bq), nne_aligned_free(rq);
        }
        for (int part = 0; part < 2; part++)
            for (int dt = 0; dt < NDT; dt++)
                for (int im = 0; im < 2; im++) {
                    if (tot.t[part][dt][im] <= 0 || (im && !have_dnnl[part][dt])) continue;
                    char name[64];
                    snprintf(name, sizeof name, "**%s total**", part ? "decoder" : "encoder");
                    result r = {tot.t[part][dt][im], 0, 0};
                    med[ti][16 + part][dt][im] = r.med;
                    const double gop = 2 * tot.macs[part] / r.med * 1e-9;
                    const double peak =
                        dt == DT_S8 || dt == DT_S8W7 ? peak_i[threads] : peak_f[threads];
                    printf("| %s | %s | %d | %s | %.2f | (sum of medians) | %.1f | %.0f%% |\n",
                           name, dtypes[dt], threads, im ? "oneDNN" : "nnedge", r.med * 1e3, gop,
                           100 * gop / peak);
                }
    }
    /* The ratio tables: nnedge / oneDNN measured in this run (< 1: nnedge faster). */
    print_ratios("ratio of the medians above", med, layers, n_layers, only, thread_list, n_threads);
    print_ratios("ratio of the minima above; totals: sums of the minima: the least disturbed "
                 "call of each, when other processes load the machine",
                 mins, layers, n_layers, only, thread_list, n_threads);
    /* Exactness of oneDNN's int8 results. nnedge's are exact by construction (checked above);
     * oneDNN's AVX2 int8 kernels multiply with vpmaddubsw (u8 x s8 pairs summed into a
     * saturating int16), and for s8 sources they halve the weights first (its "weights scale
     * adjustment" on ISAs without VNNI), so their results can differ from exact int8 math. */
    bool any = false;
    for (int li = 0; li < n_layers; li++)
        for (int dt = 1; dt < 3; dt++) any |= dnnl_bad[li][dt] >= 0;
    if (any) {
        printf("\noneDNN int8 against exact int8 arithmetic (%d threads): outputs that differ, of "
               "256 sampled per layer, the largest difference in output LSBs, and the outputs "
               "that differ from exact arithmetic on halved weights 2 * rint(w / 2)\n\n| layer |",
               thread_list[n_threads - 1]);
        for (int dt = 1; dt < 3; dt++)
            printf(" %s differ | %s max diff | %s differ, halved w |", dtypes[dt], dtypes[dt],
                   dtypes[dt]);
        printf("\n|---|---|---|---|---|---|---|\n");
        for (int li = 0; li < n_layers; li++) {
            if (only && !strstr(layers[li].name, only)) continue;
            printf("| %s |", layers[li].name);
            for (int dt = 1; dt < 3; dt++) {
                if (dnnl_bad[li][dt] < 0)
                    printf(" - | - | - |");
                else
                    printf(" %d | %d | %d |", dnnl_bad[li][dt], dnnl_maxdiff[li][dt],
                           dnnl_bad_halved[li][dt]);
            }
            printf("\n");
        }
    }
    /* oneDNN's bf16: which implementation, and whether it computes the same thing */
    bool any_bf16 = false;
    for (int li = 0; li < n_layers; li++) any_bf16 |= dnnl_bf16_impl[li][0] != 0;
    if (any_bf16) {
        printf("\noneDNN bf16 (bf16 source and weights, f32 bias and destination): the "
               "implementation it chose, and its outputs outside NNE_CONV_BF16_TOL of the bf16 "
               "semantics, of 256 sampled (- : not timed, so not checked)\n\n"
               "| layer | oneDNN bf16 impl | outside tolerance |\n|---|---|---|\n");
        for (int li = 0; li < n_layers; li++) {
            if (only && !strstr(layers[li].name, only)) continue;
            if (dnnl_bf16_bad[li] < 0)
                printf("| %s | %s | - |\n", layers[li].name, dnnl_bf16_impl[li]);
            else
                printf("| %s | %s | %d |\n", layers[li].name, dnnl_bf16_impl[li],
                       dnnl_bf16_bad[li]);
        }
    }
    for (int t = 0; t < 65; t++) nne_threadpool_free(pools[t]);
    return failures ? 1 : 0;
}
