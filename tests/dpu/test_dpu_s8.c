/* cpu-s8 against dpu-sim, bit for bit, on graphs made by the quantization pass in pow2 mode
 * (docs/dpu-isa.md, "Compiling quantized graphs"; docs/quantization.md, 6 and 14): f32
 * graphs with random weights and trained-looking (not power-of-two) PReLU / leaky slopes,
 * calibrated on synthetic images, quantized with nne_quantize_graph, run on the cpu-s8
 * backend and compiled + simulated for several DPU sizes. The int8 outputs must be equal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpu_qgraph.h"
#include "nnedge/backend.h"
#include "nnedge/dpu.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"
#include "nnedge/qops.h"

static const char *const k_archs[] = {"B512", "B1024", "B4096"};

/* Random f32 parameters: weights U(-a, a) with a = sqrt(3 / fan_in) (unit-variance outputs),
 * biases U(-0.1, 0.1), PReLU slopes U(0.02, 0.45) and leaky slopes U(0.05, 0.3): none a
 * power of two or an int8 code at one. */
static void fill_random(nne_graph *g, nne_test_rng *r) {
    for (int32_t i = 0; i < g->n_nodes; i++) {
        nne_node *n = &g->nodes[i];
        if (n->op == NNE_OP_LEAKY_RELU)
            n->params.leaky.alpha = 0.05f + 0.25f * (float)nne_test_rng_uniform(r);
        for (int32_t k = 1; k < n->n_inputs; k++) {
            nne_tensor *t = &g->tensors[n->inputs[k]];
            if (n->inputs[k] < 0 || t->kind != NNE_TENSOR_CONSTANT || t->dtype != NNE_F32) continue;
            float *d = t->data;
            const int64_t cnt = nne_shape_numel(&t->shape);
            const bool w = k == 1 && n->op != NNE_OP_PRELU;
            const float a = w ? sqrtf(3.0f / (float)(cnt / t->shape.dim[0])) : 0.1f;
            for (int64_t j = 0; j < cnt; j++)
                d[j] = n->op == NNE_OP_PRELU ? 0.02f + 0.43f * (float)nne_test_rng_uniform(r)
                                             : a * (2.0f * (float)nne_test_rng_uniform(r) - 1.0f);
        }
    }
}

/* Calibration: smooth synthetic images in [0, 1] (gradients, a disc, noise), seeded by i. */
static void synth_image(int32_t i, const nne_shape *s, float *x) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 1000 + (unsigned long long)i);
    const int64_t H = s->dim[1], W = s->dim[2], C = s->dim[3];
    const float fx = (float)nne_test_rng_uniform(&r) * 6.0f,
                fy = (float)nne_test_rng_uniform(&r) * 6.0f;
    for (int64_t y = 0; y < H; y++)
        for (int64_t xx = 0; xx < W; xx++)
            for (int64_t c = 0; c < C; c++) {
                const float u = (float)xx / (float)W, v = (float)y / (float)H;
                float p = 0.5f + 0.3f * sinf(fx * u + (float)c) * cosf(fy * v);
                if ((u - 0.5f) * (u - 0.5f) + (v - 0.4f) * (v - 0.4f) < 0.04f) p = 0.9f;
                p += 0.08f * ((float)nne_test_rng_uniform(&r) - 0.5f);
                x[(y * W + xx) * C + c] = p < 0 ? 0 : p > 1 ? 1 : p;
            }
}

typedef struct calib {
    nne_shape shape;
} calib;

static nne_status sample(void *ctx, int32_t i, float *x) {
    synth_image(i, &((const calib *)ctx)->shape, x);
    return NNE_OK;
}

static nne_status quantize_pow2(nne_graph *g, int32_t n_samples, nne_graph **q) {
    calib c = {g->tensors[g->inputs[0]].shape};
    nne_quantize_opts o;
    memset(&o, 0, sizeof o);
    o.scheme = NNE_QSCHEME_POW2;
    o.observer.kind = NNE_OBSERVER_MINMAX;
    o.n_samples = n_samples;
    o.sample = sample;
    o.ctx = &c;
    return nne_quantize_graph(g, &o, q);
}

/* The quantized graph on cpu-s8: input codes in, output codes out. */
static nne_status run_cpu_s8(nne_graph *q, const int8_t *in, size_t n_in, int8_t *out,
                             size_t n_out) {
    nne_session *ss = NULL;
    nne_status s = nne_session_create(q, nne_backend_cpu_s8(), &ss);
    if (s) return s;
    memcpy(nne_session_input(ss, 0), in, n_in);
    if (!(s = nne_session_run(ss))) memcpy(out, nne_session_output(ss, 0), n_out);
    nne_session_free(ss);
    return s;
}

static nne_status run_dpu(const nne_graph *q, const char *arch, const int8_t *in, size_t n_in,
                          int8_t *out, size_t n_out, nne_dpu_program *keep) {
    nne_dpu_arch a;
    nne_dpu_program p;
    nne_status s = nne_dpu_arch_get(arch, &a);
    if (!s) s = nne_dpu_compile(q, &a, NULL, &p);
    if (s) return s;
    s = nne_dpu_sim_run(&p, in, n_in, out, n_out, NULL);
    if (keep && !s)
        *keep = p;
    else
        nne_dpu_program_free(&p);
    return s;
}

/* The input: a synthetic image (not a calibration one) at the input's fixed point. */
static void input_codes(const nne_graph *q, int8_t *x, size_t n) {
    const nne_tensor *t = &q->tensors[q->inputs[0]];
    float *f = malloc(n * sizeof *f);
    synth_image(77, &t->shape, f);
    nne_quantize_f32_s8__ref(n, f, t->quant.scale[0], 0, true, x);
    free(f);
}

/* Quantize g (pow2), run it on cpu-s8 and on dpu-sim for every architecture, compare.
 * Returns the number of unsaturated outputs (the data must not be all -128 / 127). */
static size_t check_equal(nne_graph *g, const char *what, nne_graph **keep_q) {
    nne_graph *q = NULL;
    nne_status s = quantize_pow2(g, 3, &q);
    CHECK_MSG(s == NNE_OK, "%s: quantize: %s", what, nne_last_error());
    if (s) return 0;
    const size_t n_in = (size_t)nne_shape_numel(&q->tensors[q->inputs[0]].shape);
    const size_t n_out = (size_t)nne_shape_numel(&q->tensors[q->outputs[0]].shape);
    int8_t *in = malloc(n_in), *ref = malloc(n_out), *got = malloc(n_out);
    input_codes(q, in, n_in);
    CHECK_OK(run_cpu_s8(q, in, n_in, ref, n_out));
    size_t live = 0;
    for (size_t i = 0; i < n_out; i++) live += ref[i] != -128 && ref[i] != 127;
    for (size_t k = 0; k < sizeof k_archs / sizeof k_archs[0]; k++) {
        memset(got, 0x55, n_out);
        s = run_dpu(q, k_archs[k], in, n_in, got, n_out, NULL);
        CHECK_MSG(s == NNE_OK, "%s on %s: %s", what, k_archs[k], nne_last_error());
        if (s) continue;
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n_out; i++)
            if (got[i] != ref[i] && !bad++) first = i;
        CHECK_MSG(bad == 0,
                  "%s on %s: %zu of %zu bytes differ from cpu-s8, first at %zu (%d vs %d)", what,
                  k_archs[k], bad, n_out, first, got[first], ref[first]);
    }
    free(in);
    free(ref);
    free(got);
    if (keep_q)
        *keep_q = q;
    else
        nne_graph_free(q);
    return live;
}

/* Every slope of a pow2-quantized graph is an int8 code at one fixed point per layer. */
static void check_slopes(const nne_graph *q) {
    for (int32_t i = 0; i < q->n_nodes; i++) {
        const nne_node *n = &q->nodes[i];
        const float *sl = n->op == NNE_OP_PRELU        ? q->tensors[n->inputs[1]].data
                          : n->op == NNE_OP_LEAKY_RELU ? &n->params.leaky.alpha
                                                       : NULL;
        if (!sl) continue;
        const int64_t ns =
            n->op == NNE_OP_PRELU ? nne_shape_numel(&q->tensors[n->inputs[1]].shape) : 1;
        for (int64_t j = 0; j < ns; j++) {
            int32_t code, k;
            CHECK_MSG(nne_slope_pow2(sl[j], &code, &k), "%s: slope %g", n->name, (double)sl[j]);
        }
        /* and the activation shares its input's fixed point (the DPU fuses it) */
        CHECK(q->tensors[n->inputs[0]].quant.scale[0] == q->tensors[n->output].quant.scale[0]);
    }
}

static nne_graph *cae(nne_cae_part part, int32_t h, int32_t w, nne_test_rng *r) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(h, w, part, &g));
    if (g) fill_random(g, r);
    return g;
}

/* (a) The cae-seed encoder (the paper's DPU part), random weights, pass-quantized. */
static void test_cae_encoder(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 71);
    nne_graph *g = cae(NNE_CAE_ENCODER, 48, 64, &r);
    if (!g) return;
    nne_graph *q = NULL;
    const size_t live = check_equal(g, "cae-seed encoder 48x64", &q);
    if (getenv("NNE_TEST_VERBOSE")) printf("cae-seed encoder: %zu unsaturated outputs\n", live);
    CHECK_MSG(live > 60, "only %zu unsaturated outputs", live);
    if (q) check_slopes(q);
    nne_graph_free(q);
    nne_graph_free(g);
}

/* (a') The whole cae-seed (encoder + decoder, transposed convolutions as stride phases). */
static void test_cae_full(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 72);
    nne_graph *g = cae(NNE_CAE_FULL, 40, 48, &r);
    if (!g) return;
    nne_graph *q = NULL;
    const size_t live = check_equal(g, "cae-seed 40x48 (full)", &q);
    CHECK_MSG(live > 2000, "only %zu unsaturated outputs", live);
    if (q) check_slopes(q);
    nne_graph_free(q);
    nne_graph_free(g);
}

/* (b) Random graphs (conv with every activation, pooling, residual add, concat), with random
 * f32 weights and slopes, through the pass. */
static void test_random_graphs(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 4242);
    int built = 0, tries = 0;
    size_t live = 0, total = 0;
    while (built < 30 && tries < 200) {
        tries++;
        nne_graph *g = NULL;
        if (qg_random_graph(&r, &g)) continue;
        fill_random(g, &r);
        char what[64];
        snprintf(what, sizeof what, "random graph %d (%d nodes)", built, (int)g->n_nodes);
        nne_graph *q = NULL;
        live += check_equal(g, what, &q);
        if (q) {
            check_slopes(q);
            total += (size_t)nne_shape_numel(&q->tensors[q->outputs[0]].shape);
        }
        nne_graph_free(q);
        nne_graph_free(g);
        built++;
    }
    CHECK_MSG(built == 30, "only %d of %d random graphs built", built, tries);
    CHECK_MSG(live * 3 > total, "%zu of %zu outputs unsaturated", live, total);
    if (getenv("NNE_TEST_VERBOSE"))
        printf("random graphs: %zu of %zu outputs unsaturated\n", live, total);
}

/* The comparison can fail: one flipped weight in the program, a slope the DPU cannot hold. */
static void test_mutants(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 5);
    nne_graph *g = cae(NNE_CAE_ENCODER, 32, 40, &r), *q = NULL;
    if (!g) return;
    CHECK_OK(quantize_pow2(g, 2, &q));
    if (!q) {
        nne_graph_free(g);
        return;
    }
    const size_t n_in = 32 * 40 * 3,
                 n_out = (size_t)nne_shape_numel(&q->tensors[q->outputs[0]].shape);
    int8_t *in = malloc(n_in), *a = malloc(n_out), *b = malloc(n_out);
    input_codes(q, in, n_in);
    CHECK_OK(run_cpu_s8(q, in, n_in, a, n_out));
    nne_dpu_program p;
    CHECK_OK(run_dpu(q, "B1024", in, n_in, b, n_out, &p));
    CHECK(memcmp(a, b, n_out) == 0);
    /* conv2d_1's first weight (PARAMS offset 0: layer 0's OHWI weights come first). */
    p.params[0] ^= 0x40;
    CHECK_OK(nne_dpu_sim_run(&p, in, n_in, b, n_out, NULL));
    CHECK_MSG(memcmp(a, b, n_out) != 0, "a flipped weight went unnoticed");
    nne_dpu_program_free(&p);
    /* A trained slope that is no int8 code at a power of two: the DPU refuses it by name. */
    const int32_t st = nne_graph_find_tensor(q, "conv2d_2.prelu.slope");
    CHECK(st >= 0);
    if (st >= 0) {
        /* every channel's slope 0.1 (the output stayed the same when only channel 3's was
         * changed, once Q31 PReLU rounded once instead of twice) */
        for (int64_t c = 0; c < nne_shape_numel(&q->tensors[st].shape); c++)
            ((float *)q->tensors[st].data)[c] = 0.1f;
        nne_dpu_arch arch;
        CHECK_OK(nne_dpu_arch_get("B512", &arch));
        CHECK_STATUS(nne_dpu_compile(q, &arch, NULL, &p), NNE_ERR_UNSUPPORTED);
        CHECK(strstr(nne_last_error(), "conv2d_2.prelu") != NULL);
        /* cpu-s8 still runs it (its negative side then in Q31), and the output changes */
        CHECK_OK(run_cpu_s8(q, in, n_in, b, n_out));
        CHECK(memcmp(a, b, n_out) != 0);
    }
    free(in);
    free(a);
    free(b);
    nne_graph_free(q);
    nne_graph_free(g);
}

int main(void) {
    NNE_RUN(test_cae_encoder);
    NNE_RUN(test_cae_full);
    NNE_RUN(test_random_graphs);
    NNE_RUN(test_mutants);
    return nne_test_summary();
}
