#!/usr/bin/env bash
# Builds edgemeter, ingests the bundled sample logs into a fresh lake, and
# prints per-key usage. Usage: scripts/quickstart.sh [LAKE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
lake="${1:-$(mktemp -d)/lake}"
# A debug build of every target shares its artifacts with `cargo test` (same
# features), so the two README commands compile the dependencies once.
# For real data use `cargo build --release`.
cargo build --all-targets --quiet
bin=target/debug/edgemeter
"$bin" ingest --source examples/logs --lake "$lake"
echo
echo "Usage per API key (lake: $lake):"
"$bin" usage --lake "$lake"
echo
"$bin" query --lake "$lake" "SELECT sc_status, count(*) AS requests FROM requests GROUP BY sc_status ORDER BY sc_status"
