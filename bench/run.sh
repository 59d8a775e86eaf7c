#!/usr/bin/env bash
# Benchmark: edgemeter against DuckDB doing the same jobs on the same files.
#   bench/run.sh [FILES] [LINES_PER_FILE] [SCALE]
#     defaults: 48 files × 50,000 lines ≈ 0.85 GB of log text; SCALE (default 10)
#     is the multiple of that set used for the peak-memory check.
# Prints wall times (hyperfine: mean ± σ over 3 runs after a warm-up), throughput,
# peak RSS and the ratios, then the meters job (bench/meters.sh). With BASELINE=<git revision> (say, the last commit
# before a change), that revision is built too and its ingest is timed and
# measured beside this one's in the same run. Needs a Rust toolchain and python3; installs DuckDB
# from PyPI into bench/venv and hyperfine from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-48}
lines=${2:-50000}
scale=${3:-10}
data=bench/data/$files-$lines
big=bench/data/$files-$lines-x$scale
out=bench/out
mkdir -p "$out"

if ! command -v hyperfine >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq hyperfine >/dev/null; else sudo apt-get install -y -qq hyperfine >/dev/null; fi
fi
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [ -n "${BASELINE:-}" ]; then
  # The baseline builds with this checkout's Cargo.toml and Cargo.lock, so the
  # two share every compiled dependency and only edgemeter itself is rebuilt.
  wt="$out/baseline-src"
  rm -rf "$wt" && git worktree prune
  git worktree add --force --detach "$wt" "$BASELINE" >/dev/null
  cp Cargo.toml Cargo.lock "$wt/"
  (cd "$wt" && CARGO_TARGET_DIR="$target" cargo build --release --quiet --bin edgemeter)
  cp "$target/release/edgemeter" "$out/edgemeter-baseline"
  git worktree remove --force "$wt"
fi
cargo build --release --quiet --bin edgemeter
[ -d "$data" ] || python3 bench/generate.py "$data" --files "$files" --lines "$lines"
if [ ! -x bench/venv/bin/python ]; then
  python3 -m venv bench/venv
  bench/venv/bin/pip install --quiet 'duckdb==2.0.0'
fi
em=$target/release/edgemeter
duck="bench/venv/bin/python bench/duckdb_ingest.py"
text_bytes() { for f in "$1"/*.gz; do gzip -dc "$f"; done | wc -c; }
bytes=$(text_bytes "$data")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -m)"
echo "data: $files files, $((files * lines)) lines, $bytes bytes of log text, $(du -sb "$data" | cut -f1) bytes gzip"

# 1. Ingest into a fresh lake (edgemeter) vs DuckDB's COPY to Hive-partitioned Parquet.
hyperfine --style basic --warmup 1 --runs 3 --export-json "$out/ingest.json" \
  -n edgemeter "rm -rf $out/lake && $em ingest --quiet --source $data --lake $out/lake" \
  -n duckdb "rm -rf $out/duck && $duck ingest $data $out/duck"
# 2. A month of per-key usage over the lake each wrote (edgemeter reads its rollups).
hyperfine --style basic --warmup 1 --runs 5 --export-json "$out/usage.json" \
  -n edgemeter "$em usage --lake $out/lake --from 2025-10-01 --to 2025-11-01 --format csv" \
  -n duckdb "$duck usage $out/lake 2025-10-01 2025-11-01"
# 3. Peak memory, on this set and on SCALE times it.
[ -d "$big" ] || bench/scale.sh "$data" "$big" "$scale"
big_bytes=$(text_bytes "$big")
peak() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
read -r t1 rss1 < <(peak sh -c "rm -rf $out/lake && $em ingest --quiet --source $data --lake $out/lake")
read -r tb rssb < <(peak sh -c "rm -rf $out/lake-big && $em ingest --quiet --source $big --lake $out/lake-big")
read -r td rssd < <(peak sh -c "rm -rf $out/duck && $duck ingest $data $out/duck")
# 3b. The baseline's ingest, same files, same run: time (hyperfine, alternating
# with this build) and peak RSS.
if [ -n "${BASELINE:-}" ]; then
  base=$out/edgemeter-baseline
  hyperfine --style basic --warmup 1 --runs 5 --export-json "$out/baseline.json" \
    -n edgemeter "rm -rf $out/lake && $em ingest --quiet --source $data --lake $out/lake" \
    -n baseline "rm -rf $out/lake-base && $base ingest --quiet --source $data --lake $out/lake-base"
  read -r _ rss_base < <(peak sh -c "rm -rf $out/lake-base && $base ingest --quiet --source $data --lake $out/lake-base")
  read -r _ rss_now < <(peak sh -c "rm -rf $out/lake && $em ingest --quiet --source $data --lake $out/lake")
  echo "baseline $BASELINE: peak RSS $((rss_base / 1024)) MiB; this build: $((rss_now / 1024)) MiB"
fi
# 4. Incremental cost: one more hour into the big lake vs into a lake of one day.
hour=$(ls "$data"/*.gz | tail -1)
inc=$out/increment && rm -rf "$inc" && mkdir -p "$inc"
gzip -dc "$hour" | sed 's/^2025-10-02/2025-10-31/' | gzip -1 > "$inc/E2BENCH.2025-10-31-23.inc.gz"
rm -rf "$out/lake-day" && mkdir -p "$out/day" && cp "$data"/*2025-10-01-* "$out/day/"
$em ingest --quiet --source "$out/day" --lake "$out/lake-day"
read -r ti_big _ < <(peak sh -c "$em ingest --quiet --source $inc --lake $out/lake-big --since 2025-10-31")
read -r ti_day _ < <(peak sh -c "$em ingest --quiet --source $inc --lake $out/lake-day --since 2025-10-31")

# 5. Hostile single objects: one gzip of 3,000,000 lines, and one object
# whose only line is 2 GiB (a bad line past --max-line-bytes, never held).
one=bench/data/one-3000000
[ -d "$one" ] || python3 bench/generate.py "$one" --files 1 --lines 3000000
long=bench/data/longline
if [ ! -f "$long/E2BENCH.2025-10-09-00.long.gz" ]; then
  mkdir -p "$long"
  { printf '#Version: 1.0\n#Fields: date time sc-status cs-uri-query\n'; head -c $((2 << 30)) /dev/zero | tr '\0' 'a'; printf '\n'; } \
    | gzip -1 > "$long/E2BENCH.2025-10-09-00.long.gz"
fi
read -r t_one rss_one < <(peak sh -c "rm -rf $out/lake-one && $em ingest --quiet --source $one --lake $out/lake-one")
read -r t_long rss_long < <(peak sh -c "rm -rf $out/lake-long && $em ingest --quiet --source $long --lake $out/lake-long")
echo "one object of 3,000,000 lines ($(du -sb "$one" | cut -f1) bytes gzip): $t_one s, peak RSS $((rss_one / 1024)) MiB"
echo "one object with a 2 GiB line: $t_long s, peak RSS $((rss_long / 1024)) MiB"

# 6. A month of 6 meters (bench/plans.toml) over the lake of step 3, and the
# rollup's size against the raw table's.
bench/meters.sh "$out/lake" "$em"

python3 - "$out" "$bytes" "$big_bytes" "$rss1" "$rssb" "$rssd" "$tb" "$ti_big" "$ti_day" <<'PY'
import json, sys
out, size, big, rss1, rssb, rssd, tb, ti_big, ti_day = sys.argv[1:]
size, big = int(size), int(big)
def means(name):
    r = {x["command"]: x for x in json.load(open(f"{out}/{name}.json"))["results"]}
    return r["edgemeter"]["mean"], r["duckdb"]["mean"]
ie, id_ = means("ingest")
ue, ud = means("usage")
mib = lambda kib: f"{int(kib) / 1024:.0f} MiB"
print()
print("| job | edgemeter | DuckDB 2.0 | ratio |")
print("|---|---|---|---|")
print(f"| ingest {size / 1e6:.0f} MB of logs to Parquet (mean of 3) | {ie:.2f} s ({size / ie / 1e6:.0f} MB/s) | {id_:.2f} s ({size / id_ / 1e6:.0f} MB/s) | {id_ / ie:.2f}× |")
print(f"| peak RSS of that ingest | {mib(rss1)} | {mib(rssd)} | |")
print(f"| ingest {big / 1e9:.1f} GB ({big // size}× the set): time, peak RSS | {float(tb):.1f} s ({big / float(tb) / 1e6:.0f} MB/s), {mib(rssb)} | | |")
print(f"| usage for the month (mean of 5) | {ue:.3f} s | {ud:.3f} s | {ud / ue:.2f}× |")
print(f"| one more hour into the {big // size}× lake / into a one-day lake | {float(ti_big):.2f} s / {float(ti_day):.2f} s | | |")
import os
if os.path.exists(f"{out}/baseline.json"):
    r = {x["command"]: x for x in json.load(open(f"{out}/baseline.json"))["results"]}
    now, base = r["edgemeter"]["mean"], r["baseline"]["mean"]
    print(f"| ingest, this build / baseline (mean of 5, alternating) | {now:.2f} s | baseline {base:.2f} s | {now / base:.3f}× the baseline's time |")
PY
