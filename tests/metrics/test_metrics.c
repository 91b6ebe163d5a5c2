/* Metrics: golden values from independent implementations (scikit-image for MSE, PSNR and
 * SSIM; a NumPy implementation of pytorch_msssim's definition for MS-SSIM; see
 * scripts/gen_golden_metrics.py), plus identities, symmetry and argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/image.h"
#include "nnedge/metrics.h"
#include "testutil.h"

#define TOL_PSNR    1e-4 /* dB */
#define TOL_SSIM    1e-4
#define TOL_MS_SSIM 1e-4
#define TOL_MSE_REL 1e-12

/* Largest differences seen, reported at the end. */
static double max_d_mse_rel, max_d_psnr, max_d_ssim, max_d_ms_ssim;

static double fmax_(double a, double b) { return a > b ? a : b; }

static void test_golden(void) {
    const char *dir = nne_test_path(nne_test_source_dir(), "tests/golden/metrics");
    size_t size;
    char *text = (char *)nne_test_read_file(nne_test_path(dir, "metrics_golden.txt"), &size);
    CHECK_MSG(text != NULL, "cannot read %s/metrics_golden.txt", dir);
    if (!text) return;
    int n_pairs = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0') continue;
        char ref[128], dist[128], ms_s[64];
        int w, h, c;
        double mse, psnr, ssim;
        if (sscanf(line, "%127s %127s %d %d %d %lf %lf %lf %63s", ref, dist, &w, &h, &c, &mse,
                   &psnr, &ssim, ms_s) != 9) {
            CHECK_MSG(0, "bad golden line: %s", line);
            continue;
        }
        double ms_ssim = strtod(ms_s, NULL); /* "nan" for pairs too small for MS-SSIM */
        char ref_path[1024], dist_path[1024];
        snprintf(ref_path, sizeof(ref_path), "%s/%s", dir, ref);
        snprintf(dist_path, sizeof(dist_path), "%s/%s", dir, dist);
        nne_image a = {0}, b = {0};
        CHECK_OK(nne_image_load(ref_path, NNE_IMAGE_LOAD_ANY, &a));
        CHECK_OK(nne_image_load(dist_path, NNE_IMAGE_LOAD_ANY, &b));
        if (!a.data || !b.data) {
            nne_image_free(&a);
            nne_image_free(&b);
            continue;
        }
        CHECK(a.width == w && a.height == h && a.channels == c);
        CHECK(b.width == w && b.height == h && b.channels == c);

        nne_quality q;
        CHECK_OK(nne_quality_u8(a.data, b.data, w, h, c, &q));
        CHECK_MSG(fabs(q.mse - mse) <= TOL_MSE_REL * mse, "%s: mse %.17g vs %.17g", ref, q.mse,
                  mse);
        CHECK_NEAR(q.psnr, psnr, TOL_PSNR);
        CHECK_NEAR(q.ssim, ssim, TOL_SSIM);
        max_d_mse_rel = fmax_(max_d_mse_rel, fabs(q.mse - mse) / mse);
        max_d_psnr = fmax_(max_d_psnr, fabs(q.psnr - psnr));
        max_d_ssim = fmax_(max_d_ssim, fabs(q.ssim - ssim));

        /* The single-metric entry points give the same values as nne_quality_u8. */
        double v;
        CHECK_OK(nne_mse_u8(a.data, b.data, w, h, c, &v));
        CHECK(v == q.mse);
        CHECK_OK(nne_ssim_u8(a.data, b.data, w, h, c, &v));
        CHECK_NEAR(v, q.ssim, 1e-15);

        if (isnan(ms_ssim)) {
            CHECK(isnan(q.ms_ssim));
            CHECK_STATUS(nne_ms_ssim_u8(a.data, b.data, w, h, c, &v), NNE_ERR_LIMIT);
        } else {
            CHECK_NEAR(q.ms_ssim, ms_ssim, TOL_MS_SSIM);
            max_d_ms_ssim = fmax_(max_d_ms_ssim, fabs(q.ms_ssim - ms_ssim));
            CHECK_OK(nne_ms_ssim_u8(a.data, b.data, w, h, c, &v));
            CHECK_NEAR(v, q.ms_ssim, 1e-15);
            /* Symmetry: SSIM and MS-SSIM are symmetric in their arguments. */
            nne_quality r;
            CHECK_OK(nne_quality_u8(b.data, a.data, w, h, c, &r));
            CHECK(r.mse == q.mse);
            CHECK_NEAR(r.ssim, q.ssim, 1e-12);
            CHECK_NEAR(r.ms_ssim, q.ms_ssim, 1e-12);
        }
        if (c == 1) {
            /* The float-plane entry point agrees with the u8 one on gray images. */
            size_t n = (size_t)w * (size_t)h;
            double *fa = malloc(n * sizeof(double)), *fb = malloc(n * sizeof(double));
            CHECK(fa && fb);
            if (fa && fb) {
                for (size_t i = 0; i < n; i++) {
                    fa[i] = a.data[i] / 255.0;
                    fb[i] = b.data[i] / 255.0;
                }
                CHECK_OK(nne_ssim_f64_plane(fa, fb, w, h, 1.0, &v));
                CHECK_NEAR(v, q.ssim, 1e-12);
            }
            free(fa);
            free(fb);
        }
        nne_image_free(&a);
        nne_image_free(&b);
        n_pairs++;
    }
    CHECK_MSG(n_pairs >= 6, "only %d golden pairs", n_pairs);
    nne_free(text);
    printf("  %d golden pairs; max |diff|: mse %.3g (relative), psnr %.3g dB, ssim %.3g, "
           "ms-ssim %.3g\n",
           n_pairs, max_d_mse_rel, max_d_psnr, max_d_ssim, max_d_ms_ssim);
}

static uint8_t *random_image(nne_test_rng *rng, size_t n) {
    uint8_t *p = malloc(n);
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)nne_test_rng_int(rng, 0, 255);
    return p;
}

static void test_identical(void) {
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 7);
    const int w = 170, h = 161, c = 3;
    uint8_t *a = random_image(&rng, (size_t)w * h * c);
    CHECK(a != NULL);
    if (!a) return;
    nne_quality q;
    CHECK_OK(nne_quality_u8(a, a, w, h, c, &q));
    CHECK(q.mse == 0.0);
    CHECK(isinf(q.psnr) && q.psnr > 0);
    CHECK_NEAR(q.ssim, 1.0, 1e-12);
    CHECK_NEAR(q.ms_ssim, 1.0, 1e-12);
    /* Constant images (zero variance everywhere): SSIM 1 thanks to C1, C2. */
    memset(a, 128, (size_t)w * h * c);
    CHECK_OK(nne_quality_u8(a, a, w, h, c, &q));
    CHECK_NEAR(q.ssim, 1.0, 1e-12);
    CHECK_NEAR(q.ms_ssim, 1.0, 1e-12);
    free(a);
}

static void test_psnr_from_mse(void) {
    CHECK_NEAR(nne_psnr_from_mse(1.0, 255.0), 20.0 * log10(255.0), 1e-12);
    CHECK_NEAR(nne_psnr_from_mse(65025.0, 255.0), 0.0, 1e-12);
    CHECK(isinf(nne_psnr_from_mse(0.0, 255.0)));
    CHECK(isnan(nne_psnr_from_mse(-1.0, 255.0)));
    CHECK(isnan(nne_psnr_from_mse(1.0, 0.0)));
}

static void test_known_values(void) {
    /* MSE exactly: a - b = 3 everywhere but one sample off by 13 of 2*16*16 samples. */
    const int w = 16, h = 16, c = 2;
    uint8_t a[16 * 16 * 2], b[16 * 16 * 2];
    for (int i = 0; i < w * h * c; i++) {
        a[i] = (uint8_t)(i % 200);
        b[i] = (uint8_t)(a[i] + 3);
    }
    b[5] = (uint8_t)(a[5] + 13);
    double mse;
    CHECK_OK(nne_mse_u8(a, b, w, h, c, &mse));
    CHECK_NEAR(mse, (511.0 * 9.0 + 169.0) / 512.0, 1e-15);
    /* A constant shift keeps the contrast-structure term at 1: SSIM is the luminance term.
     * With a, b constant (v, v + d): SSIM = (2 v (v + d) + C1) / (v^2 + (v + d)^2 + C1). */
    memset(a, 100, sizeof(a));
    memset(b, 110, sizeof(b));
    const double c1 = (0.01 * 255) * (0.01 * 255);
    double want = (2.0 * 100 * 110 + c1) / (100.0 * 100 + 110.0 * 110 + c1), ssim;
    CHECK_OK(nne_ssim_u8(a, b, w, h, c, &ssim));
    CHECK_NEAR(ssim, want, 1e-12);
}

static void test_errors(void) {
    uint8_t buf[200 * 200 * 3] = {0};
    double v;
    nne_quality q;
    /* Too small for SSIM: sides below the 11-tap window. */
    CHECK_STATUS(nne_ssim_u8(buf, buf, 10, 50, 3, &v), NNE_ERR_LIMIT);
    CHECK_STATUS(nne_ssim_u8(buf, buf, 50, 10, 3, &v), NNE_ERR_LIMIT);
    CHECK_OK(nne_ssim_u8(buf, buf, 11, 11, 3, &v));
    CHECK_STATUS(nne_quality_u8(buf, buf, 10, 10, 1, &q), NNE_ERR_LIMIT);
    /* MS-SSIM needs min side > 160. */
    CHECK_STATUS(nne_ms_ssim_u8(buf, buf, 160, 200, 3, &v), NNE_ERR_LIMIT);
    CHECK(strstr(nne_last_error(), "160x200") != NULL);
    CHECK_STATUS(nne_ms_ssim_u8(buf, buf, 200, 160, 3, &v), NNE_ERR_LIMIT);
    CHECK_OK(nne_ms_ssim_u8(buf, buf, 161, 161, 3, &v));
    CHECK_NEAR(v, 1.0, 1e-12);
    CHECK_OK(nne_quality_u8(buf, buf, 160, 200, 3, &q));
    CHECK(isnan(q.ms_ssim));
    /* Bad arguments. */
    CHECK_STATUS(nne_mse_u8(NULL, buf, 4, 4, 3, &v), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_mse_u8(buf, buf, 0, 4, 3, &v), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_mse_u8(buf, buf, 4, -1, 3, &v), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_mse_u8(buf, buf, 4, 4, 0, &v), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_mse_u8(buf, buf, 4, 4, 5, &v), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_mse_u8(buf, buf, 4, 4, 3, NULL), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_quality_u8(buf, buf, 20, 20, 3, NULL), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_mse_u8(buf, buf, INT32_MAX, INT32_MAX, 4, &v), NNE_ERR_NOMEM);
    double plane[16 * 16] = {0};
    CHECK_STATUS(nne_ssim_f64_plane(plane, plane, 16, 16, 0.0, &v), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_ssim_f64_plane(plane, plane, 16, 16, NAN, &v), NNE_ERR_INVALID_ARG);
    CHECK_OK(nne_ssim_f64_plane(plane, plane, 16, 16, 1.0, &v));
    CHECK_NEAR(v, 1.0, 1e-12);
}

static void test_symmetry_random(void) {
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 42);
    const int w = 163, h = 167, c = 1; /* odd: exercises the pooling padding */
    uint8_t *a = random_image(&rng, (size_t)w * h * c);
    uint8_t *b = random_image(&rng, (size_t)w * h * c);
    CHECK(a && b);
    if (a && b) {
        nne_quality q, r;
        CHECK_OK(nne_quality_u8(a, b, w, h, c, &q));
        CHECK_OK(nne_quality_u8(b, a, w, h, c, &r));
        CHECK(q.mse == r.mse);
        CHECK_NEAR(q.ssim, r.ssim, 1e-12);
        CHECK_NEAR(q.ms_ssim, r.ms_ssim, 1e-12);
        /* Independent noise: SSIM near 0, all values in range. */
        CHECK(q.ssim > -0.1 && q.ssim < 0.1);
        CHECK(q.ms_ssim >= 0.0 && q.ms_ssim <= 1.0);
    }
    free(a);
    free(b);
}

int main(void) {
    NNE_RUN(test_psnr_from_mse);
    NNE_RUN(test_known_values);
    NNE_RUN(test_identical);
    NNE_RUN(test_errors);
    NNE_RUN(test_symmetry_random);
    NNE_RUN(test_golden);
    return nne_test_summary();
}
