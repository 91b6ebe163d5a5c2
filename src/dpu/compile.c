/* The DPU compiler: graph -> fused layers -> per-layer tiling (design-space search) ->
 * instruction stream. docs/dpu-isa.md describes the instructions, docs/dpu-model.md the
 * search. Every tensor is int8 here: 1 byte per element whatever its dtype in the graph. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "dpu/dpu_internal.h"
#include "nnedge/qops.h"

/* ---- instruction vector ---- */

typedef struct ivec {
    nne_dpu_instr *v;
    uint32_t n, cap;
} ivec;

static nne_status ivec_push(ivec *iv, const nne_dpu_instr *in) {
    if (iv->n == iv->cap) {
        if (iv->cap >= NNE_DPU_MAX_INSTRS)
            return nne_error(NNE_ERR_LIMIT, "more than %u DPU instructions", NNE_DPU_MAX_INSTRS);
        uint32_t cap = iv->cap ? iv->cap * 2 : 256;
        nne_dpu_instr *v = nne_realloc_array(iv->v, cap, sizeof *v);
        if (!v) return NNE_ERR_NOMEM;
        iv->v = v;
        iv->cap = cap;
    }
    iv->v[iv->n++] = *in;
    return NNE_OK;
}

/* ---- layers of the compiled graph ---- */

/* Where a feature map lives in DDR: pixel (y, x) channel c of the tensor is at
 * offset + y * row_stride + x * col_stride + c in `region`. */
typedef struct dview {
    uint8_t region;
    bool placed;
    uint64_t offset, row_stride, col_stride;
} dview;

typedef struct clayer {
    uint8_t kind; /* NNE_DPU_CONV / _POOL / _ELEW */
    uint8_t act, pool_kind;
    int8_t leaky_q;
    int32_t node;               /* the main node (its name names the layer) */
    int32_t in, in2, out;       /* tensors */
    int32_t H, W, C, OH, OW, M; /* input and output geometry */
    int32_t kh, kw, sh, sw, dh, dw, pad[4];
    int8_t fp_in, fp_in2, fp_w, fp_bias, fp_out, fp_act;
    bool placeholder;
    int32_t bias_w;  /* bytes per bias: 1 (int8, timing-only programs) or 4 (int32) */
    int32_t slope_t; /* PReLU slope tensor (executable programs), else -1 */
    uint64_t ops;
    uint64_t w_off, b_off; /* params region: weights [M][kh][kw][C], bias [M] (+ slopes [M]) */
    /* A phase of a transposed convolution (docs/dpu-isa.md, "Transposed convolution"): a
     * stride-1 conv over the input window at (in_y0, in_x0) of H x W pixels, writing the
     * outputs (out_y0 + sy * y, out_x0 + sx * x) of its tensor, with the flipped sub-kernel
     * w[k0y + (kh-1-ty) sy][k0x + (kw-1-tx) sx] of the node's wkh x wkw kernel. Plain layers:
     * origins 0, out_sy = out_sx = 1, phase false. */
    bool phase, cont; /* cont: a later phase, same program layer as the previous */
    int32_t in_y0, in_x0, out_y0, out_x0, out_sy, out_sx;
    int32_t k0y, k0x, wkh, wkw;
    int32_t ex_h, ex_w; /* end padding beyond the kernel's reach: the last output tile along
                           that axis needs more rows / columns than this to read any input */
} clayer;

typedef struct tiling {
    int32_t th, tw, tm, order;
} tiling;

typedef struct cctx {
    const nne_graph *g;
    const nne_dpu_arch *a;
    const nne_dpu_board *b;
    clayer *L;
    int32_t nl;
    dview *view; /* per tensor */
    uint64_t region_size[NNE_DPU_REG_COUNT];
    bool exec; /* quantized graph: the program is executable (PARAMS filled) */
} cctx;

/* Fixed-point position of a tensor: -log2(scale) of a per-tensor power-of-two quantization;
 * otherwise `placeholder` (and *ph is set). */
static int8_t fixpos(const nne_graph *g, int32_t t, int8_t placeholder, bool *ph) {
    if (t >= 0) {
        const nne_quant *q = &g->tensors[t].quant;
        if (q->count >= 1 && q->pow2 && q->scale && q->scale[0] > 0) {
            int e;
            float m = frexpf(q->scale[0], &e); /* scale = m * 2^e, m in [0.5, 1) */
            if (m == 0.5f && e - 1 >= -32 && e - 1 <= 32) {
                bool same = true; /* per-channel pow2 scales must agree for one shift */
                for (int32_t k = 1; k < q->count; k++) same &= q->scale[k] == q->scale[0];
                if (same) return (int8_t)(-(e - 1));
            }
        }
    }
    *ph = true;
    return placeholder;
}

/* Placeholder fixed points when the graph has no pow2 quantization: inputs in [0, 1) and
 * activations in [-8, 8) (fp 7 / 4), weights, bias and slopes in [-1, 1) (fp 7). */
enum { PH_IN = 7, PH_ACT = 4, PH_W = 7, PH_BIAS = 7, PH_SLOPE = 7 };

static int32_t consumers(const nne_graph *g, int32_t t, int32_t *only) {
    int32_t n = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == t) {
                n++;
                *only = i;
                break;
            }
    return n;
}

static bool is_output(const nne_graph *g, int32_t t) {
    for (int32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return true;
    return false;
}

static nne_status node_err(const nne_graph *g, int32_t i, nne_status s, const char *why) {
    return nne_error(s, "dpu: node '%s' (%s): %s", g->nodes[i].name, nne_op_name(g->nodes[i].op),
                     why);
}

/* Executable programs: fixed-point position of a tensor that must be int8 with one
 * power-of-two scale (per-channel scales must all be equal: the DPU has one shift per
 * tensor) and zero points 0. */
static nne_status qfp(const nne_graph *g, int32_t t, nne_dtype want, int8_t *fp) {
    const nne_tensor *ts = &g->tensors[t];
    const nne_quant *q = &ts->quant;
    if (ts->dtype != want)
        return nne_error(NNE_ERR_UNSUPPORTED, "dpu: tensor '%s' is %s; a quantized graph needs %s",
                         ts->name, nne_dtype_name(ts->dtype), nne_dtype_name(want));
    if (q->count < 1 || !q->pow2)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "dpu: tensor '%s' is not power-of-two quantized (the DPU needs "
                         "nne_quant.pow2 on every tensor of an s8 graph)",
                         ts->name);
    for (int32_t k = 0; k < q->count; k++)
        if (q->zero_point[k] != 0 || q->scale[k] != q->scale[0])
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "dpu: tensor '%s': the DPU needs one power-of-two scale per tensor "
                             "and zero point 0",
                             ts->name);
    int32_t e = 0;
    if (nne_quant_pow2_shift(q->scale[0], &e) != NNE_OK || e < -32 || e > 32)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "dpu: tensor '%s': scale %g is not a power of two 2^-fp with fp in "
                         "-32..32",
                         ts->name, (double)q->scale[0]);
    *fp = (int8_t)e;
    return NNE_OK;
}

/* Executable programs: a fused activation (or a concat) keeps the fixed point of the tensor
 * it reads, so that the fused layer computes what the graph's nodes compute one by one
 * (docs/dpu-isa.md, "Compiling quantized graphs"). */
static nne_status same_fp(const nne_graph *g, int32_t node, int32_t a, int32_t b) {
    int8_t fa = 0, fb = 0;
    nne_status s = qfp(g, a, NNE_S8, &fa);
    if (!s) s = qfp(g, b, NNE_S8, &fb);
    if (s) return s;
    if (fa != fb)
        return node_err(g, node, NNE_ERR_UNSUPPORTED,
                        "input and output fixed points differ (the DPU fuses it into the "
                        "producer without a second rescale)");
    return NNE_OK;
}

/* Executable programs: a slope as an int8 code at a power of two, code * 2^-k
 * (nne_slope_pow2; docs/quantization.md, 6), k within the fp_act field. */
static nne_status slope_code(const nne_graph *g, int32_t node, float slope, int32_t *code,
                             int32_t *k) {
    if (!nne_slope_pow2(slope, code, k) || *k < -32 || *k > 32)
        return node_err(g, node, NNE_ERR_UNSUPPORTED,
                        "slope is not an int8 code at a power of two (pow2 int8 semantics; "
                        "`nnedge quantize --scheme pow2` makes such slopes)");
    return NNE_OK;
}

/* The int8 code of a PReLU slope at the layer's fp_act (checked by build_layers). */
static int8_t slope_at(float slope, int32_t fp_act) {
    int32_t code = 0, k = 0;
    (void)nne_slope_pow2(slope, &code, &k);
    return (int8_t)(code * (1 << (code ? fp_act - k : 0)));
}

static nne_status push_layer(cctx *c, const clayer *L) {
    clayer *nl = nne_realloc_array(c->L, (size_t)c->nl + 1, sizeof *nl);
    if (!nl) return NNE_ERR_NOMEM;
    c->L = nl;
    c->L[c->nl++] = *L;
    return NNE_OK;
}

/* One axis of a stride phase of a transposed convolution (input I, kernel K, stride s, crop
 * p at the beginning, output O): the outputs o = o' s + ph, o' < n, are
 *   y[o' s + ph] = sum_{t < J} x[o' + lo + t] * w[k0 + (J - 1 - t) s]
 * with k0 = (ph + p) mod s, J = ceil((K - k0) / s) taps and lo = (ph + p - k0) / s - (J - 1)
 * (from o + p = i s + k): a stride-1 convolution over input rows i0 .. i0 + cnt - 1 with
 * padding pb before and pe after (inputs outside [0, I) are the zeros a transposed
 * convolution never reads). */
typedef struct phase_axis {
    int32_t k0, J, n, i0, cnt, pb, pe;
} phase_axis;

static void phase_axis_get(int32_t I, int32_t K, int32_t s, int32_t p, int32_t O, int32_t ph,
                           phase_axis *a) {
    a->k0 = (ph + p) % s;
    a->J = (K - a->k0 + s - 1) / s; /* >= 1: s <= K */
    a->n = ph < O ? (O - ph + s - 1) / s : 0;
    const int32_t lo = (ph + p - a->k0) / s - (a->J - 1), hi = a->n - 1 + lo + a->J - 1;
    a->i0 = lo > 0 ? lo : 0;
    a->pb = lo < 0 ? -lo : 0;
    a->cnt = (hi < I - 1 ? hi : I - 1) - a->i0 + 1;
    a->pe = hi > I - 1 ? hi - (I - 1) : 0;
}

/* A transposed convolution as sh x sw stride-1 convolutions, one per output phase, each
 * writing its pixels of the output by addressing (SAVE with the strides of every sh-th row
 * and sw-th column): only real taps are computed, and the instructions are the ordinary
 * LOAD / CONV / SAVE. The phases form one program layer (the node's). */
static nne_status expand_phases(cctx *c, const clayer *T) {
    bool first = true;
    for (int32_t py = 0; py < T->sh; py++)
        for (int32_t px = 0; px < T->sw; px++) {
            phase_axis ay, ax;
            phase_axis_get(T->H, T->kh, T->sh, T->pad[0], T->OH, py, &ay);
            phase_axis_get(T->W, T->kw, T->sw, T->pad[1], T->OW, px, &ax);
            if (ay.n < 1 || ax.n < 1) continue; /* no outputs in this phase */
            if (ay.cnt < 1 || ax.cnt < 1)
                return node_err(c->g, T->node, NNE_ERR_UNSUPPORTED,
                                "a stride phase of the transposed convolution reads no input");
            clayer P = *T;
            P.phase = true;
            P.cont = !first;
            P.ops = first ? T->ops : 0; /* the node's workload, once */
            P.wkh = T->kh, P.wkw = T->kw, P.k0y = ay.k0, P.k0x = ax.k0;
            P.kh = ay.J, P.kw = ax.J;
            P.sh = P.sw = P.dh = P.dw = 1;
            P.H = ay.cnt, P.W = ax.cnt, P.in_y0 = ay.i0, P.in_x0 = ax.i0;
            P.OH = ay.n, P.OW = ax.n;
            P.pad[0] = ay.pb, P.pad[1] = ax.pb, P.pad[2] = ay.pe, P.pad[3] = ax.pe;
            P.ex_h = ay.pe - (ay.J - 1), P.ex_w = ax.pe - (ax.J - 1);
            P.out_y0 = py, P.out_x0 = px, P.out_sy = T->sh, P.out_sx = T->sw;
            nne_status s = push_layer(c, &P);
            if (s) return s;
            first = false;
        }
    return NNE_OK;
}

/* Build the layer list: conv (+ batchnorm) (+ activation) fused; pool; add; concat is no
 * layer (its inputs are written into its output by addressing). */
static nne_status build_layers(cctx *c, bool *absorbed) {
    const nne_graph *g = c->g;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        if (absorbed[i]) continue;
        const nne_node *n = &g->nodes[i];
        clayer L;
        memset(&L, 0, sizeof L);
        L.node = i;
        L.in = n->inputs[0];
        L.in2 = -1;
        L.out = n->output;
        L.bias_w = c->exec ? 4 : 1;
        L.slope_t = -1;
        bool ph = false;
        nne_status qs = NNE_OK;
        switch (n->op) {
        case NNE_OP_CONV2D:
        case NNE_OP_CONV_TRANSPOSE2D: {
            const nne_conv2d_geom *gm = &n->conv_geom;
            if (gm->groups != 1) return node_err(g, i, NNE_ERR_UNSUPPORTED, "grouped convolution");
            if (n->op == NNE_OP_CONV_TRANSPOSE2D) {
                /* Decomposed into stride phases (expand_phases): every phase needs a tap. */
                if (gm->dil_h != 1 || gm->dil_w != 1)
                    return node_err(g, i, NNE_ERR_UNSUPPORTED, "dilated transposed convolution");
                if (gm->stride_h > gm->kh || gm->stride_w > gm->kw)
                    return node_err(g, i, NNE_ERR_UNSUPPORTED,
                                    "transposed convolution with a stride above its kernel");
            } else if (gm->pad_t > (gm->kh - 1) * gm->dil_h ||
                       gm->pad_b > (gm->kh - 1) * gm->dil_h ||
                       gm->pad_l > (gm->kw - 1) * gm->dil_w ||
                       gm->pad_r > (gm->kw - 1) * gm->dil_w) {
                /* A tile must read at least one input row and column: padding beyond the
                 * kernel's reach would give border outputs that see padding only. */
                return node_err(g, i, NNE_ERR_UNSUPPORTED,
                                "padding larger than the dilated kernel extent (k - 1) x d");
            }
            L.kind = NNE_DPU_CONV;
            L.H = gm->ih, L.W = gm->iw, L.C = gm->ic, L.OH = gm->oh, L.OW = gm->ow, L.M = gm->oc;
            L.kh = gm->kh, L.kw = gm->kw, L.sh = gm->stride_h, L.sw = gm->stride_w;
            L.dh = gm->dil_h, L.dw = gm->dil_w;
            L.pad[0] = gm->pad_t, L.pad[1] = gm->pad_l, L.pad[2] = gm->pad_b, L.pad[3] = gm->pad_r;
            nne_node_cost cost;
            nne_status s = nne_node_cost_get(g, i, &cost);
            if (s) return s;
            L.ops = 2 * (uint64_t)cost.macs;
            L.fp_w = fixpos(g, n->inputs[1], PH_W, &ph);
            L.fp_bias = fixpos(g, n->n_inputs > 2 ? n->inputs[2] : -1, PH_BIAS, &ph);
            L.fp_act = PH_SLOPE;
            if (c->exec) {
                /* s8 weights with one pow2 scale; s32 bias at s_x * s_w (docs/quantization.md,
                 * 3), so fp_bias = fp_in + fp_w (set below, once fp_in is known). */
                if ((qs = qfp(g, n->inputs[1], NNE_S8, &L.fp_w))) return qs;
                int32_t bt = n->n_inputs > 2 ? n->inputs[2] : -1;
                if (bt >= 0 && g->tensors[bt].dtype != NNE_S32)
                    return node_err(g, i, NNE_ERR_UNSUPPORTED, "bias is not s32");
            }
            /* Fuse what follows while the intermediate tensor has one consumer and is not an
             * output: batchnorm (folded into the weights by quantization), then one
             * activation. */
            for (int step = 0; step < 2; step++) {
                int32_t next = -1;
                if (is_output(g, L.out) || consumers(g, L.out, &next) != 1) break;
                const nne_node *m = &g->nodes[next];
                if (m->inputs[0] != L.out) break;
                if (m->op == NNE_OP_BATCHNORM && step == 0) {
                    if (c->exec)
                        return node_err(g, next, NNE_ERR_UNSUPPORTED,
                                        "batchnorm in a quantized graph (fold it into the "
                                        "convolution before quantizing)");
                    absorbed[next] = true;
                    L.out = m->output;
                    continue;
                }
                uint8_t act = m->op == NNE_OP_RELU         ? NNE_DPU_ACT_RELU
                              : m->op == NNE_OP_RELU6      ? NNE_DPU_ACT_RELU6
                              : m->op == NNE_OP_LEAKY_RELU ? NNE_DPU_ACT_LEAKY
                              : m->op == NNE_OP_PRELU      ? NNE_DPU_ACT_PRELU
                                                           : NNE_DPU_ACT_NONE;
                if (act == NNE_DPU_ACT_NONE) break;
                if (c->exec) {
                    if ((qs = same_fp(g, next, L.out, m->output))) return qs;
                    if (act == NNE_DPU_ACT_LEAKY) {
                        /* slope code * 2^-k: alpha = code at fp_act = k */
                        int32_t code = 0, k = 0;
                        if ((qs = slope_code(g, next, m->params.leaky.alpha, &code, &k))) return qs;
                        L.leaky_q = (int8_t)code;
                        L.fp_act = (int8_t)k;
                    } else if (act == NNE_DPU_ACT_PRELU) {
                        /* slopes code[m] * 2^-k[m] as int8 code[m] * 2^(fp_act - k[m]) with
                         * fp_act = the largest k of a non-zero slope: they must fit in int8
                         * (they do when the quantize pass made them: one code range). */
                        const nne_tensor *st = &g->tensors[m->inputs[1]];
                        if (st->dtype != NNE_F32 || !st->data)
                            return node_err(g, next, NNE_ERR_UNSUPPORTED,
                                            "PReLU slopes must be an f32 constant");
                        const int64_t ns = nne_shape_numel(&st->shape);
                        const float *sd = st->data;
                        int32_t kmax = -99;
                        for (int64_t j = 0; j < ns; j++) {
                            int32_t code = 0, k = 0;
                            if ((qs = slope_code(g, next, sd[j], &code, &k))) return qs;
                            if (code && k > kmax) kmax = k;
                        }
                        if (kmax == -99) kmax = 0; /* all zero */
                        for (int64_t j = 0; j < ns; j++) {
                            int32_t code = 0, k = 0;
                            (void)nne_slope_pow2(sd[j], &code, &k);
                            if (code && (kmax - k > 7 || code * (1 << (kmax - k)) > 127 ||
                                         code * (1 << (kmax - k)) < -128))
                                return node_err(g, next, NNE_ERR_UNSUPPORTED,
                                                "PReLU slopes do not fit int8 codes at one "
                                                "fixed point (too far apart)");
                        }
                        L.fp_act = (int8_t)kmax;
                        L.slope_t = m->inputs[1];
                    }
                    L.act = act;
                    absorbed[next] = true;
                    L.out = m->output;
                    break;
                }
                if (act == NNE_DPU_ACT_LEAKY) {
                    /* The DPU's leaky slope is an int8 at 2^-8 (0.1 -> 26 / 256). */
                    float q = roundf(m->params.leaky.alpha * 256.0f);
                    L.leaky_q = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
                    L.fp_act = 8;
                }
                if (act == NNE_DPU_ACT_PRELU) L.fp_act = fixpos(g, m->inputs[1], PH_SLOPE, &ph);
                L.act = act;
                absorbed[next] = true;
                L.out = m->output;
                break;
            }
            break;
        }
        case NNE_OP_MAXPOOL2D:
        case NNE_OP_AVGPOOL2D: {
            const nne_pool2d_geom *pg = &n->pool_geom;
            if (pg->kh > 255 || pg->kw > 255 || pg->stride_h > 255 || pg->stride_w > 255)
                return node_err(g, i, NNE_ERR_UNSUPPORTED, "window or stride above 255");
            L.kind = NNE_DPU_POOL;
            L.pool_kind = n->op == NNE_OP_MAXPOOL2D ? NNE_DPU_POOL_MAX : NNE_DPU_POOL_AVG;
            L.H = pg->ih, L.W = pg->iw, L.C = L.M = pg->c, L.OH = pg->oh, L.OW = pg->ow;
            L.kh = pg->kh, L.kw = pg->kw, L.sh = pg->stride_h, L.sw = pg->stride_w;
            L.dh = L.dw = 1;
            L.pad[0] = pg->pad_t, L.pad[1] = pg->pad_l, L.pad[2] = pg->pad_b, L.pad[3] = pg->pad_r;
            L.ops = (uint64_t)L.OH * L.OW * L.C;
            if (c->exec && L.pool_kind == NNE_DPU_POOL_AVG && !pg->count_include_pad &&
                (L.pad[0] | L.pad[1] | L.pad[2] | L.pad[3]))
                return node_err(g, i, NNE_ERR_UNSUPPORTED,
                                "padded average pooling without count_include_pad (the DPU "
                                "divides by kh x kw)");
            break;
        }
        case NNE_OP_ADD: {
            const nne_shape *s0 = &g->tensors[n->inputs[0]].shape;
            if (s0->ndim != 4)
                return node_err(g, i, NNE_ERR_UNSUPPORTED, "add of non-NHWC tensors");
            L.kind = NNE_DPU_ELEW;
            L.in2 = n->inputs[1];
            L.H = L.OH = (int32_t)s0->dim[1], L.W = L.OW = (int32_t)s0->dim[2];
            L.C = L.M = (int32_t)s0->dim[3];
            L.kh = L.kw = L.sh = L.sw = L.dh = L.dw = 1;
            L.ops = (uint64_t)L.OH * L.OW * L.C;
            L.fp_in2 = fixpos(g, L.in2, PH_ACT, &ph);
            int32_t next = -1;
            if (!is_output(g, L.out) && consumers(g, L.out, &next) == 1 &&
                g->nodes[next].op == NNE_OP_RELU && g->nodes[next].inputs[0] == L.out) {
                if (c->exec && (qs = same_fp(g, next, L.out, g->nodes[next].output))) return qs;
                L.act = NNE_DPU_ACT_RELU;
                absorbed[next] = true;
                L.out = g->nodes[next].output;
            }
            break;
        }
        case NNE_OP_CONCAT:
            /* Concat by addressing copies: every input keeps the output's fixed point. */
            for (int32_t k = 0; c->exec && k < n->n_inputs; k++)
                if ((qs = same_fp(g, i, n->inputs[k], n->output))) return qs;
            continue;
        default:
            return node_err(g, i, NNE_ERR_UNSUPPORTED,
                            "not supported by the DPU compiler (conv2d and conv_transpose2d with "
                            "an activation, pooling, add and concat are)");
        }
        const nne_tensor *ti = &g->tensors[L.in];
        L.fp_in = fixpos(g, L.in, ti->kind == NNE_TENSOR_INPUT ? PH_IN : PH_ACT, &ph);
        L.fp_out = fixpos(g, L.out, PH_ACT, &ph);
        if (c->exec) {
            if ((qs = qfp(g, L.in, NNE_S8, &L.fp_in)) || (qs = qfp(g, L.out, NNE_S8, &L.fp_out)))
                return qs;
            if (L.in2 >= 0 && (qs = qfp(g, L.in2, NNE_S8, &L.fp_in2))) return qs;
            if (L.kind == NNE_DPU_CONV) L.fp_bias = (int8_t)(L.fp_in + L.fp_w);
            if (L.kind == NNE_DPU_CONV && (L.fp_bias < -32 || L.fp_bias > 32))
                return node_err(g, i, NNE_ERR_UNSUPPORTED, "fp_in + fp_w outside -32..32");
            /* add: exact alignment of both inputs as nne_qadd_init does it without
             * reducing its extra bits (left shifts <= 22), final shift |F - fp_out| <= 31. */
            int32_t F = L.fp_in > L.fp_in2 ? L.fp_in : L.fp_in2;
            int32_t fmin = L.fp_in + L.fp_in2 - F;
            if (L.kind == NNE_DPU_ELEW &&
                (F - fmin > 22 || F - L.fp_out > 31 || L.fp_out - fmin > 22))
                return node_err(g, i, NNE_ERR_UNSUPPORTED,
                                "add inputs / output fixed points too far apart (over 22 bits)");
            ph = false;
        }
        L.placeholder = ph;
        if (g->tensors[L.out].shape.ndim != 4 || g->tensors[L.out].shape.dim[0] != 1)
            return node_err(g, i, NNE_ERR_UNSUPPORTED, "batch size other than 1");
        if (L.H > 65535 || L.W > 65535 || L.C > 65535 || L.M > 65535 || L.kh > 255 || L.kw > 255 ||
            L.sh > 255 || L.sw > 255 || L.dh > 255 || L.dw > 255 || L.pad[0] > 255 ||
            L.pad[1] > 255 || L.pad[2] > 255 || L.pad[3] > 255)
            return node_err(g, i, NNE_ERR_LIMIT,
                            "a dimension above 65535 or a kernel, stride, dilation or padding "
                            "above 255");
        if (L.kind == NNE_DPU_CONV && (uint64_t)L.kh * L.kw * L.C > NNE_DPU_MAX_TAPS)
            return node_err(g, i, NNE_ERR_LIMIT,
                            "more than 131071 taps per output (the int32 accumulator's bound)");
        L.out_sy = L.out_sx = 1;
        qs = n->op == NNE_OP_CONV_TRANSPOSE2D ? expand_phases(c, &L) : push_layer(c, &L);
        if (qs) return qs;
    }
    if (c->nl == 0) return nne_error(NNE_ERR_UNSUPPORTED, "dpu: graph '%s' has no layer", g->name);
    if (c->nl > (int32_t)NNE_DPU_MAX_LAYERS)
        return nne_error(NNE_ERR_LIMIT, "dpu: more than %u layers", NNE_DPU_MAX_LAYERS);
    return NNE_OK;
}

/* ---- DDR placement ---- */

static nne_status place(cctx *c, int32_t t, int depth);

/* A tensor consumed by a concat lives inside the concat's output, at its channel offset. */
static nne_status place_in_concat(cctx *c, int32_t t, int32_t node, int depth) {
    const nne_graph *g = c->g;
    const nne_node *n = &g->nodes[node];
    const nne_shape *so = &g->tensors[n->output].shape;
    int32_t axis =
        n->params.concat.axis < 0 ? n->params.concat.axis + so->ndim : n->params.concat.axis;
    if (so->ndim != 4 || axis != 3)
        return node_err(g, node, NNE_ERR_UNSUPPORTED, "concat on an axis other than channels");
    nne_status s = place(c, n->output, depth + 1);
    if (s) return s;
    uint64_t ch = 0;
    for (int32_t k = 0; k < n->n_inputs && n->inputs[k] != t; k++)
        ch += (uint64_t)g->tensors[n->inputs[k]].shape.dim[3];
    dview v = c->view[n->output];
    v.offset += ch;
    c->view[t] = v;
    return NNE_OK;
}

static nne_status place(cctx *c, int32_t t, int depth) {
    const nne_graph *g = c->g;
    if (c->view[t].placed) return NNE_OK;
    if (depth > 64) return nne_error(NNE_ERR_LIMIT, "dpu: concats nested more than 64 deep");
    const nne_tensor *ts = &g->tensors[t];
    int32_t concat = -1, n_concat = 0;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == NNE_OP_CONCAT)
            for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
                if (g->nodes[i].inputs[k] == t) {
                    concat = i;
                    n_concat++;
                    break;
                }
    if (n_concat > 1)
        return nne_error(NNE_ERR_UNSUPPORTED, "dpu: tensor '%s' feeds two concats", ts->name);
    if (n_concat == 1) {
        if (ts->kind != NNE_TENSOR_ACTIVATION || is_output(g, t))
            return node_err(g, concat, NNE_ERR_UNSUPPORTED,
                            "concat of a graph input or output (copy it first)");
        c->view[t].placed = true; /* guards against cycles; overwritten below */
        return place_in_concat(c, t, concat, depth);
    }
    const nne_shape *sh = &ts->shape;
    uint64_t W = (uint64_t)sh->dim[2], C = (uint64_t)sh->dim[3];
    uint64_t bytes = (uint64_t)nne_shape_numel(sh);
    uint8_t r = ts->kind == NNE_TENSOR_INPUT ? NNE_DPU_REG_INPUT
                : is_output(g, t)            ? NNE_DPU_REG_OUTPUT
                                             : NNE_DPU_REG_WORK;
    dview v = {r, true, nne_align_up(c->region_size[r], 64), W * C, C};
    c->region_size[r] = v.offset + bytes;
    if (c->region_size[r] > UINT32_MAX)
        return nne_error(NNE_ERR_LIMIT, "dpu: DDR region over 4 GiB at tensor '%s'", ts->name);
    c->view[t] = v;
    return NNE_OK;
}

/* ---- emission ---- */

static nne_dpu_instr mem_instr(uint8_t op, uint16_t layer, uint8_t buffer, uint64_t bank_off,
                               const dview *v, uint64_t y, uint64_t x, uint64_t ch, uint32_t rows,
                               uint32_t cols, uint32_t channels) {
    nne_dpu_instr in;
    memset(&in, 0, sizeof in);
    in.op = op;
    in.layer = layer;
    nne_dpu_mem *m = &in.u.mem;
    m->ddr_offset = (uint32_t)(v->offset + y * v->row_stride + x * v->col_stride + ch);
    m->bank_offset = (uint32_t)bank_off;
    m->region = v->region;
    m->buffer = buffer;
    m->rows = (uint16_t)rows;
    m->cols = (uint16_t)cols;
    m->channels = (uint16_t)channels;
    m->row_stride = (uint32_t)v->row_stride;
    m->col_stride = (uint32_t)v->col_stride;
    return in;
}

/* Input extent along one axis for outputs [o0, o0 + n): first row, row count, padding. */
static void in_extent(int32_t o0, int32_t n, int32_t k, int32_t s, int32_t d, int32_t pad_begin,
                      int32_t in_size, int32_t *i0, int32_t *cnt, int32_t *pb, int32_t *pe) {
    int32_t lo = o0 * s - pad_begin;
    int32_t hi = (o0 + n - 1) * s - pad_begin + (k - 1) * d; /* inclusive */
    *pb = lo < 0 ? -lo : 0;
    *pe = hi > in_size - 1 ? hi - (in_size - 1) : 0;
    *i0 = lo < 0 ? 0 : lo;
    *cnt = (hi > in_size - 1 ? in_size - 1 : hi) - *i0 + 1;
}

static int32_t imin(int32_t a, int32_t b) { return a < b ? a : b; }

/* Largest input tile (rows or cols) for output tiles of t. */
static int32_t max_in(int32_t t, int32_t k, int32_t s, int32_t d, int32_t in_size) {
    return imin((t - 1) * s + (k - 1) * d + 1, in_size);
}

typedef struct layout {
    uint64_t in_slot, out_slot, in2_slot, w_slot;
    bool w_resident; /* all filters loaded once */
    int32_t w_slots;
} layout;

/* Buffer plan of a tiling; false if it does not fit. Feature maps are double buffered
 * (two input and two output slots); filters too when they are reloaded. */
static bool plan(const nne_dpu_arch *a, const clayer *L, const tiling *t, layout *lo) {
    memset(lo, 0, sizeof *lo);
    /* A phase's last tile must reach back to a real input row / column. */
    if (L->ex_h > 0 && (L->OH % t->th ? L->OH % t->th : t->th) <= L->ex_h) return false;
    if (L->ex_w > 0 && (L->OW % t->tw ? L->OW % t->tw : t->tw) <= L->ex_w) return false;
    int32_t ir = max_in(t->th, L->kh, L->sh, L->dh, L->H),
            ic = max_in(t->tw, L->kw, L->sw, L->dw, L->W);
    if (ir < 1 || ic < 1 || ir > 65535 || ic > 65535) return false;
    lo->in_slot = nne_dpu_bank_bytes(a, (uint32_t)ir, (uint32_t)ic, (uint32_t)L->C);
    lo->out_slot = nne_dpu_bank_bytes(a, (uint32_t)t->th, (uint32_t)t->tw, (uint32_t)t->tm);
    if (L->kind == NNE_DPU_ELEW) lo->in2_slot = lo->in_slot;
    if (2 * (lo->in_slot + lo->in2_slot + lo->out_slot) > a->fmap_bytes) return false;
    if (L->kind != NNE_DPU_CONV) return true;
    uint64_t all = nne_dpu_weight_bank_bytes(a, (uint32_t)L->M, (uint32_t)L->kh, (uint32_t)L->kw,
                                             (uint32_t)L->C);
    lo->w_slot = nne_dpu_weight_bank_bytes(a, (uint32_t)t->tm, (uint32_t)L->kh, (uint32_t)L->kw,
                                           (uint32_t)L->C);
    if ((uint32_t)L->M * (uint32_t)(L->bias_w + (L->act == NNE_DPU_ACT_PRELU)) > a->bias_bytes)
        return false;
    if (t->tm >= L->M || (t->order == 1 && all <= a->weight_bytes)) {
        if (all > a->weight_bytes) return false;
        lo->w_resident = true;
        lo->w_slots = 1;
        return true;
    }
    lo->w_slots = 2;
    return 2 * lo->w_slot <= a->weight_bytes;
}

static nne_status emit_weights(ivec *iv, const cctx *c, const clayer *L, uint16_t li,
                               uint64_t bank_off, int32_t m0, int32_t mc) {
    dview pv = {NNE_DPU_REG_PARAMS, true, L->w_off, 0, (uint64_t)L->C};
    pv.row_stride = (uint64_t)L->kh * L->kw * L->C;
    nne_dpu_instr in = mem_instr(NNE_DPU_LOAD, li, NNE_DPU_BUF_WEIGHT, bank_off, &pv, (uint64_t)m0,
                                 0, 0, (uint32_t)mc, (uint32_t)(L->kh * L->kw), (uint32_t)L->C);
    (void)c;
    return ivec_push(iv, &in);
}

/* Emit one layer with tiling t (plan() must have accepted it). */
static nne_status emit_layer(ivec *iv, const cctx *c, const clayer *L, uint16_t li,
                             const tiling *t) {
    const nne_dpu_arch *a = c->a;
    layout lo;
    if (!plan(a, L, t, &lo)) return nne_error(NNE_ERR_INTERNAL, "dpu: tiling does not fit");
    const dview *vin = &c->view[L->in];
    /* The output pixels this layer writes (a transposed convolution's phase: every
     * out_sy-th row and out_sx-th column from (out_y0, out_x0)). */
    dview vo = c->view[L->out];
    vo.offset += (uint64_t)L->out_y0 * vo.row_stride + (uint64_t)L->out_x0 * vo.col_stride;
    vo.row_stride *= (uint64_t)L->out_sy;
    vo.col_stride *= (uint64_t)L->out_sx;
    const dview *vout = &vo;
    const dview *vin2 = L->in2 >= 0 ? &c->view[L->in2] : NULL;
    /* fmap buffer: [in slot 0][in slot 1][in2 slots][out slot 0][out slot 1] */
    const uint64_t in_base = 0, in2_base = 2 * lo.in_slot, out_base = in2_base + 2 * lo.in2_slot;
    nne_status s;
    const int32_t n_rt = (L->OH + t->th - 1) / t->th, n_ct = (L->OW + t->tw - 1) / t->tw;
    const int32_t n_mt = (L->M + t->tm - 1) / t->tm;
    const bool prelu = L->act == NNE_DPU_ACT_PRELU;
    if (L->kind == NNE_DPU_CONV) {
        dview bv = {NNE_DPU_REG_PARAMS, true, L->b_off, 0, 0};
        uint32_t nb = (uint32_t)L->M * (uint32_t)(L->bias_w + prelu);
        bv.row_stride = bv.col_stride = nb;
        nne_dpu_instr in = mem_instr(NNE_DPU_LOAD, li, NNE_DPU_BUF_BIAS, 0, &bv, 0, 0, 0, 1, 1, nb);
        if ((s = ivec_push(iv, &in))) return s;
        if (lo.w_resident && (s = emit_weights(iv, c, L, li, 0, 0, L->M))) return s;
    }
    uint32_t k_in = 0, k_out = 0, k_w = 0;
    /* Loop nest: order 0 = filters outer (weights loaded once per filter group, inputs
     * re-read per group); order 1 = tiles outer (inputs loaded once, filters resident or
     * reloaded per tile). */
    const int32_t outer = t->order == 0 ? n_mt : 1, inner_m = t->order == 0 ? 1 : n_mt;
    for (int32_t mo = 0; mo < outer; mo++) {
        if (L->kind == NNE_DPU_CONV && t->order == 0 && !lo.w_resident) {
            int32_t m0 = mo * t->tm, mc = imin(t->tm, L->M - m0);
            if ((s = emit_weights(iv, c, L, li, (k_w++ % 2) * lo.w_slot, m0, mc))) return s;
        }
        for (int32_t rt = 0; rt < n_rt; rt++)
            for (int32_t ct = 0; ct < n_ct; ct++) {
                const int32_t r0 = rt * t->th, rows = imin(t->th, L->OH - r0);
                const int32_t c0 = ct * t->tw, cols = imin(t->tw, L->OW - c0);
                int32_t iy, ih, pt, pb, ix, iw, pl, pr;
                in_extent(r0, rows, L->kh, L->sh, L->dh, L->pad[0], L->H, &iy, &ih, &pt, &pb);
                in_extent(c0, cols, L->kw, L->sw, L->dw, L->pad[1], L->W, &ix, &iw, &pl, &pr);
                const uint64_t in_off = in_base + (k_in % 2) * lo.in_slot;
                const uint64_t in2_off = in2_base + (k_in % 2) * lo.in2_slot;
                k_in++;
                nne_dpu_instr in = mem_instr(NNE_DPU_LOAD, li, NNE_DPU_BUF_FMAP, in_off, vin,
                                             (uint64_t)(iy + L->in_y0), (uint64_t)(ix + L->in_x0),
                                             0, (uint32_t)ih, (uint32_t)iw, (uint32_t)L->C);
                if ((s = ivec_push(iv, &in))) return s;
                if (vin2) {
                    in = mem_instr(NNE_DPU_LOAD, li, NNE_DPU_BUF_FMAP, in2_off, vin2, (uint64_t)iy,
                                   (uint64_t)ix, 0, (uint32_t)ih, (uint32_t)iw, (uint32_t)L->C);
                    if ((s = ivec_push(iv, &in))) return s;
                }
                for (int32_t mi = 0; mi < inner_m; mi++) {
                    const int32_t m0 = (t->order == 0 ? mo : mi) * t->tm;
                    const int32_t mc = imin(t->tm, L->M - m0);
                    uint64_t w_off = 0;
                    if (L->kind == NNE_DPU_CONV) {
                        if (lo.w_resident)
                            w_off = nne_dpu_weight_bank_bytes(a, (uint32_t)m0, (uint32_t)L->kh,
                                                              (uint32_t)L->kw, (uint32_t)L->C);
                        else if (t->order == 1) {
                            w_off = (k_w++ % 2) * lo.w_slot;
                            if ((s = emit_weights(iv, c, L, li, w_off, m0, mc))) return s;
                        } else
                            w_off = ((k_w - 1) % 2) * lo.w_slot;
                    }
                    const uint64_t out_off = out_base + (k_out++ % 2) * lo.out_slot;
                    memset(&in, 0, sizeof in);
                    in.layer = li;
                    if (L->kind == NNE_DPU_CONV) {
                        nne_dpu_conv *cv = &in.u.conv;
                        in.op = NNE_DPU_CONV;
                        cv->in_offset = (uint32_t)in_off;
                        cv->out_offset = (uint32_t)out_off;
                        cv->weight_offset = (uint32_t)w_off;
                        cv->bias_offset = (uint32_t)(L->bias_w * m0);
                        cv->act_offset = prelu ? (uint32_t)(L->bias_w * L->M + m0) : 0;
                        cv->in_rows = (uint16_t)ih, cv->in_cols = (uint16_t)iw;
                        cv->out_rows = (uint16_t)rows, cv->out_cols = (uint16_t)cols;
                        cv->in_ch = (uint16_t)L->C, cv->out_ch = (uint16_t)mc;
                        cv->kh = (uint8_t)L->kh, cv->kw = (uint8_t)L->kw;
                        cv->sh = (uint8_t)L->sh, cv->sw = (uint8_t)L->sw;
                        cv->dh = (uint8_t)L->dh, cv->dw = (uint8_t)L->dw;
                        cv->pad[0] = (uint8_t)pt, cv->pad[1] = (uint8_t)pl;
                        cv->pad[2] = (uint8_t)pb, cv->pad[3] = (uint8_t)pr;
                        cv->act = L->act;
                        /* Channel augmentation (Vitis AI "channel_augmentation"): a layer
                         * with few input channels folds the kernel width into them. */
                        if (L->kw * L->C <= a->aug_channels && L->C < a->icp)
                            cv->flags = NNE_DPU_CONV_AUG;
                        if (L->bias_w == 4) cv->flags |= NNE_DPU_CONV_BIAS32;
                        cv->fp_in = L->fp_in, cv->fp_w = L->fp_w, cv->fp_bias = L->fp_bias;
                        cv->fp_out = L->fp_out, cv->fp_act = L->fp_act;
                        cv->leaky_alpha = L->leaky_q;
                    } else if (L->kind == NNE_DPU_POOL) {
                        nne_dpu_pool *pq = &in.u.pool;
                        in.op = NNE_DPU_POOL;
                        in.sub = L->pool_kind;
                        pq->in_offset = (uint32_t)in_off, pq->out_offset = (uint32_t)out_off;
                        pq->in_rows = (uint16_t)ih, pq->in_cols = (uint16_t)iw;
                        pq->out_rows = (uint16_t)rows, pq->out_cols = (uint16_t)cols;
                        pq->channels = (uint16_t)L->C;
                        pq->kh = (uint8_t)L->kh, pq->kw = (uint8_t)L->kw;
                        pq->sh = (uint8_t)L->sh, pq->sw = (uint8_t)L->sw;
                        pq->pad[0] = (uint8_t)pt, pq->pad[1] = (uint8_t)pl;
                        pq->pad[2] = (uint8_t)pb, pq->pad[3] = (uint8_t)pr;
                        pq->fp_in = L->fp_in, pq->fp_out = L->fp_out;
                    } else {
                        nne_dpu_elew *e = &in.u.elew;
                        in.op = NNE_DPU_ELEW;
                        in.sub = NNE_DPU_ELEW_ADD;
                        e->in0_offset = (uint32_t)in_off, e->in1_offset = (uint32_t)in2_off;
                        e->out_offset = (uint32_t)out_off;
                        e->rows = (uint16_t)rows, e->cols = (uint16_t)cols;
                        e->channels = (uint16_t)L->C;
                        e->act = L->act;
                        e->fp_in0 = L->fp_in, e->fp_in1 = L->fp_in2, e->fp_out = L->fp_out;
                    }
                    if ((s = ivec_push(iv, &in))) return s;
                    in = mem_instr(NNE_DPU_SAVE, li, NNE_DPU_BUF_FMAP, out_off, vout, (uint64_t)r0,
                                   (uint64_t)c0, (uint64_t)m0, (uint32_t)rows, (uint32_t)cols,
                                   (uint32_t)mc);
                    if ((s = ivec_push(iv, &in))) return s;
                }
            }
    }
    return NNE_OK;
}

/* ---- design-space search ---- */

/* Candidate values along one dimension: every count 1..16, then about 12% apart, up to max
 * (always included), each a multiple of `unit` (or max itself). */
static int32_t ladder(int32_t max, int32_t unit, int32_t *out, int32_t cap) {
    int32_t n = 0;
    int32_t units = (max + unit - 1) / unit;
    for (int32_t k = 1; k <= units && n < cap; k = k < 16 ? k + 1 : (int32_t)ceil(k * 1.12)) {
        int32_t v = k * unit;
        out[n++] = v > max ? max : v;
    }
    if (n && out[n - 1] != max && n < cap) out[n++] = max;
    return n;
}

/* Cycles of a LOAD or SAVE on its engine including the DDR time and the fixed overhead. */
static double mem_cycles(const cctx *c, const nne_dpu_instr *in) {
    uint64_t ddr;
    double cyc = (double)nne_dpu_instr_cycles(c->a, in, &ddr);
    double dc = (double)ddr / nne_dpu_ddr_bytes_per_cycle(c->b);
    return (dc > cyc ? dc : cyc) +
           (in->op == NNE_DPU_LOAD ? c->a->load_overhead : c->a->save_overhead);
}

/* Lower bound of a layer's cycles with tiling t, without emitting it: the CONV/MISC engine's
 * total busy time, after the first tile's input (and filters) are loaded and before the last
 * tile's output is saved; or the SAVE engine's total busy time if longer. Both depend only on
 * tile sizes. */
static double lower_bound(const cctx *c, const clayer *L, const tiling *t) {
    const nne_dpu_arch *a = c->a;
    double conv = 0, save = 0;
    const int32_t szs[3][2][2] = {
        {{t->th, L->OH / t->th}, {L->OH % t->th, 1}},
        {{t->tw, L->OW / t->tw}, {L->OW % t->tw, 1}},
        {{t->tm, L->M / t->tm}, {L->M % t->tm, 1}},
    };
    double last_save = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 2; k++) {
                int32_t r = szs[0][i][0], w = szs[1][j][0], m = szs[2][k][0];
                double cnt = (double)szs[0][i][1] * szs[1][j][1] * szs[2][k][1];
                if (!r || !w || !m || cnt == 0) continue;
                nne_dpu_instr in;
                memset(&in, 0, sizeof in);
                uint64_t dummy;
                if (L->kind == NNE_DPU_CONV) {
                    in.op = NNE_DPU_CONV;
                    in.u.conv.out_rows = (uint16_t)r, in.u.conv.out_cols = (uint16_t)w;
                    in.u.conv.out_ch = (uint16_t)m, in.u.conv.in_ch = (uint16_t)L->C;
                    in.u.conv.kh = (uint8_t)L->kh, in.u.conv.kw = (uint8_t)L->kw;
                    if (L->kw * L->C <= a->aug_channels && L->C < a->icp)
                        in.u.conv.flags = NNE_DPU_CONV_AUG;
                } else if (L->kind == NNE_DPU_POOL) {
                    in.op = NNE_DPU_POOL;
                    in.u.pool.out_rows = (uint16_t)r, in.u.pool.out_cols = (uint16_t)w;
                    in.u.pool.channels = (uint16_t)m;
                    in.u.pool.kh = (uint8_t)L->kh, in.u.pool.kw = (uint8_t)L->kw;
                } else {
                    in.op = NNE_DPU_ELEW;
                    in.u.elew.rows = (uint16_t)r, in.u.elew.cols = (uint16_t)w;
                    in.u.elew.channels = (uint16_t)m;
                }
                conv += cnt * ((double)nne_dpu_instr_cycles(a, &in, &dummy) +
                               (L->kind == NNE_DPU_CONV ? a->conv_overhead : a->misc_overhead));
                memset(&in, 0, sizeof in);
                in.op = NNE_DPU_SAVE;
                in.u.mem.rows = (uint16_t)r, in.u.mem.cols = (uint16_t)w;
                in.u.mem.channels = (uint16_t)m;
                in.u.mem.col_stride = (uint32_t)L->M,
                in.u.mem.row_stride = (uint32_t)(L->OW * L->M);
                double sc = mem_cycles(c, &in);
                save += cnt * sc;
                last_save = sc; /* the last class visited holds the last tile */
            }
    /* The first input tile (and the first filters) before the first CONV. */
    int32_t iy, ih, pt, pb, ix, iw, pl, pr;
    in_extent(0, imin(t->th, L->OH), L->kh, L->sh, L->dh, L->pad[0], L->H, &iy, &ih, &pt, &pb);
    in_extent(0, imin(t->tw, L->OW), L->kw, L->sw, L->dw, L->pad[1], L->W, &ix, &iw, &pl, &pr);
    nne_dpu_instr in;
    memset(&in, 0, sizeof in);
    in.op = NNE_DPU_LOAD;
    in.u.mem.rows = (uint16_t)ih, in.u.mem.cols = (uint16_t)iw, in.u.mem.channels = (uint16_t)L->C;
    in.u.mem.col_stride = (uint32_t)L->C, in.u.mem.row_stride = (uint32_t)(L->W * L->C);
    double first = mem_cycles(c, &in);
    if (L->kind == NNE_DPU_CONV) {
        in.u.mem.rows = (uint16_t)imin(t->tm, L->M), in.u.mem.cols = (uint16_t)(L->kh * L->kw);
        in.u.mem.row_stride = (uint32_t)(L->kh * L->kw * L->C);
        first += mem_cycles(c, &in);
    }
    conv += first + last_save;
    return conv > save ? conv : save;
}

typedef struct cand {
    tiling t;
    double lb; /* lower bound of its cycles */
} cand;

static int cmp_lb(const void *x, const void *y) {
    double a = ((const cand *)x)->lb, b = ((const cand *)y)->lb;
    return a < b ? -1 : a > b;
}

/* Clamp a grid tiling to a layer. */
static tiling clamp(const clayer *L, tiling t) {
    if (t.th > L->OH) t.th = L->OH;
    if (t.tw > L->OW) t.tw = L->OW;
    if (L->kind != NNE_DPU_CONV || t.tm > L->M) t.tm = L->M;
    if ((L->M + t.tm - 1) / t.tm == 1) t.order = 0; /* one filter group: orders coincide */
    return t;
}

/* Time one tiling of a layer (emitting it into scratch). */
static nne_status eval(const cctx *c, const clayer *L, const tiling *t, ivec *scratch,
                       double *cycles, uint64_t *bytes) {
    scratch->n = 0;
    nne_status s = emit_layer(scratch, c, L, 0, t);
    if (s) return s;
    nne_dpu_layer_time lt;
    nne_dpu_time_instrs(c->a, c->b, scratch->v, scratch->n, &lt);
    *cycles = (double)lt.cycles;
    *bytes = lt.load_bytes + lt.save_bytes;
    return NNE_OK;
}

/* Better: fewer cycles; within 0.2 %, less DDR traffic. */
static bool better(double cyc, uint64_t bytes, double best_cyc, uint64_t best_bytes) {
    if (best_cyc < 0) return true;
    if (cyc < best_cyc * 0.998) return true;
    return cyc <= best_cyc * 1.002 && bytes < best_bytes;
}

typedef struct grid {
    int32_t th[128], tw[128], tm[128];
    int32_t nth, ntw, ntm;
} grid;

static void make_grid(const cctx *c, grid *gr) {
    int32_t mh = 1, mw = 1, mm = 1;
    for (int32_t l = 0; l < c->nl; l++) {
        if (c->L[l].OH > mh) mh = c->L[l].OH;
        if (c->L[l].OW > mw) mw = c->L[l].OW;
        if (c->L[l].M > mm) mm = c->L[l].M;
    }
    gr->nth = ladder(mh, 1, gr->th, 128);
    gr->ntw = ladder(mw, c->a->pp, gr->tw, 128);
    gr->ntm = ladder(mm, c->a->ocp, gr->tm, 128);
}

/* Per-layer candidates: the grid clamped to the layer, deduplicated, fitting, sorted by
 * their lower bound. */
static nne_status layer_cands(const cctx *c, const clayer *L, const grid *gr, cand **out,
                              int32_t *n_out) {
    size_t cap = (size_t)gr->nth * gr->ntw * gr->ntm * 2;
    cand *v = nne_malloc(cap * sizeof *v);
    if (!v) return NNE_ERR_NOMEM;
    int32_t n = 0;
    for (int32_t i = 0; i < gr->nth; i++)
        for (int32_t j = 0; j < gr->ntw; j++)
            for (int32_t k = 0; k < gr->ntm; k++)
                for (int32_t o = 0; o < 2; o++) {
                    tiling t = {gr->th[i], gr->tw[j], gr->tm[k], o};
                    if (t.th > L->OH && i > 0 && gr->th[i - 1] >= L->OH) continue;
                    if (t.tw > L->OW && j > 0 && gr->tw[j - 1] >= L->OW) continue;
                    if (t.tm > L->M && k > 0 && gr->tm[k - 1] >= L->M) continue;
                    t = clamp(L, t);
                    if (o == 1 && t.order == 0) continue;
                    layout lo;
                    if (!plan(c->a, L, &t, &lo)) continue;
                    v[n].t = t;
                    v[n].lb = lower_bound(c, L, &t);
                    n++;
                }
    qsort(v, (size_t)n, sizeof *v, cmp_lb);
    *out = v;
    *n_out = n;
    return NNE_OK;
}

static nne_status search_layer(const cctx *c, const clayer *L, const grid *gr, ivec *scratch,
                               tiling *best) {
    cand *v;
    int32_t n;
    nne_status s = layer_cands(c, L, gr, &v, &n);
    if (s) return s;
    double bc = -1;
    uint64_t bb = 0;
    for (int32_t i = 0; i < n; i++) {
        if (bc >= 0 && v[i].lb >= bc) break; /* branch and bound */
        double cyc;
        uint64_t bytes;
        if ((s = eval(c, L, &v[i].t, scratch, &cyc, &bytes))) break;
        if (better(cyc, bytes, bc, bb)) {
            bc = cyc;
            bb = bytes;
            *best = v[i].t;
        }
    }
    nne_free(v);
    if (!s && bc < 0)
        return node_err(c->g, L->node, NNE_ERR_LIMIT,
                        "no tiling fits the on-chip buffers (input channels too many?)");
    return s;
}

/* Uniform tiling: one grid point for every layer (clamped to each), minimising the sum. */
static nne_status search_uniform(const cctx *c, const grid *gr, ivec *scratch, tiling *best) {
    size_t np = (size_t)gr->nth * gr->ntw * gr->ntm * 2;
    cand *v = nne_malloc(np * sizeof *v);
    if (!v) return NNE_ERR_NOMEM;
    size_t n = 0;
    for (int32_t i = 0; i < gr->nth; i++)
        for (int32_t j = 0; j < gr->ntw; j++)
            for (int32_t k = 0; k < gr->ntm; k++)
                for (int32_t o = 0; o < 2; o++) {
                    tiling t = {gr->th[i], gr->tw[j], gr->tm[k], o};
                    double lb = 0;
                    bool ok = true;
                    for (int32_t l = 0; l < c->nl && ok; l++) {
                        tiling tl = clamp(&c->L[l], t);
                        layout lo;
                        ok = plan(c->a, &c->L[l], &tl, &lo);
                        if (ok) lb += lower_bound(c, &c->L[l], &tl);
                    }
                    if (!ok) continue;
                    v[n].t = t;
                    v[n].lb = lb;
                    n++;
                }
    qsort(v, n, sizeof *v, cmp_lb);
    double bc = -1;
    uint64_t bb = 0;
    nne_status s = NNE_OK;
    for (size_t i = 0; i < n && !s; i++) {
        if (bc >= 0 && v[i].lb >= bc) break;
        double tot = 0;
        uint64_t tb = 0;
        for (int32_t l = 0; l < c->nl && !s; l++) {
            tiling tl = clamp(&c->L[l], v[i].t);
            double cyc;
            uint64_t bytes;
            s = eval(c, &c->L[l], &tl, scratch, &cyc, &bytes);
            tot += cyc;
            tb += bytes;
        }
        if (!s && better(tot, tb, bc, bb)) {
            bc = tot;
            bb = tb;
            *best = v[i].t;
        }
    }
    nne_free(v);
    if (!s && bc < 0)
        return nne_error(NNE_ERR_LIMIT, "dpu: no single tiling fits every layer's buffers");
    return s;
}

/* ---- parameters and the program's interface ---- */

/* Input / output geometry and fixed points; for executable programs the PARAMS data:
 * per conv layer OHWI s8 weights at w_off, int32 LE biases at b_off, then int8 PReLU slopes
 * code[m] * 2^(fp_act - k[m]) (docs/dpu-isa.md, "Layouts"). */
static nne_status fill_io(const cctx *c, nne_dpu_program *p) {
    const nne_graph *g = c->g;
    const int32_t ti = g->inputs[0], to = g->outputs[0];
    const nne_shape *si = &g->tensors[ti].shape, *so = &g->tensors[to].shape;
    if (si->ndim != 4 || si->dim[0] != 1 || so->ndim != 4)
        return nne_error(NNE_ERR_UNSUPPORTED, "dpu: the graph input must be [1][H][W][C]");
    p->in_h = (uint16_t)si->dim[1], p->in_w = (uint16_t)si->dim[2], p->in_c = (uint16_t)si->dim[3];
    p->out_h = (uint16_t)so->dim[1], p->out_w = (uint16_t)so->dim[2];
    p->out_c = (uint16_t)so->dim[3];
    bool ph = false;
    p->fp_input = fixpos(g, ti, PH_IN, &ph);
    p->fp_output = fixpos(g, to, PH_ACT, &ph);
    if (!c->exec) {
        p->flags = NNE_DPU_PROGRAM_TIMING_ONLY;
        return NNE_OK;
    }
    const uint32_t size = p->region_size[NNE_DPU_REG_PARAMS];
    if (!size) return NNE_OK;
    uint8_t *d = nne_calloc(size, 1);
    if (!d) return NNE_ERR_NOMEM;
    for (int32_t l = 0; l < c->nl; l++) {
        const clayer *L = &c->L[l];
        if (L->kind != NNE_DPU_CONV) continue;
        const nne_node *n = &g->nodes[L->node];
        const int8_t *w = g->tensors[n->inputs[1]].data;
        if (!L->phase) {
            memcpy(d + L->w_off, w, (size_t)L->M * (size_t)(L->kh * L->kw) * (size_t)L->C);
        } else { /* the phase's flipped sub-kernel of the node's OHWI weights */
            uint8_t *o = d + L->w_off;
            for (int32_t m = 0; m < L->M; m++)
                for (int32_t ty = 0; ty < L->kh; ty++)
                    for (int32_t tx = 0; tx < L->kw; tx++, o += L->C) {
                        const int32_t ky = L->k0y + (L->kh - 1 - ty) * L->out_sy;
                        const int32_t kx = L->k0x + (L->kw - 1 - tx) * L->out_sx;
                        memcpy(o, w + (((size_t)m * L->wkh + ky) * L->wkw + kx) * L->C,
                               (size_t)L->C);
                    }
        }
        const int32_t bt = n->n_inputs > 2 ? n->inputs[2] : -1;
        for (int32_t m = 0; m < L->M && bt >= 0; m++)
            nne_le_wr32(d + L->b_off + 4 * (uint64_t)m,
                        (uint32_t)((const int32_t *)g->tensors[bt].data)[m]);
        if (L->slope_t >= 0) {
            const nne_tensor *st = &g->tensors[L->slope_t];
            const bool one = nne_shape_numel(&st->shape) == 1;
            for (int32_t m = 0; m < L->M; m++)
                d[L->b_off + 4 * (uint64_t)L->M + (uint64_t)m] =
                    (uint8_t)slope_at(((const float *)st->data)[one ? 0 : m], L->fp_act);
        }
    }
    p->params = d;
    p->params_size = size;
    return NNE_OK;
}

/* ---- the compiler ---- */

nne_status nne_dpu_compile(const nne_graph *g, const nne_dpu_arch *arch,
                           const nne_dpu_compile_opts *opts, nne_dpu_program *out) {
    memset(out, 0, sizeof *out);
    if (!g->inferred)
        return nne_error(NNE_ERR_INVALID_ARG, "dpu: graph '%s' is not inferred", g->name);
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return nne_error(NNE_ERR_UNSUPPORTED, "dpu: graph '%s' must have one input and one output",
                         g->name);
    nne_dpu_board ultra;
    const nne_dpu_board *board = opts && opts->board ? opts->board : NULL;
    if (!board) {
        nne_dpu_board_get("ultra96", &ultra);
        board = &ultra;
    }
    cctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.a = arch;
    c.b = board;
    c.exec = g->tensors[g->inputs[0]].dtype == NNE_S8;
    bool *absorbed = nne_calloc((size_t)g->n_nodes + 1, sizeof *absorbed);
    c.view = nne_calloc((size_t)g->n_tensors, sizeof *c.view);
    ivec prog = {NULL, 0, 0}, scratch = {NULL, 0, 0};
    tiling *tl = NULL;
    nne_status s = NNE_OK;
    if (!absorbed || !c.view) {
        s = NNE_ERR_NOMEM;
        goto done;
    }
    if ((s = build_layers(&c, absorbed))) goto done;
    /* DDR: feature maps (concat by addressing), then the parameters of each conv layer:
     * weights [M][kh][kw][C], bias [M], PReLU slopes [M], 16-byte aligned. */
    for (int32_t l = 0; l < c.nl && !s; l++) {
        clayer *L = &c.L[l];
        if (!(s = place(&c, L->in, 0)) && L->in2 >= 0) s = place(&c, L->in2, 0);
        if (!s) s = place(&c, L->out, 0);
    }
    if (s) goto done;
    uint64_t pp = 0;
    for (int32_t l = 0; l < c.nl; l++) {
        clayer *L = &c.L[l];
        if (L->kind != NNE_DPU_CONV) continue;
        L->w_off = pp;
        pp = nne_align_up(pp + (uint64_t)L->M * L->kh * L->kw * L->C, 16);
        L->b_off = pp;
        pp = nne_align_up(
            pp + (uint64_t)L->M * (uint64_t)(L->bias_w + (L->act == NNE_DPU_ACT_PRELU)), 16);
    }
    c.region_size[NNE_DPU_REG_PARAMS] = pp;
    for (int r = 0; r < NNE_DPU_REG_COUNT; r++)
        if (c.region_size[r] > UINT32_MAX) {
            s = nne_error(NNE_ERR_LIMIT, "dpu: a DDR region is over 4 GiB");
            goto done;
        }
    for (int32_t l = 0; l < c.nl; l++) {
        const clayer *L = &c.L[l];
        const dview *vs[3] = {&c.view[L->in], &c.view[L->out],
                              L->in2 >= 0 ? &c.view[L->in2] : NULL};
        for (int k = 0; k < 3; k++)
            if (vs[k] && vs[k]->row_stride * (uint64_t)(k == 1 ? L->out_sy : 1) > UINT32_MAX) {
                s = node_err(g, L->node, NNE_ERR_LIMIT, "a feature-map row is over 4 GiB");
                goto done;
            }
    }
    grid gr;
    make_grid(&c, &gr);
    tl = nne_calloc((size_t)c.nl, sizeof *tl);
    if (!tl) {
        s = NNE_ERR_NOMEM;
        goto done;
    }
    if (opts && opts->tiling == NNE_DPU_TILING_UNIFORM) {
        tiling u = {1, 1, 1, 0};
        if ((s = search_uniform(&c, &gr, &scratch, &u))) goto done;
        for (int32_t l = 0; l < c.nl; l++) tl[l] = clamp(&c.L[l], u);
    } else {
        for (int32_t l = 0; l < c.nl && !s; l++)
            s = search_layer(&c, &c.L[l], &gr, &scratch, &tl[l]);
        if (s) goto done;
    }
    /* Program layers: one per clayer, except that the phases of a transposed convolution
     * share their node's. */
    out->layers = nne_calloc((size_t)c.nl, sizeof *out->layers);
    if (!out->layers) {
        s = NNE_ERR_NOMEM;
        goto done;
    }
    int32_t n_pl = 0;
    for (int32_t l = 0; l < c.nl; l++) {
        const clayer *L = &c.L[l];
        if (!L->cont) {
            nne_dpu_layer *D = &out->layers[n_pl++];
            snprintf(D->name, sizeof D->name, "%s", g->nodes[L->node].name);
            D->kind = L->kind;
            D->act = L->act;
            D->flags = L->placeholder ? NNE_DPU_LAYER_QUANT_PLACEHOLDER : 0;
            D->order = (uint8_t)tl[l].order;
            D->first = prog.n;
            /* the whole output (a transposed convolution's, not its first phase's) */
            D->out_h = (uint16_t)g->tensors[L->out].shape.dim[1];
            D->out_w = (uint16_t)g->tensors[L->out].shape.dim[2];
            D->out_c = (uint16_t)L->M;
            D->tile_h = (uint16_t)tl[l].th, D->tile_w = (uint16_t)tl[l].tw;
            D->tile_m = (uint16_t)tl[l].tm;
        }
        nne_dpu_layer *D = &out->layers[n_pl - 1];
        D->ops += L->ops;
        if ((s = emit_layer(&prog, &c, L, (uint16_t)(n_pl - 1), &tl[l]))) goto done;
        D->count = prog.n - D->first;
    }
    nne_dpu_instr end;
    memset(&end, 0, sizeof end);
    if ((s = ivec_push(&prog, &end))) goto done;
    out->arch = *arch;
    for (int r = 0; r < NNE_DPU_REG_COUNT; r++) out->region_size[r] = (uint32_t)c.region_size[r];
    out->n_layers = (uint32_t)n_pl;
    out->instrs = prog.v;
    out->n_instrs = prog.n;
    prog.v = NULL;
    if ((s = fill_io(&c, out))) goto done;
    s = nne_dpu_program_validate(out);
done:
    if (s) nne_dpu_program_free(out);
    nne_free(prog.v);
    nne_free(scratch.v);
    nne_free(tl);
    nne_free(absorbed);
    nne_free(c.view);
    nne_free(c.L);
    return s;
}
