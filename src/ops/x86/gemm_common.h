/* Shared by the x86 GEMM drivers (gemm_f32_driver.h, gemm_amx.c): how C is split between
 * pool tasks, and the calls that need no kernel. Everything is static inline. */
#ifndef NNE_GEMM_COMMON_H
#define NNE_GEMM_COMMON_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "nnedge/gemm.h"

/* Below this many multiply-adds a GEMM runs as one task: waking threads costs more. */
#define GEMM_MIN_PARALLEL_MACS (128 * 128 * 64)

typedef struct gemm_split {
    bool split_m;             /* tasks own row slabs (else column slabs) */
    int n_tasks;              /* <= threads */
    int32_t slab;             /* rows (split_m) or columns per task, a multiple of mr or nr */
    int32_t tasks_m, tasks_n; /* the rows and columns of C one task covers at most */
} gemm_split;

static inline int64_t gemm_ceil_div64(int64_t x, int64_t y) { return (x + y - 1) / y; }

/* C (m x n, both > 0) in contiguous slabs of whole mr x nr micro-tiles along its larger
 * dimension (unless that has fewer tiles than threads), one task per thread: a function of
 * (m, n, k, threads) only, so scratch sizing and the kernel agree. Each task packs all of
 * op(B)'s panels when splitting M (all of op(A)'s when splitting N): the larger dimension is
 * split, so the duplicated packing is of the smaller operand. */
static inline gemm_split gemm_split_tasks(int32_t m, int32_t n, int32_t k, int threads, int mr,
                                          int nr) {
    gemm_split s;
    if (threads < 1) threads = 1;
    if ((double)m * n * k < GEMM_MIN_PARALLEL_MACS) threads = 1;
    const int64_t tiles_m = gemm_ceil_div64(m, mr), tiles_n = gemm_ceil_div64(n, nr);
    if (m >= n)
        s.split_m = tiles_m >= threads || tiles_m >= tiles_n;
    else
        s.split_m = !(tiles_n >= threads || tiles_n >= tiles_m);
    const int64_t tiles = s.split_m ? tiles_m : tiles_n;
    const int64_t per = gemm_ceil_div64(tiles, threads < tiles ? threads : tiles);
    s.n_tasks = (int)gemm_ceil_div64(tiles, per);
    s.slab = (int32_t)(per * (s.split_m ? mr : nr));
    s.tasks_m = s.split_m && s.slab < m ? s.slab : m;
    s.tasks_n = !s.split_m && s.slab < n ? s.slab : n;
    return s;
}

/* The rows [*m0, *m1) and columns [*n0, *n1) of C that task `task` computes. */
static inline void gemm_task_range(const gemm_split *s, int task, int32_t m, int32_t n, int32_t *m0,
                                   int32_t *m1, int32_t *n0, int32_t *n1) {
    *m0 = 0, *m1 = m, *n0 = 0, *n1 = n;
    if (s->split_m) {
        *m0 = task * s->slab;
        *m1 = *m0 + s->slab < m ? *m0 + s->slab : m;
    } else {
        *n0 = task * s->slab;
        *n1 = *n0 + s->slab < n ? *n0 + s->slab : n;
    }
}

/* A call's arguments, as the drivers' tasks read them. */
typedef struct gemm_args {
    uint32_t flags;
    int32_t m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float *c;
    unsigned char *scratch;
} gemm_args;

static inline gemm_args gemm_args_make(uint32_t flags, int32_t m, int32_t n, int32_t k,
                                       const float *a, int32_t lda, const float *b, int32_t ldb,
                                       float *c, int32_t ldc, void *scratch) {
    gemm_args g = {flags, m, n, k, lda, ldb, ldc, a, b, c, (unsigned char *)scratch};
    return g;
}

/* Checks the arguments (asserts, gemm.h's preconditions) and does the calls that need no
 * kernel: an empty C, or K = 0 (C = 0, or unchanged when accumulating). True when done. */
static inline bool gemm_trivial(uint32_t flags, int32_t m, int32_t n, int32_t k, int32_t lda,
                                int32_t ldb, float *c, int32_t ldc, const void *scratch) {
    const bool ta = flags & NNE_GEMM_TRANS_A, tb = flags & NNE_GEMM_TRANS_B;
    assert(m >= 0 && n >= 0 && k >= 0);
    assert(ldc >= n && lda >= (ta ? m : k) && ldb >= (tb ? k : n));
    (void)ta, (void)tb, (void)lda, (void)ldb, (void)scratch;
    if (m == 0 || n == 0) return true;
    if (k == 0) {
        if (!(flags & NNE_GEMM_ACCUMULATE))
            for (int32_t i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof *c);
        return true;
    }
    assert(scratch && ((uintptr_t)scratch & 63) == 0);
    return false;
}

#endif
