/* nnedge model file (.nne): a graph with its weights and metadata, little-endian, versioned,
 * checksummed. Specification: docs/model-format.md.
 *
 * The reader treats the file as hostile: every count, offset, length, index, dtype, shape
 * and op parameter is validated against the file size and the documented limits before it is
 * used, so a truncated, corrupted or malicious file yields NNE_ERR_FORMAT / NNE_ERR_CHECKSUM /
 * NNE_ERR_LIMIT / NNE_ERR_UNSUPPORTED with a message, never a crash, and never an allocation
 * larger than what the file's own size can justify.
 */
#ifndef NNEDGE_MODEL_FILE_H
#define NNEDGE_MODEL_FILE_H

#include "nnedge/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_MODEL_MAGIC   "NNEDGEM\0" /* 8 bytes */
#define NNE_MODEL_VERSION 1

/* Serialize to memory (*out allocated with nne_malloc, release with nne_free). The graph must
 * have passed nne_graph_infer (else NNE_ERR_INVALID_ARG). The encoding is canonical: the same
 * graph always gives the same bytes. Tensors are stored inputs and constants first, then one
 * activation per node in node order, so a graph read back may number its tensors differently
 * from the one written (names, node order, inputs, outputs and metadata are kept). */
nne_status nne_model_write_mem(const nne_graph *g, uint8_t **out, size_t *out_size);
/* Write atomically to `path`: a temporary file beside it is written, fsync'ed and renamed over
 * `path`, so `path` holds the old model or the new one, never a mixture. On failure the
 * temporary file is removed and an existing `path` is left as it was (NNE_ERR_IO). */
nne_status nne_model_write_file(const nne_graph *g, const char *path);

/* Writer options (NULL: all off). */
typedef struct nne_model_write_opts {
    /* Store every unquantized f32 constant whose values are all exactly f16 values (none NaN)
     * as an f16 constant: half its bytes, lossless, since the reader widens f16 constants
     * back to the same f32 values. Others stay f32. Meant for weights rounded to fp16
     * (nne_fake_quantize_weights NNE_WFORMAT_FP16; `nnedge quantize --fake --scheme fp16`),
     * where every constant qualifies. Attached graphs are written with the same options. */
    bool f16_exact;
} nne_model_write_opts;
nne_status nne_model_write_mem_opts(const nne_graph *g, const nne_model_write_opts *o,
                                    uint8_t **out, size_t *out_size);
nne_status nne_model_write_file_opts(const nne_graph *g, const nne_model_write_opts *o,
                                     const char *path);

/* Parse from memory. On success *out is an inferred graph (nne_graph_infer passed); on
 * failure *out is NULL and nne_last_error() starts with "model: ". f16 is a storage format:
 * every f16 constant becomes an f32 constant of the same values (exact). */
nne_status nne_model_read_mem(const uint8_t *buf, size_t size, nne_graph **out);
/* Read a regular file of at most 4 GiB (checked before reading: NNE_ERR_LIMIT); errors are
 * prefixed with the path. */
nne_status nne_model_read_file(const char *path, nne_graph **out);

#ifdef __cplusplus
}
#endif
#endif
