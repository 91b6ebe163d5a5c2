/* The bitstream container (.nnc): writer and validating reader. Specification:
 * docs/bitstream.md.
 *
 * Reader discipline (as the latent and model-file readers): magic, then version (before any
 * CRC, so that a later version is reported as such and not as corruption), then the stream
 * count that fixes the header size, the header CRC, every field against its range, the sum
 * of the stream sizes against the buffer, and the payload CRC. The reader returns views into
 * the buffer and allocates nothing. */
#include <string.h>

#include "codec/bitstream_internal.h"
#include "codec/latent_internal.h"
#include "common/le.h"
#include "nnedge/bitstream.h"
#include "nnedge/file.h"
#include "nnedge/image.h"

_Static_assert(NNE_NNC_ID_SIZE == 32,
               "one model id rule (nne_latent_id_field_ok) for both containers");
_Static_assert(NNE_NNC_OFF_STREAMS == NNE_NNC_FIXED_SIZE, "stream table follows the fixed part");

static bool is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

nne_status nne_nnc_padding(int32_t width, int32_t height, int32_t align, int32_t pad[4]) {
    if (!is_pow2(align) || align > NNE_NNC_MAX_ALIGN)
        return nne_error(NNE_ERR_INVALID_ARG, "nnc: align %d is not a power of two in [1, %d]",
                         align, NNE_NNC_MAX_ALIGN);
    if (width < 1 || height < 1)
        return nne_error(NNE_ERR_INVALID_ARG, "nnc: image size %dx%d is empty", width, height);
    const int64_t pw = ((int64_t)width + align - 1) / align * align;
    const int64_t ph = ((int64_t)height + align - 1) / align * align;
    if (pw > NNE_IMAGE_MAX_DIM || ph > NNE_IMAGE_MAX_DIM || pw * ph > NNE_IMAGE_MAX_PIXELS)
        return nne_error(NNE_ERR_LIMIT, "nnc: padded image %lldx%lld exceeds the image limits",
                         (long long)pw, (long long)ph);
    pad[0] = (int32_t)(ph - height) / 2;
    pad[1] = (int32_t)(pw - width) / 2;
    pad[2] = (int32_t)(ph - height) - pad[0];
    pad[3] = (int32_t)(pw - width) - pad[1];
    return NNE_OK;
}

/* Rules shared by the writer (on the struct) and the reader (on u32 fields widened to
 * int64, so nothing is narrowed before it is checked). */
static nne_status check_fields(const char *what, int64_t w, int64_t h, int64_t ch, int64_t align,
                               const int64_t pad[4], int64_t quality, nne_status fmt) {
    if (ch != 3)
        return nne_error(NNE_ERR_UNSUPPORTED, "nnc: %s: %lld image channels (only 3 = RGB)", what,
                         (long long)ch);
    if (w < 1 || h < 1)
        return nne_error(fmt, "nnc: %s: image size %lldx%lld is empty", what, (long long)w,
                         (long long)h);
    if (!is_pow2(align) || align > NNE_NNC_MAX_ALIGN)
        return nne_error(fmt, "nnc: %s: align %lld is not a power of two in [1, %d]", what,
                         (long long)align, NNE_NNC_MAX_ALIGN);
    /* Minimal padding: less than one alignment unit per axis, and an exact multiple. */
    const int64_t pv = pad[0] + pad[2], ph = pad[1] + pad[3];
    for (int i = 0; i < 4; i++)
        if (pad[i] < 0 || pad[i] >= align)
            return nne_error(fmt, "nnc: %s: padding %lld out of range [0, %lld)", what,
                             (long long)pad[i], (long long)align);
    if (pv >= align || ph >= align || (h + pv) % align || (w + ph) % align)
        return nne_error(fmt,
                         "nnc: %s: padding %lld+%lld rows, %lld+%lld columns does not bring "
                         "%lldx%lld to the next multiple of %lld",
                         what, (long long)pad[0], (long long)pad[2], (long long)pad[1],
                         (long long)pad[3], (long long)w, (long long)h, (long long)align);
    if (w + ph > NNE_IMAGE_MAX_DIM || h + pv > NNE_IMAGE_MAX_DIM ||
        (w + ph) * (h + pv) > NNE_IMAGE_MAX_PIXELS)
        return nne_error(NNE_ERR_LIMIT,
                         "nnc: %s: padded image %lldx%lld exceeds the image limits (%d per side, "
                         "%d pixels)",
                         what, (long long)(w + ph), (long long)(h + pv), NNE_IMAGE_MAX_DIM,
                         NNE_IMAGE_MAX_PIXELS);
    if (quality < 0 || quality > NNE_NNC_MAX_QUALITY)
        return nne_error(fmt, "nnc: %s: quality %lld out of range [0, %d]", what,
                         (long long)quality, NNE_NNC_MAX_QUALITY);
    return NNE_OK;
}

/* A tag field: 1..4 bytes of 0x21..0x7E, then NULs. */
static bool tag_ok(const uint8_t t[NNE_NNC_TAG_SIZE]) {
    int n = 0;
    while (n < NNE_NNC_TAG_SIZE && t[n]) {
        if (t[n] < 0x21 || t[n] > 0x7E) return false;
        n++;
    }
    if (n == 0) return false;
    for (int i = n; i < NNE_NNC_TAG_SIZE; i++)
        if (t[i]) return false;
    return true;
}

/* Tags are compared as their 4-byte fields. */
static bool tags_unique(const uint8_t (*tags)[NNE_NNC_TAG_SIZE], int32_t n, int32_t *dup) {
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < i; j++)
            if (memcmp(tags[i], tags[j], NNE_NNC_TAG_SIZE) == 0) {
                *dup = i;
                return false;
            }
    return true;
}

void nne_nnc_fix_checksums(uint8_t *buf, size_t size) {
    if (size < NNE_NNC_OFF_N_STREAMS + 4) return;
    const uint32_t n = nne_le_rd32(buf + NNE_NNC_OFF_N_STREAMS);
    if (n > NNE_NNC_MAX_STREAMS) return;
    const size_t hs = NNE_NNC_HEADER_SIZE(n);
    if (size < hs) return;
    nne_le_wr32(buf + NNE_NNC_OFF_PAYLOAD_CRC, nne_crc32(0, buf + hs, size - hs));
    nne_le_wr32(buf + hs - 4, nne_crc32(0, buf, hs - 4));
}

/* ---- Writer ---------------------------------------------------------------------------- */

nne_status nne_nnc_write_mem(const nne_nnc *c, uint8_t **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    if (!c) return nne_error(NNE_ERR_INVALID_ARG, "nnc: write: NULL container");
    const int64_t pad[4] = {c->pad[0], c->pad[1], c->pad[2], c->pad[3]};
    nne_status s = check_fields("write", c->image_width, c->image_height, c->image_channels,
                                c->align, pad, c->quality, NNE_ERR_INVALID_ARG);
    if (s) return s == NNE_ERR_UNSUPPORTED ? NNE_ERR_INVALID_ARG : s;
    uint8_t id[NNE_NNC_ID_SIZE] = {0};
    memcpy(id, c->model_id, strnlen(c->model_id, NNE_NNC_ID_SIZE));
    if (!nne_latent_id_field_ok(id))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "nnc: write: model id must be 1..%d printable ASCII characters",
                         NNE_NNC_ID_SIZE - 1);
    if (c->n_streams < 1 || c->n_streams > NNE_NNC_MAX_STREAMS)
        return nne_error(NNE_ERR_INVALID_ARG, "nnc: write: %d streams (expected 1..%d)",
                         c->n_streams, NNE_NNC_MAX_STREAMS);
    uint8_t tags[NNE_NNC_MAX_STREAMS][NNE_NNC_TAG_SIZE];
    const size_t hs = NNE_NNC_HEADER_SIZE((size_t)c->n_streams);
    size_t total = hs;
    for (int32_t i = 0; i < c->n_streams; i++) {
        const nne_nnc_stream *st = &c->streams[i];
        const size_t tl = strnlen(st->tag, sizeof st->tag);
        memset(tags[i], 0, NNE_NNC_TAG_SIZE);
        if (tl <= NNE_NNC_TAG_SIZE) memcpy(tags[i], st->tag, tl);
        if (tl > NNE_NNC_TAG_SIZE || !tag_ok(tags[i]))
            return nne_error(NNE_ERR_INVALID_ARG,
                             "nnc: write: stream %d: tag must be 1..%d ASCII characters "
                             "0x21..0x7E",
                             i, NNE_NNC_TAG_SIZE);
        if (st->size && !st->data)
            return nne_error(NNE_ERR_INVALID_ARG, "nnc: write: stream %d has no data", i);
        if (!nne_size_add(total, st->size, &total))
            return nne_error(NNE_ERR_NOMEM, "nnc: write: streams too large");
    }
    int32_t dup;
    if (!tags_unique((const uint8_t(*)[NNE_NNC_TAG_SIZE])tags, c->n_streams, &dup))
        return nne_error(NNE_ERR_INVALID_ARG, "nnc: write: stream %d repeats tag '%s'", dup,
                         c->streams[dup].tag);
    uint8_t *b = nne_calloc(1, total);
    if (!b) return NNE_ERR_NOMEM;
    memcpy(b + NNE_NNC_OFF_MAGIC, NNE_NNC_MAGIC, 8);
    nne_le_wr32(b + NNE_NNC_OFF_VERSION, NNE_NNC_VERSION);
    nne_le_wr32(b + NNE_NNC_OFF_HEADER_SIZE, (uint32_t)hs);
    nne_le_wr32(b + NNE_NNC_OFF_FLAGS, 0);
    nne_le_wr32(b + NNE_NNC_OFF_N_STREAMS, (uint32_t)c->n_streams);
    nne_le_wr32(b + NNE_NNC_OFF_IMAGE_WIDTH, (uint32_t)c->image_width);
    nne_le_wr32(b + NNE_NNC_OFF_IMAGE_HEIGHT, (uint32_t)c->image_height);
    nne_le_wr32(b + NNE_NNC_OFF_IMAGE_CHANNELS, (uint32_t)c->image_channels);
    nne_le_wr32(b + NNE_NNC_OFF_ALIGN, (uint32_t)c->align);
    for (int i = 0; i < 4; i++) nne_le_wr32(b + NNE_NNC_OFF_PAD + 4 * i, (uint32_t)c->pad[i]);
    nne_le_wr32(b + NNE_NNC_OFF_QUALITY, (uint32_t)c->quality);
    memcpy(b + NNE_NNC_OFF_MODEL_ID, id, NNE_NNC_ID_SIZE);
    memcpy(b + NNE_NNC_OFF_MODEL_HASH, c->model_hash, NNE_NNC_HASH_SIZE);
    size_t pos = hs;
    for (int32_t i = 0; i < c->n_streams; i++) {
        uint8_t *e = b + NNE_NNC_OFF_STREAMS + NNE_NNC_ENTRY_SIZE * i;
        memcpy(e, tags[i], NNE_NNC_TAG_SIZE);
        nne_le_wr64(e + 8, (uint64_t)c->streams[i].size);
        if (c->streams[i].size) memcpy(b + pos, c->streams[i].data, c->streams[i].size);
        pos += c->streams[i].size;
    }
    nne_nnc_fix_checksums(b, total);
    *out = b;
    *out_size = total;
    return NNE_OK;
}

nne_status nne_nnc_write_file(const nne_nnc *c, const char *path) {
    uint8_t *b;
    size_t n;
    nne_status s = nne_nnc_write_mem(c, &b, &n);
    if (s) return s;
    s = nne_file_write_atomic(path, b, n);
    nne_free(b);
    return s;
}

/* ---- Reader ---------------------------------------------------------------------------- */

static nne_status read_mem(const uint8_t *b, size_t size, nne_nnc *out) {
    if (size < 8 || memcmp(b, NNE_NNC_MAGIC, 8) != 0)
        return nne_error(NNE_ERR_FORMAT, "nnc: not an nnedge bitstream (bad magic)");
    if (size < NNE_NNC_OFF_VERSION + 4)
        return nne_error(NNE_ERR_FORMAT, "nnc: truncated: %zu bytes", size);
    const uint32_t version = nne_le_rd32(b + NNE_NNC_OFF_VERSION);
    if (version != NNE_NNC_VERSION)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "nnc: version %u is not supported (this reader knows version %d)", version,
                         NNE_NNC_VERSION);
    if (size < NNE_NNC_OFF_N_STREAMS + 4)
        return nne_error(NNE_ERR_FORMAT, "nnc: truncated: %zu bytes", size);
    const uint32_t n = nne_le_rd32(b + NNE_NNC_OFF_N_STREAMS);
    if (n == 0) return nne_error(NNE_ERR_FORMAT, "nnc: no streams");
    if (n > NNE_NNC_MAX_STREAMS)
        return nne_error(NNE_ERR_LIMIT, "nnc: %u streams exceed the limit of %d", n,
                         NNE_NNC_MAX_STREAMS);
    const size_t hs = NNE_NNC_HEADER_SIZE((size_t)n);
    if (nne_le_rd32(b + NNE_NNC_OFF_HEADER_SIZE) != hs)
        return nne_error(NNE_ERR_FORMAT, "nnc: header_size %u, expected %zu for %u streams",
                         nne_le_rd32(b + NNE_NNC_OFF_HEADER_SIZE), hs, n);
    if (size < hs)
        return nne_error(NNE_ERR_FORMAT, "nnc: truncated: %zu bytes, the header needs %zu", size,
                         hs);
    const uint32_t hcrc = nne_crc32(0, b, hs - 4);
    if (hcrc != nne_le_rd32(b + hs - 4))
        return nne_error(NNE_ERR_CHECKSUM,
                         "nnc: header CRC-32 mismatch (stored %08x, computed %08x)",
                         nne_le_rd32(b + hs - 4), hcrc);
    if (nne_le_rd32(b + NNE_NNC_OFF_FLAGS) != 0)
        return nne_error(NNE_ERR_UNSUPPORTED, "nnc: unknown flags 0x%08x",
                         nne_le_rd32(b + NNE_NNC_OFF_FLAGS));
    int64_t pad[4];
    for (int i = 0; i < 4; i++) pad[i] = nne_le_rd32(b + NNE_NNC_OFF_PAD + 4 * i);
    const int64_t w = nne_le_rd32(b + NNE_NNC_OFF_IMAGE_WIDTH),
                  h = nne_le_rd32(b + NNE_NNC_OFF_IMAGE_HEIGHT),
                  ch = nne_le_rd32(b + NNE_NNC_OFF_IMAGE_CHANNELS),
                  align = nne_le_rd32(b + NNE_NNC_OFF_ALIGN),
                  quality = nne_le_rd32(b + NNE_NNC_OFF_QUALITY);
    nne_status s = check_fields("header", w, h, ch, align, pad, quality, NNE_ERR_FORMAT);
    if (s) return s;
    if (!nne_latent_id_field_ok(b + NNE_NNC_OFF_MODEL_ID))
        return nne_error(NNE_ERR_FORMAT,
                         "nnc: model id is not 1..%d printable ASCII bytes padded with NULs",
                         NNE_NNC_ID_SIZE - 1);
    uint8_t tags[NNE_NNC_MAX_STREAMS][NNE_NNC_TAG_SIZE];
    uint64_t sizes[NNE_NNC_MAX_STREAMS], sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + NNE_NNC_OFF_STREAMS + NNE_NNC_ENTRY_SIZE * i;
        memcpy(tags[i], e, NNE_NNC_TAG_SIZE);
        if (!tag_ok(tags[i]))
            return nne_error(NNE_ERR_FORMAT,
                             "nnc: stream %u: tag is not 1..%d ASCII bytes 0x21..0x7E padded "
                             "with NULs",
                             i, NNE_NNC_TAG_SIZE);
        if (nne_le_rd32(e + 4) != 0)
            return nne_error(NNE_ERR_FORMAT, "nnc: stream %u: reserved field is not zero", i);
        sizes[i] = nne_le_rd64(e + 8);
        if (sizes[i] > UINT64_MAX - sum) /* then the sum cannot match any buffer */
            return nne_error(NNE_ERR_FORMAT, "nnc: stream %u: size %llu overflows", i,
                             (unsigned long long)sizes[i]);
        sum += sizes[i];
    }
    int32_t dup;
    if (!tags_unique((const uint8_t(*)[NNE_NNC_TAG_SIZE])tags, (int32_t)n, &dup))
        return nne_error(NNE_ERR_FORMAT, "nnc: stream %d repeats the tag of an earlier stream",
                         dup);
    const uint64_t have = size - hs;
    if (sum != have)
        return nne_error(NNE_ERR_FORMAT, "nnc: %s: the streams hold %llu bytes, the file %llu",
                         sum > have ? "truncated" : "trailing bytes", (unsigned long long)sum,
                         (unsigned long long)have);
    const uint32_t pcrc = nne_crc32(0, b + hs, (size_t)have);
    if (pcrc != nne_le_rd32(b + NNE_NNC_OFF_PAYLOAD_CRC))
        return nne_error(NNE_ERR_CHECKSUM,
                         "nnc: payload CRC-32 mismatch (stored %08x, computed %08x)",
                         nne_le_rd32(b + NNE_NNC_OFF_PAYLOAD_CRC), pcrc);

    memcpy(out->model_id, b + NNE_NNC_OFF_MODEL_ID, NNE_NNC_ID_SIZE);
    memcpy(out->model_hash, b + NNE_NNC_OFF_MODEL_HASH, NNE_NNC_HASH_SIZE);
    out->image_width = (int32_t)w;
    out->image_height = (int32_t)h;
    out->image_channels = (int32_t)ch;
    out->align = (int32_t)align;
    for (int i = 0; i < 4; i++) out->pad[i] = (int32_t)pad[i];
    out->quality = (int32_t)quality;
    out->n_streams = (int32_t)n;
    size_t pos = hs;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(out->streams[i].tag, tags[i], NNE_NNC_TAG_SIZE);
        out->streams[i].tag[NNE_NNC_TAG_SIZE] = 0;
        out->streams[i].data = b + pos;
        out->streams[i].size = (size_t)sizes[i];
        pos += (size_t)sizes[i];
    }
    return NNE_OK;
}

nne_status nne_nnc_read_mem(const uint8_t *buf, size_t size, nne_nnc *out) {
    memset(out, 0, sizeof *out);
    if (!buf && size) return nne_error(NNE_ERR_INVALID_ARG, "nnc: NULL buffer");
    nne_status s = read_mem(buf ? buf : (const uint8_t *)"", size, out);
    if (s) memset(out, 0, sizeof *out);
    return s;
}

const nne_nnc_stream *nne_nnc_find(const nne_nnc *c, const char *tag) {
    for (int32_t i = 0; c && tag && i < c->n_streams && i < NNE_NNC_MAX_STREAMS; i++)
        if (strncmp(c->streams[i].tag, tag, NNE_NNC_TAG_SIZE + 1) == 0) return &c->streams[i];
    return NULL;
}
