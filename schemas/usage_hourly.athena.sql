-- Athena / AWS Glue table over the edgemeter lake's `usage_hourly` rollup files:
-- requests and bytes per UTC hour, `api_key_id` and `sc_status`. Summing these
-- reads one small file per hour instead of every request.
-- Replace the LOCATION with your lake (s3://bucket/prefix/usage_hourly/).
-- A partition directory can briefly hold two generations of the same hour after
-- a crashed ingest (the next run deletes the older one); edgemeter's own readers
-- see only the newest generation.
CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter_usage_hourly (
  `hour_start` timestamp,
  `api_key_id` string,
  `api_key_hint` string,
  `sc_status` smallint,
  `requests` bigint,
  `bytes_out` bigint,
  `bytes_in` bigint
)
PARTITIONED BY (
  `dt` string,
  `hour` string
)
STORED AS PARQUET
LOCATION 's3://YOUR-LAKE-BUCKET/lake/usage_hourly/'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2008-01-01,NOW',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'storage.location.template' = 's3://YOUR-LAKE-BUCKET/lake/usage_hourly/dt=${dt}/hour=${hour}/'
);
