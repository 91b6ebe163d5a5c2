/* Encoder-side latent refinement of the learned codec (include/nnedge/lcodec.h,
 * nne_lcodec_set_refine; docs/codec.md, "Latent refinement"): Adam on the latents y of one
 * image against the model's rate-distortion loss, with stochastic Gumbel annealing (SGA,
 * nne_quantize_sga_forward) as the soft rounding of y - means and of z, the gradient from the
 * trainer on the NNE_RD_REFINE graph (y -> h_a -> z -> h_s -> means, scales; g_s; the
 * likelihoods) with frozen weights; the true loss (hard rounding, f32) picks the iterate. */
#include <math.h>
#include <string.h>

#include "lcodec_internal.h"
#include "nnedge/gemm.h"
#include "nnedge/models.h"
#include "nnedge/train.h"

struct nne_lcodec_refiner {
    int32_t ph, pw, threads;
    float lambda;
    nne_graph *g;
    nne_trainer *t;
};

void nne_lcodec__refiner_free(nne_lcodec_refiner *r) {
    if (!r) return;
    nne_trainer_free(r->t);
    nne_graph_free(r->g);
    nne_free(r);
}

/* The graph and trainer for a ph x pw image, reused while size, lambda and threads stay. */
static nne_status refiner_get(nne_lcodec_refiner **rp, const nne_rdmodel_config *cfg,
                              const nne_graph *weights, float lambda, int32_t threads, int32_t ph,
                              int32_t pw) {
    nne_lcodec_refiner *r = *rp;
    if (r && r->ph == ph && r->pw == pw && r->lambda == lambda && r->threads == threads)
        return NNE_OK;
    nne_lcodec__refiner_free(r);
    *rp = r = nne_calloc(1, sizeof *r);
    if (!r) return NNE_ERR_NOMEM;
    /* One quantize node per latent, read by g_s and by the likelihood alike (not the training's
     * "mixed" pair): the SGA sample is what both see. train_mode is overridden by SGA. */
    nne_rdmodel_config rc = *cfg;
    rc.train_mode = NNE_QUANTIZE_NOISE;
    rc.mixed = false;
    nne_status s = nne_model_rd(&rc, 1, ph, pw, NNE_RD_REFINE, &r->g);
    if (!s) s = nne_model_copy_weights(r->g, weights);
    nne_trainer_config tc;
    memset(&tc, 0, sizeof tc);
    tc.optim = nne_optim_config_adam();
    tc.lr.kind = NNE_LR_CONSTANT; /* never stepped: only nne_trainer_grad / nne_trainer_eval */
    tc.loss = NNE_LOSS_RD;
    tc.rd_lambda = lambda;
    tc.threads = threads;
    tc.noise_seed = NNE_LCODEC_REFINE_SEED;
    tc.input_grad = true;
    tc.frozen = true;
    /* The gradient passes in bf16 where the CPU has AMX, 1.2-1.5x faster (elsewhere bf16 only
     * adds a rounding pass); nne_trainer_eval, which picks the iterate, stays f32. */
    tc.bf16_matmul = strcmp(nne_gemm_bf16_path(), "amx") == 0;
    if (!s) s = nne_trainer_create(r->g, &tc, &r->t);
    if (s) {
        nne_lcodec__refiner_free(r);
        *rp = NULL;
        return nne_error(s, "lcodec: latent refinement: %s", nne_last_error());
    }
    r->ph = ph, r->pw = pw, r->lambda = lambda, r->threads = threads;
    return NNE_OK;
}

nne_status nne_lcodec__refine(nne_lcodec_refiner **rp, const nne_rdmodel_config *cfg,
                              const nne_graph *weights, const nne_lcodec_refine_opts *o,
                              float lambda, int32_t ph, int32_t pw, const float *x, float *y,
                              double loss[2], int32_t *its) {
    loss[0] = loss[1] = 0.0;
    *its = 0;
    nne_status s = refiner_get(rp, cfg, weights, lambda, o->threads, ph, pw);
    if (s) return s;
    nne_trainer *t = (*rp)->t;
    const size_t ny = (size_t)(ph / 16) * (size_t)(pw / 16) * (size_t)cfg->m;
    const int32_t n = o->iterations;
    const float lr = o->lr > 0.0f ? o->lr : NNE_LCODEC_REFINE_LR;
    /* The true loss every `every` steps and after the last. */
    const int32_t every = n >= 10 ? n / 10 : 1;
    const nne_optim_config oc = nne_optim_config_adam();
    nne_optim *opt = NULL;
    float *best = nne_malloc(ny * sizeof *best);
    if (!best || (s = nne_optim_create(&oc, ny, &opt))) {
        nne_free(best);
        return s ? s : NNE_ERR_NOMEM;
    }
    memcpy(best, y, ny * sizeof *y);
    double best_loss = INFINITY;
    for (int32_t it = 0; it <= n && !s; it++) {
        if (it % every == 0 || it == n) {
            double l = 0.0;
            if ((s = nne_trainer_eval(t, y, x, &l))) break;
            if (it == 0) loss[0] = l;
            if (l < best_loss) { /* NaN never wins: g_a's y stays */
                best_loss = l;
                memcpy(best, y, ny * sizeof *y);
            }
        }
        if (it == n) break;
        /* Temperature tau0 (tau1 / tau0)^(it / n); step size lr, cosine decay to 0. */
        const double f = (double)it / n;
        nne_trainer_set_sga(t, (float)(NNE_LCODEC_REFINE_TAU0 *
                                       pow(NNE_LCODEC_REFINE_TAU1 / NNE_LCODEC_REFINE_TAU0, f)));
        nne_trainer_set_steps(t, it); /* fresh Gumbel samples per step */
        double lg = 0.0;
        if ((s = nne_trainer_grad(t, y, x, &lg))) break;
        nne_optim_step(opt, y, nne_trainer_input_grad(t), 0,
                       (float)(0.5 * lr * (1.0 + cos(3.14159265358979323846 * f))));
        *its = it + 1;
    }
    if (!s) {
        memcpy(y, best, ny * sizeof *y);
        loss[1] = isfinite(best_loss) ? best_loss : loss[0];
    }
    nne_optim_free(opt);
    nne_free(best);
    return s;
}
