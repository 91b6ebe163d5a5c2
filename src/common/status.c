/* Status codes and the per-thread error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nnedge/common.h"

static _Thread_local char g_msg[1024];

const char *nne_status_str(nne_status s) {
    switch (s) {
    case NNE_OK:
        return "ok";
    case NNE_ERR_INVALID_ARG:
        return "invalid argument";
    case NNE_ERR_NOMEM:
        return "out of memory";
    case NNE_ERR_IO:
        return "I/O error";
    case NNE_ERR_FORMAT:
        return "format error";
    case NNE_ERR_CHECKSUM:
        return "checksum mismatch";
    case NNE_ERR_UNSUPPORTED:
        return "unsupported";
    case NNE_ERR_SHAPE:
        return "shape error";
    case NNE_ERR_LIMIT:
        return "limit exceeded";
    case NNE_ERR_NOT_FOUND:
        return "not found";
    case NNE_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

const char *nne_last_error(void) { return g_msg; }

void nne_error_clear(void) { g_msg[0] = 0; }

nne_status nne_error(nne_status s, const char *fmt, ...) {
    /* Through a copy: callers prefix the previous message, nne_error(s, "x: %s",
     * nne_last_error()), and vsnprintf into the buffer it reads from is undefined (glibc
     * garbles it). */
    char msg[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(g_msg, msg, sizeof msg);
    return s;
}
