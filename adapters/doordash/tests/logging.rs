//! What the adapter logs while it reads orders and pushes statuses: never a full phone
//! number (only its masked tail), never the webhook token, the signing secret or a JWT.
//!
//! A test binary of its own with one test: `tracing` caches per-callsite interest globally,
//! so capturing logs next to other tests running in parallel threads is racy.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use chrono::Utc;
use crossdock_adapter_doordash::simulator::{DoorDashSim, SimConfig};
use crossdock_adapter_doordash::{
    DEV_SIGNING_SECRET, DEV_WEBHOOK_AUTHORIZATION, DoorDash, DoorDashConfig,
};
use crossdock_channel::normalize::parse_headers;
use crossdock_channel::{Channel, Inbound, InboundRequest};
use crossdock_model::{Order, OrderId, Status, StatusAction, StatusChange};
use secrecy::SecretString;

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

fn fixture(name: &str, event: Option<&str>) -> InboundRequest {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/doordash");
    let body = std::fs::read(dir.join(format!("{name}.body"))).expect("body");
    let headers = parse_headers(
        &std::fs::read_to_string(dir.join(format!("{name}.headers"))).expect("headers"),
    )
    .expect("headers file");
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: event.map(str::to_owned),
        url: "https://hub.crossdock.example/webhooks/doordash".to_owned(),
        query: None,
        headers,
        body: Bytes::from(body),
        received_at: Utc::now(),
    }
}

#[tokio::test]
async fn logs_never_show_phone_numbers_tokens_or_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sim = DoorDashSim::start(SimConfig::default())
        .await
        .expect("simulator");
    let adapter = DoorDash::new(
        DoorDashConfig {
            base_url: sim.base_url(),
            ..DoorDashConfig::default()
        },
        SecretString::from(DEV_WEBHOOK_AUTHORIZATION),
        SecretString::from(DEV_SIGNING_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");

    let request = fixture("order-dasher-delivery", None);
    adapter.verify(&request).expect("verifies");
    let Inbound::Order(order) = adapter.parse(&request).expect("parses").inbound else {
        panic!("an order");
    };
    adapter
        .parse(&fixture("order-canceled-webhook", Some("cancel")))
        .expect("cancel parses");
    let mut forged = fixture("order-dasher-delivery", None);
    forged
        .headers
        .insert("authorization", "Bearer forged".parse().expect("header"));
    assert!(adapter.verify(&forged).is_err());
    // A push the simulator refuses (it does not know the fixture's order) is logged too.
    let order = Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status: Status::Received,
        store_id: None,
        flags: vec![],
        order: *order,
    };
    let pushed = adapter
        .push(
            &order,
            &StatusChange {
                action: StatusAction::Accept { prep_minutes: 10 },
                from: Status::Received,
                at: Utc::now(),
            },
        )
        .await;
    assert!(pushed.is_err(), "unknown to the simulator: 404");
    sim.stop().await;

    let logs = String::from_utf8(captured.0.lock().expect("logs").clone()).expect("utf-8");
    // The capture works: the adapter's own lines are there.
    assert!(logs.contains("DoorDash order parsed."), "{logs}");
    assert!(logs.contains("DoorDash cancelled an order."), "{logs}");
    assert!(logs.contains("Status push to DoorDash failed."), "{logs}");
    // The phone (`+1 (646) 555-0123`) appears only masked.
    assert!(logs.contains("***123"), "{logs}");
    for fragment in ["555-0123", "5550123", "(646)"] {
        assert!(!logs.contains(fragment), "`{fragment}` in {logs}");
    }
    let token = DEV_WEBHOOK_AUTHORIZATION.trim_start_matches("Bearer ");
    for secret in [token, DEV_SIGNING_SECRET, "eyJ"] {
        assert!(!logs.contains(secret), "`{secret}` in {logs}");
    }
}
