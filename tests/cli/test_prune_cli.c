/* End-to-end tests of `nnedge prune` and of pruned fine-tuning with `nnedge train`: usage
 * errors and guards (Kodak, overwriting the input), channel pruning of cae-seed (the written
 * model has the pruned widths and the reported MACs, JSON, sensitivity on a calibration
 * folder), magnitude pruning (exact per-layer sparsity), `train --init` from a
 * channel-pruned model (it keeps its widths), `train --prune-schedule` (the final sparsity
 * and its exact resume). The binary's path comes from NNEDGE_BIN. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_fixtures.h"
#include "cli_util.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/prune.h"

#undef EXPECT_RC
#define EXPECT_RC(args, rc) EXPECT_RC_IN(nne_cli_tmp, args, rc)

static nne_graph *load(const char *rel) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path(rel), &g));
    if (g) CHECK_OK(nne_graph_infer(g));
    return g;
}

static int64_t dim0(const nne_graph *g, const char *tensor) {
    const int32_t t = nne_graph_find_tensor(g, tensor);
    return t < 0 ? -1 : g->tensors[t].shape.dim[0];
}

/* Fraction of exact zeros in a tensor. */
static double zero_frac(const nne_graph *g, const char *tensor) {
    const int32_t t = nne_graph_find_tensor(g, tensor);
    if (t < 0) return -1.0;
    const int64_t n = nne_shape_numel(&g->tensors[t].shape);
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += ((const float *)g->tensors[t].data)[i] == 0.0f;
    return (double)z / (double)n;
}

static void test_usage(void) {
    EXPECT_RC("prune --help", 0);
    CHECK(strstr(nne_cli_out, "usage: nnedge prune") != NULL);
    EXPECT_RC("help prune", 0);
    EXPECT_RC("prune m.nne --sparsity 0.5 -o p.nne", 2);
    CHECK(strstr(nne_cli_err, "--method") != NULL);
    EXPECT_RC("prune m.nne --method filters --sparsity 0.5 -o p.nne", 2);
    EXPECT_RC("prune m.nne --method channel -o p.nne", 2);
    CHECK(strstr(nne_cli_err, "--sparsity") != NULL);
    EXPECT_RC("prune m.nne --method channel --sparsity 1 -o p.nne", 2);
    EXPECT_RC("prune m.nne --method channel --sparsity -0.1 -o p.nne", 2);
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5", 2);
    CHECK(strstr(nne_cli_err, "-o") != NULL);
    EXPECT_RC("prune m.nne --method magnitude --sparsity 0.5 --calib data -o p.nne", 2);
    EXPECT_RC("prune m.nne --method channel --sparsity 0.9 --calib data -o p.nne", 2);
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5 --keep latent --prune-latent -o p.nne",
              2);
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5 -o m.nne", 2);
    CHECK(strstr(nne_cli_err, "overwrite") != NULL);
    EXPECT_RC("prune missing.nne --method channel --sparsity 0.5 -o p.nne", 1);
    CHECK(strstr(nne_cli_err, "missing.nne") != NULL);
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5 --keep nothere -o p.nne", 1);
    CHECK(strstr(nne_cli_err, "nothere") != NULL);
    /* Kodak is test data only. */
    mkdir(nne_cli_tmp_path("kodakish"), 0755);
    FILE *f = fopen(nne_cli_tmp_path("kodakish/kodim01.png"), "wb");
    if (f) fclose(f);
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5 --calib kodakish -o p.nne", 2);
    CHECK(strstr(nne_cli_err, "Kodak") != NULL);
    CHECK(!nne_cli_tmp_exists("p.nne"));
}

static void test_channel(void) {
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5 -o c50.nne", 0);
    CHECK(strstr(nne_cli_out, "conv2d_3") && strstr(nne_cli_out, "32->64:16->32") &&
          strstr(nne_cli_out, "kept as asked ('latent')"));
    nne_graph *a = load("m.nne"), *b = load("c50.nne");
    if (a && b) {
        CHECK(dim0(b, "conv2d_1.weight") == 16 && dim0(b, "conv2d_3.weight") == 32 &&
              dim0(b, "conv2d_5.weight") == 32 && dim0(b, "conv2d_transpose_2.weight") == 32 &&
              dim0(b, "conv2d_transpose_5.weight") == 3 && dim0(b, "conv2d_1.prelu.slope") == 16);
        nne_prune_cost ca, cb;
        CHECK_OK(nne_prune_cost_get(a, -1, &ca));
        CHECK_OK(nne_prune_cost_get(b, -1, &cb));
        /* 7,950,244,608 -> 2,210,037,120 MACs (docs/pruning.md): 3.60x */
        CHECK_MSG(ca.macs == 7950244608LL && cb.macs == 2210037120LL, "%lld -> %lld",
                  (long long)ca.macs, (long long)cb.macs);
        const char *m = nne_graph_get_meta(b, "prune.method");
        CHECK(m && !strcmp(m, "channel"));
    }
    nne_graph_free(a);
    nne_graph_free(b);
    /* JSON, and the latent pruned too: every layer with both sides halved has 1/4 of its
     * MACs. */
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5 --prune-latent --json -o c50l.nne", 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    CHECK(strstr(nne_cli_out, "\"name\": \"conv2d_5\", \"op\": \"conv2d\", \"in_channels\": [64, "
                              "32], \"out_channels\": [32, 16]") != NULL);
    CHECK(strstr(nne_cli_out, "\"macs\": [894210048, 223552512]") != NULL); /* conv2d_2 */
    EXPECT_RC("info c50l.nne", 0);
    /* Sensitivity on a calibration folder. */
    EXPECT_RC("prune m.nne --method channel --sparsity 0.5 --calib data --crop 32 --max-images 2 "
              "--json -q -o cs.nne",
              0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"dloss\": [0, ") &&
          strstr(nne_cli_out, "\"base_loss\""));
    nne_graph *c = load("cs.nne");
    if (c) {
        const nne_shape *in = &c->tensors[c->inputs[0]].shape;
        CHECK(in->dim[1] == 512 && in->dim[2] == 768); /* written at the model's own size */
        int64_t before = 0, after = 0;
        const char *layers[] = {"conv2d_1",           "conv2d_2",           "conv2d_3",
                                "conv2d_4",           "conv2d_transpose_1", "conv2d_transpose_2",
                                "conv2d_transpose_3", "conv2d_transpose_4"};
        const int64_t full[] = {32, 32, 64, 64, 64, 64, 32, 32};
        for (int i = 0; i < 8; i++) {
            char w[64];
            snprintf(w, sizeof w, "%s.weight", layers[i]);
            before += full[i];
            after += dim0(c, w);
        }
        CHECK_MSG(after * 2 <= before, "kept %lld of %lld channels", (long long)after,
                  (long long)before);
        nne_graph_free(c);
    }
}

static void test_magnitude(void) {
    EXPECT_RC("prune m.nne --method magnitude --sparsity 0.75 -o g75.nne", 0);
    CHECK(strstr(nne_cli_out, "sparse MACs") != NULL);
    nne_graph *g = load("g75.nne");
    if (g) {
        CHECK(fabs(zero_frac(g, "conv2d_1.weight") - 0.75) < 0.002);
        CHECK(fabs(zero_frac(g, "conv2d_transpose_3.weight") - 0.75) < 0.001);
        CHECK(zero_frac(g, "conv2d_1.prelu.slope") == 0.0); /* only conv weights */
        nne_prune_cost c;
        CHECK_OK(nne_prune_cost_get(g, -1, &c));
        CHECK(c.macs == 7950244608LL && fabs((double)c.sparse_macs / c.macs - 0.25) < 0.002);
        /* nnedge info reports the same sparse counts (JSON totals, and a text line) */
        char want[160];
        EXPECT_RC("info g75.nne --json", 0);
        snprintf(want, sizeof want, "\"nonzero_params\": %lld,\n", (long long)c.nonzero_params);
        CHECK_MSG(strstr(nne_cli_out, want) != NULL, "want %s", want);
        snprintf(want, sizeof want, "\"sparse_macs\": %lld\n", (long long)c.sparse_macs);
        CHECK_MSG(strstr(nne_cli_out, want) != NULL, "want %s", want);
        EXPECT_RC("info g75.nne", 0);
        CHECK(strstr(nne_cli_out, "(zero weights skipped)") != NULL);
        nne_graph_free(g);
    }
    EXPECT_RC("info m.nne", 0); /* no sparse line for a dense model */
    CHECK(strstr(nne_cli_out, "(zero weights skipped)") == NULL);
    EXPECT_RC("prune m.nne --method magnitude --sparsity 0.5 --json -o g50.nne", 0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"nonzero_params\""));
}

/* Train a tiny model first (the runs below start from it). */
static const char *k_run = "--data data --crop 32 --batch 2 --seed 4 -q";

static void test_train_init(void) {
    char args[1024];
    /* A channel-pruned model at 32x32 fine-tunes with its own widths. */
    EXPECT_RC("prune c50.nne --method channel --sparsity 0.25 -o c50b.nne -q", 0);
    snprintf(args, sizeof args, "train --init c50b.nne -o ft.nne --steps 3 --val data %s", k_run);
    EXPECT_RC(args, 0);
    nne_graph *g = load("ft.nne");
    if (g) {
        CHECK(dim0(g, "conv2d_1.weight") == 12 && dim0(g, "conv2d_3.weight") == 24);
        const char *v = nne_graph_get_meta(g, "train.init");
        CHECK(v && strstr(v, "c50b.nne"));
        nne_graph_free(g);
    }
    /* --init is for fresh runs; a file that is not a model is refused. */
    snprintf(args, sizeof args, "train --init data/img00.png -o x.nne --steps 2 %s", k_run);
    EXPECT_RC(args, 1);
    CHECK(!nne_cli_tmp_exists("x.nne"));
}

static void test_train_prune_schedule(void) {
    char args[1024];
    snprintf(args, sizeof args, "train --init m.nne -o s.nne --steps 6 %s --prune-schedule x",
             k_run);
    EXPECT_RC(args, 2);
    snprintf(args, sizeof args,
             "train --init m.nne -o s.nne --steps 6 %s --prune-schedule final=0.3,initial=0.5",
             k_run);
    EXPECT_RC(args, 2);
    /* Updates at steps 1, 3, 5 to 0.2, 0.5 + (0.2 - 0.5)(1/2)^3, 0.5. */
    const char *k_sched = "--prune-schedule final=0.5,initial=0.2,begin=1,every=2,count=2";
    snprintf(args, sizeof args, "train --init m.nne -o s.nne --steps 8 %s %s", k_run, k_sched);
    EXPECT_RC(args, 0);
    nne_graph *g = load("s.nne");
    if (g) {
        CHECK(fabs(zero_frac(g, "conv2d_2.weight") - 0.5) < 0.001);
        CHECK(fabs(zero_frac(g, "conv2d_transpose_1.weight") - 0.5) < 0.001);
        const char *v = nne_graph_get_meta(g, "train.prune");
        CHECK(v && strstr(v, "final 0.5") && strstr(v, "every 2"));
        v = nne_graph_get_meta(g, "prune.sparsity");
        CHECK(v && fabs(atof(v) - 0.5) < 0.001);
        nne_graph_free(g);
    }
    /* The same run in slices: stopped after step 2 (between two mask updates), resumed. */
    snprintf(args, sizeof args, "train --init m.nne -o r.nne --steps 8 %s %s --stop-after 2", k_run,
             k_sched);
    EXPECT_RC(args, 0);
    EXPECT_RC("train --resume r.ckpt --prune-schedule 0.9", 2);
    CHECK(strstr(nne_cli_err, "conflicts") != NULL);
    EXPECT_RC("train --resume r.ckpt --init m.nne", 2);
    EXPECT_RC("train --resume r.ckpt --stop-after 3 -q", 0);
    EXPECT_RC("train --resume r.ckpt -q", 0);
    nne_graph *a = load("s.nne"), *b = load("r.nne");
    bool same = a && b && a->n_tensors == b->n_tensors;
    for (int32_t i = 0; same && i < a->n_tensors; i++) {
        const nne_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (x->kind == NNE_TENSOR_CONSTANT)
            same = nne_tensor_nbytes(x) == nne_tensor_nbytes(y) &&
                   memcmp(x->data, y->data, nne_tensor_nbytes(x)) == 0;
    }
    CHECK_MSG(same, "resumed pruned run differs from the uninterrupted one");
    nne_graph_free(a);
    nne_graph_free(b);
}

int main(void) {
    nne_cli_setup("prune-cli");
    nne_cli_make_images("data", 3);
    nne_cli_make_cae_seed("m.nne", 512, 768, 777u);
    NNE_RUN(test_usage);
    NNE_RUN(test_channel);
    NNE_RUN(test_magnitude);
    NNE_RUN(test_train_init);
    NNE_RUN(test_train_prune_schedule);
    nne_cli_cleanup();
    return nne_test_summary();
}
