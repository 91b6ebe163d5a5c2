/* The DPU timing model (docs/dpu-model.md), driven by the instruction stream.
 *
 * Four in-order engines run concurrently: LOAD, SAVE, CONV and MISC (pool, element-wise).
 * An instruction starts when its engine is free and when the on-chip ranges it reads were
 * written, and the ranges it writes were read and written, by the instructions before it
 * (a scoreboard on buffer ranges: this is how double buffering overlaps load, compute and
 * save). It then takes its engine cycles, or for LOAD / SAVE the time the DDR needs for its
 * bytes if that is longer, plus a fixed per-instruction overhead. A layer takes the longest
 * of its engines' finishing times and of its total DDR traffic at the effective bandwidth.
 *
 * Engine cycles (fabric clock; the DSPs run at twice the fabric clock, which is how the
 * DPUCZDX8G reaches pp x icp x ocp MACs per fabric cycle with half as many DSPs):
 *   CONV  out_rows x ceil(out_cols / pp) x ceil(out_ch / ocp) x kh x
 *         (kw x ceil(in_ch / icp), or ceil(kw x in_ch / icp) with channel augmentation)
 *   LOAD  AXI beats: every contiguous DDR run rounded up to 16-byte beats
 *   SAVE  rows x cols x ceil(channels / icp) / save_words (one pixel's word per cycle)
 *   POOL  out_rows x ceil(out_cols / pool_pp) x ceil(channels / icp) x kh x kw
 *   ELEW  rows x ceil(cols / elew_pp) x ceil(channels / icp)
 */
#include <math.h>
#include <string.h>

#include "dpu/dpu_internal.h"

double nne_dpu_ddr_bytes_per_cycle(const nne_dpu_board *b) {
    return b->ddr_gbps * 1e9 * b->burst_efficiency / (b->clock_mhz * 1e6);
}

/* DDR bytes of a LOAD/SAVE block rounded to AXI beats: a run is contiguous along channels,
 * along whole rows when the pixel stride equals the channel count, and over the whole
 * block when rows are back to back as well. */
static uint64_t mem_beat_bytes(const nne_dpu_arch *a, const nne_dpu_mem *m) {
    uint64_t run = m->channels, runs = (uint64_t)m->rows * m->cols;
    if (m->col_stride == m->channels || m->cols == 1) {
        run = (uint64_t)m->cols * m->channels;
        runs = m->rows;
        if (m->row_stride == run || m->rows == 1) {
            run *= m->rows;
            runs = 1;
        }
    }
    uint64_t beat = (uint64_t)a->axi_bytes;
    return runs * nne_dpu_ceil_div64(run, beat) * beat;
}

uint64_t nne_dpu_instr_cycles(const nne_dpu_arch *a, const nne_dpu_instr *in, uint64_t *ddr_bytes) {
    *ddr_bytes = 0;
    const uint32_t icp = (uint32_t)a->icp;
    switch (in->op) {
    case NNE_DPU_LOAD: {
        uint64_t bytes = mem_beat_bytes(a, &in->u.mem);
        *ddr_bytes = bytes;
        return bytes / (uint64_t)a->axi_bytes;
    }
    case NNE_DPU_SAVE: {
        const nne_dpu_mem *m = &in->u.mem;
        uint64_t bytes = mem_beat_bytes(a, m);
        *ddr_bytes = bytes;
        uint64_t words = (uint64_t)m->rows * m->cols * nne_dpu_ceil_div(m->channels, icp);
        uint64_t cyc = nne_dpu_ceil_div64(words, (uint64_t)a->save_words);
        uint64_t beats = bytes / (uint64_t)a->axi_bytes;
        return cyc > beats ? cyc : beats;
    }
    case NNE_DPU_CONV: {
        const nne_dpu_conv *c = &in->u.conv;
        uint64_t per = (c->flags & NNE_DPU_CONV_AUG)
                           ? (uint64_t)c->kh * nne_dpu_ceil_div((uint32_t)c->kw * c->in_ch, icp)
                           : (uint64_t)c->kh * c->kw * nne_dpu_ceil_div(c->in_ch, icp);
        return (uint64_t)c->out_rows * nne_dpu_ceil_div(c->out_cols, (uint32_t)a->pp) *
               nne_dpu_ceil_div(c->out_ch, (uint32_t)a->ocp) * per;
    }
    case NNE_DPU_POOL: {
        const nne_dpu_pool *p = &in->u.pool;
        return (uint64_t)p->out_rows * nne_dpu_ceil_div(p->out_cols, (uint32_t)a->pool_pp) *
               nne_dpu_ceil_div(p->channels, icp) * p->kh * p->kw;
    }
    case NNE_DPU_ELEW: {
        const nne_dpu_elew *e = &in->u.elew;
        return (uint64_t)e->rows * nne_dpu_ceil_div(e->cols, (uint32_t)a->elew_pp) *
               nne_dpu_ceil_div(e->channels, icp);
    }
    default:
        return 0;
    }
}

/* ---- scoreboard ---- */

enum { ENG_LOAD, ENG_SAVE, ENG_CONV, ENG_MISC, ENG_COUNT };

typedef struct range {
    uint8_t buffer;
    uint32_t lo, hi; /* [lo, hi) bytes */
} range;

/* The on-chip ranges used so far, one entry per distinct range with the end times of its
 * last write and last read. Compiled programs use a handful of ranges per layer (the double
 * buffers' slots), so the table holds their whole history; a program with more distinct
 * ranges evicts the least recently used, whose dependencies are then ignored. */
#define SB_SIZE 64
typedef struct access {
    range r;
    double w_end, r_end;
    uint64_t used;
} access;

typedef struct scoreboard {
    access a[SB_SIZE];
    uint32_t n;
    uint64_t clock;
} scoreboard;

static bool overlap(const range *x, const range *y) {
    return x->buffer == y->buffer && x->lo < y->hi && y->lo < x->hi;
}

/* Earliest start allowed by the ranges an instruction reads (after the writes to them) and
 * writes (after the reads and writes of them). */
static double sb_ready(const scoreboard *sb, const range *rd, int nrd, const range *wr, int nwr) {
    double t = 0;
    for (uint32_t k = 0; k < sb->n; k++) {
        const access *ac = &sb->a[k];
        for (int i = 0; i < nrd; i++)
            if (overlap(&ac->r, &rd[i]) && ac->w_end > t) t = ac->w_end;
        for (int i = 0; i < nwr; i++)
            if (overlap(&ac->r, &wr[i])) {
                if (ac->w_end > t) t = ac->w_end;
                if (ac->r_end > t) t = ac->r_end;
            }
    }
    return t;
}

static void sb_add(scoreboard *sb, const range *r, bool write, double end) {
    access *ac = NULL;
    for (uint32_t k = 0; k < sb->n && !ac; k++)
        if (sb->a[k].r.buffer == r->buffer && sb->a[k].r.lo == r->lo && sb->a[k].r.hi == r->hi)
            ac = &sb->a[k];
    if (!ac) {
        if (sb->n < SB_SIZE) {
            ac = &sb->a[sb->n++];
        } else {
            ac = &sb->a[0];
            for (uint32_t k = 1; k < SB_SIZE; k++)
                if (sb->a[k].used < ac->used) ac = &sb->a[k];
        }
        ac->r = *r;
        ac->w_end = ac->r_end = 0;
    }
    ac->used = ++sb->clock;
    if (write && end > ac->w_end) ac->w_end = end;
    if (!write && end > ac->r_end) ac->r_end = end;
}

static range mk(uint8_t buf, uint64_t lo, uint64_t len) {
    range r = {buf, (uint32_t)lo, (uint32_t)(lo + len)};
    return r;
}

/* The on-chip ranges an instruction reads and writes (at most 3 and 1). */
static void instr_ranges(const nne_dpu_arch *a, const nne_dpu_instr *in, range *rd, int *nrd,
                         range *wr, int *nwr) {
    *nrd = *nwr = 0;
    switch (in->op) {
    case NNE_DPU_LOAD:
    case NNE_DPU_SAVE: {
        const nne_dpu_mem *m = &in->u.mem;
        range r =
            mk(m->buffer, m->bank_offset, nne_dpu_bank_bytes(a, m->rows, m->cols, m->channels));
        if (in->op == NNE_DPU_LOAD)
            wr[(*nwr)++] = r;
        else
            rd[(*nrd)++] = r;
        break;
    }
    case NNE_DPU_CONV: {
        const nne_dpu_conv *c = &in->u.conv;
        rd[(*nrd)++] = mk(NNE_DPU_BUF_FMAP, c->in_offset,
                          nne_dpu_bank_bytes(a, c->in_rows, c->in_cols, c->in_ch));
        rd[(*nrd)++] = mk(NNE_DPU_BUF_WEIGHT, c->weight_offset,
                          nne_dpu_weight_bank_bytes(a, c->out_ch, c->kh, c->kw, c->in_ch));
        uint32_t lo = c->bias_offset, hi = c->bias_offset + c->out_ch;
        if (c->act == NNE_DPU_ACT_PRELU) {
            if (c->act_offset < lo) lo = c->act_offset;
            if (c->act_offset + c->out_ch > hi) hi = c->act_offset + c->out_ch;
        }
        rd[(*nrd)++] = mk(NNE_DPU_BUF_BIAS, lo, hi - lo);
        wr[(*nwr)++] = mk(NNE_DPU_BUF_FMAP, c->out_offset,
                          nne_dpu_bank_bytes(a, c->out_rows, c->out_cols, c->out_ch));
        break;
    }
    case NNE_DPU_POOL: {
        const nne_dpu_pool *p = &in->u.pool;
        rd[(*nrd)++] = mk(NNE_DPU_BUF_FMAP, p->in_offset,
                          nne_dpu_bank_bytes(a, p->in_rows, p->in_cols, p->channels));
        wr[(*nwr)++] = mk(NNE_DPU_BUF_FMAP, p->out_offset,
                          nne_dpu_bank_bytes(a, p->out_rows, p->out_cols, p->channels));
        break;
    }
    case NNE_DPU_ELEW: {
        const nne_dpu_elew *e = &in->u.elew;
        uint64_t sz = nne_dpu_bank_bytes(a, e->rows, e->cols, e->channels);
        rd[(*nrd)++] = mk(NNE_DPU_BUF_FMAP, e->in0_offset, sz);
        rd[(*nrd)++] = mk(NNE_DPU_BUF_FMAP, e->in1_offset, sz);
        wr[(*nwr)++] = mk(NNE_DPU_BUF_FMAP, e->out_offset, sz);
        break;
    }
    default:
        break;
    }
}

void nne_dpu_time_instrs(const nne_dpu_arch *a, const nne_dpu_board *b, const nne_dpu_instr *in,
                         uint32_t n, nne_dpu_layer_time *t) {
    memset(t, 0, sizeof *t);
    const double bpc = nne_dpu_ddr_bytes_per_cycle(b);
    double eng[ENG_COUNT] = {0, 0, 0, 0};
    double ddr_total = 0, compute = 0, load_busy = 0, save_busy = 0;
    scoreboard sb;
    sb.n = 0;
    sb.clock = 0;
    for (uint32_t i = 0; i < n; i++) {
        const nne_dpu_instr *x = &in[i];
        int e;
        double overhead;
        switch (x->op) {
        case NNE_DPU_LOAD:
            e = ENG_LOAD, overhead = a->load_overhead;
            break;
        case NNE_DPU_SAVE:
            e = ENG_SAVE, overhead = a->save_overhead;
            break;
        case NNE_DPU_CONV:
            e = ENG_CONV, overhead = a->conv_overhead;
            break;
        case NNE_DPU_POOL:
        case NNE_DPU_ELEW:
            e = ENG_MISC, overhead = a->misc_overhead;
            break;
        default:
            continue;
        }
        uint64_t ddr_bytes;
        double dur = (double)nne_dpu_instr_cycles(a, x, &ddr_bytes);
        if (ddr_bytes) {
            const nne_dpu_mem *m = &x->u.mem;
            uint64_t payload = (uint64_t)m->rows * m->cols * m->channels;
            if (x->op == NNE_DPU_LOAD)
                t->load_bytes += payload;
            else
                t->save_bytes += payload;
            double dc = (double)ddr_bytes / bpc;
            ddr_total += dc;
            if (dc > dur) dur = dc;
        } else {
            compute += dur + overhead;
        }
        dur += overhead;
        if (e == ENG_LOAD) load_busy += dur;
        if (e == ENG_SAVE) save_busy += dur;
        range rd[3], wr[1];
        int nrd, nwr;
        instr_ranges(a, x, rd, &nrd, wr, &nwr);
        double start = sb_ready(&sb, rd, nrd, wr, nwr);
        if (eng[e] > start) start = eng[e];
        double end = start + dur;
        eng[e] = end;
        for (int k = 0; k < nrd; k++) sb_add(&sb, &rd[k], false, end);
        for (int k = 0; k < nwr; k++) sb_add(&sb, &wr[k], true, end);
    }
    double mk_span = 0;
    for (int e = 0; e < ENG_COUNT; e++)
        if (eng[e] > mk_span) mk_span = eng[e];
    if (ddr_total > mk_span) mk_span = ddr_total;
    t->cycles = (uint64_t)ceil(mk_span);
    t->compute_cycles = (uint64_t)ceil(compute);
    t->ddr_cycles = (uint64_t)ceil(ddr_total);
    t->load_cycles = (uint64_t)ceil(load_busy);
    t->save_cycles = (uint64_t)ceil(save_busy);
    t->ms = (double)t->cycles / (b->clock_mhz * 1e3);
}

nne_status nne_dpu_time(const nne_dpu_program *p, const nne_dpu_board *board,
                        nne_dpu_layer_time *times, double *total_ms) {
    if (!(board->clock_mhz > 0) || !(board->ddr_gbps > 0) || !(board->burst_efficiency > 0))
        return nne_error(NNE_ERR_INVALID_ARG,
                         "board %s: clock, bandwidth and efficiency must be "
                         "positive",
                         board->name);
    double total = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        const nne_dpu_layer *L = &p->layers[l];
        nne_dpu_time_instrs(&p->arch, board, p->instrs + L->first, L->count, &times[l]);
        total += times[l].ms;
    }
    if (total_ms) *total_ms = total;
    return NNE_OK;
}

double nne_dpu_throughput_fps(const nne_dpu_board *board, double latency_ms,
                              uint64_t bytes_per_frame, int32_t cores, int32_t threads) {
    if (!(latency_ms > 0)) return 0;
    int32_t busy = cores < threads ? cores : threads;
    if (busy < 1) busy = 1;
    double fps = busy * 1000.0 / latency_ms;
    if (bytes_per_frame) {
        double ddr_fps = board->ddr_gbps * 1e9 * board->burst_efficiency / (double)bytes_per_frame;
        if (ddr_fps < fps) fps = ddr_fps;
    }
    return fps;
}
