/* rANS (range asymmetric numeral systems) with a 32-bit state and byte-wise renormalisation, in
 * the shape of Fabian Giesen's ryg_rans (rans_byte.h): integer-only, static inline, the encoder
 * writes backwards and the decoder reads forwards. Private to the entropy module, its tests,
 * benchmarks and fuzz targets (#include "entropy/rans.h"); the public API built on it is
 * include/nnedge/entropy.h, the byte format is docs/bitstream.md.
 *
 * State invariant: x is in [NNE_RANS_L, 256 * NNE_RANS_L) = [2^23, 2^31) between operations.
 * A symbol s of frequency f = freq[s] and cumulative frequency start = cdf[s] out of a total of
 * 2^bits (bits <= NNE_RANS_MAX_BITS = 16) is coded as
 *
 *     encode:  x' = floor(x / f) * 2^bits + (x mod f) + start
 *     decode:  s  = the symbol with cdf[s] <= (x' mod 2^bits) < cdf[s] + f
 *              x  = f * floor(x' / 2^bits) + (x' mod 2^bits) - start
 *
 * Before encoding, the encoder shifts out low bytes while x >= x_max = ((L >> bits) << 8) * f,
 * which keeps x' below 2^31; after decoding, the decoder shifts bytes in while x < L. The two
 * loops consume exactly each other's bytes, so decoding is the exact inverse of encoding.
 *
 * Hostile input. The decoder's byte source is bounds-checked (nne_rans_in): reading past the
 * end yields zero bytes and is recorded, never performed, so a truncated stream costs at most
 * a few wasted operations and is reported by the caller. With the state in [L, 2^31) and
 * 1 <= f, every decode step leaves x >= 2^(23 - bits) >= 2^7 before renormalisation, so the
 * renormalisation loop runs at most ceil(bits / 8) <= 2 times whatever the bytes are; callers
 * MUST check that an initial state read from a stream lies in [L, 2^31) (nne_rans_dec_init
 * does), since a zero state would never renormalise. Unsigned wrap-around on corrupt data is
 * defined behaviour and only produces wrong symbols, which the caller's checks (final state,
 * bytes consumed, container CRC) detect. */
#ifndef NNE_ENTROPY_RANS_H
#define NNE_ENTROPY_RANS_H

#include <stddef.h>
#include <stdint.h>

#define NNE_RANS_L        (1u << 23) /* lower bound of the normalised state interval */
#define NNE_RANS_MAX_BITS 16         /* largest total frequency: 2^16 */

/* Output buffer of the encoder: bytes are written at decreasing positions below `pos`. `pos`
 * may go negative: bytes that do not fit are counted but not written, so that the caller
 * learns both that the buffer was too small and by how much (cap - pos bytes were needed). */
typedef struct nne_rans_out {
    uint8_t *buf;  /* buf[0 .. cap) */
    ptrdiff_t pos; /* next byte goes to buf[pos - 1]; starts at cap */
} nne_rans_out;

static inline void nne_rans_out_byte(nne_rans_out *o, uint32_t b) {
    if (--o->pos >= 0) o->buf[o->pos] = (uint8_t)b;
}

/* Input of the decoder: buf[pos .. size). Reads past the end return 0 and advance pos anyway,
 * so `pos > size` afterwards means the stream was too short. */
typedef struct nne_rans_in {
    const uint8_t *buf;
    size_t pos, size;
} nne_rans_in;

static inline uint32_t nne_rans_in_byte(nne_rans_in *in) {
    const size_t p = in->pos++;
    return p < in->size ? in->buf[p] : 0u;
}

/* ---- Encoder ---- */

static inline void nne_rans_enc_init(uint32_t *x) { *x = NNE_RANS_L; }

/* Encode [start, start + freq) out of 2^bits. Requires 1 <= freq, start + freq <= 2^bits,
 * 1 <= bits <= 16 (programmer errors, not checked). The division is a plain 32-bit divide;
 * ryg_rans' reciprocal trick would trade it for a per-symbol table twice the size. */
static inline void nne_rans_enc_put(uint32_t *x, nne_rans_out *o, uint32_t start, uint32_t freq,
                                    uint32_t bits) {
    /* freq <= 2^bits, so x_max <= 2^(23 - bits + 8 + bits) = 2^31: no overflow. */
    const uint32_t x_max = ((NNE_RANS_L >> bits) << 8) * freq;
    uint32_t v = *x;
    while (v >= x_max) {
        nne_rans_out_byte(o, v & 0xff);
        v >>= 8;
    }
    *x = ((v / freq) << bits) + (v % freq) + start;
}

/* Encode `bits` raw bits (value < 2^bits) with a uniform distribution: one rANS step with
 * frequency 1, so bypass bits interleave with modelled symbols in the same state. */
static inline void nne_rans_enc_put_bits(uint32_t *x, nne_rans_out *o, uint32_t value,
                                         uint32_t bits) {
    nne_rans_enc_put(x, o, value, 1, bits);
}

/* Flush the state as 4 little-endian bytes (the decoder reads them first). */
static inline void nne_rans_enc_flush(const uint32_t *x, nne_rans_out *o) {
    nne_rans_out_byte(o, *x >> 24);
    nne_rans_out_byte(o, *x >> 16);
    nne_rans_out_byte(o, *x >> 8);
    nne_rans_out_byte(o, *x);
}

/* ---- Decoder ---- */

/* Read a flushed state. Returns 0 if the stream is too short or the value lies outside the
 * interval an encoder can produce, [L, 2^31) (which also guarantees that decoding terminates). */
static inline int nne_rans_dec_init(uint32_t *x, nne_rans_in *in) {
    uint32_t v = nne_rans_in_byte(in);
    v |= nne_rans_in_byte(in) << 8;
    v |= nne_rans_in_byte(in) << 16;
    v |= nne_rans_in_byte(in) << 24;
    *x = v;
    return in->pos <= in->size && v >= NNE_RANS_L && v < (NNE_RANS_L << 8);
}

/* The cumulative frequency the state points at, in [0, 2^bits). */
static inline uint32_t nne_rans_dec_get(uint32_t x, uint32_t bits) {
    return x & ((1u << bits) - 1);
}

/* Remove the symbol [start, start + freq) that nne_rans_dec_get pointed into, and
 * renormalise. */
static inline void nne_rans_dec_advance(uint32_t *x, nne_rans_in *in, uint32_t start, uint32_t freq,
                                        uint32_t bits) {
    const uint32_t mask = (1u << bits) - 1;
    uint32_t v = freq * (*x >> bits) + (*x & mask) - start;
    while (v < NNE_RANS_L) v = (v << 8) | nne_rans_in_byte(in);
    *x = v;
}

/* Decode `bits` raw bits written by nne_rans_enc_put_bits. */
static inline uint32_t nne_rans_dec_get_bits(uint32_t *x, nne_rans_in *in, uint32_t bits) {
    const uint32_t v = nne_rans_dec_get(*x, bits);
    nne_rans_dec_advance(x, in, v, 1, bits);
    return v;
}

#endif
