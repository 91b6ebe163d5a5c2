/* common/: bf16 scalar conversion (round to nearest even, NaN, inf, subnormals) against an
 * independent oracle, and the AMX permission request (nne_cpu_request_amx). */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "common/cpu_internal.h"
#include "testutil.h"

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The nearest bf16 by comparing distances in double (exact for these operands): the two
 * candidates are the truncation and the next bf16 away from zero; ties pick the even one.
 * Independent of the bit trick in common.h. Finite input only. */
static nne_bf16 oracle(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    const double d_lo = fabs((double)f - (double)nne_bf16_to_f32(lo));
    const double hv = (hi & 0x7F80) == 0x7F80 && (hi & 0x7F) == 0 ? INFINITY : 0;
    /* past the largest finite bf16 the upper candidate is inf; RNE overflows at the
     * midpoint to 2^128 (the value "0x7F80" would have with an unbounded exponent) */
    const double hi_val =
        hv != 0 ? copysign(ldexp(1.0, 128), (double)f) : (double)nne_bf16_to_f32(hi);
    const double d_hi = fabs((double)f - hi_val);
    if (d_lo < d_hi) return lo;
    if (d_hi < d_lo) return hi;
    return (lo & 1) ? hi : lo;
}

static void test_bf16_round_trip(void) {
    /* Every non-NaN bf16 survives bf16 -> f32 -> bf16 (subnormals and +-inf included). */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7F80) == 0x7F80 && (h & 0x7F)) continue;
        bad += nne_f32_to_bf16(nne_bf16_to_f32((nne_bf16)h)) != h;
    }
    CHECK_MSG(bad == 0, "%d values changed", bad);
    CHECK(nne_bf16_to_f32(0x3F80) == 1.0f && nne_bf16_to_f32(0xC000) == -2.0f);
    CHECK(nne_bf16_to_f32(0x0001) == ldexpf(1.0f, -133)); /* smallest subnormal */
}

static void test_bf16_rne(void) {
    const float one = 1.0f, ulp = ldexpf(1.0f, -7);      /* bf16 spacing at 1 */
    CHECK(nne_f32_to_bf16(one + ulp / 2) == 0x3F80);     /* tie -> even (down) */
    CHECK(nne_f32_to_bf16(one + 3 * ulp / 2) == 0x3F82); /* tie -> even (up) */
    CHECK(nne_f32_to_bf16(-(one + ulp / 2)) == 0xBF80);  /* sign-symmetric */
    CHECK(nne_f32_to_bf16(-(one + 3 * ulp / 2)) == 0xBF82);
    CHECK(nne_f32_to_bf16(bits_f32(0x3F808001)) == 0x3F81); /* just above the tie */
    CHECK(nne_f32_to_bf16(bits_f32(0x3F807FFF)) == 0x3F80); /* just below */
    CHECK(nne_f32_to_bf16(bits_f32(0x3FFFFFFF)) == 0x4000); /* carry into the exponent */
    /* overflow: the largest bf16 is 0x7F7F; values at or past its upper midpoint -> inf */
    CHECK(nne_f32_to_bf16(bits_f32(0x7F7F7FFF)) == 0x7F7F);
    CHECK(nne_f32_to_bf16(bits_f32(0x7F7F8000)) == 0x7F80);
    CHECK(nne_f32_to_bf16(3.4e38f) == 0x7F80 && nne_f32_to_bf16(-3.4e38f) == 0xFF80);
    CHECK(nne_f32_to_bf16(INFINITY) == 0x7F80 && nne_f32_to_bf16(-INFINITY) == 0xFF80);
    /* subnormals round like normals (no flush): ties to even around 2^-133 */
    CHECK(nne_f32_to_bf16(bits_f32(0x00008000)) == 0x0000);
    CHECK(nne_f32_to_bf16(bits_f32(0x00018000)) == 0x0002);
    CHECK(nne_f32_to_bf16(bits_f32(0x00008001)) == 0x0001);
    CHECK(nne_f32_to_bf16(bits_f32(0x00000001)) == 0x0000);
    CHECK(nne_f32_to_bf16(bits_f32(0x807FFFFF)) == 0x8080); /* -subnormal up to -2^-126 */
    CHECK(nne_f32_to_bf16(-0.0f) == 0x8000 && nne_f32_to_bf16(0.0f) == 0x0000);
}

static void test_bf16_nan(void) {
    CHECK(nne_f32_to_bf16(bits_f32(0x7FC00000)) == 0x7FC0);
    CHECK(nne_f32_to_bf16(bits_f32(0xFFC00000)) == 0xFFC0); /* sign kept */
    CHECK(nne_f32_to_bf16(bits_f32(0x7F800001)) == 0x7FC0); /* signalling, low payload */
    CHECK(nne_f32_to_bf16(bits_f32(0x7FBFFFFF)) == 0x7FFF); /* would round to 0x7FC0 */
    CHECK(nne_f32_to_bf16(bits_f32(0x7FFFFFFF)) == 0x7FFF); /* no carry into the sign */
    CHECK(isnan(nne_bf16_to_f32(nne_f32_to_bf16(NAN))));
}

static void test_bf16_oracle(void) {
    /* Random bit patterns over every exponent, and values near ties. */
    uint64_t s = 0x9E3779B97F4A7C15ull;
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(s >> 32);
        if (i & 1) u = (u & 0xFFFF0000u) | (0x8000u + ((u & 3) - 1)); /* tie, tie +- 1 */
        if ((u & 0x7F800000u) == 0x7F800000u) continue;               /* inf/NaN: above */
        const float f = bits_f32(u);
        if (nne_f32_to_bf16(f) != oracle(f)) {
            if (!bad)
                CHECK_MSG(0, "0x%08x -> 0x%04x, oracle 0x%04x", u, nne_f32_to_bf16(f), oracle(f));
            bad++;
        }
    }
    CHECK(bad == 0);
}

static void *amx_thread(void *arg) {
    *(bool *)arg = nne_cpu_request_amx();
    return NULL;
}

static void test_amx_permission(void) {
    const bool has_amx = (nne_cpu_features() & NNE_CPU_AMX_TILE) != 0;
    bool r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, amx_thread, &r[i]) == 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    const bool again = nne_cpu_request_amx();
    for (int i = 0; i < 4; i++) CHECK(r[i] == again); /* one answer, cached */
    if (!has_amx) {
        CHECK(!again);
        /* The syscall itself, which the request skips on such a CPU: refused, no crash. */
        CHECK(!nne_cpu_amx_perm_syscall());
        printf("  no AMX on this CPU: permission refused as expected\n");
    } else {
        printf("  AMX tiles reported: permission %s\n", again ? "granted" : "refused by the OS");
    }
}

int main(void) {
    NNE_RUN(test_bf16_round_trip);
    NNE_RUN(test_bf16_rne);
    NNE_RUN(test_bf16_nan);
    NNE_RUN(test_bf16_oracle);
    NNE_RUN(test_amx_permission);
    return nne_test_summary();
}
