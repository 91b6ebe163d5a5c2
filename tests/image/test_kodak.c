/* Kodak hash test: decode the 24 Kodak PNGs of ../shared/data/kodak and compare the SHA-256
 * of the raw RGB8 row-major pixels with data/kodak/PIXEL_SHA256.txt, whose lines read
 * "<hex>  kodimNN.png  WxH RGB8 raw row-major". Skipped (exit 77) if the data is absent. */
#include <string.h>

#include "image_testlib.h"
#include "nnedge/sha256.h"

static void test_kodak_pixel_sha256(void) {
    const char *dir = nne_test_path(nne_test_shared_dir(), "data/kodak");
    char kdir[4096];
    snprintf(kdir, sizeof kdir, "%s", dir);
    size_t n;
    char *list = (char *)nne_test_read_file(nne_test_path(kdir, "PIXEL_SHA256.txt"), &n);
    if (!list) nne_test_skip("../shared/data/kodak/PIXEL_SHA256.txt not found");
    int checked = 0;
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char want[65], name[64], fmt[16];
        int w, h;
        if (sscanf(line, "%64s %63s %dx%d %15s", want, name, &w, &h, fmt) != 5) {
            CHECK_MSG(0, "bad line: %s", line);
            continue;
        }
        CHECK(!strcmp(fmt, "RGB8"));
        nne_image img;
        nne_status s = nne_image_load(nne_test_path(kdir, name), NNE_IMAGE_LOAD_RGB, &img);
        CHECK_MSG(s == NNE_OK, "%s", nne_last_error());
        if (s != NNE_OK) continue;
        CHECK_MSG(img.width == w && img.height == h && img.channels == 3, "%s: %dx%dx%d", name,
                  (int)img.width, (int)img.height, (int)img.channels);
        char got[65];
        nne_sha256_hex(img.data, (size_t)img.width * (size_t)img.height * 3, got);
        CHECK_MSG(!strcmp(got, want), "%s: sha256 %s, want %s", name, got, want);
        nne_image_free(&img);
        checked++;
    }
    CHECK_MSG(checked == 24, "checked %d images", checked);
    nne_free(list);
}

int main(void) {
    NNE_RUN(test_kodak_pixel_sha256);
    return nne_test_summary();
}
