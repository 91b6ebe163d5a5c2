/* Layout of the bitstream container header (docs/bitstream.md), shared by the reader, the
 * writer, the tests and the fuzz target. All fields little-endian. */
#ifndef NNE_CODEC_BITSTREAM_INTERNAL_H
#define NNE_CODEC_BITSTREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

enum {
    NNE_NNC_OFF_MAGIC = 0,           /* u8[8] "NNEDGEC\0" */
    NNE_NNC_OFF_VERSION = 8,         /* u32, 1 */
    NNE_NNC_OFF_HEADER_SIZE = 12,    /* u32, NNE_NNC_HEADER_SIZE(n_streams) */
    NNE_NNC_OFF_FLAGS = 16,          /* u32, 0 */
    NNE_NNC_OFF_N_STREAMS = 20,      /* u32, 1..16 */
    NNE_NNC_OFF_IMAGE_WIDTH = 24,    /* u32 */
    NNE_NNC_OFF_IMAGE_HEIGHT = 28,   /* u32 */
    NNE_NNC_OFF_IMAGE_CHANNELS = 32, /* u32, 3 */
    NNE_NNC_OFF_ALIGN = 36,          /* u32, power of two 1..256 */
    NNE_NNC_OFF_PAD = 40,            /* u32[4] top, left, bottom, right */
    NNE_NNC_OFF_QUALITY = 56,        /* u32, 0..255 */
    NNE_NNC_OFF_PAYLOAD_CRC = 60,    /* u32, CRC-32 of all stream bytes */
    NNE_NNC_OFF_MODEL_ID = 64,       /* u8[32] */
    NNE_NNC_OFF_MODEL_HASH = 96,     /* u8[32] */
    NNE_NNC_OFF_STREAMS = 128,       /* n_streams x {u8[4] tag, u32 reserved 0, u64 size} */
};

/* Recompute both CRCs of a container image in place, if its header_size field is plausible
 * and the buffer holds the header (no-op otherwise), so that tests and the fuzz target can
 * mutate fields and still reach the validation behind the checksums. */
void nne_nnc_fix_checksums(uint8_t *buf, size_t size);

#endif
