/* Private constants and helpers of the DPU module. */
#ifndef NNE_DPU_INTERNAL_H
#define NNE_DPU_INTERNAL_H

#include "nnedge/dpu.h"

/* Words per on-chip bank (Vitis AI DPUCZDX8G target descriptions: bank_depth 2048). */
#define NNE_DPU_BANK_DEPTH 2048
/* Bytes per fabric cycle of a DPU data port: 128-bit AXI. */
#define NNE_DPU_AXI_BYTES 16

/* Timing constants, the same for every architecture and board; calibrated on the CAE
 * paper's Tables 3-5 (docs/dpu-model.md, "Calibration"). Fabric cycles per instruction. */
#define NNE_DPU_LOAD_OVERHEAD 100
#define NNE_DPU_SAVE_OVERHEAD 100
#define NNE_DPU_CONV_OVERHEAD 50
#define NNE_DPU_MISC_OVERHEAD 50
/* Fraction of the theoretical DDR bandwidth the DPU's transfers achieve. */
#define NNE_DPU_BURST_EFFICIENCY 0.53

/* Taps (kh x kw x ic) of one CONV output: |sum| <= 131071 x 2^14 < 2^31. */
#define NNE_DPU_MAX_TAPS 131071u

/* Instruction-stream file layout (docs/dpu-isa.md). */
#define NNE_DPU_MAGIC       "NNEDPUI"
#define NNE_DPU_VERSION     1
#define NNE_DPU_HEADER_SIZE 128
#define NNE_DPU_LAYER_SIZE  64
#define NNE_DPU_INSTR_SIZE  64

static inline uint32_t nne_dpu_ceil_div(uint32_t a, uint32_t b) { return (a + b - 1) / b; }
static inline uint64_t nne_dpu_ceil_div64(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Bytes a packed block of rows x cols pixels x channels occupies in an on-chip buffer:
 * every pixel takes ceil(channels / icp) words of icp bytes. */
static inline uint64_t nne_dpu_bank_bytes(const nne_dpu_arch *a, uint32_t rows, uint32_t cols,
                                          uint32_t channels) {
    return (uint64_t)rows * cols * nne_dpu_ceil_div(channels, (uint32_t)a->icp) * (uint64_t)a->icp;
}

/* Weight-buffer bytes of oc filters of kh x kw x ic: [oc][kh][kw][words(ic)]. */
static inline uint64_t nne_dpu_weight_bank_bytes(const nne_dpu_arch *a, uint32_t oc, uint32_t kh,
                                                 uint32_t kw, uint32_t ic) {
    return (uint64_t)oc * kh * kw * nne_dpu_ceil_div(ic, (uint32_t)a->icp) * (uint64_t)a->icp;
}

/* Encode / decode one 64-byte instruction (isa.c). decode checks opcode and reserved
 * fields only; nne_dpu_program_validate checks extents. */
void nne_dpu_instr_encode(const nne_dpu_instr *in, uint8_t out[NNE_DPU_INSTR_SIZE]);
nne_status nne_dpu_instr_decode(const uint8_t in[NNE_DPU_INSTR_SIZE], nne_dpu_instr *out);
/* Recompute the file CRC of a buffer holding a whole file (for fuzzing). */
void nne_dpu_fix_checksum(uint8_t *buf, size_t size);

/* Time instructions in[0..n) from an idle DPU (timing.c): one layer of a program. */
void nne_dpu_time_instrs(const nne_dpu_arch *a, const nne_dpu_board *b, const nne_dpu_instr *in,
                         uint32_t n, nne_dpu_layer_time *t);
/* Effective DDR bytes per fabric cycle of a board. */
double nne_dpu_ddr_bytes_per_cycle(const nne_dpu_board *b);
/* Cycles of one instruction on its engine, without the fixed overhead; *ddr_bytes gets the
 * bytes it moves over DDR rounded up to whole AXI beats (0 for compute instructions). */
uint64_t nne_dpu_instr_cycles(const nne_dpu_arch *a, const nne_dpu_instr *in, uint64_t *ddr_bytes);

#endif
