/* Channel pruning (prune.h, docs/pruning.md): channel analysis, L1 ranking, sensitivity on
 * calibration data, and the rebuild of a smaller graph; and the cost counts shared with
 * magnitude pruning.
 *
 * Analysis. Every activation tensor t of C channels gets an origin org[t] = C pairs (raw
 * group, channel in that group). A conv2d / conv_transpose2d output starts a raw group; the
 * channel-wise ops copy their input's origin; a channel concat concatenates origins; an add
 * (or a concat along another axis) unites the raw groups of its inputs channel by channel
 * (union-find), which requires them to be aligned (same channel index, same size). Graph
 * inputs and the outputs of any other op start locked raw groups, and every tensor a locked
 * consumer reads locks the groups in its origin. A plan group is a union-find root with at
 * least one producing convolution. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/prune.h"
#include "passes_internal.h"

/* ---- Cost ------------------------------------------------------------------------------------ */

static bool is_mac_op(nne_op_type op) {
    return op == NNE_OP_CONV2D || op == NNE_OP_CONV_TRANSPOSE2D || op == NNE_OP_DENSE;
}

static nne_status node_cost(const nne_graph *g, int32_t node, nne_prune_cost *c) {
    nne_node_cost nc;
    nne_status s = nne_node_cost_get(g, node, &nc);
    if (s) return s;
    const nne_node *n = &g->nodes[node];
    c->macs += nc.macs;
    c->params += nc.params;
    int64_t w_nz = -1, w_n = 0;
    for (int32_t k = 0; k < n->n_inputs; k++) {
        const int32_t t = n->inputs[k];
        if (t < 0 || g->tensors[t].kind != NNE_TENSOR_CONSTANT) continue;
        const int64_t nz = nne_tensor_count_nonzero(&g->tensors[t]);
        c->nonzero_params += nz;
        if (k == 1) {
            w_nz = nz;
            w_n = nne_shape_numel(&g->tensors[t].shape);
        }
    }
    /* sparse MACs: the MACs of a kernel skipping zero weights (each weight is used equally
     * often by conv2d, conv_transpose2d and dense, so the count scales with the density). */
    if (is_mac_op(n->op) && w_nz >= 0 && w_n > 0)
        c->sparse_macs += (int64_t)((double)nc.macs * (double)w_nz / (double)w_n + 0.5);
    else
        c->sparse_macs += nc.macs;
    return NNE_OK;
}

nne_status nne_prune_cost_get(const nne_graph *g, int32_t node, nne_prune_cost *c) {
    if (!c) return nne_error(NNE_ERR_INVALID_ARG, "prune cost: NULL output");
    memset(c, 0, sizeof *c);
    if (!g || !g->inferred) return nne_error(NNE_ERR_INVALID_ARG, "prune cost: graph not inferred");
    if (node >= g->n_nodes)
        return nne_error(NNE_ERR_INVALID_ARG, "prune cost: node %d out of range", (int)node);
    if (node >= 0) return node_cost(g, node, c);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        nne_status s = node_cost(g, i, c);
        if (s) return s;
    }
    return NNE_OK;
}

/* ---- Channel analysis ------------------------------------------------------------------------ */

typedef struct analysis {
    int32_t n_tensors;
    int32_t **org; /* [n_tensors] -> [2 * channels] (raw group, channel) pairs, or NULL */
    int32_t *nch;  /* [n_tensors] channels of activations / inputs */
    int32_t n_raw, cap_raw;
    int32_t *parent;  /* [n_raw] union-find */
    int32_t *size;    /* [n_raw] channels */
    int32_t *node;    /* [n_raw] producing convolution, -1 for none */
    char **why;       /* [n_raw] lock reason (owned), NULL = prunable */
    int32_t *to_plan; /* [n_raw] plan group of the root, -1 for groups without producers */
    nne_status st;    /* first allocation failure */
} analysis;

static int32_t uf_find(analysis *a, int32_t x) {
    while (a->parent[x] != x) {
        a->parent[x] = a->parent[a->parent[x]];
        x = a->parent[x];
    }
    return x;
}

/* Lock raw group r's root with the reason `why` (the first reason stays). */
static void lock_raw(analysis *a, int32_t r, const char *why) {
    r = uf_find(a, r);
    if (a->why[r]) return;
    if (!(a->why[r] = nne_strdup(why))) a->st = NNE_ERR_NOMEM;
}

static int32_t new_raw(analysis *a, int32_t channels, int32_t node) {
    if (a->n_raw == a->cap_raw) {
        const int32_t cap = a->cap_raw ? 2 * a->cap_raw : 64;
        int32_t *p = nne_realloc_array(a->parent, (size_t)cap, sizeof *p);
        if (p) a->parent = p;
        int32_t *s = p ? nne_realloc_array(a->size, (size_t)cap, sizeof *s) : NULL;
        if (s) a->size = s;
        int32_t *n = s ? nne_realloc_array(a->node, (size_t)cap, sizeof *n) : NULL;
        if (n) a->node = n;
        char **w = n ? nne_realloc_array(a->why, (size_t)cap, sizeof *w) : NULL;
        if (w) a->why = w;
        if (!w) {
            a->st = NNE_ERR_NOMEM;
            return -1;
        }
        a->cap_raw = cap;
    }
    const int32_t r = a->n_raw++;
    a->parent[r] = r;
    a->size[r] = channels;
    a->node[r] = node;
    a->why[r] = NULL;
    return r;
}

/* Give tensor t a fresh origin: a new raw group of all its channels. */
static int32_t origin_new(analysis *a, int32_t t, int32_t node) {
    const int32_t c = a->nch[t];
    const int32_t r = new_raw(a, c, node);
    if (r < 0) return -1;
    if (!(a->org[t] = nne_malloc(2 * (size_t)c * sizeof(int32_t)))) {
        a->st = NNE_ERR_NOMEM;
        return -1;
    }
    for (int32_t k = 0; k < c; k++) {
        a->org[t][2 * k] = r;
        a->org[t][2 * k + 1] = k;
    }
    return r;
}

static void origin_copy(analysis *a, int32_t dst, const int32_t *src, int32_t off, int32_t c) {
    if (!a->org[dst] && !(a->org[dst] = nne_malloc(2 * (size_t)a->nch[dst] * sizeof(int32_t)))) {
        a->st = NNE_ERR_NOMEM;
        return;
    }
    memcpy(a->org[dst] + 2 * off, src, 2 * (size_t)c * sizeof(int32_t));
}

typedef char reason[NNE_MAX_NAME + 96];

static void lock_tensor(analysis *a, int32_t t, const char *why) {
    if (t < 0 || !a->org[t]) return;
    for (int32_t k = 0; k < a->nch[t]; k++) lock_raw(a, a->org[t][2 * k], why);
}

/* Tie the channels of tensors x and y (an add): channel k of both must be the same channel
 * of groups of equal size; otherwise both sides are locked. */
static void unite(analysis *a, int32_t x, int32_t y, const char *node) {
    if (!a->org[x] || !a->org[y]) return;
    for (int32_t k = 0; k < a->nch[x]; k++) {
        const int32_t gx = uf_find(a, a->org[x][2 * k]), gy = uf_find(a, a->org[y][2 * k]);
        if (gx == gy && a->org[x][2 * k + 1] == a->org[y][2 * k + 1]) continue;
        if (gx == gy || a->org[x][2 * k + 1] != a->org[y][2 * k + 1] ||
            a->size[gx] != a->size[gy]) {
            reason why;
            snprintf(why, sizeof why, "added to channels it does not align with (node '%s')", node);
            lock_raw(a, gx, why);
            lock_raw(a, gy, why);
            continue;
        }
        a->parent[gy] = gx;
        if (!a->why[gx] && a->why[gy]) {
            a->why[gx] = a->why[gy];
            a->why[gy] = NULL;
        }
    }
}

static bool passes_channels(nne_op_type op) {
    switch (op) {
    case NNE_OP_RELU:
    case NNE_OP_RELU6:
    case NNE_OP_LEAKY_RELU:
    case NNE_OP_PRELU:
    case NNE_OP_TANH:
    case NNE_OP_HARDSWISH:
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
    case NNE_OP_ABS:
    case NNE_OP_MAXPOOL2D:
    case NNE_OP_AVGPOOL2D:
    case NNE_OP_GLOBAL_AVGPOOL:
    case NNE_OP_UPSAMPLE:
        return true;
    default:
        return false;
    }
}

/* Does input k of node n hold per-channel data that pruning slices? */
static bool sliced_input(const nne_node *n, int32_t k) {
    switch (n->op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
        return k == 1 || k == 2;
    case NNE_OP_PRELU:
        return k == 1;
    default:
        return false;
    }
}

static bool all_have_origin(const analysis *a, const nne_node *n) {
    for (int32_t k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] < 0 || !a->org[n->inputs[k]]) return false;
    return true;
}

static void analysis_free(analysis *a) {
    if (!a) return;
    if (a->org)
        for (int32_t t = 0; t < a->n_tensors; t++) nne_free(a->org[t]);
    nne_free(a->org);
    nne_free(a->nch);
    if (a->why)
        for (int32_t r = 0; r < a->n_raw; r++) nne_free(a->why[r]);
    nne_free(a->why);
    nne_free(a->parent);
    nne_free(a->size);
    nne_free(a->node);
    nne_free(a->to_plan);
    nne_free(a);
}

static nne_status analyse(const nne_graph *g, const char *const *keep, analysis **out) {
    *out = NULL;
    analysis *a = nne_calloc(1, sizeof *a);
    if (!a) return NNE_ERR_NOMEM;
    a->n_tensors = g->n_tensors;
    a->org = nne_calloc((size_t)g->n_tensors + 1, sizeof *a->org);
    a->nch = nne_calloc((size_t)g->n_tensors + 1, sizeof *a->nch);
    int32_t *refs = nne_calloc((size_t)g->n_tensors + 1, sizeof *refs);
    if (!a->org || !a->nch || !refs) {
        nne_free(refs);
        analysis_free(a);
        return NNE_ERR_NOMEM;
    }
    for (int32_t t = 0; t < g->n_tensors; t++) {
        const nne_shape *s = &g->tensors[t].shape;
        a->nch[t] = s->ndim > 0 ? (int32_t)s->dim[s->ndim - 1] : 1;
    }
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0) refs[g->nodes[i].inputs[k]]++;
    reason why;
    for (int32_t i = 0; i < g->n_inputs && !a->st; i++)
        if (origin_new(a, g->inputs[i], -1) >= 0) {
            snprintf(why, sizeof why, "reads the graph input '%s'", g->tensors[g->inputs[i]].name);
            lock_tensor(a, g->inputs[i], why);
        }
    for (int32_t i = 0; i < g->n_nodes && !a->st; i++) {
        const nne_node *n = &g->nodes[i];
        const int32_t x = n->inputs[0], y = n->output;
        /* A per-channel constant shared with another node cannot be sliced for one of them. */
        bool shared = false;
        for (int32_t k = 1; k < n->n_inputs; k++)
            shared |= n->inputs[k] >= 0 && sliced_input(n, k) && refs[n->inputs[k]] > 1;
        if ((n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D) &&
            n->conv_geom.groups == 1) {
            origin_new(a, y, i);
            if (shared) {
                snprintf(why, sizeof why, "node '%s' shares a weight with another node", n->name);
                lock_tensor(a, x, why);
                lock_tensor(a, y, why);
            }
        } else if (passes_channels(n->op) && a->org[x] && a->nch[x] == a->nch[y]) {
            origin_copy(a, y, a->org[x], 0, a->nch[y]);
            if (shared) {
                snprintf(why, sizeof why, "node '%s' shares a parameter with another node",
                         n->name);
                lock_tensor(a, x, why);
            }
        } else if (n->op == NNE_OP_ADD && a->org[x] && a->org[n->inputs[1]]) {
            origin_copy(a, y, a->org[x], 0, a->nch[y]);
            unite(a, x, n->inputs[1], n->name);
        } else if (n->op == NNE_OP_CONCAT && all_have_origin(a, n)) {
            const int32_t nd = g->tensors[y].shape.ndim;
            const int32_t axis =
                n->params.concat.axis < 0 ? n->params.concat.axis + nd : n->params.concat.axis;
            int32_t off = 0;
            for (int32_t k = 0; k < n->n_inputs && !a->st; k++) {
                const int32_t in = n->inputs[k];
                if (axis == nd - 1) {
                    origin_copy(a, y, a->org[in], off, a->nch[in]);
                    off += a->nch[in];
                } else if (k == 0) {
                    origin_copy(a, y, a->org[in], 0, a->nch[y]);
                } else {
                    unite(a, n->inputs[0], in, n->name);
                }
            }
        } else {
            /* Any other op reads its inputs' channels in its own way: they stay. */
            snprintf(why, sizeof why, "read by the %s node '%s'", nne_op_name(n->op), n->name);
            for (int32_t k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] >= 0 && g->tensors[n->inputs[k]].kind != NNE_TENSOR_CONSTANT)
                    lock_tensor(a, n->inputs[k], why);
            snprintf(why, sizeof why, "written by the %s node '%s'", nne_op_name(n->op), n->name);
            if (origin_new(a, y, -1) >= 0) lock_tensor(a, y, why);
        }
    }
    for (int32_t i = 0; i < g->n_outputs && !a->st; i++) {
        snprintf(why, sizeof why, "reaches the graph output '%s'", g->tensors[g->outputs[i]].name);
        lock_tensor(a, g->outputs[i], why);
    }
    for (int32_t i = 0; keep && keep[i] && !a->st; i++) {
        const int32_t t = nne_graph_find_tensor(g, keep[i]);
        if (t < 0) {
            a->st = nne_error(NNE_ERR_NOT_FOUND, "prune: no tensor '%s' to keep", keep[i]);
            break;
        }
        snprintf(why, sizeof why, "kept as asked ('%s')", keep[i]);
        lock_tensor(a, t, why);
    }
    nne_free(refs);
    if (a->st) {
        nne_status s = a->st;
        analysis_free(a);
        return s == NNE_ERR_NOMEM && !*nne_last_error()
                   ? nne_error(NNE_ERR_NOMEM, "prune: out of memory")
                   : s;
    }
    *out = a;
    return NNE_OK;
}

/* ---- Plan ------------------------------------------------------------------------------------ */

void nne_prune_plan_free(nne_prune_plan *p) {
    if (!p) return;
    for (int32_t i = 0; i < p->n_groups; i++) {
        nne_prune_group *gr = &p->groups[i];
        nne_free(gr->name);
        nne_free(gr->why);
        nne_free(gr->producers);
        nne_free(gr->keep);
        nne_free(gr->l1);
    }
    nne_free(p->groups);
    analysis_free(p->priv);
    nne_free(p);
}

/* L1 norm of output channel o of a conv2d / conv_transpose2d weight [OC][KH][KW][IC]. */
static double filter_l1(const nne_tensor *w, int32_t o) {
    const size_t per = (size_t)(nne_shape_numel(&w->shape) / w->shape.dim[0]);
    const float *f = (const float *)w->data + (size_t)o * per;
    double s = 0.0;
    for (size_t i = 0; i < per; i++) s += fabs((double)f[i]);
    return s;
}

/* The plan groups: one per union-find root with a producing convolution, in the order of
 * their first producer. */
static nne_status make_groups(const nne_graph *g, analysis *a, nne_prune_plan *p) {
    if (!(a->to_plan = nne_malloc(((size_t)a->n_raw + 1) * sizeof *a->to_plan)) ||
        !(p->groups = nne_calloc((size_t)a->n_raw + 1, sizeof *p->groups)))
        return NNE_ERR_NOMEM;
    for (int32_t r = 0; r < a->n_raw; r++) a->to_plan[r] = -1;
    for (int32_t r = 0; r < a->n_raw; r++) {
        if (a->node[r] < 0) continue;
        const int32_t root = uf_find(a, r);
        if (a->to_plan[root] < 0) {
            nne_prune_group *gr = &p->groups[p->n_groups];
            a->to_plan[root] = p->n_groups++;
            gr->channels = a->size[root];
            gr->kept = gr->channels;
            gr->prunable = a->why[root] == NULL;
            gr->name = nne_strdup(g->nodes[a->node[r]].name);
            gr->why = a->why[root] ? nne_strdup(a->why[root]) : NULL;
            gr->keep = nne_malloc((size_t)gr->channels);
            gr->l1 = nne_calloc((size_t)gr->channels, sizeof *gr->l1);
            gr->producers = nne_calloc((size_t)a->n_raw, sizeof *gr->producers);
            if (!gr->name || (a->why[root] && !gr->why) || !gr->keep || !gr->l1 || !gr->producers)
                return NNE_ERR_NOMEM;
            memset(gr->keep, 1, (size_t)gr->channels);
            for (int32_t k = 0; k < NNE_PRUNE_GRID; k++) gr->dloss[k] = NAN;
        }
        nne_prune_group *gr = &p->groups[a->to_plan[root]];
        gr->producers[gr->n_producers++] = a->node[r];
        const nne_tensor *w = &g->tensors[g->nodes[a->node[r]].inputs[1]];
        for (int32_t o = 0; o < gr->channels; o++) gr->l1[o] += filter_l1(w, o);
    }
    for (int32_t r = 0; r < a->n_raw; r++) a->to_plan[r] = a->to_plan[uf_find(a, r)];
    return NNE_OK;
}

/* keep[] with the n lowest-L1 channels removed (ties: the higher index goes first). */
static void keep_top(const nne_prune_group *gr, int32_t n, uint8_t *keep) {
    const int32_t c = gr->channels;
    memset(keep, 1, (size_t)c);
    if (n > c - 1) n = c - 1;
    for (int32_t removed = 0; removed < n; removed++) {
        int32_t best = -1;
        for (int32_t o = c - 1; o >= 0; o--)
            if (keep[o] && (best < 0 || gr->l1[o] < gr->l1[best])) best = o;
        keep[best] = 0;
    }
}

static int32_t n_remove(int32_t channels, double ratio) {
    int32_t n = (int32_t)floor(ratio * channels + 0.5);
    return n > channels - 1 ? channels - 1 : n;
}

static void set_kept(nne_prune_group *gr) {
    gr->kept = 0;
    for (int32_t o = 0; o < gr->channels; o++) gr->kept += gr->keep[o];
}

/* ---- Sensitivity ----------------------------------------------------------------------------- */

typedef struct calib {
    const nne_prune_opts *o;
    float *inputs;  /* [n_samples][input numel] */
    float *targets; /* [n_samples][output numel]: the input (autoencoder) or base outputs */
    size_t in_n, out_n;
    bool recon;
} calib;

/* Mean squared error of output 0 over the samples; with `store`, the outputs become the
 * targets. */
static nne_status calib_loss(nne_graph *g, calib *c, bool store, double *loss) {
    nne_session *s = NULL;
    nne_status st = nne_session_create(g, nne_backend_cpu(), &s);
    double sum = 0.0;
    float *y = st ? NULL : nne_malloc(c->out_n * sizeof *y);
    if (!st && !y) st = NNE_ERR_NOMEM;
    for (int32_t i = 0; i < c->o->n_samples && !st; i++) {
        const float *x = c->inputs + (size_t)i * c->in_n;
        st = nne_session_set_input_f32(s, 0, x, c->in_n);
        if (!st) st = nne_session_run(s);
        if (!st) st = nne_session_get_output_f32(s, 0, y, c->out_n);
        if (st) break;
        float *t = c->recon ? NULL : c->targets + (size_t)i * c->out_n;
        if (store && t) memcpy(t, y, c->out_n * sizeof *y);
        if (!t) t = (float *)x; /* only read */
        double se = 0.0;
        for (size_t k = 0; k < c->out_n; k++) se += ((double)y[k] - t[k]) * ((double)y[k] - t[k]);
        sum += se / (double)c->out_n;
    }
    nne_free(y);
    nne_session_free(s);
    *loss = sum / c->o->n_samples;
    return st;
}

static nne_status sensitivity(nne_graph *g, nne_prune_plan *p, const nne_prune_opts *o) {
    calib c = {.o = o};
    const nne_shape *is = &g->tensors[g->inputs[0]].shape, *os = &g->tensors[g->outputs[0]].shape;
    c.in_n = (size_t)nne_shape_numel(is);
    c.out_n = (size_t)nne_shape_numel(os);
    c.recon = nne_shape_equal(is, os);
    size_t bytes;
    nne_status st = NNE_OK;
    if (!nne_size_mul(c.in_n, (size_t)o->n_samples * sizeof(float), &bytes) ||
        !(c.inputs = nne_malloc(bytes)))
        return nne_error(NNE_ERR_NOMEM, "prune: no memory for %d calibration samples",
                         (int)o->n_samples);
    if (!c.recon && (!nne_size_mul(c.out_n, (size_t)o->n_samples * sizeof(float), &bytes) ||
                     !(c.targets = nne_malloc(bytes))))
        st = nne_error(NNE_ERR_NOMEM, "prune: no memory for %d calibration outputs",
                       (int)o->n_samples);
    for (int32_t i = 0; i < o->n_samples && !st; i++)
        st = o->sample(o->ctx, i, c.inputs + (size_t)i * c.in_n);
    if (!st) st = calib_loss(g, &c, true, &p->base_loss);
    int32_t total = 0, done = 0;
    for (int32_t gi = 0; gi < p->n_groups; gi++)
        total += p->groups[gi].prunable ? NNE_PRUNE_GRID - 1 : 0;
    /* Each group alone at each grid ratio; the others keep everything. */
    for (int32_t gi = 0; gi < p->n_groups && !st; gi++) {
        nne_prune_group *gr = &p->groups[gi];
        if (!gr->prunable) continue;
        uint8_t *saved = gr->keep;
        uint8_t *trial = nne_malloc((size_t)gr->channels);
        if (!trial) {
            st = NNE_ERR_NOMEM;
            break;
        }
        gr->keep = trial;
        gr->dloss[0] = 0.0;
        for (int32_t k = 1; k < NNE_PRUNE_GRID && !st; k++) {
            keep_top(gr, n_remove(gr->channels, (double)k / NNE_PRUNE_GRID), trial);
            nne_graph *pg = NULL;
            double loss = 0.0;
            st = nne_prune_plan_apply(g, p, &pg);
            if (!st) st = calib_loss(pg, &c, false, &loss);
            nne_graph_free(pg);
            gr->dloss[k] = loss - p->base_loss;
            if (o->progress) o->progress(o->ctx, "sensitivity", ++done, total);
        }
        gr->keep = saved;
        nne_free(trial);
    }
    nne_free(c.inputs);
    nne_free(c.targets);
    return st;
}

/* Grid ratio index of group gr under loss threshold t: the largest k with dloss[k] <= t. */
static int32_t grid_at(const nne_prune_group *gr, double t) {
    int32_t best = 0;
    for (int32_t k = 1; k < NNE_PRUNE_GRID; k++)
        if (gr->dloss[k] <= t) best = k;
    return best;
}

static int64_t removed_at(const nne_prune_plan *p, double t) {
    int64_t n = 0;
    for (int32_t i = 0; i < p->n_groups; i++)
        if (p->groups[i].prunable)
            n +=
                n_remove(p->groups[i].channels, (double)grid_at(&p->groups[i], t) / NNE_PRUNE_GRID);
    return n;
}

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The smallest threshold among the measured losses removing >= ratio of the channels. */
static nne_status allocate(nne_prune_plan *p, double ratio) {
    int64_t channels = 0;
    int32_t n = 0;
    for (int32_t i = 0; i < p->n_groups; i++)
        if (p->groups[i].prunable) {
            channels += p->groups[i].channels;
            n += NNE_PRUNE_GRID - 1;
        }
    double *cand = nne_malloc(((size_t)n + 1) * sizeof *cand);
    if (!cand) return NNE_ERR_NOMEM;
    n = 0;
    cand[n++] = -INFINITY;
    for (int32_t i = 0; i < p->n_groups; i++)
        for (int32_t k = 1; p->groups[i].prunable && k < NNE_PRUNE_GRID; k++)
            cand[n++] = p->groups[i].dloss[k];
    qsort(cand, (size_t)n, sizeof *cand, cmp_double);
    const int64_t want = (int64_t)floor(ratio * (double)channels + 0.5);
    double t = cand[n - 1];
    for (int32_t i = 0; i < n; i++)
        if (removed_at(p, cand[i]) >= want) {
            t = cand[i];
            break;
        }
    nne_free(cand);
    for (int32_t i = 0; i < p->n_groups; i++) {
        nne_prune_group *gr = &p->groups[i];
        if (!gr->prunable) continue;
        keep_top(gr, n_remove(gr->channels, (double)grid_at(gr, t) / NNE_PRUNE_GRID), gr->keep);
        set_kept(gr);
    }
    return NNE_OK;
}

nne_status nne_prune_plan_create(nne_graph *g, const nne_prune_opts *o, nne_prune_plan **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "prune: NULL output");
    *out = NULL;
    if (!g || !o) return nne_error(NNE_ERR_INVALID_ARG, "prune: NULL graph or options");
    if (!(o->ratio >= 0.0 && o->ratio < 1.0))
        return nne_error(NNE_ERR_INVALID_ARG, "prune: ratio %g is not in [0, 1)", o->ratio);
    if (o->n_samples < 0 || (o->n_samples > 0 && !o->sample))
        return nne_error(NNE_ERR_INVALID_ARG, "prune: calibration needs a sample function");
    if (o->n_samples > 0 && o->ratio > (double)(NNE_PRUNE_GRID - 1) / NNE_PRUNE_GRID)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "prune: with calibration the ratio is at most %d/%d (got %g)",
                         NNE_PRUNE_GRID - 1, NNE_PRUNE_GRID, o->ratio);
    nne_status st = nne_graph_infer(g);
    if (st) return st;
    for (int32_t t = 0; t < g->n_tensors; t++)
        if (g->tensors[t].dtype != NNE_F32)
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "prune: tensor '%s' is %s; channel pruning works on f32 models "
                             "(prune before quantizing)",
                             g->tensors[t].name, nne_dtype_name(g->tensors[t].dtype));
    if (o->n_samples > 0 && (g->n_inputs != 1 || g->n_outputs < 1))
        return nne_error(NNE_ERR_UNSUPPORTED, "prune: calibration needs one graph input");
    nne_prune_plan *p = nne_calloc(1, sizeof *p);
    if (!p) return NNE_ERR_NOMEM;
    p->base_loss = NAN;
    analysis *a = NULL;
    if ((st = analyse(g, o->keep, &a))) {
        nne_free(p);
        return st;
    }
    p->priv = a;
    if ((st = make_groups(g, a, p))) goto fail;
    if (o->n_samples > 0) {
        if ((st = sensitivity(g, p, o)) || (st = allocate(p, o->ratio))) goto fail;
    } else {
        for (int32_t i = 0; i < p->n_groups; i++) {
            nne_prune_group *gr = &p->groups[i];
            if (!gr->prunable) continue;
            keep_top(gr, n_remove(gr->channels, o->ratio), gr->keep);
            set_kept(gr);
        }
    }
    *out = p;
    return NNE_OK;
fail:
    nne_prune_plan_free(p);
    return st == NNE_ERR_NOMEM && !*nne_last_error()
               ? nne_error(NNE_ERR_NOMEM, "prune: out of memory")
               : st;
}

/* ---- Apply ----------------------------------------------------------------------------------- */

/* keep mask of tensor t's channels under the plan (1 for channels of groups outside it). */
static void tensor_keep(const nne_prune_plan *p, int32_t t, uint8_t *keep) {
    const analysis *a = p->priv;
    for (int32_t k = 0; k < a->nch[t]; k++) {
        const int32_t gi = a->org[t] ? a->to_plan[a->org[t][2 * k]] : -1;
        keep[k] = gi < 0 ? 1 : p->groups[gi].keep[a->org[t][2 * k + 1]];
    }
}

static int32_t count_kept(const uint8_t *keep, int32_t n) {
    int32_t c = 0;
    for (int32_t i = 0; i < n; i++) c += keep[i];
    return c;
}

/* Copy the kept entries of a [rows][mid][cols] f32 array. rk / ck: row and column masks
 * (NULL = keep all). */
static float *slice3(const float *src, int64_t rows, int64_t mid, int64_t cols, const uint8_t *rk,
                     const uint8_t *ck, int64_t nr, int64_t nc) {
    float *dst = nne_aligned_alloc((size_t)(nr * mid * nc) * sizeof *dst + 1);
    if (!dst) return NULL;
    size_t o = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (rk && !rk[r]) continue;
        for (int64_t m = 0; m < mid; m++) {
            const float *row = src + (r * mid + m) * cols;
            for (int64_t c = 0; c < cols; c++)
                if (!ck || ck[c]) dst[o++] = row[c];
        }
    }
    return dst;
}

nne_status nne_prune_plan_apply(const nne_graph *g, const nne_prune_plan *p, nne_graph **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "prune: NULL output");
    *out = NULL;
    if (!g || !p || !p->priv || ((const analysis *)p->priv)->n_tensors != g->n_tensors)
        return nne_error(NNE_ERR_INVALID_ARG, "prune: the plan was not made for this graph");
    for (int32_t i = 0; i < p->n_groups; i++) {
        const nne_prune_group *gr = &p->groups[i];
        const int32_t kept = count_kept(gr->keep, gr->channels);
        if (kept < 1 || (!gr->prunable && kept != gr->channels))
            return nne_error(NNE_ERR_INVALID_ARG, "prune: group '%s' keeps %d of %d channels%s",
                             gr->name, (int)kept, (int)gr->channels,
                             gr->prunable ? "" : " but is not prunable");
    }
    const analysis *a = p->priv;
    int32_t max_c = 1;
    for (int32_t t = 0; t < g->n_tensors; t++)
        if (a->nch[t] > max_c) max_c = a->nch[t];
    nne_tplan *plan = nne_calloc((size_t)g->n_tensors + 1, sizeof *plan);
    nne_shape *shapes = nne_calloc((size_t)g->n_tensors + 1, sizeof *shapes);
    float **owned = nne_calloc((size_t)g->n_tensors + 1, sizeof *owned);
    uint8_t *kin = nne_malloc((size_t)max_c), *kout = nne_malloc((size_t)max_c);
    nne_status st = NNE_OK;
    if (!plan || !shapes || !owned || !kin || !kout) {
        st = nne_error(NNE_ERR_NOMEM, "prune: out of memory");
        goto done;
    }
    for (int32_t t = 0; t < g->n_tensors; t++) {
        plan[t].dtype = g->tensors[t].dtype;
        plan[t].data = g->tensors[t].data;
    }
    for (int32_t i = 0; i < g->n_nodes && !st; i++) {
        const nne_node *n = &g->nodes[i];
        const bool conv = n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D;
        if (!conv && n->op != NNE_OP_PRELU && n->op != NNE_OP_GDN && n->op != NNE_OP_IGDN) continue;
        const int32_t x = n->inputs[0];
        tensor_keep(p, x, kin);
        tensor_keep(p, n->output, kout);
        const int32_t cin = a->nch[x], cout = a->nch[n->output];
        const int32_t nin = count_kept(kin, cin), nout = count_kept(kout, cout);
        if (nin == cin && nout == cout) continue;
        for (int32_t k = 1; k < n->n_inputs; k++) {
            const int32_t t = n->inputs[k];
            if (t < 0 || !sliced_input(n, k) || owned[t]) continue;
            const nne_tensor *c = &g->tensors[t];
            const nne_shape *s = &c->shape;
            nne_shape ns = *s;
            float *d = NULL;
            if (conv && k == 1) { /* [OC][KH][KW][IC/g]: groups = 1 here (else locked) */
                d = slice3(c->data, s->dim[0], s->dim[1] * s->dim[2], s->dim[3], kout, kin, nout,
                           nin);
                ns.dim[0] = nout;
                ns.dim[3] = nin;
            } else if (conv) { /* bias [OC] */
                d = slice3(c->data, 1, 1, s->dim[0], NULL, kout, 1, nout);
                ns.dim[0] = nout;
            } else if (n->op == NNE_OP_PRELU) {
                if (nne_shape_numel(s) == 1) continue; /* one shared slope */
                d = slice3(c->data, 1, 1, s->dim[0], NULL, kin, 1, nin);
                ns.dim[0] = nin;
            } else if (k == 1) { /* GDN beta [C] */
                d = slice3(c->data, 1, 1, s->dim[0], NULL, kin, 1, nin);
                ns.dim[0] = nin;
            } else { /* GDN gamma [C][C]: rows (outputs) and columns (inputs) */
                d = slice3(c->data, s->dim[0], 1, s->dim[1], kin, kin, nin, nin);
                ns.dim[0] = ns.dim[1] = nin;
            }
            if (!d) {
                st = nne_error(NNE_ERR_NOMEM, "prune: out of memory");
                break;
            }
            owned[t] = d;
            shapes[t] = ns;
            plan[t].data = d;
            plan[t].shape = &shapes[t];
        }
    }
    if (!st) st = nne_pass_rebuild(g, plan, false, out);
done:
    if (owned)
        for (int32_t t = 0; t < g->n_tensors; t++) nne_aligned_free(owned[t]);
    nne_free(owned);
    nne_free(shapes);
    nne_free(plan);
    nne_free(kin);
    nne_free(kout);
    return st;
}
