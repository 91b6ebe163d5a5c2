/* PRNG and initialisation, parameter/gradient arenas, optimizers, gradient clipping and
 * learning-rate schedules. Formulas: include/nnedge/train.h and docs/training.md. */
#include <math.h>
#include <string.h>

#include "nnedge/train.h"

/* ---- PRNG ------------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nne_rng_seed(nne_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t nne_rng_u64(nne_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

float nne_rng_uniform_f32(nne_rng *r) {
    return (float)(nne_rng_u64(r) >> 40) * (1.0f / 16777216.0f); /* 24 bits: exact in f32 */
}

float nne_rng_uniform_range(nne_rng *r, float lo, float hi) {
    const float u = nne_rng_uniform_f32(r);
    return lo + (hi - lo) * u;
}

/* ---- Trainable tensors of a graph ------------------------------------------------------ */

/* Is input k of node n a trainable parameter, and does it get weight decay? */
static bool is_param_input(const nne_node *n, int32_t k, bool *decay) {
    *decay = false;
    switch (n->op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
        *decay = k == 1;
        return k == 1 || k == 2;
    case NNE_OP_PRELU:
        return k == 1;
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
        return k == 1 || k == 2;
    case NNE_OP_FACTORIZED_LIKELIHOOD:
        return k == 1;
    default:
        return false;
    }
}

/* CompressAI's EntropyBottleneck initialisation (init_scale 10, filters (3, 3, 3)): every
 * matrix entry of layer k is log(expm1(1 / scale / d_{k+1})) with scale = 10^(1/4) and
 * d = (1, 3, 3, 3, 1), biases uniform in [-0.5, 0.5), gating factors 0. */
static void init_factorized(float *d, int64_t channels, nne_rng *rng) {
    static const int dims[NNE_FACT_LAYERS + 1] = {1, 3, 3, 3, 1};
    const double scale = pow(10.0, 1.0 / NNE_FACT_LAYERS);
    for (int64_t ch = 0; ch < channels; ch++) {
        float *p = d + ch * NNE_FACT_PARAMS;
        int o = 0;
        for (int k = 0; k < NNE_FACT_LAYERS; k++) { /* H_k */
            const float h = (float)log(expm1(1.0 / scale / dims[k + 1]));
            for (int e = 0; e < dims[k] * dims[k + 1]; e++) p[o++] = h;
        }
        for (int k = 0; k < NNE_FACT_LAYERS; k++) /* b_k */
            for (int e = 0; e < dims[k + 1]; e++) p[o++] = nne_rng_uniform_range(rng, -0.5f, 0.5f);
        while (o < NNE_FACT_PARAMS) p[o++] = 0.0f; /* a_k */
    }
}

nne_status nne_train_init_params(nne_graph *g, uint64_t seed) {
    if (!g || !g->inferred)
        return nne_error(NNE_ERR_INVALID_ARG, "train init: graph is NULL or not inferred");
    bool *done = nne_calloc((size_t)g->n_tensors, sizeof *done);
    if (!done) return NNE_ERR_NOMEM;
    nne_rng rng;
    nne_rng_seed(&rng, seed);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        for (int32_t k = 1; k < n->n_inputs; k++) {
            const int32_t ti = n->inputs[k];
            bool decay;
            if (ti < 0 || done[ti] || !is_param_input(n, k, &decay)) continue;
            nne_tensor *t = &g->tensors[ti];
            if (t->dtype != NNE_F32 || t->kind != NNE_TENSOR_CONSTANT) continue;
            done[ti] = true;
            float *d = t->data;
            const size_t cnt = (size_t)nne_shape_numel(&t->shape);
            if (n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D) {
                const nne_conv2d_geom *cg = &n->conv_geom;
                const int64_t per_group =
                    n->op == NNE_OP_CONV2D ? cg->ic / cg->groups : cg->oc / cg->groups;
                const int64_t fan_in = per_group * cg->kh * cg->kw;
                const float bound = (float)(1.0 / sqrt((double)fan_in));
                for (size_t e = 0; e < cnt; e++) d[e] = nne_rng_uniform_range(&rng, -bound, bound);
            } else if (n->op == NNE_OP_FACTORIZED_LIKELIHOOD) {
                init_factorized(d, t->shape.dim[0], &rng);
            } else if (n->op == NNE_OP_PRELU) {
                for (size_t e = 0; e < cnt; e++) d[e] = 0.25f;
            } else if (k == 1) { /* GDN beta */
                for (size_t e = 0; e < cnt; e++) d[e] = 1.0f;
            } else { /* GDN gamma [c][c] */
                const int64_t c = t->shape.dim[0];
                for (size_t e = 0; e < cnt; e++)
                    d[e] = (int64_t)e / c == (int64_t)e % c ? 0.1f : 0.0f;
            }
        }
    }
    nne_free(done);
    return NNE_OK;
}

/* ---- Parameter arena ------------------------------------------------------------------- */

nne_status nne_params_create(const nne_graph *g, nne_params **out) {
    *out = NULL;
    if (!g || !g->inferred)
        return nne_error(NNE_ERR_INVALID_ARG, "params: graph is NULL or not inferred");
    nne_params *p = nne_calloc(1, sizeof *p);
    int32_t *order = nne_calloc((size_t)g->n_tensors + 1, sizeof *order);
    bool *seen = nne_calloc((size_t)g->n_tensors + 1, sizeof *seen);
    bool *decay_of = nne_calloc((size_t)g->n_tensors + 1, sizeof *decay_of);
    bool *entropy_of = nne_calloc((size_t)g->n_tensors + 1, sizeof *entropy_of);
    nne_status st = NNE_OK;
    if (!p || !order || !seen || !decay_of || !entropy_of) {
        st = NNE_ERR_NOMEM;
        goto done;
    }
    /* Collect in node order; a tensor used by several nodes is one parameter. */
    int32_t n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *nd = &g->nodes[i];
        for (int32_t k = 1; k < nd->n_inputs; k++) {
            const int32_t ti = nd->inputs[k];
            bool decay;
            if (ti < 0 || !is_param_input(nd, k, &decay)) continue;
            const nne_tensor *t = &g->tensors[ti];
            if (t->kind != NNE_TENSOR_CONSTANT || t->dtype != NNE_F32) {
                st = nne_error(NNE_ERR_UNSUPPORTED,
                               "params: node '%s': parameter '%s' is not an f32 constant", nd->name,
                               t->name);
                goto done;
            }
            if (nd->op == NNE_OP_FACTORIZED_LIKELIHOOD) entropy_of[ti] = true;
            if (seen[ti]) {
                decay_of[ti] = decay_of[ti] && decay;
                continue;
            }
            seen[ti] = true;
            decay_of[ti] = decay;
            order[n++] = ti;
        }
    }
    p->items = nne_calloc((size_t)n + 1, sizeof *p->items);
    if (!p->items) {
        st = NNE_ERR_NOMEM;
        goto done;
    }
    /* Decayed tensors first, then the others, each group in node order. */
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t j = 0; j < n; j++) {
            const int32_t ti = order[j];
            if (decay_of[ti] != (pass == 0)) continue;
            nne_param *it = &p->items[p->n++];
            it->tensor = ti;
            it->offset = off;
            it->count = (size_t)nne_shape_numel(&g->tensors[ti].shape);
            it->decay = decay_of[ti];
            it->entropy = entropy_of[ti];
            /* Keep every tensor 64-byte aligned in the arena (16 floats). */
            if (!nne_size_add(off, nne_align_up(it->count, 16), &off)) {
                st = nne_error(NNE_ERR_NOMEM, "params: too many parameters");
                goto done;
            }
        }
        if (pass == 0) p->n_decay = off;
    }
    p->total = off;
    size_t bytes;
    if (!nne_size_mul(off ? off : 1, sizeof(float), &bytes)) {
        st = NNE_ERR_NOMEM;
        goto done;
    }
    p->data = nne_aligned_alloc(bytes);
    p->grad = nne_aligned_alloc(bytes);
    if (!p->data || !p->grad) {
        st = NNE_ERR_NOMEM;
        goto done;
    }
    memset(p->data, 0, bytes); /* alignment gaps stay 0: no gradient, no update */
    memset(p->grad, 0, bytes);
    nne_params_load(p, g);
done:
    nne_free(order);
    nne_free(seen);
    nne_free(decay_of);
    nne_free(entropy_of);
    if (st != NNE_OK) {
        nne_params_free(p);
        return st == NNE_ERR_NOMEM && !*nne_last_error()
                   ? nne_error(NNE_ERR_NOMEM, "params: out of memory")
                   : st;
    }
    *out = p;
    return NNE_OK;
}

void nne_params_free(nne_params *p) {
    if (!p) return;
    nne_free(p->items);
    nne_free(p->keep);
    nne_aligned_free(p->data);
    nne_aligned_free(p->grad);
    nne_free(p);
}

void nne_params_zero_grad(nne_params *p) { memset(p->grad, 0, p->total * sizeof(float)); }

void nne_params_load(nne_params *p, const nne_graph *g) {
    for (int32_t i = 0; i < p->n; i++)
        memcpy(p->data + p->items[i].offset, g->tensors[p->items[i].tensor].data,
               p->items[i].count * sizeof(float));
}

void nne_params_store(const nne_params *p, nne_graph *g) {
    for (int32_t i = 0; i < p->n; i++)
        memcpy(g->tensors[p->items[i].tensor].data, p->data + p->items[i].offset,
               p->items[i].count * sizeof(float));
}

int32_t nne_params_find(const nne_params *p, int32_t tensor) {
    for (int32_t i = 0; i < p->n; i++)
        if (p->items[i].tensor == tensor) return i;
    return -1;
}

/* ---- Optimizers ------------------------------------------------------------------------ */

nne_optim_config nne_optim_config_adam(void) {
    nne_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = NNE_OPTIM_ADAM;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    return c;
}

nne_optim_config nne_optim_config_sgd(float momentum) {
    nne_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = NNE_OPTIM_SGD;
    c.momentum = momentum;
    return c;
}

nne_status nne_optim_create(const nne_optim_config *cfg, size_t n, nne_optim **out) {
    *out = NULL;
    if (!cfg || (cfg->kind != NNE_OPTIM_SGD && cfg->kind != NNE_OPTIM_ADAM))
        return nne_error(NNE_ERR_INVALID_ARG, "optimizer: unknown kind");
    if (cfg->kind == NNE_OPTIM_ADAM &&
        (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0) || !(cfg->beta2 >= 0.0 && cfg->beta2 < 1.0) ||
         !(cfg->eps > 0.0)))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "optimizer: Adam needs 0 <= beta1, beta2 < 1 and eps > 0 (got %g, %g, %g)",
                         cfg->beta1, cfg->beta2, cfg->eps);
    if (!(cfg->momentum >= 0.0f && cfg->momentum < 1.0f) || !(cfg->weight_decay >= 0.0f) ||
        !(cfg->clip_norm >= 0.0f))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "optimizer: momentum must be in [0, 1), weight decay and clip norm >= 0");
    nne_optim *o = nne_calloc(1, sizeof *o);
    if (!o) return NNE_ERR_NOMEM;
    o->cfg = *cfg;
    o->n = n;
    o->m = nne_calloc(n ? n : 1, sizeof(float));
    if (cfg->kind == NNE_OPTIM_ADAM) o->v = nne_calloc(n ? n : 1, sizeof(float));
    if (!o->m || (cfg->kind == NNE_OPTIM_ADAM && !o->v)) {
        nne_optim_free(o);
        return NNE_ERR_NOMEM;
    }
    *out = o;
    return NNE_OK;
}

void nne_optim_free(nne_optim *o) {
    if (!o) return;
    nne_free(o->m);
    nne_free(o->v);
    nne_free(o);
}

void nne_optim_step_scaled(nne_optim *o, float *p, const float *g, size_t n_decay, float lr,
                           const float *lr_scale) {
    const size_t n = o->n;
    const nne_optim_config *c = &o->cfg;
    o->t++;
    if (c->weight_decay > 0.0f) {
        /* Decoupled decay (AdamW / torch.optim.AdamW's p.mul_(1 - lr * wd)). */
        const float keep = 1.0f - lr * c->weight_decay;
        for (size_t i = 0; i < n_decay && i < n; i++)
            p[i] *= lr_scale ? 1.0f - lr * lr_scale[i] * c->weight_decay : keep;
    }
    if (c->kind == NNE_OPTIM_ADAM) {
        /* Coefficients in double, rounded to f32 once, as PyTorch's Python scalars are. */
        const double bc1 = 1.0 - pow(c->beta1, (double)o->t);
        const double bc2 = 1.0 - pow(c->beta2, (double)o->t);
        const float step_size = (float)((double)lr / bc1);
        const float bc2_sqrt = (float)sqrt(bc2);
        const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
        const float a1 = (float)(1.0 - c->beta1), a2 = (float)(1.0 - c->beta2);
        float *m = o->m, *v = o->v;
        for (size_t i = 0; i < n; i++) {
            m[i] = b1 * m[i] + a1 * g[i];
            v[i] = b2 * v[i] + a2 * g[i] * g[i];
            const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
            const float ss = lr_scale ? step_size * lr_scale[i] : step_size;
            p[i] -= ss * (m[i] / denom);
        }
    } else if (c->momentum > 0.0f) {
        float *buf = o->m;
        for (size_t i = 0; i < n; i++) {
            buf[i] = c->momentum * buf[i] + g[i];
            p[i] -= (lr_scale ? lr * lr_scale[i] : lr) * buf[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) p[i] -= (lr_scale ? lr * lr_scale[i] : lr) * g[i];
    }
}

void nne_optim_step(nne_optim *o, float *p, const float *g, size_t n_decay, float lr) {
    nne_optim_step_scaled(o, p, g, n_decay, lr, NULL);
}

double nne_clip_grad_norm(float *g, size_t n, double max_norm) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)g[i] * (double)g[i];
    const double norm = sqrt(sum);
    if (max_norm > 0.0 && norm > max_norm) {
        const float coef = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < n; i++) g[i] *= coef;
    }
    return norm;
}

/* ---- Learning-rate schedules ----------------------------------------------------------- */

float nne_lr_at(const nne_lr_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (s->warmup > 0 && step < s->warmup)
        return (float)((double)s->lr * (double)(step + 1) / (double)s->warmup);
    const int64_t t = step - (s->warmup > 0 ? s->warmup : 0);
    switch (s->kind) {
    case NNE_LR_STEP: {
        const int64_t k = s->step_size > 0 ? t / s->step_size : 0;
        return (float)((double)s->lr * pow((double)s->gamma, (double)k));
    }
    case NNE_LR_COSINE: {
        const int64_t total = s->total_steps - (s->warmup > 0 ? s->warmup : 0);
        if (total <= 0) return s->min_lr;
        const double frac = t >= total ? 1.0 : (double)t / (double)total;
        return (float)((double)s->min_lr + ((double)s->lr - (double)s->min_lr) * 0.5 *
                                               (1.0 + cos(3.14159265358979323846 * frac)));
    }
    case NNE_LR_CONSTANT:
    default:
        return s->lr;
    }
}
