-- daily_series: one row per UTC day over [$from, $to): traffic of all keys together.
-- @param from timestamp
-- @param to timestamp
-- Returns: day (YYYY-MM-DD), requests, billable_requests, client_errors,
-- server_errors, keys (distinct API keys seen), bytes_out; ordered by day.
SELECT
    dt AS day,
    count(*) AS requests,
    count(*) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi) AS billable_requests,
    count(*) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi) AS client_errors,
    count(*) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi) AS server_errors,
    count(DISTINCT api_key_id) AS keys,
    coalesce(sum(sc_bytes), 0) AS bytes_out
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
GROUP BY dt
ORDER BY dt
