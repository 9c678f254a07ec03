//! Fuzz target: the `doordash` adapter's `verify` (static token) and `parse` (orders,
//! cancellations, Dasher events), built once with development settings (input format:
//! `fuzz/src/input.rs`; run: `scripts/fuzz --target doordash`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::DOORDASH);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
