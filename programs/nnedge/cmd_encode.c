/* nnedge encode IN -o OUT.nnl: an image to the CAE paper's float latent, in the latent
 * container of docs/latent-format.md. Also the model lookup shared with decode and eval. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nnedge/codec.h"
#include "nnedge/file.h"
#include "nnedge/json.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"

static const char *const k_default_model = "models/cae-seed.nne";

bool cli_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool is_regular(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool cli_repo_dir(char *repo, size_t n) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return false;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0; /* the build directory */
    slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0; /* its parent: the repository */
    return (size_t)snprintf(repo, n, "%s", exe[0] ? exe : "/") < n;
}

bool cli_default_cae_model(const char *cmd, char *path, size_t n) {
    if (is_regular(k_default_model)) {
        snprintf(path, n, "%s", k_default_model);
        return true;
    }
    /* The repository the executable lives in: <repo>/<build dir>/nnedge. */
    char repo[PATH_MAX] = "";
    if (cli_repo_dir(repo, sizeof repo)) {
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof cand, "%s/%s", repo, k_default_model);
        if (is_regular(cand) && strlen(cand) < n) {
            snprintf(path, n, "%s", cand);
            return true;
        }
    }
    cli_error(cmd,
              "no --model given and no trained model found (looked for ./%s%s%s%s); "
              "pass --model FILE.nne, a cae-seed trained with 'nnedge train' (a built-in "
              "model has zero weights and is useless for compression)",
              k_default_model, repo[0] ? " and " : "", repo[0] ? repo : "",
              repo[0] ? "/models/cae-seed.nne" : "");
    return false;
}

bool cli_load_cae_codec(const char *cmd, const char *spec, nne_cae_codec **codec) {
    *codec = NULL;
    char found[PATH_MAX];
    if (!spec) {
        if (!cli_default_cae_model(cmd, found, sizeof found)) return false;
        spec = found;
    }
    if (!is_regular(spec)) {
        for (const char *const *b = nne_builtin_model_names(); *b; b++)
            if (!strcmp(*b, spec)) {
                cli_error(cmd,
                          "'%s' is a built-in model with zero weights; pass a trained model "
                          "file (.nne)",
                          spec);
                return false;
            }
    }
    nne_graph *g = NULL;
    nne_status s = nne_model_read_file(spec, &g);
    if (s) {
        cli_fail(cmd, s);
        return false;
    }
    s = nne_cae_codec_create(g, codec);
    nne_graph_free(g);
    if (s) {
        cli_error(cmd, "%s: %s: %s", spec, nne_status_str(s), nne_last_error());
        return false;
    }
    return true;
}

static void help(void) {
    printf("usage: nnedge encode IMAGE -o OUT.nnl [--model FILE.nne] [--compress none|zstd|xz]\n"
           "                        [--level N] [--json] [-q]\n\n"
           "Encode an image (PNG, PPM, PGM or JPEG; gray is replicated to RGB, alpha is refused)\n"
           "with the CAE paper's encoder to its float32 latent, and write it as a latent file\n"
           "(docs/latent-format.md). Any image of at least 21x21 pixels is accepted without\n"
           "padding: a 512x768 image gives a 62x94x32 latent (745,984 bytes, 0.6324 of its\n"
           "1,179,648 RGB bytes).\n\n"
           "options:\n"
           "  -o FILE          the latent file to write (atomically; never the input)\n"
           "  --model FILE     trained cae-seed model (default: models/cae-seed.nne in the\n"
           "                   current directory or in the nnedge repository)\n"
           "  --compress C     payload compression: none, zstd (default) or xz\n"
           "  --level N        zstd level 1..19 (default 19) or xz preset 0..9 (default 9)\n"
           "  --json           print a JSON summary\n"
           "  -q               print nothing\n"
           "  -h, --help       this help\n\n"
           "exit status: 0 success, 1 runtime error, 2 usage error\n");
}

int nne_cmd_encode(int argc, char **argv) {
    const char *cmd = "encode";
    cli_common co;
    const char *model = NULL, *compress = "zstd", *level_s = NULL;
    const cli_option opts[] = {
        {"model", 'm', true, &model, NULL},
        {"compress", 'c', true, &compress, NULL},
        {"level", 0, true, &level_s, NULL},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[1];
    int n_pos;
    if (!cli_parse(cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    if (n_pos != 1) return cli_usage_error(cmd, "expected one input image");
    if (!co.output) return cli_usage_error(cmd, "missing -o OUT.nnl");
    nne_latent_compression comp;
    if (nne_latent_compression_from_name(compress, &comp))
        return cli_usage_error(cmd, "--compress: %s", nne_last_error());
    int level = NNE_LATENT_LEVEL_DEFAULT;
    if (level_s) {
        const int hi = comp == NNE_LATENT_XZ ? 9 : NNE_LATENT_ZSTD_MAX_LEVEL;
        const int lo = comp == NNE_LATENT_XZ ? 0 : 1;
        if (comp == NNE_LATENT_NONE)
            return cli_usage_error(cmd, "--level needs --compress zstd or xz");
        int64_t lv;
        if (!cli_parse_i64(level_s, lo, hi, &lv))
            return cli_usage_error(cmd, "--level '%s': expected %d..%d for %s", level_s, lo, hi,
                                   compress);
        level = (int)lv;
    }
    const char *in = pos[0], *out = co.output;
    if (cli_same_file(in, out)) {
        cli_error(cmd, "%s: refusing to overwrite the input", out);
        return NNE_EXIT_RUNTIME;
    }

    int rc = NNE_EXIT_RUNTIME;
    nne_image img = {0};
    nne_cae_codec *codec = NULL;
    nne_latent lat = {0};
    uint8_t *bytes = NULL;
    size_t nbytes = 0;
    nne_status s = nne_image_load(in, NNE_IMAGE_LOAD_RGB, &img);
    if (s) {
        rc = cli_fail(cmd, s);
        goto done;
    }
    int32_t lh, lw, lc;
    if ((s = nne_cae_latent_shape(img.height, img.width, &lh, &lw, &lc)) ||
        (s = nne_cae_latent_shape(nne_cae_coded_size(img.height), nne_cae_coded_size(img.width),
                                  &lh, &lw, &lc))) {
        cli_error(cmd, "%s: %s", in, nne_last_error());
        goto done;
    }
    if (!cli_load_cae_codec(cmd, model, &codec)) goto done;
    if ((s = nne_cae_encode(codec, &img, &lat))) {
        cli_error(cmd, "%s: %s", in, nne_last_error());
        goto done;
    }
    if ((s = nne_latent_write_mem(&lat, comp, level, &bytes, &nbytes)) ||
        (s = nne_file_write_atomic(out, bytes, nbytes))) {
        rc = cli_fail(cmd, s);
        goto done;
    }
    const double raw = (double)lh * lw * lc * 4.0, rgb = (double)img.width * img.height * 3.0;
    char hex[2 * NNE_LATENT_HASH_SIZE + 1], c1[32], c2[32];
    nne_latent_hash_hex(lat.model_hash, hex);
    if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "input", in);
        nne_json_string(&j, "output", out);
        nne_json_int(&j, "width", img.width);
        nne_json_int(&j, "height", img.height);
        nne_json_array_begin(&j, "latent_shape");
        nne_json_int(&j, NULL, lh);
        nne_json_int(&j, NULL, lw);
        nne_json_int(&j, NULL, lc);
        nne_json_array_end(&j);
        nne_json_int(&j, "latent_bytes", (int64_t)raw);
        nne_json_int(&j, "rgb_bytes", (int64_t)rgb);
        nne_json_number(&j, "raw_ratio", raw / rgb, 6);
        nne_json_string(&j, "compression", nne_latent_compression_name(comp));
        nne_json_int(&j, "file_bytes", (int64_t)nbytes);
        nne_json_string(&j, "model", lat.model_id);
        nne_json_string(&j, "weights_sha256", hex);
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else if (!co.quiet) {
        printf("%s: %dx%d -> latent %dx%dx%d f32 (%s bytes, %.4f of RGB8)\n", in, (int)img.width,
               (int)img.height, (int)lh, (int)lw, (int)lc,
               cli_thousands((int64_t)raw, c1, sizeof c1), raw / rgb);
        printf("%s: %s bytes (%s), model %s weights sha256 %.16s\n", out,
               cli_thousands((int64_t)nbytes, c2, sizeof c2), nne_latent_compression_name(comp),
               lat.model_id, hex);
    }
    rc = NNE_EXIT_OK;
done:
    nne_free(bytes);
    nne_latent_free(&lat);
    nne_cae_codec_free(codec);
    nne_image_free(&img);
    return rc;
}
