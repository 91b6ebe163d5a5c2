/* Quantization-aware training: fake quantization with a straight-through estimator, the QAT
 * state of a graph (which tensors, their ranges, STE masks), its metadata form, and the
 * knowledge-distillation softmax loss. The trainer calls the hooks of qat_internal.h.
 * docs/quantization.md section 17, docs/training.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qat_internal.h"

/* ---- fake quantization ------------------------------------------------------------------ */

void nne_fake_quant_act_forward(size_t count, const float *x, float scale, int32_t zero_point,
                                bool pow2, float *y, uint8_t *mask) {
    for (size_t i = 0; i < count; i++) {
        /* One code beyond each end marks saturation; the rounding is nne_quantize_value's. */
        const int32_t c = nne_quantize_value(x[i], scale, zero_point, -129, 128, pow2);
        const int32_t q = c < -128 ? -128 : c > 127 ? 127 : c;
        if (mask) mask[i] = (uint8_t)(c == q);
        y[i] = (float)(q - zero_point) * scale; /* = nne_dequantize_s8_f32__ref */
    }
}

void nne_fake_quant_backward(size_t count, const uint8_t *mask, const float *dy, float *dx) {
    for (size_t i = 0; i < count; i++) dx[i] = mask[i] ? dy[i] : 0.0f;
}

nne_status nne_fake_quant_weight_forward(const nne_shape *shape, const float *w, nne_qscheme scheme,
                                         float *y, uint8_t *mask, float *scale) {
    return nne_fake_quant_weight_forward_qmax(shape, w, scheme, 127, y, mask, scale);
}

nne_status nne_fake_quant_weight_forward_qmax(const nne_shape *shape, const float *w,
                                              nne_qscheme scheme, int32_t qmax, float *y,
                                              uint8_t *mask, float *scale) {
    if (!shape || !w || !y) return nne_error(NNE_ERR_INVALID_ARG, "fake quant: NULL argument");
    if (qmax < 1 || qmax > 127)
        return nne_error(NNE_ERR_INVALID_ARG, "fake quant: qmax %d (expected 1..127)", (int)qmax);
    const int32_t groups =
        scheme == NNE_QSCHEME_PER_CHANNEL && shape->ndim > 0 ? (int32_t)shape->dim[0] : 1;
    float one, *s = scale;
    if (!s && groups > 1 && !(s = nne_malloc((size_t)groups * sizeof *s))) return NNE_ERR_NOMEM;
    if (!s) s = &one;
    nne_status st = nne_weight_scales_s8_qmax(shape, w, scheme, qmax, s);
    if (st == NNE_OK) {
        const bool pow2 = scheme == NNE_QSCHEME_POW2;
        const size_t n = (size_t)nne_shape_numel(shape), per = n / (size_t)groups;
        for (size_t i = 0; i < n; i++) {
            const float sc = s[i / per];
            const int32_t c = nne_quantize_value(w[i], sc, 0, -qmax - 1, qmax + 1, pow2);
            const int32_t q = c < -qmax ? -qmax : c > qmax ? qmax : c;
            if (mask) mask[i] = (uint8_t)(c == q);
            y[i] = (float)q * sc;
        }
    }
    if (s != scale && s != &one) nne_free(s);
    return st;
}

/* ---- the QAT state ------------------------------------------------------------------------ */

struct nne_qat {
    const nne_graph *g;
    nne_qat_config cfg;
    int32_t n_act;
    int32_t *act;   /* [n_act] graph tensors */
    float *lo, *hi; /* [n_act] ranges */
    bool *has;      /* [n_act] range set */
    bool *pinned;   /* [n_act] a graph output's parameters, held at cfg.output_lo/hi */
    uint8_t **mask; /* [n_act][numel] STE masks of the last forward */
    /* [n_act][numel] or NULL: the fake-quantized copy of a region's boundary input that
     * nodes outside the region also read (cfg.only); the tensor itself stays f32 */
    float **copy;
    int32_t *slot; /* [n_tensors] activation index, -1 */
    bool *node_in; /* [n_nodes] simulated in int8 (cfg.only) */
    int32_t n_w;
    int32_t *wt;     /* [n_w] weight tensors */
    bool *wslope;    /* [n_w] a pow2 PReLU slope tensor (nne_quantize_slopes_pow2) */
    float **wq;      /* [n_w][numel] fake-quantized weights of the last forward */
    uint8_t **wmask; /* [n_w][numel] */
    int32_t *wslot;  /* [n_tensors] weight index, -1 */
    /* Outputs that share their input's parameters but are not on its grid (pow2 PReLU:
     * x * slope), requantized with those parameters as cpu-s8 does. */
    int32_t n_rq;
    int32_t *rq_src;   /* [n_rq] the activation slot whose parameters they use */
    uint8_t **rq_mask; /* [n_rq][numel] STE masks of the last forward */
    int32_t *rq_slot;  /* [n_tensors] index, -1 */
    /* LSQ (cfg.lsq > 0): per activation slot, the rounding residue x/s - round(x/s) of the
     * last training forward in 1/254 steps (allocated on first use), dL/ds of the last
     * backward, and the Adam moments of log s; lsq_t updates so far */
    int8_t **frac;
    double *lsq_g, *lsq_m, *lsq_v;
    int64_t lsq_t;
};

/* LSQ trains slot s's scale: on, not the graph input (an image's [0, 1] grid is exact), not a
 * boundary copy. */
static bool lsq_on(const nne_qat *q, int32_t s) {
    return q->cfg.lsq > 0.0f && !q->copy[s] && !q->pinned[s] && q->act[s] != q->g->inputs[0];
}

/* The pinned slots (graph outputs under cfg.output_lo/hi) get that range back, whatever was
 * set, calibrated or loaded. */
static void pin_outputs(nne_qat *q) {
    for (int32_t s = 0; s < q->n_act; s++)
        if (q->pinned[s]) {
            q->lo[s] = fminf(q->cfg.output_lo, 0.0f);
            q->hi[s] = fmaxf(q->cfg.output_hi, 0.0f);
            q->has[s] = true;
        }
}

static size_t numel(const nne_graph *g, int32_t t) {
    return (size_t)nne_shape_numel(&g->tensors[t].shape);
}

/* The quantized activation whose parameters tensor t has: itself, or for the output of a
 * simulated relu / relu6 / max pool / reshape / flatten (and pow2 PReLU), that of its input
 * (recursively); -1 if none. Needs the activation slots. */
static int32_t param_slot_of(const nne_qat *q, int32_t t) {
    for (int32_t hops = 0; t >= 0 && q->slot[t] < 0 && hops < q->g->n_nodes; hops++) {
        const int32_t pr = nne_graph_producer(q->g, t);
        if (pr < 0 || !q->node_in[pr] ||
            !nne_op_s8_shares_quant(q->g->nodes[pr].op, q->cfg.scheme == NNE_QSCHEME_POW2))
            return -1;
        t = q->g->nodes[pr].inputs[0];
    }
    return t >= 0 ? q->slot[t] : -1;
}

void nne_qat_free(nne_qat *q) {
    if (!q) return;
    for (int32_t i = 0; q->mask && i < q->n_act; i++) nne_aligned_free(q->mask[i]);
    for (int32_t i = 0; q->copy && i < q->n_act; i++) nne_aligned_free(q->copy[i]);
    for (int32_t i = 0; q->wq && i < q->n_w; i++) nne_aligned_free(q->wq[i]);
    for (int32_t i = 0; q->wmask && i < q->n_w; i++) nne_aligned_free(q->wmask[i]);
    for (int32_t i = 0; q->rq_mask && i < q->n_rq; i++) nne_aligned_free(q->rq_mask[i]);
    for (int32_t i = 0; q->frac && i < q->n_act; i++) nne_aligned_free(q->frac[i]);
    nne_free(q->frac);
    nne_free(q->lsq_g);
    nne_free(q->lsq_m);
    nne_free(q->lsq_v);
    nne_free(q->act);
    nne_free(q->lo);
    nne_free(q->hi);
    nne_free(q->has);
    nne_free(q->pinned);
    nne_free(q->mask);
    nne_free(q->copy);
    nne_free(q->slot);
    nne_free(q->node_in);
    nne_free(q->wt);
    nne_free(q->wq);
    nne_free(q->wmask);
    nne_free(q->wslot);
    nne_free(q->wslope);
    nne_free(q->rq_src);
    nne_free(q->rq_mask);
    nne_free(q->rq_slot);
    nne_free(q);
}

/* True if node `name` is simulated under `only` (NULL: every node). */
static bool in_region(const char *const *only, const char *name) {
    if (!only) return true;
    for (; *only; only++)
        if (name && !strncmp(name, *only, strlen(*only))) return true;
    return false;
}

/* Who reads tensor t: some simulated node (*in), some other node or the loss (*out). */
static void readers(const nne_graph *g, const bool *node_in, int32_t t, bool *in, bool *out) {
    *in = *out = false;
    for (int32_t k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == t) *out = true;
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == t) *(node_in[i] ? in : out) = true;
}

nne_status nne_qat_create(const nne_graph *g, const nne_qat_config *c, nne_qat **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "qat: NULL output");
    *out = NULL;
    if (!g || !c || !g->inferred)
        return nne_error(NNE_ERR_INVALID_ARG, "qat: NULL or uninferred graph, or no config");
    if ((unsigned)c->scheme > NNE_QSCHEME_POW2 || !(c->ema >= 0.0f && c->ema <= 1.0f))
        return nne_error(NNE_ERR_INVALID_ARG, "qat: scheme %d or ema %g out of range",
                         (int)c->scheme, (double)c->ema);
    if (c->weight_bits != 0 && c->weight_bits != 7 && c->weight_bits != 8)
        return nne_error(NNE_ERR_INVALID_ARG, "qat: weight_bits %d (expected 7 or 8)",
                         (int)c->weight_bits);
    if (g->n_inputs != 1) return nne_error(NNE_ERR_UNSUPPORTED, "qat: the graph needs 1 input");
    if (!(c->lsq >= 0.0f) || !isfinite(c->lsq))
        return nne_error(NNE_ERR_INVALID_ARG, "qat: lsq %g is not a number >= 0", (double)c->lsq);
    if (c->lsq > 0.0f && c->scheme == NNE_QSCHEME_POW2)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "qat: learned step sizes (lsq) need per-tensor or per-channel scales; "
                         "pow2 scales are powers of two");
    if (c->lsq > 0.0f && c->ema > 0.0f)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "qat: learned step sizes (lsq) and EMA ranges (ema %g) both move the "
                         "ranges: use fixed (calibrated) ranges with lsq",
                         (double)c->ema);
    if (!(isfinite(c->output_lo) && isfinite(c->output_hi)) ||
        (c->output_lo >= c->output_hi && (c->output_lo != 0.0f || c->output_hi != 0.0f)))
        return nne_error(NNE_ERR_INVALID_ARG, "qat: output range [%g, %g] (expected lo < hi)",
                         (double)c->output_lo, (double)c->output_hi);
    nne_qat *q = nne_calloc(1, sizeof *q);
    if (!q) return NNE_ERR_NOMEM;
    q->g = g;
    q->cfg = *c;
    if (!(q->node_in = nne_calloc((size_t)g->n_nodes + 1, sizeof *q->node_in))) goto nomem;
    int32_t n_in = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        q->node_in[i] = in_region(c->only, g->nodes[i].name);
        n_in += q->node_in[i];
    }
    nne_status st = NNE_OK;
    if (n_in == 0 && g->n_nodes > 0)
        st = nne_error(NNE_ERR_NOT_FOUND,
                       "qat: no node of graph '%s' has a name starting with "
                       "%s%s",
                       g->name ? g->name : "", c->only && c->only[0] ? c->only[0] : "(none)",
                       c->only && c->only[0] && c->only[1] ? ", ..." : "");
    for (int32_t i = 0; i < g->n_nodes && !st; i++)
        if (q->node_in[i] && !nne_op_has_s8_kernel(g->nodes[i].op))
            st = nne_error(NNE_ERR_UNSUPPORTED,
                           "qat: node '%s': op %s has no int8 kernel, so there is no int8 "
                           "model to simulate",
                           g->nodes[i].name, nne_op_name(g->nodes[i].op));
    if (st) {
        nne_qat_free(q);
        return st;
    }
    const size_t nt = (size_t)g->n_tensors + 1;
    q->act = nne_calloc(nt, sizeof *q->act);
    q->copy = nne_calloc(nt, sizeof *q->copy);
    q->lo = nne_calloc(nt, sizeof *q->lo);
    q->hi = nne_calloc(nt, sizeof *q->hi);
    q->has = nne_calloc(nt, sizeof *q->has);
    q->pinned = nne_calloc(nt, sizeof *q->pinned);
    q->mask = nne_calloc(nt, sizeof *q->mask);
    q->slot = nne_calloc(nt, sizeof *q->slot);
    q->wt = nne_calloc(nt, sizeof *q->wt);
    q->wq = nne_calloc(nt, sizeof *q->wq);
    q->wmask = nne_calloc(nt, sizeof *q->wmask);
    q->wslot = nne_calloc(nt, sizeof *q->wslot);
    q->wslope = nne_calloc(nt, sizeof *q->wslope);
    q->rq_src = nne_calloc(nt, sizeof *q->rq_src);
    q->rq_mask = nne_calloc(nt, sizeof *q->rq_mask);
    q->rq_slot = nne_calloc(nt, sizeof *q->rq_slot);
    q->frac = nne_calloc(nt, sizeof *q->frac);
    q->lsq_g = nne_calloc(nt, sizeof *q->lsq_g);
    q->lsq_m = nne_calloc(nt, sizeof *q->lsq_m);
    q->lsq_v = nne_calloc(nt, sizeof *q->lsq_v);
    if (!q->act || !q->copy || !q->lo || !q->hi || !q->has || !q->pinned || !q->mask || !q->slot ||
        !q->wt || !q->wq || !q->wmask || !q->wslot || !q->wslope || !q->rq_src || !q->rq_mask ||
        !q->rq_slot || !q->frac || !q->lsq_g || !q->lsq_m || !q->lsq_v)
        goto nomem;
    for (int32_t t = 0; t < g->n_tensors; t++) q->slot[t] = q->wslot[t] = q->rq_slot[t] = -1;
    const bool pow2 = c->scheme == NNE_QSCHEME_POW2;
    /* Activations in tensor order (the pass's order), as the pass assigns parameters: the
     * outputs of simulated nodes that have their own parameters, and the tensors from
     * outside that simulated nodes read (with every node simulated: the graph input). */
    for (int32_t t = 0; t < g->n_tensors; t++) {
        if (g->tensors[t].kind == NNE_TENSOR_CONSTANT) continue;
        const int32_t pr = nne_graph_producer(g, t);
        const bool inside = pr >= 0 && q->node_in[pr];
        if (inside && nne_op_s8_shares_quant(g->nodes[pr].op, pow2)) continue;
        if (inside && !pow2 && !c->no_fuse_prelu) { /* conv + PReLU as one layer */
            const int32_t a = nne_graph_fusable_prelu(g, t);
            if (a >= 0 && q->node_in[a]) continue;
        }
        bool copy = false;
        if (!inside && c->only) {
            bool read_in = false;
            readers(g, q->node_in, t, &read_in, &copy);
            if (!read_in) continue;
        }
        q->slot[t] = q->n_act;
        q->act[q->n_act] = t;
        if (copy && !(q->copy[q->n_act] = nne_aligned_alloc(numel(g, t) * sizeof(float) + 1)))
            goto nomem;
        if (!(q->mask[q->n_act++] = nne_aligned_alloc(numel(g, t) + 1))) goto nomem;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (!q->node_in[i]) continue;
        /* pow2 PReLU (docs/quantization.md, 6): the pass quantizes the slopes to 7-bit codes
         * at one fixed point (nne_quantize_slopes_pow2) and the output, which shares its
         * input's parameters, is rounded to that grid; QAT does the same. Leaky ReLU has no
         * trainer op. */
        const bool slope = pow2 && n->op == NNE_OP_PRELU;
        if (slope) {
            const int32_t src = param_slot_of(q, n->inputs[0]);
            if (src >= 0 && q->rq_slot[n->output] < 0) {
                q->rq_slot[n->output] = q->n_rq;
                q->rq_src[q->n_rq] = src;
                if (!(q->rq_mask[q->n_rq++] = nne_aligned_alloc(numel(g, n->output) + 1)))
                    goto nomem;
            }
        }
        if (n->op != NNE_OP_CONV2D && n->op != NNE_OP_CONV_TRANSPOSE2D && n->op != NNE_OP_DENSE &&
            !slope)
            continue;
        const int32_t t = n->inputs[1];
        if (t < 0 || g->tensors[t].kind != NNE_TENSOR_CONSTANT || q->wslot[t] >= 0) continue;
        q->wslope[q->n_w] = slope;
        const size_t m = numel(g, t);
        q->wslot[t] = q->n_w;
        q->wt[q->n_w] = t;
        q->wq[q->n_w] = nne_aligned_alloc(m * sizeof(float) + 1);
        q->wmask[q->n_w] = nne_aligned_alloc(m + 1);
        if (!q->wq[q->n_w] || !q->wmask[q->n_w]) {
            q->n_w++;
            goto nomem;
        }
        memset(q->wmask[q->n_w], 1, m);
        q->n_w++;
    }
    /* cfg.output_lo/hi: the graph outputs that simulated nodes produce (a codec's x_hat, not
     * its likelihoods), through shared-parameter ops as the pass does */
    for (int32_t i = 0; i < g->n_outputs && c->output_lo < c->output_hi; i++) {
        const int32_t o = g->outputs[i], pr = nne_graph_producer(g, o);
        const int32_t ps = pr >= 0 && q->node_in[pr] ? param_slot_of(q, o) : -1;
        if (ps >= 0) q->pinned[ps] = true;
    }
    pin_outputs(q);
    *out = q;
    return NNE_OK;
nomem:
    nne_qat_free(q);
    return nne_error(NNE_ERR_NOMEM, "qat: out of memory");
}

const nne_qat_config *nne_qat_get_config(const nne_qat *q) { return &q->cfg; }
int32_t nne_qat_num_activations(const nne_qat *q) { return q->n_act; }
int32_t nne_qat_activation_tensor(const nne_qat *q, int32_t i) {
    return i >= 0 && i < q->n_act ? q->act[i] : -1;
}
int32_t nne_qat_num_weights(const nne_qat *q) { return q->n_w; }
int32_t nne_qat_weight_tensor(const nne_qat *q, int32_t i) {
    return i >= 0 && i < q->n_w ? q->wt[i] : -1;
}
bool nne_qat_node_simulated(const nne_qat *q, int32_t node) {
    return node >= 0 && node < q->g->n_nodes && q->node_in[node];
}

static int32_t slot_by_name(const nne_qat *q, const char *name) {
    const int32_t t = name ? nne_graph_find_tensor(q->g, name) : -1;
    return t >= 0 ? q->slot[t] : -1;
}

nne_status nne_qat_set_range(nne_qat *q, const char *tensor, float lo, float hi) {
    const int32_t s = slot_by_name(q, tensor);
    if (s < 0)
        return nne_error(NNE_ERR_NOT_FOUND, "qat: '%s' is not a quantized activation",
                         tensor ? tensor : "");
    if (!isfinite(lo) || !isfinite(hi))
        return nne_error(NNE_ERR_INVALID_ARG, "qat: range of '%s' is not finite", tensor);
    q->lo[s] = fminf(lo, 0.0f);
    q->hi[s] = fmaxf(hi, 0.0f);
    q->has[s] = true;
    pin_outputs(q);
    return NNE_OK;
}

static int32_t param_slot(const nne_qat *q, const char *name) {
    return param_slot_of(q, name ? nne_graph_find_tensor(q->g, name) : -1);
}

bool nne_qat_get_range(const nne_qat *q, const char *tensor, float *lo, float *hi) {
    const int32_t s = param_slot(q, tensor);
    if (s < 0 || !q->has[s]) return false;
    *lo = q->lo[s];
    *hi = q->hi[s];
    return true;
}

static void slot_qparams(const nne_qat *q, int32_t s, float *scale, int32_t *zp) {
    const bool pow2 = q->cfg.scheme == NNE_QSCHEME_POW2;
    nne_qparams_from_range(q->lo[s], q->hi[s], pow2, pow2, scale, zp);
}

bool nne_qat_get_qparams(const nne_qat *q, const char *tensor, float *scale, int32_t *zero_point) {
    const int32_t s = param_slot(q, tensor);
    if (s < 0 || !q->has[s]) return false;
    slot_qparams(q, s, scale, zero_point);
    return true;
}

/* A range whose nne_qparams_from_range gives back exactly (s, z): [s (-128 - z), s (127 - z)]
 * with hi moved by ulps where the f32 rounding of (hi - lo) / 255 misses s (a scale one ulp
 * off would move every int32 bias computed from it). */
/* A range [lo, hi] that nne_qparams_from_range maps back to exactly (s, z): start from
 * [s (-128 - z), s (127 - z)] and move each end by up to 16 float steps (the nearest ends
 * first). Moving hi alone is not always enough: (hi - lo) / 255 may step over s in both
 * directions (found with a 2.1-wide range, s 0.0128275435, z -38), so lo moves too. */
static void affine_range(float s, int32_t z, float *lo, float *hi) {
    const float l0 = fminf(s * (float)(-128 - z), 0.0f);
    const float h0 = fmaxf(s * (float)(127 - z), 0.0f);
    *lo = l0;
    *hi = h0;
    for (int r = 0; r <= 32; r++) { /* r = |dl| + |dh|: nearest first */
        for (int dl = -r; dl <= r; dl++) {
            const int dh_abs = r - (dl < 0 ? -dl : dl);
            for (int sign = -1; sign <= 1; sign += 2) {
                const int dh = sign * dh_abs;
                if (dh_abs == 0 && sign > 0) continue; /* dh 0 once */
                if (dl < -16 || dl > 16 || dh < -16 || dh > 16) continue;
                float l = l0, h = h0;
                for (int k = 0; k < (dl < 0 ? -dl : dl); k++)
                    l = nextafterf(l, dl < 0 ? -INFINITY : INFINITY);
                for (int k = 0; k < (dh < 0 ? -dh : dh); k++)
                    h = nextafterf(h, dh < 0 ? -INFINITY : INFINITY);
                if (l > 0.0f || h < 0.0f) continue;
                float s2;
                int32_t z2;
                nne_qparams_from_range(l, h, false, false, &s2, &z2);
                if (s2 == s && z2 == z) {
                    *lo = l;
                    *hi = h;
                    return;
                }
            }
        }
    }
}

nne_status nne_qat_ranges_from_quantized(nne_qat *q, const nne_graph *quantized) {
    return nne_qat_ranges_from_parts(q, &quantized, 1);
}

nne_status nne_qat_ranges_from_parts(nne_qat *q, const nne_graph *const *parts, int32_t n) {
    for (int32_t i = 0; i < q->n_act; i++) {
        const char *name = q->g->tensors[q->act[i]].name;
        int32_t t = -1, k = 0;
        for (; k < n && t < 0; k++) t = nne_graph_find_tensor(parts[k], name);
        const nne_quant *u = t >= 0 ? &parts[k - 1]->tensors[t].quant : NULL;
        if (!u || u->count != 1 || !u->scale || !u->zero_point)
            return nne_error(NNE_ERR_NOT_FOUND,
                             "qat: '%s' has no per-tensor quantization in the quantized model",
                             name);
        const float s = u->scale[0];
        const int32_t z = u->zero_point[0];
        if (u->pow2) {
            q->lo[i] = -127.0f * s; /* fp0 of [-127 s, 127 s] is the pass's position */
            q->hi[i] = 127.0f * s;
        } else {
            affine_range(s, z, &q->lo[i], &q->hi[i]);
        }
        q->has[i] = true;
    }
    pin_outputs(q);
    return NNE_OK;
}

nne_status nne_qat_copy_ranges(nne_qat *dst, const nne_qat *src) {
    for (int32_t i = 0; i < dst->n_act; i++) {
        const int32_t s = slot_by_name(src, dst->g->tensors[dst->act[i]].name);
        if (s < 0 || !src->has[s]) continue;
        dst->lo[i] = src->lo[s];
        dst->hi[i] = src->hi[s];
        dst->has[i] = true;
    }
    pin_outputs(dst);
    return NNE_OK;
}

/* ---- metadata ------------------------------------------------------------------------------ */

#define META_RANGE "qat.range."
#define META_LSQ   "qat.lsq_state."

nne_status nne_qat_store_meta(const nne_qat *q, nne_graph *g) {
    char key[NNE_MAX_NAME + 16], v[64];
    nne_status st = nne_graph_set_meta(g, "qat.scheme", nne_qscheme_name(q->cfg.scheme));
    snprintf(v, sizeof v, "%.9g", (double)q->cfg.ema);
    if (!st) st = nne_graph_set_meta(g, "qat.ema", v);
    if (!st) st = nne_graph_set_meta(g, "qat.weight_bits", q->cfg.weight_bits == 7 ? "7" : "8");
    if (!st) st = nne_graph_set_meta(g, "qat.fuse_prelu", q->cfg.no_fuse_prelu ? "0" : "1");
    if (!st && q->cfg.output_lo < q->cfg.output_hi) {
        snprintf(v, sizeof v, "%.9g %.9g", (double)q->cfg.output_lo, (double)q->cfg.output_hi);
        st = nne_graph_set_meta(g, "qat.output_range", v);
    }
    if (!st && q->cfg.lsq > 0.0f) {
        snprintf(v, sizeof v, "%.9g", (double)q->cfg.lsq);
        st = nne_graph_set_meta(g, "qat.lsq", v);
        snprintf(v, sizeof v, "%lld", (long long)q->lsq_t);
        if (!st) st = nne_graph_set_meta(g, "qat.lsq_t", v);
    }
    for (int32_t i = 0; i < q->n_act && !st; i++) {
        if (!q->has[i]) continue;
        snprintf(key, sizeof key, META_RANGE "%s", q->g->tensors[q->act[i]].name);
        snprintf(v, sizeof v, "%.9g %.9g", (double)q->lo[i], (double)q->hi[i]);
        st = nne_graph_set_meta(g, key, v);
        if (!st && lsq_on(q, i)) { /* Adam's moments, exact (%.17g) for a resumed run */
            snprintf(key, sizeof key, META_LSQ "%s", q->g->tensors[q->act[i]].name);
            snprintf(v, sizeof v, "%.17g %.17g", q->lsq_m[i], q->lsq_v[i]);
            st = nne_graph_set_meta(g, key, v);
        }
    }
    return st;
}

nne_status nne_qat_config_from_meta(const nne_graph *g, nne_qat_config *c, bool *present) {
    memset(c, 0, sizeof *c);
    *present = false;
    const char *s = nne_graph_get_meta(g, "qat.scheme"), *e = nne_graph_get_meta(g, "qat.ema");
    if (!s) return NNE_OK;
    nne_status st = nne_qscheme_from_name(s, &c->scheme);
    if (st) return nne_error(st, "qat.scheme: %s", nne_last_error());
    if (e) {
        char *end = NULL;
        const double v = strtod(e, &end);
        if (end == e || *end || !(v >= 0.0 && v <= 1.0))
            return nne_error(NNE_ERR_FORMAT, "qat.ema '%s' is not a number in [0, 1]", e);
        c->ema = (float)v;
    }
    const char *b = nne_graph_get_meta(g, "qat.weight_bits");
    if (b && strcmp(b, "7") != 0 && strcmp(b, "8") != 0)
        return nne_error(NNE_ERR_FORMAT, "qat.weight_bits '%s' is not 7 or 8", b);
    c->weight_bits = b && b[0] == '7' ? 7 : 8;
    const char *f = nne_graph_get_meta(g, "qat.fuse_prelu");
    if (f && strcmp(f, "0") != 0 && strcmp(f, "1") != 0)
        return nne_error(NNE_ERR_FORMAT, "qat.fuse_prelu '%s' is not 0 or 1", f);
    c->no_fuse_prelu = !f || f[0] == '0'; /* absent: trained before the fusion */
    const char *l = nne_graph_get_meta(g, "qat.lsq");
    if (l) {
        char *end = NULL;
        const double v = strtod(l, &end);
        if (end == l || *end || !(v > 0.0 && v < 1e30))
            return nne_error(NNE_ERR_FORMAT, "qat.lsq '%s' is not a positive number", l);
        c->lsq = (float)v;
    }
    const char *o = nne_graph_get_meta(g, "qat.output_range");
    if (o) {
        float lo, hi;
        int used = 0;
        if (sscanf(o, "%f %f%n", &lo, &hi, &used) != 2 || o[used] || !isfinite(lo) ||
            !isfinite(hi) || !(lo < hi))
            return nne_error(NNE_ERR_FORMAT, "qat.output_range '%s' is not 'lo hi' with lo < hi",
                             o);
        c->output_lo = lo;
        c->output_hi = hi;
    }
    *present = true;
    return NNE_OK;
}

nne_status nne_qat_load_meta(nne_qat *q, const nne_graph *g) {
    nne_qat_config c;
    bool present = false;
    nne_status st = nne_qat_config_from_meta(g, &c, &present);
    if (st) return st;
    if (present && c.scheme != q->cfg.scheme)
        return nne_error(NNE_ERR_INVALID_ARG, "qat: the model's ranges are for scheme %s, not %s",
                         nne_qscheme_name(c.scheme), nne_qscheme_name(q->cfg.scheme));
    if (present && (c.weight_bits == 7) != (q->cfg.weight_bits == 7))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "qat: the model was trained for %d-bit weights, not %d-bit",
                         (int)c.weight_bits, q->cfg.weight_bits == 7 ? 7 : 8);
    if (present && c.no_fuse_prelu != q->cfg.no_fuse_prelu)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "qat: the model was trained %s conv + PReLU fusion, this run is %s it",
                         c.no_fuse_prelu ? "without" : "with",
                         q->cfg.no_fuse_prelu ? "without" : "with");
    if (present && (c.output_lo != q->cfg.output_lo || c.output_hi != q->cfg.output_hi))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "qat: the model's output range is [%g, %g], this run's [%g, %g] (0, 0: "
                         "calibrated)",
                         (double)c.output_lo, (double)c.output_hi, (double)q->cfg.output_lo,
                         (double)q->cfg.output_hi);
    char key[NNE_MAX_NAME + 16];
    for (int32_t i = 0; i < q->n_act; i++) {
        const char *name = q->g->tensors[q->act[i]].name;
        snprintf(key, sizeof key, META_RANGE "%s", name);
        const char *v = nne_graph_get_meta(g, key);
        if (!v) continue;
        float lo, hi;
        int used = 0;
        if (sscanf(v, "%f %f%n", &lo, &hi, &used) != 2 || v[used] || !isfinite(lo) ||
            !isfinite(hi) || lo > 0.0f || hi < 0.0f)
            return nne_error(NNE_ERR_FORMAT, "%s: '%s' is not a range 'lo hi' with lo <= 0 <= hi",
                             key, v);
        q->lo[i] = lo;
        q->hi[i] = hi;
        q->has[i] = true;
        snprintf(key, sizeof key, META_LSQ "%s", name);
        const char *m = nne_graph_get_meta(g, key);
        double a, b;
        if (m && lsq_on(q, i)) {
            if (sscanf(m, "%lf %lf%n", &a, &b, &used) != 2 || m[used] || !isfinite(a) ||
                !isfinite(b) || b < 0.0)
                return nne_error(NNE_ERR_FORMAT, "%s: '%s' is not 'm v' (v >= 0)", key, m);
            q->lsq_m[i] = a;
            q->lsq_v[i] = b;
        }
    }
    const char *lt = nne_graph_get_meta(g, "qat.lsq_t");
    if (lt && q->cfg.lsq > 0.0f) {
        char *end = NULL;
        const long long t = strtoll(lt, &end, 10);
        if (end == lt || *end || t < 0)
            return nne_error(NNE_ERR_FORMAT, "qat.lsq_t '%s' is not a step count", lt);
        q->lsq_t = t;
    }
    pin_outputs(q);
    return NNE_OK;
}

/* ---- trainer hooks ------------------------------------------------------------------------- */

bool nne_qat__for_graph(const nne_qat *q, const nne_graph *g) { return q && q->g == g; }

nne_status nne_qat__ready(const nne_qat *q, bool train) {
    if (train && q->cfg.ema > 0.0f) return NNE_OK;
    for (int32_t i = 0; i < q->n_act; i++)
        if (!q->has[i])
            return nne_error(NNE_ERR_INVALID_ARG,
                             "qat: activation '%s' has no range (calibrate first, or train "
                             "with ema > 0)",
                             q->g->tensors[q->act[i]].name);
    return NNE_OK;
}

const float *nne_qat__weight(nne_qat *q, int32_t tensor, const float *w, nne_status *st) {
    const int32_t s = tensor >= 0 ? q->wslot[tensor] : -1;
    if (s < 0) return w;
    /* Slopes never clip (the fixed point fits the largest), so their mask stays all ones:
     * the STE passes every slope gradient. */
    const nne_status r =
        q->wslope[s]
            ? nne_quantize_slopes_pow2((int32_t)numel(q->g, tensor), w, q->wq[s], NULL)
            : nne_fake_quant_weight_forward_qmax(&q->g->tensors[tensor].shape, w, q->cfg.scheme,
                                                 q->cfg.weight_bits == 7 ? 64 : 127, q->wq[s],
                                                 q->wmask[s], NULL);
    if (r != NNE_OK) {
        if (*st == NNE_OK)
            *st =
                nne_error(r, "qat: weights '%s': %s", q->g->tensors[tensor].name, nne_last_error());
        memcpy(q->wq[s], w, numel(q->g, tensor) * sizeof(float));
    }
    return q->wq[s];
}

const float *nne_qat__weight_cached(const nne_qat *q, int32_t tensor, const float *w) {
    const int32_t s = tensor >= 0 ? q->wslot[tensor] : -1;
    return s < 0 ? w : q->wq[s];
}

void nne_qat__weight_grad(const nne_qat *q, int32_t tensor, float *dw) {
    const int32_t s = tensor >= 0 ? q->wslot[tensor] : -1;
    if (s < 0 || !dw) return;
    nne_fake_quant_backward(numel(q->g, tensor), q->wmask[s], dw, dw);
}

/* Activations are split into fixed chunks (independent of the thread count). */
enum { FQ_CHUNKS = 16, FQ_MIN = 4096 };

typedef struct fq_ctx {
    float *x, *y; /* y: the fake-quantized values (x itself, or the tensor's copy) */
    uint8_t *mask;
    int8_t *frac; /* LSQ: x/s - round(x/s) in 1/254 steps, or NULL */
    size_t count;
    int chunks;
    float scale;
    int32_t zp;
    bool pow2, minmax; /* minmax: reduce instead of quantizing */
    float mn[FQ_CHUNKS], mx[FQ_CHUNKS];
} fq_ctx;

static void fq_task(void *vctx, int task, int thread) {
    (void)thread;
    fq_ctx *c = vctx;
    const size_t i0 = c->count * (size_t)task / (size_t)c->chunks;
    const size_t i1 = c->count * (size_t)(task + 1) / (size_t)c->chunks;
    if (c->minmax) {
        float mn = INFINITY, mx = -INFINITY;
        for (size_t i = i0; i < i1; i++)
            if (isfinite(c->x[i])) {
                mn = fminf(mn, c->x[i]);
                mx = fmaxf(mx, c->x[i]);
            }
        c->mn[task] = mn;
        c->mx[task] = mx;
        return;
    }
    if (c->frac) { /* before y (which may be x) is written; R's product, as the quantizer's */
        const float inv = 1.0f / c->scale;
        for (size_t i = i0; i < i1; i++) {
            const float v = c->x[i] * inv;
            const float r = isfinite(v) ? v - nearbyintf(v) : 0.0f; /* |r| <= 1/2 */
            c->frac[i] = (int8_t)lrintf(r * 254.0f);
        }
    }
    nne_fake_quant_act_forward(i1 - i0, c->x + i0, c->scale, c->zp, c->pow2, c->y + i0,
                               c->mask + i0);
}

static int fq_chunks(size_t count) {
    const size_t n = count / FQ_MIN;
    return n < 1 ? 1 : n > FQ_CHUNKS ? FQ_CHUNKS : (int)n;
}

/* A requantized shared-parameter output: rounded to its source's grid, no range update. */
static void requantize_shared(nne_qat *q, int32_t r, float *x, size_t count, nne_threadpool *pool) {
    const int32_t s = q->rq_src[r];
    if (!q->has[s]) { /* as below: ready() prevents this */
        memset(q->rq_mask[r], 1, count);
        return;
    }
    fq_ctx c = {.x = x,
                .y = x,
                .mask = q->rq_mask[r],
                .count = count,
                .chunks = fq_chunks(count),
                .pow2 = q->cfg.scheme == NNE_QSCHEME_POW2};
    slot_qparams(q, s, &c.scale, &c.zp);
    nne_threadpool_run(pool, c.chunks, fq_task, &c);
}

void nne_qat__activation(nne_qat *q, int32_t tensor, float *x, size_t count, bool train,
                         nne_threadpool *pool) {
    const int32_t s = tensor >= 0 ? q->slot[tensor] : -1;
    if (s < 0) {
        if (tensor >= 0 && q->rq_slot[tensor] >= 0)
            requantize_shared(q, q->rq_slot[tensor], x, count, pool);
        return;
    }
    fq_ctx c = {.x = x,
                .y = q->copy[s] ? q->copy[s] : x,
                .mask = q->mask[s],
                .count = count,
                .chunks = fq_chunks(count)};
    if (train && q->cfg.ema > 0.0f && !q->pinned[s]) {
        c.minmax = true;
        nne_threadpool_run(pool, c.chunks, fq_task, &c);
        float mn = INFINITY, mx = -INFINITY;
        for (int k = 0; k < c.chunks; k++) {
            mn = fminf(mn, c.mn[k]);
            mx = fmaxf(mx, c.mx[k]);
        }
        if (mn <= mx) { /* some finite value */
            if (!q->has[s]) {
                q->lo[s] = fminf(mn, 0.0f);
                q->hi[s] = fmaxf(mx, 0.0f);
                q->has[s] = true;
            } else {
                const float e = q->cfg.ema;
                q->lo[s] = fminf(q->lo[s] + e * (mn - q->lo[s]), 0.0f);
                q->hi[s] = fmaxf(q->hi[s] + e * (mx - q->hi[s]), 0.0f);
            }
        }
        c.minmax = false;
    }
    if (!q->has[s]) { /* ready() prevents this; keep the values and pass every gradient */
        memset(q->mask[s], 1, count);
        if (c.y != x) memcpy(c.y, x, count * sizeof *x);
        return;
    }
    slot_qparams(q, s, &c.scale, &c.zp);
    c.pow2 = q->cfg.scheme == NNE_QSCHEME_POW2;
    if (train && lsq_on(q, s)) {
        /* LSQ: keep the rounding residues for the backward (without memory for them, the
         * tensor's dL/ds stays 0 this step) */
        if (!q->frac[s]) q->frac[s] = nne_aligned_alloc(count + 1);
        c.frac = q->frac[s];
        q->lsq_g[s] = 0.0;
    }
    nne_threadpool_run(pool, c.chunks, fq_task, &c);
}

typedef struct ste_ctx {
    const uint8_t *mask;
    float *dy;
    size_t count;
    int chunks;
} ste_ctx;

static void ste_task(void *vctx, int task, int thread) {
    (void)thread;
    const ste_ctx *c = vctx;
    const size_t i0 = c->count * (size_t)task / (size_t)c->chunks;
    const size_t i1 = c->count * (size_t)(task + 1) / (size_t)c->chunks;
    nne_fake_quant_backward(i1 - i0, c->mask + i0, c->dy + i0, c->dy + i0);
}

static void ste_run(const uint8_t *mask, float *dy, size_t count, nne_threadpool *pool) {
    ste_ctx c = {.mask = mask, .dy = dy, .count = count, .chunks = fq_chunks(count)};
    nne_threadpool_run(pool, c.chunks, ste_task, &c);
}

/* LSQ's sum over one tensor in fixed chunks (the thread count does not change the bits). */
typedef struct lsq_ctx {
    const uint8_t *mask;
    const int8_t *frac;
    const float *y, *dy;
    float inv_s;
    size_t count;
    int chunks;
    double part[FQ_CHUNKS];
} lsq_ctx;

static void lsq_task(void *vctx, int task, int thread) {
    (void)thread;
    lsq_ctx *c = vctx;
    const size_t i0 = c->count * (size_t)task / (size_t)c->chunks;
    const size_t i1 = c->count * (size_t)(task + 1) / (size_t)c->chunks;
    double sum = 0.0;
    for (size_t i = i0; i < i1; i++) {
        /* dy/ds: round(x/s) - x/s in range; the clamped code minus z, i.e. y/s, outside */
        const double d =
            c->mask[i] ? -(double)c->frac[i] * (1.0 / 254.0) : (double)c->y[i] * c->inv_s;
        sum += (double)c->dy[i] * d;
    }
    c->part[task] = sum;
}

void nne_qat__activation_grad(nne_qat *q, int32_t tensor, const float *y, float *dy, size_t count,
                              nne_threadpool *pool) {
    const int32_t s = tensor >= 0 ? q->slot[tensor] : -1;
    const int32_t r = tensor >= 0 && s < 0 ? q->rq_slot[tensor] : -1;
    if ((s < 0 && r < 0) || (s >= 0 && q->copy[s]) || !dy) return; /* a copy: per reader */
    if (s >= 0 && lsq_on(q, s) && q->frac[s] && y) { /* before the STE zeroes the clamped */
        float scale;
        int32_t zp;
        slot_qparams(q, s, &scale, &zp);
        lsq_ctx c = {.mask = q->mask[s],
                     .frac = q->frac[s],
                     .y = y,
                     .dy = dy,
                     .inv_s = 1.0f / scale,
                     .count = count,
                     .chunks = fq_chunks(count)};
        nne_threadpool_run(pool, c.chunks, lsq_task, &c);
        double g = 0.0;
        for (int k = 0; k < c.chunks; k++) g += c.part[k];
        q->lsq_g[s] = g;
    }
    ste_run(s >= 0 ? q->mask[s] : q->rq_mask[r], dy, count, pool);
}

void nne_qat__update(nne_qat *q, float rate) {
    if (q->cfg.lsq <= 0.0f) return;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const int64_t t = ++q->lsq_t;
    const double c1 = 1.0 - pow(b1, (double)t), c2 = 1.0 - pow(b2, (double)t);
    for (int32_t s = 0; s < q->n_act; s++) {
        if (!lsq_on(q, s) || !q->has[s]) continue;
        float scale;
        int32_t zp;
        slot_qparams(q, s, &scale, &zp);
        /* d/d log s = s d/ds, with LSQ's gradient scale 1 / sqrt(N Q_p) */
        const double n = (double)numel(q->g, q->act[s]);
        const double gu = q->lsq_g[s] * (double)scale / sqrt(n * 127.0);
        q->lsq_m[s] = b1 * q->lsq_m[s] + (1.0 - b1) * gu;
        q->lsq_v[s] = b2 * q->lsq_v[s] + (1.0 - b2) * gu * gu;
        const double step =
            (double)rate * q->cfg.lsq * (q->lsq_m[s] / c1) / (sqrt(q->lsq_v[s] / c2) + eps);
        const float s2 = (float)((double)scale * exp(-step));
        if (isfinite(s2) && s2 > 0.0f) affine_range(s2, zp, &q->lo[s], &q->hi[s]);
        q->lsq_g[s] = 0.0;
    }
}

double nne_qat_lsq_grad(const nne_qat *q, const char *tensor) {
    const int32_t s = q ? slot_by_name(q, tensor) : -1;
    return s >= 0 ? q->lsq_g[s] : 0.0;
}

/* The copy of a boundary tensor, for a simulated reader; else -1. */
static int32_t copy_slot(const nne_qat *q, int32_t node, int32_t tensor) {
    const int32_t s = tensor >= 0 ? q->slot[tensor] : -1;
    return s >= 0 && q->copy[s] && q->node_in[node] ? s : -1;
}

const float *nne_qat__input(const nne_qat *q, int32_t node, int32_t tensor, const float *x) {
    const int32_t s = copy_slot(q, node, tensor);
    return s >= 0 ? q->copy[s] : x;
}

void nne_qat__input_grad(const nne_qat *q, int32_t node, int32_t tensor, float *dx, size_t count,
                         nne_threadpool *pool) {
    const int32_t s = copy_slot(q, node, tensor);
    if (s >= 0 && dx) ste_run(q->mask[s], dx, count, pool);
}

/* ---- distillation ---------------------------------------------------------------------------- */

double nne_distill_softmax_loss(size_t rows, int32_t classes, const float *s, const float *t,
                                float temperature, float *ds) {
    const double T = temperature, inv = 1.0 / T;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *sr = s + r * (size_t)classes, *tr = t + r * (size_t)classes;
        /* log-sum-exp with the maximum subtracted, in double */
        double ms = -INFINITY, mt = -INFINITY;
        for (int32_t k = 0; k < classes; k++) {
            ms = fmax(ms, sr[k] * inv);
            mt = fmax(mt, tr[k] * inv);
        }
        double zs = 0.0, zt = 0.0;
        for (int32_t k = 0; k < classes; k++) {
            zs += exp(sr[k] * inv - ms);
            zt += exp(tr[k] * inv - mt);
        }
        const double ls = ms + log(zs), lt = mt + log(zt);
        double kl = 0.0;
        for (int32_t k = 0; k < classes; k++) {
            const double lpt = tr[k] * inv - lt, lps = sr[k] * inv - ls, pt = exp(lpt);
            kl += pt * (lpt - lps);
            if (ds) ds[r * (size_t)classes + k] = (float)(T / (double)rows * (exp(lps) - pt));
        }
        total += kl;
    }
    return rows ? T * T * total / (double)rows : 0.0;
}
