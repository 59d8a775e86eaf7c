-- usage_by_key_status: per-API-key, per-status totals over [$from, $to), the
-- @param from timestamp
-- @param to timestamp
-- input of billing (which statuses are billable is the plan's choice).
-- Returns: api_key_id (NULL for requests without a key), sc_status (NULL when
-- not logged), requests, bytes_out, bytes_in; ordered by key and status.
-- Parameters:
--   $from, $to        TIMESTAMP (UTC)  requests with from <= timestamp < to count
--   $from_dt, $to_dt  STRING           the same range as inclusive dt partition bounds (pruning only)
SELECT
    api_key_id,
    sc_status,
    count(*) AS requests,
    coalesce(sum(sc_bytes), 0) AS bytes_out,
    coalesce(sum(cs_bytes), 0) AS bytes_in
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
GROUP BY api_key_id, sc_status
ORDER BY api_key_id ASC NULLS LAST, sc_status ASC NULLS LAST
