/* nnedge backends and sessions.
 *
 * A backend executes an inferred graph. Every backend exposes one interface table; clients
 * (codec, bench, CLI) use sessions and never reach into a backend's internals.
 *
 * A session binds a graph to a backend: it plans the activation arena once
 * (nne_graph_plan), allocates it once, and runs the graph as often as needed.
 */
#ifndef NNEDGE_BACKEND_H
#define NNEDGE_BACKEND_H

#include "nnedge/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-node timing collected by a profiling run. */
typedef struct nne_node_profile {
    int32_t node;
    uint64_t ns; /* wall time of the node's last run */
} nne_node_profile;

typedef struct nne_backend {
    const char *name; /* "cpu-ref", ... */
    /* NNE_OK if the backend can execute this node (dtype, op, parameters). */
    nne_status (*supports_node)(const nne_graph *g, const nne_node *n);
    /* Prepare backend state for an inferred, planned graph (e.g. repack weights). */
    nne_status (*compile)(const nne_graph *g, void **state);
    /* Execute all nodes. `arena` holds every input/activation tensor at its arena_offset. */
    nne_status (*run)(void *state, const nne_graph *g, uint8_t *arena);
    /* Per-node wall times of the last run (may be NULL if unsupported). prof has n_nodes slots. */
    nne_status (*profile)(void *state, const nne_graph *g, nne_node_profile *prof);
    void (*free)(void *state);
} nne_backend;

/* The plain C reference backend "cpu-ref" (f32): the oracle. */
const nne_backend *nne_backend_cpu_ref(void);
/* The fast CPU backend "cpu" (f32): tiled, threaded convolutions with fused ReLU/PReLU
 * (nnedge/conv.h) and GEMM dense layers on nne_threadpool_default(); other ops as cpu-ref.
 * Within NNE_CONV_F32_TOL of cpu-ref per layer (docs/conv.md). */
const nne_backend *nne_backend_cpu(void);
/* "cpu-exact" (f32): the cpu backend's tiled, threaded convolutions with the reference's
 * arithmetic (nne_conv2d_f32_exact: no FMA, the reference's summation order), every other
 * node as cpu-ref. Bit-identical to cpu-ref for every NNEDGE_ISA and NNEDGE_THREADS (finite
 * weights), several times faster (docs/conv.md, "Exact variants"). */
const nne_backend *nne_backend_cpu_exact(void);
/* The int8 backend "cpu-s8": quantized graphs (s8 activations and weights, s32 biases,
 * docs/quantization.md); convolutions on the fast threaded kernels of nnedge/conv.h on
 * nne_threadpool_default(), other ops on the qops.h kernels; supports_node names what it
 * cannot run. Bit-exact with "cpu-s8-ref". */
const nne_backend *nne_backend_cpu_s8(void);
/* The int8 reference backend "cpu-s8-ref": the same graphs, every node on the qops.h
 * reference kernels (the oracle). */
const nne_backend *nne_backend_cpu_s8_ref(void);
/* "cpu-bf16" (f32 graphs run in bf16): the cpu backend's plan with conv2d, conv_transpose2d
 * and dense on the bf16 kernels of bf16.h: their weights and inputs rounded to bf16 (round to
 * nearest even), f32 sums, biases and activations (docs/bf16.md). Within NNE_BF16_VS_F32_TOL
 * per layer of cpu, not bit-identical to it. */
const nne_backend *nne_backend_cpu_bf16(void);
/* Look up a backend by name ("cpu", "cpu-exact", "cpu-bf16", "cpu-ref", "cpu-s8",
 * "cpu-s8-ref"); NULL if unknown. */
const nne_backend *nne_backend_by_name(const char *name);

typedef struct nne_session nne_session;

/* Infer and plan `g` (if needed), check the backend supports every node, compile, allocate
 * the arena. The graph must outlive the session and must not be modified while it exists. */
nne_status nne_session_create(nne_graph *g, const nne_backend *be, nne_session **out);
void nne_session_free(nne_session *s);

/* Pointer to the arena storage of graph input/output i (contiguous, the tensor's dtype). */
void *nne_session_input(nne_session *s, int32_t i);
const void *nne_session_output(const nne_session *s, int32_t i);
const nne_tensor *nne_session_input_tensor(const nne_session *s, int32_t i);
const nne_tensor *nne_session_output_tensor(const nne_session *s, int32_t i);
/* Pointer to any planned tensor's storage (activations are only valid while their
 * lifetime lasts: use for debugging and tests). */
void *nne_session_tensor_data(nne_session *s, int32_t tensor);

/* f32 data in and out of any session: an f32 tensor is copied; an s8 / u8 tensor with
 * per-tensor parameters is quantized (nne_quantize_f32_s8__ref, rounding per its pow2 flag)
 * or dequantized. count must be the tensor's element count. NNE_ERR_INVALID_ARG otherwise,
 * NNE_ERR_UNSUPPORTED for other dtypes or per-channel activations. */
nne_status nne_session_set_input_f32(nne_session *s, int32_t i, const float *x, size_t count);
nne_status nne_session_get_output_f32(const nne_session *s, int32_t i, float *y, size_t count);

nne_status nne_session_run(nne_session *s);
/* Per-node timing of the last run (n_nodes entries). */
nne_status nne_session_profile(nne_session *s, nne_node_profile *prof);
size_t nne_session_arena_size(const nne_session *s);

#ifdef __cplusplus
}
#endif
#endif
