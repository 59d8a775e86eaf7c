-- Athena over the edgemeter lake's `usage_hourly` Delta table: requests and
-- bytes per UTC hour, `api_key_id`, `sc_status`, `cs_method`, `host` (the Host
-- header, else cs_host, lowercased), `endpoint` (the endpoint template) and
-- `x_edge_location`. Rollups written before those four columns existed read
-- them as NULL and count for no hour until the next ingest rebuilds them. Each
-- rollup file sums one file of `requests`, so a group of an hour can have a row
-- in each of the hour's rollups: always SUM by the columns you group by. An
-- hour's rollups count only while every file of the hour in `requests` has its
-- rollup; after a writer stopped between a batch's two commits, sum `requests`
-- for exact figures until the next ingest rebuilds the hour (edgemeter's own
-- readers do this by themselves).
-- Athena (engine 3) reads the schema, the partitions and the current files
-- from the table's Delta log, so the statement names no columns: every
-- engine that reads Delta sees each commit whole, never a replaced file.
-- Replace the LOCATION with your lake (s3://bucket/prefix/usage_hourly/).
CREATE DATABASE IF NOT EXISTS edgemeter;
CREATE EXTERNAL TABLE IF NOT EXISTS edgemeter.usage_hourly
LOCATION 's3://YOUR-LAKE-BUCKET/lake/usage_hourly/'
TBLPROPERTIES ('table_type' = 'DELTA');
