"""DuckDB evaluating meters of a plans file over edgemeter's `requests`
files, for the benchmark: the same Parquet files edgemeter reads (the live
files of the table's Delta log), per key, over [FROM, TO) in UTC.

    duckdb_meters.py LAKE PLANS FROM TO METER...

Filters and aggregations are those of tests/readers/meter_values.py (the
tests' independent evaluation); the endpoint template is computed from
`cs_uri_stem` as that reader does. Prints the number of rows and a digest
of the values, so that a run can be checked against edgemeter's output.
"""
import hashlib
import json
import os
import sys
import tomllib

import duckdb

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "readers"))
from meter_values import condition, measure  # noqa: E402

SEGMENT_IS_ID = (
    "regexp_full_match(s, '[0-9]+') "
    "OR regexp_full_match(s, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}') "
    "OR (length(s) >= 16 AND regexp_full_match(s, '[0-9a-fA-F]+') AND regexp_matches(s, '[0-9]')) "
    "OR (length(s) >= 20 AND regexp_full_match(s, '[A-Za-z0-9_-]+') "
    "AND regexp_matches(s, '[0-9]') AND regexp_matches(s, '[A-Za-z]'))"
)


def live_files(table):
    """The data files of a Delta table's current version, from its log's
    JSON commits (the benchmark's lakes are read without checkpoints'
    help: every commit is still there)."""
    log = os.path.join(table, "_delta_log")
    live = set()
    for name in sorted(os.listdir(log)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(log, name)) as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    live.add(action["add"]["path"])
                elif "remove" in action:
                    live.discard(action["remove"]["path"])
    return sorted(os.path.join(table, p) for p in live)


def main():
    lake, plans_path, start, end, *slugs = sys.argv[1:]
    with open(plans_path, "rb") as f:
        plans = tomllib.load(f)
    meters = plans.get("meters", {})
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET TimeZone = 'UTC'")
    files = live_files(os.path.join(lake, "requests"))
    con.execute(
        "CREATE VIEW requests AS SELECT *, "
        "array_to_string(list_transform(string_split(cs_uri_stem, '/'), "
        f"lambda s: CASE WHEN {SEGMENT_IS_ID} THEN '{{id}}' ELSE s END), '/') AS endpoint, "
        "lower(coalesce(x_host_header, cs_host)) AS host "
        f"FROM read_parquet({files!r})"
    )
    params = []
    selects = [measure(meters[s], condition(meters[s].get("filter", {}), params)) for s in slugs]
    rows = con.execute(
        f"SELECT api_key_id, {', '.join(selects)} FROM requests "
        "WHERE \"timestamp\" >= CAST(? AS TIMESTAMPTZ) AND \"timestamp\" < CAST(? AS TIMESTAMPTZ) "
        "GROUP BY api_key_id ORDER BY api_key_id NULLS LAST",
        params + [start, end],
    ).fetchall()
    digest = hashlib.sha256(
        "\n".join(",".join("" if v is None else str(v) for v in row) for row in rows).encode()
    ).hexdigest()
    print(f"{len(rows)} rows, values {digest[:16]}")


if __name__ == "__main__":
    main()
