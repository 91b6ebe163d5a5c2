/* The DPU functional simulator against the int8 reference kernels, bit for bit: compile a
 * pow2-quantized s8 graph for several architectures (different tilings), execute it, compare
 * with qops run node by node (tests/dpu_qgraph.c). NNE_DPU_SIM_FULL=1 adds the cae-seed
 * encoder at the paper's 512x768 (docs/dpu-isa.md, "Simulator"). */
#include <stdlib.h>
#include <string.h>

#include "dpu_qgraph.h"
#include "nnedge/dpu.h"
#include "nnedge/models.h"

static const char *const k_archs[] = {"B512", "B1024", "B4096"};

/* Compile g for arch (dynamic or uniform tiling) and run it on `in`; 0 on success. */
static nne_status compile_run(const nne_graph *g, const char *arch, nne_dpu_tiling tiling,
                              const int8_t *in, size_t n_in, int8_t *out, size_t n_out,
                              nne_dpu_program *keep) {
    nne_dpu_arch a;
    nne_dpu_program p;
    nne_status s = nne_dpu_arch_get(arch, &a);
    nne_dpu_compile_opts o = {tiling, NULL};
    if (!s) s = nne_dpu_compile(g, &a, &o, &p);
    if (s) return s;
    nne_dpu_sim_stats st;
    s = nne_dpu_sim_run(&p, in, n_in, out, n_out, &st);
    if (!s && st.instrs != p.n_instrs) s = NNE_ERR_INTERNAL;
    if (keep && !s)
        *keep = p;
    else
        nne_dpu_program_free(&p);
    return s;
}

/* The reference and every architecture's simulation agree; returns the number of output
 * bytes that are neither -128 nor 127 (to check that the test data is not all saturated). */
static size_t check_graph(const nne_graph *g, nne_test_rng *r, const char *what, bool uniform) {
    const size_t n_in = (size_t)nne_shape_numel(&g->tensors[g->inputs[0]].shape);
    const size_t n_out = (size_t)nne_shape_numel(&g->tensors[g->outputs[0]].shape);
    int8_t *in = malloc(n_in), *ref = malloc(n_out), *got = malloc(n_out);
    qg_random_codes(r, in, n_in);
    CHECK_OK(qg_reference(g, in, ref));
    size_t live = 0;
    for (size_t i = 0; i < n_out; i++) live += ref[i] != -128 && ref[i] != 127;
    for (size_t k = 0; k < sizeof k_archs / sizeof k_archs[0]; k++)
        for (int t = 0; t < (uniform ? 2 : 1); t++) {
            memset(got, 0x55, n_out);
            nne_status s =
                compile_run(g, k_archs[k], t ? NNE_DPU_TILING_UNIFORM : NNE_DPU_TILING_DYNAMIC, in,
                            n_in, got, n_out, NULL);
            CHECK_MSG(s == NNE_OK, "%s on %s: %s", what, k_archs[k], nne_last_error());
            if (s && getenv("QG_DEBUG"))
                for (int32_t q = 0; q < g->n_nodes; q++)
                    fprintf(stderr, "  %s %s in %s -> %s\n", g->nodes[q].name,
                            nne_op_name(g->nodes[q].op), g->tensors[g->nodes[q].inputs[0]].name,
                            g->tensors[g->nodes[q].output].name);
            if (s) continue;
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < n_out; i++)
                if (got[i] != ref[i] && !bad++) first = i;
            CHECK_MSG(bad == 0,
                      "%s on %s (%s tiling): %zu of %zu bytes differ, first at %zu (%d vs %d)",
                      what, k_archs[k], t ? "uniform" : "dynamic", bad, n_out, first, got[first],
                      ref[first]);
        }
    free(in);
    free(ref);
    free(got);
    return live;
}

static nne_graph *cae_part(int32_t h, int32_t w, nne_cae_part part, nne_test_rng *r) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(h, w, part, &g));
    if (!g) return NULL;
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(qg_quantize_random(g, r));
    return g;
}

static nne_graph *cae_encoder(int32_t h, int32_t w, nne_test_rng *r) {
    return cae_part(h, w, NNE_CAE_ENCODER, r);
}

/* (a') the whole cae-seed (encoder + decoder: transposed convolutions as stride phases) and
 * its decoder alone, pow2-quantized with random weights, slopes and fixed points. */
static void test_cae_full_model(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 17);
    const nne_cae_part parts[2] = {NNE_CAE_FULL, NNE_CAE_DECODER};
    const char *names[2] = {"cae-seed 48x64 (full)", "cae-seed 48x64 (decoder)"};
    for (int k = 0; k < 2; k++) {
        nne_graph *g = cae_part(48, 64, parts[k], &r);
        if (!g) return;
        size_t live = check_graph(g, &r, names[k], k == 1);
        CHECK_MSG(live > 1000, "%s: only %zu unsaturated outputs", names[k], live);
        nne_graph_free(g);
    }
}

/* (a) the pow2-quantized cae-seed encoder with random weights, PReLU slopes and fixed
 * points at 64x96: three architectures, both tiling modes. */
static void test_cae_small(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 7);
    for (int rep = 0; rep < 2; rep++) {
        nne_graph *g = cae_encoder(64, 96, &r);
        if (!g) return;
        size_t live = check_graph(g, &r, "cae-seed 64x96", true);
        CHECK_MSG(live > 100, "only %zu unsaturated outputs", live);
        nne_graph_free(g);
    }
}

/* The paper's input size: slower (about 2 x 1.2 GMAC per architecture), on request. */
static void test_cae_full(void) {
    const char *e = getenv("NNE_DPU_SIM_FULL");
    if (!e || strcmp(e, "1")) return;
    nne_test_rng r;
    nne_test_rng_seed(&r, 512);
    nne_graph *g = cae_encoder(512, 768, &r);
    if (!g) return;
    size_t live = check_graph(g, &r, "cae-seed 512x768", false);
    printf("cae-seed 512x768: bit-exact on B512, B1024, B4096 (%zu unsaturated outputs)\n", live);
    nne_graph_free(g);
}

/* (b) many random small graphs. */
static void test_random_graphs(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 2024);
    int built = 0, tries = 0;
    size_t live = 0, total = 0;
    while (built < 60 && tries < 400) {
        tries++;
        nne_graph *g = NULL;
        if (qg_random_graph(&r, &g)) continue; /* an impossible geometry: draw again */
        if (qg_quantize_random(g, &r)) {
            nne_graph_free(g);
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "random graph %d (%d nodes)", built, (int)g->n_nodes);
        live += check_graph(g, &r, what, built % 4 == 0);
        total += (size_t)nne_shape_numel(&g->tensors[g->outputs[0]].shape);
        built++;
        nne_graph_free(g);
    }
    CHECK_MSG(built == 60, "only %d of %d random graphs built", built, tries);
    CHECK_MSG(live * 4 > total, "%zu of %zu outputs unsaturated", live, total);
}

/* A program that moves one pixel wrongly gives wrong pixels: the simulator really executes
 * the tiles (and the test above can fail). */
static void test_sensitive(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 3);
    nne_graph *g = cae_encoder(40, 40, &r);
    if (!g) return;
    const size_t n_in = 40 * 40 * 3,
                 n_out = (size_t)nne_shape_numel(&g->tensors[g->outputs[0]].shape);
    int8_t *in = malloc(n_in), *a = malloc(n_out), *b = malloc(n_out);
    qg_random_codes(&r, in, n_in);
    nne_dpu_program p;
    CHECK_OK(compile_run(g, "B512", NNE_DPU_TILING_DYNAMIC, in, n_in, a, n_out, &p));
    CHECK(p.flags == 0 && p.params_size > 0);
    /* The last SAVE of the first layer one column to the right (if it stays in range). */
    uint32_t last_save = 0;
    for (uint32_t i = p.layers[0].first; i < p.layers[0].first + p.layers[0].count; i++)
        if (p.instrs[i].op == NNE_DPU_SAVE) last_save = i;
    nne_dpu_mem *m = &p.instrs[last_save].u.mem;
    m->ddr_offset = m->ddr_offset >= m->col_stride ? m->ddr_offset - m->col_stride
                                                   : m->ddr_offset + m->col_stride;
    CHECK_OK(nne_dpu_sim_run(&p, in, n_in, b, n_out, NULL));
    CHECK(memcmp(a, b, n_out) != 0);
    nne_dpu_program_free(&p);
    free(in);
    free(a);
    free(b);
    nne_graph_free(g);
}

/* Clean refusals: timing-only programs, wrong sizes, non-pow2 graphs, a SAVE into INPUT. */
static void test_refusals(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(32, 32, NNE_CAE_ENCODER, &g));
    CHECK_OK(nne_graph_infer(g));
    nne_dpu_arch a;
    CHECK_OK(nne_dpu_arch_get("B1024", &a));
    nne_dpu_program p;
    CHECK_OK(nne_dpu_compile(g, &a, NULL, &p)); /* f32: timing only */
    CHECK(p.flags == NNE_DPU_PROGRAM_TIMING_ONLY && p.params_size == 0 && p.in_h == 32 &&
          p.in_c == 3 && p.out_c == 32);
    int8_t in[32 * 32 * 3] = {0}, out[4096];
    CHECK_STATUS(nne_dpu_sim_run(&p, in, sizeof in, out, p.region_size[NNE_DPU_REG_OUTPUT], NULL),
                 NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), "timing-only") != NULL);
    nne_dpu_program_free(&p);
    nne_test_rng r;
    nne_test_rng_seed(&r, 1);
    CHECK_OK(qg_quantize_random(g, &r));
    CHECK_OK(nne_dpu_compile(g, &a, NULL, &p));
    const size_t n_out = p.region_size[NNE_DPU_REG_OUTPUT];
    CHECK(n_out <= sizeof out);
    CHECK_STATUS(nne_dpu_sim_run(&p, in, sizeof in - 1, out, n_out, NULL), NNE_ERR_INVALID_ARG);
    /* SAVE into the input region. */
    for (uint32_t i = 0; i < p.n_instrs; i++)
        if (p.instrs[i].op == NNE_DPU_SAVE) {
            nne_dpu_instr keep = p.instrs[i];
            p.instrs[i].u.mem.region = NNE_DPU_REG_INPUT;
            p.instrs[i].u.mem.ddr_offset = 0;
            p.instrs[i].u.mem.row_stride = p.instrs[i].u.mem.col_stride = 0;
            p.instrs[i].u.mem.rows = p.instrs[i].u.mem.cols = 1;
            p.instrs[i].u.mem.channels = 1;
            CHECK_STATUS(nne_dpu_sim_run(&p, in, sizeof in, out, n_out, NULL), NNE_ERR_UNSUPPORTED);
            CHECK(strstr(nne_last_error(), "read-only") != NULL);
            p.instrs[i] = keep;
            break;
        }
    /* A buffer overflow is refused before anything runs. */
    p.instrs[0].u.mem.bank_offset = a.bias_bytes;
    CHECK_STATUS(nne_dpu_sim_run(&p, in, sizeof in, out, n_out, NULL), NNE_ERR_FORMAT);
    nne_dpu_program_free(&p);
    /* A non-pow2 scale: refused naming the tensor. */
    const float s = 0.03f;
    const int32_t zp = 0;
    int32_t t = g->nodes[1].output;
    CHECK_OK(nne_quant_set(&g->tensors[t].quant, -1, 1, &s, &zp, false));
    CHECK_STATUS(nne_dpu_compile(g, &a, NULL, &p), NNE_ERR_UNSUPPORTED);
    CHECK(strstr(nne_last_error(), g->tensors[t].name) && strstr(nne_last_error(), "power-of-two"));
    nne_graph_free(g);
}

/* The executable file round-trips (PARAMS included) and runs the same from the bytes. */
static void test_file_round_trip(void) {
    nne_test_rng r;
    nne_test_rng_seed(&r, 11);
    nne_graph *g = cae_encoder(24, 24, &r);
    if (!g) return;
    nne_dpu_arch a;
    CHECK_OK(nne_dpu_arch_get("B512", &a));
    nne_dpu_program p, q;
    CHECK_OK(nne_dpu_compile(g, &a, NULL, &p));
    uint8_t *b;
    size_t n;
    CHECK_OK(nne_dpu_program_write_mem(&p, &b, &n));
    CHECK_OK(nne_dpu_program_read_mem(b, n, &q));
    CHECK(q.params_size == p.params_size && !memcmp(q.params, p.params, p.params_size) &&
          q.fp_input == p.fp_input && q.fp_output == p.fp_output && q.flags == 0);
    int8_t in[24 * 24 * 3], x[64], y[64];
    qg_random_codes(&r, in, sizeof in);
    CHECK(p.region_size[NNE_DPU_REG_OUTPUT] <= sizeof x);
    CHECK_OK(nne_dpu_sim_run(&p, in, sizeof in, x, p.region_size[NNE_DPU_REG_OUTPUT], NULL));
    CHECK_OK(nne_dpu_sim_run(&q, in, sizeof in, y, q.region_size[NNE_DPU_REG_OUTPUT], NULL));
    CHECK(!memcmp(x, y, p.region_size[NNE_DPU_REG_OUTPUT]));
    nne_free(b);
    nne_dpu_program_free(&p);
    nne_dpu_program_free(&q);
    nne_graph_free(g);
}

int main(void) {
    NNE_RUN(test_cae_small);
    NNE_RUN(test_cae_full_model);
    NNE_RUN(test_random_graphs);
    NNE_RUN(test_sensitive);
    NNE_RUN(test_refusals);
    NNE_RUN(test_file_round_trip);
    NNE_RUN(test_cae_full);
    return nne_test_summary();
}
