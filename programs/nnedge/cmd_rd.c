/* nnedge rd DIR: rate-distortion evaluation of image codecs on a folder of images.
 *
 * For every image, codec (include/nnedge/imgcodec.h) and quality-knob value: encode to real
 * bytes, decode, bpp = 8 * bytes / (W * H), PSNR over all RGB samples, MS-SSIM
 * (docs/metrics.md), encode and decode wall time. Per codec and knob value the means over
 * the images (bpp, PSNR, MS-SSIM, as CompressAI averages; MS-SSIM in dB is taken of the mean,
 * -10 log10(1 - mean)), then Bjontegaard deltas between every pair of codecs and against
 * published anchor curves. Work runs on the thread pool, one task per (codec, knob, image),
 * each writing its own result slot, so every output is identical for any thread count except
 * the timings. docs/rd.md. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nnedge/bdrate.h"
#include "nnedge/dataset.h"
#include "nnedge/file.h"
#include "nnedge/imgcodec.h"
#include "nnedge/json.h"
#include "nnedge/metrics.h"
#include "nnedge/models.h"
#include "nnedge/svg.h"
#include "nnedge/threadpool.h"

static const char *const k_cmd = "rd";

#define RD_MAX_CODECS  16
#define RD_MAX_ANCHORS 16
#define RD_BD_METHOD   NNE_BD_PCHIP /* what the tables report; docs/rd.md says why */

/* Colours per codec slot (live solid, anchors dashed in the same colour). */
static const char *const k_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLORS ((int)(sizeof k_colors / sizeof k_colors[0]))

typedef struct rd_point { /* one (codec, knob, image) */
    int64_t bytes;
    double bpp, psnr, ms_ssim, enc_ms, dec_ms;
    nne_status status;
    char err[256];
} rd_point;

typedef struct rd_run { /* one codec and its sweep */
    const nne_imgcodec *c;
    char name[128];   /* the codec's name in every table: c->name, or nnedge:KIND@LABEL */
    char legend[192]; /* plot legend and curve heading: c->label, or "LABEL: c->label" */
    bool learned, has_label;
    char kind[32], label[64]; /* nnedge:KIND[@LABEL][=DIR] */
    char dir[CLI_PATH_MAX];   /* =DIR, "" for --models or the registry */
    char version[256];
    int nq;
    double q[NNE_IMGCODEC_MAX_SWEEP];
} rd_run;

typedef struct rd_agg { /* one codec and knob value, over the images */
    double bpp, psnr, ms_ssim, ms_ssim_db, enc_ms, dec_ms; /* means; times are medians */
} rd_agg;

typedef struct rd_curve { /* aggregated curve, for BD and plots */
    int n;
    double bpp[64], psnr[64], msdb[64];
} rd_curve;

typedef struct rd_anchor {
    char stem[128], label[192];
    int run; /* the live codec it belongs to, or -1 (an extra reference curve) */
    rd_curve cv;
    bool has_psnr, has_ms;
} rd_anchor;

typedef struct rd_bd { /* BD of test against ref; NaN if not computable */
    double rate_psnr[2], psnr_db[2], rate_ms[2]; /* [cubic, pchip] */
} rd_bd;

typedef struct rd_ctx {
    const char *data, *command;
    int n_img;
    nne_image *imgs; /* borrowed from the dataset cache */
    char (*names)[128];
    int n_runs;
    rd_run runs[RD_MAX_CODECS];
    rd_point *pts; /* [run][q][img], index pt_index() */
    rd_agg agg[RD_MAX_CODECS][NNE_IMGCODEC_MAX_SWEEP];
    rd_curve curves[RD_MAX_CODECS];
    rd_bd bd[RD_MAX_CODECS][RD_MAX_CODECS]; /* [ref][test] */
    double enc_med[RD_MAX_CODECS], dec_med[RD_MAX_CODECS];
    int n_anchors;
    rd_anchor anchors[RD_MAX_ANCHORS];
    rd_bd anchor_bd[RD_MAX_ANCHORS]; /* live codec vs its anchor; extra anchors vs live jpeg */
    int anchor_ref[RD_MAX_ANCHORS];  /* the live run compared with, -1 if none */
    int threads;
    const char *models_dir;             /* --models: the learned codecs' ladder folder */
    nne_imgcodec *owned[RD_MAX_CODECS]; /* learned codecs opened here (freed at the end) */
    int n_owned;
    /* progress */
    pthread_mutex_t mu;
    int done, total;
    bool show, tty;
    uint64_t t0, last_ns;
    int last_pct;
} rd_ctx;

static size_t pt_index(const rd_ctx *c, int r, int k, int i) {
    return ((size_t)r * NNE_IMGCODEC_MAX_SWEEP + (size_t)k) * (size_t)c->n_img + (size_t)i;
}

/* ---- Options ------------------------------------------------------------------------------ */

/* --qualities: "v,v,..." for every selected codec, or "codec=v,v,.../codec=v,..." */
static bool parse_list(const char *s, double *out, int *n) {
    *n = 0;
    while (*s) {
        char *end;
        errno = 0;
        const double v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || *n >= NNE_IMGCODEC_MAX_SWEEP) return false;
        out[(*n)++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return *n > 0;
}

static bool check_sweep(const rd_run *r) {
    for (int k = 0; k < r->nq; k++) {
        const double v = r->q[k];
        if (!(v >= r->c->q_min && v <= r->c->q_max) || (r->c->integer && v != floor(v))) {
            cli_usage_error(k_cmd, "--qualities: %s %s %g outside %g..%g%s", r->name, r->c->knob, v,
                            r->c->q_min, r->c->q_max, r->c->integer ? " (integer)" : "");
            return false;
        }
        for (int j = 0; j < k; j++)
            if (r->q[j] == v) {
                cli_usage_error(k_cmd, "--qualities: %s value %g given twice", r->name, v);
                return false;
            }
    }
    return true;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Sort a sweep by increasing rate (the knob's direction). */
static void sort_sweep(rd_run *r) {
    qsort(r->q, (size_t)r->nq, sizeof r->q[0], cmp_double);
    if (r->c->direction < 0)
        for (int i = 0, j = r->nq - 1; i < j; i++, j--) {
            const double t = r->q[i];
            r->q[i] = r->q[j];
            r->q[j] = t;
        }
}

#define LEARNED_PREFIX "nnedge:"

/* A learned-codec label: what follows "nnedge:KIND@" in the codec's name. Kept to characters
 * that need no quoting in the CSV, the markdown tables, --qualities (',' '/' '=') or a
 * shell. */
static bool label_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '+' || ch == '-';
}

/* The default label of "nnedge:KIND=DIR": DIR's last component (of its real path for ".",
 * ".." or "/"), other characters replaced by '_'. false if there is none. */
static bool dir_label(const char *dir, char *out, size_t n) {
    char real[CLI_PATH_MAX];
    char tmp[CLI_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (size_t l = strlen(tmp); l > 1 && tmp[l - 1] == '/'; l--) tmp[l - 1] = 0;
    const char *slash = strrchr(tmp, '/'), *base = slash ? slash + 1 : tmp;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        if (!realpath(dir, real)) return false;
        slash = strrchr(real, '/');
        base = slash ? slash + 1 : real;
    }
    if (!*base) return false; /* "/" */
    size_t len = strlen(base);
    if (len >= n) len = n - 1; /* a long name is cut: labels are short */
    memcpy(out, base, len);
    out[len] = 0;
    for (char *p = out; *p; p++)
        if (!label_char(*p)) *p = '_';
    return true;
}

/* One --codecs entry "nnedge:KIND[@LABEL][=DIR]" (docs/rd.md, "Several ladders of one kind"):
 * the ladder KIND-q<N>.nne of DIR (of --models or the registry without =DIR). DIR is the rest
 * of the entry after the first '=', so it may hold ':', '@' and '=' (not ','); the codec is
 * named nnedge:KIND@LABEL (LABEL defaults to DIR's last component) or, with neither @LABEL
 * nor =DIR, nnedge:KIND. Usage errors print why and return false. */
static bool parse_learned(const char *tok, rd_run *r) {
    const char *spec = tok + strlen(LEARNED_PREFIX);
    const char *eq = strchr(spec, '='), *end = eq ? eq : spec + strlen(spec);
    const char *at = memchr(spec, '@', (size_t)(end - spec));
    const char *kend = at ? at : end;
    nne_rdmodel_kind k;
    snprintf(r->kind, sizeof r->kind, "%.*s", (int)(kend - spec), spec);
    if ((size_t)(kend - spec) >= sizeof r->kind || nne_rdmodel_kind_from_name(r->kind, &k)) {
        cli_usage_error(k_cmd,
                        "--codecs: '%s': unknown learned-codec kind '%.*s' (bmshj2018-"
                        "factorized, bmshj2018-hyperprior, mbt2018-mean)",
                        tok, (int)(kend - spec), spec);
        return false;
    }
    r->learned = true;
    char label[64] = "";
    if (eq) {
        if (!eq[1] || strlen(eq + 1) >= sizeof r->dir) {
            cli_usage_error(k_cmd, "--codecs: '%s': expected a folder after '='", tok);
            return false;
        }
        snprintf(r->dir, sizeof r->dir, "%s", eq + 1);
    }
    if (at) {
        const size_t n = (size_t)(end - at - 1);
        bool ok = n > 0 && n < sizeof label;
        for (size_t i = 0; ok && i < n; i++) ok = label_char(at[1 + i]);
        if (!ok) {
            cli_usage_error(k_cmd,
                            "--codecs: '%s': a label is 1..%d of the characters A-Z a-z 0-9 "
                            ". _ + - (nnedge:KIND@LABEL=DIR)",
                            tok, (int)sizeof label - 1);
            return false;
        }
        memcpy(label, at + 1, n);
        label[n] = 0;
    } else if (eq && !dir_label(r->dir, label, sizeof label)) {
        cli_usage_error(k_cmd,
                        "--codecs: '%s': no folder name to label it with; name it: "
                        "nnedge:%s@LABEL=DIR",
                        tok, r->kind);
        return false;
    }
    r->has_label = label[0] != 0;
    char name[sizeof r->name];
    snprintf(name, sizeof name, "%s%s%s%s", LEARNED_PREFIX, r->kind, label[0] ? "@" : "", label);
    memcpy(r->name, name, sizeof name);
    memcpy(r->label, label, sizeof label);
    return true;
}

/* Open a learned run's ladder (nne_imgcodec_lcodec_open): KIND-q<N>.nne of its =DIR, of
 * --models DIR or of the registry. A missing folder or ladder returns NNE_EXIT_RUNTIME after
 * printing why. */
static int open_learned(rd_ctx *c, rd_run *r) {
    const char *dir = r->dir[0] ? r->dir : c->models_dir;
    struct stat st;
    if (r->dir[0] && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        cli_error(k_cmd, "--codecs %s: %s: no such folder", r->name, dir);
        return NNE_EXIT_RUNTIME;
    }
    static char paths[NNE_IMGCODEC_MAX_SWEEP][CLI_PATH_MAX];
    int32_t qs[NNE_IMGCODEC_MAX_SWEEP];
    char where[4 * CLI_PATH_MAX];
    const int n =
        cli_registry_ladder(r->kind, dir, NNE_IMGCODEC_MAX_SWEEP, qs, paths, where, sizeof where);
    if (n == 0) {
        cli_error(k_cmd,
                  "--codecs %s: no models %s-q<N>.nne in %s; train them (scripts/"
                  "train_rd.sh) or give --models DIR",
                  r->name, r->kind, where);
        return NNE_EXIT_RUNTIME;
    }
    const char *pp[NNE_IMGCODEC_MAX_SWEEP];
    for (int i = 0; i < n; i++) pp[i] = paths[i];
    nne_imgcodec *ic = NULL;
    nne_status s = nne_imgcodec_lcodec_open(n, pp, qs, &ic);
    if (s) return cli_fail(k_cmd, s);
    c->owned[c->n_owned++] = ic;
    r->c = ic;
    return NNE_EXIT_OK;
}

/* --codecs: every entry is checked (usage errors, exit 2) before any ladder is opened
 * (runtime errors, exit 1). */
static int parse_codecs(rd_ctx *c, const char *spec) {
    char *buf = nne_malloc(strlen(spec) + 1);
    if (!buf) return cli_fail(k_cmd, NNE_ERR_NOMEM);
    strcpy(buf, spec);
    int rc = NNE_EXIT_USAGE;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (c->n_runs >= RD_MAX_CODECS) {
            cli_usage_error(k_cmd, "--codecs: too many codecs (at most %d)", RD_MAX_CODECS);
            goto done;
        }
        rd_run *r = &c->runs[c->n_runs];
        memset(r, 0, sizeof *r);
        if (!strncmp(tok, LEARNED_PREFIX, strlen(LEARNED_PREFIX))) {
            if (!parse_learned(tok, r)) goto done;
        } else if ((r->c = nne_imgcodec_find(tok))) {
            snprintf(r->name, sizeof r->name, "%s", r->c->name);
        } else if (nne_imgcodec_known(tok)) {
            cli_usage_error(k_cmd,
                            "--codecs: '%s' is not in this build of nnedge (configured with "
                            "-DNNE_CLASSICAL_CODECS=OFF; docs/build.md)",
                            tok);
            goto done;
        } else {
            char names[256] = "";
            for (int i = 0; i < nne_imgcodec_count(); i++) {
                strcat(names, i ? ", " : "");
                strcat(names, nne_imgcodec_get(i)->name);
            }
            cli_usage_error(k_cmd, "--codecs: unknown codec '%s' (known: %s, %sKIND[@LABEL][=DIR])",
                            tok, names, LEARNED_PREFIX);
            goto done;
        }
        for (int o = 0; o < c->n_runs; o++)
            if (!strcmp(c->runs[o].name, r->name)) {
                if (r->learned)
                    cli_usage_error(k_cmd,
                                    "--codecs: two ladders named '%s'; give each its own label: "
                                    "nnedge:%s@LABEL=DIR",
                                    r->name, r->kind);
                else
                    cli_usage_error(k_cmd, "--codecs: '%s' given twice", tok);
                goto done;
            }
        c->n_runs++;
    }
    if (c->n_runs == 0) {
        cli_usage_error(k_cmd, "--codecs: empty list");
        goto done;
    }
    for (int i = 0; i < c->n_runs; i++) {
        rd_run *r = &c->runs[i];
        if (r->learned && (rc = open_learned(c, r))) goto done;
        char legend[sizeof r->legend];
        snprintf(legend, sizeof legend, "%s%s%s", r->label, r->has_label ? ": " : "", r->c->label);
        memcpy(r->legend, legend, sizeof legend);
        r->nq = r->c->n_sweep;
        memcpy(r->q, r->c->sweep, sizeof r->q);
    }
    rc = NNE_EXIT_OK;
done:
    nne_free(buf);
    return rc;
}

/* --qualities (below) on `buf`, a copy of `spec` it may cut up. */
static bool parse_qualities_in(rd_ctx *c, const char *spec, char *buf) {
    if (!strchr(buf, '=')) { /* one list for every selected codec */
        for (int r = 0; r < c->n_runs; r++)
            if (!parse_list(buf, c->runs[r].q, &c->runs[r].nq)) {
                cli_usage_error(k_cmd, "--qualities '%s': expected numbers separated by commas "
                                       "(at most %d)",
                                spec, NNE_IMGCODEC_MAX_SWEEP);
                return false;
            }
        return true;
    }
    for (char *save = NULL, *tok = strtok_r(buf, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            cli_usage_error(k_cmd, "--qualities: '%s' is not CODEC=V,V,...", tok);
            return false;
        }
        *eq = 0;
        rd_run *run = NULL;
        for (int r = 0; r < c->n_runs; r++)
            if (strcmp(c->runs[r].name, tok) == 0) run = &c->runs[r];
        if (!run) {
            cli_usage_error(k_cmd, "--qualities: codec '%s' is not among --codecs", tok);
            return false;
        }
        if (!parse_list(eq + 1, run->q, &run->nq)) {
            cli_usage_error(k_cmd, "--qualities: %s: '%s': expected numbers separated by commas",
                            tok, eq + 1);
            return false;
        }
    }
    return true;
}

/* --qualities SPEC into the runs' sweeps. */
static bool parse_qualities(rd_ctx *c, const char *spec) {
    char *buf = nne_malloc(strlen(spec) + 1);
    if (!buf) {
        cli_fail(k_cmd, NNE_ERR_NOMEM);
        return false;
    }
    strcpy(buf, spec);
    const bool ok = parse_qualities_in(c, spec, buf);
    nne_free(buf);
    return ok;
}

/* ---- Anchors -------------------------------------------------------------------------------- */

static int cmp_point3(const void *a, const void *b) { return cmp_double(a, b); }

/* Read DIR/STEM.json (CompressAI's result format: {"name", "results": {"bpp": [...],
 * "psnr-rgb": [...], "ms-ssim-rgb" or "ms-ssim-db-rgb": [...]}}). */
static nne_status load_anchor(const char *dir, const char *stem, rd_anchor *a) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, stem);
    uint8_t *buf = NULL;
    size_t n = 0;
    nne_status s = nne_file_read(path, 1 << 20, &buf, &n);
    if (s) return s;
    nne_json_value *v = NULL;
    s = nne_json_parse((const char *)buf, n, &v);
    nne_free(buf);
    if (s) return nne_error(s, "%s: %s", path, nne_last_error());
    const nne_json_value *res = nne_json_get(v, "results"), *name = nne_json_get(v, "name");
    const nne_json_value *bpp = nne_json_get(res, "bpp"), *psnr = nne_json_get(res, "psnr-rgb");
    const nne_json_value *ms = nne_json_get(res, "ms-ssim-rgb"),
                         *msdb = nne_json_get(res, "ms-ssim-db-rgb");
    snprintf(a->stem, sizeof a->stem, "%s", stem);
    snprintf(a->label, sizeof a->label, "%s (anchor)",
             name && name->type == NNE_JSON_STRING ? name->string : stem);
    if (!bpp || bpp->type != NNE_JSON_ARRAY || bpp->n < 1 || bpp->n > 64) {
        nne_json_value_free(v);
        return nne_error(NNE_ERR_FORMAT, "%s: results.bpp is not an array of 1..64 numbers",
                         path);
    }
    const int np = bpp->n;
    double pts[64][3];
    a->has_psnr = psnr && psnr->type == NNE_JSON_ARRAY && psnr->n == np;
    const nne_json_value *msv = ms && ms->type == NNE_JSON_ARRAY && ms->n == np ? ms : NULL;
    const nne_json_value *msdbv =
        msdb && msdb->type == NNE_JSON_ARRAY && msdb->n == np ? msdb : NULL;
    a->has_ms = msv || msdbv;
    for (int i = 0; i < np && !s; i++) {
        const nne_json_value *b = &bpp->items[i];
        if (b->type != NNE_JSON_NUMBER || !(b->number > 0)) {
            s = nne_error(NNE_ERR_FORMAT, "%s: results.bpp[%d] is not a positive number", path, i);
            break;
        }
        pts[i][0] = b->number;
        pts[i][1] = a->has_psnr && psnr->items[i].type == NNE_JSON_NUMBER ? psnr->items[i].number
                                                                         : NAN;
        if (msv && msv->items[i].type == NNE_JSON_NUMBER && msv->items[i].number < 1)
            pts[i][2] = -10 * log10(1 - msv->items[i].number);
        else if (msdbv && msdbv->items[i].type == NNE_JSON_NUMBER)
            pts[i][2] = msdbv->items[i].number;
        else
            pts[i][2] = NAN;
    }
    nne_json_value_free(v);
    if (s) return s;
    qsort(pts, (size_t)np, sizeof pts[0], cmp_point3); /* by bpp: the plot draws in order */
    a->cv.n = np;
    for (int i = 0; i < np; i++) {
        a->cv.bpp[i] = pts[i][0];
        a->cv.psnr[i] = pts[i][1];
        a->cv.msdb[i] = pts[i][2];
    }
    return NNE_OK;
}

static bool load_anchors(rd_ctx *c, const char *dir, const char *extra) {
    for (int r = 0; r < c->n_runs; r++) {
        const char *stem = c->runs[r].c->anchor;
        if (!stem) continue;
        rd_anchor *a = &c->anchors[c->n_anchors];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", dir, stem);
        if (access(path, F_OK) != 0) continue; /* no published curve for this codec here */
        int same = -1; /* several ladders of one kind share their kind's anchor */
        for (int i = 0; i < c->n_anchors && same < 0; i++)
            if (c->anchors[i].run >= 0 && !strcmp(c->anchors[i].stem, stem)) same = i;
        if (same >= 0) {
            *a = c->anchors[same];
            a->run = r;
            c->n_anchors++;
            continue;
        }
        nne_status s = load_anchor(dir, stem, a);
        if (s) {
            cli_fail(k_cmd, s);
            return false;
        }
        a->run = r;
        c->n_anchors++;
    }
    if (!extra) return true;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", extra);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (c->n_anchors >= RD_MAX_ANCHORS) {
            cli_error(k_cmd, "--anchor-extra: at most %d anchors", RD_MAX_ANCHORS);
            return false;
        }
        rd_anchor *a = &c->anchors[c->n_anchors];
        nne_status s = load_anchor(dir, tok, a);
        if (s) {
            cli_fail(k_cmd, s);
            return false;
        }
        a->run = -1;
        c->n_anchors++;
    }
    return true;
}

/* ---- The work ------------------------------------------------------------------------------ */

static void fmt_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%.0fs", s);
}

/* On a terminal a bar redrawn in place at most 5 times a second; otherwise a line per 10%. */
static void progress(rd_ctx *c, const char *codec) {
    pthread_mutex_lock(&c->mu);
    const int done = ++c->done;
    if (c->show) {
        const uint64_t now = nne_time_ns();
        const double el = (double)(now - c->t0) / 1e9;
        const int pct = (int)(100LL * done / c->total);
        const bool last = done == c->total;
        char eta[32], ela[32];
        fmt_duration(eta, sizeof eta, el / done * (c->total - done));
        fmt_duration(ela, sizeof ela, el);
        if (c->tty && (last || now - c->last_ns > 200000000ull)) {
            char bar[31];
            const int fill = (int)(30LL * done / c->total);
            for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
            bar[30] = 0;
            fprintf(stderr, "\r[%s] %d/%d %-5s elapsed %s, ETA %s   %s", bar, done, c->total,
                    codec, ela, eta, last ? "\n" : "");
            c->last_ns = now;
        } else if (!c->tty && (pct / 10 > c->last_pct / 10 || last)) {
            fprintf(stderr, "nnedge rd: %d/%d (%d%%), elapsed %s, ETA %s\n", done, c->total, pct,
                    ela, eta);
            c->last_pct = pct;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static void rd_task(void *vctx, int task, int thread) {
    (void)thread;
    rd_ctx *c = vctx;
    const int i = task % c->n_img, rk = task / c->n_img;
    int r = 0, k = rk;
    while (k >= c->runs[r].nq) k -= c->runs[r++].nq;
    const rd_run *run = &c->runs[r];
    const nne_image *img = &c->imgs[i];
    rd_point *p = &c->pts[pt_index(c, r, k, i)];
    uint8_t *buf = NULL;
    size_t n = 0;
    nne_image dec = {0};
    nne_quality q;
    const uint64_t t0 = nne_time_ns();
    nne_status s = nne_imgcodec_encode(run->c, img, run->q[k], &buf, &n);
    const uint64_t t1 = nne_time_ns();
    if (!s) s = nne_imgcodec_decode(run->c, buf, n, &dec);
    const uint64_t t2 = nne_time_ns();
    if (!s && (dec.width != img->width || dec.height != img->height))
        s = nne_error(NNE_ERR_FORMAT, "%s decoded %dx%d, expected %dx%d", run->name, (int)dec.width,
                      (int)dec.height, (int)img->width, (int)img->height);
    if (!s) s = nne_quality_u8(img->data, dec.data, img->width, img->height, 3, &q);
    p->status = s;
    if (s) {
        snprintf(p->err, sizeof p->err, "%s: %s %s %g: %s", c->names[i], run->name, run->c->knob,
                 run->q[k], nne_last_error());
    } else {
        p->bytes = (int64_t)n;
        p->bpp = 8.0 * (double)n / ((double)img->width * (double)img->height);
        p->psnr = q.psnr;
        p->ms_ssim = q.ms_ssim;
        p->enc_ms = (double)(t1 - t0) / 1e6;
        p->dec_ms = (double)(t2 - t1) / 1e6;
    }
    nne_free(buf);
    nne_image_free(&dec);
    progress(c, run->name);
}

static double median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void bd_pair(const rd_curve *ref, const rd_curve *test, rd_bd *out) {
    const nne_bd_method m[2] = {NNE_BD_CUBIC, NNE_BD_PCHIP};
    for (int k = 0; k < 2; k++) {
        double v;
        out->rate_psnr[k] = out->psnr_db[k] = out->rate_ms[k] = NAN;
        if (!nne_bd_rate(ref->bpp, ref->psnr, ref->n, test->bpp, test->psnr, test->n, m[k], &v))
            out->rate_psnr[k] = v;
        if (!nne_bd_quality(ref->bpp, ref->psnr, ref->n, test->bpp, test->psnr, test->n, m[k],
                            &v))
            out->psnr_db[k] = v;
        if (!nne_bd_rate(ref->bpp, ref->msdb, ref->n, test->bpp, test->msdb, test->n, m[k], &v))
            out->rate_ms[k] = v;
    }
}

/* A curve restricted to the points where quality `which` (0 PSNR, 1 MS-SSIM dB) is finite:
 * BD needs finite values, and an anchor may lack one metric. */
static rd_curve finite_curve(const rd_curve *in) {
    rd_curve o = {0};
    for (int i = 0; i < in->n; i++)
        if (isfinite(in->bpp[i]) && isfinite(in->psnr[i])) {
            o.bpp[o.n] = in->bpp[i];
            o.psnr[o.n] = in->psnr[i];
            o.msdb[o.n] = in->msdb[i];
            o.n++;
        }
    return o;
}

static void aggregate(rd_ctx *c) {
    double *tmp = nne_calloc((size_t)c->n_img * NNE_IMGCODEC_MAX_SWEEP + 1, sizeof *tmp);
    double *tmp2 = nne_calloc((size_t)c->n_img * NNE_IMGCODEC_MAX_SWEEP + 1, sizeof *tmp2);
    for (int r = 0; r < c->n_runs; r++) {
        int ne = 0;
        for (int k = 0; k < c->runs[r].nq; k++) {
            double sb = 0, sp = 0, sm = 0;
            int nm = 0;
            double et[512], dt[512]; /* per-quality medians over at most 512 images */
            int nt = 0;
            for (int i = 0; i < c->n_img; i++) {
                const rd_point *p = &c->pts[pt_index(c, r, k, i)];
                sb += p->bpp;
                sp += p->psnr; /* +inf (lossless) would make the mean inf: reported as such */
                if (isfinite(p->ms_ssim)) {
                    sm += p->ms_ssim;
                    nm++;
                }
                if (nt < 512) {
                    et[nt] = p->enc_ms;
                    dt[nt++] = p->dec_ms;
                }
                if (tmp && tmp2) {
                    tmp[ne] = p->enc_ms;
                    tmp2[ne++] = p->dec_ms;
                }
            }
            rd_agg *a = &c->agg[r][k];
            a->bpp = sb / c->n_img;
            a->psnr = sp / c->n_img;
            a->ms_ssim = nm ? sm / nm : NAN;
            a->ms_ssim_db = a->ms_ssim < 1 ? -10 * log10(1 - a->ms_ssim) : NAN;
            a->enc_ms = median(et, nt);
            a->dec_ms = median(dt, nt);
            rd_curve *cv = &c->curves[r];
            cv->bpp[k] = a->bpp;
            cv->psnr[k] = a->psnr;
            cv->msdb[k] = a->ms_ssim_db;
        }
        c->curves[r].n = c->runs[r].nq;
        c->enc_med[r] = tmp ? median(tmp, ne) : NAN;
        c->dec_med[r] = tmp2 ? median(tmp2, ne) : NAN;
    }
    nne_free(tmp);
    nne_free(tmp2);
    for (int a = 0; a < c->n_runs; a++)
        for (int b = 0; b < c->n_runs; b++) bd_pair(&c->curves[a], &c->curves[b], &c->bd[a][b]);
    int jpeg = -1;
    for (int r = 0; r < c->n_runs; r++)
        if (strcmp(c->runs[r].name, "jpeg") == 0) jpeg = r;
    for (int i = 0; i < c->n_anchors; i++) {
        const rd_anchor *an = &c->anchors[i];
        rd_curve fa = finite_curve(&an->cv);
        if (an->run >= 0) { /* live against its anchor */
            c->anchor_ref[i] = an->run;
            bd_pair(&fa, &c->curves[an->run], &c->anchor_bd[i]);
        } else { /* an extra curve against live JPEG */
            c->anchor_ref[i] = jpeg;
            if (jpeg >= 0) bd_pair(&c->curves[jpeg], &fa, &c->anchor_bd[i]);
        }
    }
}

/* ---- Writers -------------------------------------------------------------------------------- */

static const char *pct(char *b, size_t n, double v) {
    if (!isfinite(v)) return snprintf(b, n, "n/a"), b;
    snprintf(b, n, "%+.1f%%", v);
    return b;
}

static void write_points_csv(FILE *f, const void *vc) {
    const rd_ctx *c = vc;
    char b[4][48];
    fprintf(f, "codec,knob,quality,image,width,height,bytes,bpp,psnr,ms_ssim,encode_ms,"
               "decode_ms\n");
    for (int r = 0; r < c->n_runs; r++)
        for (int k = 0; k < c->runs[r].nq; k++)
            for (int i = 0; i < c->n_img; i++) {
                const rd_point *p = &c->pts[pt_index(c, r, k, i)];
                fprintf(f, "%s,%s,%g,", c->runs[r].name, c->runs[r].c->knob, c->runs[r].q[k]);
                cli_csv_field(f, c->names[i]);
                fprintf(f, ",%d,%d,%lld,%.6f,%s,%s,%.3f,%.3f\n", (int)c->imgs[i].width,
                        (int)c->imgs[i].height, (long long)p->bytes, p->bpp,
                        cli_fmtd(b[0], 48, p->psnr, 4, ""), cli_fmtd(b[1], 48, p->ms_ssim, 6, ""),
                        p->enc_ms, p->dec_ms);
            }
}

static void write_mean_csv(FILE *f, const void *vc) {
    const rd_ctx *c = vc;
    char b[4][48];
    fprintf(f, "codec,knob,quality,images,bpp,psnr,ms_ssim,ms_ssim_db,encode_ms_median,"
               "decode_ms_median\n");
    for (int r = 0; r < c->n_runs; r++)
        for (int k = 0; k < c->runs[r].nq; k++) {
            const rd_agg *a = &c->agg[r][k];
            fprintf(f, "%s,%s,%g,%d,%.6f,%s,%s,%s,%.3f,%.3f\n", c->runs[r].name, c->runs[r].c->knob,
                    c->runs[r].q[k], c->n_img, a->bpp, cli_fmtd(b[0], 48, a->psnr, 4, ""),
                    cli_fmtd(b[1], 48, a->ms_ssim, 6, ""), cli_fmtd(b[2], 48, a->ms_ssim_db, 4, ""),
                    a->enc_ms, a->dec_ms);
        }
}

static void json_bd(nne_json *j, const char *key, const rd_bd *bd) {
    nne_json_object_begin(j, key);
    nne_json_number(j, "bd_rate_psnr_pct_cubic", bd->rate_psnr[0], 3);
    nne_json_number(j, "bd_rate_psnr_pct_pchip", bd->rate_psnr[1], 3);
    nne_json_number(j, "bd_psnr_db_cubic", bd->psnr_db[0], 4);
    nne_json_number(j, "bd_psnr_db_pchip", bd->psnr_db[1], 4);
    nne_json_number(j, "bd_rate_ms_ssim_pct_cubic", bd->rate_ms[0], 3);
    nne_json_number(j, "bd_rate_ms_ssim_pct_pchip", bd->rate_ms[1], 3);
    nne_json_object_end(j);
}

static void write_json(FILE *f, const void *vc) {
    const rd_ctx *c = vc;
    nne_json j;
    nne_json_init(&j, f, true);
    nne_json_object_begin(&j, NULL);
    nne_json_string(&j, "data", c->data);
    nne_json_int(&j, "images", c->n_img);
    nne_json_int(&j, "threads", c->threads);
    nne_json_string(&j, "aggregation", "arithmetic mean over images of bpp, PSNR and MS-SSIM; "
                                       "ms_ssim_db = -10 log10(1 - mean MS-SSIM)");
    nne_json_array_begin(&j, "codecs");
    for (int r = 0; r < c->n_runs; r++) {
        const rd_run *run = &c->runs[r];
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "name", run->name);
        nne_json_string(&j, "label", run->legend);
        nne_json_string(&j, "version", run->version);
        nne_json_string(&j, "knob", run->c->knob);
        nne_json_string(&j, "settings", run->c->settings);
        nne_json_number(&j, "encode_ms_median", c->enc_med[r], 3);
        nne_json_number(&j, "decode_ms_median", c->dec_med[r], 3);
        nne_json_array_begin(&j, "points");
        for (int k = 0; k < run->nq; k++) {
            const rd_agg *a = &c->agg[r][k];
            nne_json_object_begin(&j, NULL);
            nne_json_double(&j, "quality", run->q[k]);
            nne_json_number(&j, "bpp", a->bpp, 6);
            nne_json_number(&j, "psnr", a->psnr, 4);
            nne_json_number(&j, "ms_ssim", a->ms_ssim, 6);
            nne_json_number(&j, "ms_ssim_db", a->ms_ssim_db, 4);
            nne_json_number(&j, "encode_ms_median", a->enc_ms, 3);
            nne_json_number(&j, "decode_ms_median", a->dec_ms, 3);
            nne_json_object_end(&j);
        }
        nne_json_array_end(&j);
        nne_json_object_end(&j);
    }
    nne_json_array_end(&j);
    nne_json_array_begin(&j, "bd");
    for (int a = 0; a < c->n_runs; a++)
        for (int b = 0; b < c->n_runs; b++) {
            if (a == b) continue;
            nne_json_object_begin(&j, NULL);
            nne_json_string(&j, "reference", c->runs[a].name);
            nne_json_string(&j, "test", c->runs[b].name);
            json_bd(&j, "values", &c->bd[a][b]);
            nne_json_object_end(&j);
        }
    nne_json_array_end(&j);
    nne_json_array_begin(&j, "anchors");
    for (int i = 0; i < c->n_anchors; i++) {
        const rd_anchor *an = &c->anchors[i];
        const int ref = c->anchor_ref[i];
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "anchor", an->stem);
        nne_json_string(&j, "label", an->label);
        nne_json_string(&j, "live", ref >= 0 ? c->runs[ref].name : NULL);
        nne_json_string(&j, "comparison", an->run >= 0 ? "live codec (test) vs anchor (reference)"
                                                        : "anchor (test) vs live jpeg (reference)");
        json_bd(&j, "values", &c->anchor_bd[i]);
        nne_json_object_end(&j);
    }
    nne_json_array_end(&j);
    nne_json_object_end(&j);
    nne_json_finish(&j);
}

/* The BD-rate matrix (row = reference, column = test), `which`: 0 PSNR, 1 MS-SSIM dB. The
 * text columns are as wide as the longest codec name (nnedge:KIND@LABEL can be long). */
static void write_matrix(FILE *f, const rd_ctx *c, int which, bool md) {
    char b[48];
    int w = 9;
    for (int r = 0; r < c->n_runs; r++)
        if ((int)strlen(c->runs[r].name) > w) w = (int)strlen(c->runs[r].name);
    if (md) {
        fprintf(f, "| reference \\ test |");
        for (int r = 0; r < c->n_runs; r++) fprintf(f, " %s |", c->runs[r].name);
        fprintf(f, "\n|---|");
        for (int r = 0; r < c->n_runs; r++) fprintf(f, "--:|");
        fprintf(f, "\n");
    } else {
        fprintf(f, "%-*s", w, "ref\\test");
        for (int r = 0; r < c->n_runs; r++) fprintf(f, " %*s", w, c->runs[r].name);
        fprintf(f, "\n");
    }
    for (int a = 0; a < c->n_runs; a++) {
        if (md)
            fprintf(f, "| %s |", c->runs[a].name);
        else
            fprintf(f, "%-*s", w, c->runs[a].name);
        for (int t = 0; t < c->n_runs; t++) {
            const rd_bd *bd = &c->bd[a][t];
            const double v = which ? bd->rate_ms[RD_BD_METHOD] : bd->rate_psnr[RD_BD_METHOD];
            if (a == t)
                snprintf(b, sizeof b, "-");
            else
                pct(b, sizeof b, v);
            if (md)
                fprintf(f, " %s |", b);
            else
                fprintf(f, " %*s", w, b);
        }
        fprintf(f, "\n");
    }
}

static void write_tables(FILE *f, const rd_ctx *c, bool md) {
    char b[8][48];
    if (md) {
        fprintf(f, "# Rate-distortion: %d codec(s) on `%s` (%d images)\n\n", c->n_runs, c->data,
                c->n_img);
        fprintf(f, "Generated by `nnedge rd` (docs/rd.md). Command:\n\n```\n%s\n```\n\n",
                c->command);
        fprintf(f, "bpp = 8 x bytes of the encoded file / (width x height); PSNR over all RGB "
                   "samples; MS-SSIM as pytorch_msssim (docs/metrics.md). Each row is the "
                   "arithmetic mean over the images of the per-image values (CompressAI's "
                   "convention); MS-SSIM (dB) = -10 log10(1 - mean MS-SSIM). Times: median over "
                   "images of one encode / decode call, single-threaded codec, %d image(s) "
                   "in parallel.\n\n",
                c->threads);
        fprintf(f, "| codec | version | knob | settings |\n|---|---|---|---|\n");
        for (int r = 0; r < c->n_runs; r++)
            fprintf(f, "| %s | %s | %s | %s |\n", c->runs[r].name, c->runs[r].version,
                    c->runs[r].c->knob, c->runs[r].c->settings);
        fprintf(f, "\n![RD curves](%s)\n\n## Curves\n\n", "RD_SVG_NAME");
    }
    for (int r = 0; r < c->n_runs; r++) {
        const rd_run *run = &c->runs[r];
        if (md) {
            fprintf(f, "**%s** (median encode %.1f ms, decode %.1f ms per image)\n\n", run->legend,
                    c->enc_med[r], c->dec_med[r]);
            fprintf(f, "| %s | bpp | PSNR (dB) | MS-SSIM | MS-SSIM (dB) | encode (ms) | decode "
                       "(ms) |\n|--:|--:|--:|--:|--:|--:|--:|\n",
                    run->c->knob);
        } else {
            fprintf(f, "%s: %s (median encode %.1f ms, decode %.1f ms)\n", run->name, run->version,
                    c->enc_med[r], c->dec_med[r]);
            fprintf(f, "  %9s %8s %9s %8s %9s %9s %9s\n", run->c->knob, "bpp", "PSNR", "MS-SSIM",
                    "MS-SSIMdB", "enc-ms", "dec-ms");
        }
        for (int k = 0; k < run->nq; k++) {
            const rd_agg *a = &c->agg[r][k];
            snprintf(b[0], 48, "%g", run->q[k]);
            snprintf(b[1], 48, "%.4f", a->bpp);
            cli_fmtd(b[2], 48, a->psnr, 3, "n/a");
            cli_fmtd(b[3], 48, a->ms_ssim, 5, "n/a");
            cli_fmtd(b[4], 48, a->ms_ssim_db, 3, "n/a");
            snprintf(b[5], 48, "%.1f", a->enc_ms);
            snprintf(b[6], 48, "%.1f", a->dec_ms);
            if (md)
                fprintf(f, "| %s | %s | %s | %s | %s | %s | %s |\n", b[0], b[1], b[2], b[3], b[4],
                        b[5], b[6]);
            else
                fprintf(f, "  %9s %8s %9s %8s %9s %9s %9s\n", b[0], b[1], b[2], b[3], b[4], b[5],
                        b[6]);
        }
        fprintf(f, "\n");
    }
    if (c->n_runs > 1) {
        fprintf(f, md ? "## BD-rate matrix\n\nBD-rate (%s) of the column codec against the row "
                        "codec; negative = fewer bits for the same quality. PSNR:\n\n"
                      : "BD-rate (%s, PSNR) of column vs row:\n",
                nne_bd_method_name(RD_BD_METHOD));
        write_matrix(f, c, 0, md);
        fprintf(f, md ? "\nMS-SSIM (dB):\n\n" : "\nBD-rate (%s, MS-SSIM dB) of column vs row:\n",
                nne_bd_method_name(RD_BD_METHOD));
        write_matrix(f, c, 1, md);
        fprintf(f, "\n");
    }
    if (c->n_anchors > 0) {
        if (md)
            fprintf(f, "## Against the anchors\n\nBD of the live codec (test) against its published "
                       "anchor (reference); for extra anchors, of the anchor (test) against live "
                       "JPEG (reference). BD-rate on PSNR with both interpolations, BD-PSNR and "
                       "BD-rate on MS-SSIM (dB) with %s.\n\n| anchor | live | BD-rate PSNR (%s) | "
                       "BD-rate PSNR (cubic) | BD-PSNR (dB) | BD-rate MS-SSIM |\n"
                       "|---|---|--:|--:|--:|--:|\n",
                    nne_bd_method_name(RD_BD_METHOD), nne_bd_method_name(RD_BD_METHOD));
        else
            fprintf(f, "Against the anchors (BD-rate PSNR %s / cubic, BD-PSNR, BD-rate MS-SSIM):\n",
                    nne_bd_method_name(RD_BD_METHOD));
        for (int i = 0; i < c->n_anchors; i++) {
            const rd_bd *bd = &c->anchor_bd[i];
            const int ref = c->anchor_ref[i];
            pct(b[0], 48, bd->rate_psnr[RD_BD_METHOD]);
            pct(b[1], 48, bd->rate_psnr[0]);
            cli_fmtd(b[2], 48, bd->psnr_db[RD_BD_METHOD], 3, "n/a");
            pct(b[3], 48, bd->rate_ms[RD_BD_METHOD]);
            const char *live = ref >= 0 ? c->runs[ref].name : "n/a";
            if (md)
                fprintf(f, "| %s | %s | %s | %s | %s | %s |\n", c->anchors[i].label, live, b[0],
                        b[1], b[2], b[3]);
            else
                fprintf(f, "  %-32.32s %-5s %9s %9s %8s %9s\n", c->anchors[i].label, live, b[0],
                        b[1], b[2], b[3]);
        }
        fprintf(f, "\n");
    }
}

typedef struct md_ctx {
    const rd_ctx *c;
    const char *svg_name;
} md_ctx;

/* The markdown is rendered into memory once, then the image link gets the SVG's name. */
static void write_md(FILE *f, const void *vm) {
    const md_ctx *m = vm;
    char *buf = NULL;
    size_t n = 0;
    FILE *t = open_memstream(&buf, &n);
    if (!t) return;
    write_tables(t, m->c, true);
    if (fclose(t) != 0) {
        free(buf);
        return;
    }
    const char *mark = "RD_SVG_NAME", *hit = strstr(buf, mark);
    if (hit) {
        fwrite(buf, 1, (size_t)(hit - buf), f);
        fputs(m->svg_name, f);
        fputs(hit + strlen(mark), f);
    } else {
        fputs(buf, f);
    }
    free(buf);
}

/* Two panels: PSNR and MS-SSIM (dB) against bpp; live curves solid with points, anchors
 * dashed in their codec's colour (extras in the remaining colours). */
static nne_status write_svg(const rd_ctx *c, char **out, size_t *size) {
    nne_line_series ser[2][RD_MAX_CODECS + RD_MAX_ANCHORS];
    double xmax = 0, ymin[2] = {INFINITY, INFINITY}, ymax[2] = {-INFINITY, -INFINITY};
    int ns = 0;
    for (int r = 0; r < c->n_runs; r++) {
        const rd_curve *cv = &c->curves[r];
        for (int p = 0; p < 2; p++)
            ser[p][ns] = (nne_line_series){c->runs[r].legend,
                                           cv->bpp,
                                           p ? cv->msdb : cv->psnr,
                                           cv->n,
                                           k_colors[r % N_COLORS],
                                           NULL,
                                           true};
        for (int i = 0; i < cv->n; i++) {
            xmax = fmax(xmax, cv->bpp[i]);
            const double v[2] = {cv->psnr[i], cv->msdb[i]};
            for (int p = 0; p < 2; p++)
                if (isfinite(v[p])) {
                    ymin[p] = fmin(ymin[p], v[p]);
                    ymax[p] = fmax(ymax[p], v[p]);
                }
        }
        ns++;
    }
    for (int i = 0, extra = 0; i < c->n_anchors; i++) {
        const rd_anchor *an = &c->anchors[i];
        bool drawn = false; /* an anchor shared by several ladders is drawn once */
        for (int j = 0; j < i && !drawn; j++) drawn = !strcmp(c->anchors[j].stem, an->stem);
        if (drawn) continue;
        const char *col = an->run >= 0 ? k_colors[an->run % N_COLORS]
                                       : k_colors[(c->n_runs + extra++) % N_COLORS];
        for (int p = 0; p < 2; p++)
            ser[p][ns] = (nne_line_series){an->label, an->cv.bpp, p ? an->cv.msdb : an->cv.psnr,
                                           an->cv.n, col, "6 4", false};
        ns++;
    }
    const double w = 1100, h = 520;
    nne_svg *svg;
    nne_status s = nne_svg_begin(w, h, &svg);
    if (s) return s;
    char head[256];
    snprintf(head, sizeof head, "Rate-distortion on %d image(s): live codecs (solid), anchors "
                                "(dashed)",
             c->n_img);
    nne_svg_text(svg, w / 2, 22, head, 16, "middle", 0);
    const char *titles[2] = {"(a) PSNR-RGB", "(b) MS-SSIM"};
    const char *ylab[2] = {"PSNR (dB)", "MS-SSIM (dB) = -10 log10(1 - MS-SSIM)"};
    for (int p = 0; p < 2 && !s; p++) {
        nne_line_chart ch = {titles[p], "bits per pixel", ylab[p], ns, ser[p], 2, 0, 0, 0, 0, 0};
        if (xmax > 0) {
            ch.x_max = ceil(xmax / 0.25) * 0.25; /* the live range; anchors are clipped */
            ch.x_min = 0;
        }
        if (isfinite(ymin[p])) {
            ch.y_min = floor(ymin[p]) - (p ? 0.5 : 1);
            ch.y_max = ceil(ymax[p]) + (p ? 0.5 : 1);
        } else if (p == 1) {
            ch.y_min = 0;
            ch.y_max = 1; /* images too small for MS-SSIM: an empty panel */
        }
        s = nne_svg_line_chart(svg, &ch, p * w / 2, 34, w / 2, h - 40);
    }
    if (s) {
        nne_svg_free(svg);
        return s;
    }
    return nne_svg_finish(svg, out, size);
}

static void write_table_stdout(FILE *f, const void *vc) { write_tables(f, vc, false); }

/* ---- Command ------------------------------------------------------------------------------- */

static void help(void) {
    printf("usage: nnedge rd DIR [--codecs LIST] [--qualities SPEC] [--threads N]\n"
           "                [--models DIR] [--refine N [--refine-lr R] [--refine-codecs L]]\n"
           "                [--anchors DIR [--anchor-extra STEMS]]\n"
           "                [-o PREFIX [--force]] [--json] [-q]\n\n"
           "Rate-distortion evaluation of image codecs on the images of DIR (sorted by name;\n"
           ".png .jpg .ppm .pgm; alpha dropped). Each codec runs live at each value of its\n"
           "quality knob; bpp comes from the real encoded bytes, PSNR over all RGB samples and\n"
           "MS-SSIM from the decoded image. Per codec and knob value the means over the images;\n"
           "then the BD-rate of every codec against every other (PCHIP) and, with --anchors,\n"
           "against CompressAI's published curves. Never tune anything on test data (Kodak).\n\n"
           "options:\n"
           "  --codecs LIST      comma-separated, from: ");
    for (int i = 0; i < nne_imgcodec_count(); i++)
        printf("%s%s", i ? "," : "", nne_imgcodec_get(i)->name);
    printf(
        ",\n"
        "                     nnedge:KIND (the learned codec: the models KIND-q<N>.nne of\n"
        "                     --models DIR or of the registry, knob = N; KIND is\n"
        "                     bmshj2018-factorized, bmshj2018-hyperprior or mbt2018-mean),\n"
        "                     nnedge:KIND@LABEL=DIR (the ladder in DIR, named\n"
        "                     nnedge:KIND@LABEL; @LABEL defaults to DIR's last component;\n"
        "                     several ladders of one kind need distinct labels), e.g.\n"
        "                     nnedge:mbt2018-mean@fp32=models,nnedge:mbt2018-mean@int8=q8\n"
        "                     (default: the classical codecs of this build, all five\n"
        "                     unless built with -DNNE_CLASSICAL_CODECS=OFF)\n"
        "  --models DIR       folder of the nnedge:KIND ladders (default: the registry,\n"
        "                     $NNEDGE_MODELS, ./models, the repository's models/)\n"
        "  --qualities SPEC   knob values: 'V,V,...' for every selected codec, or\n"
        "                     'CODEC=V,V,.../CODEC=V,...' (others keep their default sweep)\n"
        "  --threads N        images coded in parallel (default: NNEDGE_THREADS or all CPUs)\n"
        "  --refine N         the learned ladders encode with N steps of latent refinement\n"
        "                     (nnedge compress --refine; one thread per image)\n"
        "  --refine-lr R      its Adam step size (default 0.01)\n"
        "  --refine-codecs L  only these learned codecs refine (names as in the tables,\n"
        "                     comma-separated), e.g. to compare a ladder with and without:\n"
        "                     --codecs nnedge:mbt2018-mean,nnedge:mbt2018-mean@plain=models\n"
        "                     --refine 50 --refine-codecs nnedge:mbt2018-mean\n"
        "  --anchors DIR      CompressAI result files (e.g. ../shared/anchors/compressai-kodak):\n"
        "                     each codec's matching curve is drawn dashed and compared\n"
        "  --anchor-extra S   more anchor file stems to draw and compare with live JPEG,\n"
        "                     comma-separated (e.g. compressai-bmshj2018-hyperprior_mse_cpu)\n"
        "  -o PREFIX          write PREFIX.csv (means), PREFIX-images.csv (per image),\n"
        "                     PREFIX.md, PREFIX.svg and PREFIX.json\n"
        "  --force            replace existing PREFIX.* files\n"
        "  --json             print JSON instead of the tables\n"
        "  -q                 no tables and no progress\n\n"
        "default sweeps (knob: values, low to high rate):\n");
    for (int i = 0; i < nne_imgcodec_count(); i++) {
        const nne_imgcodec *c = nne_imgcodec_get(i);
        printf("  %-5s %-9s", c->name, c->knob);
        for (int k = 0; k < c->n_sweep; k++) printf("%s%g", k ? "," : " ", c->sweep[k]);
        printf("\n        %s\n", c->settings);
    }
    printf("\nexit status: 0 success, 1 runtime error, 2 usage error\n");
}

static bool output_paths(const char *prefix, char paths[5][4096]) {
    static const char *const sfx[5] = {".csv", "-images.csv", ".md", ".svg", ".json"};
    for (int i = 0; i < 5; i++)
        if ((size_t)snprintf(paths[i], 4096, "%s%s", prefix, sfx[i]) >= 4096) return false;
    return true;
}

int nne_cmd_rd(int argc, char **argv) {
    cli_common co;
    const char *codecs_s = NULL, *qual_s = NULL, *threads_s = NULL, *anchors_s = NULL,
               *extra_s = NULL, *models_s = NULL, *refine_s = NULL, *refine_lr_s = NULL,
               *refine_codecs_s = NULL;
    bool force = false;
    const cli_option opts[] = {
        {"codecs", 0, true, &codecs_s, NULL},      {"qualities", 0, true, &qual_s, NULL},
        {"threads", 0, true, &threads_s, NULL},    {"anchors", 0, true, &anchors_s, NULL},
        {"anchor-extra", 0, true, &extra_s, NULL}, {"force", 0, false, NULL, &force},
        {"models", 0, true, &models_s, NULL},      {"refine", 0, true, &refine_s, NULL},
        {"refine-lr", 0, true, &refine_lr_s, NULL},
        {"refine-codecs", 0, true, &refine_codecs_s, NULL},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[1];
    int n_pos;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one folder of images");
    rd_ctx *c = nne_calloc(1, sizeof *c);
    if (!c) return cli_fail(k_cmd, NNE_ERR_NOMEM);
    int rc = NNE_EXIT_USAGE;
    nne_dataset *ds = NULL;
    nne_threadpool *pool = NULL;
    char *command = NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->data = pos[0];
    c->models_dir = models_s;
    /* --refine: every learned ladder encodes with latent refinement, one thread per image
     * (the images are what runs in parallel). */
    nne_lcodec_refine_opts refine;
    memset(&refine, 0, sizeof refine);
    refine.threads = 1;
    if (refine_s) {
        int64_t v;
        if (!cli_parse_i64(refine_s, 0, NNE_LCODEC_REFINE_MAX_ITS, &v)) {
            cli_usage_error(k_cmd, "--refine '%s': expected 0..%d steps", refine_s,
                            NNE_LCODEC_REFINE_MAX_ITS);
            goto done;
        }
        refine.iterations = (int32_t)v;
    }
    if (refine_lr_s) {
        double v;
        if (!refine_s || !cli_parse_f64(refine_lr_s, 1e-6, 100, &v)) {
            cli_usage_error(k_cmd, "--refine-lr '%s': expected a step size in (0, 100] with "
                                   "--refine N", refine_lr_s);
            goto done;
        }
        refine.lr = (float)v;
    }
    if (refine_codecs_s && !refine_s) {
        cli_usage_error(k_cmd, "--refine-codecs needs --refine N");
        goto done;
    }
    /* The default: every classical codec this build has. */
    char all_codecs[256] = "";
    for (int i = 0; i < nne_imgcodec_count(); i++) {
        strcat(all_codecs, i ? "," : "");
        strcat(all_codecs, nne_imgcodec_get(i)->name);
    }
    if ((rc = parse_codecs(c, codecs_s ? codecs_s : all_codecs))) goto done;
    /* --refine-codecs: the learned runs, by their table names, that refine (default all). */
    bool refine_run[RD_MAX_CODECS];
    for (int r = 0; r < c->n_runs; r++) refine_run[r] = !refine_codecs_s && c->runs[r].learned;
    if (refine_codecs_s) {
        char list[1024];
        snprintf(list, sizeof list, "%s", refine_codecs_s);
        rc = NNE_EXIT_USAGE;
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            int hit = -1;
            for (int r = 0; r < c->n_runs; r++)
                if (c->runs[r].learned && !strcmp(c->runs[r].name, tok)) hit = r;
            if (hit < 0) {
                cli_usage_error(k_cmd,
                                "--refine-codecs: '%s' is not a learned codec of --codecs "
                                "(names as in the tables: nnedge:KIND or nnedge:KIND@LABEL)",
                                tok);
                goto done;
            }
            refine_run[hit] = true;
        }
    }
    rc = NNE_EXIT_RUNTIME;
    for (int r = 0; r < c->n_runs && refine.iterations > 0; r++) {
        if (!refine_run[r]) continue;
        const nne_status st = nne_imgcodec_lcodec_set_refine(c->runs[r].c, &refine);
        if (st) {
            cli_fail(k_cmd, st);
            goto done;
        }
    }
    rc = NNE_EXIT_USAGE;
    if (qual_s && !parse_qualities(c, qual_s)) goto done;
    for (int r = 0; r < c->n_runs; r++) {
        if (!check_sweep(&c->runs[r])) goto done;
        sort_sweep(&c->runs[r]);
        c->runs[r].c->version(c->runs[r].c, c->runs[r].version, sizeof c->runs[r].version);
    }
    c->threads = nne_threadpool_default_threads();
    if (threads_s) {
        char *end;
        errno = 0;
        const long v = strtol(threads_s, &end, 10);
        if (errno || end == threads_s || *end || v < 1 || v > NNE_THREADPOOL_MAX_THREADS) {
            cli_usage_error(k_cmd, "--threads '%s': expected 1..%d", threads_s,
                            NNE_THREADPOOL_MAX_THREADS);
            goto done;
        }
        c->threads = (int)v;
    }
    if (extra_s && !anchors_s) {
        cli_usage_error(k_cmd, "--anchor-extra needs --anchors DIR");
        goto done;
    }
    char paths[5][4096];
    if (co.output) {
        if (!output_paths(co.output, paths)) {
            cli_usage_error(k_cmd, "-o: prefix too long");
            goto done;
        }
        rc = NNE_EXIT_RUNTIME;
        for (int i = 0; i < 5; i++)
            if (access(paths[i], F_OK) == 0 && !force) {
                cli_error(k_cmd, "%s already exists; use --force to overwrite it", paths[i]);
                goto done;
            }
        /* The reports' folder must exist and be writable: found out now, not after the run. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", paths[0]);
        char *slash = strrchr(dir, '/');
        if (slash == dir) slash[1] = '\0';
        else if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        struct stat st_dir;
        if (stat(dir, &st_dir) != 0 || !S_ISDIR(st_dir.st_mode) || access(dir, W_OK) != 0) {
            cli_error(k_cmd, "-o %s: the folder %s does not exist or is not writable", co.output,
                      dir);
            goto done;
        }
    }
    rc = NNE_EXIT_RUNTIME;
    /* The command line, for the report. */
    size_t len = 16;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 3;
    command = nne_malloc(len);
    if (!command) goto done;
    strcpy(command, "nnedge");
    for (int i = 0; i < argc; i++) {
        strcat(command, " ");
        strcat(command, argv[i]);
    }
    c->command = command;

    if (anchors_s && !load_anchors(c, anchors_s, extra_s)) goto done;
    const nne_dataset_opts dopts = {false, true, 0, 0};
    nne_status s = nne_dataset_open(c->data, &dopts, &ds);
    if (s) {
        cli_fail(k_cmd, s);
        goto done;
    }
    c->n_img = nne_dataset_size(ds);
    if (c->n_img == 0) {
        cli_error(k_cmd, "%s: no images", c->data);
        goto done;
    }
    c->imgs = nne_calloc((size_t)c->n_img, sizeof *c->imgs);
    c->names = nne_calloc((size_t)c->n_img, sizeof *c->names);
    c->pts = nne_calloc((size_t)c->n_runs * NNE_IMGCODEC_MAX_SWEEP * (size_t)c->n_img,
                        sizeof *c->pts);
    if (!c->imgs || !c->names || !c->pts) {
        cli_fail(k_cmd, NNE_ERR_NOMEM);
        goto done;
    }
    for (int i = 0; i < c->n_img; i++) {
        bool owned = false;
        s = nne_dataset_image(ds, i, &c->imgs[i], &owned); /* cached: borrowed */
        if (s) {
            cli_fail(k_cmd, s);
            goto done;
        }
        cli_base_name(nne_dataset_path(ds, i), c->names[i], sizeof c->names[i]);
    }
    for (int i = 0; co.output && i < c->n_img; i++)
        for (int k = 0; k < 5; k++)
            if (cli_same_file(paths[k], nne_dataset_path(ds, i))) {
                cli_error(k_cmd, "%s: refusing to overwrite an input", paths[k]);
                goto done;
            }

    int n_tasks = 0;
    for (int r = 0; r < c->n_runs; r++) n_tasks += c->runs[r].nq * c->n_img;
    c->total = n_tasks;
    c->show = !co.quiet;
    c->tty = isatty(2);
    c->t0 = nne_time_ns();
    c->last_pct = -1;
    if (c->threads > 1) {
        s = nne_threadpool_create(c->threads, &pool);
        if (s) {
            cli_fail(k_cmd, s);
            goto done;
        }
    }
    nne_threadpool_run(pool, n_tasks, rd_task, c);
    for (int r = 0; r < c->n_runs; r++)
        for (int k = 0; k < c->runs[r].nq; k++)
            for (int i = 0; i < c->n_img; i++) {
                const rd_point *p = &c->pts[pt_index(c, r, k, i)];
                if (p->status) {
                    cli_error(k_cmd, "%s: %s", nne_status_str(p->status), p->err);
                    goto done;
                }
            }
    aggregate(c);

    if (co.json)
        write_json(stdout, c);
    else if (!co.quiet)
        write_table_stdout(stdout, c);
    if (co.output) {
        const char *slash = strrchr(paths[3], '/');
        const md_ctx md = {c, slash ? slash + 1 : paths[3]};
        if (!cli_write_report(k_cmd, paths[0], write_mean_csv, c) ||
            !cli_write_report(k_cmd, paths[1], write_points_csv, c) ||
            !cli_write_report(k_cmd, paths[2], write_md, &md) ||
            !cli_write_report(k_cmd, paths[4], write_json, c))
            goto done;
        char *svg = NULL;
        size_t n = 0;
        s = write_svg(c, &svg, &n);
        if (!s) {
            s = nne_file_write_atomic(paths[3], svg, n);
            nne_free(svg);
        }
        if (s) {
            cli_error(k_cmd, "%s: %s: %s", paths[3], nne_status_str(s), nne_last_error());
            goto done;
        }
    }
    rc = NNE_EXIT_OK;
done:
    nne_threadpool_free(pool);
    for (int i = 0; i < c->n_owned; i++) nne_imgcodec_lcodec_free(c->owned[i]);
    nne_dataset_free(ds);
    nne_free(c->imgs);
    nne_free(c->names);
    nne_free(c->pts);
    nne_free(command);
    pthread_mutex_destroy(&c->mu);
    nne_free(c);
    return rc;
}
