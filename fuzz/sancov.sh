#!/usr/bin/env bash
# RUSTC_WORKSPACE_WRAPPER for the fuzz targets: edgemeter's own code gets
# libFuzzer's coverage instrumentation (stable rustc flags); dependencies are
# built as the tests build them, so their artifacts are shared.
if [[ " $* " == *" --crate-name "* ]]; then
  exec "$@" --cfg fuzzing \
    -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares
fi
exec "$@"
