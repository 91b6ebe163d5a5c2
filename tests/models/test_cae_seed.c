/* cae-seed: the layer shapes and workloads must equal the CAE paper's Table 3
 * (../shared/specs/dpu.md), and the decoder must mirror the encoder exactly. */
#include <string.h>

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
    return nne_test_summary();
}
