/* The graph-level trainer: forward through the graph's nodes keeping every activation,
 * the loss, backward through the nodes in reverse order, clipping, an optimizer update.
 *
 * Memory (allocated once in nne_trainer_create, nothing during a step):
 *   act[t]   every input/activation tensor t, its own buffer (no arena reuse: the backward
 *            pass reads the forward's inputs and outputs of every node)
 *   grad[t]  dL/d(tensor t) for every activation (the graph input only with cfg.input_grad)
 *   tmp      [largest activation] for tensors read by several nodes: each consumer's
 *            backward writes its contribution here and it is added to grad[t]
 *   scratch  [largest kernel scratch] bytes (nne_conv*_gemm_scratch_size and
 *            nne_gdn_gemm_scratch_size for the pool's thread count); loss_scratch for MS-SSIM
 *   ew_part  [EW_CHUNKS][largest per-chunk parameter gradient] partial sums of the
 *            element-wise layers (prelu slopes, factorized-density parameters)
 * A tensor with one consumer (the common case) gets its gradient written in place by that
 * consumer's backward (dx is overwritten); only shared tensors pay for the extra add.
 *
 * Threads. Convolutions and GDN/IGDN run the GEMM kernels of conv_gemm.c and gdn_gemm.c on
 * the trainer's pool. The element-wise layers are split into at most EW_CHUNKS pixel ranges
 * that depend on the tensor size only; parameter gradients get one partial per range,
 * summed in range order.
 * So a step is bitwise identical for every thread count (tests/train/test_conv_gemm.c). */
#include <math.h>
#include <string.h>

#include "nnedge/gemm.h"
#include "nnedge/train.h"
#include "qat_internal.h"
#include "train/train_internal.h"

/* Element-wise layers: at most EW_CHUNKS ranges of at least EW_MIN_PIXELS pixels. */
enum { EW_CHUNKS = 16, EW_MIN_PIXELS = 2048, EW_MIN_FACT = 256 };

struct nne_trainer {
    nne_graph *g;
    nne_trainer_config cfg;
    nne_params *params;
    nne_optim *optim;
    uint32_t gemm_flags; /* NNE_GEMM_BF16 with cfg.bf16_matmul, else 0 */
    float *lr_scale;    /* [params->total] per-element learning-rate factor (entropy_lr_mult);
                           NULL: all 1 */
    float **act;        /* [n_tensors] storage of inputs/activations, NULL for constants */
    float **grad;       /* [n_tensors] activation gradients, NULL where none is needed */
    int32_t *param_of;  /* [n_tensors] index into params->items, -1 if not a parameter */
    int32_t *consumers; /* [n_tensors] readers (nodes' inputs; +1 for the graph output) */
    float *tmp;         /* [max_numel] */
    float *tmp2;        /* [2][max Gaussian-likelihood numel]: its other shared inputs */
    size_t tmp2_floats; /* one slice of tmp2 */
    void *scratch;      /* [scratch_bytes] conv and GDN kernels */
    float *ew_part;     /* [EW_CHUNKS][ew_part_floats] */
    size_t ew_part_floats;
    void *loss_scratch;   /* MS-SSIM */
    /* cfg.loss_border_*: the output and target cropped, and the crop's gradient
     * [n][H - bottom][W - right][C]; NULL without a border */
    float *crop_y, *crop_t, *crop_dy;
    nne_threadpool *pool; /* NULL: serial */
    bool own_pool;
    int32_t input, output; /* tensor indices; output = outputs[0] */
    int32_t ms_ssim_scales;
    int64_t step;
    double last_mse, last_bpp; /* NNE_LOSS_RD terms of the last loss */
    /* Quantization-aware training and distillation (qat.h, hooks in qat_internal.h). */
    nne_qat *qat;               /* NULL: plain f32 training */
    nne_status qat_status;      /* first QAT error of the current forward pass */
    bool distill;               /* distillation on */
    nne_distill_config dcfg;    /* its configuration */
    const float *teacher;       /* [output numel] soft targets of the current batch */
    float *dgrad;               /* [output numel] gradient of the distillation term */
    double last_task, last_distill;
    nne_train_profile *prof; /* NULL: no time accounting */
    float sga_tau;           /* > 0: quantize nodes are SGA soft roundings (set_sga) */
};

/* What quantize nodes do in a forward pass. */
typedef enum fwd_mode { FWD_TRAIN, FWD_EVAL } fwd_mode;

static bool trainable_op(nne_op_type op) {
    switch (op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
    case NNE_OP_PRELU:
    case NNE_OP_RELU:
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
    case NNE_OP_ADD:
    case NNE_OP_ABS:
    case NNE_OP_QUANTIZE:
    case NNE_OP_FACTORIZED_LIKELIHOOD:
    case NNE_OP_GAUSSIAN_LIKELIHOOD:
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

/* A convolution's weight or bias gradient: none for a frozen trainer (cfg.frozen). */
static float *conv_pgrad(const nne_trainer *tr, int32_t t) {
    return tr->cfg.frozen ? NULL : pgrad(tr, t);
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
    nne_aligned_free(t->tmp2);
    nne_aligned_free(t->scratch);
    nne_aligned_free(t->ew_part);
    if (t->own_pool) nne_threadpool_free(t->pool);
    nne_aligned_free(t->loss_scratch);
    nne_aligned_free(t->crop_y);
    nne_aligned_free(t->crop_t);
    nne_aligned_free(t->crop_dy);
    nne_params_free(t->params);
    nne_optim_free(t->optim);
    nne_free(t->lr_scale);
    nne_aligned_free(t->dgrad);
    nne_free(t);
}

static float *alloc_floats(size_t n) {
    size_t bytes;
    if (!nne_size_mul(n ? n : 1, sizeof(float), &bytes)) return NULL;
    return nne_aligned_alloc(bytes);
}

static nne_status check_graph(const nne_graph *g, nne_loss_kind loss) {
    if (!g->inferred) return nne_error(NNE_ERR_INVALID_ARG, "trainer: graph is not inferred");
    const bool rd = loss == NNE_LOSS_RD;
    if (g->n_inputs != 1 || (rd ? g->n_outputs < 2 : g->n_outputs != 1))
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "trainer: graph '%s' has %d inputs and %d outputs "
                         "(want 1 and %s)",
                         g->name ? g->name : "", (int)g->n_inputs, (int)g->n_outputs,
                         rd ? "the reconstruction plus at least one likelihood" : "1");
    for (int32_t k = 1; rd && k < g->n_outputs; k++) {
        const int32_t prod = nne_graph_producer(g, g->outputs[k]);
        const nne_op_type op = prod >= 0 ? g->nodes[prod].op : NNE_OP_INVALID;
        if (op != NNE_OP_FACTORIZED_LIKELIHOOD && op != NNE_OP_GAUSSIAN_LIKELIHOOD)
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "trainer: rate-distortion output %d '%s' is not a likelihood", (int)k,
                             g->tensors[g->outputs[k]].name);
    }
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].dtype != NNE_F32)
            return nne_error(NNE_ERR_UNSUPPORTED, "trainer: tensor '%s' is %s (only f32 trains)",
                             g->tensors[i].name, nne_dtype_name(g->tensors[i].dtype));
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (!trainable_op(n->op))
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "trainer: node '%s': op %s has no backward pass (supported: "
                             "conv2d, conv_transpose2d, prelu, relu, gdn, igdn, add, abs, "
                             "quantize, factorized_likelihood, gaussian_likelihood)",
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
    if (cfg->loss != NNE_LOSS_MSE && cfg->loss != NNE_LOSS_MS_SSIM && cfg->loss != NNE_LOSS_RD)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: unknown loss %d", (int)cfg->loss);
    if (cfg->loss == NNE_LOSS_RD && !(cfg->rd_lambda > 0.0f && isfinite(cfg->rd_lambda)))
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: rate-distortion lambda must be > 0");
    if (!(cfg->entropy_lr_mult >= 0.0f && cfg->entropy_lr_mult <= 1e4f))
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: entropy learning-rate factor %g not in [0, 1e4]",
                         (double)cfg->entropy_lr_mult);
    nne_status st = check_graph(g, cfg->loss);
    if (st != NNE_OK) return st;
    const bool border = cfg->loss_border_bottom != 0 || cfg->loss_border_right != 0;
    if (border) {
        const nne_shape *os = &g->tensors[g->outputs[0]].shape;
        if (cfg->loss == NNE_LOSS_RD || os->ndim != 4 || cfg->loss_border_bottom < 0 ||
            cfg->loss_border_right < 0 || cfg->loss_border_bottom >= os->dim[1] ||
            cfg->loss_border_right >= os->dim[2])
            return nne_error(NNE_ERR_INVALID_ARG,
                             "trainer: loss border %d x %d does not fit the output (or the "
                             "loss is rate-distortion)",
                             (int)cfg->loss_border_bottom, (int)cfg->loss_border_right);
    }

    nne_trainer *t = nne_calloc(1, sizeof *t);
    if (!t) return NNE_ERR_NOMEM;
    t->g = g;
    t->cfg = *cfg;
    t->gemm_flags = cfg->bf16_matmul ? NNE_GEMM_BF16 : 0u;
    t->input = g->inputs[0];
    t->output = g->outputs[0];
    const size_t nt = (size_t)g->n_tensors;
    t->act = nne_calloc(nt, sizeof *t->act);
    t->grad = nne_calloc(nt, sizeof *t->grad);
    t->param_of = nne_calloc(nt, sizeof *t->param_of);
    t->consumers = nne_calloc(nt, sizeof *t->consumers);
    if (!t->act || !t->grad || !t->param_of || !t->consumers) goto nomem;

    if (cfg->threads < 0 || cfg->threads > NNE_THREADPOOL_MAX_THREADS) {
        st = nne_error(NNE_ERR_INVALID_ARG, "trainer: threads %d out of range [0, %d]",
                       (int)cfg->threads, NNE_THREADPOOL_MAX_THREADS);
        goto fail;
    }
    if (cfg->threads == 0) {
        t->pool = nne_threadpool_default(); /* NULL (serial) if it cannot be created */
    } else if (cfg->threads > 1) {
        if ((st = nne_threadpool_create(cfg->threads, &t->pool)) != NNE_OK) goto fail;
        t->own_pool = true;
    }
    const int threads = nne_threadpool_threads(t->pool);
    if ((st = nne_params_create(g, &t->params)) != NNE_OK) goto fail;
    if ((st = nne_optim_create(&cfg->optim, t->params->total, &t->optim)) != NNE_OK) goto fail;
    if (cfg->entropy_lr_mult != 0.0f && cfg->entropy_lr_mult != 1.0f) {
        t->lr_scale = nne_calloc(t->params->total ? t->params->total : 1, sizeof *t->lr_scale);
        if (!t->lr_scale) {
            st = NNE_ERR_NOMEM;
            goto fail;
        }
        for (int32_t i = 0; i < t->params->n; i++) {
            const nne_param *it = &t->params->items[i];
            for (size_t e = 0; e < it->count; e++)
                t->lr_scale[it->offset + e] = it->entropy ? cfg->entropy_lr_mult : 1.0f;
        }
    }
    for (size_t i = 0; i < nt; i++) t->param_of[i] = -1;
    for (int32_t i = 0; i < t->params->n; i++) t->param_of[t->params->items[i].tensor] = i;

    /* Consumers, activation and gradient buffers, scratch sizes. */
    size_t max_numel = 1, max_scratch = 64;
    t->ew_part_floats = 1;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        for (int32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && g->tensors[n->inputs[k]].kind != NNE_TENSOR_CONSTANT)
                t->consumers[n->inputs[k]]++;
        size_t s = 0, part = 0;
        const size_t c = (size_t)tchannels(g, n->inputs[0]);
        if (n->op == NNE_OP_CONV2D) s = nne_conv2d_gemm_scratch_size(&n->conv_geom, threads);
        if (n->op == NNE_OP_CONV_TRANSPOSE2D)
            s = nne_conv_transpose2d_gemm_scratch_size(&n->conv_geom, threads);
        if (n->op == NNE_OP_PRELU) part = c;
        if (n->op == NNE_OP_FACTORIZED_LIKELIHOOD) part = c * NNE_FACT_PARAMS;
        if (n->op == NNE_OP_GAUSSIAN_LIKELIHOOD && tnumel(g, n->output) > t->tmp2_floats)
            t->tmp2_floats = tnumel(g, n->output);
        if (n->op == NNE_OP_GDN || n->op == NNE_OP_IGDN)
            s = nne_gdn_gemm_scratch_size(tnumel(g, n->output) / c, (int32_t)c, threads);
        if (s > max_scratch) max_scratch = s;
        if (part > t->ew_part_floats) t->ew_part_floats = part;
    }
    for (int32_t k = 0; k < g->n_outputs; k++) t->consumers[g->outputs[k]]++; /* the loss */
    for (int32_t i = 0; i < g->n_tensors; i++) {
        if (g->tensors[i].kind == NNE_TENSOR_CONSTANT) continue;
        const size_t n = tnumel(g, i);
        if (n > max_numel) max_numel = n;
        if (!(t->act[i] = alloc_floats(n))) goto nomem;
        /* Every activation needs a gradient; the graph input only with cfg.input_grad. */
        const bool want = g->tensors[i].kind == NNE_TENSOR_ACTIVATION ||
                          (cfg->input_grad && i == t->input);
        if (want && !(t->grad[i] = alloc_floats(n))) goto nomem;
    }
    t->tmp2_floats = (t->tmp2_floats + 15) / 16 * 16; /* 64-byte slices */
    if (!(t->tmp = alloc_floats(max_numel)) || !(t->scratch = nne_aligned_alloc(max_scratch)) ||
        (t->tmp2_floats && !(t->tmp2 = alloc_floats(2 * t->tmp2_floats))) ||
        !(t->ew_part = alloc_floats(EW_CHUNKS * t->ew_part_floats)))
        goto nomem;

    if (border) {
        const nne_shape *os = &g->tensors[t->output].shape;
        const size_t n = (size_t)os->dim[0] * (size_t)(os->dim[1] - cfg->loss_border_bottom) *
                         (size_t)(os->dim[2] - cfg->loss_border_right) * (size_t)os->dim[3];
        if (!(t->crop_y = alloc_floats(n)) || !(t->crop_t = alloc_floats(n)) ||
            !(t->crop_dy = alloc_floats(n)))
            goto nomem;
    }
    if (cfg->loss == NNE_LOSS_MS_SSIM) {
        const nne_shape *os = &g->tensors[t->output].shape;
        if (os->ndim != 4) {
            st = nne_error(NNE_ERR_SHAPE, "trainer: MS-SSIM loss needs an NHWC output");
            goto fail;
        }
        int32_t scales = cfg->ms_ssim_scales;
        const int32_t oh = (int32_t)os->dim[1] - cfg->loss_border_bottom,
                      ow = (int32_t)os->dim[2] - cfg->loss_border_right;
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

/* ---- element-wise layers, split into pixel ranges ------------------------------------- */

typedef enum ew_kind {
    EW_PRELU_FWD,
    EW_PRELU_BWD,
    EW_RELU_FWD,
    EW_RELU_BWD,
    EW_ADD_FWD,
    EW_ABS_FWD,
    EW_ABS_BWD,
    EW_FACT_FWD,
    EW_FACT_BWD,
    EW_GAUSS_FWD,
    EW_GAUSS_BWD,
    EW_ACCUMULATE, /* y += x */
} ew_kind;

typedef struct ew_ctx {
    const nne_trainer *tr;
    ew_kind kind;
    size_t pixels;            /* rows of c channels (element count for relu, add) */
    int32_t c, n_param;       /* channels; prelu: slopes (1 or c) */
    int n_chunks;             /* ew_chunks(pixels, minimum pixels per chunk of the kind) */
    const float *x, *x2, *dy; /* x2: add's second input */
    const float *p0;          /* prelu slope; factorized params; Gaussian scales */
    float lik_min, scale_min; /* likelihoods */
    float *y, *dx;
    float *dx1, *dx2; /* gaussian: d scales, d means (with dx: each NULL or its own buffer) */
} ew_ctx;

static int ew_chunks(size_t pixels, size_t min_pixels) {
    const size_t n = pixels / min_pixels;
    return n < 1 ? 1 : n > EW_CHUNKS ? EW_CHUNKS : (int)n;
}

static void ew_task(void *vctx, int task, int thread) {
    const ew_ctx *e = vctx;
    const size_t q0 = e->pixels * (size_t)task / (size_t)e->n_chunks;
    const size_t q1 = e->pixels * (size_t)(task + 1) / (size_t)e->n_chunks;
    const size_t np = q1 - q0, c = (size_t)e->c, o = q0 * c; /* o: first element */
    float *part = e->tr->ew_part + (size_t)task * e->tr->ew_part_floats;
    switch (e->kind) {
    case EW_PRELU_FWD:
        nne_prelu_forward(np, e->c, e->x + o, e->p0, e->n_param, e->y + o);
        break;
    case EW_PRELU_BWD:
        memset(part, 0, (size_t)e->n_param * sizeof(float));
        nne_prelu_backward(np, e->c, e->x + o, e->p0, e->n_param, e->dy + o,
                           e->dx ? e->dx + o : NULL, part);
        break;
    case EW_RELU_FWD:
        nne_relu_forward(np * c, e->x + o, e->y + o);
        break;
    case EW_RELU_BWD:
        nne_relu_backward(np * c, e->x + o, e->dy + o, e->dx + o);
        break;
    case EW_ADD_FWD:
        nne_add_forward(np * c, e->x + o, e->x2 + o, e->y + o);
        break;
    case EW_ABS_FWD:
        nne_abs_f32__ref(np * c, e->x + o, e->y + o);
        break;
    case EW_ABS_BWD:
        nne_abs_backward(np * c, e->x + o, e->dy + o, e->dx + o);
        break;
    case EW_FACT_FWD:
        nne_factorized_likelihood_f32__ref(np, e->c, e->x + o, e->p0, e->lik_min, e->y + o);
        break;
    case EW_FACT_BWD:
        memset(part, 0, c * NNE_FACT_PARAMS * sizeof(float));
        nne_factorized_likelihood_backward(np, e->c, e->x + o, e->p0, e->lik_min, e->dy + o,
                                           e->dx ? e->dx + o : NULL, part);
        break;
    case EW_GAUSS_FWD: /* c == 1 */
        nne_gaussian_likelihood_f32__ref(np, e->x + o, e->p0 + o, e->x2 ? e->x2 + o : NULL,
                                         e->scale_min, e->lik_min, e->y + o);
        break;
    case EW_GAUSS_BWD:
        nne_gaussian_likelihood_backward(np, e->x + o, e->p0 + o, e->x2 ? e->x2 + o : NULL,
                                         e->scale_min, e->lik_min, e->dy + o,
                                         e->dx ? e->dx + o : NULL, e->dx1 ? e->dx1 + o : NULL,
                                         e->dx2 ? e->dx2 + o : NULL);
        break;
    case EW_ACCUMULATE:
        for (size_t i = o; i < o + np * c; i++) e->y[i] += e->x[i];
        break;
    }
}

static void ew_run(const nne_trainer *tr, ew_ctx *e) {
    e->tr = tr;
    /* The factorized density costs ~1 us per element (two logit chains, tanh): split it
     * down to EW_MIN_FACT elements per range; the rest is memory-bound. */
    size_t min_px = EW_MIN_PIXELS;
    if (e->kind == EW_FACT_FWD || e->kind == EW_FACT_BWD)
        min_px = (EW_MIN_FACT + (size_t)e->c - 1) / (size_t)e->c;
    e->n_chunks = ew_chunks(e->pixels, min_px);
    nne_threadpool_run(tr->pool, e->n_chunks, ew_task, e);
}

/* g[0, n) += elements [off, off + n) of the chunks' partials [n_chunks][ew_part_floats],
 * summed in chunk order. */
static void ew_reduce(const nne_trainer *tr, const ew_ctx *e, size_t off, size_t n, float *g) {
    nne_train__sum_partials(tr->ew_part + off, n, tr->ew_part_floats, e->n_chunks, g);
}

/* ---- forward ---------------------------------------------------------------------------- */

/* The generator of quantize node `node`'s noise at update `step`: a function of the
 * configuration's seed, the step and the node only, so a resumed run replays it. */
static void noise_rng(const nne_trainer *tr, int64_t step, int32_t node, nne_rng *r) {
    nne_rng_seed(r, tr->cfg.noise_seed ^ ((uint64_t)step * 0x9E3779B97F4A7C15ull) ^
                        ((uint64_t)(node + 1) * 0xD1B54A32D192ED03ull));
}

/* Weights as the forward pass uses them: fake-quantized under QAT. */
static const float *fwd_weight(nne_trainer *tr, int32_t t) {
    const float *w = tdata(tr, t);
    return tr->qat ? nne_qat__weight(tr->qat, t, w, &tr->qat_status) : w;
}

/* The same weights in the backward pass (the forward's fake-quantized copy). */
static const float *bwd_weight(const nne_trainer *tr, int32_t t) {
    const float *w = tdata(tr, t);
    return tr->qat ? nne_qat__weight_cached(tr->qat, t, w) : w;
}

/* Input tensor t of node `node` as the node reads it: under QAT restricted to a region, a
 * boundary tensor's fake-quantized copy for the region's nodes (nne_qat__input). */
static const float *qin(const nne_trainer *tr, int32_t node, int32_t t) {
    const float *x = tdata(tr, t);
    return tr->qat ? nne_qat__input(tr->qat, node, t, x) : x;
}

/* The STE of that copy on the node's gradient contribution dx to tensor t. */
static void qin_grad(const nne_trainer *tr, int32_t node, int32_t t, float *dx) {
    if (tr->qat && t >= 0) nne_qat__input_grad(tr->qat, node, t, dx, tnumel(tr->g, t), tr->pool);
}

static void forward_node(nne_trainer *tr, int32_t idx, fwd_mode mode, int64_t step) {
    /* bf16_matmul is a training speed-up: evaluation (validation) runs the f32 model that
     * will be shipped. */
    const uint32_t gf = mode == FWD_TRAIN ? tr->gemm_flags : 0u;
    const nne_node *n = &tr->g->nodes[idx];
    const nne_graph *g = tr->g;
    const int32_t *in = n->inputs;
    const float *x = qin(tr, idx, in[0]);
    float *y = tr->act[n->output];
    const size_t cnt = tnumel(g, n->output);
    const int32_t c = tchannels(g, in[0]);
    ew_ctx e = {.pixels = cnt / (size_t)c, .c = c, .x = x, .y = y};
    switch (n->op) {
    case NNE_OP_CONV2D:
        nne_conv2d_forward_gemm(tr->pool, &n->conv_geom, x, fwd_weight(tr, in[1]),
                                tdata(tr, in[2]), y, tr->scratch, gf);
        return;
    case NNE_OP_CONV_TRANSPOSE2D:
        nne_conv_transpose2d_forward_gemm(tr->pool, &n->conv_geom, x, fwd_weight(tr, in[1]),
                                          tdata(tr, in[2]), y, tr->scratch, gf);
        return;
    case NNE_OP_PRELU: /* slopes: quantized under pow2 QAT */
        e.kind = EW_PRELU_FWD;
        e.p0 = fwd_weight(tr, in[1]);
        e.n_param = (int32_t)g->tensors[in[1]].shape.dim[0];
        break;
    case NNE_OP_RELU:
        e.kind = EW_RELU_FWD;
        break;
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
        nne_gdn_forward_gemm(tr->pool, e.pixels, c, x, tdata(tr, in[1]), tdata(tr, in[2]),
                             n->op == NNE_OP_IGDN, y, tr->scratch, gf);
        return;
    case NNE_OP_ADD:
        e.kind = EW_ADD_FWD;
        e.x2 = qin(tr, idx, in[1]);
        break;
    case NNE_OP_ABS:
        e.kind = EW_ABS_FWD;
        break;
    case NNE_OP_QUANTIZE: {
        /* Serial: the noise is one stream in element order (small tensors: latents). */
        const float *means = n->n_inputs > 1 ? tdata(tr, in[1]) : NULL;
        if (mode == FWD_EVAL) {
            nne_quantize_f32__ref(cnt, x, means, y);
        } else {
            nne_rng r;
            noise_rng(tr, step, idx, &r);
            if (tr->sga_tau > 0.0f)
                nne_quantize_sga_forward(cnt, tr->sga_tau, x, means, &r, y);
            else
                nne_quantize_train_forward(
                    cnt, (nne_quantize_train_mode)n->params.quantize.train_mode, x, means, &r, y);
        }
        return;
    }
    case NNE_OP_FACTORIZED_LIKELIHOOD:
        e.kind = EW_FACT_FWD;
        e.p0 = tdata(tr, in[1]);
        e.lik_min = n->params.entropy.lik_min;
        break;
    case NNE_OP_GAUSSIAN_LIKELIHOOD:
        e.kind = EW_GAUSS_FWD;
        e.pixels = cnt;
        e.c = 1;
        e.p0 = tdata(tr, in[1]);
        e.x2 = n->n_inputs > 2 ? tdata(tr, in[2]) : NULL;
        e.lik_min = n->params.entropy.lik_min;
        e.scale_min = n->params.entropy.scale_min;
        break;
    default: /* rejected by check_graph */
        return;
    }
    ew_run(tr, &e);
}

/* Under QAT every quantized activation (the input included) is fake-quantized as soon as it
 * is computed, so its readers see the int8 model's values (a region's boundary tensor that
 * other nodes read too: into a copy for the region's readers, qin). Returns the first QAT
 * error. */
static nne_status forward(nne_trainer *tr, const float *input, fwd_mode mode, int64_t step) {
    const nne_graph *g = tr->g;
    tr->qat_status = NNE_OK;
    if (tr->qat && (tr->qat_status = nne_qat__ready(tr->qat, mode == FWD_TRAIN)))
        return tr->qat_status;
    memcpy(tr->act[tr->input], input, tnumel(g, tr->input) * sizeof(float));
    if (tr->qat)
        nne_qat__activation(tr->qat, tr->input, tr->act[tr->input], tnumel(g, tr->input),
                            mode == FWD_TRAIN, tr->pool);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const uint64_t t0 = tr->prof ? nne_time_ns() : 0;
        forward_node(tr, i, mode, step);
        if (tr->prof) tr->prof->fwd_ns[i] += nne_time_ns() - t0;
        const int32_t o = g->nodes[i].output;
        if (tr->qat)
            nne_qat__activation(tr->qat, o, tr->act[o], tnumel(g, o), mode == FWD_TRAIN, tr->pool);
    }
    return tr->qat_status;
}

static float *grad_target(nne_trainer *tr, int32_t t);
static void grad_commit(nne_trainer *tr, int32_t t);

/* L = lambda 255^2 MSE(output 0) + sum_k bits(output k) / (N H W). With `grad`, the
 * gradients of every output are written (grad_target / grad_commit, one at a time since
 * they may share tmp). */
static void rd_loss(nne_trainer *tr, const float *target, double *loss, bool grad) {
    const nne_graph *g = tr->g;
    const nne_shape *os = &g->tensors[tr->output].shape;
    const double pixels = (double)os->dim[0] * (double)os->dim[1] * (double)os->dim[2];
    const double w = 255.0 * 255.0 * (double)tr->cfg.rd_lambda;
    float *dy = grad ? grad_target(tr, tr->output) : NULL;
    const size_t cnt = tnumel(g, tr->output);
    const double mse = nne_mse_loss(cnt, tr->act[tr->output], target, dy);
    if (dy) {
        for (size_t i = 0; i < cnt; i++) dy[i] = (float)((double)dy[i] * w);
        grad_commit(tr, tr->output);
    }
    double bits = 0.0;
    for (int32_t k = 1; k < g->n_outputs; k++) {
        const int32_t o = g->outputs[k];
        float *dl = grad ? grad_target(tr, o) : NULL;
        bits += nne_rate_bits(tnumel(g, o), tr->act[o], 1.0 / pixels, dl);
        if (dl) grad_commit(tr, o);
    }
    tr->last_mse = mse;
    tr->last_bpp = bits / pixels;
    *loss = w * mse + tr->last_bpp;
}

/* Copy the top-left h x w of each image of src [n][sh][sw][c] to dst [n][h][w][c], or back
 * (to_crop false: dst is the full tensor, its border set to 0). */
static void crop_copy(const nne_shape *os, int32_t h, int32_t w, const float *src, float *dst,
                      bool to_crop) {
    const size_t c = (size_t)os->dim[3], sh = (size_t)os->dim[1], sw = (size_t)os->dim[2];
    const size_t crow = (size_t)w * c, frow = sw * c;
    if (!to_crop) memset(dst, 0, (size_t)os->dim[0] * sh * frow * sizeof *dst);
    for (size_t b = 0; b < (size_t)os->dim[0]; b++)
        for (size_t y = 0; y < (size_t)h; y++) {
            const size_t fi = (b * sh + y) * frow, ci = (b * (size_t)h + y) * crow;
            if (to_crop)
                memcpy(dst + ci, src + fi, crow * sizeof *dst);
            else
                memcpy(dst + fi, src + ci, crow * sizeof *dst);
        }
}

/* The MSE or 1 - MS-SSIM loss of the output against t; dy (NULL to skip) overwritten. With a
 * loss border, the loss of the cropped output and target; dy is 0 on the border. */
static nne_status task_loss(nne_trainer *tr, const float *t, double *loss, float *dy) {
    const nne_shape *os = &tr->g->tensors[tr->output].shape;
    const float *y = tr->act[tr->output];
    int32_t n = 1, h = 1, w = 1, c = 1;
    size_t cnt = tnumel(tr->g, tr->output);
    float *d = dy;
    if (os->ndim == 4)
        n = (int32_t)os->dim[0], h = (int32_t)os->dim[1], w = (int32_t)os->dim[2],
        c = (int32_t)os->dim[3];
    if (tr->crop_y) {
        h -= tr->cfg.loss_border_bottom, w -= tr->cfg.loss_border_right;
        crop_copy(os, h, w, y, tr->crop_y, true);
        crop_copy(os, h, w, t, tr->crop_t, true);
        y = tr->crop_y, t = tr->crop_t, d = dy ? tr->crop_dy : NULL;
        cnt = (size_t)n * (size_t)h * (size_t)w * (size_t)c;
    }
    nne_status st = NNE_OK;
    if (tr->cfg.loss == NNE_LOSS_MSE)
        *loss = nne_mse_loss(cnt, y, t, d);
    else
        st = nne_ms_ssim_loss(n, h, w, c, y, t, tr->ms_ssim_scales, tr->loss_scratch, loss, d);
    if (st == NNE_OK && dy && tr->crop_y) crop_copy(os, h, w, d, dy, false);
    return st;
}

/* L = alpha L_task(y, target) + (1 - alpha) L_distill(y, teacher) (qat.h). */
static nne_status distill_loss(nne_trainer *tr, const float *target, double *loss, float *dy) {
    if (!tr->teacher)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "trainer: distillation is on but no teacher output was set");
    const size_t cnt = tnumel(tr->g, tr->output);
    const double a = tr->dcfg.alpha;
    double lt = 0.0, ld = 0.0;
    nne_status st = task_loss(tr, target, &lt, dy);
    float *dd = dy ? tr->dgrad : NULL;
    if (st == NNE_OK && tr->dcfg.kind == NNE_DISTILL_OUTPUT) st = task_loss(tr, tr->teacher, &ld, dd);
    if (st == NNE_OK && tr->dcfg.kind == NNE_DISTILL_SOFTMAX) {
        const int32_t c = tchannels(tr->g, tr->output);
        ld = nne_distill_softmax_loss(cnt / (size_t)c, c, tr->act[tr->output], tr->teacher,
                                      tr->dcfg.temperature, dd);
    }
    if (st != NNE_OK) return st;
    if (dy)
        for (size_t i = 0; i < cnt; i++) dy[i] = (float)(a * dy[i] + (1.0 - a) * dd[i]);
    tr->last_task = lt;
    tr->last_distill = ld;
    *loss = a * lt + (1.0 - a) * ld;
    return NNE_OK;
}

static nne_status compute_loss(nne_trainer *tr, const float *target, double *loss, bool grad) {
    float *dy = grad ? grad_target(tr, tr->output) : NULL;
    if (tr->cfg.loss == NNE_LOSS_RD) {
        rd_loss(tr, target, loss, grad);
        return NNE_OK;
    }
    const nne_status st =
        tr->distill ? distill_loss(tr, target, loss, dy) : task_loss(tr, target, loss, dy);
    if (st == NNE_OK && grad) grad_commit(tr, tr->output);
    return st;
}

/* ---- backward --------------------------------------------------------------------------- */

/* Where a consumer writes its contribution to dL/d(tensor t): grad[t] itself when it is
 * the only reader (kernels overwrite dx), else tmp (added by grad_commit). NULL when t
 * needs no gradient (graph input, constants). */
static float *grad_target(nne_trainer *tr, int32_t t) {
    if (t < 0 || !tr->grad[t]) return NULL;
    return tr->consumers[t] == 1 ? tr->grad[t] : tr->tmp;
}

/* grad[t] += src when t is shared (src: where its consumer wrote, tmp or a tmp2 slice). */
static void grad_commit_from(nne_trainer *tr, int32_t t, const float *src) {
    if (t < 0 || !tr->grad[t] || tr->consumers[t] == 1) return;
    ew_ctx e = {
        .kind = EW_ACCUMULATE, .pixels = tnumel(tr->g, t), .c = 1, .x = src, .y = tr->grad[t]};
    ew_run(tr, &e);
}

static void grad_commit(nne_trainer *tr, int32_t t) { grad_commit_from(tr, t, tr->tmp); }

static void backward_node(nne_trainer *tr, const nne_node *n) {
    const nne_graph *g = tr->g;
    const int32_t idx = (int32_t)(n - g->nodes);
    const int32_t *in = n->inputs;
    const float *x = qin(tr, idx, in[0]);
    const float *dy = tr->grad[n->output];
    const size_t cnt = tnumel(g, n->output);
    float *dx = grad_target(tr, in[0]);
    const int32_t c = tchannels(g, in[0]);
    ew_ctx e = {.pixels = cnt / (size_t)c, .c = c, .x = x, .dy = dy, .dx = dx};
    switch (n->op) {
    case NNE_OP_CONV2D:
        nne_conv2d_backward_gemm(tr->pool, &n->conv_geom, x, bwd_weight(tr, in[1]), dy, dx,
                                 conv_pgrad(tr, in[1]), conv_pgrad(tr, in[2]), tr->scratch,
                                 tr->gemm_flags);
        if (tr->qat) nne_qat__weight_grad(tr->qat, in[1], pgrad(tr, in[1]));
        break;
    case NNE_OP_CONV_TRANSPOSE2D:
        nne_conv_transpose2d_backward_gemm(tr->pool, &n->conv_geom, x, bwd_weight(tr, in[1]), dy,
                                           dx, conv_pgrad(tr, in[1]), conv_pgrad(tr, in[2]),
                                           tr->scratch, tr->gemm_flags);
        if (tr->qat) nne_qat__weight_grad(tr->qat, in[1], pgrad(tr, in[1]));
        break;
    case NNE_OP_PRELU:
        e.kind = EW_PRELU_BWD;
        e.p0 = bwd_weight(tr, in[1]);
        e.n_param = (int32_t)g->tensors[in[1]].shape.dim[0];
        ew_run(tr, &e);
        ew_reduce(tr, &e, 0, (size_t)e.n_param, pgrad(tr, in[1]));
        if (tr->qat) nne_qat__weight_grad(tr->qat, in[1], pgrad(tr, in[1]));
        break;
    case NNE_OP_RELU:
        e.kind = EW_RELU_BWD;
        if (dx) ew_run(tr, &e);
        break;
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
        nne_gdn_backward_gemm(tr->pool, e.pixels, c, x, tdata(tr, in[1]), tdata(tr, in[2]),
                              n->op == NNE_OP_IGDN, dy, dx, pgrad(tr, in[1]), pgrad(tr, in[2]),
                              tr->scratch, tr->gemm_flags);
        break;
    case NNE_OP_ABS:
        e.kind = EW_ABS_BWD;
        if (dx) ew_run(tr, &e);
        break;
    case NNE_OP_QUANTIZE: /* identity for x (SGA: its derivative); zero for the means */
        if (dx && tr->sga_tau > 0.0f)
            nne_quantize_sga_backward(cnt, tr->sga_tau, x,
                                      n->n_inputs > 1 && in[1] >= 0 ? tdata(tr, in[1]) : NULL,
                                      tr->act[n->output], dy, dx);
        else if (dx)
            memcpy(dx, dy, cnt * sizeof(float));
        grad_commit(tr, in[0]);
        if (n->n_inputs > 1 && in[1] >= 0 && grad_target(tr, in[1]) == tr->grad[in[1]] &&
            tr->grad[in[1]])
            memset(tr->grad[in[1]], 0, cnt * sizeof(float)); /* sole reader: overwrite */
        return;
    case NNE_OP_FACTORIZED_LIKELIHOOD:
        e.kind = EW_FACT_BWD;
        e.p0 = tdata(tr, in[1]);
        e.lik_min = n->params.entropy.lik_min;
        ew_run(tr, &e);
        ew_reduce(tr, &e, 0, (size_t)c * NNE_FACT_PARAMS, pgrad(tr, in[1]));
        break;
    case NNE_OP_GAUSSIAN_LIKELIHOOD: {
        /* One pass for the three gradients (each element's likelihood computed once). Shared
         * inputs write to tmp, then to the two tmp2 slices (y_hat and the means are both
         * shared in mbt2018-mean), and are committed in input order: the same additions as
         * one pass per input. */
        e.kind = EW_GAUSS_BWD;
        e.pixels = cnt;
        e.c = 1;
        e.p0 = tdata(tr, in[1]);
        e.x2 = n->n_inputs > 2 ? tdata(tr, in[2]) : NULL;
        e.lik_min = n->params.entropy.lik_min;
        e.scale_min = n->params.entropy.scale_min;
        float *gk[3] = {NULL, NULL, NULL};
        int shared = 0;
        for (int k = 0; k < n->n_inputs && k < 3; k++) {
            gk[k] = grad_target(tr, in[k]);
            if (gk[k] == tr->tmp && shared++ > 0) /* tmp taken: a tmp2 slice */
                gk[k] = tr->tmp2 + (size_t)(shared - 2) * tr->tmp2_floats;
        }
        e.dx = gk[0];
        e.dx1 = gk[1];
        e.dx2 = gk[2];
        ew_run(tr, &e);
        for (int k = 0; k < n->n_inputs && k < 3; k++)
            if (gk[k]) grad_commit_from(tr, in[k], gk[k]);
        return;
    }
    case NNE_OP_ADD:
        /* One input at a time, so that add(a, a) accumulates twice. */
        if (dx) nne_add_backward(cnt, dy, dx, NULL);
        qin_grad(tr, idx, in[0], dx);
        grad_commit(tr, in[0]);
        dx = grad_target(tr, in[1]);
        if (dx) nne_add_backward(cnt, dy, dx, NULL);
        qin_grad(tr, idx, in[1], dx);
        grad_commit(tr, in[1]);
        return;
    default:
        return;
    }
    qin_grad(tr, idx, in[0], dx);
    grad_commit(tr, in[0]);
}

/* Forward, loss and backward: fills params->grad. `step` seeds the quantization noise. */
static nne_status forward_backward(nne_trainer *tr, const float *input, const float *target,
                                   int64_t step, double *loss) {
    nne_graph *g = tr->g;
    nne_status st = forward(tr, input, FWD_TRAIN, step);
    if (st != NNE_OK) return st;
    uint64_t t0 = tr->prof ? nne_time_ns() : 0;
    nne_params_zero_grad(tr->params);
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (tr->grad[i] && tr->consumers[i] != 1) /* shared, or read by nobody */
            memset(tr->grad[i], 0, tnumel(g, i) * sizeof(float));
    if (tr->prof) {
        const uint64_t t1 = nne_time_ns();
        tr->prof->zero_ns += t1 - t0;
        t0 = t1;
    }
    st = compute_loss(tr, target, loss, true);
    if (st != NNE_OK) return st;
    if (tr->prof) tr->prof->loss_ns += nne_time_ns() - t0;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        const nne_node *n = &g->nodes[i];
        if (tr->prof) t0 = nne_time_ns();
        /* STE of the output's fake quantization, before the node's own backward */
        if (tr->qat)
            nne_qat__activation_grad(tr->qat, n->output, tr->act[n->output],
                                     tr->grad[n->output], tnumel(g, n->output), tr->pool);
        backward_node(tr, n);
        if (tr->prof) tr->prof->bwd_ns[i] += nne_time_ns() - t0;
    }
    return NNE_OK;
}

/* Keep the parameters in their domain after an update (projected gradient descent):
 * GDN/IGDN beta >= NNE_GDN_BETA_MIN and gamma >= 0, so the square root stays real and
 * positive; pruned weights (params->keep, nne_prune_masks_update) exactly 0. CompressAI
 * reparametrizes GDN instead (NonNegativeParametrizer); a projection keeps the stored values
 * the ones the op uses and costs nothing between updates. */
static void project_params(nne_trainer *t) {
    nne_prune_masks_apply(t->params, t->params->data);
    const nne_graph *g = t->g;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (n->op != NNE_OP_GDN && n->op != NNE_OP_IGDN) continue;
        const int32_t b = n->inputs[1], gm = n->inputs[2];
        if (t->param_of[b] >= 0) {
            float *v = tdata(t, b);
            for (size_t k = 0; k < tnumel(g, b); k++)
                if (!(v[k] >= NNE_GDN_BETA_MIN)) v[k] = NNE_GDN_BETA_MIN;
        }
        if (t->param_of[gm] >= 0) {
            float *v = tdata(t, gm);
            for (size_t k = 0; k < tnumel(g, gm); k++)
                if (!(v[k] >= 0.0f)) v[k] = 0.0f;
        }
    }
}

nne_status nne_trainer_step_ext(nne_trainer *t, nne_optim *o, const nne_lr_schedule *lr,
                                int64_t step, const float *input, const float *target,
                                nne_train_stats *stats) {
    if (!t || !o || !lr || !input || !target)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    nne_params *p = t->params;
    if (o->n != p->total)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "trainer: optimizer holds %zu values, the trainer %zu parameters", o->n,
                         p->total);
    double loss = 0.0;
    nne_status st = forward_backward(t, input, target, step, &loss);
    if (st != NNE_OK) return st;
    if (!isfinite(loss))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "trainer: loss is %g at step %lld (non-finite data or divergence); "
                         "parameters not updated",
                         loss, (long long)step);
    const uint64_t t0 = t->prof ? nne_time_ns() : 0;
    nne_prune_masks_apply(p, p->grad); /* pruned weights: no gradient, not in the norm */
    const double norm = nne_clip_grad_norm(p->grad, p->total, (double)o->cfg.clip_norm);
    const float rate = nne_lr_at(lr, step);
    nne_optim_step_scaled(o, p->data, p->grad, p->n_decay, rate, t->lr_scale);
    project_params(t);
    if (t->qat) nne_qat__update(t->qat, rate); /* LSQ's activation scales */
    if (t->prof) t->prof->update_ns += nne_time_ns() - t0;
    if (stats) {
        stats->loss = loss;
        stats->grad_norm = norm;
        stats->lr = rate;
        stats->step = step + 1;
        stats->mse = t->last_mse;
        stats->bpp = t->last_bpp;
    }
    return NNE_OK;
}

nne_status nne_trainer_step(nne_trainer *t, const float *input, const float *target,
                            nne_train_stats *stats) {
    if (!t) return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    nne_status st = nne_trainer_step_ext(t, t->optim, &t->cfg.lr, t->step, input, target, stats);
    if (st == NNE_OK) t->step++;
    return st;
}

nne_status nne_trainer_grad(nne_trainer *t, const float *input, const float *target, double *loss) {
    if (!t || !input || !target || !loss)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    return forward_backward(t, input, target, t->step, loss);
}

nne_status nne_trainer_eval(nne_trainer *t, const float *input, const float *target, double *loss) {
    if (!t || !input || !target || !loss)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    nne_status st = forward(t, input, FWD_EVAL, t->step);
    return st ? st : compute_loss(t, target, loss, false);
}

const float *nne_trainer_input_grad(const nne_trainer *t) {
    return t && t->cfg.input_grad ? t->grad[t->input] : NULL;
}

void nne_trainer_last_rd(const nne_trainer *t, double *mse, double *bpp) {
    if (mse) *mse = t ? t->last_mse : 0.0;
    if (bpp) *bpp = t ? t->last_bpp : 0.0;
}

void nne_train__sum_partials(const float *part, size_t n, size_t stride, int chunks, float *dst) {
    for (size_t e = 0; e < n; e++) {
        float s = part[e];
        for (int k = 1; k < chunks; k++) s += part[(size_t)k * stride + e];
        dst[e] += s;
    }
}

const float *nne_trainer_output(const nne_trainer *t) { return t->act[t->output]; }
nne_params *nne_trainer_params(nne_trainer *t) { return t->params; }
int64_t nne_trainer_steps(const nne_trainer *t) { return t->step; }
void nne_trainer_set_steps(nne_trainer *t, int64_t step) {
    if (t && step >= 0) t->step = step;
}
void nne_trainer_set_sga(nne_trainer *t, float tau) {
    if (t) t->sga_tau = tau > 0.0f && isfinite(tau) ? tau : 0.0f;
}
void nne_trainer_store(const nne_trainer *t) { nne_params_store(t->params, t->g); }
void nne_trainer_set_profile(nne_trainer *t, nne_train_profile *prof) {
    if (t) t->prof = prof;
}

/* ---- QAT and distillation (qat.h) ------------------------------------------------------------ */

nne_status nne_trainer_set_qat(nne_trainer *t, nne_qat *q) {
    if (!t) return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    if (q && !nne_qat__for_graph(q, t->g))
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: the QAT state is for another graph");
    t->qat = q;
    return NNE_OK;
}

nne_status nne_trainer_set_distill(nne_trainer *t, const nne_distill_config *c) {
    if (!t) return nne_error(NNE_ERR_INVALID_ARG, "trainer: NULL argument");
    if (!c) {
        t->distill = false;
        return NNE_OK;
    }
    if (t->cfg.loss == NNE_LOSS_RD)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "trainer: distillation with the rate-distortion loss is not supported");
    if (!(c->alpha >= 0.0f && c->alpha <= 1.0f))
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: distillation alpha %g is not in [0, 1]",
                         (double)c->alpha);
    if (c->kind != NNE_DISTILL_OUTPUT && c->kind != NNE_DISTILL_SOFTMAX)
        return nne_error(NNE_ERR_INVALID_ARG, "trainer: unknown distillation kind %d",
                         (int)c->kind);
    if (!(c->temperature > 0.0f && isfinite(c->temperature)) ||
        (c->kind == NNE_DISTILL_OUTPUT && c->temperature != 1.0f))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "trainer: distillation temperature %g: want > 0, and 1 for a regression "
                         "output (the temperature cancels in a squared error)",
                         (double)c->temperature);
    if (!t->dgrad && !(t->dgrad = alloc_floats(tnumel(t->g, t->output))))
        return nne_error(NNE_ERR_NOMEM, "trainer: out of memory");
    t->dcfg = *c;
    t->distill = true;
    return NNE_OK;
}

void nne_trainer_set_teacher_output(nne_trainer *t, const float *y_teacher) {
    if (t) t->teacher = y_teacher;
}

void nne_trainer_last_distill(const nne_trainer *t, double *task, double *distill) {
    const bool on = t && t->distill;
    if (task) *task = on ? t->last_task : 0.0;
    if (distill) *distill = on ? t->last_distill : 0.0;
}
