/* libFuzzer target for the DPU instruction-stream reader (docs/dpu-isa.md).
 *
 * Each input is parsed as given (checksum paths) and with its CRC recomputed (so mutations
 * reach the header, layer and instruction checks). Whatever the reader accepts must write
 * back to the identical bytes (the encoding is canonical), time without trouble and
 * disassemble. Any failure of that contract aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpu/dpu_internal.h"
#include "nnedge/dpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what) {
    fprintf(stderr, "fuzz_dpu_program: %s: %s\n", what, nne_last_error());
    abort();
}

static void parse(const uint8_t *data, size_t size) {
    nne_dpu_program p;
    nne_status s = nne_dpu_program_read_mem(data, size, &p);
    if (s != NNE_OK) {
        if (p.instrs || p.layers || p.params) die("an error with data");
        if (!nne_last_error()[0]) die("an error without a message");
        return;
    }
    uint8_t *b;
    size_t n;
    if (nne_dpu_program_write_mem(&p, &b, &n)) die("accepted program does not write");
    if (n != size || memcmp(b, data, n) != 0) die("write(read(f)) != f");
    nne_free(b);
    nne_dpu_board board;
    if (nne_dpu_board_get("ultra96", &board)) die("no ultra96 preset");
    nne_dpu_layer_time *t = calloc(p.n_layers ? p.n_layers : 1, sizeof *t);
    if (!t) abort();
    if (nne_dpu_time(&p, &board, t, NULL)) die("accepted program does not time");
    free(t);
    FILE *f = fopen("/dev/null", "w");
    if (f) {
        nne_dpu_disasm(&p, f);
        fclose(f);
    }
    nne_dpu_program_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Copies of exactly `size` bytes so that ASan catches any read past the end. */
    uint8_t *copy = calloc(size ? size : 1, 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    parse(copy, size);
    if (size >= NNE_DPU_HEADER_SIZE) {
        nne_dpu_fix_checksum(copy, size);
        parse(copy, size);
    }
    free(copy);
    return 0;
}
