/* Calibration samples and progress shared by quantize and prune (cli.h). */
#include <unistd.h>

#include "cli.h"

nne_status cli_calib_sample(void *ctx, int32_t i, float *x) {
    const cli_calib *c = ctx;
    return nne_dataset_crop_batch(c->ds, &c->crop, (uint64_t)i, x);
}

void cli_calib_progress(void *ctx, const char *phase, int32_t done, int32_t total) {
    const cli_calib *c = ctx;
    if (c->quiet || !isatty(STDERR_FILENO)) {
        if (!c->quiet && done == total)
            fprintf(stderr, "nnedge %s: %s: %d/%d\n", c->cmd, phase, (int)done, (int)total);
        return;
    }
    const int width = 30, fill = total ? (int)((int64_t)done * width / total) : width;
    fprintf(stderr, "\r%-10s [%.*s%*s] %d/%d %.1f s", phase, fill,
            "==============================", width - fill, "", (int)done, (int)total,
            (double)(nne_time_ns() - c->t0) / 1e9);
    if (done == total) fputc('\n', stderr);
}
