#!/usr/bin/env bash
# Fuzzes one target with libFuzzer on the stable toolchain.
#   bash fuzz/run.sh [SECONDS]          # the object parser (default 60 s)
#   FUZZ_TARGET=plans bash fuzz/run.sh 600
# Starts from the committed corpus (fuzz/corpus/<target>); what the fuzzer
# finds goes to target/fuzz/<target>, crashes to target/fuzz/<target>-crashes.
# Merge new inputs into the committed corpus with FUZZ_MERGE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
target="${FUZZ_TARGET:-object}"
RUSTC_WORKSPACE_WRAPPER="$PWD/fuzz/sancov.sh" \
  cargo build --quiet --features fuzz --example "fuzz_$target"
bin="${CARGO_TARGET_DIR:-target}/debug/examples/fuzz_$target"
work="${CARGO_TARGET_DIR:-target}/fuzz/$target"
crashes="$work-crashes"
mkdir -p "$work" "$crashes"
"$bin" "$work" "fuzz/corpus/$target" \
  -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$crashes/" -print_final_stats=1
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  "$bin" -merge=1 "fuzz/corpus/$target" "$work"
fi
