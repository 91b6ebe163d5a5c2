/* Int8 learned codecs (nne_lcodec_quantize, docs/codec.md "Int8 codecs") with the tiny
 * trained models of tests/tiny_lcodec.h: the quantized parts survive a model-file round trip;
 * the int8 codec decodes its own streams bit for bit (symbols, y_hat, the PSNR the encoder
 * predicted), stays within a few dB of the f32 codec, and gives identical bytes and pixels on
 * cpu-s8 and cpu-s8-ref and for every GEMM ISA; f32 and int8 codecs refuse each other's
 * streams (model hash); malformed int8 models are refused at load with clear errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tiny_lcodec.h"
#include "codec/lcodec_internal.h"
#include "nnedge/gemm.h"
#include "nnedge/lcodec.h"
#include "nnedge/metrics.h"
#include "nnedge/model_file.h"
#include "testutil.h"

static nne_lcodec_quantize_opts opts(nne_qscheme scheme) { return nne_tiny_quantize_opts(scheme); }

/* The tiny model of `kind`, quantized with `scheme`, through a model file. */
static nne_graph *int8_model(nne_rdmodel_kind kind, nne_qscheme scheme) {
    nne_graph *g = NULL, *back = NULL;
    CHECK_OK(nne_tiny_lcodec_model(kind, 11 + (uint64_t)kind, &g));
    if (!g) return NULL;
    const nne_lcodec_quantize_opts o = opts(scheme);
    CHECK_OK(nne_lcodec_quantize(g, &o));
    CHECK(g->n_attached == 2);
    uint8_t *buf = NULL;
    size_t n = 0;
    CHECK_OK(nne_model_write_mem(g, &buf, &n));
    if (buf) CHECK_OK(nne_model_read_mem(buf, n, &back));
    CHECK(back && back->n_attached == 2);
    nne_free(buf);
    nne_graph_free(g);
    return back;
}

static bool make_image(nne_image *img, int32_t w, int32_t h, int32_t phase) {
    return nne_tiny_image(img, w, h, phase) == NNE_OK;
}

static double psnr(const nne_image *a, const nne_image *b) { return nne_tiny_psnr(a, b); }

/* Round trips for every kind and scheme: info, decode = encode, PSNR near f32, hashes. */
static void test_round_trip(void) {
    static const nne_qscheme schemes[3] = {NNE_QSCHEME_PER_TENSOR, NNE_QSCHEME_PER_CHANNEL,
                                           NNE_QSCHEME_POW2};
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++) {
        nne_graph *f = NULL;
        nne_lcodec *cf = NULL;
        CHECK_OK(nne_tiny_lcodec_model((nne_rdmodel_kind)kind, 11 + (uint64_t)kind, &f));
        if (f) CHECK_OK(nne_lcodec_create(f, 3, &cf));
        if (!cf) return;
        nne_lcodec_info fi;
        nne_lcodec_get_info(cf, &fi);
        CHECK(!strcmp(fi.precision, "f32") && fi.scheme == NULL);
        nne_image img = {0}, out = {0}, fout = {0};
        CHECK(make_image(&img, 90, 70, 3));
        uint8_t *fbuf = NULL;
        size_t fn = 0;
        nne_lcodec_stats fst;
        CHECK_OK(nne_lcodec_encode(cf, &img, true, &fbuf, &fn, &fst));
        for (int k = 0; k < 3; k++) {
            nne_graph *q = int8_model((nne_rdmodel_kind)kind, schemes[k]);
            nne_lcodec *c = NULL;
            if (q) CHECK_OK(nne_lcodec_create(q, 3, &c));
            if (!c) {
                nne_graph_free(q);
                continue;
            }
            nne_lcodec_info qi;
            nne_lcodec_get_info(c, &qi);
            CHECK(!strcmp(qi.precision, "int8"));
            CHECK(qi.scheme && !strcmp(qi.scheme, nne_qscheme_name(schemes[k])));
            CHECK(memcmp(qi.hash, fi.hash, 32) != 0);
            /* g_a's and g_s's weights at 1 byte instead of 4 (plus s32 biases) */
            CHECK_MSG(qi.weight_bytes < fi.weight_bytes, "%lld vs %lld", (long long)qi.weight_bytes,
                      (long long)fi.weight_bytes);
            uint8_t *buf = NULL;
            size_t n = 0;
            nne_lcodec_stats st;
            CHECK_OK(nne_lcodec_encode(c, &img, true, &buf, &n, &st));
            const nne_lcodec_symbols *ls = nne_lcodec_last_symbols(c);
            const size_t ny = ls->ny;
            float *yh = malloc(ny * sizeof *yh);
            int32_t *ys = malloc(ny * sizeof *ys);
            memcpy(yh, ls->y_hat, ny * sizeof *yh);
            memcpy(ys, ls->y, ny * sizeof *ys);
            CHECK_OK(nne_lcodec_decode(c, buf, n, &out));
            ls = nne_lcodec_last_symbols(c);
            CHECK(ls->ny == ny && !memcmp(ls->y, ys, ny * 4) && !memcmp(ls->y_hat, yh, ny * 4));
            const double p = out.data ? psnr(&img, &out) : 0;
            CHECK_MSG(p == st.psnr, "decoded %.6f dB, encoder predicted %.6f", p, st.psnr);
            printf("  %s %s: %zu bytes (f32 %zu), PSNR %.2f dB (f32 %.2f), weights %lld B "
                   "(f32 %lld)\n",
                   qi.model_id, qi.scheme, n, fn, p, fst.psnr, (long long)qi.weight_bytes,
                   (long long)fi.weight_bytes);
            CHECK_MSG(fabs(p - fst.psnr) < 3.0, "int8 %.2f dB, f32 %.2f dB", p, fst.psnr);
            /* The f32 codec refuses the int8 stream and the int8 codec the f32 one. */
            CHECK_STATUS(nne_lcodec_decode(cf, buf, n, &fout), NNE_ERR_INVALID_ARG);
            CHECK(strstr(nne_last_error(), "wrong model") != NULL);
            CHECK_STATUS(nne_lcodec_decode(c, fbuf, fn, &fout), NNE_ERR_INVALID_ARG);
            /* The reference int8 backend: the same bytes and pixels. */
            nne_lcodec_set_s8_backend(c, nne_backend_cpu_s8_ref());
            uint8_t *rbuf = NULL;
            size_t rn = 0;
            nne_image rout = {0};
            CHECK_OK(nne_lcodec_encode(c, &img, false, &rbuf, &rn, NULL));
            CHECK(rn == n && rbuf && !memcmp(rbuf, buf, n));
            CHECK_OK(nne_lcodec_decode(c, buf, n, &rout));
            CHECK(rout.data && out.data && !memcmp(rout.data, out.data, (size_t)90 * 70 * 3));
            nne_free(rbuf);
            nne_image_free(&rout);
            free(yh), free(ys);
            nne_free(buf);
            nne_image_free(&out);
            nne_lcodec_free(c);
            nne_graph_free(q);
        }
        nne_free(fbuf);
        nne_image_free(&img);
        nne_lcodec_free(cf);
        nne_graph_free(f);
    }
}

/* The int8 decode does not depend on the GEMM ISA (cpu-s8's kernels are bit-exact). */
static void test_isa_independent(void) {
    nne_graph *q = int8_model(NNE_RD_MEAN_SCALE, NNE_QSCHEME_PER_CHANNEL);
    nne_lcodec *c = NULL;
    if (q) CHECK_OK(nne_lcodec_create(q, 0, &c));
    if (!c) {
        nne_graph_free(q);
        return;
    }
    nne_image img = {0}, a = {0}, b = {0};
    CHECK(make_image(&img, 130, 67, 5));
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t n = 0, n2 = 0;
    CHECK_OK(nne_ops_set_isa("ref"));
    CHECK_OK(nne_lcodec_encode(c, &img, false, &buf, &n, NULL));
    CHECK_OK(nne_lcodec_decode(c, buf, n, &a));
    CHECK_OK(nne_ops_set_isa(nne_ops_isa_supported("avx2") ? "avx2" : "ref"));
    CHECK_OK(nne_lcodec_encode(c, &img, false, &buf2, &n2, NULL));
    CHECK_OK(nne_lcodec_decode(c, buf, n, &b));
    CHECK(n == n2 && buf2 && !memcmp(buf, buf2, n));
    CHECK(a.data && b.data && !memcmp(a.data, b.data, (size_t)130 * 67 * 3));
    nne_ops_set_isa(NULL);
    nne_free(buf), nne_free(buf2);
    nne_image_free(&img), nne_image_free(&a), nne_image_free(&b);
    nne_lcodec_free(c);
    nne_graph_free(q);
}

/* Malformed int8 codecs are refused at load, naming the problem. */
static void test_malformed(void) {
    nne_graph *q = int8_model(NNE_RD_HYPERPRIOR, NNE_QSCHEME_PER_CHANNEL);
    if (!q) return;
    nne_lcodec *c = NULL;
    /* Quantizing an int8 codec again. */
    const nne_lcodec_quantize_opts o = opts(NNE_QSCHEME_PER_CHANNEL);
    CHECK_STATUS(nne_lcodec_quantize(q, &o), NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "attached graphs already") != NULL);
    /* Only g_s: g_a missing. */
    nne_graph *ga = q->attached[0];
    CHECK(!strcmp(ga->name, "bmshj2018-hyperprior.g_a"));
    q->attached[0] = q->attached[1];
    q->n_attached = 1;
    CHECK_STATUS(nne_lcodec_create(q, 0, &c), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "bmshj2018-hyperprior.g_a is missing") != NULL);
    /* g_a renamed: an attached graph that is no part. */
    nne_free(ga->name);
    ga->name = nne_strdup("extra");
    CHECK_OK(nne_graph_attach(q, ga));
    CHECK_STATUS(nne_lcodec_create(q, 0, &c), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "attached graph 'extra' is not a part") != NULL);
    /* g_s's graph in g_a's place: its tensors are not g_a's. */
    nne_free(ga->name);
    ga->name = nne_strdup("bmshj2018-hyperprior.g_a");
    nne_graph *gs = NULL;
    nne_graph *swap = q->attached[0]; /* the real g_s */
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_OK(nne_model_write_mem(swap, &b, &n));
    if (b) CHECK_OK(nne_model_read_mem(b, n, &gs));
    nne_free(b);
    if (gs) {
        nne_free(gs->name);
        gs->name = nne_strdup("bmshj2018-hyperprior.g_a");
        q->attached[1] = gs; /* ga is dropped here */
        nne_graph_free(ga);
        CHECK_STATUS(nne_lcodec_create(q, 0, &c), NNE_ERR_NOT_FOUND);
        CHECK_MSG(strstr(nne_last_error(), "int8 part bmshj2018-hyperprior.g_a") &&
                      strstr(nne_last_error(), "is not in the quantized model"),
                  "%s", nne_last_error());
    }
    CHECK(c == NULL);
    nne_graph_free(q);

    /* An int8 part whose activation lost its quantization: cpu-s8 cannot run it. */
    q = int8_model(NNE_RD_FACTORIZED, NNE_QSCHEME_PER_TENSOR);
    if (!q) return;
    nne_graph *a = q->attached[1];
    const int32_t t = nne_graph_find_tensor(a, "g_s.1:out");
    CHECK(t >= 0);
    if (t >= 0) {
        nne_tensor *x = &a->tensors[t];
        nne_quant_free(&x->quant);
        memset(&x->quant, 0, sizeof x->quant);
        CHECK_STATUS(nne_lcodec_create(q, 0, &c), NNE_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(nne_last_error(), "bmshj2018-factorized.g_s") &&
                      strstr(nne_last_error(), "g_s.1:out"),
                  "%s", nne_last_error());
    }
    nne_graph_free(q);
    /* Calibration sizes that are not multiples of the alignment, QAT ranges. */
    nne_graph *f = NULL;
    CHECK_OK(nne_tiny_lcodec_model(NNE_RD_HYPERPRIOR, 3, &f));
    if (!f) return;
    nne_lcodec_quantize_opts bad = opts(NNE_QSCHEME_PER_CHANNEL);
    bad.height = 48;
    CHECK_STATUS(nne_lcodec_quantize(f, &bad), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "multiples of 64") != NULL);
    bad = opts(NNE_QSCHEME_PER_CHANNEL);
    bad.q.n_samples = 0;
    CHECK_STATUS(nne_lcodec_quantize(f, &bad), NNE_ERR_INVALID_ARG);
    CHECK(f->n_attached == 0); /* unchanged on error */
    nne_graph_free(f);
}

/* output_lo/hi: g_s's output x_hat on the pixel grid (scale 1/255, zero point -128), g_a's
 * output (the latent) calibrated as without it; the codec decodes what its encoder predicted,
 * close to the int8 codec without the range. */
static double int8_psnr(const nne_graph *m, const nne_image *img) {
    nne_lcodec *c = NULL;
    nne_image out = {0};
    uint8_t *bs = NULL;
    size_t n = 0;
    nne_lcodec_stats st = {0};
    double p = 0.0;
    CHECK_OK(nne_lcodec_create(m, 0, &c));
    if (c) CHECK_OK(nne_lcodec_encode(c, img, true, &bs, &n, &st));
    if (bs) CHECK_OK(nne_lcodec_decode(c, bs, n, &out));
    if (out.data) {
        p = psnr(img, &out);
        CHECK_MSG(p == st.psnr, "decoded %.6f dB, encoder predicted %.6f", p, st.psnr);
    }
    nne_free(bs);
    nne_image_free(&out);
    nne_lcodec_free(c);
    return p;
}

static void test_output_range(void) {
    nne_graph *g = NULL, *h = NULL;
    CHECK_OK(nne_tiny_lcodec_model(NNE_RD_HYPERPRIOR, 5, &g));
    CHECK_OK(nne_tiny_lcodec_model(NNE_RD_HYPERPRIOR, 5, &h));
    if (!g || !h) goto done;
    nne_lcodec_quantize_opts o = opts(NNE_QSCHEME_PER_CHANNEL);
    CHECK_OK(nne_lcodec_quantize(h, &o));
    o.q.output_hi = 1.0f;
    CHECK_OK(nne_lcodec_quantize(g, &o));
    if (g->n_attached != 2 || h->n_attached != 2) goto done;
    const nne_graph *ga = g->attached[0], *gs = g->attached[1];
    const nne_quant *ua = &ga->tensors[ga->outputs[0]].quant,
                    *us = &gs->tensors[gs->outputs[0]].quant,
                    *va = &h->attached[0]->tensors[h->attached[0]->outputs[0]].quant;
    CHECK(us->count == 1 && us->scale[0] == 1.0f / 255 && us->zero_point[0] == -128);
    CHECK(ua->count == 1 && va->count == 1 && ua->scale[0] == va->scale[0] &&
          ua->zero_point[0] == va->zero_point[0]);
    CHECK(!nne_graph_get_meta(ga, "quant.output_range"));
    const char *m = nne_graph_get_meta(gs, "quant.output_range");
    CHECK(m && !strcmp(m, "0 1"));
    nne_image img = {0};
    if (make_image(&img, 64, 64, 1)) {
        const double p = int8_psnr(g, &img), p0 = int8_psnr(h, &img);
        printf("  output range [0, 1]: %.3f dB, calibrated: %.3f dB\n", p, p0);
        CHECK_MSG(p > 0.0 && fabs(p - p0) < 1.0, "%.3f vs %.3f dB", p, p0);
    }
    nne_image_free(&img);
done:
    nne_graph_free(g);
    nne_graph_free(h);
}

int main(void) {
    NNE_RUN(test_round_trip);
    NNE_RUN(test_isa_independent);
    NNE_RUN(test_malformed);
    NNE_RUN(test_output_range);
    return nne_test_summary();
}
