/* End-to-end tests of nnedge compress / decompress (the learned codec, docs/codec.md) with
 * tiny models trained by the test (tests/tiny_lcodec.h) and put in a registry folder named
 * by NNEDGE_MODELS: single files and folders, overwrite rules, the model registry, wrong
 * models, damaged files, JSON, identical pixels for NNEDGE_ISA=ref/avx2 and
 * NNEDGE_THREADS=1/2, --refine, and --bpp rate control over a ladder of untrained models. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../tiny_lcodec.h"
#include "cli_util.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"

static bool write_model(nne_rdmodel_kind kind, uint64_t seed, const char *name) {
    nne_graph *g = NULL;
    if (nne_tiny_lcodec_model(kind, seed, &g)) return false;
    const bool ok = nne_model_write_file(g, nne_cli_tmp_path(name)) == NNE_OK;
    nne_graph_free(g);
    return ok;
}

/* bmshj2018-factorized-q1..q4.nne: untrained, latent scaled by 16, 64, 256, 1024. */
static bool write_ladder(void) {
    return nne_tiny_lcodec_ladder(nne_cli_tmp, NNE_RD_FACTORIZED, 5, 2) == NNE_OK;
}

static bool write_image(const char *name, int32_t w, int32_t h, int32_t phase) {
    nne_image img = {0};
    if (nne_image_alloc(&img, w, h, 3)) return false;
    float *x = malloc((size_t)w * h * 3 * sizeof *x);
    nne_tiny_pattern(x, h, w, phase);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img.data[i] = (uint8_t)(x[i] * 255.0f + 0.5f);
    free(x);
    const bool ok = nne_image_save(nne_cli_tmp_path(name), &img) == NNE_OK;
    nne_image_free(&img);
    return ok;
}

static void test_single(void) {
    EXPECT_RC("compress samples/wiki-crop.png -o %T/a.nnc --quality 1", 0);
    EXPECT_OUT("bpp");
    CHECK(nne_cli_tmp_exists("a.nnc"));
    EXPECT_RC("compress samples/wiki-crop.png -o %T/a.nnc --quality 1", 1);
    EXPECT_ERR("already exists; use --force");
    EXPECT_RC("compress samples/wiki-crop.png -o %T/a.nnc --quality 1 --force -q", 0);
    CHECK(nne_cli_out[0] == 0);
    /* The stream names model and quality: decompress finds the model itself. */
    EXPECT_RC("decompress %T/a.nnc -o %T/a.png", 0);
    EXPECT_OUT("320x240");
    nne_image img = {0};
    CHECK_OK(nne_image_load(nne_cli_tmp_path("a.png"), NNE_IMAGE_LOAD_RGB, &img));
    CHECK(img.width == 320 && img.height == 240);
    nne_image_free(&img);
    /* Same pixels for every ISA and thread count. */
    setenv("NNEDGE_ISA", "ref", 1);
    setenv("NNEDGE_THREADS", "1", 1);
    EXPECT_RC("decompress %T/a.nnc -o %T/r1.ppm", 0);
    setenv("NNEDGE_ISA", "avx2", 1);
    setenv("NNEDGE_THREADS", "2", 1);
    EXPECT_RC("decompress %T/a.nnc -o %T/r2.ppm", 0);
    unsetenv("NNEDGE_ISA");
    unsetenv("NNEDGE_THREADS");
    CHECK(nne_cli_same_files("r1.ppm", "r2.ppm"));
    /* And the encoder's bytes too. */
    setenv("NNEDGE_ISA", "ref", 1);
    EXPECT_RC("compress samples/wiki-crop.png -o %T/b.nnc --quality 1 -q", 0);
    unsetenv("NNEDGE_ISA");
    CHECK(nne_cli_same_files("a.nnc", "b.nnc"));
    /* A model file by path, and the mean-scale kind from the registry. */
    EXPECT_RC("compress %T/odd.png -o %T/m.nnc --model mbt2018-mean --quality 2 --json", 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    EXPECT_OUT("\"model\": \"mbt2018-mean\"");
    EXPECT_RC("decompress %T/m.nnc -o %T/m.png --model %T/mbt2018-mean-q2.nne", 0);
    EXPECT_RC("decompress %T/m.nnc -o %T/m.png --force", 0);
    CHECK_OK(nne_image_load(nne_cli_tmp_path("m.png"), NNE_IMAGE_LOAD_RGB, &img));
    CHECK(img.width == 37 && img.height == 23);
    nne_image_free(&img);
    /* A registry-named file by path stores its own quality (2, not the default 3), so the
     * stream decodes from the registry without options; --quality still wins. */
    EXPECT_RC("compress %T/odd.png -o %T/f.nnc --model %T/mbt2018-mean-q2.nne", 0);
    EXPECT_OUT(" q2)");
    CHECK(nne_cli_same_files("f.nnc", "m.nnc"));
    EXPECT_RC("decompress %T/f.nnc -o %T/f.png", 0);
    EXPECT_OUT("mbt2018-mean-q2.nne q2");
    EXPECT_RC("compress %T/odd.png -o %T/g.nnc --model %T/mbt2018-mean-q2.nne --quality 5", 0);
    EXPECT_OUT(" q5)");
    EXPECT_RC("compress %T/odd.png -o %T/h.nnc --model %T/other.nne", 0);
    EXPECT_OUT(" q3)");
}

static void test_errors(void) {
    /* Wrong model: same kind, other weights. */
    EXPECT_RC("decompress %T/a.nnc -o %T/w.png --model %T/other.nne", 1);
    EXPECT_ERR("wrong model");
    /* Not in the registry. */
    EXPECT_RC("compress samples/wiki-crop.png -o %T/q7.nnc --quality 42", 1);
    EXPECT_ERR("mbt2018-mean-q42.nne");
    CHECK(!nne_cli_tmp_exists("q7.nnc"));
    EXPECT_RC("compress samples/wiki-crop.png -o %T/q7.nnc --model bmshj2018-hyperprior "
              "--quality 42",
              1);
    EXPECT_ERR("bmshj2018-hyperprior-q42.nne");
    EXPECT_RC("compress samples/wiki-crop.png -o %T/x.nnc --model nosuch", 1);
    EXPECT_ERR("neither a model file nor");
    /* Usage errors. */
    EXPECT_RC("compress samples/wiki-crop.png -o %T/x.nnc --quality 200", 2);
    EXPECT_RC("compress samples/wiki-crop.png", 2);
    EXPECT_RC("decompress", 2);
    /* Never the input, even with --force. */
    EXPECT_RC("decompress %T/a.nnc -o %T/a.nnc --force", 1);
    EXPECT_ERR("refusing to overwrite the input");
    /* Damaged and truncated files. */
    size_t n = 0;
    unsigned char *b = nne_test_read_file(nne_cli_tmp_path("a.nnc"), &n);
    CHECK(b && n > 200);
    if (!b) return;
    FILE *f = fopen(nne_cli_tmp_path("bad.nnc"), "wb");
    b[n - 5] ^= 0x10;
    fwrite(b, 1, n, f);
    fclose(f);
    EXPECT_RC("decompress %T/bad.nnc -o %T/bad.png", 1);
    EXPECT_ERR("bad.nnc: nnc: ");
    f = fopen(nne_cli_tmp_path("short.nnc"), "wb");
    fwrite(b, 1, n / 2, f);
    fclose(f);
    EXPECT_RC("decompress %T/short.nnc -o %T/short.png", 1);
    EXPECT_ERR("truncated");
    CHECK(!nne_cli_tmp_exists("bad.png") && !nne_cli_tmp_exists("short.png"));
    free(b);
}

/* --refine: latent refinement needs the model's train.lambda; a refined stream decodes like
 * any other; usage errors. */
static void test_refine(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_tiny_lcodec_model(NNE_RD_MEAN_SCALE, 21, &g));
    if (!g) return;
    CHECK_OK(nne_graph_set_meta(g, "train.lambda", "0.01"));
    CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path("lam.nne")));
    nne_graph_free(g);
    EXPECT_RC("compress %T/odd.png -o %T/r.nnc --model %T/lam.nne --refine 4 --json", 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    EXPECT_OUT("\"refine_iterations\": 4");
    EXPECT_OUT("\"refine_loss_after\"");
    EXPECT_RC("compress %T/odd.png -o %T/r.nnc --model %T/lam.nne --refine 4 --refine-lr 0.05 "
              "--force",
              0);
    EXPECT_OUT("latent refinement: 4 steps, estimated loss");
    EXPECT_RC("decompress %T/r.nnc -o %T/r.png --model %T/lam.nne", 0);
    nne_image img = {0};
    CHECK_OK(nne_image_load(nne_cli_tmp_path("r.png"), NNE_IMAGE_LOAD_RGB, &img));
    CHECK(img.width == 37 && img.height == 23);
    nne_image_free(&img);
    /* The registry's tiny models were stored without train.lambda. */
    EXPECT_RC("compress %T/odd.png -o %T/r2.nnc --model %T/other.nne --refine 4", 1);
    EXPECT_ERR("train.lambda");
    CHECK(!nne_cli_tmp_exists("r2.nnc"));
    EXPECT_RC("compress %T/odd.png -o %T/r2.nnc --refine -1", 2);
    EXPECT_RC("compress %T/odd.png -o %T/r2.nnc --refine x", 2);
    EXPECT_RC("compress %T/odd.png -o %T/r2.nnc --refine-lr 0.1", 2);
    EXPECT_ERR("--refine-lr needs --refine");
    EXPECT_RC("compress %T/odd.png -o %T/r2.nnc --refine 3 --refine-lr 0", 2);
    EXPECT_RC("decompress %T/r.nnc -o %T/r3.png --refine 3", 2);
}

static void test_folder(void) {
    mkdir(nne_cli_tmp_path("in"), 0777);
    CHECK(write_image("in/one.png", 65, 64, 1));
    CHECK(write_image("in/two.ppm", 1, 1, 2));
    CHECK(write_image("in/three.png", 130, 17, 3));
    FILE *f = fopen(nne_cli_tmp_path("in/notes.txt"), "w");
    fputs("not an image\n", f);
    fclose(f);
    EXPECT_RC("compress %T/in -o %T/out --quality 1", 0);
    EXPECT_OUT("3 of 3 files compressed");
    EXPECT_ERR("3/3");
    CHECK(nne_cli_tmp_exists("out/one.nnc") && nne_cli_tmp_exists("out/two.nnc") &&
          nne_cli_tmp_exists("out/three.nnc"));
    EXPECT_RC("compress %T/in -o %T/out --quality 1", 1); /* outputs exist */
    EXPECT_RC("decompress %T/out -o %T/dec --json", 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    nne_image img = {0};
    CHECK_OK(nne_image_load(nne_cli_tmp_path("dec/three.png"), NNE_IMAGE_LOAD_RGB, &img));
    CHECK(img.width == 130 && img.height == 17);
    nne_image_free(&img);
    CHECK_OK(nne_image_load(nne_cli_tmp_path("dec/two.png"), NNE_IMAGE_LOAD_RGB, &img));
    CHECK(img.width == 1 && img.height == 1);
    nne_image_free(&img);
    /* A folder in, a file out. */
    EXPECT_RC("decompress %T/out -o %T/a.png", 2);
}

static long file_size(const char *name) {
    struct stat st;
    return stat(nne_cli_tmp_path(name), &st) == 0 ? (long)st.st_size : -1;
}

/* --bpp: the highest quality of the kind's registry ladder whose real file meets the target
 * (a ladder bmshj2018-factorized-q1..q4 of untrained models with growing latent scale). */
static void test_bpp(void) {
    const double px = 320.0 * 240.0;
    double bpp[5] = {0};
    for (int q = 1; q <= 4; q++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "compress samples/wiki-crop.png -o %%T/f%d.nnc --model bmshj2018-factorized "
                 "--quality %d -q",
                 q, q);
        EXPECT_RC(cmd, 0);
        char name[32];
        snprintf(name, sizeof name, "f%d.nnc", q);
        bpp[q] = 8.0 * (double)file_size(name) / px;
        CHECK(q == 1 || bpp[q] > bpp[q - 1]);
    }
    /* Between q2 and q3: q2, the same bytes as --quality 2. */
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "compress samples/wiki-crop.png -o %%T/t.nnc --model bmshj2018-factorized --bpp %.6f "
             "--json",
             0.5 * (bpp[2] + bpp[3]));
    EXPECT_RC(cmd, 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    EXPECT_OUT("\"quality\": 2,");
    EXPECT_OUT("\"target_met\": true");
    CHECK(nne_cli_same_files("t.nnc", "f2.nnc"));
    /* Exactly the q3 rate still fits; a generous target takes the top of the ladder. */
    snprintf(cmd, sizeof cmd,
             "compress samples/wiki-crop.png -o %%T/t.nnc --model bmshj2018-factorized --bpp %.9f "
             "--force",
             bpp[3] + 1e-9);
    EXPECT_RC(cmd, 0);
    EXPECT_OUT("target");
    CHECK(nne_cli_same_files("t.nnc", "f3.nnc"));
    EXPECT_RC("compress samples/wiki-crop.png -o %T/t.nnc --model bmshj2018-factorized --bpp 50 "
              "--force -q",
              0);
    CHECK(nne_cli_same_files("t.nnc", "f4.nnc"));
    /* Below the whole ladder: the lowest quality, with a warning; the stream decodes. */
    EXPECT_RC("compress samples/wiki-crop.png -o %T/t.nnc --model bmshj2018-factorized --bpp "
              "0.001 --force --json",
              0);
    EXPECT_OUT("\"target_met\": false");
    EXPECT_ERR("not met");
    CHECK(nne_cli_same_files("t.nnc", "f1.nnc"));
    EXPECT_RC("decompress %T/t.nnc -o %T/t.png", 0);
    /* A folder: each image gets its own choice. */
    snprintf(cmd, sizeof cmd,
             "compress %%T/in -o %%T/outb --model bmshj2018-factorized --bpp %.6f --json", bpp[2]);
    EXPECT_RC(cmd, 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    /* Usage: with --quality, a file model, a bad rate, decompress; a kind without a ladder. */
    EXPECT_RC("compress samples/wiki-crop.png -o %T/u.nnc --bpp 0.5 --quality 2", 2);
    EXPECT_RC("compress samples/wiki-crop.png -o %T/u.nnc --bpp 0", 2);
    EXPECT_RC("compress samples/wiki-crop.png -o %T/u.nnc --bpp 0.5 --model %T/other.nne", 2);
    EXPECT_RC("decompress %T/t.nnc -o %T/u.png --bpp 0.5", 2);
    EXPECT_RC("compress samples/wiki-crop.png -o %T/u.nnc --bpp 0.5 --model nosuch", 1);
    CHECK(!nne_cli_tmp_exists("u.nnc"));
}

int main(void) {
    nne_cli_setup("lcodec_cli");
    /* q1 of the default kind (mbt2018-mean), which --quality alone picks */
    if (!write_model(NNE_RD_MEAN_SCALE, 11, "mbt2018-mean-q1.nne") ||
        !write_model(NNE_RD_MEAN_SCALE, 12, "mbt2018-mean-q2.nne") ||
        !write_model(NNE_RD_MEAN_SCALE, 13, "other.nne") || !write_image("odd.png", 37, 23, 4) ||
        !write_ladder()) {
        fprintf(stderr, "cannot write the test models: %s\n", nne_last_error());
        return 1;
    }
    setenv("NNEDGE_MODELS", nne_cli_tmp, 1);
    NNE_RUN(test_single);
    NNE_RUN(test_errors);
    NNE_RUN(test_refine);
    NNE_RUN(test_folder);
    NNE_RUN(test_bpp);
    nne_cli_cleanup();
    return nne_test_summary();
}
