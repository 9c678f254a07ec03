//! Fuzz target: the `uber_eats` adapter's `verify`, `parse` (notifications) and
//! `parse_fetched` (the orders), built once with development settings (input format:
//! `fuzz/src/input.rs`; run: `scripts/fuzz --target uber_eats`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::UBER_EATS);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
