-- usage_by_key_endpoint: per-API-key totals per endpoint (route template) over [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- Returns: api_key_id, endpoint (cs_uri_stem with ids folded into {id}),
-- cs_method, requests, billable_requests, client_errors, server_errors,
-- bytes_out; ordered by key, then requests descending.
-- Whole UTC hours come from the usage_hourly rollup, the partial edge hours
-- from raw requests (see usage_by_key.sql for the parameters).
WITH counted AS (
    SELECT api_key_id, endpoint, cs_method, sc_status, requests, bytes_out
    FROM usage_hourly
    WHERE dt >= $from_dt AND dt <= $to_dt
      AND (dt > $whole_from_dt OR (dt = $whole_from_dt AND hour >= $whole_from_hour))
      AND (dt < $whole_to_dt OR (dt = $whole_to_dt AND hour < $whole_to_hour))
    UNION ALL
    SELECT api_key_id, endpoint_template(cs_uri_stem), cs_method, sc_status, 1, coalesce(sc_bytes, 0)
    FROM requests
    WHERE ((dt = $head_dt AND hour = $head_hour) OR (dt = $tail_dt AND hour = $tail_hour))
      AND "timestamp" >= $from AND "timestamp" < $to
      AND ("timestamp" < $whole_from OR "timestamp" >= $whole_to)
)
SELECT
    api_key_id,
    endpoint,
    cs_method,
    sum(requests) AS requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi), 0) AS billable_requests,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi), 0) AS client_errors,
    coalesce(sum(requests) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi), 0) AS server_errors,
    sum(bytes_out) AS bytes_out
FROM counted
GROUP BY api_key_id, endpoint, cs_method
ORDER BY api_key_id ASC NULLS LAST, requests DESC, endpoint, cs_method
