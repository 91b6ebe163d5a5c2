/* nnedge: common definitions (status codes, errors, allocation, CPU features, time).
 *
 * Conventions used by every module:
 *  - The library never prints and never exits. Every fallible function returns an
 *    nne_status; on failure a human-readable message describing the problem (naming the
 *    file, tensor or field involved) is available from nne_last_error() on the same thread.
 *  - Sizes that come from input (files, headers, shapes) are multiplied with the
 *    overflow-checked helpers below before anything is allocated.
 */
#ifndef NNEDGE_COMMON_H
#define NNEDGE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_VERSION_MAJOR  0
#define NNE_VERSION_MINOR  1
#define NNE_VERSION_PATCH  0
#define NNE_VERSION_STRING "0.1.0"

typedef enum nne_status {
    NNE_OK = 0,
    NNE_ERR_INVALID_ARG, /* a parameter is out of its documented range */
    NNE_ERR_NOMEM,       /* allocation failed, or a size would overflow */
    NNE_ERR_IO,          /* open/read/write failed */
    NNE_ERR_FORMAT,      /* malformed file or stream (truncated, bad magic, bad field) */
    NNE_ERR_CHECKSUM,    /* checksum mismatch */
    NNE_ERR_UNSUPPORTED, /* valid but not supported (version, dtype, op on a backend) */
    NNE_ERR_SHAPE,       /* inconsistent tensor shapes */
    NNE_ERR_LIMIT,       /* a documented limit is exceeded (dimensions, counts, sizes) */
    NNE_ERR_NOT_FOUND,   /* a named object does not exist */
    NNE_ERR_INTERNAL     /* a bug in nnedge */
} nne_status;

/* Short constant name of a status, e.g. "format error". Never NULL. */
const char *nne_status_str(nne_status s);

/* The message of the last error set on this thread ("" if none). Valid until the next
 * nnedge call on this thread. */
const char *nne_last_error(void);

/* Set the thread's error message (printf-style) and return `s`, so that library code can
 * write `return nne_error(NNE_ERR_FORMAT, "%s: bad magic", path);`. */
nne_status nne_error(nne_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clear the thread's error message. */
void nne_error_clear(void);

/* ---- Overflow-checked size arithmetic. Return false on overflow. ---- */
static inline bool nne_size_mul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool nne_size_add(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- Allocation. All return NULL (and set the error) on failure or overflow. ---- */
#define NNE_ALIGN 64 /* bytes: cache line and AVX-512 register width */

void *nne_malloc(size_t size);
void *nne_calloc(size_t n, size_t size);
void *nne_realloc_array(void *p, size_t n, size_t size);
/* 64-byte aligned allocation; release with nne_aligned_free. */
void *nne_aligned_alloc(size_t size);
void nne_aligned_free(void *p);
void nne_free(void *p);
/* Duplicate a string (NULL stays NULL). */
char *nne_strdup(const char *s);

/* Round `x` up to a multiple of `a` (a power of two). */
static inline size_t nne_align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

/* ---- CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320; crc32("123456789") = 0xCBF43926). */
uint32_t nne_crc32(uint32_t crc, const void *data, size_t n);

/* ---- f16 (IEEE binary16) storage conversion, round-to-nearest-even. ---- */
uint16_t nne_f32_to_f16(float f);
float nne_f16_to_f32(uint16_t h);

/* ---- bf16 (bfloat16: the top 16 bits of an IEEE binary32) storage conversion. ----
 * bf16 -> f32 is exact (append 16 zero bits). f32 -> bf16 rounds to nearest, ties to even,
 * on the bit pattern: finite values that round past the largest bf16 (0x7F7F, about
 * 3.39e38) become +-inf; subnormals round like any other value (no flush to zero); NaN stays
 * NaN with its sign and top payload bits, made quiet (bit 6 set), so a signalling NaN never
 * becomes inf. docs/bf16.md; the array versions (dispatched, AVX2) are in bf16.h. */
typedef uint16_t nne_bf16;
static inline nne_bf16 nne_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (nne_bf16)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7FFFu + ((u >> 16) & 1u); /* carries into the exponent when rounding up: correct */
    return (nne_bf16)(u >> 16);
}
static inline float nne_bf16_to_f32(nne_bf16 h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- CPU features, detected once. ---- */
enum {
    NNE_CPU_AVX2 = 1u << 0,
    NNE_CPU_FMA = 1u << 1,
    NNE_CPU_AVX512F = 1u << 2,
    NNE_CPU_AVX512BW = 1u << 3,
    NNE_CPU_AVX512VL = 1u << 4,
    NNE_CPU_AVX512VNNI = 1u << 5,
    NNE_CPU_AVX512BF16 = 1u << 6,
    NNE_CPU_AMX_TILE = 1u << 7,
    NNE_CPU_AMX_INT8 = 1u << 8,
    NNE_CPU_AMX_BF16 = 1u << 9,
};
uint32_t nne_cpu_features(void);
/* Space-separated feature names of a mask, e.g. "avx2 fma avx512f", into buf. */
const char *nne_cpu_features_str(uint32_t mask, char *buf, size_t n);
/* Whether AMX tile instructions may run in this process. Linux (5.16+) gives a process the
 * AMX tile-data state (8 KiB per thread) only on request: the first call asks for it with
 * arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) and checks it with
 * ARCH_GET_XCOMP_PERM; later calls return the cached answer (thread-safe, pthread_once).
 * False without a syscall when CPUID/XCR0 report no AMX tiles (NNE_CPU_AMX_TILE), and false
 * when the kernel refuses (older kernel, other OS, seccomp). Call it before the first AMX
 * instruction of any thread: without the permission, the first tile load raises SIGILL. */
bool nne_cpu_request_amx(void);

/* ---- Time. Monotonic clock in nanoseconds. ---- */
uint64_t nne_time_ns(void);

#ifdef __cplusplus
}
#endif
#endif
