/* AVIF through libavif, encoded by libaom (decoded by whichever AV1 decoder libavif prefers:
 * dav1d on Debian; AV1 decoding is exact, so the choice does not change pixels).
 *
 * Settings, chosen to match CompressAI's "AV1" anchor (aomenc --i444 --end-usage=q
 * --cq-level=Q --tune=psnr, 8 bits, YCbCr with BT.709 weights at full range) where that is
 * affordable:
 *  - 4:4:4, 8 bits, BT.709 matrix, full range, RGB <-> YUV by libavif's own (exact, rounded)
 *    conversion, not libyuv;
 *  - the knob is the AV1 quantizer 0..63 (aomenc's --cq-level scale, lower = better):
 *    min = max quantizer = Q, which libavif turns into end-usage=q with cq-level Q;
 *  - speed NNE_AVIF_SPEED (libaom cpu-used; the anchor used 0, about 20x slower: docs/rd.md
 *    gives the time per image and the rate cost); libaom's default tuning (PSNR);
 *  - one thread, no tiling. */
#include <stdio.h>
#include <string.h>

#include <avif/avif.h>

#include "imgcodec/imgcodec_internal.h"

/* libaom cpu-used 0..10. 6 costs ~0.3 s per 512x480 image on this machine; 4 is ~6x slower
 * for ~0.2 dB, 2 another ~2x (measured on a validation image, docs/rd.md). */
#ifndef NNE_AVIF_SPEED
#define NNE_AVIF_SPEED 6
#endif

static const char *avif_version(const nne_imgcodec *c, char *buf, size_t n) {
    (void)c;
    char codecs[256];
    avifCodecVersions(codecs);
    snprintf(buf, n, "libavif %s [%s]", avifVersion(), codecs);
    return buf;
}

static nne_status avif_fail(const char *what, avifResult r, const char *diag) {
    return nne_error(r == AVIF_RESULT_OUT_OF_MEMORY ? NNE_ERR_NOMEM : NNE_ERR_FORMAT,
                     "avif: %s: %s%s%s", what, avifResultToString(r), diag[0] ? ": " : "", diag);
}

static nne_status avif_encode(const nne_imgcodec *c, const nne_image *img, double quality,
                              uint8_t **out, size_t *out_size) {
    avifImage *im = avifImageCreate((uint32_t)img->width, (uint32_t)img->height, 8,
                                    AVIF_PIXEL_FORMAT_YUV444);
    avifEncoder *enc = avifEncoderCreate();
    avifRWData data = AVIF_DATA_EMPTY;
    nne_status s = NNE_OK;
    if (!im || !enc) {
        s = nne_error(NNE_ERR_NOMEM, "avif: cannot create the encoder");
        goto done;
    }
    im->colorPrimaries = AVIF_COLOR_PRIMARIES_BT709;
    im->transferCharacteristics = AVIF_TRANSFER_CHARACTERISTICS_SRGB;
    im->matrixCoefficients = AVIF_MATRIX_COEFFICIENTS_BT709;
    im->yuvRange = AVIF_RANGE_FULL;
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, im);
    rgb.format = AVIF_RGB_FORMAT_RGB;
    rgb.depth = 8;
    rgb.avoidLibYUV = AVIF_TRUE;
    rgb.pixels = img->data; /* only read by avifImageRGBToYUV */
    rgb.rowBytes = (uint32_t)img->width * 3;
    avifResult r = avifImageRGBToYUV(im, &rgb);
    if (r != AVIF_RESULT_OK) {
        s = avif_fail("RGB to YUV", r, "");
        goto done;
    }
    enc->codecChoice = AVIF_CODEC_CHOICE_AOM;
    enc->maxThreads = 1;
    enc->speed = NNE_AVIF_SPEED;
    enc->minQuantizer = enc->maxQuantizer = (int)quality;
    r = avifEncoderWrite(enc, im, &data);
    if (r != AVIF_RESULT_OK) {
        s = avif_fail("encoding failed", r, enc->diag.error);
        goto done;
    }
    s = nne_imgcodec_copy_out(c, data.data, data.size, out, out_size);
done:
    avifRWDataFree(&data);
    if (enc) avifEncoderDestroy(enc);
    if (im) avifImageDestroy(im);
    return s;
}

static nne_status avif_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n,
                              nne_image *img) {
    avifDecoder *dec = avifDecoderCreate();
    avifImage *im = avifImageCreateEmpty();
    nne_status s = NNE_OK;
    if (!dec || !im) {
        s = nne_error(NNE_ERR_NOMEM, "avif: cannot create the decoder");
        goto done;
    }
    dec->maxThreads = 1;
    dec->imageSizeLimit = NNE_IMAGE_MAX_PIXELS;
    dec->imageDimensionLimit = NNE_IMAGE_MAX_DIM;
    avifResult r = avifDecoderReadMemory(dec, im, buf, n);
    if (r != AVIF_RESULT_OK) {
        s = avif_fail("decoding failed", r, dec->diag.error);
        goto done;
    }
    s = nne_imgcodec_alloc_rgb(c, im->width, im->height, img);
    if (s) goto done;
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, im);
    rgb.format = AVIF_RGB_FORMAT_RGB;
    rgb.depth = 8;
    rgb.avoidLibYUV = AVIF_TRUE;
    rgb.pixels = img->data;
    rgb.rowBytes = (uint32_t)img->width * 3;
    r = avifImageYUVToRGB(im, &rgb);
    if (r != AVIF_RESULT_OK) {
        nne_image_free(img);
        s = avif_fail("YUV to RGB", r, "");
    }
done:
    if (im) avifImageDestroy(im);
    if (dec) avifDecoderDestroy(dec);
    return s;
}

#define STR2(x) #x
#define STR(x)  STR2(x)

const nne_imgcodec nne_imgcodec_avif = {
    .name = "avif",
    .label = "AVIF (libavif + libaom)",
    .knob = "quantizer",
    .q_min = 0,
    .q_max = 63,
    .direction = -1,
    .integer = true,
    .settings = "4:4:4 8-bit, BT.709 full range, end-usage=q cq-level=Q, libaom speed " STR(
        NNE_AVIF_SPEED) ", 1 thread",
    .anchor = "av1",
    .n_sweep = 9,
    .sweep = {56, 51, 46, 41, 36, 32, 28, 24, 20},
    .version = avif_version,
    .encode = avif_encode,
    .decode = avif_decode,
};
