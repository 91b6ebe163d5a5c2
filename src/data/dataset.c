/* Folder datasets and deterministic random crops. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "nnedge/dataset.h"

typedef struct ds_item {
    char *path;
    int32_t width, height;
    nne_image img; /* cached RGB pixels (cache mode), else zeroed */
} ds_item;

struct nne_dataset {
    ds_item *items;
    int32_t n, cap;
    int32_t skipped;
    bool cache;
};

/* ---- Counter-based random numbers (splitmix64 finaliser). ---- */
static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t hash3(uint64_t seed, uint64_t a, uint64_t b) {
    return mix64(seed ^ mix64(a ^ mix64(b + 0x632BE59BD9B4E019ull)));
}

/* Uniform integer in [0, n) (n >= 1); the modulo bias is < n / 2^64, negligible here. */
static uint64_t below(uint64_t r, uint64_t n) { return r % n; }

/* ---- Listing ---- */
static bool is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strcasecmp(dot, ext[i]) == 0) return true;
    return false;
}

static nne_status add_path(nne_dataset *ds, const char *path) {
    if (ds->n == ds->cap) {
        int32_t ncap = ds->cap ? ds->cap * 2 : 64;
        ds_item *p = nne_realloc_array(ds->items, (size_t)ncap, sizeof *p);
        if (!p) return NNE_ERR_NOMEM;
        ds->items = p;
        ds->cap = ncap;
    }
    ds_item *it = &ds->items[ds->n];
    memset(it, 0, sizeof *it);
    it->path = nne_strdup(path);
    if (!it->path) return NNE_ERR_NOMEM;
    ds->n++;
    return NNE_OK;
}

static nne_status list_dir(nne_dataset *ds, const char *dir, bool recursive, int depth) {
    if (depth > 32) return nne_error(NNE_ERR_LIMIT, "%s: folders nested too deeply", dir);
    DIR *d = opendir(dir);
    if (!d) return nne_error(NNE_ERR_NOT_FOUND, "%s: cannot open folder", dir);
    nne_status s = NNE_OK;
    struct dirent *e;
    while (!s && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* hidden files, "." and ".." */
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = nne_malloc(n);
        if (!p) {
            s = NNE_ERR_NOMEM;
            break;
        }
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode) && recursive) s = list_dir(ds, p, recursive, depth + 1);
            else if (S_ISREG(st.st_mode) && is_image_name(e->d_name)) s = add_path(ds, p);
        }
        nne_free(p);
    }
    closedir(d);
    return s;
}

static int by_path(const void *a, const void *b) {
    return strcmp(((const ds_item *)a)->path, ((const ds_item *)b)->path);
}

void nne_dataset_free(nne_dataset *ds) {
    if (!ds) return;
    for (int32_t i = 0; i < ds->n; i++) {
        nne_free(ds->items[i].path);
        nne_image_free(&ds->items[i].img);
    }
    nne_free(ds->items);
    nne_free(ds);
}

/* Load image i as RGB: gray replicated, alpha dropped. */
static nne_status load_rgb(const char *path, nne_image *img) {
    nne_image raw;
    nne_status s = nne_image_load(path, NNE_IMAGE_LOAD_RGB | NNE_IMAGE_LOAD_DROP_ALPHA, &raw);
    if (s) return s;
    if (raw.channels == 3) {
        *img = raw;
        return NNE_OK;
    }
    s = nne_image_to_rgb(&raw, img);
    nne_image_free(&raw);
    return s;
}

nne_status nne_dataset_open(const char *dir, const nne_dataset_opts *opts, nne_dataset **out) {
    *out = NULL;
    nne_dataset_opts o = {false, false, 0, 0};
    if (opts) o = *opts;
    nne_dataset *ds = nne_calloc(1, sizeof *ds);
    if (!ds) return NNE_ERR_NOMEM;
    ds->cache = o.cache;
    nne_status s = list_dir(ds, dir, o.recursive, 0);
    if (s) goto fail;
    if (ds->n > 1) qsort(ds->items, (size_t)ds->n, sizeof *ds->items, by_path);
    int32_t kept = 0;
    for (int32_t i = 0; i < ds->n; i++) {
        ds_item *it = &ds->items[i];
        nne_image img;
        if ((s = load_rgb(it->path, &img))) goto fail;
        it->width = img.width;
        it->height = img.height;
        if (img.width < o.min_width || img.height < o.min_height) {
            nne_image_free(&img);
            nne_free(it->path);
            memset(it, 0, sizeof *it);
            ds->skipped++;
            continue;
        }
        if (o.cache) it->img = img;
        else nne_image_free(&img);
        if (kept != i) { /* compact; leave no duplicate pointers behind for the error path */
            ds->items[kept] = *it;
            memset(it, 0, sizeof *it);
        }
        kept++;
    }
    ds->n = kept;
    if (ds->n == 0) {
        s = nne_error(NNE_ERR_NOT_FOUND, "%s: no usable images (.png .jpg .ppm .pgm)%s", dir,
                      ds->skipped ? ", all smaller than the minimum size" : "");
        goto fail;
    }
    *out = ds;
    return NNE_OK;
fail:
    nne_dataset_free(ds);
    return s;
}

int32_t nne_dataset_size(const nne_dataset *ds) { return ds->n; }
int32_t nne_dataset_skipped(const nne_dataset *ds) { return ds->skipped; }

const char *nne_dataset_path(const nne_dataset *ds, int32_t i) {
    return i >= 0 && i < ds->n ? ds->items[i].path : NULL;
}

void nne_dataset_dims(const nne_dataset *ds, int32_t i, int32_t *width, int32_t *height) {
    *width = i >= 0 && i < ds->n ? ds->items[i].width : 0;
    *height = i >= 0 && i < ds->n ? ds->items[i].height : 0;
}

nne_status nne_dataset_image(const nne_dataset *ds, int32_t i, nne_image *img, bool *owned) {
    memset(img, 0, sizeof *img);
    *owned = false;
    if (i < 0 || i >= ds->n) return nne_error(NNE_ERR_INVALID_ARG, "dataset image %d of %d", i, ds->n);
    if (ds->cache) {
        *img = ds->items[i].img;
        return NNE_OK;
    }
    *owned = true;
    return load_rgb(ds->items[i].path, img);
}

/* Position of global sample g: image index through the epoch's permutation. The permutation
 * is Fisher-Yates driven by hash3(seed, epoch, step); computing it costs O(size) per sample,
 * small next to cropping and decoding. */
static int32_t sample_image(const nne_dataset *ds, uint64_t seed, uint64_t g, int32_t *perm) {
    uint64_t n = (uint64_t)ds->n, epoch = g / n, pos = g % n;
    for (int32_t i = 0; i < ds->n; i++) perm[i] = i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = below(hash3(seed, epoch, i), i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return perm[pos];
}

nne_status nne_dataset_crop_batch(const nne_dataset *ds, const nne_crop_opts *o, uint64_t k,
                                  float *out) {
    if (o->batch < 1 || o->height < 1 || o->width < 1)
        return nne_error(NNE_ERR_INVALID_ARG, "crop batch %d of %dx%d", o->batch, o->height,
                         o->width);
    int32_t *perm = nne_malloc((size_t)ds->n * sizeof *perm);
    if (!perm) return NNE_ERR_NOMEM;
    nne_status s = NNE_OK;
    const size_t crop_elems = (size_t)o->height * (size_t)o->width * 3;
    for (int32_t j = 0; j < o->batch && !s; j++) {
        uint64_t g = k * (uint64_t)o->batch + (uint64_t)j;
        int32_t idx = sample_image(ds, o->seed, g, perm);
        nne_image img;
        bool owned;
        if ((s = nne_dataset_image(ds, idx, &img, &owned))) break;
        if (img.width < o->width || img.height < o->height) {
            s = nne_error(NNE_ERR_SHAPE, "%s: %dx%d image is smaller than the %dx%d crop",
                          ds->items[idx].path, img.width, img.height, o->width, o->height);
            if (owned) nne_image_free(&img);
            break;
        }
        uint64_t r = hash3(o->seed ^ 0xC0FFEEull, g, 1);
        int32_t x0 = (int32_t)below(r, (uint64_t)(img.width - o->width + 1));
        r = hash3(o->seed ^ 0xC0FFEEull, g, 2);
        int32_t y0 = (int32_t)below(r, (uint64_t)(img.height - o->height + 1));
        r = hash3(o->seed ^ 0xC0FFEEull, g, 3);
        bool hf = o->hflip && (r & 1), vf = o->vflip && (r & 2);
        float *dst = out + (size_t)j * crop_elems;
        for (int32_t y = 0; y < o->height; y++) {
            int32_t sy = y0 + (vf ? o->height - 1 - y : y);
            const uint8_t *row = img.data + ((size_t)sy * (size_t)img.width) * 3;
            float *d = dst + (size_t)y * (size_t)o->width * 3;
            for (int32_t x = 0; x < o->width; x++) {
                int32_t sx = x0 + (hf ? o->width - 1 - x : x);
                const uint8_t *p = row + (size_t)sx * 3;
                d[3 * x + 0] = p[0] * (1.0f / 255.0f);
                d[3 * x + 1] = p[1] * (1.0f / 255.0f);
                d[3 * x + 2] = p[2] * (1.0f / 255.0f);
            }
        }
        if (owned) nne_image_free(&img);
    }
    nne_free(perm);
    return s;
}
