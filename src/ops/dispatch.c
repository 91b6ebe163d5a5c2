/* ISA dispatch for the ops layer (see include/nnedge/gemm.h, docs/ARCHITECTURE.md).
 *
 * One table row per ISA, best last. The active row is chosen once, at the first call of any
 * dispatched entry point (pthread_once), from nne_cpu_features() and NNEDGE_ISA, and kept
 * in an atomic pointer so that nne_ops_set_isa (tests, tools) can swap it. Kernels are
 * called through the row: one indirect call per GEMM, no per-call feature test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#define NNE_HAVE_X86 1
#else
#define NNE_HAVE_X86 0
#endif

#define NEEDS_AVX2   (NNE_CPU_AVX2 | NNE_CPU_FMA)
#define NEEDS_AVX512 (NNE_CPU_AVX2 | NNE_CPU_FMA | NNE_CPU_AVX512F)

static const nne_gemm_f32_variant variants[] = {
    {"ref", 0, nne_gemm_f32__ref, NULL},
#if NNE_HAVE_X86
    {"avx2", NEEDS_AVX2, nne_gemm_f32__avx2, nne_gemm_f32_scratch_size__avx2},
    {"avx512", NEEDS_AVX512, nne_gemm_f32__avx512, nne_gemm_f32_scratch_size__avx512},
#endif
};
#define N_VARIANTS ((int)(sizeof variants / sizeof variants[0]))

static _Atomic(const nne_gemm_f32_variant *) active;
static nne_status init_status;
static char init_msg[256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

const nne_gemm_f32_variant *nne_gemm_f32_variants(int *count) {
    if (count) *count = N_VARIANTS;
    return variants;
}

static int find(const char *isa) {
    for (int i = 0; i < N_VARIANTS; i++)
        if (strcmp(variants[i].isa, isa) == 0) return i;
    return -1;
}

static bool runnable(int i) {
    return (nne_cpu_features() & variants[i].cpu_needs) == variants[i].cpu_needs;
}

bool nne_ops_isa_supported(const char *isa) {
    int i = isa ? find(isa) : -1;
    return i >= 0 && runnable(i);
}

/* Best runnable row at or below `limit`. Row 0 (ref) always runs. */
static int best_below(int limit) {
    for (int i = limit; i > 0; i--)
        if (runnable(i)) return i;
    return 0;
}

/* Select `isa` (NULL: NNEDGE_ISA or automatic). Writes a message into msg on failure. */
static nne_status select_isa(const char *isa, char *msg, size_t msg_size) {
    msg[0] = 0;
    if (!isa) {
        isa = getenv("NNEDGE_ISA");
        if (isa && !*isa) isa = NULL;
    }
    nne_status st = NNE_OK;
    int pick = best_below(N_VARIANTS - 1);
    if (isa) {
        int want = find(isa);
        if (want < 0) {
            st = NNE_ERR_INVALID_ARG;
            snprintf(msg, msg_size,
                     "NNEDGE_ISA=%s: unknown ISA (want ref, avx2 or avx512); using %s", isa,
                     variants[pick].isa);
        } else if (!runnable(want)) {
            char have[128], need[128];
            uint32_t missing = variants[want].cpu_needs & ~nne_cpu_features();
            nne_cpu_features_str(missing, need, sizeof need);
            pick = best_below(want);
            st = NNE_ERR_UNSUPPORTED;
            snprintf(msg, msg_size, "NNEDGE_ISA=%s: this CPU lacks %s (has: %s); using %s", isa,
                     need, nne_cpu_features_str(nne_cpu_features(), have, sizeof have),
                     variants[pick].isa);
        } else {
            pick = want;
        }
    }
    atomic_store(&active, &variants[pick]);
    return st;
}

static void init_once_fn(void) { init_status = select_isa(NULL, init_msg, sizeof init_msg); }

static const nne_gemm_f32_variant *get_active(void) {
    pthread_once(&init_once, init_once_fn);
    return atomic_load_explicit(&active, memory_order_acquire);
}

nne_status nne_ops_dispatch_init(void) {
    pthread_once(&init_once, init_once_fn);
    if (init_status != NNE_OK) return nne_error(init_status, "%s", init_msg);
    return NNE_OK;
}

nne_status nne_ops_set_isa(const char *isa) {
    pthread_once(&init_once, init_once_fn);
    char msg[256];
    nne_status st = select_isa(isa, msg, sizeof msg);
    if (st != NNE_OK) return nne_error(st, "%s", msg);
    return NNE_OK;
}

const char *nne_ops_isa(void) { return get_active()->isa; }

/* AMX-BF16 (NNE_GEMM_BF16): the CPU's features and the kernel's grant, asked once. */
#define NEEDS_AMX                                                                                  \
    (NEEDS_AVX512 | NNE_CPU_AVX512BW | NNE_CPU_AVX512VL | NNE_CPU_AVX512BF16 | NNE_CPU_AMX_TILE |  \
     NNE_CPU_AMX_BF16)

/* The AMX kernel is built for x86-64 only (src/ops/x86/gemm_amx.c). */
#if defined(__x86_64__)
#define NNE_HAVE_AMX 1
#else
#define NNE_HAVE_AMX 0
#endif

static bool amx_cpu(void) { return NNE_HAVE_AMX && (nne_cpu_features() & NEEDS_AMX) == NEEDS_AMX; }

bool nne_gemm_amx_usable(void) { return amx_cpu() && nne_cpu_request_amx(); }

/* The bf16 path runs AMX only under the avx512 ISA, so NNEDGE_ISA=avx2|ref turns it off. */
static bool bf16_on_amx(const nne_gemm_f32_variant *v) {
    return strcmp(v->isa, "avx512") == 0 && nne_gemm_amx_usable();
}

const char *nne_gemm_bf16_path(void) {
    const nne_gemm_f32_variant *v = get_active();
    return bf16_on_amx(v) ? "amx" : v->isa;
}

void nne_gemm_f32(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                  const float *a, int32_t lda, const float *b, int32_t ldb, float *c, int32_t ldc,
                  void *scratch) {
    const nne_gemm_f32_variant *v = get_active();
#if NNE_HAVE_AMX
    if ((flags & NNE_GEMM_BF16) && bf16_on_amx(v)) {
        nne_gemm_f32__amx(pool, flags, m, n, k, a, lda, b, ldb, c, ldc, scratch);
        return;
    }
#endif
    v->gemm(pool, flags, m, n, k, a, lda, b, ldb, c, ldc, scratch);
}

size_t nne_gemm_f32_scratch_size(int32_t m, int32_t n, int32_t k, int threads) {
    size_t max = 0;
#if NNE_HAVE_AMX
    if (amx_cpu()) max = nne_gemm_f32_scratch_size__amx(m, n, k, threads);
#endif
    for (int i = 0; i < N_VARIANTS; i++) {
        if (!variants[i].scratch_size || !runnable(i)) continue;
        size_t s = variants[i].scratch_size(m, n, k, threads);
        if (s > max) max = s;
    }
    return max;
}

void nne_gemm_f32_seq(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                      const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                      int32_t ldc, void *scratch) {
#if NNE_HAVE_X86
    /* Every non-ref row of the table needs AVX2 (NEEDS_AVX2 is part of NEEDS_AVX512). */
    if ((flags & ~(uint32_t)NNE_GEMM_ACCUMULATE) == NNE_GEMM_TRANS_B &&
        strcmp(get_active()->isa, "ref") != 0) {
        nne_gemm_f32_seq__avx2(pool, flags, m, n, k, a, lda, b, ldb, c, ldc, scratch);
        return;
    }
#endif
    nne_gemm_f32__ref(pool, flags, m, n, k, a, lda, b, ldb, c, ldc, scratch);
}

size_t nne_gemm_f32_seq_scratch_size(int32_t m, int32_t n, int32_t k) {
#if NNE_HAVE_X86
    return nne_gemm_f32_seq_scratch_size__avx2(m, n, k); /* the reference needs none */
#else
    (void)m, (void)n, (void)k;
    return 0;
#endif
}
