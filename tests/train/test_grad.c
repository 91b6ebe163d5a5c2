/* Finite-difference gradient checks for every backward pass of src/train.
 *
 * Method: for a layer y = f(x, params) and a fixed random upstream gradient r (f32), the
 * scalar L = sum_i r_i y_i is evaluated in DOUBLE by an independent double-precision
 * forward written below from docs/ops.md (and checked against the f32 reference kernels).
 * The numerical gradient is the central difference (L(p + h) - L(p - h)) / 2h with
 * h = 1e-4 * max(1, |p|) on the same values promoted to double: truncation error
 * O(h^2 f''') ~ 1e-8 relative, rounding ~ 1e-16 |L| / h ~ 1e-12. The analytical gradient
 * comes from the f32 backward kernel with dy = r.
 *
 * Error measure per gradient tensor: max_i |analytic_i - numeric_i| / max_i |numeric_i|
 * (relative to the tensor's gradient scale, so that entries that cancel to ~0 do not
 * inflate it). Bound GRAD_RTOL = 1e-4: the f32 backward sums K <= ~600 products, whose
 * worst-case rounding is K * 2^-24 ~ 4e-5 of the sum of |terms|; an indexing or formula
 * error gives errors of order 1e-1 or more. Observed maxima are printed and recorded in
 * docs/training.md. MS-SSIM is differentiated in double, so its bound is 1e-6. */
#include <math.h>
#include <string.h>

#include "nnedge/metrics.h"
#include "nnedge/ops.h"
#include "nnedge/train.h"
#include "testutil.h"
#include "train/train_internal.h"

#define GRAD_RTOL   1e-4
#define MSSSIM_RTOL 1e-6

static nne_test_rng g_rng;

static float urand(float lo, float hi) {
    return lo + (hi - lo) * (float)nne_test_rng_uniform(&g_rng);
}
static void fill(float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) p[i] = urand(lo, hi);
}
/* Values with |v| >= 0.05, so that a +-h step never crosses a relu/prelu kink. */
static void fill_away_from_zero(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = urand(-1.0f, 1.0f);
        p[i] = v < 0 ? v - 0.05f : v + 0.05f;
    }
}

/* Largest errors per op, printed at the end. */
typedef struct {
    const char *op;
    double worst;
} op_err;
static op_err g_errs[32];
static int g_n_errs;
static void record(const char *op, double err) {
    for (int i = 0; i < g_n_errs; i++)
        if (strcmp(g_errs[i].op, op) == 0) {
            if (err > g_errs[i].worst) g_errs[i].worst = err;
            return;
        }
    if (g_n_errs < 32) g_errs[g_n_errs++] = (op_err){op, err};
}

/* ---- generic checker ------------------------------------------------------------------- */

/* A layer under test: double forward of L = sum r*y with the current double inputs. */
typedef double (*loss_fn)(void *ctx);

/* Compare analytic gradient `ga` [n] of the double array `p` [n] with central differences
 * of fn. Checks every element when n <= 300, else 300 random ones. */
static double check_tensor(const char *op, const char *what, loss_fn fn, void *ctx, double *p,
                           const float *ga, size_t n) {
    double max_num = 0.0, max_err = 0.0;
    size_t count = n <= 300 ? n : 300;
    for (size_t k = 0; k < count; k++) {
        size_t i = n <= 300 ? k : (size_t)nne_test_rng_int(&g_rng, 0, (int)n - 1);
        const double save = p[i];
        const double h = 1e-4 * (fabs(save) > 1.0 ? fabs(save) : 1.0);
        p[i] = save + h;
        const double lp = fn(ctx);
        p[i] = save - h;
        const double lm = fn(ctx);
        p[i] = save;
        const double num = (lp - lm) / (2.0 * h);
        if (fabs(num) > max_num) max_num = fabs(num);
        const double e = fabs(num - (double)ga[i]);
        if (e > max_err) max_err = e;
    }
    const double rel = max_err / (max_num > 1e-30 ? max_num : 1e-30);
    CHECK_MSG(rel <= GRAD_RTOL && max_num > 0.0, "%s d%s: rel err %.3g (max |grad| %.3g)", op, what,
              rel, max_num);
    record(op, rel);
    return rel;
}

static double *to_double(const float *p, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = (double)p[i];
    return d;
}

static double max_abs_diff_fd(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > m) m = e;
    }
    return m;
}

/* ---- conv2d and conv_transpose2d -------------------------------------------------------- */

typedef struct conv_ctx {
    nne_conv2d_geom g;
    bool transpose;
    double *x, *w, *b; /* b may be NULL */
    const float *r;    /* [n][oh][ow][oc] upstream gradient */
    double *y;         /* [n][oh][ow][oc] */
} conv_ctx;

/* Double forward, written from docs/ops.md (conv gather form, transpose scatter form). */
static void conv_forward_f64(const conv_ctx *c) {
    const nne_conv2d_geom *g = &c->g;
    const int icg = g->ic / g->groups, ocg = g->oc / g->groups;
    const size_t ny = (size_t)g->n * g->oh * g->ow * g->oc;
    for (size_t i = 0; i < ny; i++) c->y[i] = c->b ? c->b[i % (size_t)g->oc] : 0.0;
    for (int b = 0; b < g->n; b++)
        for (int o = 0; o < g->oc; o++) {
            const int c0 = (o / ocg) * icg;
            for (int ky = 0; ky < g->kh; ky++)
                for (int kx = 0; kx < g->kw; kx++)
                    for (int ci = 0; ci < icg; ci++) {
                        const double wv = c->w[(((size_t)o * g->kh + ky) * g->kw + kx) * icg + ci];
                        if (!c->transpose) {
                            for (int oy = 0; oy < g->oh; oy++)
                                for (int ox = 0; ox < g->ow; ox++) {
                                    int iy = oy * g->stride_h - g->pad_t + ky * g->dil_h;
                                    int ix = ox * g->stride_w - g->pad_l + kx * g->dil_w;
                                    if (iy < 0 || iy >= g->ih || ix < 0 || ix >= g->iw) continue;
                                    c->y[(((size_t)b * g->oh + oy) * g->ow + ox) * g->oc + o] +=
                                        wv * c->x[(((size_t)b * g->ih + iy) * g->iw + ix) * g->ic +
                                                  c0 + ci];
                                }
                        } else {
                            for (int iy = 0; iy < g->ih; iy++)
                                for (int ix = 0; ix < g->iw; ix++) {
                                    int oy = iy * g->stride_h - g->pad_t + ky * g->dil_h;
                                    int ox = ix * g->stride_w - g->pad_l + kx * g->dil_w;
                                    if (oy < 0 || oy >= g->oh || ox < 0 || ox >= g->ow) continue;
                                    c->y[(((size_t)b * g->oh + oy) * g->ow + ox) * g->oc + o] +=
                                        wv * c->x[(((size_t)b * g->ih + iy) * g->iw + ix) * g->ic +
                                                  c0 + ci];
                                }
                        }
                    }
        }
}

static double conv_loss(void *vctx) {
    conv_ctx *c = vctx;
    conv_forward_f64(c);
    const size_t ny = (size_t)c->g.n * c->g.oh * c->g.ow * c->g.oc;
    double l = 0.0;
    for (size_t i = 0; i < ny; i++) l += (double)c->r[i] * c->y[i];
    return l;
}

typedef struct conv_case {
    int n, ih, iw, ic, oc, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oph, opw, groups, bias;
} conv_case;

static void run_conv_case(const conv_case *cc, bool transpose) {
    nne_conv2d_geom g;
    memset(&g, 0, sizeof g);
    g.n = cc->n;
    g.ih = cc->ih;
    g.iw = cc->iw;
    g.ic = cc->ic;
    g.oc = cc->oc;
    g.kh = cc->kh;
    g.kw = cc->kw;
    g.stride_h = cc->sh;
    g.stride_w = cc->sw;
    g.dil_h = cc->dh;
    g.dil_w = cc->dw;
    g.pad_t = cc->pt;
    g.pad_l = cc->pl;
    g.pad_b = cc->pb;
    g.pad_r = cc->pr;
    g.groups = cc->groups;
    if (transpose) {
        g.out_pad_h = cc->oph;
        g.out_pad_w = cc->opw;
        g.oh = nne_conv_transpose_out_dim(g.ih, g.kh, g.stride_h, g.dil_h, g.pad_t, g.pad_b,
                                          g.out_pad_h);
        g.ow = nne_conv_transpose_out_dim(g.iw, g.kw, g.stride_w, g.dil_w, g.pad_l, g.pad_r,
                                          g.out_pad_w);
    } else {
        g.oh = nne_conv_out_dim(g.ih, g.kh, g.stride_h, g.dil_h, g.pad_t, g.pad_b);
        g.ow = nne_conv_out_dim(g.iw, g.kw, g.stride_w, g.dil_w, g.pad_l, g.pad_r);
    }
    CHECK(g.oh > 0 && g.ow > 0);
    if (g.oh <= 0 || g.ow <= 0) return;
    const size_t nx = (size_t)g.n * g.ih * g.iw * g.ic, ny = (size_t)g.n * g.oh * g.ow * g.oc;
    const size_t nw = (size_t)g.oc * g.kh * g.kw * (g.ic / g.groups);
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)g.oc * 4);
    float *r = malloc(ny * 4), *y = malloc(ny * 4), *dx = malloc(nx * 4);
    float *dw = malloc(nw * 4), *db = malloc((size_t)g.oc * 4);
    const size_t ns = transpose ? nne_conv_transpose2d_backward_scratch_size(&g)
                                : nne_conv2d_backward_scratch_size(&g);
    float *scratch = malloc(ns * 4);
    fill(x, nx, -1, 1);
    fill(w, nw, -0.5f, 0.5f);
    fill(b, (size_t)g.oc, -1, 1);
    fill(r, ny, -1, 1);
    /* dx is overwritten: poison it. dw/db accumulate: start them at 1 and subtract. */
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    for (size_t i = 0; i < nw; i++) dw[i] = 1.0f;
    for (int i = 0; i < g.oc; i++) db[i] = 1.0f;
    const float *bias = cc->bias ? b : NULL;
    if (transpose) {
        nne_conv_transpose2d_forward(&g, x, w, bias, y);
        nne_conv_transpose2d_backward(&g, x, w, r, dx, dw, cc->bias ? db : NULL, scratch);
    } else {
        nne_conv2d_forward(&g, x, w, bias, y);
        nne_conv2d_backward(&g, x, w, r, dx, dw, cc->bias ? db : NULL, scratch);
    }
    for (size_t i = 0; i < nw; i++) dw[i] -= 1.0f;
    for (int i = 0; i < g.oc; i++) db[i] -= 1.0f;

    conv_ctx c = {g,
                  transpose,
                  to_double(x, nx),
                  to_double(w, nw),
                  cc->bias ? to_double(b, g.oc) : NULL,
                  r,
                  malloc(ny * sizeof(double))};
    conv_forward_f64(&c);
    CHECK_MSG(max_abs_diff_fd(y, c.y, ny) < 1e-5, "double forward != f32 reference kernel");
    const char *op = transpose ? "conv_transpose2d" : "conv2d";
    check_tensor(op, "x", conv_loss, &c, c.x, dx, nx);
    check_tensor(op, "w", conv_loss, &c, c.w, dw, nw);
    if (cc->bias) check_tensor(op, "b", conv_loss, &c, c.b, db, (size_t)g.oc);

    /* dx == NULL skips the data gradient and leaves dw identical. */
    float *dw2 = calloc(nw, 4);
    if (transpose)
        nne_conv_transpose2d_backward(&g, x, w, r, NULL, dw2, NULL, scratch);
    else
        nne_conv2d_backward(&g, x, w, r, NULL, dw2, NULL, scratch);
    double d2 = 0;
    for (size_t i = 0; i < nw; i++) d2 = fmax(d2, fabs((double)dw2[i] - (double)dw[i]));
    CHECK(d2 < 1e-6);
    free(dw2);
    free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db), free(scratch);
    free(c.x), free(c.w), free(c.b), free(c.y);
}

static void test_conv2d_grad(void) {
    static const conv_case cases[] = {
        /* n ih iw ic oc kh kw sh sw dh dw pt pl pb pr oph opw g bias */
        {2, 7, 9, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},
        {1, 9, 8, 4, 6, 3, 2, 2, 1, 1, 1, 0, 1, 1, 0, 0, 0, 2, 1},
        {2, 11, 10, 4, 4, 3, 3, 2, 2, 2, 2, 2, 1, 0, 2, 0, 0, 4, 1}, /* depthwise, dilated */
        {1, 6, 7, 6, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 3, 0},   /* 1x1 grouped, no bias */
        {2, 9, 11, 3, 5, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1},  /* cae-like valid s2 */
        {1, 13, 5, 2, 3, 5, 3, 2, 1, 1, 2, 2, 0, 1, 1, 0, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_conv_case(&cases[i], false);
}

static void test_conv_transpose2d_grad(void) {
    static const conv_case cases[] = {
        /* n ih iw ic oc kh kw sh sw dh dw pt pl pb pr oph opw g bias */
        {2, 4, 5, 3, 4, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1}, /* cae-like, out pad */
        {1, 5, 4, 4, 6, 3, 2, 2, 1, 2, 1, 1, 0, 1, 0, 1, 0, 2, 1}, /* crop, dilation, groups */
        {1, 3, 3, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0}, /* "same", no bias */
        {2, 4, 3, 6, 6, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1, 3, 1}, /* groups 3, out pad 1x1 */
        {1, 5, 6, 3, 2, 3, 3, 1, 2, 1, 1, 0, 1, 2, 0, 0, 1, 1, 1}, /* asymmetric crop */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_conv_case(&cases[i], true);
}

/* ---- relu, prelu ------------------------------------------------------------------------ */

typedef struct act_ctx {
    size_t pixels;
    int c, n_slope;
    double *x, *slope; /* slope NULL: relu */
    const float *r;
} act_ctx;

static double act_loss(void *vctx) {
    act_ctx *a = vctx;
    double l = 0.0;
    for (size_t p = 0; p < a->pixels; p++)
        for (int ch = 0; ch < a->c; ch++) {
            const size_t i = p * (size_t)a->c + (size_t)ch;
            const double x = a->x[i];
            double y;
            if (!a->slope)
                y = x > 0.0 ? x : 0.0;
            else
                y = x < 0.0 ? a->slope[a->n_slope == 1 ? 0 : ch] * x : x;
            l += (double)a->r[i] * y;
        }
    return l;
}

static void test_relu_prelu_grad(void) {
    const size_t pixels = 2 * 5 * 3;
    const int c = 7;
    const size_t n = pixels * (size_t)c;
    float *x = malloc(n * 4), *r = malloc(n * 4), *dx = malloc(n * 4), slope[7], dslope[7];
    fill_away_from_zero(x, n);
    fill(r, n, -1, 1);
    /* relu */
    nne_relu_backward(n, x, r, dx);
    act_ctx a = {pixels, c, 0, to_double(x, n), NULL, r};
    check_tensor("relu", "x", act_loss, &a, a.x, dx, n);
    /* relu in place (dx aliases dy) */
    float *dd = malloc(n * 4);
    memcpy(dd, r, n * 4);
    nne_relu_backward(n, x, dd, dd);
    CHECK(memcmp(dd, dx, n * 4) == 0);
    free(dd);
    /* prelu, shared and per channel */
    for (int shared = 0; shared < 2; shared++) {
        const int ns = shared ? 1 : c;
        fill(slope, (size_t)ns, -0.5f, 0.5f);
        for (int i = 0; i < ns; i++) dslope[i] = 0.0f;
        nne_prelu_backward(pixels, c, x, slope, ns, r, dx, dslope);
        act_ctx p = {pixels, c, ns, a.x, to_double(slope, (size_t)ns), r};
        check_tensor("prelu", "x", act_loss, &p, p.x, dx, n);
        check_tensor("prelu", "slope", act_loss, &p, p.slope, dslope, (size_t)ns);
        free(p.slope);
    }
    free(a.x);
    free(x), free(r), free(dx);
}

/* ---- GDN / IGDN ------------------------------------------------------------------------- */

typedef struct gdn_ctx {
    size_t pixels;
    int c;
    bool inverse;
    double *x, *beta, *gamma;
    const float *r;
} gdn_ctx;

static double gdn_loss(void *vctx) {
    gdn_ctx *g = vctx;
    double l = 0.0;
    for (size_t p = 0; p < g->pixels; p++) {
        const double *x = g->x + p * (size_t)g->c;
        for (int i = 0; i < g->c; i++) {
            double norm = g->beta[i];
            for (int j = 0; j < g->c; j++) norm += g->gamma[(size_t)i * g->c + j] * x[j] * x[j];
            const double y = g->inverse ? x[i] * sqrt(norm) : x[i] / sqrt(norm);
            l += (double)g->r[p * (size_t)g->c + (size_t)i] * y;
        }
    }
    return l;
}

static void test_gdn_grad(void) {
    const size_t pixels = 2 * 3 * 4;
    const int c = 5;
    const size_t n = pixels * (size_t)c, nc2 = (size_t)c * c;
    float *x = malloc(n * 4), *r = malloc(n * 4), *dx = malloc(n * 4), *y = malloc(n * 4);
    float beta[5], gamma[25], dbeta[5], dgamma[25], scratch[10];
    for (int inverse = 0; inverse < 2; inverse++) {
        fill(x, n, -1.5f, 1.5f);
        fill(r, n, -1, 1);
        fill(beta, (size_t)c, 0.5f, 1.5f);
        fill(gamma, nc2, 0.0f, 0.3f);
        memset(dbeta, 0, sizeof dbeta);
        memset(dgamma, 0, sizeof dgamma);
        nne_gdn_forward(pixels, c, x, beta, gamma, inverse, y);
        nne_gdn_backward(pixels, c, x, beta, gamma, inverse, r, dx, dbeta, dgamma, scratch);
        gdn_ctx gc = {
            pixels, c, inverse, to_double(x, n), to_double(beta, (size_t)c), to_double(gamma, nc2),
            r};
        const char *op = inverse ? "igdn" : "gdn";
        check_tensor(op, "x", gdn_loss, &gc, gc.x, dx, n);
        check_tensor(op, "beta", gdn_loss, &gc, gc.beta, dbeta, (size_t)c);
        check_tensor(op, "gamma", gdn_loss, &gc, gc.gamma, dgamma, nc2);
        free(gc.x), free(gc.beta), free(gc.gamma);
    }
    free(x), free(r), free(dx), free(y);
}

/* ---- add, MSE --------------------------------------------------------------------------- */

typedef struct add_ctx {
    size_t n;
    double *a, *b;
    const float *r;
} add_ctx;
static double add_loss(void *vctx) {
    add_ctx *c = vctx;
    double l = 0.0;
    for (size_t i = 0; i < c->n; i++) l += (double)c->r[i] * (c->a[i] + c->b[i]);
    return l;
}

typedef struct mse_ctx {
    size_t n;
    double *y;
    const float *t;
} mse_ctx;
static double mse_loss_f64(void *vctx) {
    mse_ctx *c = vctx;
    double l = 0.0;
    for (size_t i = 0; i < c->n; i++) l += (c->y[i] - c->t[i]) * (c->y[i] - c->t[i]);
    return l / (double)c->n;
}

static void test_add_mse_grad(void) {
    const size_t n = 3 * 5 * 7;
    float *a = malloc(n * 4), *b = malloc(n * 4), *r = malloc(n * 4), *da = malloc(n * 4),
          *db = malloc(n * 4);
    fill(a, n, -1, 1);
    fill(b, n, -1, 1);
    fill(r, n, -1, 1);
    nne_add_backward(n, r, da, db);
    add_ctx c = {n, to_double(a, n), to_double(b, n), r};
    check_tensor("add", "a", add_loss, &c, c.a, da, n);
    check_tensor("add", "b", add_loss, &c, c.b, db, n);
    /* MSE: y = a, target = b. */
    float *dy = malloc(n * 4);
    const double l = nne_mse_loss(n, a, b, dy);
    mse_ctx m = {n, c.a, b};
    CHECK_NEAR(l, mse_loss_f64(&m), 1e-12);
    check_tensor("mse", "y", mse_loss_f64, &m, m.y, dy, n);
    free(c.a), free(c.b), free(a), free(b), free(r), free(da), free(db), free(dy);
}

/* ---- entropy models: abs, factorized and Gaussian likelihoods, rate ---------------------- */

/* Double forward of the factorized density, written from ops.h independently of the kernel. */
static double sp64(double r) { return log1p(exp(r)); }
static double fact_logit64(const double *p, double v) {
    static const int dims[5] = {1, 3, 3, 3, 1};
    int oh = 0, ob = 24, oa = 34;
    double h[3] = {v, 0, 0};
    for (int k = 0; k < 4; k++) {
        double u[3] = {0, 0, 0};
        for (int o = 0; o < dims[k + 1]; o++) {
            u[o] = p[ob + o];
            for (int i = 0; i < dims[k]; i++) u[o] += sp64(p[oh + o * dims[k] + i]) * h[i];
        }
        oh += dims[k] * dims[k + 1];
        ob += dims[k + 1];
        for (int o = 0; o < dims[k + 1]; o++)
            h[o] = k < 3 ? u[o] + tanh(p[oa + o]) * tanh(u[o]) : u[o];
        if (k < 3) oa += 3;
    }
    return h[0];
}
static double fact_lik64(const double *p, double v) {
    const double l = fact_logit64(p, v - 0.5), u = fact_logit64(p, v + 0.5);
    return 1.0 / (1.0 + exp(-u)) - 1.0 / (1.0 + exp(-l));
}

typedef struct ent_ctx {
    size_t pixels;
    int c;
    double *x, *p;        /* factorized: x [pixels][c], params [c][43] */
    double *scale, *mean; /* gaussian: [pixels] */
    const float *r;
} ent_ctx;

static double fact_loss(void *vctx) {
    ent_ctx *e = vctx;
    double l = 0.0;
    for (size_t px = 0; px < e->pixels; px++)
        for (int ch = 0; ch < e->c; ch++) {
            const size_t i = px * (size_t)e->c + (size_t)ch;
            l += (double)e->r[i] * fact_lik64(e->p + (size_t)ch * NNE_FACT_PARAMS, e->x[i]);
        }
    return l;
}

static double gauss_cdf64(double t) { return 0.5 * erfc(-t / sqrt(2.0)); }
static double gauss_loss(void *vctx) {
    ent_ctx *e = vctx;
    double l = 0.0;
    for (size_t i = 0; i < e->pixels; i++) {
        const double v = fabs(e->x[i] - e->mean[i]), s = e->scale[i];
        l += (double)e->r[i] * (gauss_cdf64((0.5 - v) / s) - gauss_cdf64((-0.5 - v) / s));
    }
    return l;
}

static double abs_loss(void *vctx) {
    ent_ctx *e = vctx;
    double l = 0.0;
    for (size_t i = 0; i < e->pixels; i++) l += (double)e->r[i] * fabs(e->x[i]);
    return l;
}

static double rate_loss(void *vctx) { /* x holds likelihoods; L = sum -log2 x / 7 */
    ent_ctx *e = vctx;
    double l = 0.0;
    for (size_t i = 0; i < e->pixels; i++) l -= log2(e->x[i]) / 7.0;
    return l;
}

static void test_entropy_grad(void) {
    const size_t pixels = 2 * 3 * 4;
    const int c = 5;
    const size_t n = pixels * (size_t)c, np = (size_t)c * NNE_FACT_PARAMS;
    float *x = malloc(n * 4), *r = malloc(n * 4), *dx = malloc(n * 4), *y = malloc(n * 4);
    float *p = malloc(np * 4), *dp = calloc(np, 4);
    /* Factorized: params around CompressAI's initialisation, values over the support. */
    fill(x, n, -3.0f, 3.0f);
    fill(r, n, -1, 1);
    for (int ch = 0; ch < c; ch++)
        for (int k = 0; k < NNE_FACT_PARAMS; k++)
            p[ch * NNE_FACT_PARAMS + k] = k < 24 ? urand(-1.0f, 0.5f) : urand(-0.5f, 0.5f);
    nne_factorized_likelihood_f32__ref(pixels, c, x, p, 1e-9f, y);
    ent_ctx e = {pixels, c, to_double(x, n), to_double(p, np), NULL, NULL, r};
    double maxd = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double want = fact_lik64(e.p + (i % (size_t)c) * NNE_FACT_PARAMS, e.x[i]);
        maxd = fmax(maxd, fabs((double)y[i] - want));
    }
    CHECK_MSG(maxd < 1e-6, "factorized forward vs double: %.3g", maxd);
    nne_factorized_likelihood_backward(pixels, c, x, p, 1e-9f, r, dx, dp);
    check_tensor("factorized_likelihood", "x", fact_loss, &e, e.x, dx, n);
    check_tensor("factorized_likelihood", "params", fact_loss, &e, e.p, dp, np);
    free(e.x), free(e.p);

    /* Gaussian: scales above the bound, |x - mean| away from 0. */
    float *sc = malloc(n * 4), *mu = malloc(n * 4), *ds = malloc(n * 4), *dm = malloc(n * 4);
    fill(sc, n, 0.2f, 3.0f);
    fill(mu, n, -1.0f, 1.0f);
    fill_away_from_zero(x, n);
    for (size_t i = 0; i < n; i++) x[i] = mu[i] + 3.0f * x[i];
    nne_gaussian_likelihood_f32__ref(n, x, sc, mu, 0.11f, 1e-9f, y);
    ent_ctx gsn = {n, 1, to_double(x, n), NULL, to_double(sc, n), to_double(mu, n), r};
    maxd = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double v = fabs(gsn.x[i] - gsn.mean[i]), s = gsn.scale[i];
        maxd = fmax(maxd, fabs((double)y[i] - (gauss_cdf64((0.5 - v) / s) -
                                                gauss_cdf64((-0.5 - v) / s))));
    }
    CHECK_MSG(maxd < 1e-7, "gaussian forward vs double: %.3g", maxd);
    nne_gaussian_likelihood_backward(n, x, sc, mu, 0.11f, 1e-9f, r, dx, ds, dm);
    check_tensor("gaussian_likelihood", "x", gauss_loss, &gsn, gsn.x, dx, n);
    check_tensor("gaussian_likelihood", "scale", gauss_loss, &gsn, gsn.scale, ds, n);
    check_tensor("gaussian_likelihood", "mean", gauss_loss, &gsn, gsn.mean, dm, n);
    /* Lower bounds: a scale below scale_min gets no gradient unless it pushes P up (CompressAI's
     * LowerBound); P at the floor passes only a rate gradient (dy < 0). */
    const float xs = 0.6f, small = 0.05f, pos = 1.0f, neg = -1.0f;
    float gx, gs;
    nne_gaussian_likelihood_backward(1, &xs, &small, NULL, 0.11f, 1e-9f, &pos, &gx, &gs, NULL);
    CHECK(gs == 0.0f && gx != 0.0f); /* dP/ds > 0 at |x| = 0.6: dy dP/ds > 0 is blocked */
    nne_gaussian_likelihood_backward(1, &xs, &small, NULL, 0.11f, 1e-9f, &neg, &gx, &gs, NULL);
    CHECK(gs < 0.0f);
    const float far = 40.0f, one = 1.0f;
    nne_gaussian_likelihood_backward(1, &far, &one, NULL, 0.11f, 1e-9f, &pos, &gx, &gs, NULL);
    CHECK(gx == 0.0f && gs == 0.0f); /* P ~ 1e-300 is floored: dy > 0 stops there */
    free(gsn.x), free(gsn.scale), free(gsn.mean);

    /* abs (away from the kink) and the rate. */
    fill_away_from_zero(x, n);
    nne_abs_backward(n, x, r, dx);
    ent_ctx a = {n, 1, to_double(x, n), NULL, NULL, NULL, r};
    check_tensor("abs", "x", abs_loss, &a, a.x, dx, n);
    free(a.x);
    fill(x, n, 0.01f, 1.0f);
    const double bits = nne_rate_bits(n, x, 1.0 / 7.0, dx);
    ent_ctx rt = {n, 1, to_double(x, n), NULL, NULL, NULL, r};
    CHECK_NEAR(bits / 7.0, rate_loss(&rt), 1e-9);
    check_tensor("rate", "likelihood", rate_loss, &rt, rt.x, dx, n);
    free(rt.x);
    free(x), free(r), free(dx), free(y), free(p), free(dp), free(sc), free(mu), free(ds), free(dm);
}

/* quantize: noise in [-0.5, 0.5), a function of the generator only; STE rounds half away. */
static void test_quantize_train(void) {
    enum { N = 4096 };
    float *x = malloc(N * 4), *y1 = malloc(N * 4), *y2 = malloc(N * 4);
    fill(x, N, -20.0f, 20.0f);
    nne_rng a, b;
    nne_rng_seed(&a, 11);
    nne_rng_seed(&b, 11);
    nne_quantize_train_forward(N, NNE_QUANTIZE_NOISE, x, NULL, &a, y1);
    nne_quantize_train_forward(N, NNE_QUANTIZE_NOISE, x, NULL, &b, y2);
    CHECK(memcmp(y1, y2, N * 4) == 0);
    double mean = 0.0, lo = 1.0, hi = -1.0;
    for (int i = 0; i < N; i++) {
        const double u = (double)y1[i] - (double)x[i];
        mean += u / N;
        lo = fmin(lo, u), hi = fmax(hi, u);
    }
    CHECK(lo >= -0.5 - 1e-5 && hi < 0.5 + 1e-5 && fabs(mean) < 0.02 && hi - lo > 0.99);
    const float xs[6] = {0.5f, -0.5f, 1.49f, -2.5f, 2.7f, 0.2f}, ms[6] = {0, 0, 0, 0, 0.5f, 0.7f};
    const float want[6] = {1.0f, -1.0f, 1.0f, -3.0f, 2.5f, -0.3f}; /* 0.2 - 0.7 rounds to -1 */
    float ys[6];
    nne_quantize_train_forward(6, NNE_QUANTIZE_STE, xs, ms, NULL, ys);
    for (int i = 0; i < 6; i++) CHECK_NEAR(ys[i], want[i], 1e-6);
    free(x), free(y1), free(y2);
}

/* ---- MS-SSIM ---------------------------------------------------------------------------- */

/* A smooth random image in [0, 1] (sum of a few sinusoids) plus noise, so SSIM is far from
 * both 0 and 1; `inverted` flips the distortion so that cs < 0 (relu active). */
static void make_pair(int h, int w, double *x, double *y, unsigned seed, bool inverted) {
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    const double f1 = 0.05 + 0.1 * nne_test_rng_uniform(&r),
                 f2 = 0.03 + 0.1 * nne_test_rng_uniform(&r);
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            const double base = 0.5 + 0.25 * sin(f1 * i + 0.3) * cos(f2 * j) + 0.1 * sin(0.7 * j);
            const double nse = 0.15 * (nne_test_rng_uniform(&r) - 0.5);
            const size_t k = (size_t)i * w + j;
            y[k] = base;
            x[k] = inverted ? 1.0 - base + nse : base + nse + 0.05 * sin(0.2 * i);
        }
}

typedef struct ms_ctx {
    int h, w, scales;
    double *x, *y, *work;
} ms_ctx;
static double ms_loss(void *vctx) {
    ms_ctx *c = vctx;
    return nne_ms_ssim_plane_f64(c->x, c->y, c->h, c->w, c->scales, 1.0, c->work, NULL);
}

/* Central differences on `npts` pixels (corners, borders and random interior ones). */
static void check_ms_plane(int h, int w, int scales, unsigned seed, bool inverted, int npts) {
    const size_t n = (size_t)h * w;
    ms_ctx c = {h,
                w,
                scales,
                malloc(n * 8),
                malloc(n * 8),
                malloc(nne_ms_ssim_plane_work(h, w, scales) * 8)};
    double *dx = malloc(n * 8);
    make_pair(h, w, c.x, c.y, seed, inverted);
    const double v = nne_ms_ssim_plane_f64(c.x, c.y, h, w, scales, 1.0, c.work, dx);
    CHECK(v >= 0.0 && v <= 1.0);
    double max_num = 0.0, max_err = 0.0;
    for (int k = 0; k < npts; k++) {
        int i, j;
        if (k < 4) {
            i = (k & 1) ? h - 1 : 0;
            j = (k & 2) ? w - 1 : 0;
        } else if (k < 8) {
            i = (k & 1) ? h - 1 - (k & 2) / 2 : nne_test_rng_int(&g_rng, 0, h - 1);
            j = (k & 1) ? nne_test_rng_int(&g_rng, 0, w - 1) : w - 1 - (k & 2) / 2;
        } else {
            i = nne_test_rng_int(&g_rng, 0, h - 1);
            j = nne_test_rng_int(&g_rng, 0, w - 1);
        }
        const size_t q = (size_t)i * w + j;
        const double save = c.x[q], hstep = 1e-5;
        c.x[q] = save + hstep;
        const double lp = ms_loss(&c);
        c.x[q] = save - hstep;
        const double lm = ms_loss(&c);
        c.x[q] = save;
        const double num = (lp - lm) / (2 * hstep);
        max_num = fmax(max_num, fabs(num));
        max_err = fmax(max_err, fabs(num - dx[q]));
    }
    if (inverted) {
        /* One clamped term makes the whole product 0, with zero gradient everywhere. */
        double m = 0;
        for (size_t q = 0; q < n; q++) m = fmax(m, fabs(dx[q]));
        CHECK(v == 0.0 && m == 0.0 && max_num == 0.0);
        free(c.x), free(c.y), free(c.work), free(dx);
        return;
    }
    const double rel = max_err / max_num;
    printf("  ms-ssim %dx%d, %d scales: value %.6f, max |grad| %.3g, rel err %.3g\n", h, w, scales,
           v, max_num, rel);
    CHECK_MSG(rel <= MSSSIM_RTOL, "ms-ssim grad rel err %.3g", rel);
    record(scales == 5 ? "ms-ssim (5 scales)" : "ms-ssim (fewer scales)", rel);
    free(c.x), free(c.y), free(c.work), free(dx);
}

static void test_ms_ssim_grad(void) {
    check_ms_plane(163, 165, 5, 11, false, 24); /* just above the 160 px limit, odd sizes */
    check_ms_plane(45, 50, 3, 12, false, 40);   /* the smaller-crop variant */
    check_ms_plane(23, 24, 2, 13, false, 60);
    check_ms_plane(11, 13, 1, 14, false, 60);
    check_ms_plane(45, 47, 3, 15, true, 10); /* relu clamps */
}

/* The forward equals nne_ms_ssim_u8 on the same data; the float loss is 1 - the mean over
 * images and channels and its gradient is the per-plane gradient scaled by -1/(n c). */
static void test_ms_ssim_forward_matches_metrics(void) {
    const int h = 170, w = 181, c = 3;
    const size_t hw = (size_t)h * w;
    uint8_t *a = malloc(hw * c), *b = malloc(hw * c);
    double *x = malloc(hw * 8), *y = malloc(hw * 8), *tx = malloc(hw * 8), *ty = malloc(hw * 8);
    for (int ch = 0; ch < c; ch++) {
        make_pair(h, w, tx, ty, 100 + (unsigned)ch, false);
        for (size_t i = 0; i < hw; i++) {
            double vx = fmin(fmax(tx[i], 0.0), 1.0), vy = fmin(fmax(ty[i], 0.0), 1.0);
            a[i * c + ch] = (uint8_t)lround(vx * 255.0);
            b[i * c + ch] = (uint8_t)lround(vy * 255.0);
        }
    }
    double ref;
    CHECK_OK(nne_ms_ssim_u8(a, b, w, h, c, &ref));
    /* Same integer values, data range 255: the identical computation. */
    double *work = malloc(nne_ms_ssim_plane_work(h, w, 5) * 8), sum = 0.0;
    for (int ch = 0; ch < c; ch++) {
        for (size_t i = 0; i < hw; i++) {
            x[i] = a[i * c + ch];
            y[i] = b[i * c + ch];
        }
        sum += nne_ms_ssim_plane_f64(x, y, h, w, 5, 255.0, work, NULL);
    }
    printf("  ms-ssim: nne_ms_ssim_u8 %.15f, train forward %.15f (diff %.2g)\n", ref, sum / c,
           fabs(ref - sum / c));
    CHECK_NEAR(sum / c, ref, 1e-12);
    /* The float API on [0, 1] data: values/255 rounded to f32 (relative 6e-8 per sample). */
    const int n = 2;
    float *fy = malloc(hw * c * n * 4), *ft = malloc(hw * c * n * 4), *dy = malloc(hw * c * n * 4);
    for (int bi = 0; bi < n; bi++)
        for (size_t i = 0; i < hw * c; i++) {
            fy[bi * hw * c + i] = bi == 0 ? (float)a[i] / 255.0f : (float)b[i] / 255.0f;
            ft[bi * hw * c + i] = bi == 0 ? (float)b[i] / 255.0f : (float)b[i] / 255.0f;
        }
    void *scratch = malloc(nne_ms_ssim_loss_scratch_size(h, w, 0));
    double loss;
    CHECK_OK(nne_ms_ssim_loss(n, h, w, c, fy, ft, 0, scratch, &loss, dy));
    /* Image 1 is identical to its target: MS-SSIM 1, so loss = 1 - (ref + 1) / 2. */
    CHECK_NEAR(loss, 1.0 - (ref + 1.0) / 2.0, 1e-6);
    /* Gradient of one plane (image 0, channel 1) against the double plane function. */
    double *gp = malloc(hw * 8);
    for (size_t i = 0; i < hw; i++) {
        x[i] = (double)fy[i * c + 1];
        y[i] = (double)ft[i * c + 1];
    }
    nne_ms_ssim_plane_f64(x, y, h, w, 5, 1.0, work, gp);
    double maxg = 0, maxe = 0;
    for (size_t i = 0; i < hw; i++) {
        double want = -gp[i] / (n * c);
        maxg = fmax(maxg, fabs(want));
        maxe = fmax(maxe, fabs((double)dy[i * c + 1] - want));
    }
    CHECK(maxe <= 1e-6 * maxg);
    /* Identical images: gradient 0 (MS-SSIM maximal). */
    for (size_t i = hw * c; i < 2 * hw * c; i++) CHECK(fabs(dy[i]) < 1e-9);
    /* Errors. */
    CHECK_STATUS(nne_ms_ssim_loss(n, 150, 200, c, fy, ft, 5, scratch, &loss, dy), NNE_ERR_LIMIT);
    CHECK_STATUS(nne_ms_ssim_loss(n, 10, 200, c, fy, ft, 0, scratch, &loss, dy), NNE_ERR_LIMIT);
    CHECK_STATUS(nne_ms_ssim_loss(n, h, w, c, fy, ft, 6, scratch, &loss, dy), NNE_ERR_INVALID_ARG);
    CHECK(nne_ms_ssim_auto_scales(161, 200) == 5 && nne_ms_ssim_auto_scales(160, 200) == 4);
    CHECK(nne_ms_ssim_auto_scales(21, 21) == 2 && nne_ms_ssim_auto_scales(10, 50) == 0);
    free(a), free(b), free(x), free(y), free(tx), free(ty), free(work), free(fy), free(ft),
        free(dy), free(scratch), free(gp);
}

int main(void) {
    nne_test_rng_seed(&g_rng, 0x5eed);
    NNE_RUN(test_conv2d_grad);
    NNE_RUN(test_conv_transpose2d_grad);
    NNE_RUN(test_relu_prelu_grad);
    NNE_RUN(test_gdn_grad);
    NNE_RUN(test_add_mse_grad);
    NNE_RUN(test_entropy_grad);
    NNE_RUN(test_quantize_train);
    NNE_RUN(test_ms_ssim_grad);
    NNE_RUN(test_ms_ssim_forward_matches_metrics);
    printf("max relative gradient error per op (bound %g; MS-SSIM %g):\n", GRAD_RTOL, MSSSIM_RTOL);
    for (int i = 0; i < g_n_errs; i++) printf("  %-22s %.3g\n", g_errs[i].op, g_errs[i].worst);
    return nne_test_summary();
}
