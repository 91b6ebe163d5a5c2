/* nnedge compress IN -o OUT.nnc / nnedge decompress IN.nnc -o OUT.png: the learned codec
 * (include/nnedge/lcodec.h, docs/codec.md) on one file or on a folder of files, with the
 * model registry of docs/codec.md ("Model registry"): --model names a model file or a kind,
 * --quality picks models/<kind>-q<N>.nne. Outputs are written atomically, never over an
 * input, and never over an existing file without --force. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nnedge/bitstream.h"
#include "nnedge/file.h"
#include "nnedge/json.h"
#include "nnedge/lcodec.h"

#define DEFAULT_KIND    "mbt2018-mean" /* the kind models/ ships */
#define DEFAULT_QUALITY 3
#define MAX_QUALITY     99 /* registry file names; the container allows 255 */
#define NNC_MAX_FILE    ((size_t)1 << 30)
#define CACHE_SIZE      8

typedef struct cached {
    char path[PATH_MAX];
    int quality;
    nne_lcodec *c;
} cached;

typedef struct job {
    const char *cmd;
    bool compress, force, json, quiet;
    const char *model; /* --model: a file or a kind name; NULL: default / from the stream */
    int quality;       /* --quality, -1 if absent */
    double target_bpp; /* --bpp, 0 if absent */
    int n_ladder;      /* --bpp: the kind's registry ladder, by increasing quality */
    int32_t ladder_q[MAX_QUALITY + 1];
    nne_lcodec_refine_opts refine; /* --refine N [--refine-lr R] */
    char (*ladder_path)[CLI_PATH_MAX];
    cached cache[CACHE_SIZE];
    int n_cached;
    bool reported; /* get_codec printed its failure */
    /* progress (folders) */
    int done, total;
    bool tty;
    nne_json js;
} job;

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Resolve --model / --quality (or a stream's model id and quality) to a model file. */
static bool resolve_model(job *j, const char *kind_hint, int quality, char *path, size_t n) {
    if (j->model && cli_is_regular(j->model)) {
        snprintf(path, n, "%s", j->model);
        return true;
    }
    const char *kind = j->model ? j->model : kind_hint ? kind_hint : DEFAULT_KIND;
    nne_rdmodel_kind k;
    if (nne_rdmodel_kind_from_name(kind, &k)) {
        cli_error(j->cmd,
                  "--model '%s' is neither a model file nor a learned-codec kind "
                  "(bmshj2018-factorized, bmshj2018-hyperprior, mbt2018-mean)",
                  kind);
        return false;
    }
    char file[128], looked[4 * PATH_MAX];
    snprintf(file, sizeof file, "%s-q%d.nne", kind, quality);
    if (cli_registry_find(file, path, n, looked, sizeof looked)) return true;
    cli_error(j->cmd,
              "no trained model %s (looked at %s); train one with 'nnedge train' or "
              "pass --model FILE.nne (docs/codec.md, \"Model registry\")",
              file, looked);
    return false;
}

static nne_lcodec *get_codec(job *j, const char *path, int quality) {
    for (int i = 0; i < j->n_cached; i++)
        if (!strcmp(j->cache[i].path, path) && j->cache[i].quality == quality) return j->cache[i].c;
    nne_lcodec *c = NULL;
    nne_status s = nne_lcodec_load(path, quality, &c);
    if (!s && j->refine.iterations > 0 && (s = nne_lcodec_set_refine(c, &j->refine)) != NNE_OK) {
        s = nne_error(s, "%s: %s", path, nne_last_error());
        nne_lcodec_free(c);
    }
    if (s) {
        cli_fail(j->cmd, s);
        j->reported = true;
        return NULL;
    }
    if (j->n_cached == CACHE_SIZE) { /* evict the oldest */
        nne_lcodec_free(j->cache[0].c);
        memmove(j->cache, j->cache + 1, sizeof j->cache[0] * (CACHE_SIZE - 1));
        j->n_cached--;
    }
    cached *e = &j->cache[j->n_cached++];
    snprintf(e->path, sizeof e->path, "%s", path);
    e->quality = quality;
    e->c = c;
    return c;
}

/* Refuse to write over the input, or over an existing file without --force. */
static bool may_write(job *j, const char *in, const char *out) {
    if (cli_same_file(in, out)) {
        cli_error(j->cmd, "%s: refusing to overwrite the input", out);
        return false;
    }
    if (!j->force && access(out, F_OK) == 0) {
        cli_error(j->cmd, "%s already exists; use --force to overwrite it", out);
        return false;
    }
    return true;
}

static void progress(job *j) {
    if (j->quiet || j->json || j->total <= 1) return;
    j->done++;
    if (j->tty) {
        char bar[31];
        const int fill = (int)(30LL * j->done / j->total);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r[%s] %d/%d%s", bar, j->done, j->total, j->done == j->total ? "\n" : "");
    } else if (j->done == j->total ||
               (10 * j->done / j->total) != (10 * (j->done - 1) / j->total)) {
        fprintf(stderr, "nnedge %s: %d/%d files\n", j->cmd, j->done, j->total);
    }
}

/* The --bpp ladder: the registry models of the kind (--model KIND, or the default kind). */
static bool load_ladder(job *j) {
    const char *kind = j->model ? j->model : DEFAULT_KIND;
    nne_rdmodel_kind k;
    if (nne_rdmodel_kind_from_name(kind, &k)) {
        cli_error(j->cmd,
                  "--bpp needs --model KIND (a learned-codec kind: bmshj2018-factorized, "
                  "bmshj2018-hyperprior, mbt2018-mean), not '%s': it chooses among the kind's "
                  "registry models",
                  kind);
        return false;
    }
    j->ladder_path = calloc(MAX_QUALITY + 1, sizeof *j->ladder_path);
    char where[4 * CLI_PATH_MAX];
    if (j->ladder_path)
        j->n_ladder = cli_registry_ladder(kind, NULL, MAX_QUALITY + 1, j->ladder_q, j->ladder_path,
                                          where, sizeof where);
    if (j->n_ladder == 0) {
        cli_error(j->cmd,
                  "--bpp: no trained models %s-q<N>.nne in %s (docs/codec.md, \"Model "
                  "registry\")",
                  kind, j->ladder_path ? where : "(out of memory)");
        return false;
    }
    return true;
}

typedef struct encoded {
    int quality;
    const char *path;
    nne_lcodec *c;
    uint8_t *bytes;
    size_t n;
    nne_lcodec_stats st;
} encoded;

static nne_status encode_with(job *j, const nne_image *img, const char *path, int q, encoded *e) {
    memset(e, 0, sizeof *e);
    e->quality = q;
    e->path = path;
    if (!(e->c = get_codec(j, path, q))) return NNE_ERR_INTERNAL; /* printed: j->reported */
    return nne_lcodec_encode(e->c, img, false, &e->bytes, &e->n, &e->st);
}

/* Rate control (docs/codec.md, "Rate control"): the highest quality of the ladder whose real
 * file meets the target, by bisection over the ladder (the rate grows with the quality index
 * in a trained ladder; every file tried is measured, so the answer always meets the target
 * when any model does). If even the lowest quality is over the target, its file is kept and
 * *met is false. *tries counts the encodes. */
static nne_status rate_control(job *j, const nne_image *img, encoded *best, bool *met, int *tries) {
    const double pixels = (double)img->width * (double)img->height;
    int lo = 0, hi = j->n_ladder - 1;
    encoded low = {0};
    memset(best, 0, sizeof *best);
    *met = false;
    *tries = 0;
    nne_status s = NNE_OK;
    while (lo <= hi && !s) {
        const int mid = lo + (hi - lo) / 2;
        encoded e;
        s = encode_with(j, img, j->ladder_path[mid], j->ladder_q[mid], &e);
        ++*tries;
        if (s) {
            nne_free(e.bytes);
            break;
        }
        if (8.0 * (double)e.n / pixels <= j->target_bpp) {
            nne_free(best->bytes);
            *best = e;
            *met = true;
            lo = mid + 1;
        } else {
            if (mid == 0) {
                nne_free(low.bytes);
                low = e;
            } else {
                nne_free(e.bytes);
            }
            hi = mid - 1;
        }
    }
    if (!s && !*met) { /* nothing fits: the lowest quality, already encoded when mid hit 0 */
        *best = low;
        low.bytes = NULL;
    }
    nne_free(low.bytes);
    if (s) {
        nne_free(best->bytes);
        memset(best, 0, sizeof *best);
    }
    return s;
}

/* The quality a model file's name gives (registry spelling ...-q<N>.nne, N 0..MAX_QUALITY),
 * or -1: `--model models/mbt2018-mean-q7.nne` stores quality 7, so that `decompress` finds
 * the same file in the registry without options. */
static int quality_of_file(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const size_t n = strlen(base);
    if (n < 7 || strcmp(base + n - 4, ".nne") != 0) return -1;
    size_t i = n - 4, d = 0;
    while (i > 0 && d < 3 && base[i - 1] >= '0' && base[i - 1] <= '9') i--, d++;
    if (d == 0 || d > 2 || i < 2 || base[i - 1] != 'q' || base[i - 2] != '-') return -1;
    const int q = atoi(base + i);
    return q <= MAX_QUALITY ? q : -1;
}

static bool compress_one(job *j, const char *in, const char *out) {
    if (!may_write(j, in, out)) return false;
    const int qf = j->model && cli_is_regular(j->model) ? quality_of_file(j->model) : -1;
    const int q = j->quality >= 0 ? j->quality : qf >= 0 ? qf : DEFAULT_QUALITY;
    char path[PATH_MAX];
    nne_image img = {0};
    encoded e = {0};
    bool met = true;
    int tries = 1;
    nne_status s = NNE_OK;
    if (j->target_bpp > 0) {
        if ((s = nne_image_load(in, NNE_IMAGE_LOAD_RGB, &img)) ||
            (s = rate_control(j, &img, &e, &met, &tries))) {
            if (!j->reported) cli_error(j->cmd, "%s: %s", in, nne_last_error());
            j->reported = false;
            nne_image_free(&img);
            return false;
        }
    } else {
        if (!resolve_model(j, NULL, q, path, sizeof path)) return false;
        if (!get_codec(j, path, q)) return false;
        s = nne_image_load(in, NNE_IMAGE_LOAD_RGB, &img);
        if (!s) s = encode_with(j, &img, path, q, &e);
    }
    if (!s) s = nne_file_write_atomic(out, e.bytes, e.n);
    if (s) {
        cli_error(j->cmd, "%s: %s", in, nne_last_error());
    } else if (j->json) {
        nne_lcodec_info info;
        nne_lcodec_get_info(e.c, &info);
        nne_json_object_begin(&j->js, NULL);
        nne_json_string(&j->js, "input", in);
        nne_json_string(&j->js, "output", out);
        nne_json_string(&j->js, "model", info.model_id);
        nne_json_string(&j->js, "model_file", e.path);
        nne_json_int(&j->js, "quality", e.quality);
        nne_json_int(&j->js, "width", img.width);
        nne_json_int(&j->js, "height", img.height);
        nne_json_int(&j->js, "bytes", (int64_t)e.n);
        nne_json_int(&j->js, "y_bytes", (int64_t)e.st.y_bytes);
        nne_json_int(&j->js, "z_bytes", (int64_t)e.st.z_bytes);
        nne_json_number(&j->js, "bpp", e.st.bpp, 6);
        nne_json_number(&j->js, "estimated_bits", e.st.y_bits_est + e.st.z_bits_est, 1);
        if (j->refine.iterations > 0) {
            nne_json_int(&j->js, "refine_iterations", e.st.refine_iterations);
            nne_json_number(&j->js, "refine_loss_before", e.st.refine_loss[0], 6);
            nne_json_number(&j->js, "refine_loss_after", e.st.refine_loss[1], 6);
        }
        if (j->target_bpp > 0) {
            nne_json_number(&j->js, "target_bpp", j->target_bpp, 6);
            nne_json_bool(&j->js, "target_met", met);
            nne_json_int(&j->js, "encodes", tries);
        }
        nne_json_object_end(&j->js);
    } else if (!j->quiet && j->total <= 1) {
        char b[32];
        printf("%s: %dx%d -> %s: %s bytes, %.4f bpp (y %zu, z %zu bytes; model %s q%d)\n", in,
               (int)img.width, (int)img.height, out, cli_thousands((int64_t)e.n, b, sizeof b),
               e.st.bpp, e.st.y_bytes, e.st.z_bytes, e.path, e.quality);
        if (j->refine.iterations > 0)
            printf("latent refinement: %d steps, estimated loss %.5f -> %.5f (%+.2f%%)\n",
                   (int)e.st.refine_iterations, e.st.refine_loss[0], e.st.refine_loss[1],
                   e.st.refine_loss[0] > 0
                       ? 100.0 * (e.st.refine_loss[1] / e.st.refine_loss[0] - 1.0)
                       : 0.0);
        if (j->target_bpp > 0 && met)
            printf("target %.4f bpp met: quality %d of %d..%d is the highest that fits (%d "
                   "encodes)\n",
                   j->target_bpp, e.quality, (int)j->ladder_q[0], (int)j->ladder_q[j->n_ladder - 1],
                   tries);
    }
    if (!s && !met && !j->quiet)
        cli_error(j->cmd,
                  "%s: target %.4f bpp not met: the lowest quality (%d) gives %.4f bpp; wrote "
                  "that",
                  in, j->target_bpp, e.quality, e.st.bpp);
    nne_free(e.bytes);
    nne_image_free(&img);
    return s == NNE_OK;
}

static bool decompress_one(job *j, const char *in, const char *out) {
    if (!may_write(j, in, out)) return false;
    uint8_t *buf = NULL;
    size_t n = 0;
    nne_image img = {0};
    bool ok = false;
    nne_nnc box;
    nne_status s = nne_file_read(in, NNC_MAX_FILE, &buf, &n);
    if (!s) s = nne_nnc_read_mem(buf, n, &box);
    if (s) {
        cli_error(j->cmd, "%s: %s", in, nne_last_error());
        goto done;
    }
    char path[PATH_MAX];
    /* The stream names its model and quality; --model / --quality override. */
    const int q = j->quality >= 0 ? j->quality : box.quality;
    if (!resolve_model(j, box.model_id, q, path, sizeof path)) goto done;
    nne_lcodec *c = get_codec(j, path, q);
    if (!c) goto done;
    if ((s = nne_lcodec_decode(c, buf, n, &img)) || (s = nne_image_save(out, &img))) {
        cli_error(j->cmd, "%s: %s", in, nne_last_error());
        goto done;
    }
    if (j->json) {
        nne_json_object_begin(&j->js, NULL);
        nne_json_string(&j->js, "input", in);
        nne_json_string(&j->js, "output", out);
        nne_json_string(&j->js, "model", box.model_id);
        nne_json_string(&j->js, "model_file", path);
        nne_json_int(&j->js, "quality", box.quality);
        nne_json_int(&j->js, "width", img.width);
        nne_json_int(&j->js, "height", img.height);
        nne_json_int(&j->js, "bytes", (int64_t)n);
        nne_json_object_end(&j->js);
    } else if (!j->quiet && j->total <= 1) {
        printf("%s: %s bytes -> %s: %dx%d (model %s q%d)\n", in,
               cli_thousands((int64_t)n, (char[32]){0}, 32), out, (int)img.width, (int)img.height,
               path, (int)box.quality);
    }
    ok = true;
done:
    nne_image_free(&img);
    nne_free(buf);
    return ok;
}

static bool wanted(const job *j, const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return false;
    if (!j->compress) return !strcmp(dot, ".nnc");
    return !strcasecmp(dot, ".png") || !strcasecmp(dot, ".ppm") || !strcasecmp(dot, ".pgm") ||
           !strcasecmp(dot, ".pnm") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* IN is a folder: every image (compress) or .nnc (decompress) in it, by name, into OUT. */
static int run_folder(job *j, const char *in, const char *out) {
    if (!is_dir(out) && mkdir(out, 0777) != 0) {
        cli_error(j->cmd, "%s: cannot create the output folder: %s", out, strerror(errno));
        return NNE_EXIT_RUNTIME;
    }
    DIR *d = opendir(in);
    if (!d) {
        cli_error(j->cmd, "%s: %s", in, strerror(errno));
        return NNE_EXIT_RUNTIME;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char full[2 * PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", in, e->d_name);
        if (!wanted(j, e->d_name) || !cli_is_regular(full)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    int failed = 0;
    j->total = (int)n;
    if (n == 0 && !j->quiet)
        cli_error(j->cmd, "%s: no %s files", in, j->compress ? "image" : ".nnc");
    for (size_t i = 0; i < n; i++) {
        char src[2 * PATH_MAX], dst[3 * PATH_MAX], stem[PATH_MAX];
        snprintf(src, sizeof src, "%s/%s", in, names[i]);
        snprintf(stem, sizeof stem, "%s", names[i]);
        *strrchr(stem, '.') = 0;
        /* Two inputs with one stem (a.png, a.jpg) would write one output: refuse the second. */
        bool dup = false;
        for (size_t k = 0; k < i && j->compress; k++) {
            const size_t len = strlen(stem);
            dup |= !strncmp(names[k], stem, len) && names[k][len] == '.';
        }
        snprintf(dst, sizeof dst, "%s/%s%s", out, stem, j->compress ? ".nnc" : ".png");
        if (dup) {
            cli_error(j->cmd, "%s: another input already writes %s; skipped", src, dst);
            failed++;
        } else {
            failed += !(j->compress ? compress_one(j, src, dst) : decompress_one(j, src, dst));
        }
        progress(j);
    }
    for (size_t i = 0; i < n; i++) free(names[i]); /* after the loop: the stem check reads them */
    free(names);
    if (!j->quiet && !j->json && n)
        printf("%s: %d of %d files %s into %s\n", in, (int)n - failed, (int)n,
               j->compress ? "compressed" : "decompressed", out);
    return failed ? NNE_EXIT_RUNTIME : NNE_EXIT_OK;
}

static void help(bool compress) {
    if (compress)
        printf("usage: nnedge compress IN -o OUT.nnc [--model M] [--quality N | --bpp R]\n"
               "                          [--refine N [--refine-lr R]] [--force] [--json] [-q]\n\n"
               "Compress an image (PNG, PPM, PGM or JPEG) with a learned codec into a .nnc\n"
               "bitstream (docs/bitstream.md). IN may be a folder: every image in it is\n"
               "compressed into the folder OUT as <name>.nnc, with a progress bar.\n\n");
    else
        printf("usage: nnedge decompress IN.nnc -o OUT.png [--model M] [--force] [--json] [-q]\n\n"
               "Decompress a .nnc bitstream to an image (.png or .ppm by the name of OUT). The\n"
               "model is found from the stream's model id and quality in the registry unless\n"
               "--model names a file; its hash is checked. IN may be a folder of .nnc files,\n"
               "decompressed into the folder OUT as <name>.png.\n\n");
    printf("options:\n"
           "  -o PATH         output file (or folder); written atomically, never the input\n"
           "  --model M       a trained model file (.nne), or a kind: bmshj2018-factorized,\n"
           "                  bmshj2018-hyperprior, mbt2018-mean (default)\n"
           "  --quality N     %s\n"
           "%s"
           "  --force         overwrite existing outputs\n"
           "  --json          print a JSON array with one object per file\n"
           "  -q              print nothing but errors\n"
           "  -h, --help      this help\n\n"
           "Model registry: a kind at quality N is the file <kind>-q<N>.nne in $NNEDGE_MODELS,\n"
           "./models or the nnedge repository's models/ (docs/codec.md).\n\n"
           "exit status: 0 success, 1 runtime error (any file), 2 usage error\n",
           compress ? "rate index 0..99 (default 3; with --model FILE the N of a name\n"
                      "                  ...-qN.nne): picks the registry's model file and is\n"
                      "                  stored in the stream"
                    : "registry quality to decode with (default: the stream's)",
           compress
               ? "  --bpp R         rate control: per image, the highest quality of the kind's\n"
                 "                  registry models whose file is at most R bits per pixel\n"
                 "                  (the lowest if none is; a warning says so)\n"
                 "  --refine N      encoder effort: N steps of latent refinement per image\n"
                 "                  against the model's rate-distortion loss (default 0: off;\n"
                 "                  50 saved ~5% of the bits on Kodak at ~35x the encode\n"
                 "                  time). The stream decodes as any other\n"
                 "                  (docs/codec.md, \"Latent refinement\")\n"
                 "  --refine-lr R   its Adam step size (default 0.01)\n"
               : "");
}

static int run(bool compress, int argc, char **argv) {
    job j;
    memset(&j, 0, sizeof j);
    j.cmd = compress ? "compress" : "decompress";
    j.compress = compress;
    j.quality = -1;
    cli_common co;
    const char *quality_s = NULL, *bpp_s = NULL, *refine_s = NULL, *refine_lr_s = NULL;
    const cli_option opts[] = {
        {"model", 'm', true, &j.model, NULL},
        {"quality", 0, true, &quality_s, NULL},
        {"bpp", 0, true, &bpp_s, NULL},
        {"refine", 0, true, &refine_s, NULL},
        {"refine-lr", 0, true, &refine_lr_s, NULL},
        {"force", 'f', false, NULL, &j.force},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[1];
    int n_pos;
    if (!cli_parse(j.cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help(compress);
        return NNE_EXIT_OK;
    }
    if (n_pos != 1)
        return cli_usage_error(j.cmd, "expected one input %s (or folder)",
                               compress ? "image" : ".nnc file");
    if (!co.output) return cli_usage_error(j.cmd, "missing -o OUTPUT");
    if (quality_s) {
        int64_t q;
        if (!cli_parse_i64(quality_s, 0, MAX_QUALITY, &q))
            return cli_usage_error(j.cmd, "--quality '%s': expected 0..%d", quality_s, MAX_QUALITY);
        j.quality = (int)q;
    }
    if (bpp_s) {
        if (!compress)
            return cli_usage_error(j.cmd, "--bpp is an option of compress (the stream names its "
                                          "model)");
        if (quality_s) return cli_usage_error(j.cmd, "give --quality or --bpp, not both");
        if (!cli_parse_f64(bpp_s, 1e-6, 1000, &j.target_bpp))
            return cli_usage_error(j.cmd, "--bpp '%s': expected a rate in bits per pixel > 0",
                                   bpp_s);
        if (j.model && cli_is_regular(j.model))
            return cli_usage_error(j.cmd, "--bpp chooses among a kind's registry models: give "
                                          "--model KIND, not a file");
    }
    if ((refine_s || refine_lr_s) && !compress)
        return cli_usage_error(j.cmd,
                               "--refine is an option of compress (the decoder is the same)");
    if (refine_s) {
        int64_t v;
        if (!cli_parse_i64(refine_s, 0, NNE_LCODEC_REFINE_MAX_ITS, &v))
            return cli_usage_error(j.cmd, "--refine '%s': expected 0..%d steps", refine_s,
                                   NNE_LCODEC_REFINE_MAX_ITS);
        j.refine.iterations = (int32_t)v;
    }
    if (refine_lr_s) {
        double v;
        if (!refine_s) return cli_usage_error(j.cmd, "--refine-lr needs --refine N");
        if (!cli_parse_f64(refine_lr_s, 1e-6, 100, &v))
            return cli_usage_error(j.cmd, "--refine-lr '%s': expected a step size in (0, 100]",
                                   refine_lr_s);
        j.refine.lr = (float)v;
    }
    j.json = co.json;
    j.quiet = co.quiet;
    j.tty = isatty(2);
    const char *in = pos[0], *out = co.output;
    const bool folder = is_dir(in);
    if (j.target_bpp > 0 && !load_ladder(&j)) {
        free(j.ladder_path);
        return NNE_EXIT_RUNTIME;
    }
    if (!folder && is_dir(out))
        return cli_usage_error(j.cmd, "%s is a folder: give an output file name", out);
    if (folder && access(out, F_OK) == 0 && !is_dir(out))
        return cli_usage_error(j.cmd, "input %s is a folder, so -o must be a folder", in);
    if (j.json) {
        nne_json_init(&j.js, stdout, true);
        nne_json_array_begin(&j.js, NULL);
    }
    int rc;
    if (folder)
        rc = run_folder(&j, in, out);
    else
        rc = (compress ? compress_one(&j, in, out) : decompress_one(&j, in, out))
                 ? NNE_EXIT_OK
                 : NNE_EXIT_RUNTIME;
    if (j.json) {
        nne_json_array_end(&j.js);
        nne_json_finish(&j.js);
    }
    for (int i = 0; i < j.n_cached; i++) nne_lcodec_free(j.cache[i].c);
    free(j.ladder_path);
    return rc;
}

int nne_cmd_compress(int argc, char **argv) { return run(true, argc, argv); }
int nne_cmd_decompress(int argc, char **argv) { return run(false, argc, argv); }
