-- top_keys: the API keys with the most billable (2xx) requests over [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- @param limit int 10
-- Returns at most $limit rows: api_key_id, api_key_hint, billable_requests,
-- requests, bytes_out; ordered by billable_requests descending (ties by key).
SELECT
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    count(*) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi) AS billable_requests,
    count(*) AS requests,
    coalesce(sum(sc_bytes), 0) AS bytes_out
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
  AND api_key_id IS NOT NULL
GROUP BY api_key_id
ORDER BY billable_requests DESC, api_key_id
LIMIT $limit
