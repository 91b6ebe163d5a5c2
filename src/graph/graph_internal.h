/* Private graph state (not part of the public API). */
#ifndef NNE_GRAPH_INTERNAL_H
#define NNE_GRAPH_INTERNAL_H

#include "nnedge/graph.h"

typedef struct nne_name_index {
    int32_t *slot; /* -1 = empty */
    uint32_t cap;  /* power of two */
    uint32_t count;
} nne_name_index;

typedef struct nne_graph_priv {
    nne_name_index tensor_index;
    nne_name_index node_index;
    int32_t *producer; /* [n_tensors]: producing node, -1 for inputs/constants (after infer) */
} nne_graph_priv;

#endif
