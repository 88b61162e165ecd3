//! An NDJSON body, read in pieces as the transform endpoint reads it.
//! See `crosswalk_service::fuzz::ndjson` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crosswalk_service::fuzz::ndjson(data));
