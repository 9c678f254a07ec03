//! What the adapter logs: no phone number, not even masked (the hub logs each order it
//! receives, with the phone masked), never the master key, never a store key.
//!
//! A test binary of its own with one test: `tracing` caches per-callsite interest globally,
//! so capturing logs next to other tests running in parallel threads is racy.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::Utc;
use crossdock_adapter_pos::{Pos, PosConfig, signed_headers, store_key};
use crossdock_channel::{Channel, InboundRequest};
use crossdock_kit::logs::shows_digits;
use secrecy::SecretString;

const MASTER: &str = "logging-test-master-key";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn request(key: &str, store: &str, body: &[u8]) -> InboundRequest {
    let now = Utc::now();
    let mut headers = HeaderMap::new();
    for (name, value) in signed_headers(key, store, now.timestamp(), body) {
        headers.insert(
            HeaderName::try_from(name).expect("header name"),
            HeaderValue::try_from(value).expect("header value"),
        );
    }
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "http://hub.test/webhooks/pos".into(),
        query: None,
        headers,
        body: body.to_vec().into(),
        received_at: now,
    }
}

#[test]
fn logs_never_show_phone_numbers_or_keys() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/pos")
                .join(name),
        )
        .expect("fixture")
    };
    let order = fixture("phone_delivery_london.body");
    let void = fixture("void_scheduled_pickup_nyc.body");
    let channel =
        Pos::new(PosConfig::default(), SecretString::from(MASTER)).expect("valid configuration");
    let london = store_key(MASTER.as_bytes(), "LDN-005");
    let nyc = store_key(MASTER.as_bytes(), "NYC-001");
    channel
        .verify(&request(&london, "LDN-005", &order))
        .expect("verifies");
    channel
        .parse(&request(&london, "LDN-005", &order))
        .expect("parses");
    channel
        .parse(&request(&nyc, "NYC-001", &void))
        .expect("parses");
    assert!(
        channel
            .verify(&request("wrong", "LDN-005", &order))
            .is_err()
    );
    assert_eq!(channel.store_credential("LDN-005"), Some(london.clone()));

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("UTF-8");
    // The capture works: the adapter's own lines are there.
    assert!(logs.contains("Void parsed."), "{logs}");
    assert!(logs.contains("Request refused."), "{logs}");
    // The order's phone (`+44 20 7946 0321`) appears in no form, masked or not.
    for digits in ["7946", "0321"] {
        assert!(!shows_digits(&logs, digits), "`{digits}` in {logs}");
    }
    assert!(!logs.contains("***321"), "{logs}");
    for secret in [MASTER, london.as_str(), nyc.as_str()] {
        assert!(!logs.contains(secret), "a key in {logs}");
    }
}
