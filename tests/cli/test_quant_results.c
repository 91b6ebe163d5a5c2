/* scripts/quant_results.sh end to end in a fast mode: a cae-seed trained here for a few steps
 * on crops of ../shared/data/train, calibrated and fine-tuned on those crops (a few steps of
 * QAT and of pruned fine-tuning), evaluated on two small crops of ../shared/data/val. Checks
 * that the CSV has every row with sane values (fp32 drop 0, sizes ordered by precision, the
 * pruned MACs below the original's, int8 MACs unchanged), the QuTiBench ratios, the recorded
 * commands, that a rerun skips every step and writes the same CSV, and the script's usage
 * errors. Skipped without ../shared/data. The binary's path comes from NNEDGE_BIN.
 * The learned-codec mode (--codec) runs first, on synthetic images and a ladder of tiny
 * untrained models written here, so it needs no shared data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../tiny_lcodec.h"
#include "cli_fixtures.h"
#include "cli_util.h"
#include "nnedge/dataset.h"
#include "nnedge/image.h"
#include "nnedge/json.h"

enum { ROWS = 17, COLS = 12 };
static const char *const k_rows[ROWS] = {
    "fp32",           "fp16",          "int8-per-tensor", "int8-per-channel",
    "int8-pow2",      "int8-pow2-qat", "int4-weights",    "int2-weights",
    "pruned-oneshot", "pruned",        "pruned-int8",     "int8-per-channel-w7",
    "int8-pow2-cle",  "int8-per-channel-qat", "int8-per-channel-w7-qat",
    "int8-per-channel-acteq", "int8-per-channel-acteq-qat"};

/* The top-left w x h of the first n images of a shared folder, as PNGs in tmp/dir. */
static bool crops(const char *shared_rel, const char *dir, int n, int w, int h) {
    nne_dataset *ds = NULL;
    const nne_dataset_opts o = {.recursive = true, .cache = false, .min_width = w, .min_height = h};
    if (nne_dataset_open(nne_test_path(nne_test_shared_dir(), shared_rel), &o, &ds) != NNE_OK ||
        nne_dataset_size(ds) < n) {
        nne_dataset_free(ds);
        return false;
    }
    mkdir(nne_cli_tmp_path(dir), 0755);
    for (int i = 0; i < n; i++) {
        nne_image img = {0}, c = {0};
        bool owned = false;
        CHECK_OK(nne_dataset_image(ds, i, &img, &owned));
        CHECK_OK(nne_image_alloc(&c, w, h, 3));
        if (img.data && c.data && img.channels == 3)
            for (int y = 0; y < h; y++)
                memcpy(c.data + (size_t)y * w * 3, img.data + (size_t)y * img.width * 3,
                       (size_t)w * 3);
        char rel[64];
        snprintf(rel, sizeof rel, "%s/%02d.png", dir, i);
        CHECK_OK(nne_image_save(nne_cli_tmp_path(rel), &c));
        nne_image_free(&c);
        if (owned) nne_image_free(&img);
    }
    nne_dataset_free(ds);
    return true;
}

/* Run the script with NNEDGE set; returns its exit code, stderr in tmp/script.err. */
static int script(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && NNEDGE='%s' sh scripts/quant_results.sh %s >'%s/script.out' "
             "2>'%s/script.err'",
             nne_test_source_dir(), nne_cli_bin, args, nne_cli_tmp, nne_cli_tmp);
    const int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

static char *slurp(const char *rel) {
    size_t n;
    return (char *)nne_test_read_file(nne_cli_tmp_path(rel), &n);
}

/* One CSV line split into fields (RFC 4180 quotes), in place. */
static int split_csv(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        if (*p == '"') {
            char *o = ++p;
            f[n++] = o;
            while (*p && !(p[0] == '"' && p[1] != '"')) {
                if (p[0] == '"') p++;
                *o++ = *p++;
            }
            if (*p) p++;
            *o = 0;
            if (*p == ',')
                p++;
            else
                break;
        } else {
            f[n++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = 0;
            p = c + 1;
        }
    }
    return n;
}

typedef struct row {
    double psnr, msssim, dpsnr, dmsssim, size, macs;
    int images;
    char cmd[2048];
} row;

static bool parse(const char *csv_text, row *rows) {
    char *copy = nne_malloc(strlen(csv_text) + 1);
    if (!copy) return false;
    strcpy(copy, csv_text);
    int found = 0;
    char *save = NULL;
    char *line = strtok_r(copy, "\n", &save);
    CHECK(line && !strcmp(line, "variant,description,precision,backend,psnr_db,ms_ssim,"
                                "psnr_drop_db,ms_ssim_drop,size_bytes,macs,images,command"));
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[COLS];
        const int n = split_csv(line, f, COLS);
        CHECK_MSG(n == COLS, "%d fields: %s", n, line);
        if (n != COLS) continue;
        for (int r = 0; r < ROWS; r++)
            if (!strcmp(f[0], k_rows[r])) {
                row *x = &rows[r];
                x->psnr = *f[4] ? atof(f[4]) : NAN;
                x->msssim = *f[5] ? atof(f[5]) : NAN;
                x->dpsnr = *f[6] ? atof(f[6]) : NAN;
                x->dmsssim = *f[7] ? atof(f[7]) : NAN;
                x->size = atof(f[8]);
                x->macs = atof(f[9]);
                x->images = atoi(f[10]);
                snprintf(x->cmd, sizeof x->cmd, "%s", f[11]);
                found |= 1 << r;
            }
    }
    nne_free(copy);
    CHECK_MSG(found == (1 << ROWS) - 1, "rows found: %#x", found);
    return found == (1 << ROWS) - 1;
}

static const char *k_args;

/* A rerun of the script with `args` runs no command and rewrites `csv_rel` as it was. */
static void check_rerun(const char *args, const char *csv_rel, const char *csv) {
    CHECK(script(args) == 0);
    char *again = slurp(csv_rel), *err = slurp("script.err");
    CHECK(again && csv && !strcmp(again, csv));
    CHECK_MSG(err && !strstr(err, "nnedge "), "rerun ran: %s", err ? err : "");
    nne_free(again);
    nne_free(err);
}

static void test_table(void) {
    CHECK_MSG(script(k_args) == 0, "stderr: %s", slurp("script.err"));
    char *csv = slurp("out/quant-tiny.csv");
    CHECK(csv != NULL);
    row rows[ROWS];
    memset(rows, 0, sizeof rows);
    if (!csv || !parse(csv, rows)) {
        nne_free(csv);
        return;
    }
    const row *fp32 = &rows[0], *pc = &rows[3], *pruned = &rows[9], *pi8 = &rows[10];
    for (int r = 0; r < ROWS; r++) {
        const row *x = &rows[r];
        CHECK_MSG(isfinite(x->psnr) && x->psnr > 3 && x->psnr < 60, "%s: PSNR %g", k_rows[r],
                  x->psnr);
        CHECK_MSG(x->msssim > 0 && x->msssim <= 1, "%s: MS-SSIM %g", k_rows[r], x->msssim);
        CHECK_MSG(fabs(x->dpsnr - (fp32->psnr - x->psnr)) < 2e-4, "%s: drop", k_rows[r]);
        CHECK(x->images == 2 && x->size > 0 && x->macs > 0);
        CHECK_MSG(strstr(x->cmd, "nnedge eval --data") != NULL, "%s: %s", k_rows[r], x->cmd);
    }
    CHECK(fp32->dpsnr == 0 && fp32->dmsssim == 0);
    /* sizes: fp16 half of fp32; int8 weights below fp16; int4 below int8, int2 below int4 */
    CHECK(rows[1].size * 2 == fp32->size);
    CHECK(pc->size < rows[1].size && rows[6].size < pc->size && rows[7].size < rows[6].size);
    /* quantization keeps the MACs; channel pruning at 50% removes most of them */
    for (int r = 1; r < 8; r++) CHECK(rows[r].macs == fp32->macs);
    CHECK(pruned->macs < 0.5 * fp32->macs && pi8->macs == pruned->macs);
    CHECK(rows[8].macs == pruned->macs && pruned->size < fp32->size && pi8->size < pruned->size);
    CHECK(strstr(rows[5].cmd, "--qat pow2") && strstr(rows[5].cmd, "--steps 3"));
    CHECK(strstr(rows[12].cmd, "--scheme pow2") && strstr(rows[12].cmd, "--equalize") &&
          rows[12].macs == fp32->macs && rows[12].size == rows[4].size);
    /* the per-channel QAT rows: 8-bit and 7-bit weights, each quantized with its own bits */
    for (int r = 13; r < 15; r++)
        CHECK_MSG(strstr(rows[r].cmd, "--qat per-channel") && strstr(rows[r].cmd, "--steps 3") &&
                      (strstr(rows[r].cmd, "--qat-weight-bits 7") != NULL) == (r == 14) &&
                      rows[r].macs == fp32->macs && rows[r].size == pc->size,
                  "%s: %s", k_rows[r], rows[r].cmd);
    /* QAT from activation-equalized weights: --qat per-channel --qat-equalize-act 0.5 */
    CHECK_MSG(strstr(rows[16].cmd, "--qat per-channel") &&
                  strstr(rows[16].cmd, "--qat-equalize-act 0.5") &&
                  strstr(rows[16].cmd, "--steps 3") && rows[16].macs == fp32->macs &&
                  rows[16].size == pc->size,
              "%s", rows[16].cmd);
    /* activation-range equalization: per-channel with --equalize-act 0.5 (the default) */
    CHECK_MSG(strstr(rows[15].cmd, "--scheme per-channel") &&
                  strstr(rows[15].cmd, "--equalize-act 0.5") && rows[15].macs == fp32->macs &&
                  rows[15].size == pc->size,
              "%s", rows[15].cmd);
    CHECK(strstr(pi8->cmd, "nnedge prune") && strstr(pi8->cmd, "--init") &&
          strstr(pi8->cmd, "--scheme per-channel") && strstr(pi8->cmd, "--backend cpu-s8"));
    CHECK(strstr(rows[6].cmd, "--fake --scheme int4") != NULL);
    /* 7-bit weights: the same MACs and int8 storage as per-channel, made with --weight-bits 7 */
    CHECK(rows[11].macs == fp32->macs && rows[11].size == pc->size);
    CHECK(strstr(rows[11].cmd, "--scheme per-channel") && strstr(rows[11].cmd, "--weight-bits 7") &&
          strstr(rows[11].cmd, "--backend cpu-s8"));
    /* QuTiBench: ops ratios of a quantization that keeps the ops: q1 = 1, p2 = p1 */
    char *q = slurp("out/quant-tiny-qutibench.csv");
    CHECK(q && strstr(q, "\nops,") && strstr(q, "\nsize_bytes,") && strstr(q, "\npsnr_db,"));
    if (q) {
        char *ops = strstr(q, "\nops,");
        char *f[10];
        char line[512];
        snprintf(line, sizeof line, "%s", ops ? ops + 1 : "");
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (ops && split_csv(line, f, 10) == 10) {
            CHECK(atof(f[1]) == 2 * fp32->macs && atof(f[3]) == 2 * pruned->macs);
            CHECK(!strcmp(f[6], "1.0000") && !strcmp(f[9], "1.0000"));  /* q1, p2/p1 */
            CHECK(fabs(atof(f[5]) - pruned->macs / fp32->macs) < 1e-4); /* p1 */
        } else {
            CHECK(!"ops row");
        }
    }
    nne_free(q);
    char *md = slurp("out/quant-tiny.md");
    CHECK(md && strstr(md, "| int8-pow2-qat |") && strstr(md, "## QuTiBench") &&
          strstr(md, "## Commands"));
    /* the invocation is recorded quoted, rerunnable: --train-opts keeps its one argument */
    CHECK(md && strstr(md, " --train-opts '--clip 0'`"));
    CHECK(strstr(rows[5].cmd, " --clip 0 ") && strstr(pruned->cmd, " --clip 0 "));
    nne_free(md);

    /* A rerun does nothing but rebuild the table: the same CSV, no command run; also with
     * another --observer, since each row describes the observer of its own command. */
    check_rerun(k_args, "out/quant-tiny.csv", csv);
    char other[2100]; /* k_args: at most 2047 chars */
    snprintf(other, sizeof other, "%s --observer mse", k_args);
    check_rerun(other, "out/quant-tiny.csv", csv);
    nne_free(csv);

    /* the pruned int8 model also runs through nnedge run (cli_model_part keeps its widths) */
    EXPECT_RC_IN(nne_cli_tmp,
                 "run work/pruned-int8.nne --backend cpu-s8 --input test/00.png -o "
                 "y.npy",
                 0);
}

/* --codec: a ladder of 4 tiny bmshj2018-factorized rungs (untrained, latent scaled by 4^(q+1)
 * so the rate grows with q, tests/tiny_lcodec.h), 2 synthetic test images, calibration on 2
 * other synthetic images at 32x32. Checks every variant and rung of the CSV (finite bpp and
 * PSNR, 2 images, sizes fp16 = fp32 / 2 > int8, BD-rates against fp32: 0 for fp32, finite
 * for the others, from one nnedge rd run over every ladder, nnedge:KIND@<variant>=DIR), that
 * the int8 rows' bytes are those of `nnedge compress`, the recorded commands and the BD-rate
 * matrix in the .md, a rerun that runs nothing (also with --rows of one row: every row done
 * stays), rows added later (nnedge rd runs again over all), --dry-run and the usage errors.
 * The QAT rows train each rung 2 steps at its own train.lambda (set here: the tiny rungs are
 * not made by nnedge train) and are checked like the other int8 rows. */
enum { CROWS = 9, RUNGS = 4, CCOLS = 17 };
static const char *const k_crows[CROWS] = {
    "fp32",      "fp16",          "int8-per-tensor", "int8-per-channel", "int8-pow2",
    "int8-per-channel-qat",       "int8-pow2-qat",   "pruned",           "pruned-int8"};
enum { C_PC = 3, C_PRUNED = 7, C_PI8 = 8 };

/* Is `field` (a CSV cell, "" = n/a) the BD value `key` of nnedge:bmshj2018-factorized@<variant>
 * against @fp32 in nnedge rd's JSON report `rd`? */
static bool same_bd(const nne_json_value *rd, const char *variant, const char *key,
                    const char *field) {
    char test[96];
    snprintf(test, sizeof test, "nnedge:bmshj2018-factorized@%s", variant);
    const nne_json_value *bd = nne_json_get(rd, "bd");
    for (int i = 0; bd && i < bd->n; i++) {
        const nne_json_value *r = nne_json_get(&bd->items[i], "reference"),
                             *t = nne_json_get(&bd->items[i], "test");
        if (!r || !t || strcmp(r->string, "nnedge:bmshj2018-factorized@fp32") ||
            strcmp(t->string, test))
            continue;
        const nne_json_value *v = nne_json_get(nne_json_get(&bd->items[i], "values"), key);
        if (!v || v->type != NNE_JSON_NUMBER) return !*field;
        return *field && fabs(atof(field) - v->number) < 1e-9;
    }
    return false;
}

/* Zeros of every conv2d / conv_transpose2d weight of g: each tensor of n elements has at
 * least round(s n) (exactly, when `exact`); g has at least min_convs of them. */
static void check_zeros(const nne_graph *g, double s, bool exact, int min_convs,
                        const char *what) {
    int convs = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (n->op != NNE_OP_CONV2D && n->op != NNE_OP_CONV_TRANSPOSE2D) continue;
        const nne_tensor *w = &g->tensors[n->inputs[1]];
        const int64_t numel = nne_shape_numel(&w->shape), zeros = numel - nne_tensor_count_nonzero(w);
        const int64_t want = (int64_t)floor(s * (double)numel + 0.5);
        CHECK_MSG(exact ? zeros == want : zeros >= want, "%s %s: %lld zeros of %lld", what,
                  w->name, (long long)zeros, (long long)numel);
        convs++;
    }
    CHECK_MSG(convs >= min_convs, "%s: %d convolutions", what, convs);
}

/* The pruned rungs: exactly half of every conv weight is 0 (the masks; g_a, g_s and the
 * factorized codec has no h_a/h_s), recorded as prune.sparsity 0.5; their int8 codecs keep
 * those zeros (per-channel scales map 0 to code 0). */
static void check_sparsity(const char *kind) {
    for (int q = 1; q <= RUNGS; q++) {
        char path[1024];
        nne_graph *g = NULL;
        snprintf(path, sizeof path, "%s/cwork/pruned/%s-q%d.nne", nne_cli_tmp, kind, q);
        CHECK_OK(nne_model_read_file(path, &g));
        if (!g) continue;
        const char *sp = nne_graph_get_meta(g, "prune.sparsity");
        CHECK_MSG(sp && !strcmp(sp, "0.5"), "q%d: prune.sparsity %s", q, sp ? sp : "(none)");
        check_zeros(g, 0.5, true, 8, path); /* g_a 4, g_s 4 */
        nne_graph_free(g);
        g = NULL;
        snprintf(path, sizeof path, "%s/cwork/pruned-int8/%s-q%d.nne", nne_cli_tmp, kind, q);
        CHECK_OK(nne_model_read_file(path, &g));
        CHECK(g && g->n_attached == 2);
        for (int32_t i = 0; g && i < g->n_attached; i++) {
            CHECK(g->attached[i]->tensors[g->attached[i]->nodes[0].inputs[1]].dtype == NNE_S8);
            check_zeros(g->attached[i], 0.5, false, 4, path);
        }
        nne_graph_free(g);
    }
}

/* One line "metric,A,B,C,D,p1,q1,p2,q2,p2/p1" of the QuTiBench CSV, split into f[10]. */
static bool qline(char *csv, const char *metric, char *buf, size_t nb, char **f) {
    char key[64];
    snprintf(key, sizeof key, "\n%s,", metric);
    const char *l = strstr(csv, key);
    CHECK_MSG(l != NULL, "no QuTiBench line %s", metric);
    if (!l) return false;
    snprintf(buf, nb, "%s", l + 1);
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    const int n = split_csv(buf, f, 10);
    CHECK_MSG(n == 10, "%s: %d fields", metric, n);
    return n == 10;
}

/* The codec's QuTiBench ratios: A fp32, B int8-per-channel, C pruned, D pruned-int8, from the
 * table's columns (means over the rungs), PSNR per rung, and the rate at equal PSNR from the
 * BD-rates against fp32. */
static void check_qutibench(double ops[][RUNGS + 1], double sparse[][RUNGS + 1],
                            const double *bdrate) {
    char *q = slurp("cout/quant-bmshj2018-factorized-qutibench.csv");
    CHECK(q && !strncmp(q, "metric,A_fp32,B_int8_per_channel,C_pruned,D_pruned_int8,p1_C_over_A,"
                           "q1_B_over_A,p2_D_over_B,q2_D_over_C,p2_over_p1\n", 100));
    if (!q) return;
    char buf[512], *f[10];
    const int col[4] = {0, C_PC, C_PRUNED, C_PI8};
    double mo[4] = {0}, ms[4] = {0};
    for (int k = 0; k < 4; k++)
        for (int r = 1; r <= RUNGS; r++) {
            mo[k] += ops[col[k]][r] / RUNGS;
            ms[k] += sparse[col[k]][r] / RUNGS;
        }
    if (qline(q, "ops_per_pixel", buf, sizeof buf, f)) {
        for (int k = 0; k < 4; k++) CHECK(fabs(atof(f[1 + k]) - mo[k]) < 1e-3 * mo[k]);
        CHECK(!strcmp(f[6], "1.0000"));                        /* q1: quantization keeps ops */
        CHECK(fabs(atof(f[5]) - mo[2] / mo[0]) < 1e-3 && atof(f[5]) < 0.6); /* p1 */
        CHECK(fabs(atof(f[9]) - 1.0) < 2e-3);                  /* p2/p1 */
    }
    if (qline(q, "size_bytes", buf, sizeof buf, f)) {
        for (int k = 0; k < 4; k++) CHECK(fabs(atof(f[1 + k]) - ms[k]) <= 0.5);
        CHECK(atof(f[5]) < 0.75 && atof(f[6]) < 0.5 && atof(f[7]) < 1.0); /* p1, q1, p2 */
    }
    static const char *const psnr[] = {"psnr_db_q1", "psnr_db_q2", "psnr_db_q3", "psnr_db_q4",
                                       "psnr_db_mean", "bpp_mean"};
    for (int i = 0; i < 6; i++)
        if (qline(q, psnr[i], buf, sizeof buf, f))
            for (int k = 1; k <= 9; k++) CHECK_MSG(*f[k] && atof(f[k]) > 0, "%s %d", psnr[i], k);
    if (qline(q, "rate_at_equal_psnr", buf, sizeof buf, f)) {
        CHECK(!strcmp(f[1], "1.0000"));
        for (int k = 1; k < 4; k++)
            if (isfinite(bdrate[col[k]]))
                CHECK_MSG(fabs(atof(f[1 + k]) - (1 + bdrate[col[k]] / 100)) < 1e-4, "%s vs %g",
                          f[1 + k], bdrate[col[k]]);
            else
                CHECK(!*f[1 + k]);
    }
    nne_free(q);
}

/* The pruned rows resume: the ladder made 1 step per call (--stop-after 1: the script pauses,
 * exit 0, and continues from the rung's checkpoint on the next call) has the weights of the
 * uninterrupted one. */
static void check_resume(const char *args, const char *kind) {
    char a[2900];
    snprintf(a, sizeof a, "%s --work '%s/cw4' --out '%s/co4' --rows pruned --stop-after 1", args,
             nne_cli_tmp, nne_cli_tmp);
    int calls = 0, paused = 0;
    while (calls < 2 * RUNGS + 2 && !nne_cli_tmp_exists("co4/quant-bmshj2018-factorized.csv")) {
        CHECK(script(a) == 0);
        char *err = slurp("script.err");
        paused += err && strstr(err, "paused (--stop-after)") != NULL;
        nne_free(err);
        calls++;
    }
    CHECK_MSG(paused == RUNGS && calls == RUNGS + 1, "%d calls, %d pauses", calls, paused);
    for (int q = 1; q <= RUNGS; q++) {
        char p0[1024], p1[1024];
        snprintf(p0, sizeof p0, "%s/cwork/pruned/%s-q%d.nne", nne_cli_tmp, kind, q);
        snprintf(p1, sizeof p1, "%s/cw4/pruned/%s-q%d.nne", nne_cli_tmp, kind, q);
        nne_graph *g0 = NULL, *g1 = NULL;
        CHECK_OK(nne_model_read_file(p0, &g0));
        CHECK_OK(nne_model_read_file(p1, &g1));
        int same = 0, consts = 0;
        for (int32_t i = 0; g0 && g1 && i < g0->n_tensors; i++) {
            const nne_tensor *t = &g0->tensors[i];
            if (t->kind != NNE_TENSOR_CONSTANT) continue;
            consts++;
            const int32_t j = nne_graph_find_tensor(g1, t->name);
            same += j >= 0 && nne_tensor_nbytes(t) == nne_tensor_nbytes(&g1->tensors[j]) &&
                    !memcmp(t->data, g1->tensors[j].data, nne_tensor_nbytes(t));
        }
        CHECK_MSG(consts > 0 && same == consts, "q%d: %d of %d constants equal", q, same, consts);
        nne_graph_free(g0);
        nne_graph_free(g1);
    }
}

static void test_codec(void) {
    const char *kind = "bmshj2018-factorized";
    mkdir(nne_cli_tmp_path("cl"), 0755);
    CHECK_OK(nne_tiny_lcodec_ladder(nne_cli_tmp_path("cl"), NNE_RD_FACTORIZED, 5, 2)); /* RUNGS */
    for (int q = 1; q <= RUNGS; q++) { /* the lambda a QAT row trains each rung at */
        char path[1024], lam[32];
        snprintf(path, sizeof path, "%s/cl/%s-q%d.nne", nne_cli_tmp, kind, q);
        snprintf(lam, sizeof lam, "%g", 0.01 * q);
        nne_graph *g = NULL;
        CHECK_OK(nne_model_read_file(path, &g));
        if (g) {
            CHECK_OK(nne_graph_set_meta(g, "train.lambda", lam));
            CHECK_OK(nne_model_write_file(g, path));
            nne_graph_free(g);
        }
    }
    nne_cli_make_images("ctest", 2); /* 40x36, 44x39 */
    nne_cli_make_images("ccal", 3);
    char args[2048];
    snprintf(args, sizeof args,
             "--codec %2$s --models '%1$s/cl' --test '%1$s/ctest' --calib '%1$s/ccal' "
             "--calib-crop 32 --calib-images 2 --work '%1$s/cwork' --out '%1$s/cout' --threads 2 "
             "--data '%1$s/ccal' --qat-steps 2 --ft-steps 2 --sparsity 0.5 --batch 1 --crop 32",
             nne_cli_tmp, kind);
    CHECK_MSG(script(args) == 0, "stderr: %s", slurp("script.err"));
    char *csv = slurp("cout/quant-bmshj2018-factorized.csv");
    CHECK(csv != NULL);
    if (!csv) return;
    char *rd_text = slurp("cwork/rd.json");
    nne_json_value *rd = NULL;
    CHECK(rd_text && nne_json_parse(rd_text, strlen(rd_text), &rd) == NNE_OK);
    nne_free(rd_text);
    char *copy = nne_malloc(strlen(csv) + 1);
    strcpy(copy, csv);
    char *save = NULL, *line = strtok_r(copy, "\n", &save);
    CHECK(line && !strcmp(line, "variant,description,precision,backend,rung,images,bytes,bpp,"
                                "psnr_db,ms_ssim,size_bytes,sparse_size_bytes,ops_per_pixel,"
                                "bd_rate_psnr_pct,bd_psnr_db,bd_rate_ms_ssim_pct,command"));
    double size[CROWS][RUNGS + 1], bytes[CROWS][RUNGS + 1], sparse[CROWS][RUNGS + 1],
        ops[CROWS][RUNGS + 1], bdrate[CROWS];
    int seen[CROWS] = {0};
    memset(size, 0, sizeof size);
    memset(bytes, 0, sizeof bytes);
    memset(sparse, 0, sizeof sparse);
    memset(ops, 0, sizeof ops);
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[CCOLS];
        const int n = split_csv(line, f, CCOLS);
        CHECK_MSG(n == CCOLS, "%d fields: %s", n, line);
        if (n != CCOLS) continue;
        int r = 0;
        while (r < CROWS && strcmp(f[0], k_crows[r])) r++;
        const int q = atoi(f[4]);
        CHECK_MSG(r < CROWS && q >= 1 && q <= RUNGS, "row %s q%s", f[0], f[4]);
        if (r >= CROWS || q < 1 || q > RUNGS) continue;
        seen[r] |= 1 << q;
        const double bpp = atof(f[7]), psnr = atof(f[8]);
        CHECK_MSG(*f[7] && isfinite(bpp) && bpp > 0 && bpp < 24, "%s q%d: bpp '%s'", f[0], q, f[7]);
        CHECK_MSG(*f[8] && isfinite(psnr) && psnr > 3 && psnr < 60, "%s q%d: PSNR '%s'", f[0], q,
                  f[8]);
        CHECK(atoi(f[5]) == 2);
        bytes[r][q] = atof(f[6]);
        /* bpp is the mean over the two images of bytes * 8 / pixels */
        CHECK(bytes[r][q] > 0);
        size[r][q] = atof(f[10]);
        sparse[r][q] = *f[11] ? atof(f[11]) : NAN; /* n/a for fp16 */
        ops[r][q] = atof(f[12]);
        CHECK_MSG(ops[r][q] > 0 && (r == 1 || sparse[r][q] > 0), "%s q%d", f[0], q);
        bdrate[r] = *f[13] ? atof(f[13]) : NAN;
        f[11] = f[13], f[12] = f[14], f[13] = f[15], f[14] = f[16]; /* BD-rates, command */
        /* BD against fp32 from nnedge rd: 0 for fp32 itself; for the others the values of
         * rd's report (reference nnedge:KIND@fp32, test nnedge:KIND@<variant>). These
         * untrained rungs differ in rate, hardly in PSNR (1e-4 dB), so BD-PSNR is small;
         * MS-SSIM, undefined on 40-pixel images, is n/a, i.e. empty. */
        if (r == 0) CHECK(!strcmp(f[11], "0") && !strcmp(f[12], "0") && !strcmp(f[13], "0"));
        CHECK_MSG(*f[12] && fabs(atof(f[12])) < 1.0, "%s q%d: BD-PSNR '%s'", f[0], q, f[12]);
        if (r > 0) {
            CHECK(!*f[13]);
            CHECK_MSG(same_bd(rd, k_crows[r], "bd_psnr_db_pchip", f[12]) &&
                          same_bd(rd, k_crows[r], "bd_rate_psnr_pct_pchip", f[11]) &&
                          same_bd(rd, k_crows[r], "bd_rate_ms_ssim_pct_pchip", f[13]),
                      "%s: BD %s %s %s differ from nnedge rd's", f[0], f[11], f[12], f[13]);
        }
        const bool qat = strstr(k_crows[r], "-qat") != NULL, pruned = r >= C_PRUNED;
        CHECK_MSG(strstr(f[14], "nnedge rd ") &&
                      (r == 0 || strstr(f[14], qat || pruned ? "nnedge train " : "nnedge quantize ")),
                  "%s: %s", f[0], f[14]);
        /* one nnedge rd run over every ladder, each its own codec (no anchor files) */
        CHECK_MSG(strstr(f[14], "nnedge:bmshj2018-factorized@fp32=") &&
                      strstr(f[14], "nnedge:bmshj2018-factorized@int8-pow2=") &&
                      !strstr(f[14], "--anchors"),
                  "%s: %s", f[0], f[14]);
        if (r >= 2 && !qat && !pruned)
            CHECK(strstr(f[14], k_crows[r] + 5) && strstr(f[14], "--calib"));
        if (pruned) { /* 2 steps from the rung at its lambda, then (int8) per-channel PTQ */
            char want[160], init[96];
            snprintf(want, sizeof want, "--lambda %g --prune-schedule 0.5", 0.01 * q);
            snprintf(init, sizeof init, "/cl/%s-q%d.nne --data", kind, q);
            CHECK_MSG(strstr(f[14], want) && strstr(f[14], "--steps 2 ") && strstr(f[14], init),
                      "%s q%d: %s", f[0], q, f[14]);
            CHECK((r == C_PI8) == (strstr(f[14], "nnedge quantize ") != NULL));
            if (r == C_PI8) CHECK(strstr(f[14], "--scheme per-channel") != NULL);
        }
        if (qat) { /* the rung's own lambda, its scheme, 2 steps from the rung */
            char want[160], init[96];
            snprintf(want, sizeof want, "--lambda %g --qat %s", 0.01 * q,
                     strstr(k_crows[r], "pow2") ? "pow2" : "per-channel");
            snprintf(init, sizeof init, "/cl/%s-q%d.nne --data", kind, q);
            CHECK_MSG(strstr(f[14], want) && strstr(f[14], "--steps 2 ") && strstr(f[14], init),
                      "%s q%d: %s", f[0], q, f[14]);
        }
    }
    nne_free(copy);
    nne_json_value_free(rd);
    for (int r = 0; r < CROWS; r++)
        CHECK_MSG(seen[r] == 0x1e, "%s: rungs %#x", k_crows[r], seen[r]);
    for (int q = 1; q <= RUNGS; q++) {
        CHECK(size[1][q] * 2 == size[0][q]); /* fp16: 2 bytes a value */
        for (int r = 2; r < CROWS; r++)
            if (r != C_PRUNED) CHECK(size[r][q] > 0 && size[r][q] < size[1][q]);
        /* magnitude pruning keeps the shapes: the dense bytes stay, the sparse ones and the
         * ops skipping zeros drop (half of every conv weight; biases, GDN, entropy model stay) */
        CHECK(size[C_PRUNED][q] == size[0][q] && size[C_PI8][q] == size[C_PC][q]);
        CHECK(sparse[C_PRUNED][q] < 0.75 * sparse[0][q] && sparse[C_PI8][q] < sparse[C_PC][q]);
        CHECK(sparse[0][q] <= size[0][q] && sparse[C_PC][q] <= size[C_PC][q]);
        CHECK_MSG(ops[C_PRUNED][q] < 0.6 * ops[0][q] && ops[C_PRUNED][q] > 0.4 * ops[0][q],
                  "q%d: ops %g of %g", q, ops[C_PRUNED][q], ops[0][q]);
        for (int r = 1; r < C_PRUNED; r++) CHECK(ops[r][q] == ops[0][q]);
        CHECK(ops[C_PI8][q] == ops[C_PRUNED][q]);
    }
    check_sparsity(kind);
    check_qutibench(ops, sparse, bdrate);
    /* The int8 rows' bytes are the .nnc files nnedge compress writes with the same models. */
    for (int r = 2; r < CROWS; r++) {
        double sum = 0;
        for (int i = 0; i < 2; i++) {
            char a[1024], rel[64];
            snprintf(rel, sizeof rel, "c%d%d.nnc", r, i);
            snprintf(a, sizeof a,
                     "compress %%T/ctest/img%02d.png -o %%T/%s --model "
                     "%%T/cwork/%s/%s-q3.nne -q",
                     i, rel, k_crows[r], kind);
            EXPECT_RC(a, 0);
            struct stat st;
            CHECK(stat(nne_cli_tmp_path(rel), &st) == 0);
            sum += (double)st.st_size;
        }
        CHECK_MSG(sum == bytes[r][3], "%s q3: compress %g bytes, table %g", k_crows[r], sum,
                  bytes[r][3]);
    }
    char *md = slurp("cout/quant-bmshj2018-factorized.md");
    CHECK(md && strstr(md, "| int8-pow2 | 4 | int8") && strstr(md, "## Commands") &&
          strstr(md, "## BD-rate matrix") &&
          strstr(md, "| nnedge:bmshj2018-factorized@int8-per-tensor |"));
    nne_free(md);
    CHECK(!nne_cli_tmp_exists("cwork/ref-fp32")); /* no CompressAI-format stand-in */
    /* A rerun runs nothing and writes the same CSV, also for one row: the ladders made
     * before stay in the table (and in the same nnedge rd report). */
    check_rerun(args, "cout/quant-bmshj2018-factorized.csv", csv);
    check_resume(args, kind);
    char one[2900];
    snprintf(one, sizeof one, "%s --rows int8-pow2", args);
    check_rerun(one, "cout/quant-bmshj2018-factorized.csv", csv);
    nne_free(csv);
    /* Rows added later: nnedge rd runs again over the larger set of ladders. */
    snprintf(one, sizeof one, "%s --work '%s/cw2' --out '%s/co2' --rows fp16", args, nne_cli_tmp,
             nne_cli_tmp);
    CHECK(script(one) == 0);
    char *t = slurp("co2/quant-bmshj2018-factorized.csv");
    CHECK(t && strstr(t, "\nfp32,") && strstr(t, "\nfp16,") && !strstr(t, "\nint8-pow2,"));
    nne_free(t);
    snprintf(one, sizeof one, "%s --work '%s/cw2' --out '%s/co2' --rows int8-pow2", args,
             nne_cli_tmp, nne_cli_tmp);
    CHECK(script(one) == 0);
    char *err = slurp("script.err");
    CHECK(err && strstr(err, "nnedge rd ") && strstr(err, "@fp16=") && strstr(err, "@int8-pow2="));
    nne_free(err);
    t = slurp("co2/quant-bmshj2018-factorized.csv");
    CHECK(t && strstr(t, "\nfp32,") && strstr(t, "\nfp16,") && strstr(t, "\nint8-pow2,"));
    nne_free(t);
    /* --dry-run: the commands, nothing made; usage errors. */
    char a[4096];
    snprintf(a, sizeof a, "%s --work '%s/cdry' --dry-run", args, nne_cli_tmp);
    CHECK(script(a) == 0);
    err = slurp("script.err");
    CHECK(err && strstr(err, "nnedge quantize") && strstr(err, "--scheme pow2") &&
          strstr(err, "nnedge rd"));
    nne_free(err);
    CHECK(!nne_cli_tmp_exists("cdry"));
    CHECK(script("--codec cheng2020") == 2);
    snprintf(a, sizeof a, "%s --rows fp32,pruned-oneshot", args);
    CHECK(script(a) == 2);
    /* QAT needs the rung's lambda: a ladder without train.lambda is refused */
    mkdir(nne_cli_tmp_path("cl0"), 0755);
    CHECK_OK(nne_tiny_lcodec_ladder(nne_cli_tmp_path("cl0"), NNE_RD_FACTORIZED, 5, 2));
    snprintf(a, sizeof a, "%s --models '%s/cl0' --work '%s/cw3' --rows int8-pow2-qat", args,
             nne_cli_tmp, nne_cli_tmp);
    CHECK(script(a) == 2);
    err = slurp("script.err");
    CHECK(err && strstr(err, "no train.lambda"));
    nne_free(err);
}

static void test_usage(void) {
    /* codec mode with an empty ladder folder */
    char a[1024];
    snprintf(a, sizeof a, "--codec mbt2018-mean --models '%s' --test '%s/test'", nne_cli_tmp,
             nne_cli_tmp);
    CHECK(script(a) == 2);
    char *err = slurp("script.err");
    CHECK(err && strstr(err, "no models mbt2018-mean-q<N>.nne in"));
    nne_free(err);
    CHECK(script("--rows fp32,bogus") == 2);
    CHECK(script("--bogus 1") == 2);
    CHECK(script("--model") == 2);
    snprintf(a, sizeof a, "--model '%s/missing.nne' --test '%s/test'", nne_cli_tmp, nne_cli_tmp);
    CHECK(script(a) == 2);
    /* --dry-run prints the commands and runs none */
    snprintf(a, sizeof a, "%s --work '%s/dry' --dry-run", k_args, nne_cli_tmp);
    CHECK(script(a) == 0);
    err = slurp("script.err");
    CHECK(err && strstr(err, "nnedge quantize") && strstr(err, "nnedge train"));
    nne_free(err);
    CHECK(!nne_cli_tmp_exists("dry"));
    /* --train-opts: split at spaces into every fine-tune's options (the QAT and pruned rows),
     * none of the other commands */
    snprintf(a, sizeof a,
             "%s --work '%s/dry' --rows int8-per-channel,pruned,int8-per-channel-qat "
             "--train-opts '--qat-lsq 10  --matmul bf16' --dry-run",
             k_args, nne_cli_tmp);
    CHECK(script(a) == 0);
    err = slurp("script.err");
    int trains = 0, with = 0;
    for (char *l = err; l && *l;) {
        char *e = strchr(l, '\n');
        if (e) *e = 0;
        if (strstr(l, "nnedge train ")) {
            trains++;
            with += strstr(l, " --qat-lsq 10 --matmul bf16 ") != NULL;
        } else {
            CHECK(!strstr(l, "--qat-lsq"));
        }
        l = e ? e + 1 : NULL;
    }
    CHECK(trains == 2 && with == 2);
    nne_free(err);
    CHECK(!nne_cli_tmp_exists("dry"));
}

int main(void) {
    nne_cli_setup("quant-results");
    NNE_RUN(test_codec);
    /* calibration / fine-tuning crops of the training set, test crops of the validation set
     * (MS-SSIM needs more than 160 pixels a side) */
    if (!crops("data/train", "calib", 4, 64, 64) || !crops("data/val", "test", 2, 176, 168)) {
        nne_cli_cleanup();
        nne_test_skip("../shared/data/train or val missing");
    }
    EXPECT_RC_IN(nne_cli_tmp,
                 "train --model cae-seed --data calib --steps 8 --batch 2 --crop 32 --lr 3e-3 "
                 "-o tiny.nne -q",
                 0);
    static char args[2048];
    snprintf(args, sizeof args,
             "--model '%1$s/tiny.nne' --calib '%1$s/calib' --data '%1$s/calib' --test "
             "'%1$s/test' --work '%1$s/work' --out '%1$s/out' --qat-steps 3 --ft-steps 3 "
             "--batch 2 --crop 32 --calib-images 2 --calib-crop 32 --train-opts '--clip 0'",
             nne_cli_tmp);
    k_args = args;
    NNE_RUN(test_table);
    NNE_RUN(test_usage);
    if (nne_test_checks_failed == 0)
        nne_cli_cleanup();
    else
        fprintf(stderr, "kept %s for a look\n", nne_cli_tmp);
    return nne_test_summary();
}
