-- latency_by_endpoint: latency percentiles per endpoint (route template) over [$from, $to), in seconds.
-- @param from timestamp
-- @param to timestamp
-- Returns: endpoint, requests, p50/p95/p99 of time_taken and of
-- time_to_first_byte (exact, interpolated), rounded to milliseconds; ordered by
-- requests descending, then endpoint.
SELECT
    endpoint_template(cs_uri_stem) AS endpoint,
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
GROUP BY endpoint
ORDER BY requests DESC, endpoint
