/* Minimal streaming JSON writer (RFC 8259 output). Keys are NULL inside arrays and at the
 * top level. Non-finite numbers are written as null. Depth is limited to NNE_JSON_MAX_DEPTH. */
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

#ifdef __cplusplus
}
#endif
#endif
