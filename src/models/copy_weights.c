/* Rebinding weights by tensor name (models.h): the bridge between a model trained at one input
 * size and graphs built for another. */
#include <string.h>

#include "nnedge/models.h"

/* Copy one constant's data and quantization parameters (same dtype and shape, checked). */
static nne_status copy_one(nne_tensor *d, const nne_tensor *t) {
    if (t == d) return NNE_OK; /* dst == src */
    const size_t n = nne_tensor_nbytes(d);
    if (n) memcpy(d->data, t->data, n);
    nne_quant q = {-1, 0, NULL, NULL, false};
    nne_status s = nne_quant_copy(&q, &t->quant);
    if (s) return s;
    nne_quant_free(&d->quant);
    d->quant = q;
    return NNE_OK;
}

nne_status nne_model_copy_weights(nne_graph *dst, const nne_graph *src) {
    if (!dst || !src) return nne_error(NNE_ERR_INVALID_ARG, "copy weights: NULL graph");
    /* Pass 1: every constant of dst has a matching constant in src. */
    for (int32_t i = 0; i < dst->n_tensors; i++) {
        const nne_tensor *d = &dst->tensors[i];
        if (d->kind != NNE_TENSOR_CONSTANT) continue;
        const int32_t j = nne_graph_find_tensor(src, d->name);
        if (j < 0 || src->tensors[j].kind != NNE_TENSOR_CONSTANT)
            return nne_error(NNE_ERR_NOT_FOUND, "copy weights: '%s' has no constant '%s'",
                             src->name ? src->name : "?", d->name);
        const nne_tensor *t = &src->tensors[j];
        if (t->dtype != d->dtype || !nne_shape_equal(&t->shape, &d->shape)) {
            char a[96], b[96];
            return nne_error(NNE_ERR_SHAPE, "copy weights: '%s' is %s %s in '%s', %s %s in '%s'",
                             d->name, nne_dtype_name(t->dtype),
                             nne_shape_str(&t->shape, a, sizeof a), src->name ? src->name : "?",
                             nne_dtype_name(d->dtype), nne_shape_str(&d->shape, b, sizeof b),
                             dst->name ? dst->name : "?");
        }
        if (nne_tensor_nbytes(d) && (!t->data || !d->data))
            return nne_error(NNE_ERR_INVALID_ARG, "copy weights: constant '%s' has no data",
                             d->name);
    }
    /* Pass 2: copy. */
    for (int32_t i = 0; i < dst->n_tensors; i++) {
        nne_tensor *d = &dst->tensors[i];
        if (d->kind != NNE_TENSOR_CONSTANT) continue;
        nne_status s = copy_one(d, &src->tensors[nne_graph_find_tensor(src, d->name)]);
        if (s) return s;
    }
    return NNE_OK;
}

nne_status nne_model_copy_weights_matching(nne_graph *dst, const nne_graph *src, int32_t *n_copied,
                                           int32_t *n_constants) {
    if (n_copied) *n_copied = 0;
    if (n_constants) *n_constants = 0;
    if (!dst || !src) return nne_error(NNE_ERR_INVALID_ARG, "copy weights: NULL graph");
    for (int32_t i = 0; i < dst->n_tensors; i++) {
        nne_tensor *d = &dst->tensors[i];
        if (d->kind != NNE_TENSOR_CONSTANT) continue;
        if (n_constants) (*n_constants)++;
        const int32_t j = nne_graph_find_tensor(src, d->name);
        if (j < 0) continue;
        const nne_tensor *t = &src->tensors[j];
        if (t->kind != NNE_TENSOR_CONSTANT || t->dtype != d->dtype ||
            !nne_shape_equal(&t->shape, &d->shape) ||
            (nne_tensor_nbytes(d) && (!t->data || !d->data)))
            continue;
        nne_status s = copy_one(d, t);
        if (s) return s;
        if (n_copied) (*n_copied)++;
    }
    return NNE_OK;
}
