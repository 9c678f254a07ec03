//! What the adapter (and its simulator) log: phone numbers only masked, never the
//! secrets.
//!
//! A test binary of its own with one test: `tracing` caches per-callsite interest globally,
//! so capturing logs next to other tests running in parallel threads is racy.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use crossdock_adapter_deliveroo::simulator::{DeliverooSim, SimConfig};
use crossdock_adapter_deliveroo::{
    DEV_CLIENT_SECRET, DEV_WEBHOOK_SECRET, Deliveroo, DeliverooConfig, GUID_HEADER,
    SIGNATURE_HEADER, sign,
};
use crossdock_channel::sim::{SampleFulfillment, SampleItem, SampleOrder};
use crossdock_channel::{Channel, HeaderMap, Inbound, InboundRequest};
use crossdock_kit::logs::shows_digits;
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

fn request(body: &[u8], secret: &str) -> InboundRequest {
    let guid = "c0ffee00-1111-4222-8333-444455556666";
    let mut headers = HeaderMap::new();
    headers.insert(GUID_HEADER, guid.parse().expect("header"));
    headers.insert(
        SIGNATURE_HEADER,
        sign(secret.as_bytes(), guid, body).parse().expect("header"),
    );
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "http://hub.test/webhooks/deliveroo".into(),
        query: None,
        headers,
        body: body.to_vec().into(),
        received_at: Utc::now(),
    }
}

#[tokio::test]
async fn logs_mask_phone_numbers_and_never_show_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sim = DeliverooSim::start(SimConfig {
        // Nobody listens: the simulator's webhooks fail, which is logged too.
        hub_webhook_url: "http://127.0.0.1:9/webhooks/deliveroo".into(),
        status_webhooks: false,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let adapter = Deliveroo::new(
        DeliverooConfig {
            base_url: sim.base_url(),
            token_url: sim.token_url(),
            ..DeliverooConfig::default()
        },
        SecretString::from(DEV_CLIENT_SECRET),
        SecretString::from(DEV_WEBHOOK_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");

    // An order with a phone, parsed as the hub parses it.
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/deliveroo/order-new-restaurant-delivery-discount-fees.body"),
    )
    .expect("fixture");
    adapter
        .verify(&request(&body, DEV_WEBHOOK_SECRET))
        .expect("verifies");
    let delivery = adapter
        .parse(&request(&body, DEV_WEBHOOK_SECRET))
        .expect("parses");
    assert!(adapter.verify(&request(&body, "wrong")).is_err());
    let Inbound::Order(_) = delivery.inbound else {
        panic!("expected an order");
    };

    // An order placed on the simulator and accepted through the adapter (token, PATCH,
    // sync_status).
    let placed = sim
        .place_order(&SampleOrder {
            store_ref: Some("628401".into()),
            currency: "GBP".into(),
            fulfillment: SampleFulfillment::Pickup,
            customer_name: "Ada Lovelace".into(),
            customer_phone: Some("+44 20 7946 0991".into()),
            items: vec![SampleItem {
                plu: "PZ-MARG-L".into(),
                name: "Margherita (Large)".into(),
                quantity: 1,
                unit_price_minor: 1499,
                notes: None,
                modifiers: vec![],
            }],
            notes: None,
            delivery_fee_minor: 0,
            tip_minor: 0,
            discount_minor: 0,
            scheduled_for: None,
        })
        .await;
    let order_json = sim.order_json(&placed.external_order_id).expect("order");
    let new_order = serde_json::json!({"event": "order.new", "body": {"order": order_json}});
    let bytes = serde_json::to_vec(&new_order).expect("JSON");
    let Inbound::Order(order) = adapter
        .parse(&request(&bytes, DEV_WEBHOOK_SECRET))
        .expect("parses")
        .inbound
    else {
        panic!("expected an order");
    };
    let stored = Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status: Status::Received,
        store_id: None,
        flags: vec![],
        order: *order,
    };
    adapter
        .push(
            &stored,
            &StatusChange {
                action: StatusAction::Accept { prep_minutes: 10 },
                from: Status::Received,
                at: Utc::now(),
            },
        )
        .await
        .expect("accepted");
    sim.stop().await;

    let logs = String::from_utf8(captured.0.lock().expect("logs").clone()).expect("UTF-8");
    // The capture works: the adapter's own lines are there.
    assert!(logs.contains("Deliveroo order parsed."), "{logs}");
    assert!(logs.contains("Status pushed to Deliveroo."), "{logs}");
    assert!(
        logs.contains("Deliveroo simulator placed an order."),
        "{logs}"
    );
    // Phones appear masked at most.
    assert!(logs.contains("***021"), "the masked phone: {logs}");
    for fragment in ["3808 6021", "20571934", "7946 0991"] {
        assert!(!logs.contains(fragment), "`{fragment}` in {logs}");
    }
    assert!(!shows_digits(&logs, "7946"), "`7946` in {logs}");
    for secret in [DEV_CLIENT_SECRET, DEV_WEBHOOK_SECRET] {
        assert!(!logs.contains(secret), "a secret in {logs}");
    }
}
