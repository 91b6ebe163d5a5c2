/* The bitstream container (.nnc, docs/bitstream.md): padding, round trips with real rANS
 * streams, the golden file, truncation at every byte, every single-bit flip and random
 * multi-byte corruption, each field rule (with the CRCs recomputed so the rule itself is
 * reached), writer validation and the file API. NNE_REGEN_GOLDEN=1 rewrites
 * tests/golden/bitstream/toy_v1.nnc and the fuzz seed corpus fuzz/corpus/fuzz_bitstream/. */
#include <string.h>
#include <unistd.h>

#include "codec/bitstream_internal.h"
#include "common/le.h"
#include "nnedge/bitstream.h"
#include "nnedge/entropy.h"
#include "nnedge/file.h"
#include "testutil.h"
#include "toy_codec.h"

static void test_padding(void) {
    int32_t pad[4];
    CHECK_OK(nne_nnc_padding(700, 500, 64, pad));
    CHECK(pad[0] == 6 && pad[1] == 2 && pad[2] == 6 && pad[3] == 2); /* 512 x 704 */
    CHECK_OK(nne_nnc_padding(65, 1, 64, pad));
    CHECK(pad[0] == 31 && pad[1] == 31 && pad[2] == 32 && pad[3] == 32); /* 64 x 128 */
    CHECK_OK(nne_nnc_padding(768, 512, 64, pad));
    CHECK(pad[0] == 0 && pad[1] == 0 && pad[2] == 0 && pad[3] == 0);
    CHECK_OK(nne_nnc_padding(3, 5, 1, pad));
    CHECK(pad[0] == 0 && pad[3] == 0);
    CHECK_STATUS(nne_nnc_padding(10, 10, 48, pad), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_nnc_padding(10, 10, 512, pad), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_nnc_padding(0, 10, 64, pad), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_nnc_padding(65535, 10, 64, pad), NNE_ERR_LIMIT); /* 65536 > max side */
}

/* A container whose streams are real rANS streams of the toy model (tests/toy_codec.h):
 * stream k holds nne_toy_count(c, k) values drawn deterministically from `seed`. The buffers
 * in bufs[] back the streams (release with free_streams). */
typedef struct toy {
    nne_nnc c;
    nne_cdf_set set;
    uint8_t *bufs[NNE_NNC_MAX_STREAMS];
    int32_t *values[NNE_NNC_MAX_STREAMS];
} toy;

static void toy_free(toy *t) {
    for (int k = 0; k < NNE_NNC_MAX_STREAMS; k++) {
        nne_free(t->bufs[k]);
        nne_free(t->values[k]);
    }
    nne_cdf_set_free(&t->set);
    memset(t, 0, sizeof *t);
}

static void toy_make(toy *t, int32_t w, int32_t h, int32_t align, int n_streams, uint32_t seed) {
    memset(t, 0, sizeof *t);
    CHECK_OK(nne_toy_tables(&t->set));
    nne_nnc *c = &t->c;
    snprintf(c->model_id, sizeof c->model_id, "toy-hyperprior");
    for (int i = 0; i < NNE_NNC_HASH_SIZE; i++) c->model_hash[i] = (uint8_t)(i * 37 + seed);
    c->image_width = w;
    c->image_height = h;
    c->image_channels = 3;
    c->align = align;
    CHECK_OK(nne_nnc_padding(w, h, align, c->pad));
    c->quality = 3;
    c->n_streams = n_streams;
    static const char *tags[4] = {"z", "y", "y2", "side"};
    uint32_t state = seed;
    for (int k = 0; k < n_streams; k++) {
        snprintf(c->streams[k].tag, sizeof c->streams[k].tag, "%s", tags[k % 4]);
        if (k >= 4) c->streams[k].tag[0] = (char)('A' + k);
        const size_t n = nne_toy_count(c, k);
        int32_t *v = nne_malloc((n ? n : 1) * sizeof *v), *idx = nne_malloc((n ? n : 1) * 4),
                *mean = nne_malloc((n ? n : 1) * 4);
        for (size_t i = 0; i < n; i++) {
            state = state * 1103515245u + 12345u;
            const int32_t u = (int32_t)(state >> 16) & 0x7fff;
            idx[i] = nne_toy_index(i, k);
            mean[i] = nne_toy_mean(i);
            v[i] = (u % 7) - 3 + (u % 301 == 0 ? -70000 : 0); /* a few escapes */
        }
        const size_t cap = nne_entropy_encode_bound(n);
        t->bufs[k] = nne_malloc(cap);
        CHECK_OK(
            nne_entropy_encode(&t->set, v, idx, mean, n, t->bufs[k], cap, &c->streams[k].size));
        c->streams[k].data = t->bufs[k];
        t->values[k] = v;
        nne_free(idx);
        nne_free(mean);
    }
}

/* Decode every stream of a parsed container with the toy model; true if all equal `ref`. */
static bool toy_decodes(const nne_nnc *c, const toy *ref) {
    nne_cdf_set set;
    if (nne_toy_tables(&set)) return false;
    bool ok = true;
    for (int k = 0; k < c->n_streams && ok; k++) {
        const size_t n = nne_toy_count(c, k);
        int32_t *v = nne_malloc((n ? n : 1) * 4), *idx = nne_malloc((n ? n : 1) * 4),
                *mean = nne_malloc((n ? n : 1) * 4);
        for (size_t i = 0; i < n; i++) {
            idx[i] = nne_toy_index(i, k);
            mean[i] = nne_toy_mean(i);
        }
        nne_status s =
            nne_entropy_decode(&set, c->streams[k].data, c->streams[k].size, idx, mean, n, v);
        CHECK_OK(s);
        ok = s == NNE_OK && memcmp(v, ref->values[k], n * 4) == 0;
        nne_free(v);
        nne_free(idx);
        nne_free(mean);
    }
    nne_cdf_set_free(&set);
    return ok;
}

static bool same_header(const nne_nnc *a, const nne_nnc *b) {
    if (strcmp(a->model_id, b->model_id) || memcmp(a->model_hash, b->model_hash, 32) ||
        a->image_width != b->image_width || a->image_height != b->image_height ||
        a->image_channels != b->image_channels || a->align != b->align ||
        memcmp(a->pad, b->pad, sizeof a->pad) || a->quality != b->quality ||
        a->n_streams != b->n_streams)
        return false;
    for (int k = 0; k < a->n_streams; k++)
        if (strcmp(a->streams[k].tag, b->streams[k].tag) ||
            a->streams[k].size != b->streams[k].size ||
            (a->streams[k].size &&
             memcmp(a->streams[k].data, b->streams[k].data, a->streams[k].size)))
            return false;
    return true;
}

static bool zeroed(const nne_nnc *c) {
    static const nne_nnc z;
    return memcmp(c, &z, sizeof z) == 0;
}

static void test_round_trip(void) {
    const struct {
        int32_t w, h, align;
        int streams;
    } cases[] = {{700, 500, 64, 2}, {1, 1, 1, 1}, {129, 65, 16, 4}, {31, 17, 256, 16}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        toy t;
        toy_make(&t, cases[ci].w, cases[ci].h, cases[ci].align, cases[ci].streams, 9);
        uint8_t *b = NULL, *b2 = NULL;
        size_t n = 0, n2 = 0;
        CHECK_OK(nne_nnc_write_mem(&t.c, &b, &n));
        CHECK_OK(nne_nnc_write_mem(&t.c, &b2, &n2));
        CHECK(n == n2 && b && b2 && memcmp(b, b2, n) == 0); /* deterministic */
        nne_nnc r;
        CHECK_OK(nne_nnc_read_mem(b, n, &r));
        CHECK_MSG(same_header(&t.c, &r), "case %zu", ci);
        CHECK(toy_decodes(&r, &t));
        CHECK(nne_nnc_find(&r, "z") == &r.streams[0]);
        CHECK(nne_nnc_find(&r, "nope") == NULL);
        nne_free(b);
        nne_free(b2);
        toy_free(&t);
    }
}

static uint8_t *golden_bytes(size_t *n) {
    toy t;
    toy_make(&t, 300, 200, 64, 2, 1);
    uint8_t *b = NULL;
    CHECK_OK(nne_nnc_write_mem(&t.c, &b, n));
    toy_free(&t);
    return b;
}

/* The format is frozen: the toy container must serialize to the committed bytes, and the
 * committed file must parse and decode. */
static void test_golden(void) {
    size_t n = 0;
    uint8_t *b = golden_bytes(&n);
    if (!b) return;
    size_t gn = 0;
    unsigned char *gold = nne_test_golden_bytes("tests/golden/bitstream/toy_v1.nnc", b, n, &gn);
    if (gold) {
        nne_nnc r;
        CHECK_OK(nne_nnc_read_mem(gold, gn, &r));
        toy t;
        toy_make(&t, 300, 200, 64, 2, 1);
        CHECK(same_header(&t.c, &r));
        CHECK(toy_decodes(&r, &t));
        toy_free(&t);
    }
    nne_free(gold);
    nne_free(b);
}

/* With NNE_REGEN_GOLDEN=1, write the fuzz seed corpus: toy containers the fuzz target can
 * decode, of several shapes (each < 64 KB). */
static void test_fuzz_seeds(void) {
    const struct {
        int32_t w, h, align;
        int streams;
        const char *name;
    } seeds[] = {{300, 200, 64, 2, "toy_2streams.nnc"},
                 {1, 1, 1, 1, "toy_1x1.nnc"},
                 {40, 24, 8, 4, "toy_4streams.nnc"},
                 {17, 9, 16, 16, "toy_16streams.nnc"}};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        toy t;
        toy_make(&t, seeds[i].w, seeds[i].h, seeds[i].align, seeds[i].streams, (uint32_t)i);
        uint8_t *b = NULL;
        size_t n = 0;
        CHECK_OK(nne_nnc_write_mem(&t.c, &b, &n));
        CHECK_MSG(n < 64 * 1024, "seed %s is %zu bytes", seeds[i].name, n);
        if (nne_test_regen() && b) {
            char rel[128];
            snprintf(rel, sizeof rel, "fuzz/corpus/fuzz_bitstream/%s", seeds[i].name);
            nne_test_write_rel(rel, b, n);
        }
        nne_free(b);
        toy_free(&t);
    }
}

/* Every proper prefix is refused with a message and a zeroed result; no over-read (ASan). */
static void test_truncation(void) {
    size_t n = 0;
    uint8_t *b = golden_bytes(&n);
    if (!b) return;
    int accepted = 0;
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = nne_malloc(cut ? cut : 1);
        memcpy(p, b, cut);
        nne_nnc r;
        nne_status s = nne_nnc_read_mem(p, cut, &r);
        if (s == NNE_OK)
            accepted++;
        else {
            CHECK(zeroed(&r));
            CHECK(strncmp(nne_last_error(), "nnc: ", 5) == 0);
        }
        nne_free(p);
    }
    CHECK_MSG(accepted == 0, "%d truncations accepted", accepted);
    /* A byte too many. */
    uint8_t *p = nne_malloc(n + 1);
    memcpy(p, b, n);
    p[n] = 0;
    nne_nnc r;
    CHECK_STATUS(nne_nnc_read_mem(p, n + 1, &r), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "trailing bytes") != NULL);
    nne_free(p);
    nne_free(b);
}

/* Every single-bit flip anywhere is refused (CRC-32 catches all of them), and so are random
 * multi-byte corruptions. */
static void test_corruption(void) {
    size_t n = 0;
    uint8_t *b = golden_bytes(&n);
    if (!b) return;
    uint8_t *p = nne_malloc(n);
    int accepted = 0;
    for (size_t at = 0; at < n; at++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(p, b, n);
            p[at] ^= (uint8_t)(1u << bit);
            nne_nnc r;
            if (nne_nnc_read_mem(p, n, &r) == NNE_OK) accepted++;
        }
    CHECK_MSG(accepted == 0, "%d single-bit flips accepted", accepted);
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 12);
    accepted = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(p, b, n);
        const int k = nne_test_rng_int(&rng, 2, 6);
        for (int j = 0; j < k; j++)
            p[nne_test_rng_u64(&rng) % n] ^= (uint8_t)nne_test_rng_int(&rng, 1, 255);
        nne_nnc r;
        if (nne_nnc_read_mem(p, n, &r) == NNE_OK) accepted++;
    }
    CHECK_MSG(accepted == 0, "%d random corruptions accepted", accepted);
    nne_free(p);
    nne_free(b);
}

/* Mutate one u32 field of the golden file, fix the CRCs, expect `want`. */
static void expect_field(const uint8_t *b, size_t n, size_t off, uint32_t v, nne_status want,
                         const char *msg) {
    uint8_t *p = nne_malloc(n);
    memcpy(p, b, n);
    nne_le_wr32(p + off, v);
    nne_nnc_fix_checksums(p, n);
    nne_nnc r;
    nne_status s = nne_nnc_read_mem(p, n, &r);
    CHECK_MSG(s == want, "offset %zu = %u: got %s (%s), want %s", off, v, nne_status_str(s),
              nne_last_error(), nne_status_str(want));
    if (s != NNE_OK && msg)
        CHECK_MSG(strstr(nne_last_error(), msg) != NULL, "'%s' lacks '%s'", nne_last_error(), msg);
    if (s != NNE_OK) CHECK(zeroed(&r));
    nne_free(p);
}

static void test_fields(void) {
    size_t n = 0;
    uint8_t *b = golden_bytes(&n);
    if (!b) return;
    /* 300x200 at align 64: padded 320x256, pad {28, 10, 28, 10}; two streams. */
    expect_field(b, n, NNE_NNC_OFF_VERSION, 2, NNE_ERR_UNSUPPORTED, "version 2");
    expect_field(b, n, NNE_NNC_OFF_VERSION, 0, NNE_ERR_UNSUPPORTED, "version 0");
    expect_field(b, n, NNE_NNC_OFF_HEADER_SIZE, 200, NNE_ERR_FORMAT, "header_size");
    expect_field(b, n, NNE_NNC_OFF_FLAGS, 1, NNE_ERR_UNSUPPORTED, "flags");
    expect_field(b, n, NNE_NNC_OFF_N_STREAMS, 0, NNE_ERR_FORMAT, "no streams");
    expect_field(b, n, NNE_NNC_OFF_N_STREAMS, 17, NNE_ERR_LIMIT, "17 streams");
    expect_field(b, n, NNE_NNC_OFF_N_STREAMS, 0xffffffffu, NNE_ERR_LIMIT, "streams");
    expect_field(b, n, NNE_NNC_OFF_N_STREAMS, 1, NNE_ERR_FORMAT, "header_size");
    expect_field(b, n, NNE_NNC_OFF_IMAGE_CHANNELS, 1, NNE_ERR_UNSUPPORTED, "channels");
    expect_field(b, n, NNE_NNC_OFF_IMAGE_WIDTH, 0, NNE_ERR_FORMAT, "empty");
    expect_field(b, n, NNE_NNC_OFF_IMAGE_WIDTH, 301, NNE_ERR_FORMAT, "multiple of 64");
    expect_field(b, n, NNE_NNC_OFF_IMAGE_WIDTH, 300 + 64, NNE_OK, NULL);
    expect_field(b, n, NNE_NNC_OFF_IMAGE_HEIGHT, 0xffffffffu, NNE_ERR_FORMAT, "multiple");
    expect_field(b, n, NNE_NNC_OFF_ALIGN, 0, NNE_ERR_FORMAT, "power of two");
    expect_field(b, n, NNE_NNC_OFF_ALIGN, 48, NNE_ERR_FORMAT, "power of two");
    expect_field(b, n, NNE_NNC_OFF_ALIGN, 512, NNE_ERR_FORMAT, "power of two");
    expect_field(b, n, NNE_NNC_OFF_ALIGN, 32, NNE_ERR_FORMAT, "padding"); /* 28 + 28 rows >= 32 */
    expect_field(b, n, NNE_NNC_OFF_PAD, 92, NNE_ERR_FORMAT, "padding");   /* >= align */
    expect_field(b, n, NNE_NNC_OFF_PAD, 27, NNE_ERR_FORMAT, "multiple");
    expect_field(b, n, NNE_NNC_OFF_PAD + 12, 0xffffffffu, NNE_ERR_FORMAT, "padding");
    expect_field(b, n, NNE_NNC_OFF_QUALITY, 256, NNE_ERR_FORMAT, "quality");
    expect_field(b, n, NNE_NNC_OFF_QUALITY, 255, NNE_OK, NULL);
    expect_field(b, n, NNE_NNC_OFF_MODEL_ID, 0, NNE_ERR_FORMAT, "model id");
    expect_field(b, n, NNE_NNC_OFF_MODEL_ID + 28, 0x41, NNE_ERR_FORMAT, "model id"); /* no NUL */
    expect_field(b, n, NNE_NNC_OFF_MODEL_ID, 0x0179, NNE_ERR_FORMAT, "model id");
    const size_t e0 = NNE_NNC_OFF_STREAMS, e1 = e0 + NNE_NNC_ENTRY_SIZE;
    expect_field(b, n, e0, 0, NNE_ERR_FORMAT, "tag");                /* empty */
    expect_field(b, n, e0, 0x20, NNE_ERR_FORMAT, "tag");             /* space */
    expect_field(b, n, e0, 0x00610000 | 'z', NNE_ERR_FORMAT, "tag"); /* "z\0a" */
    expect_field(b, n, e0, 'y', NNE_ERR_FORMAT, "repeats");          /* duplicate */
    expect_field(b, n, e0, 0x7a7a7a7a, NNE_OK, NULL);                /* "zzzz" */
    expect_field(b, n, e0 + 4, 1, NNE_ERR_FORMAT, "reserved");
    const uint32_t s1 = nne_le_rd32(b + e1 + 8);
    expect_field(b, n, e1 + 8, s1 + 1, NNE_ERR_FORMAT, "truncated");
    expect_field(b, n, e1 + 8, s1 - 1, NNE_ERR_FORMAT, "trailing bytes");
    expect_field(b, n, e1 + 12, 1, NNE_ERR_FORMAT, "truncated"); /* size >= 2^32 */
    {
        uint8_t *p = nne_malloc(n);
        memcpy(p, b, n);
        nne_le_wr64(p + e0 + 8, UINT64_MAX);
        nne_nnc_fix_checksums(p, n);
        nne_nnc r;
        CHECK_STATUS(nne_nnc_read_mem(p, n, &r), NNE_ERR_FORMAT);
        /* The CRCs themselves: stored wrong -> CHECKSUM. */
        memcpy(p, b, n);
        p[NNE_NNC_OFF_PAYLOAD_CRC] ^= 1;
        nne_le_wr32(p + NNE_NNC_HEADER_SIZE(2) - 4, nne_crc32(0, p, NNE_NNC_HEADER_SIZE(2) - 4));
        CHECK_STATUS(nne_nnc_read_mem(p, n, &r), NNE_ERR_CHECKSUM);
        CHECK(strstr(nne_last_error(), "payload CRC") != NULL);
        memcpy(p, b, n);
        p[NNE_NNC_OFF_IMAGE_WIDTH] ^= 1;
        CHECK_STATUS(nne_nnc_read_mem(p, n, &r), NNE_ERR_CHECKSUM);
        CHECK(strstr(nne_last_error(), "header CRC") != NULL);
        memcpy(p, "NNEDGEL", 8);
        CHECK_STATUS(nne_nnc_read_mem(p, n, &r), NNE_ERR_FORMAT);
        CHECK(strstr(nne_last_error(), "bad magic") != NULL);
        CHECK_STATUS(nne_nnc_read_mem(NULL, 5, &r), NNE_ERR_INVALID_ARG);
        CHECK_STATUS(nne_nnc_read_mem(NULL, 0, &r), NNE_ERR_FORMAT);
        nne_free(p);
    }
    /* A huge image within the header but over the limits: LIMIT. */
    {
        uint8_t *p = nne_malloc(n);
        memcpy(p, b, n);
        nne_le_wr32(p + NNE_NNC_OFF_ALIGN, 1);
        for (int i = 0; i < 4; i++) nne_le_wr32(p + NNE_NNC_OFF_PAD + 4 * i, 0);
        nne_le_wr32(p + NNE_NNC_OFF_IMAGE_WIDTH, 65536);
        nne_nnc_fix_checksums(p, n);
        nne_nnc r;
        CHECK_STATUS(nne_nnc_read_mem(p, n, &r), NNE_ERR_LIMIT);
        nne_le_wr32(p + NNE_NNC_OFF_IMAGE_WIDTH, 20000);
        nne_le_wr32(p + NNE_NNC_OFF_IMAGE_HEIGHT, 20000); /* 4e8 > 2^28 pixels */
        nne_nnc_fix_checksums(p, n);
        CHECK_STATUS(nne_nnc_read_mem(p, n, &r), NNE_ERR_LIMIT);
        nne_free(p);
    }
    nne_free(b);
}

static void test_writer_errors(void) {
    toy t;
    toy_make(&t, 100, 50, 16, 2, 4);
    uint8_t *b = NULL;
    size_t n = 0;
    nne_nnc c = t.c;
    c.n_streams = 0;
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    c = t.c;
    snprintf(c.streams[1].tag, sizeof c.streams[1].tag, "z");
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    CHECK(strstr(nne_last_error(), "repeats") != NULL);
    c = t.c;
    c.streams[1].tag[0] = 0;
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    c = t.c;
    memcpy(c.streams[1].tag, "abcde", 5); /* no NUL within 5 bytes */
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    c = t.c;
    c.model_id[0] = 0;
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    c = t.c;
    c.pad[0]++;
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    c = t.c;
    c.image_channels = 4;
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    c = t.c;
    c.streams[0].data = NULL;
    CHECK_STATUS(nne_nnc_write_mem(&c, &b, &n), NNE_ERR_INVALID_ARG);
    c = t.c;
    c.streams[0].size = 0; /* an empty stream is fine */
    CHECK_OK(nne_nnc_write_mem(&c, &b, &n));
    CHECK(b != NULL);
    nne_free(b);
    toy_free(&t);
}

static void test_file(void) {
    toy t;
    toy_make(&t, 64, 64, 64, 2, 5);
    char dir[] = "/tmp/nne_nnc_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/a.nnc", dir);
    CHECK_OK(nne_nnc_write_file(&t.c, path));
    uint8_t *buf = NULL;
    size_t n = 0;
    CHECK_OK(nne_file_read(path, 1 << 20, &buf, &n));
    nne_nnc r;
    if (buf) {
        CHECK_OK(nne_nnc_read_mem(buf, n, &r));
        CHECK(same_header(&t.c, &r));
    }
    nne_free(buf);
    unlink(path);
    rmdir(dir);
    toy_free(&t);
}

int main(void) {
    NNE_RUN(test_padding);
    NNE_RUN(test_round_trip);
    NNE_RUN(test_golden);
    NNE_RUN(test_fuzz_seeds);
    NNE_RUN(test_truncation);
    NNE_RUN(test_corruption);
    NNE_RUN(test_fields);
    NNE_RUN(test_writer_errors);
    NNE_RUN(test_file);
    return nne_test_summary();
}
