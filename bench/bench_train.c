/* bench_train: training throughput of cae-seed and the learned codecs (docs/perf-train.md).
 *
 *   bench_train [--model NAME] [--channels N,M] [--lambda L] [--batch N] [--size PX]
 *               [--threads LIST] [--steps N] [--warmup N] [--layers] [--profile]
 *               [--matmul f32|bf16]
 *
 * One step = nne_trainer_step: forward, loss, backward, Adam update (lr 1e-4), on a batch of
 * random crops (uniform [0, 1), a fixed seed; the data do not change the work). --model
 * cae-seed (the default): MSE against the input (an autoencoder). --model
 * bmshj2018-factorized|bmshj2018-hyperprior|mbt2018-mean: the rate-distortion loss
 * (lambda 255^2 MSE + bpp, --lambda, default 0.0130) with quantization noise, at --channels
 * N,M (default 64,96). Defaults: batch 8 of 256x256 crops, threads 1,2, 2 warm-up steps and
 * 7 timed steps. For each thread count a fresh trainer (its own pool) runs the warm-up and
 * then the timed steps; the table gives the median step time with its min-max range, crops/s
 * (batch / median) and GFLOP/s = 3 x 2 x forward convolution MACs / median: the usual
 * approximation of the backward pass as twice the forward (the first layer's input gradient
 * is not computed, so it slightly overstates the work done; GDN's c^2 MACs per pixel are not
 * counted).
 *
 * Checks before the numbers are trusted: every loss is finite, the loss decreases over the
 * run, and the first step's loss is bitwise the same for every thread count (the trainer is
 * deterministic across thread counts). --layers also times each convolution's forward and
 * backward kernel alone (nne_conv*_gemm at the same geometry). --profile accounts the timed
 * steps per graph node (nne_trainer_set_profile): a table per node (forward / backward ms
 * per step) and the shares of the op kinds (convolutions, GDN, likelihoods, quantize, other
 * element-wise, loss, gradient clearing, update).
 *
 * --matmul bf16: the convolutions' GEMMs in mixed precision (nne_trainer_config.bf16_matmul,
 * NNE_GEMM_BF16: operands rounded to bf16, f32 sums; AMX tiles where the CPU has them; the
 * path is printed), for --layers too.
 *
 * Output: Markdown on stdout, and one `RESULT threads=T crops_per_s=X gflops=Y ms=Z cpu_ms=C`
 * line per thread count (C: the process's CPU time per step, all threads) for
 * scripts/bench_train.sh. Exit status 1 when a check fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnedge/gemm.h"
#include "nnedge/graph.h"
#include "nnedge/models.h"
#include "nnedge/ops.h"
#include "nnedge/threadpool.h"
#include "nnedge/train.h"

/* CPU time of the whole process (all threads), ns: on a shared machine the wall time of a
 * step depends on the other jobs, the CPU time much less (docs/perf-train.md). */
static uint64_t cpu_time_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Forward multiply-adds of the graph's convolutions (transposed: input pixels x taps x oc). */
static double forward_macs(const nne_graph *g) {
    double macs = 0.0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        const nne_conv2d_geom *c = &n->conv_geom;
        const double taps = (double)c->kh * c->kw;
        if (n->op == NNE_OP_CONV2D)
            macs += (double)c->n * c->oh * c->ow * c->oc * taps * (c->ic / c->groups);
        else if (n->op == NNE_OP_CONV_TRANSPOSE2D)
            macs += (double)c->n * c->ih * c->iw * c->ic * taps * (c->oc / c->groups);
    }
    return macs;
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > NNE_THREADPOOL_MAX_THREADS) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static float *alloc_rand(size_t n, nne_rng *r) {
    float *p = nne_aligned_alloc(n * sizeof(float));
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = nne_rng_uniform_f32(r);
    return p;
}

/* --layers: each convolution's kernels alone, median of 5 after one warm-up. */
static void time_layers(const nne_graph *g, int threads, uint32_t gf) {
    nne_threadpool *pool = NULL;
    if (threads > 1 && nne_threadpool_create(threads, &pool) != NNE_OK) return;
    printf("\n### Convolution kernels alone, %d thread(s)\n\n", threads);
    printf("| layer | MACs (G) | forward ms | GFLOP/s | backward ms | GFLOP/s |\n");
    printf("|---|---|---|---|---|---|\n");
    nne_rng r;
    nne_rng_seed(&r, 5);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        const bool tr = n->op == NNE_OP_CONV_TRANSPOSE2D;
        if (n->op != NNE_OP_CONV2D && !tr) continue;
        const nne_conv2d_geom *c = &n->conv_geom;
        const size_t nx = (size_t)c->n * c->ih * c->iw * c->ic,
                     ny = (size_t)c->n * c->oh * c->ow * c->oc;
        const size_t nw = (size_t)c->oc * c->kh * c->kw * c->ic / c->groups;
        const double macs = (tr ? (double)c->n * c->ih * c->iw * c->ic * c->oc
                                : (double)c->n * c->oh * c->ow * c->oc * c->ic) *
                            c->kh * c->kw / c->groups;
        const size_t ss = tr ? nne_conv_transpose2d_gemm_scratch_size(c, threads)
                             : nne_conv2d_gemm_scratch_size(c, threads);
        float *x = alloc_rand(nx, &r), *w = alloc_rand(nw, &r), *b = alloc_rand(c->oc, &r);
        float *y = alloc_rand(ny, &r), *dx = alloc_rand(nx, &r), *dw = alloc_rand(nw, &r);
        float *db = alloc_rand(c->oc, &r);
        void *scr = nne_aligned_alloc(ss);
        const bool first = g->tensors[n->inputs[0]].kind != NNE_TENSOR_ACTIVATION; /* no dx */
        double tf[6], tb[6];
        for (int k = 0; k < 6; k++) {
            uint64_t t0 = nne_time_ns();
            if (tr)
                nne_conv_transpose2d_forward_gemm(pool, c, x, w, b, y, scr, gf);
            else
                nne_conv2d_forward_gemm(pool, c, x, w, b, y, scr, gf);
            uint64_t t1 = nne_time_ns();
            if (tr)
                nne_conv_transpose2d_backward_gemm(pool, c, x, w, y, first ? NULL : dx, dw, db, scr,
                                                   gf);
            else
                nne_conv2d_backward_gemm(pool, c, x, w, y, first ? NULL : dx, dw, db, scr, gf);
            uint64_t t2 = nne_time_ns();
            tf[k] = (double)(t1 - t0) * 1e-9;
            tb[k] = (double)(t2 - t1) * 1e-9;
        }
        qsort(tf + 1, 5, sizeof(double), cmp_double);
        qsort(tb + 1, 5, sizeof(double), cmp_double);
        const double bw_macs = macs * (first ? 1.0 : 2.0);
        printf("| %s | %.3f | %.1f | %.1f | %.1f | %.1f |\n", n->name, macs * 1e-9, tf[3] * 1e3,
               2.0 * macs / tf[3] * 1e-9, tb[3] * 1e3, 2.0 * bw_macs / tb[3] * 1e-9);
        nne_aligned_free(x);
        nne_aligned_free(w);
        nne_aligned_free(b);
        nne_aligned_free(y);
        nne_aligned_free(dx);
        nne_aligned_free(dw);
        nne_aligned_free(db);
        nne_aligned_free(scr);
    }
    nne_threadpool_free(pool);
}

/* Forward MACs of node n: convolutions as forward_macs, GDN/IGDN c^2 per pixel (the
 * normalizer's 1x1 convolution of x^2); 0 for the rest. */
static double node_macs(const nne_graph *g, const nne_node *n) {
    const nne_conv2d_geom *c = &n->conv_geom;
    const double taps = (double)c->kh * c->kw;
    if (n->op == NNE_OP_CONV2D)
        return (double)c->n * c->oh * c->ow * c->oc * taps * (c->ic / c->groups);
    if (n->op == NNE_OP_CONV_TRANSPOSE2D)
        return (double)c->n * c->ih * c->iw * c->ic * taps * (c->oc / c->groups);
    if (n->op == NNE_OP_GDN || n->op == NNE_OP_IGDN) {
        const nne_shape *s = &g->tensors[n->output].shape;
        const double ch = (double)s->dim[s->ndim - 1];
        return (double)nne_shape_numel(s) * ch;
    }
    return 0.0;
}

enum { K_CONV, K_GDN, K_LIK, K_QUANT, K_EW, K_LOSS, K_ZERO, K_UPDATE, K_OTHER, K_COUNT };
static const char *const k_kind_label[K_COUNT] = {"convolutions (im2col + GEMM)",
                                                  "GDN / IGDN",
                                                  "likelihoods (factorized, Gaussian)",
                                                  "quantize (noise)",
                                                  "relu, prelu, abs, add",
                                                  "loss (MSE, rate)",
                                                  "clearing gradients",
                                                  "clip + Adam + projection",
                                                  "other (step - the above)"};

static int node_kind(nne_op_type op) {
    switch (op) {
    case NNE_OP_CONV2D:
    case NNE_OP_CONV_TRANSPOSE2D:
        return K_CONV;
    case NNE_OP_GDN:
    case NNE_OP_IGDN:
        return K_GDN;
    case NNE_OP_FACTORIZED_LIKELIHOOD:
    case NNE_OP_GAUSSIAN_LIKELIHOOD:
        return K_LIK;
    case NNE_OP_QUANTIZE:
        return K_QUANT;
    default:
        return K_EW;
    }
}

/* --profile: per node and per kind, in ms per step (the sums over `steps` steps / steps). */
static void print_profile(const nne_graph *g, const nne_train_profile *p, int steps,
                          double step_total_s, int threads) {
    const double k = 1e-6 / steps; /* ns over all steps -> ms per step */
    printf("\n### Profile, %d thread(s): ms per step (mean of %d steps)\n\n", threads, steps);
    printf("| node | op | output | GMAC | forward ms | GFLOP/s | backward ms | GFLOP/s |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    double kf[K_COUNT] = {0}, kb[K_COUNT] = {0};
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        const nne_shape *s = &g->tensors[n->output].shape;
        const double f = (double)p->fwd_ns[i] * k, b = (double)p->bwd_ns[i] * k;
        const double macs = node_macs(g, n);
        /* backward FLOPs: 2 x forward for convolutions (dX and dW; dW only without an input
         * gradient, the first layer), 3 x for GDN (the normalizer again, dgamma, the dx sum) */
        const bool has_dx = g->tensors[n->inputs[0]].kind == NNE_TENSOR_ACTIVATION;
        const double bwd_x = node_kind(n->op) == K_GDN ? 3.0 : has_dx ? 2.0 : 1.0;
        char shape[64];
        snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lld", (long long)s->dim[0],
                 (long long)(s->ndim > 1 ? s->dim[1] : 1), (long long)(s->ndim > 2 ? s->dim[2] : 1),
                 (long long)(s->ndim > 3 ? s->dim[3] : 1));
        printf("| %s | %s | %s | ", n->name, nne_op_name(n->op), shape);
        if (macs > 0.0)
            printf("%.3f | %.1f | %.1f | %.1f | %.1f |\n", macs * 1e-9, f, 2.0 * macs / f * 1e-6, b,
                   2.0 * bwd_x * macs / b * 1e-6);
        else
            printf("- | %.1f | - | %.1f | - |\n", f, b);
        kf[node_kind(n->op)] += f;
        kb[node_kind(n->op)] += b;
    }
    kf[K_LOSS] = (double)p->loss_ns * k;
    kf[K_ZERO] = (double)p->zero_ns * k;
    kf[K_UPDATE] = (double)p->update_ns * k;
    const double total = step_total_s * 1e3 / steps;
    double acc = 0.0;
    for (int i = 0; i < K_OTHER; i++) acc += kf[i] + kb[i];
    kf[K_OTHER] = total - acc;
    double fs = 0.0, bs = 0.0;
    printf("\n| kind | forward ms | backward ms | total ms | share |\n|---|---|---|---|---|\n");
    for (int i = 0; i < K_COUNT; i++) {
        printf("| %s | %.1f | %.1f | %.1f | %.1f%% |\n", k_kind_label[i], kf[i], kb[i],
               kf[i] + kb[i], 100.0 * (kf[i] + kb[i]) / total);
        if (i < K_LOSS) {
            fs += kf[i];
            bs += kb[i];
        }
    }
    printf("| **step** | %.1f (nodes) | %.1f (nodes) | %.1f | 100%% |\n", fs, bs, total);
}

int main(int argc, char **argv) {
    int batch = 8, size = 256, steps = 7, warmup = 2, n_threads = 2;
    int threads[16] = {1, 2};
    bool layers = false, profile = false, bf16 = false;
    const char *model = "cae-seed";
    int ch_n = 64, ch_m = 96;
    float lambda = 0.0130f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bool more = i + 1 < argc;
        if (!strcmp(a, "--batch") && more)
            batch = atoi(argv[++i]);
        else if (!strcmp(a, "--size") && more)
            size = atoi(argv[++i]);
        else if (!strcmp(a, "--steps") && more)
            steps = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && more)
            warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && more)
            n_threads = parse_list(argv[++i], threads, 16);
        else if (!strcmp(a, "--layers"))
            layers = true;
        else if (!strcmp(a, "--profile"))
            profile = true;
        else if (!strcmp(a, "--model") && more)
            model = argv[++i];
        else if (!strcmp(a, "--channels") && more) {
            if (sscanf(argv[++i], "%d,%d", &ch_n, &ch_m) != 2) ch_n = 0;
        } else if (!strcmp(a, "--lambda") && more)
            lambda = (float)atof(argv[++i]);
        else if (!strcmp(a, "--matmul") && more &&
                 (!strcmp(argv[i + 1], "f32") || !strcmp(argv[i + 1], "bf16")))
            bf16 = !strcmp(argv[++i], "bf16");
        else {
            fprintf(stderr, "usage: bench_train [--model cae-seed|bmshj2018-factorized|"
                            "bmshj2018-hyperprior|mbt2018-mean] [--channels N,M] [--lambda L] "
                            "[--batch N] [--size PX] [--threads LIST] [--steps N] [--warmup N] "
                            "[--layers] [--profile] [--matmul f32|bf16]\n");
            return 2;
        }
    }
    const bool cae = !strcmp(model, "cae-seed");
    nne_rdmodel_config rc = {.n = ch_n, .m = ch_m, .train_mode = NNE_QUANTIZE_NOISE};
    if (batch < 1 || size < 32 || steps < 1 || warmup < 0 || n_threads < 1 ||
        (!cae && (nne_rdmodel_kind_from_name(model, &rc.kind) != NNE_OK || ch_n < 1 || ch_m < 1 ||
                  !(lambda > 0.0f)))) {
        fprintf(stderr, "bench_train: bad arguments\n");
        return 2;
    }

    nne_graph *g = NULL;
    nne_status st = cae ? nne_model_cae_seed(size, size, NNE_CAE_FULL, &g)
                        : nne_model_rd(&rc, batch, size, size, NNE_RD_TRAIN, &g);
    if (st == NNE_OK) st = nne_graph_set_input_shape(g, 0, nne_shape_4d(batch, size, size, 3));
    if (st == NNE_OK) st = nne_graph_infer(g);
    if (st == NNE_OK) st = nne_train_init_params(g, 1);
    if (st != NNE_OK) {
        fprintf(stderr, "bench_train: %s\n", nne_last_error());
        return 1;
    }
    const size_t n_in = (size_t)batch * size * size * 3;
    const int n_data = 4; /* distinct batches, cycled */
    nne_rng r;
    nne_rng_seed(&r, 42);
    float *data = alloc_rand(n_in * n_data, &r);
    const double macs = forward_macs(g);
    const double flop_step = 3.0 * 2.0 * macs;

    if (cae)
        printf("## bench_train: cae-seed, batch %d of %dx%d crops, MSE, Adam\n\n", batch, size,
               size);
    else
        printf("## bench_train: %s N,M = %d,%d, batch %d of %dx%d crops, rate-distortion "
               "(lambda %g), Adam\n\n",
               model, ch_n, ch_m, batch, size, size, (double)lambda);
    if (bf16)
        printf("Convolution GEMMs in bf16 (NNE_GEMM_BF16), path: %s.\n\n", nne_gemm_bf16_path());
    printf("Forward: %.3f GMAC per step (%.2f GMAC per crop); GFLOP/s counts 3 x 2 x forward "
           "MACs per step (%.1f GFLOP).\n\n",
           macs * 1e-9, macs * 1e-9 / batch, flop_step * 1e-9);
    printf("| threads | step ms (median) | range ms | CPU ms (median) | crops/s | GFLOP/s | loss "
           "first -> last |\n");
    printf("|---|---|---|---|---|---|---|\n");
    int failed = 0;
    double first_loss0 = 0.0;
    char results[16][160];
    nne_train_profile profs[16];
    double prof_s[16];
    for (int ti = 0; ti < n_threads; ti++) {
        nne_trainer_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.optim = nne_optim_config_adam();
        cfg.lr.kind = NNE_LR_CONSTANT;
        cfg.lr.lr = 1e-4f;
        cfg.loss = cae ? NNE_LOSS_MSE : NNE_LOSS_RD;
        cfg.rd_lambda = lambda;
        cfg.noise_seed = 7;
        cfg.threads = threads[ti];
        cfg.bf16_matmul = bf16;
        nne_trainer *tr = NULL;
        nne_train_init_params(g, 1); /* the same start for every thread count */
        if (nne_trainer_create(g, &cfg, &tr) != NNE_OK) {
            fprintf(stderr, "bench_train: %s\n", nne_last_error());
            return 1;
        }
        double *t = calloc((size_t)steps, sizeof *t), loss0 = 0.0, loss1 = 0.0;
        double *tc = calloc((size_t)steps, sizeof *tc);
        uint64_t *pns = calloc(2 * (size_t)g->n_nodes, sizeof *pns);
        if (!t || !tc || !pns) return 1;
        nne_train_profile prof = {.fwd_ns = pns, .bwd_ns = pns + g->n_nodes};
        for (int s = 0; s < warmup + steps; s++) {
            const float *in = data + (size_t)(s % n_data) * n_in;
            nne_train_stats stats;
            if (profile && s == warmup) nne_trainer_set_profile(tr, &prof);
            const uint64_t c0 = cpu_time_ns(), t0 = nne_time_ns();
            st = nne_trainer_step(tr, in, in, &stats);
            const uint64_t t1 = nne_time_ns(), c1 = cpu_time_ns();
            if (st != NNE_OK || !isfinite(stats.loss)) {
                fprintf(stderr, "bench_train: step %d failed: %s\n", s, nne_last_error());
                failed = 1;
                break;
            }
            if (s == 0) loss0 = stats.loss;
            loss1 = stats.loss;
            if (s >= warmup) {
                t[s - warmup] = (double)(t1 - t0) * 1e-9;
                tc[s - warmup] = (double)(c1 - c0) * 1e-9;
            }
        }
        if (ti == 0) first_loss0 = loss0;
        if (loss0 != first_loss0) {
            fprintf(stderr, "bench_train: first loss %.9g with %d threads != %.9g\n", loss0,
                    threads[ti], first_loss0);
            failed = 1;
        }
        if (!(loss1 < loss0)) {
            fprintf(stderr, "bench_train: loss did not decrease (%.6g -> %.6g)\n", loss0, loss1);
            failed = 1;
        }
        double sum_t = 0.0;
        for (int s = 0; s < steps; s++) sum_t += t[s];
        qsort(t, (size_t)steps, sizeof *t, cmp_double);
        qsort(tc, (size_t)steps, sizeof *tc, cmp_double);
        const double cmed = steps % 2 ? tc[steps / 2] : 0.5 * (tc[steps / 2 - 1] + tc[steps / 2]);
        const double med = steps % 2 ? t[steps / 2] : 0.5 * (t[steps / 2 - 1] + t[steps / 2]);
        printf("| %d | %.1f | %.1f-%.1f | %.1f | %.2f | %.1f | %.4f -> %.4f |\n", threads[ti],
               med * 1e3, t[0] * 1e3, t[steps - 1] * 1e3, cmed * 1e3, batch / med,
               flop_step / med * 1e-9, loss0, loss1);
        snprintf(results[ti], sizeof results[ti],
                 "RESULT threads=%d crops_per_s=%.3f gflops=%.2f ms=%.2f cpu_ms=%.2f", threads[ti],
                 batch / med, flop_step / med * 1e-9, med * 1e3, cmed * 1e3);
        profs[ti] = prof;
        prof_s[ti] = sum_t;
        free(t);
        free(tc);
        nne_trainer_free(tr);
    }
    printf("\n");
    for (int ti = 0; ti < n_threads; ti++) printf("%s\n", results[ti]);
    for (int ti = 0; ti < n_threads; ti++) {
        if (profile) print_profile(g, &profs[ti], steps, prof_s[ti], threads[ti]);
        free(profs[ti].fwd_ns);
    }
    if (layers)
        for (int ti = 0; ti < n_threads; ti++)
            time_layers(g, threads[ti], bf16 ? NNE_GEMM_BF16 : 0u);
    nne_aligned_free(data);
    nne_graph_free(g);
    return failed;
}
