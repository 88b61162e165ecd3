//! A plugin upload: checked and loaded as the upload endpoint does.
//! See `crosswalk_service::fuzz::plugin` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crosswalk_service::fuzz::plugin(data));
