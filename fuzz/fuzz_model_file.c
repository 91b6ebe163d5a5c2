/* libFuzzer target for the model-file reader (docs/model-format.md).
 *
 * Each input is parsed twice: as given (so the checksum paths are exercised) and with its
 * section and file CRCs recomputed (so mutations reach the field validation behind them).
 * Whatever the reader accepts must survive a round trip: write -> read -> write must succeed
 * and give identical bytes; planning and the cost model run on it too. Any failure of that
 * contract aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/model_file_internal.h"
#include "nnedge/model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what) {
    fprintf(stderr, "fuzz_model_file: %s: %s\n", what, nne_last_error());
    abort();
}

static void check_accepted(nne_graph *g) {
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    nne_graph *g2 = NULL;
    if (nne_model_write_mem(g, &b1, &n1)) die("accepted graph does not serialize");
    if (nne_model_read_mem(b1, n1, &g2)) die("re-serialized graph does not parse");
    if (nne_model_write_mem(g2, &b2, &n2)) die("re-read graph does not serialize");
    if (n1 != n2 || memcmp(b1, b2, n1) != 0) die("write -> read -> write is not identical");
    /* Planning may legitimately refuse a huge graph, but must not crash; neither may the
     * per-node cost model, whose products are sized by what the file could hold. */
    (void)nne_graph_plan(g);
    for (int32_t k = 0; k < g->n_nodes; k++) {
        nne_node_cost c;
        if (nne_node_cost_get(g, k, &c)) die("no cost for a node of an inferred graph");
    }
    nne_free(b1);
    nne_free(b2);
    nne_graph_free(g2);
}

static void parse(const uint8_t *data, size_t size) {
    nne_graph *g = NULL;
    nne_status s = nne_model_read_mem(data, size, &g);
    if (s == NNE_OK) {
        if (!g) die("NNE_OK without a graph");
        check_accepted(g);
    } else {
        if (g) die("an error with a graph");
        if (!nne_last_error()[0]) die("an error without a message");
    }
    nne_graph_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Copies of exactly `size` bytes so that ASan catches any read past the end. */
    uint8_t *copy = calloc(size ? size : 1, 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    parse(copy, size);
    if (size >= NNE_MF_HEADER_SIZE) {
        nne_mf_fix_checksums(copy, size);
        parse(copy, size);
    }
    free(copy);
    return 0;
}
