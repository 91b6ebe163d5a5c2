/* Shared by the DPU subcommands (compile, disasm, profile, dse): target options, loading a
 * model or an instruction-stream file, the paper's profile table. */
#include <string.h>

#include "cli.h"
#include "nnedge/dpu.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"
#include "nnedge/passes.h"

int cli_dpu_target(const char *cmd, const cli_dpu_opts *o, nne_dpu_arch *a, nne_dpu_board *b) {
    nne_status s = nne_dpu_board_load(o->board, b);
    if (s == NNE_ERR_NOT_FOUND) return cli_usage_error(cmd, "%s", nne_last_error());
    if (s) return cli_fail(cmd, s);
    if (o->arch) {
        if (nne_dpu_arch_get(o->arch, a)) return cli_usage_error(cmd, "%s", nne_last_error());
    } else if (nne_dpu_arch_get("B1024", a)) {
        return cli_fail(cmd, NNE_ERR_INTERNAL);
    }
    if (o->clock) {
        double mhz;
        if (!cli_parse_f64(o->clock, 1, 2000, &mhz))
            return cli_usage_error(cmd, "--clock '%s': expected MHz in 1..2000", o->clock);
        if (mhz > b->max_clock_mhz)
            cli_error(cmd, "warning: %.0f MHz is above %s's %.0f MHz timing-closure limit", mhz,
                      b->name, b->max_clock_mhz);
        b->clock_mhz = mhz;
        if (b->max_clock_mhz < mhz) b->max_clock_mhz = mhz;
    }
    if (o->cores) {
        int64_t c;
        if (!cli_parse_i64(o->cores, 1, 64, &c))
            return cli_usage_error(cmd, "--cores '%s': expected 1..64", o->cores);
        b->cores = (int32_t)c;
    }
    if (o->tiling && strcmp(o->tiling, "dynamic") && strcmp(o->tiling, "uniform"))
        return cli_usage_error(cmd, "--tiling '%s': expected dynamic or uniform", o->tiling);
    return NNE_EXIT_OK;
}

bool cli_dpu_is_program_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char m[8] = {0};
    size_t n = fread(m, 1, 8, f);
    fclose(f);
    return n == 8 && memcmp(m, "NNEDPUI", 8) == 0;
}

int cli_model_part(const char *cmd, nne_graph **g, const char *part, int32_t height,
                   int32_t width) {
    static const char *const names[] = {"full", "encoder", "decoder"};
    static const nne_cae_part parts[] = {NNE_CAE_FULL, NNE_CAE_ENCODER, NNE_CAE_DECODER};
    int k = 0;
    while (k < 3 && strcmp(part, names[k])) k++;
    if (k == 3) return cli_usage_error(cmd, "--part '%s': expected encoder, decoder or full", part);
    const char *model = nne_graph_get_meta(*g, "model"), *mp = nne_graph_get_meta(*g, "model.part");
    if (!model || strcmp(model, "cae-seed") || !mp || strcmp(mp, "full") || (*g)->n_inputs != 1) {
        /* The whole model (or the part it is) as it is, at its own size. */
        if (k == 0 || (mp && !strcmp(mp, part))) return NNE_EXIT_OK;
        return cli_usage_error(cmd, "--part %s applies to full cae-seed models only", part);
    }
    const nne_shape *in = &(*g)->tensors[(*g)->inputs[0]].shape;
    if (!height) height = (int32_t)in->dim[1], width = (int32_t)in->dim[2];
    nne_graph *p = NULL, *q = NULL;
    /* the model's channel widths: a channel-pruned cae-seed keeps its own */
    nne_status s = nne_model_cae_seed_like(*g, height, width, parts[k], &p);
    /* f32 weights move by name; a quantized model gives its constants and every tensor's
     * parameters by name (nne_quantize_like). */
    if (!s && (*g)->tensors[(*g)->inputs[0]].dtype == NNE_F32) {
        s = nne_model_copy_weights(p, *g);
    } else if (!s) {
        s = nne_quantize_like(p, *g, &q);
        nne_graph_free(p);
        p = q;
    }
    if (s) {
        nne_graph_free(p);
        return cli_fail(cmd, s);
    }
    nne_graph_free(*g);
    *g = p;
    return NNE_EXIT_OK;
}

int cli_dpu_load_graph(const char *cmd, const char *spec, const char *part, nne_graph **out,
                       bool quiet) {
    *out = NULL;
    /* Without --part, cae-seed (built-in or a full model file) runs its encoder on the DPU, as
     * in the CAE paper. */
    const char *const *parts = nne_builtin_model_parts(spec);
    const bool paper = part == NULL;
    if (parts && parts[0] && paper) {
        if (!quiet)
            cli_error(cmd,
                      "note: %s: compiling its encoder, as the paper ran it on the DPU (--part "
                      "full or decoder for the rest)",
                      spec);
        spec = parts[0];
    }
    nne_graph *g;
    nne_status s = cli_load_model(spec, &g);
    if (!s) s = nne_graph_infer(g);
    if (s) return cli_fail(cmd, s);
    const char *model = nne_graph_get_meta(g, "model"), *mp = nne_graph_get_meta(g, "model.part");
    const bool full = model && mp && !strcmp(model, "cae-seed") && !strcmp(mp, "full");
    if (paper && full && !quiet) cli_error(cmd, "note: %s: compiling its encoder", spec);
    int rc = paper && !full ? NNE_EXIT_OK : cli_model_part(cmd, &g, paper ? "encoder" : part, 0, 0);
    if (rc) {
        nne_graph_free(g);
        return rc;
    }
    *out = g;
    return NNE_EXIT_OK;
}

int cli_dpu_program(const char *cmd, const char *spec, const cli_dpu_opts *o, const nne_dpu_arch *a,
                    const nne_dpu_board *b, nne_dpu_program *p, char *name, size_t name_size) {
    memset(p, 0, sizeof *p);
    if (cli_dpu_is_program_file(spec)) {
        if (o->arch)
            cli_error(cmd, "note: %s is compiled; its own architecture is used, not --arch", spec);
        nne_status s = nne_dpu_program_read_file(spec, p);
        if (s) return cli_fail(cmd, s);
        snprintf(name, name_size, "%s", spec);
        return NNE_EXIT_OK;
    }
    nne_graph *g;
    int rc = cli_dpu_load_graph(cmd, spec, o->part, &g, o->quiet);
    if (rc) return rc;
    snprintf(name, name_size, "%s", g->name);
    nne_dpu_compile_opts co = {o->tiling && !strcmp(o->tiling, "uniform") ? NNE_DPU_TILING_UNIFORM
                                                                          : NNE_DPU_TILING_DYNAMIC,
                               b};
    nne_status s = nne_dpu_compile(g, a, &co, p);
    nne_graph_free(g);
    return s ? cli_fail(cmd, s) : NNE_EXIT_OK;
}

const char *cli_dpu_bound(const nne_dpu_layer_time *t) {
    uint64_t c = t->compute_cycles, l = t->load_cycles, s = t->save_cycles, d = t->ddr_cycles;
    if (c >= l && c >= s && c >= d) return "compute";
    if (d >= l && d >= s) return "ddr";
    return l >= s ? "load" : "save";
}
