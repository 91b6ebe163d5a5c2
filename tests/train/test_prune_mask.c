/* Magnitude pruning in training (train.h, docs/pruning.md): the polynomial schedule's values
 * (Zhu & Gupta 2017), masks that remove exactly the smallest weights per tensor and only
 * grow, pruned weights held at exactly 0 through Adam updates with decay and clipping, and
 * exact resume with the masks in the checkpoint (N + checkpoint + M steps == N + M steps,
 * bitwise, with a mask update on both sides of the interruption). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/file.h"
#include "nnedge/models.h"
#include "nnedge/train.h"
#include "testutil.h"

enum { B = 1, H = 24, W = 24, STEPS = 8, CUT = 3 };

static void test_schedule(void) {
    const nne_prune_schedule s = {
        .initial = 0.0, .final = 0.8, .begin = 10, .every = 5, .count = 4};
    CHECK_OK(nne_prune_schedule_check(&s));
    /* s_t = 0.8 - 0.8 (1 - k/4)^3 at t = 10 + 5k */
    const struct {
        int64_t step;
        double s;
        bool update;
    } want[] = {{0, 0.0, false},    {9, 0.0, false},     {10, 0.0, true},   {12, 0.0, false},
                {15, 0.4625, true}, {17, 0.4625, false}, {20, 0.7, true},   {25, 0.7875, true},
                {30, 0.8, true},    {35, 0.8, false},    {1000, 0.8, false}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CHECK_MSG(fabs(nne_prune_schedule_sparsity(&s, want[i].step) - want[i].s) < 1e-12,
                  "step %lld: %.17g, want %g", (long long)want[i].step,
                  nne_prune_schedule_sparsity(&s, want[i].step), want[i].s);
        CHECK_MSG(nne_prune_schedule_is_update(&s, want[i].step) == want[i].update, "step %lld",
                  (long long)want[i].step);
    }
    /* n = 0: one update to the final sparsity (one-shot pruning before fine-tuning). */
    const nne_prune_schedule once = {.initial = 0.5, .final = 0.5, .begin = 0, .every = 1};
    CHECK(nne_prune_schedule_is_update(&once, 0) && !nne_prune_schedule_is_update(&once, 1));
    CHECK(nne_prune_schedule_sparsity(&once, 0) == 0.5 &&
          nne_prune_schedule_sparsity(&once, 9) == 0.5);
    /* Monotone and cubic: the increments shrink. */
    const nne_prune_schedule z = {
        .initial = 0.1, .final = 0.9, .begin = 0, .every = 1, .count = 10};
    double prev = -1.0, prev_inc = 1.0;
    for (int64_t t = 0; t <= 10; t++) {
        const double v = nne_prune_schedule_sparsity(&z, t);
        CHECK(v >= prev);
        if (t > 0) CHECK(v - prev <= prev_inc + 1e-12);
        if (t > 0) prev_inc = v - prev;
        prev = v;
    }
    CHECK(nne_prune_schedule_sparsity(&z, 0) == 0.1);
    nne_prune_schedule bad = s;
    bad.final = 1.0;
    CHECK_STATUS(nne_prune_schedule_check(&bad), NNE_ERR_INVALID_ARG);
    bad = s;
    bad.final = -0.1;
    CHECK_STATUS(nne_prune_schedule_check(&bad), NNE_ERR_INVALID_ARG);
    bad = s;
    bad.every = 0;
    CHECK_STATUS(nne_prune_schedule_check(&bad), NNE_ERR_INVALID_ARG);
}

static nne_graph *make_model(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(H, W, NNE_CAE_FULL, &g));
    if (!g) return NULL;
    CHECK_OK(nne_train_init_params(g, 5));
    return g;
}

static void make_batch(uint64_t k, float *x) {
    nne_rng r;
    nne_rng_seed(&r, 77 + k);
    for (size_t i = 0; i < (size_t)B * H * W * 3; i++) x[i] = nne_rng_uniform_f32(&r);
}

static nne_trainer_config make_config(void) {
    nne_trainer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.optim = nne_optim_config_adam();
    cfg.optim.weight_decay = 1e-2f;
    cfg.optim.clip_norm = 0.5f;
    cfg.lr.kind = NNE_LR_CONSTANT;
    cfg.lr.lr = 1e-2f;
    cfg.lr.gamma = 1.0f;
    cfg.loss = NNE_LOSS_MSE;
    cfg.threads = 1;
    return cfg;
}

static const nne_prune_schedule k_sched = {
    .initial = 0.2, .final = 0.6, .begin = 1, .every = 2, .count = 2}; /* steps 1, 3, 5 */

/* Steps [from, to) with the schedule's mask updates. */
static void run_steps(nne_trainer *t, const nne_graph *g, nne_optim *o,
                      const nne_trainer_config *cfg, int64_t from, int64_t to, float *x) {
    for (int64_t s = from; s < to; s++) {
        if (nne_prune_schedule_is_update(&k_sched, s))
            CHECK_OK(nne_prune_masks_update(nne_trainer_params(t), g,
                                            nne_prune_schedule_sparsity(&k_sched, s)));
        make_batch((uint64_t)s, x);
        CHECK_OK(nne_trainer_step_ext(t, o, &cfg->lr, s, x, x, NULL));
    }
}

/* Every conv weight tensor: the masked elements are exactly 0, their number is
 * round(s * N), and no kept element was smaller in magnitude (in `before`) than a masked
 * one that was not masked earlier. */
static void check_masks(nne_params *p, const nne_graph *g, double s, const float *before,
                        const uint8_t *old_keep) {
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (n->op != NNE_OP_CONV2D && n->op != NNE_OP_CONV_TRANSPOSE2D) continue;
        const nne_param *pa = &p->items[nne_params_find(p, n->inputs[1])];
        size_t masked = 0;
        float max_masked = 0.0f, min_kept = INFINITY;
        for (size_t e = 0; e < pa->count; e++) {
            const size_t k = pa->offset + e;
            if (!p->keep[k]) {
                masked++;
                CHECK(p->data[k] == 0.0f);
                if (!old_keep || old_keep[k])
                    max_masked = fmaxf(max_masked, fabsf(before[k]));
                else
                    CHECK(!p->keep[k]);
            } else {
                min_kept = fminf(min_kept, fabsf(before[k]));
            }
            if (old_keep && !old_keep[k]) CHECK_MSG(!p->keep[k], "a mask shrank in %s", n->name);
        }
        CHECK_MSG(masked == (size_t)floor(s * (double)pa->count + 0.5), "%s: %zu of %zu masked",
                  n->name, masked, pa->count);
        CHECK(max_masked <= min_kept);
        /* Biases are never masked. */
        const nne_param *pb = &p->items[nne_params_find(p, n->inputs[2])];
        for (size_t e = 0; e < pb->count; e++) CHECK(p->keep[pb->offset + e]);
    }
}

static void test_masks_through_adam(void) {
    nne_graph *g = make_model();
    nne_trainer_config cfg = make_config();
    nne_trainer *t = NULL;
    float *x = malloc((size_t)B * H * W * 3 * sizeof *x);
    if (!g || !x) goto done;
    CHECK_OK(nne_trainer_create(g, &cfg, &t));
    if (!t) goto done;
    nne_params *p = nne_trainer_params(t);
    CHECK(p->keep == NULL);
    /* Two unmasked steps first, so that Adam's moments of the weights about to be masked
     * are not 0: without the projection they would move them. */
    for (int s = 0; s < 2; s++) {
        make_batch(100 + (uint64_t)s, x);
        CHECK_OK(nne_trainer_step(t, x, x, NULL));
    }
    float *before = malloc(p->total * sizeof *before);
    uint8_t *old = malloc(p->total);
    memcpy(before, p->data, p->total * sizeof *before);
    CHECK_OK(nne_prune_masks_update(p, g, 0.3));
    check_masks(p, g, 0.3, before, NULL);
    size_t masked, maskable;
    nne_prune_masks_count(p, g, &masked, &maskable);
    CHECK(maskable > 0 && fabs((double)masked / maskable - 0.3) < 0.01);
    /* Adam with decay and clipping: masked weights stay exactly 0, the rest move. */
    for (int s = 0; s < 4; s++) {
        make_batch((uint64_t)s, x);
        CHECK_OK(nne_trainer_step(t, x, x, NULL));
        for (size_t k = 0; k < p->total; k++)
            if (!p->keep[k] && p->data[k] != 0.0f) {
                CHECK_MSG(0, "step %d: pruned parameter %zu is %g", s, k, (double)p->data[k]);
                break;
            }
    }
    size_t moved = 0;
    for (size_t k = 0; k < p->total; k++) moved += p->keep[k] && p->data[k] != before[k];
    CHECK(moved > p->total / 2);
    /* Raising the sparsity keeps the old mask and masks the smallest of the rest. */
    memcpy(before, p->data, p->total * sizeof *before);
    memcpy(old, p->keep, p->total);
    CHECK_OK(nne_prune_masks_update(p, g, 0.7));
    check_masks(p, g, 0.7, before, old);
    /* A lower target never unmasks. */
    memcpy(old, p->keep, p->total);
    CHECK_OK(nne_prune_masks_update(p, g, 0.1));
    CHECK(memcmp(old, p->keep, p->total) == 0);
    CHECK_STATUS(nne_prune_masks_update(p, g, 1.0), NNE_ERR_INVALID_ARG);
    /* The stored model has the zeros. */
    nne_trainer_store(t);
    const int32_t w1 = nne_graph_find_tensor(g, "conv2d_3.weight");
    size_t zeros = 0;
    for (int64_t e = 0; e < nne_shape_numel(&g->tensors[w1].shape); e++)
        zeros += ((const float *)g->tensors[w1].data)[e] == 0.0f;
    CHECK(zeros >= (size_t)(0.7 * 64 * 9 * 32));
    free(before);
    free(old);
done:
    free(x);
    nne_trainer_free(t);
    nne_graph_free(g);
}

/* Uninterrupted vs interrupted after CUT steps with the masks going through a checkpoint. */
static void test_exact_resume(void) {
    nne_trainer_config cfg = make_config();
    float *x = malloc((size_t)B * H * W * 3 * sizeof *x);
    nne_graph *ga = make_model(), *gb = make_model();
    nne_trainer *ta = NULL, *tb = NULL, *tc = NULL;
    nne_optim *oa = NULL, *ob = NULL;
    nne_checkpoint rd;
    memset(&rd, 0, sizeof rd);
    uint8_t *bytes = NULL;
    size_t n = 0;
    if (!x || !ga || !gb) goto done;
    CHECK_OK(nne_trainer_create(ga, &cfg, &ta));
    CHECK_OK(nne_trainer_create(gb, &cfg, &tb));
    if (!ta || !tb) goto done;
    CHECK_OK(nne_optim_create(&cfg.optim, nne_trainer_params(ta)->total, &oa));
    CHECK_OK(nne_optim_create(&cfg.optim, nne_trainer_params(tb)->total, &ob));
    run_steps(ta, ga, oa, &cfg, 0, STEPS, x);
    run_steps(tb, gb, ob, &cfg, 0, CUT, x);
    nne_trainer_store(tb);
    nne_checkpoint wr;
    memset(&wr, 0, sizeof wr);
    wr.model = gb;
    wr.optim = ob;
    wr.config = cfg;
    wr.step = CUT;
    wr.best_step = -1;
    wr.best_val_loss = wr.best_val_psnr = NAN;
    wr.mask = nne_trainer_params(tb)->keep;
    CHECK(wr.mask != NULL);
    CHECK_OK(nne_checkpoint_write_mem(&wr, &bytes, &n));
    /* A masked weight that is not 0 is refused by the writer. */
    const nne_params *pb = nne_trainer_params(tb);
    size_t k0 = 0;
    while (k0 < pb->total && pb->keep[k0]) k0++;
    CHECK(k0 < pb->total);
    nne_params_store(pb, gb);
    {
        nne_params *tmp = NULL;
        CHECK_OK(nne_params_create(gb, &tmp));
        if (tmp) {
            int32_t it = 0;
            while (it < tmp->n && !(tmp->items[it].offset <= k0 &&
                                    k0 < tmp->items[it].offset + tmp->items[it].count))
                it++;
            float *d = gb->tensors[tmp->items[it].tensor].data;
            const float keep_v = d[k0 - tmp->items[it].offset];
            d[k0 - tmp->items[it].offset] = 0.5f;
            uint8_t *b2 = NULL;
            size_t n2 = 0;
            CHECK_STATUS(nne_checkpoint_write_mem(&wr, &b2, &n2), NNE_ERR_INVALID_ARG);
            CHECK(strstr(nne_last_error(), "pruned parameter") != NULL);
            d[k0 - tmp->items[it].offset] = keep_v;
            nne_free(b2);
            nne_params_free(tmp);
        }
    }
    CHECK_OK(nne_checkpoint_read_mem(bytes, n, &rd));
    if (!rd.model || !rd.mask) goto done;
    CHECK(memcmp(rd.mask, nne_trainer_params(tb)->keep, rd.optim->n) == 0);
    CHECK_OK(nne_trainer_create(rd.model, &rd.config, &tc));
    if (!tc) goto done;
    nne_params *pc = nne_trainer_params(tc);
    pc->keep = malloc(pc->total);
    memcpy(pc->keep, rd.mask, pc->total);
    run_steps(tc, rd.model, rd.optim, &rd.config, CUT, STEPS, x);
    const nne_params *pa = nne_trainer_params(ta);
    CHECK_MSG(memcmp(pa->data, pc->data, pa->total * sizeof(float)) == 0,
              "resumed pruned weights differ from an uninterrupted run");
    CHECK(memcmp(pa->keep, pc->keep, pa->total) == 0);
    size_t masked, maskable;
    nne_prune_masks_count(pa, ga, &masked, &maskable);
    CHECK(fabs((double)masked / maskable - 0.6) < 0.01);
done:
    nne_free(bytes);
    free(x);
    nne_trainer_free(ta);
    nne_trainer_free(tb);
    nne_trainer_free(tc);
    nne_optim_free(oa);
    nne_optim_free(ob);
    nne_checkpoint_clear(&rd);
    nne_graph_free(ga);
    nne_graph_free(gb);
}

/* A tiny masked checkpoint (1x1 conv 3->4 + bias): the seed of fuzz/fuzz_checkpoint.c for
 * the mask section, regenerated with NNE_REGEN_GOLDEN=1; it reads back with its mask. */
static void test_tiny_corpus(void) {
    nne_graph *g = NULL;
    int32_t x, w, b, y;
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = 1;
    p.conv.stride[0] = p.conv.stride[1] = 1;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad_mode = NNE_PAD_VALID;
    p.conv.groups = 1;
    CHECK_OK(nne_graph_create("tiny", &g));
    if (!g) return;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 2, 2, 3), &x));
    CHECK_OK(nne_graph_add_constant(g, "w", NNE_F32, nne_shape_4d(4, 1, 1, 3), NULL, &w));
    CHECK_OK(nne_graph_add_constant(g, "b", NNE_F32, nne_shape_1d(4), NULL, &b));
    CHECK_OK(nne_graph_add_node(g, "conv", NNE_OP_CONV2D, &p, (int32_t[]){x, w, b}, 3, "y", &y));
    CHECK_OK(nne_graph_mark_output(g, y));
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, 2));
    nne_trainer_config cfg = make_config();
    nne_trainer *t = NULL;
    nne_optim *o = NULL;
    CHECK_OK(nne_trainer_create(g, &cfg, &t));
    if (t) CHECK_OK(nne_optim_create(&cfg.optim, nne_trainer_params(t)->total, &o));
    if (!o) goto done;
    CHECK_OK(nne_prune_masks_update(nne_trainer_params(t), g, 0.5));
    float in[12], target[16];
    for (int i = 0; i < 12; i++) in[i] = (float)i / 12.0f;
    for (int i = 0; i < 16; i++) target[i] = 0.5f;
    CHECK_OK(nne_trainer_step_ext(t, o, &cfg.lr, 0, in, target, NULL));
    nne_trainer_store(t);
    nne_checkpoint c;
    memset(&c, 0, sizeof c);
    c.model = g;
    c.optim = o;
    c.config = cfg;
    c.step = 1;
    c.best_step = -1;
    c.best_val_loss = c.best_val_psnr = NAN;
    c.mask = nne_trainer_params(t)->keep;
    uint8_t *bytes = NULL;
    size_t n = 0;
    CHECK_OK(nne_checkpoint_write_mem(&c, &bytes, &n));
    nne_checkpoint r;
    if (bytes) {
        CHECK_OK(nne_checkpoint_read_mem(bytes, n, &r));
        CHECK(r.mask && memcmp(r.mask, c.mask, o->n) == 0);
        nne_checkpoint_clear(&r);
        if (getenv("NNE_REGEN_GOLDEN"))
            CHECK_OK(nne_file_write_atomic(
                nne_test_path(nne_test_source_dir(), "fuzz/corpus/fuzz_checkpoint/tiny_mask.ckpt"),
                bytes, n));
    }
    nne_free(bytes);
done:
    nne_optim_free(o);
    nne_trainer_free(t);
    nne_graph_free(g);
}

int main(void) {
    NNE_RUN(test_tiny_corpus);
    NNE_RUN(test_schedule);
    NNE_RUN(test_masks_through_adam);
    NNE_RUN(test_exact_resume);
    return nne_test_summary();
}
