/* Forward/backward pairs of the trainable layers (f32, plain C).
 *
 * Forward passes are the reference kernels of src/ops; backward passes are written here
 * from the same definitions (docs/ops.md):
 *
 *   conv2d:  y[b][oy][ox][o] = sum_{ky,kx,c} w[o][ky][kx][c] x[b][iy][ix][c0+c] + bias[o]
 *            iy = oy*stride_h - pad_t + ky*dil_h,  c0 = (o / ocg) * icg
 *            => dx[b][iy][ix][c0+c] += dy[b][oy][ox][o] w[o][ky][kx][c]
 *               dw[o][ky][kx][c]    += dy[b][oy][ox][o] x[b][iy][ix][c0+c]
 *               db[o]               += dy[b][oy][ox][o]
 *   conv_transpose2d: the same pairs (x pixel, y pixel, tap) with the roles of the two
 *            images swapped: input iy feeds output oy = iy*stride_h - pad_t + ky*dil_h.
 *
 * Rules (include/nnedge/train.h): dx is overwritten, parameter gradients accumulate.
 * Loop orders: dx loops over batch images (disjoint outputs: a thread pool splits b);
 * dw loops over output channels first (disjoint dw[o] rows: a thread pool splits o), and
 * sums each (image, output row) into `scratch` before adding it to dw, so that a sum over
 * n*oh*ow pixels is a sum of n*oh row partials of ow terms each (f32 error ~ (ow + n*oh)
 * eps instead of n*oh*ow eps). The inner loops are contiguous channel axpys that the
 * compiler vectorizes. An im2col + GEMM formulation (nne_gemm_f32) would replace the dw
 * and dx loops one for one: dW = dY^T * cols(X), dcols = dY * W then col2im. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "nnedge/ops.h"
#include "nnedge/train.h"

/* ---- conv2d ---------------------------------------------------------------------------- */

void nne_conv2d_forward(const nne_conv2d_geom *g, const float *x, const float *w, const float *b,
                        float *y) {
    nne_conv2d_f32__ref(g, x, w, b, y);
}

size_t nne_conv2d_backward_scratch_size(const nne_conv2d_geom *g) {
    return (size_t)g->kh * (size_t)g->kw * (size_t)(g->ic / g->groups);
}

/* dx[b] for images [b0, b1): scatter every output gradient through the taps. */
static void conv2d_backward_data(const nne_conv2d_geom *g, const float *w, const float *dy,
                                 float *dx, int32_t b0, int32_t b1) {
    const int32_t icg = g->ic / g->groups, ocg = g->oc / g->groups;
    const size_t in_img = (size_t)g->ih * g->iw * g->ic; /* floats per input image */
    for (int32_t b = b0; b < b1; b++) {
        float *dxb = dx + (size_t)b * in_img; /* [ih][iw][ic] */
        memset(dxb, 0, in_img * sizeof(float));
        for (int32_t oy = 0; oy < g->oh; oy++) {
            for (int32_t ox = 0; ox < g->ow; ox++) {
                const float *dyp = dy + (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc; /* [oc] */
                for (int32_t o = 0; o < g->oc; o++) {
                    const float d = dyp[o];
                    const int32_t c0 = (o / ocg) * icg;
                    for (int32_t ky = 0; ky < g->kh; ky++) {
                        const int32_t iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                        if (iy < 0 || iy >= g->ih) continue;
                        for (int32_t kx = 0; kx < g->kw; kx++) {
                            const int32_t ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                            if (ix < 0 || ix >= g->iw) continue;
                            float *dxp = dxb + ((size_t)iy * g->iw + ix) * g->ic + c0; /* [icg] */
                            const float *wp = w + (((size_t)o * g->kh + ky) * g->kw + kx) * icg;
                            for (int32_t c = 0; c < icg; c++) dxp[c] += d * wp[c];
                        }
                    }
                }
            }
        }
    }
}

/* dw[o], db[o] for output channels [o0, o1). acc: [kh][kw][icg] row partial sums. */
static void conv2d_backward_weights(const nne_conv2d_geom *g, const float *x, const float *dy,
                                    float *dw, float *db, float *acc, int32_t o0, int32_t o1) {
    const int32_t icg = g->ic / g->groups, ocg = g->oc / g->groups;
    const size_t taps = (size_t)g->kh * g->kw * icg; /* floats of one dw[o] */
    for (int32_t o = o0; o < o1; o++) {
        const int32_t c0 = (o / ocg) * icg;
        float *dwo = dw + (size_t)o * taps; /* [kh][kw][icg] */
        double bsum = 0.0;
        for (int32_t b = 0; b < g->n; b++) {
            const float *xb = x + (size_t)b * g->ih * g->iw * g->ic; /* [ih][iw][ic] */
            for (int32_t oy = 0; oy < g->oh; oy++) {
                memset(acc, 0, taps * sizeof(float));
                float brow = 0.0f;
                for (int32_t ox = 0; ox < g->ow; ox++) {
                    const float d = dy[(((size_t)b * g->oh + oy) * g->ow + ox) * g->oc + o];
                    brow += d;
                    for (int32_t ky = 0; ky < g->kh; ky++) {
                        const int32_t iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                        if (iy < 0 || iy >= g->ih) continue;
                        for (int32_t kx = 0; kx < g->kw; kx++) {
                            const int32_t ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                            if (ix < 0 || ix >= g->iw) continue;
                            const float *xp = xb + ((size_t)iy * g->iw + ix) * g->ic + c0;
                            float *ap = acc + ((size_t)ky * g->kw + kx) * icg;
                            for (int32_t c = 0; c < icg; c++) ap[c] += d * xp[c];
                        }
                    }
                }
                for (size_t k = 0; k < taps; k++) dwo[k] += acc[k];
                bsum += brow;
            }
        }
        if (db) db[o] += (float)bsum;
    }
}

void nne_conv2d_backward(const nne_conv2d_geom *g, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db, float *scratch) {
    assert(g && x && w && dy && dw && scratch);
    assert(g->groups > 0 && g->ic % g->groups == 0 && g->oc % g->groups == 0);
    if (dx) conv2d_backward_data(g, w, dy, dx, 0, g->n);
    conv2d_backward_weights(g, x, dy, dw, db, scratch, 0, g->oc);
}

/* ---- conv_transpose2d ------------------------------------------------------------------ */

void nne_conv_transpose2d_forward(const nne_conv2d_geom *g, const float *x, const float *w,
                                  const float *b, float *y) {
    nne_conv_transpose2d_f32__ref(g, x, w, b, y);
}

size_t nne_conv_transpose2d_backward_scratch_size(const nne_conv2d_geom *g) {
    return (size_t)g->kh * (size_t)g->kw * (size_t)(g->ic / g->groups);
}

/* dx[b] for images [b0, b1): gather form, every input pixel reads the output gradients it
 * fed. dx[b][iy][ix][c0+c] = sum_{o in group, ky, kx} w[o][ky][kx][c] dy[b][oy][ox][o]. */
static void tconv_backward_data(const nne_conv2d_geom *g, const float *w, const float *dy,
                                float *dx, int32_t b0, int32_t b1) {
    const int32_t icg = g->ic / g->groups, ocg = g->oc / g->groups;
    for (int32_t b = b0; b < b1; b++) {
        for (int32_t iy = 0; iy < g->ih; iy++) {
            for (int32_t ix = 0; ix < g->iw; ix++) {
                float *dxp = dx + (((size_t)b * g->ih + iy) * g->iw + ix) * g->ic; /* [ic] */
                memset(dxp, 0, (size_t)g->ic * sizeof(float));
                for (int32_t ky = 0; ky < g->kh; ky++) {
                    const int32_t oy = iy * g->stride_h - g->pad_t + ky * g->dil_h;
                    if (oy < 0 || oy >= g->oh) continue; /* cropped */
                    for (int32_t kx = 0; kx < g->kw; kx++) {
                        const int32_t ox = ix * g->stride_w - g->pad_l + kx * g->dil_w;
                        if (ox < 0 || ox >= g->ow) continue;
                        const float *dyp =
                            dy + (((size_t)b * g->oh + oy) * g->ow + ox) * g->oc; /* [oc] */
                        for (int32_t o = 0; o < g->oc; o++) {
                            const float d = dyp[o];
                            float *dxg = dxp + (o / ocg) * icg; /* [icg] */
                            const float *wp = w + (((size_t)o * g->kh + ky) * g->kw + kx) * icg;
                            for (int32_t c = 0; c < icg; c++) dxg[c] += d * wp[c];
                        }
                    }
                }
            }
        }
    }
}

/* dw[o], db[o] for output channels [o0, o1); acc [kh][kw][icg] per input row. */
static void tconv_backward_weights(const nne_conv2d_geom *g, const float *x, const float *dy,
                                   float *dw, float *db, float *acc, int32_t o0, int32_t o1) {
    const int32_t icg = g->ic / g->groups, ocg = g->oc / g->groups;
    const size_t taps = (size_t)g->kh * g->kw * icg;
    for (int32_t o = o0; o < o1; o++) {
        const int32_t c0 = (o / ocg) * icg;
        float *dwo = dw + (size_t)o * taps; /* [kh][kw][icg] */
        for (int32_t b = 0; b < g->n; b++) {
            for (int32_t iy = 0; iy < g->ih; iy++) {
                memset(acc, 0, taps * sizeof(float));
                for (int32_t ix = 0; ix < g->iw; ix++) {
                    const float *xp = x + (((size_t)b * g->ih + iy) * g->iw + ix) * g->ic + c0;
                    for (int32_t ky = 0; ky < g->kh; ky++) {
                        const int32_t oy = iy * g->stride_h - g->pad_t + ky * g->dil_h;
                        if (oy < 0 || oy >= g->oh) continue;
                        for (int32_t kx = 0; kx < g->kw; kx++) {
                            const int32_t ox = ix * g->stride_w - g->pad_l + kx * g->dil_w;
                            if (ox < 0 || ox >= g->ow) continue;
                            const float d = dy[(((size_t)b * g->oh + oy) * g->ow + ox) * g->oc + o];
                            float *ap = acc + ((size_t)ky * g->kw + kx) * icg;
                            for (int32_t c = 0; c < icg; c++) ap[c] += d * xp[c];
                        }
                    }
                }
                for (size_t k = 0; k < taps; k++) dwo[k] += acc[k];
            }
        }
        if (db) {
            /* Every output pixel gets the bias, including the output-padding rows. */
            double bsum = 0.0;
            for (int32_t b = 0; b < g->n; b++)
                for (int32_t oy = 0; oy < g->oh; oy++) {
                    float brow = 0.0f;
                    for (int32_t ox = 0; ox < g->ow; ox++)
                        brow += dy[(((size_t)b * g->oh + oy) * g->ow + ox) * g->oc + o];
                    bsum += brow;
                }
            db[o] += (float)bsum;
        }
    }
}

void nne_conv_transpose2d_backward(const nne_conv2d_geom *g, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db,
                                   float *scratch) {
    assert(g && x && w && dy && dw && scratch);
    assert(g->groups > 0 && g->ic % g->groups == 0 && g->oc % g->groups == 0);
    if (dx) tconv_backward_data(g, w, dy, dx, 0, g->n);
    tconv_backward_weights(g, x, dy, dw, db, scratch, 0, g->oc);
}

/* ---- relu, prelu ----------------------------------------------------------------------- */

void nne_relu_forward(size_t count, const float *x, float *y) { nne_relu_f32__ref(count, x, y); }

void nne_relu_backward(size_t count, const float *x, const float *dy, float *dx) {
    assert(x && dy && dx);
    /* PyTorch's threshold_backward: the gradient passes where the output is positive. */
    for (size_t i = 0; i < count; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

/* PReLU runs over a block of at most PRELU_BLOCK channels at a time with the slopes
 * expanded into a per-channel array, so that the inner loops are contiguous and branch-free:
 * products are computed unconditionally and selected (the compiler does not speculate a
 * multiplication that the source guards, as it could raise an FP exception). */
enum { PRELU_BLOCK = 64 };

/* GCC keeps the select loops scalar unless it may ignore FP exception flags (the library
 * never reads them): -fno-trapping-math for these functions only. Clang vectorizes as is. */
#if defined(__GNUC__) && !defined(__clang__)
#define NNE_SELECT_LOOPS __attribute__((optimize("no-trapping-math")))
#else
#define NNE_SELECT_LOOPS
#endif

NNE_SELECT_LOOPS void nne_prelu_forward(size_t pixels, int32_t c, const float *x,
                                        const float *slope, int32_t n_slope, float *y) {
    /* Bitwise the same as nne_prelu_f32__ref (x >= 0 ? x : slope * x): one product. */
    assert(x && slope && y && c > 0 && (n_slope == 1 || n_slope == c));
    float a[PRELU_BLOCK];
    for (int32_t c0 = 0; c0 < c; c0 += PRELU_BLOCK) {
        const int32_t nc = c - c0 < PRELU_BLOCK ? c - c0 : PRELU_BLOCK;
        for (int32_t k = 0; k < nc; k++) a[k] = slope[n_slope == 1 ? 0 : c0 + k];
        for (size_t p = 0; p < pixels; p++) {
            const float *xp = x + p * (size_t)c + c0;
            float *yp = y + p * (size_t)c + c0;
            for (int32_t k = 0; k < nc; k++) {
                const float ax = a[k] * xp[k]; /* unconditional: lets the loop vectorize */
                yp[k] = xp[k] < 0.0f ? ax : xp[k];
            }
        }
    }
}

NNE_SELECT_LOOPS void nne_prelu_backward(size_t pixels, int32_t c, const float *x,
                                         const float *slope, int32_t n_slope, const float *dy,
                                         float *dx, float *dslope) {
    assert(x && slope && dy && dslope && c > 0 && (n_slope == 1 || n_slope == c));
    /* Slope sums: per channel, f32 partial sums over runs of PRELU_RUN pixels added into
     * double totals (f32 error ~PRELU_RUN eps per run, the total exact to double rounding). */
    enum { PRELU_RUN = 64 };
    float a[PRELU_BLOCK], acc[PRELU_BLOCK];
    double ds[PRELU_BLOCK];
    double shared = 0.0;
    for (int32_t c0 = 0; c0 < c; c0 += PRELU_BLOCK) {
        const int32_t nc = c - c0 < PRELU_BLOCK ? c - c0 : PRELU_BLOCK;
        for (int32_t k = 0; k < nc; k++) {
            a[k] = slope[n_slope == 1 ? 0 : c0 + k];
            ds[k] = 0.0;
        }
        for (size_t p0 = 0; p0 < pixels; p0 += PRELU_RUN) {
            const size_t p1 = pixels - p0 < PRELU_RUN ? pixels : p0 + PRELU_RUN;
            for (int32_t k = 0; k < nc; k++) acc[k] = 0.0f;
            for (size_t p = p0; p < p1; p++) {
                const size_t i0 = p * (size_t)c + (size_t)c0;
                const float *xp = x + i0, *dp = dy + i0;
                for (int32_t k = 0; k < nc; k++) {
                    const float xd = xp[k] * dp[k];
                    acc[k] += xp[k] < 0.0f ? xd : 0.0f;
                }
                if (!dx) continue;
                float *dxp = dx + i0; /* may alias dy: read before write, element-wise */
                for (int32_t k = 0; k < nc; k++) {
                    const float ad = a[k] * dp[k];
                    dxp[k] = xp[k] < 0.0f ? ad : dp[k];
                }
            }
            for (int32_t k = 0; k < nc; k++) ds[k] += acc[k];
        }
        for (int32_t k = 0; k < nc; k++) {
            if (n_slope == 1)
                shared += ds[k];
            else
                dslope[c0 + k] += (float)ds[k];
        }
    }
    if (n_slope == 1) dslope[0] += (float)shared;
}

/* ---- GDN / IGDN ------------------------------------------------------------------------ */
/* Per pixel, with norm[i] = beta[i] + sum_j gamma[i][j] x[j]^2 and s[i] = sqrt(norm[i]):
 *   GDN:  y[i] = x[i] / s[i],  dL/dnorm[i] = -dy[i] x[i] / (2 s[i]^3),  direct dx[i] = dy[i] / s[i]
 *   IGDN: y[i] = x[i] * s[i],  dL/dnorm[i] =  dy[i] x[i] / (2 s[i]),    direct dx[i] = dy[i] s[i]
 *   dbeta[i] += dnorm[i];  dgamma[i][j] += dnorm[i] x[j]^2
 *   dx[k] = direct dx[k] + 2 x[k] sum_i dnorm[i] gamma[i][k]
 * scratch: s [c], dnorm [c]. */

void nne_gdn_forward(size_t pixels, int32_t c, const float *x, const float *beta,
                     const float *gamma, bool inverse, float *y) {
    nne_gdn_f32__ref(pixels, c, x, beta, gamma, inverse, y);
}

size_t nne_gdn_backward_scratch_size(int32_t c) { return 2 * (size_t)c; }

void nne_gdn_backward(size_t pixels, int32_t c, const float *x, const float *beta,
                      const float *gamma, bool inverse, const float *dy, float *dx, float *dbeta,
                      float *dgamma, float *scratch) {
    assert(x && beta && gamma && dy && dbeta && dgamma && scratch && c > 0);
    float *s = scratch, *dnorm = scratch + c; /* [c], [c] */
    for (size_t p = 0; p < pixels; p++) {
        const float *xp = x + p * (size_t)c, *dyp = dy + p * (size_t)c; /* [c] */
        for (int32_t i = 0; i < c; i++) {
            const float *gi = gamma + (size_t)i * c;
            float acc = 0.0f; /* the forward's order: j increasing, beta last */
            for (int32_t j = 0; j < c; j++) acc += gi[j] * (xp[j] * xp[j]);
            s[i] = sqrtf(acc + beta[i]);
            dnorm[i] = inverse ? 0.5f * dyp[i] * xp[i] / s[i]
                               : -0.5f * dyp[i] * xp[i] / (s[i] * s[i] * s[i]);
            dbeta[i] += dnorm[i];
            float *dgi = dgamma + (size_t)i * c;
            for (int32_t j = 0; j < c; j++) dgi[j] += dnorm[i] * (xp[j] * xp[j]);
        }
        if (!dx) continue;
        float *dxp = dx + p * (size_t)c;
        for (int32_t k = 0; k < c; k++) dxp[k] = inverse ? dyp[k] * s[k] : dyp[k] / s[k];
        for (int32_t i = 0; i < c; i++) {
            const float *gi = gamma + (size_t)i * c;
            const float t = 2.0f * dnorm[i];
            for (int32_t k = 0; k < c; k++) dxp[k] += t * gi[k] * xp[k];
        }
    }
}

/* ---- add ------------------------------------------------------------------------------- */

void nne_add_forward(size_t count, const float *a, const float *b, float *y) {
    nne_add_f32__ref(count, a, b, y);
}

void nne_add_backward(size_t count, const float *dy, float *da, float *db) {
    assert(dy);
    if (da && da != dy) memcpy(da, dy, count * sizeof(float));
    if (db && db != dy) memcpy(db, dy, count * sizeof(float));
}
