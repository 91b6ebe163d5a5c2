/* Lossy WebP through libwebp's simple API: WebPEncodeRGB is the DEFAULT preset at the given
 * quality with method 4, 4:2:0 chroma, no sharp YUV, single-threaded -- what Pillow's
 * save(format="webp", quality=q) and cwebp -q do, i.e. how CompressAI's WebP anchor was made.
 * The output is a complete RIFF/WEBP file. Decoding uses libwebp's default (fancy)
 * upsampling into our buffer. */
#include <stdio.h>

#include <webp/decode.h>
#include <webp/encode.h>

#include "imgcodec/imgcodec_internal.h"

static const char *webp_version(const nne_imgcodec *c, char *buf, size_t n) {
    (void)c;
    const int v = WebPGetEncoderVersion(); /* 0xMMmmpp */
    snprintf(buf, n, "libwebp %d.%d.%d", v >> 16, (v >> 8) & 0xff, v & 0xff);
    return buf;
}

static nne_status webp_encode(const nne_imgcodec *c, const nne_image *img, double quality,
                              uint8_t **out, size_t *out_size) {
    if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION)
        return nne_error(NNE_ERR_LIMIT, "webp: %dx%d exceeds WebP's %d pixels per side",
                         (int)img->width, (int)img->height, WEBP_MAX_DIMENSION);
    uint8_t *enc = NULL;
    const size_t n =
        WebPEncodeRGB(img->data, img->width, img->height, img->width * 3, (float)quality, &enc);
    if (n == 0) {
        WebPFree(enc);
        return nne_error(NNE_ERR_INTERNAL, "webp: WebPEncodeRGB failed");
    }
    nne_status s = nne_imgcodec_copy_out(c, enc, n, out, out_size);
    WebPFree(enc);
    return s;
}

static nne_status webp_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n,
                              nne_image *img) {
    int w = 0, h = 0;
    if (!WebPGetInfo(buf, n, &w, &h)) return nne_error(NNE_ERR_FORMAT, "webp: not a WebP stream");
    nne_status s = nne_imgcodec_alloc_rgb(c, (uint64_t)w, (uint64_t)h, img);
    if (s) return s;
    const size_t size = (size_t)w * (size_t)h * 3;
    if (!WebPDecodeRGBInto(buf, n, img->data, size, w * 3)) {
        nne_image_free(img);
        return nne_error(NNE_ERR_FORMAT, "webp: corrupt or truncated stream");
    }
    return NNE_OK;
}

const nne_imgcodec nne_imgcodec_webp = {
    .name = "webp",
    .label = "WebP (libwebp)",
    .knob = "quality",
    .q_min = 0,
    .q_max = 100,
    .direction = +1,
    .integer = false,
    .settings = "lossy, DEFAULT preset, method 4, 4:2:0, no sharp YUV (as Pillow/cwebp -q)",
    .anchor = "webp",
    .n_sweep = 9,
    .sweep = {0, 5, 15, 30, 45, 60, 75, 80, 85},
    .version = webp_version,
    .encode = webp_encode,
    .decode = webp_decode,
};
