/* nnedge pruning passes (docs/pruning.md).
 *
 * Channel (filter) pruning removes whole output channels of convolutions and the matching
 * input channels of every reader, so the result is a smaller dense graph: fewer MACs and
 * parameters on any backend. Channels are ranked by the L1 norm of their filters (Li et al.
 * 2017, "Pruning Filters for Efficient ConvNets"); the number removed per layer is either
 * uniform or chosen from each layer's measured sensitivity on calibration data.
 *
 * Unstructured magnitude pruning (zeroing the smallest weights, with the polynomial schedule
 * of Zhu & Gupta 2017 during fine-tuning) lives in the training module (train.h,
 * nne_prune_masks_*), since its masks are part of the optimizer state; nne_prune_cost below
 * counts what it saves.
 *
 * The channel analysis works on the graph's channel axis (the last one, NHWC):
 *  - a *group* is a set of channels produced by conv2d / conv_transpose2d nodes (groups = 1);
 *    an add (or a concat along another axis) of two such tensors ties their producers into
 *    one group, which is pruned jointly (residual connections);
 *  - channels flow unchanged through relu, relu6, leaky_relu, prelu, tanh, hardswish, GDN,
 *    IGDN, abs, max/avg/global pooling and upsample (each maps 0 to 0, so a channel whose
 *    filter and bias are zero stays zero), and are concatenated by a channel concat;
 *  - a removed channel is cut from every consumer: the input channels of conv2d /
 *    conv_transpose2d weights, PReLU slopes, GDN/IGDN beta and the rows and columns of gamma;
 *  - a group is kept whole (not prunable) when any of its tensors is a graph input or output,
 *    is listed in `keep`, or is read by another op (dense, flatten, reshape, batchnorm,
 *    sigmoid, quantize, likelihoods, ...) or by a grouped convolution.
 * Pruning channels whose filters and biases are zero therefore leaves the graph's function
 * unchanged (tests/passes/test_prune.c checks it). */
#ifndef NNEDGE_PRUNE_H
#define NNEDGE_PRUNE_H

#include "nnedge/graph.h"
#include "nnedge/passes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Cost: what a graph computes ------------------------------------------------------------ */

/* Workload of one node or of a whole graph. macs and params as nne_node_cost_get (dense
 * counts); nonzero_params counts constant elements that are not exactly 0
 * (nne_tensor_count_nonzero: quantized codes other than their zero point too); sparse_macs scales each
 * conv2d / conv_transpose2d / dense node's MACs by the nonzero fraction of its weight (the
 * work of a kernel that skips zero weights; equal to macs for a dense model). */
typedef struct nne_prune_cost {
    int64_t macs, sparse_macs;
    int64_t params, nonzero_params;
} nne_prune_cost;

/* Cost of node `node` of an inferred graph (`node` < 0: the whole graph, summed over nodes;
 * a constant shared by several nodes is counted once per node, as nne_node_cost_get does). */
nne_status nne_prune_cost_get(const nne_graph *g, int32_t node, nne_prune_cost *c);

/* ---- Channel pruning ------------------------------------------------------------------------ */

#define NNE_PRUNE_GRID 8 /* sensitivity is measured at ratios k / NNE_PRUNE_GRID, k = 1..7 */

/* One channel group of the analysis. */
typedef struct nne_prune_group {
    char *name;          /* the first producing node's name */
    int32_t channels;    /* channels of the group */
    int32_t kept;        /* channels kept (sum of keep) */
    int32_t n_producers; /* conv2d / conv_transpose2d nodes writing these channels */
    int32_t *producers;  /* [n_producers] node indices */
    bool prunable;       /* false: kept whole, for the reason in `why` */
    char *why;           /* NULL when prunable */
    uint8_t *keep;       /* [channels] 1 = kept; the caller may edit it before applying */
    double *l1;          /* [channels] L1 norm of each channel's filters (over producers) */
    /* Sensitivity (nne_prune_plan_create with calibration samples, prunable groups only):
     * dloss[k] = calibration loss with this group alone pruned at ratio k / NNE_PRUNE_GRID
     * (its lowest-L1 channels) minus the unpruned loss; dloss[0] = 0. NaN without samples. */
    double dloss[NNE_PRUNE_GRID];
} nne_prune_group;

typedef struct nne_prune_plan {
    int32_t n_groups;
    nne_prune_group *groups;
    double base_loss; /* calibration loss of the unpruned graph; NaN without samples */
    void *priv;       /* the channel analysis (private) */
} nne_prune_plan;

/* Calibration loss: mean squared error of output 0 against the input (an autoencoder, when
 * output 0 has input 0's shape) or else against the unpruned graph's output 0. */
typedef struct nne_prune_opts {
    double ratio;            /* fraction of the channels removed, in [0, 1) */
    const char *const *keep; /* NULL-terminated tensor names whose channels stay; may be NULL */
    /* Calibration (optional): with n_samples > 0, each prunable group's sensitivity is
     * measured on the fast cpu backend and the per-group ratios are chosen from it (below);
     * without, every prunable group loses round(ratio * channels) channels. */
    int32_t n_samples;
    nne_calib_sample_fn sample; /* fills input 0 of sample i (the graph's input shape) */
    nne_calib_progress_fn progress;
    void *ctx;
} nne_prune_opts;

/* Analyse an inferred all-f32 graph and choose the channels to remove. In every prunable
 * group the kept channels are those with the largest L1 norms (ties: the lower index), at
 * least one. Uniform: each group loses round(ratio * channels). With calibration, the
 * sensitivity-guided allocation (Li et al. 2017, automated as in NNI's sensitivity pruner):
 * a loss threshold t gives each group the largest grid ratio k / NNE_PRUNE_GRID whose
 * dloss[k] <= t, and t is the smallest threshold that removes at least `ratio` of all
 * prunable channels (ratio <= 7/8). Errors: NNE_ERR_UNSUPPORTED for a graph that is not
 * all f32, NNE_ERR_INVALID_ARG for options out of range. */
nne_status nne_prune_plan_create(nne_graph *g, const nne_prune_opts *o, nne_prune_plan **out);
void nne_prune_plan_free(nne_prune_plan *p);

/* The graph without the channels whose keep[] is 0 (and every slice of a consumer that reads
 * them); names, nodes and metadata are kept. `plan` must come from nne_prune_plan_create on
 * `g`; keep[] of prunable groups may be edited (at least one channel per group), those of
 * other groups must stay all 1 (NNE_ERR_INVALID_ARG). *out is a new inferred graph. */
nne_status nne_prune_plan_apply(const nne_graph *g, const nne_prune_plan *plan, nne_graph **out);

#ifdef __cplusplus
}
#endif
#endif
