/* Harness for end-to-end CLI tests: runs the nnedge binary (NNEDGE_BIN, set by CTest) in a
 * shell, captures stdout and stderr, and keeps a per-test temporary folder.
 *
 *   nne_cli_setup("name");            skip (exit 77) without a binary; make the temp folder
 *   EXPECT_RC("info cae-seed", 0);    run and check the exit code
 *   EXPECT_ERR("bad.png");            check stderr / stdout of the last run
 *   nne_cli_cleanup();                remove the temp folder
 *
 * In ARGS, %T expands to the temporary folder. */
#ifndef NNE_CLI_UTIL_H
#define NNE_CLI_UTIL_H

#include <stdbool.h>
#include <string.h>

#include "testutil.h"

extern const char *nne_cli_bin;                         /* the binary */
extern char nne_cli_tmp[256];                           /* the temporary folder */
extern char nne_cli_out[1 << 20], nne_cli_err[1 << 16]; /* output of the last run */

void nne_cli_setup(const char *name);
void nne_cli_cleanup(void);
/* Run "nnedge ARGS" with `cwd` as working folder (NULL: the source tree). Returns the exit
 * code, or 128 + signal if the process was killed. */
int nne_cli_run_in(const char *cwd, const char *args);
static inline int nne_cli_run(const char *args) { return nne_cli_run_in(NULL, args); }
/* Path of `rel` inside the temporary folder (nne_test_path's rotating buffers). */
const char *nne_cli_tmp_path(const char *rel);
bool nne_cli_tmp_exists(const char *rel);
/* true if the two files of the temporary folder exist and have the same bytes. */
bool nne_cli_same_files(const char *a, const char *b);
/* true if `s` is one well-formed JSON value (RFC 8259 syntax) followed only by whitespace. */
bool nne_cli_json_valid(const char *s);

#define EXPECT_RC_IN(cwd, args, rc)                                                                \
    do {                                                                                           \
        int r_ = nne_cli_run_in(cwd, args);                                                        \
        CHECK_MSG(r_ == (rc), "'nnedge %s' exited %d, want %d; stderr: %s", args, r_, rc,          \
                  nne_cli_err);                                                                    \
    } while (0)
#define EXPECT_RC(args, rc) EXPECT_RC_IN(NULL, args, rc)
#define EXPECT_ERR(s)                                                                              \
    CHECK_MSG(strstr(nne_cli_err, s) != NULL, "stderr lacks '%s': %s", s, nne_cli_err)
#define EXPECT_OUT(s)                                                                              \
    CHECK_MSG(strstr(nne_cli_out, s) != NULL, "stdout lacks '%s': %s", s, nne_cli_out)

#endif
