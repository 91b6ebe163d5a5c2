/* Losses with gradients: MSE and 1 - MS-SSIM.
 *
 * MS-SSIM follows src/metrics/metrics.c operation for operation (same separable valid
 * filter, same moment and map formulas, per-row partial sums), so its value equals
 * nne_ms_ssim_u8 on the same data to rounding (tests/train/test_grad.c). The backward pass
 * differentiates exactly that computation:
 *
 *   At one scale, with valid Gaussian filtering G (a linear map from [h][w] to [oh][ow]):
 *     mx = G x, my = G y, sxx = G x^2, syy = G y^2, sxy = G xy
 *     vx = sxx - mx^2, vy = syy - my^2, vxy = sxy - mx my
 *     cs = (2 vxy + C2) / D, D = vx + vy + C2;   l = (2 mx my + C1) / L, L = mx^2 + my^2 + C1
 *     v_s = mean over the map of cs (scales 1..S-1) or of l*cs (scale S)
 *   For a per-pixel map f(mx, sxx, sxy) the chain rule through G gives
 *     d mean(f) / dx = G^T A + 2 x (G^T B) + y (G^T C) with A = df/dmx / M, B = df/dsxx / M,
 *     C = df/dsxy / M (M = oh*ow pixels), where for f = cs:
 *       df/dmx = 2 (mx cs - my) / D,   df/dsxx = -cs / D,   df/dsxy = 2 / D
 *     and for f = l cs: df/dmx = cs * 2 (my - mx l) / L + l * (cs part), the other two times l.
 *   MS = prod_s relu(v_s)^w_s, dMS/dv_s = w_s v_s^(w_s - 1) prod_{t != s} relu(v_t)^w_t for
 *   v_s > 0 and 0 otherwise (relu), and the gradients of the coarser scales flow back through
 *   the adjoint of the 2x2 average pooling (each input sample receives 1/4 of its output's).
 * The forward moments are recomputed during the backward pass instead of being stored. */
#include <math.h>
#include <string.h>

#include "train/train_internal.h"

double nne_mse_loss(size_t count, const float *y, const float *t, float *dy) {
    if (count == 0) return 0.0;
    double sum = 0.0;
    for (size_t i = 0; i < count; i++) {
        const double d = (double)y[i] - (double)t[i];
        sum += d * d;
    }
    if (dy) {
        /* PyTorch's mse_loss_backward: (2 / numel) * (y - t), in f32. */
        const float norm = (float)(2.0 / (double)count);
        for (size_t i = 0; i < count; i++) dy[i] = norm * (y[i] - t[i]);
    }
    return sum / (double)count;
}

/* ---- MS-SSIM --------------------------------------------------------------------------- */

#define TAPS       11 /* Gaussian window */
#define RADIUS     5
#define SIGMA      1.5
#define K1         0.01
#define K2         0.03
#define MAX_SCALES 5

static const double k_weights[MAX_SCALES] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};

static void gaussian_taps(double g[TAPS]) {
    double sum = 0.0;
    for (int i = 0; i < TAPS; i++) {
        const double d = (double)(i - RADIUS);
        g[i] = exp(-(d * d) / (2.0 * SIGMA * SIGMA));
        sum += g[i];
    }
    for (int i = 0; i < TAPS; i++) g[i] /= sum;
}

int32_t nne_ms_ssim_auto_scales(int32_t h, int32_t w) {
    const int32_t side = h < w ? h : w;
    for (int32_t s = MAX_SCALES; s >= 1; s--)
        if (side > (TAPS - 1) * (1 << (s - 1))) return s;
    return 0;
}

/* Sizes of the pyramid levels: pytorch_msssim's avg_pool2d(2, padding = n % 2) gives
 * (n + 1) / 2 for odd n and n / 2 for even n. */
typedef struct pyramid {
    int32_t scales;
    int32_t h[MAX_SCALES], w[MAX_SCALES];
    size_t off[MAX_SCALES]; /* offset of level s (s >= 1) in a pyramid buffer */
    size_t size;            /* doubles of levels 1..scales-1 */
} pyramid;

static void pyramid_plan(int32_t h, int32_t w, int32_t scales, pyramid *p) {
    memset(p, 0, sizeof *p);
    p->scales = scales;
    p->h[0] = h;
    p->w[0] = w;
    for (int32_t s = 1; s < scales; s++) {
        p->h[s] = (p->h[s - 1] + 1) / 2;
        p->w[s] = (p->w[s - 1] + 1) / 2;
        p->off[s] = p->size;
        p->size += (size_t)p->h[s] * (size_t)p->w[s];
    }
}

size_t nne_ms_ssim_plane_work(int32_t h, int32_t w, int32_t scales) {
    pyramid p;
    pyramid_plan(h, w, scales, &p);
    const size_t oh = (size_t)h - (TAPS - 1), ow = (size_t)w - (TAPS - 1);
    /* x, y and gradient pyramids (levels >= 1), 5 moment maps, filter temp, product/plane temp */
    return 3 * p.size + 5 * oh * ow + (size_t)h * ow + (size_t)h * (size_t)w;
}

/* Valid separable filter: in [h][w] -> out [h-10][w-10]; tmp [h][w-10]. The operation order
 * of src/metrics/metrics.c (horizontal then vertical, taps in increasing order). */
static void filter_valid(const double *in, int32_t h, int32_t w, const double g[TAPS], double *tmp,
                         double *out) {
    const size_t ow = (size_t)w - (TAPS - 1);
    const int32_t oh = h - (TAPS - 1);
    for (int32_t y = 0; y < h; y++) {
        double *restrict o = tmp + (size_t)y * ow;
        const double *restrict r = in + (size_t)y * (size_t)w;
        for (size_t j = 0; j < ow; j++) o[j] = g[0] * r[j];
        for (int k = 1; k < TAPS; k++)
            for (size_t j = 0; j < ow; j++) o[j] += g[k] * r[j + (size_t)k];
    }
    for (int32_t i = 0; i < oh; i++) {
        double *restrict o = out + (size_t)i * ow;
        for (size_t j = 0; j < ow; j++) o[j] = 0.0;
        for (int k = 0; k < TAPS; k++) {
            const double *restrict r = tmp + (size_t)(i + k) * ow;
            for (size_t j = 0; j < ow; j++) o[j] += g[k] * r[j];
        }
    }
}

/* Adjoint of filter_valid: in [h-10][w-10] -> out [h][w] (overwritten); tmp [h][w-10]. */
static void filter_valid_adjoint(const double *in, int32_t h, int32_t w, const double g[TAPS],
                                 double *tmp, double *out) {
    const size_t ow = (size_t)w - (TAPS - 1);
    const int32_t oh = h - (TAPS - 1);
    for (int32_t y = 0; y < h; y++) {
        double *restrict o = tmp + (size_t)y * ow;
        for (size_t j = 0; j < ow; j++) o[j] = 0.0;
        for (int k = 0; k < TAPS; k++) {
            const int32_t i = y - k;
            if (i < 0 || i >= oh) continue;
            const double *restrict r = in + (size_t)i * ow;
            for (size_t j = 0; j < ow; j++) o[j] += g[k] * r[j];
        }
    }
    for (int32_t y = 0; y < h; y++) {
        double *restrict o = out + (size_t)y * (size_t)w;
        const double *restrict r = tmp + (size_t)y * ow;
        for (size_t j = 0; j < (size_t)w; j++) o[j] = 0.0;
        for (int k = 0; k < TAPS; k++)
            for (size_t j = 0; j < ow; j++) o[j + (size_t)k] += g[k] * r[j];
    }
}

/* 2x2 average pooling, pytorch_msssim's odd-size padding (docs/metrics.md): output (oy, ox)
 * covers input rows 2oy - ph + {0, 1}, columns 2ox - pw + {0, 1}, divisor 4. */
static void pool2(const double *in, int32_t h, int32_t w, double *out) {
    const int32_t ph = h % 2, pw = w % 2, oh = (h + 1) / 2, ow = (w + 1) / 2;
    for (int32_t oy = 0; oy < oh; oy++)
        for (int32_t ox = 0; ox < ow; ox++) {
            double sum = 0.0;
            for (int32_t dy = 0; dy < 2; dy++) {
                const int32_t iy = 2 * oy + dy - ph;
                if (iy < 0 || iy >= h) continue;
                for (int32_t dx = 0; dx < 2; dx++) {
                    const int32_t ix = 2 * ox + dx - pw;
                    if (ix < 0 || ix >= w) continue;
                    sum += in[(size_t)iy * (size_t)w + (size_t)ix];
                }
            }
            out[(size_t)oy * (size_t)ow + (size_t)ox] = sum * 0.25;
        }
}

/* Adjoint of pool2: in_grad [h][w] += 0.25 * out_grad of the output covering each sample. */
static void pool2_adjoint_add(const double *dout, int32_t h, int32_t w, double *din) {
    const int32_t ph = h % 2, pw = w % 2, ow = (w + 1) / 2;
    for (int32_t iy = 0; iy < h; iy++) {
        const double *r = dout + (size_t)((iy + ph) / 2) * (size_t)ow;
        double *o = din + (size_t)iy * (size_t)w;
        for (int32_t ix = 0; ix < w; ix++) o[ix] += 0.25 * r[(ix + pw) / 2];
    }
}

/* The five moment maps of one scale into mom [5][oh][ow]: mx, my, sxx, syy, sxy.
 * prod [h][w], tmp [h][ow]. */
static void moments(const double *x, const double *y, int32_t h, int32_t w, const double g[TAPS],
                    double *prod, double *tmp, double *mom) {
    const size_t n = (size_t)h * (size_t)w, m = (size_t)(h - (TAPS - 1)) * (size_t)(w - (TAPS - 1));
    filter_valid(x, h, w, g, tmp, mom);
    filter_valid(y, h, w, g, tmp, mom + m);
    for (size_t i = 0; i < n; i++) prod[i] = x[i] * x[i];
    filter_valid(prod, h, w, g, tmp, mom + 2 * m);
    for (size_t i = 0; i < n; i++) prod[i] = y[i] * y[i];
    filter_valid(prod, h, w, g, tmp, mom + 3 * m);
    for (size_t i = 0; i < n; i++) prod[i] = x[i] * y[i];
    filter_valid(prod, h, w, g, tmp, mom + 4 * m);
}

/* Means of the ssim and cs maps (per-row partial sums, as metrics.c). */
static void map_means(const double *mom, int32_t oh, int32_t ow, double c1, double c2,
                      double *ssim_mean, double *cs_mean) {
    const size_t m = (size_t)oh * (size_t)ow;
    double ssim_sum = 0.0, cs_sum = 0.0;
    for (int32_t i = 0; i < oh; i++) {
        double row_ssim = 0.0, row_cs = 0.0;
        for (int32_t j = 0; j < ow; j++) {
            const size_t p = (size_t)i * (size_t)ow + (size_t)j;
            const double ux = mom[p], uy = mom[m + p];
            const double vx = mom[2 * m + p] - ux * ux, vy = mom[3 * m + p] - uy * uy;
            const double vxy = mom[4 * m + p] - ux * uy;
            const double cs = (2.0 * vxy + c2) / (vx + vy + c2);
            const double l = (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1);
            row_cs += cs;
            row_ssim += l * cs;
        }
        ssim_sum += row_ssim;
        cs_sum += row_cs;
    }
    *ssim_mean = ssim_sum / (double)m;
    *cs_mean = cs_sum / (double)m;
}

/* Overwrite mom[0..2] with A, B, C = k * (df/dmx, df/dsxx, df/dsxy), f = cs or l*cs. */
static void map_grads(double *mom, size_t m, double c1, double c2, bool with_l, double k) {
    for (size_t p = 0; p < m; p++) {
        const double ux = mom[p], uy = mom[m + p];
        const double vx = mom[2 * m + p] - ux * ux, vy = mom[3 * m + p] - uy * uy;
        const double vxy = mom[4 * m + p] - ux * uy;
        const double d = vx + vy + c2;
        const double cs = (2.0 * vxy + c2) / d;
        double da = 2.0 * (ux * cs - uy) / d, db = -cs / d, dc = 2.0 / d;
        if (with_l) {
            const double ld = ux * ux + uy * uy + c1;
            const double l = (2.0 * ux * uy + c1) / ld;
            da = cs * 2.0 * (uy - ux * l) / ld + l * da;
            db *= l;
            dc *= l;
        }
        mom[p] = k * da;
        mom[m + p] = k * db;
        mom[2 * m + p] = k * dc;
    }
}

double nne_ms_ssim_plane_f64(const double *x, const double *y, int32_t h, int32_t w, int32_t scales,
                             double data_range, double *work, double *dx) {
    double g[TAPS];
    gaussian_taps(g);
    pyramid p;
    pyramid_plan(h, w, scales, &p);
    const size_t oh0 = (size_t)h - (TAPS - 1), ow0 = (size_t)w - (TAPS - 1);
    double *px = work;                    /* levels >= 1 of x */
    double *py = px + p.size;             /* levels >= 1 of y */
    double *pg = py + p.size;             /* levels >= 1 of the gradient */
    double *mom = pg + p.size;            /* [5][oh][ow] */
    double *tmp = mom + 5 * oh0 * ow0;    /* [h][ow] */
    double *prod = tmp + (size_t)h * ow0; /* [h][w] */
    const double c1 = (K1 * data_range) * (K1 * data_range);
    const double c2 = (K2 * data_range) * (K2 * data_range);

    double wt[MAX_SCALES], wsum = 0.0;
    for (int32_t s = 0; s < scales; s++) wsum += k_weights[s];
    for (int32_t s = 0; s < scales; s++)
        wt[s] = scales == MAX_SCALES ? k_weights[s] : k_weights[s] / wsum;

    const double *lx[MAX_SCALES], *ly[MAX_SCALES];
    lx[0] = x;
    ly[0] = y;
    for (int32_t s = 1; s < scales; s++) {
        pool2(lx[s - 1], p.h[s - 1], p.w[s - 1], px + p.off[s]);
        pool2(ly[s - 1], p.h[s - 1], p.w[s - 1], py + p.off[s]);
        lx[s] = px + p.off[s];
        ly[s] = py + p.off[s];
    }

    /* Forward: v_s = mean cs (s < S-1) or mean ssim (last scale), then the product. */
    double v[MAX_SCALES], r[MAX_SCALES];
    for (int32_t s = 0; s < scales; s++) {
        double ssim, cs;
        moments(lx[s], ly[s], p.h[s], p.w[s], g, prod, tmp, mom);
        map_means(mom, p.h[s] - (TAPS - 1), p.w[s] - (TAPS - 1), c1, c2, &ssim, &cs);
        v[s] = s < scales - 1 ? cs : ssim;
        r[s] = v[s] > 0.0 ? pow(v[s], wt[s]) : 0.0;
    }
    double ms = 1.0;
    for (int32_t s = 0; s < scales; s++) ms *= r[s];
    if (!dx) return ms;

    /* Backward: the direct gradient of every scale into its level, coarse to fine. */
    for (int32_t s = 0; s < scales; s++) {
        const size_t n = (size_t)p.h[s] * (size_t)p.w[s];
        const size_t m = (size_t)(p.h[s] - (TAPS - 1)) * (size_t)(p.w[s] - (TAPS - 1));
        double *gs = s == 0 ? dx : pg + p.off[s]; /* [h_s][w_s] */
        double dv = 0.0;
        if (v[s] > 0.0) {
            dv = wt[s] * pow(v[s], wt[s] - 1.0);
            for (int32_t t = 0; t < scales; t++)
                if (t != s) dv *= r[t];
        }
        if (dv == 0.0) {
            memset(gs, 0, n * sizeof(double));
            continue;
        }
        moments(lx[s], ly[s], p.h[s], p.w[s], g, prod, tmp, mom);
        map_grads(mom, m, c1, c2, s == scales - 1, dv / (double)m);
        filter_valid_adjoint(mom, p.h[s], p.w[s], g, tmp, gs); /* G^T A */
        filter_valid_adjoint(mom + m, p.h[s], p.w[s], g, tmp, prod);
        for (size_t i = 0; i < n; i++) gs[i] += 2.0 * lx[s][i] * prod[i]; /* 2 x G^T B */
        filter_valid_adjoint(mom + 2 * m, p.h[s], p.w[s], g, tmp, prod);
        for (size_t i = 0; i < n; i++) gs[i] += ly[s][i] * prod[i]; /* y G^T C */
    }
    for (int32_t s = scales - 2; s >= 0; s--) {
        double *gs = s == 0 ? dx : pg + p.off[s];
        pool2_adjoint_add(pg + p.off[s + 1], p.h[s], p.w[s], gs);
    }
    return ms;
}

static nne_status ms_ssim_check(int32_t n, int32_t h, int32_t w, int32_t c, int32_t *scales) {
    if (n < 1 || h < 1 || w < 1 || c < 1 || h > NNE_MAX_DIM || w > NNE_MAX_DIM)
        return nne_error(NNE_ERR_INVALID_ARG, "ms-ssim loss: bad shape [%d][%d][%d][%d]", (int)n,
                         (int)h, (int)w, (int)c);
    if (*scales < 0 || *scales > MAX_SCALES)
        return nne_error(NNE_ERR_INVALID_ARG, "ms-ssim loss: %d scales (want 0..5)", (int)*scales);
    const int32_t fit = nne_ms_ssim_auto_scales(h, w);
    if (*scales == 0) *scales = fit;
    if (fit == 0 || *scales > fit)
        return nne_error(NNE_ERR_LIMIT,
                         "ms-ssim loss: %dx%d image too small for %d scales (min side must "
                         "exceed %d)",
                         (int)h, (int)w, (int)(*scales ? *scales : 1),
                         (TAPS - 1) * (1 << ((*scales ? *scales : 1) - 1)));
    return NNE_OK;
}

size_t nne_ms_ssim_loss_scratch_size(int32_t h, int32_t w, int32_t scales) {
    if (ms_ssim_check(1, h, w, 1, &scales) != NNE_OK) return 0;
    /* x, y and dx planes in double, then the plane work. */
    return (3 * (size_t)h * (size_t)w + nne_ms_ssim_plane_work(h, w, scales)) * sizeof(double);
}

nne_status nne_ms_ssim_loss(int32_t n, int32_t h, int32_t w, int32_t c, const float *y,
                            const float *t, int32_t scales, void *scratch, double *loss,
                            float *dy) {
    if (!y || !t || !scratch || !loss)
        return nne_error(NNE_ERR_INVALID_ARG, "ms-ssim loss: NULL argument");
    nne_status st = ms_ssim_check(n, h, w, c, &scales);
    if (st != NNE_OK) return st;
    const size_t hw = (size_t)h * (size_t)w;
    double *xp = scratch, *tp = xp + hw, *gp = tp + hw, *work = gp + hw;
    /* loss = 1 - mean_{b,ch} ms[b][ch]  =>  dloss/dy = -dms/dy / (n c) */
    const double scale = -1.0 / ((double)n * (double)c);
    double sum = 0.0;
    for (int32_t b = 0; b < n; b++) {
        const size_t base = (size_t)b * hw * (size_t)c;
        for (int32_t ch = 0; ch < c; ch++) {
            for (size_t i = 0; i < hw; i++) {
                xp[i] = (double)y[base + i * (size_t)c + (size_t)ch];
                tp[i] = (double)t[base + i * (size_t)c + (size_t)ch];
            }
            sum += nne_ms_ssim_plane_f64(xp, tp, h, w, scales, 1.0, work, dy ? gp : NULL);
            if (dy)
                for (size_t i = 0; i < hw; i++)
                    dy[base + i * (size_t)c + (size_t)ch] = (float)(scale * gp[i]);
        }
    }
    *loss = 1.0 - sum / ((double)n * (double)c);
    return NNE_OK;
}
