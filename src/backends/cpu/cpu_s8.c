/* The int8 CPU backends: execute quantized graphs (docs/quantization.md, "The quantization
 * pass") node by node.
 *   "cpu-s8"      conv2d / conv_transpose2d on the fast, threaded int8 kernels of
 *                 nnedge/conv.h (bit-exact with the reference, docs/conv.md) on
 *                 nne_threadpool_default(), consecutive conv2d layers (through an activation
 *                 node) as fused pairs where nne_conv2d_pair_ok accepts them (NNEDGE_FUSE=0:
 *                 never; docs/conv.md "Cross-layer fusion"); every other node on the
 *                 reference kernels
 *   "cpu-s8-ref"  every node on the reference int8 kernels of qops.h: the oracle
 * The two produce identical bytes (tests/passes/test_quantize.c). Activations
 * (graph inputs and outputs included) are s8 codes with per-tensor parameters; MAC weights
 * s8 (per tensor or per output channel, zero point 0), biases s32 at s_x * s_w; PReLU slopes
 * and GDN parameters f32. A conv2d / conv_transpose2d / dense whose output has no parameters
 * and is read only by a PReLU / leaky ReLU (nne_graph_fusable_prelu: the quantization pass's
 * fused pairs) runs with that node as one layer: the slope is applied to the accumulator in the
 * output stage (nne_qoutput_fuse_prelu) and the result written to the activation's output;
 * the tensor between them is never written. Output stages, tables and PReLU multipliers are
 * prepared once at compile time, and on cpu-s8 the convolutions' packed weights
 * (nne_conv_s8_prep_create). f32 data enters and leaves through nne_session_set_input_f32 /
 * nne_session_get_output_f32, which quantize and dequantize with the tensors' parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_internal.h"
#include "nnedge/backend.h"
#include "nnedge/conv.h"
#include "nnedge/qops.h"

typedef struct s8_node {
    nne_qoutput out, neg; /* MAC / pool / PReLU-positive output stage; PReLU negative */
    nne_requant *rq;      /* [out.count] */
    nne_requant *neg_rq;  /* [neg.count] */
    int32_t *neg_slope;   /* [neg.count] PReLU integer factors (nne_qprelu_init) */
    int32_t mul;          /* PReLU (positive side), pool, concat: the integer factor of
                           * the input difference (nne_qrescale_init, nne_qprelu_init) */
    nne_qadd add;
    int8_t lut[256];
    nne_qoutput *cat_out; /* concat: one output stage per input */
    nne_requant *cat_rq;
    int32_t lo, hi; /* ReLU / ReLU6 clamp */
    float *gdn_scratch;
    nne_conv_s8_prep *prep; /* cpu-s8 conv2d / conv_transpose2d: weights packed at compile */
    /* MAC node with a fused PReLU / leaky ReLU: that node (run here, skipped itself) and the
     * tensor written (its output); else -1 and the node's own output. copy_to: the arena
     * planner put the activation's output over the MAC's input (their lifetimes do not
     * overlap, so it may): the MAC writes its own output tensor, copied there after (-1: no) */
    int32_t fused_act, y_tensor, copy_to;
    /* cpu-s8: conv2d -> (activation node) -> conv2d fused (nne_conv2d_pair_s8) from this
     * node: the second conv and the activation node between, or -1; skip: run by a pair */
    int32_t pair_node, pair_mid;
    bool skip;
} s8_node;

typedef struct s8_state {
    int32_t n_nodes;
    s8_node *nodes;
    uint64_t *ns;
    bool fast;            /* convolutions on nnedge/conv.h */
    nne_threadpool *pool; /* fast: nne_threadpool_default() */
    void *scratch;        /* fast: the largest convolution's scratch */
} s8_state;

#define FAIL(...) return nne_error(NNE_ERR_UNSUPPORTED, "backend cpu-s8: node '%s' (%s): " __VA_ARGS__)

static const nne_tensor *T(const nne_graph *g, int32_t t) { return t >= 0 ? &g->tensors[t] : NULL; }

static bool per_tensor_s8(const nne_tensor *t) {
    return t->dtype == NNE_S8 && t->quant.count == 1 && t->quant.zero_point[0] >= -128 &&
           t->quant.zero_point[0] <= 127;
}

/* The unquantized s8 tensor between a MAC node and the PReLU / leaky ReLU fused into it. */
static bool fused_mid(const nne_graph *g, int32_t t) {
    return g->tensors[t].dtype == NNE_S8 && g->tensors[t].quant.count == 0 &&
           nne_graph_fusable_prelu(g, t) >= 0;
}

static bool same_quant(const nne_tensor *a, const nne_tensor *b) {
    return a->quant.scale[0] == b->quant.scale[0] &&
           a->quant.zero_point[0] == b->quant.zero_point[0];
}

static bool all_pow2(const nne_graph *g, const nne_node *n) {
    bool p = g->tensors[n->output].quant.pow2;
    for (int32_t k = 0; k < n->n_inputs; k++) {
        const nne_tensor *t = T(g, n->inputs[k]);
        if (t && t->dtype != NNE_F32) p &= t->quant.pow2;
    }
    return p;
}

static nne_status s8_supports(const nne_graph *g, const nne_node *n) {
    const char *nm = n->name, *op = nne_op_name(n->op);
    const nne_tensor *y = T(g, n->output);
    for (int32_t k = 0; k < n->n_inputs; k++) {
        const nne_tensor *t = T(g, n->inputs[k]);
        if (!t || t->kind == NNE_TENSOR_CONSTANT) continue;
        if (k == 0 && fused_mid(g, n->inputs[0])) continue; /* run by its producer */
        if (!per_tensor_s8(t))
            FAIL("input '%s' is %s%s; expects s8 with per-tensor quantization (run `nnedge "
                 "quantize` first)",
                 nm, op, t->name, nne_dtype_name(t->dtype), t->quant.count ? "" : " (no quant)");
    }
    const bool fused = fused_mid(g, n->output);
    if (fused && !per_tensor_s8(T(g, g->nodes[nne_graph_fusable_prelu(g, n->output)].output)))
        FAIL("fused activation's output has no per-tensor s8 quantization", nm, op);
    if (!fused && !per_tensor_s8(y))
        FAIL("output '%s' has no per-tensor s8 quantization", nm, op, y->name);
    switch (n->op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
    case NNE_OP_DENSE: {
        const nne_tensor *w = T(g, n->inputs[1]), *b = n->n_inputs > 2 ? T(g, n->inputs[2]) : NULL;
        if (w->dtype != NNE_S8 || !w->quant.count || (w->quant.count > 1 && w->quant.axis != 0))
            FAIL("weights '%s' must be s8, per tensor or per output channel", nm, op, w->name);
        for (int32_t c = 0; c < w->quant.count; c++)
            if (w->quant.zero_point[c] != 0)
                FAIL("weights '%s' must be symmetric (zero point 0)", nm, op, w->name);
        int64_t max_bias = 0;
        if (b) {
            if (b->dtype != NNE_S32) FAIL("bias '%s' must be s32", nm, op, b->name);
            /* The kernels take the bias at s_x * s_w[c]; a bias that says otherwise was
             * quantized for another layer. */
            const nne_tensor *xt = T(g, n->inputs[0]);
            for (int32_t c = 0; c < b->quant.count; c++) {
                const double want = (double)xt->quant.scale[0] *
                                    w->quant.scale[w->quant.count == 1 ? 0 : c];
                if (fabs(b->quant.scale[c] - want) > 1e-6 * want)
                    FAIL("bias '%s' scale %g is not s_x * s_w = %g", nm, op, b->name,
                         (double)b->quant.scale[c], want);
            }
            for (int64_t c = 0; c < b->shape.dim[0]; c++)
                { const int64_t v = llabs((long long)((const int32_t *)b->data)[c]); if (v > max_bias) max_bias = v; }
        }
        const int64_t k = nne_shape_numel(&w->shape) / w->shape.dim[0];
        if (nne_s8_acc_bound(k, max_bias) > INT32_MAX)
            FAIL("int32 accumulator bound %lld exceeds 2^31-1", nm, op,
                 (long long)nne_s8_acc_bound(k, max_bias));
        return NNE_OK;
    }
    case NNE_OP_RELU:
    case NNE_OP_RELU6:
    case NNE_OP_MAXPOOL2D:
    case NNE_OP_RESHAPE:
    case NNE_OP_FLATTEN:
        if (!same_quant(T(g, n->inputs[0]), y))
            FAIL("output must share the input's scale and zero point", nm, op);
        return NNE_OK;
    case NNE_OP_PRELU:
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
        for (int32_t k = 1; k < n->n_inputs; k++)
            if (T(g, n->inputs[k])->dtype != NNE_F32)
                FAIL("parameter '%s' must be f32", nm, op, T(g, n->inputs[k])->name);
        return NNE_OK;
    case NNE_OP_LEAKY_RELU:
    case NNE_OP_SIGMOID:
    case NNE_OP_TANH:
    case NNE_OP_HARDSWISH:
    case NNE_OP_AVGPOOL2D:
    case NNE_OP_ADD:
    case NNE_OP_CONCAT:
        return NNE_OK;
    default:
        FAIL("no int8 kernel for this op", nm, op);
    }
}

static float sc(const nne_graph *g, int32_t t) { return g->tensors[t].quant.scale[0]; }
static int32_t zp(const nne_graph *g, int32_t t) { return g->tensors[t].quant.zero_point[0]; }
static int64_t last_dim(const nne_graph *g, int32_t t) {
    const nne_shape *s = &g->tensors[t].shape;
    return s->dim[s->ndim - 1];
}

static nne_status prepare_node(const nne_graph *g, const nne_node *n, s8_node *st) {
    const int32_t x = n->inputs[0], y = n->output;
    const bool pow2 = all_pow2(g, n);
    nne_status s = NNE_OK;
    switch (n->op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
    case NNE_OP_DENSE: {
        const nne_quant *wq = &g->tensors[n->inputs[1]].quant;
        if (!(st->rq = nne_calloc((size_t)wq->count, sizeof *st->rq))) return NNE_ERR_NOMEM;
        if (st->fused_act < 0)
            return nne_qoutput_from_quant(&st->out, st->rq, wq->count, &g->tensors[x].quant, wq,
                                          &g->tensors[y].quant, NNE_QACT_NONE);
        /* conv + PReLU / leaky ReLU as one layer: to the activation's output parameters, the
         * slope on the accumulator's negative side */
        const nne_node *a = &g->nodes[st->fused_act];
        const bool leaky = a->op == NNE_OP_LEAKY_RELU;
        const float *slope = leaky ? &a->params.leaky.alpha : g->tensors[a->inputs[1]].data;
        const int32_t ns = leaky ? 1 : (int32_t)g->tensors[a->inputs[1]].shape.dim[0];
        const int32_t cnt = ns > wq->count ? ns : wq->count;
        if ((s = nne_qoutput_from_quant(&st->out, st->rq, wq->count, &g->tensors[x].quant, wq,
                                        &g->tensors[a->output].quant, NNE_QACT_NONE)))
            return s;
        if (!(st->neg_rq = nne_calloc((size_t)cnt, sizeof *st->neg_rq))) return NNE_ERR_NOMEM;
        return nne_qoutput_fuse_prelu(&st->out, st->neg_rq, cnt, sc(g, x), wq->scale,
                                      sc(g, a->output), slope, ns);
    }
    case NNE_OP_MAXPOOL2D:
    case NNE_OP_AVGPOOL2D:
        if (!(st->rq = nne_calloc(1, sizeof *st->rq))) return NNE_ERR_NOMEM;
        return nne_qrescale_init(&st->out, st->rq, sc(g, x), sc(g, y), zp(g, y), pow2, &st->mul);
    case NNE_OP_RELU:
    case NNE_OP_RELU6:
        nne_qact_range(n->op == NNE_OP_RELU ? NNE_QACT_RELU : NNE_QACT_RELU6, sc(g, y), zp(g, y),
                       g->tensors[y].quant.pow2, &st->lo, &st->hi);
        return NNE_OK;
    case NNE_OP_PRELU:
    case NNE_OP_LEAKY_RELU: {
        const bool leaky = n->op == NNE_OP_LEAKY_RELU;
        const float *slope = leaky ? &n->params.leaky.alpha : g->tensors[n->inputs[1]].data;
        const int32_t ns = leaky ? 1 : (int32_t)g->tensors[n->inputs[1]].shape.dim[0];
        /* pow2 needs integer slopes at a power of two (the pass's pow2 scheme makes them,
         * docs/quantization.md, 6); a pow2 graph with other slopes (quantized before that
         * rule, or by hand) runs its negative side in Q31. */
        bool slopes_pow2 = pow2;
        for (int32_t c = 0; c < ns && slopes_pow2; c++) {
            int32_t code, k;
            slopes_pow2 = nne_slope_pow2(slope[c], &code, &k);
        }
        st->rq = nne_calloc(1, sizeof *st->rq);
        st->neg_rq = nne_calloc((size_t)ns, sizeof *st->neg_rq);
        st->neg_slope = nne_calloc((size_t)ns, sizeof *st->neg_slope);
        if (!st->rq || !st->neg_rq || !st->neg_slope) return NNE_ERR_NOMEM;
        return nne_qprelu_init(&st->out, st->rq, &st->mul, &st->neg, st->neg_rq,
                               st->neg_slope, sc(g, x), slope, ns, sc(g, y), zp(g, y),
                               slopes_pow2);
    }
    case NNE_OP_SIGMOID:
    case NNE_OP_TANH:
    case NNE_OP_HARDSWISH: {
        nne_unary_f32_fn f = n->op == NNE_OP_SIGMOID ? nne_sigmoid_f32__ref
                             : n->op == NNE_OP_TANH  ? nne_tanh_f32__ref
                                                     : nne_hardswish_f32__ref;
        nne_lut_s8_build(f, sc(g, x), zp(g, x), sc(g, y), zp(g, y), g->tensors[y].quant.pow2,
                         st->lut);
        return NNE_OK;
    }
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
        st->gdn_scratch = nne_aligned_alloc(nne_gdn_s8_scratch_size((int32_t)last_dim(g, x)));
        return st->gdn_scratch ? NNE_OK : NNE_ERR_NOMEM;
    case NNE_OP_ADD:
        return nne_qadd_init(&st->add, sc(g, x), zp(g, x), sc(g, n->inputs[1]),
                             zp(g, n->inputs[1]), sc(g, y), zp(g, y), pow2, NNE_QACT_NONE);
    case NNE_OP_CONCAT:
        st->cat_out = nne_calloc((size_t)n->n_inputs, sizeof *st->cat_out);
        st->cat_rq = nne_calloc((size_t)n->n_inputs, sizeof *st->cat_rq);
        if (!st->cat_out || !st->cat_rq) return NNE_ERR_NOMEM;
        for (int32_t k = 0; k < n->n_inputs && !s; k++)
            s = nne_qrescale_init(&st->cat_out[k], &st->cat_rq[k], sc(g, n->inputs[k]), sc(g, y),
                                  zp(g, y), pow2, &st->mul); /* the same mul for every input */
        return s;
    default:
        return NNE_OK;
    }
}

/* cpu-s8: pack a convolution's constant weights once (nne_conv_s8_prep_create), for the ISA in
 * use at compile; weights or a bias computed by the graph stay on the per-call path. */
static nne_status prepare_conv(const nne_graph *g, const nne_node *n, s8_node *st) {
    const nne_tensor *w = T(g, n->inputs[1]), *b = n->n_inputs > 2 ? T(g, n->inputs[2]) : NULL;
    if (w->kind != NNE_TENSOR_CONSTANT || (b && b->kind != NNE_TENSOR_CONSTANT)) return NNE_OK;
    return nne_conv_s8_prep_create(&n->conv_geom, n->op == NNE_OP_CONV_TRANSPOSE2D,
                                   zp(g, n->inputs[0]), w->data, b ? b->data : NULL, &st->out,
                                   &st->prep);
}

static void s8_free(void *state) {
    s8_state *st = state;
    if (!st) return;
    for (int32_t i = 0; st->nodes && i < st->n_nodes; i++) {
        nne_free(st->nodes[i].rq);
        nne_free(st->nodes[i].neg_rq);
        nne_free(st->nodes[i].neg_slope);
        nne_free(st->nodes[i].cat_out);
        nne_free(st->nodes[i].cat_rq);
        nne_aligned_free(st->nodes[i].gdn_scratch);
        nne_conv_s8_prep_free(st->nodes[i].prep);
    }
    nne_free(st->nodes);
    nne_free(st->ns);
    nne_aligned_free(st->scratch);
    nne_free(st);
}

/* cpu-s8: plan conv2d node i and the conv2d after it (through a ReLU / ReLU6 / PReLU / leaky
 * ReLU node, or directly) as a fused pair (docs/conv.md, "Cross-layer fusion") when each
 * tensor between them has no other reader and is not a graph output, the pair's output does
 * not overlap its input (read until the end) and nne_conv2d_pair_ok accepts the geometry.
 * Returns the pair's scratch or 0. */
static size_t plan_pair(const nne_graph *g, int32_t i, s8_node *nodes, int threads) {
    const nne_node *n = &g->nodes[i];
    if (n->op != NNE_OP_CONV2D || i + 1 >= g->n_nodes) return 0;
    int32_t j = i + 1, mid = -1, t = n->output;
    const nne_op_type op = g->nodes[j].op;
    if (op == NNE_OP_RELU || op == NNE_OP_RELU6 || op == NNE_OP_PRELU || op == NNE_OP_LEAKY_RELU) {
        if (g->nodes[j].inputs[0] != t || nne_cpu_tensor_readers(g, t) != 1 ||
            nne_cpu_is_graph_output(g, t) || j + 1 >= g->n_nodes)
            return 0;
        mid = j++;
        t = g->nodes[mid].output;
    }
    const nne_node *n2 = &g->nodes[j];
    /* the pair writes the second conv's output, or that of the activation fused into it */
    if (n2->op != NNE_OP_CONV2D || n2->inputs[0] != t || nne_cpu_tensor_readers(g, t) != 1 ||
        nne_cpu_is_graph_output(g, t) || nodes[j].copy_to >= 0 ||
        nne_cpu_tensors_overlap(g, nodes[j].y_tensor, n->inputs[0]) ||
        !nne_conv2d_pair_ok(&n->conv_geom, &n2->conv_geom, true, threads))
        return 0;
    nodes[i].pair_node = j;
    nodes[i].pair_mid = mid;
    nodes[j].skip = true;
    if (mid >= 0) nodes[mid].skip = true;
    return nne_conv2d_pair_s8_scratch_size(&n->conv_geom, &n2->conv_geom, threads);
}

static nne_status s8_compile(const nne_graph *g, bool fast, void **state) {
    s8_state *st = nne_calloc(1, sizeof *st);
    if (!st) return NNE_ERR_NOMEM;
    st->n_nodes = g->n_nodes;
    st->nodes = nne_calloc((size_t)g->n_nodes + 1, sizeof *st->nodes);
    st->ns = nne_calloc((size_t)g->n_nodes + 1, sizeof *st->ns);
    nne_status s = st->nodes && st->ns ? NNE_OK : NNE_ERR_NOMEM;
    size_t scratch = 0;
    st->fast = fast;
    if (fast) st->pool = nne_threadpool_default();
    for (int32_t i = 0; i < g->n_nodes; i++) {
        st->nodes[i].fused_act = st->nodes[i].pair_node = st->nodes[i].pair_mid = -1;
        st->nodes[i].copy_to = -1;
        st->nodes[i].y_tensor = g->nodes[i].output;
    }
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (fused_mid(g, g->nodes[i].output)) {
            const int32_t a = nne_graph_fusable_prelu(g, g->nodes[i].output);
            st->nodes[i].fused_act = a;
            st->nodes[a].skip = true;
            if (nne_cpu_tensors_overlap(g, g->nodes[a].output, g->nodes[i].inputs[0]))
                st->nodes[i].copy_to = g->nodes[a].output;
            else
                st->nodes[i].y_tensor = g->nodes[a].output;
        }
    for (int32_t i = 0; i < g->n_nodes && !s; i++) {
        const nne_node *n = &g->nodes[i];
        if (st->nodes[i].skip) continue; /* an activation fused into its producer */
        s = prepare_node(g, n, &st->nodes[i]);
        if (!s && fast && (n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D))
            s = prepare_conv(g, n, &st->nodes[i]);
        if (s)
            s = nne_error(s, "backend %s: node '%s' (%s): %s", fast ? "cpu-s8" : "cpu-s8-ref",
                          n->name, nne_op_name(n->op), nne_last_error());
        const int threads = nne_threadpool_threads(st->pool);
        size_t need = 0;
        if (fast && n->op == NNE_OP_CONV2D) need = nne_conv2d_s8_scratch_size(&n->conv_geom, threads);
        if (fast && n->op == NNE_OP_CONV_TRANSPOSE2D)
            need = nne_conv_transpose2d_s8_scratch_size(&n->conv_geom, threads);
        if (need > scratch) scratch = need;
    }
    for (int32_t i = 0; i < g->n_nodes && !s && fast; i++) {
        if (st->nodes[i].skip) continue;
        const size_t need = plan_pair(g, i, st->nodes, nne_threadpool_threads(st->pool));
        if (need > scratch) scratch = need;
    }
    if (!s && scratch && !(st->scratch = nne_aligned_alloc(scratch))) s = NNE_ERR_NOMEM;
    if (s) {
        s8_free(st);
        return s;
    }
    *state = st;
    return NNE_OK;
}

static void *tdata(const nne_graph *g, uint8_t *arena, int32_t t) {
    if (t < 0) return NULL;
    const nne_tensor *x = &g->tensors[t];
    return x->kind == NNE_TENSOR_CONSTANT ? x->data : arena + x->arena_offset;
}

static void run_node(const s8_state *ss, const nne_graph *g, const nne_node *n,
                     const s8_node *st, uint8_t *arena) {
    const int32_t *in = n->inputs;
    const int8_t *x = tdata(g, arena, in[0]);
    int8_t *y = tdata(g, arena, st->y_tensor);
    const size_t cnt = (size_t)nne_shape_numel(&g->tensors[n->output].shape);
    switch (n->op) {
    case NNE_OP_CONV2D:
        if (st->prep)
            nne_conv_s8_prep_run(ss->pool, st->prep, x, y, ss->scratch);
        else if (ss->fast)
            nne_conv2d_s8(ss->pool, &n->conv_geom, x, zp(g, in[0]), tdata(g, arena, in[1]),
                          tdata(g, arena, n->n_inputs > 2 ? in[2] : -1), &st->out, y,
                          ss->scratch);
        else
            nne_conv2d_s8__ref(&n->conv_geom, x, zp(g, in[0]), tdata(g, arena, in[1]),
                               tdata(g, arena, n->n_inputs > 2 ? in[2] : -1), &st->out, y);
        break;
    case NNE_OP_CONV_TRANSPOSE2D:
        if (st->prep)
            nne_conv_s8_prep_run(ss->pool, st->prep, x, y, ss->scratch);
        else if (ss->fast)
            nne_conv_transpose2d_s8(ss->pool, &n->conv_geom, x, zp(g, in[0]),
                                    tdata(g, arena, in[1]),
                                    tdata(g, arena, n->n_inputs > 2 ? in[2] : -1), &st->out, y,
                                    ss->scratch);
        else
            nne_conv_transpose2d_s8__ref(&n->conv_geom, x, zp(g, in[0]), tdata(g, arena, in[1]),
                                         tdata(g, arena, n->n_inputs > 2 ? in[2] : -1), &st->out,
                                         y);
        break;
    case NNE_OP_DENSE: {
        const nne_shape *ws = &g->tensors[in[1]].shape;
        nne_dense_s8__ref((int32_t)g->tensors[in[0]].shape.dim[0], (int32_t)ws->dim[1],
                          (int32_t)ws->dim[0], x, zp(g, in[0]), tdata(g, arena, in[1]),
                          tdata(g, arena, n->n_inputs > 2 ? in[2] : -1), &st->out, y);
        break;
    }
    case NNE_OP_MAXPOOL2D:
    case NNE_OP_AVGPOOL2D:
        nne_pool2d_s8__ref(&n->pool_geom, n->op == NNE_OP_MAXPOOL2D ? NNE_POOL_MAX : NNE_POOL_AVG,
                           x, zp(g, in[0]), &st->out, st->mul, y);
        break;
    case NNE_OP_RELU:
    case NNE_OP_RELU6:
        nne_clamp_s8__ref(cnt, x, st->lo, st->hi, y);
        break;
    case NNE_OP_PRELU:
    case NNE_OP_LEAKY_RELU: {
        const int32_t c = (int32_t)last_dim(g, in[0]);
        nne_prelu_s8__ref(cnt / (size_t)c, c, x, zp(g, in[0]), &st->out, st->mul, &st->neg,
                          st->neg_slope, y);
        break;
    }
    case NNE_OP_SIGMOID:
    case NNE_OP_TANH:
    case NNE_OP_HARDSWISH:
        nne_lut_s8__ref(cnt, st->lut, x, y);
        break;
    case NNE_OP_GDN:
    case NNE_OP_IGDN: {
        const int32_t c = (int32_t)last_dim(g, in[0]);
        nne_gdn_s8__ref(cnt / (size_t)c, c, x, sc(g, in[0]), zp(g, in[0]), tdata(g, arena, in[1]),
                        tdata(g, arena, in[2]), n->op == NNE_OP_IGDN, sc(g, n->output),
                        zp(g, n->output), g->tensors[n->output].quant.pow2, st->gdn_scratch, y);
        break;
    }
    case NNE_OP_ADD:
        nne_add_s8__ref(cnt, x, tdata(g, arena, in[1]), &st->add, y);
        break;
    case NNE_OP_CONCAT: {
        const nne_shape *os = &g->tensors[n->output].shape;
        int32_t axis = n->params.concat.axis;
        if (axis < 0) axis += os->ndim;
        size_t outer = 1, unit = 1;
        for (int d = 0; d < axis; d++) outer *= (size_t)os->dim[d];
        for (int d = axis + 1; d < os->ndim; d++) unit *= (size_t)os->dim[d];
        const int8_t *xs[NNE_MAX_NODE_INPUTS];
        size_t inner[NNE_MAX_NODE_INPUTS];
        int32_t zps[NNE_MAX_NODE_INPUTS];
        for (int32_t k = 0; k < n->n_inputs; k++) {
            xs[k] = tdata(g, arena, in[k]);
            inner[k] = (size_t)g->tensors[in[k]].shape.dim[axis] * unit;
            zps[k] = zp(g, in[k]);
        }
        nne_concat_s8__ref(outer, n->n_inputs, xs, inner, zps, st->cat_out, st->mul, y);
        break;
    }
    case NNE_OP_RESHAPE:
    case NNE_OP_FLATTEN:
        if (x != y) memmove(y, x, cnt);
        break;
    default: /* rejected by s8_supports */
        break;
    }
}

/* The fused pair planned at node n (plan_pair). */
static void run_pair(const s8_state *ss, const nne_graph *g, const nne_node *n, const s8_node *st,
                     uint8_t *arena) {
    const nne_node *n2 = &g->nodes[st->pair_node];
    const s8_node *s2 = &ss->nodes[st->pair_node];
    nne_conv_s8_mid mid;
    memset(&mid, 0, sizeof mid);
    if (st->pair_mid >= 0 && st->fused_act != st->pair_mid) { /* else in l1's output stage */
        const nne_node *a = &g->nodes[st->pair_mid];
        const s8_node *sa = &ss->nodes[st->pair_mid];
        if (a->op == NNE_OP_RELU || a->op == NNE_OP_RELU6) {
            mid.kind = NNE_CONV_S8_MID_CLAMP;
            mid.lo = sa->lo, mid.hi = sa->hi;
        } else {
            mid.kind = NNE_CONV_S8_MID_PRELU;
            mid.x_zero_point = zp(g, a->inputs[0]);
            mid.pos = &sa->out, mid.neg = &sa->neg, mid.neg_slope = sa->neg_slope;
            mid.pos_mul = sa->mul;
        }
    }
    const nne_conv_s8_layer l1 = {&n->conv_geom, zp(g, n->inputs[0]), tdata(g, arena, n->inputs[1]),
                                  tdata(g, arena, n->n_inputs > 2 ? n->inputs[2] : -1), &st->out};
    const nne_conv_s8_layer l2 = {&n2->conv_geom, zp(g, n2->inputs[0]),
                                  tdata(g, arena, n2->inputs[1]),
                                  tdata(g, arena, n2->n_inputs > 2 ? n2->inputs[2] : -1), &s2->out};
    if (st->prep && s2->prep)
        nne_conv2d_pair_s8_prep(ss->pool, st->prep, &mid, s2->prep, tdata(g, arena, n->inputs[0]),
                                tdata(g, arena, s2->y_tensor), ss->scratch);
    else
        nne_conv2d_pair_s8(ss->pool, &l1, &mid, &l2, tdata(g, arena, n->inputs[0]),
                           tdata(g, arena, s2->y_tensor), ss->scratch);
}

static nne_status s8_run(void *state, const nne_graph *g, uint8_t *arena) {
    s8_state *st = state;
    for (int32_t i = 0; i < g->n_nodes && i < st->n_nodes; i++) {
        const uint64_t t0 = nne_time_ns();
        if (st->nodes[i].skip) { /* run by a fused pair */
            st->ns[i] = 0;
            continue;
        }
        if (st->nodes[i].pair_node >= 0)
            run_pair(st, g, &g->nodes[i], &st->nodes[i], arena);
        else
            run_node(st, g, &g->nodes[i], &st->nodes[i], arena);
        if (st->nodes[i].copy_to >= 0 && st->nodes[i].pair_node < 0)
            memcpy(tdata(g, arena, st->nodes[i].copy_to), tdata(g, arena, g->nodes[i].output),
                   nne_tensor_nbytes(&g->tensors[g->nodes[i].output]));
        st->ns[i] = nne_time_ns() - t0;
    }
    return NNE_OK;
}

static nne_status s8_profile(void *state, const nne_graph *g, nne_node_profile *prof) {
    s8_state *st = state;
    for (int32_t i = 0; i < g->n_nodes && i < st->n_nodes; i++) {
        prof[i].node = i;
        prof[i].ns = st->ns[i];
    }
    return NNE_OK;
}

static nne_status s8_compile_fast(const nne_graph *g, void **state) {
    return s8_compile(g, true, state);
}

static nne_status s8_compile_ref(const nne_graph *g, void **state) {
    return s8_compile(g, false, state);
}

const nne_backend *nne_backend_cpu_s8_ref(void) {
    static const nne_backend be = {
        .name = "cpu-s8-ref",
        .supports_node = s8_supports,
        .compile = s8_compile_ref,
        .run = s8_run,
        .profile = s8_profile,
        .free = s8_free,
    };
    return &be;
}

const nne_backend *nne_backend_cpu_s8(void) {
    static const nne_backend be = {
        .name = "cpu-s8",
        .supports_node = s8_supports,
        .compile = s8_compile_fast,
        .run = s8_run,
        .profile = s8_profile,
        .free = s8_free,
    };
    return &be;
}
