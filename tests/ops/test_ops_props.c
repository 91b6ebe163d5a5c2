/* Self-contained properties of the reference kernels, on random shapes (no golden data):
 * relations between kernels that must hold exactly (same f32 operations in the same
 * order) or to rounding (checked in double with a bound from the operand magnitudes). */
#include <string.h>

#include "nnedge/ops.h"
#include "testutil.h"

static float *rand_buf(nne_test_rng *r, size_t n, float lo, float hi) {
    float *p = nne_malloc(n ? n * sizeof *p : 1);
    for (size_t i = 0; p && i < n; i++) p[i] = lo + (hi - lo) * (float)nne_test_rng_uniform(r);
    return p;
}

static size_t conv_in_count(const nne_conv2d_geom *g) {
    return (size_t)g->n * g->ih * g->iw * g->ic;
}
static size_t conv_out_count(const nne_conv2d_geom *g) {
    return (size_t)g->n * g->oh * g->ow * g->oc;
}
static size_t conv_w_count(const nne_conv2d_geom *g) {
    return (size_t)g->oc * g->kh * g->kw * (g->ic / g->groups);
}

/* A random valid conv2d geometry: strides 1-3, dilation 1-2, asymmetric padding < the
 * dilated kernel extent, channels not multiples of anything in particular. */
static nne_conv2d_geom random_conv(nne_test_rng *r, int32_t groups) {
    nne_conv2d_geom g;
    memset(&g, 0, sizeof g);
    for (;;) {
        g.n = nne_test_rng_int(r, 1, 2);
        g.groups = groups;
        g.ic = groups * nne_test_rng_int(r, 1, 4);
        g.oc = groups * nne_test_rng_int(r, 1, 4);
        g.ih = nne_test_rng_int(r, 1, 11), g.iw = nne_test_rng_int(r, 1, 11);
        g.kh = nne_test_rng_int(r, 1, 5), g.kw = nne_test_rng_int(r, 1, 5);
        g.stride_h = nne_test_rng_int(r, 1, 3), g.stride_w = nne_test_rng_int(r, 1, 3);
        g.dil_h = nne_test_rng_int(r, 1, 2), g.dil_w = nne_test_rng_int(r, 1, 2);
        const int32_t eh = g.dil_h * (g.kh - 1), ew = g.dil_w * (g.kw - 1); /* extent - 1 */
        g.pad_t = nne_test_rng_int(r, 0, eh), g.pad_b = nne_test_rng_int(r, 0, eh);
        g.pad_l = nne_test_rng_int(r, 0, ew), g.pad_r = nne_test_rng_int(r, 0, ew);
        g.oh = nne_conv_out_dim(g.ih, g.kh, g.stride_h, g.dil_h, g.pad_t, g.pad_b);
        g.ow = nne_conv_out_dim(g.iw, g.kw, g.stride_w, g.dil_w, g.pad_l, g.pad_r);
        if (g.oh > 0 && g.ow > 0) return g;
    }
}

/* Depthwise conv (groups == ic, channel multiplier m) equals, channel by channel, a
 * single-channel convolution producing that channel's m outputs. Bit-exact. */
static void test_depthwise_equals_per_channel(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 11);
    for (int iter = 0; iter < 40; iter++) {
        const int32_t c = nne_test_rng_int(&r, 1, 7), m = nne_test_rng_int(&r, 1, 3);
        nne_conv2d_geom g = random_conv(&r, 1);
        g.ic = g.groups = c;
        g.oc = c * m;
        float *x = rand_buf(&r, conv_in_count(&g), -1, 1);
        float *w = rand_buf(&r, conv_w_count(&g), -1, 1); /* [c*m][kh][kw][1] */
        float *b = rand_buf(&r, (size_t)g.oc, -1, 1);
        float *y = rand_buf(&r, conv_out_count(&g), 0, 0);

        nne_conv2d_geom g1 = g;
        g1.ic = 1, g1.oc = m, g1.groups = 1;
        float *x1 = rand_buf(&r, conv_in_count(&g1), 0, 0);
        float *y1 = rand_buf(&r, conv_out_count(&g1), 0, 0);
        nne_conv2d_f32__ref(&g, x, w, b, y);
        size_t mismatches = 0;
        for (int32_t ch = 0; ch < c; ch++) {
            for (size_t p = 0; p < conv_in_count(&g1); p++) x1[p] = x[p * c + ch];
            /* Channel ch's filters are rows [ch*m, ch*m + m) of w, contiguous. */
            nne_conv2d_f32__ref(&g1, x1, w + (size_t)ch * m * g.kh * g.kw, b + ch * m, y1);
            for (size_t p = 0; p < conv_out_count(&g1) / m; p++)
                for (int32_t j = 0; j < m; j++)
                    mismatches += y1[p * m + j] != y[p * g.oc + ch * m + j];
        }
        CHECK_MSG(mismatches == 0, "iter %d: %zu mismatches", iter, mismatches);
        nne_free(x), nne_free(w), nne_free(b), nne_free(y), nne_free(x1), nne_free(y1);
    }
}

/* A grouped conv equals `groups` independent convolutions on channel slices. Bit-exact. */
static void test_grouped_equals_split(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 12);
    for (int iter = 0; iter < 40; iter++) {
        const int32_t groups = nne_test_rng_int(&r, 2, 4);
        const nne_conv2d_geom g = random_conv(&r, groups);
        const int32_t icg = g.ic / groups, ocg = g.oc / groups;
        float *x = rand_buf(&r, conv_in_count(&g), -1, 1);
        float *w = rand_buf(&r, conv_w_count(&g), -1, 1);
        float *y = rand_buf(&r, conv_out_count(&g), 0, 0);
        nne_conv2d_geom g1 = g;
        g1.ic = icg, g1.oc = ocg, g1.groups = 1;
        float *x1 = rand_buf(&r, conv_in_count(&g1), 0, 0);
        float *y1 = rand_buf(&r, conv_out_count(&g1), 0, 0);
        nne_conv2d_f32__ref(&g, x, w, NULL, y);
        size_t mismatches = 0;
        for (int32_t k = 0; k < groups; k++) {
            for (size_t p = 0; p < conv_in_count(&g1) / icg; p++)
                memcpy(x1 + p * icg, x + p * g.ic + k * icg, (size_t)icg * sizeof *x);
            nne_conv2d_f32__ref(&g1, x1, w + (size_t)k * ocg * g.kh * g.kw * icg, NULL, y1);
            for (size_t p = 0; p < conv_out_count(&g1) / ocg; p++)
                mismatches +=
                    memcmp(y1 + p * ocg, y + p * g.oc + k * ocg, (size_t)ocg * sizeof *y) != 0;
        }
        CHECK_MSG(mismatches == 0, "iter %d: %zu mismatches", iter, mismatches);
        nne_free(x), nne_free(w), nne_free(y), nne_free(x1), nne_free(y1);
    }
}

/* A 1x1 stride-1 unpadded convolution is a dense layer over the n*h*w pixels. Bit-exact:
 * both sum the input channels in order from 0 and add the bias last. */
static void test_conv1x1_equals_dense(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 13);
    for (int iter = 0; iter < 20; iter++) {
        nne_conv2d_geom g;
        memset(&g, 0, sizeof g);
        g.n = nne_test_rng_int(&r, 1, 3), g.ih = g.oh = nne_test_rng_int(&r, 1, 9);
        g.iw = g.ow = nne_test_rng_int(&r, 1, 9);
        g.ic = nne_test_rng_int(&r, 1, 37), g.oc = nne_test_rng_int(&r, 1, 37);
        g.kh = g.kw = g.stride_h = g.stride_w = g.dil_h = g.dil_w = g.groups = 1;
        const int32_t pixels = g.n * g.ih * g.iw;
        float *x = rand_buf(&r, conv_in_count(&g), -1, 1);
        float *w = rand_buf(&r, conv_w_count(&g), -1, 1);
        float *b = rand_buf(&r, (size_t)g.oc, -1, 1);
        float *y1 = rand_buf(&r, conv_out_count(&g), 0, 0);
        float *y2 = rand_buf(&r, conv_out_count(&g), 0, 0);
        nne_conv2d_f32__ref(&g, x, w, iter & 1 ? b : NULL, y1);
        nne_dense_f32__ref(pixels, g.ic, g.oc, x, w, iter & 1 ? b : NULL, y2);
        CHECK(memcmp(y1, y2, conv_out_count(&g) * sizeof *y1) == 0);
        nne_free(x), nne_free(w), nne_free(b), nne_free(y1), nne_free(y2);
    }
}

/* conv_transpose2d is the adjoint of conv2d: for the conv geometry G (x -> y) and the
 * transposed geometry G' (y -> x, same kernel/stride/dilation/padding, output padding
 * chosen so that G' maps back to x's size, weights regrouped OHWI -> OHWI with in/out
 * swapped):   <conv(x), y> == <x, conv_T(y)>.
 * Both sides are computed in double from f32 results; each f32 output carries a relative
 * error of about K*eps in its sum of |terms|, hence the bound. */
static void test_conv_transpose_is_adjoint(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 14);
    for (int iter = 0; iter < 200; iter++) {
        const int32_t groups = nne_test_rng_int(&r, 1, 3);
        const nne_conv2d_geom g = random_conv(&r, groups);
        const int32_t icg = g.ic / groups, ocg = g.oc / groups;
        nne_conv2d_geom t = g; /* y [n][oh][ow][oc] -> x [n][ih][iw][ic] */
        t.ih = g.oh, t.iw = g.ow, t.ic = g.oc;
        t.oh = g.ih, t.ow = g.iw, t.oc = g.ic;
        t.out_pad_h = g.ih + g.pad_t + g.pad_b - g.dil_h * (g.kh - 1) - 1 - (g.oh - 1) * g.stride_h;
        t.out_pad_w = g.iw + g.pad_l + g.pad_r - g.dil_w * (g.kw - 1) - 1 - (g.ow - 1) * g.stride_w;
        CHECK(t.out_pad_h >= 0 && t.out_pad_h < g.stride_h);
        CHECK(t.out_pad_w >= 0 && t.out_pad_w < g.stride_w);
        CHECK(nne_conv_transpose_out_dim(t.ih, t.kh, t.stride_h, t.dil_h, t.pad_t, t.pad_b,
                                         t.out_pad_h) == g.ih);

        float *x = rand_buf(&r, conv_in_count(&g), -1, 1);
        float *y = rand_buf(&r, conv_out_count(&g), -1, 1);
        float *w = rand_buf(&r, conv_w_count(&g), -1, 1); /* [oc][kh][kw][icg] */
        float *wt = rand_buf(&r, conv_w_count(&g), 0, 0); /* [ic][kh][kw][ocg] */
        float *cx = rand_buf(&r, conv_out_count(&g), 0, 0);
        float *ty = rand_buf(&r, conv_in_count(&g), 0, 0);
        /* wt[k*icg + c][ky][kx][j] = w[k*ocg + j][ky][kx][c] */
        for (int32_t k = 0; k < groups; k++)
            for (int32_t j = 0; j < ocg; j++)
                for (int32_t s = 0; s < g.kh * g.kw; s++)
                    for (int32_t c = 0; c < icg; c++)
                        wt[((size_t)(k * icg + c) * g.kh * g.kw + s) * ocg + j] =
                            w[((size_t)(k * ocg + j) * g.kh * g.kw + s) * icg + c];
        nne_conv2d_f32__ref(&g, x, w, NULL, cx);
        nne_conv_transpose2d_f32__ref(&t, y, wt, NULL, ty);
        double lhs = 0, rhs = 0, mag = 0;
        for (size_t i = 0; i < conv_out_count(&g); i++) {
            lhs += (double)cx[i] * y[i];
            mag += fabs((double)cx[i] * y[i]);
        }
        for (size_t i = 0; i < conv_in_count(&g); i++) rhs += (double)x[i] * ty[i];
        const double k_len = (double)icg * g.kh * g.kw + (double)ocg * g.kh * g.kw;
        CHECK_MSG(fabs(lhs - rhs) <= 1e-6 + k_len * 1.2e-7 * (mag + 1.0) * 4,
                  "iter %d: <conv x, y> = %.9g, <x, convT y> = %.9g", iter, lhs, rhs);
        nne_free(x), nne_free(y), nne_free(w), nne_free(wt), nne_free(cx), nne_free(ty);
    }
}

/* Global average pooling equals average pooling with the whole image as window, and
 * max/avg pooling with a 1x1 window is the identity. Bit-exact. */
static void test_pool_identities(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 15);
    for (int iter = 0; iter < 20; iter++) {
        const int32_t n = nne_test_rng_int(&r, 1, 2), h = nne_test_rng_int(&r, 1, 9),
                      w = nne_test_rng_int(&r, 1, 9), c = nne_test_rng_int(&r, 1, 19);
        const size_t count = (size_t)n * h * w * c;
        float *x = rand_buf(&r, count, -5, 5);
        float *y1 = rand_buf(&r, count, 0, 0), *y2 = rand_buf(&r, count, 0, 0);
        nne_pool2d_geom p = {.n = n,
                             .ih = h,
                             .iw = w,
                             .c = c,
                             .oh = 1,
                             .ow = 1,
                             .kh = h,
                             .kw = w,
                             .stride_h = 1,
                             .stride_w = 1,
                             .count_include_pad = 1};
        nne_global_avgpool_f32__ref(n, h, w, c, x, y1);
        nne_pool2d_f32__ref(&p, NNE_POOL_AVG, x, y2);
        CHECK(memcmp(y1, y2, (size_t)n * c * sizeof *y1) == 0);

        p.oh = h, p.ow = w, p.kh = p.kw = 1;
        nne_pool2d_f32__ref(&p, NNE_POOL_MAX, x, y1);
        nne_pool2d_f32__ref(&p, NNE_POOL_AVG, x, y2);
        CHECK(memcmp(y1, x, count * sizeof *x) == 0);
        CHECK(memcmp(y2, x, count * sizeof *x) == 0);
        nne_free(x), nne_free(y1), nne_free(y2);
    }
}

/* Average pooling with count_include_pad is a depthwise convolution with weights
 * 1/(kh*kw); excluding padding differs from it only at the borders. */
static void test_avgpool_equals_depthwise_conv(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 16);
    for (int iter = 0; iter < 30; iter++) {
        nne_pool2d_geom p;
        memset(&p, 0, sizeof p);
        p.n = nne_test_rng_int(&r, 1, 2), p.ih = nne_test_rng_int(&r, 2, 10);
        p.iw = nne_test_rng_int(&r, 2, 10), p.c = nne_test_rng_int(&r, 1, 9);
        p.kh = nne_test_rng_int(&r, 1, p.ih), p.kw = nne_test_rng_int(&r, 1, p.iw);
        p.stride_h = nne_test_rng_int(&r, 1, 3), p.stride_w = nne_test_rng_int(&r, 1, 3);
        p.pad_t = nne_test_rng_int(&r, 0, p.kh - 1), p.pad_b = nne_test_rng_int(&r, 0, p.kh - 1);
        p.pad_l = nne_test_rng_int(&r, 0, p.kw - 1), p.pad_r = nne_test_rng_int(&r, 0, p.kw - 1);
        p.oh = nne_conv_out_dim(p.ih, p.kh, p.stride_h, 1, p.pad_t, p.pad_b);
        p.ow = nne_conv_out_dim(p.iw, p.kw, p.stride_w, 1, p.pad_l, p.pad_r);
        p.count_include_pad = 1;
        nne_conv2d_geom g = {.n = p.n,
                             .ih = p.ih,
                             .iw = p.iw,
                             .ic = p.c,
                             .oh = p.oh,
                             .ow = p.ow,
                             .oc = p.c,
                             .kh = p.kh,
                             .kw = p.kw,
                             .stride_h = p.stride_h,
                             .stride_w = p.stride_w,
                             .dil_h = 1,
                             .dil_w = 1,
                             .pad_t = p.pad_t,
                             .pad_l = p.pad_l,
                             .pad_b = p.pad_b,
                             .pad_r = p.pad_r,
                             .groups = p.c};
        const size_t out = (size_t)p.n * p.oh * p.ow * p.c;
        float *x = rand_buf(&r, conv_in_count(&g), -1, 1);
        float *w = rand_buf(&r, conv_w_count(&g), 0, 0);
        for (size_t i = 0; i < conv_w_count(&g); i++) w[i] = 1.0f / (float)(p.kh * p.kw);
        float *y1 = rand_buf(&r, out, 0, 0), *y2 = rand_buf(&r, out, 0, 0);
        nne_pool2d_f32__ref(&p, NNE_POOL_AVG, x, y1);
        nne_conv2d_f32__ref(&g, x, w, NULL, y2);
        double worst = 0;
        for (size_t i = 0; i < out; i++) worst = fmax(worst, fabs((double)y1[i] - y2[i]));
        CHECK_MSG(worst <= 1e-6, "iter %d: max diff %g", iter, worst);
        nne_free(x), nne_free(w), nne_free(y1), nne_free(y2);
    }
}

/* Softmax: rows sum to 1, exactly invariant to an exact shift (the kernel only sees
 * x - max), finite for huge inputs. */
static void test_softmax_properties(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 17);
    enum { ROWS = 7, COLS = 33 };
    float x[ROWS * COLS], y[ROWS * COLS], y2[ROWS * COLS];
    /* Multiples of 1/256 in [-100, 100]: x + 64 is exact, so is every x - max. */
    for (int i = 0; i < ROWS * COLS; i++)
        x[i] = (float)floor(nne_test_rng_uniform(&r) * 51200 - 25600) / 256.0f;
    x[5] = 1e30f, x[COLS + 3] = -1e30f; /* extremes must not overflow */
    nne_softmax_f32__ref(ROWS, COLS, x, y);
    for (int i = 0; i < ROWS * COLS; i++) x[i] += (i / COLS == 0 || i / COLS == 1) ? 0 : 64.0f;
    nne_softmax_f32__ref(ROWS, COLS, x, y2);
    for (int row = 0; row < ROWS; row++) {
        double s = 0;
        for (int j = 0; j < COLS; j++) {
            CHECK(isfinite(y[row * COLS + j]) && y[row * COLS + j] >= 0);
            CHECK(y[row * COLS + j] == y2[row * COLS + j]);
            s += y[row * COLS + j];
        }
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    CHECK(y[5] == 1.0f);
}

/* Bilinear x1 is the identity; nearest copies whole blocks; a constant image stays
 * constant (the weights l0 + l1 sum to 1 up to rounding). */
static void test_upsample_properties(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 18);
    for (int iter = 0; iter < 20; iter++) {
        const int32_t n = nne_test_rng_int(&r, 1, 2), h = nne_test_rng_int(&r, 1, 7),
                      w = nne_test_rng_int(&r, 1, 7), c = nne_test_rng_int(&r, 1, 5),
                      sh = nne_test_rng_int(&r, 1, 4), sw = nne_test_rng_int(&r, 1, 4);
        const size_t in = (size_t)n * h * w * c, out = in * sh * sw;
        float *x = rand_buf(&r, in, -1, 1), *y = rand_buf(&r, out, 0, 0);
        nne_upsample_f32__ref(n, h, w, c, 1, 1, NNE_UPSAMPLE_BILINEAR, x, y);
        CHECK(memcmp(x, y, in * sizeof *x) == 0);
        nne_upsample_f32__ref(n, h, w, c, sh, sw, NNE_UPSAMPLE_NEAREST, x, y);
        size_t bad = 0;
        for (size_t i = 0; i < out; i++) {
            const size_t ch = i % c, ox = i / c % ((size_t)w * sw),
                         oy = i / c / ((size_t)w * sw) % ((size_t)h * sh),
                         b = i / c / ((size_t)w * sw) / ((size_t)h * sh);
            bad += y[i] != x[((b * h + oy / sh) * w + ox / sw) * c + ch];
        }
        CHECK(bad == 0);
        for (size_t i = 0; i < in; i++) x[i] = 0.375f * (float)(i % c + 1);
        nne_upsample_f32__ref(n, h, w, c, sh, sw, NNE_UPSAMPLE_BILINEAR, x, y);
        for (size_t i = 0; i < out; i++) CHECK_NEAR(y[i], 0.375f * (float)(i % c + 1), 1e-6);
        nne_free(x), nne_free(y);
    }
}

/* GDN with gamma = 0 and beta = 1 is the identity (sqrt(1) == 1 exactly), and with a
 * diagonal gamma it is the element-wise x / sqrt(beta + g x^2). */
static void test_gdn_properties(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 19);
    enum { P = 13, C = 6 };
    float x[P * C], y[P * C], beta[C], gamma[C * C];
    for (int i = 0; i < P * C; i++) x[i] = (float)(nne_test_rng_uniform(&r) * 4 - 2);
    memset(gamma, 0, sizeof gamma);
    for (int i = 0; i < C; i++) beta[i] = 1.0f;
    for (int inv = 0; inv < 2; inv++) {
        nne_gdn_f32__ref(P, C, x, beta, gamma, inv, y);
        CHECK(memcmp(x, y, sizeof x) == 0);
    }
    for (int i = 0; i < C; i++) {
        beta[i] = 0.5f + 0.1f * (float)i;
        gamma[i * C + i] = 0.25f * (float)(i + 1);
    }
    nne_gdn_f32__ref(P, C, x, beta, gamma, false, y);
    for (int p = 0; p < P; p++)
        for (int i = 0; i < C; i++) {
            const double v = x[p * C + i];
            CHECK_NEAR(y[p * C + i], v / sqrt(beta[i] + gamma[i * C + i] * v * v), 1e-6);
        }
}

/* Activations: PyTorch's NaN propagation and exact values at the kinks. */
static void test_activation_edges(void) {
    const float x[] = {NAN, -INFINITY, -3.0f, -0.0f, 0.0f, 3.0f, 6.0f, 7.0f, INFINITY};
    enum { N = sizeof x / sizeof x[0] };
    float y[N];
    nne_relu_f32__ref(N, x, y);
    CHECK(isnan(y[0]) && y[1] == 0 && y[2] == 0 && y[5] == 3 && y[8] == INFINITY);
    nne_relu6_f32__ref(N, x, y);
    CHECK(isnan(y[0]) && y[1] == 0 && y[6] == 6 && y[7] == 6 && y[8] == 6);
    nne_leaky_relu_f32__ref(N, 0.5f, x, y);
    CHECK(isnan(y[0]) && y[1] == -INFINITY && y[2] == -1.5f && y[5] == 3);
    nne_hardswish_f32__ref(N, x, y);
    CHECK(isnan(y[0]) && y[2] == 0 && y[5] == 3 && y[7] == 7);
    nne_sigmoid_f32__ref(N, x, y);
    CHECK(isnan(y[0]) && y[1] == 0 && y[4] == 0.5f && y[8] == 1);
    nne_tanh_f32__ref(N, x, y);
    CHECK(isnan(y[0]) && y[1] == -1 && y[4] == 0 && y[8] == 1);
    const float slope[2] = {0.25f, -1.0f};
    const float px[4] = {-4.0f, -4.0f, NAN, 2.0f};
    float py[4];
    nne_prelu_f32__ref(2, 2, px, slope, 2, py);
    CHECK(py[0] == -1 && py[1] == 4 && isnan(py[2]) && py[3] == 2);
    nne_prelu_f32__ref(2, 2, px, slope, 1, py);
    CHECK(py[0] == -1 && py[1] == -1);

    /* Max pooling propagates a NaN tap like torch.max_pool2d. */
    const float px2[4] = {1, NAN, 3, 2};
    float m;
    nne_pool2d_geom p = {.n = 1,
                         .ih = 2,
                         .iw = 2,
                         .c = 1,
                         .oh = 1,
                         .ow = 1,
                         .kh = 2,
                         .kw = 2,
                         .stride_h = 1,
                         .stride_w = 1};
    nne_pool2d_f32__ref(&p, NNE_POOL_MAX, px2, &m);
    CHECK(isnan(m));
}

/* Output-size helpers: PyTorch's formulas, 0 for invalid geometry, no overflow. */
static void test_out_dim_helpers(void) {
    CHECK(nne_conv_out_dim(7, 3, 2, 1, 1, 1) == 4);
    CHECK(nne_conv_out_dim(7, 3, 2, 2, 0, 0) == 2);
    CHECK(nne_conv_out_dim(1, 3, 1, 1, 0, 0) == 0); /* kernel larger than input */
    CHECK(nne_conv_out_dim(2, 3, 3, 1, 0, 0) == 0); /* not 1: no truncation toward 0 */
    CHECK(nne_conv_out_dim(5, 1, 0, 1, 0, 0) == 0);
    CHECK(nne_conv_out_dim(INT32_MAX, 1, 1, 1, INT32_MAX, INT32_MAX) == 0);
    CHECK(nne_conv_out_dim(INT32_MAX, 1, 1, 1, 0, 0) == INT32_MAX);
    CHECK(nne_conv_transpose_out_dim(4, 3, 2, 1, 1, 1, 1) == 8);
    CHECK(nne_conv_transpose_out_dim(5, 5, 2, 1, 2, 2, 1) == 10);
    CHECK(nne_conv_transpose_out_dim(1, 1, 1, 1, 1, 0, 0) == 0);
    CHECK(nne_conv_transpose_out_dim(INT32_MAX, 3, INT32_MAX, 1, 0, 0, 0) == 0);
}

/* Element-wise in-place operation (y == x) matches out of place. */
static void test_in_place(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 20);
    enum { N = 101 };
    float x[N], a[N], b[N];
    for (int i = 0; i < N; i++) x[i] = (float)(nne_test_rng_uniform(&r) * 10 - 5);
    memcpy(a, x, sizeof x);
    nne_add_f32__ref(N, x, x, b);
    nne_add_f32__ref(N, a, a, a);
    CHECK(memcmp(a, b, sizeof a) == 0);
    const float mean[1] = {0.5f}, var[1] = {2.0f}, gam[1] = {-1.5f}, bet[1] = {0.25f};
    memcpy(a, x, sizeof x);
    nne_batchnorm_f32__ref(N, 1, x, mean, var, gam, bet, 1e-5f, b);
    nne_batchnorm_f32__ref(N, 1, a, mean, var, gam, bet, 1e-5f, a);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

/* Concat along the channel axis of NHWC and along an outer axis, by hand. */
static void test_concat_layout(void) {
    const float a[] = {1, 2, 3, 4};        /* 2 pixels x 2 channels */
    const float b[] = {5, 6, 7, 8, 9, 10}; /* 2 pixels x 3 channels */
    const float *xs[] = {a, NULL, b};
    const size_t inner[] = {2, 0, 3};
    float y[10];
    nne_concat_f32__ref(2, 3, xs, inner, y);
    const float want[] = {1, 2, 5, 6, 7, 3, 4, 8, 9, 10};
    CHECK(memcmp(y, want, sizeof want) == 0);
    const size_t inner1[] = {4, 0, 6};
    nne_concat_f32__ref(1, 3, xs, inner1, y);
    const float want1[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(memcmp(y, want1, sizeof want1) == 0);
}

int main(void) {
    NNE_RUN(test_depthwise_equals_per_channel);
    NNE_RUN(test_grouped_equals_split);
    NNE_RUN(test_conv1x1_equals_dense);
    NNE_RUN(test_conv_transpose_is_adjoint);
    NNE_RUN(test_pool_identities);
    NNE_RUN(test_avgpool_equals_depthwise_conv);
    NNE_RUN(test_softmax_properties);
    NNE_RUN(test_upsample_properties);
    NNE_RUN(test_gdn_properties);
    NNE_RUN(test_activation_edges);
    NNE_RUN(test_out_dim_helpers);
    NNE_RUN(test_in_place);
    NNE_RUN(test_concat_layout);
    return nne_test_summary();
}
