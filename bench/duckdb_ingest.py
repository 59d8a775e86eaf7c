"""DuckDB doing edgemeter's ingest job: every field typed, '-' as NULL, the
SHA-256 of the decoded key, Hive-partitioned zstd Parquet by (dt, hour)."""
import sys

import duckdb

src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute(f"""
COPY (
  SELECT *,
    CAST(date AS VARCHAR) AS dt,
    substr(CAST(time AS VARCHAR), 1, 2) AS hour,
    sha256(url_decode(url_decode(regexp_extract(cs_uri_query, '(?:^|&)api_key=([^&]*)', 1)))) AS api_key_id
  FROM read_csv('{src}/*.gz', delim='\\t', skip=2, header=false, nullstr='-',
    names=['date','time','x_edge_location','sc_bytes','c_ip','cs_method','cs_host','cs_uri_stem','sc_status',
           'cs_referer','cs_user_agent','cs_uri_query','cs_cookie','x_edge_result_type','x_edge_request_id',
           'x_host_header','cs_protocol','cs_bytes','time_taken','x_forwarded_for','ssl_protocol','ssl_cipher',
           'x_edge_response_result_type','cs_protocol_version','fle_status','fle_encrypted_fields','c_port',
           'time_to_first_byte','x_edge_detailed_result_type','sc_content_type','sc_content_len','sc_range_start',
           'sc_range_end'])
) TO '{out}' (FORMAT parquet, PARTITION_BY (dt, hour), COMPRESSION zstd, OVERWRITE_OR_IGNORE)
""")
