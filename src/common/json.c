#include "nnedge/json.h"

#include <math.h>

void nne_json_init(nne_json *j, FILE *f, bool pretty) {
    j->f = f;
    j->depth = 0;
    j->pretty = pretty;
    for (int i = 0; i <= NNE_JSON_MAX_DEPTH; i++) j->first[i] = true;
}

static void write_escaped(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void indent(nne_json *j) {
    if (!j->pretty) return;
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
}

static void prefix(nne_json *j, const char *key) {
    if (!j->first[j->depth]) fputc(',', j->f);
    j->first[j->depth] = false;
    if (j->depth > 0) indent(j);
    if (key) {
        write_escaped(j->f, key);
        fputs(j->pretty ? ": " : ":", j->f);
    }
}

static void open(nne_json *j, const char *key, char c) {
    prefix(j, key);
    fputc(c, j->f);
    if (j->depth < NNE_JSON_MAX_DEPTH) j->depth++;
    j->first[j->depth] = true;
}

static void close_(nne_json *j, char c) {
    bool empty = j->first[j->depth];
    if (j->depth > 0) j->depth--;
    if (!empty) indent(j);
    fputc(c, j->f);
}

void nne_json_object_begin(nne_json *j, const char *key) { open(j, key, '{'); }
void nne_json_object_end(nne_json *j) { close_(j, '}'); }
void nne_json_array_begin(nne_json *j, const char *key) { open(j, key, '['); }
void nne_json_array_end(nne_json *j) { close_(j, ']'); }

void nne_json_string(nne_json *j, const char *key, const char *value) {
    prefix(j, key);
    if (value)
        write_escaped(j->f, value);
    else
        fputs("null", j->f);
}

void nne_json_int(nne_json *j, const char *key, int64_t value) {
    prefix(j, key);
    fprintf(j->f, "%lld", (long long)value);
}

void nne_json_double(nne_json *j, const char *key, double value) {
    prefix(j, key);
    if (isfinite(value))
        fprintf(j->f, "%.17g", value);
    else
        fputs("null", j->f);
}

void nne_json_number(nne_json *j, const char *key, double value, int decimals) {
    prefix(j, key);
    if (isfinite(value))
        fprintf(j->f, "%.*f", decimals, value);
    else
        fputs("null", j->f);
}

void nne_json_bool(nne_json *j, const char *key, bool value) {
    prefix(j, key);
    fputs(value ? "true" : "false", j->f);
}

void nne_json_null(nne_json *j, const char *key) {
    prefix(j, key);
    fputs("null", j->f);
}

void nne_json_finish(nne_json *j) { fputc('\n', j->f); }
