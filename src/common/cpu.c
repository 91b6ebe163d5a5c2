/* CPU feature detection (x86-64 CPUID + XGETBV); other architectures report none. AMX
 * permission request (Linux arch_prctl). */
#include <pthread.h>
#include <string.h>

#include "common/cpu_internal.h"
#include "nnedge/common.h"

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

/* Linux x86-64 uapi (asm/prctl.h), spelled out for older headers: the permission request
 * and query for dynamically enabled XSAVE state, and AMX tile data's XSAVE component. */
#define NNE_ARCH_GET_XCOMP_PERM 0x1022
#define NNE_ARCH_REQ_XCOMP_PERM 0x1023
#define NNE_XFEATURE_XTILEDATA  18

bool nne_cpu_amx_perm_syscall(void) {
#if defined(__linux__) && defined(__x86_64__)
    /* The request is per process and idempotent; it fails with EINVAL on a CPU or kernel
     * without AMX support (or the kernel does not know the arch_prctl code). */
    if (syscall(SYS_arch_prctl, NNE_ARCH_REQ_XCOMP_PERM, NNE_XFEATURE_XTILEDATA) != 0) return false;
    unsigned long perm = 0;
    if (syscall(SYS_arch_prctl, NNE_ARCH_GET_XCOMP_PERM, &perm) != 0) return false;
    return (perm >> NNE_XFEATURE_XTILEDATA) & 1;
#else
    return false;
#endif
}

static bool amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_request_once(void) {
    amx_ok = (nne_cpu_features() & NNE_CPU_AMX_TILE) && nne_cpu_amx_perm_syscall();
}

bool nne_cpu_request_amx(void) {
    pthread_once(&amx_once, amx_request_once);
    return amx_ok;
}
