/* nnedge model file (.nne): writer and validating reader. Format: docs/model-format.md.
 *
 * The reader works in two passes over a buffer it never trusts:
 *   1. decode: every header field, section range, table entry, string, quantization array
 *      and data range is checked against the file's own bytes and the documented limits,
 *      and decoded into small structs. Every count is checked against the bytes present
 *      before anything proportional to it is allocated, and every byte range is referenced
 *      at most once (ranges must appear in increasing order), so allocations are bounded by
 *      a small multiple of the file size.
 *   2. build: the graph is rebuilt through the public builder (nne_graph_add_input /
 *      add_constant / add_node / mark_output / set_meta, nne_quant_set) and checked by
 *      nne_graph_infer. Semantic rules (names, topological order, op parameters, dtypes,
 *      shapes) therefore live in one place, the graph layer; the reader only checks what
 *      is specific to the encoding.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/model_file_internal.h"
#include "nnedge/file.h"
#include "nnedge/model_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nnedge stores tensor data little-endian; a big-endian host needs byte swapping here"
#endif

_Static_assert(sizeof(nne_op_params) == NNE_OP_PARAM_WORDS * 4, "op params must be 16 words");
_Static_assert(NNE_MF_TENSOR_SIZE == NNE_MF_T_DATA_SIZE + 8, "tensor entry layout");
_Static_assert(NNE_MF_NODE_SIZE == NNE_MF_N_INPUTS + 4 * NNE_MAX_NODE_INPUTS, "node layout");
_Static_assert(NNE_MF_N_INPUTS == NNE_MF_N_PARAMS + 4 * NNE_OP_PARAM_WORDS, "node layout");
_Static_assert(NNE_MF_T_Q_AXIS == NNE_MF_T_DIMS + 8 * NNE_MAX_DIMS, "tensor entry layout");

static const char *const g_section_names[NNE_MF_SEC_KNOWN_COUNT + 1] = {
    "?", "STRINGS", "TENSORS", "NODES", "GRAPH", "META", "QUANT", "WEIGHTS", "ATTACHED"};

static const char *const g_kind_names[3] = {"activation", "input", "constant"};

/* ======================================================================================
 * Writer
 * ====================================================================================== */

typedef struct mf_writer {
    uint8_t *buf;
    size_t sec_off[NNE_MF_SEC_KNOWN_COUNT + 1];
    size_t sec_size[NNE_MF_SEC_KNOWN_COUNT + 1];
    size_t str_pos, quant_pos, data_pos; /* cursors, relative to their section */
    bool f16_exact;                       /* nne_model_write_opts.f16_exact */
} mf_writer;

/* Whether constant t is stored as f16: asked for, an unquantized f32 constant, and every
 * value exactly an f16 value (so the reader's widening gives back the same bits). */
static bool stores_f16(const mf_writer *w, const nne_tensor *t) {
    if (!w->f16_exact || t->kind != NNE_TENSOR_CONSTANT || t->dtype != NNE_F32 ||
        t->quant.count > 0 || !t->data)
        return false;
    const float *v = t->data;
    const int64_t n = nne_shape_numel(&t->shape);
    for (int64_t i = 0; i < n; i++) {
        const float r = nne_f16_to_f32(nne_f32_to_f16(v[i]));
        if (memcmp(&r, &v[i], sizeof r) != 0) return false; /* NaN, -0 vs 0 */
    }
    return true;
}

static bool size_acc(size_t *total, size_t add) { return nne_size_add(*total, add, total); }

/* Append a NUL-terminated string to STRINGS; store its {offset, length} ref at p. */
static void put_string(mf_writer *w, uint8_t *p, const char *s) {
    size_t n = strlen(s);
    memcpy(w->buf + w->sec_off[NNE_MF_SEC_STRINGS] + w->str_pos, s, n + 1);
    nne_le_wr32(p, (uint32_t)w->str_pos);
    nne_le_wr32(p + 4, (uint32_t)n);
    w->str_pos += n + 1;
}

static nne_status check_write_string(const char *what, const char *s, size_t max) {
    if (!s) return nne_error(NNE_ERR_INVALID_ARG, "model write: %s is NULL", what);
    if (strnlen(s, max + 1) > max)
        return nne_error(NNE_ERR_LIMIT, "model write: %s is longer than %zu bytes", what, max);
    return NNE_OK;
}

/* Map graph tensor indices to file indices: inputs and constants in graph order, then the
 * activation tensors in the order of the nodes that produce them (docs/model-format.md,
 * "Tensor order"). order[file] = graph index, file_of[graph] = file index. */
static nne_status writer_order(const nne_graph *g, int32_t *order, int32_t *file_of,
                               int32_t *n_fixed_out) {
    int32_t nt = g->n_tensors, n_fixed = 0;
    for (int32_t i = 0; i < nt; i++) file_of[i] = -1;
    for (int32_t i = 0; i < nt; i++) {
        nne_tensor_kind kind = g->tensors[i].kind;
        if ((int)kind < 0 || (int)kind > NNE_TENSOR_CONSTANT)
            return nne_error(NNE_ERR_INVALID_ARG, "model write: tensor '%s' has kind %d",
                             g->tensors[i].name, (int)kind);
        if (kind == NNE_TENSOR_ACTIVATION) continue;
        order[n_fixed] = i;
        file_of[i] = n_fixed++;
    }
    if (nt - n_fixed != g->n_nodes)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "model write: %d activation tensors but %d nodes (each node must "
                         "produce exactly one activation)",
                         (int)(nt - n_fixed), (int)g->n_nodes);
    for (int32_t k = 0; k < g->n_nodes; k++) {
        int32_t o = g->nodes[k].output;
        if (o < 0 || o >= nt || g->tensors[o].kind != NNE_TENSOR_ACTIVATION || file_of[o] >= 0)
            return nne_error(NNE_ERR_INVALID_ARG,
                             "model write: node '%s': output %d is not an activation tensor of "
                             "its own",
                             g->nodes[k].name, (int)o);
        file_of[o] = n_fixed + k;
        order[n_fixed + k] = o;
    }
    *n_fixed_out = n_fixed;
    return NNE_OK;
}

/* Compute section sizes (w->sec_size) after validating what the writer relies on. */
static nne_status writer_measure(const nne_graph *g, const int32_t *order, mf_writer *w) {
    nne_status s;
    size_t strings = 0, quant = 0, weights = 0;
    const char *gname = g->name ? g->name : "";
    if ((s = check_write_string("graph name", gname, NNE_MAX_NAME))) return s;
    size_acc(&strings, strlen(gname) + 1);
    for (int32_t f = 0; f < g->n_tensors; f++) {
        const nne_tensor *t = &g->tensors[order[f]];
        if ((s = check_write_string("tensor name", t->name, NNE_MAX_NAME))) return s;
        size_acc(&strings, strlen(t->name) + 1);
        if (nne_dtype_size(t->dtype) == 0)
            return nne_error(NNE_ERR_INVALID_ARG, "model write: tensor '%s': invalid dtype %d",
                             t->name, (int)t->dtype);
        if ((s = nne_shape_validate(&t->shape)))
            return nne_error(NNE_ERR_INVALID_ARG, "model write: tensor '%s': %s", t->name,
                             nne_last_error());
        if (t->quant.count > 0) {
            if (t->quant.count > NNE_MAX_DIM || !t->quant.scale || !t->quant.zero_point)
                return nne_error(NNE_ERR_INVALID_ARG,
                                 "model write: tensor '%s': bad quantization arrays", t->name);
            if (!size_acc(&quant, (size_t)t->quant.count * 8)) return NNE_ERR_NOMEM;
        }
        if (t->kind == NNE_TENSOR_CONSTANT) {
            size_t nb = nne_tensor_nbytes(t);
            if (stores_f16(w, t)) nb /= 2;
            if (nb == 0 || !t->data)
                return nne_error(NNE_ERR_INVALID_ARG, "model write: constant '%s' has no data",
                                 t->name);
            weights = nne_align_up(weights, NNE_MF_WEIGHTS_ALIGN);
            if (!size_acc(&weights, nb))
                return nne_error(NNE_ERR_LIMIT, "model write: weights exceed the address space");
        }
    }
    for (int32_t k = 0; k < g->n_nodes; k++) {
        const nne_node *n = &g->nodes[k];
        if ((s = check_write_string("node name", n->name, NNE_MAX_NAME))) return s;
        size_acc(&strings, strlen(n->name) + 1);
        if (n->n_inputs < 0 || n->n_inputs > NNE_MAX_NODE_INPUTS)
            return nne_error(NNE_ERR_INVALID_ARG, "model write: node '%s': %d inputs", n->name,
                             (int)n->n_inputs);
        for (int32_t i = 0; i < n->n_inputs; i++)
            if (n->inputs[i] < -1 || n->inputs[i] >= g->n_tensors)
                return nne_error(NNE_ERR_INVALID_ARG, "model write: node '%s': bad input %d",
                                 n->name, (int)n->inputs[i]);
    }
    for (int32_t m = 0; m < g->n_meta; m++) {
        if ((s = check_write_string("metadata key", g->meta[m].key, NNE_MAX_NAME))) return s;
        if ((s = check_write_string("metadata value", g->meta[m].value, NNE_MAX_META_VALUE)))
            return s;
        size_acc(&strings, strlen(g->meta[m].key) + 1);
        size_acc(&strings, strlen(g->meta[m].value) + 1);
    }
    if (strings > UINT32_MAX) return nne_error(NNE_ERR_LIMIT, "model write: strings exceed 4 GiB");
    w->sec_size[NNE_MF_SEC_STRINGS] = strings;
    w->sec_size[NNE_MF_SEC_TENSORS] =
        NNE_MF_TABLE_HEADER + (size_t)g->n_tensors * NNE_MF_TENSOR_SIZE;
    w->sec_size[NNE_MF_SEC_NODES] = NNE_MF_TABLE_HEADER + (size_t)g->n_nodes * NNE_MF_NODE_SIZE;
    w->sec_size[NNE_MF_SEC_GRAPH] =
        NNE_MF_GRAPH_HEADER + 4 * ((size_t)g->n_inputs + (size_t)g->n_outputs);
    w->sec_size[NNE_MF_SEC_META] = NNE_MF_TABLE_HEADER + (size_t)g->n_meta * NNE_MF_META_SIZE;
    w->sec_size[NNE_MF_SEC_QUANT] = quant;
    w->sec_size[NNE_MF_SEC_WEIGHTS] = weights;
    return NNE_OK;
}

static void write_tensor(mf_writer *w, uint8_t *e, const nne_tensor *t) {
    const bool f16 = stores_f16(w, t);
    put_string(w, e + NNE_MF_T_NAME_OFF, t->name);
    nne_le_wr32(e + NNE_MF_T_DTYPE, (uint32_t)(f16 ? NNE_F16 : t->dtype));
    nne_le_wr32(e + NNE_MF_T_KIND, (uint32_t)t->kind);
    nne_le_wr32(e + NNE_MF_T_NDIM, (uint32_t)t->shape.ndim);
    for (int d = 0; d < t->shape.ndim; d++)
        nne_le_wr64(e + NNE_MF_T_DIMS + 8 * d, (uint64_t)t->shape.dim[d]);
    if (t->quant.count > 0) {
        uint32_t count = (uint32_t)t->quant.count;
        nne_le_wr32(e + NNE_MF_T_Q_AXIS, (uint32_t)t->quant.axis);
        nne_le_wr32(e + NNE_MF_T_Q_COUNT, count);
        nne_le_wr32(e + NNE_MF_T_Q_FLAGS, t->quant.pow2 ? NNE_MF_QUANT_POW2 : 0);
        nne_le_wr64(e + NNE_MF_T_Q_OFFSET, w->quant_pos);
        uint8_t *q = w->buf + w->sec_off[NNE_MF_SEC_QUANT] + w->quant_pos;
        for (uint32_t i = 0; i < count; i++) {
            uint32_t bits;
            memcpy(&bits, &t->quant.scale[i], 4);
            nne_le_wr32(q + 4 * i, bits);
            nne_le_wr32(q + 4 * ((size_t)count + i), (uint32_t)t->quant.zero_point[i]);
        }
        w->quant_pos += (size_t)count * 8;
    } else {
        nne_le_wr32(e + NNE_MF_T_Q_AXIS, UINT32_MAX); /* -1: canonical "not quantized" */
    }
    if (t->kind == NNE_TENSOR_CONSTANT) {
        size_t nb = nne_tensor_nbytes(t);
        w->data_pos = nne_align_up(w->data_pos, NNE_MF_WEIGHTS_ALIGN);
        uint8_t *d = w->buf + w->sec_off[NNE_MF_SEC_WEIGHTS] + w->data_pos;
        if (f16) {
            nb /= 2;
            const float *v = t->data;
            for (size_t i = 0; i < nb / 2; i++) {
                const uint16_t h = nne_f32_to_f16(v[i]);
                d[2 * i] = (uint8_t)h;
                d[2 * i + 1] = (uint8_t)(h >> 8);
            }
        } else {
            memcpy(d, t->data, nb);
        }
        nne_le_wr64(e + NNE_MF_T_DATA_OFFSET, w->data_pos);
        nne_le_wr64(e + NNE_MF_T_DATA_SIZE, nb);
        w->data_pos += nb;
    }
}

nne_status nne_model_write_mem(const nne_graph *g, uint8_t **out, size_t *out_size) {
    return nne_model_write_mem_opts(g, NULL, out, out_size);
}

nne_status nne_model_write_mem_opts(const nne_graph *g, const nne_model_write_opts *o,
                                    uint8_t **out, size_t *out_size) {
    if (!out || !out_size) return nne_error(NNE_ERR_INVALID_ARG, "model write: NULL output");
    *out = NULL;
    *out_size = 0;
    if (!g) return nne_error(NNE_ERR_INVALID_ARG, "model write: NULL graph");
    if (!g->inferred)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "model write: graph '%s' has not passed nne_graph_infer",
                         g->name ? g->name : "");
    if (g->n_tensors < 0 || g->n_tensors > NNE_MAX_TENSORS || g->n_nodes < 0 ||
        g->n_nodes > NNE_MAX_NODES || g->n_meta < 0 || g->n_meta > NNE_MAX_META ||
        g->n_inputs < 0 || g->n_inputs > g->n_tensors || g->n_outputs < 0 ||
        g->n_outputs > g->n_tensors)
        return nne_error(NNE_ERR_LIMIT, "model write: graph counts outside the format's limits");
    /* The format lists the graph inputs as exactly the input tensors, in tensor order (the
     * order in which nne_graph_add_input creates both). */
    int32_t k_in = 0;
    bool inputs_ok = true;
    for (int32_t i = 0; i < g->n_tensors && inputs_ok; i++) {
        if (g->tensors[i].kind != NNE_TENSOR_INPUT) continue;
        inputs_ok = k_in < g->n_inputs && g->inputs[k_in] == i;
        k_in++;
    }
    if (!inputs_ok || k_in != g->n_inputs)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "model write: the graph inputs are not the input tensors in order");
    for (int32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < 0 || g->outputs[i] >= g->n_tensors)
            return nne_error(NNE_ERR_INVALID_ARG, "model write: bad graph output %d",
                             (int)g->outputs[i]);

    if (g->n_attached < 0 || g->n_attached > NNE_MAX_ATTACHED)
        return nne_error(NNE_ERR_LIMIT, "model write: %d attached graphs (at most %d)",
                         (int)g->n_attached, NNE_MAX_ATTACHED);

    nne_status s;
    mf_writer w;
    memset(&w, 0, sizeof w);
    w.f16_exact = o && o->f16_exact;
    int32_t n_fixed = 0;
    int32_t *order = nne_malloc(((size_t)g->n_tensors + 1) * sizeof *order);
    int32_t *file_of = nne_malloc(((size_t)g->n_tensors + 1) * sizeof *file_of);
    /* The attached graphs, each serialized as a model file of its own. */
    uint8_t *att[NNE_MAX_ATTACHED] = {NULL};
    size_t att_size[NNE_MAX_ATTACHED] = {0}, att_off[NNE_MAX_ATTACHED] = {0};
    if (!order || !file_of) {
        s = NNE_ERR_NOMEM;
        goto done;
    }
    if ((s = writer_order(g, order, file_of, &n_fixed))) goto done;
    if ((s = writer_measure(g, order, &w))) goto done;
    size_t apos = NNE_MF_TABLE_HEADER + (size_t)g->n_attached * NNE_MF_ATTACHED_SIZE;
    for (int32_t i = 0; i < g->n_attached; i++) {
        const nne_graph *a = g->attached[i];
        if (!a || a->n_attached) {
            s = nne_error(NNE_ERR_INVALID_ARG,
                          "model write: attached graph %d is missing or has attached graphs",
                          (int)i);
            goto done;
        }
        if ((s = nne_model_write_mem_opts(a, o, &att[i], &att_size[i]))) {
            s = nne_error(s, "model write: attached graph %d ('%s'): %s", (int)i, a->name,
                          nne_last_error());
            goto done;
        }
        apos = nne_align_up(apos, NNE_MF_WEIGHTS_ALIGN);
        att_off[i] = apos;
        if (!size_acc(&apos, att_size[i])) {
            s = NNE_ERR_NOMEM;
            goto done;
        }
    }
    const int n_sec = NNE_MF_SEC_REQUIRED_COUNT + (g->n_attached ? 1 : 0);
    w.sec_size[NNE_MF_SEC_ATTACHED] = g->n_attached ? apos : 0;

    /* Layout: header, section table, then the sections in type order, each 8-aligned;
     * WEIGHTS and ATTACHED 64-aligned. */
    size_t pos = NNE_MF_HEADER_SIZE + (size_t)n_sec * NNE_MF_SECTION_ENTRY_SIZE;
    for (int t = 1; t <= n_sec; t++) {
        pos = nne_align_up(pos, t == NNE_MF_SEC_WEIGHTS || t == NNE_MF_SEC_ATTACHED
                                    ? NNE_MF_WEIGHTS_ALIGN
                                    : NNE_MF_SECTION_ALIGN);
        w.sec_off[t] = pos;
        if (!size_acc(&pos, w.sec_size[t]) || pos > NNE_MF_MAX_FILE_SIZE) {
            s = nne_error(NNE_ERR_LIMIT, "model write: the file would exceed %llu bytes",
                          (unsigned long long)NNE_MF_MAX_FILE_SIZE);
            goto done;
        }
    }
    size_t file_size = pos;
    w.buf = nne_calloc(file_size, 1);
    if (!w.buf) {
        s = NNE_ERR_NOMEM;
        goto done;
    }
    uint8_t *b = w.buf;

    /* GRAPH first: its name is the first string. */
    uint8_t *gr = b + w.sec_off[NNE_MF_SEC_GRAPH];
    put_string(&w, gr, g->name ? g->name : "");
    nne_le_wr32(gr + 8, (uint32_t)g->n_inputs);
    nne_le_wr32(gr + 12, (uint32_t)g->n_outputs);
    for (int32_t i = 0; i < g->n_inputs; i++)
        nne_le_wr32(gr + NNE_MF_GRAPH_HEADER + 4 * (size_t)i, (uint32_t)file_of[g->inputs[i]]);
    for (int32_t i = 0; i < g->n_outputs; i++)
        nne_le_wr32(gr + NNE_MF_GRAPH_HEADER + 4 * ((size_t)g->n_inputs + (size_t)i),
                    (uint32_t)file_of[g->outputs[i]]);

    uint8_t *te = b + w.sec_off[NNE_MF_SEC_TENSORS];
    nne_le_wr32(te, (uint32_t)g->n_tensors);
    for (int32_t f = 0; f < g->n_tensors; f++)
        write_tensor(&w, te + NNE_MF_TABLE_HEADER + (size_t)f * NNE_MF_TENSOR_SIZE,
                     &g->tensors[order[f]]);

    uint8_t *ne = b + w.sec_off[NNE_MF_SEC_NODES];
    nne_le_wr32(ne, (uint32_t)g->n_nodes);
    for (int32_t k = 0; k < g->n_nodes; k++) {
        const nne_node *n = &g->nodes[k];
        uint8_t *e = ne + NNE_MF_TABLE_HEADER + (size_t)k * NNE_MF_NODE_SIZE;
        put_string(&w, e + NNE_MF_N_NAME_OFF, n->name);
        nne_le_wr32(e + NNE_MF_N_OP, (uint32_t)n->op);
        nne_le_wr32(e + NNE_MF_N_N_INPUTS, (uint32_t)n->n_inputs);
        nne_le_wr32(e + NNE_MF_N_OUTPUT, (uint32_t)file_of[n->output]);
        for (int i = 0; i < NNE_OP_PARAM_WORDS; i++)
            nne_le_wr32(e + NNE_MF_N_PARAMS + 4 * i, n->params.words[i]);
        for (int i = 0; i < NNE_MAX_NODE_INPUTS; i++) {
            int32_t in = i < n->n_inputs ? n->inputs[i] : -1;
            nne_le_wr32(e + NNE_MF_N_INPUTS + 4 * i, in < 0 ? UINT32_MAX : (uint32_t)file_of[in]);
        }
    }

    uint8_t *me = b + w.sec_off[NNE_MF_SEC_META];
    nne_le_wr32(me, (uint32_t)g->n_meta);
    for (int32_t m = 0; m < g->n_meta; m++) {
        uint8_t *e = me + NNE_MF_TABLE_HEADER + (size_t)m * NNE_MF_META_SIZE;
        put_string(&w, e, g->meta[m].key);
        put_string(&w, e + 8, g->meta[m].value);
    }

    if (g->n_attached) {
        uint8_t *ae = b + w.sec_off[NNE_MF_SEC_ATTACHED];
        nne_le_wr32(ae, (uint32_t)g->n_attached);
        for (int32_t i = 0; i < g->n_attached; i++) {
            uint8_t *e = ae + NNE_MF_TABLE_HEADER + (size_t)i * NNE_MF_ATTACHED_SIZE;
            nne_le_wr64(e + NNE_MF_A_OFFSET, att_off[i]);
            nne_le_wr64(e + NNE_MF_A_SIZE, att_size[i]);
            memcpy(ae + att_off[i], att[i], att_size[i]);
        }
    }

    /* Section table, then the header and the checksums. ATTACHED is optional: a reader
     * that does not know it reads the main graph alone (docs/model-format.md). */
    for (int t = 1; t <= n_sec; t++) {
        uint8_t *se = b + NNE_MF_HEADER_SIZE + (size_t)(t - 1) * NNE_MF_SECTION_ENTRY_SIZE;
        nne_le_wr32(se + NNE_MF_SE_TYPE, (uint32_t)t);
        if (t == NNE_MF_SEC_ATTACHED) nne_le_wr32(se + NNE_MF_SE_FLAGS, NNE_MF_SECTION_OPTIONAL);
        nne_le_wr64(se + NNE_MF_SE_OFFSET, w.sec_off[t]);
        nne_le_wr64(se + NNE_MF_SE_SIZE, w.sec_size[t]);
        nne_le_wr32(se + NNE_MF_SE_CRC, nne_crc32(0, b + w.sec_off[t], w.sec_size[t]));
    }
    memcpy(b + NNE_MF_OFF_MAGIC, NNE_MODEL_MAGIC, 8);
    nne_le_wr32(b + NNE_MF_OFF_VERSION, NNE_MODEL_VERSION);
    nne_le_wr32(b + NNE_MF_OFF_HEADER_SIZE, NNE_MF_HEADER_SIZE);
    nne_le_wr32(b + NNE_MF_OFF_SECTION_ESIZE, NNE_MF_SECTION_ENTRY_SIZE);
    nne_le_wr32(b + NNE_MF_OFF_SECTION_COUNT, (uint32_t)n_sec);
    nne_le_wr64(b + NNE_MF_OFF_FILE_SIZE, file_size);
    nne_le_wr32(b + NNE_MF_OFF_FILE_CRC, nne_mf_file_crc(b, file_size));

    *out = w.buf;
    *out_size = file_size;
    w.buf = NULL;
    s = NNE_OK;
done:
    for (int32_t i = 0; i < NNE_MAX_ATTACHED; i++) nne_free(att[i]);
    nne_free(w.buf);
    nne_free(order);
    nne_free(file_of);
    return s;
}

nne_status nne_model_write_file(const nne_graph *g, const char *path) {
    return nne_model_write_file_opts(g, NULL, path);
}

nne_status nne_model_write_file_opts(const nne_graph *g, const nne_model_write_opts *o,
                                     const char *path) {
    if (!path || !*path) return nne_error(NNE_ERR_INVALID_ARG, "model write: empty path");
    uint8_t *buf = NULL;
    size_t size = 0;
    nne_status s = nne_model_write_mem_opts(g, o, &buf, &size);
    if (s) return s;
    s = nne_file_write_atomic(path, buf, size);
    nne_free(buf);
    return s;
}

/* ======================================================================================
 * Reader
 * ====================================================================================== */

typedef struct mf_string {
    const char *s; /* points into the file buffer; NUL-terminated */
    uint32_t len;
} mf_string;

typedef struct mf_tensor {
    mf_string name;
    nne_dtype dtype;
    nne_tensor_kind kind;
    nne_shape shape;
    int32_t q_axis;
    uint32_t q_count;
    bool q_pow2;
    const uint8_t *q_data; /* scale f32[q_count] then zero_point i32[q_count] */
    const uint8_t *data;   /* constants */
} mf_tensor;

typedef struct mf_node {
    mf_string name;
    nne_op_type op;
    int32_t n_inputs;
    int32_t inputs[NNE_MAX_NODE_INPUTS];
    nne_op_params params;
} mf_node;

typedef struct mf_reader {
    const char *prefix; /* "model" or the file's path, first in every message */
    const uint8_t *buf;
    size_t size;
    uint64_t sec_off[NNE_MF_SEC_KNOWN_COUNT + 1];
    uint64_t sec_size[NNE_MF_SEC_KNOWN_COUNT + 1];
    bool sec_present[NNE_MF_SEC_KNOWN_COUNT + 1];
    /* Referenced ranges must appear in increasing order without overlap: these are the
     * first offsets the next reference may use. */
    uint64_t str_next, quant_next, data_next;
    uint32_t n_tensors, n_nodes, n_meta, n_inputs, n_outputs, n_fixed;
    mf_string graph_name;
    mf_tensor *tensors;
    mf_node *nodes;
    mf_string *meta; /* [2 * n_meta]: key, value */
    int depth;       /* 0: the file; 1: an attached graph's file (no attachments of its own) */
    uint32_t n_attached;
    const uint8_t *att[NNE_MAX_ATTACHED]; /* the attached files, inside ATTACHED */
    uint64_t att_size[NNE_MAX_ATTACHED];
} mf_reader;

static nne_status bad(const mf_reader *r, nne_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Set the error "<prefix>: <message>" and return s. */
static nne_status bad(const mf_reader *r, nne_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nne_error(s, "%s: %s", r->prefix, msg);
}

/* An error from the graph layer while rebuilding: keep its message, say where it came from,
 * and report a file that the graph layer rejects as a format error. */
static nne_status bad_graph(const mf_reader *r, nne_status s, const char *where) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nne_last_error());
    switch (s) {
    case NNE_ERR_NOMEM:
    case NNE_ERR_LIMIT:
    case NNE_ERR_UNSUPPORTED:
    case NNE_ERR_INTERNAL:
        break;
    default:
        s = NNE_ERR_FORMAT;
    }
    return nne_error(s, "%s: %s: %s", r->prefix, where, msg);
}

static int32_t rd_i32(const uint8_t *p) {
    uint32_t v = nne_le_rd32(p);
    return v <= INT32_MAX ? (int32_t)v : -(int32_t)(UINT32_MAX - v) - 1;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static nne_status read_header(mf_reader *r) {
    const uint8_t *b = r->buf;
    if (r->size < 8 || memcmp(b, NNE_MODEL_MAGIC, 8) != 0)
        return bad(r, NNE_ERR_FORMAT, "not an nnedge model (bad magic)");
    if (r->size < NNE_MF_HEADER_SIZE)
        return bad(r, NNE_ERR_FORMAT, "truncated: %zu bytes, the header alone is %d", r->size,
                   NNE_MF_HEADER_SIZE);
    uint32_t version = nne_le_rd32(b + NNE_MF_OFF_VERSION);
    if (version != NNE_MODEL_VERSION)
        return bad(r, NNE_ERR_UNSUPPORTED, "format version %u (this reader supports %d)", version,
                   NNE_MODEL_VERSION);
    uint32_t flags = nne_le_rd32(b + NNE_MF_OFF_FLAGS);
    if (flags) return bad(r, NNE_ERR_UNSUPPORTED, "header flags 0x%08x (none are defined)", flags);
    uint32_t hsize = nne_le_rd32(b + NNE_MF_OFF_HEADER_SIZE);
    uint32_t esize = nne_le_rd32(b + NNE_MF_OFF_SECTION_ESIZE);
    if (hsize != NNE_MF_HEADER_SIZE || esize != NNE_MF_SECTION_ENTRY_SIZE)
        return bad(r, NNE_ERR_FORMAT, "header size %u / section entry size %u (want %d / %d)",
                   hsize, esize, NNE_MF_HEADER_SIZE, NNE_MF_SECTION_ENTRY_SIZE);
    uint64_t fsize = nne_le_rd64(b + NNE_MF_OFF_FILE_SIZE);
    if (fsize != r->size)
        return bad(r, NNE_ERR_FORMAT,
                   "the header records %llu bytes but there are %zu (truncated or trailing "
                   "data)",
                   (unsigned long long)fsize, r->size);
    if (fsize > NNE_MF_MAX_FILE_SIZE)
        return bad(r, NNE_ERR_LIMIT, "%llu bytes exceeds the %llu-byte limit",
                   (unsigned long long)fsize, (unsigned long long)NNE_MF_MAX_FILE_SIZE);
    if (!all_zero(b + NNE_MF_OFF_RESERVED, NNE_MF_HEADER_SIZE - NNE_MF_OFF_RESERVED))
        return bad(r, NNE_ERR_FORMAT, "reserved header bytes are not zero");
    uint32_t stored = nne_le_rd32(b + NNE_MF_OFF_FILE_CRC);
    uint32_t crc = nne_mf_file_crc(b, r->size);
    if (stored != crc)
        return bad(r, NNE_ERR_CHECKSUM, "file checksum mismatch (stored %08x, computed %08x)",
                   stored, crc);
    return NNE_OK;
}

static nne_status read_sections(mf_reader *r) {
    const uint8_t *b = r->buf;
    uint32_t count = nne_le_rd32(b + NNE_MF_OFF_SECTION_COUNT);
    if (count > NNE_MF_MAX_SECTIONS)
        return bad(r, NNE_ERR_LIMIT, "%u sections (at most %d)", count, NNE_MF_MAX_SECTIONS);
    uint64_t table_end = NNE_MF_HEADER_SIZE + (uint64_t)count * NNE_MF_SECTION_ENTRY_SIZE;
    if (table_end > r->size)
        return bad(r, NNE_ERR_FORMAT, "section table (%u entries) runs past the end of the file",
                   count);
    uint64_t off[NNE_MF_MAX_SECTIONS], sz[NNE_MF_MAX_SECTIONS];
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *se = b + NNE_MF_HEADER_SIZE + (size_t)i * NNE_MF_SECTION_ENTRY_SIZE;
        uint32_t type = nne_le_rd32(se + NNE_MF_SE_TYPE);
        uint32_t flags = nne_le_rd32(se + NNE_MF_SE_FLAGS);
        const char *tname =
            type >= 1 && type <= NNE_MF_SEC_KNOWN_COUNT ? g_section_names[type] : "unknown";
        off[i] = nne_le_rd64(se + NNE_MF_SE_OFFSET);
        sz[i] = nne_le_rd64(se + NNE_MF_SE_SIZE);
        if (nne_le_rd32(se + NNE_MF_SE_RESERVED))
            return bad(r, NNE_ERR_FORMAT, "section %u (%s): reserved field is not zero", i, tname);
        if (flags & ~NNE_MF_SECTION_OPTIONAL)
            return bad(r, NNE_ERR_UNSUPPORTED, "section %u (%s): unknown flags 0x%08x", i, tname,
                       flags);
        if (off[i] < table_end || off[i] > r->size || sz[i] > r->size - off[i])
            return bad(r, NNE_ERR_FORMAT,
                       "section %u (%s): range [%llu, +%llu) is outside [%llu, %zu)", i, tname,
                       (unsigned long long)off[i], (unsigned long long)sz[i],
                       (unsigned long long)table_end, r->size);
        uint64_t align = type == NNE_MF_SEC_WEIGHTS || type == NNE_MF_SEC_ATTACHED
                             ? NNE_MF_WEIGHTS_ALIGN
                             : NNE_MF_SECTION_ALIGN;
        if (off[i] % align)
            return bad(r, NNE_ERR_FORMAT, "section %u (%s): offset %llu is not %llu-aligned", i,
                       tname, (unsigned long long)off[i], (unsigned long long)align);
        uint32_t crc = nne_crc32(0, b + off[i], (size_t)sz[i]);
        if (crc != nne_le_rd32(se + NNE_MF_SE_CRC))
            return bad(r, NNE_ERR_CHECKSUM, "section %u (%s): checksum mismatch", i, tname);
        for (uint32_t j = 0; j < i; j++)
            if (sz[i] && sz[j] && off[i] < off[j] + sz[j] && off[j] < off[i] + sz[i])
                return bad(r, NNE_ERR_FORMAT, "sections %u and %u overlap", j, i);
        if (type == NNE_MF_SEC_ATTACHED && r->depth > 0)
            return bad(r, NNE_ERR_FORMAT,
                       "section %u (%s): an attached graph has attached graphs of its own", i,
                       tname);
        if (type >= 1 && type <= NNE_MF_SEC_KNOWN_COUNT) {
            if (r->sec_present[type])
                return bad(r, NNE_ERR_FORMAT, "section %s appears twice", tname);
            r->sec_present[type] = true;
            r->sec_off[type] = off[i];
            r->sec_size[type] = sz[i];
        } else if (!(flags & NNE_MF_SECTION_OPTIONAL)) {
            return bad(r, NNE_ERR_UNSUPPORTED, "section %u has unknown required type %u", i, type);
        }
    }
    for (int t = 1; t <= NNE_MF_SEC_REQUIRED_COUNT; t++)
        if (!r->sec_present[t])
            return bad(r, NNE_ERR_FORMAT, "section %s is missing", g_section_names[t]);
    return NNE_OK;
}

static const uint8_t *sec(const mf_reader *r, int type) { return r->buf + r->sec_off[type]; }

/* Decode a table header {count, reserved}: count within `limit`, and the section exactly
 * large enough for count entries (checked before anything proportional is allocated). */
static nne_status read_table(const mf_reader *r, int type, uint32_t entry, uint32_t limit,
                             uint32_t *count) {
    const char *name = g_section_names[type];
    uint64_t size = r->sec_size[type];
    if (size < NNE_MF_TABLE_HEADER)
        return bad(r, NNE_ERR_FORMAT, "%s: %llu bytes, too small for its header", name,
                   (unsigned long long)size);
    const uint8_t *p = sec(r, type);
    uint32_t n = nne_le_rd32(p);
    if (n > limit) return bad(r, NNE_ERR_LIMIT, "%s: %u entries (at most %u)", name, n, limit);
    if (nne_le_rd32(p + 4)) return bad(r, NNE_ERR_FORMAT, "%s: reserved field is not zero", name);
    if (size != NNE_MF_TABLE_HEADER + (uint64_t)n * entry)
        return bad(r, NNE_ERR_FORMAT, "%s: %u entries need %llu bytes, the section has %llu", name,
                   n, (unsigned long long)(NNE_MF_TABLE_HEADER + (uint64_t)n * entry),
                   (unsigned long long)size);
    *count = n;
    return NNE_OK;
}

/* Decode the string ref at p: inside STRINGS, NUL-terminated, no embedded NUL, at most `max`
 * bytes, and after every string referenced before it. */
static nne_status read_string(mf_reader *r, const uint8_t *p, uint32_t max, const char *what,
                              mf_string *out) {
    uint64_t off = nne_le_rd32(p), len = nne_le_rd32(p + 4);
    uint64_t size = r->sec_size[NNE_MF_SEC_STRINGS];
    if (len > max)
        return bad(r, NNE_ERR_LIMIT, "%s: string of %llu bytes (at most %u)", what,
                   (unsigned long long)len, max);
    if (off < r->str_next)
        return bad(r, NNE_ERR_FORMAT, "%s: string at %llu overlaps or precedes the previous one",
                   what, (unsigned long long)off);
    if (off + len >= size) /* off, len < 2^32: no overflow; the NUL must be inside too */
        return bad(r, NNE_ERR_FORMAT, "%s: string [%llu, +%llu] outside STRINGS (%llu bytes)", what,
                   (unsigned long long)off, (unsigned long long)len, (unsigned long long)size);
    const char *s = (const char *)sec(r, NNE_MF_SEC_STRINGS) + off;
    if (s[len] != 0 || memchr(s, 0, (size_t)len))
        return bad(r, NNE_ERR_FORMAT, "%s: string at %llu is not exactly %llu bytes + NUL", what,
                   (unsigned long long)off, (unsigned long long)len);
    r->str_next = off + len + 1;
    out->s = s;
    out->len = (uint32_t)len;
    return NNE_OK;
}

/* Validate the quantization fields of tensor entry e (decoded shape in t). */
static nne_status read_quant(mf_reader *r, const uint8_t *e, uint32_t i, mf_tensor *t) {
    int32_t axis = rd_i32(e + NNE_MF_T_Q_AXIS);
    uint32_t count = nne_le_rd32(e + NNE_MF_T_Q_COUNT);
    uint32_t flags = nne_le_rd32(e + NNE_MF_T_Q_FLAGS);
    uint64_t qoff = nne_le_rd64(e + NNE_MF_T_Q_OFFSET);
    const char *tn = t->name.s;
    if (nne_le_rd32(e + NNE_MF_T_Q_RESERVED))
        return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): reserved quantization field not zero", i,
                   tn);
    if (flags & ~NNE_MF_QUANT_POW2)
        return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): unknown quantization flags 0x%x", i, tn,
                   flags);
    t->q_axis = -1;
    if (count == 0) {
        if (axis != -1 || flags || qoff)
            return bad(r, NNE_ERR_FORMAT,
                       "tensor %u ('%s'): unquantized, but axis/flags/offset are not -1/0/0", i,
                       tn);
        return NNE_OK;
    }
    if (axis < -1 || axis >= t->shape.ndim)
        return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): quantization axis %d for rank %d", i, tn,
                   (int)axis, (int)t->shape.ndim);
    uint64_t want = axis < 0 ? 1 : (uint64_t)t->shape.dim[axis];
    if (count != want)
        return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): %u quantization pairs, axis %d needs %llu",
                   i, tn, count, (int)axis, (unsigned long long)want);
    uint64_t qsize = r->sec_size[NNE_MF_SEC_QUANT], bytes = (uint64_t)count * 8;
    if (qoff % 4 || qoff < r->quant_next || qoff > qsize || bytes > qsize - qoff)
        return bad(r, NNE_ERR_FORMAT,
                   "tensor %u ('%s'): quantization arrays [%llu, +%llu) misaligned, overlapping "
                   "or outside QUANT (%llu bytes)",
                   i, tn, (unsigned long long)qoff, (unsigned long long)bytes,
                   (unsigned long long)qsize);
    r->quant_next = qoff + bytes;
    const uint8_t *q = sec(r, NNE_MF_SEC_QUANT) + qoff;
    for (uint32_t k = 0; k < count; k++) {
        float sc = nne_le_rdf32(q + 4 * (size_t)k);
        if (!isfinite(sc) || !(sc > 0.0f))
            return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): scale[%u] = %g is not finite and > 0",
                       i, tn, k, (double)sc);
        int ex;
        if ((flags & NNE_MF_QUANT_POW2) && frexpf(sc, &ex) != 0.5f)
            return bad(r, NNE_ERR_FORMAT,
                       "tensor %u ('%s'): pow2 scale[%u] = %g is not a power "
                       "of two",
                       i, tn, k, (double)sc);
        int32_t zp = rd_i32(q + 4 * ((size_t)count + k));
        if ((t->dtype == NNE_S8 && (zp < -128 || zp > 127)) ||
            (t->dtype == NNE_U8 && (zp < 0 || zp > 255)))
            return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): zero_point[%u] = %d outside %s range",
                       i, tn, k, (int)zp, nne_dtype_name(t->dtype));
    }
    t->q_axis = axis;
    t->q_count = count;
    t->q_pow2 = (flags & NNE_MF_QUANT_POW2) != 0;
    t->q_data = q;
    return NNE_OK;
}

static nne_status read_tensor(mf_reader *r, uint32_t i, mf_tensor *t) {
    const uint8_t *e =
        sec(r, NNE_MF_SEC_TENSORS) + NNE_MF_TABLE_HEADER + (size_t)i * NNE_MF_TENSOR_SIZE;
    char what[48];
    snprintf(what, sizeof what, "tensor %u name", i);
    nne_status s = read_string(r, e + NNE_MF_T_NAME_OFF, NNE_MAX_NAME, what, &t->name);
    if (s) return s;
    const char *tn = t->name.s;
    uint32_t dtype = nne_le_rd32(e + NNE_MF_T_DTYPE), ndim = nne_le_rd32(e + NNE_MF_T_NDIM);
    t->kind = (nne_tensor_kind)nne_le_rd32(e + NNE_MF_T_KIND); /* checked by the caller */
    if (dtype == NNE_DTYPE_INVALID || dtype >= NNE_DTYPE_COUNT)
        return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): invalid dtype %u", i, tn, dtype);
    t->dtype = (nne_dtype)dtype;
    if (nne_le_rd32(e + NNE_MF_T_RESERVED))
        return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): reserved field is not zero", i, tn);
    if (ndim > NNE_MAX_DIMS)
        return bad(r, NNE_ERR_LIMIT, "tensor %u ('%s'): rank %u (at most %d)", i, tn, ndim,
                   NNE_MAX_DIMS);
    memset(&t->shape, 0, sizeof t->shape);
    t->shape.ndim = (int32_t)ndim;
    for (uint32_t d = 0; d < NNE_MAX_DIMS; d++) {
        uint64_t v = nne_le_rd64(e + NNE_MF_T_DIMS + 8 * d);
        if (d >= ndim) {
            if (v)
                return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): unused dimension %u is not 0", i,
                           tn, d);
            continue;
        }
        if (v > NNE_MAX_DIM)
            return bad(r, NNE_ERR_LIMIT, "tensor %u ('%s'): dimension %u is %llu (at most %d)", i,
                       tn, d, (unsigned long long)v, NNE_MAX_DIM);
        t->shape.dim[d] = (int64_t)v;
    }
    if ((s = nne_shape_validate(&t->shape))) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", nne_last_error());
        return bad(r, s, "tensor %u ('%s'): %s", i, tn, msg);
    }
    if ((s = read_quant(r, e, i, t))) return s;

    uint64_t doff = nne_le_rd64(e + NNE_MF_T_DATA_OFFSET);
    uint64_t dsize = nne_le_rd64(e + NNE_MF_T_DATA_SIZE);
    t->data = NULL;
    if (t->kind != NNE_TENSOR_CONSTANT) {
        if (doff || dsize)
            return bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): %s tensor with a data range", i, tn,
                       g_kind_names[t->kind]);
        return NNE_OK;
    }
    /* numel <= 2^34 and dtype size <= 4: the product cannot overflow. */
    uint64_t want = (uint64_t)nne_shape_numel(&t->shape) * nne_dtype_size(t->dtype);
    uint64_t wsize = r->sec_size[NNE_MF_SEC_WEIGHTS];
    if (dsize != want)
        return bad(r, NNE_ERR_FORMAT,
                   "tensor %u ('%s'): %llu data bytes, shape and dtype need "
                   "%llu",
                   i, tn, (unsigned long long)dsize, (unsigned long long)want);
    if (doff % NNE_MF_WEIGHTS_ALIGN || doff < r->data_next || doff > wsize || dsize > wsize - doff)
        return bad(r, NNE_ERR_FORMAT,
                   "tensor %u ('%s'): data [%llu, +%llu) misaligned, overlapping or outside "
                   "WEIGHTS (%llu bytes)",
                   i, tn, (unsigned long long)doff, (unsigned long long)dsize,
                   (unsigned long long)wsize);
    r->data_next = doff + dsize;
    t->data = sec(r, NNE_MF_SEC_WEIGHTS) + doff;
    return NNE_OK;
}

static nne_status read_node(mf_reader *r, uint32_t k, mf_node *n) {
    const uint8_t *e =
        sec(r, NNE_MF_SEC_NODES) + NNE_MF_TABLE_HEADER + (size_t)k * NNE_MF_NODE_SIZE;
    char what[48];
    snprintf(what, sizeof what, "node %u name", k);
    nne_status s = read_string(r, e + NNE_MF_N_NAME_OFF, NNE_MAX_NAME, what, &n->name);
    if (s) return s;
    const char *nn = n->name.s;
    uint32_t op = nne_le_rd32(e + NNE_MF_N_OP), n_in = nne_le_rd32(e + NNE_MF_N_N_INPUTS);
    uint32_t output = nne_le_rd32(e + NNE_MF_N_OUTPUT);
    if (op == NNE_OP_INVALID || op >= NNE_OP_COUNT)
        return bad(r, NNE_ERR_FORMAT, "node %u ('%s'): unknown op type %u", k, nn, op);
    if (n_in > NNE_MAX_NODE_INPUTS)
        return bad(r, NNE_ERR_LIMIT, "node %u ('%s'): %u inputs (at most %d)", k, nn, n_in,
                   NNE_MAX_NODE_INPUTS);
    if (nne_le_rd32(e + NNE_MF_N_RESERVED))
        return bad(r, NNE_ERR_FORMAT, "node %u ('%s'): reserved field is not zero", k, nn);
    /* Tensor order: node k produces tensor n_fixed + k (docs/model-format.md). */
    if (output != r->n_fixed + k)
        return bad(r, NNE_ERR_FORMAT, "node %u ('%s'): output is tensor %u, must be %u", k, nn,
                   output, r->n_fixed + k);
    n->op = (nne_op_type)op;
    n->n_inputs = (int32_t)n_in;
    for (int w = 0; w < NNE_OP_PARAM_WORDS; w++)
        n->params.words[w] = nne_le_rd32(e + NNE_MF_N_PARAMS + 4 * w);
    for (uint32_t j = 0; j < NNE_MAX_NODE_INPUTS; j++) {
        int32_t in = rd_i32(e + NNE_MF_N_INPUTS + 4 * j);
        /* Range and order are the graph builder's to check; slot hygiene is ours. */
        if (j >= n_in && in != -1)
            return bad(r, NNE_ERR_FORMAT, "node %u ('%s'): unused input slot %u is not -1", k, nn,
                       j);
        n->inputs[j] = in;
    }
    return NNE_OK;
}

/* ATTACHED: {count, reserved}, count {offset, size} entries, then the files, 64-aligned, in
 * entry order, without overlap. The files themselves are parsed in pass 2. */
static nne_status read_attached(mf_reader *r) {
    const uint64_t size = r->sec_size[NNE_MF_SEC_ATTACHED];
    const uint8_t *p = sec(r, NNE_MF_SEC_ATTACHED);
    if (size < NNE_MF_TABLE_HEADER)
        return bad(r, NNE_ERR_FORMAT, "ATTACHED: %llu bytes, too small for its header",
                   (unsigned long long)size);
    const uint32_t n = nne_le_rd32(p);
    if (n > NNE_MAX_ATTACHED)
        return bad(r, NNE_ERR_LIMIT, "ATTACHED: %u graphs (at most %d)", n, NNE_MAX_ATTACHED);
    if (n == 0) return bad(r, NNE_ERR_FORMAT, "ATTACHED: no graphs (omit the section)");
    if (nne_le_rd32(p + 4)) return bad(r, NNE_ERR_FORMAT, "ATTACHED: reserved field is not zero");
    uint64_t next = NNE_MF_TABLE_HEADER + (uint64_t)n * NNE_MF_ATTACHED_SIZE;
    if (next > size)
        return bad(r, NNE_ERR_FORMAT, "ATTACHED: %u entries need %llu bytes, the section has %llu",
                   n, (unsigned long long)next, (unsigned long long)size);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + NNE_MF_TABLE_HEADER + (size_t)i * NNE_MF_ATTACHED_SIZE;
        const uint64_t off = nne_le_rd64(e + NNE_MF_A_OFFSET), sz = nne_le_rd64(e + NNE_MF_A_SIZE);
        if (off % NNE_MF_WEIGHTS_ALIGN || off < next || off > size || sz > size - off)
            return bad(r, NNE_ERR_FORMAT,
                       "ATTACHED: graph %u at [%llu, +%llu) is misaligned, overlapping or "
                       "outside the section (%llu bytes)",
                       i, (unsigned long long)off, (unsigned long long)sz,
                       (unsigned long long)size);
        next = off + sz;
        r->att[i] = p + off;
        r->att_size[i] = sz;
    }
    r->n_attached = n;
    return NNE_OK;
}

static nne_status read_mem_impl(const uint8_t *buf, size_t size, const char *prefix, int depth,
                                nne_graph **out);

/* Pass 2 for ATTACHED: parse each file with this reader and attach it (names unique). */
static nne_status build_attached(const mf_reader *r, nne_graph *g) {
    for (uint32_t i = 0; i < r->n_attached; i++) {
        char prefix[320];
        snprintf(prefix, sizeof prefix, "%s: ATTACHED graph %u", r->prefix, i);
        nne_graph *a = NULL;
        nne_status s = read_mem_impl(r->att[i], (size_t)r->att_size[i], prefix, r->depth + 1, &a);
        if (s) return s;
        if (nne_graph_find_attached(g, a->name)) {
            s = bad(r, NNE_ERR_FORMAT, "ATTACHED: graph %u: a second graph named '%s'", i, a->name);
            nne_graph_free(a);
            return s;
        }
        if ((s = nne_graph_attach(g, a))) {
            nne_graph_free(a);
            return bad_graph(r, s, "ATTACHED");
        }
    }
    return NNE_OK;
}

/* Pass 1: decode and check everything that is about the encoding. */
static nne_status decode(mf_reader *r) {
    nne_status s;
    if ((s = read_header(r)) || (s = read_sections(r))) return s;

    /* GRAPH: name, input and output counts and refs. */
    uint64_t gsize = r->sec_size[NNE_MF_SEC_GRAPH];
    const uint8_t *gp = sec(r, NNE_MF_SEC_GRAPH);
    if (gsize < NNE_MF_GRAPH_HEADER)
        return bad(r, NNE_ERR_FORMAT, "GRAPH: %llu bytes, too small", (unsigned long long)gsize);
    r->n_inputs = nne_le_rd32(gp + 8);
    r->n_outputs = nne_le_rd32(gp + 12);
    if (r->n_inputs > NNE_MAX_TENSORS || r->n_outputs > NNE_MAX_TENSORS)
        return bad(r, NNE_ERR_LIMIT, "GRAPH: %u inputs, %u outputs (at most %d each)", r->n_inputs,
                   r->n_outputs, NNE_MAX_TENSORS);
    if (gsize != NNE_MF_GRAPH_HEADER + 4 * ((uint64_t)r->n_inputs + r->n_outputs))
        return bad(r, NNE_ERR_FORMAT, "GRAPH: %llu bytes do not hold %u inputs and %u outputs",
                   (unsigned long long)gsize, r->n_inputs, r->n_outputs);
    if ((s = read_table(r, NNE_MF_SEC_TENSORS, NNE_MF_TENSOR_SIZE, NNE_MAX_TENSORS,
                        &r->n_tensors)) ||
        (s = read_table(r, NNE_MF_SEC_NODES, NNE_MF_NODE_SIZE, NNE_MAX_NODES, &r->n_nodes)) ||
        (s = read_table(r, NNE_MF_SEC_META, NNE_MF_META_SIZE, NNE_MAX_META, &r->n_meta)))
        return s;
    for (uint32_t i = 0; i < r->n_inputs + r->n_outputs; i++) {
        uint32_t t = nne_le_rd32(gp + NNE_MF_GRAPH_HEADER + 4 * (size_t)i);
        if (t >= r->n_tensors)
            return bad(r, NNE_ERR_FORMAT, "GRAPH: %s %u is tensor %u of %u",
                       i < r->n_inputs ? "input" : "output", i < r->n_inputs ? i : i - r->n_inputs,
                       t, r->n_tensors);
    }
    if ((s = read_string(r, gp, NNE_MAX_NAME, "graph name", &r->graph_name))) return s;

    /* Tensor order: inputs and constants, then one activation per node, in node order. */
    const uint8_t *tp = sec(r, NNE_MF_SEC_TENSORS) + NNE_MF_TABLE_HEADER;
    r->n_fixed = r->n_tensors;
    for (uint32_t i = 0; i < r->n_tensors; i++) {
        uint32_t kind = nne_le_rd32(tp + (size_t)i * NNE_MF_TENSOR_SIZE + NNE_MF_T_KIND);
        if (kind > NNE_TENSOR_CONSTANT)
            return bad(r, NNE_ERR_FORMAT, "tensor %u: invalid kind %u", i, kind);
        if (kind == NNE_TENSOR_ACTIVATION && r->n_fixed == r->n_tensors) r->n_fixed = i;
        if (kind != NNE_TENSOR_ACTIVATION && r->n_fixed < i)
            return bad(r, NNE_ERR_FORMAT,
                       "tensor %u: %s tensor after activation tensor %u (activations come last)", i,
                       g_kind_names[kind], r->n_fixed);
    }
    if (r->n_tensors - r->n_fixed != r->n_nodes)
        return bad(r, NNE_ERR_FORMAT, "%u activation tensors for %u nodes (need one each)",
                   r->n_tensors - r->n_fixed, r->n_nodes);

    /* Each entry below takes at least as many file bytes as its decoded struct justifies. */
    r->tensors = nne_calloc(r->n_tensors, sizeof *r->tensors);
    r->nodes = nne_calloc(r->n_nodes, sizeof *r->nodes);
    r->meta = nne_calloc(2 * (size_t)r->n_meta, sizeof *r->meta);
    if (!r->tensors || !r->nodes || !r->meta) return NNE_ERR_NOMEM;
    for (uint32_t i = 0; i < r->n_tensors; i++)
        if ((s = read_tensor(r, i, &r->tensors[i]))) return s;
    for (uint32_t k = 0; k < r->n_nodes; k++)
        if ((s = read_node(r, k, &r->nodes[k]))) return s;
    const uint8_t *mp = sec(r, NNE_MF_SEC_META) + NNE_MF_TABLE_HEADER;
    for (uint32_t m = 0; m < r->n_meta; m++) {
        char what[48];
        snprintf(what, sizeof what, "metadata %u key", m);
        if ((s = read_string(r, mp + (size_t)m * NNE_MF_META_SIZE, NNE_MAX_NAME, what,
                             &r->meta[2 * m])))
            return s;
        snprintf(what, sizeof what, "metadata %u value", m);
        if ((s = read_string(r, mp + (size_t)m * NNE_MF_META_SIZE + 8, NNE_MAX_META_VALUE, what,
                             &r->meta[2 * m + 1])))
            return s;
    }
    return r->sec_present[NNE_MF_SEC_ATTACHED] ? read_attached(r) : NNE_OK;
}

/* Attach decoded quantization parameters to graph tensor `idx` via nne_quant_set. */
static nne_status set_quant(const mf_reader *r, nne_graph *g, int32_t idx, const mf_tensor *t) {
    if (t->q_count == 0) return NNE_OK;
    float *scale = nne_malloc((size_t)t->q_count * sizeof *scale);
    int32_t *zp = nne_malloc((size_t)t->q_count * sizeof *zp);
    nne_status s = NNE_ERR_NOMEM;
    if (scale && zp) {
        for (uint32_t k = 0; k < t->q_count; k++) {
            scale[k] = nne_le_rdf32(t->q_data + 4 * (size_t)k);
            zp[k] = rd_i32(t->q_data + 4 * ((size_t)t->q_count + k));
        }
        s = nne_quant_set(&g->tensors[idx].quant, t->q_axis, (int32_t)t->q_count, scale, zp,
                          t->q_pow2);
        if (s) s = bad_graph(r, s, t->name.s);
    }
    nne_free(scale);
    nne_free(zp);
    return s;
}

/* An f16 constant (storage only, docs/model-format.md) becomes an f32 constant of the same
 * values: every f16 value is exactly an f32 one, so the graph computes as if it had been
 * stored in f32 after rounding to f16. */
static nne_status add_widened(nne_graph *g, const mf_tensor *t, int32_t *idx) {
    const size_t n = (size_t)nne_shape_numel(&t->shape);
    float *f = nne_malloc(n * sizeof *f + 1);
    if (!f) return NNE_ERR_NOMEM;
    const uint8_t *d = t->data;
    for (size_t i = 0; i < n; i++) f[i] = nne_f16_to_f32((uint16_t)(d[2 * i] | d[2 * i + 1] << 8));
    const nne_status s = nne_graph_add_constant(g, t->name.s, NNE_F32, t->shape, f, idx);
    nne_free(f);
    return s;
}

/* Pass 2: rebuild the graph through the builder and let nne_graph_infer judge it. */
static nne_status build(const mf_reader *r, nne_graph **out) {
    nne_graph *g = NULL;
    nne_status s = nne_graph_create(r->graph_name.s, &g);
    if (s) return s;
    char where[64];
    for (uint32_t i = 0; i < r->n_fixed; i++) {
        const mf_tensor *t = &r->tensors[i];
        int32_t idx = -1;
        if (t->kind == NNE_TENSOR_INPUT)
            s = nne_graph_add_input(g, t->name.s, t->dtype, t->shape, &idx);
        else if (t->dtype == NNE_F16)
            s = add_widened(g, t, &idx);
        else
            s = nne_graph_add_constant(g, t->name.s, t->dtype, t->shape, t->data, &idx);
        if (s) {
            snprintf(where, sizeof where, "tensor %u", i); /* the graph names it */
            s = bad_graph(r, s, where);
            goto fail;
        }
        if (idx != (int32_t)i) {
            s = bad(r, NNE_ERR_INTERNAL, "tensor %u became graph tensor %d", i, (int)idx);
            goto fail;
        }
        if ((s = set_quant(r, g, idx, t))) goto fail;
    }
    for (uint32_t k = 0; k < r->n_nodes; k++) {
        const mf_node *n = &r->nodes[k];
        const mf_tensor *t = &r->tensors[r->n_fixed + k];
        int32_t idx = -1;
        s = nne_graph_add_node(g, n->name.s, n->op, &n->params, n->inputs, n->n_inputs, t->name.s,
                               &idx);
        if (s) {
            snprintf(where, sizeof where, "node %u", k);
            s = bad_graph(r, s, where);
            goto fail;
        }
        if (idx != (int32_t)(r->n_fixed + k)) {
            s = bad(r, NNE_ERR_INTERNAL, "node %u output became graph tensor %d", k, (int)idx);
            goto fail;
        }
        if ((s = set_quant(r, g, idx, t))) goto fail;
    }
    const uint8_t *gp = sec(r, NNE_MF_SEC_GRAPH) + NNE_MF_GRAPH_HEADER;
    /* The builder lists inputs in the order they were added; the file must agree. */
    bool inputs_ok = g->n_inputs == (int32_t)r->n_inputs;
    for (uint32_t i = 0; inputs_ok && i < r->n_inputs; i++)
        inputs_ok = g->inputs[i] == (int32_t)nne_le_rd32(gp + 4 * (size_t)i);
    if (!inputs_ok) {
        s = bad(r, NNE_ERR_FORMAT,
                "GRAPH: the input list must name the %d input tensors in table order",
                (int)g->n_inputs);
        goto fail;
    }
    for (uint32_t i = 0; i < r->n_outputs; i++) {
        uint32_t t = nne_le_rd32(gp + 4 * ((size_t)r->n_inputs + i));
        if ((s = nne_graph_mark_output(g, (int32_t)t))) {
            snprintf(where, sizeof where, "GRAPH output %u", i);
            s = bad_graph(r, s, where);
            goto fail;
        }
    }
    for (uint32_t m = 0; m < r->n_meta; m++) {
        const char *key = r->meta[2 * m].s;
        if (nne_graph_get_meta(g, key)) {
            s = bad(r, NNE_ERR_FORMAT, "metadata %u: duplicate key '%s'", m, key);
            goto fail;
        }
        if ((s = nne_graph_set_meta(g, key, r->meta[2 * m + 1].s))) {
            snprintf(where, sizeof where, "metadata %u ('%s')", m, key);
            s = bad_graph(r, s, where);
            goto fail;
        }
    }
    if ((s = nne_graph_infer(g))) {
        s = bad_graph(r, s, "invalid graph");
        goto fail;
    }
    /* The stored activation dtypes and shapes are redundant with inference: check them. */
    for (uint32_t i = r->n_fixed; i < r->n_tensors; i++) {
        const mf_tensor *t = &r->tensors[i];
        const nne_tensor *gt = &g->tensors[i];
        if (gt->dtype != t->dtype || !nne_shape_equal(&gt->shape, &t->shape)) {
            char a[96], b[96];
            s = bad(r, NNE_ERR_FORMAT, "tensor %u ('%s'): stored as %s %s, inference gives %s %s",
                    i, t->name.s, nne_dtype_name(t->dtype), nne_shape_str(&t->shape, a, sizeof a),
                    nne_dtype_name(gt->dtype), nne_shape_str(&gt->shape, b, sizeof b));
            goto fail;
        }
    }
    if ((s = build_attached(r, g))) goto fail;
    *out = g;
    return NNE_OK;
fail:
    nne_graph_free(g);
    return s;
}

static nne_status read_mem_impl(const uint8_t *buf, size_t size, const char *prefix, int depth,
                                nne_graph **out) {
    mf_reader r;
    memset(&r, 0, sizeof r);
    r.prefix = prefix;
    r.depth = depth;
    r.buf = buf;
    r.size = size;
    nne_status s = decode(&r);
    if (!s) s = build(&r, out);
    nne_free(r.tensors);
    nne_free(r.nodes);
    nne_free(r.meta);
    return s;
}

nne_status nne_model_read_mem(const uint8_t *buf, size_t size, nne_graph **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "model read: NULL output");
    *out = NULL;
    if (!buf && size) return nne_error(NNE_ERR_INVALID_ARG, "model read: NULL buffer");
    static const uint8_t empty[1] = {0};
    return read_mem_impl(buf ? buf : empty, size, "model", 0, out);
}

nne_status nne_model_read_file(const char *path, nne_graph **out) {
    if (!out) return nne_error(NNE_ERR_INVALID_ARG, "model read: NULL output");
    *out = NULL;
    if (!path) return nne_error(NNE_ERR_INVALID_ARG, "model read: NULL path");
    uint8_t *buf = NULL;
    size_t size = 0;
    nne_status s = nne_file_read(path, (size_t)NNE_MF_MAX_FILE_SIZE, &buf, &size);
    if (s) return s;
    s = read_mem_impl(buf, size, path, 0, out);
    nne_free(buf);
    return s;
}
