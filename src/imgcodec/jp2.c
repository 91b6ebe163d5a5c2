/* JPEG 2000 through OpenJPEG, a .jp2 file in memory.
 *
 * Rate control: one quality layer at a fixed compression ratio (tcp_rates[0] = ratio with
 * cp_disto_alloc), i.e. the codestream targets 24 / ratio bits per pixel for RGB8; OpenJPEG's
 * PCRD truncation lands at or just under the target (the few dozen bytes of jp2 boxes come
 * on top). The knob is that ratio: larger = smaller file, lower quality. Transform: the
 * irreversible 9/7 wavelet with the irreversible colour transform (ICT, RGB -> YCbCr) on the
 * RGB samples, 6 resolution levels (fewer for tiny images), 64x64 code blocks, no tiling,
 * LRCP -- OpenJPEG's (opj_compress's) defaults otherwise.
 *
 * CompressAI's anchor used ffmpeg 3.4 + libopenjpeg with -compression_level L (ratio 2L) on
 * yuv444p input converted by ffmpeg; docs/rd.md compares the two. */
#include <stdio.h>
#include <string.h>

#include <openjpeg.h>

#include "imgcodec/imgcodec_internal.h"

static const char *jp2_version(const nne_imgcodec *c, char *buf, size_t n) {
    (void)c;
    snprintf(buf, n, "OpenJPEG %s", opj_version());
    return buf;
}

/* A growing memory buffer behind an opj_stream (writes may seek back: the jp2 writer patches
 * box lengths), or a fixed one for reading. */
typedef struct mem_stream {
    uint8_t *data;
    size_t size, cap, pos;
    bool failed; /* allocation failure while writing */
} mem_stream;

static OPJ_SIZE_T ms_write(void *buf, OPJ_SIZE_T n, void *user) {
    mem_stream *m = user;
    size_t end;
    if (!nne_size_add(m->pos, n, &end)) goto fail;
    if (end > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < end) cap *= 2;
        uint8_t *p = nne_realloc_array(m->data, cap, 1);
        if (!p) goto fail;
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->pos, buf, n);
    m->pos = end;
    if (end > m->size) m->size = end;
    return n;
fail:
    m->failed = true;
    return (OPJ_SIZE_T)-1;
}

static OPJ_SIZE_T ms_read(void *buf, OPJ_SIZE_T n, void *user) {
    mem_stream *m = user;
    if (m->pos >= m->size) return (OPJ_SIZE_T)-1; /* end of stream */
    const size_t k = n < m->size - m->pos ? n : m->size - m->pos;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

static OPJ_OFF_T ms_skip(OPJ_OFF_T n, void *user) {
    mem_stream *m = user;
    if (n < 0 ? (size_t)-n > m->pos : (uint64_t)n > SIZE_MAX - m->pos) return -1;
    m->pos = n < 0 ? m->pos - (size_t)-n : m->pos + (size_t)n;
    return n;
}

static OPJ_BOOL ms_seek(OPJ_OFF_T n, void *user) {
    mem_stream *m = user;
    if (n < 0) return OPJ_FALSE;
    m->pos = (size_t)n;
    return OPJ_TRUE;
}

static opj_stream_t *ms_open(mem_stream *m, bool input) {
    opj_stream_t *st = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, input ? OPJ_TRUE : OPJ_FALSE);
    if (!st) return NULL;
    opj_stream_set_user_data(st, m, NULL);
    if (input) {
        opj_stream_set_user_data_length(st, m->size);
        opj_stream_set_read_function(st, ms_read);
    } else {
        opj_stream_set_write_function(st, ms_write);
    }
    opj_stream_set_skip_function(st, ms_skip);
    opj_stream_set_seek_function(st, ms_seek);
    return st;
}

/* OpenJPEG reports through callbacks: keep the first error message, drop the rest. */
static void on_error(const char *msg, void *user) {
    char *e = user;
    if (!e[0]) snprintf(e, 256, "%s", msg);
    size_t k = strlen(e);
    while (k && (e[k - 1] == '\n' || e[k - 1] == '\r')) e[--k] = 0;
}
static void on_quiet(const char *msg, void *user) {
    (void)msg;
    (void)user;
}
static void set_handlers(opj_codec_t *codec, char *err) {
    opj_set_error_handler(codec, on_error, err);
    opj_set_warning_handler(codec, on_quiet, NULL);
    opj_set_info_handler(codec, on_quiet, NULL);
}

static nne_status jp2_encode(const nne_imgcodec *c, const nne_image *img, double ratio,
                             uint8_t **out, size_t *out_size) {
    const int32_t w = img->width, h = img->height;
    opj_image_cmptparm_t cp[3];
    memset(cp, 0, sizeof cp);
    for (int k = 0; k < 3; k++) {
        cp[k].dx = cp[k].dy = 1;
        cp[k].w = (OPJ_UINT32)w;
        cp[k].h = (OPJ_UINT32)h;
        cp[k].prec = 8;
        cp[k].sgnd = 0;
    }
    opj_image_t *im = opj_image_create(3, cp, OPJ_CLRSPC_SRGB);
    if (!im) return nne_error(NNE_ERR_NOMEM, "jp2: cannot allocate the image");
    im->x0 = im->y0 = 0;
    im->x1 = (OPJ_UINT32)w;
    im->y1 = (OPJ_UINT32)h;
    const size_t np = (size_t)w * (size_t)h;
    for (size_t i = 0; i < np; i++)
        for (int k = 0; k < 3; k++) im->comps[k].data[i] = img->data[3 * i + (size_t)k];

    opj_cparameters_t p;
    opj_set_default_encoder_parameters(&p);
    p.tcp_numlayers = 1;
    p.tcp_rates[0] = (float)ratio;
    p.cp_disto_alloc = 1;
    p.irreversible = 1;
    p.tcp_mct = 1;
    /* 6 resolutions need both sides >= 32 (2^5); small images get fewer. */
    while (p.numresolution > 1 && ((w >> (p.numresolution - 1)) < 1 || (h >> (p.numresolution - 1)) < 1))
        p.numresolution--;

    char err[256] = "";
    mem_stream m = {0};
    opj_codec_t *codec = opj_create_compress(OPJ_CODEC_JP2);
    opj_stream_t *st = NULL;
    nne_status s = NNE_OK;
    if (!codec) {
        s = nne_error(NNE_ERR_NOMEM, "jp2: cannot create the encoder");
        goto done;
    }
    set_handlers(codec, err);
    opj_codec_set_threads(codec, 1);
    if (!opj_setup_encoder(codec, &p, im)) {
        s = nne_error(NNE_ERR_INVALID_ARG, "jp2: encoder setup failed: %s", err);
        goto done;
    }
    st = ms_open(&m, false);
    if (!st) {
        s = nne_error(NNE_ERR_NOMEM, "jp2: cannot create the stream");
        goto done;
    }
    if (!opj_start_compress(codec, im, st) || !opj_encode(codec, st) ||
        !opj_end_compress(codec, st)) {
        s = m.failed ? nne_error(NNE_ERR_NOMEM, "jp2: out of memory")
                     : nne_error(NNE_ERR_INTERNAL, "jp2: encoding failed: %s", err);
        goto done;
    }
    opj_stream_destroy(st); /* flushes the stream's buffer into m */
    st = NULL;
    if (m.failed) {
        s = nne_error(NNE_ERR_NOMEM, "jp2: out of memory");
        goto done;
    }
    s = nne_imgcodec_copy_out(c, m.data, m.size, out, out_size);
done:
    if (st) opj_stream_destroy(st);
    if (codec) opj_destroy_codec(codec);
    opj_image_destroy(im);
    nne_free(m.data);
    return s;
}

static nne_status jp2_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n,
                             nne_image *img) {
    char err[256] = "";
    mem_stream m = {(uint8_t *)buf, n, n, 0, false}; /* read only: never written through */
    opj_codec_t *codec = opj_create_decompress(OPJ_CODEC_JP2);
    opj_stream_t *st = ms_open(&m, true);
    opj_image_t *im = NULL;
    nne_status s = NNE_OK;
    opj_dparameters_t p;
    opj_set_default_decoder_parameters(&p);
    if (!codec || !st) {
        s = nne_error(NNE_ERR_NOMEM, "jp2: cannot create the decoder");
        goto done;
    }
    set_handlers(codec, err);
    opj_codec_set_threads(codec, 1);
    if (!opj_setup_decoder(codec, &p) || !opj_read_header(st, codec, &im)) {
        s = nne_error(NNE_ERR_FORMAT, "jp2: bad header: %s", err);
        goto done;
    }
    const uint64_t w = im->x1 - im->x0, h = im->y1 - im->y0;
    if (im->numcomps != 3)
        s = nne_error(NNE_ERR_UNSUPPORTED, "jp2: %u components, expected 3", im->numcomps);
    for (unsigned k = 0; !s && k < 3; k++)
        if (im->comps[k].dx != 1 || im->comps[k].dy != 1 || im->comps[k].prec != 8 ||
            im->comps[k].sgnd)
            s = nne_error(NNE_ERR_UNSUPPORTED,
                          "jp2: component %u is not unsigned 8-bit at full resolution", k);
    if (!s) s = nne_imgcodec_alloc_rgb(c, w, h, img); /* limits before decoding the pixels */
    if (s) goto done;
    if (!opj_decode(codec, st, im) || !opj_end_decompress(codec, st)) {
        s = nne_error(NNE_ERR_FORMAT, "jp2: corrupt or truncated stream: %s", err);
        goto done;
    }
    for (unsigned k = 0; k < 3; k++)
        if (!im->comps[k].data || im->comps[k].w != w || im->comps[k].h != h) {
            s = nne_error(NNE_ERR_FORMAT, "jp2: component %u has no data at full size", k);
            goto done;
        }
    const size_t np = (size_t)w * (size_t)h;
    for (size_t i = 0; i < np; i++)
        for (int k = 0; k < 3; k++) {
            const OPJ_INT32 v = im->comps[k].data[i];
            img->data[3 * i + (size_t)k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
done:
    if (s) nne_image_free(img);
    if (im) opj_image_destroy(im);
    if (st) opj_stream_destroy(st);
    if (codec) opj_destroy_codec(codec);
    return s;
}

const nne_imgcodec nne_imgcodec_jp2 = {
    .name = "jp2",
    .label = "JPEG 2000 (OpenJPEG)",
    .knob = "ratio",
    .q_min = 1,
    .q_max = 1000,
    .direction = -1,
    .integer = false,
    .settings = "one layer at compression ratio r (24/r bpp target), 9/7 wavelet + ICT, "
                "6 resolutions, .jp2",
    .anchor = "jpeg2000",
    .n_sweep = 9,
    .sweep = {240, 160, 120, 80, 60, 40, 30, 20, 16},
    .version = jp2_version,
    .encode = jp2_encode,
    .decode = jp2_decode,
};
