/* Learned image codecs of Balle et al. 2018 ("Variational image compression with a scale
 * hyperprior"), with CompressAI's layer choices (bmshj2018-factorized, bmshj2018-hyperprior)
 * and the mean-scale hyperprior of Minnen et al. 2018 without context model (CompressAI's
 * mbt2018-mean), at configurable channel counts N and M. docs/models.md, "Learned codecs".
 *
 *   g_a  conv5x5 s2 (3->N) GDN, conv5x5 s2 (N->N) GDN, conv5x5 s2 (N->N) GDN, conv5x5 s2 (N->M)
 *   g_s  the mirror with 5x5 s2 transposed convolutions and IGDN (M->N ... N->3)
 *   h_a  scale: |y| -> conv3x3 s1 (M->N) relu, conv5x5 s2 (N->N) relu, conv5x5 s2 (N->N)
 *        mean-scale: y -> the same with PReLU instead of relu
 *   h_s  scale: convT5x5 s2 (N->N) relu, convT5x5 s2 (N->N) relu, conv3x3 s1 (N->M) relu
 *        mean-scale: convT5x5 s2 (N->N) prelu, convT5x5 s2 (N->N) prelu, then two conv3x3
 *        s1 (N->M) heads: scales (relu) and means (linear); CompressAI's single 2M-channel
 *        head split in two, which is the same function
 *
 * All convolutions are zero-padded "same" (pad 2 for 5x5, 1 for 3x3; transposed ones with
 * output padding 1), so every stride-2 layer halves or doubles a size exactly: the image
 * size must be a multiple of 16 (factorized) or 64 (hyperpriors); codecs pad to it. */
#include <stdio.h>
#include <string.h>

#include "nnedge/models.h"

typedef struct builder {
    nne_graph *g;
    nne_status st;
} builder;

static nne_op_params conv_p(int k, int stride, bool transpose) {
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = k;
    p.conv.stride[0] = p.conv.stride[1] = stride;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad[0] = p.conv.pad[1] = p.conv.pad[2] = p.conv.pad[3] = k / 2;
    p.conv.pad_mode = NNE_PAD_EXPLICIT;
    p.conv.groups = 1;
    if (transpose) p.conv.out_pad[0] = p.conv.out_pad[1] = stride - 1;
    return p;
}

/* name.weight [cout][k][k][cin] and name.bias [cout]; the node's output is `out`. */
static int32_t conv(builder *b, const char *name, int32_t x, int32_t cin, int32_t cout, int k,
                    int stride, bool transpose, const char *out) {
    if (b->st) return -1;
    char wn[NNE_MAX_NAME + 1], bn[NNE_MAX_NAME + 1];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int32_t w, bias, y = -1;
    nne_op_params p = conv_p(k, stride, transpose);
    if ((b->st =
             nne_graph_add_constant(b->g, wn, NNE_F32, nne_shape_4d(cout, k, k, cin), NULL, &w)) ||
        (b->st = nne_graph_add_constant(b->g, bn, NNE_F32, nne_shape_1d(cout), NULL, &bias)) ||
        (b->st = nne_graph_add_node(b->g, name, transpose ? NNE_OP_CONV_TRANSPOSE2D : NNE_OP_CONV2D,
                                    &p, (int32_t[]){x, w, bias}, 3, out, &y)))
        return -1;
    return y;
}

/* One-input element-wise node with optional per-channel parameters (GDN beta/gamma, PReLU
 * slope), added as constants name.<pname>. Values are placeholders: nne_train_init_params
 * or a model file sets them. */
static int32_t unary(builder *b, const char *name, nne_op_type op, int32_t x, int32_t c,
                     const char *out) {
    if (b->st) return -1;
    char n1[NNE_MAX_NAME + 1], n2[NNE_MAX_NAME + 1];
    int32_t ins[3] = {x, -1, -1}, n_in = 1, y = -1;
    nne_op_params p;
    memset(&p, 0, sizeof p);
    if (op == NNE_OP_GDN || op == NNE_OP_IGDN) {
        snprintf(n1, sizeof n1, "%s.beta", name);
        snprintf(n2, sizeof n2, "%s.gamma", name);
        if ((b->st = nne_graph_add_constant(b->g, n1, NNE_F32, nne_shape_1d(c), NULL, &ins[1])) ||
            (b->st = nne_graph_add_constant(b->g, n2, NNE_F32, nne_shape_2d(c, c), NULL, &ins[2])))
            return -1;
        n_in = 3;
    } else if (op == NNE_OP_PRELU) {
        snprintf(n1, sizeof n1, "%s.slope", name);
        if ((b->st = nne_graph_add_constant(b->g, n1, NNE_F32, nne_shape_1d(c), NULL, &ins[1])))
            return -1;
        n_in = 2;
    }
    if ((b->st = nne_graph_add_node(b->g, name, op, &p, ins, n_in, out, &y))) return -1;
    return y;
}

static int32_t g_a(builder *b, int32_t x, int32_t n, int32_t m) {
    x = conv(b, "g_a.0", x, 3, n, 5, 2, false, "g_a.0:out");
    x = unary(b, "g_a.1", NNE_OP_GDN, x, n, "g_a.1:out");
    x = conv(b, "g_a.2", x, n, n, 5, 2, false, "g_a.2:out");
    x = unary(b, "g_a.3", NNE_OP_GDN, x, n, "g_a.3:out");
    x = conv(b, "g_a.4", x, n, n, 5, 2, false, "g_a.4:out");
    x = unary(b, "g_a.5", NNE_OP_GDN, x, n, "g_a.5:out");
    return conv(b, "g_a.6", x, n, m, 5, 2, false, "y");
}

static int32_t g_s(builder *b, int32_t x, int32_t n, int32_t m) {
    x = conv(b, "g_s.0", x, m, n, 5, 2, true, "g_s.0:out");
    x = unary(b, "g_s.1", NNE_OP_IGDN, x, n, "g_s.1:out");
    x = conv(b, "g_s.2", x, n, n, 5, 2, true, "g_s.2:out");
    x = unary(b, "g_s.3", NNE_OP_IGDN, x, n, "g_s.3:out");
    x = conv(b, "g_s.4", x, n, n, 5, 2, true, "g_s.4:out");
    x = unary(b, "g_s.5", NNE_OP_IGDN, x, n, "g_s.5:out");
    return conv(b, "g_s.6", x, n, 3, 5, 2, true, "x_hat");
}

/* y -> z. */
static int32_t h_a(builder *b, int32_t y, const nne_rdmodel_config *c) {
    const bool ms = c->kind == NNE_RD_MEAN_SCALE;
    const nne_op_type act = ms ? NNE_OP_PRELU : NNE_OP_RELU;
    int32_t x = ms ? y : unary(b, "h_a.abs", NNE_OP_ABS, y, c->m, "h_a.abs:out");
    x = conv(b, "h_a.0", x, c->m, c->n, 3, 1, false, "h_a.0:out");
    x = unary(b, "h_a.1", act, x, c->n, "h_a.1:out");
    x = conv(b, "h_a.2", x, c->n, c->n, 5, 2, false, "h_a.2:out");
    x = unary(b, "h_a.3", act, x, c->n, "h_a.3:out");
    return conv(b, "h_a.4", x, c->n, c->n, 5, 2, false, "z");
}

/* z_hat -> scales (and means for mean-scale; *means = -1 otherwise). */
static int32_t h_s(builder *b, int32_t z, const nne_rdmodel_config *c, int32_t *means) {
    const bool ms = c->kind == NNE_RD_MEAN_SCALE;
    const nne_op_type act = ms ? NNE_OP_PRELU : NNE_OP_RELU;
    int32_t x = conv(b, "h_s.0", z, c->n, c->n, 5, 2, true, "h_s.0:out");
    x = unary(b, "h_s.1", act, x, c->n, "h_s.1:out");
    x = conv(b, "h_s.2", x, c->n, c->n, 5, 2, true, "h_s.2:out");
    x = unary(b, "h_s.3", act, x, c->n, "h_s.3:out");
    *means = ms ? conv(b, "h_s.means", x, c->n, c->m, 3, 1, false, "means") : -1;
    const int32_t s = conv(b, "h_s.4", x, c->n, c->m, 3, 1, false, "h_s.4:out");
    return unary(b, "h_s.5", NNE_OP_RELU, s, c->m, "scales");
}

static int32_t quantize(builder *b, const char *name, int32_t x, int32_t means,
                        nne_quantize_train_mode mode, const char *out) {
    if (b->st) return -1;
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.quantize.train_mode = mode;
    int32_t y = -1;
    b->st = nne_graph_add_node(b->g, name, NNE_OP_QUANTIZE, &p, (int32_t[]){x, means},
                               means >= 0 ? 2 : 1, out, &y);
    return y;
}

/* The factorized density of z (or of y for the factorized model): likelihoods of x. */
static int32_t factorized(builder *b, int32_t x, int32_t c, const char *out) {
    if (b->st) return -1;
    int32_t q, y = -1;
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.entropy.lik_min = NNE_RD_LIK_MIN;
    if ((b->st = nne_graph_add_constant(b->g, "entropy_bottleneck.params", NNE_F32,
                                        nne_shape_2d(c, NNE_FACT_PARAMS), NULL, &q)) ||
        (b->st = nne_graph_add_node(b->g, "entropy_bottleneck", NNE_OP_FACTORIZED_LIKELIHOOD, &p,
                                    (int32_t[]){x, q}, 2, out, &y)))
        return -1;
    return y;
}

static const char *const k_kind_names[] = {"bmshj2018-factorized", "bmshj2018-hyperprior",
                                           "mbt2018-mean"};
static const char *const k_part_names[] = {"train", "g_a", "g_s", "h_a", "h_s", "refine"};

const char *nne_rdmodel_kind_name(nne_rdmodel_kind k) {
    return (int)k >= 0 && k <= NNE_RD_MEAN_SCALE ? k_kind_names[k] : NULL;
}

nne_status nne_rdmodel_kind_from_name(const char *name, nne_rdmodel_kind *k) {
    for (int i = 0; i <= NNE_RD_MEAN_SCALE; i++)
        if (name && strcmp(name, k_kind_names[i]) == 0) {
            *k = (nne_rdmodel_kind)i;
            return NNE_OK;
        }
    return nne_error(NNE_ERR_NOT_FOUND, "unknown learned-codec model '%s'", name ? name : "");
}

int32_t nne_rdmodel_alignment(nne_rdmodel_kind k) { return k == NNE_RD_FACTORIZED ? 16 : 64; }

nne_status nne_model_rd(const nne_rdmodel_config *c, int32_t batch, int32_t height, int32_t width,
                        nne_rd_part part, nne_graph **out) {
    *out = NULL;
    if (!c || (int)c->kind < 0 || c->kind > NNE_RD_MEAN_SCALE)
        return nne_error(NNE_ERR_INVALID_ARG, "rd model: invalid kind");
    if (c->n < 1 || c->m < 1 || c->n > 1024 || c->m > 1024)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "rd model: channel counts N=%d M=%d outside [1, 1024]", (int)c->n,
                         (int)c->m);
    if ((int)part < 0 || part > NNE_RD_REFINE ||
        (c->kind == NNE_RD_FACTORIZED && part > NNE_RD_SYNTHESIS && part != NNE_RD_REFINE))
        return nne_error(NNE_ERR_INVALID_ARG, "rd model %s: invalid part %d", k_kind_names[c->kind],
                         (int)part);
    if (c->train_mode != NNE_QUANTIZE_NOISE && c->train_mode != NNE_QUANTIZE_STE)
        return nne_error(NNE_ERR_INVALID_ARG, "rd model: invalid train_mode %d",
                         (int)c->train_mode);
    const int32_t align = nne_rdmodel_alignment(c->kind);
    if (batch < 1 || height < align || width < align || height % align || width % align ||
        height > NNE_MAX_DIM || width > NNE_MAX_DIM)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "rd model %s: input %dx%d must be a positive multiple of %d (pad it)",
                         k_kind_names[c->kind], (int)height, (int)width, (int)align);
    char gname[96];
    snprintf(gname, sizeof gname, "%s.%s", k_kind_names[c->kind], k_part_names[part]);
    builder b = {NULL, NNE_OK};
    if ((b.st = nne_graph_create(gname, &b.g))) return b.st;
    const bool hyper = c->kind != NNE_RD_FACTORIZED;
    const bool mixed = c->mixed && c->train_mode == NNE_QUANTIZE_NOISE;
    const int64_t yh = height / 16, yw = width / 16, zh = height / 64, zw = width / 64;
    int32_t x = -1, means = -1;
    switch (part) {
    case NNE_RD_TRAIN:
    case NNE_RD_REFINE: {
        int32_t y = -1;
        if (part == NNE_RD_TRAIN) {
            b.st = nne_graph_add_input(b.g, "image", NNE_F32,
                                       nne_shape_4d(batch, height, width, 3), &x);
            y = g_a(&b, x, c->n, c->m);
        } else {
            b.st = nne_graph_add_input(b.g, "y", NNE_F32, nne_shape_4d(batch, yh, yw, c->m), &y);
        }
        int32_t lik_z = -1, scales = -1;
        if (hyper) {
            const int32_t z = h_a(&b, y, c);
            const int32_t z_hat = quantize(&b, "quantize_z", z, -1, c->train_mode, "z_hat");
            lik_z = factorized(&b, z_hat, c->n, "likelihoods_z");
            /* mixed: h_s gets round(z), as when decoding */
            scales = h_s(&b,
                         mixed ? quantize(&b, "quantize_z_ste", z, -1, NNE_QUANTIZE_STE, "z_ste")
                               : z_hat,
                         c, &means);
        }
        const int32_t y_hat = quantize(&b, "quantize_y", y, means, c->train_mode, "y_hat");
        const int32_t x_hat =
            g_s(&b, mixed ? quantize(&b, "quantize_y_ste", y, means, NNE_QUANTIZE_STE, "y_ste") : y_hat,
                c->n, c->m);
        int32_t lik_y = -1;
        if (hyper) {
            nne_op_params p;
            memset(&p, 0, sizeof p);
            p.entropy.lik_min = NNE_RD_LIK_MIN;
            p.entropy.scale_min = NNE_RD_SCALE_MIN;
            if (!b.st)
                b.st = nne_graph_add_node(b.g, "gaussian_conditional", NNE_OP_GAUSSIAN_LIKELIHOOD,
                                          &p, (int32_t[]){y_hat, scales, means}, means >= 0 ? 3 : 2,
                                          "likelihoods_y", &lik_y);
        } else {
            lik_y = factorized(&b, y_hat, c->m, "likelihoods_y");
        }
        if (!b.st) b.st = nne_graph_mark_output(b.g, x_hat);
        if (!b.st) b.st = nne_graph_mark_output(b.g, lik_y);
        if (!b.st && hyper) b.st = nne_graph_mark_output(b.g, lik_z);
        break;
    }
    case NNE_RD_ANALYSIS:
        b.st =
            nne_graph_add_input(b.g, "image", NNE_F32, nne_shape_4d(batch, height, width, 3), &x);
        x = g_a(&b, x, c->n, c->m);
        if (!b.st) b.st = nne_graph_mark_output(b.g, x);
        break;
    case NNE_RD_SYNTHESIS:
        b.st = nne_graph_add_input(b.g, "y_hat", NNE_F32, nne_shape_4d(batch, yh, yw, c->m), &x);
        x = g_s(&b, x, c->n, c->m);
        if (!b.st) b.st = nne_graph_mark_output(b.g, x);
        break;
    case NNE_RD_HYPER_ANALYSIS:
        b.st = nne_graph_add_input(b.g, "y", NNE_F32, nne_shape_4d(batch, yh, yw, c->m), &x);
        x = h_a(&b, x, c);
        if (!b.st) b.st = nne_graph_mark_output(b.g, x);
        break;
    case NNE_RD_HYPER_SYNTHESIS:
        b.st = nne_graph_add_input(b.g, "z_hat", NNE_F32, nne_shape_4d(batch, zh, zw, c->n), &x);
        x = h_s(&b, x, c, &means);
        if (!b.st) b.st = nne_graph_mark_output(b.g, x);
        if (!b.st && means >= 0) b.st = nne_graph_mark_output(b.g, means);
        break;
    }
    char num[32];
    if (!b.st) b.st = nne_graph_set_meta(b.g, "model", k_kind_names[c->kind]);
    if (!b.st) b.st = nne_graph_set_meta(b.g, "model.part", k_part_names[part]);
    snprintf(num, sizeof num, "%d", (int)c->n);
    if (!b.st) b.st = nne_graph_set_meta(b.g, "model.N", num);
    snprintf(num, sizeof num, "%d", (int)c->m);
    if (!b.st) b.st = nne_graph_set_meta(b.g, "model.M", num);
    if (!b.st)
        b.st = nne_graph_set_meta(b.g, "model.source",
                                  "Balle et al. 2018 / Minnen et al. 2018, docs/models.md");
    if (!b.st) b.st = nne_graph_infer(b.g);
    if (b.st) {
        nne_graph_free(b.g);
        return b.st;
    }
    *out = b.g;
    return NNE_OK;
}
