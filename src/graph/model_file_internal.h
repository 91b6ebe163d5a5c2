/* nnedge model file (.nne): on-disk layout constants shared by the reader/writer
 * (src/graph/model_file.c), the tests and the fuzz target. Specification:
 * docs/model-format.md. Private: not installed, not part of the API. */
#ifndef NNE_MODEL_FILE_INTERNAL_H
#define NNE_MODEL_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/le.h"
#include "nnedge/common.h"

/* ---- Header (64 bytes at offset 0) ---- */
#define NNE_MF_HEADER_SIZE       64
#define NNE_MF_OFF_MAGIC         0  /* u8[8] "NNEDGEM\0" */
#define NNE_MF_OFF_VERSION       8  /* u32 */
#define NNE_MF_OFF_FLAGS         12 /* u32, zero in version 1 */
#define NNE_MF_OFF_HEADER_SIZE   16 /* u32 = 64 */
#define NNE_MF_OFF_SECTION_ESIZE 20 /* u32 = 32 */
#define NNE_MF_OFF_SECTION_COUNT 24 /* u32 */
#define NNE_MF_OFF_FILE_CRC      28 /* u32, CRC-32 of the file without these 4 bytes */
#define NNE_MF_OFF_FILE_SIZE     32 /* u64 */
#define NNE_MF_OFF_RESERVED      40 /* u8[24], zero */

/* ---- Section table (section_count entries of 32 bytes at offset 64) ---- */
#define NNE_MF_SECTION_ENTRY_SIZE 32
#define NNE_MF_SE_TYPE            0  /* u32 */
#define NNE_MF_SE_FLAGS           4  /* u32, bit 0 = optional */
#define NNE_MF_SE_OFFSET          8  /* u64, from file start */
#define NNE_MF_SE_SIZE            16 /* u64 */
#define NNE_MF_SE_CRC             24 /* u32, CRC-32 of the section's bytes */
#define NNE_MF_SE_RESERVED        28
#define NNE_MF_SECTION_OPTIONAL   1u
#define NNE_MF_MAX_SECTIONS       64

enum {
    NNE_MF_SEC_STRINGS = 1,
    NNE_MF_SEC_TENSORS = 2,
    NNE_MF_SEC_NODES = 3,
    NNE_MF_SEC_GRAPH = 4,
    NNE_MF_SEC_META = 5,
    NNE_MF_SEC_QUANT = 6,
    NNE_MF_SEC_WEIGHTS = 7,
    NNE_MF_SEC_REQUIRED_COUNT = 7, /* types 1..7: in every file */
    NNE_MF_SEC_ATTACHED = 8,       /* only in files of graphs with attached graphs */
    NNE_MF_SEC_KNOWN_COUNT = 8
};

/* Every section starts at a multiple of NNE_MF_SECTION_ALIGN; WEIGHTS, ATTACHED, every
 * tensor's data and every attached file at a multiple of NNE_MF_WEIGHTS_ALIGN. */
#define NNE_MF_SECTION_ALIGN 8
#define NNE_MF_WEIGHTS_ALIGN 64

/* Tables (TENSORS, NODES, META) start with {u32 count, u32 reserved}. */
#define NNE_MF_TABLE_HEADER 8

/* ---- TENSORS entry (112 bytes) ---- */
#define NNE_MF_TENSOR_SIZE   112
#define NNE_MF_T_NAME_OFF    0   /* u32 string ref: offset in STRINGS */
#define NNE_MF_T_NAME_LEN    4   /* u32 string ref: length without the NUL */
#define NNE_MF_T_DTYPE       8   /* u32 nne_dtype */
#define NNE_MF_T_KIND        12  /* u32 nne_tensor_kind */
#define NNE_MF_T_NDIM        16  /* u32 */
#define NNE_MF_T_RESERVED    20  /* u32, zero */
#define NNE_MF_T_DIMS        24  /* u64[6] */
#define NNE_MF_T_Q_AXIS      72  /* i32 */
#define NNE_MF_T_Q_COUNT     76  /* u32, 0 = not quantized */
#define NNE_MF_T_Q_FLAGS     80  /* u32, bit 0 = pow2 */
#define NNE_MF_T_Q_RESERVED  84  /* u32, zero */
#define NNE_MF_T_Q_OFFSET    88  /* u64, in QUANT */
#define NNE_MF_T_DATA_OFFSET 96  /* u64, in WEIGHTS */
#define NNE_MF_T_DATA_SIZE   104 /* u64 */
#define NNE_MF_QUANT_POW2    1u

/* ---- NODES entry (152 bytes) ---- */
#define NNE_MF_NODE_SIZE  152
#define NNE_MF_N_NAME_OFF 0
#define NNE_MF_N_NAME_LEN 4
#define NNE_MF_N_OP       8  /* u32 nne_op_type */
#define NNE_MF_N_N_INPUTS 12 /* u32 */
#define NNE_MF_N_OUTPUT   16 /* u32 tensor index */
#define NNE_MF_N_RESERVED 20 /* u32, zero */
#define NNE_MF_N_PARAMS   24 /* u32[NNE_OP_PARAM_WORDS] */
#define NNE_MF_N_INPUTS   88 /* i32[NNE_MAX_NODE_INPUTS], -1 = absent / unused */

/* ---- GRAPH: {name ref, u32 n_inputs, u32 n_outputs} then u32 refs ---- */
#define NNE_MF_GRAPH_HEADER 16

/* ---- META entry (16 bytes): key ref, value ref ---- */
#define NNE_MF_META_SIZE 16

/* ---- ATTACHED: table header {u32 count, u32 reserved}, count entries of 16 bytes, then
 * the attached graphs, each a complete model file ---- */
#define NNE_MF_ATTACHED_SIZE 16
#define NNE_MF_A_OFFSET      0 /* u64, from the start of ATTACHED, a multiple of 64 */
#define NNE_MF_A_SIZE        8 /* u64 */

/* Limits that the format adds to those of graph.h. */
#define NNE_MF_MAX_FILE_SIZE ((uint64_t)1 << 32) /* 4 GiB */

/* The whole-file CRC: CRC-32 of bytes [0, 28) followed by [32, size). */
static inline uint32_t nne_mf_file_crc(const uint8_t *buf, size_t size) {
    uint32_t crc = nne_crc32(0, buf, NNE_MF_OFF_FILE_CRC);
    return nne_crc32(crc, buf + NNE_MF_OFF_FILE_CRC + 4, size - (NNE_MF_OFF_FILE_CRC + 4));
}

/* Recompute every checksum of a (possibly modified) file in place: the CRC of each section
 * whose range lies inside the buffer, then the whole-file CRC. For tests and fuzzing, so
 * that a deliberately corrupted field reaches the validation behind the checksums. Does
 * nothing to a buffer shorter than the header. */
static inline void nne_mf_fix_checksums(uint8_t *buf, size_t size) {
    if (size < NNE_MF_HEADER_SIZE) return;
    uint64_t n = nne_le_rd32(buf + NNE_MF_OFF_SECTION_COUNT);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t e = NNE_MF_HEADER_SIZE + i * NNE_MF_SECTION_ENTRY_SIZE;
        if (e > size || size - e < NNE_MF_SECTION_ENTRY_SIZE) break;
        uint8_t *se = buf + e;
        uint64_t off = nne_le_rd64(se + NNE_MF_SE_OFFSET), sz = nne_le_rd64(se + NNE_MF_SE_SIZE);
        if (off > size || sz > size - off) continue;
        nne_le_wr32(se + NNE_MF_SE_CRC, nne_crc32(0, buf + off, (size_t)sz));
    }
    nne_le_wr32(buf + NNE_MF_OFF_FILE_CRC, nne_mf_file_crc(buf, size));
}

#endif
