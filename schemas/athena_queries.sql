-- Athena (engine 3) queries over the lake, as the Terraform module registers
-- it (Glue database `edgemeter`, Delta tables `requests` and `usage_hourly`;
-- or the DDL of schemas/*.athena.sql). Each gives, per API key, the numbers
-- `edgemeter usage --from 2025-10-01 --to 2025-11-01` prints for October 2025
-- in UTC: change the two dates for another month. A test runs every
-- statement of this file over a lake and compares it with `edgemeter usage`.
-- billable = 2xx, client errors = 4xx, server errors = 5xx; status 0 (the
-- viewer hung up) is a request but none of these. Requests without a key
-- have a NULL api_key_id.

-- usage_from_requests: one row per request read; prunes to the month's
-- `dt` partitions. Exact at any time.
SELECT
    api_key_id,
    count(*) AS requests,
    count_if(sc_status BETWEEN 200 AND 299) AS billable_requests,
    count_if(sc_status BETWEEN 400 AND 499) AS client_errors,
    count_if(sc_status BETWEEN 500 AND 599) AS server_errors,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in
FROM edgemeter.requests
WHERE dt >= '2025-10-01' AND dt < '2025-11-01'
GROUP BY api_key_id
ORDER BY api_key_id;

-- usage_from_rollup: the same from the hourly rollup, which holds a few rows
-- per key and hour instead of one per request (scans far less). Exact
-- unless a writer stopped between an hour's two commits and no ingest has
-- run since (README, "Reading the lake from other engines").
SELECT
    api_key_id,
    sum(requests) AS requests,
    sum(CASE WHEN sc_status BETWEEN 200 AND 299 THEN requests ELSE 0 END) AS billable_requests,
    sum(CASE WHEN sc_status BETWEEN 400 AND 499 THEN requests ELSE 0 END) AS client_errors,
    sum(CASE WHEN sc_status BETWEEN 500 AND 599 THEN requests ELSE 0 END) AS server_errors,
    sum(bytes_out) AS bytes_out,
    sum(bytes_in) AS bytes_in
FROM edgemeter.usage_hourly
WHERE dt >= '2025-10-01' AND dt < '2025-11-01'
GROUP BY api_key_id
ORDER BY api_key_id;
