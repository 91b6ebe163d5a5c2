/* Cross-layer equalization (nne_equalize_graph): the equalized graph computes the same
 * function on cpu-ref (conv2d and conv_transpose2d pairs through per-channel PReLU, ReLU and
 * leaky ReLU), a wrongly applied scale (the wrong axis of the second layer, no compensation)
 * is caught by the same comparison, each pair's two channel ranges end up equal, the channel
 * range spread shrinks, and pairs that must be left alone are (no activation between, a
 * tensor with a second reader). Activation equalization: the same function, the measured
 * channel ranges afterwards as the rule says. nne_quantize_graph with equalize records it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/passes.h"
#include "testutil.h"

static nne_test_rng g_rng;

static float urand(float lo, float hi) {
    return lo + (hi - lo) * (float)nne_test_rng_uniform(&g_rng);
}

/* A conv-like layer [oc][3][3][ic] whose output channels have ranges 2^-4 .. 2^4 apart (the
 * imbalance equalization removes), a bias, then `act` (-1: none). Returns the output. */
static int32_t layer(nne_graph *g, const char *name, nne_op_type op, int32_t x, int32_t ic,
                     int32_t oc, int stride, int act) {
    char wn[64], bn[64], sn[64], an[64], on[64];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    snprintf(sn, sizeof sn, "%s.act.slope", name);
    snprintf(an, sizeof an, "%s.act", name);
    snprintf(on, sizeof on, "%s:out", name);
    const size_t per = (size_t)9 * ic;
    float *w = malloc((size_t)oc * per * sizeof *w), *b = malloc((size_t)oc * sizeof *b);
    for (int32_t c = 0; c < oc; c++) {
        const float m = ldexpf(1.0f, (int)nne_test_rng_int(&g_rng, -4, 4));
        for (size_t i = 0; i < per; i++) w[(size_t)c * per + i] = m * urand(-1.0f, 1.0f);
        b[c] = m * urand(-0.5f, 0.5f);
    }
    int32_t wt = -1, bt = -1, y = -1;
    CHECK_OK(nne_graph_add_constant(g, wn, NNE_F32, nne_shape_4d(oc, 3, 3, ic), w, &wt));
    CHECK_OK(nne_graph_add_constant(g, bn, NNE_F32, nne_shape_1d(oc), b, &bt));
    free(w);
    free(b);
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv = (nne_conv_params){.kernel = {3, 3},
                               .stride = {stride, stride},
                               .dilation = {1, 1},
                               .pad_mode = NNE_PAD_VALID,
                               .groups = 1};
    const int32_t in[3] = {x, wt, bt};
    CHECK_OK(nne_graph_add_node(g, name, op, &p, in, 3, on, &y));
    if (act < 0) return y;
    nne_op_params ap;
    memset(&ap, 0, sizeof ap);
    int32_t ain[2] = {y, -1}, n_in = 1;
    nne_op_type aop = NNE_OP_PRELU;
    if (act == 0) { /* per-channel PReLU, negative slopes included */
        float s[64];
        for (int32_t c = 0; c < oc; c++) s[c] = urand(-0.5f, 0.9f);
        CHECK_OK(nne_graph_add_constant(g, sn, NNE_F32, nne_shape_1d(oc), s, &ain[1]));
        n_in = 2;
    } else if (act == 1) {
        aop = NNE_OP_RELU;
    } else {
        aop = NNE_OP_LEAKY_RELU;
        ap.leaky.alpha = 0.1f;
    }
    int32_t z = -1;
    char aon[64];
    snprintf(aon, sizeof aon, "%s.act:out", name);
    CHECK_OK(nne_graph_add_node(g, an, aop, &ap, ain, n_in, aon, &z));
    return z;
}

/* conv -> PReLU -> conv(s2) -> ReLU -> transposed(s2) -> leaky -> transposed -> PReLU -> conv:
 * four pairs (conv/conv, conv/transposed, transposed/transposed, transposed/conv). */
static nne_graph *build(unsigned long long seed) {
    nne_test_rng_seed(&g_rng, seed);
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("eq", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 17, 19, 3), &x));
    x = layer(g, "a", NNE_OP_CONV2D, x, 3, 6, 1, 0);
    x = layer(g, "b", NNE_OP_CONV2D, x, 6, 8, 2, 1);
    x = layer(g, "c", NNE_OP_CONV_TRANSPOSE2D, x, 8, 7, 2, 2);
    x = layer(g, "d", NNE_OP_CONV_TRANSPOSE2D, x, 7, 5, 1, 0);
    x = layer(g, "e", NNE_OP_CONV2D, x, 5, 3, 1, -1);
    CHECK_OK(nne_graph_mark_output(g, x));
    CHECK_OK(nne_graph_infer(g));
    return g;
}

/* max |y_a - y_b| / max |y_a| of the first outputs on one random input. */
static double rel_diff(nne_graph *a, nne_graph *b) {
    nne_session *sa = NULL, *sb = NULL;
    CHECK_OK(nne_session_create(a, nne_backend_cpu_ref(), &sa));
    CHECK_OK(nne_session_create(b, nne_backend_cpu_ref(), &sb));
    if (!sa || !sb) {
        nne_session_free(sa);
        nne_session_free(sb);
        return INFINITY;
    }
    const nne_tensor *it = nne_session_input_tensor(sa, 0), *ot = nne_session_output_tensor(sa, 0);
    const size_t ni = (size_t)nne_shape_numel(&it->shape), no = (size_t)nne_shape_numel(&ot->shape);
    float *x = nne_session_input(sa, 0);
    for (size_t i = 0; i < ni; i++) x[i] = urand(0.0f, 1.0f);
    memcpy(nne_session_input(sb, 0), x, ni * sizeof *x);
    CHECK_OK(nne_session_run(sa));
    CHECK_OK(nne_session_run(sb));
    const float *ya = nne_session_output(sa, 0), *yb = nne_session_output(sb, 0);
    double m = 0, d = 0;
    for (size_t i = 0; i < no; i++) {
        m = fmax(m, fabs(ya[i]));
        d = fmax(d, fabs((double)ya[i] - yb[i]));
    }
    nne_session_free(sa);
    nne_session_free(sb);
    return d / fmax(m, 1e-30);
}

static const float *wdata(const nne_graph *g, const char *layer, nne_shape *s) {
    char n[64];
    snprintf(n, sizeof n, "%s.weight", layer);
    const int32_t t = nne_graph_find_tensor(g, n);
    CHECK(t >= 0);
    if (t < 0) return NULL;
    *s = g->tensors[t].shape;
    return g->tensors[t].data;
}

/* The imbalance per-tensor weight quantization suffers from, for the tensor between layers a
 * and b: log2(max_c / min_c) of a's output-channel ranges r_a[c] and of b's input-channel
 * ranges r_b[c], the larger of the two. When rel is not NULL it receives the largest
 * |r_a[c] / r_b[c] - 1|. */
static double spread(const nne_graph *g, const char *a, const char *b, double *rel) {
    nne_shape sa, sb;
    const float *wa = wdata(g, a, &sa), *wb = wdata(g, b, &sb);
    if (!wa || !wb) return 0;
    const int32_t ch = (int32_t)sa.dim[0];
    const size_t per = (size_t)nne_shape_numel(&sa) / (size_t)ch,
                 rows = (size_t)nne_shape_numel(&sb) / (size_t)ch;
    double lo_a = INFINITY, hi_a = 0, lo_b = INFINITY, hi_b = 0;
    if (rel) *rel = 0;
    for (int32_t c = 0; c < ch; c++) {
        double ra = 0, rb = 0;
        for (size_t i = 0; i < per; i++) ra = fmax(ra, fabs(wa[(size_t)c * per + i]));
        for (size_t r = 0; r < rows; r++) rb = fmax(rb, fabs(wb[r * (size_t)ch + c]));
        lo_a = fmin(lo_a, ra), hi_a = fmax(hi_a, ra);
        lo_b = fmin(lo_b, rb), hi_b = fmax(hi_b, rb);
        if (rel) *rel = fmax(*rel, fabs(ra / rb - 1.0));
    }
    return fmax(log2(hi_a / lo_a), log2(hi_b / lo_b));
}

static const char *const k_pairs[4][2] = {{"a", "b"}, {"b", "c"}, {"c", "d"}, {"d", "e"}};

static void test_same_function(void) {
    for (unsigned long long seed = 1; seed <= 4; seed++) {
        nne_graph *g = build(seed), *e = NULL;
        nne_equalize_info info;
        CHECK_OK(nne_equalize_graph(g, NULL, &e, &info));
        if (!e) {
            nne_graph_free(g);
            continue;
        }
        CHECK_MSG(info.pairs == 4, "%d pairs", (int)info.pairs);
        CHECK(info.sweeps >= 2 && info.sweeps < 64);
        const double d = rel_diff(g, e);
        CHECK_MSG(d < 1e-5, "seed %llu: equalized output off by %g (relative)", seed, d);
        double before = 0, after = 0;
        for (int p = 0; p < 4; p++) {
            double rel = 0;
            before += spread(g, k_pairs[p][0], k_pairs[p][1], NULL);
            after += spread(e, k_pairs[p][0], k_pairs[p][1], &rel);
            /* converged: every channel's two ranges equal (to the stopping tolerance, which
             * later sweeps of the neighbouring pairs may disturb a little) */
            CHECK_MSG(rel < 1e-2, "seed %llu pair %s/%s: ranges differ by %g", seed,
                      k_pairs[p][0], k_pairs[p][1], rel);
        }
        if (getenv("EQ_DEBUG")) fprintf(stderr, "spread %.2f -> %.2f\n", before, after);
        CHECK_MSG(after < 0.75 * before, "seed %llu: spread %.2f -> %.2f (log2)", seed, before,
                  after);
        /* the weights did change, and the metadata and names are kept */
        nne_shape s; /* set by wdata before its size is read (argument order is unspecified) */
        const float *wg = wdata(g, "b", &s), *we = wdata(e, "b", &s);
        CHECK(memcmp(wg, we, (size_t)nne_shape_numel(&s) * sizeof(float)) != 0);
        nne_graph_free(e);
        nne_graph_free(g);
    }
}

/* The comparison catches a scale applied to the wrong axis of the second layer (its output
 * channels instead of its input channels), and a scale not compensated at all. */
static void test_mutants_caught(void) {
    nne_graph *g = build(7), *e = NULL;
    CHECK_OK(nne_equalize_graph(g, NULL, &e, NULL));
    if (!e) {
        nne_graph_free(g);
        return;
    }
    for (int mode = 0; mode < 2; mode++) {
        nne_graph *m = NULL;
        CHECK_OK(nne_equalize_graph(g, NULL, &m, NULL)); /* a fresh copy to break */
        if (!m) break;
        /* undo channel 2 of the pair c -> d on d's side and redo it on d's axis 0 */
        nne_shape sc, sd;
        const float *wc0 = wdata(g, "c", &sc), *wc1 = wdata(m, "c", &sc);
        float *wd = (float *)wdata(m, "d", &sd);
        const size_t per = (size_t)nne_shape_numel(&sc) / (size_t)sc.dim[0];
        const float s = wc0[2 * per] / wc1[2 * per]; /* the scale of channel 2 */
        const int32_t ic = (int32_t)sd.dim[3];
        const size_t rows = (size_t)nne_shape_numel(&sd) / (size_t)ic,
                     per_d = (size_t)nne_shape_numel(&sd) / (size_t)sd.dim[0];
        for (size_t r = 0; r < rows; r++) wd[r * (size_t)ic + 2] /= s;
        if (mode == 0)
            for (size_t i = 0; i < per_d; i++) wd[2 * per_d + i] *= s;
        CHECK(fabsf(s - 1.0f) > 0.1f);
        const double d = rel_diff(g, m);
        CHECK_MSG(d > 1e-2, "mutant %d: output off by only %g", mode, d);
        nne_graph_free(m);
    }
    nne_graph_free(e);
    nne_graph_free(g);
}

/* Left alone: two convolutions with no activation between, and a pair whose activation
 * output is also a graph output. */
static void test_left_alone(void) {
    nne_test_rng_seed(&g_rng, 11);
    nne_graph *g = NULL, *e = NULL;
    CHECK_OK(nne_graph_create("alone", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 15, 15, 3), &x));
    x = layer(g, "a", NNE_OP_CONV2D, x, 3, 6, 1, -1);
    x = layer(g, "b", NNE_OP_CONV2D, x, 6, 6, 1, 0);
    CHECK_OK(nne_graph_mark_output(g, x)); /* b's PReLU output: read outside */
    x = layer(g, "c", NNE_OP_CONV2D, x, 6, 3, 1, -1);
    CHECK_OK(nne_graph_mark_output(g, x));
    nne_equalize_info info = {-1, -1};
    CHECK_OK(nne_equalize_graph(g, NULL, &e, &info));
    CHECK(info.pairs == 0 && info.sweeps == 0);
    if (e) {
        for (int32_t t = 0; t < g->n_tensors; t++)
            if (g->tensors[t].kind == NNE_TENSOR_CONSTANT) {
                const int32_t u = nne_graph_find_tensor(e, g->tensors[t].name);
                CHECK(u >= 0 && memcmp(g->tensors[t].data, e->tensors[u].data,
                                       nne_tensor_nbytes(&g->tensors[t])) == 0);
            }
        CHECK(e->n_outputs == 2);
    }
    nne_graph_free(e);
    nne_graph_free(g);
}

static nne_status sample(void *ctx, int32_t i, float *x) {
    (void)ctx;
    nne_test_rng r;
    nne_test_rng_seed(&r, 100 + (unsigned long long)i);
    for (int k = 0; k < 17 * 19 * 3; k++) x[k] = (float)nne_test_rng_uniform(&r);
    return NNE_OK;
}

/* Per-channel ranges (max - min, last axis) of every activation of g over samples 0 and 1,
 * [n_tensors] arrays (NULL: constants and inputs). */
static float **measure_ranges(nne_graph *g) {
    nne_graph *x = NULL;
    nne_session *ss = NULL;
    float **r = calloc((size_t)g->n_tensors, sizeof *r), **lo = calloc((size_t)g->n_tensors, sizeof *lo);
    CHECK_OK(nne_graph_expose_activations(g, &x));
    if (x) CHECK_OK(nne_session_create(x, nne_backend_cpu_ref(), &ss));
    for (int32_t i = 0; ss && i < 2; i++) {
        CHECK_OK(sample(NULL, i, nne_session_input(ss, 0)));
        CHECK_OK(nne_session_run(ss));
        for (int32_t t = 0; t < g->n_tensors; t++) {
            const nne_tensor *tt = &g->tensors[t];
            if (tt->kind != NNE_TENSOR_ACTIVATION) continue;
            const size_t ch = (size_t)tt->shape.dim[tt->shape.ndim - 1];
            const size_t n = (size_t)nne_shape_numel(&tt->shape);
            if (!r[t]) {
                r[t] = malloc(ch * sizeof(float)), lo[t] = malloc(ch * sizeof(float));
                for (size_t c = 0; c < ch; c++) r[t][c] = -INFINITY, lo[t][c] = INFINITY;
            }
            const float *d = nne_session_tensor_data(ss, nne_graph_find_tensor(x, tt->name));
            for (size_t k = 0; k < n; k++)
                r[t][k % ch] = fmaxf(r[t][k % ch], d[k]), lo[t][k % ch] = fminf(lo[t][k % ch], d[k]);
        }
    }
    for (int32_t t = 0; t < g->n_tensors; t++) {
        if (!r[t]) continue;
        for (int64_t c = 0; c < g->tensors[t].shape.dim[g->tensors[t].shape.ndim - 1]; c++)
            r[t][c] -= lo[t][c];
        free(lo[t]);
    }
    free(lo);
    nne_session_free(ss);
    nne_graph_free(x);
    return r;
}

static void free_ranges(const nne_graph *g, float **r) {
    for (int32_t t = 0; r && t < g->n_tensors; t++) free(r[t]);
    free(r);
}

/* Activation equalization: the same function; afterwards, measured again on the same data,
 * every channel c of a pair has max(rA[c] / max rA, rM[c] / max rM) = (that before)^(1 -
 * alpha) (1 for alpha = 1: as wide as the widest on at least one side) and neither tensor's
 * widest channel grew; bad options are refused. */
static void test_activation_ranges(void) {
    static const char *const k_tensors[4][2] = {
        {"a:out", "a.act:out"}, {"b:out", "b.act:out"}, {"c:out", "c.act:out"}, {"d:out", "d.act:out"}};
    const float alphas[2] = {1.0f, 0.5f};
    for (int ai = 0; ai < 2; ai++) {
        nne_graph *g = build(20 + (unsigned long long)ai), *e = NULL;
        float **r0 = measure_ranges(g);
        nne_equalize_opts eo = {.kind = NNE_EQUALIZE_ACTIVATIONS,
                                .act_range = (const float *const *)r0,
                                .alpha = alphas[ai]};
        nne_equalize_info info;
        CHECK_OK(nne_equalize_graph(g, &eo, &e, &info));
        if (!e) {
            free_ranges(g, r0);
            nne_graph_free(g);
            continue;
        }
        CHECK(info.pairs == 4 && info.sweeps == 1);
        const double d = rel_diff(g, e);
        CHECK_MSG(d < 1e-5, "alpha %g: equalized output off by %g (relative)", alphas[ai], d);
        float **r1 = measure_ranges(e);
        double worst = 0, grew = 0, moved = 0;
        for (int p = 0; p < 4; p++) {
            const int32_t ta = nne_graph_find_tensor(g, k_tensors[p][0]),
                          tm = nne_graph_find_tensor(g, k_tensors[p][1]),
                          ea = nne_graph_find_tensor(e, k_tensors[p][0]),
                          em = nne_graph_find_tensor(e, k_tensors[p][1]);
            CHECK(ta >= 0 && tm >= 0 && ea >= 0 && em >= 0);
            if (ta < 0 || tm < 0 || ea < 0 || em < 0) continue;
            CHECK(r0[ta] && r0[tm] && r1[ea] && r1[em]);
            if (!r0[ta] || !r0[tm] || !r1[ea] || !r1[em]) continue;
            const int64_t ch = g->tensors[ta].shape.dim[3];
            float m0a = 0, m0m = 0, m1a = 0, m1m = 0;
            for (int64_t c = 0; c < ch; c++) {
                m0a = fmaxf(m0a, r0[ta][c]), m0m = fmaxf(m0m, r0[tm][c]);
                m1a = fmaxf(m1a, r1[ea][c]), m1m = fmaxf(m1m, r1[em][c]);
            }
            grew = fmax(grew, fmax(m1a / m0a, m1m / m0m) - 1.0);
            for (int64_t c = 0; c < ch; c++) {
                const double n0 = fmax(r0[ta][c] / m0a, r0[tm][c] / m0m),
                             n1 = fmax(r1[ea][c] / m1a, r1[em][c] / m1m);
                worst = fmax(worst, fabs(n1 - pow(n0, 1.0 - alphas[ai])));
                moved = fmax(moved, n1 - n0);
            }
        }
        CHECK_MSG(worst < 1e-3, "alpha %g: normalized channel ranges off by %g", alphas[ai],
                  worst);
        CHECK_MSG(grew < 1e-4, "alpha %g: a tensor's widest channel grew by %g", alphas[ai], grew);
        CHECK_MSG(moved > 0.2, "alpha %g: no channel widened (%g)", alphas[ai], moved);
        free_ranges(e, r1);
        free_ranges(g, r0);
        nne_graph_free(e);
        nne_graph_free(g);
    }
    /* refused: no ranges, alpha outside [0, 1], an unknown kind */
    nne_graph *g = build(5), *e = NULL;
    nne_equalize_opts bad = {.kind = NNE_EQUALIZE_ACTIVATIONS};
    CHECK(nne_equalize_graph(g, &bad, &e, NULL) == NNE_ERR_INVALID_ARG && !e);
    float **r = measure_ranges(g);
    bad.act_range = (const float *const *)r;
    bad.alpha = 1.5f;
    CHECK(nne_equalize_graph(g, &bad, &e, NULL) == NNE_ERR_INVALID_ARG && !e);
    bad.kind = (nne_equalize_kind)7;
    bad.alpha = 0.5f;
    CHECK(nne_equalize_graph(g, &bad, &e, NULL) == NNE_ERR_INVALID_ARG && !e);
    free_ranges(g, r);
    nne_graph_free(g);
}

/* nne_quantize_graph with equalize: the metadata, and the quantized weights are those of the
 * equalized graph. */
static void test_quantize_equalized(void) {
    nne_graph *g = build(3), *q = NULL, *q0 = NULL;
    nne_quantize_opts o = {.scheme = NNE_QSCHEME_PER_TENSOR, .n_samples = 2, .sample = sample};
    CHECK_OK(nne_quantize_graph(g, &o, &q0));
    o.equalize = true;
    CHECK_OK(nne_quantize_graph(g, &o, &q));
    if (q && q0) {
        const char *v = nne_graph_get_meta(q, "quant.equalize"),
                   *p = nne_graph_get_meta(q, "quant.equalize_pairs"),
                   *v0 = nne_graph_get_meta(q0, "quant.equalize");
        CHECK(v && strcmp(v, "1") == 0 && p && strcmp(p, "4") == 0);
        CHECK(v0 && strcmp(v0, "0") == 0 && !nne_graph_get_meta(q0, "quant.equalize_pairs"));
        const int32_t a = nne_graph_find_tensor(q, "b.weight"),
                      b = nne_graph_find_tensor(q0, "b.weight");
        CHECK(a >= 0 && b >= 0 && q->tensors[a].quant.scale[0] != q0->tensors[b].quant.scale[0]);
    }
    /* by activation ranges: measured on the calibration samples, recorded with alpha */
    nne_graph *qa = NULL;
    o.equalize_kind = NNE_EQUALIZE_ACTIVATIONS;
    o.equalize_alpha = 0.5f;
    CHECK_OK(nne_quantize_graph(g, &o, &qa));
    if (qa && q) {
        const char *v = nne_graph_get_meta(qa, "quant.equalize"),
                   *al = nne_graph_get_meta(qa, "quant.equalize_alpha");
        CHECK(v && strcmp(v, "activations") == 0 && al && strcmp(al, "0.5") == 0);
        const int32_t a = nne_graph_find_tensor(qa, "b.weight"),
                      b = nne_graph_find_tensor(q, "b.weight");
        CHECK(a >= 0 && b >= 0 && qa->tensors[a].quant.scale[0] != q->tensors[b].quant.scale[0]);
    }
    o.sample = NULL; /* the ranges need samples */
    nne_graph *qn = NULL;
    CHECK(nne_quantize_graph(g, &o, &qn) == NNE_ERR_INVALID_ARG && !qn);
    nne_graph_free(qa);
    nne_graph_free(q);
    nne_graph_free(q0);
    nne_graph_free(g);
}

/* opts.linear: a conv -> conv pair with nothing between (a latent) joins, for either kind; the
 * function stays, and with activations the linear tensor's normalized channel ranges become
 * (before)^(1 - alpha) (its one tensor on both sides). Without the option it stays alone. */
static void test_linear(void) {
    nne_test_rng_seed(&g_rng, 31);
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("linear", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 17, 19, 3), &x));
    x = layer(g, "a", NNE_OP_CONV2D, x, 3, 6, 1, 0);
    x = layer(g, "lat", NNE_OP_CONV2D, x, 6, 5, 1, -1); /* the linear tensor lat:out */
    x = layer(g, "c", NNE_OP_CONV_TRANSPOSE2D, x, 5, 4, 1, 0);
    x = layer(g, "d", NNE_OP_CONV2D, x, 4, 3, 1, -1);
    CHECK_OK(nne_graph_mark_output(g, x));
    CHECK_OK(nne_graph_infer(g));
    float **r0 = measure_ranges(g);
    for (int kind = 0; kind < 2; kind++)
        for (int lin = 0; lin < 2; lin++) {
            nne_equalize_opts eo = {.kind = kind ? NNE_EQUALIZE_ACTIVATIONS : NNE_EQUALIZE_WEIGHTS,
                                    .act_range = kind ? (const float *const *)r0 : NULL,
                                    .alpha = 0.5f,
                                    .linear = lin != 0};
            nne_equalize_info info = {-1, -1};
            nne_graph *e = NULL;
            CHECK_OK(nne_equalize_graph(g, &eo, &e, &info));
            if (!e) continue;
            CHECK_MSG(info.pairs == 2 + lin, "kind %d linear %d: %d pairs", kind, lin,
                      (int)info.pairs);
            const double d = rel_diff(g, e);
            CHECK_MSG(d < 1e-5, "kind %d linear %d: output off by %g", kind, lin, d);
            /* lat's weights move only with the option: lat -> c is the one pair that
             * touches them as its first conv and a -> lat as its second */
            nne_shape sw;
            const float *w0 = wdata(g, "lat", &sw), *w1 = wdata(e, "lat", &sw);
            double dw = 0, m = 0;
            for (int64_t i = 0; i < nne_shape_numel(&sw); i++)
                dw = fmax(dw, fabs((double)w1[i] - w0[i])), m = fmax(m, fabs(w0[i]));
            CHECK_MSG(dw / m > 1e-3, "kind %d linear %d: lat's weights moved %g", kind, lin,
                      dw / m); /* a -> lat scales lat's input channels in every case */
            if (kind == 1) {
                float **r1 = measure_ranges(e);
                const int32_t t0 = nne_graph_find_tensor(g, "lat:out"),
                              t1 = nne_graph_find_tensor(e, "lat:out");
                float m0 = 0, m1 = 0;
                for (int c = 0; c < 5; c++) m0 = fmaxf(m0, r0[t0][c]), m1 = fmaxf(m1, r1[t1][c]);
                double worst = 0, moved = 0;
                for (int c = 0; c < 5; c++) {
                    const double n0 = r0[t0][c] / m0, n1 = r1[t1][c] / m1;
                    worst = fmax(worst, fabs(n1 - (lin ? pow(n0, 0.5) : n0)));
                    moved = fmax(moved, n1 - n0);
                }
                CHECK_MSG(worst < 1e-3, "linear %d: lat:out's normalized ranges off by %g", lin,
                          worst);
                CHECK_MSG(lin ? moved > 0.05 : moved < 1e-4, "linear %d: widened by %g", lin,
                          moved);
                free_ranges(e, r1);
            }
            nne_graph_free(e);
        }
    free_ranges(g, r0);
    nne_graph_free(g);
}

int main(void) {
    NNE_RUN(test_same_function);
    NNE_RUN(test_mutants_caught);
    NNE_RUN(test_left_alone);
    NNE_RUN(test_linear);
    NNE_RUN(test_activation_ranges);
    NNE_RUN(test_quantize_equalized);
    return nne_test_summary();
}
