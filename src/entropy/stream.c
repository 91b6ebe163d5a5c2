/* Symbol streams: int32 values, each with its own CDF table and mean, coded with two
 * interleaved rANS states (docs/bitstream.md, "Symbol streams").
 *
 * Symbol i uses state i mod 2. Per symbol the decoder performs, on that state: the table
 * symbol; if it is the escape, a 4-bit chunk count c (0..9) and then c 4-bit chunks of the
 * escape magnitude, least significant first. The encoder runs the exact mirror image: symbols
 * from last to first, each symbol's operations in reverse. Two independent states let the CPU
 * overlap the dependency chains of consecutive symbols (ryg_rans' interleaving). */
#include <string.h>

#include "entropy/rans.h"
#include "nnedge/entropy.h"

#define STREAM_WAYS  2 /* interleaved rANS states */
#define ESC_BITS     4 /* bits per escape chunk */
#define ESC_MAX_CHNK 9 /* chunks: |value - mean - offset| < 2^33, so raw < 2^35 < 2^36 */
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

/* Encode one value (already minus its mean and the table offset, so in [-2^33, 2^33)). */
static inline void enc_one(uint32_t *x, nne_rans_out *o, const uint32_t *c, int32_t len, int64_t v,
                           uint32_t bits) {
    const int64_t esc = len - 1;
    if (v >= 0 && v < esc) {
        nne_rans_enc_put(x, o, c[v], c[v + 1] - c[v], bits);
        return;
    }
    /* Escape magnitude: zig-zag around the table range, 0 = the first value past it. */
    const uint64_t raw = v < 0 ? (uint64_t)(-2 * v - 1) : (uint64_t)(2 * (v - esc));
    uint32_t nc = 0;
    while (nc < ESC_MAX_CHNK && (raw >> (ESC_BITS * nc)) != 0) nc++;
    for (uint32_t j = nc; j-- > 0;)
        nne_rans_enc_put_bits(x, o, (uint32_t)(raw >> (ESC_BITS * j)) & 15u, ESC_BITS);
    nne_rans_enc_put_bits(x, o, nc, ESC_BITS);
    nne_rans_enc_put(x, o, c[esc], c[esc + 1] - c[esc], bits);
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
    const uint32_t bits = (uint32_t)set->precision;
    nne_rans_out o = {dst, (ptrdiff_t)cap};
    uint32_t x[STREAM_WAYS];
    for (int w = 0; w < STREAM_WAYS; w++) nne_rans_enc_init(&x[w]);
    for (size_t i = n; i-- > 0;) {
        const int32_t t = index[i];
        const int64_t v = (int64_t)values[i] - (means ? means[i] : 0) - set->offset[t];
        enc_one(&x[i % STREAM_WAYS], &o, set->cdf + set->start[t], set->length[t], v, bits);
    }
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

/* Decode one value (before adding the offset and mean). Returns 0 on a malformed escape. */
static inline int dec_one(uint32_t *x, nne_rans_in *in, const uint32_t *c, int32_t len,
                          uint32_t bits, int64_t *out) {
    const uint32_t cum = nne_rans_dec_get(*x, bits);
    /* c[0] = 0 <= cum < c[len] = 2^bits: find s with c[s] <= cum < c[s + 1]. */
    uint32_t lo = 0, hi = (uint32_t)len;
    while (hi - lo > 1) {
        const uint32_t mid = (lo + hi) >> 1;
        if (c[mid] <= cum)
            lo = mid;
        else
            hi = mid;
    }
    nne_rans_dec_advance(x, in, c[lo], c[lo + 1] - c[lo], bits);
    const int64_t esc = len - 1;
    if (lo < (uint32_t)esc) {
        *out = lo;
        return 1;
    }
    const uint32_t nc = nne_rans_dec_get_bits(x, in, ESC_BITS);
    if (nc > ESC_MAX_CHNK) return 0;
    uint64_t raw = 0;
    uint32_t top = 0;
    for (uint32_t j = 0; j < nc; j++) {
        top = nne_rans_dec_get_bits(x, in, ESC_BITS);
        raw |= (uint64_t)top << (ESC_BITS * j);
    }
    if (nc > 0 && top == 0) return 0; /* not the shortest form: no encoder writes it */
    *out = (raw & 1) ? -(int64_t)((raw + 1) >> 1) : (int64_t)(raw >> 1) + esc;
    return 1;
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
    const uint32_t bits = (uint32_t)set->precision;
    for (size_t i = 0; i < n; i++) {
        const int32_t t = index[i];
        int64_t v;
        if (!dec_one(&x[i % STREAM_WAYS], &in, set->cdf + set->start[t], set->length[t], bits, &v))
            return nne_error(NNE_ERR_FORMAT, "entropy: decode: symbol %zu: malformed escape", i);
        v += (int64_t)set->offset[t] + (means ? means[i] : 0);
        if (v < INT32_MIN || v > INT32_MAX)
            return nne_error(NNE_ERR_FORMAT, "entropy: decode: symbol %zu decodes outside int32",
                             i);
        values[i] = (int32_t)v;
        if (in.pos > size)
            return nne_error(NNE_ERR_FORMAT,
                             "entropy: decode: stream of %zu bytes is truncated (symbol %zu of "
                             "%zu)",
                             size, i, n);
    }
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
