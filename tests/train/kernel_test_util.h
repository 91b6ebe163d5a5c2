/* Helpers shared by the fast-kernel tests of the trainer (test_conv_gemm.c,
 * test_fast_kernels.c): random buffers, the relative error against a reference, and the
 * trainer's bit-identity for 1, 2 and 3 threads. Static, one copy per test executable. */
#ifndef NNE_TESTS_TRAIN_KERNEL_TEST_UTIL_H
#define NNE_TESTS_TRAIN_KERNEL_TEST_UTIL_H

#include <string.h>

#include "nnedge/graph.h"
#include "nnedge/threadpool.h"
#include "nnedge/train.h"
#include "testutil.h"

static nne_threadpool *pools[4]; /* [t]: t threads; [1] = NULL (serial); main() creates 2, 3 */

static float *rnd(nne_rng *r, size_t n, float lo, float hi) {
    float *p = nne_aligned_alloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = nne_rng_uniform_range(r, lo, hi);
    return p;
}

static float *dup(const float *src, size_t n) {
    float *p = nne_aligned_alloc((n ? n : 1) * sizeof(float));
    memcpy(p, src, n * sizeof(float));
    return p;
}

/* max |got - ref| / max |ref| (0 when both are 0; NaN counts as infinitely wrong). */
static double rel_err(const float *got, const float *ref, size_t n) {
    double e = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)ref[i]);
        if (d > e || d != d) e = d != d ? INFINITY : d;
        if (fabs((double)ref[i]) > m) m = fabs((double)ref[i]);
    }
    return m > 0.0 ? e / m : e;
}

enum { TRAIN_RUN_MAX_STEPS = 8 };

/* `steps` (<= TRAIN_RUN_MAX_STEPS) updates of fresh trainers on g with cfg and 1, 2, 3 and
 * again 2 threads, step s on input = target = data + s * n_in: losses, gradients and
 * weights must be bit-identical. losses0 [steps] receives the 1-thread run's losses. */
static void check_trainer_threads(nne_graph *g, nne_trainer_config cfg, const float *data,
                                  size_t n_in, int steps, double *losses0) {
    const int runs[4] = {1, 2, 3, 2};
    double losses[4][TRAIN_RUN_MAX_STEPS] = {{0}};
    float *weights[4] = {0}, *grads[4] = {0};
    size_t total = 0;
    CHECK(steps >= 1 && steps <= TRAIN_RUN_MAX_STEPS);
    for (int k = 0; k < 4 && steps <= TRAIN_RUN_MAX_STEPS; k++) {
        cfg.threads = runs[k];
        nne_trainer *tr = NULL;
        CHECK_OK(nne_trainer_create(g, &cfg, &tr));
        if (!tr) break;
        for (int s = 0; s < steps; s++) {
            nne_train_stats st;
            const float *in = data + (size_t)s * n_in;
            CHECK_OK(nne_trainer_step(tr, in, in, &st));
            CHECK(isfinite(st.loss));
            losses[k][s] = st.loss;
        }
        nne_params *p = nne_trainer_params(tr);
        total = p->total;
        weights[k] = dup(p->data, total);
        grads[k] = dup(p->grad, total);
        nne_trainer_free(tr);
    }
    for (int k = 1; k < 4 && weights[k]; k++) {
        CHECK_MSG(memcmp(losses[k], losses[0], sizeof losses[0]) == 0,
                  "losses differ: %d threads vs 1", runs[k]);
        CHECK_MSG(memcmp(weights[k], weights[0], total * sizeof(float)) == 0,
                  "weights differ: %d threads vs 1", runs[k]);
        CHECK_MSG(memcmp(grads[k], grads[0], total * sizeof(float)) == 0,
                  "gradients differ: %d threads vs 1", runs[k]);
    }
    for (int s = 0; s < steps && s < TRAIN_RUN_MAX_STEPS; s++) losses0[s] = losses[0][s];
    for (int k = 0; k < 4; k++) {
        nne_aligned_free(weights[k]);
        nne_aligned_free(grads[k]);
    }
}

#endif
