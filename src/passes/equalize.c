/* Cross-layer equalization (docs/quantization.md, "Cross-layer equalization"; Nagel et al.
 * 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction", 4.1):
 * rescale the channels between two convolutions so that each channel's weight range is the
 * same on both sides, without changing the f32 function. */
#include <math.h>
#include <string.h>

#include "nnedge/passes.h"
#include "passes_internal.h"

#define DEFAULT_SWEEPS 64
#define CONVERGED      1e-4 /* |s_c - 1| of every channel in a sweep */

static bool is_conv(const nne_graph *g, const nne_node *n) {
    if (n->op != NNE_OP_CONV2D && n->op != NNE_OP_CONV_TRANSPOSE2D) return false;
    if (n->params.conv.groups != 1 || n->n_inputs < 2 || n->inputs[1] < 0) return false;
    const nne_tensor *w = &g->tensors[n->inputs[1]];
    if (w->kind != NNE_TENSOR_CONSTANT || w->dtype != NNE_F32 || w->shape.ndim != 4) return false;
    const int32_t b = n->n_inputs > 2 ? n->inputs[2] : -1;
    return b < 0 || (g->tensors[b].kind == NNE_TENSOR_CONSTANT && g->tensors[b].dtype == NNE_F32);
}

/* Activations with f(s x) = s f(x) for every s > 0 (per channel: PReLU slopes stay). */
static bool is_homogeneous(const nne_graph *g, const nne_node *n) {
    if (n->op == NNE_OP_RELU || n->op == NNE_OP_LEAKY_RELU) return true;
    return n->op == NNE_OP_PRELU && n->n_inputs == 2 &&
           g->tensors[n->inputs[1]].kind == NNE_TENSOR_CONSTANT;
}

/* Readers of tensor t (a graph output counts as one more). */
static int32_t readers(const nne_graph *g, int32_t t) {
    int32_t r = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_inputs; k++) r += g->nodes[i].inputs[k] == t;
    for (int32_t i = 0; i < g->n_outputs; i++) r += g->outputs[i] == t;
    return r;
}

/* The node reading t, if it is the only reader (and t no graph output); else -1. */
static int32_t sole_reader(const nne_graph *g, int32_t t) {
    if (readers(g, t) != 1) return -1;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].inputs[0] == t) return i;
    return -1; /* read as a weight or a second input */
}

typedef struct pair {
    int32_t a, b; /* conv nodes: a -> activation -> b */
    int32_t m;    /* the activation node, -1 for a linear pair (opts.linear) */
} pair;

/* max |w| of output channel c of a (axis 0 of OHWI), of input channel c of b (the last axis,
 * conv2d and conv_transpose2d alike: docs/layout.md). */
static void ranges(const nne_tensor *wa, const float *a, const nne_tensor *wb, const float *b,
                   float *ra, float *rb) {
    const int32_t ch = (int32_t)wa->shape.dim[0];
    const size_t per_a = (size_t)nne_shape_numel(&wa->shape) / (size_t)ch,
                 rows_b = (size_t)nne_shape_numel(&wb->shape) / (size_t)ch;
    for (int32_t c = 0; c < ch; c++) {
        float m = 0.0f;
        for (size_t i = 0; i < per_a; i++) m = fmaxf(m, fabsf(a[(size_t)c * per_a + i]));
        ra[c] = m;
        rb[c] = 0.0f;
    }
    for (size_t r = 0; r < rows_b; r++)
        for (int32_t c = 0; c < ch; c++) rb[c] = fmaxf(rb[c], fabsf(b[r * (size_t)ch + c]));
}

/* Channel c of the tensor between a and b scaled by 1 / s[c]: output channel c of a (weights
 * and bias) divided by s[c], input channel c of b multiplied by it. y_a[c] / s and
 * PReLU(y / s) = PReLU(y) / s (s > 0); b multiplies it back. s[c] == 1 leaves c exactly. */
static void scale_pair(const nne_graph *g, const nne_node *a, const nne_node *b, float **copy,
                       const float *s) {
    const nne_tensor *wa = &g->tensors[a->inputs[1]], *wb = &g->tensors[b->inputs[1]];
    float *fa = copy[a->inputs[1]], *fb = copy[b->inputs[1]];
    float *ba = a->n_inputs > 2 && a->inputs[2] >= 0 ? copy[a->inputs[2]] : NULL;
    const int32_t ch = (int32_t)wa->shape.dim[0];
    const size_t per_a = (size_t)nne_shape_numel(&wa->shape) / (size_t)ch,
                 rows_b = (size_t)nne_shape_numel(&wb->shape) / (size_t)ch;
    for (int32_t c = 0; c < ch; c++) {
        if (s[c] == 1.0f) continue;
        for (size_t i = 0; i < per_a; i++) fa[(size_t)c * per_a + i] /= s[c];
        if (ba) ba[c] /= s[c];
        for (size_t r = 0; r < rows_b; r++) fb[r * (size_t)ch + c] *= s[c];
    }
}

/* Activation equalization's s_c = 1 / t_c = r_c^alpha, r_c = max(ra[c] / max ra,
 * rm[c] / max rm) (nne_equalize_kind). */
static void act_scales(const float *ra, const float *rm, int32_t ch, float alpha, float *s) {
    float ma = 0.0f, mm = 0.0f;
    for (int32_t c = 0; c < ch; c++) ma = fmaxf(ma, ra[c]), mm = fmaxf(mm, rm[c]);
    for (int32_t c = 0; c < ch; c++) {
        const float r = fmaxf(ma > 0.0f ? ra[c] / ma : 0.0f, mm > 0.0f ? rm[c] / mm : 0.0f);
        s[c] = r > 0.0f && r < 1.0f ? powf(r, alpha) : 1.0f;
    }
}

nne_status nne_equalize_graph(nne_graph *g, const nne_equalize_opts *o, nne_graph **out,
                              nne_equalize_info *info) {
    *out = NULL;
    if (info) memset(info, 0, sizeof *info);
    nne_status s = nne_graph_infer(g);
    if (s) return s;
    const int32_t max_sweeps = o && o->max_sweeps > 0 ? o->max_sweeps : DEFAULT_SWEEPS;
    const bool by_act = o && o->kind == NNE_EQUALIZE_ACTIVATIONS;
    if (o && o->kind != NNE_EQUALIZE_WEIGHTS && !by_act)
        return nne_error(NNE_ERR_INVALID_ARG, "equalize: kind %d", (int)o->kind);
    if (by_act && (!o->act_range || !(o->alpha >= 0.0f && o->alpha <= 1.0f)))
        return nne_error(NNE_ERR_INVALID_ARG, "equalize: activations need ranges and alpha in "
                                              "[0, 1] (alpha %g)",
                         (double)(o->act_range ? o->alpha : 0.0f));
    const float alpha = by_act && o->alpha > 0.0f ? o->alpha : 1.0f;
    pair *pairs = nne_calloc((size_t)g->n_nodes + 1, sizeof *pairs);
    nne_tplan *plan = nne_calloc((size_t)g->n_tensors + 1, sizeof *plan);
    float **copy = nne_calloc((size_t)g->n_tensors + 1, sizeof *copy); /* [tensor] scaled */
    float *ra = NULL, *rb = NULL;
    int32_t n_pairs = 0, max_ch = 1;
    if (!pairs || !plan || !copy) s = NNE_ERR_NOMEM;
    /* Pairs: conv a -> homogeneous activation -> conv b, each tensor read only along it. A
     * conv -> conv pair with no activation between (a linear tensor, e.g. a latent, which
     * other graphs may read in its own units) only with opts.linear. */
    const bool linear = o && o->linear;
    for (int32_t i = 0; i < g->n_nodes && !s; i++) {
        const nne_node *a = &g->nodes[i];
        if (!is_conv(g, a)) continue;
        int32_t m = sole_reader(g, a->output), b = -1;
        if (m < 0) continue;
        if (linear && is_conv(g, &g->nodes[m])) {
            b = m;
            m = -1;
        } else if (is_homogeneous(g, &g->nodes[m])) {
            b = sole_reader(g, g->nodes[m].output);
        }
        if (b < 0 || !is_conv(g, &g->nodes[b])) continue;
        const int32_t ch = (int32_t)g->tensors[a->inputs[1]].shape.dim[0];
        if (g->tensors[g->nodes[b].inputs[1]].shape.dim[3] != ch) continue;
        if (by_act &&
            (!o->act_range[a->output] || (m >= 0 && !o->act_range[g->nodes[m].output])))
            continue;
        pairs[n_pairs++] = (pair){i, b, m};
        if (ch > max_ch) max_ch = ch;
    }
    /* Scaled copies of every weight and bias the pairs touch. */
    for (int32_t p = 0; p < n_pairs && !s; p++)
        for (int k = 0; k < 2 && !s; k++) {
            const nne_node *n = &g->nodes[k ? pairs[p].b : pairs[p].a];
            for (int32_t j = 1; j < n->n_inputs && j < 3 && !s; j++) {
                const int32_t t = n->inputs[j];
                if (t < 0 || copy[t]) continue;
                const size_t e = (size_t)nne_shape_numel(&g->tensors[t].shape);
                if (!(copy[t] = nne_malloc(e * sizeof(float) + 1))) s = NNE_ERR_NOMEM;
                if (!s) memcpy(copy[t], g->tensors[t].data, e * sizeof(float));
            }
        }
    if (!s && !((ra = nne_malloc((size_t)max_ch * sizeof *ra)) &&
                (rb = nne_malloc((size_t)max_ch * sizeof *rb))))
        s = NNE_ERR_NOMEM;
    int32_t sweep = 0;
    if (by_act && !s && n_pairs > 0) { /* one sweep: the pairs' activation tensors differ */
        for (int32_t p = 0; p < n_pairs; p++) {
            const nne_node *a = &g->nodes[pairs[p].a], *b = &g->nodes[pairs[p].b];
            const int32_t m = pairs[p].m; /* a linear pair has one tensor between */
            act_scales(o->act_range[a->output],
                       o->act_range[m >= 0 ? g->nodes[m].output : a->output],
                       (int32_t)g->tensors[a->inputs[1]].shape.dim[0], alpha, ra);
            scale_pair(g, a, b, copy, ra);
        }
        sweep = 1;
    }
    for (bool moved = n_pairs > 0 && !by_act; !s && moved && sweep < max_sweeps; sweep++) {
        moved = false;
        for (int32_t p = 0; p < n_pairs; p++) {
            const nne_node *a = &g->nodes[pairs[p].a], *b = &g->nodes[pairs[p].b];
            const nne_tensor *wa = &g->tensors[a->inputs[1]], *wb = &g->tensors[b->inputs[1]];
            const int32_t ch = (int32_t)wa->shape.dim[0];
            ranges(wa, copy[a->inputs[1]], wb, copy[b->inputs[1]], ra, rb);
            for (int32_t c = 0; c < ch; c++) {
                /* a dead channel on either side has nothing to balance */
                const float sc = ra[c] > 0.0f && rb[c] > 0.0f ? sqrtf(ra[c] / rb[c]) : 1.0f;
                ra[c] = fabsf(sc - 1.0f) > CONVERGED ? sc : 1.0f; /* ra: the scales now */
                moved = moved || ra[c] != 1.0f;
            }
            scale_pair(g, a, b, copy, ra);
        }
    }
    if (!s) {
        for (int32_t t = 0; t < g->n_tensors; t++) {
            plan[t].dtype = g->tensors[t].dtype;
            plan[t].data = copy[t] ? copy[t] : g->tensors[t].data;
            plan[t].quant.axis = -1;
        }
        s = nne_pass_rebuild(g, plan, false, out);
    }
    if (!s && info) {
        info->pairs = n_pairs;
        info->sweeps = sweep;
    }
    for (int32_t t = 0; copy && t < g->n_tensors; t++) nne_free(copy[t]);
    nne_free(copy);
    nne_free(plan);
    nne_free(pairs);
    nne_free(ra);
    nne_free(rb);
    return s;
}
