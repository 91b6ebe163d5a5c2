/* The JSON reader: a CompressAI-style result file, escapes, and the refusals (RFC 8259
 * strictness, depth limit, truncation). */
#include <string.h>

#include "nnedge/json.h"
#include "testutil.h"

static nne_status parse(const char *s, nne_json_value **v) { return nne_json_parse(s, strlen(s), v); }

static void test_anchor_shape(void) {
    const char *doc = "{\n  \"name\": \"JPEG\",\n  \"description\": \"JPEG. Pillow 7.1.2\",\n"
                      "  \"results\": {\"bpp\": [0.25, 1e-1, -2.5E+2, 0],\n"
                      "               \"psnr-rgb\": [30.5], \"ok\": true, \"x\": null}\n}\n";
    nne_json_value *v = NULL;
    CHECK_OK(parse(doc, &v));
    CHECK(v && v->type == NNE_JSON_OBJECT && v->n == 3);
    const nne_json_value *name = nne_json_get(v, "name");
    CHECK(name && name->type == NNE_JSON_STRING && strcmp(name->string, "JPEG") == 0);
    const nne_json_value *bpp = nne_json_get(nne_json_get(v, "results"), "bpp");
    CHECK(bpp && bpp->type == NNE_JSON_ARRAY && bpp->n == 4);
    if (bpp && bpp->n == 4) {
        CHECK(bpp->items[0].number == 0.25 && bpp->items[1].number == 0.1);
        CHECK(bpp->items[2].number == -250 && bpp->items[3].number == 0);
    }
    const nne_json_value *res = nne_json_get(v, "results");
    CHECK(nne_json_get(res, "ok")->type == NNE_JSON_BOOL && nne_json_get(res, "ok")->boolean);
    CHECK(nne_json_get(res, "x")->type == NNE_JSON_NULL);
    CHECK(nne_json_get(res, "missing") == NULL && nne_json_get(bpp, "bpp") == NULL);
    nne_json_value_free(v);
}

static void test_escapes(void) {
    nne_json_value *v = NULL;
    CHECK_OK(parse("[\"a\\\"b\\\\c\\/\\n\\u00e9\\u20ac\\ud83d\\ude00\", {}, []]", &v));
    CHECK(v && v->n == 3 && strcmp(v->items[0].string, "a\"b\\c/\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0);
    CHECK(v && v->items[1].type == NNE_JSON_OBJECT && v->items[1].n == 0);
    nne_json_value_free(v);
}

static void test_refusals(void) {
    const char *bad[] = {"",          "[1,]",        "{\"a\" 1}",    "[01]",      "[1.]",
                         "[.5]",      "[NaN]",       "[1e999]",      "\"\\x\"",   "\"a",
                         "[\"\t\"]",  "\"\\u0000\"", "\"\\ud800\"",  "{\"a\":1",  "tru",
                         "[1] [2]",   "// c\n1",     "{a:1}",        "[+1]",      "\"\\udc00\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nne_json_value *v = (nne_json_value *)1;
        CHECK_MSG(parse(bad[i], &v) == NNE_ERR_FORMAT && v == NULL, "accepted '%s'", bad[i]);
        CHECK(strstr(nne_last_error(), "json: byte") != NULL);
    }
    /* Depth: NNE_JSON_MAX_DEPTH levels parse, one more is a limit error. */
    char deep[2 * NNE_JSON_MAX_DEPTH + 8];
    for (int extra = 0; extra <= 1; extra++) {
        const int d = NNE_JSON_MAX_DEPTH + extra;
        for (int i = 0; i < d; i++) {
            deep[i] = '[';
            deep[d + i] = ']';
        }
        deep[2 * d] = 0;
        nne_json_value *v = NULL;
        CHECK_STATUS(parse(deep, &v), extra ? NNE_ERR_LIMIT : NNE_OK);
        nne_json_value_free(v);
    }
    /* A buffer is parsed by length, not up to a NUL. */
    nne_json_value *v = NULL;
    CHECK_OK(nne_json_parse("12345", 2, &v));
    CHECK(v && v->number == 12);
    nne_json_value_free(v);
}

int main(void) {
    NNE_RUN(test_anchor_shape);
    NNE_RUN(test_escapes);
    NNE_RUN(test_refusals);
    return nne_test_summary();
}
