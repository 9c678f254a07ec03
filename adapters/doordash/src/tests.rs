//! Unit tests of the adapter: the webhook token, envelopes, fixtures → unified orders
//! (every §10 rule that applies to DoorDash), money, replies, push planning and reason
//! codes, configuration. Fixtures live in `fixtures/doordash/` (the conformance kit checks
//! them against their `*.expected.json`); these tests pin the rules one by one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::body::Bytes;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crossdock_channel::normalize::parse_headers;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, HeaderMap,
    HeaderValue, Inbound, InboundRequest, Outcome, SecretSource, StatusCode,
};
use crossdock_model::{
    CoordSystem, DeliveredBy, FulfillmentKind, FundedBy, MoneyError, NewOrder, Order, OrderError,
    OrderId, Payment, Status, StatusAction, StatusChange, Timing,
};
use secrecy::SecretString;
use serde_json::json;

use super::*;

fn adapter_with(config: DoorDashConfig) -> DoorDash {
    DoorDash::new(
        config,
        SecretString::from(DEV_WEBHOOK_AUTHORIZATION),
        SecretString::from(DEV_SIGNING_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn adapter() -> DoorDash {
    adapter_with(DoorDashConfig::default())
}

/// The instant fixtures are received at (the kit's `FIXTURE_TIME`).
fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time")
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/doordash")
}

/// A fixture case as the hub receives it: body, headers and `{event}` from its URL.
fn fixture(name: &str) -> InboundRequest {
    let read = |suffix: &str| std::fs::read(fixture_dir().join(format!("{name}{suffix}")));
    let body = read(".body").unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let headers =
        parse_headers(&String::from_utf8(read(".headers").expect("headers")).expect("utf-8"))
            .expect("headers file");
    let url = read(".url")
        .map(|u| String::from_utf8(u).expect("utf-8").trim().to_owned())
        .unwrap_or_else(|_| "https://hub.crossdock.example/webhooks/doordash".to_owned());
    crossdock_channel::normalize::request(
        crossdock_channel::Method::POST,
        &url,
        headers,
        Bytes::from(body),
        received_at(),
    )
}

fn request(event: Option<&str>, body: &[u8], authorization: Option<&str>) -> InboundRequest {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert("authorization", value.parse().expect("header"));
    }
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: event.map(str::to_owned),
        url: "https://hub.crossdock.example/webhooks/doordash".to_owned(),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: received_at(),
    }
}

fn parse(event: Option<&str>, body: &[u8]) -> Result<Delivery, ChannelError> {
    adapter().parse(&request(event, body, None))
}

fn order_of(delivery: Delivery) -> NewOrder {
    match delivery.inbound {
        Inbound::Order(order) => *order,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn fixture_order(name: &str) -> NewOrder {
    let request = fixture(name);
    adapter().verify(&request).expect("fixture verifies");
    order_of(adapter().parse(&request).expect("fixture parses"))
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").expect("USD"))
}

use crossdock_model::Money;

/// A minimal OrderCreate body around `order` fields (merged over a valid order).
fn order_body(changes: serde_json::Value) -> Vec<u8> {
    let mut order = json!({
        "id": "11111111-2222-4333-8444-555555555555",
        "subtotal": 1899,
        "tax": 0,
        "is_pickup": true,
        "store": {"merchant_supplied_id": "xd-nyc-001"},
        "categories": [{"name": "Pizzas", "items": [
            {"name": "Margherita (Large)", "merchant_supplied_id": "PZ-MARG-L", "price": 1899, "quantity": 1}
        ]}]
    });
    if let (Some(order), serde_json::Value::Object(changes)) = (order.as_object_mut(), changes) {
        for (key, value) in changes {
            order.insert(key, value);
        }
    }
    serde_json::to_vec(&json!({"event": {"type": "OrderCreate", "status": "NEW"}, "order": order}))
        .expect("json")
}

// ---------------------------------------------------------------------------------------
// The webhook token (the body is not signed)
// ---------------------------------------------------------------------------------------

#[test]
fn the_configured_authorization_value_is_accepted() {
    let request = request(None, b"{}", Some(DEV_WEBHOOK_AUTHORIZATION));
    assert_eq!(adapter().verify(&request), Ok(()));
    for name in [
        "order-dasher-delivery",
        "order-canceled-webhook",
        "dasher-out-for-delivery",
    ] {
        assert_eq!(adapter().verify(&fixture(name)), Ok(()), "{name}");
    }
}

#[test]
fn any_changed_byte_of_the_token_is_refused() {
    let adapter = adapter();
    let token = DEV_WEBHOOK_AUTHORIZATION.as_bytes();
    for index in 0..token.len() {
        let mut changed = token.to_vec();
        changed[index] ^= 0x01;
        let Ok(value) = HeaderValue::from_bytes(&changed) else {
            continue;
        };
        let mut request = request(None, b"{}", None);
        request.headers.insert("authorization", value);
        let result = adapter.verify(&request);
        assert!(
            matches!(&result, Err(ChannelError::Unauthorized(m)) if m.contains("not the configured")),
            "byte {index} changed but got {result:?}"
        );
    }
}

#[test]
fn a_missing_shortened_padded_or_differently_cased_token_is_refused() {
    let adapter = adapter();
    match adapter.verify(&request(None, b"{}", None)) {
        Err(ChannelError::Unauthorized(message)) => {
            assert_eq!(message, "missing Authorization header")
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    let lower_scheme = DEV_WEBHOOK_AUTHORIZATION.replacen("Bearer", "bearer", 1);
    let upper = DEV_WEBHOOK_AUTHORIZATION.to_ascii_uppercase();
    let token_only = DEV_WEBHOOK_AUTHORIZATION.trim_start_matches("Bearer ");
    let longer = format!("{DEV_WEBHOOK_AUTHORIZATION}x");
    let shorter = &DEV_WEBHOOK_AUTHORIZATION[..DEV_WEBHOOK_AUTHORIZATION.len() - 1];
    for value in [
        lower_scheme.as_str(),
        upper.as_str(),
        token_only,
        longer.as_str(),
        shorter,
        "Basic Y3Jvc3Nkb2NrOmRldg==",
    ] {
        assert!(
            matches!(
                adapter.verify(&request(None, b"{}", Some(value))),
                Err(ChannelError::Unauthorized(_))
            ),
            "`{value}` accepted"
        );
    }
    // A secret of someone else's configuration.
    let other = DoorDash::new(
        DoorDashConfig::default(),
        SecretString::from("Bearer another-token"),
        SecretString::from(DEV_SIGNING_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");
    assert!(other.verify(&fixture("order-dasher-delivery")).is_err());
}

#[test]
fn the_body_is_not_covered_by_the_token() {
    // DoorDash does not sign bodies: the token alone authenticates, whatever the body.
    let mut request = fixture("order-dasher-delivery");
    request.body = Bytes::from_static(b"{\"anything\": true}");
    assert_eq!(adapter().verify(&request), Ok(()));
    assert!(matches!(
        adapter().parse(&request),
        Err(ChannelError::Malformed(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Fixtures → unified orders (CHANNELS.md §8, §10)
// ---------------------------------------------------------------------------------------

#[test]
fn a_dasher_delivery_follows_the_rules() {
    let request = fixture("order-dasher-delivery");
    let delivery = adapter().parse(&request).expect("parse");
    assert_eq!(
        delivery.dedupe_key, "7d3e9a41-2c5b-4f86-9e0d-1a8b6c4f2e73",
        "dedupe on order.id"
    );
    let order = order_of(delivery);
    assert_eq!(order.channel.as_str(), "doordash");
    assert_eq!(
        order.external_order_id,
        "7d3e9a41-2c5b-4f86-9e0d-1a8b6c4f2e73"
    );
    assert_eq!(order.display_code.as_deref(), Some("381146"));
    assert_eq!(order.channel_store_ref.as_deref(), Some("xd-nyc-001"));
    assert_eq!(order.platform_brand.as_deref(), Some("DOORDASH"));
    assert_eq!(
        order.placed_at,
        received_at(),
        "no creation time on the wire"
    );
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(
        order.fulfillment.address, None,
        "a Dasher order has no address"
    );
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    assert_eq!(
        order.fulfillment.promised_at,
        Some(
            DateTime::parse_from_rfc3339("2026-11-20T12:21:37.482913Z")
                .expect("time")
                .with_timezone(&Utc)
        )
    );
    assert_eq!(
        order.fulfillment.accept_by,
        Some(received_at() + TimeDelta::minutes(3))
    );
    assert_eq!(order.customer.name, "Maya R");
    assert_eq!(order.customer.phone.as_deref(), Some("+1 (646) 555-0123"));
    assert_eq!(order.customer.email.as_deref(), Some("maya.r@example.com"));
    assert_eq!(order.notes, None, "an empty note is no note");
    assert_eq!(order.payment, Payment::Prepaid);

    // Lines: one per item across categories, in payload order, with recursive options.
    let names: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["Pepperoni (Large)", "Cola (500 ml)"]);
    let pizza = &order.lines[0];
    assert_eq!(
        pizza.channel_item_id,
        "b1c2d3e4-0001-4a5b-8c7d-9e0f1a2b3c4d"
    );
    assert_eq!(pizza.plu.as_deref(), Some("PZ-PEPP-L"));
    assert_eq!(
        pizza.unit_price,
        usd(2199),
        "price is one unit without options"
    );
    assert_eq!(pizza.modifiers.len(), 2);
    assert_eq!(pizza.modifiers[1].group.as_deref(), Some("Dips"));
    assert_eq!(pizza.modifiers[1].plu.as_deref(), Some("MOD-DIP-GARL"));
    assert_eq!(pizza.modifiers[1].quantity, 2);
    assert_eq!(pizza.modifiers[1].unit_price, usd(99));
    assert_eq!(
        pizza.modifiers[1].channel_item_id.as_deref(),
        Some("b1c2d3e4-0003-4a5b-8c7d-9e0f1a2b3c4d")
    );
    assert_eq!(
        pizza.total,
        usd(2199 + 2 * 99),
        "(unit + options) × quantity"
    );
    assert_eq!(order.lines[1].total, usd(2 * 299));

    // Money: integer cents as-is, no currency on the wire (USD by default), derived total.
    let totals = &order.totals;
    assert_eq!(totals.currency.code(), "USD");
    assert_eq!(totals.subtotal, usd(2995));
    assert_eq!(totals.tax, usd(266));
    assert_eq!(totals.fees.delivery, usd(299));
    assert_eq!(totals.tip, usd(0));
    assert_eq!(totals.total, usd(2995 + 266 + 299));
    assert!(totals.total_is_derived);
    assert_eq!(order.check(), Ok(vec![]), "lines add up to the subtotal");
    assert_eq!(
        order.channel_data,
        json!({
            "event_status": "NEW",
            "fulfillment_type": "dx_delivery",
            "consumer_id": "42298631",
            "provider_type": "crossdock",
            "store_timezone": "US/Eastern",
            "commission_type": "dashpass",
            "is_tax_remitted_by_doordash": true,
            "tax_amount_remitted_by_doordash": 266,
            "tax_transaction_id": "c0ffee00-1d2e-4f3a-9b8c-7d6e5f4a3b2c",
            "cutlery": true,
        })
    );
}

#[test]
fn pickup_keeps_nested_options_in_either_spelling_and_the_notes() {
    let order = fixture_order("order-pickup-half-and-half");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.delivered_by, None);
    assert_eq!(
        order.notes.as_deref(),
        Some("Please cut the pizza into squares, it's for a kids' party")
    );
    let pizza = &order.lines[0];
    assert_eq!(
        pizza.notes.as_deref(),
        Some("Pepperoni and mushroom on the left half only")
    );
    let half = &pizza.modifiers[1];
    assert_eq!(half.group.as_deref(), Some("Whole or half & half"));
    assert_eq!(half.plu.as_deref(), Some("MOD-HALF-HALF"));
    // `extra` (singular) under an option: the second half's toppings.
    let second: Vec<(&str, Option<&str>, i64)> = half
        .modifiers
        .iter()
        .map(|m| (m.name.as_str(), m.group.as_deref(), m.unit_price.minor))
        .collect();
    assert_eq!(
        second,
        [
            ("Pepperoni (half)", Some("Second half toppings"), 100),
            ("Mushrooms (half)", Some("Second half toppings"), 80)
        ]
    );
    assert_eq!(pizza.total, usd(1899 + 300 + 100 + 80));
    // `extra` (singular) on the item itself.
    let wings = &order.lines[1];
    let groups: Vec<Option<&str>> = wings.modifiers.iter().map(|m| m.group.as_deref()).collect();
    assert_eq!(groups, [Some("Wing sauce"), Some("Dips")]);
    assert_eq!(wings.total, usd(1299 + 129));
    // The staff tip of a pickup order is a tip, and part of the derived total.
    assert_eq!(order.totals.tip, usd(300));
    assert_eq!(order.totals.total, usd(3807 + 338 + 300));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn self_delivery_has_the_address_promotions_fees_and_tip() {
    let order = fixture_order("order-self-delivery-promos-fees-tip");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    assert_eq!(order.platform_brand.as_deref(), Some("STOREFRONT"));
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(address.lines, ["287 Kent Ave", "Apt 4C"]);
    assert_eq!(address.city.as_deref(), Some("Brooklyn, NY"));
    assert_eq!(address.postcode.as_deref(), Some("11249"));
    assert_eq!(address.country.as_deref(), Some("US"));
    assert_eq!(
        address.instructions.as_deref(),
        Some("Buzz 4C, or leave it with the doorman")
    );
    let coordinates = address.coordinates.expect("lat/lng strings parsed");
    assert_eq!(
        (coordinates.lat, coordinates.lng, coordinates.system),
        (40.7154912, -73.9660233, CoordSystem::Wgs84)
    );

    let totals = &order.totals;
    let discounts: Vec<(&str, i64, FundedBy)> = totals
        .discounts
        .iter()
        .map(|d| (d.label.as_str(), d.amount.minor, d.funded_by))
        .collect();
    assert_eq!(
        discounts,
        [
            ("XD-SALAD-HALF (Caesar Salad)", 450, FundedBy::Merchant),
            ("PIZZA5", 250, FundedBy::Merchant),
            ("PIZZA5", 250, FundedBy::Platform),
        ]
    );
    assert_eq!(totals.subtotal, usd(6296), "before discounts, as sent");
    assert_eq!(totals.tax, usd(474 + 35), "tax + taxes_on_fees");
    assert_eq!(totals.fees.delivery, usd(399));
    assert_eq!(totals.fees.other, usd(150), "extra_cart_order_fee");
    assert_eq!(totals.tip, usd(600));
    assert_eq!(totals.total, usd(6296 - 950 + 474 + 35 + 399 + 150 + 600));
    assert!(totals.total_is_derived);
    assert_eq!(order.check(), Ok(vec![]));
    assert_eq!(order.channel_data["cutlery"], json!(true));
}

#[test]
fn a_scheduled_order_is_scheduled_for_its_pickup_time() {
    let order = fixture_order("order-scheduled");
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 23, 15, 0)
        .single()
        .expect("time");
    assert_eq!(order.fulfillment.timing, Timing::Scheduled { at });
    assert_eq!(order.fulfillment.promised_at, Some(at));
    assert_eq!(order.totals.fees.delivery, usd(0));
    assert_eq!(order.totals.total, usd(2696 + 239));
    // `is_asap: false` without a time cannot be scheduled.
    let body = order_body(json!({"is_asap": false}));
    match parse(None, &body) {
        Err(ChannelError::Malformed(message)) => {
            assert!(message.contains("order.estimated_pickup_time"), "{message}")
        }
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn unicode_and_emoji_are_kept_and_the_consumer_id_stays_exact() {
    let order = fixture_order("order-unicode-emoji");
    assert_eq!(order.customer.name, "Zoë 🍕 Ø.");
    assert_eq!(
        order.notes.as_deref(),
        Some("Allergie aux noix 🥜 — 请不要加坚果，谢谢！")
    );
    assert_eq!(order.lines[0].name, "Margherita (Medium) 🍕");
    assert_eq!(
        order.lines[0].notes.as_deref(),
        Some("Extra crispy 🔥 — merci !")
    );
    assert_eq!(order.lines[0].modifiers[0].name, "Jalapeños 🌶️");
    assert_eq!(
        order.lines[0].modifiers[0].group.as_deref(),
        Some("Extra toppings ➕")
    );
    assert_eq!(order.platform_brand.as_deref(), Some("CAVIAR"));
    // 2^54 + 1: an f64 would have made it 2^54.
    assert_eq!(
        order.channel_data["consumer_id"],
        json!("18014398509481985")
    );
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_consumer_id_wider_than_64_bits_is_dropped_not_rounded() {
    // 2^65 + 1, written as digits: the JSON parser can only give a rounded f64 for it.
    let body = order_body(json!({"consumer": {"id": "__ID__", "first_name": "A"}}));
    let text = String::from_utf8(body)
        .expect("utf-8")
        .replace("\"__ID__\"", "36893488147419103233");
    assert!(text.contains(r#""id":36893488147419103233"#), "{text}");
    let order = order_of(parse(None, text.as_bytes()).expect("parse"));
    assert_eq!(order.channel_data.get("consumer_id"), None);
    assert_eq!(order.customer.name, "A");
}

#[test]
fn the_order_canceled_webhook_cancels() {
    let delivery = adapter()
        .parse(&fixture("order-canceled-webhook"))
        .expect("parse");
    assert_eq!(
        delivery,
        Delivery {
            dedupe_key: "cancel:0da8b530-7c4c-4925-8785-cd843b797d64".to_owned(),
            inbound: Inbound::Cancelled {
                external_order_id: "0da8b530-7c4c-4925-8785-cd843b797d64".to_owned(),
                reason: None,
            },
        }
    );
    let error = parse(Some("cancel"), br#"{"client_order_id": "x"}"#).expect_err("no id");
    assert!(
        matches!(&error, ChannelError::Malformed(m) if m.contains("external_order_id")),
        "{error}"
    );
}

#[test]
fn dasher_statuses_become_progress_or_are_ignored() {
    let delivery = adapter()
        .parse(&fixture("dasher-out-for-delivery"))
        .expect("parse");
    assert_eq!(
        delivery,
        Delivery {
            dedupe_key: "dasher:b6f1d8a3-2e47-4c90-8d5b-1a3c7e9f0b24:dasher_out_for_delivery"
                .to_owned(),
            inbound: Inbound::Progress {
                external_order_id: "b6f1d8a3-2e47-4c90-8d5b-1a3c7e9f0b24".to_owned(),
                action: StatusAction::PickedUp,
            },
        }
    );
    let dropoff = parse(
        Some("dasher"),
        br#"{"dasher_status": "dropoff", "external_order_id": "o-1"}"#,
    )
    .expect("parse");
    assert_eq!(
        dropoff.inbound,
        Inbound::Progress {
            external_order_id: "o-1".to_owned(),
            action: StatusAction::Delivered,
        }
    );
    let arriving = adapter()
        .parse(&fixture("dasher-arriving-at-store"))
        .expect("parse");
    assert_eq!(
        arriving.inbound,
        Inbound::Ignored {
            event: "dasher_status:arriving_at_store".to_owned()
        }
    );
    assert_ne!(arriving.dedupe_key, delivery.dedupe_key);
}

// ---------------------------------------------------------------------------------------
// Money and currency
// ---------------------------------------------------------------------------------------

#[test]
fn the_currency_comes_from_the_options_with_store_overrides() {
    let mut config = DoorDashConfig::default();
    config
        .store_currencies
        .insert("xd-ldn-001".to_owned(), "GBP".to_owned());
    config
        .store_currencies
        .insert("xd-tyo-001".to_owned(), "JPY".to_owned());
    let adapter = adapter_with(config);
    assert_eq!(adapter.currency_for("xd-nyc-001").code(), "USD");
    assert_eq!(adapter.currency_for("xd-ldn-001").code(), "GBP");
    let london = order_of(
        adapter
            .parse(&request(
                None,
                &order_body(json!({"store": {"merchant_supplied_id": "xd-ldn-001"}})),
                None,
            ))
            .expect("parse"),
    );
    assert_eq!(london.totals.currency.code(), "GBP");
    assert_eq!(london.lines[0].unit_price.currency.code(), "GBP");
    assert_eq!(london.lines[0].unit_price.minor, 1899);
    // A zero-exponent currency: DoorDash's integer amounts are its minor units as they are.
    let tokyo = order_of(
        adapter
            .parse(&request(
                None,
                &order_body(
                    json!({"store": {"merchant_supplied_id": "xd-tyo-001"}, "tip_amount": 300}),
                ),
                None,
            ))
            .expect("parse"),
    );
    assert_eq!(tokyo.totals.currency.code(), "JPY");
    assert_eq!(tokyo.totals.tip.minor, 300);
    let eur = adapter_with(DoorDashConfig {
        currency: "eur".to_owned(),
        ..DoorDashConfig::default()
    });
    assert_eq!(eur.currency_for("anything").code(), "EUR");
}

#[test]
fn a_fractional_cent_fails_the_order_and_names_the_field() {
    let body = order_body(json!({"categories": [{"items": [
        {"name": "A", "merchant_supplied_id": "PZ-MARG-L", "price": 1899.5, "quantity": 1}]}]}));
    match parse(None, &body) {
        Err(ChannelError::Order(OrderError::MoneyAt { field, source })) => {
            assert_eq!(field, "order.categories[0].items[0].price");
            assert!(
                matches!(source, MoneyError::FractionalMinorUnit { .. }),
                "{source:?}"
            );
        }
        other => panic!("expected a money error, got {other:?}"),
    }
    let body = order_body(json!({"tip_amount": 12.5}));
    assert!(matches!(
        parse(None, &body),
        Err(ChannelError::Order(OrderError::MoneyAt { field, .. })) if field == "order.tip_amount"
    ));
    // A whole number written with a fraction, and a numeric string, are whole cents.
    let order = order_of(
        parse(
            None,
            &order_body(json!({"tip_amount": 350.0, "tax": "164"})),
        )
        .expect("parse"),
    );
    assert_eq!(order.totals.tip, usd(350));
    assert_eq!(order.totals.tax, usd(164));
    let body = order_body(json!({"delivery_fee": "2.99"}));
    assert!(matches!(
        parse(None, &body),
        Err(ChannelError::Order(OrderError::MoneyAt { .. }))
    ));
    let body = order_body(json!({"subtotal": 9223372036854775808_u64}));
    assert!(matches!(
        parse(None, &body),
        Err(ChannelError::Order(OrderError::MoneyAt {
            source: MoneyError::Overflow { .. },
            ..
        }))
    ));
}

#[test]
fn totals_that_do_not_add_up_are_flagged_never_fixed() {
    // The subtotal DoorDash sent is kept even when the lines say otherwise.
    let order = order_of(parse(None, &order_body(json!({"subtotal": 2000}))).expect("parse"));
    assert_eq!(order.totals.subtotal, usd(2000));
    let flags = order.check().expect("kept");
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].code(), "subtotal_mismatch");
}

#[test]
fn options_default_to_one_free_unit_and_zero_price_lines_are_kept() {
    let body = order_body(json!({"subtotal": 0, "categories": [{"items": [
        {"name": "Water", "merchant_supplied_id": "DR-WATR-500", "price": 0, "quantity": 1,
         "extras": [{"name": "Ice", "options": [{"name": "No ice"}]}]}]}]}));
    let order = order_of(parse(None, &body).expect("parse"));
    assert_eq!(order.lines.len(), 1);
    assert_eq!(order.lines[0].total, usd(0));
    assert_eq!(order.lines[0].modifiers[0].quantity, 1);
    assert_eq!(order.lines[0].modifiers[0].unit_price, usd(0));
    assert_eq!(
        order.lines[0].channel_item_id, "DR-WATR-500",
        "no line_item_id"
    );
}

#[test]
fn impossible_quantities_reach_the_order_check() {
    let body = order_body(json!({"categories": [{"items": [
        {"name": "A", "merchant_supplied_id": "PZ-MARG-L", "price": 1899, "quantity": 0}]}]}));
    let order = order_of(parse(None, &body).expect("parse"));
    assert!(matches!(
        order.check(),
        Err(OrderError::BadQuantity { quantity: 0, .. })
    ));
    let body = order_body(json!({"categories": []}));
    assert_eq!(
        order_of(parse(None, &body).expect("parse")).check(),
        Err(OrderError::NoLines)
    );
}

// ---------------------------------------------------------------------------------------
// Envelopes and malformed input
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_fields_are_ignored_and_a_repeated_key_keeps_its_last_value() {
    // DoorDash's own sample order repeats `estimated_pickup_time`.
    let body = br#"{"event": {"type": "OrderCreate", "status": "NEW", "version": 3},
        "order": {"id": "o-dup", "subtotal": 100, "is_pickup": true, "brand_new_field": {"x": [1]},
          "estimated_pickup_time": "2026-11-20T12:00:00Z",
          "store": {"merchant_supplied_id": "xd-nyc-001", "future": 1},
          "categories": [{"items": [{"name": "A", "price": 100, "quantity": 1, "wider_int": 123456789012345678901234}]}],
          "estimated_pickup_time": "2026-11-20T12:40:00Z"}}"#;
    let order = order_of(parse(None, body).expect("parse"));
    assert_eq!(
        order.fulfillment.promised_at,
        Some(
            Utc.with_ymd_and_hms(2026, 11, 20, 12, 40, 0)
                .single()
                .expect("time")
        )
    );
}

#[test]
fn fulfilment_falls_back_on_is_pickup_for_unknown_types() {
    let order = order_of(
        parse(
            None,
            &order_body(json!({"fulfillment_type": "drone_delivery", "is_pickup": false})),
        )
        .expect("parse"),
    );
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    let order = order_of(
        parse(
            None,
            &order_body(json!({"fulfillment_type": "mx_delivery", "is_pickup": null,
                "delivery_address": {"street": "1 Main St", "lat": "", "lng": ""}})),
        )
        .expect("parse"),
    );
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.expect("address");
    assert_eq!(address.coordinates, None, "blank lat/lng: no coordinates");
    // A pickup order keeps no address even if one is sent.
    let order = order_of(
        parse(
            None,
            &order_body(json!({"fulfillment_type": "pickup", "delivery_address": {"street": "x"}})),
        )
        .expect("parse"),
    );
    assert_eq!(order.fulfillment.address, None);
    match parse(None, &order_body(json!({"is_pickup": null}))) {
        Err(ChannelError::Malformed(message)) => {
            assert!(message.contains("order.fulfillment_type"), "{message}")
        }
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn malformed_bodies_name_what_is_wrong() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "not JSON"),
        (br#"{"order": {}}"#.to_vec(), "event"),
        (
            br#"{"event": {"type": "OrderCreate"}}"#.to_vec(),
            "`OrderCreate` event has no `order`",
        ),
        (
            order_body(json!({"store": {"provider_type": "x"}})),
            "order.store",
        ),
        (
            order_body(
                json!({"categories": [{"items": [{"name": "A", "price": 1, "quantity": "2"}]}]}),
            ),
            "order.categories[0].items[0].quantity",
        ),
        (
            order_body(
                json!({"categories": [{"items": [{"name": "A", "price": 1, "quantity": 1,
                "extras": [{"options": [{"name": "B", "price": true}]}]}]}]}),
            ),
            "order.categories[0].items[0].extras[0].options[0].price",
        ),
        (
            order_body(json!({"fulfillment_type": "mx_fleet_delivery",
                "delivery_address": {"lat": "north", "lng": "-73.9"}})),
            "order.delivery_address.lat",
        ),
        (
            order_body(json!({"fulfillment_type": "mx_fleet_delivery",
                "delivery_address": {"lat": "40.7"}})),
            "only one of `lat` and `lng`",
        ),
        (
            order_body(json!({"estimated_pickup_time": "tomorrow"})),
            "order.estimated_pickup_time",
        ),
        (order_body(json!({"id": "  "})), "order.id"),
    ];
    for (body, expected) in cases {
        match parse(None, &body) {
            Err(ChannelError::Malformed(message)) => assert!(
                message.contains(expected),
                "`{expected}` not in `{message}`"
            ),
            other => panic!("expected malformed for `{expected}`, got {other:?}"),
        }
    }
    // Nothing on the wire is trusted to be a valid path: an unknown `{event}` is refused.
    assert!(matches!(
        parse(Some("menus"), b"{}"),
        Err(ChannelError::Unsupported(_))
    ));
}

#[test]
fn other_order_events_cancel_or_are_ignored() {
    let cancel =
        br#"{"event": {"type": "OrderCancel", "status": "CANCELLED"}, "order": {"id": "o-7"}}"#;
    assert_eq!(
        parse(None, cancel).expect("parse"),
        Delivery {
            dedupe_key: "cancel:o-7".to_owned(),
            inbound: Inbound::Cancelled {
                external_order_id: "o-7".to_owned(),
                reason: None
            }
        }
    );
    let adjust = br#"{"event": {"type": "OrderAdjust"}, "order": {"id": "o-7", "items": [1]}}"#;
    let other_adjust =
        br#"{"event": {"type": "OrderAdjust"}, "order": {"id": "o-7", "items": [2]}}"#;
    let first = parse(None, adjust).expect("parse");
    assert_eq!(
        first.inbound,
        Inbound::Ignored {
            event: "OrderAdjust".to_owned()
        }
    );
    assert!(
        first.dedupe_key.starts_with("OrderAdjust:o-7:"),
        "{}",
        first.dedupe_key
    );
    assert_eq!(
        parse(None, adjust).expect("parse").dedupe_key,
        first.dedupe_key
    );
    assert_ne!(
        parse(None, other_adjust).expect("parse").dedupe_key,
        first.dedupe_key,
        "a different adjustment is not a replay"
    );
    // `/webhooks/doordash/orders` is the Orders endpoint too.
    assert!(matches!(
        parse(Some("orders"), &order_body(json!({})))
            .expect("parse")
            .inbound,
        Inbound::Order(_)
    ));
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

#[test]
fn orders_get_202_events_200_and_refusals_doordash_errors() {
    let adapter = adapter();
    let request = fixture("order-dasher-delivery");
    let delivery = adapter.parse(&request).expect("parse");
    for duplicate in [false, true] {
        let reply = adapter.reply(
            &request,
            Outcome::Accepted {
                delivery: &delivery,
                order_id: Some(OrderId::new()),
                duplicate,
            },
        );
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "asynchronous confirmation"
        );
        assert!(reply.body.is_empty());
    }
    for name in [
        "order-canceled-webhook",
        "dasher-out-for-delivery",
        "dasher-arriving-at-store",
    ] {
        let request = fixture(name);
        let delivery = adapter.parse(&request).expect("parse");
        let reply = adapter.reply(
            &request,
            Outcome::Accepted {
                delivery: &delivery,
                order_id: None,
                duplicate: false,
            },
        );
        assert_eq!(reply.status, StatusCode::OK, "{name}");
    }
    let error = ChannelError::Unauthorized("missing Authorization header".to_owned());
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(
        body,
        json!({"code": "unauthorized", "message": "unauthorized: missing Authorization header"})
    );
    let error = ChannelError::Malformed("order.id is empty".to_owned());
    assert_eq!(
        adapter.reply(&request, Outcome::Refused(&error)).status,
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------------------------------
// Push planning
// ---------------------------------------------------------------------------------------

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 5, 0)
        .single()
        .expect("time")
}

fn stored(name: &str, status: Status) -> Order {
    Order {
        id: OrderId::parse("019a8e2b-7c41-7d3e-9f20-4b6a1c8d5e37").expect("id"),
        received_at: received_at(),
        updated_at: received_at(),
        status,
        store_id: None,
        flags: vec![],
        order: fixture_order(name),
    }
}

fn change(action: StatusAction, from: Status) -> StatusChange {
    StatusChange {
        action,
        from,
        at: now(),
    }
}

fn call(plan: Result<Plan, ChannelError>) -> (CallKind, String, serde_json::Value) {
    match plan {
        Ok(Plan::Call { kind, path, body }) => (kind, path, body),
        other => panic!("expected a call, got {other:?}"),
    }
}

const ORDER_PATH: &str = "/marketplace/api/v1/orders/7d3e9a41-2c5b-4f86-9e0d-1a8b6c4f2e73";

#[test]
fn accept_confirms_with_our_order_id() {
    let order = stored("order-dasher-delivery", Status::Received);
    let accept = change(StatusAction::Accept { prep_minutes: 12 }, Status::Received);
    let (kind, path, body) = call(plan(&order, &accept, false));
    assert_eq!(kind, CallKind::Confirm);
    assert_eq!(path, ORDER_PATH);
    assert_eq!(
        body,
        json!({"merchant_supplied_id": "019a8e2b-7c41-7d3e-9f20-4b6a1c8d5e37", "order_status": "success"})
    );
    // With `send_prep_time`: the ready time, UTC, counted from the accept.
    let (_, _, body) = call(plan(&order, &accept, true));
    assert_eq!(body["prep_time"], json!("2026-11-20T12:17:00.000Z"));
}

#[test]
fn reject_and_early_cancel_fail_the_confirmation_with_a_code() {
    let order = stored("order-dasher-delivery", Status::Received);
    let (kind, path, body) = call(plan(
        &order,
        &change(
            StatusAction::Reject {
                reason: "Store closed for a private event".to_owned(),
            },
            Status::Received,
        ),
        false,
    ));
    assert_eq!((kind, path.as_str()), (CallKind::Confirm, ORDER_PATH));
    assert_eq!(
        body,
        json!({
            "merchant_supplied_id": "019a8e2b-7c41-7d3e-9f20-4b6a1c8d5e37",
            "order_status": "fail",
            "failure_reason": "Store closed for a private event",
            "errors": [{"code": "STORE_CLOSED", "message": "Store closed for a private event"}],
        })
    );
    for action in [
        StatusAction::Cancel {
            reason: "out of dough".to_owned(),
        },
        StatusAction::Fail {
            reason: "".to_owned(),
        },
    ] {
        let (kind, _, body) = call(plan(
            &order,
            &change(action.clone(), Status::Received),
            false,
        ));
        assert_eq!(kind, CallKind::Confirm, "{action:?} before acceptance");
        assert_eq!(body["order_status"], "fail");
    }
    let (_, _, body) = call(plan(
        &order,
        &change(
            StatusAction::Fail {
                reason: "  ".to_owned(),
            },
            Status::Received,
        ),
        false,
    ));
    assert_eq!(body["failure_reason"], "The store cannot take the order");
    assert_eq!(body["errors"][0]["code"], "OTHER");
}

#[test]
fn ready_signals_and_late_cancels_use_their_endpoints() {
    let order = stored("order-dasher-delivery", Status::Accepted);
    let (kind, path, body) = call(plan(
        &order,
        &change(StatusAction::Ready, Status::Preparing),
        false,
    ));
    assert_eq!(kind, CallKind::Ready);
    assert_eq!(path, format!("{ORDER_PATH}/events/order_ready_for_pickup"));
    assert_eq!(
        body,
        json!({"merchant_supplied_id": "019a8e2b-7c41-7d3e-9f20-4b6a1c8d5e37"})
    );
    for (action, from) in [
        (
            StatusAction::Cancel {
                reason: "Kitchen is too busy".to_owned(),
            },
            Status::Accepted,
        ),
        (
            StatusAction::Fail {
                reason: "Kitchen is too busy".to_owned(),
            },
            Status::Ready,
        ),
    ] {
        let (kind, path, body) = call(plan(&order, &change(action, from), false));
        assert_eq!(kind, CallKind::Cancellation);
        assert_eq!(path, format!("{ORDER_PATH}/cancellation"));
        assert_eq!(
            body,
            json!({"cancel_reason": "KITCHEN_BUSY", "cancel_details": "Kitchen is too busy"})
        );
    }
}

#[test]
fn actions_doordash_has_no_call_for_are_not_applicable() {
    let dasher = stored("order-dasher-delivery", Status::Ready);
    let own = stored("order-self-delivery-promos-fees-tip", Status::Ready);
    for action in [
        StatusAction::Preparing,
        StatusAction::PickedUp,
        StatusAction::Delivered,
        StatusAction::Complete,
    ] {
        for order in [&dasher, &own] {
            match plan(order, &change(action.clone(), Status::Ready), false) {
                Ok(Plan::NotApplicable(why)) => {
                    assert!(why.contains(action.target().as_str()), "{why}")
                }
                other => panic!("{action:?}: expected not applicable, got {other:?}"),
            }
        }
    }
    match plan(&own, &change(StatusAction::PickedUp, Status::Ready), false) {
        Ok(Plan::NotApplicable(why)) => assert!(why.contains("store delivers"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_push_refuses_an_unsafe_order_id() {
    let mut order = stored("order-dasher-delivery", Status::Received);
    order.order.external_order_id = "../../stores/1".to_owned();
    assert!(matches!(
        plan(
            &order,
            &change(StatusAction::Accept { prep_minutes: 5 }, Status::Received),
            false
        ),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn reason_codes_follow_keywords_and_default_to_other() {
    for (reason, code) in [
        ("Pepperoni is out of stock", "ITEM_OUT_OF_STOCK"),
        ("out of dough", "ITEM_OUT_OF_STOCK"),
        ("Outside opening hours", "STORE_HOURS_ISSUE"),
        ("We are closed", "STORE_CLOSED"),
        ("POS offline", "POS_OFFLINE"),
        ("Too busy right now", "CAPACITY_THROTTLING"),
        (
            "store NYC-001 cannot take the order: paused until 2026-11-20T13:00:00Z",
            "ORDER_ONLINE_DISABLED",
        ),
        (
            "unknown store: doordash store id xd-x is not mapped to any store",
            "INVALID_ORDER",
        ),
        ("not accepted in time: timed out", "TIME_OUT"),
        ("Network connectivity lost", "CONNECTIVITY_ISSUE"),
        ("Internal error in the kitchen display", "INTERNAL_ERROR"),
        ("customer asked", "OTHER"),
    ] {
        assert_eq!(failure_code(reason), code, "{reason}");
        assert!(crate::simulator::FAILURE_CODES.contains(&code));
    }
    for (reason, code) in [
        ("Wings sold out", "ITEM_OUT_OF_STOCK"),
        ("Closing early tonight", "STORE_CLOSED"),
        ("Kitchen overloaded", "KITCHEN_BUSY"),
        ("Customer called to cancel", "OTHER"),
    ] {
        assert_eq!(cancel_code(reason), code, "{reason}");
        assert!(crate::simulator::CANCEL_REASONS.contains(&code));
    }
}

#[test]
fn only_an_already_done_answer_counts_as_delivered() {
    assert!(already_done(
        CallKind::Confirm,
        r#"{"code":"validation_error","message":"Order has already been processed"}"#
    ));
    assert!(already_done(
        CallKind::Cancellation,
        "Order has already been cancelled"
    ));
    assert!(!already_done(
        CallKind::Confirm,
        "Order has already been processed or order has expired"
    ));
    assert!(!already_done(CallKind::Confirm, "Order has expired"));
    assert!(!already_done(CallKind::Ready, "already"));
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

fn settings(options: serde_json::Value, secrets: SecretSource) -> ChannelSettings {
    ChannelSettings {
        channel: CHANNEL_ID.to_owned(),
        options,
        secrets,
        dev_secrets: Factory.dev_secrets(),
        http: reqwest::Client::new(),
    }
}

fn dev() -> SecretSource {
    SecretSource::new(BTreeMap::new(), true)
}

fn build(options: serde_json::Value) -> Result<(), ConfigError> {
    Factory.build(&settings(options, dev())).map(|_| ())
}

#[test]
fn the_factory_builds_from_defaults_and_checks_its_options() {
    assert_eq!(Factory.id(), "doordash");
    assert_eq!(
        Factory.dev_secrets(),
        &[
            ("webhook_authorization", DEV_WEBHOOK_AUTHORIZATION),
            ("signing_secret", DEV_SIGNING_SECRET)
        ]
    );
    let channel = Factory
        .build(&settings(serde_json::Value::Null, dev()))
        .expect("defaults");
    assert_eq!(channel.id().as_str(), "doordash");
    assert_eq!(
        channel.push_rate(),
        RateLimit {
            per_second: 10,
            burst: 20
        }
    );
    assert!(channel.verify(&fixture("order-dasher-delivery")).is_ok());
    assert_eq!(
        build(json!({
            "base_url": "http://127.0.0.1:9/",
            "developer_id": "d",
            "key_id": "k",
            "currency": "USD",
            "store_currencies": {"xd-ldn-001": "GBP"},
            "jwt_ttl_secs": 1800,
            "send_prep_time": true,
            "user_agent": "Crossdock/1.0",
            "timeout_secs": 3,
            "calls_per_second": 18
        })),
        Ok(())
    );
    for (options, mentions) in [
        (json!({"base_uri": "x"}), "base_uri"),
        (json!({"base_url": "ftp://x"}), "http(s)"),
        (json!({"currency": "dollars"}), "currency"),
        (
            json!({"store_currencies": {"xd-ldn-001": "£"}}),
            "xd-ldn-001",
        ),
        (json!({"jwt_ttl_secs": 0}), "jwt_ttl_secs"),
        (json!({"jwt_ttl_secs": 1801}), "jwt_ttl_secs"),
        (json!({"timeout_secs": 0}), "timeout_secs"),
        (json!({"calls_per_second": 0}), "calls_per_second"),
        (json!({"key_id": " "}), "key_id"),
    ] {
        let error = build(options.clone()).expect_err("refused");
        assert!(error.to_string().contains(mentions), "{options}: {error}");
    }
    let config = DoorDashConfig::default();
    assert_eq!(config.calls_per_second, 10);
    assert_eq!(config.base_url, "https://openapi.doordash.com");
    assert_eq!(config.currency, "USD");
    assert!(!config.send_prep_time);
}

#[test]
fn production_needs_real_secrets() {
    let production = SecretSource::new(BTreeMap::new(), false);
    let error = Factory
        .build(&settings(serde_json::Value::Null, production))
        .map(|_| ())
        .expect_err("no secrets in production");
    assert_eq!(
        error,
        ConfigError::MissingSecret {
            channel: "doordash".to_owned(),
            name: "webhook_authorization".to_owned(),
            env: "CROSSDOCK_SECRET_DOORDASH_WEBHOOK_AUTHORIZATION".to_owned(),
        }
    );
    let only_token = SecretSource::new(
        BTreeMap::from([(
            "doordash".to_owned(),
            BTreeMap::from([("webhook_authorization".to_owned(), "Basic abc".to_owned())]),
        )]),
        false,
    );
    let error = Factory
        .build(&settings(serde_json::Value::Null, only_token))
        .map(|_| ())
        .expect_err("no signing secret");
    assert!(
        error
            .to_string()
            .contains("CROSSDOCK_SECRET_DOORDASH_SIGNING_SECRET"),
        "{error}"
    );
    let both = |signing: &str| {
        SecretSource::new(
            BTreeMap::from([(
                "doordash".to_owned(),
                BTreeMap::from([
                    ("webhook_authorization".to_owned(), "Basic abc".to_owned()),
                    ("signing_secret".to_owned(), signing.to_owned()),
                ]),
            )]),
            false,
        )
    };
    let channel = Factory
        .build(&settings(serde_json::Value::Null, both("c2VjcmV0LWtleQ")))
        .expect("production secrets");
    assert!(
        channel
            .verify(&request(None, b"{}", Some("Basic abc")))
            .is_ok()
    );
    assert!(
        channel
            .verify(&request(None, b"{}", Some(DEV_WEBHOOK_AUTHORIZATION)))
            .is_err(),
        "the development token is not accepted in production"
    );
    let error = Factory
        .build(&settings(serde_json::Value::Null, both("not base64 !")))
        .map(|_| ())
        .expect_err("bad signing secret");
    assert!(error.to_string().contains("signing_secret"), "{error}");
}
