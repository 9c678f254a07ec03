//! Unit tests of the POS channel: store keys and request authentication, parsing and the
//! normalization rules, the fixtures, replies, pushes, store credentials and configuration.
//!
//! `UPDATE_FIXTURES=1 cargo test -p crossdock-adapter-pos` signs the fixtures' `*.headers`
//! again from their bodies; `UPDATE_EXPECT=1` rewrites their `*.expected.json` from the
//! adapter's output (the conformance kit does the same). Review the diff before keeping it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Utc};
use crossdock_channel::normalize::{self, parse_headers};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Inbound, InboundRequest,
    Method, Outcome, PushOutcome, RateLimit, SecretSource, StatusCode,
};
use crossdock_model::{
    CoordSystem, Currency, DeliveredBy, Flag, FulfillmentKind, FundedBy, Money, MoneyError, Order,
    OrderError, OrderId, Payment, Status, StatusAction, StatusChange, Timing,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;

const MASTER: &str = "unit-test-master-key";

/// The conformance kit's `FIXTURE_TIME` (the conformance test checks they agree).
pub(crate) const FIXTURE_TIME: &str = "2026-11-20T12:00:00Z";
const FIXTURE_URL: &str = "https://hub.crossdock.example/webhooks/pos";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn received() -> DateTime<Utc> {
    at(FIXTURE_TIME)
}

fn channel() -> Pos {
    channel_with(PosConfig::default())
}

fn channel_with(config: PosConfig) -> Pos {
    Pos::new(config, SecretString::from(MASTER)).unwrap()
}

/// The dev-keyed channel the fixtures are signed for.
fn dev_channel() -> Pos {
    Pos::new(PosConfig::default(), SecretString::from(DEV_MASTER_KEY)).unwrap()
}

fn headers_from(pairs: Vec<(String, String)>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(
            HeaderName::try_from(name).unwrap(),
            HeaderValue::try_from(value).unwrap(),
        );
    }
    headers
}

/// A request as the hub builds it, signed by `store` with `key` at `timestamp`.
fn request_with_key(key: &str, store: &str, body: &[u8], timestamp: i64) -> InboundRequest {
    InboundRequest {
        method: Method::POST,
        event: None,
        url: FIXTURE_URL.into(),
        query: None,
        headers: headers_from(signed_headers(key, store, timestamp, body)),
        body: Bytes::copy_from_slice(body),
        received_at: received(),
    }
}

fn request_for(store: &str, body: &[u8]) -> InboundRequest {
    let key = store_key(MASTER.as_bytes(), store);
    request_with_key(&key, store, body, received().timestamp())
}

/// Signed by the store the body names (or `NYC-001` when it names none).
fn request(body: &[u8]) -> InboundRequest {
    let store = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["store"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "NYC-001".to_owned());
    request_for(&store, body)
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pos")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(format!("{name}.body"))).unwrap()
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".body").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
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

fn money(minor: i64, currency: &str) -> Money {
    Money::new(minor, Currency::parse(currency).unwrap())
}

// ----- store keys -----

#[test]
fn store_keys_follow_the_documented_derivation() {
    // The crate docs' test vector, computed independently (Python's hmac module).
    assert_eq!(
        store_key(b"example-master-key", "NYC-001"),
        "752b16014bd46b6f8d0ee8d0497c694609dc8a1dc392df00942ab19b393533f7"
    );
    // = HMAC(master, "crossdock-pos-store:" + code), so it is exactly the shared helper's.
    assert_eq!(
        store_key(b"m", "LDN-001"),
        crossdock_channel::signature::hmac_sha256_hex(b"m", &[b"crossdock-pos-store:LDN-001"])
    );
    // One key per store, and per master key.
    assert_ne!(store_key(b"m", "NYC-001"), store_key(b"m", "NYC-002"));
    assert_ne!(store_key(b"m", "NYC-001"), store_key(b"n", "NYC-001"));
    // Signed with the hex *text* of the key, not its decoded bytes.
    let key = store_key(b"m", "NYC-001");
    assert_eq!(
        sign(&key, 5, b"{}"),
        crossdock_channel::signature::hmac_sha256_hex(key.as_bytes(), &[b"5.{}"])
    );
}

#[test]
fn store_credentials_are_the_keys_the_pos_signs_with() {
    let channel = channel();
    let key = channel.store_credential("LDN-002").unwrap();
    assert_eq!(key, store_key(MASTER.as_bytes(), "LDN-002"));
    assert_eq!(key.len(), 64);
    assert_ne!(channel.store_credential("LDN-003").unwrap(), key);
    // A request signed with the printed credential passes.
    let body = fixture("pickup_half_and_half_london");
    let request = request_with_key(&key, "LDN-002", &body, received().timestamp());
    assert_eq!(channel.verify(&request), Ok(()));
    // Not a store code: no credential (no request could ever name it).
    assert_eq!(channel.store_credential("LDN 002"), None);
    assert_eq!(channel.store_credential(""), None);
}

// ----- authentication -----

#[test]
fn every_fixture_verifies_with_the_development_master_key() {
    for name in fixture_names() {
        let headers = std::fs::read_to_string(fixtures_dir().join(format!("{name}.headers")))
            .unwrap_or_else(|_| panic!("{name} has no .headers"));
        let request = normalize::request(
            Method::POST,
            FIXTURE_URL,
            parse_headers(&headers).unwrap(),
            Bytes::from(fixture(&name)),
            received(),
        );
        assert_eq!(dev_channel().verify(&request), Ok(()), "{name}");
        // And nothing else: a hub with another master key refuses it.
        assert!(
            matches!(
                channel().verify(&request),
                Err(ChannelError::Unauthorized(_))
            ),
            "{name}"
        );
    }
}

#[test]
fn upper_case_hex_is_accepted() {
    let mut request = request(&fixture("void_scheduled_pickup_nyc"));
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
    let body = fixture("walk_in_dine_in_london");
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
    // And the store: the same signature under another store's name does not pass.
    let mut moved = signed.clone();
    moved
        .headers
        .insert(STORE_HEADER, HeaderValue::from_static("LDN-002"));
    let error = channel().verify(&moved).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Unauthorized(m) if m.contains("under the key of store LDN-002")),
        "{error:?}"
    );
}

#[test]
fn one_stores_key_cannot_sign_for_another_store() {
    let body = fixture("walk_in_dine_in_london");
    // LDN-002's POS signs correctly with its own key, but claims to be LDN-001.
    let other_key = store_key(MASTER.as_bytes(), "LDN-002");
    let forged = request_with_key(&other_key, "LDN-001", &body, received().timestamp());
    assert!(matches!(
        channel().verify(&forged),
        Err(ChannelError::Unauthorized(_))
    ));
    // Signed as itself, its key passes verification, but the body names LDN-001: refused
    // when parsed, so the order is never stored.
    let own = request_with_key(&other_key, "LDN-002", &body, received().timestamp());
    assert_eq!(channel().verify(&own), Ok(()));
    let error = channel().parse(&own).unwrap_err();
    assert_eq!(
        error,
        ChannelError::Unauthorized(
            "store: the body names store `LDN-001` but the request is signed for store \
             LDN-002; a store's key posts only its own orders"
                .into()
        )
    );
    assert_eq!(error.http_status(), StatusCode::UNAUTHORIZED);
    // A void is store-scoped the same way.
    let void = fixture("void_scheduled_pickup_nyc");
    let own = request_for("NYC-002", &void);
    assert!(matches!(
        channel().parse(&own),
        Err(ChannelError::Unauthorized(_))
    ));
}

#[test]
fn missing_or_bad_headers_are_named() {
    let body = fixture("void_scheduled_pickup_nyc");
    for header in [STORE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
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
        matches!(&error, ChannelError::Unauthorized(m) if m.contains("`yesterday` is not unix seconds")),
        "{error:?}"
    );
    let mut request = self::request(&body);
    request
        .headers
        .insert(STORE_HEADER, HeaderValue::from_static("NYC 001"));
    let error = channel().verify(&request).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Unauthorized(m) if m.starts_with("header X-Crossdock-Store: store id `NYC 001` may only contain")),
        "{error:?}"
    );
    // Header names are case-insensitive, as in HTTP.
    let mut request = self::request(&body);
    let value = request.headers.remove(STORE_HEADER).unwrap();
    request.headers.insert("x-crossdock-store", value);
    assert_eq!(channel().verify(&request), Ok(()));
}

#[test]
fn the_signature_covers_the_exact_timestamp_text() {
    let body = fixture("void_scheduled_pickup_nyc");
    let key = store_key(MASTER.as_bytes(), "NYC-001");
    let text = format!(" {}", received().timestamp());
    let with_timestamp = |signed_text: &str| {
        let mut request = request(&body);
        request.headers.insert(
            TIMESTAMP_HEADER,
            HeaderValue::try_from(text.as_str()).unwrap(),
        );
        let signature = crossdock_channel::signature::hmac_sha256_hex(
            key.as_bytes(),
            &[signed_text.as_bytes(), b".", &body],
        );
        request
            .headers
            .insert(SIGNATURE_HEADER, HeaderValue::try_from(signature).unwrap());
        request
    };
    assert_eq!(channel().verify(&with_timestamp(&text)), Ok(()));
    let error = channel().verify(&with_timestamp(text.trim())).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Unauthorized(m) if m.contains("X-Crossdock-Signature does not match")),
        "{error:?}"
    );
}

#[test]
fn timestamps_outside_the_window_are_stale_in_both_directions() {
    let body = fixture("void_scheduled_pickup_nyc");
    let key = store_key(MASTER.as_bytes(), "NYC-001");
    let now = received().timestamp();
    for (offset, stale) in [
        (-301, true),
        (-300, false),
        (0, false),
        (300, false),
        (301, true),
    ] {
        let result = channel().verify(&request_with_key(&key, "NYC-001", &body, now + offset));
        if stale {
            let error = result.unwrap_err();
            assert!(
                matches!(error, ChannelError::Stale(_)),
                "{offset}: {error:?}"
            );
            let side = if offset < 0 { "before" } else { "after" };
            assert!(error.to_string().contains(side), "{error}");
            assert_eq!(error.http_status(), StatusCode::UNAUTHORIZED);
        } else {
            assert_eq!(result, Ok(()), "offset {offset}");
        }
    }
    let narrow = channel_with(PosConfig {
        replay_window_s: 60,
    });
    assert!(matches!(
        narrow.verify(&request_with_key(&key, "NYC-001", &body, now - 61)),
        Err(ChannelError::Stale(_))
    ));
    // A wrong signature is unauthorized even when it is also stale.
    assert!(matches!(
        channel().verify(&request_with_key("other", "NYC-001", &body, now - 3600)),
        Err(ChannelError::Unauthorized(_))
    ));
}

// ----- parsing -----

#[test]
fn parse_errors_name_the_field() {
    let dine_in = fixture_value("walk_in_dine_in_london");
    let pickup = fixture_value("pickup_half_and_half_london");
    let delivery = fixture_value("phone_delivery_london");
    let void = fixture_value("void_scheduled_pickup_nyc");
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, &Value, Edit, &str)> = vec![
        (
            "no version",
            &dine_in,
            |v| drop(v.as_object_mut().unwrap().remove("version")),
            "body: missing field `version`",
        ),
        (
            "another version",
            &dine_in,
            |v| v["version"] = json!(2),
            "version: 2 is not supported; this hub reads version 1",
        ),
        (
            "version as text",
            &dine_in,
            |v| v["version"] = json!("1"),
            "version: invalid type: string \"1\", expected u32",
        ),
        (
            "unknown event",
            &dine_in,
            |v| v["event"] = json!("order.updated"),
            "event: unknown event `order.updated`; expected `order.created` or `order.voided`",
        ),
        (
            "empty event id",
            &dine_in,
            |v| v["event_id"] = json!(" "),
            "event_id: must not be empty",
        ),
        (
            "long event id",
            &dine_in,
            |v| v["event_id"] = json!("e".repeat(129)),
            "event_id: `eeee",
        ),
        (
            "created without order",
            &dine_in,
            |v| drop(v.as_object_mut().unwrap().remove("order")),
            "body: missing field `order`",
        ),
        (
            "float price",
            &dine_in,
            |v| v["order"]["lines"][0]["unit_price"] = json!(14.99),
            "order.lines[0].unit_price: invalid type: floating point `14.99`, expected i64",
        ),
        (
            "float modifier price",
            &pickup,
            |v| v["order"]["lines"][0]["modifiers"][1]["modifiers"][0]["unit_price"] = json!(0.6),
            "order.lines[0].modifiers[1].modifiers[0].unit_price: invalid type",
        ),
        (
            "float total",
            &dine_in,
            |v| v["order"]["totals"]["total"] = json!(43.24),
            "order.totals.total: invalid type",
        ),
        (
            "string quantity",
            &dine_in,
            |v| v["order"]["lines"][3]["quantity"] = json!("2"),
            "order.lines[3].quantity: invalid type",
        ),
        (
            "no currency",
            &dine_in,
            |v| drop(v["order"].as_object_mut().unwrap().remove("currency")),
            "order: missing field `currency`",
        ),
        (
            "bad currency",
            &dine_in,
            |v| v["order"]["currency"] = json!("POUNDS"),
            "order.currency: currency `POUNDS` is not a three-letter ISO-4217 code",
        ),
        (
            "unknown source",
            &dine_in,
            |v| v["order"]["source"] = json!("kiosk"),
            "order.source: unknown variant `kiosk`",
        ),
        (
            "unknown fulfilment",
            &dine_in,
            |v| v["order"]["fulfillment"]["type"] = json!("drive_thru"),
            "order.fulfillment.type: unknown variant `drive_thru`",
        ),
        (
            "unknown payment",
            &dine_in,
            |v| v["order"]["payment"] = json!("voucher"),
            "order.payment: unknown variant `voucher`",
        ),
        (
            "bad placed_at",
            &dine_in,
            |v| v["order"]["placed_at"] = json!("2026-11-20 11:52"),
            "order.placed_at:",
        ),
        (
            "placed_at without offset",
            &dine_in,
            |v| v["order"]["placed_at"] = json!("2026-11-20T11:52:10"),
            "order.placed_at:",
        ),
        (
            "empty number",
            &dine_in,
            |v| v["order"]["number"] = json!(""),
            "order.number: must not be empty",
        ),
        (
            "number with a space",
            &dine_in,
            |v| v["order"]["number"] = json!("R2 0087"),
            "order.number: `R2 0087` may only contain ASCII letters, digits",
        ),
        (
            "number too long",
            &dine_in,
            |v| v["order"]["number"] = json!("9".repeat(65)),
            "order.number: `9999",
        ),
        (
            "empty plu",
            &dine_in,
            |v| v["order"]["lines"][2]["plu"] = json!(" "),
            "order.lines[2].plu: must not be empty",
        ),
        (
            "negative tip",
            &dine_in,
            |v| v["order"]["totals"]["tip"] = json!(-100),
            "order.totals.tip: -100 is negative",
        ),
        (
            "negative discount",
            &dine_in,
            |v| v["order"]["totals"]["discounts"] = json!([{"label": "x", "amount": -5}]),
            "order.totals.discounts[0].amount: -5 is negative",
        ),
        (
            "negative fee",
            &delivery,
            |v| v["order"]["totals"]["fees"]["delivery"] = json!(-250),
            "order.totals.fees.delivery: -250 is negative",
        ),
        (
            "negative line total",
            &dine_in,
            |v| v["order"]["lines"][0]["total"] = json!(-1),
            "order.lines[0].total: -1 is negative",
        ),
        (
            "delivery without address",
            &delivery,
            |v| {
                drop(
                    v["order"]["fulfillment"]
                        .as_object_mut()
                        .unwrap()
                        .remove("address"),
                )
            },
            "order.fulfillment.address: required for delivery orders",
        ),
        (
            "delivery with blank address lines",
            &delivery,
            |v| v["order"]["fulfillment"]["address"]["lines"] = json!(["", " "]),
            "order.fulfillment.address.lines: at least one non-empty line is needed",
        ),
        (
            "delivery address without city",
            &delivery,
            |v| {
                drop(
                    v["order"]["fulfillment"]["address"]
                        .as_object_mut()
                        .unwrap()
                        .remove("city"),
                )
            },
            "order.fulfillment.address: missing field `city`",
        ),
        (
            "delivery without customer",
            &delivery,
            |v| drop(v["order"].as_object_mut().unwrap().remove("customer")),
            "order.customer: required for delivery orders",
        ),
        (
            "delivery with an empty customer",
            &delivery,
            |v| v["order"]["customer"] = json!({"name": "", "phone": ""}),
            "order.customer: a delivery order needs the customer's name or phone number",
        ),
        (
            "cash on delivery of a dine-in order",
            &dine_in,
            |v| v["order"]["payment"] = json!("cash_on_delivery"),
            "order.payment: `cash_on_delivery` is only for delivery orders",
        ),
        (
            "pay at store for a delivery",
            &delivery,
            |v| v["order"]["payment"] = json!("pay_at_store"),
            "order.payment: `pay_at_store` is not possible for a delivery order",
        ),
        (
            "void without void",
            &void,
            |v| drop(v.as_object_mut().unwrap().remove("void")),
            "body: missing field `void`",
        ),
        (
            "void with a numeric number",
            &void,
            |v| v["void"]["number"] = json!(9),
            "void.number: invalid type: integer `9`, expected a string",
        ),
        (
            "void of a bad number",
            &void,
            |v| v["void"]["number"] = json!("NYC-001:R1"),
            "void.number: `NYC-001:R1` may only contain",
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
    let error = channel().parse(&request(b"{\"version\": ")).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Malformed(m) if m.starts_with("version: EOF while parsing")),
        "{error:?}"
    );
    let error = channel().parse(&request(b"\"order\"")).unwrap_err();
    assert!(
        matches!(&error, ChannelError::Malformed(m) if m.starts_with("body: invalid type: string \"order\"")),
        "{error:?}"
    );
}

#[test]
fn orders_the_hub_cannot_take_are_order_errors() {
    let mut body = fixture_value("walk_in_dine_in_london");
    body["order"]["lines"][0]["quantity"] = json!(0);
    assert!(matches!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::BadQuantity {
            line: 1,
            quantity: 0,
            ..
        }))
    ));
    let mut body = fixture_value("walk_in_dine_in_london");
    body["order"]["lines"] = json!([]);
    assert_eq!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::NoLines))
    );
    let mut body = fixture_value("walk_in_dine_in_london");
    body["order"]["lines"][1]["unit_price"] = json!(i64::MAX);
    assert!(matches!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::MoneyAt {
            field,
            source: MoneyError::Overflow { .. },
        })) if field == "order.lines[1]"
    ));
    let mut body = fixture_value("phone_delivery_london");
    body["order"]["fulfillment"]["location"]["lat"] = json!(151.5);
    assert_eq!(
        parse_and_check(&body),
        Err(ChannelError::Order(OrderError::BadCoordinates {
            lat: 151.5,
            lng: -0.1009
        }))
    );
    let error = parse_and_check(&body).unwrap_err();
    assert_eq!(error.http_status(), StatusCode::BAD_REQUEST);
    assert_eq!(error.kind(), "unacceptable_order");
}

#[test]
fn unknown_fields_are_ignored() {
    let plain = parsed_order("phone_delivery_london");
    let mut body = fixture_value("phone_delivery_london");
    body["terminal_serial"] = json!("PX-7781-00413");
    body["order"]["cashier"] = json!({"id": 17, "name": "Sam"});
    body["order"]["customer"]["loyalty_id"] = json!("L-99812");
    body["order"]["fulfillment"]["location"]["accuracy_m"] = json!(12.5);
    body["order"]["fulfillment"]["address"]["floor"] = json!(1);
    body["order"]["lines"][0]["kitchen_station"] = json!("oven-2");
    body["order"]["lines"][0]["modifiers"][0]["calories"] = json!(0);
    body["order"]["totals"]["rounding"] = json!(0);
    body["order"]["totals"]["fees"]["bag_levy"] = json!(10);
    match parse_value(&body).unwrap().inbound {
        Inbound::Order(order) => assert_eq!(*order, plain),
        other => panic!("expected an order, got {other:?}"),
    }
    let mut body = fixture_value("void_scheduled_pickup_nyc");
    body["void"]["voided_at"] = json!("2026-11-20T11:59:00Z");
    body["void"]["manager_pin_used"] = json!(true);
    assert_eq!(
        parse_value(&body).unwrap(),
        channel()
            .parse(&request(&fixture("void_scheduled_pickup_nyc")))
            .unwrap()
    );
}

#[test]
fn the_store_comes_from_the_signed_header() {
    // Without `store` in the body, the signed header alone decides.
    let mut body = fixture_value("walk_in_dine_in_london");
    body.as_object_mut().unwrap().remove("store");
    let bytes = serde_json::to_vec(&body).unwrap();
    for store in ["LDN-001", "LDN-006"] {
        let delivery = channel().parse(&request_for(store, &bytes)).unwrap();
        assert_eq!(
            delivery.dedupe_key,
            format!("{store}:0196a3f2-5b10-7c4e-8d21-3f6a9b0c1d01")
        );
        let Inbound::Order(order) = delivery.inbound else {
            panic!("an order")
        };
        assert_eq!(order.channel_store_ref.as_deref(), Some(store));
        assert_eq!(order.external_order_id, format!("{store}:R2-20261120-0087"));
    }
}

#[test]
fn a_void_cancels_the_stores_own_order() {
    let delivery = channel()
        .parse(&request(&fixture("void_scheduled_pickup_nyc")))
        .unwrap();
    assert_eq!(
        delivery.dedupe_key,
        "NYC-001:0196a3f5-0b7c-7a88-8f1d-5e6f7a8b9c07"
    );
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "NYC-001:R1-20261120-0009".into(),
            reason: Some("Customer called: the office lunch was moved to next week".into()),
        }
    );
    // It names the order the scheduled fixture created.
    assert_eq!(
        parsed_order("scheduled_phone_pickup_nyc").external_order_id,
        "NYC-001:R1-20261120-0009"
    );
    // An empty reason is none.
    let mut body = fixture_value("void_scheduled_pickup_nyc");
    body["void"]["reason"] = json!("  ");
    assert!(matches!(
        parse_value(&body).unwrap().inbound,
        Inbound::Cancelled { reason: None, .. }
    ));
}

#[test]
fn the_mapping_follows_the_documented_rules() {
    let gbp = |minor| money(minor, "GBP");

    // Walk-in, dine-in, paid at the counter, prices with VAT.
    let order = parsed_order("walk_in_dine_in_london");
    assert_eq!(order.channel.as_str(), "pos");
    assert_eq!(order.external_order_id, "LDN-001:R2-20261120-0087");
    assert_eq!(order.display_code.as_deref(), Some("R2-20261120-0087"));
    assert_eq!(order.channel_store_ref.as_deref(), Some("LDN-001"));
    assert_eq!(order.brand, None);
    assert_eq!(order.placed_at, at("2026-11-20T11:52:10Z"));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::DineIn);
    assert_eq!(order.fulfillment.delivered_by, None);
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    assert_eq!(order.customer.name, "", "a walk-in may have no customer");
    assert_eq!(order.payment, Payment::Prepaid);
    assert_eq!(order.totals.cash_due, None);
    assert!(order.totals.tax_included);
    assert_eq!(
        order.channel_data,
        json!({"source": "walk_in", "register": "R2", "table": "12"})
    );
    // Lines in payload order, PLU as item id and PLU, zero-price modifiers kept.
    let plus: Vec<_> = order
        .lines
        .iter()
        .map(|l| l.plu.as_deref().unwrap())
        .collect();
    assert_eq!(plus, ["PZ-MARG-L", "PZ-PEPP-L", "SD-GARL-8", "DR-COLA-500"]);
    assert_eq!(order.lines[0].channel_item_id, "PZ-MARG-L");
    assert_eq!(order.lines[0].modifiers[0].unit_price, gbp(0));
    assert_eq!(order.lines[1].total, gbp(1849));
    assert_eq!(order.lines[3].total, gbp(398));
    assert_eq!(order.check(), Ok(vec![]));

    // Nested modifiers, a removed ingredient, notes.
    let order = parsed_order("pickup_half_and_half_london");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.customer.name, "Priya S.");
    assert_eq!(order.customer.phone, None);
    assert_eq!(
        order.notes.as_deref(),
        Some("Waiting in store, call out the name when ready")
    );
    let pizza = &order.lines[0];
    assert_eq!(pizza.notes.as_deref(), Some("Cut into 12 slices please"));
    let half = &pizza.modifiers[1];
    assert_eq!(half.name, "Half & half");
    assert_eq!(half.group.as_deref(), Some("Whole or half & half"));
    assert_eq!(half.modifiers.len(), 2);
    assert_eq!(half.modifiers[1].plu.as_deref(), Some("MOD-HALF-HAM"));
    let onion = &pizza.modifiers[2];
    assert!(onion.removed);
    assert_eq!((onion.quantity, onion.plu.as_deref()), (0, None));
    // 1799 + 250 + (0 + 60 + 80).
    assert_eq!(pizza.total, gbp(2189));
    // (899 + 2 × 99) × 2.
    assert_eq!(order.lines[1].total, gbp(2194));
    assert_eq!(order.check(), Ok(vec![]));

    // Discounts (the chain's own), a service charge, a tip, a line total as sent.
    let order = parsed_order("discount_fees_tip_london");
    let discounts: Vec<_> = order
        .totals
        .discounts
        .iter()
        .map(|d| (d.label.as_str(), d.amount.minor, d.funded_by))
        .collect();
    assert_eq!(
        discounts,
        [
            (
                "Lunch deal: £5 off two large pizzas",
                500,
                FundedBy::Merchant
            ),
            ("Loyalty card", 300, FundedBy::Merchant),
        ]
    );
    assert_eq!(order.totals.fees.service, gbp(649));
    assert_eq!(order.totals.fees.delivery, gbp(0));
    assert_eq!(order.totals.tip, gbp(500));
    assert_eq!(order.totals.tax, gbp(974));
    assert_eq!(order.totals.total, gbp(6341));
    assert_eq!(order.lines[3].total, gbp(898));
    assert_eq!(order.check(), Ok(vec![]));

    // A phone order for later: scheduled, compared as an instant.
    let order = parsed_order("scheduled_phone_pickup_nyc");
    assert_eq!(
        order.fulfillment.timing,
        Timing::Scheduled {
            at: at("2026-11-20T17:15:00Z")
        }
    );
    assert_eq!(order.placed_at, at("2026-11-20T11:58:40Z"));
    assert_eq!(order.payment, Payment::PayAtStore);
    assert_eq!(order.customer.phone.as_deref(), Some("+1 212 555 0173"));
    assert_eq!(order.channel_data["source"], "phone");
    assert_eq!(order.channel_data.get("table"), None);
    assert_eq!(order.totals.currency.code(), "USD");
    assert!(!order.totals.tax_included);
    assert_eq!(order.check(), Ok(vec![]));

    // A phone delivery by the store's driver, cash on delivery.
    let order = parsed_order("phone_delivery_london");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.as_ref().unwrap();
    assert_eq!(address.lines, ["Flat 3", "17 Canonbury Road"]);
    assert_eq!(address.postcode.as_deref(), Some("N1 2DF"));
    assert_eq!(address.country.as_deref(), Some("GB"));
    assert_eq!(
        address.instructions.as_deref(),
        Some("Buzzer is broken, knock on the ground-floor window")
    );
    let coordinates = address.coordinates.unwrap();
    assert_eq!(coordinates.system, CoordSystem::Wgs84);
    assert_eq!((coordinates.lat, coordinates.lng), (51.5431, -0.1009));
    assert_eq!(order.payment, Payment::CashOnDelivery);
    assert_eq!(order.totals.cash_due, Some(gbp(3125)));
    assert_eq!(order.totals.fees.delivery, gbp(250));
    assert_eq!(order.check(), Ok(vec![]));

    // Unicode and emoji kept as sent; CNY in fen.
    let order = parsed_order("unicode_dine_in_shanghai");
    assert_eq!(order.customer.name, "王小明 🐯");
    assert_eq!(order.lines[0].name, "🍕 玛格丽特披萨（大）");
    assert_eq!(
        order.lines[0].notes.as_deref(),
        Some("多加辣 🌶️🌶️，切成 8 块")
    );
    assert_eq!(order.lines[0].modifiers[0].group.as_deref(), Some("饼底"));
    assert_eq!(order.channel_data["table"], "A08 靠窗");
    assert_eq!(order.channel_data["register"], "2号收银台");
    assert_eq!(order.placed_at, at("2026-11-20T11:56:30Z"));
    assert_eq!(order.totals.total, money(16600, "CNY"));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn figures_are_kept_as_sent_and_flagged_not_fixed() {
    let mut body = fixture_value("discount_fees_tip_london");
    body["order"]["totals"]["total"] = json!(9999);
    body["order"]["lines"][3]["total"] = json!(800);
    let order = parse_and_check(&body).unwrap();
    assert_eq!(order.totals.total.minor, 9999);
    assert_eq!(order.lines[3].total.minor, 800);
    let flags = order.check().unwrap();
    assert_eq!(
        flags.iter().map(Flag::code).collect::<Vec<_>>(),
        ["subtotal_mismatch", "totals_mismatch"]
    );
    // Amounts left out are zero; empty notes and names are none.
    let mut body = fixture_value("walk_in_dine_in_london");
    let totals = body["order"]["totals"].as_object_mut().unwrap();
    totals.remove("tax");
    totals.remove("tip");
    body["order"]["notes"] = json!("");
    body["order"]["customer"] = json!({"name": " ", "phone": ""});
    body["order"]["fulfillment"]["table"] = json!("");
    body["order"]["register"] = json!(null);
    let order = parse_and_check(&body).unwrap();
    assert_eq!((order.totals.tax.minor, order.totals.tip.minor), (0, 0));
    assert_eq!(order.notes, None);
    assert_eq!(order.customer.name, "");
    assert_eq!(order.customer.phone, None);
    assert_eq!(order.channel_data, json!({"source": "walk_in"}));
}

/// The fixtures' `.headers` are what the simulator's signer makes of their bodies, signed
/// as of `FIXTURE_TIME` with the development master key, by the store each body names.
#[test]
fn fixture_headers_are_reproducible() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let timestamp = received().timestamp();
    let names = fixture_names();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let body = fixture(&name);
        let store = fixture_value(&name)["store"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: the fixture body names its store"))
            .to_owned();
        let key = store_key(DEV_MASTER_KEY.as_bytes(), &store);
        let mut text = format!(
            "# Signed as of {FIXTURE_TIME} by store {store}, with its key derived from the \
             development master key.\nContent-Type: application/json\n"
        );
        for (header, value) in signed_headers(&key, &store, timestamp, &body) {
            text.push_str(&format!("{header}: {value}\n"));
        }
        let path = fixtures_dir().join(format!("{name}.headers"));
        if update {
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            text,
            "{name}: UPDATE_FIXTURES=1 signs it again"
        );
    }
}

/// Each fixture normalizes (as `crossdock normalize` and the conformance kit read it) to its
/// `.expected.json`; `UPDATE_EXPECT=1` writes them in the kit's format.
#[test]
fn each_fixture_normalizes_to_its_expected_file() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let channel = dev_channel();
    let mut kinds = BTreeMap::new();
    for name in fixture_names() {
        let headers =
            std::fs::read_to_string(fixtures_dir().join(format!("{name}.headers"))).unwrap();
        let request = normalize::request(
            Method::POST,
            FIXTURE_URL,
            parse_headers(&headers).unwrap(),
            Bytes::from(fixture(&name)),
            received(),
        );
        let document = normalize::normalize(&channel, &request, None)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let actual = document.to_value();
        if let Some(flags) = actual["order"].get("flags") {
            assert_eq!(flags, &json!([]), "{name}: the figures must add up");
        }
        *kinds
            .entry(actual["kind"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        let path = fixtures_dir().join(format!("{name}.expected.json"));
        if update {
            let text = document.to_pretty() + "\n";
            std::fs::write(&path, text).unwrap();
        }
        let expected: Value = serde_json::from_slice(
            &std::fs::read(&path).unwrap_or_else(|_| panic!("{name} has no {}", path.display())),
        )
        .unwrap();
        assert_eq!(actual, expected, "{name}");
    }
    assert_eq!(kinds.get("order"), Some(&6), "{kinds:?}");
    assert_eq!(kinds.get("cancelled"), Some(&1), "{kinds:?}");
}

// ----- replies -----

#[test]
fn replies_follow_the_api() {
    let channel = channel();
    let id = OrderId::new();
    let request = request(&fixture("walk_in_dine_in_london"));
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
        json!({"order_id": id.to_string(), "duplicate": false})
    );
    let reply = channel.reply(
        &request,
        Outcome::Accepted {
            delivery: &delivery,
            order_id: None,
            duplicate: true,
        },
    );
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body, json!({"order_id": null, "duplicate": true}));

    for (error, status, kind) in [
        (
            ChannelError::Stale("too old".into()),
            StatusCode::UNAUTHORIZED,
            "stale",
        ),
        (
            ChannelError::Unauthorized("missing header X-Crossdock-Store".into()),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            ChannelError::Malformed("order.currency: nope".into()),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            ChannelError::Order(OrderError::NoLines),
            StatusCode::BAD_REQUEST,
            "unacceptable_order",
        ),
    ] {
        let reply = channel.reply(&request, Outcome::Refused(&error));
        assert_eq!(reply.status, status, "{error}");
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            body,
            json!({"error": kind, "message": error.to_string()}),
            "{error}"
        );
    }
}

// ----- pushes -----

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

#[tokio::test]
async fn nothing_is_ever_pushed_to_a_pos() {
    let channel = channel();
    let order = stored(parsed_order("phone_delivery_london"));
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
            reason: "no driver".into(),
        },
    ];
    for action in actions {
        let status = action.target();
        let change = StatusChange {
            action,
            from: Status::Received,
            at: received(),
        };
        match channel.push(&order, &change).await {
            Ok(PushOutcome::NotApplicable { why }) => {
                assert!(why.contains("one-way"), "{why}");
                assert!(why.contains(&format!("`{status}`")), "{why}");
                assert!(why.contains("LDN-005:R1-20261120-0064"), "{why}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    assert_eq!(
        channel.push_rate(),
        RateLimit {
            per_second: 1000,
            burst: 1000
        }
    );
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
    assert_eq!(Factory.id(), "pos");
    assert_eq!(Factory.dev_secrets(), &[("master_key", DEV_MASTER_KEY)]);
    let channel = Factory.build(&settings(Value::Null, true)).unwrap();
    assert_eq!(channel.id().as_str(), "pos");

    // The development master key is the simulator's, and the fixtures'.
    assert_eq!(
        channel.store_credential("NYC-001"),
        Some(store_key(DEV_MASTER_KEY.as_bytes(), "NYC-001"))
    );
    let body = fixture("void_scheduled_pickup_nyc");
    let now = Utc::now();
    let key = store_key(DEV_MASTER_KEY.as_bytes(), "NYC-001");
    let mut request = request_with_key(&key, "NYC-001", &body, now.timestamp());
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
fn production_needs_a_real_master_key() {
    // A channel name no environment variable sets, so the test does not depend on the shell.
    let mut unset = settings(Value::Null, false);
    unset.channel = "pos_master_key_test".into();
    let error = Factory.build(&unset).err().unwrap();
    assert_eq!(
        error,
        ConfigError::MissingSecret {
            channel: "pos_master_key_test".into(),
            name: "master_key".into(),
            env: "CROSSDOCK_SECRET_POS_MASTER_KEY_TEST_MASTER_KEY".into(),
        }
    );
    // From the secrets file, production builds, and signs with the file's key.
    let mut from_file = settings(Value::Null, false);
    from_file.channel = "pos_master_key_file_test".into();
    from_file.secrets = SecretSource::new(
        BTreeMap::from([(
            from_file.channel.clone(),
            BTreeMap::from([("master_key".to_owned(), "real-master".to_owned())]),
        )]),
        false,
    );
    let channel = Factory.build(&from_file).unwrap();
    assert_eq!(
        channel.store_credential("SHA-001"),
        Some(store_key(b"real-master", "SHA-001"))
    );
    // An empty master key is missing, in production and in development.
    for development in [false, true] {
        let mut empty = settings(Value::Null, development);
        empty.channel = "pos_empty_master_key_test".into();
        empty.secrets = SecretSource::new(
            BTreeMap::from([(
                empty.channel.clone(),
                BTreeMap::from([("master_key".to_owned(), String::new())]),
            )]),
            development,
        );
        empty.dev_secrets = &[("master_key", "")];
        assert!(matches!(
            Factory.build(&empty),
            Err(ConfigError::MissingSecret { .. })
        ));
    }
}
