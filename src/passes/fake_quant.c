/* Lower-precision weight formats simulated in f32 (nne_fake_quantize_weights): QuTiBench's
 * FP16 / INT4 / INT2 and INT8 weights alone, for accuracy studies (docs/quantization.md,
 * section 11). */
#include <stdio.h>
#include <string.h>

#include "nnedge/passes.h"
#include "nnedge/qops.h"

static const char *const k_names[] = {"fp16", "int8", "int4", "int2"};
static const int k_bits[] = {16, 8, 4, 2};

const char *nne_wformat_name(nne_wformat f) {
    return (unsigned)f < sizeof k_names / sizeof *k_names ? k_names[f] : NULL;
}

nne_status nne_wformat_from_name(const char *name, nne_wformat *f) {
    for (int i = 0; name && i < (int)(sizeof k_names / sizeof *k_names); i++)
        if (!strcmp(name, k_names[i])) {
            *f = (nne_wformat)i;
            return NNE_OK;
        }
    return nne_error(NNE_ERR_INVALID_ARG, "unknown weight format '%s' (fp16, int8, int4, int2)",
                     name ? name : "");
}

static bool is_mac(nne_op_type op) {
    return op == NNE_OP_CONV2D || op == NNE_OP_CONV_TRANSPOSE2D || op == NNE_OP_DENSE;
}

nne_status nne_fake_quantize_weights(nne_graph *g, nne_wformat f, int64_t *storage_bytes) {
    if (!g || !nne_wformat_name(f))
        return nne_error(NNE_ERR_INVALID_ARG, "fake quantization: no graph or bad format %d",
                         (int)f);
    for (int32_t t = 0; t < g->n_tensors; t++)
        if (g->tensors[t].kind == NNE_TENSOR_CONSTANT && g->tensors[t].dtype != NNE_F32)
            return nne_error(NNE_ERR_UNSUPPORTED,
                             "fake quantization: constant '%s' is %s; it needs an f32 model",
                             g->tensors[t].name, nne_dtype_name(g->tensors[t].dtype));
    const int bits = k_bits[f];
    /* Which constants are weights of a MAC layer (rounded to `bits` for the integer formats). */
    bool *weight = nne_calloc((size_t)g->n_tensors + 1, sizeof *weight);
    if (!weight) return NNE_ERR_NOMEM;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        if (is_mac(n->op) && n->n_inputs > 1 && n->inputs[1] >= 0 &&
            g->tensors[n->inputs[1]].kind == NNE_TENSOR_CONSTANT)
            weight[n->inputs[1]] = true;
    }
    nne_status s = NNE_OK;
    int64_t bytes = 0;
    for (int32_t t = 0; t < g->n_tensors && !s; t++) {
        nne_tensor *x = &g->tensors[t];
        if (x->kind != NNE_TENSOR_CONSTANT) continue;
        const int64_t n = nne_shape_numel(&x->shape);
        float *d = x->data;
        if (f == NNE_WFORMAT_FP16) {
            nne_fake_quantize_f16((size_t)n, d, d);
            bytes += 2 * n;
        } else if (weight[t]) {
            s = nne_fake_quantize_tensor(&x->shape, d, bits, true, false, d, NULL);
            if (s)
                s = nne_error(s, "fake quantization: weights '%s': %s", x->name, nne_last_error());
            bytes += (n * bits + 7) / 8;
        } else {
            bytes += 4 * n;
        }
    }
    nne_free(weight);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)bytes);
    if (!s) s = nne_graph_set_meta(g, "quant.fake", k_names[f]);
    if (!s) s = nne_graph_set_meta(g, "quant.storage_bytes", buf);
    if (!s && storage_bytes) *storage_bytes = bytes;
    return s;
}
