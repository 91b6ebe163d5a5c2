/* Shared by the two CPU backends (cpu_ref.c, cpu.c): the fast backend runs the nodes it has
 * no fast kernel for through the reference backend's node runner. */
#ifndef NNE_BACKENDS_CPU_INTERNAL_H
#define NNE_BACKENDS_CPU_INTERNAL_H

#include "nnedge/backend.h"

/* Run node n of g with the reference kernels; tensors live in `arena` (or are constants). */
nne_status nne_cpu_ref_run_node(const nne_graph *g, const nne_node *n, uint8_t *arena);
/* NNE_OK if every input of n is f32 (what both CPU backends execute). */
nne_status nne_cpu_ref_supports(const nne_graph *g, const nne_node *n);

#endif
