/* The instruction-stream file (docs/dpu-isa.md): canonical round trip, the reader's checks,
 * the disassembler; and the board parameter file. */
#include <string.h>

#include "common/le.h"
#include "dpu/dpu_internal.h"
#include "nnedge/dpu.h"
#include "nnedge/models.h"
#include "testutil.h"

static bool compile_encoder(const char *arch, nne_dpu_program *p) {
    nne_graph *g = NULL;
    nne_status s = nne_model_cae_seed(64, 96, NNE_CAE_ENCODER, &g);
    CHECK_OK(s);
    if (s) return false;
    nne_dpu_arch a;
    CHECK_OK(nne_dpu_arch_get(arch, &a));
    s = nne_dpu_compile(g, &a, NULL, p);
    CHECK_OK(s);
    nne_graph_free(g);
    return s == NNE_OK;
}

static void test_round_trip(void) {
    nne_dpu_program p, q;
    if (!compile_encoder("B1152", &p)) return;
    uint8_t *b, *b2;
    size_t n, n2;
    CHECK_OK(nne_dpu_program_write_mem(&p, &b, &n));
    CHECK(n == NNE_DPU_HEADER_SIZE + 64u * p.n_layers + 64u * p.n_instrs);
    CHECK(memcmp(b, "NNEDPUI", 8) == 0 && nne_le_rd32(b + 8) == 1);
    CHECK_OK(nne_dpu_program_read_mem(b, n, &q));
    CHECK(q.n_instrs == p.n_instrs && q.n_layers == p.n_layers);
    CHECK(!strcmp(q.arch.name, "B1152") && q.arch.pp == 4 && q.arch.icp == 12);
    CHECK(memcmp(q.region_size, p.region_size, sizeof p.region_size) == 0);
    /* write(read(f)) == f, and the decoded instructions equal the compiled ones. */
    CHECK_OK(nne_dpu_program_write_mem(&q, &b2, &n2));
    CHECK(n2 == n && memcmp(b, b2, n) == 0);
    CHECK(memcmp(p.instrs, q.instrs, p.n_instrs * sizeof *p.instrs) == 0);
    /* Timing is the same from the file. */
    nne_dpu_board bd;
    nne_dpu_board_get("ultra96", &bd);
    double t1, t2;
    nne_dpu_layer_time lt[8];
    CHECK_OK(nne_dpu_time(&p, &bd, lt, &t1));
    CHECK_OK(nne_dpu_time(&q, &bd, lt, &t2));
    CHECK(t1 == t2 && t1 > 0);
    nne_free(b2);
    nne_dpu_program_free(&q);
    /* File API: atomic write, read back. */
    const char *path = "test_dpu_file.dpu";
    CHECK_OK(nne_dpu_program_write_file(&p, path));
    CHECK_OK(nne_dpu_program_read_file(path, &q));
    CHECK(q.n_instrs == p.n_instrs);
    nne_dpu_program_free(&q);
    remove(path);
    CHECK_STATUS(nne_dpu_program_read_file("no/such/file.dpu", &q), NNE_ERR_NOT_FOUND);
    /* Disassembly names every layer and ends with END. */
    char *text = NULL;
    size_t tn = 0;
    FILE *f = open_memstream(&text, &tn);
    nne_dpu_disasm(&p, f);
    fclose(f);
    CHECK(strstr(text, "arch B1152") && strstr(text, "conv2d_5") && strstr(text, "CONV") &&
          strstr(text, "LOAD weight[") && strstr(text, "SAVE") && strstr(text, "prelu"));
    CHECK(tn > 5 && strcmp(text + tn - 5, " END\n") == 0);
    free(text);
    nne_free(b);
    nne_dpu_program_free(&p);
}

/* Corrupt a copy of a valid file with `edit`, optionally fix the CRC, expect `want`. */
static void expect_bad(const uint8_t *b, size_t n, size_t off, uint8_t val, bool fix,
                       nne_status want, const char *msg) {
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    c[off] = val;
    if (fix) nne_dpu_fix_checksum(c, n);
    nne_dpu_program q;
    CHECK_STATUS(nne_dpu_program_read_mem(c, n, &q), want);
    CHECK_MSG(strstr(nne_last_error(), msg) != NULL, "'%s' lacks '%s'", nne_last_error(), msg);
    CHECK(q.instrs == NULL && q.layers == NULL);
    free(c);
}

static void test_bad_input(void) {
    nne_dpu_program p, q;
    if (!compile_encoder("B512", &p)) return;
    uint8_t *b;
    size_t n;
    CHECK_OK(nne_dpu_program_write_mem(&p, &b, &n));
    const size_t ins = NNE_DPU_HEADER_SIZE + 64u * p.n_layers; /* first instruction */
    expect_bad(b, n, 0, 'X', false, NNE_ERR_FORMAT, "magic");
    expect_bad(b, n, 8, 2, true, NNE_ERR_UNSUPPORTED, "version 2");
    CHECK(p.flags == NNE_DPU_PROGRAM_TIMING_ONLY && b[12] == 1); /* f32 graph: timing only */
    expect_bad(b, n, 12, 0x81, true, NNE_ERR_UNSUPPORTED, "flags");
    expect_bad(b, n, 12, 0, true, NNE_ERR_FORMAT, "params data"); /* executable without data */
    expect_bad(b, n, n - 1, (uint8_t)(b[n - 1] ^ 1), false, NNE_ERR_CHECKSUM, "CRC");
    expect_bad(b, n, 124, 1, true, NNE_ERR_FORMAT, "reserved");
    expect_bad(b, n, 108, 0, true, NNE_ERR_FORMAT, "do not match the input"); /* in_h */
    expect_bad(b, n, 120, 99, true, NNE_ERR_FORMAT, "fixed-point position");  /* fp_input */
    expect_bad(b, n, 66, 0, true, NNE_ERR_UNSUPPORTED, "buffer sizes");       /* 0x20000 -> 0 */
    expect_bad(b, n, ins, 9, true, NNE_ERR_FORMAT, "unknown opcode");
    expect_bad(b, n, ins + 63, 1, true, NNE_ERR_FORMAT, "reserved");
    /* The first instruction loads the bias; a bank offset past the buffer is refused. */
    CHECK(p.instrs[0].op == NNE_DPU_LOAD && p.instrs[0].u.mem.buffer == NNE_DPU_BUF_BIAS);
    expect_bad(b, n, ins + 14, 0x7f, true, NNE_ERR_FORMAT, "past the bias buffer");
    expect_bad(b, n, ins + 16, NNE_DPU_REG_WORK, true, NNE_ERR_FORMAT, "params only");
    expect_bad(b, n, ins + 11, 0xff, true, NNE_ERR_FORMAT, "past the params region");
    /* The layer table must tile the instructions. */
    expect_bad(b, n, NNE_DPU_HEADER_SIZE + 32, 1, true, NNE_ERR_FORMAT, "layer 0");
    /* Truncation: the recorded size no longer matches. */
    CHECK_STATUS(nne_dpu_program_read_mem(b, n - 64, &q), NNE_ERR_FORMAT);
    CHECK_STATUS(nne_dpu_program_read_mem(b, 100, &q), NNE_ERR_FORMAT);
    CHECK_STATUS(nne_dpu_program_read_mem(b, 0, &q), NNE_ERR_FORMAT);
    nne_free(b);
    nne_dpu_program_free(&p);
}

static void test_board_file(void) {
    nne_dpu_board b;
    const char *ok = "# my board\nbase = zcu104\nname = kv260\n device = XCK26 \n"
                     "clock_mhz = 250   # below max\nmax_clock_mhz=300\ncores=1\n\n"
                     "ddr_gbps = 19.2\nburst_efficiency = 0.6\nmax_arch = b3136\n";
    CHECK_OK(nne_dpu_board_parse(ok, strlen(ok), &b));
    CHECK(!strcmp(b.name, "kv260") && !strcmp(b.device, "XCK26") && b.clock_mhz == 250 &&
          b.cores == 1 && b.burst_efficiency == 0.6 && !strcmp(b.max_arch, "B3136") &&
          b.dsp_clock_factor == 2);
    const struct {
        const char *text, *msg;
    } bad[] = {
        {"clock_mhz = fast\n", "line 1: bad value"},
        {"name = a\nname = b\n", "line 2: key 'name' given twice"},
        {"cores = 0\n", "bad value"},
        {"frobnicate = 1\n", "unknown key 'frobnicate'"},
        {"clock_mhz 150\n", "expected key = value"},
        {"name = x\nbase = ultra96\n", "'base' must be the first key"},
        {"base = pynq\n", "unknown base board"},
        {"max_arch = B999\n", "bad value"},
        {"burst_efficiency = 1.5\n", "bad value"},
        {"clock_mhz = 1e400\n", "bad value"},
        {"name = a b\n", "bad value"},
        {"clock_mhz = 400\nmax_clock_mhz = 300\n", "above max_clock_mhz"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STATUS(nne_dpu_board_parse(bad[i].text, strlen(bad[i].text), &b), NNE_ERR_FORMAT);
        CHECK_MSG(strstr(nne_last_error(), bad[i].msg) != NULL, "'%s' lacks '%s'", nne_last_error(),
                  bad[i].msg);
    }
    char nul[] = "name = a\0b\n";
    CHECK_STATUS(nne_dpu_board_parse(nul, sizeof nul - 1, &b), NNE_ERR_FORMAT);
    /* An empty file is ultra96's parameters under the name "custom". */
    CHECK_OK(nne_dpu_board_parse("", 0, &b));
    CHECK(!strcmp(b.name, "custom") && b.clock_mhz == 150);
    /* Presets and files through one loader. */
    CHECK_OK(nne_dpu_board_load("ZCU102", &b));
    CHECK(b.cores == 3 && b.ddr_gbps == 19.2);
    CHECK_STATUS(nne_dpu_board_load("no-such-board", &b), NNE_ERR_NOT_FOUND);
    CHECK(strstr(nne_last_error(), "no-such-board") != NULL);
}

/* Total latency of the cae-seed encoder (64x96) on `a` compiled and timed for board b. */
static double encoder_ms(const char *arch, const nne_dpu_board *b, uint64_t *bytes) {
    nne_graph *g = NULL;
    CHECK_OK(nne_model_cae_seed(64, 96, NNE_CAE_ENCODER, &g));
    nne_dpu_arch a;
    CHECK_OK(nne_dpu_arch_get(arch, &a));
    nne_dpu_compile_opts o = {NNE_DPU_TILING_DYNAMIC, b};
    nne_dpu_program p;
    double ms = -1;
    if (g && nne_dpu_compile(g, &a, &o, &p) == NNE_OK) {
        nne_dpu_layer_time lt[8];
        CHECK_OK(nne_dpu_time(&p, b, lt, &ms));
        *bytes = 0;
        for (uint32_t l = 0; l < p.n_layers; l++) *bytes += lt[l].load_bytes + lt[l].save_bytes;
        nne_dpu_program_free(&p);
    }
    nne_graph_free(g);
    CHECK(ms > 0);
    return ms;
}

/* A board that is no preset, from a complete file (no base): it drives the compiler and the
 * timing model like a preset, and each of its parameters moves the result the physical way. */
static void test_board_file_timing(void) {
    const char *path = "test_dpu_kv260.board";
    const char *text = "name = kv260\ndevice = XCK26\nclock_mhz = 300\nmax_clock_mhz = 300\n"
                       "dsp_clock_factor = 2\ncores = 4\nddr_gbps = 19.2\n"
                       "burst_efficiency = 0.53\nmax_arch = B4096\n";
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
    nne_dpu_board kv, zcu;
    CHECK_OK(nne_dpu_board_load(path, &kv));
    remove(path);
    CHECK(!strcmp(kv.name, "kv260") && kv.cores == 4 && kv.clock_mhz == 300);
    /* Same clock, DDR and burst efficiency as the zcu104 preset: the same latency. */
    CHECK_OK(nne_dpu_board_get("zcu104", &zcu));
    uint64_t bytes = 0, b2 = 0;
    const double t = encoder_ms("B4096", &kv, &bytes), tz = encoder_ms("B4096", &zcu, &b2);
    CHECK_MSG(t == tz, "board file %.6f ms, zcu104 preset %.6f ms", t, tz);
    /* Less DDR bandwidth, a slower clock: slower. Four cores: four frames in flight. */
    nne_dpu_board slow = kv;
    slow.ddr_gbps = 1.0;
    CHECK(encoder_ms("B4096", &slow, &b2) > t * 1.2);
    slow = kv;
    slow.clock_mhz = 150;
    CHECK(encoder_ms("B4096", &slow, &b2) > t * 1.2);
    const double f1 = nne_dpu_throughput_fps(&kv, t, bytes, 1, 1),
                 f4 = nne_dpu_throughput_fps(&kv, t, bytes, kv.cores, 8);
    CHECK_MSG(f4 > 3.99 * f1 || f4 <= kv.ddr_gbps * 1e9 * kv.burst_efficiency / (double)bytes,
              "4 cores: %.2f fps, 1 core %.2f", f4, f1);
}

int main(void) {
    NNE_RUN(test_round_trip);
    NNE_RUN(test_bad_input);
    NNE_RUN(test_board_file);
    NNE_RUN(test_board_file_timing);
    return nne_test_summary();
}
