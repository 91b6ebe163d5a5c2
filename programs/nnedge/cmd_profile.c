/* nnedge profile: the DPU timing model's per-layer profile in the CAE paper's columns
 * (Tables 3-5), its FPS summary (Table 6) and a throughput estimate for cores / threads. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nnedge/json.h"

static const char *k_cmd = "profile";

static void help(void) {
    printf(
        "usage: nnedge profile MODEL|FILE.dpu [--arch B1024] [--clock MHZ] [--board B]\n"
        "                      [--cores N] [--threads N] [--paper] [--compare-tiling] [--json]\n\n"
        "Compile MODEL for the DPU (or read a compiled FILE.dpu) and print the timing model's\n"
        "profile with the CAE paper's columns (docs/dpu-model.md): ID, NodeName,\n"
        "Workload(MOP) = 2 x MACs / 1e6, Mem(MB) = DDR bytes loaded + saved / 2^20,\n"
        "RunTime(ms), Perf(GOPS) = Workload / RunTime, Utilization = Perf / (ops per clock x\n"
        "DSP clock) as the Vitis AI profiler reports it (the DSPs run at twice the fabric\n"
        "clock), MB/S = Mem / RunTime; and Bound, the busiest resource (compute, load, save,\n"
        "ddr). Then the latency and FPS (Table 6) and frames/s for 1..N cores and threads.\n"
        "cae-seed is profiled by its encoder, as in the paper (the paper's tables cover only\n"
        "the encoder); --part decoder or full profiles the rest.\n\n"
        "options:\n"
        "  --arch A           B512, B800, B1024 (default), B1152, B1600, B2304, B3136, B4096\n"
        "  --board B          ultra96 (default), zcu102, zcu104 or a board file\n"
        "  --clock MHZ        DPU fabric clock (default: the board's; ultra96: 150)\n"
        "  --cores N          DPU cores for the throughput estimate (default: the board's)\n"
        "  --threads N        frames in flight for the estimate (default: 1, 2, 4, 8)\n"
        "  --tiling T         dynamic (default) or uniform\n"
        "  --part P           cae-seed: encoder (default), decoder or full\n"
        "  --compare-tiling   also compile with the best uniform tiling and report the gain\n"
        "  --paper            add the paper's measured RunTime and the error (cae-seed on\n"
        "                     B512, B1024, B2304)\n"
        "  --json             print JSON instead of tables\n"
        "  -h, --help         this help\n");
}

typedef struct row {
    double mop, mem_mb, ms, gops, util, mbps;
} row;

static row make_row(uint64_t ops, uint64_t bytes, double ms, double util_peak_gops) {
    row r;
    r.mop = (double)ops / 1e6;
    r.mem_mb = (double)bytes / 1048576.0;
    r.ms = ms;
    r.gops = ms > 0 ? r.mop / ms : 0; /* MOP / ms = GOP / s */
    r.util = util_peak_gops > 0 ? r.gops / util_peak_gops : 0;
    r.mbps = ms > 0 ? r.mem_mb / (ms / 1e3) : 0;
    return r;
}

/* The paper's columns of one row, as JSON members. */
static void json_row(nne_json *j, const row *r) {
    nne_json_number(j, "workload_mop", r->mop, 3);
    nne_json_number(j, "mem_mb", r->mem_mb, 3);
    nne_json_number(j, "runtime_ms", r->ms, 4);
    nne_json_number(j, "perf_gops", r->gops, 2);
    nne_json_number(j, "utilization", r->util, 4);
    nne_json_number(j, "mb_per_s", r->mbps, 1);
}

int nne_cmd_profile(int argc, char **argv) {
    cli_common co;
    cli_dpu_opts d;
    memset(&d, 0, sizeof d);
    const char *threads_s = NULL;
    bool paper = false, compare = false;
    const cli_option opts[] = {{"arch", 0, true, &d.arch, NULL},
                               {"board", 0, true, &d.board, NULL},
                               {"clock", 0, true, &d.clock, NULL},
                               {"cores", 0, true, &d.cores, NULL},
                               {"threads", 0, true, &threads_s, NULL},
                               {"tiling", 0, true, &d.tiling, NULL},
                               {"part", 0, true, &d.part, NULL},
                               {"paper", 0, false, NULL, &paper},
                               {"compare-tiling", 0, false, NULL, &compare},
                               {NULL, 0, false, NULL, NULL}};
    const char *pos[1];
    int n_pos;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    d.quiet = co.quiet || co.json;
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one MODEL argument");
    if (co.output) return cli_usage_error(k_cmd, "-o is not used by this command");
    int threads = 0;
    if (threads_s) {
        int64_t t;
        if (!cli_parse_i64(threads_s, 1, 1024, &t))
            return cli_usage_error(k_cmd, "--threads '%s': expected 1..1024", threads_s);
        threads = (int)t;
    }
    nne_dpu_arch a;
    nne_dpu_board b;
    int rc = cli_dpu_target(k_cmd, &d, &a, &b);
    if (rc) return rc;
    if (paper && d.part && strcmp(d.part, "encoder"))
        return cli_usage_error(k_cmd,
                               "--paper: the paper's tables cover cae-seed's encoder only "
                               "(not --part %s)",
                               d.part);
    if (compare && cli_dpu_is_program_file(pos[0]))
        return cli_usage_error(k_cmd, "--compare-tiling needs a model, not a compiled %s", pos[0]);
    nne_dpu_program p, pu;
    memset(&pu, 0, sizeof pu);
    char name[256];
    if ((rc = cli_dpu_program(k_cmd, pos[0], &d, &a, &b, &p, name, sizeof name))) return rc;
    a = p.arch; /* a .dpu file brings its own */
    int n_paper = 0;
    double paper_total = 0;
    const nne_dpu_measured *pm = paper ? nne_dpu_paper_cae(a.name, &n_paper, &paper_total) : NULL;
    if (paper && (!pm || (uint32_t)n_paper != p.n_layers)) {
        rc = cli_usage_error(k_cmd, "--paper: the paper measured cae-seed's encoder on B512, B1024 "
                                    "and B2304 only");
        goto done;
    }
    nne_dpu_layer_time *t = calloc(p.n_layers, sizeof *t);
    double total = 0, total_u = 0;
    nne_status s = t ? nne_dpu_time(&p, &b, t, &total) : NNE_ERR_NOMEM;
    if (!s && compare) {
        cli_dpu_opts du = d;
        du.tiling = "uniform";
        du.quiet = true;
        if ((rc = cli_dpu_program(k_cmd, pos[0], &du, &a, &b, &pu, name, sizeof name))) {
            free(t);
            goto done;
        }
        nne_dpu_layer_time *tu = calloc(pu.n_layers, sizeof *tu);
        s = tu ? nne_dpu_time(&pu, &b, tu, &total_u) : NNE_ERR_NOMEM;
        free(tu);
    }
    if (s) {
        free(t);
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    /* The profiler's utilization: against ops/clock at the DSP clock (2 x fabric). */
    const double util_peak =
        (double)nne_dpu_arch_ops_per_clock(&a) * b.clock_mhz * b.dsp_clock_factor / 1e3; /* GOPS */
    uint64_t ops = 0, bytes = 0;
    for (uint32_t l = 0; l < p.n_layers; l++) {
        ops += p.layers[l].ops;
        bytes += t[l].load_bytes + t[l].save_bytes;
    }
    row all = make_row(ops, bytes, total, util_peak);
    const double fps = total > 0 ? 1000.0 / total : 0;
    const int max_cores = b.cores;
    static const int k_threads[4] = {1, 2, 4, 8};
    const int *tl = threads ? &threads : k_threads;
    const int n_tl = threads ? 1 : 4;
    if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "model", name);
        nne_json_object_begin(&j, "arch");
        nne_json_string(&j, "name", a.name);
        nne_json_int(&j, "pp", a.pp);
        nne_json_int(&j, "icp", a.icp);
        nne_json_int(&j, "ocp", a.ocp);
        nne_json_int(&j, "ops_per_clock", nne_dpu_arch_ops_per_clock(&a));
        nne_json_object_end(&j);
        nne_json_object_begin(&j, "board");
        nne_json_string(&j, "name", b.name);
        nne_json_string(&j, "device", b.device);
        nne_json_number(&j, "clock_mhz", b.clock_mhz, 3);
        nne_json_number(&j, "dsp_clock_mhz", b.clock_mhz * b.dsp_clock_factor, 3);
        nne_json_int(&j, "cores", b.cores);
        nne_json_number(&j, "ddr_gbps", b.ddr_gbps, 3);
        nne_json_number(&j, "burst_efficiency", b.burst_efficiency, 3);
        nne_json_object_end(&j);
        nne_json_array_begin(&j, "layers");
        for (uint32_t l = 0; l < p.n_layers; l++) {
            const nne_dpu_layer *L = &p.layers[l];
            row r = make_row(L->ops, t[l].load_bytes + t[l].save_bytes, t[l].ms, util_peak);
            nne_json_object_begin(&j, NULL);
            nne_json_int(&j, "id", l + 1);
            nne_json_string(&j, "name", L->name);
            json_row(&j, &r);
            nne_json_string(&j, "bound", cli_dpu_bound(&t[l]));
            nne_json_int(&j, "cycles", (int64_t)t[l].cycles);
            nne_json_int(&j, "instructions", L->count);
            nne_json_array_begin(&j, "tile");
            nne_json_int(&j, NULL, L->tile_h);
            nne_json_int(&j, NULL, L->tile_w);
            nne_json_int(&j, NULL, L->tile_m);
            nne_json_array_end(&j);
            if (pm) nne_json_number(&j, "paper_runtime_ms", pm[l].ms, 3);
            nne_json_object_end(&j);
        }
        nne_json_array_end(&j);
        nne_json_object_begin(&j, "total");
        json_row(&j, &all);
        nne_json_object_end(&j);
        nne_json_number(&j, "latency_ms", total, 4);
        nne_json_number(&j, "fps", fps, 3);
        if (pm) {
            nne_json_number(&j, "paper_latency_ms", paper_total, 3);
            nne_json_number(&j, "paper_fps", 1000.0 / paper_total, 3);
        }
        if (compare) {
            nne_json_number(&j, "uniform_latency_ms", total_u, 4);
            nne_json_number(&j, "dynamic_gain", total_u / total - 1, 4);
        }
        nne_json_array_begin(&j, "throughput");
        for (int c = 1; c <= max_cores; c++)
            for (int k = 0; k < n_tl; k++) {
                nne_json_object_begin(&j, NULL);
                nne_json_int(&j, "cores", c);
                nne_json_int(&j, "threads", tl[k]);
                nne_json_number(&j, "fps", nne_dpu_throughput_fps(&b, total, bytes, c, tl[k]), 3);
                nne_json_object_end(&j);
            }
        nne_json_array_end(&j);
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else {
        printf("%s on DPU %s (pp %d, icp %d, ocp %d: %lld ops/clock), %s (%s): %.0f MHz fabric, "
               "%.0f MHz DSP; DDR %.2f GB/s x %.2f\n",
               name, a.name, a.pp, a.icp, a.ocp, (long long)nne_dpu_arch_ops_per_clock(&a), b.name,
               b.device, b.clock_mhz, b.clock_mhz * b.dsp_clock_factor, b.ddr_gbps,
               b.burst_efficiency);
        printf("%-3s %-22s %13s %8s %11s %10s %11s %8s  %-7s", "ID", "NodeName", "Workload(MOP)",
               "Mem(MB)", "RunTime(ms)", "Perf(GOPS)", "Utilization", "MB/S", "Bound");
        if (pm) printf(" %9s %7s", "Paper(ms)", "Err");
        printf("\n");
        for (uint32_t l = 0; l < p.n_layers; l++) {
            const nne_dpu_layer *L = &p.layers[l];
            row r = make_row(L->ops, t[l].load_bytes + t[l].save_bytes, t[l].ms, util_peak);
            printf("%-3u %-22s %13.3f %8.2f %11.3f %10.1f %10.1f%% %8.1f  %-7s", l + 1, L->name,
                   r.mop, r.mem_mb, r.ms, r.gops, 100 * r.util, r.mbps, cli_dpu_bound(&t[l]));
            if (pm) printf(" %9.3f %+6.1f%%", pm[l].ms, 100 * (r.ms / pm[l].ms - 1));
            printf("\n");
        }
        char ag[32], au[32], am[32];
        snprintf(ag, sizeof ag, "Avg=%.1f", all.gops);
        snprintf(au, sizeof au, "Avg=%.1f%%", 100 * all.util);
        snprintf(am, sizeof am, "Avg=%.1f", all.mbps);
        printf("%-3s %-22s %13.3f %8.2f %11.3f %10s %11s %8s  %-7s", "All", "", all.mop, all.mem_mb,
               all.ms, ag, au, am, "");
        if (pm) printf(" %9.3f %+6.1f%%", paper_total, 100 * (total / paper_total - 1));
        printf("\n\nLatency %.3f ms, %.2f FPS", total, fps);
        if (pm) printf(" (paper, Table 6: %.3f ms, %.2f FPS)", paper_total, 1000.0 / paper_total);
        printf("\nUtilization = Perf / (%lld ops/clock x %.0f MHz DSP clock = %.1f GOPS); "
               "the fabric-clock peak is %.1f GOPS.\n",
               (long long)nne_dpu_arch_ops_per_clock(&a), b.clock_mhz * b.dsp_clock_factor,
               util_peak, util_peak / b.dsp_clock_factor);
        if (compare)
            printf("Tiling: per layer (dynamic) %.3f ms; best uniform %.3f ms (tile %ux%ux%u): "
                   "dynamic is %.1f %% faster\n",
                   total, total_u, pu.layers[0].tile_h, pu.layers[0].tile_w, pu.layers[0].tile_m,
                   100 * (total_u / total - 1));
        printf("\nThroughput estimate (frames/s; DPU time only, DDR shared by the cores, cap "
               "%.1f):\n%-9s",
               nne_dpu_throughput_fps(&b, 1e-9, bytes, 1, 1), "threads");
        for (int k = 0; k < n_tl; k++) printf(" %8d", tl[k]);
        printf("\n");
        for (int c = 1; c <= max_cores; c++) {
            printf("%d core%s  ", c, c > 1 ? "s" : " ");
            for (int k = 0; k < n_tl; k++)
                printf(" %8.2f", nne_dpu_throughput_fps(&b, total, bytes, c, tl[k]));
            printf("\n");
        }
    }
    free(t);
done:
    nne_dpu_program_free(&p);
    nne_dpu_program_free(&pu);
    return rc;
}
