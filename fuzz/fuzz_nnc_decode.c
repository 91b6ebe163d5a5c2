/* libFuzzer target for the whole learned-codec decoder (nne_lcodec_decode, docs/codec.md):
 * container reader, factorized and Gaussian rANS streams, the hyper-synthesis that derives
 * the y tables and means, and the synthesis, with the tiny models of tests/tiny_lcodec.h
 * (one per kind, trained once at start-up).
 *
 * Each input is decoded twice: as given (the checksum and model-identity paths), and with
 * the model hash replaced by that of the kind its model-id field names (mean-scale if none)
 * and both CRCs recomputed, so that mutations reach the streams and the geometry. The
 * decoder's work is bounded with nne_lcodec_set_max_pixels (256 x 256 padded). A decode must
 * fail cleanly or give an image of the header's size; anything else aborts. Seeds
 * (fuzz/corpus/fuzz_nnc_decode/) are written by tests/codec/test_lcodec.c with
 * NNE_REGEN_GOLDEN=1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/tiny_lcodec.h"
#include "codec/bitstream_internal.h"
#include "nnedge/bitstream.h"
#include "nnedge/lcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1 << 20)

static nne_lcodec *g_codec[3]; /* built once; reachable until exit, so not a leak */
static uint8_t g_buf[MAX_INPUT];

static void die(const char *what) {
    fprintf(stderr, "fuzz_nnc_decode: %s: %s\n", what, nne_last_error());
    abort();
}

static void init(void) {
    if (g_codec[0]) return;
    for (int k = 0; k < 3; k++) {
        nne_graph *g = NULL;
        if (nne_tiny_lcodec_model((nne_rdmodel_kind)k, 11 + (uint64_t)k, &g) ||
            nne_lcodec_create(g, 3, &g_codec[k]))
            die("tiny model");
        nne_graph_free(g);
        nne_lcodec_set_max_pixels(g_codec[k], 256 * 256);
    }
}

static void decode(nne_lcodec *c, const uint8_t *p, size_t n) {
    nne_image img = {0};
    const nne_status s = nne_lcodec_decode(c, p, n, &img);
    if (s == NNE_OK) {
        nne_nnc box;
        if (nne_nnc_read_mem(p, n, &box) || img.width != box.image_width ||
            img.height != box.image_height || img.channels != 3 || !img.data)
            die("accepted stream gives an image of another size");
    } else if (img.data) {
        die("failed decode left an image");
    }
    nne_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    if (size > MAX_INPUT) return 0;
    int kind = NNE_RD_MEAN_SCALE;
    for (int k = 0; k < 3 && size >= NNE_NNC_OFF_MODEL_HASH; k++) {
        const char *name = nne_rdmodel_kind_name((nne_rdmodel_kind)k);
        if (!memcmp(data + NNE_NNC_OFF_MODEL_ID, name, strlen(name) + 1)) kind = k;
    }
    decode(g_codec[kind], data, size);
    if (size < NNE_NNC_OFF_STREAMS) return 0;
    memcpy(g_buf, data, size);
    nne_lcodec_info info;
    nne_lcodec_get_info(g_codec[kind], &info);
    memcpy(g_buf + NNE_NNC_OFF_MODEL_HASH, info.hash, NNE_NNC_HASH_SIZE);
    nne_nnc_fix_checksums(g_buf, size);
    decode(g_codec[kind], g_buf, size);
    return 0;
}
