-- top_keys: the API keys with the most billable (2xx) requests over [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- @param limit int 10
-- Returns at most $limit rows: api_key_id, api_key_hint, billable_requests,
-- requests, bytes_out; ordered by billable_requests descending (ties by key).
-- Whole UTC hours come from the usage_hourly_keys rollup, the partial edge hours
-- from raw requests (see usage_by_key.sql for the parameters).
WITH counted AS (
    SELECT api_key_id, api_key_hint, sc_status, requests, bytes_out
    FROM usage_hourly_keys
    WHERE dt >= $from_dt AND dt <= $to_dt
      AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
      AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
      AND api_key_id IS NOT NULL
    UNION ALL
    SELECT api_key_id, api_key_hint, sc_status, 1, coalesce(sc_bytes, 0)
    FROM requests
    WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
      AND "timestamp" >= $from AND "timestamp" < $to
      AND ("timestamp" < $whole_from OR "timestamp" >= $whole_to)
      AND api_key_id IS NOT NULL
)
SELECT
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi), 0) AS billable_requests,
    sum(requests) AS requests,
    sum(bytes_out) AS bytes_out
FROM counted
GROUP BY api_key_id
ORDER BY billable_requests DESC, api_key_id
LIMIT $limit
