/* The quantization pass and the cpu-s8 backend: quantized graphs are valid, every node of
 * the int8 run is within one code of the f32 op on the dequantized inputs (an independent
 * oracle: a one-node f32 graph on cpu-ref), whole graphs match f32 within bounds in output
 * steps (and wrong scales / zero points break them), pow2 gives powers of two only, model
 * files round-trip bit-exactly, bias correction removes the mean shift, and unsupported
 * graphs are refused with the reason. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/gemm.h" /* nne_ops_set_isa */
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"
#include "nnedge/qops.h"
#include "testutil.h"

static nne_test_rng g_rng;

static float urand(float lo, float hi) {
    return lo + (hi - lo) * (float)nne_test_rng_uniform(&g_rng);
}

static int32_t add_const(nne_graph *g, const char *name, nne_shape s, float lo, float hi) {
    const int64_t n = nne_shape_numel(&s);
    float *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = urand(lo, hi);
    int32_t t = -1;
    CHECK_OK(nne_graph_add_constant(g, name, NNE_F32, s, d, &t));
    free(d);
    return t;
}

static nne_conv_params conv_p(int k, int stride, nne_pad_mode pm, int pad) {
    nne_conv_params p = {.kernel = {k, k},
                         .stride = {stride, stride},
                         .dilation = {1, 1},
                         .pad = {pad, pad, pad, pad},
                         .pad_mode = pm,
                         .groups = 1};
    return p;
}

static int32_t node(nne_graph *g, const char *name, nne_op_type op, const nne_op_params *p,
                    const int32_t *in, int n) {
    char out[64];
    snprintf(out, sizeof out, "%s.out", name);
    int32_t t = -1;
    CHECK_OK(nne_graph_add_node(g, name, op, p, in, n, out, &t));
    return t;
}

/* Every op the pass supports, two outputs. x [1][12][12][4] in [0, 1]. */
static nne_graph *build_small(unsigned long long seed) {
    nne_test_rng_seed(&g_rng, seed);
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("small", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 12, 12, 4), &x));
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv = conv_p(3, 1, NNE_PAD_SAME, 0);
    const float a1 = sqrtf(6.0f / 36), a2 = sqrtf(6.0f / 72);
    int32_t c1in[3] = {x, add_const(g, "c1.w", nne_shape_4d(8, 3, 3, 4), -a1, a1),
                       add_const(g, "c1.b", nne_shape_1d(8), -0.2f, 0.2f)};
    int32_t c1 = node(g, "c1", NNE_OP_CONV2D, &p, c1in, 3);
    int32_t r1 = node(g, "relu", NNE_OP_RELU, NULL, &c1, 1);
    memset(&p, 0, sizeof p);
    p.pool = (nne_pool_params){.kernel = {2, 2}, .stride = {2, 2}};
    int32_t mp = node(g, "maxpool", NNE_OP_MAXPOOL2D, &p, &r1, 1);
    memset(&p, 0, sizeof p);
    p.conv = conv_p(3, 1, NNE_PAD_SAME, 0);
    int32_t c2in[3] = {mp, add_const(g, "c2.w", nne_shape_4d(8, 3, 3, 8), -a2, a2),
                       add_const(g, "c2.b", nne_shape_1d(8), -0.2f, 0.2f)};
    int32_t c2 = node(g, "c2", NNE_OP_CONV2D, &p, c2in, 3);
    int32_t prin[2] = {c2, add_const(g, "prelu.slope", nne_shape_1d(8), 0.05f, 0.4f)};
    int32_t pr = node(g, "prelu", NNE_OP_PRELU, NULL, prin, 2);
    int32_t gdin[3] = {pr, add_const(g, "gdn.beta", nne_shape_1d(8), 0.8f, 1.2f),
                       add_const(g, "gdn.gamma", nne_shape_2d(8, 8), 0.0f, 0.2f)};
    int32_t gd = node(g, "gdn", NNE_OP_GDN, NULL, gdin, 3);
    memset(&p, 0, sizeof p);
    p.conv = conv_p(3, 2, NNE_PAD_EXPLICIT, 1);
    p.conv.out_pad[0] = p.conv.out_pad[1] = 1;
    int32_t ctin[3] = {gd, add_const(g, "ct.w", nne_shape_4d(4, 3, 3, 8), -a2, a2),
                       add_const(g, "ct.b", nne_shape_1d(4), -0.2f, 0.2f)};
    int32_t ct = node(g, "convt", NNE_OP_CONV_TRANSPOSE2D, &p, ctin, 3);
    int32_t igin[3] = {ct, add_const(g, "igdn.beta", nne_shape_1d(4), 0.8f, 1.2f),
                       add_const(g, "igdn.gamma", nne_shape_2d(4, 4), 0.0f, 0.2f)};
    int32_t ig = node(g, "igdn", NNE_OP_IGDN, NULL, igin, 3);
    int32_t adin[2] = {ig, x};
    int32_t ad = node(g, "add", NNE_OP_ADD, NULL, adin, 2);
    memset(&p, 0, sizeof p);
    p.leaky.alpha = 0.1f;
    int32_t lk = node(g, "leaky", NNE_OP_LEAKY_RELU, &p, &ad, 1);
    memset(&p, 0, sizeof p);
    p.concat.axis = -1;
    int32_t catin[2] = {lk, x};
    int32_t cat = node(g, "concat", NNE_OP_CONCAT, &p, catin, 2);
    int32_t th = node(g, "tanh", NNE_OP_TANH, NULL, &cat, 1);
    memset(&p, 0, sizeof p);
    p.pool = (nne_pool_params){
        .kernel = {3, 3}, .stride = {1, 1}, .pad = {1, 1, 1, 1}, .count_include_pad = 1};
    int32_t ap = node(g, "avgpool", NNE_OP_AVGPOOL2D, &p, &th, 1);
    int32_t r6 = node(g, "relu6", NNE_OP_RELU6, NULL, &ap, 1);
    int32_t fl = node(g, "flatten", NNE_OP_FLATTEN, NULL, &gd, 1);
    int32_t fcin[3] = {fl, add_const(g, "fc.w", nne_shape_2d(5, 288), -0.1f, 0.1f),
                       add_const(g, "fc.b", nne_shape_1d(5), -0.2f, 0.2f)};
    int32_t fc = node(g, "fc", NNE_OP_DENSE, NULL, fcin, 3);
    int32_t sg = node(g, "sigmoid", NNE_OP_SIGMOID, NULL, &fc, 1);
    CHECK_OK(nne_graph_mark_output(g, r6));
    CHECK_OK(nne_graph_mark_output(g, sg));
    CHECK_OK(nne_graph_infer(g));
    return g;
}

/* Calibration / test inputs: image-like values in [0, 1], seeded by index. */
typedef struct sampler {
    size_t n;
    unsigned long long seed;
} sampler;

static nne_status fill_sample(void *ctx, int32_t i, float *x) {
    const sampler *s = ctx;
    nne_test_rng r;
    nne_test_rng_seed(&r, s->seed * 1000 + (unsigned long long)i);
    for (size_t k = 0; k < s->n; k++) x[k] = (float)nne_test_rng_uniform(&r);
    return NNE_OK;
}

static int32_t g_wbits; /* nne_quantize_opts.weight_bits of quantize() */

static nne_graph *quantize(nne_graph *g, nne_qscheme scheme, nne_observer_kind obs, bool bc,
                           int n_samples) {
    sampler sm = {(size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape), 7};
    nne_quantize_opts o = {.scheme = scheme,
                           .observer = {.kind = obs},
                           .bias_correction = bc,
                           .n_samples = n_samples,
                           .sample = fill_sample,
                           .ctx = &sm,
                           .weight_bits = g_wbits};
    nne_graph *q = NULL;
    CHECK_OK(nne_quantize_graph(g, &o, &q));
    return q;
}

/* Run graph g (f32 or quantized) on input sample `i`; outputs as f32 into out[k]. */
static void run_f32(nne_graph *g, const nne_backend *be, int i, float **out) {
    nne_session *s = NULL;
    CHECK_OK(nne_session_create(g, be, &s));
    if (!s) return;
    const size_t n = (size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape);
    float *x = malloc(n * sizeof *x);
    sampler sm = {n, 7}; /* the calibration inputs: minmax ranges then cover every value */
    fill_sample(&sm, i, x);
    CHECK_OK(nne_session_set_input_f32(s, 0, x, n));
    CHECK_OK(nne_session_run(s));
    for (int32_t k = 0; k < g->n_outputs; k++) {
        const size_t m = (size_t)nne_shape_numel(&g->tensors[g->outputs[k]].shape);
        out[k] = malloc(m * sizeof *out[k]);
        CHECK_OK(nne_session_get_output_f32(s, k, out[k], m));
    }
    free(x);
    nne_session_free(s);
}

/* Mean and max |int8 - f32| of every output, in output steps, over 3 inputs. */
static void e2e_error(nne_graph *f, nne_graph *q, double *mean_steps, double *max_steps) {
    *mean_steps = *max_steps = 0;
    for (int i = 0; i < 3; i++) {
        float *yf[4] = {0}, *yq[4] = {0};
        run_f32(f, nne_backend_cpu_ref(), i, yf);
        run_f32(q, nne_backend_cpu_s8(), i, yq);
        for (int32_t k = 0; k < f->n_outputs; k++) {
            const size_t m = (size_t)nne_shape_numel(&f->tensors[f->outputs[k]].shape);
            const double step = q->tensors[q->outputs[k]].quant.scale[0];
            double sum = 0;
            for (size_t j = 0; yf[k] && yq[k] && j < m; j++) {
                const double e = fabs((double)yq[k][j] - yf[k][j]) / step;
                sum += e;
                *max_steps = fmax(*max_steps, e);
            }
            *mean_steps = fmax(*mean_steps, sum / (double)m);
            free(yf[k]);
            free(yq[k]);
        }
    }
}

/* Per-node oracle: each node of the int8 run against the f32 op (cpu-ref, one-node graph) on
 * the dequantized inputs, weights and biases, quantized with the output's parameters: at
 * most one code apart (two roundings: Q31's SRDHM + RDBP, or average pooling's division).
 * A conv with a fused PReLU (its output has no parameters) is checked with that PReLU, as a
 * two-node f32 graph, against the PReLU's output. Returns the largest difference in codes. */
static int per_node_check(nne_graph *q) {
    nne_graph *x = NULL;
    nne_session *s = NULL;
    CHECK_OK(nne_graph_expose_activations(q, &x));
    CHECK_OK(nne_session_create(x, nne_backend_cpu_s8(), &s));
    if (!s) return 999;
    const size_t n = (size_t)nne_shape_numel(&x->tensors[x->inputs[0]].shape);
    float *in = malloc(n * sizeof *in);
    sampler sm = {n, 5};
    fill_sample(&sm, 0, in);
    CHECK_OK(nne_session_set_input_f32(s, 0, in, n));
    CHECK_OK(nne_session_run(s));
    free(in);
    int worst = 0;
    for (int32_t i = 0; i < x->n_nodes; i++) {
        const nne_node *nd = &x->nodes[i];
        if (!x->tensors[nd->inputs[0]].quant.count) continue; /* fused: with its conv */
        const int32_t fused = x->tensors[nd->output].quant.count
                                  ? -1
                                  : nne_graph_fusable_prelu(x, nd->output);
        CHECK(x->tensors[nd->output].quant.count || fused >= 0);
        nne_graph *o = NULL;
        CHECK_OK(nne_graph_create("one", &o));
        int32_t ins[NNE_MAX_NODE_INPUTS];
        for (int32_t k = 0; k < nd->n_inputs; k++) {
            const nne_tensor *t = nd->inputs[k] >= 0 ? &x->tensors[nd->inputs[k]] : NULL;
            ins[k] = -1;
            if (!t) continue;
            const size_t m = (size_t)nne_shape_numel(&t->shape);
            float *f = malloc(m * sizeof *f);
            if (t->kind != NNE_TENSOR_CONSTANT) {
                CHECK_OK(nne_graph_add_input(o, t->name, NNE_F32, t->shape, &ins[k]));
            } else {
                if (t->dtype == NNE_S8) {
                    CHECK_OK(nne_dequantize_tensor_s8(&t->shape, t->data, &t->quant, f));
                } else if (t->dtype == NNE_S32) { /* bias at s_x * s_w[c] */
                    for (size_t c = 0; c < m; c++)
                        f[c] = (float)((double)((const int32_t *)t->data)[c] *
                                       t->quant.scale[t->quant.count == 1 ? 0 : c]);
                } else {
                    memcpy(f, t->data, m * sizeof *f);
                }
                CHECK_OK(nne_graph_add_constant(o, t->name, NNE_F32, t->shape, f, &ins[k]));
            }
            free(f);
        }
        int32_t y = -1;
        CHECK_OK(nne_graph_add_node(o, nd->name, nd->op, &nd->params, ins, nd->n_inputs,
                                    fused >= 0 ? "mid" : "y", &y));
        if (fused >= 0) { /* the PReLU (f32 slopes) or leaky ReLU after it */
            const nne_node *a = &x->nodes[fused];
            int32_t ain[2] = {y, -1};
            if (a->n_inputs > 1) {
                const nne_tensor *st = &x->tensors[a->inputs[1]];
                CHECK_OK(nne_graph_add_constant(o, st->name, NNE_F32, st->shape, st->data, &ain[1]));
            }
            CHECK_OK(nne_graph_add_node(o, a->name, a->op, &a->params, ain, a->n_inputs, "y", &y));
        }
        CHECK_OK(nne_graph_mark_output(o, y));
        nne_session *os = NULL;
        CHECK_OK(nne_session_create(o, nne_backend_cpu_ref(), &os));
        if (!os) {
            nne_graph_free(o);
            continue;
        }
        for (int32_t k = 0, gi = 0; k < nd->n_inputs; k++) {
            const nne_tensor *t = nd->inputs[k] >= 0 ? &x->tensors[nd->inputs[k]] : NULL;
            if (!t || t->kind == NNE_TENSOR_CONSTANT) continue;
            const size_t m = (size_t)nne_shape_numel(&t->shape);
            nne_dequantize_s8_f32__ref(m, nne_session_tensor_data(s, nd->inputs[k]),
                                       t->quant.scale[0], t->quant.zero_point[0],
                                       nne_session_input(os, gi++));
        }
        CHECK_OK(nne_session_run(os));
        const int32_t yi = fused >= 0 ? x->nodes[fused].output : nd->output;
        const nne_tensor *yt = &x->tensors[yi];
        const float *yf = nne_session_output(os, 0);
        const int8_t *yq = nne_session_tensor_data(s, yi);
        const size_t m = (size_t)nne_shape_numel(&yt->shape);
        int node_worst = 0;
        for (size_t j = 0; j < m; j++) {
            const int32_t want = nne_quantize_value(
                yf[j], yt->quant.scale[0], yt->quant.zero_point[0], -128, 127, yt->quant.pow2);
            node_worst = abs(want - yq[j]) > node_worst ? abs(want - yq[j]) : node_worst;
        }
        CHECK_MSG(node_worst <= 1, "node '%s' (%s): %d codes from the f32 op", nd->name,
                  nne_op_name(nd->op), node_worst);
        if (node_worst > worst) worst = node_worst;
        nne_session_free(os);
        nne_graph_free(o);
    }
    nne_session_free(s);
    nne_graph_free(x);
    return worst;
}

static bool is_pow2(float s) {
    int e;
    return frexpf(s, &e) == 0.5f;
}

/* Structure of a quantized graph: dtypes, parameters, scheme rules. */
static void check_structure(const nne_graph *q, nne_qscheme scheme) {
    int pow2_bad = 0;
    for (int32_t i = 0; i < q->n_tensors; i++) {
        const nne_tensor *t = &q->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT) {
            /* every conv -> PReLU pair fused (no parameters between), except in pow2 */
            const bool fused = scheme != NNE_QSCHEME_POW2 && nne_graph_fusable_prelu(q, i) >= 0;
            CHECK_MSG(t->dtype == NNE_S8 && t->quant.count == (fused ? 0 : 1), "tensor '%s'",
                      t->name);
        }
        if (t->dtype == NNE_S8 && t->kind == NNE_TENSOR_CONSTANT)
            CHECK(t->quant.count == (scheme == NNE_QSCHEME_PER_CHANNEL ? t->shape.dim[0] : 1));
        for (int32_t k = 0; k < t->quant.count; k++) {
            if (scheme == NNE_QSCHEME_POW2) {
                pow2_bad +=
                    !is_pow2(t->quant.scale[k]) || t->quant.zero_point[k] != 0 || !t->quant.pow2;
            }
            if (t->dtype == NNE_S32) CHECK(t->quant.zero_point[k] == 0);
        }
    }
    CHECK_MSG(pow2_bad == 0, "%d non-power-of-two parameters", pow2_bad);
}

static void test_small_graph(void) {
    nne_graph *g = build_small(11);
    if (!g) return;
    const struct {
        nne_qscheme s;
        nne_observer_kind o;
    } cases[] = {
        {NNE_QSCHEME_PER_TENSOR, NNE_OBSERVER_MINMAX}, {NNE_QSCHEME_PER_CHANNEL, NNE_OBSERVER_MSE},
        {NNE_QSCHEME_POW2, NNE_OBSERVER_MINMAX},       {NNE_QSCHEME_PER_CHANNEL, NNE_OBSERVER_KL},
        {NNE_QSCHEME_POW2, NNE_OBSERVER_PERCENTILE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nne_graph *q = quantize(g, cases[c].s, cases[c].o, c == 1, 4);
        if (!q) continue;
        check_structure(q, cases[c].s);
        CHECK(strcmp(nne_graph_get_meta(q, "quant.scheme"), nne_qscheme_name(cases[c].s)) == 0);
        per_node_check(q);
        double mean, mx;
        e2e_error(g, q, &mean, &mx);
        /* On the calibration inputs: the output's own rounding alone is a mean of 1/4 step
         * (max 1/2); the layers before it add less than that again (observed 0.35-0.5),
         * so a mean of one step has room, and a wrong scale (below) exceeds it. */
        CHECK_MSG(mean < 1.0 && mx < 12, "%s/%s: mean %.3f max %.3f steps",
                  nne_qscheme_name(cases[c].s), nne_observer_name(cases[c].o), mean, mx);
        nne_graph_free(q);
    }
    nne_graph_free(g);
}

/* cae-seed with random but fixed weights (He-like scale), 40x40. */
static nne_graph *cae_random(int32_t h, int32_t w) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(h, w, NNE_CAE_FULL, &g));
    if (!g) return NULL;
    nne_test_rng_seed(&g_rng, 3);
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || t->dtype != NNE_F32) continue;
        float *d = t->data;
        const int64_t n = nne_shape_numel(&t->shape);
        if (t->shape.ndim == 4) {
            const float a = sqrtf(3.0f / (float)(n / t->shape.dim[0]));
            for (int64_t k = 0; k < n; k++) d[k] = urand(-a, a);
        } else if (strstr(t->name, "prelu") || strstr(t->name, "slope") ||
                   strstr(t->name, "alpha")) {
            for (int64_t k = 0; k < n; k++) d[k] = urand(0.1f, 0.3f);
        } else {
            for (int64_t k = 0; k < n; k++) d[k] = urand(-0.05f, 0.05f);
        }
    }
    return g;
}

/* cpu-s8 (convolutions on the fast kernels of nnedge/conv.h) against cpu-s8-ref (every node
 * on the reference kernels): every activation of the quantized cae-seed, byte for byte, under
 * each ISA (ref, avx2 where the CPU has it) and for per-channel Q31 and pow2 graphs. 48x72
 * images reach both band kernels (conv2d_1: K = 27, conv2d_transpose_5: 3 channels) and the
 * implicit GEMM (the other layers, stride-2 phases included). */
static void test_cpu_s8_fast_vs_ref(void) {
    nne_graph *g = cae_random(48, 72);
    if (!g) return;
    const nne_qscheme schemes[2] = {NNE_QSCHEME_PER_CHANNEL, NNE_QSCHEME_POW2};
    const char *const isas[2] = {"ref", "avx2"};
    for (int sc = 0; sc < 2; sc++) {
        nne_graph *q = quantize(g, schemes[sc], NNE_OBSERVER_MINMAX, false, 2), *x = NULL;
        if (!q) continue;
        CHECK_OK(nne_graph_expose_activations(q, &x));
        nne_graph_free(q);
        if (!x) continue;
        nne_session *ref = NULL;
        CHECK_OK(nne_session_create(x, nne_backend_cpu_s8_ref(), &ref));
        const size_t n = (size_t)nne_shape_numel(&x->tensors[x->inputs[0]].shape);
        float *in = malloc(n * sizeof *in);
        sampler sm = {n, 9}; /* not the calibration inputs: some codes clamp */
        fill_sample(&sm, 0, in);
        for (size_t k = 0; k < n; k += 7) in[k] = in[k] * 1.5f - 0.25f;
        CHECK_OK(nne_session_set_input_f32(ref, 0, in, n));
        CHECK_OK(nne_session_run(ref));
        for (int v = 0; v < 2; v++) {
            if (!nne_ops_isa_supported(isas[v])) continue;
            CHECK_OK(nne_ops_set_isa(isas[v]));
            nne_session *fast = NULL;
            CHECK_OK(nne_session_create(x, nne_backend_by_name("cpu-s8"), &fast));
            if (!fast || !ref) break;
            CHECK_OK(nne_session_set_input_f32(fast, 0, in, n));
            CHECK_OK(nne_session_run(fast));
            for (int32_t k = 0; k < x->n_outputs; k++) {
                const size_t m = nne_tensor_nbytes(&x->tensors[x->outputs[k]]);
                CHECK_MSG(memcmp(nne_session_output(fast, k), nne_session_output(ref, k), m) == 0,
                          "%s ISA %s: output '%s' differs from cpu-s8-ref",
                          nne_qscheme_name(schemes[sc]), isas[v], x->tensors[x->outputs[k]].name);
            }
            nne_session_free(fast);
        }
        nne_ops_set_isa(NULL);
        free(in);
        nne_session_free(ref);
        nne_graph_free(x);
    }
    nne_graph_free(g);
}

static void test_cae_seed(void) {
    nne_graph *g = cae_random(40, 40);
    if (!g) return;
    nne_graph *q = quantize(g, NNE_QSCHEME_PER_CHANNEL, NNE_OBSERVER_MINMAX, true, 3);
    if (!q) {
        nne_graph_free(g);
        return;
    }
    check_structure(q, NNE_QSCHEME_PER_CHANNEL);
    per_node_check(q);
    double mean, mx;
    e2e_error(g, q, &mean, &mx);
    CHECK_MSG(mean < 1.0 && mx < 8, "cae-seed: mean %.3f max %.3f steps", mean, mx);

    /* quantize -> write -> read -> run: identical codes. */
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK_OK(nne_model_write_mem(q, &buf, &size));
    nne_graph *r = NULL;
    CHECK_OK(nne_model_read_mem(buf, size, &r));
    nne_free(buf);
    if (r) {
        float *a[1] = {0}, *b[1] = {0};
        run_f32(q, nne_backend_cpu_s8(), 1, a);
        run_f32(r, nne_backend_cpu_s8(), 1, b);
        const size_t m = (size_t)nne_shape_numel(&q->tensors[q->outputs[0]].shape);
        CHECK(a[0] && b[0] && memcmp(a[0], b[0], m * sizeof(float)) == 0);
        free(a[0]);
        free(b[0]);
        nne_graph_free(r);
    }

    /* Changing an activation's parameters alone is self-consistent (its producer and
     * consumers both follow), so the mutations that must fail are those where codes and
     * parameters disagree: a conv's weight scale doubled with the codes kept (a fixed-point
     * position off by one), and bias codes 16 times too large. */
    const int32_t wi = nne_graph_find_tensor(q, "conv2d_3.weight");
    const int32_t bi = nne_graph_find_tensor(q, "conv2d_3.bias");
    CHECK(wi >= 0 && bi >= 0);
    if (wi >= 0 && bi >= 0) {
        nne_quant *wq = &q->tensors[wi].quant, *bq = &q->tensors[bi].quant;
        nne_session *bad = NULL;
        for (int32_t c = 0; c < wq->count; c++) wq->scale[c] *= 2.0f;
        /* The bias no longer has scale s_x * s_w: cpu-s8 refuses the graph. */
        CHECK_STATUS(nne_session_create(q, nne_backend_cpu_s8(), &bad), NNE_ERR_UNSUPPORTED);
        CHECK(strstr(nne_last_error(), "s_x * s_w") != NULL);
        for (int32_t c = 0; c < bq->count; c++) bq->scale[c] *= 2.0f;
        e2e_error(g, q, &mean, &mx);
        CHECK_MSG(!(mean < 1.0 && mx < 8), "wrong weight scale passed: mean %.3f", mean);
        for (int32_t c = 0; c < wq->count; c++) wq->scale[c] /= 2.0f;
        for (int32_t c = 0; c < bq->count; c++) bq->scale[c] /= 2.0f;
        int32_t *b = q->tensors[bi].data;
        for (int64_t c = 0; c < q->tensors[bi].shape.dim[0]; c++) b[c] *= 16;
        e2e_error(g, q, &mean, &mx);
        CHECK_MSG(!(mean < 1.0 && mx < 8), "bias codes at 1/16 of their scale passed: mean %.3f",
                  mean);
        for (int64_t c = 0; c < q->tensors[bi].shape.dim[0]; c++) b[c] /= 16;
    }
    e2e_error(g, q, &mean, &mx);
    CHECK(mean < 1.0 && mx < 8);

    /* The same model at another size from the quantized one (nne_quantize_like). */
    nne_graph *g2 = cae_random(48, 56), *q2 = NULL;
    if (g2) {
        CHECK_OK(nne_quantize_like(g2, q, &q2));
        if (q2) {
            e2e_error(g2, q2, &mean, &mx);
            CHECK_MSG(mean < 1.0 && mx < 8, "cae-seed 48x56: mean %.3f max %.3f", mean, mx);
        }
    }
    nne_graph_free(q2);
    nne_graph_free(g2);
    nne_graph_free(q);

    /* pow2 on cae-seed: only powers of two; PReLU's trained slopes run in Q31. */
    q = quantize(g, NNE_QSCHEME_POW2, NNE_OBSERVER_MSE, false, 3);
    if (q) {
        check_structure(q, NNE_QSCHEME_POW2);
        per_node_check(q);
        e2e_error(g, q, &mean, &mx);
        CHECK_MSG(mean < 1.0 && mx < 8, "cae-seed pow2: mean %.3f max %.3f", mean, mx);
    }
    nne_graph_free(q);
    nne_graph_free(g);
}

/* One 3x3 conv whose per-tensor weight scale is set by one large channel: the other
 * channels' weight errors shift their mean output; bias correction removes the shift. */
static void test_bias_correction(void) {
    nne_test_rng_seed(&g_rng, 21);
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("bc", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 16, 16, 8), &x));
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv = conv_p(3, 1, NNE_PAD_SAME, 0);
    int32_t w = add_const(g, "w", nne_shape_4d(8, 3, 3, 8), -0.02f, 0.02f);
    float *wd = g->tensors[w].data;
    for (int k = 0; k < 72; k++) wd[k] *= 40.0f; /* channel 0 sets the scale */
    int32_t in[3] = {x, w, add_const(g, "b", nne_shape_1d(8), -0.1f, 0.1f)};
    int32_t y = node(g, "conv", NNE_OP_CONV2D, &p, in, 3);
    CHECK_OK(nne_graph_mark_output(g, y));
    double shift[2];
    for (int bc = 0; bc < 2; bc++) {
        nne_graph *q = quantize(g, NNE_QSCHEME_PER_TENSOR, NNE_OBSERVER_MINMAX, bc, 8);
        if (!q) return;
        /* Mean (over pixels and 3 inputs) of y_q - y_f per channel 1..7, then mean |.|. */
        double sum[8] = {0};
        for (int i = 0; i < 3; i++) {
            float *yf[1] = {0}, *yq[1] = {0};
            run_f32(g, nne_backend_cpu_ref(), i, yf);
            run_f32(q, nne_backend_cpu_s8(), i, yq);
            for (int j = 0; yf[0] && yq[0] && j < 16 * 16 * 8; j++)
                sum[j % 8] += yq[0][j] - yf[0][j];
            free(yf[0]);
            free(yq[0]);
        }
        shift[bc] = 0;
        for (int c = 1; c < 8; c++) shift[bc] += fabs(sum[c] / (3 * 256)) / 7;
        nne_graph_free(q);
    }
    CHECK_MSG(shift[1] < 0.5 * shift[0], "mean shift %.5f without, %.5f with bias correction",
              shift[0], shift[1]);
    nne_graph_free(g);
}

/* Largest |code| over the weights of q's conv / transposed conv / dense nodes. */
static int32_t max_weight_code(const nne_graph *q) {
    int32_t m = 0;
    for (int32_t i = 0; i < q->n_nodes; i++) {
        const nne_node *nd = &q->nodes[i];
        if (nd->op != NNE_OP_CONV2D && nd->op != NNE_OP_CONV_TRANSPOSE2D && nd->op != NNE_OP_DENSE)
            continue;
        const nne_tensor *t = &q->tensors[nd->inputs[1]];
        CHECK(t->dtype == NNE_S8);
        const int8_t *w = t->data;
        for (int64_t k = 0; k < nne_shape_numel(&t->shape); k++) {
            const int32_t a = w[k] < 0 ? -w[k] : w[k];
            if (a > m) m = a;
        }
    }
    return m;
}

/* weight_bits 7: every scheme keeps the weight codes within [-64, 64] and reaches 64 (the
 * largest weight of a tensor or channel maps to qmax), 8 goes past 64; quant.weight_bits is
 * recorded; other values are refused. The cpu-s8 fast path on such a model (the AVX2 w7
 * band kernel) stays byte-identical to cpu-s8-ref: test_cpu_s8_fast_vs_ref with g_wbits 7. */
static void test_weight_bits(void) {
    nne_graph *g = cae_random(24, 24);
    if (!g) return;
    const nne_qscheme schemes[3] = {NNE_QSCHEME_PER_TENSOR, NNE_QSCHEME_PER_CHANNEL,
                                    NNE_QSCHEME_POW2};
    for (int sc = 0; sc < 3; sc++)
        for (int b = 7; b <= 8; b++) {
            g_wbits = b;
            nne_graph *q = quantize(g, schemes[sc], NNE_OBSERVER_MINMAX, false, 1);
            if (!q) continue;
            const int32_t m = max_weight_code(q);
            if (b == 7)
                CHECK_MSG(m == 64 || (schemes[sc] == NNE_QSCHEME_POW2 && m > 32 && m <= 64),
                          "%s 7 bits: max |code| %d", nne_qscheme_name(schemes[sc]), (int)m);
            else
                CHECK_MSG(m > 64, "%s 8 bits: max |code| %d", nne_qscheme_name(schemes[sc]),
                          (int)m);
            const char *mv = nne_graph_get_meta(q, "quant.weight_bits");
            CHECK(mv && atoi(mv) == b);
            nne_graph_free(q);
        }
    g_wbits = 5;
    sampler sm = {(size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape), 7};
    nne_quantize_opts o = {.n_samples = 1, .sample = fill_sample, .ctx = &sm, .weight_bits = 5};
    nne_graph *q = NULL;
    CHECK_STATUS(nne_quantize_graph(g, &o, &q), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "weight_bits"));
    g_wbits = 7;
    test_cpu_s8_fast_vs_ref();
    g_wbits = 0;
    nne_graph_free(g);
}

static void test_rejects(void) {
    nne_graph *g = build_small(12);
    if (!g) return;
    nne_session *s = NULL;
    CHECK_STATUS(nne_session_create(g, nne_backend_cpu_s8(), &s), NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "cpu-s8") && strstr(nne_last_error(), "quantize"));
    nne_graph *q = quantize(g, NNE_QSCHEME_PER_TENSOR, NNE_OBSERVER_MINMAX, false, 2);
    CHECK_STATUS(nne_session_create(q, nne_backend_cpu_ref(), &s), NNE_ERR_UNSUPPORTED);
    /* ReLU whose output does not share its input's parameters. */
    const int32_t r = nne_graph_find_tensor(q, "relu.out");
    q->tensors[r].quant.zero_point[0] += 1;
    CHECK_STATUS(nne_session_create(q, nne_backend_cpu_s8(), &s), NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "relu") && strstr(nne_last_error(), "share"));
    nne_graph_free(q);
    nne_graph_free(g);
    /* An op without an int8 kernel. */
    CHECK_OK(nne_graph_create("sm", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_2d(1, 4), &x));
    int32_t y = node(g, "soft", NNE_OP_SOFTMAX, NULL, &x, 1);
    CHECK_OK(nne_graph_mark_output(g, y));
    sampler sm = {4, 1};
    nne_quantize_opts o = {.n_samples = 1, .sample = fill_sample, .ctx = &sm};
    CHECK_STATUS(nne_quantize_graph(g, &o, &q), NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "soft") && strstr(nne_last_error(), "softmax"));
    nne_graph_free(g);
}

/* nne_quantize_opts.output_lo/hi: every graph output (and the tensor whose parameters it
 * shares: relu6 -> avgpool) gets the range's parameters, [0, 1] being the 8-bit pixel grid
 * (scale 1/255, zero point -128), which the cpu-s8 outputs then lie on; recorded as
 * quant.output_range; a reversed or non-finite range is refused. cae-seed: its output
 * reconstruction has the grid, the rest is as without the option. */
static void test_output_range(void) {
    nne_graph *g = build_small(13);
    if (!g) return;
    const nne_qscheme schemes[3] = {NNE_QSCHEME_PER_TENSOR, NNE_QSCHEME_PER_CHANNEL,
                                    NNE_QSCHEME_POW2};
    sampler sm = {(size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape), 7};
    for (int sc = 0; sc < 3; sc++) {
        const bool pow2 = schemes[sc] == NNE_QSCHEME_POW2;
        nne_quantize_opts o = {.scheme = schemes[sc],
                               .n_samples = 2,
                               .sample = fill_sample,
                               .ctx = &sm,
                               .output_lo = 0.0f,
                               .output_hi = 1.0f};
        nne_graph *q = NULL;
        CHECK_OK(nne_quantize_graph(g, &o, &q));
        if (!q) continue;
        float es;
        int32_t ez;
        nne_qparams_from_range(0.0f, 1.0f, pow2, pow2, &es, &ez);
        CHECK(pow2 ? es == 1.0f / 64 && ez == 0 : es == 1.0f / 255 && ez == -128);
        const int32_t own[3] = {q->outputs[0], q->outputs[1], nne_graph_find_tensor(q, "avgpool.out")};
        for (int k = 0; k < 3; k++) {
            const nne_quant *u = &q->tensors[own[k]].quant;
            CHECK_MSG(u->count == 1 && u->scale[0] == es && u->zero_point[0] == ez,
                      "%s: '%s' scale %g zp %d", nne_qscheme_name(schemes[sc]),
                      q->tensors[own[k]].name, u->count ? (double)u->scale[0] : 0.0,
                      u->count ? (int)u->zero_point[0] : 0);
        }
        const char *mv = nne_graph_get_meta(q, "quant.output_range");
        CHECK(mv && strcmp(mv, "0 1") == 0);
        /* the int8 outputs: on the grid and in the range */
        float *y[4] = {0};
        run_f32(q, nne_backend_cpu_s8(), 0, y);
        for (int32_t k = 0; k < q->n_outputs; k++) {
            const size_t m = (size_t)nne_shape_numel(&q->tensors[q->outputs[k]].shape);
            int bad = 0;
            for (size_t j = 0; y[k] && j < m; j++) {
                const double c = (double)y[k][j] / es;
                bad += !((pow2 || (y[k][j] >= 0.0f && y[k][j] <= 1.0f)) &&
                         fabs(c - nearbyint(c)) < 1e-3);
            }
            CHECK_MSG(bad == 0, "%s output %d: %d values off the grid",
                      nne_qscheme_name(schemes[sc]), (int)k, bad);
            free(y[k]);
        }
        nne_graph_free(q);
    }
    /* without the option: calibrated, no key */
    nne_graph *q = quantize(g, NNE_QSCHEME_PER_TENSOR, NNE_OBSERVER_MINMAX, false, 2);
    if (q) {
        CHECK(!nne_graph_get_meta(q, "quant.output_range"));
        CHECK(q->tensors[q->outputs[1]].quant.scale[0] != 1.0f / 255);
        nne_graph_free(q);
    }
    const float bad[3][2] = {{1.0f, 0.0f}, {0.5f, 0.5f}, {0.0f, NAN}};
    for (int k = 0; k < 3; k++) {
        nne_quantize_opts o = {.n_samples = 1, .sample = fill_sample, .ctx = &sm,
                               .output_lo = bad[k][0], .output_hi = bad[k][1]};
        q = NULL;
        CHECK_STATUS(nne_quantize_graph(g, &o, &q), NNE_ERR_INVALID_ARG);
        CHECK(!q && strstr(nne_last_error(), "output range"));
    }
    nne_graph_free(g);
    /* cae-seed: only the reconstruction changes */
    g = cae_random(24, 24);
    if (!g) return;
    sampler sc = {(size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape), 7};
    nne_quantize_opts o = {.scheme = NNE_QSCHEME_PER_CHANNEL, .n_samples = 1, .sample = fill_sample,
                           .ctx = &sc, .output_lo = 0.0f, .output_hi = 1.0f};
    nne_graph *a = NULL, *b = quantize(g, NNE_QSCHEME_PER_CHANNEL, NNE_OBSERVER_MINMAX, false, 1);
    CHECK_OK(nne_quantize_graph(g, &o, &a));
    for (int32_t t = 0; a && b && t < a->n_tensors; t++) {
        const nne_quant *u = &a->tensors[t].quant, *v = &b->tensors[t].quant;
        if (a->tensors[t].kind == NNE_TENSOR_CONSTANT || !u->count) continue;
        if (t == a->outputs[0])
            CHECK(u->scale[0] == 1.0f / 255 && u->zero_point[0] == -128);
        else
            CHECK_MSG(u->scale[0] == v->scale[0] && u->zero_point[0] == v->zero_point[0],
                      "'%s'", a->tensors[t].name);
    }
    nne_graph_free(a);
    nne_graph_free(b);
    nne_graph_free(g);
}

/* nne_fake_quantize_weights on a graph with every weighted op (conv, transposed conv, dense,
 * PReLU, GDN/IGDN): which constants change, the codes, the storage size, the errors. */
static void test_fake_weights(void) {
    nne_graph *g = build_small(31), *ref = build_small(31);
    if (!g || !ref) goto done;
    int64_t bytes = -1, want = 0;
    CHECK_OK(nne_fake_quantize_weights(g, NNE_WFORMAT_INT4, &bytes));
    for (int32_t t = 0; t < g->n_tensors; t++) {
        const nne_tensor *x = &g->tensors[t], *r = &ref->tensors[t];
        if (x->kind != NNE_TENSOR_CONSTANT) continue;
        const int64_t n = nne_shape_numel(&x->shape);
        const float *a = x->data, *b = r->data;
        const bool w = !strcmp(x->name, "c1.w") || !strcmp(x->name, "c2.w") ||
                       !strcmp(x->name, "ct.w") || !strcmp(x->name, "fc.w");
        want += w ? (n * 4 + 7) / 8 : 4 * n;
        if (!w) {
            CHECK_MSG(!memcmp(a, b, (size_t)n * sizeof *a), "%s changed", x->name);
            continue;
        }
        /* per output channel: codes in [-7, 7], the largest |w| exact at code +-7 */
        const int64_t oc = x->shape.dim[0], per = n / oc;
        int changed = 0;
        for (int64_t o = 0; o < oc; o++) {
            float mx = 0;
            for (int64_t i = 0; i < per; i++) mx = fmaxf(mx, fabsf(b[o * per + i]));
            const float sc = mx / 7.0f;
            for (int64_t i = 0; i < per; i++) {
                const float c = a[o * per + i] / sc;
                CHECK_MSG(fabsf(c - nearbyintf(c)) < 1e-4f && fabsf(c) <= 7.0001f, "%s: %g",
                          x->name, (double)c);
                CHECK(fabsf(a[o * per + i] - b[o * per + i]) <= 0.5001f * sc);
                changed += a[o * per + i] != b[o * per + i];
            }
        }
        CHECK_MSG(changed > per, "%s: %d changed", x->name, changed);
    }
    CHECK_MSG(bytes == want, "storage %lld, want %lld", (long long)bytes, (long long)want);
    CHECK(!strcmp(nne_graph_get_meta(g, "quant.fake"), "int4"));
    /* fp16: every constant representable in binary16 afterwards, and the pass idempotent */
    CHECK_OK(nne_fake_quantize_weights(ref, NNE_WFORMAT_FP16, &bytes));
    for (int32_t t = 0; t < ref->n_tensors; t++) {
        const nne_tensor *x = &ref->tensors[t];
        if (x->kind != NNE_TENSOR_CONSTANT) continue;
        const size_t n = (size_t)nne_shape_numel(&x->shape);
        float *y = nne_malloc(n * sizeof *y);
        if (!y) continue;
        nne_fake_quantize_f16(n, x->data, y);
        CHECK_MSG(!memcmp(y, x->data, n * sizeof *y), "%s", x->name);
        nne_free(y);
    }
    nne_wformat f;
    CHECK(nne_wformat_from_name("int2", &f) == NNE_OK && f == NNE_WFORMAT_INT2);
    CHECK_STATUS(nne_wformat_from_name("int3", &f), NNE_ERR_INVALID_ARG);
    CHECK(nne_wformat_name((nne_wformat)9) == NULL);
    /* a quantized graph is refused, naming a constant */
    nne_graph *q = quantize(g, NNE_QSCHEME_PER_CHANNEL, NNE_OBSERVER_MINMAX, false, 2);
    if (q) {
        CHECK_STATUS(nne_fake_quantize_weights(q, NNE_WFORMAT_INT8, NULL), NNE_ERR_UNSUPPORTED);
        CHECK(strstr(nne_last_error(), "c1.w") != NULL);
    }
    nne_graph_free(q);
done:
    nne_graph_free(g);
    nne_graph_free(ref);
}

int main(void) {
    NNE_RUN(test_small_graph);
    NNE_RUN(test_fake_weights);
    NNE_RUN(test_cae_seed);
    NNE_RUN(test_cpu_s8_fast_vs_ref);
    NNE_RUN(test_bias_correction);
    NNE_RUN(test_rejects);
    NNE_RUN(test_weight_bits);
    NNE_RUN(test_output_range);
    return nne_test_summary();
}
