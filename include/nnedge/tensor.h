/* nnedge tensors: dtypes, shapes, strides and quantization parameters.
 *
 * Layout: activations are NHWC (batch, height, width, channels), channels innermost.
 * Why: see docs/layout.md. Weights of conv2d and conv_transpose2d are OHWI:
 * [out_channels][kernel_h][kernel_w][in_channels / groups]; dense weights are [out][in].
 */
#ifndef NNEDGE_TENSOR_H
#define NNEDGE_TENSOR_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nne_dtype {
    NNE_DTYPE_INVALID = 0,
    NNE_F32 = 1, /* IEEE binary32 */
    NNE_F16 = 2, /* IEEE binary16, storage only: compute converts to f32 */
    NNE_S8 = 3,  /* int8, two's complement */
    NNE_U8 = 4,  /* uint8 */
    NNE_S32 = 5, /* int32 (biases, accumulators) */
    NNE_DTYPE_COUNT
} nne_dtype;

/* Bytes per element (0 for an invalid dtype). */
size_t nne_dtype_size(nne_dtype t);
/* "f32", "f16", "s8", "u8", "s32" or "invalid". */
const char *nne_dtype_name(nne_dtype t);
/* Parse a dtype name; NNE_DTYPE_INVALID if unknown. */
nne_dtype nne_dtype_from_name(const char *name);

#define NNE_MAX_DIMS 6

/* Dimensions are int64 so that products can be checked for overflow; each dimension must be
 * in [1, NNE_MAX_DIM] and the element count at most NNE_MAX_ELEMENTS. */
#define NNE_MAX_DIM      (1 << 24)
#define NNE_MAX_ELEMENTS ((int64_t)1 << 34)

typedef struct nne_shape {
    int32_t ndim;              /* 0..NNE_MAX_DIMS; 0 is a scalar */
    int64_t dim[NNE_MAX_DIMS]; /* outermost first: NHWC is dim[0]=N .. dim[3]=C */
} nne_shape;

/* Build a shape; unused trailing dims are zeroed. */
nne_shape nne_shape_make(int ndim, const int64_t *dims);
nne_shape nne_shape_4d(int64_t n, int64_t h, int64_t w, int64_t c);
nne_shape nne_shape_1d(int64_t n);
nne_shape nne_shape_2d(int64_t a, int64_t b);
/* Number of elements (1 for a scalar). Only meaningful for a valid shape. */
int64_t nne_shape_numel(const nne_shape *s);
bool nne_shape_equal(const nne_shape *a, const nne_shape *b);
/* NNE_OK if every dim is in range and the element count within NNE_MAX_ELEMENTS. */
nne_status nne_shape_validate(const nne_shape *s);
/* Contiguous (row-major) strides in elements. */
void nne_shape_strides(const nne_shape *s, int64_t stride[NNE_MAX_DIMS]);
/* "[1, 512, 768, 3]" into buf; returns buf. */
const char *nne_shape_str(const nne_shape *s, char *buf, size_t n);

/* Quantization parameters. real = scale * (q - zero_point).
 * axis < 0: one (scale, zero_point) for the whole tensor (count == 1).
 * axis >= 0: one pair per index along `axis` (count == dim[axis]), e.g. per output
 *            channel of OHWI weights is axis 0.
 * pow2: every scale is an exact power of two 2^-k (the DPU's fixed-point positions); the
 *       shift k is recoverable as -log2(scale). */
typedef struct nne_quant {
    int32_t axis;
    int32_t count;       /* 0 = not quantized */
    float *scale;        /* [count], owned by the tensor */
    int32_t *zero_point; /* [count], owned by the tensor */
    bool pow2;
} nne_quant;

typedef enum nne_tensor_kind {
    NNE_TENSOR_ACTIVATION = 0, /* produced by a node; lives in the activation arena */
    NNE_TENSOR_INPUT = 1,      /* a graph input; lives in the activation arena */
    NNE_TENSOR_CONSTANT = 2,   /* weights, biases, other parameters; owns its data */
} nne_tensor_kind;

typedef struct nne_tensor {
    char *name; /* unique within a graph, owned */
    nne_dtype dtype;
    nne_tensor_kind kind;
    nne_shape shape;
    nne_quant quant;
    void *data;           /* constants: owned 64-byte aligned buffer; others: NULL
                             until a backend binds them */
    int64_t arena_offset; /* activations/inputs: byte offset in the planned arena, -1 if
                             unplanned */
} nne_tensor;

/* Bytes of the tensor's contiguous data (numel * dtype size); 0 on overflow/invalid. */
size_t nne_tensor_nbytes(const nne_tensor *t);

/* Elements of a constant whose real value is not exactly 0: f32 / f16 values other than +-0;
 * s8 / u8 / s32 codes other than their zero point (per tensor or per index of quant.axis; 0
 * when not quantized). A tensor without data counts every element (its values are unknown).
 * Used for the nonzero parameters and sparse storage of magnitude-pruned models. */
int64_t nne_tensor_count_nonzero(const nne_tensor *t);

/* Quantization helpers. nne_quant_set copies the arrays (count pairs). */
nne_status nne_quant_set(nne_quant *q, int32_t axis, int32_t count, const float *scale,
                         const int32_t *zero_point, bool pow2);
void nne_quant_free(nne_quant *q);
/* Deep copy. */
nne_status nne_quant_copy(nne_quant *dst, const nne_quant *src);

#ifdef __cplusplus
}
#endif
#endif
