"""An independent evaluation of meters over raw CloudFront standard log
files: DuckDB reads the tab-separated lines under each file's `#Fields:`
header and applies the meters of a plans file as the README defines them,
nothing of edgemeter's.

    meter_values.py PLANS QUERIES FILE...

PLANS is a plans.toml: its `[meters.*]`, `[billing] billable` and the raw
keys of its `[[customers]]`. QUERIES is a JSON list of queries:

    {"from": "2025-11-01T00:00:00", "to": "2025-12-01T00:00:00",
     "tz": "Europe/Berlin", "by": "day", "per": "key", "meters": ["requests"]}

`from`/`to` are wall-clock times in `tz` (null: open), the range half-open;
`by` is null, "hour", "day" or "month" (windows in `tz`); `per` is "key" or
"customer". Prints a JSON list, one per query, of rows:

    {"window_start": "2025-11-01T00:00:00+01:00" or null,
     "customer_id": ... or null, "api_key_id": ... or null,
     "api_key_hint": ... or null, "values": {slug: "123" or "1.25" or null}}

Per key, every key with a request in the range has a row (keyless requests
one row with a null id); per customer, a customer's keys share its row and
keys of no customer keep a row each (customer_id null). Values are exact
decimals: count, sum and unique_count of no rows are 0; max, min and avg of
no rows are null.

The rules, as documented:
  * the key is the `api_key` query parameter; its id the hex SHA-256 of the
    raw key, its hint the last 4 characters of a key of 16 or more;
  * the endpoint template replaces path segments that are all digits, UUIDs
    (8-4-4-4-12 hex), 16 or more hex digits with a digit among them, or 20
    or more of [A-Za-z0-9_-] mixing digits and letters, with `{id}`;
  * an endpoint glob's `*` matches within a segment, `**` across segments;
  * host is x-host-header, or cs(Host) when that is `-`, compared without
    regard to case; edge matches prefixes of x-edge-location;
  * status takes classes (2xx), ranges (200-299) and codes (206), comma
    separated; lists are OR, fields AND.
"""

import gzip
import json
import re
import sys
import tomllib
from decimal import Decimal
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb

# Columns read as numbers (the rest are text, `-` read as null).
NUMERIC = {
    "sc_bytes": "BIGINT",
    "cs_bytes": "BIGINT",
    "sc_status": "INTEGER",
    "c_port": "INTEGER",
    "sc_content_len": "BIGINT",
    "sc_range_start": "BIGINT",
    "sc_range_end": "BIGINT",
    "fle_encrypted_fields": "INTEGER",
    # Logged to the millisecond: exact as decimals.
    "time_taken": "DECIMAL(18,3)",
    "time_to_first_byte": "DECIMAL(18,3)",
}

BUILTIN = {
    "requests": {"aggregation": "count"},
    "billable_requests": {"aggregation": "count"},  # status filled in from [billing]
    "bytes_out": {"aggregation": "sum", "value": "sc_bytes"},
    "bytes_in": {"aggregation": "sum", "value": "cs_bytes"},
}


def fields_of(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        for line in f:
            if line.startswith("#Fields:"):
                return [
                    n.replace("(", "_").replace(")", "").replace("-", "_").lower()
                    for n in line[len("#Fields:"):].split()
                ]
    raise SystemExit(f"{path}: no #Fields: header")


def load(con, files):
    parts = []
    for i, path in enumerate(files):
        names = fields_of(path)
        columns = {n: "VARCHAR" for n in names + ["trailing_field"]}
        con.execute(
            f"CREATE TABLE file{i} AS SELECT * FROM read_csv(?, delim='\t', header=false, "
            f"auto_detect=false, strict_mode=false, comment='#', quote='', escape='', "
            f"null_padding=true, columns={json.dumps(columns)})",
            [path],
        )
        parts.append(f"SELECT * EXCLUDE (trailing_field) FROM file{i}")
    con.execute(f"CREATE TABLE lines AS {' UNION ALL BY NAME '.join(parts)}")
    names = [r[0] for r in con.execute("DESCRIBE lines").fetchall()]
    typed = []
    for n in names:
        if n in ("date", "time"):
            continue
        if n in NUMERIC:
            typed.append(f"CAST(nullif({n}, '-') AS {NUMERIC[n]}) AS {n}")
        else:
            typed.append(f"nullif({n}, '-') AS {n}")
    segment_is_id = (
        "regexp_full_match(s, '[0-9]+') "
        "OR regexp_full_match(s, '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}') "
        "OR (length(s) >= 16 AND regexp_full_match(s, '[0-9a-fA-F]+') AND regexp_matches(s, '[0-9]')) "
        "OR (length(s) >= 20 AND regexp_full_match(s, '[A-Za-z0-9_-]+') "
        "AND regexp_matches(s, '[0-9]') AND regexp_matches(s, '[A-Za-z]'))"
    )
    con.execute(
        "CREATE TABLE requests AS SELECT "
        "CAST(date || ' ' || time AS TIMESTAMP) AS ts, "
        f"{', '.join(typed)}, "
        "nullif(regexp_extract(cs_uri_query, '(^|&)api_key=([^&]*)', 2), '') AS raw_key, "
        "array_to_string(list_transform(string_split(cs_uri_stem, '/'), "
        f"lambda s: CASE WHEN {segment_is_id} THEN '{{id}}' ELSE s END), '/') AS endpoint, "
        "lower(coalesce(nullif(x_host_header, '-'), nullif(cs_host, '-'))) AS host "
        "FROM lines"
    )


def glob_regex(glob):
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out += ".*"
            i += 2
        elif glob[i] == "*":
            out += "[^/]*"
            i += 1
        else:
            out += re.escape(glob[i])
            i += 1
    return out


def status_ranges(text):
    ranges = []
    for part in (p.strip() for p in text.split(",")):
        if part.endswith("xx"):
            c = int(part[:-2])
            ranges.append((c * 100, c * 100 + 99))
        elif "-" in part:
            lo, hi = part.split("-")
            ranges.append((int(lo), int(hi)))
        else:
            ranges.append((int(part), int(part)))
    return ranges


def as_list(v):
    return [v] if isinstance(v, str) else list(v)


def condition(filt, params):
    """The filter as a DuckDB condition; values appended to params."""

    def bind(v):
        params.append(v)
        return "?"

    all_of = []

    def any_of(parts):
        if parts:
            all_of.append("(" + " OR ".join(parts) + ")")

    any_of([f"regexp_full_match(endpoint, {bind(glob_regex(g))})" for g in as_list(filt.get("endpoint", []))])
    any_of([f"cs_method = {bind(m)}" for m in as_list(filt.get("method", []))])
    if "status" in filt:
        any_of(
            [f"sc_status BETWEEN {bind(lo)} AND {bind(hi)}" for lo, hi in status_ranges(filt["status"])]
        )
    any_of([f"host = {bind(h.lower())}" for h in as_list(filt.get("host", []))])
    any_of([f"starts_with(x_edge_location, {bind(e)})" for e in as_list(filt.get("edge", []))])
    any_of([f"x_edge_result_type = {bind(r)}" for r in as_list(filt.get("result_type", []))])
    any_of([f"cs_protocol = {bind(p)}" for p in as_list(filt.get("protocol", []))])
    any_of([f"sc_content_type = {bind(c)}" for c in as_list(filt.get("content_type", []))])
    return " AND ".join(all_of) if all_of else "TRUE"


def measure(meter, cond):
    agg = meter["aggregation"]
    v = meter.get("value")
    return {
        "count": f"count(*) FILTER (WHERE {cond})",
        "sum": f"coalesce(sum({v}) FILTER (WHERE {cond}), 0)",
        "unique_count": f"count(DISTINCT {v}) FILTER (WHERE {cond})",
        "max": f"max({v}) FILTER (WHERE {cond})",
        "min": f"min({v}) FILTER (WHERE {cond})",
        # Exact: the sum divided by the count in Python's decimals, not a float average.
        "avg": f"struct_pack(total := sum({v}) FILTER (WHERE {cond}), n := count({v}) FILTER (WHERE {cond}))",
    }[agg]


def utc_naive(local, tz):
    if local is None:
        return None
    at = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz))
    return at.astimezone(timezone.utc).replace(tzinfo=None)


def window_of(hour_utc, unit, tz):
    """The start of the window holding an hour, as RFC 3339 in `tz`."""
    local = hour_utc.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz))
    if local.utcoffset() % timedelta(hours=1):
        raise SystemExit(f"{tz}: windows are computed per UTC hour, so the offset must be whole hours")
    if unit in ("day", "month"):
        local = local.replace(hour=0)
    if unit == "month":
        local = local.replace(day=1)
    # Re-resolve the offset at the window's start (it may differ across DST).
    start = datetime(local.year, local.month, local.day, local.hour, tzinfo=ZoneInfo(tz))
    return start.isoformat()


def text(value):
    if isinstance(value, dict):
        value = None if value["n"] == 0 else Decimal(value["total"]) / value["n"]
    if value is None:
        return None
    if isinstance(value, float):
        raise SystemExit("a float value: every aggregate here is exact")
    s = str(value)
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def evaluate(con, plans, query):
    billable = plans.get("billing", {}).get("billable", "2xx")
    defined = dict(plans.get("meters", {}))
    for slug, meter in BUILTIN.items():
        defined[slug] = dict(meter)
    defined["billable_requests"]["filter"] = {"status": billable}
    tz = query.get("tz") or "UTC"
    lo, hi = utc_naive(query.get("from"), tz), utc_naive(query.get("to"), tz)

    owners = {}
    for c in plans.get("customers", []):
        for key in c.get("keys", []):
            owners[key] = c["id"]
    con.execute("CREATE OR REPLACE TABLE owners (raw_key VARCHAR, customer_id VARCHAR)")
    if owners:
        con.executemany("INSERT INTO owners VALUES (?, ?)", list(owners.items()))

    con.execute("CREATE OR REPLACE TABLE windows (hour TIMESTAMP, window_start VARCHAR)")
    if query.get("by"):
        hours = [r[0] for r in con.execute("SELECT DISTINCT date_trunc('hour', ts) FROM requests").fetchall()]
        con.executemany(
            "INSERT INTO windows VALUES (?, ?)",
            [(h, window_of(h, query["by"], tz)) for h in hours],
        )

    params = []
    selects = []
    for slug in query["meters"]:
        meter = defined[slug]
        selects.append(measure(meter, condition(meter.get("filter", {}), params)))
    if query["per"] == "key":
        who = "NULL AS customer_id, CASE WHEN r.raw_key IS NOT NULL THEN sha256(r.raw_key) END AS api_key_id"
        hint = "max(CASE WHEN length(r.raw_key) >= 16 THEN right(r.raw_key, 4) END)"
    else:
        who = (
            "o.customer_id AS customer_id, "
            "CASE WHEN o.customer_id IS NULL AND r.raw_key IS NOT NULL THEN sha256(r.raw_key) END AS api_key_id"
        )
        hint = "NULL"
    window = "w.window_start" if query.get("by") else "NULL"
    sql = (
        f"SELECT {window} AS window_start, {who}, {hint}, {', '.join(selects)} "
        "FROM requests r LEFT JOIN owners o ON r.raw_key = o.raw_key "
        "LEFT JOIN windows w ON w.hour = date_trunc('hour', r.ts) "
        "WHERE (CAST(? AS TIMESTAMP) IS NULL OR r.ts >= CAST(? AS TIMESTAMP)) "
        "AND (CAST(? AS TIMESTAMP) IS NULL OR r.ts < CAST(? AS TIMESTAMP)) "
        "GROUP BY ALL"
    )
    rows = con.execute(sql, params + [lo, lo, hi, hi]).fetchall()
    out = []
    for row in rows:
        out.append(
            {
                "window_start": row[0],
                "customer_id": row[1],
                "api_key_id": row[2],
                "api_key_hint": row[3],
                "values": {slug: text(v) for slug, v in zip(query["meters"], row[4:])},
            }
        )
    return out


def main():
    with open(sys.argv[1], "rb") as f:
        plans = tomllib.load(f)
    queries = json.loads(sys.argv[2])
    con = duckdb.connect()
    load(con, sys.argv[3:])
    print(json.dumps([evaluate(con, plans, q) for q in queries]))


if __name__ == "__main__":
    main()
