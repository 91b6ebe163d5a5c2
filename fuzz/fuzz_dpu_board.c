/* libFuzzer target for the DPU board parameter-file parser (docs/dpu-model.md, "Board
 * files"). Whatever it accepts must be within the documented ranges; whatever it refuses
 * must come with a message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnedge/dpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1); /* not terminated: the parser takes a length */
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    nne_dpu_board b;
    nne_status s = nne_dpu_board_parse(copy, size, &b);
    if (s == NNE_OK) {
        nne_dpu_arch a;
        if (!(b.clock_mhz > 0 && b.clock_mhz <= b.max_clock_mhz && b.cores >= 1 && b.ddr_gbps > 0 &&
              b.burst_efficiency > 0 && b.burst_efficiency <= 1 && b.dsp_clock_factor >= 1 &&
              memchr(b.name, 0, sizeof b.name) && memchr(b.device, 0, sizeof b.device) &&
              nne_dpu_arch_get(b.max_arch, &a) == NNE_OK))
            abort();
    } else if (!nne_last_error()[0]) {
        abort();
    }
    free(copy);
    return 0;
}
