/* The NNEGOLD1 loader (tests/golden.c): a hand-built file image parses to the expected
 * arrays; every truncation and a set of corruptions are rejected with NNE_ERR_FORMAT. */
#include <string.h>

#include "golden.h"
#include "testutil.h"

typedef struct {
    unsigned char b[512];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n) {
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put_u32(buf_t *b, uint32_t v) {
    const unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                                 (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, le, 4);
}

/* Offsets of fields that the corruption test pokes at. */
static size_t off_count, off_name_len, off_dtype, off_ndim, off_dim0, off_name2;

/* "x": f32 [2][3] = 0..5 * 0.5;  "p": i32 [2] = {-7, 9};  "op": u8 "conv2d";  "s": f32
 * scalar (ndim 0) = -1.25. */
static void build(buf_t *b) {
    b->n = 0;
    put(b, "NNEGOLD1", 8);
    off_count = b->n;
    put_u32(b, 4);
    off_name_len = b->n;
    put_u32(b, 1);
    put(b, "x", 1);
    off_dtype = b->n;
    put_u32(b, NNE_GOLDEN_F32);
    off_ndim = b->n;
    put_u32(b, 2);
    off_dim0 = b->n;
    put_u32(b, 2), put_u32(b, 3);
    for (int i = 0; i < 6; i++) {
        const float f = 0.5f * (float)i;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_u32(b, u);
    }
    put_u32(b, 1);
    off_name2 = b->n;
    put(b, "p", 1);
    put_u32(b, NNE_GOLDEN_I32), put_u32(b, 1), put_u32(b, 2);
    put_u32(b, (uint32_t)-7), put_u32(b, 9);
    put_u32(b, 2), put(b, "op", 2), put_u32(b, NNE_GOLDEN_U8), put_u32(b, 1), put_u32(b, 6);
    put(b, "conv2d", 6);
    const float s = -1.25f;
    uint32_t u;
    memcpy(&u, &s, 4);
    put_u32(b, 1), put(b, "s", 1), put_u32(b, NNE_GOLDEN_F32), put_u32(b, 0), put_u32(b, u);
}

static void test_parse_valid(void) {
    buf_t b;
    build(&b);
    nne_golden g;
    CHECK_OK(nne_golden_parse(b.b, b.n, "mem", &g));
    CHECK(g.n == 4);
    size_t n = 0;
    const float *x = nne_golden_f32(&g, "x", &n);
    CHECK(x && n == 6 && x[0] == 0.0f && x[5] == 2.5f);
    const nne_golden_array *xa = nne_golden_find(&g, "x");
    CHECK(xa && xa->ndim == 2 && xa->dims[0] == 2 && xa->dims[1] == 3);
    CHECK(nne_golden_i32_at(&g, "p", 0, 0) == -7 && nne_golden_i32_at(&g, "p", 1, 0) == 9);
    CHECK(nne_golden_i32_at(&g, "p", 2, 42) == 42); /* out of range -> default */
    CHECK(nne_golden_f32(&g, "p", NULL) == NULL);   /* wrong dtype */
    CHECK(strcmp(nne_golden_str(&g, "op", ""), "conv2d") == 0);
    CHECK(strcmp(nne_golden_str(&g, "nope", "dflt"), "dflt") == 0);
    const float *s = nne_golden_f32(&g, "s", &n);
    CHECK(s && n == 1 && s[0] == -1.25f);
    nne_golden_free(&g);
    CHECK(g.n == 0 && g.arrays == NULL);
}

static void test_truncations_rejected(void) {
    buf_t b;
    build(&b);
    for (size_t len = 0; len < b.n; len++) {
        nne_golden g;
        CHECK_STATUS(nne_golden_parse(b.b, len, "mem", &g), NNE_ERR_FORMAT);
        CHECK(g.n == 0 && g.arrays == NULL);
    }
    /* Trailing garbage is an error too. */
    nne_golden g;
    b.b[b.n] = 0;
    CHECK_STATUS(nne_golden_parse(b.b, b.n + 1, "mem", &g), NNE_ERR_FORMAT);
}

static void poke_u32(buf_t *b, size_t off, uint32_t v) {
    const size_t n = b->n;
    b->n = off;
    put_u32(b, v);
    b->n = n;
}

static void test_corruptions_rejected(void) {
    struct {
        size_t *off;
        uint32_t v;
    } cases[] = {
        {&off_count, 1000000},    /* count beyond the file */
        {&off_count, 5},          /* one record missing */
        {&off_name_len, 0},       /* empty name */
        {&off_name_len, 300},     /* name too long */
        {&off_dtype, 3},          /* unknown dtype */
        {&off_ndim, 9},           /* too many dims */
        {&off_dim0, 0x80000000u}, /* negative dim */
        {&off_dim0, 0x40000000u}, /* data past the end */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_t b;
        build(&b);
        poke_u32(&b, *cases[i].off, cases[i].v);
        nne_golden g;
        CHECK_STATUS(nne_golden_parse(b.b, b.n, "mem", &g), NNE_ERR_FORMAT);
    }
    buf_t b;
    nne_golden g;
    build(&b);
    b.b[0] = 'X'; /* magic */
    CHECK_STATUS(nne_golden_parse(b.b, b.n, "mem", &g), NNE_ERR_FORMAT);
    build(&b);
    b.b[off_name2] = 'x'; /* duplicate name */
    CHECK_STATUS(nne_golden_parse(b.b, b.n, "mem", &g), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "duplicate") != NULL);
    build(&b);
    b.b[off_name2] = '\n'; /* non-printable name */
    CHECK_STATUS(nne_golden_parse(b.b, b.n, "mem", &g), NNE_ERR_FORMAT);
    CHECK_STATUS(nne_golden_load("/nonexistent/x.gold", &g), NNE_ERR_IO);
}

static void test_compare(void) {
    const float ref[] = {1.0f, -2.0f, 0.0f, NAN, INFINITY};
    const float ok[] = {1.0f + 1e-7f, -2.0f, 1e-9f, NAN, INFINITY};
    const float bad[] = {1.1f, -2.0f, 0.0f, 0.0f, INFINITY};
    nne_golden_cmp r;
    CHECK(nne_golden_compare(ok, ref, 5, 1e-6, 1e-6, &r));
    CHECK(r.n_bad == 0 && r.max_abs > 0 && r.max_abs < 1e-6);
    CHECK(!nne_golden_compare(bad, ref, 5, 1e-6, 1e-6, &r));
    CHECK(r.n_bad == 2 && r.worst == 3); /* NaN vs 0 is the worst (infinite excess) */
}

int main(void) {
    NNE_RUN(test_parse_valid);
    NNE_RUN(test_truncations_rejected);
    NNE_RUN(test_corruptions_rejected);
    NNE_RUN(test_compare);
    return nne_test_summary();
}
