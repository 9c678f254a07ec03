//! Fuzz target: the `pos` adapter's `verify` (per-store timestamped HMAC) and `parse`,
//! built once with development settings (input format: `fuzz/src/input.rs`; run:
//! `scripts/fuzz --target pos`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::POS);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
