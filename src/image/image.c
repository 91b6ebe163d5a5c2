/* Image I/O entry points: allocation, format detection, file load/save (atomic), channel
 * conversions. The codecs live in png.c and pnm.c. See docs/image-io.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/image_internal.h"
#include "nnedge/file.h"

#define MEMORY_NAME "<memory>"
/* Largest file nne_image_load reads: more than the largest raw image (MAX_PIXELS * 4 bytes)
 * plus room for PNG framing, far less than SIZE_MAX on 64-bit hosts. */
#define MAX_FILE_SIZE ((size_t)NNE_IMAGE_MAX_PIXELS * 4 + ((size_t)1 << 26))

nne_status nne_image_check_dims(const char *name, int64_t width, int64_t height, int64_t channels,
                                size_t *size) {
    if (width <= 0 || height <= 0)
        return nne_error(NNE_ERR_FORMAT, "%s: invalid image size %lldx%lld", name, (long long)width,
                         (long long)height);
    if (channels < 1 || channels > 4)
        return nne_error(NNE_ERR_FORMAT, "%s: invalid channel count %lld", name,
                         (long long)channels);
    if (width > NNE_IMAGE_MAX_DIM || height > NNE_IMAGE_MAX_DIM)
        return nne_error(NNE_ERR_LIMIT, "%s: image size %lldx%lld exceeds the limit of %d", name,
                         (long long)width, (long long)height, NNE_IMAGE_MAX_DIM);
    /* Both factors are <= 65535, so the product fits in 32 bits without overflow. */
    if (width * height > NNE_IMAGE_MAX_PIXELS)
        return nne_error(NNE_ERR_LIMIT, "%s: image size %lldx%lld exceeds the limit of %d pixels",
                         name, (long long)width, (long long)height, NNE_IMAGE_MAX_PIXELS);
    size_t px, bytes;
    if (!nne_size_mul((size_t)width, (size_t)height, &px) ||
        !nne_size_mul(px, (size_t)channels, &bytes))
        return nne_error(NNE_ERR_LIMIT, "%s: image size overflows", name);
    *size = bytes;
    return NNE_OK;
}

nne_status nne_image_alloc(nne_image *img, int32_t width, int32_t height, int32_t channels) {
    if (!img) return nne_error(NNE_ERR_INVALID_ARG, "nne_image_alloc: img is NULL");
    memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4)
        return nne_error(NNE_ERR_INVALID_ARG, "nne_image_alloc: invalid shape %dx%dx%d", (int)width,
                         (int)height, (int)channels);
    size_t size;
    nne_status s = nne_image_check_dims("nne_image_alloc", width, height, channels, &size);
    if (s != NNE_OK) return s;
    uint8_t *data = nne_calloc(size, 1);
    if (!data) return NNE_ERR_NOMEM;
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->data = data;
    return NNE_OK;
}

void nne_image_free(nne_image *img) {
    if (!img) return;
    nne_free(img->data);
    memset(img, 0, sizeof *img);
}

static int is_pnm_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

nne_image_format nne_image_detect(const uint8_t *buf, size_t n) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (!buf) return NNE_IMAGE_FORMAT_UNKNOWN;
    if (n >= 8 && memcmp(buf, png_sig, 8) == 0) return NNE_IMAGE_FORMAT_PNG;
    if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return NNE_IMAGE_FORMAT_JPEG;
    if (n >= 2 && buf[0] == 'P' && (buf[1] == '5' || buf[1] == '6') &&
        (n == 2 || is_pnm_space(buf[2]) || buf[2] == '#'))
        return buf[1] == '5' ? NNE_IMAGE_FORMAT_PGM : NNE_IMAGE_FORMAT_PPM;
    return NNE_IMAGE_FORMAT_UNKNOWN;
}

nne_image_format nne_image_format_from_path(const char *path) {
    if (!path) return NNE_IMAGE_FORMAT_UNKNOWN;
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (!dot) return NNE_IMAGE_FORMAT_UNKNOWN;
    if (strcasecmp(dot, ".png") == 0) return NNE_IMAGE_FORMAT_PNG;
    if (strcasecmp(dot, ".ppm") == 0 || strcasecmp(dot, ".pnm") == 0) return NNE_IMAGE_FORMAT_PPM;
    if (strcasecmp(dot, ".pgm") == 0) return NNE_IMAGE_FORMAT_PGM;
    if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0) return NNE_IMAGE_FORMAT_JPEG;
    return NNE_IMAGE_FORMAT_UNKNOWN;
}

static nne_status decode_named(const uint8_t *buf, size_t n, int flags, const char *name,
                               nne_image *img) {
    if (!img) return nne_error(NNE_ERR_INVALID_ARG, "%s: img is NULL", name);
    memset(img, 0, sizeof *img);
    if (!buf && n) return nne_error(NNE_ERR_INVALID_ARG, "%s: buffer is NULL", name);
    if (flags & ~(NNE_IMAGE_LOAD_RGB | NNE_IMAGE_LOAD_DROP_ALPHA))
        return nne_error(NNE_ERR_INVALID_ARG, "%s: unknown load flags 0x%x", name, (unsigned)flags);
    if (n == 0) return nne_error(NNE_ERR_FORMAT, "%s: empty file", name);
    switch (nne_image_detect(buf, n)) {
    case NNE_IMAGE_FORMAT_PNG:
        return nne_image_png_decode(buf, n, flags, name, img);
    case NNE_IMAGE_FORMAT_PPM:
    case NNE_IMAGE_FORMAT_PGM:
        return nne_image_pnm_decode(buf, n, flags, name, img);
    case NNE_IMAGE_FORMAT_JPEG:
        return nne_image_jpeg_decode(buf, n, flags, name, img);
    case NNE_IMAGE_FORMAT_UNKNOWN:
        break;
    }
    if (n >= 2 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '7')
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "%s: Netpbm type P%c is not supported (only binary P5 PGM and P6 PPM)",
                         name, buf[1]);
    return nne_error(NNE_ERR_FORMAT, "%s: unrecognized image format (not PNG, JPEG, PPM or PGM)", name);
}

nne_status nne_image_decode(const uint8_t *buf, size_t n, int flags, nne_image *img) {
    return decode_named(buf, n, flags, MEMORY_NAME, img);
}

nne_status nne_image_load(const char *path, int flags, nne_image *img) {
    if (img) memset(img, 0, sizeof *img);
    if (!path || !img) return nne_error(NNE_ERR_INVALID_ARG, "nne_image_load: NULL argument");
    uint8_t *buf;
    size_t n;
    nne_status s = nne_file_read(path, MAX_FILE_SIZE, &buf, &n);
    if (s != NNE_OK) return s;
    s = decode_named(buf, n, flags, path, img);
    nne_free(buf);
    return s;
}

static nne_status check_image(const char *who, const nne_image *img) {
    if (!img || !img->data)
        return nne_error(NNE_ERR_INVALID_ARG, "%s: image is NULL or has no data", who);
    size_t size;
    if (img->width <= 0 || img->height <= 0 || img->channels < 1 || img->channels > 4 ||
        nne_image_check_dims(who, img->width, img->height, img->channels, &size) != NNE_OK)
        return nne_error(NNE_ERR_INVALID_ARG, "%s: invalid image shape %dx%dx%d", who,
                         (int)img->width, (int)img->height, (int)img->channels);
    return NNE_OK;
}

nne_status nne_image_encode(const nne_image *img, nne_image_format fmt, uint8_t **out,
                            size_t *out_size) {
    if (!out || !out_size) return nne_error(NNE_ERR_INVALID_ARG, "nne_image_encode: NULL output");
    *out = NULL;
    *out_size = 0;
    nne_status s = check_image("nne_image_encode", img);
    if (s != NNE_OK) return s;
    switch (fmt) {
    case NNE_IMAGE_FORMAT_PNG:
        return nne_image_png_encode(img, out, out_size);
    case NNE_IMAGE_FORMAT_PPM:
    case NNE_IMAGE_FORMAT_PGM:
        return nne_image_pnm_encode(img, fmt, out, out_size);
    case NNE_IMAGE_FORMAT_JPEG:
        return nne_image_jpeg_encode(img, NNE_IMAGE_JPEG_DEFAULT_QUALITY, out, out_size);
    case NNE_IMAGE_FORMAT_UNKNOWN:
        break;
    }
    return nne_error(NNE_ERR_INVALID_ARG, "nne_image_encode: unknown format %d", (int)fmt);
}

nne_status nne_image_encode_jpeg(const nne_image *img, int quality, uint8_t **out,
                                 size_t *out_size) {
    if (!out || !out_size)
        return nne_error(NNE_ERR_INVALID_ARG, "nne_image_encode_jpeg: NULL output");
    *out = NULL;
    *out_size = 0;
    nne_status s = check_image("nne_image_encode_jpeg", img);
    if (s != NNE_OK) return s;
    return nne_image_jpeg_encode(img, quality, out, out_size);
}

nne_status nne_image_save(const char *path, const nne_image *img) {
    if (!path) return nne_error(NNE_ERR_INVALID_ARG, "nne_image_save: path is NULL");
    nne_image_format fmt = nne_image_format_from_path(path);
    if (fmt == NNE_IMAGE_FORMAT_UNKNOWN)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "%s: unknown image extension (use .png, .jpg, .ppm, .pgm or .pnm)", path);
    const char *dot = strrchr(path, '.');
    if (strcasecmp(dot, ".pnm") == 0 && img && img->channels == 1) fmt = NNE_IMAGE_FORMAT_PGM;
    uint8_t *buf;
    size_t n;
    nne_status s = nne_image_encode(img, fmt, &buf, &n);
    if (s != NNE_OK) {
        /* Prefix the message with the path so the caller knows which save failed. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nne_last_error());
        return nne_error(s, "%s: %s", path, msg);
    }
    s = nne_file_write_atomic(path, buf, n);
    nne_free(buf);
    return s;
}

nne_status nne_image_drop_alpha(const nne_image *src, nne_image *dst) {
    if (!dst) return nne_error(NNE_ERR_INVALID_ARG, "nne_image_drop_alpha: dst is NULL");
    memset(dst, 0, sizeof *dst);
    nne_status s = check_image("nne_image_drop_alpha", src);
    if (s != NNE_OK) return s;
    int cin = src->channels, cout = (cin == 2 || cin == 4) ? cin - 1 : cin;
    s = nne_image_alloc(dst, src->width, src->height, cout);
    if (s != NNE_OK) return s;
    size_t npx = (size_t)src->width * (size_t)src->height;
    const uint8_t *in = src->data;
    uint8_t *o = dst->data;
    if (cin == cout) {
        memcpy(o, in, npx * (size_t)cin);
        return NNE_OK;
    }
    for (size_t i = 0; i < npx; i++, in += cin, o += cout) memcpy(o, in, (size_t)cout);
    return NNE_OK;
}

nne_status nne_image_to_rgb(const nne_image *src, nne_image *dst) {
    if (!dst) return nne_error(NNE_ERR_INVALID_ARG, "nne_image_to_rgb: dst is NULL");
    memset(dst, 0, sizeof *dst);
    nne_status s = check_image("nne_image_to_rgb", src);
    if (s != NNE_OK) return s;
    if (src->channels == 2 || src->channels == 4)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "nne_image_to_rgb: image has alpha (%d channels); drop it first with "
                         "nne_image_drop_alpha",
                         (int)src->channels);
    s = nne_image_alloc(dst, src->width, src->height, 3);
    if (s != NNE_OK) return s;
    size_t npx = (size_t)src->width * (size_t)src->height;
    if (src->channels == 3) {
        memcpy(dst->data, src->data, npx * 3);
        return NNE_OK;
    }
    const uint8_t *in = src->data;
    uint8_t *o = dst->data;
    for (size_t i = 0; i < npx; i++, o += 3) o[0] = o[1] = o[2] = in[i];
    return NNE_OK;
}
