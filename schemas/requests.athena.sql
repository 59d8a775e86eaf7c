-- Athena / AWS Glue table over the edgemeter lake's `requests` files.
-- Replace the LOCATION with your lake (s3://bucket/prefix/requests/). Partitions
-- are found by partition projection, so no MSCK REPAIR is needed as hours arrive.
-- A partition directory can briefly hold two generations of the same rows after
-- a crashed ingest (the next run deletes the older one); edgemeter's own readers
-- see only the newest generation.
CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter_requests (
  `timestamp` timestamp,
  `api_key_id` string,
  `api_key_hint` string,
  `x_edge_location` string,
  `sc_bytes` bigint,
  `c_ip` string,
  `cs_method` string,
  `cs_host` string,
  `cs_uri_stem` string,
  `sc_status` smallint,
  `cs_referer` string,
  `cs_user_agent` string,
  `cs_uri_query` string,
  `cs_cookie` string,
  `x_edge_result_type` string,
  `x_edge_request_id` string,
  `x_host_header` string,
  `cs_protocol` string,
  `cs_bytes` bigint,
  `time_taken` double,
  `x_forwarded_for` string,
  `ssl_protocol` string,
  `ssl_cipher` string,
  `x_edge_response_result_type` string,
  `cs_protocol_version` string,
  `fle_status` string,
  `fle_encrypted_fields` int,
  `c_port` int,
  `time_to_first_byte` double,
  `x_edge_detailed_result_type` string,
  `sc_content_type` string,
  `sc_content_len` bigint,
  `sc_range_start` bigint,
  `sc_range_end` bigint,
  `origin_fbl` double,
  `origin_lbl` double,
  `c_country` string,
  `asn` bigint,
  `cache_behavior_path_pattern` string,
  `viewer_request_log_data` string,
  `s_ip` string,
  `c_ip_version` string,
  `cs_accept_encoding` string,
  `cs_accept` string,
  `cs_headers` string,
  `cs_header_names` string,
  `cs_headers_count` int,
  `primary_distribution_id` string,
  `primary_distribution_dns_name` string,
  `source_object` string,
  `source_line` bigint
)
PARTITIONED BY (
  `dt` string,
  `hour` string
)
STORED AS PARQUET
LOCATION 's3://YOUR-LAKE-BUCKET/lake/requests/'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2008-01-01,NOW',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'storage.location.template' = 's3://YOUR-LAKE-BUCKET/lake/requests/dt=${dt}/hour=${hour}/'
);
