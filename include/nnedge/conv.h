/* nnedge: fast inference convolutions (f32 and int8), threaded, with fused epilogues.
 *
 *   nne_conv2d_f32 / nne_conv_transpose2d_f32:
 *       y = act(bias + conv(x, w))          act: none, ReLU or PReLU (per channel or shared)
 *   nne_conv2d_s8 / nne_conv_transpose2d_s8:
 *       y = out(bias + sum (x - x_zp) * w)  the int8 output stage of qops.h (requantize,
 *                                           zero point, clamp = fused ReLU/ReLU6, or a
 *                                           fused PReLU: out->rq_neg)
 *
 * Geometry, layouts (NHWC activations, OHWI weights, groups, stride, dilation, asymmetric
 * padding, output padding) and meaning are exactly those of the reference kernels
 * nne_conv2d_f32__ref / nne_conv_transpose2d_f32__ref (ops.h) and nne_conv2d_s8__ref /
 * nne_conv_transpose2d_s8__ref (qops.h). docs/conv.md describes the method.
 *
 * Method: implicit GEMM over output tiles. A transposed convolution with stride s is split
 * into s_h * s_w phases (sub-pixel convolutions): the outputs with the same (oy + pad) mod s
 * are a stride-1 gather over the taps that reach them, so no zero is ever multiplied and
 * nothing is scattered. Each tile of output pixels of a phase is gathered (im2col) into the
 * caller's scratch and multiplied by the weights: f32 with nne_gemm_f32 (dispatched, serial
 * per tile), int8 with an exact int16/int32 micro-kernel (AVX2 vpmaddwd, AVX-512 VNNI
 * vpdpbusd, or portable C). The epilogue is applied to the tile while it is in cache.
 *
 * Accuracy. f32: within NNE_CONV_F32_TOL of the reference (below). int8: bit-exact with the
 * reference for every ISA (integer sums are exact; the output stage is nne_qoutput_apply).
 *
 * Determinism. Tiles depend on the geometry only; each output element is computed by one
 * task with the same instruction sequence whatever the thread count: results are bitwise
 * identical for 1, 2 or more threads.
 *
 * Scratch. Kernels never allocate: `scratch` must hold *_scratch_size(g, threads) bytes,
 * 64-byte aligned (nne_aligned_alloc), threads = nne_threadpool_threads(pool). It may be
 * reused between calls, not shared between concurrent calls. The size is valid for every
 * ISA this CPU can run, so nne_ops_set_isa() between calls is safe.
 *
 * ISA. The f32 kernels follow nne_ops_isa() through nne_gemm_f32. The int8 kernels pick
 * their micro-kernel from it: "ref" -> portable C, "avx2" -> AVX2, "avx512" -> AVX-512 VNNI
 * when the CPU has it (else AVX2). nne_conv_s8_isa() names the one in use.
 */
#ifndef NNEDGE_CONV_H
#define NNEDGE_CONV_H

#include "nnedge/common.h"
#include "nnedge/ops.h"
#include "nnedge/qops.h"
#include "nnedge/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tolerance of the f32 kernels against the reference, per output element:
 *   |y - y_ref| <= NNE_CONV_F32_TOL * (K + 2) * (sum_k |x_k w_k| + |bias|)
 * with K = the taps reaching the element times input channels per group. 2^-22 = 4 ulps of
 * f32 per accumulated term: the reference rounds K times in sequence, the GEMM splits K in
 * blocks and uses FMA (docs/perf-gemm.md gives the GEMM's own 2 K 2^-24 bound); activations
 * are monotone and 1-Lipschitz times max(1, |slope|). */
#define NNE_CONV_F32_TOL (1.0 / 4194304.0)

/* Fused activation of an f32 convolution. */
typedef enum nne_conv_act_kind {
    NNE_CONV_ACT_NONE = 0,
    NNE_CONV_ACT_RELU = 1,  /* y = max(v, 0) (as nne_relu_f32__ref) */
    NNE_CONV_ACT_PRELU = 2, /* y = v < 0 ? slope * v : v (as nne_prelu_f32__ref) */
} nne_conv_act_kind;

typedef struct nne_conv_act {
    nne_conv_act_kind kind;
    const float *slope; /* PReLU: [n_slope] */
    int32_t n_slope;    /* PReLU: 1 (shared) or oc (per channel) */
} nne_conv_act;

/* Scratch bytes of the f32 kernels for `threads` pool threads. */
size_t nne_conv2d_f32_scratch_size(const nne_conv2d_geom *g, int threads);
size_t nne_conv_transpose2d_f32_scratch_size(const nne_conv2d_geom *g, int threads);

/* x [n][ih][iw][ic], w [oc][kh][kw][ic/groups], bias [oc] or NULL, act NULL (none) or as
 * above, y [n][oh][ow][oc] (not overlapping x). pool may be NULL (serial). */
void nne_conv2d_f32(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                    const float *w, const float *bias, const nne_conv_act *act, float *y,
                    void *scratch);
/* Transposed: x [n][ih][iw][ic], w [oc][kh][kw][ic/groups] (ops.h), y [n][oh][ow][oc]. */
void nne_conv_transpose2d_f32(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                              const float *w, const float *bias, const nne_conv_act *act,
                              float *y, void *scratch);

/* The same, bit-identical to nne_conv2d_f32__ref / nne_conv_transpose2d_f32__ref followed
 * by nne_relu_f32__ref / nne_prelu_f32__ref, for every ISA and thread count (finite
 * weights): the tiles multiply with nne_gemm_f32_seq (gemm.h), which keeps the reference's
 * summation order and roundings (taps ky, kx, input channel, no FMA, bias last). Slower than
 * the FMA path, much faster than the reference (docs/conv.md, "Exact variants"). Same
 * arguments and scratch size as above. */
void nne_conv2d_f32_exact(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                          const float *w, const float *bias, const nne_conv_act *act, float *y,
                          void *scratch);
void nne_conv_transpose2d_f32_exact(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                                    const float *w, const float *bias, const nne_conv_act *act,
                                    float *y, void *scratch);

/* GDN / IGDN (x, y [pixels][c], beta [c], gamma [c][c] as nne_gdn_f32__ref in ops.h; y must
 * not alias x), bit-identical to nne_gdn_f32__ref for every ISA and thread count: the
 * normalizer sum_j gamma[i][j] x_j^2 is a 1x1 convolution of x^2 computed per tile of
 * pixels with nne_gemm_f32_seq (src/ops/gdn_fast.c). Scratch: nne_gdn_f32_scratch_size. */
size_t nne_gdn_f32_scratch_size(int32_t c, int threads);
void nne_gdn_f32_exact(nne_threadpool *pool, size_t pixels, int32_t c, const float *x,
                       const float *beta, const float *gamma, bool inverse, float *y,
                       void *scratch);

/* Scratch bytes of the int8 kernels for `threads` pool threads. */
size_t nne_conv2d_s8_scratch_size(const nne_conv2d_geom *g, int threads);
size_t nne_conv_transpose2d_s8_scratch_size(const nne_conv2d_geom *g, int threads);

/* Arguments and preconditions as nne_conv2d_s8__ref / nne_conv_transpose2d_s8__ref (qops.h:
 * K = kh*kw*ic/groups <= NNE_S8_MAX_K, out->count 1 or oc). */
void nne_conv2d_s8(nne_threadpool *pool, const nne_conv2d_geom *g, const int8_t *x,
                   int32_t x_zero_point, const int8_t *w, const int32_t *bias,
                   const nne_qoutput *out, int8_t *y, void *scratch);
void nne_conv_transpose2d_s8(nne_threadpool *pool, const nne_conv2d_geom *g, const int8_t *x,
                             int32_t x_zero_point, const int8_t *w, const int32_t *bias,
                             const nne_qoutput *out, int8_t *y, void *scratch);

/* ---- Prepared int8 layers: weights packed once per layer ----------------------------------
 *
 * nne_conv2d_s8 / nne_conv_transpose2d_s8 pack the weights for their micro-kernel (int16
 * pairs, u8 x s8 quads with their compensation) and spread the output stage per channel at
 * every call, serially (50-70 us of conv2d_5's 1.8 ms, docs/perf.md). A prepared layer does
 * it once: nne_conv_s8_prep_create packs for the kernel the ISA in use picks (nne_ops_isa)
 * and keeps copies of w, bias and out (out->rq and out->rq_neg included), so the arguments need not
 * outlive the call; nne_conv_s8_prep_run then only runs the tiles. The output is bitwise that of
 * the per-call function with the same arguments, for every ISA and thread count. When the ISA in
 * use no longer picks the prepared kernel (nne_ops_set_isa since create), run packs into the
 * scratch as the per-call path does (same result, the per-call cost). One prepared layer may
 * be run by several threads at once, each with its own scratch. */
typedef struct nne_conv_s8_prep nne_conv_s8_prep;

/* Arguments and preconditions of nne_conv2d_s8 (transposed false) / nne_conv_transpose2d_s8
 * (true). Errors: NNE_ERR_INVALID_ARG (a precondition fails), NNE_ERR_NOMEM. */
nne_status nne_conv_s8_prep_create(const nne_conv2d_geom *g, bool transposed, int32_t x_zero_point,
                                   const int8_t *w, const int32_t *bias, const nne_qoutput *out,
                                   nne_conv_s8_prep **prep);
void nne_conv_s8_prep_free(nne_conv_s8_prep *prep); /* NULL: no-op */
/* x, y as for the per-call function; scratch: nne_conv2d_s8_scratch_size /
 * nne_conv_transpose2d_s8_scratch_size(g, threads) bytes, 64-byte aligned. */
void nne_conv_s8_prep_run(nne_threadpool *pool, const nne_conv_s8_prep *prep, const int8_t *x,
                          int8_t *y, void *scratch);

/* ---- Fused pairs: two consecutive convolutions as one pass (docs/conv.md, "Cross-layer
 * fusion") ------------------------------------------------------------------------------------
 *
 * conv2d l1 -> (activation) -> conv2d l2, where l1's output feeds only l2: l1 runs row by row
 * into a per-thread ring of l2's input rows that stays in L2 (each thread works on a band of
 * l2's output rows), so l1's output is never written to memory. Same kernels, same sums as
 * the two separate calls: the output is bitwise identical to nne_conv2d_f32 (l1, with its
 * act) then nne_conv2d_f32 (l2), and for int8 to nne_conv2d_s8, the activation of `mid`
 * (qops.h), nne_conv2d_s8; for every ISA and thread count. */

/* One layer of a pair: geometry (conv2d, not transposed), weights, bias or NULL, act or NULL. */
typedef struct nne_conv_f32_layer {
    const nne_conv2d_geom *g;
    const float *w, *bias;
    const nne_conv_act *act;
} nne_conv_f32_layer;

typedef struct nne_conv_s8_layer {
    const nne_conv2d_geom *g;
    int32_t x_zero_point; /* the layer's input zero point */
    const int8_t *w;
    const int32_t *bias;
    const nne_qoutput *out;
} nne_conv_s8_layer;

/* The int8 activation between the layers of a pair, applied to l1's output codes as the
 * graph's own int8 node does it: none (l1's output codes are l2's input), a clamp
 * (nne_clamp_s8__ref: ReLU / ReLU6) or a PReLU / leaky ReLU (nne_prelu_s8__ref's arguments;
 * x_zero_point: l1's output zero point). A PReLU fused into l1's output stage
 * (nne_qoutput_fuse_prelu: one rounding instead of two) comes with mid none. */
typedef enum nne_conv_s8_mid_kind {
    NNE_CONV_S8_MID_NONE = 0,
    NNE_CONV_S8_MID_CLAMP = 1,
    NNE_CONV_S8_MID_PRELU = 2,
} nne_conv_s8_mid_kind;

typedef struct nne_conv_s8_mid {
    nne_conv_s8_mid_kind kind;
    int32_t lo, hi;       /* CLAMP */
    int32_t x_zero_point; /* PRELU */
    const nne_qoutput *pos, *neg;
    int32_t pos_mul;
    const int32_t *neg_slope;
} nne_conv_s8_mid;

/* Whether the fused pair runs g1 -> g2 and pays, for a pool of `threads` threads (s8: the
 * int8 pair): both conv2d with groups 1 on the band kernels (conv_band.h), g1's output is g2's
 * input, the ring of g2's input rows fits CONV_PAIR_RING_BYTES (conv_pair.c), and the
 * measured policy of docs/perf.md ("Fused pairs") keeps it: f32 always, int8 when g1 has at
 * most 4 input channels. False when NNEDGE_FUSE=0 is set in the environment. */
bool nne_conv2d_pair_ok(const nne_conv2d_geom *g1, const nne_conv2d_geom *g2, bool s8, int threads);
/* Scratch bytes of a pair for `threads` pool threads (valid when nne_conv2d_pair_ok). */
size_t nne_conv2d_pair_f32_scratch_size(const nne_conv2d_geom *g1, const nne_conv2d_geom *g2,
                                        int threads);
size_t nne_conv2d_pair_s8_scratch_size(const nne_conv2d_geom *g1, const nne_conv2d_geom *g2,
                                       int threads);
/* x: l1's input, y: l2's output (not overlapping x). Preconditions: nne_conv2d_pair_ok
 * without the policy (the geometry rules), and those of the single-layer calls. */
void nne_conv2d_pair_f32(nne_threadpool *pool, const nne_conv_f32_layer *l1,
                         const nne_conv_f32_layer *l2, const float *x, float *y, void *scratch);
void nne_conv2d_pair_s8(nne_threadpool *pool, const nne_conv_s8_layer *l1,
                        const nne_conv_s8_mid *mid, const nne_conv_s8_layer *l2, const int8_t *x,
                        int8_t *y, void *scratch);

/* nne_conv2d_pair_s8 on two prepared layers (nne_conv_s8_prep_create, transposed false), the
 * same output; their weights are not packed again unless the ISA in use changed since. */
void nne_conv2d_pair_s8_prep(nne_threadpool *pool, const nne_conv_s8_prep *l1,
                             const nne_conv_s8_mid *mid, const nne_conv_s8_prep *l2,
                             const int8_t *x, int8_t *y, void *scratch);

/* The int8 micro-kernel in use: "ref", "avx2" or "avx512vnni". */
const char *nne_conv_s8_isa(void);

#ifdef __cplusplus
}
#endif
#endif
