/* nnedge entropy coding: integer CDF tables and rANS symbol streams for learned codecs
 * (factorized prior and Gaussian scale hyperprior, Balle et al. 2018 / CompressAI).
 *
 * Everything a decoder runs is integer-only and deterministic across machines and thread
 * counts: the CDF tables are built once in double precision (when a model is exported) and
 * stored as integers, so decoding never depends on float math. The byte format of a symbol
 * stream, the CDF quantization and the escape code are specified in docs/bitstream.md.
 *
 * Model:
 *  - A table set (nne_cdf_set) holds `n_tables` integer CDFs of one precision (1..16 bits).
 *    Table t codes the values offset[t] .. offset[t] + length[t] - 2 as symbols
 *    0 .. length[t] - 2; its last symbol, length[t] - 1, is the ESCAPE symbol that stands for
 *    every other value (the tail mass), which then follows as bypass bits. So any int32 value
 *    can be coded with any table: out-of-range values just cost more.
 *  - A symbol stream codes an array of int32 values, each with its own table index and an
 *    optional integer mean subtracted first (value - mean is what the table sees).
 */
#ifndef NNEDGE_ENTROPY_H
#define NNEDGE_ENTROPY_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_CDF_PRECISION_DEFAULT 16        /* bits: a table's total frequency is 2^16 */
#define NNE_CDF_PRECISION_MAX     16        /* the rANS coder's limit (src/entropy/rans.h) */
#define NNE_CDF_MAX_SYMBOLS       (1 << 16) /* per table, escape included (and <= 2^precision) */
#define NNE_CDF_MAX_TABLES        (1 << 16) /* tables per set */

/* A set of integer CDFs. Table t has length[t] symbols (the last is the escape) and
 * length[t] + 1 CDF entries cdf[start[t] .. start[t] + length[t]]: cdf[start[t]] = 0,
 * strictly increasing (every symbol has frequency >= 1), last entry 2^precision. Symbol s of
 * table t has frequency cdf[start[t] + s + 1] - cdf[start[t] + s]. Build one with the
 * functions below, or fill one from stored arrays with nne_cdf_set_create and check it with
 * nne_cdf_set_validate: the coders trust a set's contents (they are what keeps the decoder
 * in bounds), so a set read from a file MUST be validated before use. */
typedef struct nne_cdf_set {
    int32_t n_tables;
    int32_t precision; /* bits, 1..NNE_CDF_PRECISION_MAX */
    int32_t *offset;   /* [n_tables] the value coded as symbol 0 */
    int32_t *length;   /* [n_tables] symbols, escape included: 2..min(2^precision, MAX) */
    uint32_t *start;   /* [n_tables] index of the table's first entry in cdf */
    uint32_t *cdf;     /* [cdf_size] the tables back to back */
    size_t cdf_size;   /* sum of (length[t] + 1) */
} nne_cdf_set;

/* Allocate a set for tables of the given lengths (each 2..NNE_CDF_MAX_SYMBOLS and at most
 * 2^precision), with start[] filled, offset[] and cdf[] zeroed for the caller to fill. *out
 * is zeroed on failure. Release with nne_cdf_set_free. */
nne_status nne_cdf_set_create(int32_t n_tables, const int32_t *length, int32_t precision,
                              nne_cdf_set *out);
/* Check every rule of the struct comment (NNE_ERR_FORMAT naming the table and entry). */
nne_status nne_cdf_set_validate(const nne_cdf_set *s);
/* Release and zero. Accepts NULL and a zeroed set. */
void nne_cdf_set_free(nne_cdf_set *s);

/* Quantize a probability mass function to an integer CDF (docs/bitstream.md, "CDF
 * quantization"). pmf[0..n) are the probabilities of the in-range symbols and `tail` that of
 * the escape symbol (all finite and >= 0, with a positive sum; they need not sum to 1: they
 * are normalised). Writes cdf[0 .. n + 1] (n + 2 entries): a table of n + 1 symbols, escape
 * last, each of frequency >= 1, summing to exactly 2^precision. Requires 1 <= n and
 * n + 1 <= min(2^precision, NNE_CDF_MAX_SYMBOLS). Deterministic: only IEEE-754 additions,
 * multiplications, divisions and comparisons, no libm, so every machine gets the same table
 * from the same doubles. Allocates O(n) scratch. */
nne_status nne_cdf_quantize(const double *pmf, int32_t n, double tail, int32_t precision,
                            uint32_t *cdf);

/* Factorized prior (one distribution per channel): table c codes values offset[c] ..
 * offset[c] + pmf_length[c] - 1 with the probabilities pmfs[pmf_start_c ..] (the channels'
 * PMFs back to back, pmf_start_c = sum of the previous lengths) and tail[c] for the escape.
 * `tail` may be NULL (tail mass 0: the escape still gets frequency 1). */
nne_status nne_cdf_set_factorized(int32_t channels, const double *pmfs, const int32_t *pmf_length,
                                  const int32_t *offset, const double *tail, int32_t precision,
                                  nne_cdf_set *out);

/* ---- Gaussian conditional (scale hyperprior) ---- */

#define NNE_GAUSS_SCALES    64    /* table scales */
#define NNE_GAUSS_SCALE_MIN 0.11  /* smallest table scale (CompressAI's SCALES_MIN) */
#define NNE_GAUSS_SCALE_MAX 256.0 /* largest table scale (CompressAI's SCALES_MAX) */
#define NNE_GAUSS_TAIL_MASS 1e-9  /* probability outside a table's range (both tails) */

/* The default scale table: scales[j] = exp(log(MIN) + j * (log(MAX) - log(MIN)) / (n - 1)),
 * j = 0..n-1 (n >= 2), i.e. n log-spaced values from MIN to MAX inclusive. */
void nne_gauss_scale_table(double *scales, int32_t n);

/* One table per scale: the zero-mean Gaussian of standard deviation scales[j] discretized to
 * the integers, P(k) = Phi((k + 1/2) / s) - Phi((k - 1/2) / s), over k in [-K, K] with
 * K = ceil(s * z) and z the standard normal quantile for which 2 * Phi(-z) = tail_mass; the
 * mass outside [-K, K] goes to the escape symbol. Offsets are -K. `scales` must be finite,
 * positive and strictly increasing; 0 < tail_mass < 1. Uses erfc from libm: build the tables
 * once and store them. */
nne_status nne_cdf_set_gaussian(const double *scales, int32_t n, double tail_mass,
                                int32_t precision, nne_cdf_set *out);

/* The table for a predicted scale (float path, as CompressAI's build_indexes): the first j
 * with scale <= scales[j], or n - 1 if scale exceeds them all (also for NaN). Negative and
 * tiny scales give 0. `scales` sorted ascending. */
int32_t nne_gauss_scale_index(const double *scales, int32_t n, double scale);

/* Integer path: the number of thresholds < q, i.e. the first j with q <= thr[j], or n_thr if
 * none (thr sorted ascending). With thr[j] = floor(scales[j] * 2^frac_bits), j < n - 1 (see
 * nne_gauss_scale_thresholds), and a scale given in fixed point as q = scale * 2^frac_bits,
 * it equals nne_gauss_scale_index(scales, n, q / 2^frac_bits). */
int32_t nne_entropy_index_search(const int32_t *thr, int32_t n_thr, int32_t q);

/* thr[j] = floor(scales[j] * 2^frac_bits) for j = 0..n-2 (n - 1 thresholds; the last scale
 * needs none). NNE_ERR_INVALID_ARG if frac_bits is outside 0..24 or a value exceeds INT32_MAX. */
nne_status nne_gauss_scale_thresholds(const double *scales, int32_t n, int32_t frac_bits,
                                      int32_t *thr);

/* ---- Symbol streams ---- */

/* Largest stream nne_entropy_encode can produce for n symbols, for any tables and values
 * (56 bits per symbol at most, docs/bitstream.md), or 0 if that overflows size_t. */
size_t nne_entropy_encode_bound(size_t n);

/* Encode n values: value[i] - (means ? means[i] : 0) with table index[i] of `set`. Writes
 * the stream to dst[0 .. *out_size). NNE_ERR_INVALID_ARG if an index is outside the set;
 * NNE_ERR_LIMIT if cap is too small (the message gives the size needed; cap >=
 * nne_entropy_encode_bound(n) always suffices). n = 0 gives an empty stream. dst is used as
 * scratch up to cap bytes. Never allocates. The set must be valid. */
nne_status nne_entropy_encode(const nne_cdf_set *set, const int32_t *values, const int32_t *index,
                              const int32_t *means, size_t n, uint8_t *dst, size_t cap,
                              size_t *out_size);

/* The ideal code length in bits of what nne_entropy_encode codes for these arguments:
 * sum of precision - log2(frequency) per table symbol, plus 4 bits per escape count and per
 * escape chunk (docs/bitstream.md, "Escape code"). A stream is this plus the 8 bytes of states
 * and at most a byte of rounding per state. Indexes must be inside the set (not checked). */
double nne_entropy_cost_bits(const nne_cdf_set *set, const int32_t *values, const int32_t *index,
                             const int32_t *means, size_t n);

/* Decode n values from src[0 .. size) with the same indexes and means as the encoder into
 * values[0 .. n). NNE_ERR_INVALID_ARG if an index is outside the set; NNE_ERR_FORMAT if the
 * stream is truncated, has bytes left over, ends in a state the encoder cannot produce, has a
 * malformed escape, or decodes to a value outside int32. Never reads outside src, never
 * allocates, runs in O(n + size) for any input. rANS cannot see every corruption (most
 * bytes decode to *some* values): the container's CRC-32 does that. On failure values[] holds
 * garbage. The set must be valid. */
nne_status nne_entropy_decode(const nne_cdf_set *set, const uint8_t *src, size_t size,
                              const int32_t *index, const int32_t *means, size_t n,
                              int32_t *values);

#ifdef __cplusplus
}
#endif
#endif
