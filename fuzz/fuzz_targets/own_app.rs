//! Fuzz target: the `own_app` adapter's `verify` (timestamped HMAC) and `parse`, built once
//! with development settings (input format: `fuzz/src/input.rs`; run: `scripts/fuzz
//! --target own_app`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::OWN_APP);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
