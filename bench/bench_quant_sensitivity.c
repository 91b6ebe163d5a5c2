/* bench_quant_sensitivity: where a post-training int8 cae-seed loses its PSNR
 * (docs/quantization.md, "Why cae-seed loses in PTQ"). Not a benchmark: a diagnostic run by
 * hand. For every image of DIR, cae-seed (F32) runs in f32 with the activations and weights
 * of the int8 model INT8 (from `nnedge quantize`) simulated one at a time:
 *   act  T   only activation T fake-quantized with INT8's parameters (nne_fake_quant_act_forward,
 *            the cpu-s8 grid), everything else f32;
 *   w    L   only layer L's weights and bias dequantized from INT8;
 *   all      every activation and weight as in INT8 (a float simulation of the int8 model);
 *   cpu-s8   INT8 itself on the cpu-s8 backend (agreement with `all` rules out kernel bugs).
 * With QSENS_BITS=B[,B...] (e.g. 9,10,12) also the fused simulation with B-bit activations on
 * each int8 tensor's own range (2^B - 1 steps instead of 255), for every tensor and for the
 * latent and the decoder only: how many bits a PSNR target would need. The case "weights only"
 * has every layer's int8 weights and f32 activations.
 * PSNR as `nnedge quantize --eval` measures it (border filled, padding cropped). It also
 * prints, per activation, each channel's range in quantization steps of its per-tensor scale:
 * a channel spanning few steps is coarsely quantized whatever the observer.
 *
 *   bench_quant_sensitivity F32.nne INT8.nne DIR [MAX_IMAGES]
 *
 * The model runs as a chain of its nodes (cae-seed: conv2d, conv_transpose2d, prelu) with the
 * fast f32 kernels; each "act"/"w" case reruns only the nodes after the simulated tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/codec.h"
#include "nnedge/conv.h"
#include "nnedge/dataset.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"
#include "nnedge/qat.h"
#include "nnedge/threadpool.h"

#define MAX_CASES 64

typedef struct ctx {
    nne_graph *g;             /* f32 at the image's coded size */
    const nne_graph *q;       /* quantized, same size */
    nne_threadpool *pool;
    void *scratch;
    float **wdq, **bdq;       /* [node] dequantized weights and bias (MAC nodes) */
    float *a, *b;             /* ping-pong buffers, largest activation */
    int act_bits;             /* 8, or more: the same range on a finer grid */
    int32_t bits_from;        /* the finer grid only for tensors produced by nodes >= this */
} ctx;

static int fail(const char *what) {
    fprintf(stderr, "bench_quant_sensitivity: %s: %s\n", what, nne_last_error());
    return 1;
}

/* The node that produces tensor t, or -1. */
static int32_t producer(const nne_graph *g, int32_t t) {
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].output == t) return i;
    return -1;
}

/* Fake-quantize activation t with the int8 model's parameters; a tensor without them (between
 * a conv and the PReLU fused into it, nne_graph_fusable_prelu) stays f32, as in that model. */
static void fq_act(const ctx *c, int32_t t, float *x) {
    const nne_quant *qq = &c->q->tensors[nne_graph_find_tensor(c->q, c->g->tensors[t].name)].quant;
    if (!qq->count) return;
    if (c->act_bits > 8 && t != c->g->inputs[0] && producer(c->g, t) >= c->bits_from) {
        /* The int8 range [s (-128 - zp), s (127 - zp)] on 2^B - 1 steps; B = 8 is the int8 grid. */
        const int32_t levels = (1 << c->act_bits) - 1;
        const float lo = qq->scale[0] * (float)(-128 - qq->zero_point[0]);
        const float sb = qq->scale[0] * 255.0f / (float)levels;
        const size_t e = (size_t)nne_shape_numel(&c->g->tensors[t].shape);
        for (size_t i = 0; i < e; i++) {
            const float q = nearbyintf((x[i] - lo) / sb);
            x[i] = lo + sb * (q < 0.0f ? 0.0f : q > (float)levels ? (float)levels : q);
        }
        return;
    }
    nne_fake_quant_act_forward((size_t)nne_shape_numel(&c->g->tensors[t].shape), x, qq->scale[0],
                               qq->zero_point[0], qq->pow2, x, NULL);
}

/* Run nodes [from, n_nodes) on x (the input of node `from`), into y (the graph output).
 * act_q[t]: fake-quantize activation t after it is produced; w_q[i]: node i uses the int8
 * weights. */
static void run_chain(ctx *c, int32_t from, const float *x, const bool *act_q, const bool *w_q,
                      float *y) {
    const nne_graph *g = c->g;
    const float *in = x;
    for (int32_t i = from; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        float *out = i == g->n_nodes - 1 ? y : (in == c->a ? c->b : c->a);
        const nne_tensor *ot = &g->tensors[n->output];
        if (n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D) {
            const float *w = w_q && w_q[i] ? c->wdq[i] : g->tensors[n->inputs[1]].data;
            const float *b = w_q && w_q[i] ? c->bdq[i] : g->tensors[n->inputs[2]].data;
            if (n->op == NNE_OP_CONV2D)
                nne_conv2d_f32(c->pool, &n->conv_geom, in, w, b, NULL, out, c->scratch);
            else
                nne_conv_transpose2d_f32(c->pool, &n->conv_geom, in, w, b, NULL, out, c->scratch);
        } else { /* prelu */
            const nne_tensor *s = &g->tensors[n->inputs[1]];
            const int32_t ch = (int32_t)ot->shape.dim[ot->shape.ndim - 1];
            nne_prelu_f32__ref((size_t)nne_shape_numel(&ot->shape) / (size_t)ch, ch, in, s->data,
                               (int32_t)nne_shape_numel(&s->shape), out);
        }
        if (act_q && act_q[n->output]) fq_act(c, n->output, out);
        in = out;
    }
}

static double psnr(const nne_image *img, float *y, int32_t ph, int32_t pw) {
    nne_cae_output_crop(y, ph, pw, img->height, img->width);
    const size_t m = (size_t)img->width * img->height * 3;
    double se = 0;
    for (size_t i = 0; i < m; i++) { /* 8-bit output, as nnedge quantize --eval */
        const double v = fmin(255.0, fmax(0.0, floor((double)y[i] * 255.0 + 0.5)));
        se += (v - img->data[i]) * (v - img->data[i]);
    }
    return 10.0 * log10(255.0 * 255.0 / fmax(se / (double)m, 1e-12));
}

typedef struct chstat {
    int32_t c;
    float *lo, *hi; /* [c] per-channel extremes over all images */
} chstat;

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_quant_sensitivity F32.nne INT8.nne DIR [MAX_IMAGES]\n");
        return 2;
    }
    const int max_images = argc > 4 ? atoi(argv[4]) : 1 << 30;
    nne_graph *f32 = NULL, *q8 = NULL;
    if (nne_model_read_file(argv[1], &f32) || nne_graph_infer(f32)) return fail(argv[1]);
    if (nne_model_read_file(argv[2], &q8) || nne_graph_infer(q8)) return fail(argv[2]);
    nne_dataset *ds = NULL;
    const nne_dataset_opts dopts = {false, false, 21, 21};
    if (nne_dataset_open(argv[3], &dopts, &ds)) return fail(argv[3]);
    ctx c = {.act_bits = 8};
    if (nne_threadpool_create(2, &c.pool)) return fail("threadpool");
    /* Cases: 0 f32, 1 all, 2 cpu-s8, 3 all with conv+PReLU fused, then one per activation and one per MAC layer (names
     * taken from the f32 model, whose tensors and nodes every size shares). */
    int bits[8], n_bits = 0;
    for (const char *b = getenv("QSENS_BITS"); b && *b && n_bits < 8;) {
        char *end = NULL;
        const long v = strtol(b, &end, 10);
        if (end == b || v < 8 || v > 16) {
            fprintf(stderr, "bench_quant_sensitivity: QSENS_BITS: expected B[,B...] in 8..16\n");
            return 2;
        }
        bits[n_bits++] = (int)v;
        b = *end == ',' ? end + 1 : end;
    }
    char names[MAX_CASES][64];
    double sum[MAX_CASES] = {0};
    int n_cases = 4;
    snprintf(names[0], 64, "f32");
    snprintf(names[1], 64, "all (float simulation)");
    snprintf(names[2], 64, "cpu-s8");
    snprintf(names[3], 64, "all, conv+prelu fused (simulation)");
    chstat st[256] = {0};
    const int n = nne_dataset_size(ds) < max_images ? nne_dataset_size(ds) : max_images;
    for (int im = 0; im < n; im++) {
        nne_image img = {0};
        bool owned = false;
        nne_graph *g = NULL, *gq = NULL;
        if (nne_dataset_image(ds, im, &img, &owned)) return fail(nne_dataset_path(ds, im));
        const int32_t ph = nne_cae_coded_size(img.height), pw = nne_cae_coded_size(img.width);
        if (nne_model_cae_seed_like(f32, ph, pw, NNE_CAE_FULL, &g) ||
            nne_model_copy_weights(g, f32) || nne_graph_infer(g) || nne_quantize_like(g, q8, &gq))
            return fail("rebuild");
        c.g = g;
        c.q = gq;
        /* Buffers: every activation of the clean f32 run, two work buffers, scratch. */
        size_t big = 0, scr = 0;
        for (int32_t t = 0; t < g->n_tensors; t++)
            if (g->tensors[t].kind != NNE_TENSOR_CONSTANT) {
                const size_t e = (size_t)nne_shape_numel(&g->tensors[t].shape);
                if (e > big) big = e;
            }
        c.wdq = calloc((size_t)g->n_nodes, sizeof *c.wdq);
        c.bdq = calloc((size_t)g->n_nodes, sizeof *c.bdq);
        float **act = calloc((size_t)g->n_tensors, sizeof *act);
        for (int32_t i = 0; i < g->n_nodes; i++) {
            const nne_node *nd = &g->nodes[i];
            if (nd->op != NNE_OP_CONV2D && nd->op != NNE_OP_CONV_TRANSPOSE2D) continue;
            const size_t s = nd->op == NNE_OP_CONV2D
                                 ? nne_conv2d_f32_scratch_size(&nd->conv_geom, 2)
                                 : nne_conv_transpose2d_f32_scratch_size(&nd->conv_geom, 2);
            if (s > scr) scr = s;
            /* the rebuilt graph numbers its tensors differently: by name */
            const nne_tensor *wt = &gq->tensors[nne_graph_find_tensor(
                                 gq, g->tensors[nd->inputs[1]].name)],
                             *bt = &gq->tensors[nne_graph_find_tensor(
                                 gq, g->tensors[nd->inputs[2]].name)];
            c.wdq[i] = malloc((size_t)nne_shape_numel(&wt->shape) * sizeof(float));
            c.bdq[i] = malloc((size_t)nne_shape_numel(&bt->shape) * sizeof(float));
            if (nne_dequantize_tensor_s8(&wt->shape, wt->data, &wt->quant, c.wdq[i]))
                return fail(wt->name);
            for (int64_t k = 0; k < nne_shape_numel(&bt->shape); k++)
                c.bdq[i][k] = (float)((const int32_t *)bt->data)[k] *
                              bt->quant.scale[bt->quant.count == 1 ? 0 : k];
        }
        c.scratch = nne_aligned_alloc(scr + 64);
        c.a = nne_aligned_alloc(big * sizeof(float));
        c.b = nne_aligned_alloc(big * sizeof(float));
        float *y = nne_aligned_alloc(big * sizeof(float));
        float *x = nne_aligned_alloc(big * sizeof(float));
        bool *aq = calloc((size_t)g->n_tensors, sizeof *aq), *wq = calloc((size_t)g->n_nodes, 1);
        /* Clean f32 run, node by node, keeping every activation. */
        const int32_t in_t = g->inputs[0];
        act[in_t] = nne_aligned_alloc(big * sizeof(float));
        nne_cae_input_padded(&img, ph, pw, act[in_t]);
        for (int32_t i = 0; i < g->n_nodes; i++) {
            const nne_node *nd = &g->nodes[i];
            const size_t e = (size_t)nne_shape_numel(&g->tensors[nd->output].shape);
            act[nd->output] = nne_aligned_alloc(e * sizeof(float));
            /* one node: run the chain from i with a graph-sized copy, stop after node i */
            const int32_t saved = g->n_nodes;
            g->n_nodes = i + 1;
            run_chain(&c, i, act[nd->inputs[0]], NULL, NULL, act[nd->output]);
            g->n_nodes = saved;
        }
        const int32_t out_t = g->nodes[g->n_nodes - 1].output;
        const size_t ne = (size_t)nne_shape_numel(&g->tensors[out_t].shape);
        memcpy(y, act[out_t], ne * sizeof *y);
        sum[0] += psnr(&img, y, ph, pw);
        /* all */
        for (int32_t t = 0; t < g->n_tensors; t++) aq[t] = g->tensors[t].kind != NNE_TENSOR_CONSTANT;
        for (int32_t i = 0; i < g->n_nodes; i++) wq[i] = c.wdq[i] != NULL;
        memcpy(x, act[in_t], (size_t)nne_shape_numel(&g->tensors[in_t].shape) * sizeof *x);
        fq_act(&c, in_t, x);
        run_chain(&c, 0, x, aq, wq, y);
        sum[1] += psnr(&img, y, ph, pw);
        /* all, but a tensor read only by one PReLU is left in f32: the int8 model with each
         * convolution and its PReLU as one layer (one rounding, at the PReLU's output) */
        for (int32_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == NNE_OP_PRELU) aq[g->nodes[i].inputs[0]] = false;
        memcpy(x, act[in_t], (size_t)nne_shape_numel(&g->tensors[in_t].shape) * sizeof *x);
        fq_act(&c, in_t, x);
        run_chain(&c, 0, x, aq, wq, y);
        sum[3] += psnr(&img, y, ph, pw);
        int k = 4;
        /* every layer's int8 weights, activations f32 */
        memcpy(x, act[in_t], (size_t)nne_shape_numel(&g->tensors[in_t].shape) * sizeof *x);
        run_chain(&c, 0, x, NULL, wq, y);
        snprintf(names[k], 64, "weights only (every layer)");
        sum[k++] += psnr(&img, y, ph, pw);
        /* the same with finer activation grids: every tensor, then the latent and the decoder */
        int32_t latent_node = producer(g, nne_graph_find_tensor(g, "latent"));
        for (int b = 0; b < n_bits; b++)
            for (int part = 0; part < 2; part++) {
                c.act_bits = bits[b];
                c.bits_from = part ? (latent_node < 0 ? 0 : latent_node) : 0;
                memcpy(x, act[in_t], (size_t)nne_shape_numel(&g->tensors[in_t].shape) * sizeof *x);
                fq_act(&c, in_t, x);
                run_chain(&c, 0, x, aq, wq, y);
                c.act_bits = 8;
                snprintf(names[k], 64, "fused, %d-bit acts%s", bits[b],
                         part ? ", latent+decoder only" : "");
                sum[k++] += psnr(&img, y, ph, pw);
            }
        /* cpu-s8 */
        {
            nne_session *ss = NULL;
            if (nne_session_create(gq, nne_backend_cpu_s8(), &ss) ||
                nne_session_set_input_f32(ss, 0, act[in_t],
                                          (size_t)nne_shape_numel(&g->tensors[in_t].shape)) ||
                nne_session_run(ss) || nne_session_get_output_f32(ss, 0, y, ne))
                return fail("cpu-s8");
            nne_session_free(ss);
            sum[2] += psnr(&img, y, ph, pw);
        }
        /* First image: each node of the int8 model on cpu-s8 against its float simulation
         * fed with the same (dequantized) s8 input: codes that differ. */
        if (im == 0 && getenv("QSENS_CHECK")) {
            nne_graph *gx = NULL;
            nne_session *ss = NULL;
            const char *ben = getenv("QSENS_CHECK");
            if (nne_graph_expose_activations(gq, &gx) ||
                nne_session_create(gx, nne_backend_by_name(ben), &ss) ||
                nne_session_set_input_f32(ss, 0, act[in_t],
                                          (size_t)nne_shape_numel(&g->tensors[in_t].shape)) ||
                nne_session_run(ss))
                return fail("check (a model with fused conv + PReLU cannot expose the tensor "
                            "between them: quantize it with --no-fuse-prelu)");
            for (int32_t i = 0; i < g->n_nodes; i++) {
                const nne_node *nd = &g->nodes[i];
                const nne_tensor *it = &gx->tensors[nne_graph_find_tensor(
                                     gx, g->tensors[nd->inputs[0]].name)],
                                 *ot = &gx->tensors[nne_graph_find_tensor(
                                     gx, g->tensors[nd->output].name)];
                const size_t ei = (size_t)nne_shape_numel(&it->shape),
                             eo = (size_t)nne_shape_numel(&ot->shape);
                const int8_t *xi = nne_session_tensor_data(ss, (int32_t)(it - gx->tensors));
                const int8_t *xo = nne_session_tensor_data(ss, (int32_t)(ot - gx->tensors));
                for (size_t p = 0; p < ei; p++)
                    x[p] = it->quant.scale[0] * (float)(xi[p] - it->quant.zero_point[0]);
                for (int32_t k2 = 0; k2 < g->n_nodes; k2++) wq[k2] = c.wdq[k2] != NULL;
                aq[nd->output] = true;
                const int32_t saved = g->n_nodes;
                g->n_nodes = i + 1;
                run_chain(&c, i, x, aq, wq, y);
                g->n_nodes = saved;
                aq[nd->output] = false;
                size_t ndiff = 0;
                int maxd = 0;
                double sd = 0;
                for (size_t p = 0; p < eo; p++) {
                    const int code = (int)lrintf(y[p] / ot->quant.scale[0]) + ot->quant.zero_point[0];
                    const int d = abs(code - xo[p]);
                    if (d && ndiff < 4 && getenv("QSENS_VERBOSE"))
                        printf("  x %d (zp %d, s %g) -> s8 %d, sim %d (%.6f / %g, zp %d)\n",
                               xi[p % ei], it->quant.zero_point[0], (double)it->quant.scale[0],
                               xo[p], code, (double)y[p], (double)ot->quant.scale[0],
                               ot->quant.zero_point[0]);
                    ndiff += d != 0;
                    if (d > maxd) maxd = d;
                    sd += (double)(code - xo[p]);
                }
                printf("check %-24s codes differing %6.3f%%, max %3d, mean signed %+.4f\n",
                       nd->name, 100.0 * (double)ndiff / (double)eo, maxd, sd / (double)eo);
            }
            nne_session_free(ss);
            nne_graph_free(gx);
        }
        memset(aq, 0, (size_t)g->n_tensors * sizeof *aq);
        memset(wq, 0, (size_t)g->n_nodes);
        /* One activation at a time (the input first, then in node order). */
        for (int32_t j = -1; j < g->n_nodes; j++) {
            const int32_t t = j < 0 ? in_t : g->nodes[j].output;
            const size_t e = (size_t)nne_shape_numel(&g->tensors[t].shape);
            const nne_tensor *tt = &g->tensors[t];
            const int32_t ch = (int32_t)tt->shape.dim[tt->shape.ndim - 1];
            chstat *cs = &st[k];
            if (!cs->c) {
                cs->c = ch;
                cs->lo = malloc((size_t)ch * sizeof *cs->lo);
                cs->hi = malloc((size_t)ch * sizeof *cs->hi);
                for (int32_t q = 0; q < ch; q++) cs->lo[q] = INFINITY, cs->hi[q] = -INFINITY;
            }
            for (size_t p = 0; p < e; p++) {
                const float v = act[t][p];
                const size_t q = p % (size_t)ch;
                if (v < cs->lo[q]) cs->lo[q] = v;
                if (v > cs->hi[q]) cs->hi[q] = v;
            }
            memcpy(x, act[t], e * sizeof *x);
            fq_act(&c, t, x);
            if (j == g->n_nodes - 1)
                memcpy(y, x, e * sizeof *y);
            else
                run_chain(&c, j + 1, x, NULL, NULL, y);
            snprintf(names[k], 64, "act %s", tt->name);
            sum[k++] += psnr(&img, y, ph, pw);
        }
        /* One layer's weights at a time. */
        for (int32_t i = 0; i < g->n_nodes; i++) {
            if (!c.wdq[i]) continue;
            wq[i] = true;
            run_chain(&c, i, act[g->nodes[i].inputs[0]], NULL, wq, y);
            wq[i] = false;
            snprintf(names[k], 64, "w   %s", g->nodes[i].name);
            sum[k++] += psnr(&img, y, ph, pw);
        }
        n_cases = k;
        fprintf(stderr, "[%d/%d] %s\n", im + 1, n, nne_dataset_path(ds, im));
        for (int32_t t = 0; t < g->n_tensors; t++) nne_aligned_free(act[t]);
        for (int32_t i = 0; i < g->n_nodes; i++) free(c.wdq[i]), free(c.bdq[i]);
        free(act), free(c.wdq), free(c.bdq), free(aq), free(wq);
        nne_aligned_free(c.scratch), nne_aligned_free(c.a), nne_aligned_free(c.b);
        nne_aligned_free(x), nne_aligned_free(y);
        nne_graph_free(g);
        nne_graph_free(gq);
        if (owned) nne_image_free(&img);
    }
    printf("# %d images of %s; int8 model %s\n", n, argv[3], argv[2]);
    printf("%-36s %8s %8s\n", "case", "PSNR", "delta");
    for (int k = 0; k < n_cases; k++)
        printf("%-36s %8.3f %+8.3f\n", names[k], sum[k] / n, (sum[k] - sum[0]) / n);
    /* Channel ranges in steps of the tensor's scale (the int8 model's parameters). */
    printf("\n%-24s %6s %10s %10s %9s %10s %10s %10s %7s\n", "activation", "ch", "lo", "hi",
           "step", "ch_min", "ch_median", "ch_max", "spread");
    for (int k = 4; k < n_cases; k++) {
        if (!st[k].c || strncmp(names[k], "act ", 4)) continue;
        const char *tn = names[k] + 4;
        const nne_quant *qq = &q8->tensors[nne_graph_find_tensor(q8, tn)].quant;
        if (!qq->count) continue; /* fused into its producer: no int8 grid */
        const float s = qq->scale[0];
        float r[1024];
        const int32_t ch = st[k].c;
        for (int32_t q = 0; q < ch; q++) r[q] = (st[k].hi[q] - st[k].lo[q]) / s;
        /* sort for the median */
        for (int32_t a = 1; a < ch; a++)
            for (int32_t b = a; b > 0 && r[b] < r[b - 1]; b--) {
                const float tmp = r[b];
                r[b] = r[b - 1];
                r[b - 1] = tmp;
            }
        printf("%-24s %6d %10.4f %10.4f %9.5f %10.1f %10.1f %10.1f %7.1f\n", tn, (int)ch,
               (double)(s * (-128 - qq->zero_point[0])), (double)(s * (127 - qq->zero_point[0])),
               (double)s, (double)r[0], (double)r[ch / 2], (double)r[ch - 1],
               (double)(r[ch - 1] / fmaxf(r[0], 1e-6f)));
        free(st[k].lo), free(st[k].hi);
    }
    nne_threadpool_free(c.pool);
    nne_dataset_free(ds);
    nne_graph_free(f32);
    nne_graph_free(q8);
    return 0;
}
