/* Test hooks of src/train/conv_gemm.c (not part of the public API). */
#ifndef NNE_TRAIN_CONV_GEMM_PRIVATE_H
#define NNE_TRAIN_CONV_GEMM_PRIVATE_H

#include <stddef.h>

/* Set the target im2col tile size in floats (0 = the default, 64 Ki). Process-wide; for
 * tests only, before any scratch is sized and while no convolution runs. */
void nne_conv_gemm_set_tile_floats(size_t floats);

#endif
