/* End-to-end tests of the nnedge CLI: exit codes, messages, outputs. The binary's path comes
 * from the NNEDGE_BIN environment variable (set by CTest). */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static const char *g_bin;
static char g_out[1 << 20], g_err[1 << 16];
static char g_tmp[256];

/* Run "nnedge ARGS" (a shell fragment), capture stdout/stderr, return the exit code. */
static int run(const char *args) {
    char cmd[4096], po[300], pe[300];
    snprintf(po, sizeof po, "%s/out.txt", g_tmp);
    snprintf(pe, sizeof pe, "%s/err.txt", g_tmp);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s' 2>'%s' </dev/null", nne_test_source_dir(),
             g_bin, args, po, pe);
    int st = system(cmd);
    size_t n;
    unsigned char *o = nne_test_read_file(po, &n);
    snprintf(g_out, sizeof g_out, "%s", o ? (char *)o : "");
    nne_free(o);
    unsigned char *e = nne_test_read_file(pe, &n);
    snprintf(g_err, sizeof g_err, "%s", e ? (char *)e : "");
    nne_free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define EXPECT_RC(args, rc)                                                                        \
    do {                                                                                           \
        int r_ = run(args);                                                                        \
        CHECK_MSG(r_ == (rc), "'nnedge %s' exited %d, want %d; stderr: %s", args, r_, rc, g_err);  \
    } while (0)

static void test_top_level(void) {
    EXPECT_RC("", 2);
    CHECK(strstr(g_err, "usage") != NULL);
    EXPECT_RC("--help", 0);
    CHECK(strstr(g_out, "info") && strstr(g_out, "metrics"));
    EXPECT_RC("--version", 0);
    EXPECT_RC("frobnicate", 2);
    CHECK(strstr(g_err, "unknown command 'frobnicate'") != NULL);
    EXPECT_RC("help info", 0);
    CHECK(strstr(g_out, "usage: nnedge info") != NULL);
}

static void test_info(void) {
    EXPECT_RC("info cae-seed", 0);
    /* Per-layer workloads of the paper's Table 3 and the encoder total. */
    const char *want[] = {"675.060",        "1788.420", "3530.097",      "1741.824",
                          "214.843",        "7950.245", "3,975,122,304", "conv2d_transpose_5",
                          "[1, 62, 94, 32]"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(strstr(g_out, want[i]) != NULL, "missing '%s'", want[i]);
    EXPECT_RC("info cae-seed --json", 0);
    CHECK(strstr(g_out, "\"macs\": 3975122304") != NULL);
    CHECK(strstr(g_out, "\"name\": \"cae-seed-decoder\"") != NULL);
    CHECK(g_out[0] == '{');
    EXPECT_RC("info --list", 0);
    CHECK(strstr(g_out, "cae-seed-encoder") != NULL);
    EXPECT_RC("info", 2);
    EXPECT_RC("info cae-seed --bogus", 2);
    CHECK(strstr(g_err, "unknown option '--bogus'") != NULL);
    EXPECT_RC("info cae-seed extra", 2);
    EXPECT_RC("info /nonexistent/model.nne", 1);
    CHECK(strstr(g_err, "/nonexistent/model.nne") != NULL);
    EXPECT_RC("info --help", 0);
    /* A file that is not a model. */
    EXPECT_RC("info samples/wiki-crop.png", 1);
    CHECK(strstr(g_err, "wiki-crop.png") != NULL);
}

static void test_metrics(void) {
    EXPECT_RC("metrics samples/wiki-crop.png samples/wiki-crop-q30.png", 0);
    CHECK(strstr(g_out, "PSNR") != NULL);
    EXPECT_RC("metrics samples/wiki-crop.png samples/wiki-crop.png --json", 0);
    CHECK(strstr(g_out, "\"mse\"") != NULL);
    EXPECT_RC("metrics samples/wiki-crop.png", 2);
    EXPECT_RC("metrics samples/wiki-crop.png /nonexistent.png", 1);
    CHECK(strstr(g_err, "/nonexistent.png") != NULL);
    EXPECT_RC("metrics --help", 0);
}

int main(void) {
    g_bin = getenv("NNEDGE_BIN");
    if (!g_bin || access(g_bin, X_OK) != 0) nne_test_skip("NNEDGE_BIN not set or not executable");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/nnedge-cli-XXXXXX");
    if (!mkdtemp(g_tmp)) nne_test_skip("cannot create a temporary directory");
    NNE_RUN(test_top_level);
    NNE_RUN(test_info);
    NNE_RUN(test_metrics);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    return nne_test_summary();
}
