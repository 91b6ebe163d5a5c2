/* Layout of the latent container header (docs/latent-format.md), shared by the reader, the
 * writer, the tests and the fuzz target. All fields little-endian. */
#ifndef NNE_CODEC_LATENT_INTERNAL_H
#define NNE_CODEC_LATENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    NNE_LT_OFF_MAGIC = 0,           /* u8[8] "NNEDGEL\0" */
    NNE_LT_OFF_VERSION = 8,         /* u32 */
    NNE_LT_OFF_HEADER_SIZE = 12,    /* u32, 160 */
    NNE_LT_OFF_FLAGS = 16,          /* u32, 0 */
    NNE_LT_OFF_COMPRESSION = 20,    /* u32, nne_latent_compression */
    NNE_LT_OFF_DTYPE = 24,          /* u32, 1 = f32 */
    NNE_LT_OFF_IMAGE_WIDTH = 28,    /* u32 */
    NNE_LT_OFF_IMAGE_HEIGHT = 32,   /* u32 */
    NNE_LT_OFF_IMAGE_CHANNELS = 36, /* u32, 3 */
    NNE_LT_OFF_PAD = 40,            /* u32[4] top, left, bottom, right */
    NNE_LT_OFF_LATENT_SHAPE = 56,   /* u32[3] height, width, channels */
    NNE_LT_OFF_PAYLOAD_CRC = 68,    /* u32, CRC-32 of the stored payload */
    NNE_LT_OFF_RAW_SIZE = 72,       /* u64 */
    NNE_LT_OFF_STORED_SIZE = 80,    /* u64 */
    NNE_LT_OFF_MODEL_ID = 88,       /* u8[32] */
    NNE_LT_OFF_MODEL_HASH = 120,    /* u8[32] */
    NNE_LT_OFF_RESERVED = 152,      /* u32, 0 */
    NNE_LT_OFF_HEADER_CRC = 156,    /* u32, CRC-32 of bytes [0, 156) */
    NNE_LT_DTYPE_F32 = 1,
};

/* Recompute both CRCs of a file image in place (no-op if shorter than the header), so that
 * tests and the fuzz target can mutate fields and still reach the validation behind the
 * checksums. */
void nne_latent_fix_checksums(uint8_t *buf, size_t size);

/* The model identifier field of the latent and bitstream containers (32 bytes): 1..31
 * printable ASCII bytes (0x20..0x7E), then NULs to the end. */
bool nne_latent_id_field_ok(const uint8_t id[32]);

#endif
