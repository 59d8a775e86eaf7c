#!/usr/bin/env bash
# Opening a table with a long history: a lake whose `requests` table has N
# commits (one small object per batch, so one commit each; default 10,000),
# then the time of a command that opens every table (`usage`) against the same
# data in a lake of one commit. With a checkpoint every 100 commits, opening
# reads one checkpoint and fewer than 100 commits, so the two should be close.
#   bench/commits.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
out=bench/out/commits
em=${CARGO_TARGET_DIR:-target}/release/edgemeter
cargo build --release --quiet --bin edgemeter
rm -rf "$out" && mkdir -p "$out/logs"
python3 - "$out/logs" "$n" <<'PY'
import gzip, sys
out, n = sys.argv[1], int(sys.argv[2])
header = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken\n"
for i in range(n):
    day, hour = 1 + (i // 24) % 28, i % 24
    line = f"2025-10-{day:02d}\t{hour:02d}:00:{i % 60:02d}\tSFO53-P9\t100\t1.2.3.4\tGET\td.cloudfront.net\t/v1/x\t200\t-\tcurl/8\tapi_key=k{i % 7}\t-\tMiss\tid{i}\td.cloudfront.net\thttps\t50\t0.01\n"
    with gzip.open(f"{out}/E2COMMITS.2025-10-{day:02d}-{hour:02d}.{i:05d}.gz", "wt") as f:
        f.write(header + line)
PY
# Each object is its own batch: one commit to each table per object.
start=$(date +%s)
$em ingest --quiet --source "$out/logs" --lake "$out/lake" --batch-bytes 1
echo "$n objects ingested one batch each in $(( $(date +%s) - start )) s"
$em ingest --quiet --source "$out/logs" --lake "$out/lake-one"
ls "$out/lake/requests/_delta_log" | grep -c '\.json$' | xargs echo "requests commits:"
ls "$out/lake/requests/_delta_log" | grep -c 'checkpoint' | xargs echo "requests checkpoints:"
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
hyperfine --style basic --warmup 1 --runs 10 \
  -n "usage, $n commits" "$em usage --lake $out/lake --format csv" \
  -n "usage, 1 commit" "$em usage --lake $out/lake-one --format csv"
