/* Starting one learned codec from another: nne_model_copy_weights_matching and the widening
 * copy nne_model_copy_weights_widen (net2net), on small mbt2018-mean graphs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/backend.h"
#include "nnedge/models.h"
#include "nnedge/train.h"
#include "testutil.h"

static nne_graph *mbt(int32_t n, int32_t m, nne_rd_part part, uint64_t seed) {
    const nne_rdmodel_config c = {NNE_RD_MEAN_SCALE, n, m, NNE_QUANTIZE_NOISE, false};
    nne_graph *g = NULL;
    CHECK_OK(nne_model_rd(&c, 1, 64, 64, part, &g));
    if (g && part == NNE_RD_TRAIN) CHECK_OK(nne_train_init_params(g, seed));
    return g;
}

static const nne_tensor *tensor(const nne_graph *g, const char *name) {
    const int32_t i = nne_graph_find_tensor(g, name);
    CHECK_MSG(i >= 0, "no tensor %s", name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

/* Element of a 4-D OHWI tensor. */
static float at4(const nne_tensor *t, int64_t o, int64_t y, int64_t x, int64_t i) {
    const int64_t *d = t->shape.dim;
    return ((const float *)t->data)[((o * d[1] + y) * d[2] + x) * d[3] + i];
}

/* Run part `part` of (n, m) with src's or dst's weights on the same input; returns output 0. */
static float *run_part(const nne_graph *weights, int32_t n, int32_t m, nne_rd_part part,
                       const float *x, size_t nx, size_t *ny) {
    nne_graph *g = mbt(n, m, part, 0);
    float *y = NULL;
    nne_session *s = NULL;
    if (!g) return NULL;
    CHECK_OK(nne_model_copy_weights(g, weights));
    if (nne_session_create(g, nne_backend_cpu_ref(), &s) != NNE_OK) goto out;
    const nne_tensor *in = nne_session_input_tensor(s, 0), *out = nne_session_output_tensor(s, 0);
    CHECK((size_t)nne_shape_numel(&in->shape) == nx);
    *ny = (size_t)nne_shape_numel(&out->shape);
    y = malloc(*ny * sizeof *y);
    CHECK_OK(nne_session_set_input_f32(s, 0, x, nx));
    CHECK_OK(nne_session_run(s));
    CHECK_OK(nne_session_get_output_f32(s, 0, y, *ny));
out:
    nne_session_free(s);
    nne_graph_free(g);
    return y;
}

/* M 6 -> 10 (N 4): the shared tensors are copied, the grown ones keep src in their leading
 * block, new output channels keep dst's initialisation, new conv input channels are 0; and
 * g_s and h_a then compute src's function of the old channels whatever the new ones hold. */
static void test_widen_latent(void) {
    nne_graph *src = mbt(4, 6, NNE_RD_TRAIN, 1), *dst = mbt(4, 10, NNE_RD_TRAIN, 2),
              *fresh = mbt(4, 10, NNE_RD_TRAIN, 2);
    if (!src || !dst || !fresh) goto out;
    int32_t copied = -1, widened = -1, total = -1;
    CHECK_OK(nne_model_copy_weights_widen(dst, src, &copied, &widened, &total));
    /* Widened: g_a.6 weight and bias, h_a.0 weight, h_s.means and h_s.4 weights and biases,
     * g_s.0 weight (the biases of h_a.0 and g_s.0 are per output channel, N). */
    CHECK_MSG(widened == 8, "widened %d", (int)widened);
    CHECK(copied + widened == total); /* every constant has a namesake of the same rank */
    const nne_tensor *s6 = tensor(src, "g_a.6.weight"), *d6 = tensor(dst, "g_a.6.weight"),
                     *f6 = tensor(fresh, "g_a.6.weight");
    if (s6 && d6 && f6) {
        CHECK(d6->shape.dim[0] == 10 && s6->shape.dim[0] == 6);
        bool ok_old = true, ok_new = true;
        for (int64_t o = 0; o < 10; o++)
            for (int64_t i = 0; i < 4; i++) {
                const float v = at4(d6, o, 2, 3, i);
                if (o < 6)
                    ok_old &= v == at4(s6, o, 2, 3, i);
                else
                    ok_new &= v == at4(f6, o, 2, 3, i) && v != 0.0f;
            }
        CHECK(ok_old && ok_new);
    }
    const char *readers[2] = {"h_a.0.weight", "g_s.0.weight"};
    for (int r = 0; r < 2; r++) {
        const nne_tensor *st = tensor(src, readers[r]), *dt = tensor(dst, readers[r]);
        if (!st || !dt) continue;
        bool ok = dt->shape.dim[3] == 10 && st->shape.dim[3] == 6;
        for (int64_t o = 0; o < dt->shape.dim[0]; o++)
            for (int64_t i = 0; i < 10; i++)
                ok &= at4(dt, o, 1, 1, i) == (i < 6 ? at4(st, o, 1, 1, i) : 0.0f);
        CHECK_MSG(ok, "%s: leading input channels from src, new ones 0", readers[r]);
    }
    const nne_tensor *sg = tensor(src, "g_s.1.gamma"), *dg = tensor(dst, "g_s.1.gamma");
    if (sg && dg) CHECK(memcmp(sg->data, dg->data, nne_tensor_nbytes(sg)) == 0);

    /* g_s (y -> image) and h_a (y -> z) on a latent whose first 6 channels are src's: the new
     * channels hold random values and change nothing. */
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 9);
    const size_t px = 4 * 4; /* 64x64 image: 4x4 latent */
    float *y6 = malloc(px * 6 * sizeof *y6), *y10 = malloc(px * 10 * sizeof *y10);
    for (size_t p = 0; p < px; p++)
        for (int c = 0; c < 10; c++) {
            const float v = (float)(6.0 * nne_test_rng_uniform(&rng) - 3.0);
            y10[p * 10 + c] = v;
            if (c < 6) y6[p * 6 + c] = v;
        }
    const nne_rd_part parts[2] = {NNE_RD_SYNTHESIS, NNE_RD_HYPER_ANALYSIS};
    for (int k = 0; k < 2; k++) {
        size_t na = 0, nb = 0;
        float *a = run_part(src, 4, 6, parts[k], y6, px * 6, &na);
        float *b = run_part(dst, 4, 10, parts[k], y10, px * 10, &nb);
        if (a && b && na == nb) {
            double worst = 0.0;
            for (size_t i = 0; i < na; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
            CHECK_MSG(worst <= 1e-5, "part %d: widened output differs by %g", (int)parts[k], worst);
        } else {
            CHECK(a && b && na == nb);
        }
        free(a), free(b);
    }
    free(y6), free(y10);

    /* Narrower destinations and other ranks are left alone, as by the matching copy. */
    nne_graph *narrow = mbt(4, 6, NNE_RD_TRAIN, 3), *wide = mbt(4, 10, NNE_RD_TRAIN, 4);
    if (narrow && wide) {
        CHECK_OK(nne_model_copy_weights_widen(narrow, wide, &copied, &widened, &total));
        int32_t copied_m = -1, total_m = -1;
        CHECK_OK(nne_model_copy_weights_matching(narrow, wide, &copied_m, &total_m));
        CHECK(widened == 0 && copied == copied_m && total == total_m && copied < total);
    }
    nne_graph_free(narrow), nne_graph_free(wide);
    CHECK_STATUS(nne_model_copy_weights_widen(NULL, src, NULL, NULL, NULL), NNE_ERR_INVALID_ARG);
out:
    nne_graph_free(src), nne_graph_free(dst), nne_graph_free(fresh);
}

/* x [1][4][4][ic] -> conv 1x1, 4 outputs, groups 2, weight "w" [4][1][1][ic / 2] filled with
 * `v`. */
static nne_graph *grouped(int64_t ic, float v) {
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("grouped", &g));
    if (!g) return NULL;
    float w[4 * 8];
    for (int i = 0; i < 4 * 8; i++) w[i] = v;
    int32_t in[3] = {-1, -1, -1}, out = -1;
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = 1;
    p.conv.stride[0] = p.conv.stride[1] = 1;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad_mode = NNE_PAD_EXPLICIT;
    p.conv.groups = 2;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 4, 4, ic), &in[0]));
    CHECK_OK(nne_graph_add_constant(g, "w", NNE_F32, nne_shape_4d(4, 1, 1, ic / 2), w, &in[1]));
    CHECK_OK(nne_graph_add_node(g, "conv", NNE_OP_CONV2D, &p, in, 2, "y", &out));
    return g;
}

/* A grouped convolution's weight holds each group's input channels: a leading-block copy
 * would mix groups, so widening leaves it (it is neither copied nor widened). */
static void test_widen_grouped(void) {
    nne_graph *src = grouped(4, 1.0f), *dst = grouped(6, 2.0f);
    if (src && dst) {
        int32_t copied = -1, widened = -1, total = -1;
        CHECK_OK(nne_model_copy_weights_widen(dst, src, &copied, &widened, &total));
        CHECK(copied == 0 && widened == 0 && total == 1);
        const nne_tensor *w = tensor(dst, "w");
        if (w) CHECK(((const float *)w->data)[0] == 2.0f);
    }
    nne_graph_free(src), nne_graph_free(dst);
}

int main(void) {
    NNE_RUN(test_widen_latent);
    NNE_RUN(test_widen_grouped);
    return nne_test_summary();
}
