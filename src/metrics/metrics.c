/* Image quality metrics: MSE, PSNR, SSIM, MS-SSIM. Definitions and conventions in
 * include/nnedge/metrics.h and docs/metrics.md.
 *
 * SSIM filtering is separable and "valid" (no padding): a w x h plane gives a
 * (w - 10) x (h - 10) SSIM map. The horizontal pass fills a ring of NNE_SSIM_TAPS rows
 * per moment (5 moments: x, y, x^2, y^2, xy); each output row is then one vertical
 * 11-tap pass over the ring. Cost: about 5 * (11 + 11) multiply-adds per pixel, memory
 * O(11 * width) besides the planes. Everything is double precision.
 */
#include "nnedge/metrics.h"

#include <math.h>
#include <string.h>

#define NNE_SSIM_TAPS      11 /* Gaussian window length (Wang et al. 2004) */
#define NNE_SSIM_RADIUS    5  /* (NNE_SSIM_TAPS - 1) / 2 */
#define NNE_SSIM_SIGMA     1.5
#define NNE_SSIM_K1        0.01
#define NNE_SSIM_K2        0.03
#define NNE_MS_SSIM_SCALES 5
#define NNE_N_MOMENTS      5 /* x, y, x*x, y*y, x*y */

/* pytorch_msssim's default weights (Wang et al. 2003, Table 1 normalized). */
static const double ms_ssim_weights[NNE_MS_SSIM_SCALES] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};

/* Smallest side accepted by MS-SSIM: (taps - 1) * 2^(scales - 1) + 1 = 161, so that the
 * coarsest scale still holds one full window (pytorch_msssim asserts side > 160). */
#define NNE_MS_SSIM_MIN_SIDE ((NNE_SSIM_TAPS - 1) * (1 << (NNE_MS_SSIM_SCALES - 1)) + 1)

/* Normalized 1-D Gaussian, exp(-d^2 / (2 sigma^2)) for d = -5..5, divided by its sum (the
 * kernel of scipy.ndimage.gaussian_filter1d(truncate=3.5) and of pytorch_msssim). */
static void gaussian_taps(double g[NNE_SSIM_TAPS]) {
    double sum = 0.0;
    for (int i = 0; i < NNE_SSIM_TAPS; i++) {
        double d = (double)(i - NNE_SSIM_RADIUS);
        g[i] = exp(-(d * d) / (2.0 * NNE_SSIM_SIGMA * NNE_SSIM_SIGMA));
        sum += g[i];
    }
    for (int i = 0; i < NNE_SSIM_TAPS; i++) g[i] /= sum;
}

/* Scratch of the SSIM core for planes up to `width` wide. */
typedef struct ssim_scratch {
    double *ring; /* [NNE_N_MOMENTS][NNE_SSIM_TAPS][ow]: horizontally filtered rows */
    double *acc;  /* [NNE_N_MOMENTS][ow]: one vertically filtered output row */
    double *tmp;  /* [3][width]: x^2, y^2, xy of the row being filtered */
} ssim_scratch;

static nne_status ssim_scratch_init(ssim_scratch *s, int32_t width) {
    size_t ow = (size_t)width - (NNE_SSIM_TAPS - 1), n_ring, n_acc;
    memset(s, 0, sizeof(*s));
    if (!nne_size_mul(ow, NNE_N_MOMENTS * NNE_SSIM_TAPS, &n_ring) ||
        !nne_size_mul(ow, NNE_N_MOMENTS, &n_acc))
        return nne_error(NNE_ERR_NOMEM, "ssim: image too wide (%d)", (int)width);
    s->ring = nne_calloc(n_ring, sizeof(double));
    s->acc = nne_calloc(n_acc, sizeof(double));
    s->tmp = nne_calloc((size_t)width, 3 * sizeof(double));
    if (!s->ring || !s->acc || !s->tmp) {
        nne_free(s->ring);
        nne_free(s->acc);
        nne_free(s->tmp);
        memset(s, 0, sizeof(*s));
        return NNE_ERR_NOMEM;
    }
    return NNE_OK;
}

static void ssim_scratch_free(ssim_scratch *s) {
    nne_free(s->ring);
    nne_free(s->acc);
    nne_free(s->tmp);
    memset(s, 0, sizeof(*s));
}

/* Horizontal valid 11-tap filter of row `y` of planes x and p (width w) for the five
 * moments, into ring slot `slot`. Products first (tmp: 3 rows of w), then one pass per
 * moment and tap with the column loop innermost, which the compiler vectorizes. */
static void ssim_filter_row(const double *x, const double *p, int32_t w, int32_t y,
                            const double g[NNE_SSIM_TAPS], double *ring, double *tmp, size_t ow,
                            int slot) {
    const double *src[NNE_N_MOMENTS];
    src[0] = x + (size_t)y * (size_t)w;
    src[1] = p + (size_t)y * (size_t)w;
    src[2] = tmp;
    src[3] = tmp + (size_t)w;
    src[4] = tmp + 2 * (size_t)w;
    for (size_t j = 0; j < (size_t)w; j++) {
        double a = src[0][j], b = src[1][j];
        tmp[j] = a * a;
        tmp[(size_t)w + j] = b * b;
        tmp[2 * (size_t)w + j] = a * b;
    }
    for (int m = 0; m < NNE_N_MOMENTS; m++) {
        double *restrict o = ring + ((size_t)m * NNE_SSIM_TAPS + (size_t)slot) * ow;
        const double *restrict r = src[m];
        for (size_t j = 0; j < ow; j++) o[j] = g[0] * r[j];
        for (int i = 1; i < NNE_SSIM_TAPS; i++) {
            const double gi = g[i];
            const double *restrict ri = r + i;
            for (size_t j = 0; j < ow; j++) o[j] += gi * ri[j];
        }
    }
}

/* SSIM core on one pair of planes (w x h, both >= NNE_SSIM_TAPS): the mean of the SSIM
 * map and the mean of the contrast-structure map (cs), valid region only.
 * c1 = (K1 L)^2, c2 = (K2 L)^2 with L the data range. */
static void ssim_plane(const double *x, const double *p, int32_t w, int32_t h, double c1, double c2,
                       ssim_scratch *s, double *ssim_mean, double *cs_mean) {
    double g[NNE_SSIM_TAPS];
    gaussian_taps(g);
    const size_t ow = (size_t)w - (NNE_SSIM_TAPS - 1);
    const int32_t oh = h - (NNE_SSIM_TAPS - 1);
    double ssim_sum = 0.0, cs_sum = 0.0;

    for (int32_t y = 0; y < NNE_SSIM_TAPS - 1; y++)
        ssim_filter_row(x, p, w, y, g, s->ring, s->tmp, ow, y % NNE_SSIM_TAPS);
    for (int32_t oy = 0; oy < oh; oy++) {
        int32_t newest = oy + NNE_SSIM_TAPS - 1;
        ssim_filter_row(x, p, w, newest, g, s->ring, s->tmp, ow, newest % NNE_SSIM_TAPS);
        /* Vertical pass: acc[m][j] = sum_k g[k] * row(oy + k)[m][j]. */
        for (int m = 0; m < NNE_N_MOMENTS; m++) {
            double *acc = s->acc + (size_t)m * ow;
            for (size_t j = 0; j < ow; j++) acc[j] = 0.0;
            for (int k = 0; k < NNE_SSIM_TAPS; k++) {
                const double *r =
                    s->ring + ((size_t)m * NNE_SSIM_TAPS + (size_t)((oy + k) % NNE_SSIM_TAPS)) * ow;
                const double gk = g[k];
                for (size_t j = 0; j < ow; j++) acc[j] += gk * r[j];
            }
        }
        const double *mx = s->acc, *my = s->acc + ow, *mxx = s->acc + 2 * ow,
                     *myy = s->acc + 3 * ow, *mxy = s->acc + 4 * ow;
        double row_ssim = 0.0, row_cs = 0.0;
        for (size_t j = 0; j < ow; j++) {
            /* Population (co)variances under the Gaussian window. */
            double ux = mx[j], uy = my[j];
            double vx = mxx[j] - ux * ux, vy = myy[j] - uy * uy, vxy = mxy[j] - ux * uy;
            double cs = (2.0 * vxy + c2) / (vx + vy + c2);
            double l = (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1);
            row_cs += cs;
            row_ssim += l * cs;
        }
        /* Per-row partial sums keep the accumulation error at O(log) levels for any size. */
        ssim_sum += row_ssim;
        cs_sum += row_cs;
    }
    const double n = (double)ow * (double)oh;
    *ssim_mean = ssim_sum / n;
    *cs_mean = cs_sum / n;
}

/* 2x2 average pooling exactly as pytorch_msssim's
 * F.avg_pool2d(X, kernel_size=2, padding=[h % 2, w % 2]) with count_include_pad=True:
 * an odd dimension is padded with one zero on BOTH sides, the output has ceil(n / 2)
 * samples along it, output k covers input samples 2k - 1 and 2k (the trailing pad is never
 * reached), and every output is divided by 4 whatever the number of real samples. So for
 * an odd width the first output column is (v[0] + zero) / 2 of its row pair, about half
 * as bright as its neighbours: a dark border that pytorch_msssim (and thus CompressAI's
 * published MS-SSIM) includes, which we reproduce. */
static void avg_pool_2x2(const double *in, int32_t w, int32_t h, double *out, int32_t *ow_out,
                         int32_t *oh_out) {
    const int32_t pw = w % 2, ph = h % 2;
    const int32_t ow = (w + 2 * pw - 2) / 2 + 1, oh = (h + 2 * ph - 2) / 2 + 1;
    for (int32_t oy = 0; oy < oh; oy++) {
        for (int32_t ox = 0; ox < ow; ox++) {
            double sum = 0.0;
            for (int32_t dy = 0; dy < 2; dy++) {
                int32_t iy = 2 * oy + dy - ph;
                if (iy < 0 || iy >= h) continue;
                const double *row = in + (size_t)iy * (size_t)w;
                for (int32_t dx = 0; dx < 2; dx++) {
                    int32_t ix = 2 * ox + dx - pw;
                    if (ix < 0 || ix >= w) continue;
                    sum += row[ix];
                }
            }
            out[(size_t)oy * (size_t)ow + (size_t)ox] = sum * 0.25;
        }
    }
    *ow_out = ow;
    *oh_out = oh;
}

static nne_status check_args(const char *what, const void *a, const void *b, int32_t width,
                             int32_t height, int32_t channels, int32_t min_side,
                             size_t *n_samples) {
    if (!a || !b) return nne_error(NNE_ERR_INVALID_ARG, "%s: NULL image", what);
    if (channels < 1 || channels > 4)
        return nne_error(NNE_ERR_INVALID_ARG, "%s: %d channels (want 1..4)", what, (int)channels);
    if (width <= 0 || height <= 0)
        return nne_error(NNE_ERR_INVALID_ARG, "%s: bad size %dx%d", what, (int)width, (int)height);
    if (width < min_side || height < min_side)
        return nne_error(NNE_ERR_LIMIT, "%s: image %dx%d too small: both sides must be at least %d",
                         what, (int)width, (int)height, (int)min_side);
    /* The SSIM paths hold two double planes of width * height. */
    size_t n_pixels, n, plane_bytes;
    if (!nne_size_mul((size_t)width, (size_t)height, &n_pixels) ||
        !nne_size_mul(n_pixels, (size_t)channels, &n) ||
        !nne_size_mul(n_pixels, 2 * sizeof(double), &plane_bytes))
        return nne_error(NNE_ERR_NOMEM, "%s: image %dx%dx%d too large", what, (int)width,
                         (int)height, (int)channels);
    if (n > ((size_t)1 << 48)) /* keeps the exact uint64 sum of squared errors in range */
        return nne_error(NNE_ERR_LIMIT, "%s: image %dx%dx%d too large", what, (int)width,
                         (int)height, (int)channels);
    *n_samples = n;
    return NNE_OK;
}

nne_status nne_mse_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                      int32_t channels, double *mse) {
    size_t n = 0;
    nne_status st = check_args("mse", a, b, width, height, channels, 1, &n);
    if (st != NNE_OK) return st;
    if (!mse) return nne_error(NNE_ERR_INVALID_ARG, "mse: NULL output");
    /* Exact integer sum: each term <= 255^2 < 2^16, n < 2^48 keeps it below 2^64. */
    uint64_t sse = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        sse += (uint64_t)(d * d);
    }
    *mse = (double)sse / (double)n;
    return NNE_OK;
}

double nne_psnr_from_mse(double mse, double peak) {
    if (!(mse >= 0.0) || !(peak > 0.0)) return NAN;
    if (mse == 0.0) return INFINITY;
    return 10.0 * log10(peak * peak / mse);
}

/* Work buffers for the u8 entry points: two pairs of planes (current scale and the next,
 * ping-ponged) and the SSIM scratch. */
typedef struct metric_work {
    double *xa, *ya, *xb, *yb;
    ssim_scratch ss;
} metric_work;

static void metric_work_free(metric_work *wk) {
    nne_free(wk->xa);
    nne_free(wk->ya);
    nne_free(wk->xb);
    nne_free(wk->yb);
    ssim_scratch_free(&wk->ss);
}

static nne_status metric_work_init(metric_work *wk, int32_t width, int32_t height,
                                   bool multiscale) {
    memset(wk, 0, sizeof(*wk));
    size_t n = (size_t)width * (size_t)height; /* checked by check_args */
    size_t n2 = ((size_t)width / 2 + 1) * ((size_t)height / 2 + 1);
    wk->xa = nne_malloc(n * sizeof(double));
    wk->ya = nne_malloc(n * sizeof(double));
    if (multiscale) {
        wk->xb = nne_malloc(n2 * sizeof(double));
        wk->yb = nne_malloc(n2 * sizeof(double));
    }
    nne_status st = NNE_OK;
    if (!wk->xa || !wk->ya || (multiscale && (!wk->xb || !wk->yb))) st = NNE_ERR_NOMEM;
    if (st == NNE_OK) st = ssim_scratch_init(&wk->ss, width);
    if (st != NNE_OK) metric_work_free(wk);
    return st;
}

static void extract_channel(const uint8_t *src, size_t n_pixels, int32_t channels, int32_t c,
                            double *dst) {
    for (size_t i = 0; i < n_pixels; i++) dst[i] = (double)src[i * (size_t)channels + (size_t)c];
}

/* MS-SSIM of one channel already in wk->xa / wk->ya (w x h, min side >= 161). Also returns
 * the single-scale SSIM (scale 1) since it comes for free. Clobbers the planes. */
static double ms_ssim_channel(metric_work *wk, int32_t w, int32_t h, double c1, double c2,
                              double *ssim_scale1) {
    double *x = wk->xa, *y = wk->ya, *nx = wk->xb, *ny = wk->yb;
    double result = 1.0;
    for (int s = 0; s < NNE_MS_SSIM_SCALES; s++) {
        double ssim, cs;
        ssim_plane(x, y, w, h, c1, c2, &wk->ss, &ssim, &cs);
        if (s == 0) *ssim_scale1 = ssim;
        if (s < NNE_MS_SSIM_SCALES - 1) {
            /* relu, then weight: pytorch_msssim's prod(relu(mcs) ** w[:-1]). */
            result *= pow(cs > 0.0 ? cs : 0.0, ms_ssim_weights[s]);
            int32_t w2, h2;
            avg_pool_2x2(x, w, h, nx, &w2, &h2);
            avg_pool_2x2(y, w, h, ny, &w2, &h2);
            double *t = x;
            x = nx;
            nx = t;
            t = y;
            y = ny;
            ny = t;
            w = w2;
            h = h2;
        } else {
            result *= pow(ssim > 0.0 ? ssim : 0.0, ms_ssim_weights[s]);
        }
    }
    return result;
}

/* Shared driver: SSIM always, MS-SSIM when want_ms. */
static nne_status ssim_u8_impl(const char *what, const uint8_t *a, const uint8_t *b, int32_t width,
                               int32_t height, int32_t channels, bool want_ms, double *ssim_out,
                               double *ms_out) {
    metric_work wk;
    nne_status st = metric_work_init(&wk, width, height, want_ms);
    if (st != NNE_OK) {
        if (st == NNE_ERR_NOMEM)
            return nne_error(NNE_ERR_NOMEM, "%s: out of memory for a %dx%d image", what, (int)width,
                             (int)height);
        return st;
    }
    const double c1 = (NNE_SSIM_K1 * 255.0) * (NNE_SSIM_K1 * 255.0);
    const double c2 = (NNE_SSIM_K2 * 255.0) * (NNE_SSIM_K2 * 255.0);
    const size_t n_pixels = (size_t)width * (size_t)height;
    double ssim_sum = 0.0, ms_sum = 0.0;
    for (int32_t c = 0; c < channels; c++) {
        extract_channel(a, n_pixels, channels, c, wk.xa);
        extract_channel(b, n_pixels, channels, c, wk.ya);
        double ssim, cs;
        if (want_ms) {
            ms_sum += ms_ssim_channel(&wk, width, height, c1, c2, &ssim);
        } else {
            ssim_plane(wk.xa, wk.ya, width, height, c1, c2, &wk.ss, &ssim, &cs);
        }
        ssim_sum += ssim;
    }
    metric_work_free(&wk);
    if (ssim_out) *ssim_out = ssim_sum / (double)channels;
    if (ms_out) *ms_out = want_ms ? ms_sum / (double)channels : NAN;
    return NNE_OK;
}

nne_status nne_ssim_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                       int32_t channels, double *ssim) {
    size_t n = 0;
    nne_status st = check_args("ssim", a, b, width, height, channels, NNE_SSIM_TAPS, &n);
    if (st != NNE_OK) return st;
    if (!ssim) return nne_error(NNE_ERR_INVALID_ARG, "ssim: NULL output");
    return ssim_u8_impl("ssim", a, b, width, height, channels, false, ssim, NULL);
}

nne_status nne_ms_ssim_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                          int32_t channels, double *ms_ssim) {
    size_t n = 0;
    nne_status st = check_args("ms-ssim", a, b, width, height, channels, NNE_MS_SSIM_MIN_SIDE, &n);
    if (st != NNE_OK) return st;
    if (!ms_ssim) return nne_error(NNE_ERR_INVALID_ARG, "ms-ssim: NULL output");
    return ssim_u8_impl("ms-ssim", a, b, width, height, channels, true, NULL, ms_ssim);
}

nne_status nne_quality_u8(const uint8_t *a, const uint8_t *b, int32_t width, int32_t height,
                          int32_t channels, nne_quality *q) {
    size_t n = 0;
    nne_status st = check_args("quality", a, b, width, height, channels, NNE_SSIM_TAPS, &n);
    if (st != NNE_OK) return st;
    if (!q) return nne_error(NNE_ERR_INVALID_ARG, "quality: NULL output");
    nne_quality r;
    st = nne_mse_u8(a, b, width, height, channels, &r.mse);
    if (st != NNE_OK) return st;
    r.psnr = nne_psnr_from_mse(r.mse, 255.0);
    bool want_ms = width >= NNE_MS_SSIM_MIN_SIDE && height >= NNE_MS_SSIM_MIN_SIDE;
    st = ssim_u8_impl("quality", a, b, width, height, channels, want_ms, &r.ssim, &r.ms_ssim);
    if (st == NNE_OK) *q = r;
    return st;
}

nne_status nne_ssim_f64_plane(const double *a, const double *b, int32_t width, int32_t height,
                              double data_range, double *ssim) {
    size_t n = 0;
    nne_status st = check_args("ssim", a, b, width, height, 1, NNE_SSIM_TAPS, &n);
    if (st != NNE_OK) return st;
    if (!ssim) return nne_error(NNE_ERR_INVALID_ARG, "ssim: NULL output");
    if (!(data_range > 0.0) || !isfinite(data_range))
        return nne_error(NNE_ERR_INVALID_ARG, "ssim: data range %g must be positive", data_range);
    ssim_scratch ss;
    st = ssim_scratch_init(&ss, width);
    if (st != NNE_OK)
        return nne_error(NNE_ERR_NOMEM, "ssim: out of memory for a %dx%d plane", (int)width,
                         (int)height);
    const double c1 = (NNE_SSIM_K1 * data_range) * (NNE_SSIM_K1 * data_range);
    const double c2 = (NNE_SSIM_K2 * data_range) * (NNE_SSIM_K2 * data_range);
    double cs;
    ssim_plane(a, b, width, height, c1, c2, &ss, ssim, &cs);
    ssim_scratch_free(&ss);
    return NNE_OK;
}
