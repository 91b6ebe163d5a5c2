/* Dtypes, shapes and quantization parameters. */
#include <stdio.h>
#include <string.h>

#include "nnedge/tensor.h"

size_t nne_dtype_size(nne_dtype t) {
    switch (t) {
    case NNE_F32:
        return 4;
    case NNE_F16:
        return 2;
    case NNE_S8:
        return 1;
    case NNE_U8:
        return 1;
    case NNE_S32:
        return 4;
    default:
        return 0;
    }
}

static const char *const g_dtype_names[NNE_DTYPE_COUNT] = {"invalid", "f32", "f16",
                                                           "s8",      "u8",  "s32"};

const char *nne_dtype_name(nne_dtype t) {
    if ((int)t <= 0 || t >= NNE_DTYPE_COUNT) return "invalid";
    return g_dtype_names[t];
}

nne_dtype nne_dtype_from_name(const char *name) {
    for (int i = 1; i < NNE_DTYPE_COUNT; i++)
        if (name && strcmp(name, g_dtype_names[i]) == 0) return (nne_dtype)i;
    return NNE_DTYPE_INVALID;
}

nne_shape nne_shape_make(int ndim, const int64_t *dims) {
    nne_shape s;
    memset(&s, 0, sizeof s);
    if (ndim < 0) ndim = 0;
    if (ndim > NNE_MAX_DIMS) ndim = NNE_MAX_DIMS;
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++) s.dim[i] = dims[i];
    return s;
}

nne_shape nne_shape_4d(int64_t n, int64_t h, int64_t w, int64_t c) {
    int64_t d[4] = {n, h, w, c};
    return nne_shape_make(4, d);
}

nne_shape nne_shape_1d(int64_t n) { return nne_shape_make(1, &n); }

nne_shape nne_shape_2d(int64_t a, int64_t b) {
    int64_t d[2] = {a, b};
    return nne_shape_make(2, d);
}

int64_t nne_shape_numel(const nne_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->dim[i];
    return n;
}

bool nne_shape_equal(const nne_shape *a, const nne_shape *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

nne_status nne_shape_validate(const nne_shape *s) {
    if (s->ndim < 0 || s->ndim > NNE_MAX_DIMS)
        return nne_error(NNE_ERR_LIMIT, "rank %d outside [0, %d]", (int)s->ndim, NNE_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dim[i] < 1 || s->dim[i] > NNE_MAX_DIM)
            return nne_error(NNE_ERR_LIMIT, "dimension %d is %lld, outside [1, %d]", i,
                             (long long)s->dim[i], NNE_MAX_DIM);
        if (__builtin_mul_overflow(n, s->dim[i], &n) || n > NNE_MAX_ELEMENTS)
            return nne_error(NNE_ERR_LIMIT, "element count exceeds %lld",
                             (long long)NNE_MAX_ELEMENTS);
    }
    return NNE_OK;
}

void nne_shape_strides(const nne_shape *s, int64_t stride[NNE_MAX_DIMS]) {
    int64_t acc = 1;
    for (int i = NNE_MAX_DIMS - 1; i >= 0; i--) {
        if (i >= s->ndim) {
            stride[i] = 0;
            continue;
        }
        stride[i] = acc;
        acc *= s->dim[i];
    }
}

const char *nne_shape_str(const nne_shape *s, char *buf, size_t n) {
    size_t len = 0;
    if (!n) return buf;
    buf[0] = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int w_ = snprintf(buf + len, n - len, __VA_ARGS__);                                        \
        if (w_ < 0 || (size_t)w_ >= n - len) return buf;                                           \
        len += (size_t)w_;                                                                         \
    } while (0)
    APPEND("[");
    for (int i = 0; i < s->ndim; i++) APPEND("%s%lld", i ? ", " : "", (long long)s->dim[i]);
    APPEND("]");
#undef APPEND
    return buf;
}

size_t nne_tensor_nbytes(const nne_tensor *t) {
    size_t es = nne_dtype_size(t->dtype), total = es;
    if (!es) return 0;
    for (int i = 0; i < t->shape.ndim; i++) {
        if (t->shape.dim[i] < 0 || !nne_size_mul(total, (size_t)t->shape.dim[i], &total)) return 0;
    }
    return total;
}

int64_t nne_tensor_count_nonzero(const nne_tensor *t) {
    const int64_t n = nne_shape_numel(&t->shape);
    if (!t->data || n <= 0) return n > 0 ? n : 0;
    const nne_quant *q = &t->quant;
    /* Elements per index of the quantization axis (inner) and the axis' extent: element e
     * belongs to index (e / inner) % extent. */
    int64_t inner = n, extent = 1;
    if (q->count > 0 && q->axis >= 0 && q->axis < t->shape.ndim) {
        extent = t->shape.dim[q->axis];
        inner = 1;
        for (int d = q->axis + 1; d < t->shape.ndim; d++) inner *= t->shape.dim[d];
    }
    int64_t nz = 0;
    for (int64_t e = 0; e < n; e++) {
        const int64_t k = extent > 1 ? (e / inner) % extent : 0;
        const int32_t zp = q->count > 0 && q->zero_point && k < q->count ? q->zero_point[k] : 0;
        switch (t->dtype) {
        case NNE_F32: nz += ((const float *)t->data)[e] != 0.0f; break;
        case NNE_F16: nz += (((const uint16_t *)t->data)[e] & 0x7fffu) != 0; break; /* +-0 */
        case NNE_S8: nz += ((const int8_t *)t->data)[e] != zp; break;
        case NNE_U8: nz += ((const uint8_t *)t->data)[e] != zp; break;
        case NNE_S32: nz += ((const int32_t *)t->data)[e] != zp; break;
        default: return n;
        }
    }
    return nz;
}

nne_status nne_quant_set(nne_quant *q, int32_t axis, int32_t count, const float *scale,
                         const int32_t *zero_point, bool pow2) {
    nne_quant_free(q);
    if (count <= 0) return NNE_OK;
    if (axis < -1 || axis >= NNE_MAX_DIMS)
        return nne_error(NNE_ERR_INVALID_ARG, "quantization axis %d out of range", (int)axis);
    if (axis < 0 && count != 1)
        return nne_error(NNE_ERR_INVALID_ARG, "per-tensor quantization needs exactly 1 scale");
    float *s = nne_malloc((size_t)count * sizeof *s);
    int32_t *z = nne_malloc((size_t)count * sizeof *z);
    if (!s || !z) {
        nne_free(s);
        nne_free(z);
        return NNE_ERR_NOMEM;
    }
    memcpy(s, scale, (size_t)count * sizeof *s);
    if (zero_point)
        memcpy(z, zero_point, (size_t)count * sizeof *z);
    else
        memset(z, 0, (size_t)count * sizeof *z);
    q->axis = axis;
    q->count = count;
    q->scale = s;
    q->zero_point = z;
    q->pow2 = pow2;
    return NNE_OK;
}

void nne_quant_free(nne_quant *q) {
    nne_free(q->scale);
    nne_free(q->zero_point);
    memset(q, 0, sizeof *q);
    q->axis = -1;
}

nne_status nne_quant_copy(nne_quant *dst, const nne_quant *src) {
    memset(dst, 0, sizeof *dst);
    dst->axis = -1;
    if (src->count <= 0) return NNE_OK;
    return nne_quant_set(dst, src->axis, src->count, src->scale, src->zero_point, src->pow2);
}
