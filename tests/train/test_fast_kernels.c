/* The trainer's fast kernels of the learned-codec ops against their plain reference
 * versions, on random shapes, and their thread-count independence:
 *   - GDN / IGDN through GEMM (gdn_gemm.c) against nne_gdn_forward / nne_gdn_backward, in
 *     f32 and with bf16 GEMM inputs (NNE_GEMM_BF16);
 *   - the factorized density with per-channel prepared constants against the per-call code
 *     it replaced (bit for bit);
 *   - the trainer on a small mbt2018-mean graph (every codec op) with 1, 2 and 3 threads.
 *
 * Tolerance: every output within FAST_TOL * max|ref| of the reference. Both compute the same
 * sums of at most a few thousand f32 terms in different orders (blocked FMA GEMM vs the
 * per-pixel loops), whose rounding differences are ~sqrt(terms) * 2^-24 of the sum of
 * |terms|; an index or formula error gives 1e-1 or more. */
#include "kernel_test_util.h"
#include "nnedge/gemm.h"
#include "nnedge/models.h"
#include "nnedge/ops.h"
#include "train/conv_gemm_private.h"

#define FAST_TOL 1e-5
/* With NNE_GEMM_BF16 the GEMMs round x^2, gamma and dn to bf16 (relative error up to 2^-9
 * each): the normalizer's sum of positive terms is off by up to ~2^-8 relative, and the
 * signed sums of the gradients by that much of their |terms|. A wrong operand or a missing
 * flag shows as 1e-1 or more, or as a result bitwise equal to f32's (checked too). */
#define FAST_TOL_BF16 1e-2

static double worst_gdn, worst_gdn_bf16;

/* One GDN/IGDN case: forward, backward with and without dx, for 1, 2 and 3 threads (bitwise
 * equal to each other), against the reference loops; gemm_flags 0 or NNE_GEMM_BF16. */
static void gdn_case_flags(size_t pixels, int32_t c, bool inverse, uint64_t seed,
                           uint32_t gemm_flags) {
    const bool bf16 = gemm_flags != 0;
    const double tol = bf16 ? FAST_TOL_BF16 : FAST_TOL;
    nne_rng r;
    nne_rng_seed(&r, seed);
    const size_t n = pixels * (size_t)c, cc = (size_t)c * c;
    float *x = rnd(&r, n, -2.0f, 2.0f), *dy = rnd(&r, n, -1.0f, 1.0f);
    float *beta = rnd(&r, (size_t)c, 0.5f, 1.5f), *gamma = rnd(&r, cc, 0.0f, 0.2f);
    float *db0 = rnd(&r, (size_t)c, -0.1f, 0.1f), *dg0 = rnd(&r, cc, -0.1f, 0.1f); /* += */
    float *y_ref = nne_aligned_alloc(n * sizeof(float)), *dx_ref = nne_aligned_alloc(n * 4);
    float *db_ref = dup(db0, (size_t)c), *dg_ref = dup(dg0, cc);
    float *rs = nne_aligned_alloc(nne_gdn_backward_scratch_size(c) * sizeof(float));
    nne_gdn_forward(pixels, c, x, beta, gamma, inverse, y_ref);
    nne_gdn_backward(pixels, c, x, beta, gamma, inverse, dy, dx_ref, db_ref, dg_ref, rs);

    float *y1 = NULL, *dx1 = NULL, *db1 = NULL, *dg1 = NULL;
    for (int th = 1; th <= 3; th++) {
        void *scr = nne_aligned_alloc(nne_gdn_gemm_scratch_size(pixels, c, th));
        float *y = rnd(&r, n, 7.0f, 8.0f), *dx = rnd(&r, n, 7.0f, 8.0f); /* overwritten */
        float *db = dup(db0, (size_t)c), *dg = dup(dg0, cc);
        float *dbn = dup(db0, (size_t)c), *dgn = dup(dg0, cc);
        nne_gdn_forward_gemm(pools[th], pixels, c, x, beta, gamma, inverse, y, scr, gemm_flags);
        nne_gdn_backward_gemm(pools[th], pixels, c, x, beta, gamma, inverse, dy, dx, db, dg, scr,
                              gemm_flags);
        nne_gdn_backward_gemm(pools[th], pixels, c, x, beta, gamma, inverse, dy, NULL, dbn, dgn,
                              scr, gemm_flags);
        const double e[4] = {rel_err(y, y_ref, n), rel_err(dx, dx_ref, n),
                             rel_err(db, db_ref, (size_t)c), rel_err(dg, dg_ref, cc)};
        const char *what[4] = {"y", "dx", "dbeta", "dgamma"};
        for (int k = 0; k < 4; k++) {
            CHECK_MSG(e[k] <= tol, "%s%s %zux%d threads %d: %s error %.3g",
                      inverse ? "igdn" : "gdn", bf16 ? " bf16" : "", pixels, (int)c, th, what[k],
                      e[k]);
            double *worst = bf16 ? &worst_gdn_bf16 : &worst_gdn;
            if (e[k] > *worst) *worst = e[k];
        }
        if (bf16 && th == 1 && pixels * (size_t)c >= 64) {
            /* The flag reaches the GEMMs: the forward differs from the f32 path's. */
            float *yf = nne_aligned_alloc(n * sizeof(float));
            nne_gdn_forward_gemm(pools[1], pixels, c, x, beta, gamma, inverse, yf, scr, 0u);
            CHECK_MSG(memcmp(yf, y, n * sizeof(float)) != 0, "gdn bf16 %zux%d equals f32", pixels,
                      (int)c);
            nne_aligned_free(yf);
        }
        CHECK(memcmp(dbn, db, (size_t)c * sizeof(float)) == 0);
        CHECK(memcmp(dgn, dg, cc * sizeof(float)) == 0);
        nne_aligned_free(dbn);
        nne_aligned_free(dgn);
        nne_aligned_free(scr);
        if (th == 1) {
            y1 = y, dx1 = dx, db1 = db, dg1 = dg;
            continue;
        }
        CHECK_MSG(
            memcmp(y, y1, n * sizeof(float)) == 0 && memcmp(dx, dx1, n * sizeof(float)) == 0 &&
                memcmp(db, db1, (size_t)c * sizeof(float)) == 0 &&
                memcmp(dg, dg1, cc * sizeof(float)) == 0,
            "gdn%s %zux%d: %d threads differ from 1", bf16 ? " bf16" : "", pixels, (int)c, th);
        nne_aligned_free(y);
        nne_aligned_free(dx);
        nne_aligned_free(db);
        nne_aligned_free(dg);
    }
    float *bufs[] = {x,      dy,     beta, gamma, db0, dg0, y_ref, dx_ref,
                     db_ref, dg_ref, rs,   y1,    dx1, db1, dg1};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) nne_aligned_free(bufs[k]);
}

static void gdn_case(size_t pixels, int32_t c, bool inverse, uint64_t seed) {
    gdn_case_flags(pixels, c, inverse, seed, 0u);
    gdn_case_flags(pixels, c, inverse, seed, NNE_GEMM_BF16);
}

static void test_gdn_gemm(void) {
    /* Random shapes: pixel counts below, at and across the tile (128) and chunk (16 tiles)
     * boundaries; channel counts that are not multiples of the GEMM's 16- or 6-wide blocks. */
    nne_rng r;
    nne_rng_seed(&r, 4242);
    worst_gdn = worst_gdn_bf16 = 0.0;
    const size_t px_fixed[] = {1, 128, 129, 16 * 128 + 5};
    for (int k = 0; k < 12; k++) {
        const size_t pixels = k < 4 ? px_fixed[k] : 1 + (size_t)(nne_rng_uniform_f32(&r) * 3000);
        const int32_t c = 1 + (int32_t)(nne_rng_uniform_f32(&r) * 70);
        gdn_case(pixels, c, k % 2 == 1, 77 + (uint64_t)k);
    }
    gdn_case(600, 64, false, 5); /* the codecs' N = 64 */
    gdn_case(600, 64, true, 6);
    printf("  GDN/IGDN: worst relative error fast vs reference %.3g (bound %g), with bf16 GEMM "
           "inputs %.3g (bound %g)\n",
           worst_gdn, FAST_TOL, worst_gdn_bf16, FAST_TOL_BF16);
}

/* ---- factorized density: the per-call code before nne_factorized_prepare, as the oracle ---- */

static float old_softplus(float r) { return r > 20.0f ? r : log1pf(expf(r)); }
static const int k_dims[5] = {1, 3, 3, 3, 1}, k_off_h[4] = {0, 3, 12, 21},
                 k_off_b[4] = {24, 27, 30, 33}, k_off_a[3] = {34, 37, 40};

static float old_logit(const float *p, float v, float *trace) {
    float h[3] = {v, 0.0f, 0.0f}, t[3];
    for (int k = 0; k < 4; k++) {
        for (int o = 0; o < k_dims[k + 1]; o++) {
            float s = p[k_off_b[k] + o];
            for (int i = 0; i < k_dims[k]; i++)
                s += old_softplus(p[k_off_h[k] + o * k_dims[k] + i]) * h[i];
            t[o] = s;
        }
        for (int o = 0; o < k_dims[k + 1]; o++) {
            if (k < 3) trace[3 * k + o] = t[o];
            h[o] = k < 3 ? t[o] + tanhf(p[k_off_a[k] + o]) * tanhf(t[o]) : t[o];
        }
    }
    return h[0];
}

static void old_logit_backward(const float *p, float v, const float *trace, float dlogit, float *dv,
                               float *dp) {
    float hs[4][3];
    hs[0][0] = v;
    for (int k = 1; k < 4; k++)
        for (int o = 0; o < 3; o++) {
            const float u = trace[3 * (k - 1) + o];
            hs[k][o] = u + tanhf(p[k_off_a[k - 1] + o]) * tanhf(u);
        }
    float g[3] = {dlogit, 0.0f, 0.0f};
    for (int k = 3; k >= 0; k--) {
        const int din = k_dims[k], dout = k_dims[k + 1];
        float du[3];
        for (int o = 0; o < dout; o++) {
            if (k < 3) {
                const float u = trace[3 * k + o], ta = tanhf(p[k_off_a[k] + o]), tu = tanhf(u);
                du[o] = g[o] * (1.0f + ta * (1.0f - tu * tu));
                dp[k_off_a[k] + o] += g[o] * (1.0f - ta * ta) * tu;
            } else {
                du[o] = g[o];
            }
            dp[k_off_b[k] + o] += du[o];
        }
        float gin[3] = {0.0f, 0.0f, 0.0f};
        for (int o = 0; o < dout; o++)
            for (int i = 0; i < din; i++) {
                const float r = p[k_off_h[k] + o * din + i];
                const float sig = 1.0f / (1.0f + expf(-r));
                dp[k_off_h[k] + o * din + i] += du[o] * sig * hs[k][i];
                gin[i] += du[o] * old_softplus(r);
            }
        for (int i = 0; i < din; i++) g[i] = gin[i];
    }
    *dv = g[0];
}

/* y = max(P, lik_min) and, with dy, the backward of the lower bound and both chains. */
static float old_fact(const float *p, float x, float lik_min, float dy, float *dx, float *dp) {
    float tl[9], tu[9];
    const float lower = old_logit(p, x - 0.5f, tl), upper = old_logit(p, x + 0.5f, tu);
    const float s = lower + upper > 0.0f ? -1.0f : 1.0f;
    const float su = 1.0f / (1.0f + expf(-s * upper)), sl = 1.0f / (1.0f + expf(-s * lower));
    const float lik = fabsf(su - sl);
    if (!dp) return lik < lik_min ? lik_min : lik;
    *dx = 0.0f;
    if (!(lik >= lik_min || dy < 0.0f)) return lik;
    const float sgn = su - sl >= 0.0f ? 1.0f : -1.0f;
    const float du = dy * sgn * s * su * (1.0f - su), dl = -dy * sgn * s * sl * (1.0f - sl);
    float dvu = 0.0f, dvl = 0.0f;
    old_logit_backward(p, x + 0.5f, tu, du, &dvu, dp);
    old_logit_backward(p, x - 0.5f, tl, dl, &dvl, dp);
    *dx = dvu + dvl;
    return lik;
}

/* The channel-blocked, prepared kernels (forward nne_factorized_likelihood_f32__ref, backward
 * nne_factorized_likelihood_backward) give the same bits as the per-call code, on random
 * shapes (channel counts around the block of 16), values reaching the lower bound, both
 * signs of dy. */
static void test_factorized_prepared(void) {
    nne_rng r;
    nne_rng_seed(&r, 31);
    for (int k = 0; k < 8; k++) {
        const size_t pixels = 1 + (size_t)(nne_rng_uniform_f32(&r) * 40);
        const int32_t c = k == 0 ? 16 : k == 1 ? 17 : 1 + (int32_t)(nne_rng_uniform_f32(&r) * 40);
        const size_t n = pixels * (size_t)c, np = (size_t)c * NNE_FACT_PARAMS;
        float *x = rnd(&r, n, -8.0f, 8.0f), *dy = rnd(&r, n, -1.0f, 1.0f);
        float *p = rnd(&r, np, -1.0f, 1.5f), *dp0 = rnd(&r, np, -0.1f, 0.1f);
        float *y = nne_aligned_alloc(n * 4), *dx = nne_aligned_alloc(n * 4);
        float *y_ref = nne_aligned_alloc(n * 4), *dx_ref = nne_aligned_alloc(n * 4);
        float *dp = dup(dp0, np), *dp_ref = dup(dp0, np);
        const float lik_min = 1e-6f; /* reached by the tails at |x| ~ 8 */
        nne_factorized_likelihood_f32__ref(pixels, c, x, p, lik_min, y);
        nne_factorized_likelihood_backward(pixels, c, x, p, lik_min, dy, dx, dp);
        size_t floored = 0;
        for (size_t px = 0; px < pixels; px++)
            for (int32_t ch = 0; ch < c; ch++) {
                const size_t i = px * (size_t)c + (size_t)ch;
                const float *pc = p + (size_t)ch * NNE_FACT_PARAMS;
                y_ref[i] = old_fact(pc, x[i], lik_min, 0.0f, NULL, NULL);
                old_fact(pc, x[i], lik_min, dy[i], &dx_ref[i],
                         dp_ref + (size_t)ch * NNE_FACT_PARAMS);
                floored += y_ref[i] == lik_min;
            }
        CHECK_MSG(memcmp(y, y_ref, n * 4) == 0, "factorized %zux%d: forward differs", pixels,
                  (int)c);
        CHECK_MSG(memcmp(dx, dx_ref, n * 4) == 0, "factorized %zux%d: dx differs", pixels, (int)c);
        CHECK_MSG(memcmp(dp, dp_ref, np * 4) == 0, "factorized %zux%d: dparams differ", pixels,
                  (int)c);
        if (k == 0) CHECK(floored > 0 && floored < n); /* both sides of the bound are covered */
        float *bufs[] = {x, dy, p, dp0, y, dx, y_ref, dx_ref, dp, dp_ref};
        for (size_t b = 0; b < sizeof bufs / sizeof bufs[0]; b++) nne_aligned_free(bufs[b]);
    }
}

/* The trainer on mbt2018-mean (N,M = 8,12, batch 2 of 64x64: every codec op, the tiles and
 * chunks of the fast kernels) for 3 Adam steps with 1, 2 and 3 threads and a repeated
 * 2-thread run: bit-identical losses, gradients and weights. */
static void test_trainer_codec_deterministic(void) {
    nne_conv_gemm_set_tile_floats(512); /* several chunks in every convolution */
    const nne_rdmodel_config rc = {
        .kind = NNE_RD_MEAN_SCALE, .n = 8, .m = 12, .train_mode = NNE_QUANTIZE_NOISE};
    const int32_t batch = 2, h = 64, w = 64, steps = 3;
    nne_graph *g = NULL;
    CHECK_OK(nne_model_rd(&rc, batch, h, w, NNE_RD_TRAIN, &g));
    if (!g) return;
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, 3));
    const size_t n_in = (size_t)batch * h * w * 3;
    nne_rng r;
    nne_rng_seed(&r, 5);
    float *data = rnd(&r, n_in * steps, 0.0f, 1.0f);
    nne_trainer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.optim = nne_optim_config_adam();
    cfg.lr.kind = NNE_LR_CONSTANT;
    cfg.lr.lr = 1e-3f;
    cfg.loss = NNE_LOSS_RD;
    cfg.rd_lambda = 0.01f;
    cfg.noise_seed = 11;
    double losses[3];
    check_trainer_threads(g, cfg, data, n_in, steps, losses);
    nne_aligned_free(data);
    nne_graph_free(g);
    nne_conv_gemm_set_tile_floats(0);
}

int main(void) {
    for (int t = 2; t <= 3; t++) CHECK_OK(nne_threadpool_create(t, &pools[t]));
    NNE_RUN(test_gdn_gemm);
    NNE_RUN(test_factorized_prepared);
    NNE_RUN(test_trainer_codec_deterministic);
    for (int t = 2; t <= 3; t++) nne_threadpool_free(pools[t]);
    return nne_test_summary();
}
