#!/usr/bin/env bash
# Measures the code path of one request line through `edgemeter ingest`, for
# issue #18 ("the number of files and backward jumps on the path of one request
# line from `edgemeter ingest` to the lake, before and after"): run it on the
# build before a restructuring and on the build after, and compare.
#
# Usage: scripts/code-path.sh [options]
#   --binary PATH     edgemeter built with line tables for its own code (the dev
#                     profile's `debug = "line-tables-only"`); default
#                     ${CARGO_TARGET_DIR:-target}/debug/edgemeter
#   --build           `cargo build --bin edgemeter` first (dev profile; slow on
#                     2 cores, and only needed when src/ changed since the build)
#   --until commit    end the path at the Delta commit of the row (default)
#   --until exit      ... or at the end of the process (the whole command)
#   --from REGEX      the entry function (default ^edgemeter::cli::run$)
#   --order SPEC      the intended module order, earlier first, one group per
#                     word (default "cli,config,main,ingest source format key
#                     lake query export")
#   --log FILE        ingest this log file instead of the built-in one-line log
#   --save-trace FILE keep the raw trace; --trace FILE analyses a saved trace
#                     without running anything (e.g. with other --until/--from)
#   --skip-derived    leave out code expanded from #[derive(...)] (Clone,
#                     Default, Debug, serde...): closer to what a reader reads
#   -v / -vv          also print the sequence of first calls / of all calls
#
# How: edgemeter runs `ingest --source DIR --lake LAKE` on a fresh lake, under
# gdb (batch mode, scripts/code_path.py). A breakpoint is set on the first
# instruction of every function of edgemeter's own src/ (ELF symbols in the
# edgemeter crate whose line table puts them in a relative src/*.rs file: the
# package's own code, including closures, async bodies and derive/macro code
# expanded there; not drop glue, nor generic std/dependency code instantiated
# for edgemeter's types). Each hit records (function, file, thread, nearest
# edgemeter caller frame) and lets the program go on; calls on all threads are
# recorded in hit order. Nothing is rebuilt unless --build is given.
#
# The input: one CloudFront standard log file (gzip, `#Version`/`#Fields:`
# header, 33 fields) holding ONE request line with `api_key=...` in its query.
#
# The path: from the first call of the entry function, edgemeter::cli::run
# (the command dispatcher; main's process setup before it - panic hook,
# allocator options, clap parsing, tracing initialisation, runtime start - is
# left out), up to the first call made after the requests table's Delta log
# holds a commit adding a data file, i.e. after the row is committed to the
# lake (--until exit: to the end of the process, which adds the rollup and
# ingested-record commits, the run record and the summary). Re-entries of the
# entry function's own callers (main's future, re-polled by the runtime) are
# not on the path. Everything the command runs in between is: opening the lake
# and its tables, listing and fetching the object, parsing, key finding,
# merging, writing the Parquet file, the commit.
#
# What is counted, on two views of the path:
#   first calls  each source function once, at its first call (a reader's
#                path: a function read once; monomorphised copies of one
#                function count once). Deterministic for one line.
#   all calls    every call, e.g. one per field for per-field helpers and
#                one per poll for async bodies, so it depends on timing.
#   files        distinct src/ files on the path (of all src/**/*.rs).
#   jumps        consecutive calls on the path whose files differ.
#   back-jumps   jumps to a file already visited earlier on the path.
#   with returns the same counts when a call made from another file than the
#                one the previous call was in first goes back to the caller's
#                file (a return), as a reader would: more jumps, mostly back.
#   against-direction
#                calls from a caller in one module into a callee in a module
#                earlier in --order (module = first path component under src/;
#                cli, config, main, ingest at the top); judged on the caller ->
#                callee edge, not on consecutive calls (a return then a call
#                is not a jump from the callee's file). Modules outside the
#                order (cpu, error, metrics, ...) are not judged; the list
#                names them.
#
# Caveats: only calls into functions are seen. Code inlined into a caller is
# invisible - little for edgemeter's own code, which the dev profile builds at
# opt-level 0 (its `#[inline]` functions are not inlined there) - and so are
# dependencies (delta-rs, arrow, tokio) except where they call back into
# edgemeter. A function is attributed to the file of its first line. A stale
# binary (src/ changed since the build) is warned about. Takes 5-10 s.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
helper="$repo/scripts/code_path.py"
binary="${CARGO_TARGET_DIR:-$repo/target}/debug/edgemeter"
build=0 until=commit from='^edgemeter::cli::run$' order='' log='' save='' trace='' verbose=()  # (and other options of the analysis)
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --build) build=1; shift ;;
        --until) until="$2"; shift 2 ;;
        --from) from="$2"; shift 2 ;;
        --order) order="$2"; shift 2 ;;
        --log) log="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
        --save-trace) save="$2"; shift 2 ;;
        --trace) trace="$2"; shift 2 ;;
        -v|-vv|--verbose|--skip-derived) verbose+=("$1"); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "code-path: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$until" in commit|exit) ;; *) echo "code-path: --until commit|exit" >&2; exit 2 ;; esac
analyze=(python3 "$helper" analyze --repo "$repo" --from "$from" --until "$until")
[ -n "$order" ] && analyze+=(--order "$order")
analyze+=(${verbose[@]+"${verbose[@]}"})

if [ -n "$trace" ]; then
    exec "${analyze[@]}" --trace "$trace"
fi

for tool in gdb nm python3 gzip; do
    command -v "$tool" >/dev/null || { echo "code-path: $tool is needed" >&2; exit 1; }
done
if [ "$build" = 1 ]; then
    (cd "$repo" && cargo build --bin edgemeter)
fi
[ -x "$binary" ] || { echo "code-path: no binary at $binary (build it, or --build)" >&2; exit 1; }
newer="$(find "$repo/src" -name '*.rs' -newer "$binary" | head -3)"
if [ -n "$newer" ]; then
    echo "code-path: warning: src/ changed since $binary was built ($(echo $newer | sed "s|$repo/||g")...); --build to rebuild" >&2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/code-path.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/logs"
if [ -n "$log" ]; then
    cp "$log" "$work/logs/"
else
    # One request of a standard (33-field) log, as CloudFront writes them
    # (cf. /work/shared/samples/cloudfront/standard-2025-33-fields.log), with
    # the API key in the query string.
    fields=(2025-10-05 01:06:21 SFO53-P9 611 32.142.164.10 GET d3o60fb1dwgq5k.cloudfront.net
        /v1/data 200 - curl/8.7.1 'api_key=ak_test_0001&page=1' - Miss
        GjocI0R8eOYh2liL2D6EUlwv1hsI8BY1YIzjpdzw-ZUnqbiF8E2WVQ== d3o60fb1dwgq5k.cloudfront.net
        https 104 0.133 - TLSv1.3 TLS_AES_128_GCM_SHA256 Miss HTTP/2.0 - - 54726 0.133 Miss
        application/json 121 - -)
    {
        echo '#Version: 1.0'
        echo '#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end'
        (IFS=$'\t'; echo "${fields[*]}")
    } | gzip -n > "$work/logs/E2EXAMPLE0001.2025-10-05-01.a1b2c3d4.gz"
fi

# The run must not pick up settings from this shell (a key secret, a log level).
unset_env=()
for name in $(compgen -e | grep '^EDGEMETER_' || true); do unset_env+=(-u "$name"); done

started=$(date +%s%N)
if ! env ${unset_env[@]+"${unset_env[@]}"} \
    CP_BINARY="$binary" CP_TRACE="$work/trace.tsv" CP_FROM="$from" \
    CP_DELTA_LOG="$work/lake/requests/_delta_log" \
    timeout -k 10 1200 gdb -batch -nx -iex 'set auto-load off' -x "$helper" \
        --args "$binary" ingest --source "$work/logs" --lake "$work/lake" \
        >"$work/gdb.log" 2>&1 || [ ! -s "$work/trace.tsv" ]; then
    echo "code-path: the traced run failed; its output:" >&2
    tail -n 30 "$work/gdb.log" >&2
    exit 1
fi
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
[ -n "$save" ] && cp "$work/trace.tsv" "$save"

echo "edgemeter: $binary"
echo "traced run: $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100)) s under gdb"
"${analyze[@]}" --trace "$work/trace.tsv"
