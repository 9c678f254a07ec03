//! Fuzz target: the shared signature helpers of `crossdock_channel::signature` (HMAC, hex
//! verification, the timestamped scheme, constant-time equality), their promises checked
//! (input format: `fuzz/src/signature.rs`; run: `scripts/fuzz --target signature`).
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: crossdock_fuzz::signature::init(),
    |data: &[u8]| crossdock_fuzz::signature::run(data)
);
