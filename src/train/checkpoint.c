/* Training checkpoints: the container format of docs/training.md ("Checkpoint file").
 *
 *   header   64 bytes   magic, version, sizes, file CRC
 *   state   160 bytes   step, data position, seed, optimizer/schedule/loss configuration,
 *                       best validation, elapsed time
 *   kv      kv_size     n_kv pairs "key\0value\0"
 *   (zero padding to a multiple of 64)
 *   model   model_size  an .nne model file (docs/model-format.md), validated by its reader
 *   (zero padding to a multiple of 64)
 *   m       n_params f32, then v n_params f32 (Adam only)
 *   mask    ceil(n_params / 8) bytes, only with header flag 1: the pruning mask, bit i of
 *           byte i / 8 (LSB first) = parameter i kept; unused high bits 0
 *
 * The reader checks, in this order: magic, version, flags, fixed sizes, file_size against the
 * buffer, the CRC, the section sizes against their limits and the exact layout, the padding,
 * the state fields, the key/values, the embedded model, the parameter count, the moments.
 * Nothing is allocated before the sizes it depends on have been checked against the bytes
 * present. */
#include <math.h>
#include <string.h>

#include "common/le.h"
#include "nnedge/file.h"
#include "nnedge/model_file.h"
#include "nnedge/train.h"

enum {
    CK_HEADER_SIZE = 64,
    CK_STATE_SIZE = 160,
    CK_STATE_OFF = CK_HEADER_SIZE,
    CK_KV_OFF = CK_HEADER_SIZE + CK_STATE_SIZE,
    CK_CRC_OFF = 24,
    CK_ALIGN = 64,
    CK_FLAG_MASK = 1, /* a pruning mask follows the moments */
};
#define CK_MAX_FILE     ((uint64_t)1 << 32) /* 4 GiB, as model files */
#define CK_MAX_KV_BYTES ((uint64_t)NNE_CKPT_MAX_KV * (NNE_MAX_NAME + 1 + NNE_CKPT_MAX_VALUE + 1))

static uint32_t file_crc(const uint8_t *buf, size_t size) {
    uint32_t c = nne_crc32(0, buf, CK_CRC_OFF);
    return nne_crc32(c, buf + CK_CRC_OFF + 4, size - CK_CRC_OFF - 4);
}

static uint64_t align64(uint64_t x) { return (x + CK_ALIGN - 1) & ~(uint64_t)(CK_ALIGN - 1); }

/* Prefix the current error message: "<who><what><message>" (the message is copied first,
 * since nne_error formats into the buffer nne_last_error() returns). */
static nne_status rethrow(nne_status st, const char *who, const char *what) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", nne_last_error());
    return nne_error(st, "%s%s%s", who, what, msg);
}

/* ---- state block (offsets relative to CK_STATE_OFF) --------------------------------------- */

static void state_encode(const nne_checkpoint *c, uint8_t *s) {
    const nne_trainer_config *k = &c->config;
    nne_le_wr64(s + 0, (uint64_t)c->step);
    nne_le_wr64(s + 8, c->next_batch);
    nne_le_wr64(s + 16, c->seed);
    nne_le_wr64(s + 24, (uint64_t)c->optim->t);
    nne_le_wr32(s + 32, (uint32_t)k->optim.kind);
    nne_le_wr32(s + 36, (uint32_t)k->loss);
    nne_le_wrf64(s + 40, k->optim.beta1);
    nne_le_wrf64(s + 48, k->optim.beta2);
    nne_le_wrf64(s + 56, k->optim.eps);
    nne_le_wrf32(s + 64, k->optim.momentum);
    nne_le_wrf32(s + 68, k->optim.weight_decay);
    nne_le_wrf32(s + 72, k->optim.clip_norm);
    nne_le_wr32(s + 76, (uint32_t)k->lr.kind);
    nne_le_wrf32(s + 80, k->lr.lr);
    nne_le_wrf32(s + 84, k->lr.gamma);
    nne_le_wr64(s + 88, (uint64_t)k->lr.warmup);
    nne_le_wr64(s + 96, (uint64_t)k->lr.step_size);
    nne_le_wr64(s + 104, (uint64_t)k->lr.total_steps);
    nne_le_wrf32(s + 112, k->lr.min_lr);
    nne_le_wr32(s + 116, (uint32_t)k->ms_ssim_scales);
    nne_le_wrf64(s + 120, c->best_val_loss);
    nne_le_wr64(s + 128, (uint64_t)c->best_step);
    nne_le_wrf64(s + 136, c->elapsed_s);
    nne_le_wrf64(s + 144, c->best_val_psnr);
    nne_le_wrf32(s + 152, k->loss == NNE_LOSS_RD ? k->rd_lambda : 0.0f);
    /* 156..160 reserved, zero */
}

static bool fin_ge0(double x) { return isfinite(x) && x >= 0.0; }

/* Decode and validate the state into c (config, step, ...); *optim_t receives the update
 * count. `who` prefixes messages. */
static nne_status state_decode(const uint8_t *s, const char *who, nne_checkpoint *c,
                               int64_t *optim_t) {
    nne_trainer_config *k = &c->config;
    memset(k, 0, sizeof *k);
    c->step = (int64_t)nne_le_rd64(s + 0);
    c->next_batch = nne_le_rd64(s + 8);
    c->seed = nne_le_rd64(s + 16);
    *optim_t = (int64_t)nne_le_rd64(s + 24);
    const uint32_t okind = nne_le_rd32(s + 32), loss = nne_le_rd32(s + 36),
                   lkind = nne_le_rd32(s + 76);
    k->optim.beta1 = nne_le_rdf64(s + 40);
    k->optim.beta2 = nne_le_rdf64(s + 48);
    k->optim.eps = nne_le_rdf64(s + 56);
    k->optim.momentum = nne_le_rdf32(s + 64);
    k->optim.weight_decay = nne_le_rdf32(s + 68);
    k->optim.clip_norm = nne_le_rdf32(s + 72);
    k->lr.lr = nne_le_rdf32(s + 80);
    k->lr.gamma = nne_le_rdf32(s + 84);
    k->lr.warmup = (int64_t)nne_le_rd64(s + 88);
    k->lr.step_size = (int64_t)nne_le_rd64(s + 96);
    k->lr.total_steps = (int64_t)nne_le_rd64(s + 104);
    k->lr.min_lr = nne_le_rdf32(s + 112);
    k->ms_ssim_scales = (int32_t)nne_le_rd32(s + 116);
    c->best_val_loss = nne_le_rdf64(s + 120);
    c->best_step = (int64_t)nne_le_rd64(s + 128);
    c->elapsed_s = nne_le_rdf64(s + 136);
    c->best_val_psnr = nne_le_rdf64(s + 144);
    k->rd_lambda = nne_le_rdf32(s + 152);
    for (int i = 156; i < CK_STATE_SIZE; i++)
        if (s[i])
            return nne_error(NNE_ERR_FORMAT, "%s: reserved state byte %d is not zero", who, i);

    if (c->step < 0 || *optim_t < 0)
        return nne_error(NNE_ERR_FORMAT, "%s: negative step (%lld) or update count (%lld)", who,
                         (long long)c->step, (long long)*optim_t);
    if (okind > NNE_OPTIM_ADAM)
        return nne_error(NNE_ERR_FORMAT, "%s: unknown optimizer %u", who, (unsigned)okind);
    k->optim.kind = (nne_optim_kind)okind;
    if (loss > NNE_LOSS_RD)
        return nne_error(NNE_ERR_FORMAT, "%s: unknown loss %u", who, (unsigned)loss);
    k->loss = (nne_loss_kind)loss;
    /* lambda: > 0 and finite for the rate-distortion loss, +0 otherwise (canonical: all four
     * bytes zero, so -0 is refused too) */
    if (loss == NNE_LOSS_RD ? !(isfinite(k->rd_lambda) && k->rd_lambda > 0.0f)
                            : nne_le_rd32(s + 152) != 0)
        return nne_error(NNE_ERR_FORMAT, "%s: invalid rate-distortion lambda %g for loss %u", who,
                         (double)k->rd_lambda, (unsigned)loss);
    if (lkind > NNE_LR_COSINE)
        return nne_error(NNE_ERR_FORMAT, "%s: unknown learning-rate schedule %u", who,
                         (unsigned)lkind);
    k->lr.kind = (nne_lr_kind)lkind;
    /* The optimizer's own rules (nne_optim_create); for SGD the unused Adam fields must
     * still be sane (in range, eps may be 0). */
    const bool adam = k->optim.kind == NNE_OPTIM_ADAM;
    if (!(k->optim.beta1 >= 0.0 && k->optim.beta1 < 1.0) ||
        !(k->optim.beta2 >= 0.0 && k->optim.beta2 < 1.0) ||
        !(isfinite(k->optim.eps) && (adam ? k->optim.eps > 0.0 : k->optim.eps >= 0.0)))
        return nne_error(NNE_ERR_FORMAT, "%s: Adam parameters out of range (%g, %g, %g)", who,
                         k->optim.beta1, k->optim.beta2, k->optim.eps);
    if (!(k->optim.momentum >= 0.0f && k->optim.momentum < 1.0f) ||
        !fin_ge0(k->optim.weight_decay) || !fin_ge0(k->optim.clip_norm))
        return nne_error(NNE_ERR_FORMAT,
                         "%s: momentum, weight decay or clip norm out of range (%g, %g, %g)", who,
                         (double)k->optim.momentum, (double)k->optim.weight_decay,
                         (double)k->optim.clip_norm);
    if (!fin_ge0(k->lr.lr) || !fin_ge0(k->lr.min_lr) ||
        !(isfinite(k->lr.gamma) && k->lr.gamma > 0.0f) || k->lr.warmup < 0 || k->lr.step_size < 0 ||
        k->lr.total_steps < 0 || (k->lr.kind == NNE_LR_STEP && k->lr.step_size < 1) ||
        (k->lr.kind == NNE_LR_COSINE && k->lr.total_steps <= k->lr.warmup))
        return nne_error(NNE_ERR_FORMAT, "%s: learning-rate schedule out of range", who);
    if (k->ms_ssim_scales < 0 || k->ms_ssim_scales > 5)
        return nne_error(NNE_ERR_FORMAT, "%s: MS-SSIM scales %d out of range 0..5", who,
                         (int)k->ms_ssim_scales);
    if (!fin_ge0(c->elapsed_s))
        return nne_error(NNE_ERR_FORMAT, "%s: elapsed time is not a finite number >= 0", who);
    if (c->best_step < -1 || (c->best_step == -1) != isnan(c->best_val_loss) ||
        (!isnan(c->best_val_loss) && !fin_ge0(c->best_val_loss)))
        return nne_error(NNE_ERR_FORMAT, "%s: best validation fields are inconsistent", who);
    return NNE_OK;
}

/* Every parameter with mask 0 must be exactly 0 (p holds the model's values). */
static nne_status check_masked_zero(const nne_params *p, const uint8_t *mask, const char *who) {
    for (size_t i = 0; i < p->total; i++)
        if (!mask[i] && p->data[i] != 0.0f)
            return nne_error(NNE_ERR_FORMAT, "%s: pruned parameter %zu is %g, not 0", who, i,
                             (double)p->data[i]);
    return NNE_OK;
}

/* ---- writer ------------------------------------------------------------------------------ */

static nne_status check_kv(const nne_meta *kv, int32_t n, const char *who) {
    if (n < 0 || n > NNE_CKPT_MAX_KV)
        return nne_error(NNE_ERR_LIMIT, "%s: %d key/values (limit %d)", who, (int)n,
                         NNE_CKPT_MAX_KV);
    for (int32_t i = 0; i < n; i++) {
        const char *key = kv[i].key, *val = kv[i].value;
        if (!key || !val || !key[0])
            return nne_error(NNE_ERR_INVALID_ARG, "%s: key/value %d is empty", who, (int)i);
        if (strlen(key) > NNE_MAX_NAME || strlen(val) > NNE_CKPT_MAX_VALUE)
            return nne_error(NNE_ERR_LIMIT, "%s: key/value '%.40s' too long", who, key);
        for (int32_t j = 0; j < i; j++)
            if (!strcmp(kv[j].key, key))
                return nne_error(NNE_ERR_INVALID_ARG, "%s: duplicate key '%s'", who, key);
    }
    return NNE_OK;
}

static bool all_f32(const nne_graph *g) {
    for (int32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].dtype != NNE_F32) return false;
    return true;
}

nne_status nne_checkpoint_write_mem(const nne_checkpoint *c, uint8_t **out, size_t *out_size) {
    if (!out || !out_size) return nne_error(NNE_ERR_INVALID_ARG, "checkpoint: NULL output");
    *out = NULL;
    *out_size = 0;
    if (!c || !c->model || !c->optim)
        return nne_error(NNE_ERR_INVALID_ARG, "checkpoint: NULL checkpoint, model or optimizer");
    if (!all_f32(c->model))
        return nne_error(NNE_ERR_INVALID_ARG, "checkpoint: the model must be all f32");
    const nne_optim_config *oa = &c->optim->cfg, *ob = &c->config.optim;
    if (oa->kind != ob->kind || oa->beta1 != ob->beta1 || oa->beta2 != ob->beta2 ||
        oa->eps != ob->eps || oa->momentum != ob->momentum ||
        oa->weight_decay != ob->weight_decay || oa->clip_norm != ob->clip_norm)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "checkpoint: optimizer configuration differs from config.optim");
    nne_status st = check_kv(c->kv, c->n_kv, "checkpoint");
    if (st != NNE_OK) return st;
    /* Validate the state through the reader's own rules, so that what is written can be read. */
    uint8_t state[CK_STATE_SIZE] = {0};
    state_encode(c, state);
    {
        nne_checkpoint tmp;
        memset(&tmp, 0, sizeof tmp);
        int64_t t;
        if ((st = state_decode(state, "checkpoint", &tmp, &t)) != NNE_OK)
            return rethrow(NNE_ERR_INVALID_ARG, "", "");
    }
    nne_params *p = NULL;
    if ((st = nne_params_create(c->model, &p)) != NNE_OK) return st;
    const size_t n_params = p->total;
    st = c->mask ? check_masked_zero(p, c->mask, "checkpoint") : NNE_OK;
    nne_params_free(p);
    if (st) return rethrow(NNE_ERR_INVALID_ARG, "", "");
    if (n_params != c->optim->n)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "checkpoint: optimizer holds %zu values, the model %zu parameters",
                         c->optim->n, n_params);

    uint8_t *model = NULL;
    size_t model_size = 0;
    if ((st = nne_model_write_mem(c->model, &model, &model_size)) != NNE_OK) return st;

    uint64_t kv_size = 0;
    for (int32_t i = 0; i < c->n_kv; i++)
        kv_size += strlen(c->kv[i].key) + 1 + strlen(c->kv[i].value) + 1;
    const uint64_t model_off = align64(CK_KV_OFF + kv_size);
    const uint64_t mom_off = align64(model_off + model_size);
    const uint64_t n_arrays = c->config.optim.kind == NNE_OPTIM_ADAM ? 2 : 1;
    const uint64_t mask_off = mom_off + n_arrays * 4 * (uint64_t)n_params;
    const uint64_t total = mask_off + (c->mask ? ((uint64_t)n_params + 7) / 8 : 0);
    if (total > CK_MAX_FILE || total > SIZE_MAX) {
        nne_free(model);
        return nne_error(NNE_ERR_LIMIT, "checkpoint: %llu bytes exceed the 4 GiB limit",
                         (unsigned long long)total);
    }
    uint8_t *b = nne_calloc(1, (size_t)total);
    if (!b) {
        nne_free(model);
        return NNE_ERR_NOMEM;
    }
    memcpy(b, NNE_CKPT_MAGIC, 8);
    nne_le_wr32(b + 8, NNE_CKPT_VERSION);
    nne_le_wr32(b + 12, c->mask ? CK_FLAG_MASK : 0);
    nne_le_wr32(b + 16, CK_HEADER_SIZE);
    nne_le_wr32(b + 20, CK_STATE_SIZE);
    nne_le_wr32(b + 28, (uint32_t)c->n_kv);
    nne_le_wr64(b + 32, total);
    nne_le_wr64(b + 40, kv_size);
    nne_le_wr64(b + 48, model_size);
    nne_le_wr64(b + 56, n_params);
    memcpy(b + CK_STATE_OFF, state, CK_STATE_SIZE);
    uint8_t *q = b + CK_KV_OFF;
    for (int32_t i = 0; i < c->n_kv; i++) {
        const size_t lk = strlen(c->kv[i].key) + 1, lv = strlen(c->kv[i].value) + 1;
        memcpy(q, c->kv[i].key, lk);
        memcpy(q + lk, c->kv[i].value, lv);
        q += lk + lv;
    }
    memcpy(b + model_off, model, model_size);
    nne_free(model);
    for (size_t i = 0; i < n_params; i++) nne_le_wrf32(b + mom_off + 4 * i, c->optim->m[i]);
    if (n_arrays == 2)
        for (size_t i = 0; i < n_params; i++)
            nne_le_wrf32(b + mom_off + 4 * (n_params + i), c->optim->v[i]);
    for (size_t i = 0; c->mask && i < n_params; i++)
        if (c->mask[i]) b[mask_off + i / 8] |= (uint8_t)(1u << (i % 8));
    nne_le_wr32(b + CK_CRC_OFF, file_crc(b, (size_t)total));
    *out = b;
    *out_size = (size_t)total;
    return NNE_OK;
}

nne_status nne_checkpoint_write_file(const nne_checkpoint *c, const char *path) {
    if (!path) return nne_error(NNE_ERR_INVALID_ARG, "checkpoint: NULL path");
    uint8_t *buf = NULL;
    size_t n = 0;
    nne_status st = nne_checkpoint_write_mem(c, &buf, &n);
    if (st != NNE_OK) { return rethrow(st, path, ": "); }
    st = nne_file_write_atomic(path, buf, n);
    nne_free(buf);
    return st;
}

/* ---- reader ------------------------------------------------------------------------------ */

void nne_checkpoint_clear(nne_checkpoint *c) {
    if (!c) return;
    nne_graph_free(c->model);
    nne_optim_free(c->optim);
    for (int32_t i = 0; i < c->n_kv; i++) {
        nne_free(c->kv[i].key);
        nne_free(c->kv[i].value);
    }
    nne_free(c->kv);
    nne_free(c->mask);
    memset(c, 0, sizeof *c);
}

const char *nne_checkpoint_get(const nne_checkpoint *c, const char *key) {
    if (!c || !key) return NULL;
    for (int32_t i = 0; i < c->n_kv; i++)
        if (!strcmp(c->kv[i].key, key)) return c->kv[i].value;
    return NULL;
}

static bool zero_range(const uint8_t *p, uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; i++)
        if (p[i]) return false;
    return true;
}

/* Parse the key/value block [buf, buf + size) holding n pairs into c->kv. */
static nne_status read_kv(const uint8_t *buf, uint64_t size, uint32_t n, const char *who,
                          nne_checkpoint *c) {
    /* Each pair needs at least 3 bytes ("k\0\0"), so n is bounded by the bytes present. */
    if ((uint64_t)n * 3 > size)
        return nne_error(NNE_ERR_FORMAT, "%s: %u key/values cannot fit in %llu bytes", who,
                         (unsigned)n, (unsigned long long)size);
    if (n == 0 && size != 0)
        return nne_error(NNE_ERR_FORMAT, "%s: key/value bytes without entries", who);
    c->kv = nne_calloc(n ? n : 1, sizeof *c->kv);
    if (!c->kv) return NNE_ERR_NOMEM;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *str[2];
        for (int part = 0; part < 2; part++) {
            const uint8_t *z = pos < size ? memchr(buf + pos, 0, (size_t)(size - pos)) : NULL;
            if (!z)
                return nne_error(NNE_ERR_FORMAT, "%s: key/value %u is not NUL-terminated", who,
                                 (unsigned)i);
            const uint64_t len = (uint64_t)(z - (buf + pos));
            if (part == 0 && (len == 0 || len > NNE_MAX_NAME))
                return nne_error(len ? NNE_ERR_LIMIT : NNE_ERR_FORMAT,
                                 "%s: key %u is %s (%llu bytes, 1..%d allowed)", who, (unsigned)i,
                                 len ? "too long" : "empty", (unsigned long long)len, NNE_MAX_NAME);
            if (part == 1 && len > NNE_CKPT_MAX_VALUE)
                return nne_error(NNE_ERR_LIMIT, "%s: value %u is %llu bytes (limit %d)", who,
                                 (unsigned)i, (unsigned long long)len, NNE_CKPT_MAX_VALUE);
            str[part] = (const char *)(buf + pos);
            pos += len + 1;
        }
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(c->kv[j].key, str[0]))
                return nne_error(NNE_ERR_FORMAT, "%s: duplicate key '%s'", who, str[0]);
        c->kv[i].key = nne_strdup(str[0]);
        c->kv[i].value = nne_strdup(str[1]);
        c->n_kv = (int32_t)i + 1;
        if (!c->kv[i].key || !c->kv[i].value) return NNE_ERR_NOMEM;
    }
    if (pos != size)
        return nne_error(NNE_ERR_FORMAT, "%s: %llu stray bytes after the key/values", who,
                         (unsigned long long)(size - pos));
    return NNE_OK;
}

/* The embedded model must be exactly the bytes nne_checkpoint_write_mem would store for it:
 * the model reader accepts encodings the writer never produces for a checkpoint (f16-stored
 * constants, which it widens to f32), and a checkpoint that does not write back to the same
 * bytes would not resume into the file it came from. */
static nne_status check_canonical_model(const nne_graph *g, const uint8_t *bytes, uint64_t size,
                                        const char *who) {
    uint8_t *b = NULL;
    size_t n = 0;
    nne_status st = nne_model_write_mem(g, &b, &n);
    if (st != NNE_OK) return rethrow(NNE_ERR_FORMAT, who, ": embedded model does not serialize: ");
    const bool same = n == size && memcmp(b, bytes, n) == 0;
    nne_free(b);
    if (!same)
        return nne_error(NNE_ERR_FORMAT,
                         "%s: the embedded model is not stored as checkpoints store it "
                         "(f32 constants, canonical encoding)",
                         who);
    return NNE_OK;
}

static nne_status read_mem(const uint8_t *buf, size_t size, const char *who, nne_checkpoint *c) {
    memset(c, 0, sizeof *c);
    if (!buf && size) return nne_error(NNE_ERR_INVALID_ARG, "%s: NULL buffer", who);
    if (size < 8 || memcmp(buf, NNE_CKPT_MAGIC, 8) != 0)
        return nne_error(NNE_ERR_FORMAT, "%s: not an nnedge checkpoint (bad magic)", who);
    if (size < CK_KV_OFF)
        return nne_error(NNE_ERR_FORMAT, "%s: truncated (%zu bytes, the header and state need %d)",
                         who, size, CK_KV_OFF);
    const uint32_t version = nne_le_rd32(buf + 8), flags = nne_le_rd32(buf + 12);
    if (version != NNE_CKPT_VERSION)
        return nne_error(NNE_ERR_UNSUPPORTED, "%s: version %u (this nnedge reads version %d)", who,
                         (unsigned)version, NNE_CKPT_VERSION);
    if (flags & ~(uint32_t)CK_FLAG_MASK)
        return nne_error(NNE_ERR_UNSUPPORTED, "%s: unknown header flags 0x%x", who,
                         (unsigned)flags);
    if (nne_le_rd32(buf + 16) != CK_HEADER_SIZE || nne_le_rd32(buf + 20) != CK_STATE_SIZE)
        return nne_error(NNE_ERR_FORMAT, "%s: header size %u / state size %u (want %d / %d)", who,
                         (unsigned)nne_le_rd32(buf + 16), (unsigned)nne_le_rd32(buf + 20),
                         CK_HEADER_SIZE, CK_STATE_SIZE);
    const uint64_t file_size = nne_le_rd64(buf + 32);
    if (file_size != size)
        return nne_error(NNE_ERR_FORMAT, "%s: %s: the header says %llu bytes, there are %zu", who,
                         file_size > size ? "truncated" : "trailing bytes",
                         (unsigned long long)file_size, size);
    if (file_size > CK_MAX_FILE)
        return nne_error(NNE_ERR_LIMIT, "%s: %llu bytes exceed the 4 GiB limit", who,
                         (unsigned long long)file_size);
    const uint32_t crc = nne_le_rd32(buf + CK_CRC_OFF), want = file_crc(buf, size);
    if (crc != want)
        return nne_error(NNE_ERR_CHECKSUM,
                         "%s: CRC mismatch (stored 0x%08x, computed 0x%08x): the file is "
                         "damaged",
                         who, (unsigned)crc, (unsigned)want);

    const uint32_t n_kv = nne_le_rd32(buf + 28);
    const uint64_t kv_size = nne_le_rd64(buf + 40), model_size = nne_le_rd64(buf + 48),
                   n_params = nne_le_rd64(buf + 56);
    if (n_kv > NNE_CKPT_MAX_KV)
        return nne_error(NNE_ERR_LIMIT, "%s: %u key/values (limit %d)", who, (unsigned)n_kv,
                         NNE_CKPT_MAX_KV);
    /* Each size is bounded by the file size first, so the sums below cannot overflow. */
    if (kv_size > file_size || model_size > file_size || n_params > file_size / 4)
        return nne_error(NNE_ERR_FORMAT, "%s: section sizes exceed the file size", who);
    if (kv_size > CK_MAX_KV_BYTES)
        return nne_error(NNE_ERR_LIMIT, "%s: %llu bytes of key/values", who,
                         (unsigned long long)kv_size);
    int64_t optim_t = 0;
    nne_status st = state_decode(buf + CK_STATE_OFF, who, c, &optim_t);
    if (st != NNE_OK) {
        memset(c, 0, sizeof *c);
        return st;
    }
    const uint64_t model_off = align64(CK_KV_OFF + kv_size);
    const uint64_t mom_off = align64(model_off + model_size);
    const uint64_t n_arrays = c->config.optim.kind == NNE_OPTIM_ADAM ? 2 : 1;
    const uint64_t mask_off = mom_off + n_arrays * 4 * n_params;
    const uint64_t want_size = mask_off + (flags & CK_FLAG_MASK ? (n_params + 7) / 8 : 0);
    if (want_size != file_size)
        return nne_error(NNE_ERR_FORMAT,
                         "%s: layout needs %llu bytes (key/values %llu, model %llu, %llu x %llu "
                         "moments), the file has %llu",
                         who, (unsigned long long)want_size, (unsigned long long)kv_size,
                         (unsigned long long)model_size, (unsigned long long)n_arrays,
                         (unsigned long long)n_params, (unsigned long long)file_size);
    if (!zero_range(buf, CK_KV_OFF + kv_size, model_off) ||
        !zero_range(buf, model_off + model_size, mom_off))
        return nne_error(NNE_ERR_FORMAT, "%s: padding bytes are not zero", who);

    if ((st = read_kv(buf + CK_KV_OFF, kv_size, n_kv, who, c)) != NNE_OK) goto fail;

    if ((st = nne_model_read_mem(buf + model_off, (size_t)model_size, &c->model)) != NNE_OK) {
        st = rethrow(st, who, ": embedded ");
        goto fail;
    }
    if (!all_f32(c->model)) {
        st = nne_error(NNE_ERR_FORMAT, "%s: the embedded model is not all f32", who);
        goto fail;
    }
    if ((st = check_canonical_model(c->model, buf + model_off, model_size, who)) != NNE_OK)
        goto fail;
    nne_params *p = NULL;
    if ((st = nne_params_create(c->model, &p)) != NNE_OK) {
        st = rethrow(NNE_ERR_FORMAT, who, ": embedded model: ");
        goto fail;
    }
    const size_t total = p->total;
    if (total == n_params && (flags & CK_FLAG_MASK)) {
        const uint8_t *mb = buf + mask_off;
        if (n_params % 8 && (mb[n_params / 8] >> (n_params % 8)) != 0) {
            nne_params_free(p);
            st = nne_error(NNE_ERR_FORMAT, "%s: unused bits of the pruning mask are not 0", who);
            goto fail;
        }
        if (!(c->mask = nne_malloc((size_t)n_params + 1))) {
            nne_params_free(p);
            st = NNE_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < (size_t)n_params; i++) c->mask[i] = (mb[i / 8] >> (i % 8)) & 1;
        st = check_masked_zero(p, c->mask, who);
    }
    nne_params_free(p);
    if (st) goto fail;
    if (total != n_params) {
        st = nne_error(NNE_ERR_FORMAT,
                       "%s: %llu optimizer values, but the model has %zu trainable parameters", who,
                       (unsigned long long)n_params, total);
        goto fail;
    }
    if ((st = nne_optim_create(&c->config.optim, (size_t)n_params, &c->optim)) != NNE_OK) {
        st = rethrow(NNE_ERR_FORMAT, who, ": ");
        goto fail;
    }
    c->optim->t = optim_t;
    const uint8_t *mp = buf + mom_off;
    for (size_t i = 0; i < (size_t)n_params; i++) {
        const float m = nne_le_rdf32(mp + 4 * i);
        if (!isfinite(m)) {
            st = nne_error(NNE_ERR_FORMAT, "%s: first moment %zu is not finite", who, i);
            goto fail;
        }
        c->optim->m[i] = m;
    }
    if (n_arrays == 2)
        for (size_t i = 0; i < (size_t)n_params; i++) {
            const float v = nne_le_rdf32(mp + 4 * ((size_t)n_params + i));
            if (!(isfinite(v) && v >= 0.0f)) {
                st = nne_error(NNE_ERR_FORMAT, "%s: second moment %zu is negative or not finite",
                               who, i);
                goto fail;
            }
            c->optim->v[i] = v;
        }
    return NNE_OK;
fail:
    nne_checkpoint_clear(c);
    return st;
}

nne_status nne_checkpoint_read_mem(const uint8_t *buf, size_t size, nne_checkpoint *c) {
    if (!c) return nne_error(NNE_ERR_INVALID_ARG, "checkpoint: NULL output");
    return read_mem(buf, size, "checkpoint", c);
}

nne_status nne_checkpoint_read_file(const char *path, nne_checkpoint *c) {
    if (!c || !path) return nne_error(NNE_ERR_INVALID_ARG, "checkpoint: NULL argument");
    memset(c, 0, sizeof *c);
    uint8_t *buf = NULL;
    size_t n = 0;
    nne_status st = nne_file_read(path, (size_t)CK_MAX_FILE, &buf, &n);
    if (st != NNE_OK) return st; /* the message names the path */
    st = read_mem(buf, n, path, c);
    nne_free(buf);
    return st;
}
