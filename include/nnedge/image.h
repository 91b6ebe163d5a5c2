/* nnedge image I/O: 8-bit gray/RGB(A) images, PNG (via libpng) and binary PPM/PGM.
 *
 * Pixels are interleaved, rows top to bottom, no row padding: pixel (y, x) channel k is at
 * data[(y * width + x) * channels + k].
 *
 * Alpha is explicit: a PNG with alpha (RGBA or gray+alpha) is loaded with channels = 4 or 2
 * and it is the caller's choice what to do with it (nne_image_drop_alpha, or the
 * NNE_IMAGE_LOAD_* flags). Palette PNGs are expanded to RGB(A); 16-bit PNGs are reduced to
 * 8 bits by taking the high byte (the libpng "strip 16" rule) -- see docs/image-io.md.
 */
#ifndef NNEDGE_IMAGE_H
#define NNEDGE_IMAGE_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_IMAGE_MAX_DIM    65535     /* width and height */
#define NNE_IMAGE_MAX_PIXELS (1 << 28) /* width * height: 268 Mpixel */

typedef struct nne_image {
    int32_t width, height;
    int32_t channels; /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    uint8_t *data;    /* width * height * channels bytes, owned */
} nne_image;

typedef enum nne_image_format {
    NNE_IMAGE_FORMAT_UNKNOWN = 0,
    NNE_IMAGE_FORMAT_PNG,
    NNE_IMAGE_FORMAT_PPM, /* P6 (RGB) */
    NNE_IMAGE_FORMAT_PGM, /* P5 (gray) */
    NNE_IMAGE_FORMAT_JPEG, /* baseline/progressive 8-bit, via libjpeg-turbo */
} nne_image_format;

/* Load flags. */
enum {
    NNE_IMAGE_LOAD_ANY = 0,        /* keep the file's channels (alpha included) */
    NNE_IMAGE_LOAD_RGB = 1,        /* convert to 3 channels; fail if the file has alpha
                                      unless NNE_IMAGE_LOAD_DROP_ALPHA is also given */
    NNE_IMAGE_LOAD_DROP_ALPHA = 2, /* discard alpha (no compositing) */
};

/* Allocate zeroed pixels (INVALID_ARG for a bad shape, LIMIT above the limits). free
 * releases the pixels and zeroes *img; it accepts NULL and a zeroed image. */
nne_status nne_image_alloc(nne_image *img, int32_t width, int32_t height, int32_t channels);
void nne_image_free(nne_image *img);

/* Detect the format from the first bytes. */
nne_image_format nne_image_detect(const uint8_t *buf, size_t n);
/* Detect from the file name's extension (.png, .ppm, .pgm, .pnm; case-insensitive);
 * UNKNOWN otherwise. ".pnm" reports PPM; nne_image_save writes PGM for a 1-channel image. */
nne_image_format nne_image_format_from_path(const char *path);

/* Decode from memory / from a file (format sniffed from content). Errors name the file
 * (or "<memory>") and the problem; img is left zeroed on failure. Statuses: FORMAT
 * (malformed or truncated), CHECKSUM (CRC of a critical PNG chunk), LIMIT (dimensions over
 * NNE_IMAGE_MAX_DIM / NNE_IMAGE_MAX_PIXELS), UNSUPPORTED (other Netpbm types; alpha with
 * NNE_IMAGE_LOAD_RGB alone), NOT_FOUND / IO (files), INVALID_ARG (unknown flag bits).
 * PPM/PGM with maxval != 255 (up to 65535) are rescaled to 8 bits, round(v * 255 / maxval). */
nne_status nne_image_decode(const uint8_t *buf, size_t n, int flags, nne_image *img);
nne_status nne_image_load(const char *path, int flags, nne_image *img);

/* Encode to memory (*out allocated with nne_malloc, free with nne_free) / to a file. PPM
 * takes 3 channels, PGM 1; PNG takes 1..4. nne_image_save picks the format from the
 * extension and writes atomically (temporary file in the same directory, then rename). */
nne_status nne_image_encode(const nne_image *img, nne_image_format fmt, uint8_t **out,
                            size_t *out_size);
nne_status nne_image_save(const char *path, const nne_image *img);

/* JPEG at `quality` 1..100 with libjpeg's defaults (4:2:0 chroma subsampling, standard
 * Huffman tables, baseline), as Pillow and cjpeg produce; gray or RGB input. nne_image_encode
 * and nne_image_save use NNE_IMAGE_JPEG_DEFAULT_QUALITY for JPEG. */
#define NNE_IMAGE_JPEG_DEFAULT_QUALITY 90
nne_status nne_image_encode_jpeg(const nne_image *img, int quality, uint8_t **out,
                                 size_t *out_size);

/* Channel conversions into a new image (dst is overwritten, not freed; zeroed on failure).
 * drop_alpha: 2 -> 1 and 4 -> 3 channels; 1 and 3 channels are copied.
 * to_rgb: gray -> RGB by replication, RGB copied; an image with alpha is refused
 * (NNE_ERR_INVALID_ARG): drop the alpha first, explicitly. */
nne_status nne_image_drop_alpha(const nne_image *src, nne_image *dst);
nne_status nne_image_to_rgb(const nne_image *src, nne_image *dst);

#ifdef __cplusplus
}
#endif
#endif
