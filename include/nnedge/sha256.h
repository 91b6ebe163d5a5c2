/* SHA-256 (FIPS 180-4): model weight hashes in latent files, decoded-pixel digests in tests. */
#ifndef NNEDGE_SHA256_H
#define NNEDGE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct nne_sha256 {
    uint32_t h[8];
    uint64_t bytes;    /* message length so far */
    uint8_t block[64]; /* pending input, bytes % 64 of them */
} nne_sha256;

void nne_sha256_init(nne_sha256 *c);
void nne_sha256_update(nne_sha256 *c, const void *data, size_t n);
void nne_sha256_final(nne_sha256 *c, uint8_t digest[32]);
/* One-shot digest as 64 lowercase hex digits plus NUL. */
void nne_sha256_hex(const void *data, size_t n, char hex[65]);

#endif
