/* The CAE pipeline and weight rebinding: nne_model_copy_weights, the weight hash, encode and
 * decode at sizes other than the training size, agreement of encoder + decoder with the full
 * autoencoder, and the errors (small images, wrong model, wrong shape). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/sha256.h"
#include "nnedge/backend.h"
#include "nnedge/codec.h"
#include "nnedge/models.h"
#include "testutil.h"

/* Deterministic weights of a sensible scale (uniform, variance 1 / fan_in) so activations
 * neither vanish nor explode; PReLU slopes stay 0.25. */
static void randomize(nne_graph *g, unsigned seed) {
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || strstr(t->name, "slope")) continue;
        const size_t n = nne_tensor_nbytes(t) / 4;
        const double fan_in = t->shape.ndim == 4
                                  ? (double)(t->shape.dim[1] * t->shape.dim[2] * t->shape.dim[3])
                                  : 1.0;
        const double a = t->shape.ndim == 4 ? sqrt(3.0 / fan_in) : 0.02;
        float *v = t->data;
        for (size_t k = 0; k < n; k++) v[k] = (float)(a * (2 * nne_test_rng_uniform(&r) - 1));
    }
}

static nne_graph *trained(int32_t h, int32_t w, unsigned seed) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(h, w, NNE_CAE_FULL, &g));
    if (g) randomize(g, seed);
    return g;
}

static void make_image(nne_image *img, int32_t w, int32_t h, unsigned seed) {
    CHECK_OK(nne_image_alloc(img, w, h, 3));
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    for (int32_t y = 0; y < h; y++)
        for (int32_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                img->data[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)(128 + 100 * sin(0.1 * x + 0.07 * y + c) +
                              10 * (nne_test_rng_uniform(&r) - 0.5));
}

static void test_sha256(void) {
    uint8_t d[32];
    char hex[65];
    nne_sha256 c;
    nne_sha256_init(&c);
    nne_sha256_update(&c, "abc", 3);
    nne_sha256_final(&c, d);
    CHECK(strcmp(nne_latent_hash_hex(d, hex),
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
}

static void test_copy_weights(void) {
    nne_graph *src = trained(64, 80, 1), *enc = NULL, *full = NULL;
    CHECK_OK(nne_model_cae_seed(100, 37, NNE_CAE_ENCODER, &enc));
    CHECK_OK(nne_model_cae_seed(30, 30, NNE_CAE_FULL, &full));
    if (!src || !enc || !full) goto done;
    CHECK_OK(nne_model_copy_weights(enc, src));
    int consts = 0;
    for (int32_t i = 0; i < enc->n_tensors; i++) {
        const nne_tensor *t = &enc->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT) continue;
        const nne_tensor *s = &src->tensors[nne_graph_find_tensor(src, t->name)];
        CHECK_MSG(memcmp(t->data, s->data, nne_tensor_nbytes(t)) == 0, "%s", t->name);
        consts++;
    }
    CHECK(consts == 14); /* 5 layers x (weight, bias) + 4 PReLU slopes */
    /* The encoder lacks the decoder's weights: nothing is copied, the error names one. */
    const int32_t w1 = nne_graph_find_tensor(full, "conv2d_1.weight");
    const float before = ((const float *)full->tensors[w1].data)[0];
    CHECK_STATUS(nne_model_copy_weights(full, enc), NNE_ERR_NOT_FOUND);
    CHECK(strstr(nne_last_error(), "conv2d_transpose_") != NULL);
    CHECK(((const float *)full->tensors[w1].data)[0] == before);
    /* A constant of another shape. */
    nne_graph *odd = NULL;
    CHECK_OK(nne_graph_create("odd", &odd));
    int32_t idx;
    CHECK_OK(nne_graph_add_constant(odd, "conv2d_1.weight", NNE_F32, nne_shape_4d(32, 5, 5, 3),
                                    NULL, &idx));
    nne_graph *small = NULL;
    CHECK_OK(nne_graph_create("small", &small));
    CHECK_OK(nne_graph_add_constant(small, "conv2d_1.weight", NNE_F32, nne_shape_4d(32, 3, 3, 3),
                                    NULL, &idx));
    CHECK_STATUS(nne_model_copy_weights(small, odd), NNE_ERR_SHAPE);
    CHECK(strstr(nne_last_error(), "conv2d_1.weight") != NULL);
    nne_graph_free(odd);
    nne_graph_free(small);
    /* Rebinding keeps a graph runnable: inference and plan are still valid. */
    CHECK_OK(nne_graph_infer(enc));
done:
    nne_graph_free(src);
    nne_graph_free(enc);
    nne_graph_free(full);
}

static void test_latent_shape(void) {
    int32_t h, w, c;
    CHECK_OK(nne_cae_latent_shape(512, 768, &h, &w, &c));
    CHECK(h == 62 && w == 94 && c == 32);
    /* 0.6324, not the paper's 0.6356 (docs/models.md). */
    CHECK_NEAR((double)h * w * c * 4 / (512.0 * 768 * 3), 0.6324, 5e-5);
    CHECK_OK(nne_cae_latent_shape(768, 512, &h, &w, &c));
    CHECK(h == 94 && w == 62);
    CHECK_OK(nne_cae_latent_shape(21, 21, &h, &w, &c));
    CHECK(h == 1 && w == 1);
    CHECK_STATUS(nne_cae_latent_shape(20, 500, &h, &w, &c), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "21x21") != NULL);
    CHECK_STATUS(nne_cae_latent_shape(70000, 500, &h, &w, &c), NNE_ERR_INVALID_ARG);
    /* It agrees with the graph for a spread of sizes. */
    for (int32_t s = 21; s < 120; s += 7) {
        nne_graph *g;
        CHECK_OK(nne_model_cae_seed(s, s + 3, NNE_CAE_ENCODER, &g));
        if (!g) continue;
        CHECK_OK(nne_cae_latent_shape(s, s + 3, &h, &w, &c));
        const nne_shape *o = &g->tensors[g->outputs[0]].shape;
        CHECK_MSG(o->dim[1] == h && o->dim[2] == w && o->dim[3] == c, "%d", (int)s);
        nne_graph_free(g);
    }
}

/* Encoder then decoder through the codec equals the full autoencoder run in one session at
 * the coded size (the image padded to a multiple of 8 by edge replication), its border filled
 * (nne_cae_seed_fill_border) and cropped back, for sizes unlike the training size: 40x24 needs
 * no padding, the others 1-7 rows or columns; and a latent written without padding (before
 * it existed) still decodes, at its own size. */
static void test_pipeline_matches_full(void) {
    nne_graph *model = trained(48, 48, 2);
    nne_cae_codec *codec = NULL;
    if (!model) return;
    CHECK_OK(nne_cae_codec_create(model, &codec));
    static const int32_t sizes[][2] = {{21, 21}, {37, 22}, {65, 33}, {40, 24}, {40, 57}, {37, 22}};
    for (size_t k = 0; codec && k < sizeof sizes / sizeof sizes[0]; k++) {
        const int32_t w = sizes[k][0], h = sizes[k][1];
        const int32_t ph = nne_cae_coded_size(h), pw = nne_cae_coded_size(w);
        CHECK(ph % 8 == 0 && pw % 8 == 0 && ph >= h && ph < h + 8 && pw >= w && pw < w + 8);
        nne_image img, rec;
        make_image(&img, w, h, (unsigned)k + 10);
        nne_latent lat;
        CHECK_OK(nne_cae_encode(codec, &img, &lat));
        int32_t lh, lw, lc;
        CHECK_OK(nne_cae_latent_shape(ph, pw, &lh, &lw, &lc));
        CHECK(lat.height == lh && lat.width == lw && lat.channels == lc);
        CHECK(lat.image_width == w && lat.image_height == h);
        CHECK(lat.pad[0] == 0 && lat.pad[1] == 0 && lat.pad[2] == ph - h && lat.pad[3] == pw - w);
        CHECK(strcmp(lat.model_id, "cae-seed") == 0);
        CHECK(memcmp(lat.model_hash, nne_cae_codec_hash(codec), 32) == 0);
        CHECK_OK(nne_cae_decode(codec, &lat, &rec));
        CHECK(rec.width == w && rec.height == h && rec.channels == 3);

        /* Reference: the full graph at the coded size with the same weights. */
        nne_graph *full = NULL;
        nne_session *s = NULL;
        CHECK_OK(nne_model_cae_seed(ph, pw, NNE_CAE_FULL, &full));
        CHECK_OK(nne_model_copy_weights(full, model));
        CHECK_OK(nne_session_create(full, nne_backend_cpu_ref(), &s));
        float *y = s && rec.data ? malloc((size_t)pw * ph * 3 * sizeof *y) : NULL;
        if (y) {
            float *x = nne_session_input(s, 0);
            for (int32_t yy = 0; yy < ph; yy++)
                for (int32_t xx = 0; xx < pw; xx++)
                    for (int c = 0; c < 3; c++)
                        x[((size_t)yy * pw + xx) * 3 + c] =
                            img.data[((size_t)(yy < h ? yy : h - 1) * w + (xx < w ? xx : w - 1)) *
                                         3 +
                                     c] /
                            255.0f;
            CHECK_OK(nne_session_run(s));
            /* ... with the decoder's border filled (docs/models.md, "The border") */
            memcpy(y, nne_session_output(s, 0), (size_t)pw * ph * 3 * sizeof *y);
            nne_cae_seed_fill_border(y, 1, ph, pw, 3);
            int diff = 0;
            for (int32_t yy = 0; yy < h; yy++)
                for (int32_t xx = 0; xx < w; xx++)
                    for (int c = 0; c < 3; c++) {
                        const float u = y[((size_t)yy * pw + xx) * 3 + c];
                        const float v = u < 0 ? 0 : u > 1 ? 1 : u;
                        diff += rec.data[((size_t)yy * w + xx) * 3 + c] !=
                                (uint8_t)(v * 255.0f + 0.5f);
                    }
            CHECK_MSG(diff == 0, "%dx%d: %d samples differ", (int)w, (int)h, diff);
            if (ph == h) /* no padding: the codec's last row copies the row before the border */
                CHECK(memcmp(rec.data + (size_t)(h - 1) * w * 3,
                             rec.data + (size_t)(h - 4) * w * 3, (size_t)w * 3) == 0);
        }
        free(y);
        nne_session_free(s);
        nne_graph_free(full);
        nne_image_free(&rec);
        nne_latent_free(&lat);
        nne_image_free(&img);
    }
    /* A latent without padding (as written before padding existed) decodes at its own size. */
    if (codec) {
        nne_image img, rec;
        make_image(&img, 37, 22, 99);
        nne_latent lat;
        int32_t lh, lw, lc;
        CHECK_OK(nne_cae_latent_shape(22, 37, &lh, &lw, &lc));
        memset(&lat, 0, sizeof lat);
        snprintf(lat.model_id, sizeof lat.model_id, "cae-seed");
        memcpy(lat.model_hash, nne_cae_codec_hash(codec), 32);
        lat.image_width = 37, lat.image_height = 22;
        lat.height = lh, lat.width = lw, lat.channels = lc;
        lat.data = nne_calloc((size_t)lh * lw * lc, sizeof(float));
        CHECK_OK(nne_cae_decode(codec, &lat, &rec));
        CHECK(rec.width == 37 && rec.height == 22);
        nne_image_free(&rec);
        nne_latent_free(&lat);
        nne_image_free(&img);
    }
    nne_cae_codec_free(codec);
    nne_graph_free(model);
}

/* The padding helpers the whole-model paths share (nnedge eval on int8, quantize --eval):
 * the input replicates the last row and column; the output crop is the border fill followed
 * by the top-left crop. */
static void test_pad_helpers(void) {
    nne_image img;
    make_image(&img, 13, 24, 5); /* 24 rows: the border rows are kept */
    const int32_t ph = nne_cae_coded_size(24), pw = nne_cae_coded_size(13);
    CHECK(ph == 24 && pw == 24); /* at least the smallest coded size */
    CHECK(nne_cae_coded_size(512) == 512 && nne_cae_coded_size(513) == 520);
    float *x = malloc((size_t)ph * pw * 3 * sizeof *x), *y = malloc((size_t)ph * pw * 3 * sizeof *y);
    float *want = malloc((size_t)ph * pw * 3 * sizeof *want);
    if (img.data && x && y && want) {
        nne_cae_input_padded(&img, ph, pw, x);
        int bad = 0;
        for (int32_t r = 0; r < ph; r++)
            for (int32_t c = 0; c < pw; c++)
                for (int k = 0; k < 3; k++)
                    bad += x[((size_t)r * pw + c) * 3 + k] !=
                           img.data[((size_t)(r < 24 ? r : 23) * 13 + (c < 13 ? c : 12)) * 3 + k] /
                               255.0f;
        CHECK(bad == 0);
        for (size_t i = 0; i < (size_t)ph * pw * 3; i++) y[i] = (float)i, want[i] = (float)i;
        nne_cae_seed_fill_border(want, 1, ph, pw, 3);
        nne_cae_output_crop(y, ph, pw, 24, 13);
        bad = 0;
        for (int32_t r = 0; r < 24; r++)
            bad += memcmp(y + (size_t)r * 13 * 3, want + (size_t)r * pw * 3, 13 * 3 * sizeof *y) != 0;
        CHECK(bad == 0);
        CHECK(y[(23 * 13 + 5) * 3] == y[(20 * 13 + 5) * 3]); /* a filled row */
    }
    free(x), free(y), free(want);
    nne_image_free(&img);
}

static void test_hash(void) {
    nne_graph *a = trained(32, 32, 3), *b = trained(64, 21, 3), *c = trained(32, 32, 4);
    nne_cae_codec *ca = NULL, *cb = NULL, *cc = NULL;
    if (!a || !b || !c) goto done;
    CHECK_OK(nne_cae_codec_create(a, &ca));
    CHECK_OK(nne_cae_codec_create(b, &cb));
    CHECK_OK(nne_cae_codec_create(c, &cc));
    if (!ca || !cb || !cc) goto done;
    /* Same weights at another size: same hash. Other weights: another hash. */
    CHECK(memcmp(nne_cae_codec_hash(ca), nne_cae_codec_hash(cb), 32) == 0);
    CHECK(memcmp(nne_cae_codec_hash(ca), nne_cae_codec_hash(cc), 32) != 0);
    /* One changed bit changes it. */
    nne_cae_codec *cd = NULL;
    float *v = a->tensors[nne_graph_find_tensor(a, "conv2d_transpose_5.bias")].data;
    uint32_t bits;
    memcpy(&bits, &v[2], 4);
    bits ^= 1;
    memcpy(&v[2], &bits, 4);
    CHECK_OK(nne_cae_codec_create(a, &cd));
    if (cd) CHECK(memcmp(nne_cae_codec_hash(ca), nne_cae_codec_hash(cd), 32) != 0);
    nne_cae_codec_free(cd);
done:
    nne_cae_codec_free(ca);
    nne_cae_codec_free(cb);
    nne_cae_codec_free(cc);
    nne_graph_free(a);
    nne_graph_free(b);
    nne_graph_free(c);
}

static void test_errors(void) {
    nne_graph *m = trained(32, 32, 5), *m2 = trained(32, 32, 6);
    nne_cae_codec *codec = NULL, *other = NULL;
    if (!m || !m2) goto done;
    CHECK_OK(nne_cae_codec_create(m, &codec));
    CHECK_OK(nne_cae_codec_create(m2, &other));
    if (!codec || !other) goto done;
    nne_image img = {0}, rec = {0};
    nne_latent lat = {0};
    /* Too small, and not RGB. */
    make_image(&img, 20, 40, 1);
    CHECK_STATUS(nne_cae_encode(codec, &img, &lat), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "smaller than 21x21") != NULL);
    nne_image_free(&img);
    CHECK_OK(nne_image_alloc(&img, 30, 30, 1));
    CHECK_STATUS(nne_cae_encode(codec, &img, &lat), NNE_ERR_INVALID_ARG);
    nne_image_free(&img);

    make_image(&img, 33, 29, 2);
    CHECK_OK(nne_cae_encode(codec, &img, &lat));
    /* Another model's weights: a clear error with both hashes. */
    CHECK_STATUS(nne_cae_decode(other, &lat, &rec), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "wrong model") != NULL);
    CHECK(rec.data == NULL);
    /* A flipped hash byte, another model id. */
    lat.model_hash[31] ^= 1;
    CHECK_STATUS(nne_cae_decode(codec, &lat, &rec), NNE_ERR_INVALID_ARG);
    lat.model_hash[31] ^= 1;
    snprintf(lat.model_id, sizeof lat.model_id, "hyperprior");
    CHECK_STATUS(nne_cae_decode(codec, &lat, &rec), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "hyperprior") != NULL);
    snprintf(lat.model_id, sizeof lat.model_id, "cae-seed");
    /* A latent shape that the image size does not give. */
    lat.image_width += 8;
    CHECK_STATUS(nne_cae_decode(codec, &lat, &rec), NNE_ERR_FORMAT);
    lat.image_width -= 8;
    lat.image_height = 10;
    CHECK_STATUS(nne_cae_decode(codec, &lat, &rec), NNE_ERR_FORMAT);
    lat.image_height = 29;
    CHECK_OK(nne_cae_decode(codec, &lat, &rec));
    nne_image_free(&rec);
    /* Through the container: what is written decodes identically. */
    uint8_t *buf;
    size_t n;
    nne_latent back;
    nne_image rec2 = {0};
    CHECK_OK(nne_latent_write_mem(&lat, NNE_LATENT_ZSTD, 3, &buf, &n));
    CHECK_OK(nne_latent_read_mem(buf, n, &back, NULL));
    CHECK_OK(nne_cae_decode(codec, &lat, &rec));
    CHECK_OK(nne_cae_decode(codec, &back, &rec2));
    CHECK(rec.data && rec2.data && memcmp(rec.data, rec2.data, 33 * 29 * 3) == 0);
    nne_free(buf);
    nne_latent_free(&back);
    nne_image_free(&rec);
    nne_image_free(&rec2);
    nne_latent_free(&lat);
    nne_image_free(&img);

    /* Models the codec refuses: another architecture, missing weights, non-finite weights. */
    nne_cae_codec *bad = NULL;
    CHECK_OK(nne_graph_set_meta(m2, "model", "resnet"));
    CHECK_STATUS(nne_cae_codec_create(m2, &bad), NNE_ERR_UNSUPPORTED);
    nne_graph *enc = NULL;
    CHECK_OK(nne_model_cae_seed(32, 32, NNE_CAE_ENCODER, &enc));
    CHECK_STATUS(nne_cae_codec_create(enc, &bad), NNE_ERR_NOT_FOUND);
    nne_graph_free(enc);
    float *v = m->tensors[nne_graph_find_tensor(m, "conv2d_3.bias")].data;
    v[1] = INFINITY;
    CHECK_STATUS(nne_cae_codec_create(m, &bad), NNE_ERR_FORMAT);
    CHECK(bad == NULL);
done:
    nne_cae_codec_free(codec);
    nne_cae_codec_free(other);
    nne_graph_free(m);
    nne_graph_free(m2);
}

int main(void) {
    NNE_RUN(test_sha256);
    NNE_RUN(test_copy_weights);
    NNE_RUN(test_latent_shape);
    NNE_RUN(test_pipeline_matches_full);
    NNE_RUN(test_pad_helpers);
    NNE_RUN(test_hash);
    NNE_RUN(test_errors);
    return nne_test_summary();
}
