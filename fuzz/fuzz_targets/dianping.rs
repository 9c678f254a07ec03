//! Fuzz target: the `dianping` adapter's `parse_redeemed` and `check_code` (against a
//! loopback stub), and its refusing webhook, built once with development settings (input
//! format: `fuzz/src/input.rs`; run: `scripts/fuzz --target dianping`).
#![no_main]

use crossdock_fuzz::{Target, channels};

static TARGET: Target = Target::new(&channels::DIANPING);

libfuzzer_sys::fuzz_target!(init: TARGET.init(), |data: &[u8]| TARGET.run(data));
