/* A toy "model" for the entropy and container golden files, their tests and the
 * fuzz_bitstream target: three factorized CDF tables quantized from rational PMFs (no libm,
 * so the tables are bit-identical on every machine) and a fixed rule for how many symbols each
 * stream of a container holds and which table and mean each symbol uses. A real codec derives
 * the same things from its network; here they are constants so that the formats can be frozen
 * and fuzzed before any model exists. Header-only (static inline): included by
 * tests/entropy/test_stream.c, tests/codec/test_bitstream.c and fuzz/fuzz_bitstream.c. */
#ifndef NNE_TESTS_TOY_CODEC_H
#define NNE_TESTS_TOY_CODEC_H

#include "nnedge/bitstream.h"
#include "nnedge/entropy.h"

#define NNE_TOY_TABLES    3
#define NNE_TOY_MAX_COUNT 65536 /* symbols per stream, at most */

/* Table t codes offs[t] .. offs[t] + lens[t] - 1 with P(d) ~ 1 / (1 + d^2 (t + 1)), d the
 * distance to the centre, plus an escape of mass tails[t]; 16-bit precision. */
static inline nne_status nne_toy_tables(nne_cdf_set *set) {
    static const int32_t lens[NNE_TOY_TABLES] = {5, 17, 40}, offs[NNE_TOY_TABLES] = {-2, -8, -20};
    static const double tails[NNE_TOY_TABLES] = {0.01, 0.001, 0};
    double pmfs[5 + 17 + 40];
    size_t p = 0;
    for (int t = 0; t < NNE_TOY_TABLES; t++)
        for (int32_t i = 0; i < lens[t]; i++) {
            const int32_t d = i - lens[t] / 2;
            pmfs[p++] = 1.0 / (1.0 + (double)(d * d) * (t + 1));
        }
    return nne_cdf_set_factorized(NNE_TOY_TABLES, pmfs, lens, offs, tails, 16, set);
}

/* Stream k of a container holds (padded height / align) x (padded width / align) x (k + 1)
 * symbols, capped at NNE_TOY_MAX_COUNT; symbol i uses table (i + k) mod 3 and mean
 * (i mod 5) - 2. */
static inline size_t nne_toy_count(const nne_nnc *c, int k) {
    const size_t gh = (size_t)(c->image_height + c->pad[0] + c->pad[2]) / (size_t)c->align;
    const size_t gw = (size_t)(c->image_width + c->pad[1] + c->pad[3]) / (size_t)c->align;
    const size_t n = gh * gw * (size_t)(k + 1); /* <= 2^28 * 16: no overflow */
    return n < NNE_TOY_MAX_COUNT ? n : NNE_TOY_MAX_COUNT;
}
static inline int32_t nne_toy_index(size_t i, int k) {
    return (int32_t)((i + (size_t)k) % NNE_TOY_TABLES);
}
static inline int32_t nne_toy_mean(size_t i) { return (int32_t)(i % 5) - 2; }

#endif
