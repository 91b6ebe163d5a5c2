/* nnedge train: quantization-aware fine-tuning (--qat, --init) and knowledge distillation
 * (--teacher). Kept apart from cmd_train.c, which calls these hooks at fixed points (setup,
 * each step, validation, checkpoint, model output). docs/training.md, docs/quantization.md
 * section 17. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_train_qat.h"
#include "nnedge/backend.h"
#include "nnedge/file.h"
#include "nnedge/lcodec.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"
#include "nnedge/sha256.h"

enum { CALIB_SEED_XOR = 0x51A7 }; /* calibration crops differ from the training batches */

int cli_tq_parse(const char *cmd, const cli_tq_raw *r, bool rd, cli_tq *e) {
    memset(e, 0, sizeof *e);
    double d;
    int64_t i;
    e->init = r->init;
    e->rd = rd;
    if (r->qat) {
        if (nne_qscheme_from_name(r->qat, &e->qcfg.scheme))
            return cli_usage_error(cmd, "--qat %s: want per-tensor, per-channel or pow2", r->qat);
        /* A learned codec: only g_a and g_s run in int8 (nne_lcodec_quantize), and their
         * ranges are calibrated as that calibrates them, on a trained codec. */
        if (rd && !r->init)
            return cli_usage_error(cmd, "--qat: quantization-aware training of a learned codec "
                                        "fine-tunes a trained one; give --init CODEC.nne (the "
                                        "f32 codec whose int8 g_a and g_s are simulated)");
        e->qcfg.only = rd ? nne_lcodec_int8_prefixes() : NULL;
        e->qat = true;
        /* Calibrated ranges stay fixed by default; without a model to calibrate, EMA. */
        const char *ema = r->qat_ema ? r->qat_ema : r->init ? "0" : "0.01";
        if (!cli_parse_f64(ema, 0.0, 1.0, &d))
            return cli_usage_error(cmd, "--qat-ema %s: want a number in [0, 1]", ema);
        e->qcfg.ema = (float)d;
        if (!r->init && e->qcfg.ema == 0.0f)
            return cli_usage_error(cmd, "--qat-ema 0 (fixed ranges) needs --init MODEL to "
                                        "calibrate them");
        if (nne_observer_from_name(r->qat_observer ? r->qat_observer : "minmax", &e->observer))
            return cli_usage_error(cmd, "--qat-observer %s: want minmax, percentile, mse or kl",
                                   r->qat_observer);
        if (!cli_parse_i64(r->calib_images ? r->calib_images : "16", 1, 4096, &i))
            return cli_usage_error(cmd, "--calib-images %s: want an integer in [1, 4096]",
                                   r->calib_images);
        e->calib_images = (int32_t)i;
        if (!cli_parse_i64(r->qat_weight_bits ? r->qat_weight_bits : "8", 7, 8, &i))
            return cli_usage_error(cmd, "--qat-weight-bits %s: want 7 or 8", r->qat_weight_bits);
        e->qcfg.weight_bits = (int32_t)i;
        if (!cli_parse_i64(r->qat_fuse_prelu ? r->qat_fuse_prelu : "1", 0, 1, &i))
            return cli_usage_error(cmd, "--qat-fuse-prelu %s: want 0 or 1", r->qat_fuse_prelu);
        e->qcfg.no_fuse_prelu = i == 0;
        if (r->qat_lsq) {
            if (!cli_parse_f64(r->qat_lsq, 1e-6, 1e6, &d))
                return cli_usage_error(cmd, "--qat-lsq %s: want a number in (0, 1e6]", r->qat_lsq);
            if (e->qcfg.scheme == NNE_QSCHEME_POW2 || e->qcfg.ema > 0.0f)
                return cli_usage_error(cmd, "--qat-lsq: learned step sizes need per-tensor or "
                                            "per-channel scales and calibrated, fixed ranges "
                                            "(--init, --qat-ema 0)");
            e->qcfg.lsq = (float)d;
        }
        if (r->qat_output_range &&
            !cli_parse_range(r->qat_output_range, &e->qcfg.output_lo, &e->qcfg.output_hi))
            return cli_usage_error(cmd, "--qat-output-range %s: want LO,HI with LO < HI, e.g. 0,1",
                                   r->qat_output_range);
        if (r->qat_equalize_act) {
            if (!r->init || rd)
                return cli_usage_error(cmd, "--qat-equalize-act: needs --init MODEL (its weights "
                                            "are equalized), and not a learned codec");
            if (e->qcfg.ema > 0.0f)
                return cli_usage_error(cmd, "--qat-equalize-act: the ranges must be calibrated "
                                            "and fixed (--qat-ema 0)");
            if (!cli_parse_f64(r->qat_equalize_act, 1e-6, 1.0, &d))
                return cli_usage_error(cmd, "--qat-equalize-act %s: want a number in (0, 1]",
                                       r->qat_equalize_act);
            e->eq_alpha = (float)d;
        }
        if (r->qat_equalize) {
            if (!r->init || rd)
                return cli_usage_error(cmd, "--qat-equalize: needs --init MODEL (its weights "
                                            "are equalized), and not a learned codec");
            if (r->qat_equalize_act)
                return cli_usage_error(cmd, "--qat-equalize and --qat-equalize-act: choose one "
                                            "(weight ranges or activation ranges)");
            if (e->qcfg.ema > 0.0f)
                return cli_usage_error(cmd, "--qat-equalize: the ranges must be calibrated "
                                            "and fixed (--qat-ema 0)");
            e->eq_weights = true;
        }
        if (r->qat_equalize_linear) {
            if (!r->qat_equalize && !r->qat_equalize_act)
                return cli_usage_error(cmd, "--qat-equalize-linear: with --qat-equalize or "
                                            "--qat-equalize-act");
            e->eq_linear = true;
        }
    } else if (r->qat_ema || r->qat_observer || r->qat_weight_bits || r->qat_equalize_act ||
               r->qat_equalize || r->qat_equalize_linear ||
               r->qat_fuse_prelu || r->qat_lsq || r->qat_output_range || r->calib_images) {
        return cli_usage_error(cmd, "--qat-ema, --qat-observer, --qat-weight-bits, "
                                    "--qat-equalize[-act, -linear], --qat-fuse-prelu, "
                                    "--qat-lsq, "
                                    "--qat-output-range and --calib-images need --qat");
    }
    if (r->teacher) {
        if (rd)
            return cli_usage_error(cmd, "--teacher: distillation of the rate-distortion loss is "
                                        "not supported");
        e->teacher_path = r->teacher;
        e->dcfg.kind = NNE_DISTILL_OUTPUT;
        if (!cli_parse_f64(r->alpha ? r->alpha : "0.75", 0.0, 1.0, &d))
            return cli_usage_error(cmd, "--distill-alpha %s: want a number in [0, 1]", r->alpha);
        e->dcfg.alpha = (float)d;
        if (!cli_parse_f64(r->temperature ? r->temperature : "1", 1e-6, 1e6, &d))
            return cli_usage_error(cmd, "--distill-temperature %s: want a number > 0",
                                   r->temperature);
        if (d != 1.0)
            return cli_usage_error(cmd,
                                   "--distill-temperature %s: the model's output is an image "
                                   "(regression), where the temperature cancels (T^2 * "
                                   "MSE(y/T, t/T) = MSE(y, t)); only 1 is meaningful "
                                   "(docs/training.md, Distillation)",
                                   r->temperature);
        e->dcfg.temperature = 1.0f;
        e->distill = true;
    } else if (r->alpha || r->temperature) {
        return cli_usage_error(cmd, "--distill-alpha and --distill-temperature need --teacher");
    }
    return 0;
}

void cli_tq_free(cli_tq *e) {
    nne_qat_free(e->q);
    nne_session_free(e->ts);
    nne_graph_free(e->tg);
    nne_free(e->tout);
    e->q = NULL;
    e->ts = NULL;
    e->tg = NULL;
    e->tout = NULL;
}

/* SHA-256 of a file, hex. */
static nne_status file_hash(const char *path, char hex[65]) {
    uint8_t *buf = NULL;
    size_t n = 0;
    nne_status st = nne_file_read(path, (size_t)1 << 32, &buf, &n);
    if (st) return st;
    nne_sha256_hex(buf, n, hex);
    nne_free(buf);
    return NNE_OK;
}

/* st with "<prefix>: " before the library's message (copied first: nne_error formats into
 * the buffer nne_last_error() returns). */
static nne_status wrap(nne_status st, const char *prefix) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nne_last_error());
    return nne_error(st, "%s: %s", prefix, msg);
}

/* A model file's f32 graph rebuilt for batch x h x w x 3 inputs: cae-seed by its builder
 * (the transposed convolutions' output padding depends on the size), anything else by
 * changing the input shape. */
static nne_status model_at(const char *path, int32_t batch, int32_t h, int32_t w, nne_graph **out) {
    *out = NULL;
    nne_graph *m = NULL, *g = NULL;
    nne_status st = nne_model_read_file(path, &m);
    if (st) return st; /* the reader's message names the file */
    if (nne_graph_get_meta(m, "quant.scheme")) {
        nne_graph_free(m);
        return nne_error(NNE_ERR_UNSUPPORTED, "%s is quantized; give the f32 model", path);
    }
    const char *kind = nne_graph_get_meta(m, "model");
    if (kind && !strcmp(kind, "cae-seed")) {
        st = nne_model_cae_seed_like(m, h, w, NNE_CAE_FULL, &g); /* a pruned model keeps its widths */
        if (!st && batch != 1) st = nne_graph_set_input_shape(g, 0, nne_shape_4d(batch, h, w, 3));
        if (!st) st = nne_graph_infer(g);
        if (!st) st = nne_model_copy_weights(g, m);
        nne_graph_free(m);
    } else {
        g = m;
        st = nne_graph_set_input_shape(g, 0, nne_shape_4d(batch, h, w, 3));
        if (!st) st = nne_graph_infer(g);
    }
    if (st) {
        nne_graph_free(g);
        return wrap(st, path);
    }
    *out = g;
    return NNE_OK;
}

typedef struct calib_ctx {
    const nne_dataset *ds;
    nne_crop_opts crop;
} calib_ctx;

static nne_status calib_sample(void *ctx, int32_t i, float *x) {
    const calib_ctx *c = ctx;
    return nne_dataset_crop_batch(c->ds, &c->crop, (uint64_t)i, x);
}

/* A learned codec's ranges: the --init codec made an int8 codec by nne_lcodec_quantize with
 * the same calibration (g_a on the crops, g_s on the f32 codec's y_hat of them), whose two
 * int8 parts give the ranges of the activations QAT simulates. */
static nne_status calibrate_codec(cli_tq *e, const nne_quantize_opts *o, int32_t crop) {
    nne_graph *m = NULL;
    nne_status st = nne_model_read_file(e->init, &m);
    if (st) return st; /* the reader's message names the file */
    const nne_lcodec_quantize_opts lo = {.q = *o, .height = crop, .width = crop};
    st = nne_lcodec_quantize(m, &lo);
    if (!st)
        st = nne_qat_ranges_from_parts(e->q, (const nne_graph *const *)m->attached, m->n_attached);
    nne_graph_free(m);
    return st ? wrap(st, e->init) : NNE_OK;
}

/* Activation ranges by calibrating the --init model with the observer on crops of the
 * training data (seeded apart from the training batches): the pass's own ranges. With
 * --qat-equalize-act the pass first equalizes the model's activation ranges on the same crops
 * (with --qat-equalize its weight ranges, cross-layer equalization), and *eq receives the
 * equalized f32 model (the weights those ranges belong to). */
static nne_status calibrate(cli_tq *e, const nne_dataset *ds, int32_t crop, uint64_t seed,
                            nne_graph **eq) {
    nne_graph *g = NULL, *qg = NULL;
    calib_ctx c = {
        .ds = ds,
        .crop = {.batch = 1, .height = crop, .width = crop, .seed = seed ^ CALIB_SEED_XOR}};
    nne_quantize_opts o = {.scheme = e->qcfg.scheme,
                           .observer = {.kind = e->observer},
                           .weight_bits = e->qcfg.weight_bits,
                           .no_fuse_prelu = e->qcfg.no_fuse_prelu,
                           .output_lo = e->qcfg.output_lo,
                           .output_hi = e->qcfg.output_hi,
                           .n_samples = e->calib_images,
                           .sample = calib_sample,
                           .ctx = &c,
                           .equalize = e->eq_alpha > 0.0f || e->eq_weights,
                           .equalize_kind = e->eq_weights ? NNE_EQUALIZE_WEIGHTS
                                                          : NNE_EQUALIZE_ACTIVATIONS,
                           .equalize_alpha = e->eq_alpha,
                           .equalize_linear = e->eq_linear,
                           .equalized = e->eq_alpha > 0.0f || e->eq_weights ? eq : NULL};
    if (e->rd) return calibrate_codec(e, &o, crop);
    nne_status st = model_at(e->init, 1, crop, crop, &g);
    if (!st) st = nne_quantize_graph(g, &o, &qg);
    if (!st) st = nne_qat_ranges_from_quantized(e->q, qg);
    nne_graph_free(qg);
    nne_graph_free(g);
    return st;
}

nne_status cli_tq_setup(cli_tq *e, nne_graph *g, nne_trainer *t, const nne_dataset *ds,
                        int32_t crop, uint64_t seed, bool resumed, const char *saved_teacher_hash) {
    nne_status st = NNE_OK;
    e->crop = crop;
    if (e->qat) {
        if ((st = nne_qat_create(g, &e->qcfg, &e->q))) return st;
        /* A resumed run's ranges are in its model's metadata (written with the checkpoint). */
        nne_graph *eq = NULL;
        if (resumed)
            st = nne_qat_load_meta(e->q, g);
        else if (e->init)
            st = calibrate(e, ds, crop, seed, &eq);
        /* --qat-equalize-act: train the equalized weights (the same f32 function) that the
         * calibrated ranges belong to; a resumed run has them in its checkpoint. */
        if (!st && eq) {
            st = nne_model_copy_weights(g, eq);
            if (!st) nne_params_load(nne_trainer_params(t), g);
        }
        nne_graph_free(eq);
        if (!st) st = nne_trainer_set_qat(t, e->q);
        if (st) return st;
    }
    if (e->distill) {
        const nne_shape *in = &g->tensors[g->inputs[0]].shape;
        const nne_shape *os = &g->tensors[g->outputs[0]].shape;
        if ((st = file_hash(e->teacher_path, e->teacher_hash))) return st;
        if (resumed && saved_teacher_hash && strcmp(saved_teacher_hash, e->teacher_hash) != 0)
            return nne_error(
                NNE_ERR_INVALID_ARG,
                "--teacher %s differs from the checkpoint's teacher (SHA-256 %.16s..., "
                "now %.16s...): resuming would not continue the same run",
                e->teacher_path, saved_teacher_hash, e->teacher_hash);
        if ((st = model_at(e->teacher_path, (int32_t)in->dim[0], (int32_t)in->dim[1],
                           (int32_t)in->dim[2], &e->tg)))
            return st;
        const nne_shape *ts = &e->tg->tensors[e->tg->outputs[0]].shape;
        if (e->tg->n_outputs != 1 || !nne_shape_equal(ts, os))
            return nne_error(NNE_ERR_SHAPE,
                             "--teacher %s: its output does not have the student's shape",
                             e->teacher_path);
        e->tcount = (size_t)nne_shape_numel(os);
        if (!(e->tout = nne_malloc(e->tcount * sizeof *e->tout))) return NNE_ERR_NOMEM;
        if ((st = nne_session_create(e->tg, nne_backend_cpu(), &e->ts))) return st;
        if ((st = nne_trainer_set_distill(t, &e->dcfg))) return st;
    }
    return NNE_OK;
}

nne_status cli_tq_batch(cli_tq *e, nne_trainer *t, const float *batch) {
    if (!e->distill) return NNE_OK;
    const nne_shape *in = &e->tg->tensors[e->tg->inputs[0]].shape;
    nne_status st = nne_session_set_input_f32(e->ts, 0, batch, (size_t)nne_shape_numel(in));
    if (!st) st = nne_session_run(e->ts);
    if (!st) st = nne_session_get_output_f32(e->ts, 0, e->tout, e->tcount);
    if (!st) nne_trainer_set_teacher_output(t, e->tout);
    return st;
}

nne_status cli_tq_val_setup(const cli_tq *e, nne_graph *g, nne_trainer *t, nne_qat **q) {
    *q = NULL;
    if (!e->q) return NNE_OK;
    nne_status st = nne_qat_create(g, &e->qcfg, q);
    if (!st) st = nne_qat_copy_ranges(*q, e->q);
    if (!st) st = nne_trainer_set_qat(t, *q);
    return st;
}

nne_status cli_tq_store(const cli_tq *e, nne_graph *g) {
    return e->q ? nne_qat_store_meta(e->q, g) : NNE_OK;
}

static bool qat_range(void *ctx, const char *tensor, float *lo, float *hi) {
    return nne_qat_get_range(ctx, tensor, lo, hi);
}

/* A learned codec's output: the int8 codec of the trained weights with the QAT ranges, made
 * by nne_lcodec_quantize as `nnedge quantize` makes one, without calibration. */
static nne_status attach_int8_parts(const cli_tq *e, nne_graph *g) {
    const nne_lcodec_quantize_opts o = {.q = {.scheme = e->qcfg.scheme,
                                              .observer = {.kind = e->observer},
                                              .weight_bits = e->qcfg.weight_bits,
                                              .no_fuse_prelu = e->qcfg.no_fuse_prelu,
                                              .output_lo = e->qcfg.output_lo,
                                              .output_hi = e->qcfg.output_hi,
                                              .fixed_range = qat_range,
                                              .ctx = e->q},
                                        .height = e->crop,
                                        .width = e->crop};
    nne_status st = nne_lcodec_quantize(g, &o);
    for (int32_t i = 0; !st && i < g->n_attached; i++)
        st = nne_graph_set_meta(g->attached[i], "quant.calib", "train.qat (qat.range.*)");
    return st;
}

nne_status cli_tq_model_finish(const cli_tq *e, nne_graph *g) {
    char v[4200];
    nne_status st = cli_tq_store(e, g);
    if (!st && e->qat) {
        char eqs[96] = "";
        if (e->eq_alpha > 0.0f)
            snprintf(eqs, sizeof eqs, " after activation-range equalization (alpha %g)",
                     (double)e->eq_alpha);
        else if (e->eq_weights)
            snprintf(eqs, sizeof eqs, " after cross-layer equalization");
        if (e->eq_linear) snprintf(eqs + strlen(eqs), sizeof eqs - strlen(eqs), " (latent too)");
        char lsq[64] = "";
        if (e->qcfg.lsq > 0.0f)
            snprintf(lsq, sizeof lsq, ", learned step sizes (LSQ, lr x %g)", (double)e->qcfg.lsq);
        char orng[80] = "";
        if (e->qcfg.output_lo < e->qcfg.output_hi)
            snprintf(orng, sizeof orng, ", output range [%g, %g]", (double)e->qcfg.output_lo,
                     (double)e->qcfg.output_hi);
        snprintf(v, sizeof v, "%s%s%s, %s ranges%s%s%s%s%s%s", nne_qscheme_name(e->qcfg.scheme),
                 e->qcfg.weight_bits == 7 ? " 7-bit weights" : "",
                 e->qcfg.no_fuse_prelu ? " unfused PReLU" : "",
                 e->qcfg.ema > 0.0f ? "EMA" : "fixed", e->init ? " calibrated with " : "",
                 e->init ? nne_observer_name(e->observer) : "", eqs, lsq, orng,
                 e->rd ? "; g_a and g_s simulated in int8 and attached as the int8 codec's "
                         "parts"
                       : "");
        st = nne_graph_set_meta(g, "train.qat", v);
    }
    if (!st && e->qat && e->rd) st = attach_int8_parts(e, g);
    if (!st && e->init) st = nne_graph_set_meta(g, "train.init", e->init);
    if (!st && e->distill) {
        snprintf(v, sizeof v, "teacher %.4000s (SHA-256 %.16s), alpha %g, temperature %g",
                 e->teacher_path, e->teacher_hash, (double)e->dcfg.alpha,
                 (double)e->dcfg.temperature);
        st = nne_graph_set_meta(g, "train.distill", v);
    }
    return st;
}
