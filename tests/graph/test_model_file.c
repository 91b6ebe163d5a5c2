/* Model file (.nne) tests: round trip of every op and dtype, byte-identical re-writes, the
 * golden file, truncation at every offset, bit flips, hostile headers, the versioning rules
 * and the atomic file write. Layout constants: src/graph/model_file_internal.h.
 *
 * NNE_REGEN_GOLDEN=1 rewrites tests/golden/model_file/small_v1.nne and the fuzz seed corpus
 * fuzz/corpus/fuzz_model_file/ from the graphs built here. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/model_file_internal.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "testutil.h"

/* ---- Graph builders ---------------------------------------------------------------- */

static nne_test_rng g_rng;

static int32_t add_const(nne_graph *g, const char *name, nne_dtype dt, nne_shape sh) {
    int64_t n = nne_shape_numel(&sh);
    size_t es = nne_dtype_size(dt);
    uint8_t *d = nne_malloc((size_t)n * es);
    for (int64_t i = 0; i < n; i++) {
        if (dt == NNE_F32) {
            float v = (float)(nne_test_rng_uniform(&g_rng) + 0.25);
            memcpy(d + i * 4, &v, 4);
        } else if (dt == NNE_F16) {
            uint16_t h = nne_f32_to_f16((float)(nne_test_rng_uniform(&g_rng) + 0.25));
            memcpy(d + i * 2, &h, 2);
        } else if (dt == NNE_S32) {
            int32_t v = nne_test_rng_int(&g_rng, -100000, 100000);
            memcpy(d + i * 4, &v, 4);
        } else {
            d[i] = (uint8_t)nne_test_rng_u64(&g_rng);
        }
    }
    int32_t idx = -1;
    CHECK_OK(nne_graph_add_constant(g, name, dt, sh, d, &idx));
    nne_free(d);
    return idx;
}

static int32_t add_op(nne_graph *g, const char *name, nne_op_type op, const nne_op_params *p,
                      const int32_t *in, int n_in) {
    char out[300];
    snprintf(out, sizeof out, "%s.out", name);
    int32_t idx = -1;
    CHECK_OK(nne_graph_add_node(g, name, op, p, in, n_in, out, &idx));
    return idx;
}

static int32_t add_unary(nne_graph *g, const char *name, nne_op_type op, int32_t x) {
    nne_op_params p;
    memset(&p, 0, sizeof p);
    return add_op(g, name, op, &p, &x, 1);
}

/* Every op type, f32 + f16 constants, a quantized s8 branch (per-channel pow2 weights,
 * per-channel s32 bias, per-tensor activations) and a u8 branch, and metadata. */
static nne_graph *build_all_ops(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("all_ops", &g));
    if (!g) return NULL;
    nne_test_rng_seed(&g_rng, 1234);
    nne_op_params p;
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 8, 8, 4), &x));

    memset(&p, 0, sizeof p);
    p.conv = (nne_conv_params){.kernel = {3, 3},
                               .stride = {1, 1},
                               .dilation = {1, 1},
                               .pad_mode = NNE_PAD_SAME,
                               .groups = 1};
    int32_t c1in[3] = {x, add_const(g, "c1.w", NNE_F32, nne_shape_4d(8, 3, 3, 4)),
                       add_const(g, "c1.b", NNE_F32, nne_shape_1d(8))};
    int32_t c1 = add_op(g, "c1", NNE_OP_CONV2D, &p, c1in, 3);

    memset(&p, 0, sizeof p);
    p.bn.eps = 1e-3f;
    int32_t bnin[5] = {c1, add_const(g, "bn.mean", NNE_F32, nne_shape_1d(8)),
                       add_const(g, "bn.var", NNE_F32, nne_shape_1d(8)),
                       add_const(g, "bn.gamma", NNE_F32, nne_shape_1d(8)),
                       add_const(g, "bn.beta", NNE_F32, nne_shape_1d(8))};
    int32_t bn = add_op(g, "bn", NNE_OP_BATCHNORM, &p, bnin, 5);
    int32_t r1 = add_unary(g, "relu", NNE_OP_RELU, bn);
    memset(&p, 0, sizeof p);
    p.leaky.alpha = 0.1f;
    int32_t lk = add_op(g, "leaky", NNE_OP_LEAKY_RELU, &p, &r1, 1);
    memset(&p, 0, sizeof p);
    int32_t prin[2] = {lk, add_const(g, "prelu.slope", NNE_F16, nne_shape_1d(8))};
    int32_t pr = add_op(g, "prelu", NNE_OP_PRELU, &p, prin, 2);
    int32_t gdin[3] = {pr, add_const(g, "gdn.beta", NNE_F32, nne_shape_1d(8)),
                       add_const(g, "gdn.gamma", NNE_F16, nne_shape_2d(8, 8))};
    int32_t gd = add_op(g, "gdn", NNE_OP_GDN, &p, gdin, 3);
    int32_t igin[3] = {gd, add_const(g, "igdn.beta", NNE_F32, nne_shape_1d(8)),
                       add_const(g, "igdn.gamma", NNE_F32, nne_shape_2d(8, 8))};
    int32_t ig = add_op(g, "igdn", NNE_OP_IGDN, &p, igin, 3);

    memset(&p, 0, sizeof p);
    p.pool = (nne_pool_params){.kernel = {2, 2}, .stride = {2, 2}};
    int32_t mp = add_op(g, "maxpool", NNE_OP_MAXPOOL2D, &p, &ig, 1);
    memset(&p, 0, sizeof p);
    p.conv = (nne_conv_params){.kernel = {3, 3},
                               .stride = {2, 2},
                               .dilation = {1, 1},
                               .pad = {1, 1, 1, 1},
                               .groups = 1,
                               .out_pad = {1, 1}};
    int32_t ctin[3] = {mp, add_const(g, "ct.w", NNE_F32, nne_shape_4d(4, 3, 3, 8)), -1};
    int32_t ct = add_op(g, "convt", NNE_OP_CONV_TRANSPOSE2D, &p, ctin, 3);
    memset(&p, 0, sizeof p);
    int32_t addin[2] = {ct, x};
    int32_t ad = add_op(g, "add", NNE_OP_ADD, &p, addin, 2);
    p.pool = (nne_pool_params){
        .kernel = {3, 3}, .stride = {1, 1}, .pad = {1, 1, 1, 1}, .count_include_pad = 1};
    int32_t ap = add_op(g, "avgpool", NNE_OP_AVGPOOL2D, &p, &ad, 1);
    memset(&p, 0, sizeof p);
    p.concat.axis = -1;
    int32_t catin[2] = {ap, x};
    int32_t cat = add_op(g, "concat", NNE_OP_CONCAT, &p, catin, 2);
    int32_t r6 = add_unary(g, "relu6", NNE_OP_RELU6, cat);
    int32_t sg = add_unary(g, "sigmoid", NNE_OP_SIGMOID, r6);
    int32_t th = add_unary(g, "tanh", NNE_OP_TANH, sg);
    int32_t hs = add_unary(g, "hardswish", NNE_OP_HARDSWISH, th);
    int32_t gap = add_unary(g, "gap", NNE_OP_GLOBAL_AVGPOOL, hs);
    int32_t fl = add_unary(g, "flatten", NNE_OP_FLATTEN, gap);
    memset(&p, 0, sizeof p);
    int32_t fcin[3] = {fl, add_const(g, "fc.w", NNE_F32, nne_shape_2d(5, 8)),
                       add_const(g, "fc.b", NNE_F32, nne_shape_1d(5))};
    int32_t fc = add_op(g, "fc", NNE_OP_DENSE, &p, fcin, 3);
    int32_t sm = add_unary(g, "softmax", NNE_OP_SOFTMAX, fc);
    memset(&p, 0, sizeof p);
    p.reshape = (nne_reshape_params){.ndim = 3, .dim = {1, -1, 1}};
    int32_t rs = add_op(g, "reshape", NNE_OP_RESHAPE, &p, &sm, 1);
    memset(&p, 0, sizeof p);
    p.upsample = (nne_upsample_params){.scale = {2, 2}, .mode = NNE_UPSAMPLE_BILINEAR};
    int32_t up = add_op(g, "upsample", NNE_OP_UPSAMPLE, &p, &bn, 1);
    CHECK_OK(nne_graph_mark_output(g, rs));
    CHECK_OK(nne_graph_mark_output(g, up));
    /* Entropy-model ops on up [1][16][16][8]. */
    int32_t ab = add_unary(g, "abs", NNE_OP_ABS, up);
    memset(&p, 0, sizeof p);
    p.quantize.train_mode = NNE_QUANTIZE_STE;
    int32_t quin[2] = {up, ab};
    int32_t qz = add_op(g, "quantize", NNE_OP_QUANTIZE, &p, quin, 2);
    memset(&p, 0, sizeof p);
    p.entropy.lik_min = 1e-9f;
    int32_t fin[2] = {qz, add_const(g, "eb.params", NNE_F32, nne_shape_2d(8, NNE_FACT_PARAMS))};
    int32_t fk = add_op(g, "factorized", NNE_OP_FACTORIZED_LIKELIHOOD, &p, fin, 2);
    p.entropy.scale_min = 0.11f;
    int32_t gin[3] = {qz, ab, fk};
    int32_t gl = add_op(g, "gaussian", NNE_OP_GAUSSIAN_LIKELIHOOD, &p, gin, 3);
    CHECK_OK(nne_graph_mark_output(g, gl));

    /* Quantized s8 branch. */
    int32_t xq = -1;
    CHECK_OK(nne_graph_add_input(g, "xq", NNE_S8, nne_shape_4d(1, 4, 4, 2), &xq));
    float s_in = 0.5f, s_w[4] = {0.125f, 0.0625f, 0.03125f, 0.015625f};
    float s_b[4] = {0.01f, 0.02f, 0.03f, 0.04f}, s_out = 0.25f;
    int32_t zp0[4] = {0, 0, 0, 0}, zp_out = -3;
    CHECK_OK(nne_quant_set(&g->tensors[xq].quant, -1, 1, &s_in, zp0, true));
    int32_t wq = add_const(g, "q.w", NNE_S8, nne_shape_4d(4, 1, 1, 2));
    CHECK_OK(nne_quant_set(&g->tensors[wq].quant, 0, 4, s_w, zp0, true));
    int32_t bq = add_const(g, "q.b", NNE_S32, nne_shape_1d(4));
    CHECK_OK(nne_quant_set(&g->tensors[bq].quant, 0, 4, s_b, zp0, false));
    memset(&p, 0, sizeof p);
    p.conv = (nne_conv_params){.kernel = {1, 1},
                               .stride = {1, 1},
                               .dilation = {1, 1},
                               .pad_mode = NNE_PAD_VALID,
                               .groups = 1};
    int32_t qin[3] = {xq, wq, bq};
    int32_t qc = add_op(g, "qconv", NNE_OP_CONV2D, &p, qin, 3);
    CHECK_OK(nne_quant_set(&g->tensors[qc].quant, -1, 1, &s_out, &zp_out, false));
    CHECK_OK(nne_graph_mark_output(g, qc));

    /* u8 branch. */
    int32_t xu = -1;
    CHECK_OK(nne_graph_add_input(g, "xu", NNE_U8, nne_shape_4d(1, 2, 2, 1), &xu));
    float s_u = 1.0f / 255.0f;
    int32_t zp_u = 128;
    CHECK_OK(nne_quant_set(&g->tensors[xu].quant, -1, 1, &s_u, &zp_u, false));
    CHECK_OK(nne_graph_mark_output(g, add_unary(g, "urelu", NNE_OP_RELU, xu)));

    char long_value[5001];
    for (int i = 0; i < 5000; i++) long_value[i] = (char)('a' + i % 26);
    long_value[5000] = 0;
    CHECK_OK(nne_graph_set_meta(g, "model", "all_ops"));
    CHECK_OK(nne_graph_set_meta(g, "train.data", "shared/data/train (bsds500, sun80)"));
    CHECK_OK(nne_graph_set_meta(g, "train.steps", "1000"));
    CHECK_OK(nne_graph_set_meta(g, "train.seed", "42"));
    CHECK_OK(nne_graph_set_meta(g, "train.commit", "0123456789abcdef"));
    CHECK_OK(nne_graph_set_meta(g, "empty", ""));
    CHECK_OK(nne_graph_set_meta(g, "long", long_value));
    CHECK_OK(nne_graph_set_meta(g, "utf8", "caf\xc3\xa9 \xe2\x86\x92 ok"));
    CHECK_OK(nne_graph_infer(g));
    return g;
}

/* A small graph for the exhaustive corruption loops: conv (quantized weights) + relu. */
static nne_graph *build_small(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("small", &g));
    if (!g) return NULL;
    nne_test_rng_seed(&g_rng, 99);
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 4, 4, 2), &x));
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv = (nne_conv_params){.kernel = {1, 1}, .stride = {1, 1}, .dilation = {1, 1}, .groups = 1};
    int32_t in[3] = {x, add_const(g, "w", NNE_F32, nne_shape_4d(3, 1, 1, 2)),
                     add_const(g, "b", NNE_F32, nne_shape_1d(3))};
    float sc[3] = {0.5f, 0.25f, 0.125f};
    int32_t zp[3] = {0, 0, 0};
    CHECK_OK(nne_quant_set(&g->tensors[in[1]].quant, 0, 3, sc, zp, true));
    int32_t c = add_op(g, "conv", NNE_OP_CONV2D, &p, in, 3);
    CHECK_OK(nne_graph_mark_output(g, add_unary(g, "relu", NNE_OP_RELU, c)));
    CHECK_OK(nne_graph_set_meta(g, "model", "small"));
    CHECK_OK(nne_graph_set_meta(g, "train.steps", "0"));
    CHECK_OK(nne_graph_infer(g));
    return g;
}

/* Smallest useful graph: one relu. */
static nne_graph *build_tiny(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("tiny", &g));
    if (!g) return NULL;
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_2d(1, 3), &x));
    CHECK_OK(nne_graph_mark_output(g, add_unary(g, "relu", NNE_OP_RELU, x)));
    CHECK_OK(nne_graph_infer(g));
    return g;
}

static uint8_t *write_mem(const nne_graph *g, size_t *size) {
    uint8_t *buf = NULL;
    *size = 0;
    CHECK_OK(nne_model_write_mem(g, &buf, size));
    return buf;
}

/* ---- Comparison (by name: the reader's tensor order is canonical, not the builder's) -- */

static bool quant_equal(const nne_quant *a, const nne_quant *b) {
    if (a->count != b->count) return false;
    if (a->count == 0) return true;
    return a->axis == b->axis && a->pow2 == b->pow2 &&
           memcmp(a->scale, b->scale, (size_t)a->count * sizeof(float)) == 0 &&
           memcmp(a->zero_point, b->zero_point, (size_t)a->count * sizeof(int32_t)) == 0;
}

static const char *tname(const nne_graph *g, int32_t i) {
    return i < 0 ? "(none)" : g->tensors[i].name;
}

static void check_graphs_equal(const nne_graph *a, const nne_graph *b) {
    CHECK(strcmp(a->name, b->name) == 0);
    CHECK(a->n_tensors == b->n_tensors);
    CHECK(a->n_nodes == b->n_nodes);
    CHECK(b->inferred);
    for (int32_t i = 0; i < a->n_tensors; i++) {
        const nne_tensor *ta = &a->tensors[i];
        int32_t j = nne_graph_find_tensor(b, ta->name);
        CHECK_MSG(j >= 0, "tensor '%s' missing", ta->name);
        if (j < 0) continue;
        const nne_tensor *tb = &b->tensors[j];
        /* f16 is storage only: an f16 constant reads back as the f32 constant of its values */
        const bool widened = ta->kind == NNE_TENSOR_CONSTANT &&
                             ((ta->dtype == NNE_F16 && tb->dtype == NNE_F32) ||
                              (ta->dtype == NNE_F32 && tb->dtype == NNE_F16));
        CHECK_MSG((ta->dtype == tb->dtype || widened) && ta->kind == tb->kind, "tensor '%s'",
                  ta->name);
        CHECK_MSG(nne_shape_equal(&ta->shape, &tb->shape), "tensor '%s' shape", ta->name);
        CHECK_MSG(quant_equal(&ta->quant, &tb->quant), "tensor '%s' quant", ta->name);
        if (widened) {
            const nne_tensor *h = ta->dtype == NNE_F16 ? ta : tb, *f = ta->dtype == NNE_F16 ? tb : ta;
            int bad = 0;
            for (int64_t e = 0; e < nne_shape_numel(&h->shape); e++) {
                const float v = nne_f16_to_f32(((const uint16_t *)h->data)[e]);
                bad += memcmp(&v, (const float *)f->data + e, 4) != 0;
            }
            CHECK_MSG(bad == 0, "tensor '%s': %d widened values differ", ta->name, bad);
        } else if (ta->kind == NNE_TENSOR_CONSTANT) {
            CHECK_MSG(memcmp(ta->data, tb->data, nne_tensor_nbytes(ta)) == 0, "tensor '%s' data",
                      ta->name);
        }
    }
    for (int32_t k = 0; k < a->n_nodes; k++) {
        const nne_node *na = &a->nodes[k];
        int32_t j = nne_graph_find_node(b, na->name);
        CHECK_MSG(j == k, "node '%s' at %d, want %d (node order is kept)", na->name, (int)j,
                  (int)k);
        if (j < 0) continue;
        const nne_node *nb = &b->nodes[j];
        CHECK(na->op == nb->op);
        CHECK_MSG(memcmp(&na->params, &nb->params, sizeof na->params) == 0, "node '%s' params",
                  na->name);
        CHECK(na->n_inputs == nb->n_inputs);
        for (int32_t i = 0; i < na->n_inputs && i < nb->n_inputs; i++)
            CHECK_MSG(strcmp(tname(a, na->inputs[i]), tname(b, nb->inputs[i])) == 0,
                      "node '%s' input %d", na->name, (int)i);
        CHECK(strcmp(tname(a, na->output), tname(b, nb->output)) == 0);
    }
    CHECK(a->n_inputs == b->n_inputs);
    for (int32_t i = 0; i < a->n_inputs && i < b->n_inputs; i++)
        CHECK(strcmp(tname(a, a->inputs[i]), tname(b, b->inputs[i])) == 0);
    CHECK(a->n_outputs == b->n_outputs);
    for (int32_t i = 0; i < a->n_outputs && i < b->n_outputs; i++)
        CHECK(strcmp(tname(a, a->outputs[i]), tname(b, b->outputs[i])) == 0);
    CHECK(a->n_meta == b->n_meta);
    for (int32_t m = 0; m < a->n_meta && m < b->n_meta; m++) {
        CHECK(strcmp(a->meta[m].key, b->meta[m].key) == 0);
        CHECK(strcmp(a->meta[m].value, b->meta[m].value) == 0);
    }
}

/* Offset of the section of `type` (0 if absent). */
static uint64_t section_offset(const uint8_t *b, uint32_t type) {
    uint32_t count = nne_le_rd32(b + NNE_MF_OFF_SECTION_COUNT);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *se = b + NNE_MF_HEADER_SIZE + (size_t)i * NNE_MF_SECTION_ENTRY_SIZE;
        if (nne_le_rd32(se + NNE_MF_SE_TYPE) == type) return nne_le_rd64(se + NNE_MF_SE_OFFSET);
    }
    return 0;
}

/* ---- Tests ------------------------------------------------------------------------- */

static void test_round_trip_all_ops(void) {
    nne_graph *g = build_all_ops();
    if (!g) return;
    bool seen[NNE_OP_COUNT] = {false};
    for (int32_t k = 0; k < g->n_nodes; k++) seen[g->nodes[k].op] = true;
    for (int op = 1; op < NNE_OP_COUNT; op++)
        CHECK_MSG(seen[op], "op %s not covered", nne_op_name((nne_op_type)op));

    size_t n1 = 0, n2 = 0;
    uint8_t *b1 = write_mem(g, &n1);
    nne_graph *g2 = NULL;
    CHECK_OK(nne_model_read_mem(b1, n1, &g2));
    if (g2) {
        check_graphs_equal(g, g2);
        check_graphs_equal(g2, g);
        /* the widened constants go back to f16 with f16_exact (no other constant of this
         * graph is f16-exact), giving the same bytes; without it they stay f32 */
        const nne_model_write_opts wo = {.f16_exact = true};
        uint8_t *b2 = NULL, *b3 = NULL;
        size_t n3 = 0;
        CHECK_OK(nne_model_write_mem_opts(g2, &wo, &b2, &n2));
        CHECK(n1 == n2 && b2 && memcmp(b1, b2, n1) == 0);
        CHECK_OK(nne_model_write_mem(g2, &b3, &n3));
        CHECK(n3 > n1);
        nne_free(b2);
        nne_free(b3);
        CHECK_OK(nne_graph_plan(g2));
    }
    /* Layout promise: every constant's data is 64-byte aligned from the start of the file. */
    uint64_t woff = section_offset(b1, NNE_MF_SEC_WEIGHTS);
    uint64_t toff = section_offset(b1, NNE_MF_SEC_TENSORS);
    CHECK(woff % 64 == 0 && toff != 0);
    for (uint32_t t = 0; t < (uint32_t)g->n_tensors; t++) {
        const uint8_t *e = b1 + toff + NNE_MF_TABLE_HEADER + (size_t)t * NNE_MF_TENSOR_SIZE;
        CHECK((woff + nne_le_rd64(e + NNE_MF_T_DATA_OFFSET)) % 64 == 0);
    }
    nne_free(b1);
    nne_graph_free(g2);
    nne_graph_free(g);
}

/* The built-in CAE (all three parts) at the smallest input size it accepts. */
static void test_round_trip_cae(void) {
    static const nne_cae_part parts[3] = {NNE_CAE_FULL, NNE_CAE_ENCODER, NNE_CAE_DECODER};
    for (int p = 0; p < 3; p++) {
        nne_graph *g = NULL;
        for (int32_t h = 16; h <= 128 && !g; h++)
            if (nne_model_cae_seed(h, h, parts[p], &g) != NNE_OK) g = NULL;
        CHECK_MSG(g != NULL, "no input size accepted for CAE part %d", p);
        if (!g) continue;
        CHECK_OK(nne_graph_infer(g));
        size_t n1 = 0, n2 = 0;
        uint8_t *b1 = write_mem(g, &n1);
        nne_graph *g2 = NULL;
        CHECK_OK(nne_model_read_mem(b1, n1, &g2));
        if (g2) {
            check_graphs_equal(g, g2);
            uint8_t *b2 = write_mem(g2, &n2);
            CHECK(n1 == n2 && b2 && memcmp(b1, b2, n1) == 0);
            nne_free(b2);
        }
        nne_graph_free(g2);
        nne_free(b1);
        nne_graph_free(g);
    }
}

static void test_round_trip_file(void) {
    nne_graph *g = build_small();
    if (!g) return;
    char dir[] = "/tmp/nne_mf_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/m.nne", dir);
    CHECK_OK(nne_model_write_file(g, path));
    nne_graph *g2 = NULL;
    CHECK_OK(nne_model_read_file(path, &g2));
    if (g2) check_graphs_equal(g, g2);
    nne_graph_free(g2);
    unlink(path);
    rmdir(dir);
    nne_graph_free(g);
}

/* The format is frozen: the small graph must serialize to the checked-in golden bytes. */
static void test_golden(void) {
    nne_graph *g = build_small();
    if (!g) return;
    size_t n = 0;
    uint8_t *b = write_mem(g, &n);
    size_t gn = 0;
    unsigned char *gold = nne_test_golden_bytes("tests/golden/model_file/small_v1.nne", b, n, &gn);
    if (gold) {
        nne_graph *g2 = NULL;
        CHECK_OK(nne_model_read_mem(gold, gn, &g2));
        if (g2) check_graphs_equal(g, g2);
        nne_graph_free(g2);
    }
    nne_free(gold);
    nne_free(b);
    nne_graph_free(g);
}

static nne_graph *build_with_attached(void);

/* With NNE_REGEN_GOLDEN=1, write the fuzz seed corpus (each file < 64 KB). */
static void test_fuzz_seeds(void) {
    nne_graph *gs[4] = {build_tiny(), build_small(), build_all_ops(), NULL};
    gs[3] = build_with_attached(); /* after all_ops: both draw from g_rng */
    const char *names[4] = {"tiny.nne", "small.nne", "all_ops.nne", "attached.nne"};
    for (int i = 0; i < 4; i++) {
        if (!gs[i]) continue;
        size_t n = 0;
        uint8_t *b = write_mem(gs[i], &n);
        CHECK_MSG(n < 64 * 1024, "seed %s is %zu bytes", names[i], n);
        if (nne_test_regen()) {
            char rel[128];
            snprintf(rel, sizeof rel, "fuzz/corpus/fuzz_model_file/%s", names[i]);
            nne_test_write_rel(rel, b, n);
        }
        nne_free(b);
        nne_graph_free(gs[i]);
    }
}

static void test_truncation(void) {
    nne_graph *g = build_small();
    if (!g) return;
    size_t n = 0;
    uint8_t *b = write_mem(g, &n);
    for (size_t len = 0; len < n; len++) {
        /* A fresh allocation of exactly `len` bytes, so ASan sees any read past the end. */
        uint8_t *t = nne_malloc(len ? len : 1);
        memcpy(t, b, len);
        nne_graph *g2 = (nne_graph *)(uintptr_t)1;
        nne_status s = nne_model_read_mem(t, len, &g2);
        CHECK_MSG(s == NNE_ERR_FORMAT && g2 == NULL, "truncated to %zu: %s", len,
                  nne_status_str(s));
        CHECK(nne_last_error()[0] != 0);
        nne_free(t);
    }
    /* Trailing garbage is also rejected: the header records the exact size. */
    uint8_t *longer = nne_malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    nne_graph *g2 = NULL;
    CHECK_STATUS(nne_model_read_mem(longer, n + 1, &g2), NNE_ERR_FORMAT);
    nne_free(longer);
    nne_free(b);
    nne_graph_free(g);
}

/* Every single-bit flip is detected; with the checksums recomputed, every byte changed to
 * several values fails cleanly or yields a graph that re-serializes. */
static void test_bit_flips(void) {
    nne_graph *g = build_small();
    if (!g) return;
    size_t n = 0;
    uint8_t *b = write_mem(g, &n);
    uint8_t *t = nne_malloc(n);
    int accepted = 0;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(t, b, n);
            t[i] ^= (uint8_t)(1u << bit);
            nne_graph *g2 = NULL;
            nne_status s = nne_model_read_mem(t, n, &g2);
            CHECK_MSG(s != NNE_OK && g2 == NULL, "flip of byte %zu bit %d accepted", i, bit);
            nne_graph_free(g2);
        }
        static const uint8_t vals[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(t, b, n);
            if (t[i] == vals[v]) continue;
            t[i] = vals[v];
            nne_mf_fix_checksums(t, n);
            nne_graph *g2 = NULL;
            nne_status s = nne_model_read_mem(t, n, &g2);
            CHECK((s == NNE_OK) == (g2 != NULL));
            if (s != NNE_OK) CHECK(nne_last_error()[0] != 0);
            if (g2) {
                accepted++;
                size_t n3 = 0;
                uint8_t *b3 = write_mem(g2, &n3);
                nne_graph *g3 = NULL;
                CHECK_OK(nne_model_read_mem(b3, n3, &g3));
                nne_graph_free(g3);
                nne_free(b3);
                nne_graph_free(g2);
            }
        }
    }
    /* Data and scale bytes are free to change, so some edits are valid files. */
    CHECK(accepted > 0);
    nne_free(t);
    nne_free(b);
    nne_graph_free(g);
}

/* ---- Hostile headers: edit one field, recompute the checksums, expect the status. ---- */

static uint8_t *section_entry(uint8_t *b, uint32_t type) {
    for (uint32_t i = 0; i < nne_le_rd32(b + NNE_MF_OFF_SECTION_COUNT); i++) {
        uint8_t *se = b + NNE_MF_HEADER_SIZE + (size_t)i * NNE_MF_SECTION_ENTRY_SIZE;
        if (nne_le_rd32(se + NNE_MF_SE_TYPE) == type) return se;
    }
    return NULL;
}

static uint8_t *tensor_entry(uint8_t *b, uint32_t i) {
    return b + section_offset(b, NNE_MF_SEC_TENSORS) + NNE_MF_TABLE_HEADER +
           (size_t)i * NNE_MF_TENSOR_SIZE;
}

static uint8_t *node_entry(uint8_t *b, uint32_t i) {
    return b + section_offset(b, NNE_MF_SEC_NODES) + NNE_MF_TABLE_HEADER +
           (size_t)i * NNE_MF_NODE_SIZE;
}

/* Index of the file tensor named `name` (the small graph: x, w, b, conv.out, relu.out). */
static uint32_t tensor_index(uint8_t *b, const char *name) {
    uint32_t n = nne_le_rd32(b + section_offset(b, NNE_MF_SEC_TENSORS));
    const char *strs = (const char *)b + section_offset(b, NNE_MF_SEC_STRINGS);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(strs + nne_le_rd32(tensor_entry(b, i)), name) == 0) return i;
    return UINT32_MAX;
}

typedef void (*edit_fn)(uint8_t *b, size_t n);

/* Apply `edit` to a fresh copy of the small file, fix the checksums (unless the edit is to
 * the checksum itself), and expect `want` with a message containing `needle`. */
static void expect_edit(const char *what, edit_fn edit, bool fix, nne_status want,
                        const char *needle) {
    nne_graph *g = build_small();
    if (!g) return;
    size_t n = 0;
    uint8_t *b = write_mem(g, &n);
    edit(b, n);
    if (fix) nne_mf_fix_checksums(b, n);
    nne_graph *g2 = NULL;
    nne_status s = nne_model_read_mem(b, n, &g2);
    const char *msg = nne_last_error();
    if (getenv("NNE_TEST_VERBOSE")) printf("  %-26s %-18s %s\n", what, nne_status_str(s), msg);
    CHECK_MSG(s == want && g2 == NULL, "%s: got %s (want %s): %s", what, nne_status_str(s),
              nne_status_str(want), msg);
    CHECK_MSG(strncmp(msg, "model: ", 7) == 0, "%s: message '%s' lacks the prefix", what, msg);
    CHECK_MSG(!needle || strstr(msg, needle), "%s: message '%s' lacks '%s'", what, msg, needle);
    nne_graph_free(g2);
    nne_free(b);
    nne_graph_free(g);
}

static void e_magic(uint8_t *b, size_t n) { b[3] ^= 0x20; }
static void e_version(uint8_t *b, size_t n) { nne_le_wr32(b + NNE_MF_OFF_VERSION, 2); }
static void e_flags(uint8_t *b, size_t n) { nne_le_wr32(b + NNE_MF_OFF_FLAGS, 4); }
static void e_header_size(uint8_t *b, size_t n) { nne_le_wr32(b + NNE_MF_OFF_HEADER_SIZE, 128); }
static void e_file_size(uint8_t *b, size_t n) { nne_le_wr64(b + NNE_MF_OFF_FILE_SIZE, n + 1); }
static void e_file_size_huge(uint8_t *b, size_t n) {
    nne_le_wr64(b + NNE_MF_OFF_FILE_SIZE, UINT64_MAX);
}
static void e_reserved(uint8_t *b, size_t n) { b[NNE_MF_OFF_RESERVED + 5] = 1; }
static void e_crc(uint8_t *b, size_t n) { b[NNE_MF_OFF_FILE_CRC] ^= 1; }
static void e_section_crc(uint8_t *b, size_t n) {
    uint8_t *se = section_entry(b, NNE_MF_SEC_NODES);
    nne_le_wr32(se + NNE_MF_SE_CRC, nne_le_rd32(se + NNE_MF_SE_CRC) ^ 1);
    nne_le_wr32(b + NNE_MF_OFF_FILE_CRC, nne_mf_file_crc(b, n)); /* only the file CRC */
}
static void e_section_count(uint8_t *b, size_t n) {
    nne_le_wr32(b + NNE_MF_OFF_SECTION_COUNT, UINT32_MAX);
}
static void e_section_count_short(uint8_t *b, size_t n) {
    nne_le_wr32(b + NNE_MF_OFF_SECTION_COUNT, NNE_MF_SEC_REQUIRED_COUNT - 1); /* drops WEIGHTS */
}
static void e_section_past_eof(uint8_t *b, size_t n) {
    nne_le_wr64(section_entry(b, NNE_MF_SEC_META) + NNE_MF_SE_OFFSET, (n + 64) & ~(uint64_t)7);
}
static void e_section_overflow(uint8_t *b, size_t n) {
    uint8_t *se = section_entry(b, NNE_MF_SEC_QUANT);
    nne_le_wr64(se + NNE_MF_SE_OFFSET, UINT64_MAX - 7); /* offset + size wraps around */
    nne_le_wr64(se + NNE_MF_SE_SIZE, 16);
}
static void e_section_size_overflow(uint8_t *b, size_t n) {
    nne_le_wr64(section_entry(b, NNE_MF_SEC_STRINGS) + NNE_MF_SE_SIZE, UINT64_MAX);
}
static void e_section_misaligned(uint8_t *b, size_t n) {
    uint8_t *se = section_entry(b, NNE_MF_SEC_WEIGHTS);
    nne_le_wr64(se + NNE_MF_SE_OFFSET, nne_le_rd64(se + NNE_MF_SE_OFFSET) - 8);
}
static void e_section_overlap(uint8_t *b, size_t n) {
    uint8_t *a = section_entry(b, NNE_MF_SEC_META), *c = section_entry(b, NNE_MF_SEC_GRAPH);
    nne_le_wr64(a + NNE_MF_SE_OFFSET, nne_le_rd64(c + NNE_MF_SE_OFFSET));
}
static void e_section_dup(uint8_t *b, size_t n) {
    nne_le_wr32(section_entry(b, NNE_MF_SEC_META) + NNE_MF_SE_TYPE, NNE_MF_SEC_GRAPH);
}
static void e_section_unknown_required(uint8_t *b, size_t n) {
    nne_le_wr32(section_entry(b, NNE_MF_SEC_META) + NNE_MF_SE_TYPE, 99);
}
static void e_section_unknown_optional(uint8_t *b, size_t n) {
    uint8_t *se = section_entry(b, NNE_MF_SEC_META);
    nne_le_wr32(se + NNE_MF_SE_TYPE, 99);
    nne_le_wr32(se + NNE_MF_SE_FLAGS, NNE_MF_SECTION_OPTIONAL); /* skipped: META now missing */
}
static void e_section_flags(uint8_t *b, size_t n) {
    nne_le_wr32(section_entry(b, NNE_MF_SEC_META) + NNE_MF_SE_FLAGS, 2);
}
static void e_tensor_count_huge(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_TENSORS), UINT32_MAX);
}
static void e_tensor_count_lie(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_TENSORS), NNE_MAX_TENSORS);
}
static void e_node_count_lie(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_NODES), 1000);
}
static void e_meta_count_huge(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_META), NNE_MAX_META + 1);
}
static void e_graph_io_huge(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_GRAPH) + 12, UINT32_MAX);
}
static void e_graph_output_range(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_GRAPH) + NNE_MF_GRAPH_HEADER + 4, 77);
}
static void e_graph_output_constant(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_GRAPH) + NNE_MF_GRAPH_HEADER + 4,
                tensor_index(b, "w"));
}
static void e_graph_input_order(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_GRAPH) + NNE_MF_GRAPH_HEADER, 1);
}
static void e_dim_huge(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_DIMS, (uint64_t)1 << 40);
}
static void e_dim_max(uint8_t *b, size_t n) { /* in range, but the data is too small */
    nne_le_wr64(tensor_entry(b, tensor_index(b, "b")) + NNE_MF_T_DIMS, NNE_MAX_DIM);
}
static void e_dim_zero(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "x")) + NNE_MF_T_DIMS + 8, 0);
}
static void e_numel_huge(uint8_t *b, size_t n) {
    uint8_t *e = tensor_entry(b, tensor_index(b, "x"));
    for (int d = 0; d < 4; d++) nne_le_wr64(e + NNE_MF_T_DIMS + 8 * d, NNE_MAX_DIM);
}
static void e_ndim(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "x")) + NNE_MF_T_NDIM, 7);
}
static void e_unused_dim(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "b")) + NNE_MF_T_DIMS + 8 * 5, 1);
}
static void e_dtype(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_DTYPE, 9);
}
static void e_dtype_changes_size(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "b")) + NNE_MF_T_DTYPE, NNE_S8);
}
static void e_kind(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "x")) + NNE_MF_T_KIND, 3);
}
static void e_kind_order(uint8_t *b, size_t n) { /* a constant after the activations */
    nne_le_wr32(tensor_entry(b, tensor_index(b, "relu.out")) + NNE_MF_T_KIND, NNE_TENSOR_CONSTANT);
}
static void e_data_past_weights(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "b")) + NNE_MF_T_DATA_OFFSET, 1u << 20);
}
static void e_data_overflow(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "b")) + NNE_MF_T_DATA_OFFSET, UINT64_MAX - 63);
}
static void e_data_shared(uint8_t *b, size_t n) { /* b's data aliased onto w's */
    nne_le_wr64(tensor_entry(b, tensor_index(b, "b")) + NNE_MF_T_DATA_OFFSET,
                nne_le_rd64(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_DATA_OFFSET));
}
static void e_data_on_input(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "x")) + NNE_MF_T_DATA_SIZE, 128);
}
static void e_name_past_strings(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "x")) + NNE_MF_T_NAME_OFF, 0x7FFFFFF0);
}
static void e_name_too_long(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "x")) + NNE_MF_T_NAME_LEN, NNE_MAX_NAME + 1);
}
static void e_name_embedded_nul(uint8_t *b, size_t n) { /* "x" becomes 2 bytes: "x\0" */
    nne_le_wr32(tensor_entry(b, tensor_index(b, "x")) + NNE_MF_T_NAME_LEN, 2);
}
static void e_name_shared(uint8_t *b, size_t n) { /* node 'relu' reuses node 'conv's name */
    nne_le_wr32(node_entry(b, 1) + NNE_MF_N_NAME_OFF, nne_le_rd32(node_entry(b, 0)));
}
static void e_name_duplicate(uint8_t *b, size_t n) { /* tensor "b" renamed "w" in place */
    uint8_t *strs = b + section_offset(b, NNE_MF_SEC_STRINGS);
    strs[nne_le_rd32(tensor_entry(b, tensor_index(b, "b")))] = 'w';
}
static void e_name_empty(uint8_t *b, size_t n) {
    uint8_t *strs = b + section_offset(b, NNE_MF_SEC_STRINGS);
    uint8_t *e = node_entry(b, 0);
    strs[nne_le_rd32(e)] = 0;
    nne_le_wr32(e + NNE_MF_N_NAME_LEN, 0);
}
static void e_quant_count(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_Q_COUNT, 2);
}
static void e_quant_axis(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_Q_AXIS, 4);
}
static void e_quant_offset(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_Q_OFFSET, UINT64_MAX - 3);
}
static uint8_t *scale0(uint8_t *b) {
    return b + section_offset(b, NNE_MF_SEC_QUANT) +
           nne_le_rd64(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_Q_OFFSET);
}
static void e_scale_nan(uint8_t *b, size_t n) { nne_le_wr32(scale0(b), 0x7FC00000u); }
static void e_scale_inf(uint8_t *b, size_t n) { nne_le_wr32(scale0(b), 0x7F800000u); }
static void e_scale_zero(uint8_t *b, size_t n) { nne_le_wr32(scale0(b), 0); }
static void e_scale_negative(uint8_t *b, size_t n) { nne_le_wr32(scale0(b), 0xBF000000u); }
static void e_scale_not_pow2(uint8_t *b, size_t n) { nne_le_wr32(scale0(b), 0x3F400000u); }
static void e_zero_point(uint8_t *b, size_t n) { /* w is f32: any zero point is allowed */
    nne_le_wr32(scale0(b) + 12, 1000);
}
static void e_zero_point_s8(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_DTYPE, NNE_S8);
    nne_le_wr64(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_DATA_SIZE, 6);
    nne_le_wr32(scale0(b) + 12, 1000);
}
static void e_quant_flags(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "w")) + NNE_MF_T_Q_FLAGS, 3);
}
static void e_op(uint8_t *b, size_t n) { nne_le_wr32(node_entry(b, 0) + NNE_MF_N_OP, 99); }
static void e_op_zero(uint8_t *b, size_t n) { nne_le_wr32(node_entry(b, 0) + NNE_MF_N_OP, 0); }
static void e_n_inputs(uint8_t *b, size_t n) {
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_N_INPUTS, NNE_MAX_NODE_INPUTS + 1);
}
static void e_input_range(uint8_t *b, size_t n) {
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_INPUTS, 1000);
}
static void e_input_negative(uint8_t *b, size_t n) {
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_INPUTS, (uint32_t)-2);
}
static void e_input_forward(uint8_t *b, size_t n) { /* conv reads relu's output */
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_INPUTS, tensor_index(b, "relu.out"));
}
static void e_input_self(uint8_t *b, size_t n) { /* relu reads its own output */
    nne_le_wr32(node_entry(b, 1) + NNE_MF_N_INPUTS, tensor_index(b, "relu.out"));
}
static void e_input_slot(uint8_t *b, size_t n) {
    nne_le_wr32(node_entry(b, 1) + NNE_MF_N_INPUTS + 4 * 5, 0);
}
static void e_input_missing(uint8_t *b, size_t n) { /* conv without weights */
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_INPUTS + 4, (uint32_t)-1);
}
static void e_output_ref(uint8_t *b, size_t n) {
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_OUTPUT, 0);
}
static void e_params(uint8_t *b, size_t n) { /* conv kernel 1x1 -> 1000x1 */
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_PARAMS, 1000);
}
static void e_params_groups(uint8_t *b, size_t n) {
    nne_le_wr32(node_entry(b, 0) + NNE_MF_N_PARAMS + 4 * 11, 0);
}
static void e_activation_shape(uint8_t *b, size_t n) {
    nne_le_wr64(tensor_entry(b, tensor_index(b, "relu.out")) + NNE_MF_T_DIMS + 8, 5);
}
static void e_activation_dtype(uint8_t *b, size_t n) {
    nne_le_wr32(tensor_entry(b, tensor_index(b, "relu.out")) + NNE_MF_T_DTYPE, NNE_S32);
}
static void e_meta_dup(uint8_t *b, size_t n) { /* key 1 "train.steps" becomes "model" */
    uint8_t *m = b + section_offset(b, NNE_MF_SEC_META) + NNE_MF_TABLE_HEADER;
    uint8_t *strs = b + section_offset(b, NNE_MF_SEC_STRINGS);
    memcpy(strs + nne_le_rd32(m + NNE_MF_META_SIZE), "model", 6);
    nne_le_wr32(m + NNE_MF_META_SIZE + 4, 5);
}
static void e_meta_value_len(uint8_t *b, size_t n) {
    uint8_t *m = b + section_offset(b, NNE_MF_SEC_META) + NNE_MF_TABLE_HEADER;
    nne_le_wr32(m + 12, NNE_MAX_META_VALUE + 1);
}
static void e_table_reserved(uint8_t *b, size_t n) {
    nne_le_wr32(b + section_offset(b, NNE_MF_SEC_NODES) + 4, 1);
}

static void test_hostile(void) {
    const nne_status F = NNE_ERR_FORMAT, L = NNE_ERR_LIMIT, U = NNE_ERR_UNSUPPORTED,
                     C = NNE_ERR_CHECKSUM;
    expect_edit("magic", e_magic, false, F, "bad magic");
    expect_edit("version", e_version, true, U, "version 2");
    expect_edit("flags", e_flags, true, U, "flags");
    expect_edit("header size", e_header_size, true, F, "header size");
    expect_edit("file size", e_file_size, true, F, "truncated");
    expect_edit("file size huge", e_file_size_huge, true, F, "truncated");
    expect_edit("reserved", e_reserved, true, F, "reserved");
    expect_edit("file crc", e_crc, false, C, "checksum");
    expect_edit("section crc", e_section_crc, false, C, "NODES");
    expect_edit("section count", e_section_count, true, L, "sections");
    expect_edit("section count short", e_section_count_short, true, F, "missing");
    expect_edit("section past eof", e_section_past_eof, true, F, "META");
    expect_edit("section offset overflow", e_section_overflow, true, F, "QUANT");
    expect_edit("section size overflow", e_section_size_overflow, true, F, "STRINGS");
    expect_edit("section misaligned", e_section_misaligned, true, F, "aligned");
    expect_edit("section overlap", e_section_overlap, true, F, "overlap");
    expect_edit("section duplicate", e_section_dup, true, F, "twice");
    expect_edit("section unknown required", e_section_unknown_required, true, U, "unknown");
    expect_edit("section unknown optional", e_section_unknown_optional, true, F, "META");
    expect_edit("section flags", e_section_flags, true, U, "flags");
    expect_edit("tensor count huge", e_tensor_count_huge, true, L, "TENSORS");
    expect_edit("tensor count lie", e_tensor_count_lie, true, F, "TENSORS");
    expect_edit("node count lie", e_node_count_lie, true, F, "NODES");
    expect_edit("meta count huge", e_meta_count_huge, true, L, "META");
    expect_edit("graph outputs huge", e_graph_io_huge, true, L, "GRAPH");
    expect_edit("graph output range", e_graph_output_range, true, F, "output");
    expect_edit("graph output constant", e_graph_output_constant, true, F, "output");
    expect_edit("graph input order", e_graph_input_order, true, F, "input");
    expect_edit("dim huge", e_dim_huge, true, L, "'w'");
    expect_edit("dim max", e_dim_max, true, F, "'b'");
    expect_edit("dim zero", e_dim_zero, true, L, "'x'");
    expect_edit("numel huge", e_numel_huge, true, L, "'x'");
    expect_edit("ndim", e_ndim, true, L, "rank");
    expect_edit("unused dim", e_unused_dim, true, F, "unused");
    expect_edit("dtype", e_dtype, true, F, "dtype");
    expect_edit("dtype changes size", e_dtype_changes_size, true, F, "data bytes");
    expect_edit("kind", e_kind, true, F, "kind");
    expect_edit("kind order", e_kind_order, true, F, "activation");
    expect_edit("data past weights", e_data_past_weights, true, F, "WEIGHTS");
    expect_edit("data offset overflow", e_data_overflow, true, F, "WEIGHTS");
    expect_edit("data shared", e_data_shared, true, F, "overlapping");
    expect_edit("data on input", e_data_on_input, true, F, "data range");
    expect_edit("name past strings", e_name_past_strings, true, F, "outside STRINGS");
    expect_edit("name too long", e_name_too_long, true, L, "tensor 0 name");
    expect_edit("name embedded nul", e_name_embedded_nul, true, F, "NUL");
    expect_edit("name shared", e_name_shared, true, F, "overlaps");
    expect_edit("name duplicate", e_name_duplicate, true, F, "already exists");
    expect_edit("name empty", e_name_empty, true, F, "empty");
    expect_edit("quant count", e_quant_count, true, F, "quantization");
    expect_edit("quant axis", e_quant_axis, true, F, "axis");
    expect_edit("quant offset", e_quant_offset, true, F, "QUANT");
    expect_edit("scale nan", e_scale_nan, true, F, "scale");
    expect_edit("scale inf", e_scale_inf, true, F, "scale");
    expect_edit("scale zero", e_scale_zero, true, F, "scale");
    expect_edit("scale negative", e_scale_negative, true, F, "scale");
    expect_edit("scale not pow2", e_scale_not_pow2, true, F, "power of two");
    expect_edit("zero point s8", e_zero_point_s8, true, F, "zero_point");
    expect_edit("quant flags", e_quant_flags, true, F, "flags");
    expect_edit("op", e_op, true, F, "op type 99");
    expect_edit("op zero", e_op_zero, true, F, "op type 0");
    expect_edit("n_inputs", e_n_inputs, true, L, "inputs");
    expect_edit("input range", e_input_range, true, F, "node 'conv'");
    expect_edit("input negative", e_input_negative, true, F, "node 'conv'");
    expect_edit("input forward", e_input_forward, true, F, "node 'conv'");
    expect_edit("input self", e_input_self, true, F, "node 'relu'");
    expect_edit("input slot", e_input_slot, true, F, "slot");
    expect_edit("input missing", e_input_missing, true, F, "missing");
    expect_edit("output ref", e_output_ref, true, F, "output");
    expect_edit("params", e_params, true, F, "kernel");
    expect_edit("params groups", e_params_groups, true, F, "groups");
    expect_edit("activation shape", e_activation_shape, true, F, "inference");
    expect_edit("activation dtype", e_activation_dtype, true, F, "inference");
    expect_edit("meta duplicate", e_meta_dup, true, F, "duplicate");
    expect_edit("meta value length", e_meta_value_len, true, L, "metadata 0 value");
    expect_edit("table reserved", e_table_reserved, true, F, "reserved");

    /* A zero point outside the s8 range is checked only for 8-bit types. */
    nne_graph *g = build_small();
    size_t n = 0;
    uint8_t *b = write_mem(g, &n);
    e_zero_point(b, n);
    nne_mf_fix_checksums(b, n);
    nne_graph *g2 = NULL;
    CHECK_OK(nne_model_read_mem(b, n, &g2));
    nne_graph_free(g2);
    nne_free(b);
    nne_graph_free(g);

    /* NULL / empty arguments. */
    CHECK_STATUS(nne_model_read_mem(NULL, 0, &g2), NNE_ERR_FORMAT);
    CHECK_STATUS(nne_model_read_mem(NULL, 10, &g2), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_model_read_mem((const uint8_t *)"x", 1, NULL), NNE_ERR_INVALID_ARG);
}

/* Versioning: an unknown section marked optional is skipped; unmarked, it is refused. */
static void test_unknown_sections(void) {
    nne_graph *g = build_small();
    if (!g) return;
    size_t n = 0;
    uint8_t *b = write_mem(g, &n);
    /* Insert one table entry, shifting everything after the table by 64 bytes (keeping
     * the 64-byte alignment of WEIGHTS), and append the new section's 5 bytes 8-aligned. */
    size_t table_end = NNE_MF_HEADER_SIZE + NNE_MF_SEC_REQUIRED_COUNT * NNE_MF_SECTION_ENTRY_SIZE;
    size_t extra = (n + 64 + 7) & ~(size_t)7, m = extra + 5;
    uint8_t *x = nne_calloc(m, 1);
    memcpy(x, b, table_end);
    memcpy(x + table_end + 64, b + table_end, n - table_end);
    for (uint32_t i = 0; i < NNE_MF_SEC_REQUIRED_COUNT; i++) {
        uint8_t *se = x + NNE_MF_HEADER_SIZE + i * NNE_MF_SECTION_ENTRY_SIZE;
        nne_le_wr64(se + NNE_MF_SE_OFFSET, nne_le_rd64(se + NNE_MF_SE_OFFSET) + 64);
    }
    uint8_t *ne = x + table_end;
    nne_le_wr32(ne + NNE_MF_SE_TYPE, 1000);
    nne_le_wr32(ne + NNE_MF_SE_FLAGS, NNE_MF_SECTION_OPTIONAL);
    nne_le_wr64(ne + NNE_MF_SE_OFFSET, extra);
    nne_le_wr64(ne + NNE_MF_SE_SIZE, 5);
    memcpy(x + extra, "hello", 5);
    nne_le_wr32(x + NNE_MF_OFF_SECTION_COUNT, NNE_MF_SEC_REQUIRED_COUNT + 1);
    nne_le_wr64(x + NNE_MF_OFF_FILE_SIZE, m);
    nne_mf_fix_checksums(x, m);
    nne_graph *g2 = NULL;
    CHECK_OK(nne_model_read_mem(x, m, &g2));
    if (g2) {
        check_graphs_equal(g, g2);
        size_t n2 = 0; /* re-writing drops the unknown section: the canonical bytes again */
        uint8_t *b2 = write_mem(g2, &n2);
        CHECK(n2 == n && memcmp(b, b2, n) == 0);
        nne_free(b2);
    }
    nne_graph_free(g2);
    g2 = NULL;
    nne_le_wr32(ne + NNE_MF_SE_FLAGS, 0);
    nne_mf_fix_checksums(x, m);
    CHECK_STATUS(nne_model_read_mem(x, m, &g2), NNE_ERR_UNSUPPORTED);
    CHECK(g2 == NULL);
    nne_free(x);
    nne_free(b);
    nne_graph_free(g);
}

/* ---- Attached graphs (section ATTACHED) --------------------------------------------- */

/* "small" with two attached graphs: "tiny" and "all_ops" renamed "tinz" (same name length). */
static nne_graph *build_with_attached(void) {
    nne_graph *g = build_small(), *a = build_tiny(), *b = build_tiny();
    if (!g || !a || !b) {
        nne_graph_free(g), nne_graph_free(a), nne_graph_free(b);
        return NULL;
    }
    nne_free(b->name);
    b->name = nne_strdup("tinz");
    CHECK_OK(nne_graph_set_meta(b, "model.part", "second"));
    CHECK_OK(nne_graph_attach(g, a));
    CHECK_OK(nne_graph_attach(g, b));
    return g;
}

/* Entry k of ATTACHED and the section's offset and size. */
static uint8_t *attached_entry(uint8_t *b, uint32_t k, uint64_t *sec_off) {
    *sec_off = section_offset(b, NNE_MF_SEC_ATTACHED);
    return b + *sec_off + NNE_MF_TABLE_HEADER + (size_t)k * NNE_MF_ATTACHED_SIZE;
}

static void test_attached(void) {
    nne_graph *g = build_with_attached();
    if (!g) return;
    /* The API: lookup, one level only, unique names. */
    CHECK(nne_graph_find_attached(g, "tiny") == g->attached[0]);
    CHECK(nne_graph_find_attached(g, "tinz") == g->attached[1]);
    CHECK(nne_graph_find_attached(g, "small") == NULL);
    nne_graph *dup = build_tiny(), *nest = build_small(), *leaf = build_tiny();
    CHECK_STATUS(nne_graph_attach(g, dup), NNE_ERR_INVALID_ARG); /* "tiny" again */
    CHECK_STATUS(nne_graph_attach(g, g), NNE_ERR_INVALID_ARG);
    CHECK_OK(nne_graph_attach(nest, leaf));
    CHECK_STATUS(nne_graph_attach(g, nest), NNE_ERR_INVALID_ARG); /* has its own */
    nne_graph_free(dup), nne_graph_free(nest);
    CHECK(g->n_attached == 2);

    /* Round trip: 8 sections, ATTACHED optional and 64-aligned, graphs kept, canonical. */
    size_t n = 0, n2 = 0;
    uint8_t *b = write_mem(g, &n);
    if (!b) return;
    CHECK(nne_le_rd32(b + NNE_MF_OFF_SECTION_COUNT) == NNE_MF_SEC_KNOWN_COUNT);
    const uint8_t *se = section_entry(b, NNE_MF_SEC_ATTACHED);
    CHECK(se && nne_le_rd32(se + NNE_MF_SE_FLAGS) == NNE_MF_SECTION_OPTIONAL);
    CHECK(section_offset(b, NNE_MF_SEC_ATTACHED) % 64 == 0);
    nne_graph *g2 = NULL;
    CHECK_OK(nne_model_read_mem(b, n, &g2));
    if (g2) {
        check_graphs_equal(g, g2);
        CHECK(g2->n_attached == 2);
        for (int i = 0; i < 2 && i < g2->n_attached; i++)
            check_graphs_equal(g->attached[i], g2->attached[i]);
        uint8_t *b2 = write_mem(g2, &n2);
        CHECK(n2 == n && b2 && memcmp(b, b2, n) == 0);
        nne_free(b2);
    }
    nne_graph_free(g2);
    g2 = NULL;
    /* Without attachments the bytes are those of the graph alone (the 7 sections). */
    nne_graph *plain = build_small();
    size_t np = 0;
    uint8_t *bp = write_mem(plain, &np);
    CHECK(bp && nne_le_rd32(bp + NNE_MF_OFF_SECTION_COUNT) == NNE_MF_SEC_REQUIRED_COUNT);
    nne_free(bp);
    nne_graph_free(plain);

    /* A reader that does not know ATTACHED skips it (optional): emulated by renumbering the
     * section to an unknown optional type, which gives the main graph alone. */
    uint8_t *m = nne_malloc(n);
    memcpy(m, b, n);
    nne_le_wr32(section_entry(m, NNE_MF_SEC_ATTACHED) + NNE_MF_SE_TYPE, 1000);
    nne_mf_fix_checksums(m, n);
    CHECK_OK(nne_model_read_mem(m, n, &g2));
    CHECK(g2 && g2->n_attached == 0);
    nne_graph_free(g2);
    g2 = NULL;

    /* Hostile ATTACHED tables (checksums recomputed), each refused with its status. */
    struct {
        const char *what;
        int field; /* 0 count, 1 reserved, 2 offset of entry 0, 3 size of entry 0, 4 offset of
                      entry 1 onto entry 0 */
        uint64_t v;
        nne_status want;
        const char *needle;
    } cases[] = {
        {"count 0", 0, 0, NNE_ERR_FORMAT, "no graphs"},
        {"count 17", 0, 17, NNE_ERR_LIMIT, "at most 16"},
        {"count 3 (a zero entry)", 0, 3, NNE_ERR_FORMAT, "graph 2 at [0,"},
        {"reserved", 1, 1, NNE_ERR_FORMAT, "reserved"},
        {"misaligned", 2, 8, NNE_ERR_FORMAT, "misaligned"},
        {"inside the entry table", 2, 0, NNE_ERR_FORMAT, "ATTACHED: graph 0"},
        {"size past the section", 3, 1u << 30, NNE_ERR_FORMAT, "outside the section"},
        {"truncated file", 3, 64, NNE_ERR_FORMAT, "ATTACHED graph 0: "},
        {"overlap", 4, 64 * 2, NNE_ERR_FORMAT, "overlapping"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(m, b, n);
        uint64_t off;
        uint8_t *e = attached_entry(m, 0, &off);
        uint8_t *t = m + off;
        switch (cases[k].field) {
        case 0:
            nne_le_wr32(t, (uint32_t)cases[k].v);
            break;
        case 1:
            nne_le_wr32(t + 4, (uint32_t)cases[k].v);
            break;
        case 2:
            nne_le_wr64(e + NNE_MF_A_OFFSET, cases[k].v);
            break;
        case 3:
            nne_le_wr64(e + NNE_MF_A_SIZE, cases[k].v);
            break;
        default:
            nne_le_wr64(e + NNE_MF_ATTACHED_SIZE + NNE_MF_A_OFFSET, cases[k].v);
            break;
        }
        nne_mf_fix_checksums(m, n);
        const nne_status s = nne_model_read_mem(m, n, &g2);
        CHECK_MSG(s == cases[k].want && !g2, "%s: %s: %s", cases[k].what, nne_status_str(s),
                  nne_last_error());
        CHECK_MSG(strstr(nne_last_error(), cases[k].needle), "%s: '%s' lacks '%s'", cases[k].what,
                  nne_last_error(), cases[k].needle);
        nne_graph_free(g2);
        g2 = NULL;
    }
    /* Damage inside an attached file: its own checksum, reported with its place. */
    {
        memcpy(m, b, n);
        uint64_t off;
        uint8_t *e = attached_entry(m, 1, &off);
        uint8_t *f = m + off + nne_le_rd64(e + NNE_MF_A_OFFSET);
        f[nne_le_rd64(e + NNE_MF_A_SIZE) - 1] ^= 1;
        nne_mf_fix_checksums(m, n);
        CHECK_STATUS(nne_model_read_mem(m, n, &g2), NNE_ERR_CHECKSUM);
        CHECK(strstr(nne_last_error(), "model: ATTACHED graph 1: ") != NULL);
        /* ... and behind its checksums too: a second graph named "tiny". */
        memcpy(m, b, n);
        const uint64_t sz = nne_le_rd64(e + NNE_MF_A_SIZE);
        uint8_t *names = f + section_offset(f, NNE_MF_SEC_STRINGS);
        CHECK(memcmp(names, "tinz", 5) == 0);
        names[3] = 'y';
        nne_mf_fix_checksums(f, (size_t)sz);
        nne_mf_fix_checksums(m, n);
        CHECK_STATUS(nne_model_read_mem(m, n, &g2), NNE_ERR_FORMAT);
        CHECK(strstr(nne_last_error(), "a second graph named 'tiny'") != NULL);
    }
    /* An attached file with attachments of its own: the last attached file replaced by a
     * file that has an ATTACHED section. */
    {
        uint64_t off;
        uint8_t *e = attached_entry(b, 1, &off);
        const uint64_t at = off + nne_le_rd64(e + NNE_MF_A_OFFSET);
        uint8_t *x = nne_calloc((size_t)at + n, 1);
        memcpy(x, b, (size_t)at);
        memcpy(x + at, b, n); /* the whole file, as attached graph 1 */
        const size_t nx = (size_t)at + n;
        uint8_t *ex = attached_entry(x, 1, &off);
        nne_le_wr64(ex + NNE_MF_A_SIZE, n);
        nne_le_wr64((uint8_t *)section_entry(x, NNE_MF_SEC_ATTACHED) + NNE_MF_SE_SIZE, nx - off);
        nne_le_wr64(x + NNE_MF_OFF_FILE_SIZE, nx);
        nne_mf_fix_checksums(x, nx);
        CHECK_STATUS(nne_model_read_mem(x, nx, &g2), NNE_ERR_FORMAT);
        CHECK_MSG(strstr(nne_last_error(), "attached graphs of its own") != NULL, "%s",
                  nne_last_error());
        nne_free(x);
    }
    /* Every truncation of the file fails cleanly. */
    for (size_t len = 0; len < n; len += 7) {
        CHECK(nne_model_read_mem(b, len, &g2) != NNE_OK);
        CHECK(g2 == NULL);
    }
    nne_free(m);
    nne_free(b);
    nne_graph_free(g);
}

static void test_write_errors(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_graph_create("uninferred", &g));
    int32_t x = -1;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_2d(1, 2), &x));
    uint8_t *b = (uint8_t *)(uintptr_t)1;
    size_t n = 1;
    CHECK_STATUS(nne_model_write_mem(g, &b, &n), NNE_ERR_INVALID_ARG);
    CHECK(b == NULL && n == 0);
    CHECK_STATUS(nne_model_write_mem(NULL, &b, &n), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_model_write_mem(g, NULL, &n), NNE_ERR_INVALID_ARG);
    nne_graph_free(g);
}

static int count_temp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void test_atomic_write(void) {
    nne_graph *small = build_small(), *tiny = build_tiny();
    if (!small || !tiny) return;
    char dir[] = "/tmp/nne_mf_atomic_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], missing[256], sub[256];
    snprintf(path, sizeof path, "%s/model.nne", dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/model.nne", dir);
    snprintf(sub, sizeof sub, "%s/subdir", dir);

    /* A path in a directory that does not exist: a clean I/O error naming the path. */
    CHECK_STATUS(nne_model_write_file(small, missing), NNE_ERR_IO);
    CHECK(strstr(nne_last_error(), missing) != NULL);

    /* Write, then replace: the file holds the new model, with the old file's mode. */
    size_t ns = 0, nt = 0;
    uint8_t *bs = write_mem(small, &ns), *bt = write_mem(tiny, &nt);
    CHECK_OK(nne_model_write_file(small, path));
    CHECK(chmod(path, 0600) == 0);
    CHECK_OK(nne_model_write_file(tiny, path));
    size_t got = 0;
    unsigned char *f = nne_test_read_file(path, &got);
    CHECK(f && got == nt && memcmp(f, bt, nt) == 0);
    nne_free(f);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* A failed write leaves the existing file as it was. An un-inferred graph fails before
     * any file is touched; renaming onto a directory fails after the temp file is written. */
    nne_graph *bad = NULL;
    CHECK_OK(nne_graph_create("bad", &bad));
    CHECK_STATUS(nne_model_write_file(bad, path), NNE_ERR_INVALID_ARG);
    nne_graph_free(bad);
    CHECK(mkdir(sub, 0700) == 0);
    CHECK_STATUS(nne_model_write_file(small, sub), NNE_ERR_IO);
    CHECK(count_temp_files(dir) == 0);
    f = nne_test_read_file(path, &got);
    CHECK(f && got == nt && memcmp(f, bt, nt) == 0);
    nne_free(f);

    /* Reading: a missing file, a directory, and an error message that names the path. */
    nne_graph *g2 = NULL;
    CHECK_STATUS(nne_model_read_file(missing, &g2), NNE_ERR_NOT_FOUND);
    CHECK_STATUS(nne_model_read_file(sub, &g2), NNE_ERR_IO);
    FILE *tf = fopen(path, "r+b");
    CHECK(tf != NULL);
    if (tf) {
        fseek(tf, 0, SEEK_SET);
        fputc('X', tf);
        fclose(tf);
    }
    CHECK_STATUS(nne_model_read_file(path, &g2), NNE_ERR_FORMAT);
    CHECK(strncmp(nne_last_error(), path, strlen(path)) == 0);
    CHECK(g2 == NULL);

    unlink(path);
    rmdir(sub);
    rmdir(dir);
    nne_free(bs);
    nne_free(bt);
    nne_graph_free(small);
    nne_graph_free(tiny);
}

int main(void) {
    NNE_RUN(test_round_trip_all_ops);
    NNE_RUN(test_round_trip_cae);
    NNE_RUN(test_round_trip_file);
    NNE_RUN(test_golden);
    NNE_RUN(test_fuzz_seeds);
    NNE_RUN(test_truncation);
    NNE_RUN(test_bit_flips);
    NNE_RUN(test_hostile);
    NNE_RUN(test_unknown_sections);
    NNE_RUN(test_attached);
    NNE_RUN(test_write_errors);
    NNE_RUN(test_atomic_write);
    return nne_test_summary();
}
