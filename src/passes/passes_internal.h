/* Private helpers shared by the passes (quantize_pass.c, prune.c). */
#ifndef NNE_PASSES_INTERNAL_H
#define NNE_PASSES_INTERNAL_H

#include "nnedge/graph.h"

/* What tensor i of a source graph becomes in a rebuilt graph: dtype, data and shape
 * (constants; shape NULL = unchanged) and quantization (count 0: none). Activation dtypes and
 * shapes are left to nne_graph_infer. */
typedef struct nne_tplan {
    nne_dtype dtype;
    const void *data;
    const nne_shape *shape;
    nne_quant quant; /* owned by the plan */
} nne_tplan;

/* Rebuild `src` (inferred) as a new graph: same names, nodes, params, inputs, outputs and
 * metadata; tensors per `plan` ([src->n_tensors]; NULL: unchanged); with `expose`, every
 * activation becomes an output too. The result is inferred (nne_graph_infer validates the new
 * constant shapes against the nodes). */
nne_status nne_pass_rebuild(const nne_graph *src, const nne_tplan *plan, bool expose,
                            nne_graph **out);

#endif
