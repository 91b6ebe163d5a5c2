/* nnedge run: execute a quantized model on an image with an int8 backend: the reference
 * kernels (--backend cpu-s8) or the DPU's bit-exact functional simulator (--backend dpu-sim,
 * docs/dpu-isa.md "Simulator"); both write the same int8 output for a pow2 model. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nnedge/backend.h"
#include "nnedge/file.h"
#include "nnedge/image.h"
#include "nnedge/json.h"
#include "nnedge/qops.h"

static void help_run(void) {
    printf("usage: nnedge run MODEL|FILE.dpu --backend cpu-s8|dpu-sim --input IMAGE -o OUT\n\n"
           "Run a quantized s8 model on an image: on the int8 reference kernels (cpu-s8), or,\n"
           "for a power-of-two quantized model (or a program compiled from one by 'nnedge\n"
           "compile'), on the DPU's functional simulator (dpu-sim), bit-exact with cpu-s8.\n"
           "The image (PNG, PPM, PGM, JPEG) is quantized with the input's parameters:\n"
           "q = clamp(round(v / scale) + zero_point) with v = pixel / 255 (pow2: scale 2^-fp,\n"
           "round half up). A cae-seed model is rebuilt at the image's size (nne_quantize_like);\n"
           "other models and .dpu files need the image to have their input size. f32 models\n"
           "are refused (quantize them with 'nnedge quantize').\n\n"
           "options:\n"
           "  --backend B    cpu-s8 or dpu-sim\n"
           "  --input IMAGE  the input image\n"
           "  -o OUT         .npy: the int8 output [1][H][W][C] (NumPy format; scale and zero\n"
           "                 point in the JSON summary); .png / .pgm: its channels side by side\n"
           "                 as gray (code + 128); anything else: the raw int8 bytes (NHWC)\n"
           "  --part P       cae-seed: full (default: the whole model) or encoder\n"
           "  --arch A       dpu-sim: architecture when MODEL is compiled here (default B1024)\n"
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

/* What a backend produced: int8 codes [h][w][c] and their parameters. */
typedef struct run_result {
    int8_t *y;
    int32_t h, w, c;
    float scale;
    int32_t zero_point;
    bool pow2;
    nne_dpu_sim_stats st; /* dpu-sim */
    const char *arch;     /* dpu-sim */
} run_result;

/* pixel / 255 quantized with (scale, zero point), rounding per pow2 (nne_quantize_value). */
static nne_status quantize_image(const nne_image *img, float scale, int32_t zp, bool pow2,
                                 int8_t **x) {
    const size_t n = (size_t)img->width * img->height * img->channels;
    *x = nne_malloc(n ? n : 1);
    if (!*x) return NNE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        (*x)[i] =
            (int8_t)nne_quantize_value((float)img->data[i] / 255.0f, scale, zp, -128, 127, pow2);
    return NNE_OK;
}

static bool image_fits(const char *cmd, const char *input, const nne_image *img, const char *name,
                       int64_t h, int64_t w, int64_t c) {
    if (img->width == w && img->height == h && img->channels == c) return true;
    cli_error(cmd, "%s: %dx%d with %d channels; %s takes %lldx%lld with %lld", input, img->width,
              img->height, img->channels, name, (long long)w, (long long)h, (long long)c);
    return false;
}

static nne_status run_program(const nne_dpu_program *p, const nne_image *img, run_result *r) {
    int8_t *x = NULL;
    nne_status s = quantize_image(img, ldexpf(1.0f, -p->fp_input), 0, true, &x);
    const size_t n_out = p->region_size[NNE_DPU_REG_OUTPUT];
    if (!s) s = (r->y = nne_malloc(n_out ? n_out : 1)) ? NNE_OK : NNE_ERR_NOMEM;
    if (!s) s = nne_dpu_sim_run(p, x, p->region_size[NNE_DPU_REG_INPUT], r->y, n_out, &r->st);
    r->h = p->out_h, r->w = p->out_w, r->c = p->out_c;
    r->scale = ldexpf(1.0f, -p->fp_output);
    r->zero_point = 0;
    r->pow2 = true;
    r->arch = p->arch.name;
    nne_free(x);
    return s;
}

static nne_status run_cpu_s8(nne_graph *g, const nne_image *img, run_result *r) {
    nne_session *ss = NULL;
    nne_status s = nne_session_create(g, nne_backend_cpu_s8(), &ss);
    if (s) return s;
    const nne_tensor *ti = nne_session_input_tensor(ss, 0), *to = nne_session_output_tensor(ss, 0);
    int8_t *x = NULL;
    s = quantize_image(img, ti->quant.scale[0], ti->quant.zero_point[0], ti->quant.pow2, &x);
    if (!s) memcpy(nne_session_input(ss, 0), x, (size_t)nne_shape_numel(&ti->shape));
    if (!s) s = nne_session_run(ss);
    const size_t n_out = (size_t)nne_shape_numel(&to->shape);
    if (!s) s = (r->y = nne_malloc(n_out ? n_out : 1)) ? NNE_OK : NNE_ERR_NOMEM;
    if (!s) {
        memcpy(r->y, nne_session_output(ss, 0), n_out);
        const nne_shape *os = &to->shape;
        r->h = os->ndim == 4 ? (int32_t)os->dim[1] : 1;
        r->w = os->ndim == 4 ? (int32_t)os->dim[2] : 1;
        r->c = (int32_t)os->dim[os->ndim - 1];
        if ((size_t)r->h * r->w * r->c != n_out) r->h = 1, r->w = 1, r->c = (int32_t)n_out;
        r->scale = to->quant.scale[0];
        r->zero_point = to->quant.zero_point[0];
        r->pow2 = to->quant.pow2;
    }
    nne_free(x);
    nne_session_free(ss);
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
                               {"part", 0, true, &d.part, NULL},
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
    const bool dpu = backend && !strcmp(backend, "dpu-sim");
    if (!backend || (!dpu && strcmp(backend, "cpu-s8")))
        return cli_usage_error(k_cmd, "--backend %s: expected cpu-s8 or dpu-sim",
                               backend ? backend : "(missing)");
    if (!input) return cli_usage_error(k_cmd, "--input IMAGE is required");
    if (!co.output) return cli_usage_error(k_cmd, "-o OUT is required");
    if (cli_same_file(co.output, input) || cli_same_file(co.output, pos[0]))
        return cli_usage_error(k_cmd, "-o %s would overwrite an input", co.output);
    if (d.part && strcmp(d.part, "full") && strcmp(d.part, "encoder"))
        return cli_usage_error(k_cmd,
                               "--part '%s': expected full or encoder (the input is an "
                               "image)",
                               d.part);
    const bool program = cli_dpu_is_program_file(pos[0]);
    if (program && !dpu)
        return cli_usage_error(k_cmd, "%s is a DPU program: it runs on --backend dpu-sim", pos[0]);
    if (program && d.part) return cli_usage_error(k_cmd, "--part needs a model, not %s", pos[0]);
    if (!dpu && d.arch) return cli_usage_error(k_cmd, "--arch is for --backend dpu-sim");
    nne_dpu_arch a;
    nne_dpu_board b;
    int rc = cli_dpu_target(k_cmd, &d, &a, &b);
    if (rc) return rc;
    nne_dpu_program p;
    memset(&p, 0, sizeof p);
    nne_graph *g = NULL;
    nne_image img;
    memset(&img, 0, sizeof img);
    run_result r;
    memset(&r, 0, sizeof r);
    char name[256];
    nne_status s = NNE_OK;
    int64_t in_c = 3;
    snprintf(name, sizeof name, "%s", pos[0]);
    if (program) {
        if ((s = nne_dpu_program_read_file(pos[0], &p))) {
            rc = cli_fail(k_cmd, s);
            goto done;
        }
        in_c = p.in_c;
    } else {
        if ((s = cli_load_model(pos[0], &g)) || (s = nne_graph_infer(g))) {
            rc = cli_fail(k_cmd, s);
            goto done;
        }
        snprintf(name, sizeof name, "%s", g->name);
        const nne_shape *is = &g->tensors[g->inputs[0]].shape;
        in_c = is->ndim == 4 ? is->dim[3] : 0;
    }
    if (in_c != 1 && in_c != 3) {
        cli_error(k_cmd, "%s: input has %lld channels; images give 1 or 3", name, (long long)in_c);
        rc = NNE_EXIT_RUNTIME;
        goto done;
    }
    if ((s = nne_image_load(input, in_c == 3 ? NNE_IMAGE_LOAD_RGB : NNE_IMAGE_LOAD_ANY, &img))) {
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    if (!program) {
        /* cae-seed: the part at the image's size; anything else as it is. */
        const char *model = nne_graph_get_meta(g, "model");
        const bool cae = model && !strcmp(model, "cae-seed");
        if ((rc = cli_model_part(k_cmd, &g, d.part ? d.part : "full", cae ? img.height : 0,
                                 cae ? img.width : 0)))
            goto done;
        if (dpu) {
            nne_dpu_compile_opts o = {d.tiling && !strcmp(d.tiling, "uniform")
                                          ? NNE_DPU_TILING_UNIFORM
                                          : NNE_DPU_TILING_DYNAMIC,
                                      &b};
            if ((s = nne_dpu_compile(g, &a, &o, &p))) {
                rc = cli_fail(k_cmd, s);
                goto done;
            }
        }
    }
    if (dpu && (p.flags & NNE_DPU_PROGRAM_TIMING_ONLY)) {
        cli_error(k_cmd,
                  "%s is timing-only (an f32 model: no int8 parameters); run a power-of-two "
                  "quantized s8 model",
                  name);
        rc = NNE_EXIT_RUNTIME;
        goto done;
    }
    if (dpu ? !image_fits(k_cmd, input, &img, name, p.in_h, p.in_w, p.in_c)
            : !image_fits(k_cmd, input, &img, name, g->tensors[g->inputs[0]].shape.dim[1],
                          g->tensors[g->inputs[0]].shape.dim[2], in_c)) {
        rc = NNE_EXIT_RUNTIME;
        goto done;
    }
    s = dpu ? run_program(&p, &img, &r) : run_cpu_s8(g, &img, &r);
    if (s) {
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    const size_t n_out = (size_t)r.h * r.w * r.c;
    if (ends_with(co.output, ".npy"))
        s = write_npy(co.output, r.y, r.h, r.w, r.c);
    else if (ends_with(co.output, ".png") || ends_with(co.output, ".pgm"))
        s = write_mosaic(co.output, r.y, r.h, r.w, r.c);
    else
        s = nne_file_write_atomic(co.output, r.y, n_out);
    if (s) {
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    int32_t fp_out = 0;
    const bool has_fp = r.pow2 && nne_quant_pow2_shift(r.scale, &fp_out) == NNE_OK;
    if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "model", name);
        nne_json_string(&j, "backend", backend);
        if (dpu) nne_json_string(&j, "arch", r.arch);
        nne_json_string(&j, "output", co.output);
        nne_json_int(&j, "height", r.h);
        nne_json_int(&j, "width", r.w);
        nne_json_int(&j, "channels", r.c);
        nne_json_number(&j, "output_scale", r.scale, 9);
        nne_json_int(&j, "output_zero_point", r.zero_point);
        if (dpu) nne_json_int(&j, "fp_input", p.fp_input);
        if (has_fp) nne_json_int(&j, "fp_output", fp_out);
        if (dpu) {
            nne_json_int(&j, "instructions", (int64_t)r.st.instrs);
            nne_json_int(&j, "macs", (int64_t)r.st.macs);
            nne_json_int(&j, "load_bytes", (int64_t)r.st.load_bytes);
            nne_json_int(&j, "save_bytes", (int64_t)r.st.save_bytes);
        }
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else if (!co.quiet) {
        char m[32];
        printf("%s: %s on %s", co.output, name, backend);
        if (dpu) printf(" (%s)", r.arch);
        printf(", output %dx%dx%d int8", r.h, r.w, r.c);
        if (has_fp)
            printf(" at 2^-%d", fp_out);
        else
            printf(" (scale %g, zero point %d)", (double)r.scale, r.zero_point);
        if (dpu)
            printf(", %s MACs, %" PRIu64 " instructions",
                   cli_thousands((int64_t)r.st.macs, m, sizeof m), r.st.instrs);
        printf("\n");
    }
done:
    nne_free(r.y);
    nne_image_free(&img);
    nne_graph_free(g);
    nne_dpu_program_free(&p);
    return rc;
}
