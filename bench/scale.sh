#!/usr/bin/env bash
# Makes an N× copy of a generated set for the memory check: each copy shifts the
# dates by two days per copy (rows land in new hours, nothing de-duplicates away).
#   bench/scale.sh SRC_DIR OUT_DIR N
set -euo pipefail
src=$1 out=$2 n=$3
mkdir -p "$out"
for f in "$src"/*.gz; do
  for ((k = 0; k < n; k++)); do
    echo "$f $k"
  done
done | xargs -P "$(nproc)" -n 2 sh -c '
  f=$1 k=$2 name=$(basename "$1")
  d1=$(printf "%02d" $((2 * k + 1))) d2=$(printf "%02d" $((2 * k + 2)))
  new=$(echo "$name" | sed "s/2025-10-01/2025-10-$d1/; s/2025-10-02/2025-10-$d2/")
  [ -s "'"$out"'/$new" ] || gzip -dc "$f" | sed "s/^2025-10-01/2025-10-$d1/; s/^2025-10-02/2025-10-$d2/" | gzip -1 > "'"$out"'/$new"
' sh
