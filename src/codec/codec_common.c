/* Helpers shared by the codec pipelines (codec_internal.h). */
#include <math.h>
#include <string.h>

#include "codec_internal.h"

static void put_u32(nne_sha256 *h, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    nne_sha256_update(h, b, 4);
}

nne_status nne_codec_hash_weights(nne_sha256 *h, const nne_graph *g, const char *who) {
    int32_t n = 0;
    for (int32_t i = 0; i < g->n_tensors; i++) n += g->tensors[i].kind == NNE_TENSOR_CONSTANT;
    int32_t *idx = nne_calloc((size_t)(n ? n : 1), sizeof *idx);
    if (!idx) return NNE_ERR_NOMEM;
    n = 0;
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind == NNE_TENSOR_CONSTANT) idx[n++] = i;
    /* Name order (strcmp, i.e. bytewise); an insertion sort, as qsort has no context
     * argument in C11 and there are a few dozen constants. */
    for (int32_t i = 1; i < n; i++)
        for (int32_t j = i;
             j > 0 && strcmp(g->tensors[idx[j - 1]].name, g->tensors[idx[j]].name) > 0; j--) {
            int32_t t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    for (int32_t k = 0; k < n; k++) {
        const nne_tensor *t = &g->tensors[idx[k]];
        if (t->dtype != NNE_F32) {
            nne_free(idx);
            return nne_error(NNE_ERR_UNSUPPORTED, "%s: weight '%s' is %s, not f32", who, t->name,
                             nne_dtype_name(t->dtype));
        }
        const size_t len = strlen(t->name);
        put_u32(h, (uint32_t)len);
        nne_sha256_update(h, t->name, len);
        put_u32(h, (uint32_t)t->dtype);
        put_u32(h, (uint32_t)t->shape.ndim);
        for (int d = 0; d < t->shape.ndim; d++) put_u32(h, (uint32_t)t->shape.dim[d]);
        const float *v = t->data;
        const size_t m = nne_tensor_nbytes(t) / 4;
        for (size_t i = 0; i < m; i++) {
            uint32_t bits;
            memcpy(&bits, &v[i], 4);
            put_u32(h, bits);
        }
    }
    nne_free(idx);
    return NNE_OK;
}

nne_status nne_codec_check_finite(const nne_graph *g, const char *who) {
    for (int32_t i = 0; i < g->n_tensors; i++) {
        const nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || t->dtype != NNE_F32) continue;
        const float *v = t->data;
        for (size_t k = 0; k < nne_tensor_nbytes(t) / 4; k++)
            if (!isfinite(v[k]))
                return nne_error(NNE_ERR_FORMAT, "%s: weight '%s' has a non-finite value", who,
                                 t->name);
    }
    return NNE_OK;
}
