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

/* The groups of the conv2d / conv_transpose2d node whose weight (input 1) is tensor `ti` of g,
 * or 0 if it is none's. Both are OHWI: the last axis is the input channel (of a group). */
static int64_t conv_weight_groups(const nne_graph *g, int32_t ti) {
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if ((n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D) && n->n_inputs > 1 &&
            n->inputs[1] == ti)
            return n->params.conv.groups > 1 ? n->params.conv.groups : 1;
    }
    return 0;
}

/* Copy src's block into the leading corner of d (same rank, every dim of d >= src's); with
 * zero_new_inputs, elements of d whose last index is beyond src's last extent become 0. */
static void widen_one(nne_tensor *d, const nne_tensor *t, bool zero_new_inputs) {
    const int nd = d->shape.ndim;
    const int64_t total = nne_shape_numel(&d->shape);
    float *dd = d->data;
    const float *sd = t->data;
    int64_t idx[NNE_MAX_DIMS] = {0};
    for (int64_t e = 0; e < total; e++) {
        /* idx is the multi-index of element e of d (row-major, last axis fastest) */
        bool inside = true;
        int64_t so = 0;
        for (int k = 0; k < nd; k++) {
            if (idx[k] >= t->shape.dim[k]) inside = false;
            so = so * t->shape.dim[k] + idx[k];
        }
        if (inside)
            dd[e] = sd[so];
        else if (zero_new_inputs && idx[nd - 1] >= t->shape.dim[nd - 1])
            dd[e] = 0.0f;
        for (int k = nd - 1; k >= 0; k--) {
            if (++idx[k] < d->shape.dim[k]) break;
            idx[k] = 0;
        }
    }
}

/* The lenient copies: tensors of the same name, dtype and shape are copied; with `widen`,
 * also those of the same rank that are no larger on any axis in src (widen_one). */
static nne_status copy_lenient(nne_graph *dst, const nne_graph *src, bool widen, int32_t *n_copied,
                               int32_t *n_widened, int32_t *n_constants) {
    if (n_copied) *n_copied = 0;
    if (n_widened) *n_widened = 0;
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
            t->shape.ndim != d->shape.ndim || (nne_tensor_nbytes(d) && (!t->data || !d->data)))
            continue;
        if (nne_shape_equal(&t->shape, &d->shape)) {
            nne_status s = copy_one(d, t);
            if (s) return s;
            if (n_copied) (*n_copied)++;
            continue;
        }
        bool larger = widen && d->dtype == NNE_F32 && t->quant.count == 0 && d->quant.count == 0;
        for (int k = 0; k < d->shape.ndim && larger; k++)
            larger = d->shape.dim[k] >= t->shape.dim[k] && t->shape.dim[k] > 0;
        if (!larger) continue;
        /* A grouped convolution's weight has its input channels per group: the leading block
         * would mix groups, so it keeps its initialisation. */
        const int64_t groups = conv_weight_groups(dst, i);
        if (groups > 1) continue;
        widen_one(d, t, groups == 1);
        if (n_widened) (*n_widened)++;
    }
    return NNE_OK;
}

nne_status nne_model_copy_weights_matching(nne_graph *dst, const nne_graph *src, int32_t *n_copied,
                                           int32_t *n_constants) {
    return copy_lenient(dst, src, false, n_copied, NULL, n_constants);
}

nne_status nne_model_copy_weights_widen(nne_graph *dst, const nne_graph *src, int32_t *n_copied,
                                        int32_t *n_widened, int32_t *n_constants) {
    return copy_lenient(dst, src, true, n_copied, n_widened, n_constants);
}
