/* cae-seed: the layer shapes and workloads must equal the CAE paper's Table 3
 * (../shared/specs/dpu.md), and the decoder must mirror the encoder exactly. */
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/models.h"
#include "testutil.h"

static void test_encoder_table3(void) {
    nne_graph *g;
    CHECK_OK(nne_model_cae_seed(512, 768, NNE_CAE_ENCODER, &g));
    if (!g) return;
    /* name, output h, w, c, MACs (Table 3 workload / 2) */
    static const struct {
        const char *name;
        int64_t h, w, c, macs;
    } want[5] = {
        {"conv2d_1", 510, 766, 32, 337530240},  {"conv2d_2", 254, 382, 32, 894210048},
        {"conv2d_3", 252, 380, 64, 1765048320}, {"conv2d_4", 125, 189, 64, 870912000},
        {"conv2d_5", 62, 94, 32, 107421696},
    };
    int64_t total = 0;
    for (int k = 0; k < 5; k++) {
        int32_t ni = nne_graph_find_node(g, want[k].name);
        CHECK(ni >= 0);
        if (ni < 0) continue;
        nne_node_cost c;
        CHECK_OK(nne_node_cost_get(g, ni, &c));
        const nne_shape *s = &g->tensors[g->nodes[ni].output].shape;
        CHECK(s->dim[1] == want[k].h && s->dim[2] == want[k].w && s->dim[3] == want[k].c);
        CHECK_MSG(c.macs == want[k].macs, "%s: %lld MACs", want[k].name, (long long)c.macs);
        total += c.macs;
    }
    /* PReLU and other nodes add no MACs: the graph total is the conv total. */
    int64_t graph_total = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        nne_node_cost c;
        CHECK_OK(nne_node_cost_get(g, i, &c));
        graph_total += c.macs;
    }
    CHECK(total == 3975122304LL);
    CHECK(graph_total == 3975122304LL);
    /* 7950.245 MOP, as printed by the paper. */
    char buf[32];
    snprintf(buf, sizeof buf, "%.3f", 2.0 * (double)graph_total / 1e6);
    CHECK(strcmp(buf, "7950.245") == 0);
    /* Latent 62x94x32 float32 against 512x768x3 bytes: 0.6324. The paper prints 0.6356
     * because its formula divides by 764*512*3 (a typo for 768); docs/models.md. */
    const nne_tensor *lat = &g->tensors[g->outputs[0]];
    CHECK(strcmp(lat->name, "latent") == 0);
    CHECK(lat->shape.dim[1] == 62 && lat->shape.dim[2] == 94 && lat->shape.dim[3] == 32);
    double bytes = (double)nne_shape_numel(&lat->shape) * 4.0;
    CHECK_NEAR(bytes / (512.0 * 768.0 * 3.0), 0.6324, 5e-5);
    CHECK_NEAR(bytes / (512.0 * 764.0 * 3.0), 0.6357, 5e-5);
    nne_graph_free(g);
}

static void test_decoder_mirrors(void) {
    nne_graph *g;
    CHECK_OK(nne_model_cae_seed(512, 768, NNE_CAE_DECODER, &g));
    if (!g) return;
    static const struct {
        const char *name;
        int64_t h, w, c;
    } want[5] = {
        {"conv2d_transpose_1", 125, 189, 64}, {"conv2d_transpose_2", 252, 380, 64},
        {"conv2d_transpose_3", 254, 382, 32}, {"conv2d_transpose_4", 510, 766, 32},
        {"conv2d_transpose_5", 512, 768, 3},
    };
    for (int k = 0; k < 5; k++) {
        int32_t ni = nne_graph_find_node(g, want[k].name);
        CHECK(ni >= 0);
        if (ni < 0) continue;
        const nne_shape *s = &g->tensors[g->nodes[ni].output].shape;
        CHECK_MSG(s->dim[1] == want[k].h && s->dim[2] == want[k].w && s->dim[3] == want[k].c, "%s",
                  want[k].name);
    }
    nne_graph_free(g);
}

/* Any size the encoder accepts reconstructs to exactly the input size. */
static void test_any_size(void) {
    static const int sizes[][2] = {{21, 21}, {22, 23}, {64, 64}, {100, 37}, {333, 250}, {768, 512}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        nne_graph *g;
        CHECK_OK(nne_model_cae_seed(sizes[i][0], sizes[i][1], NNE_CAE_FULL, &g));
        if (!g) continue;
        const nne_shape *s = &g->tensors[g->outputs[0]].shape;
        CHECK_MSG(s->dim[1] == sizes[i][0] && s->dim[2] == sizes[i][1], "%dx%d", sizes[i][0],
                  sizes[i][1]);
        nne_graph_free(g);
    }
    nne_graph *g = NULL;
    CHECK_STATUS(nne_model_cae_seed(20, 100, NNE_CAE_FULL, &g), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_model_cae_seed(100, 20, NNE_CAE_FULL, &g), NNE_ERR_INVALID_ARG);
    CHECK(g == NULL);
    CHECK_STATUS(nne_model_cae_seed(0, 0, NNE_CAE_FULL, &g), NNE_ERR_INVALID_ARG);
}

/* The border (docs/models.md): even axes lose exactly 3 trailing rows, odd ones none. */
static void test_border_counts(void) {
    CHECK(nne_cae_seed_border(512) == 3 && nne_cae_seed_border(768) == 3);
    CHECK(nne_cae_seed_border(256) == 3 && nne_cae_seed_border(22) == 3);
    CHECK(nne_cae_seed_border(511) == 0 && nne_cae_seed_border(21) == 0);
    CHECK(nne_cae_seed_border(20) == 0 && nne_cae_seed_border(0) == 0 &&
          nne_cae_seed_border(-5) == 0);
}

static uint64_t g_rng = 0x853C49E6748FEA9Bull;
static float frand(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) * 0x1.0p-53) - 0.5f;
}

/* The claim behind nne_cae_seed_border, checked on the graph itself: with random weights, the
 * last row and column of the decoder's output do not depend on the latent at all (the bias-only
 * padding row of conv2d_transpose_4 is all they see), while every row before the border does. */
static void test_border_is_dead(void) {
    const int32_t h = 64, w = 45; /* h even: border 3; w odd: none */
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(h, w, NNE_CAE_DECODER, &g));
    if (!g) return;
    for (int32_t t = 0; t < g->n_tensors; t++) {
        nne_tensor *x = &g->tensors[t];
        if (x->kind != NNE_TENSOR_CONSTANT || x->dtype != NNE_F32) continue;
        const size_t n = nne_tensor_nbytes(x) / 4;
        for (size_t i = 0; i < n; i++) ((float *)x->data)[i] = frand();
    }
    nne_session *s = NULL;
    CHECK_OK(nne_session_create(g, nne_backend_cpu_ref(), &s));
    if (!s) {
        nne_graph_free(g);
        return;
    }
    const nne_tensor *in = nne_session_input_tensor(s, 0);
    const size_t nin = nne_tensor_nbytes(in) / 4, nout = (size_t)h * w * 3;
    float *out[2];
    for (int r = 0; r < 2; r++) {
        float *lat = nne_session_input(s, 0);
        for (size_t i = 0; i < nin; i++) lat[i] = 4 * frand();
        CHECK_OK(nne_session_run(s));
        out[r] = nne_malloc(nout * sizeof(float));
        if (out[r]) memcpy(out[r], nne_session_output(s, 0), nout * sizeof(float));
    }
    if (out[0] && out[1]) {
        int same_last = 0, same_before = 0;
        for (int32_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                const size_t last = ((size_t)(h - 1) * w + x) * 3 + c;
                const size_t before = ((size_t)(h - 4) * w + x) * 3 + c;
                same_last += out[0][last] == out[1][last];
                same_before += out[0][before] == out[1][before];
            }
        CHECK_MSG(same_last == w * 3, "last row: %d of %d equal", same_last, w * 3);
        CHECK_MSG(same_before == 0, "row h-4: %d equal", same_before);
    }
    /* The fill replicates row h-4 into the last three rows and leaves the rest alone. */
    if (out[0] && out[1]) {
        memcpy(out[1], out[0], nout * sizeof(float));
        nne_cae_seed_fill_border(out[1], 1, h, w, 3);
        const size_t row = (size_t)w * 3;
        CHECK(memcmp(out[1], out[0], (size_t)(h - 3) * row * sizeof(float)) == 0);
        for (int32_t y = h - 3; y < h; y++)
            CHECK(memcmp(out[1] + (size_t)y * row, out[0] + (size_t)(h - 4) * row,
                         row * sizeof(float)) == 0);
    }
    nne_free(out[0]), nne_free(out[1]);
    nne_session_free(s);
    nne_graph_free(g);
}

static void test_builtin_registry(void) {
    nne_graph *g;
    for (const char *const *n = nne_builtin_model_names(); *n; n++) {
        CHECK_OK(nne_builtin_model(*n, &g));
        nne_graph_free(g);
    }
    CHECK_STATUS(nne_builtin_model("no-such-model", &g), NNE_ERR_NOT_FOUND);
    const char *const *parts = nne_builtin_model_parts("cae-seed");
    CHECK(parts && !strcmp(parts[0], "cae-seed-encoder") && !strcmp(parts[1], "cae-seed-decoder"));
    CHECK(nne_builtin_model_parts("cae-seed-encoder") == NULL);
}

int main(void) {
    NNE_RUN(test_encoder_table3);
    NNE_RUN(test_decoder_mirrors);
    NNE_RUN(test_any_size);
    NNE_RUN(test_builtin_registry);
    NNE_RUN(test_border_counts);
    NNE_RUN(test_border_is_dead);
    return nne_test_summary();
}
