-- latency_by_key: per-API-key latency percentiles over [$from, $to), in seconds.
-- @param from timestamp
-- @param to timestamp
-- Returns: api_key_id, requests, p50/p95/p99 of time_taken and of
-- time_to_first_byte (exact, interpolated; NULL where not logged), rounded to
-- milliseconds; ordered by key.
SELECT
    api_key_id,
    count(*) AS requests,
    round(percentile_cont(0.50) WITHIN GROUP (ORDER BY time_taken), 3) AS time_taken_p50,
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY time_taken), 3) AS time_taken_p95,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY time_taken), 3) AS time_taken_p99,
    round(percentile_cont(0.50) WITHIN GROUP (ORDER BY time_to_first_byte), 3) AS ttfb_p50,
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY time_to_first_byte), 3) AS ttfb_p95,
    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY time_to_first_byte), 3) AS ttfb_p99
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
GROUP BY api_key_id
ORDER BY api_key_id ASC NULLS LAST
