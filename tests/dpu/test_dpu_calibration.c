/* The timing model against the CAE paper (Tables 3-6, golden values below): the cae-seed
 * encoder compiled for B512, B1024 and B2304 and timed on an Ultra96-V2 at 150 MHz. Every
 * layer's RunTime within 10 %, every total within 5 %, workloads exactly equal. */
#include <string.h>

#include "nnedge/dpu.h"
#include "nnedge/models.h"
#include "testutil.h"

/* Golden values typed from the paper (ms, MOP), independent of the library's own table. */
static const char *const k_arch[3] = {"B512", "B1024", "B2304"};
static const double k_ms[3][5] = {
    {15.851, 23.708, 46.178, 23.463, 2.944},
    {10.6, 11.885, 23.457, 11.759, 1.499},
    {7.927, 7.061, 13.232, 6.638, 0.862},
};
static const double k_total_ms[3] = {112.144, 59.2, 35.72};
static const double k_fps[3] = {8.91710, 16.89189, 27.99552}; /* Table 6 */
static const double k_mop[5] = {675.06, 1788.42, 3530.097, 1741.824, 214.843};
static const double k_util[3][5] = {
    {0.277, 0.491, 0.498, 0.483, 0.475},
    {0.207, 0.490, 0.490, 0.482, 0.467},
    {0.123, 0.366, 0.386, 0.380, 0.361},
};

static nne_graph *encoder(void) {
    nne_graph *g = NULL;
    CHECK_OK(nne_builtin_model("cae-seed-encoder", &g));
    return g;
}

static void test_paper_table(void) {
    /* The library's copy of the paper's tables agrees with the golden values here and with
     * itself (RunTime sums to Table 6, Perf = Workload / RunTime). */
    for (int k = 0; k < 3; k++) {
        int n;
        double total;
        const nne_dpu_measured *m = nne_dpu_paper_cae(k_arch[k], &n, &total);
        CHECK(m != NULL && n == 5);
        if (!m) continue;
        double sum = 0;
        for (int l = 0; l < 5; l++) {
            CHECK_NEAR(m[l].ms, k_ms[k][l], 1e-9);
            CHECK_NEAR(m[l].mop, k_mop[l], 1e-9);
            CHECK_NEAR(m[l].mop / m[l].ms, m[l].gops, 0.06);
            sum += m[l].ms;
        }
        CHECK_NEAR(sum, total, 0.001);
        CHECK_NEAR(total, k_total_ms[k], 1e-9);
        CHECK_NEAR(1000.0 / total, k_fps[k], 1e-4);
    }
    CHECK(nne_dpu_paper_cae("B4096", NULL, NULL) == NULL);
}

static void test_calibration(void) {
    nne_graph *g = encoder();
    if (!g) return;
    nne_dpu_board b;
    CHECK_OK(nne_dpu_board_get("ultra96", &b));
    CHECK_NEAR(b.clock_mhz, 150.0, 0);
    for (int k = 0; k < 3; k++) {
        nne_dpu_arch a;
        CHECK_OK(nne_dpu_arch_get(k_arch[k], &a));
        nne_dpu_program p;
        nne_dpu_compile_opts o = {NNE_DPU_TILING_DYNAMIC, &b};
        CHECK_OK(nne_dpu_compile(g, &a, &o, &p));
        CHECK(p.n_layers == 5);
        if (p.n_layers != 5) continue;
        nne_dpu_layer_time t[5];
        double total;
        CHECK_OK(nne_dpu_time(&p, &b, t, &total));
        for (int l = 0; l < 5; l++) {
            /* Workload exactly the paper's (its 3 decimals). */
            CHECK_NEAR((double)p.layers[l].ops / 1e6, k_mop[l], 0.0005);
            double err = t[l].ms / k_ms[k][l] - 1;
            CHECK_MSG(fabs(err) <= 0.10, "%s %s: %.3f ms vs %.3f (%+.1f %%)", k_arch[k],
                      p.layers[l].name, t[l].ms, k_ms[k][l], 100 * err);
            /* Utilization as the profiler reports it: against ops/clock at the DSP clock,
             * twice the 150 MHz fabric clock. Within 0.05 of the paper's column. */
            double gops = (double)p.layers[l].ops / (t[l].ms * 1e6);
            double util = gops / ((double)nne_dpu_arch_ops_per_clock(&a) * b.clock_mhz *
                                  b.dsp_clock_factor / 1e3);
            CHECK_NEAR(util, k_util[k][l], 0.05);
        }
        double err = total / k_total_ms[k] - 1;
        CHECK_MSG(fabs(err) <= 0.05, "%s total: %.3f ms vs %.3f (%+.2f %%)", k_arch[k], total,
                  k_total_ms[k], 100 * err);
        CHECK_NEAR(1000.0 / total, k_fps[k], 0.05 * k_fps[k]);
        nne_dpu_program_free(&p);
    }
    nne_graph_free(g);
}

static void test_dynamic_beats_uniform(void) {
    /* FlexCNN's dynamic tiling: per-layer tilings never lose to the best uniform one. */
    nne_graph *g = encoder();
    if (!g) return;
    nne_dpu_board b;
    nne_dpu_board_get("ultra96", &b);
    nne_dpu_arch a;
    nne_dpu_arch_get("B2304", &a);
    double tot[2];
    for (int m = 0; m < 2; m++) {
        nne_dpu_program p;
        nne_dpu_compile_opts o = {m ? NNE_DPU_TILING_UNIFORM : NNE_DPU_TILING_DYNAMIC, &b};
        CHECK_OK(nne_dpu_compile(g, &a, &o, &p));
        nne_dpu_layer_time t[5];
        CHECK_OK(nne_dpu_time(&p, &b, t, &tot[m]));
        if (m == 1) /* one tiling for all (clamped to each layer's size) */
            for (uint32_t l = 1; l < p.n_layers; l++)
                CHECK(p.layers[l].tile_h == p.layers[0].tile_h ||
                      p.layers[l].tile_h == p.layers[l].out_h);
        nne_dpu_program_free(&p);
    }
    CHECK(tot[0] <= tot[1]);
    nne_graph_free(g);
}

int main(void) {
    NNE_RUN(test_paper_table);
    NNE_RUN(test_calibration);
    NNE_RUN(test_dynamic_beats_uniform);
    return nne_test_summary();
}
