/* nnedge image quality metrics on 8-bit interleaved images (same geometry required).
 *
 * Conventions (those of CompressAI's published numbers):
 *  - MSE and PSNR over all samples of all channels together; PSNR = 10 log10(255^2 / MSE),
 *    +infinity for identical images.
 *  - SSIM (Wang et al. 2004) with an 11-tap Gaussian window, sigma 1.5, "valid" filtering
 *    (no padding), K1 = 0.01, K2 = 0.03, data range 255; computed per channel, then the mean
 *    of the channels' SSIM. Matches skimage structural_similarity(gaussian_weights=True,
 *    sigma=1.5, use_sample_covariance=False, data_range=255) and pytorch_msssim.
 *  - MS-SSIM (Wang et al. 2003) as in pytorch_msssim: 5 scales, weights
 *    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average pooling between scales (odd
 *    sizes: padding as documented in docs/metrics.md), contrast-structure term at scales
 *    1..4 and the full SSIM at scale 5, negative values clamped to 0 (relu), per channel,
 *    then the mean over channels. Requires min(width, height) > 160 (as pytorch_msssim).
 */
#ifndef NNEDGE_METRICS_H
#define NNEDGE_METRICS_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nne_quality {
    double mse;
    double psnr;     /* dB; INFINITY if mse == 0 */
    double ssim;
    double ms_ssim;  /* NAN if the image is too small for 5 scales */
} nne_quality;

/* a and b: width*height*channels bytes each, interleaved. */
nne_status nne_mse_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                      int32_t channels, double *mse);
double nne_psnr_from_mse(double mse, double peak);
nne_status nne_ssim_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                       int32_t channels, double *ssim);
nne_status nne_ms_ssim_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                          int32_t channels, double *ms_ssim);
/* All of the above. */
nne_status nne_quality_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                          int32_t channels, nne_quality *q);

/* Float planes (one channel, values in [0, data_range]), for the trainer's losses and tests. */
nne_status nne_ssim_f64_plane(const double *a, const double *b, int32_t width, int32_t height,
                              double data_range, double *ssim);

#ifdef __cplusplus
}
#endif
#endif
