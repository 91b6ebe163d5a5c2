/* nnedge decode IN.nnl -o OUT.png: a latent file back to an image with the model that
 * encoded it (docs/latent-format.md). */
#include <string.h>

#include "cli.h"
#include "nnedge/codec.h"
#include "nnedge/json.h"

static void help(void) {
    printf("usage: nnedge decode LATENT.nnl -o OUT.png [--model FILE.nne] [--json] [-q]\n\n"
           "Decode a latent file written by 'nnedge encode' to an RGB image of the original\n"
           "size: the CAE decoder's output is clamped to [0, 1] and rounded to 8 bits.\n"
           "The model must be the one that encoded the file: its weight hash is checked.\n\n"
           "options:\n"
           "  -o FILE        the image to write, .png or .ppm (atomically; never the input)\n"
           "  --model FILE   trained cae-seed model (default: models/cae-seed.nne in the\n"
           "                 current directory or in the nnedge repository)\n"
           "  --json         print a JSON summary\n"
           "  -q             print nothing\n"
           "  -h, --help     this help\n\n"
           "exit status: 0 success, 1 runtime error, 2 usage error\n");
}

int nne_cmd_decode(int argc, char **argv) {
    const char *cmd = "decode";
    cli_common co;
    const char *model = NULL;
    const cli_option opts[] = {
        {"model", 'm', true, &model, NULL},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[1];
    int n_pos;
    if (!cli_parse(cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    if (n_pos != 1) return cli_usage_error(cmd, "expected one latent file");
    if (!co.output) return cli_usage_error(cmd, "missing -o OUT.png");
    const char *in = pos[0], *out = co.output;
    const nne_image_format fmt = nne_image_format_from_path(out);
    if (fmt != NNE_IMAGE_FORMAT_PNG && fmt != NNE_IMAGE_FORMAT_PPM)
        return cli_usage_error(cmd, "-o %s: the output must be a .png or .ppm file", out);
    if (cli_same_file(in, out)) {
        cli_error(cmd, "%s: refusing to overwrite the input", out);
        return NNE_EXIT_RUNTIME;
    }

    int rc = NNE_EXIT_RUNTIME;
    nne_latent lat = {0};
    nne_latent_info info;
    nne_cae_codec *codec = NULL;
    nne_image img = {0};
    nne_status s = nne_latent_read_file(in, &lat, &info);
    if (s) {
        rc = cli_fail(cmd, s);
        goto done;
    }
    if (!cli_load_cae_codec(cmd, model, &codec)) goto done;
    if ((s = nne_cae_decode(codec, &lat, &img))) {
        cli_error(cmd, "%s: %s", in, nne_last_error());
        goto done;
    }
    if ((s = nne_image_save(out, &img))) {
        rc = cli_fail(cmd, s);
        goto done;
    }
    if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "input", in);
        nne_json_string(&j, "output", out);
        nne_json_int(&j, "width", img.width);
        nne_json_int(&j, "height", img.height);
        nne_json_array_begin(&j, "latent_shape");
        nne_json_int(&j, NULL, lat.height);
        nne_json_int(&j, NULL, lat.width);
        nne_json_int(&j, NULL, lat.channels);
        nne_json_array_end(&j);
        nne_json_string(&j, "compression", nne_latent_compression_name(info.compression));
        nne_json_int(&j, "file_bytes", (int64_t)info.file_size);
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else if (!co.quiet) {
        printf("%s: latent %dx%dx%d (%s) -> %s: %dx%d RGB\n", in, (int)lat.height, (int)lat.width,
               (int)lat.channels, nne_latent_compression_name(info.compression), out,
               (int)img.width, (int)img.height);
    }
    rc = NNE_EXIT_OK;
done:
    nne_image_free(&img);
    nne_cae_codec_free(codec);
    nne_latent_free(&lat);
    return rc;
}
