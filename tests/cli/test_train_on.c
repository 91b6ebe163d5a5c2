/* scripts/train_on.sh end to end on tiny models: a rung of mbt2018-mean at 8,8 channels is
 * trained here for 2 steps on the sample image (its log the "shipped" one), then trained on
 * by the script for 3 steps. Checks that the script reads the rung's lambda and channels from
 * the model, replaces the shipped model (stored in f16, smaller than the trainer's f32 file)
 * and its log only when the last validation loss went down, leaves everything alone with
 * SHIP=0 or a loss that did not go down, does not train a finished rung again, starts over a
 * rung whose run died before its first checkpoint, refuses a second instance on the same work
 * folder, and refuses bad arguments and settings with exit 2 before training anything. No shared
 * data needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli_util.h"

/* Run the script from the source tree with the test's folders; extra: more VAR=value
 * settings. Returns its exit code; stdout in tmp/script.out, stderr in tmp/script.err. */
static int script(const char *extra, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && NNEDGE='%s' MODELS='%s/models' WORK='%s/work' DATA='%s/data' "
             "VAL='%s/data' STEPS=3 BATCH=1 CROP=64 VAL_EVERY=3 MATMUL=f32 JOBS=2 %s "
             "bash scripts/train_on.sh %s >'%s/script.out' 2>'%s/script.err'",
             nne_test_source_dir(), nne_cli_bin, nne_cli_tmp, nne_cli_tmp, nne_cli_tmp, nne_cli_tmp,
             extra, args, nne_cli_tmp, nne_cli_tmp);
    const int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

static char *slurp(const char *rel) {
    size_t n;
    return (char *)nne_test_read_file(nne_cli_tmp_path(rel), &n);
}

static long file_size(const char *rel) {
    struct stat st;
    return stat(nne_cli_tmp_path(rel), &st) == 0 ? (long)st.st_size : -1;
}

/* Rewrite the val_loss (5th column) of every validated row of a log to `v`. */
static void set_val_loss(const char *rel, const char *v) {
    char *s = slurp(rel);
    CHECK(s != NULL);
    if (!s) return;
    FILE *f = fopen(nne_cli_tmp_path(rel), "w");
    CHECK(f != NULL);
    if (!f) {
        free(s);
        return;
    }
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        char *c[8] = {0};
        int n = 0;
        for (char *p = line; n < 8 && p; n++) {
            c[n] = p;
            p = strchr(p, ',');
            if (p) *p++ = 0;
        }
        if (n >= 6 && strcmp(c[0], "step") != 0 && c[4][0]) c[4] = (char *)v;
        for (int k = 0; k < n; k++) fprintf(f, "%s%s", k ? "," : "", c[k]);
        fputc('\n', f);
    }
    fclose(f);
    free(s);
}

/* A fresh "shipped" rung q3 (2 steps from the seed) in tmp/models, and no work folder. */
static void shipped_rung(void) {
    EXPECT_RC("train --model mbt2018-mean --channels 8,8 --lambda 0.01 --data %T/data "
              "--val %T/data --steps 2 --batch 1 --crop 64 --val-every 2 --threads 1 -q --force "
              "-o %T/models/mbt2018-mean-q3.nne --log %T/models/mbt2018-mean-q3.csv",
              0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s/work' && cp '%s/models/mbt2018-mean-q3.nne' '%s/orig.nne'", nne_cli_tmp,
             nne_cli_tmp, nne_cli_tmp);
    CHECK(system(cmd) == 0);
}

static void test_replaces_when_better(void) {
    shipped_rung();
    set_val_loss("models/mbt2018-mean-q3.csv", "1e9"); /* any new loss is lower */
    CHECK(script("", "3") == 0);
    char *sum = slurp("work/summary.txt");
    CHECK(sum && strstr(sum, "q3 1e9 ") && strstr(sum, " yes"));
    free(sum);
    char *log = slurp("work/train.log");
    CHECK(log && strstr(log, "lambda 0.01, channels 8,8, 3 steps") && strstr(log, "--init ") &&
          strstr(log, "--matmul f32"));
    free(log);
    CHECK(nne_cli_tmp_exists("work/q3.init.nne") &&
          nne_cli_same_files("work/q3.init.nne", "orig.nne"));
    CHECK(nne_cli_same_files("work/q3.csv", "models/mbt2018-mean-q3.csv"));
    CHECK(!nne_cli_same_files("models/mbt2018-mean-q3.nne", "orig.nne"));
    CHECK(nne_cli_same_files("work/q3.f16.nne", "models/mbt2018-mean-q3.nne"));
    CHECK(file_size("models/mbt2018-mean-q3.nne") < file_size("work/q3.nne")); /* f16 */
    EXPECT_RC("info %T/models/mbt2018-mean-q3.nne", 0);
    EXPECT_OUT("train.steps: 3");
    EXPECT_OUT("train.lambda: 0.01");

    /* A finished rung is not trained again: the rerun only compares (now equal: kept). */
    CHECK(script("", "3") == 0);
    log = slurp("work/train.log");
    CHECK(log && strstr(log, "not trained again"));
    free(log);
    sum = slurp("work/summary.txt");
    CHECK(sum && strstr(sum, "q3 ") && strstr(sum, " no"));
    free(sum);
}

static void test_keeps_when_not_better(void) {
    shipped_rung();
    set_val_loss("models/mbt2018-mean-q3.csv", "0"); /* nothing is lower */
    char *before = slurp("models/mbt2018-mean-q3.csv");
    CHECK(script("", "3:4") == 0);
    char *sum = slurp("work/summary.txt");
    CHECK(sum && strstr(sum, "q3 0 ") && strstr(sum, " no"));
    free(sum);
    char *log = slurp("work/train.log");
    CHECK(log && strstr(log, "4 steps"));
    free(log);
    CHECK(nne_cli_same_files("models/mbt2018-mean-q3.nne", "orig.nne"));
    char *after = slurp("models/mbt2018-mean-q3.csv");
    CHECK(before && after && strcmp(before, after) == 0);
    free(before), free(after);

    /* SHIP=0 reports an improvement without acting on it. */
    shipped_rung();
    set_val_loss("models/mbt2018-mean-q3.csv", "1e9");
    CHECK(script("SHIP=0", "3") == 0);
    sum = slurp("work/summary.txt");
    CHECK(sum && strstr(sum, "no (SHIP=0)"));
    free(sum);
    CHECK(nne_cli_same_files("models/mbt2018-mean-q3.nne", "orig.nne"));
}

/* A run that died before its first checkpoint leaves a log and nothing to resume from: the
 * rerun starts that rung over, its log kept aside. A second instance on the same work folder
 * is refused while the first holds the lock. */
static void test_orphan_log_and_lock(void) {
    shipped_rung();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/work' && echo 'step,stale' >'%s/work/q3.csv'",
             nne_cli_tmp, nne_cli_tmp);
    CHECK(system(cmd) == 0);
    CHECK(script("SHIP=0", "3") == 0);
    char *orphan = slurp("work/q3.csv.orphan");
    CHECK(orphan && strcmp(orphan, "step,stale\n") == 0);
    free(orphan);
    char *log = slurp("work/train.log");
    CHECK(log && strstr(log, "moved to q3.csv.orphan, starting over"));
    free(log);
    CHECK(nne_cli_tmp_exists("work/q3.nne"));

    /* The lock: held by flock(1) around a second run of the script. */
    snprintf(cmd, sizeof cmd, "flock '%s/work/lock' true", nne_cli_tmp);
    if (system(cmd) != 0) {
        fprintf(stderr, "  (no flock(1): lock check skipped)\n");
        return;
    }
    char extra[512];
    snprintf(extra, sizeof extra, "flock '%s/work/lock' env", nne_cli_tmp);
    CHECK(script(extra, "3") == 2);
    char *err = slurp("script.err");
    CHECK_MSG(err && strstr(err, "another train_on.sh is running"), "stderr: %s",
              err ? err : "(none)");
    free(err);
}

static void test_usage(void) {
    const struct {
        const char *extra, *args, *msg;
    } bad[] = {
        {"", "42", "mbt2018-mean-q42.nne not found"},
        {"", "x", "N or N:STEPS"},
        {"", "3:0", "STEPS must be a positive integer"},
        {"STEPS=abc", "3", "STEPS=abc"},
        {"JOBS=0", "3", "JOBS=0"},
        {"MATMUL=fp8", "3", "MATMUL=fp8"},
        {"SHIP=2", "3", "SHIP=2"},
        {"QUANT_PROXY=ste", "3", "QUANT_PROXY=ste"},
        {"KIND=bmshj2018-factorized", "", "no "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(script(bad[i].extra, bad[i].args) == 2, "%s %s: not exit 2", bad[i].extra,
                  bad[i].args);
        char *err = slurp("script.err");
        CHECK_MSG(err && strstr(err, bad[i].msg), "%s %s: stderr %s", bad[i].extra, bad[i].args,
                  err ? err : "(none)");
        free(err);
    }
    CHECK(!nne_cli_tmp_exists("work")); /* nothing started */
}

int main(void) {
    nne_cli_setup("train_on");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/data' '%s/models' && cp '%s/samples/wiki-crop.png' '%s/data/'",
             nne_cli_tmp, nne_cli_tmp, nne_test_source_dir(), nne_cli_tmp);
    CHECK(system(cmd) == 0);
    NNE_RUN(test_usage);
    NNE_RUN(test_replaces_when_better);
    NNE_RUN(test_keeps_when_not_better);
    NNE_RUN(test_orphan_log_and_lock);
    if (nne_test_checks_failed == 0)
        nne_cli_cleanup();
    else
        fprintf(stderr, "kept %s for a look\n", nne_cli_tmp);
    return nne_test_summary();
}
