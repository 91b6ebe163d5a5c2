/* Optimizers, clipping, learning-rate schedules, parameter arenas and the PRNG, against
 * values computed here by hand from the formulas of include/nnedge/train.h. */
#include <math.h>
#include <string.h>

#include "nnedge/models.h"
#include "nnedge/train.h"
#include "testutil.h"

/* Adam on f(p) = 0.5 * a * (p - c)^2 (gradient a (p - c)), 3 steps, against the textbook
 * formulas evaluated in double. f32 state: agreement to ~1e-7 relative. */
static void test_adam_quadratic(void) {
    const float a[3] = {1.0f, 4.0f, 0.25f}, c[3] = {0.5f, -1.0f, 2.0f};
    float p[3] = {2.0f, 1.0f, -1.0f}, g[3];
    double pd[3] = {2.0, 1.0, -1.0}, m[3] = {0}, v[3] = {0};
    const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    nne_optim_config cfg = nne_optim_config_adam();
    nne_optim *o;
    CHECK_OK(nne_optim_create(&cfg, 3, &o));
    if (!o) return;
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < 3; i++) g[i] = a[i] * (p[i] - c[i]);
        nne_optim_step(o, p, g, 0, (float)lr);
        for (int i = 0; i < 3; i++) {
            const double gd = a[i] * (pd[i] - c[i]);
            m[i] = b1 * m[i] + (1 - b1) * gd;
            v[i] = b2 * v[i] + (1 - b2) * gd * gd;
            const double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
            pd[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    /* Step 1 of Adam moves every coordinate by lr * sign(g) exactly (up to eps). */
    for (int i = 0; i < 3; i++) CHECK_NEAR(p[i], pd[i], 1e-6 * fmax(1.0, fabs(pd[i])));
    /* By hand, coordinate 0: g1 = 1.5, m1 = 0.15, v1 = 0.00225, p1 = 1.9 (a step of lr);
     * g2 = 1.4, m2 = 0.275, v2 = 0.00420775, p2 = 1.9 - 0.1 * (0.275/0.19) /
     * sqrt(0.00420775/0.001999) = 1.800239; g3 = 1.300239, m3 = 0.377524,
     * v3 = 0.00589416, p3 = 1.700903. */
    CHECK_NEAR(p[0], 1.9 - 0.1 + 0.000239 - 0.099336, 2e-5);
    CHECK_NEAR(pd[0], 1.700903, 1e-6);
    CHECK(o->t == 3);
    nne_optim_free(o);
}

/* SGD with momentum and decoupled weight decay, 3 steps by hand. */
static void test_sgd_momentum_decay(void) {
    nne_optim_config cfg = nne_optim_config_sgd(0.9f);
    cfg.weight_decay = 0.1f;
    nne_optim *o;
    CHECK_OK(nne_optim_create(&cfg, 2, &o));
    if (!o) return;
    /* p[0] decayed (n_decay = 1), p[1] not. Constant gradient 1. */
    float p[2] = {1.0f, 1.0f};
    const float g[2] = {1.0f, 1.0f};
    const float lr = 0.5f;
    nne_optim_step(o, p, g, 1, lr); /* buf 1;    p0 = 1*0.95 - 0.5 = 0.45, p1 = 0.5 */
    CHECK_NEAR(p[0], 0.45, 1e-7);
    CHECK_NEAR(p[1], 0.5, 1e-7);
    nne_optim_step(o, p, g, 1, lr); /* buf 1.9;  p0 = 0.45*0.95 - 0.95 = -0.5225, p1 = -0.45 */
    CHECK_NEAR(p[0], -0.5225, 1e-6);
    CHECK_NEAR(p[1], -0.45, 1e-6);
    nne_optim_step(o, p, g, 1, lr); /* buf 2.71; p0 = -0.5225*0.95 - 1.355, p1 = -1.805 */
    CHECK_NEAR(p[0], -0.5225 * 0.95 - 1.355, 1e-6);
    CHECK_NEAR(p[1], -1.805, 1e-6);
    nne_optim_free(o);

    /* AdamW decay: with zero gradient only the decay acts: p *= 1 - lr*wd. */
    nne_optim_config ac = nne_optim_config_adam();
    ac.weight_decay = 0.01f;
    CHECK_OK(nne_optim_create(&ac, 2, &o));
    if (!o) return;
    float q[2] = {2.0f, 2.0f}, z[2] = {0, 0};
    nne_optim_step(o, q, z, 1, 0.1f);
    CHECK_NEAR(q[0], 2.0 * (1 - 0.001), 1e-7);
    CHECK(q[1] == 2.0f);
    nne_optim_free(o);

    /* Bad configurations are rejected. */
    nne_optim_config bad = nne_optim_config_adam();
    bad.beta1 = 1.0;
    CHECK_STATUS(nne_optim_create(&bad, 2, &o), NNE_ERR_INVALID_ARG);
    bad = nne_optim_config_sgd(-0.1f);
    CHECK_STATUS(nne_optim_create(&bad, 2, &o), NNE_ERR_INVALID_ARG);
}

static void test_clip(void) {
    float g[4] = {3.0f, 4.0f, 0.0f, 0.0f};
    CHECK_NEAR(nne_clip_grad_norm(g, 4, 0.0), 5.0, 1e-12); /* no clipping */
    CHECK(g[0] == 3.0f && g[1] == 4.0f);
    CHECK_NEAR(nne_clip_grad_norm(g, 4, 10.0), 5.0, 1e-12); /* under the limit */
    CHECK(g[0] == 3.0f);
    CHECK_NEAR(nne_clip_grad_norm(g, 4, 1.0), 5.0, 1e-12);
    CHECK_NEAR(g[0], 0.6 * 5.0 / (5.0 + 1e-6), 1e-7);
    CHECK_NEAR(g[1], 0.8 * 5.0 / (5.0 + 1e-6), 1e-7);
}

static void test_schedules(void) {
    nne_lr_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = NNE_LR_CONSTANT;
    s.lr = 0.01f;
    CHECK(nne_lr_at(&s, 0) == 0.01f && nne_lr_at(&s, 1000000) == 0.01f);
    /* Step: 0.1 * 0.5^floor(t / 10). */
    s.kind = NNE_LR_STEP;
    s.lr = 0.1f;
    s.step_size = 10;
    s.gamma = 0.5f;
    CHECK_NEAR(nne_lr_at(&s, 0), 0.1, 1e-8);
    CHECK_NEAR(nne_lr_at(&s, 9), 0.1, 1e-8);
    CHECK_NEAR(nne_lr_at(&s, 10), 0.05, 1e-8);
    CHECK_NEAR(nne_lr_at(&s, 25), 0.025, 1e-8);
    /* With a 5-step warm-up: 0.02, 0.04, ..., 0.1 at step 4, then the step clock from 0. */
    s.warmup = 5;
    CHECK_NEAR(nne_lr_at(&s, 0), 0.02, 1e-8);
    CHECK_NEAR(nne_lr_at(&s, 4), 0.1, 1e-8);
    CHECK_NEAR(nne_lr_at(&s, 5), 0.1, 1e-8);
    CHECK_NEAR(nne_lr_at(&s, 15), 0.05, 1e-8);
    /* Cosine from 1 to 0.1 over 100 steps: half way 0.55, at/after the end 0.1. */
    memset(&s, 0, sizeof s);
    s.kind = NNE_LR_COSINE;
    s.lr = 1.0f;
    s.min_lr = 0.1f;
    s.total_steps = 100;
    CHECK_NEAR(nne_lr_at(&s, 0), 1.0, 1e-7);
    CHECK_NEAR(nne_lr_at(&s, 50), 0.55, 1e-7);
    CHECK_NEAR(nne_lr_at(&s, 25), 0.1 + 0.9 * 0.5 * (1 + cos(M_PI / 4)), 1e-7);
    CHECK_NEAR(nne_lr_at(&s, 100), 0.1, 1e-7);
    CHECK_NEAR(nne_lr_at(&s, 500), 0.1, 1e-7);
    /* Cosine with 10 warm-up steps: T = 90. */
    s.warmup = 10;
    CHECK_NEAR(nne_lr_at(&s, 0), 0.1, 1e-7);
    CHECK_NEAR(nne_lr_at(&s, 9), 1.0, 1e-7);
    CHECK_NEAR(nne_lr_at(&s, 10), 1.0, 1e-7);
    CHECK_NEAR(nne_lr_at(&s, 55), 0.55, 1e-7);
}

static void test_rng(void) {
    nne_rng r, r2;
    nne_rng_seed(&r, 0);
    /* splitmix64's first output from state 0 (Vigna's reference implementation). */
    CHECK(r.s[0] == 0xE220A8397B1DCDAFull);
    nne_rng_seed(&r, 42);
    nne_rng_seed(&r2, 42);
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        const float u = nne_rng_uniform_f32(&r);
        CHECK(u == nne_rng_uniform_f32(&r2));
        CHECK(u >= 0.0f && u < 1.0f);
        sum += u;
    }
    CHECK_NEAR(sum / 10000, 0.5, 0.01);
}

/* The arena of cae-seed: every conv weight/bias and PReLU slope, decayed weights first. */
static void test_params_cae(void) {
    nne_graph *g;
    CHECK_OK(nne_model_cae_seed(24, 28, NNE_CAE_FULL, &g));
    if (!g) return;
    CHECK_OK(nne_train_init_params(g, 1));
    nne_params *p;
    CHECK_OK(nne_params_create(g, &p));
    if (!p) return;
    CHECK(p->n == 10 + 10 + 8); /* weights, biases, slopes */
    size_t elems = 0, decayed = 0;
    for (int32_t i = 0; i < p->n; i++) {
        const nne_param *it = &p->items[i];
        elems += it->count;
        if (it->decay) decayed += it->count;
        CHECK(it->offset % 16 == 0);
        CHECK(it->decay == (i < 10));
        CHECK(it->decay ? it->offset + it->count <= p->n_decay : it->offset >= p->n_decay);
        CHECK(memcmp(p->data + it->offset, g->tensors[it->tensor].data, it->count * 4) == 0);
    }
    CHECK(elems == 84032 + 84003 + 384);
    CHECK(decayed == 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9 + 64 * 32 * 9 +
                         32 * 64 * 9 + 64 * 64 * 9 + 64 * 32 * 9 + 32 * 32 * 9 + 32 * 3 * 9);
    /* Init bounds: conv2d_2 weight fan_in 32*9 -> |w| <= 1/sqrt(288); the transposed
     * conv2d_transpose_5 (32 -> 3) fan_in = 3*9 (PyTorch's weight.size(1) * k * k). */
    int32_t t2 = nne_graph_find_tensor(g, "conv2d_2.weight");
    int32_t t5 = nne_graph_find_tensor(g, "conv2d_transpose_5.weight");
    const nne_param *i2 = &p->items[nne_params_find(p, t2)],
                    *i5 = &p->items[nne_params_find(p, t5)];
    float m2 = 0, m5 = 0;
    for (size_t k = 0; k < i2->count; k++) m2 = fmaxf(m2, fabsf(p->data[i2->offset + k]));
    for (size_t k = 0; k < i5->count; k++) m5 = fmaxf(m5, fabsf(p->data[i5->offset + k]));
    CHECK(m2 <= 1.0f / sqrtf(288.0f) && m2 > 0.9f / sqrtf(288.0f));
    CHECK(m5 <= 1.0f / sqrtf(27.0f) && m5 > 0.9f / sqrtf(27.0f));
    /* Store round trip. */
    p->data[i2->offset] = 123.0f;
    nne_params_store(p, g);
    CHECK(((float *)g->tensors[t2].data)[0] == 123.0f);
    nne_params_zero_grad(p);
    CHECK(p->grad[0] == 0.0f && p->grad[p->total - 1] == 0.0f);
    nne_params_free(p);
    nne_graph_free(g);
}

/* nne_optim_step_scaled: a NULL factor is nne_optim_step bit for bit, factors of 1 too, and
 * element i moves as it would at lr * lr_scale[i] (Adam's first step: lr * s * sign(g);
 * SGD: lr * s * g; weight decay by 1 - lr * s * wd). */
static void test_scaled_step(void) {
    for (int kind = 0; kind < 2; kind++) {
        nne_optim_config cfg = kind ? nne_optim_config_adam() : nne_optim_config_sgd(0.0f);
        cfg.weight_decay = 0.1f;
        nne_optim *a, *b, *c;
        CHECK_OK(nne_optim_create(&cfg, 4, &a));
        CHECK_OK(nne_optim_create(&cfg, 4, &b));
        CHECK_OK(nne_optim_create(&cfg, 4, &c));
        if (!a || !b || !c) return;
        float pa[4] = {1.0f, -2.0f, 0.5f, 3.0f}, pb[4], pc[4];
        memcpy(pb, pa, sizeof pa);
        memcpy(pc, pa, sizeof pa);
        const float ones[4] = {1, 1, 1, 1}, sc[4] = {1.0f, 10.0f, 0.5f, 30.0f};
        for (int t = 0; t < 3; t++) {
            const float g[4] = {0.3f * (float)(t + 1), -1.5f, 0.02f, -0.7f / (float)(t + 1)};
            nne_optim_step(a, pa, g, 2, 0.01f);
            nne_optim_step_scaled(b, pb, g, 2, 0.01f, ones);
            CHECK(memcmp(pa, pb, sizeof pa) == 0);
            const float before[4] = {pc[0], pc[1], pc[2], pc[3]};
            nne_optim_step_scaled(c, pc, g, 2, 0.01f, sc);
            if (t == 0)
                for (int i = 0; i < 4; i++) {
                    const double dec = i < 2 ? before[i] * (0.01 * sc[i] * 0.1) : 0.0;
                    const double upd =
                        kind ? 0.01 * sc[i] * (g[i] > 0 ? 1 : -1) : 0.01 * sc[i] * g[i];
                    CHECK_NEAR(pc[i], before[i] - dec - upd, 1e-5 * fabs(upd) + 1e-7);
                }
        }
        CHECK(pc[0] == pa[0]); /* factor 1 follows the unscaled update exactly */
        nne_optim_free(a), nne_optim_free(b), nne_optim_free(c);
    }
}

int main(void) {
    NNE_RUN(test_adam_quadratic);
    NNE_RUN(test_scaled_step);
    NNE_RUN(test_sgd_momentum_decay);
    NNE_RUN(test_clip);
    NNE_RUN(test_schedules);
    NNE_RUN(test_rng);
    NNE_RUN(test_params_cae);
    return nne_test_summary();
}
