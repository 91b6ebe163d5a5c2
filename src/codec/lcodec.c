/* The learned codec (include/nnedge/lcodec.h, docs/codec.md): image -> g_a -> y -> (h_a -> z
 * -> round -> factorized rANS) -> h_s -> scales [, means] -> Gaussian rANS of round(y - mean)
 * -> .nnc; and back.
 *
 * The codec keeps the trained weights in the training graph built at the smallest size
 * (align x align) and, per padded image size, builds each part (g_a, h_a, h_s, g_s) with
 * nne_model_rd, rebinds the weights by name and runs it in a cpu-ref session. The cpu-ref
 * backend runs the plain reference kernels single-threaded in their documented summation
 * order, never the ISA-dispatched GEMM, and the library is compiled with -ffp-contract=off:
 * that is what makes the hyper-synthesis outputs, and so the table indexes and means the
 * decoder derives, bit-identical to the encoder's on every IEEE-754 machine, for every
 * NNEDGE_ISA and NNEDGE_THREADS (docs/codec.md, "Determinism").
 *
 * An int8 codec (docs/codec.md, "Int8 codecs") is the same model file with the quantized g_a
 * and g_s attached (nne_lcodec_quantize): those two parts are built per size as above, given
 * the attached graph's quantization with nne_quantize_like and run on cpu-s8, whose int8
 * arithmetic is bit-exact for every ISA and thread count; h_a, h_s and the entropy coding stay
 * f32 on cpu-exact, so the side information, the tables and the bitstream format are those of
 * the f32 codec. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "lcodec_internal.h"
#include "nnedge/backend.h"
#include "nnedge/bitstream.h"
#include "nnedge/codec.h"
#include "nnedge/entropy.h"
#include "nnedge/lcodec.h"
#include "nnedge/metrics.h"
#include "nnedge/model_file.h"
#include "nnedge/ops.h"
#include "nnedge/passes.h"
#include "nnedge/threadpool.h"

#define PRECISION 16
/* Symbols are int32; a latent value beyond this magnitude means a broken model. */
#define SYMBOL_MAX 1073741824.0f /* 2^30 */
#define MEAN_MAX   1048576.0f    /* 2^20: means are clamped to this (docs/codec.md) */

typedef struct lc_part {
    int32_t height, width; /* padded image size the graph is built for; 0 = none */
    nne_graph *g;
    nne_session *s;
} lc_part;

struct nne_lcodec {
    nne_rdmodel_config cfg;
    int32_t align, quality;
    int64_t max_pixels; /* decoder limit on the padded image (nne_lcodec_set_max_pixels) */
    nne_graph *weights; /* NNE_RD_TRAIN at align x align, holding the trained weights */
    uint8_t hash[NNE_NNC_HASH_SIZE];
    nne_cdf_set fact;  /* one table per channel of the factorized density (z, or y) */
    nne_cdf_set gauss; /* NNE_GAUSS_SCALES tables (hyperpriors) */
    int32_t thr[NNE_GAUSS_SCALES - 1]; /* fixed-point scale thresholds */
    lc_part part[NNE_RD_HYPER_SYNTHESIS + 1];
    nne_lcodec_symbols last; /* symbols of the last encode or decode (tests) */
    /* Int8 codec: the quantized g_a and g_s (copies of the model's attached graphs) at
     * q[NNE_RD_ANALYSIS] and q[NNE_RD_SYNTHESIS], run on `s8`; all NULL for an f32 codec. */
    nne_graph *q[NNE_RD_SYNTHESIS + 1];
    const nne_backend *s8;
    int64_t weight_bytes; /* the constants the codec runs with, at their storage precision */
    int64_t sparse_weight_bytes; /* the same stored sparse (nne_lcodec_info) */
    /* Latent refinement (nne_lcodec_set_refine): options (iterations 0 = off), the model's
     * train.lambda (0 if it has none) and the refiner of the last image size. */
    nne_lcodec_refine_opts refine;
    float model_lambda;
    nne_lcodec_refiner *refiner;
};

static nne_status get_part(nne_lcodec *c, nne_rd_part which, int32_t height, int32_t width,
                           lc_part **out);

static void part_reset(lc_part *p) {
    nne_session_free(p->s);
    nne_graph_free(p->g);
    memset(p, 0, sizeof *p);
}

static void last_reset(nne_lcodec_symbols *l) {
    nne_free(l->y), nne_free(l->z), nne_free(l->y_hat);
    memset(l, 0, sizeof *l);
}

static bool hyper(const nne_lcodec *c) { return c->cfg.kind != NNE_RD_FACTORIZED; }

/* ---- Tables ------------------------------------------------------------------------------ */

static double sigmoid(double f) { return 1.0 / (1.0 + exp(-f)); }
static double logit_at(const float *p, double v) {
    return (double)nne_factorized_logit(p, (float)v, NULL);
}

/* Factorized tables (docs/codec.md, "Tables"): for each channel, the integer range [lo, hi]
 * outside which each tail holds at most half the tail mass (bisection on the monotone
 * cumulative, within +-NNE_LCODEC_FACT_MAX_HALF), the PMF at the integers from the learned
 * cumulative at k +- 1/2, and the two tails as the escape's mass. */
static nne_status build_factorized(nne_lcodec *c) {
    const int32_t pi = nne_graph_find_tensor(c->weights, "entropy_bottleneck.params");
    if (pi < 0) return nne_error(NNE_ERR_INTERNAL, "lcodec: no entropy_bottleneck.params");
    const nne_tensor *pt = &c->weights->tensors[pi];
    const int32_t ch = (int32_t)pt->shape.dim[0], W = NNE_LCODEC_FACT_MAX_HALF;
    const double half_tail = NNE_LCODEC_FACT_TAIL_MASS / 2;
    double *pmf = nne_malloc((size_t)ch * (2 * W + 1) * sizeof *pmf);
    double *tail = nne_malloc((size_t)ch * sizeof *tail);
    int32_t *len = nne_malloc((size_t)ch * sizeof *len);
    int32_t *off = nne_malloc((size_t)ch * sizeof *off);
    nne_status s = NNE_OK;
    if (!pmf || !tail || !len || !off) s = NNE_ERR_NOMEM;
    size_t at = 0;
    for (int32_t k = 0; k < ch && !s; k++) {
        const float *p = (const float *)pt->data + (size_t)k * NNE_FACT_PARAMS;
        /* lo: the smallest integer v with P(X <= v + 1/2) > half_tail. */
        int32_t a = -W, b = W;
        while (a < b) {
            const int32_t mid = (int32_t)floor((a + b) / 2.0);
            if (sigmoid(logit_at(p, mid + 0.5)) > half_tail)
                b = mid;
            else
                a = mid + 1;
        }
        const int32_t lo = a;
        /* hi: the largest integer v with P(X > v - 1/2) > half_tail. */
        a = -W, b = W;
        while (a < b) {
            const int32_t mid = (int32_t)ceil((a + b) / 2.0);
            if (sigmoid(-logit_at(p, mid - 0.5)) > half_tail)
                a = mid;
            else
                b = mid - 1;
        }
        const int32_t hi = a < lo ? lo : a;
        off[k] = lo;
        len[k] = hi - lo + 1;
        for (int32_t v = lo; v <= hi; v++) {
            const double fl = logit_at(p, v - 0.5), fh = logit_at(p, v + 0.5);
            /* Evaluate in the tail where the sigmoid is precise (as the likelihood op does). */
            double q = fl + fh > 0 ? sigmoid(-fl) - sigmoid(-fh) : sigmoid(fh) - sigmoid(fl);
            pmf[at++] = q > 0 ? q : 0;
        }
        tail[k] = sigmoid(logit_at(p, lo - 0.5)) + sigmoid(-logit_at(p, hi + 0.5));
        if (!isfinite(tail[k]))
            s = nne_error(NNE_ERR_FORMAT,
                          "lcodec: entropy_bottleneck channel %d: non-finite "
                          "density",
                          (int)k);
    }
    if (!s) s = nne_cdf_set_factorized(ch, pmf, len, off, tail, PRECISION, &c->fact);
    nne_free(pmf), nne_free(tail), nne_free(len), nne_free(off);
    return s;
}

static void put_u32(nne_sha256 *h, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    nne_sha256_update(h, b, 4);
}

static void hash_set(nne_sha256 *h, const nne_cdf_set *s) {
    put_u32(h, (uint32_t)s->n_tables);
    put_u32(h, (uint32_t)s->precision);
    for (int32_t t = 0; t < s->n_tables; t++) {
        put_u32(h, (uint32_t)s->offset[t]);
        put_u32(h, (uint32_t)s->length[t]);
    }
    for (size_t i = 0; i < s->cdf_size; i++) put_u32(h, s->cdf[i]);
}

/* ---- Model --------------------------------------------------------------------------------- */

static nne_status meta_int(const nne_graph *g, const char *key, int32_t *out) {
    const char *v = nne_graph_get_meta(g, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < 1 || x > 1024)
        return nne_error(NNE_ERR_FORMAT, "lcodec: model meta '%s' is %s%s%s (want 1..1024)", key,
                         v ? "'" : "", v ? v : "missing", v ? "'" : "");
    *out = (int32_t)x;
    return NNE_OK;
}

/* Name of the attached graph holding a quantized part: nne_model_rd's name of the part. */
static void part_name(const nne_lcodec *c, nne_rd_part which, char *buf, size_t n) {
    snprintf(buf, n, "%s.%s", nne_rdmodel_kind_name(c->cfg.kind),
             which == NNE_RD_ANALYSIS ? "g_a" : "g_s");
}

/* The int8 parts of `model` (docs/codec.md, "Int8 codecs"): exactly the attached graphs
 * "<kind>.g_a" and "<kind>.g_s", copied through their canonical model-file bytes (returned
 * in bytes[] for the hash), then each built at the smallest size on the int8 backend, which
 * checks names, shapes, dtypes and quantization parameters now rather than at the first
 * image. */
static nne_status load_int8(nne_lcodec *c, const nne_graph *model, uint8_t *bytes[2],
                            size_t size[2]) {
    char want[2][96];
    part_name(c, NNE_RD_ANALYSIS, want[0], sizeof want[0]);
    part_name(c, NNE_RD_SYNTHESIS, want[1], sizeof want[1]);
    for (int32_t i = 0; i < model->n_attached; i++)
        if (strcmp(model->attached[i]->name, want[0]) && strcmp(model->attached[i]->name, want[1]))
            return nne_error(NNE_ERR_FORMAT,
                             "lcodec: attached graph '%s' is not a part of an int8 codec (%s, "
                             "%s)",
                             model->attached[i]->name, want[0], want[1]);
    c->s8 = nne_backend_cpu_s8();
    for (int k = 0; k < 2; k++) {
        const nne_rd_part which = k ? NNE_RD_SYNTHESIS : NNE_RD_ANALYSIS;
        const nne_graph *a = nne_graph_find_attached(model, want[k]);
        if (!a)
            return nne_error(NNE_ERR_FORMAT,
                             "lcodec: an int8 codec needs both %s and %s attached; %s is missing",
                             want[0], want[1], want[k]);
        nne_status s = nne_model_write_mem(a, &bytes[k], &size[k]);
        if (!s) s = nne_model_read_mem(bytes[k], size[k], &c->q[which]);
        lc_part *p;
        if (!s) s = get_part(c, which, c->align, c->align, &p);
        if (s) return nne_error(s, "lcodec: int8 part %s: %s", want[k], nne_last_error());
    }
    return NNE_OK;
}

/* Bytes of constant t stored dense (`dense`) and sparse: a tensor with zeros as its nonzero
 * elements plus a presence bitmap of 1 bit per element, when that is smaller. */
static void add_bytes(const nne_tensor *t, int64_t *dense, int64_t *sparse) {
    const int64_t nb = (int64_t)nne_tensor_nbytes(t), n = nne_shape_numel(&t->shape);
    const int64_t nz = nne_tensor_count_nonzero(t);
    const int64_t sp = nz * (int64_t)nne_dtype_size(t->dtype) + (n + 7) / 8;
    *dense += nb;
    *sparse += nz < n && sp < nb ? sp : nb;
}

/* Bytes of the constants the codec runs with: the f32 weights, except g_a's and g_s's for an
 * int8 codec, which count at the quantized parts' storage (s8 weights, s32 biases, f32 GDN
 * parameters; scales not counted, as in nnedge info's weight bytes); dense and sparse. */
static void count_weight_bytes(nne_lcodec *c) {
    const bool int8 = c->q[NNE_RD_ANALYSIS] != NULL;
    int64_t n = 0, sp = 0;
    for (int32_t i = 0; i < c->weights->n_tensors; i++) {
        const nne_tensor *t = &c->weights->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT) continue;
        if (int8 && (!strncmp(t->name, "g_a.", 4) || !strncmp(t->name, "g_s.", 4))) continue;
        add_bytes(t, &n, &sp);
    }
    for (int k = 0; k <= NNE_RD_SYNTHESIS; k++)
        for (int32_t i = 0; c->q[k] && i < c->q[k]->n_tensors; i++)
            if (c->q[k]->tensors[i].kind == NNE_TENSOR_CONSTANT)
                add_bytes(&c->q[k]->tensors[i], &n, &sp);
    c->weight_bytes = n;
    c->sparse_weight_bytes = sp;
}

nne_status nne_lcodec_create(const nne_graph *model, int32_t quality, nne_lcodec **out) {
    *out = NULL;
    if (!model) return nne_error(NNE_ERR_INVALID_ARG, "lcodec: NULL model");
    if (quality < 0 || quality > NNE_NNC_MAX_QUALITY)
        return nne_error(NNE_ERR_INVALID_ARG, "lcodec: quality %d outside 0..%d", (int)quality,
                         NNE_NNC_MAX_QUALITY);
    const char *id = nne_graph_get_meta(model, "model");
    nne_rdmodel_config cfg = {NNE_RD_HYPERPRIOR, 0, 0, NNE_QUANTIZE_NOISE, false};
    if (!id || nne_rdmodel_kind_from_name(id, &cfg.kind))
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "model '%s' is %s%s%s, not a learned codec (bmshj2018-factorized, "
                         "bmshj2018-hyperprior or mbt2018-mean)",
                         model->name ? model->name : "?", id ? "a '" : "of no known kind",
                         id ? id : "", id ? "' model" : "");
    nne_status s;
    if ((s = meta_int(model, "model.N", &cfg.n)) || (s = meta_int(model, "model.M", &cfg.m)))
        return s;
    nne_lcodec *c = nne_calloc(1, sizeof *c);
    if (!c) return NNE_ERR_NOMEM;
    c->cfg = cfg;
    c->quality = quality;
    c->align = nne_rdmodel_alignment(cfg.kind);
    c->max_pixels = NNE_IMAGE_MAX_PIXELS;
    s = nne_model_rd(&cfg, 1, c->align, c->align, NNE_RD_TRAIN, &c->weights);
    if (!s) s = nne_model_copy_weights(c->weights, model);
    if (!s) s = nne_codec_check_finite(c->weights, id);
    if (!s) s = build_factorized(c);
    double scales[NNE_GAUSS_SCALES];
    nne_gauss_scale_table(scales, NNE_GAUSS_SCALES);
    if (!s && hyper(c))
        s = nne_cdf_set_gaussian(scales, NNE_GAUSS_SCALES, NNE_GAUSS_TAIL_MASS, PRECISION,
                                 &c->gauss);
    if (!s && hyper(c))
        s = nne_gauss_scale_thresholds(scales, NNE_GAUSS_SCALES, NNE_LCODEC_SCALE_FRAC_BITS,
                                       c->thr);
    uint8_t *qbytes[2] = {NULL, NULL};
    size_t qsize[2] = {0, 0};
    if (!s && model->n_attached) s = load_int8(c, model, qbytes, qsize);
    if (!s) {
        /* The hash covers the weights and every integer table the coder uses, so a decoder
         * whose libm derived other tables from the same file refuses the stream rather than
         * misdecoding it (docs/codec.md, "Model hash"); for an int8 codec also the quantized
         * parts' canonical bytes, so that the f32 and int8 codecs of the same weights refuse
         * each other's streams. */
        nne_sha256 h;
        nne_sha256_init(&h);
        s = nne_codec_hash_weights(&h, c->weights, id);
        if (!s) {
            static const char tag[] = "nnedge-lcodec-tables-v1";
            nne_sha256_update(&h, tag, sizeof tag - 1);
            hash_set(&h, &c->fact);
            if (hyper(c)) hash_set(&h, &c->gauss);
            if (qbytes[0]) {
                static const char qtag[] = "nnedge-lcodec-int8-v1";
                nne_sha256_update(&h, qtag, sizeof qtag - 1);
                for (int k = 0; k < 2; k++) {
                    put_u32(&h, (uint32_t)qsize[k]); /* < 4 GiB: a model file's limit */
                    nne_sha256_update(&h, qbytes[k], qsize[k]);
                }
            }
            nne_sha256_final(&h, c->hash);
        }
    }
    nne_free(qbytes[0]), nne_free(qbytes[1]);
    if (!s) count_weight_bytes(c);
    const char *lam = nne_graph_get_meta(model, "train.lambda");
    if (lam) {
        char *end = NULL;
        const double v = strtod(lam, &end);
        if (end != lam && !*end && v > 0.0 && v < 1e6) c->model_lambda = (float)v;
    }
    if (s) {
        nne_lcodec_free(c);
        return s;
    }
    *out = c;
    return NNE_OK;
}

nne_status nne_lcodec_load(const char *path, int32_t quality, nne_lcodec **out) {
    *out = NULL;
    nne_graph *g = NULL;
    nne_status s = nne_model_read_file(path, &g);
    if (s) return s;
    s = nne_lcodec_create(g, quality, out);
    nne_graph_free(g);
    if (s) return nne_error(s, "%s: %s", path, nne_last_error());
    return NNE_OK;
}

void nne_lcodec_free(nne_lcodec *c) {
    if (!c) return;
    for (int i = 0; i <= NNE_RD_HYPER_SYNTHESIS; i++) part_reset(&c->part[i]);
    nne_lcodec__refiner_free(c->refiner);
    for (int i = 0; i <= NNE_RD_SYNTHESIS; i++) nne_graph_free(c->q[i]);
    nne_cdf_set_free(&c->fact);
    nne_cdf_set_free(&c->gauss);
    nne_graph_free(c->weights);
    last_reset(&c->last);
    nne_free(c);
}

void nne_lcodec_get_info(const nne_lcodec *c, nne_lcodec_info *info) {
    info->model_id = nne_rdmodel_kind_name(c->cfg.kind);
    info->kind = c->cfg.kind;
    info->n = c->cfg.n;
    info->m = c->cfg.m;
    info->align = c->align;
    info->quality = c->quality;
    info->hash = c->hash;
    const nne_graph *q = c->q[NNE_RD_ANALYSIS];
    info->precision = q ? "int8" : "f32";
    info->scheme = q ? nne_graph_get_meta(q, "quant.scheme") : NULL;
    info->weight_bytes = c->weight_bytes;
    info->sparse_weight_bytes = c->sparse_weight_bytes;
}

void nne_lcodec_set_max_pixels(nne_lcodec *c, int64_t max_pixels) {
    c->max_pixels = max_pixels < 1 ? 1 : max_pixels;
}

nne_status nne_lcodec_set_refine(nne_lcodec *c, const nne_lcodec_refine_opts *o) {
    if (!c) return nne_error(NNE_ERR_INVALID_ARG, "lcodec: NULL codec");
    if (!o || o->iterations == 0) {
        memset(&c->refine, 0, sizeof c->refine);
        return NNE_OK;
    }
    if (o->iterations < 0 || o->iterations > NNE_LCODEC_REFINE_MAX_ITS)
        return nne_error(NNE_ERR_INVALID_ARG, "lcodec: refinement iterations %d outside 0..%d",
                         (int)o->iterations, NNE_LCODEC_REFINE_MAX_ITS);
    if (!(o->lr >= 0.0f && o->lr <= 100.0f))
        return nne_error(NNE_ERR_INVALID_ARG, "lcodec: refinement step size %g outside [0, 100]",
                         (double)o->lr);
    if (!(o->lambda >= 0.0f && o->lambda < 1e6f))
        return nne_error(NNE_ERR_INVALID_ARG, "lcodec: refinement lambda %g outside [0, 1e6)",
                         (double)o->lambda);
    if (o->threads < 0 || o->threads > NNE_THREADPOOL_MAX_THREADS)
        return nne_error(NNE_ERR_INVALID_ARG, "lcodec: refinement threads %d outside 0..%d",
                         (int)o->threads, NNE_THREADPOOL_MAX_THREADS);
    if (o->lambda == 0.0f && c->model_lambda == 0.0f)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "lcodec: latent refinement needs the rate-distortion lambda: the model "
                         "has no train.lambda, give one");
    c->refine = *o;
    return NNE_OK;
}

const nne_lcodec_symbols *nne_lcodec_last_symbols(const nne_lcodec *c) { return &c->last; }

void nne_lcodec_set_s8_backend(nne_lcodec *c, const nne_backend *be) {
    if (!c->q[NNE_RD_ANALYSIS]) return;
    c->s8 = be ? be : nne_backend_cpu_s8();
    part_reset(&c->part[NNE_RD_ANALYSIS]);
    part_reset(&c->part[NNE_RD_SYNTHESIS]);
}
const nne_cdf_set *nne_lcodec_factorized_tables(const nne_lcodec *c) { return &c->fact; }

/* Part `which` built for a padded image of height x width, bound on first use. */
static nne_status get_part(nne_lcodec *c, nne_rd_part which, int32_t height, int32_t width,
                           lc_part **out) {
    lc_part *p = &c->part[which];
    if (p->g && p->height == height && p->width == width) {
        *out = p;
        return NNE_OK;
    }
    part_reset(p);
    nne_status s = nne_model_rd(&c->cfg, 1, height, width, which, &p->g);
    /* Every f32 part on cpu-exact: the reference kernels' bits on every ISA and thread
     * count, which h_s (the entropy model's scales and means) needs and the pixels get for
     * free (docs/codec.md, "Determinism"). An int8 part takes every constant and
     * quantization parameter from the quantized graph and runs on the int8 backend, whose
     * integer arithmetic is as deterministic. */
    const nne_backend *be = nne_backend_cpu_exact();
    if (!s && (int)which <= NNE_RD_SYNTHESIS && c->q[which]) {
        nne_graph *q = NULL;
        s = nne_quantize_like(p->g, c->q[which], &q);
        nne_graph_free(p->g);
        p->g = q;
        be = c->s8;
    } else if (!s) {
        s = nne_model_copy_weights(p->g, c->weights);
    }
    if (!s) s = nne_session_create(p->g, be, &p->s);
    if (s) {
        part_reset(p);
        return s;
    }
    p->height = height;
    p->width = width;
    *out = p;
    return NNE_OK;
}

/* ---- The shared deterministic path ------------------------------------------------------ */

/* Latent geometry of a padded image. */
typedef struct geom {
    int32_t ph, pw; /* padded image */
    int32_t yh, yw, zh, zw;
    size_t ny, nz; /* element counts of y and z */
} geom;

static geom geom_of(const nne_lcodec *c, int32_t ph, int32_t pw) {
    geom g = {ph, pw, ph / 16, pw / 16, ph / 64, pw / 64, 0, 0};
    g.ny = (size_t)g.yh * (size_t)g.yw * (size_t)c->cfg.m;
    g.nz = hyper(c) ? (size_t)g.zh * (size_t)g.zw * (size_t)c->cfg.n : 0;
    return g;
}

/* Factorized table index of element i of an NHWC tensor with `ch` channels. */
static void channel_index(int32_t *idx, size_t n, int32_t ch) {
    for (size_t i = 0; i < n; i++) idx[i] = (int32_t)(i % (size_t)ch);
}

/* z_hat (integers) -> h_s -> per-element Gaussian table index and mean (0 without means),
 * the same on both sides: the fixed-point maps of docs/codec.md, "Determinism". */
static nne_status hyper_side(nne_lcodec *c, const geom *g, const int32_t *z, int32_t *idx,
                             float *mean) {
    lc_part *p;
    nne_status s = get_part(c, NNE_RD_HYPER_SYNTHESIS, g->ph, g->pw, &p);
    if (s) return s;
    float *in = nne_session_input(p->s, 0);
    for (size_t i = 0; i < g->nz; i++) in[i] = (float)z[i];
    if ((s = nne_session_run(p->s))) return s;
    const float *sc = nne_session_output(p->s, 0);
    const float *mu = c->cfg.kind == NNE_RD_MEAN_SCALE ? nne_session_output(p->s, 1) : NULL;
    const float qmax = 1073741824.0f; /* 2^30 > every threshold (256 * 2^16) */
    for (size_t i = 0; i < g->ny; i++) {
        /* q = ceil(scale * 2^16): the product by a power of two and ceilf are exact. NaN or
         * huge -> the widest table. */
        const float v = sc[i] * (float)(1 << NNE_LCODEC_SCALE_FRAC_BITS);
        const int32_t q = v >= 0.0f ? (v < qmax ? (int32_t)ceilf(v) : (int32_t)qmax)
                                    : (v < 0.0f ? 0 : (int32_t)qmax);
        idx[i] = nne_entropy_index_search(c->thr, NNE_GAUSS_SCALES - 1, q);
        float m = 0.0f;
        if (mu && mu[i] == mu[i]) { /* NaN -> 0 */
            m = mu[i] > MEAN_MAX ? MEAN_MAX : mu[i] < -MEAN_MAX ? -MEAN_MAX : mu[i];
            const float k = (float)(1 << NNE_LCODEC_MEAN_FRAC_BITS);
            m = roundf(m * k) / k; /* exact: scaling by powers of two */
        }
        mean[i] = m;
    }
    return NNE_OK;
}

static nne_status keep_last(nne_lcodec *c, const int32_t *y, size_t ny, const int32_t *z, size_t nz,
                            const float *y_hat) {
    last_reset(&c->last);
    c->last.y = nne_malloc((ny ? ny : 1) * sizeof *y);
    c->last.z = nne_malloc((nz ? nz : 1) * sizeof *z);
    c->last.y_hat = nne_malloc((ny ? ny : 1) * sizeof *y_hat);
    if (!c->last.y || !c->last.z || !c->last.y_hat) {
        last_reset(&c->last);
        return NNE_ERR_NOMEM;
    }
    memcpy(c->last.y, y, ny * sizeof *y);
    if (nz) memcpy(c->last.z, z, nz * sizeof *z);
    memcpy(c->last.y_hat, y_hat, ny * sizeof *y_hat);
    c->last.ny = ny;
    c->last.nz = nz;
    return NNE_OK;
}

/* g_s on y_hat, cropped, clamped and rounded to RGB8. */
static nne_status synthesize(nne_lcodec *c, const geom *g, const float *y_hat, const int32_t pad[4],
                             int32_t width, int32_t height, nne_image *out) {
    lc_part *p;
    const size_t nx = (size_t)g->ph * (size_t)g->pw * 3;
    float *x = nne_malloc(nx * sizeof *x); /* [1][ph][pw][3] */
    nne_status s = x ? get_part(c, NNE_RD_SYNTHESIS, g->ph, g->pw, &p) : NNE_ERR_NOMEM;
    /* f32 in and out: copies on the f32 codec, (de)quantization on the int8 one. */
    if (!s) s = nne_session_set_input_f32(p->s, 0, y_hat, g->ny);
    if (!s) s = nne_session_run(p->s);
    if (!s) s = nne_session_get_output_f32(p->s, 0, x, nx);
    if (!s) s = nne_image_alloc(out, width, height, 3);
    for (int32_t r = 0; !s && r < height; r++) {
        const float *row = x + (((size_t)(r + pad[0]) * (size_t)g->pw) + (size_t)pad[1]) * 3;
        uint8_t *dst = out->data + (size_t)r * (size_t)width * 3;
        for (size_t i = 0; i < (size_t)width * 3; i++) dst[i] = nne_codec_to_u8(row[i]);
    }
    nne_free(x);
    return s;
}

/* round(v) (half away from zero, as the quantize op) as a symbol, or an error for a value
 * no trained model produces. */
static nne_status to_symbol(float v, const char *what, int32_t *out) {
    if (!(fabsf(v) <= SYMBOL_MAX))
        return nne_error(NNE_ERR_INTERNAL,
                         "lcodec: %s value %g is non-finite or beyond 2^30 "
                         "(broken model?)",
                         what, (double)v);
    *out = (int32_t)roundf(v);
    return NNE_OK;
}

/* ---- Encoder ------------------------------------------------------------------------------ */

static double bits_of(double p) {
    return -log2(p > (double)NNE_RD_LIK_MIN ? p : (double)NNE_RD_LIK_MIN);
}

/* What the encoder's analysis derives from a padded image (sizes from geom). */
typedef struct analysis {
    float *y;             /* [ny] g_a's output */
    int32_t *ysym, *yidx; /* [ny] y symbols round(y - mean), their table indexes */
    float *y_hat, *mean;  /* [ny] ysym + mean: g_s's input; the means (0 without) */
    int32_t *zsym, *zidx; /* [nz] z symbols and table indexes (hyperpriors) */
    double ybits, zbits;  /* -log2 P under the model's float densities */
    double refine_loss[2]; /* latent refinement: loss before and after (0 without) */
    int32_t refine_its;
} analysis;

static void analysis_free(analysis *a) {
    nne_free(a->y), nne_free(a->ysym), nne_free(a->yidx), nne_free(a->y_hat), nne_free(a->mean);
    nne_free(a->zsym), nne_free(a->zidx);
    memset(a, 0, sizeof *a);
}

static nne_status analysis_alloc(analysis *a, const geom *g) {
    memset(a, 0, sizeof *a);
    const size_t ny = g->ny, nz = g->nz ? g->nz : 1;
    a->y = nne_malloc(ny * sizeof *a->y);
    a->ysym = nne_malloc(ny * sizeof *a->ysym);
    a->yidx = nne_malloc(ny * sizeof *a->yidx);
    a->y_hat = nne_malloc(ny * sizeof *a->y_hat);
    a->mean = nne_malloc(ny * sizeof *a->mean);
    a->zsym = nne_malloc(nz * sizeof *a->zsym);
    a->zidx = nne_malloc(nz * sizeof *a->zidx);
    if (a->y && a->ysym && a->yidx && a->y_hat && a->mean && a->zsym && a->zidx) return NNE_OK;
    analysis_free(a);
    return NNE_ERR_NOMEM;
}

/* x ([1][ph][pw][3] in [0, 1]) -> g_a -> y [-> h_a -> z symbols -> h_s -> table indexes and
 * means] -> y symbols and y_hat, with the model's bit estimates: everything the encoder
 * codes, and the y_hat the decoder will feed g_s (also the int8 synthesis' calibration). */
static nne_status analyse(nne_lcodec *c, const geom *g, const float *x, analysis *a) {
    lc_part *pa;
    nne_status s = get_part(c, NNE_RD_ANALYSIS, g->ph, g->pw, &pa);
    /* f32 in and out: copies on the f32 codec, (de)quantization on the int8 one. */
    if (!s) s = nne_session_set_input_f32(pa->s, 0, x, (size_t)g->ph * (size_t)g->pw * 3);
    if (!s) s = nne_session_run(pa->s);
    if (!s) s = nne_session_get_output_f32(pa->s, 0, a->y, g->ny);
    if (!s && c->refine.iterations > 0)
        s = nne_lcodec__refine(&c->refiner, &c->cfg, c->weights, &c->refine,
                               c->refine.lambda > 0.0f ? c->refine.lambda : c->model_lambda, g->ph,
                               g->pw, x, a->y, a->refine_loss, &a->refine_its);
    if (s) return s;
    const nne_tensor *ep =
        &c->weights->tensors[nne_graph_find_tensor(c->weights, "entropy_bottleneck.params")];
    const float *fp = ep->data; /* [channels][NNE_FACT_PARAMS] */
    const int32_t m = c->cfg.m, n = c->cfg.n;
    a->ybits = a->zbits = 0;
    if (!hyper(c)) {
        channel_index(a->yidx, g->ny, m);
        for (size_t i = 0; i < g->ny; i++) {
            if ((s = to_symbol(a->y[i], "y", &a->ysym[i]))) return s;
            a->y_hat[i] = (float)a->ysym[i];
            a->ybits += bits_of(nne_factorized_likelihood(fp + (i % (size_t)m) * NNE_FACT_PARAMS,
                                                          (float)a->ysym[i], NULL));
        }
        return NNE_OK;
    }
    lc_part *ph;
    if ((s = get_part(c, NNE_RD_HYPER_ANALYSIS, g->ph, g->pw, &ph))) return s;
    memcpy(nne_session_input(ph->s, 0), a->y, g->ny * sizeof *a->y);
    if ((s = nne_session_run(ph->s))) return s;
    const float *z = nne_session_output(ph->s, 0);
    for (size_t i = 0; i < g->nz; i++) {
        if ((s = to_symbol(z[i], "z", &a->zsym[i]))) return s;
        a->zbits += bits_of(nne_factorized_likelihood(fp + (i % (size_t)n) * NNE_FACT_PARAMS,
                                                      (float)a->zsym[i], NULL));
    }
    channel_index(a->zidx, g->nz, n);
    if ((s = hyper_side(c, g, a->zsym, a->yidx, a->mean))) return s;
    const float *sc = nne_session_output(c->part[NNE_RD_HYPER_SYNTHESIS].s, 0);
    for (size_t i = 0; i < g->ny; i++) {
        if ((s = to_symbol(a->y[i] - a->mean[i], "y", &a->ysym[i]))) return s;
        a->y_hat[i] = (float)a->ysym[i] + a->mean[i];
        /* The scale bounded to the tables' range, as the coder models it. */
        const float sb = sc[i] < (float)NNE_GAUSS_SCALE_MAX ? sc[i] : (float)NNE_GAUSS_SCALE_MAX;
        a->ybits += bits_of(
            nne_gaussian_likelihood((float)a->ysym[i], sb, 0.0f, (float)NNE_GAUSS_SCALE_MIN));
    }
    return NNE_OK;
}

nne_status nne_lcodec_latents(nne_lcodec *c, const float *x, int32_t height, int32_t width,
                              float *y_hat) {
    if (!c || !x || !y_hat || height < c->align || width < c->align || height % c->align ||
        width % c->align)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "lcodec: latents of a %dx%d image (want multiples "
                         "of %d)",
                         (int)width, (int)height, (int)c->align);
    const geom g = geom_of(c, height, width);
    analysis a;
    nne_status s = analysis_alloc(&a, &g);
    if (!s) s = analyse(c, &g, x, &a);
    if (!s) memcpy(y_hat, a.y_hat, g.ny * sizeof *y_hat);
    analysis_free(&a);
    return s;
}

nne_status nne_lcodec_encode(nne_lcodec *c, const nne_image *img, bool want_reconstruction,
                             uint8_t **out, size_t *out_size, nne_lcodec_stats *st) {
    *out = NULL;
    *out_size = 0;
    if (st) {
        memset(st, 0, sizeof *st);
        st->psnr = NAN;
    }
    if (!c || !img || !img->data) return nne_error(NNE_ERR_INVALID_ARG, "lcodec: no image");
    if (img->channels != 3)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "lcodec: the encoder takes RGB images (3 channels), not %d channels",
                         (int)img->channels);
    const int32_t w = img->width, h = img->height;
    int32_t pad[4];
    nne_status s = nne_nnc_padding(w, h, c->align, pad);
    if (s) return s;
    const geom g = geom_of(c, h + pad[0] + pad[2], w + pad[1] + pad[3]);
    const int32_t m = c->cfg.m, n = c->cfg.n;

    analysis a;
    const size_t ycap = nne_entropy_encode_bound(g.ny), zcap = nne_entropy_encode_bound(g.nz);
    uint8_t *ybuf = nne_malloc(ycap), *zbuf = nne_malloc(zcap);
    float *x = nne_malloc((size_t)g.ph * (size_t)g.pw * 3 * sizeof *x);
    nne_image rec = {0};
    size_t ysize = 0, zsize = 0;
    if ((s = analysis_alloc(&a, &g)) || !ybuf || !zbuf || !x) {
        s = NNE_ERR_NOMEM;
        goto done;
    }
    /* The padded image, edge-replicated, [1][ph][pw][3] in [0, 1]. */
    for (int32_t r = 0; r < g.ph; r++) {
        int32_t sr = r - pad[0];
        sr = sr < 0 ? 0 : sr >= h ? h - 1 : sr;
        for (int32_t col = 0; col < g.pw; col++) {
            int32_t sc = col - pad[1];
            sc = sc < 0 ? 0 : sc >= w ? w - 1 : sc;
            const uint8_t *src = img->data + ((size_t)sr * (size_t)w + (size_t)sc) * 3;
            float *dst = x + ((size_t)r * (size_t)g.pw + (size_t)col) * 3;
            for (int k = 0; k < 3; k++) dst[k] = (float)src[k] / 255.0f;
        }
    }
    if ((s = analyse(c, &g, x, &a))) goto done;
    if (hyper(c) &&
        (s = nne_entropy_encode(&c->fact, a.zsym, a.zidx, NULL, g.nz, zbuf, zcap, &zsize)))
        goto done;
    if ((s = nne_entropy_encode(hyper(c) ? &c->gauss : &c->fact, a.ysym, a.yidx, NULL, g.ny, ybuf,
                                ycap, &ysize)))
        goto done;
    nne_nnc box;
    memset(&box, 0, sizeof box);
    snprintf(box.model_id, sizeof box.model_id, "%s", nne_rdmodel_kind_name(c->cfg.kind));
    memcpy(box.model_hash, c->hash, NNE_NNC_HASH_SIZE);
    box.image_width = w;
    box.image_height = h;
    box.image_channels = 3;
    box.align = c->align;
    memcpy(box.pad, pad, sizeof box.pad);
    box.quality = c->quality;
    int k = 0;
    if (hyper(c)) box.streams[k++] = (nne_nnc_stream){"z", zbuf, zsize};
    box.streams[k++] = (nne_nnc_stream){"y", ybuf, ysize};
    box.n_streams = k;
    if ((s = nne_nnc_write_mem(&box, out, out_size))) goto done;
    if ((s = keep_last(c, a.ysym, g.ny, a.zsym, g.nz, a.y_hat))) goto done;
    if (st) {
        st->y_shape[0] = g.yh, st->y_shape[1] = g.yw, st->y_shape[2] = m;
        if (hyper(c)) st->z_shape[0] = g.zh, st->z_shape[1] = g.zw, st->z_shape[2] = n;
        st->y_bytes = ysize;
        st->z_bytes = zsize;
        st->file_bytes = *out_size;
        st->y_bits_est = a.ybits;
        st->z_bits_est = a.zbits;
        st->y_bits_table =
            nne_entropy_cost_bits(hyper(c) ? &c->gauss : &c->fact, a.ysym, a.yidx, NULL, g.ny);
        st->z_bits_table =
            hyper(c) ? nne_entropy_cost_bits(&c->fact, a.zsym, a.zidx, NULL, g.nz) : 0;
        st->bpp = (double)*out_size * 8.0 / ((double)w * (double)h);
        st->refine_loss[0] = a.refine_loss[0];
        st->refine_loss[1] = a.refine_loss[1];
        st->refine_iterations = a.refine_its;
    }
    if (want_reconstruction) {
        if ((s = synthesize(c, &g, a.y_hat, pad, w, h, &rec))) goto done;
        double se = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            const double d = (double)rec.data[i] - (double)img->data[i];
            se += d * d;
        }
        if (st) st->psnr = nne_psnr_from_mse(se / ((double)w * h * 3), 255.0);
    }
done:
    if (s) {
        nne_free(*out);
        *out = NULL;
        *out_size = 0;
    }
    nne_image_free(&rec);
    analysis_free(&a);
    nne_free(ybuf), nne_free(zbuf), nne_free(x);
    return s;
}

/* ---- Decoder ------------------------------------------------------------------------------ */

nne_status nne_lcodec_decode(nne_lcodec *c, const uint8_t *data, size_t size, nne_image *out) {
    memset(out, 0, sizeof *out);
    if (!c || !data) return nne_error(NNE_ERR_INVALID_ARG, "lcodec: no data");
    nne_nnc box;
    nne_status s = nne_nnc_read_mem(data, size, &box);
    if (s) return s;
    const char *id = nne_rdmodel_kind_name(c->cfg.kind);
    char want[2 * NNE_NNC_HASH_SIZE + 1], got[2 * NNE_NNC_HASH_SIZE + 1];
    if (strcmp(box.model_id, id) != 0)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "the stream was made by model '%s', not by %s: decode it with the model "
                         "that encoded it",
                         box.model_id, id);
    if (memcmp(box.model_hash, c->hash, NNE_NNC_HASH_SIZE) != 0)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "wrong model: the stream was encoded with model sha256 %.16s..., the "
                         "model given has sha256 %.16s...; decode with the model (and quality) "
                         "that encoded it",
                         nne_latent_hash_hex(box.model_hash, want),
                         nne_latent_hash_hex(c->hash, got));
    if (box.align != c->align)
        return nne_error(NNE_ERR_FORMAT, "lcodec: align %d, but %s needs %d", (int)box.align, id,
                         (int)c->align);
    const nne_nnc_stream *zs = nne_nnc_find(&box, "z"), *ys = nne_nnc_find(&box, "y");
    const int want_streams = hyper(c) ? 2 : 1;
    if (!ys || (hyper(c) && !zs) || box.n_streams != want_streams)
        return nne_error(NNE_ERR_FORMAT,
                         "lcodec: %s needs exactly the streams %s, found %d "
                         "stream(s)",
                         id, hyper(c) ? "\"z\" and \"y\"" : "\"y\"", (int)box.n_streams);
    const geom g = geom_of(c, box.image_height + box.pad[0] + box.pad[2],
                           box.image_width + box.pad[1] + box.pad[3]);
    if ((int64_t)g.ph * g.pw > c->max_pixels)
        return nne_error(NNE_ERR_LIMIT,
                         "lcodec: padded image %dx%d exceeds the decoder's limit "
                         "of %lld pixels",
                         (int)g.pw, (int)g.ph, (long long)c->max_pixels);
    int32_t *ysym = nne_malloc(g.ny * sizeof *ysym), *yidx = nne_malloc(g.ny * sizeof *yidx);
    float *y_hat = nne_malloc(g.ny * sizeof *y_hat), *mean = nne_malloc(g.ny * sizeof *mean);
    int32_t *zsym = nne_malloc((g.nz ? g.nz : 1) * sizeof *zsym);
    int32_t *zidx = nne_malloc((g.nz ? g.nz : 1) * sizeof *zidx);
    if (!ysym || !yidx || !y_hat || !mean || !zsym || !zidx) {
        s = NNE_ERR_NOMEM;
        goto done;
    }
    if (hyper(c)) {
        channel_index(zidx, g.nz, c->cfg.n);
        if ((s = nne_entropy_decode(&c->fact, zs->data, zs->size, zidx, NULL, g.nz, zsym))) {
            s = nne_error(s, "lcodec: stream \"z\": %s", nne_last_error());
            goto done;
        }
        if ((s = hyper_side(c, &g, zsym, yidx, mean))) goto done;
        if ((s = nne_entropy_decode(&c->gauss, ys->data, ys->size, yidx, NULL, g.ny, ysym))) {
            s = nne_error(s, "lcodec: stream \"y\": %s", nne_last_error());
            goto done;
        }
        for (size_t i = 0; i < g.ny; i++) y_hat[i] = (float)ysym[i] + mean[i];
    } else {
        channel_index(yidx, g.ny, c->cfg.m);
        if ((s = nne_entropy_decode(&c->fact, ys->data, ys->size, yidx, NULL, g.ny, ysym))) {
            s = nne_error(s, "lcodec: stream \"y\": %s", nne_last_error());
            goto done;
        }
        for (size_t i = 0; i < g.ny; i++) y_hat[i] = (float)ysym[i];
    }
    if ((s = keep_last(c, ysym, g.ny, zsym, g.nz, y_hat))) goto done;
    s = synthesize(c, &g, y_hat, box.pad, box.image_width, box.image_height, out);
done:
    nne_free(ysym), nne_free(yidx), nne_free(y_hat), nne_free(mean);
    nne_free(zsym), nne_free(zidx);
    return s;
}

/* ---- Simple API ---------------------------------------------------------------------------- */

nne_status nne_lcodec_encode_rgb(const char *model_path, const uint8_t *rgb, int32_t width,
                                 int32_t height, int32_t stride, uint8_t **out, size_t *out_size) {
    *out = NULL;
    *out_size = 0;
    if (!model_path || !rgb || width < 1 || height < 1 || width > NNE_IMAGE_MAX_DIM ||
        height > NNE_IMAGE_MAX_DIM || stride < 3 * width)
        return nne_error(NNE_ERR_INVALID_ARG, "lcodec: bad RGB buffer (%dx%d, stride %d)",
                         (int)width, (int)height, (int)stride);
    nne_image img;
    nne_status s = nne_image_alloc(&img, width, height, 3);
    if (s) return s;
    for (int32_t r = 0; r < height; r++)
        memcpy(img.data + (size_t)r * width * 3, rgb + (size_t)r * stride, (size_t)width * 3);
    nne_lcodec *c = NULL;
    s = nne_lcodec_load(model_path, 0, &c);
    if (!s) s = nne_lcodec_encode(c, &img, false, out, out_size, NULL);
    nne_lcodec_free(c);
    nne_image_free(&img);
    return s;
}

nne_status nne_lcodec_decode_rgb(const char *model_path, const uint8_t *data, size_t size,
                                 uint8_t **rgb, int32_t *width, int32_t *height) {
    *rgb = NULL;
    *width = *height = 0;
    nne_lcodec *c = NULL;
    nne_image img = {0};
    nne_status s = nne_lcodec_load(model_path, 0, &c);
    if (!s) s = nne_lcodec_decode(c, data, size, &img);
    nne_lcodec_free(c);
    if (s) return s;
    *rgb = img.data;
    *width = img.width;
    *height = img.height;
    return NNE_OK;
}
