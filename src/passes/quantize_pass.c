/* The post-training quantization pass (docs/quantization.md, "The quantization pass"):
 * calibrate the f32 graph on cpu-ref, quantize weights and biases, attach s8 parameters to
 * every activation, and rebuild the graph with the same nodes and names. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/passes.h"
#include "nnedge/qops.h"
#include "passes_internal.h"

/* ---- Graph rebuilding ---------------------------------------------------------------------- */

typedef nne_tplan tplan;

static void plans_free(tplan *p, int32_t n, void **owned, int32_t n_owned) {
    if (p)
        for (int32_t i = 0; i < n; i++) nne_quant_free(&p[i].quant);
    nne_free(p);
    if (owned)
        for (int32_t i = 0; i < n_owned; i++) nne_aligned_free(owned[i]);
    nne_free(owned);
}

nne_status nne_pass_rebuild(const nne_graph *src, const tplan *plan, bool expose, nne_graph **out) {
    *out = NULL;
    nne_graph *g = NULL;
    nne_status s = nne_graph_create(src->name, &g);
    if (s) return s;
    int32_t *map = nne_malloc(((size_t)src->n_tensors + 1) * sizeof *map);
    if (!map) {
        nne_graph_free(g);
        return NNE_ERR_NOMEM;
    }
    for (int32_t i = 0; i < src->n_tensors && !s; i++) {
        const nne_tensor *t = &src->tensors[i];
        map[i] = -1;
        const nne_dtype dt = plan ? plan[i].dtype : t->dtype;
        const nne_shape shape = plan && plan[i].shape ? *plan[i].shape : t->shape;
        if (t->kind == NNE_TENSOR_INPUT)
            s = nne_graph_add_input(g, t->name, dt, t->shape, &map[i]);
        else if (t->kind == NNE_TENSOR_CONSTANT)
            s = nne_graph_add_constant(g, t->name, dt, shape, plan ? plan[i].data : t->data,
                                       &map[i]);
    }
    for (int32_t i = 0; i < src->n_nodes && !s; i++) {
        const nne_node *n = &src->nodes[i];
        int32_t in[NNE_MAX_NODE_INPUTS];
        for (int32_t k = 0; k < n->n_inputs; k++) in[k] = n->inputs[k] < 0 ? -1 : map[n->inputs[k]];
        s = nne_graph_add_node(g, n->name, n->op, &n->params, in, n->n_inputs,
                               src->tensors[n->output].name, &map[n->output]);
    }
    for (int32_t i = 0; i < src->n_tensors && !s; i++) {
        const nne_quant *q = plan ? &plan[i].quant : &src->tensors[i].quant;
        if (map[i] >= 0 && q->count) s = nne_quant_copy(&g->tensors[map[i]].quant, q);
    }
    for (int32_t i = 0; i < src->n_outputs && !s; i++)
        s = nne_graph_mark_output(g, map[src->outputs[i]]);
    for (int32_t i = 0; i < src->n_nodes && !s && expose; i++) {
        const int32_t t = map[src->nodes[i].output];
        /* an int8 tensor without parameters sits between a conv and the PReLU fused into it:
         * it never exists, and exposing it would break the fusion (nne_graph_fusable_prelu) */
        const nne_tensor *st = &src->tensors[src->nodes[i].output];
        if (st->dtype == NNE_S8 && !st->quant.count) continue;
        bool is_out = false;
        for (int32_t k = 0; k < g->n_outputs; k++) is_out |= g->outputs[k] == t;
        if (!is_out) s = nne_graph_mark_output(g, t);
    }
    for (int32_t i = 0; i < src->n_meta && !s; i++)
        s = nne_graph_set_meta(g, src->meta[i].key, src->meta[i].value);
    if (!s) s = nne_graph_infer(g);
    nne_free(map);
    if (s) {
        nne_graph_free(g);
        return s;
    }
    *out = g;
    return NNE_OK;
}

nne_status nne_graph_expose_activations(nne_graph *g, nne_graph **out) {
    nne_status s = nne_graph_infer(g);
    return s ? s : nne_pass_rebuild(g, NULL, true, out);
}

/* ---- Helpers --------------------------------------------------------------------------------- */

/* f32 copy of a float constant (f32 or f16 storage), or NULL (NNE_ERR_NOMEM / unsupported). */
static float *float_copy(const nne_tensor *t, nne_status *st) {
    const size_t n = (size_t)nne_shape_numel(&t->shape);
    float *f = nne_aligned_alloc(n * sizeof *f + 1);
    if (!f) {
        *st = NNE_ERR_NOMEM;
        return NULL;
    }
    if (t->dtype == NNE_F32) {
        memcpy(f, t->data, n * sizeof *f);
    } else if (t->dtype == NNE_F16) {
        for (size_t i = 0; i < n; i++) f[i] = nne_f16_to_f32(((const uint16_t *)t->data)[i]);
    } else {
        nne_aligned_free(f);
        *st = nne_error(NNE_ERR_UNSUPPORTED, "constant '%s' is %s, expected f32 or f16", t->name,
                        nne_dtype_name(t->dtype));
        return NULL;
    }
    return f;
}

static bool is_mac(nne_op_type op) {
    return op == NNE_OP_CONV2D || op == NNE_OP_CONV_TRANSPOSE2D || op == NNE_OP_DENSE;
}

/* Weights [oc][...] -> s8 codes and parameters, with the scales of nne_weight_scales_s8
 * (pow2: the fixed-point position among fp0 .. fp0 + 3 with the smallest squared error, as
 * Vitis AI does; quantization-aware training uses the same function). */
static nne_status quantize_weights(const nne_tensor *t, const float *w, nne_qscheme scheme,
                                   int32_t qmax, int8_t *q, nne_quant *quant) {
    const bool pow2 = scheme == NNE_QSCHEME_POW2, per_channel = scheme == NNE_QSCHEME_PER_CHANNEL;
    const int32_t count = per_channel ? (int32_t)t->shape.dim[0] : 1;
    float *scale = nne_malloc((size_t)count * sizeof *scale);
    int32_t *zero = nne_calloc((size_t)count, sizeof *zero);
    nne_status s = scale && zero ? NNE_OK : NNE_ERR_NOMEM;
    if (!s && (s = nne_weight_scales_s8_qmax(&t->shape, w, scheme, qmax, scale)))
        s = nne_error(s, "weights '%s': %s", t->name, nne_last_error());
    if (!s) {
        const size_t n = (size_t)nne_shape_numel(&t->shape), per = n / (size_t)count;
        for (size_t i = 0; i < n; i++)
            q[i] = (int8_t)nne_quantize_value(w[i], scale[i / per], 0, -qmax, qmax, pow2);
        s = nne_quant_set(quant, per_channel ? 0 : -1, count, scale, zero, pow2);
    }
    nne_free(scale);
    nne_free(zero);
    return s;
}

/* ---- Calibration ----------------------------------------------------------------------------- */

typedef struct bias_fix {
    int32_t node;    /* conv / transposed conv with a bias */
    float *wq;       /* dequantized weights (OHWI) */
    double *sum;     /* [oc] sum of y_f32 - bias - y_qweights */
    float *scratch;  /* [output numel] */
    uint64_t pixels; /* outputs per channel accumulated */
} bias_fix;

/* Run g, every activation exposed, on cpu-ref over the o->n_samples calibration samples and
 * hand each run to visit (x: the exposed copy, whose tensors are numbered differently from
 * g's; look them up by name), with progress under `phase`. */
typedef nne_status (*sample_visit_fn)(void *ctx, const nne_graph *x, nne_session *ss);

static nne_status run_samples(nne_graph *g, const nne_quantize_opts *o, const char *phase,
                              sample_visit_fn visit, void *ctx) {
    nne_graph *x = NULL;
    nne_session *ss = NULL;
    nne_status s = nne_graph_expose_activations(g, &x);
    if (!s) s = nne_session_create(x, nne_backend_cpu_ref(), &ss);
    for (int32_t i = 0; i < o->n_samples && !s; i++) {
        s = o->sample(o->ctx, i, nne_session_input(ss, 0));
        if (!s) s = nne_session_run(ss);
        if (!s) s = visit(ctx, x, ss);
        if (!s && o->progress) o->progress(o->ctx, phase, i + 1, o->n_samples);
    }
    nne_session_free(ss);
    nne_graph_free(x);
    return s;
}

/* f32 data of g's tensor t in a run of the exposed copy x. */
static const float *exposed_data(const nne_graph *g, const nne_graph *x, nne_session *ss,
                                 int32_t t) {
    return nne_session_tensor_data(ss, nne_graph_find_tensor(x, g->tensors[t].name));
}

typedef struct calib_run {
    const nne_graph *g;
    nne_histogram *hist; /* indexed like g */
    bias_fix *fix;
    int32_t n_fix;
} calib_run;

/* One calibration run: histograms of inputs and activations, and the bias-correction
 * statistics. */
static nne_status calib_visit(void *ctx, const nne_graph *x, nne_session *ss) {
    const calib_run *c = ctx;
    for (int32_t t = 0; t < c->g->n_tensors; t++) {
        const nne_tensor *tt = &c->g->tensors[t];
        if (tt->kind == NNE_TENSOR_CONSTANT) continue;
        nne_histogram_add(&c->hist[t], exposed_data(c->g, x, ss, t),
                          (size_t)nne_shape_numel(&tt->shape));
    }
    for (int32_t f = 0; f < c->n_fix; f++) {
        bias_fix *fx = &c->fix[f];
        const nne_node *n = &x->nodes[fx->node];
        const nne_conv2d_geom *gm = &n->conv_geom;
        const float *in = nne_session_tensor_data(ss, n->inputs[0]);
        const float *y = nne_session_tensor_data(ss, n->output);
        const float *b = x->tensors[n->inputs[2]].data;
        if (n->op == NNE_OP_CONV2D)
            nne_conv2d_f32__ref(gm, in, fx->wq, NULL, fx->scratch);
        else
            nne_conv_transpose2d_f32__ref(gm, in, fx->wq, NULL, fx->scratch);
        const size_t pix = (size_t)gm->n * gm->oh * gm->ow;
        for (size_t p = 0; p < pix; p++)
            for (int32_t ch = 0; ch < gm->oc; ch++)
                fx->sum[ch] += (double)y[p * gm->oc + ch] - b[ch] - fx->scratch[p * gm->oc + ch];
        fx->pixels += pix;
    }
    return NNE_OK;
}

static nne_status calibrate(nne_graph *g, const nne_quantize_opts *o, nne_histogram *hist,
                            bias_fix *fix, int32_t n_fix) {
    calib_run c = {.g = g, .hist = hist, .fix = fix, .n_fix = n_fix};
    return run_samples(g, o, "calibrate", calib_visit, &c);
}

typedef struct range_run {
    const nne_graph *g;
    float **hi, **lo; /* [n_tensors]: per-channel max and min, NULL for constants */
} range_run;

static nne_status range_visit(void *ctx, const nne_graph *x, nne_session *ss) {
    const range_run *r = ctx;
    for (int32_t t = 0; t < r->g->n_tensors; t++) {
        if (!r->hi[t]) continue;
        const nne_tensor *tt = &r->g->tensors[t];
        const size_t ch = (size_t)tt->shape.dim[tt->shape.ndim - 1];
        const size_t n = (size_t)nne_shape_numel(&tt->shape);
        const float *d = exposed_data(r->g, x, ss, t);
        float *hi = r->hi[t], *lo = r->lo[t];
        for (size_t k = 0; k < n; k++) {
            const float v = d[k];
            if (!isfinite(v)) continue;
            if (v > hi[k % ch]) hi[k % ch] = v;
            if (v < lo[k % ch]) lo[k % ch] = v;
        }
    }
    return NNE_OK;
}

/* Per-channel ranges (max - min over every sample and pixel, channels on the last axis) of
 * g's inputs and activations, for activation equalization: rng[t] = [channels] floats, NULL
 * for constants; 0 for a channel with no finite value. One f32 pass over the calibration
 * samples. */
static nne_status channel_ranges(nne_graph *g, const nne_quantize_opts *o, float **rng) {
    float **lo = nne_calloc((size_t)g->n_tensors + 1, sizeof *lo);
    nne_status s = lo ? NNE_OK : NNE_ERR_NOMEM;
    for (int32_t t = 0; t < g->n_tensors && !s; t++) {
        const nne_tensor *tt = &g->tensors[t];
        if (tt->kind == NNE_TENSOR_CONSTANT || tt->shape.ndim < 1) continue;
        const size_t ch = (size_t)tt->shape.dim[tt->shape.ndim - 1];
        if (!(rng[t] = nne_malloc(ch * sizeof(float) + 1)) ||
            !(lo[t] = nne_malloc(ch * sizeof(float) + 1))) {
            s = NNE_ERR_NOMEM;
            break;
        }
        for (size_t c = 0; c < ch; c++) rng[t][c] = -INFINITY, lo[t][c] = INFINITY;
    }
    range_run r = {.g = g, .hi = rng, .lo = lo};
    if (!s) s = run_samples(g, o, "channel ranges", range_visit, &r);
    for (int32_t t = 0; t < g->n_tensors && lo; t++) {
        if (!rng[t] || !lo[t]) continue;
        const size_t ch = (size_t)g->tensors[t].shape.dim[g->tensors[t].shape.ndim - 1];
        for (size_t c = 0; c < ch; c++) /* max - min in place; none seen: 0 */
            rng[t][c] = rng[t][c] >= lo[t][c] ? rng[t][c] - lo[t][c] : 0.0f;
        nne_free(lo[t]);
    }
    nne_free(lo);
    return s;
}

/* ---- The pass -------------------------------------------------------------------------------- */

typedef struct pass {
    nne_graph *g;
    const nne_quantize_opts *o;
    tplan *plan;
    void **owned; /* buffers the plan points to */
    int32_t n_owned;
} pass;

static void *own(pass *p, size_t bytes) {
    void *b = nne_aligned_alloc(bytes ? bytes : 1);
    if (b) p->owned[p->n_owned++] = b;
    return b;
}

static nne_status check_graph(const nne_graph *g) {
    if (g->n_inputs != 1)
        return nne_error(NNE_ERR_UNSUPPORTED, "quantize: graph '%s' has %d inputs, expects 1",
                         g->name, (int)g->n_inputs);
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind != NNE_TENSOR_CONSTANT && g->tensors[i].dtype != NNE_F32)
            return nne_error(NNE_ERR_UNSUPPORTED, "quantize: tensor '%s' is %s, expects f32",
                             g->tensors[i].name, nne_dtype_name(g->tensors[i].dtype));
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (!nne_op_has_s8_kernel(g->nodes[i].op))
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "quantize: node '%s': op %s has no int8 kernel (cpu-s8)",
                             g->nodes[i].name, nne_op_name(g->nodes[i].op));
    return NNE_OK;
}

/* Weights of every MAC node (s8), float parameters kept as f32. */
static nne_status plan_constants(pass *p) {
    nne_graph *g = p->g;
    nne_status s = NNE_OK;
    for (int32_t i = 0; i < g->n_nodes && !s; i++) {
        const nne_node *n = &g->nodes[i];
        for (int32_t k = 1; k < n->n_inputs && !s; k++) {
            const int32_t t = n->inputs[k];
            if (t < 0 || g->tensors[t].kind != NNE_TENSOR_CONSTANT) continue;
            tplan *pl = &p->plan[t];
            if (pl->data != g->tensors[t].data)
                return nne_error(NNE_ERR_UNSUPPORTED,
                                 "quantize: constant '%s' is used by more than one node",
                                 g->tensors[t].name);
            float *f = float_copy(&g->tensors[t], &s);
            if (!f) return s;
            p->owned[p->n_owned++] = f;
            if (is_mac(n->op) && k == 1) {
                int8_t *q = own(p, (size_t)nne_shape_numel(&g->tensors[t].shape));
                if (!q) return NNE_ERR_NOMEM;
                s = quantize_weights(&g->tensors[t], f, p->o->scheme,
                                     p->o->weight_bits == 7 ? 64 : 127, q, &pl->quant);
                pl->dtype = NNE_S8;
                pl->data = q;
            } else { /* bias (quantized later), PReLU slopes, GDN beta/gamma: f32 */
                pl->dtype = NNE_F32;
                pl->data = f;
                /* pow2: slopes become int8 codes at one fixed point, kept as their exact f32
                 * values (docs/quantization.md, 6). */
                if (n->op == NNE_OP_PRELU && p->o->scheme == NNE_QSCHEME_POW2 &&
                    (s = nne_quantize_slopes_pow2((int32_t)nne_shape_numel(&g->tensors[t].shape), f,
                                                  f, NULL)))
                    return nne_error(s, "quantize: node '%s': %s", n->name, nne_last_error());
            }
        }
    }
    return s;
}

/* Whether tensor t holds the parameters of a graph output: the output itself, or the tensor
 * it shares them with through shared-parameter ops (relu, max pool, reshape, ...). */
static bool output_owner(const pass *p, int32_t t) {
    const nne_graph *g = p->g;
    const bool pow2 = p->o->scheme == NNE_QSCHEME_POW2;
    for (int32_t i = 0; i < g->n_outputs; i++) {
        int32_t u = g->outputs[i];
        for (int32_t pr; (pr = nne_graph_producer(g, u)) >= 0 &&
                         nne_op_s8_shares_quant(g->nodes[pr].op, pow2);)
            u = g->nodes[pr].inputs[0];
        if (u == t) return true;
    }
    return false;
}

/* A range given by the caller: nne_quantize_opts.output_lo/hi for the graph's outputs, else
 * nne_quantize_opts.fixed_range; finite. */
static bool fixed(const pass *p, int32_t t, float *lo, float *hi) {
    if (p->o->output_lo < p->o->output_hi && output_owner(p, t)) {
        *lo = p->o->output_lo;
        *hi = p->o->output_hi;
        return true;
    }
    return p->o->fixed_range && p->o->fixed_range(p->o->ctx, p->g->tensors[t].name, lo, hi) &&
           isfinite(*lo) && isfinite(*hi);
}

/* Whether the pass fuses PReLU / leaky ReLU into its producer (nne_quantize_opts.no_fuse_prelu),
 * and whether tensor t is the unquantized tensor between such a pair. */
static bool fuses(const nne_quantize_opts *o) {
    return !o->no_fuse_prelu && o->scheme != NNE_QSCHEME_POW2;
}
static bool fused(const pass *p, int32_t t) {
    return fuses(p->o) && nne_graph_fusable_prelu(p->g, t) >= 0;
}

/* True if calibration has nothing to do: every own-parameter activation has a fixed range
 * and there is no bias correction. */
static bool all_fixed(const pass *p) {
    if (p->o->bias_correction) return false;
    const nne_graph *g = p->g;
    for (int32_t t = 0; t < g->n_tensors; t++) {
        if (g->tensors[t].kind == NNE_TENSOR_CONSTANT) continue;
        const int32_t pr = nne_graph_producer(g, t);
        if ((pr >= 0 && nne_op_s8_shares_quant(g->nodes[pr].op, p->o->scheme == NNE_QSCHEME_POW2)) ||
            fused(p, t))
            continue;
        float lo, hi;
        if (!fixed(p, t, &lo, &hi)) return false;
    }
    return true;
}

/* Shared parameters flow from each shared-parameter op's input to its output, in node order. */
static nne_status share_forward(pass *p, bool pow2) {
    const nne_graph *g = p->g;
    nne_status s = NNE_OK;
    for (int32_t i = 0; i < g->n_nodes && !s; i++)
        if (nne_op_s8_shares_quant(g->nodes[i].op, pow2)) {
            nne_quant *q = &p->plan[g->nodes[i].output].quant;
            nne_quant_free(q);
            s = nne_quant_copy(q, &p->plan[g->nodes[i].inputs[0]].quant);
        }
    return s;
}

/* Give tensor t the parameters q, and the input of the shared-parameter op producing it. */
static nne_status force_quant(pass *p, int32_t t, const nne_quant *q) {
    nne_quant *d = &p->plan[t].quant;
    nne_quant_free(d);
    nne_status s = nne_quant_copy(d, q);
    const int32_t pr = nne_graph_producer(p->g, t);
    if (!s && pr >= 0 && nne_op_s8_shares_quant(p->g->nodes[pr].op, true))
        s = force_quant(p, p->g->nodes[pr].inputs[0], q);
    return s;
}

/* Quantization of every input and activation, in node order (shared parameters follow
 * their producer's). */
static nne_status plan_activations(pass *p, const nne_histogram *hist) {
    nne_graph *g = p->g;
    const bool pow2 = p->o->scheme == NNE_QSCHEME_POW2;
    nne_observer_opts oo = p->o->observer;
    oo.symmetric = pow2;
    nne_status s = NNE_OK;
    for (int32_t t = 0; t < g->n_tensors && !s; t++) {
        if (g->tensors[t].kind == NNE_TENSOR_CONSTANT) continue;
        const int32_t pr = nne_graph_producer(g, t);
        p->plan[t].dtype = NNE_S8;
        if (pr >= 0 && nne_op_s8_shares_quant(g->nodes[pr].op, pow2)) continue; /* below */
        if (fused(p, t)) continue; /* never materialized: no parameters */
        float lo, hi, scale;
        int32_t zp;
        if (fixed(p, t, &lo, &hi)) {
            nne_qparams_from_range(lo, hi, pow2, pow2, &scale, &zp);
        } else {
            if ((s = nne_observer_range(&hist[t], &oo, &lo, &hi))) return s;
            nne_qparams_from_range(lo, hi, pow2, pow2, &scale, &zp);
            if (pow2) scale = ldexpf(1.0f, -nne_histogram_pow2_fp(&hist[t], lo, hi));
        }
        s = nne_quant_set(&p->plan[t].quant, -1, 1, &scale, &zp, pow2);
    }
    s = s ? s : share_forward(p, pow2);
    /* pow2: a concat's inputs take its parameters (its range covers theirs), so that the DPU
     * writes them into the concat by addressing, with no rescale; backwards through the
     * shared-parameter ops that produce them, then forwards again. */
    for (int32_t i = g->n_nodes - 1; i >= 0 && !s && pow2; i--)
        if (g->nodes[i].op == NNE_OP_CONCAT)
            for (int32_t k = 0; k < g->nodes[i].n_inputs && !s; k++)
                s = force_quant(p, g->nodes[i].inputs[k], &p->plan[g->nodes[i].output].quant);
    if (!s && pow2) s = share_forward(p, pow2);
    return s;
}

/* int32 biases at s_x * s_w (optionally corrected), and the accumulator bound. */
static nne_status plan_biases(pass *p, const bias_fix *fix, int32_t n_fix) {
    nne_graph *g = p->g;
    const bool pow2 = p->o->scheme == NNE_QSCHEME_POW2;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (!is_mac(n->op)) continue;
        const nne_tensor *w = &g->tensors[n->inputs[1]];
        const nne_quant *wq = &p->plan[n->inputs[1]].quant;
        const nne_quant *xq = &p->plan[n->inputs[0]].quant;
        const int32_t oc = (int32_t)w->shape.dim[0];
        const int64_t k = nne_shape_numel(&w->shape) / oc; /* taps x input channels per group */
        int64_t max_bias = 0;
        const int32_t bt = n->n_inputs > 2 ? n->inputs[2] : -1;
        if (bt >= 0) {
            float *b = (float *)p->plan[bt].data; /* our f32 copy */
            for (int32_t f = 0; f < n_fix; f++)
                if (fix[f].node == i && fix[f].pixels)
                    for (int32_t c = 0; c < oc; c++)
                        b[c] += (float)(fix[f].sum[c] / (double)fix[f].pixels);
            int32_t *bq = own(p, (size_t)oc * sizeof *bq);
            float *bs = nne_malloc((size_t)oc * sizeof *bs);
            int32_t *zp = nne_calloc((size_t)oc, sizeof *zp);
            if (!bq || !bs || !zp) {
                nne_free(bs);
                nne_free(zp);
                return NNE_ERR_NOMEM;
            }
            nne_quantize_bias_s32(oc, b, xq->scale[0], wq->scale, wq->count, pow2, bq);
            for (int32_t c = 0; c < oc; c++) {
                bs[c] = xq->scale[0] * wq->scale[wq->count == 1 ? 0 : c];
                {
                    const int64_t v = llabs((long long)bq[c]);
                    if (v > max_bias) max_bias = v;
                }
            }
            nne_status s = nne_quant_set(&p->plan[bt].quant, 0, oc, bs, zp, pow2);
            nne_free(bs);
            nne_free(zp);
            if (s) return s;
            p->plan[bt].dtype = NNE_S32;
            p->plan[bt].data = bq;
        }
        if (nne_s8_acc_bound(k, max_bias) > INT32_MAX)
            return nne_error(NNE_ERR_LIMIT,
                             "quantize: node '%s': int32 accumulator bound %lld exceeds 2^31-1 "
                             "(%lld taps, max |bias| %lld)",
                             n->name, (long long)nne_s8_acc_bound(k, max_bias), (long long)k,
                             (long long)max_bias);
    }
    return NNE_OK;
}

static nne_status prepare_bias_fix(pass *p, bias_fix **out, int32_t *n_out) {
    nne_graph *g = p->g;
    *out = NULL;
    *n_out = 0;
    if (!p->o->bias_correction) return NNE_OK;
    bias_fix *fix = nne_calloc((size_t)g->n_nodes + 1, sizeof *fix);
    if (!fix) return NNE_ERR_NOMEM;
    int32_t n_fix = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if ((n->op != NNE_OP_CONV2D && n->op != NNE_OP_CONV_TRANSPOSE2D) || n->n_inputs < 3 ||
            n->inputs[2] < 0)
            continue;
        const nne_tensor *w = &g->tensors[n->inputs[1]];
        bias_fix *f = &fix[n_fix++];
        f->node = i;
        const size_t nw = (size_t)nne_shape_numel(&w->shape);
        f->wq = nne_malloc(nw * sizeof *f->wq);
        f->sum = nne_calloc((size_t)n->conv_geom.oc, sizeof *f->sum);
        f->scratch =
            nne_malloc((size_t)nne_shape_numel(&g->tensors[n->output].shape) * sizeof *f->scratch);
        if (!f->wq || !f->sum || !f->scratch) {
            *out = fix;
            *n_out = n_fix;
            return NNE_ERR_NOMEM;
        }
        nne_status s = nne_dequantize_tensor_s8(&w->shape, p->plan[n->inputs[1]].data,
                                                &p->plan[n->inputs[1]].quant, f->wq);
        if (s) {
            *out = fix;
            *n_out = n_fix;
            return s;
        }
    }
    *out = fix;
    *n_out = n_fix;
    return NNE_OK;
}

static void bias_fix_free(bias_fix *fix, int32_t n) {
    for (int32_t i = 0; fix && i < n; i++) {
        nne_free(fix[i].wq);
        nne_free(fix[i].sum);
        nne_free(fix[i].scratch);
    }
    nne_free(fix);
}

/* Leaky ReLU slopes are node parameters, not tensors: in pow2 mode they get the PReLU slope
 * rule (docs/quantization.md, 6); nne_quantize_like takes them from the quantized model's
 * node of the same name (`from`). */
static nne_status leaky_slopes(nne_graph *q, const nne_graph *from, bool pow2) {
    for (int32_t i = 0; i < q->n_nodes; i++) {
        nne_node *n = &q->nodes[i];
        if (n->op != NNE_OP_LEAKY_RELU) continue;
        if (from) {
            const int32_t j = nne_graph_find_node(from, n->name);
            if (j >= 0 && from->nodes[j].op == NNE_OP_LEAKY_RELU)
                n->params.leaky.alpha = from->nodes[j].params.leaky.alpha;
        } else if (pow2) {
            nne_status s =
                nne_quantize_slopes_pow2(1, &n->params.leaky.alpha, &n->params.leaky.alpha, NULL);
            if (s) return nne_error(s, "quantize: node '%s': %s", n->name, nne_last_error());
        }
    }
    return NNE_OK;
}

nne_status nne_quantize_graph(nne_graph *g, const nne_quantize_opts *o, nne_graph **out) {
    *out = NULL;
    if (o && o->equalized) *o->equalized = NULL;
    if (!o || (unsigned)o->scheme > NNE_QSCHEME_POW2)
        return nne_error(NNE_ERR_INVALID_ARG, "quantize: no options or bad scheme");
    if (o->weight_bits != 0 && o->weight_bits != 7 && o->weight_bits != 8)
        return nne_error(NNE_ERR_INVALID_ARG, "quantize: weight_bits %d (expected 7 or 8)",
                         (int)o->weight_bits);
    if (!(isfinite(o->output_lo) && isfinite(o->output_hi)) ||
        (o->output_lo >= o->output_hi && (o->output_lo != 0.0f || o->output_hi != 0.0f)))
        return nne_error(NNE_ERR_INVALID_ARG, "quantize: output range [%g, %g] (expected lo < hi)",
                         (double)o->output_lo, (double)o->output_hi);
    nne_status s = nne_graph_infer(g);
    if (!s) s = check_graph(g);
    if (s) return s;
    /* Equalized weights: the pass then runs on the equalized copy (same names and function). */
    nne_graph *ge = NULL;
    nne_equalize_info eq = {0};
    if (o->equalize) {
        nne_equalize_opts eo = {
            .kind = o->equalize_kind, .alpha = o->equalize_alpha, .linear = o->equalize_linear};
        float **rng = NULL;
        if (o->equalize_kind == NNE_EQUALIZE_ACTIVATIONS) {
            if (!o->sample || o->n_samples < 1)
                return nne_error(NNE_ERR_INVALID_ARG,
                                 "quantize: activation equalization needs calibration samples");
            if (!(rng = nne_calloc((size_t)g->n_tensors + 1, sizeof *rng))) return NNE_ERR_NOMEM;
            s = channel_ranges(g, o, rng);
            eo.act_range = (const float *const *)rng;
        }
        if (!s) s = nne_equalize_graph(g, &eo, &ge, &eq);
        for (int32_t t = 0; rng && t < g->n_tensors; t++) nne_free(rng[t]);
        nne_free(rng);
        if (s) return s;
        g = ge;
    }
    pass p = {.g = g, .o = o};
    const bool calib = !all_fixed(&p);
    if (calib && (!o->sample || o->n_samples < 1)) {
        nne_graph_free(ge);
        return nne_error(NNE_ERR_INVALID_ARG, "quantize: no calibration samples");
    }
    p.plan = nne_calloc((size_t)g->n_tensors, sizeof *p.plan);
    p.owned = nne_calloc(2 * (size_t)g->n_tensors + 1, sizeof *p.owned);
    nne_histogram *hist = nne_calloc((size_t)g->n_tensors, sizeof *hist);
    bias_fix *fix = NULL;
    int32_t n_fix = 0;
    if (!p.plan || !p.owned || !hist) s = NNE_ERR_NOMEM;
    for (int32_t i = 0; !s && i < g->n_tensors; i++) {
        p.plan[i].dtype = g->tensors[i].dtype;
        p.plan[i].data = g->tensors[i].data; /* constants no node uses stay as they are */
        p.plan[i].quant.axis = -1;
        nne_histogram_init(&hist[i]);
    }
    if (!s) s = plan_constants(&p);
    if (!s) s = prepare_bias_fix(&p, &fix, &n_fix);
    if (!s && calib) s = calibrate(g, o, hist, fix, n_fix);
    if (!s && o->progress) o->progress(o->ctx, "ranges", 0, 1);
    if (!s) s = plan_activations(&p, hist);
    if (!s) s = plan_biases(&p, fix, n_fix);
    if (!s && o->progress) o->progress(o->ctx, "ranges", 1, 1);
    nne_graph *q = NULL;
    if (!s) s = nne_pass_rebuild(g, p.plan, false, &q);
    if (!s) s = leaky_slopes(q, NULL, o->scheme == NNE_QSCHEME_POW2);
    char buf[64];
    if (!s) s = nne_graph_set_meta(q, "quant.scheme", nne_qscheme_name(o->scheme));
    if (!s) s = nne_graph_set_meta(q, "quant.observer", nne_observer_name(o->observer.kind));
    if (!s && o->fixed_range) /* ranges given by the caller (QAT): all, or some */
        s = nne_graph_set_meta(q, "quant.ranges", calib ? "fixed+observer" : "fixed");
    snprintf(buf, sizeof buf, "%d", calib ? (int)o->n_samples : 0);
    if (!s) s = nne_graph_set_meta(q, "quant.samples", buf);
    if (!s) s = nne_graph_set_meta(q, "quant.bias_correction", o->bias_correction ? "1" : "0");
    if (!s) s = nne_graph_set_meta(q, "quant.weight_bits", o->weight_bits == 7 ? "7" : "8");
    if (!s) s = nne_graph_set_meta(q, "quant.fuse_prelu", fuses(o) ? "1" : "0");
    if (!s && o->output_lo < o->output_hi) {
        snprintf(buf, sizeof buf, "%.9g %.9g", (double)o->output_lo, (double)o->output_hi);
        s = nne_graph_set_meta(q, "quant.output_range", buf);
    }
    if (!s)
        s = nne_graph_set_meta(q, "quant.equalize",
                               !o->equalize ? "0"
                               : o->equalize_kind == NNE_EQUALIZE_ACTIVATIONS ? "activations"
                                                                              : "1");
    if (!s && o->equalize && o->equalize_kind == NNE_EQUALIZE_ACTIVATIONS) {
        snprintf(buf, sizeof buf, "%g", o->equalize_alpha > 0.0f ? o->equalize_alpha : 1.0);
        s = nne_graph_set_meta(q, "quant.equalize_alpha", buf);
    }
    snprintf(buf, sizeof buf, "%d", (int)eq.pairs);
    if (!s && o->equalize) s = nne_graph_set_meta(q, "quant.equalize_pairs", buf);
    if (!s && o->equalize && o->equalize_linear)
        s = nne_graph_set_meta(q, "quant.equalize_linear", "1");
    if (!s && o->observer.kind == NNE_OBSERVER_PERCENTILE) {
        snprintf(buf, sizeof buf, "%g",
                 o->observer.percentile == 0.0 ? 99.99 : o->observer.percentile);
        s = nne_graph_set_meta(q, "quant.percentile", buf);
    }
    if (!s) s = nne_graph_infer(q);
    bias_fix_free(fix, n_fix);
    nne_free(hist);
    plans_free(p.plan, g->n_tensors, p.owned, p.n_owned);
    if (!s && ge && o->equalized) {
        *o->equalized = ge; /* the caller's now */
        ge = NULL;
    }
    nne_graph_free(ge);
    if (s) {
        nne_graph_free(q);
        return s;
    }
    *out = q;
    return NNE_OK;
}

nne_status nne_quantize_like(nne_graph *g, const nne_graph *q, nne_graph **out) {
    *out = NULL;
    nne_status s = nne_graph_infer(g);
    if (s) return s;
    tplan *plan = nne_calloc((size_t)g->n_tensors + 1, sizeof *plan);
    if (!plan) return NNE_ERR_NOMEM;
    for (int32_t i = 0; i < g->n_tensors && !s; i++) {
        const nne_tensor *t = &g->tensors[i];
        const int32_t j = nne_graph_find_tensor(q, t->name);
        plan[i].quant.axis = -1;
        if (j < 0) {
            s = nne_error(NNE_ERR_NOT_FOUND, "quantize: tensor '%s' is not in the quantized model",
                          t->name);
            break;
        }
        const nne_tensor *u = &q->tensors[j];
        if (t->kind == NNE_TENSOR_CONSTANT && !nne_shape_equal(&t->shape, &u->shape)) {
            s = nne_error(NNE_ERR_SHAPE, "quantize: constant '%s' differs in shape", t->name);
            break;
        }
        plan[i].dtype = u->dtype;
        plan[i].data = u->data;
        if (u->quant.count) s = nne_quant_copy(&plan[i].quant, &u->quant);
    }
    if (!s) s = nne_pass_rebuild(g, plan, false, out);
    if (!s) s = leaky_slopes(*out, q, false);
    plans_free(plan, g->n_tensors, NULL, 0);
    return s;
}
