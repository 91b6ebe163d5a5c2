/* nnedge image codecs: one interface over the classical codecs (JPEG, WebP, JPEG 2000, AVIF,
 * JPEG XL) for rate-distortion evaluation (`nnedge rd`); the learned codec is one more
 * entry, built at run time from a ladder of model files (nne_imgcodec_lcodec_open).
 *
 * A codec is a table entry {name, quality knob and its range/direction, encode, decode}.
 * encode takes an RGB8 image (channels == 3) and one value of the codec's quality knob and
 * returns the compressed bytes in memory, exactly what would be written to a file; decode
 * takes those bytes back to an RGB8 image of the same size. Rates are measured on these real
 * bytes (bpp = 8 * bytes / (width * height)), containers and headers included.
 *
 * Settings of each codec (subsampling, speed/effort, rate control, colour transform) are fixed
 * in the entry and spelled out in `settings` and docs/rd.md; they follow CompressAI's anchors
 * where one exists (../shared/anchors/compressai-kodak).
 *
 * Threads: every codec runs single-threaded inside one call (callers parallelise over images),
 * and encode/decode may be called concurrently from several threads on the same entry. A
 * codec with state (a learned model) keeps it behind `ctx` and must honour the same rule.
 *
 * Errors: nne_status with a message (nne_last_error) naming the codec and the problem;
 * nothing is printed. Outputs are left zeroed/NULL on failure.
 */
#ifndef NNEDGE_IMGCODEC_H
#define NNEDGE_IMGCODEC_H

#include "nnedge/image.h"
#include "nnedge/lcodec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNE_IMGCODEC_MAX_SWEEP 16

typedef struct nne_imgcodec nne_imgcodec;
struct nne_imgcodec {
    const char *name;     /* short id for the command line: "jpeg", "webp", ... */
    const char *label;    /* for tables and plots: "JPEG (libjpeg-turbo)" */
    const char *knob;     /* what the quality value means: "quality", "distance", ... */
    double q_min, q_max;  /* accepted knob range, inclusive */
    int direction;        /* +1: a larger knob gives higher quality and more bytes; -1: fewer */
    bool integer;         /* the knob takes integer values only */
    const char *settings; /* fixed settings, one line (subsampling, speed, rate control) */
    const char *anchor;   /* file stem of the matching CompressAI anchor (e.g. "jpeg"), or NULL */
    /* Default sweep: roughly 0.1..1.5 bpp on photographs, ordered by increasing rate. */
    int n_sweep;
    double sweep[NNE_IMGCODEC_MAX_SWEEP];
    /* Library version(s) into buf (e.g. "libwebp 1.2.4"); returns buf. */
    const char *(*version)(const nne_imgcodec *c, char *buf, size_t n);
    /* img: RGB8 (channels 3); quality within [q_min, q_max] (integer if `integer`).
     * *out: nne_malloc'd bytes (free with nne_free), *out_size > 0. */
    nne_status (*encode)(const nne_imgcodec *c, const nne_image *img, double quality,
                         uint8_t **out, size_t *out_size);
    /* Bytes from encode -> RGB8 image (nne_image_free). A stream that does not decode
     * completely is NNE_ERR_FORMAT. */
    nne_status (*decode)(const nne_imgcodec *c, const uint8_t *buf, size_t n, nne_image *img);
    void *ctx; /* codec state (NULL for the built-in codecs) */
};

/* The built-in codecs, in a fixed order (jpeg, webp, jp2, avif, jxl); a build configured with
 * -DNNE_CLASSICAL_CODECS=OFF has jpeg alone (docs/build.md). */
int nne_imgcodec_count(void);
const nne_imgcodec *nne_imgcodec_get(int i);
/* By name (case-sensitive); NULL if there is none. */
const nne_imgcodec *nne_imgcodec_find(const char *name);
/* Whether name is one of the codecs above, built into this library or not: a known name that
 * nne_imgcodec_find misses was left out at build time. */
bool nne_imgcodec_known(const char *name);

/* Checked calls through the table: validate the arguments (RGB8 image within the image
 * limits, quality inside the range and integral where required), then call the codec.
 * NNE_ERR_INVALID_ARG for bad arguments. */
nne_status nne_imgcodec_encode(const nne_imgcodec *c, const nne_image *img, double quality,
                               uint8_t **out, size_t *out_size);
nne_status nne_imgcodec_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n,
                               nne_image *img);

/* ---- The learned codec as an image codec (src/imgcodec/nnedge.c, docs/rd.md) ----------
 *
 * A quality ladder of trained models of one kind (include/nnedge/lcodec.h), e.g. the
 * registry files models/mbt2018-mean-q1.nne .. -q8.nne, as one codec named "nnedge:<kind>":
 * the knob is the registry quality index (integer, larger = more bytes), encode gives the
 * complete .nnc file (quality index stored in it) and decode picks the model by the stream's
 * quality. Re-entrant: each call borrows a codec object (its sessions and tables) from a
 * per-model pool behind a mutex, creating one when none is idle, so concurrent calls never
 * share one. The networks run as nne_lcodec does (docs/codec.md).
 *
 * paths[i] is the model file of quality qualities[i] (0..255, distinct; n in
 * 1..NNE_IMGCODEC_MAX_SWEEP); every file must be a learned-codec model of the same kind,
 * N and M (checked by loading each once). The default sweep is the whole ladder, the anchor
 * CompressAI's "compressai-<kind>_mse_cpu". Free with nne_imgcodec_lcodec_free. */
nne_status nne_imgcodec_lcodec_open(int n, const char *const *paths, const int32_t *qualities,
                                    nne_imgcodec **out);
void nne_imgcodec_lcodec_free(nne_imgcodec *c);
/* Encode with latent refinement (nne_lcodec_set_refine; o NULL or iterations 0: off), from
 * the next call on; the codec's settings string says so. Checked against every model of the
 * ladder (a model without train.lambda and no o->lambda is INVALID_ARG). Call it before rd
 * starts its threads. */
nne_status nne_imgcodec_lcodec_set_refine(const nne_imgcodec *c, const nne_lcodec_refine_opts *o);

#ifdef __cplusplus
}
#endif
#endif
