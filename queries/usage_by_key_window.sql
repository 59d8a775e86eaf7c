-- usage_by_key_window: per-API-key totals per hour, day or month over [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- @param by string day
-- @param tz string UTC
-- Returns one row per window and key: window_start (RFC 3339 with the zone's
-- offset), api_key_id, api_key_hint, requests, billable_requests, client_errors,
-- server_errors, bytes_out, bytes_in; ordered by window, then key.
-- Parameters: $by is hour, day or month; $tz an IANA zone (windows follow its DST).
SELECT
    window_start("timestamp", $by, $tz) AS window_start,
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    count(*) AS requests,
    count(*) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi) AS billable_requests,
    count(*) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi) AS client_errors,
    count(*) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi) AS server_errors,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
GROUP BY window_start, api_key_id
ORDER BY window_start, api_key_id ASC NULLS LAST
