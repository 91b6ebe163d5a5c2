/* libFuzzer target for the JSON reader (include/nnedge/json.h). Whatever it accepts is
 * walked completely (every key and string must be NUL-terminated within its allocation);
 * whatever it refuses must come with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const nne_json_value *v, int depth) {
    if (depth > NNE_JSON_MAX_DEPTH + 1) abort();
    size_t k = 1;
    if (v->type == NNE_JSON_STRING) k += strlen(v->string);
    for (int32_t i = 0; i < v->n; i++) {
        if (v->type == NNE_JSON_OBJECT) k += strlen(v->keys[i]);
        k += walk(&v->items[i], depth + 1);
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nne_json_value *v = NULL;
    nne_status s = nne_json_parse((const char *)data, size, &v);
    if (s != NNE_OK) {
        if (v || !nne_last_error()[0]) {
            fprintf(stderr, "fuzz_json: refusal without a message or with a result\n");
            abort();
        }
        return 0;
    }
    if (walk(v, 0) == 0) abort();
    nne_json_value_free(v);
    return 0;
}
