-- unbillable: traffic that bills nobody over [$from, $to): requests without a
-- key, viewers that hung up (status 000), and edge errors by x_edge_detailed_result_type.
-- @param from timestamp
-- @param to timestamp
-- Returns: category (no_key | status_000 | edge_error), detail (the detailed
-- result type for edge errors, else empty), requests, bytes_out; ordered by
-- category, then requests descending. A request can appear in several categories.
SELECT category, detail, requests, bytes_out FROM (
    SELECT 'no_key' AS category, '' AS detail, count(*) AS requests, coalesce(sum(sc_bytes), 0) AS bytes_out
    FROM requests
    WHERE dt >= $from_dt AND dt <= $to_dt AND "timestamp" >= $from AND "timestamp" < $to
      AND api_key_id IS NULL
    UNION ALL
    SELECT 'status_000', '', count(*), coalesce(sum(sc_bytes), 0)
    FROM requests
    WHERE dt >= $from_dt AND dt <= $to_dt AND "timestamp" >= $from AND "timestamp" < $to
      AND sc_status = 0
    UNION ALL
    SELECT 'edge_error', coalesce(x_edge_detailed_result_type, x_edge_result_type, ''), count(*), coalesce(sum(sc_bytes), 0)
    FROM requests
    WHERE dt >= $from_dt AND dt <= $to_dt AND "timestamp" >= $from AND "timestamp" < $to
      AND x_edge_result_type = 'Error'
    GROUP BY coalesce(x_edge_detailed_result_type, x_edge_result_type, '')
) AS t
WHERE requests > 0
ORDER BY category, requests DESC, detail
