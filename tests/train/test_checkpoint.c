/* Training checkpoints (docs/training.md, "Checkpoint file"): round trip, exact resume
 * (N steps + checkpoint + M steps == N + M steps, bitwise), and rejection of damaged,
 * truncated and inconsistent files with clear errors. */
#include <string.h>
#include <unistd.h>

#include "common/le.h"
#include "nnedge/file.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/train.h"
#include "testutil.h"

enum { B = 2, H = 24, W = 28, N_STEPS = 3, M_STEPS = 4 };

/* Batch k: a deterministic function of k, like nne_dataset_crop_batch. */
static void make_batch(uint64_t k, float *x) {
    nne_rng r;
    nne_rng_seed(&r, 1000 + k);
    for (size_t i = 0; i < (size_t)B * H * W * 3; i++) x[i] = nne_rng_uniform_f32(&r);
}

static nne_trainer_config make_config(nne_optim_kind kind) {
    nne_trainer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.optim = kind == NNE_OPTIM_ADAM ? nne_optim_config_adam() : nne_optim_config_sgd(0.9f);
    cfg.optim.weight_decay = 1e-4f;
    cfg.optim.clip_norm = 1.0f;
    cfg.lr.kind = NNE_LR_COSINE;
    cfg.lr.lr = 1e-3f;
    cfg.lr.warmup = 2;
    cfg.lr.total_steps = N_STEPS + M_STEPS;
    cfg.lr.gamma = 1.0f;
    cfg.loss = NNE_LOSS_MSE;
    return cfg;
}

static nne_graph *make_model(uint64_t seed) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(H, W, NNE_CAE_FULL, &g));
    if (!g) return NULL;
    CHECK_OK(nne_graph_set_input_shape(g, 0, nne_shape_make(4, (int64_t[]){B, H, W, 3})));
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, seed));
    return g;
}

/* Run steps [from, to) with the external optimizer. */
static void run_steps(nne_trainer *t, nne_optim *o, const nne_trainer_config *cfg, int64_t from,
                      int64_t to, float *x) {
    for (int64_t s = from; s < to; s++) {
        make_batch((uint64_t)s, x);
        nne_train_stats st;
        CHECK_OK(nne_trainer_step_ext(t, o, &cfg->lr, s, x, x, &st));
        CHECK(st.step == s + 1);
    }
}

/* Fill a checkpoint that borrows the graph and optimizer. */
static void fill(nne_checkpoint *c, nne_graph *g, nne_optim *o, const nne_trainer_config *cfg,
                 int64_t step, nne_meta *kv, int32_t n_kv) {
    memset(c, 0, sizeof *c);
    c->model = g;
    c->optim = o;
    c->config = *cfg;
    c->step = step;
    c->next_batch = (uint64_t)step;
    c->seed = 7;
    c->elapsed_s = 1.5;
    c->best_val_loss = 0.25;
    c->best_val_psnr = 6.02;
    c->best_step = step;
    c->kv = kv;
    c->n_kv = n_kv;
}

static uint8_t *g_buf; /* a valid Adam checkpoint for the corruption tests */
static size_t g_size;

static void test_step_ext_matches_trainer_step(void) {
    nne_trainer_config cfg = make_config(NNE_OPTIM_ADAM);
    nne_graph *g1 = make_model(3), *g2 = make_model(3);
    nne_trainer *t1 = NULL, *t2 = NULL;
    nne_optim *o = NULL;
    float *x = nne_malloc((size_t)B * H * W * 3 * sizeof(float));
    CHECK_OK(nne_trainer_create(g1, &cfg, &t1));
    CHECK_OK(nne_trainer_create(g2, &cfg, &t2));
    if (!t1 || !t2 || !x) goto done;
    CHECK_OK(nne_optim_create(&cfg.optim, nne_trainer_params(t2)->total, &o));
    for (int64_t s = 0; s < 5; s++) {
        make_batch((uint64_t)s, x);
        nne_train_stats a, b;
        CHECK_OK(nne_trainer_step(t1, x, x, &a));
        CHECK_OK(nne_trainer_step_ext(t2, o, &cfg.lr, s, x, x, &b));
        CHECK(a.loss == b.loss && a.lr == b.lr && a.grad_norm == b.grad_norm && a.step == b.step);
    }
    const nne_params *p1 = nne_trainer_params(t1), *p2 = nne_trainer_params(t2);
    CHECK(p1->total == p2->total && memcmp(p1->data, p2->data, p1->total * sizeof(float)) == 0);
    /* A mismatched optimizer is refused. */
    nne_optim *small = NULL;
    CHECK_OK(nne_optim_create(&cfg.optim, 10, &small));
    CHECK_STATUS(nne_trainer_step_ext(t2, small, &cfg.lr, 0, x, x, NULL), NNE_ERR_INVALID_ARG);
    nne_optim_free(small);
done:
    nne_free(x);
    nne_optim_free(o);
    nne_trainer_free(t1);
    nne_trainer_free(t2);
    nne_graph_free(g1);
    nne_graph_free(g2);
}

/* N steps, checkpoint through bytes, M more steps == N + M steps, for Adam and SGD. */
static void exact_resume(nne_optim_kind kind) {
    nne_trainer_config cfg = make_config(kind);
    float *x = nne_malloc((size_t)B * H * W * 3 * sizeof(float));
    nne_graph *ga = make_model(11), *gb = make_model(11);
    nne_trainer *ta = NULL, *tb = NULL, *tc = NULL;
    nne_optim *oa = NULL, *ob = NULL;
    nne_checkpoint rd;
    memset(&rd, 0, sizeof rd);
    uint8_t *bytes = NULL, *bytes2 = NULL;
    size_t n = 0, n2 = 0;
    if (!x || !ga || !gb) goto done;
    /* Uninterrupted. */
    CHECK_OK(nne_trainer_create(ga, &cfg, &ta));
    if (!ta) goto done;
    CHECK_OK(nne_optim_create(&cfg.optim, nne_trainer_params(ta)->total, &oa));
    run_steps(ta, oa, &cfg, 0, N_STEPS + M_STEPS, x);
    /* Interrupted after N steps. */
    CHECK_OK(nne_trainer_create(gb, &cfg, &tb));
    if (!tb) goto done;
    CHECK_OK(nne_optim_create(&cfg.optim, nne_trainer_params(tb)->total, &ob));
    run_steps(tb, ob, &cfg, 0, N_STEPS, x);
    nne_trainer_store(tb);
    nne_meta kv[2] = {{(char *)"data", (char *)"/some/folder"}, {(char *)"batch", (char *)"2"}};
    nne_checkpoint wr;
    fill(&wr, gb, ob, &cfg, N_STEPS, kv, 2);
    CHECK_OK(nne_checkpoint_write_mem(&wr, &bytes, &n));
    nne_trainer_free(tb);
    tb = NULL;
    nne_optim_free(ob);
    ob = NULL;
    nne_graph_free(gb);
    gb = NULL;
    /* Resume from the bytes alone. */
    CHECK_OK(nne_checkpoint_read_mem(bytes, n, &rd));
    if (!rd.model) goto done;
    CHECK(rd.step == N_STEPS && rd.next_batch == N_STEPS && rd.seed == 7);
    CHECK(rd.optim->t == N_STEPS && rd.optim->cfg.kind == kind);
    CHECK(rd.config.lr.kind == NNE_LR_COSINE && rd.config.lr.total_steps == N_STEPS + M_STEPS);
    CHECK(rd.best_step == N_STEPS && rd.best_val_loss == 0.25 && rd.elapsed_s == 1.5);
    CHECK(rd.n_kv == 2 && nne_checkpoint_get(&rd, "data") &&
          strcmp(nne_checkpoint_get(&rd, "data"), "/some/folder") == 0);
    CHECK(nne_checkpoint_get(&rd, "missing") == NULL);
    /* Canonical: write(read(bytes)) == bytes. */
    CHECK_OK(nne_checkpoint_write_mem(&rd, &bytes2, &n2));
    CHECK(n2 == n && bytes2 && memcmp(bytes, bytes2, n) == 0);
    CHECK_OK(nne_trainer_create(rd.model, &rd.config, &tc));
    if (!tc) goto done;
    run_steps(tc, rd.optim, &rd.config, rd.step, N_STEPS + M_STEPS, x);
    const nne_params *pa = nne_trainer_params(ta), *pc = nne_trainer_params(tc);
    CHECK_MSG(pa->total == pc->total && memcmp(pa->data, pc->data, pa->total * sizeof(float)) == 0,
              "resumed weights differ from an uninterrupted run (%s)",
              kind == NNE_OPTIM_ADAM ? "adam" : "sgd");
    CHECK(memcmp(oa->m, rd.optim->m, oa->n * sizeof(float)) == 0);
    if (kind == NNE_OPTIM_ADAM) CHECK(memcmp(oa->v, rd.optim->v, oa->n * sizeof(float)) == 0);
    CHECK(oa->t == rd.optim->t);
    if (kind == NNE_OPTIM_ADAM && !g_buf) {
        g_buf = bytes;
        g_size = n;
        bytes = NULL;
    }
done:
    nne_free(x);
    nne_free(bytes);
    nne_free(bytes2);
    nne_trainer_free(ta);
    nne_trainer_free(tb);
    nne_trainer_free(tc);
    nne_optim_free(oa);
    nne_optim_free(ob);
    nne_checkpoint_clear(&rd);
    nne_graph_free(ga);
    nne_graph_free(gb);
}

static void test_exact_resume_adam(void) { exact_resume(NNE_OPTIM_ADAM); }
static void test_exact_resume_sgd(void) { exact_resume(NNE_OPTIM_SGD); }

/* ---- damaged files ---- */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void fix_crc(uint8_t *b, size_t n) {
    uint32_t c = nne_crc32(0, b, 24);
    c = nne_crc32(c, b + 28, n - 28);
    put32(b + 24, c);
}

/* Expect `want` and a message containing `needle`; the checkpoint stays empty. */
static void expect_reject(const uint8_t *b, size_t n, nne_status want, const char *needle) {
    nne_checkpoint c;
    memset(&c, 0xAB, sizeof c);
    nne_status s = nne_checkpoint_read_mem(b, n, &c);
    CHECK_MSG(s == want, "got %s (%s), want %s", nne_status_str(s), nne_last_error(),
              nne_status_str(want));
    CHECK_MSG(strstr(nne_last_error(), needle) != NULL, "message '%s' lacks '%s'", nne_last_error(),
              needle);
    CHECK(strncmp(nne_last_error(), "checkpoint: ", 12) == 0);
    CHECK(c.model == NULL && c.optim == NULL && c.kv == NULL && c.n_kv == 0);
    nne_checkpoint_clear(&c);
}

static void test_rejects_damage(void) {
    if (!g_buf) {
        CHECK(!"no checkpoint from test_exact_resume_adam");
        return;
    }
    const size_t n = g_size;
    uint8_t *b = nne_malloc(n);
    if (!b) return;
    /* Sanity: the pristine bytes parse. */
    nne_checkpoint c;
    CHECK_OK(nne_checkpoint_read_mem(g_buf, n, &c));
    nne_checkpoint_clear(&c);

    expect_reject(g_buf, 0, NNE_ERR_FORMAT, "bad magic");
    expect_reject((const uint8_t *)"NNEDGEM\0 a model, not a checkpoint", 36, NNE_ERR_FORMAT,
                  "not an nnedge checkpoint");
    expect_reject(g_buf, 100, NNE_ERR_FORMAT, "truncated");
    expect_reject(g_buf, n - 1, NNE_ERR_FORMAT, "truncated");
    expect_reject(g_buf, n / 2, NNE_ERR_FORMAT, "truncated");
    /* One flipped bit anywhere: the CRC. */
    const size_t where[] = {30, 70, 300, n / 2, n - 3};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        memcpy(b, g_buf, n);
        b[where[i]] ^= 0x10;
        if (where[i] >= 32 && where[i] < 40) continue; /* file_size: "truncated" instead */
        expect_reject(b, n, NNE_ERR_CHECKSUM, "CRC mismatch");
    }
    /* With the CRC recomputed, the field checks behind it. */
    memcpy(b, g_buf, n);
    put32(b + 8, 2);
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_UNSUPPORTED, "version 2");
    memcpy(b, g_buf, n);
    put32(b + 64 + 32, 7); /* optimizer kind */
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_FORMAT, "unknown optimizer");
    memcpy(b, g_buf, n);
    b[64 + 40 + 7] = 0x7f; /* beta1 -> NaN-ish huge */
    b[64 + 40 + 6] = 0xff;
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_FORMAT, "Adam parameters");
    memcpy(b, g_buf, n);
    b[64 + 155] = 0x80; /* lambda -0 with the MSE loss: must be +0 (found by fuzzing) */
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_FORMAT, "rate-distortion lambda");
    memcpy(b, g_buf, n);
    b[56] ^= 0x01; /* n_params off by one */
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_FORMAT, "layout needs");
    memcpy(b, g_buf, n);
    put32(b + 28, 5); /* more key/values than stored */
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_FORMAT, "key/value");
    memcpy(b, g_buf, n);
    put32(b + n - 4, 0xbf800000u); /* the last second moment = -1 */
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_FORMAT, "second moment");
    memcpy(b, g_buf, n);
    put32(b + n - 4, 0x7fc00000u); /* NaN */
    fix_crc(b, n);
    expect_reject(b, n, NNE_ERR_FORMAT, "second moment");
    /* The embedded model's own checks (its magic, at the first 64-aligned offset after
     * the key/values). */
    memcpy(b, g_buf, n);
    size_t model_off = 256; /* align64(224 + key/values) */
    while (model_off < n && memcmp(b + model_off, "NNEDGEM", 7) != 0) model_off += 64;
    CHECK(model_off < n);
    if (model_off < n) {
        b[model_off + 200] ^= 0x55;
        fix_crc(b, n);
        expect_reject(b, n, NNE_ERR_CHECKSUM, "embedded model");
    }
    nne_free(b);
}

static void test_files(void) {
    if (!g_buf) return;
    char dir[] = "/tmp/nne-ckpt-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char path[128], missing[128], cmd[200];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    snprintf(missing, sizeof missing, "%s/none.ckpt", dir);
    nne_checkpoint c;
    CHECK_OK(nne_checkpoint_read_mem(g_buf, g_size, &c));
    CHECK_OK(nne_checkpoint_write_file(&c, path));
    nne_checkpoint d;
    CHECK_OK(nne_checkpoint_read_file(path, &d));
    CHECK(d.step == c.step && d.n_kv == c.n_kv);
    nne_checkpoint_clear(&d);
    nne_checkpoint_clear(&c);
    CHECK_STATUS(nne_checkpoint_read_file(missing, &d), NNE_ERR_NOT_FOUND);
    CHECK(strstr(nne_last_error(), "none.ckpt") != NULL);
    /* A truncated file names the path and says it is truncated. */
    CHECK_OK(nne_file_write_atomic(path, g_buf, g_size - 100));
    CHECK_STATUS(nne_checkpoint_read_file(path, &d), NNE_ERR_FORMAT);
    CHECK(strstr(nne_last_error(), "run.ckpt") && strstr(nne_last_error(), "truncated"));
    /* Writer argument checks. */
    nne_checkpoint e;
    memset(&e, 0, sizeof e);
    uint8_t *o = NULL;
    size_t on = 0;
    CHECK_STATUS(nne_checkpoint_write_mem(&e, &o, &on), NNE_ERR_INVALID_ARG);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* A tiny graph (1x1 conv 3->2 with bias, PReLU) for small checkpoints. */
static nne_graph *tiny_model(void) {
    nne_graph *g = NULL;
    int32_t x, w, bias, slope, y, z;
    nne_op_params p;
    memset(&p, 0, sizeof p);
    p.conv.kernel[0] = p.conv.kernel[1] = 1;
    p.conv.stride[0] = p.conv.stride[1] = 1;
    p.conv.dilation[0] = p.conv.dilation[1] = 1;
    p.conv.pad_mode = NNE_PAD_VALID;
    p.conv.groups = 1;
    nne_op_params none;
    memset(&none, 0, sizeof none);
    CHECK_OK(nne_graph_create("tiny", &g));
    if (!g) return NULL;
    CHECK_OK(nne_graph_add_input(g, "x", NNE_F32, nne_shape_4d(1, 4, 4, 3), &x));
    CHECK_OK(nne_graph_add_constant(g, "w", NNE_F32, nne_shape_4d(2, 1, 1, 3), NULL, &w));
    CHECK_OK(nne_graph_add_constant(g, "b", NNE_F32, nne_shape_1d(2), NULL, &bias));
    CHECK_OK(nne_graph_add_constant(g, "slope", NNE_F32, nne_shape_1d(2), NULL, &slope));
    CHECK_OK(nne_graph_add_node(g, "conv", NNE_OP_CONV2D, &p, (int32_t[]){x, w, bias}, 3, "y", &y));
    CHECK_OK(nne_graph_add_node(g, "act", NNE_OP_PRELU, &none, (int32_t[]){y, slope}, 2, "z", &z));
    CHECK_OK(nne_graph_mark_output(g, z));
    CHECK_OK(nne_graph_infer(g));
    CHECK_OK(nne_train_init_params(g, 1));
    return g;
}

/* Small valid checkpoints (Adam with settings, SGD without) after a few steps: the seed
 * corpus of fuzz/fuzz_checkpoint.c. Regenerated with NNE_REGEN_GOLDEN=1. */
static void test_tiny_and_corpus(void) {
    const bool regen = getenv("NNE_REGEN_GOLDEN") != NULL;
    for (int k = 0; k < 2; k++) {
        nne_graph *g = tiny_model();
        if (!g) return;
        nne_trainer_config cfg = make_config(k ? NNE_OPTIM_SGD : NNE_OPTIM_ADAM);
        nne_trainer *t = NULL;
        nne_optim *o = NULL;
        CHECK_OK(nne_trainer_create(g, &cfg, &t));
        if (t) CHECK_OK(nne_optim_create(&cfg.optim, nne_trainer_params(t)->total, &o));
        float x[48];
        for (int i = 0; i < 48; i++) x[i] = (float)((i * 7) % 11) / 11.0f;
        for (int64_t s = 0; o && s < 3; s++)
            CHECK_OK(nne_trainer_step_ext(t, o, &cfg.lr, s, x, x, NULL));
        if (t) nne_trainer_store(t);
        nne_meta kv[2] = {{(char *)"data", (char *)"/train"}, {(char *)"batch", (char *)"1"}};
        nne_checkpoint c;
        fill(&c, g, o, &cfg, 3, k ? NULL : kv, k ? 0 : 2);
        if (k) c.best_step = -1, c.best_val_loss = NAN;
        uint8_t *b = NULL;
        size_t n = 0;
        if (o) CHECK_OK(nne_checkpoint_write_mem(&c, &b, &n));
        nne_checkpoint r;
        if (b) {
            CHECK_OK(nne_checkpoint_read_mem(b, n, &r));
            nne_checkpoint_clear(&r);
        }
        if (b && regen) {
            const char *path = nne_test_path(nne_test_source_dir(),
                                             k ? "fuzz/corpus/fuzz_checkpoint/tiny_sgd.ckpt"
                                               : "fuzz/corpus/fuzz_checkpoint/tiny_adam.ckpt");
            CHECK_OK(nne_file_write_atomic(path, b, n));
        }
        nne_free(b);
        nne_optim_free(o);
        nne_trainer_free(t);
        nne_graph_free(g);
    }
}

/* A checkpoint whose embedded model stores its constants as f16 (nne_model_write_opts,
 * never written by nne_checkpoint_write_mem) parses as a model but is refused: it would not
 * write back to the same bytes (found by fuzz/fuzz_checkpoint.c). */
static void test_rejects_f16_model(void) {
    nne_graph *g = tiny_model();
    if (!g) return;
    for (int32_t i = 0; i < g->n_tensors; i++) { /* f16-exact weights: multiples of 1/8 */
        nne_tensor *t = &g->tensors[i];
        if (t->kind != NNE_TENSOR_CONSTANT) continue;
        float *v = t->data;
        for (int64_t k = 0; k < nne_shape_numel(&t->shape); k++) v[k] = (float)(k % 5) * 0.125f;
    }
    nne_trainer_config cfg = make_config(NNE_OPTIM_SGD);
    nne_optim *o = NULL;
    nne_params *p = NULL;
    CHECK_OK(nne_params_create(g, &p));
    if (p) CHECK_OK(nne_optim_create(&cfg.optim, p->total, &o));
    nne_params_free(p);
    nne_checkpoint c;
    fill(&c, g, o, &cfg, 0, NULL, 0);
    uint8_t *b = NULL, *m16 = NULL, *f = NULL;
    size_t n = 0, n16 = 0;
    if (o) CHECK_OK(nne_checkpoint_write_mem(&c, &b, &n));
    const nne_model_write_opts wo = {.f16_exact = true};
    CHECK_OK(nne_model_write_mem_opts(g, &wo, &m16, &n16));
    if (b && m16) {
        const uint64_t kv_size = nne_le_rd64(b + 40), model_size = nne_le_rd64(b + 48);
        const size_t model_off = (size_t)((224 + kv_size + 63) / 64 * 64);
        const size_t mom_off = (size_t)((model_off + model_size + 63) / 64 * 64);
        const size_t mom_off16 = (model_off + n16 + 63) / 64 * 64;
        CHECK(n16 < model_size); /* the constants really are stored as f16 */
        nne_graph *back = NULL;
        CHECK_OK(nne_model_read_mem(m16, n16, &back)); /* a valid model by itself */
        nne_graph_free(back);
        const size_t nf = mom_off16 + (n - mom_off);
        f = calloc(nf, 1);
        if (f) {
            memcpy(f, b, model_off);
            memcpy(f + model_off, m16, n16);
            memcpy(f + mom_off16, b + mom_off, n - mom_off);
            nne_le_wr64(f + 32, nf);
            nne_le_wr64(f + 48, n16);
            fix_crc(f, nf);
            expect_reject(f, nf, NNE_ERR_FORMAT, "not stored as checkpoints store it");
        }
    }
    free(f);
    nne_free(m16);
    nne_free(b);
    nne_optim_free(o);
    nne_graph_free(g);
}

int main(void) {
    NNE_RUN(test_tiny_and_corpus);
    NNE_RUN(test_step_ext_matches_trainer_step);
    NNE_RUN(test_exact_resume_adam);
    NNE_RUN(test_exact_resume_sgd);
    NNE_RUN(test_rejects_damage);
    NNE_RUN(test_files);
    NNE_RUN(test_rejects_f16_model);
    nne_free(g_buf);
    return nne_test_summary();
}
