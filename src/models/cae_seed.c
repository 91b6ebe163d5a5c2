/* The CAE paper's convolutional autoencoder ("cae-seed"), reconstructed exactly from the
 * workloads of its DPU profile (../shared/specs/dpu.md, CAE paper Table 3):
 *
 *   encoder  conv2d_1 3->32 s1, conv2d_2 32->32 s2, conv2d_3 32->64 s1, conv2d_4 64->64 s2,
 *            conv2d_5 64->32 s2; all 3x3 "valid", PReLU after 1..4, conv2d_5 linear
 *            (512x768x3 -> 62x94x32 latent).
 *   decoder  conv2d_transpose_1 32->64 s2, _2 64->64 s2, _3 64->32 s1, _4 32->32 s2,
 *            _5 32->3 s1; 3x3, no padding, output padding 0/1 chosen to land exactly on the
 *            encoder's intermediate sizes; PReLU after 1..4, the last layer linear.
 *
 * PReLU slopes are per channel. See docs/models.md. */
#include <stdio.h>
#include <string.h>

#include "nnedge/models.h"

typedef struct cae_layer {
    const char *name;
    int32_t cin, cout, stride;
    bool prelu;
} cae_layer;

static const cae_layer k_enc[5] = {
    {"conv2d_1", 3, 32, 1, true},  {"conv2d_2", 32, 32, 2, true},  {"conv2d_3", 32, 64, 1, true},
    {"conv2d_4", 64, 64, 2, true}, {"conv2d_5", 64, 32, 2, false},
};
static const cae_layer k_dec[5] = {
    {"conv2d_transpose_1", 32, 64, 2, true}, {"conv2d_transpose_2", 64, 64, 2, true},
    {"conv2d_transpose_3", 64, 32, 1, true}, {"conv2d_transpose_4", 32, 32, 2, true},
    {"conv2d_transpose_5", 32, 3, 1, false},
};

/* Spatial sizes along one axis: s[0] = input, s[k] = output of encoder layer k. */
static bool cae_sizes(int64_t in, int64_t s[6]) {
    s[0] = in;
    for (int k = 0; k < 5; k++) {
        if (s[k] < 3) return false;
        s[k + 1] = (s[k] - 3) / k_enc[k].stride + 1;
    }
    return true;
}

/* Output padding of decoder layer k (0..4) along an axis with encoder sizes s (cae_sizes):
 * what layer k adds to (in - 1) * stride + 3 to land on the encoder's size s[4 - k]. */
static int64_t dec_out_pad(const int64_t s[6], int k) {
    return s[4 - k] - ((s[5 - k] - 1) * k_dec[k].stride + 3);
}

int32_t nne_cae_seed_border(int32_t size) {
    int64_t s[6];
    if (size < 1 || !cae_sizes(size, s) || s[5] < 1) return 0;
    /* The padded rows of conv2d_transpose_4 (decoder layer 3) have no taps; the last layer
     * (3x3, stride 1, no padding) maps its input row r to output rows r .. r + 2. */
    const int64_t pad = dec_out_pad(s, 3);
    return pad > 0 ? (int32_t)(pad + 2) : 0;
}

void nne_cae_seed_fill_border(float *x, int32_t n, int32_t h, int32_t w, int32_t c) {
    const int32_t bh = nne_cae_seed_border(h), bw = nne_cae_seed_border(w);
    if ((!bh && !bw) || h <= bh || w <= bw) return;
    const size_t px = (size_t)c, row = (size_t)w * px;
    for (int32_t b = 0; b < n; b++) {
        float *img = x + (size_t)b * (size_t)h * row;
        const int32_t lx = w - 1 - bw; /* last reconstructed column */
        for (int32_t y = 0; y < h - bh; y++)
            for (int32_t xx = lx + 1; xx < w; xx++)
                memcpy(img + y * row + (size_t)xx * px, img + y * row + (size_t)lx * px,
                       px * sizeof *img);
        const int32_t ly = h - 1 - bh; /* last reconstructed row, now complete */
        for (int32_t y = ly + 1; y < h; y++)
            memcpy(img + (size_t)y * row, img + (size_t)ly * row, row * sizeof *img);
    }
}

static nne_status add_layer(nne_graph *g, const cae_layer *L, bool transpose, int32_t x,
                            int32_t out_pad_h, int32_t out_pad_w, const char *out_name,
                            int32_t *y) {
    char wname[128], bname[128], aname[128], pname[128], cname[128];
    snprintf(wname, sizeof wname, "%s.weight", L->name);
    snprintf(bname, sizeof bname, "%s.bias", L->name);
    int32_t w, b, t;
    nne_status s;
    if ((s = nne_graph_add_constant(g, wname, NNE_F32, nne_shape_4d(L->cout, 3, 3, L->cin), NULL,
                                    &w)) ||
        (s = nne_graph_add_constant(g, bname, NNE_F32, nne_shape_1d(L->cout), NULL, &b)))
        return s;
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = 3;
    p.conv.stride[0] = p.conv.stride[1] = L->stride;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad_mode = NNE_PAD_VALID;
    p.conv.groups = 1;
    p.conv.out_pad[0] = out_pad_h;
    p.conv.out_pad[1] = out_pad_w;
    int32_t ins[3] = {x, w, b};
    snprintf(cname, sizeof cname, "%s:out", L->name);
    const char *conv_out = L->prelu ? cname : out_name;
    if ((s = nne_graph_add_node(g, L->name, transpose ? NNE_OP_CONV_TRANSPOSE2D : NNE_OP_CONV2D, &p,
                                ins, 3, conv_out, &t)))
        return s;
    if (!L->prelu) {
        *y = t;
        return NNE_OK;
    }
    /* PReLU, per channel, slopes initialised to 0.25 (PyTorch's default). */
    int32_t a;
    snprintf(aname, sizeof aname, "%s.prelu.slope", L->name);
    snprintf(pname, sizeof pname, "%s.prelu", L->name);
    if ((s = nne_graph_add_constant(g, aname, NNE_F32, nne_shape_1d(L->cout), NULL, &a))) return s;
    float *slope = g->tensors[a].data;
    for (int i = 0; i < L->cout; i++) slope[i] = 0.25f;
    int32_t pin[2] = {t, a};
    memset(&p, 0, sizeof p);
    return nne_graph_add_node(g, pname, NNE_OP_PRELU, &p, pin, 2, out_name, y);
}

/* The widths of the hidden layers: widths[k] = output channels of encoder layer k (k < 5, [4]
 * = latent channels) and of decoder layer k - 5 (5 <= k < 9). */
enum { CAE_WIDTHS = 9, CAE_MAX_WIDTH = 4096 };

static nne_status build(int32_t height, int32_t width, nne_cae_part part,
                        const int32_t widths[CAE_WIDTHS], nne_graph **out) {
    *out = NULL;
    int64_t hs[6], ws[6];
    if (height < 1 || width < 1 || height > NNE_MAX_DIM || width > NNE_MAX_DIM ||
        !cae_sizes(height, hs) || !cae_sizes(width, ws) || hs[5] < 1 || ws[5] < 1)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "cae-seed: input %dx%d is too small (the encoder needs at least 21x21)",
                         (int)height, (int)width);
    if ((int)part < NNE_CAE_FULL || part > NNE_CAE_DECODER)
        return nne_error(NNE_ERR_INVALID_ARG, "cae-seed: invalid part %d", (int)part);
    static const char *const names[] = {"cae-seed", "cae-seed-encoder", "cae-seed-decoder"};
    nne_graph *g;
    nne_status s = nne_graph_create(names[part], &g);
    if (s) return s;
    int32_t x;
    char buf[64];
    if (part != NNE_CAE_DECODER) {
        if ((s = nne_graph_add_input(g, "image", NNE_F32, nne_shape_4d(1, height, width, 3), &x)))
            goto fail;
        for (int k = 0; k < 5 && !s; k++) {
            cae_layer L = k_enc[k];
            L.cin = k ? widths[k - 1] : 3;
            L.cout = widths[k];
            s = add_layer(g, &L, false, x, 0, 0,
                          k == 4 ? "latent" : (snprintf(buf, sizeof buf, "enc%d", k + 1), buf), &x);
        }
        if (s) goto fail;
        if (part == NNE_CAE_ENCODER && (s = nne_graph_mark_output(g, x))) goto fail;
    } else {
        if ((s = nne_graph_add_input(g, "latent", NNE_F32, nne_shape_4d(1, hs[5], ws[5], widths[4]),
                                     &x)))
            goto fail;
    }
    if (part != NNE_CAE_ENCODER) {
        for (int k = 0; k < 5 && !s; k++) {
            /* Decoder layer k maps size hs[5-k] to hs[4-k]. */
            int32_t oph = (int32_t)dec_out_pad(hs, k), opw = (int32_t)dec_out_pad(ws, k);
            cae_layer L = k_dec[k];
            L.cin = widths[k ? 4 + k : 4];
            L.cout = k < 4 ? widths[5 + k] : 3;
            s = add_layer(
                g, &L, true, x, oph, opw,
                k == 4 ? "reconstruction" : (snprintf(buf, sizeof buf, "dec%d", k + 1), buf), &x);
        }
        if (s) goto fail;
        if ((s = nne_graph_mark_output(g, x))) goto fail;
    }
    if ((s = nne_graph_set_meta(g, "model", "cae-seed")) ||
        (s = nne_graph_set_meta(g, "model.part",
                                part == NNE_CAE_FULL      ? "full"
                                : part == NNE_CAE_ENCODER ? "encoder"
                                                          : "decoder")) ||
        (s = nne_graph_set_meta(g, "model.source", "CAE paper (Table 3), docs/models.md")))
        goto fail;
    if ((s = nne_graph_infer(g))) goto fail;
    *out = g;
    return NNE_OK;
fail:
    nne_graph_free(g);
    return s;
}

nne_status nne_model_cae_seed(int32_t height, int32_t width, nne_cae_part part, nne_graph **out) {
    return nne_model_cae_seed_like(NULL, height, width, part, out);
}

/* Output channels of layer `name` in `model` (dim 0 of its weight), or `dflt` if absent. */
static int32_t layer_width(const nne_graph *model, const char *name, int32_t dflt) {
    char w[64];
    snprintf(w, sizeof w, "%s.weight", name);
    const int32_t t = model ? nne_graph_find_tensor(model, w) : -1;
    if (t < 0 || model->tensors[t].shape.ndim != 4) return dflt;
    return (int32_t)model->tensors[t].shape.dim[0];
}

nne_status nne_model_cae_seed_like(const nne_graph *model, int32_t height, int32_t width,
                                   nne_cae_part part, nne_graph **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "cae-seed: NULL output");
    *out = NULL;
    int32_t widths[CAE_WIDTHS];
    for (int k = 0; k < CAE_WIDTHS; k++) {
        const cae_layer *L = k < 5 ? &k_enc[k] : &k_dec[k - 5];
        widths[k] = layer_width(model, L->name, L->cout);
        if (widths[k] < 1 || widths[k] > CAE_MAX_WIDTH)
            return nne_error(NNE_ERR_LIMIT, "cae-seed: layer %s has %d channels (1..%d)", L->name,
                             (int)widths[k], CAE_MAX_WIDTH);
    }
    /* A decoder-only model gives the latent width as its first layer's input channels. */
    const int32_t t1 = model ? nne_graph_find_tensor(model, "conv2d_transpose_1.weight") : -1;
    if (model && nne_graph_find_tensor(model, "conv2d_5.weight") < 0 && t1 >= 0 &&
        model->tensors[t1].shape.ndim == 4) {
        const int64_t c = model->tensors[t1].shape.dim[3];
        if (c < 1 || c > CAE_MAX_WIDTH)
            return nne_error(NNE_ERR_LIMIT, "cae-seed: latent of %lld channels (1..%d)",
                             (long long)c, CAE_MAX_WIDTH);
        widths[4] = (int32_t)c;
    }
    return build(height, width, part, widths, out);
}

static const char *const k_builtin[] = {"cae-seed", "cae-seed-encoder", "cae-seed-decoder", NULL};

const char *const *nne_builtin_model_names(void) { return k_builtin; }

const char *const *nne_builtin_model_parts(const char *name) {
    static const char *const cae_parts[] = {"cae-seed-encoder", "cae-seed-decoder", NULL};
    if (name && strcmp(name, "cae-seed") == 0) return cae_parts;
    return NULL;
}

nne_status nne_builtin_model(const char *name, nne_graph **out) {
    *out = NULL;
    for (int i = 0; k_builtin[i]; i++)
        if (name && strcmp(name, k_builtin[i]) == 0)
            return nne_model_cae_seed(512, 768, (nne_cae_part)i, out);
    return nne_error(NNE_ERR_NOT_FOUND, "unknown built-in model '%s'", name ? name : "");
}
