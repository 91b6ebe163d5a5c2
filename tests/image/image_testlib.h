/* Helpers shared by the image tests (header-only: each test executable is one .c file). */
#ifndef NNE_IMAGE_TESTLIB_H
#define NNE_IMAGE_TESTLIB_H

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnedge/image.h"
#include "testutil.h"

/* A w x h x c image of deterministic pseudo-random pixels. */
static inline nne_status img_random(nne_image *img, int w, int h, int c, unsigned long long seed) {
    nne_status s = nne_image_alloc(img, w, h, c);
    if (s != NNE_OK) return s;
    nne_test_rng r;
    nne_test_rng_seed(&r, seed);
    size_t n = (size_t)w * (size_t)h * (size_t)c;
    for (size_t i = 0; i < n; i++) img->data[i] = (uint8_t)(nne_test_rng_u64(&r) >> 56);
    return NNE_OK;
}

static inline int img_equal(const nne_image *a, const nne_image *b) {
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->data, b->data, (size_t)a->width * (size_t)a->height * (size_t)a->channels) ==
               0;
}

static inline int img_is_zeroed(const nne_image *img) {
    return img->width == 0 && img->height == 0 && img->channels == 0 && img->data == NULL;
}

/* A fresh directory under $TMPDIR (or /tmp); the caller removes it with rm_dir_flat. */
static inline const char *make_temp_dir(char *buf, size_t n) {
    const char *t = getenv("TMPDIR");
    snprintf(buf, n, "%s/nne_image_test_XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(buf);
}

/* Number of entries in a directory (excluding . and ..), -1 on error. */
static inline int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Removes the files of a flat directory, then the directory. */
static inline void rm_dir_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

#endif
