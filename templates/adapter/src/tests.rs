//! Unit tests of the adapter: the signature, parsing (and its errors), push planning, pushes
//! against the simulator, configuration. The fixture files are written and checked by
//! `fixtures` (below); the conformance kit checks what they normalize to
//! (`tests/conformance.rs`).
//!
//! PLATFORM: pin every rule of the platform here, one test each (its signature's test
//! vector from the documentation, each field mapping the documentation leaves open, each
//! status call), as the adapter changes.

mod fixtures;

use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use crossdock_channel::sim::{Fault, SampleFulfillment, SampleItem, SampleOrder};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, HeaderMap, HeaderValue, Inbound,
    InboundRequest, Method, PushOutcome, SecretSource,
};
use crossdock_model::{
    FulfillmentKind, NewOrder, Order, OrderId, Status, StatusAction, StatusChange, Timing,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;
use crate::simulator::{@@Type@@Sim, OrderIds, SimConfig};

fn adapter_at(base_url: &str, api_key: &str) -> @@Type@@ {
    @@Type@@::new(
        @@Type@@Config {
            base_url: base_url.to_owned(),
            timeout_secs: 5,
        },
        SecretString::from(DEV_WEBHOOK_SECRET),
        SecretString::from(api_key),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn adapter() -> @@Type@@ {
    adapter_at(DEFAULT_BASE_URL, DEV_API_KEY)
}

fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time")
}

fn item(plu: &str, name: &str, quantity: i64, unit: i64, modifiers: Vec<SampleItem>) -> SampleItem {
    SampleItem {
        plu: plu.to_owned(),
        name: name.to_owned(),
        quantity,
        unit_price_minor: unit,
        notes: None,
        modifiers,
    }
}

/// A pickup order: a pizza with a nested option, and a drink.
fn sample() -> SampleOrder {
    SampleOrder {
        store_ref: Some("store-42".to_owned()),
        currency: "USD".to_owned(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "Ada Lovelace".to_owned(),
        customer_phone: Some("+1 212 555 0187".to_owned()),
        items: vec![
            item(
                "PZ-MARG-L",
                "Margherita (Large)",
                2,
                1899,
                vec![item(
                    "MOD-HALF-HALF",
                    "Half & half",
                    1,
                    0,
                    vec![item("MOD-HALF-PEPP", "Pepperoni (half)", 1, 100, vec![])],
                )],
            ),
            item("DR-COLA-500", "Cola (500 ml)", 1, 299, vec![]),
        ],
        notes: Some("ring the bell".to_owned()),
        delivery_fee_minor: 0,
        tip_minor: 200,
        discount_minor: 300,
        scheduled_for: None,
    }
}

/// A request as the hub receives it, with `signature` in the signature header.
fn request(body: &[u8], signature: Option<&str>) -> InboundRequest {
    let mut headers = HeaderMap::new();
    if let Some(signature) = signature {
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(signature).expect("header"),
        );
    }
    InboundRequest {
        method: Method::POST,
        event: None,
        url: format!("https://hub.crossdock.example/webhooks/{CHANNEL_ID}"),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: received_at(),
    }
}

/// `body` signed as the platform signs it.
fn signed(body: &[u8]) -> InboundRequest {
    request(body, Some(&simulator::sign(DEV_WEBHOOK_SECRET, body)))
}

fn webhook(sample: &SampleOrder) -> Vec<u8> {
    let ids = OrderIds {
        order_id: "ord_test_1".to_owned(),
        event_id: "evt_test_1".to_owned(),
        short_code: "T1".to_owned(),
    };
    serde_json::to_vec(&simulator::order_created(sample, &ids, received_at())).expect("JSON")
}

/// The sample's webhook with one change to its JSON, signed.
fn mutated(change: impl FnOnce(&mut Value)) -> InboundRequest {
    let mut value: Value = serde_json::from_slice(&webhook(&sample())).expect("JSON");
    change(&mut value);
    signed(&serde_json::to_vec(&value).expect("JSON"))
}

fn parse(request: &InboundRequest) -> Result<Delivery, ChannelError> {
    let adapter = adapter();
    adapter.verify(request)?;
    adapter.parse(request)
}

fn order_of(delivery: Delivery) -> NewOrder {
    match delivery.inbound {
        Inbound::Order(order) => *order,
        other => panic!("expected an order, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------

#[test]
fn a_body_signed_by_the_simulator_verifies_in_either_case_of_hex() {
    let body = webhook(&sample());
    assert_eq!(adapter().verify(&signed(&body)), Ok(()));
    let upper = simulator::sign(DEV_WEBHOOK_SECRET, &body).to_ascii_uppercase();
    assert_eq!(adapter().verify(&request(&body, Some(&upper))), Ok(()));
}

#[test]
fn a_tampered_body_or_signature_is_refused() {
    let body = webhook(&sample());
    let signature = simulator::sign(DEV_WEBHOOK_SECRET, &body);
    let mut tampered = body.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    assert!(matches!(
        adapter().verify(&request(&tampered, Some(&signature))),
        Err(ChannelError::Unauthorized(_))
    ));
    let mut bad = signature.into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).expect("hex");
    assert!(matches!(
        adapter().verify(&request(&body, Some(&bad))),
        Err(ChannelError::Unauthorized(_))
    ));
    let other_secret = simulator::sign("another secret", &body);
    assert!(matches!(
        adapter().verify(&request(&body, Some(&other_secret))),
        Err(ChannelError::Unauthorized(_))
    ));
}

#[test]
fn a_missing_signature_is_refused_naming_the_header() {
    let error = adapter()
        .verify(&request(&webhook(&sample()), None))
        .expect_err("unsigned");
    assert_eq!(
        error,
        ChannelError::Unauthorized(format!("missing header {SIGNATURE_HEADER}"))
    );
    assert_eq!(error.http_status().as_u16(), 401);
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

#[test]
fn an_order_becomes_the_unified_order() {
    let delivery = parse(&signed(&webhook(&sample()))).expect("parses");
    assert_eq!(delivery.dedupe_key, "evt_test_1");
    let order = order_of(delivery);
    assert_eq!(order.channel.as_str(), CHANNEL_ID);
    assert_eq!(order.external_order_id, "ord_test_1");
    assert_eq!(order.display_code.as_deref(), Some("T1"));
    assert_eq!(order.channel_store_ref.as_deref(), Some("store-42"));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    assert_eq!(
        order.fulfillment.accept_by,
        Some(received_at() + ACCEPT_WINDOW)
    );
    assert_eq!(order.customer.name, "Ada Lovelace");
    assert_eq!(order.notes.as_deref(), Some("ring the bell"));
    assert_eq!(order.lines.len(), 2);
    let pizza = &order.lines[0];
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!((pizza.quantity, pizza.unit_price.minor), (2, 1899));
    assert_eq!(pizza.total.minor, (1899 + 100) * 2);
    assert_eq!(pizza.modifiers[0].modifiers[0].name, "Pepperoni (half)");
    assert_eq!(order.totals.currency.code(), "USD");
    assert_eq!(order.totals.subtotal.minor, 3998 + 299);
    assert_eq!(order.totals.discounts[0].amount.minor, 300);
    assert_eq!(order.totals.tip.minor, 200);
    assert_eq!(order.totals.total.minor, 3998 + 299 - 300 + 200);
    assert_eq!(order.check(), Ok(vec![]), "the parts add up");
}

#[test]
fn a_field_of_the_wrong_type_is_malformed_naming_it() {
    let request = mutated(|v| v["order"]["items"][0]["quantity"] = json!("two"));
    match parse(&request) {
        Err(ChannelError::Malformed(message)) => {
            assert!(message.starts_with("order.items[0].quantity: "), "{message}");
        }
        other => panic!("expected malformed, got {other:?}"),
    }
    let request = mutated(|v| v["order"]["fulfillment"]["type"] = json!("teleport"));
    match parse(&request) {
        Err(ChannelError::Malformed(message)) => {
            assert!(message.starts_with("order.fulfillment.type: "), "{message}");
        }
        other => panic!("expected malformed, got {other:?}"),
    }
    let request = mutated(|v| v["order"]["id"] = json!(" "));
    assert_eq!(
        parse(&request),
        Err(ChannelError::Malformed(
            "order.id: must not be empty".to_owned()
        ))
    );
}

#[test]
fn a_fractional_minor_unit_fails_the_order_naming_the_field() {
    let request = mutated(|v| v["order"]["items"][1]["unit_price"] = json!(299.5));
    match parse(&request) {
        Err(error @ ChannelError::Order(_)) => {
            assert!(
                error.to_string().contains("order.items[1].unit_price"),
                "{error}"
            );
            assert!(!error.is_retryable());
        }
        other => panic!("expected an order error, got {other:?}"),
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let request = mutated(|v| v["order"]["loyalty_tier"] = json!({ "level": "gold" }));
    assert!(parse(&request).is_ok());
}

#[test]
fn a_cancellation_names_the_order_and_unknown_events_are_ignored() {
    let body = serde_json::to_vec(&simulator::order_cancelled(
        "ord_test_1",
        "evt_cancel_1",
        Some("customer changed their mind"),
        received_at(),
    ))
    .expect("JSON");
    let delivery = parse(&signed(&body)).expect("parses");
    assert_eq!(delivery.dedupe_key, "evt_cancel_1");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "ord_test_1".to_owned(),
            reason: Some("customer changed their mind".to_owned()),
        }
    );
    let body = br#"{"event_id":"evt_9","event_type":"menu.published","created_at":"2026-11-20T12:00:00Z"}"#;
    let delivery = parse(&signed(body)).expect("parses");
    assert_eq!(
        delivery.inbound,
        Inbound::Ignored {
            event: "menu.published".to_owned()
        }
    );
}

#[test]
fn a_scheduled_order_keeps_its_time() {
    let mut scheduled = sample();
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 18, 30, 0)
        .single()
        .expect("time");
    scheduled.scheduled_for = Some(at);
    let order = order_of(parse(&signed(&webhook(&scheduled))).expect("parses"));
    assert_eq!(order.fulfillment.timing, Timing::Scheduled { at });
}

// ---------------------------------------------------------------------------------------
// Pushes
// ---------------------------------------------------------------------------------------

fn change(action: StatusAction, from: Status) -> StatusChange {
    StatusChange {
        action,
        from,
        at: received_at(),
    }
}

#[test]
fn every_action_has_a_call_or_says_why_not() {
    let calls: Vec<(StatusAction, Option<&str>)> = vec![
        (StatusAction::Accept { prep_minutes: 12 }, Some("accept")),
        (
            StatusAction::Reject {
                reason: "closed".into(),
            },
            Some("reject"),
        ),
        (StatusAction::Preparing, None),
        (StatusAction::Ready, Some("ready")),
        (StatusAction::PickedUp, None),
        (StatusAction::Delivered, None),
        (StatusAction::Complete, None),
        (
            StatusAction::Cancel {
                reason: "out of dough".into(),
            },
            Some("cancel"),
        ),
        (
            StatusAction::Fail {
                reason: "store offline".into(),
            },
            Some("cancel"),
        ),
    ];
    for (action, expected) in calls {
        match (plan(&change(action.clone(), Status::Accepted)), expected) {
            (Plan::Call { call, .. }, Some(expected)) => assert_eq!(call, expected),
            (Plan::NotApplicable(why), None) => assert!(!why.is_empty()),
            (plan, _) => panic!("{action:?} planned as {plan:?}"),
        }
    }
}

/// The order the adapter makes of the webhook the simulator would send for `id`.
fn stored(sim: &@@Type@@Sim, id: &str) -> Order {
    let body = sim.webhook_body(id).expect("the simulator has the order");
    Order {
        id: OrderId::new(),
        received_at: received_at(),
        updated_at: received_at(),
        status: Status::Received,
        store_id: None,
        flags: Vec::new(),
        order: order_of(parse(&signed(&body)).expect("parses")),
    }
}

#[tokio::test]
async fn pushes_reach_the_simulator_and_failures_are_classified() {
    let sim = @@Type@@Sim::start(SimConfig::default())
        .await
        .expect("simulator");
    let adapter = adapter_at(&sim.base_url(), DEV_API_KEY);
    let id = sim.add_order(&sample());
    let order = stored(&sim, &id);

    let accept = change(StatusAction::Accept { prep_minutes: 12 }, Status::Received);
    let outcome = adapter.push(&order, &accept).await.expect("accepted");
    assert!(matches!(outcome, PushOutcome::Delivered { .. }), "{outcome:?}");
    assert_eq!(sim.status(&id), Some(Status::Accepted));
    assert_eq!(sim.prep_minutes(&id), Some(12));
    let calls = sim.calls().all();
    assert_eq!(calls[0].path, format!("/v1/orders/{id}/accept"));
    assert_eq!(calls[0].headers["authorization"], "<redacted>");
    assert_eq!(calls[0].body, json!({ "prep_minutes": 12 }));
    // A retried push changes nothing and is delivered again.
    assert!(adapter.push(&order, &accept).await.is_ok());

    let preparing = change(StatusAction::Preparing, Status::Accepted);
    assert!(matches!(
        adapter.push(&order, &preparing).await,
        Ok(PushOutcome::NotApplicable { .. })
    ));
    assert_eq!(sim.calls().all().len(), 2, "no call for `preparing`");

    // Outages and rate limits are retryable; the platform's refusals are not.
    let ready = change(StatusAction::Ready, Status::Accepted);
    sim.faults().push(
        Fault {
            status: Some(503),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = adapter.push(&order, &ready).await.expect_err("503");
    assert!(error.is_retryable(), "{error}");
    sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(7),
            delay: None,
        },
        1,
    );
    let error = adapter.push(&order, &ready).await.expect_err("429");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(adapter.push(&order, &ready).await.is_ok());
    assert_eq!(sim.status(&id), Some(Status::Ready));

    let reject = change(
        StatusAction::Reject {
            reason: "closed".into(),
        },
        Status::Received,
    );
    let error = adapter.push(&order, &reject).await.expect_err("409");
    assert!(
        matches!(error, ChannelError::Platform { status: 409, .. }),
        "{error}"
    );
    assert!(!error.is_retryable());

    let mut unknown = order.clone();
    unknown.order.external_order_id = "ord_nobody/../x".to_owned();
    let error = adapter.push(&unknown, &accept).await.expect_err("404");
    assert!(
        matches!(error, ChannelError::Platform { status: 404, .. }),
        "{error}"
    );

    let forged = adapter_at(&sim.base_url(), "not the key");
    let error = forged.push(&order, &ready).await.expect_err("401");
    assert!(
        matches!(error, ChannelError::Platform { status: 401, .. }),
        "{error}"
    );
    assert!(!error.is_retryable());
    sim.stop().await;
}

// PLATFORM: the platform's own acceptance deadline, and what it answers after it.
#[tokio::test]
async fn an_order_not_accepted_in_time_expires_on_the_platform() {
    let sim = @@Type@@Sim::start(SimConfig::default())
        .await
        .expect("simulator");
    let adapter = adapter_at(&sim.base_url(), DEV_API_KEY);
    let id = sim.add_order(&sample());
    let order = stored(&sim, &id);
    // The simulator's clock, not a sleep: the deadline passes at once.
    sim.clock()
        .advance(ACCEPT_WINDOW.to_std().expect("a positive window") + Duration::from_secs(1));
    assert_eq!(sim.status(&id), Some(Status::Failed));
    let accept = change(StatusAction::Accept { prep_minutes: 12 }, Status::Received);
    let error = adapter.push(&order, &accept).await.expect_err("too late");
    assert!(!error.is_retryable(), "{error}");
    sim.stop().await;
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

fn settings(options: Value, development: bool) -> ChannelSettings {
    ChannelSettings {
        channel: CHANNEL_ID.to_owned(),
        options,
        secrets: SecretSource::new(Default::default(), development),
        dev_secrets: Factory.dev_secrets(),
        http: reqwest::Client::new(),
    }
}

#[test]
fn the_factory_builds_from_defaults_and_refuses_bad_options() {
    let channel = Factory
        .build(&settings(Value::Null, true))
        .expect("development defaults");
    assert_eq!(channel.id().as_str(), CHANNEL_ID);
    let error = Factory
        .build(&settings(Value::Null, false))
        .err()
        .expect("production needs the secrets");
    assert!(matches!(error, ConfigError::MissingSecret { .. }), "{error}");
    for options in [
        json!({ "base_url": "not a url" }),
        json!({ "base_url": "ftp://example.com" }),
        json!({ "timeout_secs": 0 }),
        json!({ "unknown_option": true }),
    ] {
        assert!(
            Factory.build(&settings(options.clone(), true)).is_err(),
            "{options} was taken"
        );
    }
}
