/* End-to-end tests of `nnedge quantize`: usage errors, the Kodak guard, per-channel and pow2
 * runs on a small cae-seed with random weights, the written model (readable, s8, runs on
 * cpu-s8, `nnedge info` works), --eval, JSON; --fake (weights rounded to fp16 / int4 / int2 in
 * an f32 model, their storage size); `nnedge eval` of a quantized model on cpu-s8 (against
 * quantize --eval's independent PSNR). The binary's path comes from NNEDGE_BIN. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_fixtures.h"
#include "cli_util.h"
#include "nnedge/backend.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/qops.h"

#undef EXPECT_RC
#define EXPECT_RC(args, rc) EXPECT_RC_IN(nne_cli_tmp, args, rc)

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

/* Conv + PReLU fusion: by default (per-channel) every tensor between a conv and its PReLU has
 * no parameters and quant.fuse_prelu is "1"; --no-fuse-prelu quantizes them all ("0"); pow2
 * never fuses; both run on cpu-s8 and their outputs differ (one rounding against two). */
static int fused_tensors(const nne_graph *q) {
    int n = 0;
    for (int32_t t = 0; t < q->n_tensors; t++)
        if (q->tensors[t].kind != NNE_TENSOR_CONSTANT && !q->tensors[t].quant.count) {
            CHECK(nne_graph_fusable_prelu(q, t) >= 0);
            n++;
        }
    return n;
}

static void test_fuse_prelu(void) {
    EXPECT_RC("quantize m.nne --calib data --crop 32 --max-images 2 -o fu.nne --json", 0);
    CHECK(strstr(nne_cli_out, "\"fuse_prelu\": true") != NULL);
    EXPECT_RC("quantize m.nne --calib data --crop 32 --max-images 2 -o un.nne --no-fuse-prelu "
              "--json",
              0);
    CHECK(strstr(nne_cli_out, "\"fuse_prelu\": false") != NULL);
    EXPECT_RC("quantize m.nne --calib data --crop 32 --max-images 2 --scheme pow2 -o p2.nne -q", 0);
    EXPECT_RC("quantize m.nne --fake --scheme fp16 --no-fuse-prelu -o f.nne", 2);
    CHECK(strstr(nne_cli_err, "--no-fuse-prelu") != NULL);
    nne_graph *fu = NULL, *un = NULL, *p2 = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("fu.nne"), &fu));
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("un.nne"), &un));
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("p2.nne"), &p2));
    if (fu && un && p2) {
        CHECK_OK(nne_graph_infer(fu));
        CHECK_OK(nne_graph_infer(un));
        CHECK_OK(nne_graph_infer(p2));
        CHECK(fused_tensors(fu) == 8 && !strcmp(nne_graph_get_meta(fu, "quant.fuse_prelu"), "1"));
        CHECK(fused_tensors(un) == 0 && !strcmp(nne_graph_get_meta(un, "quant.fuse_prelu"), "0"));
        CHECK(fused_tensors(p2) == 0 && !strcmp(nne_graph_get_meta(p2, "quant.fuse_prelu"), "0"));
        /* the same input through both on cpu-s8: runs, and the codes differ somewhere */
        const size_t n = (size_t)nne_shape_numel(&fu->tensors[fu->inputs[0]].shape);
        float *x = malloc(n * sizeof *x), *ya = malloc(n * sizeof *ya), *yb = malloc(n * sizeof *yb);
        for (size_t i = 0; i < n; i++) x[i] = (float)((i * 37) % 101) / 100.0f;
        nne_session *sa = NULL, *sb = NULL;
        CHECK_OK(nne_session_create(fu, nne_backend_cpu_s8(), &sa));
        CHECK_OK(nne_session_create(un, nne_backend_cpu_s8(), &sb));
        if (sa && sb) {
            CHECK_OK(nne_session_set_input_f32(sa, 0, x, n));
            CHECK_OK(nne_session_set_input_f32(sb, 0, x, n));
            CHECK_OK(nne_session_run(sa));
            CHECK_OK(nne_session_run(sb));
            CHECK_OK(nne_session_get_output_f32(sa, 0, ya, n));
            CHECK_OK(nne_session_get_output_f32(sb, 0, yb, n));
            CHECK(memcmp(ya, yb, n * sizeof *ya) != 0);
        }
        nne_session_free(sa);
        nne_session_free(sb);
        free(x), free(ya), free(yb);
    }
    nne_graph_free(fu);
    nne_graph_free(un);
    nne_graph_free(p2);
}

/* --output-range LO,HI: the reconstruction on the pixel grid, recorded; bad ranges and --fake
 * with it are usage errors. */
static void test_output_range(void) {
    EXPECT_RC("quantize m.nne --calib data --crop 32 --max-images 2 -o or.nne --output-range 0,1 "
              "--json",
              0);
    CHECK(strstr(nne_cli_out, "\"output_range\": [0, 1]") != NULL);
    nne_graph *q = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("or.nne"), &q));
    if (q) {
        const nne_quant *u = &q->tensors[q->outputs[0]].quant;
        CHECK(u->count == 1 && u->scale[0] == 1.0f / 255 && u->zero_point[0] == -128);
        const char *m = nne_graph_get_meta(q, "quant.output_range");
        CHECK(m && !strcmp(m, "0 1"));
    }
    nne_graph_free(q);
    const char *bad[] = {"1,0", "0", "0,1,2", "a,1", "0,nan", "0.5,0.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[160];
        snprintf(cmd, sizeof cmd,
                 "quantize m.nne --calib data --crop 32 --max-images 2 -o x.nne --output-range %s",
                 bad[i]);
        EXPECT_RC(cmd, 2);
        CHECK_MSG(strstr(nne_cli_err, "--output-range") != NULL, "%s", bad[i]);
    }
    EXPECT_RC("quantize m.nne --fake --scheme fp16 --output-range 0,1 -o f.nne", 2);
    CHECK(strstr(nne_cli_err, "--output-range") != NULL);
}

static bool is_mac_weight(const nne_graph *g, int32_t t) {
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_op_type op = g->nodes[i].op;
        if ((op == NNE_OP_CONV2D || op == NNE_OP_CONV_TRANSPOSE2D || op == NNE_OP_DENSE) &&
            g->nodes[i].inputs[1] == t)
            return true;
    }
    return false;
}

/* --fake: every constant of the output against the documented rule applied to m.nne's, and
 * the printed storage size against the sum written out here. */
static void check_fake(const char *scheme, int bits) {
    char a[256];
    snprintf(a, sizeof a, "quantize m.nne --fake --scheme %s -o f-%s.nne --json", scheme, scheme);
    EXPECT_RC(a, 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    long long printed = -1;
    const char *p = strstr(nne_cli_out, "\"storage_bytes\": ");
    if (p) printed = atoll(p + strlen("\"storage_bytes\": "));
    nne_graph *m = NULL, *f = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("m.nne"), &m));
    snprintf(a, sizeof a, "f-%s.nne", scheme);
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path(a), &f));
    if (!m || !f) goto done;
    CHECK(!strcmp(nne_graph_get_meta(f, "quant.fake"), scheme));
    long long bytes = 0;
    int changed = 0, tensors = 0;
    for (int32_t t = 0; t < m->n_tensors; t++) {
        const nne_tensor *x = &m->tensors[t];
        if (x->kind != NNE_TENSOR_CONSTANT) continue;
        const int32_t u = nne_graph_find_tensor(f, x->name);
        CHECK(u >= 0 && f->tensors[u].dtype == NNE_F32);
        if (u < 0) continue;
        const size_t n = (size_t)nne_shape_numel(&x->shape);
        float *want = nne_malloc(n * sizeof *want);
        if (!want) continue;
        const bool w = is_mac_weight(m, t);
        if (bits == 16)
            nne_fake_quantize_f16(n, x->data, want);
        else if (w)
            CHECK_OK(nne_fake_quantize_tensor(&x->shape, x->data, bits, true, false, want, NULL));
        else
            memcpy(want, x->data, n * sizeof *want);
        CHECK_MSG(memcmp(want, f->tensors[u].data, n * sizeof *want) == 0, "%s: %s", scheme,
                  x->name);
        changed += memcmp(want, x->data, n * sizeof *want) != 0;
        tensors++;
        bytes += bits == 16 ? 2 * (long long)n
                 : w        ? ((long long)n * bits + 7) / 8
                            : 4 * (long long)n;
        nne_free(want);
    }
    CHECK_MSG(printed == bytes, "%s: storage %lld, want %lld", scheme, printed, bytes);
    CHECK(changed > 0 && tensors > 10); /* the rounding did something */
    if (bits == 16) { /* stored as f16: the file is about half the f32 model's */
        size_t nm = 0, nf = 0;
        unsigned char *bm = nne_test_read_file(nne_cli_tmp_path("m.nne"), &nm);
        unsigned char *bf = nne_test_read_file(nne_cli_tmp_path(a), &nf);
        CHECK_MSG(bm && bf && nf < nm * 6 / 10, "fp16 file %zu bytes, f32 %zu", nf, nm);
        nne_free(bm);
        nne_free(bf);
    }
done:
    nne_graph_free(m);
    nne_graph_free(f);
}

static void test_fake(void) {
    check_fake("fp16", 16);
    check_fake("int8", 8);
    check_fake("int4", 4);
    check_fake("int2", 2);
    EXPECT_RC("quantize m.nne --fake -o x.nne", 2);
    CHECK(strstr(nne_cli_err, "--scheme") != NULL);
    EXPECT_RC("quantize m.nne --fake --scheme pow2 -o x.nne", 2);
    EXPECT_RC("quantize m.nne --fake --scheme int4 --calib data -o x.nne", 2);
    EXPECT_RC("quantize m.nne --scheme int2 --calib data -o x.nne", 2);
    CHECK(strstr(nne_cli_err, "--fake") != NULL);
    EXPECT_RC("quantize q.nne --fake --scheme int4 -o x.nne", 1); /* already quantized */
    CHECK(strstr(nne_cli_err, "f32") != NULL);
    CHECK(!nne_cli_tmp_exists("x.nne"));
}

/* nnedge eval of an int8 model runs it on cpu-s8: its mean PSNR is the one quantize --eval
 * measures with its own code path; f32 models keep the latent-codec path. */
/* --equalize: recorded in the model and the JSON; the f32 function is the same (so the
 * int8 model stays close to the plain one's PSNR), the weights differ; refused with --fake. */
static void test_equalize(void) {
    EXPECT_RC("quantize m.nne --calib data --crop 32 --equalize -o qe.nne --eval data --json -q",
              0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"equalize\": true"));
    const char *p = strstr(nne_cli_out, "\"psnr_int8\": ");
    const double pe = p ? atof(p + strlen("\"psnr_int8\": ")) : NAN;
    EXPECT_RC("quantize m.nne --calib data --crop 32 -o qn.nne --eval data --json -q", 0);
    CHECK(strstr(nne_cli_out, "\"equalize\": false") != NULL);
    p = strstr(nne_cli_out, "\"psnr_int8\": ");
    const double pn = p ? atof(p + strlen("\"psnr_int8\": ")) : NAN;
    CHECK_MSG(fabs(pe - pn) < 3.0, "int8 PSNR %.2f equalized vs %.2f", pe, pn);
    nne_graph *q = NULL, *n = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("qe.nne"), &q));
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("qn.nne"), &n));
    if (q && n) {
        const char *v = nne_graph_get_meta(q, "quant.equalize"),
                   *k = nne_graph_get_meta(q, "quant.equalize_pairs");
        /* cae-seed: 4 encoder and 4 decoder pairs (conv2d_5 -> latent -> transpose_1 has no
         * activation: left alone) */
        CHECK(v && strcmp(v, "1") == 0 && k && strcmp(k, "8") == 0);
        const int32_t a = nne_graph_find_tensor(q, "conv2d_2.weight"),
                      b = nne_graph_find_tensor(n, "conv2d_2.weight");
        CHECK(a >= 0 && b >= 0 &&
              memcmp(q->tensors[a].data, n->tensors[b].data, nne_tensor_nbytes(&q->tensors[a])));
    }
    nne_graph_free(q);
    nne_graph_free(n);
    EXPECT_RC("quantize m.nne --fake --scheme int8 --equalize -o f.nne", 2);
    CHECK(strstr(nne_cli_err, "--equalize") != NULL);
    /* --equalize-act ALPHA: activation ranges; recorded with alpha; bad values refused */
    EXPECT_RC("quantize m.nne --calib data --crop 32 --equalize-act 0.5 -o qa.nne --json -q", 0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"equalize\": true") &&
          strstr(nne_cli_out, "\"equalize_alpha\": 0.5"));
    nne_graph *qa = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("qa.nne"), &qa));
    if (qa) {
        const char *v = nne_graph_get_meta(qa, "quant.equalize"),
                   *al = nne_graph_get_meta(qa, "quant.equalize_alpha");
        CHECK(v && strcmp(v, "activations") == 0 && al && strcmp(al, "0.5") == 0);
    }
    nne_graph_free(qa);
    EXPECT_RC("quantize m.nne --calib data --crop 32 --equalize-act 0 -o qb.nne", 2);
    EXPECT_RC("quantize m.nne --calib data --crop 32 --equalize-act 1.5 -o qb.nne", 2);
    EXPECT_RC("quantize m.nne --calib data --crop 32 --equalize --equalize-act 1 -o qb.nne", 2);
    EXPECT_RC("quantize m.nne --fake --scheme int8 --equalize-act 1 -o qb.nne", 2);
    /* --equalize-linear: the latent pair joins (9 pairs), recorded; only with an equalization */
    EXPECT_RC("quantize m.nne --calib data --crop 32 --equalize-act 0.5 --equalize-linear "
              "-o ql.nne --json -q",
              0);
    CHECK(nne_cli_json_valid(nne_cli_out) && strstr(nne_cli_out, "\"equalize_pairs\": 9") &&
          strstr(nne_cli_out, "\"equalize_linear\": true"));
    nne_graph *ql = NULL;
    CHECK_OK(nne_model_read_file(nne_cli_tmp_path("ql.nne"), &ql));
    if (ql) {
        const char *v = nne_graph_get_meta(ql, "quant.equalize_linear");
        CHECK(v && strcmp(v, "1") == 0);
    }
    nne_graph_free(ql);
    EXPECT_RC("quantize m.nne --calib data --crop 32 --equalize-linear -o qb.nne", 2);
    CHECK(strstr(nne_cli_err, "--equalize-linear") != NULL);
    EXPECT_RC("quantize m.nne --fake --scheme int8 --equalize-linear -o qb.nne", 2);
    CHECK(!nne_cli_tmp_exists("qb.nne"));
}

static void test_eval_s8(void) {
    EXPECT_RC("quantize m.nne --calib data --crop 32 --scheme pow2 -o e.nne --eval data --json -q",
              0);
    const char *p = strstr(nne_cli_out, "\"psnr_int8\": ");
    const double want = p ? atof(p + strlen("\"psnr_int8\": ")) : NAN;
    EXPECT_RC("eval --data data --model e.nne --backend cpu-s8 -q -o rep --json", 0);
    CHECK(nne_cli_json_valid(nne_cli_out));
    CHECK(strstr(nne_cli_out, "\"backend\": \"cpu-s8\"") != NULL);
    CHECK(strstr(nne_cli_out, "\"nnl_xz_bytes\": null") != NULL); /* no int8 latent file */
    CHECK(strstr(nne_cli_out, "weights_sha256") == NULL);
    /* "psnr" of the "mean" object: the last one printed */
    const char *m = strstr(nne_cli_out, "\"mean\"");
    const char *mp = m ? strstr(m, "\"psnr\": ") : NULL;
    const double got = mp ? atof(mp + strlen("\"psnr\": ")) : NAN;
    CHECK_MSG(fabs(got - want) < 0.01, "eval %.4f vs quantize --eval %.4f", got, want);
    CHECK(nne_cli_tmp_exists("rep/eval.csv") && nne_cli_tmp_exists("rep/eval.md"));
    /* the same without --backend (chosen by the model), and the latent columns: an int8
     * latent of 1 byte per value (40x36 gives 3x3x32 = 288 bytes against 4320 RGB bytes) */
    EXPECT_RC("eval --data data --model e.nne -q --json", 0);
    CHECK(strstr(nne_cli_out, "\"latent_bytes\": 288,") != NULL);
    EXPECT_RC("eval --data data --model e.nne --backend cpu -q", 1);
    CHECK(strstr(nne_cli_err, "cpu-s8") != NULL);
    EXPECT_RC("eval --data data --model m.nne --backend cpu-s8 -q", 1);
    CHECK(strstr(nne_cli_err, "nnedge quantize") != NULL);
    EXPECT_RC("eval --data data --model m.nne --backend gpu -q", 2);
    EXPECT_RC("eval --data data --model m.nne -q --json", 0);
    CHECK(strstr(nne_cli_out, "\"backend\": \"cpu\"") && strstr(nne_cli_out, "weights_sha256"));
}

int main(void) {
    nne_cli_setup("quantize-cli");
    nne_cli_make_images("data", 4);
    nne_cli_make_cae_seed("m.nne", 32, 32, 12345u);
    NNE_RUN(test_usage);
    NNE_RUN(test_kodak_refused);
    NNE_RUN(test_runs);
    NNE_RUN(test_fuse_prelu);
    NNE_RUN(test_output_range);
    NNE_RUN(test_fake);
    NNE_RUN(test_equalize);
    NNE_RUN(test_eval_s8);
    nne_cli_cleanup();
    return nne_test_summary();
}
