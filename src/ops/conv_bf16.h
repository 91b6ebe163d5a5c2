/* Private to the bf16 kernels (conv_bf16.c, x86/bf16_avx2.c, x86/conv_bf16_avx512bf16.c)
 * and their tests. */
#ifndef NNE_OPS_CONV_BF16_H
#define NNE_OPS_CONV_BF16_H

#include "nnedge/bf16.h"

/* Output channels per packed weight panel of the pair kernels (one zmm of f32 sums). */
#define CONV_BF16_PANEL 16

/* The pair micro-kernel, vdpbf16ps's arithmetic on m rows x 16 channels:
 *   a [m][lda] bf16 (gathered taps, an even number 2*pairs of them per row, lda even),
 *   b [pairs][16][2] bf16 (weights, pair p of channel j at b[(p*16 + j)*2 + {0,1}]),
 *   c [m][16] f32 = for p = 0..pairs-1 in order, per lane:
 *       c += a[2p+1] * b[p][j][1];  c += a[2p] * b[p][j][0]     (from c = 0)
 *   with bf16 subnormal inputs read as zero and subnormal sums flushed to zero (DAZ, FTZ),
 *   rounding to nearest even: the pseudocode of VDPBF16PS in the Intel SDM, as read here. */
typedef void (*conv_bf16_pair_fn)(int32_t m, int32_t pairs, const nne_bf16 *a, size_t lda,
                                  const nne_bf16 *b, float *c);
/* Portable emulation of that pseudocode (tests run the pair driver with it on any CPU). */
void nne_conv_bf16_pair__emul(int32_t m, int32_t pairs, const nne_bf16 *a, size_t lda,
                              const nne_bf16 *b, float *c);
/* vdpbf16ps, 8 rows x 16 channels per block: needs AVX512F + AVX512BW + AVX512_BF16. */
void nne_conv_bf16_pair__avx512bf16(int32_t m, int32_t pairs, const nne_bf16 *a, size_t lda,
                                    const nne_bf16 *b, float *c);

/* AVX2 array conversions (the same bits as the scalar ones in common.h). */
void nne_f32_to_bf16_array__avx2(const float *x, nne_bf16 *y, size_t n);
void nne_bf16_to_f32_array__avx2(const nne_bf16 *x, float *y, size_t n);

/* Tests: run the convolutions on the pair driver with nne_conv_bf16_pair__emul (true), or
 * back to the dispatched path (false). Not thread-safe against running kernels. */
void nne_conv_bf16_force_pair_emul(bool on);

#endif
