/* Fuzz target for the image decoders (PNG through libpng, binary PPM/PGM).
 *
 * Decodes the input from memory with several load flags; every successful decode must
 * re-encode (PNG, and PPM/PGM when the channel count allows) and decode again to exactly the
 * same pixels, and the flag variants must agree with each other. Any disagreement abort()s.
 *
 * Random mutations almost always break a PNG chunk CRC, which stops decoding at the first
 * chunk; so PNG inputs are also decoded once more with every chunk CRC recomputed, which lets
 * mutated headers, palettes and zlib streams reach the deeper code paths.
 * Seeds: fuzz/corpus/fuzz_image/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/image.h"

static size_t image_bytes(const nne_image *img) {
    return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

static int same(const nne_image *a, const nne_image *b) {
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->data, b->data, image_bytes(a)) == 0;
}

static void check_reencode(const nne_image *img, nne_image_format fmt) {
    uint8_t *buf = NULL;
    size_t n = 0;
    if (nne_image_encode(img, fmt, &buf, &n) != NNE_OK) abort();
    if (nne_image_detect(buf, n) != fmt) abort();
    nne_image back;
    if (nne_image_decode(buf, n, NNE_IMAGE_LOAD_ANY, &back) != NNE_OK) abort();
    if (!same(img, &back)) abort();
    nne_image_free(&back);
    nne_free(buf);
}

static void check_input(const uint8_t *data, size_t size) {
    nne_image any;
    nne_status s = nne_image_decode(data, size, NNE_IMAGE_LOAD_ANY, &any);
    if (s != NNE_OK) {
        /* A failed decode leaves the image zeroed and explains itself. */
        if (any.data || any.width || nne_last_error()[0] == 0) abort();
    }

    nne_image rgb;
    nne_status s_rgb =
        nne_image_decode(data, size, NNE_IMAGE_LOAD_RGB | NNE_IMAGE_LOAD_DROP_ALPHA, &rgb);
    /* Both variants read the same bytes, so they succeed or fail together. */
    if ((s == NNE_OK) != (s_rgb == NNE_OK)) abort();
    if (s != NNE_OK) return;

    /* The flag variant equals the ANY decode followed by the explicit conversions. */
    nne_image noalpha, expect;
    if (nne_image_drop_alpha(&any, &noalpha) != NNE_OK) abort();
    if (nne_image_to_rgb(&noalpha, &expect) != NNE_OK) abort();
    if (!same(&rgb, &expect)) abort();
    nne_image_free(&noalpha);
    nne_image_free(&expect);

    check_reencode(&any, NNE_IMAGE_FORMAT_PNG);
    if (any.channels == 1) check_reencode(&any, NNE_IMAGE_FORMAT_PGM);
    if (any.channels == 3) check_reencode(&any, NNE_IMAGE_FORMAT_PPM);
    check_reencode(&rgb, NNE_IMAGE_FORMAT_PPM);

    nne_image_free(&any);
    nne_image_free(&rgb);
}

/* Rewrites the CRC of every complete chunk; returns whether anything changed. */
static int fix_png_crcs(uint8_t *p, size_t n) {
    int changed = 0;
    size_t pos = 8;
    while (pos + 12 <= n) {
        size_t len =
            (size_t)p[pos] << 24 | (size_t)p[pos + 1] << 16 | (size_t)p[pos + 2] << 8 | p[pos + 3];
        if (len > n - pos - 12) break;
        uint32_t crc = nne_crc32(0, p + pos + 4, 4 + len);
        uint8_t *c = p + pos + 8 + len;
        uint8_t want[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                           (uint8_t)crc};
        if (memcmp(c, want, 4) != 0) {
            memcpy(c, want, 4);
            changed = 1;
        }
        pos += 12 + len;
    }
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_input(data, size);
    if (nne_image_detect(data, size) == NNE_IMAGE_FORMAT_PNG) {
        uint8_t *copy = malloc(size);
        if (!copy) return 0;
        memcpy(copy, data, size);
        if (fix_png_crcs(copy, size)) check_input(copy, size);
        free(copy);
    }
    return 0;
}
