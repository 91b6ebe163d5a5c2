/* Entropy-model ops of the learned codecs (docs/ops.md, "Entropy models"), f32 reference
 * kernels: abs, quantize (rounding), the factorized density of Balle et al. 2018
 * (appendix 6.1; CompressAI's EntropyBottleneck with filters (3, 3, 3)) and the discretized
 * Gaussian of the scale hyperprior. The likelihood kernels give P(symbol) of each element;
 * -log2 of it is the rate an ideal entropy coder would spend on it. */
#include <assert.h>
#include <math.h>

#include "nnedge/ops.h"

/* y = |x| */
void nne_abs_f32__ref(size_t count, const float *x, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) y[i] = fabsf(x[i]);
}

/* y = round(x - m) + m, round half away from zero; means may be NULL (m = 0). */
void nne_quantize_f32__ref(size_t count, const float *x, const float *means, float *y) {
    assert(x && y);
    for (size_t i = 0; i < count; i++) {
        const float m = means ? means[i] : 0.0f;
        y[i] = roundf(x[i] - m) + m;
    }
}

/* softplus(r) = log(1 + exp(r)), without overflow for large r. */
static float softplus(float r) { return r > 20.0f ? r : log1pf(expf(r)); }

/* Layer k of the density network maps NNE_FACT_DIMS[k] values to NNE_FACT_DIMS[k + 1]. */
static const int k_dims[NNE_FACT_LAYERS + 1] = {1, 3, 3, 3, 1};
/* Offsets of H_k, b_k, a_k inside one channel's NNE_FACT_PARAMS values. */
static const int k_off_h[NNE_FACT_LAYERS] = {0, 3, 12, 21};
static const int k_off_b[NNE_FACT_LAYERS] = {24, 27, 30, 33};
static const int k_off_a[NNE_FACT_LAYERS - 1] = {34, 37, 40};

void nne_factorized_prepare(const float *p, nne_fact_prep *q) {
    for (int i = 0; i < 24; i++) {
        q->sp[i] = softplus(p[i]);
        q->sig[i] = 1.0f / (1.0f + expf(-p[i])); /* softplus'(r) */
    }
    for (int i = 0; i < 9; i++) q->ta[i] = tanhf(p[k_off_a[0] + i]);
}

int32_t nne_factorized_prepare_block(const float *params, int32_t c, int32_t c0,
                                     nne_fact_prep q[NNE_FACT_BLOCK]) {
    const int32_t nc = c - c0 < NNE_FACT_BLOCK ? c - c0 : NNE_FACT_BLOCK;
    for (int32_t k = 0; k < nc; k++)
        nne_factorized_prepare(params + (size_t)(c0 + k) * NNE_FACT_PARAMS, &q[k]);
    return nc;
}

float nne_factorized_logit_prep(const float *p, const nne_fact_prep *q, float v, float *trace) {
    float h[3] = {v, 0.0f, 0.0f}, t[3];
    for (int k = 0; k < NNE_FACT_LAYERS; k++) {
        const int din = k_dims[k], dout = k_dims[k + 1];
        for (int o = 0; o < dout; o++) {
            float s = p[k_off_b[k] + o];
            for (int i = 0; i < din; i++) s += q->sp[k_off_h[k] + o * din + i] * h[i];
            t[o] = s;
        }
        for (int o = 0; o < dout; o++) {
            /* trace: the pre-gating value u of every hidden unit, in layer order */
            if (trace && k < NNE_FACT_LAYERS - 1) trace[3 * k + o] = t[o];
            h[o] = k < NNE_FACT_LAYERS - 1 ? t[o] + q->ta[3 * k + o] * tanhf(t[o]) : t[o];
        }
    }
    return h[0];
}

float nne_factorized_logit(const float *p, float v, float *trace) {
    nne_fact_prep q;
    nne_factorized_prepare(p, &q);
    return nne_factorized_logit_prep(p, &q, v, trace);
}

void nne_factorized_logit_backward_prep(const float *p, const nne_fact_prep *q, float v,
                                        const float *trace, float dlogit, float *dv, float *dp) {
    /* Recompute the hidden values h_k (post-gating) from the trace of u_k (pre-gating). */
    float hs[NNE_FACT_LAYERS][3], tu[NNE_FACT_TRACE]; /* input of layer k; tanh(u) */
    hs[0][0] = v;
    for (int i = 0; i < NNE_FACT_TRACE; i++) tu[i] = tanhf(trace[i]);
    for (int k = 1; k < NNE_FACT_LAYERS; k++)
        for (int o = 0; o < 3; o++) {
            const float u = trace[3 * (k - 1) + o];
            hs[k][o] = u + q->ta[3 * (k - 1) + o] * tu[3 * (k - 1) + o];
        }
    float g[3] = {dlogit, 0.0f, 0.0f}; /* dL/d(output of layer k) */
    for (int k = NNE_FACT_LAYERS - 1; k >= 0; k--) {
        const int din = k_dims[k], dout = k_dims[k + 1];
        float du[3];
        for (int o = 0; o < dout; o++) {
            if (k < NNE_FACT_LAYERS - 1) {
                /* h = u + tanh(a) tanh(u): dh/du = 1 + tanh(a) (1 - tanh(u)^2),
                 * dh/da = (1 - tanh(a)^2) tanh(u) */
                const float ta = q->ta[3 * k + o], t = tu[3 * k + o];
                du[o] = g[o] * (1.0f + ta * (1.0f - t * t));
                if (dp) dp[k_off_a[k] + o] += g[o] * (1.0f - ta * ta) * t;
            } else {
                du[o] = g[o];
            }
            if (dp) dp[k_off_b[k] + o] += du[o];
        }
        float gin[3] = {0.0f, 0.0f, 0.0f};
        for (int o = 0; o < dout; o++)
            for (int i = 0; i < din; i++) {
                const int r = k_off_h[k] + o * din + i;
                if (dp) dp[r] += du[o] * q->sig[r] * hs[k][i];
                gin[i] += du[o] * q->sp[r];
            }
        for (int i = 0; i < din; i++) g[i] = gin[i];
    }
    if (dv) *dv = g[0];
}

void nne_factorized_logit_backward(const float *p, float v, const float *trace, float dlogit,
                                   float *dv, float *dp) {
    nne_fact_prep q;
    nne_factorized_prepare(p, &q);
    nne_factorized_logit_backward_prep(p, &q, v, trace, dlogit, dv, dp);
}

float nne_factorized_likelihood_prep(const float *p, const nne_fact_prep *q, float v, float *aux) {
    float tl[NNE_FACT_TRACE], tu[NNE_FACT_TRACE];
    const float lower = nne_factorized_logit_prep(p, q, v - 0.5f, tl);
    const float upper = nne_factorized_logit_prep(p, q, v + 0.5f, tu);
    /* Evaluate the difference of sigmoids on the side where both are small (the sign
     * flip), so tail probabilities keep their relative precision. */
    const float s = lower + upper > 0.0f ? -1.0f : 1.0f;
    const float su = 1.0f / (1.0f + expf(-s * upper)), sl = 1.0f / (1.0f + expf(-s * lower));
    if (aux) {
        aux[0] = lower;
        aux[1] = upper;
        for (int i = 0; i < NNE_FACT_TRACE; i++) {
            aux[2 + i] = tl[i];
            aux[2 + NNE_FACT_TRACE + i] = tu[i];
        }
    }
    return fabsf(su - sl);
}

float nne_factorized_likelihood(const float *p, float v, float *aux) {
    nne_fact_prep q;
    nne_factorized_prepare(p, &q);
    return nne_factorized_likelihood_prep(p, &q, v, aux);
}

void nne_factorized_likelihood_f32__ref(size_t pixels, int32_t c, const float *x,
                                        const float *params, float lik_min, float *y) {
    assert(x && params && y && c > 0);
    /* Channels in blocks, each prepared once (the same bits as preparing per call). */
    nne_fact_prep q[NNE_FACT_BLOCK];
    for (int32_t c0 = 0; c0 < c; c0 += NNE_FACT_BLOCK) {
        const int32_t nc = nne_factorized_prepare_block(params, c, c0, q);
        for (size_t px = 0; px < pixels; px++)
            for (int32_t k = 0; k < nc; k++) {
                const size_t i = px * (size_t)c + (size_t)(c0 + k);
                const float l = nne_factorized_likelihood_prep(
                    params + (size_t)(c0 + k) * NNE_FACT_PARAMS, &q[k], x[i], NULL);
                y[i] = l < lik_min ? lik_min : l;
            }
    }
}

/* Standard normal CDF. */
static double phi_cdf(double t) { return 0.5 * erfc(-t * M_SQRT1_2); }

float nne_gaussian_likelihood(float x, float scale, float mean, float scale_min) {
    const double s = scale < scale_min ? (double)scale_min : (double)scale;
    const double v = fabs((double)x - (double)mean);
    /* P(|X| in [v - 0.5, v + 0.5]) = Phi((0.5 - v) / s) - Phi((-0.5 - v) / s), written with
     * the upper tail of -v so both terms stay small and precise far from the mean. */
    return (float)(phi_cdf((0.5 - v) / s) - phi_cdf((-0.5 - v) / s));
}

void nne_gaussian_likelihood_f32__ref(size_t count, const float *x, const float *scales,
                                      const float *means, float scale_min, float lik_min,
                                      float *y) {
    assert(x && scales && y);
    for (size_t i = 0; i < count; i++) {
        const float l =
            nne_gaussian_likelihood(x[i], scales[i], means ? means[i] : 0.0f, scale_min);
        y[i] = l < lik_min ? lik_min : l;
    }
}
