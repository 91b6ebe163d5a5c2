/* nnedge: bf16 inference kernels (docs/bf16.md).
 *
 * Semantics (what every variant computes, the reference exactly):
 *   - storage: activations x and weights w in bf16 (nne_bf16, common.h), bias f32;
 *   - products of two bf16 values are exact in f32 (8 x 8 significant bits), summed in an f32
 *     accumulator from 0 over the taps in the reference order (ky, kx, input channel), the
 *     bias added last, in f32;
 *   - y = act(acc + bias) is returned in f32, not rounded: the caller rounds it to bf16 when
 *     it stores a bf16 activation (nne_f32_to_bf16_array; the cpu-bf16 backend rounds at
 *     the next convolution's input, which gives the same bits). This is oneDNN's bf16
 *     convolution with an f32 destination, and what vdpbf16ps / AMX tdpbf16ps accumulate.
 *
 * Kernels:
 *   nne_conv2d_bf16__ref, nne_conv_transpose2d_bf16__ref, nne_dense_bf16__ref: plain C, the
 *       semantics above literally (no activation, like the f32 references in ops.h).
 *   nne_conv2d_bf16, nne_conv_transpose2d_bf16, nne_dense_bf16: threaded, fused activation,
 *       dispatched on nne_ops_isa() (gemm.h, NNEDGE_ISA); nne_conv_bf16_isa() names the path:
 *       "ref", "avx2", "avx512": bf16 -> f32 by a 16-bit shift (AVX2 when the ISA is not ref)
 *           into scratch, then the f32 kernels of conv.h / gemm.h (FMA in f32). A product is
 *           exact, so an FMA adds it exactly as the reference's multiply-then-add does: the
 *           result is bit-identical to the reference wherever the f32 kernel keeps its order
 *           (the band panel kernel on conv2d: docs/bf16.md), else within NNE_CONV_BF16_TOL.
 *       "avx512bf16": the CPU has AVX512_BF16 and the ISA is avx512: vdpbf16ps on pairs of
 *           bf16 (src/ops/x86/conv_bf16_avx512bf16.c), within NNE_CONV_BF16_TOL.
 * Results are identical for any thread count for a given path.
 *
 * Scratch: kernels never allocate; *_scratch_size(g, threads) bytes, 64-byte aligned, valid
 * for every path this CPU can run (nne_ops_set_isa between calls is safe).
 */
#ifndef NNEDGE_BF16_H
#define NNEDGE_BF16_H

#include "nnedge/common.h"
#include "nnedge/conv.h"
#include "nnedge/ops.h"
#include "nnedge/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tolerance of every bf16 variant against the bf16 reference, per output element (the
 * inputs are the same bf16 values, so only the f32 summation differs):
 *   |y - y_ref| <= NNE_CONV_BF16_TOL * (K + 2) * (sum_k |x_k w_k| + |bias|)
 * the f32 kernels' bound (NNE_CONV_F32_TOL, conv.h), K = taps x input channels per group.
 * Holds for inputs without bf16 subnormals: vdpbf16ps treats them as zero (DAZ) and flushes
 * subnormal sums (FTZ), where the other paths keep them. */
#define NNE_CONV_BF16_TOL NNE_CONV_F32_TOL

/* What bf16 costs against f32 (the f32 reference on the unrounded x and w), per element:
 *   |y_bf16 - y_f32| <= NNE_BF16_VS_F32_TOL * sum_k |x_k w_k| + f32 summation terms
 * RNE to 8 significant bits moves x and w by at most a relative 2^-8 each (unit roundoff),
 * so a product moves by at most (1 + 2^-8)^2 - 1 = 2^-7 (1 + 2^-9). */
#define NNE_BF16_VS_F32_TOL (1.0 / 128.0 * (1.0 + 1.0 / 512.0))

/* ---- Array conversion (dispatched: AVX2 unless the ISA is ref; same bits either way) ---- */
void nne_f32_to_bf16_array(const float *x, nne_bf16 *y, size_t n);
void nne_bf16_to_f32_array(const nne_bf16 *x, float *y, size_t n);

/* ---- Reference kernels: geometry and layouts as nne_conv2d_f32__ref (ops.h) ----
 * x [n][ih][iw][ic] bf16, w [oc][kh][kw][ic/groups] bf16, bias [oc] f32 or NULL,
 * y [n][oh][ow][oc] f32. */
void nne_conv2d_bf16__ref(const nne_conv2d_geom *g, const nne_bf16 *x, const nne_bf16 *w,
                          const float *bias, float *y);
void nne_conv_transpose2d_bf16__ref(const nne_conv2d_geom *g, const nne_bf16 *x, const nne_bf16 *w,
                                    const float *bias, float *y);
/* x [n][in], w [out][in] (nn.Linear), bias [out] or NULL, y [n][out] f32: a 1x1 conv2d. */
void nne_dense_bf16__ref(int32_t n, int32_t in, int32_t out, const nne_bf16 *x, const nne_bf16 *w,
                         const float *bias, float *y);

/* ---- Fast kernels ---- */
size_t nne_conv2d_bf16_scratch_size(const nne_conv2d_geom *g, int threads);
size_t nne_conv_transpose2d_bf16_scratch_size(const nne_conv2d_geom *g, int threads);
/* As the reference, plus act (NULL: none; conv.h) fused; pool may be NULL (serial). */
void nne_conv2d_bf16(nne_threadpool *pool, const nne_conv2d_geom *g, const nne_bf16 *x,
                     const nne_bf16 *w, const float *bias, const nne_conv_act *act, float *y,
                     void *scratch);
void nne_conv_transpose2d_bf16(nne_threadpool *pool, const nne_conv2d_geom *g, const nne_bf16 *x,
                               const nne_bf16 *w, const float *bias, const nne_conv_act *act,
                               float *y, void *scratch);

size_t nne_dense_bf16_scratch_size(int32_t n, int32_t in, int32_t out, int threads);
void nne_dense_bf16(nne_threadpool *pool, int32_t n, int32_t in, int32_t out, const nne_bf16 *x,
                    const nne_bf16 *w, const float *bias, float *y, void *scratch);

/* The convolution path in use: "ref", "avx2", "avx512" or "avx512bf16" (above). */
const char *nne_conv_bf16_isa(void);

#ifdef __cplusplus
}
#endif
#endif
