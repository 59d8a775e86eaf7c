-- Athena over the edgemeter lake's `usage_hourly_keys` Delta table: requests
-- and bytes per UTC hour, `api_key_id` and `sc_status` (the first seven
-- columns of `usage_hourly`, summed over its other dimensions): per-key usage
-- and billing read a fifth of `usage_hourly`'s rows. Each rollup file sums one
-- file of `requests`, so a key and status of an hour can have a row in each of
-- the hour's rollups: always SUM by the columns you group by. An hour's rollups
-- count only while every file of the hour in `requests` has its rollup; after
-- a writer stopped between a batch's commits, sum `requests` for exact figures
-- until the next ingest rebuilds the hour (edgemeter's own readers do this by
-- themselves).
-- Athena (engine 3) reads the schema, the partitions and the current files
-- from the table's Delta log, so the statement names no columns: every
-- engine that reads Delta sees each commit whole, never a replaced file.
-- Replace the LOCATION with your lake (s3://bucket/prefix/usage_hourly_keys/).
CREATE DATABASE IF NOT EXISTS edgemeter;
CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter.usage_hourly_keys
LOCATION 's3://YOUR-LAKE-BUCKET/lake/usage_hourly_keys/'
TBLPROPERTIES ('table_type' = 'DELTA');
