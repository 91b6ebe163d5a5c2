/* libFuzzer target for the latent container reader (docs/latent-format.md).
 *
 * Each input is parsed twice: as given (so the checksum paths are exercised) and with both
 * CRCs recomputed (so mutations reach the field validation and the zstd / xz decoders behind
 * them). Whatever the reader accepts must survive a round trip through the writer with the
 * same compression and with none, giving back an identical latent. Any failure of that
 * contract aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/latent_internal.h"
#include "nnedge/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what) {
    fprintf(stderr, "fuzz_latent: %s: %s\n", what, nne_last_error());
    abort();
}

static bool same(const nne_latent *a, const nne_latent *b) {
    return memcmp(a->model_id, b->model_id, sizeof a->model_id) == 0 &&
           memcmp(a->model_hash, b->model_hash, sizeof a->model_hash) == 0 &&
           a->image_width == b->image_width && a->image_height == b->image_height &&
           memcmp(a->pad, b->pad, sizeof a->pad) == 0 && a->height == b->height &&
           a->width == b->width && a->channels == b->channels &&
           memcmp(a->data, b->data, (size_t)a->height * a->width * a->channels * 4) == 0;
}

static void check_accepted(const nne_latent *l, const nne_latent_info *info, size_t size) {
    if (info->file_size != size || info->stored_size + NNE_LATENT_HEADER_SIZE != size ||
        info->raw_size != (uint64_t)l->height * l->width * l->channels * 4)
        die("inconsistent info");
    const nne_latent_compression cs[2] = {info->compression, NNE_LATENT_NONE};
    for (int k = 0; k < 2; k++) {
        uint8_t *b = NULL;
        size_t n = 0;
        nne_latent back;
        /* Fast levels: the fuzzer checks the contract, not the ratio. */
        const int level = cs[k] == NNE_LATENT_ZSTD ? 1 : cs[k] == NNE_LATENT_XZ ? 0 : -1;
        if (nne_latent_write_mem(l, cs[k], level, &b, &n)) die("accepted latent does not write");
        if (nne_latent_read_mem(b, n, &back, NULL)) die("written latent does not read");
        if (!same(l, &back)) die("write -> read changed the latent");
        nne_latent_free(&back);
        nne_free(b);
    }
}

static void parse(const uint8_t *data, size_t size) {
    nne_latent l;
    nne_latent_info info;
    nne_status s = nne_latent_read_mem(data, size, &l, &info);
    if (s == NNE_OK) {
        if (!l.data) die("NNE_OK without data");
        check_accepted(&l, &info, size);
        nne_latent_free(&l);
    } else {
        if (l.data) die("an error with data");
        if (!nne_last_error()[0]) die("an error without a message");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Copies of exactly `size` bytes so that ASan catches any read past the end. */
    uint8_t *copy = calloc(size ? size : 1, 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    parse(copy, size);
    if (size >= NNE_LATENT_HEADER_SIZE) {
        nne_latent_fix_checksums(copy, size);
        parse(copy, size);
    }
    free(copy);
    return 0;
}
