/* The learned codec (include/nnedge/lcodec.h, docs/codec.md) with tiny models trained inside
 * the test (tests/tiny_lcodec.h) for each kind: the decoder reproduces the encoder's symbols
 * and y_hat bit for bit; the decoded PSNR is the one the encoder predicted; stream sizes are
 * within a few % of the model's -log2 P; every image size works (1x1, odd, not multiples of
 * the alignment); damaged containers fail cleanly; ISA overrides give identical pixels; the
 * factorized tables cover the density; the simple API round-trips through a model file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tiny_lcodec.h"
#include "codec/bitstream_internal.h"
#include "codec/lcodec_internal.h"
#include "nnedge/bitstream.h"
#include "nnedge/gemm.h"
#include "nnedge/lcodec.h"
#include "nnedge/metrics.h"
#include "nnedge/model_file.h"
#include "testutil.h"

static nne_lcodec *g_codec[3];
static nne_graph *g_model[3];

static nne_lcodec *codec(int kind) {
    if (!g_codec[kind]) {
        CHECK_OK(
            nne_tiny_lcodec_model((nne_rdmodel_kind)kind, 11 + (uint64_t)kind, &g_model[kind]));
        if (!g_model[kind]) return NULL;
        /* Through a model file, as the CLI loads it. */
        uint8_t *buf = NULL;
        size_t n = 0;
        nne_graph *back = NULL;
        CHECK_OK(nne_model_write_mem(g_model[kind], &buf, &n));
        CHECK_OK(nne_model_read_mem(buf, n, &back));
        nne_free(buf);
        if (back) CHECK_OK(nne_lcodec_create(back, 3, &g_codec[kind]));
        nne_graph_free(back);
    }
    return g_codec[kind];
}

static bool make_image(nne_image *img, int32_t w, int32_t h, int32_t phase) {
    return nne_tiny_image(img, w, h, phase) == NNE_OK;
}

static double psnr(const nne_image *a, const nne_image *b) { return nne_tiny_psnr(a, b); }

/* Round trip: symbols, y_hat, PSNR prediction, sizes against the estimate. */
static void test_round_trip(void) {
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++) {
        nne_lcodec *c = codec(kind);
        if (!c) return;
        nne_image img = {0}, out = {0};
        CHECK(make_image(&img, 200, 136, 3));
        uint8_t *buf = NULL;
        size_t n = 0;
        nne_lcodec_stats st;
        CHECK_OK(nne_lcodec_encode(c, &img, true, &buf, &n, &st));
        const nne_lcodec_symbols *ls = nne_lcodec_last_symbols(c);
        const size_t ny = ls->ny, nz = ls->nz;
        int32_t *y = malloc(ny * 4), *z = malloc((nz + 1) * 4);
        float *yh = malloc(ny * 4);
        memcpy(y, ls->y, ny * 4), memcpy(z, ls->z, nz * 4), memcpy(yh, ls->y_hat, ny * 4);
        CHECK(ny == (size_t)st.y_shape[0] * st.y_shape[1] * st.y_shape[2]);
        CHECK(nz == (size_t)st.z_shape[0] * st.z_shape[1] * st.z_shape[2]);
        /* 200x136 pads to 256x192 (hyperpriors, align 64) or 208x144 (align 16). */
        CHECK(st.y_shape[0] == (kind ? 12 : 9) && st.y_shape[1] == (kind ? 16 : 13));
        CHECK_OK(nne_lcodec_decode(c, buf, n, &out));
        CHECK(out.width == 200 && out.height == 136 && out.channels == 3);
        ls = nne_lcodec_last_symbols(c);
        CHECK(ls->ny == ny && ls->nz == nz);
        CHECK(memcmp(ls->y, y, ny * 4) == 0);
        CHECK(nz == 0 || memcmp(ls->z, z, nz * 4) == 0);
        CHECK(memcmp(ls->y_hat, yh, ny * 4) == 0); /* bit for bit, means included */
        const double p = psnr(&img, &out);
        CHECK_MSG(p == st.psnr, "decoded PSNR %.6f, encoder predicted %.6f", p, st.psnr);
        /* Real bits against the ideal code length under the tables: the coder adds the 8
         * state bytes and up to 2 bytes of rounding per stream. */
        const double yb = 8.0 * (double)st.y_bytes, zb = 8.0 * (double)st.z_bytes;
        size_t nonzero = 0;
        for (size_t i = 0; i < ny; i++) nonzero += y[i] != 0;
        printf("  %s: %zu y symbols (%zu nonzero), y %zu bytes (tables %.1f, model %.1f), "
               "z %zu bytes (tables %.1f, model %.1f), file %zu bytes, %.4f bpp, PSNR %.2f dB\n",
               nne_rdmodel_kind_name((nne_rdmodel_kind)kind), ny, nonzero, st.y_bytes,
               st.y_bits_table / 8, st.y_bits_est / 8, st.z_bytes, st.z_bits_table / 8,
               st.z_bits_est / 8, st.file_bytes, st.bpp, p);
        CHECK_MSG(yb >= st.y_bits_table && yb <= 1.005 * st.y_bits_table + 80,
                  "y: %.0f bits, tables %.1f", yb, st.y_bits_table);
        if (kind)
            CHECK_MSG(zb >= st.z_bits_table && zb <= 1.005 * st.z_bits_table + 80,
                      "z: %.0f bits, tables %.1f", zb, st.z_bits_table);
        /* Against the model's -log2 P: within a few % where the symbols stay inside the
         * tables; this barely trained hyperprior puts some y far outside its predicted scales
         * (escapes cost less than the floored density says), hence the wider bound there. */
        const double tol = kind == NNE_RD_HYPERPRIOR ? 0.10 : 0.03;
        CHECK_MSG(fabs(yb - st.y_bits_est) <= tol * st.y_bits_est + 80, "y: %.0f bits, model %.1f",
                  yb, st.y_bits_est);
        if (kind)
            CHECK_MSG(fabs(zb - st.z_bits_est) <= 0.1 * st.z_bits_est + 80,
                      "z: %.0f bits, model %.1f", zb, st.z_bits_est);
        CHECK(st.file_bytes == n);
        CHECK(p > 5.0); /* trained for 20 steps: far from good */
        /* Deterministic bytes. */
        uint8_t *buf2 = NULL;
        size_t n2 = 0;
        CHECK_OK(nne_lcodec_encode(c, &img, false, &buf2, &n2, NULL));
        CHECK(n2 == n && buf2 && memcmp(buf, buf2, n) == 0);
        nne_free(buf2);
        free(y), free(z), free(yh);
        nne_free(buf);
        nne_image_free(&img);
        nne_image_free(&out);
    }
}

/* Latent refinement (nne_lcodec_set_refine): needs a lambda when the model has none; lowers
 * the estimated loss of g_a's latents; the refined stream decodes to the pixels the encoder
 * predicted; the bytes do not depend on the thread count; turning it off gives the plain
 * encoder's bytes again. */
static void test_refine(void) {
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++) {
        nne_lcodec *c = codec(kind);
        if (!c) return;
        nne_image img = {0}, out = {0};
        CHECK(make_image(&img, 200, 136, 3));
        uint8_t *plain = NULL, *buf[2] = {NULL, NULL};
        size_t np = 0, n[2] = {0, 0};
        nne_lcodec_stats st, st2;
        CHECK_OK(nne_lcodec_encode(c, &img, false, &plain, &np, &st));
        CHECK(st.refine_iterations == 0 && st.refine_loss[0] == 0 && st.refine_loss[1] == 0);
        nne_lcodec_refine_opts o = {8, 0.05f, 0.0f, 1};
        /* The tiny models carry no train.lambda. */
        CHECK_STATUS(nne_lcodec_set_refine(c, &o), NNE_ERR_INVALID_ARG);
        nne_lcodec_refine_opts bad = {-1, 0.0f, 0.01f, 1};
        CHECK_STATUS(nne_lcodec_set_refine(c, &bad), NNE_ERR_INVALID_ARG);
        bad.iterations = 4, bad.lr = -1.0f;
        CHECK_STATUS(nne_lcodec_set_refine(c, &bad), NNE_ERR_INVALID_ARG);
        o.lambda = 0.01f; /* the tiny models' training lambda */
        CHECK_OK(nne_lcodec_set_refine(c, &o));
        CHECK_OK(nne_lcodec_encode(c, &img, true, &buf[0], &n[0], &st));
        printf("  %s: refinement %d steps: estimated loss %.5f -> %.5f, %zu -> %zu bytes\n",
               nne_rdmodel_kind_name((nne_rdmodel_kind)kind), (int)st.refine_iterations,
               st.refine_loss[0], st.refine_loss[1], np, n[0]);
        CHECK(st.refine_iterations == 8);
        CHECK_MSG(st.refine_loss[0] > 0 && st.refine_loss[1] < st.refine_loss[0],
                  "loss %.6f -> %.6f", st.refine_loss[0], st.refine_loss[1]);
        CHECK(n[0] != np || memcmp(buf[0], plain, np) != 0); /* other latents */
        CHECK_OK(nne_lcodec_decode(c, buf[0], n[0], &out));
        CHECK_MSG(psnr(&img, &out) == st.psnr, "decoded %.6f, predicted %.6f", psnr(&img, &out),
                  st.psnr);
        o.threads = 2;
        CHECK_OK(nne_lcodec_set_refine(c, &o));
        CHECK_OK(nne_lcodec_encode(c, &img, false, &buf[1], &n[1], &st2));
        CHECK(n[1] == n[0] && buf[1] && memcmp(buf[0], buf[1], n[0]) == 0);
        CHECK(st2.refine_loss[1] == st.refine_loss[1]);
        nne_free(buf[1]);
        CHECK_OK(nne_lcodec_set_refine(c, NULL));
        CHECK_OK(nne_lcodec_encode(c, &img, false, &buf[1], &n[1], NULL));
        CHECK(n[1] == np && memcmp(buf[1], plain, np) == 0);
        nne_free(buf[0]), nne_free(buf[1]), nne_free(plain);
        nne_image_free(&img);
        nne_image_free(&out);
    }
}

/* Any size: 1x1, odd sizes, exact multiples, sizes above one multiple. */
static void test_sizes(void) {
    static const int32_t sz[][2] = {{1, 1}, {1, 65}, {67, 3}, {64, 64}, {17, 16}, {130, 67}};
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++) {
        nne_lcodec *c = codec(kind);
        if (!c) return;
        for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
            nne_image img = {0}, out = {0};
            CHECK(make_image(&img, sz[k][0], sz[k][1], (int32_t)k));
            uint8_t *buf = NULL;
            size_t n = 0;
            nne_lcodec_stats st;
            CHECK_OK(nne_lcodec_encode(c, &img, true, &buf, &n, &st));
            CHECK_OK(nne_lcodec_decode(c, buf, n, &out));
            CHECK_MSG(out.width == sz[k][0] && out.height == sz[k][1], "%dx%d -> %dx%d",
                      (int)sz[k][0], (int)sz[k][1], (int)out.width, (int)out.height);
            if (out.data) CHECK(psnr(&img, &out) == st.psnr);
            nne_free(buf);
            nne_image_free(&img);
            nne_image_free(&out);
        }
    }
}

/* Truncations, bit flips (CRC), stream corruption behind recomputed CRCs, wrong models. */
static void test_corruption(void) {
    nne_lcodec *c = codec(NNE_RD_MEAN_SCALE), *f = codec(NNE_RD_FACTORIZED);
    nne_lcodec *h = codec(NNE_RD_HYPERPRIOR);
    if (!c || !f || !h) return;
    nne_image img = {0}, out = {0};
    CHECK(make_image(&img, 70, 50, 1));
    uint8_t *buf = NULL;
    size_t n = 0;
    CHECK_OK(nne_lcodec_encode(c, &img, false, &buf, &n, NULL));
    if (!buf) return;
    for (size_t k = 0; k < n; k++) {
        const nne_status s = nne_lcodec_decode(c, buf, k, &out);
        CHECK_MSG(s == NNE_ERR_FORMAT, "truncated to %zu of %zu: %s", k, n, nne_status_str(s));
        CHECK(out.data == NULL);
    }
    uint8_t *m = malloc(n);
    for (size_t k = 0; k < n; k++) {
        memcpy(m, buf, n);
        m[k] ^= (uint8_t)(1u << (k % 8));
        const nne_status s = nne_lcodec_decode(c, m, n, &out);
        CHECK_MSG(s != NNE_OK, "bit flip at %zu accepted", k);
        nne_image_free(&out);
    }
    /* Corrupt the streams and fix the CRCs: the rANS decoder must fail cleanly or decode
     * some image, never crash (ASan build). */
    nne_test_rng r;
    nne_test_rng_seed(&r, 9);
    const size_t hdr = NNE_NNC_HEADER_SIZE(2);
    int refused = 0;
    for (int t = 0; t < 200; t++) {
        memcpy(m, buf, n);
        const int flips = nne_test_rng_int(&r, 1, 3);
        for (int k = 0; k < flips; k++)
            m[hdr + (size_t)nne_test_rng_int(&r, 0, (int)(n - hdr - 1))] ^=
                (uint8_t)(1u << nne_test_rng_int(&r, 0, 7));
        nne_nnc_fix_checksums(m, n);
        const nne_status s = nne_lcodec_decode(c, m, n, &out);
        CHECK(s == NNE_OK || s == NNE_ERR_FORMAT);
        if (s == NNE_OK) CHECK(out.width == 70 && out.height == 50);
        refused += s != NNE_OK;
        nne_image_free(&out);
    }
    printf("  200 stream corruptions behind valid CRCs: %d refused, the rest decoded\n", refused);
    /* Another kind, or the same kind with other weights. */
    CHECK_STATUS(nne_lcodec_decode(f, buf, n, &out), NNE_ERR_INVALID_ARG);
    nne_graph *other = NULL;
    nne_lcodec *c2 = NULL;
    CHECK_OK(nne_tiny_lcodec_model(NNE_RD_MEAN_SCALE, 99, &other));
    if (other) CHECK_OK(nne_lcodec_create(other, 3, &c2));
    if (c2) {
        CHECK_STATUS(nne_lcodec_decode(c2, buf, n, &out), NNE_ERR_INVALID_ARG);
        CHECK(strstr(nne_last_error(), "wrong model") != NULL);
    }
    nne_lcodec_free(c2);
    nne_graph_free(other);
    /* The decoder's work limit. */
    nne_lcodec_set_max_pixels(c, 64 * 64);
    CHECK_STATUS(nne_lcodec_decode(c, buf, n, &out), NNE_ERR_LIMIT);
    nne_lcodec_set_max_pixels(c, NNE_IMAGE_MAX_PIXELS);
    CHECK_OK(nne_lcodec_decode(c, buf, n, &out));
    nne_image_free(&out);
    /* Not a learned-codec model. */
    nne_graph *cae = NULL;
    nne_lcodec *bad = NULL;
    CHECK_OK(nne_model_cae_seed(64, 64, NNE_CAE_FULL, &cae));
    if (cae) CHECK_STATUS(nne_lcodec_create(cae, 0, &bad), NNE_ERR_UNSUPPORTED);
    nne_graph_free(cae);
    free(m);
    nne_free(buf);
    nne_image_free(&img);
}

/* The decode does not depend on the GEMM ISA (the codec runs the reference kernels). */
static void test_isa_independent(void) {
    nne_lcodec *c = codec(NNE_RD_MEAN_SCALE);
    if (!c) return;
    nne_image img = {0}, a = {0}, b = {0};
    CHECK(make_image(&img, 90, 70, 5));
    uint8_t *buf = NULL;
    size_t n = 0;
    CHECK_OK(nne_lcodec_encode(c, &img, false, &buf, &n, NULL));
    CHECK_OK(nne_ops_set_isa("ref"));
    CHECK_OK(nne_lcodec_decode(c, buf, n, &a));
    const char *best = nne_ops_isa_supported("avx2") ? "avx2" : "ref";
    CHECK_OK(nne_ops_set_isa(best));
    CHECK_OK(nne_lcodec_decode(c, buf, n, &b));
    CHECK(a.data && b.data && memcmp(a.data, b.data, (size_t)90 * 70 * 3) == 0);
    nne_ops_set_isa(NULL);
    nne_free(buf);
    nne_image_free(&img), nne_image_free(&a), nne_image_free(&b);
}

/* Factorized tables: valid, and the range holds all but the tail mass of each channel. */
static void test_tables(void) {
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++) {
        nne_lcodec *c = codec(kind);
        if (!c) return;
        const nne_cdf_set *t = nne_lcodec_factorized_tables(c);
        CHECK_OK(nne_cdf_set_validate(t));
        CHECK(t->n_tables == (kind == NNE_RD_FACTORIZED ? NNE_TINY_M : NNE_TINY_N));
        CHECK(t->precision == 16);
        const int32_t pi = nne_graph_find_tensor(g_model[kind], "entropy_bottleneck.params");
        for (int32_t ch = 0; ch < t->n_tables; ch++) {
            const float *p = (const float *)g_model[kind]->tensors[pi].data + ch * NNE_FACT_PARAMS;
            const int32_t lo = t->offset[ch], hi = lo + t->length[ch] - 2;
            CHECK(lo >= -NNE_LCODEC_FACT_MAX_HALF && hi <= NNE_LCODEC_FACT_MAX_HALF && lo <= hi);
            /* Outside [lo, hi] each tail holds at most 5e-10 (float logit: allow 1e-7); the
             * next value inward already exceeds it, unless at the half-width limit. */
            const double below = 1 / (1 + exp(-nne_factorized_logit(p, (float)lo - 0.5f, NULL)));
            const double above = 1 / (1 + exp(nne_factorized_logit(p, (float)hi + 0.5f, NULL)));
            CHECK_MSG(below < 1e-7 && above < 1e-7, "channel %d: tails %g %g", (int)ch, below,
                      above);
            /* The escape's frequency stays at its floor when the tail is tiny. */
            const uint32_t *cdf = t->cdf + t->start[ch];
            CHECK(cdf[t->length[ch]] - cdf[t->length[ch] - 1] <= 2);
        }
    }
}

/* The simple API through a model file. */
static void test_simple_api(void) {
    if (!codec(NNE_RD_HYPERPRIOR)) return;
    char path[512];
    snprintf(path, sizeof path, "%s", nne_test_path(".", "build_test_lcodec_model.nne"));
    CHECK_OK(nne_model_write_file(g_model[NNE_RD_HYPERPRIOR], path));
    nne_image img = {0};
    CHECK(make_image(&img, 33, 21, 2));
    /* Rows with a gap, as a stride allows. */
    uint8_t *rgb = calloc((size_t)21 * 110, 1);
    for (int r = 0; r < 21; r++) memcpy(rgb + r * 110, img.data + r * 99, 99);
    uint8_t *nnc = NULL, *pix = NULL;
    size_t n = 0;
    int32_t w = 0, h = 0;
    CHECK_OK(nne_lcodec_encode_rgb(path, rgb, 33, 21, 110, &nnc, &n));
    CHECK_OK(nne_lcodec_decode_rgb(path, nnc, n, &pix, &w, &h));
    CHECK(w == 33 && h == 21 && pix);
    nne_image out = {33, 21, 3, pix};
    if (pix) CHECK(psnr(&img, &out) > 5.0);
    uint8_t *none = NULL, *none2 = NULL;
    size_t n2 = 0;
    CHECK_STATUS(nne_lcodec_encode_rgb(path, rgb, 33, 21, 98, &none, &n2), NNE_ERR_INVALID_ARG);
    CHECK(nne_lcodec_decode_rgb("/nonexistent/model.nne", nnc, n, &none2, &w, &h) != NNE_OK);
    CHECK(none == NULL && none2 == NULL);
    remove(path);
    nne_free(nnc);
    nne_free(out.data);
    free(rgb);
    nne_image_free(&img);
}

/* Seeds of fuzz/fuzz_nnc_decode.c (NNE_REGEN_GOLDEN=1): small images of each kind. */
static void test_fuzz_seeds(void) {
    if (!nne_test_regen()) return;
    static const int32_t sz[][2] = {{1, 1}, {70, 50}};
    for (int kind = 0; kind <= NNE_RD_MEAN_SCALE; kind++)
        for (int k = 0; k < 2; k++) {
            nne_lcodec *c = codec(kind);
            nne_image img = {0};
            uint8_t *buf = NULL;
            size_t n = 0;
            if (!c || !make_image(&img, sz[k][0], sz[k][1], k)) return;
            CHECK_OK(nne_lcodec_encode(c, &img, false, &buf, &n, NULL));
            char rel[128];
            snprintf(rel, sizeof rel, "fuzz/corpus/fuzz_nnc_decode/%s-%dx%d.nnc",
                     nne_rdmodel_kind_name((nne_rdmodel_kind)kind), (int)sz[k][0], (int)sz[k][1]);
            if (buf) nne_test_write_rel(rel, buf, n);
            nne_free(buf);
            nne_image_free(&img);
        }
}

int main(void) {
    NNE_RUN(test_round_trip);
    NNE_RUN(test_sizes);
    NNE_RUN(test_refine);
    NNE_RUN(test_corruption);
    NNE_RUN(test_isa_independent);
    NNE_RUN(test_tables);
    NNE_RUN(test_simple_api);
    NNE_RUN(test_fuzz_seeds);
    for (int k = 0; k < 3; k++) {
        nne_lcodec_free(g_codec[k]);
        nne_graph_free(g_model[k]);
    }
    return nne_test_summary();
}
