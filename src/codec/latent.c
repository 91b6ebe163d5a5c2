/* The latent container (.nnl): writer and validating reader. Specification:
 * docs/latent-format.md.
 *
 * Reader discipline (as the model-file reader): the magic and version are checked first,
 * then the header CRC, then every header field against its range, then the payload size
 * against the file size and the payload CRC, and only then is the payload decompressed.
 * Decompression grows its output buffer geometrically up to the declared raw size, so a
 * small file that merely *claims* a large payload never causes a large allocation: memory
 * follows what the stream actually produces. */
#include <lzma.h>
#include <math.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "codec/latent_internal.h"
#include "common/le.h"
#include "nnedge/codec.h"
#include "nnedge/file.h"

/* Decoder resource limits (docs/latent-format.md, "Limits"). */
#define ZSTD_WINDOW_LOG_MAX 23                   /* 8 MiB: zstd levels 1..19 stay within it */
#define XZ_MEMLIMIT         ((uint64_t)96 << 20) /* preset 9 needs about 65 MiB */
#define GROW_START          ((size_t)1 << 20)    /* first output buffer for decompression */

/* Re-raise the thread's error with another status and a prefix (the message is copied first:
 * nne_error formats into the buffer nne_last_error() returns). */
static nne_status reraise(nne_status s, const char *prefix) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", nne_last_error());
    return nne_error(s, "%s%s", prefix, msg);
}

const char *nne_latent_compression_name(nne_latent_compression c) {
    switch (c) {
    case NNE_LATENT_NONE:
        return "none";
    case NNE_LATENT_ZSTD:
        return "zstd";
    case NNE_LATENT_XZ:
        return "xz";
    }
    return "unknown";
}

nne_status nne_latent_compression_from_name(const char *name, nne_latent_compression *out) {
    static const nne_latent_compression all[] = {NNE_LATENT_NONE, NNE_LATENT_ZSTD, NNE_LATENT_XZ};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, nne_latent_compression_name(all[i])) == 0) {
            *out = all[i];
            return NNE_OK;
        }
    return nne_error(NNE_ERR_INVALID_ARG, "unknown compression '%s' (expected none, zstd or xz)",
                     name ? name : "");
}

const char *nne_latent_hash_hex(const uint8_t hash[NNE_LATENT_HASH_SIZE],
                                char buf[2 * NNE_LATENT_HASH_SIZE + 1]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < NNE_LATENT_HASH_SIZE; i++) {
        buf[2 * i] = hex[hash[i] >> 4];
        buf[2 * i + 1] = hex[hash[i] & 15];
    }
    buf[2 * NNE_LATENT_HASH_SIZE] = 0;
    return buf;
}

void nne_latent_free(nne_latent *l) {
    if (!l) return;
    nne_free(l->data);
    memset(l, 0, sizeof *l);
}

void nne_latent_fix_checksums(uint8_t *buf, size_t size) {
    if (size < NNE_LATENT_HEADER_SIZE) return;
    nne_le_wr32(buf + NNE_LT_OFF_PAYLOAD_CRC,
                nne_crc32(0, buf + NNE_LATENT_HEADER_SIZE, size - NNE_LATENT_HEADER_SIZE));
    nne_le_wr32(buf + NNE_LT_OFF_HEADER_CRC, nne_crc32(0, buf, NNE_LT_OFF_HEADER_CRC));
}

bool nne_latent_id_field_ok(const uint8_t id[NNE_LATENT_ID_SIZE]) {
    int n = 0;
    while (n < NNE_LATENT_ID_SIZE && id[n]) {
        if (id[n] < 0x20 || id[n] > 0x7E) return false;
        n++;
    }
    if (n == 0 || n == NNE_LATENT_ID_SIZE) return false;
    for (int i = n; i < NNE_LATENT_ID_SIZE; i++)
        if (id[i]) return false;
    return true;
}

/* Checks shared by the writer (on the struct) and the reader (on the decoded header). The
 * dims are int64 so that a reader's u32 fields are checked before any narrowing. `what`
 * names the file. */
static nne_status check_geometry(const char *what, int64_t iw, int64_t ih, const int64_t pad[4],
                                 int64_t lh, int64_t lw, int64_t lc, uint64_t *raw_size) {
    if (iw < 1 || ih < 1)
        return nne_error(NNE_ERR_FORMAT, "latent: %s: image size %lldx%lld is empty", what,
                         (long long)iw, (long long)ih);
    for (int i = 0; i < 4; i++)
        if (pad[i] < 0 || pad[i] > NNE_IMAGE_MAX_DIM)
            return nne_error(NNE_ERR_FORMAT, "latent: %s: padding %lld out of range [0, %d]", what,
                             (long long)pad[i], NNE_IMAGE_MAX_DIM);
    const int64_t ph = ih + pad[0] + pad[2], pw = iw + pad[1] + pad[3];
    if (ph > NNE_IMAGE_MAX_DIM || pw > NNE_IMAGE_MAX_DIM || ph * pw > (int64_t)NNE_IMAGE_MAX_PIXELS)
        return nne_error(NNE_ERR_LIMIT,
                         "latent: %s: padded image %lldx%lld exceeds the image limits "
                         "(%d per side, %d pixels)",
                         what, (long long)pw, (long long)ph, NNE_IMAGE_MAX_DIM,
                         NNE_IMAGE_MAX_PIXELS);
    const int64_t d[3] = {lh, lw, lc};
    for (int i = 0; i < 3; i++) {
        if (d[i] < 1)
            return nne_error(NNE_ERR_FORMAT, "latent: %s: latent dimension %d is 0", what, i);
        if (d[i] > NNE_LATENT_MAX_DIM)
            return nne_error(NNE_ERR_LIMIT, "latent: %s: latent dimension %lld exceeds %d", what,
                             (long long)d[i], NNE_LATENT_MAX_DIM);
    }
    /* Each factor <= 65535 < 2^16, so the product fits in 64 bits: 2^48 * 4 < 2^63. */
    const uint64_t raw = (uint64_t)lh * (uint64_t)lw * (uint64_t)lc * 4u;
    if (raw > NNE_LATENT_MAX_RAW_SIZE)
        return nne_error(NNE_ERR_LIMIT,
                         "latent: %s: latent %lldx%lldx%lld is %llu bytes, over the limit of "
                         "%llu",
                         what, (long long)lh, (long long)lw, (long long)lc, (unsigned long long)raw,
                         (unsigned long long)NNE_LATENT_MAX_RAW_SIZE);
    *raw_size = raw;
    return NNE_OK;
}

/* ---- Writer ---------------------------------------------------------------------------- */

static nne_status compress_zstd(const uint8_t *src, size_t n, int level, uint8_t *dst, size_t cap,
                                size_t *out_n) {
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!cc) return nne_error(NNE_ERR_NOMEM, "latent: zstd: cannot create a compression context");
    size_t r = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_compress2(cc, dst, cap, src, n);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r))
        return nne_error(NNE_ERR_INTERNAL, "latent: zstd compression failed: %s",
                         ZSTD_getErrorName(r));
    *out_n = r;
    return NNE_OK;
}

static nne_status compress_xz(const uint8_t *src, size_t n, int preset, uint8_t *dst, size_t cap,
                              size_t *out_n) {
    lzma_options_lzma opt;
    if (lzma_lzma_preset(&opt, (uint32_t)preset))
        return nne_error(NNE_ERR_INTERNAL, "latent: xz: preset %d unavailable", preset);
    /* A dictionary larger than the input compresses no better, but a decoder would have to
     * allocate it: cap it at the payload size so decoding needs little memory. */
    if (opt.dict_size > n)
        opt.dict_size = n < LZMA_DICT_SIZE_MIN ? LZMA_DICT_SIZE_MIN : (uint32_t)n;
    lzma_filter filters[2] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, NULL}};
    size_t pos = 0;
    lzma_ret r = lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC64, NULL, src, n, dst, &pos, cap);
    if (r != LZMA_OK)
        return nne_error(r == LZMA_MEM_ERROR ? NNE_ERR_NOMEM : NNE_ERR_INTERNAL,
                         "latent: xz compression failed (liblzma error %d)", (int)r);
    *out_n = pos;
    return NNE_OK;
}

nne_status nne_latent_write_mem(const nne_latent *l, nne_latent_compression c, int level,
                                uint8_t **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    if (!l || !l->data) return nne_error(NNE_ERR_INVALID_ARG, "latent: write: no latent data");
    const int64_t pad[4] = {l->pad[0], l->pad[1], l->pad[2], l->pad[3]};
    uint64_t raw_size;
    nne_status s = check_geometry("write", l->image_width, l->image_height, pad, l->height,
                                  l->width, l->channels, &raw_size);
    if (s) return reraise(NNE_ERR_INVALID_ARG, "");
    uint8_t id[NNE_LATENT_ID_SIZE] = {0};
    size_t id_len = strnlen(l->model_id, NNE_LATENT_ID_SIZE);
    memcpy(id, l->model_id, id_len < NNE_LATENT_ID_SIZE ? id_len : NNE_LATENT_ID_SIZE);
    if (!nne_latent_id_field_ok(id))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "latent: write: model id must be 1..%d printable ASCII characters",
                         NNE_LATENT_ID_SIZE - 1);
    switch (c) {
    case NNE_LATENT_NONE:
        break;
    case NNE_LATENT_ZSTD:
        if (level == NNE_LATENT_LEVEL_DEFAULT) level = 19;
        if (level < 1 || level > NNE_LATENT_ZSTD_MAX_LEVEL)
            return nne_error(NNE_ERR_INVALID_ARG, "latent: zstd level %d out of range [1, %d]",
                             level, NNE_LATENT_ZSTD_MAX_LEVEL);
        break;
    case NNE_LATENT_XZ:
        if (level == NNE_LATENT_LEVEL_DEFAULT) level = 9;
        if (level < 0 || level > 9)
            return nne_error(NNE_ERR_INVALID_ARG, "latent: xz preset %d out of range [0, 9]",
                             level);
        break;
    default:
        return nne_error(NNE_ERR_INVALID_ARG, "latent: unknown compression %d", (int)c);
    }

    /* The raw payload: float32 little-endian, NHWC. */
    const size_t n = (size_t)raw_size / 4;
    uint8_t *raw = nne_malloc((size_t)raw_size);
    if (!raw) return NNE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(l->data[i])) {
            nne_free(raw);
            return nne_error(NNE_ERR_INVALID_ARG, "latent: write: value %zu is not finite", i);
        }
        uint32_t v;
        memcpy(&v, &l->data[i], 4);
        nne_le_wr32(raw + 4 * i, v);
    }

    size_t bound = (size_t)raw_size;
    if (c == NNE_LATENT_ZSTD) bound = ZSTD_compressBound((size_t)raw_size);
    if (c == NNE_LATENT_XZ) bound = lzma_stream_buffer_bound((size_t)raw_size);
    size_t total;
    if (bound == 0 || !nne_size_add(bound, NNE_LATENT_HEADER_SIZE, &total)) {
        nne_free(raw);
        return nne_error(NNE_ERR_NOMEM, "latent: write: payload too large");
    }
    uint8_t *buf = nne_calloc(1, total);
    if (!buf) {
        nne_free(raw);
        return NNE_ERR_NOMEM;
    }
    uint8_t *payload = buf + NNE_LATENT_HEADER_SIZE;
    size_t stored = 0;
    if (c == NNE_LATENT_NONE) {
        memcpy(payload, raw, (size_t)raw_size);
        stored = (size_t)raw_size;
    } else if (c == NNE_LATENT_ZSTD) {
        s = compress_zstd(raw, (size_t)raw_size, level, payload, bound, &stored);
    } else {
        s = compress_xz(raw, (size_t)raw_size, level, payload, bound, &stored);
    }
    nne_free(raw);
    if (s) {
        nne_free(buf);
        return s;
    }

    memcpy(buf + NNE_LT_OFF_MAGIC, NNE_LATENT_MAGIC, 8);
    nne_le_wr32(buf + NNE_LT_OFF_VERSION, NNE_LATENT_VERSION);
    nne_le_wr32(buf + NNE_LT_OFF_HEADER_SIZE, NNE_LATENT_HEADER_SIZE);
    nne_le_wr32(buf + NNE_LT_OFF_FLAGS, 0);
    nne_le_wr32(buf + NNE_LT_OFF_COMPRESSION, (uint32_t)c);
    nne_le_wr32(buf + NNE_LT_OFF_DTYPE, NNE_LT_DTYPE_F32);
    nne_le_wr32(buf + NNE_LT_OFF_IMAGE_WIDTH, (uint32_t)l->image_width);
    nne_le_wr32(buf + NNE_LT_OFF_IMAGE_HEIGHT, (uint32_t)l->image_height);
    nne_le_wr32(buf + NNE_LT_OFF_IMAGE_CHANNELS, 3);
    for (int i = 0; i < 4; i++) nne_le_wr32(buf + NNE_LT_OFF_PAD + 4 * i, (uint32_t)l->pad[i]);
    nne_le_wr32(buf + NNE_LT_OFF_LATENT_SHAPE + 0, (uint32_t)l->height);
    nne_le_wr32(buf + NNE_LT_OFF_LATENT_SHAPE + 4, (uint32_t)l->width);
    nne_le_wr32(buf + NNE_LT_OFF_LATENT_SHAPE + 8, (uint32_t)l->channels);
    nne_le_wr64(buf + NNE_LT_OFF_RAW_SIZE, raw_size);
    nne_le_wr64(buf + NNE_LT_OFF_STORED_SIZE, stored);
    memcpy(buf + NNE_LT_OFF_MODEL_ID, id, NNE_LATENT_ID_SIZE);
    memcpy(buf + NNE_LT_OFF_MODEL_HASH, l->model_hash, NNE_LATENT_HASH_SIZE);
    nne_le_wr32(buf + NNE_LT_OFF_RESERVED, 0);
    nne_latent_fix_checksums(buf, NNE_LATENT_HEADER_SIZE + stored);
    *out = buf;
    *out_size = NNE_LATENT_HEADER_SIZE + stored;
    return NNE_OK;
}

nne_status nne_latent_write_file(const nne_latent *l, nne_latent_compression c, int level,
                                 const char *path) {
    uint8_t *buf;
    size_t n;
    nne_status s = nne_latent_write_mem(l, c, level, &buf, &n);
    if (s) return s;
    s = nne_file_write_atomic(path, buf, n);
    nne_free(buf);
    return s;
}

/* ---- Reader ---------------------------------------------------------------------------- */

/* Grow *buf (capacity *cap) towards `limit` bytes: double, at least GROW_START. */
static nne_status grow(uint8_t **buf, size_t *cap, size_t limit) {
    size_t want = *cap == 0 ? GROW_START : *cap * 2;
    if (want < *cap || want > limit) want = limit;
    uint8_t *nb = nne_realloc_array(*buf, want, 1);
    if (!nb) return NNE_ERR_NOMEM;
    *buf = nb;
    *cap = want;
    return NNE_OK;
}

/* Decompress exactly one zstd frame that fills exactly `raw` bytes and uses all of `in`.
 * The output buffer may grow to raw + 1 so that a frame producing too much is detected. */
static nne_status unzstd(const char *what, const uint8_t *in, size_t n, size_t raw, uint8_t **out) {
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc) return nne_error(NNE_ERR_NOMEM, "latent: zstd: cannot create a decompression context");
    nne_status s = NNE_OK;
    size_t r = ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
    if (ZSTD_isError(r)) {
        ZSTD_freeDCtx(dc);
        return nne_error(NNE_ERR_INTERNAL, "latent: zstd: %s", ZSTD_getErrorName(r));
    }
    uint8_t *buf = NULL;
    size_t cap = 0;
    ZSTD_inBuffer ib = {in, n, 0};
    ZSTD_outBuffer ob = {NULL, 0, 0};
    for (;;) {
        if (ob.pos == cap) {
            if (cap == raw + 1) {
                s = nne_error(NNE_ERR_FORMAT, "latent: %s: zstd payload is larger than %zu bytes",
                              what, raw);
                break;
            }
            if ((s = grow(&buf, &cap, raw + 1))) break;
            ob.dst = buf;
            ob.size = cap;
        }
        const size_t in_before = ib.pos, out_before = ob.pos;
        r = ZSTD_decompressStream(dc, &ob, &ib);
        if (ZSTD_isError(r)) {
            s = nne_error(ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge
                              ? NNE_ERR_LIMIT
                              : NNE_ERR_FORMAT,
                          "latent: %s: zstd payload: %s", what, ZSTD_getErrorName(r));
            break;
        }
        if (r == 0) break; /* frame complete */
        if (ib.pos == ib.size && ob.pos < ob.size) {
            s = nne_error(NNE_ERR_FORMAT, "latent: %s: zstd payload is truncated", what);
            break;
        }
        if (ib.pos == in_before && ob.pos == out_before && ob.pos < ob.size) {
            s = nne_error(NNE_ERR_FORMAT, "latent: %s: zstd payload makes no progress", what);
            break;
        }
    }
    ZSTD_freeDCtx(dc);
    if (!s && ib.pos != ib.size)
        s = nne_error(NNE_ERR_FORMAT, "latent: %s: %zu bytes after the zstd frame", what,
                      ib.size - ib.pos);
    if (!s && ob.pos != raw)
        s = nne_error(NNE_ERR_FORMAT, "latent: %s: zstd payload has %zu bytes, header says %zu",
                      what, ob.pos, raw);
    if (s) {
        nne_free(buf);
        return s;
    }
    *out = buf;
    return NNE_OK;
}

/* Decompress exactly one .xz stream, as unzstd. */
static nne_status unxz(const char *what, const uint8_t *in, size_t n, size_t raw, uint8_t **out) {
    lzma_stream st = LZMA_STREAM_INIT;
    lzma_ret r = lzma_stream_decoder(&st, XZ_MEMLIMIT, 0);
    if (r != LZMA_OK)
        return nne_error(r == LZMA_MEM_ERROR ? NNE_ERR_NOMEM : NNE_ERR_INTERNAL,
                         "latent: xz: cannot create a decoder (liblzma error %d)", (int)r);
    nne_status s = NNE_OK;
    uint8_t *buf = NULL;
    size_t cap = 0, produced = 0;
    st.next_in = in;
    st.avail_in = n;
    for (;;) {
        if (produced == cap) {
            if (cap == raw + 1) {
                s = nne_error(NNE_ERR_FORMAT, "latent: %s: xz payload is larger than %zu bytes",
                              what, raw);
                break;
            }
            if ((s = grow(&buf, &cap, raw + 1))) break;
        }
        st.next_out = buf + produced;
        st.avail_out = cap - produced;
        r = lzma_code(&st, LZMA_FINISH);
        produced = cap - st.avail_out;
        if (r == LZMA_STREAM_END) break;
        if (r == LZMA_OK) continue;
        if (r == LZMA_MEM_ERROR) {
            s = nne_error(NNE_ERR_NOMEM, "latent: %s: xz: out of memory", what);
        } else if (r == LZMA_MEMLIMIT_ERROR) {
            s = nne_error(NNE_ERR_LIMIT,
                          "latent: %s: xz payload needs more than %llu MiB to decode", what,
                          (unsigned long long)(XZ_MEMLIMIT >> 20));
        } else if (r == LZMA_BUF_ERROR) {
            s = nne_error(NNE_ERR_FORMAT, "latent: %s: xz payload is truncated", what);
        } else {
            s = nne_error(NNE_ERR_FORMAT, "latent: %s: xz payload is corrupt (liblzma error %d)",
                          what, (int)r);
        }
        break;
    }
    const size_t left = st.avail_in;
    lzma_end(&st);
    if (!s && left != 0)
        s = nne_error(NNE_ERR_FORMAT, "latent: %s: %zu bytes after the xz stream", what, left);
    if (!s && produced != raw)
        s = nne_error(NNE_ERR_FORMAT, "latent: %s: xz payload has %zu bytes, header says %zu", what,
                      produced, raw);
    if (s) {
        nne_free(buf);
        return s;
    }
    *out = buf;
    return NNE_OK;
}

static nne_status read_mem(const uint8_t *b, size_t size, const char *what, nne_latent *out,
                           nne_latent_info *info) {
    if (size < 8 || memcmp(b, NNE_LATENT_MAGIC, 8) != 0)
        return nne_error(NNE_ERR_FORMAT, "latent: %s: not a latent file (bad magic)", what);
    if (size < NNE_LT_OFF_VERSION + 4)
        return nne_error(NNE_ERR_FORMAT, "latent: %s: truncated header (%zu bytes)", what, size);
    const uint32_t version = nne_le_rd32(b + NNE_LT_OFF_VERSION);
    if (version != NNE_LATENT_VERSION)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "latent: %s: version %u is not supported (this reader knows %d)", what,
                         version, NNE_LATENT_VERSION);
    if (size < NNE_LATENT_HEADER_SIZE)
        return nne_error(NNE_ERR_FORMAT, "latent: %s: truncated header (%zu of %d bytes)", what,
                         size, NNE_LATENT_HEADER_SIZE);
    const uint32_t hcrc = nne_crc32(0, b, NNE_LT_OFF_HEADER_CRC);
    if (hcrc != nne_le_rd32(b + NNE_LT_OFF_HEADER_CRC))
        return nne_error(NNE_ERR_CHECKSUM,
                         "latent: %s: header CRC-32 mismatch (stored %08x, computed %08x)", what,
                         nne_le_rd32(b + NNE_LT_OFF_HEADER_CRC), hcrc);
    if (nne_le_rd32(b + NNE_LT_OFF_HEADER_SIZE) != NNE_LATENT_HEADER_SIZE)
        return nne_error(NNE_ERR_FORMAT, "latent: %s: header_size %u, expected %d", what,
                         nne_le_rd32(b + NNE_LT_OFF_HEADER_SIZE), NNE_LATENT_HEADER_SIZE);
    if (nne_le_rd32(b + NNE_LT_OFF_FLAGS) != 0)
        return nne_error(NNE_ERR_UNSUPPORTED, "latent: %s: unknown flags 0x%08x", what,
                         nne_le_rd32(b + NNE_LT_OFF_FLAGS));
    if (nne_le_rd32(b + NNE_LT_OFF_RESERVED) != 0)
        return nne_error(NNE_ERR_FORMAT, "latent: %s: reserved field is not zero", what);
    const uint32_t comp = nne_le_rd32(b + NNE_LT_OFF_COMPRESSION);
    if (comp > NNE_LATENT_XZ)
        return nne_error(NNE_ERR_UNSUPPORTED, "latent: %s: unknown compression %u", what, comp);
    if (nne_le_rd32(b + NNE_LT_OFF_DTYPE) != NNE_LT_DTYPE_F32)
        return nne_error(NNE_ERR_UNSUPPORTED, "latent: %s: dtype %u (only 1 = f32 is supported)",
                         what, nne_le_rd32(b + NNE_LT_OFF_DTYPE));
    if (nne_le_rd32(b + NNE_LT_OFF_IMAGE_CHANNELS) != 3)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "latent: %s: %u image channels (only 3 = RGB is supported)", what,
                         nne_le_rd32(b + NNE_LT_OFF_IMAGE_CHANNELS));
    const int64_t iw = nne_le_rd32(b + NNE_LT_OFF_IMAGE_WIDTH),
                  ih = nne_le_rd32(b + NNE_LT_OFF_IMAGE_HEIGHT);
    int64_t pad[4];
    for (int i = 0; i < 4; i++) pad[i] = nne_le_rd32(b + NNE_LT_OFF_PAD + 4 * i);
    const int64_t lh = nne_le_rd32(b + NNE_LT_OFF_LATENT_SHAPE),
                  lw = nne_le_rd32(b + NNE_LT_OFF_LATENT_SHAPE + 4),
                  lc = nne_le_rd32(b + NNE_LT_OFF_LATENT_SHAPE + 8);
    uint64_t raw;
    nne_status s = check_geometry(what, iw, ih, pad, lh, lw, lc, &raw);
    if (s) return s;
    if (nne_le_rd64(b + NNE_LT_OFF_RAW_SIZE) != raw)
        return nne_error(NNE_ERR_FORMAT,
                         "latent: %s: raw_size %llu does not match the latent shape (%llu bytes)",
                         what, (unsigned long long)nne_le_rd64(b + NNE_LT_OFF_RAW_SIZE),
                         (unsigned long long)raw);
    if (!nne_latent_id_field_ok(b + NNE_LT_OFF_MODEL_ID))
        return nne_error(NNE_ERR_FORMAT,
                         "latent: %s: model id is not 1..%d printable ASCII bytes padded with "
                         "NULs",
                         what, NNE_LATENT_ID_SIZE - 1);
    const uint64_t stored = nne_le_rd64(b + NNE_LT_OFF_STORED_SIZE);
    const uint64_t have = size - NNE_LATENT_HEADER_SIZE;
    if (stored != have)
        return nne_error(NNE_ERR_FORMAT,
                         "latent: %s: %s: header says %llu payload bytes, file has %llu", what,
                         stored > have ? "truncated" : "trailing bytes", (unsigned long long)stored,
                         (unsigned long long)have);
    if (comp == NNE_LATENT_NONE && stored != raw)
        return nne_error(NNE_ERR_FORMAT,
                         "latent: %s: uncompressed payload of %llu bytes, expected %llu", what,
                         (unsigned long long)stored, (unsigned long long)raw);
    const uint8_t *payload = b + NNE_LATENT_HEADER_SIZE;
    const uint32_t pcrc = nne_crc32(0, payload, (size_t)stored);
    if (pcrc != nne_le_rd32(b + NNE_LT_OFF_PAYLOAD_CRC))
        return nne_error(NNE_ERR_CHECKSUM,
                         "latent: %s: payload CRC-32 mismatch (stored %08x, computed %08x)", what,
                         nne_le_rd32(b + NNE_LT_OFF_PAYLOAD_CRC), pcrc);

    uint8_t *data = NULL;
    if (comp == NNE_LATENT_NONE) {
        data = nne_malloc((size_t)raw);
        if (!data) return NNE_ERR_NOMEM;
        memcpy(data, payload, (size_t)raw);
    } else if (comp == NNE_LATENT_ZSTD) {
        s = unzstd(what, payload, (size_t)stored, (size_t)raw, &data);
    } else {
        s = unxz(what, payload, (size_t)stored, (size_t)raw, &data);
    }
    if (s) return s;
    /* Little-endian bytes to host floats, in place; reject what no encoder produces. */
    const size_t n = (size_t)raw / 4;
    for (size_t i = 0; i < n; i++) {
        const uint32_t v = nne_le_rd32(data + 4 * i);
        float f;
        memcpy(&f, &v, 4);
        if (!isfinite(f)) {
            nne_free(data);
            return nne_error(NNE_ERR_FORMAT, "latent: %s: value %zu is not finite", what, i);
        }
        memcpy(data + 4 * i, &f, 4);
    }
    memcpy(out->model_id, b + NNE_LT_OFF_MODEL_ID, NNE_LATENT_ID_SIZE);
    memcpy(out->model_hash, b + NNE_LT_OFF_MODEL_HASH, NNE_LATENT_HASH_SIZE);
    out->image_width = (int32_t)iw;
    out->image_height = (int32_t)ih;
    for (int i = 0; i < 4; i++) out->pad[i] = (int32_t)pad[i];
    out->height = (int32_t)lh;
    out->width = (int32_t)lw;
    out->channels = (int32_t)lc;
    out->data = (float *)(void *)data; /* nne_malloc's alignment suits float */
    if (info) {
        info->compression = (nne_latent_compression)comp;
        info->raw_size = raw;
        info->stored_size = stored;
        info->file_size = size;
    }
    return NNE_OK;
}

nne_status nne_latent_read_mem(const uint8_t *buf, size_t size, nne_latent *out,
                               nne_latent_info *info) {
    memset(out, 0, sizeof *out);
    if (info) memset(info, 0, sizeof *info);
    if (!buf && size) return nne_error(NNE_ERR_INVALID_ARG, "latent: NULL buffer");
    return read_mem(buf ? buf : (const uint8_t *)"", size, "<memory>", out, info);
}

nne_status nne_latent_read_file(const char *path, nne_latent *out, nne_latent_info *info) {
    memset(out, 0, sizeof *out);
    if (info) memset(info, 0, sizeof *info);
    uint8_t *buf;
    size_t n;
    nne_status s = nne_file_read(path, (size_t)NNE_LATENT_MAX_FILE_SIZE, &buf, &n);
    if (s) return reraise(s, "latent: ");
    s = read_mem(buf, n, path, out, info);
    nne_free(buf);
    return s;
}
