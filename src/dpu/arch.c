/* DPU architecture presets (B512..B4096), board presets and the board parameter-file parser.
 *
 * Where the numbers come from (docs/dpu-isa.md, "On-chip buffers"; docs/dpu-model.md):
 *  - pp/icp/ocp: the CAE paper, Table 1 (../shared/specs/dpu.md).
 *  - Buffers: Vitis AI's target descriptions of the DPUCZDX8G (target_factory
 *    DPUCZDX8G_ISA1_B512, _B4096 and ISA0_B2304 prototxt): two feature-map bank groups of pp
 *    banks, icp bytes wide and 2048 words deep; ocp weight banks and one bias bank of the
 *    same width and depth. The other sizes follow the same rule (an assumption).
 *  - Channel augmentation 2 x icp (channel_num 16 / 24 / 32 in those files); load and save
 *    engines icp channels wide; pool / element-wise engines pp / 2 pixels (ISA1 files).
 *  - Per-instruction overheads and the burst efficiency: calibrated on the CAE paper's
 *    Tables 3-5 (docs/dpu-model.md), the same for every architecture and board.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dpu/dpu_internal.h"
#include "nnedge/dpu.h"
#include "nnedge/file.h"

typedef struct arch_row {
    const char *name;
    int32_t pp, icp, ocp;
} arch_row;

static const arch_row k_archs[] = {
    {"B512", 4, 8, 8},    {"B800", 4, 10, 10},  {"B1024", 8, 8, 8},   {"B1152", 4, 12, 12},
    {"B1600", 8, 10, 10}, {"B2304", 8, 12, 12}, {"B3136", 8, 14, 14}, {"B4096", 8, 16, 16},
};
#define N_ARCHS ((int)(sizeof k_archs / sizeof k_archs[0]))

static const char *const k_arch_names[] = {"B512",  "B800",  "B1024", "B1152", "B1600",
                                           "B2304", "B3136", "B4096", NULL};

const char *const *nne_dpu_arch_names(void) { return k_arch_names; }

int64_t nne_dpu_arch_ops_per_clock(const nne_dpu_arch *a) {
    return 2 * (int64_t)a->pp * a->icp * a->ocp;
}

nne_status nne_dpu_arch_make(const char *name, int32_t pp, int32_t icp, int32_t ocp,
                             nne_dpu_arch *out) {
    memset(out, 0, sizeof *out);
    if (pp < 1 || pp > 64 || icp < 1 || icp > 64 || ocp < 1 || ocp > 64)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "dpu arch: parallelism pp=%d icp=%d ocp=%d out of range 1..64", (int)pp,
                         (int)icp, (int)ocp);
    snprintf(out->name, sizeof out->name, "%s", name ? name : "custom");
    out->pp = pp;
    out->icp = icp;
    out->ocp = ocp;
    out->bank_depth = NNE_DPU_BANK_DEPTH;
    /* Largest: 2 x 64 x 64 x 2048 = 16 MiB, fits uint32. */
    out->fmap_bytes = 2u * (uint32_t)pp * (uint32_t)icp * NNE_DPU_BANK_DEPTH;
    out->weight_bytes = (uint32_t)ocp * (uint32_t)icp * NNE_DPU_BANK_DEPTH;
    out->bias_bytes = (uint32_t)icp * NNE_DPU_BANK_DEPTH;
    out->aug_channels = 2 * icp;
    out->axi_bytes = NNE_DPU_AXI_BYTES;
    out->save_words = 1;
    out->pool_pp = pp / 2 > 0 ? pp / 2 : 1;
    out->elew_pp = out->pool_pp;
    out->load_overhead = NNE_DPU_LOAD_OVERHEAD;
    out->save_overhead = NNE_DPU_SAVE_OVERHEAD;
    out->conv_overhead = NNE_DPU_CONV_OVERHEAD;
    out->misc_overhead = NNE_DPU_MISC_OVERHEAD;
    return NNE_OK;
}

nne_status nne_dpu_arch_get(const char *name, nne_dpu_arch *out) {
    for (int i = 0; i < N_ARCHS; i++)
        if (name && strcasecmp(name, k_archs[i].name) == 0)
            return nne_dpu_arch_make(k_archs[i].name, k_archs[i].pp, k_archs[i].icp, k_archs[i].ocp,
                                     out);
    memset(out, 0, sizeof *out);
    return nne_error(NNE_ERR_NOT_FOUND,
                     "unknown DPU architecture '%s' (one of B512, B800, B1024, B1152, B1600, "
                     "B2304, B3136, B4096)",
                     name ? name : "(null)");
}

/* ---- Boards ---- */

static const nne_dpu_board k_boards[] = {
    /* Ultra96-V2: the CAE paper's board and clock (150 MHz, "the maximum safe frequency to
     * ensure timing closure" for its designs); LPDDR4 4.26 GB/s (QuTiBench Table 6.2). The
     * paper says architectures above B2304 do not fit the ZU3EG. */
    {"ultra96", "XCZU3EG", 150.0, 150.0, 2, 1, 4.26, NNE_DPU_BURST_EFFICIENCY, "B2304"},
    /* ZCU102 / ZCU104: DDR4 19.2 GB/s (QuTiBench Table 6.2); 3 and 2 B4096 cores at 300 MHz
     * as in Xilinx's reference designs (an assumption: override with --clock/--cores). */
    {"zcu102", "XCZU9EG", 300.0, 300.0, 2, 3, 19.2, NNE_DPU_BURST_EFFICIENCY, "B4096"},
    {"zcu104", "XCZU7EV", 300.0, 300.0, 2, 2, 19.2, NNE_DPU_BURST_EFFICIENCY, "B4096"},
};
#define N_BOARDS ((int)(sizeof k_boards / sizeof k_boards[0]))

static const char *const k_board_names[] = {"ultra96", "zcu102", "zcu104", NULL};

const char *const *nne_dpu_board_names(void) { return k_board_names; }

nne_status nne_dpu_board_get(const char *name, nne_dpu_board *out) {
    for (int i = 0; i < N_BOARDS; i++)
        if (name && strcasecmp(name, k_boards[i].name) == 0) {
            *out = k_boards[i];
            return NNE_OK;
        }
    memset(out, 0, sizeof *out);
    return nne_error(NNE_ERR_NOT_FOUND,
                     "unknown board '%s' (one of ultra96, zcu102, zcu104, or a board file)",
                     name ? name : "(null)");
}

/* Board file: "key = value" per line; '#' starts a comment; blank lines ignored. */
#define BOARD_MAX_TEXT (64 * 1024)
#define BOARD_MAX_LINE 256

static bool parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_int(const char *s, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

static bool valid_text(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n >= max) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.+", s[i])) return false;
    return true;
}

nne_status nne_dpu_board_parse(const char *text, size_t n, nne_dpu_board *out) {
    nne_dpu_board b = k_boards[0];
    memset(out, 0, sizeof *out);
    snprintf(b.name, sizeof b.name, "custom");
    if (n > BOARD_MAX_TEXT)
        return nne_error(NNE_ERR_LIMIT, "board file: %zu bytes, more than the limit %d", n,
                         BOARD_MAX_TEXT);
    static const char *const keys[] = {"base",
                                       "name",
                                       "device",
                                       "clock_mhz",
                                       "max_clock_mhz",
                                       "dsp_clock_factor",
                                       "cores",
                                       "ddr_gbps",
                                       "burst_efficiency",
                                       "max_arch",
                                       NULL};
    uint32_t seen = 0;
    bool clock_set = false, max_set = false;
    size_t pos = 0;
    int lineno = 0;
    while (pos < n) {
        lineno++;
        size_t end = pos;
        while (end < n && text[end] != '\n') end++;
        size_t len = end - pos;
        if (len >= BOARD_MAX_LINE)
            return nne_error(NNE_ERR_FORMAT, "board file line %d: longer than %d bytes", lineno,
                             BOARD_MAX_LINE - 1);
        char line[BOARD_MAX_LINE];
        memcpy(line, text + pos, len);
        line[len] = 0;
        pos = end + 1;
        if (memchr(line, 0, len))
            return nne_error(NNE_ERR_FORMAT, "board file line %d: NUL byte", lineno);
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        /* Trim. */
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq)
            return nne_error(NNE_ERR_FORMAT, "board file line %d: expected key = value", lineno);
        char *k = s, *v = eq + 1;
        char *ke = eq;
        while (ke > k && isspace((unsigned char)ke[-1])) ke--;
        *ke = 0;
        while (isspace((unsigned char)*v)) v++;
        int ki = -1;
        for (int i = 0; keys[i]; i++)
            if (!strcmp(k, keys[i])) ki = i;
        if (ki < 0)
            return nne_error(NNE_ERR_FORMAT, "board file line %d: unknown key '%.64s'", lineno, k);
        if (seen & (1u << ki))
            return nne_error(NNE_ERR_FORMAT, "board file line %d: key '%s' given twice", lineno, k);
        seen |= 1u << ki;
        bool ok = true;
        switch (ki) {
        case 0: { /* base: must come first so that later keys override it */
            if (seen != 1u)
                return nne_error(NNE_ERR_FORMAT, "board file line %d: 'base' must be the first key",
                                 lineno);
            nne_dpu_board base;
            if (nne_dpu_board_get(v, &base))
                return nne_error(NNE_ERR_FORMAT, "board file line %d: unknown base board '%.64s'",
                                 lineno, v);
            b = base;
            break;
        }
        case 1:
            ok = valid_text(v, sizeof b.name);
            if (ok) snprintf(b.name, sizeof b.name, "%s", v);
            break;
        case 2:
            ok = valid_text(v, sizeof b.device);
            if (ok) snprintf(b.device, sizeof b.device, "%s", v);
            break;
        case 3:
            ok = parse_double(v, 1.0, 2000.0, &b.clock_mhz);
            clock_set = true;
            break;
        case 4:
            ok = parse_double(v, 1.0, 2000.0, &b.max_clock_mhz);
            max_set = true;
            break;
        case 5:
            ok = parse_int(v, 1, 4, &b.dsp_clock_factor);
            break;
        case 6:
            ok = parse_int(v, 1, 64, &b.cores);
            break;
        case 7:
            ok = parse_double(v, 0.01, 10000.0, &b.ddr_gbps);
            break;
        case 8:
            ok = parse_double(v, 0.01, 1.0, &b.burst_efficiency);
            break;
        case 9: {
            nne_dpu_arch a;
            ok = nne_dpu_arch_get(v, &a) == NNE_OK;
            if (ok) snprintf(b.max_arch, sizeof b.max_arch, "%s", a.name);
            break;
        }
        }
        if (!ok)
            return nne_error(NNE_ERR_FORMAT, "board file line %d: bad value '%.64s' for %s", lineno,
                             v, k);
    }
    nne_error_clear();
    if (clock_set && !max_set && b.max_clock_mhz < b.clock_mhz) b.max_clock_mhz = b.clock_mhz;
    if (b.clock_mhz > b.max_clock_mhz)
        return nne_error(NNE_ERR_FORMAT, "board file: clock_mhz %.1f above max_clock_mhz %.1f",
                         b.clock_mhz, b.max_clock_mhz);
    *out = b;
    return NNE_OK;
}

nne_status nne_dpu_board_load(const char *spec, nne_dpu_board *out) {
    if (!spec) return nne_dpu_board_get("ultra96", out);
    for (int i = 0; i < N_BOARDS; i++)
        if (strcasecmp(spec, k_boards[i].name) == 0) return nne_dpu_board_get(spec, out);
    uint8_t *buf;
    size_t n;
    nne_status s = nne_file_read(spec, BOARD_MAX_TEXT, &buf, &n);
    if (s) {
        if (s == NNE_ERR_NOT_FOUND)
            return nne_error(NNE_ERR_NOT_FOUND,
                             "unknown board '%s': not a preset (ultra96, zcu102, zcu104) and no "
                             "such board file",
                             spec);
        return s;
    }
    s = nne_dpu_board_parse((const char *)buf, n, out);
    nne_free(buf);
    if (s) {
        char msg[512]; /* nne_error formats into the buffer nne_last_error() returns */
        snprintf(msg, sizeof msg, "%s", nne_last_error());
        return nne_error(s, "%s: %s", spec, msg);
    }
    return NNE_OK;
}
