/* int8 convolution micro-kernels (conv_fast_s8.c drives them; include/nnedge/conv.h).
 *
 * A kernel computes an int32 tile C[m][n] = A[m][kp] . B[kp][n] exactly:
 *   A   [m][lda] row-major, the gathered tile: kgroup 2 -> int16 (x - x_zp, padding 0);
 *       kgroup 4 -> uint8 (x + 128, padding x_zp + 128); kp a multiple of 4, zero past K
 *   B   panels of 16 output channels, [ceil(n/16)][kp/kgroup][16][kgroup]: int16 (kgroup 2)
 *       or int8 (kgroup 4) weights, zero past K and past n
 *   C   [m][ldc] int32, only the first n columns of each of the m rows are written
 * With kgroup 4 the sum includes (x_zp + 128) * sum_k w, which the driver subtracts
 * (docs/conv.md, "int8"). Overflow: each product is at most 255 * 128 in magnitude and the
 * sum over K <= NNE_S8_MAX_K taps is bounded by nne_s8_acc_bound(K, 0) <= INT32_MAX, for
 * both the kgroup-2 sum and the kgroup-4 sum (x + 128 in [0, 255]) and its compensation. */
#ifndef NNE_OPS_CONV_S8_KERNELS_H
#define NNE_OPS_CONV_S8_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "nnedge/qops.h"

#define NNE_S8_NR 16 /* output channels per B panel */

typedef void (*nne_s8_ukernel_fn)(int32_t m, int32_t n, int32_t kp, const void *a, int32_t lda,
                                  const void *b, int32_t *c, int32_t ldc);

/* Output stage of the first n & ~7 channels of one pixel, bit-exact with
 *   y[j] = nne_qoutput_apply(out, o0 + j, acc[j] + addv[j])
 * with the per-channel parameters spread out by the driver: mult[j] (Q31 mantissa, unused in
 * pow2 mode), lsh[j] = max(-shift, 0), rsh[j] = max(shift, 0) of out->rq; nmult, nlsh, nrsh
 * the same of out->rq_neg (a fused PReLU, used where acc[j] + addv[j] < 0), or all NULL
 * without one; [lo, hi] the clamp. Returns the number of channels done (the caller finishes
 * the rest with nne_qoutput_apply). */
typedef int32_t (*nne_s8_output_fn)(int32_t n, const int32_t *acc, const int32_t *addv,
                                    const int32_t *mult, const int32_t *lsh, const int32_t *rsh,
                                    const int32_t *nmult, const int32_t *nlsh, const int32_t *nrsh,
                                    bool pow2, int32_t zero_point, int32_t lo, int32_t hi,
                                    int8_t *y);

/* Spread n channels of a multiplier table rq [count] (count 1 or n) as nne_s8_output_fn reads
 * it: mult[o], lsh[o] = max(-shift, 0), rsh[o] = max(shift, 0). */
static inline void nne_s8_spread_rq(const nne_requant *rq, int32_t count, int32_t n, int32_t *mult,
                                    int32_t *lsh, int32_t *rsh) {
    for (int32_t o = 0; o < n; o++) {
        const nne_requant r = rq[count == 1 ? 0 : o];
        mult[o] = r.multiplier;
        lsh[o] = r.shift < 0 ? -r.shift : 0;
        rsh[o] = r.shift > 0 ? r.shift : 0;
    }
}

typedef struct nne_s8_ukernel {
    const char *isa;     /* "ref", "avx2", "avx512vnni" */
    uint32_t cpu_needs;  /* NNE_CPU_* */
    int kgroup;          /* 2 or 4, as above */
    nne_s8_ukernel_fn fn;
    nne_s8_output_fn output; /* NULL: scalar nne_qoutput_apply */
} nne_s8_ukernel;

void nne_s8_ukernel__avx2(int32_t m, int32_t n, int32_t kp, const void *a, int32_t lda,
                          const void *b, int32_t *c, int32_t ldc);
int32_t nne_s8_output__avx2(int32_t n, const int32_t *acc, const int32_t *addv, const int32_t *mult,
                            const int32_t *lsh, const int32_t *rsh, const int32_t *nmult,
                            const int32_t *nlsh, const int32_t *nrsh, bool pow2, int32_t zero_point,
                            int32_t lo, int32_t hi, int8_t *y);
void nne_s8_ukernel__avx512vnni(int32_t m, int32_t n, int32_t kp, const void *a, int32_t lda,
                                const void *b, int32_t *c, int32_t ldc);

#endif
