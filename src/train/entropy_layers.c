/* Training passes of the entropy-model ops (ops.h, "Entropy models"; docs/training.md,
 * "Rate-distortion training"): abs, quantize (noise or straight-through), the factorized
 * and Gaussian likelihoods, and the rate of a likelihood tensor.
 *
 * Lower bounds follow CompressAI's LowerBound: y = max(x, bound) passes the gradient where
 * x >= bound or where the gradient pushes y up (dy < 0 for a loss being minimised), so a
 * likelihood stuck at its floor is still pulled up by the rate term. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "nnedge/ops.h"
#include "nnedge/train.h"

void nne_abs_backward(size_t count, const float *x, const float *dy, float *dx) {
    assert(x && dy && dx);
    for (size_t i = 0; i < count; i++) dx[i] = x[i] > 0.0f ? dy[i] : x[i] < 0.0f ? -dy[i] : 0.0f;
}

void nne_quantize_train_forward(size_t count, nne_quantize_train_mode mode, const float *x,
                                const float *means, nne_rng *rng, float *y) {
    assert(x && y);
    if (mode == NNE_QUANTIZE_STE) {
        nne_quantize_f32__ref(count, x, means, y);
        return;
    }
    assert(rng);
    for (size_t i = 0; i < count; i++) y[i] = x[i] + (nne_rng_uniform_f32(rng) - 0.5f);
}

/* SGA (train.h): r = v - floor(v) of v = x - m; the logits of rounding down and up are
 * -atanh(r) / tau and -atanh(1 - r) / tau, each argument capped at 1 - SGA_EPS. */
#define SGA_EPS 1e-5f

void nne_quantize_sga_forward(size_t count, float tau, const float *x, const float *means,
                              nne_rng *rng, float *y) {
    assert(x && y && rng && tau > 0.0f);
    const float cap = 1.0f - SGA_EPS;
    for (size_t i = 0; i < count; i++) {
        const float m = means ? means[i] : 0.0f, v = x[i] - m, f = floorf(v), r = v - f;
        const float down = -atanhf(fminf(r, cap)) / tau, up = -atanhf(fminf(1.0f - r, cap)) / tau;
        /* Gumbel(0, 1) samples -log(-log u), u in the open interval (0, 1). */
        const float u1 = nne_rng_uniform_f32(rng) + 0x1p-25f,
                    u2 = nne_rng_uniform_f32(rng) + 0x1p-25f;
        const float g1 = -logf(-logf(u1)), g2 = -logf(-logf(u2));
        const float w = 1.0f / (1.0f + expf(-((up + g2) - (down + g1)) / tau));
        y[i] = f + w + m;
    }
}

void nne_quantize_sga_backward(size_t count, float tau, const float *x, const float *means,
                               const float *y, const float *dy, float *dx) {
    assert(x && y && dy && dx && tau > 0.0f);
    const float cap = 1.0f - SGA_EPS;
    for (size_t i = 0; i < count; i++) {
        const float m = means ? means[i] : 0.0f, v = x[i] - m, f = floorf(v), r = v - f;
        float w = y[i] - m - f; /* the soft choice of the forward pass */
        w = w < 0.0f ? 0.0f : w > 1.0f ? 1.0f : w;
        /* d(up - down)/dv: atanh' = 1 / (1 - t^2), zero where an argument was capped */
        float dl = 0.0f;
        if (r < cap) dl += 1.0f / (tau * (1.0f - r * r));
        if (1.0f - r < cap) dl += 1.0f / (tau * (1.0f - (1.0f - r) * (1.0f - r)));
        dx[i] = dy[i] * w * (1.0f - w) / tau * dl;
    }
}

static bool bound_passes(float value, float bound, float dy) { return value >= bound || dy < 0.0f; }

static float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

void nne_factorized_likelihood_backward(size_t pixels, int32_t c, const float *x,
                                        const float *params, float lik_min, const float *dy,
                                        float *dx, float *dparams) {
    assert(x && params && dy && c > 0);
    /* Channels in blocks, their functions of the parameters prepared once
     * (nne_factorized_prepare: the same bits as the per-call functions). */
    nne_fact_prep q[NNE_FACT_BLOCK];
    float aux[NNE_FACT_AUX];
    for (int32_t c0 = 0; c0 < c; c0 += NNE_FACT_BLOCK) {
        const int32_t nc = nne_factorized_prepare_block(params, c, c0, q);
        for (size_t px = 0; px < pixels; px++)
            for (int32_t k = 0; k < nc; k++) {
                const int32_t ch = c0 + k;
                const size_t i = px * (size_t)c + (size_t)ch;
                const float *p = params + (size_t)ch * NNE_FACT_PARAMS;
                const float lik = nne_factorized_likelihood_prep(p, &q[k], x[i], aux);
                if (!bound_passes(lik, lik_min, dy[i])) {
                    if (dx) dx[i] = 0.0f;
                    continue;
                }
                /* lik = |sigmoid(s u) - sigmoid(s l)| with l = f(x - 0.5), u = f(x + 0.5). */
                const float lower = aux[0], upper = aux[1];
                const float s = lower + upper > 0.0f ? -1.0f : 1.0f;
                const float su = sigmoidf(s * upper), sl = sigmoidf(s * lower);
                const float sgn = su - sl >= 0.0f ? 1.0f : -1.0f;
                const float du = dy[i] * sgn * s * su * (1.0f - su);
                const float dl = -dy[i] * sgn * s * sl * (1.0f - sl);
                float dvu = 0.0f, dvl = 0.0f;
                float *dp = dparams ? dparams + (size_t)ch * NNE_FACT_PARAMS : NULL;
                nne_factorized_logit_backward_prep(p, &q[k], x[i] + 0.5f, aux + 2 + NNE_FACT_TRACE,
                                                   du, &dvu, dp);
                nne_factorized_logit_backward_prep(p, &q[k], x[i] - 0.5f, aux + 2, dl, &dvl, dp);
                if (dx) dx[i] = dvu + dvl;
            }
    }
}

/* Standard normal density. */
static double phi_pdf(double t) { return exp(-0.5 * t * t) * 0.39894228040143267794; }

void nne_gaussian_likelihood_backward(size_t count, const float *x, const float *scales,
                                      const float *means, float scale_min, float lik_min,
                                      const float *dy, float *dx, float *dscales, float *dmeans) {
    assert(x && scales && dy);
    for (size_t i = 0; i < count; i++) {
        const float m = means ? means[i] : 0.0f;
        const float lik = nne_gaussian_likelihood(x[i], scales[i], m, scale_min);
        float gx = 0.0f, gs = 0.0f;
        if (bound_passes(lik, lik_min, dy[i])) {
            const double sc = scales[i] < scale_min ? (double)scale_min : (double)scales[i];
            const double d = (double)x[i] - (double)m, v = fabs(d);
            const double tu = (0.5 - v) / sc, tl = (-0.5 - v) / sc;
            const double pu = phi_pdf(tu), pl = phi_pdf(tl);
            /* dP/dv = (phi(tl) - phi(tu)) / s;  dP/ds = (phi(tl) tl - phi(tu) tu) / s */
            const double dv = (pl - pu) / sc, ds = (pl * tl - pu * tu) / sc;
            const double sgn = d > 0.0 ? 1.0 : d < 0.0 ? -1.0 : 0.0;
            gx = (float)((double)dy[i] * dv * sgn);
            const double gsd = (double)dy[i] * ds;
            gs = bound_passes(scales[i], scale_min, (float)gsd) ? (float)gsd : 0.0f;
        }
        if (dx) dx[i] = gx;
        if (dscales) dscales[i] = gs;
        if (dmeans) dmeans[i] = -gx;
    }
}

double nne_rate_bits(size_t count, const float *lik, double scale, float *dlik) {
    assert(lik);
    double bits = 0.0;
    for (size_t i = 0; i < count; i++) {
        bits -= log2((double)lik[i]);
        if (dlik) dlik[i] = (float)(-scale / ((double)lik[i] * M_LN2));
    }
    return bits;
}
