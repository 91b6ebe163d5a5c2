#include "cli_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *nne_cli_bin;
char nne_cli_tmp[256];
char nne_cli_out[1 << 20], nne_cli_err[1 << 16];

void nne_cli_setup(const char *name) {
    nne_cli_bin = getenv("NNEDGE_BIN");
    if (!nne_cli_bin || access(nne_cli_bin, X_OK) != 0)
        nne_test_skip("NNEDGE_BIN not set or not executable");
    snprintf(nne_cli_tmp, sizeof nne_cli_tmp, "/tmp/nnedge-%s-XXXXXX", name);
    if (!mkdtemp(nne_cli_tmp)) nne_test_skip("cannot create a temporary folder");
}

void nne_cli_cleanup(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", nne_cli_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", nne_cli_tmp);
}

static void slurp(const char *path, char *dst, size_t cap) {
    size_t n;
    unsigned char *b = nne_test_read_file(path, &n);
    snprintf(dst, cap, "%s", b ? (char *)b : "");
    nne_free(b);
}

int nne_cli_run_in(const char *cwd, const char *args) {
    char expanded[4096], cmd[8192], po[300], pe[300];
    size_t o = 0;
    for (const char *p = args; *p && o + 300 < sizeof expanded; p++) {
        if (p[0] == '%' && p[1] == 'T') {
            o += (size_t)snprintf(expanded + o, sizeof expanded - o, "%s", nne_cli_tmp);
            p++;
        } else {
            expanded[o++] = *p;
        }
    }
    expanded[o] = 0;
    snprintf(po, sizeof po, "%s/out.txt", nne_cli_tmp);
    snprintf(pe, sizeof pe, "%s/err.txt", nne_cli_tmp);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s' 2>'%s' </dev/null",
             cwd ? cwd : nne_test_source_dir(), nne_cli_bin, expanded, po, pe);
    int st = system(cmd);
    slurp(po, nne_cli_out, sizeof nne_cli_out);
    slurp(pe, nne_cli_err, sizeof nne_cli_err);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *nne_cli_tmp_path(const char *rel) { return nne_test_path(nne_cli_tmp, rel); }

bool nne_cli_tmp_exists(const char *rel) {
    struct stat st;
    return stat(nne_cli_tmp_path(rel), &st) == 0;
}

bool nne_cli_same_files(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *pa = nne_test_read_file(nne_cli_tmp_path(a), &na);
    unsigned char *pb = nne_test_read_file(nne_cli_tmp_path(b), &nb);
    const bool same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    free(pa), free(pb);
    return same;
}

/* ---- a JSON syntax checker (recursive descent, depth-limited) ---- */

static const char *json_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *json_value(const char *p, int depth);

static const char *json_string(const char *p) {
    if (*p++ != '"') return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (!strchr("0123456789abcdefABCDEF", p[k]) || !p[k]) return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *json_number(const char *p) {
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *json_value(const char *p, int depth) {
    if (depth > 64) return NULL;
    p = json_ws(p);
    if (*p == '{' || *p == '[') {
        const char close = *p == '{' ? '}' : ']';
        const bool obj = *p == '{';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = json_string(json_ws(p)))) return NULL;
                p = json_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = json_value(p, depth + 1))) return NULL;
            p = json_ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
        }
    }
    if (*p == '"') return json_string(p);
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    return json_number(p);
}

bool nne_cli_json_valid(const char *s) {
    const char *p = json_value(s, 0);
    return p && *json_ws(p) == 0;
}
