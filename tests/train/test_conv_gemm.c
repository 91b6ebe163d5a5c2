/* Fast (im2col + GEMM, threaded) convolution kernels against the reference loops of
 * layers.c, and the trainer's determinism for 1, 2 and 3 threads.
 *
 * Tolerance: every output tensor within FAST_TOL * max|ref| of the reference. The two
 * compute the same sums of at most ~1500 f32 products in different orders (blocked FMA
 * GEMM vs sequential loops), whose rounding differences are ~sqrt(terms) * 2^-24 of the
 * sum of |terms| (~1e-6 of max|ref| here); an index or formula error gives 1e-1 or more.
 * Every case runs with the default tile and with tiny tiles (many tiles, 16 chunks, the
 * two-phase scatter), and must be bitwise identical for 1, 2 and 3 threads. */
#include "kernel_test_util.h"
#include "nnedge/gemm.h"
#include "nnedge/models.h"
#include "nnedge/ops.h"
#include "train/conv_gemm_private.h"

#define FAST_TOL 1e-5
/* With NNE_GEMM_BF16 each product moves by <= 2^-7 of |x w|, so a sum by <= 2^-7 of its
 * sum of |terms|; 2e-2 of max|ref| leaves room for cancellation (an unrounded GEMM would
 * pass too: the bitwise comparison with the f32 run catches that). */
#define BF16_TOL 2e-2

typedef struct conv_case {
    const char *name;
    bool transpose;
    int32_t n, ih, iw, ic, oc, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oph, opw, groups;
} conv_case;

static nne_conv2d_geom make_geom(const conv_case *c) {
    nne_conv2d_geom g = {.n = c->n,
                         .ih = c->ih,
                         .iw = c->iw,
                         .ic = c->ic,
                         .oc = c->oc,
                         .kh = c->kh,
                         .kw = c->kw,
                         .stride_h = c->sh,
                         .stride_w = c->sw,
                         .dil_h = c->dh,
                         .dil_w = c->dw,
                         .pad_t = c->pt,
                         .pad_l = c->pl,
                         .pad_b = c->pb,
                         .pad_r = c->pr,
                         .out_pad_h = c->oph,
                         .out_pad_w = c->opw,
                         .groups = c->groups};
    if (c->transpose) {
        g.oh = nne_conv_transpose_out_dim(c->ih, c->kh, c->sh, c->dh, c->pt, c->pb, c->oph);
        g.ow = nne_conv_transpose_out_dim(c->iw, c->kw, c->sw, c->dw, c->pl, c->pr, c->opw);
    } else {
        g.oh = nne_conv_out_dim(c->ih, c->kh, c->sh, c->dh, c->pt, c->pb);
        g.ow = nne_conv_out_dim(c->iw, c->kw, c->sw, c->dw, c->pl, c->pr);
    }
    return g;
}

static double worst_err;

/* One case: forward and backward (dx, dw, db; also without dx / bias) against the
 * reference, for 1, 2 and 3 threads, which must agree bit for bit. */
static void run_case(const conv_case *cc, uint64_t seed) {
    const nne_conv2d_geom g = make_geom(cc);
    CHECK_MSG(g.oh > 0 && g.ow > 0, "%s: bad geometry", cc->name);
    if (g.oh <= 0 || g.ow <= 0) return;
    const size_t nx = (size_t)g.n * g.ih * g.iw * g.ic, ny = (size_t)g.n * g.oh * g.ow * g.oc;
    const size_t nw = (size_t)g.oc * g.kh * g.kw * (g.ic / g.groups), nb = (size_t)g.oc;
    nne_rng r;
    nne_rng_seed(&r, seed);
    float *x = rnd(&r, nx, -1.0f, 1.0f), *w = rnd(&r, nw, -0.5f, 0.5f);
    float *b = rnd(&r, nb, -0.5f, 0.5f), *dy = rnd(&r, ny, -1.0f, 1.0f);
    float *dw0 = rnd(&r, nw, -0.1f, 0.1f), *db0 = rnd(&r, nb, -0.1f, 0.1f); /* += */

    /* Reference. */
    float *y_ref = nne_aligned_alloc(ny * sizeof(float)), *dx_ref = dup(x, nx);
    float *dw_ref = dup(dw0, nw), *db_ref = dup(db0, nb);
    const size_t rs = cc->transpose ? nne_conv_transpose2d_backward_scratch_size(&g)
                                    : nne_conv2d_backward_scratch_size(&g);
    float *rscr = nne_aligned_alloc(rs * sizeof(float));
    if (cc->transpose) {
        nne_conv_transpose2d_forward(&g, x, w, b, y_ref);
        nne_conv_transpose2d_backward(&g, x, w, dy, dx_ref, dw_ref, db_ref, rscr);
    } else {
        nne_conv2d_forward(&g, x, w, b, y_ref);
        nne_conv2d_backward(&g, x, w, dy, dx_ref, dw_ref, db_ref, rscr);
    }

    float *y1 = NULL, *dx1 = NULL, *dw1 = NULL, *db1 = NULL, *dwn1 = NULL;
    for (int th = 1; th <= 3; th++) {
        nne_threadpool *pool = pools[th];
        const size_t ss = cc->transpose ? nne_conv_transpose2d_gemm_scratch_size(&g, th)
                                        : nne_conv2d_gemm_scratch_size(&g, th);
        void *scr = nne_aligned_alloc(ss ? ss : 64);
        float *y = nne_aligned_alloc(ny * sizeof(float));
        float *dx = rnd(&r, nx, 5.0f, 6.0f); /* garbage: dx is overwritten */
        float *dw = dup(dw0, nw), *db = dup(db0, nb), *dwn = dup(dw0, nw);
        if (cc->transpose) {
            nne_conv_transpose2d_forward_gemm(pool, &g, x, w, b, y, scr, 0);
            nne_conv_transpose2d_backward_gemm(pool, &g, x, w, dy, dx, dw, db, scr, 0);
            nne_conv_transpose2d_backward_gemm(pool, &g, x, w, dy, NULL, dwn, NULL, scr, 0);
        } else {
            nne_conv2d_forward_gemm(pool, &g, x, w, b, y, scr, 0);
            nne_conv2d_backward_gemm(pool, &g, x, w, dy, dx, dw, db, scr, 0);
            nne_conv2d_backward_gemm(pool, &g, x, w, dy, NULL, dwn, NULL, scr, 0);
        }
        const double ey = rel_err(y, y_ref, ny), ex = rel_err(dx, dx_ref, nx);
        const double ew = rel_err(dw, dw_ref, nw), eb = rel_err(db, db_ref, nb);
        const double en = rel_err(dwn, dw, nw);
        CHECK_MSG(ey <= FAST_TOL, "%s threads %d: y error %.3g", cc->name, th, ey);
        CHECK_MSG(ex <= FAST_TOL, "%s threads %d: dx error %.3g", cc->name, th, ex);
        CHECK_MSG(ew <= FAST_TOL, "%s threads %d: dw error %.3g", cc->name, th, ew);
        CHECK_MSG(eb <= FAST_TOL, "%s threads %d: db error %.3g", cc->name, th, eb);
        CHECK_MSG(en == 0.0, "%s threads %d: dw without dx differs by %.3g", cc->name, th, en);
        const double e4[4] = {ey, ex, ew, eb};
        for (int k = 0; k < 4; k++)
            if (e4[k] > worst_err) worst_err = e4[k];
        if (th == 1 && cc->groups == 1) {
            /* NNE_GEMM_BF16 reaches every GEMM of the pass: within bf16 rounding of the
             * reference (operands moved by <= 2^-8 relative each), and not f32's bits. */
            float *yb = nne_aligned_alloc(ny * sizeof(float)), *dxb = rnd(&r, nx, 5.0f, 6.0f);
            float *dwb = dup(dw0, nw), *dbb = dup(db0, nb);
            if (cc->transpose) {
                nne_conv_transpose2d_forward_gemm(pool, &g, x, w, b, yb, scr, NNE_GEMM_BF16);
                nne_conv_transpose2d_backward_gemm(pool, &g, x, w, dy, dxb, dwb, dbb, scr,
                                                   NNE_GEMM_BF16);
            } else {
                nne_conv2d_forward_gemm(pool, &g, x, w, b, yb, scr, NNE_GEMM_BF16);
                nne_conv2d_backward_gemm(pool, &g, x, w, dy, dxb, dwb, dbb, scr, NNE_GEMM_BF16);
            }
            const double by = rel_err(yb, y_ref, ny), bx = rel_err(dxb, dx_ref, nx);
            const double bw = rel_err(dwb, dw_ref, nw);
            CHECK_MSG(by <= BF16_TOL && bx <= BF16_TOL && bw <= BF16_TOL,
                      "%s bf16: errors y %.3g dx %.3g dw %.3g", cc->name, by, bx, bw);
            CHECK_MSG(memcmp(yb, y, ny * sizeof(float)) != 0 &&
                          memcmp(dwb, dw, nw * sizeof(float)) != 0,
                      "%s bf16: the f32 result (flag not applied)", cc->name);
            nne_aligned_free(yb);
            nne_aligned_free(dxb);
            nne_aligned_free(dwb);
            nne_aligned_free(dbb);
        }
        if (th == 1) {
            y1 = y, dx1 = dx, dw1 = dw, db1 = db, dwn1 = dwn;
        } else {
            CHECK_MSG(memcmp(y, y1, ny * sizeof(float)) == 0, "%s: y differs, %d threads", cc->name,
                      th);
            CHECK_MSG(memcmp(dx, dx1, nx * sizeof(float)) == 0, "%s: dx differs, %d threads",
                      cc->name, th);
            CHECK_MSG(memcmp(dw, dw1, nw * sizeof(float)) == 0, "%s: dw differs, %d threads",
                      cc->name, th);
            CHECK_MSG(memcmp(db, db1, nb * sizeof(float)) == 0, "%s: db differs, %d threads",
                      cc->name, th);
            nne_aligned_free(y);
            nne_aligned_free(dx);
            nne_aligned_free(dw);
            nne_aligned_free(db);
            nne_aligned_free(dwn);
        }
        nne_aligned_free(scr);
    }
    nne_aligned_free(y1);
    nne_aligned_free(dx1);
    nne_aligned_free(dw1);
    nne_aligned_free(db1);
    nne_aligned_free(dwn1);
    nne_aligned_free(x);
    nne_aligned_free(w);
    nne_aligned_free(b);
    nne_aligned_free(dy);
    nne_aligned_free(dw0);
    nne_aligned_free(db0);
    nne_aligned_free(y_ref);
    nne_aligned_free(dx_ref);
    nne_aligned_free(dw_ref);
    nne_aligned_free(db_ref);
    nne_aligned_free(rscr);
}

/* name, transpose, n, ih, iw, ic, oc, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oph, opw, groups */
static const conv_case cases[] = {
    {"conv first layer k27", false, 1, 9, 11, 3, 5, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1},
    {"conv s2 padded", false, 2, 13, 10, 8, 7, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, 0, 0, 1},
    {"conv 1x1", false, 3, 7, 9, 5, 6, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1},
    {"conv 1x1 s2", false, 2, 7, 9, 5, 6, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1},
    {"conv 5x3 s2x1 dil1x2", false, 2, 12, 15, 4, 9, 5, 3, 2, 1, 1, 2, 2, 1, 2, 1, 0, 0, 1},
    {"conv 3x3 s1 pad1 c16", false, 3, 11, 6, 16, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},
    {"conv dil2 s1", false, 1, 10, 12, 6, 4, 3, 3, 1, 1, 2, 2, 2, 1, 0, 2, 0, 0, 1},
    {"conv groups 2 (reference)", false, 2, 8, 7, 4, 6, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 0, 0, 2},
    {"convT s2 outpad 1x1", true, 2, 6, 7, 8, 5, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1, 1},
    {"convT s2 outpad 1x0", true, 3, 5, 4, 6, 7, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0, 1},
    {"convT s1 to 3 channels", true, 2, 9, 8, 12, 3, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1},
    {"convT crop asym", true, 1, 7, 9, 5, 6, 4, 3, 2, 3, 1, 1, 1, 2, 2, 0, 1, 2, 1},
    {"convT dil2", true, 2, 6, 5, 4, 5, 3, 3, 1, 2, 2, 1, 1, 0, 0, 1, 0, 1, 1},
    {"convT 1x1", true, 2, 5, 6, 7, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1},
    {"convT groups 3 (reference)", true, 1, 5, 4, 6, 9, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 3},
};

static void test_fast_vs_reference(void) {
    const size_t tiles[2] = {0, 40}; /* default; tiny: one row per tile, 16 chunks, phases */
    worst_err = 0.0;
    for (int t = 0; t < 2; t++) {
        nne_conv_gemm_set_tile_floats(tiles[t]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_case(&cases[i], 1000 + 17 * i + t);
    }
    nne_conv_gemm_set_tile_floats(0);
    printf("  worst relative error fast vs reference: %.3g (bound %g)\n", worst_err, FAST_TOL);
}

/* The trainer on cae-seed (batch 2, 24x28, tiny tiles so every conv has several chunks):
 * 4 Adam steps with 1, 2 and 3 threads and a repeated 2-thread run give bit-identical
 * losses, gradients and weights. */
static void test_trainer_deterministic(void) {
    nne_conv_gemm_set_tile_floats(512);
    const int32_t batch = 2, h = 24, w = 28, steps = 4;
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(h, w, NNE_CAE_FULL, &g));
    if (!g) return;
    CHECK_OK(nne_graph_set_input_shape(g, 0, nne_shape_4d(batch, h, w, 3)));
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, 7));
    const size_t n_in = (size_t)batch * h * w * 3;
    nne_rng r;
    nne_rng_seed(&r, 99);
    float *data = rnd(&r, n_in * steps, 0.0f, 1.0f);

    nne_trainer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.optim = nne_optim_config_adam();
    cfg.optim.clip_norm = 1.0f;
    cfg.optim.weight_decay = 1e-3f;
    cfg.lr.kind = NNE_LR_CONSTANT;
    cfg.lr.lr = 2e-3f;
    cfg.loss = NNE_LOSS_MSE;
    double losses[4];
    check_trainer_threads(g, cfg, data, n_in, steps, losses);
    CHECK(losses[steps - 1] < losses[0]);
    nne_aligned_free(data);
    nne_graph_free(g);
    nne_conv_gemm_set_tile_floats(0);
}

int main(void) {
    for (int t = 2; t <= 3; t++) CHECK_OK(nne_threadpool_create(t, &pools[t]));
    NNE_RUN(test_fast_vs_reference);
    NNE_RUN(test_trainer_deterministic);
    for (int t = 2; t <= 3; t++) nne_threadpool_free(pools[t]);
    return nne_test_summary();
}
