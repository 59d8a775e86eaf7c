#!/usr/bin/env bash
# Meters over the benchmark lake: a month of 6 meters of bench/plans.toml
# (4 answered by the usage_hourly rollup, 2 by raw rows), the 4 rollup meters
# alone, and the same 4 forced onto raw rows (their `_raw` twins), each timed
# by hyperfine; then the rollup's size against the raw table's.
#   bench/meters.sh LAKE [EDGEMETER]
set -euo pipefail
cd "$(dirname "$0")/.."
lake=$1
em=${2:-${CARGO_TARGET_DIR:-target}/release/edgemeter}
out=bench/out
mkdir -p "$out"
plans=bench/plans.toml
range="--from 2025-10-01 --to 2025-11-01"
m() { for s in "$@"; do printf -- ' --meter %s' "$s"; done; }
six=$(m search_calls user_bytes frankfurt_calls item_posts active_clients cache_misses)
four=$(m search_calls user_bytes frankfurt_calls item_posts)
four_raw=$(m search_calls_raw user_bytes_raw frankfurt_calls_raw item_posts_raw)
hyperfine --style basic --warmup 1 --runs 5 --export-json "$out/meters.json" \
  -n six "$em usage --lake $lake --plans $plans $range --format csv $six" \
  -n four-rollup "$em usage --lake $lake --plans $plans $range --format csv $four" \
  -n four-raw "$em usage --lake $lake --plans $plans $range --format csv $four_raw"
# The twins give the same values (every generated line is a Miss).
diff <($em usage --lake "$lake" --plans $plans $range --format csv $four) \
     <($em usage --lake "$lake" --plans $plans $range --format csv $four_raw | sed '1s/_raw//g') \
  && echo "rollup and raw meters agree"
rows() { $em query --lake "$lake" --format csv "SELECT count(*) AS n FROM $1" | tail -1 | tr -d '\r'; }
# Only files the tables' current versions hold count: sum their sizes from
# the Delta log's add actions, less those removed.
live_bytes() {
  python3 - "$lake/$1/_delta_log" <<'PY'
import json, os, sys
live = {}
for name in sorted(os.listdir(sys.argv[1])):
    if not name.endswith(".json"):
        continue
    for line in open(os.path.join(sys.argv[1], name)):
        action = json.loads(line)
        if "add" in action:
            live[action["add"]["path"]] = action["add"]["size"]
        elif "remove" in action:
            live.pop(action["remove"]["path"], None)
print(sum(live.values()), len(live))
PY
}
read -r req_bytes req_files < <(live_bytes requests)
read -r roll_bytes roll_files < <(live_bytes usage_hourly)
req_rows=$(rows requests)
roll_rows=$(rows usage_hourly)
echo "requests: $req_rows rows, $req_bytes bytes of Parquet in $req_files files"
echo "usage_hourly: $roll_rows rows, $roll_bytes bytes of Parquet in $roll_files files"
python3 - "$out/meters.json" "$req_rows" "$req_bytes" "$roll_rows" "$roll_bytes" <<'PY'
import json, sys
path, req_rows, req_bytes, roll_rows, roll_bytes = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(path))["results"]}
print()
print("| job | edgemeter (mean of 5) |")
print("|---|---|")
print(f"| a month of 6 meters (4 from the rollup, 2 from raw rows) | {r['six']['mean']:.3f} s ± {r['six']['stddev']:.3f} |")
print(f"| the 4 rollup meters alone | {r['four-rollup']['mean']:.3f} s ± {r['four-rollup']['stddev']:.3f} |")
print(f"| the same 4 meters from raw rows | {r['four-raw']['mean']:.3f} s ± {r['four-raw']['stddev']:.3f} |")
print(f"| usage_hourly against requests: rows | {int(roll_rows):,} / {int(req_rows):,} ({int(roll_rows) / int(req_rows):.2f}) |")
print(f"| usage_hourly against requests: Parquet bytes | {int(roll_bytes):,} / {int(req_bytes):,} ({int(roll_bytes) / int(req_bytes):.3f}) |")
PY
