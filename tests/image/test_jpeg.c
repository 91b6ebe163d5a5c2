/* JPEG through libjpeg-turbo: round trips, quality/size behaviour, truncation and bad input.
 * (Decoding of Pillow-written JPEGs is checked exactly by test_image's golden manifest.) */
#include <string.h>

#include "nnedge/image.h"
#include "nnedge/metrics.h"
#include "testutil.h"

/* A smooth image with an edge and mild texture: compresses like a photo. */
static void make_image(nne_image *img, int w, int h, int c) {
    CHECK_OK(nne_image_alloc(img, w, h, c));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
            {
                int v = x * 150 / w + y * 60 / h + k * 20 + ((x / 8 + y / 8) % 2) * 20;
                img->data[((size_t)y * w + x) * c + k] = (uint8_t)(v > 255 ? 255 : v);
            }
}

static double psnr_of(const nne_image *a, const nne_image *b) {
    double mse;
    CHECK_OK(nne_mse_u8(a->data, b->data, a->width, a->height, a->channels, &mse));
    return nne_psnr_from_mse(mse, 255.0);
}

static void test_round_trip(void) {
    const int shapes[][3] = {{64, 48, 3}, {17, 9, 3}, {1, 1, 3}, {33, 20, 1}, {200, 3, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        nne_image img, back;
        make_image(&img, shapes[i][0], shapes[i][1], shapes[i][2]);
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_image_encode_jpeg(&img, 95, &buf, &n));
        CHECK(nne_image_detect(buf, n) == NNE_IMAGE_FORMAT_JPEG);
        CHECK_OK(nne_image_decode(buf, n, 0, &back));
        CHECK(back.width == img.width && back.height == img.height &&
              back.channels == img.channels);
        if (back.data && img.width >= 8) CHECK_MSG(psnr_of(&img, &back) > 30.0, "shape %zu", i);
        /* Gray JPEG loaded as RGB replicates the channel. */
        if (img.channels == 1) {
            nne_image rgb;
            CHECK_OK(nne_image_decode(buf, n, NNE_IMAGE_LOAD_RGB, &rgb));
            CHECK(rgb.channels == 3);
            for (int p = 0; rgb.data && p < rgb.width * rgb.height; p++)
                CHECK(rgb.data[3 * p] == back.data[p] && rgb.data[3 * p + 2] == back.data[p]);
            nne_image_free(&rgb);
        }
        nne_free(buf);
        nne_image_free(&back);
        nne_image_free(&img);
    }
}

/* Lower quality gives fewer bytes and lower PSNR (monotone over a coarse sweep). */
static void test_quality_sweep(void) {
    nne_image img;
    make_image(&img, 96, 64, 3);
    size_t last_n = 0;
    double last_psnr = 1e9;
    const int qs[] = {95, 75, 50, 20, 5};
    for (size_t i = 0; i < 5; i++) {
        uint8_t *buf;
        size_t n;
        nne_image back;
        CHECK_OK(nne_image_encode_jpeg(&img, qs[i], &buf, &n));
        CHECK_OK(nne_image_decode(buf, n, 0, &back));
        double p = back.data ? psnr_of(&img, &back) : 0;
        if (i) CHECK_MSG(n < last_n && p < last_psnr, "q=%d: %zu bytes %.2f dB", qs[i], n, p);
        last_n = n;
        last_psnr = p;
        nne_free(buf);
        nne_image_free(&back);
    }
    nne_image_free(&img);
}

static void test_bad_input(void) {
    nne_image img, out;
    make_image(&img, 40, 30, 3);
    uint8_t *buf;
    size_t n;
    CHECK_OK(nne_image_encode_jpeg(&img, 80, &buf, &n));
    /* Every truncation fails cleanly (libjpeg's "premature end" warning is an error here). */
    for (size_t cut = 0; buf && cut < n; cut++) {
        nne_status s = nne_image_decode(buf, cut, 0, &out);
        CHECK_MSG(s != NNE_OK, "truncated at %zu of %zu decoded", cut, n);
        CHECK(out.data == NULL);
    }
    /* Corrupt a marker in the header. */
    if (buf && n > 40) {
        uint8_t *bad = nne_malloc(n);
        memcpy(bad, buf, n);
        bad[3] = 0x00; /* APP0 marker byte */
        nne_status s = nne_image_decode(bad, n, 0, &out);
        CHECK(s == NNE_ERR_FORMAT);
        CHECK(strstr(nne_last_error(), "JPEG") != NULL);
        nne_free(bad);
    }
    nne_free(buf);
    CHECK_STATUS(nne_image_encode_jpeg(&img, 0, &buf, &n), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_image_encode_jpeg(&img, 101, &buf, &n), NNE_ERR_INVALID_ARG);
    nne_image rgba;
    make_image(&rgba, 8, 8, 4);
    CHECK_STATUS(nne_image_encode_jpeg(&rgba, 90, &buf, &n), NNE_ERR_INVALID_ARG);
    nne_image_free(&rgba);
    nne_image_free(&img);
    CHECK(nne_image_format_from_path("a/b.JPG") == NNE_IMAGE_FORMAT_JPEG);
    CHECK(nne_image_format_from_path("x.jpeg") == NNE_IMAGE_FORMAT_JPEG);
}

/* A training-set JPEG (BSDS500) decodes to its known size, when ../shared is present. */
static void test_training_jpeg(void) {
    const char *p = nne_test_path(nne_test_shared_dir(), "data/train/bsds500/100007.jpg");
    size_t n;
    unsigned char *b = nne_test_read_file(p, &n);
    if (!b) {
        printf("     (no %s: skipped)\n", p);
        return;
    }
    nne_free(b);
    nne_image img;
    CHECK_OK(nne_image_load(p, NNE_IMAGE_LOAD_RGB, &img));
    CHECK(img.channels == 3 && img.width * img.height == 481 * 321);
    nne_image_free(&img);
}

int main(void) {
    NNE_RUN(test_round_trip);
    NNE_RUN(test_quality_sweep);
    NNE_RUN(test_bad_input);
    NNE_RUN(test_training_jpeg);
    return nne_test_summary();
}
