/* JPEG XL through libjxl: lossy VarDCT in the XYB colour space (uses_original_profile off,
 * the encoder's default for lossy), sRGB input declared as such, a bare codestream (no
 * container, nothing else to store). The knob is the Butteraugli distance (lower = better;
 * 1.0 is libjxl's "visually lossless" default). Effort NNE_JXL_EFFORT (libjxl's default 7,
 * "squirrel"); no parallel runner, so one thread. Decoding returns 8-bit sRGB. */
#include <stdio.h>
#include <string.h>

#include <jxl/decode.h>
#include <jxl/encode.h>

#include "imgcodec/imgcodec_internal.h"

#define NNE_JXL_EFFORT 7

static const char *jxl_version(const nne_imgcodec *c, char *buf, size_t n) {
    (void)c;
    const uint32_t v = JxlEncoderVersion(); /* major * 1000000 + minor * 1000 + patch */
    snprintf(buf, n, "libjxl %u.%u.%u", v / 1000000, v / 1000 % 1000, v % 1000);
    return buf;
}

static nne_status jxl_encode(const nne_imgcodec *c, const nne_image *img, double distance,
                             uint8_t **out, size_t *out_size) {
    JxlEncoder *enc = JxlEncoderCreate(NULL);
    uint8_t *buf = NULL;
    nne_status s = NNE_OK;
    if (!enc) return nne_error(NNE_ERR_NOMEM, "jxl: cannot create the encoder");
    JxlBasicInfo bi;
    JxlEncoderInitBasicInfo(&bi);
    bi.xsize = (uint32_t)img->width;
    bi.ysize = (uint32_t)img->height;
    bi.bits_per_sample = 8;
    bi.exponent_bits_per_sample = 0;
    bi.num_color_channels = 3;
    bi.alpha_bits = 0;
    bi.uses_original_profile = JXL_FALSE;
    JxlColorEncoding ce;
    JxlColorEncodingSetToSRGB(&ce, JXL_FALSE);
    const JxlPixelFormat pf = {3, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN, 0};
    JxlEncoderFrameSettings *fs = NULL;
    if (JxlEncoderSetBasicInfo(enc, &bi) != JXL_ENC_SUCCESS ||
        JxlEncoderSetColorEncoding(enc, &ce) != JXL_ENC_SUCCESS ||
        !(fs = JxlEncoderFrameSettingsCreate(enc, NULL)) ||
        JxlEncoderSetFrameDistance(fs, (float)distance) != JXL_ENC_SUCCESS ||
        JxlEncoderFrameSettingsSetOption(fs, JXL_ENC_FRAME_SETTING_EFFORT, NNE_JXL_EFFORT) !=
            JXL_ENC_SUCCESS ||
        JxlEncoderAddImageFrame(fs, &pf, img->data, (size_t)img->width * img->height * 3) !=
            JXL_ENC_SUCCESS) {
        s = nne_error(NNE_ERR_INTERNAL, "jxl: encoder setup failed (distance %g)", distance);
        goto done;
    }
    JxlEncoderCloseInput(enc);
    size_t cap = 65536, used = 0;
    for (;;) {
        uint8_t *p = nne_realloc_array(buf, cap, 1);
        if (!p) {
            s = NNE_ERR_NOMEM;
            goto done;
        }
        buf = p;
        uint8_t *next = buf + used;
        size_t avail = cap - used;
        const JxlEncoderStatus st = JxlEncoderProcessOutput(enc, &next, &avail);
        used = (size_t)(next - buf);
        if (st == JXL_ENC_SUCCESS) break;
        if (st != JXL_ENC_NEED_MORE_OUTPUT) {
            s = nne_error(NNE_ERR_INTERNAL, "jxl: encoding failed");
            goto done;
        }
        if (!nne_size_mul(cap, 2, &cap)) {
            s = nne_error(NNE_ERR_NOMEM, "jxl: output too large");
            goto done;
        }
    }
    s = nne_imgcodec_copy_out(c, buf, used, out, out_size);
done:
    nne_free(buf);
    JxlEncoderDestroy(enc);
    return s;
}

static nne_status jxl_decode(const nne_imgcodec *c, const uint8_t *buf, size_t n,
                             nne_image *img) {
    /* Sniff first: Debian's libjxl prints a debug line to stderr for each decoding failure
     * (a build-time choice we cannot turn off), so keep foreign data away from it. A
     * JPEG XL stream that is damaged still gets that line, besides our status. */
    const JxlSignature sig = JxlSignatureCheck(buf, n);
    if (sig != JXL_SIG_CODESTREAM && sig != JXL_SIG_CONTAINER)
        return nne_error(NNE_ERR_FORMAT, "jxl: not a JPEG XL stream");
    JxlDecoder *dec = JxlDecoderCreate(NULL);
    if (!dec) return nne_error(NNE_ERR_NOMEM, "jxl: cannot create the decoder");
    const JxlPixelFormat pf = {3, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN, 0};
    nne_status s = NNE_OK;
    bool have_image = false;
    if (JxlDecoderSubscribeEvents(dec, JXL_DEC_BASIC_INFO | JXL_DEC_FULL_IMAGE) !=
            JXL_DEC_SUCCESS ||
        JxlDecoderSetInput(dec, buf, n) != JXL_DEC_SUCCESS) {
        s = nne_error(NNE_ERR_INTERNAL, "jxl: decoder setup failed");
        goto done;
    }
    JxlDecoderCloseInput(dec);
    for (;;) {
        const JxlDecoderStatus st = JxlDecoderProcessInput(dec);
        if (st == JXL_DEC_BASIC_INFO) {
            JxlBasicInfo bi;
            if (JxlDecoderGetBasicInfo(dec, &bi) != JXL_DEC_SUCCESS) {
                s = nne_error(NNE_ERR_FORMAT, "jxl: bad header");
                goto done;
            }
            s = nne_imgcodec_alloc_rgb(c, bi.xsize, bi.ysize, img);
            if (s) goto done;
        } else if (st == JXL_DEC_NEED_IMAGE_OUT_BUFFER) {
            size_t need = 0;
            const size_t have = (size_t)img->width * img->height * 3;
            if (!img->data || JxlDecoderImageOutBufferSize(dec, &pf, &need) != JXL_DEC_SUCCESS ||
                need != have || JxlDecoderSetImageOutBuffer(dec, &pf, img->data, have) !=
                                    JXL_DEC_SUCCESS) {
                s = nne_error(NNE_ERR_FORMAT, "jxl: unexpected output buffer request");
                goto done;
            }
        } else if (st == JXL_DEC_FULL_IMAGE) {
            have_image = true; /* one frame expected; keep going to reach the end */
        } else if (st == JXL_DEC_SUCCESS) {
            break;
        } else {
            s = nne_error(NNE_ERR_FORMAT, "jxl: corrupt or truncated stream");
            goto done;
        }
    }
    if (!have_image) s = nne_error(NNE_ERR_FORMAT, "jxl: stream has no image");
done:
    if (s) nne_image_free(img);
    JxlDecoderDestroy(dec);
    return s;
}

const nne_imgcodec nne_imgcodec_jxl = {
    .name = "jxl",
    .label = "JPEG XL (libjxl)",
    .knob = "distance",
    .q_min = 0.05,
    .q_max = 15,
    .direction = -1,
    .integer = false,
    .settings = "lossy VarDCT, XYB, Butteraugli distance d, effort 7, bare codestream, 1 thread",
    .anchor = NULL,
    .n_sweep = 9,
    .sweep = {15, 10, 7, 5, 3.5, 2.5, 1.8, 1.3, 1.0},
    .version = jxl_version,
    .encode = jxl_encode,
    .decode = jxl_decode,
};
