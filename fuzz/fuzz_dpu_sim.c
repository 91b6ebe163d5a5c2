/* libFuzzer target for the DPU functional simulator (docs/dpu-isa.md, "Simulator").
 *
 * Input: u32 LE n, then n bytes of an instruction-stream file (its CRC is recomputed so that
 * mutations reach the validator and the simulator), then the bytes of the input image,
 * repeated to fill the INPUT region (zeros if none). Whatever the reader accepts is executed
 * when its work is small (DDR regions up to 4 MiB, up to 2^26 multiply-accumulates and
 * moved bytes): the simulator must either succeed, twice with the same output, or fail with
 * a message and leave the output untouched. Any breach aborts; ASan/UBSan catch the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpu/dpu_internal.h"
#include "nnedge/dpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what) {
    fprintf(stderr, "fuzz_dpu_sim: %s: %s\n", what, nne_last_error());
    abort();
}

/* Work of a program: MACs of its CONVs plus every element any instruction touches. */
static uint64_t work(const nne_dpu_program *p) {
    uint64_t w = 0;
    for (uint32_t i = 0; i < p->n_instrs; i++) {
        const nne_dpu_instr *in = &p->instrs[i];
        if (in->op == NNE_DPU_LOAD || in->op == NNE_DPU_SAVE)
            w += (uint64_t)in->u.mem.rows * in->u.mem.cols * (in->u.mem.channels + 16u);
        else if (in->op == NNE_DPU_CONV)
            w += (uint64_t)in->u.conv.out_rows * in->u.conv.out_cols *
                 (in->u.conv.out_ch * (uint64_t)in->u.conv.kh * in->u.conv.kw * in->u.conv.in_ch +
                  16u);
        else if (in->op == NNE_DPU_POOL)
            w += (uint64_t)in->u.pool.out_rows * in->u.pool.out_cols * in->u.pool.channels *
                 (uint64_t)(in->u.pool.kh * in->u.pool.kw + 1u);
        else if (in->op == NNE_DPU_ELEW)
            w += (uint64_t)in->u.elew.rows * in->u.elew.cols * in->u.elew.channels;
        w += 64; /* per instruction */
    }
    return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    size_t n =
        (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    if (n > size - 4) n = size - 4;
    /* An exact-size copy (ASan catches reads past the end), CRC fixed. */
    uint8_t *file = malloc(n ? n : 1);
    if (!file) return 0;
    memcpy(file, data + 4, n);
    nne_dpu_fix_checksum(file, n);
    nne_dpu_program p;
    nne_status s = nne_dpu_program_read_mem(file, n, &p);
    free(file);
    if (s != NNE_OK) return 0;
    const uint32_t lim = 4u << 20;
    bool small = work(&p) <= ((uint64_t)1 << 26);
    for (int r = 0; r < NNE_DPU_REG_COUNT; r++) small &= p.region_size[r] <= lim;
    if (small) {
        const uint8_t *img = data + 4 + n;
        const size_t img_n = size - 4 - n;
        const size_t ni = p.region_size[NNE_DPU_REG_INPUT], no = p.region_size[NNE_DPU_REG_OUTPUT];
        int8_t *in = malloc(ni + 1), *a = malloc(no + 1), *b = malloc(no + 1);
        if (!in || !a || !b) abort();
        for (size_t i = 0; i < ni; i++) in[i] = img_n ? (int8_t)img[i % img_n] : 0;
        memset(a, 0x5a, no + 1);
        s = nne_dpu_sim_run(&p, in, ni, a, no, NULL);
        if (s != NNE_OK) {
            if (!nne_last_error()[0]) die("an error without a message");
            for (size_t i = 0; i <= no; i++)
                if (a[i] != 0x5a) die("output written on error");
        } else {
            if (nne_dpu_sim_run(&p, in, ni, b, no, NULL)) die("second run failed");
            if (memcmp(a, b, no) != 0) die("two runs differ");
        }
        free(in);
        free(a);
        free(b);
    }
    nne_dpu_program_free(&p);
    return 0;
}
