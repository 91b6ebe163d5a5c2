#!/bin/sh
# Training throughput of cae-seed, nnedge against PyTorch, 1 and 2 threads
# (docs/perf-train.md).
#
#   scripts/bench_train.sh [BUILD_DIR]        (default: build; configured and built if needed)
#
# Environment: BATCH (8), SIZE (256), STEPS (5 timed steps), WARMUP (1), THREADS (1,2),
# PYTHON (/usr/bin/python3: Debian's Python with python3-torch; the pyenv python3 on PATH
# has no torch), LAYOUT (nhwc: channels_last, PyTorch's oneDNN convolutions; or nchw).
# Runs bench_train, then scripts/bench_train_torch.py with the same settings, and prints
# both tables and the ratio nnedge / PyTorch in crops/s per thread count.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
BATCH=${BATCH:-8} SIZE=${SIZE:-256} STEPS=${STEPS:-5} WARMUP=${WARMUP:-1}
THREADS=${THREADS:-1,2} PYTHON=${PYTHON:-/usr/bin/python3} LAYOUT=${LAYOUT:-nhwc}

if [ ! -x "$build/bench_train" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j"$(nproc)" --target bench_train >/dev/null
fi
args="--batch $BATCH --size $SIZE --steps $STEPS --warmup $WARMUP --threads $THREADS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# cae-seed training throughput: nnedge vs PyTorch"
echo
grep -m1 'model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*: /CPU: /'
echo "Logical CPUs: $(nproc); flags: $(grep -m1 -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo
# shellcheck disable=SC2086
"$build/bench_train" $args | tee "$tmp/nne.txt"
echo
# shellcheck disable=SC2086
"$PYTHON" "$root/scripts/bench_train_torch.py" $args --layout "$LAYOUT" | tee "$tmp/torch.txt"
echo
echo "| threads | nnedge crops/s | PyTorch crops/s | nnedge GFLOP/s | PyTorch GFLOP/s | ratio nnedge/PyTorch |"
echo "|---|---|---|---|---|---|"
grep '^RESULT' "$tmp/nne.txt" | while read -r _ t c g _; do
    th=${t#threads=}
    tl=$(grep "^RESULT threads=$th " "$tmp/torch.txt" || true)
    [ -n "$tl" ] || continue
    # shellcheck disable=SC2086
    set -- $tl
    awk -v th="$th" -v nc="${c#crops_per_s=}" -v ng="${g#gflops=}" \
        -v pc="${3#crops_per_s=}" -v pg="${4#gflops=}" \
        'BEGIN { printf "| %s | %.2f | %.2f | %.1f | %.1f | %.2f |\n", th, nc, pc, ng, pg, nc / pc }'
done
