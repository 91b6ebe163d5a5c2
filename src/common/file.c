/* Whole-file reads and atomic writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nnedge/file.h"

const char *nne_errno_str(int err, char *buf, size_t n) {
    /* XSI strerror_r (we build with _POSIX_C_SOURCE and without _GNU_SOURCE). */
    if (strerror_r(err, buf, n) != 0) snprintf(buf, n, "error %d", err);
    return buf;
}

nne_status nne_file_read(const char *path, size_t max_size, uint8_t **out, size_t *out_size) {
    char eb[128];
    *out = NULL;
    *out_size = 0;
    if (!path) return nne_error(NNE_ERR_INVALID_ARG, "file read: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return nne_error(errno == ENOENT ? NNE_ERR_NOT_FOUND : NNE_ERR_IO, "%s: cannot open: %s",
                         path, nne_errno_str(errno, eb, sizeof eb));
    size_t cap = 1 << 16, len = 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fclose(f);
            return nne_error(NNE_ERR_IO, "%s: is a directory", path);
        }
        if (S_ISREG(st.st_mode)) {
            if ((uint64_t)st.st_size > max_size) {
                fclose(f);
                return nne_error(NNE_ERR_LIMIT, "%s: file too large (%lld bytes, limit %zu)", path,
                                 (long long)st.st_size, max_size);
            }
            cap = (size_t)st.st_size + 1; /* +1 so that EOF is seen without growing */
        }
    }
    uint8_t *buf = nne_malloc(cap);
    if (!buf) {
        fclose(f);
        return NNE_ERR_NOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max_size) {
                nne_free(buf);
                fclose(f);
                return nne_error(NNE_ERR_LIMIT, "%s: file too large (limit %zu bytes)", path,
                                 max_size);
            }
            uint8_t *nb = nne_realloc_array(buf, cap, 2);
            if (!nb) {
                nne_free(buf);
                fclose(f);
                return NNE_ERR_NOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err) {
        nne_free(buf);
        return nne_error(NNE_ERR_IO, "%s: read error: %s", path, nne_errno_str(err, eb, sizeof eb));
    }
    if (len > max_size) {
        nne_free(buf);
        return nne_error(NNE_ERR_LIMIT, "%s: file too large (limit %zu bytes)", path, max_size);
    }
    *out = buf;
    *out_size = len;
    return NNE_OK;
}

/* Mode for a new file: the process umask applied to 0666, as open(O_CREAT) would do. The
 * umask is read from /proc (Linux) because umask(2) cannot be queried without changing it,
 * which would race with other threads; 0644 is the fallback. */
static mode_t new_file_mode(void) {
    mode_t mode = 0644;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return mode;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned m;
        if (sscanf(line, "Umask: %o", &m) == 1) {
            mode = (mode_t)(0666 & ~m);
            break;
        }
    }
    fclose(f);
    return mode;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

nne_status nne_file_write_atomic(const char *path, const void *data, size_t n) {
    char eb[128];
    if (!path || !*path) return nne_error(NNE_ERR_INVALID_ARG, "file write: empty path");
    size_t plen = strlen(path);
    static const char suffix[] = ".tmp-XXXXXX";
    char *tmp = nne_malloc(plen + sizeof suffix);
    if (!tmp) return NNE_ERR_NOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        nne_status s = nne_error(NNE_ERR_IO, "%s: cannot create temporary file: %s", path,
                                 nne_errno_str(errno, eb, sizeof eb));
        nne_free(tmp);
        return s;
    }
    /* mkstemp creates the file 0600; give it the mode of the file it replaces, or the mode a
     * plain fopen would have given it. */
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : new_file_mode();
    const char *what = NULL;
    if (fchmod(fd, mode) != 0)
        what = "chmod";
    else if (write_all(fd, data, n) != 0)
        what = "write";
    else if (fsync(fd) != 0)
        what = "fsync";
    int err = what ? errno : 0;
    if (close(fd) != 0 && !what) {
        what = "close";
        err = errno;
    }
    if (!what && rename(tmp, path) != 0) {
        what = "rename";
        err = errno;
    }
    if (what) {
        nne_status s = nne_error(NNE_ERR_IO, "%s: %s failed: %s", path, what,
                                 nne_errno_str(err, eb, sizeof eb));
        unlink(tmp);
        nne_free(tmp);
        return s;
    }
    nne_free(tmp);
    /* Make the rename itself durable. Best effort: some file systems refuse fsync on
     * directories, and the data is already safely in place. */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? nne_strdup(path) : NULL;
    if (dir) dir[slash == path ? 1 : slash - path] = 0;
    int dfd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    nne_free(dir);
    return NNE_OK;
}
