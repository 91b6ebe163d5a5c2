/* f32 GEMM, reference kernel: the oracle for the optimized variants in ops/x86/.
 *
 *   C[i][j] = (accumulate ? C[i][j] : 0) + sum_k op(A)[i][k] * op(B)[k][j]
 *
 * The sum runs over k in increasing order in an f32 accumulator starting from 0 (separate
 * multiply and add, no FMA: the build uses -std=c11, so the compiler does not contract);
 * the result is then stored, or added to C with one rounding. With NNE_GEMM_BF16 each element
 * of op(A) and op(B) is rounded to bf16 (nne_f32_to_bf16) where it is read. Serial: `pool` and
 * `scratch` are ignored. See include/nnedge/gemm.h for the argument conventions. */
#include <assert.h>

#include "nnedge/gemm.h"

void nne_gemm_f32__ref(nne_threadpool *pool, uint32_t flags, int32_t m, int32_t n, int32_t k,
                       const float *a, int32_t lda, const float *b, int32_t ldb, float *c,
                       int32_t ldc, void *scratch) {
    (void)pool;
    (void)scratch;
    const bool ta = flags & NNE_GEMM_TRANS_A, tb = flags & NNE_GEMM_TRANS_B;
    const bool acc_c = flags & NNE_GEMM_ACCUMULATE, bf16 = flags & NNE_GEMM_BF16;
    assert(m >= 0 && n >= 0 && k >= 0);
    assert(ldc >= n && lda >= (ta ? m : k) && ldb >= (tb ? k : n));
    /* Element strides of op(A) along i and k, of op(B) along k and j. */
    const size_t a_si = ta ? 1 : (size_t)lda, a_sk = ta ? (size_t)lda : 1;
    const size_t b_sk = tb ? 1 : (size_t)ldb, b_sj = tb ? (size_t)ldb : 1;
    if (k == 0) { /* A and B may be NULL: touch C only */
        if (!acc_c)
            for (int32_t i = 0; i < m; i++)
                for (int32_t j = 0; j < n; j++) c[(size_t)i * ldc + j] = 0.0f;
        return;
    }
    for (int32_t i = 0; i < m; i++) {
        for (int32_t j = 0; j < n; j++) {
            const float *ai = a + i * a_si, *bj = b + j * b_sj;
            float acc = 0.0f;
            if (bf16)
                for (int32_t p = 0; p < k; p++)
                    acc += nne_bf16_to_f32(nne_f32_to_bf16(ai[p * a_sk])) *
                           nne_bf16_to_f32(nne_f32_to_bf16(bj[p * b_sk]));
            else
                for (int32_t p = 0; p < k; p++) acc += ai[p * a_sk] * bj[p * b_sk];
            float *cij = c + (size_t)i * ldc + j;
            *cij = acc_c ? *cij + acc : acc;
        }
    }
}
