/* Allocation with overflow checks; failures set the thread's error message. */
#include <stdlib.h>
#include <string.h>

#include "nnedge/common.h"

void *nne_malloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) nne_error(NNE_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void *nne_calloc(size_t n, size_t size) {
    size_t total;
    if (!nne_size_mul(n, size, &total)) {
        nne_error(NNE_ERR_NOMEM, "allocation size overflow (%zu x %zu)", n, size);
        return NULL;
    }
    void *p = calloc(total ? total : 1, 1);
    if (!p) nne_error(NNE_ERR_NOMEM, "out of memory allocating %zu bytes", total);
    return p;
}

void *nne_realloc_array(void *old, size_t n, size_t size) {
    size_t total;
    if (!nne_size_mul(n, size, &total)) {
        nne_error(NNE_ERR_NOMEM, "allocation size overflow (%zu x %zu)", n, size);
        return NULL;
    }
    void *p = realloc(old, total ? total : 1);
    if (!p) nne_error(NNE_ERR_NOMEM, "out of memory allocating %zu bytes", total);
    return p;
}

void *nne_aligned_alloc(size_t size) {
    size_t rounded;
    if (!nne_size_add(size ? size : 1, NNE_ALIGN - 1, &rounded)) {
        nne_error(NNE_ERR_NOMEM, "allocation size overflow (%zu)", size);
        return NULL;
    }
    rounded &= ~(size_t)(NNE_ALIGN - 1);
    void *p = aligned_alloc(NNE_ALIGN, rounded);
    if (!p) nne_error(NNE_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void nne_aligned_free(void *p) { free(p); }

void nne_free(void *p) { free(p); }

char *nne_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = nne_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
