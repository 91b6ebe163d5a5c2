/* The learned codec (include/nnedge/lcodec.h) as an image codec, "nnedge:<kind>": a ladder of
 * trained models of one kind, one per quality index, behind the nne_imgcodec interface so
 * that `nnedge rd` measures it exactly like the classical codecs (docs/rd.md).
 *
 * An nne_lcodec object is not re-entrant (it keeps the sessions of the last image size and
 * the symbols of the last call), and rd calls encode/decode from several threads at once.
 * Each model therefore has a small pool of idle codec objects behind one mutex: a call
 * borrows one (or creates one from the model file when none is idle) and gives it back.
 * Idle objects hold whole-image activation arenas (tens of MB each at Kodak size), so the
 * pool keeps at most LC_MAX_IDLE of them in total, dropping those of other models first:
 * rd sweeps one quality over all images before the next. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgcodec/imgcodec_internal.h"
#include "nnedge/bitstream.h"
#include "nnedge/lcodec.h"

#define LC_MAX_IDLE 4 /* idle codec objects kept over all models */

typedef struct lc_model {
    int32_t quality;
    char *path;
    nne_lcodec *idle[LC_MAX_IDLE];
    int n_idle;
} lc_model;

typedef struct lc_ctx {
    nne_imgcodec codec; /* first: the public handle */
    pthread_mutex_t mu;
    int n;
    lc_model m[NNE_IMGCODEC_MAX_SWEEP];
    nne_lcodec_info info;           /* of the first model (hash pointer not kept) */
    int32_t n_lo, n_hi, m_lo, m_hi; /* channel ranges over the ladder (rungs may differ) */
    char sizes[48];                 /* "N=64 M=96" or "N=64 M=96..192" */
    char name[64], label[96], settings[512], anchor[96];
    char scheme[32];               /* an int8 ladder's quantization scheme, "" for f32 */
    nne_lcodec_refine_opts refine; /* latent refinement of every encode (iterations 0: off) */
    size_t settings_len;           /* of the settings without the refinement note */
} lc_ctx;

static lc_model *find_model(lc_ctx *x, int32_t quality) {
    for (int i = 0; i < x->n; i++)
        if (x->m[i].quality == quality) return &x->m[i];
    return NULL;
}

static nne_status borrow(lc_ctx *x, lc_model *m, nne_lcodec **out) {
    pthread_mutex_lock(&x->mu);
    *out = m->n_idle ? m->idle[--m->n_idle] : NULL;
    pthread_mutex_unlock(&x->mu);
    nne_status s = *out ? NNE_OK : nne_lcodec_load(m->path, m->quality, out);
    if (!s) s = nne_lcodec_set_refine(*out, &x->refine);
    if (s && *out) {
        nne_lcodec_free(*out);
        *out = NULL;
    }
    return s;
}

static void give_back(lc_ctx *x, lc_model *m, nne_lcodec *c) {
    nne_lcodec *drop[NNE_IMGCODEC_MAX_SWEEP * LC_MAX_IDLE + 1];
    int nd = 0, total = 0;
    pthread_mutex_lock(&x->mu);
    for (int i = 0; i < x->n; i++) total += x->m[i].n_idle;
    /* Make room: idle objects of other models first, then this model's oldest. */
    for (int i = 0; i < x->n && total >= LC_MAX_IDLE; i++)
        while (&x->m[i] != m && x->m[i].n_idle && total >= LC_MAX_IDLE) {
            drop[nd++] = x->m[i].idle[--x->m[i].n_idle];
            total--;
        }
    if (total >= LC_MAX_IDLE || m->n_idle == LC_MAX_IDLE)
        drop[nd++] = c;
    else
        m->idle[m->n_idle++] = c;
    pthread_mutex_unlock(&x->mu);
    for (int i = 0; i < nd; i++) nne_lcodec_free(drop[i]);
}

static const char *lc_version(const nne_imgcodec *c, char *buf, size_t n) {
    const lc_ctx *x = c->ctx;
    snprintf(buf, n, "nnedge lcodec: %s %s, %d model(s)", x->info.model_id, x->sizes, x->n);
    return buf;
}

static nne_status lc_encode(const nne_imgcodec *c, const nne_image *img, double quality,
                            uint8_t **out, size_t *out_size) {
    lc_ctx *x = c->ctx;
    lc_model *m = find_model(x, (int32_t)quality);
    if (!m)
        return nne_error(NNE_ERR_INVALID_ARG, "%s: no model for quality %g in the ladder", c->name,
                         quality);
    nne_lcodec *lc;
    nne_status s = borrow(x, m, &lc);
    if (s) return s;
    s = nne_lcodec_encode(lc, img, false, out, out_size, NULL);
    give_back(x, m, lc);
    if (s) return nne_error(s, "%s: %s", c->name, nne_last_error());
    return NNE_OK;
}

static nne_status lc_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n, nne_image *img) {
    lc_ctx *x = c->ctx;
    nne_nnc box;
    nne_status s = nne_nnc_read_mem(buf, n, &box);
    if (s) return nne_error(s, "%s: %s", c->name, nne_last_error());
    lc_model *m = find_model(x, box.quality);
    if (!m)
        return nne_error(NNE_ERR_FORMAT, "%s: the stream has quality %d, not in the ladder",
                         c->name, (int)box.quality);
    nne_lcodec *lc;
    if ((s = borrow(x, m, &lc))) return s;
    s = nne_lcodec_decode(lc, buf, n, img);
    give_back(x, m, lc);
    if (s) return nne_error(s, "%s: %s", c->name, nne_last_error());
    return NNE_OK;
}

void nne_imgcodec_lcodec_free(nne_imgcodec *c) {
    if (!c) return;
    lc_ctx *x = c->ctx;
    for (int i = 0; i < x->n; i++) {
        for (int k = 0; k < x->m[i].n_idle; k++) nne_lcodec_free(x->m[i].idle[k]);
        nne_free(x->m[i].path);
    }
    pthread_mutex_destroy(&x->mu);
    nne_free(x);
}

nne_status nne_imgcodec_lcodec_set_refine(const nne_imgcodec *c, const nne_lcodec_refine_opts *o) {
    if (!c || !c->ctx) return nne_error(NNE_ERR_INVALID_ARG, "nnedge imgcodec: NULL codec");
    lc_ctx *x = c->ctx;
    nne_lcodec_refine_opts r;
    memset(&r, 0, sizeof r);
    if (o) r = *o;
    /* Check the options against every model (its train.lambda) before keeping them. */
    for (int i = 0; i < x->n; i++) {
        nne_lcodec *lc = NULL;
        nne_status s = nne_lcodec_load(x->m[i].path, x->m[i].quality, &lc);
        if (!s) s = nne_lcodec_set_refine(lc, &r);
        nne_lcodec_free(lc);
        if (s) return nne_error(s, "%s: %s", x->m[i].path, nne_last_error());
    }
    x->refine = r;
    x->settings[x->settings_len] = 0;
    if (r.iterations > 0) {
        char lam[32] = "each model's train.lambda";
        if (r.lambda > 0.0f) snprintf(lam, sizeof lam, "lambda %g", (double)r.lambda);
        snprintf(x->settings + x->settings_len, sizeof x->settings - x->settings_len,
                 "; latent refinement: %d Adam steps at %g, %s (docs/codec.md)", (int)r.iterations,
                 (double)(r.lr > 0.0f ? r.lr : NNE_LCODEC_REFINE_LR), lam);
    }
    return NNE_OK;
}

static int cmp_model(const void *a, const void *b) {
    const lc_model *x = a, *y = b;
    return (x->quality > y->quality) - (x->quality < y->quality);
}

nne_status nne_imgcodec_lcodec_open(int n, const char *const *paths, const int32_t *qualities,
                                    nne_imgcodec **out) {
    *out = NULL;
    if (n < 1 || n > NNE_IMGCODEC_MAX_SWEEP || !paths || !qualities)
        return nne_error(NNE_ERR_INVALID_ARG, "nnedge imgcodec: %d models (want 1..%d)", n,
                         NNE_IMGCODEC_MAX_SWEEP);
    lc_ctx *x = nne_calloc(1, sizeof *x);
    if (!x) return NNE_ERR_NOMEM;
    pthread_mutex_init(&x->mu, NULL);
    x->codec.ctx = x;
    nne_status s = NNE_OK;
    for (int i = 0; i < n && !s; i++) {
        const int32_t q = qualities[i];
        if (q < 0 || q > NNE_NNC_MAX_QUALITY || find_model(x, q)) {
            s = nne_error(NNE_ERR_INVALID_ARG, "nnedge imgcodec: quality %d %s", (int)q,
                          q < 0 || q > NNE_NNC_MAX_QUALITY ? "outside 0..255" : "given twice");
            break;
        }
        lc_model *m = &x->m[x->n++];
        m->quality = q;
        const size_t len = strlen(paths[i]) + 1;
        if (!(m->path = nne_malloc(len))) {
            s = NNE_ERR_NOMEM;
            break;
        }
        memcpy(m->path, paths[i], len);
        /* Load each model once: it must be a learned codec of the first one's kind and
         * precision (its channels N, M may differ: a wider top rung); the object stays as the
         * model's first idle codec. */
        nne_lcodec *lc = NULL;
        if ((s = nne_lcodec_load(m->path, q, &lc))) break;
        nne_lcodec_info info;
        nne_lcodec_get_info(lc, &info);
        info.hash = NULL;
        if (i == 0) {
            snprintf(x->scheme, sizeof x->scheme, "%s", info.scheme ? info.scheme : "");
            info.scheme = NULL; /* points into `lc`, which may be freed below */
            x->info = info;
            x->n_lo = x->n_hi = info.n;
            x->m_lo = x->m_hi = info.m;
        } else if (info.kind != x->info.kind || strcmp(info.precision, x->info.precision)) {
            s = nne_error(NNE_ERR_INVALID_ARG,
                          "nnedge imgcodec: %s is %s N=%d M=%d %s, but %s is %s N=%d M=%d %s: a "
                          "ladder holds one kind and precision",
                          m->path, info.model_id, (int)info.n, (int)info.m, info.precision,
                          x->m[0].path, x->info.model_id, (int)x->info.n, (int)x->info.m,
                          x->info.precision);
        } else {
            if (info.n < x->n_lo) x->n_lo = info.n;
            if (info.n > x->n_hi) x->n_hi = info.n;
            if (info.m < x->m_lo) x->m_lo = info.m;
            if (info.m > x->m_hi) x->m_hi = info.m;
        }
        if (s || x->n > LC_MAX_IDLE) /* keep at most LC_MAX_IDLE idle objects */
            nne_lcodec_free(lc);
        else
            m->idle[m->n_idle++] = lc;
    }
    if (s) {
        nne_imgcodec_lcodec_free(&x->codec);
        return s;
    }
    qsort(x->m, (size_t)x->n, sizeof x->m[0], cmp_model);
    char nr[20], mr[20];
    if (x->n_lo == x->n_hi)
        snprintf(nr, sizeof nr, "%d", (int)x->n_lo);
    else
        snprintf(nr, sizeof nr, "%d..%d", (int)x->n_lo, (int)x->n_hi);
    if (x->m_lo == x->m_hi)
        snprintf(mr, sizeof mr, "%d", (int)x->m_lo);
    else
        snprintf(mr, sizeof mr, "%d..%d", (int)x->m_lo, (int)x->m_hi);
    snprintf(x->sizes, sizeof x->sizes, "N=%s M=%s", nr, mr);
    snprintf(x->name, sizeof x->name, "nnedge:%s", x->info.model_id);
    snprintf(x->label, sizeof x->label, "nnedge %s%s (learned)", x->info.model_id,
             x->scheme[0] ? " int8" : "");
    snprintf(x->anchor, sizeof x->anchor, "compressai-%s_mse_cpu", x->info.model_id);
    const char *slash = strrchr(x->m[0].path, '/');
    const int dir_len = slash ? (int)(slash - x->m[0].path) : 1;
    snprintf(x->settings, sizeof x->settings,
             "models %.*s/%s-q{%d..%d}.nne, %s; %s%s%s, h_a/h_s f32 on cpu-exact, "
             "threads: the process pool (docs/codec.md); 16-bit rANS; bpp from the .nnc file",
             dir_len, slash ? x->m[0].path : ".", x->info.model_id, (int)x->m[0].quality,
             (int)x->m[x->n - 1].quality, x->sizes,
             x->scheme[0] ? "g_a/g_s int8 (" : "g_a/g_s f32 on cpu-exact", x->scheme,
             x->scheme[0] ? ") on cpu-s8" : "");
    x->settings_len = strlen(x->settings);
    nne_imgcodec *c = &x->codec;
    c->name = x->name;
    c->label = x->label;
    c->knob = "quality";
    c->q_min = x->m[0].quality;
    c->q_max = x->m[x->n - 1].quality;
    c->direction = +1;
    c->integer = true;
    c->settings = x->settings;
    c->anchor = x->anchor;
    c->n_sweep = x->n;
    for (int i = 0; i < x->n; i++) c->sweep[i] = x->m[i].quality;
    c->version = lc_version;
    c->encode = lc_encode;
    c->decode = lc_decode;
    *out = c;
    return NNE_OK;
}
