/* The graph-level trainer: its gradients against finite differences of the whole graph
 * (wiring, shared tensors, every op), determinism, and that training reduces the loss. */
#include <math.h>
#include <string.h>

#include "nnedge/gemm.h"
#include "nnedge/models.h"
#include "nnedge/train.h"
#include "testutil.h"

static nne_op_params conv_params(int k, int stride, int pad, int oph, int opw) {
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = k;
    p.conv.stride[0] = p.conv.stride[1] = stride;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad[0] = p.conv.pad[1] = p.conv.pad[2] = p.conv.pad[3] = pad;
    p.conv.pad_mode = NNE_PAD_EXPLICIT;
    p.conv.groups = 1;
    p.conv.out_pad[0] = oph;
    p.conv.out_pad[1] = opw;
    return p;
}

/* x [2][9][10][3] -> conv 3->4 -> prelu -> gdn (= a) -> conv s2 4->4 -> relu -> convT s2
 * -> igdn -> add(., a) -> convT 4->3 -> y [2][9][10][3]. `a` has two readers. */
static nne_graph *small_graph(void) {
    nne_graph *g;
    if (nne_graph_create("small", &g)) return NULL;
    int32_t x, t, a, w, b, s, beta, gamma;
    nne_op_params p;
    float ones[4] = {1, 1, 1, 1}, eye[16] = {0}, slope[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    for (int i = 0; i < 4; i++) eye[i * 5] = 0.1f;
    nne_status st = nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(2, 9, 10, 3), &x);
#define ADD_CONV(name, op, cin, cout, prm, in, out)                                                \
    st = st ? st                                                                                   \
            : nne_graph_add_constant(g, name ".w", NNE_F32, nne_shape_4d(cout, 3, 3, cin), NULL,   \
                                     &w);                                                          \
    st = st ? st : nne_graph_add_constant(g, name ".b", NNE_F32, nne_shape_1d(cout), NULL, &b);    \
    p = prm;                                                                                       \
    st = st ? st : nne_graph_add_node(g, name, op, &p, (int32_t[]){in, w, b}, 3, name ":out", &out)
    ADD_CONV("c1", NNE_OP_CONV2D, 3, 4, conv_params(3, 1, 1, 0, 0), x, t);
    st = st ? st : nne_graph_add_constant(g, "s1", NNE_F32, nne_shape_1d(4), slope, &s);
    memset(&p, 0, sizeof p);
    st =
        st ? st : nne_graph_add_node(g, "p1", NNE_OP_PRELU, &p, (int32_t[]){t, s}, 2, "p1:out", &t);
    st = st ? st : nne_graph_add_constant(g, "g1.beta", NNE_F32, nne_shape_1d(4), ones, &beta);
    st = st ? st : nne_graph_add_constant(g, "g1.gamma", NNE_F32, nne_shape_2d(4, 4), eye, &gamma);
    st = st ? st
            : nne_graph_add_node(g, "g1", NNE_OP_GDN, &p, (int32_t[]){t, beta, gamma}, 3, "a", &a);
    ADD_CONV("c2", NNE_OP_CONV2D, 4, 4, conv_params(3, 2, 1, 0, 0), a, t);
    memset(&p, 0, sizeof p);
    st = st ? st : nne_graph_add_node(g, "r1", NNE_OP_RELU, &p, (int32_t[]){t}, 1, "r1:out", &t);
    ADD_CONV("t1", NNE_OP_CONV_TRANSPOSE2D, 4, 4, conv_params(3, 2, 1, 0, 1), t, t);
    st = st ? st : nne_graph_add_constant(g, "g2.beta", NNE_F32, nne_shape_1d(4), ones, &beta);
    st = st ? st : nne_graph_add_constant(g, "g2.gamma", NNE_F32, nne_shape_2d(4, 4), eye, &gamma);
    memset(&p, 0, sizeof p);
    st = st ? st
            : nne_graph_add_node(g, "g2", NNE_OP_IGDN, &p, (int32_t[]){t, beta, gamma}, 3, "g2:out",
                                 &t);
    st = st ? st : nne_graph_add_node(g, "add", NNE_OP_ADD, &p, (int32_t[]){t, a}, 2, "sum", &t);
    ADD_CONV("t2", NNE_OP_CONV_TRANSPOSE2D, 4, 3, conv_params(3, 1, 1, 0, 0), t, t);
#undef ADD_CONV
    st = st ? st : nne_graph_mark_output(g, t);
    st = st ? st : nne_graph_infer(g);
    st = st ? st : nne_train_init_params(g, 7);
    if (st) {
        fprintf(stderr, "small_graph: %s\n", nne_last_error());
        nne_graph_free(g);
        return NULL;
    }
    return g;
}

static nne_trainer_config adam_mse(float lr) {
    nne_trainer_config c;
    memset(&c, 0, sizeof c);
    c.optim = nne_optim_config_adam();
    c.lr.kind = NNE_LR_CONSTANT;
    c.lr.lr = lr;
    c.loss = NNE_LOSS_MSE;
    return c;
}

/* Central differences (h = 2e-3) of the trainer's loss on `samples` random elements of each
 * parameter tensor, against the analytic gradient `ga`. `train` evaluates the training loss
 * (nne_trainer_grad, noise fixed by the step) instead of nne_trainer_eval. The error is
 * relative to max(largest checked gradient, floor). Returns the worst one; checks < tol. */
static double fd_check(nne_trainer *tr, const nne_graph *g, const float *x, const float *tg,
                       const float *ga, bool train, int samples, double floor, double tol,
                       nne_test_rng *r) {
    nne_params *p = nne_trainer_params(tr);
    double worst = 0;
    for (int32_t k = 0; k < p->n; k++) {
        const nne_param *it = &p->items[k];
        double max_num = 0, max_err = 0;
        for (int s = 0; s < samples; s++) {
            const size_t i = it->offset + (size_t)nne_test_rng_int(r, 0, (int)it->count - 1);
            const float save = p->data[i];
            const float h = 2e-3f;
            double lp, lm;
            p->data[i] = save + h;
            CHECK_OK(train ? nne_trainer_grad(tr, x, tg, &lp) : nne_trainer_eval(tr, x, tg, &lp));
            p->data[i] = save - h;
            CHECK_OK(train ? nne_trainer_grad(tr, x, tg, &lm) : nne_trainer_eval(tr, x, tg, &lm));
            p->data[i] = save;
            const double num = (lp - lm) / (2.0 * (double)h);
            max_num = fmax(max_num, fabs(num));
            max_err = fmax(max_err, fabs(num - ga[i]));
        }
        const double rel = max_err / fmax(max_num, floor);
        worst = fmax(worst, rel);
        CHECK_MSG(rel < tol, "%s: rel err %.3g (max |g| %.3g)", g->tensors[it->tensor].name, rel,
                  max_num);
    }
    return worst;
}

/* Central differences of the f32 graph loss (double accumulation) with h = 2e-3: the
 * forward's f32 rounding (~1e-7 of the loss) gives ~1e-4 relative noise on gradients of ~1e-3,
 * truncation ~h^2 relative. Tolerance 2% of the tensor's largest checked gradient: far below the
 * O(1) errors of a wiring bug (wrong tensor, lost contribution of a shared tensor). */
static void test_graph_grad_fd(void) {
    nne_graph *g = small_graph();
    CHECK(g != NULL);
    if (!g) return;
    nne_trainer_config cfg = adam_mse(1e-3f);
    nne_trainer *tr;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (!tr) return;
    nne_test_rng r;
    nne_test_rng_seed(&r, 3);
    const size_t n = 2 * 9 * 10 * 3;
    float *x = malloc(n * 4), *tg = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)nne_test_rng_uniform(&r);
        tg[i] = (float)nne_test_rng_uniform(&r);
    }
    nne_params *p = nne_trainer_params(tr);
    double loss;
    CHECK_OK(nne_trainer_grad(tr, x, tg, &loss));
    float *ga = malloc(p->total * 4);
    memcpy(ga, p->grad, p->total * 4);
    const double worst = fd_check(tr, g, x, tg, ga, false, 6, 1e-12, 2e-2, &r);
    printf("  graph-level FD check: worst rel err %.3g over %d tensors\n", worst, (int)p->n);
    free(x), free(tg), free(ga);
    nne_trainer_free(tr);
    nne_graph_free(g);
}

/* Two trainers from the same seed and data end bit-identical; the loss falls. */
/* 30 Adam steps (lr 3e-3, clip 1) of cae-seed 2x24x28 on a fixed random image, from seed
 * 1234: the first and last losses and a malloc'd copy of the parameters (*total floats).
 * With `store`, checks that nne_trainer_store writes the trained values into the graph. */
static float *train_cae_small(nne_trainer_config cfg, bool store, double *first, double *last,
                              size_t *total) {
    nne_graph *g;
    CHECK_OK(nne_model_cae_seed(24, 28, NNE_CAE_FULL, &g));
    if (!g) return NULL;
    CHECK_OK(nne_graph_set_input_shape(g, 0, nne_shape_4d(2, 24, 28, 3)));
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, 1234));
    nne_trainer *tr;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (!tr) {
        nne_graph_free(g);
        return NULL;
    }
    const size_t n = 2 * 24 * 28 * 3;
    float *x = malloc(n * 4);
    nne_rng rng;
    nne_rng_seed(&rng, 99);
    for (size_t i = 0; i < n; i++) x[i] = nne_rng_uniform_f32(&rng);
    nne_train_stats st;
    for (int k = 0; k < 30; k++) {
        CHECK_OK(nne_trainer_step(tr, x, x, &st));
        if (k == 0) *first = st.loss;
    }
    *last = st.loss;
    CHECK(st.step == 30 && nne_trainer_steps(tr) == 30);
    nne_params *p = nne_trainer_params(tr);
    *total = p->total;
    float *out = malloc(p->total * 4);
    memcpy(out, p->data, p->total * 4);
    if (store) { /* store writes the trained values into the graph */
        nne_trainer_store(tr);
        CHECK(memcmp(g->tensors[p->items[0].tensor].data, p->data + p->items[0].offset,
                     p->items[0].count * 4) == 0);
    }
    free(x);
    nne_trainer_free(tr);
    nne_graph_free(g);
    return out;
}

static void test_determinism_and_descent(void) {
    float *out[2];
    double first = 0, last = 0;
    size_t total = 0;
    nne_trainer_config cfg = adam_mse(3e-3f);
    cfg.optim.clip_norm = 1.0f;
    cfg.optim.weight_decay = 1e-4f;
    for (int run = 0; run < 2; run++) out[run] = train_cae_small(cfg, true, &first, &last, &total);
    printf("  cae-seed 2x24x28, 30 Adam steps: loss %.5f -> %.5f\n", first, last);
    CHECK(last < 0.5 * first);
    CHECK(out[0] && out[1] && memcmp(out[0], out[1], total * 4) == 0);
    free(out[0]);
    free(out[1]);
}

/* bf16_matmul (mixed precision): the convolutions' GEMMs on bf16-rounded operands. It
 * descends like f32, its first loss is within bf16 rounding of f32's (not equal to it),
 * 1 and 2 threads give the same bits, and evaluation is f32's. */
static void test_bf16_matmul(void) {
    float *out[3];
    double first[3] = {0, 0, 0}, last[3] = {0, 0, 0};
    size_t total = 0;
    for (int run = 0; run < 3; run++) { /* f32 1 thread, bf16 1 thread, bf16 2 threads */
        nne_trainer_config cfg = adam_mse(3e-3f);
        cfg.optim.clip_norm = 1.0f;
        cfg.bf16_matmul = run > 0;
        cfg.threads = run == 2 ? 2 : 1;
        out[run] = train_cae_small(cfg, false, &first[run], &last[run], &total);
    }
    printf("  bf16 (%s): loss %.5f -> %.5f (f32 %.5f -> %.5f)\n", nne_gemm_bf16_path(), first[1],
           last[1], first[0], last[0]);
    CHECK(last[1] < 0.5 * first[1]);
    CHECK(first[1] != first[0] && fabs(first[1] - first[0]) < 1e-2 * first[0]);
    CHECK(out[0] && out[1] && out[2] && memcmp(out[0], out[1], total * 4) != 0);
    CHECK(out[1] && out[2] && memcmp(out[1], out[2], total * 4) == 0);
    for (int i = 0; i < 3; i++) free(out[i]);
    /* Evaluation runs the f32 model: the same loss with and without bf16_matmul. */
    double ev[2] = {0, 0};
    nne_graph *g;
    CHECK_OK(nne_model_cae_seed(24, 28, NNE_CAE_FULL, &g));
    if (!g) return;
    CHECK_OK(nne_graph_set_input_shape(g, 0, nne_shape_4d(2, 24, 28, 3)));
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, 1234));
    float *x = malloc(2 * 24 * 28 * 3 * 4);
    for (int i = 0; i < 2 * 24 * 28 * 3; i++) x[i] = (float)(i % 97) / 97.0f;
    for (int run = 0; run < 2; run++) {
        nne_trainer_config cfg = adam_mse(3e-3f);
        cfg.bf16_matmul = run == 1;
        nne_trainer *tr;
        CHECK_OK(nne_trainer_create(g, &cfg, &tr));
        if (tr) CHECK_OK(nne_trainer_eval(tr, x, x, &ev[run]));
        nne_trainer_free(tr);
    }
    CHECK_MSG(ev[0] == ev[1] && ev[0] > 0, "eval f32 %.9g, bf16 trainer %.9g", ev[0], ev[1]);
    free(x);
    nne_graph_free(g);
}

/* MS-SSIM loss through the trainer (3 scales at 48x52), and SGD. */
static void test_ms_ssim_training(void) {
    nne_graph *g;
    CHECK_OK(nne_model_cae_seed(48, 52, NNE_CAE_FULL, &g));
    if (!g) return;
    CHECK_OK(nne_train_init_params(g, 5));
    nne_trainer_config cfg = adam_mse(2e-3f);
    cfg.loss = NNE_LOSS_MS_SSIM;
    nne_trainer *tr;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (!tr) return;
    const size_t n = 48 * 52 * 3;
    float *x = malloc(n * 4);
    for (int i = 0; i < 48; i++)
        for (int j = 0; j < 52; j++)
            for (int c = 0; c < 3; c++)
                x[(i * 52 + j) * 3 + c] = 0.5f + 0.4f * sinf(0.3f * i + c) * cosf(0.2f * j);
    nne_train_stats st;
    double first = 0;
    for (int k = 0; k < 15; k++) {
        CHECK_OK(nne_trainer_step(tr, x, x, &st));
        if (k == 0) first = st.loss;
        CHECK(st.loss >= 0.0 && st.loss <= 1.0);
    }
    printf("  cae-seed 48x52, 1-MS-SSIM (3 scales), 15 Adam steps: %.5f -> %.5f\n", first, st.loss);
    CHECK(st.loss < first);
    nne_trainer_free(tr);

    /* SGD with momentum and a step schedule runs and reduces MSE. */
    cfg = adam_mse(0.0f);
    cfg.optim = nne_optim_config_sgd(0.9f);
    cfg.lr.kind = NNE_LR_STEP;
    cfg.lr.lr = 0.05f;
    cfg.lr.step_size = 10;
    cfg.lr.gamma = 0.5f;
    cfg.lr.warmup = 2;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (tr) {
        for (int k = 0; k < 20; k++) {
            CHECK_OK(nne_trainer_step(tr, x, x, &st));
            if (k == 0) first = st.loss;
        }
        printf("  cae-seed 48x52, MSE, 20 SGD steps: %.5f -> %.5f\n", first, st.loss);
        CHECK(st.loss < first);
        nne_trainer_free(tr);
    }
    free(x);

    /* Errors: unsupported ops, too small for MS-SSIM, non-finite data. */
    nne_graph_free(g);
    CHECK_OK(nne_model_cae_seed(24, 28, NNE_CAE_FULL, &g));
    cfg = adam_mse(1e-3f);
    cfg.loss = NNE_LOSS_MS_SSIM;
    cfg.ms_ssim_scales = 3;
    CHECK_STATUS(nne_trainer_create(g, &cfg, &tr), NNE_ERR_LIMIT);
    cfg.loss = NNE_LOSS_MSE;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (tr) {
        float *bad = calloc(24 * 28 * 3, 4);
        bad[5] = NAN;
        CHECK_STATUS(nne_trainer_step(tr, bad, bad, &st), NNE_ERR_INVALID_ARG);
        CHECK(nne_trainer_steps(tr) == 0);
        free(bad);
        nne_trainer_free(tr);
    }
    nne_graph_free(g);
}

/* Part `part` of a learned codec at 64x64, initialised from seed 17, with its scales well
 * above their floor, so that finite differences do not meet the lower bound, whose gradient
 * is deliberately not the derivative (LowerBound). NULL on failure (checked). */
static nne_graph *tiny_rd_graph(const nne_rdmodel_config *mc, nne_rd_part part) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_rd(mc, 1, 64, 64, part, &g));
    if (!g) return NULL;
    CHECK_OK(nne_train_init_params(g, 17));
    const int32_t sb = nne_graph_find_tensor(g, "h_s.4.bias");
    if (sb >= 0)
        for (int k = 0; k < mc->m; k++) ((float *)g->tensors[sb].data)[k] = 1.0f;
    return g;
}

/* Adam at lr, the RD loss at lambda 0.01, noise seed 5. */
static nne_trainer_config rd_config(float lr) {
    nne_trainer_config cfg = adam_mse(lr);
    cfg.loss = NNE_LOSS_RD;
    cfg.rd_lambda = 0.01f;
    cfg.noise_seed = 5;
    return cfg;
}

/* Rate-distortion training (NNE_LOSS_RD) of the learned-codec graphs at tiny channel counts:
 * the gradient of the whole loss (noise fixed by the step) against central differences, for
 * each kind (shared y, y_hat and z_hat; gaussian with scales and means; the factorized
 * density's parameters); the eval loss rounds; training lowers the loss; a resumed trainer
 * replays the same noise. */
static void test_rd_training(void) {
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++) {
        const nne_rdmodel_config mc = {(nne_rdmodel_kind)kind, 4, 6, NNE_QUANTIZE_NOISE, false};
        nne_graph *g = tiny_rd_graph(&mc, NNE_RD_TRAIN);
        if (!g) return;
        CHECK(g->n_outputs == (kind == NNE_RD_FACTORIZED ? 2 : 3));
        nne_trainer_config cfg = rd_config(3e-3f);
        nne_trainer *tr;
        CHECK_OK(nne_trainer_create(g, &cfg, &tr));
        if (!tr) {
            nne_graph_free(g);
            return;
        }
        const size_t n = 64 * 64 * 3;
        float *x = malloc(n * 4);
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < 64; j++)
                for (int ch = 0; ch < 3; ch++)
                    x[(i * 64 + j) * 3 + ch] = 0.5f + 0.4f * sinf(0.2f * i + ch) * cosf(0.15f * j);
        nne_params *p = nne_trainer_params(tr);
        double loss, mse, bpp;
        CHECK_OK(nne_trainer_grad(tr, x, x, &loss));
        nne_trainer_last_rd(tr, &mse, &bpp);
        CHECK_NEAR(loss, (double)cfg.rd_lambda * 255.0 * 255.0 * mse + bpp, 1e-9 * loss);
        CHECK(bpp > 0.0 && mse > 0.0);
        float *ga = malloc(p->total * 4);
        memcpy(ga, p->grad, p->total * 4);
        nne_test_rng r;
        nne_test_rng_seed(&r, 4);
        /* Tensors whose sampled gradients are all ~0 (e.g. relu-dead units) carry no
         * information: the error is then relative to the FD noise floor 1e-2. */
        const double worst = fd_check(tr, g, x, x, ga, true, 4, 1e-2, 3e-2, &r);
        /* eval rounds: its loss differs from the noisy training loss but is finite. */
        double le;
        CHECK_OK(nne_trainer_eval(tr, x, x, &le));
        CHECK(isfinite(le) && le != loss);
        nne_train_stats st;
        double first = 0;
        for (int k = 0; k < 25; k++) {
            CHECK_MSG(nne_trainer_step(tr, x, x, &st) == NNE_OK, "%s step %d: %s",
                      nne_rdmodel_kind_name(mc.kind), k, nne_last_error());
            if (k == 0) first = st.loss;
        }
        printf("  %s N=4 M=6 64x64: FD worst rel err %.3g; 25 Adam steps loss %.4f -> %.4f "
               "(mse %.5f, bpp %.4f)\n",
               nne_rdmodel_kind_name(mc.kind), worst, first, st.loss, st.mse, st.bpp);
        CHECK(st.loss < first);
        free(x), free(ga);
        nne_trainer_free(tr);
        nne_graph_free(g);
    }
    /* Parts: shapes of every part at 128x192, and invalid sizes. */
    const nne_rdmodel_config hc = {NNE_RD_MEAN_SCALE, 8, 12, NNE_QUANTIZE_NOISE, false};
    nne_graph *p;
    CHECK_OK(nne_model_rd(&hc, 1, 128, 192, NNE_RD_ANALYSIS, &p));
    if (p) {
        const nne_shape *ys = &p->tensors[p->outputs[0]].shape;
        CHECK(ys->dim[1] == 8 && ys->dim[2] == 12 && ys->dim[3] == 12);
        nne_graph_free(p);
    }
    CHECK_OK(nne_model_rd(&hc, 1, 128, 192, NNE_RD_HYPER_SYNTHESIS, &p));
    if (p) {
        CHECK(p->n_outputs == 2);
        const nne_shape *ss = &p->tensors[p->outputs[0]].shape;
        CHECK(ss->dim[1] == 8 && ss->dim[2] == 12 && ss->dim[3] == 12);
        nne_graph_free(p);
    }
    CHECK_STATUS(nne_model_rd(&hc, 1, 96, 128, NNE_RD_TRAIN, &p), NNE_ERR_INVALID_ARG);
    const nne_rdmodel_config fc = {NNE_RD_FACTORIZED, 8, 12, NNE_QUANTIZE_NOISE, false};
    CHECK_STATUS(nne_model_rd(&fc, 1, 64, 64, NNE_RD_HYPER_ANALYSIS, &p), NNE_ERR_INVALID_ARG);
    CHECK_OK(nne_model_rd(&fc, 1, 48, 80, NNE_RD_TRAIN, &p));
    nne_graph_free(p);
}

/* The mixed proxy (nne_rdmodel_config.mixed): g_s and h_s see the rounded latents in training
 * too, so a training forward's reconstruction equals the evaluation's (which always rounds),
 * while the noise proxy's differs; the rate terms keep the noise (the losses differ). */
static void test_rd_mixed_proxy(void) {
    for (int mixed = 0; mixed < 2; mixed++) {
        const nne_rdmodel_config mc = {NNE_RD_MEAN_SCALE, 4, 6, NNE_QUANTIZE_NOISE, mixed == 1};
        nne_graph *g = NULL;
        CHECK_OK(nne_model_rd(&mc, 1, 64, 64, NNE_RD_TRAIN, &g));
        if (!g) return;
        CHECK((nne_graph_find_node(g, "quantize_y_ste") >= 0) == (mixed == 1));
        CHECK((nne_graph_find_node(g, "quantize_z_ste") >= 0) == (mixed == 1));
        CHECK_OK(nne_train_init_params(g, 17));
        nne_trainer_config cfg = adam_mse(1e-3f);
        cfg.loss = NNE_LOSS_RD;
        cfg.rd_lambda = 0.01f;
        cfg.noise_seed = 5;
        nne_trainer *tr = NULL;
        CHECK_OK(nne_trainer_create(g, &cfg, &tr));
        const size_t n = 64 * 64 * 3;
        float *x = malloc(n * sizeof *x), *ye = malloc(n * sizeof *ye);
        for (size_t i = 0; i < n; i++) x[i] = 0.5f + 0.4f * sinf(0.37f * (float)i);
        double lt = 0, le = 0;
        if (tr) {
            CHECK_OK(nne_trainer_eval(tr, x, x, &le));
            memcpy(ye, nne_trainer_output(tr), n * sizeof *ye);
            CHECK_OK(nne_trainer_grad(tr, x, x, &lt));
            const bool same = memcmp(ye, nne_trainer_output(tr), n * sizeof *ye) == 0;
            CHECK_MSG(same == (mixed == 1), "%s proxy: training reconstruction %s the eval one",
                      mixed ? "mixed" : "noise", same ? "equals" : "differs from");
            CHECK(lt != le); /* the rate terms still take the noise */
        }
        free(x), free(ye);
        nne_trainer_free(tr);
        nne_graph_free(g);
    }
}

/* entropy_lr_mult: only the factorized densities (nne_param.entropy) learn faster. Two
 * trainers from the same weights and data, factor 1 and 10: after one Adam step every other
 * parameter is identical and each density parameter has moved 10 times as far (Adam's first
 * step is lr * sign(g)). A factor outside [0, 1e4] is refused. */
static void test_entropy_lr_mult(void) {
    const nne_rdmodel_config mc = {NNE_RD_MEAN_SCALE, 4, 6, NNE_QUANTIZE_NOISE, false};
    nne_graph *g[2] = {NULL, NULL};
    nne_trainer *tr[2] = {NULL, NULL};
    float *before = NULL;
    const size_t n = 64 * 64 * 3;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 0.5f + 0.4f * sinf(0.37f * (float)i);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(nne_model_rd(&mc, 1, 64, 64, NNE_RD_TRAIN, &g[k]));
        if (!g[k]) goto out;
        CHECK_OK(nne_train_init_params(g[k], 17));
        nne_trainer_config cfg = adam_mse(1e-3f);
        cfg.loss = NNE_LOSS_RD;
        cfg.rd_lambda = 0.01f;
        cfg.noise_seed = 5;
        cfg.entropy_lr_mult = k ? 10.0f : 1.0f;
        CHECK_OK(nne_trainer_create(g[k], &cfg, &tr[k]));
        if (!tr[k]) goto out;
    }
    nne_params *p0 = nne_trainer_params(tr[0]), *p1 = nne_trainer_params(tr[1]);
    CHECK(p0->total == p1->total);
    before = malloc(p0->total * sizeof *before);
    memcpy(before, p0->data, p0->total * sizeof *before);
    int n_entropy = 0;
    for (int32_t i = 0; i < p0->n; i++) {
        const char *name = g[0]->tensors[p0->items[i].tensor].name;
        n_entropy += p0->items[i].entropy;
        CHECK_MSG(p0->items[i].entropy == (strstr(name, "bottleneck") != NULL),
                  "%s: entropy flag %d", name, (int)p0->items[i].entropy);
    }
    CHECK(n_entropy == 1); /* mbt2018-mean: the hyper-latent's factorized density */
    CHECK_OK(nne_trainer_step(tr[0], x, x, NULL));
    CHECK_OK(nne_trainer_step(tr[1], x, x, NULL));
    int moved = 0;
    for (int32_t i = 0; i < p0->n; i++) {
        const nne_param *it = &p0->items[i];
        for (size_t e = it->offset; e < it->offset + it->count; e++) {
            const double d0 = (double)p0->data[e] - before[e], d1 = (double)p1->data[e] - before[e];
            if (!it->entropy) {
                CHECK(p0->data[e] == p1->data[e]);
            } else if (fabs(d0) > 1e-4) {
                CHECK_NEAR(d1 / d0, 10.0, 1e-2);
                moved++;
            }
        }
    }
    CHECK(moved > 0);
    nne_trainer_config bad = adam_mse(1e-3f);
    bad.loss = NNE_LOSS_RD;
    bad.rd_lambda = 0.01f;
    bad.entropy_lr_mult = -1.0f;
    nne_trainer *t3 = NULL;
    CHECK_STATUS(nne_trainer_create(g[0], &bad, &t3), NNE_ERR_INVALID_ARG);
out:
    free(x), free(before);
    for (int k = 0; k < 2; k++) nne_trainer_free(tr[k]), nne_graph_free(g[k]);
}

/* After every update GDN/IGDN parameters are projected into their domain: beta >= 1e-6,
 * gamma >= 0 (with lr 0 the projection is the only change); without it an Adam step can make
 * the normaliser negative and the next loss NaN. */
static void test_gdn_projection(void) {
    nne_graph *g = small_graph();
    if (!g) return;
    nne_trainer_config cfg = adam_mse(0.0f);
    nne_trainer *tr;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (!tr) {
        nne_graph_free(g);
        return;
    }
    nne_params *p = nne_trainer_params(tr);
    const int32_t beta = nne_params_find(p, nne_graph_find_tensor(g, "g1.beta"));
    const int32_t gamma = nne_params_find(p, nne_graph_find_tensor(g, "g2.gamma"));
    const int32_t slope = nne_params_find(p, nne_graph_find_tensor(g, "s1"));
    CHECK(beta >= 0 && gamma >= 0 && slope >= 0);
    if (beta < 0 || gamma < 0 || slope < 0) return;
    float *b = p->data + p->items[beta].offset, *gm = p->data + p->items[gamma].offset;
    float *sl = p->data + p->items[slope].offset;
    /* Out of the domain but still a finite forward pass (an Adam step lands there first). */
    b[0] = 1e-8f;
    gm[1] = -1e-4f;
    gm[2] = 0.125f;
    sl[0] = -0.5f; /* not a GDN parameter: left alone */
    const size_t n = 2 * 9 * 10 * 3;
    float *x = calloc(n, 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 7) / 7.0f;
    nne_train_stats st;
    CHECK_OK(nne_trainer_step(tr, x, x, &st));
    CHECK(b[0] == NNE_GDN_BETA_MIN && gm[1] == 0.0f && gm[2] == 0.125f && sl[0] == -0.5f);
    free(x);
    nne_trainer_free(tr);
    nne_graph_free(g);
}

/* Copy the top-left h x w of [n][sh][sw][c]. */
static void crop_nhwc(const float *x, int n, int sh, int sw, int c, int h, int w, float *out) {
    for (int b = 0; b < n; b++)
        for (int y = 0; y < h; y++)
            memcpy(out + ((size_t)(b * h + y) * w) * c, x + ((size_t)(b * sh + y) * sw) * c,
                   (size_t)w * c * sizeof *out);
}

/* A loss border (cfg.loss_border_*, for cae-seed's unreconstructable rows): the loss is
 * exactly the loss of the cropped output, the border's targets do not matter, and the
 * parameter gradients are those of the whole-output MSE whose border targets equal the
 * output (zero error there), rescaled by the element counts (MSE normalizes by them); bad
 * borders are refused. (The graph's ReLU makes central differences too noisy to separate a
 * missing border from a kink; this comparison is exact up to rounding.) */
static void test_loss_border(void) {
    nne_graph *g = small_graph(); /* output [2][9][10][3] */
    CHECK(g != NULL);
    if (!g) return;
    nne_trainer_config cfg = adam_mse(1e-3f);
    cfg.loss_border_bottom = 2;
    cfg.loss_border_right = 3;
    nne_trainer *tr = NULL;
    CHECK_OK(nne_trainer_create(g, &cfg, &tr));
    if (!tr) {
        nne_graph_free(g);
        return;
    }
    nne_test_rng r;
    nne_test_rng_seed(&r, 11);
    const size_t n = 2 * 9 * 10 * 3, nc = 2 * 7 * 7 * 3;
    float *x = malloc(n * 4), *tg = malloc(n * 4), *yc = malloc(nc * 4), *tc = malloc(nc * 4);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)nne_test_rng_uniform(&r);
        tg[i] = (float)nne_test_rng_uniform(&r);
    }
    double loss;
    CHECK_OK(nne_trainer_eval(tr, x, tg, &loss));
    crop_nhwc(nne_trainer_output(tr), 2, 9, 10, 3, 7, 7, yc);
    crop_nhwc(tg, 2, 9, 10, 3, 7, 7, tc);
    CHECK(loss == nne_mse_loss(nc, yc, tc, NULL));
    /* the border's targets do not matter */
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < 9; y++)
            for (int xx = 0; xx < 10; xx++)
                if (y >= 7 || xx >= 7)
                    for (int c = 0; c < 3; c++) tg[((b * 9 + y) * 10 + xx) * 3 + c] = 7.0f;
    double loss2;
    CHECK_OK(nne_trainer_grad(tr, x, tg, &loss2));
    CHECK(loss2 == loss);
    nne_params *p = nne_trainer_params(tr);
    float *ga = malloc(p->total * 4);
    memcpy(ga, p->grad, p->total * 4);
    /* the same gradient from the whole-output loss with zero error on the border */
    const float *y = nne_trainer_output(tr);
    for (int b = 0; b < 2; b++)
        for (int yy = 0; yy < 9; yy++)
            for (int xx = 0; xx < 10; xx++)
                if (yy >= 7 || xx >= 7)
                    for (int c = 0; c < 3; c++) {
                        const size_t i = (size_t)((b * 9 + yy) * 10 + xx) * 3 + c;
                        tg[i] = y[i];
                    }
    nne_trainer *full = NULL;
    nne_trainer_config fc = adam_mse(1e-3f);
    CHECK_OK(nne_trainer_create(g, &fc, &full));
    if (full) {
        CHECK_OK(nne_trainer_grad(full, x, tg, &loss2));
        CHECK(fabs(loss2 * (double)n / (double)nc - loss) <= 1e-12 * loss);
        const nne_params *pf = nne_trainer_params(full);
        double worst = 0, gmax = 0;
        for (size_t i = 0; i < p->total; i++) {
            const double want = (double)pf->grad[i] * (double)n / (double)nc;
            worst = fmax(worst, fabs(want - ga[i]));
            gmax = fmax(gmax, fabs(want));
        }
        printf("  loss border 2 x 3: gradient vs rescaled whole-output gradient: max diff %.3g "
               "(max |g| %.3g)\n",
               worst, gmax);
        CHECK(gmax > 0 && worst <= 1e-5 * gmax);
        nne_trainer_free(full);
    }
    nne_trainer_free(tr);
    free(ga);

    /* MS-SSIM: the loss of the cropped images (cae-seed 48x52, border 3 x 3 -> 45x49) */
    nne_graph *m = NULL;
    CHECK_OK(nne_model_cae_seed(48, 52, NNE_CAE_FULL, &m));
    if (m) CHECK_OK(nne_train_init_params(m, 5));
    cfg.loss = NNE_LOSS_MS_SSIM;
    cfg.loss_border_bottom = nne_cae_seed_border(48);
    cfg.loss_border_right = nne_cae_seed_border(52);
    CHECK(cfg.loss_border_bottom == 3 && cfg.loss_border_right == 3);
    if (m && !nne_trainer_create(m, &cfg, &tr)) {
        const size_t nm = 48 * 52 * 3, ncm = 45 * 49 * 3;
        float *xm = malloc(nm * 4), *ym = malloc(ncm * 4), *xc = malloc(ncm * 4);
        for (size_t i = 0; i < nm; i++) xm[i] = (float)nne_test_rng_uniform(&r);
        CHECK_OK(nne_trainer_eval(tr, xm, xm, &loss));
        crop_nhwc(nne_trainer_output(tr), 1, 48, 52, 3, 45, 49, ym);
        crop_nhwc(xm, 1, 48, 52, 3, 45, 49, xc);
        const int32_t sc = nne_ms_ssim_auto_scales(45, 49);
        void *scratch = malloc(nne_ms_ssim_loss_scratch_size(45, 49, sc));
        double want = -1;
        CHECK_OK(nne_ms_ssim_loss(1, 45, 49, 3, ym, xc, sc, scratch, &want, NULL));
        CHECK_MSG(loss == want, "ms-ssim with border %.9g, cropped %.9g", loss, want);
        free(scratch), free(xm), free(ym), free(xc);
        nne_trainer_free(tr);
    }
    nne_graph_free(m);

    /* refused: a border as large as the output, a negative one, with the RD loss */
    cfg = adam_mse(1e-3f);
    cfg.loss_border_bottom = 9;
    tr = NULL;
    CHECK_STATUS(nne_trainer_create(g, &cfg, &tr), NNE_ERR_INVALID_ARG);
    cfg.loss_border_bottom = 0, cfg.loss_border_right = -1;
    CHECK_STATUS(nne_trainer_create(g, &cfg, &tr), NNE_ERR_INVALID_ARG);
    CHECK(tr == NULL);
    free(x), free(tg), free(yc), free(tc);
    nne_graph_free(g);
}

/* config.input_grad: dL/d(input) against central differences, on the small graph (MSE) and on
 * the learned codecs' NNE_RD_REFINE graphs (y -> x_hat and likelihoods; noise fixed by the
 * step, so the loss is smooth in y); config.frozen gives the same input gradient without
 * weight gradients of the convolutions; NULL without input_grad. */
static double input_fd(nne_trainer *tr, float *x, const float *tg, const float *ga, size_t n,
                       int samples, nne_test_rng *r) {
    double max_num = 0, max_err = 0;
    for (int s = 0; s < samples; s++) {
        const size_t i = (size_t)nne_test_rng_int(r, 0, (int)n - 1);
        const float save = x[i], h = 2e-3f;
        double lp, lm;
        x[i] = save + h;
        CHECK_OK(nne_trainer_grad(tr, x, tg, &lp));
        x[i] = save - h;
        CHECK_OK(nne_trainer_grad(tr, x, tg, &lm));
        x[i] = save;
        const double num = (lp - lm) / (2.0 * (double)h);
        max_num = fmax(max_num, fabs(num));
        max_err = fmax(max_err, fabs(num - ga[i]));
    }
    return max_err / fmax(max_num, 1e-6);
}

static void test_input_grad(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 11);
    {
        nne_graph *g = small_graph();
        CHECK(g != NULL);
        if (!g) return;
        nne_trainer_config cfg = adam_mse(1e-3f);
        nne_trainer *tr;
        CHECK_OK(nne_trainer_create(g, &cfg, &tr));
        CHECK(nne_trainer_input_grad(tr) == NULL);
        nne_trainer_free(tr);
        cfg.input_grad = true;
        CHECK_OK(nne_trainer_create(g, &cfg, &tr));
        const size_t n = 2 * 9 * 10 * 3;
        float *x = malloc(n * 4), *tg = malloc(n * 4), *ga = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)nne_test_rng_uniform(&r);
            tg[i] = (float)nne_test_rng_uniform(&r);
        }
        double loss;
        CHECK_OK(nne_trainer_grad(tr, x, tg, &loss));
        CHECK(nne_trainer_input_grad(tr) != NULL);
        memcpy(ga, nne_trainer_input_grad(tr), n * 4);
        const double rel = input_fd(tr, x, tg, ga, n, 24, &r);
        CHECK_MSG(rel < 2e-2, "small graph: input gradient rel err %.3g", rel);
        free(x), free(tg), free(ga);
        nne_trainer_free(tr);
        nne_graph_free(g);
    }
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++) {
        const nne_rdmodel_config mc = {(nne_rdmodel_kind)kind, 4, 6, NNE_QUANTIZE_NOISE, false};
        nne_graph *g = tiny_rd_graph(&mc, NNE_RD_REFINE);
        if (!g) return;
        nne_trainer_config cfg = rd_config(1e-3f);
        cfg.input_grad = true;
        const size_t ny = 4 * 4 * 6, nx = 64 * 64 * 3;
        float *y = malloc(ny * 4), *x = malloc(nx * 4), *ga = malloc(ny * 4);
        for (size_t i = 0; i < ny; i++) y[i] = 4.0f * ((float)nne_test_rng_uniform(&r) - 0.5f);
        for (size_t i = 0; i < nx; i++) x[i] = (float)nne_test_rng_uniform(&r);
        double rel[2] = {0, 0}, l0 = 0;
        for (int frozen = 0; frozen < 2; frozen++) {
            cfg.frozen = frozen == 1;
            nne_trainer *tr;
            CHECK_OK(nne_trainer_create(g, &cfg, &tr));
            if (!tr) break;
            nne_trainer_set_steps(tr, 3);
            double loss;
            CHECK_OK(nne_trainer_grad(tr, y, x, &loss));
            if (frozen) {
                CHECK_MSG(loss == l0, "frozen loss %.17g vs %.17g", loss, l0);
                for (size_t i = 0; i < ny; i++)
                    CHECK_MSG(ga[i] == nne_trainer_input_grad(tr)[i],
                              "%s: frozen input gradient differs at %zu",
                              nne_rdmodel_kind_name(mc.kind), i);
            }
            l0 = loss;
            memcpy(ga, nne_trainer_input_grad(tr), ny * 4);
            rel[frozen] = input_fd(tr, y, x, ga, ny, 16, &r);
            CHECK_MSG(rel[frozen] < 3e-2, "%s: input gradient rel err %.3g",
                      nne_rdmodel_kind_name(mc.kind), rel[frozen]);
            nne_trainer_free(tr);
        }
        free(y), free(x), free(ga);
        nne_graph_free(g);
    }
}

/* SGA soft rounding (nne_quantize_sga_forward/backward): the backward against central
 * differences of the forward with the same Gumbel samples (each element draws its own two,
 * so a perturbed element sees the same noise), away from the integers where floor jumps;
 * the output stays within [floor, floor + 1] + m; a cold temperature rounds to nearest. */
static void test_sga(void) {
    enum { N = 64 };
    float x[N], m[N], y[N], yp[N], ym[N], dy[N], dx[N];
    nne_test_rng r;
    nne_test_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        const float frac = 0.05f + 0.9f * (float)nne_test_rng_uniform(&r);
        m[i] = (float)(nne_test_rng_uniform(&r) - 0.5);
        x[i] = (float)nne_test_rng_int(&r, -3, 3) + frac + m[i];
        dy[i] = (float)(nne_test_rng_uniform(&r) - 0.5);
    }
    const float taus[3] = {0.5f, 0.2f, 0.05f};
    for (int t = 0; t < 3; t++) {
        nne_rng g;
        nne_rng_seed(&g, 9);
        nne_quantize_sga_forward(N, taus[t], x, m, &g, y);
        nne_quantize_sga_backward(N, taus[t], x, m, y, dy, dx);
        double worst = 0, scale = 0;
        for (int i = 0; i < N; i++) {
            const float f = floorf(x[i] - m[i]);
            CHECK(y[i] >= f + m[i] - 1e-5f && y[i] <= f + 1.0f + m[i] + 1e-5f);
            const float h = 2e-3f * taus[t], save = x[i];
            x[i] = save + h;
            nne_rng_seed(&g, 9);
            nne_quantize_sga_forward(N, taus[t], x, m, &g, yp);
            x[i] = save - h;
            nne_rng_seed(&g, 9);
            nne_quantize_sga_forward(N, taus[t], x, m, &g, ym);
            x[i] = save;
            const double num = (double)dy[i] * ((double)yp[i] - ym[i]) / (2.0 * h);
            worst = fmax(worst, fabs(num - dx[i]));
            scale = fmax(scale, fabs(num));
        }
        CHECK_MSG(worst <= 2e-2 * scale + 1e-3, "tau %g: SGA backward err %.3g (max %.3g)",
                  (double)taus[t], worst, scale);
    }
    /* tau -> 0: hard rounding to the nearest integer (fractions kept away from 0.5). */
    for (int i = 0; i < N; i++) {
        const float f = floorf(x[i] - m[i]), frac = x[i] - m[i] - f;
        if (fabsf(frac - 0.5f) < 0.1f) x[i] = f + 0.3f + m[i];
    }
    nne_rng g;
    nne_rng_seed(&g, 9);
    nne_quantize_sga_forward(N, 1e-3f, x, m, &g, y);
    int hard = 0;
    for (int i = 0; i < N; i++) hard += fabsf(y[i] - (roundf(x[i] - m[i]) + m[i])) < 1e-3f;
    CHECK_MSG(hard == N, "tau 1e-3: %d of %d rounded", hard, N);
}

int main(void) {
    NNE_RUN(test_graph_grad_fd);
    NNE_RUN(test_input_grad);
    NNE_RUN(test_sga);
    NNE_RUN(test_loss_border);
    NNE_RUN(test_determinism_and_descent);
    NNE_RUN(test_bf16_matmul);
    NNE_RUN(test_ms_ssim_training);
    NNE_RUN(test_rd_training);
    NNE_RUN(test_rd_mixed_proxy);
    NNE_RUN(test_entropy_lr_mult);
    NNE_RUN(test_gdn_projection);
    return nne_test_summary();
}
