/* Shared by the CPU backends (cpu_ref.c, cpu.c, cpu_s8.c): the fast backend runs the nodes it
 * has no fast kernel for through the reference backend's node runner; the planners' tests on
 * tensors (for fusing nodes). */
#ifndef NNE_BACKENDS_CPU_INTERNAL_H
#define NNE_BACKENDS_CPU_INTERNAL_H

#include "nnedge/backend.h"
#include "nnedge/graph.h"

/* Run node n of g with the reference kernels; tensors live in `arena` (or are constants). */
nne_status nne_cpu_ref_run_node(const nne_graph *g, const nne_node *n, uint8_t *arena);
/* NNE_OK if every input of n is f32 (what both CPU backends execute). */
nne_status nne_cpu_ref_supports(const nne_graph *g, const nne_node *n);

/* Nodes of g that read tensor t (once per input slot). */
static inline int32_t nne_cpu_tensor_readers(const nne_graph *g, int32_t t) {
    int32_t n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_inputs; k++) n += g->nodes[i].inputs[k] == t;
    return n;
}

static inline bool nne_cpu_is_graph_output(const nne_graph *g, int32_t t) {
    for (int32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return true;
    return false;
}

/* Whether the arena bytes of tensors a and b overlap (constants never do). */
static inline bool nne_cpu_tensors_overlap(const nne_graph *g, int32_t a, int32_t b) {
    const nne_tensor *x = &g->tensors[a], *y = &g->tensors[b];
    if (x->kind == NNE_TENSOR_CONSTANT || y->kind == NNE_TENSOR_CONSTANT) return false;
    const int64_t xa = x->arena_offset, xb = xa + (int64_t)nne_tensor_nbytes(x);
    const int64_t ya = y->arena_offset, yb = ya + (int64_t)nne_tensor_nbytes(y);
    return xa < yb && ya < xb;
}

#endif
