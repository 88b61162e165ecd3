//! A transform's JSON body: its envelope taken off.
//! See `crosswalk_service::fuzz::payload` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crosswalk_service::fuzz::payload(data));
