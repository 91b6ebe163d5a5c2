/* nnedge run: execute a model on an image with a backend; today the DPU's bit-exact
 * functional simulator (--backend dpu-sim, docs/dpu-isa.md "Simulator"). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nnedge/file.h"
#include "nnedge/image.h"
#include "nnedge/json.h"
#include "nnedge/qops.h"

static void help_run(void) {
    printf("usage: nnedge run MODEL|FILE.dpu --backend dpu-sim --input IMAGE -o OUT\n\n"
           "Run a power-of-two quantized s8 model (or a program compiled from one by 'nnedge\n"
           "compile') on the DPU's functional simulator, bit-exact with the int8 reference\n"
           "kernels. The image (PNG, PPM, PGM, JPEG; its size must be the model's input size)\n"
           "is quantized to the input's fixed point: q = clamp(floor(v * 2^fp + 1/2)) with v\n"
           "= pixel / 255. f32 models compile to timing-only programs and are refused.\n\n"
           "options:\n"
           "  --backend B    dpu-sim (the only one so far)\n"
           "  --input IMAGE  the input image\n"
           "  -o OUT         .npy: the int8 output [1][H][W][C] (NumPy format, fixed point in\n"
           "                 the JSON summary); .png / .pgm: its channels side by side as gray\n"
           "                 (code + 128); anything else: the raw int8 bytes (NHWC)\n"
           "  --arch A       architecture when MODEL is compiled here (default B1024)\n"
           "  --json         print a JSON summary\n"
           "  -q             no notes on stderr\n"
           "  -h, --help     this help\n");
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* NumPy .npy version 1.0 of an int8 array [1][h][w][c]. */
static nne_status write_npy(const char *path, const int8_t *d, int h, int w, int c) {
    char hdr[128];
    int n =
        snprintf(hdr, sizeof hdr,
                 "{'descr': '|i1', 'fortran_order': False, 'shape': (1, %d, %d, %d), }", h, w, c);
    /* magic (6) + version (2) + length (2) + dict padded with spaces, ending in '\n', to a
     * multiple of 64 bytes */
    size_t total_hdr = ((size_t)10 + (size_t)n + 1 + 63) / 64 * 64;
    size_t size = total_hdr + (size_t)h * w * c;
    uint8_t *b = nne_malloc(size);
    if (!b) return NNE_ERR_NOMEM;
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)((total_hdr - 10) & 0xff);
    b[9] = (uint8_t)((total_hdr - 10) >> 8);
    memset(b + 10, ' ', total_hdr - 10);
    memcpy(b + 10, hdr, (size_t)n);
    b[total_hdr - 1] = '\n';
    memcpy(b + total_hdr, d, (size_t)h * w * c);
    nne_status s = nne_file_write_atomic(path, b, size);
    nne_free(b);
    return s;
}

/* The channels of [h][w][c] side by side (c tiles of w columns), gray = code + 128. */
static nne_status write_mosaic(const char *path, const int8_t *d, int h, int w, int c) {
    nne_image img;
    nne_status s = nne_image_alloc(&img, w * c, h, 1);
    if (s) return s;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                img.data[(size_t)y * w * c + (size_t)k * w + x] =
                    (uint8_t)(d[((size_t)y * w + x) * c + k] + 128);
    s = nne_image_save(path, &img);
    nne_image_free(&img);
    return s;
}

int nne_cmd_run(int argc, char **argv) {
    static const char *k_cmd = "run";
    cli_common co;
    cli_dpu_opts d;
    memset(&d, 0, sizeof d);
    const char *backend = NULL, *input = NULL;
    const cli_option opts[] = {{"backend", 0, true, &backend, NULL},
                               {"input", 'i', true, &input, NULL},
                               {"arch", 0, true, &d.arch, NULL},
                               {NULL, 0, false, NULL, NULL}};
    const char *pos[1];
    int n_pos;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help_run();
        return NNE_EXIT_OK;
    }
    d.quiet = co.quiet || co.json;
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one MODEL or FILE.dpu argument");
    if (!backend || strcmp(backend, "dpu-sim"))
        return cli_usage_error(k_cmd, "--backend %s: expected dpu-sim",
                               backend ? backend : "(missing)");
    if (!input) return cli_usage_error(k_cmd, "--input IMAGE is required");
    if (!co.output) return cli_usage_error(k_cmd, "-o OUT is required");
    if (cli_same_file(co.output, input) || cli_same_file(co.output, pos[0]))
        return cli_usage_error(k_cmd, "-o %s would overwrite an input", co.output);
    nne_dpu_arch a;
    nne_dpu_board b;
    int rc = cli_dpu_target(k_cmd, &d, &a, &b);
    if (rc) return rc;
    nne_dpu_program p;
    char name[256];
    if ((rc = cli_dpu_program(k_cmd, pos[0], &d, &a, &b, &p, name, sizeof name))) return rc;
    nne_image img;
    memset(&img, 0, sizeof img);
    int8_t *x = NULL, *y = NULL;
    nne_status s = NNE_OK;
    if (p.flags & NNE_DPU_PROGRAM_TIMING_ONLY) {
        cli_error(k_cmd,
                  "%s is timing-only (an f32 model: no int8 parameters); run a power-of-two "
                  "quantized s8 model",
                  name);
        rc = NNE_EXIT_RUNTIME;
        goto done;
    }
    if (p.in_c != 1 && p.in_c != 3) {
        cli_error(k_cmd, "%s: input has %u channels; images give 1 or 3", name, p.in_c);
        rc = NNE_EXIT_RUNTIME;
        goto done;
    }
    if ((s = nne_image_load(input, p.in_c == 3 ? NNE_IMAGE_LOAD_RGB : NNE_IMAGE_LOAD_ANY, &img))) {
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    if (img.width != p.in_w || img.height != p.in_h || img.channels != p.in_c) {
        cli_error(k_cmd, "%s: %dx%d with %d channels; %s takes %ux%u with %u", input, img.width,
                  img.height, img.channels, name, p.in_w, p.in_h, p.in_c);
        rc = NNE_EXIT_RUNTIME;
        goto done;
    }
    const size_t n_in = p.region_size[NNE_DPU_REG_INPUT], n_out = p.region_size[NNE_DPU_REG_OUTPUT];
    x = nne_malloc(n_in ? n_in : 1);
    y = nne_malloc(n_out ? n_out : 1);
    if (!x || !y) {
        rc = cli_fail(k_cmd, NNE_ERR_NOMEM);
        goto done;
    }
    /* pixel / 255 at 2^-fp_input, round half up (the DPU's pow2 rounding). */
    const float in_scale = ldexpf(1.0f, -p.fp_input);
    for (size_t i = 0; i < n_in; i++)
        x[i] =
            (int8_t)nne_quantize_value((float)img.data[i] / 255.0f, in_scale, 0, -128, 127, true);
    nne_dpu_sim_stats st;
    if ((s = nne_dpu_sim_run(&p, x, n_in, y, n_out, &st))) {
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    if (ends_with(co.output, ".npy"))
        s = write_npy(co.output, y, p.out_h, p.out_w, p.out_c);
    else if (ends_with(co.output, ".png") || ends_with(co.output, ".pgm"))
        s = write_mosaic(co.output, y, p.out_h, p.out_w, p.out_c);
    else
        s = nne_file_write_atomic(co.output, y, n_out);
    if (s) {
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "model", name);
        nne_json_string(&j, "backend", "dpu-sim");
        nne_json_string(&j, "arch", p.arch.name);
        nne_json_string(&j, "output", co.output);
        nne_json_int(&j, "height", p.out_h);
        nne_json_int(&j, "width", p.out_w);
        nne_json_int(&j, "channels", p.out_c);
        nne_json_int(&j, "fp_input", p.fp_input);
        nne_json_int(&j, "fp_output", p.fp_output);
        nne_json_int(&j, "instructions", (int64_t)st.instrs);
        nne_json_int(&j, "macs", (int64_t)st.macs);
        nne_json_int(&j, "load_bytes", (int64_t)st.load_bytes);
        nne_json_int(&j, "save_bytes", (int64_t)st.save_bytes);
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else if (!co.quiet) {
        char m[32];
        printf("%s: %s on dpu-sim (%s), output %ux%ux%u int8 at 2^-%d, %s MACs, %" PRIu64
               " instructions\n",
               co.output, name, p.arch.name, p.out_h, p.out_w, p.out_c, p.fp_output,
               cli_thousands((int64_t)st.macs, m, sizeof m), st.instrs);
    }
done:
    nne_free(x);
    nne_free(y);
    nne_image_free(&img);
    nne_dpu_program_free(&p);
    return rc;
}
