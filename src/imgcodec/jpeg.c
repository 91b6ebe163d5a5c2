/* JPEG through the image module's libjpeg-turbo encoder: libjpeg's defaults (4:2:0 chroma
 * subsampling, standard Huffman tables, baseline, islow DCT), as Pillow and cjpeg produce
 * and as CompressAI's JPEG anchor was made (docs/results/jpeg-kodak.md). */
#include <stdio.h>

#include <jpeglib.h> /* after stdio.h: it uses FILE and size_t */

#include "imgcodec/imgcodec_internal.h"

static const char *jpeg_version(const nne_imgcodec *c, char *buf, size_t n) {
    (void)c;
    const int v = LIBJPEG_TURBO_VERSION_NUMBER; /* e.g. 2001005 for 2.1.5 */
    snprintf(buf, n, "libjpeg-turbo %d.%d.%d", v / 1000000, v / 1000 % 1000, v % 1000);
    return buf;
}

static nne_status jpeg_encode(const nne_imgcodec *c, const nne_image *img, double quality,
                              uint8_t **out, size_t *out_size) {
    (void)c;
    return nne_image_encode_jpeg(img, (int)quality, out, out_size);
}

static nne_status jpeg_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n,
                              nne_image *img) {
    (void)c;
    if (nne_image_detect(buf, n) != NNE_IMAGE_FORMAT_JPEG)
        return nne_error(NNE_ERR_FORMAT, "jpeg: not a JPEG stream");
    return nne_image_decode(buf, n, NNE_IMAGE_LOAD_RGB, img);
}

const nne_imgcodec nne_imgcodec_jpeg = {
    .name = "jpeg",
    .label = "JPEG (libjpeg-turbo)",
    .knob = "quality",
    .q_min = 1,
    .q_max = 100,
    .direction = +1,
    .integer = true,
    .settings = "libjpeg defaults: 4:2:0, baseline, standard Huffman tables (as Pillow/cjpeg)",
    .anchor = "jpeg",
    .n_sweep = 9,
    .sweep = {5, 10, 20, 30, 40, 50, 60, 70, 80},
    .version = jpeg_version,
    .encode = jpeg_encode,
    .decode = jpeg_decode,
};
