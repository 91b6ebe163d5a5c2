/* The fast CPU backend "cpu" (f32): conv2d and conv_transpose2d run on the tiled, threaded
 * kernels of include/nnedge/conv.h with the following ReLU / PReLU fused into them, dense on
 * nne_gemm_f32; every other node on the reference kernels (cpu_ref.c). Results are within
 * NNE_CONV_F32_TOL of cpu-ref per layer (docs/conv.md), identical for any thread count.
 *
 * Compile decides, per node, one step:
 *   FAST_CONV   conv (+ act when the next node is a ReLU / PReLU that is the conv output's
 *               only reader and the conv output is not a graph output: that node is skipped)
 *   PAIR        conv2d (+ act) -> conv2d (+ act) as one fused pair (nne_conv2d_pair_f32,
 *               docs/conv.md "Cross-layer fusion") when the tensor between them has no other
 *               reader and nne_conv2d_pair_ok accepts them (NNEDGE_FUSE=0: never); the
 *               second conv and the activations are skipped
 *   FAST_DENSE  dense via GEMM (NT) plus bias
 *   FAST_GDN    GDN / IGDN on nne_gdn_f32_exact (the reference's bits, tiled and threaded)
 *   REF         the reference node runner
 * A fused step writes the activation's output tensor directly, unless the arena planner put
 * it over the conv's input (their lifetimes do not overlap, so it may): then the conv writes
 * its own output tensor and the result is copied. Threads: nne_threadpool_default()
 * (NNEDGE_THREADS); one scratch buffer sized for the largest node.
 *
 * "cpu-exact" is the same plan with the _exact convolutions (conv.h) and dense on the
 * reference: bit-identical to cpu-ref for every NNEDGE_ISA and thread count.
 *
 * "cpu-bf16" is the same plan in bf16 (bf16.h, docs/bf16.md): conv2d, conv_transpose2d and
 * dense weights are rounded to bf16 once at compile (kept in the state, 2 bytes each), the
 * layer's f32 input is rounded to bf16 into a state buffer at each run, the kernels sum in
 * f32 and write act(acc + bias) in f32 to the arena. So every activation a convolution or
 * dense layer reads is a bf16 value (rounding it where it is written or where it is read
 * gives the same bits); the other nodes, biases and PReLU slopes stay f32. */
#include <string.h>

#include "backends/cpu/cpu_internal.h"
#include "nnedge/backend.h"
#include "nnedge/bf16.h"
#include "nnedge/conv.h"
#include "nnedge/gemm.h"

typedef enum cpu_step_kind {
    STEP_REF,
    STEP_SKIP,
    STEP_CONV,
    STEP_PAIR, /* conv (+ act) -> conv (+ act) fused (nne_conv2d_pair_f32) */
    STEP_DENSE,
    STEP_GDN
} cpu_step_kind;

typedef struct cpu_step {
    cpu_step_kind kind;
    int32_t act_node;  /* fused activation node, or -1 */
    bool copy_out;     /* conv writes its own output, then copies it to the act's output */
    int32_t pair_node; /* STEP_PAIR: the second conv; its fused activation node or -1 */
    int32_t pair_act;
} cpu_step;

typedef struct cpu_state {
    int32_t n_nodes;
    cpu_step *steps; /* [n_nodes] */
    uint64_t *ns;    /* [n_nodes] wall time of the last run (fused act nodes: 0) */
    nne_threadpool *pool;
    void *scratch;
    bool exact; /* cpu-exact: the _exact convolutions, dense on the reference */
    bool bf16;  /* cpu-bf16 */
    nne_bf16 **wbf; /* cpu-bf16: [n_nodes] the conv / dense weights in bf16, or NULL */
    nne_bf16 *xbf;  /* cpu-bf16: the input of the running conv / dense in bf16 */
} cpu_state;

static float *tdata(const nne_graph *g, uint8_t *arena, int32_t t) {
    if (t < 0) return NULL;
    const nne_tensor *x = &g->tensors[t];
    if (x->kind == NNE_TENSOR_CONSTANT) return x->data;
    return (float *)(void *)(arena + x->arena_offset);
}

/* The ReLU / PReLU node after conv node i that can be fused into it (the conv output's only
 * reader, not a graph output), or -1. */
static int32_t fusable_act(const nne_graph *g, int32_t i) {
    const nne_node *n = &g->nodes[i];
    if (i + 1 >= g->n_nodes) return -1;
    const nne_node *a = &g->nodes[i + 1];
    const bool act =
        a->op == NNE_OP_RELU ||
        (a->op == NNE_OP_PRELU && (g->tensors[a->inputs[1]].shape.dim[0] == 1 ||
                                   g->tensors[a->inputs[1]].shape.dim[0] == n->conv_geom.oc));
    if (!act || a->inputs[0] != n->output || nne_cpu_tensor_readers(g, n->output) != 1 ||
        nne_cpu_is_graph_output(g, n->output))
        return -1;
    return i + 1;
}

/* Plan conv2d node i (act fused at s->act_node or -1) and the conv2d after it as a fused pair
 * (docs/conv.md, "Cross-layer fusion") when the tensor between them has no other reader, is
 * not a graph output, the written output does not overlap the pair's input (it is read until
 * the end) and nne_conv2d_pair_ok accepts the geometry. Returns the pair's scratch or 0. */
static size_t plan_pair(const nne_graph *g, int32_t i, cpu_step *steps, int threads) {
    cpu_step *s = &steps[i];
    const nne_node *n = &g->nodes[i];
    const int32_t last = s->act_node >= 0 ? s->act_node : i, j = last + 1;
    const int32_t mid = g->nodes[last].output;
    if (n->op != NNE_OP_CONV2D || j >= g->n_nodes) return 0;
    const nne_node *n2 = &g->nodes[j];
    if (n2->op != NNE_OP_CONV2D || n2->inputs[0] != mid || nne_cpu_tensor_readers(g, mid) != 1 ||
        nne_cpu_is_graph_output(g, mid) ||
        !nne_conv2d_pair_ok(&n->conv_geom, &n2->conv_geom, false, threads))
        return 0;
    const int32_t a2 = fusable_act(g, j);
    const int32_t final = a2 >= 0 ? g->nodes[a2].output : n2->output;
    bool copy = false;
    if (nne_cpu_tensors_overlap(g, final, n->inputs[0])) {
        if (a2 < 0 || nne_cpu_tensors_overlap(g, n2->output, n->inputs[0])) return 0;
        copy = true; /* the pair writes the conv's own output, then copies */
    }
    s->kind = STEP_PAIR;
    s->copy_out = copy;
    s->pair_node = j;
    s->pair_act = a2;
    steps[j].kind = STEP_SKIP;
    if (a2 >= 0) steps[a2].kind = STEP_SKIP;
    return nne_conv2d_pair_f32_scratch_size(&n->conv_geom, &n2->conv_geom, threads);
}

static size_t step_scratch(const nne_graph *g, const nne_node *n, bool bf16, int threads) {
    if (n->op == NNE_OP_GDN || n->op == NNE_OP_IGDN)
        return nne_gdn_f32_scratch_size((int32_t)g->tensors[n->inputs[1]].shape.dim[0], threads);
    if (n->op == NNE_OP_CONV2D)
        return (bf16 ? nne_conv2d_bf16_scratch_size : nne_conv2d_f32_scratch_size)(&n->conv_geom,
                                                                                   threads);
    if (n->op == NNE_OP_CONV_TRANSPOSE2D)
        return (bf16 ? nne_conv_transpose2d_bf16_scratch_size
                     : nne_conv_transpose2d_f32_scratch_size)(&n->conv_geom, threads);
    const nne_shape *ws = &g->tensors[n->inputs[1]].shape;
    const int32_t batch = (int32_t)g->tensors[n->inputs[0]].shape.dim[0];
    if (bf16)
        return nne_dense_bf16_scratch_size(batch, (int32_t)ws->dim[1], (int32_t)ws->dim[0],
                                           threads);
    return nne_gemm_f32_scratch_size(batch, (int32_t)ws->dim[0], (int32_t)ws->dim[1], threads);
}

static void cpu_free(void *state) {
    cpu_state *st = state;
    if (!st) return;
    if (st->wbf)
        for (int32_t i = 0; i < st->n_nodes; i++) nne_free(st->wbf[i]);
    nne_free(st->wbf);
    nne_free(st->xbf);
    nne_free(st->steps);
    nne_free(st->ns);
    nne_aligned_free(st->scratch);
    nne_free(st);
}

/* cpu-bf16: the node's weights in bf16, and the largest input to convert, in *x_max. */
static nne_status bf16_weights(cpu_state *st, const nne_graph *g, int32_t i, size_t *x_max) {
    const nne_node *n = &g->nodes[i];
    const nne_tensor *w = &g->tensors[n->inputs[1]];
    const size_t nw = (size_t)nne_shape_numel(&w->shape);
    const size_t nx = (size_t)nne_shape_numel(&g->tensors[n->inputs[0]].shape);
    if (nx > *x_max) *x_max = nx;
    if (w->kind != NNE_TENSOR_CONSTANT || !w->data)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "backend cpu-bf16: node '%s': weights '%s' are not a constant",
                         n->name ? n->name : "?", w->name ? w->name : "?");
    st->wbf[i] = nne_malloc(nw ? nw * sizeof(nne_bf16) : 1);
    if (!st->wbf[i]) return NNE_ERR_NOMEM;
    nne_f32_to_bf16_array(w->data, st->wbf[i], nw);
    return NNE_OK;
}

static nne_status cpu_compile_as(const nne_graph *g, bool exact, bool bf16, void **state) {
    cpu_state *st = nne_calloc(1, sizeof *st);
    if (!st) return NNE_ERR_NOMEM;
    st->exact = exact;
    st->bf16 = bf16;
    st->n_nodes = g->n_nodes;
    st->steps = nne_calloc((size_t)g->n_nodes + 1, sizeof *st->steps);
    st->ns = nne_calloc((size_t)g->n_nodes + 1, sizeof *st->ns);
    if (bf16) st->wbf = nne_calloc((size_t)g->n_nodes + 1, sizeof *st->wbf);
    if (!st->steps || !st->ns || (bf16 && !st->wbf)) {
        cpu_free(st);
        return NNE_ERR_NOMEM;
    }
    st->pool = nne_threadpool_default();
    const int threads = nne_threadpool_threads(st->pool);
    size_t scratch = 0, x_max = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        cpu_step *s = &st->steps[i];
        s->act_node = -1;
        if (s->kind == STEP_SKIP) continue;
        if (n->op == NNE_OP_DENSE && !exact)
            s->kind = STEP_DENSE;
        else if (n->op == NNE_OP_GDN || n->op == NNE_OP_IGDN)
            s->kind = STEP_GDN;
        else if (n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D)
            s->kind = STEP_CONV;
        else
            continue;
        if (bf16 && s->kind != STEP_GDN) {
            const nne_status rc = bf16_weights(st, g, i, &x_max);
            if (rc) {
                cpu_free(st);
                return rc;
            }
        }
        const size_t need = step_scratch(g, n, bf16, threads);
        if (need > scratch) scratch = need;
        if (s->kind != STEP_CONV) continue;
        const int32_t a = fusable_act(g, i);
        if (a >= 0) {
            s->act_node = a;
            s->copy_out = nne_cpu_tensors_overlap(g, g->nodes[a].output, n->inputs[0]);
            st->steps[a].kind = STEP_SKIP;
        }
        if (exact || bf16) continue; /* the pair runs the FMA band kernels in f32 */
        const size_t pair = plan_pair(g, i, st->steps, threads);
        if (pair > scratch) scratch = pair;
    }
    if (x_max) st->xbf = nne_malloc(x_max * sizeof(nne_bf16));
    if (scratch) st->scratch = nne_aligned_alloc(scratch);
    if ((x_max && !st->xbf) || (scratch && !st->scratch)) {
        cpu_free(st);
        return NNE_ERR_NOMEM;
    }
    *state = st;
    return NNE_OK;
}

/* The act of a conv whose fused activation node is a (-1: none). */
static nne_conv_act step_act(const nne_graph *g, uint8_t *arena, int32_t a) {
    nne_conv_act act = {NNE_CONV_ACT_NONE, NULL, 0};
    if (a < 0) return act;
    const nne_node *an = &g->nodes[a];
    act.kind = an->op == NNE_OP_RELU ? NNE_CONV_ACT_RELU : NNE_CONV_ACT_PRELU;
    if (an->op == NNE_OP_PRELU) {
        act.slope = tdata(g, arena, an->inputs[1]);
        act.n_slope = (int32_t)g->tensors[an->inputs[1]].shape.dim[0];
    }
    return act;
}

static void run_conv(cpu_state *st, const nne_graph *g, const nne_node *n, const cpu_step *s,
                     uint8_t *arena) {
    const nne_conv_act act = step_act(g, arena, s->act_node);
    float *y = tdata(g, arena, n->output);
    float *final = NULL;
    if (s->act_node >= 0) {
        final = tdata(g, arena, g->nodes[s->act_node].output);
        if (!s->copy_out) y = final;
    }
    const float *x = tdata(g, arena, n->inputs[0]), *w = tdata(g, arena, n->inputs[1]);
    const float *b = tdata(g, arena, n->inputs[2]);
    if (st->bf16) {
        const nne_bf16 *wb = st->wbf[n - g->nodes];
        nne_f32_to_bf16_array(x, st->xbf, (size_t)nne_shape_numel(&g->tensors[n->inputs[0]].shape));
        (n->op == NNE_OP_CONV2D ? nne_conv2d_bf16 : nne_conv_transpose2d_bf16)(
            st->pool, &n->conv_geom, st->xbf, wb, b, &act, y, st->scratch);
    } else if (n->op == NNE_OP_CONV2D)
        (st->exact ? nne_conv2d_f32_exact : nne_conv2d_f32)(st->pool, &n->conv_geom, x, w, b, &act,
                                                            y, st->scratch);
    else
        (st->exact ? nne_conv_transpose2d_f32_exact : nne_conv_transpose2d_f32)(
            st->pool, &n->conv_geom, x, w, b, &act, y, st->scratch);
    if (final && y != final) memcpy(final, y, nne_tensor_nbytes(&g->tensors[n->output]));
}

static void run_pair(cpu_state *st, const nne_graph *g, const nne_node *n, const cpu_step *s,
                     uint8_t *arena) {
    const nne_node *n2 = &g->nodes[s->pair_node];
    const nne_conv_act a1 = step_act(g, arena, s->act_node), a2 = step_act(g, arena, s->pair_act);
    const nne_conv_f32_layer l1 = {&n->conv_geom, tdata(g, arena, n->inputs[1]),
                                   tdata(g, arena, n->inputs[2]), &a1};
    const nne_conv_f32_layer l2 = {&n2->conv_geom, tdata(g, arena, n2->inputs[1]),
                                   tdata(g, arena, n2->inputs[2]), &a2};
    float *final = tdata(g, arena, s->pair_act >= 0 ? g->nodes[s->pair_act].output : n2->output);
    float *y = s->copy_out ? tdata(g, arena, n2->output) : final;
    nne_conv2d_pair_f32(st->pool, &l1, &l2, tdata(g, arena, n->inputs[0]), y, st->scratch);
    if (y != final) memcpy(final, y, nne_tensor_nbytes(&g->tensors[n2->output]));
}

static void run_dense(cpu_state *st, const nne_graph *g, const nne_node *n, uint8_t *arena) {
    const nne_shape *ws = &g->tensors[n->inputs[1]].shape;
    const int32_t batch = (int32_t)g->tensors[n->inputs[0]].shape.dim[0];
    const int32_t out = (int32_t)ws->dim[0], in = (int32_t)ws->dim[1];
    float *y = tdata(g, arena, n->output);
    const float *b = tdata(g, arena, n->inputs[2]);
    if (st->bf16) {
        const float *x = tdata(g, arena, n->inputs[0]);
        nne_f32_to_bf16_array(x, st->xbf, (size_t)batch * in);
        nne_dense_bf16(st->pool, batch, in, out, st->xbf, st->wbf[n - g->nodes], b, y, st->scratch);
        return;
    }
    nne_gemm_f32(st->pool, NNE_GEMM_TRANS_B, batch, out, in, tdata(g, arena, n->inputs[0]), in,
                 tdata(g, arena, n->inputs[1]), in, y, out, st->scratch);
    if (b)
        for (int32_t i = 0; i < batch; i++)
            for (int32_t j = 0; j < out; j++) y[(size_t)i * out + j] += b[j];
}

static void run_gdn(cpu_state *st, const nne_graph *g, const nne_node *n, uint8_t *arena) {
    const int32_t c = (int32_t)g->tensors[n->inputs[1]].shape.dim[0];
    const size_t pixels = (size_t)nne_shape_numel(&g->tensors[n->inputs[0]].shape) / (size_t)c;
    nne_gdn_f32_exact(st->pool, pixels, c, tdata(g, arena, n->inputs[0]),
                      tdata(g, arena, n->inputs[1]), tdata(g, arena, n->inputs[2]),
                      n->op == NNE_OP_IGDN, tdata(g, arena, n->output), st->scratch);
}

static nne_status cpu_run(void *state, const nne_graph *g, uint8_t *arena) {
    cpu_state *st = state;
    for (int32_t i = 0; i < g->n_nodes && i < st->n_nodes; i++) {
        const cpu_step *s = &st->steps[i];
        const uint64_t t0 = nne_time_ns();
        nne_status rc = NNE_OK;
        if (s->kind == STEP_CONV)
            run_conv(st, g, &g->nodes[i], s, arena);
        else if (s->kind == STEP_PAIR)
            run_pair(st, g, &g->nodes[i], s, arena);
        else if (s->kind == STEP_DENSE)
            run_dense(st, g, &g->nodes[i], arena);
        else if (s->kind == STEP_GDN)
            run_gdn(st, g, &g->nodes[i], arena);
        else if (s->kind == STEP_REF)
            rc = nne_cpu_ref_run_node(g, &g->nodes[i], arena);
        if (rc) return rc;
        st->ns[i] = s->kind == STEP_SKIP ? 0 : nne_time_ns() - t0;
    }
    return NNE_OK;
}

static nne_status cpu_profile(void *state, const nne_graph *g, nne_node_profile *prof) {
    cpu_state *st = state;
    for (int32_t i = 0; i < g->n_nodes && i < st->n_nodes; i++) {
        prof[i].node = i;
        prof[i].ns = st->ns[i];
    }
    return NNE_OK;
}

static nne_status cpu_compile(const nne_graph *g, void **state) {
    return cpu_compile_as(g, false, false, state);
}

static nne_status cpu_exact_compile(const nne_graph *g, void **state) {
    return cpu_compile_as(g, true, false, state);
}

static nne_status cpu_bf16_compile(const nne_graph *g, void **state) {
    return cpu_compile_as(g, false, true, state);
}

const nne_backend *nne_backend_cpu_bf16(void) {
    static const nne_backend be = {
        .name = "cpu-bf16",
        .supports_node = nne_cpu_ref_supports,
        .compile = cpu_bf16_compile,
        .run = cpu_run,
        .profile = cpu_profile,
        .free = cpu_free,
    };
    return &be;
}

const nne_backend *nne_backend_cpu_exact(void) {
    static const nne_backend be = {
        .name = "cpu-exact",
        .supports_node = nne_cpu_ref_supports,
        .compile = cpu_exact_compile,
        .run = cpu_run,
        .profile = cpu_profile,
        .free = cpu_free,
    };
    return &be;
}

const nne_backend *nne_backend_cpu(void) {
    static const nne_backend be = {
        .name = "cpu",
        .supports_node = nne_cpu_ref_supports,
        .compile = cpu_compile,
        .run = cpu_run,
        .profile = cpu_profile,
        .free = cpu_free,
    };
    return &be;
}
