/* End-to-end tests of the DPU subcommands: compile, disasm, profile, dse. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "dpu_qgraph.h"
#include "nnedge/dpu.h"
#include "nnedge/file.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/qops.h"

static void test_compile_disasm(void) {
    EXPECT_RC("compile cae-seed --arch B512 -o %T/enc.dpu -q", 0);
    CHECK(nne_cli_tmp_exists("enc.dpu"));
    EXPECT_RC("disasm %T/enc.dpu", 0);
    const char *want[] = {"arch B512", "conv2d_1", "conv2d_5", "LOAD weight[",
                          "CONV",      "SAVE",     "prelu",    " END\n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(strstr(nne_cli_out, want[i]) != NULL, "disasm lacks '%s'", want[i]);
    /* --disasm prints the same program. */
    EXPECT_RC("compile cae-seed --arch B512 --disasm -q", 0);
    CHECK(strstr(nne_cli_out, "arch B512") && strstr(nne_cli_out, "conv2d_3"));
    EXPECT_RC("compile cae-seed --arch B512 -o %T/enc.json.dpu --json -q", 0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"instructions\""));
    /* A compiled file profiles with its own architecture. */
    EXPECT_RC("profile %T/enc.dpu -q", 0);
    CHECK(strstr(nne_cli_out, "DPU B512") != NULL);
    /* Errors: no output, unknown arch (usage, exit 2), not a program file, corrupt file. */
    EXPECT_RC("compile cae-seed", 2);
    EXPECT_ERR("-o OUT.dpu is required");
    EXPECT_RC("compile cae-seed --arch B999 -o %T/x.dpu", 2);
    EXPECT_ERR("unknown DPU architecture 'B999'");
    EXPECT_ERR("B4096");
    CHECK(!nne_cli_tmp_exists("x.dpu"));
    /* The decoder compiles too (transposed convolutions as stride phases), one layer per
     * node. */
    EXPECT_RC("compile cae-seed --part decoder -o %T/dec.dpu -q", 0);
    EXPECT_RC("disasm %T/dec.dpu", 0);
    CHECK(strstr(nne_cli_out, "5 layers") && strstr(nne_cli_out, "conv2d_transpose_5") &&
          !strstr(nne_cli_out, "conv2d_1"));
    EXPECT_RC("compile cae-seed --part middle -o %T/x.dpu -q", 2);
    EXPECT_ERR("--part 'middle'");
    EXPECT_RC("disasm samples/wiki-crop.png", 1);
    EXPECT_ERR("bad magic");
    EXPECT_RC("disasm %T/missing.dpu", 1);
    EXPECT_RC("compile %T/enc.dpu -o %T/again.dpu", 2);
}

static void test_profile(void) {
    EXPECT_RC("profile cae-seed --arch B1024 --clock 150 --board ultra96 --paper", 0);
    const char *want[] = {"ID",         "NodeName",    "Workload(MOP)", "Mem(MB)",  "RunTime(ms)",
                          "Perf(GOPS)", "Utilization", "MB/S",          "conv2d_1", "conv2d_5",
                          "675.060",    "3530.097",    "7950.245",      "Latency",  "FPS",
                          "16.89 FPS",  "1 core"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(strstr(nne_cli_out, want[i]) != NULL, "profile lacks '%s'", want[i]);
    /* Five layer rows, numbered 1..5 as in the paper. */
    CHECK(strstr(nne_cli_out, "\n5   conv2d_5") != NULL);
    EXPECT_ERR("encoder");
    EXPECT_RC("profile cae-seed --arch B2304 --json --cores 2 --threads 4", 0);
    CHECK_MSG(nne_cli_json_valid(nne_cli_out), "not JSON: %.200s", nne_cli_out);
    CHECK(strstr(nne_cli_out, "\"runtime_ms\"") && strstr(nne_cli_out, "\"fps\"") &&
          strstr(nne_cli_out, "\"cores\": 2") && strstr(nne_cli_out, "\"threads\": 4"));
    CHECK(nne_cli_err[0] == 0); /* --json: no notes on stderr */
    /* A board file. */
    FILE *f = fopen(nne_cli_tmp_path("fast.board"), "w");
    if (f) {
        fputs("base = ultra96\nname = fast96\nclock_mhz = 300\n", f);
        fclose(f);
    }
    EXPECT_RC("profile cae-seed --arch B512 --board %T/fast.board -q", 0);
    CHECK(strstr(nne_cli_out, "fast96") && strstr(nne_cli_out, "300 MHz fabric"));
    f = fopen(nne_cli_tmp_path("bad.board"), "w");
    if (f) {
        fputs("clock_mhz = soon\n", f);
        fclose(f);
    }
    EXPECT_RC("profile cae-seed --board %T/bad.board", 1);
    EXPECT_ERR("line 1");
    EXPECT_RC("profile cae-seed --arch b1024x", 2);
    EXPECT_ERR("unknown DPU architecture");
    EXPECT_RC("profile cae-seed --board pynq", 2);
    EXPECT_ERR("unknown board 'pynq'");
    EXPECT_RC("profile cae-seed --clock fast", 2);
    EXPECT_RC("profile cae-seed --arch B4096 --paper", 2);
    EXPECT_ERR("B512, B1024");
    EXPECT_RC("profile --help", 0);
}

static void test_model_file(void) {
    /* A full cae-seed model file (as the trainer writes it, here 64x96 with zero weights) is
     * compiled by its encoder; an encoder file as it is. */
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(64, 96, NNE_CAE_FULL, &g));
    if (!g) return;
    CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path("full.nne")));
    nne_graph_free(g);
    CHECK_OK(nne_model_cae_seed(64, 96, NNE_CAE_ENCODER, &g));
    if (!g) return;
    CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path("enc.nne")));
    nne_graph_free(g);
    EXPECT_RC("profile %T/full.nne --arch B512", 0);
    EXPECT_ERR("its encoder");
    CHECK(strstr(nne_cli_out, "conv2d_5") && !strstr(nne_cli_out, "transpose"));
    static char full[sizeof nne_cli_out];
    memcpy(full, nne_cli_out, sizeof full);
    EXPECT_RC("profile %T/enc.nne --arch B512", 0);
    CHECK(nne_cli_err[0] == 0);
    /* Same layers, same times (the first line names the graph, the rest must agree). */
    CHECK(strcmp(strchr(full, '\n'), strchr(nne_cli_out, '\n')) == 0);
    EXPECT_RC("compile %T/enc.nne --arch B2304 -o %T/enc2304.dpu -q", 0);
    EXPECT_RC("disasm %T/enc2304.dpu", 0);
    CHECK(strstr(nne_cli_out, "arch B2304") != NULL);
}

static void test_dse(void) {
    EXPECT_RC("dse cae-seed --fps 25 -q", 0);
    CHECK(strstr(nne_cli_out, "smallest: B2304") != NULL);
    CHECK(strstr(nne_cli_out, "compute") != NULL);
    EXPECT_RC("dse cae-seed --fps 1000 --json -q", 0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"choice\": null"));
    EXPECT_RC("dse cae-seed", 2);
    EXPECT_ERR("--fps");
}

/* nnedge run --backend dpu-sim: a pow2-quantized cae-seed encoder (random weights) as a model
 * file and as a compiled program; the output equals the library's simulation of the same
 * quantized image. */
static void test_run(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 5);
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(24, 32, NNE_CAE_ENCODER, &g));
    if (!g) return;
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(qg_quantize_random(g, &r));
    CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path("q.nne")));
    nne_image img;
    CHECK_OK(nne_image_alloc(&img, 32, 24, 3));
    for (int i = 0; i < 32 * 24 * 3; i++) img.data[i] = (uint8_t)nne_test_rng_int(&r, 0, 255);
    CHECK_OK(nne_image_save(nne_cli_tmp_path("in.png"), &img));
    EXPECT_RC("compile %T/q.nne --arch B512 -o %T/q.dpu -q", 0);
    EXPECT_RC("run %T/q.dpu --backend dpu-sim --input %T/in.png -o %T/out.npy --json", 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    EXPECT_OUT("\"channels\": 32");
    /* The same through the library. */
    nne_dpu_program p;
    CHECK_OK(nne_dpu_program_read_file(nne_cli_tmp_path("q.dpu"), &p));
    const size_t n_in = 24 * 32 * 3, n_out = p.region_size[NNE_DPU_REG_OUTPUT];
    int8_t *x = malloc(n_in), *y = malloc(n_out), *ref = malloc(n_out);
    for (size_t i = 0; i < n_in; i++)
        x[i] = (int8_t)nne_quantize_value(img.data[i] / 255.0f, ldexpf(1.0f, -p.fp_input), 0, -128,
                                          127, true);
    CHECK_OK(nne_dpu_sim_run(&p, x, n_in, y, n_out, NULL));
    CHECK_OK(qg_reference(g, x, ref));
    CHECK(memcmp(y, ref, n_out) == 0);
    uint8_t *f = NULL;
    size_t fn = 0;
    CHECK_OK(nne_file_read(nne_cli_tmp_path("out.npy"), 1 << 20, &f, &fn));
    char hdr[119] = {0};
    if (f && fn >= 128) memcpy(hdr, f + 10, 118);
    CHECK(f && fn == 128 + n_out && !memcmp(f, "\x93NUMPY", 6) && !memcmp(f + 128, y, n_out) &&
          strstr(hdr, "'descr': '|i1'") && strstr(hdr, "'shape': (1, 1, 2, 32)"));
    nne_free(f);
    /* A model file compiles on the fly; PNG output: the channels side by side. */
    EXPECT_RC("run %T/q.nne --backend dpu-sim --arch B4096 --input %T/in.png -o %T/out.png -q", 0);
    nne_image o;
    CHECK_OK(nne_image_load(nne_cli_tmp_path("out.png"), NNE_IMAGE_LOAD_ANY, &o));
    CHECK(o.width == 2 * 32 && o.height == 1 && o.channels == 1 &&
          o.data[1] == (uint8_t)(y[32 + 0] + 128)); /* pixel (0, 1), channel 0 */
    nne_image_free(&o);
    /* Errors: f32 model (timing only), wrong image size, no backend. */
    EXPECT_RC("run cae-seed --backend dpu-sim --part encoder --input %T/in.png -o %T/x.npy -q", 1);
    EXPECT_ERR("timing-only");
    EXPECT_RC("run %T/q.dpu --backend dpu-sim --input samples/wiki-crop.png -o %T/x.npy", 1);
    EXPECT_ERR("takes 32x24");
    EXPECT_RC("run %T/q.dpu --input %T/in.png -o %T/x.npy", 2);
    EXPECT_ERR("dpu-sim");
    CHECK(!nne_cli_tmp_exists("x.npy"));
    free(x);
    free(y);
    free(ref);
    nne_image_free(&img);
    nne_dpu_program_free(&p);
    nne_graph_free(g);
}

int main(void) {
    nne_cli_setup("dpu");
    NNE_RUN(test_run);
    NNE_RUN(test_compile_disasm);
    NNE_RUN(test_profile);
    NNE_RUN(test_model_file);
    NNE_RUN(test_dse);
    nne_cli_cleanup();
    return nne_test_summary();
}
