/* bench_conv_prep: what packing the int8 weights once per layer saves (docs/conv.md,
 * "Prepared int8 layers"). One encoder layer of cae-seed at 512x768 (nne_model_cae_seed),
 * random int8 data, timed call by call in alternation: nne_conv2d_s8 (packs the weights at
 * every call) and nne_conv_s8_prep_run on a layer prepared once (nne_conv_s8_prep_create),
 * each call after a pause (default 2 ms), so both see the same machine state. Prints the
 * median, first quartile and minimum of each in ms, and prepared / per-call of the medians;
 * checks that the two outputs are identical.
 *
 *   bench_conv_prep [LAYER [THREADS [REPS [W7 [GAP_US]]]]]
 *
 * Defaults: conv2d_5 1 200 0 2000. W7 = 1: weights in [-64, 64] (the w7 panel). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnedge/conv.h"
#include "nnedge/graph.h"
#include "nnedge/models.h"

static int cmp_ms(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "conv2d_5";
    const int threads = argc > 2 ? atoi(argv[2]) : 1, reps = argc > 3 ? atoi(argv[3]) : 200;
    const int w7 = argc > 4 ? atoi(argv[4]) : 0;
    const long gap_us = argc > 5 ? atol(argv[5]) : 2000;
    if (threads < 1 || threads > 64 || reps < 1 || reps > 100000 || gap_us < 0) {
        fprintf(stderr, "usage: bench_conv_prep [LAYER [THREADS [REPS [W7 [GAP_US]]]]]\n");
        return 2;
    }
    nne_graph *g = NULL;
    if (nne_model_cae_seed(512, 768, NNE_CAE_ENCODER, &g) || nne_graph_infer(g)) {
        fprintf(stderr, "bench_conv_prep: %s\n", nne_last_error());
        return 1;
    }
    const nne_conv2d_geom *geo = NULL;
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == NNE_OP_CONV2D && strcmp(g->nodes[i].name, name) == 0)
            geo = &g->nodes[i].conv_geom;
    if (!geo) {
        fprintf(stderr, "bench_conv_prep: no conv2d '%s' in the encoder\n", name);
        return 2;
    }
    const size_t nx = (size_t)geo->n * geo->ih * geo->iw * geo->ic;
    const size_t ny = (size_t)geo->n * geo->oh * geo->ow * geo->oc;
    const size_t nw = (size_t)geo->oc * geo->kh * geo->kw * geo->ic;
    int8_t *x = malloc(nx), *w = malloc(nw), *y = malloc(ny), *y2 = malloc(ny);
    int32_t *b = malloc((size_t)geo->oc * sizeof *b);
    nne_requant *rq = malloc((size_t)geo->oc * sizeof *rq);
    double *t[2] = {malloc((size_t)reps * sizeof(double)), malloc((size_t)reps * sizeof(double))};
    srand(1);
    for (size_t i = 0; i < nx; i++) x[i] = (int8_t)(rand() % 256 - 128);
    for (size_t i = 0; i < nw; i++) w[i] = (int8_t)(w7 ? rand() % 129 - 64 : rand() % 255 - 127);
    for (int32_t o = 0; o < geo->oc; o++) {
        b[o] = rand() % 2000 - 1000;
        rq[o] = (nne_requant){1 << 30, 12}; /* M = 2^-13 */
    }
    const nne_qoutput out = {NNE_RQ_Q31, geo->oc, rq, -5, -5, 127, NULL, 0}; /* fused ReLU clamp */
    nne_threadpool *pool = NULL;
    nne_conv_s8_prep *p = NULL;
    void *s = nne_aligned_alloc(nne_conv2d_s8_scratch_size(geo, threads));
    if ((threads > 1 && nne_threadpool_create(threads, &pool)) ||
        nne_conv_s8_prep_create(geo, false, -10, w, b, &out, &p) || !s) {
        fprintf(stderr, "bench_conv_prep: %s\n", nne_last_error());
        return 1;
    }
    for (int r = -3; r < reps; r++) /* 3 warm-ups */
        for (int k = 0; k < 2; k++) {
            const struct timespec ts = {0, gap_us * 1000};
            nanosleep(&ts, NULL);
            const uint64_t t0 = nne_time_ns();
            if (k)
                nne_conv_s8_prep_run(pool, p, x, y2, s);
            else
                nne_conv2d_s8(pool, geo, x, -10, w, b, &out, y, s);
            if (r >= 0) t[k][r] = (double)(nne_time_ns() - t0) * 1e-6;
        }
    const bool same = memcmp(y, y2, ny) == 0;
    for (int k = 0; k < 2; k++) qsort(t[k], (size_t)reps, sizeof(double), cmp_ms);
    printf("%s %d thr%s: per-call median %.3f p25 %.3f min %.3f | prepared median %.3f p25 %.3f "
           "min %.3f | prepared / per-call %.3f | outputs %s\n",
           name, threads, w7 ? " w7" : "", t[0][reps / 2], t[0][reps / 4], t[0][0], t[1][reps / 2],
           t[1][reps / 4], t[1][0], t[1][reps / 2] / t[0][reps / 2], same ? "identical" : "DIFFER");
    nne_conv_s8_prep_free(p);
    nne_threadpool_free(pool);
    nne_aligned_free(s);
    nne_graph_free(g);
    free(x), free(w), free(y), free(y2), free(b), free(rq), free(t[0]), free(t[1]);
    return same ? 0 : 1;
}
