/* Model loading, the learned-codec model registry and number formatting shared by
 * subcommands. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "nnedge/model_file.h"
#include "nnedge/models.h"

nne_status cli_load_model(const char *spec, nne_graph **out) {
    for (const char *const *n = nne_builtin_model_names(); *n; n++)
        if (!strcmp(*n, spec)) return nne_builtin_model(spec, out);
    return nne_model_read_file(spec, out);
}

const char *cli_thousands(int64_t v, char *buf, size_t n) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%lld", (long long)(v < 0 ? -v : v));
    size_t o = 0;
    if (v < 0 && o + 1 < n) buf[o++] = '-';
    for (int i = 0; i < len && o + 1 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 1 < n) buf[o++] = ',';
        if (o + 1 < n) buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

int cli_registry_dirs(char dirs[CLI_REGISTRY_DIRS][CLI_PATH_MAX]) {
    const char *env = getenv("NNEDGE_MODELS");
    int nd = 0;
    if (env && *env) snprintf(dirs[nd++], CLI_PATH_MAX, "%s", env);
    snprintf(dirs[nd++], CLI_PATH_MAX, "models");
    char repo[CLI_PATH_MAX - 16];
    if (cli_repo_dir(repo, sizeof repo)) snprintf(dirs[nd++], CLI_PATH_MAX, "%s/models", repo);
    return nd;
}

bool cli_is_regular(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool cli_registry_find(const char *file, char *path, size_t n, char *looked, size_t ln) {
    char dirs[CLI_REGISTRY_DIRS][CLI_PATH_MAX];
    const int nd = cli_registry_dirs(dirs);
    size_t at = 0;
    looked[0] = 0;
    for (int i = 0; i < nd; i++) {
        char cand[2 * CLI_PATH_MAX];
        if ((size_t)snprintf(cand, sizeof cand, "%s/%s", dirs[i], file) >= sizeof cand) continue;
        if (cli_is_regular(cand) && strlen(cand) < n) {
            snprintf(path, n, "%s", cand);
            return true;
        }
        if (at < ln) at += (size_t)snprintf(looked + at, ln - at, "%s%s", i ? ", " : "", cand);
    }
    return false;
}

/* The ladder in one folder: <kind>-q<N>.nne with N written without leading zeros. */
static int ladder_in(const char *kind, const char *dir, int max, int32_t *qualities,
                     char (*paths)[CLI_PATH_MAX]) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    const size_t kl = strlen(kind);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < max;) {
        const char *name = e->d_name;
        if (strncmp(name, kind, kl) != 0 || strncmp(name + kl, "-q", 2) != 0) continue;
        const char *num = name + kl + 2;
        char *end;
        const long q = strtol(num, &end, 10);
        if (end == num || strcmp(end, ".nne") != 0 || q < 0 || q > 99 || (num[0] == '0' && q))
            continue;
        char full[2 * CLI_PATH_MAX];
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, name) >= CLI_PATH_MAX ||
            !cli_is_regular(full))
            continue;
        full[CLI_PATH_MAX - 1] = 0; /* fits (checked above): tells the compiler so */
        int at = n++;               /* insertion by quality */
        while (at > 0 && qualities[at - 1] > q) {
            qualities[at] = qualities[at - 1];
            memcpy(paths[at], paths[at - 1], CLI_PATH_MAX);
            at--;
        }
        qualities[at] = (int32_t)q;
        memcpy(paths[at], full, CLI_PATH_MAX);
    }
    closedir(d);
    return n;
}

int cli_registry_ladder(const char *kind, const char *dir, int max, int32_t *qualities,
                        char (*paths)[CLI_PATH_MAX], char *where, size_t wn) {
    char dirs[CLI_REGISTRY_DIRS][CLI_PATH_MAX];
    int nd = 1;
    if (dir)
        snprintf(dirs[0], CLI_PATH_MAX, "%s", dir);
    else
        nd = cli_registry_dirs(dirs);
    size_t at = 0;
    where[0] = 0;
    for (int i = 0; i < nd; i++) {
        const int n = ladder_in(kind, dirs[i], max, qualities, paths);
        if (n > 0) {
            snprintf(where, wn, "%s", dirs[i]);
            return n;
        }
        if (at < wn) at += (size_t)snprintf(where + at, wn - at, "%s%s", i ? ", " : "", dirs[i]);
    }
    return 0;
}
