#!/usr/bin/env bash
# One hour holding more than 2 GiB of user-agent text (240,000 requests with
# 9,000-byte agents, in 8 objects), which one Arrow string array cannot hold:
# ingested with the release build, then counted by edgemeter and by SQL, with
# time and peak RSS. The same check as the ignored test
# `an_hour_of_more_than_two_gib_of_user_agents_ingests_and_queries_exactly`.
#   bench/huge_hour.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/huge
em=${CARGO_TARGET_DIR:-target}/release/edgemeter
cargo build --release --quiet --bin edgemeter
rm -rf "$out" && mkdir -p "$out/logs"
python3 - "$out/logs" <<'PY'
import gzip, sys
out = sys.argv[1]
header = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken\n"
agent = ("Mozilla/5.0%20" * 700)[:9000]
for part in range(8):
    with gzip.open(f"{out}/E2HUGE.2025-10-06-03.{part}.gz", "wt", compresslevel=1) as f:
        f.write(header)
        for i in range(30000):
            status = 200 if i % 4 else 404
            f.write(f"2025-10-06\t03:{(i // 60) % 60:02d}:{i % 60:02d}\tSFO53-P9\t100\t1.2.3.4\tGET\td.cloudfront.net\t/v1/x\t{status}\t-\t{agent}\tapi_key=key{i % 5}\t-\tMiss\tp{part}-{i}\td.cloudfront.net\thttps\t50\t0.01\n")
PY
echo "log text: $(for f in "$out"/logs/*.gz; do gzip -dc "$f"; done | wc -c) bytes"
/usr/bin/time -f "ingest: %e s, peak RSS %M KiB" $em ingest --quiet --source "$out/logs" --lake "$out/lake" --full-listing
$em query --lake "$out/lake" --format csv \
  "SELECT count(*) AS requests, count(DISTINCT x_edge_request_id) AS ids, sum(CASE WHEN sc_status = 200 THEN 1 ELSE 0 END) AS ok, sum(length(cs_user_agent)) AS agent_bytes FROM requests"
echo "expected: requests 240000, ids 240000, ok 180000, agent_bytes 2160000000"
ls "$out/lake/requests/dt=2025-10-06/hour=03" | wc -l | xargs echo "files in the hour:"
