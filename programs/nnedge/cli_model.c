/* Model loading and number formatting shared by subcommands. */
#include <string.h>

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
