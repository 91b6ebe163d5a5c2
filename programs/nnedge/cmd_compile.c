/* nnedge compile: a model -> DPU instruction stream (.dpu); nnedge disasm: .dpu -> text. */
#include <string.h>

#include "cli.h"
#include "nnedge/json.h"

static void help_compile(void) {
    printf("usage: nnedge compile MODEL [--arch B1024] -o OUT.dpu [--disasm]\n\n"
           "Compile a model for the DPU (docs/dpu-isa.md): fuse conv + bias + activation, choose\n"
           "each layer's tiling under the on-chip buffer sizes (the fastest by the timing model,\n"
           "docs/dpu-model.md), and write the instruction stream. MODEL is a built-in model name\n"
           "(cae-seed: its encoder, as in the CAE paper; --part for the rest) or a model file\n"
           "(.nne).\n\n"
           "options:\n"
           "  --arch A       B512, B800, B1024 (default), B1152, B1600, B2304, B3136, B4096\n"
           "  --board B      ultra96 (default), zcu102, zcu104 or a board file: the timing\n"
           "                 the tiling search minimises\n"
           "  --clock MHZ    DPU fabric clock (default: the board's)\n"
           "  --tiling T     dynamic (default: per layer) or uniform (one tiling for all)\n"
           "  --part P       cae-seed: encoder (default), decoder or full\n"
           "  --disasm       print the program as assembly (to stdout; -o optional)\n"
           "  -o FILE        the instruction-stream file to write\n"
           "  --json         print a JSON summary\n"
           "  -q             no notes on stderr\n"
           "  -h, --help     this help\n");
}

int nne_cmd_compile(int argc, char **argv) {
    static const char *k_cmd = "compile";
    cli_common co;
    cli_dpu_opts d;
    memset(&d, 0, sizeof d);
    bool disasm = false;
    const cli_option opts[] = {
        {"arch", 0, true, &d.arch, NULL},    {"board", 0, true, &d.board, NULL},
        {"clock", 0, true, &d.clock, NULL},  {"tiling", 0, true, &d.tiling, NULL},
        {"disasm", 0, false, NULL, &disasm}, {"part", 0, true, &d.part, NULL},
        {NULL, 0, false, NULL, NULL}};
    const char *pos[1];
    int n_pos;
    if (!cli_parse(k_cmd, argc, argv, &co, opts, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help_compile();
        return NNE_EXIT_OK;
    }
    d.quiet = co.quiet;
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one MODEL argument");
    if (!co.output && !disasm)
        return cli_usage_error(k_cmd, "-o OUT.dpu is required (or --disasm)");
    if (co.output && cli_same_file(co.output, pos[0]))
        return cli_usage_error(k_cmd, "-o %s would overwrite the input", co.output);
    nne_dpu_arch a;
    nne_dpu_board b;
    int rc = cli_dpu_target(k_cmd, &d, &a, &b);
    if (rc) return rc;
    if (cli_dpu_is_program_file(pos[0]))
        return cli_usage_error(k_cmd, "%s is already compiled (use 'nnedge disasm')", pos[0]);
    nne_dpu_program p;
    char name[256];
    if ((rc = cli_dpu_program(k_cmd, pos[0], &d, &a, &b, &p, name, sizeof name))) return rc;
    uint8_t *bytes = NULL;
    size_t n = 0;
    nne_status s = nne_dpu_program_write_mem(&p, &bytes, &n);
    if (!s && co.output) s = nne_dpu_program_write_file(&p, co.output);
    if (s) {
        rc = cli_fail(k_cmd, s);
    } else if (disasm) {
        nne_dpu_disasm(&p, stdout);
    } else if (co.json) {
        nne_json j;
        nne_json_init(&j, stdout, true);
        nne_json_object_begin(&j, NULL);
        nne_json_string(&j, "model", name);
        nne_json_string(&j, "arch", a.name);
        nne_json_string(&j, "output", co.output);
        nne_json_int(&j, "bytes", (int64_t)n);
        nne_json_int(&j, "layers", p.n_layers);
        nne_json_int(&j, "instructions", p.n_instrs);
        nne_json_object_end(&j);
        nne_json_finish(&j);
    } else if (!co.quiet) {
        printf("%s: %s for %s, %u layers, %u instructions, %zu bytes\n", co.output, name, a.name,
               p.n_layers, p.n_instrs, n);
    }
    nne_free(bytes);
    nne_dpu_program_free(&p);
    return rc;
}

static void help_disasm(void) {
    printf("usage: nnedge disasm FILE.dpu\n\n"
           "Print a DPU instruction stream (written by 'nnedge compile') as assembly: the\n"
           "architecture, buffer and DDR region sizes, and each layer's instructions.\n"
           "The file is validated first (docs/dpu-isa.md, \"Reader behaviour\").\n");
}

int nne_cmd_disasm(int argc, char **argv) {
    static const char *k_cmd = "disasm";
    cli_common co;
    const char *pos[1];
    int n_pos;
    if (!cli_parse(k_cmd, argc, argv, &co, NULL, pos, 1, &n_pos)) return NNE_EXIT_USAGE;
    if (co.help) {
        help_disasm();
        return NNE_EXIT_OK;
    }
    if (n_pos != 1) return cli_usage_error(k_cmd, "expected one FILE.dpu argument");
    if (co.output || co.json) return cli_usage_error(k_cmd, "-o and --json are not used");
    nne_dpu_program p;
    nne_status s = nne_dpu_program_read_file(pos[0], &p);
    if (s) return cli_fail(k_cmd, s);
    nne_dpu_disasm(&p, stdout);
    nne_dpu_program_free(&p);
    return NNE_EXIT_OK;
}
