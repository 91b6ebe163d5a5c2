/* Random convolution geometries for the fast-kernel tests (tests/ops/test_conv_fast.c,
 * tests/ops/test_conv_bf16.c). */
#ifndef NNE_TEST_CONV_GEOM_H
#define NNE_TEST_CONV_GEOM_H

#include "nnedge/ops.h"
#include "testutil.h"

/* Set g->oh, g->ow from the other fields (nne_conv_out_dim / nne_conv_transpose_out_dim). */
void nne_test_conv_geom_out(nne_conv2d_geom *g, bool transposed);
/* A valid random geometry (transposed or not): batch 1..2; depthwise, grouped (2..4 groups)
 * or groups 1 with 1..70 channels; input 1..11 per side; kernels 1..4; strides 1..3 x 1..2;
 * dilation 1..2; padding 0..2 per side; output padding below the stride. */
void nne_test_conv_geom_rand(nne_test_rng *r, bool transposed, nne_conv2d_geom *g);
/* One line describing g, for failure messages. */
void nne_test_conv_geom_str(const nne_conv2d_geom *g, char *buf, size_t n);
/* Elements of x [n][ih][iw][ic], y [n][oh][ow][oc] and w [oc][kh][kw][ic/groups]. */
size_t nne_test_conv_x_len(const nne_conv2d_geom *g);
size_t nne_test_conv_y_len(const nne_conv2d_geom *g);
size_t nne_test_conv_w_len(const nne_conv2d_geom *g);

#endif
