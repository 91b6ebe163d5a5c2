/* nnedge codec: the CAE paper's float-latent representation.
 *
 * Two layers:
 *  - The latent container (`.nnl`, docs/latent-format.md): a float32 latent with the image
 *    geometry, the identity and weight hash of the model that produced it, an optional
 *    general-purpose compression of the payload (zstd or xz) and CRC-32 checksums. The reader
 *    treats its input as hostile: every field is validated, and nothing larger than what the
 *    file's own payload decompresses to is ever allocated.
 *  - The pipeline (nne_cae_codec): image -> latent with the cae-seed encoder and latent ->
 *    image with its decoder, run in sessions on the cpu backend, with trained weights
 *    rebound to graphs built for the image's size (nne_model_copy_weights).
 *
 * Pixel conventions (docs/latent-format.md, "Pipeline"): the encoder sees RGB as float
 * pixel / 255 in NHWC order; the reconstruction is clamped to [0, 1] (NaN -> 0) and rounded
 * to 8 bits as floor(x * 255 + 0.5). No padding is needed: cae-seed accepts any size of at
 * least 21x21 and its decoder mirrors the encoder exactly, so the padding fields are zero.
 */
#ifndef NNEDGE_CODEC_H
#define NNEDGE_CODEC_H

#include "nnedge/backend.h"
#include "nnedge/graph.h"
#include "nnedge/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The latent container ------------------------------------------------------------- */

#define NNE_LATENT_MAGIC       "NNEDGEL\0" /* 8 bytes */
#define NNE_LATENT_VERSION     1
#define NNE_LATENT_HEADER_SIZE 160
#define NNE_LATENT_ID_SIZE     32 /* model identifier field: 1..31 ASCII bytes, NUL-padded */
#define NNE_LATENT_HASH_SIZE   32 /* SHA-256 of the model weights (canonical form) */
/* Limits a reader enforces (docs/latent-format.md, "Limits"). */
#define NNE_LATENT_MAX_DIM      65535               /* latent height, width, channels */
#define NNE_LATENT_MAX_RAW_SIZE ((uint64_t)1 << 30) /* payload bytes before compression */
#define NNE_LATENT_MAX_FILE_SIZE                                                                   \
    ((uint64_t)NNE_LATENT_HEADER_SIZE + ((uint64_t)1 << 31)) /* a larger file is refused */

/* General-purpose compression of the payload. Values are part of the file format. */
typedef enum nne_latent_compression {
    NNE_LATENT_NONE = 0,
    NNE_LATENT_ZSTD = 1, /* one zstd frame (RFC 8878), window <= 8 MiB */
    NNE_LATENT_XZ = 2,   /* one .xz stream (LZMA2), decoder memory <= 96 MiB */
} nne_latent_compression;

#define NNE_LATENT_LEVEL_DEFAULT  (-1) /* zstd level 19, xz preset 9 */
#define NNE_LATENT_ZSTD_MAX_LEVEL 19   /* higher levels need windows the reader refuses */

/* "none", "zstd", "xz"; "unknown" otherwise. */
const char *nne_latent_compression_name(nne_latent_compression c);
/* Parse a name as above; NNE_ERR_INVALID_ARG (with a message listing the names) if unknown. */
nne_status nne_latent_compression_from_name(const char *name, nne_latent_compression *out);

typedef struct nne_latent {
    char model_id[NNE_LATENT_ID_SIZE];        /* e.g. "cae-seed", NUL-terminated */
    uint8_t model_hash[NNE_LATENT_HASH_SIZE]; /* SHA-256 of the producing model's weights */
    int32_t image_width, image_height;        /* the original image, pixels */
    int32_t pad[4]; /* top, left, bottom, right: pixels added before encoding (cae-seed: bottom
                       and right up to nne_cae_coded_size) */
    int32_t height, width, channels; /* latent shape, NHWC without the batch dimension */
    float *data;                     /* height * width * channels, owned (nne_malloc) */
} nne_latent;

/* Release data and zero *l. Accepts NULL and a zeroed latent. */
void nne_latent_free(nne_latent *l);

/* What a file holds besides the latent itself. */
typedef struct nne_latent_info {
    nne_latent_compression compression;
    uint64_t raw_size;    /* payload bytes before compression: height*width*channels*4 */
    uint64_t stored_size; /* payload bytes in the file */
    uint64_t file_size;   /* NNE_LATENT_HEADER_SIZE + stored_size */
} nne_latent_info;

/* Serialize `l` (validated as a reader would: sizes, limits, model id, finite values) with
 * the payload compressed as asked. `level`: zstd 1..NNE_LATENT_ZSTD_MAX_LEVEL, xz 0..9,
 * ignored for none; NNE_LATENT_LEVEL_DEFAULT picks zstd 19 / xz 9. *out is allocated with
 * nne_malloc (release with nne_free). The output is deterministic for a given compression
 * library version. */
nne_status nne_latent_write_mem(const nne_latent *l, nne_latent_compression c, int level,
                                uint8_t **out, size_t *out_size);
/* The same, written atomically to `path` (temporary file, fsync, rename). */
nne_status nne_latent_write_file(const nne_latent *l, nne_latent_compression c, int level,
                                 const char *path);

/* Parse and validate a whole file image. On success *out owns the latent and *info (if not
 * NULL) describes the file; on failure *out is zeroed and nne_last_error() starts with
 * "latent: ". Statuses: FORMAT (not a latent file, truncated, trailing bytes, bad field,
 * undecodable payload, non-finite values), CHECKSUM (header or payload CRC-32), UNSUPPORTED
 * (version, flags, compression or dtype this reader does not know), LIMIT (a limit above),
 * NOMEM. */
nne_status nne_latent_read_mem(const uint8_t *buf, size_t size, nne_latent *out,
                               nne_latent_info *info);
/* Read a file of at most NNE_LATENT_MAX_FILE_SIZE bytes; errors name the path. */
nne_status nne_latent_read_file(const char *path, nne_latent *out, nne_latent_info *info);

/* ---- The CAE pipeline ------------------------------------------------------------------ */

/* Smallest image side the CAE accepts (its latent is then 1x1). */
#define NNE_CAE_MIN_SIDE 21

/* Latent shape cae-seed gives for an image of height x width (NNE_ERR_INVALID_ARG if the
 * image is smaller than NNE_CAE_MIN_SIDE or larger than NNE_IMAGE_MAX_DIM). */
nne_status nne_cae_latent_shape(int32_t height, int32_t width, int32_t *lat_h, int32_t *lat_w,
                                int32_t *lat_c);

/* The side the latent codec codes an image side of `size` pixels at: the next multiple of
 * NNE_CAE_ALIGN (8, models.h) at or above max(size, NNE_CAE_MIN_SIDE). nne_cae_encode pads the
 * bottom rows and right columns to it by edge replication and records the padding in the
 * latent's pad fields; the decoder crops it (docs/latent-format.md, "Padding"). */
int32_t nne_cae_coded_size(int32_t size);

/* The encoder's input for img (RGB8) padded to ph x pw (>= its size): x [ph][pw][3] f32,
 * v / 255, the image at the top left and its last row and column replicated into the rest. */
void nne_cae_input_padded(const nne_image *img, int32_t ph, int32_t pw, float *x);

/* The decoder's side of the same, for a reconstruction y [ph][pw][3] (f32) of an image of
 * height x width padded to ph x pw: fills the border (nne_cae_seed_fill_border) and moves the
 * top-left height x width to the start of y ([height][width][3]), in place. For paths that run
 * the whole cae-seed (f32 or int8) instead of the latent codec, so they measure what it gives. */
void nne_cae_output_crop(float *y, int32_t ph, int32_t pw, int32_t height, int32_t width);

/* A codec bound to one set of trained cae-seed weights. Not thread-safe: it keeps the
 * encoder and decoder sessions of the last image size, so that a folder of same-sized images
 * builds them once. */
typedef struct nne_cae_codec nne_cae_codec;

/* `model` is a cae-seed graph (any input size; normally the NNE_CAE_FULL autoencoder read
 * from a trained model file) holding every weight of the full autoencoder: each constant of
 * nne_model_cae_seed(..., NNE_CAE_FULL) must exist in `model` by name with the same dtype and
 * shape (NNE_ERR_NOT_FOUND / NNE_ERR_SHAPE naming the tensor). A "model" metadata value other
 * than "cae-seed" is NNE_ERR_UNSUPPORTED. The weights are copied: `model` can be freed after
 * the call. */
nne_status nne_cae_codec_create(const nne_graph *model, nne_cae_codec **out);
void nne_cae_codec_free(nne_cae_codec *c);
/* SHA-256 of the codec's weights as stored in latents (docs/latent-format.md, "Model hash"). */
const uint8_t *nne_cae_codec_hash(const nne_cae_codec *c);
/* Run the encoder and decoder on backend `be` (an f32 backend: "cpu", the default, "cpu-exact",
 * "cpu-bf16", "cpu-ref"; backend.h) from the next image on. The weights hash is unchanged:
 * latents stay interchangeable, but a bf16 encoder's latent differs from an f32 one's. */
void nne_cae_codec_set_backend(nne_cae_codec *c, const nne_backend *be);

/* Encode an RGB image (channels == 3, both sides >= NNE_CAE_MIN_SIDE) to its latent: the
 * image padded to nne_cae_coded_size on each side (the latent's shape is
 * nne_cae_latent_shape of the padded size; 512x768 needs no padding). *out is zeroed on
 * failure. */
nne_status nne_cae_encode(nne_cae_codec *c, const nne_image *img, nne_latent *out);
/* Decode a latent to an RGB image of the original size: the decoder runs at the padded
 * size, its border is filled (nne_cae_seed_fill_border) and the padding cropped. Latents of
 * any padded size decode, also those written before padding existed (pad 0). A latent from another model (id or
 * weight hash differ) is NNE_ERR_INVALID_ARG with both hashes in the message; a latent shape
 * that is not the one the model gives for the image size is NNE_ERR_FORMAT. *out is zeroed on
 * failure. */
nne_status nne_cae_decode(nne_cae_codec *c, const nne_latent *lat, nne_image *out);

/* Lower-case hex of a hash (2 * NNE_LATENT_HASH_SIZE digits + NUL) into buf; returns buf. */
const char *nne_latent_hash_hex(const uint8_t hash[NNE_LATENT_HASH_SIZE],
                                char buf[2 * NNE_LATENT_HASH_SIZE + 1]);

#ifdef __cplusplus
}
#endif
#endif
