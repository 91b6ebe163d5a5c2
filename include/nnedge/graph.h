/* nnedge graph: named tensors, a list of op nodes in execution (topological) order, graph
 * inputs/outputs, metadata, shape inference and the activation-arena memory plan.
 *
 * A graph is built by a built-in model definition (models.h), the model-file reader
 * (model_file.h), the trainer or an importer, transformed by passes, and executed by a
 * backend (backend.h).
 */
#ifndef NNEDGE_GRAPH_H
#define NNEDGE_GRAPH_H

#include "nnedge/ops.h"
#include "nnedge/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Op types. The numeric values are part of the model file format: never renumber. */
typedef enum nne_op_type {
    NNE_OP_INVALID = 0,
    NNE_OP_CONV2D = 1,           /* in: x, w [OC][KH][KW][IC/g], bias [OC] (optional) */
    NNE_OP_CONV_TRANSPOSE2D = 2, /* in: x, w [OC][KH][KW][IC/g], bias [OC] (optional) */
    NNE_OP_DENSE = 3,            /* in: x [N][IN], w [OUT][IN], bias [OUT] (optional) */
    NNE_OP_MAXPOOL2D = 4,        /* in: x */
    NNE_OP_AVGPOOL2D = 5,        /* in: x */
    NNE_OP_GLOBAL_AVGPOOL = 6,   /* in: x -> [N][1][1][C] */
    NNE_OP_RELU = 7,
    NNE_OP_RELU6 = 8,
    NNE_OP_LEAKY_RELU = 9, /* params.leaky.alpha */
    NNE_OP_PRELU = 10,     /* in: x, slope [1] or [C] */
    NNE_OP_SIGMOID = 11,
    NNE_OP_TANH = 12,
    NNE_OP_HARDSWISH = 13,
    NNE_OP_GDN = 14,       /* in: x, beta [C], gamma [C][C] */
    NNE_OP_IGDN = 15,      /* in: x, beta [C], gamma [C][C] */
    NNE_OP_BATCHNORM = 16, /* in: x, mean [C], var [C], gamma [C], beta [C]; params.bn.eps */
    NNE_OP_ADD = 17,       /* in: a, b (same shape) */
    NNE_OP_CONCAT = 18,    /* in: x0..xk; params.concat.axis */
    NNE_OP_UPSAMPLE = 19,  /* in: x; params.upsample */
    NNE_OP_SOFTMAX = 20,   /* in: x; over the last axis */
    NNE_OP_RESHAPE = 21,   /* in: x; params.reshape (one dim may be -1) */
    NNE_OP_FLATTEN = 22,   /* in: x [N][...] -> [N][prod] (NHWC order) */
    /* Entropy-model ops of the learned codecs (docs/ops.md, "Entropy models"): */
    NNE_OP_ABS = 23,      /* in: x */
    NNE_OP_QUANTIZE = 24, /* in: x, means (optional, x's shape); round(x - m) + m;
                             params.quantize.train_mode: what the trainer does instead */
    NNE_OP_FACTORIZED_LIKELIHOOD = 25, /* in: x [...][C], params [C][NNE_FACT_PARAMS];
                                          out: P(x) per element; params.entropy.lik_min */
    NNE_OP_GAUSSIAN_LIKELIHOOD = 26,   /* in: x, scales, means (optional), same shape;
                                          out: P(x); params.entropy.lik_min, scale_min */
    NNE_OP_COUNT
} nne_op_type;

const char *nne_op_name(nne_op_type t); /* "conv2d", ...; "invalid" if out of range */
nne_op_type nne_op_from_name(const char *name);
/* Int8 support (docs/quantization.md, section 14): ops with an s8 reference kernel, and those
 * whose output shares the input's quantization: relu, relu6, max pooling, reshape, flatten
 * (clamps and copies, whose s8 kernel needs it) and, in power-of-two mode, PReLU and leaky
 * ReLU too (the DPU fuses them into the convolution before them with no second rescale).
 * Shared by the quantization pass and QAT. */
bool nne_op_has_s8_kernel(nne_op_type t);
bool nne_op_s8_shares_quant(nne_op_type t, bool pow2);

typedef enum nne_pad_mode {
    NNE_PAD_EXPLICIT = 0, /* use pad[] */
    NNE_PAD_VALID = 1,    /* no padding */
    NNE_PAD_SAME = 2,     /* TF convention: out = ceil(in / stride); total padding split with
                             the extra row/column at the bottom/right. conv2d/pools only. */
} nne_pad_mode;

/* What the trainer does with a quantize op (inference always rounds):
 *  NOISE: y = x + u, u ~ U(-0.5, 0.5) (Balle et al.'s proxy), gradient identity;
 *  STE:   y = round(x - m) + m forward, identity gradient (straight-through). */
typedef enum nne_quantize_train_mode {
    NNE_QUANTIZE_NOISE = 0,
    NNE_QUANTIZE_STE = 1,
} nne_quantize_train_mode;

/* Op parameters. Every member is a 4-byte int32 or float so that the model file stores the
 * union as NNE_OP_PARAM_WORDS little-endian words (docs/model-format.md). */
typedef struct nne_conv_params {
    int32_t kernel[2]; /* kh, kw */
    int32_t stride[2];
    int32_t dilation[2];
    int32_t pad[4];   /* top, left, bottom, right (explicit mode) */
    int32_t pad_mode; /* nne_pad_mode */
    int32_t groups;
    int32_t out_pad[2]; /* conv_transpose2d only */
} nne_conv_params;

typedef struct nne_pool_params {
    int32_t kernel[2];
    int32_t stride[2];
    int32_t pad[4];
    int32_t pad_mode;
    int32_t count_include_pad; /* avg only: 1 = divide by kh*kw (PyTorch default) */
} nne_pool_params;

typedef struct nne_upsample_params {
    int32_t scale[2]; /* integer factors h, w */
    int32_t mode;     /* nne_upsample_mode */
} nne_upsample_params;

typedef struct nne_reshape_params {
    int32_t ndim;
    int32_t dim[NNE_MAX_DIMS]; /* at most one -1 (inferred) */
} nne_reshape_params;

#define NNE_OP_PARAM_WORDS 16

typedef union nne_op_params {
    nne_conv_params conv;
    nne_pool_params pool;
    struct {
        float alpha;
    } leaky;
    struct {
        float eps;
    } bn;
    struct {
        int32_t axis;
    } concat; /* negative counts from the end */
    nne_upsample_params upsample;
    nne_reshape_params reshape;
    struct {
        int32_t train_mode; /* nne_quantize_train_mode */
    } quantize;
    struct {
        float lik_min;   /* lower bound of the likelihood (> 0; 1e-9 in CompressAI) */
        float scale_min; /* gaussian: lower bound of the scale (0.11 in CompressAI) */
    } entropy;
    uint32_t words[NNE_OP_PARAM_WORDS];
} nne_op_params;

#define NNE_MAX_NODE_INPUTS 16
#define NNE_MAX_NAME        255 /* bytes, excluding the terminator */

typedef struct nne_node {
    char *name; /* unique within the graph, owned */
    nne_op_type op;
    nne_op_params params;
    int32_t n_inputs;
    int32_t inputs[NNE_MAX_NODE_INPUTS]; /* tensor indices; -1 = absent optional input */
    int32_t output;                      /* tensor index (every op has one output) */
    /* Filled by nne_graph_infer for conv-like and pooling ops: */
    nne_conv2d_geom conv_geom;
    nne_pool2d_geom pool_geom;
} nne_node;

typedef struct nne_meta {
    char *key; /* e.g. "model", "train.steps", "train.data" */
    char *value;
} nne_meta;

typedef struct nne_graph {
    char *name;
    nne_tensor *tensors;
    int32_t n_tensors, cap_tensors;
    nne_node *nodes; /* in execution order */
    int32_t n_nodes, cap_nodes;
    int32_t *inputs; /* tensor indices of graph inputs */
    int32_t n_inputs;
    int32_t *outputs; /* tensor indices of graph outputs */
    int32_t n_outputs;
    nne_meta *meta;
    int32_t n_meta, cap_meta;
    /* Graphs stored with this one (nne_graph_attach; docs/model-format.md, "ATTACHED"), e.g.
     * the int8 analysis and synthesis transforms of a learned codec (docs/codec.md, "Int8
     * codecs"). Owned; names unique; none has attachments of its own. Passes that build a
     * new graph from this one do not carry them over. */
    struct nne_graph **attached;
    int32_t n_attached;
    bool inferred;     /* shapes and geometry are valid */
    bool planned;      /* arena offsets are valid */
    size_t arena_size; /* bytes, after nne_graph_plan */
    void *priv;        /* name indices and inference results (private) */
} nne_graph;

/* Limits enforced by builders and by the model-file reader. */
#define NNE_MAX_TENSORS    65536
#define NNE_MAX_NODES      65536
#define NNE_MAX_META       1024
#define NNE_MAX_META_VALUE (1 << 20)
#define NNE_MAX_ATTACHED   16

nne_status nne_graph_create(const char *name, nne_graph **out);
void nne_graph_free(nne_graph *g);

/* Add tensors. Returns the new tensor index in *idx. Names must be unique.
 * nne_graph_add_constant copies `data` (nbytes = numel * dtype size), or zero-fills if NULL. */
nne_status nne_graph_add_input(nne_graph *g, const char *name, nne_dtype dt, nne_shape shape,
                               int32_t *idx);
nne_status nne_graph_add_constant(nne_graph *g, const char *name, nne_dtype dt, nne_shape shape,
                                  const void *data, int32_t *idx);
/* Add a node; its output activation tensor is created with the name `output_name`
 * (shape filled by nne_graph_infer). Optional inputs may be -1. */
nne_status nne_graph_add_node(nne_graph *g, const char *name, nne_op_type op,
                              const nne_op_params *params, const int32_t *inputs, int32_t n_inputs,
                              const char *output_name, int32_t *out_tensor);
nne_status nne_graph_mark_output(nne_graph *g, int32_t tensor);

/* Attach `part` to g, which owns it on success (freed by nne_graph_free(g)). Errors, with g
 * and part unchanged: NNE_ERR_INVALID_ARG for part == g, a part with attachments of its own
 * or a name already attached; NNE_ERR_LIMIT beyond NNE_MAX_ATTACHED. */
nne_status nne_graph_attach(nne_graph *g, nne_graph *part);
/* The attached graph named `name`, or NULL. */
const nne_graph *nne_graph_find_attached(const nne_graph *g, const char *name);

/* Lookup by name; -1 if absent. */
int32_t nne_graph_find_tensor(const nne_graph *g, const char *name);
int32_t nne_graph_find_node(const nne_graph *g, const char *name);

/* Metadata (key unique; setting an existing key replaces its value). */
nne_status nne_graph_set_meta(nne_graph *g, const char *key, const char *value);
const char *nne_graph_get_meta(const nne_graph *g, const char *key); /* NULL if absent */

/* Index of the node producing `tensor`, or -1 for inputs and constants (valid after
 * nne_graph_infer; -1 before). */
int32_t nne_graph_producer(const nne_graph *g, int32_t tensor);
/* Int8 conv + PReLU fusion (docs/quantization.md, sections 5 and 14): the PReLU or leaky ReLU
 * node that reads `tensor` when `tensor` is the output of a conv2d, conv_transpose2d or dense
 * node, that node is its only reader (one input slot) and it is not a graph output; -1
 * otherwise (and before nne_graph_infer). The quantization pass leaves such a tensor without
 * int8 parameters (except in power-of-two mode, or when told not to fuse), QAT does not
 * fake-quantize it, and the int8 backends run the two nodes as one layer whose output stage
 * applies the slope to the int32 accumulator: one rounding instead of two. Shared by the
 * pass, QAT and the backends. */
int32_t nne_graph_fusable_prelu(const nne_graph *g, int32_t tensor);

/* Change an input's shape (e.g. another image size) and invalidate inference and plan. */
nne_status nne_graph_set_input_shape(nne_graph *g, int32_t input_index, nne_shape shape);

/* Validate the whole graph (indices, topological order, dtypes, parameter ranges, constant
 * shapes) and infer every activation shape and conv/pool geometry. Idempotent. Every
 * error names the node and the problem. */
nne_status nne_graph_infer(nne_graph *g);

/* Plan the activation arena: assign arena_offset (64-byte aligned) to every input and
 * activation tensor so that tensors whose lifetimes overlap never share bytes. Graph outputs
 * live until the end. Greedy by size, first fit. Requires nne_graph_infer. */
nne_status nne_graph_plan(nne_graph *g);

/* Workload of one node after inference: multiply-accumulates (0 for ops that are not MAC
 * based), parameter count, and bytes of weights (constants) and of activations read and
 * written. */
typedef struct nne_node_cost {
    int64_t macs;
    int64_t params;
    int64_t weight_bytes;
    int64_t in_bytes; /* activation inputs */
    int64_t out_bytes;
} nne_node_cost;
nne_status nne_node_cost_get(const nne_graph *g, int32_t node, nne_node_cost *c);

#ifdef __cplusplus
}
#endif
#endif
