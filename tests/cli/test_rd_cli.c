/* End-to-end tests of nnedge rd on a tiny synthetic folder: exit codes (usage 2, runtime 1),
 * the five report files and that they parse, no overwrite without --force, identical
 * results for 1 and 2 threads, anchors read from a folder; the learned codec
 * (--codecs nnedge:KIND) on a ladder of tiny untrained models written by the test, and
 * several ladders of one kind (nnedge:KIND@LABEL=DIR). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tiny_lcodec.h"
#include "cli_util.h"
#include "nnedge/file.h"
#include "nnedge/gemm.h"
#include "nnedge/image.h"
#include "nnedge/json.h"
#include "nnedge/metrics.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"

/* Two 176x168 RGB images (> 160 per side, so MS-SSIM is defined): smooth shapes and a
 * little seeded noise, different per image. */
static bool write_images(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/img", nne_cli_tmp);
    if (mkdir(dir, 0777) != 0) return false;
    for (int k = 0; k < 2; k++) {
        nne_image img = {0};
        if (nne_image_alloc(&img, 176, 168, 3)) return false;
        nne_test_rng r;
        nne_test_rng_seed(&r, 11 + (unsigned)k);
        for (int y = 0; y < 168; y++)
            for (int x = 0; x < 176; x++) {
                uint8_t *p = img.data + ((size_t)y * 176 + x) * 3;
                const double s = sin((x + 7 * k) * 0.07) * cos(y * 0.05 + k);
                const double n = 6 * (nne_test_rng_uniform(&r) - 0.5);
                const double v[3] = {128 + 90 * s + n, 40 + y + n, 200 - x + 20 * s};
                for (int c = 0; c < 3; c++)
                    p[c] = (uint8_t)(v[c] < 0 ? 0 : v[c] > 255 ? 255 : v[c]);
            }
        char path[600];
        snprintf(path, sizeof path, "%s/im%d.png", dir, k);
        const nne_status s = nne_image_save(path, &img);
        nne_image_free(&img);
        if (s) return false;
    }
    return true;
}

static int count_lines(const char *rel) {
    uint8_t *b = NULL;
    size_t n = 0;
    if (nne_file_read(nne_cli_tmp_path(rel), 1 << 24, &b, &n)) return -1;
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += b[i] == '\n';
    nne_free(b);
    return lines;
}

/* The file as a NUL-terminated string (nne_free). */
static char *slurp(const char *rel, size_t *n) {
    uint8_t *b = NULL;
    if (nne_file_read(nne_cli_tmp_path(rel), 1 << 24, &b, n)) return NULL;
    char *t = nne_malloc(*n + 1);
    if (t) {
        memcpy(t, b, *n);
        t[*n] = 0;
    }
    nne_free(b);
    return t;
}

/* The mean CSV without its two timing columns (the only thread-dependent values). */
static bool same_results(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool same = x && y;
    for (char *p = x, *q = y; same && p && q && *p && *q;) {
        char *pe = strchr(p, '\n'), *qe = strchr(q, '\n');
        if (!pe || !qe) break;
        /* cut each line after its 8th comma (codec..ms_ssim_db) */
        int cp = 0, cq = 0;
        char *pp = p, *qq = q;
        while (pp < pe && cp < 8) cp += *pp++ == ',';
        while (qq < qe && cq < 8) cq += *qq++ == ',';
        same = pp - p == qq - q && memcmp(p, q, (size_t)(pp - p)) == 0;
        p = pe + 1;
        q = qe + 1;
    }
    nne_free(x);
    nne_free(y);
    return same;
}

static void test_usage_errors(void) {
    EXPECT_RC("rd %T/img --codecs jpeg,bpg", 2);
    EXPECT_ERR("unknown codec 'bpg'");
#ifdef NNE_HAVE_CLASSICAL_CODECS
    EXPECT_ERR("jpeg, webp, jp2, avif, jxl");
#else
    EXPECT_ERR("(known: jpeg, nnedge:KIND");
#endif
    EXPECT_RC("rd %T/img --codecs jpeg,jpeg", 2);
    EXPECT_RC("rd %T/img --codecs jpeg --qualities 0,50", 2); /* jpeg quality is 1..100 */
    EXPECT_ERR("outside 1..100");
    EXPECT_RC("rd %T/img --codecs jpeg --qualities 'avif=30,40'", 2);
#ifdef NNE_HAVE_CLASSICAL_CODECS
    EXPECT_RC("rd %T/img --codecs avif --qualities 30.5", 2);
#endif
    EXPECT_RC("rd %T/img --threads 0", 2);
    EXPECT_RC("rd %T/img --anchor-extra jpeg", 2);
    EXPECT_RC("rd", 2);
    EXPECT_RC("rd --help", 0);
    EXPECT_OUT("--qualities");
    EXPECT_RC("help rd", 0);
}

static void test_runtime_errors(void) {
    EXPECT_RC("rd %T/no-such-folder --codecs jpeg -q", 1);
    EXPECT_ERR("no-such-folder");
    EXPECT_RC("rd %T/img --codecs jpeg --anchors %T/no-anchors --anchor-extra x -q", 1);
}

static void test_reports(void) {
    EXPECT_RC("rd %T/img --codecs jpeg,webp,jxl --qualities 'jpeg=10,30,50,70/webp=10,30,50,70/"
              "jxl=1,2,4,8' --threads 2 -o %T/r -q",
              0);
    CHECK(nne_cli_out[0] == 0); /* -q: nothing on stdout */
    CHECK(count_lines("r.csv") == 1 + 12);
    CHECK(count_lines("r-images.csv") == 1 + 12 * 2);
    size_t n = 0;
    char *json = slurp("r.json", &n);
    nne_json_value *v = NULL;
    CHECK(json && nne_json_parse(json, n, &v) == NNE_OK);
    const nne_json_value *codecs = nne_json_get(v, "codecs");
    CHECK(codecs && codecs->type == NNE_JSON_ARRAY && codecs->n == 3);
    if (codecs && codecs->n == 3) {
        /* Points in increasing rate and quality, whatever the knob's direction. */
        for (int c = 0; c < 3; c++) {
            const nne_json_value *pts = nne_json_get(&codecs->items[c], "points");
            CHECK(pts && pts->n == 4);
            for (int k = 1; pts && k < pts->n; k++) {
                CHECK(nne_json_get(&pts->items[k], "bpp")->number >
                      nne_json_get(&pts->items[k - 1], "bpp")->number);
                CHECK(nne_json_get(&pts->items[k], "psnr")->number >
                      nne_json_get(&pts->items[k - 1], "psnr")->number);
            }
        }
    }
    const nne_json_value *bd = nne_json_get(v, "bd");
    CHECK(bd && bd->n == 6); /* 3 x 2 ordered pairs */
    nne_json_value_free(v);
    nne_free(json);
    char *md = slurp("r.md", &n);
    CHECK(md && strstr(md, "nnedge rd ") && strstr(md, "BD-rate matrix") &&
          strstr(md, "![RD curves](r.svg)"));
    nne_free(md);
    char *svg = slurp("r.svg", &n);
    CHECK(svg && n > 20 && strstr(svg, "</svg>") && strstr(svg, "JPEG XL (libjxl)"));
    nne_free(svg);

    /* Existing outputs are kept unless --force. */
    EXPECT_RC("rd %T/img --codecs jpeg -o %T/r -q", 1);
    EXPECT_ERR("already exists");
    /* A missing report folder is an error before any coding, not after. */
    EXPECT_RC("rd %T/img --codecs jpeg -o %T/nosuch/r -q", 1);
    EXPECT_ERR("does not exist or is not writable");
    CHECK(!nne_cli_tmp_exists("nosuch"));
    CHECK(count_lines("r.csv") == 1 + 12);
    /* 1 thread gives the same numbers as 2 (only the timings may differ). */
    EXPECT_RC("rd %T/img --codecs jpeg,webp,jxl --qualities 'jpeg=10,30,50,70/webp=10,30,50,70/"
              "jxl=1,2,4,8' --threads 1 -o %T/r --force -q",
              0);
    EXPECT_RC("rd %T/img --codecs jpeg,webp,jxl --qualities 'jpeg=10,30,50,70/webp=10,30,50,70/"
              "jxl=1,2,4,8' --threads 2 -o %T/s -q",
              0);
    CHECK(same_results("r.csv", "s.csv"));
    CHECK(same_results("r-images.csv", "s-images.csv"));
}

static void test_anchors(void) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/anchors", nne_cli_tmp);
    CHECK(mkdir(dir, 0777) == 0);
    snprintf(path, sizeof path, "%s/jpeg.json", dir);
    const char *doc = "{\"name\": \"JPEG\", \"results\": {\"bpp\": [0.3, 0.6, 1.0, 1.6, 2.4],"
                      " \"psnr-rgb\": [24, 27, 29.5, 32, 34],"
                      " \"ms-ssim-rgb\": [0.85, 0.92, 0.95, 0.97, 0.98]}}";
    CHECK(nne_file_write_atomic(path, doc, strlen(doc)) == NNE_OK);
    EXPECT_RC("rd %T/img --codecs jpeg,avif --qualities 'jpeg=10,30,50,70/avif=50,40,30,20' "
              "--anchors %T/anchors --threads 2",
              0);
    EXPECT_OUT("JPEG (anchor)");
    EXPECT_OUT("BD-rate (pchip, PSNR)");
    EXPECT_RC("rd %T/img --codecs jpeg --qualities 10,30,50,70 --anchors %T/anchors --json", 0);
    nne_json_value *v = NULL;
    CHECK(nne_json_parse(nne_cli_out, strlen(nne_cli_out), &v) == NNE_OK);
    const nne_json_value *an = nne_json_get(v, "anchors");
    CHECK(an && an->n == 1);
    nne_json_value_free(v);
    /* A damaged anchor file is a runtime error naming it. */
    CHECK(nne_file_write_atomic(path, "{\"results\": [", 13) == NNE_OK);
    EXPECT_RC("rd %T/img --codecs jpeg --anchors %T/anchors -q", 1);
    EXPECT_ERR("jpeg.json");
}

/* A ladder of untrained models in DIR/<kind>-q<q>.nne for q = 1..4: one random model whose
 * latent is scaled by 4^(q+1) (tests/tiny_lcodec.h), so the rate grows with q. */
static bool write_ladder(const char *dir, nne_rdmodel_kind kind) {
    mkdir(nne_cli_tmp_path(dir), 0777); /* may exist: one folder holds several kinds */
    return nne_tiny_lcodec_ladder(nne_cli_tmp_path(dir), kind, 5, 2) == NNE_OK;
}

/* Field `col` (0-based) of the first CSV line of `rel` that starts with `prefix`. */
static double csv_field(const char *rel, const char *prefix, int col) {
    size_t n = 0;
    char *b = slurp(rel, &n);
    double v = NAN;
    for (char *line = b; line && *line;) {
        char *end = strchr(line, '\n');
        if (!strncmp(line, prefix, strlen(prefix))) {
            char *f = line;
            for (int k = 0; k < col && f; k++) f = strchr(f, ',') ? strchr(f, ',') + 1 : NULL;
            if (f) v = strtod(f, NULL);
            break;
        }
        line = end ? end + 1 : NULL;
    }
    nne_free(b);
    return v;
}

static bool file_has(const char *rel, const char *s);

static void test_learned(void) {
    CHECK(write_ladder("lad", NNE_RD_FACTORIZED));
    CHECK(write_ladder("lad", NNE_RD_MEAN_SCALE));
    EXPECT_RC("rd %T/img --codecs jpeg,nnedge:bmshj2018-factorized --models %T/lad "
              "--qualities jpeg=10,30,50,70 --threads 2 -o %T/l -q",
              0);
    /* The ladder is the sweep: 4 points, increasing in rate. */
    CHECK(count_lines("l.csv") == 1 + 4 + 4);
    double prev = 0;
    for (int q = 1; q <= 4; q++) {
        char pre[64];
        snprintf(pre, sizeof pre, "nnedge:bmshj2018-factorized,quality,%d,", q);
        const double bpp = csv_field("l.csv", pre, 4);
        CHECK(bpp > prev);
        prev = bpp;
        CHECK(csv_field("l.csv", pre, 8) > 0); /* encode_ms_median: timed */
    }
    /* bpp and PSNR of image 0 at q3 are those of the real .nnc file `nnedge compress` writes
     * with the same model, and of the image `nnedge decompress` gives back. */
    EXPECT_RC("compress %T/img/im0.png -o %T/im0.nnc --model %T/lad/bmshj2018-factorized-q3.nne "
              "--quality 3 -q",
              0);
    EXPECT_RC("decompress %T/im0.nnc -o %T/im0-dec.png --model "
              "%T/lad/bmshj2018-factorized-q3.nne -q",
              0);
    struct stat st;
    CHECK(stat(nne_cli_tmp_path("im0.nnc"), &st) == 0);
    const char *pre = "nnedge:bmshj2018-factorized,quality,3,im0,";
    CHECK(csv_field("l-images.csv", pre, 6) == (double)st.st_size);
    CHECK_NEAR(csv_field("l-images.csv", pre, 7), 8.0 * (double)st.st_size / (176.0 * 168.0), 1e-6);
    nne_image a = {0}, b = {0};
    CHECK_OK(nne_image_load(nne_cli_tmp_path("img/im0.png"), NNE_IMAGE_LOAD_RGB, &a));
    CHECK_OK(nne_image_load(nne_cli_tmp_path("im0-dec.png"), NNE_IMAGE_LOAD_RGB, &b));
    nne_quality qv;
    CHECK_OK(nne_quality_u8(a.data, b.data, 176, 168, 3, &qv));
    CHECK_NEAR(csv_field("l-images.csv", pre, 8), qv.psnr, 1e-4);
    nne_image_free(&a);
    nne_image_free(&b);
    /* The learned codec is in the BD-rate matrix, the plot and the JSON. */
    size_t n = 0;
    char *md = slurp("l.md", &n);
    CHECK(md && strstr(md, "| jpeg | - | ") && strstr(md, "| nnedge:bmshj2018-factorized |") &&
          strstr(md, "nnedge lcodec: bmshj2018-factorized N=8 M=12, 4 model(s)"));
    nne_free(md);
    char *svg = slurp("l.svg", &n);
    CHECK(svg && strstr(svg, "nnedge bmshj2018-factorized (learned)"));
    nne_free(svg);
    /* Two learned kinds side by side, a sub-ladder by --qualities, same results on 1 thread. */
    EXPECT_RC("rd %T/img --codecs nnedge:bmshj2018-factorized,nnedge:mbt2018-mean --models "
              "%T/lad --qualities nnedge:mbt2018-mean=1,2,4 --threads 1 -o %T/m -q",
              0);
    CHECK(count_lines("m.csv") == 1 + 4 + 3);
    CHECK(csv_field("m.csv", "nnedge:mbt2018-mean,quality,4,", 4) > 0);
    CHECK(csv_field("m.csv", "nnedge:bmshj2018-factorized,quality,2,", 4) ==
          csv_field("l.csv", "nnedge:bmshj2018-factorized,quality,2,", 4));
    /* Errors: unknown kind (usage), no ladder, a quality outside the ladder. */
    EXPECT_RC("rd %T/img --codecs nnedge:cheng2020 --models %T/lad", 2);
    EXPECT_ERR("unknown learned-codec kind");
    EXPECT_RC("rd %T/img --codecs nnedge:bmshj2018-hyperprior --models %T/lad -q", 1);
    EXPECT_ERR("no models bmshj2018-hyperprior-q<N>.nne in");
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean --models %T/lad --qualities 7 -q", 2);
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean --models %T/lad --qualities 1,3,2 -q", 0);
    /* --refine: the tiny ladder has no train.lambda (runtime error before any coding); usage
     * errors. */
    EXPECT_RC("rd %T/img --codecs jpeg,nnedge:mbt2018-mean --models %T/lad --refine 2 -q", 1);
    EXPECT_ERR("train.lambda");
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean --models %T/lad --refine -2 -q", 2);
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean --models %T/lad --refine-lr 0.1 -q", 2);
    EXPECT_RC("rd %T/img --codecs jpeg --refine 0 --qualities 50 -q", 0);
    EXPECT_RC("rd %T/img --codecs jpeg --refine-codecs jpeg -q", 2);
    EXPECT_ERR("--refine-codecs needs --refine N");
    EXPECT_RC("rd %T/img --codecs jpeg,nnedge:mbt2018-mean --models %T/lad --refine 2 "
              "--refine-codecs jpeg -q",
              2);
    EXPECT_ERR("not a learned codec of --codecs");
    /* Only the named ladder refines: the other one, here the only one, is not checked for a
     * lambda. */
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean,nnedge:mbt2018-mean@b=%T/lad --models "
              "%T/lad --qualities nnedge:mbt2018-mean=1,2,3,4/nnedge:mbt2018-mean@b=1,2,3,4 "
              "--refine 2 --refine-codecs nnedge:mbt2018-mean -q",
              1);
    EXPECT_ERR("train.lambda");
    /* The same tiny mean-scale ladder with train.lambda in a folder of its own: it refines, the
     * lambda-less one beside it does not. */
    mkdir(nne_cli_tmp_path("ladl"), 0777);
    for (int q = 1; q <= 4; q++) {
        char src[64], dst[64];
        snprintf(src, sizeof src, "lad/mbt2018-mean-q%d.nne", q);
        snprintf(dst, sizeof dst, "ladl/mbt2018-mean-q%d.nne", q);
        nne_graph *g = NULL;
        CHECK_OK(nne_model_read_file(nne_cli_tmp_path(src), &g));
        if (!g) return;
        CHECK_OK(nne_graph_set_meta(g, "train.lambda", "0.01"));
        CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path(dst)));
        nne_graph_free(g);
    }
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean@l=%T/ladl,nnedge:mbt2018-mean@b=%T/lad "
              "--refine 2 --refine-codecs nnedge:mbt2018-mean@l --threads 2 -o %T/rf -q",
              0);
    CHECK(file_has("rf.md", "latent refinement: 2 Adam steps"));
    CHECK(csv_field("rf.csv", "nnedge:mbt2018-mean@l,quality,2,", 4) > 0);
    CHECK(csv_field("rf.csv", "nnedge:mbt2018-mean@b,quality,2,", 4) ==
          csv_field("m.csv", "nnedge:mbt2018-mean,quality,2,", 4));
}

/* Does the file hold `s`? */
static bool file_has(const char *rel, const char *s) {
    size_t n = 0;
    char *t = slurp(rel, &n);
    const bool has = t && strstr(t, s);
    nne_free(t);
    return has;
}

/* Same bytes? */
static bool same_files(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    const bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    nne_free(x);
    nne_free(y);
    return same;
}

/* Copy the ladder files DIR/<kind>-q1..4.nne byte for byte into TO (made here). */
static bool copy_ladder(const char *dir, const char *to, const char *kind) {
    if (mkdir(nne_cli_tmp_path(to), 0777) != 0) return false;
    for (int q = 1; q <= 4; q++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s-q%d.nne", dir, kind, q);
        snprintf(b, sizeof b, "%s/%s-q%d.nne", to, kind, q);
        uint8_t *buf = NULL;
        size_t n = 0;
        nne_status s = nne_file_read(nne_cli_tmp_path(a), 1 << 26, &buf, &n);
        if (!s) s = nne_file_write_atomic(nne_cli_tmp_path(b), buf, n);
        nne_free(buf);
        if (s) return false;
    }
    return true;
}

/* The BD values of `test` against `reference` in an nnedge rd JSON document, or NULL. */
static const nne_json_value *bd_values(const nne_json_value *doc, const char *reference,
                                       const char *test) {
    const nne_json_value *bd = nne_json_get(doc, "bd");
    for (int i = 0; bd && i < bd->n; i++) {
        const nne_json_value *r = nne_json_get(&bd->items[i], "reference"),
                             *t = nne_json_get(&bd->items[i], "test");
        if (r && t && r->type == NNE_JSON_STRING && t->type == NNE_JSON_STRING &&
            !strcmp(r->string, reference) && !strcmp(t->string, test))
            return nne_json_get(&bd->items[i], "values");
    }
    return NULL;
}

static double bd_number(const nne_json_value *values, const char *key) {
    const nne_json_value *v = nne_json_get(values, key);
    return v && v->type == NNE_JSON_NUMBER ? v->number : NAN;
}

/* Several ladders of one kind in one run (nnedge:KIND@LABEL=DIR, docs/rd.md): "a" (lad/),
 * "b" (lad's weights at other latent scales, so other rates), and "copy" (a byte copy of
 * lad/, labelled by its folder's name) in a folder whose name holds '=' and ':'. Each has its
 * own name in the CSV, JSON, BD matrix and plot; BD of b against a is finite, of the copy
 * against a exactly 0; the errors. */
static void test_ladders(void) {
    const char *kind = "mbt2018-mean";
    if (!nne_cli_tmp_exists("lad/mbt2018-mean-q4.nne"))
        CHECK(write_ladder("lad", NNE_RD_MEAN_SCALE));
    CHECK(mkdir(nne_cli_tmp_path("ladb"), 0777) == 0); /* lad's weights, scales 8 .. 512 */
    CHECK_OK(nne_tiny_lcodec_ladder(nne_cli_tmp_path("ladb"), NNE_RD_MEAN_SCALE, 5, 1));
    CHECK(mkdir(nne_cli_tmp_path("q=8:x"), 0777) == 0);
    CHECK(copy_ladder("lad", "q=8:x/copy", kind));
    EXPECT_RC("rd %T/img --codecs 'jpeg,nnedge:mbt2018-mean@a=%T/lad,nnedge:mbt2018-mean@b=%T/"
              "ladb,nnedge:mbt2018-mean=%T/q=8:x/copy/' --qualities jpeg=10,30,50,70 --threads 2 "
              "-o %T/k",
              0);
    EXPECT_OUT("nnedge:mbt2018-mean@copy");
    CHECK(count_lines("k.csv") == 1 + 4 * 4);
    for (int q = 1; q <= 4; q++) {
        char pa[64], pb[64], pc[64];
        snprintf(pa, sizeof pa, "nnedge:mbt2018-mean@a,quality,%d,", q);
        snprintf(pb, sizeof pb, "nnedge:mbt2018-mean@b,quality,%d,", q);
        snprintf(pc, sizeof pc, "nnedge:mbt2018-mean@copy,quality,%d,", q);
        const double a = csv_field("k.csv", pa, 4), b = csv_field("k.csv", pb, 4);
        CHECK_MSG(a > 0 && b > 0 && a != b, "q%d: bpp a %g, b %g", q, a, b);
        CHECK(csv_field("k.csv", pc, 4) == a); /* the same models: the same bytes */
        CHECK(csv_field("k.csv", pc, 5) == csv_field("k.csv", pa, 5));
    }
    size_t n = 0;
    char *json = slurp("k.json", &n);
    nne_json_value *v = NULL;
    CHECK(json && nne_json_parse(json, n, &v) == NNE_OK);
    const nne_json_value *codecs = nne_json_get(v, "codecs");
    CHECK(codecs && codecs->n == 4);
    if (codecs && codecs->n == 4) {
        CHECK(!strcmp(nne_json_get(&codecs->items[1], "name")->string, "nnedge:mbt2018-mean@a"));
        CHECK(!strcmp(nne_json_get(&codecs->items[2], "label")->string,
                      "b: nnedge mbt2018-mean (learned)"));
        CHECK(strstr(nne_json_get(&codecs->items[3], "settings")->string, "q=8:x/copy/"));
    }
    CHECK(nne_json_get(v, "bd")->n == 4 * 3);
    const nne_json_value *ab = bd_values(v, "nnedge:mbt2018-mean@a", "nnedge:mbt2018-mean@b");
    const nne_json_value *ac = bd_values(v, "nnedge:mbt2018-mean@a", "nnedge:mbt2018-mean@copy");
    CHECK(ab && ac);
    /* (untrained rungs: PSNR all but flat, so the values mean nothing but the plumbing) */
    const double ab_rate = bd_number(ab, "bd_rate_psnr_pct_pchip");
    CHECK_MSG(isfinite(ab_rate) && ab_rate != 0, "BD-rate b vs a: %g", ab_rate);
    CHECK(isfinite(bd_number(ab, "bd_psnr_db_pchip")));
    /* The identical ladder: every computable BD is 0 (the same curve). */
    CHECK(bd_number(ac, "bd_psnr_db_pchip") == 0 && bd_number(ac, "bd_psnr_db_cubic") == 0);
    CHECK(bd_number(ac, "bd_rate_psnr_pct_pchip") == 0);
    CHECK(bd_number(ac, "bd_rate_ms_ssim_pct_pchip") == 0);
    nne_json_value_free(v);
    nne_free(json);
    CHECK(file_has("k.md", "| nnedge:mbt2018-mean@b | ") &&
          file_has("k.md", "**copy: nnedge mbt2018-mean (learned)**"));
    CHECK(file_has("k.svg", "a: nnedge mbt2018-mean (learned)") &&
          file_has("k.svg", "b: nnedge mbt2018-mean (learned)"));
    /* A labelled ladder beside the plain one of --models; a sub-ladder of one label only. */
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean,nnedge:mbt2018-mean@b=%T/ladb --models "
              "%T/lad --qualities 'nnedge:mbt2018-mean@b=2,4' -o %T/k2 -q",
              0);
    CHECK(count_lines("k2.csv") == 1 + 4 + 2);
    CHECK(csv_field("k2.csv", "nnedge:mbt2018-mean,quality,3,", 4) ==
          csv_field("k.csv", "nnedge:mbt2018-mean@a,quality,3,", 4));
    CHECK(csv_field("k2.csv", "nnedge:mbt2018-mean@b,quality,4,", 4) ==
          csv_field("k.csv", "nnedge:mbt2018-mean@b,quality,4,", 4));
    /* Usage errors (exit 2, before any ladder is opened): the same label twice, explicitly or
     * from two folders with one name; a bad label; an empty folder; an unknown kind. */
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean@a=%T/lad,nnedge:mbt2018-mean@a=%T/ladb", 2);
    EXPECT_ERR("two ladders named 'nnedge:mbt2018-mean@a'");
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean=%T/q=8:x/copy,nnedge:mbt2018-mean=%T/no/copy",
              2);
    EXPECT_ERR("two ladders named 'nnedge:mbt2018-mean@copy'");
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean,nnedge:mbt2018-mean --models %T/lad", 2);
    EXPECT_RC("rd %T/img --codecs 'nnedge:mbt2018-mean@a|b=%T/lad'", 2);
    EXPECT_ERR("a label is");
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean@a=", 2);
    EXPECT_RC("rd %T/img --codecs nnedge:cheng2020@a=%T/lad", 2);
    EXPECT_ERR("unknown learned-codec kind");
    /* Runtime errors (exit 1) naming the folder: missing, or without the ladder. */
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean@a=%T/lad,nnedge:mbt2018-mean@z=%T/no-such "
              "-q",
              1);
    EXPECT_ERR("no-such: no such folder");
    EXPECT_RC("rd %T/img --codecs nnedge:bmshj2018-hyperprior@h=%T/ladb -q", 1);
    EXPECT_ERR("no models bmshj2018-hyperprior-q<N>.nne in");
    EXPECT_ERR("/ladb");
}

/* Int8 codecs (docs/codec.md, "Int8 codecs"): nnedge quantize on a ladder rung, info, a
 * compress / decompress round trip with identical pixels and bytes for NNEDGE_ISA=ref/avx2
 * and NNEDGE_THREADS=1/2, f32 and int8 refusing each other's streams, and nnedge rd on an
 * int8 ladder. Calibrated on the synthetic images (never Kodak). */
static void test_int8(void) {
    if (!nne_cli_tmp_exists("lad/mbt2018-mean-q3.nne"))
        CHECK(write_ladder("lad", NNE_RD_MEAN_SCALE));
    CHECK(mkdir(nne_cli_tmp_path("lad8"), 0777) == 0);
    for (int q = 2; q <= 3; q++) {
        char a[512];
        snprintf(a, sizeof a,
                 "quantize %%T/lad/mbt2018-mean-q%d.nne --calib %%T/img --crop 64 --scheme pow2 "
                 "--max-images 2 -o %%T/lad8/mbt2018-mean-q%d.nne --json",
                 q, q);
        EXPECT_RC(a, 0);
        CHECK(nne_cli_json_valid(nne_cli_out));
        EXPECT_OUT("\"codec\": \"mbt2018-mean\"");
    }
    EXPECT_RC("quantize %T/lad/mbt2018-mean-q3.nne --calib %T/img --crop 100 -o %T/x.nne", 2);
    EXPECT_ERR("multiple of 64");
    EXPECT_RC("quantize %T/lad8/mbt2018-mean-q3.nne --calib %T/img --crop 64 -o %T/x.nne", 1);
    EXPECT_ERR("attached graphs already");
    EXPECT_RC("quantize %T/lad8/mbt2018-mean-q3.nne --fake --scheme fp16 -o %T/x.nne", 1);
    EXPECT_RC("info %T/lad8/mbt2018-mean-q3.nne", 0);
    EXPECT_OUT("attached: model mbt2018-mean.g_a");
    EXPECT_OUT("learned codec mbt2018-mean N=8 M=12: int8 (g_a, g_s pow2 on cpu-s8");
    EXPECT_RC("info %T/lad8/mbt2018-mean-q3.nne --json", 0);
    EXPECT_OUT("\"precision\": \"int8\"");
    /* Round trip, on every ISA and thread count with the same bytes and pixels. */
    EXPECT_RC("compress %T/img/im1.png -o %T/i8.nnc --model %T/lad8/mbt2018-mean-q3.nne -q", 0);
    setenv("NNEDGE_ISA", "ref", 1);
    setenv("NNEDGE_THREADS", "1", 1);
    EXPECT_RC("compress %T/img/im1.png -o %T/i8r.nnc --model %T/lad8/mbt2018-mean-q3.nne -q", 0);
    EXPECT_RC("decompress %T/i8.nnc -o %T/i8r.ppm --model %T/lad8/mbt2018-mean-q3.nne -q", 0);
    setenv("NNEDGE_ISA", nne_ops_isa_supported("avx2") ? "avx2" : "ref", 1);
    setenv("NNEDGE_THREADS", "2", 1);
    EXPECT_RC("decompress %T/i8.nnc -o %T/i8a.ppm --model %T/lad8/mbt2018-mean-q3.nne -q", 0);
    unsetenv("NNEDGE_ISA");
    unsetenv("NNEDGE_THREADS");
    CHECK(same_files("i8.nnc", "i8r.nnc"));
    CHECK(same_files("i8r.ppm", "i8a.ppm"));
    /* The f32 model refuses the int8 stream (model hash). */
    EXPECT_RC("decompress %T/i8.nnc -o %T/f.ppm --model %T/lad/mbt2018-mean-q3.nne -q", 1);
    EXPECT_ERR("wrong model");
    /* nnedge rd on the int8 ladder: bytes of image 1 at q3 = the compressed file. */
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean --models %T/lad8 --threads 2 -o %T/r8 -q", 0);
    CHECK(count_lines("r8.csv") == 1 + 2);
    struct stat st;
    CHECK(stat(nne_cli_tmp_path("i8.nnc"), &st) == 0);
    CHECK(csv_field("r8-images.csv", "nnedge:mbt2018-mean,quality,3,im1,", 6) ==
          (double)st.st_size);
    CHECK(file_has("r8.md", "g_a/g_s int8 (pow2) on cpu-s8"));
    /* A ladder mixing f32 and int8 rungs is refused. */
    EXPECT_RC("quantize %T/lad/mbt2018-mean-q4.nne --fake --scheme fp16 -o "
              "%T/lad8/mbt2018-mean-q4.nne -q",
              0);
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean --models %T/lad8 -q", 1);
    EXPECT_ERR("one kind and precision");
}

/* A ladder whose rungs differ in width (the shipped mbt2018-mean's q6/q7 are 64,192 over a
 * 64,96 ladder): the 4 rungs of lad/ and a q5 widened from q4 to M = 20 (--init-widen's copy)
 * open as one codec, report the range of M and code every rung; a wider rung's streams
 * decode. */
static void test_mixed_widths(void) {
    if (!nne_cli_tmp_exists("lad/mbt2018-mean-q4.nne"))
        CHECK(write_ladder("lad", NNE_RD_MEAN_SCALE));
    CHECK(copy_ladder("lad", "ladw", "mbt2018-mean"));
    const nne_rdmodel_config wc = {NNE_RD_MEAN_SCALE, NNE_TINY_N, NNE_TINY_M + 8,
                                   NNE_QUANTIZE_NOISE, false};
    nne_graph *q4 = NULL, *w = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("ladw/mbt2018-mean-q4.nne"), &q4));
    CHECK_OK(nne_model_rd(&wc, 1, 64, 64, NNE_RD_TRAIN, &w));
    if (q4 && w) {
        CHECK_OK(nne_train_init_params(w, 7));
        int32_t copied = 0, widened = 0;
        CHECK_OK(nne_model_copy_weights_widen(w, q4, &copied, &widened, NULL));
        CHECK(widened > 0);
        CHECK_OK(nne_model_write_file(w, nne_cli_tmp_path("ladw/mbt2018-mean-q5.nne")));
    }
    nne_graph_free(q4);
    nne_graph_free(w);
    EXPECT_RC("rd %T/img --codecs nnedge:mbt2018-mean --models %T/ladw --threads 2 -o %T/rw -q", 0);
    CHECK(count_lines("rw.csv") == 1 + 5);
    CHECK(file_has("rw.md", "N=8 M=12..20"));
    EXPECT_RC("compress %T/img/im1.png -o %T/w5.nnc --model %T/ladw/mbt2018-mean-q5.nne -q", 0);
    EXPECT_RC("decompress %T/w5.nnc -o %T/w5.ppm --model %T/ladw/mbt2018-mean-q5.nne -q", 0);
}

/* A build without the classical codecs (-DNNE_CLASSICAL_CODECS=OFF): `version` lists jpeg
 * alone, the others are refused by name as left out (not unknown), and the default
 * --codecs is jpeg. With them, `version` lists all five. */
static void test_codec_set(void) {
    EXPECT_RC("version", 0);
#ifdef NNE_HAVE_CLASSICAL_CODECS
    EXPECT_OUT("classical codecs: jpeg webp jp2 avif jxl\n");
#else
    EXPECT_OUT("classical codecs: jpeg\n");
    const char *gone[] = {"webp", "jp2", "avif", "jxl"};
    for (int i = 0; i < 4; i++) {
        char args[128];
        snprintf(args, sizeof args, "rd %%T/img --codecs jpeg,%s -q", gone[i]);
        EXPECT_RC(args, 2);
        EXPECT_ERR("is not in this build of nnedge");
        EXPECT_ERR("NNE_CLASSICAL_CODECS=OFF");
    }
    EXPECT_RC("rd %T/img --qualities 10,30,50,70 -o %T/only-jpeg -q", 0);
    CHECK(count_lines("only-jpeg.csv") == 1 + 4); /* jpeg's four qualities and nothing else */
    CHECK(csv_field("only-jpeg.csv", "jpeg,", 2) == 10);
#endif
}

int main(void) {
    nne_cli_setup("rd");
    CHECK(write_images());
    NNE_RUN(test_learned);
    NNE_RUN(test_int8);
    NNE_RUN(test_ladders);
    NNE_RUN(test_mixed_widths);
    NNE_RUN(test_usage_errors);
    NNE_RUN(test_runtime_errors);
    NNE_RUN(test_codec_set);
#ifdef NNE_HAVE_CLASSICAL_CODECS
    NNE_RUN(test_reports);
    NNE_RUN(test_anchors);
#else
    (void)test_reports; /* both need webp, jxl or avif */
    (void)test_anchors;
#endif
    nne_cli_cleanup();
    return nne_test_summary();
}
