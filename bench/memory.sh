#!/usr/bin/env bash
# Time and peak RSS of ingest, with the defaults and with --low-memory, on
# the benchmark's shapes (as bench/shapes.sh makes them), its 10× set (as
# bench/scale.sh makes it) and one large object (ten of the set's objects
# as one multi-member gzip, 45 MB). Each into an empty lake, except the late
# files, which go into the few-large lake. Single runs (/usr/bin/time).
#   bench/memory.sh [EDGEMETER]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
em=${1:-${CARGO_TARGET_DIR:-$root/target}/release/edgemeter}
[ "${1:-}" ] || cargo build --release --quiet --bin edgemeter
data=bench/data/48-50000
[ -d "$data" ] || python3 bench/generate.py "$data" --files 48 --lines 50000
[ -d "$data-split40" ] || python3 bench/shapes.py split "$data" "$data-split40" 40
[ -d "$data-late" ] || python3 bench/shapes.py late "$data" "$data-late" 0.01
[ -d "$data-x10" ] || bash bench/scale.sh "$data" "$data-x10" 10
if [ ! -s "$data-huge/E2BENCH.2025-10-01-00.huge.gz" ]; then
  mkdir -p "$data-huge"
  # shellcheck disable=SC2046
  cat $(ls "$data"/*.gz | head -10) > "$data-huge/E2BENCH.2025-10-01-00.huge.gz"
fi
out=bench/out/memory
mkdir -p "$out"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
echo "| set | defaults: time, peak RSS | --low-memory: time, peak RSS |"
echo "|---|---|---|"
run() { # lake source flags… → "time s, RSS MiB"
  local lake=$1 src=$2
  shift 2
  /usr/bin/time -f "%e %M" "$em" ingest --quiet --source "$src" --lake "$lake" "$@" 2>&1 >/dev/null \
    | tail -1 | awk '{printf "%.2f s, %d MiB", $1, $2 / 1024}'
}
late=()
for set in few-large many-small x10 huge; do
  case $set in
    few-large) src=$data ;;
    many-small) src=$data-split40 ;;
    x10) src=$data-x10 ;;
    huge) src=$data-huge ;;
  esac
  row="| $set |"
  for mode in "" --low-memory; do
    rm -rf "$out/lake"
    # shellcheck disable=SC2086
    row="$row $(run "$out/lake" "$src" $mode) |"
    if [ "$set" = few-large ]; then
      # shellcheck disable=SC2086
      late+=("$(run "$out/lake" "$data-late" --since 2025-10-01 $mode)")
    fi
  done
  echo "$row"
  if [ "$set" = few-large ]; then
    echo "| late-1pct (into the few-large lake) | ${late[0]} | ${late[1]} |"
  fi
done
rm -rf "$out/lake"
