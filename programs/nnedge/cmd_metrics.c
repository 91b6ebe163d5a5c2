/* nnedge metrics A B: image quality of B against reference A (MSE, PSNR, SSIM, MS-SSIM).
 * Definitions in docs/metrics.md. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "nnedge/image.h"
#include "nnedge/json.h"
#include "nnedge/metrics.h"

static const char *const metrics_usage =
    "usage: nnedge metrics [options] REFERENCE DISTORTED\n"
    "\n"
    "Compare two images of the same size (PNG, PPM or PGM, 8 bits) and print\n"
    "MSE, PSNR (dB), SSIM and MS-SSIM, as CompressAI computes them: over all\n"
    "channels, 8-bit data range 255 (definitions: docs/metrics.md).\n"
    "MS-SSIM needs both sides > 160 pixels; it is reported as n/a (null) otherwise.\n"
    "\n"
    "Both images must have the same channels (gray, gray+alpha, RGB or RGBA);\n"
    "alpha is compared like any other channel unless --drop-alpha is given.\n"
    "\n"
    "options:\n"
    "  --json        print one JSON object on stdout\n"
    "  --drop-alpha  discard the alpha channel of both images before comparing\n"
    "  -q            print nothing; the exit status tells success\n"
    "  -h, --help    show this help\n"
    "\n"
    "exit status: 0 success, 1 runtime error (unreadable file, size mismatch),\n"
    "2 usage error\n";

static const char *channels_name(int32_t channels) {
    switch (channels) {
    case 1:
        return "gray";
    case 2:
        return "gray+alpha";
    case 3:
        return "RGB";
    case 4:
        return "RGBA";
    default:
        return "?";
    }
}

static void print_table(FILE *f, const nne_quality *q) {
    fprintf(f, "MSE      %12.6f\n", q->mse);
    if (isinf(q->psnr))
        fprintf(f, "PSNR     %12s dB\n", "inf");
    else
        fprintf(f, "PSNR     %12.6f dB\n", q->psnr);
    fprintf(f, "SSIM     %12.8f\n", q->ssim);
    if (isnan(q->ms_ssim))
        fprintf(f, "MS-SSIM  %12s (image smaller than 161 pixels)\n", "n/a");
    else
        fprintf(f, "MS-SSIM  %12.8f\n", q->ms_ssim);
}

static void print_json(FILE *f, const char *path_a, const char *path_b, const nne_image *a,
                       const nne_quality *q) {
    nne_json j;
    nne_json_init(&j, f, true);
    nne_json_object_begin(&j, NULL);
    nne_json_string(&j, "reference", path_a);
    nne_json_string(&j, "distorted", path_b);
    nne_json_int(&j, "width", a->width);
    nne_json_int(&j, "height", a->height);
    nne_json_int(&j, "channels", a->channels);
    nne_json_double(&j, "mse", q->mse);
    /* JSON has no infinity: identical images give "psnr": null with "identical": true. */
    nne_json_double(&j, "psnr", q->psnr);
    nne_json_double(&j, "ssim", q->ssim);
    nne_json_double(&j, "ms_ssim", q->ms_ssim); /* null when the image is too small */
    nne_json_bool(&j, "identical", q->mse == 0.0);
    nne_json_object_end(&j);
    nne_json_finish(&j);
}

int nne_cmd_metrics(int argc, char **argv) {
    const char *cmd = "metrics";
    cli_common common;
    bool drop_alpha = false;
    const cli_option extra[] = {
        {"drop-alpha", 0, false, NULL, &drop_alpha},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[2];
    int n_pos = 0;
    if (!cli_parse(cmd, argc, argv, &common, extra, pos, 2, &n_pos)) return NNE_EXIT_USAGE;
    if (common.help) {
        fputs(metrics_usage, stdout);
        return NNE_EXIT_OK;
    }
    if (common.output) return cli_usage_error(cmd, "-o is not supported; results go to stdout");
    if (n_pos != 2)
        return cli_usage_error(cmd, "expected 2 images (reference and distorted), got %d", n_pos);

    const int flags = drop_alpha ? NNE_IMAGE_LOAD_DROP_ALPHA : NNE_IMAGE_LOAD_ANY;
    nne_image a = {0}, b = {0};
    int rc = NNE_EXIT_RUNTIME;
    nne_status st = nne_image_load(pos[0], flags, &a);
    if (st != NNE_OK) {
        rc = cli_fail(cmd, st);
        goto done;
    }
    st = nne_image_load(pos[1], flags, &b);
    if (st != NNE_OK) {
        rc = cli_fail(cmd, st);
        goto done;
    }
    if (a.width != b.width || a.height != b.height) {
        cli_error(cmd, "size mismatch: %s is %dx%d, %s is %dx%d", pos[0], (int)a.width,
                  (int)a.height, pos[1], (int)b.width, (int)b.height);
        goto done;
    }
    if (a.channels != b.channels) {
        bool alpha = a.channels == 2 || a.channels == 4 || b.channels == 2 || b.channels == 4;
        cli_error(cmd, "channel mismatch: %s is %s, %s is %s%s", pos[0], channels_name(a.channels),
                  pos[1], channels_name(b.channels),
                  alpha && !drop_alpha ? " (try --drop-alpha)" : "");
        goto done;
    }
    nne_quality q;
    st = nne_quality_u8(a.data, b.data, a.width, a.height, a.channels, &q);
    if (st != NNE_OK) {
        rc = cli_fail(cmd, st);
        goto done;
    }
    if (!common.quiet) {
        if (common.json)
            print_json(stdout, pos[0], pos[1], &a, &q);
        else
            print_table(stdout, &q);
    }
    rc = NNE_EXIT_OK;
done:
    nne_image_free(&a);
    nne_image_free(&b);
    return rc;
}
