-- error_rates: per-API-key error counts and rates over [$from, $to): 4xx, 5xx and 429 (throttled) separately.
-- @param from timestamp
-- @param to timestamp
-- Returns: api_key_id, requests, client_errors, server_errors, throttled,
-- client_error_rate, server_error_rate, throttle_rate (fractions of requests,
-- rounded to 4 places); ordered by key (requests without a key last).
-- Whole UTC hours come from the usage_hourly_keys rollup, the partial edge hours
-- from raw requests (see usage_by_key.sql for the parameters).
WITH counted AS (
    SELECT api_key_id, sc_status, requests
    FROM usage_hourly_keys
    WHERE dt >= $from_dt AND dt <= $to_dt
      AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
      AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
    UNION ALL
    SELECT api_key_id, sc_status, 1
    FROM requests
    WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
      AND "timestamp" >= $from AND "timestamp" < $to
      AND ("timestamp" < $whole_from OR "timestamp" >= $whole_to)
)
SELECT
    api_key_id,
    sum(requests) AS requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi), 0) AS client_errors,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi), 0) AS server_errors,
    coalesce(sum(requests) FILTER (WHERE sc_status = 429), 0) AS throttled,
    round(CAST(coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi), 0) AS DOUBLE) / sum(requests), 4) AS client_error_rate,
    round(CAST(coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi), 0) AS DOUBLE) / sum(requests), 4) AS server_error_rate,
    round(CAST(coalesce(sum(requests) FILTER (WHERE sc_status = 429), 0) AS DOUBLE) / sum(requests), 4) AS throttle_rate
FROM counted
GROUP BY api_key_id
ORDER BY api_key_id ASC NULLS LAST
