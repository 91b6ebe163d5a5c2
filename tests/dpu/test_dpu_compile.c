/* The DPU compiler (fusion, concat by addressing, tiling under the buffer sizes,
 * fixed-point positions) and the timing model's cycle formulas. */
#include <string.h>

#include "dpu/dpu_internal.h"
#include "nnedge/dpu.h"
#include "testutil.h"

static nne_op_params conv_params(int k, int stride) {
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = k;
    p.conv.stride[0] = p.conv.stride[1] = stride;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad_mode = NNE_PAD_SAME;
    p.conv.groups = 1;
    return p;
}

static int32_t conv(nne_graph *g, const char *name, int32_t x, int cin, int cout, int k, int stride,
                    nne_op_type act) {
    char wn[64], on[64], an[64];
    snprintf(wn, sizeof wn, "%s.w", name);
    snprintf(on, sizeof on, "%s.out", name);
    int32_t w, y;
    CHECK_OK(nne_graph_add_constant(g, wn, NNE_F32, nne_shape_4d(cout, k, k, cin), NULL, &w));
    nne_op_params p = conv_params(k, stride);
    int32_t ins[2] = {x, w};
    CHECK_OK(nne_graph_add_node(g, name, NNE_OP_CONV2D, &p, ins, 2, on, &y));
    if (act == NNE_OP_INVALID) return y;
    snprintf(an, sizeof an, "%s.act", name);
    snprintf(on, sizeof on, "%s.act.out", name);
    memset(&p, 0, sizeof p);
    p.leaky.alpha = 0.1f;
    int32_t z;
    CHECK_OK(nne_graph_add_node(g, an, act, &p, &y, 1, on, &z));
    return z;
}

/* x[1,20,24,8] -> conv3x3 8->16 relu -> maxpool 2x2 -> {conv1x1 16->16 leaky, conv3x3 16->16}
 * -> concat (32) -> add(concat, conv1x1 32->32) -> output [1,10,12,32]. */
static nne_graph *small_graph(void) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("small", &g));
    int32_t x;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 20, 24, 8), &x));
    int32_t a = conv(g, "c1", x, 8, 16, 3, 1, NNE_OP_RELU);
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.pool.kernel[0] = p.pool.kernel[1] = 2;
    p.pool.stride[0] = p.pool.stride[1] = 2;
    p.pool.pad_mode = NNE_PAD_VALID;
    int32_t pl;
    CHECK_OK(nne_graph_add_node(g, "pool", NNE_OP_MAXPOOL2D, &p, &a, 1, "pool.out", &pl));
    int32_t b1 = conv(g, "b1", pl, 16, 16, 1, 1, NNE_OP_LEAKY_RELU);
    int32_t b2 = conv(g, "b2", pl, 16, 16, 3, 1, NNE_OP_INVALID);
    memset(&p, 0, sizeof p);
    p.concat.axis = -1;
    int32_t cat, cins[2] = {b1, b2};
    CHECK_OK(nne_graph_add_node(g, "cat", NNE_OP_CONCAT, &p, cins, 2, "cat.out", &cat));
    int32_t c3 = conv(g, "c3", cat, 32, 32, 1, 1, NNE_OP_INVALID);
    int32_t y, ains[2] = {cat, c3};
    CHECK_OK(nne_graph_add_node(g, "add", NNE_OP_ADD, NULL, ains, 2, "y", &y));
    CHECK_OK(nne_graph_mark_output(g, y));
    CHECK_OK(nne_graph_infer(g));
    return g;
}

static void test_small_graph(void) {
    nne_graph *g = small_graph();
    nne_dpu_arch a;
    CHECK_OK(nne_dpu_arch_get("b1024", &a)); /* case-insensitive */
    nne_dpu_program p;
    CHECK_OK(nne_dpu_compile(g, &a, NULL, &p));
    /* c1(+relu), pool, b1(+leaky), b2, c3, add: the concat is addressing only. */
    CHECK(p.n_layers == 6);
    if (p.n_layers != 6) goto out;
    CHECK(!strcmp(p.layers[0].name, "c1") && p.layers[0].act == NNE_DPU_ACT_RELU);
    CHECK(p.layers[1].kind == NNE_DPU_POOL);
    CHECK(p.layers[2].act == NNE_DPU_ACT_LEAKY && p.layers[3].act == NNE_DPU_ACT_NONE);
    CHECK(p.layers[5].kind == NNE_DPU_ELEW);
    CHECK(p.layers[0].flags & NNE_DPU_LAYER_QUANT_PLACEHOLDER);
    CHECK(p.region_size[NNE_DPU_REG_INPUT] == 20 * 24 * 8);
    CHECK(p.region_size[NNE_DPU_REG_OUTPUT] == 10 * 12 * 32);
    /* b1 and b2 save into the concat tensor: pixel stride 32, b2 at channel offset 16. */
    uint32_t off_b1 = UINT32_MAX, off_b2 = UINT32_MAX;
    for (uint32_t i = 0; i < p.n_instrs; i++) {
        const nne_dpu_instr *in = &p.instrs[i];
        if (in->op == NNE_DPU_CONV && in->layer == 2) CHECK(in->u.conv.leaky_alpha == 26);
        if (in->op != NNE_DPU_SAVE || (in->layer != 2 && in->layer != 3)) continue;
        CHECK(in->u.mem.col_stride == 32 && in->u.mem.row_stride == 12 * 32);
        uint32_t *o = in->layer == 2 ? &off_b1 : &off_b2;
        if (in->u.mem.ddr_offset < *o) *o = in->u.mem.ddr_offset;
    }
    CHECK(off_b2 == off_b1 + 16);
    /* The add reads the concat tensor through the same view. */
    bool add_reads_cat = false;
    for (uint32_t i = p.layers[5].first; i < p.layers[5].first + p.layers[5].count; i++)
        if (p.instrs[i].op == NNE_DPU_LOAD && p.instrs[i].u.mem.ddr_offset == off_b1)
            add_reads_cat = true;
    CHECK(add_reads_cat);
    /* Timing: every layer takes time; the pool is cheaper than the 3x3 conv. */
    nne_dpu_board b;
    CHECK_OK(nne_dpu_board_get("zcu104", &b));
    nne_dpu_layer_time t[6];
    double total;
    CHECK_OK(nne_dpu_time(&p, &b, t, &total));
    for (int l = 0; l < 6; l++) CHECK(t[l].cycles > 0 && t[l].load_bytes > 0);
    CHECK(t[1].compute_cycles < t[0].compute_cycles);
out:
    nne_dpu_program_free(&p);
    nne_graph_free(g);
}

static void test_fixed_points(void) {
    /* pow2 quantization parameters become the CONV's fixed-point positions. */
    nne_graph *g;
    CHECK_OK(nne_graph_create("q", &g));
    int32_t x;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 8, 8, 4), &x));
    int32_t y = conv(g, "c", x, 4, 8, 3, 1, NNE_OP_INVALID);
    CHECK_OK(nne_graph_mark_output(g, y));
    CHECK_OK(nne_graph_infer(g));
    float s_in = 1.0f / 128, s_w = 1.0f / 64, s_out = 1.0f / 16;
    int32_t zp = 0;
    CHECK_OK(nne_quant_set(&g->tensors[x].quant, -1, 1, &s_in, &zp, true));
    CHECK_OK(
        nne_quant_set(&g->tensors[nne_graph_find_tensor(g, "c.w")].quant, -1, 1, &s_w, &zp, true));
    CHECK_OK(nne_quant_set(&g->tensors[y].quant, -1, 1, &s_out, &zp, true));
    nne_dpu_arch a;
    nne_dpu_arch_get("B512", &a);
    nne_dpu_program p;
    CHECK_OK(nne_dpu_compile(g, &a, NULL, &p));
    bool seen = false;
    for (uint32_t i = 0; i < p.n_instrs; i++)
        if (p.instrs[i].op == NNE_DPU_CONV) {
            const nne_dpu_conv *c = &p.instrs[i].u.conv;
            CHECK(c->fp_in == 7 && c->fp_w == 6 && c->fp_out == 4);
            seen = true;
        }
    CHECK(seen);
    /* No bias tensor: its position is a placeholder, and the layer says so. */
    CHECK(p.layers[0].flags & NNE_DPU_LAYER_QUANT_PLACEHOLDER);
    nne_dpu_program_free(&p);
    nne_graph_free(g);
}

static void test_unsupported(void) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("u", &g));
    int32_t x, y;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 8, 8, 4), &x));
    CHECK_OK(nne_graph_add_node(g, "sig", NNE_OP_SIGMOID, NULL, &x, 1, "y", &y));
    CHECK_OK(nne_graph_mark_output(g, y));
    CHECK_OK(nne_graph_infer(g));
    nne_dpu_arch a;
    nne_dpu_arch_get("B512", &a);
    nne_dpu_program p;
    CHECK_STATUS(nne_dpu_compile(g, &a, NULL, &p), NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "'sig'") != NULL);
    CHECK(p.instrs == NULL);
    nne_graph_free(g);
}

static void expect_limit(int channels, int k, const char *msg) {
    nne_graph *g;
    CHECK_OK(nne_graph_create("w", &g));
    int32_t x;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 4, 4, channels), &x));
    int32_t y = conv(g, "big", x, channels, 8, k, 1, NNE_OP_INVALID);
    CHECK_OK(nne_graph_mark_output(g, y));
    CHECK_OK(nne_graph_infer(g));
    nne_dpu_arch a;
    nne_dpu_arch_get("B512", &a);
    nne_dpu_program p;
    CHECK_STATUS(nne_dpu_compile(g, &a, NULL, &p), NNE_ERR_LIMIT);
    CHECK(strstr(nne_last_error(), "'big'") != NULL);
    CHECK_MSG(strstr(nne_last_error(), msg) != NULL, "'%s' lacks '%s'", nne_last_error(), msg);
    nne_graph_free(g);
}

static void test_limits(void) {
    /* 14000 input channels on B512: one output pixel's 3x3 window is 126000 B, and two of
     * them (double buffering) exceed the 128 KiB feature-map buffer; there is no
     * input-channel tiling, so nothing fits. */
    expect_limit(14000, 3, "no tiling fits");
    /* 5 x 5 x 8192 = 204800 taps: past the int32 accumulator's bound of 131071. */
    expect_limit(8192, 5, "taps");
}

static void test_cycle_formulas(void) {
    /* One CONV of 7 x 13 outputs, 3 -> 20 channels, 3x3 on B512 (pp 4, icp 8, ocp 8):
     * 7 rows x ceil(13/4) x ceil(20/8) x kh x (aug: ceil(3*3/8) = 2) = 7*4*3*3*2 = 504.
     * Without augmentation: 7*4*3 * 3*3*ceil(3/8) = 756. */
    nne_dpu_arch a;
    nne_dpu_arch_get("B512", &a);
    nne_dpu_instr in;
    memset(&in, 0, sizeof in);
    in.op = NNE_DPU_CONV;
    nne_dpu_conv *c = &in.u.conv;
    c->out_rows = 7, c->out_cols = 13, c->in_ch = 3, c->out_ch = 20, c->kh = c->kw = 3;
    c->flags = NNE_DPU_CONV_AUG;
    uint64_t ddr;
    CHECK(nne_dpu_instr_cycles(&a, &in, &ddr) == 504 && ddr == 0);
    c->flags = 0;
    CHECK(nne_dpu_instr_cycles(&a, &in, &ddr) == 756);
    /* SAVE of 5 x 6 pixels x 20 channels: one word (<= 8 channels) per cycle: 30 x 3 = 90;
     * contiguous 600 B = 38 beats of 16 B. */
    memset(&in, 0, sizeof in);
    in.op = NNE_DPU_SAVE;
    in.u.mem.rows = 5, in.u.mem.cols = 6, in.u.mem.channels = 20;
    in.u.mem.col_stride = 20, in.u.mem.row_stride = 120;
    CHECK(nne_dpu_instr_cycles(&a, &in, &ddr) == 90 && ddr == 38 * 16);
    /* The same block as a channel slice of a 64-channel tensor: 30 runs of 20 B = 2 beats. */
    in.u.mem.col_stride = 64, in.u.mem.row_stride = 6 * 64;
    CHECK(nne_dpu_instr_cycles(&a, &in, &ddr) == 90 && ddr == 30 * 2 * 16);
    in.op = NNE_DPU_LOAD;
    CHECK(nne_dpu_instr_cycles(&a, &in, &ddr) == 60);
}

static void test_memory_bound(void) {
    /* A 1x1 conv with few channels moves more bytes than it computes: with a slow DDR the
     * layer takes its DDR time, with a fast one its engines' time. */
    nne_graph *g;
    CHECK_OK(nne_graph_create("m", &g));
    int32_t x;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 64, 64, 16), &x));
    int32_t y = conv(g, "pw", x, 16, 16, 1, 1, NNE_OP_RELU);
    CHECK_OK(nne_graph_mark_output(g, y));
    CHECK_OK(nne_graph_infer(g));
    nne_dpu_arch a;
    nne_dpu_arch_get("B4096", &a);
    nne_dpu_board b;
    nne_dpu_board_get("zcu102", &b);
    nne_dpu_program p;
    CHECK_OK(nne_dpu_compile(g, &a, NULL, &p));
    nne_dpu_layer_time fast, slow;
    CHECK_OK(nne_dpu_time(&p, &b, &fast, NULL));
    b.ddr_gbps = 0.5;
    CHECK_OK(nne_dpu_time(&p, &b, &slow, NULL));
    CHECK(slow.cycles >= slow.ddr_cycles && slow.ddr_cycles > slow.compute_cycles);
    CHECK(slow.cycles > 2 * fast.cycles);
    /* Throughput: cores help until the DDR saturates. */
    nne_dpu_board_get("zcu102", &b);
    uint64_t bytes = fast.load_bytes + fast.save_bytes;
    double f1 = nne_dpu_throughput_fps(&b, 1.0, bytes, 1, 1);
    double f3 = nne_dpu_throughput_fps(&b, 1.0, bytes, 3, 3);
    CHECK_NEAR(f1, 1000.0, 1e-9);
    CHECK_NEAR(f3, 3000.0, 1e-9);
    CHECK_NEAR(nne_dpu_throughput_fps(&b, 1.0, bytes, 3, 1), 1000.0, 1e-9);
    double cap = b.ddr_gbps * 1e9 * b.burst_efficiency / (double)bytes;
    CHECK_NEAR(nne_dpu_throughput_fps(&b, 1e-3, bytes, 3, 3), cap, 1e-6 * cap);
    nne_dpu_program_free(&p);
    nne_graph_free(g);
}

static void test_arch_presets(void) {
    const char *const *n = nne_dpu_arch_names();
    int count = 0;
    for (; *n; n++, count++) {
        nne_dpu_arch a;
        CHECK_OK(nne_dpu_arch_get(*n, &a));
        /* B<ops per clock>, except B1152 whose 4 x 12 x 12 x 2 = 1152 (Table 1 prints 1150). */
        CHECK(nne_dpu_arch_ops_per_clock(&a) == atoi(*n + 1));
        CHECK(a.fmap_bytes == 2u * a.pp * a.icp * 2048 &&
              a.weight_bytes == (uint32_t)a.ocp * a.icp * 2048);
    }
    CHECK(count == 8);
    nne_dpu_arch a;
    CHECK_STATUS(nne_dpu_arch_get("B999", &a), NNE_ERR_NOT_FOUND);
    CHECK(strstr(nne_last_error(), "B999") && strstr(nne_last_error(), "B4096"));
    CHECK_STATUS(nne_dpu_arch_make("x", 0, 8, 8, &a), NNE_ERR_INVALID_ARG);
}

int main(void) {
    NNE_RUN(test_small_graph);
    NNE_RUN(test_fixed_points);
    NNE_RUN(test_unsupported);
    NNE_RUN(test_limits);
    NNE_RUN(test_cycle_formulas);
    NNE_RUN(test_memory_bound);
    NNE_RUN(test_arch_presets);
    return nne_test_summary();
}
