/* nnedge: the command-line tool. One subcommand per job; see `nnedge help`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nnedge/imgcodec.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command k_commands[] = {
    {"info", nne_cmd_info, "describe a model: layers, shapes, parameters, MACs, memory"},
    {"metrics", nne_cmd_metrics,
     "quality of an image against a reference: MSE, PSNR, SSIM, MS-SSIM"},
    {"encode", nne_cmd_encode, "image -> float latent file (.nnl) with a trained cae-seed"},
    {"compress", nne_cmd_compress,
     "image(s) -> .nnc bitstream(s) with a learned codec (entropy-coded, rate control by model)"},
    {"decompress", nne_cmd_decompress,
     ".nnc bitstream(s) -> image(s) with the model that coded them"},
    {"decode", nne_cmd_decode, "latent file (.nnl) -> image with the model that encoded it"},
    {"eval", nne_cmd_eval,
     "per-image PSNR, MS-SSIM, latent sizes (zstd, xz) against JPEG q90; Figure 6"},
    {"train", nne_cmd_train, "train a model on a folder of images, with checkpoints and resume"},
    {"compile", nne_cmd_compile, "compile a model for the DPU into an instruction stream (.dpu)"},
    {"disasm", nne_cmd_disasm, "print a DPU instruction stream as assembly"},
    {"profile", nne_cmd_profile,
     "DPU timing model: per-layer profile as in the CAE paper, FPS, throughput"},
    {"dse", nne_cmd_dse, "smallest DPU architecture and clock reaching a frame rate; roofline"},
    {"quantize", nne_cmd_quantize,
     "post-training int8 quantization calibrated on a folder (per-tensor, per-channel, pow2)"},
    {"prune", nne_cmd_prune,
     "channel pruning (smaller layers) or magnitude pruning, with MACs and parameters per layer"},
    {"run", nne_cmd_run,
     "run a quantized model on an image: int8 reference kernels (cpu-s8) or the DPU's simulator "
     "(dpu-sim)"},
    {"rd", nne_cmd_rd,
     "rate-distortion of image codecs (JPEG, WebP, JPEG 2000, AVIF, JPEG XL) on a folder: "
     "curves, BD-rates, plot"},
};

static void usage(FILE *f) {
    fprintf(f,
            "nnedge %s: deep-learning image compression for edge accelerators\n\n"
            "usage: nnedge <command> [options] [args]\n\ncommands:\n",
            NNE_VERSION_STRING);
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(f, "\ncommon options: -h/--help, -o FILE, --json, -v (verbose), -q (quiet)\n"
               "exit codes: 0 success, 1 runtime error, 2 usage error\n"
               "run 'nnedge <command> --help' for a command's options\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return NNE_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        if (argc >= 3 && strcmp(cmd, "help") == 0) {
            for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
                if (!strcmp(argv[2], k_commands[i].name)) {
                    char *hargv[] = {argv[2], (char *)"--help", NULL};
                    return k_commands[i].fn(2, hargv);
                }
        }
        usage(stdout);
        return NNE_EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        char feats[256];
        printf("nnedge %s\ncpu: %s\nclassical codecs:", NNE_VERSION_STRING,
               nne_cpu_features_str(nne_cpu_features(), feats, sizeof feats));
        for (int i = 0; i < nne_imgcodec_count(); i++) printf(" %s", nne_imgcodec_get(i)->name);
        printf("\n");
        return NNE_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
        if (!strcmp(cmd, k_commands[i].name)) return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nnedge: unknown command '%s'\n", cmd);
    usage(stderr);
    return NNE_EXIT_USAGE;
}
