//! Unit tests of the adapter: signatures, envelopes, fixtures → unified orders, money,
//! push mapping. Fixtures live in `fixtures/uber_eats/`; set `UPDATE_FIXTURES=1` to
//! rewrite the `*.expected.json` files (then review the diff).

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
use crate::convert::{ConvertError, e5_money};
use crate::wire::{ClassicOrder, MoneyE5, V1OrderResponse};

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
    let body = fixture("webhook-notification.json");
    let signature = sign(&body);
    assert!(adapter().verify(&request(&body, Some(&signature))).is_ok());
    let upper = signature.to_ascii_uppercase();
    assert!(adapter().verify(&request(&body, Some(&upper))).is_ok());
}

#[test]
fn any_tampered_byte_fails_the_signature() {
    let body = fixture("webhook-notification.json");
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
    let body = fixture("webhook-notification.json");
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
    let delivery = parse(&fixture("webhook-notification.json")).expect("parse");
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
    let delivery = parse(&fixture("webhook-scheduled-notification.json")).expect("parse");
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
    let delivery = parse(&fixture("webhook-cancel.json")).expect("parse");
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
    let request = request(&fixture("webhook-notification.json"), None);
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

const ORDER_FIXTURES: &[(&str, Generation, bool)] = &[
    ("order-classic-delivery.json", Generation::Classic, false),
    ("order-classic-pickup.json", Generation::Classic, false),
    (
        "order-v1-scheduled-merchant-delivery.json",
        Generation::V1,
        false,
    ),
];

#[test]
fn every_fixture_normalizes_to_its_expected_order() {
    for (name, generation, scheduled) in ORDER_FIXTURES {
        let order = convert_fixture(name, *generation, *scheduled)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(order.check(), Ok(vec![]), "{name} should add up exactly");
        let expected_name = name.replace(".json", ".expected.json");
        let actual = serde_json::to_value(&order).expect("serialize");
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            // The model's own field order, for readable diffs.
            let text = serde_json::to_string_pretty(&order).expect("pretty") + "\n";
            std::fs::write(fixture_path(&expected_name), text).expect("write expected");
        }
        let expected: serde_json::Value =
            serde_json::from_slice(&fixture(&expected_name)).expect("expected json");
        assert_eq!(actual, expected, "{name} differs from {expected_name}");
        let back: NewOrder = serde_json::from_value(expected).expect("expected is a NewOrder");
        assert_eq!(back, order);
    }
}

#[test]
fn the_classic_delivery_fixture_follows_the_rules() {
    let order = convert_fixture("order-classic-delivery.json", Generation::Classic, false)
        .expect("convert");
    assert_eq!(
        order.external_order_id,
        "8c2f7d1e-4b9a-4e3c-a6f1-2d5e9b07c4a3"
    );
    assert_eq!(order.display_code.as_deref(), Some("7C4A3"));
    assert_eq!(
        order.channel_store_ref.as_deref(),
        Some("b7e1c9a2-5d34-4f8b-9e21-6a0c3d7f4e18")
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
    assert_eq!(pizza.modifiers[0].group.as_deref(), Some("Add Toppings"));
    assert_eq!(order.totals.fees.delivery.minor, 299);
    assert_eq!(order.totals.fees.service.minor, 440);
    assert_eq!(order.totals.discounts[0].amount.minor, 500);
    assert_eq!(order.channel_data, serde_json::json!({"api": "classic"}));
}

#[test]
fn the_pickup_fixture_keeps_nested_and_removed_modifiers_and_notes() {
    let order =
        convert_fixture("order-classic-pickup.json", Generation::Classic, false).expect("convert");
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
        .find(|m| m.plu.as_deref() == Some("PZ-TOP-PEPP"))
        .expect("pepperoni");
    assert_eq!(pepperoni.unit_price.minor, 200);
    assert_eq!(pepperoni.modifiers[0].name, "Cup & Char");
    assert_eq!(
        pepperoni.modifiers[0].group.as_deref(),
        Some("Pepperoni Style")
    );
    let basil = pizza.modifiers.iter().find(|m| m.removed).expect("removed");
    assert_eq!((basil.name.as_str(), basil.quantity), ("Basil", 0));
    assert_eq!(pizza.computed_total().map(|m| m.minor), Ok(2099));
    assert_eq!(order.totals.fees.packaging.minor, 5);
}

#[test]
fn a_scheduled_classic_order_uses_its_ready_time() {
    let order =
        convert_fixture("order-classic-pickup.json", Generation::Classic, true).expect("convert");
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
        "order-v1-scheduled-merchant-delivery.json",
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
    let bytes = mutate_fixture("order-v1-scheduled-merchant-delivery.json", |v| {
        v["order"]["payment"]["payment_detail"]["item_charges"]["price_breakdown"][2]["unit"]["gross"]
            ["amount_e5"] = serde_json::json!(599_001);
    });
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
    let bad_currency = mutate_fixture("order-classic-delivery.json", |v| {
        v["payment"]["charges"]["total"]["currency_code"] = serde_json::json!("US$");
    });
    assert_eq!(
        classic_from(&bad_currency),
        Err(ChannelError::Order(OrderError::MoneyAt {
            field: "payment.charges.total.currency_code".to_owned(),
            source: MoneyError::BadCurrency("US$".to_owned()),
        }))
    );
    let zero_quantity = mutate_fixture("order-classic-delivery.json", |v| {
        v["cart"]["items"][1]["quantity"] = serde_json::json!(0);
    });
    assert_eq!(
        checked(classic_from(&zero_quantity)),
        Err(ChannelError::Order(OrderError::BadQuantity {
            line: 2,
            name: "Coca-Cola 330ml".to_owned(),
            quantity: 0
        }))
    );
    let negative_v1 = mutate_fixture("order-v1-scheduled-merchant-delivery.json", |v| {
        v["order"]["carts"][0]["items"][0]["quantity"]["amount"] = serde_json::json!(-1);
    });
    assert!(matches!(
        checked(v1_from(&negative_v1)),
        Err(ChannelError::Order(OrderError::BadQuantity {
            quantity: -1,
            ..
        }))
    ));
    let unknown_type = mutate_fixture("order-classic-delivery.json", |v| {
        v["type"] = serde_json::json!("TELEPORT");
    });
    assert!(matches!(
        classic_from(&unknown_type),
        Err(ChannelError::Malformed(m)) if m.contains("type") && m.contains("TELEPORT")
    ));
    let no_price = mutate_fixture("order-v1-scheduled-merchant-delivery.json", |v| {
        v["order"]["payment"]["payment_detail"]["item_charges"]["price_breakdown"] =
            serde_json::json!([]);
    });
    assert!(matches!(
        v1_from(&no_price),
        Err(ChannelError::Malformed(m)) if m.contains("price_breakdown")
    ));
    let bad_time = mutate_fixture("order-classic-delivery.json", |v| {
        v["placed_at"] = serde_json::json!("yesterday");
    });
    assert!(matches!(
        classic_from(&bad_time),
        Err(ChannelError::Malformed(m)) if m.contains("placed_at")
    ));
    let float_amount = mutate_fixture("order-classic-delivery.json", |v| {
        v["payment"]["charges"]["tip"]["amount"] = serde_json::json!(5.5);
    });
    assert!(matches!(
        classic_from(&float_amount),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn a_restaurant_delivery_without_an_address_is_refused_by_the_check() {
    let bytes = mutate_fixture("order-classic-delivery.json", |v| {
        v["type"] = serde_json::json!("DELIVERY_BY_RESTAURANT");
    });
    let order = classic_from(&bytes).expect("converts");
    assert_eq!(order.check(), Err(OrderError::MissingAddress));
}

#[test]
fn a_restaurant_delivery_takes_the_eater_address() {
    let bytes = mutate_fixture("order-classic-delivery.json", |v| {
        v["type"] = serde_json::json!("DELIVERY_BY_RESTAURANT");
        v["eater"]["delivery"] = serde_json::json!({
            "location": {
                "type": "STREET_ADDRESS",
                "street_address": "350 W 23rd St, New York, NY 10011, US",
                "latitude": 40.7458,
                "longitude": -73.9987,
                "unit_number": "Apt 5C"
            },
            "type": "DELIVER_TO_DOOR",
            "notes": "Doorbell broken, please call"
        });
    });
    let order = classic_from(&bytes).expect("converts");
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.expect("address");
    assert_eq!(
        address.lines,
        vec!["350 W 23rd St, New York, NY 10011, US", "Apt 5C"]
    );
    assert_eq!(
        address.instructions.as_deref(),
        Some("Doorbell broken, please call")
    );
    assert_eq!(address.coordinates.map(|c| c.lat), Some(40.7458));
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
        "order-classic-delivery.json",
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
        "order-classic-delivery.json",
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
        "order-v1-scheduled-merchant-delivery.json",
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
        "order-classic-delivery.json",
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
        "order-classic-delivery.json",
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
