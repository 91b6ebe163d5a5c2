/* Reference kernels (src/ops/) against PyTorch golden outputs.
 *
 * tests/golden/ops/index.txt lists the case files written by scripts/gen_golden_ops.py;
 * each holds an op name, its inputs and parameters in nnedge layouts, and PyTorch's output
 * "y". For each op family the kernel runs into a NaN-filled buffer of exactly y's size
 * (so unwritten outputs fail the comparison and ASan catches overruns) and must satisfy
 *     |got - y| <= atol + rtol * |y|
 * with the tolerances of the table below (justified in docs/ops.md). Element-wise kernels
 * that allow aliasing are also run in place. The final table prints the largest errors
 * seen per op. */
#include <string.h>

#include "golden.h"
#include "nnedge/ops.h"
#include "testutil.h"

/* A case runner reads its inputs from g, runs the kernel into y (y_count elements) and
 * returns false (after printing why) if the case file is malformed. */
typedef bool (*nne_case_fn)(const nne_golden *g, float *y, size_t y_count, bool in_place);

#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  malformed case (%s:%d): %s\n", __FILE__, __LINE__, #cond);          \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static const nne_golden_array *arr(const nne_golden *g, const char *name, int ndim) {
    const nne_golden_array *a = nne_golden_find(g, name);
    if (!a || a->dtype != NNE_GOLDEN_F32 || (ndim >= 0 && a->ndim != ndim)) return NULL;
    return a;
}

static const nne_golden_array *out_arr(const nne_golden *g) { return arr(g, "y", -1); }

/* ---- conv2d / conv_transpose2d ---------------------------------------------------- */

/* Fill the geometry from x [n][ih][iw][ic], w [oc][kh][kw][icg] and the parameters. */
static bool read_conv_geom(const nne_golden *g, nne_conv2d_geom *geo) {
    const nne_golden_array *x = arr(g, "x", 4), *w = arr(g, "w", 4), *y = arr(g, "y", 4);
    NEED(x && w && y);
    memset(geo, 0, sizeof *geo);
    geo->n = x->dims[0], geo->ih = x->dims[1], geo->iw = x->dims[2], geo->ic = x->dims[3];
    geo->oc = w->dims[0], geo->kh = w->dims[1], geo->kw = w->dims[2];
    geo->stride_h = nne_golden_i32_at(g, "stride", 0, 1);
    geo->stride_w = nne_golden_i32_at(g, "stride", 1, 1);
    geo->dil_h = nne_golden_i32_at(g, "dilation", 0, 1);
    geo->dil_w = nne_golden_i32_at(g, "dilation", 1, 1);
    geo->pad_t = nne_golden_i32_at(g, "pad", 0, 0);
    geo->pad_l = nne_golden_i32_at(g, "pad", 1, 0);
    geo->pad_b = nne_golden_i32_at(g, "pad", 2, 0);
    geo->pad_r = nne_golden_i32_at(g, "pad", 3, 0);
    geo->out_pad_h = nne_golden_i32_at(g, "out_pad", 0, 0);
    geo->out_pad_w = nne_golden_i32_at(g, "out_pad", 1, 0);
    geo->groups = nne_golden_i32_at(g, "groups", 0, 1);
    NEED(geo->groups > 0 && geo->ic % geo->groups == 0 && geo->oc % geo->groups == 0);
    NEED(w->dims[3] == geo->ic / geo->groups);
    const nne_golden_array *b = nne_golden_find(g, "b");
    NEED(!b || (b->dtype == NNE_GOLDEN_F32 && b->count == (size_t)geo->oc));
    return true;
}

static bool run_conv2d(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    nne_conv2d_geom geo;
    if (!read_conv_geom(g, &geo)) return false;
    geo.oh = nne_conv_out_dim(geo.ih, geo.kh, geo.stride_h, geo.dil_h, geo.pad_t, geo.pad_b);
    geo.ow = nne_conv_out_dim(geo.iw, geo.kw, geo.stride_w, geo.dil_w, geo.pad_l, geo.pad_r);
    /* The size helper must agree with PyTorch's output shape. */
    const nne_golden_array *ya = out_arr(g);
    NEED(ya->dims[0] == geo.n && ya->dims[1] == geo.oh && ya->dims[2] == geo.ow &&
         ya->dims[3] == geo.oc);
    nne_conv2d_f32__ref(&geo, nne_golden_f32(g, "x", NULL), nne_golden_f32(g, "w", NULL),
                        nne_golden_f32(g, "b", NULL), y);
    return true;
}

static bool run_conv_transpose2d(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    nne_conv2d_geom geo;
    if (!read_conv_geom(g, &geo)) return false;
    geo.oh = nne_conv_transpose_out_dim(geo.ih, geo.kh, geo.stride_h, geo.dil_h, geo.pad_t,
                                        geo.pad_b, geo.out_pad_h);
    geo.ow = nne_conv_transpose_out_dim(geo.iw, geo.kw, geo.stride_w, geo.dil_w, geo.pad_l,
                                        geo.pad_r, geo.out_pad_w);
    const nne_golden_array *ya = out_arr(g);
    NEED(ya->dims[0] == geo.n && ya->dims[1] == geo.oh && ya->dims[2] == geo.ow &&
         ya->dims[3] == geo.oc);
    nne_conv_transpose2d_f32__ref(&geo, nne_golden_f32(g, "x", NULL), nne_golden_f32(g, "w", NULL),
                                  nne_golden_f32(g, "b", NULL), y);
    return true;
}

static bool run_dense(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    const nne_golden_array *x = arr(g, "x", 2), *w = arr(g, "w", 2), *b = arr(g, "b", 1);
    NEED(x && w && x->dims[1] == w->dims[1]);
    NEED(y_count == (size_t)x->dims[0] * w->dims[0]);
    NEED(!b || b->count == (size_t)w->dims[0]);
    nne_dense_f32__ref(x->dims[0], x->dims[1], w->dims[0], x->data, w->data, b ? b->data : NULL, y);
    return true;
}

/* ---- pooling ---------------------------------------------------------------------- */

static bool run_pool(const nne_golden *g, float *y, nne_pool_kind kind) {
    const nne_golden_array *x = arr(g, "x", 4), *ya = arr(g, "y", 4);
    NEED(x && ya);
    nne_pool2d_geom p = {
        .n = x->dims[0],
        .ih = x->dims[1],
        .iw = x->dims[2],
        .c = x->dims[3],
        .kh = nne_golden_i32_at(g, "kernel", 0, 0),
        .kw = nne_golden_i32_at(g, "kernel", 1, 0),
        .stride_h = nne_golden_i32_at(g, "stride", 0, 0),
        .stride_w = nne_golden_i32_at(g, "stride", 1, 0),
        .pad_t = nne_golden_i32_at(g, "pad", 0, 0),
        .pad_l = nne_golden_i32_at(g, "pad", 1, 0),
        .pad_b = nne_golden_i32_at(g, "pad", 2, 0),
        .pad_r = nne_golden_i32_at(g, "pad", 3, 0),
        .count_include_pad = nne_golden_i32_at(g, "count_include_pad", 0, 1),
    };
    p.oh = nne_conv_out_dim(p.ih, p.kh, p.stride_h, 1, p.pad_t, p.pad_b);
    p.ow = nne_conv_out_dim(p.iw, p.kw, p.stride_w, 1, p.pad_l, p.pad_r);
    NEED(ya->dims[0] == p.n && ya->dims[1] == p.oh && ya->dims[2] == p.ow && ya->dims[3] == p.c);
    nne_pool2d_f32__ref(&p, kind, x->data, y);
    return true;
}

static bool run_maxpool2d(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    return run_pool(g, y, NNE_POOL_MAX);
}

static bool run_avgpool2d(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    return run_pool(g, y, NNE_POOL_AVG);
}

static bool run_global_avgpool(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    const nne_golden_array *x = arr(g, "x", 4);
    NEED(x && y_count == (size_t)x->dims[0] * x->dims[3]);
    nne_global_avgpool_f32__ref(x->dims[0], x->dims[1], x->dims[2], x->dims[3], x->data, y);
    return true;
}

/* ---- element-wise ----------------------------------------------------------------- */

/* The input of an element-wise op: x itself, or a copy of it already in y (in place). */
static const float *ew_input(const nne_golden *g, const char *name, float *y, size_t y_count,
                             bool in_place) {
    const nne_golden_array *x = arr(g, name, -1);
    if (!x || x->count != y_count) return NULL;
    if (!in_place) return x->data;
    memcpy(y, x->data, y_count * sizeof *y);
    return y;
}

#define EW_RUNNER(opname, call)                                                                    \
    static bool run_##opname(const nne_golden *g, float *y, size_t y_count, bool in_place) {       \
        const float *x = ew_input(g, "x", y, y_count, in_place);                                   \
        NEED(x);                                                                                   \
        call;                                                                                      \
        return true;                                                                               \
    }
EW_RUNNER(relu, nne_relu_f32__ref(y_count, x, y))
EW_RUNNER(relu6, nne_relu6_f32__ref(y_count, x, y))
EW_RUNNER(sigmoid, nne_sigmoid_f32__ref(y_count, x, y))
EW_RUNNER(tanh, nne_tanh_f32__ref(y_count, x, y))
EW_RUNNER(hardswish, nne_hardswish_f32__ref(y_count, x, y))

static bool run_leaky_relu(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    size_t n = 0;
    const float *alpha = nne_golden_f32(g, "alpha", &n);
    const float *x = ew_input(g, "x", y, y_count, in_place);
    NEED(x && alpha && n == 1);
    nne_leaky_relu_f32__ref(y_count, alpha[0], x, y);
    return true;
}

static bool run_prelu(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    const nne_golden_array *xa = arr(g, "x", 4), *s = arr(g, "slope", 1);
    const float *x = ew_input(g, "x", y, y_count, in_place);
    NEED(xa && s && x);
    const int32_t c = xa->dims[3];
    nne_prelu_f32__ref(y_count / (size_t)c, c, x, s->data, (int32_t)s->count, y);
    return true;
}

static bool run_gdn_common(const nne_golden *g, float *y, size_t y_count, bool inverse) {
    const nne_golden_array *x = arr(g, "x", 4), *beta = arr(g, "beta", 1),
                           *gamma = arr(g, "gamma", 2);
    NEED(x && beta && gamma && x->count == y_count);
    const int32_t c = x->dims[3];
    NEED(beta->count == (size_t)c && gamma->dims[0] == c && gamma->dims[1] == c);
    nne_gdn_f32__ref(y_count / (size_t)c, c, x->data, beta->data, gamma->data, inverse, y);
    return true;
}

static bool run_gdn(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    return run_gdn_common(g, y, y_count, false);
}

static bool run_igdn(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    return run_gdn_common(g, y, y_count, true);
}

static bool run_batchnorm(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    const nne_golden_array *xa = arr(g, "x", 4);
    NEED(xa);
    const int32_t c = xa->dims[3];
    size_t n[5] = {0}, ne = 0;
    const float *mean = nne_golden_f32(g, "mean", &n[0]), *var = nne_golden_f32(g, "var", &n[1]);
    const float *gam = nne_golden_f32(g, "gamma", &n[2]), *bet = nne_golden_f32(g, "beta", &n[3]);
    const float *eps = nne_golden_f32(g, "eps", &ne);
    const float *x = ew_input(g, "x", y, y_count, in_place);
    NEED(x && mean && var && gam && bet && eps && ne == 1);
    for (int i = 0; i < 4; i++) NEED(n[i] == (size_t)c);
    nne_batchnorm_f32__ref(y_count / (size_t)c, c, x, mean, var, gam, bet, eps[0], y);
    return true;
}

static bool run_add(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    const nne_golden_array *b = arr(g, "b", -1);
    const float *a = ew_input(g, "a", y, y_count, in_place); /* in place: y == a */
    NEED(a && b && b->count == y_count);
    nne_add_f32__ref(y_count, a, b->data, y);
    return true;
}

static bool run_softmax(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    const nne_golden_array *xa = arr(g, "x", -1);
    const float *x = ew_input(g, "x", y, y_count, in_place);
    NEED(xa && x && xa->ndim >= 1);
    const int32_t cols = xa->dims[xa->ndim - 1];
    NEED(cols > 0);
    nne_softmax_f32__ref(y_count / (size_t)cols, cols, x, y);
    return true;
}

/* ---- layout ----------------------------------------------------------------------- */

static bool run_concat(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    enum { MAX_IN = 8 };
    const int32_t n_in = nne_golden_i32_at(g, "n_inputs", 0, 0);
    const int32_t axis = nne_golden_i32_at(g, "axis", 0, -1);
    const nne_golden_array *ya = out_arr(g);
    NEED(n_in > 0 && n_in <= MAX_IN && axis >= 0 && axis < ya->ndim);
    const float *xs[MAX_IN];
    size_t inner[MAX_IN], outer = 1, total = 0;
    for (int32_t d = 0; d < axis; d++) outer *= (size_t)ya->dims[d];
    for (int32_t k = 0; k < n_in; k++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", (int)k);
        const nne_golden_array *x = arr(g, name, ya->ndim);
        NEED(x);
        xs[k] = x->data;
        inner[k] = x->count / outer; /* dims[axis:] of input k */
        NEED(inner[k] * outer == x->count);
        total += x->count;
    }
    NEED(total == y_count);
    nne_concat_f32__ref(outer, n_in, xs, inner, y);
    return true;
}

static bool run_upsample(const nne_golden *g, float *y, size_t y_count, bool in_place) {
    const nne_golden_array *x = arr(g, "x", 4), *ya = arr(g, "y", 4);
    NEED(x && ya);
    const int32_t sh = nne_golden_i32_at(g, "scale", 0, 0),
                  sw = nne_golden_i32_at(g, "scale", 1, 0);
    const int32_t mode = nne_golden_i32_at(g, "mode", 0, -1);
    NEED(sh > 0 && sw > 0 && (mode == 0 || mode == 1));
    NEED(ya->dims[1] == x->dims[1] * sh && ya->dims[2] == x->dims[2] * sw);
    nne_upsample_f32__ref(x->dims[0], x->dims[1], x->dims[2], x->dims[3], sh, sw,
                          mode ? NNE_UPSAMPLE_BILINEAR : NNE_UPSAMPLE_NEAREST, x->data, y);
    return true;
}

/* ---- driver ----------------------------------------------------------------------- */

typedef struct {
    const char *op;
    nne_case_fn run;
    bool in_place;     /* the kernel allows y == x: run that way too */
    double atol, rtol; /* see docs/ops.md, "Tolerances" */
    /* results */
    int cases;
    double max_abs, max_rel;
} nne_op_entry;

/* Tolerances. Inputs are O(1) (weights scaled by 1/sqrt(fan_in)), so an absolute term
 * dominates; see docs/ops.md for the error analysis. */
static nne_op_entry ops[] = {
    {"conv2d", run_conv2d, false, 1e-5, 1e-5, 0, 0, 0},
    {"conv_transpose2d", run_conv_transpose2d, false, 1e-5, 1e-5, 0, 0, 0},
    {"dense", run_dense, false, 1e-5, 1e-5, 0, 0, 0},
    {"maxpool2d", run_maxpool2d, false, 0, 0, 0, 0, 0},
    {"avgpool2d", run_avgpool2d, false, 1e-6, 1e-6, 0, 0, 0},
    {"global_avgpool", run_global_avgpool, false, 1e-6, 1e-6, 0, 0, 0},
    {"relu", run_relu, true, 0, 0, 0, 0, 0},
    {"relu6", run_relu6, true, 0, 0, 0, 0, 0},
    {"leaky_relu", run_leaky_relu, true, 0, 0, 0, 0, 0},
    {"prelu", run_prelu, true, 0, 0, 0, 0, 0},
    {"sigmoid", run_sigmoid, true, 1e-6, 1e-6, 0, 0, 0},
    {"tanh", run_tanh, true, 1e-6, 1e-6, 0, 0, 0},
    {"hardswish", run_hardswish, true, 1e-6, 1e-6, 0, 0, 0},
    {"gdn", run_gdn, false, 1e-6, 1e-5, 0, 0, 0},
    {"igdn", run_igdn, false, 1e-6, 1e-5, 0, 0, 0},
    {"batchnorm", run_batchnorm, true, 1e-6, 1e-5, 0, 0, 0},
    {"add", run_add, true, 0, 0, 0, 0, 0},
    {"concat", run_concat, false, 0, 0, 0, 0, 0},
    {"upsample", run_upsample, false, 1e-6, 1e-6, 0, 0, 0},
    {"softmax", run_softmax, true, 1e-7, 1e-5, 0, 0, 0},
};
#define N_OPS (sizeof ops / sizeof ops[0])

static nne_op_entry *find_op(const char *op) {
    for (size_t i = 0; i < N_OPS; i++)
        if (strcmp(ops[i].op, op) == 0) return &ops[i];
    return NULL;
}

/* Run one case (out of place, and in place where allowed) and compare. */
static void check_case(const char *file, const nne_golden *g, nne_op_entry *e) {
    const char *desc = nne_golden_str(g, "desc", file);
    const nne_golden_array *ya = out_arr(g);
    CHECK_MSG(ya != NULL, "%s: no f32 array 'y'", file);
    if (!ya) return;
    for (int pass = 0; pass < (e->in_place ? 2 : 1); pass++) {
        float *y = nne_malloc(ya->count * sizeof *y);
        CHECK(y != NULL);
        if (!y) return;
        for (size_t i = 0; i < ya->count; i++) y[i] = NAN; /* catch unwritten outputs */
        const bool ran = e->run(g, y, ya->count, pass == 1);
        CHECK_MSG(ran, "%s (%s): malformed case", file, desc);
        if (ran) {
            nne_golden_cmp r;
            const float *ref = ya->data;
            const bool ok = nne_golden_compare(y, ref, ya->count, e->atol, e->rtol, &r);
            CHECK_MSG(ok,
                      "%s (%s)%s: %zu of %zu outside |d| <= %g + %g|ref|; worst [%zu] "
                      "got %.9g want %.9g; max abs %.3g",
                      file, desc, pass ? " in place" : "", r.n_bad, ya->count, e->atol, e->rtol,
                      r.worst, (double)y[r.worst], (double)ref[r.worst], r.max_abs);
            if (r.max_abs > e->max_abs) e->max_abs = r.max_abs;
            if (r.max_rel > e->max_rel) e->max_rel = r.max_rel;
        }
        nne_free(y);
    }
}

int main(void) {
    const char *dir = nne_test_path(nne_test_source_dir(), "tests/golden/ops");
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", dir);
    unsigned char *index = nne_test_read_file(nne_test_path(dirbuf, "index.txt"), NULL);

    nne_test_begin("golden_index");
    CHECK_MSG(index != NULL, "cannot read %s/index.txt (run scripts/gen_golden_ops.py)", dirbuf);
    nne_test_end();
    if (!index) return nne_test_summary();

    /* One pass over the index: each case is checked under a test named after its op. */
    int total = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)index, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0') continue;
        const char *path = nne_test_path(dirbuf, line);
        nne_golden g;
        nne_test_begin(line);
        nne_status st = nne_golden_load(path, &g);
        CHECK_OK(st);
        if (st == NNE_OK) {
            const char *op = nne_golden_str(&g, "op", "");
            nne_op_entry *e = find_op(op);
            CHECK_MSG(e != NULL, "%s: unknown op '%s'", line, op);
            if (e) {
                check_case(line, &g, e);
                e->cases++;
                total++;
            }
            nne_golden_free(&g);
        }
        nne_test_end();
    }
    nne_free(index);

    nne_test_begin("golden_coverage");
    for (size_t i = 0; i < N_OPS; i++)
        CHECK_MSG(ops[i].cases > 0, "no golden case for op '%s'", ops[i].op);
    nne_test_end();

    printf("%d golden cases\n%-18s %5s %10s %10s %9s %9s\n", total, "op", "cases", "max_abs",
           "max_rel", "atol", "rtol");
    for (size_t i = 0; i < N_OPS; i++)
        printf("%-18s %5d %10.3g %10.3g %9.3g %9.3g\n", ops[i].op, ops[i].cases, ops[i].max_abs,
               ops[i].max_rel, ops[i].atol, ops[i].rtol);
    return nne_test_summary();
}
