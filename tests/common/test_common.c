/* common/: status messages, overflow-checked sizes, CRC-32, f16 conversion, JSON writer,
 * shapes and dtypes. */
#include <math.h>
#include <string.h>

#include "nnedge/json.h"
#include "nnedge/tensor.h"
#include "testutil.h"

static void test_errors(void) {
    CHECK(nne_error(NNE_ERR_FORMAT, "%s: bad %d", "f.nne", 7) == NNE_ERR_FORMAT);
    CHECK(strcmp(nne_last_error(), "f.nne: bad 7") == 0);
    /* the common prefixing pattern reads the buffer it writes */
    nne_error(NNE_ERR_FORMAT, "outer: %s (%d)", nne_last_error(), 3);
    CHECK_MSG(strcmp(nne_last_error(), "outer: f.nne: bad 7 (3)") == 0, "%s", nne_last_error());
    nne_error_clear();
    CHECK(nne_last_error()[0] == 0);
    for (int s = 0; s <= NNE_ERR_INTERNAL; s++) CHECK(strlen(nne_status_str((nne_status)s)) > 0);
}

static void test_sizes(void) {
    size_t r;
    CHECK(nne_size_mul(1 << 20, 1 << 20, &r) && r == (size_t)1 << 40);
    CHECK(!nne_size_mul(SIZE_MAX / 2, 3, &r));
    CHECK(!nne_size_add(SIZE_MAX, 1, &r));
    CHECK(nne_calloc(SIZE_MAX / 2, 4) == NULL);
    CHECK(strstr(nne_last_error(), "overflow") != NULL);
    void *p = nne_aligned_alloc(100);
    CHECK(p && ((uintptr_t)p % NNE_ALIGN) == 0);
    nne_aligned_free(p);
    CHECK(nne_align_up(65, 64) == 128 && nne_align_up(64, 64) == 64);
}

static void test_crc32(void) {
    CHECK(nne_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(nne_crc32(0, "", 0) == 0);
    /* Incremental == one shot. */
    uint32_t a = nne_crc32(0, "1234", 4);
    CHECK(nne_crc32(a, "56789", 5) == 0xCBF43926u);
}

static void test_f16(void) {
    /* Every finite f16 survives f16 -> f32 -> f16. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue; /* nan payloads */
        uint16_t back = nne_f32_to_f16(nne_f16_to_f32((uint16_t)h));
        if (back != h) {
            CHECK_MSG(back == h, "0x%04x -> 0x%04x", h, back);
            break;
        }
    }
    CHECK(nne_f16_to_f32(0x3C00) == 1.0f);
    CHECK(nne_f16_to_f32(0xC000) == -2.0f);
    CHECK(nne_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(nne_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(nne_f32_to_f16(1e6f) == 0x7C00);                     /* overflow -> inf */
    CHECK(nne_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3C00); /* tie -> even */
    CHECK(nne_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3C02);
    CHECK(isnan(nne_f16_to_f32(nne_f32_to_f16(NAN))));
}

static void test_json(void) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    nne_json j;
    nne_json_init(&j, f, false);
    nne_json_object_begin(&j, NULL);
    nne_json_string(&j, "s", "a\"b\n");
    nne_json_int(&j, "i", -3);
    nne_json_double(&j, "inf", INFINITY);
    nne_json_array_begin(&j, "a");
    nne_json_bool(&j, NULL, true);
    nne_json_null(&j, NULL);
    nne_json_array_end(&j);
    nne_json_array_begin(&j, "e");
    nne_json_array_end(&j);
    nne_json_object_end(&j);
    fclose(f);
    CHECK_MSG(
        strcmp(buf, "{\"s\":\"a\\\"b\\n\",\"i\":-3,\"inf\":null,\"a\":[true,null],\"e\":[]}") == 0,
        "%s", buf);
    free(buf);
}

static void test_shapes_dtypes(void) {
    CHECK(nne_dtype_size(NNE_F32) == 4 && nne_dtype_size(NNE_F16) == 2 &&
          nne_dtype_size(NNE_S8) == 1 && nne_dtype_size(NNE_U8) == 1 &&
          nne_dtype_size(NNE_S32) == 4 && nne_dtype_size((nne_dtype)42) == 0);
    for (int t = 1; t < NNE_DTYPE_COUNT; t++)
        CHECK((int)nne_dtype_from_name(nne_dtype_name((nne_dtype)t)) == t);
    nne_shape s = nne_shape_4d(1, 512, 768, 3);
    CHECK(nne_shape_numel(&s) == 1179648);
    int64_t st[NNE_MAX_DIMS];
    nne_shape_strides(&s, st);
    CHECK(st[0] == 1179648 && st[1] == 2304 && st[2] == 3 && st[3] == 1);
    char b[64];
    CHECK(strcmp(nne_shape_str(&s, b, sizeof b), "[1, 512, 768, 3]") == 0);
    CHECK_OK(nne_shape_validate(&s));
    nne_shape big = nne_shape_4d(1 << 20, 1 << 20, 1, 1);
    CHECK_STATUS(nne_shape_validate(&big), NNE_ERR_LIMIT);
    nne_quant q = {.axis = -1};
    float sc[2] = {0.5f, 0.25f};
    int32_t zp[2] = {0, 3};
    CHECK_OK(nne_quant_set(&q, 0, 2, sc, zp, true));
    nne_quant q2;
    CHECK_OK(nne_quant_copy(&q2, &q));
    CHECK(q2.count == 2 && q2.scale[1] == 0.25f && q2.zero_point[1] == 3 && q2.pow2);
    CHECK_STATUS(nne_quant_set(&q, -1, 2, sc, zp, false), NNE_ERR_INVALID_ARG);
    nne_quant_free(&q);
    nne_quant_free(&q2);
}

static void test_cpu(void) {
    char b[256];
    uint32_t f = nne_cpu_features();
    nne_cpu_features_str(f, b, sizeof b);
    printf("     cpu features: %s\n", b);
    if (f & NNE_CPU_AVX512F) CHECK(f & NNE_CPU_AVX2);
}

int main(void) {
    NNE_RUN(test_errors);
    NNE_RUN(test_sizes);
    NNE_RUN(test_crc32);
    NNE_RUN(test_f16);
    NNE_RUN(test_json);
    NNE_RUN(test_shapes_dtypes);
    NNE_RUN(test_cpu);
    return nne_test_summary();
}
