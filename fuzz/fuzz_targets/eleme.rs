//! Fuzz target: the `eleme` adapter's `verify` (MD5 inside the envelope) and `parse`, built
//! once with development settings (input format: `fuzz/src/input.rs`; run: `scripts/fuzz
//! --target eleme`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::ELEME);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
