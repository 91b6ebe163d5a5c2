#!/bin/sh
# Train the shipped cae-seed model (issue 3): the paper's CAE with PReLU and MSE loss, on
# ../shared/data/train only, validated on ../shared/data/val, never on Kodak.
#
#   scripts/train_cae_seed.sh                  # start, or resume if a checkpoint exists
#   nohup scripts/train_cae_seed.sh >/dev/null 2>&1 &   # in the background; see the log
#   tail -f checkpoints/cae-seed/train.log
#
# Writes models/cae-seed.nne (the model, with train.* provenance), models/cae-seed.csv (the
# training and validation log), and keeps checkpoints/cae-seed/cae-seed.ckpt (every 10
# minutes, on Ctrl-C or SIGTERM) and checkpoints/cae-seed/cae-seed.best.nne (best validation
# loss) in the git-ignored checkpoints/ folder. Rerunning the script resumes where the last
# checkpoint left off, bit for bit. Stop a background run with `kill <pid>` (SIGTERM): it
# finishes its step and writes a checkpoint first.
#
# Environment: NNEDGE (the binary, default build/nnedge), DATA, VAL (the folders), EPOCHS
# (default 300: the paper's 50 epochs were over 1834 full 512x768 images, about 15 times the
# pixels of our 50 epochs of 729 256x256 crops), BATCH (8), CROP (256), THREADS (default: all CPUs), EXTRA (more
# options for nnedge train), COMMIT (train.commit; default: git HEAD of this repository).
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
DATA=${DATA:-../shared/data/train}
VAL=${VAL:-../shared/data/val}
EPOCHS=${EPOCHS:-300}
BATCH=${BATCH:-8}
CROP=${CROP:-256}
DIR=checkpoints/cae-seed
CKPT=$DIR/cae-seed.ckpt
LOG=$DIR/train.log
OUT=models/cae-seed.nne
CSV=models/cae-seed.csv

if [ ! -x "$NNEDGE" ]; then
    echo "train_cae_seed.sh: $NNEDGE not found; build first (cmake -S . -B build && cmake --build build -j)" >&2
    exit 1
fi
if [ -e "$OUT" ]; then
    echo "train_cae_seed.sh: $OUT exists; move it away to train again" >&2
    exit 1
fi
mkdir -p "$DIR" models
THREADS_OPT=""
[ -n "${THREADS:-}" ] && THREADS_OPT="--threads $THREADS"

if [ -f "$CKPT" ]; then
    echo "$(date -u +%FT%TZ) resuming from $CKPT" >>"$LOG"
    # shellcheck disable=SC2086
    # Paths are given again (relative to the repository) so that a checkpoint made in another
    # checkout or on another machine writes here, not to the folders it recorded.
    set -- train --resume "$CKPT" --data "$DATA" --val "$VAL" -o "$OUT" --log "$CSV" \
        $THREADS_OPT --commit "$COMMIT" ${EXTRA:-}
else
    echo "$(date -u +%FT%TZ) starting" >>"$LOG"
    # shellcheck disable=SC2086
    set -- train --model cae-seed --data "$DATA" --val "$VAL" -o "$OUT" --log "$CSV" \
        --checkpoint "$CKPT" --epochs "$EPOCHS" --batch "$BATCH" --crop "$CROP" \
        --optimizer adam --lr 2e-3 --warmup 200 --lr-schedule cosine --loss mse --seed 1 \
        --val-every 1000 --checkpoint-minutes 5 $THREADS_OPT --commit "$COMMIT" ${EXTRA:-}
fi
echo "$(date -u +%FT%TZ) $NNEDGE $*" >>"$LOG"
rc=0
"$NNEDGE" "$@" >>"$LOG" 2>&1 </dev/null || rc=$?
echo "$(date -u +%FT%TZ) exit $rc" >>"$LOG"
case $rc in
0) [ -e "$OUT" ] && echo "train_cae_seed.sh: done: $OUT, $CSV" >&2 ||
       echo "train_cae_seed.sh: paused; rerun to continue" >&2 ;;
130 | 143) echo "train_cae_seed.sh: interrupted; rerun to resume from $CKPT" >&2 ;;
*) echo "train_cae_seed.sh: failed (exit $rc); see $LOG" >&2 ;;
esac
exit $rc
