/* Private declarations shared by the image I/O files (not installed). */
#ifndef NNE_IMAGE_INTERNAL_H
#define NNE_IMAGE_INTERNAL_H

#include "nnedge/image.h"

/* All decoders: `name` is the file name used in error messages ("<memory>" for buffers).
 * `flags` has been validated. On failure *img is left zeroed. */
nne_status nne_image_png_decode(const uint8_t *buf, size_t n, int flags, const char *name,
                                nne_image *img);
nne_status nne_image_pnm_decode(const uint8_t *buf, size_t n, int flags, const char *name,
                                nne_image *img);
nne_status nne_image_jpeg_decode(const uint8_t *buf, size_t n, int flags, const char *name,
                                 nne_image *img);

/* Encoders: `img` has been validated (dimensions, channels, data). *out is nne_malloc'd. */
nne_status nne_image_png_encode(const nne_image *img, uint8_t **out, size_t *out_size);
nne_status nne_image_jpeg_encode(const nne_image *img, int quality, uint8_t **out,
                                 size_t *out_size);
nne_status nne_image_pnm_encode(const nne_image *img, nne_image_format fmt, uint8_t **out,
                                size_t *out_size);

/* Checks width, height and channels against the limits and returns the byte size of the
 * pixel buffer in *size. `name` prefixes the error message. */
nne_status nne_image_check_dims(const char *name, int64_t width, int64_t height, int64_t channels,
                                size_t *size);

#endif
