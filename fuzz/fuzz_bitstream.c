/* libFuzzer target for the bitstream container reader and the rANS symbol decoder
 * (docs/bitstream.md).
 *
 * Each input is used three ways:
 *  1. as a container, as given (the checksum paths) and with both CRCs recomputed (so that
 *     mutations reach the field validation); whatever the reader accepts must serialize back
 *     to exactly the same bytes, and each of its streams is decoded with the toy model of
 *     tests/toy_codec.h (the seed corpus is toy containers, so decoding succeeds on them);
 *  2. as a raw symbol stream: the first 4 bytes choose a table set (toy 16-bit, Gaussian
 *     16-bit, or a 6-bit set), a symbol count (0..4096) and a table/mean pattern, and the
 *     rest is decoded.
 * Every successful decode must re-encode to exactly the bytes it came from (streams are
 * canonical: the decoder refuses the non-shortest escape forms). Any violation aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/toy_codec.h"
#include "codec/bitstream_internal.h"
#include "nnedge/bitstream.h"
#include "nnedge/entropy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RAW_SYMBOLS 4096

static void die(const char *what) {
    fprintf(stderr, "fuzz_bitstream: %s: %s\n", what, nne_last_error());
    abort();
}

/* Built once; reachable until exit, so not a leak. */
static nne_cdf_set g_sets[3];
static int32_t g_index[NNE_TOY_MAX_COUNT], g_means[NNE_TOY_MAX_COUNT];
static int32_t g_values[NNE_TOY_MAX_COUNT];
static uint8_t g_reenc[8 * NNE_TOY_MAX_COUNT + 64];

static void init_sets(void) {
    if (g_sets[0].cdf) return;
    if (nne_toy_tables(&g_sets[0])) die("toy tables");
    double s[NNE_GAUSS_SCALES];
    nne_gauss_scale_table(s, NNE_GAUSS_SCALES);
    if (nne_cdf_set_gaussian(s, NNE_GAUSS_SCALES, NNE_GAUSS_TAIL_MASS, 16, &g_sets[1]))
        die("gaussian tables");
    const double pmfs[1 + 3 + 30] = {1, 1, 4, 1, 5, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1,
                                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int32_t lens[3] = {1, 3, 30}, offs[3] = {0, -1, -15};
    const double tails[3] = {0.5, 0.01, 0.1};
    if (nne_cdf_set_factorized(3, pmfs, lens, offs, tails, 6, &g_sets[2])) die("6-bit tables");
    for (int k = 0; k < 3; k++)
        if (nne_cdf_set_validate(&g_sets[k])) die("invalid built-in set");
}

/* Decode n symbols; on success the re-encoding must be the input itself. */
static void decode_check(const nne_cdf_set *set, const uint8_t *src, size_t size, size_t n) {
    nne_status s = nne_entropy_decode(set, src, size, g_index, g_means, n, g_values);
    if (s != NNE_OK) {
        if (!nne_last_error()[0]) die("a decode error without a message");
        return;
    }
    size_t out = 0;
    if (nne_entropy_encode(set, g_values, g_index, g_means, n, g_reenc, sizeof g_reenc, &out))
        die("decoded values do not re-encode");
    if (out != size || (size && memcmp(g_reenc, src, size) != 0))
        die("decode -> encode is not the identity");
}

static void parse_container(const uint8_t *buf, size_t size) {
    nne_nnc c;
    nne_status s = nne_nnc_read_mem(buf, size, &c);
    if (s != NNE_OK) {
        if (c.n_streams != 0 || !nne_last_error()[0]) die("an error with data or no message");
        return;
    }
    uint8_t *back = NULL;
    size_t n = 0;
    if (nne_nnc_write_mem(&c, &back, &n)) die("accepted container does not write");
    if (n != size || memcmp(back, buf, n) != 0) die("read -> write is not the identity");
    nne_free(back);
    for (int k = 0; k < c.n_streams; k++) {
        const size_t cnt = nne_toy_count(&c, k);
        for (size_t i = 0; i < cnt; i++) {
            g_index[i] = nne_toy_index(i, k);
            g_means[i] = nne_toy_mean(i);
        }
        decode_check(&g_sets[0], c.streams[k].data, c.streams[k].size, cnt);
    }
}

static void parse_raw(const uint8_t *buf, size_t size) {
    if (size < 4) return;
    const nne_cdf_set *set = &g_sets[buf[0] % 3];
    const size_t n = ((size_t)buf[1] | (size_t)buf[2] << 8) % (MAX_RAW_SYMBOLS + 1);
    const uint8_t pat = buf[3];
    for (size_t i = 0; i < n; i++) {
        g_index[i] = (int32_t)((i * (pat | 1u) + (pat >> 4)) % (size_t)set->n_tables);
        g_means[i] = pat & 8 ? (int32_t)(i % 7) - 3 : 0;
    }
    decode_check(set, buf + 4, size - 4, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init_sets();
    /* Copies of exactly `size` bytes so that ASan catches any read past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    parse_container(copy, size);
    nne_nnc_fix_checksums(copy, size);
    parse_container(copy, size);
    if (size) memcpy(copy, data, size);
    parse_raw(copy, size);
    free(copy);
    return 0;
}
