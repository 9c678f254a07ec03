//! Unit tests of the adapter: signatures, envelopes, the section-10 rules on the fixtures'
//! orders, money, push mapping.
//!
//! Fixtures live in `fixtures/uber_eats/` in the adapter kit's layout: `<case>.body` and
//! `<case>.headers` (the webhook), `<case>.fetched.json` (what Uber's order API answered).
//! The kit (`tests/conformance.rs`) checks that every case normalizes to its
//! `<case>.expected.json`; the tests here pin the rules one by one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::body::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use crossdock_channel::signature::hmac_sha256_hex;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, FetchRef, HeaderMap, Inbound,
    InboundRequest, Outcome, SecretSource, StatusCode,
};
use crossdock_model::{
    ChannelId, DeliveredBy, FulfillmentKind, MoneyError, NewOrder, Order, OrderError, OrderId,
    Status, StatusAction, Timing,
};
use secrecy::SecretString;

use super::*;
use crate::convert::e5_money;
use crate::wire::{ClassicOrder, MoneyE5, V1OrderResponse};
use crossdock_channel::convert::ConvertError;

fn adapter() -> UberEats {
    UberEats::new(
        UberEatsConfig::default(),
        SecretString::from(DEV_CLIENT_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn channel() -> ChannelId {
    ChannelId::parse(CHANNEL_ID).expect("channel id")
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/uber_eats")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn request(body: &[u8], signature: Option<&str>) -> InboundRequest {
    let mut headers = HeaderMap::new();
    if let Some(signature) = signature {
        headers.insert(SIGNATURE_HEADER, signature.parse().expect("header"));
    }
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "https://hub.example/webhooks/uber_eats".to_owned(),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: Utc::now(),
    }
}

fn sign(body: &[u8]) -> String {
    hmac_sha256_hex(DEV_CLIENT_SECRET.as_bytes(), &[body])
}

// ---------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------

#[test]
fn a_correct_signature_is_accepted_in_any_case() {
    let body = fixture("discount_fees_tip_nyc.body");
    let signature = sign(&body);
    assert!(adapter().verify(&request(&body, Some(&signature))).is_ok());
    let upper = signature.to_ascii_uppercase();
    assert!(adapter().verify(&request(&body, Some(&upper))).is_ok());
}

#[test]
fn any_tampered_byte_fails_the_signature() {
    let body = fixture("discount_fees_tip_nyc.body");
    let signature = sign(&body);
    let adapter = adapter();
    for index in 0..body.len() {
        let mut tampered = body.clone();
        tampered[index] ^= 0x01;
        let result = adapter.verify(&request(&tampered, Some(&signature)));
        assert!(
            matches!(&result, Err(ChannelError::Unauthorized(m)) if m.contains("does not match")),
            "byte {index} changed but got {result:?}"
        );
    }
}

#[test]
fn a_wrong_key_a_garbled_or_a_missing_signature_is_unauthorized() {
    let body = fixture("discount_fees_tip_nyc.body");
    let other_key = hmac_sha256_hex(b"someone-else", &[&body]);
    let adapter = adapter();
    assert!(matches!(
        adapter.verify(&request(&body, Some(&other_key))),
        Err(ChannelError::Unauthorized(_))
    ));
    assert!(matches!(
        adapter.verify(&request(&body, Some("not-hex"))),
        Err(ChannelError::Unauthorized(_))
    ));
    assert!(matches!(
        adapter.verify(&request(&body, Some(&sign(&body)[..40]))),
        Err(ChannelError::Unauthorized(_))
    ));
    match adapter.verify(&request(&body, None)) {
        Err(ChannelError::Unauthorized(message)) => {
            assert_eq!(message, "missing X-Uber-Signature header")
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------

fn parse(body: &[u8]) -> Result<crossdock_channel::Delivery, ChannelError> {
    adapter().parse(&request(body, None))
}

#[test]
fn a_notification_is_a_fetch_keyed_on_the_event_id() {
    let delivery = parse(&fixture("discount_fees_tip_nyc.body")).expect("parse");
    assert_eq!(delivery.dedupe_key, "c4f1e8a2-3b7d-4e9f-a0c5-6d2b8e1f4a73");
    assert_eq!(
        delivery.inbound,
        Inbound::Fetch(FetchRef {
            external_order_id: "8c2f7d1e-4b9a-4e3c-a6f1-2d5e9b07c4a3".to_owned(),
            resource: "https://api.uber.com/v2/eats/order/8c2f7d1e-4b9a-4e3c-a6f1-2d5e9b07c4a3"
                .to_owned(),
            scheduled: false,
        })
    );
}

#[test]
fn a_scheduled_notification_marks_the_fetch_scheduled() {
    let delivery = parse(&fixture("scheduled_merchant_delivery_v1_brooklyn.body")).expect("parse");
    let Inbound::Fetch(reference) = delivery.inbound else {
        panic!("expected a fetch");
    };
    assert_eq!(
        reference.resource,
        "https://api.uber.com/v1/delivery/order/5e8a2c41-9f3b-4d7e-b1a6-0c4d8e2f7b96"
    );
    assert!(reference.scheduled);
    let target = resolve(&reference).expect("resolve");
    assert_eq!(target.generation, Generation::V1);
    assert!(target.scheduled);
}

#[test]
fn cancel_and_failure_events_cancel_the_order() {
    let delivery = parse(&fixture("discount_fees_tip_nyc_cancelled.body")).expect("parse");
    assert_eq!(delivery.dedupe_key, "7a9d2f4b-1c6e-4b30-8f5a-2e4c6b8d0f19");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "8c2f7d1e-4b9a-4e3c-a6f1-2d5e9b07c4a3".to_owned(),
            reason: None,
        }
    );
    let failure = br#"{"event_id":"e-2","event_time":1,"event_type":"orders.failure","meta":{"resource_id":"o-9","status":"pos","user_id":"s"},"resource_href":"https://api.uber.com/v2/eats/order/o-9"}"#;
    assert_eq!(
        parse(failure).expect("parse").inbound,
        Inbound::Cancelled {
            external_order_id: "o-9".to_owned(),
            reason: None
        }
    );
}

#[test]
fn other_events_are_ignored() {
    for event in [
        "orders.release",
        "store.provisioned",
        "eats.store.status.notification",
    ] {
        let body = format!(r#"{{"event_id":"e-{event}","event_type":"{event}"}}"#);
        let delivery = parse(body.as_bytes()).expect("parse");
        assert_eq!(delivery.dedupe_key, format!("e-{event}"));
        assert_eq!(
            delivery.inbound,
            Inbound::Ignored {
                event: event.to_owned()
            }
        );
    }
}

#[test]
fn malformed_envelopes_name_what_is_wrong() {
    let cases: &[(&[u8], &str)] = &[
        (b"not json", "webhook envelope"),
        (b"[]", "webhook envelope"),
        (br#"{"event_type":"orders.notification"}"#, "event_id"),
        (br#"{"event_id":"e"}"#, "event_type"),
        (
            br#"{"event_id":"","event_type":"orders.notification"}"#,
            "`event_id` is empty",
        ),
        (
            br#"{"event_id":"e","event_type":"orders.notification","resource_href":"https://api.uber.com/v2/eats/order/x"}"#,
            "meta.resource_id",
        ),
        (
            br#"{"event_id":"e","event_type":"orders.notification","meta":{"status":"pos"}}"#,
            "resource_id",
        ),
        (
            br#"{"event_id":"e","event_type":"orders.notification","meta":{"resource_id":"x"}}"#,
            "resource_href",
        ),
        (
            br#"{"event_id":"e","event_type":"orders.cancel"}"#,
            "meta.resource_id",
        ),
        (br#"{"event_id":5,"event_type":"x"}"#, "invalid type"),
    ];
    for (body, needle) in cases {
        match parse(body) {
            Err(ChannelError::Malformed(message)) => assert!(
                message.contains(needle),
                "{} gave `{message}`, expected it to name `{needle}`",
                String::from_utf8_lossy(body)
            ),
            other => panic!(
                "{} should be malformed, got {other:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
}

#[test]
fn accepted_webhooks_get_an_empty_200_and_refusals_the_default_answer() {
    let adapter = adapter();
    let request = request(&fixture("discount_fees_tip_nyc.body"), None);
    let delivery = Delivery {
        dedupe_key: "event".into(),
        inbound: Inbound::Ignored {
            event: "test".into(),
        },
    };
    let reply = adapter.reply(
        &request,
        Outcome::Accepted {
            delivery: &delivery,
            order_id: None,
            duplicate: true,
        },
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    let error = ChannelError::Unauthorized("missing X-Uber-Signature header".to_owned());
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&reply.body).contains("X-Uber-Signature"));
}

// ---------------------------------------------------------------------------------------
// resource_href: only the path counts
// ---------------------------------------------------------------------------------------

fn reference(id: &str, resource: &str) -> FetchRef {
    FetchRef {
        external_order_id: id.to_owned(),
        resource: resource.to_owned(),
        scheduled: false,
    }
}

#[test]
fn only_the_path_of_resource_href_is_used() {
    let target = resolve(&reference(
        "abc-1",
        "https://evil.example:8443/v2/eats/order/abc-1?x=1",
    ))
    .expect("resolve");
    assert_eq!(
        target,
        Target {
            generation: Generation::Classic,
            order_id: "abc-1".to_owned(),
            scheduled: false,
        }
    );
    assert_eq!(
        resolve(&reference("abc-1", "/v1/delivery/order/abc-1"))
            .expect("resolve")
            .generation,
        Generation::V1
    );
    for (id, href) in [
        ("abc-1", "https://api.uber.com/v3/eats/order/abc-1"),
        ("abc-1", "https://api.uber.com/v2/eats/order/abc-1/extra"),
        ("abc-1", "https://api.uber.com/"),
        ("abc-1", "not a url"),
        ("..", "https://api.uber.com/v2/eats/order/%2E%2E"),
        ("a%2Fb", "https://api.uber.com/v2/eats/order/a%2Fb"),
        ("other", "https://api.uber.com/v2/eats/order/abc-1"),
    ] {
        assert!(
            matches!(
                resolve(&reference(id, href)),
                Err(ChannelError::Malformed(_))
            ),
            "{href} for {id} should be refused"
        );
    }
    // Platform text in an error is clipped.
    let long = format!("not a url {}", "x".repeat(500));
    match resolve(&reference("abc-1", &long)) {
        Err(ChannelError::Malformed(message)) => {
            assert!(message.contains("xxx…`"), "{message}");
            assert!(message.chars().count() < 150, "{message}");
        }
        other => panic!("expected malformed, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures → unified orders
// ---------------------------------------------------------------------------------------

fn convert_fixture(
    name: &str,
    generation: Generation,
    scheduled: bool,
) -> Result<NewOrder, ConvertError> {
    let bytes = fixture(name);
    match generation {
        Generation::Classic => {
            let wire: ClassicOrder = serde_json::from_slice(&bytes).expect("classic fixture");
            convert::classic(&channel(), &wire, scheduled)
        }
        Generation::V1 => {
            let wire: V1OrderResponse = serde_json::from_slice(&bytes).expect("v1 fixture");
            convert::v1(&channel(), &wire, scheduled)
        }
    }
}

#[test]
fn the_classic_delivery_fixture_follows_the_rules() {
    let order = convert_fixture(
        "discount_fees_tip_nyc.fetched.json",
        Generation::Classic,
        false,
    )
    .expect("convert");
    assert_eq!(
        order.external_order_id,
        "8c2f7d1e-4b9a-4e3c-a6f1-2d5e9b07c4a3"
    );
    assert_eq!(order.display_code.as_deref(), Some("7C4A3"));
    assert_eq!(
        order.channel_store_ref.as_deref(),
        Some("3fd2d096-f48d-4848-8e37-d6e4d8dd2449")
    );
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    assert_eq!(
        order.fulfillment.accept_by,
        Some(
            Utc.with_ymd_and_hms(2025, 3, 14, 22, 53, 37)
                .single()
                .expect("time")
        )
    );
    assert_eq!(order.customer.name, "Daniel K.");
    assert_eq!(order.customer.phone_pin.as_deref(), Some("310 23 259"));
    assert_eq!(order.notes, None);
    let pizza = &order.lines[0];
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!((pizza.unit_price.minor, pizza.total.minor), (1899, 4098));
    assert_eq!(pizza.modifiers[0].group.as_deref(), Some("Extra toppings"));
    assert_eq!(pizza.modifiers[0].plu.as_deref(), Some("MOD-TOP-MUSH"));
    assert_eq!(order.totals.fees.delivery.minor, 299);
    assert_eq!(order.totals.fees.service.minor, 440);
    assert_eq!(order.totals.discounts[0].amount.minor, 500);
    assert_eq!(order.channel_data, serde_json::json!({"api": "classic"}));
}

#[test]
fn the_pickup_fixture_keeps_nested_and_removed_modifiers_and_notes() {
    let order = convert_fixture(
        "pickup_nested_modifiers_nyc.fetched.json",
        Generation::Classic,
        false,
    )
    .expect("convert");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.notes.as_deref(), Some("Please cut into 8 slices"));
    let pizza = &order.lines[0];
    assert_eq!(
        pizza.notes.as_deref(),
        Some("Well done, please; Allergens to exclude: PEANUTS; Allergy: Severe peanut allergy")
    );
    let pepperoni = pizza
        .modifiers
        .iter()
        .find(|m| m.plu.as_deref() == Some("MOD-TOP-PEPP"))
        .expect("pepperoni");
    assert_eq!(pepperoni.unit_price.minor, 200);
    // Half & half (free) opens its own group: its price is its base price, and the
    // second half's topping is a modifier of the modifier.
    let half = pizza
        .modifiers
        .iter()
        .find(|m| m.plu.as_deref() == Some("MOD-HALF-HALF"))
        .expect("half & half");
    assert_eq!(half.group.as_deref(), Some("Whole or half & half"));
    assert_eq!(half.unit_price.minor, 0);
    assert_eq!(half.modifiers.len(), 1);
    assert_eq!(half.modifiers[0].name, "Pepperoni (half)");
    assert_eq!(
        half.modifiers[0].group.as_deref(),
        Some("Second half toppings")
    );
    assert_eq!(half.modifiers[0].unit_price.minor, 100);
    let basil = pizza.modifiers.iter().find(|m| m.removed).expect("removed");
    assert_eq!((basil.name.as_str(), basil.quantity), ("Fresh basil", 0));
    assert_eq!(pizza.computed_total().map(|m| m.minor), Ok(2099));
    assert_eq!(order.totals.fees.packaging.minor, 5);
}

#[test]
fn a_scheduled_classic_order_uses_its_ready_time() {
    let order = convert_fixture(
        "pickup_nested_modifiers_nyc.fetched.json",
        Generation::Classic,
        true,
    )
    .expect("convert");
    assert_eq!(
        order.fulfillment.timing,
        Timing::Scheduled {
            at: Utc
                .with_ymd_and_hms(2025, 3, 15, 16, 25, 44)
                .single()
                .expect("time")
        }
    );
}

#[test]
fn the_v1_fixture_converts_e5_money_and_the_merchant_address() {
    let order = convert_fixture(
        "scheduled_merchant_delivery_v1_brooklyn.fetched.json",
        Generation::V1,
        false,
    )
    .expect("convert");
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(address.lines, vec!["425 Grand St", "Apt 3F"]);
    assert_eq!(address.postcode.as_deref(), Some("11211"));
    assert_eq!(
        order.fulfillment.timing,
        Timing::Scheduled {
            at: Utc
                .with_ymd_and_hms(2025, 3, 14, 23, 30, 0)
                .single()
                .expect("time")
        }
    );
    assert_eq!(order.customer.name, "Marcus J.");
    assert_eq!(order.lines[0].unit_price.minor, 2099);
    assert_eq!(order.lines[0].total.minor, 2349);
    assert_eq!(order.totals.subtotal.minor, 4145);
    assert_eq!(order.totals.total.minor, 5627);
    assert_eq!(order.totals.discounts[0].amount.minor, 300);
    assert_eq!(order.totals.fees.service.minor, 415);
    assert_eq!(order.channel_data, serde_json::json!({"api": "v1"}));
}

// ---------------------------------------------------------------------------------------
// Money and impossible orders
// ---------------------------------------------------------------------------------------

fn e5(amount_e5: i64, code: &str) -> MoneyE5 {
    MoneyE5 {
        amount_e5,
        currency_code: code.to_owned(),
    }
}

#[test]
fn e5_amounts_convert_exactly_by_currency_exponent() {
    let minor = |amount, code| e5_money(&e5(amount, code), "f").map(|m| m.minor);
    assert_eq!(minor(1_250_000, "USD"), Ok(1250));
    assert_eq!(minor(-300_000, "USD"), Ok(-300));
    assert_eq!(minor(0, "USD"), Ok(0));
    assert_eq!(minor(98_000_000, "JPY"), Ok(980));
    assert_eq!(minor(123_400, "KWD"), Ok(1234));
    assert!(matches!(
        e5_money(&e5(1_250_001, "USD"), "order_total"),
        Err(ConvertError::Money {
            source: MoneyError::FractionalMinorUnit { .. },
            ..
        })
    ));
    assert!(matches!(
        e5_money(&e5(98_050_000, "JPY"), "x"),
        Err(ConvertError::Money { .. })
    ));
    assert!(matches!(
        e5_money(&e5(100, "US"), "x"),
        Err(ConvertError::Money {
            source: MoneyError::BadCurrency(_),
            ..
        })
    ));
    // The simulator's inverse (through `Money::to_e5`), saturating on absurd samples.
    let to_e5 = |minor, code| simulator::e5(minor, code).amount_e5;
    assert_eq!(to_e5(1250, "USD"), 1_250_000);
    assert_eq!(to_e5(980, "JPY"), 98_000_000);
    assert_eq!(to_e5(1234, "KWD"), 123_400);
    assert_eq!(to_e5(-300, "USD"), -300_000);
    assert_eq!(to_e5(i64::MAX / 10, "USD"), i64::MAX);
    assert_eq!(to_e5(i64::MIN / 10, "USD"), i64::MIN);
    for amount in [1250, -300, 0, 7] {
        assert_eq!(minor(to_e5(amount, "USD"), "USD"), Ok(amount));
    }
}

fn mutate_fixture(name: &str, change: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(&fixture(name)).expect("json");
    change(&mut value);
    serde_json::to_vec(&value).expect("bytes")
}

fn classic_from(bytes: &[u8]) -> Result<NewOrder, ChannelError> {
    let wire: ClassicOrder =
        serde_json::from_slice(bytes).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    Ok(convert::classic(&channel(), &wire, false)?)
}

/// What the hub does with a fetched order: the adapter converts, the model checks.
fn checked(order: Result<NewOrder, ChannelError>) -> Result<NewOrder, ChannelError> {
    let order = order?;
    order.check()?;
    Ok(order)
}

fn v1_from(bytes: &[u8]) -> Result<NewOrder, ChannelError> {
    let wire: V1OrderResponse =
        serde_json::from_slice(bytes).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    Ok(convert::v1(&channel(), &wire, false)?)
}

#[test]
fn a_fractional_e5_amount_fails_the_order() {
    let bytes = mutate_fixture(
        "scheduled_merchant_delivery_v1_brooklyn.fetched.json",
        |v| {
            v["order"]["payment"]["payment_detail"]["item_charges"]["price_breakdown"][2]["unit"]
                ["gross"]["amount_e5"] = serde_json::json!(599_001);
        },
    );
    let error = v1_from(&bytes).unwrap_err();
    assert!(
        matches!(
            &error,
            ChannelError::Order(OrderError::MoneyAt {
                field,
                source: MoneyError::FractionalMinorUnit { .. },
            }) if field.starts_with(
                "order.payment.payment_detail.item_charges.price_breakdown["
            ) && field.ends_with("].unit.gross")
        ),
        "{error:?}"
    );
    // A quarantined order says which amount was wrong.
    assert!(
        error
            .to_string()
            .contains("].unit.gross: amount `599001e-5`"),
        "{error}"
    );
}

#[test]
fn impossible_orders_are_typed_errors_not_panics() {
    let bad_currency = mutate_fixture("discount_fees_tip_nyc.fetched.json", |v| {
        v["payment"]["charges"]["total"]["currency_code"] = serde_json::json!("US$");
    });
    assert_eq!(
        classic_from(&bad_currency),
        Err(ChannelError::Order(OrderError::MoneyAt {
            field: "payment.charges.total.currency_code".to_owned(),
            source: MoneyError::BadCurrency("US$".to_owned()),
        }))
    );
    let zero_quantity = mutate_fixture("discount_fees_tip_nyc.fetched.json", |v| {
        v["cart"]["items"][1]["quantity"] = serde_json::json!(0);
    });
    assert_eq!(
        checked(classic_from(&zero_quantity)),
        Err(ChannelError::Order(OrderError::BadQuantity {
            line: 2,
            name: "Cola (500 ml)".to_owned(),
            quantity: 0
        }))
    );
    let negative_v1 = mutate_fixture(
        "scheduled_merchant_delivery_v1_brooklyn.fetched.json",
        |v| {
            v["order"]["carts"][0]["items"][0]["quantity"]["amount"] = serde_json::json!(-1);
        },
    );
    assert!(matches!(
        checked(v1_from(&negative_v1)),
        Err(ChannelError::Order(OrderError::BadQuantity {
            quantity: -1,
            ..
        }))
    ));
    let unknown_type = mutate_fixture("discount_fees_tip_nyc.fetched.json", |v| {
        v["type"] = serde_json::json!("TELEPORT");
    });
    assert!(matches!(
        classic_from(&unknown_type),
        Err(ChannelError::Malformed(m)) if m.contains("type") && m.contains("TELEPORT")
    ));
    let no_price = mutate_fixture(
        "scheduled_merchant_delivery_v1_brooklyn.fetched.json",
        |v| {
            v["order"]["payment"]["payment_detail"]["item_charges"]["price_breakdown"] =
                serde_json::json!([]);
        },
    );
    assert!(matches!(
        v1_from(&no_price),
        Err(ChannelError::Malformed(m)) if m.contains("price_breakdown")
    ));
    let bad_time = mutate_fixture("discount_fees_tip_nyc.fetched.json", |v| {
        v["placed_at"] = serde_json::json!("yesterday");
    });
    assert!(matches!(
        classic_from(&bad_time),
        Err(ChannelError::Malformed(m)) if m.contains("placed_at")
    ));
    let float_amount = mutate_fixture("discount_fees_tip_nyc.fetched.json", |v| {
        v["payment"]["charges"]["tip"]["amount"] = serde_json::json!(5.5);
    });
    assert!(matches!(
        classic_from(&float_amount),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn a_restaurant_delivery_without_an_address_is_refused_by_the_check() {
    let bytes = mutate_fixture("discount_fees_tip_nyc.fetched.json", |v| {
        v["type"] = serde_json::json!("DELIVERY_BY_RESTAURANT");
    });
    let order = classic_from(&bytes).expect("converts");
    assert_eq!(order.check(), Err(OrderError::MissingAddress));
}

#[test]
fn a_restaurant_delivery_takes_the_eater_address() {
    let order = convert_fixture(
        "delivery_by_restaurant_london.fetched.json",
        Generation::Classic,
        false,
    )
    .expect("convert");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.clone().expect("address");
    // The classic location has one street line; the unit follows it.
    assert_eq!(
        address.lines,
        vec!["20 Frith Street, London W1D 4RF, United Kingdom", "Flat 3"]
    );
    assert_eq!((address.city, address.postcode), (None, None));
    // Courier notes go with the address, not to the order's notes.
    assert_eq!(
        address.instructions.as_deref(),
        Some("Blue door next to the café, buzzer 3")
    );
    assert_eq!(order.notes, None, "an empty cart note is no note");
    let coordinates = address.coordinates.expect("coordinates");
    assert_eq!(
        (coordinates.lat, coordinates.lng, coordinates.system),
        (51.5139, -0.1317, crossdock_model::CoordSystem::Wgs84)
    );
    assert_eq!(order.totals.currency.code(), "GBP");
    assert_eq!(order.totals.fees.delivery.minor, 299);
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn the_unicode_fixture_keeps_names_and_notes_as_sent() {
    let order = convert_fixture(
        "unicode_emoji_pickup_v1_london.fetched.json",
        Generation::V1,
        false,
    )
    .expect("convert");
    // The new API's `display_name`, emoji included.
    assert_eq!(order.customer.name, "Zoë Ø. 🦄");
    // `\u0026` (how Uber's encoder writes `&`) is decoded; nothing else is touched.
    assert_eq!(
        order.notes.as_deref(),
        Some("Bitte nicht schneiden ✂️🚫 & merci ! 谢谢 🙏")
    );
    let names: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Margherita (Medium) 🍕",
            "Chocolate Brownie 🍫",
            "Still Water (500 ml) 💧"
        ]
    );
    assert_eq!(order.lines[0].modifiers[0].name, "Jalapeños 🌶️");
    assert_eq!(
        order.lines[0].notes.as_deref(),
        Some("Très bien cuite, s’il vous plaît 🔥")
    );
    assert_eq!(
        order.lines[1].notes.as_deref(),
        Some(
            "Für meine Tochter 👧; Allergens to exclude: TREE_NUTS; Allergy: Keine Nüsse – nut allergy 🥜❌"
        )
    );
    // VAT is included in the prices: it is not added again, and the total adds up.
    assert!(order.totals.tax_included);
    assert_eq!(order.totals.tax.minor, 394);
    assert_eq!(order.totals.total.minor, 2366);
    assert_eq!(order.check(), Ok(vec![]));
}

/// Every order Uber answered in the fixtures (`*.fetched.json`), converted.
fn fetched_fixtures() -> Vec<(String, NewOrder)> {
    let dir = fixture_path("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".fetched.json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = fixture(&name);
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            // The new API wraps its order in `{"order": …}`.
            let generation = if value.get("order").is_some() {
                Generation::V1
            } else {
                Generation::Classic
            };
            let order =
                convert_fixture(&name, generation, false).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, order)
        })
        .collect()
}

fn chain_file(name: &str) -> serde_json::Value {
    let path = fixture_path("../chain").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// PLU → (currency → price), over the menu's items and options at any depth.
fn menu_prices() -> BTreeMap<String, serde_json::Value> {
    fn walk(entry: &serde_json::Value, prices: &mut BTreeMap<String, serde_json::Value>) {
        if let Some(plu) = entry["plu"].as_str() {
            prices.insert(plu.to_owned(), entry["prices"].clone());
        }
        for group in entry["modifier_groups"].as_array().into_iter().flatten() {
            for option in group["options"].as_array().into_iter().flatten() {
                walk(option, prices);
            }
        }
    }
    let mut prices = BTreeMap::new();
    for item in chain_file("menu.json")["items"]
        .as_array()
        .expect("menu items")
    {
        walk(item, &mut prices);
    }
    prices
}

#[test]
fn fixtures_order_from_the_sample_chain_stores_and_menu() {
    // Uber store id → the store's currency, for every store Uber is mapped at.
    let stores: BTreeMap<String, String> = chain_file("chain.json")["stores"]
        .as_array()
        .expect("stores")
        .iter()
        .filter_map(|store| {
            let uber = store["channels"]["uber_eats"].as_str()?;
            Some((uber.to_owned(), store["currency"].as_str()?.to_owned()))
        })
        .collect();
    let prices = menu_prices();
    fn check(
        name: &str,
        what: &str,
        plu: Option<&str>,
        unit_price: crossdock_model::Money,
        removed: bool,
        prices: &BTreeMap<String, serde_json::Value>,
    ) {
        let plu = plu.unwrap_or_else(|| panic!("{name}: {what} has no PLU"));
        let menu = prices
            .get(plu)
            .unwrap_or_else(|| panic!("{name}: {what} `{plu}` is not on the menu"));
        // A removed ingredient costs nothing, whatever its price as an extra.
        if !removed {
            assert_eq!(
                Some(unit_price.minor),
                menu[unit_price.currency.code()].as_i64(),
                "{name}: {what} `{plu}` at the menu's price"
            );
        }
    }
    fn check_modifiers(
        name: &str,
        modifiers: &[crossdock_model::Modifier],
        prices: &BTreeMap<String, serde_json::Value>,
    ) {
        for modifier in modifiers {
            let what = format!("modifier {}", modifier.name);
            let plu = modifier.plu.as_deref();
            check(
                name,
                &what,
                plu,
                modifier.unit_price,
                modifier.removed,
                prices,
            );
            check_modifiers(name, &modifier.modifiers, prices);
        }
    }
    let orders = fetched_fixtures();
    assert!(orders.len() >= 5, "{} orders", orders.len());
    for (name, order) in &orders {
        let store = order.channel_store_ref.as_deref().expect("store");
        let currency = stores
            .get(store)
            .unwrap_or_else(|| panic!("{name}: Uber store {store} is not in the sample chain"));
        assert_eq!(order.totals.currency.code(), currency, "{name}");
        for line in &order.lines {
            let what = format!("item {}", line.name);
            check(
                name,
                &what,
                line.plu.as_deref(),
                line.unit_price,
                false,
                &prices,
            );
            check_modifiers(name, &line.modifiers, &prices);
        }
        assert_eq!(order.check(), Ok(vec![]), "{name} adds up exactly");
    }
}

// ---------------------------------------------------------------------------------------
// Push mapping
// ---------------------------------------------------------------------------------------

fn stored(name: &str, generation: Generation, status: Status) -> Order {
    let order = convert_fixture(name, generation, false).expect("convert");
    let at = Utc::now();
    Order {
        id: OrderId::new(),
        received_at: at,
        updated_at: at,
        status,
        store_id: None,
        flags: vec![],
        order,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 22, 45, 0)
        .single()
        .expect("time")
}

fn call(plan: Result<Plan, ChannelError>) -> (String, serde_json::Value) {
    match plan {
        Ok(Plan::Call { path, body }) => (path, body),
        other => panic!("expected a call, got {other:?}"),
    }
}

#[test]
fn classic_actions_map_onto_the_classic_endpoints() {
    let order = stored(
        "discount_fees_tip_nyc.fetched.json",
        Generation::Classic,
        Status::Received,
    );
    let id = "8c2f7d1e-4b9a-4e3c-a6f1-2d5e9b07c4a3";
    let (path, body) = call(plan(
        &order,
        &change(&order, &StatusAction::Accept { prep_minutes: 20 }),
    ));
    assert_eq!(path, format!("/v1/eats/orders/{id}/accept_pos_order"));
    assert_eq!(
        body,
        serde_json::json!({
            "reason": "accepted",
            "pickup_time": now().timestamp() + 20 * 60,
            "external_reference_id": order.id.to_string(),
        })
    );
    let (path, body) = call(plan(
        &order,
        &change(
            &order,
            &StatusAction::Reject {
                reason: "Store is closed for a private event".to_owned(),
            },
        ),
    ));
    assert_eq!(path, format!("/v1/eats/orders/{id}/deny_pos_order"));
    assert_eq!(
        body,
        serde_json::json!({"reason": {"explanation": "Store is closed for a private event", "code": "STORE_CLOSED"}})
    );
    let (path, body) = call(plan(
        &order,
        &change(
            &order,
            &StatusAction::Cancel {
                reason: "We ran out of dough".to_owned(),
            },
        ),
    ));
    assert_eq!(path, format!("/v1/eats/orders/{id}/cancel"));
    assert_eq!(
        body,
        serde_json::json!({"reason": "OUT_OF_ITEMS", "details": "We ran out of dough"})
    );
    for action in [
        StatusAction::Preparing,
        StatusAction::Ready,
        StatusAction::Complete,
        StatusAction::PickedUp,
        StatusAction::Delivered,
    ] {
        assert!(
            matches!(
                plan(&order, &change(&order, &action)),
                Ok(Plan::NotApplicable(_))
            ),
            "{action:?} has no classic call for an Uber-courier order"
        );
    }
    // Fail: a deny before acceptance, a cancel after it.
    let fail = StatusAction::Fail {
        reason: "no store can take it".to_owned(),
    };
    assert!(
        call(plan(&order, &change(&order, &fail)))
            .0
            .ends_with("/deny_pos_order")
    );
    let accepted = Order {
        status: Status::Preparing,
        ..order.clone()
    };
    assert!(
        call(plan(&accepted, &change(&accepted, &fail)))
            .0
            .ends_with("/cancel")
    );
}

#[test]
fn classic_merchant_delivery_progress_is_pushed() {
    let mut order = stored(
        "discount_fees_tip_nyc.fetched.json",
        Generation::Classic,
        Status::Ready,
    );
    order.order.fulfillment.delivered_by = Some(DeliveredBy::Store);
    let (path, body) = call(plan(&order, &change(&order, &StatusAction::PickedUp)));
    assert!(path.ends_with("/restaurantdelivery/status"));
    assert_eq!(body, serde_json::json!({"status": "started"}));
    let (_, body) = call(plan(&order, &change(&order, &StatusAction::Delivered)));
    assert_eq!(body, serde_json::json!({"status": "delivered"}));
}

#[test]
fn v1_actions_map_onto_the_new_endpoints() {
    let order = stored(
        "scheduled_merchant_delivery_v1_brooklyn.fetched.json",
        Generation::V1,
        Status::Received,
    );
    let base = "/v1/delivery/order/5e8a2c41-9f3b-4d7e-b1a6-0c4d8e2f7b96";
    let (path, body) = call(plan(
        &order,
        &change(&order, &StatusAction::Accept { prep_minutes: 15 }),
    ));
    assert_eq!(path, format!("{base}/accept"));
    assert_eq!(
        body,
        serde_json::json!({"ready_for_pickup_time": "2025-03-14T23:00:00Z"})
    );
    let (path, body) = call(plan(
        &order,
        &change(
            &order,
            &StatusAction::Reject {
                reason: "Too busy right now".to_owned(),
            },
        ),
    ));
    assert_eq!(path, format!("{base}/deny"));
    assert_eq!(
        body,
        serde_json::json!({"deny_reason": {"type": "CAPACITY", "info": "Too busy right now"}})
    );
    let (path, body) = call(plan(&order, &change(&order, &StatusAction::Ready)));
    assert_eq!(
        (path, body),
        (format!("{base}/ready"), serde_json::json!({}))
    );
    let (path, body) = call(plan(
        &order,
        &change(
            &order,
            &StatusAction::Cancel {
                reason: "customer called".to_owned(),
            },
        ),
    ));
    assert_eq!(path, format!("{base}/cancel"));
    assert_eq!(
        body,
        serde_json::json!({"cancellation_reason": {"type": "CUSTOMER_CALLED_TO_CANCEL"}})
    );
    for action in [
        StatusAction::Preparing,
        StatusAction::PickedUp,
        StatusAction::Delivered,
        StatusAction::Complete,
    ] {
        assert!(matches!(
            plan(&order, &change(&order, &action)),
            Ok(Plan::NotApplicable(_))
        ));
    }
}

#[test]
fn a_push_refuses_an_unknown_generation_or_an_unsafe_id() {
    let mut order = stored(
        "discount_fees_tip_nyc.fetched.json",
        Generation::Classic,
        Status::Received,
    );
    order.order.channel_data = serde_json::json!({"api": "v9"});
    assert_eq!(
        plan(&order, &change(&order, &StatusAction::Ready)),
        Err(ChannelError::Malformed(
            "channel_data.api: unknown variant `v9`, expected `classic` or `v1`".to_owned()
        ))
    );
    order.order.channel_data = serde_json::json!({"api": "v1"});
    assert!(
        call(plan(&order, &change(&order, &StatusAction::Ready)))
            .0
            .ends_with("/ready")
    );
    order.order.channel_data = serde_json::Value::Null;
    order.order.external_order_id = "../../admin".to_owned();
    assert!(matches!(
        plan(&order, &change(&order, &StatusAction::Ready)),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn reason_codes_follow_keywords_and_default_to_other() {
    assert_eq!(deny_code("Pepperoni is out of stock"), "ITEM_AVAILABILITY");
    assert_eq!(deny_code("kitchen too busy"), "CAPACITY");
    assert_eq!(deny_code("address outside our delivery zone"), "ADDRESS");
    assert_eq!(deny_code("POS offline"), "POS_OFFLINE");
    assert_eq!(deny_code("whatever"), "OTHER");
    assert_eq!(cancel_code("Kitchen closed early"), "KITCHEN_CLOSED");
    assert_eq!(
        cancel_code("cannot honour the note"),
        "CANNOT_COMPLETE_CUSTOMER_NOTE"
    );
    assert_eq!(cancel_code("restaurant too busy"), "RESTAURANT_TOO_BUSY");
    assert_eq!(cancel_code("whatever"), "OTHER");
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

fn settings(options: serde_json::Value) -> ChannelSettings {
    ChannelSettings {
        channel: CHANNEL_ID.to_owned(),
        options,
        secrets: SecretSource::new(BTreeMap::new(), true),
        dev_secrets: Factory.dev_secrets(),
        http: reqwest::Client::new(),
    }
}

#[test]
fn the_factory_builds_from_defaults_and_refuses_unknown_options() {
    assert_eq!(Factory.id(), "uber_eats");
    assert_eq!(
        Factory.dev_secrets(),
        &[("client_secret", DEV_CLIENT_SECRET)]
    );
    let channel = Factory
        .build(&settings(serde_json::Value::Null))
        .expect("defaults");
    assert_eq!(channel.id().as_str(), "uber_eats");
    assert_eq!(channel.push_rate().per_second, 100);
    let built = Factory.build(&settings(serde_json::json!({
        "base_url": "http://127.0.0.1:9/",
        "token_url": "http://127.0.0.1:9/oauth/v2/token",
        "client_id": "abc",
        "scope": "eats.order",
        "timeout_secs": 3
    })));
    assert!(built.is_ok());
    let err = Factory
        .build(&settings(serde_json::json!({"base_uri": "x"})))
        .map(|_| ())
        .expect_err("unknown option");
    assert!(err.to_string().contains("base_uri"), "{err}");
    assert!(
        Factory
            .build(&settings(serde_json::json!({"base_url": "ftp://x"})))
            .is_err()
    );
    let config = UberEatsConfig::default();
    assert_eq!(config.base_url, "https://api.uber.com");
    assert_eq!(config.token_url, "https://auth.uber.com/oauth/v2/token");
    assert_eq!(config.scope, "eats.order eats.store.orders.read");
}

/// `action` done now on `order` as it stands.
fn change(order: &Order, action: &StatusAction) -> StatusChange {
    StatusChange {
        action: action.clone(),
        from: order.status,
        at: now(),
    }
}

#[test]
fn a_late_push_maps_by_the_change_not_by_the_order_as_it_is_now() {
    // The store accepted at `now()`, then the order failed; the accept is pushed late
    // (after retries), when the order already reads `failed`.
    let mut order = stored(
        "discount_fees_tip_nyc.fetched.json",
        Generation::Classic,
        Status::Failed,
    );
    order.updated_at = now() + TimeDelta::minutes(30);
    let accept = StatusChange {
        action: StatusAction::Accept { prep_minutes: 20 },
        from: Status::Received,
        at: now(),
    };
    let (_, body) = call(plan(&order, &accept));
    assert_eq!(
        body["pickup_time"],
        now().timestamp() + 20 * 60,
        "counted from the accept"
    );
    // The failure came after acceptance: Uber gets a cancel, not a deny.
    let fail = StatusChange {
        action: StatusAction::Fail {
            reason: "oven broke".to_owned(),
        },
        from: Status::Accepted,
        at: now(),
    };
    assert!(call(plan(&order, &fail)).0.ends_with("/cancel"));
}
