/* nnedge dse: the smallest DPU architecture and the lowest clock that reach a frame rate on a
 * board, with each layer's roofline position. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nnedge/json.h"

static const char *k_cmd = "dse";

static void help(void) {
    printf("usage: nnedge dse MODEL --fps F [--board B] [--max-clock MHZ] [--cores N] [--json]\n\n"
           "Design-space exploration with the DPU timing model: for every architecture that fits\n"
           "the board (B512 .. its largest), compile MODEL and find the lowest fabric clock at\n"
           "which the board's cores reach F frames/s; report the smallest architecture (fewest\n"
           "ops/clock) that does, at its lowest clock, and each of its layers' roofline\n"
           "position: operational intensity (ops per DDR byte) against the ridge point (peak\n"
           "GOPS / effective DDR GB/s): compute- or memory-bound.\n\n"
           "options:\n"
           "  --fps F           target frames per second (required)\n"
           "  --board B         ultra96 (default), zcu102, zcu104 or a board file\n"
           "  --max-clock MHZ   highest clock to consider (default: the board's limit)\n"
           "  --cores N         DPU cores (default: the board's)\n"
           "  --part P          cae-seed: encoder (default, as the paper), decoder or full\n"
           "  --json            print JSON\n");
}

typedef struct arch_result {
    nne_dpu_arch a;
    nne_dpu_program p;
    double fps_max;    /* at the highest clock */
    double min_clock;  /* lowest clock reaching the target; 0 if none */
    double latency_ms; /* at min_clock */
    uint64_t bytes;
} arch_result;

/* Frames/s of a program at `mhz` with the board's cores (each core one frame in flight). */
static double fps_at(const nne_dpu_program *p, nne_dpu_board b, double mhz, nne_dpu_layer_time *t,
                     double *lat, uint64_t *bytes) {
    b.clock_mhz = mhz;
    double total = 0;
    if (nne_dpu_time(p, &b, t, &total)) return 0;
    uint64_t by = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) by += t[l].load_bytes + t[l].save_bytes;
    if (lat) *lat = total;
    if (bytes) *bytes = by;
    return nne_dpu_throughput_fps(&b, total, by, b.cores, b.cores);
}

int nne_cmd_dse(int argc, char **argv) {
    cli_common co;
    cli_dpu_opts d;
    memset(&d, 0, sizeof d);
    const char *fps_s = NULL, *max_s = NULL;
    const cli_option opts[] = {
        {"fps", 0, true, &fps_s, NULL},       {"board", 0, true, &d.board, NULL},
        {"max-clock", 0, true, &max_s, NULL}, {"cores", 0, true, &d.cores, NULL},
        {"part", 0, true, &d.part, NULL},     {NULL, 0, false, NULL, NULL}};
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
    double target;
    if (!cli_parse_f64(fps_s, 1e-6, 1e6, &target))
        return cli_usage_error(k_cmd, "--fps F is required: frames per second, > 0");
    nne_dpu_arch a0;
    nne_dpu_board b;
    int rc = cli_dpu_target(k_cmd, &d, &a0, &b);
    if (rc) return rc;
    if (max_s && !cli_parse_f64(max_s, 1, 2000, &b.max_clock_mhz))
        return cli_usage_error(k_cmd, "--max-clock '%s': expected MHz in 1..2000", max_s);
    nne_dpu_arch amax;
    nne_dpu_arch_get(b.max_arch, &amax);
    nne_graph *g;
    if ((rc = cli_dpu_load_graph(k_cmd, pos[0], d.part, &g, d.quiet))) return rc;
    arch_result res[16];
    int nr = 0, chosen = -1;
    nne_dpu_layer_time t[1024];
    if (g->n_nodes > 1024) {
        nne_graph_free(g);
        return cli_fail(k_cmd, nne_error(NNE_ERR_LIMIT, "dse: more than 1024 layers"));
    }
    for (const char *const *an = nne_dpu_arch_names(); *an && nr < 16; an++) {
        arch_result *r = &res[nr];
        memset(r, 0, sizeof *r);
        nne_dpu_arch_get(*an, &r->a);
        if (nne_dpu_arch_ops_per_clock(&r->a) > nne_dpu_arch_ops_per_clock(&amax)) continue;
        nne_dpu_board bc = b;
        bc.clock_mhz = b.max_clock_mhz;
        nne_dpu_compile_opts o = {NNE_DPU_TILING_DYNAMIC, &bc};
        nne_status s = nne_dpu_compile(g, &r->a, &o, &r->p);
        if (s) {
            rc = cli_fail(k_cmd, s);
            break;
        }
        nr++;
        r->fps_max = fps_at(&r->p, b, b.max_clock_mhz, t, NULL, NULL);
        if (r->fps_max < target) continue;
        /* Frames/s grow with the clock: bisect for the lowest whole MHz that reaches it. */
        double lo = 1, hi = b.max_clock_mhz;
        while (hi - lo > 1) {
            double mid = floor((lo + hi) / 2);
            if (fps_at(&r->p, b, mid, t, NULL, NULL) >= target)
                hi = mid;
            else
                lo = mid;
        }
        if (fps_at(&r->p, b, lo, t, NULL, NULL) >= target) hi = lo;
        r->min_clock = hi;
        fps_at(&r->p, b, hi, t, &r->latency_ms, &r->bytes);
        if (chosen < 0 ||
            nne_dpu_arch_ops_per_clock(&r->a) < nne_dpu_arch_ops_per_clock(&res[chosen].a) ||
            (nne_dpu_arch_ops_per_clock(&r->a) == nne_dpu_arch_ops_per_clock(&res[chosen].a) &&
             r->min_clock < res[chosen].min_clock))
            chosen = nr - 1;
    }
    nne_graph_free(g);
    if (rc) goto done;
    /* The chosen configuration's layers on the roofline. */
    nne_dpu_board bc = b;
    double peak = 0, bw = 0, ridge = 0, lat = 0;
    if (chosen >= 0) {
        bc.clock_mhz = res[chosen].min_clock;
        fps_at(&res[chosen].p, b, bc.clock_mhz, t, &lat, NULL);
        peak = (double)nne_dpu_arch_ops_per_clock(&res[chosen].a) * bc.clock_mhz / 1e3; /* GOPS */
        bw = bc.ddr_gbps * bc.burst_efficiency;
        ridge = peak / bw;
    }
    if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "model", pos[0]);
        nne_json_string(&j, "board", b.name);
        nne_json_number(&j, "target_fps", target, 3);
        nne_json_int(&j, "cores", b.cores);
        nne_json_number(&j, "max_clock_mhz", b.max_clock_mhz, 1);
        nne_json_array_begin(&j, "archs");
        for (int i = 0; i < nr; i++) {
            nne_json_object_begin(&j, NULL);
            nne_json_string(&j, "arch", res[i].a.name);
            nne_json_int(&j, "ops_per_clock", nne_dpu_arch_ops_per_clock(&res[i].a));
            nne_json_number(&j, "fps_at_max_clock", res[i].fps_max, 3);
            if (res[i].min_clock > 0)
                nne_json_number(&j, "min_clock_mhz", res[i].min_clock, 0);
            else
                nne_json_null(&j, "min_clock_mhz");
            nne_json_object_end(&j);
        }
        nne_json_array_end(&j);
        if (chosen >= 0) {
            const arch_result *r = &res[chosen];
            nne_json_object_begin(&j, "choice");
            nne_json_string(&j, "arch", r->a.name);
            nne_json_number(&j, "clock_mhz", r->min_clock, 0);
            nne_json_number(&j, "latency_ms", lat, 4);
            nne_json_number(&j, "peak_gops", peak, 2);
            nne_json_number(&j, "ddr_effective_gbps", bw, 3);
            nne_json_number(&j, "ridge_ops_per_byte", ridge, 2);
            nne_json_array_begin(&j, "layers");
            for (uint32_t l = 0; l < r->p.n_layers; l++) {
                uint64_t by = t[l].load_bytes + t[l].save_bytes;
                double oi = by ? (double)r->p.layers[l].ops / (double)by : 0;
                nne_json_object_begin(&j, NULL);
                nne_json_string(&j, "name", r->p.layers[l].name);
                nne_json_number(&j, "ops_per_byte", oi, 2);
                nne_json_number(&j, "roofline_gops", fmin(peak, bw * oi), 2);
                nne_json_number(&j, "perf_gops", (double)r->p.layers[l].ops / (t[l].ms * 1e6), 2);
                nne_json_string(&j, "roofline", oi >= ridge ? "compute" : "memory");
                nne_json_string(&j, "bound", cli_dpu_bound(&t[l]));
                nne_json_object_end(&j);
            }
            nne_json_array_end(&j);
            nne_json_object_end(&j);
        } else {
            nne_json_null(&j, "choice");
        }
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else {
        printf("%s on %s (%s), %d core%s, clock <= %.0f MHz, target %.2f frames/s\n", pos[0],
               b.name, b.device, b.cores, b.cores > 1 ? "s" : "", b.max_clock_mhz, target);
        printf("%-6s %10s %14s %15s\n", "arch", "ops/clock", "FPS@max clock", "min clock (MHz)");
        for (int i = 0; i < nr; i++) {
            printf("%-6s %10lld %14.2f ", res[i].a.name,
                   (long long)nne_dpu_arch_ops_per_clock(&res[i].a), res[i].fps_max);
            if (res[i].min_clock > 0)
                printf("%15.0f\n", res[i].min_clock);
            else
                printf("%15s\n", "-");
        }
        if (chosen < 0) {
            printf("\nno architecture up to %s reaches %.2f frames/s at %.0f MHz\n", b.max_arch,
                   target, b.max_clock_mhz);
        } else {
            const arch_result *r = &res[chosen];
            printf("\nsmallest: %s at %.0f MHz: %.3f ms per frame, %.2f frames/s\n", r->a.name,
                   r->min_clock, lat, fps_at(&r->p, b, r->min_clock, t, NULL, NULL));
            printf("roofline: peak %.1f GOPS, DDR %.2f GB/s effective, ridge %.1f ops/byte\n", peak,
                   bw, ridge);
            printf("%-22s %12s %14s %11s %-9s %-7s\n", "layer", "ops/byte", "roofline GOPS",
                   "model GOPS", "roofline", "bound");
            for (uint32_t l = 0; l < r->p.n_layers; l++) {
                uint64_t by = t[l].load_bytes + t[l].save_bytes;
                double oi = by ? (double)r->p.layers[l].ops / (double)by : 0;
                printf("%-22s %12.1f %14.1f %11.1f %-9s %-7s\n", r->p.layers[l].name, oi,
                       fmin(peak, bw * oi), (double)r->p.layers[l].ops / (t[l].ms * 1e6),
                       oi >= ridge ? "compute" : "memory", cli_dpu_bound(&t[l]));
            }
        }
    }
done:
    for (int i = 0; i < nr; i++) nne_dpu_program_free(&res[i].p);
    return rc;
}
