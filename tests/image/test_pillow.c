/* Files written by nnedge decode identically with an independent decoder (Pillow, through
 * scripts/gen_golden_images.py --check). Skipped (exit 77) where Debian's /usr/bin/python3
 * with PIL is not installed. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image_testlib.h"

#define PYTHON "/usr/bin/python3"

/* Runs the checker; returns its exit status (77: Pillow missing), -1 if it did not run. */
static int pillow_check(const char *file, const char *raw, const nne_image *img) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' '%s/scripts/gen_golden_images.py' --check '%s' '%s' %d %d %d",
             PYTHON, nne_test_source_dir(), file, raw, (int)img->width, (int)img->height,
             (int)img->channels);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_nnedge_output_decodes_in_pillow(void) {
    if (access(PYTHON, X_OK) != 0) nne_test_skip(PYTHON " not found");
    char dir[256];
    if (!make_temp_dir(dir, sizeof dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    static const struct {
        const char *name;
        int w, h, c;
    } cases[] = {
        {"g.png", 13, 7, 1},    {"ga.png", 5, 9, 2},  {"rgb.png", 1, 1, 3}, {"rgb2.png", 31, 17, 3},
        {"rgba.png", 7, 11, 4}, {"rgb.ppm", 9, 4, 3}, {"g.pgm", 3, 8, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nne_image img;
        CHECK_OK(img_random(&img, cases[i].w, cases[i].h, cases[i].c, 1000 + i));
        char path[512], raw[520];
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        snprintf(raw, sizeof raw, "%s.raw", path);
        CHECK_OK(nne_image_save(path, &img));
        CHECK(write_bytes(raw, img.data,
                          (size_t)img.width * (size_t)img.height * (size_t)img.channels) == 0);
        int rc = pillow_check(path, raw, &img);
        if (rc == 77) {
            nne_image_free(&img);
            rm_dir_flat(dir);
            nne_test_skip("Pillow is not installed for " PYTHON);
        }
        CHECK_MSG(rc == 0, "%s: Pillow check exit %d", cases[i].name, rc);
        nne_image_free(&img);
    }
    rm_dir_flat(dir);
}

int main(void) {
    NNE_RUN(test_nnedge_output_decodes_in_pillow);
    return nne_test_summary();
}
