/* nnedge info: per-layer description of a model (shapes, parameters, MACs, memory). */
#include <string.h>

#include "cli.h"
#include "nnedge/graph.h"
#include "nnedge/json.h"
#include "nnedge/lcodec.h"
#include "nnedge/models.h"
#include "nnedge/prune.h"

static const char *k_cmd = "info";

static void help(void) {
    printf("usage: nnedge info MODEL [--json]\n"
           "       nnedge info --list\n\n"
           "Describe a model layer by layer: name, op, input and output shapes, parameters,\n"
           "MACs, ops (2 x MACs, in MOP = 1e6 ops), weight bytes and activation bytes\n"
           "(inputs read + output written), with totals. MODEL is a built-in model name or a\n"
           "model file (.nne). A built-in model made of parts (cae-seed: encoder, decoder) is\n"
           "shown part by part. For a learned codec, a summary line (precision, the weight\n"
           "bytes it runs with) and, for an int8 codec, its attached int8 g_a and g_s (at\n"
           "their calibration size; not counted in the total). With zero weights (magnitude\n"
           "pruning) a 'sparse' line gives the nonzero parameters and the MACs skipping them\n"
           "(JSON: nonzero_params, sparse_macs; for a codec also sparse_weight_bytes and\n"
           "ops per pixel). Each table is followed by the\n"
           "graph's metadata: its provenance (model, train.*, quant.*; JSON: \"meta\").\n\n"
           "options:\n"
           "  --json     print JSON instead of a table\n"
           "  --list     list the built-in models\n"
           "  -h, --help this help\n");
}

typedef struct totals {
    int64_t macs, params, weight_bytes, act_bytes;
    int64_t sparse_macs, nonzero_params; /* nne_prune_cost: zero weights skipped */
} totals;

static void add_totals(totals *sum, const totals *t) {
    sum->macs += t->macs;
    sum->params += t->params;
    sum->weight_bytes += t->weight_bytes;
    sum->act_bytes += t->act_bytes;
    sum->sparse_macs += t->sparse_macs;
    sum->nonzero_params += t->nonzero_params;
}

/* Node i's costs, dense and sparse, added to t. */
static void node_costs(const nne_graph *g, int32_t i, nne_node_cost *c, nne_prune_cost *pc,
                       totals *t) {
    nne_node_cost_get(g, i, c);
    if (nne_prune_cost_get(g, i, pc)) {
        pc->sparse_macs = c->macs;
        pc->nonzero_params = c->params;
    }
    const totals n = {c->macs, c->params, c->weight_bytes, c->in_bytes + c->out_bytes,
                      pc->sparse_macs, pc->nonzero_params};
    add_totals(t, &n);
}

static void print_table(const nne_graph *g, totals *sum) {
    char a[64], b[64], c1[32], c2[32];
    printf("model %s\n", g->name);
    printf("%3s  %-26s %-17s %-20s %-20s %10s %16s %12s %12s %12s\n", "ID", "Name", "Op", "Input",
           "Output", "Params", "MACs", "MOP", "Weights(B)", "Acts(B)");
    totals t = {0};
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        nne_node_cost c;
        nne_prune_cost pc;
        node_costs(g, i, &c, &pc, &t);
        nne_shape_str(&g->tensors[n->inputs[0]].shape, a, sizeof a);
        nne_shape_str(&g->tensors[n->output].shape, b, sizeof b);
        printf("%3d  %-26s %-17s %-20s %-20s %10lld %16s %12.3f %12lld %12lld\n", (int)i, n->name,
               nne_op_name(n->op), a, b, (long long)c.params, cli_thousands(c.macs, c1, sizeof c1),
               2.0 * (double)c.macs / 1e6, (long long)c.weight_bytes,
               (long long)(c.in_bytes + c.out_bytes));
    }
    printf("%3s  %-26s %-17s %-20s %-20s %10lld %16s %12.3f %12lld %12lld\n", "", "total", "", "",
           "", (long long)t.params, cli_thousands(t.macs, c2, sizeof c2),
           2.0 * (double)t.macs / 1e6, (long long)t.weight_bytes, (long long)t.act_bytes);
    if (t.sparse_macs != t.macs) /* weights with zeros (zero biases alone do not count) */
        printf("%3s  %-26s %-17s %-20s %-20s %10lld %16s %12.3f  (zero weights skipped)\n", "",
               "sparse", "", "", "", (long long)t.nonzero_params,
               cli_thousands(t.sparse_macs, c2, sizeof c2), 2.0 * (double)t.sparse_macs / 1e6);
    add_totals(sum, &t);
}

static void json_totals(nne_json *j, const char *key, const totals *t) {
    nne_json_object_begin(j, key);
    nne_json_int(j, "params", t->params);
    nne_json_int(j, "macs", t->macs);
    nne_json_int(j, "ops", 2 * t->macs);
    nne_json_number(j, "mop", 2.0 * (double)t->macs / 1e6, 6);
    nne_json_int(j, "weight_bytes", t->weight_bytes);
    nne_json_int(j, "activation_bytes", t->act_bytes);
    nne_json_int(j, "nonzero_params", t->nonzero_params);
    nne_json_int(j, "sparse_macs", t->sparse_macs);
    nne_json_object_end(j);
}

static void json_shape(nne_json *j, const char *key, const nne_shape *s) {
    nne_json_array_begin(j, key);
    for (int d = 0; d < s->ndim; d++) nne_json_int(j, NULL, s->dim[d]);
    nne_json_array_end(j);
}

/* The model's metadata (provenance: train.*, quant.*, ...), in file order. */
static void print_meta(const nne_graph *g) {
    if (!g->n_meta) return;
    printf("metadata:\n");
    for (int32_t i = 0; i < g->n_meta; i++)
        printf("  %s: %s\n", g->meta[i].key, g->meta[i].value);
}

static void json_meta(nne_json *j, const nne_graph *g) {
    nne_json_object_begin(j, "meta");
    for (int32_t i = 0; i < g->n_meta; i++) nne_json_string(j, g->meta[i].key, g->meta[i].value);
    nne_json_object_end(j);
}

static void print_json_part(nne_json *j, const nne_graph *g, totals *sum) {
    totals t = {0};
    nne_json_object_begin(j, NULL);
    nne_json_string(j, "name", g->name);
    nne_json_array_begin(j, "layers");
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const nne_node *n = &g->nodes[i];
        nne_node_cost c;
        nne_prune_cost pc;
        node_costs(g, i, &c, &pc, &t);
        nne_json_object_begin(j, NULL);
        nne_json_int(j, "id", i);
        nne_json_string(j, "name", n->name);
        nne_json_string(j, "op", nne_op_name(n->op));
        json_shape(j, "input_shape", &g->tensors[n->inputs[0]].shape);
        json_shape(j, "output_shape", &g->tensors[n->output].shape);
        nne_json_int(j, "params", c.params);
        nne_json_int(j, "macs", c.macs);
        nne_json_int(j, "ops", 2 * c.macs);
        nne_json_number(j, "mop", 2.0 * (double)c.macs / 1e6, 6);
        nne_json_int(j, "weight_bytes", c.weight_bytes);
        nne_json_int(j, "activation_bytes", c.in_bytes + c.out_bytes);
        nne_json_int(j, "nonzero_params", pc.nonzero_params);
        nne_json_int(j, "sparse_macs", pc.sparse_macs);
        nne_json_object_end(j);
    }
    nne_json_array_end(j);
    json_totals(j, "total", &t);
    json_meta(j, g);
    nne_json_object_end(j);
    add_totals(sum, &t);
}

/* Pixels of the first input [B][H][W][C] (B x H x W; 0 when it has another rank). */
static double input_pixels(const nne_graph *g) {
    if (g->n_inputs < 1) return 0.0;
    const nne_shape *s = &g->tensors[g->inputs[0]].shape;
    return s->ndim == 4 ? (double)s->dim[0] * (double)s->dim[1] * (double)s->dim[2] : 0.0;
}

/* A learned codec's summary (nne_lcodec_get_info); false when `g` is none. */
static bool codec_info(const nne_graph *g, nne_lcodec **c, nne_lcodec_info *ci) {
    const char *id = nne_graph_get_meta(g, "model");
    nne_rdmodel_kind k;
    if (!id || nne_rdmodel_kind_from_name(id, &k)) return false;
    if (nne_lcodec_create(g, 0, c)) return false;
    nne_lcodec_get_info(*c, ci);
    return true;
}

int nne_cmd_info(int argc, char **argv) {
    cli_common co;
    bool list = false;
    const cli_option opts[] = {{"list", 0, false, NULL, &list}, {NULL, 0, false, NULL, NULL}};
    const char *pos[1];
    int n_pos;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    if (list) {
        for (const char *const *n = nne_builtin_model_names(); *n; n++) printf("%s\n", *n);
        return NNE_EXIT_OK;
    }
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one MODEL argument");
    if (co.output) return cli_usage_error(k_cmd, "-o is not used by this command");
    const char *spec = pos[0];
    const char *const *parts = nne_builtin_model_parts(spec);
    const char *single[2] = {spec, NULL};
    if (!parts) parts = single;
    nne_graph *gs[8] = {NULL};
    nne_lcodec *codec = NULL; /* a learned codec's summary */
    int np = 0;
    int rc = NNE_EXIT_OK;
    for (; parts[np] && np < 8; np++) {
        nne_status s = cli_load_model(parts[np], &gs[np]);
        if (!s) s = nne_graph_infer(gs[np]);
        if (s) {
            rc = cli_fail(k_cmd, s);
            goto done;
        }
    }
    totals sum = {0};
    nne_lcodec_info ci;
    const bool is_codec = np == 1 && codec_info(gs[0], &codec, &ci);
    char codec_err[256] = "";
    if (np == 1 && !is_codec && gs[0]->n_attached)
        snprintf(codec_err, sizeof codec_err, "%s", nne_last_error());
    if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "model", spec);
        nne_json_array_begin(&j, "parts");
        for (int i = 0; i < np; i++) print_json_part(&j, gs[i], &sum);
        nne_json_array_end(&j);
        json_totals(&j, "total", &sum);
        if (np == 1 && gs[0]->n_attached) {
            totals unused = {0};
            nne_json_array_begin(&j, "attached");
            for (int32_t i = 0; i < gs[0]->n_attached; i++)
                print_json_part(&j, gs[0]->attached[i], &unused);
            nne_json_array_end(&j);
        }
        if (is_codec) {
            nne_json_object_begin(&j, "codec");
            nne_json_string(&j, "kind", ci.model_id);
            nne_json_int(&j, "n", ci.n);
            nne_json_int(&j, "m", ci.m);
            nne_json_string(&j, "precision", ci.precision);
            if (ci.scheme) nne_json_string(&j, "scheme", ci.scheme);
            nne_json_int(&j, "weight_bytes", ci.weight_bytes);
            nne_json_int(&j, "sparse_weight_bytes", ci.sparse_weight_bytes);
            /* the training graph's g_a, h_a, h_s and g_s (each once) per input pixel */
            const double px = input_pixels(gs[0]);
            nne_json_number(&j, "ops_per_pixel", px > 0 ? 2.0 * (double)sum.macs / px : 0.0, 3);
            nne_json_number(&j, "sparse_ops_per_pixel",
                            px > 0 ? 2.0 * (double)sum.sparse_macs / px : 0.0, 3);
            nne_json_object_end(&j);
        }
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else {
        for (int i = 0; i < np; i++) {
            if (i) printf("\n");
            print_table(gs[i], &sum);
            print_meta(gs[i]);
        }
        if (np > 1) {
            char c[32];
            printf("\n%s total: %lld params, %s MACs, %.3f MOP, %lld weight bytes\n", spec,
                   (long long)sum.params, cli_thousands(sum.macs, c, sizeof c),
                   2.0 * (double)sum.macs / 1e6, (long long)sum.weight_bytes);
        }
        for (int32_t i = 0; np == 1 && i < gs[0]->n_attached; i++) {
            totals unused = {0};
            printf("\nattached: ");
            print_table(gs[0]->attached[i], &unused);
            print_meta(gs[0]->attached[i]);
        }
        if (is_codec && ci.scheme)
            printf("\nlearned codec %s N=%d M=%d: int8 (g_a, g_s %s on cpu-s8; h_a, h_s and the "
                   "entropy model f32), %lld weight bytes as run\n",
                   ci.model_id, (int)ci.n, (int)ci.m, ci.scheme, (long long)ci.weight_bytes);
        else if (is_codec)
            printf("\nlearned codec %s N=%d M=%d: f32, %lld weight bytes\n", ci.model_id, (int)ci.n,
                   (int)ci.m, (long long)ci.weight_bytes);
        if (is_codec && ci.sparse_weight_bytes != ci.weight_bytes)
            printf("sparse: %lld weight bytes (nonzero values + 1-bit presence maps)\n",
                   (long long)ci.sparse_weight_bytes);
    }
    if (codec_err[0]) {
        cli_error(k_cmd, "%s: not a valid int8 codec: %s", spec, codec_err);
        rc = NNE_EXIT_RUNTIME;
    }
done:
    nne_lcodec_free(codec);
    for (int i = 0; i < np; i++) nne_graph_free(gs[i]);
    return rc;
}
