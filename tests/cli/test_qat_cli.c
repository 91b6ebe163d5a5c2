/* End-to-end tests of quantization-aware fine-tuning and distillation in `nnedge train`
 * (--init, --qat, --teacher) and the hand-off to `nnedge quantize`: usage errors, a tiny QAT
 * run whose model carries its ranges, exact resume with QAT state and a teacher, and
 * quantization with the learned ranges; QAT from activation-equalized weights
 * (--qat-equalize-act: the same function, other weights); a learned codec's QAT, whose
 * output is the int8 codec, with exact resume. The binary's path comes from NNEDGE_BIN. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_fixtures.h"
#include "cli_util.h"
#include "nnedge/backend.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"

#undef EXPECT_RC
#define EXPECT_RC(args, rc) EXPECT_RC_IN(nne_cli_tmp, args, rc)

static void make_images(const char *dir, int n, int seed) {
    mkdir(nne_cli_tmp_path(dir), 0755);
    nne_test_rng r;
    nne_test_rng_seed(&r, (unsigned long long)seed);
    for (int i = 0; i < n; i++) {
        nne_image img;
        const int w = 40 + 3 * i, h = 38;
        if (nne_image_alloc(&img, w, h, 3) != NNE_OK) return;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = img.data + ((size_t)y * w + x) * 3;
                p[0] = (uint8_t)(x * 5 + i * 20);
                p[1] = (uint8_t)(y * 6);
                p[2] = (uint8_t)(128 + nne_test_rng_int(&r, -20, 20));
            }
        char rel[64];
        snprintf(rel, sizeof rel, "%s/img%02d.png", dir, i);
        CHECK_OK(nne_image_save(nne_cli_tmp_path(rel), &img));
        nne_image_free(&img);
    }
}

static const char *k_run = "--data data --crop 32 --batch 2 --seed 3 -q";

static void test_usage(void) {
    char a[512];
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat int4", k_run);
    EXPECT_RC(a, 2);
    CHECK(strstr(nne_cli_err, "--qat int4") != NULL);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat pow2 --qat-ema 0", k_run);
    EXPECT_RC(a, 2); /* fixed ranges need a model to calibrate */
    CHECK(strstr(nne_cli_err, "--init") != NULL);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat-ema 0.1", k_run);
    EXPECT_RC(a, 2);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --distill-alpha 0.5", k_run);
    EXPECT_RC(a, 2);
    CHECK(strstr(nne_cli_err, "--teacher") != NULL);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --teacher fp.nne --distill-temperature 4",
             k_run);
    EXPECT_RC(a, 2); /* the temperature cancels for an image output */
    CHECK(strstr(nne_cli_err, "temperature") && strstr(nne_cli_err, "cancels"));
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --teacher fp.nne --distill-alpha 2", k_run);
    EXPECT_RC(a, 2);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --model bmshj2018-factorized --qat pow2",
             k_run);
    EXPECT_RC(a, 2); /* a codec's QAT fine-tunes a trained codec */
    CHECK(strstr(nne_cli_err, "--init CODEC.nne") != NULL);
    snprintf(a, sizeof a,
             "train %s -o x.nne --steps 2 --model bmshj2018-factorized --teacher fp.nne", k_run);
    EXPECT_RC(a, 2);
    CHECK(strstr(nne_cli_err, "rate-distortion") != NULL);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat per-channel --qat-equalize-act 0.5",
             k_run);
    EXPECT_RC(a, 2); /* equalizes the --init model's weights */
    snprintf(a, sizeof a,
             "train %s -o x.nne --steps 2 --init fp.nne --qat per-channel --qat-ema 0.01 "
             "--qat-equalize-act 0.5",
             k_run);
    EXPECT_RC(a, 2); /* its ranges are calibrated and fixed */
    snprintf(a, sizeof a,
             "train %s -o x.nne --steps 2 --init fp.nne --qat per-channel --qat-equalize-act 0",
             k_run);
    EXPECT_RC(a, 2);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat-equalize-act 0.5", k_run);
    EXPECT_RC(a, 2);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat-equalize", k_run);
    EXPECT_RC(a, 2); /* needs --qat */
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat pow2 --qat-equalize", k_run);
    EXPECT_RC(a, 2); /* equalizes the --init model's weights */
    CHECK(strstr(nne_cli_err, "--qat-equalize") != NULL);
    snprintf(a, sizeof a,
             "train %s -o x.nne --steps 2 --init fp.nne --qat pow2 --qat-equalize "
             "--qat-equalize-act 0.5",
             k_run);
    EXPECT_RC(a, 2); /* one kind of equalization */
    CHECK(strstr(nne_cli_err, "choose one") != NULL);
    snprintf(a, sizeof a,
             "train %s -o x.nne --steps 2 --init fp.nne --qat pow2 --qat-ema 0.01 --qat-equalize",
             k_run);
    EXPECT_RC(a, 2); /* its ranges are calibrated and fixed */
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat-fuse-prelu 0", k_run);
    EXPECT_RC(a, 2); /* needs --qat */
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat per-channel --qat-fuse-prelu 2",
             k_run);
    EXPECT_RC(a, 2);
    CHECK(strstr(nne_cli_err, "--qat-fuse-prelu 2") != NULL);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat-lsq 10", k_run);
    EXPECT_RC(a, 2); /* needs --qat */
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat-output-range 0,1", k_run);
    EXPECT_RC(a, 2); /* needs --qat */
    snprintf(a, sizeof a,
             "train %s -o x.nne --steps 2 --init fp.nne --qat per-channel --qat-output-range 1,0",
             k_run);
    EXPECT_RC(a, 2);
    CHECK(strstr(nne_cli_err, "--qat-output-range") != NULL);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --init fp.nne --qat pow2 --qat-lsq 10",
             k_run);
    EXPECT_RC(a, 2); /* pow2 scales are powers of two */
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat per-channel --qat-lsq 10", k_run);
    EXPECT_RC(a, 2); /* EMA ranges without --init */
    CHECK(strstr(nne_cli_err, "--qat-lsq") != NULL);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --init fp.nne --qat per-channel --qat-lsq 0",
             k_run);
    EXPECT_RC(a, 2);
    CHECK(!nne_cli_tmp_exists("x.nne"));
}

/* Two model files of the tmp dir (NULL where reading fails, checked). */
static void read_two(const char *a, const char *b, nne_graph **ga, nne_graph **gb) {
    *ga = *gb = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path(a), ga));
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path(b), gb));
}

/* max |f(x) - g(x)| / max |f(x)| of two models with the same input on one random input. */
static double model_diff(const char *a, const char *b) {
    nne_graph *ga, *gb;
    nne_session *sa = NULL, *sb = NULL;
    double d = INFINITY, m = 0;
    read_two(a, b, &ga, &gb);
    if (ga && gb && !nne_session_create(ga, nne_backend_cpu_ref(), &sa) &&
        !nne_session_create(gb, nne_backend_cpu_ref(), &sb)) {
        const nne_tensor *it = nne_session_input_tensor(sa, 0);
        const nne_tensor *ot = nne_session_output_tensor(sa, 0);
        const size_t ni = (size_t)nne_shape_numel(&it->shape);
        const size_t no = (size_t)nne_shape_numel(&ot->shape);
        float *x = nne_session_input(sa, 0);
        for (size_t i = 0; i < ni; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
        memcpy(nne_session_input(sb, 0), x, ni * sizeof *x);
        CHECK_OK(nne_session_run(sa));
        CHECK_OK(nne_session_run(sb));
        const float *ya = nne_session_output(sa, 0), *yb = nne_session_output(sb, 0);
        d = 0;
        for (size_t i = 0; i < no; i++) {
            m = fmax(m, fabs(ya[i]));
            d = fmax(d, fabs((double)ya[i] - yb[i]));
        }
        d /= fmax(m, 1e-30);
    }
    nne_session_free(sa);
    nne_session_free(sb);
    nne_graph_free(ga);
    nne_graph_free(gb);
    return d;
}

/* max |w_a - w_b| / max |w_a| of one constant of two model files. */
static double weight_diff(const char *a, const char *b, const char *tensor) {
    nne_graph *ga, *gb;
    double d = -1;
    read_two(a, b, &ga, &gb);
    const int32_t ta = ga ? nne_graph_find_tensor(ga, tensor) : -1;
    const int32_t tb = gb ? nne_graph_find_tensor(gb, tensor) : -1;
    CHECK(ta >= 0 && tb >= 0);
    if (ta >= 0 && tb >= 0) {
        const float *wa = ga->tensors[ta].data, *wb = gb->tensors[tb].data;
        double m = 0;
        d = 0;
        for (int64_t i = 0; i < nne_shape_numel(&ga->tensors[ta].shape); i++) {
            m = fmax(m, fabs(wa[i]));
            d = fmax(d, fabs((double)wa[i] - wb[i]));
        }
        d /= fmax(m, 1e-30);
    }
    nne_graph_free(ga);
    nne_graph_free(gb);
    return d;
}

/* A QAT run's output from equalized fp.nne weights: train.qat names the equalization, the
 * weights moved while the f32 function stayed (the trainer kept the equalized weights). */
static void check_equalized(const char *out, const char *what) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path(out), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "train.qat");
        CHECK_MSG(v && strstr(v, what), "%s: train.qat = %s", out, v ? v : "(none)");
        nne_graph_free(g);
    }
    const double wd = weight_diff("fp.nne", out, "conv2d_1.weight"), fd = model_diff("fp.nne", out);
    CHECK_MSG(wd > 1e-2, "%s: equalized weights moved by only %g", out, wd);
    CHECK_MSG(fd < 1e-4, "%s: equalized model's output off by %g", out, fd);
}

static void test_qat_and_quantize(void) {
    char a[768];
    /* An f32 model to start from, then 6 QAT steps from it (ranges calibrated, fixed). */
    snprintf(a, sizeof a, "train %s -o fp.nne --steps 6", k_run);
    EXPECT_RC(a, 0);
    snprintf(a, sizeof a,
             "train %s --val val --val-every 3 -o q.nne --steps 6 --init fp.nne --qat pow2 "
             "--qat-observer mse --calib-images 4",
             k_run);
    EXPECT_RC(a, 0);
    nne_graph *g = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("q.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "qat.scheme");
        CHECK(v && !strcmp(v, "pow2"));
        v = nne_graph_get_meta(g, "qat.range.image");
        CHECK_MSG(v && v[0] == '-', "qat.range.image = %s", v ? v : "(none)");
        CHECK(nne_graph_get_meta(g, "qat.range.latent") != NULL);
        /* pow2: the PReLU output shares its convolution's range (the DPU fuses it) */
        CHECK(nne_graph_get_meta(g, "qat.range.conv2d_1:out") != NULL);
        CHECK(nne_graph_get_meta(g, "qat.range.enc1") == NULL);
        v = nne_graph_get_meta(g, "train.qat");
        CHECK(v && strstr(v, "pow2") && strstr(v, "fixed") && strstr(v, "mse"));
        CHECK(nne_graph_get_meta(g, "train.init") != NULL);
        nne_graph_free(g);
    }
    /* quantize reuses the ranges: no --calib needed, the scheme is the model's */
    EXPECT_RC("quantize q.nne -o q8.nne --json", 0);
    CHECK(strstr(nne_cli_out, "\"scheme\": \"pow2\"") &&
          strstr(nne_cli_out, "\"ranges\": \"fixed\""));
    EXPECT_RC("quantize q.nne -o q8b.nne --scheme per-channel", 2);
    CHECK(strstr(nne_cli_err, "trained for pow2") != NULL);
    EXPECT_RC("quantize q.nne -o q8d.nne --weight-bits 7", 2); /* trained for 8-bit weights */
    CHECK(strstr(nne_cli_err, "8-bit") != NULL);
    EXPECT_RC("quantize fp.nne -o q8c.nne", 2); /* an f32 model still needs --calib */
    /* 7-bit weights: trained on [-64, 64] codes, quantized with them by default */
    snprintf(a, sizeof a,
             "train %s -o q7.nne --steps 3 --init fp.nne --qat per-channel --qat-weight-bits 7 "
             "--calib-images 2",
             k_run);
    EXPECT_RC(a, 0);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("q7.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "qat.weight_bits");
        CHECK(v && !strcmp(v, "7"));
        v = nne_graph_get_meta(g, "train.qat");
        CHECK(v && strstr(v, "7-bit weights"));
        nne_graph_free(g);
    }
    /* --qat-equalize-act: QAT trains the activation-equalized weights (one step at lr 1e-9:
     * the output is the equalized model), the same f32 function with other weights */
    snprintf(a, sizeof a,
             "train %s -o qe.nne --steps 1 --lr 1e-9 --init fp.nne --qat per-channel "
             "--qat-equalize-act 0.5 --calib-images 2",
             k_run);
    EXPECT_RC(a, 0);
    check_equalized("qe.nne", "activation-range equalization (alpha 0.5)");
    EXPECT_RC("quantize qe.nne -o qe8.nne", 0);
    /* --qat-equalize: the same with cross-layer (weight-range) equalization, for pow2; the
     * flag is a checkpoint setting (a resume keeps it) */
    snprintf(a, sizeof a,
             "train %s -o qw.nne --steps 2 --stop-after 1 --lr 1e-9 --init fp.nne --qat pow2 "
             "--qat-equalize --calib-images 2",
             k_run);
    EXPECT_RC(a, 0);
    EXPECT_RC("train --resume qw.ckpt", 0);
    check_equalized("qw.nne", "after cross-layer equalization");
    /* --qat-equalize-linear: the latent pair joins (recorded); only with an equalization */
    snprintf(a, sizeof a,
             "train %s -o qwl.nne --steps 1 --lr 1e-9 --init fp.nne --qat per-channel "
             "--qat-equalize-act 0.5 --qat-equalize-linear --calib-images 2",
             k_run);
    EXPECT_RC(a, 0);
    check_equalized("qwl.nne", "(alpha 0.5) (latent too)");
    /* the same run as qe.nne but for the latent pair: only conv2d_transpose_1's input
     * channels (the latent) differ */
    const double dl = weight_diff("qe.nne", "qwl.nne", "conv2d_transpose_1.weight"),
                 d1 = weight_diff("qe.nne", "qwl.nne", "conv2d_1.weight");
    CHECK_MSG(dl > 1e-3 && d1 < 1e-6, "latent pair: transpose_1 moved %g, conv2d_1 %g", dl, d1);
    snprintf(a, sizeof a,
             "train %s -o x.nne --steps 1 --init fp.nne --qat per-channel --qat-equalize-linear",
             k_run);
    EXPECT_RC(a, 2);
    CHECK(strstr(nne_cli_err, "--qat-equalize-linear") != NULL);
    EXPECT_RC("quantize qw.nne -o qw8.nne", 0);
    /* --qat-lsq: the scales are trained (qat.lsq and its Adam state in the model), and the
     * quantized model takes the learned ranges */
    snprintf(a, sizeof a,
             "train %s -o ql.nne --steps 3 --init fp.nne --qat per-channel --qat-lsq 20 "
             "--calib-images 2",
             k_run);
    EXPECT_RC(a, 0);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("ql.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "qat.lsq"), *d = nne_graph_get_meta(g, "train.qat");
        CHECK(v && !strcmp(v, "20") && nne_graph_get_meta(g, "qat.lsq_state.latent"));
        CHECK(d && strstr(d, "learned step sizes (LSQ, lr x 20)"));
        nne_graph_free(g);
    }
    EXPECT_RC("quantize ql.nne -o ql8.nne --json", 0);
    CHECK(strstr(nne_cli_out, "\"ranges\": \"fixed\"") != NULL);
    /* --qat-output-range: the reconstruction held on [0, 1] (qat.output_range), which the
     * quantized model takes: its output on the pixel grid */
    snprintf(a, sizeof a,
             "train %s -o qo.nne --steps 2 --init fp.nne --qat per-channel --qat-output-range 0,1 "
             "--calib-images 2",
             k_run);
    EXPECT_RC(a, 0);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("qo.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "qat.output_range"),
                   *r = nne_graph_get_meta(g, "qat.range.reconstruction");
        CHECK(v && !strcmp(v, "0 1") && r && !strcmp(r, "0 1"));
        nne_graph_free(g);
    }
    EXPECT_RC("quantize qo.nne -o qo8.nne --json", 0);
    CHECK(strstr(nne_cli_out, "\"output_range\": [0, 1]") != NULL);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("qo8.nne"), &g));
    if (g) {
        const nne_quant *u = &g->tensors[g->outputs[0]].quant;
        CHECK(u->count == 1 && u->scale[0] == 1.0f / 255 && u->zero_point[0] == -128);
        nne_graph_free(g);
    }
    /* conv + PReLU fusion: q7.nne trained fused (the default), quantized fused; one trained
     * unfused is quantized unfused, and --no-fuse-prelu on a fused one is refused */
    snprintf(a, sizeof a,
             "train %s -o qu.nne --steps 2 --init fp.nne --qat per-channel --qat-fuse-prelu 0 "
             "--calib-images 2",
             k_run);
    EXPECT_RC(a, 0);
    EXPECT_RC("quantize qu.nne -o qu8.nne --json", 0);
    CHECK(strstr(nne_cli_out, "\"fuse_prelu\": false") != NULL);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("qu.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "qat.fuse_prelu");
        CHECK(v && !strcmp(v, "0") && nne_graph_get_meta(g, "qat.range.conv2d_1:out"));
        nne_graph_free(g);
    }
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("q7.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "qat.fuse_prelu");
        CHECK(v && !strcmp(v, "1") && !nne_graph_get_meta(g, "qat.range.conv2d_1:out") &&
              nne_graph_get_meta(g, "qat.range.enc1"));
        nne_graph_free(g);
    }
    EXPECT_RC("quantize q7.nne -o q7n.nne --no-fuse-prelu", 2);
    CHECK(strstr(nne_cli_err, "one int8 layer") != NULL);
    EXPECT_RC("quantize q7.nne -o q7b.nne --weight-bits 8", 2);
    CHECK(strstr(nne_cli_err, "7-bit") != NULL);
    EXPECT_RC("quantize q7.nne -o q7b.nne", 0);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("q7b.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "quant.weight_bits");
        CHECK(v && !strcmp(v, "7"));
        int checked = 0; /* every weight code within [-64, 64] */
        for (int32_t i = 0; i < g->n_nodes; i++) {
            const nne_node *n = &g->nodes[i];
            if (n->op != NNE_OP_CONV2D && n->op != NNE_OP_CONV_TRANSPOSE2D) continue;
            const nne_tensor *w = &g->tensors[n->inputs[1]];
            CHECK(w->dtype == NNE_S8);
            const int8_t *d = w->data;
            for (int64_t k = 0; k < nne_shape_numel(&w->shape); k++) CHECK(d[k] >= -64 && d[k] <= 64);
            checked++;
        }
        CHECK(checked == 10);
        nne_graph_free(g);
    }
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat pow2 --qat-weight-bits 6 --init fp.nne",
             k_run);
    EXPECT_RC(a, 2);
    snprintf(a, sizeof a, "train %s -o x.nne --steps 2 --qat-weight-bits 7", k_run);
    EXPECT_RC(a, 2);
    CHECK(strstr(nne_cli_err, "need --qat") != NULL);
    EXPECT_RC("run q8.nne --help", 0);
    /* An initial model of another architecture or a quantized one is refused. */
    snprintf(a, sizeof a, "train %s -o y.nne --steps 2 --init q8.nne --qat pow2", k_run);
    EXPECT_RC(a, 1);
    CHECK(strstr(nne_cli_err, "quantized") != NULL);
}

/* QAT with EMA ranges and a teacher, in slices: equal to the uninterrupted run. */
static void test_resume(void) {
    char a[768];
    const char *k = "--steps 8 --init fp.nne --qat per-channel --qat-ema 0.05 --teacher fp.nne "
                    "--distill-alpha 0.5";
    snprintf(a, sizeof a, "train %s -o ref.nne %s", k_run, k);
    EXPECT_RC(a, 0);
    snprintf(a, sizeof a, "train %s -o res.nne %s --stop-after 3", k_run, k);
    EXPECT_RC(a, 0);
    EXPECT_RC("train --resume res.ckpt --qat pow2", 2); /* settings are the checkpoint's */
    CHECK(strstr(nne_cli_err, "--qat pow2 conflicts") != NULL);
    EXPECT_RC("train --resume res.ckpt --init fp.nne", 2);
    EXPECT_RC("train --resume res.ckpt -q", 0);
    CHECK_MSG(nne_cli_same_model("ref.nne", "res.nne", "qat."),
              "resumed QAT model differs from the reference");
    nne_graph *g = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("res.nne"), &g));
    if (g) {
        const char *v = nne_graph_get_meta(g, "train.distill");
        CHECK(v && strstr(v, "alpha 0.5") && strstr(v, "SHA-256"));
        nne_graph_free(g);
    }
    /* A teacher that changed is refused on resume. */
    snprintf(a, sizeof a, "train %s -o t2.nne %s --stop-after 2", k_run, k);
    EXPECT_RC(a, 0);
    snprintf(a, sizeof a, "train %s -o other.nne --steps 3", k_run);
    EXPECT_RC(a, 0);
    EXPECT_RC("train --resume t2.ckpt --teacher other.nne -q", 1);
    CHECK(strstr(nne_cli_err, "differs from the checkpoint's teacher") != NULL);
}

/* Bytes of `rel` in the temporary folder (nne_free), NULL if unreadable. */
static unsigned char *read_tmp(const char *rel, size_t *n) {
    return nne_test_read_file(nne_cli_tmp_path(rel), n);
}

/* A learned codec: QAT of g_a and g_s from a trained codec; the output is the int8 codec
 * (compress, decompress, info work on it; quantize refuses it); resume is bit-exact. */
static void test_codec_qat(void) {
    char a[1024];
    const char *k_rd = "--model bmshj2018-factorized --channels 6,8 --lambda 0.02 --crop 32 "
                       "--batch 2 --seed 3 -q";
    snprintf(a, sizeof a, "train --data data -o rdc.nne --steps 8 %s", k_rd);
    EXPECT_RC(a, 0);
    const char *k_q = "--init rdc.nne --qat per-channel --calib-images 3 --steps 6 --lr 1e-3";
    snprintf(a, sizeof a, "train --data data --val val --val-every 3 -o cq.nne %s %s", k_rd, k_q);
    EXPECT_RC(a, 0);
    nne_graph *g = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("cq.nne"), &g));
    if (g) {
        CHECK(g->n_attached == 2);
        const char *v = nne_graph_get_meta(g, "train.qat");
        CHECK_MSG(v && strstr(v, "per-channel") && strstr(v, "fixed") && strstr(v, "g_a and g_s"),
                  "train.qat = %s", v ? v : "(none)");
        CHECK(nne_graph_get_meta(g, "qat.range.image") && nne_graph_get_meta(g, "qat.range.y") &&
              nne_graph_get_meta(g, "qat.range.y_hat") && nne_graph_get_meta(g, "qat.range.x_hat"));
        CHECK(!nne_graph_get_meta(g, "qat.range.likelihoods_y"));
        for (int32_t i = 0; i < g->n_attached; i++) {
            v = nne_graph_get_meta(g->attached[i], "quant.ranges");
            CHECK(v && !strcmp(v, "fixed"));
        }
        nne_graph_free(g);
    }
    EXPECT_RC("info cq.nne", 0);
    CHECK(strstr(nne_cli_out, "int8 (g_a, g_s per-channel") != NULL);
    EXPECT_RC("compress val/img00.png -m cq.nne -o cq.nnc -q", 0);
    EXPECT_RC("decompress cq.nnc -m cq.nne -o cq.png -q", 0);
    EXPECT_RC("decompress cq.nnc -m rdc.nne -o cq2.png -q", 1); /* the f32 codec refuses */
    EXPECT_RC("quantize cq.nne -o cq8.nne --calib data", 1);
    CHECK(strstr(nne_cli_err, "an int8 learned codec") != NULL);
    EXPECT_RC("quantize cq.nne -o cq8.nne", 1); /* its qat.* ranges do not make it quantizable */
    /* in slices: the same weights, ranges and int8 codec (same stream bytes: the container's
     * model hash covers the int8 parts) */
    snprintf(a, sizeof a, "train --data data -o cr.nne %s %s --qat-ema 0.1 --stop-after 4", k_rd,
             k_q);
    EXPECT_RC(a, 0);
    EXPECT_RC("train --resume cr.ckpt -q", 0);
    snprintf(a, sizeof a, "train --data data -o ce.nne %s %s --qat-ema 0.1", k_rd, k_q);
    EXPECT_RC(a, 0);
    CHECK_MSG(nne_cli_same_model("ce.nne", "cr.nne", "qat."), "resumed codec QAT differs");
    EXPECT_RC("compress val/img00.png -m ce.nne -o ce.nnc -q", 0);
    EXPECT_RC("compress val/img00.png -m cr.nne -o cr.nnc -q", 0);
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = read_tmp("ce.nnc", &n1), *b2 = read_tmp("cr.nnc", &n2);
    CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1));
    nne_free(b1);
    nne_free(b2);
    /* --init-partial stays refused with --qat */
    snprintf(a, sizeof a, "train --data data -o cp.nne %s %s --init-partial", k_rd, k_q);
    EXPECT_RC(a, 2);
}

int main(void) {
    nne_cli_setup("qat-cli");
    make_images("data", 4, 1);
    make_images("val", 1, 2);
    NNE_RUN(test_usage);
    NNE_RUN(test_qat_and_quantize);
    NNE_RUN(test_resume);
    NNE_RUN(test_codec_qat);
    nne_cli_cleanup();
    return nne_test_summary();
}
