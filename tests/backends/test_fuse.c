/* Fused pairs in the backends (docs/conv.md, "Cross-layer fusion") on cae-seed's encoder:
 *   cpu     with fusion (conv2d_1 -> PReLU -> conv2d_2 and conv2d_3 -> PReLU -> conv2d_4 run
 *           as pairs) against cpu with NNEDGE_FUSE=0: bitwise equal output;
 *   cpu-s8  on the quantized encoder (per-channel Q31 and pow2) against cpu-s8-ref: bitwise
 *           equal output (conv2d_1 -> PReLU -> conv2d_2 fused; conv2d_3 -> conv2d_4 not, the
 *           int8 policy of nne_conv2d_pair_ok);
 * under each ISA the CPU runs (ref, avx2). The planner must actually fuse: the skipped second
 * conv of a pair reports 0 ns in the profile, and a positive time with NNEDGE_FUSE=0. The
 * encoder at 70 x 100 (conv2d_2 has 33 output rows, so 2 threads split them into tasks). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/gemm.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"
#include "testutil.h"

static const char *const isas[2] = {"ref", "avx2"};

static nne_graph *encoder(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(70, 100, NNE_CAE_ENCODER, &g));
    if (!g) return NULL;
    nne_test_rng r;
    nne_test_rng_seed(&r, 11);
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || t->dtype != NNE_F32) continue;
        float *d = t->data;
        const int64_t n = nne_shape_numel(&t->shape);
        const float a = t->shape.ndim == 4 ? sqrtf(3.0f / (float)(n / t->shape.dim[0])) : 0.2f;
        for (int64_t k = 0; k < n; k++) d[k] = (float)(nne_test_rng_uniform(&r) * 2 - 1) * a;
    }
    return g;
}

static int32_t node_index(const nne_graph *g, const char *name) {
    for (int32_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

static void fill_input(size_t n, float *x) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++) x[i] = (float)nne_test_rng_uniform(&r);
}

/* Runs g on backend `be` (fusion on or off), output and the profile time of node `probe`. */
static void *run(nne_graph *g, const char *be, bool fuse, bool f32_in, int32_t probe,
                 uint64_t *probe_ns) {
    if (!fuse) setenv("NNEDGE_FUSE", "0", 1);
    nne_session *s = NULL;
    CHECK_OK(nne_session_create(g, nne_backend_by_name(be), &s));
    unsetenv("NNEDGE_FUSE");
    if (!s) return NULL;
    const size_t n = (size_t)nne_shape_numel(&nne_session_input_tensor(s, 0)->shape);
    float *x = malloc(n * sizeof *x);
    fill_input(n, x);
    if (f32_in)
        memcpy(nne_session_input(s, 0), x, n * sizeof *x);
    else
        CHECK_OK(nne_session_set_input_f32(s, 0, x, n));
    free(x);
    CHECK_OK(nne_session_run(s));
    const size_t m = nne_tensor_nbytes(nne_session_output_tensor(s, 0));
    void *y = malloc(m);
    memcpy(y, nne_session_output(s, 0), m);
    nne_node_profile prof[64];
    CHECK_OK(nne_session_profile(s, prof));
    *probe_ns = prof[probe].ns;
    nne_session_free(s);
    return y;
}

static void test_cpu_fused_equals_unfused(void) {
    nne_graph *g = encoder();
    if (!g) return;
    const int32_t c2 = node_index(g, "conv2d_2"), c4 = node_index(g, "conv2d_4");
    CHECK(c2 > 0 && c4 > 0);
    const size_t m = nne_tensor_nbytes(&g->tensors[g->outputs[0]]);
    for (int v = 0; v < 2; v++) {
        if (!nne_ops_isa_supported(isas[v])) continue;
        CHECK_OK(nne_ops_set_isa(isas[v]));
        uint64_t on_ns = 1, off_ns = 0, on4 = 1, off4 = 0;
        void *yf = run(g, "cpu", true, true, c2, &on_ns);
        void *yu = run(g, "cpu", false, true, c2, &off_ns);
        free(run(g, "cpu", true, true, c4, &on4));
        free(run(g, "cpu", false, true, c4, &off4));
        CHECK_MSG(on_ns == 0 && on4 == 0, "%s: conv2d_2 / conv2d_4 not fused (%llu / %llu ns)",
                  isas[v], (unsigned long long)on_ns, (unsigned long long)on4);
        CHECK_MSG(off_ns > 0 && off4 > 0, "%s: NNEDGE_FUSE=0 still fuses", isas[v]);
        CHECK_MSG(yf && yu && memcmp(yf, yu, m) == 0, "%s: cpu fused != cpu unfused", isas[v]);
        free(yf), free(yu);
    }
    nne_ops_set_isa(NULL);
    nne_graph_free(g);
}

static nne_status sample(void *ctx, int32_t i, float *x) {
    const size_t n = *(const size_t *)ctx;
    nne_test_rng r;
    nne_test_rng_seed(&r, 100 + (unsigned long long)i);
    for (size_t k = 0; k < n; k++) x[k] = (float)nne_test_rng_uniform(&r);
    return NNE_OK;
}

static void test_cpu_s8_fused_equals_ref(void) {
    nne_graph *g = encoder();
    if (!g) return;
    size_t n_in = (size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape);
    const nne_qscheme schemes[2] = {NNE_QSCHEME_PER_CHANNEL, NNE_QSCHEME_POW2};
    for (int sc = 0; sc < 2; sc++) {
        nne_quantize_opts o = {
            .scheme = schemes[sc], .n_samples = 2, .sample = sample, .ctx = &n_in};
        nne_graph *q = NULL;
        CHECK_OK(nne_quantize_graph(g, &o, &q));
        if (!q) continue;
        const int32_t c2 = node_index(q, "conv2d_2");
        CHECK(c2 > 0);
        const size_t m = nne_tensor_nbytes(&q->tensors[q->outputs[0]]);
        uint64_t ns = 0;
        void *yr = run(q, "cpu-s8-ref", true, false, c2, &ns);
        for (int v = 0; v < 2; v++) {
            if (!nne_ops_isa_supported(isas[v])) continue;
            CHECK_OK(nne_ops_set_isa(isas[v]));
            uint64_t on_ns = 1, off_ns = 0;
            void *yf = run(q, "cpu-s8", true, false, c2, &on_ns);
            void *yu = run(q, "cpu-s8", false, false, c2, &off_ns);
            CHECK_MSG(on_ns == 0, "%s %s: conv2d_2 not fused", nne_qscheme_name(schemes[sc]),
                      isas[v]);
            /* the int8 policy keeps conv2d_3 -> conv2d_4 (32 input channels) unfused */
            uint64_t c4_ns = 0;
            free(run(q, "cpu-s8", true, false, node_index(q, "conv2d_4"), &c4_ns));
            CHECK_MSG(c4_ns > 0, "%s: conv2d_3 -> conv2d_4 fused in int8", isas[v]);
            CHECK_MSG(off_ns > 0, "%s: NNEDGE_FUSE=0 still fuses", isas[v]);
            CHECK_MSG(yr && yf && memcmp(yf, yr, m) == 0, "%s %s: cpu-s8 fused != cpu-s8-ref",
                      nne_qscheme_name(schemes[sc]), isas[v]);
            CHECK_MSG(yr && yu && memcmp(yu, yr, m) == 0, "%s %s: cpu-s8 unfused != cpu-s8-ref",
                      nne_qscheme_name(schemes[sc]), isas[v]);
            free(yf), free(yu);
        }
        nne_ops_set_isa(NULL);
        free(yr);
        nne_graph_free(q);
    }
    nne_graph_free(g);
}

int main(void) {
    NNE_RUN(test_cpu_fused_equals_unfused);
    NNE_RUN(test_cpu_s8_fused_equals_ref);
    return nne_test_summary();
}
