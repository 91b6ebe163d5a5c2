/* nnedge image quality metrics on 8-bit interleaved images (same geometry required).
 *
 * Conventions (those of CompressAI's published numbers); exact definitions, the odd-size
 * pooling rule and the validation against scikit-image / NumPy are in docs/metrics.md:
 *  - MSE and PSNR over all samples of all channels together; PSNR = 10 log10(255^2 / MSE),
 *    +infinity for identical images.
 *  - SSIM (Wang et al. 2004) with an 11-tap Gaussian window, sigma 1.5, "valid" filtering
 *    (no padding), K1 = 0.01, K2 = 0.03, data range 255; computed per channel, then the mean
 *    of the channels' SSIM. Matches skimage structural_similarity(gaussian_weights=True,
 *    sigma=1.5, use_sample_covariance=False, data_range=255) and pytorch_msssim.
 *    Requires min(width, height) >= 11.
 *  - MS-SSIM (Wang et al. 2003) as in pytorch_msssim: 5 scales, weights
 *    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average pooling between scales (an odd
 *    dimension is zero-padded by one sample on both sides, divisor always 4: see
 *    docs/metrics.md), contrast-structure term at scales 1..4 and the full SSIM at scale 5,
 *    negative values clamped to 0 (relu), per channel, then the mean over channels.
 *    Requires min(width, height) > 160 (as pytorch_msssim).
 *
 * Every channel counts the same (an alpha channel too: drop it first if it should not).
 * Computation is in double precision; results are deterministic. Errors:
 * NNE_ERR_INVALID_ARG (NULL pointer, size <= 0, channels outside 1..4, bad data range),
 * NNE_ERR_LIMIT (image too small for the metric, or over 2^48 samples), NNE_ERR_NOMEM.
 * Memory: the SSIM functions allocate two double planes of width * height (four for
 * MS-SSIM, the second pair a quarter of the size) plus O(width) scratch.
 */
#ifndef NNEDGE_METRICS_H
#define NNEDGE_METRICS_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nne_quality {
    double mse;
    double psnr;    /* dB; INFINITY if mse == 0 */
    double ssim;    /* in [-1, 1]; 1 for identical images */
    double ms_ssim; /* in [0, 1]; NAN if min(width, height) <= 160 (too small for 5 scales) */
} nne_quality;

/* a and b: width*height*channels bytes each, interleaved (channels 1..4). The result goes
 * to the last argument, which is left untouched on failure. */
nne_status nne_mse_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                      int32_t channels, double *mse);
/* 10 log10(peak^2 / mse) dB; INFINITY if mse == 0, NAN if mse < 0 or peak <= 0 (or NAN). */
double nne_psnr_from_mse(double mse, double peak);
nne_status nne_ssim_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                       int32_t channels, double *ssim);
nne_status nne_ms_ssim_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                          int32_t channels, double *ms_ssim);
/* All of the above in one call (SSIM is a by-product of MS-SSIM's first scale, so this
 * costs about as much as nne_ms_ssim_u8 alone). Needs min side >= 11; MS-SSIM is NAN
 * rather than an error when the image is too small for it. */
nne_status nne_quality_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                          int32_t channels, nne_quality *q);

/* SSIM of one float plane pair (values nominally in [0, data_range], data_range > 0), for
 * the trainer's losses and tests; same window and constants as nne_ssim_u8, with
 * C1 = (0.01 data_range)^2 and C2 = (0.03 data_range)^2. */
nne_status nne_ssim_f64_plane(const double *a, const double *b, int32_t width, int32_t height,
                              double data_range, double *ssim);

#ifdef __cplusplus
}
#endif
#endif
