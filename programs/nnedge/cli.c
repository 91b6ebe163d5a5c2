/* Shared option parsing and error reporting for the subcommands. */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "nnedge/file.h"

void cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "nnedge %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_fail(const char *cmd, nne_status s) {
    const char *msg = nne_last_error();
    fprintf(stderr, "nnedge %s: %s%s%s\n", cmd, nne_status_str(s), *msg ? ": " : "", msg);
    return NNE_EXIT_RUNTIME;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "nnedge %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'nnedge %s --help'\n", cmd);
    return NNE_EXIT_USAGE;
}

static const cli_option *find_long(const cli_option *o, const char *name, size_t len) {
    for (; o && o->long_name; o++)
        if (strlen(o->long_name) == len && strncmp(o->long_name, name, len) == 0) return o;
    return NULL;
}

static const cli_option *find_short(const cli_option *o, char c) {
    for (; o && o->long_name; o++)
        if (o->short_name && o->short_name == c) return o;
    return NULL;
}

bool cli_parse(const char *cmd, int argc, char **argv, cli_common *common, const cli_option *extra,
               const char **pos, int max_pos, int *n_pos) {
    memset(common, 0, sizeof *common);
    *n_pos = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == 0) { /* positional ("-" = stdin/stdout) */
            if (*n_pos >= max_pos) {
                cli_usage_error(cmd, "unexpected argument '%s'", a);
                return false;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = true;
            continue;
        }
        const cli_option *o = NULL;
        const char *value = NULL;
        char shortc = 0;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (eq) value = eq + 1;
            if (len == 4 && !strncmp(name, "help", 4)) {
                common->help = true;
                continue;
            }
            if (len == 4 && !strncmp(name, "json", 4)) {
                common->json = true;
                continue;
            }
            if (len == 5 && !strncmp(name, "quiet", 5)) {
                common->quiet = true;
                continue;
            }
            if (len == 7 && !strncmp(name, "verbose", 7)) {
                common->verbose++;
                continue;
            }
            if (len == 6 && !strncmp(name, "output", 6)) {
                if (!value) {
                    if (i + 1 >= argc) {
                        cli_usage_error(cmd, "option --output needs a value");
                        return false;
                    }
                    value = argv[++i];
                }
                common->output = value;
                continue;
            }
            o = find_long(extra, name, len);
            if (!o) {
                cli_usage_error(cmd, "unknown option '%s'", a);
                return false;
            }
        } else {
            shortc = a[1];
            if (a[2] != 0) { /* "-ofile" / "-vv" */
                if (shortc == 'v') {
                    bool all_v = true;
                    for (const char *p = a + 1; *p; p++) all_v &= *p == 'v';
                    if (all_v) {
                        common->verbose += (int)strlen(a + 1);
                        continue;
                    }
                }
                value = a + 2;
            }
            if (shortc == 'h') {
                common->help = true;
                continue;
            }
            if (shortc == 'q' && !value) {
                common->quiet = true;
                continue;
            }
            if (shortc == 'v' && !value) {
                common->verbose++;
                continue;
            }
            if (shortc == 'o') {
                if (!value) {
                    if (i + 1 >= argc) {
                        cli_usage_error(cmd, "option -o needs a value");
                        return false;
                    }
                    value = argv[++i];
                }
                common->output = value;
                continue;
            }
            o = find_short(extra, shortc);
            if (!o) {
                cli_usage_error(cmd, "unknown option '%s'", a);
                return false;
            }
        }
        if (o->has_arg) {
            if (!value) {
                if (i + 1 >= argc) {
                    cli_usage_error(cmd, "option --%s needs a value", o->long_name);
                    return false;
                }
                value = argv[++i];
            }
            *o->value = value;
        } else {
            if (value) {
                cli_usage_error(cmd, "option --%s takes no value", o->long_name);
                return false;
            }
            *o->flag = true;
        }
    }
    return true;
}

bool cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_f64(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_range(const char *s, float *lo, float *hi) {
    if (!s) return false;
    const char *comma = strchr(s, ',');
    char a[64];
    double l, h;
    if (!comma || (size_t)(comma - s) >= sizeof a) return false;
    memcpy(a, s, (size_t)(comma - s));
    a[comma - s] = '\0';
    if (!cli_parse_f64(a, -1e30, 1e30, &l) || !cli_parse_f64(comma + 1, -1e30, 1e30, &h) ||
        !(l < h) || !((float)l < (float)h))
        return false;
    *lo = (float)l;
    *hi = (float)h;
    return true;
}

const char *cli_fmtd(char *buf, size_t n, double v, int dec, const char *na) {
    if (isnan(v))
        snprintf(buf, n, "%s", na);
    else if (isinf(v))
        snprintf(buf, n, "%sinf", v < 0 ? "-" : "");
    else
        snprintf(buf, n, "%.*f", dec, v);
    return buf;
}

void cli_csv_field(FILE *f, const char *s) {
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

void cli_base_name(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

bool cli_write_report(const char *cmd, const char *path, void (*fn)(FILE *, const void *),
                      const void *ctx) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) {
        cli_error(cmd, "%s: cannot allocate the report", path);
        return false;
    }
    fn(f, ctx);
    if (fclose(f) != 0) {
        free(buf);
        cli_error(cmd, "%s: cannot render the report", path);
        return false;
    }
    nne_status s = nne_file_write_atomic(path, buf, n);
    free(buf);
    if (s) {
        cli_fail(cmd, s);
        return false;
    }
    return true;
}

/* The first kodim*.png under dir (recursively), into found; false if none. */
static bool find_kodak(const char *dir, int depth, char *found, size_t n) {
    if (depth > 32) return false;
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool hit = false;
    while (!hit && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
        const size_t len = strlen(e->d_name);
        if (strncasecmp(e->d_name, "kodim", 5) == 0 && len > 4 &&
            strcasecmp(e->d_name + len - 4, ".png") == 0) {
            snprintf(found, n, "%s", p);
            hit = true;
            break;
        }
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) hit = find_kodak(p, depth + 1, found, n);
    }
    closedir(d);
    return hit;
}

int cli_check_data_dir(const char *cmd, const char *opt, const char *dir, char *real,
                       size_t real_size) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error(cmd, "%s %s: no such folder", opt, dir);
        return NNE_EXIT_RUNTIME;
    }
    char tmp[PATH_MAX];
    if (!realpath(dir, tmp) || strlen(tmp) >= real_size) {
        char e[128];
        cli_error(cmd, "%s %s: %s", opt, dir, nne_errno_str(errno, e, sizeof e));
        return NNE_EXIT_RUNTIME;
    }
    strcpy(real, tmp);
    char found[4096];
    if (find_kodak(real, 0, found, sizeof found))
        return cli_usage_error(cmd,
                               "%s %s: refusing to use a folder with Kodak images (%s): Kodak is "
                               "the test set, never training, validation or calibration data",
                               opt, dir, found);
    return 0;
}
