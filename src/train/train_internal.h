/* Private helpers of the training module, shared with its tests. */
#ifndef NNE_TRAIN_INTERNAL_H
#define NNE_TRAIN_INTERNAL_H

#include "nnedge/train.h"

/* MS-SSIM of one plane pair in double, and its gradient with respect to x.
 *   x, y  [h][w]      prediction and target (any data range > 0)
 *   dx    [h][w]      overwritten with d(ms_ssim)/dx; NULL to skip the backward pass
 *   work  nne_ms_ssim_plane_work(h, w, scales) doubles
 * `scales` must be valid for the size (1..5, min(h, w) > 10 * 2^(scales-1)). Returns the
 * MS-SSIM value (with the relu clamps; 0 when a clamped term is 0). */
size_t nne_ms_ssim_plane_work(int32_t h, int32_t w, int32_t scales);
double nne_ms_ssim_plane_f64(const double *x, const double *y, int32_t h, int32_t w, int32_t scales,
                             double data_range, double *work, double *dx);

/* The deterministic reduction of per-chunk partial sums: dst[e] += part[0][e] + part[1][e]
 * + ... + part[chunks - 1][e] (f32, in chunk order), e < n, chunk k's partial at
 * part + k * stride. Every parallel kernel of the module reduces its parameter gradients so
 * (docs/training.md, "Partition and determinism"). */
void nne_train__sum_partials(const float *part, size_t n, size_t stride, int chunks, float *dst);

#endif
