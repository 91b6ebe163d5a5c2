/* Fixtures shared by the CLI tests: synthetic images and a cae-seed model file with random
 * weights, written into the test's temporary folder. Header-only (static inline) so that the
 * test-utility library keeps depending on nne_common alone. */
#ifndef NNE_TESTS_CLI_FIXTURES_H
#define NNE_TESTS_CLI_FIXTURES_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "testutil.h"

/* n RGB PNGs DIR/img00.png ... of sizes (40 + 4i) x (36 + 3i): gradients and a product
 * pattern, distinct per image. */
static inline void nne_cli_make_images(const char *dir, int n) {
    mkdir(nne_cli_tmp_path(dir), 0755);
    for (int i = 0; i < n; i++) {
        nne_image img;
        const int w = 40 + 4 * i, h = 36 + 3 * i;
        if (nne_image_alloc(&img, w, h, 3) != NNE_OK) return;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = img.data + ((size_t)y * w + x) * 3;
                p[0] = (uint8_t)(x * 5 + i * 20);
                p[1] = (uint8_t)(y * 6);
                p[2] = (uint8_t)((x * y + i) & 255);
            }
        char rel[64];
        snprintf(rel, sizeof rel, "%s/img%02d.png", dir, i);
        CHECK_OK(nne_image_save(nne_cli_tmp_path(rel), &img));
        nne_image_free(&img);
    }
}

/* cae-seed (encoder + decoder) built at h x w with conv weights U(-a, a), a = sqrt(3 /
 * fan_in), from an LCG seeded with `seed` (distinct filter norms); other constants keep the
 * builder's values. Written as `rel` in the temporary folder. */
static inline void nne_cli_make_cae_seed(const char *rel, int32_t h, int32_t w, unsigned seed) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(h, w, NNE_CAE_FULL, &g));
    if (!g) return;
    unsigned s = seed;
    for (int32_t i = 0; i < g->n_tensors; i++) {
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT || t->shape.ndim != 4) continue;
        float *d = t->data;
        const int64_t n = nne_shape_numel(&t->shape);
        const float a = sqrtf(3.0f / (float)(n / t->shape.dim[0]));
        for (int64_t k = 0; k < n; k++) {
            s = s * 1103515245u + 12345u;
            d[k] = a * ((float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
        }
    }
    CHECK_OK(nne_model_write_file(g, nne_cli_tmp_path(rel)));
    nne_graph_free(g);
}

/* True if the model files `a` and `b` (in the temporary folder) have the same constants bit
 * for bit and, when meta_prefix is not NULL, the same values for a's metadata keys that start
 * with it. */
static inline bool nne_cli_same_model(const char *a, const char *b, const char *meta_prefix) {
    nne_graph *ga = NULL, *gb = NULL;
    bool same = nne_model_read_file(nne_cli_tmp_path(a), &ga) == NNE_OK &&
                nne_model_read_file(nne_cli_tmp_path(b), &gb) == NNE_OK &&
                ga->n_tensors == gb->n_tensors;
    for (int32_t i = 0; same && i < ga->n_tensors; i++) {
        const nne_tensor *x = &ga->tensors[i], *y = &gb->tensors[i];
        if (x->kind != NNE_TENSOR_CONSTANT) continue;
        same = nne_tensor_nbytes(x) == nne_tensor_nbytes(y) &&
               memcmp(x->data, y->data, nne_tensor_nbytes(x)) == 0;
    }
    const size_t np = meta_prefix ? strlen(meta_prefix) : 0;
    for (int32_t i = 0; same && meta_prefix && i < ga->n_meta; i++)
        if (!strncmp(ga->meta[i].key, meta_prefix, np)) {
            const char *v = nne_graph_get_meta(gb, ga->meta[i].key);
            same = v && !strcmp(v, ga->meta[i].value);
        }
    nne_graph_free(ga);
    nne_graph_free(gb);
    return same;
}

#endif
