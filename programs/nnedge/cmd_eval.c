/* nnedge eval --model M --data DIR: the CAE paper's evaluation (its Section 6 and Figure 6)
 * on a folder of test images. Per image: PSNR and MS-SSIM of the reconstruction decoded from
 * the written latent file, the raw ratio of the float latent against RGB8, the size of the
 * latent file with zstd (level 19) and xz (preset 9), and libjpeg-turbo at quality 90 (size,
 * PSNR, MS-SSIM) beside it; then the means. With -o DIR: eval.csv, eval.json, eval.md and
 * figure6.svg. A quantized model (nnedge quantize) runs whole on the cpu-s8 backend instead:
 * its latent is int8 and has no latent file, so the zstd and xz columns are n/a. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "nnedge/backend.h"
#include "nnedge/codec.h"
#include "nnedge/dataset.h"
#include "nnedge/file.h"
#include "nnedge/json.h"
#include "nnedge/metrics.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"
#include "nnedge/svg.h"

static const char *const k_cmd = "eval";

/* The paper's numbers, for the footnotes (CAE paper, Section 6). */
static const char *const k_ratio_note =
    "raw ratio = latent float32 bytes / RGB8 bytes; for 512x768: 62x94x32x4 / (512x768x3) = "
    "745,984 / 1,179,648 = 0.6324. The paper prints 0.6356 because its formula divides by "
    "764x512x3, a typo for 768 (745,984 / 1,173,504 = 0.6357, truncated to 0.6356).";
static const char *const k_size_note =
    "zstd and xz: size of the whole latent file (.nnl, 160-byte header included) with the "
    "payload compressed by zstd level 19 or xz preset 9; the paper used 7zip and reports "
    "108.4 kB for the latent against 172.1 kB for JPEG at 90% quality (ratio 0.6298).";
static const char *const k_s8_note =
    "int8 model on the cpu-s8 backend: the image is reconstructed by the whole quantized model "
    "(rebuilt at its size, nne_quantize_like); the raw ratio counts the int8 latent (1 byte per "
    "value); there is no int8 latent file, so zstd, xz and xz / JPEG are n/a.";

typedef struct eval_row {
    char name[128]; /* file name without directory and extension */
    int32_t width, height;
    int32_t lh, lw, lc;
    nne_quality q;  /* reconstruction against the original */
    nne_quality jq; /* JPEG against the original */
    int64_t raw_bytes, rgb_bytes, zstd_bytes, xz_bytes, jpeg_bytes; /* zstd, xz: -1 = n/a */
} eval_row;

typedef struct eval_mean {
    double psnr, ms_ssim, raw_ratio, zstd_bytes, xz_bytes, jpeg_bytes, jpeg_psnr, jpeg_ms_ssim,
        xz_to_jpeg;
} eval_mean;

/* Mean over the finite values (NaN if none). */
static double mean_of(const eval_row *r, int n, double (*get)(const eval_row *)) {
    double sum = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        double v = get(&r[i]);
        if (isfinite(v)) {
            sum += v;
            k++;
        }
    }
    return k ? sum / k : NAN;
}
static double g_psnr(const eval_row *r) { return r->q.psnr; }
static double g_msssim(const eval_row *r) { return r->q.ms_ssim; }
static double g_ratio(const eval_row *r) { return (double)r->raw_bytes / (double)r->rgb_bytes; }
static double g_zstd(const eval_row *r) { return r->zstd_bytes < 0 ? NAN : (double)r->zstd_bytes; }
static double g_xz(const eval_row *r) { return r->xz_bytes < 0 ? NAN : (double)r->xz_bytes; }
static double g_jpeg(const eval_row *r) { return (double)r->jpeg_bytes; }
static double g_jpsnr(const eval_row *r) { return r->jq.psnr; }
static double g_jmsssim(const eval_row *r) { return r->jq.ms_ssim; }
static double g_xzjpeg(const eval_row *r) { return g_xz(r) / (double)r->jpeg_bytes; }

static eval_mean means(const eval_row *r, int n) {
    eval_mean m = {mean_of(r, n, g_psnr),  mean_of(r, n, g_msssim),  mean_of(r, n, g_ratio),
                   mean_of(r, n, g_zstd),  mean_of(r, n, g_xz),      mean_of(r, n, g_jpeg),
                   mean_of(r, n, g_jpsnr), mean_of(r, n, g_jmsssim), mean_of(r, n, g_xzjpeg)};
    return m;
}

typedef struct eval_ctx {
    const char *model, *data;
    bool s8;                                 /* int8 model on cpu-s8 */
    const char *backend;                     /* "cpu", "cpu-bf16" or "cpu-s8" */
    char hash[2 * NNE_LATENT_HASH_SIZE + 1]; /* f32: the codec's weights hash */
    int jpeg_quality;
    const eval_row *rows;
    int n;
} eval_ctx;

/* ---- Writers ---------------------------------------------------------------------------- */

static void json_quality(nne_json *j, const char *psnr_key, const char *msssim_key,
                         const nne_quality *q) {
    nne_json_number(j, psnr_key, q->psnr, 4); /* null if infinite (identical) or NaN */
    nne_json_number(j, msssim_key, q->ms_ssim, 6);
}

static void write_json(FILE *f, const eval_ctx *c) {
    nne_json j;
    nne_json_init(&j, f, true);
    nne_json_object_begin(&j, NULL);
    nne_json_string(&j, "model", c->model);
    nne_json_string(&j, "backend", c->backend);
    if (!c->s8) nne_json_string(&j, "weights_sha256", c->hash);
    nne_json_string(&j, "data", c->data);
    nne_json_int(&j, "jpeg_quality", c->jpeg_quality);
    nne_json_string(&j, "zstd", "level 19, whole .nnl file");
    nne_json_string(&j, "xz", "preset 9, whole .nnl file");
    nne_json_array_begin(&j, "images");
    for (int i = 0; i < c->n; i++) {
        const eval_row *r = &c->rows[i];
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "image", r->name);
        nne_json_int(&j, "width", r->width);
        nne_json_int(&j, "height", r->height);
        nne_json_array_begin(&j, "latent_shape");
        nne_json_int(&j, NULL, r->lh);
        nne_json_int(&j, NULL, r->lw);
        nne_json_int(&j, NULL, r->lc);
        nne_json_array_end(&j);
        json_quality(&j, "psnr", "ms_ssim", &r->q);
        nne_json_int(&j, "latent_bytes", r->raw_bytes);
        nne_json_int(&j, "rgb_bytes", r->rgb_bytes);
        nne_json_number(&j, "raw_ratio", g_ratio(r), 6);
        nne_json_number(&j, "nnl_zstd_bytes", g_zstd(r), 0);
        nne_json_number(&j, "nnl_xz_bytes", g_xz(r), 0);
        nne_json_int(&j, "jpeg_bytes", r->jpeg_bytes);
        json_quality(&j, "jpeg_psnr", "jpeg_ms_ssim", &r->jq);
        nne_json_number(&j, "xz_to_jpeg", g_xzjpeg(r), 4);
        nne_json_object_end(&j);
    }
    nne_json_array_end(&j);
    const eval_mean m = means(c->rows, c->n);
    nne_json_object_begin(&j, "mean");
    nne_json_number(&j, "psnr", m.psnr, 4);
    nne_json_number(&j, "ms_ssim", m.ms_ssim, 6);
    nne_json_number(&j, "raw_ratio", m.raw_ratio, 6);
    nne_json_number(&j, "nnl_zstd_bytes", m.zstd_bytes, 1);
    nne_json_number(&j, "nnl_xz_bytes", m.xz_bytes, 1);
    nne_json_number(&j, "jpeg_bytes", m.jpeg_bytes, 1);
    nne_json_number(&j, "jpeg_psnr", m.jpeg_psnr, 4);
    nne_json_number(&j, "jpeg_ms_ssim", m.jpeg_ms_ssim, 6);
    nne_json_number(&j, "xz_to_jpeg", m.xz_to_jpeg, 4);
    nne_json_object_end(&j);
    nne_json_object_begin(&j, "notes");
    nne_json_string(&j, "raw_ratio", k_ratio_note);
    nne_json_string(&j, "sizes", k_size_note);
    if (c->s8) nne_json_string(&j, "int8", k_s8_note);
    nne_json_object_end(&j);
    nne_json_object_end(&j);
    nne_json_finish(&j);
}

static void write_csv(FILE *f, const eval_ctx *c) {
    char b[9][48];
    fprintf(f, "image,width,height,latent_h,latent_w,latent_c,psnr,ms_ssim,latent_bytes,rgb_bytes,"
               "raw_ratio,nnl_zstd_bytes,nnl_xz_bytes,jpeg_quality,jpeg_bytes,jpeg_psnr,"
               "jpeg_ms_ssim,xz_to_jpeg\n");
    for (int i = 0; i < c->n; i++) {
        const eval_row *r = &c->rows[i];
        cli_csv_field(f, r->name);
        fprintf(f, ",%d,%d,%d,%d,%d,%s,%s,%lld,%lld,%s,%s,%s,%d,%lld,%s,%s,%s\n", (int)r->width,
                (int)r->height, (int)r->lh, (int)r->lw, (int)r->lc,
                cli_fmtd(b[0], 48, r->q.psnr, 4, ""), cli_fmtd(b[1], 48, r->q.ms_ssim, 6, ""),
                (long long)r->raw_bytes, (long long)r->rgb_bytes,
                cli_fmtd(b[2], 48, g_ratio(r), 6, ""), cli_fmtd(b[6], 48, g_zstd(r), 0, ""),
                cli_fmtd(b[7], 48, g_xz(r), 0, ""), c->jpeg_quality, (long long)r->jpeg_bytes,
                cli_fmtd(b[3], 48, r->jq.psnr, 4, ""), cli_fmtd(b[4], 48, r->jq.ms_ssim, 6, ""),
                cli_fmtd(b[5], 48, g_xzjpeg(r), 4, ""));
    }
    const eval_mean m = means(c->rows, c->n);
    fprintf(f, "mean,,,,,,%s,%s,,,%s,%s,%s,%d,%s,%s,%s,%s\n", cli_fmtd(b[0], 48, m.psnr, 4, ""),
            cli_fmtd(b[1], 48, m.ms_ssim, 6, ""), cli_fmtd(b[2], 48, m.raw_ratio, 6, ""),
            cli_fmtd(b[3], 48, m.zstd_bytes, 1, ""), cli_fmtd(b[4], 48, m.xz_bytes, 1, ""), c->jpeg_quality,
            cli_fmtd(b[5], 48, m.jpeg_bytes, 1, ""), cli_fmtd(b[6], 48, m.jpeg_psnr, 4, ""),
            cli_fmtd(b[7], 48, m.jpeg_ms_ssim, 6, ""), cli_fmtd(b[8], 48, m.xz_to_jpeg, 4, ""));
}

/* The table on stdout and in eval.md share their rows; `md` selects the markdown form. */
static void write_table(FILE *f, const eval_ctx *c, bool md) {
    char b[10][48];
    char jl[32];
    snprintf(jl, sizeof jl, "JPEG q%d", c->jpeg_quality);
    if (md) {
        fprintf(f, "# nnedge eval: cae-seed on `%s`\n\n", c->data);
        if (c->s8)
            fprintf(f, "Model `%s`, int8 on the cpu-s8 backend [3]", c->model);
        else
            fprintf(f, "Model `%s` (weights sha256 `%.16s...`) on the %s backend", c->model,
                    c->hash, c->backend);
        fprintf(f, "; JPEG: libjpeg-turbo at quality %d (4:2:0). Sizes in kB (1000 bytes).\n\n",
                c->jpeg_quality);
        fprintf(f,
                "| image | size | PSNR (dB) | MS-SSIM | raw ratio [1] | zstd (kB) [2] | xz "
                "(kB) [2] | %s (kB) | %s PSNR | %s MS-SSIM | xz / JPEG |\n",
                jl, jl, jl);
        fprintf(f, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    } else {
        fprintf(f, "%-14s %9s %9s %8s %9s %9s %9s %9s %9s %9s %9s\n", "image", "size", "PSNR",
                "MS-SSIM", "raw-ratio", "zstd-kB", "xz-kB", "JPEG-kB", "JPEG-PSNR", "JPEG-MSS",
                "xz/JPEG");
    }
    for (int i = 0; i <= c->n; i++) {
        const bool mean = i == c->n;
        const eval_row *r = mean ? NULL : &c->rows[i];
        const eval_mean m = mean ? means(c->rows, c->n) : (eval_mean){0};
        char size[32];
        if (mean)
            snprintf(size, sizeof size, "%s", "");
        else
            snprintf(size, sizeof size, "%dx%d", (int)r->width, (int)r->height);
        cli_fmtd(b[0], 48, mean ? m.psnr : r->q.psnr, 2, "n/a");
        cli_fmtd(b[1], 48, mean ? m.ms_ssim : r->q.ms_ssim, 4, "n/a");
        cli_fmtd(b[2], 48, mean ? m.raw_ratio : g_ratio(r), 4, "n/a");
        cli_fmtd(b[3], 48, (mean ? m.zstd_bytes : g_zstd(r)) / 1000.0, 1, "n/a");
        cli_fmtd(b[4], 48, (mean ? m.xz_bytes : g_xz(r)) / 1000.0, 1, "n/a");
        cli_fmtd(b[5], 48, (mean ? m.jpeg_bytes : (double)r->jpeg_bytes) / 1000.0, 1, "n/a");
        cli_fmtd(b[6], 48, mean ? m.jpeg_psnr : r->jq.psnr, 2, "n/a");
        cli_fmtd(b[7], 48, mean ? m.jpeg_ms_ssim : r->jq.ms_ssim, 4, "n/a");
        cli_fmtd(b[8], 48, mean ? m.xz_to_jpeg : g_xzjpeg(r), 3, "n/a");
        const char *name = mean ? "mean" : r->name;
        if (md)
            fprintf(f, "| %s%s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                    mean ? "**" : "", name, mean ? "**" : "", size, b[0], b[1], b[2], b[3], b[4],
                    b[5], b[6], b[7], b[8]);
        else
            fprintf(f, "%-14.14s %9s %9s %8s %9s %9s %9s %9s %9s %9s %9s\n", name, size, b[0], b[1],
                    b[2], b[3], b[4], b[5], b[6], b[7], b[8]);
    }
    if (md) {
        fprintf(f, "\n[1] %s\n\n[2] %s\n\n", k_ratio_note, k_size_note);
        if (c->s8) fprintf(f, "[3] %s\n\n", k_s8_note);
        fprintf(f, "![Figure 6](figure6.svg)\n");
    } else {
        fprintf(f,
                "\n[raw-ratio] %s\n[zstd, xz] %s\nkB = 1000 bytes; JPEG: libjpeg-turbo, "
                "quality %d, 4:2:0.\n",
                k_ratio_note, k_size_note, c->jpeg_quality);
        if (c->s8) fprintf(f, "[int8] %s\n", k_s8_note);
    }
}

/* Figure 6: (a) PSNR and (b) MS-SSIM per image, JPEG as markers, the mean as a line. */
static nne_status write_svg(const eval_ctx *c, char **out, size_t *size) {
    const double w = c->n > 30 ? 40.0 + 24.0 * c->n : 900.0, ph = 330.0;
    nne_svg *svg;
    nne_status s = nne_svg_begin(w, 2 * ph + 40, &svg);
    if (s) return s;
    const char **labels = nne_calloc((size_t)c->n, sizeof *labels);
    double *v = nne_calloc((size_t)c->n * 4, sizeof *v);
    if (!labels || !v) {
        nne_free(labels);
        nne_free(v);
        nne_svg_free(svg);
        return NNE_ERR_NOMEM;
    }
    bool any_msssim = false;
    for (int i = 0; i < c->n; i++) {
        labels[i] = c->rows[i].name;
        v[i] = c->rows[i].q.psnr;
        v[c->n + i] = c->rows[i].jq.psnr;
        v[2 * c->n + i] = c->rows[i].q.ms_ssim;
        v[3 * c->n + i] = c->rows[i].jq.ms_ssim;
        any_msssim |= isfinite(v[2 * c->n + i]) || isfinite(v[3 * c->n + i]);
    }
    const eval_mean m = means(c->rows, c->n);
    char jl[32], ref_a[64], ref_b[64], head[256];
    snprintf(jl, sizeof jl, "JPEG q%d", c->jpeg_quality);
    snprintf(ref_a, sizeof ref_a, "mean %.2f dB", m.psnr);
    snprintf(ref_b, sizeof ref_b, "mean %.4f", m.ms_ssim);
    snprintf(head, sizeof head, "Figure 6: compression quality of cae-seed per image (%d images)",
             c->n);
    nne_svg_text(svg, w / 2, 22, head, 16, "middle", 0);
    nne_bar_chart a = {0};
    a.title = "(a) PSNR values";
    a.y_label = "PSNR (dB)";
    a.n = c->n;
    a.labels = labels;
    a.values = v;
    a.bar_label = "cae-seed";
    a.markers = v + c->n;
    a.marker_label = jl;
    a.reference = m.psnr;
    a.reference_label = ref_a;
    a.decimals = 0;
    nne_bar_chart b = a;
    b.title = "(b) MS-SSIM values";
    b.y_label = "MS-SSIM";
    b.values = v + 2 * c->n;
    b.markers = v + 3 * c->n;
    b.reference = m.ms_ssim;
    b.reference_label = ref_b;
    b.decimals = 2;
    b.zoom = true; /* values crowd below 1: start the axis just under the smallest */
    if (!any_msssim) {
        b.y_min = 0; /* nothing to show (images too small for MS-SSIM): a fixed empty axis */
        b.y_max = 1;
    }
    s = nne_svg_bar_chart(svg, &a, 0, 34, w, ph);
    if (!s) s = nne_svg_bar_chart(svg, &b, 0, 34 + ph, w, ph);
    nne_free(labels);
    nne_free(v);
    if (s) {
        nne_svg_free(svg);
        return s;
    }
    return nne_svg_finish(svg, out, size);
}

/* Write dir/name with a renderer (cli_write_report). */
static bool save_report(const char *dir, const char *name, void (*fn)(FILE *, const void *),
                        const eval_ctx *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cli_write_report(k_cmd, path, fn, c);
}

static void write_md(FILE *f, const void *c) { write_table(f, c, true); }
static void write_csv_v(FILE *f, const void *c) { write_csv(f, c); }
static void write_json_v(FILE *f, const void *c) { write_json(f, c); }

static bool write_reports(const char *dir, const eval_ctx *c) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        char eb[128];
        cli_error(k_cmd, "%s: cannot create the report directory: %s", dir,
                  nne_errno_str(errno, eb, sizeof eb));
        return false;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error(k_cmd, "%s: not a directory", dir);
        return false;
    }
    if (!save_report(dir, "eval.csv", write_csv_v, c) ||
        !save_report(dir, "eval.json", write_json_v, c) ||
        !save_report(dir, "eval.md", write_md, c))
        return false;
    char *svg;
    size_t n;
    nne_status s = write_svg(c, &svg, &n);
    char path[4096];
    snprintf(path, sizeof path, "%s/figure6.svg", dir);
    if (!s) {
        s = nne_file_write_atomic(path, svg, n);
        nne_free(svg);
    }
    if (s) {
        cli_error(k_cmd, "%s: %s: %s", path, nne_status_str(s), nne_last_error());
        return false;
    }
    return true;
}

/* ---- One image ---------------------------------------------------------------------------- */

/* Encode, write the latent with zstd and xz, decode what xz wrote, measure; JPEG beside it. */
static nne_status eval_image(nne_cae_codec *codec, const nne_image *img, int jpeg_quality,
                             eval_row *r) {
    nne_latent lat = {0}, back = {0};
    nne_image rec = {0}, jimg = {0};
    uint8_t *zb = NULL, *xb = NULL, *jb = NULL;
    size_t zn = 0, xn = 0, jn = 0;
    r->width = img->width;
    r->height = img->height;
    nne_status s = nne_cae_encode(codec, img, &lat);
    if (!s) s = nne_latent_write_mem(&lat, NNE_LATENT_ZSTD, 19, &zb, &zn);
    if (!s) s = nne_latent_write_mem(&lat, NNE_LATENT_XZ, 9, &xb, &xn);
    if (!s) s = nne_latent_read_mem(xb, xn, &back, NULL);
    if (!s) s = nne_cae_decode(codec, &back, &rec);
    if (!s) s = nne_quality_u8(img->data, rec.data, img->width, img->height, 3, &r->q);
    if (!s) s = nne_image_encode_jpeg(img, jpeg_quality, &jb, &jn);
    if (!s) s = nne_image_decode(jb, jn, NNE_IMAGE_LOAD_RGB, &jimg);
    if (!s) s = nne_quality_u8(img->data, jimg.data, img->width, img->height, 3, &r->jq);
    if (!s) {
        r->lh = lat.height;
        r->lw = lat.width;
        r->lc = lat.channels;
        r->raw_bytes = (int64_t)lat.height * lat.width * lat.channels * 4;
        r->rgb_bytes = (int64_t)img->width * img->height * 3;
        r->zstd_bytes = (int64_t)zn;
        r->xz_bytes = (int64_t)xn;
        r->jpeg_bytes = (int64_t)jn;
    }
    nne_free(zb);
    nne_free(xb);
    nne_free(jb);
    nne_latent_free(&lat);
    nne_latent_free(&back);
    nne_image_free(&rec);
    nne_image_free(&jimg);
    return s;
}

/* The int8 path: the whole quantized model, rebuilt at each image's size and kept for the
 * next image of the same size. */
typedef struct s8_eval {
    const nne_graph *model; /* quantized cae-seed (any size) */
    nne_graph *g;           /* at height x width */
    nne_session *s;
    int32_t height, width;
    float *x, *y; /* [height * width * 3] */
} s8_eval;

static void s8_eval_reset(s8_eval *e) {
    nne_session_free(e->s);
    nne_graph_free(e->g);
    nne_free(e->x);
    nne_free(e->y);
    e->s = NULL;
    e->g = NULL;
    e->x = e->y = NULL;
}

static nne_status s8_eval_bind(s8_eval *e, int32_t height, int32_t width) {
    if (e->s && e->height == height && e->width == width) return NNE_OK;
    s8_eval_reset(e);
    nne_graph *f = NULL;
    nne_status s = nne_model_cae_seed_like(e->model, height, width, NNE_CAE_FULL, &f);
    if (!s) s = nne_quantize_like(f, e->model, &e->g);
    nne_graph_free(f);
    if (!s) s = nne_session_create(e->g, nne_backend_cpu_s8(), &e->s);
    const size_t n = (size_t)height * (size_t)width * 3;
    if (!s && (!(e->x = nne_malloc(n * sizeof *e->x)) || !(e->y = nne_malloc(n * sizeof *e->y))))
        s = NNE_ERR_NOMEM;
    if (s) {
        s8_eval_reset(e);
        return s;
    }
    e->height = height;
    e->width = width;
    return NNE_OK;
}

/* Reconstruct on cpu-s8, 8-bit output as the decoder writes it (clamped, rounded); the
 * latent columns for an int8 latent (1 byte per value, no file); JPEG beside it. */
static nne_status eval_image_s8(s8_eval *e, const nne_image *img, int jpeg_quality, eval_row *r) {
    nne_image rec = {0}, jimg = {0};
    uint8_t *jb = NULL;
    size_t jn = 0;
    r->width = img->width;
    r->height = img->height;
    /* As the latent codec does: the image padded to nne_cae_coded_size by edge replication,
     * the decoder's border filled, the padding cropped (docs/models.md, "The border"). */
    const size_t n = (size_t)img->width * (size_t)img->height * 3;
    const int32_t ph = nne_cae_coded_size(img->height), pw = nne_cae_coded_size(img->width);
    const size_t np = (size_t)ph * (size_t)pw * 3;
    nne_status s = s8_eval_bind(e, ph, pw);
    if (!s) nne_cae_input_padded(img, ph, pw, e->x);
    if (!s) s = nne_session_set_input_f32(e->s, 0, e->x, np);
    if (!s) s = nne_session_run(e->s);
    if (!s) s = nne_session_get_output_f32(e->s, 0, e->y, np);
    if (!s) nne_cae_output_crop(e->y, ph, pw, img->height, img->width);
    if (!s) s = nne_image_alloc(&rec, img->width, img->height, 3);
    for (size_t i = 0; !s && i < n; i++) {
        const float v = e->y[i];
        rec.data[i] = !(v > 0.0f) ? 0 : v >= 1.0f ? 255 : (uint8_t)(v * 255.0f + 0.5f);
    }
    if (!s) s = nne_quality_u8(img->data, rec.data, img->width, img->height, 3, &r->q);
    if (!s) s = nne_image_encode_jpeg(img, jpeg_quality, &jb, &jn);
    if (!s) s = nne_image_decode(jb, jn, NNE_IMAGE_LOAD_RGB, &jimg);
    if (!s) s = nne_quality_u8(img->data, jimg.data, img->width, img->height, 3, &r->jq);
    if (!s) {
        const int32_t lt = nne_graph_find_tensor(e->g, "latent");
        const nne_shape *ls = lt >= 0 ? &e->g->tensors[lt].shape : NULL;
        if (ls && ls->ndim == 4) {
            r->lh = (int32_t)ls->dim[1];
            r->lw = (int32_t)ls->dim[2];
            r->lc = (int32_t)ls->dim[3];
        } else {
            s = nne_cae_latent_shape(ph, pw, &r->lh, &r->lw, &r->lc);
        }
        r->raw_bytes = (int64_t)r->lh * r->lw * r->lc; /* int8 */
        r->rgb_bytes = (int64_t)n;
        r->zstd_bytes = r->xz_bytes = -1;
        r->jpeg_bytes = (int64_t)jn;
    }
    nne_free(jb);
    nne_image_free(&rec);
    nne_image_free(&jimg);
    return s;
}

/* An int8 model (input not f32) read from a file, for the cpu-s8 path: *out, or NULL (with
 * true) for an f32 model or a built-in name, which go through the latent codec. */
static bool read_if_quantized(const char *model, nne_graph **out) {
    *out = NULL;
    if (!cli_is_regular(model)) return true;
    nne_graph *g = NULL;
    nne_status s = nne_model_read_file(model, &g);
    if (s) {
        cli_error(k_cmd, "%s: %s: %s", model, nne_status_str(s), nne_last_error());
        return false;
    }
    const char *id = nne_graph_get_meta(g, "model");
    if (g->n_inputs != 1 || g->tensors[g->inputs[0]].dtype == NNE_F32) {
        nne_graph_free(g);
        return true;
    }
    if (!id || strcmp(id, "cae-seed") != 0) {
        cli_error(k_cmd, "%s: a quantized '%s' model; eval takes cae-seed models", model,
                  id ? id : "?");
        nne_graph_free(g);
        return false;
    }
    *out = g;
    return true;
}

static void help(void) {
    printf("usage: nnedge eval --data DIR [--model FILE.nne] [--jpeg-quality Q] [--json]\n"
           "                  [-o REPORT_DIR] [-q]\n\n"
           "The CAE paper's evaluation on a folder of test images (e.g. Kodak; never train or\n"
           "tune on it). For each image (sorted by name): PSNR and MS-SSIM of the cae-seed\n"
           "reconstruction, decoded from the latent file actually written; the raw ratio of\n"
           "the float32 latent to the RGB8 image (0.6324 for 512x768; the paper's 0.6356 comes\n"
           "from a 764 typo); the latent file size with zstd level 19 and xz preset 9; and\n"
           "libjpeg-turbo at quality 90 beside it (size, PSNR, MS-SSIM). Then the means.\n"
           "A quantized model (nnedge quantize) runs whole on the cpu-s8 backend; its raw\n"
           "ratio counts the int8 latent and zstd/xz are n/a (no int8 latent file).\n\n"
           "options:\n"
           "  --data DIR        folder of images (.png .jpg .ppm .pgm; RGB, alpha dropped)\n"
           "  --model FILE      trained cae-seed model (default: models/cae-seed.nne)\n"
           "  --jpeg-quality Q  JPEG quality for the comparison, 1..100 (default 90)\n"
           "  --backend B       cpu (f32 models, the default for them), cpu-bf16 (f32 models\n"
           "                    run in bf16: weights and convolution inputs rounded to bf16,\n"
           "                    f32 sums; docs/bf16.md) or cpu-s8 (quantized models, the\n"
           "                    default for them); another is an error\n"
           "  --json            print JSON instead of the table\n"
           "  -o DIR            also write DIR/eval.csv, eval.json, eval.md and figure6.svg\n"
           "                    (the paper's Figure 6); DIR is created if missing\n"
           "  -q                no table and no progress on stderr\n"
           "  -h, --help        this help\n\n"
           "exit status: 0 success, 1 runtime error, 2 usage error\n");
}

int nne_cmd_eval(int argc, char **argv) {
    cli_common co;
    const char *model = NULL, *data = NULL, *jq_s = NULL, *backend = NULL;
    const cli_option opts[] = {
        {"model", 'm', true, &model, NULL},
        {"data", 'd', true, &data, NULL},
        {"jpeg-quality", 0, true, &jq_s, NULL},
        {"backend", 0, true, &backend, NULL},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[1];
    int n_pos;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    if (n_pos != 0) return cli_usage_error(k_cmd, "unexpected argument '%s'", pos[0]);
    if (!data) return cli_usage_error(k_cmd, "missing --data DIR");
    if (backend && strcmp(backend, "cpu") != 0 && strcmp(backend, "cpu-bf16") != 0 &&
        strcmp(backend, "cpu-s8") != 0)
        return cli_usage_error(k_cmd, "--backend '%s': expected cpu, cpu-bf16 or cpu-s8", backend);
    int jpeg_quality = NNE_IMAGE_JPEG_DEFAULT_QUALITY;
    if (jq_s) {
        char *end;
        errno = 0;
        long v = strtol(jq_s, &end, 10);
        if (errno || end == jq_s || *end || v < 1 || v > 100)
            return cli_usage_error(k_cmd, "--jpeg-quality '%s': expected 1..100", jq_s);
        jpeg_quality = (int)v;
    }
    if (co.output && cli_same_file(co.output, data)) {
        cli_error(k_cmd, "%s: the report directory must not be the data directory", co.output);
        return NNE_EXIT_RUNTIME;
    }

    int rc = NNE_EXIT_RUNTIME;
    nne_dataset *ds = NULL;
    nne_cae_codec *codec = NULL;
    nne_graph *qmodel = NULL;
    s8_eval s8 = {0};
    eval_row *rows = NULL;
    const nne_dataset_opts dopts = {false, false, 0, 0};
    nne_status s = nne_dataset_open(data, &dopts, &ds);
    if (s) {
        rc = cli_fail(k_cmd, s);
        goto done;
    }
    char found[4096];
    if (!model) {
        if (!cli_default_cae_model(k_cmd, found, sizeof found)) goto done;
        model = found;
    }
    if (!read_if_quantized(model, &qmodel)) goto done;
    if (backend && (qmodel ? strcmp(backend, "cpu-s8") != 0 : !strcmp(backend, "cpu-s8"))) {
        cli_error(k_cmd,
                  qmodel ? "%s is a quantized model: it runs on --backend cpu-s8"
                         : "%s is an f32 model: quantize it with 'nnedge quantize' for cpu-s8",
                  model);
        goto done;
    }
    s8.model = qmodel;
    if (!qmodel && !cli_load_cae_codec(k_cmd, model, &codec)) goto done;
    if (codec && backend) nne_cae_codec_set_backend(codec, nne_backend_by_name(backend));
    const int n = nne_dataset_size(ds);
    rows = nne_calloc((size_t)n, sizeof *rows);
    if (!rows) {
        rc = cli_fail(k_cmd, NNE_ERR_NOMEM);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const char *path = nne_dataset_path(ds, i);
        nne_image img = {0};
        bool owned = false;
        const uint64_t t0 = nne_time_ns();
        s = nne_dataset_image(ds, i, &img, &owned);
        if (!s) {
            cli_base_name(path, rows[i].name, sizeof rows[i].name);
            s = qmodel ? eval_image_s8(&s8, &img, jpeg_quality, &rows[i])
                       : eval_image(codec, &img, jpeg_quality, &rows[i]);
        }
        if (owned) nne_image_free(&img);
        if (s) {
            cli_error(k_cmd, "%s: %s: %s", path, nne_status_str(s), nne_last_error());
            goto done;
        }
        if (!co.quiet)
            fprintf(stderr, "[%d/%d] %s: PSNR %.2f dB, MS-SSIM %.4f (%.1f s)\n", i + 1, n,
                    rows[i].name, rows[i].q.psnr, rows[i].q.ms_ssim,
                    (double)(nne_time_ns() - t0) / 1e9);
    }
    eval_ctx c = {
        model, data,         qmodel != NULL, qmodel ? "cpu-s8" : backend ? backend : "cpu",
        "",    jpeg_quality, rows,           n};
    if (codec) nne_latent_hash_hex(nne_cae_codec_hash(codec), c.hash);
    if (co.json)
        write_json(stdout, &c);
    else if (!co.quiet)
        write_table(stdout, &c, false);
    if (co.output && !write_reports(co.output, &c)) goto done;
    rc = NNE_EXIT_OK;
done:
    nne_free(rows);
    s8_eval_reset(&s8);
    nne_graph_free(qmodel);
    nne_cae_codec_free(codec);
    nne_dataset_free(ds);
    return rc;
}
