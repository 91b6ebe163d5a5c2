/* Private: the built-in codec entries (one file each) and shared helpers. */
#ifndef NNE_IMGCODEC_INTERNAL_H
#define NNE_IMGCODEC_INTERNAL_H

#include "nnedge/imgcodec.h"

extern const nne_imgcodec nne_imgcodec_jpeg;
/* The next four are compiled only with NNE_HAVE_CLASSICAL_CODECS (CMake NNE_CLASSICAL_CODECS). */
extern const nne_imgcodec nne_imgcodec_webp;
extern const nne_imgcodec nne_imgcodec_jp2;
extern const nne_imgcodec nne_imgcodec_avif;
extern const nne_imgcodec nne_imgcodec_jxl;

/* Copy n bytes into a new nne_malloc'd buffer (*out); NNE_ERR_NOMEM on failure. */
nne_status nne_imgcodec_copy_out(const nne_imgcodec *c, const void *src, size_t n, uint8_t **out,
                                 size_t *out_size);
/* Check decoded dimensions against the image limits, then allocate an RGB8 image. */
nne_status nne_imgcodec_alloc_rgb(const nne_imgcodec *c, uint64_t width, uint64_t height,
                                  nne_image *img);

#endif
