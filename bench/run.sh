#!/usr/bin/env bash
# Benchmark: edgemeter ingest and usage against DuckDB doing the same job on the
# same files. Prints times, throughput, peak RSS and the ratio.
#   bench/run.sh [FILES] [LINES_PER_FILE]     (defaults: 48 files × 50,000 lines ≈ 0.9 GB)
# Needs: a Rust toolchain; installs DuckDB from PyPI into bench/venv; uses
# hyperfine (Debian package) when present, else one timed run each.
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-48}
lines=${2:-50000}
data=bench/data/$files-$lines
out=bench/out
mkdir -p "$out"

cargo build --release --quiet --bin edgemeter
[ -d "$data" ] || python3 bench/generate.py "$data" --files "$files" --lines "$lines"
if [ ! -x bench/venv/bin/python ]; then
  python3 -m venv bench/venv
  bench/venv/bin/pip install --quiet 'duckdb>=1.1'
fi
bytes=$(for f in "$data"/*.gz; do gzip -dc "$f"; done | wc -c)
echo "data: $files files, $((files * lines)) lines, $bytes bytes uncompressed"

ingest="rm -rf $out/lake && target/release/edgemeter ingest --quiet --source $data --lake $out/lake"
duck="bench/venv/bin/python bench/duckdb_ingest.py $data $out/duck"
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 1 --runs 3 --export-markdown "$out/ingest.md" -n edgemeter "$ingest" -n duckdb "$duck"
else
  for cmd in "$ingest" "$duck"; do /usr/bin/time -f "%e s  %M KiB peak  $cmd" bash -c "$cmd"; done
fi
/usr/bin/time -f "edgemeter ingest peak RSS: %M KiB" bash -c "$ingest"
target/release/edgemeter usage --lake "$out/lake" --from 2025-10-01 --to 2025-11-01 --format csv > "$out/usage.csv"
echo "usage rows: $(($(wc -l < "$out/usage.csv") - 1))"
