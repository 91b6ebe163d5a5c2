/* nnedge bitstream container (.nnc) for learned codecs: the image geometry, the padding to the
 * model's downsampling factor, the model's identity and weight hash, a quality (rate) index,
 * and a list of tagged entropy-coded streams (e.g. "z" for the hyper-latent and "y" for the
 * latent), protected by CRC-32s. Specification: docs/bitstream.md. The container does not
 * interpret the streams (include/nnedge/entropy.h codes them), so it is independent of any
 * network.
 *
 * The reader treats its input as hostile: every field is checked against its range and every
 * length against the buffer before anything is used; it allocates nothing and returns views
 * into the caller's buffer. */
#ifndef NNEDGE_BITSTREAM_H
#define NNEDGE_BITSTREAM_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_NNC_MAGIC        "NNEDGEC\0" /* 8 bytes */
#define NNE_NNC_VERSION      1
#define NNE_NNC_FIXED_SIZE   128 /* header bytes before the stream table */
#define NNE_NNC_ENTRY_SIZE   16  /* one stream table entry */
#define NNE_NNC_ID_SIZE      32  /* model identifier: 1..31 printable ASCII, NUL-padded */
#define NNE_NNC_HASH_SIZE    32  /* SHA-256 of the model weights */
#define NNE_NNC_TAG_SIZE     4   /* stream tag: 1..4 ASCII 0x21..0x7E, NUL-padded */
#define NNE_NNC_MAX_STREAMS  16
#define NNE_NNC_MAX_ALIGN    256 /* largest downsampling factor (a power of two) */
#define NNE_NNC_MAX_QUALITY  255
#define NNE_NNC_MAX_CHANNELS 3 /* version 1: RGB only */
/* Header size for n streams: fixed part, table, header CRC. */
#define NNE_NNC_HEADER_SIZE(n) (NNE_NNC_FIXED_SIZE + NNE_NNC_ENTRY_SIZE * (n) + 4)

typedef struct nne_nnc_stream {
    char tag[NNE_NNC_TAG_SIZE + 1]; /* NUL-terminated, e.g. "y" */
    const uint8_t *data;            /* size bytes; the reader points into its input buffer */
    size_t size;                    /* may be 0 */
} nne_nnc_stream;

typedef struct nne_nnc {
    char model_id[NNE_NNC_ID_SIZE];        /* NUL-terminated, e.g. "bmshj2018-hyperprior" */
    uint8_t model_hash[NNE_NNC_HASH_SIZE]; /* SHA-256 of the model's weights */
    int32_t image_width, image_height;     /* the original (cropped) image, pixels */
    int32_t image_channels;                /* 3 */
    int32_t align;                         /* the model's downsampling factor, 2^k <= 256 */
    int32_t pad[4];                        /* top, left, bottom, right: pixels added */
    int32_t quality;                       /* rate index of the model, 0..255 */
    int32_t n_streams;                     /* 1..NNE_NNC_MAX_STREAMS */
    nne_nnc_stream streams[NNE_NNC_MAX_STREAMS];
} nne_nnc;

/* Padding of a width x height image to multiples of `align` (a power of two, 1..256), split as
 * CompressAI does: (total / 2) before, the rest after; pad = {top, left, bottom, right}.
 * NNE_ERR_INVALID_ARG for a bad align or size, NNE_ERR_LIMIT if the padded image exceeds the
 * image limits (include/nnedge/image.h). */
nne_status nne_nnc_padding(int32_t width, int32_t height, int32_t align, int32_t pad[4]);

/* Serialize `c` (validated as a reader would) into a new buffer (nne_malloc; release with
 * nne_free). Deterministic: equal inputs give equal bytes. */
nne_status nne_nnc_write_mem(const nne_nnc *c, uint8_t **out, size_t *out_size);
/* The same, written atomically to `path`. */
nne_status nne_nnc_write_file(const nne_nnc *c, const char *path);

/* Parse and validate a whole container. On success *out describes it, with stream data
 * pointing into `buf` (valid while buf is). On failure *out is zeroed and the message starts
 * with "nnc: ". Statuses: FORMAT (not a container, truncated, trailing bytes, a bad field),
 * CHECKSUM (header or payload CRC-32), UNSUPPORTED (version, flags, channels), LIMIT (image
 * or stream-count limits). Never reads outside buf, never allocates. */
nne_status nne_nnc_read_mem(const uint8_t *buf, size_t size, nne_nnc *out);

/* The stream with this tag, or NULL. */
const nne_nnc_stream *nne_nnc_find(const nne_nnc *c, const char *tag);

#ifdef __cplusplus
}
#endif
#endif
