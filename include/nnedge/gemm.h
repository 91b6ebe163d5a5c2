/* nnedge: single-precision matrix multiplication with runtime ISA dispatch.
 *
 *   C[M][N] = op(A)[M][K] * op(B)[K][N]          (flags without NNE_GEMM_ACCUMULATE)
 *   C[M][N] += op(A)[M][K] * op(B)[K][N]         (flags with NNE_GEMM_ACCUMULATE)
 *
 * All matrices are row-major with leading dimensions (elements between consecutive rows):
 *   A stored [M][lda], lda >= K         op(A) = A            (default)
 *   A stored [K][lda], lda >= M         op(A) = A^T          (NNE_GEMM_TRANS_A)
 *   B stored [K][ldb], ldb >= N         op(B) = B            (default)
 *   B stored [N][ldb], ldb >= K         op(B) = B^T          (NNE_GEMM_TRANS_B)
 *   C stored [M][ldc], ldc >= N
 * For convolutions (docs/layout.md): forward via im2col is NT (patches [P][K] times OHWI
 * weights [OC][K]), the input gradient is NN (dY [P][OC] times W [OC][K]) and the weight
 * gradient is TN (dY^T: dY stored [P][OC], times patches [P][K]).
 *
 * Semantics and accuracy. The reference (nne_gemm_f32__ref) accumulates each element in
 * f32 from 0 over k in increasing order and then stores (or adds to C). Optimized variants
 * use FMA and split K into blocks, so they are compared within
 *   |got - ref| <= 2 * K * 2^-24 * sum_k |a_ik| |b_kj|   (+ |c| * 2^-24 when accumulating)
 * (docs/perf-gemm.md). Without NNE_GEMM_ACCUMULATE, C is only written (it may hold NaN).
 * K == 0 gives C = 0 (or leaves C unchanged when accumulating).
 *
 * Determinism. For a given variant and shape, the result is bitwise identical for every
 * thread count and schedule: C is partitioned between tasks (each element computed by one
 * task) and the K blocking depends only on K.
 *
 * Scratch. Kernels never allocate: the caller provides `scratch`, at least
 * nne_gemm_f32_scratch_size(m, n, k, threads) bytes, 64-byte aligned (nne_aligned_alloc),
 * where threads = nne_threadpool_threads(pool). It holds one packing area per pool thread
 * and is bounded (a few MiB per thread) however large M, N and K are. Reuse it freely
 * between calls; do not share it between concurrent calls.
 *
 * Threads. `pool` may be NULL (serial). A call does one nne_threadpool_run on it.
 */
#ifndef NNEDGE_GEMM_H
#define NNEDGE_GEMM_H

#include "nnedge/common.h"
#include "nnedge/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    NNE_GEMM_TRANS_A = 1u << 0,    /* op(A) = A^T, A stored [K][lda] */
    NNE_GEMM_TRANS_B = 1u << 1,    /* op(B) = B^T, B stored [N][ldb] */
    NNE_GEMM_ACCUMULATE = 1u << 2, /* C += ... (beta = 1) instead of C = ... (beta = 0) */
    NNE_GEMM_BF16 = 1u << 3,       /* bf16 inputs: see below */
};

/* NNE_GEMM_BF16 (mixed-precision training, docs/perf-gemm.md "bf16 on AMX"): every element
 * of op(A) and op(B) is rounded to bf16 as it is read (round to nearest even, NaN stays NaN:
 * nne_f32_to_bf16, common.h); the products of two bf16 are exact in f32 and are summed in
 * f32 as without the flag. The reference rounds each element where it reads it; the
 * AVX2/AVX-512 variants round their packed panels; with the avx512 ISA on a CPU with
 * AMX-BF16 whose kernel grants the tile state (nne_cpu_request_amx), nne_gemm_f32 runs
 * nne_gemm_f32__amx instead (tdpbf16ps: bf16 subnormal inputs count as zero and subnormal
 * sums are flushed). All are within the f32 bound below against the reference with the
 * flag, and deterministic in the same sense. A, B and C stay f32 in memory. */

/* The signature shared by every variant. Preconditions (asserted): m, n, k >= 0, the
 * leading dimensions as above, pointers non-NULL when the matrix is non-empty, C not
 * overlapping A or B, scratch as described above (may be NULL for the reference). */
typedef void (*nne_gemm_f32_fn)(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n,
                                int32_t k, const float *a, int32_t lda, const float *b, int32_t ldb,
                                float *c, int32_t ldc, void *scratch);

/* The dispatched GEMM: the variant selected at start-up (see nne_ops_isa). */
void nne_gemm_f32(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                  const float *a, int32_t lda, const float *b, int32_t ldb, float *c, int32_t ldc,
                  void *scratch);

/* Scratch bytes for nne_gemm_f32 with a pool of `threads` threads: the maximum over every
 * variant this CPU can run, so the size stays valid if the ISA is changed. */
size_t nne_gemm_f32_scratch_size(int32_t m, int32_t n, int32_t k, int threads);

/* The variants: plain C oracle, AVX2+FMA (6x16 micro-kernel), AVX-512F (14x32). */
void nne_gemm_f32__ref(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                       const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                       int32_t ldc, void *scratch);
void nne_gemm_f32__avx2(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                        const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                        int32_t ldc, void *scratch);
void nne_gemm_f32__avx512(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                          const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                          int32_t ldc, void *scratch);
size_t nne_gemm_f32_scratch_size__avx2(int32_t m, int32_t n, int32_t k, int threads);
size_t nne_gemm_f32_scratch_size__avx512(int32_t m, int32_t n, int32_t k, int threads);

/* The AMX-BF16 kernel: computes every call as if NNE_GEMM_BF16 were set (32x32 tiles of
 * C, src/ops/x86/gemm_amx.c). Call only when nne_gemm_amx_usable(); nne_gemm_f32 routes
 * NNE_GEMM_BF16 calls to it by itself. Its scratch is part of nne_gemm_f32_scratch_size. */
void nne_gemm_f32__amx(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                       const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                       int32_t ldc, void *scratch);
size_t nne_gemm_f32_scratch_size__amx(int32_t m, int32_t n, int32_t k, int threads);
/* Whether this process can run nne_gemm_f32__amx: x86-64 with AVX512F/BW/VL/BF16, AMX-TILE +
 * AMX-BF16, and the tile state granted (asked for at the first call). */
bool nne_gemm_amx_usable(void);
/* What nne_gemm_f32 does with NNE_GEMM_BF16 now: "amx", or the ISA in use ("ref", "avx2",
 * "avx512") rounding its panels. */
const char *nne_gemm_bf16_path(void);

/* ---- The reference's arithmetic, fast (nne_gemm_f32_seq) ----
 *
 * The same result as nne_gemm_f32__ref, bit for bit, on every ISA: each element is an f32
 * accumulator from 0 over k in increasing order, every product rounded before it is added
 * (no FMA), then stored or added to C. What makes a kernel identical across machines is
 * the order of its roundings, not the instruction set, so the AVX2 variant vectorizes
 * across rows of C (one element per lane, same sequence) instead of across k. Used where
 * results must not depend on NNEDGE_ISA (the learned codec's synthesis, docs/codec.md).
 * Dispatch: nne_gemm_f32__ref when nne_ops_isa() is "ref", else the AVX2 kernel for
 * NT calls (flags NNE_GEMM_TRANS_B, optionally with NNE_GEMM_ACCUMULATE; other layouts and
 * NNE_GEMM_BF16 use the reference). Serial (`pool` ignored). Scratch: nne_gemm_f32_seq_scratch_size
 * bytes, 64-byte aligned (the packed A). */
void nne_gemm_f32_seq(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                      const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                      int32_t ldc, void *scratch);
size_t nne_gemm_f32_seq_scratch_size(int32_t m, int32_t n, int32_t k);
void nne_gemm_f32_seq__avx2(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                            const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                            int32_t ldc, void *scratch);
size_t nne_gemm_f32_seq_scratch_size__avx2(int32_t m, int32_t n, int32_t k);

/* ---- ISA dispatch (src/ops/dispatch.c) ----
 *
 * At first use the ops layer picks the best ISA the CPU supports (avx512 > avx2 > ref). The
 * environment variable NNEDGE_ISA=ref|avx2|avx512 overrides it; a name the CPU cannot run
 * falls back to the best supported ISA below it and an unknown name to the automatic choice.
 * The library never prints: nne_ops_dispatch_init() reports such a problem. */

typedef struct nne_gemm_f32_variant {
    const char *isa;      /* "ref", "avx2", "avx512" */
    uint32_t cpu_needs;   /* NNE_CPU_* bits the variant needs */
    nne_gemm_f32_fn gemm; /* the kernel */
    size_t (*scratch_size)(int32_t m, int32_t n, int32_t k, int threads); /* NULL: none */
} nne_gemm_f32_variant;

/* Every variant compiled into this build, best last; *count receives the number. Use
 * nne_ops_isa_supported() to know which ones this CPU can run. */
const nne_gemm_f32_variant *nne_gemm_f32_variants(int *count);

/* Whether this CPU can run the named ISA ("ref" always; unknown names: false). */
bool nne_ops_isa_supported(const char *isa);

/* Apply NNEDGE_ISA (once per process; later calls return the same result). Returns NNE_OK,
 * or NNE_ERR_UNSUPPORTED (the CPU lacks the requested ISA; the fallback is used) or
 * NNE_ERR_INVALID_ARG (unknown name; the automatic choice is used), with a message naming
 * the request, the missing features and the ISA in use. Callers that want to refuse such a
 * request (the CLI) treat an error as fatal; kernels work either way. */
nne_status nne_ops_dispatch_init(void);

/* Select an ISA explicitly ("ref", "avx2", "avx512"), or with NULL re-read NNEDGE_ISA as
 * above. Same statuses and fallbacks as nne_ops_dispatch_init. For tests and tools: must
 * not race with running kernels. */
nne_status nne_ops_set_isa(const char *isa);

/* The ISA in use ("ref", "avx2" or "avx512"). */
const char *nne_ops_isa(void);

#ifdef __cplusplus
}
#endif
#endif
