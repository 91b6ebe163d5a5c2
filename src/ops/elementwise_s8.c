/* Element-wise add and concatenation, int8 reference kernels (docs/quantization.md, 8). */
#include <assert.h>

#include "nnedge/qops.h"

/* t = rq(a - za, a_rq) + rq(b - zb, b_rq);  y = clamp(rq(t, y_rq) + zy). */
void nne_add_s8__ref(size_t count, const int8_t *a, const int8_t *b, const nne_qadd *p, int8_t *y) {
    assert(a && b && p && y);
    const nne_qoutput out = {p->mode,    1,          &p->y_rq, p->y_zero_point,
                             p->act_min, p->act_max, NULL,     0};
    for (size_t i = 0; i < count; i++) {
        /* Each term is at most 255 * 2^22 in magnitude by construction of nne_qadd_init
         * (2^19 * 255 + 1 in Q31 mode), so the int32 sum cannot overflow. */
        const int32_t t = nne_requantize(a[i] - p->a_zero_point, p->a_rq, p->mode) +
                          nne_requantize(b[i] - p->b_zero_point, p->b_rq, p->mode);
        y[i] = nne_qoutput_apply(&out, 0, t);
    }
}

/* Layout as nne_concat_f32__ref: y is, block after block, input 0's run, input 1's run, ...;
 * every run goes through nne_rescale_s8__ref. */
void nne_concat_s8__ref(size_t outer, int32_t n_inputs, const int8_t *const *xs,
                        const size_t *inner, const int32_t *x_zero_points, const nne_qoutput *outs,
                        int32_t mul, int8_t *y) {
    assert(n_inputs >= 0 && (n_inputs == 0 || (xs && inner && x_zero_points && outs)) && y);
    for (size_t o = 0; o < outer; o++)
        for (int32_t k = 0; k < n_inputs; k++) {
            if (inner[k] == 0) continue; /* xs[k] may be NULL */
            nne_rescale_s8__ref(inner[k], xs[k] + o * inner[k], x_zero_points[k], &outs[k], mul, y);
            y += inner[k];
        }
}
