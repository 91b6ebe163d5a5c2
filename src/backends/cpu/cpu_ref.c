/* The reference CPU backend: executes f32 graphs node by node with the plain C kernels of
 * src/ops. It is the oracle the other backends are compared against. */
#include <string.h>

#include "backends/cpu/cpu_internal.h"
#include "nnedge/backend.h"

typedef struct cpu_ref_state {
    int32_t n_nodes;
    uint64_t *ns; /* [n_nodes] wall time of the last run */
} cpu_ref_state;

nne_status nne_cpu_ref_supports(const nne_graph *g, const nne_node *n) {
    for (int32_t k = 0; k < n->n_inputs; k++) {
        int32_t t = n->inputs[k];
        if (t >= 0 && g->tensors[t].dtype != NNE_F32)
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "backend cpu-ref: node '%s' (%s): input '%s' is "
                             "%s, only f32 is supported",
                             n->name, nne_op_name(n->op), g->tensors[t].name,
                             nne_dtype_name(g->tensors[t].dtype));
    }
    return NNE_OK;
}

static nne_status cpu_ref_compile(const nne_graph *g, void **state) {
    cpu_ref_state *st = nne_calloc(1, sizeof *st);
    if (!st) return NNE_ERR_NOMEM;
    st->n_nodes = g->n_nodes;
    st->ns = nne_calloc((size_t)g->n_nodes + 1, sizeof *st->ns);
    if (!st->ns) {
        nne_free(st);
        return NNE_ERR_NOMEM;
    }
    *state = st;
    return NNE_OK;
}

static void cpu_ref_free(void *state) {
    cpu_ref_state *st = state;
    if (!st) return;
    nne_free(st->ns);
    nne_free(st);
}

static float *tdata(const nne_graph *g, uint8_t *arena, int32_t t) {
    if (t < 0) return NULL;
    const nne_tensor *x = &g->tensors[t];
    if (x->kind == NNE_TENSOR_CONSTANT) return x->data;
    return (float *)(arena + x->arena_offset);
}

static size_t numel(const nne_graph *g, int32_t t) {
    return (size_t)nne_shape_numel(&g->tensors[t].shape);
}

static int64_t last_dim(const nne_graph *g, int32_t t) {
    const nne_shape *s = &g->tensors[t].shape;
    return s->dim[s->ndim - 1];
}

nne_status nne_cpu_ref_run_node(const nne_graph *g, const nne_node *n, uint8_t *arena) {
    const int32_t *in = n->inputs;
    float *x = tdata(g, arena, in[0]);
    float *y = tdata(g, arena, n->output);
    size_t cnt = numel(g, n->output);
    switch (n->op) {
    case NNE_OP_CONV2D:
        nne_conv2d_f32__ref(&n->conv_geom, x, tdata(g, arena, in[1]), tdata(g, arena, in[2]), y);
        break;
    case NNE_OP_CONV_TRANSPOSE2D:
        nne_conv_transpose2d_f32__ref(&n->conv_geom, x, tdata(g, arena, in[1]),
                                      tdata(g, arena, in[2]), y);
        break;
    case NNE_OP_DENSE: {
        const nne_shape *ws = &g->tensors[in[1]].shape;
        nne_dense_f32__ref((int32_t)g->tensors[in[0]].shape.dim[0], (int32_t)ws->dim[1],
                           (int32_t)ws->dim[0], x, tdata(g, arena, in[1]), tdata(g, arena, in[2]),
                           y);
        break;
    }
    case NNE_OP_MAXPOOL2D:
        nne_pool2d_f32__ref(&n->pool_geom, NNE_POOL_MAX, x, y);
        break;
    case NNE_OP_AVGPOOL2D:
        nne_pool2d_f32__ref(&n->pool_geom, NNE_POOL_AVG, x, y);
        break;
    case NNE_OP_GLOBAL_AVGPOOL: {
        const nne_shape *s = &g->tensors[in[0]].shape;
        nne_global_avgpool_f32__ref((int32_t)s->dim[0], (int32_t)s->dim[1], (int32_t)s->dim[2],
                                    (int32_t)s->dim[3], x, y);
        break;
    }
    case NNE_OP_RELU:
        nne_relu_f32__ref(cnt, x, y);
        break;
    case NNE_OP_RELU6:
        nne_relu6_f32__ref(cnt, x, y);
        break;
    case NNE_OP_LEAKY_RELU:
        nne_leaky_relu_f32__ref(cnt, n->params.leaky.alpha, x, y);
        break;
    case NNE_OP_SIGMOID:
        nne_sigmoid_f32__ref(cnt, x, y);
        break;
    case NNE_OP_TANH:
        nne_tanh_f32__ref(cnt, x, y);
        break;
    case NNE_OP_HARDSWISH:
        nne_hardswish_f32__ref(cnt, x, y);
        break;
    case NNE_OP_PRELU: {
        int32_t c = (int32_t)last_dim(g, in[0]);
        nne_prelu_f32__ref(cnt / (size_t)c, c, x, tdata(g, arena, in[1]),
                           (int32_t)g->tensors[in[1]].shape.dim[0], y);
        break;
    }
    case NNE_OP_GDN:
    case NNE_OP_IGDN: {
        int32_t c = (int32_t)last_dim(g, in[0]);
        nne_gdn_f32__ref(cnt / (size_t)c, c, x, tdata(g, arena, in[1]), tdata(g, arena, in[2]),
                         n->op == NNE_OP_IGDN, y);
        break;
    }
    case NNE_OP_BATCHNORM: {
        int32_t c = (int32_t)last_dim(g, in[0]);
        nne_batchnorm_f32__ref(cnt / (size_t)c, c, x, tdata(g, arena, in[1]),
                               tdata(g, arena, in[2]), tdata(g, arena, in[3]),
                               tdata(g, arena, in[4]), n->params.bn.eps, y);
        break;
    }
    case NNE_OP_ADD:
        nne_add_f32__ref(cnt, x, tdata(g, arena, in[1]), y);
        break;
    case NNE_OP_ABS:
        nne_abs_f32__ref(cnt, x, y);
        break;
    case NNE_OP_QUANTIZE:
        nne_quantize_f32__ref(cnt, x, tdata(g, arena, in[1]), y);
        break;
    case NNE_OP_FACTORIZED_LIKELIHOOD: {
        int32_t c = (int32_t)last_dim(g, in[0]);
        nne_factorized_likelihood_f32__ref(cnt / (size_t)c, c, x, tdata(g, arena, in[1]),
                                           n->params.entropy.lik_min, y);
        break;
    }
    case NNE_OP_GAUSSIAN_LIKELIHOOD:
        nne_gaussian_likelihood_f32__ref(cnt, x, tdata(g, arena, in[1]), tdata(g, arena, in[2]),
                                         n->params.entropy.scale_min, n->params.entropy.lik_min,
                                         y);
        break;
    case NNE_OP_CONCAT: {
        const nne_shape *os = &g->tensors[n->output].shape;
        int32_t axis = n->params.concat.axis;
        if (axis < 0) axis += os->ndim;
        size_t outer = 1, inner_unit = 1;
        for (int d = 0; d < axis; d++) outer *= (size_t)os->dim[d];
        for (int d = axis + 1; d < os->ndim; d++) inner_unit *= (size_t)os->dim[d];
        const float *xs[NNE_MAX_NODE_INPUTS];
        size_t inner[NNE_MAX_NODE_INPUTS];
        for (int32_t k = 0; k < n->n_inputs; k++) {
            xs[k] = tdata(g, arena, in[k]);
            inner[k] = (size_t)g->tensors[in[k]].shape.dim[axis] * inner_unit;
        }
        nne_concat_f32__ref(outer, n->n_inputs, xs, inner, y);
        break;
    }
    case NNE_OP_UPSAMPLE: {
        const nne_shape *s = &g->tensors[in[0]].shape;
        nne_upsample_f32__ref((int32_t)s->dim[0], (int32_t)s->dim[1], (int32_t)s->dim[2],
                              (int32_t)s->dim[3], n->params.upsample.scale[0],
                              n->params.upsample.scale[1],
                              (nne_upsample_mode)n->params.upsample.mode, x, y);
        break;
    }
    case NNE_OP_SOFTMAX: {
        int32_t c = (int32_t)last_dim(g, in[0]);
        nne_softmax_f32__ref(cnt / (size_t)c, c, x, y);
        break;
    }
    case NNE_OP_RESHAPE:
    case NNE_OP_FLATTEN: /* NHWC data is contiguous: a copy keeps the element order */
        if (x != y) memmove(y, x, cnt * sizeof(float));
        break;
    default:
        return nne_error(NNE_ERR_UNSUPPORTED, "backend cpu-ref: node '%s': op %s", n->name,
                         nne_op_name(n->op));
    }
    return NNE_OK;
}

static nne_status cpu_ref_run(void *state, const nne_graph *g, uint8_t *arena) {
    cpu_ref_state *st = state;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        uint64_t t0 = nne_time_ns();
        nne_status s = nne_cpu_ref_run_node(g, &g->nodes[i], arena);
        if (s) return s;
        if (i < st->n_nodes) st->ns[i] = nne_time_ns() - t0;
    }
    return NNE_OK;
}

static nne_status cpu_ref_profile(void *state, const nne_graph *g, nne_node_profile *prof) {
    cpu_ref_state *st = state;
    for (int32_t i = 0; i < g->n_nodes && i < st->n_nodes; i++) {
        prof[i].node = i;
        prof[i].ns = st->ns[i];
    }
    return NNE_OK;
}

const nne_backend *nne_backend_cpu_ref(void) {
    static const nne_backend be = {
        .name = "cpu-ref",
        .supports_node = nne_cpu_ref_supports,
        .compile = cpu_ref_compile,
        .run = cpu_ref_run,
        .profile = cpu_ref_profile,
        .free = cpu_ref_free,
    };
    return &be;
}
