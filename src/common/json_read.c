/* The JSON reader (include/nnedge/json.h): recursive descent over a bounded buffer, depth
 * limited, every allocation checked; the tree owns all its strings. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/json.h"

typedef struct reader {
    const char *p, *end, *start;
    int depth;
} reader;

static nne_status fail(const reader *r, const char *what) {
    return nne_error(NNE_ERR_FORMAT, "json: byte %zu: %s", (size_t)(r->p - r->start), what);
}

static void skip_ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static void free_value(nne_json_value *v) {
    if (!v) return;
    nne_free(v->string);
    for (int32_t i = 0; i < v->n; i++) {
        free_value(&v->items[i]);
        if (v->keys) nne_free(v->keys[i]);
    }
    nne_free(v->items);
    nne_free(v->keys);
    memset(v, 0, sizeof *v);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(reader *r, unsigned *u) {
    if (r->end - r->p < 4) return false;
    *u = 0;
    for (int i = 0; i < 4; i++) {
        const int h = hexval(r->p[i]);
        if (h < 0) return false;
        *u = *u << 4 | (unsigned)h;
    }
    r->p += 4;
    return true;
}

/* A string starting at the opening quote. The UTF-8 output is never longer than the input
 * (an escape of 6 or 12 bytes makes at most 3 or 4), so one allocation suffices. */
static nne_status parse_string(reader *r, char **out) {
    r->p++; /* opening quote */
    const char *q = r->p;
    while (q < r->end && *q != '"') q += *q == '\\' && q + 1 < r->end ? 2 : 1;
    if (q >= r->end) return fail(r, "unterminated string");
    char *s = nne_malloc((size_t)(q - r->p) + 1), *w = s;
    if (!s) return NNE_ERR_NOMEM;
    while (*r->p != '"') {
        const unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) {
            nne_free(s);
            return fail(r, "control character in a string");
        }
        if (c != '\\') {
            *w++ = (char)c;
            r->p++;
            continue;
        }
        r->p++;
        const char e = *r->p++;
        unsigned u;
        switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u':
            if (!read_hex4(r, &u)) goto bad_escape;
            if (u >= 0xD800 && u <= 0xDBFF) { /* high surrogate: a low one must follow */
                unsigned lo;
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') goto bad_escape;
                r->p += 2;
                if (!read_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) goto bad_escape;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                goto bad_escape;
            }
            if (u == 0) {
                nne_free(s);
                return fail(r, "NUL character in a string");
            }
            if (u < 0x80) {
                *w++ = (char)u;
            } else if (u < 0x800) {
                *w++ = (char)(0xC0 | u >> 6);
                *w++ = (char)(0x80 | (u & 0x3F));
            } else if (u < 0x10000) {
                *w++ = (char)(0xE0 | u >> 12);
                *w++ = (char)(0x80 | (u >> 6 & 0x3F));
                *w++ = (char)(0x80 | (u & 0x3F));
            } else {
                *w++ = (char)(0xF0 | u >> 18);
                *w++ = (char)(0x80 | (u >> 12 & 0x3F));
                *w++ = (char)(0x80 | (u >> 6 & 0x3F));
                *w++ = (char)(0x80 | (u & 0x3F));
            }
            break;
        default:
            goto bad_escape;
        }
    }
    r->p++; /* closing quote */
    *w = 0;
    *out = s;
    return NNE_OK;
bad_escape:
    nne_free(s);
    return fail(r, "bad escape in a string");
}

static nne_status parse_number(reader *r, double *out) {
    const char *q = r->p;
    if (q < r->end && *q == '-') q++;
    if (q < r->end && *q == '0') {
        q++;
    } else if (q < r->end && *q >= '1' && *q <= '9') {
        while (q < r->end && *q >= '0' && *q <= '9') q++;
    } else {
        return fail(r, "bad number");
    }
    if (q < r->end && *q == '.') {
        q++;
        if (q >= r->end || *q < '0' || *q > '9') return fail(r, "bad number");
        while (q < r->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < r->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < r->end && (*q == '+' || *q == '-')) q++;
        if (q >= r->end || *q < '0' || *q > '9') return fail(r, "bad number");
        while (q < r->end && *q >= '0' && *q <= '9') q++;
    }
    char buf[512]; /* strtod needs a terminated copy; longer numbers are not sensible */
    const size_t len = (size_t)(q - r->p);
    if (len >= sizeof buf) return fail(r, "number too long");
    memcpy(buf, r->p, len);
    buf[len] = 0;
    errno = 0;
    const double v = strtod(buf, NULL);
    if (!isfinite(v)) return fail(r, "number out of range");
    *out = v;
    r->p = q;
    return NNE_OK;
}

static bool literal(reader *r, const char *word) {
    const size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return false;
    r->p += n;
    return true;
}

static nne_status parse_value(reader *r, nne_json_value *v);

/* Arrays and objects: elements are collected in a doubling buffer (keys beside them). */
static nne_status parse_container(reader *r, nne_json_value *v, bool object) {
    const char close = object ? '}' : ']';
    v->type = object ? NNE_JSON_OBJECT : NNE_JSON_ARRAY;
    if (++r->depth > NNE_JSON_MAX_DEPTH)
        return nne_error(NNE_ERR_LIMIT, "json: byte %zu: nesting deeper than %d",
                         (size_t)(r->p - r->start), NNE_JSON_MAX_DEPTH);
    r->p++; /* [ or { */
    skip_ws(r);
    int32_t cap = 0;
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return NNE_OK;
    }
    for (;;) {
        if (v->n == cap) {
            if (cap > INT32_MAX / 2) return nne_error(NNE_ERR_LIMIT, "json: too many elements");
            const int32_t nc = cap ? 2 * cap : 4;
            nne_json_value *it = nne_realloc_array(v->items, (size_t)nc, sizeof *it);
            if (!it) return NNE_ERR_NOMEM;
            v->items = it;
            if (object) {
                char **k = nne_realloc_array(v->keys, (size_t)nc, sizeof *k);
                if (!k) return NNE_ERR_NOMEM;
                v->keys = k;
            }
            cap = nc;
        }
        nne_json_value *it = &v->items[v->n];
        memset(it, 0, sizeof *it);
        if (object) v->keys[v->n] = NULL;
        v->n++; /* counted now so that free_value releases a half-parsed element */
        skip_ws(r);
        if (object) {
            if (r->p >= r->end || *r->p != '"') return fail(r, "expected a key");
            nne_status s = parse_string(r, &v->keys[v->n - 1]);
            if (s) return s;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':') return fail(r, "expected ':'");
            r->p++;
        }
        nne_status s = parse_value(r, it);
        if (s) return s;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            r->depth--;
            return NNE_OK;
        }
        return fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static nne_status parse_value(reader *r, nne_json_value *v) {
    skip_ws(r);
    if (r->p >= r->end) return fail(r, "unexpected end");
    switch (*r->p) {
    case '{': return parse_container(r, v, true);
    case '[': return parse_container(r, v, false);
    case '"': v->type = NNE_JSON_STRING; return parse_string(r, &v->string);
    case 't':
    case 'f':
        v->type = NNE_JSON_BOOL;
        v->boolean = *r->p == 't';
        return literal(r, v->boolean ? "true" : "false") ? NNE_OK : fail(r, "bad literal");
    case 'n':
        v->type = NNE_JSON_NULL;
        return literal(r, "null") ? NNE_OK : fail(r, "bad literal");
    default: v->type = NNE_JSON_NUMBER; return parse_number(r, &v->number);
    }
}

nne_status nne_json_parse(const char *text, size_t n, nne_json_value **out) {
    if (!out || (!text && n)) return nne_error(NNE_ERR_INVALID_ARG, "json: NULL argument");
    *out = NULL;
    reader r = {text, text + n, text, 0};
    nne_json_value *v = nne_calloc(1, sizeof *v);
    if (!v) return NNE_ERR_NOMEM;
    nne_status s = parse_value(&r, v);
    if (!s) {
        skip_ws(&r);
        if (r.p != r.end) s = fail(&r, "trailing characters after the value");
    }
    if (s) {
        nne_json_value_free(v);
        return s;
    }
    *out = v;
    return NNE_OK;
}

void nne_json_value_free(nne_json_value *v) {
    if (!v) return;
    free_value(v);
    nne_free(v);
}

const nne_json_value *nne_json_get(const nne_json_value *obj, const char *key) {
    if (!obj || obj->type != NNE_JSON_OBJECT || !key) return NULL;
    for (int32_t i = 0; i < obj->n; i++)
        if (obj->keys[i] && strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}
