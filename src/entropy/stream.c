/* Symbol streams: int32 values, each with its own CDF table and mean, coded with two
 * interleaved rANS states (docs/bitstream.md, "Symbol streams").
 *
 * Symbol i uses state i mod 2. Per symbol the decoder performs, on that state: the table
 * symbol; if it is the escape, a 4-bit chunk count c (0..9) and then c 4-bit chunks of the
 * escape magnitude, least significant first. The encoder runs the exact mirror image: symbols
 * from last to first, each symbol's operations in reverse. Two independent states let the CPU
 * overlap the dependency chains of consecutive symbols (ryg_rans' interleaving). */
#include <string.h>

#include "entropy/symbol.h"
#include "nnedge/entropy.h"

#define STREAM_WAYS 2 /* interleaved rANS states (the loops below are written for 2) */
/* Worst case per symbol: 16 (table) + 4 (count) + 9 * 4 (chunks) = 56 bits <= 7 bytes; the
 * bound charges 8 per symbol, which also absorbs rANS' fractional-bit rounding, plus the
 * flushed states. */
#define BOUND_PER_SYMBOL 8
#define BOUND_FIXED      (4 * STREAM_WAYS + 8)

size_t nne_entropy_encode_bound(size_t n) {
    size_t b;
    if (!nne_size_mul(n, BOUND_PER_SYMBOL, &b) || !nne_size_add(b, BOUND_FIXED, &b)) return 0;
    return b;
}

/* Encode value i on state x. */
static inline void enc_value(const nne_cdf_set *set, uint32_t *x, nne_rans_out *o,
                             const int32_t *values, const int32_t *index, const int32_t *means,
                             size_t i) {
    const int32_t t = index[i];
    const int64_t v = (int64_t)values[i] - (means ? means[i] : 0) - set->offset[t];
    nne_symbol_enc(x, o, set->cdf + set->start[t], set->length[t], v, (uint32_t)set->precision);
}

nne_status nne_entropy_encode(const nne_cdf_set *set, const int32_t *values, const int32_t *index,
                              const int32_t *means, size_t n, uint8_t *dst, size_t cap,
                              size_t *out_size) {
    *out_size = 0;
    if (n == 0) return NNE_OK;
    if (!set || !values || !index || !dst)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: encode: NULL argument");
    if (cap > (size_t)PTRDIFF_MAX) cap = (size_t)PTRDIFF_MAX;
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)index[i] >= (uint32_t)set->n_tables)
            return nne_error(NNE_ERR_INVALID_ARG,
                             "entropy: encode: symbol %zu uses table %d of a set of %d", i,
                             index[i], set->n_tables);
    nne_rans_out o = {dst, (ptrdiff_t)cap};
    uint32_t x[STREAM_WAYS];
    for (int w = 0; w < STREAM_WAYS; w++) nne_rans_enc_init(&x[w]);
    /* Symbols from last to first; symbol i on state i mod 2 (locals, as in the decoder). */
    uint32_t x0 = x[0], x1 = x[1];
    size_t i = n;
    if (i & 1) {
        i--;
        enc_value(set, &x0, &o, values, index, means, i);
    }
    while (i) {
        i--;
        enc_value(set, &x1, &o, values, index, means, i);
        i--;
        enc_value(set, &x0, &o, values, index, means, i);
    }
    x[0] = x0;
    x[1] = x1;
    /* The decoder reads state 0 first, so it is flushed last (lowest address). */
    for (int w = STREAM_WAYS; w-- > 0;) nne_rans_enc_flush(&x[w], &o);
    if (o.pos < 0)
        return nne_error(NNE_ERR_LIMIT,
                         "entropy: encode: the stream needs %zu bytes, the buffer has %zu",
                         cap + (size_t)(-o.pos), cap);
    const size_t size = cap - (size_t)o.pos;
    memmove(dst, dst + o.pos, size);
    *out_size = size;
    return NNE_OK;
}

enum { DEC_OK = 0, DEC_BAD_ESCAPE, DEC_RANGE };

/* Decode value i on state x. */
static inline int dec_value(const nne_cdf_set *set, uint32_t *x, nne_rans_in *in,
                            const int32_t *index, const int32_t *means, size_t i, int32_t *values) {
    const int32_t t = index[i];
    int64_t v;
    if (!nne_symbol_dec(x, in, set->cdf + set->start[t], set->length[t], (uint32_t)set->precision,
                        &v))
        return DEC_BAD_ESCAPE;
    v += (int64_t)set->offset[t] + (means ? means[i] : 0);
    if (v < INT32_MIN || v > INT32_MAX) return DEC_RANGE;
    values[i] = (int32_t)v;
    return DEC_OK;
}

nne_status nne_entropy_decode(const nne_cdf_set *set, const uint8_t *src, size_t size,
                              const int32_t *index, const int32_t *means, size_t n,
                              int32_t *values) {
    if (n == 0) {
        if (size != 0)
            return nne_error(NNE_ERR_FORMAT, "entropy: decode: %zu bytes for 0 symbols", size);
        return NNE_OK;
    }
    if (!set || !src || !index || !values)
        return nne_error(NNE_ERR_INVALID_ARG, "entropy: decode: NULL argument");
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)index[i] >= (uint32_t)set->n_tables)
            return nne_error(NNE_ERR_INVALID_ARG,
                             "entropy: decode: symbol %zu uses table %d of a set of %d", i,
                             index[i], set->n_tables);
    nne_rans_in in = {src, 0, size};
    uint32_t x[STREAM_WAYS];
    for (int w = 0; w < STREAM_WAYS; w++)
        if (!nne_rans_dec_init(&x[w], &in))
            return nne_error(NNE_ERR_FORMAT,
                             "entropy: decode: stream of %zu bytes is too short or starts with "
                             "an invalid state",
                             size);
    /* Pairs of symbols on the two states, kept in locals so that the compiler holds them in
     * registers and the CPU overlaps their two dependency chains. Running past the end of the
     * input is checked once per pair: until then reads past the end return zeros, so the work
     * stays bounded by n whatever the input. */
    uint32_t x0 = x[0], x1 = x[1];
    size_t i = 0;
    int err = 0;
    while (i < n && in.pos <= size) {
        if ((err = dec_value(set, &x0, &in, index, means, i, values))) break;
        if (++i == n) break;
        if ((err = dec_value(set, &x1, &in, index, means, i, values))) break;
        i++;
    }
    if (err == DEC_BAD_ESCAPE)
        return nne_error(NNE_ERR_FORMAT, "entropy: decode: symbol %zu: malformed escape", i);
    if (err == DEC_RANGE)
        return nne_error(NNE_ERR_FORMAT, "entropy: decode: symbol %zu decodes outside int32", i);
    if (in.pos > size)
        return nne_error(NNE_ERR_FORMAT,
                         "entropy: decode: stream of %zu bytes is truncated (symbol %zu of %zu)",
                         size, i, n);
    x[0] = x0;
    x[1] = x1;
    if (in.pos != size)
        return nne_error(NNE_ERR_FORMAT, "entropy: decode: %zu trailing bytes after %zu symbols",
                         size - in.pos, n);
    for (int w = 0; w < STREAM_WAYS; w++)
        if (x[w] != NNE_RANS_L)
            return nne_error(NNE_ERR_FORMAT,
                             "entropy: decode: stream is corrupt (state %d ends at 0x%08x, not "
                             "the encoder's initial 0x%08x)",
                             w, x[w], NNE_RANS_L);
    return NNE_OK;
}
