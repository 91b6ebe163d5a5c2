/* End-to-end tests of nnedge encode, decode and eval: exit codes, messages naming the files,
 * output shapes, the report files. The model is a cae-seed with deterministic random weights
 * written by the test (no trained model is needed: these tests check plumbing, not quality).
 * The binary comes from NNEDGE_BIN (set by CTest). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_util.h"
#include "nnedge/codec.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"

/* A cae-seed autoencoder (built at 64x64, as a trainer would save it) with weights drawn
 * from a seeded uniform distribution of variance 1 / fan_in. */
static bool write_model(const char *name, unsigned seed) {
    nne_graph *g = NULL;
    if (nne_model_cae_seed(64, 64, NNE_CAE_FULL, &g)) return false;
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || strstr(t->name, "slope")) continue;
        const bool w4 = t->shape.ndim == 4;
        const double a =
            w4 ? sqrt(3.0 / (double)(t->shape.dim[1] * t->shape.dim[2] * t->shape.dim[3])) : 0.02;
        float *v = t->data;
        for (size_t k = 0; k < nne_tensor_nbytes(t) / 4; k++)
            v[k] = (float)(a * (2 * nne_test_rng_uniform(&r) - 1));
    }
    nne_status s = nne_model_write_file(g, nne_cli_tmp_path(name));
    nne_graph_free(g);
    return s == NNE_OK;
}

/* A crop of samples/wiki-crop.png (320x240) saved as PNG in the temporary directory. */
static bool write_crop(const char *name, int32_t x0, int32_t y0, int32_t w, int32_t h) {
    nne_image src = {0}, dst = {0};
    bool ok = nne_image_load(nne_test_path(nne_test_source_dir(), "samples/wiki-crop.png"),
                             NNE_IMAGE_LOAD_RGB, &src) == NNE_OK &&
              nne_image_alloc(&dst, w, h, 3) == NNE_OK;
    for (int32_t y = 0; ok && y < h; y++)
        memcpy(dst.data + (size_t)y * w * 3, src.data + ((size_t)(y + y0) * src.width + x0) * 3,
               (size_t)w * 3);
    ok = ok && nne_image_save(nne_cli_tmp_path(name), &dst) == NNE_OK;
    nne_image_free(&src);
    nne_image_free(&dst);
    return ok;
}

static void test_round_trip(void) {
    EXPECT_RC("encode samples/wiki-crop.png -o %T/a.nnl --model %T/m1.nne", 0);
    EXPECT_OUT("latent 28x38x32");
    nne_latent lat;
    nne_latent_info info;
    CHECK_OK(nne_latent_read_file(nne_cli_tmp_path("a.nnl"), &lat, &info));
    int32_t lh, lw, lc;
    CHECK_OK(nne_cae_latent_shape(240, 320, &lh, &lw, &lc));
    CHECK(lat.height == lh && lat.width == lw && lat.channels == lc);
    CHECK(lat.image_width == 320 && lat.image_height == 240);
    CHECK(info.compression == NNE_LATENT_ZSTD); /* the default */
    nne_latent_free(&lat);

    EXPECT_RC("decode %T/a.nnl -o %T/a.png --model %T/m1.nne", 0);
    nne_image img = {0};
    CHECK_OK(nne_image_load(nne_cli_tmp_path("a.png"), NNE_IMAGE_LOAD_ANY, &img));
    CHECK(img.width == 320 && img.height == 240 && img.channels == 3);
    nne_image_free(&img);

    /* Every compression decodes to the same pixels. */
    EXPECT_RC("encode samples/wiki-crop.png -o %T/b.nnl --model %T/m1.nne --compress none -q", 0);
    CHECK(nne_cli_out[0] == 0);
    EXPECT_RC("encode samples/wiki-crop.png -o %T/c.nnl --model %T/m1.nne --compress xz --level 6 "
              "--json",
              0);
    CHECK(nne_cli_out[0] == '{');
    EXPECT_OUT("\"latent_shape\"");
    EXPECT_OUT("\"compression\": \"xz\"");
    EXPECT_RC("decode %T/b.nnl -o %T/b.ppm --model %T/m1.nne --json", 0);
    EXPECT_OUT("\"width\": 320");
    EXPECT_RC("decode %T/c.nnl -o %T/c.png --model %T/m1.nne -q", 0);
    size_t na, nc;
    unsigned char *pa = nne_test_read_file(nne_cli_tmp_path("a.png"), &na);
    unsigned char *pc = nne_test_read_file(nne_cli_tmp_path("c.png"), &nc);
    CHECK(pa && pc && na == nc && memcmp(pa, pc, na) == 0);
    nne_free(pa);
    nne_free(pc);
    nne_image b = {0}, a = {0};
    CHECK_OK(nne_image_load(nne_cli_tmp_path("b.ppm"), NNE_IMAGE_LOAD_ANY, &b));
    CHECK_OK(nne_image_load(nne_cli_tmp_path("a.png"), NNE_IMAGE_LOAD_ANY, &a));
    CHECK(a.data && b.data && memcmp(a.data, b.data, 320 * 240 * 3) == 0);
    nne_image_free(&a);
    nne_image_free(&b);

    /* The smallest accepted size, and one below it. */
    CHECK(write_crop("tiny21.png", 0, 0, 21, 21));
    CHECK(write_crop("tiny20.png", 0, 0, 20, 30));
    EXPECT_RC("encode %T/tiny21.png -o %T/t.nnl --model %T/m1.nne", 0);
    EXPECT_OUT("latent 1x1x32");
    EXPECT_RC("decode %T/t.nnl -o %T/t.png --model %T/m1.nne", 0);
    EXPECT_RC("encode %T/tiny20.png -o %T/t20.nnl --model %T/m1.nne", 1);
    EXPECT_ERR("tiny20.png");
    EXPECT_ERR("21x21");
    CHECK(!nne_cli_tmp_exists("t20.nnl"));
}

static void test_errors(void) {
    /* Usage errors: exit 2. */
    EXPECT_RC("encode", 2);
    EXPECT_RC("encode samples/wiki-crop.png", 2);
    EXPECT_ERR("-o");
    EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl --compress lz4", 2);
    EXPECT_ERR("lz4");
    EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl --level 20", 2);
    EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl --compress none --level 3", 2);
    EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl --bogus", 2);
    EXPECT_RC("decode %T/a.nnl", 2);
    EXPECT_RC("decode %T/a.nnl -o %T/x.bmp", 2);
    EXPECT_RC("decode %T/a.nnl %T/b.nnl -o %T/x.png", 2);
    EXPECT_RC("eval", 2);
    EXPECT_ERR("--data");
    EXPECT_RC("eval --data %T/data --jpeg-quality 0", 2);
    EXPECT_RC("eval --data %T/data extra", 2);
    EXPECT_RC("encode --help", 0);
    EXPECT_OUT("usage: nnedge encode");
    EXPECT_RC("decode --help", 0);
    EXPECT_RC("eval --help", 0);
    EXPECT_OUT("0.6356");

    /* Runtime errors name the file: exit 1. */
    EXPECT_RC("encode /nonexistent/in.png -o %T/x.nnl --model %T/m1.nne", 1);
    EXPECT_ERR("/nonexistent/in.png");
    EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl --model /nonexistent/m.nne", 1);
    EXPECT_ERR("/nonexistent/m.nne");
    EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl --model samples/wiki-crop.png", 1);
    EXPECT_ERR("wiki-crop.png");
    EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl --model cae-seed", 1);
    EXPECT_ERR("built-in");
    EXPECT_RC("decode samples/wiki-crop.png -o %T/x.png --model %T/m1.nne", 1);
    EXPECT_ERR("wiki-crop.png");
    EXPECT_ERR("not a latent file");
    EXPECT_RC("decode /nonexistent/a.nnl -o %T/x.png --model %T/m1.nne", 1);
    EXPECT_ERR("/nonexistent/a.nnl");
    /* Decoding with another model: a clear error, and no output. */
    EXPECT_RC("decode %T/a.nnl -o %T/wrong.png --model %T/m2.nne", 1);
    EXPECT_ERR("a.nnl");
    EXPECT_ERR("wrong model");
    CHECK(!nne_cli_tmp_exists("wrong.png"));
    /* A truncated latent file. */
    size_t n;
    unsigned char *buf = nne_test_read_file(nne_cli_tmp_path("a.nnl"), &n);
    if (buf) {
        FILE *f = fopen(nne_cli_tmp_path("trunc.nnl"), "wb");
        if (f) {
            fwrite(buf, 1, n / 2, f);
            fclose(f);
        }
        nne_free(buf);
    }
    EXPECT_RC("decode %T/trunc.nnl -o %T/x.png --model %T/m1.nne", 1);
    EXPECT_ERR("trunc.nnl");
    EXPECT_ERR("truncated");
    /* Never overwrite the input. */
    CHECK(write_crop("self.png", 10, 10, 40, 40));
    size_t before_n;
    unsigned char *before = nne_test_read_file(nne_cli_tmp_path("self.png"), &before_n);
    EXPECT_RC("encode %T/self.png -o %T/self.png --model %T/m1.nne", 1);
    EXPECT_ERR("refusing to overwrite");
    size_t after_n;
    unsigned char *after = nne_test_read_file(nne_cli_tmp_path("self.png"), &after_n);
    CHECK(before && after && before_n == after_n && memcmp(before, after, after_n) == 0);
    nne_free(before);
    nne_free(after);
    /* No --model and no models/cae-seed.nne: a clear error asking for one. */
    struct stat st;
    if (stat(nne_test_path(nne_test_source_dir(), "models/cae-seed.nne"), &st) != 0) {
        EXPECT_RC("encode samples/wiki-crop.png -o %T/x.nnl", 1);
        EXPECT_ERR("--model");
    }
}

static void test_eval(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/data", nne_cli_tmp);
    CHECK(mkdir(dir, 0777) == 0);
    /* Two images larger than 160 pixels on each side, so MS-SSIM is defined. */
    CHECK(write_crop("data/img-b.png", 100, 40, 200, 170));
    CHECK(write_crop("data/img-a.png", 0, 0, 170, 200));
    EXPECT_RC("eval --model %T/m1.nne --data %T/data -o %T/report", 0);
    EXPECT_OUT("img-a");
    EXPECT_OUT("img-b");
    EXPECT_OUT("mean");
    EXPECT_OUT("0.6356"); /* the footnote about the paper's ratio */
    EXPECT_ERR("[2/2]");  /* progress */
    /* img-a sorts first. */
    CHECK(strstr(nne_cli_out, "img-a") < strstr(nne_cli_out, "img-b"));

    size_t n;
    char *csv = (char *)nne_test_read_file(nne_cli_tmp_path("report/eval.csv"), &n);
    CHECK(csv != NULL);
    if (csv) {
        CHECK(strncmp(csv, "image,width,height,", 19) == 0);
        int lines = 0;
        for (size_t i = 0; i < n; i++) lines += csv[i] == '\n';
        CHECK_MSG(lines == 4, "%d lines", lines); /* header, 2 images, mean */
        CHECK(strstr(csv, "\nimg-a,170,200,") != NULL);
        CHECK(strstr(csv, "\nmean,") != NULL);
        CHECK(strstr(csv, ",90,") != NULL);
    }
    nne_free(csv);
    char *json = (char *)nne_test_read_file(nne_cli_tmp_path("report/eval.json"), &n);
    CHECK(json && json[0] == '{' && strstr(json, "\"images\"") && strstr(json, "\"mean\"") &&
          strstr(json, "\"nnl_xz_bytes\"") && strstr(json, "\"jpeg_ms_ssim\""));
    nne_free(json);
    char *md = (char *)nne_test_read_file(nne_cli_tmp_path("report/eval.md"), &n);
    CHECK(md && strstr(md, "| **mean** |") && strstr(md, "figure6.svg"));
    nne_free(md);
    char *svg = (char *)nne_test_read_file(nne_cli_tmp_path("report/figure6.svg"), &n);
    CHECK(svg != NULL);
    if (svg) {
        CHECK(strncmp(svg, "<svg", 4) == 0);
        CHECK(n >= 7 && memcmp(svg + n - 7, "</svg>\n", 7) == 0);
        /* One bar per image in each panel: (a) PSNR and (b) MS-SSIM. */
        int bars = 0;
        for (const char *p = svg; (p = strstr(p, "class=\"bar\"")); p++) bars++;
        CHECK_MSG(bars == 4, "%d bars", bars);
        CHECK(strstr(svg, "(a) PSNR values") && strstr(svg, "(b) MS-SSIM values"));
    }
    nne_free(svg);

    EXPECT_RC("eval --model %T/m1.nne --data %T/data --json -q", 0);
    CHECK(nne_cli_out[0] == '{');
    EXPECT_OUT("\"raw_ratio\"");
    EXPECT_OUT("\"backend\": \"cpu\"");
    CHECK(nne_cli_err[0] == 0);
    /* bf16 (docs/bf16.md): the same report from the cpu-bf16 backend, a PSNR within a few
     * tenths of a dB of f32's (a random-weight model here) but not the same numbers */
    char *f32 = strdup(nne_cli_out);
    EXPECT_RC("eval --model %T/m1.nne --data %T/data --json -q --backend cpu-bf16", 0);
    EXPECT_OUT("\"backend\": \"cpu-bf16\"");
    const char *p32 = strstr(f32, "\"mean\""), *p16 = strstr(nne_cli_out, "\"mean\"");
    p32 = p32 ? strstr(p32, "\"psnr\": ") : NULL;
    p16 = p16 ? strstr(p16, "\"psnr\": ") : NULL;
    CHECK(p32 && p16);
    if (p32 && p16) {
        const double a = atof(p32 + 8), b = atof(p16 + 8);
        CHECK_MSG(a > 0 && fabs(a - b) < 0.2, "mean PSNR f32 %g, bf16 %g", a, b);
    }
    CHECK(strcmp(f32, nne_cli_out) != 0);
    free(f32);
    EXPECT_RC("eval --model %T/m1.nne --data %T/data --backend cpu-exact", 2);
    EXPECT_ERR("cpu-bf16");
    /* The report directory may not be the data directory; a missing folder is an error. */
    EXPECT_RC("eval --model %T/m1.nne --data %T/data -o %T/data", 1);
    EXPECT_RC("eval --model %T/m1.nne --data %T/nonexistent", 1);
    EXPECT_ERR("nonexistent");
}

int main(void) {
    nne_cli_setup("codec-cli");
    if (!write_model("m1.nne", 1) || !write_model("m2.nne", 2)) {
        fprintf(stderr, "cannot write the test models: %s\n", nne_last_error());
        return 1;
    }
    NNE_RUN(test_round_trip);
    NNE_RUN(test_errors);
    NNE_RUN(test_eval);
    nne_cli_cleanup();
    return nne_test_summary();
}
