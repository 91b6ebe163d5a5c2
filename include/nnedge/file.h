/* nnedge file helpers shared by every module that reads or writes files (images, model
 * files, bitstreams, reports). */
#ifndef NNEDGE_FILE_H
#define NNEDGE_FILE_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read a whole file (or pipe) into a new buffer (free with nne_free). A regular file larger
 * than `max_size` is refused with NNE_ERR_LIMIT before anything is allocated; a pipe is
 * refused once it has delivered more than `max_size` bytes. A missing file is
 * NNE_ERR_NOT_FOUND, other failures NNE_ERR_IO; messages start with the path. */
nne_status nne_file_read(const char *path, size_t max_size, uint8_t **out, size_t *out_size);

/* Write `size` bytes to `path` atomically: a temporary file beside it (same file system), write,
 * fsync, rename over the target, then a best-effort fsync of the directory. Readers see the
 * old file or the complete new one, never a prefix; on failure the temporary is removed and
 * an existing target is untouched. The result keeps the replaced file's permissions, or gets
 * 0666 & ~umask for a new file (as fopen would). */
nne_status nne_file_write_atomic(const char *path, const void *data, size_t size);

/* Thread-safe strerror into buf; returns buf. */
const char *nne_errno_str(int err, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
