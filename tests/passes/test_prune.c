/* Channel pruning (prune.h): the analysis finds the groups (residual adds tie producers,
 * concats and channel-wise ops pass channels on, graph outputs and kept tensors are locked),
 * the pruned graph computes exactly what the original computes once the pruned filters and
 * biases are zero (a property over random masks and weights; the same graphs without the
 * zeroing differ, so the check can fail), cae-seed at 50% has 4x fewer MACs in every layer
 * whose two sides are pruned, L1 ranking keeps the strongest filters, the sensitivity
 * allocation reaches its target, and the cost counts sparse weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/models.h"
#include "nnedge/prune.h"
#include "testutil.h"

static nne_test_rng g_rng;

static float urand(float lo, float hi) {
    return lo + (hi - lo) * (float)nne_test_rng_uniform(&g_rng);
}

static void fill_random(nne_graph *g) {
    for (int32_t t = 0; t < g->n_tensors; t++) {
        nne_tensor *x = &g->tensors[t];
        if (x->kind != NNE_TENSOR_CONSTANT) continue;
        float *d = x->data;
        const bool positive = strstr(x->name, "beta") || strstr(x->name, "gamma");
        for (int64_t i = 0; i < nne_shape_numel(&x->shape); i++)
            d[i] = positive ? urand(0.05f, 0.3f) + (strstr(x->name, "beta") ? 0.7f : 0.0f)
                            : urand(-0.4f, 0.4f);
    }
}

static int32_t add_const(nne_graph *g, const char *name, nne_shape s) {
    int32_t t = -1;
    CHECK_OK(nne_graph_add_constant(g, name, NNE_F32, s, NULL, &t));
    return t;
}

static int32_t node(nne_graph *g, const char *name, nne_op_type op, const nne_op_params *p,
                    const int32_t *in, int n) {
    char out[64];
    snprintf(out, sizeof out, "%s.out", name);
    int32_t t = -1;
    CHECK_OK(nne_graph_add_node(g, name, op, p, in, n, out, &t));
    return t;
}

static int32_t conv(nne_graph *g, const char *name, int32_t x, int ic, int oc, int stride,
                    bool transpose) {
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv = (nne_conv_params){.kernel = {3, 3},
                               .stride = {stride, stride},
                               .dilation = {1, 1},
                               .pad = {1, 1, 1, 1},
                               .pad_mode = NNE_PAD_EXPLICIT,
                               .groups = 1};
    char w[64], b[64];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    int32_t in[3] = {x, add_const(g, w, nne_shape_4d(oc, 3, 3, ic)),
                     add_const(g, b, nne_shape_1d(oc))};
    return node(g, name, transpose ? NNE_OP_CONV_TRANSPOSE2D : NNE_OP_CONV2D, &p, in, 3);
}

/* Every structure the pass handles: a residual add tying two convolutions, PReLU with
 * per-channel and shared slopes, GDN, relu, a channel concat, a transposed convolution, max
 * pooling, and an output layer. x [1][10][10][3]. */
static nne_graph *build_mixed(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("mixed", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 10, 10, 3), &x));
    int32_t c1 = conv(g, "c1", x, 3, 8, 1, false);
    int32_t pin[2] = {c1, add_const(g, "p1.slope", nne_shape_1d(8))};
    int32_t p1 = node(g, "p1", NNE_OP_PRELU, NULL, pin, 2);
    int32_t c2 = conv(g, "c2", p1, 8, 8, 1, false);
    int32_t r2 = node(g, "r2", NNE_OP_RELU, NULL, &c2, 1);
    int32_t c3 = conv(g, "c3", x, 3, 8, 1, false);
    int32_t ain[2] = {r2, c3};
    int32_t sum = node(g, "add", NNE_OP_ADD, NULL, ain, 2);
    int32_t gin[3] = {sum, add_const(g, "gdn.beta", nne_shape_1d(8)),
                      add_const(g, "gdn.gamma", nne_shape_2d(8, 8))};
    int32_t gd = node(g, "gdn", NNE_OP_GDN, NULL, gin, 3);
    int32_t c4 = conv(g, "c4", sum, 8, 6, 1, false);
    nne_op_params cp;
    memset(&cp, 0, sizeof cp);
    cp.concat.axis = -1;
    int32_t cin[2] = {gd, c4};
    int32_t cat = node(g, "cat", NNE_OP_CONCAT, &cp, cin, 2);
    int32_t t1 = conv(g, "t1", cat, 14, 5, 1, true);
    int32_t sin[2] = {t1, add_const(g, "p2.slope", nne_shape_1d(1))};
    int32_t p2 = node(g, "p2", NNE_OP_PRELU, NULL, sin, 2);
    nne_op_params pp;
    memset(&pp, 0, sizeof pp);
    pp.pool = (nne_pool_params){.kernel = {2, 2}, .stride = {2, 2}};
    int32_t mp = node(g, "pool", NNE_OP_MAXPOOL2D, &pp, &p2, 1);
    int32_t out = conv(g, "out", mp, 5, 3, 1, false);
    CHECK_OK(nne_graph_mark_output(g, out));
    CHECK_OK(nne_graph_infer(g));
    fill_random(g);
    return g;
}

static void run(nne_graph *g, const float *x, float *y) {
    nne_session *s = NULL;
    CHECK_OK(nne_session_create(g, nne_backend_cpu_ref(), &s));
    const size_t n = (size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape);
    const size_t m = (size_t)nne_shape_numel(&g->tensors[g->outputs[0]].shape);
    CHECK_OK(nne_session_set_input_f32(s, 0, x, n));
    CHECK_OK(nne_session_run(s));
    CHECK_OK(nne_session_get_output_f32(s, 0, y, m));
    nne_session_free(s);
}

static const nne_prune_group *find_group(const nne_prune_plan *p, const char *name) {
    for (int32_t i = 0; i < p->n_groups; i++)
        if (!strcmp(p->groups[i].name, name)) return &p->groups[i];
    return NULL;
}

/* Zero the weights and biases of the pruned output channels in g (the original graph). */
static void zero_pruned(nne_graph *g, const nne_prune_plan *p) {
    for (int32_t i = 0; i < p->n_groups; i++) {
        const nne_prune_group *gr = &p->groups[i];
        for (int32_t k = 0; k < gr->n_producers; k++) {
            const nne_node *n = &g->nodes[gr->producers[k]];
            nne_tensor *w = &g->tensors[n->inputs[1]], *b = &g->tensors[n->inputs[2]];
            const int64_t per = nne_shape_numel(&w->shape) / w->shape.dim[0];
            for (int32_t o = 0; o < gr->channels; o++) {
                if (gr->keep[o]) continue;
                memset((float *)w->data + o * per, 0, (size_t)per * sizeof(float));
                ((float *)b->data)[o] = 0.0f;
            }
        }
    }
}

/* max |a - b| / max |a| */
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0.0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)a[i]));
    }
    return d / m;
}

/* The property: for random weights and random keep masks, original-with-zeroed-filters and
 * pruned graph agree; without the zeroing they do not. */
static void test_equivalence_mixed(void) {
    for (int trial = 0; trial < 20; trial++) {
        nne_test_rng_seed(&g_rng, 100 + (unsigned long long)trial);
        nne_graph *g = build_mixed();
        nne_prune_opts o = {.ratio = 0.0};
        nne_prune_plan *p = NULL;
        CHECK_OK(nne_prune_plan_create(g, &o, &p));
        if (!p) {
            nne_graph_free(g);
            return;
        }
        if (trial == 0) {
            /* c1; c2 and c3 tied by the add; c4; t1; out is locked (graph output). */
            CHECK(p->n_groups == 5);
            const nne_prune_group *a = find_group(p, "c2");
            CHECK(a && a->n_producers == 2 && a->channels == 8 && a->prunable);
            CHECK(!find_group(p, "c3")); /* part of c2's group */
            const nne_prune_group *z = find_group(p, "out");
            CHECK(z && !z->prunable && z->why && strstr(z->why, "graph output"));
            CHECK(find_group(p, "c4") && find_group(p, "t1") && find_group(p, "c1"));
        }
        /* Random masks, at least one channel kept per group. */
        for (int32_t i = 0; i < p->n_groups; i++) {
            nne_prune_group *gr = &p->groups[i];
            if (!gr->prunable) continue;
            for (int32_t c = 0; c < gr->channels; c++) gr->keep[c] = nne_test_rng_int(&g_rng, 0, 1);
            gr->keep[nne_test_rng_int(&g_rng, 0, gr->channels - 1)] = 1;
        }
        nne_graph *pg = NULL;
        CHECK_OK(nne_prune_plan_apply(g, p, &pg));
        float x[300], y0[300], y1[300], y2[300];
        for (int i = 0; i < 300; i++) x[i] = urand(0.0f, 1.0f);
        const size_t m = (size_t)nne_shape_numel(&g->tensors[g->outputs[0]].shape);
        CHECK(m == 75);
        run(g, x, y0); /* the original, filters intact */
        zero_pruned(g, p);
        run(g, x, y1);
        if (pg) run(pg, x, y2);
        const double d = pg ? rel_diff(y1, y2, m) : 1.0;
        CHECK_MSG(d <= 1e-5, "trial %d: pruned graph differs by %g", trial, d);
        int32_t pruned = 0;
        for (int32_t i = 0; i < p->n_groups; i++)
            for (int32_t c = 0; c < p->groups[i].channels; c++) pruned += !p->groups[i].keep[c];
        if (pruned > 0)
            CHECK_MSG(rel_diff(y0, y2, m) > 1e-3, "trial %d: pruning changed nothing", trial);
        /* Shapes shrank where channels went. */
        if (pg) {
            const nne_prune_group *gc4 = find_group(p, "c4");
            int32_t kept = 0;
            for (int32_t c = 0; c < 6; c++) kept += gc4->keep[c];
            const int32_t w = nne_graph_find_tensor(pg, "c4.weight");
            CHECK(w >= 0 && pg->tensors[w].shape.dim[0] == kept);
            const int32_t gm = nne_graph_find_tensor(pg, "gdn.gamma");
            const int32_t kg = (int32_t)find_group(p, "c2")->channels;
            int32_t kk = 0;
            for (int32_t c = 0; c < kg; c++) kk += find_group(p, "c2")->keep[c];
            CHECK(gm >= 0 && pg->tensors[gm].shape.dim[0] == kk &&
                  pg->tensors[gm].shape.dim[1] == kk);
            const int32_t ps = nne_graph_find_tensor(pg, "p2.slope");
            CHECK(ps >= 0 && nne_shape_numel(&pg->tensors[ps].shape) == 1);
        }
        nne_graph_free(pg);
        nne_prune_plan_free(p);
        nne_graph_free(g);
    }
}

/* cae-seed (tiny input), L1 plan at several ratios: equivalence after zeroing, and the MAC
 * count: layers with both sides halved have exactly a quarter of their MACs. */
static void test_cae_seed(void) {
    nne_test_rng_seed(&g_rng, 7);
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(29, 33, NNE_CAE_FULL, &g));
    if (!g) return;
    fill_random(g);
    const char *keep[] = {"latent", NULL};
    const double ratios[] = {0.25, 0.5, 0.75};
    for (int r = 0; r < 3; r++) {
        nne_prune_opts o = {.ratio = ratios[r], .keep = keep};
        nne_prune_plan *p = NULL;
        CHECK_OK(nne_prune_plan_create(g, &o, &p));
        if (!p) break;
        CHECK(p->n_groups == 10);
        for (int32_t i = 0; i < p->n_groups; i++) {
            const nne_prune_group *gr = &p->groups[i];
            const bool locked =
                !strcmp(gr->name, "conv2d_5") || !strcmp(gr->name, "conv2d_transpose_5");
            CHECK_MSG(gr->prunable == !locked, "%s prunable %d", gr->name, (int)gr->prunable);
            const int32_t want =
                locked ? gr->channels
                       : gr->channels - (int32_t)floor(ratios[r] * gr->channels + 0.5);
            CHECK_MSG(gr->kept == want, "%s keeps %d, want %d", gr->name, (int)gr->kept, (int)want);
            /* L1 ranking: every kept channel has a norm >= every removed one. */
            double min_kept = INFINITY, max_removed = -INFINITY;
            for (int32_t c = 0; c < gr->channels; c++) {
                if (gr->keep[c])
                    min_kept = fmin(min_kept, gr->l1[c]);
                else
                    max_removed = fmax(max_removed, gr->l1[c]);
            }
            CHECK(min_kept >= max_removed);
        }
        const nne_prune_group *l5 = find_group(p, "conv2d_5");
        CHECK(l5 && l5->why && strstr(l5->why, "latent"));
        nne_graph *pg = NULL;
        CHECK_OK(nne_prune_plan_apply(g, p, &pg));
        if (r == 1 && pg) {
            for (int32_t i = 0; i < g->n_nodes; i++) {
                const nne_node *n = &g->nodes[i];
                if (n->op != NNE_OP_CONV2D && n->op != NNE_OP_CONV_TRANSPOSE2D) continue;
                nne_prune_cost a, b;
                CHECK_OK(nne_prune_cost_get(g, i, &a));
                CHECK_OK(nne_prune_cost_get(pg, nne_graph_find_node(pg, n->name), &b));
                const bool edge = !strcmp(n->name, "conv2d_1") || !strcmp(n->name, "conv2d_5") ||
                                  !strcmp(n->name, "conv2d_transpose_1") ||
                                  !strcmp(n->name, "conv2d_transpose_5");
                CHECK_MSG(b.macs * (edge ? 2 : 4) == a.macs, "%s: %lld -> %lld MACs", n->name,
                          (long long)a.macs, (long long)b.macs);
            }
            /* The pruned model rebuilds at another size with its widths. */
            nne_graph *big = NULL;
            CHECK_OK(nne_model_cae_seed_like(pg, 40, 52, NNE_CAE_FULL, &big));
            if (big) CHECK_OK(nne_model_copy_weights(big, pg));
            nne_graph_free(big);
        }
        if (pg) {
            float *x = malloc(29 * 33 * 3 * sizeof *x), *y1 = malloc(29 * 33 * 3 * sizeof *y1),
                  *y2 = malloc(29 * 33 * 3 * sizeof *y2);
            for (int i = 0; i < 29 * 33 * 3; i++) x[i] = urand(0.0f, 1.0f);
            nne_graph *z = NULL;
            CHECK_OK(nne_model_cae_seed(29, 33, NNE_CAE_FULL, &z));
            CHECK_OK(nne_model_copy_weights(z, g));
            zero_pruned(z, p);
            run(z, x, y1);
            run(pg, x, y2);
            CHECK_MSG(rel_diff(y1, y2, 29 * 33 * 3) <= 1e-5, "ratio %g: %g", ratios[r],
                      rel_diff(y1, y2, 29 * 33 * 3));
            nne_graph_free(z);
            free(x);
            free(y1);
            free(y2);
        }
        nne_graph_free(pg);
        nne_prune_plan_free(p);
    }
    /* Without keeping the latent, conv2d_5 is prunable too; the output layer never is. */
    nne_prune_opts o = {.ratio = 0.5};
    nne_prune_plan *p = NULL;
    CHECK_OK(nne_prune_plan_create(g, &o, &p));
    if (p) {
        CHECK(find_group(p, "conv2d_5")->prunable &&
              !find_group(p, "conv2d_transpose_5")->prunable);
        CHECK(find_group(p, "conv2d_5")->kept == 16);
    }
    nne_prune_plan_free(p);
    nne_graph_free(g);
}

static void test_errors_and_locks(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(25, 25, NNE_CAE_ENCODER, &g));
    if (!g) return;
    nne_prune_plan *p = NULL;
    nne_prune_opts o = {.ratio = 1.0};
    CHECK_STATUS(nne_prune_plan_create(g, &o, &p), NNE_ERR_INVALID_ARG);
    o.ratio = -0.1;
    CHECK_STATUS(nne_prune_plan_create(g, &o, &p), NNE_ERR_INVALID_ARG);
    const char *keep[] = {"no-such-tensor", NULL};
    o = (nne_prune_opts){.ratio = 0.5, .keep = keep};
    CHECK_STATUS(nne_prune_plan_create(g, &o, &p), NNE_ERR_NOT_FOUND);
    o = (nne_prune_opts){.ratio = 0.9, .n_samples = 1};
    CHECK_STATUS(nne_prune_plan_create(g, &o, &p), NNE_ERR_INVALID_ARG); /* no sample fn */
    /* An edited plan may not empty a group nor touch a locked one. */
    o = (nne_prune_opts){.ratio = 0.5};
    CHECK_OK(nne_prune_plan_create(g, &o, &p));
    if (p) {
        nne_graph *pg = NULL;
        nne_prune_group *last = (nne_prune_group *)find_group(p, "conv2d_5"); /* the output */
        CHECK(last && !last->prunable);
        last->keep[0] = 0;
        CHECK_STATUS(nne_prune_plan_apply(g, p, &pg), NNE_ERR_INVALID_ARG);
        last->keep[0] = 1;
        nne_prune_group *first = (nne_prune_group *)find_group(p, "conv2d_1");
        memset(first->keep, 0, (size_t)first->channels);
        CHECK_STATUS(nne_prune_plan_apply(g, p, &pg), NNE_ERR_INVALID_ARG);
        CHECK(pg == NULL);
    }
    nne_prune_plan_free(p);
    /* A quantized graph is refused. */
    g->tensors[g->inputs[0]].dtype = NNE_U8;
    g->inferred = false;
    CHECK(nne_prune_plan_create(g, &o, &p) != NNE_OK);
    nne_graph_free(g);
}

static nne_status sample(void *ctx, int32_t i, float *x) {
    (void)ctx;
    nne_test_rng r;
    nne_test_rng_seed(&r, 1000 + (unsigned long long)i);
    for (int k = 0; k < 25 * 25 * 3; k++) x[k] = (float)nne_test_rng_uniform(&r);
    return NNE_OK;
}

static void test_sensitivity(void) {
    nne_test_rng_seed(&g_rng, 11);
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(25, 25, NNE_CAE_FULL, &g));
    if (!g) return;
    fill_random(g);
    const char *keep[] = {"latent", NULL};
    nne_prune_opts o = {.ratio = 0.5, .keep = keep, .n_samples = 2, .sample = sample};
    nne_prune_plan *p = NULL;
    CHECK_OK(nne_prune_plan_create(g, &o, &p));
    if (!p) {
        nne_graph_free(g);
        return;
    }
    CHECK(isfinite(p->base_loss) && p->base_loss > 0.0);
    int64_t total = 0, removed = 0;
    for (int32_t i = 0; i < p->n_groups; i++) {
        const nne_prune_group *gr = &p->groups[i];
        if (!gr->prunable) {
            CHECK(isnan(gr->dloss[1]));
            continue;
        }
        CHECK(gr->dloss[0] == 0.0);
        for (int k = 1; k < NNE_PRUNE_GRID; k++) CHECK(isfinite(gr->dloss[k]));
        total += gr->channels;
        removed += gr->channels - gr->kept;
    }
    CHECK_MSG(removed * 2 >= total, "removed %lld of %lld", (long long)removed, (long long)total);
    /* The measurement is real: dloss[k] equals the loss of that single-group pruning. */
    nne_prune_group *gr = (nne_prune_group *)find_group(p, "conv2d_3");
    uint8_t *saved = malloc((size_t)gr->channels);
    memcpy(saved, gr->keep, (size_t)gr->channels);
    for (int32_t i = 0; i < p->n_groups; i++)
        memset(p->groups[i].keep, 1, (size_t)p->groups[i].channels);
    /* conv2d_3 alone at 4/8: the 32 lowest-L1 of 64 channels. */
    int32_t order[64];
    for (int32_t c = 0; c < 64; c++) order[c] = c;
    for (int32_t a = 0; a < 64; a++)
        for (int32_t b = a + 1; b < 64; b++)
            if (gr->l1[order[b]] < gr->l1[order[a]]) {
                const int32_t t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    for (int32_t c = 0; c < 32; c++) gr->keep[order[c]] = 0;
    nne_graph *pg = NULL;
    CHECK_OK(nne_prune_plan_apply(g, p, &pg));
    if (pg) {
        float x[25 * 25 * 3], y[25 * 25 * 3];
        double loss = 0.0;
        for (int32_t i = 0; i < 2; i++) {
            sample(NULL, i, x);
            run(pg, x, y);
            double se = 0.0;
            for (int k = 0; k < 25 * 25 * 3; k++)
                se += ((double)y[k] - x[k]) * ((double)y[k] - x[k]);
            loss += se / (25 * 25 * 3) / 2;
        }
        /* cpu (fast) vs cpu-ref: equal within float rounding */
        CHECK_NEAR(loss - p->base_loss, gr->dloss[4], 1e-4 * fmax(1.0, loss));
    }
    nne_graph_free(pg);
    free(saved);
    nne_prune_plan_free(p);
    nne_graph_free(g);
}

static void test_cost(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(25, 25, NNE_CAE_ENCODER, &g));
    if (!g) return;
    nne_test_rng_seed(&g_rng, 3);
    fill_random(g);
    nne_prune_cost c0, c1;
    CHECK_OK(nne_prune_cost_get(g, -1, &c0));
    CHECK(c0.macs == c0.sparse_macs && c0.params == c0.nonzero_params && c0.macs > 0);
    /* Zero half of conv2d_3's weights (and nothing else): its sparse MACs halve. */
    const int32_t n3 = nne_graph_find_node(g, "conv2d_3");
    nne_tensor *w = &g->tensors[g->nodes[n3].inputs[1]];
    const int64_t nw = nne_shape_numel(&w->shape);
    for (int64_t i = 0; i < nw; i += 2) ((float *)w->data)[i] = 0.0f;
    nne_prune_cost a;
    CHECK_OK(nne_prune_cost_get(g, n3, &a));
    CHECK(a.sparse_macs * 2 == a.macs);
    CHECK_OK(nne_prune_cost_get(g, -1, &c1));
    CHECK(c1.macs == c0.macs && c1.params == c0.params);
    CHECK(c1.nonzero_params == c0.nonzero_params - nw / 2);
    CHECK(c1.sparse_macs == c0.sparse_macs - a.macs / 2);
    CHECK_STATUS(nne_prune_cost_get(g, g->n_nodes, &a), NNE_ERR_INVALID_ARG);
    nne_graph_free(g);
}

/* nne_tensor_count_nonzero: real values other than 0 for every dtype; quantized codes other
 * than their zero point (per tensor and per index of the quantization axis). */
static void test_count_nonzero(void) {
    float f[6] = {0.0f, -0.0f, 1.0f, -2.0f, 0.0f, 1e-30f};
    nne_tensor t;
    memset(&t, 0, sizeof t);
    t.kind = NNE_TENSOR_CONSTANT;
    t.shape.ndim = 2;
    t.shape.dim[0] = 2;
    t.shape.dim[1] = 3;
    t.dtype = NNE_F32;
    t.data = f;
    CHECK(nne_tensor_count_nonzero(&t) == 3); /* -0 is 0; a denormal-range value is not */
    uint16_t h[6] = {0x0000, 0x8000, 0x3c00, 0x0001, 0x0000, 0xbc00};
    t.dtype = NNE_F16;
    t.data = h;
    CHECK(nne_tensor_count_nonzero(&t) == 3);
    int8_t q[6] = {0, 5, 0, /* row 1, zero point 5: */ 5, 0, 5};
    t.dtype = NNE_S8;
    t.data = q;
    CHECK(nne_tensor_count_nonzero(&t) == 3); /* not quantized: codes other than 0 */
    const float sc[2] = {0.5f, 0.25f};
    const int32_t zp[2] = {0, 5};
    CHECK_OK(nne_quant_set(&t.quant, 0, 2, sc, zp, false));
    CHECK(nne_tensor_count_nonzero(&t) == 2); /* 5 in row 0, 0 in row 1 */
    const int32_t zp1[1] = {5};
    CHECK_OK(nne_quant_set(&t.quant, -1, 1, sc, zp1, false));
    CHECK(nne_tensor_count_nonzero(&t) == 3); /* the three 0 codes */
    nne_quant_free(&t.quant);
    t.data = NULL;
    CHECK(nne_tensor_count_nonzero(&t) == 6); /* unknown values count */
}

int main(void) {
    NNE_RUN(test_equivalence_mixed);
    NNE_RUN(test_cae_seed);
    NNE_RUN(test_errors_and_locks);
    NNE_RUN(test_sensitivity);
    NNE_RUN(test_cost);
    NNE_RUN(test_count_nonzero);
    return nne_test_summary();
}
