/* The image-codec table: every codec round-trips a small synthetic RGB image through real
 * bytes; quality rises and bytes shrink along its knob; the decoded size equals the input;
 * bad arguments and damaged streams fail with a status instead of crashing. */
#include <math.h>
#include <string.h>

#include "nnedge/imgcodec.h"
#include "nnedge/metrics.h"
#include "testutil.h"

/* 97x71 (odd sizes exercise partial blocks and chroma edges): smooth colour gradients, a
 * disc, a coarse checker and mild noise, so every codec has something to spend bits on. */
static nne_image synthetic(void) {
    nne_image img = {0};
    if (nne_image_alloc(&img, 97, 71, 3)) return img;
    nne_test_rng r;
    nne_test_rng_seed(&r, 7);
    for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++) {
            uint8_t *p = img.data + ((size_t)y * img.width + x) * 3;
            const double dx = x - 40.0, dy = y - 30.0;
            const bool disc = dx * dx + dy * dy < 400;
            const double n = 4 * (nne_test_rng_uniform(&r) - 0.5);
            double v[3] = {40 + 2.0 * x + n, 30 + 2.8 * y + n, disc ? 220 + n : 90 + x + n};
            if ((x / 24 + y / 24) % 2 && !disc) v[1] += 40;
            for (int k = 0; k < 3; k++) p[k] = (uint8_t)(v[k] < 0 ? 0 : v[k] > 255 ? 255 : v[k]);
        }
    return img;
}

/* Every codec this build has: five, or jpeg alone with -DNNE_CLASSICAL_CODECS=OFF (CMake
 * passes NNE_HAVE_CLASSICAL_CODECS to the tests as to the library). */
#ifdef NNE_HAVE_CLASSICAL_CODECS
enum { N_BUILT = 5 };
#else
enum { N_BUILT = 1 };
#endif

static void test_table(void) {
    CHECK(nne_imgcodec_count() == N_BUILT);
    const char *names[] = {"jpeg", "webp", "jp2", "avif", "jxl"};
    for (int i = 0; i < N_BUILT; i++) {
        const nne_imgcodec *c = nne_imgcodec_get(i);
        CHECK(c && strcmp(c->name, names[i]) == 0 && nne_imgcodec_find(names[i]) == c);
        CHECK(nne_imgcodec_known(names[i]));
        CHECK(c->direction == 1 || c->direction == -1);
        CHECK(c->n_sweep >= 6 && c->n_sweep <= NNE_IMGCODEC_MAX_SWEEP);
        for (int k = 0; k < c->n_sweep; k++) CHECK(c->sweep[k] >= c->q_min && c->sweep[k] <= c->q_max);
        /* sweeps run from low to high rate */
        for (int k = 1; k < c->n_sweep; k++)
            CHECK((c->sweep[k] - c->sweep[k - 1]) * c->direction > 0);
        char v[256];
        CHECK(strlen(c->version(c, v, sizeof v)) > 3);
    }
    /* The codecs left out at build time are known but not found. */
    for (int i = N_BUILT; i < 5; i++)
        CHECK(nne_imgcodec_find(names[i]) == NULL && nne_imgcodec_known(names[i]));
    CHECK(nne_imgcodec_get(N_BUILT) == NULL && nne_imgcodec_get(-1) == NULL);
    CHECK(nne_imgcodec_find("bpg") == NULL && nne_imgcodec_find(NULL) == NULL);
    CHECK(!nne_imgcodec_known("bpg") && !nne_imgcodec_known("JPEG") && !nne_imgcodec_known(NULL));
}

static void test_round_trip(void) {
    nne_image img = synthetic();
    CHECK(img.data != NULL);
    for (int i = 0; i < nne_imgcodec_count(); i++) {
        const nne_imgcodec *c = nne_imgcodec_get(i);
        /* Low, middle and high end of the default sweep (increasing rate). */
        const double qs[3] = {c->sweep[0], c->sweep[c->n_sweep / 2], c->sweep[c->n_sweep - 1]};
        size_t bytes[3] = {0};
        double psnr[3] = {0};
        for (int k = 0; k < 3; k++) {
            uint8_t *b = NULL;
            size_t n = 0;
            nne_image d = {0};
            CHECK_OK(nne_imgcodec_encode(c, &img, qs[k], &b, &n));
            CHECK(b != NULL && n > 0);
            CHECK_OK(nne_imgcodec_decode(c, b, n, &d));
            CHECK_MSG(d.width == img.width && d.height == img.height && d.channels == 3,
                      "%s: decoded %dx%dx%d", c->name, (int)d.width, (int)d.height,
                      (int)d.channels);
            double mse = NAN;
            if (d.data && d.width == img.width && d.height == img.height)
                CHECK_OK(nne_mse_u8(img.data, d.data, img.width, img.height, 3, &mse));
            bytes[k] = n;
            psnr[k] = nne_psnr_from_mse(mse, 255);
            /* A truncated stream must fail cleanly (never a partial image). */
            nne_image t = {0};
            CHECK(nne_imgcodec_decode(c, b, n / 2, &t) != NNE_OK);
            CHECK(t.data == NULL);
            nne_free(b);
            nne_image_free(&d);
        }
        CHECK_MSG(bytes[0] < bytes[1] && bytes[1] < bytes[2], "%s: bytes %zu %zu %zu", c->name,
                  bytes[0], bytes[1], bytes[2]);
        CHECK_MSG(psnr[0] < psnr[1] && psnr[1] < psnr[2], "%s: PSNR %.2f %.2f %.2f", c->name,
                  psnr[0], psnr[1], psnr[2]);
        /* Channels in the right order and the colour transform inverted: the high end of the
         * sweep is a good reconstruction (a swapped R/B would be far below). */
        CHECK_MSG(psnr[2] > 30, "%s: PSNR %.2f at %s %g", c->name, psnr[2], c->knob, qs[2]);
    }
    nne_image_free(&img);
}

static void test_bad_arguments(void) {
    nne_image img = synthetic();
    uint8_t *b = (uint8_t *)1;
    size_t n = 1;
    const nne_imgcodec *jpeg = nne_imgcodec_find("jpeg");
    CHECK_STATUS(nne_imgcodec_encode(jpeg, &img, 0, &b, &n), NNE_ERR_INVALID_ARG);
    CHECK(b == NULL && n == 0);
    CHECK_STATUS(nne_imgcodec_encode(jpeg, &img, 50.5, &b, &n), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_imgcodec_encode(jpeg, &img, NAN, &b, &n), NNE_ERR_INVALID_ARG);
#ifdef NNE_HAVE_CLASSICAL_CODECS
    const nne_imgcodec *avif = nne_imgcodec_find("avif");
    CHECK_STATUS(nne_imgcodec_encode(avif, &img, 64, &b, &n), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_imgcodec_encode(avif, &img, NAN, &b, &n), NNE_ERR_INVALID_ARG);
#endif
    nne_image gray = {0};
    CHECK_OK(nne_image_alloc(&gray, 16, 16, 1));
    CHECK_STATUS(nne_imgcodec_encode(jpeg, &gray, 50, &b, &n), NNE_ERR_INVALID_ARG);
    nne_image_free(&gray);
    /* Garbage and another codec's stream are refused by every decoder. */
    uint8_t *jb = NULL;
    size_t jn = 0;
    CHECK_OK(nne_imgcodec_encode(jpeg, &img, 50, &jb, &jn));
    const uint8_t junk[64] = {1, 2, 3};
    for (int i = 0; i < nne_imgcodec_count(); i++) {
        const nne_imgcodec *c = nne_imgcodec_get(i);
        nne_image d = {0};
        CHECK(nne_imgcodec_decode(c, junk, sizeof junk, &d) != NNE_OK && d.data == NULL);
        CHECK(nne_imgcodec_decode(c, junk, 0, &d) != NNE_OK && d.data == NULL);
        if (c != jpeg) CHECK(nne_imgcodec_decode(c, jb, jn, &d) != NNE_OK && d.data == NULL);
        CHECK(strlen(nne_last_error()) > 0);
    }
    nne_free(jb);
    nne_image_free(&img);
}

int main(void) {
    NNE_RUN(test_table);
    NNE_RUN(test_round_trip);
    NNE_RUN(test_bad_arguments);
    return nne_test_summary();
}
