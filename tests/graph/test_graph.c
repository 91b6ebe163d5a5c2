/* Graph builder, validation / shape inference and the arena planner. */
#include <string.h>

#include "nnedge/graph.h"
#include "testutil.h"

static nne_op_params conv_params(int k, int stride, int pad_mode, int groups) {
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = k;
    p.conv.stride[0] = p.conv.stride[1] = stride;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad_mode = pad_mode;
    p.conv.groups = groups;
    return p;
}

static void test_builder_errors(void) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("t", &g));
    int32_t x, w;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 8, 8, 4), &x));
    CHECK_STATUS(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 8, 8, 4), NULL),
                 NNE_ERR_INVALID_ARG); /* duplicate name */
    CHECK(strstr(nne_last_error(), "'x'") != NULL);
    CHECK_STATUS(nne_graph_add_input(g, "", NNE_F32, nne_shape_1d(1), NULL), NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_graph_add_input(g, "z", NNE_F32, nne_shape_4d(1, 0, 8, 4), NULL),
                 NNE_ERR_LIMIT);
    CHECK_STATUS(nne_graph_add_input(g, "bad", (nne_dtype)99, nne_shape_1d(1), NULL),
                 NNE_ERR_INVALID_ARG);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK_STATUS(nne_graph_add_input(g, longname, NNE_F32, nne_shape_1d(1), NULL), NNE_ERR_LIMIT);
    CHECK_OK(nne_graph_add_constant(g, "w", NNE_F32, nne_shape_4d(6, 3, 3, 4), NULL, &w));
    nne_op_params p = conv_params(3, 1, NNE_PAD_SAME, 1);
    int32_t ins[2] = {x, w}, bad[2] = {x, 1000};
    CHECK_STATUS(nne_graph_add_node(g, "c", NNE_OP_CONV2D, &p, bad, 2, "y", NULL),
                 NNE_ERR_INVALID_ARG);
    CHECK_STATUS(nne_graph_add_node(g, "c", (nne_op_type)77, &p, ins, 2, "y", NULL),
                 NNE_ERR_INVALID_ARG);
    int32_t y;
    CHECK_OK(nne_graph_add_node(g, "c", NNE_OP_CONV2D, &p, ins, 2, "y", &y));
    CHECK_STATUS(nne_graph_add_node(g, "c", NNE_OP_RELU, NULL, &y, 1, "y2", NULL),
                 NNE_ERR_INVALID_ARG); /* duplicate node name */
    CHECK_OK(nne_graph_mark_output(g, y));
    CHECK_STATUS(nne_graph_mark_output(g, y), NNE_ERR_INVALID_ARG);
    CHECK_OK(nne_graph_infer(g));
    CHECK(g->tensors[y].shape.dim[1] == 8 && g->tensors[y].shape.dim[3] == 6);
    CHECK(nne_graph_find_tensor(g, "y") == y);
    CHECK(nne_graph_find_tensor(g, "nope") == -1);
    CHECK(nne_graph_find_node(g, "c") == 0);
    CHECK(nne_graph_producer(g, y) == 0);
    CHECK(nne_graph_producer(g, x) == -1);
    /* Metadata */
    CHECK_OK(nne_graph_set_meta(g, "k", "v1"));
    CHECK_OK(nne_graph_set_meta(g, "k", "v2"));
    CHECK(g->n_meta == 1 && !strcmp(nne_graph_get_meta(g, "k"), "v2"));
    CHECK(nne_graph_get_meta(g, "missing") == NULL);
    /* Changing the input shape re-infers. */
    CHECK_OK(nne_graph_set_input_shape(g, 0, nne_shape_4d(2, 5, 7, 4)));
    CHECK(!g->inferred);
    CHECK_OK(nne_graph_infer(g));
    CHECK(g->tensors[y].shape.dim[0] == 2 && g->tensors[y].shape.dim[2] == 7);
    CHECK_STATUS(nne_graph_set_input_shape(g, 3, nne_shape_1d(1)), NNE_ERR_INVALID_ARG);
    nne_graph_free(g);
}

/* Many names: the hash index must keep lookups right across growth. */
static void test_many_names(void) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("t", &g));
    int32_t x;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_1d(4), &x));
    char name[32], out[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "relu_%d", i);
        snprintf(out, sizeof out, "t_%d", i);
        CHECK_OK(nne_graph_add_node(g, name, NNE_OP_RELU, NULL, &x, 1, out, &x));
    }
    for (int i = 0; i < 2000; i += 37) {
        snprintf(name, sizeof name, "relu_%d", i);
        snprintf(out, sizeof out, "t_%d", i);
        CHECK(nne_graph_find_node(g, name) == i);
        CHECK(nne_graph_find_tensor(g, out) == i + 1);
    }
    CHECK_OK(nne_graph_mark_output(g, x));
    CHECK_OK(nne_graph_plan(g));
    /* A chain needs only two live buffers at a time plus the input and output that stay. */
    CHECK(g->arena_size <= 4 * 64);
    nne_graph_free(g);
}

typedef struct bad_case {
    const char *what;
    nne_status want;
} bad_case;

/* Build x[1,9,9,4] -> conv(w) with the given tweak and expect infer to fail. */
static void expect_conv_failure(int kernel, int stride, int groups, int wout, int win, int pad,
                                int out_pad, nne_op_type op, nne_status want, const char *what) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("t", &g));
    int32_t x, w, y;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 9, 9, 4), &x));
    CHECK_OK(nne_graph_add_constant(
        g, "w", NNE_F32, nne_shape_4d(wout, kernel > 0 ? kernel : 1, kernel > 0 ? kernel : 1, win),
        NULL, &w));
    nne_op_params p = conv_params(kernel, stride, NNE_PAD_EXPLICIT, groups);
    p.conv.pad[0] = p.conv.pad[1] = p.conv.pad[2] = p.conv.pad[3] = pad;
    p.conv.out_pad[0] = p.conv.out_pad[1] = out_pad;
    int32_t ins[2] = {x, w};
    CHECK_OK(nne_graph_add_node(g, "conv", op, &p, ins, 2, "y", &y));
    nne_status s = nne_graph_infer(g);
    CHECK_MSG(s == want, "%s: got %s (%s)", what, nne_status_str(s), nne_last_error());
    if (s != NNE_OK) CHECK(strstr(nne_last_error(), "'conv'") != NULL);
    nne_graph_free(g);
}

static void test_infer_errors(void) {
    expect_conv_failure(3, 1, 1, 8, 4, 0, 0, NNE_OP_CONV2D, NNE_OK, "valid conv");
    expect_conv_failure(0, 1, 1, 8, 4, 0, 0, NNE_OP_CONV2D, NNE_ERR_FORMAT, "zero kernel");
    expect_conv_failure(3, 0, 1, 8, 4, 0, 0, NNE_OP_CONV2D, NNE_ERR_FORMAT, "zero stride");
    expect_conv_failure(3, 1, 3, 8, 4, 0, 0, NNE_OP_CONV2D, NNE_ERR_SHAPE, "groups not dividing");
    expect_conv_failure(3, 1, 1, 8, 3, 0, 0, NNE_OP_CONV2D, NNE_ERR_SHAPE, "weight in-ch mismatch");
    expect_conv_failure(11, 1, 1, 8, 4, 0, 0, NNE_OP_CONV2D, NNE_ERR_SHAPE, "kernel > input");
    expect_conv_failure(3, 1, 1, 8, 4, -1, 0, NNE_OP_CONV2D, NNE_ERR_FORMAT, "negative pad");
    expect_conv_failure(3, 1, 1, 8, 4, 0, 1, NNE_OP_CONV2D, NNE_ERR_FORMAT, "out_pad on conv");
    expect_conv_failure(3, 2, 1, 8, 4, 0, 1, NNE_OP_CONV_TRANSPOSE2D, NNE_OK, "transpose");
    expect_conv_failure(3, 2, 1, 8, 4, 0, 2, NNE_OP_CONV_TRANSPOSE2D, NNE_ERR_FORMAT,
                        "out_pad >= stride");
    expect_conv_failure(3, 1, 1, 8, 4, 6, 0, NNE_OP_CONV_TRANSPOSE2D, NNE_ERR_SHAPE,
                        "transpose cropped to nothing");
}

static void test_topology_errors(void) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("t", &g));
    int32_t x, a, b;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_1d(4), &x));
    CHECK_OK(nne_graph_add_node(g, "r1", NNE_OP_RELU, NULL, &x, 1, "a", &a));
    CHECK_OK(nne_graph_add_node(g, "r2", NNE_OP_RELU, NULL, &a, 1, "b", &b));
    /* Point r1 at its successor's output: not topological. */
    g->nodes[0].inputs[0] = b;
    g->inferred = false;
    CHECK_STATUS(nne_graph_infer(g), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "topological") != NULL);
    g->nodes[0].inputs[0] = x;
    /* A data input that is a constant is rejected; so is a weight that is not. */
    int32_t c;
    CHECK_OK(nne_graph_add_constant(g, "c", NNE_F32, nne_shape_1d(4), NULL, &c));
    int32_t add_in[2] = {b, c};
    CHECK_OK(nne_graph_add_node(g, "add", NNE_OP_ADD, NULL, add_in, 2, "s", NULL));
    CHECK_STATUS(nne_graph_infer(g), NNE_ERR_FORMAT);
    nne_graph_free(g);

    CHECK_OK(nne_graph_create("t", &g));
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 4, 4, 2), &x));
    int32_t pin[2] = {x, x};
    CHECK_OK(nne_graph_add_node(g, "p", NNE_OP_PRELU, NULL, pin, 2, "y", NULL));
    CHECK_STATUS(nne_graph_infer(g), NNE_ERR_FORMAT);
    nne_graph_free(g);
}

static void test_other_ops_infer(void) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("t", &g));
    int32_t x, y, z, f, r;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(2, 6, 5, 3), &x));
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.pool.kernel[0] = p.pool.kernel[1] = 2;
    p.pool.stride[0] = p.pool.stride[1] = 2;
    p.pool.pad_mode = NNE_PAD_SAME;
    CHECK_OK(nne_graph_add_node(g, "pool", NNE_OP_MAXPOOL2D, &p, &x, 1, "y", &y));
    memset(&p, 0, sizeof p);
    p.upsample.scale[0] = p.upsample.scale[1] = 2;
    p.upsample.mode = NNE_UPSAMPLE_BILINEAR;
    CHECK_OK(nne_graph_add_node(g, "up", NNE_OP_UPSAMPLE, &p, &y, 1, "z", &z));
    int32_t cin[2] = {z, z};
    memset(&p, 0, sizeof p);
    p.concat.axis = -1;
    int32_t cc;
    CHECK_OK(nne_graph_add_node(g, "cat", NNE_OP_CONCAT, &p, cin, 2, "cc", &cc));
    CHECK_OK(nne_graph_add_node(g, "flat", NNE_OP_FLATTEN, NULL, &cc, 1, "f", &f));
    memset(&p, 0, sizeof p);
    p.reshape.ndim = 3;
    p.reshape.dim[0] = 2;
    p.reshape.dim[1] = -1;
    p.reshape.dim[2] = 6;
    CHECK_OK(nne_graph_add_node(g, "rs", NNE_OP_RESHAPE, &p, &f, 1, "r", &r));
    CHECK_OK(nne_graph_infer(g));
    CHECK(g->tensors[y].shape.dim[1] == 3 && g->tensors[y].shape.dim[2] == 3);
    CHECK(g->tensors[z].shape.dim[1] == 6 && g->tensors[z].shape.dim[2] == 6);
    CHECK(g->tensors[cc].shape.dim[3] == 6);
    CHECK(g->tensors[f].shape.ndim == 2 && g->tensors[f].shape.dim[1] == 216);
    CHECK(g->tensors[r].shape.dim[1] == 36);
    g->nodes[4].params.reshape.dim[2] = 7; /* 216 is not a multiple of 14 */
    g->inferred = false;
    CHECK_STATUS(nne_graph_infer(g), NNE_ERR_SHAPE);
    nne_graph_free(g);
}

/* Random DAGs: tensors whose lifetimes overlap never share arena bytes. */
static void test_plan_no_overlap(void) {
    nne_test_rng rng;
    nne_test_rng_seed(&rng, 42);
    for (int iter = 0; iter < 50; iter++) {
        nne_graph *g;
        CHECK_OK(nne_graph_create("rand", &g));
        int32_t ts[64];
        int nt = 0;
        int64_t len = nne_test_rng_int(&rng, 1, 300);
        CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_1d(len), &ts[nt++]));
        int nodes = nne_test_rng_int(&rng, 1, 40);
        char name[32], out[32];
        for (int i = 0; i < nodes; i++) {
            snprintf(name, sizeof name, "n%d", i);
            snprintf(out, sizeof out, "t%d", i);
            int32_t a = ts[nne_test_rng_int(&rng, 0, nt - 1)];
            int32_t b = ts[nne_test_rng_int(&rng, 0, nt - 1)];
            int32_t ab[2] = {a, b}, t;
            if (nne_test_rng_int(&rng, 0, 1))
                CHECK_OK(nne_graph_add_node(g, name, NNE_OP_ADD, NULL, ab, 2, out, &t));
            else
                CHECK_OK(nne_graph_add_node(g, name, NNE_OP_SIGMOID, NULL, &a, 1, out, &t));
            if (nt < 64) ts[nt++] = t;
        }
        CHECK_OK(nne_graph_mark_output(g, ts[nt - 1]));
        CHECK_OK(nne_graph_plan(g));
        /* lifetimes */
        int32_t first[128], last[128];
        for (int32_t i = 0; i < g->n_tensors; i++) {
            first[i] = g->tensors[i].kind == NNE_TENSOR_INPUT ? 0 : nne_graph_producer(g, i);
            last[i] = first[i];
        }
        for (int32_t ni = 0; ni < g->n_nodes; ni++)
            for (int k = 0; k < g->nodes[ni].n_inputs; k++) {
                int32_t t = g->nodes[ni].inputs[k];
                if (last[t] < ni) last[t] = ni;
            }
        last[g->outputs[0]] = g->n_nodes;
        last[0] = g->n_nodes;
        for (int32_t i = 0; i < g->n_tensors; i++) {
            const nne_tensor *a = &g->tensors[i];
            CHECK(a->arena_offset >= 0 && a->arena_offset % NNE_ALIGN == 0);
            CHECK((size_t)a->arena_offset + nne_tensor_nbytes(a) <= g->arena_size);
            for (int32_t j = i + 1; j < g->n_tensors; j++) {
                const nne_tensor *b = &g->tensors[j];
                bool live = first[i] <= last[j] && first[j] <= last[i];
                bool mem = a->arena_offset < b->arena_offset + (int64_t)nne_tensor_nbytes(b) &&
                           b->arena_offset < a->arena_offset + (int64_t)nne_tensor_nbytes(a);
                CHECK_MSG(!(live && mem), "iter %d: '%s' and '%s' overlap", iter, a->name, b->name);
            }
        }
        nne_graph_free(g);
    }
}

int main(void) {
    NNE_RUN(test_builder_errors);
    NNE_RUN(test_many_names);
    NNE_RUN(test_infer_errors);
    NNE_RUN(test_topology_errors);
    NNE_RUN(test_other_ops_infer);
    NNE_RUN(test_plan_no_overlap);
    return nne_test_summary();
}
