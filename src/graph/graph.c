/* Graph construction: tensors, nodes, inputs/outputs, metadata, name lookup. */
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"

static const char *const g_op_names[NNE_OP_COUNT] = {
    [NNE_OP_INVALID] = "invalid",
    [NNE_OP_CONV2D] = "conv2d",
    [NNE_OP_CONV_TRANSPOSE2D] = "conv_transpose2d",
    [NNE_OP_DENSE] = "dense",
    [NNE_OP_MAXPOOL2D] = "maxpool2d",
    [NNE_OP_AVGPOOL2D] = "avgpool2d",
    [NNE_OP_GLOBAL_AVGPOOL] = "global_avgpool",
    [NNE_OP_RELU] = "relu",
    [NNE_OP_RELU6] = "relu6",
    [NNE_OP_LEAKY_RELU] = "leaky_relu",
    [NNE_OP_PRELU] = "prelu",
    [NNE_OP_SIGMOID] = "sigmoid",
    [NNE_OP_TANH] = "tanh",
    [NNE_OP_HARDSWISH] = "hardswish",
    [NNE_OP_GDN] = "gdn",
    [NNE_OP_IGDN] = "igdn",
    [NNE_OP_BATCHNORM] = "batchnorm",
    [NNE_OP_ADD] = "add",
    [NNE_OP_CONCAT] = "concat",
    [NNE_OP_UPSAMPLE] = "upsample",
    [NNE_OP_SOFTMAX] = "softmax",
    [NNE_OP_RESHAPE] = "reshape",
    [NNE_OP_FLATTEN] = "flatten",
    [NNE_OP_ABS] = "abs",
    [NNE_OP_QUANTIZE] = "quantize",
    [NNE_OP_FACTORIZED_LIKELIHOOD] = "factorized_likelihood",
    [NNE_OP_GAUSSIAN_LIKELIHOOD] = "gaussian_likelihood",
};

const char *nne_op_name(nne_op_type t) {
    if ((int)t <= 0 || t >= NNE_OP_COUNT) return "invalid";
    return g_op_names[t];
}

nne_op_type nne_op_from_name(const char *name) {
    for (int i = 1; i < NNE_OP_COUNT; i++)
        if (name && strcmp(name, g_op_names[i]) == 0) return (nne_op_type)i;
    return NNE_OP_INVALID;
}

bool nne_op_s8_shares_quant(nne_op_type t, bool pow2) {
    return t == NNE_OP_RELU || t == NNE_OP_RELU6 || t == NNE_OP_MAXPOOL2D ||
           t == NNE_OP_RESHAPE || t == NNE_OP_FLATTEN ||
           (pow2 && (t == NNE_OP_PRELU || t == NNE_OP_LEAKY_RELU));
}

int32_t nne_graph_fusable_prelu(const nne_graph *g, int32_t tensor) {
    const int32_t pr = nne_graph_producer(g, tensor);
    if (pr < 0) return -1;
    const nne_op_type op = g->nodes[pr].op;
    if (op != NNE_OP_CONV2D && op != NNE_OP_CONV_TRANSPOSE2D && op != NNE_OP_DENSE) return -1;
    for (int32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == tensor) return -1;
    int32_t reader = -1, reads = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == tensor) reader = i, reads++;
    if (reads != 1) return -1;
    const nne_node *n = &g->nodes[reader];
    return (n->op == NNE_OP_PRELU || n->op == NNE_OP_LEAKY_RELU) && n->inputs[0] == tensor ? reader
                                                                                              : -1;
}

bool nne_op_has_s8_kernel(nne_op_type t) {
    switch (t) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
    case NNE_OP_DENSE:
    case NNE_OP_RELU:
    case NNE_OP_RELU6:
    case NNE_OP_LEAKY_RELU:
    case NNE_OP_PRELU:
    case NNE_OP_SIGMOID:
    case NNE_OP_TANH:
    case NNE_OP_HARDSWISH:
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
    case NNE_OP_MAXPOOL2D:
    case NNE_OP_AVGPOOL2D:
    case NNE_OP_ADD:
    case NNE_OP_CONCAT:
    case NNE_OP_RESHAPE:
    case NNE_OP_FLATTEN:
        return true;
    default:
        return false;
    }
}

/* ---- Name index: open addressing over int32 indices, FNV-1a hash. ---- */

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void index_free(nne_name_index *ix) {
    nne_free(ix->slot);
    memset(ix, 0, sizeof *ix);
}

/* Look up `name`; `get_name(ctx, i)` returns the name of entry i. */
static int32_t index_find(const nne_name_index *ix, const char *name,
                          const char *(*get_name)(const nne_graph *, int32_t), const nne_graph *g) {
    if (!ix->cap) return -1;
    uint32_t mask = ix->cap - 1;
    for (uint32_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        int32_t v = ix->slot[i];
        if (v < 0) return -1;
        if (strcmp(get_name(g, v), name) == 0) return v;
    }
}

static nne_status index_insert(nne_name_index *ix, const char *name, int32_t value,
                               const char *(*get_name)(const nne_graph *, int32_t),
                               const nne_graph *g);

static nne_status index_grow(nne_name_index *ix,
                             const char *(*get_name)(const nne_graph *, int32_t),
                             const nne_graph *g) {
    uint32_t ncap = ix->cap ? ix->cap * 2 : 64;
    int32_t *old = ix->slot;
    uint32_t ocap = ix->cap;
    ix->slot = nne_malloc((size_t)ncap * sizeof *ix->slot);
    if (!ix->slot) {
        ix->slot = old;
        return NNE_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < ncap; i++) ix->slot[i] = -1;
    ix->cap = ncap;
    ix->count = 0;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i] >= 0) index_insert(ix, get_name(g, old[i]), old[i], get_name, g);
    nne_free(old);
    return NNE_OK;
}

static nne_status index_insert(nne_name_index *ix, const char *name, int32_t value,
                               const char *(*get_name)(const nne_graph *, int32_t),
                               const nne_graph *g) {
    if ((ix->count + 1) * 2 > ix->cap) {
        nne_status s = index_grow(ix, get_name, g);
        if (s) return s;
    }
    uint32_t mask = ix->cap - 1;
    uint32_t i = name_hash(name) & mask;
    while (ix->slot[i] >= 0) i = (i + 1) & mask;
    ix->slot[i] = value;
    ix->count++;
    return NNE_OK;
}

static const char *tensor_name(const nne_graph *g, int32_t i) { return g->tensors[i].name; }
static const char *node_name(const nne_graph *g, int32_t i) { return g->nodes[i].name; }

static nne_graph_priv *priv(const nne_graph *g) { return (nne_graph_priv *)g->priv; }

/* ---- Lifecycle ---- */

static nne_status check_name(const char *what, const char *name) {
    if (!name || !*name) return nne_error(NNE_ERR_INVALID_ARG, "%s name is empty", what);
    size_t n = strnlen(name, NNE_MAX_NAME + 1);
    if (n > NNE_MAX_NAME)
        return nne_error(NNE_ERR_LIMIT, "%s name longer than %d bytes", what, NNE_MAX_NAME);
    return NNE_OK;
}

nne_status nne_graph_create(const char *name, nne_graph **out) {
    *out = NULL;
    nne_graph *g = nne_calloc(1, sizeof *g);
    nne_graph_priv *p = nne_calloc(1, sizeof *p);
    if (!g || !p) {
        nne_free(g);
        nne_free(p);
        return NNE_ERR_NOMEM;
    }
    g->priv = p;
    g->name = nne_strdup(name && *name ? name : "graph");
    if (!g->name) {
        nne_graph_free(g);
        return NNE_ERR_NOMEM;
    }
    *out = g;
    return NNE_OK;
}

nne_status nne_graph_attach(nne_graph *g, nne_graph *part) {
    if (!g || !part || part == g)
        return nne_error(NNE_ERR_INVALID_ARG, "graph attach: no graph, or a graph onto itself");
    if (part->n_attached)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "graph attach: '%s' has attached graphs of its own (one level only)",
                         part->name);
    if (nne_graph_find_attached(g, part->name))
        return nne_error(NNE_ERR_INVALID_ARG, "graph attach: '%s' already has an attached '%s'",
                         g->name, part->name);
    if (g->n_attached >= NNE_MAX_ATTACHED)
        return nne_error(NNE_ERR_LIMIT, "graph attach: '%s' has %d attached graphs already",
                         g->name, NNE_MAX_ATTACHED);
    nne_graph **a = nne_realloc_array(g->attached, (size_t)g->n_attached + 1, sizeof *a);
    if (!a) return NNE_ERR_NOMEM;
    a[g->n_attached++] = part;
    g->attached = a;
    return NNE_OK;
}

const nne_graph *nne_graph_find_attached(const nne_graph *g, const char *name) {
    for (int32_t i = 0; g && name && i < g->n_attached; i++)
        if (strcmp(g->attached[i]->name, name) == 0) return g->attached[i];
    return NULL;
}

void nne_graph_free(nne_graph *g) {
    if (!g) return;
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        nne_free(t->name);
        nne_quant_free(&t->quant);
        if (t->kind == NNE_TENSOR_CONSTANT) nne_aligned_free(t->data);
    }
    for (int32_t i = 0; i < g->n_nodes; i++) nne_free(g->nodes[i].name);
    for (int32_t i = 0; i < g->n_meta; i++) {
        nne_free(g->meta[i].key);
        nne_free(g->meta[i].value);
    }
    if (g->priv) {
        index_free(&priv(g)->tensor_index);
        index_free(&priv(g)->node_index);
        nne_free(priv(g)->producer);
        nne_free(g->priv);
    }
    nne_free(g->tensors);
    nne_free(g->nodes);
    nne_free(g->inputs);
    nne_free(g->outputs);
    nne_free(g->meta);
    for (int32_t i = 0; i < g->n_attached; i++) nne_graph_free(g->attached[i]);
    nne_free(g->attached);
    nne_free(g->name);
    nne_free(g);
}

static void invalidate(nne_graph *g) {
    g->inferred = false;
    g->planned = false;
}

static nne_status grow(void **arr, int32_t *cap, int32_t need, size_t elem, int32_t limit,
                       const char *what) {
    if (need > limit) return nne_error(NNE_ERR_LIMIT, "more than %d %s", limit, what);
    if (need <= *cap) return NNE_OK;
    int32_t ncap = *cap ? *cap : 16;
    while (ncap < need) ncap = ncap > limit / 2 ? limit : ncap * 2;
    void *p = nne_realloc_array(*arr, (size_t)ncap, elem);
    if (!p) return NNE_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return NNE_OK;
}

static nne_status add_tensor(nne_graph *g, const char *name, nne_dtype dt, nne_shape shape,
                             nne_tensor_kind kind, int32_t *idx) {
    nne_status s = check_name("tensor", name);
    if (s) return s;
    if (nne_dtype_size(dt) == 0)
        return nne_error(NNE_ERR_INVALID_ARG, "tensor '%s': invalid dtype %d", name, (int)dt);
    if (index_find(&priv(g)->tensor_index, name, tensor_name, g) >= 0)
        return nne_error(NNE_ERR_INVALID_ARG, "tensor '%s' already exists", name);
    if ((s = grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors + 1, sizeof(nne_tensor),
                  NNE_MAX_TENSORS, "tensors")))
        return s;
    nne_tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = nne_strdup(name);
    if (!t->name) return NNE_ERR_NOMEM;
    t->dtype = dt;
    t->kind = kind;
    t->shape = shape;
    t->quant.axis = -1;
    t->arena_offset = -1;
    if ((s = index_insert(&priv(g)->tensor_index, t->name, g->n_tensors, tensor_name, g))) {
        nne_free(t->name);
        return s;
    }
    if (idx) *idx = g->n_tensors;
    g->n_tensors++;
    invalidate(g);
    return NNE_OK;
}

nne_status nne_graph_add_input(nne_graph *g, const char *name, nne_dtype dt, nne_shape shape,
                               int32_t *idx) {
    nne_status s = nne_shape_validate(&shape);
    if (s) return nne_error(s, "input '%s': %s", name ? name : "", nne_last_error());
    int32_t i;
    if ((s = add_tensor(g, name, dt, shape, NNE_TENSOR_INPUT, &i))) return s;
    int32_t *p = nne_realloc_array(g->inputs, (size_t)g->n_inputs + 1, sizeof *p);
    if (!p) return NNE_ERR_NOMEM; /* the tensor stays; the graph remains consistent */
    g->inputs = p;
    g->inputs[g->n_inputs++] = i;
    if (idx) *idx = i;
    return NNE_OK;
}

nne_status nne_graph_add_constant(nne_graph *g, const char *name, nne_dtype dt, nne_shape shape,
                                  const void *data, int32_t *idx) {
    nne_status s = nne_shape_validate(&shape);
    if (s) return nne_error(s, "constant '%s': %s", name ? name : "", nne_last_error());
    int64_t numel = nne_shape_numel(&shape);
    size_t nbytes;
    if (!nne_size_mul((size_t)numel, nne_dtype_size(dt), &nbytes) || nne_dtype_size(dt) == 0)
        return nne_error(NNE_ERR_INVALID_ARG, "constant '%s': bad dtype or size", name);
    void *buf = nne_aligned_alloc(nbytes);
    if (!buf) return NNE_ERR_NOMEM;
    if (data)
        memcpy(buf, data, nbytes);
    else
        memset(buf, 0, nbytes);
    int32_t i;
    if ((s = add_tensor(g, name, dt, shape, NNE_TENSOR_CONSTANT, &i))) {
        nne_aligned_free(buf);
        return s;
    }
    g->tensors[i].data = buf;
    if (idx) *idx = i;
    return NNE_OK;
}

nne_status nne_graph_add_node(nne_graph *g, const char *name, nne_op_type op,
                              const nne_op_params *params, const int32_t *inputs, int32_t n_inputs,
                              const char *output_name, int32_t *out_tensor) {
    nne_status s = check_name("node", name);
    if (s) return s;
    if ((int)op <= 0 || op >= NNE_OP_COUNT)
        return nne_error(NNE_ERR_INVALID_ARG, "node '%s': invalid op type %d", name, (int)op);
    if (n_inputs < 0 || n_inputs > NNE_MAX_NODE_INPUTS)
        return nne_error(NNE_ERR_LIMIT, "node '%s': %d inputs (max %d)", name, (int)n_inputs,
                         NNE_MAX_NODE_INPUTS);
    if (index_find(&priv(g)->node_index, name, node_name, g) >= 0)
        return nne_error(NNE_ERR_INVALID_ARG, "node '%s' already exists", name);
    for (int32_t k = 0; k < n_inputs; k++)
        if (inputs[k] < -1 || inputs[k] >= g->n_tensors)
            return nne_error(NNE_ERR_INVALID_ARG, "node '%s': input %d refers to tensor %d of %d",
                             name, (int)k, (int)inputs[k], (int)g->n_tensors);
    if ((s = grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(nne_node),
                  NNE_MAX_NODES, "nodes")))
        return s;
    int32_t t;
    nne_shape unknown;
    memset(&unknown, 0, sizeof unknown);
    /* The output's dtype is provisional; nne_graph_infer sets it from the op's inputs. */
    if ((s = add_tensor(g, output_name, NNE_F32, unknown, NNE_TENSOR_ACTIVATION, &t))) return s;
    nne_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->name = nne_strdup(name);
    if (!n->name) return NNE_ERR_NOMEM;
    n->op = op;
    if (params) n->params = *params;
    n->n_inputs = n_inputs;
    for (int32_t k = 0; k < NNE_MAX_NODE_INPUTS; k++) n->inputs[k] = k < n_inputs ? inputs[k] : -1;
    n->output = t;
    if ((s = index_insert(&priv(g)->node_index, n->name, g->n_nodes, node_name, g))) {
        nne_free(n->name);
        return s;
    }
    g->n_nodes++;
    if (out_tensor) *out_tensor = t;
    invalidate(g);
    return NNE_OK;
}

nne_status nne_graph_mark_output(nne_graph *g, int32_t tensor) {
    if (tensor < 0 || tensor >= g->n_tensors)
        return nne_error(NNE_ERR_INVALID_ARG, "output tensor index %d out of range", (int)tensor);
    for (int32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == tensor)
            return nne_error(NNE_ERR_INVALID_ARG, "tensor '%s' is already an output",
                             g->tensors[tensor].name);
    int32_t *p = nne_realloc_array(g->outputs, (size_t)g->n_outputs + 1, sizeof *p);
    if (!p) return NNE_ERR_NOMEM;
    g->outputs = p;
    g->outputs[g->n_outputs++] = tensor;
    invalidate(g);
    return NNE_OK;
}

int32_t nne_graph_find_tensor(const nne_graph *g, const char *name) {
    return name ? index_find(&priv(g)->tensor_index, name, tensor_name, g) : -1;
}

int32_t nne_graph_find_node(const nne_graph *g, const char *name) {
    return name ? index_find(&priv(g)->node_index, name, node_name, g) : -1;
}

nne_status nne_graph_set_meta(nne_graph *g, const char *key, const char *value) {
    nne_status s = check_name("metadata key", key);
    if (s) return s;
    if (!value) value = "";
    if (strnlen(value, NNE_MAX_META_VALUE + 1) > NNE_MAX_META_VALUE)
        return nne_error(NNE_ERR_LIMIT, "metadata '%s': value longer than %d bytes", key,
                         NNE_MAX_META_VALUE);
    char *v = nne_strdup(value);
    if (!v) return NNE_ERR_NOMEM;
    for (int32_t i = 0; i < g->n_meta; i++) {
        if (strcmp(g->meta[i].key, key) == 0) {
            nne_free(g->meta[i].value);
            g->meta[i].value = v;
            return NNE_OK;
        }
    }
    if ((s = grow((void **)&g->meta, &g->cap_meta, g->n_meta + 1, sizeof(nne_meta), NNE_MAX_META,
                  "metadata entries"))) {
        nne_free(v);
        return s;
    }
    char *k = nne_strdup(key);
    if (!k) {
        nne_free(v);
        return NNE_ERR_NOMEM;
    }
    g->meta[g->n_meta].key = k;
    g->meta[g->n_meta].value = v;
    g->n_meta++;
    return NNE_OK;
}

const char *nne_graph_get_meta(const nne_graph *g, const char *key) {
    for (int32_t i = 0; i < g->n_meta; i++)
        if (strcmp(g->meta[i].key, key) == 0) return g->meta[i].value;
    return NULL;
}

nne_status nne_graph_set_input_shape(nne_graph *g, int32_t input_index, nne_shape shape) {
    if (input_index < 0 || input_index >= g->n_inputs)
        return nne_error(NNE_ERR_INVALID_ARG, "graph has no input %d", (int)input_index);
    nne_status s = nne_shape_validate(&shape);
    if (s) return s;
    g->tensors[g->inputs[input_index]].shape = shape;
    invalidate(g);
    return NNE_OK;
}

int32_t nne_graph_producer(const nne_graph *g, int32_t tensor) {
    nne_graph_priv *p = priv(g);
    if (!g->inferred || !p->producer || tensor < 0 || tensor >= g->n_tensors) return -1;
    return p->producer[tensor];
}
