/* Activation arena planning and per-node cost. */
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"

typedef struct plan_item {
    int32_t tensor;
    int32_t first, last; /* node indices of the lifetime, inclusive */
    size_t size;         /* bytes, aligned */
    size_t offset;
} plan_item;

static int by_size_desc(const void *a, const void *b) {
    const plan_item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->tensor - y->tensor; /* deterministic */
}

static int by_offset(const void *a, const void *b) {
    const plan_item *const *x = a, *const *y = b;
    if ((*x)->offset != (*y)->offset) return (*x)->offset < (*y)->offset ? -1 : 1;
    return 0;
}

nne_status nne_graph_plan(nne_graph *g) {
    nne_status s = nne_graph_infer(g);
    if (s) return s;
    if (g->planned) return NNE_OK;
    int32_t n_items = 0;
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind != NNE_TENSOR_CONSTANT) n_items++;
    plan_item *items = nne_calloc((size_t)n_items + 1, sizeof *items);
    plan_item **placed = nne_calloc((size_t)n_items + 1, sizeof *placed);
    int32_t *slot = nne_calloc((size_t)g->n_tensors + 1, sizeof *slot);
    if (!items || !placed || !slot) {
        nne_free(items);
        nne_free(placed);
        nne_free(slot);
        return NNE_ERR_NOMEM;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        slot[i] = -1;
        if (t->kind == NNE_TENSOR_CONSTANT) continue;
        size_t nb = nne_tensor_nbytes(t);
        if (nb == 0 || nb > SIZE_MAX / 2) {
            nne_free(items);
            nne_free(placed);
            nne_free(slot);
            return nne_error(NNE_ERR_LIMIT, "tensor '%s' is too large to plan", t->name);
        }
        items[k].tensor = i;
        items[k].first = t->kind == NNE_TENSOR_INPUT ? 0 : nne_graph_producer(g, i);
        items[k].last = items[k].first;
        items[k].size = nne_align_up(nb, NNE_ALIGN);
        slot[i] = k++;
    }
    for (int32_t ni = 0; ni < g->n_nodes; ni++) {
        const nne_node *n = &g->nodes[ni];
        for (int32_t j = 0; j < n->n_inputs; j++) {
            int32_t t = n->inputs[j];
            if (t >= 0 && slot[t] >= 0 && items[slot[t]].last < ni) items[slot[t]].last = ni;
        }
    }
    for (int32_t i = 0; i < g->n_outputs; i++) {
        int32_t t = g->outputs[i];
        if (slot[t] >= 0) items[slot[t]].last = g->n_nodes; /* alive until the end */
    }
    /* Inputs must stay intact for the whole run as well: callers may reuse them. */
    for (int32_t i = 0; i < g->n_inputs; i++) {
        int32_t t = g->inputs[i];
        if (slot[t] >= 0) items[slot[t]].last = g->n_nodes;
    }
    qsort(items, (size_t)n_items, sizeof *items, by_size_desc);
    size_t total = 0;
    int32_t n_placed = 0;
    for (int32_t i = 0; i < n_items; i++) {
        plan_item *it = &items[i];
        /* First fit among the gaps left by already placed, lifetime-overlapping tensors,
         * scanned in offset order. */
        int32_t m = 0;
        for (int32_t j = 0; j < n_placed; j++) {
            plan_item *o = placed[j];
            if (o->first <= it->last && it->first <= o->last) placed[m++] = o;
        }
        /* placed[0..m) now holds the conflicting items; restore the full list afterwards. */
        qsort(placed, (size_t)m, sizeof *placed, by_offset);
        size_t off = 0;
        for (int32_t j = 0; j < m; j++) {
            if (placed[j]->offset >= off + it->size) break;
            size_t end = placed[j]->offset + placed[j]->size;
            if (end > off) off = end;
        }
        it->offset = off;
        if (off + it->size > total) total = off + it->size;
        /* Rebuild the placed list: all items with index <= i. */
        n_placed = 0;
        for (int32_t j = 0; j <= i; j++) placed[n_placed++] = &items[j];
    }
    for (int32_t i = 0; i < n_items; i++)
        g->tensors[items[i].tensor].arena_offset = (int64_t)items[i].offset;
    g->arena_size = total;
    g->planned = true;
    nne_free(items);
    nne_free(placed);
    nne_free(slot);
    return NNE_OK;
}

nne_status nne_node_cost_get(const nne_graph *g, int32_t node, nne_node_cost *c) {
    memset(c, 0, sizeof *c);
    if (!g->inferred) return nne_error(NNE_ERR_INVALID_ARG, "graph is not inferred");
    if (node < 0 || node >= g->n_nodes)
        return nne_error(NNE_ERR_INVALID_ARG, "node %d out of range", (int)node);
    const nne_node *n = &g->nodes[node];
    const nne_tensor *out = &g->tensors[n->output];
    for (int32_t k = 0; k < n->n_inputs; k++) {
        int32_t t = n->inputs[k];
        if (t < 0) continue;
        const nne_tensor *x = &g->tensors[t];
        if (x->kind == NNE_TENSOR_CONSTANT) {
            c->params += nne_shape_numel(&x->shape);
            c->weight_bytes += (int64_t)nne_tensor_nbytes(x);
        } else {
            c->in_bytes += (int64_t)nne_tensor_nbytes(x);
        }
    }
    c->out_bytes = (int64_t)nne_tensor_nbytes(out);
    const nne_conv2d_geom *cg = &n->conv_geom;
    switch (n->op) {
    case NNE_OP_CONV2D: /* one MAC per output element per kernel tap per group input channel */
        c->macs =
            (int64_t)cg->n * cg->oh * cg->ow * cg->oc * cg->kh * cg->kw * (cg->ic / cg->groups);
        break;
    case NNE_OP_CONV_TRANSPOSE2D: /* every input element scatters to kh*kw*(oc/groups) outputs */
        c->macs =
            (int64_t)cg->n * cg->ih * cg->iw * cg->ic * cg->kh * cg->kw * (cg->oc / cg->groups);
        break;
    case NNE_OP_DENSE: {
        const nne_tensor *w = &g->tensors[n->inputs[1]];
        c->macs = out->shape.dim[0] * w->shape.dim[0] * w->shape.dim[1];
        break;
    }
    case NNE_OP_GDN:
    case NNE_OP_IGDN: { /* the C x C mixing of squared inputs */
        int64_t ch = out->shape.dim[out->shape.ndim - 1];
        c->macs = nne_shape_numel(&out->shape) * ch;
        break;
    }
    default:
        break;
    }
    return NNE_OK;
}
