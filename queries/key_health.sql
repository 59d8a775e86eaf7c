-- key_health: per-API-key error rate and latency over [$from, $to), the input of alerts.
-- @param from timestamp
-- @param to timestamp
-- Returns: api_key_id, requests, server_errors (5xx), avg_time_taken (seconds,
-- NULL when not logged); keys with requests only, ordered by api_key_id.
-- Parameters:
--   $from, $to        TIMESTAMP (UTC)
--   $from_dt, $to_dt  STRING  inclusive dt partition bounds (pruning only)
SELECT
    api_key_id,
    count(*) AS requests,
    count(*) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi) AS server_errors,
    avg(time_taken) AS avg_time_taken
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
  AND api_key_id IS NOT NULL
GROUP BY api_key_id
ORDER BY api_key_id
