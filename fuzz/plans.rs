//! libFuzzer target: a plans file (`edgemeter::fuzz::plans`). Run with
//! `FUZZ_TARGET=plans bash fuzz/run.sh`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgemeter::fuzz::plans(data));
