#!/bin/sh
# The quantization and pruning results table of issue 5 (docs/quantization.md, "Results
# table"): one f32 model turned into every variant, each evaluated on a test folder with
# `nnedge eval`, then written as docs/results/quant-<NAME>.csv and .md, with QuTiBench's
# pruning x quantization orthogonality ratios (../shared/specs/qutibench.md, 2.4) in
# quant-<NAME>-qutibench.csv and in the .md.
#
#   scripts/quant_results.sh                          # models/cae-seed.nne on Kodak
#   scripts/quant_results.sh --model M.nne --qat-steps 500 --ft-steps 500
#   scripts/quant_results.sh --dry-run                # print the commands, run nothing
#   scripts/quant_results.sh --codec mbt2018-mean --models models   # a learned-codec ladder
#
# Rows (variants; every row's CSV field `command` is the chain of commands that made it):
#   fp32             the model itself (f32, cpu backend)
#   fp16             every constant rounded to fp16         nnedge quantize --fake --scheme fp16
#   int8-per-tensor  post-training int8, cpu-s8             nnedge quantize --scheme per-tensor
#   int8-per-channel                                       nnedge quantize --scheme per-channel
#   int8-pow2        the DPU's power-of-two scales          nnedge quantize --scheme pow2
#   int8-per-channel-w7  per-channel with 7-bit weights ([-64, 64]), which cpu-s8 runs with
#                    the faster vpmaddubsw kernels (docs/conv.md)   ... --weight-bits 7
#   int8-pow2-cle    pow2 after cross-layer equalization   ... --scheme pow2 --equalize
#                    (docs/quantization.md section 20: +0.24 dB on val for pow2; it costs
#                    per-tensor and per-channel 0.1-0.2 dB, so only pow2 gets a row)
#   int8-per-channel-acteq  per-channel after equalizing the calibrated activation ranges
#                    ... --scheme per-channel --equalize-act ACTEQ_ALPHA (section 20: +0.10 to
#                    +0.18 dB on val with the MSE observer)
#   int8-pow2-qat    QAT_STEPS of pow2 QAT, then quantized  nnedge train --init --qat pow2
#   int8-per-channel-qat      ... per-channel QAT            nnedge train --init --qat per-channel
#   int8-per-channel-w7-qat   ... per-channel QAT of 7-bit weights   ... --qat-weight-bits 7
#   int8-per-channel-acteq-qat  ... per-channel QAT from activation-equalized weights
#                                                        ... --qat-equalize-act ACTEQ_ALPHA
#                    (QAT's activation ranges: calibrated with QAT_OBSERVER, then fixed)
#   int4-weights     conv weights at 4 bits, f32 otherwise  nnedge quantize --fake --scheme int4
#   int2-weights     ... 2 bits (ternary)                   nnedge quantize --fake --scheme int2
#   pruned-oneshot   channel pruning at SPARSITY (per-layer sensitivity on CALIB), no
#                    fine-tune                             nnedge prune --method channel --calib
#   pruned           ... then FT_STEPS of fine-tuning       nnedge train --init
#   pruned-int8      pruned, quantized int8 per-channel     nnedge quantize --scheme per-channel
# QuTiBench: A = fp32, B = int8-per-channel, C = pruned, D = pruned-int8.
#
# Every step writes its output atomically and is skipped when the output exists, so the run
# can be stopped and restarted; a fine-tune resumes from its checkpoint (--stop-after N trains
# N steps per call, to slice a long run). Intermediate models and the per-variant eval reports
# go to WORK (default build/quant-results/NAME). Paths are relative to the repository root.
# The calibration and fine-tuning folders must not be Kodak (nnedge refuses them); the test
# folder is only evaluated.
#
# Options (defaults in brackets):
#   --model M.nne [models/cae-seed.nne]   --name NAME [M's file name without .nne]
#   --calib DIR [../shared/data/train]    calibration of the post-training quantization
#   --data DIR [../shared/data/train]     fine-tuning data (QAT, pruning)
#   --val DIR [none]                      validation during the fine-tunes
#   --test DIR [../shared/data/kodak]     evaluation
#   --work DIR [build/quant-results/NAME] --out DIR [docs/results]
#   --observer O [minmax]  --calib-images N [32]  --calib-crop N [128]   (nnedge quantize)
#   --acteq-alpha A [0.5]  the int8-per-channel-acteq row's --equalize-act
#   --qat-observer O [the --observer]     calibration of the QAT rows' ranges
#   --sparsity S [0.5]     --qat-steps N [2000]   --ft-steps N [2000]
#   --prune-uniform        prune every layer by SPARSITY (no sensitivity calibration)
#   --batch B [8]  --crop S [256]  --lr LR [1e-4; 2e-5 with --codec]  --threads T
#   --stop-after N         (nnedge train)
#   --train-opts 'OPTS'    more nnedge train options for every fine-tune (the QAT and pruned
#                          rows), split at spaces: '--matmul bf16',
#                          '--qat-lsq 10 --qat-output-range 0,1'
#   --rows LIST [all]      comma-separated row names to run (the table shows every row done)
#   --dry-run              print the commands only
#
# Learned codecs (--codec KIND, docs/quantization.md "Results table: learned codecs"): every
# rung KIND-q<N>.nne of the ladder in --models DIR [models] becomes the variants
#   fp32              the rung itself (the ladder DIR as it is)
#   fp16              every constant rounded to fp16        nnedge quantize --fake --scheme fp16
#   int8-per-tensor   int8 g_a and g_s (cpu-s8), hyperprior and entropy model f32
#   int8-per-channel                                       nnedge quantize --scheme per-channel
#   int8-pow2                                              nnedge quantize --scheme pow2
#   int8-per-channel-qat  QAT_STEPS of per-channel QAT of g_a and g_s at the rung's own
#                     lambda (train.lambda), from the rung        nnedge train --init --qat
#   int8-pow2-qat     ... pow2                                 nnedge train --init --qat pow2
#   pruned            FT_STEPS of fine-tuning at the rung's lambda with gradual magnitude
#                     pruning of every conv weight to SPARSITY     nnedge train --init
#                     --prune-schedule SPARSITY (docs/pruning.md, "Magnitude-pruned learned codecs")
#   pruned-int8       the pruned rung, int8 per-channel       nnedge quantize --scheme per-channel
# each a ladder folder WORK/<variant>; one `nnedge rd` run over TEST compares every ladder
# (`--codecs nnedge:KIND@fp32=MODELS,nnedge:KIND@fp16=WORK/fp16,...`, docs/rd.md "Several
# ladders of one kind"; report WORK/rd.*), and every variant's BD-rate against fp32 is nnedge
# rd's. It is rerun when the set of ladders changes; ladders made by earlier runs stay in it.
# Output: OUT/quant-NAME.csv and .md (NAME defaults to KIND), one row per variant and rung,
# and the BD-rate matrix of every variant against every other; OUT/quant-NAME-qutibench.csv
# with QuTiBench's ratios (A fp32, B int8-per-channel, C pruned, D pruned-int8) of the ops per
# pixel skipping zero weights, the sparse size, the PSNR per rung and its mean, the mean bpp
# and the rate at equal PSNR (1 + BD-rate / 100 against fp32). Options used: --models,
# --test, --calib, --calib-images, --calib-crop [256; a multiple of 16 or 64], --observer,
# --work, --out, --name, --rows, --threads, --dry-run, and for the QAT and pruned rows --data,
# --val, --qat-steps, --ft-steps, --sparsity, --batch, --crop (a multiple of 64 for the
# hyperpriors), --lr, --train-opts, --stop-after (their checkpoints go to
# WORK/<variant>-ckpt; pruned-int8 makes the pruned ladder WORK/pruned first).
# Environment: NNEDGE (the binary, default build/nnedge).
set -eu
cd "$(dirname "$0")/.."
NNEDGE=${NNEDGE:-build/nnedge}

MODEL=models/cae-seed.nne
NAME=
CALIB=../shared/data/train
DATA=../shared/data/train
VAL=
TEST=../shared/data/kodak
CODEC=
MODELS=models
WORK=
OUT=docs/results
OBSERVER=minmax
ACTEQ_ALPHA=0.5
QAT_OBSERVER=
CALIB_IMAGES=32
CALIB_CROP=
SPARSITY=0.5
QAT_STEPS=2000
FT_STEPS=2000
BATCH=8
CROP=256
LR=
THREADS=
STOP_AFTER=
TRAIN_OPTS=
ROWS=all
DRY_RUN=
PRUNE_UNIFORM=

ALL_ROWS="fp32 fp16 int8-per-tensor int8-per-channel int8-pow2 int8-per-channel-w7 int8-pow2-cle int8-per-channel-acteq int8-pow2-qat int8-per-channel-qat int8-per-channel-w7-qat int8-per-channel-acteq-qat int4-weights int2-weights pruned-oneshot pruned pruned-int8"

die() {
    echo "quant_results.sh: $*" >&2
    exit 2
}

# Shell-quote the words of a command for the record (plain words stay as they are).
quote() {
    q=
    for w in "$@"; do
        case $w in
        *[!A-Za-z0-9_./:=,+@-]* | '') w="'$(printf '%s' "$w" | sed "s/'/'\\\\''/g")'" ;;
        esac
        q="$q${q:+ }$w"
    done
    printf '%s' "$q"
}
INVOCATION="scripts/quant_results.sh${*:+ $(quote "$@")}" # recorded in the .md
while [ $# -gt 0 ]; do
    opt=$1
    case $opt in
    --dry-run) DRY_RUN=1; shift; continue ;;
    --prune-uniform) PRUNE_UNIFORM=1; shift; continue ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    esac
    [ $# -ge 2 ] || die "$opt needs a value"
    val=$2
    shift 2
    case $opt in
    --model) MODEL=$val ;;
    --name) NAME=$val ;;
    --calib) CALIB=$val ;;
    --data) DATA=$val ;;
    --val) VAL=$val ;;
    --test) TEST=$val ;;
    --work) WORK=$val ;;
    --out) OUT=$val ;;
    --observer) OBSERVER=$val ;;
    --acteq-alpha) ACTEQ_ALPHA=$val ;;
    --qat-observer) QAT_OBSERVER=$val ;;
    --calib-images) CALIB_IMAGES=$val ;;
    --calib-crop) CALIB_CROP=$val ;;
    --sparsity) SPARSITY=$val ;;
    --qat-steps) QAT_STEPS=$val ;;
    --ft-steps) FT_STEPS=$val ;;
    --batch) BATCH=$val ;;
    --crop) CROP=$val ;;
    --lr) LR=$val ;;
    --threads) THREADS=$val ;;
    --stop-after) STOP_AFTER=$val ;;
    --train-opts) TRAIN_OPTS=$val ;;
    --rows) ROWS=$val ;;
    --codec) CODEC=$val ;;
    --models) MODELS=$val ;;
    *) die "unknown option $opt (try --help)" ;;
    esac
done
if [ -n "$CODEC" ]; then
    case $CODEC in
    bmshj2018-factorized | bmshj2018-hyperprior | mbt2018-mean) ;;
    *) die "--codec '$CODEC': expected bmshj2018-factorized, bmshj2018-hyperprior or mbt2018-mean" ;;
    esac
    ALL_ROWS="fp32 fp16 int8-per-tensor int8-per-channel int8-pow2 int8-per-channel-qat int8-pow2-qat pruned pruned-int8"
    [ -n "$NAME" ] || NAME=$CODEC
    # QAT of a rung adapts it to rounding at its own lambda; a fifth of scripts/train_rd.sh's
    # fine-tuning rate, so that it does not move along the RD curve.
    [ -n "$LR" ] || LR=2e-5
    [ -n "$CALIB_CROP" ] || CALIB_CROP=256
fi
[ -n "$CALIB_CROP" ] || CALIB_CROP=128
[ -n "$LR" ] || LR=1e-4
[ -n "$QAT_OBSERVER" ] || QAT_OBSERVER=$OBSERVER
[ -n "$NAME" ] || NAME=$(basename "$MODEL" .nne)
[ -n "$WORK" ] || WORK=build/quant-results/$NAME
if [ "$ROWS" != all ]; then
    for r in $(echo "$ROWS" | tr ',' ' '); do
        case " $ALL_ROWS " in *" $r "*) ;; *) die "--rows: unknown row '$r' ($ALL_ROWS)" ;; esac
    done
fi
if [ -z "$DRY_RUN" ]; then
    [ -x "$NNEDGE" ] || die "$NNEDGE not found; build first (cmake -S . -B build && cmake --build build -j)"
    if [ -n "$CODEC" ]; then
        [ -d "$MODELS" ] || die "$MODELS: no such models folder"
    else
        [ -f "$MODEL" ] || die "$MODEL: no such model file (an f32 model from nnedge train)"
    fi
    [ -d "$TEST" ] || die "$TEST: no such test folder"
    mkdir -p "$WORK" "$OUT"
fi

# step OUT CMD...: run CMD (the nnedge binary first) unless OUT exists; the command, as it
# was run, goes to OUT.cmd. stdout goes to OUT.stdout when OUT.stdout is asked for (see
# STDOUT). Returns the command's exit code.
STDOUT=
step() {
    out=$1
    shift
    rec="nnedge $(quote "$@")"
    if [ -e "$out" ] && [ -z "$DRY_RUN" ]; then
        STDOUT=
        return 0
    fi
    echo "$rec" >&2
    if [ -n "$DRY_RUN" ]; then
        STDOUT=
        return 0
    fi
    rc=0
    if [ -n "$STDOUT" ]; then
        "$NNEDGE" "$@" >"$STDOUT.tmp" </dev/null || rc=$?
        [ $rc -eq 0 ] && mv "$STDOUT.tmp" "$STDOUT"
    else
        "$NNEDGE" "$@" </dev/null || rc=$?
    fi
    STDOUT=
    [ $rc -eq 0 ] && printf '%s\n' "$rec" >"$out.cmd"
    return $rc
}

# The recorded command of an artifact (what was run), or "" when there is none.
cmd_of() { if [ -f "$1.cmd" ]; then cat "$1.cmd"; fi; }
# json_field FILE KEY: an integer field of a one-line JSON object.
json_field() { sed -n "s/.*\"$2\": \\([0-9]*\\).*/\\1/p" "$1"; }

# evaluate ROW MODEL [BACKEND]: nnedge eval of MODEL on TEST into WORK/eval-ROW.
evaluate() {
    set -- "$WORK/eval-$1" "$2" "${3:-cpu}"
    step "$1/eval.csv" eval --data "$TEST" --model "$2" --backend "$3" -q -o "$1"
}

# train_to OUT INIT STEPS [more train options...]: fine-tune INIT for STEPS into OUT, or
# resume that run from its checkpoint (OUT's name with .ckpt, in CKDIR when set, else beside
# OUT; the best-validation model goes beside it). The model is TRAIN_MODEL [cae-seed]. OUT.cmd records the command that started the run
# (--threads and --stop-after change neither the steps nor the bits, so they are left out).
# Returns 0 when OUT exists afterwards, 3 when paused by --stop-after, the trainer's code on
# failure.
train_to() {
    out=$1 init=$2 steps=$3
    shift 3
    [ -e "$out" ] && [ -z "$DRY_RUN" ] && return 0
    ckpt=${out%.nne}.ckpt log=${out%.nne}.csv
    if [ -n "${CKDIR:-}" ]; then
        ckpt=$CKDIR/$(basename "$ckpt") log=$CKDIR/$(basename "$log")
        [ -n "$DRY_RUN" ] || mkdir -p "$CKDIR"
    fi
    if [ -f "$ckpt" ] && [ -z "$DRY_RUN" ]; then
        step "$out" train --resume "$ckpt" --data "$DATA" ${VAL:+--val "$VAL"} -o "$out" \
            --log "$log" ${THREADS:+--threads "$THREADS"} \
            ${STOP_AFTER:+--stop-after "$STOP_AFTER"} || return $?
    else
        # shellcheck disable=SC2086 # TRAIN_OPTS: options, split at spaces
        set -- train --model "${TRAIN_MODEL:-cae-seed}" --init "$init" --data "$DATA" ${VAL:+--val "$VAL"} \
            --steps "$steps" --batch "$BATCH" --crop "$CROP" --lr "$LR" --seed 1 "$@" \
            $TRAIN_OPTS --checkpoint "$ckpt" --log "$log" -o "$out"
        if [ -z "$DRY_RUN" ]; then
            rm -f "$log" # a log without a checkpoint is from a failed start
            echo "nnedge $(quote "$@")" >"$ckpt.start"
        fi
        step "$out" "$@" ${THREADS:+--threads "$THREADS"} \
            ${STOP_AFTER:+--stop-after "$STOP_AFTER"} || return $?
    fi
    [ -n "$DRY_RUN" ] && return 0
    if [ ! -e "$out" ]; then
        echo "quant_results.sh: $out paused (--stop-after); rerun to continue" >&2
        return 3
    fi
    [ -f "$ckpt.start" ] && cp "$ckpt.start" "$out.cmd"
    return 0
}

# ptq OUT SCHEME MODEL [more quantize options]: post-training int8 (calibrated on CALIB).
ptq() {
    out=$1 scheme=$2 src=$3
    shift 3
    step "$out" quantize "$src" --calib "$CALIB" --scheme "$scheme" --observer "$OBSERVER" \
        --max-images "$CALIB_IMAGES" --crop "$CALIB_CROP" "$@" -q -o "$out"
}

# fake OUT FORMAT: weights rounded to FORMAT (f32 model); its storage size in OUT.json.
fake() {
    [ -e "$1.json" ] || [ -n "$DRY_RUN" ] || rm -f "$1" # its size is needed too
    STDOUT=$1.json
    step "$1" quantize "$MODEL" --fake --scheme "$2" --json -o "$1"
}

# The QuTiBench ratios of $QCSV as a markdown table; $1 names what is missing ("rows" or
# "ladders") when the CSV has no data line.
qutibench_table() {
    if [ "$(wc -l <"$QCSV")" -gt 1 ]; then
        echo "| metric | A | B | C | D | p1 | q1 | p2 | q2 | p2/p1 |"
        echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' "$QCSV"
    else
        echo "Not available: $1 fp32, int8-per-channel, pruned and pruned-int8 are all needed."
    fi
}

want() { [ "$ROWS" = all ] || case ",$ROWS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# ---- Learned codecs ---------------------------------------------------------------------------

# The ladder's rung numbers N of MODELS/CODEC-q<N>.nne, ascending.
ladder() {
    for f in "$MODELS/$CODEC"-q*.nne; do
        [ -f "$f" ] || continue
        n=${f##*/"$CODEC"-q}
        n=${n%.nne}
        case $n in '' | *[!0-9]*) continue ;; esac
        echo "$n"
    done | sort -n
}

# codec_info FILE KEY: a field of nnedge info's "codec" summary (weight_bytes, precision).
codec_info() {
    "$NNEDGE" info "$1" --json | sed -n '/"codec": {/,/}/p' | sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p"
}

# train_meta FILE KEY: a metadata value of the model (nnedge info's "meta" of its first part).
train_meta() {
    "$NNEDGE" info "$1" --json | sed -n '/"meta": {/,/}/p' | sed -n "s/^ *\"$2\": \"\([^\"]*\)\",\{0,1\}\$/\1/p" | head -n 1
}

# bd_of JSON REF TEST KEY: a BD value (KEY of "values") of codec TEST against codec REF in
# nnedge rd's JSON report ("" when n/a).
bd_of() {
    awk -v ref="$2" -v test="$3" -v key="\"$4\":" '
    /^  "bd": \[/ { inbd = 1 }
    /^  "anchors": \[/ { inbd = 0 }
    inbd && $1 == "\"reference\":" { r = $2; gsub(/[",]/, "", r) }
    inbd && $1 == "\"test\":" { t = $2; gsub(/[",]/, "", t) }
    inbd && $1 == key && r == ref && t == test { v = $2; sub(/,$/, "", v); if (v != "null") print v; exit }
    ' "$1"
}

# The rd codec entry of variant $1: its ladder, named nnedge:CODEC@<variant>.
rd_name() { echo "nnedge:$CODEC@$1"; }

# rung_ft DST SRC CKDIR STEPS [train options]: fine-tune rung SRC of the ladder for STEPS at its
# own N, M and lambda (train.lambda) into DST, checkpoints in CKDIR (resumable, train_to). A
# pause (--stop-after) ends the script; a failure too, with the trainer's code.
rung_ft() {
    fdst=$1 fsrc=$2 fck=$3 fsteps=$4
    shift 4
    if [ -n "$DRY_RUN" ]; then
        nm=N,M lambda=LAMBDA
    elif [ ! -e "$fdst" ]; then
        nm=$(codec_info "$fsrc" n),$(codec_info "$fsrc" m)
        lambda=$(train_meta "$fsrc" train.lambda)
        [ -n "$lambda" ] || die "$fsrc: no train.lambda in its metadata (a model of nnedge train --model $CODEC)"
    fi
    rc=0
    TRAIN_MODEL=$CODEC CKDIR=$fck train_to "$fdst" "$fsrc" "$fsteps" --channels "${nm:-}" \
        --lambda "${lambda:-}" "$@" || rc=$?
    [ $rc -eq 3 ] && exit 0 # paused by --stop-after
    [ $rc -eq 0 ] || exit $rc
}

codec_mode() {
    RUNGS=$(ladder)
    [ -n "$RUNGS" ] || [ -n "$DRY_RUN" ] || die "no models $CODEC-q<N>.nne in $MODELS"
    [ -n "$RUNGS" ] || RUNGS="N"
    W=$WORK
    # The variant ladders.
    for r in $ALL_ROWS; do
        want "$r" || [ "$r" = fp32 ] || continue
        [ "$r" = fp32 ] && continue
        [ -n "$DRY_RUN" ] || mkdir -p "$W/$r"
        for n in $RUNGS; do
            src=$MODELS/$CODEC-q$n.nne dst=$W/$r/$CODEC-q$n.nne
            case $r in
            fp16)
                [ -e "$dst.json" ] || [ -n "$DRY_RUN" ] || rm -f "$dst" # its size is needed too
                STDOUT=$dst.json
                step "$dst" quantize "$src" --fake --scheme fp16 --json -o "$dst" ;;
            int8-*-qat)
                scheme=${r#int8-}
                rung_ft "$dst" "$src" "$W/$r-ckpt" "$QAT_STEPS" --qat "${scheme%-qat}" \
                    --qat-observer "$QAT_OBSERVER" --calib-images "$CALIB_IMAGES" ;;
            pruned) rung_ft "$dst" "$src" "$W/pruned-ckpt" "$FT_STEPS" --prune-schedule "$SPARSITY" ;;
            pruned-int8)
                # the pruned rung (made here when the pruned row is not asked for)
                [ -n "$DRY_RUN" ] || mkdir -p "$W/pruned"
                rung_ft "$W/pruned/$CODEC-q$n.nne" "$src" "$W/pruned-ckpt" "$FT_STEPS" \
                    --prune-schedule "$SPARSITY"
                ptq "$dst" per-channel "$W/pruned/$CODEC-q$n.nne" ;;
            int8-*) ptq "$dst" "${r#int8-}" "$src" ;;
            esac
        done
    done
    # One nnedge rd run over the fp32 ladder and every variant ladder that is wanted or
    # complete (made by an earlier run), so the table keeps every row done. Each ladder is a
    # codec of its own (nnedge:KIND@<variant>=<folder>); the BD-rates against fp32 are rd's.
    case $MODELS$W in *,*) die "--models and --work must not contain ',' (nnedge rd --codecs)" ;; esac
    CODECS=
    for r in $ALL_ROWS; do
        dir=$W/$r
        [ "$r" = fp32 ] && dir=$MODELS
        if ! want "$r" && [ "$r" != fp32 ]; then
            [ -z "$DRY_RUN" ] || continue
            for n in $RUNGS; do [ -f "$dir/$CODEC-q$n.nne" ] || continue 2; done
        fi
        CODECS="$CODECS${CODECS:+,}$(rd_name "$r")=$dir"
    done
    RD=$W/rd
    # A report of another set of ladders (or test folder) is made again.
    KEY="$TEST $CODECS"
    if [ -z "$DRY_RUN" ] && [ -f "$RD.json" ] && [ "$(cat "$RD.key" 2>/dev/null)" != "$KEY" ]; then
        rm -f "$RD.json"
    fi
    step "$RD.json" rd "$TEST" --codecs "$CODECS" ${THREADS:+--threads "$THREADS"} --force -q \
        -o "$RD"
    [ -n "$DRY_RUN" ] || printf '%s\n' "$KEY" >"$RD.key"
    [ -n "$DRY_RUN" ] && exit 0

    # The table: one row per variant and rung.
    TAB=$W/table.tsv
    : >"$TAB"
    for r in $ALL_ROWS; do
        name=$(rd_name "$r")
        grep -q "^$name," "$RD.csv" || continue
        case $r in
        fp32) desc="f32 model"; prec=f32; be=cpu-exact; bdp=0; bdq=0; bdm=0 ;;
        fp16) desc="every constant rounded to fp16 (f32 compute)"; prec="fp16 weights"; be=cpu-exact ;;
        *-qat) s0=${r#int8-}
           desc="int8 g_a and g_s after $QAT_STEPS steps of ${s0%-qat} QAT at the rung's lambda (ranges calibrated with $QAT_OBSERVER, fixed); h_a, h_s, entropy model f32"
           prec=int8; be="cpu-s8 + cpu-exact" ;;
        pruned) desc="magnitude-pruned to $SPARSITY of every conv weight tensor (g_a, h_a, h_s, g_s; gradual, Zhu & Gupta) during $FT_STEPS steps of fine-tuning at the rung's lambda; f32"
           prec=f32; be=cpu-exact ;;
        pruned-int8) desc="the pruned rung, int8 g_a and g_s post-training per-channel ($OBSERVER observer); h_a, h_s, entropy model f32"
           prec=int8; be="cpu-s8 + cpu-exact" ;;
        *) desc="int8 g_a and g_s, post-training, ${r#int8-} scales, $OBSERVER observer; h_a, h_s, entropy model f32"
           prec=int8; be="cpu-s8 + cpu-exact" ;;
        esac
        if [ "$r" != fp32 ]; then
            ref=$(rd_name fp32)
            bdp=$(bd_of "$RD.json" "$ref" "$name" bd_rate_psnr_pct_pchip)
            bdq=$(bd_of "$RD.json" "$ref" "$name" bd_psnr_db_pchip)
            bdm=$(bd_of "$RD.json" "$ref" "$name" bd_rate_ms_ssim_pct_pchip)
        fi
        for n in $RUNGS; do
            m=$MODELS/$CODEC-q$n.nne
            [ "$r" = fp32 ] || m=$W/$r/$CODEC-q$n.nne
            # the bytes it runs with; stored sparse (nonzero values + presence bits; n/a for
            # fp16, whose values are stored f32); ops per pixel skipping zero weights
            sparse='' ops=$(codec_info "$m" sparse_ops_per_pixel)
            case $r in
            fp16) size=$(json_field "$m.json" storage_bytes) ;;
            *) size=$(codec_info "$m" weight_bytes) sparse=$(codec_info "$m" sparse_weight_bytes) ;;
            esac
            # Means of rd's CSV row of rung n; bytes summed over the images.
            # shellcheck disable=SC2046 # four words: images bpp psnr ms_ssim
            set -- $(awk -F, -v c="$name" -v q="$n" '$1 == c && $3 == q { print $4, $5, $6, $7 }' "$RD.csv")
            bytes=$(awk -F, -v c="$name" -v q="$n" '$1 == c && $3 == q { s += $7 } END { printf "%d", s }' "$RD-images.csv")
            cmd=$(cmd_of "$RD.json")
            case $r in
            fp32) ;;
            pruned-int8) p=$W/pruned/$CODEC-q$n.nne
                cmd="$(cmd_of "$p") && $(cmd_of "$m") && $cmd" ;;
            *) cmd="$(cmd_of "$m") && $cmd" ;;
            esac
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" \
                "$desc" "$prec" "$be" "$n" "${1:-0}" "$bytes" "${2:-}" "${3:-}" "${4:-}" \
                "${size:-}" "${sparse:-}" "${ops:-}" "${bdp:-}" "${bdq:-}" "${bdm:-}" "$cmd" >>"$TAB"
        done
    done
    [ -s "$TAB" ] || die "no variant evaluated yet"
    CSV=$OUT/quant-$NAME.csv
    MD=$OUT/quant-$NAME.md
    awk -F'\t' -v OFS=, '
    function q(s) { if (s ~ /[",\n]/) { gsub(/"/, "\"\"", s); s = "\"" s "\"" } return s }
    BEGIN { print "variant,description,precision,backend,rung,images,bytes,bpp,psnr_db,ms_ssim,size_bytes,sparse_size_bytes,ops_per_pixel,bd_rate_psnr_pct,bd_psnr_db,bd_rate_ms_ssim_pct,command" }
    { print $1, q($2), q($3), q($4), $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, q($17) }
    ' "$TAB" >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"
    # QuTiBench ratios (A fp32, B int8-per-channel, C pruned, D pruned-int8): ops per pixel
    # skipping zero weights and sparse size (means over the rungs), PSNR at each rung and its
    # mean, mean bpp, and the rate at equal PSNR relative to fp32, 1 + BD-rate / 100 (nnedge
    # rd's PCHIP BD-rate against fp32; docs/quantization.md, "Results table: learned codecs").
    QCSV=$OUT/quant-$NAME-qutibench.csv
    awk -F'\t' -v OFS=, -v rungs="$RUNGS" '
    BEGIN { split("fp32 int8-per-channel pruned pruned-int8", V, " ") }
    { n[$1]++; ops[$1] += $13; sz[$1] += $12; ps[$1] += $9; bp[$1] += $8; rp[$1, $5] = $9
      bd[$1] = $14; if ($12 == "" || $13 == "" || $9 == "") bad[$1] = 1 }
    function r(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "" : sprintf("%.4f", a / b) }
    function line(name, A, B, C, D) {
        p1 = r(C, A); q1 = r(B, A); p2 = r(D, B); q2 = r(D, C)
        print name, A, B, C, D, p1, q1, p2, q2, r(p2, p1)
    }
    function mean(a, v, f) { return sprintf(f, a[v] / n[v]) }
    function rate(v) { return v == "fp32" ? "1.0000" : (bd[v] == "" ? "" : sprintf("%.4f", 1 + bd[v] / 100)) }
    END {
        print "metric,A_fp32,B_int8_per_channel,C_pruned,D_pruned_int8,p1_C_over_A,q1_B_over_A,p2_D_over_B,q2_D_over_C,p2_over_p1"
        for (i = 1; i <= 4; i++) if (!(V[i] in n) || (V[i] in bad)) exit
        for (i = 1; i <= 4; i++) if (n[V[i]] != n["fp32"]) exit
        line("ops_per_pixel", mean(ops, "fp32", "%.3f"), mean(ops, V[2], "%.3f"), mean(ops, V[3], "%.3f"), mean(ops, V[4], "%.3f"))
        line("size_bytes", mean(sz, "fp32", "%.0f"), mean(sz, V[2], "%.0f"), mean(sz, V[3], "%.0f"), mean(sz, V[4], "%.0f"))
        k = split(rungs, R, " ")
        for (j = 1; j <= k; j++)
            line("psnr_db_q" R[j], rp["fp32", R[j]], rp[V[2], R[j]], rp[V[3], R[j]], rp[V[4], R[j]])
        line("psnr_db_mean", mean(ps, "fp32", "%.4f"), mean(ps, V[2], "%.4f"), mean(ps, V[3], "%.4f"), mean(ps, V[4], "%.4f"))
        line("bpp_mean", mean(bp, "fp32", "%.4f"), mean(bp, V[2], "%.4f"), mean(bp, V[3], "%.4f"), mean(bp, V[4], "%.4f"))
        line("rate_at_equal_psnr", rate("fp32"), rate(V[2]), rate(V[3]), rate(V[4]))
    }' "$TAB" >"$QCSV.tmp" && mv "$QCSV.tmp" "$QCSV"
    {
        echo "# Quantization results: learned codec \`$CODEC\`"
        echo
        echo "Made by \`$INVOCATION\` ($(date -u +%Y-%m-%dT%H:%M:%SZ))." \
            "Ladder \`$MODELS/$CODEC-q<N>.nne\` (rungs $(echo $RUNGS | tr ' ' ',')), test folder \`$TEST\`" \
            "(means over its images), calibration \`$CALIB\` ($CALIB_IMAGES crops of" \
            "${CALIB_CROP}x$CALIB_CROP). bpp from the real .nnc files; one \`nnedge rd\` run compares" \
            "every ladder (codec \`nnedge:$CODEC@<variant>\`, docs/rd.md); its BD-rates" \
            "(PCHIP) against the fp32 ladder: BD-rate negative = fewer bits for the same quality," \
            "BD-PSNR positive = better; n/a where nnedge rd cannot compute one (fewer than 4" \
            "rungs, quality not strictly increasing, MS-SSIM undefined below 161 pixels)." \
            "Columns: docs/quantization.md, \"Results table: learned codecs\"."
        echo
        echo "| variant | rung | precision | bpp | PSNR (dB) | MS-SSIM | size (bytes) | sparse size | ops/pixel | BD-rate PSNR | BD-PSNR (dB) | BD-rate MS-SSIM |"
        echo "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        awk -F'\t' '
        function f(v, d) { return v == "" ? "n/a" : sprintf("%." d "f", v) }
        function pc(v) { return v == "" ? "n/a" : sprintf("%+.2f %%", v) }
        { printf "| %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $5, $3, $4, f($8, 4), f($9, 2), f($10, 4), $11 == "" ? "n/a" : $11, $12 == "" ? "n/a" : $12, f($13, 1), pc($14), ($15 == "" ? "n/a" : sprintf("%+.4f", $15)), pc($16) }
        ' "$TAB"
        echo
        echo "## QuTiBench pruning x quantization ratios"
        echo
        echo "A = fp32, B = int8-per-channel, C = pruned, D = pruned-int8; p1 = C/A, q1 = B/A," \
            "p2 = D/B, q2 = D/C; orthogonal when p2/p1 = q2/q1 = 1 (../shared/specs/qutibench.md," \
            "2.4). ops/pixel: the ops (2 x MACs) of g_a, h_a, h_s and g_s per pixel, skipping zero" \
            "weights; size: sparse bytes (nonzero values + 1-bit presence maps); both means over" \
            "the rungs. PSNR per rung and mean; rate_at_equal_psnr = 1 + BD-rate/100 against fp32."
        echo
        qutibench_table ladders
        echo
        echo "## Variants"
        echo
        awk -F'\t' '!seen[$1]++ { printf "- %s: %s\n", $1, $2 }' "$TAB"
        echo
        # nnedge rd's matrices: every variant (nnedge:KIND@<variant>) against every other.
        sed -n '/^## BD-rate matrix/,/^## Against/p' "$RD.md" | sed '/^## Against/d'
        echo
        echo "## Commands"
        echo
        awk -F'\t' '{ printf "- %s q%s: `%s`\n", $1, $5, $17 }' "$TAB"
    } >"$MD.tmp" && mv "$MD.tmp" "$MD"
    echo "quant_results.sh: wrote $CSV, $QCSV and $MD" >&2
    exit 0
}
[ -z "$CODEC" ] || codec_mode

W=$WORK
PRUNED=$W/pruned.nne
PRUNED_FT=$W/pruned-ft.nne
paused=
# fine_tune OUT INIT STEPS [options]: train_to, with a pause noted (returns 1) and a failure
# ending the script.
fine_tune() {
    rc=0
    train_to "$@" || rc=$?
    case $rc in
    0) return 0 ;;
    3) paused=1; return 1 ;;
    *) exit $rc ;;
    esac
}
if want fp32; then
    evaluate fp32 "$MODEL"
fi
if want fp16; then
    fake "$W/fp16.nne" fp16
    evaluate fp16 "$W/fp16.nne"
fi
for s in per-tensor per-channel pow2; do
    if want "int8-$s"; then
        ptq "$W/int8-$s.nne" "$s" "$MODEL"
        evaluate "int8-$s" "$W/int8-$s.nne" cpu-s8
    fi
done
if want int8-per-channel-w7; then
    ptq "$W/int8-per-channel-w7.nne" per-channel "$MODEL" --weight-bits 7
    evaluate int8-per-channel-w7 "$W/int8-per-channel-w7.nne" cpu-s8
fi
if want int8-pow2-cle; then
    ptq "$W/int8-pow2-cle.nne" pow2 "$MODEL" --equalize
    evaluate int8-pow2-cle "$W/int8-pow2-cle.nne" cpu-s8
fi
if want int8-per-channel-acteq; then
    ptq "$W/int8-per-channel-acteq.nne" per-channel "$MODEL" --equalize-act "$ACTEQ_ALPHA"
    evaluate int8-per-channel-acteq "$W/int8-per-channel-acteq.nne" cpu-s8
fi
for b in int4 int2; do
    if want "$b-weights"; then
        fake "$W/$b.nne" "$b"
        evaluate "$b-weights" "$W/$b.nne"
    fi
done
if want pruned-oneshot || want pruned || want pruned-int8; then
    if [ -n "$PRUNE_UNIFORM" ]; then
        step "$PRUNED" prune "$MODEL" --method channel --sparsity "$SPARSITY" -q -o "$PRUNED"
    else
        step "$PRUNED" prune "$MODEL" --method channel --sparsity "$SPARSITY" --calib "$CALIB" \
            --max-images "$CALIB_IMAGES" --crop "$CALIB_CROP" -q -o "$PRUNED"
    fi
    if want pruned-oneshot; then
        evaluate pruned-oneshot "$PRUNED"
    fi
fi
if { want pruned || want pruned-int8; } && fine_tune "$PRUNED_FT" "$PRUNED" "$FT_STEPS"; then
    if want pruned; then
        evaluate pruned "$PRUNED_FT"
    fi
    if want pruned-int8; then
        ptq "$W/pruned-int8.nne" per-channel "$PRUNED_FT"
        evaluate pruned-int8 "$W/pruned-int8.nne" cpu-s8
    fi
fi
# QAT rows: W/qat-<s>.nne fine-tuned quantization-aware, then quantized with its own ranges
# and weight bits (no calibration: nnedge quantize reads the qat.* metadata).
for s in pow2 per-channel per-channel-w7 per-channel-acteq; do
    case $s in
    per-channel-w7) qs=per-channel qx="--qat-weight-bits 7" ;;
    per-channel-acteq) qs=per-channel qx="--qat-equalize-act $ACTEQ_ALPHA" ;;
    *) qs=$s qx= ;;
    esac
    # $qx unquoted: an option and its value, or nothing
    if want "int8-$s-qat" && fine_tune "$W/qat-$s.nne" "$MODEL" "$QAT_STEPS" --qat "$qs" $qx \
        --qat-observer "$QAT_OBSERVER" --calib-images "$CALIB_IMAGES"; then
        step "$W/int8-$s-qat.nne" quantize "$W/qat-$s.nne" -q -o "$W/int8-$s-qat.nne"
        evaluate "int8-$s-qat" "$W/int8-$s-qat.nne" cpu-s8
    fi
done
[ -n "$DRY_RUN" ] && exit 0

# ---- The table ------------------------------------------------------------------------------

# info_total FILE KEY: the whole model's total of KEY (macs, weight_bytes) from nnedge info.
info_total() {
    "$NNEDGE" info "$1" --json | sed -n "s/^ *\"$2\": \\([0-9]*\\),\\{0,1\\}\$/\\1/p" | tail -1
}
# mean_of DIR: "psnr ms_ssim images" from an eval.csv (its mean row).
mean_of() {
    awk -F, '$1 == "mean" { p = $7; m = $8 } NR > 1 && $1 != "mean" { n++ }
             END { printf "%s %s %d\n", p == "" ? "na" : p, m == "" ? "na" : m, n }' "$1/eval.csv"
}

PRUNE_HOW=", by sensitivity"
grep -q -- '--calib' "$PRUNED.cmd" 2>/dev/null || PRUNE_HOW=", uniform"
MACS=$(info_total "$MODEL" macs)
SIZE=$(info_total "$MODEL" weight_bytes)
PMACS=
[ -f "$PRUNED" ] && PMACS=$(info_total "$PRUNED" macs)
CSV=$OUT/quant-$NAME.csv
MD=$OUT/quant-$NAME.md
QCSV=$OUT/quant-$NAME-qutibench.csv
TAB=$W/table.tsv
: >"$TAB"
for r in $ALL_ROWS; do
    [ -f "$W/eval-$r/eval.csv" ] || continue
    case $r in
    fp32) desc="f32 model"; prec=f32; be=cpu; macs=$MACS; size=$SIZE
        cmd=$(cmd_of "$W/eval-fp32/eval.csv") ;;
    fp16 | int4-weights | int2-weights)
        f=${r%-weights}
        case $f in
        fp16) desc="every constant rounded to fp16 (f32 compute)" ;;
        *) desc="conv weights rounded to ${f#int} bits per output channel (f32 otherwise)" ;;
        esac
        prec="$f weights"; be=cpu; macs=$MACS; size=$(json_field "$W/$f.nne.json" storage_bytes)
        cmd="$(cmd_of "$W/$f.nne") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
    int8-*)
        m=$W/$r.nne
        # the observer the row's model was calibrated with (its command), not this run's
        obs=$(sed -n 's/.*--observer \([a-z]*\).*/\1/p' "$m.cmd" 2>/dev/null)
        [ -n "$obs" ] || obs=$OBSERVER
        case $r in
        int8-per-channel-w7) desc="post-training, per-channel scales, 7-bit weights, $obs observer"
            cmd="$(cmd_of "$m") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
        int8-pow2-cle) desc="post-training, pow2 scales, cross-layer equalization, $obs observer"
            cmd="$(cmd_of "$m") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
        int8-per-channel-acteq) desc="post-training, per-channel scales, activation-range equalization (alpha $(sed -n 's/.*--equalize-act \([0-9.]*\).*/\1/p' "$m.cmd" 2>/dev/null)), $obs observer"
            cmd="$(cmd_of "$m") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
        *-qat) s0=${r#int8-} s0=${s0%-qat}
            qm=$W/qat-$s0.nne
            s1=${s0%-w7} s1=${s1%-acteq}
            desc="$s1 scales$([ "$s0" = "${s0%-w7}" ] || echo ", 7-bit weights")$([ "$s0" = "${s0%-acteq}" ] || echo " from activation-equalized weights (alpha $(sed -n 's/.*--qat-equalize-act \([0-9.]*\).*/\1/p' "$qm.cmd" 2>/dev/null))") after $(sed -n 's/.*--steps \([0-9]*\).*/\1/p' "$qm.cmd" 2>/dev/null) steps of QAT ($(sed -n 's/.*--qat-observer \([a-z]*\).*/\1/p' "$qm.cmd" 2>/dev/null) ranges, fixed)"
            qi=$(sed -n 's/.*--init \([^ ]*\).*/\1/p' "$qm.cmd" 2>/dev/null)
            [ -z "$qi" ] || [ "$qi" = "$MODEL" ] || desc="$desc, starting from $qi"
            cmd="$(cmd_of "$qm") && $(cmd_of "$m") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
        *) desc="post-training, ${r#int8-} scales, $obs observer"
            cmd="$(cmd_of "$m") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
        esac
        # models quantized since conv + PReLU fusion say so (quant.fuse_prelu; QAT rows: qat.*)
        [ "$(train_meta "$m" quant.fuse_prelu)" = 1 ] && desc="$desc, conv + PReLU fused"
        prec=int8; be=cpu-s8; macs=$MACS; size=$(info_total "$m" weight_bytes) ;;
    pruned-oneshot) desc="channel-pruned (sparsity $SPARSITY$PRUNE_HOW), no fine-tuning"; prec=f32; be=cpu
        macs=$PMACS; size=$(info_total "$PRUNED" weight_bytes)
        cmd="$(cmd_of "$PRUNED") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
    pruned) desc="channel-pruned (sparsity $SPARSITY$PRUNE_HOW), $(sed -n 's/.*--steps \([0-9]*\).*/\1/p' "$PRUNED_FT.cmd" 2>/dev/null) steps of fine-tuning"
        prec=f32; be=cpu; macs=$(info_total "$PRUNED_FT" macs); size=$(info_total "$PRUNED_FT" weight_bytes)
        cmd="$(cmd_of "$PRUNED") && $(cmd_of "$PRUNED_FT") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
    pruned-int8) desc="the pruned model, post-training int8 per-channel"; prec=int8; be=cpu-s8
        [ "$(train_meta "$W/pruned-int8.nne" quant.fuse_prelu)" = 1 ] && desc="$desc, conv + PReLU fused"
        macs=$(info_total "$PRUNED_FT" macs); size=$(info_total "$W/pruned-int8.nne" weight_bytes)
        cmd="$(cmd_of "$PRUNED") && $(cmd_of "$PRUNED_FT") && $(cmd_of "$W/pruned-int8.nne") && $(cmd_of "$W/eval-$r/eval.csv")" ;;
    esac
    # shellcheck disable=SC2046 # three words: psnr ms_ssim images
    set -- $(mean_of "$W/eval-$r")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$desc" "$prec" "$be" "$1" "$2" \
        "$3" "${size:-na}" "${macs:-na}" "$cmd" >>"$TAB"
done
[ -s "$TAB" ] || die "no variant evaluated yet"

# CSV: drops against fp32 (fp32 - variant: positive = worse).
awk -F'\t' -v OFS=, '
function q(s) { if (s ~ /[",\n]/) { gsub(/"/, "\"\"", s); s = "\"" s "\"" } return s }
function z(s) { return s ~ /^-0\.0*$/ ? substr(s, 2) : s } # no "-0.0000"
function d(a, b) { return (a == "na" || b == "na" || a == "" || b == "") ? "" : z(sprintf("%.4f", a - b)) }
function e(a, b) { return (a == "na" || b == "na" || a == "" || b == "") ? "" : z(sprintf("%.6f", a - b)) }
NR == FNR { if ($1 == "fp32") { p0 = $5; m0 = $6 } next }
FNR == 1 { print "variant,description,precision,backend,psnr_db,ms_ssim,psnr_drop_db,ms_ssim_drop,size_bytes,macs,images,command" }
{ print $1, q($2), q($3), $4, ($5 == "na" ? "" : $5), ($6 == "na" ? "" : $6), d(p0, $5), e(m0, $6), $8, $9, $7, q($10) }
' "$TAB" "$TAB" >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"

# QuTiBench ratios: A fp32, B int8-per-channel, C pruned, D pruned-int8; ops = 2 x MACs.
awk -F'\t' -v OFS=, '
{ p[$1] = $5; s[$1] = $8; o[$1] = $9 == "na" ? "" : sprintf("%.0f", 2 * $9) }
function r(a, b) { return (a == "" || b == "" || b + 0 == 0 || a == "na" || b == "na") ? "" : sprintf("%.4f", a / b) }
function line(name, A, B, C, D) {
    p1 = r(C, A); q1 = r(B, A); p2 = r(D, B); q2 = r(D, C)
    print name, A, B, C, D, p1, q1, p2, q2, r(p2, p1)
}
END {
    print "metric,A_fp32,B_int8_per_channel,C_pruned,D_pruned_int8,p1_C_over_A,q1_B_over_A,p2_D_over_B,q2_D_over_C,p2_over_p1"
    if (("fp32" in p) && ("int8-per-channel" in p) && ("pruned" in p) && ("pruned-int8" in p)) {
        line("ops", o["fp32"], o["int8-per-channel"], o["pruned"], o["pruned-int8"])
        line("size_bytes", s["fp32"], s["int8-per-channel"], s["pruned"], s["pruned-int8"])
        line("psnr_db", p["fp32"], p["int8-per-channel"], p["pruned"], p["pruned-int8"])
    }
}' "$TAB" >"$QCSV.tmp" && mv "$QCSV.tmp" "$QCSV"

# Markdown.
{
    echo "# Quantization and pruning results: \`$NAME\`"
    echo
    echo "Made by \`$INVOCATION\` ($(date -u +%Y-%m-%dT%H:%M:%SZ)). Model \`$MODEL\`" \
        "(SHA-256 \`$(sha256sum "$MODEL" | cut -c1-16)...\`), test folder \`$TEST\`" \
        "($(awk -F'\t' '$1 == "fp32" { print $7 }' "$TAB") images, mean over them)," \
        "calibration \`$CALIB\`, fine-tuning data \`$DATA\`. Columns: docs/quantization.md," \
        "\"Results table\". Drops are fp32 minus the variant (positive: worse)."
    echo
    echo "| variant | what | precision | PSNR (dB) | MS-SSIM | PSNR drop (dB) | MS-SSIM drop | size (bytes) | MACs |"
    echo "|---|---|---|--:|--:|--:|--:|--:|--:|"
    awk -F'\t' '
    NR == FNR { if ($1 == "fp32") { p0 = $5; m0 = $6 } next }
    function f(v, d) { return (v == "na" || v == "") ? "n/a" : sprintf("%." d "f", v) }
    function g(v) { s = sprintf("%.0f", v); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } return s o }
    function z(s) { return s ~ /^-0\.0*$/ ? substr(s, 2) : s }
    { dp = ($5 == "na" || p0 == "na") ? "n/a" : z(sprintf("%.2f", p0 - $5))
      dm = ($6 == "na" || m0 == "na") ? "n/a" : z(sprintf("%.4f", m0 - $6))
      printf "| %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, f($5, 2), f($6, 4), dp, dm, ($8 == "na" ? "n/a" : g($8)), ($9 == "na" ? "n/a" : g($9)) }
    ' "$TAB" "$TAB"
    echo
    echo "## QuTiBench pruning x quantization ratios"
    echo
    echo "A = fp32, B = int8-per-channel, C = pruned, D = pruned-int8; ops = 2 x MACs;" \
        "p1 = C/A, q1 = B/A, p2 = D/B, q2 = D/C. The two optimizations are orthogonal when" \
        "p2/p1 = q2/q1 = 1 (../shared/specs/qutibench.md, 2.4)."
    echo
    qutibench_table rows
    echo
    echo "## Commands"
    echo
    awk -F'\t' '{ printf "- %s: `%s`\n", $1, $10 }' "$TAB"
} >"$MD.tmp" && mv "$MD.tmp" "$MD"
echo "quant_results.sh: wrote $CSV, $QCSV and $MD${paused:+ (some fine-tunes paused: rerun to continue)}" >&2
