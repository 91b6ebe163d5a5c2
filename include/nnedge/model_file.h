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

#define NNE_MODEL_MAGIC "NNEDGEM\0"  /* 8 bytes */
#define NNE_MODEL_VERSION 1

/* Serialize to memory (*out allocated with nne_malloc). The graph must pass nne_graph_infer. */
nne_status nne_model_write_mem(const nne_graph *g, uint8_t **out, size_t *out_size);
/* Write atomically to `path` (temporary file in the same directory, fsync, rename). */
nne_status nne_model_write_file(const nne_graph *g, const char *path);

/* Parse from memory. On success *out is an inferred graph (nne_graph_infer passed). */
nne_status nne_model_read_mem(const uint8_t *buf, size_t size, nne_graph **out);
/* Read a file; errors are prefixed with the path. */
nne_status nne_model_read_file(const char *path, nne_graph **out);

#ifdef __cplusplus
}
#endif
#endif
