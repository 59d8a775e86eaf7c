-- usage_by_key_endpoint: per-API-key totals per endpoint (route template) over [$from, $to).
-- @param from timestamp
-- @param to timestamp
-- Returns: api_key_id, endpoint (cs_uri_stem with ids folded into {id}),
-- cs_method, requests, billable_requests, client_errors, server_errors,
-- bytes_out; ordered by key, then requests descending.
SELECT
    api_key_id,
    endpoint_template(cs_uri_stem) AS endpoint,
    cs_method,
    count(*) AS requests,
    count(*) FILTER (WHERE sc_status BETWEEN $billable_lo AND $billable_hi) AS billable_requests,
    count(*) FILTER (WHERE sc_status BETWEEN $client_error_lo AND $client_error_hi) AS client_errors,
    count(*) FILTER (WHERE sc_status BETWEEN $server_error_lo AND $server_error_hi) AS server_errors,
    coalesce(sum(sc_bytes), 0) AS bytes_out
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt
  AND "timestamp" >= $from AND "timestamp" < $to
GROUP BY api_key_id, endpoint, cs_method
ORDER BY api_key_id ASC NULLS LAST, requests DESC, endpoint, cs_method
