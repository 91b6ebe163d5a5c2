/* libFuzzer target for the checkpoint reader (docs/training.md, "Checkpoint file").
 *
 * Each input is parsed twice: as given (the CRC path) and with its file CRC recomputed (so
 * mutations reach the field validation behind it). Whatever the reader accepts must
 * survive a round trip: write -> read -> write must succeed and give identical bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what) {
    fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, nne_last_error());
    abort();
}

static void parse(const uint8_t *data, size_t size) {
    nne_checkpoint c;
    nne_status s = nne_checkpoint_read_mem(data, size, &c);
    if (s != NNE_OK) {
        if (c.model || c.optim || c.kv) die("an error with a result");
        if (!nne_last_error()[0]) die("an error without a message");
        return;
    }
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    nne_checkpoint c2;
    if (nne_checkpoint_write_mem(&c, &b1, &n1)) die("accepted checkpoint does not serialize");
    if (n1 != size || memcmp(b1, data, size) != 0) die("accepted input is not canonical");
    if (nne_checkpoint_read_mem(b1, n1, &c2)) die("re-serialized checkpoint does not parse");
    if (nne_checkpoint_write_mem(&c2, &b2, &n2)) die("re-read checkpoint does not serialize");
    if (n1 != n2 || memcmp(b1, b2, n1) != 0) die("write -> read -> write is not identical");
    nne_free(b1);
    nne_free(b2);
    nne_checkpoint_clear(&c2);
    nne_checkpoint_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A copy of exactly `size` bytes so that ASan catches any read past the end. */
    uint8_t *copy = calloc(size ? size : 1, 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    parse(copy, size);
    if (size >= 64) { /* recompute file_crc32 (bytes 24..27: CRC of everything else) */
        uint32_t crc = nne_crc32(0, copy, 24);
        crc = nne_crc32(crc, copy + 28, size - 28);
        for (int i = 0; i < 4; i++) copy[24 + i] = (uint8_t)(crc >> (8 * i));
        parse(copy, size);
    }
    free(copy);
    return 0;
}
