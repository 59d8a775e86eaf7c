"""An independent count of usage from raw CloudFront standard log files:
DuckDB reads the tab-separated lines (gzip or plain) under each file's
`#Fields:` header, nothing of edgemeter's.

    raw_usage.py RANGES FILE...

RANGES is a JSON list of [from, to] pairs, naive UTC instants
("2025-10-05 09:30:00") or null for an open end; the half-open range
from <= date+time < to counts. Prints a JSON list, one object per range, of
CSV texts laid out as edgemeter's named queries of the same name:

    usage_by_key         api_key_id, api_key_hint, requests, billable_requests,
                         client_errors, server_errors, bytes_out, bytes_in
    usage_by_key_status  api_key_id, sc_status, requests, bytes_out, bytes_in
    top_keys             api_key_id, api_key_hint, billable_requests, requests,
                         bytes_out (every key, no limit)
    daily_series         day, requests, billable_requests, client_errors,
                         server_errors, keys, bytes_out
    error_rates          api_key_id, requests, client_errors, server_errors,
                         throttled (429), and the three as fractions of
                         requests rounded to 4 places
    usage_by_key_window  window_start (UTC hours, "2025-10-05T09:00:00+00:00"),
                         api_key_id, api_key_hint, requests, billable_requests,
                         client_errors, server_errors, bytes_out, bytes_in

The API key is the `api_key` query parameter (the fixtures carry no key in a
header, cookie or log data); its id is the lowercase hex SHA-256 of the raw
key, its hint the last 4 characters of a key of 16 or more. Billable means
200 <= status < 300, client errors 400 <= status < 500, server errors
500 <= status < 600 (status 000, a viewer that hung up, is none of them).
"""

import gzip
import json
import sys

import duckdb


def fields_of(path):
    """The column names of a file's `#Fields:` header, as edgemeter's lake
    names them (`cs(Host)` -> `cs_host`, `x-edge-location` -> `x_edge_location`)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        for line in f:
            if line.startswith("#Fields:"):
                names = line[len("#Fields:"):].split()
                return [
                    n.replace("(", "_").replace(")", "").replace("-", "_").lower()
                    for n in names
                ]
    raise SystemExit(f"{path}: no #Fields: header")


def raw_requests(con, files):
    parts = []
    for i, path in enumerate(files):
        names = fields_of(path)
        # One more column: a line may end in a tab (an empty last field).
        columns = {n: "VARCHAR" for n in names + ["trailing"]}
        con.execute(
            f"CREATE TABLE file{i} AS SELECT * FROM read_csv(?, delim='\t', header=false, "
            f"auto_detect=false, strict_mode=false, comment='#', quote='', escape='', null_padding=true, "
            f"columns={json.dumps(columns)})",
            [path],
        )
        parts.append(
            f"SELECT date, time, cs_uri_query, sc_status, sc_bytes, cs_bytes FROM file{i}"
        )
    con.execute(
        "CREATE VIEW raw AS SELECT "
        "CAST(date || ' ' || time AS TIMESTAMP) AS ts, "
        "nullif(regexp_extract(cs_uri_query, '(^|&)api_key=([^&]*)', 2), '') AS raw_key, "
        "CAST(nullif(sc_status, '-') AS INTEGER) AS status, "
        "coalesce(CAST(nullif(sc_bytes, '-') AS BIGINT), 0) AS bytes_out, "
        "coalesce(CAST(nullif(cs_bytes, '-') AS BIGINT), 0) AS bytes_in "
        f"FROM ({' UNION ALL '.join(parts)})"
    )
    con.execute(
        "CREATE VIEW keyed AS SELECT *, "
        "CASE WHEN raw_key IS NOT NULL THEN sha256(raw_key) END AS key_id, "
        "CASE WHEN length(raw_key) >= 16 THEN right(raw_key, 4) END AS hint, "
        "(status >= 200 AND status < 300) AS billable, "
        "(status >= 400 AND status < 500) AS client_error, "
        "(status >= 500 AND status < 600) AS server_error "
        "FROM raw"
    )


def csv(con, header, sql, params):
    rows = con.execute(sql, params).fetchall()
    text = header + "\n"
    for row in rows:
        text += ",".join("" if v is None else str(v) for v in row) + "\n"
    return text


def figures(con, lo, hi):
    where = "WHERE (? IS NULL OR ts >= CAST(? AS TIMESTAMP)) AND (? IS NULL OR ts < CAST(? AS TIMESTAMP))"
    p = [lo, lo, hi, hi]
    count = lambda cond: f"CAST(count(*) FILTER (WHERE {cond}) AS BIGINT)"
    return {
        "usage_by_key": csv(
            con,
            "api_key_id,api_key_hint,requests,billable_requests,client_errors,server_errors,bytes_out,bytes_in",
            f"SELECT key_id, max(hint), count(*), {count('billable')}, {count('client_error')}, "
            f"{count('server_error')}, sum(bytes_out), sum(bytes_in) FROM keyed {where} "
            "GROUP BY key_id ORDER BY key_id NULLS LAST",
            p,
        ),
        "usage_by_key_status": csv(
            con,
            "api_key_id,sc_status,requests,bytes_out,bytes_in",
            f"SELECT key_id, status, count(*), sum(bytes_out), sum(bytes_in) FROM keyed {where} "
            "GROUP BY key_id, status ORDER BY key_id NULLS LAST, status NULLS LAST",
            p,
        ),
        "top_keys": csv(
            con,
            "api_key_id,api_key_hint,billable_requests,requests,bytes_out",
            f"SELECT key_id, max(hint), {count('billable')} AS b, count(*), sum(bytes_out) "
            f"FROM keyed {where} AND key_id IS NOT NULL GROUP BY key_id ORDER BY b DESC, key_id",
            p,
        ),
        "daily_series": csv(
            con,
            "day,requests,billable_requests,client_errors,server_errors,keys,bytes_out",
            f"SELECT strftime(ts, '%Y-%m-%d') AS day, count(*), {count('billable')}, "
            f"{count('client_error')}, {count('server_error')}, count(DISTINCT key_id), "
            f"sum(bytes_out) FROM keyed {where} GROUP BY day ORDER BY day",
            p,
        ),
        "error_rates": csv(
            con,
            "api_key_id,requests,client_errors,server_errors,throttled,client_error_rate,"
            "server_error_rate,throttle_rate",
            f"SELECT key_id, count(*), {count('client_error')}, {count('server_error')}, "
            f"{count('status = 429')}, "
            f"round(CAST({count('client_error')} AS DOUBLE) / count(*), 4), "
            f"round(CAST({count('server_error')} AS DOUBLE) / count(*), 4), "
            f"round(CAST({count('status = 429')} AS DOUBLE) / count(*), 4) "
            f"FROM keyed {where} GROUP BY key_id ORDER BY key_id NULLS LAST",
            p,
        ),
        "usage_by_key_window": csv(
            con,
            "window_start,api_key_id,api_key_hint,requests,billable_requests,client_errors,"
            "server_errors,bytes_out,bytes_in",
            "SELECT strftime(date_trunc('hour', ts), '%Y-%m-%dT%H:00:00+00:00') AS w, key_id, "
            f"max(hint), count(*), {count('billable')}, {count('client_error')}, "
            f"{count('server_error')}, sum(bytes_out), sum(bytes_in) FROM keyed {where} "
            "GROUP BY w, key_id ORDER BY w, key_id NULLS LAST",
            p,
        ),
    }


def main():
    ranges = json.loads(sys.argv[1])
    con = duckdb.connect()
    raw_requests(con, sys.argv[2:])
    print(json.dumps([figures(con, lo, hi) for lo, hi in ranges]))


if __name__ == "__main__":
    main()
