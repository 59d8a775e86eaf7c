-- usage_by_key_window: per-API-key totals per hour, day or month over [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- @param by string day
-- @param tz string UTC
-- Returns one row per window and key: window_start (RFC 3339 with the zone's
-- offset), api_key_id, api_key_hint, requests, billable_requests, client_errors,
-- server_errors, bytes_out, bytes_in; ordered by window, then key.
-- Parameters: $by is hour, day or month; $tz an IANA zone (windows follow its DST).
-- In UTC, whose windows every UTC hour fits, whole hours come from the
-- usage_hourly_keys rollup and the partial edge hours from raw requests (see
-- usage_by_key.sql for the parameters); in any other zone, from raw requests
-- only (`edgemeter usage --by` checks a zone's hours against its windows).
WITH counted AS (
    SELECT hour_start AS "timestamp", api_key_id, api_key_hint, sc_status, requests, bytes_out, bytes_in
    FROM usage_hourly_keys
    WHERE $tz = 'UTC'
      AND dt >= $from_dt AND dt <= $to_dt
      AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
      AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
    UNION ALL
    SELECT "timestamp", api_key_id, api_key_hint, sc_status, 1, coalesce(sc_bytes, 0), coalesce(cs_bytes, 0)
    FROM requests
    WHERE dt >= $from_dt AND dt <= $to_dt
      AND "timestamp" >= $from AND "timestamp" < $to
      AND ($tz <> 'UTC'
           OR (((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
               AND ("timestamp" < $whole_from OR "timestamp" >= $whole_to)))
)
SELECT
    window_start("timestamp", $by, $tz) AS window_start,
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    sum(requests) AS requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi), 0) AS billable_requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi), 0) AS client_errors,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi), 0) AS server_errors,
    sum(bytes_out) AS bytes_out,
    sum(bytes_in) AS bytes_in
FROM counted
GROUP BY window_start, api_key_id
ORDER BY window_start, api_key_id ASC NULLS LAST
