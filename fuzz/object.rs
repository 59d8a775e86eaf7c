//! libFuzzer target: one log object, parsed as ingest parses it, with the
//! invariants of `edgemeter::fuzz::object`. Run with `bash fuzz/run.sh`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgemeter::fuzz::object(data));
