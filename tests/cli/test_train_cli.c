/* End-to-end tests of `nnedge train`: a tiny run on generated images, provenance, exact
 * resume after an interruption, usage errors, guards (missing data, existing output, Kodak).
 * The binary's path comes from NNEDGE_BIN (set by CTest). */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_fixtures.h"
#include "cli_util.h"
#include "nnedge/gemm.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/train.h"

/* Every command of this test runs inside the temporary folder. */
#undef EXPECT_RC
#define EXPECT_RC(args, rc) EXPECT_RC_IN(nne_cli_tmp, args, rc)

/* A folder of small images: textured gradients, mixed sizes and formats, about 40 x 36
 * pixels times `scale`. */
static void make_images(const char *dir, int n, int seed, int scale) {
    mkdir(nne_cli_tmp_path(dir), 0755);
    nne_test_rng r;
    nne_test_rng_seed(&r, (unsigned long long)seed);
    for (int i = 0; i < n; i++) {
        nne_image img;
        const int w = (40 + 7 * (i % 3)) * scale, h = (36 + 5 * (i % 2)) * scale;
        if (nne_image_alloc(&img, w, h, 3) != NNE_OK) return;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = img.data + ((size_t)y * w + x) * 3;
                p[0] = (uint8_t)(x * 5 + i * 20);
                p[1] = (uint8_t)(y * 6);
                p[2] = (uint8_t)nne_test_rng_int(&r, 0, 255);
            }
        char rel[64];
        snprintf(rel, sizeof rel, "%s/img%02d.%s", dir, i, i % 2 ? "ppm" : "png");
        CHECK_OK(nne_image_save(nne_cli_tmp_path(rel), &img));
        nne_image_free(&img);
    }
}

static void test_usage(void) {
    EXPECT_RC("train --help", 0);
    CHECK(strstr(nne_cli_out, "usage: nnedge train") != NULL);
    EXPECT_RC("train", 2);
    CHECK(strstr(nne_cli_err, "--data") != NULL);
    EXPECT_RC("train --data data", 2);
    CHECK(strstr(nne_cli_err, "-o") != NULL);
    EXPECT_RC("train --data data -o m.nne --steps 0", 2);
    CHECK(strstr(nne_cli_err, "--steps 0") != NULL);
    EXPECT_RC("train --data data -o m.nne --steps 10 --epochs 1", 2);
    EXPECT_RC("train --data data -o m.nne --batch x", 2);
    EXPECT_RC("train --data data -o m.nne --crop 8", 2);
    EXPECT_RC("train --data data -o m.nne --optimizer rmsprop", 2);
    EXPECT_RC("train --data data -o m.nne --lr-schedule linear", 2);
    EXPECT_RC("train --data data -o m.nne --loss l1", 2);
    EXPECT_RC("train --data data -o m.nne --model resnet", 2);
    EXPECT_RC("train --data data -o m.nne --bogus", 2);
    CHECK(strstr(nne_cli_err, "unknown option '--bogus'") != NULL);
    EXPECT_RC("train --data data -o m.nne extra", 2);
    EXPECT_RC("help train", 0);
    EXPECT_RC("--help", 0);
    CHECK(strstr(nne_cli_out, "train") != NULL);
}

static void test_guards(void) {
    EXPECT_RC("train --data nonexistent-folder -o m.nne --steps 2", 1);
    CHECK(strstr(nne_cli_err, "nonexistent-folder") != NULL);
    EXPECT_RC("train --data data --val no-val-here -o m.nne --steps 2", 1);
    CHECK(strstr(nne_cli_err, "no-val-here") != NULL);
    /* Kodak, even in a subfolder, as --data or --val. */
    mkdir(nne_cli_tmp_path("kodakish"), 0755);
    mkdir(nne_cli_tmp_path("kodakish/sub"), 0755);
    FILE *f = fopen(nne_cli_tmp_path("kodakish/sub/kodim07.png"), "wb");
    if (f) fclose(f);
    EXPECT_RC("train --data kodakish -o m.nne --steps 2", 2);
    CHECK(strstr(nne_cli_err, "Kodak") && strstr(nne_cli_err, "kodim07.png"));
    EXPECT_RC("train --data data --val kodakish -o m.nne --steps 2", 2);
    CHECK(strstr(nne_cli_err, "Kodak") != NULL);
    /* No output inside the data. */
    EXPECT_RC("train --data data -o data/m.nne --steps 2", 2);
    CHECK(strstr(nne_cli_err, "data folder") != NULL);
    /* An empty folder. */
    mkdir(nne_cli_tmp_path("empty"), 0755);
    EXPECT_RC("train --data empty -o m.nne --steps 2 -q", 1);
    CHECK(strstr(nne_cli_err, "empty") != NULL);
    /* Images smaller than the crop are skipped; none left is an error. */
    EXPECT_RC("train --data data -o m.nne --steps 2 --crop 64 -q", 1);
    CHECK(strstr(nne_cli_err, "no usable images") != NULL);
    CHECK(!nne_cli_tmp_exists("m.nne"));
}

static const char *k_small = "--steps 10 --crop 32 --batch 2 --val-every 5 --log-every 2 --seed 3";

static void test_run_and_provenance(void) {
    char args[1024];
    snprintf(args, sizeof args, "train --data data --val val -o a.nne --log a.csv %s", k_small);
    EXPECT_RC(args, 0);
    CHECK(nne_cli_tmp_exists("a.nne") && nne_cli_tmp_exists("a.ckpt") &&
          nne_cli_tmp_exists("a.best.nne") && nne_cli_tmp_exists("a.csv"));
    nne_graph *g = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("a.nne"), &g));
    if (g) {
        const char *keys[] = {
            "train.data",   "train.val",  "train.steps",   "train.epochs",        "train.seed",
            "train.batch",  "train.crop", "train.loss",    "train.optimizer",     "train.lr",
            "train.commit", "train.date", "train.threads", "train.best_val_psnr", "source"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            CHECK_MSG(nne_graph_get_meta(g, keys[i]) != NULL, "missing metadata %s", keys[i]);
        const char *v = nne_graph_get_meta(g, "train.steps");
        CHECK(v && strcmp(v, "10") == 0);
        v = nne_graph_get_meta(g, "train.data");
        CHECK(v && strstr(v, "/data (6 images)") != NULL);
        v = nne_graph_get_meta(g, "train.seed");
        CHECK(v && strcmp(v, "3") == 0);
        v = nne_graph_get_meta(g, "train.batch");
        CHECK(v && strcmp(v, "2") == 0);
        nne_graph_free(g);
    }
    size_t n;
    unsigned char *csv = nne_test_read_file(nne_cli_tmp_path("a.csv"), &n);
    CHECK(csv &&
          strncmp((char *)csv, "step,epoch,lr,train_loss,val_loss,val_psnr,elapsed_s\n", 53) == 0);
    if (csv) {
        int lines = 0;
        for (size_t i = 0; i < n; i++) lines += csv[i] == '\n';
        CHECK_MSG(lines == 7, "%d CSV lines, want header + 6 rows (2 4 5 6 8 10)", lines);
        CHECK(strstr((char *)csv, "\n10,") != NULL);
    }
    nne_free(csv);
    EXPECT_RC("info a.nne", 0);
    CHECK(strstr(nne_cli_out, "conv2d_1") != NULL);
    CHECK(strstr(nne_cli_out, "\nmetadata:\n") && strstr(nne_cli_out, "\n  train.steps: 10\n"));
    EXPECT_RC("info a.nne --json", 0);
    CHECK(strstr(nne_cli_out, "\"meta\": {") && strstr(nne_cli_out, "\"train.steps\": \"10\""));
    /* Never overwrite. */
    snprintf(args, sizeof args, "train --data data -o a.nne %s", k_small);
    EXPECT_RC(args, 1);
    CHECK(strstr(nne_cli_err, "a.nne already exists") && strstr(nne_cli_err, "--force"));
    snprintf(args, sizeof args, "train --data data -o b.nne --log a.csv %s", k_small);
    EXPECT_RC(args, 1);
    CHECK(strstr(nne_cli_err, "a.csv already exists") != NULL);
    /* A checkpoint of another run is not clobbered by a fresh start. */
    snprintf(args, sizeof args, "train --data data -o b.nne --checkpoint a.ckpt %s", k_small);
    EXPECT_RC(args, 1);
    CHECK(strstr(nne_cli_err, "--resume a.ckpt") != NULL);
}

/* Largest |difference| between the constants of two model files (inf if they differ in
 * structure). */
static double max_weight_diff(const char *a, const char *b) {
    nne_graph *ga = NULL, *gb = NULL;
    double m = INFINITY;
    if (nne_model_read_file(nne_cli_tmp_path(a), &ga) == NNE_OK &&
        nne_model_read_file(nne_cli_tmp_path(b), &gb) == NNE_OK && ga->n_tensors == gb->n_tensors) {
        m = 0;
        for (int32_t i = 0; i < ga->n_tensors; i++) {
            const nne_tensor *x = &ga->tensors[i], *y = &gb->tensors[i];
            if (x->kind != NNE_TENSOR_CONSTANT || x->dtype != NNE_F32) continue;
            if (nne_tensor_nbytes(x) != nne_tensor_nbytes(y)) m = INFINITY;
            for (size_t k = 0; m < INFINITY && k < nne_tensor_nbytes(x) / 4; k++)
                m = fmax(m,
                         fabs((double)((const float *)x->data)[k] - ((const float *)y->data)[k]));
        }
    }
    nne_graph_free(ga);
    nne_graph_free(gb);
    return m;
}

/* Max |a - b| over the f32 constants of model a whose name starts with `prefix`, looked up by
 * name in model b (INFINITY if one is missing, of another size, or a file does not load). */
static double prefix_weight_diff(const char *a, const char *b, const char *prefix) {
    nne_graph *ga = NULL, *gb = NULL;
    double m = INFINITY;
    if (nne_model_read_file(nne_cli_tmp_path(a), &ga) == NNE_OK &&
        nne_model_read_file(nne_cli_tmp_path(b), &gb) == NNE_OK) {
        m = 0;
        int n = 0;
        for (int32_t i = 0; m < INFINITY && i < ga->n_tensors; i++) {
            const nne_tensor *x = &ga->tensors[i];
            if (x->kind != NNE_TENSOR_CONSTANT || x->dtype != NNE_F32 ||
                strncmp(x->name, prefix, strlen(prefix)) != 0)
                continue;
            const int32_t j = nne_graph_find_tensor(gb, x->name);
            if (j < 0 || nne_tensor_nbytes(&gb->tensors[j]) != nne_tensor_nbytes(x)) {
                m = INFINITY;
                break;
            }
            n++;
            const float *u = x->data, *v = gb->tensors[j].data;
            for (size_t k = 0; k < nne_tensor_nbytes(x) / 4; k++)
                m = fmax(m, fabs((double)u[k] - v[k]));
        }
        if (n == 0) m = INFINITY;
    }
    nne_graph_free(ga);
    nne_graph_free(gb);
    return m;
}

static void test_resume(void) {
    char args[1024];
    /* Uninterrupted reference. */
    const char *k_long = "--steps 40 --crop 36 --batch 2 --seed 5";
    snprintf(args, sizeof args, "train --data data -o ref.nne -q %s", k_long);
    EXPECT_RC(args, 0);
    /* The same run in slices: 4 steps, then 3, then the rest. */
    snprintf(args, sizeof args,
             "train --data data -o res.nne --log res.csv --log-every 1 %s "
             "--stop-after 4 -q",
             k_long);
    EXPECT_RC(args, 0);
    CHECK(nne_cli_tmp_exists("res.ckpt") && !nne_cli_tmp_exists("res.nne"));
    /* Settings come from the checkpoint; a conflicting one is refused. */
    EXPECT_RC("train --resume res.ckpt --batch 4", 2);
    CHECK(strstr(nne_cli_err, "--batch 4 conflicts") != NULL);
    EXPECT_RC("train --resume res.ckpt --stop-after 3", 0);
    CHECK(strstr(nne_cli_err, "continuing at step 4/40") &&
          strstr(nne_cli_err, "stopped at step 7/40"));
    EXPECT_RC("train --resume res.ckpt -q --batch 2 --lr 0.001", 0);
    CHECK(nne_cli_tmp_exists("res.nne"));
    size_t n;
    unsigned char *csv = nne_test_read_file(nne_cli_tmp_path("res.csv"), &n);
    CHECK(csv && n > 4 && strstr((char *)csv, "\n40,") != NULL);
    nne_free(csv);
    CHECK_MSG(nne_cli_same_model("ref.nne", "res.nne", NULL),
              "resumed model differs from the reference");
    /* Resuming a finished run only rewrites the model, which exists: refused. */
    EXPECT_RC("train --resume res.ckpt -q", 1);
    CHECK(strstr(nne_cli_err, "already exists") != NULL);
    /* A run given in epochs resumes too (6 images, batch 2: 3 steps per epoch). */
    EXPECT_RC("train --data data -o ep.nne --epochs 2 --crop 32 --batch 2 --stop-after 2", 0);
    CHECK(strstr(nne_cli_err, "6 steps") != NULL);
    EXPECT_RC("train --resume ep.ckpt --epochs 2", 0);
    CHECK(strstr(nne_cli_err, "continuing at step 2/6") != NULL);
    CHECK(nne_cli_tmp_exists("ep.nne"));
    /* Ctrl-C: a long run is stopped after its second step, writes a checkpoint, exits 130 and
     * says how to resume. */
    snprintf(args, sizeof args,
             "'%s' train --data data -o int.nne --log int.csv --log-every 1 --steps 1000000 "
             "--crop 36 --batch 2 & p=$!; i=0; while [ $i -lt 1000 ] && ! grep -q '^2,' int.csv "
             "2>/dev/null; do sleep 0.01; i=$((i+1)); done; kill -INT $p; wait $p",
             nne_cli_bin);
    char cmd[2048], pe[300];
    snprintf(pe, sizeof pe, "%s/err.txt", nne_cli_tmp);
    snprintf(cmd, sizeof cmd, "cd '%s' && ( %s ) 2>'%s'", nne_cli_tmp, args, pe);
    const int st = system(cmd);
    const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    unsigned char *e = nne_test_read_file(pe, &n);
    CHECK_MSG(rc == 130, "interrupted run exited %d: %s", rc, e ? (char *)e : "");
    CHECK(e && strstr((char *)e, "interrupted at step") &&
          strstr((char *)e, "resume with: nnedge train --resume int.ckpt"));
    nne_free(e);
    CHECK(nne_cli_tmp_exists("int.ckpt") && !nne_cli_tmp_exists("int.nne"));
    EXPECT_RC("train --resume int.ckpt --stop-after 1", 0);
    CHECK(strstr(nne_cli_err, "continuing at step") != NULL);
    /* Signals in bunches, as supervisors send them: SIGTERM, then SIGTERM again once the
     * first was handled (a group kill plus a script's trap forwarding it), and Ctrl-C then
     * SIGTERM. Both stop gracefully with a checkpoint; the exit status is the first
     * signal's. Only a second Ctrl-C kills at once. The run's steps (160 px crops, ~0.1 s)
     * outlast the 30 ms between the signals, so a second SIGTERM that killed would land. */
    static const struct {
        const char *name, *kills;
        int rc;
    } bunch[] = {{"tt", "kill -TERM $p; sleep 0.03; kill -TERM $p", 143},
                 {"it", "kill -INT $p; sleep 0.03; kill -TERM $p", 130}};
    for (size_t b = 0; b < sizeof bunch / sizeof bunch[0]; b++) {
        snprintf(args, sizeof args,
                 "'%s' train --data big -o %s.nne --log %s.csv --log-every 1 --steps 1000000 "
                 "--crop 160 --batch 2 & p=$!; i=0; while [ $i -lt 1000 ] && ! grep -q '^2,' "
                 "%s.csv 2>/dev/null; do sleep 0.01; i=$((i+1)); done; %s; wait $p",
                 nne_cli_bin, bunch[b].name, bunch[b].name, bunch[b].name, bunch[b].kills);
        snprintf(cmd, sizeof cmd, "cd '%s' && ( %s ) 2>'%s'", nne_cli_tmp, args, pe);
        const int st2 = system(cmd);
        const int rc2 = WIFEXITED(st2) ? WEXITSTATUS(st2) : -1;
        e = nne_test_read_file(pe, &n);
        CHECK_MSG(rc2 == bunch[b].rc && e && strstr((char *)e, "interrupted at step"),
                  "%s: exited %d (want %d): %s", bunch[b].kills, rc2, bunch[b].rc,
                  e ? (char *)e : "");
        nne_free(e);
        char ck_name[16];
        snprintf(ck_name, sizeof ck_name, "%s.ckpt", bunch[b].name);
        CHECK_MSG(nne_cli_tmp_exists(ck_name), "%s: no checkpoint", bunch[b].kills);
    }
    /* A damaged checkpoint is refused, naming it. */
    unsigned char *ck = nne_test_read_file(nne_cli_tmp_path("res.ckpt"), &n);
    if (ck) {
        ck[n / 2] ^= 1;
        FILE *f = fopen(nne_cli_tmp_path("bad.ckpt"), "wb");
        if (f) {
            fwrite(ck, 1, n, f);
            fclose(f);
        }
        nne_free(ck);
        EXPECT_RC("train --resume bad.ckpt -o other.nne -q", 1);
        CHECK(strstr(nne_cli_err, "bad.ckpt") && strstr(nne_cli_err, "CRC"));
    }
    EXPECT_RC("train --resume missing.ckpt", 1);
    CHECK(strstr(nne_cli_err, "missing.ckpt") != NULL);
}

/* A learned codec trains with the rate-distortion loss: val_bpp in the log, lambda and channels
 * in the provenance, exact resume (the quantization noise is replayed), usage errors. */
/* The meta value train.loss_border of model file `path` ("" if absent). */
static const char *loss_border_meta(const char *path, char *buf, size_t n) {
    nne_graph *g = NULL;
    buf[0] = 0;
    if (nne_model_read_file(nne_cli_tmp_path(path), &g) == NNE_OK) {
        const char *v = nne_graph_get_meta(g, "train.loss_border");
        snprintf(buf, n, "%s", v ? v : "");
    }
    nne_graph_free(g);
    return buf;
}

/* cae-seed's border (docs/models.md, "The border") is left out of the loss from step 0 in a
 * new run; a checkpoint from before it existed (no loss-border-from) switches at its resume
 * step and forgets its best validation, whose loss is not comparable. */
static void test_loss_border(void) {
    char buf[512];
    EXPECT_RC("train --data data --val val -o lb.nne --steps 6 --crop 32 --batch 2 --val-every 2 "
              "--seed 4 --stop-after 4 -q",
              0);
    nne_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    CHECK_OK(nne_checkpoint_read_file(nne_cli_tmp_path("lb.ckpt"), &ck));
    const char *from = nne_checkpoint_get(&ck, "loss-border-from");
    CHECK(from && strcmp(from, "0") == 0);
    CHECK(ck.best_step == 2 || ck.best_step == 4); /* validated at steps 2 and 4 */
    /* make it an old checkpoint: move the key to the end and write one entry fewer */
    const int32_t n_kv = ck.n_kv;
    for (int32_t i = 0; i < n_kv; i++)
        if (strcmp(ck.kv[i].key, "loss-border-from") == 0) {
            const nne_meta t = ck.kv[i];
            ck.kv[i] = ck.kv[n_kv - 1];
            ck.kv[n_kv - 1] = t;
            break;
        }
    ck.n_kv = n_kv - 1;
    CHECK_OK(nne_checkpoint_write_file(&ck, nne_cli_tmp_path("lb.ckpt")));
    ck.n_kv = n_kv; /* every entry is freed once */
    nne_checkpoint_clear(&ck);
    EXPECT_RC("train --resume lb.ckpt --stop-after 1 -q", 0);
    memset(&ck, 0, sizeof ck);
    CHECK_OK(nne_checkpoint_read_file(nne_cli_tmp_path("lb.ckpt"), &ck));
    from = nne_checkpoint_get(&ck, "loss-border-from");
    CHECK(from && strcmp(from, "4") == 0);
    CHECK(ck.best_step == -1); /* no validation since the switch */
    nne_checkpoint_clear(&ck);
    EXPECT_RC("train --resume lb.ckpt -q", 0);
    CHECK(strstr(loss_border_meta("lb.nne", buf, sizeof buf),
                 "last 3 rows and 3 columns of each 32x32 crop left out of the loss from step 4"));
    /* a fresh run: from step 0; a learned codec has no border */
    EXPECT_RC("train --data data -o lb0.nne --steps 2 --crop 32 --batch 2 -q", 0);
    CHECK(strstr(loss_border_meta("lb0.nne", buf, sizeof buf), "from step 0") != NULL);
}

static void test_rd_model(void) {
    EXPECT_RC("train --data data -o h.nne --model mbt2018-mean --crop 36", 2);
    CHECK(strstr(nne_cli_err, "multiple of 64") != NULL);
    EXPECT_RC("train --data data -o h.nne --model bmshj2018-factorized --loss mse --crop 32", 2);
    EXPECT_RC("train --data data -o h.nne --model bmshj2018-factorized --channels 8 --crop 32", 2);
    EXPECT_RC("train --data data -o h.nne --lambda 0.01", 2); /* cae-seed has no lambda */
    EXPECT_RC("train --data data -o h.nne --quant-proxy mixed", 2);
    EXPECT_RC("train --data data -o h.nne --model bmshj2018-factorized --crop 32 "
              "--quant-proxy round",
              2);
    CHECK(strstr(nne_cli_err, "--quant-proxy round") != NULL);
    /* --quant-proxy mixed: recorded, and the model runs as a codec like any other */
    EXPECT_RC("train --data data -o mx.nne --model bmshj2018-factorized --channels 6,8 "
              "--crop 32 --batch 2 --steps 2 --quant-proxy mixed -q",
              0);
    {
        nne_graph *mx = NULL;
        CHECK_OK(nne_model_read_file(nne_cli_tmp_path("mx.nne"), &mx));
        if (mx) {
            const char *v = nne_graph_get_meta(mx, "train.quant_proxy");
            CHECK(v && !strcmp(v, "mixed") && nne_graph_find_node(mx, "quantize_y_ste") >= 0);
            nne_graph_free(mx);
        }
        EXPECT_RC("compress data/img00.png -o mx.nnc --model mx.nne -q", 0);
        EXPECT_RC("decompress mx.nnc -o mx.png --model mx.nne -q", 0);
    }
    const char *k_rd = "--model bmshj2018-factorized --channels 6,8 --lambda 0.02 --crop 32 "
                       "--batch 2 --steps 8 --seed 3 --val data --val-every 4";
    char args[1024];
    snprintf(args, sizeof args, "train --data data -o rd.nne --log rd.csv -q %s", k_rd);
    EXPECT_RC(args, 0);
    size_t n;
    unsigned char *csv = nne_test_read_file(nne_cli_tmp_path("rd.csv"), &n);
    CHECK(csv && strstr((char *)csv, "elapsed_s,val_bpp\n") && strstr((char *)csv, "\n8,"));
    nne_free(csv);
    nne_graph *g = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("rd.nne"), &g));
    if (g) {
        const char *lam = nne_graph_get_meta(g, "train.lambda"),
                   *m = nne_graph_get_meta(g, "model.M");
        CHECK(lam && strcmp(lam, "0.02") == 0 && m && strcmp(m, "8") == 0);
        CHECK(g->n_outputs == 2);
        nne_graph_free(g);
    }
    snprintf(args, sizeof args, "train --data data -o rs.nne -q %s --stop-after 5", k_rd);
    EXPECT_RC(args, 0);
    EXPECT_RC("train --resume rs.ckpt --lambda 0.05", 2);
    EXPECT_RC("train --resume rs.ckpt -q --matmul f32", 0); /* f32: the run's own, no conflict */
    CHECK_MSG(nne_cli_same_model("rd.nne", "rs.nne", NULL),
              "resumed learned codec differs from the reference");
    /* the one change a resume allows: noise -> mixed proxy, from the checkpoint's step on
     * (recorded; the weights then differ from the all-noise run); not back */
    snprintf(args, sizeof args, "train --data data -o sw.nne -q %s --stop-after 5", k_rd);
    EXPECT_RC(args, 0);
    EXPECT_RC("train --resume sw.ckpt --quant-proxy mixed -q", 0);
    {
        nne_graph *sw = NULL;
        CHECK_OK(nne_model_read_file(nne_cli_tmp_path("sw.nne"), &sw));
        if (sw) {
            const char *v = nne_graph_get_meta(sw, "train.quant_proxy");
            CHECK_MSG(v && !strcmp(v, "noise to step 5, then mixed"), "%s", v ? v : "(none)");
            CHECK(nne_graph_find_node(sw, "quantize_y_ste") >= 0);
            nne_graph_free(sw);
        }
        CHECK(max_weight_diff("sw.nne", "rd.nne") > 0.0);
    }
    EXPECT_RC("train --resume sw.ckpt --quant-proxy noise", 2); /* mixed stays */
    CHECK(strstr(nne_cli_err, "--quant-proxy noise") != NULL);
    /* --entropy-lr-mult: learned codecs only, in [1e-3, 1e4], recorded in the model and the
     * checkpoint; a resume keeps it and refuses another value */
    EXPECT_RC("train --data data -o h.nne --entropy-lr-mult 10", 2); /* cae-seed */
    CHECK(strstr(nne_cli_err, "--entropy-lr-mult") != NULL);
    snprintf(args, sizeof args, "train --data data -o em.nne -q %s --entropy-lr-mult 0", k_rd);
    EXPECT_RC(args, 2);
    snprintf(args, sizeof args,
             "train --data data -o em.nne -q %s --entropy-lr-mult 20 "
             "--stop-after 4",
             k_rd);
    EXPECT_RC(args, 0);
    EXPECT_RC("train --resume em.ckpt --entropy-lr-mult 10", 2);
    CHECK(strstr(nne_cli_err, "conflicts with the checkpoint (20)") != NULL);
    EXPECT_RC("train --resume em.ckpt --entropy-lr-mult 20 -q", 0);
    {
        nne_graph *em = NULL;
        CHECK_OK(nne_model_read_file(nne_cli_tmp_path("em.nne"), &em));
        if (em) {
            const char *v = nne_graph_get_meta(em, "train.entropy_lr_mult");
            CHECK_MSG(v && !strcmp(v, "20"), "%s", v ? v : "(none)");
            nne_graph_free(em);
        }
        /* the density learned faster, the rest of the run is the reference's */
        CHECK(max_weight_diff("em.nne", "rd.nne") > 0.0);
    }
    /* ... and the resumed run is the uninterrupted one, bit for bit (a resume once lost the
     * factor: the trainer's configuration comes from the checkpoint, the factor from the
     * settings) */
    snprintf(args, sizeof args, "train --data data -o emr.nne -q %s --entropy-lr-mult 20", k_rd);
    EXPECT_RC(args, 0);
    CHECK_MSG(nne_cli_same_model("emr.nne", "em.nne", NULL),
              "resumed --entropy-lr-mult run differs from the uninterrupted one");
    /* --matmul bf16 (mixed precision): recorded; close to the f32 run but not equal to it;
     * a resume keeps it (bit for bit) and refuses f32; unknown precisions are usage errors */
    snprintf(args, sizeof args, "train --data data -o bf.nne -q %s --matmul bf16", k_rd);
    EXPECT_RC(args, 0);
    {
        nne_graph *bf = NULL;
        CHECK_OK(nne_model_read_file(nne_cli_tmp_path("bf.nne"), &bf));
        if (bf) {
            const char *v = nne_graph_get_meta(bf, "train.matmul");
            CHECK_MSG(v && !strncmp(v, "bf16", 4), "%s", v ? v : "(none)");
            nne_graph_free(bf);
        }
        const double d = max_weight_diff("bf.nne", "rd.nne");
        CHECK_MSG(d > 0.0 && d < 0.05, "bf16 vs f32 weights: max difference %g", d);
    }
    snprintf(args, sizeof args, "train --data data -o bfs.nne -q %s --matmul bf16 --stop-after 3",
             k_rd);
    EXPECT_RC(args, 0);
    EXPECT_RC("train --resume bfs.ckpt --matmul f32", 2);
    CHECK(strstr(nne_cli_err, "--matmul f32 conflicts") != NULL);
    EXPECT_RC("train --resume bfs.ckpt -q", 0);
    CHECK_MSG(nne_cli_same_model("bfs.nne", "bf.nne", NULL),
              "resumed --matmul bf16 run differs from the uninterrupted one");
    EXPECT_RC("train --data data -o h.nne --matmul fp8", 2);
    CHECK(strstr(nne_cli_err, "--matmul fp8") != NULL);
    /* --matmul auto: bf16 where AMX runs it, else f32, the very run of either; on resume
     * the checkpoint's precision (bf16 here, on any machine). */
    snprintf(args, sizeof args, "train --data data -o au.nne -q %s --matmul auto", k_rd);
    EXPECT_RC(args, 0);
    const bool amx = strcmp(nne_gemm_bf16_path(), "amx") == 0;
    CHECK_MSG(nne_cli_same_model("au.nne", amx ? "bf.nne" : "rd.nne", NULL),
              "--matmul auto is not the %s run", amx ? "bf16" : "f32");
    snprintf(args, sizeof args, "train --data data -o bfa.nne -q %s --matmul bf16 --stop-after 3",
             k_rd);
    EXPECT_RC(args, 0);
    EXPECT_RC("train --resume bfa.ckpt --matmul auto -q", 0);
    CHECK_MSG(nne_cli_same_model("bfa.nne", "bf.nne", NULL),
              "bf16 run resumed with --matmul auto differs from the uninterrupted one");
    /* --init (fine-tuning): a new run from rd.nne's weights at another lambda. With a
     * learning rate of 1e-9 one step leaves them within 1e-6 of rd.nne's; from scratch
     * (same seed) they are the random initialisation, far from them. */
    const char *k_ft = "--model bmshj2018-factorized --channels 6,8 --lambda 0.05 --crop 32 "
                       "--batch 2 --steps 1 --seed 3 --lr 1e-9 --warmup 0 -q";
    snprintf(args, sizeof args, "train --data data -o ft.nne --init rd.nne %s", k_ft);
    EXPECT_RC(args, 0);
    snprintf(args, sizeof args, "train --data data -o fs.nne %s", k_ft);
    EXPECT_RC(args, 0);
    CHECK(max_weight_diff("ft.nne", "rd.nne") < 1e-6);
    CHECK(max_weight_diff("fs.nne", "rd.nne") > 1e-3);
    EXPECT_RC("train --data data -o fx.nne --init rd.nne --model bmshj2018-factorized "
              "--channels 6,12 --crop 32 --steps 1 -q",
              1); /* other channels */
    CHECK(strstr(nne_cli_err, "--init") != NULL);
    EXPECT_RC("train --resume rs.ckpt --init rd.nne", 2);

    /* --init-partial: a factorized codec from a mean-scale codec's g_a/g_s (same N, M). The
     * mean-scale model is made here with its own seed, since its 64-pixel alignment is larger
     * than these images. g_a/g_s come from it; the entropy bottleneck (other channels: M
     * here, N there) starts from --seed as in a run without --init. */
    nne_rdmodel_config mc = {NNE_RD_MEAN_SCALE, 6, 8, NNE_QUANTIZE_NOISE, false};
    nne_graph *ms = NULL;
    CHECK_OK(nne_model_rd(&mc, 1, 64, 64, NNE_RD_TRAIN, &ms));
    CHECK_OK(nne_train_init_params(ms, 11));
    CHECK_OK(nne_model_write_file(ms, nne_cli_tmp_path("ms.nne")));
    nne_graph_free(ms);
    snprintf(args, sizeof args, "train --data data -o fp.nne --init ms.nne --init-partial %s",
             k_ft);
    EXPECT_RC(args, 0);
    CHECK(prefix_weight_diff("fp.nne", "ms.nne", "g_a.") < 1e-6);
    CHECK(prefix_weight_diff("fp.nne", "ms.nne", "g_s.") < 1e-6);
    CHECK(prefix_weight_diff("fp.nne", "fs.nne", "entropy_bottleneck") < 1e-6);
    CHECK(prefix_weight_diff("fs.nne", "ms.nne", "g_a.") > 1e-3);
    nne_graph *fp = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("fp.nne"), &fp));
    if (fp) {
        const char *ip = nne_graph_get_meta(fp, "train.init_partial");
        CHECK_MSG(ip && strstr(ip, " constants copied from train.init"), "%s", ip ? ip : "none");
        nne_graph_free(fp);
    }
    /* --init-widen: rd.nne (factorized 6,8) widened to 6,12 latent channels. The tensors of the
     * same shape are rd.nne's, the grown ones (g_a.6, g_s.0, the bottleneck) hold it in their
     * leading channels; the model records it; not on resume. */
    EXPECT_RC("train --data data -o fw.nne --init rd.nne --init-widen --model "
              "bmshj2018-factorized --channels 6,12 --lambda 0.05 --crop 32 --batch 2 --steps 1 "
              "--seed 3 --lr 1e-9 --warmup 0 -q",
              0);
    CHECK(prefix_weight_diff("fw.nne", "rd.nne", "g_a.0") < 1e-6);
    CHECK(prefix_weight_diff("fw.nne", "rd.nne", "g_s.2") < 1e-6);
    {
        nne_graph *fw = NULL;
        CHECK_OK(nne_model_read_file(nne_cli_tmp_path("fw.nne"), &fw));
        if (fw) {
            const char *ip = nne_graph_get_meta(fw, "train.init_partial");
            CHECK_MSG(ip && strstr(ip, "widened)"), "%s", ip ? ip : "none");
            const int32_t w = nne_graph_find_tensor(fw, "g_s.0.weight");
            CHECK(w >= 0 && fw->tensors[w].shape.dim[3] == 12);
            nne_graph_free(fw);
        }
    }
    EXPECT_RC("train --resume rs.ckpt --init-widen", 2);
    /* without --init, with --qat, on resume, and when nothing matches */
    snprintf(args, sizeof args, "train --data data -o fq.nne --init-partial %s", k_ft);
    EXPECT_RC(args, 2);
    CHECK(strstr(nne_cli_err, "needs --init") != NULL);
    snprintf(args, sizeof args,
             "train --data data -o fq.nne --init ms.nne --init-partial --qat "
             "per-channel %s",
             k_ft);
    EXPECT_RC(args, 2);
    EXPECT_RC("train --resume rs.ckpt --init-partial", 2);
    nne_graph *cs = NULL; /* cae-seed: no name in common with a learned codec */
    CHECK_OK(nne_builtin_model("cae-seed", &cs));
    CHECK_OK(nne_model_write_file(cs, nne_cli_tmp_path("cs.nne")));
    nne_graph_free(cs);
    snprintf(args, sizeof args, "train --data data -o fq.nne --init cs.nne --init-partial %s",
             k_ft);
    EXPECT_RC(args, 1);
    CHECK(strstr(nne_cli_err, "no tensor") != NULL);
}

int main(void) {
    nne_cli_setup("train-cli");
    make_images("data", 6, 1, 1);
    make_images("val", 2, 2, 1);
    make_images("big", 2, 3, 4);
    NNE_RUN(test_usage);
    NNE_RUN(test_guards);
    NNE_RUN(test_run_and_provenance);
    NNE_RUN(test_resume);
    NNE_RUN(test_loss_border);
    NNE_RUN(test_rd_model);
    nne_cli_cleanup();
    return nne_test_summary();
}
