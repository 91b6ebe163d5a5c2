/* Test helpers for the DPU simulator: power-of-two quantized s8 graphs built by hand (random
 * weights and fixed points) and their int8 reference output, computed node by node with the
 * qops.h reference kernels in pow2 mode (docs/quantization.md). */
#ifndef NNE_TEST_DPU_QGRAPH_H
#define NNE_TEST_DPU_QGRAPH_H

#include "nnedge/graph.h"
#include "testutil.h"

/* Turn an inferred f32 graph made of conv2d / conv_transpose2d (+ relu / relu6 / leaky_relu / prelu), max /
 * avg pooling, add and channel concat into a pow2-quantized s8 graph, in place: s8 input,
 * random s8 weights (one pow2 scale per tensor), random s32 biases, pow2 slopes, a random
 * fixed point per tensor chosen so that activations mostly stay in range; an activation and
 * the inputs of a concat keep the fixed point of their output. Re-infers the graph. */
nne_status qg_quantize_random(nne_graph *g, nne_test_rng *r);

/* A random small f32 graph for the above: input [1][h][w][c], 2..6 layers among conv
 * (1x1..5x5, stride 1/2, dilation, explicit padding, channels not multiples of 8 or 16,
 * relu / relu6 / leaky / prelu), transposed conv (1x1..5x5, stride 1..3 <= kernel, cropping,
 * output padding, optional prelu), max / avg pooling, a residual add and a two-branch concat.
 * Inferred. */
nne_status qg_random_graph(nne_test_rng *r, nne_graph **out);

/* Run a quantized graph node by node with the qops reference kernels: in [numel(input)] ->
 * out [numel(output)] (caller-sized). */
nne_status qg_reference(const nne_graph *g, const int8_t *in, int8_t *out);

/* Random s8 codes. */
void qg_random_codes(nne_test_rng *r, int8_t *x, size_t n);

#endif
