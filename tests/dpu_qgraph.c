/* Power-of-two quantized test graphs and their node-by-node int8 reference (dpu_qgraph.h). */
#include "dpu_qgraph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/ops.h"
#include "nnedge/qops.h"

void qg_random_codes(nne_test_rng *r, int8_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (int8_t)nne_test_rng_int(r, -128, 127);
}

static nne_status set_fp(nne_tensor *t, int32_t fp) {
    const float s = ldexpf(1.0f, -fp);
    const int32_t zp = 0;
    return nne_quant_set(&t->quant, -1, 1, &s, &zp, true);
}

static int32_t fp_of(const nne_tensor *t) {
    int32_t fp = 0;
    (void)nne_quant_pow2_shift(t->quant.scale[0], &fp);
    return fp;
}

static int32_t producer(const nne_graph *g, int32_t t) {
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].output == t) return i;
    return -1;
}

static bool is_act(nne_op_type op) {
    return op == NNE_OP_RELU || op == NNE_OP_RELU6 || op == NNE_OP_LEAKY_RELU || op == NNE_OP_PRELU;
}

/* A concat input (and, through activations, what feeds it) takes the concat's fixed point. */
static void force(const nne_graph *g, int32_t *forced, int32_t t, int32_t fp) {
    forced[t] = fp;
    int32_t p = producer(g, t);
    if (p >= 0 && is_act(g->nodes[p].op)) force(g, forced, g->nodes[p].inputs[0], fp);
}

static int32_t clampi(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

nne_status qg_quantize_random(nne_graph *g, nne_test_rng *r) {
    int32_t *forced = malloc((size_t)g->n_tensors * sizeof *forced);
    if (!forced) return NNE_ERR_NOMEM;
    for (int32_t t = 0; t < g->n_tensors; t++) forced[t] = 99;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        const nne_node *n = &g->nodes[i];
        if (n->op != NNE_OP_CONCAT) continue;
        int32_t fp = forced[n->output] != 99 ? forced[n->output] : nne_test_rng_int(r, 3, 5);
        forced[n->output] = fp;
        for (int32_t k = 0; k < n->n_inputs; k++) force(g, forced, n->inputs[k], fp);
    }
    nne_status s = NNE_OK;
    nne_tensor *in = &g->tensors[g->inputs[0]];
    in->dtype = NNE_S8;
    if ((s = set_fp(in, nne_test_rng_int(r, 5, 7)))) goto done;
    for (int32_t i = 0; i < g->n_nodes && !s; i++) {
        nne_node *n = &g->nodes[i];
        nne_tensor *x = &g->tensors[n->inputs[0]], *y = &g->tensors[n->output];
        const int32_t fx = fp_of(x);
        int32_t fy = fx;
        switch (n->op) {
        case NNE_OP_CONV2D:
        case NNE_OP_CONV_TRANSPOSE2D: {
            nne_tensor *w = &g->tensors[n->inputs[1]];
            const int64_t nw = nne_shape_numel(&w->shape);
            const int32_t wmax = nne_test_rng_int(r, 20, 127); /* codes in [-wmax, wmax] */
            int8_t *wd = w->data;                              /* f32 storage reused as s8 */
            for (int64_t k = 0; k < nw; k++) wd[k] = (int8_t)nne_test_rng_int(r, -wmax, wmax);
            w->dtype = NNE_S8;
            const int32_t fw = nne_test_rng_int(r, 6, 8);
            if ((s = set_fp(w, fw))) break;
            if (n->n_inputs > 2 && n->inputs[2] >= 0) {
                nne_tensor *b = &g->tensors[n->inputs[2]];
                int32_t *bd = b->data; /* f32 storage reused as s32 */
                const int64_t nb = nne_shape_numel(&b->shape);
                for (int64_t k = 0; k < nb; k++) bd[k] = nne_test_rng_int(r, -20000, 20000);
                b->dtype = NNE_S32;
                nne_quant_free(&b->quant);
            }
            /* Output spread ~ sqrt(taps) * 40 * wmax / 2 codes at fx + fw: shift to ~40. */
            /* (a transposed convolution's outputs see about kh kw / (sh sw) taps) */
            double taps = (double)n->conv_geom.kh * n->conv_geom.kw * n->conv_geom.ic;
            if (n->op == NNE_OP_CONV_TRANSPOSE2D)
                taps /= (double)n->conv_geom.stride_h * n->conv_geom.stride_w;
            const int32_t sh = (int32_t)lround(log2(sqrt(taps) * wmax / 2.0));
            fy = clampi(fx + fw - sh + nne_test_rng_int(r, -1, 1), -8, 16);
            break;
        }
        case NNE_OP_LEAKY_RELU:
            n->params.leaky.alpha = ldexpf(1.0f, -nne_test_rng_int(r, 1, 4));
            break;
        case NNE_OP_PRELU: {
            nne_tensor *a = &g->tensors[n->inputs[1]];
            float *ad = a->data;
            const int64_t na = nne_shape_numel(&a->shape);
            for (int64_t k = 0; k < na; k++) ad[k] = ldexpf(1.0f, -nne_test_rng_int(r, 0, 5));
            break;
        }
        case NNE_OP_MAXPOOL2D:
        case NNE_OP_AVGPOOL2D:
            fy = fx + nne_test_rng_int(r, -1, 1);
            break;
        case NNE_OP_ADD: {
            const int32_t f1 = fp_of(&g->tensors[n->inputs[1]]);
            fy = (fx > f1 ? fx : f1) - nne_test_rng_int(r, 0, 1);
            break;
        }
        default:
            break;
        }
        if (s) break;
        if (forced[n->output] != 99) fy = forced[n->output];
        s = set_fp(y, fy);
    }
    if (!s) s = nne_graph_set_input_shape(g, 0, in->shape); /* invalidate, then re-infer */
    if (!s) s = nne_graph_infer(g);
done:
    free(forced);
    return s;
}

/* ---- random graphs ---- */

typedef struct gb {
    nne_graph *g;
    nne_test_rng *r;
    int32_t n;
    nne_status s;
} gb;

static int32_t add(gb *b, nne_op_type op, const nne_op_params *p, const int32_t *in, int32_t n_in) {
    char name[32], out[40];
    snprintf(name, sizeof name, "n%d", (int)b->n++);
    snprintf(out, sizeof out, "%s.out", name);
    int32_t t = -1;
    if (!b->s) b->s = nne_graph_add_node(b->g, name, op, p, in, n_in, out, &t);
    if (!b->s) b->s = nne_graph_infer(b->g); /* shapes of what comes next */
    return t;
}

static int32_t constant(gb *b, nne_shape sh) {
    char name[32];
    snprintf(name, sizeof name, "c%d", (int)b->n++);
    int32_t t = -1;
    if (!b->s) b->s = nne_graph_add_constant(b->g, name, NNE_F32, sh, NULL, &t);
    return t;
}

static const nne_shape *shape(gb *b, int32_t t) { return &b->g->tensors[t].shape; }

/* conv k x k (stride, dilation, explicit padding) with an optional activation. */
static int32_t conv(gb *b, int32_t x, int32_t oc, int32_t k, int32_t stride, int32_t dil, bool same,
                    int act) {
    const nne_shape *sx = shape(b, x);
    const int64_t ic = sx->dim[3];
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = k;
    p.conv.stride[0] = p.conv.stride[1] = stride;
    p.conv.dilation[0] = p.conv.dilation[1] = dil;
    p.conv.groups = 1;
    if (same) {
        p.conv.pad_mode = NNE_PAD_SAME;
    } else {
        p.conv.pad_mode = NNE_PAD_EXPLICIT;
        for (int j = 0; j < 4; j++) p.conv.pad[j] = nne_test_rng_int(b->r, 0, (k - 1) * dil);
    }
    int32_t in[3] = {x, constant(b, nne_shape_4d(oc, k, k, ic)), constant(b, nne_shape_1d(oc))};
    int32_t y = add(b, NNE_OP_CONV2D, &p, in, 3);
    memset(&p, 0, sizeof p);
    switch (act) {
    case 1:
        return add(b, NNE_OP_RELU, &p, &y, 1);
    case 2:
        return add(b, NNE_OP_RELU6, &p, &y, 1);
    case 3:
        p.leaky.alpha = 0.125f;
        return add(b, NNE_OP_LEAKY_RELU, &p, &y, 1);
    case 4: {
        int32_t a[2] = {y, constant(b, nne_shape_1d(nne_test_rng_int(b->r, 0, 1) ? oc : 1))};
        return add(b, NNE_OP_PRELU, &p, a, 2);
    }
    default:
        return y;
    }
}

nne_status qg_random_graph(nne_test_rng *r, nne_graph **out) {
    gb b = {NULL, r, 0, NNE_OK};
    if ((b.s = nne_graph_create("random", &b.g))) return b.s;
    int32_t x = -1;
    const int32_t h = nne_test_rng_int(r, 5, 24), w = nne_test_rng_int(r, 5, 24);
    b.s = nne_graph_add_input(b.g, "x", NNE_F32, nne_shape_4d(1, h, w, nne_test_rng_int(r, 1, 12)),
                              &x);
    const int32_t layers = nne_test_rng_int(r, 2, 6);
    for (int32_t l = 0; l < layers && !b.s; l++) {
        const nne_shape *sx = shape(&b, x);
        const int32_t H = (int32_t)sx->dim[1], W = (int32_t)sx->dim[2], C = (int32_t)sx->dim[3];
        int kind = nne_test_rng_int(r, 0, 11);
        if (H < 4 || W < 4) kind = 0;
        if (kind >= 10 && H < 16 && W < 16) { /* transposed conv (+ activation) */
            nne_op_params p;
            memset(&p, 0, sizeof p);
            const int32_t k = nne_test_rng_int(r, 1, 5), oc = nne_test_rng_int(r, 1, 24);
            p.conv.kernel[0] = p.conv.kernel[1] = k;
            p.conv.stride[0] = p.conv.stride[1] = nne_test_rng_int(r, 1, k < 3 ? k : 3);
            p.conv.dilation[0] = p.conv.dilation[1] = 1;
            p.conv.groups = 1;
            p.conv.pad_mode = NNE_PAD_EXPLICIT;
            for (int j = 0; j < 4; j++) p.conv.pad[j] = nne_test_rng_int(r, 0, (k - 1) / 2);
            for (int j = 0; j < 2; j++)
                p.conv.out_pad[j] = nne_test_rng_int(r, 0, p.conv.stride[0] - 1);
            int32_t in[3] = {x, constant(&b, nne_shape_4d(oc, k, k, C)),
                             constant(&b, nne_shape_1d(oc))};
            x = add(&b, NNE_OP_CONV_TRANSPOSE2D, &p, in, 3);
            if (!b.s && nne_test_rng_int(r, 0, 1)) {
                int32_t a[2] = {x, constant(&b, nne_shape_1d(oc))};
                memset(&p, 0, sizeof p);
                x = add(&b, NNE_OP_PRELU, &p, a, 2);
            }
        } else if (kind <= 4 || kind >= 10) { /* conv */
            int32_t k = nne_test_rng_int(r, 1, 5), st = nne_test_rng_int(r, 1, 2);
            int32_t dil = k > 1 && nne_test_rng_int(r, 0, 4) == 0 ? 2 : 1;
            if ((k - 1) * dil + 1 > (H < W ? H : W)) k = 1, dil = 1;
            x = conv(&b, x, nne_test_rng_int(r, 1, 40), k, st, dil, false,
                     nne_test_rng_int(r, 0, 4));
        } else if (kind <= 6) { /* pooling */
            nne_op_params p;
            memset(&p, 0, sizeof p);
            int32_t k = nne_test_rng_int(r, 2, 3);
            p.pool.kernel[0] = p.pool.kernel[1] = k;
            p.pool.stride[0] = p.pool.stride[1] = nne_test_rng_int(r, 1, 2);
            for (int j = 0; j < 4; j++) p.pool.pad[j] = nne_test_rng_int(r, 0, k - 1);
            p.pool.count_include_pad = 1;
            x = add(&b, kind == 5 ? NNE_OP_MAXPOOL2D : NNE_OP_AVGPOOL2D, &p, &x, 1);
        } else if (kind <= 8) { /* residual add (+ relu) */
            int32_t y = conv(&b, x, C, 3, 1, 1, true, nne_test_rng_int(r, 0, 1));
            int32_t in[2] = {x, y};
            nne_op_params p;
            memset(&p, 0, sizeof p);
            x = add(&b, NNE_OP_ADD, &p, in, 2);
            if (nne_test_rng_int(r, 0, 1)) x = add(&b, NNE_OP_RELU, &p, &x, 1);
        } else { /* two branches, concatenated on channels */
            int32_t in[2] = {conv(&b, x, nne_test_rng_int(r, 1, 20), 3, 1, 1, true, 1),
                             conv(&b, x, nne_test_rng_int(r, 1, 20), 1, 1, 1, true, 0)};
            nne_op_params p;
            memset(&p, 0, sizeof p);
            p.concat.axis = 3;
            x = add(&b, NNE_OP_CONCAT, &p, in, 2);
        }
    }
    if (!b.s) b.s = nne_graph_mark_output(b.g, x);
    if (!b.s) b.s = nne_graph_infer(b.g);
    if (b.s) {
        nne_graph_free(b.g);
        return b.s;
    }
    *out = b.g;
    return NNE_OK;
}

/* ---- the reference ---- */

static float scale(const nne_graph *g, int32_t t) { return g->tensors[t].quant.scale[0]; }

nne_status qg_reference(const nne_graph *g, const int8_t *in, int8_t *out) {
    int8_t **v = calloc((size_t)g->n_tensors, sizeof *v);
    if (!v) return NNE_ERR_NOMEM;
    nne_status s = NNE_OK;
    v[g->inputs[0]] = (int8_t *)in;
    for (int32_t i = 0; i < g->n_nodes && !s; i++) {
        const nne_node *n = &g->nodes[i];
        const int32_t ti = n->inputs[0], to = n->output;
        const size_t count = (size_t)nne_shape_numel(&g->tensors[to].shape);
        const int32_t C = (int32_t)g->tensors[to].shape.dim[3];
        int8_t *y = v[to] = malloc(count ? count : 1);
        if (!y) {
            s = NNE_ERR_NOMEM;
            break;
        }
        const int8_t *x = v[ti];
        nne_requant rq[4096], rq2[4096];
        nne_qoutput o, o2;
        switch (n->op) {
        case NNE_OP_CONV2D:
        case NNE_OP_CONV_TRANSPOSE2D: {
            const nne_tensor *w = &g->tensors[n->inputs[1]];
            const int32_t bt = n->n_inputs > 2 ? n->inputs[2] : -1;
            s = nne_qoutput_from_quant(&o, rq, 4096, &g->tensors[ti].quant, &w->quant,
                                       &g->tensors[to].quant, NNE_QACT_NONE);
            if (!s && n->op == NNE_OP_CONV2D)
                nne_conv2d_s8__ref(&n->conv_geom, x, 0, w->data,
                                   bt >= 0 ? g->tensors[bt].data : NULL, &o, y);
            else if (!s)
                nne_conv_transpose2d_s8__ref(&n->conv_geom, x, 0, w->data,
                                             bt >= 0 ? g->tensors[bt].data : NULL, &o, y);
            break;
        }
        case NNE_OP_RELU:
        case NNE_OP_RELU6: {
            int32_t lo, hi;
            nne_qact_range(n->op == NNE_OP_RELU ? NNE_QACT_RELU : NNE_QACT_RELU6, scale(g, to), 0,
                           true, &lo, &hi);
            nne_clamp_s8__ref(count, x, lo, hi, y);
            break;
        }
        case NNE_OP_LEAKY_RELU:
        case NNE_OP_PRELU: {
            const float *sl =
                n->op == NNE_OP_PRELU ? g->tensors[n->inputs[1]].data : &n->params.leaky.alpha;
            const int32_t ns = n->op == NNE_OP_PRELU
                                   ? (int32_t)nne_shape_numel(&g->tensors[n->inputs[1]].shape)
                                   : 1;
            int32_t codes[4096], pos_mul = 0;
            s = nne_qprelu_init(&o, rq, &pos_mul, &o2, rq2, codes, scale(g, ti), sl, ns,
                                scale(g, to), 0, true);
            if (!s) nne_prelu_s8__ref(count / (size_t)C, C, x, 0, &o, pos_mul, &o2, codes, y);
            break;
        }
        case NNE_OP_MAXPOOL2D:
        case NNE_OP_AVGPOOL2D:
        {
            int32_t mul = 0;
            s = nne_qrescale_init(&o, rq, scale(g, ti), scale(g, to), 0, true, &mul);
            if (!s)
                nne_pool2d_s8__ref(&n->pool_geom,
                                   n->op == NNE_OP_MAXPOOL2D ? NNE_POOL_MAX : NNE_POOL_AVG, x, 0,
                                   &o, mul, y);
            break;
        }
        case NNE_OP_ADD: {
            nne_qadd qa;
            s = nne_qadd_init(&qa, scale(g, ti), 0, scale(g, n->inputs[1]), 0, scale(g, to), 0,
                              true, NNE_QACT_NONE);
            if (!s) nne_add_s8__ref(count, x, v[n->inputs[1]], &qa, y);
            break;
        }
        case NNE_OP_CONCAT: {
            const int8_t *xs[NNE_MAX_NODE_INPUTS];
            size_t inner[NNE_MAX_NODE_INPUTS];
            int32_t zps[NNE_MAX_NODE_INPUTS];
            nne_qoutput outs[NNE_MAX_NODE_INPUTS];
            int32_t mul = 0;
            for (int32_t k = 0; k < n->n_inputs && !s; k++) {
                xs[k] = v[n->inputs[k]];
                inner[k] = (size_t)g->tensors[n->inputs[k]].shape.dim[3];
                zps[k] = 0;
                s = nne_qrescale_init(&outs[k], &rq[k], scale(g, n->inputs[k]), scale(g, to), 0,
                                      true, &mul);
            }
            if (!s)
                nne_concat_s8__ref(count / (size_t)C, n->n_inputs, xs, inner, zps, outs, mul, y);
            break;
        }
        default:
            s = nne_error(NNE_ERR_UNSUPPORTED, "qg_reference: op %s", nne_op_name(n->op));
        }
    }
    if (!s)
        memcpy(out, v[g->outputs[0]], (size_t)nne_shape_numel(&g->tensors[g->outputs[0]].shape));
    for (int32_t t = 0; t < g->n_tensors; t++)
        if (t != g->inputs[0]) free(v[t]);
    free(v);
    return s;
}
