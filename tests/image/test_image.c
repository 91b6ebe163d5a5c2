/* Image I/O: round trips, flags, golden files decoded by Pillow, malformed inputs, atomic
 * saves, conversions, and the SHA-256 used by the Kodak test. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image_testlib.h"
#include "nnedge/sha256.h"

/* ------------------------------------------------------------------ SHA-256 (FIPS 180-2) */

static void test_sha256_vectors(void) {
    char hex[65];
    nne_sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    nne_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    nne_sha256_hex(m448, strlen(m448), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* One million 'a' fed in uneven pieces: exercises the block buffering. */
    static char a[1000];
    memset(a, 'a', sizeof a);
    nne_sha256 c;
    uint8_t d[32];
    nne_sha256_init(&c);
    size_t left = 1000000, k = 0;
    while (left) {
        size_t take = 1 + (k++ * 37) % 999;
        if (take > left) take = left;
        nne_sha256_update(&c, a, take);
        left -= take;
    }
    nne_sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

/* ------------------------------------------------------------------ round trips */

static const int sizes[][2] = {{1, 1}, {3, 7}, {7, 3}, {17, 1}, {1, 19}, {64, 33}, {255, 2}};

static void test_roundtrip_memory(void) {
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (int c = 1; c <= 4; c++) {
            nne_image img, back;
            CHECK_OK(img_random(&img, sizes[si][0], sizes[si][1], c, 100 * si + c));
            for (int f = NNE_IMAGE_FORMAT_PNG; f <= NNE_IMAGE_FORMAT_PGM; f++) {
                uint8_t *buf = NULL;
                size_t n = 0;
                int ok_fmt = f == NNE_IMAGE_FORMAT_PNG || (f == NNE_IMAGE_FORMAT_PPM && c == 3) ||
                             (f == NNE_IMAGE_FORMAT_PGM && c == 1);
                nne_status s = nne_image_encode(&img, (nne_image_format)f, &buf, &n);
                if (!ok_fmt) {
                    CHECK_STATUS(s, NNE_ERR_INVALID_ARG);
                    CHECK(buf == NULL && n == 0);
                    continue;
                }
                CHECK_OK(s);
                CHECK(nne_image_detect(buf, n) == (nne_image_format)f);
                CHECK_OK(nne_image_decode(buf, n, NNE_IMAGE_LOAD_ANY, &back));
                CHECK_MSG(img_equal(&img, &back), "%dx%dx%d format %d", sizes[si][0], sizes[si][1],
                          c, f);
                nne_image_free(&back);
                nne_free(buf);
            }
            nne_image_free(&img);
        }
    }
}

static void test_roundtrip_files(void) {
    char dir[256];
    if (!make_temp_dir(dir, sizeof dir)) {
        CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    static const struct {
        const char *name;
        int c;
    } cases[] = {
        {"a.png", 1}, {"b.png", 2}, {"c.PNG", 3}, {"d.png", 4},
        {"e.ppm", 3}, {"f.pgm", 1}, {"g.pnm", 1}, {"h.pnm", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nne_image img, back;
        CHECK_OK(img_random(&img, 5 + (int)i, 3 + (int)i, cases[i].c, 7 + i));
        const char *path = nne_test_path(dir, cases[i].name);
        CHECK_OK(nne_image_save(path, &img));
        CHECK_OK(nne_image_load(path, NNE_IMAGE_LOAD_ANY, &back));
        CHECK_MSG(img_equal(&img, &back), "%s", cases[i].name);
        nne_image_free(&back);
        /* Overwriting keeps the file's permissions. */
        CHECK(chmod(path, 0640) == 0);
        CHECK_OK(nne_image_save(path, &img));
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);
        nne_image_free(&img);
    }
    /* No temporary file is left behind. */
    CHECK(count_entries(dir) == (int)(sizeof cases / sizeof cases[0]));
    rm_dir_flat(dir);
}

/* ------------------------------------------------------------------ flags */

static nne_status encode_png(const nne_image *img, uint8_t **buf, size_t *n) {
    return nne_image_encode(img, NNE_IMAGE_FORMAT_PNG, buf, n);
}

static void test_flags(void) {
    nne_image rgba, ga, gray, out;
    CHECK_OK(img_random(&rgba, 6, 5, 4, 1));
    CHECK_OK(img_random(&ga, 5, 6, 2, 2));
    CHECK_OK(img_random(&gray, 4, 3, 1, 3));
    uint8_t *b_rgba, *b_ga, *b_gray;
    size_t n_rgba, n_ga, n_gray;
    CHECK_OK(encode_png(&rgba, &b_rgba, &n_rgba));
    CHECK_OK(encode_png(&ga, &b_ga, &n_ga));
    CHECK_OK(encode_png(&gray, &b_gray, &n_gray));

    /* RGBA. */
    CHECK_OK(nne_image_decode(b_rgba, n_rgba, NNE_IMAGE_LOAD_DROP_ALPHA, &out));
    CHECK(out.channels == 3);
    for (int i = 0; i < 30; i++) CHECK(!memcmp(out.data + 3 * i, rgba.data + 4 * i, 3));
    nne_image_free(&out);
    CHECK_STATUS(nne_image_decode(b_rgba, n_rgba, NNE_IMAGE_LOAD_RGB, &out), NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "<memory>") && strstr(nne_last_error(), "alpha"));
    CHECK(img_is_zeroed(&out));
    CHECK_OK(
        nne_image_decode(b_rgba, n_rgba, NNE_IMAGE_LOAD_RGB | NNE_IMAGE_LOAD_DROP_ALPHA, &out));
    CHECK(out.channels == 3 && out.data[5] == rgba.data[6]);
    nne_image_free(&out);

    /* Gray + alpha. */
    CHECK_OK(nne_image_decode(b_ga, n_ga, NNE_IMAGE_LOAD_ANY, &out));
    CHECK(img_equal(&out, &ga));
    nne_image_free(&out);
    CHECK_OK(nne_image_decode(b_ga, n_ga, NNE_IMAGE_LOAD_DROP_ALPHA, &out));
    CHECK(out.channels == 1);
    for (int i = 0; i < 30; i++) CHECK(out.data[i] == ga.data[2 * i]);
    nne_image_free(&out);
    CHECK_STATUS(nne_image_decode(b_ga, n_ga, NNE_IMAGE_LOAD_RGB, &out), NNE_ERR_UNSUPPORTED);
    CHECK_OK(nne_image_decode(b_ga, n_ga, NNE_IMAGE_LOAD_RGB | NNE_IMAGE_LOAD_DROP_ALPHA, &out));
    CHECK(out.channels == 3);
    for (int i = 0; i < 30; i++)
        CHECK(out.data[3 * i] == ga.data[2 * i] && out.data[3 * i + 1] == ga.data[2 * i] &&
              out.data[3 * i + 2] == ga.data[2 * i]);
    nne_image_free(&out);

    /* Gray: LOAD_RGB replicates, DROP_ALPHA is a no-op. */
    CHECK_OK(nne_image_decode(b_gray, n_gray, NNE_IMAGE_LOAD_DROP_ALPHA, &out));
    CHECK(img_equal(&out, &gray));
    nne_image_free(&out);
    CHECK_OK(nne_image_decode(b_gray, n_gray, NNE_IMAGE_LOAD_RGB, &out));
    CHECK(out.channels == 3 && out.data[9] == gray.data[3] && out.data[11] == gray.data[3]);
    nne_image_free(&out);

    /* PGM with LOAD_RGB. */
    uint8_t *pgm;
    size_t n_pgm;
    CHECK_OK(nne_image_encode(&gray, NNE_IMAGE_FORMAT_PGM, &pgm, &n_pgm));
    CHECK_OK(nne_image_decode(pgm, n_pgm, NNE_IMAGE_LOAD_RGB, &out));
    CHECK(out.channels == 3 && out.data[9] == gray.data[3] && out.data[10] == gray.data[3]);
    nne_image_free(&out);

    /* Unknown flag bits. */
    CHECK_STATUS(nne_image_decode(b_gray, n_gray, 8, &out), NNE_ERR_INVALID_ARG);
    CHECK(img_is_zeroed(&out));

    nne_free(pgm);
    nne_free(b_rgba);
    nne_free(b_ga);
    nne_free(b_gray);
    nne_image_free(&rgba);
    nne_image_free(&ga);
    nne_image_free(&gray);
}

/* ------------------------------------------------------------------ golden files (Pillow) */

/* The expected result of decoding with `flags`, derived from the ANY decode. */
static nne_status apply_flags(const nne_image *any, int flags, nne_image *out) {
    nne_image tmp;
    const nne_image *cur = any;
    nne_status s;
    if ((flags & NNE_IMAGE_LOAD_DROP_ALPHA) && (any->channels == 2 || any->channels == 4)) {
        if ((s = nne_image_drop_alpha(any, &tmp)) != NNE_OK) return s;
        cur = &tmp;
    }
    if (flags & NNE_IMAGE_LOAD_RGB) {
        s = nne_image_to_rgb(cur, out);
    } else {
        s = nne_image_drop_alpha(cur, out); /* a copy, as cur has no alpha or keeps it */
        if (cur == any && s == NNE_OK && (any->channels == 2 || any->channels == 4)) {
            nne_image_free(out);
            s = nne_image_alloc(out, any->width, any->height, any->channels);
            if (s == NNE_OK)
                memcpy(out->data, any->data,
                       (size_t)any->width * (size_t)any->height * (size_t)any->channels);
        }
    }
    if (cur == &tmp) nne_image_free(&tmp);
    return s;
}

static void test_golden_pillow(void) {
    const char *gdir = nne_test_path(nne_test_source_dir(), "tests/golden/images");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", gdir);
    size_t mlen;
    char *manifest = (char *)nne_test_read_file(nne_test_path(dir, "MANIFEST"), &mlen);
    CHECK(manifest != NULL);
    if (!manifest) return;
    int files = 0;
    for (char *line = strtok(manifest, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char name[128];
        int w, h, c;
        if (sscanf(line, "%127s %d %d %d", name, &w, &h, &c) != 4) {
            CHECK_MSG(0, "bad MANIFEST line: %s", line);
            continue;
        }
        char raw_name[160];
        snprintf(raw_name, sizeof raw_name, "%s.raw", name);
        size_t rn;
        uint8_t *raw = nne_test_read_file(nne_test_path(dir, raw_name), &rn);
        CHECK_MSG(raw && rn == (size_t)w * h * c, "%s", raw_name);
        if (!raw || rn != (size_t)w * h * c) {
            nne_free(raw);
            continue;
        }
        nne_image img;
        nne_status s = nne_image_load(nne_test_path(dir, name), NNE_IMAGE_LOAD_ANY, &img);
        CHECK_MSG(s == NNE_OK, "%s: %s", name, nne_last_error());
        if (s == NNE_OK) {
            nne_image want = {w, h, c, raw};
            CHECK_MSG(img_equal(&img, &want), "%s: decoded %dx%dx%d, Pillow %dx%dx%d%s", name,
                      (int)img.width, (int)img.height, (int)img.channels, w, h, c,
                      img.channels == c ? " (pixels differ)" : "");
            /* Every flag combination agrees with the ANY decode plus explicit conversion. */
            const int all_flags[] = {NNE_IMAGE_LOAD_DROP_ALPHA, NNE_IMAGE_LOAD_RGB,
                                     NNE_IMAGE_LOAD_RGB | NNE_IMAGE_LOAD_DROP_ALPHA};
            for (int k = 0; k < 3; k++) {
                nne_image got, exp;
                int has_alpha = c == 2 || c == 4;
                s = nne_image_load(nne_test_path(dir, name), all_flags[k], &got);
                if (all_flags[k] == NNE_IMAGE_LOAD_RGB && has_alpha) {
                    CHECK_MSG(s == NNE_ERR_UNSUPPORTED, "%s flags %d", name, all_flags[k]);
                    continue;
                }
                CHECK_MSG(s == NNE_OK, "%s flags %d: %s", name, all_flags[k], nne_last_error());
                if (s != NNE_OK) continue;
                CHECK_OK(apply_flags(&img, all_flags[k], &exp));
                CHECK_MSG(img_equal(&got, &exp), "%s flags %d", name, all_flags[k]);
                nne_image_free(&got);
                nne_image_free(&exp);
            }
            nne_image_free(&img);
        }
        nne_free(raw);
        files++;
    }
    CHECK(files >= 20);
    nne_free(manifest);
}

/* ------------------------------------------------------------------ malformed input */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Offset of the first chunk of type `type` (its length field), or 0. */
static size_t find_chunk(const uint8_t *png, size_t n, const char *type) {
    size_t pos = 8;
    while (pos + 12 <= n) {
        uint32_t len = be32(png + pos);
        if (!memcmp(png + pos + 4, type, 4)) return pos;
        pos += 12 + (size_t)len;
    }
    return 0;
}

static void fix_crc(uint8_t *png, size_t chunk) {
    uint32_t len = be32(png + chunk);
    put_be32(png + chunk + 8 + len, nne_crc32(0, png + chunk + 4, 4 + (size_t)len));
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_truncated(void) {
    /* Every proper prefix of a valid file fails with a format error and a message. */
    nne_image img, out;
    CHECK_OK(img_random(&img, 9, 7, 3, 42));
    for (int f = NNE_IMAGE_FORMAT_PNG; f <= NNE_IMAGE_FORMAT_PPM; f++) {
        uint8_t *buf;
        size_t n;
        CHECK_OK(nne_image_encode(&img, (nne_image_format)f, &buf, &n));
        for (size_t len = 0; len < n; len++) {
            nne_status s = nne_image_decode(buf, len, NNE_IMAGE_LOAD_ANY, &out);
            CHECK_MSG(s == NNE_ERR_FORMAT, "format %d truncated to %zu: %s", f, len,
                      nne_last_error());
            CHECK_MSG(starts_with(nne_last_error(), "<memory>: "), "%s", nne_last_error());
            CHECK(img_is_zeroed(&out));
            if (len >= 8 && f == NNE_IMAGE_FORMAT_PNG)
                CHECK_MSG(strstr(nne_last_error(), "truncated PNG ("), "%s", nne_last_error());
        }
        nne_free(buf);
    }
    /* An interlaced golden file, truncated everywhere. */
    size_t n;
    uint8_t *il = nne_test_read_file(
        nne_test_path(nne_test_source_dir(), "tests/golden/images/rgba16_adam7.png"), &n);
    CHECK(il != NULL);
    for (size_t len = 0; il && len < n; len++)
        CHECK_STATUS(
            nne_image_decode(il, len, NNE_IMAGE_LOAD_RGB | NNE_IMAGE_LOAD_DROP_ALPHA, &out),
            NNE_ERR_FORMAT);
    /* Trailing bytes after IEND are ignored. */
    if (il) {
        uint8_t *more = nne_malloc(n + 5);
        memcpy(more, il, n);
        memcpy(more + n, "junk!", 5);
        CHECK_OK(nne_image_decode(more, n + 5, NNE_IMAGE_LOAD_ANY, &out));
        nne_image_free(&out);
        nne_free(more);
    }
    nne_free(il);
    nne_image_free(&img);
}

static void test_truncated_file_message(void) {
    char dir[256];
    if (!make_temp_dir(dir, sizeof dir)) return;
    nne_image img, out;
    CHECK_OK(img_random(&img, 40, 30, 3, 5)); /* random: IDAT is large, no compression */
    uint8_t *buf;
    size_t n;
    CHECK_OK(nne_image_encode(&img, NNE_IMAGE_FORMAT_PNG, &buf, &n));
    size_t idat = find_chunk(buf, n, "IDAT");
    CHECK(idat > 0);
    const char *path = nne_test_path(dir, "photo.png");
    CHECK(write_bytes(path, buf, idat + 8 + 100) == 0);
    CHECK_STATUS(nne_image_load(path, NNE_IMAGE_LOAD_ANY, &out), NNE_ERR_FORMAT);
    char want[4200];
    snprintf(want, sizeof want, "%s: truncated PNG (IDAT)", path);
    CHECK_MSG(!strcmp(nne_last_error(), want), "got '%s'", nne_last_error());
    /* Missing file. */
    CHECK_STATUS(nne_image_load(nne_test_path(dir, "missing.png"), 0, &out), NNE_ERR_NOT_FOUND);
    CHECK(strstr(nne_last_error(), "missing.png") != NULL);
    /* Empty file. */
    CHECK(write_bytes(path, "", 0) == 0);
    CHECK_STATUS(nne_image_load(path, 0, &out), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "photo.png: empty file") != NULL);
    nne_free(buf);
    nne_image_free(&img);
    rm_dir_flat(dir);
}

static void test_png_corrupt(void) {
    nne_image img, out;
    CHECK_OK(img_random(&img, 8, 8, 4, 9));
    uint8_t *good;
    size_t n;
    CHECK_OK(nne_image_encode(&img, NNE_IMAGE_FORMAT_PNG, &good, &n));
    uint8_t *b = nne_malloc(n + 64);
    size_t ihdr = find_chunk(good, n, "IHDR"), idat = find_chunk(good, n, "IDAT");
    CHECK(ihdr == 8 && idat > 0);

    /* Bad magic. */
    memcpy(b, good, n);
    b[1] = 'Q';
    CHECK_STATUS(nne_image_decode(b, n, 0, &out), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "unrecognized") != NULL);
    CHECK_STATUS(nne_image_decode((const uint8_t *)"GIF89a......", 12, 0, &out), NNE_ERR_FORMAT);
    CHECK_STATUS(nne_image_decode((const uint8_t *)"P3\n1 1\n255\n1 2 3\n", 17, 0, &out),
                 NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "P3") != NULL);
    CHECK_STATUS(nne_image_decode(NULL, 0, 0, &out), NNE_ERR_FORMAT);
    CHECK_STATUS(nne_image_decode(NULL, 5, 0, &out), NNE_ERR_INVALID_ARG);

    /* CRC errors in critical chunks. */
    memcpy(b, good, n);
    b[ihdr + 8 + 12]++; /* filter method byte... any IHDR byte */
    CHECK_STATUS(nne_image_decode(b, n, 0, &out), NNE_ERR_CHECKSUM);
    CHECK_MSG(strstr(nne_last_error(), "IHDR") && strstr(nne_last_error(), "CRC"), "%s",
              nne_last_error());
    memcpy(b, good, n);
    b[idat + 8 + be32(good + idat)] ^= 1; /* the IDAT CRC itself */
    CHECK_STATUS(nne_image_decode(b, n, 0, &out), NNE_ERR_CHECKSUM);
    CHECK(strstr(nne_last_error(), "IDAT") != NULL);
    /* A corrupt zlib stream (with a valid CRC). */
    memcpy(b, good, n);
    for (uint32_t i = 2; i < be32(good + idat); i++) b[idat + 8 + i] ^= 0x5A;
    fix_crc(b, idat);
    CHECK_STATUS(nne_image_decode(b, n, 0, &out), NNE_ERR_FORMAT);
    CHECK(img_is_zeroed(&out));

    /* Bad and huge dimensions (CRC fixed so that the values themselves are checked). */
    static const struct {
        uint32_t w, h;
        nne_status want;
    } dims[] =
        {
            {0, 8, NNE_ERR_FORMAT},        {8, 0, NNE_ERR_FORMAT},
            {70000, 8, NNE_ERR_LIMIT},     {8, 1u << 31, NNE_ERR_FORMAT},
            {20000, 20000, NNE_ERR_LIMIT}, /* 400 Mpixel > NNE_IMAGE_MAX_PIXELS */
            {65535, 65535, NNE_ERR_LIMIT}, {16384, 16384, NNE_ERR_FORMAT}, /* fits; no data */
        };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        memcpy(b, good, n);
        put_be32(b + ihdr + 8, dims[i].w);
        put_be32(b + ihdr + 12, dims[i].h);
        fix_crc(b, ihdr);
        nne_status s = nne_image_decode(b, n, 0, &out);
        CHECK_MSG(s == dims[i].want, "%ux%u -> %s: %s", (unsigned)dims[i].w, (unsigned)dims[i].h,
                  nne_status_str(s), nne_last_error());
        CHECK(starts_with(nne_last_error(), "<memory>: "));
        CHECK(img_is_zeroed(&out));
    }
    /* Bad bit depth / color type combination. */
    memcpy(b, good, n);
    b[ihdr + 8 + 8] = 3; /* 3-bit RGBA */
    fix_crc(b, ihdr);
    CHECK_STATUS(nne_image_decode(b, n, 0, &out), NNE_ERR_FORMAT);

    /* A CRC error in an ancillary chunk is ignored (the chunk is dropped). */
    {
        size_t iend = find_chunk(good, n, "IEND");
        static const uint8_t text[] = {0, 0,   0,   5,   't',  'E',  'X',  't', 'a',
                                       0, 'b', 'c', 'd', 0xDE, 0xAD, 0xBE, 0xEF};
        memcpy(b, good, iend);
        memcpy(b + iend, text, sizeof text);
        memcpy(b + iend + sizeof text, good + iend, n - iend);
        CHECK_OK(nne_image_decode(b, n + sizeof text, 0, &out));
        CHECK(img_equal(&out, &img));
        nne_image_free(&out);
    }
    nne_free(b);
    nne_free(good);
    nne_image_free(&img);
}

static void decode_str(const char *s, size_t n, nne_status want, const char *msg_part) {
    nne_image out;
    nne_status got = nne_image_decode((const uint8_t *)s, n, 0, &out);
    CHECK_MSG(got == want, "'%.20s' -> %s (want %s): %s", s, nne_status_str(got),
              nne_status_str(want), nne_last_error());
    if (want != NNE_OK) {
        CHECK(img_is_zeroed(&out));
        CHECK_MSG(!msg_part || strstr(nne_last_error(), msg_part), "message '%s' lacks '%s'",
                  nne_last_error(), msg_part);
    }
    nne_image_free(&out);
}
#define DECODE_STR(lit, want, part) decode_str(lit, sizeof(lit) - 1, want, part)

static void test_pnm_malformed(void) {
    DECODE_STR("P5 2 1 255\n\x01\x02", NNE_OK, NULL);
    DECODE_STR("P5\n# comment\n2 # w\n1\n255\n\x01\x02", NNE_OK, NULL);
    DECODE_STR("P5 2 1 255#comment\n\x01\x02", NNE_OK, NULL);
    DECODE_STR("P5 2 1 255\n\x01\x02trailing", NNE_OK, NULL);
    DECODE_STR("P5 0 1 255\n", NNE_ERR_FORMAT, "invalid image size 0x1");
    DECODE_STR("P6 1 0 255\n", NNE_ERR_FORMAT, "invalid image size");
    DECODE_STR("P5 70000 1 255\n", NNE_ERR_LIMIT, "limit");
    DECODE_STR("P5 99999999999999999999 1 255\n", NNE_ERR_LIMIT, "limit");
    DECODE_STR("P5 16385 16384 255\n", NNE_ERR_LIMIT, "pixels");
    DECODE_STR("P6 16384 16384 255\n\x01", NNE_ERR_FORMAT, "truncated PPM raster");
    DECODE_STR("P5 -1 1 255\n", NNE_ERR_FORMAT, "expected width");
    DECODE_STR("P5 2x 1 255\n", NNE_ERR_FORMAT, "bad PGM header");
    DECODE_STR("P5 2 1 0\n\x01\x02", NNE_ERR_FORMAT, "maxval 0");
    DECODE_STR("P5 2 1 65536\n\x01\x02\x03\x04", NNE_ERR_FORMAT, "maxval 65536");
    DECODE_STR("P5 2 1 abc\n\x01\x02", NNE_ERR_FORMAT, "expected maxval");
    DECODE_STR("P5 2 1 15\n\x0F\x10", NNE_ERR_FORMAT, "exceeds maxval 15 at (x=1, y=0)");
    DECODE_STR("P5 2 1 255", NNE_ERR_FORMAT, "truncated PGM header");
    DECODE_STR("P5 2 1 255#", NNE_ERR_FORMAT, "truncated PGM header");
    DECODE_STR("P5 2 1 255\n\x01", NNE_ERR_FORMAT, "truncated PGM raster (1 of 2 bytes)");
    DECODE_STR("P5 2 1 1000\n\x03\xE8\x00", NNE_ERR_FORMAT, "(3 of 4 bytes)");
    DECODE_STR("P7\nWIDTH 1\n", NNE_ERR_UNSUPPORTED, "P7");
    DECODE_STR("P5", NNE_ERR_FORMAT, "truncated");
    DECODE_STR("P", NNE_ERR_FORMAT, "unrecognized");

    /* maxval != 255 is rescaled: round(v * 255 / maxval). */
    nne_image out;
    CHECK_OK(nne_image_decode((const uint8_t *)"P5 4 1 15\n\x00\x01\x07\x0F", 14, 0, &out));
    CHECK(out.data[0] == 0 && out.data[1] == 17 && out.data[2] == 119 && out.data[3] == 255);
    nne_image_free(&out);
    CHECK_OK(
        nne_image_decode((const uint8_t *)"P6 1 1 1000\n\x00\x00\x01\xF4\x03\xE8", 18, 0, &out));
    CHECK(out.channels == 3 && out.data[0] == 0 && out.data[1] == 128 && out.data[2] == 255);
    nne_image_free(&out);
    CHECK_OK(nne_image_decode((const uint8_t *)"P5 2 1 65535\n\xAB\xCD\xFF\xFF", 17, 0, &out));
    CHECK(out.data[0] == (0xABCD * 255 + 32767) / 65535 && out.data[1] == 255);
    nne_image_free(&out);
}

/* ------------------------------------------------------------------ API edges */

static void test_api(void) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    CHECK(nne_image_detect(sig, 8) == NNE_IMAGE_FORMAT_PNG);
    CHECK(nne_image_detect(sig, 7) == NNE_IMAGE_FORMAT_UNKNOWN);
    CHECK(nne_image_detect((const uint8_t *)"P6\n", 3) == NNE_IMAGE_FORMAT_PPM);
    CHECK(nne_image_detect((const uint8_t *)"P5 ", 3) == NNE_IMAGE_FORMAT_PGM);
    CHECK(nne_image_detect((const uint8_t *)"P55", 3) == NNE_IMAGE_FORMAT_UNKNOWN);
    CHECK(nne_image_detect(NULL, 8) == NNE_IMAGE_FORMAT_UNKNOWN);
    CHECK(nne_image_format_from_path("a/b.png") == NNE_IMAGE_FORMAT_PNG);
    CHECK(nne_image_format_from_path("x.PPM") == NNE_IMAGE_FORMAT_PPM);
    CHECK(nne_image_format_from_path("x.pnm") == NNE_IMAGE_FORMAT_PPM);
    CHECK(nne_image_format_from_path("x.pgm") == NNE_IMAGE_FORMAT_PGM);
    CHECK(nne_image_format_from_path("x.gif") == NNE_IMAGE_FORMAT_UNKNOWN);
    CHECK(nne_image_format_from_path("dir.png/x") == NNE_IMAGE_FORMAT_UNKNOWN);
    CHECK(nne_image_format_from_path(NULL) == NNE_IMAGE_FORMAT_UNKNOWN);

    nne_image img;
    CHECK_STATUS(nne_image_alloc(&img, 0, 1, 3), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_image_alloc(&img, 1, 1, 5), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_image_alloc(&img, 70000, 1, 1), NNE_ERR_LIMIT);
    CHECK_STATUS(nne_image_alloc(&img, 65535, 65535, 1), NNE_ERR_LIMIT);
    CHECK(img_is_zeroed(&img));
    CHECK_OK(nne_image_alloc(&img, 2, 2, 3));
    CHECK(img.data && img.data[11] == 0);
    nne_image_free(&img);
    CHECK(img_is_zeroed(&img));
    nne_image_free(&img); /* twice is fine */
    nne_image_free(NULL);

    uint8_t *buf = (uint8_t *)1;
    size_t n = 1;
    nne_image bad = {2, 2, 3, NULL};
    CHECK_STATUS(nne_image_encode(&bad, NNE_IMAGE_FORMAT_PNG, &buf, &n), NNE_ERR_INVALID_ARG);
    CHECK(buf == NULL && n == 0);
    CHECK_OK(img_random(&img, 2, 2, 3, 1));
    CHECK_STATUS(nne_image_encode(&img, NNE_IMAGE_FORMAT_UNKNOWN, &buf, &n), NNE_ERR_INVALID_ARG);
    img.channels = 5;
    CHECK_STATUS(nne_image_encode(&img, NNE_IMAGE_FORMAT_PNG, &buf, &n), NNE_ERR_INVALID_ARG);
    img.channels = 3;

    /* Conversions. */
    nne_image g, rgb, rgba, back;
    CHECK_OK(img_random(&g, 3, 2, 1, 11));
    CHECK_OK(nne_image_to_rgb(&g, &rgb));
    CHECK(rgb.channels == 3 && rgb.data[3] == g.data[1] && rgb.data[5] == g.data[1]);
    CHECK_OK(nne_image_drop_alpha(&rgb, &back)); /* no alpha: a copy */
    CHECK(img_equal(&rgb, &back));
    nne_image_free(&back);
    CHECK_OK(img_random(&rgba, 3, 2, 4, 12));
    CHECK_STATUS(nne_image_to_rgb(&rgba, &back), NNE_ERR_INVALID_ARG);
    CHECK(img_is_zeroed(&back));
    CHECK_OK(nne_image_drop_alpha(&rgba, &back));
    CHECK(back.channels == 3 && !memcmp(back.data + 3, rgba.data + 4, 3));
    nne_image_free(&back);
    nne_image_free(&g);
    nne_image_free(&rgb);
    nne_image_free(&rgba);

    /* Saving: bad extension, wrong channels, missing directory; nothing is left behind. */
    char dir[256];
    if (make_temp_dir(dir, sizeof dir)) {
        CHECK_STATUS(nne_image_save(nne_test_path(dir, "x.gif"), &img), NNE_ERR_INVALID_ARG);
        CHECK(strstr(nne_last_error(), "x.gif") != NULL);
        CHECK_STATUS(nne_image_save(nne_test_path(dir, "x.pgm"), &img), NNE_ERR_INVALID_ARG);
        CHECK(strstr(nne_last_error(), "x.pgm") && strstr(nne_last_error(), "PGM takes 1"));
        CHECK_STATUS(nne_image_save(nne_test_path(dir, "nodir/x.png"), &img), NNE_ERR_IO);
        CHECK(strstr(nne_last_error(), "nodir/x.png") != NULL);
        CHECK(count_entries(dir) == 0);
        /* Saving onto a directory fails at rename; the temporary is removed. */
        char sub[512];
        snprintf(sub, sizeof sub, "%s/d.png", dir);
        CHECK(mkdir(sub, 0755) == 0);
        CHECK_STATUS(nne_image_save(sub, &img), NNE_ERR_IO);
        CHECK(strstr(nne_last_error(), "rename") != NULL);
        CHECK(count_entries(dir) == 1);
        rmdir(sub);
        rm_dir_flat(dir);
    }
    nne_image_free(&img);
}

int main(void) {
    NNE_RUN(test_sha256_vectors);
    NNE_RUN(test_roundtrip_memory);
    NNE_RUN(test_roundtrip_files);
    NNE_RUN(test_flags);
    NNE_RUN(test_golden_pillow);
    NNE_RUN(test_truncated);
    NNE_RUN(test_truncated_file_message);
    NNE_RUN(test_png_corrupt);
    NNE_RUN(test_pnm_malformed);
    NNE_RUN(test_api);
    return nne_test_summary();
}
