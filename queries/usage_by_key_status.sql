-- usage_by_key_status: per-API-key, per-status totals over [$from, $to), the
-- @param from timestamp
-- @param to timestamp
-- input of billing (which statuses are billable is the plan's choice).
-- Returns: api_key_id (NULL for requests without a key), sc_status (NULL when
-- not logged), requests, bytes_out, bytes_in; ordered by key and status.
-- Whole UTC hours come from the usage_hourly_keys rollup, the partial edge hours
-- from raw requests (see usage_by_key.sql for the parameters).
WITH counted AS (
    SELECT api_key_id, sc_status, requests, bytes_out, bytes_in
    FROM usage_hourly_keys
    WHERE dt >= $from_dt AND dt <= $to_dt
      AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
      AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
    UNION ALL
    SELECT api_key_id, sc_status, 1, coalesce(sc_bytes, 0), coalesce(cs_bytes, 0)
    FROM requests
    WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
      AND "timestamp" >= $from AND "timestamp" < $to
      AND ("timestamp" < $whole_from OR "timestamp" >= $whole_to)
)
SELECT
    api_key_id,
    sc_status,
    sum(requests) AS requests,
    sum(bytes_out) AS bytes_out,
    sum(bytes_in) AS bytes_in
FROM counted
GROUP BY api_key_id, sc_status
ORDER BY api_key_id ASC NULLS LAST, sc_status ASC NULLS LAST
