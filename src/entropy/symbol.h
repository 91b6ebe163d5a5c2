/* One table symbol with its escape (docs/bitstream.md, "Symbol streams"), on one rANS state:
 * the per-symbol step shared by the stream coder (stream.c, two interleaved states) and the
 * benchmark's single-state peer. Private: #include "entropy/symbol.h".
 *
 * A value v (the coded value minus the table offset) in [0, len - 1) is table symbol v. Any
 * other v is the escape symbol len - 1, then a 4-bit chunk count c in 0..9, then c 4-bit
 * chunks, least significant first, of the zig-zag magnitude
 *     raw = -2 v - 1 for v < 0,  raw = 2 (v - (len - 1)) for v >= len - 1,
 * with c the smallest count that holds raw (so the top chunk is non-zero; c = 0 for raw = 0).
 * Every int32 value minus an int32 mean minus an int32 offset is in (-2^33, 2^33), so raw <
 * 2^34 and 9 chunks always suffice. */
#ifndef NNE_ENTROPY_SYMBOL_H
#define NNE_ENTROPY_SYMBOL_H

#include "entropy/rans.h"

#define NNE_ESC_BITS       4 /* bits per escape chunk and for the chunk count */
#define NNE_ESC_MAX_CHUNKS 9 /* 36 bits >= the 34 an escape magnitude can need */

/* Encode one value (already minus its mean and the table offset, so in [-2^33, 2^33)). */
static inline void nne_symbol_enc(uint32_t *x, nne_rans_out *o, const uint32_t *c, int32_t len,
                                  int64_t v, uint32_t bits) {
    const int64_t esc = len - 1;
    if (v >= 0 && v < esc) {
        nne_rans_enc_put(x, o, c[v], c[v + 1] - c[v], bits);
        return;
    }
    /* Escape magnitude: zig-zag around the table range, 0 = the first value past it. */
    const uint64_t raw = v < 0 ? (uint64_t)(-2 * v - 1) : (uint64_t)(2 * (v - esc));
    uint32_t nc = 0;
    while (nc < NNE_ESC_MAX_CHUNKS && (raw >> (NNE_ESC_BITS * nc)) != 0) nc++;
    for (uint32_t j = nc; j-- > 0;)
        nne_rans_enc_put_bits(x, o, (uint32_t)(raw >> (NNE_ESC_BITS * j)) & 15u, NNE_ESC_BITS);
    nne_rans_enc_put_bits(x, o, nc, NNE_ESC_BITS);
    nne_rans_enc_put(x, o, c[esc], c[esc + 1] - c[esc], bits);
}

/* Decode one value (before adding the offset and mean). Returns 0 on a malformed escape. */
static inline int nne_symbol_dec(uint32_t *x, nne_rans_in *in, const uint32_t *c, int32_t len,
                                 uint32_t bits, int64_t *out) {
    const uint32_t cum = nne_rans_dec_get(*x, bits);
    /* c[0] = 0 <= cum < c[len] = 2^bits: find s with c[s] <= cum < c[s + 1]. */
    /* Branch-free binary search (the comparison becomes a conditional move: symbol values are
     * unpredictable, so a branch would mispredict on every other step). Invariant: the answer,
     * the last s with c[s] <= cum, lies in [base, base + n). */
    const uint32_t *base = c;
    uint32_t n = (uint32_t)len;
    while (n > 1) {
        const uint32_t half = n >> 1;
        base = base[half] <= cum ? base + half : base;
        n -= half;
    }
    const uint32_t lo = (uint32_t)(base - c);
    nne_rans_dec_advance(x, in, c[lo], c[lo + 1] - c[lo], bits);
    const int64_t esc = len - 1;
    if (lo < (uint32_t)esc) {
        *out = lo;
        return 1;
    }
    const uint32_t nc = nne_rans_dec_get_bits(x, in, NNE_ESC_BITS);
    if (nc > NNE_ESC_MAX_CHUNKS) return 0;
    uint64_t raw = 0;
    uint32_t top = 0;
    for (uint32_t j = 0; j < nc; j++) {
        top = nne_rans_dec_get_bits(x, in, NNE_ESC_BITS);
        raw |= (uint64_t)top << (NNE_ESC_BITS * j);
    }
    if (nc > 0 && top == 0) return 0; /* not the shortest form: no encoder writes it */
    *out = (raw & 1) ? -(int64_t)((raw + 1) >> 1) : (int64_t)(raw >> 1) + esc;
    return 1;
}

#endif
