/* nnedge train: train a built-in model on a folder of images with random crops, validation on
 * full images, a progress bar, a CSV log, checkpoints every few minutes and on Ctrl-C, exact
 * resume, and a model file with provenance. docs/cli.md, docs/training.md. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_train_qat.h"
#include "nnedge/dataset.h"
#include "nnedge/file.h"
#include "nnedge/gemm.h"
#include "nnedge/image.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/threadpool.h"
#include "nnedge/train.h"

static const char *k_cmd = "train";

enum { EXIT_INTERRUPTED = 130, PATH_BYTES = 4096, MIN_VAL_SIDE = 21 };

static void help(void) {
    printf(
        "usage: nnedge train --data DIR -o OUT.nne [options]\n"
        "       nnedge train --resume CHECKPOINT [options]\n\n"
        "Train a built-in model on random crops of the images under DIR (recursively), validate\n"
        "on the full images of --val, and write OUT.nne with its provenance (train.* metadata).\n"
        "A checkpoint (weights, optimizer state, data position, settings) is written every\n"
        "--checkpoint-minutes, at the end and on Ctrl-C; --resume continues bit for bit.\n\n"
        "model and data:\n"
        "  --model NAME          cae-seed (default), or a learned codec: bmshj2018-factorized,\n"
        "                        bmshj2018-hyperprior, mbt2018-mean (rate-distortion loss)\n"
        "  --channels N,M        learned codecs: hidden and latent channels (default 64,96)\n"
        "  --lambda L            learned codecs: L = lambda*255^2*MSE + bpp (default 0.0130)\n"
        "  --quant-proxy P       learned codecs: noise (default): y + u, z + u stand in for\n"
        "                        rounding everywhere; mixed: the rate terms take y + u, z + u,\n"
        "                        g_s and h_s the STE-rounded values they decode from\n"
        "  --entropy-lr-mult M   learned codecs: the entropy bottleneck's density parameters\n"
        "                        learn at M times the learning rate (default 1), e.g. 30 for\n"
        "                        a fresh bottleneck on trained transforms (--init-partial)\n"
        "  --data DIR            training images (.png .jpg .ppm .pgm), never Kodak\n"
        "  --val DIR             validation images (full size), never Kodak\n"
        "  --batch B             crops per step (default 8)\n"
        "  --crop S              crop size in pixels (default 256)\n"
        "  --steps N | --epochs E  length of the run (default --epochs 50)\n"
        "  --seed S              initialisation and data order (default 1)\n"
        "  --init MODEL.nne      start a new run from this model's weights (fine-tuning: a\n"
        "                        learned codec to another --lambda, a model made by 'nnedge\n"
        "                        prune', which keeps its widths); fresh optimizer\n"
        "  --init-partial        with --init: copy only the tensors whose name and shape\n"
        "                        match (a bmshj2018-factorized codec from an mbt2018-mean\n"
        "                        codec's g_a/g_s); the rest start from --seed\n"
        "  --init-widen          with --init: as --init-partial, and a tensor this run has\n"
        "                        with more channels (--channels larger than the --init\n"
        "                        model's) takes its values in the leading channels; new\n"
        "                        input channels of convolutions start at 0 (net2net)\n"
        "  --prune-schedule SPEC gradual magnitude pruning of the conv weights (Zhu & Gupta):\n"
        "                        final=S[,initial=S0][,begin=T0][,every=DT][,count=N], or just\n"
        "                        S; defaults initial 0, begin 0, every steps/100, count up to\n"
        "                        3/4 of the run (docs/pruning.md)\n"
        "optimization:\n"
        "  --optimizer adam|sgd  (default adam; sgd uses momentum 0.9)\n"
        "  --lr LR               base learning rate (default 1e-3)\n"
        "  --lr-schedule constant|step|cosine  (default cosine, down to lr/100)\n"
        "  --warmup N            linear warm-up steps (default 2%% of the steps, at most 1000)\n"
        "  --weight-decay W      decoupled weight decay on conv weights (default 0)\n"
        "  --clip C              global gradient-norm limit, 0 = none (default 0)\n"
        "  --loss mse|ms-ssim|rd (default mse; rd, the only choice, for learned codecs)\n"
        "  --matmul f32|bf16|auto  precision of the convolutions' matrix products (default\n"
        "                        f32); bf16: operands rounded to bf16, sums in f32 (mixed\n"
        "                        precision; AMX tiles where the CPU has them, ~1.7x faster;\n"
        "                        without AMX ~5%% slower than f32); auto: bf16 where AMX\n"
        "                        runs it, else f32 (on --resume: the checkpoint's)\n"
        "fine-tuning, quantization-aware training, distillation (cae-seed):\n"
        "  --qat SCHEME          quantization-aware training for per-tensor, per-channel or\n"
        "                        pow2 (DPU) int8: fake-quantized weights and activations,\n"
        "                        straight-through gradients; the model keeps the ranges\n"
        "                        (qat.* metadata) for 'nnedge quantize'. A learned codec\n"
        "                        (needs --init CODEC.nne): only g_a and g_s, and the output\n"
        "                        is the int8 codec ('nnedge quantize' with the QAT ranges)\n"
        "  --qat-ema C           activation ranges follow an EMA of the batch min/max with\n"
        "                        constant C; 0 = fixed (default 0 with --init, else 0.01)\n"
        "  --qat-observer O      calibration of the --init model's ranges: minmax (default),\n"
        "                        percentile, mse, kl\n"
        "  --qat-weight-bits B   8 (default): weight codes in [-127, 127]; 7: [-64, 64], the\n"
        "                        codes of 'nnedge quantize --weight-bits 7' (AVX2 w7 kernels)\n"
        "  --qat-equalize-act A  equalize the --init model's activation ranges first\n"
        "                        (nnedge quantize --equalize-act A): QAT trains the\n"
        "                        equalized weights; fixed ranges only\n"
        "  --qat-equalize        cross-layer equalization of the --init model's weights\n"
        "                        first (nnedge quantize --equalize; for pow2)\n"
        "  --qat-equalize-linear with either: the latent pair too (--equalize-linear)\n"
        "  --qat-fuse-prelu 0|1  1 (default): each conv + PReLU is one int8 layer, as\n"
        "                        'nnedge quantize' builds it; 0: two (--no-fuse-prelu)\n"
        "  --qat-lsq M           learn the activation scales (LSQ): Adam on log s at the\n"
        "                        learning rate times M; fixed calibrated ranges, not pow2\n"
        "  --qat-output-range LO,HI  the output's range (0,1: an image on the 8-bit pixel\n"
        "                        grid, nnedge quantize --output-range), held fixed\n"
        "  --calib-images N      calibration crops from --data (default 16)\n"
        "  --teacher MODEL       distil from an f32 teacher model: L = A*L_task(y, x) +\n"
        "                        (1-A)*L_task(y, teacher(x))\n"
        "  --distill-alpha A     weight of the task loss, in [0, 1] (default 0.75)\n"
        "  --distill-temperature T  1 (the only value for image outputs, docs/training.md)\n"
        "run:\n"
        "  --threads T           threads (default: NNEDGE_THREADS or all CPUs)\n"
        "  --val-every N         validate every N steps, and at the end (default 1000)\n"
        "  --log FILE.csv        CSV log: step,epoch,lr,train_loss,val_loss,val_psnr,elapsed_s\n"
        "  --log-every N         a CSV row every N steps (default 100)\n"
        "  --checkpoint FILE     checkpoint path (default OUT with .ckpt instead of .nne)\n"
        "  --checkpoint-minutes M  minutes between checkpoints, 0 = end only (default 10)\n"
        "  --resume FILE         continue from a checkpoint with its settings\n"
        "  --stop-after N        stop after N steps of this session with a checkpoint (exit 0;\n"
        "                        --resume continues), to train in time slices\n"
        "  --commit HASH         source revision for train.commit (default: git, else unknown)\n"
        "  --force               overwrite an existing OUT.nne / log (never the data)\n"
        "  -q                    no progress output\n"
        "  -h, --help            this help\n\n"
        "The best model by validation loss is kept beside the checkpoint (NAME.best.nne).\n"
        "Exit codes: 0 done, 1 runtime error, 2 usage error, 130 interrupted (checkpoint\n"
        "written; rerun with --resume to continue).\n");
}

/* ---- settings ---------------------------------------------------------------------------- */

typedef struct settings {
    const char *model;
    const char *data, *val; /* as given */
    const char *output;
    int64_t steps;
    double epochs; /* > 0 when the length was given in epochs */
    int32_t batch, crop;
    float lr;
    nne_lr_kind sched;
    int64_t warmup; /* -1 = default */
    nne_optim_kind optim;
    float weight_decay, clip;
    nne_loss_kind loss;
    bool rd;                /* a learned codec (rate-distortion loss) */
    nne_rdmodel_config rdm; /* its kind and channels */
    float lambda;
    float entropy_lr_mult; /* 1 = the base rate */
    bool bf16_matmul;      /* --matmul bf16 */
    uint64_t seed;
    int64_t val_every, log_every;
    int64_t stop_after; /* 0 = run to the end */
    double ckpt_minutes;
    int32_t threads;
    bool prune;                /* --prune-schedule given */
    nne_prune_schedule psched; /* begin/every/count < 0: default, resolved by resolve_prune */
} settings;

static const char *k_sched_names[] = {"constant", "step", "cosine"};
static const char *k_optim_names[] = {"sgd", "adam"};
static const char *k_loss_names[] = {"mse", "ms-ssim", "rd"};

static int name_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (s && !strcmp(s, names[i])) return i;
    return -1;
}

/* The option values as strings (NULL = not given), in one place so that a resumed run can
 * compare them with the checkpoint's settings. */
typedef struct raw_opts {
    const char *model, *data, *val, *steps, *epochs, *batch, *crop, *lr, *sched, *warmup, *optim,
        *wd, *clip, *loss, *seed, *threads, *ckpt, *ckpt_minutes, *resume, *log, *val_every,
        *log_every, *commit, *stop_after, *channels, *lambda, *prune, *quant_proxy,
        *entropy_lr_mult, *matmul;
    cli_tq_raw tq; /* --init, --qat*, --calib-images, --teacher, --distill-* */
    bool force, init_partial, init_widen, qat_equalize, qat_equalize_linear;
} raw_opts;

/* The options that define the computation: on --resume they come from the checkpoint and a
 * differing value on the command line is refused. */
typedef struct train_key {
    const char *key; /* checkpoint key = option name */
    size_t off;      /* offsetof(raw_opts, ...) */
} train_key;
#define RAW(f) offsetof(raw_opts, f)
static const train_key k_train_keys[] = {
    {"model", RAW(model)},       {"steps", RAW(steps)},   {"epochs", RAW(epochs)},
    {"batch", RAW(batch)},       {"crop", RAW(crop)},     {"lr", RAW(lr)},
    {"lr-schedule", RAW(sched)}, {"warmup", RAW(warmup)}, {"optimizer", RAW(optim)},
    {"weight-decay", RAW(wd)},   {"clip", RAW(clip)},     {"loss", RAW(loss)},
    {"seed", RAW(seed)},         {"channels", RAW(channels)}, {"lambda", RAW(lambda)},
    {"quant-proxy", RAW(quant_proxy)}, {"entropy-lr-mult", RAW(entropy_lr_mult)},
    {"matmul", RAW(matmul)},
    {"qat", RAW(tq.qat)},        {"qat-ema", RAW(tq.qat_ema)},
    {"qat-observer", RAW(tq.qat_observer)}, {"qat-weight-bits", RAW(tq.qat_weight_bits)},
    {"qat-equalize-act", RAW(tq.qat_equalize_act)}, {"calib-images", RAW(tq.calib_images)},
    {"qat-equalize", RAW(tq.qat_equalize)}, {"qat-equalize-linear", RAW(tq.qat_equalize_linear)},
    {"qat-fuse-prelu", RAW(tq.qat_fuse_prelu)}, {"qat-lsq", RAW(tq.qat_lsq)},
    {"qat-output-range", RAW(tq.qat_output_range)},
    {"distill-alpha", RAW(tq.alpha)}, {"distill-temperature", RAW(tq.temperature)},
    {"prune-schedule", RAW(prune)},
};
static const char *raw_get(const raw_opts *r, size_t off) {
    return *(const char *const *)((const char *)r + off);
}
static void raw_set(raw_opts *r, size_t off, const char *v) {
    *(const char **)((char *)r + off) = v;
}

/* Parse a --prune-schedule: "S" or "final=S,initial=S0,begin=T0,every=DT,count=N" (any
 * order, final required). Unset begin/every/count are -1. 0 or -1. */
static int parse_prune(const char *spec, nne_prune_schedule *o) {
    *o = (nne_prune_schedule){.initial = 0.0, .final = -1.0, .begin = -1, .every = -1, .count = -1};
    char buf[256];
    if (strlen(spec) >= sizeof buf) return -1;
    snprintf(buf, sizeof buf, "%s", spec);
    if (!strchr(buf, '=')) return cli_parse_f64(buf, 0.0, 0.999999, &o->final) ? 0 : -1;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return -1;
        *eq = 0;
        const char *v = eq + 1;
        bool ok;
        if (!strcmp(tok, "final"))
            ok = cli_parse_f64(v, 0.0, 0.999999, &o->final);
        else if (!strcmp(tok, "initial"))
            ok = cli_parse_f64(v, 0.0, 0.999999, &o->initial);
        else if (!strcmp(tok, "begin"))
            ok = cli_parse_i64(v, 0, (int64_t)1 << 40, &o->begin);
        else if (!strcmp(tok, "every"))
            ok = cli_parse_i64(v, 1, (int64_t)1 << 40, &o->every);
        else if (!strcmp(tok, "count"))
            ok = cli_parse_i64(v, 0, (int64_t)1 << 40, &o->count);
        else
            ok = false;
        if (!ok) return -1;
    }
    return o->final >= o->initial ? 0 : -1;
}

/* Fill the schedule's defaults for a run of `total` steps: every = max(1, total / 100), the
 * last update at 3/4 of the run (count >= 0). */
static void resolve_prune(nne_prune_schedule *p, int64_t total) {
    if (p->begin < 0) p->begin = 0;
    if (p->every < 0) p->every = total / 100 > 1 ? total / 100 : 1;
    if (p->count < 0) {
        const int64_t end = total * 3 / 4;
        p->count = end > p->begin ? (end - p->begin) / p->every : 0;
    }
}

/* Validate the raw options into s. Returns 0 or NNE_EXIT_USAGE (message printed). */
/* Whether --matmul bf16 runs on AMX tiles here (else it is emulated, slower than f32). */
static bool amx_bf16(void) { return strcmp(nne_gemm_bf16_path(), "amx") == 0; }

static int settings_from_raw(const raw_opts *r, settings *s) {
    memset(s, 0, sizeof *s);
    int64_t i;
    double d;
    s->model = r->model ? r->model : "cae-seed";
    if (strcmp(s->model, "cae-seed") != 0) {
        if (nne_rdmodel_kind_from_name(s->model, &s->rdm.kind) != NNE_OK)
            return cli_usage_error(k_cmd,
                                   "--model %s: want cae-seed, bmshj2018-factorized, "
                                   "bmshj2018-hyperprior or mbt2018-mean",
                                   s->model);
        s->rd = true;
        s->rdm.train_mode = NNE_QUANTIZE_NOISE;
        const char *qp = r->quant_proxy ? r->quant_proxy : "noise";
        if (strcmp(qp, "noise") != 0 && strcmp(qp, "mixed") != 0)
            return cli_usage_error(k_cmd, "--quant-proxy %s: want noise or mixed", qp);
        s->rdm.mixed = !strcmp(qp, "mixed");
        const char *ch = r->channels ? r->channels : "64,96";
        int n = 0, m = 0, used = 0;
        if (sscanf(ch, "%d,%d%n", &n, &m, &used) != 2 || ch[used] || n < 1 || m < 1 || n > 1024 ||
            m > 1024)
            return cli_usage_error(k_cmd, "--channels %s: want N,M with 1 <= N, M <= 1024", ch);
        s->rdm.n = n;
        s->rdm.m = m;
        if (!cli_parse_f64(r->lambda ? r->lambda : "0.0130", 1e-6, 100.0, &d))
            return cli_usage_error(k_cmd, "--lambda %s: want a number in [1e-6, 100]", r->lambda);
        s->lambda = (float)d;
        if (!cli_parse_f64(r->entropy_lr_mult ? r->entropy_lr_mult : "1", 1e-3, 1e4, &d))
            return cli_usage_error(k_cmd, "--entropy-lr-mult %s: want a number in [1e-3, 1e4]",
                                   r->entropy_lr_mult);
        s->entropy_lr_mult = (float)d;
    } else if (r->channels || r->lambda || r->quant_proxy || r->entropy_lr_mult) {
        return cli_usage_error(k_cmd, "--channels, --lambda, --quant-proxy and --entropy-lr-mult "
                                      "are for learned-codec models");
    }
    const char *mm = r->matmul ? r->matmul : "f32";
    if (strcmp(mm, "f32") != 0 && strcmp(mm, "bf16") != 0 && strcmp(mm, "auto") != 0)
        return cli_usage_error(k_cmd, "--matmul %s: want f32, bf16 or auto", mm);
    /* auto: bf16 only where it pays (AMX); the checkpoint records what was chosen. */
    s->bf16_matmul = !strcmp(mm, "bf16") || (!strcmp(mm, "auto") && amx_bf16());
    s->data = r->data;
    s->val = r->val;
    if (r->steps && r->epochs) return cli_usage_error(k_cmd, "give --steps or --epochs, not both");
    if (r->steps) {
        if (!cli_parse_i64(r->steps, 1, (int64_t)1 << 40, &i))
            return cli_usage_error(k_cmd, "--steps %s: want an integer >= 1", r->steps);
        s->steps = i;
    } else {
        if (!cli_parse_f64(r->epochs ? r->epochs : "50", 1e-9, 1e6, &d))
            return cli_usage_error(k_cmd, "--epochs %s: want a number > 0", r->epochs);
        s->epochs = d;
    }
    if (!cli_parse_i64(r->batch ? r->batch : "8", 1, 4096, &i))
        return cli_usage_error(k_cmd, "--batch %s: want an integer in [1, 4096]", r->batch);
    s->batch = (int32_t)i;
    if (!cli_parse_i64(r->crop ? r->crop : "256", MIN_VAL_SIDE, 8192, &i))
        return cli_usage_error(k_cmd, "--crop %s: want an integer in [%d, 8192]", r->crop,
                               MIN_VAL_SIDE);
    s->crop = (int32_t)i;
    if (!cli_parse_f64(r->lr ? r->lr : "1e-3", 0.0, 10.0, &d) || d <= 0.0)
        return cli_usage_error(k_cmd, "--lr %s: want a number in (0, 10]", r->lr);
    s->lr = (float)d;
    int k = name_index(r->sched ? r->sched : "cosine", k_sched_names, 3);
    if (k < 0)
        return cli_usage_error(k_cmd, "--lr-schedule %s: want constant, step or cosine", r->sched);
    s->sched = (nne_lr_kind)k;
    s->warmup = -1;
    if (r->warmup) {
        if (!cli_parse_i64(r->warmup, 0, (int64_t)1 << 40, &i))
            return cli_usage_error(k_cmd, "--warmup %s: want an integer >= 0", r->warmup);
        s->warmup = i;
    }
    k = name_index(r->optim ? r->optim : "adam", k_optim_names, 2);
    if (k < 0) return cli_usage_error(k_cmd, "--optimizer %s: want adam or sgd", r->optim);
    s->optim = (nne_optim_kind)k;
    if (!cli_parse_f64(r->wd ? r->wd : "0", 0.0, 1.0, &d))
        return cli_usage_error(k_cmd, "--weight-decay %s: want a number in [0, 1]", r->wd);
    s->weight_decay = (float)d;
    if (!cli_parse_f64(r->clip ? r->clip : "0", 0.0, 1e9, &d))
        return cli_usage_error(k_cmd, "--clip %s: want a number >= 0", r->clip);
    s->clip = (float)d;
    k = name_index(r->loss ? r->loss : s->rd ? "rd" : "mse", k_loss_names, 3);
    if (k < 0) return cli_usage_error(k_cmd, "--loss %s: want mse, ms-ssim or rd", r->loss);
    s->loss = (nne_loss_kind)k;
    if ((s->loss == NNE_LOSS_RD) != s->rd)
        return cli_usage_error(k_cmd, "--loss rd goes with the learned-codec models, and only it");
    if (s->rd && s->crop % nne_rdmodel_alignment(s->rdm.kind))
        return cli_usage_error(k_cmd, "--crop %d: %s needs a multiple of %d", (int)s->crop,
                               s->model, (int)nne_rdmodel_alignment(s->rdm.kind));
    if (s->loss == NNE_LOSS_MS_SSIM && nne_ms_ssim_auto_scales(s->crop, s->crop) == 0)
        return cli_usage_error(k_cmd, "--loss ms-ssim needs --crop >= 11");
    if (!cli_parse_i64(r->seed ? r->seed : "1", 0, INT64_MAX, &i))
        return cli_usage_error(k_cmd, "--seed %s: want an integer >= 0", r->seed);
    s->seed = (uint64_t)i;
    if (!cli_parse_i64(r->val_every ? r->val_every : "1000", 1, INT64_MAX, &i))
        return cli_usage_error(k_cmd, "--val-every %s: want an integer >= 1", r->val_every);
    s->val_every = i;
    if (!cli_parse_i64(r->log_every ? r->log_every : "100", 1, INT64_MAX, &i))
        return cli_usage_error(k_cmd, "--log-every %s: want an integer >= 1", r->log_every);
    s->log_every = i;
    if (r->stop_after) {
        if (!cli_parse_i64(r->stop_after, 1, INT64_MAX, &i))
            return cli_usage_error(k_cmd, "--stop-after %s: want an integer >= 1", r->stop_after);
        s->stop_after = i;
    }
    if (!cli_parse_f64(r->ckpt_minutes ? r->ckpt_minutes : "10", 0.0, 1e6, &d))
        return cli_usage_error(k_cmd, "--checkpoint-minutes %s: want a number >= 0",
                               r->ckpt_minutes);
    s->ckpt_minutes = d;
    if (r->prune && parse_prune(r->prune, &s->psched) != 0)
        return cli_usage_error(k_cmd,
                               "--prune-schedule %s: want final=S[,initial=S0][,begin=T0]"
                               "[,every=DT][,count=N] with 0 <= S0 <= S < 1",
                               r->prune);
    s->prune = r->prune != NULL;
    if (r->threads) {
        if (!cli_parse_i64(r->threads, 1, NNE_THREADPOOL_MAX_THREADS, &i))
            return cli_usage_error(k_cmd, "--threads %s: want an integer in [1, %d]", r->threads,
                                   NNE_THREADPOOL_MAX_THREADS);
        s->threads = (int32_t)i;
    }
    return 0;
}

/* ---- paths and guards -------------------------------------------------------------------- */

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Real path of the folder that holds `path` (which may not exist yet), into out. */
static bool parent_realpath(const char *path, char *out) {
    char tmp[PATH_BYTES];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    const char *dir = ".";
    if (slash == tmp)
        dir = "/";
    else if (slash) {
        *slash = 0;
        dir = tmp;
    }
    return realpath(dir, out) != NULL;
}

/* Absolute form of `path` (its folder resolved), for settings that must survive a resume
 * from another working directory; `path` itself if its folder does not exist. */
static void abs_path(const char *path, char *out, size_t n) {
    char parent[PATH_BYTES];
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const int len = parent_realpath(path, parent)
                        ? snprintf(out, n, "%s%s%s", parent, strcmp(parent, "/") ? "/" : "", base)
                        : -1;
    if (len < 0 || (size_t)len >= n) snprintf(out, n, "%s", path);
}

/* True if `inner` is `outer` or lies under it (both real paths). */
static bool path_within(const char *inner, const char *outer) {
    const size_t n = strlen(outer);
    if (strncmp(inner, outer, n) != 0) return false;
    return inner[n] == 0 || inner[n] == '/' || (n == 1 && outer[0] == '/');
}

/* Replace a trailing ".nne" of `path` by `ext` (or append it). */
static void with_ext(const char *path, const char *ext, char *out, size_t n) {
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".nne") == 0) len -= 4;
    if (len > 5 && strcmp(path + len - 5, ".ckpt") == 0) len -= 5;
    snprintf(out, n, "%.*s%s", (int)len, path, ext);
}

/* ---- provenance -------------------------------------------------------------------------- */

/* First line of a shell command's output (stderr discarded), or false. */
static bool run_line(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    out[0] = 0;
    bool ok = fgets(out, (int)n, p) != NULL;
    const int rc = pclose(p);
    if (!ok || rc != 0) {
        out[0] = 0;
        return rc == 0; /* a command that succeeds with no output (clean `git status`) */
    }
    out[strcspn(out, "\r\n")] = 0;
    return true;
}

/* git commit of the source tree the binary was built in (the repository that holds the
 * executable), with "-dirty" if tracked files differ; "unknown" without git. */
static void git_commit(char *out, size_t n) {
    snprintf(out, n, "unknown");
    char exe[PATH_BYTES];
    const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = 0;
    if (strchr(exe, '\'')) return; /* keep the shell quoting trivial */
    char cmd[PATH_BYTES + 128], hash[128], dirty[512];
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse HEAD 2>/dev/null", exe);
    if (!run_line(cmd, hash, sizeof hash) || strlen(hash) < 7) return;
    snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null",
             exe);
    const bool clean = run_line(cmd, dirty, sizeof dirty) && dirty[0] == 0;
    snprintf(out, n, "%s%s", hash, clean ? "" : "-dirty");
}

static void utc_now(char *out, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A fingerprint of a dataset: its image paths (relative to the folder) and sizes. */
static uint64_t dataset_hash(const nne_dataset *ds, const char *dir) {
    uint64_t h = 0xcbf29ce484222325ull;
    const size_t skip = strlen(dir);
    for (int32_t i = 0; i < nne_dataset_size(ds); i++) {
        const char *p = nne_dataset_path(ds, i);
        if (strncmp(p, dir, skip) == 0) p += skip;
        int32_t w, hh;
        nne_dataset_dims(ds, i, &w, &hh);
        char dims[32];
        snprintf(dims, sizeof dims, "|%dx%d|", (int)w, (int)hh);
        for (const char *q = p; *q; q++) h = (h ^ (uint8_t)*q) * 0x100000001b3ull;
        for (const char *q = dims; *q; q++) h = (h ^ (uint8_t)*q) * 0x100000001b3ull;
    }
    return h;
}

/* ---- signals ----------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop; /* the first signal that asked us to stop, 0 = none */

/* Any of SIGINT, SIGTERM, SIGHUP asks for a graceful stop (finish the step, write the
 * checkpoint); the exit status is the first one's. Only a second Ctrl-C kills at once: a
 * person pressing it again means it. SIGTERM and SIGHUP stay graceful however often they
 * come, because supervisors send them in bunches: `kill` of the runs plus their parent
 * script's trap forwarding its own SIGTERM (scripts/train_on.sh) killed runs that way and
 * lost every step since their last periodic checkpoint. */
static void on_signal(int sig) {
    if (!g_stop) g_stop = sig;
    if (sig == SIGINT) signal(SIGINT, SIG_DFL);
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct run {
    settings s;
    raw_opts raw;
    bool quiet, tty;
    char output[PATH_BYTES], ckpt[PATH_BYTES], best[PATH_BYTES], log[PATH_BYTES];
    char data_real[PATH_BYTES], val_real[PATH_BYTES], commit[160], commit_start[160];
    nne_dataset *train, *val;
    uint64_t data_hash, val_hash;
    nne_graph *graph; /* training graph [batch][crop][crop][3] */
    nne_graph *init;  /* --init model (fresh runs), NULL otherwise */
    char init_partial[80]; /* --init-partial / --init-widen: "N of M constants" copied (and
                              "W widened"); "" otherwise */
    nne_trainer *tr;
    cli_tq tq; /* QAT and distillation */
    nne_optim *optim;
    nne_trainer_config cfg;
    int64_t step, total;
    uint64_t next_batch;
    double elapsed_before; /* seconds of earlier sessions */
    uint64_t t0;           /* this session's start */
    double best_val_loss, best_val_psnr, last_val_loss, last_val_psnr;
    /* cae-seed: the step from which the loss leaves out the border (nne_cae_seed_border):
     * 0 for a run started with it, the resume step for a checkpoint made before it existed;
     * -1 for models without a border */
    int64_t loss_border_from;
    /* learned codecs: the step from which the mixed proxy replaced noise (a noise run resumed
     * with --quant-proxy mixed); -1: the whole run used one proxy */
    int64_t proxy_from;
    int64_t best_step;
    FILE *csv;
    int threads;
} run;

static double now_s(void) { return (double)nne_time_ns() * 1e-9; }
static double elapsed(const run *r) { return r->elapsed_before + now_s() - (double)r->t0 * 1e-9; }

static double epoch_at(const run *r, int64_t step) {
    return (double)step * r->s.batch / (double)nne_dataset_size(r->train);
}

static void fmt_duration(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) {
        snprintf(out, n, "?");
        return;
    }
    const long long t = (long long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%lldh%02lldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(out, n, "%lldm%02llds", t / 60, t % 60);
    else
        snprintf(out, n, "%llds", t);
}

/* Key/value settings stored in the checkpoint. */
typedef struct kvbuf {
    nne_meta kv[64];
    char store[64][PATH_BYTES];
    int32_t n;
} kvbuf;

static void kv_add(kvbuf *b, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void kv_add(kvbuf *b, const char *key, const char *fmt, ...) {
    if (b->n >= 64) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->store[b->n], PATH_BYTES, fmt, ap);
    va_end(ap);
    b->kv[b->n].key = (char *)key;
    b->kv[b->n].value = b->store[b->n];
    b->n++;
}

static void settings_kv(const run *r, kvbuf *b) {
    const settings *s = &r->s;
    kv_add(b, "model", "%s", s->model);
    kv_add(b, "data", "%s", r->data_real);
    kv_add(b, "data.images", "%d", (int)nne_dataset_size(r->train));
    kv_add(b, "data.hash", "%016llx", (unsigned long long)r->data_hash);
    if (r->val) {
        kv_add(b, "val", "%s", r->val_real);
        kv_add(b, "val.images", "%d", (int)nne_dataset_size(r->val));
        kv_add(b, "val.hash", "%016llx", (unsigned long long)r->val_hash);
    }
    char abs[PATH_BYTES];
    abs_path(r->output, abs, sizeof abs);
    kv_add(b, "output", "%s", abs);
    if (r->s.epochs > 0) kv_add(b, "epochs", "%.17g", s->epochs);
    kv_add(b, "steps", "%lld", (long long)r->total);
    kv_add(b, "batch", "%d", (int)s->batch);
    kv_add(b, "crop", "%d", (int)s->crop);
    kv_add(b, "lr", "%.9g", (double)s->lr);
    kv_add(b, "lr-schedule", "%s", k_sched_names[s->sched]);
    kv_add(b, "warmup", "%lld", (long long)r->cfg.lr.warmup);
    kv_add(b, "optimizer", "%s", k_optim_names[s->optim]);
    kv_add(b, "weight-decay", "%.9g", (double)s->weight_decay);
    kv_add(b, "clip", "%.9g", (double)s->clip);
    kv_add(b, "loss", "%s", k_loss_names[s->loss]);
    if (s->bf16_matmul) kv_add(b, "matmul", "bf16");
    if (r->loss_border_from >= 0)
        kv_add(b, "loss-border-from", "%lld", (long long)r->loss_border_from);
    if (s->rd) {
        kv_add(b, "channels", "%d,%d", (int)s->rdm.n, (int)s->rdm.m);
        kv_add(b, "lambda", "%.9g", (double)s->lambda);
        if (s->rdm.mixed) kv_add(b, "quant-proxy", "mixed");
        if (s->entropy_lr_mult != 1.0f)
            kv_add(b, "entropy-lr-mult", "%.9g", (double)s->entropy_lr_mult);
        if (r->proxy_from >= 0) kv_add(b, "quant-proxy-from", "%lld", (long long)r->proxy_from);
    }
    if (r->tq.qat) {
        kv_add(b, "qat", "%s", nne_qscheme_name(r->tq.qcfg.scheme));
        kv_add(b, "qat-ema", "%.9g", (double)r->tq.qcfg.ema);
        kv_add(b, "qat-observer", "%s", nne_observer_name(r->tq.observer));
        kv_add(b, "qat-weight-bits", "%d", r->tq.qcfg.weight_bits == 7 ? 7 : 8);
        kv_add(b, "calib-images", "%d", (int)r->tq.calib_images);
        if (r->tq.eq_alpha > 0.0f)
            kv_add(b, "qat-equalize-act", "%.9g", (double)r->tq.eq_alpha);
        if (r->tq.eq_weights) kv_add(b, "qat-equalize", "1");
        if (r->tq.eq_linear) kv_add(b, "qat-equalize-linear", "1");
        kv_add(b, "qat-fuse-prelu", "%d", r->tq.qcfg.no_fuse_prelu ? 0 : 1);
        if (r->tq.qcfg.lsq > 0.0f) kv_add(b, "qat-lsq", "%.9g", (double)r->tq.qcfg.lsq);
        if (r->tq.qcfg.output_lo < r->tq.qcfg.output_hi)
            kv_add(b, "qat-output-range", "%.9g,%.9g", (double)r->tq.qcfg.output_lo,
                   (double)r->tq.qcfg.output_hi);
    }
    if (r->tq.init) {
        abs_path(r->tq.init, abs, sizeof abs);
        kv_add(b, "init", "%s", abs);
    }
    if (r->init_partial[0]) kv_add(b, "init-partial", "%s", r->init_partial);
    if (r->tq.distill) {
        abs_path(r->tq.teacher_path, abs, sizeof abs);
        kv_add(b, "teacher", "%s", abs);
        kv_add(b, "teacher.hash", "%s", r->tq.teacher_hash);
        kv_add(b, "distill-alpha", "%.9g", (double)r->tq.dcfg.alpha);
        kv_add(b, "distill-temperature", "%.9g", (double)r->tq.dcfg.temperature);
    }
    kv_add(b, "seed", "%llu", (unsigned long long)s->seed);
    if (r->raw.prune) kv_add(b, "prune-schedule", "%s", r->raw.prune);
    kv_add(b, "val-every", "%lld", (long long)s->val_every);
    kv_add(b, "log-every", "%lld", (long long)s->log_every);
    kv_add(b, "threads", "%d", r->threads);
    kv_add(b, "commit", "%s", r->commit_start);
    if (r->log[0]) {
        abs_path(r->log, abs, sizeof abs);
        kv_add(b, "log", "%s", abs);
    }
}

static nne_status write_checkpoint(run *r) {
    nne_trainer_store(r->tr);
    nne_status qs = cli_tq_store(&r->tq, r->graph); /* QAT ranges travel in the model */
    if (qs) return qs;
    kvbuf *b = calloc(1, sizeof *b);
    if (!b) return nne_error(NNE_ERR_NOMEM, "out of memory");
    settings_kv(r, b);
    nne_checkpoint c;
    memset(&c, 0, sizeof c);
    c.model = r->graph;
    c.config = r->cfg;
    c.optim = r->optim;
    c.step = r->step;
    c.next_batch = r->next_batch;
    c.seed = r->s.seed;
    c.elapsed_s = elapsed(r);
    c.best_val_loss = r->best_val_loss;
    c.best_val_psnr = r->best_val_psnr;
    c.best_step = r->best_step;
    c.kv = b->kv;
    c.n_kv = b->n;
    c.mask = nne_trainer_params(r->tr)->keep;
    nne_status st = nne_checkpoint_write_file(&c, r->ckpt);
    free(b);
    return st;
}

/* The training graph of the run's model for batch x h x w images; a cae-seed takes the
 * channel widths of `like` (a channel-pruned model; NULL = the paper's). */
static nne_status train_graph(const settings *s, const nne_graph *like, int32_t batch, int32_t h,
                              int32_t w, nne_graph **out) {
    if (s->rd) return nne_model_rd(&s->rdm, batch, h, w, NNE_RD_TRAIN, out);
    nne_status st = nne_model_cae_seed_like(like, h, w, NNE_CAE_FULL, out);
    if (!st && batch != 1) st = nne_graph_set_input_shape(*out, 0, nne_shape_4d(batch, h, w, 3));
    if (!st) st = nne_graph_infer(*out);
    if (st) {
        nne_graph_free(*out);
        *out = NULL;
    }
    return st;
}

/* A noise-proxy codec run resumed with --quant-proxy mixed: the training graph is rebuilt with
 * the straight-through nodes (which have no parameters) and takes the checkpoint's weights and
 * metadata. The trainable parameters must come out in the same order and sizes, so that the
 * checkpoint's optimizer state still lines up; anything else is refused. */
static nne_status switch_to_mixed(run *r) {
    const nne_shape *in = &r->graph->tensors[r->graph->inputs[0]].shape;
    nne_graph *g = NULL;
    nne_params *a = NULL, *b = NULL;
    nne_status st = train_graph(&r->s, NULL, (int32_t)in->dim[0], (int32_t)in->dim[1],
                                (int32_t)in->dim[2], &g);
    if (!st) st = nne_model_copy_weights(g, r->graph);
    for (int32_t i = 0; !st && i < r->graph->n_meta; i++)
        st = nne_graph_set_meta(g, r->graph->meta[i].key, r->graph->meta[i].value);
    if (!st) st = nne_params_create(r->graph, &a);
    if (!st) st = nne_params_create(g, &b);
    if (!st && (a->n != b->n || a->total != b->total))
        st = nne_error(NNE_ERR_UNSUPPORTED, "--quant-proxy mixed: the training graph's "
                                            "parameters differ from the checkpoint's");
    for (int32_t i = 0; !st && i < a->n; i++)
        if (a->items[i].count != b->items[i].count || a->items[i].offset != b->items[i].offset ||
            strcmp(r->graph->tensors[a->items[i].tensor].name, g->tensors[b->items[i].tensor].name))
            st = nne_error(NNE_ERR_UNSUPPORTED,
                           "--quant-proxy mixed: parameter %d is '%s' in the checkpoint, '%s' "
                           "in the mixed graph",
                           (int)i, r->graph->tensors[a->items[i].tensor].name,
                           g->tensors[b->items[i].tensor].name);
    nne_params_free(a);
    nne_params_free(b);
    if (st) {
        nne_graph_free(g);
        return st;
    }
    nne_graph_free(r->graph);
    r->graph = g;
    return NNE_OK;
}

/* The shipped model: the built-in graph at its default size with the trained weights and
 * the provenance metadata. */
static nne_status build_model(run *r, nne_graph **out, double val_psnr) {
    *out = NULL;
    nne_trainer_store(r->tr);
    nne_graph *g = NULL;
    /* cae-seed at its default size (512x768); a learned codec's training graph for one
     * crop-sized image (its parts are rebuilt at each image's size by the codec) */
    nne_status st = r->s.rd ? train_graph(&r->s, NULL, 1, r->s.crop, r->s.crop, &g)
                            : nne_model_cae_seed_like(r->graph, 512, 768, NNE_CAE_FULL, &g);
    if (!st) st = nne_model_copy_weights(g, r->graph);
    char v[PATH_BYTES + 64], date[40];
    utc_now(date, sizeof date);
#define META(k, ...)                                                                               \
    do {                                                                                           \
        snprintf(v, sizeof v, __VA_ARGS__);                                                        \
        if (!st) st = nne_graph_set_meta(g, k, v);                                                 \
    } while (0)
    META("source", "train");
    META("train.data", "%s (%d images)", r->data_real, (int)nne_dataset_size(r->train));
    if (r->val)
        META("train.val", "%s (%d images)", r->val_real, (int)nne_dataset_size(r->val));
    else
        META("train.val", "none");
    META("train.steps", "%lld", (long long)r->step);
    META("train.epochs", "%.3f", epoch_at(r, r->step));
    META("train.seed", "%llu", (unsigned long long)r->s.seed);
    META("train.batch", "%d", (int)r->s.batch);
    META("train.crop", "%dx%d", (int)r->s.crop, (int)r->s.crop);
    META("train.loss", "%s", k_loss_names[r->s.loss]);
    if (r->loss_border_from >= 0)
        META("train.loss_border",
             "the last %d rows and %d columns of each %dx%d crop left out of the loss from step "
             "%lld (docs/models.md, \"The border\")",
             (int)r->cfg.loss_border_bottom, (int)r->cfg.loss_border_right, (int)r->s.crop,
             (int)r->s.crop, (long long)r->loss_border_from);
    if (r->s.rd) META("train.lambda", "%g", (double)r->s.lambda);
    if (r->s.rd && r->proxy_from >= 0)
        META("train.quant_proxy", "noise to step %lld, then mixed", (long long)r->proxy_from);
    else if (r->s.rd)
        META("train.quant_proxy", "%s", r->s.rdm.mixed ? "mixed" : "noise");
    if (r->s.rd && r->s.entropy_lr_mult != 1.0f)
        META("train.entropy_lr_mult", "%g", (double)r->s.entropy_lr_mult);
    if (r->s.bf16_matmul)
        META("train.matmul", "bf16 (convolution GEMMs on bf16-rounded operands, f32 sums; %s)",
             nne_gemm_bf16_path());
    META("train.optimizer", "%s, weight decay %g, clip %g", k_optim_names[r->s.optim],
         (double)r->s.weight_decay, (double)r->s.clip);
    META("train.lr", "%g, %s schedule, %lld warm-up steps", (double)r->s.lr,
         k_sched_names[r->s.sched], (long long)r->cfg.lr.warmup);
    if (strcmp(r->commit, r->commit_start) != 0)
        META("train.commit", "%s (started at %s)", r->commit, r->commit_start);
    else
        META("train.commit", "%s", r->commit);
    META("train.date", "%s", date);
    META("train.threads", "%d", r->threads);
    META("train.time_s", "%.0f", elapsed(r));
    if (!isnan(val_psnr)) META("train.val_psnr", "%.4f", val_psnr);
    if (!st) st = cli_tq_model_finish(&r->tq, g); /* a codec under QAT: its int8 parts */
    if (r->init_partial[0])
        META("train.init_partial", "%s copied from train.init by name and shape%s; the rest "
             "initialised with train.seed", r->init_partial,
             strstr(r->init_partial, "widened") ? " (widened ones: into the leading channels, "
                                                  "new conv input channels 0)"
                                                : "");
    if (r->s.prune) {
        const nne_prune_schedule *p = &r->s.psched;
        size_t masked = 0, maskable = 0;
        nne_prune_masks_count(nne_trainer_params(r->tr), r->graph, &masked, &maskable);
        META("train.prune", "final %g, initial %g, begin %lld, every %lld, count %lld", p->final,
             p->initial, (long long)p->begin, (long long)p->every, (long long)p->count);
        META("prune.method", "magnitude");
        META("prune.sparsity", "%.6g", maskable ? (double)masked / (double)maskable : 0.0);
    }
    if (r->best_step >= 0) {
        META("train.best_val_psnr", "%.4f", r->best_val_psnr);
        META("train.best_step", "%lld", (long long)r->best_step);
    }
#undef META
    if (st) {
        nne_graph_free(g);
        return st;
    }
    *out = g;
    return NNE_OK;
}

/* cae-seed's border (nne_cae_seed_border) for an h x w output, once the run uses it. */
static void set_loss_border(const run *r, nne_trainer_config *c, int32_t h, int32_t w) {
    const bool on = r->loss_border_from >= 0 && r->s.loss != NNE_LOSS_RD && !r->s.rd;
    c->loss_border_bottom = on ? nne_cae_seed_border(h) : 0;
    c->loss_border_right = on ? nne_cae_seed_border(w) : 0;
}

/* Validation over every full image of --val: mean loss (the training loss) and mean PSNR of
 * the output clamped and rounded to 8 bits, as a decoder would produce it (cae-seed: its
 * border filled, nne_cae_seed_fill_border); for a learned codec also the mean bpp (*bpp_out,
 * NaN otherwise); on the centred crop of each image to a multiple of the model's alignment
 * (NNE_CAE_ALIGN, nne_rdmodel_alignment; images smaller than it are skipped). Returns false if
 * interrupted (no result). */
static nne_status validate(run *r, double *loss_out, double *psnr_out, double *bpp_out,
                           bool *done) {
    *done = false;
    nne_trainer_store(r->tr);
    double sum_loss = 0.0, sum_psnr = 0.0, sum_bpp = 0.0;
    int32_t used = 0;
    const int32_t n = nne_dataset_size(r->val);
    const int32_t align = r->s.rd ? nne_rdmodel_alignment(r->s.rdm.kind) : NNE_CAE_ALIGN;
    nne_status st = NNE_OK;
    for (int32_t i = 0; i < n && !st; i++) {
        if (g_stop) return NNE_OK;
        nne_image img;
        bool owned = false;
        if ((st = nne_dataset_image(r->val, i, &img, &owned))) break;
        const int32_t vh = img.height - img.height % align, vw = img.width - img.width % align;
        const int32_t y0 = (img.height - vh) / 2, x0 = (img.width - vw) / 2;
        nne_graph *g = NULL;
        nne_trainer *t = NULL;
        float *x = NULL;
        const size_t npx = (size_t)vw * vh * 3;
        if (vh < align || vw < align) {
            if (owned) nne_image_free(&img);
            continue;
        }
        if (!(st = train_graph(&r->s, r->graph, 1, vh, vw, &g)) &&
            !(st = nne_model_copy_weights(g, r->graph))) {
            nne_trainer_config c = r->cfg;
            c.ms_ssim_scales = 0;
            set_loss_border(r, &c, vh, vw);
            st = nne_trainer_create(g, &c, &t);
        }
        nne_qat *vq = NULL; /* the validation model is fake-quantized as in training */
        if (!st) st = cli_tq_val_setup(&r->tq, g, t, &vq);
        if (!st && !(x = nne_malloc(npx * sizeof(float)))) st = NNE_ERR_NOMEM;
        double loss = 0.0;
        const size_t row = (size_t)vw * 3;
        if (!st) {
            for (int32_t yy = 0; yy < vh; yy++) {
                const uint8_t *src = img.data + ((size_t)(y0 + yy) * img.width + x0) * 3;
                for (size_t k = 0; k < row; k++)
                    x[(size_t)yy * row + k] = (float)src[k] * (1.0f / 255.0f);
            }
            st = nne_trainer_eval(t, x, x, &loss);
        }
        float *yf = NULL; /* cae-seed: the output with its border filled, as decoders do */
        if (!st && r->loss_border_from >= 0 && !(yf = nne_malloc(npx * sizeof(float))))
            st = NNE_ERR_NOMEM;
        if (!st) {
            const float *y = nne_trainer_output(t);
            if (yf) {
                memcpy(yf, y, npx * sizeof(float));
                nne_cae_seed_fill_border(yf, 1, vh, vw, 3);
                y = yf;
            }
            double se = 0.0;
            for (size_t k = 0; k < npx; k++) {
                const size_t yy = k / row, xx = k % row;
                const uint8_t ref = img.data[((size_t)(y0 + yy) * img.width + x0) * 3 + xx];
                float v = y[k] < 0.0f ? 0.0f : y[k] > 1.0f ? 1.0f : y[k];
                const double dq = floor(v * 255.0f + 0.5f) - (double)ref;
                se += dq * dq;
            }
            const double mse = se / (double)npx;
            double bpp = 0.0;
            nne_trainer_last_rd(t, NULL, &bpp);
            sum_psnr += mse > 0 ? 10.0 * log10(255.0 * 255.0 / mse) : 100.0;
            sum_loss += loss;
            sum_bpp += bpp;
            used++;
        }
        nne_free(x);
        nne_free(yf);
        nne_trainer_free(t);
        nne_qat_free(vq);
        nne_graph_free(g);
        if (owned) nne_image_free(&img);
    }
    if (st) return st;
    if (used == 0)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "validation: no image of the --val folder is at least %dx%d", (int)align,
                         (int)align);
    *loss_out = sum_loss / used;
    *psnr_out = sum_psnr / used;
    *bpp_out = r->s.rd ? sum_bpp / used : NAN;
    *done = true;
    return NNE_OK;
}

/* A learned codec's log has one more column, val_bpp, after elapsed_s. */
static void csv_row(run *r, int64_t step, double train_loss, double val_loss, double val_psnr,
                    double val_bpp) {
    if (!r->csv) return;
    fprintf(r->csv, "%lld,%.4f,%.6g,", (long long)step, epoch_at(r, step),
            (double)nne_lr_at(&r->cfg.lr, step > 0 ? step - 1 : 0));
    if (!isnan(train_loss)) fprintf(r->csv, "%.6g", train_loss);
    fputc(',', r->csv);
    if (!isnan(val_loss))
        fprintf(r->csv, "%.6g,%.4f", val_loss, val_psnr);
    else
        fputc(',', r->csv);
    fprintf(r->csv, ",%.1f", elapsed(r));
    if (r->s.rd) {
        fputc(',', r->csv);
        if (!isnan(val_bpp)) fprintf(r->csv, "%.5f", val_bpp);
    }
    fputc('\n', r->csv);
    fflush(r->csv);
}

/* Open the CSV log: a new file gets the header; on resume rows after the checkpoint's step
 * (written by a run that went on after its last checkpoint) are dropped, since those steps
 * are about to be redone. */
static int open_log(run *r, bool resumed) {
    const char *header = r->s.rd ? "step,epoch,lr,train_loss,val_loss,val_psnr,elapsed_s,val_bpp\n"
                                 : "step,epoch,lr,train_loss,val_loss,val_psnr,elapsed_s\n";
    if (resumed && file_exists(r->log)) {
        uint8_t *buf = NULL;
        size_t n = 0;
        nne_status st = nne_file_read(r->log, (size_t)1 << 30, &buf, &n);
        if (st) return cli_fail(k_cmd, st);
        char *out = malloc(n + strlen(header) + 1);
        if (!out) {
            nne_free(buf);
            return cli_fail(k_cmd, NNE_ERR_NOMEM);
        }
        size_t o = 0;
        bool any = false;
        for (size_t i = 0; i < n;) {
            size_t e = i;
            while (e < n && buf[e] != '\n') e++;
            const bool is_header = !any && e > i && buf[i] == 's';
            long long step = strtoll((const char *)buf + i, NULL, 10);
            if (is_header || (e > i && step <= r->step)) {
                memcpy(out + o, buf + i, e - i);
                o += e - i;
                out[o++] = '\n';
            }
            if (is_header) any = true;
            i = e + 1;
        }
        st = nne_file_write_atomic(r->log, out, o);
        free(out);
        nne_free(buf);
        if (st) return cli_fail(k_cmd, st);
    }
    const bool fresh = !file_exists(r->log);
    r->csv = fopen(r->log, resumed ? "a" : "w");
    if (!r->csv) {
        char e[128];
        cli_error(k_cmd, "%s: cannot open the log: %s", r->log, nne_errno_str(errno, e, sizeof e));
        return NNE_EXIT_RUNTIME;
    }
    if (fresh || !resumed) {
        fputs(header, r->csv);
        fflush(r->csv);
    }
    return 0;
}

/* Progress on stderr: a bar redrawn in place on a terminal, a line every 30 s otherwise. */
static void progress(run *r, double ema, double rate, bool force, double *last) {
    if (r->quiet) return;
    const double t = now_s();
    static int64_t last_step = -1;
    if (!force && t - *last < (r->tty ? 0.25 : 30.0)) return;
    if (force && r->step == last_step) return; /* already shown */
    *last = t;
    last_step = r->step;
    char eta[32], el[32];
    fmt_duration(rate > 0 ? (double)(r->total - r->step) * r->s.batch / rate : NAN, eta,
                 sizeof eta);
    fmt_duration(elapsed(r), el, sizeof el);
    const double frac = r->total ? (double)r->step / (double)r->total : 1.0;
    if (r->tty) {
        char bar[26];
        const int fill = (int)(frac * 24.0);
        for (int i = 0; i < 24; i++) bar[i] = i < fill ? '#' : '.';
        bar[24] = 0;
        fprintf(stderr, "\r\033[K%lld/%lld [%s] %5.1f%% loss %.5f lr %.2e %.1f img/s %s ETA %s",
                (long long)r->step, (long long)r->total, bar, 100.0 * frac, ema,
                (double)nne_lr_at(&r->cfg.lr, r->step), rate, el, eta);
    } else {
        fprintf(stderr,
                "nnedge train: step %lld/%lld (%.1f%%) epoch %.2f loss %.5f lr %.2e %.1f img/s "
                "elapsed %s ETA %s\n",
                (long long)r->step, (long long)r->total, 100.0 * frac, epoch_at(r, r->step), ema,
                (double)nne_lr_at(&r->cfg.lr, r->step), rate, el, eta);
    }
    fflush(stderr);
}

static void end_progress_line(const run *r) {
    if (!r->quiet && r->tty) fputc('\n', stderr);
}

static void note(const run *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note(const run *r, const char *fmt, ...) {
    if (r->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nnedge train: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void run_free(run *r) {
    if (r->csv) fclose(r->csv);
    nne_trainer_free(r->tr);
    cli_tq_free(&r->tq);
    nne_optim_free(r->optim);
    nne_graph_free(r->graph);
    nne_graph_free(r->init);
    nne_dataset_free(r->train);
    nne_dataset_free(r->val);
}

/* Resolve a data folder (must exist) and refuse Kodak. 0 or an exit code. */
static int check_data_dir(const char *opt, const char *dir, char *real) {
    return cli_check_data_dir(k_cmd, opt, dir, real, PATH_BYTES);
}

/* Refuse an output path inside a data folder. */
static int check_not_in_data(const run *r, const char *what, const char *path) {
    char parent[PATH_BYTES];
    if (!parent_realpath(path, parent)) {
        char e[128];
        cli_error(k_cmd, "%s %s: its folder does not exist (%s)", what, path,
                  nne_errno_str(errno, e, sizeof e));
        return NNE_EXIT_RUNTIME;
    }
    if (path_within(parent, r->data_real) || (r->s.val && path_within(parent, r->val_real)))
        return cli_usage_error(k_cmd, "%s %s: refusing to write into a data folder", what, path);
    return 0;
}

static int open_data(run *r) {
    nne_dataset_opts o = {
        .recursive = true, .cache = true, .min_width = r->s.crop, .min_height = r->s.crop};
    note(r, "loading %s ...", r->data_real);
    nne_status st = nne_dataset_open(r->data_real, &o, &r->train);
    if (st) return cli_fail(k_cmd, st);
    if (nne_dataset_skipped(r->train))
        note(r, "%d images smaller than %dx%d skipped", (int)nne_dataset_skipped(r->train),
             (int)r->s.crop, (int)r->s.crop);
    r->data_hash = dataset_hash(r->train, r->data_real);
    if (r->s.val) {
        nne_dataset_opts vo = {.recursive = true,
                               .cache = true,
                               .min_width = MIN_VAL_SIDE,
                               .min_height = MIN_VAL_SIDE};
        if ((st = nne_dataset_open(r->val_real, &vo, &r->val))) return cli_fail(k_cmd, st);
        r->val_hash = dataset_hash(r->val, r->val_real);
    }
    return 0;
}

/* Fill r->cfg from the settings (fresh run). */
static void make_config(run *r) {
    const settings *s = &r->s;
    nne_trainer_config *c = &r->cfg;
    memset(c, 0, sizeof *c);
    c->optim = s->optim == NNE_OPTIM_ADAM ? nne_optim_config_adam() : nne_optim_config_sgd(0.9f);
    c->optim.weight_decay = s->weight_decay;
    c->optim.clip_norm = s->clip;
    c->loss = s->loss;
    c->rd_lambda = s->rd ? s->lambda : 0.0f;
    c->entropy_lr_mult = s->rd ? s->entropy_lr_mult : 1.0f;
    c->bf16_matmul = s->bf16_matmul;
    c->noise_seed = s->seed;
    c->lr.kind = s->sched;
    c->lr.lr = s->lr;
    int64_t warm = s->warmup >= 0 ? s->warmup : r->total / 50;
    if (s->warmup < 0 && warm > 1000) warm = 1000;
    if (warm >= r->total) warm = r->total - 1;
    c->lr.warmup = warm;
    c->lr.gamma = 0.1f;
    c->lr.step_size = (r->total - warm + 2) / 3;
    if (c->lr.step_size < 1) c->lr.step_size = 1;
    c->lr.total_steps = r->total;
    c->lr.min_lr = s->lr * 0.01f;
}

int nne_cmd_train(int argc, char **argv) {
    cli_common co;
    run *r = calloc(1, sizeof *r);
    if (!r) return cli_fail(k_cmd, NNE_ERR_NOMEM);
    raw_opts *ro = &r->raw;
    const cli_option opts[] = {
        {"model", 0, true, &ro->model, NULL},
        {"data", 0, true, &ro->data, NULL},
        {"val", 0, true, &ro->val, NULL},
        {"steps", 0, true, &ro->steps, NULL},
        {"epochs", 0, true, &ro->epochs, NULL},
        {"batch", 0, true, &ro->batch, NULL},
        {"crop", 0, true, &ro->crop, NULL},
        {"lr", 0, true, &ro->lr, NULL},
        {"lr-schedule", 0, true, &ro->sched, NULL},
        {"warmup", 0, true, &ro->warmup, NULL},
        {"optimizer", 0, true, &ro->optim, NULL},
        {"weight-decay", 0, true, &ro->wd, NULL},
        {"clip", 0, true, &ro->clip, NULL},
        {"loss", 0, true, &ro->loss, NULL},
        {"seed", 0, true, &ro->seed, NULL},
        {"threads", 0, true, &ro->threads, NULL},
        {"checkpoint", 0, true, &ro->ckpt, NULL},
        {"checkpoint-minutes", 0, true, &ro->ckpt_minutes, NULL},
        {"resume", 0, true, &ro->resume, NULL},
        {"log", 0, true, &ro->log, NULL},
        {"val-every", 0, true, &ro->val_every, NULL},
        {"log-every", 0, true, &ro->log_every, NULL},
        {"commit", 0, true, &ro->commit, NULL},
        {"stop-after", 0, true, &ro->stop_after, NULL},
        {"channels", 0, true, &ro->channels, NULL},
        {"lambda", 0, true, &ro->lambda, NULL},
        {"quant-proxy", 0, true, &ro->quant_proxy, NULL},
        {"entropy-lr-mult", 0, true, &ro->entropy_lr_mult, NULL},
        {"matmul", 0, true, &ro->matmul, NULL},
        {"init", 0, true, &ro->tq.init, NULL},
        {"qat", 0, true, &ro->tq.qat, NULL},
        {"qat-ema", 0, true, &ro->tq.qat_ema, NULL},
        {"qat-observer", 0, true, &ro->tq.qat_observer, NULL},
        {"qat-weight-bits", 0, true, &ro->tq.qat_weight_bits, NULL},
        {"qat-equalize-act", 0, true, &ro->tq.qat_equalize_act, NULL},
        {"qat-fuse-prelu", 0, true, &ro->tq.qat_fuse_prelu, NULL},
        {"qat-lsq", 0, true, &ro->tq.qat_lsq, NULL},
        {"qat-output-range", 0, true, &ro->tq.qat_output_range, NULL},
        {"calib-images", 0, true, &ro->tq.calib_images, NULL},
        {"teacher", 0, true, &ro->tq.teacher, NULL},
        {"distill-alpha", 0, true, &ro->tq.alpha, NULL},
        {"distill-temperature", 0, true, &ro->tq.temperature, NULL},
        {"prune-schedule", 0, true, &ro->prune, NULL},
        {"force", 0, false, NULL, &ro->force},
        {"init-partial", 0, false, NULL, &ro->init_partial},
        {"init-widen", 0, false, NULL, &ro->init_widen},
        {"qat-equalize", 0, false, NULL, &ro->qat_equalize},
        {"qat-equalize-linear", 0, false, NULL, &ro->qat_equalize_linear},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[1];
    int n_pos, rc = NNE_EXIT_OK;
    nne_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    nne_status st = NNE_OK;
    nne_prefetcher *pf = NULL;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 0, &n_pos)) {
        free(r);
        return NNE_EXIT_USAGE;
    }
    if (co.help) {
        help();
        free(r);
        return NNE_EXIT_OK;
    }
    r->quiet = co.quiet;
    r->tty = isatty(STDERR_FILENO) != 0;
    r->best_val_loss = r->best_val_psnr = r->last_val_loss = r->last_val_psnr = NAN;
    r->best_step = -1;
    const bool resumed = ro->resume != NULL;
    bool switch_proxy = false; /* a noise run resumed with --quant-proxy mixed */
    r->proxy_from = -1;

    if (ro->qat_equalize) ro->tq.qat_equalize = "1"; /* flags, kept as checkpoint keys */
    if (ro->qat_equalize_linear) ro->tq.qat_equalize_linear = "1";
    /* ---- settings: from the command line, or from the checkpoint on --resume ---- */
    if (resumed) {
        if ((st = nne_checkpoint_read_file(ro->resume, &ck))) {
            rc = cli_fail(k_cmd, st);
            goto out;
        }
        raw_opts given = *ro;
        /* --matmul auto keeps the checkpoint's precision (a run keeps its numerics when it
         * moves to another machine); f32 is what a checkpoint without the key trained with. */
        if (given.matmul && (!strcmp(given.matmul, "auto") ||
                             (!strcmp(given.matmul, "f32") && !nne_checkpoint_get(&ck, "matmul"))))
            given.matmul = NULL;
        /* The one setting a resume may change: a learned codec trained with the noise proxy
         * continues with the mixed one (docs/training.md, "Mixed proxy"); the checkpoint
         * records the step. */
        const char *qpf = nne_checkpoint_get(&ck, "quant-proxy-from");
        r->proxy_from = qpf ? strtoll(qpf, NULL, 10) : -1;
        if (given.quant_proxy && !strcmp(given.quant_proxy, "mixed") &&
            !nne_checkpoint_get(&ck, "quant-proxy") && nne_checkpoint_get(&ck, "lambda")) {
            given.quant_proxy = NULL;
            switch_proxy = true;
            r->proxy_from = ck.step;
        }
        for (size_t i = 0; i < sizeof k_train_keys / sizeof k_train_keys[0]; i++) {
            const char *saved = nne_checkpoint_get(&ck, k_train_keys[i].key);
            const char *cmd = raw_get(&given, k_train_keys[i].off);
            if (cmd && (!saved || strcmp(cmd, saved) != 0)) {
                /* Equal numbers spelled differently (1e-3 vs 0.001) are fine. */
                double a, b;
                if (!(saved && cli_parse_f64(cmd, -1e300, 1e300, &a) &&
                      cli_parse_f64(saved, -1e300, 1e300, &b) && (float)a == (float)b)) {
                    rc = cli_usage_error(k_cmd,
                                         "--%s %s conflicts with the checkpoint (%s): a resumed "
                                         "run keeps its settings",
                                         k_train_keys[i].key, cmd, saved ? saved : "not set");
                    goto out;
                }
            }
            if (!(k_train_keys[i].off == RAW(quant_proxy) && switch_proxy))
                raw_set(ro, k_train_keys[i].off, saved);
        }
        /* A QAT checkpoint from before conv + PReLU fusion trained the unfused model. */
        if (ro->tq.qat && !ro->tq.qat_fuse_prelu) ro->tq.qat_fuse_prelu = "0";
        /* "steps" holds the resolved length even for a run given in epochs. */
        if (ro->epochs) ro->steps = NULL;
        if (!ro->data) ro->data = nne_checkpoint_get(&ck, "data");
        if (!ro->val) ro->val = nne_checkpoint_get(&ck, "val");
        if (!ro->val_every) ro->val_every = nne_checkpoint_get(&ck, "val-every");
        if (!ro->log_every) ro->log_every = nne_checkpoint_get(&ck, "log-every");
        if (!ro->log) ro->log = nne_checkpoint_get(&ck, "log");
        if (ro->tq.init) {
            rc = cli_usage_error(k_cmd, "--init: a resumed run continues from its checkpoint");
            goto out;
        }
        if (ro->init_partial || ro->init_widen) {
            rc = cli_usage_error(k_cmd, "--init-partial, --init-widen: a resumed run continues "
                                        "from its checkpoint");
            goto out;
        }
        ro->tq.init = nne_checkpoint_get(&ck, "init"); /* provenance only */
        const char *ip = nne_checkpoint_get(&ck, "init-partial");
        if (ip) snprintf(r->init_partial, sizeof r->init_partial, "%s", ip);
        if (!ro->tq.teacher) ro->tq.teacher = nne_checkpoint_get(&ck, "teacher");
        if (!co.output) co.output = nne_checkpoint_get(&ck, "output");
        if (!ro->ckpt) ro->ckpt = ro->resume;
        if (!ro->data || (!ro->steps && !ro->epochs) || !co.output) {
            cli_error(k_cmd, "%s: the checkpoint lacks its run settings (data, steps, output)",
                      ro->resume);
            rc = NNE_EXIT_RUNTIME;
            goto out;
        }
    }
    if ((rc = settings_from_raw(ro, &r->s))) goto out;
    if ((rc = cli_tq_parse(k_cmd, &ro->tq, r->s.rd, &r->tq))) goto out;
    if (!r->s.data) {
        rc = cli_usage_error(k_cmd, "--data DIR is required");
        goto out;
    }
    if (!co.output) {
        rc = cli_usage_error(k_cmd, "-o OUT.nne is required");
        goto out;
    }
    snprintf(r->output, sizeof r->output, "%s", co.output);
    if (ro->ckpt)
        snprintf(r->ckpt, sizeof r->ckpt, "%s", ro->ckpt);
    else
        with_ext(r->output, ".ckpt", r->ckpt, sizeof r->ckpt);
    with_ext(r->ckpt, ".best.nne", r->best, sizeof r->best);
    if (ro->log) snprintf(r->log, sizeof r->log, "%s", ro->log);
    if (!strcmp(r->ckpt, r->output) || !strcmp(r->best, r->output) ||
        (r->log[0] && (!strcmp(r->log, r->output) || !strcmp(r->log, r->ckpt)))) {
        rc = cli_usage_error(k_cmd, "the output, checkpoint and log must be different files");
        goto out;
    }

    /* ---- guards: data folders, Kodak, outputs ---- */
    if ((rc = check_data_dir("--data", r->s.data, r->data_real))) goto out;
    if (r->s.val && (rc = check_data_dir("--val", r->s.val, r->val_real))) goto out;
    if ((rc = check_not_in_data(r, "-o", r->output)) ||
        (rc = check_not_in_data(r, "--checkpoint", r->ckpt)) ||
        (r->log[0] && (rc = check_not_in_data(r, "--log", r->log))))
        goto out;
    if (file_exists(r->output) && !ro->force) {
        cli_error(k_cmd, "%s already exists; use --force to overwrite it", r->output);
        rc = NNE_EXIT_RUNTIME;
        goto out;
    }
    if (!resumed && r->log[0] && file_exists(r->log) && !ro->force) {
        cli_error(k_cmd, "%s already exists; use --force to overwrite it, or --resume", r->log);
        rc = NNE_EXIT_RUNTIME;
        goto out;
    }
    if (!resumed && file_exists(r->ckpt) && !ro->force) {
        cli_error(k_cmd,
                  "%s already exists: continue that run with 'nnedge train --resume %s', or use "
                  "--force to start over",
                  r->ckpt, r->ckpt);
        rc = NNE_EXIT_RUNTIME;
        goto out;
    }

    /* ---- threads: one process-wide pool for training and validation ---- */
    if (r->s.threads > 0) {
        char t[16];
        snprintf(t, sizeof t, "%d", (int)r->s.threads);
        setenv("NNEDGE_THREADS", t, 1);
    }
    r->threads = nne_threadpool_default_threads();

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);

    /* ---- data ---- */
    if ((rc = open_data(r))) goto out;
    if (g_stop) {
        cli_error(k_cmd, "interrupted before training started; nothing written");
        rc = EXIT_INTERRUPTED;
        goto out;
    }
    if (resumed) {
        const char *h = nne_checkpoint_get(&ck, "data.hash");
        char now[32];
        snprintf(now, sizeof now, "%016llx", (unsigned long long)r->data_hash);
        if (!h || strcmp(h, now) != 0) {
            const char *n0 = nne_checkpoint_get(&ck, "data.images");
            cli_error(k_cmd,
                      "%s: the training images differ from the checkpoint's (%d images now, %s "
                      "then): resuming would not continue the same run",
                      r->data_real, (int)nne_dataset_size(r->train), n0 ? n0 : "?");
            rc = NNE_EXIT_RUNTIME;
            goto out;
        }
    }
    if (r->s.epochs > 0) {
        const double n = ceil(r->s.epochs * nne_dataset_size(r->train) / r->s.batch);
        r->total = n < 1 ? 1 : (int64_t)n;
    } else {
        r->total = r->s.steps;
    }
    if (r->s.prune) resolve_prune(&r->s.psched, r->total);

    /* ---- model, trainer, optimizer ---- */
    if (resumed) {
        r->graph = ck.model;
        ck.model = NULL;
        if (switch_proxy && (st = switch_to_mixed(r))) {
            rc = cli_fail(k_cmd, st);
            goto out;
        }
        if (switch_proxy && !r->quiet)
            fprintf(stderr, "nnedge train: quantization proxy noise -> mixed from step %lld\n",
                    (long long)ck.step);
        r->optim = ck.optim;
        ck.optim = NULL;
        r->cfg = ck.config;
        r->cfg.noise_seed = ck.seed; /* as make_config sets it: the run's seed */
        /* Fields the checkpoint's binary configuration does not hold: from the settings,
         * which came from its key-value pairs, as make_config sets them. */
        r->cfg.entropy_lr_mult = r->s.rd ? r->s.entropy_lr_mult : 1.0f;
        r->cfg.bf16_matmul = r->s.bf16_matmul;
        r->step = ck.step;
        r->next_batch = ck.next_batch;
        r->elapsed_before = ck.elapsed_s;
        r->best_val_loss = ck.best_val_loss;
        r->best_val_psnr = ck.best_val_psnr;
        r->best_step = ck.best_step;
        r->loss_border_from = -1;
        if (!r->s.rd) {
            /* A checkpoint from before the border existed switches to it here; the best
             * model so far was chosen by the old loss, so the choice starts again. */
            const char *lb = nne_checkpoint_get(&ck, "loss-border-from");
            r->loss_border_from = lb ? strtoll(lb, NULL, 10) : ck.step;
            if (!lb) {
                r->best_val_loss = NAN;
                r->best_val_psnr = NAN;
                r->best_step = -1;
            }
        }
        const char *c0 = nne_checkpoint_get(&ck, "commit");
        snprintf(r->commit_start, sizeof r->commit_start, "%s", c0 ? c0 : "unknown");
        const nne_shape *in = &r->graph->tensors[r->graph->inputs[0]].shape;
        if (in->ndim != 4 || in->dim[0] != r->s.batch || in->dim[1] != r->s.crop ||
            in->dim[2] != r->s.crop || ck.seed != r->s.seed || r->cfg.lr.total_steps != r->total) {
            cli_error(k_cmd, "%s: the checkpoint's model and settings disagree", ro->resume);
            rc = NNE_EXIT_RUNTIME;
            goto out;
        }
    } else {
        make_config(r);
        if (ro->init_widen) ro->init_partial = true;
        if (ro->init_partial && (!ro->tq.init || ro->tq.qat)) {
            rc = cli_usage_error(k_cmd, "%s",
                                 ro->tq.init ? "--init-partial: not with --qat (QAT calibrates "
                                               "the whole --init model)"
                                             : "--init-partial needs --init MODEL");
            goto out;
        }
        if (ro->tq.init && (st = nne_model_read_file(ro->tq.init, &r->init))) {
            rc = cli_fail(k_cmd, st);
            goto out;
        }
        if (r->init && nne_graph_get_meta(r->init, "quant.scheme")) {
            cli_error(k_cmd, "--init %s: the model is quantized; give the f32 model", ro->tq.init);
            rc = NNE_EXIT_RUNTIME;
            goto out;
        }
        if (ro->init_partial) {
            /* Fresh weights from the seed, then whatever --init has under the same name and
             * shape (cae-seed would take its widths from --init; partial means this run's). */
            int32_t copied = 0, total = 0, widened = 0;
            if ((st = train_graph(&r->s, NULL, r->s.batch, r->s.crop, r->s.crop, &r->graph)) ||
                (st = nne_train_init_params(r->graph, r->s.seed)) ||
                (st = ro->init_widen ? nne_model_copy_weights_widen(r->graph, r->init, &copied,
                                                                    &widened, &total)
                                     : nne_model_copy_weights_matching(r->graph, r->init, &copied,
                                                                       &total))) {
                rc = cli_fail(k_cmd, st);
                goto out;
            }
            if (copied + widened == 0) {
                cli_error(k_cmd, "--init %s --init-%s: no tensor of the model has the name "
                          "and shape of a %s tensor of this run", ro->tq.init,
                          ro->init_widen ? "widen" : "partial", r->s.model);
                rc = NNE_EXIT_RUNTIME;
                goto out;
            }
            if (ro->init_widen)
                snprintf(r->init_partial, sizeof r->init_partial, "%d of %d constants (%d widened)",
                         (int)(copied + widened), (int)total, (int)widened);
            else
                snprintf(r->init_partial, sizeof r->init_partial, "%d of %d constants",
                         (int)copied, (int)total);
        } else if ((st = train_graph(&r->s, r->init, r->s.batch, r->s.crop, r->s.crop,
                                     &r->graph)) ||
                   (st = r->init ? nne_model_copy_weights(r->graph, r->init)
                                 : nne_train_init_params(r->graph, r->s.seed))) {
            if (r->init)
                cli_error(k_cmd, "--init %s: not a %s model of this run", ro->tq.init, r->s.model);
            rc = cli_fail(k_cmd, st);
            goto out;
        }
    }
    if (ro->commit)
        snprintf(r->commit, sizeof r->commit, "%s", ro->commit);
    else
        git_commit(r->commit, sizeof r->commit);
    if (!resumed) snprintf(r->commit_start, sizeof r->commit_start, "%s", r->commit);
    if (!resumed) r->loss_border_from = r->s.rd ? -1 : 0;
    set_loss_border(r, &r->cfg, r->s.crop, r->s.crop);
    r->cfg.threads = 0; /* the process-wide pool, sized above */
    if ((st = nne_trainer_create(r->graph, &r->cfg, &r->tr))) {
        rc = cli_fail(k_cmd, st);
        goto out;
    }
    if ((st = cli_tq_setup(&r->tq, r->graph, r->tr, r->train, r->s.crop, r->s.seed, resumed,
                           resumed ? nne_checkpoint_get(&ck, "teacher.hash") : NULL))) {
        rc = cli_fail(k_cmd, st);
        goto out;
    }
    if (!r->optim &&
        (st = nne_optim_create(&r->cfg.optim, nne_trainer_params(r->tr)->total, &r->optim))) {
        rc = cli_fail(k_cmd, st);
        goto out;
    }
    if (r->log[0] && (rc = open_log(r, resumed))) goto out;
    if (ck.mask) { /* the pruning masks of a resumed run */
        nne_params *pp = nne_trainer_params(r->tr);
        if (!(pp->keep = nne_malloc(pp->total ? pp->total : 1))) {
            rc = cli_fail(k_cmd, NNE_ERR_NOMEM);
            goto out;
        }
        memcpy(pp->keep, ck.mask, pp->total);
    }

    note(r,
         "%s %s: %d images (%s), %lld steps of %d crops %dx%d (%.2f epochs), %s lr %g %s, "
         "%s loss, %s%s%s%d threads",
         resumed ? "resuming" : "training", r->s.model, (int)nne_dataset_size(r->train),
         r->data_real, (long long)r->total, (int)r->s.batch, (int)r->s.crop, (int)r->s.crop,
         epoch_at(r, r->total), k_optim_names[r->s.optim], (double)r->s.lr,
         k_sched_names[r->s.sched], k_loss_names[r->s.loss],
         r->s.bf16_matmul ? "bf16 matmul (" : "", r->s.bf16_matmul ? nne_gemm_bf16_path() : "",
         r->s.bf16_matmul ? "), " : "", r->threads);
    if (resumed)
        note(r, "continuing at step %lld/%lld from %s", (long long)r->step, (long long)r->total,
             ro->resume);
    if (r->init_partial[0] && !resumed)
        note(r, "--init-%s: %s copied from %s by name and shape, the rest from --seed",
             strstr(r->init_partial, "widened") ? "widen" : "partial", r->init_partial,
             ro->tq.init);
    note(r, "checkpoint: %s (every %g min)%s%s", r->ckpt, r->s.ckpt_minutes,
         r->log[0] ? ", log: " : "", r->log);

    /* ---- the loop ---- */
    nne_crop_opts copts = {.batch = r->s.batch,
                           .height = r->s.crop,
                           .width = r->s.crop,
                           .hflip = true,
                           .vflip = false,
                           .seed = r->s.seed};
    if (r->step < r->total &&
        (st = nne_prefetcher_create(r->train, &copts, r->next_batch, 3, &pf))) {
        rc = cli_fail(k_cmd, st);
        goto out;
    }
    r->t0 = nne_time_ns();
    double last_ckpt = now_s(), last_print = 0.0, train_time = 0.0, ema_sum = 0.0, ema_w = 0.0;
    double win_loss = 0.0;
    int64_t win_n = 0, session_steps = 0;
    bool paused = false;
    while (r->step < r->total && !g_stop) {
        if (r->s.stop_after && session_steps == r->s.stop_after) {
            paused = true;
            break;
        }
        const double ts = now_s();
        const float *batch = NULL;
        uint64_t idx = 0;
        if ((st = nne_prefetcher_next(pf, &batch, &idx))) break;
        if (idx != r->next_batch) {
            st = nne_error(NNE_ERR_INTERNAL, "prefetcher returned batch %llu, want %llu",
                           (unsigned long long)idx, (unsigned long long)r->next_batch);
            break;
        }
        nne_train_stats ts_;
        if ((st = cli_tq_batch(&r->tq, r->tr, batch))) break;
        if (r->s.prune && nne_prune_schedule_is_update(&r->s.psched, r->step) &&
            (st = nne_prune_masks_update(nne_trainer_params(r->tr), r->graph,
                                         nne_prune_schedule_sparsity(&r->s.psched, r->step))))
            break;
        if ((st = nne_trainer_step_ext(r->tr, r->optim, &r->cfg.lr, r->step, batch, batch, &ts_)))
            break;
        r->step++;
        r->next_batch++;
        session_steps++;
        train_time += now_s() - ts;
        win_loss += ts_.loss;
        win_n++;
        ema_sum = 0.98 * ema_sum + 0.02 * ts_.loss; /* bias-corrected moving average */
        ema_w = 0.98 * ema_w + 0.02;
        const double ema = ema_sum / ema_w;
        const double rate = train_time > 0 ? (double)session_steps * r->s.batch / train_time : 0;
        const bool do_val = r->val && (r->step % r->s.val_every == 0 || r->step == r->total);
        double vl = NAN, vp = NAN, vb = NAN;
        if (do_val) {
            bool done = false;
            progress(r, ema, rate, true, &last_print);
            if ((st = validate(r, &vl, &vp, &vb, &done))) break;
            if (done) {
                r->last_val_loss = vl;
                r->last_val_psnr = vp;
                if (!r->quiet) {
                    end_progress_line(r);
                    char bpp[48] = "";
                    if (!isnan(vb)) snprintf(bpp, sizeof bpp, ", %.4f bpp", vb);
                    note(r, "step %lld: validation loss %.6g, PSNR %.3f dB%s%s", (long long)r->step,
                         vl, vp, bpp,
                         (isnan(r->best_val_loss) || vl < r->best_val_loss) ? " (best)" : "");
                }
                if (isnan(r->best_val_loss) || vl < r->best_val_loss) {
                    r->best_val_loss = vl;
                    r->best_val_psnr = vp;
                    r->best_step = r->step;
                    nne_graph *m = NULL;
                    if ((st = build_model(r, &m, vp)) || (st = nne_model_write_file(m, r->best))) {
                        nne_graph_free(m);
                        break;
                    }
                    nne_graph_free(m);
                }
            }
        }
        if (win_n && (r->step % r->s.log_every == 0 || r->step == r->total || !isnan(vl))) {
            csv_row(r, r->step, win_loss / (double)win_n, vl, vp, vb);
            win_loss = 0.0;
            win_n = 0;
        }
        progress(r, ema, rate, r->step == r->total, &last_print);
        if (r->s.ckpt_minutes > 0 && now_s() - last_ckpt >= r->s.ckpt_minutes * 60.0 &&
            r->step < r->total) {
            if ((st = write_checkpoint(r))) break;
            last_ckpt = now_s();
        }
    }
    nne_prefetcher_free(pf);
    pf = NULL;
    end_progress_line(r);
    if (st) {
        rc = cli_fail(k_cmd, st);
        if (file_exists(r->ckpt)) cli_error(k_cmd, "the last checkpoint is %s", r->ckpt);
        goto out;
    }

    /* ---- interrupted or paused: checkpoint and say how to resume ---- */
    if (paused && !g_stop) {
        if (win_n) csv_row(r, r->step, win_loss / (double)win_n, NAN, NAN, NAN);
        if ((st = write_checkpoint(r))) {
            rc = cli_fail(k_cmd, st);
            goto out;
        }
        note(r, "stopped at step %lld/%lld as asked; checkpoint written to %s", (long long)r->step,
             (long long)r->total, r->ckpt);
        note(r, "resume with: nnedge train --resume %s", r->ckpt);
        goto out;
    }
    if (g_stop && r->step < r->total) {
        if (win_n) csv_row(r, r->step, win_loss / (double)win_n, NAN, NAN, NAN);
        if ((st = write_checkpoint(r))) {
            rc = cli_fail(k_cmd, st);
            goto out;
        }
        cli_error(k_cmd, "interrupted at step %lld/%lld; checkpoint written to %s",
                  (long long)r->step, (long long)r->total, r->ckpt);
        fprintf(stderr, "resume with: nnedge train --resume %s\n", r->ckpt);
        rc = g_stop == SIGINT ? EXIT_INTERRUPTED : 128 + (int)g_stop;
        goto out;
    }

    /* ---- done: final checkpoint, then the model ---- */
    if ((st = write_checkpoint(r))) {
        rc = cli_fail(k_cmd, st);
        goto out;
    }
    if (file_exists(r->output) && !ro->force) {
        cli_error(k_cmd,
                  "%s appeared during training; not overwritten. The weights are in %s: rerun "
                  "'nnedge train --resume %s -o OTHER.nne' or add --force",
                  r->output, r->ckpt, r->ckpt);
        rc = NNE_EXIT_RUNTIME;
        goto out;
    }
    nne_graph *m = NULL;
    if ((st = build_model(r, &m, r->last_val_psnr)) || (st = nne_model_write_file(m, r->output))) {
        nne_graph_free(m);
        rc = cli_fail(k_cmd, st);
        goto out;
    }
    nne_graph_free(m);
    if (!r->quiet) {
        char el[32];
        fmt_duration(elapsed(r), el, sizeof el);
        note(r, "wrote %s (%lld steps, %.2f epochs, %s)", r->output, (long long)r->step,
             epoch_at(r, r->step), el);
        if (!isnan(r->last_val_psnr))
            note(r, "validation PSNR %.3f dB; best %.3f dB at step %lld (%s)", r->last_val_psnr,
                 r->best_val_psnr, (long long)r->best_step, r->best);
    }
out:
    nne_prefetcher_free(pf);
    nne_checkpoint_clear(&ck);
    run_free(r);
    free(r);
    return rc;
}
