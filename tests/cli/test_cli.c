/* End-to-end tests of the nnedge CLI: exit codes, messages, outputs. The binary's path comes
 * from the NNEDGE_BIN environment variable (set by CTest). */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_util.h"

static void test_top_level(void) {
    EXPECT_RC("", 2);
    CHECK(strstr(nne_cli_err, "usage") != NULL);
    EXPECT_RC("--help", 0);
    CHECK(strstr(nne_cli_out, "info") && strstr(nne_cli_out, "metrics"));
    EXPECT_RC("--version", 0);
    EXPECT_RC("frobnicate", 2);
    CHECK(strstr(nne_cli_err, "unknown command 'frobnicate'") != NULL);
    EXPECT_RC("help info", 0);
    CHECK(strstr(nne_cli_out, "usage: nnedge info") != NULL);
}

static void test_info(void) {
    EXPECT_RC("info cae-seed", 0);
    /* Per-layer workloads of the paper's Table 3 and the encoder total. */
    const char *want[] = {"675.060",        "1788.420", "3530.097",      "1741.824",
                          "214.843",        "7950.245", "3,975,122,304", "conv2d_transpose_5",
                          "[1, 62, 94, 32]"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(strstr(nne_cli_out, want[i]) != NULL, "missing '%s'", want[i]);
    EXPECT_RC("info cae-seed --json", 0);
    CHECK(strstr(nne_cli_out, "\"macs\": 3975122304") != NULL);
    CHECK(strstr(nne_cli_out, "\"name\": \"cae-seed-decoder\"") != NULL);
    CHECK(nne_cli_out[0] == '{');
    EXPECT_RC("info --list", 0);
    CHECK(strstr(nne_cli_out, "cae-seed-encoder") != NULL);
    EXPECT_RC("info", 2);
    EXPECT_RC("info cae-seed --bogus", 2);
    CHECK(strstr(nne_cli_err, "unknown option '--bogus'") != NULL);
    EXPECT_RC("info cae-seed extra", 2);
    EXPECT_RC("info /nonexistent/model.nne", 1);
    CHECK(strstr(nne_cli_err, "/nonexistent/model.nne") != NULL);
    EXPECT_RC("info --help", 0);
    /* A file that is not a model. */
    EXPECT_RC("info samples/wiki-crop.png", 1);
    CHECK(strstr(nne_cli_err, "wiki-crop.png") != NULL);
}

static void test_metrics(void) {
    EXPECT_RC("metrics samples/wiki-crop.png samples/wiki-crop-q30.png", 0);
    CHECK(strstr(nne_cli_out, "PSNR") != NULL);
    EXPECT_RC("metrics samples/wiki-crop.png samples/wiki-crop.png --json", 0);
    CHECK(strstr(nne_cli_out, "\"mse\"") != NULL);
    EXPECT_RC("metrics samples/wiki-crop.png", 2);
    EXPECT_RC("metrics samples/wiki-crop.png /nonexistent.png", 1);
    CHECK(strstr(nne_cli_err, "/nonexistent.png") != NULL);
    EXPECT_RC("metrics --help", 0);
}

int main(void) {
    nne_cli_setup("cli");
    NNE_RUN(test_top_level);
    NNE_RUN(test_info);
    NNE_RUN(test_metrics);
    nne_cli_cleanup();
    return nne_test_summary();
}
