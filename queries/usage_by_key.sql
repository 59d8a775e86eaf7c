-- usage_by_key: per-API-key totals over the half-open UTC range [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- Returns one row per api_key_id (requests without a key: one row with a NULL
-- api_key_id, last), ordered by api_key_id.
-- Whole UTC days inside the range are read from usage_daily_totals (a row per day,
-- key and status), the other whole UTC hours from the usage_hourly_keys rollup; only
-- the partial hours at its edges are counted from raw requests, so the result is
-- exact to the millisecond. Parameters (all derived from --from/--to):
--   $from, $to                TIMESTAMP (UTC)  requests with from <= timestamp < to count
--   $from_dt, $to_dt          STRING           the range as inclusive dt bounds (pruning only)
--   $whole_from, $whole_to    TIMESTAMP (UTC)  the whole hours inside the range
--   $whole_from_dt, $whole_from_hour,
--   $whole_to_dt, $whole_to_hour  STRING       the same hours as partitions: the
--                             rollup is chosen by partition, so that no row of it
--                             is compared (each rollup file is one whole UTC hour)
--   $head_dt, $head_hour,
--   $tail_dt, $tail_hour      STRING           partitions of the partial edge hours ('' if none)
--   $days_from_dt, $days_to_dt STRING          the whole UTC days among the whole hours,
--                             to exclusive ('' and '' if none)
-- billable = 2xx, client_errors = 4xx, server_errors = 5xx; status 000 (viewer
-- hung up) is a request but none of these. bytes_out = sum(sc_bytes), bytes_in = sum(cs_bytes).
WITH counted AS (
    SELECT api_key_id, api_key_hint, sc_status, requests, bytes_out, bytes_in
    FROM usage_daily_totals
    WHERE dt >= $days_from_dt AND dt < $days_to_dt
    UNION ALL
    SELECT api_key_id, api_key_hint, sc_status, requests, bytes_out, bytes_in
    FROM usage_hourly_keys
    WHERE dt >= $from_dt AND dt <= $to_dt
      AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
      AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
      AND (dt < $days_from_dt OR dt >= $days_to_dt)
    UNION ALL
    SELECT api_key_id, api_key_hint, sc_status, 1, coalesce(sc_bytes, 0), coalesce(cs_bytes, 0)
    FROM requests
    WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
      AND "timestamp" >= $from AND "timestamp" < $to
      AND ("timestamp" < $whole_from OR "timestamp" >= $whole_to)
)
SELECT
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    sum(requests) AS requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi), 0) AS billable_requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi), 0) AS client_errors,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi), 0) AS server_errors,
    sum(bytes_out) AS bytes_out,
    sum(bytes_in) AS bytes_in
FROM counted
GROUP BY api_key_id
ORDER BY api_key_id ASC NULLS LAST
