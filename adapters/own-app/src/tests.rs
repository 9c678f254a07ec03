//! Unit tests of the own_app channel: authentication, parsing, replies, pushes and
//! configuration.
//!
//! The fixtures are checked against their expected documents by the adapter kit
//! (`tests/conformance.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Inbound, InboundRequest,
    Outcome, PushOutcome, SecretSource, StatusCode,
};
use crossdock_model::{
    Currency, FulfillmentKind, Money, Order, OrderError, OrderId, Status, StatusAction,
    StatusChange,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "unit-test-secret";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn received() -> DateTime<Utc> {
    at("2025-11-23T23:50:00Z")
}

fn channel() -> OwnApp {
    channel_with(OwnAppConfig::default())
}

fn channel_with(config: OwnAppConfig) -> OwnApp {
    OwnApp::new(config, SecretString::from(SECRET), reqwest::Client::new()).unwrap()
}

/// A request as the hub builds it, signed with `secret` at `timestamp`.
fn request_signed(secret: &str, body: &[u8], timestamp: i64) -> InboundRequest {
    let mut headers = HeaderMap::new();
    for (name, value) in signed_headers(secret.as_bytes(), timestamp, body) {
        headers.insert(
            HeaderName::try_from(name).unwrap(),
            HeaderValue::try_from(value).unwrap(),
        );
    }
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "http://hub.test/webhooks/own_app".into(),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: received(),
    }
}

fn request(body: &[u8]) -> InboundRequest {
    request_signed(SECRET, body, received().timestamp())
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/own_app")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn parse_value(body: &Value) -> Result<crossdock_channel::Delivery, ChannelError> {
    let bytes = serde_json::to_vec(body).unwrap();
    channel().parse(&request(&bytes))
}

/// What the hub does with a request: the adapter parses, the model checks the order.
fn parse_and_check(body: &Value) -> Result<NewOrder, ChannelError> {
    match parse_value(body)?.inbound {
        Inbound::Order(order) => {
            order.check()?;
            Ok(*order)
        }
        other => panic!("expected an order, got {other:?}"),
    }
}

fn parsed_order(name: &str) -> NewOrder {
    match channel().parse(&request(&fixture(name))).unwrap().inbound {
        Inbound::Order(order) => *order,
        other => panic!("{name}: expected an order, got {other:?}"),
    }
}

// ----- authentication -----

#[test]
fn a_correct_signature_is_accepted() {
    let body = fixture("delivery_nyc.body");
    assert_eq!(channel().verify(&request(&body)), Ok(()));
}

#[test]
fn upper_case_hex_is_accepted() {
    let body = fixture("cancel.body");
    let mut request = request(&body);
    let upper = request
        .header(SIGNATURE_HEADER)
        .unwrap()
        .to_ascii_uppercase();
    request
        .headers
        .insert(SIGNATURE_HEADER, HeaderValue::try_from(upper).unwrap());
    assert_eq!(channel().verify(&request), Ok(()));
}

#[test]
fn any_changed_byte_breaks_the_signature() {
    let body = fixture("delivery_nyc.body");
    let signed = request(&body);
    for index in [0, body.len() / 2, body.len() - 1] {
        let mut tampered = signed.clone();
        let mut bytes = body.clone();
        bytes[index] ^= 0x01;
        tampered.body = Bytes::from(bytes);
        let error = channel().verify(&tampered).unwrap_err();
        assert!(
            matches!(&error, ChannelError::Unauthorized(m) if m.contains("X-Crossdock-Signature does not match")),
            "byte {index}: {error:?}"
        );
    }
    // The timestamp is signed too.
    let mut moved = signed.clone();
    moved.headers.insert(
        TIMESTAMP_HEADER,
        HeaderValue::from(received().timestamp() + 1),
    );
    assert!(matches!(
        channel().verify(&moved),
        Err(ChannelError::Unauthorized(_))
    ));
    // And the secret.
    let forged = request_signed("another-secret", &body, received().timestamp());
    assert!(matches!(
        channel().verify(&forged),
        Err(ChannelError::Unauthorized(_))
    ));
}

#[test]
fn missing_headers_are_named() {
    let body = fixture("cancel.body");
    for header in [TIMESTAMP_HEADER, SIGNATURE_HEADER] {
        let mut request = request(&body);
        request.headers.remove(header);
        assert_eq!(
            channel().verify(&request),
            Err(ChannelError::Unauthorized(format!(
                "missing header {header}"
            )))
        );
    }
    let mut request = request(&body);
    request
        .headers
        .insert(TIMESTAMP_HEADER, HeaderValue::from_static("yesterday"));
    let error = channel().verify(&request).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Unauthorized(m) if m.contains("not unix seconds")),
        "{error:?}"
    );
}

#[test]
fn the_signature_covers_the_exact_timestamp_text() {
    let body = fixture("cancel.body");
    let text = format!(" {}", received().timestamp());
    let with_timestamp = |signed_text: &str| {
        let mut request = request(&body);
        request.headers.insert(
            TIMESTAMP_HEADER,
            HeaderValue::try_from(text.as_str()).unwrap(),
        );
        let signature = crossdock_channel::signature::hmac_sha256_hex(
            SECRET.as_bytes(),
            &[signed_text.as_bytes(), b".", &body],
        );
        request
            .headers
            .insert(SIGNATURE_HEADER, HeaderValue::try_from(signature).unwrap());
        request
    };
    // Signed over the header's raw text, leading space included: accepted.
    assert_eq!(channel().verify(&with_timestamp(&text)), Ok(()));
    // Signed over the trimmed number instead: not what was sent, refused.
    let error = channel().verify(&with_timestamp(text.trim())).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Unauthorized(m) if m.contains("X-Crossdock-Signature does not match")),
        "{error:?}"
    );
}

#[test]
fn timestamps_outside_the_window_are_stale_in_both_directions() {
    let body = fixture("cancel.body");
    let now = received().timestamp();
    for (offset, stale) in [
        (-301, true),
        (-300, false),
        (0, false),
        (300, false),
        (301, true),
    ] {
        let result = channel().verify(&request_signed(SECRET, &body, now + offset));
        if stale {
            let error = result.unwrap_err();
            assert!(
                matches!(error, ChannelError::Stale(_)),
                "{offset}: {error:?}"
            );
            let side = if offset < 0 { "before" } else { "after" };
            assert!(error.to_string().contains(side), "{error}");
        } else {
            assert_eq!(result, Ok(()), "offset {offset}");
        }
    }
    let narrow = channel_with(OwnAppConfig {
        replay_window_s: 60,
    });
    assert!(matches!(
        narrow.verify(&request_signed(SECRET, &body, now - 61)),
        Err(ChannelError::Stale(_))
    ));
    // A wrong signature is unauthorized even when it is also stale.
    assert!(matches!(
        channel().verify(&request_signed("other", &body, now - 3600)),
        Err(ChannelError::Unauthorized(_))
    ));
}

// ----- parsing -----

#[test]
fn parse_errors_name_the_field() {
    let delivery = fixture_value("delivery_nyc.body");
    let pickup = fixture_value("pickup_half_and_half_london.body");
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, &Value, Edit, &str)> = vec![
        (
            "no event",
            &delivery,
            |v| drop(v.as_object_mut().unwrap().remove("event")),
            "body: missing field `event`",
        ),
        (
            "unknown event",
            &delivery,
            |v| v["event"] = json!("order.updated"),
            "event: unknown event `order.updated`; expected `order.created` or `order.cancelled`",
        ),
        (
            "empty event id",
            &delivery,
            |v| v["event_id"] = json!(" "),
            "event_id: must not be empty",
        ),
        (
            "float price",
            &delivery,
            |v| v["order"]["items"][0]["unit_price"] = json!(21.99),
            "order.items[0].unit_price: invalid type: floating point `21.99`, expected i64",
        ),
        (
            "float modifier price",
            &pickup,
            |v| v["order"]["items"][0]["modifiers"][1]["modifiers"][0]["unit_price"] = json!(0.8),
            "order.items[0].modifiers[1].modifiers[0].unit_price: invalid type",
        ),
        (
            "float amount",
            &delivery,
            |v| v["order"]["amounts"]["total"] = json!(45.39),
            "order.amounts.total: invalid type",
        ),
        (
            "string quantity",
            &delivery,
            |v| v["order"]["items"][1]["quantity"] = json!("1"),
            "order.items[1].quantity: invalid type",
        ),
        (
            "no currency",
            &delivery,
            |v| drop(v["order"].as_object_mut().unwrap().remove("currency")),
            "order: missing field `currency`",
        ),
        (
            "bad currency",
            &delivery,
            |v| v["order"]["currency"] = json!("DOLLARS"),
            "order.currency: currency `DOLLARS` is not a three-letter ISO-4217 code",
        ),
        (
            "unknown fulfilment",
            &delivery,
            |v| v["order"]["fulfillment"] = json!("drive_thru"),
            "order.fulfillment: unknown variant `drive_thru`",
        ),
        (
            "bad placed_at",
            &delivery,
            |v| v["order"]["placed_at"] = json!("yesterday"),
            "order.placed_at:",
        ),
        (
            "pickup without store",
            &pickup,
            |v| drop(v["order"].as_object_mut().unwrap().remove("store_id")),
            "order.store_id: required for pickup orders",
        ),
        (
            "dine-in without store",
            &pickup,
            |v| {
                v["order"]["fulfillment"] = json!("dine_in");
                v["order"].as_object_mut().unwrap().remove("store_id");
            },
            "order.store_id: required for dine_in orders",
        ),
        (
            "bad store id",
            &pickup,
            |v| v["order"]["store_id"] = json!("LDN 001"),
            "order.store_id: store id `LDN 001` may only contain",
        ),
        (
            "delivery without delivery",
            &delivery,
            |v| drop(v["order"].as_object_mut().unwrap().remove("delivery")),
            "order.delivery: required for delivery orders",
        ),
        (
            "delivery without location",
            &delivery,
            |v| {
                drop(
                    v["order"]["delivery"]
                        .as_object_mut()
                        .unwrap()
                        .remove("location"),
                )
            },
            "order.delivery: missing field `location`",
        ),
        (
            "created without order",
            &delivery,
            |v| drop(v.as_object_mut().unwrap().remove("order")),
            "body: missing field `order`",
        ),
        (
            "cancelled without order id",
            &delivery,
            |v| {
                v["event"] = json!("order.cancelled");
                v.as_object_mut().unwrap().remove("order");
            },
            "body: missing field `order_id`",
        ),
        (
            "cancelled with a numeric order id",
            &delivery,
            |v| {
                v["event"] = json!("order.cancelled");
                v["order_id"] = json!(42);
            },
            "order_id: invalid type: integer `42`, expected a string",
        ),
        (
            "negative tip",
            &delivery,
            |v| v["order"]["amounts"]["tip"] = json!(-100),
            "order.amounts.tip: -100 is negative",
        ),
        (
            "callback not http",
            &delivery,
            |v| v["order"]["callback_url"] = json!("ftp://app.example/cb"),
            "order.callback_url: `ftp://app.example/cb` must be an http or https URL",
        ),
        (
            "callback not a url",
            &delivery,
            |v| v["order"]["callback_url"] = json!("/callbacks"),
            "order.callback_url: `/callbacks` is not a URL",
        ),
        (
            "empty sku",
            &delivery,
            |v| v["order"]["items"][2]["sku"] = json!(""),
            "order.items[2].sku: must not be empty",
        ),
        (
            "empty order id",
            &delivery,
            |v| v["order"]["id"] = json!(""),
            "order.id: must not be empty",
        ),
    ];
    for (what, base, edit, expected) in cases {
        let mut body = base.clone();
        edit(&mut body);
        match parse_value(&body) {
            Err(ChannelError::Malformed(message)) => assert!(
                message.starts_with(expected),
                "{what}: `{message}` does not start with `{expected}`"
            ),
            other => panic!("{what}: expected malformed, got {other:?}"),
        }
    }
    let error = channel().parse(&request(b"{\"event\": ")).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Malformed(m) if m.starts_with("event: EOF while parsing")),
        "{error:?}"
    );
}

#[test]
fn orders_the_hub_cannot_take_are_order_errors() {
    let mut body = fixture_value("delivery_nyc.body");
    body["order"]["items"][0]["quantity"] = json!(0);
    assert!(matches!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::BadQuantity {
            line: 1,
            quantity: 0,
            ..
        }))
    ));
    let mut body = fixture_value("delivery_nyc.body");
    body["order"]["items"] = json!([]);
    assert_eq!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::NoLines))
    );
    let mut body = fixture_value("delivery_nyc.body");
    body["order"]["items"][0]["unit_price"] = json!(i64::MAX);
    assert!(matches!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::MoneyAt {
            field,
            source: crossdock_model::MoneyError::Overflow { .. },
        })) if field == "order.items[0]"
    ));
    // Coordinates out of range: refused by the model's check, naming both values.
    let mut body = fixture_value("delivery_nyc.body");
    body["order"]["delivery"]["location"]["lat"] = json!(140.7);
    assert_eq!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::BadCoordinates {
            lat: 140.7,
            lng: -74.0014
        }))
    );
    let mut body = fixture_value("delivery_nyc.body");
    body["order"]["delivery"]["location"]["lng"] = json!(-181);
    assert_eq!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::BadCoordinates {
            lat: 40.7463,
            lng: -181.0
        }))
    );
    let error = parse_and_check(&body).unwrap_err();
    assert_eq!(error.http_status(), StatusCode::BAD_REQUEST);
    assert!(
        error
            .to_string()
            .contains("(40.7463, -181) are out of range"),
        "{error}"
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let plain = parsed_order("delivery_nyc.body");
    let mut body = fixture_value("delivery_nyc.body");
    body["api_version"] = json!("2026-01");
    body["order"]["loyalty"] = json!({"points": 120, "tier": "gold"});
    body["order"]["customer"]["email"] = json!("maya@example.com");
    body["order"]["delivery"]["location"]["accuracy_m"] = json!(12.5);
    body["order"]["delivery"]["address"]["floor"] = json!(4);
    body["order"]["items"][0]["image_url"] = json!("https://cdn.example/p.png");
    body["order"]["items"][0]["modifiers"][0]["calories"] = json!(0);
    body["order"]["amounts"]["rounding"] = json!(0);
    match parse_value(&body).unwrap().inbound {
        Inbound::Order(order) => assert_eq!(*order, plain),
        other => panic!("expected an order, got {other:?}"),
    }
    let mut body = fixture_value("cancel.body");
    body["source"] = json!("customer_app");
    assert_eq!(
        parse_value(&body).unwrap(),
        channel().parse(&request(&fixture("cancel.body"))).unwrap()
    );
}

#[test]
fn the_mapping_follows_the_documented_rules() {
    let usd = |minor| Money::new(minor, Currency::parse("USD").unwrap());
    let order = parsed_order("delivery_nyc.body");
    assert_eq!(order.channel.as_str(), "own_app");
    assert_eq!(order.channel_store_ref, None, "delivery is routed by zone");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(
        order.fulfillment.delivered_by,
        Some(crossdock_model::DeliveredBy::Store)
    );
    let coordinates = order
        .fulfillment
        .address
        .as_ref()
        .unwrap()
        .coordinates
        .unwrap();
    assert_eq!(coordinates.system, crossdock_model::CoordSystem::Wgs84);
    assert_eq!(order.placed_at, at("2025-11-23T23:42:07Z"));
    assert_eq!(
        order.channel_data,
        json!({"callback_url": "https://api.crossdock-pizza.example/own-app/callbacks/status"})
    );
    // 2199 + thin 0 + mozzarella 200.
    assert_eq!(order.lines[0].total, usd(2399));
    assert_eq!(order.lines[0].plu.as_deref(), Some("PZ-PEPP-L"));
    // (699 + 2 × 99) × 1.
    assert_eq!(order.lines[1].total, usd(897));

    let order = parsed_order("discount_fees_tip_nyc.body");
    assert_eq!(order.totals.discounts.len(), 1);
    assert_eq!(
        order.totals.discounts[0].funded_by,
        crossdock_model::FundedBy::Merchant
    );
    assert_eq!(order.totals.cash_due, Some(usd(8661)));
    assert_eq!(order.payment, crossdock_model::Payment::CashOnDelivery);

    let order = parsed_order("pickup_half_and_half_london.body");
    assert_eq!(order.channel_store_ref.as_deref(), Some("LDN-001"));
    assert_eq!(order.fulfillment.address, None);
    assert!(order.totals.tax_included);
    let half = &order.lines[0].modifiers[1];
    assert_eq!(half.name, "Half & half");
    assert_eq!(half.modifiers.len(), 2);
    assert!(order.lines[1].modifiers[2].removed);

    let order = parsed_order("scheduled_pickup_nyc.body");
    assert_eq!(
        order.fulfillment.timing,
        crossdock_model::Timing::Scheduled {
            at: at("2025-11-24T17:30:00Z")
        }
    );

    let order = parsed_order("unicode_dine_in_shanghai.body");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::DineIn);
    assert_eq!(order.customer.name, "王小明");
    assert_eq!(
        order.lines[0].notes.as_deref(),
        Some("🍕 extra hot 多加辣 🌶️🌶️")
    );
}

#[test]
fn a_cancellation_is_parsed() {
    let delivery = channel().parse(&request(&fixture("cancel.body"))).unwrap();
    assert_eq!(delivery.dedupe_key, "evt_01JDB9R7T9W1Y3A5C7E9G1J3L5");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "OA20251123-7C1E0B4A9D21".into(),
            reason: Some("Customer changed their mind".into()),
        }
    );
    let body = json!({"event": "order.cancelled", "event_id": "e", "order_id": ""});
    assert_eq!(
        parse_value(&body),
        Err(ChannelError::Malformed(
            "order_id: must not be empty".into()
        ))
    );
}

// ----- replies -----

#[test]
fn replies_follow_the_api() {
    let channel = channel();
    let id = OrderId::new();
    let request = request(&fixture("delivery_nyc.body"));
    let delivery = channel.parse(&request).unwrap();
    let reply = channel.reply(
        &request,
        Outcome::Accepted {
            delivery: &delivery,
            order_id: Some(id),
            duplicate: false,
        },
    );
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.content_type, Some("application/json"));
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        body,
        json!({"order_id": id.to_string(), "status": "received", "duplicate": false})
    );
    let reply = channel.reply(
        &request,
        Outcome::Accepted {
            delivery: &delivery,
            order_id: None,
            duplicate: true,
        },
    );
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        body,
        json!({"order_id": null, "status": "received", "duplicate": true})
    );
    let error = ChannelError::Stale("too old".into());
    let reply = channel.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["error"], "stale");
    let error = ChannelError::Malformed("order.currency: nope".into());
    assert_eq!(
        channel.reply(&request, Outcome::Refused(&error)).status,
        StatusCode::BAD_REQUEST
    );
}

// ----- pushes -----

/// A scripted answer: status and `Retry-After`.
type Scripted = (u16, Option<&'static str>);

/// A stand-in app backend that records raw callbacks and answers with scripted statuses.
#[derive(Clone, Default)]
struct Backend {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answers: Arc<Mutex<Vec<Scripted>>>,
}

async fn backend_handler(
    State(backend): State<Backend>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    backend.received.lock().unwrap().push((headers, body));
    let next = {
        let mut answers = backend.answers.lock().unwrap();
        if answers.is_empty() {
            None
        } else {
            Some(answers.remove(0))
        }
    };
    match next {
        Some((status, retry_after)) => {
            let mut headers = HeaderMap::new();
            if let Some(seconds) = retry_after {
                headers.insert("retry-after", HeaderValue::from_static(seconds));
            }
            (StatusCode::from_u16(status).unwrap(), headers, "scripted").into_response()
        }
        None => (StatusCode::OK, "{}").into_response(),
    }
}

async fn start_backend() -> (Backend, String) {
    let backend = Backend::default();
    let router = axum::Router::new()
        .route("/cb", axum::routing::post(backend_handler))
        .with_state(backend.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (backend, format!("http://{addr}/cb"))
}

fn stored(order: NewOrder) -> Order {
    Order {
        id: OrderId::new(),
        received_at: received(),
        updated_at: received(),
        status: Status::Received,
        store_id: None,
        flags: vec![],
        order,
    }
}

fn stored_with_callback(url: &str) -> Order {
    let mut order = parsed_order("delivery_nyc.body");
    order.channel_data = json!({ "callback_url": url });
    stored(order)
}

#[tokio::test]
async fn pushes_are_signed_callbacks_with_the_documented_body() {
    let (backend, url) = start_backend().await;
    let channel = channel();
    let order = stored_with_callback(&url);
    let before = Utc::now().timestamp();
    // The store accepted ten minutes ago; the push comes now (a retry, say).
    let changed_at = Utc::now() - chrono::TimeDelta::minutes(10);
    let outcome = channel
        .push(
            &order,
            &change_at(StatusAction::Accept { prep_minutes: 15 }, changed_at),
        )
        .await
        .unwrap();
    assert!(
        matches!(&outcome, PushOutcome::Delivered { detail } if detail == "accepted callback to 127.0.0.1 answered 200"),
        "{outcome:?}"
    );
    let (headers, body) = backend.received.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/json");
    let timestamp =
        verify_signed(SECRET.as_bytes(), &headers, &body, Utc::now(), 5).expect("signed");
    assert!(timestamp >= before);
    let mut value: Value = serde_json::from_slice(&body).unwrap();
    let at = value.as_object_mut().unwrap().remove("at").unwrap();
    let at = DateTime::parse_from_rfc3339(at.as_str().unwrap()).unwrap();
    assert_eq!(
        at.timestamp(),
        changed_at.timestamp(),
        "`at` is when the status changed"
    );
    assert_eq!(
        value,
        json!({
            "event": "order.status",
            "order_id": "OA20251123-7C1E0B4A9D21",
            "hub_order_id": order.id.to_string(),
            "status": "accepted",
            "prep_minutes": 15,
        })
    );

    channel
        .push(
            &order,
            &change(StatusAction::Reject {
                reason: "Oven down".into(),
            }),
        )
        .await
        .unwrap();
    let (_, body) = backend.received.lock().unwrap()[1].clone();
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["status"], "rejected");
    assert_eq!(value["reason"], "Oven down");
    assert!(value.get("prep_minutes").is_none());
}

#[tokio::test]
async fn every_action_is_pushed() {
    let (backend, url) = start_backend().await;
    let channel = channel();
    let order = stored_with_callback(&url);
    let actions = [
        StatusAction::Accept { prep_minutes: 10 },
        StatusAction::Reject {
            reason: "closed".into(),
        },
        StatusAction::Preparing,
        StatusAction::Ready,
        StatusAction::PickedUp,
        StatusAction::Delivered,
        StatusAction::Complete,
        StatusAction::Cancel {
            reason: "customer".into(),
        },
        StatusAction::Fail {
            reason: "no courier".into(),
        },
    ];
    for action in &actions {
        let outcome = channel.push(&order, &change(action.clone())).await.unwrap();
        assert!(
            matches!(outcome, PushOutcome::Delivered { .. }),
            "{action:?}"
        );
    }
    let statuses: Vec<String> = backend
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = actions
        .iter()
        .map(|a| a.target().as_str().to_owned())
        .collect();
    assert_eq!(statuses, expected);
}

#[tokio::test]
async fn push_errors_say_whether_to_retry() {
    let (backend, url) = start_backend().await;
    let channel = channel();
    let order = stored_with_callback(&url);
    backend
        .answers
        .lock()
        .unwrap()
        .extend([(503, None), (429, Some("7")), (400, None)]);
    let error = channel
        .push(&order, &change(StatusAction::Ready))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    let error = channel
        .push(&order, &change(StatusAction::Ready))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(7))
        }
    );
    let error = channel
        .push(&order, &change(StatusAction::Ready))
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert!(matches!(error, ChannelError::Platform { status: 400, .. }));

    // Nobody listening: a retryable transport error.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let order = stored_with_callback(&format!("http://{closed}/cb"));
    let error = channel
        .push(&order, &change(StatusAction::Ready))
        .await
        .unwrap_err();
    assert!(matches!(error, ChannelError::Transport(_)), "{error:?}");

    // An order without a callback URL cannot be pushed, ever.
    let mut order = stored_with_callback(&url);
    order.order.channel_data = Value::Null;
    let error = channel
        .push(&order, &change(StatusAction::Ready))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Malformed(m) if m.contains("callback_url")),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

// ----- configuration -----

fn settings(options: Value, development: bool) -> ChannelSettings {
    ChannelSettings {
        channel: CHANNEL_ID.into(),
        options,
        secrets: SecretSource::new(BTreeMap::new(), development),
        dev_secrets: Factory.dev_secrets(),
        http: reqwest::Client::new(),
    }
}

#[test]
fn the_factory_builds_from_options_and_secrets() {
    assert_eq!(Factory.id(), "own_app");
    assert_eq!(
        Factory.dev_secrets(),
        &[("signing_secret", DEV_SIGNING_SECRET)]
    );
    let channel = Factory.build(&settings(Value::Null, true)).unwrap();
    assert_eq!(channel.id().as_str(), "own_app");

    // The development secret is the simulator's.
    let body = fixture("cancel.body");
    let now = Utc::now();
    let mut request = request_signed(DEV_SIGNING_SECRET, &body, now.timestamp());
    request.received_at = now;
    assert_eq!(channel.verify(&request), Ok(()));

    let built = Factory
        .build(&settings(json!({"replay_window_s": 30}), true))
        .unwrap();
    request.received_at = now + chrono::Duration::seconds(31);
    assert!(matches!(
        built.verify(&request),
        Err(ChannelError::Stale(_))
    ));

    let error = Factory
        .build(&settings(json!({"replay_window": 30}), true))
        .err()
        .unwrap();
    assert!(
        matches!(&error, ConfigError::Options { message, .. } if message.contains("unknown field `replay_window`")),
        "{error:?}"
    );
    let error = Factory
        .build(&settings(json!({"replay_window_s": 0}), true))
        .err()
        .unwrap();
    assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
}

#[test]
fn production_needs_a_real_secret() {
    // A channel name no environment variable sets, so the test does not depend on the shell.
    let mut unset = settings(Value::Null, false);
    unset.channel = "own_app_secret_test".into();
    let error = Factory.build(&unset).err().unwrap();
    assert!(
        matches!(error, ConfigError::MissingSecret { .. }),
        "{error:?}"
    );
    // An empty secret is refused, in production and in development: the secret source
    // treats an empty value as missing (a file value and a development default here).
    for development in [false, true] {
        let mut empty = settings(Value::Null, development);
        empty.channel = "own_app_empty_secret_test".into();
        empty.secrets = SecretSource::new(
            BTreeMap::from([(
                empty.channel.clone(),
                BTreeMap::from([(SIGNING_SECRET.to_owned(), String::new())]),
            )]),
            development,
        );
        empty.dev_secrets = &[(SIGNING_SECRET, "")];
        let error = Factory.build(&empty).err().unwrap();
        assert_eq!(
            error,
            ConfigError::MissingSecret {
                channel: "own_app_empty_secret_test".into(),
                name: SIGNING_SECRET.into(),
                env: "CROSSDOCK_SECRET_OWN_APP_EMPTY_SECRET_TEST_SIGNING_SECRET".into(),
            }
        );
    }
}

/// A status change made at `at`.
fn change_at(action: StatusAction, at: DateTime<Utc>) -> StatusChange {
    StatusChange {
        action,
        from: Status::Received,
        at,
    }
}

/// A status change made now.
fn change(action: StatusAction) -> StatusChange {
    change_at(action, Utc::now())
}
