/* Random convolution geometries shared by the fast-kernel tests (conv_geom.h). */
#include <string.h>

#include "conv_geom.h"

void nne_test_conv_geom_out(nne_conv2d_geom *g, bool transposed) {
    if (transposed) {
        g->oh = nne_conv_transpose_out_dim(g->ih, g->kh, g->stride_h, g->dil_h, g->pad_t, g->pad_b,
                                           g->out_pad_h);
        g->ow = nne_conv_transpose_out_dim(g->iw, g->kw, g->stride_w, g->dil_w, g->pad_l, g->pad_r,
                                           g->out_pad_w);
    } else {
        g->oh = nne_conv_out_dim(g->ih, g->kh, g->stride_h, g->dil_h, g->pad_t, g->pad_b);
        g->ow = nne_conv_out_dim(g->iw, g->kw, g->stride_w, g->dil_w, g->pad_l, g->pad_r);
    }
}

void nne_test_conv_geom_rand(nne_test_rng *r, bool transposed, nne_conv2d_geom *g) {
    for (;;) {
        memset(g, 0, sizeof *g);
        g->n = nne_test_rng_int(r, 1, 2);
        const int shape = nne_test_rng_int(r, 0, 3);
        if (shape == 0) { /* depthwise */
            g->ic = nne_test_rng_int(r, 1, 40);
            g->groups = g->ic;
            g->oc = g->ic * nne_test_rng_int(r, 1, 2);
        } else if (shape == 1) { /* grouped */
            g->groups = nne_test_rng_int(r, 2, 4);
            g->ic = g->groups * nne_test_rng_int(r, 1, 12);
            g->oc = g->groups * nne_test_rng_int(r, 1, 12);
        } else {
            g->groups = 1;
            g->ic = nne_test_rng_int(r, 1, 70);
            g->oc = nne_test_rng_int(r, 1, 70);
        }
        g->ih = nne_test_rng_int(r, 1, 11);
        g->iw = nne_test_rng_int(r, 1, 11);
        g->kh = nne_test_rng_int(r, 1, 4);
        g->kw = nne_test_rng_int(r, 1, 4);
        g->stride_h = nne_test_rng_int(r, 1, 3);
        g->stride_w = nne_test_rng_int(r, 1, 2);
        g->dil_h = nne_test_rng_int(r, 1, 2);
        g->dil_w = nne_test_rng_int(r, 1, 2);
        g->pad_t = nne_test_rng_int(r, 0, 2);
        g->pad_b = nne_test_rng_int(r, 0, 2);
        g->pad_l = nne_test_rng_int(r, 0, 2);
        g->pad_r = nne_test_rng_int(r, 0, 2);
        if (transposed) {
            g->out_pad_h = nne_test_rng_int(r, 0, g->stride_h - 1);
            g->out_pad_w = nne_test_rng_int(r, 0, g->stride_w - 1);
        }
        nne_test_conv_geom_out(g, transposed);
        if (g->oh > 0 && g->ow > 0) return;
    }
}

void nne_test_conv_geom_str(const nne_conv2d_geom *g, char *buf, size_t n) {
    snprintf(buf, n, "n%d %dx%dx%d -> %dx%dx%d k%dx%d s%dx%d d%dx%d pad %d,%d,%d,%d opad %d,%d g%d",
             g->n, g->ih, g->iw, g->ic, g->oh, g->ow, g->oc, g->kh, g->kw, g->stride_h, g->stride_w,
             g->dil_h, g->dil_w, g->pad_t, g->pad_l, g->pad_b, g->pad_r, g->out_pad_h, g->out_pad_w,
             g->groups);
}

size_t nne_test_conv_x_len(const nne_conv2d_geom *g) {
    return (size_t)g->n * g->ih * g->iw * g->ic;
}
size_t nne_test_conv_y_len(const nne_conv2d_geom *g) {
    return (size_t)g->n * g->oh * g->ow * g->oc;
}
size_t nne_test_conv_w_len(const nne_conv2d_geom *g) {
    return (size_t)g->oc * g->kh * g->kw * (g->ic / g->groups);
}
