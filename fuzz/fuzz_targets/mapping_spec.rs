//! A mapping or override document (JSON or YAML): parsed, resolved, compiled and run.
//! See `crosswalk_service::fuzz::mapping_spec` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crosswalk_service::fuzz::mapping_spec(data));
