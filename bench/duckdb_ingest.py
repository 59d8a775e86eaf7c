"""DuckDB doing edgemeter's jobs on the same files, for the benchmark.

  duckdb_ingest.py ingest SRC_DIR OUT_DIR   every field typed, '-' as NULL, the
      SHA-256 of the twice-decoded key, Hive-partitioned zstd Parquet by (dt, hour)
  duckdb_ingest.py append SRC_DIR OUT_DIR   the same, adding files to OUT_DIR's partitions
  duckdb_ingest.py aggregate SRC_DIR        per-key totals straight from the gz files
  duckdb_ingest.py usage LAKE FROM TO       per-key totals over edgemeter's lake

The columns are declared (auto_detect off): DuckDB's CSV sniffer is very slow on
many gzip files and would be measured instead of the job.
"""
import sys

import duckdb

COLUMNS = [
    ("date", "DATE"), ("time", "TIME"), ("x_edge_location", "VARCHAR"), ("sc_bytes", "BIGINT"),
    ("c_ip", "VARCHAR"), ("cs_method", "VARCHAR"), ("cs_host", "VARCHAR"), ("cs_uri_stem", "VARCHAR"),
    ("sc_status", "SMALLINT"), ("cs_referer", "VARCHAR"), ("cs_user_agent", "VARCHAR"),
    ("cs_uri_query", "VARCHAR"), ("cs_cookie", "VARCHAR"), ("x_edge_result_type", "VARCHAR"),
    ("x_edge_request_id", "VARCHAR"), ("x_host_header", "VARCHAR"), ("cs_protocol", "VARCHAR"),
    ("cs_bytes", "BIGINT"), ("time_taken", "DOUBLE"), ("x_forwarded_for", "VARCHAR"),
    ("ssl_protocol", "VARCHAR"), ("ssl_cipher", "VARCHAR"), ("x_edge_response_result_type", "VARCHAR"),
    ("cs_protocol_version", "VARCHAR"), ("fle_status", "VARCHAR"), ("fle_encrypted_fields", "VARCHAR"),
    ("c_port", "INTEGER"), ("time_to_first_byte", "DOUBLE"), ("x_edge_detailed_result_type", "VARCHAR"),
    ("sc_content_type", "VARCHAR"), ("sc_content_len", "BIGINT"), ("sc_range_start", "BIGINT"),
    ("sc_range_end", "BIGINT"),
]
KEY = "sha256(url_decode(url_decode(regexp_extract(cs_uri_query, '(?:^|&)api_key=([^&]*)', 1))))"


def logs(src):
    columns = "{" + ", ".join(f"'{n}': '{t}'" for n, t in COLUMNS) + "}"
    return (f"read_csv('{src}/*.gz', delim='\\t', comment='#', header=false, nullstr='-', "
            f"auto_detect=false, quote='', escape='', columns={columns})")


def main():
    con = duckdb.connect()
    con.execute("SET threads = 2")
    mode = sys.argv[1]
    if mode in ("ingest", "append"):
        src, out = sys.argv[2], sys.argv[3]
        # append: new files beside the partitions' existing ones (late logs).
        write_mode = "OVERWRITE_OR_IGNORE" if mode == "ingest" else "APPEND"
        con.execute(f"""
        COPY (
          SELECT * EXCLUDE (date, time),
            CAST(date + time AS TIMESTAMP) AS "timestamp",
            CASE WHEN cs_uri_query LIKE '%api_key=%' THEN {KEY} END AS api_key_id,
            strftime(date, '%Y-%m-%d') AS dt, lpad(CAST(hour(time) AS VARCHAR), 2, '0') AS hour
          FROM {logs(src)}
        ) TO '{out}' (FORMAT parquet, PARTITION_BY (dt, hour), COMPRESSION zstd, {write_mode})
        """)
    elif mode == "aggregate":
        rows = con.execute(f"""
          SELECT CASE WHEN cs_uri_query LIKE '%api_key=%' THEN {KEY} END AS api_key_id,
            count(*), count(*) FILTER (WHERE sc_status BETWEEN 200 AND 299), sum(sc_bytes)
          FROM {logs(sys.argv[2])} GROUP BY 1
        """).fetchall()
        print(f"{len(rows)} keys")
    elif mode == "usage":
        lake, start, end = sys.argv[2], sys.argv[3], sys.argv[4]
        rows = con.execute(f"""
          SELECT api_key_id, count(*) AS requests,
            count(*) FILTER (WHERE sc_status BETWEEN 200 AND 299) AS billable,
            sum(sc_bytes) AS bytes_out
          FROM read_parquet('{lake}/requests/*/*/*.parquet', hive_partitioning=true)
          WHERE "timestamp" >= TIMESTAMPTZ '{start}' AND "timestamp" < TIMESTAMPTZ '{end}'
          GROUP BY 1 ORDER BY 1
        """).fetchall()
        print(f"{len(rows)} keys")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
