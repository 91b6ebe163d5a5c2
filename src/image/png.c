/* PNG through libpng (1.6).
 *
 * Error handling: libpng reports errors by calling our error function, which records the
 * message and longjmps back to the setjmp in png_decode_run / png_encode_run. Everything
 * those functions allocate is reachable from the context struct that lives in the caller's
 * frame, so no local variable of the function that called setjmp is read after a longjmp
 * (no volatile needed, no -Wclobbered), and the caller frees it on both paths. libpng's
 * warnings are recorded, never printed.
 *
 * Decoding reads from memory through a bounds-checked read function; the image size is
 * checked against NNE_IMAGE_MAX_DIM / NNE_IMAGE_MAX_PIXELS before the pixel buffer is
 * allocated, and libpng's own limits (dimensions, ancillary chunk size and count) are set
 * so a hostile file cannot make it allocate much either. See docs/image-io.md. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "image/image_internal.h"

/* Largest ancillary chunk libpng may buffer (libpng's own default, stated explicitly):
 * PLTE/tRNS need < 1 KiB, but a file with a large (ignored) metadata chunk should still
 * load, and libpng rejects any chunk longer than this. */
#define PNG_CHUNK_MALLOC_MAX (8u << 20)
/* Most ancillary chunks libpng keeps (we keep none of the ones it stores). */
#define PNG_CHUNK_CACHE_MAX 128

typedef struct png_err {
    nne_status status; /* NNE_OK until the first error */
    char msg[256];     /* the first error */
    char warning[128]; /* the first warning, to explain "Invalid IHDR data" */
} png_err;

static int contains(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

static void png_err_set(png_err *e, nne_status s, const char *msg) {
    if (e->status != NNE_OK) return; /* keep the first, most specific, error */
    e->status = s;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_err *e = png_get_error_ptr(png);
    if (e->status == NNE_OK) {
        /* Map libpng's messages to our status codes; anything else is a format error. */
        nne_status s = NNE_ERR_FORMAT;
        const int bad_ihdr = contains(msg, "Invalid IHDR data");
        if (contains(msg, "CRC error"))
            s = NNE_ERR_CHECKSUM;
        else if (contains(msg, "too large"))
            s = NNE_ERR_LIMIT;
        else if (contains(msg, "Out of memory") || contains(msg, "Out of Memory") ||
                 contains(msg, "out of memory"))
            s = NNE_ERR_NOMEM;
        /* png_check_IHDR warns about each problem and then fails with a generic message. */
        if (bad_ihdr &&
            (contains(e->warning, "exceeds user limit") || contains(e->warning, "too large")))
            s = NNE_ERR_LIMIT;
        if (bad_ihdr && e->warning[0]) {
            char full[sizeof e->msg];
            snprintf(full, sizeof full, "%s (%s)", msg, e->warning);
            png_err_set(e, s, full);
        } else {
            png_err_set(e, s, msg);
        }
    }
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    png_err *e = png_get_error_ptr(png);
    if (!e->warning[0]) snprintf(e->warning, sizeof e->warning, "%s", msg);
}

/* Known ancillary chunks that do not affect 8-bit pixel values as we define them (no colour
 * management, no compositing): libpng skips them instead of parsing them, which keeps the
 * attack surface and the work on hostile files small. */
static const png_byte ignored_chunks[] = {
    'b', 'K', 'G', 'D', 0,   'c', 'H', 'R', 'M', 0,   'e', 'X', 'I', 'f', 0,   'g', 'A',
    'M', 'A', 0,   'h', 'I', 'S', 'T', 0,   'i', 'C', 'C', 'P', 0,   'i', 'T', 'X', 't',
    0,   'o', 'F', 'F', 's', 0,   'p', 'C', 'A', 'L', 0,   'p', 'H', 'Y', 's', 0,   's',
    'B', 'I', 'T', 0,   's', 'C', 'A', 'L', 0,   's', 'P', 'L', 'T', 0,   's', 'R', 'G',
    'B', 0,   't', 'E', 'X', 't', 0,   't', 'I', 'M', 'E', 0,   'z', 'T', 'X', 't', 0,
};

/* ---------------------------------------------------------------- decoding */

typedef struct png_dec {
    png_err err;
    const uint8_t *buf;
    size_t n, pos;
    const char *name;
    int flags;
    uint8_t *data; /* the pixels while decoding; the caller frees them on failure */
    int32_t width, height, channels;
} png_dec;

static void chunk_name(png_uint_32 t, char out[5]) {
    for (int i = 0; i < 4; i++) {
        char c = (char)((t >> (24 - 8 * i)) & 0xFF);
        out[i] = ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) ? c : '?';
    }
    out[4] = 0;
}

static void png_dec_read(png_structp png, png_bytep out, size_t len) {
    png_dec *d = png_get_io_ptr(png);
    if (len > d->n - d->pos) {
        char msg[64], cn[5];
        png_uint_32 type = png_get_io_chunk_type(png);
        chunk_name(type, cn);
        png_uint_32 loc = png_get_io_state(png) & PNG_IO_MASK_LOC;
        if (loc == PNG_IO_SIGNATURE)
            snprintf(msg, sizeof msg, "truncated PNG (signature)");
        else if (loc == PNG_IO_CHUNK_HDR && type == 0)
            snprintf(msg, sizeof msg, "truncated PNG (chunk header)");
        else if (loc == PNG_IO_CHUNK_HDR)
            snprintf(msg, sizeof msg, "truncated PNG (chunk header after %s)", cn);
        else if (loc == PNG_IO_CHUNK_CRC)
            snprintf(msg, sizeof msg, "truncated PNG (%s CRC)", cn);
        else
            snprintf(msg, sizeof msg, "truncated PNG (%s)", cn);
        png_err_set(&d->err, NNE_ERR_FORMAT, msg);
        png_error(png, msg);
    }
    memcpy(out, d->buf + d->pos, len);
    d->pos += len;
}

/* Returns NNE_OK, or an error whose message is in d->err.msg (without the file name) or, if
 * d->err.msg is empty, already set with nne_error. */
static nne_status png_decode_run(png_dec *d, png_structp png, png_infop info) {
    if (setjmp(png_jmpbuf(png))) return d->err.status != NNE_OK ? d->err.status : NNE_ERR_FORMAT;

    png_set_read_fn(png, d, png_dec_read);
    png_set_user_limits(png, NNE_IMAGE_MAX_DIM, NNE_IMAGE_MAX_DIM);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MALLOC_MAX);
    png_set_chunk_cache_max(png, PNG_CHUNK_CACHE_MAX);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks,
                                (int)(sizeof ignored_chunks / 5));
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    /* A tRNS chunk counts only if libpng kept entries: when a PLTE follows tRNS ("tRNS must
     * be after"), libpng zeroes num_trans but keeps the valid flag to detect duplicates, and
     * png_set_tRNS_to_alpha then adds no alpha (found by fuzz_image). */
    int num_trans = 0;
    png_bytep trans_alpha = NULL;
    png_color_16p trans_color = NULL;
    const int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0 &&
                         png_get_tRNS(png, info, &trans_alpha, &num_trans, &trans_color) != 0 &&
                         num_trans > 0;
    const int has_alpha = (ctype & PNG_COLOR_MASK_ALPHA) || has_trns;
    const int is_color = (ctype & PNG_COLOR_MASK_COLOR) != 0; /* palette included */
    const int want_rgb = (d->flags & NNE_IMAGE_LOAD_RGB) != 0;
    const int drop = (d->flags & NNE_IMAGE_LOAD_DROP_ALPHA) != 0;
    if (want_rgb && has_alpha && !drop) {
        png_err_set(&d->err, NNE_ERR_UNSUPPORTED,
                    "image has an alpha channel; load with NNE_IMAGE_LOAD_DROP_ALPHA to "
                    "discard it");
        return d->err.status;
    }
    const int keep_alpha = has_alpha && !drop;
    const int channels = (is_color || want_rgb ? 3 : 1) + keep_alpha;
    size_t size;
    nne_status s = nne_image_check_dims(d->name, w, h, channels, &size);
    if (s != NNE_OK) return s;

    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (!is_color && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (has_trns && keep_alpha) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    if (has_alpha && drop) png_set_strip_alpha(png);
    if (want_rgb && !is_color) png_set_gray_to_rgb(png);
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    const size_t stride = (size_t)w * (size_t)channels;
    if (png_get_bit_depth(png, info) != 8 || png_get_channels(png, info) != channels ||
        png_get_rowbytes(png, info) != stride) {
        png_err_set(&d->err, NNE_ERR_INTERNAL, "unexpected libpng output layout");
        return d->err.status;
    }
    d->data = nne_malloc(size);
    if (!d->data) {
        png_err_set(&d->err, NNE_ERR_NOMEM, "out of memory for the pixels");
        return d->err.status;
    }
    /* With interlace handling, each pass writes its pixels into the full rows (the
     * "sparkle" mode of png_combine_row); after the last pass every pixel is set. */
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++) png_read_row(png, d->data + y * stride, NULL);
    /* Read up to IEND so that truncated files and CRC errors after the pixels are caught. */
    png_read_end(png, NULL);
    d->width = (int32_t)w;
    d->height = (int32_t)h;
    d->channels = channels;
    return NNE_OK;
}

nne_status nne_image_png_decode(const uint8_t *buf, size_t n, int flags, const char *name,
                                nne_image *img) {
    png_dec d;
    memset(&d, 0, sizeof d);
    d.buf = buf;
    d.n = n;
    d.name = name;
    d.flags = flags;
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &d.err, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return nne_error(NNE_ERR_NOMEM, "%s: cannot create the libpng decoder", name);
    }
    nne_status s = png_decode_run(&d, png, info);
    png_destroy_read_struct(&png, &info, NULL);
    if (s != NNE_OK) {
        nne_free(d.data);
        if (d.err.msg[0]) return nne_error(s, "%s: %s", name, d.err.msg);
        return s; /* message already set */
    }
    img->width = d.width;
    img->height = d.height;
    img->channels = d.channels;
    img->data = d.data;
    return NNE_OK;
}

/* ---------------------------------------------------------------- encoding */

typedef struct png_enc {
    png_err err;
    uint8_t *buf; /* the output while encoding; the caller frees it on failure */
    size_t len, cap;
} png_enc;

static void png_enc_write(png_structp png, png_bytep data, size_t len) {
    png_enc *e = png_get_io_ptr(png);
    if (len > e->cap - e->len) {
        size_t need, cap = e->cap ? e->cap : 4096;
        if (!nne_size_add(e->len, len, &need)) {
            png_err_set(&e->err, NNE_ERR_NOMEM, "PNG output size overflows");
            png_error(png, e->err.msg);
        }
        while (cap < need) {
            if (!nne_size_mul(cap, 2, &cap)) cap = need;
        }
        uint8_t *nb = nne_realloc_array(e->buf, cap, 1);
        if (!nb) {
            png_err_set(&e->err, NNE_ERR_NOMEM, "out of memory for the PNG output");
            png_error(png, e->err.msg);
        }
        e->buf = nb;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, data, len);
    e->len += len;
}

static void png_enc_flush(png_structp png) { (void)png; }

static nne_status png_encode_run(png_enc *e, png_structp png, png_infop info,
                                 const nne_image *img) {
    if (setjmp(png_jmpbuf(png))) return e->err.status != NNE_OK ? e->err.status : NNE_ERR_INTERNAL;
    static const int color_types[4] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_write_fn(png, e, png_enc_write, png_enc_flush);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 color_types[img->channels - 1], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int32_t y = 0; y < img->height; y++) png_write_row(png, img->data + (size_t)y * stride);
    png_write_end(png, NULL);
    return NNE_OK;
}

nne_status nne_image_png_encode(const nne_image *img, uint8_t **out, size_t *out_size) {
    png_enc e;
    memset(&e, 0, sizeof e);
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &e.err, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return nne_error(NNE_ERR_NOMEM, "cannot create the libpng encoder");
    }
    nne_status s = png_encode_run(&e, png, info, img);
    png_destroy_write_struct(&png, &info);
    if (s != NNE_OK) {
        nne_free(e.buf);
        return nne_error(s, "PNG encoding failed: %s", e.err.msg[0] ? e.err.msg : "libpng error");
    }
    *out = e.buf;
    *out_size = e.len;
    return NNE_OK;
}
