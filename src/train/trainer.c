/* The graph-level trainer: forward through the graph's nodes keeping every activation,
 * the loss, backward through the nodes in reverse order, clipping, an optimizer update.
 *
 * Memory (allocated once in nne_trainer_create, nothing during a step):
 *   act[t]   every input/activation tensor t, its own buffer (no arena reuse: the backward
 *            pass reads the forward's inputs and outputs of every node)
 *   grad[t]  dL/d(tensor t) for every activation (the graph input gets none)
 *   tmp      [largest activation] for tensors read by several nodes: each consumer's
 *            backward writes its contribution here and it is added to grad[t]
 *   scratch  [largest kernel scratch] floats; loss_scratch for MS-SSIM
 * A tensor with one consumer (the common case) gets its gradient written in place by that
 * consumer's backward (dx is overwritten); only shared tensors pay for the extra add. */
#include <math.h>
#include <string.h>

#include "nnedge/train.h"

struct nne_trainer {
    nne_graph *g;
    nne_trainer_config cfg;
    nne_params *params;
    nne_optim *optim;
    float **act;           /* [n_tensors] storage of inputs/activations, NULL for constants */
    float **grad;          /* [n_tensors] activation gradients, NULL where none is needed */
    int32_t *param_of;     /* [n_tensors] index into params->items, -1 if not a parameter */
    int32_t *consumers;    /* [n_tensors] readers (nodes' inputs; +1 for the graph output) */
    float *tmp;            /* [max_numel] */
    float *scratch;        /* [max_scratch] */
    void *loss_scratch;    /* MS-SSIM */
    int32_t input, output; /* tensor indices */
    int32_t ms_ssim_scales;
    int64_t step;
};

static bool trainable_op(nne_op_type op) {
    switch (op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
    case NNE_OP_PRELU:
    case NNE_OP_RELU:
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
    case NNE_OP_ADD:
        return true;
    default:
        return false;
    }
}

static size_t tnumel(const nne_graph *g, int32_t t) {
    return (size_t)nne_shape_numel(&g->tensors[t].shape);
}

static int32_t tchannels(const nne_graph *g, int32_t t) {
    const nne_shape *s = &g->tensors[t].shape;
    return s->ndim > 0 ? (int32_t)s->dim[s->ndim - 1] : 1;
}

/* Data of any tensor: parameters from the arena, other constants from the graph. */
static float *tdata(const nne_trainer *tr, int32_t t) {
    if (t < 0) return NULL;
    if (tr->param_of[t] >= 0) return tr->params->data + tr->params->items[tr->param_of[t]].offset;
    const nne_tensor *x = &tr->g->tensors[t];
    return x->kind == NNE_TENSOR_CONSTANT ? x->data : tr->act[t];
}

/* Gradient buffer of a parameter (NULL for an absent optional input). */
static float *pgrad(const nne_trainer *tr, int32_t t) {
    if (t < 0 || tr->param_of[t] < 0) return NULL;
    return tr->params->grad + tr->params->items[tr->param_of[t]].offset;
}

void nne_trainer_free(nne_trainer *t) {
    if (!t) return;
    if (t->act)
        for (int32_t i = 0; i < t->g->n_tensors; i++) nne_aligned_free(t->act[i]);
    if (t->grad)
        for (int32_t i = 0; i < t->g->n_tensors; i++) nne_aligned_free(t->grad[i]);
    nne_free(t->act);
    nne_free(t->grad);
    nne_free(t->param_of);
    nne_free(t->consumers);
    nne_aligned_free(t->tmp);
    nne_aligned_free(t->scratch);
    nne_aligned_free(t->loss_scratch);
    nne_params_free(t->params);
    nne_optim_free(t->optim);
    nne_free(t);
}

static float *alloc_floats(size_t n) {
    size_t bytes;
    if (!nne_size_mul(n ? n : 1, sizeof(float), &bytes)) return NULL;
    return nne_aligned_alloc(bytes);
}

static nne_status check_graph(const nne_graph *g) {
    if (!g->inferred) return nne_error(NNE_ERR_INVALID_ARG, "trainer: graph is not inferred");
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "trainer: graph '%s' has %d inputs and %d outputs "
                         "(want 1 and 1)",
                         g->name ? g->name : "", (int)g->n_inputs, (int)g->n_outputs);
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].dtype != NNE_F32)
            return nne_error(NNE_ERR_UNSUPPORTED, "trainer: tensor '%s' is %s (only f32 trains)",
                             g->tensors[i].name, nne_dtype_name(g->tensors[i].dtype));
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (!trainable_op(n->op))
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "trainer: node '%s': op %s has no backward pass (supported: "
                             "conv2d, conv_transpose2d, prelu, relu, gdn, igdn, add)",
                             n->name, nne_op_name(n->op));
        if (n->op == NNE_OP_ADD)
            for (int32_t k = 0; k < 2; k++)
                if (g->tensors[n->inputs[k]].kind == NNE_TENSOR_CONSTANT)
                    return nne_error(NNE_ERR_UNSUPPORTED,
                                     "trainer: node '%s': add of a constant is not trainable",
                                     n->name);
    }
    return NNE_OK;
}

nne_status nne_trainer_create(nne_graph *g, const nne_trainer_config *cfg, nne_trainer **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL output");
    *out = NULL;
    if (!g || !cfg) return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL graph or config");
    nne_status st = check_graph(g);
    if (st != NNE_OK) return st;
    if (cfg->loss != NNE_LOSS_MSE && cfg->loss != NNE_LOSS_MS_SSIM)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: unknown loss %d", (int)cfg->loss);

    nne_trainer *t = nne_calloc(1, sizeof *t);
    if (!t) return NNE_ERR_NOMEM;
    t->g = g;
    t->cfg = *cfg;
    t->input = g->inputs[0];
    t->output = g->outputs[0];
    const size_t nt = (size_t)g->n_tensors;
    t->act = nne_calloc(nt, sizeof *t->act);
    t->grad = nne_calloc(nt, sizeof *t->grad);
    t->param_of = nne_calloc(nt, sizeof *t->param_of);
    t->consumers = nne_calloc(nt, sizeof *t->consumers);
    if (!t->act || !t->grad || !t->param_of || !t->consumers) goto nomem;

    if ((st = nne_params_create(g, &t->params)) != NNE_OK) goto fail;
    if ((st = nne_optim_create(&cfg->optim, t->params->total, &t->optim)) != NNE_OK) goto fail;
    for (size_t i = 0; i < nt; i++) t->param_of[i] = -1;
    for (int32_t i = 0; i < t->params->n; i++) t->param_of[t->params->items[i].tensor] = i;

    /* Consumers, activation and gradient buffers, scratch sizes. */
    size_t max_numel = 1, max_scratch = 1;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        for (int32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && g->tensors[n->inputs[k]].kind != NNE_TENSOR_CONSTANT)
                t->consumers[n->inputs[k]]++;
        size_t s = 0;
        if (n->op == NNE_OP_CONV2D) s = nne_conv2d_backward_scratch_size(&n->conv_geom);
        if (n->op == NNE_OP_CONV_TRANSPOSE2D)
            s = nne_conv_transpose2d_backward_scratch_size(&n->conv_geom);
        if (n->op == NNE_OP_GDN || n->op == NNE_OP_IGDN)
            s = nne_gdn_backward_scratch_size(tchannels(g, n->inputs[0]));
        if (s > max_scratch) max_scratch = s;
    }
    t->consumers[t->output]++; /* the loss reads the output */
    for (int32_t i = 0; i < g->n_tensors; i++) {
        if (g->tensors[i].kind == NNE_TENSOR_CONSTANT) continue;
        const size_t n = tnumel(g, i);
        if (n > max_numel) max_numel = n;
        if (!(t->act[i] = alloc_floats(n))) goto nomem;
        /* The graph input needs no gradient; every activation does. */
        if (g->tensors[i].kind == NNE_TENSOR_ACTIVATION && !(t->grad[i] = alloc_floats(n)))
            goto nomem;
    }
    if (!(t->tmp = alloc_floats(max_numel)) || !(t->scratch = alloc_floats(max_scratch)))
        goto nomem;

    if (cfg->loss == NNE_LOSS_MS_SSIM) {
        const nne_shape *os = &g->tensors[t->output].shape;
        if (os->ndim != 4) {
            st = nne_error(NNE_ERR_SHAPE, "trainer: MS-SSIM loss needs an NHWC output");
            goto fail;
        }
        int32_t scales = cfg->ms_ssim_scales;
        const int32_t oh = (int32_t)os->dim[1], ow = (int32_t)os->dim[2];
        if (scales == 0) scales = nne_ms_ssim_auto_scales(oh, ow);
        const size_t bytes = nne_ms_ssim_loss_scratch_size(oh, ow, scales);
        if (bytes == 0) {
            st = nne_error(NNE_ERR_LIMIT,
                           "trainer: output %dx%d too small for MS-SSIM with %d "
                           "scales",
                           (int)oh, (int)ow, (int)scales);
            goto fail;
        }
        t->ms_ssim_scales = scales;
        if (!(t->loss_scratch = nne_aligned_alloc(bytes))) goto nomem;
    }
    *out = t;
    return NNE_OK;
nomem:
    st = nne_error(NNE_ERR_NOMEM, "trainer: out of memory for graph '%s'", g->name ? g->name : "");
fail:
    nne_trainer_free(t);
    return st;
}

/* ---- forward ---------------------------------------------------------------------------- */

static void forward_node(nne_trainer *tr, const nne_node *n) {
    const nne_graph *g = tr->g;
    const int32_t *in = n->inputs;
    const float *x = tdata(tr, in[0]);
    float *y = tr->act[n->output];
    const size_t cnt = tnumel(g, n->output);
    switch (n->op) {
    case NNE_OP_CONV2D:
        nne_conv2d_forward(&n->conv_geom, x, tdata(tr, in[1]), tdata(tr, in[2]), y);
        break;
    case NNE_OP_CONV_TRANSPOSE2D:
        nne_conv_transpose2d_forward(&n->conv_geom, x, tdata(tr, in[1]), tdata(tr, in[2]), y);
        break;
    case NNE_OP_PRELU: {
        const int32_t c = tchannels(g, in[0]);
        nne_prelu_forward(cnt / (size_t)c, c, x, tdata(tr, in[1]),
                          (int32_t)g->tensors[in[1]].shape.dim[0], y);
        break;
    }
    case NNE_OP_RELU:
        nne_relu_forward(cnt, x, y);
        break;
    case NNE_OP_GDN:
    case NNE_OP_IGDN: {
        const int32_t c = tchannels(g, in[0]);
        nne_gdn_forward(cnt / (size_t)c, c, x, tdata(tr, in[1]), tdata(tr, in[2]),
                        n->op == NNE_OP_IGDN, y);
        break;
    }
    case NNE_OP_ADD:
        nne_add_forward(cnt, x, tdata(tr, in[1]), y);
        break;
    default: /* rejected by check_graph */
        break;
    }
}

static void forward(nne_trainer *tr, const float *input) {
    memcpy(tr->act[tr->input], input, tnumel(tr->g, tr->input) * sizeof(float));
    for (int32_t i = 0; i < tr->g->n_nodes; i++) forward_node(tr, &tr->g->nodes[i]);
}

static nne_status compute_loss(nne_trainer *tr, const float *target, double *loss, float *dy) {
    const nne_shape *os = &tr->g->tensors[tr->output].shape;
    const float *y = tr->act[tr->output];
    if (tr->cfg.loss == NNE_LOSS_MSE) {
        *loss = nne_mse_loss(tnumel(tr->g, tr->output), y, target, dy);
        return NNE_OK;
    }
    return nne_ms_ssim_loss((int32_t)os->dim[0], (int32_t)os->dim[1], (int32_t)os->dim[2],
                            (int32_t)os->dim[3], y, target, tr->ms_ssim_scales, tr->loss_scratch,
                            loss, dy);
}

/* ---- backward --------------------------------------------------------------------------- */

/* Where a consumer writes its contribution to dL/d(tensor t): grad[t] itself when it is
 * the only reader (kernels overwrite dx), else tmp (added by grad_commit). NULL when t
 * needs no gradient (graph input, constants). */
static float *grad_target(nne_trainer *tr, int32_t t) {
    if (t < 0 || !tr->grad[t]) return NULL;
    return tr->consumers[t] == 1 ? tr->grad[t] : tr->tmp;
}

static void grad_commit(nne_trainer *tr, int32_t t) {
    if (t < 0 || !tr->grad[t] || tr->consumers[t] == 1) return;
    const size_t n = tnumel(tr->g, t);
    float *gd = tr->grad[t];
    for (size_t i = 0; i < n; i++) gd[i] += tr->tmp[i];
}

static void backward_node(nne_trainer *tr, const nne_node *n) {
    const nne_graph *g = tr->g;
    const int32_t *in = n->inputs;
    const float *x = tdata(tr, in[0]);
    const float *dy = tr->grad[n->output];
    const size_t cnt = tnumel(g, n->output);
    float *dx = grad_target(tr, in[0]);
    switch (n->op) {
    case NNE_OP_CONV2D:
        nne_conv2d_backward(&n->conv_geom, x, tdata(tr, in[1]), dy, dx, pgrad(tr, in[1]),
                            pgrad(tr, in[2]), tr->scratch);
        break;
    case NNE_OP_CONV_TRANSPOSE2D:
        nne_conv_transpose2d_backward(&n->conv_geom, x, tdata(tr, in[1]), dy, dx, pgrad(tr, in[1]),
                                      pgrad(tr, in[2]), tr->scratch);
        break;
    case NNE_OP_PRELU: {
        const int32_t c = tchannels(g, in[0]);
        nne_prelu_backward(cnt / (size_t)c, c, x, tdata(tr, in[1]),
                           (int32_t)g->tensors[in[1]].shape.dim[0], dy, dx, pgrad(tr, in[1]));
        break;
    }
    case NNE_OP_RELU:
        if (dx) nne_relu_backward(cnt, x, dy, dx);
        break;
    case NNE_OP_GDN:
    case NNE_OP_IGDN: {
        const int32_t c = tchannels(g, in[0]);
        nne_gdn_backward(cnt / (size_t)c, c, x, tdata(tr, in[1]), tdata(tr, in[2]),
                         n->op == NNE_OP_IGDN, dy, dx, pgrad(tr, in[1]), pgrad(tr, in[2]),
                         tr->scratch);
        break;
    }
    case NNE_OP_ADD:
        /* One input at a time, so that add(a, a) accumulates twice. */
        if (dx) nne_add_backward(cnt, dy, dx, NULL);
        grad_commit(tr, in[0]);
        dx = grad_target(tr, in[1]);
        if (dx) nne_add_backward(cnt, dy, dx, NULL);
        grad_commit(tr, in[1]);
        return;
    default:
        return;
    }
    grad_commit(tr, in[0]);
}

/* Forward, loss and backward: fills params->grad. */
static nne_status forward_backward(nne_trainer *tr, const float *input, const float *target,
                                   double *loss) {
    nne_graph *g = tr->g;
    forward(tr, input);
    nne_params_zero_grad(tr->params);
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (tr->grad[i] && tr->consumers[i] != 1) /* shared, or read by nobody */
            memset(tr->grad[i], 0, tnumel(g, i) * sizeof(float));
    nne_status st = compute_loss(tr, target, loss, grad_target(tr, tr->output));
    if (st != NNE_OK) return st;
    grad_commit(tr, tr->output);
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) backward_node(tr, &g->nodes[i]);
    return NNE_OK;
}

nne_status nne_trainer_step(nne_trainer *t, const float *input, const float *target,
                            nne_train_stats *stats) {
    if (!t || !input || !target) return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    double loss = 0.0;
    nne_status st = forward_backward(t, input, target, &loss);
    if (st != NNE_OK) return st;
    if (!isfinite(loss))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "trainer: loss is %g at step %lld (non-finite data or divergence); "
                         "parameters not updated",
                         loss, (long long)t->step);
    const double norm =
        nne_clip_grad_norm(t->params->grad, t->params->total, (double)t->cfg.optim.clip_norm);
    const float lr = nne_lr_at(&t->cfg.lr, t->step);
    nne_optim_step(t->optim, t->params->data, t->params->grad, t->params->n_decay, lr);
    t->step++;
    if (stats) {
        stats->loss = loss;
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->step = t->step;
    }
    return NNE_OK;
}

nne_status nne_trainer_grad(nne_trainer *t, const float *input, const float *target, double *loss) {
    if (!t || !input || !target || !loss)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    return forward_backward(t, input, target, loss);
}

nne_status nne_trainer_eval(nne_trainer *t, const float *input, const float *target, double *loss) {
    if (!t || !input || !target || !loss)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    forward(t, input);
    return compute_loss(t, target, loss, NULL);
}

const float *nne_trainer_output(const nne_trainer *t) { return t->act[t->output]; }
nne_params *nne_trainer_params(nne_trainer *t) { return t->params; }
int64_t nne_trainer_steps(const nne_trainer *t) { return t->step; }
void nne_trainer_store(const nne_trainer *t) { nne_params_store(t->params, t->g); }
