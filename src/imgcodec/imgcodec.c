/* The codec table and the checked entry points (argument validation in one place, so each
 * codec file only talks to its library). */
#include <math.h>
#include <string.h>

#include "imgcodec/imgcodec_internal.h"

/* NNE_HAVE_CLASSICAL_CODECS: set by CMake unless -DNNE_CLASSICAL_CODECS=OFF, which leaves
 * out webp.c, jp2.c, avif.c and jxl.c and their libraries. */
static const nne_imgcodec *const k_codecs[] = {
    &nne_imgcodec_jpeg,
#ifdef NNE_HAVE_CLASSICAL_CODECS
    &nne_imgcodec_webp, &nne_imgcodec_jp2, &nne_imgcodec_avif, &nne_imgcodec_jxl,
#endif
};
enum { K_N = (int)(sizeof k_codecs / sizeof k_codecs[0]) };

/* Every codec name a build of nnedge can have, in table order. */
static const char *const k_known[] = {"jpeg", "webp", "jp2", "avif", "jxl"};

int nne_imgcodec_count(void) { return K_N; }

const nne_imgcodec *nne_imgcodec_get(int i) { return i >= 0 && i < K_N ? k_codecs[i] : NULL; }

const nne_imgcodec *nne_imgcodec_find(const char *name) {
    for (int i = 0; name && i < K_N; i++)
        if (strcmp(k_codecs[i]->name, name) == 0) return k_codecs[i];
    return NULL;
}

bool nne_imgcodec_known(const char *name) {
    for (size_t i = 0; name && i < sizeof k_known / sizeof k_known[0]; i++)
        if (strcmp(k_known[i], name) == 0) return true;
    return false;
}

nne_status nne_imgcodec_encode(const nne_imgcodec *c, const nne_image *img, double quality,
                               uint8_t **out, size_t *out_size) {
    if (!c || !out || !out_size) return nne_error(NNE_ERR_INVALID_ARG, "imgcodec: NULL argument");
    *out = NULL;
    *out_size = 0;
    if (!img || !img->data || img->channels != 3 || img->width <= 0 || img->height <= 0 ||
        img->width > NNE_IMAGE_MAX_DIM || img->height > NNE_IMAGE_MAX_DIM ||
        (int64_t)img->width * img->height > NNE_IMAGE_MAX_PIXELS)
        return nne_error(NNE_ERR_INVALID_ARG, "%s: expected an RGB8 image within the limits",
                         c->name);
    if (!(quality >= c->q_min && quality <= c->q_max) || (c->integer && quality != floor(quality)))
        return nne_error(NNE_ERR_INVALID_ARG, "%s: %s %g outside %g..%g%s", c->name, c->knob,
                         quality, c->q_min, c->q_max, c->integer ? " (integer)" : "");
    return c->encode(c, img, quality, out, out_size);
}

nne_status nne_imgcodec_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n,
                               nne_image *img) {
    if (!c || !img) return nne_error(NNE_ERR_INVALID_ARG, "imgcodec: NULL argument");
    memset(img, 0, sizeof *img);
    if (!buf || n == 0) return nne_error(NNE_ERR_FORMAT, "%s: empty stream", c->name);
    nne_status s = c->decode(c, buf, n, img);
    if (s == NNE_OK && img->channels != 3) {
        nne_image_free(img);
        return nne_error(NNE_ERR_INTERNAL, "%s: decoder returned %d channels", c->name,
                         (int)img->channels);
    }
    return s;
}

nne_status nne_imgcodec_copy_out(const nne_imgcodec *c, const void *src, size_t n, uint8_t **out,
                                 size_t *out_size) {
    if (n == 0) return nne_error(NNE_ERR_INTERNAL, "%s: encoder produced no bytes", c->name);
    uint8_t *p = nne_malloc(n);
    if (!p) return NNE_ERR_NOMEM;
    memcpy(p, src, n);
    *out = p;
    *out_size = n;
    return NNE_OK;
}

nne_status nne_imgcodec_alloc_rgb(const nne_imgcodec *c, uint64_t width, uint64_t height,
                                  nne_image *img) {
    if (width == 0 || height == 0 || width > NNE_IMAGE_MAX_DIM || height > NNE_IMAGE_MAX_DIM ||
        width * height > NNE_IMAGE_MAX_PIXELS)
        return nne_error(NNE_ERR_LIMIT, "%s: decoded size %llux%llu outside the image limits",
                         c->name, (unsigned long long)width, (unsigned long long)height);
    return nne_image_alloc(img, (int32_t)width, (int32_t)height, 3);
}
