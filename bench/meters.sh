#!/usr/bin/env bash
# Meters over the benchmark lake: a month of 6 meters of bench/plans.toml,
# the same by UTC day, 4 of them that the usage_hourly rollup can answer, and
# those 4 again as their `_raw` twins (a result-type filter the rollup does
# not keep), each timed by hyperfine; then the rollup's size against the raw
# table's. A lake whose meters are kept per day (`maintain --plans
# bench/plans.toml`, or ingest runs with it) answers all of them from
# `meters_daily`; one without, from the rollup and raw rows.
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
  -n six-by-day "$em usage --lake $lake --plans $plans $range --by day --format csv $six" \
  -n four-rollup "$em usage --lake $lake --plans $plans $range --format csv $four" \
  -n four-raw "$em usage --lake $lake --plans $plans $range --format csv $four_raw"
# DuckDB over the same `requests` files (bench/duckdb_meters.py), the six
# meters per key; both sides print a digest of their values.
duck=bench/venv/bin/python
six_slugs="search_calls user_bytes frankfurt_calls item_posts active_clients cache_misses"
hyperfine --style basic --runs 3 --export-json "$out/meters-duckdb.json" \
  -n duckdb-six "$duck bench/duckdb_meters.py $lake $plans 2025-10-01 2025-11-01 $six_slugs"
digest() {
  python3 -c 'import csv, hashlib, sys
rows = [[r[0]] + r[2:] for r in list(csv.reader(sys.stdin))[1:]]
d = hashlib.sha256("\n".join(",".join(r) for r in rows).encode()).hexdigest()
print(f"{len(rows)} rows, values {d[:16]}")'
}
echo "edgemeter: $($em usage --lake "$lake" --plans $plans $range --format csv $six | digest)"
echo "duckdb:    $($duck bench/duckdb_meters.py "$lake" $plans 2025-10-01 2025-11-01 $six_slugs)"
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
kept_files=0
if [ -d "$lake/meters_daily/_delta_log" ]; then
  read -r _ kept_files < <(live_bytes meters_daily)
fi
echo "meters_daily: $kept_files files (days kept for some meters' definitions)"
req_rows=$(rows requests)
roll_rows=$(rows usage_hourly)
echo "requests: $req_rows rows, $req_bytes bytes of Parquet in $req_files files"
echo "usage_hourly: $roll_rows rows, $roll_bytes bytes of Parquet in $roll_files files"
python3 - "$out/meters.json" "$req_rows" "$req_bytes" "$roll_rows" "$roll_bytes" "$out/meters-duckdb.json" <<'PY'
import json, sys
path, req_rows, req_bytes, roll_rows, roll_bytes, duck = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(path))["results"]}
d = json.load(open(duck))["results"][0]
print()
print("| job | edgemeter (mean of 5) |")
print("|---|---|")
print(f"| a month of 6 meters | {r['six']['mean']:.3f} s ± {r['six']['stddev']:.3f} |")
print(f"| the same by UTC day | {r['six-by-day']['mean']:.3f} s ± {r['six-by-day']['stddev']:.3f} |")
print(f"| DuckDB: the 6 meters over the same requests files (3 runs) | {d['mean']:.3f} s ± {d['stddev']:.3f} ({d['mean'] / r['six']['mean']:.1f}x edgemeter's time) |")
print(f"| the 4 meters the rollup can answer | {r['four-rollup']['mean']:.3f} s ± {r['four-rollup']['stddev']:.3f} |")
print(f"| their 4 twins filtered on the result type | {r['four-raw']['mean']:.3f} s ± {r['four-raw']['stddev']:.3f} |")
print(f"| usage_hourly against requests: rows | {int(roll_rows):,} / {int(req_rows):,} ({int(roll_rows) / int(req_rows):.2f}) |")
print(f"| usage_hourly against requests: Parquet bytes | {int(roll_bytes):,} / {int(req_bytes):,} ({int(roll_bytes) / int(req_bytes):.3f}) |")
PY
