#!/usr/bin/env bash
# Ingest on three shapes of the same logs, edgemeter beside DuckDB in one run:
#   1. few large files: bench/run.sh's set (one file per hour),
#   2. many small files: the same lines as 40 files per hour,
#   3. late files: 1% new requests into every hour already committed (into
#      the lake of shape 1; DuckDB appends them to its partitions).
# Prints mean time (hyperfine, 3 runs after a warm-up), throughput and peak
# RSS of each. Same tools as bench/run.sh (hyperfine, DuckDB in bench/venv).
#   bench/shapes.sh [FILES] [LINES_PER_FILE] [PER_HOUR]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-48}
lines=${2:-50000}
per_hour=${3:-40}
data=bench/data/$files-$lines
small=bench/data/$files-$lines-split$per_hour
late=bench/data/$files-$lines-late
out=bench/out/shapes
mkdir -p "$out"
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --quiet --bin edgemeter
em=$target/release/edgemeter
[ -d "$data" ] || python3 bench/generate.py "$data" --files "$files" --lines "$lines"
[ -d "$small" ] || python3 bench/shapes.py split "$data" "$small" "$per_hour"
[ -d "$late" ] || python3 bench/shapes.py late "$data" "$late" 0.01
if [ ! -x bench/venv/bin/python ]; then
  python3 -m venv bench/venv
  bench/venv/bin/pip install --quiet 'duckdb==2.0.0'
fi
duck="bench/venv/bin/python bench/duckdb_ingest.py"
text_bytes() { for f in "$1"/*.gz; do gzip -dc "$f"; done | wc -c; }
peak() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -m)"

shape() { # name src em-command duck-command
  local name=$1 src=$2 em_cmd=$3 duck_cmd=$4
  hyperfine --style basic --warmup 1 --runs 3 --export-json "$out/$name.json" \
    -n edgemeter "$em_cmd" -n duckdb "$duck_cmd" >/dev/null
  read -r _ rss_e < <(peak sh -c "$em_cmd")
  read -r _ rss_d < <(peak sh -c "$duck_cmd")
  python3 - "$out/$name.json" "$name" "$(ls "$src" | wc -l)" "$(text_bytes "$src")" "$rss_e" "$rss_d" <<'PY'
import json, sys
path, name, files, size, rss_e, rss_d = sys.argv[1:]
r = {x["command"]: x["mean"] for x in json.load(open(path))["results"]}
e, d = r["edgemeter"], r["duckdb"]
size = int(size)
print(f"| {name} ({files} files, {size / 1e6:.0f} MB) | {e:.2f} s ({size / e / 1e6:.0f} MB/s), {int(rss_e) // 1024} MiB "
      f"| {d:.2f} s ({size / d / 1e6:.0f} MB/s), {int(rss_d) // 1024} MiB | {d / e:.2f}× |")
PY
}

echo "| shape | edgemeter: time, peak RSS | DuckDB 2.0: time, peak RSS | DuckDB's time / edgemeter's |"
echo "|---|---|---|---|"
shape few-large "$data" \
  "rm -rf $out/lake && $em ingest --quiet --source $data --lake $out/lake" \
  "rm -rf $out/duck && $duck ingest $data $out/duck"
shape many-small "$small" \
  "rm -rf $out/lake-small && $em ingest --quiet --source $small --lake $out/lake-small" \
  "rm -rf $out/duck-small && $duck ingest $small $out/duck-small"
# Late files: each timed run starts from a copy of shape 1's lake (the copy
# is part of both sides' command, so it cancels out of neither: it is timed
# alone below).
rm -rf "$out/lake-base" "$out/duck-base"
$em ingest --quiet --source "$data" --lake "$out/lake-base"
$duck ingest "$data" "$out/duck-base"
shape late-1pct "$late" \
  "rm -rf $out/lake-late && cp -r $out/lake-base $out/lake-late && $em ingest --quiet --source $late --lake $out/lake-late --since 2025-10-01" \
  "rm -rf $out/duck-late && cp -r $out/duck-base $out/duck-late && $duck append $late $out/duck-late"
hyperfine --style basic --runs 3 -n copy-lake "rm -rf $out/lake-late && cp -r $out/lake-base $out/lake-late" \
  -n copy-duck "rm -rf $out/duck-late && cp -r $out/duck-base $out/duck-late" | grep -E "Time|copy"
