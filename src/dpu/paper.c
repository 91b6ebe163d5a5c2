/* Measured DPU profiles from the CAE paper (../shared/seeds/cae-image-compression-on-fpga.txt,
 * Tables 3-6): the encoder of cae-seed on an Ultra96-V2 at 150 MHz, one row per layer. The
 * calibration test and `nnedge profile --paper` compare the timing model with them. */
#include <strings.h>

#include "nnedge/dpu.h"

/* name, Workload(MOP), Mem(MB), RunTime(ms), Perf(GOPS), Utilization, MB/S */
static const nne_dpu_measured k_b512[5] = {
    {"conv2d_1", 675.06, 13.12, 15.851, 42.6, 0.277, 828.0},
    {"conv2d_2", 1788.42, 15.06, 23.708, 75.4, 0.491, 635.1},
    {"conv2d_3", 3530.097, 8.88, 46.178, 76.4, 0.498, 192.2},
    {"conv2d_4", 1741.824, 7.43, 23.463, 74.2, 0.483, 316.6},
    {"conv2d_5", 214.843, 1.66, 2.944, 73.0, 0.475, 563.3},
};
static const nne_dpu_measured k_b1024[5] = {
    {"conv2d_1", 675.06, 13.11, 10.6, 63.7, 0.207, 1236.8},
    {"conv2d_2", 1788.42, 15.03, 11.885, 150.5, 0.490, 1264.9},
    {"conv2d_3", 3530.097, 8.86, 23.457, 150.5, 0.490, 377.8},
    {"conv2d_4", 1741.824, 7.4, 11.759, 148.1, 0.482, 629.7},
    {"conv2d_5", 214.843, 1.66, 1.499, 143.3, 0.467, 1104.3},
};
/* Table 5 is captioned "B2034": a typo for B2304 (Table 1 lists no B2034). */
static const nne_dpu_measured k_b2304[5] = {
    {"conv2d_1", 675.06, 13.11, 7.927, 85.2, 0.123, 1653.4},
    {"conv2d_2", 1788.42, 14.99, 7.061, 253.3, 0.366, 2122.5},
    {"conv2d_3", 3530.097, 8.86, 13.232, 266.8, 0.386, 669.5},
    {"conv2d_4", 1741.824, 7.38, 6.638, 262.4, 0.380, 1111.2},
    {"conv2d_5", 214.843, 1.65, 0.862, 249.2, 0.361, 1915.7},
};

const nne_dpu_measured *nne_dpu_paper_cae(const char *arch, int *n, double *total_ms) {
    /* Table 6: latency (ms) per architecture, the sum of the layers' RunTime. */
    const nne_dpu_measured *t = NULL;
    double total = 0;
    if (arch && !strcasecmp(arch, "B512")) t = k_b512, total = 112.144;
    if (arch && !strcasecmp(arch, "B1024")) t = k_b1024, total = 59.2;
    if (arch && !strcasecmp(arch, "B2304")) t = k_b2304, total = 35.72;
    if (n) *n = t ? 5 : 0;
    if (total_ms) *total_ms = total;
    return t;
}
