/* CPU feature detection (x86-64 CPUID + XGETBV); other architectures report none. */
#include <string.h>

#include "nnedge/common.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static uint32_t detect(void) {
    uint32_t a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
    if (!osxsave) return 0;
    uint64_t xcr0 = xgetbv0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;
    int zmm_ok = (xcr0 & 0xE6) == 0xE6;
    int amx_ok = (xcr0 & (3u << 17)) == (3u << 17);
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (ymm_ok && ((b >> 5) & 1)) f |= NNE_CPU_AVX2;
    if (ymm_ok && fma) f |= NNE_CPU_FMA;
    if (zmm_ok && ((b >> 16) & 1)) f |= NNE_CPU_AVX512F;
    if (zmm_ok && ((b >> 30) & 1)) f |= NNE_CPU_AVX512BW;
    if (zmm_ok && ((b >> 31) & 1)) f |= NNE_CPU_AVX512VL;
    if (zmm_ok && ((c >> 11) & 1)) f |= NNE_CPU_AVX512VNNI;
    if (amx_ok && ((d >> 24) & 1)) f |= NNE_CPU_AMX_TILE;
    if (amx_ok && ((d >> 25) & 1)) f |= NNE_CPU_AMX_INT8;
    if (amx_ok && ((d >> 22) & 1)) f |= NNE_CPU_AMX_BF16;
    uint32_t a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    if (zmm_ok && ((a1 >> 5) & 1)) f |= NNE_CPU_AVX512BF16;
    return f;
}
#else
static uint32_t detect(void) { return 0; }
#endif

uint32_t nne_cpu_features(void) {
    static uint32_t cached;
    static int done;
    if (!done) {
        cached = detect();
        done = 1;
    }
    return cached;
}

const char *nne_cpu_features_str(uint32_t m, char *buf, size_t n) {
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {NNE_CPU_AVX2, "avx2"},
        {NNE_CPU_FMA, "fma"},
        {NNE_CPU_AVX512F, "avx512f"},
        {NNE_CPU_AVX512BW, "avx512bw"},
        {NNE_CPU_AVX512VL, "avx512vl"},
        {NNE_CPU_AVX512VNNI, "avx512vnni"},
        {NNE_CPU_AVX512BF16, "avx512bf16"},
        {NNE_CPU_AMX_TILE, "amx-tile"},
        {NNE_CPU_AMX_INT8, "amx-int8"},
        {NNE_CPU_AMX_BF16, "amx-bf16"},
    };
    if (!n) return buf;
    buf[0] = 0;
    size_t len = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(m & names[i].bit)) continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? " " : "", names[i].name);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
    return buf;
}
