/* Rebinding weights by tensor name (models.h): the bridge between a model trained at one input
 * size and graphs built for another. */
#include <string.h>

#include "nnedge/models.h"

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
        const nne_tensor *t = &src->tensors[nne_graph_find_tensor(src, d->name)];
        if (t == d) continue; /* dst == src */
        const size_t n = nne_tensor_nbytes(d);
        if (n) memcpy(d->data, t->data, n);
        nne_quant q = {-1, 0, NULL, NULL, false};
        nne_status s = nne_quant_copy(&q, &t->quant);
        if (s) return s;
        nne_quant_free(&d->quant);
        d->quant = q;
    }
    return NNE_OK;
}
