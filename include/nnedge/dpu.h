/* nnedge DPU backend: a model of the Xilinx DPUCZDX8G deep-learning processing unit.
 *
 *   architecture + board -> compiler (graph -> fused layers -> per-layer tiling ->
 *   instruction stream) -> timing model (cycles per instruction, engine overlap, DDR)
 *
 * The instruction set, the on-chip buffer model and the instruction-stream file are
 * specified in docs/dpu-isa.md; the timing model and its calibration in docs/dpu-model.md.
 * The compiler treats every tensor as int8 (1 byte per element) whatever its dtype, and takes
 * fixed-point positions from power-of-two nne_quant parameters when present (placeholders
 * otherwise, flagged in the program), so timing works on the f32 models of today and a later
 * bit-exact simulator can run the same file.
 */
#ifndef NNEDGE_DPU_H
#define NNEDGE_DPU_H

#include "nnedge/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Architectures (DPUCZDX8G sizes B512..B4096) ---------------------------------------- */

typedef struct nne_dpu_arch {
    char name[16];         /* "B1024" */
    int32_t pp, icp, ocp;  /* pixel, input-channel, output-channel parallelism */
    int32_t bank_depth;    /* words per on-chip bank (a word is icp bytes) */
    uint32_t fmap_bytes;   /* feature-map buffer: 2 groups x pp banks x icp x depth */
    uint32_t weight_bytes; /* weight buffer: ocp banks x icp x depth */
    uint32_t bias_bytes;   /* bias / activation-parameter buffer: 1 bank x icp x depth */
    int32_t aug_channels;  /* channel augmentation: kw * ic <= this folds the kernel width
                              into the channels (2 x icp) */
    int32_t axi_bytes;     /* bytes per fabric cycle of a data port (16: 128-bit AXI) */
    int32_t save_words;    /* words (<= icp channels of one pixel) the save engine moves per
                              cycle */
    int32_t pool_pp;       /* pixels per cycle of the pooling engine */
    int32_t elew_pp;       /* pixels per cycle of the element-wise engine */
    /* Fixed cost of every instruction, in fabric cycles (issue, DDR latency, pipeline fill). */
    int32_t load_overhead, save_overhead, conv_overhead, misc_overhead;
} nne_dpu_arch;

/* Peak ops per fabric clock: 2 x pp x icp x ocp (a MAC is 2 ops). */
int64_t nne_dpu_arch_ops_per_clock(const nne_dpu_arch *a);
/* The presets, NULL-terminated: "B512", "B800", "B1024", "B1152", "B1600", "B2304", "B3136",
 * "B4096". */
const char *const *nne_dpu_arch_names(void);
/* Fill *out with a preset (case-insensitive name). NNE_ERR_NOT_FOUND naming the valid ones. */
nne_status nne_dpu_arch_get(const char *name, nne_dpu_arch *out);
/* Build an architecture from its parallelism with the preset buffer rules and timing
 * constants (for custom sizes and for reading files). NNE_ERR_INVALID_ARG if out of range
 * (pp 1..64, icp and ocp 1..64). */
nne_status nne_dpu_arch_make(const char *name, int32_t pp, int32_t icp, int32_t ocp,
                             nne_dpu_arch *out);

/* ---- Boards ---------------------------------------------------------------------------- */

typedef struct nne_dpu_board {
    char name[32];        /* "ultra96" */
    char device[32];      /* "XCZU3EG" */
    double clock_mhz;     /* DPU fabric clock; the DSPs run at dsp_clock_factor x this */
    double max_clock_mhz; /* highest clock the board's designs close timing at */
    int32_t dsp_clock_factor;
    int32_t cores;           /* DPU cores in the design */
    double ddr_gbps;         /* theoretical external bandwidth, 1e9 bytes/s */
    double burst_efficiency; /* fraction of ddr_gbps the DPU's bursts achieve, (0, 1] */
    char max_arch[16];       /* largest architecture that fits the device */
} nne_dpu_board;

/* Presets, NULL-terminated: "ultra96", "zcu102", "zcu104". */
const char *const *nne_dpu_board_names(void);
nne_status nne_dpu_board_get(const char *name, nne_dpu_board *out);
/* Parse a board parameter file (docs/dpu-model.md, "Board files"): "key = value" lines,
 * '#' comments. Keys: name, device, clock_mhz, max_clock_mhz, dsp_clock_factor, cores,
 * ddr_gbps, burst_efficiency, max_arch, base (a preset whose values are the defaults).
 * Unknown keys, duplicate keys, bad numbers and out-of-range values are NNE_ERR_FORMAT naming
 * the line. At most 64 KiB. */
nne_status nne_dpu_board_parse(const char *text, size_t n, nne_dpu_board *out);
/* A preset name, or else a path to a board file. */
nne_status nne_dpu_board_load(const char *spec, nne_dpu_board *out);

/* ---- Instruction set (docs/dpu-isa.md) -------------------------------------------------- */

typedef enum nne_dpu_opcode {
    NNE_DPU_END = 0,
    NNE_DPU_LOAD = 1,
    NNE_DPU_SAVE = 2,
    NNE_DPU_CONV = 3,
    NNE_DPU_POOL = 4,
    NNE_DPU_ELEW = 5,
    NNE_DPU_OPCODE_COUNT
} nne_dpu_opcode;

typedef enum nne_dpu_buffer { /* on-chip buffers */
                              NNE_DPU_BUF_FMAP = 0,
                              NNE_DPU_BUF_WEIGHT = 1,
                              NNE_DPU_BUF_BIAS = 2,
                              NNE_DPU_BUF_COUNT
} nne_dpu_buffer;

typedef enum nne_dpu_region { /* DDR regions, each addressed from 0 */
                              NNE_DPU_REG_PARAMS =
                                  0, /* weights, biases, activation parameters (int8) */
                              NNE_DPU_REG_WORK = 1,   /* intermediate feature maps */
                              NNE_DPU_REG_INPUT = 2,  /* the graph input */
                              NNE_DPU_REG_OUTPUT = 3, /* the graph output */
                              NNE_DPU_REG_COUNT
} nne_dpu_region;

typedef enum nne_dpu_act {
    NNE_DPU_ACT_NONE = 0,
    NNE_DPU_ACT_RELU = 1,
    NNE_DPU_ACT_RELU6 = 2,
    NNE_DPU_ACT_LEAKY = 3, /* slope = leaky_alpha * 2^-fp_act (26 * 2^-8 for 0.1) */
    NNE_DPU_ACT_PRELU = 4, /* per-channel int8 slopes at act_offset, fixed point fp_act */
    NNE_DPU_ACT_COUNT
} nne_dpu_act;

enum { NNE_DPU_POOL_MAX = 0, NNE_DPU_POOL_AVG = 1 };
enum { NNE_DPU_ELEW_ADD = 0 };
enum {
    NNE_DPU_CONV_AUG = 1,    /* conv.flags: channel augmentation (timing only) */
    NNE_DPU_CONV_BIAS32 = 2, /* conv.flags: bias is int32 little-endian (4 bytes per channel)
                                instead of int8 */
};

/* LOAD / SAVE: a block of rows x cols pixels x channels between DDR (region, offset, byte
 * strides) and an on-chip buffer (packed [rows][cols][ceil(channels/icp) words]). */
typedef struct nne_dpu_mem {
    uint32_t ddr_offset, bank_offset;
    uint8_t region, buffer;
    uint16_t channels, rows, cols;
    uint32_t row_stride, col_stride; /* DDR bytes between rows / between pixels */
} nne_dpu_mem;

typedef struct nne_dpu_conv {
    uint32_t in_offset, out_offset;   /* feature-map buffer */
    uint32_t weight_offset;           /* weight buffer: [oc][kh][kw][words(ic)] */
    uint32_t bias_offset, act_offset; /* bias buffer: bias [oc], prelu slopes [oc] */
    uint16_t in_rows, in_cols, out_rows, out_cols, in_ch, out_ch;
    uint8_t kh, kw, sh, sw, dh, dw;
    uint8_t pad[4]; /* top, left, bottom, right: zero rows/columns around the input tile */
    uint8_t act, flags;
    int8_t fp_in, fp_w, fp_bias, fp_out, fp_act; /* fixed-point positions: real = q * 2^-fp */
    int8_t leaky_alpha;
} nne_dpu_conv;

typedef struct nne_dpu_pool {
    uint32_t in_offset, out_offset;
    uint16_t in_rows, in_cols, out_rows, out_cols, channels;
    uint8_t kh, kw, sh, sw;
    uint8_t pad[4];
    int8_t fp_in, fp_out;
} nne_dpu_pool;

typedef struct nne_dpu_elew {
    uint32_t in0_offset, in1_offset, out_offset;
    uint16_t rows, cols, channels;
    uint8_t act; /* NONE or RELU */
    int8_t fp_in0, fp_in1, fp_out;
} nne_dpu_elew;

typedef struct nne_dpu_instr {
    uint8_t op;  /* nne_dpu_opcode */
    uint8_t sub; /* POOL: NNE_DPU_POOL_*; ELEW: NNE_DPU_ELEW_*; others 0 */
    uint16_t layer;
    union {
        nne_dpu_mem mem; /* LOAD, SAVE */
        nne_dpu_conv conv;
        nne_dpu_pool pool;
        nne_dpu_elew elew;
    } u;
} nne_dpu_instr;

enum {
    NNE_DPU_LAYER_QUANT_PLACEHOLDER = 1, /* fixed-point positions are not from the model */
};

typedef struct nne_dpu_layer {
    char name[32];         /* the graph node's name, truncated */
    uint8_t kind;          /* NNE_DPU_CONV, _POOL or _ELEW */
    uint8_t act;           /* fused activation */
    uint8_t flags;         /* NNE_DPU_LAYER_* */
    uint8_t order;         /* tiling loop order: 0 weights outer, 1 rows outer */
    uint32_t first, count; /* its instructions */
    uint64_t ops;          /* workload: 2 x MACs (pool, elew: 1 per output element) */
    uint16_t out_h, out_w, out_c;
    uint16_t tile_h, tile_w, tile_m; /* output tile: rows, columns, channels */
} nne_dpu_layer;

/* A compiled program: the instruction stream of one graph for one architecture. */
typedef struct nne_dpu_program {
    nne_dpu_arch arch;
    uint32_t region_size[NNE_DPU_REG_COUNT]; /* bytes */
    nne_dpu_layer *layers;
    uint32_t n_layers;
    nne_dpu_instr *instrs; /* ends with END */
    uint32_t n_instrs;
    uint8_t *params; /* contents of the PARAMS region, NULL when absent (timing only) */
    uint32_t params_size;
    uint32_t flags; /* NNE_DPU_PROGRAM_* */
    /* The graph input and output (INPUT / OUTPUT regions, NHWC int8) and their fixed-point
     * positions: what a runtime needs to quantize an image and read the result. The products
     * of the dimensions equal the region sizes. */
    uint16_t in_h, in_w, in_c, out_h, out_w, out_c;
    int8_t fp_input, fp_output;
} nne_dpu_program;

enum {
    /* The program has no parameter data (compiled from an f32 graph, placeholder fixed
     * points): it can be timed, not executed. */
    NNE_DPU_PROGRAM_TIMING_ONLY = 1,
};

void nne_dpu_program_free(nne_dpu_program *p);

/* ---- Compiler ---------------------------------------------------------------------------- */

typedef enum nne_dpu_tiling {
    NNE_DPU_TILING_DYNAMIC = 0, /* each layer its own best tiling (FlexCNN) */
    NNE_DPU_TILING_UNIFORM = 1, /* one tiling for every layer: the best such */
} nne_dpu_tiling;

typedef struct nne_dpu_compile_opts {
    nne_dpu_tiling tiling;
    const nne_dpu_board *board; /* the timing the search minimises; NULL: ultra96 preset */
} nne_dpu_compile_opts;

/* Compile an inferred graph: fuse conv + bias + activation, give every tensor a DDR place
 * (concat by addressing), search each layer's tiling under the buffer sizes, emit the
 * instructions. Supported: conv2d (groups 1) with relu/relu6/leaky_relu/prelu/batchnorm
 * after it, maxpool2d/avgpool2d, add, concat on channels; single input, single output.
 * Anything else is NNE_ERR_UNSUPPORTED naming the node. opts may be NULL (dynamic tiling,
 * ultra96).
 * A graph whose input is NNE_S8 is compiled for execution: every tensor must be quantized
 * with power-of-two scales (nne_quant.pow2, zero points 0; s8 weights, s32 biases), the
 * PARAMS section is filled and the program runs on nne_dpu_sim_run; anything the simulator
 * could not reproduce bit-exactly (docs/dpu-isa.md, "Compiling quantized graphs") is
 * NNE_ERR_UNSUPPORTED naming the node or tensor. Any other graph is compiled for timing
 * only (NNE_DPU_PROGRAM_TIMING_ONLY, no PARAMS data). */
nne_status nne_dpu_compile(const nne_graph *g, const nne_dpu_arch *arch,
                           const nne_dpu_compile_opts *opts, nne_dpu_program *out);

/* ---- Timing model (docs/dpu-model.md) ---------------------------------------------------- */

typedef struct nne_dpu_layer_time {
    uint64_t cycles;         /* fabric cycles from the layer's first instruction to its last */
    uint64_t compute_cycles; /* busy cycles of the conv / misc engines */
    uint64_t load_cycles, save_cycles; /* busy cycles of the load / save engines */
    uint64_t ddr_cycles; /* cycles the layer's DDR traffic needs at the effective rate */
    uint64_t load_bytes, save_bytes; /* DDR traffic (Mem) */
    double ms;
} nne_dpu_layer_time;

/* Time every layer of a program on one core of `board` (layers run one after another, as in
 * the DPU's debug-mode profile). times has p->n_layers slots; *total_ms may be NULL. */
nne_status nne_dpu_time(const nne_dpu_program *p, const nne_dpu_board *board,
                        nne_dpu_layer_time *times, double *total_ms);

/* Frames per second of `cores` DPU cores fed by `threads` frames in flight, each frame taking
 * latency_ms on a core: min(cores, threads) / latency, capped by the DDR the cores share:
 * ddr_gbps x burst_efficiency / bytes_per_frame (no cap if bytes_per_frame is 0). The host's
 * work is not included. */
double nne_dpu_throughput_fps(const nne_dpu_board *board, double latency_ms,
                              uint64_t bytes_per_frame, int32_t cores, int32_t threads);

/* ---- Functional simulator (docs/dpu-isa.md, "Simulator") ------------------------------- */

typedef struct nne_dpu_sim_stats {
    uint64_t instrs;                 /* instructions executed, END included */
    uint64_t macs;                   /* multiply-accumulates of the CONVs */
    uint64_t load_bytes, save_bytes; /* DDR bytes moved (without padding bytes) */
} nne_dpu_sim_stats;

/* Execute a program bit-exactly: input [in_h][in_w][in_c] int8 (region_size[INPUT] bytes) ->
 * output [out_h][out_w][out_c] int8 (region_size[OUTPUT] bytes). The program is validated
 * first; a timing-only program, one without its parameters, and an instruction the
 * simulator refuses (a SAVE into PARAMS or INPUT, a bias alignment shift above 30 bits, an
 * ELEW alignment above 22 bits) are errors naming the instruction. Nothing is written to
 * `output` on error. stats may be NULL. */
nne_status nne_dpu_sim_run(const nne_dpu_program *p, const int8_t *input, size_t input_size,
                           int8_t *output, size_t output_size, nne_dpu_sim_stats *stats);

/* ---- Reference measurements ------------------------------------------------------------ */

typedef struct nne_dpu_measured {
    const char *name;
    double mop, mem_mb, ms, gops, utilization, mbps; /* the paper's columns */
} nne_dpu_measured;

/* The CAE paper's profile of the cae-seed encoder on an Ultra96-V2 at 150 MHz (Tables 3-5),
 * one row per layer, for "B512", "B1024" and "B2304"; NULL (and *n = 0) for others.
 * *total_ms gets Table 6's latency. n and total_ms may be NULL. */
const nne_dpu_measured *nne_dpu_paper_cae(const char *arch, int *n, double *total_ms);

/* ---- Instruction-stream file (docs/dpu-isa.md) ------------------------------------------- */

#define NNE_DPU_MAX_INSTRS (1u << 24)
#define NNE_DPU_MAX_LAYERS 65535u
#define NNE_DPU_MAX_FILE   ((size_t)1 << 31)

nne_status nne_dpu_program_write_mem(const nne_dpu_program *p, uint8_t **out, size_t *size);
nne_status nne_dpu_program_read_mem(const uint8_t *buf, size_t size, nne_dpu_program *out);
nne_status nne_dpu_program_write_file(const nne_dpu_program *p, const char *path);
nne_status nne_dpu_program_read_file(const char *path, nne_dpu_program *out);
/* Check every instruction against the architecture's buffers and the DDR regions (the
 * reader calls it; the compiler's output always passes). */
nne_status nne_dpu_program_validate(const nne_dpu_program *p);

/* One instruction as assembly text ("LOAD fmap[0x0000] <- work[0x1000] 3x770x32 ..."). */
const char *nne_dpu_instr_str(const nne_dpu_instr *in, char *buf, size_t n);
const char *nne_dpu_opcode_name(nne_dpu_opcode op);
const char *nne_dpu_act_name(nne_dpu_act a);
/* Disassemble a whole program: header, layers, instructions. */
void nne_dpu_disasm(const nne_dpu_program *p, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
