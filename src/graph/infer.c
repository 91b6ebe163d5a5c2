/* Graph validation and shape inference. Every semantic check on a graph lives here, so that
 * graphs from builders, the model-file reader and passes are all held to the same rules.
 * Each error names the node and the problem. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph_internal.h"

#define MAX_KERNEL   64
#define MAX_STRIDE   64
#define MAX_DILATION 64
#define MAX_PAD      1024
#define MAX_UPSAMPLE 64

typedef struct ctx {
    nne_graph *g;
    nne_node *n;
    int32_t *producer;
} ctx;

#define FAIL(st, ...) return node_error(c, st, __VA_ARGS__)

static nne_status node_error(const ctx *c, nne_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static nne_status node_error(const ctx *c, nne_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nne_error(s, "node '%s' (%s): %s", c->n->name, nne_op_name(c->n->op), msg);
}

static const nne_tensor *in(const ctx *c, int k) {
    int32_t i = c->n->inputs[k];
    return i >= 0 ? &c->g->tensors[i] : NULL;
}

/* Arity: inputs [0, required) must be present, [required, allowed) may be -1, rest absent. */
static nne_status check_arity(const ctx *c, int required, int allowed) {
    if (c->n->n_inputs < required || c->n->n_inputs > allowed)
        FAIL(NNE_ERR_FORMAT, "has %d inputs, expects %d..%d", (int)c->n->n_inputs, required,
             allowed);
    for (int k = 0; k < required; k++)
        if (c->n->inputs[k] < 0) FAIL(NNE_ERR_FORMAT, "required input %d is missing", k);
    return NNE_OK;
}

static nne_status check_rank(const ctx *c, int k, int rank) {
    const nne_tensor *t = in(c, k);
    if (t->shape.ndim != rank)
        FAIL(NNE_ERR_SHAPE, "input %d '%s' has rank %d, expects %d", k, t->name, (int)t->shape.ndim,
             rank);
    return NNE_OK;
}

/* A 1-D per-channel parameter [count] of the same dtype class as the data. */
static nne_status check_vec(const ctx *c, int k, int64_t count) {
    const nne_tensor *t = in(c, k);
    if (!t) return NNE_OK;
    if (t->shape.ndim != 1 || t->shape.dim[0] != count)
        FAIL(NNE_ERR_SHAPE, "input %d '%s' must be [%lld]", k, t->name, (long long)count);
    return NNE_OK;
}

static bool range(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }

/* Resolve "same" padding (TF convention) along one axis. */
static void same_pad(int64_t in_size, int32_t k, int32_t s, int32_t d, int32_t *before,
                     int32_t *after) {
    int64_t out = (in_size + s - 1) / s;
    int64_t eff = (int64_t)(k - 1) * d + 1;
    int64_t total = (out - 1) * s + eff - in_size;
    if (total < 0) total = 0;
    *before = (int32_t)(total / 2);
    *after = (int32_t)(total - total / 2);
}

static nne_status infer_conv(ctx *c, nne_shape *out, bool transpose) {
    nne_status s;
    if ((s = check_arity(c, 2, 3)) || (s = check_rank(c, 0, 4)) || (s = check_rank(c, 1, 4)))
        return s;
    const nne_conv_params *p = &c->n->params.conv;
    const nne_tensor *x = in(c, 0), *w = in(c, 1);
    if (!range(p->kernel[0], 1, MAX_KERNEL) || !range(p->kernel[1], 1, MAX_KERNEL))
        FAIL(NNE_ERR_FORMAT, "kernel %dx%d outside [1, %d]", (int)p->kernel[0], (int)p->kernel[1],
             MAX_KERNEL);
    if (!range(p->stride[0], 1, MAX_STRIDE) || !range(p->stride[1], 1, MAX_STRIDE))
        FAIL(NNE_ERR_FORMAT, "stride outside [1, %d]", MAX_STRIDE);
    if (!range(p->dilation[0], 1, MAX_DILATION) || !range(p->dilation[1], 1, MAX_DILATION))
        FAIL(NNE_ERR_FORMAT, "dilation outside [1, %d]", MAX_DILATION);
    for (int k = 0; k < 4; k++)
        if (!range(p->pad[k], 0, MAX_PAD)) FAIL(NNE_ERR_FORMAT, "padding outside [0, %d]", MAX_PAD);
    if (!range(p->pad_mode, NNE_PAD_EXPLICIT, NNE_PAD_SAME))
        FAIL(NNE_ERR_FORMAT, "invalid padding mode %d", (int)p->pad_mode);
    if (transpose && p->pad_mode == NNE_PAD_SAME)
        FAIL(NNE_ERR_UNSUPPORTED, "'same' padding is not defined for transposed convolution");
    int64_t n = x->shape.dim[0], ih = x->shape.dim[1], iw = x->shape.dim[2], ic = x->shape.dim[3];
    int64_t oc = w->shape.dim[0];
    int32_t g = p->groups;
    if (g < 1 || ic % g != 0 || oc % g != 0)
        FAIL(NNE_ERR_SHAPE, "groups %d must divide input channels %lld and output channels %lld",
             (int)g, (long long)ic, (long long)oc);
    if (w->shape.dim[1] != p->kernel[0] || w->shape.dim[2] != p->kernel[1] ||
        w->shape.dim[3] != ic / g)
        FAIL(NNE_ERR_SHAPE,
             "weights '%s' are [%lld, %lld, %lld, %lld], expected [OC, %d, %d, %lld] (OHWI)",
             w->name, (long long)w->shape.dim[0], (long long)w->shape.dim[1],
             (long long)w->shape.dim[2], (long long)w->shape.dim[3], (int)p->kernel[0],
             (int)p->kernel[1], (long long)(ic / g));
    if ((s = check_vec(c, 2, oc))) return s;
    int32_t pt = p->pad[0], pl = p->pad[1], pb = p->pad[2], pr = p->pad[3];
    if (p->pad_mode == NNE_PAD_VALID) pt = pl = pb = pr = 0;
    if (p->pad_mode == NNE_PAD_SAME) {
        same_pad(ih, p->kernel[0], p->stride[0], p->dilation[0], &pt, &pb);
        same_pad(iw, p->kernel[1], p->stride[1], p->dilation[1], &pl, &pr);
    }
    int64_t eh = (int64_t)(p->kernel[0] - 1) * p->dilation[0] + 1;
    int64_t ew = (int64_t)(p->kernel[1] - 1) * p->dilation[1] + 1;
    int64_t oh, ow;
    if (!transpose) {
        if (p->out_pad[0] || p->out_pad[1])
            FAIL(NNE_ERR_FORMAT, "output padding is only defined for transposed convolution");
        oh = (ih + pt + pb - eh) / p->stride[0] + 1;
        ow = (iw + pl + pr - ew) / p->stride[1] + 1;
        if (ih + pt + pb < eh || iw + pl + pr < ew)
            FAIL(NNE_ERR_SHAPE, "input %lldx%lld (padded) is smaller than the kernel extent",
                 (long long)ih, (long long)iw);
    } else {
        /* PyTorch: output padding must be smaller than the stride or the dilation. */
        for (int k = 0; k < 2; k++)
            if (p->out_pad[k] < 0 ||
                (p->out_pad[k] >= p->stride[k] && p->out_pad[k] >= p->dilation[k]))
                FAIL(NNE_ERR_FORMAT, "output padding %d must be smaller than stride or dilation",
                     (int)p->out_pad[k]);
        oh = (ih - 1) * p->stride[0] - pt - pb + eh + p->out_pad[0];
        ow = (iw - 1) * p->stride[1] - pl - pr + ew + p->out_pad[1];
    }
    if (oh < 1 || ow < 1)
        FAIL(NNE_ERR_SHAPE, "output would be %lldx%lld", (long long)oh, (long long)ow);
    if (oh > NNE_MAX_DIM || ow > NNE_MAX_DIM) FAIL(NNE_ERR_LIMIT, "output too large");
    *out = nne_shape_4d(n, oh, ow, oc);
    nne_conv2d_geom *gm = &c->n->conv_geom;
    memset(gm, 0, sizeof *gm);
    gm->n = (int32_t)n;
    gm->ih = (int32_t)ih;
    gm->iw = (int32_t)iw;
    gm->ic = (int32_t)ic;
    gm->oh = (int32_t)oh;
    gm->ow = (int32_t)ow;
    gm->oc = (int32_t)oc;
    gm->kh = p->kernel[0];
    gm->kw = p->kernel[1];
    gm->stride_h = p->stride[0];
    gm->stride_w = p->stride[1];
    gm->dil_h = p->dilation[0];
    gm->dil_w = p->dilation[1];
    gm->pad_t = pt;
    gm->pad_l = pl;
    gm->pad_b = pb;
    gm->pad_r = pr;
    gm->out_pad_h = transpose ? p->out_pad[0] : 0;
    gm->out_pad_w = transpose ? p->out_pad[1] : 0;
    gm->groups = g;
    return NNE_OK;
}

static nne_status infer_pool(ctx *c, nne_shape *out) {
    nne_status s;
    if ((s = check_arity(c, 1, 1)) || (s = check_rank(c, 0, 4))) return s;
    const nne_pool_params *p = &c->n->params.pool;
    const nne_tensor *x = in(c, 0);
    if (!range(p->kernel[0], 1, MAX_KERNEL) || !range(p->kernel[1], 1, MAX_KERNEL))
        FAIL(NNE_ERR_FORMAT, "kernel outside [1, %d]", MAX_KERNEL);
    if (!range(p->stride[0], 1, MAX_STRIDE) || !range(p->stride[1], 1, MAX_STRIDE))
        FAIL(NNE_ERR_FORMAT, "stride outside [1, %d]", MAX_STRIDE);
    if (!range(p->pad_mode, NNE_PAD_EXPLICIT, NNE_PAD_SAME))
        FAIL(NNE_ERR_FORMAT, "invalid padding mode %d", (int)p->pad_mode);
    if (!range(p->count_include_pad, 0, 1)) FAIL(NNE_ERR_FORMAT, "count_include_pad must be 0/1");
    int64_t ih = x->shape.dim[1], iw = x->shape.dim[2];
    int32_t pt = p->pad[0], pl = p->pad[1], pb = p->pad[2], pr = p->pad[3];
    if (p->pad_mode == NNE_PAD_VALID) pt = pl = pb = pr = 0;
    if (p->pad_mode == NNE_PAD_SAME) {
        same_pad(ih, p->kernel[0], p->stride[0], 1, &pt, &pb);
        same_pad(iw, p->kernel[1], p->stride[1], 1, &pl, &pr);
    }
    /* Padding at most half the window (PyTorch's rule), so every window sees the image. */
    if (!range(pt, 0, p->kernel[0] / 2) || !range(pb, 0, p->kernel[0] / 2) ||
        !range(pl, 0, p->kernel[1] / 2) || !range(pr, 0, p->kernel[1] / 2))
        FAIL(NNE_ERR_FORMAT, "padding must be in [0, kernel/2]");
    if (ih + pt + pb < p->kernel[0] || iw + pl + pr < p->kernel[1])
        FAIL(NNE_ERR_SHAPE, "input smaller than the pooling window");
    int64_t oh = (ih + pt + pb - p->kernel[0]) / p->stride[0] + 1;
    int64_t ow = (iw + pl + pr - p->kernel[1]) / p->stride[1] + 1;
    *out = nne_shape_4d(x->shape.dim[0], oh, ow, x->shape.dim[3]);
    nne_pool2d_geom *gm = &c->n->pool_geom;
    memset(gm, 0, sizeof *gm);
    gm->n = (int32_t)x->shape.dim[0];
    gm->ih = (int32_t)ih;
    gm->iw = (int32_t)iw;
    gm->c = (int32_t)x->shape.dim[3];
    gm->oh = (int32_t)oh;
    gm->ow = (int32_t)ow;
    gm->kh = p->kernel[0];
    gm->kw = p->kernel[1];
    gm->stride_h = p->stride[0];
    gm->stride_w = p->stride[1];
    gm->pad_t = pt;
    gm->pad_l = pl;
    gm->pad_b = pb;
    gm->pad_r = pr;
    gm->count_include_pad = p->count_include_pad;
    return NNE_OK;
}

static int64_t last_dim(const nne_tensor *t) {
    return t->shape.ndim ? t->shape.dim[t->shape.ndim - 1] : 1;
}

static nne_status infer_node(ctx *c, nne_shape *out) {
    const nne_node *n = c->n;
    const nne_op_params *p = &n->params;
    nne_status s;
    switch (n->op) {
    case NNE_OP_CONV2D:
        return infer_conv(c, out, false);
    case NNE_OP_CONV_TRANSPOSE2D:
        return infer_conv(c, out, true);
    case NNE_OP_DENSE: {
        if ((s = check_arity(c, 2, 3)) || (s = check_rank(c, 0, 2)) || (s = check_rank(c, 1, 2)))
            return s;
        const nne_tensor *x = in(c, 0), *w = in(c, 1);
        if (w->shape.dim[1] != x->shape.dim[1])
            FAIL(NNE_ERR_SHAPE, "weights '%s' have %lld inputs, x has %lld features", w->name,
                 (long long)w->shape.dim[1], (long long)x->shape.dim[1]);
        if ((s = check_vec(c, 2, w->shape.dim[0]))) return s;
        *out = nne_shape_2d(x->shape.dim[0], w->shape.dim[0]);
        return NNE_OK;
    }
    case NNE_OP_MAXPOOL2D:
    case NNE_OP_AVGPOOL2D:
        return infer_pool(c, out);
    case NNE_OP_GLOBAL_AVGPOOL: {
        if ((s = check_arity(c, 1, 1)) || (s = check_rank(c, 0, 4))) return s;
        const nne_tensor *x = in(c, 0);
        *out = nne_shape_4d(x->shape.dim[0], 1, 1, x->shape.dim[3]);
        return NNE_OK;
    }
    case NNE_OP_LEAKY_RELU:
        if (!isfinite(p->leaky.alpha)) FAIL(NNE_ERR_FORMAT, "alpha is not finite");
        /* fall through */
    case NNE_OP_RELU:
    case NNE_OP_RELU6:
    case NNE_OP_SIGMOID:
    case NNE_OP_TANH:
    case NNE_OP_HARDSWISH:
        if ((s = check_arity(c, 1, 1))) return s;
        *out = in(c, 0)->shape;
        return NNE_OK;
    case NNE_OP_ABS:
        if ((s = check_arity(c, 1, 1))) return s;
        *out = in(c, 0)->shape;
        return NNE_OK;
    case NNE_OP_QUANTIZE:
        if ((s = check_arity(c, 1, 2))) return s;
        if (in(c, 1) && !nne_shape_equal(&in(c, 1)->shape, &in(c, 0)->shape))
            FAIL(NNE_ERR_SHAPE, "means '%s' differ in shape from x", in(c, 1)->name);
        if (!range(p->quantize.train_mode, NNE_QUANTIZE_NOISE, NNE_QUANTIZE_STE))
            FAIL(NNE_ERR_FORMAT, "invalid train_mode %d", (int)p->quantize.train_mode);
        *out = in(c, 0)->shape;
        return NNE_OK;
    case NNE_OP_FACTORIZED_LIKELIHOOD: {
        if ((s = check_arity(c, 2, 2))) return s;
        const nne_tensor *x = in(c, 0), *q = in(c, 1);
        if (x->shape.ndim < 1) FAIL(NNE_ERR_SHAPE, "input must have rank >= 1");
        if (q->shape.ndim != 2 || q->shape.dim[0] != last_dim(x) ||
            q->shape.dim[1] != NNE_FACT_PARAMS)
            FAIL(NNE_ERR_SHAPE, "params '%s' must be [%lld, %d]", q->name,
                 (long long)last_dim(x), NNE_FACT_PARAMS);
        if (!(p->entropy.lik_min > 0.0f && p->entropy.lik_min < 1.0f))
            FAIL(NNE_ERR_FORMAT, "lik_min must be in (0, 1)");
        *out = x->shape;
        return NNE_OK;
    }
    case NNE_OP_GAUSSIAN_LIKELIHOOD:
        if ((s = check_arity(c, 2, 3))) return s;
        for (int k = 1; k < 3; k++)
            if (in(c, k) && !nne_shape_equal(&in(c, k)->shape, &in(c, 0)->shape))
                FAIL(NNE_ERR_SHAPE, "input %d '%s' differs in shape from x", k, in(c, k)->name);
        if (!(p->entropy.lik_min > 0.0f && p->entropy.lik_min < 1.0f))
            FAIL(NNE_ERR_FORMAT, "lik_min must be in (0, 1)");
        if (!(p->entropy.scale_min > 0.0f) || !isfinite(p->entropy.scale_min))
            FAIL(NNE_ERR_FORMAT, "scale_min must be > 0");
        *out = in(c, 0)->shape;
        return NNE_OK;
    case NNE_OP_PRELU: {
        if ((s = check_arity(c, 2, 2))) return s;
        const nne_tensor *x = in(c, 0), *a = in(c, 1);
        if (x->shape.ndim < 1) FAIL(NNE_ERR_SHAPE, "input must have rank >= 1");
        if (a->shape.ndim != 1 || (a->shape.dim[0] != 1 && a->shape.dim[0] != last_dim(x)))
            FAIL(NNE_ERR_SHAPE, "slope '%s' must be [1] or [%lld]", a->name,
                 (long long)last_dim(x));
        *out = x->shape;
        return NNE_OK;
    }
    case NNE_OP_GDN:
    case NNE_OP_IGDN: {
        if ((s = check_arity(c, 3, 3))) return s;
        const nne_tensor *x = in(c, 0), *gm = in(c, 2);
        if (x->shape.ndim < 1) FAIL(NNE_ERR_SHAPE, "input must have rank >= 1");
        int64_t ch = last_dim(x);
        if ((s = check_vec(c, 1, ch))) return s;
        if (gm->shape.ndim != 2 || gm->shape.dim[0] != ch || gm->shape.dim[1] != ch)
            FAIL(NNE_ERR_SHAPE, "gamma '%s' must be [%lld, %lld]", gm->name, (long long)ch,
                 (long long)ch);
        *out = x->shape;
        return NNE_OK;
    }
    case NNE_OP_BATCHNORM: {
        if ((s = check_arity(c, 5, 5))) return s;
        const nne_tensor *x = in(c, 0);
        if (x->shape.ndim < 1) FAIL(NNE_ERR_SHAPE, "input must have rank >= 1");
        for (int k = 1; k < 5; k++)
            if ((s = check_vec(c, k, last_dim(x)))) return s;
        if (!(p->bn.eps > 0.0f) || !isfinite(p->bn.eps)) FAIL(NNE_ERR_FORMAT, "eps must be > 0");
        *out = x->shape;
        return NNE_OK;
    }
    case NNE_OP_ADD: {
        if ((s = check_arity(c, 2, 2))) return s;
        if (!nne_shape_equal(&in(c, 0)->shape, &in(c, 1)->shape))
            FAIL(NNE_ERR_SHAPE, "operands '%s' and '%s' differ in shape", in(c, 0)->name,
                 in(c, 1)->name);
        *out = in(c, 0)->shape;
        return NNE_OK;
    }
    case NNE_OP_CONCAT: {
        if ((s = check_arity(c, 1, NNE_MAX_NODE_INPUTS))) return s;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] < 0) FAIL(NNE_ERR_FORMAT, "input %d is missing", k);
        const nne_tensor *x0 = in(c, 0);
        int32_t rank = x0->shape.ndim, axis = p->concat.axis;
        if (axis < 0) axis += rank;
        if (rank < 1 || axis < 0 || axis >= rank)
            FAIL(NNE_ERR_FORMAT, "axis %d out of range for rank %d", (int)p->concat.axis,
                 (int)rank);
        nne_shape o = x0->shape;
        for (int k = 1; k < n->n_inputs; k++) {
            const nne_tensor *xk = in(c, k);
            if (xk->shape.ndim != rank) FAIL(NNE_ERR_SHAPE, "inputs differ in rank");
            for (int d = 0; d < rank; d++)
                if (d != axis && xk->shape.dim[d] != o.dim[d])
                    FAIL(NNE_ERR_SHAPE, "input '%s' differs in dimension %d", xk->name, d);
            o.dim[axis] += xk->shape.dim[axis];
        }
        *out = o;
        return NNE_OK;
    }
    case NNE_OP_UPSAMPLE: {
        if ((s = check_arity(c, 1, 1)) || (s = check_rank(c, 0, 4))) return s;
        const nne_upsample_params *u = &p->upsample;
        if (!range(u->scale[0], 1, MAX_UPSAMPLE) || !range(u->scale[1], 1, MAX_UPSAMPLE))
            FAIL(NNE_ERR_FORMAT, "scale outside [1, %d]", MAX_UPSAMPLE);
        if (!range(u->mode, NNE_UPSAMPLE_NEAREST, NNE_UPSAMPLE_BILINEAR))
            FAIL(NNE_ERR_FORMAT, "invalid mode %d", (int)u->mode);
        const nne_tensor *x = in(c, 0);
        *out = nne_shape_4d(x->shape.dim[0], x->shape.dim[1] * u->scale[0],
                            x->shape.dim[2] * u->scale[1], x->shape.dim[3]);
        return NNE_OK;
    }
    case NNE_OP_SOFTMAX:
        if ((s = check_arity(c, 1, 1))) return s;
        if (in(c, 0)->shape.ndim < 1) FAIL(NNE_ERR_SHAPE, "input must have rank >= 1");
        *out = in(c, 0)->shape;
        return NNE_OK;
    case NNE_OP_RESHAPE: {
        if ((s = check_arity(c, 1, 1))) return s;
        const nne_reshape_params *r = &p->reshape;
        if (!range(r->ndim, 1, NNE_MAX_DIMS)) FAIL(NNE_ERR_FORMAT, "rank %d", (int)r->ndim);
        int64_t numel = nne_shape_numel(&in(c, 0)->shape), known = 1;
        int infer_at = -1;
        nne_shape o;
        memset(&o, 0, sizeof o);
        o.ndim = r->ndim;
        for (int d = 0; d < r->ndim; d++) {
            if (r->dim[d] == -1) {
                if (infer_at >= 0) FAIL(NNE_ERR_FORMAT, "more than one -1 dimension");
                infer_at = d;
            } else if (!range(r->dim[d], 1, NNE_MAX_DIM)) {
                FAIL(NNE_ERR_FORMAT, "dimension %d is %d", d, (int)r->dim[d]);
            } else {
                o.dim[d] = r->dim[d];
                if (__builtin_mul_overflow(known, (int64_t)r->dim[d], &known) ||
                    known > NNE_MAX_ELEMENTS)
                    FAIL(NNE_ERR_LIMIT, "shape too large");
            }
        }
        if (infer_at >= 0) {
            if (numel % known) FAIL(NNE_ERR_SHAPE, "cannot infer the -1 dimension");
            o.dim[infer_at] = numel / known;
            known = numel;
        }
        if (known != numel)
            FAIL(NNE_ERR_SHAPE, "reshape changes the element count (%lld -> %lld)",
                 (long long)numel, (long long)known);
        *out = o;
        return NNE_OK;
    }
    case NNE_OP_FLATTEN: {
        if ((s = check_arity(c, 1, 1))) return s;
        const nne_tensor *x = in(c, 0);
        if (x->shape.ndim < 1) FAIL(NNE_ERR_SHAPE, "input must have rank >= 1");
        *out = nne_shape_2d(x->shape.dim[0], nne_shape_numel(&x->shape) / x->shape.dim[0]);
        return NNE_OK;
    }
    default:
        FAIL(NNE_ERR_FORMAT, "unknown op type %d", (int)n->op);
    }
}

/* Inputs that are parameters (must be constants): conv/dense weights and bias, PReLU slope,
 * GDN beta/gamma, batchnorm statistics. Other inputs are activations. */
static bool is_param_input(nne_op_type op, int k) {
    switch (op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
    case NNE_OP_DENSE:
    case NNE_OP_PRELU:
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
    case NNE_OP_BATCHNORM:
        return k >= 1;
    case NNE_OP_FACTORIZED_LIKELIHOOD:
        return k == 1;
    default:
        return false;
    }
}

nne_status nne_graph_infer(nne_graph *g) {
    if (g->inferred) return NNE_OK;
    nne_graph_priv *pv = g->priv;
    g->planned = false;
    int32_t *producer = nne_realloc_array(pv->producer, (size_t)g->n_tensors + 1, sizeof *producer);
    if (!producer) return NNE_ERR_NOMEM;
    pv->producer = producer;
    for (int32_t i = 0; i < g->n_tensors; i++) producer[i] = -1;
    /* Which activations are produced by which node; each exactly once. */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        int32_t o = g->nodes[i].output;
        if (o < 0 || o >= g->n_tensors || g->tensors[o].kind != NNE_TENSOR_ACTIVATION)
            return nne_error(NNE_ERR_FORMAT, "node '%s': output is not an activation tensor",
                             g->nodes[i].name);
        if (producer[o] >= 0)
            return nne_error(NNE_ERR_FORMAT, "tensor '%s' is produced by two nodes",
                             g->tensors[o].name);
        producer[o] = i;
    }
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind == NNE_TENSOR_ACTIVATION && producer[i] < 0)
            return nne_error(NNE_ERR_FORMAT, "activation '%s' has no producing node", t->name);
        if (t->kind != NNE_TENSOR_ACTIVATION) {
            nne_status s = nne_shape_validate(&t->shape);
            if (s) return nne_error(s, "tensor '%s': %s", t->name, nne_last_error());
        }
        if (t->kind == NNE_TENSOR_CONSTANT && !t->data)
            return nne_error(NNE_ERR_FORMAT, "constant '%s' has no data", t->name);
        if (t->quant.count) {
            const nne_quant *q = &t->quant;
            int64_t want = q->axis < 0 ? 1 : (q->axis < t->shape.ndim ? t->shape.dim[q->axis] : -1);
            if (t->kind != NNE_TENSOR_ACTIVATION && q->count != want)
                return nne_error(NNE_ERR_FORMAT, "tensor '%s': %d quantization scales for axis %d",
                                 t->name, (int)q->count, (int)q->axis);
            for (int32_t k = 0; k < q->count; k++)
                if (!(q->scale[k] > 0.0f) || !isfinite(q->scale[k]))
                    return nne_error(NNE_ERR_FORMAT, "tensor '%s': scale %d is not positive",
                                     t->name, (int)k);
        }
    }
    for (int32_t i = 0; i < g->n_inputs; i++) {
        int32_t t = g->inputs[i];
        if (t < 0 || t >= g->n_tensors || g->tensors[t].kind != NNE_TENSOR_INPUT)
            return nne_error(NNE_ERR_FORMAT, "graph input %d is not an input tensor", (int)i);
    }
    for (int32_t i = 0; i < g->n_outputs; i++) {
        int32_t t = g->outputs[i];
        if (t < 0 || t >= g->n_tensors || g->tensors[t].kind == NNE_TENSOR_CONSTANT)
            return nne_error(NNE_ERR_FORMAT, "graph output %d is not an input or activation",
                             (int)i);
    }
    ctx c = {.g = g, .producer = producer};
    for (int32_t i = 0; i < g->n_nodes; i++) {
        nne_node *n = &g->nodes[i];
        c.n = n;
        /* Topological order: every activation input is produced by an earlier node. */
        for (int k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t < -1 || t >= g->n_tensors)
                return node_error(&c, NNE_ERR_FORMAT, "bad input index");
            if (t < 0) continue;
            if (g->tensors[t].kind == NNE_TENSOR_ACTIVATION && producer[t] >= i)
                return node_error(&c, NNE_ERR_FORMAT,
                                  "input '%s' is produced later (not in "
                                  "topological order)",
                                  g->tensors[t].name);
            bool param = is_param_input(n->op, k);
            if (param && g->tensors[t].kind != NNE_TENSOR_CONSTANT)
                return node_error(&c, NNE_ERR_FORMAT, "parameter input %d '%s' must be a constant",
                                  k, g->tensors[t].name);
            if (!param && g->tensors[t].kind == NNE_TENSOR_CONSTANT)
                return node_error(&c, NNE_ERR_FORMAT, "data input %d '%s' must not be a constant",
                                  k, g->tensors[t].name);
        }
        nne_shape out;
        memset(&out, 0, sizeof out);
        nne_status s = infer_node(&c, &out);
        if (s) return s;
        if ((s = nne_shape_validate(&out)))
            return node_error(&c, s, "output shape: %s", nne_last_error());
        nne_tensor *o = &g->tensors[n->output];
        o->shape = out;
        /* Data type: float ops keep their input's dtype; f16 is storage only. */
        nne_dtype dt = g->tensors[n->inputs[0]].dtype;
        if (dt == NNE_F16)
            return node_error(&c, NNE_ERR_UNSUPPORTED, "f16 activations are storage only");
        for (int k = 1; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t < 0) continue;
            nne_dtype dk = g->tensors[t].dtype;
            if (!is_param_input(n->op, k) && dk != dt)
                return node_error(&c, NNE_ERR_FORMAT, "inputs differ in dtype (%s vs %s)",
                                  nne_dtype_name(dt), nne_dtype_name(dk));
        }
        o->dtype = dt;
    }
    g->inferred = true;
    return NNE_OK;
}
