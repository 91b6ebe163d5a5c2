/* nnedge training engine: forward/backward pairs on plain arrays, losses with gradients,
 * parameter/gradient arenas, optimizers, learning-rate schedules, a seeded PRNG with
 * PyTorch-style initialisation, and a graph-level trainer. Semantics, formulas and the
 * gradient-check and PyTorch-parity results are in docs/training.md.
 *
 * Conventions (llm.c style, the same layouts as ops.h):
 *  - Activations NHWC, contiguous; conv weights OHWI w[oc][kh][kw][ic/groups].
 *  - Every layer has a `_forward` (the reference kernel of src/ops) and a `_backward`.
 *  - Backward passes OVERWRITE the input gradient dx (which may be NULL: not wanted, e.g.
 *    for the first layer) and ACCUMULATE (+=) into parameter gradients (dw, db, dslope,
 *    dbeta, dgamma), so gradients of shared parameters and of several batches add up;
 *    zero them before a step (nne_params_zero_grad).
 *  - Kernels never allocate and never fail on valid arguments; callers pass scratch sized
 *    by the matching `_scratch_size()` function. Geometry is validated by nne_graph_infer.
 *  - The loop kernels are the reference (serial); nne_conv*_gemm are the fast, threaded
 *    convolutions the trainer uses (docs/training.md, "Fast path").
 */
#ifndef NNEDGE_TRAIN_H
#define NNEDGE_TRAIN_H

#include "nnedge/graph.h"
#include "nnedge/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Layers ======================================================================== */

/* conv2d. Forward = nne_conv2d_f32__ref.
 *   x  [n][ih][iw][ic]   w  [oc][kh][kw][ic/g]   dy [n][oh][ow][oc]
 *   dx [n][ih][iw][ic]   overwritten; NULL to skip
 *   dw [oc][kh][kw][ic/g] +=        db [oc] +=, NULL to skip (no bias)
 *   scratch: nne_conv2d_backward_scratch_size(g) floats (per-row partial sums of dw). */
void nne_conv2d_forward(const nne_conv2d_geom *g, const float *x, const float *w, const float *b,
                        float *y);
size_t nne_conv2d_backward_scratch_size(const nne_conv2d_geom *g);
void nne_conv2d_backward(const nne_conv2d_geom *g, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db, float *scratch);

/* conv_transpose2d (PyTorch semantics, ops.h). Forward = nne_conv_transpose2d_f32__ref.
 * Same buffers and rules as conv2d; w is OHWI with O = output channels. */
void nne_conv_transpose2d_forward(const nne_conv2d_geom *g, const float *x, const float *w,
                                  const float *b, float *y);
size_t nne_conv_transpose2d_backward_scratch_size(const nne_conv2d_geom *g);
void nne_conv_transpose2d_backward(const nne_conv2d_geom *g, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db,
                                   float *scratch);

/* Fast convolutions (src/train/conv_gemm.c): im2col + nne_gemm_f32, split over `pool`
 * (NULL = serial). Same arguments and rules as the reference pairs above (dx overwritten,
 * NULL to skip; dw, db +=, NULL to skip), equal to them within f32 rounding (the sums are
 * reordered; tests/train/test_conv_gemm.c) and bitwise identical for every thread count
 * and schedule: the work is cut into chunks that depend on the geometry only, weight and
 * bias gradients are summed per chunk and reduced in chunk order. groups > 1 runs the
 * reference loops (serial). scratch: *_gemm_scratch_size(g, nne_threadpool_threads(pool))
 * bytes, 64-byte aligned (nne_aligned_alloc), shared by forward and backward; it is bounded
 * by a tile of about 256 KiB of patches plus GEMM packing (~0.5 MiB) per thread and
 * 16 partial weight gradients. gemm_flags: 0, or NNE_GEMM_BF16 (gemm.h) for mixed precision:
 * every GEMM of the pass (forward; input and weight gradients) reads its operands rounded
 * to bf16 and sums in f32 (AMX tiles where the CPU has them); im2col, col2im, biases and the
 * partial and final weight gradients stay f32. Other bits are ignored. */
size_t nne_conv2d_gemm_scratch_size(const nne_conv2d_geom *g, int threads);
void nne_conv2d_forward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                             const float *w, const float *b, float *y, void *scratch,
                             uint32_t gemm_flags);
void nne_conv2d_backward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g, const float *x,
                              const float *w, const float *dy, float *dx, float *dw, float *db,
                              void *scratch, uint32_t gemm_flags);
size_t nne_conv_transpose2d_gemm_scratch_size(const nne_conv2d_geom *g, int threads);
void nne_conv_transpose2d_forward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g,
                                       const float *x, const float *w, const float *b, float *y,
                                       void *scratch, uint32_t gemm_flags);
void nne_conv_transpose2d_backward_gemm(nne_threadpool *pool, const nne_conv2d_geom *g,
                                        const float *x, const float *w, const float *dy, float *dx,
                                        float *dw, float *db, void *scratch, uint32_t gemm_flags);

/* relu: x, dy, dx [count]. dx = x > 0 ? dy : 0 (dx may alias dy). */
void nne_relu_forward(size_t count, const float *x, float *y);
void nne_relu_backward(size_t count, const float *x, const float *dy, float *dx);

/* prelu: x, dy, dx [pixels][c], slope/dslope [n_slope], n_slope 1 (shared) or c.
 * y = x < 0 ? slope*x : x.  dx = x < 0 ? slope*dy : dy (may alias dy, NULL to skip);
 * dslope += sum over x < 0 of x*dy. */
void nne_prelu_forward(size_t pixels, int32_t c, const float *x, const float *slope,
                       int32_t n_slope, float *y);
void nne_prelu_backward(size_t pixels, int32_t c, const float *x, const float *slope,
                        int32_t n_slope, const float *dy, float *dx, float *dslope);

/* GDN / IGDN: x, dy, dx [pixels][c], beta/dbeta [c], gamma/dgamma [c][c] (row i = output
 * channel). dx overwritten (must not alias x or dy; NULL to skip); dbeta, dgamma +=.
 * scratch: nne_gdn_backward_scratch_size(c) floats. */
void nne_gdn_forward(size_t pixels, int32_t c, const float *x, const float *beta,
                     const float *gamma, bool inverse, float *y);
size_t nne_gdn_backward_scratch_size(int32_t c);
void nne_gdn_backward(size_t pixels, int32_t c, const float *x, const float *beta,
                      const float *gamma, bool inverse, const float *dy, float *dx, float *dbeta,
                      float *dgamma, float *scratch);

/* Fast GDN / IGDN (src/train/gdn_gemm.c): the normalizer sum_j gamma[i][j] x_j^2 as a
 * 1x1 convolution of x^2 through nne_gemm_f32 per tile of pixels (the backward recomputes
 * it and runs two more GEMMs: dgamma += dn^T x^2 and the dx sum dn . gamma), split over
 * `pool`. Same arguments and rules as the pair above; y must not alias x. Equal to them
 * within f32 rounding (tests/train/test_fast_kernels.c) and bitwise identical for every thread
 * count (tiles and chunks fixed by `pixels`, parameter gradients reduced in chunk order).
 * scratch: nne_gdn_gemm_scratch_size(pixels, c, nne_threadpool_threads(pool)) bytes,
 * 64-byte aligned, shared by forward and backward. gemm_flags: 0, or NNE_GEMM_BF16 (gemm.h)
 * to run the three GEMMs with bf16 inputs and f32 sums (the trainer's bf16_matmul): then
 * within bf16 rounding of the pair above (~2^-8 relative), still thread-count independent. */
size_t nne_gdn_gemm_scratch_size(size_t pixels, int32_t c, int threads);
void nne_gdn_forward_gemm(nne_threadpool *pool, size_t pixels, int32_t c, const float *x,
                          const float *beta, const float *gamma, bool inverse, float *y,
                          void *scratch, uint32_t gemm_flags);
void nne_gdn_backward_gemm(nne_threadpool *pool, size_t pixels, int32_t c, const float *x,
                           const float *beta, const float *gamma, bool inverse, const float *dy,
                           float *dx, float *dbeta, float *dgamma, void *scratch,
                           uint32_t gemm_flags);

/* add: y = a + b; da = db = dy (overwritten; either may be NULL or alias dy). */
void nne_add_forward(size_t count, const float *a, const float *b, float *y);
void nne_add_backward(size_t count, const float *dy, float *da, float *db);

/* abs: dx = sign(x) * dy (0 at x = 0); dx overwritten, may alias dy. */
void nne_abs_backward(size_t count, const float *x, const float *dy, float *dx);

struct nne_rng; /* the PRNG, below */

/* quantize in training (ops.h nne_quantize_f32__ref is the inference meaning):
 * NNE_QUANTIZE_NOISE: y = x + u, u uniform in [-0.5, 0.5) drawn from `rng` in element order;
 * NNE_QUANTIZE_STE: y = round(x - m) + m (means NULL: m = 0). The backward of both is the
 * identity for x (dx = dy) and zero for the means: d(round(x - m) + m)/dm is taken as 0. */
void nne_quantize_train_forward(size_t count, nne_quantize_train_mode mode, const float *x,
                                const float *means, struct nne_rng *rng, float *y);

/* Stochastic Gumbel annealing (SGA; Yang, Bamler & Mandt 2020, "Improving Inference for
 * Neural Image Compression"), a soft rounding for optimizing latents: with v = x - m,
 * f = floor(v), r = v - f, the logits of rounding down and up are -atanh(r) / tau and
 * -atanh(1 - r) / tau (arguments capped at 1 - 1e-5), and
 *     y = f + w + m,  w = sigmoid(((up + g2) - (down + g1)) / tau)
 * with g1, g2 Gumbel(0, 1) samples drawn from `rng` (two per element, in element order): a
 * relaxed one-hot sample of {f, f + 1} at temperature tau, the nearer integer more likely,
 * hard rounding as tau -> 0. The backward recomputes w from x, m and y:
 *     dx = dy w (1 - w) / tau d(up - down)/dv   (overwritten; the means get no gradient,
 * as with the other modes). means NULL: m = 0. tau > 0. */
void nne_quantize_sga_forward(size_t count, float tau, const float *x, const float *means,
                              struct nne_rng *rng, float *y);
void nne_quantize_sga_backward(size_t count, float tau, const float *x, const float *means,
                               const float *y, const float *dy, float *dx);

/* Factorized likelihood (ops.h): x, dy, dx [pixels][c]; params, dparams [c][NNE_FACT_PARAMS].
 * y = max(P(x), lik_min); the lower bound passes the gradient where P >= lik_min or dy < 0
 * (CompressAI's LowerBound), so a rate loss (dy < 0) always pulls P up. dx overwritten (NULL
 * to skip); dparams += (NULL to skip). */
void nne_factorized_likelihood_backward(size_t pixels, int32_t c, const float *x,
                                        const float *params, float lik_min, const float *dy,
                                        float *dx, float *dparams);

/* Gaussian likelihood (ops.h): x, scales, means, dy and the gradients [count]; means NULL =
 * 0. The lower bounds of the scale and of P pass gradients as above. dx, dscales, dmeans are
 * overwritten; each may be NULL (skipped). */
void nne_gaussian_likelihood_backward(size_t count, const float *x, const float *scales,
                                      const float *means, float scale_min, float lik_min,
                                      const float *dy, float *dx, float *dscales, float *dmeans);

/* ==== Losses ========================================================================= */

/* Mean squared error over `count` elements: L = (1/count) sum (y - t)^2, summed in double.
 * dy (NULL to skip) is overwritten with dL/dy = 2 (y - t) / count. Returns L. */
double nne_mse_loss(size_t count, const float *y, const float *t, float *dy);

/* 1 - MS-SSIM on float images in [0, 1] (data range 1), NHWC [n][h][w][c], exactly the
 * pytorch_msssim / nne_ms_ssim_u8 conventions (docs/metrics.md): per image and channel,
 * 11-tap Gaussian (sigma 1.5) valid filtering, K1 = 0.01, K2 = 0.03, `scales` scales with
 * 2x2 average pooling (odd sizes padded on both sides, divisor 4), relu of every mean cs /
 * ssim before the weighted product; the loss is 1 - mean over images and channels.
 *
 * scales: 5 is the standard MS-SSIM (weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333) and
 * needs min(h, w) > 160. 1..4 uses the first `scales` weights renormalized to sum 1 and
 * needs min(h, w) > 10 * 2^(scales-1) (for crops smaller than 161 px). 0 = automatic:
 * 5 when possible, else the largest number that fits (nne_ms_ssim_auto_scales).
 * y is the prediction (differentiated), t the target. dy (NULL to skip) is overwritten.
 * Computation is in double. Errors: NNE_ERR_INVALID_ARG (bad sizes, scales),
 * NNE_ERR_LIMIT (image too small for the scales). */
int32_t nne_ms_ssim_auto_scales(int32_t h, int32_t w); /* 0 if min(h, w) < 11 */
size_t nne_ms_ssim_loss_scratch_size(int32_t h, int32_t w, int32_t scales); /* bytes */
nne_status nne_ms_ssim_loss(int32_t n, int32_t h, int32_t w, int32_t c, const float *y,
                            const float *t, int32_t scales, void *scratch, double *loss, float *dy);

/* Rate of likelihoods: bits = sum_i -log2(lik_i) (summed in double). dlik (NULL to skip)
 * is overwritten with d(scale * bits)/d(lik) = -scale / (lik ln 2). Returns bits. */
double nne_rate_bits(size_t count, const float *lik, double scale, float *dlik);

/* ==== PRNG and initialisation ======================================================= */

/* xoshiro256** (Blackman & Vigna 2018), state seeded from a 64-bit seed by four outputs of
 * splitmix64. nne_rng_uniform_f32 returns (u64 >> 40) * 2^-24 in [0, 1), exact in f32.
 * scripts/gen_golden_train.py implements the same generator bit for bit. */
typedef struct nne_rng {
    uint64_t s[4];
} nne_rng;
void nne_rng_seed(nne_rng *r, uint64_t seed);
uint64_t nne_rng_u64(nne_rng *r);
float nne_rng_uniform_f32(nne_rng *r);                       /* [0, 1) */
float nne_rng_uniform_range(nne_rng *r, float lo, float hi); /* lo + (hi - lo) * u */

/* Initialise the trainable constants of an f32 graph like PyTorch's defaults, in node
 * order, each tensor in its storage order, from one nne_rng seeded with `seed`:
 *   conv2d / conv_transpose2d weight and bias: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
 *     (kaiming_uniform with a = sqrt(5)); fan_in = (ic/g)*kh*kw for conv2d and
 *     (oc/g)*kh*kw for conv_transpose2d (PyTorch computes it from its (Cin, Cout/g, kh, kw)
 *     weight); weight first, then bias.
 *   prelu slope: 0.25.  GDN/IGDN: beta = 1, gamma = 0.1 * identity (CompressAI).
 * Constants shared by several nodes are initialised once, at their first use. */
nne_status nne_train_init_params(nne_graph *g, uint64_t seed);

/* ==== Parameter and gradient arenas ================================================== */

typedef struct nne_param {
    int32_t tensor; /* graph tensor index (a constant) */
    size_t offset;  /* first element in data/grad */
    size_t count;   /* elements */
    bool decay;     /* weight decay applies (conv weights; not biases, slopes, GDN) */
    bool entropy;   /* a parameter of an entropy model (the factorized density of a learned
                       codec's bottleneck): nne_trainer_config.entropy_lr_mult applies */
} nne_param;

/* All trainable tensors of a graph in one contiguous f32 buffer, and their gradients in a
 * second one of the same layout, so optimizers and clipping are single loops. Trainable:
 * every constant input of conv2d, conv_transpose2d, prelu, gdn, igdn nodes. Order: the
 * decayed tensors (conv weights, node order) first, then the others (node order, input
 * order), so elements [0, n_decay) get weight decay and [n_decay, total) do not. */
typedef struct nne_params {
    nne_param *items; /* [n] */
    int32_t n;
    size_t total;   /* elements */
    size_t n_decay; /* elements [0, n_decay) are decayed */
    float *data;    /* [total], 64-byte aligned */
    float *grad;    /* [total], 64-byte aligned */
    /* Pruning mask [total] (nne_prune_masks_update), NULL = none: elements with keep 0 are
     * held at exactly 0 by the trainer (their gradient is zeroed before clipping and the
     * value after every update, with the GDN projection). */
    uint8_t *keep;
} nne_params;

/* Register the trainable constants of an inferred f32 graph and copy their values in. */
nne_status nne_params_create(const nne_graph *g, nne_params **out);
void nne_params_free(nne_params *p);
void nne_params_zero_grad(nne_params *p);
/* Copy values graph -> arena (load) or arena -> graph constants (store). */
void nne_params_load(nne_params *p, const nne_graph *g);
void nne_params_store(const nne_params *p, nne_graph *g);
/* Index of the item for graph tensor `tensor`, or -1. */
int32_t nne_params_find(const nne_params *p, int32_t tensor);

/* ==== Optimizers ===================================================================== */

typedef enum nne_optim_kind { NNE_OPTIM_SGD = 0, NNE_OPTIM_ADAM = 1 } nne_optim_kind;

/* Hyper-parameters. Weight decay is decoupled (AdamW, Loshchilov & Hutter 2019), applied
 * before the gradient update: p -= lr * weight_decay * p, for elements [0, n_decay) only.
 *   Adam:  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  t += 1
 *          p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (PyTorch's order)
 *   SGD:   buf = momentum * buf + g  (buf starts at 0);  p -= lr * buf
 * With weight_decay = 0 these equal torch.optim.Adam and torch.optim.SGD(momentum). */
typedef struct nne_optim_config {
    nne_optim_kind kind;
    double beta1, beta2, eps; /* Adam: 0.9, 0.999, 1e-8 (double, as PyTorch's Python floats) */
    float momentum;           /* SGD: 0 = plain SGD */
    float weight_decay;       /* decoupled, 0 = none */
    float clip_norm;          /* global gradient L2 norm limit; 0 = no clipping */
} nne_optim_config;
/* Adam defaults (0.9, 0.999, 1e-8), no decay, no clipping. */
nne_optim_config nne_optim_config_adam(void);
nne_optim_config nne_optim_config_sgd(float momentum);

typedef struct nne_optim {
    nne_optim_config cfg;
    size_t n;
    int64_t t; /* updates done */
    float *m;  /* [n] Adam first moment / SGD momentum buffer */
    float *v;  /* [n] Adam second moment (NULL for SGD) */
} nne_optim;

nne_status nne_optim_create(const nne_optim_config *cfg, size_t n, nne_optim **out);
void nne_optim_free(nne_optim *o);
/* One update of p[0, n) with gradient g at learning rate lr; elements [0, n_decay) get
 * weight decay. */
void nne_optim_step(nne_optim *o, float *p, const float *g, size_t n_decay, float lr);
/* The same with a per-element learning-rate factor: element i updates at lr * lr_scale[i]
 * (weight decay too). lr_scale NULL is nne_optim_step, bit for bit. */
void nne_optim_step_scaled(nne_optim *o, float *p, const float *g, size_t n_decay, float lr,
                           const float *lr_scale);

/* Global L2 norm of g[0, n) (summed in double). If max_norm > 0 and the norm exceeds it,
 * g is scaled by max_norm / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_). Returns the
 * norm before clipping. */
double nne_clip_grad_norm(float *g, size_t n, double max_norm);

/* ==== Learning-rate schedules ======================================================== */

typedef enum nne_lr_kind {
    NNE_LR_CONSTANT = 0,
    NNE_LR_STEP = 1,   /* lr * gamma^floor(s / step_size) */
    NNE_LR_COSINE = 2, /* min_lr + (lr - min_lr) (1 + cos(pi min(s, T) / T)) / 2 */
} nne_lr_kind;

/* `step` is the 0-based index of the update about to be made. With warm-up, steps
 * [0, warmup) use lr * (step + 1) / warmup, and the schedule's own clock is
 * s = step - warmup afterwards; T = total_steps - warmup (cosine). */
typedef struct nne_lr_schedule {
    nne_lr_kind kind;
    float lr;            /* base learning rate */
    int64_t warmup;      /* linear warm-up steps, 0 = none */
    int64_t step_size;   /* NNE_LR_STEP: decay every step_size steps (>= 1) */
    float gamma;         /* NNE_LR_STEP factor */
    int64_t total_steps; /* NNE_LR_COSINE: end of the cosine (> warmup) */
    float min_lr;        /* NNE_LR_COSINE floor */
} nne_lr_schedule;
float nne_lr_at(const nne_lr_schedule *s, int64_t step);

/* ==== Graph-level trainer ============================================================ */

/* NNE_LOSS_RD (rate-distortion, Balle et al. 2018): the graph's output 0 is the
 * reconstruction and outputs 1.. are likelihood tensors (factorized/gaussian likelihood
 * nodes). L = lambda * 255^2 * MSE(output 0, target) + bpp, with
 * bpp = sum over the likelihood outputs of -log2(P) / (N * H * W) of output 0. In training
 * steps quantize nodes add uniform noise (or round, NNE_QUANTIZE_STE); in
 * nne_trainer_eval they round, so the eval loss uses the rate of the real symbols. */
typedef enum nne_loss_kind {
    NNE_LOSS_MSE = 0,
    NNE_LOSS_MS_SSIM = 1,
    NNE_LOSS_RD = 2,
} nne_loss_kind;

typedef struct nne_trainer_config {
    nne_optim_config optim;
    nne_lr_schedule lr;
    nne_loss_kind loss;
    int32_t ms_ssim_scales; /* NNE_LOSS_MS_SSIM: 0 = automatic (nne_ms_ssim_loss) */
    /* Threads: 0 = the process-wide pool (nne_threadpool_default(): NNEDGE_THREADS or the
     * number of CPUs), n >= 1 = a pool of n threads owned by the trainer. Results are
     * bitwise identical for every thread count (docs/training.md). */
    int32_t threads;
    float rd_lambda;     /* NNE_LOSS_RD: lambda (> 0), e.g. 0.0018 .. 0.0932 (CompressAI) */
    /* Learning-rate factor of the entropy models' parameters (nne_param.entropy: the
     * factorized densities), in [0, 1e4]; 0 and 1 = the base rate. A fresh bottleneck on
     * trained transforms (a factorized codec started from another kind's g_a/g_s) must move
     * its density parameters by units, which Adam at a fine-tuning rate of 1e-4 does in
     * ~10^4 steps (docs/training.md, "Entropy learning rate"). Checkpointed by the caller. */
    float entropy_lr_mult;
    /* Mixed precision: the convolutions' GEMMs (forward, input and weight gradients) read
     * their operands rounded to bf16 and sum in f32 (NNE_GEMM_BF16, gemm.h; AMX tiles where
     * the CPU has them). Weights, activations, gradients and the optimizer stay f32. Results
     * still do not depend on the thread count, but do on the path (nne_gemm_bf16_path).
     * Training steps only: nne_trainer_eval runs f32 GEMMs (the model as it will be used).
     * Checkpointed by the caller. */
    bool bf16_matmul;
    uint64_t noise_seed; /* NNE_LOSS_RD: quantization noise of update `step` is drawn from a
                            generator seeded by (noise_seed, step, node), so resuming at a
                            step replays the same noise */
    /* NNE_LOSS_MSE / NNE_LOSS_MS_SSIM (and distillation): the last loss_border_bottom rows
     * and loss_border_right columns of the output are left out of the loss, which is then the
     * loss of the output cropped to its top-left (H - bottom) x (W - right), with a zero
     * gradient on the border. For outputs a model cannot reconstruct, e.g. cae-seed's
     * (nne_cae_seed_border, docs/models.md "The border"). 0 = the whole output; not stored in
     * checkpoints (the caller derives it from the model). */
    int32_t loss_border_bottom, loss_border_right;
    /* Gradients for something other than the weights (encoder-side latent refinement of a
     * learned codec, docs/codec.md "Latent refinement"): with input_grad, nne_trainer_grad
     * also leaves dL/d(graph input) in nne_trainer_input_grad; with frozen, the
     * convolutions skip their weight and bias gradients (a third of their backward), and
     * the parameter gradients are then incomplete: for gradients that flow to the input
     * only, never with nne_trainer_step. Neither is stored in checkpoints. */
    bool input_grad;
    bool frozen;
} nne_trainer_config;

typedef struct nne_train_stats {
    double loss;      /* before the update */
    double grad_norm; /* global gradient norm before clipping */
    float lr;         /* learning rate used */
    int64_t step;     /* updates done after this one */
    double mse;       /* NNE_LOSS_RD: the distortion term's MSE (images in [0, 1]) */
    double bpp;       /* NNE_LOSS_RD: the rate term, bits per pixel */
} nne_train_stats;

typedef struct nne_trainer nne_trainer;

/* A trainer for an inferred f32 graph with one input and one output made of conv2d,
 * conv_transpose2d, prelu, relu, gdn, igdn and add nodes; the batch is dim 0 of the input
 * (nne_graph_set_input_shape + nne_graph_infer to change it). Copies the graph's current
 * constants into its parameter arena (call nne_train_init_params first for a fresh model),
 * allocates every activation, every activation gradient, the scratch and the optimizer
 * state once. The graph must outlive the trainer and not be modified while it exists;
 * its constants are only written by nne_trainer_store. Deterministic: the same graph,
 * config and data give bit-identical results, for any config.threads (the convolutions run
 * nne_conv*_gemm, the element-wise layers split over fixed pixel ranges). */
nne_status nne_trainer_create(nne_graph *g, const nne_trainer_config *cfg, nne_trainer **out);
void nne_trainer_free(nne_trainer *t);

/* After every update the trainer projects GDN/IGDN parameters back into their domain:
 * beta >= NNE_GDN_BETA_MIN, gamma >= 0 (docs/training.md). */
#define NNE_GDN_BETA_MIN 1e-6f

/* One step: forward on `input` (the graph input's shape), loss against `target` (the
 * output's shape), backward, gradient clipping, optimizer update. stats may be NULL. */
nne_status nne_trainer_step(nne_trainer *t, const float *input, const float *target,
                            nne_train_stats *stats);
/* Forward, loss and backward without an update: nne_trainer_params(t)->grad holds the
 * (unclipped) gradient afterwards. For gradient checks and gradient accumulation. */
nne_status nne_trainer_grad(nne_trainer *t, const float *input, const float *target, double *loss);
/* Forward and loss only (validation); the parameters are not changed. */
nne_status nne_trainer_eval(nne_trainer *t, const float *input, const float *target, double *loss);
/* dL/d(graph input) of the last nne_trainer_grad [input shape]; NULL unless the trainer
 * was created with config.input_grad. Valid until the next forward/backward pass. */
const float *nne_trainer_input_grad(const nne_trainer *t);
/* The MSE and bpp of the last loss computed with NNE_LOSS_RD (both 0 for other losses). */
void nne_trainer_last_rd(const nne_trainer *t, double *mse, double *bpp);
/* The output of the last forward pass [graph output shape]. */
const float *nne_trainer_output(const nne_trainer *t);
/* Parameters and gradients; after a step the gradient buffer holds the (clipped) gradient
 * that the update used. */
nne_params *nne_trainer_params(nne_trainer *t);
int64_t nne_trainer_steps(const nne_trainer *t);
/* Set the update counter: the index the next nne_trainer_step uses, and the one whose
 * quantization noise nne_trainer_grad draws (NNE_LOSS_RD with NNE_QUANTIZE_NOISE). */
void nne_trainer_set_steps(nne_trainer *t, int64_t step);
/* tau > 0: training passes (nne_trainer_grad / _step) make every quantize node an SGA soft
 * rounding at temperature tau (nne_quantize_sga_forward, noise from the step as for
 * NNE_QUANTIZE_NOISE) instead of its train_mode; 0 (the default): off. For latent
 * refinement with an annealed temperature; nne_trainer_eval still rounds. */
void nne_trainer_set_sga(nne_trainer *t, float tau);
/* Write the trained parameters back into the graph's constants. */
void nne_trainer_store(const nne_trainer *t);

/* Time accounting (bench/bench_train --profile): while set, every forward and backward pass
 * adds the wall time of graph node i to fwd_ns[i] / bwd_ns[i] ([n_nodes] each, caller-owned,
 * not cleared), the loss (and its gradient) to loss_ns, the clearing of gradients to
 * zero_ns, clipping + optimizer update + projection to update_ns. NULL turns it off. The
 * clock is read between nodes only, so the results do not change. */
typedef struct nne_train_profile {
    uint64_t *fwd_ns, *bwd_ns;
    uint64_t loss_ns, zero_ns, update_ns;
} nne_train_profile;
void nne_trainer_set_profile(nne_trainer *t, nne_train_profile *prof);

/* ==== Magnitude pruning (src/train/prune_mask.c, docs/pruning.md) ==================== */

/* Gradual pruning (Zhu & Gupta 2017, "To prune, or not to prune"): the masks are updated at
 * steps t = t0 + k dt, k = 0..n, to the sparsity
 *     s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3      (s_t = s_f when n = 0)
 * and stay fixed in between and after the last update. `step` is the 0-based index of the
 * update about to be made (as nne_lr_at): the masks of an update step are applied before
 * that step's forward pass. */
typedef struct nne_prune_schedule {
    double initial; /* s_i in [0, 1) */
    double final;   /* s_f in [initial, 1) */
    int64_t begin;  /* t0 >= 0 */
    int64_t every;  /* dt >= 1 */
    int64_t count;  /* n >= 0: the last update is at t0 + n dt */
} nne_prune_schedule;

/* NNE_ERR_INVALID_ARG naming the field out of range. */
nne_status nne_prune_schedule_check(const nne_prune_schedule *s);
/* Is `step` a mask update? */
bool nne_prune_schedule_is_update(const nne_prune_schedule *s, int64_t step);
/* The sparsity in force at `step` (after that step's mask update, if any): 0 before t0,
 * then s_t of the last update at or before `step`. */
double nne_prune_schedule_sparsity(const nne_prune_schedule *s, int64_t step);

/* Update the masks of the weights of every conv2d / conv_transpose2d node of `g` (the graph
 * p was created from): in each weight tensor of N elements the round(sparsity * N) elements
 * of smallest magnitude are masked (ties: the lower index first), always including the ones
 * masked before (masks only grow), and set to 0. Other parameters (biases, slopes, GDN) are
 * never masked. Allocates p->keep (all 1) on first use. sparsity in [0, 1). */
nne_status nne_prune_masks_update(nne_params *p, const nne_graph *g, double sparsity);
/* v[i] = 0 where p->keep[i] == 0 (v: [p->total], the data or the gradient); no-op without
 * masks. */
void nne_prune_masks_apply(const nne_params *p, float *v);
/* Masked elements and maskable elements (the conv weights), for reports. */
void nne_prune_masks_count(const nne_params *p, const nne_graph *g, size_t *masked,
                           size_t *maskable);

/* ==== Checkpoints ===================================================================== */

/* A training checkpoint holds everything needed to continue a run exactly: the model (graph,
 * current weights, metadata) as an embedded .nne model file, the optimizer state (moments
 * and update count), the update index, the data position, the trainer configuration and the
 * application's own settings as key/value strings. Resuming after N steps and running M
 * more gives the same bits as N + M uninterrupted steps (same thread count). File format,
 * limits and reader behaviour: docs/training.md, "Checkpoint file". The reader treats its
 * input as hostile, like the model-file reader. */
#define NNE_CKPT_MAGIC     "NNEDGEK\0" /* 8 bytes */
#define NNE_CKPT_VERSION   1
#define NNE_CKPT_MAX_KV    1024      /* key/value entries */
#define NNE_CKPT_MAX_VALUE (1 << 16) /* bytes of one value (keys: NNE_MAX_NAME) */

typedef struct nne_checkpoint {
    nne_graph *model;          /* inferred f32 graph holding the current weights */
    nne_trainer_config config; /* optimizer hyper-parameters, schedule and loss */
    nne_optim *optim;          /* optimizer state; n = nne_params total of `model` */
    int64_t step;              /* updates done (the index of the next update) */
    uint64_t next_batch;       /* index of the next training batch (dataset.h) */
    uint64_t seed;             /* the run's seed (initialisation and data) */
    double elapsed_s;          /* training wall time so far, seconds */
    double best_val_loss;      /* lowest validation loss so far; NaN = none yet */
    double best_val_psnr;      /* validation PSNR at that point (dB); NaN = none */
    int64_t best_step;         /* step of the best validation; -1 = none */
    nne_meta *kv;              /* [n_kv] application settings (unique non-empty keys) */
    int32_t n_kv;
    uint8_t *mask; /* [optim->n] pruning mask (nne_params.keep: 0 = held at 0), NULL = none;
                      the masked parameters of `model` must be exactly 0 */
} nne_checkpoint;

/* Serialize (*out from nne_malloc, release with nne_free). The writers only read `c`: the
 * model must be inferred, all f32, and its trainable parameters must number exactly
 * c->optim->n (store the trainer's weights first: nne_trainer_store); c->optim->cfg must
 * equal c->config.optim. The encoding is canonical (same checkpoint, same bytes). */
nne_status nne_checkpoint_write_mem(const nne_checkpoint *c, uint8_t **out, size_t *out_size);
/* Write atomically (nne_file_write_atomic): `path` holds the previous checkpoint or the new
 * one, never a mixture. */
nne_status nne_checkpoint_write_file(const nne_checkpoint *c, const char *path);

/* Parse and validate. On success *c owns its model, optim and kv (nne_checkpoint_clear);
 * on failure *c is zeroed and nne_last_error() starts with "checkpoint: " (memory) or the
 * path (file). Errors: NNE_ERR_FORMAT, NNE_ERR_CHECKSUM, NNE_ERR_LIMIT, NNE_ERR_UNSUPPORTED,
 * NNE_ERR_NOMEM; for files also NNE_ERR_NOT_FOUND and NNE_ERR_IO. */
nne_status nne_checkpoint_read_mem(const uint8_t *buf, size_t size, nne_checkpoint *c);
nne_status nne_checkpoint_read_file(const char *path, nne_checkpoint *c);
/* Free the model, optimizer and key/values of a checkpoint that owns them, and zero it. */
void nne_checkpoint_clear(nne_checkpoint *c);
/* Value of key `key`, or NULL. */
const char *nne_checkpoint_get(const nne_checkpoint *c, const char *key);

/* One update exactly like nne_trainer_step (gradient, clipping with o->cfg.clip_norm,
 * lr = nne_lr_at(lr, step), nne_optim_step), but with the optimizer state `o` and the update
 * index `step` held by the caller, so that they can be checkpointed and restored. `o` must
 * have n = nne_trainer_params(t)->total. The trainer's own optimizer and step counter are
 * not used. stats->step is step + 1. */
nne_status nne_trainer_step_ext(nne_trainer *t, nne_optim *o, const nne_lr_schedule *lr,
                                int64_t step, const float *input, const float *target,
                                nne_train_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
