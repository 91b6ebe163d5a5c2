#!/bin/sh
# Train a learned-codec quality ladder (issue 4): one high-rate model, then fine-tunes of it to
# the lower rates, each written as a registry model models/<KIND>-q<N>.nne (docs/codec.md,
# "Model registry"; docs/training.md, "A learned-codec ladder"). Training data
# ../shared/data/train only, validation ../shared/data/val, never Kodak.
#
#   scripts/train_rd.sh                       # start, or resume the stage in progress
#   DRY_RUN=1 scripts/train_rd.sh             # print the commands, run nothing
#   nohup scripts/train_rd.sh >/dev/null 2>&1 &   # in the background; see the log
#   tail -f checkpoints/<KIND>/train.log
#
# Stages, in order (a stage whose model exists is skipped, so rerunning continues the ladder):
#   q7  lambda 0.0932, BASE_STEPS steps from scratch       -> models/<KIND>-q7.nne
#   q6 .. q1  lambdas 0.0483 0.025 0.013 0.0067 0.0035 0.0018 (CompressAI's, quality 6..1),
#       FT_STEPS steps each, initialised (--init) from the rung before it (CHAIN=1, the
#       default), or all from q7 (CHAIN=0)               -> models/<KIND>-q<N>.nne
# Why chained: fine-tunes of 2000 steps at lr 1e-4 straight from q7 moved the rate only 11%
# (q6) and 24% (q5) below q7's (models/README.md); each chained step is one lambda halving.
# Each stage keeps checkpoints/<KIND>/q<N>.ckpt (every CKPT_MINUTES, on Ctrl-C or SIGTERM) and
# its best-validation model beside it, and logs models/<KIND>-q<N>.csv (step, loss, val PSNR,
# val bpp). An interrupted stage resumes bit for bit from its checkpoint. Stop a background run
# with `kill <pid>` (SIGTERM): the trainer finishes its step and writes a checkpoint first.
#
# Cost (docs/training.md, "A learned-codec ladder"; docs/perf-train.md, "Learned codecs"): about
# 1.3 s per step at the defaults (mbt2018-mean 64,96, batch 8 of 256x256), measured with another
# training job on one of the 2 cores, so the default ladder of 44,000 steps is ~16 h (~9 h
# estimated with both cores free); 128,192 costs ~3.5x per step. On a shared machine
# THREADS=1 is as fast as 2.
#
# Environment: NNEDGE (default build/nnedge), KIND (mbt2018-mean; or bmshj2018-hyperprior,
# bmshj2018-factorized), CHANNELS (N,M; default 64,96), DATA, VAL, BASE_STEPS (default 20000),
# FT_STEPS (default 4000), BASE_LR (5e-4), FT_LR (1e-4), CLIP (gradient-norm limit, 1.0 as
# CompressAI's clip_max_norm: without it a q7 run at step ~3400 had one batch whose loss reached
# ~1e11 and wrecked Adam's second moments), BATCH (8), CROP (256), THREADS
# (default: all CPUs), CKPT_MINUTES (10), CHAIN (1: each fine-tune starts from the previous
# rung's shipped model; 0: every fine-tune starts from the first rung), INIT_KIND (another kind
# whose ladder is trained, e.g. mbt2018-mean for KIND=bmshj2018-factorized: then every stage,
# the first too, starts from models/<INIT_KIND>-q<N>.nne of its own quality with --init
# --init-partial, the transforms of that rung and a fresh entropy model, for FT_STEPS at FT_LR;
# CHAIN and BASE_INIT do not apply), LADDER ("7:0.0932 6:0.0483 ... 1:0.0018": quality:
# lambda pairs, the first one trained from scratch, the rest fine-tuned from it), EXTRA (more
# options for nnedge train, e.g. --stop-after 500 to train in time slices, or --matmul bf16:
# mixed precision, 1.74x per step on an AMX CPU, docs/training.md "Mixed precision"; the
# 64,192 q1..q5 were trained so, about 0.7 s per step on 2 threads), BASE_INIT (a model
# of another kind to start the first stage from with --init --init-partial: the tensors of the
# same name and shape, e.g. g_a/g_s of models/mbt2018-mean-q7.nne for the factorized ladder;
# the rest from the seed), QUANT_PROXY (noise, the default, or mixed: nnedge train --quant-proxy,
# for the stages it starts, and a resumed noise stage switches to mixed from its checkpoint's
# step: docs/training.md, "Switching on resume"; noise never switches a stage back), STORE
# (f16, the default: each finished stage's model is rewritten with its weights rounded to fp16
# and stored as f16, half the size, by nnedge quantize --fake --scheme fp16, the trainer's f32
# file kept as checkpoints/<KIND>/q<N>.f32.nne; f32 ships the trainer's file), COMMIT
# (train.commit; default: git HEAD of this repository), DRY_RUN.
set -eu
cd "$(dirname "$0")/.."
NNEDGE=${NNEDGE:-build/nnedge}
# The source revision recorded as train.commit: the repository's HEAD (-dirty when tracked
# files differ), passed explicitly because NNEDGE may be a copy outside the repository (so
# that a rebuild cannot replace the running binary), where the trainer cannot find git.
if [ -z "${COMMIT:-}" ]; then
    COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    [ "$COMMIT" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null && COMMIT=$COMMIT-dirty
fi
KIND=${KIND:-mbt2018-mean}
CHANNELS=${CHANNELS:-64,96}
DATA=${DATA:-../shared/data/train}
VAL=${VAL:-../shared/data/val}
BASE_STEPS=${BASE_STEPS:-20000}
FT_STEPS=${FT_STEPS:-4000}
BASE_LR=${BASE_LR:-5e-4}
CLIP=${CLIP:-1.0}
QUANT_PROXY=${QUANT_PROXY:-noise}
case $QUANT_PROXY in noise) QP_OPT= ;; mixed) QP_OPT="--quant-proxy mixed" ;; *) echo "QUANT_PROXY=$QUANT_PROXY: noise or mixed" >&2; exit 2 ;; esac
FT_LR=${FT_LR:-1e-4}
ENTROPY_LR_MULT=${ENTROPY_LR_MULT:-}
BATCH=${BATCH:-8}
CROP=${CROP:-256}
CKPT_MINUTES=${CKPT_MINUTES:-10}
LADDER=${LADDER:-"7:0.0932 6:0.0483 5:0.025 4:0.013 3:0.0067 2:0.0035 1:0.0018"}
BASE_INIT=${BASE_INIT:-}
STORE=${STORE:-f16}
CHAIN=${CHAIN:-1}
INIT_KIND=${INIT_KIND:-}
case $CHAIN in 0 | 1) ;; *) echo "CHAIN=$CHAIN: 0 or 1" >&2; exit 2 ;; esac
case $STORE in f16 | f32) ;; *) echo "STORE=$STORE: f16 or f32" >&2; exit 2 ;; esac
DRY_RUN=${DRY_RUN:-}
DIR=checkpoints/$KIND
LOG=$DIR/train.log

if [ -z "$DRY_RUN" ] && [ ! -x "$NNEDGE" ]; then
    echo "train_rd.sh: $NNEDGE not found; build first (cmake -S . -B build && cmake --build build -j)" >&2
    exit 1
fi
[ -z "$DRY_RUN" ] && mkdir -p "$DIR" models
THREADS_OPT=""
[ -n "${THREADS:-}" ] && THREADS_OPT="--threads $THREADS"

log() { [ -n "$DRY_RUN" ] && echo "$*" || echo "$(date -u +%FT%TZ) $*" >>"$LOG"; }

# stage QUALITY LAMBDA STEPS LR INIT [PARTIAL]: train models/<KIND>-q<QUALITY>.nne (INIT: a
# model file to start from, or empty; PARTIAL non-empty: --init-partial). Returns the
# trainer's exit code (0: done or already there).
stage() {
    q=$1 lambda=$2 steps=$3 lr=$4 init=$5 partial=${6:-}
    out=models/$KIND-q$q.nne
    csv=models/$KIND-q$q.csv
    ckpt=$DIR/q$q.ckpt
    if [ -e "$out" ]; then
        log "q$q: $out exists, skipped"
        return 0
    fi
    if [ -f "$ckpt" ]; then
        log "q$q: resuming from $ckpt"
        # Paths again (relative to the repository), so that a checkpoint made in another
        # checkout writes here, not to the folders it recorded.
        # shellcheck disable=SC2086
        set -- train --resume "$ckpt" --data "$DATA" --val "$VAL" -o "$out" --log "$csv" \
            $QP_OPT $THREADS_OPT --commit "$COMMIT" ${EXTRA:-}
    else
        log "q$q: starting (lambda $lambda, $steps steps${init:+, from $init})"
        # shellcheck disable=SC2086
        set -- train --model "$KIND" --channels "$CHANNELS" --lambda "$lambda" \
            --data "$DATA" --val "$VAL" -o "$out" --log "$csv" --checkpoint "$ckpt" \
            --steps "$steps" --batch "$BATCH" --crop "$CROP" --optimizer adam --lr "$lr" \
            --lr-schedule cosine --loss rd --seed 1 --val-every 1000 --clip "$CLIP" \
            --checkpoint-minutes "$CKPT_MINUTES" ${init:+--init "$init"} \
            ${partial:+--init-partial} ${ENTROPY_LR_MULT:+--entropy-lr-mult "$ENTROPY_LR_MULT"} $QP_OPT $THREADS_OPT --commit "$COMMIT" ${EXTRA:-}
    fi
    log "$NNEDGE $*"
    [ -n "$DRY_RUN" ] && return 0
    rc=0
    "$NNEDGE" "$@" >>"$LOG" 2>&1 </dev/null || rc=$?
    log "q$q: exit $rc"
    # The shipped model: its weights rounded to fp16 and stored so (half the file; read back
    # as f32, exactly: docs/model-format.md, "Data"); the next stages start from it. The
    # trainer's f32 file stays beside the checkpoint as q<N>.f32.nne (the fp32 reference of
    # scripts/quant_results.sh --codec).
    if [ $rc -eq 0 ] && [ -e "$out" ] && [ "$STORE" = f16 ]; then
        cp "$out" "$DIR/q$q.f32.nne" &&
            "$NNEDGE" quantize "$out" --fake --scheme fp16 -q -o "$out.f16.tmp" >>"$LOG" 2>&1 &&
            mv "$out.f16.tmp" "$out" || rc=$?
        log "q$q: $out stored in f16, the f32 model kept as $DIR/q$q.f32.nne (exit $rc)"
    fi
    return $rc
}

base=""
for pair in $LADDER; do
    q=${pair%%:*}
    lambda=${pair#*:}
    rc=0
    if [ -n "$INIT_KIND" ]; then
        src=models/$INIT_KIND-q$q.nne
        if [ -z "$DRY_RUN" ] && [ ! -e "$src" ] && [ ! -e "models/$KIND-q$q.nne" ]; then
            echo "train_rd.sh: INIT_KIND=$INIT_KIND: $src not found" >&2
            exit 1
        fi
        stage "$q" "$lambda" "$FT_STEPS" "$FT_LR" "$src" partial || rc=$?
    elif [ -z "$base" ]; then
        stage "$q" "$lambda" "$BASE_STEPS" "$BASE_LR" "$BASE_INIT" "$BASE_INIT" || rc=$?
        base=models/$KIND-q$q.nne
    else
        stage "$q" "$lambda" "$FT_STEPS" "$FT_LR" "$base" || rc=$?
        [ "$CHAIN" = 1 ] && base=models/$KIND-q$q.nne
    fi
    case $rc in
    0)
        if [ -z "$DRY_RUN" ] && [ ! -e "models/$KIND-q$q.nne" ]; then
            echo "train_rd.sh: q$q paused (--stop-after); rerun to continue" >&2
            exit 0
        fi
        ;;
    130 | 143)
        echo "train_rd.sh: interrupted in q$q; rerun to resume from $DIR/q$q.ckpt" >&2
        exit $rc
        ;;
    *)
        echo "train_rd.sh: q$q failed (exit $rc); see $LOG" >&2
        exit $rc
        ;;
    esac
done
[ -z "$DRY_RUN" ] && echo "train_rd.sh: done: models/$KIND-q*.nne; compare with" \
    "nnedge rd ../shared/data/kodak --codecs jpeg,webp,jp2,avif,jxl,nnedge:$KIND" >&2
exit 0
