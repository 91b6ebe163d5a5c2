/* Minimal test harness: each test executable defines test functions, registers them in
 * main() with NNE_RUN(fn), and ends with `return nne_test_summary();`.
 * Output ends with the plain line "N passed, N failed". Exit 0 iff no check failed;
 * a test that cannot run (missing optional data) calls nne_test_skip(), exit 77. */
#ifndef NNE_TESTUTIL_H
#define NNE_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nnedge/common.h"

extern int nne_test_checks_failed;
extern int nne_test_failed_in_current;
void nne_test_begin(const char *name);
void nne_test_end(void);
int nne_test_summary(void);
/* Mark the current executable as skipped: prints why and exits 77 if nothing failed. */
void nne_test_skip(const char *why);

#define NNE_RUN(fn)                                                                                \
    do {                                                                                           \
        nne_test_begin(#fn);                                                                       \
        fn();                                                                                      \
        nne_test_end();                                                                            \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            nne_test_checks_failed++;                                                              \
            nne_test_failed_in_current = 1;                                                        \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            nne_test_checks_failed++;                                                              \
            nne_test_failed_in_current = 1;                                                        \
        }                                                                                          \
    } while (0)

/* Expect NNE_OK; print the library's error message otherwise. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        nne_status s_ = (expr);                                                                    \
        if (s_ != NNE_OK) {                                                                        \
            fprintf(stderr, "  FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr,             \
                    nne_status_str(s_), nne_last_error());                                         \
            nne_test_checks_failed++;                                                              \
            nne_test_failed_in_current = 1;                                                        \
        }                                                                                          \
    } while (0)

/* Expect a specific failure status. */
#define CHECK_STATUS(expr, want)                                                                   \
    do {                                                                                           \
        nne_status s_ = (expr);                                                                    \
        if (s_ != (want)) {                                                                        \
            fprintf(stderr, "  FAIL %s:%d: %s -> %s (want %s): %s\n", __FILE__, __LINE__, #expr,   \
                    nne_status_str(s_), nne_status_str(want), nne_last_error());                   \
            nne_test_checks_failed++;                                                              \
            nne_test_failed_in_current = 1;                                                        \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            fprintf(stderr, "  FAIL %s:%d: %s = %.9g vs %s = %.9g (tol %g)\n", __FILE__, __LINE__, \
                    #a, a_, #b, b_, (double)(tol));                                                \
            nne_test_checks_failed++;                                                              \
            nne_test_failed_in_current = 1;                                                        \
        }                                                                                          \
    } while (0)

/* Paths. */
const char *nne_test_source_dir(void); /* the repository root */
const char *nne_test_shared_dir(void); /* ../shared (env NNEDGE_SHARED overrides) */
/* Join into a static rotating buffer (4 slots). */
const char *nne_test_path(const char *dir, const char *rel);
/* Read a whole file (nne_malloc'd); NULL if it cannot be read. */
unsigned char *nne_test_read_file(const char *path, size_t *size);

/* Golden files (tests/golden/, fuzz seeds). With NNE_REGEN_GOLDEN=1 (nne_test_regen()),
 * nne_test_golden_bytes first writes `data` to `rel` (relative to the repository root); then
 * it reads the file back, records a failed check naming the file if it is missing or differs
 * from `data` (a changed writer output means a format change, which needs a new version), and
 * returns the file's bytes (nne_malloc'd, *gold_n set; NULL if missing) so that the caller can
 * also parse what is committed. nne_test_write_rel writes (or fails a check). */
bool nne_test_regen(void);
void nne_test_write_rel(const char *rel, const void *data, size_t n);
unsigned char *nne_test_golden_bytes(const char *rel, const void *data, size_t n, size_t *gold_n);

/* Deterministic PRNG for tests (xorshift64*). */
typedef struct {
    unsigned long long s;
} nne_test_rng;
void nne_test_rng_seed(nne_test_rng *r, unsigned long long seed);
unsigned long long nne_test_rng_u64(nne_test_rng *r);
double nne_test_rng_uniform(nne_test_rng *r);          /* [0, 1) */
int nne_test_rng_int(nne_test_rng *r, int lo, int hi); /* [lo, hi] */

#endif
