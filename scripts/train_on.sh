#!/usr/bin/env bash
# Train a shipped learned-codec ladder on (issue 4): every rung continues from itself at its
# own lambda and channel counts with a fresh cosine cycle, the recipe of models/README.md
# ("Trained on"), several rungs at a time with one thread each, and a rung's shipped model is
# replaced only if its validation loss went down. Training data ../shared/data/train only,
# validation ../shared/data/val, never Kodak.
#
#   scripts/train_on.sh                     # every rung of models/<KIND>-q*.nne, STEPS each
#   scripts/train_on.sh 5 6 7:3000 8:3000   # rungs 5..8; 7 and 8 for 3000 steps
#   DRY_RUN=1 scripts/train_on.sh 7         # print the commands, run nothing
#   nohup scripts/train_on.sh 7 8 >/dev/null 2>&1 &   # in the background; log: WORK/train.log
#
# Each rung N works in WORK: qN.init.nne (the shipped model it started from), qN.ckpt (every
# CKPT_MINUTES, on Ctrl-C or SIGTERM), qN.csv (the log), qN.out (the trainer's output) and
# qN.nne (the trained f32 model). Rerunning resumes: a rung with a checkpoint continues from
# it bit for bit, a finished rung is not trained again, a rung with a log but no checkpoint
# (its run died before writing one) starts over, its log moved to qN.csv.orphan. One instance
# at a time per WORK (WORK/lock); stop it with Ctrl-C or `kill` of the script's process. When every requested rung has
# finished, each one whose last validation loss is below the last one in the shipped log
# (MODELS/<KIND>-qN.csv) is stored in f16 (nnedge quantize --fake --scheme fp16, as
# scripts/train_rd.sh does) and replaces MODELS/<KIND>-qN.nne, its log replacing the .csv;
# WORK/summary.txt lists old and new losses. The commit, the Kodak rerun (nnedge rd) and
# models/README.md stay with you.
#
# Why several runs of one thread: on the 2-core machine four 1-thread runs trained 15.8 crops
# per second in all, two 2-thread runs 14.0 (models/README.md, "Trained on").
#
# Environment: NNEDGE (default build/nnedge; a copy outside the repository keeps a rebuild
# from replacing the running binary), KIND (mbt2018-mean), MODELS (models), WORK
# (checkpoints/<KIND>-train-on), DATA (../shared/data/train), VAL (../shared/data/val),
# STEPS (1500, per rung unless given as N:STEPS), LR (2e-4), WARMUP (30), SEED (7), BATCH (8),
# CROP (256), CLIP (1.0), QUANT_PROXY (mixed), MATMUL (auto: bf16 where AMX runs it, else f32; or f32, bf16), VAL_EVERY (500),
# CKPT_MINUTES (10), JOBS (rungs at a time; default twice the CPU count), THREADS (per run,
# 1), SHIP (1; 0 trains and reports without replacing), EXTRA (more nnedge train options),
# COMMIT (train.commit; default git HEAD of this repository), DRY_RUN. Relative paths are
# taken from the repository root, where the script runs.
set -euo pipefail
cd "$(dirname "$0")/.."
NNEDGE=${NNEDGE:-build/nnedge}
KIND=${KIND:-mbt2018-mean}
MODELS=${MODELS:-models}
WORK=${WORK:-checkpoints/$KIND-train-on}
DATA=${DATA:-../shared/data/train}
VAL=${VAL:-../shared/data/val}
STEPS=${STEPS:-1500}
LR=${LR:-2e-4}
WARMUP=${WARMUP:-30}
SEED=${SEED:-7}
BATCH=${BATCH:-8}
CROP=${CROP:-256}
CLIP=${CLIP:-1.0}
QUANT_PROXY=${QUANT_PROXY:-mixed}
MATMUL=${MATMUL:-auto}
VAL_EVERY=${VAL_EVERY:-500}
CKPT_MINUTES=${CKPT_MINUTES:-10}
THREADS=${THREADS:-1}
SHIP=${SHIP:-1}
DRY_RUN=${DRY_RUN:-}
if [ -z "${JOBS:-}" ]; then
    JOBS=$(($(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) * 2))
fi
if [ -z "${COMMIT:-}" ]; then
    COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    [ "$COMMIT" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null && COMMIT=$COMMIT-dirty
fi

die() {
    echo "train_on.sh: $*" >&2
    exit 2
}
case $QUANT_PROXY in noise | mixed) ;; *) die "QUANT_PROXY=$QUANT_PROXY: noise or mixed" ;; esac
case $MATMUL in f32 | bf16 | auto) ;; *) die "MATMUL=$MATMUL: f32, bf16 or auto" ;; esac
case $SHIP in 0 | 1) ;; *) die "SHIP=$SHIP: 0 or 1" ;; esac
for v in STEPS JOBS THREADS; do
    case ${!v} in '' | *[!0-9]* | 0) die "$v=${!v}: a positive integer" ;; esac
done
if [ ! -x "$NNEDGE" ]; then
    echo "train_on.sh: $NNEDGE not found; build first (make build)" >&2
    exit 1
fi

# The rungs: arguments N or N:STEPS, else every MODELS/<KIND>-q<N>.nne.
rungs=()
steps_of=()
if [ $# -eq 0 ]; then
    for f in "$MODELS/$KIND"-q*.nne; do
        [ -e "$f" ] || die "no $MODELS/$KIND-q*.nne to train on"
        q=${f##*-q}
        q=${q%.nne}
        case $q in *[!0-9]*) continue ;; esac
        set -- "$@" "$q"
    done
fi
for a in "$@"; do
    q=${a%%:*}
    s=$STEPS
    [ "$a" != "$q" ] && s=${a#*:}
    case $q in '' | *[!0-9]*) die "rung '$a': N or N:STEPS" ;; esac
    case $s in '' | *[!0-9]* | 0) die "rung '$a': STEPS must be a positive integer" ;; esac
    [ -e "$MODELS/$KIND-q$q.nne" ] || die "$MODELS/$KIND-q$q.nne not found"
    rungs+=("$q")
    steps_of+=("$s")
done

if [ -z "$DRY_RUN" ]; then
    mkdir -p "$WORK"
    # One instance per work folder: a second would start the same runs on the same files.
    exec 9>"$WORK/lock"
    flock -n 9 || die "another train_on.sh is running in $WORK (it holds $WORK/lock)"
fi
LOG=$WORK/train.log
log() { if [ -n "$DRY_RUN" ]; then echo "$*"; else echo "$(date -u +%FT%TZ) $*" >>"$LOG"; fi; }

# meta FILE KEY: a metadata value of a model (nnedge info's "  KEY: VALUE" lines).
meta() { "$NNEDGE" info "$1" | sed -n "s/^  $2: //p" | head -n 1; }

# last_val CSV: the last validation loss of a training log (column val_loss), or empty.
last_val() { [ -f "$1" ] && awk -F, 'NR > 1 && $5 != "" { v = $5 } END { print v }' "$1"; }

# train_rung N STEPS: train WORK/qN.nne from MODELS/<KIND>-qN.nne (or resume it).
train_rung() {
    local q=$1 steps=$2 model=$MODELS/$KIND-q$1.nne out=$WORK/q$1.nne ckpt=$WORK/q$1.ckpt
    local args
    if [ -e "$out" ]; then
        log "q$q: $out exists, not trained again"
        return 0
    fi
    if [ ! -f "$ckpt" ] && [ -e "$WORK/q$q.csv" ]; then
        # A log but no checkpoint: an earlier run died before its first checkpoint (killed,
        # or the machine went away). Its steps are lost; keep its log aside and start over.
        mv -f "$WORK/q$q.csv" "$WORK/q$q.csv.orphan"
        log "q$q: $WORK/q$q.csv had no checkpoint (a run that died before its first one):" \
            "moved to q$q.csv.orphan, starting over"
    fi
    if [ -f "$ckpt" ]; then
        log "q$q: resuming from $ckpt"
        args=(train --resume "$ckpt" --data "$DATA" --val "$VAL" -o "$out" --log "$WORK/q$q.csv"
            --threads "$THREADS" --commit "$COMMIT")
    else
        local lambda n m
        lambda=$(meta "$model" train.lambda)
        n=$(meta "$model" model.N)
        m=$(meta "$model" model.M)
        if [ -z "$lambda" ] || [ -z "$n" ] || [ -z "$m" ]; then
            echo "train_on.sh: $model has no train.lambda / model.N / model.M" >&2
            return 1
        fi
        [ -z "$DRY_RUN" ] && cp "$model" "$WORK/q$q.init.nne"
        log "q$q: starting from $model (lambda $lambda, channels $n,$m, $steps steps)"
        args=(train --model "$KIND" --channels "$n,$m" --lambda "$lambda" --data "$DATA"
            --val "$VAL" --steps "$steps" --batch "$BATCH" --crop "$CROP" --lr "$LR"
            --lr-schedule cosine --warmup "$WARMUP" --loss rd --clip "$CLIP"
            --quant-proxy "$QUANT_PROXY" --matmul "$MATMUL" --seed "$SEED"
            --init "$WORK/q$q.init.nne" --val-every "$VAL_EVERY" --threads "$THREADS"
            --checkpoint "$ckpt" --checkpoint-minutes "$CKPT_MINUTES" --log "$WORK/q$q.csv"
            --commit "$COMMIT" -o "$out")
    fi
    # shellcheck disable=SC2206
    [ -n "${EXTRA:-}" ] && args+=($EXTRA)
    log "$NNEDGE ${args[*]}"
    [ -n "$DRY_RUN" ] && return 0
    local rc=0
    "$NNEDGE" "${args[@]}" >>"$WORK/q$q.out" 2>&1 </dev/null &
    echo $! >"$WORK/q$q.pid"
    wait $! || rc=$?
    rm -f "$WORK/q$q.pid"
    log "q$q: exit $rc"
    return $rc
}

# Ctrl-C or SIGTERM stops every run the way the trainer is meant to be stopped (SIGTERM: it
# finishes its step and writes its checkpoint), waits for them, and exits 130.
stop() {
    local p pid
    for p in "$WORK"/q*.pid; do [ -f "$p" ] && kill -TERM "$(cat "$p")" 2>/dev/null; done
    for p in "$WORK"/q*.pid; do
        [ -f "$p" ] || continue
        pid=$(cat "$p")
        while kill -0 "$pid" 2>/dev/null; do sleep 1; done
    done
    wait
    echo "train_on.sh: stopped; rerun to resume from the checkpoints in $WORK" >&2
    exit 130
}
trap stop INT TERM

failed=0
running=0
for i in "${!rungs[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    train_rung "${rungs[$i]}" "${steps_of[$i]}" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
[ -n "$DRY_RUN" ] && exit 0
if [ $failed -ne 0 ]; then
    echo "train_on.sh: a run failed or paused (see $LOG and $WORK/q*.out); rerun to resume" >&2
    exit 1
fi

# Every run finished: compare and replace.
{
    echo "rung old_val_loss new_val_loss replaced"
    for q in "${rungs[@]}"; do
        old=$(last_val "$MODELS/$KIND-q$q.csv")
        new=$(last_val "$WORK/q$q.csv")
        rep=no
        if [ -n "$new" ] && { [ -z "$old" ] || awk -v a="$new" -v b="$old" 'BEGIN { exit !(a < b) }'; }; then
            if [ "$SHIP" = 1 ]; then
                dst=$MODELS/$KIND-q$q.nne
                rm -f "$WORK/q$q.f16.nne"
                "$NNEDGE" quantize "$WORK/q$q.nne" --fake --scheme fp16 -q \
                    -o "$WORK/q$q.f16.nne" >>"$LOG" 2>&1
                cp "$WORK/q$q.f16.nne" "$dst.tmp" && mv "$dst.tmp" "$dst"
                cp "$WORK/q$q.csv" "$MODELS/$KIND-q$q.csv.tmp" &&
                    mv "$MODELS/$KIND-q$q.csv.tmp" "$MODELS/$KIND-q$q.csv"
                rep=yes
            else
                rep="no (SHIP=0)"
            fi
        fi
        echo "q$q ${old:--} ${new:--} $rep"
    done
} | tee "$WORK/summary.txt"
