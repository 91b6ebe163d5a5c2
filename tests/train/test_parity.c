/* PyTorch parity of the trainer: cae-seed, batch 2 of 24x28, nnedge's initialisation (the
 * script re-implements the PRNG bit for bit), 3 Adam steps on MSE, against
 * tests/golden/train/cae_seed_adam.gold from scripts/gen_golden_train.py (torch 1.13).
 *
 * Tolerances. Both sides compute in f32 with different summation orders (PyTorch: im2col +
 * blocked GEMM and vectorized reductions; nnedge: the reference loops), so every gradient
 * differs by a few f32 roundings of its reduction (lengths up to ~2e3 terms here):
 *   losses       relative 1e-5
 *   gradients    |d| <= GRAD_ATOL_REL * max|g of the tensor| + 1e-4 |g|
 *   weights      |d| <= 2e-6 + 1e-5 |w|: three Adam updates of size ~lr = 1e-3 each,
 *                whose direction m / sqrt(v) is insensitive to small gradient errors except
 *                for gradients near 0 (none are in this golden set, see the report). */
#include <math.h>
#include <string.h>

#include "golden.h"
#include "nnedge/models.h"
#include "nnedge/train.h"
#include "testutil.h"

#define LOSS_RTOL     1e-5
#define GRAD_ATOL_REL 1e-4
#define W_ATOL        2e-6
#define W_RTOL        1e-5

/* Compare got[k * stride] (stride 11 when the tensor has more than 64 elements, as the
 * script subsamples) with ref; returns the worst error relative to max |ref|. */
static double compare_sub(const char *what, const char *name, const float *got, size_t count,
                          const float *ref, size_t nref, double atol_rel, double atol,
                          double rtol) {
    const size_t stride = count <= 64 ? 1 : 11;
    CHECK_MSG(nref == (count + stride - 1) / stride, "%s %s: %zu reference values for %zu", what,
              name, nref, count);
    if (nref != (count + stride - 1) / stride) return INFINITY;
    double maxref = 0, worst = 0;
    for (size_t k = 0; k < nref; k++) maxref = fmax(maxref, fabs(ref[k]));
    size_t bad = 0;
    for (size_t k = 0; k < nref; k++) {
        const double d = fabs((double)got[k * stride] - (double)ref[k]);
        if (d > atol + atol_rel * maxref + rtol * fabs(ref[k])) {
            if (bad++ < 3)
                fprintf(stderr, "  %s %s[%zu]: got %.9g want %.9g\n", what, name, k * stride,
                        got[k * stride], ref[k]);
        }
        worst = fmax(worst, d / fmax(maxref, 1e-30));
    }
    CHECK_MSG(bad == 0, "%s %s: %zu of %zu values out of tolerance", what, name, bad, nref);
    return worst;
}

static void test_parity_cae_seed_adam(void) {
    nne_golden gd;
    const char *path =
        nne_test_path(nne_test_source_dir(), "tests/golden/train/cae_seed_adam.gold");
    CHECK_OK(nne_golden_load(path, &gd));
    if (gd.n == 0) return;
    const int32_t seed = nne_golden_i32_at(&gd, "ints", 0, 0);
    const int32_t batch = nne_golden_i32_at(&gd, "ints", 1, 0);
    const int32_t h = nne_golden_i32_at(&gd, "ints", 2, 0),
                  w = nne_golden_i32_at(&gd, "ints", 3, 0);
    const int32_t steps = nne_golden_i32_at(&gd, "ints", 4, 0);
    size_t nx = 0, nl = 0, nh = 0;
    const float *x = nne_golden_f32(&gd, "x", &nx);
    const float *losses = nne_golden_f32(&gd, "losses", &nl);
    const float *hp = nne_golden_f32(&gd, "hparams", &nh);
    CHECK(x && losses && hp && nh == 4 && nl == (size_t)steps + 1);
    CHECK(nx == (size_t)batch * h * w * 3);
    if (!x || !losses || !hp || nh != 4 || nl != (size_t)steps + 1) goto out;

    nne_graph *g;
    CHECK_OK(nne_model_cae_seed(h, w, NNE_CAE_FULL, &g));
    if (!g) goto out;
    CHECK_OK(nne_graph_set_input_shape(g, 0, nne_shape_4d(batch, h, w, 3)));
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, (uint64_t)seed));

    nne_trainer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.optim = nne_optim_config_adam(); /* 0.9, 0.999, 1e-8 as the script */
    CHECK_NEAR(hp[1], cfg.optim.beta1, 1e-7);
    CHECK_NEAR(hp[2], cfg.optim.beta2, 1e-7);
    CHECK_NEAR(hp[3], cfg.optim.eps, 1e-15);
    cfg.lr.kind = NNE_LR_CONSTANT;
    cfg.lr.lr = hp[0];
    cfg.loss = NNE_LOSS_MSE;
    nne_trainer *tr;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (!tr) {
        nne_graph_free(g);
        goto out;
    }
    nne_params *p = nne_trainer_params(tr);
    char key[300];

    /* The initialisation is bit-identical to the script's port of it. */
    for (int32_t i = 0; i < p->n; i++) {
        const nne_param *it = &p->items[i];
        const char *name = g->tensors[it->tensor].name;
        size_t n = 0, ns = 0;
        snprintf(key, sizeof key, "init_head:%s", name);
        const float *head = nne_golden_f32(&gd, key, &n);
        snprintf(key, sizeof key, "init_sum:%s", name);
        const float *sum = nne_golden_f32(&gd, key, &ns);
        CHECK_MSG(head && sum && n == (it->count < 8 ? it->count : 8), "%s missing", key);
        if (!head || !sum) continue;
        CHECK_MSG(memcmp(head, p->data + it->offset, n * sizeof(float)) == 0,
                  "%s: initial values differ from the script's", name);
        double s = 0;
        for (size_t k = 0; k < it->count; k++) s += p->data[it->offset + k];
        CHECK_NEAR(s, sum[0], 1e-6 * fmax(1.0, fabs(sum[0])));
    }

    double worst_loss = 0, worst_grad = 0, worst_w = 0;
    for (int32_t step = 0; step < steps; step++) {
        nne_train_stats st;
        CHECK_OK(nne_trainer_step(tr, x, x, &st));
        const double rel = fabs(st.loss - losses[step]) / fabs(losses[step]);
        printf("  step %d: loss nnedge %.8f torch %.8f (rel %.2g)\n", step + 1, st.loss,
               losses[step], rel);
        CHECK(rel <= LOSS_RTOL);
        worst_loss = fmax(worst_loss, rel);
        if (step != 0) continue;
        for (int32_t i = 0; i < p->n; i++) {
            const nne_param *it = &p->items[i];
            size_t n = 0;
            snprintf(key, sizeof key, "grad0:%s", g->tensors[it->tensor].name);
            const float *ref = nne_golden_f32(&gd, key, &n);
            CHECK_MSG(ref != NULL, "%s missing", key);
            if (!ref) continue;
            worst_grad = fmax(worst_grad,
                              compare_sub("grad", g->tensors[it->tensor].name, p->grad + it->offset,
                                          it->count, ref, n, GRAD_ATOL_REL, 0.0, 1e-4));
        }
    }
    double final_loss;
    CHECK_OK(nne_trainer_eval(tr, x, x, &final_loss));
    const double rel = fabs(final_loss - losses[steps]) / fabs(losses[steps]);
    printf("  after %d steps: loss nnedge %.8f torch %.8f (rel %.2g)\n", steps, final_loss,
           losses[steps], rel);
    CHECK(rel <= LOSS_RTOL);
    worst_loss = fmax(worst_loss, rel);
    for (int32_t i = 0; i < p->n; i++) {
        const nne_param *it = &p->items[i];
        size_t n = 0;
        snprintf(key, sizeof key, "final:%s", g->tensors[it->tensor].name);
        const float *ref = nne_golden_f32(&gd, key, &n);
        CHECK_MSG(ref != NULL, "%s missing", key);
        if (!ref) continue;
        worst_w =
            fmax(worst_w, compare_sub("final", g->tensors[it->tensor].name, p->data + it->offset,
                                      it->count, ref, n, 0.0, W_ATOL, W_RTOL));
    }
    printf("  worst: loss rel %.2g, step-1 gradient %.2g of max|g|, final weights %.2g of "
           "max|w|\n",
           worst_loss, worst_grad, worst_w);
    nne_trainer_free(tr);
    nne_graph_free(g);
out:
    nne_golden_free(&gd);
}

int main(void) {
    NNE_RUN(test_parity_cae_seed_adam);
    return nne_test_summary();
}
