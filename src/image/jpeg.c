/* JPEG decode/encode through libjpeg-turbo (Debian libjpeg62-turbo).
 *
 * Decoding: 8-bit baseline/progressive JPEG, gray (1 channel) or YCbCr/RGB (3 channels);
 * CMYK/YCCK are refused (NNE_ERR_UNSUPPORTED). libjpeg reports errors through a longjmp from
 * our error manager, which captures the message instead of printing it. Dimensions are
 * checked against the nnedge limits after the header is read and before any pixel buffer is
 * allocated. Warnings (e.g. premature end of data, which libjpeg pads with gray) are errors:
 * a truncated file must not decode silently. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "image/image_internal.h"

typedef struct jerr_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_mgr;

static void on_error_exit(j_common_ptr cinfo) {
    jerr_mgr *e = (jerr_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings (msg_level -1) are corrupt-data conditions: turn them into errors. Trace messages
 * (msg_level >= 0) are ignored. */
static void on_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level < 0) on_error_exit(cinfo);
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void init_err(struct jpeg_error_mgr *pub) {
    jpeg_std_error(pub);
    pub->error_exit = on_error_exit;
    pub->emit_message = on_emit_message;
    pub->output_message = on_output_message;
}

nne_status nne_image_jpeg_decode(const uint8_t *buf, size_t n, int flags, const char *name,
                                 nne_image *img) {
    struct jpeg_decompress_struct cinfo;
    jerr_mgr err;
    /* Written between setjmp and longjmp: volatile so the error path sees the value. */
    uint8_t *volatile pixels = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = &err.pub;
    init_err(&err.pub);
    err.msg[0] = 0;
    if (setjmp(err.jb)) {
        nne_free(pixels);
        jpeg_destroy_decompress(&cinfo);
        memset(img, 0, sizeof *img);
        return nne_error(NNE_ERR_FORMAT, "%s: corrupt JPEG: %s", name, err.msg);
    }
    jpeg_create_decompress(&cinfo);
    /* libjpeg's memory source takes an unsigned long size. */
    if ((unsigned long)n != n) longjmp(err.jb, 1);
    jpeg_mem_src(&cinfo, buf, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    int channels;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        channels = (flags & NNE_IMAGE_LOAD_RGB) ? 3 : 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        channels = 3;
        break;
    default:
        jpeg_destroy_decompress(&cinfo);
        return nne_error(NNE_ERR_UNSUPPORTED, "%s: JPEG color space %d (CMYK/YCCK) is not supported",
                         name, (int)cinfo.jpeg_color_space);
    }
    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    size_t size;
    nne_status s = nne_image_check_dims(name, cinfo.image_width, cinfo.image_height, channels, &size);
    if (s != NNE_OK) {
        jpeg_destroy_decompress(&cinfo);
        return s;
    }
    pixels = nne_malloc(size);
    if (!pixels) {
        jpeg_destroy_decompress(&cinfo);
        return NNE_ERR_NOMEM;
    }
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_components != channels) {
        snprintf(err.msg, sizeof err.msg, "unexpected output components %d",
                 (int)cinfo.output_components);
        longjmp(err.jb, 1);
    }
    size_t stride = (size_t)cinfo.output_width * (size_t)channels;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    img->width = (int32_t)cinfo.output_width;
    img->height = (int32_t)cinfo.output_height;
    img->channels = channels;
    img->data = pixels;
    return NNE_OK;
}

nne_status nne_image_jpeg_encode(const nne_image *img, int quality, uint8_t **out,
                                 size_t *out_size) {
    if (quality < 1 || quality > 100)
        return nne_error(NNE_ERR_INVALID_ARG, "JPEG quality %d outside [1, 100]", quality);
    if (img->channels != 1 && img->channels != 3)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "JPEG stores gray or RGB; this image has %d channels (drop alpha first)",
                         (int)img->channels);
    struct jpeg_compress_struct cinfo;
    jerr_mgr err;
    /* libjpeg grows this buffer with malloc and writes the pointer through &dst.buf; like
     * err.msg it is read after a longjmp, so it lives in memory whose address was taken. */
    struct {
        unsigned char *buf;
        unsigned long size;
    } dst = {NULL, 0};
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = &err.pub;
    init_err(&err.pub);
    err.msg[0] = 0;
    if (setjmp(err.jb)) {
        jpeg_destroy_compress(&cinfo);
        free(dst.buf); /* allocated by libjpeg with malloc */
        return nne_error(NNE_ERR_INTERNAL, "JPEG encoder: %s", err.msg);
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &dst.buf, &dst.size);
    cinfo.image_width = (JDIMENSION)img->width;
    cinfo.image_height = (JDIMENSION)img->height;
    cinfo.input_components = img->channels;
    cinfo.in_color_space = img->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    /* libjpeg's defaults, as Pillow and cjpeg use them: 4:2:0 chroma subsampling, standard
     * Huffman tables, baseline. */
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)img->width * (size_t)img->channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = img->data + (size_t)cinfo.next_scanline * stride;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    /* Hand out an nne_malloc'd copy so that every encoder's output is freed with nne_free. */
    uint8_t *copy = nne_malloc(dst.size);
    if (!copy) {
        free(dst.buf);
        return NNE_ERR_NOMEM;
    }
    memcpy(copy, dst.buf, dst.size);
    free(dst.buf);
    *out = copy;
    *out_size = dst.size;
    return NNE_OK;
}
