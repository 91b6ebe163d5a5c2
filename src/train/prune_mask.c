/* Magnitude pruning during training (train.h, docs/pruning.md): the polynomial sparsity
 * schedule of Zhu & Gupta 2017 and per-tensor magnitude masks over the parameter arena. The
 * trainer keeps masked parameters at exactly 0 (trainer.c, project_params). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/train.h"

nne_status nne_prune_schedule_check(const nne_prune_schedule *s) {
    if (!s) return nne_error(NNE_ERR_INVALID_ARG, "prune schedule: NULL");
    if (!(s->initial >= 0.0 && s->initial < 1.0))
        return nne_error(NNE_ERR_INVALID_ARG, "prune schedule: initial sparsity %g not in [0, 1)",
                         s->initial);
    if (!(s->final >= s->initial && s->final < 1.0))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "prune schedule: final sparsity %g not in [initial %g, 1)", s->final,
                         s->initial);
    if (s->begin < 0 || s->every < 1 || s->count < 0)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "prune schedule: begin %lld, every %lld, count %lld (want >= 0, >= 1, "
                         ">= 0)",
                         (long long)s->begin, (long long)s->every, (long long)s->count);
    return NNE_OK;
}

bool nne_prune_schedule_is_update(const nne_prune_schedule *s, int64_t step) {
    if (step < s->begin) return false;
    const int64_t d = step - s->begin;
    return d % s->every == 0 && d / s->every <= s->count;
}

double nne_prune_schedule_sparsity(const nne_prune_schedule *s, int64_t step) {
    if (step < s->begin) return 0.0;
    int64_t k = (step - s->begin) / s->every;
    if (k >= s->count) return s->final;
    if (k == 0) return s->initial; /* exactly, not s_f + (s_i - s_f) */
    const double r = 1.0 - (double)k / (double)s->count;
    return s->final + (s->initial - s->final) * r * r * r;
}

typedef struct mag {
    float m; /* |w|, or -1 for an element masked before (masks only grow) */
    int32_t i;
} mag;

static int cmp_mag(const void *x, const void *y) {
    const mag *a = x, *b = y;
    if (a->m != b->m) return a->m < b->m ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

static bool is_conv(nne_op_type op) { return op == NNE_OP_CONV2D || op == NNE_OP_CONV_TRANSPOSE2D; }

nne_status nne_prune_masks_update(nne_params *p, const nne_graph *g, double sparsity) {
    if (!p || !g) return nne_error(NNE_ERR_INVALID_ARG, "prune masks: NULL argument");
    if (!(sparsity >= 0.0 && sparsity < 1.0))
        return nne_error(NNE_ERR_INVALID_ARG, "prune masks: sparsity %g not in [0, 1)", sparsity);
    if (!p->keep) {
        if (!(p->keep = nne_malloc(p->total ? p->total : 1)))
            return nne_error(NNE_ERR_NOMEM, "prune masks: out of memory");
        memset(p->keep, 1, p->total);
    }
    size_t max_n = 1;
    for (int32_t i = 0; i < p->n; i++)
        if (p->items[i].count > max_n) max_n = p->items[i].count;
    mag *order = nne_malloc(max_n * sizeof *order);
    if (!order) return nne_error(NNE_ERR_NOMEM, "prune masks: out of memory");
    for (int32_t ni = 0; ni < g->n_nodes; ni++) {
        const nne_node *n = &g->nodes[ni];
        if (!is_conv(n->op)) continue;
        const int32_t it = nne_params_find(p, n->inputs[1]);
        if (it < 0) continue;
        const nne_param *pa = &p->items[it];
        if (pa->count > (size_t)INT32_MAX) continue; /* beyond NNE limits; never the case */
        float *w = p->data + pa->offset;
        uint8_t *keep = p->keep + pa->offset;
        size_t want = (size_t)floor(sparsity * (double)pa->count + 0.5), masked = 0;
        for (size_t e = 0; e < pa->count; e++) {
            order[e].m = keep[e] ? fabsf(w[e]) : -1.0f;
            order[e].i = (int32_t)e;
            masked += !keep[e];
        }
        if (want <= masked) continue; /* shared weights seen twice, or a lower target */
        qsort(order, pa->count, sizeof *order, cmp_mag);
        for (size_t e = 0; e < want; e++) {
            keep[order[e].i] = 0;
            w[order[e].i] = 0.0f;
        }
    }
    nne_free(order);
    return NNE_OK;
}

void nne_prune_masks_apply(const nne_params *p, float *v) {
    if (!p->keep) return;
    for (size_t i = 0; i < p->total; i++)
        if (!p->keep[i]) v[i] = 0.0f;
}

void nne_prune_masks_count(const nne_params *p, const nne_graph *g, size_t *masked,
                           size_t *maskable) {
    *masked = *maskable = 0;
    for (int32_t ni = 0; ni < g->n_nodes; ni++) {
        const nne_node *n = &g->nodes[ni];
        const int32_t it = is_conv(n->op) ? nne_params_find(p, n->inputs[1]) : -1;
        bool seen = false; /* a weight shared by several nodes counts once */
        for (int32_t k = 0; k < ni && it >= 0; k++)
            seen |= is_conv(g->nodes[k].op) && g->nodes[k].inputs[1] == n->inputs[1];
        if (it < 0 || seen) continue;
        const nne_param *pa = &p->items[it];
        *maskable += pa->count;
        for (size_t e = 0; p->keep && e < pa->count; e++) *masked += !p->keep[pa->offset + e];
    }
}
