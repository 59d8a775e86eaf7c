//! libFuzzer target: one log object, parsed as ingest parses it, with the
//! invariants of `edgemeter::fuzz::object`. Run with `bash fuzz/run.sh`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // libFuzzer's hook aborts on every panic, also one that edgemeter
        // catches: a panic of the Parquet decoder inside its guard becomes an
        // unreadable object, as in ingest; any other panic is a crash.
        let aborting = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !edgemeter::format::parquet::decoding() {
                aborting(info);
            }
        }));
    },
    |data: &[u8]| edgemeter::fuzz::object(data)
);
