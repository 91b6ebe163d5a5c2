/* nnedge prune MODEL --method magnitude|channel --sparsity S -o OUT.nne: one-shot pruning with
 * a per-layer report of MACs and parameters before and after (docs/pruning.md). Channel
 * pruning shrinks the layers (prune.h); magnitude pruning zeroes the smallest weights of each
 * convolution (train.h masks). Fine-tuning goes through `nnedge train --init OUT.nne`, with
 * --prune-schedule for gradual magnitude pruning. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/prune.h"
#include "nnedge/train.h"

static const char *const k_cmd = "prune";

enum { MAX_KEEP = 64 };

static void help(void) {
    printf(
        "usage: nnedge prune MODEL --method magnitude|channel --sparsity S -o OUT.nne "
        "[options]\n\n"
        "Prune MODEL (a model file or built-in name, f32) and print its MACs and parameters\n"
        "per layer before and after (ops = 2 x MACs). Fine-tune the result with\n"
        "'nnedge train --init OUT.nne' (docs/pruning.md).\n\n"
        "options:\n"
        "  --method M          channel: remove the lowest-L1 output channels (filters) of\n"
        "                      every prunable convolution and the matching inputs of their\n"
        "                      readers: a smaller dense model;\n"
        "                      magnitude: zero the smallest-magnitude weights of every\n"
        "                      convolution (same shapes; sparse MACs reported)\n"
        "  --sparsity S        fraction removed, in [0, 1): of the channels (channel; at most\n"
        "                      0.875 with --calib) or of each convolution's weights (magnitude)\n"
        "  --calib DIR         channel: measure each layer's sensitivity (loss increase when\n"
        "                      it alone is pruned) on crops of DIR and prune sensitive layers\n"
        "                      less; never Kodak (refused)\n"
        "  --max-images N      calibration crops (default 8)\n"
        "  --crop N            cae-seed: calibration crop side (default 128)\n"
        "  --seed N            crop positions (default 1)\n"
        "  --keep T1,T2,...    tensors whose channels stay (default: 'latent' when the model\n"
        "                      has one, so a codec's latent format does not change)\n"
        "  --prune-latent      cae-seed: prune the latent channels too (no default keep)\n"
        "  -o FILE             output model file (.nne), written atomically\n"
        "  --json              the report as JSON on stdout\n"
        "  -q                  no report\n");
}

/* ---- report ------------------------------------------------------------------------------- */

typedef struct row {
    const char *name, *op;
    int64_t ic[2], oc[2]; /* before, after; -1 if not a convolution */
    nne_prune_cost c[2];
} row;

static void conv_channels(const nne_graph *g, int32_t i, int64_t *ic, int64_t *oc) {
    const nne_node *n = &g->nodes[i];
    *ic = *oc = -1;
    if (n->op == NNE_OP_CONV2D || n->op == NNE_OP_CONV_TRANSPOSE2D) {
        *ic = n->conv_geom.ic;
        *oc = n->conv_geom.oc;
    }
}

/* One row per node with MACs or parameters, matched by name in the pruned graph. */
static nne_status make_rows(const nne_graph *a, const nne_graph *b, row *rows, int32_t *n_rows) {
    *n_rows = 0;
    for (int32_t i = 0; i < a->n_nodes; i++) {
        row r;
        memset(&r, 0, sizeof r);
        nne_status st = nne_prune_cost_get(a, i, &r.c[0]);
        if (st) return st;
        if (!r.c[0].macs && !r.c[0].params) continue;
        const int32_t j = nne_graph_find_node(b, a->nodes[i].name);
        if (j < 0)
            return nne_error(NNE_ERR_INTERNAL, "pruned graph lacks node '%s'", a->nodes[i].name);
        if ((st = nne_prune_cost_get(b, j, &r.c[1]))) return st;
        r.name = a->nodes[i].name;
        r.op = nne_op_name(a->nodes[i].op);
        conv_channels(a, i, &r.ic[0], &r.oc[0]);
        conv_channels(b, j, &r.ic[1], &r.oc[1]);
        rows[(*n_rows)++] = r;
    }
    return NNE_OK;
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

static void print_text(const row *rows, int32_t n, const nne_prune_cost *t, bool magnitude) {
    char b[4][32];
    printf("%-26s %-16s %-15s %15s %15s %9s %9s\n", "layer", "op", "channels", "MACs before",
           magnitude ? "sparse MACs" : "MACs after", "params", "after");
    for (int32_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        char ch[48] = "";
        if (r->ic[0] >= 0 && (magnitude || (r->ic[0] == r->ic[1] && r->oc[0] == r->oc[1])))
            snprintf(ch, sizeof ch, "%lld->%lld", (long long)r->ic[0], (long long)r->oc[0]);
        else if (r->ic[0] >= 0)
            snprintf(ch, sizeof ch, "%lld->%lld:%lld->%lld", (long long)r->ic[0],
                     (long long)r->oc[0], (long long)r->ic[1], (long long)r->oc[1]);
        printf(
            "%-26s %-16s %-15s %15s %15s %9s %9s\n", r->name, r->op, ch,
            cli_thousands(r->c[0].macs, b[0], sizeof b[0]),
            cli_thousands(magnitude ? r->c[1].sparse_macs : r->c[1].macs, b[1], sizeof b[1]),
            cli_thousands(r->c[0].params, b[2], sizeof b[2]),
            cli_thousands(magnitude ? r->c[1].nonzero_params : r->c[1].params, b[3], sizeof b[3]));
    }
    const int64_t m1 = magnitude ? t[1].sparse_macs : t[1].macs;
    const int64_t p1 = magnitude ? t[1].nonzero_params : t[1].params;
    printf("%-26s %-16s %-15s %15s %15s %9s %9s\n", "total", "", "",
           cli_thousands(t[0].macs, b[0], sizeof b[0]), cli_thousands(m1, b[1], sizeof b[1]),
           cli_thousands(t[0].params, b[2], sizeof b[2]), cli_thousands(p1, b[3], sizeof b[3]));
    printf("ops (2 x MACs): %.3f -> %.3f GOP (%.2fx fewer%s); parameters %.2fx fewer%s\n",
           2e-9 * (double)t[0].macs, 2e-9 * (double)m1, ratio(t[0].macs, m1),
           magnitude ? ", skipping zero weights" : "", ratio(t[0].params, p1),
           magnitude ? " (nonzero)" : "");
}

static void print_json(const char *model, const char *out, const char *method, double s,
                       const row *rows, int32_t n, const nne_prune_cost *t,
                       const nne_prune_plan *plan) {
    printf("{\"model\": \"%s\", \"output\": \"%s\", \"method\": \"%s\", \"sparsity\": %.6g, "
           "\"layers\": [",
           model, out, method, s);
    for (int32_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        printf("%s\n  {\"name\": \"%s\", \"op\": \"%s\"", i ? "," : "", r->name, r->op);
        if (r->ic[0] >= 0)
            printf(", \"in_channels\": [%lld, %lld], \"out_channels\": [%lld, %lld]",
                   (long long)r->ic[0], (long long)r->ic[1], (long long)r->oc[0],
                   (long long)r->oc[1]);
        printf(", \"macs\": [%lld, %lld], \"sparse_macs\": [%lld, %lld], \"params\": [%lld, "
               "%lld], \"nonzero_params\": [%lld, %lld]}",
               (long long)r->c[0].macs, (long long)r->c[1].macs, (long long)r->c[0].sparse_macs,
               (long long)r->c[1].sparse_macs, (long long)r->c[0].params, (long long)r->c[1].params,
               (long long)r->c[0].nonzero_params, (long long)r->c[1].nonzero_params);
    }
    printf("],\n \"total\": {\"macs\": [%lld, %lld], \"sparse_macs\": [%lld, %lld], \"params\": "
           "[%lld, %lld], \"nonzero_params\": [%lld, %lld]}",
           (long long)t[0].macs, (long long)t[1].macs, (long long)t[0].sparse_macs,
           (long long)t[1].sparse_macs, (long long)t[0].params, (long long)t[1].params,
           (long long)t[0].nonzero_params, (long long)t[1].nonzero_params);
    if (plan) {
        printf(",\n \"groups\": [");
        for (int32_t i = 0; i < plan->n_groups; i++) {
            const nne_prune_group *gr = &plan->groups[i];
            printf("%s\n  {\"name\": \"%s\", \"channels\": %d, \"kept\": %d, \"prunable\": %s",
                   i ? "," : "", gr->name, (int)gr->channels, (int)gr->kept,
                   gr->prunable ? "true" : "false");
            if (gr->why) printf(", \"why\": \"%s\"", gr->why);
            if (gr->prunable && !isnan(gr->dloss[1])) {
                printf(", \"dloss\": [");
                for (int k = 0; k < NNE_PRUNE_GRID; k++)
                    printf("%s%.6g", k ? ", " : "", gr->dloss[k]);
                printf("]");
            }
            printf("}");
        }
        printf("]");
        if (!isnan(plan->base_loss)) printf(", \"base_loss\": %.6g", plan->base_loss);
    }
    printf("}\n");
}

static void print_groups(const nne_prune_plan *p) {
    for (int32_t i = 0; i < p->n_groups; i++) {
        const nne_prune_group *gr = &p->groups[i];
        printf("  %-20s %3d -> %3d channels", gr->name, (int)gr->channels, (int)gr->kept);
        if (gr->n_producers > 1) printf(" (%d convolutions tied)", (int)gr->n_producers);
        if (gr->why) printf("  kept: %s", gr->why);
        if (gr->prunable && !isnan(gr->dloss[1])) {
            printf("  dloss at 1/8..7/8:");
            for (int k = 1; k < NNE_PRUNE_GRID; k++) printf(" %.2e", gr->dloss[k]);
        }
        putchar('\n');
    }
}

/* ---- the passes ----------------------------------------------------------------------------- */

static bool is_cae(const nne_graph *g) {
    const char *m = nne_graph_get_meta(g, "model");
    return m && !strcmp(m, "cae-seed") && g->n_inputs == 1 &&
           nne_graph_find_node(g, "conv2d_transpose_5") >= 0 &&
           nne_graph_find_node(g, "conv2d_1") >= 0;
}

static nne_status copy_meta(nne_graph *dst, const nne_graph *src) {
    nne_status st = NNE_OK;
    for (int32_t i = 0; i < src->n_meta && !st; i++)
        st = nne_graph_set_meta(dst, src->meta[i].key, src->meta[i].value);
    return st;
}

/* Zero the smallest weights of every convolution of g in place (the trainer's masks). */
static nne_status magnitude(nne_graph *g, double s) {
    nne_params *p = NULL;
    nne_status st = nne_params_create(g, &p);
    if (!st) st = nne_prune_masks_update(p, g, s);
    if (!st) nne_params_store(p, g);
    nne_params_free(p);
    return st;
}

int nne_cmd_prune(int argc, char **argv) {
    cli_common co;
    const char *method = NULL, *sparsity_s = NULL, *calib = NULL, *max_s = NULL, *crop_s = NULL,
               *seed_s = NULL, *keep_s = NULL;
    bool prune_latent = false;
    const cli_option opts[] = {
        {"method", 0, true, &method, NULL}, {"sparsity", 0, true, &sparsity_s, NULL},
        {"calib", 0, true, &calib, NULL},   {"max-images", 0, true, &max_s, NULL},
        {"crop", 0, true, &crop_s, NULL},   {"seed", 0, true, &seed_s, NULL},
        {"keep", 0, true, &keep_s, NULL},   {"prune-latent", 0, false, NULL, &prune_latent},
        {NULL, 0, false, NULL, NULL},
    };
    const char *pos[2];
    int n_pos = 0;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 2, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help();
        return NNE_EXIT_OK;
    }
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one MODEL");
    if (!method || (strcmp(method, "channel") && strcmp(method, "magnitude")))
        return cli_usage_error(k_cmd, "--method %s: expected channel or magnitude",
                               method ? method : "(missing)");
    const bool mag = !strcmp(method, "magnitude");
    double sparsity = 0.0;
    if (!sparsity_s || !cli_parse_f64(sparsity_s, 0.0, 0.999999, &sparsity))
        return cli_usage_error(k_cmd, "--sparsity %s: expected a number in [0, 1)",
                               sparsity_s ? sparsity_s : "(missing)");
    if (!co.output) return cli_usage_error(k_cmd, "missing -o OUT.nne");
    int64_t max_images = 8, crop = 128, seed = 1;
    if (max_s && !cli_parse_i64(max_s, 1, 100000, &max_images))
        return cli_usage_error(k_cmd, "--max-images '%s': expected 1..100000", max_s);
    if (crop_s && !cli_parse_i64(crop_s, 21, 4096, &crop))
        return cli_usage_error(k_cmd, "--crop '%s': expected 21..4096", crop_s);
    if (seed_s && !cli_parse_i64(seed_s, 0, INT64_MAX, &seed))
        return cli_usage_error(k_cmd, "--seed '%s': expected a non-negative integer", seed_s);
    if (mag && (calib || keep_s || prune_latent))
        return cli_usage_error(k_cmd,
                               "--calib, --keep and --prune-latent are for --method channel");
    if (calib && sparsity > 0.875)
        return cli_usage_error(k_cmd, "--sparsity %s: at most 0.875 with --calib", sparsity_s);
    if (keep_s && prune_latent)
        return cli_usage_error(k_cmd, "give --keep or --prune-latent, not both");
    char real[4096];
    int rc;
    if (calib && (rc = cli_check_data_dir(k_cmd, "--calib", calib, real, sizeof real))) return rc;
    if (cli_same_file(co.output, pos[0])) {
        cli_error(k_cmd, "%s: refusing to overwrite the input model", co.output);
        return NNE_EXIT_USAGE;
    }

    rc = NNE_EXIT_RUNTIME;
    nne_graph *model = NULL, *orig = NULL, *work = NULL, *pruned = NULL, *out = NULL;
    nne_prune_plan *plan = NULL;
    nne_dataset *ds = NULL;
    char keep_buf[1024];
    const char *keep[MAX_KEEP + 1] = {NULL};
    row *rows = NULL;
    nne_status st = cli_load_model(pos[0], &model);
    if (!st) st = nne_graph_infer(model);
    if (st) {
        cli_error(k_cmd, "%s: %s: %s", pos[0], nne_status_str(st), nne_last_error());
        goto done;
    }
    /* The report compares against an untouched copy. */
    {
        uint8_t *bytes = NULL;
        size_t nb = 0;
        st = nne_model_write_mem(model, &bytes, &nb);
        if (!st) st = nne_model_read_mem(bytes, nb, &orig);
        nne_free(bytes);
        if (st) goto fail;
    }
    if (mag) {
        if ((st = magnitude(model, sparsity))) goto fail;
        out = model;
        model = NULL;
    } else {
        /* Tensors to keep. */
        int32_t nk = 0;
        if (keep_s) {
            snprintf(keep_buf, sizeof keep_buf, "%s", keep_s);
            for (char *tok = strtok(keep_buf, ","); tok && nk < MAX_KEEP; tok = strtok(NULL, ","))
                keep[nk++] = tok;
        } else if (!prune_latent && nne_graph_find_tensor(model, "latent") >= 0) {
            keep[nk++] = "latent";
        }
        keep[nk] = NULL;
        nne_prune_opts po = {.ratio = sparsity, .keep = keep};
        cli_calib cc = {.cmd = k_cmd, .quiet = co.quiet || co.json, .t0 = nne_time_ns()};
        const bool cae = is_cae(model);
        work = model;
        if (calib && cae) { /* calibrate at crop x crop, as quantize does */
            if ((st = nne_model_cae_seed_like(model, (int32_t)crop, (int32_t)crop, NNE_CAE_FULL,
                                              &work)) ||
                (st = nne_model_copy_weights(work, model)))
                goto fail;
        }
        if (calib) {
            const nne_shape *is = &work->tensors[work->inputs[0]].shape;
            if (work->n_inputs != 1 || is->ndim != 4 || is->dim[3] != 3 || is->dim[0] != 1) {
                cli_error(k_cmd, "%s: --calib needs a model with one [1][H][W][3] image input",
                          pos[0]);
                goto done;
            }
            const nne_dataset_opts dopts = {.recursive = true,
                                            .cache = false,
                                            .min_width = (int32_t)is->dim[2],
                                            .min_height = (int32_t)is->dim[1]};
            if ((st = nne_dataset_open(real, &dopts, &ds))) goto fail;
            cc.ds = ds;
            cc.crop = (nne_crop_opts){.batch = 1,
                                      .height = (int32_t)is->dim[1],
                                      .width = (int32_t)is->dim[2],
                                      .seed = (uint64_t)seed};
            po.n_samples =
                nne_dataset_size(ds) < max_images ? nne_dataset_size(ds) : (int32_t)max_images;
            po.sample = cli_calib_sample;
            po.progress = cli_calib_progress;
            po.ctx = &cc;
        }
        if ((st = nne_prune_plan_create(work, &po, &plan)) ||
            (st = nne_prune_plan_apply(work, plan, &pruned)))
            goto fail;
        if (work != model) { /* back at the model's own size */
            const nne_shape *is = &model->tensors[model->inputs[0]].shape;
            if ((st = nne_model_cae_seed_like(pruned, (int32_t)is->dim[1], (int32_t)is->dim[2],
                                              NNE_CAE_FULL, &out)) ||
                (st = nne_model_copy_weights(out, pruned)) || (st = copy_meta(out, model)))
                goto fail;
        } else {
            out = pruned;
            pruned = NULL;
        }
    }
    char v[128];
    snprintf(v, sizeof v, "%.6g", sparsity);
    if ((st = nne_graph_set_meta(out, "prune.method", method)) ||
        (st = nne_graph_set_meta(out, "prune.sparsity", v)) ||
        (calib && (st = nne_graph_set_meta(out, "prune.calib", calib))) ||
        (!mag && keep[0] &&
         (st = nne_graph_set_meta(out, "prune.keep", keep_s ? keep_s : keep[0]))))
        goto fail;
    if ((st = nne_graph_infer(out)) || (st = nne_model_write_file(out, co.output))) {
        cli_error(k_cmd, "%s: %s: %s", co.output, nne_status_str(st), nne_last_error());
        goto done;
    }
    if (!(rows = calloc((size_t)orig->n_nodes + 1, sizeof *rows))) {
        st = NNE_ERR_NOMEM;
        goto fail;
    }
    int32_t n_rows = 0;
    nne_prune_cost tot[2];
    if ((st = make_rows(orig, out, rows, &n_rows)) ||
        (st = nne_prune_cost_get(orig, -1, &tot[0])) || (st = nne_prune_cost_get(out, -1, &tot[1])))
        goto fail;
    if (co.json) {
        print_json(pos[0], co.output, method, sparsity, rows, n_rows, tot, plan);
    } else if (!co.quiet) {
        printf("%s: %s pruning, sparsity %g%s -> %s\n", pos[0], method, sparsity,
               calib ? " (sensitivity-guided)" : "", co.output);
        print_text(rows, n_rows, tot, mag);
        if (plan) {
            printf("channel groups:\n");
            print_groups(plan);
        }
    }
    rc = NNE_EXIT_OK;
    goto done;
fail:
    rc = cli_fail(k_cmd, st);
done:
    free(rows);
    nne_prune_plan_free(plan);
    nne_dataset_free(ds);
    if (work != model) nne_graph_free(work);
    nne_graph_free(pruned);
    if (out != model) nne_graph_free(out);
    nne_graph_free(model);
    nne_graph_free(orig);
    return rc;
}
