//! Fuzz target: the `just_eat` adapter's `verify` (base64 HMAC in X-JET-Connect-Hash) and
//! `parse`, built once with development settings (input format: `fuzz/src/input.rs`; run:
//! `scripts/fuzz --target just_eat`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::JUST_EAT);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
