-- Athena over the edgemeter lake's `requests` Delta table: one row per request,
-- the API key stored only as its hash (`api_key_id`), partitioned by UTC
-- `dt` and `hour`.
-- Athena (engine 3) reads the schema, the partitions and the current files
-- from the table's Delta log, so the statement names no columns: every
-- engine that reads Delta sees each commit whole, never a replaced file.
-- Replace the LOCATION with your lake (s3://bucket/prefix/requests/).
CREATE DATABASE IF NOT EXISTS edgemeter;
CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter.requests
LOCATION 's3://YOUR-LAKE-BUCKET/lake/requests/'
TBLPROPERTIES ('table_type' = 'DELTA');
