-- daily_series: one row per UTC day over [$from, $to): traffic of all keys together.
-- @param from timestamp
-- @param to timestamp
-- Returns: day (YYYY-MM-DD), requests, billable_requests, client_errors,
-- server_errors, keys (distinct API keys seen), bytes_out; ordered by day.
-- Whole UTC hours come from the usage_hourly_keys rollup, the partial edge hours
-- from raw requests (see usage_by_key.sql for the parameters).
WITH counted AS (
    SELECT dt, api_key_id, sc_status, requests, bytes_out
    FROM usage_hourly_keys
    WHERE dt >= $from_dt AND dt <= $to_dt
      AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
      AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
    UNION ALL
    SELECT dt, api_key_id, sc_status, 1, coalesce(sc_bytes, 0)
    FROM requests
    WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
      AND "timestamp" >= $from AND "timestamp" < $to
      AND ("timestamp" < $whole_from OR "timestamp" >= $whole_to)
)
SELECT
    dt AS day,
    sum(requests) AS requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi), 0) AS billable_requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi), 0) AS client_errors,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi), 0) AS server_errors,
    count(DISTINCT api_key_id) AS keys,
    sum(bytes_out) AS bytes_out
FROM counted
GROUP BY dt
ORDER BY dt
