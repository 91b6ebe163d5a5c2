/* Little-endian field access for nnedge's binary formats (model files, checkpoints, latent
 * files). Private to the library and its tests: #include "common/le.h". Byte-wise, so it is
 * independent of the host's endianness and alignment. */
#ifndef NNE_COMMON_LE_H
#define NNE_COMMON_LE_H

#include <stdint.h>
#include <string.h>

static inline uint32_t nne_le_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t nne_le_rd64(const uint8_t *p) {
    return (uint64_t)nne_le_rd32(p) | (uint64_t)nne_le_rd32(p + 4) << 32;
}
static inline void nne_le_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void nne_le_wr64(uint8_t *p, uint64_t v) {
    nne_le_wr32(p, (uint32_t)v);
    nne_le_wr32(p + 4, (uint32_t)(v >> 32));
}
/* IEEE floats travel as their bit patterns. */
static inline float nne_le_rdf32(const uint8_t *p) {
    uint32_t u = nne_le_rd32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline double nne_le_rdf64(const uint8_t *p) {
    uint64_t u = nne_le_rd64(p);
    double f;
    memcpy(&f, &u, 8);
    return f;
}
static inline void nne_le_wrf32(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    nne_le_wr32(p, u);
}
static inline void nne_le_wrf64(uint8_t *p, double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    nne_le_wr64(p, u);
}

#endif
