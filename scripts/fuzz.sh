#!/bin/sh
# Run libFuzzer targets: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET]
# Each target starts from fuzz/corpus/<target>/ (read-only seeds) and a scratch corpus in
# fuzz/work/<target>/ (git-ignored); crashes are written to fuzz/artifacts/.
set -eu
build=$1; secs=$2; only=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/fuzz/artifacts"
status=0
for bin in "$build"/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    if [ -n "$only" ] && [ "$only" != "$name" ]; then continue; fi
    mkdir -p "$root/fuzz/work/$name"
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -max_len=65536 -rss_limit_mb=2048 \
        -artifact_prefix="$root/fuzz/artifacts/$name-" \
        "$root/fuzz/work/$name" "$root/fuzz/corpus/$name" >"$root/fuzz/work/$name.log" 2>&1; then
        echo "fuzz: $name FAILED, see fuzz/work/$name.log and fuzz/artifacts/" >&2
        tail -40 "$root/fuzz/work/$name.log" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|Done" "$root/fuzz/work/$name.log" | tr '\n' ' '
        echo
    fi
done
exit $status
