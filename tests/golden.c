/* NNEGOLD1 golden-file loader; format in golden.h and tests/golden/README.md. */
#include "golden.h"

#include <math.h>
#include <string.h>

#include "testutil.h"

/* Bounded little-endian reader over a file image. */
typedef struct {
    const unsigned char *p;
    size_t left;
} nne_golden_rd;

static bool rd_bytes(nne_golden_rd *r, size_t n, const unsigned char **out) {
    if (r->left < n) return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static bool rd_u32(nne_golden_rd *r, uint32_t *v) {
    const unsigned char *b;
    if (!rd_bytes(r, 4, &b)) return false;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

static size_t dtype_size(uint32_t dt) { return dt == NNE_GOLDEN_U8 ? 1 : 4; }

void nne_golden_free(nne_golden *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) {
        nne_free(g->arrays[i].name);
        nne_free(g->arrays[i].data);
    }
    nne_free(g->arrays);
    g->arrays = NULL;
    g->n = 0;
}

nne_status nne_golden_parse(const void *buf, size_t size, const char *what, nne_golden *g) {
    nne_golden_rd r = {buf, size};
    const unsigned char *magic;
    uint32_t count;
    nne_status st = NNE_OK;

    g->n = 0;
    g->arrays = NULL;
    if (!rd_bytes(&r, 8, &magic) || memcmp(magic, NNE_GOLDEN_MAGIC, 8) != 0)
        return nne_error(NNE_ERR_FORMAT, "%s: not an NNEGOLD1 file (bad magic)", what);
    if (!rd_u32(&r, &count)) return nne_error(NNE_ERR_FORMAT, "%s: truncated header", what);
    /* Each record takes at least 13 bytes (name_len, 1-byte name, dtype, ndim). */
    if (count > NNE_GOLDEN_MAX_ARRAYS || count > r.left / 13)
        return nne_error(NNE_ERR_FORMAT, "%s: array count %u exceeds the file size or limit", what,
                         count);
    g->arrays = nne_calloc(count ? count : 1, sizeof *g->arrays);
    if (!g->arrays) return NNE_ERR_NOMEM;

    for (uint32_t k = 0; k < count; k++) {
        nne_golden_array *a = &g->arrays[k];
        uint32_t name_len, dtype, ndim;
        const unsigned char *name, *bytes;
        if (!rd_u32(&r, &name_len) || name_len == 0 || name_len > NNE_GOLDEN_MAX_NAME ||
            !rd_bytes(&r, name_len, &name)) {
            st = nne_error(NNE_ERR_FORMAT, "%s: array %u: bad or truncated name", what, k);
            goto fail;
        }
        for (uint32_t i = 0; i < name_len; i++)
            if (name[i] < 0x20 || name[i] > 0x7e) {
                st = nne_error(NNE_ERR_FORMAT, "%s: array %u: non-printable name", what, k);
                goto fail;
            }
        a->name = nne_malloc(name_len + 1);
        if (!a->name) {
            st = NNE_ERR_NOMEM;
            goto fail;
        }
        memcpy(a->name, name, name_len);
        a->name[name_len] = '\0';
        g->n = k + 1; /* from here on nne_golden_free releases this record */
        if (nne_golden_find(g, a->name) != a) {
            st = nne_error(NNE_ERR_FORMAT, "%s: duplicate array name '%s'", what, a->name);
            goto fail;
        }
        if (!rd_u32(&r, &dtype) || !rd_u32(&r, &ndim)) {
            st = nne_error(NNE_ERR_FORMAT, "%s: '%s': truncated header", what, a->name);
            goto fail;
        }
        if (dtype > NNE_GOLDEN_U8 || ndim > NNE_GOLDEN_MAX_DIMS) {
            st = nne_error(NNE_ERR_FORMAT, "%s: '%s': bad dtype %u or ndim %u", what, a->name,
                           dtype, ndim);
            goto fail;
        }
        a->dtype = (nne_golden_dtype)dtype;
        a->ndim = (int32_t)ndim;
        size_t n = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint32_t v;
            if (!rd_u32(&r, &v) || v > INT32_MAX || !nne_size_mul(n, v, &n)) {
                st = nne_error(NNE_ERR_FORMAT, "%s: '%s': bad or truncated dims", what, a->name);
                goto fail;
            }
            a->dims[d] = (int32_t)v;
        }
        a->count = n;
        const size_t es = dtype_size(dtype);
        if (n > r.left / es || !rd_bytes(&r, n * es, &bytes)) {
            st = nne_error(NNE_ERR_FORMAT,
                           "%s: '%s': %zu elements run past the end of the "
                           "file",
                           what, a->name, n);
            goto fail;
        }
        a->data = nne_malloc(n * es + (dtype == NNE_GOLDEN_U8));
        if (!a->data) {
            st = NNE_ERR_NOMEM;
            goto fail;
        }
        if (dtype == NNE_GOLDEN_U8) {
            memcpy(a->data, bytes, n);
            ((unsigned char *)a->data)[n] = 0;
        } else {
            /* f32 and i32 share the 32-bit little-endian decoding (bit pattern copy). */
            uint32_t *dst = a->data;
            for (size_t i = 0; i < n; i++) {
                const unsigned char *b = bytes + 4 * i;
                dst[i] = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24;
            }
        }
    }
    if (r.left != 0) {
        st = nne_error(NNE_ERR_FORMAT, "%s: %zu trailing bytes", what, r.left);
        goto fail;
    }
    return NNE_OK;
fail:
    nne_golden_free(g);
    return st;
}

nne_status nne_golden_load(const char *path, nne_golden *g) {
    size_t size = 0;
    g->n = 0;
    g->arrays = NULL;
    unsigned char *buf = nne_test_read_file(path, &size);
    if (!buf) return nne_error(NNE_ERR_IO, "%s: cannot read", path);
    nne_status st = nne_golden_parse(buf, size, path, g);
    nne_free(buf);
    return st;
}

const nne_golden_array *nne_golden_find(const nne_golden *g, const char *name) {
    for (size_t i = 0; i < g->n; i++)
        if (g->arrays[i].name && strcmp(g->arrays[i].name, name) == 0) return &g->arrays[i];
    return NULL;
}

static const void *find_typed(const nne_golden *g, const char *name, nne_golden_dtype dt,
                              size_t *count) {
    const nne_golden_array *a = nne_golden_find(g, name);
    if (!a || a->dtype != dt) return NULL;
    if (count) *count = a->count;
    return a->data;
}

const float *nne_golden_f32(const nne_golden *g, const char *name, size_t *count) {
    return find_typed(g, name, NNE_GOLDEN_F32, count);
}

const int32_t *nne_golden_i32(const nne_golden *g, const char *name, size_t *count) {
    return find_typed(g, name, NNE_GOLDEN_I32, count);
}

const char *nne_golden_str(const nne_golden *g, const char *name, const char *dflt) {
    const char *s = find_typed(g, name, NNE_GOLDEN_U8, NULL);
    return s ? s : dflt;
}

int32_t nne_golden_i32_at(const nne_golden *g, const char *name, size_t i, int32_t dflt) {
    size_t n = 0;
    const int32_t *v = nne_golden_i32(g, name, &n);
    return v && i < n ? v[i] : dflt;
}

bool nne_golden_compare(const float *got, const float *ref, size_t n, double atol, double rtol,
                        nne_golden_cmp *r) {
    double worst_excess = -INFINITY;
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < n; i++) {
        const double a = got[i], b = ref[i];
        double excess;
        if (isnan(b) || isnan(a) || isinf(b) || isinf(a)) {
            const bool same = (isnan(a) && isnan(b)) || a == b;
            excess = same ? -INFINITY : INFINITY;
        } else {
            const double d = fabs(a - b);
            if (d > r->max_abs) r->max_abs = d;
            const double rel = d / fmax(fabs(b), 1e-30);
            if (rel > r->max_rel) r->max_rel = rel;
            excess = d - (atol + rtol * fabs(b));
        }
        if (excess > 0) r->n_bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            r->worst = i;
        }
    }
    return r->n_bad == 0;
}
