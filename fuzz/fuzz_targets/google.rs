//! Fuzz target: the `google` adapter's `verify` (RS256 JWT) and `parse` (checkouts and
//! submits), built once with development settings (input format: `fuzz/src/input.rs`; run:
//! `scripts/fuzz --target google`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::GOOGLE);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
