/* nnedge train's quantization-aware fine-tuning and distillation options (cli_train_qat.c). */
#ifndef NNE_CLI_TRAIN_QAT_H
#define NNE_CLI_TRAIN_QAT_H

#include "nnedge/dataset.h"
#include "nnedge/passes.h"
#include "nnedge/qat.h"

struct nne_session;

/* The option values as given (NULL = absent). */
typedef struct cli_tq_raw {
    /* "1" when the flag --qat-equalize (--qat-equalize-linear) is given: checkpoint keys */
    const char *qat_equalize, *qat_equalize_linear;
    const char *qat, *qat_ema, *qat_observer, *qat_weight_bits, *qat_equalize_act, *calib_images,
        *qat_fuse_prelu, *qat_lsq, *qat_output_range, *init, *teacher, *alpha, *temperature;
} cli_tq_raw;

typedef struct cli_tq {
    bool qat, distill;
    bool rd;      /* a learned codec: QAT simulates g_a and g_s (nne_lcodec_int8_prefixes) */
    int32_t crop; /* the training crop (cli_tq_setup) */
    nne_qat_config qcfg;
    nne_observer_kind observer; /* calibration of the --init model's ranges */
    int32_t calib_images;
    float eq_alpha;  /* --qat-equalize-act: > 0 equalizes the --init weights first */
    bool eq_weights; /* --qat-equalize: cross-layer equalization of the --init weights first */
    bool eq_linear;  /* --qat-equalize-linear: the equalization includes linear pairs */
    const char *init, *teacher_path;
    nne_distill_config dcfg;
    char teacher_hash[65];
    nne_qat *q;             /* the training graph's QAT state */
    nne_graph *tg;          /* the teacher at the training batch shape */
    struct nne_session *ts; /* its session (cpu backend) */
    float *tout;            /* [tcount] its output for the current batch */
    size_t tcount;
} cli_tq;

/* Validate the options (rd: a learned codec is trained; its QAT needs --init). 0 or
 * NNE_EXIT_USAGE (printed). */
int cli_tq_parse(const char *cmd, const cli_tq_raw *r, bool rd, cli_tq *e);
/* After the trainer exists: QAT state (ranges from the checkpoint's model when resumed, else
 * calibrated on `ds` crops of the --init model, a learned codec's by nne_lcodec_quantize,
 * else EMA) and the teacher (its file's SHA-256 must equal saved_teacher_hash when resumed). */
nne_status cli_tq_setup(cli_tq *e, nne_graph *g, nne_trainer *t, const nne_dataset *ds,
                        int32_t crop, uint64_t seed, bool resumed, const char *saved_teacher_hash);
/* Before each step: the teacher's output for `batch`. */
nne_status cli_tq_batch(cli_tq *e, nne_trainer *t, const float *batch);
/* A validation trainer on graph g (another size) gets the same fake quantization; *q (free
 * with nne_qat_free) is its state. */
nne_status cli_tq_val_setup(const cli_tq *e, nne_graph *g, nne_trainer *t, nne_qat **q);
/* The QAT ranges into a graph's metadata (before a checkpoint); and into the output model g
 * with the train.qat / train.init / train.distill provenance, and for a learned codec under
 * QAT its int8 parts (nne_lcodec_quantize with the QAT ranges: g becomes an int8 codec). */
nne_status cli_tq_store(const cli_tq *e, nne_graph *g);
nne_status cli_tq_model_finish(const cli_tq *e, nne_graph *g);
void cli_tq_free(cli_tq *e);

#endif
