//! A JSONPath query, a NUL, and a JSON document: parsed, then evaluated.
//! See `crosswalk_service::fuzz::jsonpath` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crosswalk_service::fuzz::jsonpath(data));
