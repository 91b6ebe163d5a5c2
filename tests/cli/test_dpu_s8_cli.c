/* End to end: `nnedge quantize --scheme pow2`, then `nnedge run --backend cpu-s8` and
 * `--backend dpu-sim` give byte-identical outputs (docs/dpu-isa.md, "Compiling quantized
 * graphs"). cae-seed at 32x32 with random weights and trained-looking PReLU slopes,
 * calibrated on synthetic images (never Kodak), run on a synthetic image of another size. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "nnedge/file.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"

static void synth_png(const char *rel, int w, int h, int seed) {
    nne_image img;
    if (nne_image_alloc(&img, w, h, 3) != NNE_OK) return;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                const double v = 128 + 90 * sin(0.21 * x * (c + 1) + seed) * cos(0.17 * y + c) +
                                 (((x * 7 + y * 13 + seed * 5 + c) % 11) - 5);
                img.data[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    CHECK_OK(nne_image_save(nne_cli_tmp_path(rel), &img));
    nne_image_free(&img);
}

/* cae-seed (encoder + decoder) at 32x32: weights U(-a, a), a = sqrt(3 / fan_in), biases 0.05,
 * PReLU slopes in [0.05, 0.4] (not powers of two). */
static void make_model(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(32, 32, NNE_CAE_FULL, &g));
    if (!g) return;
    unsigned s = 777;
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT) continue;
        float *d = t->data;
        const int64_t n = nne_shape_numel(&t->shape);
        const bool slope = strstr(t->name, ".slope") != NULL;
        const float a = t->shape.ndim == 4 ? sqrtf(3.0f / (float)(n / t->shape.dim[0])) : 0.05f;
        for (int64_t k = 0; k < n; k++) {
            s = s * 1103515245u + 12345u;
            const float u = (float)(s >> 8) / (float)(1u << 24);
            d[k] = slope ? 0.05f + 0.35f * u : t->shape.ndim == 4 ? a * (2.0f * u - 1.0f) : a;
        }
    }
    CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path("m.nne")));
    nne_graph_free(g);
}

static bool same_file(const char *a, const char *b, size_t *n) {
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool eq = nne_file_read(nne_cli_tmp_path(a), 1 << 24, &x, &nx) == NNE_OK &&
              nne_file_read(nne_cli_tmp_path(b), 1 << 24, &y, &ny) == NNE_OK && nx == ny &&
              memcmp(x, y, nx) == 0;
    *n = nx;
    nne_free(x);
    nne_free(y);
    return eq;
}

static void test_cpu_s8_equals_dpu_sim(void) {
    EXPECT_RC("quantize %T/m.nne --calib %T/calib --crop 32 --max-images 3 --scheme pow2 "
              "-o %T/q.nne -q",
              0);
    /* The encoder (the paper's DPU part), on a 40x48 image: cae-seed is rebuilt at its size. */
    EXPECT_RC("run %T/q.nne --backend cpu-s8 --part encoder --input %T/in.png -o %T/a.npy --json",
              0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"backend\": \"cpu-s8\"") &&
          strstr(nne_cli_out, "\"fp_output\""));
    EXPECT_RC("run %T/q.nne --backend dpu-sim --part encoder --input %T/in.png -o %T/b.npy -q", 0);
    size_t n = 0;
    CHECK_MSG(same_file("a.npy", "b.npy", &n), "cpu-s8 and dpu-sim encoder outputs differ");
    CHECK(n > 128); /* a header and 1x2x32 codes (40x48 -> 1x2) */
    /* The whole model (encoder + decoder): the reconstruction, 40x48x3. */
    EXPECT_RC("run %T/q.nne --backend cpu-s8 --input %T/in.png -o %T/fa.npy -q", 0);
    EXPECT_RC("run %T/q.nne --backend dpu-sim --arch B2304 --input %T/in.png -o %T/fb.npy "
              "--json",
              0);
    CHECK(strstr(nne_cli_out, "\"height\": 40") && strstr(nne_cli_out, "\"channels\": 3"));
    CHECK_MSG(same_file("fa.npy", "fb.npy", &n), "cpu-s8 and dpu-sim reconstructions differ");
    CHECK(n == 128 + 40 * 48 * 3);
    /* The same through a compiled program. */
    EXPECT_RC("compile %T/q.nne --part encoder --arch B512 -o %T/q.dpu -q", 0);
    EXPECT_RC("run %T/q.dpu --backend dpu-sim --input %T/in32.png -o %T/c.npy -q", 0);
    EXPECT_RC("run %T/q.nne --backend cpu-s8 --part encoder --input %T/in32.png -o %T/d.npy -q", 0);
    CHECK_MSG(same_file("c.npy", "d.npy", &n), "program and cpu-s8 outputs differ");
    /* The check can fail: one weight of conv2d_3 changed makes cpu-s8 differ from dpu-sim. */
    nne_graph *q = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("q.nne"), &q));
    if (q) {
        const int32_t w = nne_graph_find_tensor(q, "conv2d_3.weight");
        CHECK(w >= 0 && q->tensors[w].dtype == NNE_S8);
        if (w >= 0) ((int8_t *)q->tensors[w].data)[5] ^= 0x40;
        CHECK_OK(nne_model_write_file(q, nne_cli_tmp_path("q2.nne")));
        nne_graph_free(q);
    }
    EXPECT_RC("run %T/q2.nne --backend cpu-s8 --part encoder --input %T/in.png -o %T/e.npy -q", 0);
    CHECK_MSG(!same_file("a.npy", "e.npy", &n), "a changed weight went unnoticed");
}

static void test_errors(void) {
    EXPECT_RC("run %T/m.nne --backend cpu-s8 --input %T/in.png -o %T/x.npy", 1);
    EXPECT_ERR("nnedge quantize");
    EXPECT_RC("run %T/q.nne --backend cpu-s9 --input %T/in.png -o %T/x.npy", 2);
    EXPECT_ERR("cpu-s8 or dpu-sim");
    EXPECT_RC("run %T/q.nne --backend cpu-s8 --part decoder --input %T/in.png -o %T/x.npy", 2);
    EXPECT_RC("run %T/q.dpu --backend cpu-s8 --input %T/in.png -o %T/x.npy", 2);
    EXPECT_ERR("dpu-sim");
    EXPECT_RC("run %T/q.nne --backend cpu-s8 --arch B512 --input %T/in.png -o %T/x.npy", 2);
    CHECK(!nne_cli_tmp_exists("x.npy"));
}

int main(void) {
    nne_cli_setup("dpu-s8");
    mkdir(nne_cli_tmp_path("calib"), 0755);
    synth_png("calib/a.png", 48, 40, 1);
    synth_png("calib/b.png", 56, 44, 2);
    synth_png("calib/c.png", 40, 40, 3);
    synth_png("in.png", 48, 40, 9);
    synth_png("in32.png", 32, 32, 4);
    make_model();
    NNE_RUN(test_cpu_s8_equals_dpu_sim);
    NNE_RUN(test_errors);
    nne_cli_cleanup();
    return nne_test_summary();
}
