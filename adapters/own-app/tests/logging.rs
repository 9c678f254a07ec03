//! What the adapter logs: no phone number, not even masked (the hub logs each order it
//! receives, with the phone masked), and never the secret.
//!
//! A test binary of its own with one test: `tracing` caches per-callsite interest globally,
//! so capturing logs next to other tests running in parallel threads is racy.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::Utc;
use crossdock_adapter_own_app::{OwnApp, OwnAppConfig, signed_headers};
use crossdock_channel::{Channel, InboundRequest};
use crossdock_kit::logs::shows_digits;
use secrecy::SecretString;

const SECRET: &str = "logging-test-secret";

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

fn request(secret: &str, body: &[u8]) -> InboundRequest {
    let now = Utc::now();
    let mut headers = HeaderMap::new();
    for (name, value) in signed_headers(secret.as_bytes(), now.timestamp(), body) {
        headers.insert(
            HeaderName::try_from(name).expect("header name"),
            HeaderValue::try_from(value).expect("header value"),
        );
    }
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "http://hub.test/webhooks/own_app".into(),
        query: None,
        headers,
        body: body.to_vec().into(),
        received_at: now,
    }
}

#[test]
fn logs_never_show_phone_numbers_or_the_secret() {
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
                .join("../../fixtures/own_app")
                .join(name),
        )
        .unwrap()
    };
    let body = fixture("delivery_nyc.body");
    let cancel = fixture("cancel.body");
    let channel = OwnApp::new(
        OwnAppConfig::default(),
        SecretString::from(SECRET),
        reqwest::Client::new(),
    )
    .unwrap();
    channel.verify(&request(SECRET, &body)).unwrap();
    channel.parse(&request(SECRET, &body)).unwrap();
    channel.parse(&request(SECRET, &cancel)).unwrap();
    assert!(channel.verify(&request("wrong", &body)).is_err());

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture works: the adapter's own lines are there.
    assert!(logs.contains("Cancellation parsed."), "{logs}");
    assert!(logs.contains("Request refused."), "{logs}");
    // The order's phone (`+1 212 555 0142`) appears in no form, masked or not.
    for fragment in ["555 0142", "***142", "customer_phone"] {
        assert!(!logs.contains(fragment), "`{fragment}` in {logs}");
    }
    assert!(!shows_digits(&logs, "0142"), "`0142` in {logs}");
    assert!(!logs.contains(SECRET), "{logs}");
}
