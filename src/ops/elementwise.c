/* Element-wise add and concatenation, f32 reference kernels. */
#include <assert.h>
#include <string.h>

#include "nnedge/ops.h"

/* y = a + b over `count` elements; y may alias a and/or b. */
void nne_add_f32__ref(size_t count, const float *a, const float *b, float *y) {
    assert(a && b && y);
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

/* y is `outer` blocks of sum_k inner[k] elements; block o is
 *   [ xs[0][o*inner[0] .. (o+1)*inner[0]) | xs[1][o*inner[1] ..) | ... ].
 * E.g. NHWC channel concat: outer = N*H*W, inner[k] = C_k; concat along H of NHWC:
 * outer = N, inner[k] = H_k*W*C. y must not alias any input. */
void nne_concat_f32__ref(size_t outer, int32_t n_inputs, const float *const *xs,
                         const size_t *inner, float *y) {
    assert(n_inputs >= 0 && (n_inputs == 0 || (xs && inner)) && y);
    size_t block = 0; /* elements of y per outer index */
    for (int32_t k = 0; k < n_inputs; k++) block += inner[k];
    size_t off = 0; /* offset of input k's run inside a block */
    for (int32_t k = 0; k < n_inputs; k++) {
        const size_t len = inner[k];
        if (len == 0) continue;
        assert(xs[k]);
        for (size_t o = 0; o < outer; o++)
            memcpy(y + o * block + off, xs[k] + o * len, len * sizeof(float));
        off += len;
    }
}
