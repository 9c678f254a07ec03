//! Fuzz target: the `meituan` adapter's `verify` (MD5 over URL and parameters) and `parse`,
//! query and form, built once with development settings (input format: `fuzz/src/input.rs`;
//! run: `scripts/fuzz --target meituan`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::MEITUAN);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
