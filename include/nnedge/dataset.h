/* nnedge image datasets: a folder of images, random crops for training, background prefetch.
 *
 * Determinism: batch k of a sampler is a pure function of (dataset, options, seed, k). The
 * images of an epoch are a seeded permutation of the dataset (each image once per epoch);
 * crop position and flips come from a counter-based generator keyed by the sample's global
 * index. Prefetching, thread counts and resuming at batch k therefore never change the data.
 */
#ifndef NNEDGE_DATASET_H
#define NNEDGE_DATASET_H

#include "nnedge/image.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nne_dataset nne_dataset;

typedef struct nne_dataset_opts {
    bool recursive;           /* include subfolders */
    bool cache;               /* decode every image once at open and keep it (RGB) */
    int32_t min_width;        /* skip images narrower than this (0: keep all) */
    int32_t min_height;       /* skip images shorter than this */
} nne_dataset_opts;

/* List the images (.png .jpg .jpeg .ppm .pgm .pnm, case-insensitive) under `dir`, sorted by
 * path so the order is the same on every machine. Every image is loaded as RGB (gray is
 * replicated, alpha dropped). With cache, images are decoded now and a corrupt image is an
 * error naming the file; size filtering happens here too (without cache, sizes are read at
 * open as well, by decoding each image once). An empty result is NNE_ERR_NOT_FOUND. */
nne_status nne_dataset_open(const char *dir, const nne_dataset_opts *opts, nne_dataset **out);
void nne_dataset_free(nne_dataset *ds);

int32_t nne_dataset_size(const nne_dataset *ds);     /* images kept */
int32_t nne_dataset_skipped(const nne_dataset *ds);  /* images skipped as too small */
const char *nne_dataset_path(const nne_dataset *ds, int32_t i);
/* Width and height of image i. */
void nne_dataset_dims(const nne_dataset *ds, int32_t i, int32_t *width, int32_t *height);

/* Image i as RGB. With cache the pixels are borrowed (valid until nne_dataset_free, do not
 * free); otherwise they are loaded into *img, which the caller frees with nne_image_free.
 * *owned tells which. Thread-safe. */
nne_status nne_dataset_image(const nne_dataset *ds, int32_t i, nne_image *img, bool *owned);

typedef struct nne_crop_opts {
    int32_t batch;            /* crops per batch, >= 1 */
    int32_t height, width;    /* crop size; every image must be at least this large */
    bool hflip;               /* random horizontal flips (p = 0.5) */
    bool vflip;               /* random vertical flips (p = 0.5) */
    uint64_t seed;
} nne_crop_opts;

/* Fill batch `k`: out is [batch][height][width][3] float32 NHWC, values pixel / 255.
 * Sample j of batch k is global sample g = k * batch + j, drawn from epoch g / size at
 * position g % size of that epoch's permutation. Thread-safe. */
nne_status nne_dataset_crop_batch(const nne_dataset *ds, const nne_crop_opts *o, uint64_t k,
                                  float *out);

/* Background prefetch: a thread fills batches first_batch, first_batch + 1, ... into a ring
 * of `depth` buffers while the caller computes. */
typedef struct nne_prefetcher nne_prefetcher;
nne_status nne_prefetcher_create(const nne_dataset *ds, const nne_crop_opts *o,
                                 uint64_t first_batch, int32_t depth, nne_prefetcher **out);
/* Wait for the next batch. *batch stays valid until the next call (or free); *index is its
 * batch number. A producer error is returned here with its message. */
nne_status nne_prefetcher_next(nne_prefetcher *p, const float **batch, uint64_t *index);
void nne_prefetcher_free(nne_prefetcher *p);

#ifdef __cplusplus
}
#endif
#endif
