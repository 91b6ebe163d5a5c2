/* nnedge CLI: shared conventions for every subcommand.
 *
 * Each subcommand is `int nne_cmd_<name>(int argc, char **argv)` in its own file
 * programs/nnedge/cmd_<name>.c, registered in the table in main.c. argv[0] is the
 * subcommand name. It returns an exit code:
 *   NNE_EXIT_OK (0)     success
 *   NNE_EXIT_RUNTIME (1) runtime error (bad file contents, I/O, ...)
 *   NNE_EXIT_USAGE (2)  usage error (unknown flag, missing argument)
 * Flags shared by all subcommands: -h/--help, -o FILE (output), --json (machine-readable
 * stdout), -v (verbose, repeatable), -q (quiet). Messages go to stderr, prefixed
 * "nnedge <cmd>: ", and name the file and the problem. Results go to stdout.
 */
#ifndef NNE_CLI_H
#define NNE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "nnedge/common.h"
#include "nnedge/dataset.h"
#include "nnedge/dpu.h"

enum { NNE_EXIT_OK = 0, NNE_EXIT_RUNTIME = 1, NNE_EXIT_USAGE = 2 };

/* Options common to all subcommands, filled by cli_parse. */
typedef struct cli_common {
    const char *output; /* -o / --output, NULL if absent */
    bool json;          /* --json */
    int verbose;        /* -v count */
    bool quiet;         /* -q */
    bool help;          /* -h / --help */
} cli_common;

/* Description of one extra option of a subcommand. `has_arg`: takes a value. */
typedef struct cli_option {
    const char *long_name; /* without "--" */
    char short_name;       /* 0 if none */
    bool has_arg;
    const char **value; /* has_arg: where the value goes */
    bool *flag;         /* !has_arg: set to true */
} cli_option;

/* Parse argv[1..] into common options, the extra options (may be NULL) and positional
 * arguments (pointers into argv, at most max_pos). Supports "--name value", "--name=value",
 * "-o value", "--" to end options. On a usage error prints it and returns false; the
 * command should then return NNE_EXIT_USAGE. */
bool cli_parse(const char *cmd, int argc, char **argv, cli_common *common, const cli_option *extra,
               const char **pos, int max_pos, int *n_pos);

/* Print "nnedge <cmd>: <message>\n" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Print a library failure: "nnedge <cmd>: <status>: <nne_last_error()>". Returns
 * NNE_EXIT_RUNTIME. */
int cli_fail(const char *cmd, nne_status s);
/* Usage error: prints the message and "try 'nnedge <cmd> --help'". Returns NNE_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Strict number parsing of an option value: the whole string, finite, in [lo, hi]. false
 * (and *out untouched) otherwise, also for NULL or "". */
bool cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
bool cli_parse_f64(const char *s, double lo, double hi, double *out);
/* "LO,HI": two finite numbers with LO < HI (as f32). */
bool cli_parse_range(const char *s, float *lo, float *hi);

/* Load a model given as a built-in name (see `nnedge info --list`) or a model file path. */
struct nne_graph;
nne_status cli_load_model(const char *spec, struct nne_graph **out);

/* Resolve a data folder (must exist) into real (real_size bytes) and refuse one holding
 * Kodak images (kodim*.png anywhere below): Kodak is test data only. 0, or the exit code
 * after printing why (1: missing folder, 2: Kodak). Used by train and quantize. */
int cli_check_data_dir(const char *cmd, const char *opt, const char *dir, char *real,
                       size_t real_size);

/* Calibration crops of a dataset for the passes' sample callbacks (nne_calib_sample_fn):
 * sample i is batch i of nne_dataset_crop_batch with `crop`; progress is a bar on a terminal,
 * one line per phase otherwise, nothing when quiet. Used by quantize and prune. */
typedef struct cli_calib {
    const nne_dataset *ds;
    nne_crop_opts crop;
    const char *cmd; /* for the progress line */
    bool quiet;
    uint64_t t0; /* nne_time_ns() at the start */
} cli_calib;
nne_status cli_calib_sample(void *ctx, int32_t i, float *x);
void cli_calib_progress(void *ctx, const char *phase, int32_t done, int32_t total);

/* Format an integer with thousands separators ("3,975,122,304") into buf. */
const char *cli_thousands(int64_t v, char *buf, size_t n);

/* Subcommands. */
int nne_cmd_info(int argc, char **argv);
int nne_cmd_metrics(int argc, char **argv);
int nne_cmd_encode(int argc, char **argv);
int nne_cmd_decode(int argc, char **argv);
int nne_cmd_eval(int argc, char **argv);
int nne_cmd_train(int argc, char **argv);
int nne_cmd_compile(int argc, char **argv);
int nne_cmd_disasm(int argc, char **argv);
int nne_cmd_profile(int argc, char **argv);
int nne_cmd_dse(int argc, char **argv);
int nne_cmd_quantize(int argc, char **argv);
int nne_cmd_run(int argc, char **argv);
int nne_cmd_prune(int argc, char **argv);

/* ---- DPU subcommands (cli_dpu.c) ---- */
typedef struct cli_dpu_opts {
    const char *arch;   /* --arch (default B1024) */
    const char *board;  /* --board: preset or board file (default ultra96) */
    const char *clock;  /* --clock MHz (default: the board's) */
    const char *cores;  /* --cores N (default: the board's) */
    const char *tiling; /* --tiling dynamic|uniform */
    const char *part;   /* --part encoder|decoder|full (NULL: cae-seed's encoder, the paper's) */
    bool quiet;
} cli_dpu_opts;
/* Resolve the target; an unknown architecture or board name is a usage error (exit 2), a bad
 * board file a runtime error (1). Returns NNE_EXIT_OK or the exit code. */
int cli_dpu_target(const char *cmd, const cli_dpu_opts *o, nne_dpu_arch *a, nne_dpu_board *b);
/* true if `path` is a DPU instruction-stream file (by its magic). */
bool cli_dpu_is_program_file(const char *path);
/* Load MODEL for the DPU. part NULL: cae-seed (built-in or a full model file) gives its
 * encoder, as the CAE paper ran it, with a note; otherwise cli_model_part(part). */
int cli_dpu_load_graph(const char *cmd, const char *spec, const char *part, struct nne_graph **out,
                       bool quiet);
/* Replace a full cae-seed graph (f32 or quantized) by its part "encoder", "decoder" or "full",
 * built at height x width (0: the model's own size) with the model's weights and, for a
 * quantized model, its parameters (nne_quantize_like). Any other model is left as it is (at
 * its own size) for "full" or the part it is, and the rest is a usage error. */
int cli_model_part(const char *cmd, struct nne_graph **g, const char *part, int32_t height,
                   int32_t width);
/* MODEL compiled for (a, b), or a .dpu file read as it is; name gets the graph's or file's
 * name. */
int cli_dpu_program(const char *cmd, const char *spec, const cli_dpu_opts *o, const nne_dpu_arch *a,
                    const nne_dpu_board *b, nne_dpu_program *p, char *name, size_t name_size);
/* What limits a layer: "compute", "load", "save" or "ddr" (the busiest resource). */
const char *cli_dpu_bound(const nne_dpu_layer_time *t);
int nne_cmd_rd(int argc, char **argv);
int nne_cmd_compress(int argc, char **argv);
int nne_cmd_decompress(int argc, char **argv);

/* The trained model encode/decode/eval use when --model is absent: models/cae-seed.nne in
 * the current directory or in the repository the executable was built in (its parent
 * folder). Returns false (and prints why, naming the places looked at) if there is none. */
bool cli_default_cae_model(const char *cmd, char *path, size_t n);
/* Load a trained cae-seed model file for the latent codec: `spec` (a path) or, when NULL,
 * the default above. A built-in model name is refused: its weights are zero. Prints the
 * problem and returns false on failure; *codec is then NULL. */
struct nne_cae_codec;
bool cli_load_cae_codec(const char *cmd, const char *spec, struct nne_cae_codec **codec);
/* The repository the executable was built in (the parent of its folder), for finding
 * models/ beside it. false if /proc/self/exe cannot be read. */
bool cli_repo_dir(char *repo, size_t n);
/* ---- The learned-codec model registry (docs/codec.md, "Model registry"; cli_model.c) ----
 * Folders searched in order: $NNEDGE_MODELS, ./models, <repository>/models. */
#define CLI_REGISTRY_DIRS 3
#define CLI_PATH_MAX      4096
int cli_registry_dirs(char dirs[CLI_REGISTRY_DIRS][CLI_PATH_MAX]);
/* true if p names an existing regular file (after symlinks). */
bool cli_is_regular(const char *p);
/* The first registry folder holding `file` (a plain name, e.g. "mbt2018-mean-q3.nne"): its
 * path into path. Otherwise false, with the candidates tried in `looked`. */
bool cli_registry_find(const char *file, char *path, size_t n, char *looked, size_t ln);
/* The quality ladder of a kind: the files <kind>-q<N>.nne (N = 0..99) in `dir`, or with dir
 * NULL in the first registry folder holding any, sorted by N. Fills at most max entries
 * (qualities[i], paths[i]); returns the count, 0 if none (`where` names the folders looked
 * at, or on success the folder used). */
int cli_registry_ladder(const char *kind, const char *dir, int max, int32_t *qualities,
                        char (*paths)[CLI_PATH_MAX], char *where, size_t wn);
/* true if a and b name the same existing file (same device and inode). */
bool cli_same_file(const char *a, const char *b);

/* ---- Report helpers shared by eval and rd ---- */
/* "%.*f" of v into buf, `na` for NaN, "inf"/"-inf" for infinities; returns buf. */
const char *cli_fmtd(char *buf, size_t n, double v, int dec, const char *na);
/* One CSV field, quoted (RFC 4180) when it holds a comma, quote or line break. */
void cli_csv_field(FILE *f, const char *s);
/* File name without directory and extension ("a/b/kodim01.png" -> "kodim01"). */
void cli_base_name(const char *path, char *out, size_t n);
/* Render a report with fn(f, ctx) into memory, then write it atomically to `path`. Prints
 * the problem and returns false on failure. */
bool cli_write_report(const char *cmd, const char *path, void (*fn)(FILE *, const void *),
                      const void *ctx);

#endif
