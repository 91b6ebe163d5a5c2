#include "testutil.h"

#include <string.h>

int nne_test_checks_failed = 0;
int nne_test_failed_in_current = 0;
static int n_passed = 0, n_failed = 0;
static const char *current = "";

void nne_test_begin(const char *name) {
    current = name;
    nne_test_failed_in_current = 0;
}

void nne_test_end(void) {
    if (nne_test_failed_in_current) {
        n_failed++;
        printf("FAIL %s\n", current);
    } else {
        n_passed++;
        printf("ok   %s\n", current);
    }
    fflush(stdout);
}

int nne_test_summary(void) {
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}

void nne_test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    if (n_failed) exit(nne_test_summary());
    exit(77);
}

const char *nne_test_source_dir(void) { return NNE_SOURCE_DIR; }

const char *nne_test_shared_dir(void) {
    const char *e = getenv("NNEDGE_SHARED");
    return e && *e ? e : NNE_SHARED_DIR;
}

const char *nne_test_path(const char *dir, const char *rel) {
    static char buf[4][4096];
    static int slot = 0;
    char *b = buf[slot];
    slot = (slot + 1) % 4;
    snprintf(b, sizeof buf[0], "%s/%s", dir, rel);
    return b;
}

unsigned char *nne_test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0) {
        fclose(f);
        return NULL;
    }
    rewind(f);
    unsigned char *p = nne_malloc((size_t)n + 1);
    if (!p) {
        fclose(f);
        return NULL;
    }
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        nne_free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    p[n] = 0;
    if (size) *size = (size_t)n;
    return p;
}

void nne_test_rng_seed(nne_test_rng *r, unsigned long long seed) {
    r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

unsigned long long nne_test_rng_u64(nne_test_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Dull;
}

double nne_test_rng_uniform(nne_test_rng *r) {
    return (double)(nne_test_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

int nne_test_rng_int(nne_test_rng *r, int lo, int hi) {
    return lo + (int)(nne_test_rng_u64(r) % (unsigned long long)(hi - lo + 1));
}

bool nne_test_regen(void) {
    const char *e = getenv("NNE_REGEN_GOLDEN");
    return e && *e == '1';
}

void nne_test_write_rel(const char *rel, const void *data, size_t n) {
    const char *path = nne_test_path(nne_test_source_dir(), rel);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f && fwrite(data, 1, n, f) == n, "cannot write %s", path);
    if (f) fclose(f);
}

unsigned char *nne_test_golden_bytes(const char *rel, const void *data, size_t n, size_t *gold_n) {
    if (nne_test_regen()) nne_test_write_rel(rel, data, n);
    const char *path = nne_test_path(nne_test_source_dir(), rel);
    size_t gn = 0;
    unsigned char *gold = nne_test_read_file(path, &gn);
    CHECK_MSG(gold != NULL, "missing %s (NNE_REGEN_GOLDEN=1 creates it)", path);
    if (gold)
        CHECK_MSG(gn == n && memcmp(gold, data, n) == 0,
                  "%s: the writer's output changed (%zu bytes, golden %zu): a format change "
                  "needs a new version",
                  rel, n, gn);
    if (gold_n) *gold_n = gn;
    return gold;
}
