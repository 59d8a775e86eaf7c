#!/usr/bin/env bash
# Builds edgemeter, ingests the bundled sample logs into a fresh lake, and
# prints per-key usage. Usage: scripts/quickstart.sh [LAKE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
lake="${1:-$(mktemp -d)/lake}"
cargo build --release --quiet
bin=target/release/edgemeter
"$bin" ingest --source examples/logs --lake "$lake"
echo
echo "Usage per API key (lake: $lake):"
"$bin" usage --lake "$lake"
echo
"$bin" query --lake "$lake" "SELECT sc_status, count(*) AS requests FROM requests GROUP BY sc_status ORDER BY sc_status"
