/* End-to-end tests of `nnedge quantize`: usage errors, the Kodak guard, per-channel and pow2
 * runs on a small cae-seed with random weights, the written model (readable, s8, runs on
 * cpu-s8, `nnedge info` works), --eval, JSON. The binary's path comes from NNEDGE_BIN. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "nnedge/backend.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"

#undef EXPECT_RC
#define EXPECT_RC(args, rc) EXPECT_RC_IN(nne_cli_tmp, args, rc)

static void make_images(const char *dir, int n) {
    mkdir(nne_cli_tmp_path(dir), 0755);
    for (int i = 0; i < n; i++) {
        nne_image img;
        const int w = 40 + 4 * i, h = 36 + 3 * i;
        if (nne_image_alloc(&img, w, h, 3) != NNE_OK) return;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = img.data + ((size_t)y * w + x) * 3;
                p[0] = (uint8_t)(x * 5 + i * 20);
                p[1] = (uint8_t)(y * 6);
                p[2] = (uint8_t)((x * y + i) & 255);
            }
        char rel[64];
        snprintf(rel, sizeof rel, "%s/img%02d.png", dir, i);
        CHECK_OK(nne_image_save(nne_cli_tmp_path(rel), &img));
        nne_image_free(&img);
    }
}

/* cae-seed at 32x32 with small random weights, as a model file. */
static void make_model(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(32, 32, NNE_CAE_FULL, &g));
    if (!g) return;
    unsigned s = 12345;
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || t->shape.ndim != 4) continue;
        float *d = t->data;
        const int64_t n = nne_shape_numel(&t->shape);
        const float a = sqrtf(3.0f / (float)(n / t->shape.dim[0]));
        for (int64_t k = 0; k < n; k++) {
            s = s * 1103515245u + 12345u;
            d[k] = a * ((float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
        }
    }
    CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path("m.nne")));
    nne_graph_free(g);
}

static void test_usage(void) {
    EXPECT_RC("quantize --help", 0);
    CHECK(strstr(nne_cli_out, "usage: nnedge quantize") != NULL);
    EXPECT_RC("help quantize", 0);
    EXPECT_RC("quantize m.nne -o q.nne", 2);
    CHECK(strstr(nne_cli_err, "--calib") != NULL);
    EXPECT_RC("quantize m.nne --calib data", 2);
    CHECK(strstr(nne_cli_err, "-o") != NULL);
    EXPECT_RC("quantize --calib data -o q.nne", 2);
    EXPECT_RC("quantize m.nne --calib data -o q.nne --scheme int4", 2);
    CHECK(strstr(nne_cli_err, "--scheme 'int4'") != NULL);
    EXPECT_RC("quantize m.nne --calib data -o q.nne --observer entropy", 2);
    EXPECT_RC("quantize m.nne --calib data -o q.nne --max-images 0", 2);
    EXPECT_RC("quantize m.nne --calib data -o q.nne --percentile 30", 2);
    EXPECT_RC("quantize m.nne --calib data -o q.nne --crop 8", 2);
    EXPECT_RC("quantize m.nne --calib data -o q.nne --bogus", 2);
    EXPECT_RC("quantize m.nne --calib data -o m.nne", 2);
    CHECK(strstr(nne_cli_err, "overwrite") != NULL);
    EXPECT_RC("quantize m.nne --calib missing-dir -o q.nne", 1);
    EXPECT_RC("quantize missing.nne --calib data -o q.nne", 1);
    CHECK(strstr(nne_cli_err, "missing.nne") != NULL);
    CHECK(!nne_cli_tmp_exists("q.nne"));
}

static void test_kodak_refused(void) {
    mkdir(nne_cli_tmp_path("kodakish"), 0755);
    mkdir(nne_cli_tmp_path("kodakish/sub"), 0755);
    FILE *f = fopen(nne_cli_tmp_path("kodakish/sub/kodim03.png"), "wb");
    if (f) fclose(f);
    EXPECT_RC("quantize m.nne --calib kodakish -o q.nne", 2);
    CHECK(strstr(nne_cli_err, "Kodak") && strstr(nne_cli_err, "kodim03.png"));
    CHECK(!nne_cli_tmp_exists("q.nne"));
}

static bool pow2_only(const nne_graph *g) {
    for (int32_t i = 0; i < g->n_tensors; i++)
        for (int32_t k = 0; k < g->tensors[i].quant.count; k++) {
            int e;
            if (frexpf(g->tensors[i].quant.scale[k], &e) != 0.5f) return false;
        }
    return true;
}

static void test_runs(void) {
    EXPECT_RC("quantize m.nne --calib data --crop 32 --max-images 3 --bias-correction "
              "--observer mse -o q.nne --json",
              0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    CHECK(strstr(nne_cli_out, "\"scheme\": \"per-channel\"") &&
          strstr(nne_cli_out, "\"samples\": 3") && strstr(nne_cli_out, "\"observer\": \"mse\""));
    nne_graph *q = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("q.nne"), &q));
    if (q) {
        CHECK(q->tensors[q->inputs[0]].dtype == NNE_S8);
        const int32_t w = nne_graph_find_tensor(q, "conv2d_1.weight");
        CHECK(w >= 0 && q->tensors[w].dtype == NNE_S8 && q->tensors[w].quant.count == 32);
        const char *v = nne_graph_get_meta(q, "quant.bias_correction");
        CHECK(v && strcmp(v, "1") == 0);
        nne_session *s = NULL;
        CHECK_OK(nne_session_create(q, nne_backend_cpu_s8(), &s));
        nne_session_free(s);
        CHECK(!pow2_only(q));
        nne_graph_free(q);
    }
    EXPECT_RC("info q.nne", 0);
    CHECK(strstr(nne_cli_out, "conv2d_transpose_5") != NULL);

    EXPECT_RC("quantize m.nne --calib data --crop 32 --scheme pow2 --observer kl -o p.nne -q", 0);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("p.nne"), &q));
    if (q) {
        CHECK(pow2_only(q));
        nne_graph_free(q);
    }
    /* --eval: f32 and int8 PSNR on every image of a folder (each at its own size). */
    EXPECT_RC("quantize m.nne --calib data --crop 32 --scheme per-tensor -o t.nne --eval data "
              "--eval-max 2 --json -q",
              0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"images\": 2") &&
          strstr(nne_cli_out, "psnr_int8"));
}

int main(void) {
    nne_cli_setup("quantize-cli");
    make_images("data", 4);
    make_model();
    NNE_RUN(test_usage);
    NNE_RUN(test_kodak_refused);
    NNE_RUN(test_runs);
    nne_cli_cleanup();
    return nne_test_summary();
}
