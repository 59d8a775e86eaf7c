-- conflicting_keys: requests over [$from, $to) that carried two different API
-- keys, such as an `x-api-key` header and a `?api_key=` of another value. Each
-- was billed to the key of highest precedence (`key_from`, the header first
-- by default), and the lake keeps the other key's id beside it: look here
-- for clients that send a stale or junk key next to the real one.
-- @param from timestamp
-- @param to timestamp
-- Returns: api_key_id (billed), api_key_hint, conflicting_key_id (the other
-- key's id), requests, first_seen, last_seen; ordered by requests descending,
-- then by the two ids.
-- Parameters:
--   $from, $to        TIMESTAMP (UTC)
--   $from_dt, $to_dt  STRING  inclusive dt partition bounds (pruning only)
SELECT
    api_key_id,
    max(api_key_hint) AS api_key_hint,
    conflicting_key_id,
    count(*) AS requests,
    min("timestamp") AS first_seen,
    max("timestamp") AS last_seen
FROM requests
WHERE dt >= $from_dt AND dt <= $to_dt AND "timestamp" >= $from AND "timestamp" < $to
  AND conflicting_key_id IS NOT NULL
GROUP BY api_key_id, conflicting_key_id
ORDER BY requests DESC, api_key_id, conflicting_key_id
