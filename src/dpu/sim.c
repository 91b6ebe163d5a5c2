/* The DPU's functional simulator: executes an instruction stream bit-exactly as
 * docs/dpu-isa.md ("Fixed-point arithmetic", "Simulator") defines it, on byte arrays for the
 * four DDR regions and the three on-chip buffers, instruction by instruction, tile by tile as
 * the compiler scheduled them. Its results equal the int8 reference kernels (qops.h, pow2
 * mode) run node by node on the quantized graph (tests/dpu/test_dpu_sim.c).
 *
 * Every extent is checked by nne_dpu_program_validate before anything runs, so the loops
 * below index inside their arrays; the few arithmetic limits the validator does not know
 * (shift ranges) are checked per instruction here. */
#include <string.h>

#include "common/le.h"
#include "dpu/dpu_internal.h"

typedef struct sim {
    const nne_dpu_program *p;
    uint32_t icp;
    uint8_t *buf[NNE_DPU_BUF_COUNT];
    uint32_t buf_size[NNE_DPU_BUF_COUNT];
    uint8_t *reg[NNE_DPU_REG_COUNT];
    uint8_t *tmp; /* fmap_bytes: an instruction's output before it is stored (in/out may
                     overlap: an instruction reads all its operands, then writes) */
    nne_dpu_sim_stats st;
} sim;

/* ---- arithmetic (docs/dpu-isa.md, "Fixed-point arithmetic") ---- */

#define RS_LIM ((int64_t)1 << 62)

/* rshift_round(v, s) for |v| < 2^62 and any s: s > 0 floor((v + 2^(s-1)) / 2^s) (round half
 * up); s = 0 v; s < 0 v * 2^-s, saturated to +-2^62 (far outside int8, so a later sat8 gives
 * the exact result's saturation). For s >= 63, |v| < 2^62 <= 2^(s-1) makes the result 0. */
static int64_t rshift_round(int64_t v, int32_t s) {
    if (s > 0) return s >= 63 ? 0 : (v + ((int64_t)1 << (s - 1))) >> s; /* arithmetic >> */
    if (s == 0 || v == 0) return v;
    if (s <= -62) return v > 0 ? RS_LIM : -RS_LIM;
    const int64_t lim = RS_LIM >> -s;
    if (v > lim) return RS_LIM;
    if (v < -lim) return -RS_LIM;
    return v * ((int64_t)1 << -s);
}

static int32_t sat8(int64_t v) { return v < -128 ? -128 : v > 127 ? 127 : (int32_t)v; }

/* Byte offset of channel c of pixel (y, x) of a packed block with `cols` columns and
 * `words` icp-byte words per pixel (docs/dpu-isa.md, "Layouts"). */
static inline uint64_t packed(const sim *S, uint32_t y, uint32_t x, uint32_t cols, uint32_t words) {
    return ((uint64_t)y * cols + x) * words * S->icp;
}

static nne_status refuse(uint32_t i, const char *why) {
    return nne_error(NNE_ERR_UNSUPPORTED, "dpu-sim: instruction %u: %s", i, why);
}

/* ---- LOAD / SAVE ---- */

static nne_status run_mem(sim *S, uint32_t i, uint8_t op, const nne_dpu_mem *m) {
    if (op == NNE_DPU_SAVE && (m->region == NNE_DPU_REG_PARAMS || m->region == NNE_DPU_REG_INPUT))
        return refuse(i, "SAVE into the params or input region (read-only)");
    uint8_t *ddr = S->reg[m->region], *b = S->buf[m->buffer] + m->bank_offset;
    const uint32_t words = nne_dpu_ceil_div(m->channels, S->icp);
    const size_t pix = (size_t)words * S->icp;
    for (uint32_t y = 0; y < m->rows; y++)
        for (uint32_t x = 0; x < m->cols; x++) {
            uint8_t *d =
                ddr + m->ddr_offset + (uint64_t)y * m->row_stride + (uint64_t)x * m->col_stride;
            uint8_t *o = b + packed(S, y, x, m->cols, words);
            if (op == NNE_DPU_LOAD) {
                memcpy(o, d, m->channels);
                memset(o + m->channels, 0, pix - m->channels); /* the last word's unused bytes */
            } else {
                memcpy(d, o, m->channels);
            }
        }
    uint64_t bytes = (uint64_t)m->rows * m->cols * m->channels;
    if (op == NNE_DPU_LOAD)
        S->st.load_bytes += bytes;
    else
        S->st.save_bytes += bytes;
    return NNE_OK;
}

/* ---- CONV ---- */

static nne_status run_conv(sim *S, uint32_t i, const nne_dpu_conv *c) {
    /* Bias alignment: int32 << 30 at most, so |acc + bias| < 2^31 + 2^61 < 2^62. */
    const int32_t bias_shift = c->fp_bias - (c->fp_in + c->fp_w);
    if (bias_shift < -30) return refuse(i, "bias alignment is a left shift over 30 bits");
    const int32_t s = c->fp_in + c->fp_w - c->fp_out;
    const bool b32 = (c->flags & NNE_DPU_CONV_BIAS32) != 0;
    const uint8_t *fin = S->buf[NNE_DPU_BUF_FMAP] + c->in_offset;
    const uint8_t *wb = S->buf[NNE_DPU_BUF_WEIGHT] + c->weight_offset;
    const uint8_t *bb = S->buf[NNE_DPU_BUF_BIAS];
    const uint32_t wi = nne_dpu_ceil_div(c->in_ch, S->icp),
                   wo = nne_dpu_ceil_div(c->out_ch, S->icp);
    const uint64_t taps = (uint64_t)c->kh * c->kw, fstride = taps * wi * S->icp;
    /* relu6's upper bound: Q(6) = round_half_up(6 * 2^fp_out), as nne_qact_range. */
    const int32_t q6 = sat8(rshift_round(6, -c->fp_out));
    const size_t out_bytes = (size_t)c->out_rows * c->out_cols * wo * S->icp;
    memset(S->tmp, 0, out_bytes); /* the last word's unused bytes are 0 */
    for (uint32_t oy = 0; oy < c->out_rows; oy++)
        for (uint32_t ox = 0; ox < c->out_cols; ox++) {
            int8_t *o = (int8_t *)S->tmp + packed(S, oy, ox, c->out_cols, wo);
            for (uint32_t m = 0; m < c->out_ch; m++) {
                /* |acc| <= kh*kw*in_ch * 2^14 <= 131071 * 2^14 < 2^31 (validated taps). */
                int32_t acc = 0;
                const uint8_t *wm = wb + m * fstride;
                for (uint32_t ky = 0; ky < c->kh; ky++) {
                    const int64_t iy = (int64_t)oy * c->sh + (int64_t)ky * c->dh - c->pad[0];
                    if (iy < 0 || iy >= c->in_rows) continue; /* padding: 0 */
                    for (uint32_t kx = 0; kx < c->kw; kx++) {
                        const int64_t ix = (int64_t)ox * c->sw + (int64_t)kx * c->dw - c->pad[1];
                        if (ix < 0 || ix >= c->in_cols) continue;
                        const int8_t *xp = (const int8_t *)fin +
                                           packed(S, (uint32_t)iy, (uint32_t)ix, c->in_cols, wi);
                        const int8_t *wp =
                            (const int8_t *)wm + ((uint64_t)ky * c->kw + kx) * wi * S->icp;
                        for (uint32_t ch = 0; ch < c->in_ch; ch++) acc += xp[ch] * wp[ch];
                    }
                }
                int64_t bias;
                if (b32)
                    bias = (int32_t)nne_le_rd32(bb + c->bias_offset + 4 * (uint64_t)m);
                else
                    bias = (int8_t)bb[c->bias_offset + m];
                const int64_t v = acc + rshift_round(bias, bias_shift);
                int32_t t = sat8(rshift_round(v, s));
                switch (c->act) {
                case NNE_DPU_ACT_RELU:
                    t = t < 0 ? 0 : t;
                    break;
                case NNE_DPU_ACT_RELU6:
                    t = t < 0 ? 0 : t > q6 ? q6 : t;
                    break;
                case NNE_DPU_ACT_LEAKY:
                case NNE_DPU_ACT_PRELU: {
                    const int32_t alpha = c->act == NNE_DPU_ACT_LEAKY
                                              ? c->leaky_alpha
                                              : (int8_t)bb[c->act_offset + m];
                    /* |t * alpha| <= 2^14, shifted by fp_act in -32..32: no overflow. */
                    if (t < 0) t = sat8(rshift_round((int64_t)t * alpha, c->fp_act));
                    break;
                }
                default:
                    break;
                }
                o[m] = (int8_t)t;
            }
        }
    S->st.macs += (uint64_t)c->out_rows * c->out_cols * c->out_ch * taps * c->in_ch;
    memcpy(S->buf[NNE_DPU_BUF_FMAP] + c->out_offset, S->tmp, out_bytes);
    return NNE_OK;
}

/* ---- POOL ---- */

static nne_status run_pool(sim *S, uint8_t sub, const nne_dpu_pool *q) {
    const uint8_t *fin = S->buf[NNE_DPU_BUF_FMAP] + q->in_offset;
    const uint32_t w = nne_dpu_ceil_div(q->channels, S->icp);
    const int32_t s = q->fp_in - q->fp_out;
    const int64_t n = (int64_t)q->kh * q->kw; /* avg divides by the window (padding adds 0) */
    const size_t out_bytes = (size_t)q->out_rows * q->out_cols * w * S->icp;
    memset(S->tmp, 0, out_bytes);
    for (uint32_t oy = 0; oy < q->out_rows; oy++)
        for (uint32_t ox = 0; ox < q->out_cols; ox++) {
            int8_t *o = (int8_t *)S->tmp + packed(S, oy, ox, q->out_cols, w);
            for (uint32_t ch = 0; ch < q->channels; ch++) {
                /* |sum| <= 255 * 255 * 128 < 2^23 */
                int64_t mx = -128, sum = 0;
                for (uint32_t ky = 0; ky < q->kh; ky++) {
                    const int64_t iy = (int64_t)oy * q->sh + ky - q->pad[0];
                    if (iy < 0 || iy >= q->in_rows) continue; /* padding taps: ignored / 0 */
                    for (uint32_t kx = 0; kx < q->kw; kx++) {
                        const int64_t ix = (int64_t)ox * q->sw + kx - q->pad[1];
                        if (ix < 0 || ix >= q->in_cols) continue;
                        const int64_t v =
                            ((const int8_t *)
                                 fin)[packed(S, (uint32_t)iy, (uint32_t)ix, q->in_cols, w) + ch];
                        mx = v > mx ? v : mx;
                        sum += v;
                    }
                }
                int64_t a = mx;
                if (sub == NNE_DPU_POOL_AVG) /* round_half_away(sum / n), C division */
                    a = sum >= 0 ? (sum + n / 2) / n : (sum - n / 2) / n;
                o[ch] = (int8_t)sat8(rshift_round(a, s));
            }
        }
    memcpy(S->buf[NNE_DPU_BUF_FMAP] + q->out_offset, S->tmp, out_bytes);
    return NNE_OK;
}

/* ---- ELEW ---- */

static nne_status run_elew(sim *S, uint32_t i, const nne_dpu_elew *e) {
    const int32_t F = e->fp_in0 > e->fp_in1 ? e->fp_in0 : e->fp_in1;
    const int32_t a0 = F - e->fp_in0, a1 = F - e->fp_in1, s = F - e->fp_out;
    if (a0 > 22 || a1 > 22) return refuse(i, "ELEW input alignment over 22 bits");
    const uint8_t *f = S->buf[NNE_DPU_BUF_FMAP];
    const size_t bytes = nne_dpu_bank_bytes(&S->p->arch, e->rows, e->cols, e->channels);
    const uint32_t w = nne_dpu_ceil_div(e->channels, S->icp);
    memset(S->tmp, 0, bytes);
    for (uint32_t y = 0; y < e->rows; y++)
        for (uint32_t x = 0; x < e->cols; x++) {
            const uint64_t off = packed(S, y, x, e->cols, w);
            for (uint32_t ch = 0; ch < e->channels; ch++) {
                /* |v| <= 2 * 128 * 2^22 < 2^31 */
                int64_t v =
                    (int64_t)((const int8_t *)f)[e->in0_offset + off + ch] * ((int64_t)1 << a0) +
                    (int64_t)((const int8_t *)f)[e->in1_offset + off + ch] * ((int64_t)1 << a1);
                if (e->act == NNE_DPU_ACT_RELU && v < 0) v = 0;
                ((int8_t *)S->tmp)[off + ch] = (int8_t)sat8(rshift_round(v, s));
            }
        }
    memcpy(S->buf[NNE_DPU_BUF_FMAP] + e->out_offset, S->tmp, bytes);
    return NNE_OK;
}

/* ---- the program ---- */

nne_status nne_dpu_sim_run(const nne_dpu_program *p, const int8_t *input, size_t input_size,
                           int8_t *output, size_t output_size, nne_dpu_sim_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    nne_status s = nne_dpu_program_validate(p);
    if (s) return s;
    if (p->flags & NNE_DPU_PROGRAM_TIMING_ONLY)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "dpu-sim: the program is timing-only (compiled from an f32 graph, no "
                         "parameters); compile a power-of-two quantized s8 graph");
    if (input_size != p->region_size[NNE_DPU_REG_INPUT] ||
        output_size != p->region_size[NNE_DPU_REG_OUTPUT])
        return nne_error(NNE_ERR_INVALID_ARG,
                         "dpu-sim: input / output of %zu / %zu bytes, the program needs %u / %u",
                         input_size, output_size, p->region_size[NNE_DPU_REG_INPUT],
                         p->region_size[NNE_DPU_REG_OUTPUT]);
    sim S;
    memset(&S, 0, sizeof S);
    S.p = p;
    S.icp = (uint32_t)p->arch.icp;
    S.buf_size[NNE_DPU_BUF_FMAP] = p->arch.fmap_bytes;
    S.buf_size[NNE_DPU_BUF_WEIGHT] = p->arch.weight_bytes;
    S.buf_size[NNE_DPU_BUF_BIAS] = p->arch.bias_bytes;
    for (int b = 0; b < NNE_DPU_BUF_COUNT; b++) {
        S.buf[b] = nne_calloc(S.buf_size[b] ? S.buf_size[b] : 1, 1); /* buffers start at 0 */
        if (!S.buf[b]) s = NNE_ERR_NOMEM;
    }
    S.tmp = nne_malloc(p->arch.fmap_bytes ? p->arch.fmap_bytes : 1);
    /* The regions: PARAMS is the program's data, INPUT a copy of the input, WORK and OUTPUT
     * start at 0 (+1: a region of 0 bytes still gets a pointer). */
    for (int r = 0; r < NNE_DPU_REG_COUNT; r++) {
        S.reg[r] = nne_calloc((size_t)p->region_size[r] + 1, 1);
        if (!S.reg[r]) s = NNE_ERR_NOMEM;
    }
    if (!S.tmp) s = NNE_ERR_NOMEM;
    if (!s) {
        if (p->params_size) memcpy(S.reg[NNE_DPU_REG_PARAMS], p->params, p->params_size);
        if (input_size) memcpy(S.reg[NNE_DPU_REG_INPUT], input, input_size);
    }
    for (uint32_t i = 0; i < p->n_instrs && !s; i++) {
        const nne_dpu_instr *in = &p->instrs[i];
        S.st.instrs++;
        switch (in->op) {
        case NNE_DPU_LOAD:
        case NNE_DPU_SAVE:
            s = run_mem(&S, i, in->op, &in->u.mem);
            break;
        case NNE_DPU_CONV:
            s = run_conv(&S, i, &in->u.conv);
            break;
        case NNE_DPU_POOL:
            s = run_pool(&S, in->sub, &in->u.pool);
            break;
        case NNE_DPU_ELEW:
            s = run_elew(&S, i, &in->u.elew);
            break;
        default: /* END: the validator put it last */
            break;
        }
    }
    if (!s) {
        if (output_size) memcpy(output, S.reg[NNE_DPU_REG_OUTPUT], output_size);
        if (stats) *stats = S.st;
    }
    for (int b = 0; b < NNE_DPU_BUF_COUNT; b++) nne_free(S.buf[b]);
    for (int r = 0; r < NNE_DPU_REG_COUNT; r++) nne_free(S.reg[r]);
    nne_free(S.tmp);
    return s;
}
