/* The hooks through which the trainer (trainer.c) runs a QAT state (qat.c). Private. */
#ifndef NNE_QAT_INTERNAL_H
#define NNE_QAT_INTERNAL_H

#include "nnedge/qat.h"

/* True if q was built for graph g. */
bool nne_qat__for_graph(const nne_qat *q, const nne_graph *g);
/* NNE_OK if every quantized activation has a range or (train and ema > 0) can get one from
 * the batch; else NNE_ERR_INVALID_ARG naming the first tensor without one. */
nne_status nne_qat__ready(const nne_qat *q, bool train);
/* Fake-quantize the weights `w` of graph tensor `tensor` (a conv weight, or under pow2 a
 * PReLU slope tensor: nne_quantize_slopes_pow2) into q's buffer and return it (w itself if
 * the tensor is not quantized). *st receives an error for non-finite weights (and the buffer
 * then holds w unchanged). */
const float *nne_qat__weight(nne_qat *q, int32_t tensor, const float *w, nne_status *st);
/* The buffer of the last nne_qat__weight for the tensor (w if not quantized). */
const float *nne_qat__weight_cached(const nne_qat *q, int32_t tensor, const float *w);
/* STE for a weight gradient: dw[i] = 0 where the weight saturated. */
void nne_qat__weight_grad(const nne_qat *q, int32_t tensor, float *dw);
/* After `tensor` [count] was computed: update its range (train, ema > 0) and fake-quantize
 * it in place (or into its copy, see nne_qat__input), recording the STE mask. A pow2 PReLU output
 * (shared parameters) is rounded to its input's grid without a range update. No-op for tensors that
 * are not quantized. */
void nne_qat__activation(nne_qat *q, int32_t tensor, float *x, size_t count, bool train,
                         nne_threadpool *pool);
/* STE for an activation gradient, in place: dy[i] = 0 where the activation saturated; with
 * LSQ it first adds the tensor's contribution to dL/ds (y [count]: the fake-quantized values
 * of the forward pass). Not for a tensor fake-quantized in a copy (nne_qat__input_grad
 * applies its STE per reader). */
void nne_qat__activation_grad(nne_qat *q, int32_t tensor, const float *y, float *dy,
                              size_t count, nne_threadpool *pool);
/* After the parameters' update of a training step at learning rate `rate`: LSQ's update of the
 * activation scales (cfg.lsq > 0), from the gradients of the last backward pass. */
void nne_qat__update(nne_qat *q, float rate);
/* What node `node` reads as input `tensor` (data x): the fake-quantized copy when the node is
 * simulated and the tensor is a region boundary that other nodes also read (cfg.only), else
 * x. nne_qat__activation fills the copy when the tensor is computed. */
const float *nne_qat__input(const nne_qat *q, int32_t node, int32_t tensor, const float *x);
/* STE of that copy on node `node`'s contribution dx [count] to dL/d(tensor), in place before
 * it is added to the tensor's gradient; no-op where nne_qat__input returns x. */
void nne_qat__input_grad(const nne_qat *q, int32_t node, int32_t tensor, float *dx, size_t count,
                         nne_threadpool *pool);

#endif
