-- usage_by_key: per-API-key totals over the half-open UTC range [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- Returns one row per api_key_id (requests without a key: one row with a NULL
-- api_key_id, last), ordered by api_key_id.
-- Parameters:
--   $from, $to        TIMESTAMP (UTC)  the range; requests with from <= timestamp < to count
--   $from_dt, $to_dt  STRING           the same range as inclusive dt partition bounds (pruning only)
-- billable = 2xx, client_errors = 4xx, server_errors = 5xx; status 000 (viewer
-- hung up) is a request but none of these. bytes_out = sum(sc_bytes), bytes_in = sum(cs_bytes).
SELECT
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    count(*) AS requests,
    count(*) FILTER (WHERE sc_status BETWEEN 200 AND 299) AS billable_requests,
    count(*) FILTER (WHERE sc_status BETWEEN 400 AND 499) AS client_errors,
    count(*) FILTER (WHERE sc_status BETWEEN 500 AND 599) AS server_errors,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
GROUP BY api_key_id
ORDER BY api_key_id ASC NULLS LAST
