/* The CAE paper's pipeline: image -> float latent -> image with cae-seed (codec.h).
 *
 * The codec keeps the trained weights in a cae-seed autoencoder built at the smallest input
 * size (the weights do not depend on it) and, per image size, builds the encoder or decoder
 * part with nne_model_cae_seed_like (so a channel-pruned model keeps its widths), rebinds the
 * weights by name (nne_model_copy_weights) and runs it in a session on the fast cpu backend
 * (or the one nne_cae_codec_set_backend chose).
 * The last size's graphs and sessions are kept, so a folder of same-sized images (Kodak: 512x768
 * and 768x512) builds them once per size change. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"
#include "nnedge/backend.h"
#include "nnedge/codec.h"
#include "nnedge/models.h"
#include "nnedge/sha256.h"

#define CAE_MODEL_ID "cae-seed"

typedef struct cae_part {
    int32_t height, width; /* image size the graph is built for; 0 = none */
    nne_graph *g;
    nne_session *s;
} cae_part;

struct nne_cae_codec {
    nne_graph *weights; /* NNE_CAE_FULL at NNE_CAE_MIN_SIDE, holding the trained weights */
    uint8_t hash[NNE_LATENT_HASH_SIZE];
    cae_part enc, dec;
    const nne_backend *be; /* NULL: nne_backend_cpu() */
};

static void part_reset(cae_part *p) {
    nne_session_free(p->s);
    nne_graph_free(p->g);
    memset(p, 0, sizeof *p);
}

nne_status nne_cae_latent_shape(int32_t height, int32_t width, int32_t *lat_h, int32_t *lat_w,
                                int32_t *lat_c) {
    if (height < NNE_CAE_MIN_SIDE || width < NNE_CAE_MIN_SIDE)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "cae-seed: image %dx%d is smaller than %dx%d, the smallest size the "
                         "encoder accepts",
                         (int)width, (int)height, NNE_CAE_MIN_SIDE, NNE_CAE_MIN_SIDE);
    if (height > NNE_IMAGE_MAX_DIM || width > NNE_IMAGE_MAX_DIM)
        return nne_error(NNE_ERR_INVALID_ARG, "cae-seed: image %dx%d is larger than %d per side",
                         (int)width, (int)height, NNE_IMAGE_MAX_DIM);
    /* Five 3x3 valid convolutions with strides 1, 2, 1, 2, 2 (docs/models.md). */
    static const int32_t stride[5] = {1, 2, 1, 2, 2};
    int32_t h = height, w = width;
    for (int k = 0; k < 5; k++) {
        h = (h - 3) / stride[k] + 1;
        w = (w - 3) / stride[k] + 1;
    }
    *lat_h = h;
    *lat_w = w;
    *lat_c = 32;
    return NNE_OK;
}

static nne_status weights_hash(const nne_graph *g, uint8_t out[NNE_LATENT_HASH_SIZE]) {
    nne_sha256 h;
    nne_sha256_init(&h);
    nne_status s = nne_codec_hash_weights(&h, g, "cae-seed");
    if (!s) nne_sha256_final(&h, out);
    return s;
}

nne_status nne_cae_codec_create(const nne_graph *model, nne_cae_codec **out) {
    *out = NULL;
    if (!model) return nne_error(NNE_ERR_INVALID_ARG, "cae-seed: NULL model");
    const char *id = nne_graph_get_meta(model, "model");
    if (id && strcmp(id, CAE_MODEL_ID) != 0)
        return nne_error(NNE_ERR_UNSUPPORTED,
                         "model '%s' is a '%s' model; the latent codec needs a cae-seed model",
                         model->name ? model->name : "?", id);
    nne_cae_codec *c = nne_calloc(1, sizeof *c);
    if (!c) return NNE_ERR_NOMEM;
    nne_status s = nne_model_cae_seed_like(model, NNE_CAE_MIN_SIDE, NNE_CAE_MIN_SIDE, NNE_CAE_FULL,
                                           &c->weights);
    if (!s) s = nne_model_copy_weights(c->weights, model);
    if (!s) s = weights_hash(c->weights, c->hash);
    if (!s) s = nne_codec_check_finite(c->weights, "cae-seed");
    if (s) {
        nne_cae_codec_free(c);
        return s;
    }
    *out = c;
    return NNE_OK;
}

void nne_cae_codec_free(nne_cae_codec *c) {
    if (!c) return;
    part_reset(&c->enc);
    part_reset(&c->dec);
    nne_graph_free(c->weights);
    nne_free(c);
}

const uint8_t *nne_cae_codec_hash(const nne_cae_codec *c) { return c->hash; }

void nne_cae_codec_set_backend(nne_cae_codec *c, const nne_backend *be) {
    if (c->be == be) return;
    c->be = be;
    part_reset(&c->enc); /* rebuilt on the new backend at the next image */
    part_reset(&c->dec);
}

/* The encoder or decoder for an image of height x width, built and bound on first use. */
static nne_status get_part(nne_cae_codec *c, nne_cae_part which, int32_t height, int32_t width,
                           cae_part **out) {
    cae_part *p = which == NNE_CAE_ENCODER ? &c->enc : &c->dec;
    if (p->g && p->height == height && p->width == width) {
        *out = p;
        return NNE_OK;
    }
    part_reset(p);
    nne_status s = nne_model_cae_seed_like(c->weights, height, width, which, &p->g);
    if (!s) s = nne_model_copy_weights(p->g, c->weights);
    if (!s) s = nne_session_create(p->g, c->be ? c->be : nne_backend_cpu(), &p->s);
    if (s) {
        part_reset(p);
        return s;
    }
    p->height = height;
    p->width = width;
    *out = p;
    return NNE_OK;
}

int32_t nne_cae_coded_size(int32_t size) {
    if (size < NNE_CAE_MIN_SIDE) size = NNE_CAE_MIN_SIDE;
    return (int32_t)(((int64_t)size + NNE_CAE_ALIGN - 1) / NNE_CAE_ALIGN * NNE_CAE_ALIGN);
}

void nne_cae_input_padded(const nne_image *img, int32_t ph, int32_t pw, float *x) {
    for (int32_t y = 0; y < ph; y++) {
        const uint8_t *src = img->data + (size_t)(y < img->height ? y : img->height - 1) *
                                             (size_t)img->width * 3;
        float *dst = x + (size_t)y * (size_t)pw * 3;
        for (int32_t xx = 0; xx < pw; xx++) {
            const uint8_t *px = src + (size_t)(xx < img->width ? xx : img->width - 1) * 3;
            for (int k = 0; k < 3; k++) dst[(size_t)xx * 3 + k] = (float)px[k] / 255.0f;
        }
    }
}

void nne_cae_output_crop(float *y, int32_t ph, int32_t pw, int32_t height, int32_t width) {
    nne_cae_seed_fill_border(y, 1, ph, pw, 3);
    if (pw == width) return; /* rows already contiguous; the extra rows are simply dropped */
    for (int32_t r = 0; r < height; r++) /* row r moves down-left: never over an unread row */
        memmove(y + (size_t)r * (size_t)width * 3, y + (size_t)r * (size_t)pw * 3,
                (size_t)width * 3 * sizeof *y);
}

nne_status nne_cae_encode(nne_cae_codec *c, const nne_image *img, nne_latent *out) {
    memset(out, 0, sizeof *out);
    if (!c || !img || !img->data) return nne_error(NNE_ERR_INVALID_ARG, "cae-seed: no image");
    if (img->channels != 3)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "cae-seed: the encoder takes RGB images (3 channels), not %d channels",
                         (int)img->channels);
    int32_t lh, lw, lc;
    nne_status s = nne_cae_latent_shape(img->height, img->width, &lh, &lw, &lc);
    if (s) return s; /* the image itself is too small or too large */
    const int32_t ph = nne_cae_coded_size(img->height), pw = nne_cae_coded_size(img->width);
    if ((s = nne_cae_latent_shape(ph, pw, &lh, &lw, &lc))) return s;
    cae_part *p;
    if ((s = get_part(c, NNE_CAE_ENCODER, ph, pw, &p))) return s;
    const nne_tensor *ot = nne_session_output_tensor(p->s, 0);
    if (ot->shape.dim[1] != lh || ot->shape.dim[2] != lw || ot->shape.dim[3] != lc)
        return nne_error(NNE_ERR_INTERNAL, "cae-seed: encoder output shape disagrees with "
                                           "nne_cae_latent_shape");
    nne_cae_input_padded(img, ph, pw, nne_session_input(p->s, 0));
    if ((s = nne_session_run(p->s))) return s;
    const size_t n = (size_t)lh * (size_t)lw * (size_t)lc;
    float *lat = nne_malloc(n * sizeof *lat);
    if (!lat) return NNE_ERR_NOMEM;
    memcpy(lat, nne_session_output(p->s, 0), n * sizeof *lat);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(lat[i])) {
            nne_free(lat);
            return nne_error(NNE_ERR_INTERNAL, "cae-seed: the encoder produced a non-finite value");
        }
    snprintf(out->model_id, sizeof out->model_id, "%s", CAE_MODEL_ID);
    memcpy(out->model_hash, c->hash, NNE_LATENT_HASH_SIZE);
    out->image_width = img->width;
    out->image_height = img->height;
    out->pad[2] = ph - img->height; /* bottom */
    out->pad[3] = pw - img->width;  /* right */
    out->height = lh;
    out->width = lw;
    out->channels = lc;
    out->data = lat;
    return NNE_OK;
}

nne_status nne_cae_decode(nne_cae_codec *c, const nne_latent *lat, nne_image *out) {
    memset(out, 0, sizeof *out);
    if (!c || !lat || !lat->data) return nne_error(NNE_ERR_INVALID_ARG, "cae-seed: no latent");
    char want[2 * NNE_LATENT_HASH_SIZE + 1], got[2 * NNE_LATENT_HASH_SIZE + 1];
    if (strncmp(lat->model_id, CAE_MODEL_ID, sizeof lat->model_id) != 0)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "latent was made by model '%.*s', not by cae-seed: decode it with the "
                         "model that encoded it",
                         (int)strnlen(lat->model_id, sizeof lat->model_id), lat->model_id);
    if (memcmp(lat->model_hash, c->hash, NNE_LATENT_HASH_SIZE) != 0)
        return nne_error(NNE_ERR_INVALID_ARG,
                         "wrong model: the latent was encoded with weights sha256 %.16s..., the "
                         "model given has weights sha256 %.16s...; decode with the model that "
                         "encoded it",
                         nne_latent_hash_hex(lat->model_hash, want),
                         nne_latent_hash_hex(c->hash, got));
    for (int i = 0; i < 4; i++)
        if (lat->pad[i] < 0 || lat->pad[i] > NNE_IMAGE_MAX_DIM)
            return nne_error(NNE_ERR_FORMAT, "cae-seed: padding %d out of range", (int)lat->pad[i]);
    const int64_t ph = (int64_t)lat->image_height + lat->pad[0] + lat->pad[2];
    const int64_t pw = (int64_t)lat->image_width + lat->pad[1] + lat->pad[3];
    if (lat->image_width < 1 || lat->image_height < 1 || ph > NNE_IMAGE_MAX_DIM ||
        pw > NNE_IMAGE_MAX_DIM)
        return nne_error(NNE_ERR_FORMAT, "cae-seed: bad image geometry %dx%d",
                         (int)lat->image_width, (int)lat->image_height);
    int32_t lh, lw, lc;
    nne_status s = nne_cae_latent_shape((int32_t)ph, (int32_t)pw, &lh, &lw, &lc);
    if (s)
        return nne_error(NNE_ERR_FORMAT, "latent: image %lldx%lld is below the CAE's minimum %dx%d",
                         (long long)pw, (long long)ph, NNE_CAE_MIN_SIDE, NNE_CAE_MIN_SIDE);
    if (lat->height != lh || lat->width != lw || lat->channels != lc)
        return nne_error(NNE_ERR_FORMAT,
                         "latent shape %dx%dx%d does not match the %dx%dx%d that cae-seed gives "
                         "for a %lldx%lld image",
                         (int)lat->height, (int)lat->width, (int)lat->channels, (int)lh, (int)lw,
                         (int)lc, (long long)pw, (long long)ph);
    cae_part *p;
    if ((s = get_part(c, NNE_CAE_DECODER, (int32_t)ph, (int32_t)pw, &p))) return s;
    const nne_tensor *it = nne_session_input_tensor(p->s, 0);
    if (it->shape.dim[1] != lh || it->shape.dim[2] != lw || it->shape.dim[3] != lc)
        return nne_error(NNE_ERR_INTERNAL, "cae-seed: decoder input shape disagrees with "
                                           "nne_cae_latent_shape");
    memcpy(nne_session_input(p->s, 0), lat->data, (size_t)lh * (size_t)lw * (size_t)lc * 4);
    if ((s = nne_session_run(p->s))) return s;
    nne_image img;
    if ((s = nne_image_alloc(&img, lat->image_width, lat->image_height, 3))) return s;
    /* Reconstruction [1][ph][pw][3]; crop the padding. The decoder's border (rows and columns
     * past ly / lx, nne_cae_seed_border) is replaced by copies of row ly / column lx, as
     * nne_cae_seed_fill_border does (docs/models.md, "The border"). */
    const float *y = nne_session_output(p->s, 0);
    const int64_t ly = ph - 1 - nne_cae_seed_border((int32_t)ph);
    const int64_t lx = pw - 1 - nne_cae_seed_border((int32_t)pw);
    for (int32_t r = 0; r < img.height; r++) {
        const int64_t sy = r + lat->pad[0] < ly ? r + lat->pad[0] : ly;
        const float *row = y + (size_t)sy * (size_t)pw * 3;
        uint8_t *dst = img.data + (size_t)r * (size_t)img.width * 3;
        for (int32_t x = 0; x < img.width; x++) {
            const int64_t sx = x + lat->pad[1] < lx ? x + lat->pad[1] : lx;
            for (int k = 0; k < 3; k++)
                dst[(size_t)x * 3 + k] = nne_codec_to_u8(row[(size_t)sx * 3 + k]);
        }
    }
    *out = img;
    return NNE_OK;
}
