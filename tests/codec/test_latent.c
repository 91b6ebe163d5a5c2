/* The latent container (docs/latent-format.md): round trips for every compression, truncation
 * at every offset, every single corrupted byte, each header field's validation (with the
 * checksums recomputed so that the field check itself is reached), decompression bombs and
 * mismatched payload sizes, and the file API. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "codec/latent_internal.h"
#include "common/le.h"
#include "nnedge/codec.h"
#include "nnedge/file.h"
#include "testutil.h"

static const nne_latent_compression k_all[] = {NNE_LATENT_NONE, NNE_LATENT_ZSTD, NNE_LATENT_XZ};

/* A latent with smooth, compressible values (as a real one) and a recognisable header. */
static void make_latent(nne_latent *l, int32_t h, int32_t w, int32_t c, unsigned seed) {
    memset(l, 0, sizeof *l);
    snprintf(l->model_id, sizeof l->model_id, "cae-seed");
    for (int i = 0; i < NNE_LATENT_HASH_SIZE; i++) l->model_hash[i] = (uint8_t)(i * 7 + seed);
    l->image_width = w * 8 + 5;
    l->image_height = h * 8 + 3;
    l->height = h;
    l->width = w;
    l->channels = c;
    const size_t n = (size_t)h * w * c;
    l->data = nne_malloc(n * sizeof *l->data);
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        l->data[i] = (float)(sin((double)i * 0.01) + 0.05 * (nne_test_rng_uniform(&r) - 0.5));
}

static bool same_latent(const nne_latent *a, const nne_latent *b) {
    if (strcmp(a->model_id, b->model_id) || memcmp(a->model_hash, b->model_hash, 32) ||
        a->image_width != b->image_width || a->image_height != b->image_height ||
        memcmp(a->pad, b->pad, sizeof a->pad) || a->height != b->height || a->width != b->width ||
        a->channels != b->channels)
        return false;
    return memcmp(a->data, b->data, (size_t)a->height * a->width * a->channels * 4) == 0;
}

static bool zeroed(const nne_latent *l) {
    static const nne_latent z;
    return memcmp(l, &z, sizeof z) == 0;
}

static void test_round_trip(void) {
    nne_latent l, back;
    make_latent(&l, 7, 9, 32, 1);
    l.pad[0] = 1;
    l.pad[3] = 2;
    for (size_t k = 0; k < 3; k++) {
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_latent_write_mem(&l, k_all[k], NNE_LATENT_LEVEL_DEFAULT, &buf, &n));
        nne_latent_info info;
        CHECK_OK(nne_latent_read_mem(buf, n, &back, &info));
        CHECK_MSG(same_latent(&l, &back), "%s", nne_latent_compression_name(k_all[k]));
        CHECK(info.compression == k_all[k]);
        CHECK(info.raw_size == 7 * 9 * 32 * 4);
        CHECK(info.file_size == n && info.stored_size + NNE_LATENT_HEADER_SIZE == n);
        if (k_all[k] != NNE_LATENT_NONE) CHECK(info.stored_size < info.raw_size);
        CHECK(memcmp(buf, "NNEDGEL\0", 8) == 0);
        /* Deterministic: the same latent gives the same bytes. */
        uint8_t *buf2;
        size_t n2;
        CHECK_OK(nne_latent_write_mem(&l, k_all[k], NNE_LATENT_LEVEL_DEFAULT, &buf2, &n2));
        CHECK(n2 == n && memcmp(buf, buf2, n) == 0);
        nne_free(buf2);
        nne_latent_free(&back);
        nne_free(buf);
    }
    /* Levels: every zstd level and xz preset decodes to the same latent. */
    for (int lv = 1; lv <= NNE_LATENT_ZSTD_MAX_LEVEL; lv += 6) {
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_latent_write_mem(&l, NNE_LATENT_ZSTD, lv, &buf, &n));
        CHECK_OK(nne_latent_read_mem(buf, n, &back, NULL));
        CHECK(same_latent(&l, &back));
        nne_latent_free(&back);
        nne_free(buf);
    }
    for (int lv = 0; lv <= 9; lv += 3) {
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_latent_write_mem(&l, NNE_LATENT_XZ, lv, &buf, &n));
        CHECK_OK(nne_latent_read_mem(buf, n, &back, NULL));
        CHECK(same_latent(&l, &back));
        nne_latent_free(&back);
        nne_free(buf);
    }
    nne_latent_free(&l);
}

static void test_writer_rejects(void) {
    nne_latent l;
    make_latent(&l, 2, 3, 4, 2);
    uint8_t *buf;
    size_t n;
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_ZSTD, 20, &buf, &n), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_ZSTD, 0, &buf, &n), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_XZ, 10, &buf, &n), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_latent_write_mem(&l, (nne_latent_compression)3, -1, &buf, &n),
                 NNE_ERR_INVALID_ARG);
    l.data[5] = NAN;
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_NONE, -1, &buf, &n), NNE_ERR_INVALID_ARG);
    l.data[5] = 0;
    l.model_id[0] = 0;
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_NONE, -1, &buf, &n), NNE_ERR_INVALID_ARG);
    snprintf(l.model_id, sizeof l.model_id, "bad\x01id");
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_NONE, -1, &buf, &n), NNE_ERR_INVALID_ARG);
    snprintf(l.model_id, sizeof l.model_id, "cae-seed");
    l.pad[2] = -1;
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_NONE, -1, &buf, &n), NNE_ERR_INVALID_ARG);
    l.pad[2] = 0;
    l.channels = 0;
    CHECK_STATUS(nne_latent_write_mem(&l, NNE_LATENT_NONE, -1, &buf, &n), NNE_ERR_INVALID_ARG);
    nne_latent_free(&l);
    nne_latent_compression c;
    CHECK_OK(nne_latent_compression_from_name("xz", &c));
    CHECK(c == NNE_LATENT_XZ);
    CHECK_STATUS(nne_latent_compression_from_name("7z", &c), NNE_ERR_INVALID_ARG);
}

/* Every proper prefix of a valid file is rejected, with a message and a zeroed latent. */
static void test_truncation(void) {
    nne_latent l;
    make_latent(&l, 3, 5, 8, 3);
    for (size_t k = 0; k < 3; k++) {
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_latent_write_mem(&l, k_all[k], NNE_LATENT_LEVEL_DEFAULT, &buf, &n));
        int accepted = 0;
        for (size_t cut = 0; cut < n; cut++) {
            /* An exact-size copy, so that a read past the end is caught by ASan. */
            uint8_t *p = nne_malloc(cut ? cut : 1);
            memcpy(p, buf, cut);
            nne_latent out;
            nne_status s = nne_latent_read_mem(p, cut, &out, NULL);
            if (s == NNE_OK) {
                accepted++;
                nne_latent_free(&out);
            } else {
                CHECK(zeroed(&out));
                CHECK(strncmp(nne_last_error(), "latent: ", 8) == 0);
            }
            nne_free(p);
        }
        CHECK_MSG(accepted == 0, "%s: %d truncations accepted",
                  nne_latent_compression_name(k_all[k]), accepted);
        nne_free(buf);
    }
    nne_latent_free(&l);
}

/* Any single corrupted byte anywhere is rejected (the CRCs see every burst of <= 32 bits). */
static void test_corruption(void) {
    nne_latent l;
    make_latent(&l, 3, 4, 8, 4);
    for (size_t k = 0; k < 3; k++) {
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_latent_write_mem(&l, k_all[k], NNE_LATENT_LEVEL_DEFAULT, &buf, &n));
        int accepted = 0;
        for (size_t i = 0; i < n; i++) {
            for (int flip = 0; flip < 2; flip++) {
                const uint8_t mask = flip ? 0xFF : (uint8_t)(1u << (i % 8));
                buf[i] ^= mask;
                nne_latent out;
                nne_status s = nne_latent_read_mem(buf, n, &out, NULL);
                if (s == NNE_OK) {
                    accepted++;
                    nne_latent_free(&out);
                }
                buf[i] ^= mask;
            }
        }
        CHECK_MSG(accepted == 0, "%s: %d corruptions accepted",
                  nne_latent_compression_name(k_all[k]), accepted);
        nne_free(buf);
    }
    nne_latent_free(&l);
}

/* Apply `edit` to a fresh valid file, recompute the CRCs, expect `want`. */
typedef void (*edit_fn)(uint8_t *b);
static void expect_edit(nne_latent_compression c, edit_fn edit, nne_status want, const char *what) {
    nne_latent l;
    make_latent(&l, 2, 3, 4, 5);
    uint8_t *buf;
    size_t n;
    CHECK_OK(nne_latent_write_mem(&l, c, NNE_LATENT_LEVEL_DEFAULT, &buf, &n));
    edit(buf);
    nne_latent_fix_checksums(buf, n);
    nne_latent out;
    nne_status s = nne_latent_read_mem(buf, n, &out, NULL);
    CHECK_MSG(s == want, "%s: got %s (%s), want %s", what, nne_status_str(s), nne_last_error(),
              nne_status_str(want));
    if (s == NNE_OK) nne_latent_free(&out);
    nne_free(buf);
    nne_latent_free(&l);
}

static void e_version(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_VERSION, 2); }
static void e_hsize(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_HEADER_SIZE, 192); }
static void e_flags(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_FLAGS, 1); }
static void e_comp(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_COMPRESSION, 3); }
static void e_dtype(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_DTYPE, 2); }
static void e_chan(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_IMAGE_CHANNELS, 1); }
static void e_width0(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_IMAGE_WIDTH, 0); }
static void e_widthbig(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_IMAGE_WIDTH, 0xFFFFFFFFu); }
static void e_pad(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_PAD + 8, 70000); }
static void e_padsum(uint8_t *b) {
    nne_le_wr32(b + NNE_LT_OFF_PAD, 65000);
    nne_le_wr32(b + NNE_LT_OFF_PAD + 8, 65000);
}
static void e_lat0(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_LATENT_SHAPE + 4, 0); }
static void e_latbig(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_LATENT_SHAPE + 8, 65536); }
static void e_rawbig(uint8_t *b) { /* 65535 x 65535 x 4 x 4 bytes: over the 1 GiB limit */
    nne_le_wr32(b + NNE_LT_OFF_LATENT_SHAPE, 65535);
    nne_le_wr32(b + NNE_LT_OFF_LATENT_SHAPE + 4, 65535);
    nne_le_wr64(b + NNE_LT_OFF_RAW_SIZE, 65535ull * 65535 * 4 * 4);
}
static void e_rawsize(uint8_t *b) { nne_le_wr64(b + NNE_LT_OFF_RAW_SIZE, 2 * 3 * 4 * 4 + 4); }
static void e_stored(uint8_t *b) { nne_le_wr64(b + NNE_LT_OFF_STORED_SIZE, 1); }
static void e_storedhuge(uint8_t *b) { nne_le_wr64(b + NNE_LT_OFF_STORED_SIZE, ~0ull); }
static void e_id_empty(uint8_t *b) { memset(b + NNE_LT_OFF_MODEL_ID, 0, NNE_LATENT_ID_SIZE); }
static void e_id_ctrl(uint8_t *b) { b[NNE_LT_OFF_MODEL_ID + 2] = 0x07; }
static void e_id_full(uint8_t *b) { memset(b + NNE_LT_OFF_MODEL_ID, 'a', NNE_LATENT_ID_SIZE); }
static void e_id_gap(uint8_t *b) { b[NNE_LT_OFF_MODEL_ID + 20] = 'x'; }
static void e_reserved(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_RESERVED, 5); }
static void e_nan(uint8_t *b) { nne_le_wr32(b + NNE_LATENT_HEADER_SIZE + 8, 0x7FC00000u); }
static void e_inf(uint8_t *b) { nne_le_wr32(b + NNE_LATENT_HEADER_SIZE + 4, 0xFF800000u); }
static void e_magic(uint8_t *b) { b[7] = 'X'; }
static void e_none_to_zstd(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_COMPRESSION, NNE_LATENT_ZSTD); }
static void e_none_to_xz(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_COMPRESSION, NNE_LATENT_XZ); }
static void e_zstd_to_xz(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_COMPRESSION, NNE_LATENT_XZ); }
static void e_zstd_to_none(uint8_t *b) { nne_le_wr32(b + NNE_LT_OFF_COMPRESSION, NNE_LATENT_NONE); }
static void e_nothing(uint8_t *b) { (void)b; }

static void test_fields(void) {
    expect_edit(NNE_LATENT_NONE, e_nothing, NNE_OK, "unchanged");
    expect_edit(NNE_LATENT_NONE, e_magic, NNE_ERR_FORMAT, "magic");
    expect_edit(NNE_LATENT_NONE, e_version, NNE_ERR_UNSUPPORTED, "version");
    expect_edit(NNE_LATENT_NONE, e_hsize, NNE_ERR_FORMAT, "header_size");
    expect_edit(NNE_LATENT_NONE, e_flags, NNE_ERR_UNSUPPORTED, "flags");
    expect_edit(NNE_LATENT_NONE, e_comp, NNE_ERR_UNSUPPORTED, "compression");
    expect_edit(NNE_LATENT_NONE, e_dtype, NNE_ERR_UNSUPPORTED, "dtype");
    expect_edit(NNE_LATENT_NONE, e_chan, NNE_ERR_UNSUPPORTED, "channels");
    expect_edit(NNE_LATENT_NONE, e_width0, NNE_ERR_FORMAT, "width 0");
    expect_edit(NNE_LATENT_NONE, e_widthbig, NNE_ERR_LIMIT, "width 2^32-1");
    expect_edit(NNE_LATENT_NONE, e_pad, NNE_ERR_FORMAT, "padding");
    expect_edit(NNE_LATENT_NONE, e_padsum, NNE_ERR_LIMIT, "padded size");
    expect_edit(NNE_LATENT_NONE, e_lat0, NNE_ERR_FORMAT, "latent dim 0");
    expect_edit(NNE_LATENT_NONE, e_latbig, NNE_ERR_LIMIT, "latent dim 65536");
    expect_edit(NNE_LATENT_NONE, e_rawbig, NNE_ERR_LIMIT, "raw size over 1 GiB");
    expect_edit(NNE_LATENT_NONE, e_rawsize, NNE_ERR_FORMAT, "raw_size");
    expect_edit(NNE_LATENT_NONE, e_stored, NNE_ERR_FORMAT, "stored_size");
    expect_edit(NNE_LATENT_ZSTD, e_storedhuge, NNE_ERR_FORMAT, "stored_size 2^64-1");
    expect_edit(NNE_LATENT_NONE, e_id_empty, NNE_ERR_FORMAT, "empty model id");
    expect_edit(NNE_LATENT_NONE, e_id_ctrl, NNE_ERR_FORMAT, "control byte in model id");
    expect_edit(NNE_LATENT_NONE, e_id_full, NNE_ERR_FORMAT, "model id without NUL");
    expect_edit(NNE_LATENT_NONE, e_id_gap, NNE_ERR_FORMAT, "bytes after the model id's NUL");
    expect_edit(NNE_LATENT_NONE, e_reserved, NNE_ERR_FORMAT, "reserved");
    expect_edit(NNE_LATENT_NONE, e_nan, NNE_ERR_FORMAT, "NaN value");
    expect_edit(NNE_LATENT_NONE, e_inf, NNE_ERR_FORMAT, "-inf value");
    expect_edit(NNE_LATENT_NONE, e_none_to_zstd, NNE_ERR_FORMAT, "raw bytes as zstd");
    expect_edit(NNE_LATENT_NONE, e_none_to_xz, NNE_ERR_FORMAT, "raw bytes as xz");
    expect_edit(NNE_LATENT_ZSTD, e_zstd_to_xz, NNE_ERR_FORMAT, "zstd bytes as xz");
    expect_edit(NNE_LATENT_ZSTD, e_zstd_to_none, NNE_ERR_FORMAT, "zstd bytes as none");
    /* Without recomputing the CRCs, a field change is a checksum error. */
    nne_latent l;
    make_latent(&l, 2, 3, 4, 6);
    uint8_t *buf;
    size_t n;
    CHECK_OK(nne_latent_write_mem(&l, NNE_LATENT_NONE, -1, &buf, &n));
    nne_latent out;
    buf[NNE_LT_OFF_IMAGE_WIDTH] ^= 1;
    CHECK_STATUS(nne_latent_read_mem(buf, n, &out, NULL), NNE_ERR_CHECKSUM);
    buf[NNE_LT_OFF_IMAGE_WIDTH] ^= 1;
    buf[n - 1] ^= 1;
    CHECK_STATUS(nne_latent_read_mem(buf, n, &out, NULL), NNE_ERR_CHECKSUM);
    CHECK(strstr(nne_last_error(), "payload CRC-32") != NULL);
    nne_free(buf);
    nne_latent_free(&l);
    CHECK_STATUS(nne_latent_read_mem(NULL, 0, &out, NULL), NNE_ERR_FORMAT);
}

/* The payload of one latent under the header of another shape: the decompressed size must
 * be exactly the declared one, in both directions, for both compressors. */
static void test_payload_size_mismatch(void) {
    for (int k = 1; k < 3; k++) {
        for (int dir = 0; dir < 2; dir++) {
            nne_latent l;
            make_latent(&l, 4, 4, 8, 7);
            uint8_t *buf;
            size_t n;
            CHECK_OK(nne_latent_write_mem(&l, k_all[k], -1, &buf, &n));
            const uint32_t c = dir ? 16 : 4; /* more or fewer channels than the payload has */
            nne_le_wr32(buf + NNE_LT_OFF_LATENT_SHAPE + 8, c);
            nne_le_wr64(buf + NNE_LT_OFF_RAW_SIZE, 4ull * 4 * c * 4);
            nne_latent_fix_checksums(buf, n);
            nne_latent out;
            CHECK_STATUS(nne_latent_read_mem(buf, n, &out, NULL), NNE_ERR_FORMAT);
            CHECK(strstr(nne_last_error(), dir ? "header says" : "larger than") != NULL);
            nne_free(buf);
            nne_latent_free(&l);
        }
    }
}

/* Trailing bytes after the compressed stream, inside the declared payload. */
static void test_trailing_after_stream(void) {
    for (int k = 1; k < 3; k++) {
        nne_latent l;
        make_latent(&l, 4, 4, 8, 8);
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_latent_write_mem(&l, k_all[k], -1, &buf, &n));
        uint8_t *b2 = nne_malloc(n + 4);
        memcpy(b2, buf, n);
        memset(b2 + n, 0, 4); /* four zero bytes: xz stream padding, garbage to zstd */
        nne_le_wr64(b2 + NNE_LT_OFF_STORED_SIZE, n + 4 - NNE_LATENT_HEADER_SIZE);
        nne_latent_fix_checksums(b2, n + 4);
        nne_latent out;
        CHECK_STATUS(nne_latent_read_mem(b2, n + 4, &out, NULL), NNE_ERR_FORMAT);
        nne_free(b2);
        nne_free(buf);
        nne_latent_free(&l);
    }
}

/* A tiny file claiming a 1 GiB payload: refused after the stream ends, without allocating
 * the claimed size (memory follows what the stream produces). */
static void test_bomb_claim(void) {
    for (int k = 1; k < 3; k++) {
        nne_latent l;
        make_latent(&l, 4, 4, 8, 9);
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_latent_write_mem(&l, k_all[k], -1, &buf, &n));
        nne_le_wr32(buf + NNE_LT_OFF_IMAGE_WIDTH, 65535);
        nne_le_wr32(buf + NNE_LT_OFF_IMAGE_HEIGHT, 4096);
        nne_le_wr32(buf + NNE_LT_OFF_LATENT_SHAPE, 16384);
        nne_le_wr32(buf + NNE_LT_OFF_LATENT_SHAPE + 4, 16384);
        nne_le_wr32(buf + NNE_LT_OFF_LATENT_SHAPE + 8, 1);
        nne_le_wr64(buf + NNE_LT_OFF_RAW_SIZE, 16384ull * 16384 * 4);
        nne_latent_fix_checksums(buf, n);
        nne_latent out;
        const uint64_t t0 = nne_time_ns();
        CHECK_STATUS(nne_latent_read_mem(buf, n, &out, NULL), NNE_ERR_FORMAT);
        CHECK((nne_time_ns() - t0) < 2000000000ull); /* no 1 GiB memset behind our back */
        nne_free(buf);
        nne_latent_free(&l);
    }
}

static void test_files(void) {
    char dir[] = "/tmp/nnedge-latent-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/a.nnl", dir);
    nne_latent l, back;
    make_latent(&l, 5, 6, 32, 10);
    CHECK_OK(nne_latent_write_file(&l, NNE_LATENT_XZ, 6, path));
    nne_latent_info info;
    CHECK_OK(nne_latent_read_file(path, &back, &info));
    CHECK(same_latent(&l, &back));
    CHECK(info.compression == NNE_LATENT_XZ);
    nne_latent_free(&back);
    /* Errors name the file. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.nnl", dir);
    CHECK_STATUS(nne_latent_read_file(missing, &back, NULL), NNE_ERR_NOT_FOUND);
    CHECK(strstr(nne_last_error(), "missing.nnl") != NULL);
    CHECK(strncmp(nne_last_error(), "latent: ", 8) == 0);
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, 200, SEEK_SET);
        fputc(0x55, f);
        fclose(f);
    }
    nne_status s = nne_latent_read_file(path, &back, NULL);
    CHECK(s == NNE_ERR_CHECKSUM);
    CHECK(strstr(nne_last_error(), "a.nnl") != NULL);
    if (s == NNE_OK) nne_latent_free(&back);
    unlink(path);
    rmdir(dir);
    nne_latent_free(&l);
    char hex[65];
    const uint8_t h[32] = {0xAB, 0x01};
    CHECK(strncmp(nne_latent_hash_hex(h, hex), "ab0100", 6) == 0 && strlen(hex) == 64);
}

int main(void) {
    NNE_RUN(test_round_trip);
    NNE_RUN(test_writer_rejects);
    NNE_RUN(test_truncation);
    NNE_RUN(test_corruption);
    NNE_RUN(test_fields);
    NNE_RUN(test_payload_size_mismatch);
    NNE_RUN(test_trailing_after_stream);
    NNE_RUN(test_bomb_claim);
    NNE_RUN(test_files);
    return nne_test_summary();
}
