/* Minimal streaming JSON writer (RFC 8259 output). Keys are NULL inside arrays and at the
 * top level. Non-finite numbers are written as null. Depth is limited to NNE_JSON_MAX_DEPTH.
 * And a small validating reader into a tree (for result files such as CompressAI's
 * anchors), below the writer. */
#ifndef NNEDGE_JSON_H
#define NNEDGE_JSON_H

#include "nnedge/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_JSON_MAX_DEPTH 32

typedef struct nne_json {
    FILE *f;
    int depth;
    bool pretty;
    bool first[NNE_JSON_MAX_DEPTH + 1]; /* no element written yet at this depth */
} nne_json;

void nne_json_init(nne_json *j, FILE *f, bool pretty);
void nne_json_object_begin(nne_json *j, const char *key);
void nne_json_object_end(nne_json *j);
void nne_json_array_begin(nne_json *j, const char *key);
void nne_json_array_end(nne_json *j);
void nne_json_string(nne_json *j, const char *key, const char *value); /* NULL -> null */
void nne_json_int(nne_json *j, const char *key, int64_t value);
void nne_json_double(nne_json *j, const char *key, double value); /* %.17g, shortest safe */
void nne_json_number(nne_json *j, const char *key, double value, int decimals);
void nne_json_bool(nne_json *j, const char *key, bool value);
void nne_json_null(nne_json *j, const char *key);
/* Terminate the document with a newline. */
void nne_json_finish(nne_json *j);

/* ---- Reader -------------------------------------------------------------------------------
 * RFC 8259 strictly: one value surrounded by optional whitespace; no comments, no trailing
 * commas, no NaN/Infinity, no control characters in strings; \u escapes (surrogate pairs
 * included) become UTF-8, and a string holding a NUL is refused. Numbers are doubles (the
 * RFC grammar is checked before strtod; one overflowing to infinity is refused). Nesting is
 * limited to NNE_JSON_MAX_DEPTH, so hostile input cannot exhaust the stack. Duplicate
 * object keys are kept; nne_json_get returns the first. Errors: NNE_ERR_FORMAT with the
 * byte offset and the problem, NNE_ERR_LIMIT for the depth, NNE_ERR_NOMEM. */
typedef enum nne_json_type {
    NNE_JSON_NULL,
    NNE_JSON_BOOL,
    NNE_JSON_NUMBER,
    NNE_JSON_STRING,
    NNE_JSON_ARRAY,
    NNE_JSON_OBJECT,
} nne_json_type;

typedef struct nne_json_value nne_json_value;
struct nne_json_value {
    nne_json_type type;
    bool boolean;          /* BOOL */
    double number;         /* NUMBER */
    char *string;          /* STRING: NUL-terminated UTF-8 */
    int32_t n;             /* ARRAY / OBJECT: number of elements */
    nne_json_value *items; /* ARRAY / OBJECT: n values */
    char **keys;           /* OBJECT: n keys */
};

/* Parse `n` bytes (no NUL needed). *out: free with nne_json_value_free. */
nne_status nne_json_parse(const char *text, size_t n, nne_json_value **out);
void nne_json_value_free(nne_json_value *v);
/* The value of `key` in an object (first match), or NULL (also for a non-object). */
const nne_json_value *nne_json_get(const nne_json_value *obj, const char *key);

#ifdef __cplusplus
}
#endif
#endif
