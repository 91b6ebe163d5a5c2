/* Golden-data files (NNEGOLD1): named arrays written by the PyTorch scripts in scripts/
 * and read back by the tests. General purpose: op goldens (tests/golden/ops/), training
 * parity, anything that needs "a bag of named tensors".
 *
 * Format, all integers little-endian, no padding or alignment anywhere:
 *
 *   offset  size  field
 *   0       8     magic "NNEGOLD1" (the trailing digit is the format version)
 *   8       4     u32 count: number of arrays (<= NNE_GOLDEN_MAX_ARRAYS)
 *   12      ...   count array records, back to back:
 *                   u32 name_len (1..NNE_GOLDEN_MAX_NAME)
 *                   name_len bytes of printable ASCII name (no NUL), unique in the file
 *                   u32 dtype: 0 = f32 (IEEE binary32), 1 = i32, 2 = u8
 *                   u32 ndim (0..NNE_GOLDEN_MAX_DIMS; 0 = scalar, one element)
 *                   ndim x i32 dims (each >= 0)
 *                   prod(dims) elements of dtype, little-endian
 *   The file ends exactly after the last record (trailing bytes are an error).
 *
 * Conventions: u8 arrays usually hold ASCII strings (e.g. "op", "desc"); tensors are stored
 * in nnedge layouts (NHWC activations, OHWI conv weights) by the writer; scalar parameters
 * are 1-element arrays. Writer: write_golden() in scripts/gen_golden_ops.py.
 *
 * The loader validates everything (truncation, sizes, overflow, names, duplicates) and
 * returns NNE_ERR_FORMAT with a message naming the file and the field; it never trusts a
 * count before checking it against the bytes left. Each array is copied into its own
 * allocation of exactly its size (so AddressSanitizer catches a kernel reading past it),
 * converted to host byte order; u8 arrays get one extra NUL byte so they can be used as
 * C strings. */
#ifndef NNE_GOLDEN_H
#define NNE_GOLDEN_H

#include "nnedge/common.h"

#define NNE_GOLDEN_MAGIC      "NNEGOLD1"
#define NNE_GOLDEN_MAX_DIMS   8
#define NNE_GOLDEN_MAX_NAME   255
#define NNE_GOLDEN_MAX_ARRAYS 65536

typedef enum nne_golden_dtype {
    NNE_GOLDEN_F32 = 0,
    NNE_GOLDEN_I32 = 1,
    NNE_GOLDEN_U8 = 2,
} nne_golden_dtype;

typedef struct nne_golden_array {
    char *name; /* NUL-terminated */
    nne_golden_dtype dtype;
    int32_t ndim;
    int32_t dims[NNE_GOLDEN_MAX_DIMS]; /* dims[0..ndim) */
    size_t count;                      /* product of dims (1 when ndim == 0) */
    void *data;                        /* count elements (u8: plus a NUL), host order */
} nne_golden_array;

typedef struct nne_golden {
    size_t n;                 /* number of arrays */
    nne_golden_array *arrays; /* in file order */
} nne_golden;

/* Parse a file image. On success *g owns its memory (release with nne_golden_free); on
 * failure *g is empty and the error message names `what` (e.g. the path). */
nne_status nne_golden_parse(const void *buf, size_t size, const char *what, nne_golden *g);
/* Read and parse a file. */
nne_status nne_golden_load(const char *path, nne_golden *g);
void nne_golden_free(nne_golden *g);

/* Look up by exact name; NULL if absent. */
const nne_golden_array *nne_golden_find(const nne_golden *g, const char *name);
/* Typed lookups: NULL if absent or of another dtype; *count (if non-NULL) gets the
 * element count. */
const float *nne_golden_f32(const nne_golden *g, const char *name, size_t *count);
const int32_t *nne_golden_i32(const nne_golden *g, const char *name, size_t *count);
/* A u8 array as a C string; `dflt` if absent. */
const char *nne_golden_str(const nne_golden *g, const char *name, const char *dflt);
/* Element `i` of an i32 array; `dflt` if the array is absent or too short. */
int32_t nne_golden_i32_at(const nne_golden *g, const char *name, size_t i, int32_t dflt);

/* Element-wise comparison of `got` against `ref` with the mixed criterion
 *     |got - ref| <= atol + rtol * |ref|      (NaN matches only NaN; inf only itself).
 * Fills *r (worst offender by excess over the allowed error) and returns r->n_bad == 0. */
typedef struct nne_golden_cmp {
    double max_abs; /* max |got - ref| over finite pairs */
    double max_rel; /* max |got - ref| / max(|ref|, 1e-30) over finite pairs */
    size_t worst;   /* index of the largest |got-ref| - (atol + rtol*|ref|) */
    size_t n_bad;   /* elements failing the criterion */
} nne_golden_cmp;
bool nne_golden_compare(const float *got, const float *ref, size_t n, double atol, double rtol,
                        nne_golden_cmp *r);

#endif
