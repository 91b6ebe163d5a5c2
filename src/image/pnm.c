/* Binary Netpbm: P5 (PGM, gray) and P6 (PPM, RGB).
 *
 * Reading accepts any maxval 1..65535 (two bytes per sample, big-endian, above 255) and
 * rescales samples to 0..255 with round(v * 255 / maxval); samples above maxval are an
 * error. Comments are allowed anywhere in the header before the maxval's terminating
 * whitespace. Bytes after the first image's raster are ignored (Netpbm allows several
 * images in one stream). Writing always uses maxval 255. See docs/image-io.md. */
#include <stdio.h>
#include <string.h>

#include "image/image_internal.h"

static int is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

typedef struct pnm_reader {
    const uint8_t *buf;
    size_t n, pos;
    const char *name, *kind; /* kind: "PGM" or "PPM", for messages */
} pnm_reader;

/* Skips whitespace and comments, then reads an unsigned decimal number (saturating at
 * UINT32_MAX; the caller checks the range). */
static nne_status pnm_read_uint(pnm_reader *r, const char *field, uint32_t *out) {
    for (;;) {
        if (r->pos >= r->n)
            return nne_error(NNE_ERR_FORMAT, "%s: truncated %s header (%s)", r->name, r->kind,
                             field);
        uint8_t c = r->buf[r->pos];
        if (is_space(c)) {
            r->pos++;
        } else if (c == '#') {
            while (r->pos < r->n && r->buf[r->pos] != '\n' && r->buf[r->pos] != '\r') r->pos++;
        } else {
            break;
        }
    }
    if (r->buf[r->pos] < '0' || r->buf[r->pos] > '9')
        return nne_error(NNE_ERR_FORMAT, "%s: bad %s header: expected %s, found byte 0x%02x",
                         r->name, r->kind, field, r->buf[r->pos]);
    uint64_t v = 0;
    while (r->pos < r->n && r->buf[r->pos] >= '0' && r->buf[r->pos] <= '9') {
        v = v * 10 + (uint64_t)(r->buf[r->pos++] - '0');
        if (v > UINT32_MAX) v = UINT32_MAX; /* saturate: no overflow on long digit runs */
    }
    if (r->pos >= r->n)
        return nne_error(NNE_ERR_FORMAT, "%s: truncated %s header (%s)", r->name, r->kind, field);
    if (!is_space(r->buf[r->pos]) && r->buf[r->pos] != '#')
        return nne_error(NNE_ERR_FORMAT, "%s: bad %s header: %s followed by byte 0x%02x", r->name,
                         r->kind, field, r->buf[r->pos]);
    *out = (uint32_t)v;
    return NNE_OK;
}

nne_status nne_image_pnm_decode(const uint8_t *buf, size_t n, int flags, const char *name,
                                nne_image *img) {
    pnm_reader r = {buf, n, 2, name, buf[1] == '5' ? "PGM" : "PPM"};
    const int cin = buf[1] == '5' ? 1 : 3;
    const int cout = (cin == 1 && (flags & NNE_IMAGE_LOAD_RGB)) ? 3 : cin;
    uint32_t w, h, maxval;
    nne_status s;
    if ((s = pnm_read_uint(&r, "width", &w)) != NNE_OK ||
        (s = pnm_read_uint(&r, "height", &h)) != NNE_OK)
        return s;
    size_t out_size;
    if ((s = nne_image_check_dims(name, w, h, cout, &out_size)) != NNE_OK) return s;
    if ((s = pnm_read_uint(&r, "maxval", &maxval)) != NNE_OK) return s;
    if (maxval == 0 || maxval > 65535)
        return nne_error(NNE_ERR_FORMAT, "%s: bad %s maxval %u (must be 1..65535)", name, r.kind,
                         (unsigned)maxval);
    /* Exactly one whitespace byte separates the header from the raster. As in libnetpbm, a
     * comment right after the maxval is skipped and its line end is that byte. */
    if (r.buf[r.pos] == '#') {
        while (r.pos < n && r.buf[r.pos] != '\n' && r.buf[r.pos] != '\r') r.pos++;
        if (r.pos >= n)
            return nne_error(NNE_ERR_FORMAT, "%s: truncated %s header (comment)", name, r.kind);
    }
    r.pos++; /* pnm_read_uint guarantees a whitespace byte here */

    const size_t bps = maxval > 255 ? 2 : 1; /* bytes per sample */
    const size_t npx = (size_t)w * h, nsamples = npx * (size_t)cin;
    size_t need;
    if (!nne_size_mul(nsamples, bps, &need))
        return nne_error(NNE_ERR_LIMIT, "%s: image size overflows", name);
    if (n - r.pos < need)
        return nne_error(NNE_ERR_FORMAT, "%s: truncated %s raster (%zu of %zu bytes)", name, r.kind,
                         n - r.pos, need);

    uint8_t *data = nne_malloc(out_size);
    if (!data) return NNE_ERR_NOMEM;
    const uint8_t *p = buf + r.pos;
    for (size_t i = 0; i < nsamples; i++) {
        uint32_t v = bps == 1 ? p[i] : ((uint32_t)p[2 * i] << 8 | p[2 * i + 1]);
        if (v > maxval) {
            size_t px = i / (size_t)cin;
            nne_free(data);
            return nne_error(NNE_ERR_FORMAT, "%s: %s sample %u exceeds maxval %u at (x=%zu, y=%zu)",
                             name, r.kind, (unsigned)v, (unsigned)maxval, px % w, px / w);
        }
        /* v * 255 <= 65535 * 255 fits in 32 bits; rounds to nearest. */
        uint8_t v8 = maxval == 255 ? (uint8_t)v : (uint8_t)((v * 255 + maxval / 2) / maxval);
        if (cout == cin) {
            data[i] = v8;
        } else { /* gray -> RGB */
            data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = v8;
        }
    }
    img->width = (int32_t)w;
    img->height = (int32_t)h;
    img->channels = cout;
    img->data = data;
    return NNE_OK;
}

nne_status nne_image_pnm_encode(const nne_image *img, nne_image_format fmt, uint8_t **out,
                                size_t *out_size) {
    const int want = fmt == NNE_IMAGE_FORMAT_PGM ? 1 : 3;
    if (img->channels != want)
        return nne_error(NNE_ERR_INVALID_ARG, "%s takes %d channel%s, image has %d",
                         want == 1 ? "PGM" : "PPM", want, want == 1 ? "" : "s", (int)img->channels);
    char header[64];
    int hl = snprintf(header, sizeof header, "P%c\n%d %d\n255\n", want == 1 ? '5' : '6',
                      (int)img->width, (int)img->height);
    size_t raster = (size_t)img->width * (size_t)img->height * (size_t)want, total;
    if (!nne_size_add(raster, (size_t)hl, &total))
        return nne_error(NNE_ERR_LIMIT, "image size overflows");
    uint8_t *buf = nne_malloc(total);
    if (!buf) return NNE_ERR_NOMEM;
    memcpy(buf, header, (size_t)hl);
    memcpy(buf + hl, img->data, raster);
    *out = buf;
    *out_size = total;
    return NNE_OK;
}
