/* Int8 learned codecs (include/nnedge/lcodec.h nne_lcodec_quantize, docs/codec.md "Int8
 * codecs"): the analysis transform g_a is quantized on the calibration images, the synthesis
 * transform g_s on the y_hat the f32 codec derives from those images, and both are attached
 * to the model. The hyperprior (h_a, h_s) and the entropy model stay f32: the decoder derives
 * its tables from h_s's bits, which must be the encoder's on every machine. Ranges fixed by
 * the caller (nne_quantize_opts.fixed_range: quantization-aware training, `nnedge train
 * --qat`) replace calibration where given. */
#include <stdio.h>
#include <string.h>

#include "lcodec_internal.h"
#include "nnedge/lcodec.h"
#include "nnedge/passes.h"

/* Calibration of g_s: sample i is the y_hat of calibration image i under the f32 codec. */
typedef struct synth_ctx {
    const nne_lcodec_quantize_opts *o;
    nne_lcodec *codec; /* the f32 codec of the model */
    float *image;      /* [height][width][3] */
} synth_ctx;

static const char *const k_int8_prefixes[] = {"g_a.", "g_s.", NULL};

const char *const *nne_lcodec_int8_prefixes(void) { return k_int8_prefixes; }

static nne_status synth_sample(void *ctx, int32_t i, float *y_hat) {
    synth_ctx *c = ctx;
    nne_status s = c->o->q.sample(c->o->q.ctx, i, c->image);
    return s ? s : nne_lcodec_latents(c->codec, c->image, c->o->height, c->o->width, y_hat);
}

static void synth_progress(void *ctx, const char *phase, int32_t done, int32_t total) {
    const synth_ctx *c = ctx;
    if (c->o->q.progress) c->o->q.progress(c->o->q.ctx, phase, done, total);
}

static bool synth_fixed_range(void *ctx, const char *tensor, float *lo, float *hi) {
    const synth_ctx *c = ctx;
    return c->o->q.fixed_range(c->o->q.ctx, tensor, lo, hi);
}

/* Build part `which` at the calibration size with the model's weights and quantize it. */
static nne_status quantize_part(const nne_rdmodel_config *cfg, const nne_graph *model,
                                nne_rd_part which, const nne_lcodec_quantize_opts *o,
                                const nne_quantize_opts *qo, nne_graph **out) {
    nne_graph *g = NULL;
    nne_status s = nne_model_rd(cfg, 1, o->height, o->width, which, &g);
    if (!s) s = nne_model_copy_weights(g, model);
    if (!s) s = nne_quantize_graph(g, qo, out);
    nne_graph_free(g);
    if (s)
        return nne_error(s, "lcodec quantize: %s: %s", which == NNE_RD_ANALYSIS ? "g_a" : "g_s",
                         nne_last_error());
    return NNE_OK;
}

nne_status nne_lcodec_quantize(nne_graph *model, const nne_lcodec_quantize_opts *o) {
    /* Without samples every range must be fixed: nne_quantize_graph says which is not. */
    if (!model || !o || (!o->q.fixed_range && (!o->q.sample || o->q.n_samples < 1)))
        return nne_error(NNE_ERR_INVALID_ARG, "lcodec quantize: no model or no calibration "
                                              "samples");
    if (model->n_attached)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "lcodec quantize: '%s' has attached graphs already (an int8 codec?); "
                         "quantize the f32 model",
                         model->name);
    nne_lcodec *c = NULL;
    nne_status s = nne_lcodec_create(model, 0, &c);
    if (s) return s;
    nne_lcodec_info info;
    nne_lcodec_get_info(c, &info);
    if (o->height < info.align || o->width < info.align || o->height % info.align ||
        o->width % info.align) {
        nne_lcodec_free(c);
        return nne_error(NNE_ERR_INVALID_ARG,
                         "lcodec quantize: calibration size %dx%d: %s needs positive multiples "
                         "of %d",
                         (int)o->width, (int)o->height, info.model_id, (int)info.align);
    }
    const nne_rdmodel_config cfg = {info.kind, info.n, info.m, NNE_QUANTIZE_NOISE, false};
    nne_graph *qa = NULL, *qs = NULL;
    /* g_a on the images themselves; its output is the latent y, not an image: no output
     * range. */
    nne_quantize_opts qa_o = o->q;
    qa_o.output_lo = qa_o.output_hi = 0.0f;
    s = quantize_part(&cfg, model, NNE_RD_ANALYSIS, o, &qa_o, &qa);
    /* g_s on y_hat: the f32 codec's analysis of each image. */
    synth_ctx sc = {o, c, nne_malloc((size_t)o->height * (size_t)o->width * 3 * sizeof(float))};
    if (!s && !sc.image) s = NNE_ERR_NOMEM;
    nne_quantize_opts qo = o->q;
    qo.sample = o->q.sample ? synth_sample : NULL;
    qo.progress = synth_progress;
    qo.fixed_range = o->q.fixed_range ? synth_fixed_range : NULL;
    qo.ctx = &sc;
    if (!s) s = quantize_part(&cfg, model, NNE_RD_SYNTHESIS, o, &qo, &qs);
    nne_free(sc.image);
    nne_lcodec_free(c);
    if (!s) s = nne_graph_attach(model, qa);
    if (!s) {
        qa = NULL;
        s = nne_graph_attach(model, qs);
        if (s) { /* leave the model as it was */
            nne_graph_free(model->attached[--model->n_attached]);
        } else {
            qs = NULL;
        }
    }
    nne_graph_free(qa);
    nne_graph_free(qs);
    return s;
}
