/* DPU instruction encoding, the instruction-stream file (docs/dpu-isa.md), validation and the
 * disassembler. */
#include <inttypes.h>
#include <string.h>

#include "common/le.h"
#include "dpu/dpu_internal.h"
#include "nnedge/file.h"

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* ---- one instruction ---- */

void nne_dpu_instr_encode(const nne_dpu_instr *in, uint8_t o[NNE_DPU_INSTR_SIZE]) {
    memset(o, 0, NNE_DPU_INSTR_SIZE);
    o[0] = in->op;
    o[1] = in->sub;
    wr16(o + 2, in->layer);
    switch (in->op) {
    case NNE_DPU_LOAD:
    case NNE_DPU_SAVE: {
        const nne_dpu_mem *m = &in->u.mem;
        nne_le_wr32(o + 8, m->ddr_offset);
        nne_le_wr32(o + 12, m->bank_offset);
        o[16] = m->region;
        o[17] = m->buffer;
        wr16(o + 18, m->channels);
        wr16(o + 20, m->rows);
        wr16(o + 22, m->cols);
        nne_le_wr32(o + 24, m->row_stride);
        nne_le_wr32(o + 28, m->col_stride);
        break;
    }
    case NNE_DPU_CONV: {
        const nne_dpu_conv *c = &in->u.conv;
        nne_le_wr32(o + 8, c->in_offset);
        nne_le_wr32(o + 12, c->out_offset);
        nne_le_wr32(o + 16, c->weight_offset);
        nne_le_wr32(o + 20, c->bias_offset);
        nne_le_wr32(o + 24, c->act_offset);
        wr16(o + 28, c->in_rows);
        wr16(o + 30, c->in_cols);
        wr16(o + 32, c->out_rows);
        wr16(o + 34, c->out_cols);
        wr16(o + 36, c->in_ch);
        wr16(o + 38, c->out_ch);
        o[40] = c->kh;
        o[41] = c->kw;
        o[42] = c->sh;
        o[43] = c->sw;
        o[44] = c->dh;
        o[45] = c->dw;
        memcpy(o + 46, c->pad, 4);
        o[50] = c->act;
        o[51] = c->flags;
        o[52] = (uint8_t)c->fp_in;
        o[53] = (uint8_t)c->fp_w;
        o[54] = (uint8_t)c->fp_bias;
        o[55] = (uint8_t)c->fp_out;
        o[56] = (uint8_t)c->fp_act;
        o[57] = (uint8_t)c->leaky_alpha;
        break;
    }
    case NNE_DPU_POOL: {
        const nne_dpu_pool *p = &in->u.pool;
        nne_le_wr32(o + 8, p->in_offset);
        nne_le_wr32(o + 12, p->out_offset);
        wr16(o + 16, p->in_rows);
        wr16(o + 18, p->in_cols);
        wr16(o + 20, p->out_rows);
        wr16(o + 22, p->out_cols);
        wr16(o + 24, p->channels);
        o[26] = p->kh;
        o[27] = p->kw;
        o[28] = p->sh;
        o[29] = p->sw;
        memcpy(o + 30, p->pad, 4);
        o[34] = (uint8_t)p->fp_in;
        o[35] = (uint8_t)p->fp_out;
        break;
    }
    case NNE_DPU_ELEW: {
        const nne_dpu_elew *e = &in->u.elew;
        nne_le_wr32(o + 8, e->in0_offset);
        nne_le_wr32(o + 12, e->in1_offset);
        nne_le_wr32(o + 16, e->out_offset);
        wr16(o + 20, e->rows);
        wr16(o + 22, e->cols);
        wr16(o + 24, e->channels);
        o[26] = e->act;
        o[27] = (uint8_t)e->fp_in0;
        o[28] = (uint8_t)e->fp_in1;
        o[29] = (uint8_t)e->fp_out;
        break;
    }
    default:
        break;
    }
}

nne_status nne_dpu_instr_decode(const uint8_t o[NNE_DPU_INSTR_SIZE], nne_dpu_instr *in) {
    memset(in, 0, sizeof *in);
    in->op = o[0];
    in->sub = o[1];
    in->layer = rd16(o + 2);
    if (!all_zero(o + 4, 4)) return nne_error(NNE_ERR_FORMAT, "reserved bytes 4..7 not zero");
    size_t used = 8;
    switch (in->op) {
    case NNE_DPU_END:
        break;
    case NNE_DPU_LOAD:
    case NNE_DPU_SAVE: {
        nne_dpu_mem *m = &in->u.mem;
        m->ddr_offset = nne_le_rd32(o + 8);
        m->bank_offset = nne_le_rd32(o + 12);
        m->region = o[16];
        m->buffer = o[17];
        m->channels = rd16(o + 18);
        m->rows = rd16(o + 20);
        m->cols = rd16(o + 22);
        m->row_stride = nne_le_rd32(o + 24);
        m->col_stride = nne_le_rd32(o + 28);
        used = 32;
        break;
    }
    case NNE_DPU_CONV: {
        nne_dpu_conv *c = &in->u.conv;
        c->in_offset = nne_le_rd32(o + 8);
        c->out_offset = nne_le_rd32(o + 12);
        c->weight_offset = nne_le_rd32(o + 16);
        c->bias_offset = nne_le_rd32(o + 20);
        c->act_offset = nne_le_rd32(o + 24);
        c->in_rows = rd16(o + 28);
        c->in_cols = rd16(o + 30);
        c->out_rows = rd16(o + 32);
        c->out_cols = rd16(o + 34);
        c->in_ch = rd16(o + 36);
        c->out_ch = rd16(o + 38);
        c->kh = o[40];
        c->kw = o[41];
        c->sh = o[42];
        c->sw = o[43];
        c->dh = o[44];
        c->dw = o[45];
        memcpy(c->pad, o + 46, 4);
        c->act = o[50];
        c->flags = o[51];
        c->fp_in = (int8_t)o[52];
        c->fp_w = (int8_t)o[53];
        c->fp_bias = (int8_t)o[54];
        c->fp_out = (int8_t)o[55];
        c->fp_act = (int8_t)o[56];
        c->leaky_alpha = (int8_t)o[57];
        used = 58;
        break;
    }
    case NNE_DPU_POOL: {
        nne_dpu_pool *p = &in->u.pool;
        p->in_offset = nne_le_rd32(o + 8);
        p->out_offset = nne_le_rd32(o + 12);
        p->in_rows = rd16(o + 16);
        p->in_cols = rd16(o + 18);
        p->out_rows = rd16(o + 20);
        p->out_cols = rd16(o + 22);
        p->channels = rd16(o + 24);
        p->kh = o[26];
        p->kw = o[27];
        p->sh = o[28];
        p->sw = o[29];
        memcpy(p->pad, o + 30, 4);
        p->fp_in = (int8_t)o[34];
        p->fp_out = (int8_t)o[35];
        used = 36;
        break;
    }
    case NNE_DPU_ELEW: {
        nne_dpu_elew *e = &in->u.elew;
        e->in0_offset = nne_le_rd32(o + 8);
        e->in1_offset = nne_le_rd32(o + 12);
        e->out_offset = nne_le_rd32(o + 16);
        e->rows = rd16(o + 20);
        e->cols = rd16(o + 22);
        e->channels = rd16(o + 24);
        e->act = o[26];
        e->fp_in0 = (int8_t)o[27];
        e->fp_in1 = (int8_t)o[28];
        e->fp_out = (int8_t)o[29];
        used = 30;
        break;
    }
    default:
        return nne_error(NNE_ERR_FORMAT, "unknown opcode %u", (unsigned)in->op);
    }
    if (!all_zero(o + used, NNE_DPU_INSTR_SIZE - used))
        return nne_error(NNE_ERR_FORMAT, "%s: reserved bytes %zu..63 not zero",
                         nne_dpu_opcode_name((nne_dpu_opcode)in->op), used);
    return NNE_OK;
}

/* ---- validation ---- */

static uint32_t buffer_size(const nne_dpu_arch *a, uint32_t b) {
    return b == NNE_DPU_BUF_FMAP     ? a->fmap_bytes
           : b == NNE_DPU_BUF_WEIGHT ? a->weight_bytes
                                     : a->bias_bytes;
}

static const char *k_buf_names[] = {"fmap", "weight", "bias"};
static const char *k_reg_names[] = {"params", "work", "input", "output"};

static bool fp_ok(int v) { return v >= -32 && v <= 32; }

static nne_status check_instr(const nne_dpu_program *p, uint32_t i, const nne_dpu_instr *in) {
    const nne_dpu_arch *a = &p->arch;
#define BAD(...) nne_error(NNE_ERR_FORMAT, "instruction %u (%s): " __VA_ARGS__)
    const char *on = nne_dpu_opcode_name((nne_dpu_opcode)in->op);
    if (in->op >= NNE_DPU_OPCODE_COUNT) return BAD("unknown opcode", i, on);
    if (in->op != NNE_DPU_POOL && in->op != NNE_DPU_ELEW && in->sub)
        return BAD("sub-operation %u not defined", i, on, (unsigned)in->sub);
    switch (in->op) {
    case NNE_DPU_END:
        return NNE_OK;
    case NNE_DPU_LOAD:
    case NNE_DPU_SAVE: {
        const nne_dpu_mem *m = &in->u.mem;
        if (m->region >= NNE_DPU_REG_COUNT) return BAD("DDR region %u", i, on, m->region);
        if (m->buffer >= NNE_DPU_BUF_COUNT) return BAD("buffer %u", i, on, m->buffer);
        if (!m->rows || !m->cols || !m->channels) return BAD("empty block", i, on);
        if (m->buffer != NNE_DPU_BUF_FMAP &&
            (in->op == NNE_DPU_SAVE || m->region != NNE_DPU_REG_PARAMS))
            return BAD("the %s buffer is loaded from params only", i, on, k_buf_names[m->buffer]);
        uint64_t ddr_end = (uint64_t)m->ddr_offset + (uint64_t)(m->rows - 1) * m->row_stride +
                           (uint64_t)(m->cols - 1) * m->col_stride + m->channels;
        if (ddr_end > p->region_size[m->region])
            return BAD("DDR block ends at %" PRIu64 ", past the %s region (%u bytes)", i, on,
                       ddr_end, k_reg_names[m->region], p->region_size[m->region]);
        uint64_t bank_end = m->bank_offset + nne_dpu_bank_bytes(a, m->rows, m->cols, m->channels);
        if (bank_end > buffer_size(a, m->buffer))
            return BAD("block ends at %" PRIu64 ", past the %s buffer (%u bytes)", i, on, bank_end,
                       k_buf_names[m->buffer], buffer_size(a, m->buffer));
        return NNE_OK;
    }
    case NNE_DPU_CONV: {
        const nne_dpu_conv *c = &in->u.conv;
        if (!c->kh || !c->kw || !c->sh || !c->sw || !c->dh || !c->dw || !c->in_ch || !c->out_ch ||
            !c->in_rows || !c->in_cols)
            return BAD("zero kernel, stride, dilation or size", i, on);
        if (!c->out_rows || !c->out_cols) return BAD("empty output", i, on);
        if ((c->flags & NNE_DPU_CONV_AUG) && (uint32_t)c->kw * c->in_ch > (uint32_t)a->aug_channels)
            return BAD("channel augmentation with kw x ic = %u > %d", i, on,
                       (unsigned)c->kw * c->in_ch, a->aug_channels);
        /* int32 accumulator: |x * w| <= 128 * 128 = 2^14 per tap, so at most 131071 taps. */
        if ((uint32_t)c->kh * c->kw * c->in_ch > NNE_DPU_MAX_TAPS)
            return BAD("%u taps per output, over %u (int32 accumulator)", i, on,
                       (unsigned)c->kh * c->kw * c->in_ch, NNE_DPU_MAX_TAPS);
        if (c->act >= NNE_DPU_ACT_COUNT) return BAD("activation %u", i, on, c->act);
        if (c->flags & ~(NNE_DPU_CONV_AUG | NNE_DPU_CONV_BIAS32))
            return BAD("flags 0x%x", i, on, c->flags);
        if (!fp_ok(c->fp_in) || !fp_ok(c->fp_w) || !fp_ok(c->fp_bias) || !fp_ok(c->fp_out) ||
            !fp_ok(c->fp_act))
            return BAD("fixed-point position outside -32..32", i, on);
        if (c->out_rows !=
                nne_conv_out_dim(c->in_rows, c->kh, c->sh, c->dh, c->pad[0], c->pad[2]) ||
            c->out_cols != nne_conv_out_dim(c->in_cols, c->kw, c->sw, c->dw, c->pad[1], c->pad[3]))
            return BAD("output %ux%u does not follow from the input, kernel, stride and padding", i,
                       on, c->out_rows, c->out_cols);
        if (c->in_offset + nne_dpu_bank_bytes(a, c->in_rows, c->in_cols, c->in_ch) >
                a->fmap_bytes ||
            c->out_offset + nne_dpu_bank_bytes(a, c->out_rows, c->out_cols, c->out_ch) >
                a->fmap_bytes)
            return BAD("tile past the fmap buffer", i, on);
        if (c->weight_offset + nne_dpu_weight_bank_bytes(a, c->out_ch, c->kh, c->kw, c->in_ch) >
            a->weight_bytes)
            return BAD("filters past the weight buffer", i, on);
        const uint64_t bias_w = (c->flags & NNE_DPU_CONV_BIAS32) ? 4 : 1;
        if ((uint64_t)c->bias_offset + bias_w * c->out_ch > a->bias_bytes ||
            (c->act == NNE_DPU_ACT_PRELU && (uint64_t)c->act_offset + c->out_ch > a->bias_bytes))
            return BAD("bias or slopes past the bias buffer", i, on);
        return NNE_OK;
    }
    case NNE_DPU_POOL: {
        const nne_dpu_pool *q = &in->u.pool;
        if (in->sub > NNE_DPU_POOL_AVG) return BAD("pool kind %u", i, on, in->sub);
        if (!q->kh || !q->kw || !q->sh || !q->sw || !q->channels || !q->in_rows || !q->in_cols)
            return BAD("zero kernel, stride or size", i, on);
        if (!q->out_rows || !q->out_cols) return BAD("empty output", i, on);
        if (q->pad[0] >= q->kh || q->pad[2] >= q->kh || q->pad[1] >= q->kw || q->pad[3] >= q->kw)
            return BAD("padding not smaller than the window", i, on);
        if (!fp_ok(q->fp_in) || !fp_ok(q->fp_out))
            return BAD("fixed-point position outside -32..32", i, on);
        if (q->out_rows != nne_conv_out_dim(q->in_rows, q->kh, q->sh, 1, q->pad[0], q->pad[2]) ||
            q->out_cols != nne_conv_out_dim(q->in_cols, q->kw, q->sw, 1, q->pad[1], q->pad[3]))
            return BAD("output size does not follow from the input and window", i, on);
        if (q->in_offset + nne_dpu_bank_bytes(a, q->in_rows, q->in_cols, q->channels) >
                a->fmap_bytes ||
            q->out_offset + nne_dpu_bank_bytes(a, q->out_rows, q->out_cols, q->channels) >
                a->fmap_bytes)
            return BAD("tile past the fmap buffer", i, on);
        return NNE_OK;
    }
    case NNE_DPU_ELEW: {
        const nne_dpu_elew *e = &in->u.elew;
        if (in->sub != NNE_DPU_ELEW_ADD) return BAD("element-wise kind %u", i, on, in->sub);
        if (!e->rows || !e->cols || !e->channels) return BAD("empty block", i, on);
        if (e->act != NNE_DPU_ACT_NONE && e->act != NNE_DPU_ACT_RELU)
            return BAD("activation %u (none or relu)", i, on, e->act);
        if (!fp_ok(e->fp_in0) || !fp_ok(e->fp_in1) || !fp_ok(e->fp_out))
            return BAD("fixed-point position outside -32..32", i, on);
        uint64_t sz = nne_dpu_bank_bytes(a, e->rows, e->cols, e->channels);
        if (e->in0_offset + sz > a->fmap_bytes || e->in1_offset + sz > a->fmap_bytes ||
            e->out_offset + sz > a->fmap_bytes)
            return BAD("block past the fmap buffer", i, on);
        return NNE_OK;
    }
    }
#undef BAD
    return NNE_OK;
}

nne_status nne_dpu_program_validate(const nne_dpu_program *p) {
    if (!p->n_instrs || p->instrs[p->n_instrs - 1].op != NNE_DPU_END)
        return nne_error(NNE_ERR_FORMAT, "the program does not end with END");
    if (p->n_instrs > NNE_DPU_MAX_INSTRS || p->n_layers > NNE_DPU_MAX_LAYERS)
        return nne_error(NNE_ERR_LIMIT, "%u instructions, %u layers: over the limits", p->n_instrs,
                         p->n_layers);
    if (p->flags & ~(uint32_t)NNE_DPU_PROGRAM_TIMING_ONLY)
        return nne_error(NNE_ERR_UNSUPPORTED, "program flags 0x%x not supported", p->flags);
    /* A timing-only program has no parameter data; any other carries the whole region. */
    if ((p->flags & NNE_DPU_PROGRAM_TIMING_ONLY)
            ? p->params_size != 0
            : p->params_size != p->region_size[NNE_DPU_REG_PARAMS])
        return nne_error(NNE_ERR_FORMAT,
                         "params data (%u bytes) does not match the params region "
                         "(%u bytes, %s program)",
                         p->params_size, p->region_size[NNE_DPU_REG_PARAMS],
                         (p->flags & NNE_DPU_PROGRAM_TIMING_ONLY) ? "timing-only" : "executable");
    if ((uint64_t)p->in_h * p->in_w * p->in_c != p->region_size[NNE_DPU_REG_INPUT] ||
        (uint64_t)p->out_h * p->out_w * p->out_c != p->region_size[NNE_DPU_REG_OUTPUT] ||
        !p->in_h || !p->out_h || !fp_ok(p->fp_input) || !fp_ok(p->fp_output))
        return nne_error(NNE_ERR_FORMAT,
                         "input %ux%ux%u / output %ux%ux%u do not match the input / output "
                         "regions (%u / %u bytes), or a fixed-point position is outside -32..32",
                         p->in_h, p->in_w, p->in_c, p->out_h, p->out_w, p->out_c,
                         p->region_size[NNE_DPU_REG_INPUT], p->region_size[NNE_DPU_REG_OUTPUT]);
    uint32_t next = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        const nne_dpu_layer *L = &p->layers[l];
        if (L->first != next || L->count == 0 || L->count > p->n_instrs - 1 - next)
            return nne_error(NNE_ERR_FORMAT,
                             "layer %u: instructions %u+%u do not follow the previous layer", l,
                             L->first, L->count);
        if (L->kind != NNE_DPU_CONV && L->kind != NNE_DPU_POOL && L->kind != NNE_DPU_ELEW)
            return nne_error(NNE_ERR_FORMAT, "layer %u: kind %u", l, L->kind);
        if (L->act >= NNE_DPU_ACT_COUNT || (L->flags & ~NNE_DPU_LAYER_QUANT_PLACEHOLDER) ||
            L->order > 1)
            return nne_error(NNE_ERR_FORMAT, "layer %u: bad activation, flags or order", l);
        if (memchr(L->name, 0, sizeof L->name) == NULL)
            return nne_error(NNE_ERR_FORMAT, "layer %u: name not terminated", l);
        next += L->count;
    }
    if (next != p->n_instrs - 1)
        return nne_error(NNE_ERR_FORMAT, "layers cover %u of %u instructions", next,
                         p->n_instrs - 1);
    uint32_t l = 0;
    for (uint32_t i = 0; i < p->n_instrs; i++) {
        const nne_dpu_instr *in = &p->instrs[i];
        if (i + 1 < p->n_instrs) {
            while (l < p->n_layers && i >= p->layers[l].first + p->layers[l].count) l++;
            if (in->op == NNE_DPU_END)
                return nne_error(NNE_ERR_FORMAT, "instruction %u: END before the last", i);
            if (in->layer != l)
                return nne_error(NNE_ERR_FORMAT,
                                 "instruction %u: layer %u, but it lies in layer %u", i, in->layer,
                                 l);
        } else if (in->layer != 0) {
            return nne_error(NNE_ERR_FORMAT, "END: layer field %u (must be 0)", in->layer);
        }
        nne_status s = check_instr(p, i, in);
        if (s) return s;
    }
    return NNE_OK;
}

void nne_dpu_program_free(nne_dpu_program *p) {
    if (!p) return;
    nne_free(p->layers);
    nne_free(p->instrs);
    nne_free(p->params);
    memset(p, 0, sizeof *p);
}

/* ---- file ---- */

static uint32_t file_crc(const uint8_t *buf, size_t size) {
    uint32_t crc = nne_crc32(0, buf, 28);
    return nne_crc32(crc, buf + 32, size - 32);
}

void nne_dpu_fix_checksum(uint8_t *buf, size_t size) {
    if (size >= NNE_DPU_HEADER_SIZE) nne_le_wr32(buf + 28, file_crc(buf, size));
}

nne_status nne_dpu_program_write_mem(const nne_dpu_program *p, uint8_t **out, size_t *size) {
    *out = NULL;
    *size = 0;
    nne_status s = nne_dpu_program_validate(p);
    if (s) return s;
    uint64_t total = NNE_DPU_HEADER_SIZE + (uint64_t)p->n_layers * NNE_DPU_LAYER_SIZE +
                     (uint64_t)p->n_instrs * NNE_DPU_INSTR_SIZE + p->params_size;
    if (total > NNE_DPU_MAX_FILE)
        return nne_error(NNE_ERR_LIMIT, "instruction stream of %" PRIu64 " bytes: over 2 GiB",
                         total);
    uint8_t *b = nne_calloc((size_t)total, 1);
    if (!b) return NNE_ERR_NOMEM;
    memcpy(b, NNE_DPU_MAGIC, 8); /* with its terminating NUL */
    nne_le_wr32(b + 8, NNE_DPU_VERSION);
    nne_le_wr32(b + 12, p->flags);
    nne_le_wr32(b + 16, NNE_DPU_HEADER_SIZE);
    nne_le_wr32(b + 20, NNE_DPU_LAYER_SIZE);
    nne_le_wr32(b + 24, NNE_DPU_INSTR_SIZE);
    nne_le_wr64(b + 32, total);
    memcpy(b + 40, p->arch.name, strnlen(p->arch.name, 15));
    wr16(b + 56, (uint16_t)p->arch.pp);
    wr16(b + 58, (uint16_t)p->arch.icp);
    wr16(b + 60, (uint16_t)p->arch.ocp);
    nne_le_wr32(b + 64, p->arch.fmap_bytes);
    nne_le_wr32(b + 68, p->arch.weight_bytes);
    nne_le_wr32(b + 72, p->arch.bias_bytes);
    for (int r = 0; r < NNE_DPU_REG_COUNT; r++) nne_le_wr32(b + 80 + 4 * r, p->region_size[r]);
    nne_le_wr32(b + 96, p->n_layers);
    nne_le_wr32(b + 100, p->n_instrs);
    nne_le_wr32(b + 104, p->params_size);
    const uint16_t io[6] = {p->in_h, p->in_w, p->in_c, p->out_h, p->out_w, p->out_c};
    for (int k = 0; k < 6; k++) wr16(b + 108 + 2 * k, io[k]);
    b[120] = (uint8_t)p->fp_input;
    b[121] = (uint8_t)p->fp_output;
    uint8_t *q = b + NNE_DPU_HEADER_SIZE;
    for (uint32_t l = 0; l < p->n_layers; l++, q += NNE_DPU_LAYER_SIZE) {
        const nne_dpu_layer *L = &p->layers[l];
        memcpy(q, L->name, strnlen(L->name, 31));
        nne_le_wr32(q + 32, L->first);
        nne_le_wr32(q + 36, L->count);
        nne_le_wr64(q + 40, L->ops);
        wr16(q + 48, L->out_h);
        wr16(q + 50, L->out_w);
        wr16(q + 52, L->out_c);
        wr16(q + 54, L->tile_h);
        wr16(q + 56, L->tile_w);
        wr16(q + 58, L->tile_m);
        q[60] = L->kind;
        q[61] = L->act;
        q[62] = L->flags;
        q[63] = L->order;
    }
    for (uint32_t i = 0; i < p->n_instrs; i++, q += NNE_DPU_INSTR_SIZE)
        nne_dpu_instr_encode(&p->instrs[i], q);
    if (p->params_size) memcpy(q, p->params, p->params_size);
    nne_dpu_fix_checksum(b, (size_t)total);
    *out = b;
    *size = (size_t)total;
    return NNE_OK;
}

nne_status nne_dpu_program_read_mem(const uint8_t *b, size_t size, nne_dpu_program *out) {
    memset(out, 0, sizeof *out);
    if (size < 8 || memcmp(b, NNE_DPU_MAGIC, 8) != 0)
        return nne_error(NNE_ERR_FORMAT, "not a DPU instruction stream (bad magic)");
    if (size < NNE_DPU_HEADER_SIZE)
        return nne_error(NNE_ERR_FORMAT, "truncated header (%zu bytes)", size);
    uint32_t version = nne_le_rd32(b + 8);
    if (version != NNE_DPU_VERSION)
        return nne_error(NNE_ERR_UNSUPPORTED, "instruction stream version %u (this reader: %d)",
                         version, NNE_DPU_VERSION);
    if (nne_le_rd32(b + 12) & ~(uint32_t)NNE_DPU_PROGRAM_TIMING_ONLY)
        return nne_error(NNE_ERR_UNSUPPORTED, "flags 0x%x not supported", nne_le_rd32(b + 12));
    if (nne_le_rd32(b + 16) != NNE_DPU_HEADER_SIZE || nne_le_rd32(b + 20) != NNE_DPU_LAYER_SIZE ||
        nne_le_rd32(b + 24) != NNE_DPU_INSTR_SIZE)
        return nne_error(NNE_ERR_FORMAT, "header, layer or instruction size not 128/64/64");
    if (nne_le_rd64(b + 32) != size)
        return nne_error(NNE_ERR_FORMAT, "file_size %" PRIu64 " but %zu bytes (truncated?)",
                         nne_le_rd64(b + 32), size);
    if (file_crc(b, size) != nne_le_rd32(b + 28))
        return nne_error(NNE_ERR_CHECKSUM, "CRC-32 mismatch: the file is corrupt");
    if (!all_zero(b + 62, 2) || !all_zero(b + 76, 4) || !all_zero(b + 122, 6))
        return nne_error(NNE_ERR_FORMAT, "reserved header bytes not zero");
    char name[16];
    memcpy(name, b + 40, 16);
    if (name[15] != 0 || !name[0])
        return nne_error(NNE_ERR_FORMAT, "architecture name empty or not terminated");
    for (size_t k = strlen(name); k < 16; k++)
        if (name[k]) return nne_error(NNE_ERR_FORMAT, "bytes after the architecture name");
    nne_status s = nne_dpu_arch_make(name, rd16(b + 56), rd16(b + 58), rd16(b + 60), &out->arch);
    if (s) return nne_error(NNE_ERR_FORMAT, "architecture: parallelism out of range");
    if (nne_le_rd32(b + 64) != out->arch.fmap_bytes ||
        nne_le_rd32(b + 68) != out->arch.weight_bytes ||
        nne_le_rd32(b + 72) != out->arch.bias_bytes)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "buffer sizes %u/%u/%u differ from the DPUCZDX8G rule for pp %d icp %d",
                         nne_le_rd32(b + 64), nne_le_rd32(b + 68), nne_le_rd32(b + 72),
                         out->arch.pp, out->arch.icp);
    for (int r = 0; r < NNE_DPU_REG_COUNT; r++) out->region_size[r] = nne_le_rd32(b + 80 + 4 * r);
    uint32_t nl = nne_le_rd32(b + 96), ni = nne_le_rd32(b + 100), np = nne_le_rd32(b + 104);
    if (nl > NNE_DPU_MAX_LAYERS || ni > NNE_DPU_MAX_INSTRS || ni < 1)
        return nne_error(NNE_ERR_LIMIT, "%u layers, %u instructions: outside the limits", nl, ni);
    if ((uint64_t)NNE_DPU_HEADER_SIZE + (uint64_t)nl * NNE_DPU_LAYER_SIZE +
            (uint64_t)ni * NNE_DPU_INSTR_SIZE + np !=
        size)
        return nne_error(NNE_ERR_FORMAT, "counts do not add up to the file size");
    out->layers = nl ? nne_calloc(nl, sizeof *out->layers) : NULL;
    out->instrs = nne_calloc(ni, sizeof *out->instrs);
    out->params = np ? nne_malloc(np) : NULL;
    if ((nl && !out->layers) || !out->instrs || (np && !out->params)) {
        nne_dpu_program_free(out);
        return NNE_ERR_NOMEM;
    }
    out->n_layers = nl;
    out->n_instrs = ni;
    out->params_size = np;
    out->flags = nne_le_rd32(b + 12);
    out->in_h = rd16(b + 108), out->in_w = rd16(b + 110), out->in_c = rd16(b + 112);
    out->out_h = rd16(b + 114), out->out_w = rd16(b + 116), out->out_c = rd16(b + 118);
    out->fp_input = (int8_t)b[120];
    out->fp_output = (int8_t)b[121];
    const uint8_t *q = b + NNE_DPU_HEADER_SIZE;
    for (uint32_t l = 0; l < nl; l++, q += NNE_DPU_LAYER_SIZE) {
        nne_dpu_layer *L = &out->layers[l];
        memcpy(L->name, q, 32);
        size_t len = strnlen(L->name, 32);
        if (len == 32 || !all_zero(q + len, 32 - len)) {
            nne_dpu_program_free(out);
            return nne_error(NNE_ERR_FORMAT, "layer %u: name not terminated or padded", l);
        }
        L->first = nne_le_rd32(q + 32);
        L->count = nne_le_rd32(q + 36);
        L->ops = nne_le_rd64(q + 40);
        L->out_h = rd16(q + 48);
        L->out_w = rd16(q + 50);
        L->out_c = rd16(q + 52);
        L->tile_h = rd16(q + 54);
        L->tile_w = rd16(q + 56);
        L->tile_m = rd16(q + 58);
        L->kind = q[60];
        L->act = q[61];
        L->flags = q[62];
        L->order = q[63];
    }
    for (uint32_t i = 0; i < ni; i++, q += NNE_DPU_INSTR_SIZE) {
        if ((s = nne_dpu_instr_decode(q, &out->instrs[i]))) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", nne_last_error());
            nne_dpu_program_free(out);
            return nne_error(s, "instruction %u: %s", i, msg);
        }
    }
    if (np) memcpy(out->params, q, np);
    if ((s = nne_dpu_program_validate(out))) {
        nne_dpu_program_free(out);
        return s;
    }
    return NNE_OK;
}

nne_status nne_dpu_program_write_file(const nne_dpu_program *p, const char *path) {
    uint8_t *b;
    size_t n;
    nne_status s = nne_dpu_program_write_mem(p, &b, &n);
    if (s) return s;
    s = nne_file_write_atomic(path, b, n);
    nne_free(b);
    return s;
}

nne_status nne_dpu_program_read_file(const char *path, nne_dpu_program *out) {
    uint8_t *b;
    size_t n;
    memset(out, 0, sizeof *out);
    nne_status s = nne_file_read(path, NNE_DPU_MAX_FILE, &b, &n);
    if (s) return s;
    s = nne_dpu_program_read_mem(b, n, out);
    nne_free(b);
    if (s) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nne_last_error());
        return nne_error(s, "%s: %s", path, msg);
    }
    return NNE_OK;
}

/* ---- disassembler ---- */

const char *nne_dpu_opcode_name(nne_dpu_opcode op) {
    static const char *const n[] = {"END", "LOAD", "SAVE", "CONV", "POOL", "ELEW"};
    return (unsigned)op < NNE_DPU_OPCODE_COUNT ? n[op] : "?";
}

const char *nne_dpu_act_name(nne_dpu_act a) {
    static const char *const n[] = {"none", "relu", "relu6", "leaky", "prelu"};
    return (unsigned)a < NNE_DPU_ACT_COUNT ? n[a] : "?";
}

const char *nne_dpu_instr_str(const nne_dpu_instr *in, char *buf, size_t n) {
    const char *on = nne_dpu_opcode_name((nne_dpu_opcode)in->op);
    switch (in->op) {
    case NNE_DPU_LOAD:
    case NNE_DPU_SAVE: {
        const nne_dpu_mem *m = &in->u.mem;
        const char *bn = m->buffer < NNE_DPU_BUF_COUNT ? k_buf_names[m->buffer] : "?";
        const char *rn = m->region < NNE_DPU_REG_COUNT ? k_reg_names[m->region] : "?";
        if (in->op == NNE_DPU_LOAD)
            snprintf(buf, n, "%-4s %s[0x%05x] <- %s[0x%08x] %ux%ux%u rs=%u cs=%u", on, bn,
                     m->bank_offset, rn, m->ddr_offset, m->rows, m->cols, m->channels,
                     m->row_stride, m->col_stride);
        else
            snprintf(buf, n, "%-4s %s[0x%05x] -> %s[0x%08x] %ux%ux%u rs=%u cs=%u", on, bn,
                     m->bank_offset, rn, m->ddr_offset, m->rows, m->cols, m->channels,
                     m->row_stride, m->col_stride);
        break;
    }
    case NNE_DPU_CONV: {
        const nne_dpu_conv *c = &in->u.conv;
        snprintf(buf, n,
                 "%-4s fmap[0x%05x] %ux%ux%u <- fmap[0x%05x] %ux%ux%u k%ux%u s%ux%u d%ux%u "
                 "pad %u,%u,%u,%u w[0x%05x] b[0x%04x] %s a[0x%04x] alpha %d fp in %d w %d b %d "
                 "out %d act %d%s%s",
                 on, c->out_offset, c->out_rows, c->out_cols, c->out_ch, c->in_offset, c->in_rows,
                 c->in_cols, c->in_ch, c->kh, c->kw, c->sh, c->sw, c->dh, c->dw, c->pad[0],
                 c->pad[1], c->pad[2], c->pad[3], c->weight_offset, c->bias_offset,
                 nne_dpu_act_name((nne_dpu_act)c->act), c->act_offset, c->leaky_alpha, c->fp_in,
                 c->fp_w, c->fp_bias, c->fp_out, c->fp_act,
                 (c->flags & NNE_DPU_CONV_AUG) ? " aug" : "",
                 (c->flags & NNE_DPU_CONV_BIAS32) ? " bias32" : "");
        break;
    }
    case NNE_DPU_POOL: {
        const nne_dpu_pool *q = &in->u.pool;
        snprintf(buf, n,
                 "%-4s %s fmap[0x%05x] %ux%ux%u <- fmap[0x%05x] %ux%u k%ux%u s%ux%u pad "
                 "%u,%u,%u,%u fp in %d out %d",
                 on, in->sub == NNE_DPU_POOL_MAX ? "max" : "avg", q->out_offset, q->out_rows,
                 q->out_cols, q->channels, q->in_offset, q->in_rows, q->in_cols, q->kh, q->kw,
                 q->sh, q->sw, q->pad[0], q->pad[1], q->pad[2], q->pad[3], q->fp_in, q->fp_out);
        break;
    }
    case NNE_DPU_ELEW: {
        const nne_dpu_elew *e = &in->u.elew;
        snprintf(buf, n,
                 "%-4s add fmap[0x%05x] <- fmap[0x%05x] + fmap[0x%05x] %ux%ux%u %s fp %d %d -> %d",
                 on, e->out_offset, e->in0_offset, e->in1_offset, e->rows, e->cols, e->channels,
                 nne_dpu_act_name((nne_dpu_act)e->act), e->fp_in0, e->fp_in1, e->fp_out);
        break;
    }
    default:
        snprintf(buf, n, "%s", on);
        break;
    }
    return buf;
}

void nne_dpu_disasm(const nne_dpu_program *p, FILE *f) {
    const nne_dpu_arch *a = &p->arch;
    fprintf(f,
            "; nnedge DPU program: arch %s (pp %d, icp %d, ocp %d; %lld ops/clock)\n"
            "; buffers: fmap %u B, weight %u B, bias %u B\n"
            "; DDR regions: params %u B%s, work %u B, input %u B, output %u B\n"
            "; input %ux%ux%u fp %d, output %ux%ux%u fp %d%s\n"
            "; %u layers, %u instructions\n",
            a->name, a->pp, a->icp, a->ocp, (long long)nne_dpu_arch_ops_per_clock(a), a->fmap_bytes,
            a->weight_bytes, a->bias_bytes, p->region_size[NNE_DPU_REG_PARAMS],
            p->params_size ? "" : " (no data)", p->region_size[NNE_DPU_REG_WORK],
            p->region_size[NNE_DPU_REG_INPUT], p->region_size[NNE_DPU_REG_OUTPUT], p->in_h, p->in_w,
            p->in_c, p->fp_input, p->out_h, p->out_w, p->out_c, p->fp_output,
            (p->flags & NNE_DPU_PROGRAM_TIMING_ONLY) ? " (timing only)" : "", p->n_layers,
            p->n_instrs);
    char buf[512];
    uint32_t l = 0;
    for (uint32_t i = 0; i < p->n_instrs; i++) {
        if (l < p->n_layers && p->layers[l].first == i) {
            const nne_dpu_layer *L = &p->layers[l];
            fprintf(
                f, "\n; layer %u %s: %s %s, %.3f MOP, out %ux%ux%u, tile %ux%ux%u (%s outer)%s\n",
                l, L->name, nne_dpu_opcode_name((nne_dpu_opcode)L->kind),
                nne_dpu_act_name((nne_dpu_act)L->act), (double)L->ops / 1e6, L->out_h, L->out_w,
                L->out_c, L->tile_h, L->tile_w, L->tile_m, L->order ? "rows" : "weights",
                (L->flags & NNE_DPU_LAYER_QUANT_PLACEHOLDER) ? ", placeholder fixed points" : "");
            l++;
        }
        fprintf(f, "%6u  %s\n", i, nne_dpu_instr_str(&p->instrs[i], buf, sizeof buf));
    }
}
