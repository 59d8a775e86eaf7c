-- error_rates: per-API-key error counts and rates over [$from, $to): 4xx, 5xx and 429 (throttled) separately.
-- @param from timestamp
-- @param to timestamp
-- Returns: api_key_id, requests, client_errors, server_errors, throttled,
-- client_error_rate, server_error_rate, throttle_rate (fractions of requests,
-- rounded to 4 places); ordered by key (requests without a key last).
SELECT
    api_key_id,
    count(*) AS requests,
    count(*) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi) AS client_errors,
    count(*) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi) AS server_errors,
    count(*) FILTER (WHERE sc_status = 429) AS throttled,
    round(CAST(count(*) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi) AS DOUBLE) / count(*), 4) AS client_error_rate,
    round(CAST(count(*) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi) AS DOUBLE) / count(*), 4) AS server_error_rate,
    round(CAST(count(*) FILTER (WHERE sc_status = 429) AS DOUBLE) / count(*), 4) AS throttle_rate
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
GROUP BY api_key_id
ORDER BY api_key_id ASC NULLS LAST
