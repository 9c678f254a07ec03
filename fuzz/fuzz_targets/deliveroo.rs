//! Fuzz target: the `deliveroo` adapter's `verify` (HMAC over GUID and body, both schemes)
//! and `parse`, built once with development settings (input format: `fuzz/src/input.rs`;
//! run: `scripts/fuzz --target deliveroo`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::DELIVEROO);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
