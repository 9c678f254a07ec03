//! Unit tests of the adapter: the signature (JET's test vector), parsing of each webhook
//! (and its errors) including JET's documented examples, the answers, push planning,
//! pushes against the simulator, configuration. The fixture files are written and checked
//! by `fixtures` (below); the conformance kit checks what they normalize to
//! (`tests/conformance.rs`).

mod fixtures;

use std::time::Duration;

use axum::body::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use crossdock_channel::sim::{Fault, SampleFulfillment, SampleItem, SampleOrder, next_heard};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, HeaderMap, HeaderValue, Inbound,
    InboundRequest, Method, Outcome, PushOutcome, SecretSource,
};
use crossdock_model::{
    DeliveredBy, FulfillmentKind, FundedBy, Line, NewOrder, Order, OrderId, Payment, Status,
    StatusAction, StatusChange, Timing,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;
use crate::simulator::{JustEatSim, OrderIds, OrderStyle, SimConfig};

fn adapter_at(base_url: &str, api_key: &str) -> JustEat {
    JustEat::new(
        JustEatConfig {
            base_url: base_url.to_owned(),
            timeout_secs: 5,
            ..JustEatConfig::default()
        },
        SecretString::from(DEV_WEBHOOK_SECRET),
        SecretString::from(api_key),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn adapter() -> JustEat {
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

/// A collection: two pizzas with a nested option, and a drink; a discount and a tip.
fn sample() -> SampleOrder {
    SampleOrder {
        store_ref: Some("store-42".to_owned()),
        currency: "GBP".to_owned(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "Ada Lovelace".to_owned(),
        customer_phone: Some("+44 20 7946 0187".to_owned()),
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

fn delivery(sample: SampleOrder) -> SampleOrder {
    SampleOrder {
        fulfillment: SampleFulfillment::Delivery {
            lat: 51.5246,
            lng: -0.0994,
            address_lines: vec!["12 Example Street".to_owned(), "Flat 4B".to_owned()],
            city: "London".to_owned(),
            postcode: "EC1A 1BB".to_owned(),
            country: "GB".to_owned(),
        },
        delivery_fee_minor: 299,
        ..sample
    }
}

/// A request as the hub receives it at `/webhooks/just_eat[/{event}]`, with `hash` in
/// `X-JET-Connect-Hash`.
fn request_at(event: Option<&str>, body: &[u8], hash: Option<&str>) -> InboundRequest {
    let mut headers = HeaderMap::new();
    if let Some(hash) = hash {
        headers.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(hash).expect("header"),
        );
    }
    InboundRequest {
        method: Method::POST,
        event: event.map(str::to_owned),
        url: format!(
            "https://hub.crossdock.example/webhooks/{CHANNEL_ID}{}",
            event.map(|e| format!("/{e}")).unwrap_or_default()
        ),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: received_at(),
    }
}

fn request(body: &[u8], hash: Option<&str>) -> InboundRequest {
    request_at(None, body, hash)
}

/// `body` signed as JET signs it.
fn signed_at(event: Option<&str>, body: &[u8]) -> InboundRequest {
    let hash = simulator::hash_header(DEV_WEBHOOK_SECRET, body, 1_673_428_038_618);
    request_at(event, body, Some(&hash))
}

fn signed(body: &[u8]) -> InboundRequest {
    signed_at(None, body)
}

fn ids() -> OrderIds {
    OrderIds {
        order_id: "38bbeb45-f520-4438-a44f-0fcdbb29e166".to_owned(),
        reference: "22721763".to_owned(),
    }
}

fn webhook_with(sample: &SampleOrder, style: OrderStyle) -> Vec<u8> {
    serde_json::to_vec(&simulator::order(sample, &ids(), received_at(), style)).expect("JSON")
}

fn webhook(sample: &SampleOrder) -> Vec<u8> {
    webhook_with(sample, OrderStyle::default())
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

fn malformed_at(request: &InboundRequest, path: &str) {
    match parse(request) {
        Err(ChannelError::Malformed(message)) => {
            assert!(message.starts_with(&format!("{path}: ")), "{message}");
        }
        other => panic!("expected malformed at {path}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------

#[test]
fn the_signature_is_jets_documented_test_vector() {
    // "Given the following secret of `key` and a body of `example`, the following hash
    // will be generated `FGwot7AqiDIthEv6TippJm35DaRpRac5NSLd/wSp9go=`."
    assert_eq!(
        simulator::sign("key", b"example"),
        "FGwot7AqiDIthEv6TippJm35DaRpRac5NSLd/wSp9go="
    );
    let adapter = JustEat::new(
        JustEatConfig::default(),
        SecretString::from("key"),
        SecretString::from(DEV_API_KEY),
        reqwest::Client::new(),
    )
    .expect("adapter");
    let header =
        "HMAC-SHA256 t=1673428038618,signature=FGwot7AqiDIthEv6TippJm35DaRpRac5NSLd/wSp9go=";
    assert_eq!(adapter.verify(&request(b"example", Some(header))), Ok(()));
    assert!(adapter.verify(&request(b"example!", Some(header))).is_err());
}

#[test]
fn the_timestamp_is_not_signed_and_parameters_may_come_in_any_order() {
    let body = webhook(&sample());
    let signature = simulator::sign(DEV_WEBHOOK_SECRET, &body);
    for header in [
        format!("HMAC-SHA256 t=1,signature={signature}"),
        format!("HMAC-SHA256 t=99999999999999,signature={signature}"),
        format!("HMAC-SHA256 signature={signature},t=5"),
        format!("HMAC-SHA256 t=5, signature={signature}"),
    ] {
        assert_eq!(
            adapter().verify(&request(&body, Some(&header))),
            Ok(()),
            "{header}"
        );
    }
}

#[test]
fn a_tampered_body_or_signature_is_refused() {
    let body = webhook(&sample());
    let header = simulator::hash_header(DEV_WEBHOOK_SECRET, &body, 1);
    let mut tampered = body.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    assert!(matches!(
        adapter().verify(&request(&tampered, Some(&header))),
        Err(ChannelError::Unauthorized(_))
    ));
    let other_secret = simulator::hash_header("another secret", &body, 1);
    assert!(matches!(
        adapter().verify(&request(&body, Some(&other_secret))),
        Err(ChannelError::Unauthorized(_))
    ));
    // Hex of the right MAC is not JET's encoding.
    let hex = format!(
        "HMAC-SHA256 t=1,signature={}",
        crossdock_channel::signature::hmac_sha256_hex(DEV_WEBHOOK_SECRET.as_bytes(), &[&body])
    );
    assert!(adapter().verify(&request(&body, Some(&hex))).is_err());
}

#[test]
fn a_missing_or_unreadable_signature_is_refused_naming_the_header() {
    let body = webhook(&sample());
    let error = adapter()
        .verify(&request(&body, None))
        .expect_err("unsigned");
    assert_eq!(
        error,
        ChannelError::Unauthorized(format!("missing header {SIGNATURE_HEADER}"))
    );
    assert_eq!(error.http_status().as_u16(), 401);
    for (header, expected) in [
        ("HMAC-SHA256 t=1", "has no `signature=` parameter"),
        (
            "HMAC-SHA256 t=1,signature=",
            "has no `signature=` parameter",
        ),
        ("HMAC-SHA256 t=1,signature=not*base64", "is not base64"),
    ] {
        match adapter().verify(&request(&body, Some(header))) {
            Err(ChannelError::Unauthorized(message)) => {
                assert!(message.contains(expected), "{message}");
                assert!(!message.contains(DEV_WEBHOOK_SECRET));
            }
            other => panic!("{header}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Receive Order
// ---------------------------------------------------------------------------------------

#[test]
fn a_collection_becomes_the_unified_order() {
    let delivery = parse(&signed(&webhook(&sample()))).expect("parses");
    assert_eq!(delivery.dedupe_key, ids().order_id, "JET has no event id");
    let order = order_of(delivery);
    assert_eq!(order.channel.as_str(), CHANNEL_ID);
    assert_eq!(order.external_order_id, ids().order_id);
    assert_eq!(order.display_code.as_deref(), Some("22721763"));
    assert_eq!(order.channel_store_ref.as_deref(), Some("store-42"));
    assert_eq!(order.platform_brand.as_deref(), Some("Just Eat"));
    assert_eq!(order.placed_at, received_at());
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.delivered_by, None);
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    assert_eq!(
        order.fulfillment.promised_at,
        Some(received_at() + chrono::TimeDelta::minutes(20)),
        "collect_at"
    );
    assert_eq!(
        order.fulfillment.accept_by,
        Some(received_at() + ACCEPT_WINDOW)
    );
    assert_eq!(order.customer.name, "Ada Lovelace");
    assert_eq!(order.customer.phone.as_deref(), Some("+44 20 7946 0187"));
    assert_eq!(order.customer.phone_pin, None, "an empty masking code");
    assert_eq!(order.notes.as_deref(), Some("ring the bell"));
    // Two pizzas are two items at JET: two lines, in payload order.
    assert_eq!(order.lines.len(), 3);
    let pizza = &order.lines[0];
    assert_eq!(pizza.channel_item_id, "items[0]");
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!((pizza.quantity, pizza.unit_price.minor), (1, 1899));
    assert_eq!(pizza.total.minor, 1899 + 100);
    assert_eq!(pizza.modifiers[0].modifiers[0].name, "Pepperoni (half)");
    assert_eq!(
        order.lines[1],
        Line {
            channel_item_id: "items[1]".to_owned(),
            ..pizza.clone()
        }
    );
    assert_eq!(order.lines[2].name, "Cola (500 ml)");
    assert_eq!(order.totals.currency.code(), "GBP");
    assert_eq!(order.totals.subtotal.minor, 3998 + 299);
    assert_eq!(order.totals.discounts[0].amount.minor, 300);
    assert_eq!(order.totals.discounts[0].funded_by, FundedBy::Unknown);
    assert_eq!(order.totals.tip.minor, 200);
    assert_eq!(order.totals.total.minor, 3998 + 299 - 300 + 200);
    assert_eq!(order.payment, Payment::Prepaid);
    assert_eq!(order.check(), Ok(vec![]), "the parts add up");
}

#[test]
fn a_partner_delivery_has_no_address_and_no_masked_customer() {
    let order = order_of(parse(&signed(&webhook(&delivery(sample())))).expect("parses"));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(order.customer.name, "", "JET masks it");
    assert_eq!(order.customer.email, None, "customer@email.hidden");
    assert_eq!(order.totals.fees.delivery.minor, 299);
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_cash_delivery_by_the_restaurant_keeps_its_address_and_the_cash_to_collect() {
    let style = OrderStyle {
        merchant_delivery: true,
        cash: true,
        service_charge_minor: 50,
    };
    let order =
        order_of(parse(&signed(&webhook_with(&delivery(sample()), style))).expect("parses"));
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(address.lines, ["12 Example Street", "Flat 4B"]);
    assert_eq!(address.city.as_deref(), Some("London"));
    assert_eq!(address.postcode.as_deref(), Some("EC1A 1BB"));
    assert_eq!(address.country, None, "JET sends none");
    assert!(address.coordinates.is_some());
    assert_eq!(order.customer.name, "Ada Lovelace");
    assert_eq!(order.totals.fees.service.minor, 50);
    assert_eq!(order.payment, Payment::CashOnDelivery);
    assert_eq!(order.totals.cash_due, Some(order.totals.total));
    assert_eq!(
        order.fulfillment.promised_at,
        Some(received_at() + chrono::TimeDelta::minutes(45)),
        "deliver_at"
    );
    assert_eq!(order.check(), Ok(vec![]));
}

/// JET Connect's Receive Order example "Delivery by partner", as published (tax apart,
/// a free item in `promotions`).
const DOC_DELIVERY_BY_PARTNER: &str = r#"{
  "id": "38bbeb45-f520-4438-a44f-0fcdbb29e166",
  "third_party_order_reference": "22721763",
  "type": "delivery-by-delivery-partner",
  "posLocationId": "AKZ12",
  "location": { "id": 1296, "timezone": "Europe/London" },
  "items": [
    {
      "name": "Cheeseburger", "description": "", "plu": "M2", "price": 1700, "notes": "",
      "substitution": { "preference": "bestmatch" },
      "children": [
        { "name": "Extra Sauce", "description": "", "plu": "R3", "price": 100, "unitDepositAmount": 10 }
      ]
    }
  ],
  "created_at": "1606780145",
  "channel": { "name": "Just Eat", "id": 32 },
  "collect_at": "1606780980",
  "collection_notes": "Driver will be wearing a blue shirt",
  "kitchen_notes": "",
  "payment_method": "CARD",
  "tender_type": "Flyt",
  "payment": {
    "items_in_cart": { "inc_tax": 2160, "tax": 360 },
    "adjustments": [],
    "final": { "inc_tax": 2160, "tax": 360 },
    "deposit": 10
  },
  "driver": { "first_name": "John", "last_name": "Smith", "phone_number": "555-111-3344" },
  "delivery": {
    "first_name": "****************", "last_name": "****************",
    "phone_number": "55555 113 000", "phone_masking_code": "",
    "line_one": "**********************", "line_two": "", "city": "*****", "postcode": "*****",
    "email": "customer@email.hidden",
    "coordinates": { "latitude": 49.898498728223224, "longitude": -97.13560152293131,
                     "latitude_as_string": "49.8984", "longitude_as_string": "-122.2966" }
  },
  "extras": {},
  "promotions": [
    {
      "type": "FREE_ITEM_MIN_BASKET",
      "items": [ { "name": "Crispy Chicken Twist", "description": "", "plu": "", "price": 419, "notes": "", "children": [] } ],
      "promotion_id": "string", "discount_value": 419, "offer_id": "string"
    }
  ]
}"#;

#[test]
fn jets_delivery_by_partner_example_reads_with_tax_apart_and_a_free_item() {
    let order = order_of(parse(&signed(DOC_DELIVERY_BY_PARTNER.as_bytes())).expect("parses"));
    assert_eq!(
        order.external_order_id,
        "38bbeb45-f520-4438-a44f-0fcdbb29e166"
    );
    assert_eq!(order.channel_store_ref.as_deref(), Some("AKZ12"));
    assert_eq!(
        order.placed_at,
        Utc.timestamp_opt(1_606_780_145, 0).single().expect("time")
    );
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(order.customer.name, "");
    assert_eq!(order.customer.phone.as_deref(), Some("55555 113 000"));
    assert_eq!(
        order.notes.as_deref(),
        Some("Driver will be wearing a blue shirt")
    );
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.lines[0].total.minor, 1800);
    let free = &order.lines[1];
    assert_eq!(free.channel_item_id, "promotions[0].items[0]");
    assert_eq!((free.unit_price.minor, free.total.minor), (0, 0));
    assert_eq!(free.plu, None);
    assert_eq!(
        free.notes.as_deref(),
        Some("Free item (FREE_ITEM_MIN_BASKET)")
    );
    assert_eq!(
        order.totals.subtotal.minor, 1800,
        "items_in_cart before tax"
    );
    assert_eq!(order.totals.tax.minor, 360);
    assert!(!order.totals.tax_included);
    assert_eq!(order.totals.total.minor, 2160);
    assert_eq!(order.channel_data["deposit"], json!(10));
    assert_eq!(order.check(), Ok(vec![]), "the parts add up");
}

#[test]
fn jets_pick_up_example_reads() {
    let body = r#"{
      "id": "7494e975-4d24-4ea5-bdd6-306b444ccc51",
      "third_party_order_reference": "122669877",
      "type": "collection-by-customer",
      "posLocationId": "32c8b122-f599-441f-aa3a-5081fb89f0e8",
      "location": { "id": 12642, "timezone": "Australia/Sydney" },
      "items": [ { "name": "Cheese Pizza (Large)", "description": "",
                   "plu": "b048118f-87e7-417b-b45e-b123b2b97a52", "price": 1000,
                   "unitDepositAmount": 10, "notes": "", "children": [],
                   "substitution": { "preference": "bestmatch" } } ],
      "created_at": "1606780145",
      "channel": { "name": "Menulog", "id": 59 },
      "collect_at": "1606780980",
      "collection_notes": "I will be wearing a green dress",
      "kitchen_notes": "Please add extra cheese to the pizza",
      "payment_method": "CARD",
      "tender_type": "Flyt",
      "payment": { "items_in_cart": { "inc_tax": 1000, "tax": 0 }, "adjustments": [],
                   "final": { "inc_tax": 1000, "tax": 0 }, "deposit": 10 },
      "collector": { "first_name": "John", "last_name": "Doe",
                     "phone_number": "020 7946 0504", "phone_masking_code": "1234567890" },
      "extras": {},
      "promotions": []
    }"#;
    let order = order_of(parse(&signed(body.as_bytes())).expect("parses"));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.platform_brand.as_deref(), Some("Menulog"));
    assert_eq!(order.customer.name, "John Doe");
    assert_eq!(order.customer.phone_pin.as_deref(), Some("1234567890"));
    assert_eq!(
        order.notes.as_deref(),
        Some("Please add extra cheese to the pizza\nI will be wearing a green dress")
    );
    assert_eq!(order.totals.total.minor, 1000);
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn ids_and_times_may_come_as_numbers_or_rfc_3339_and_stay_exact() {
    let request = mutated(|v| {
        v["posLocationId"] = json!(9_007_199_254_740_993_u64);
        v["third_party_order_reference"] = json!(9_007_199_254_740_995_u64);
        v["created_at"] = json!("2026-11-20T11:58:00+00:00");
    });
    let order = order_of(parse(&request).expect("parses"));
    assert_eq!(order.channel_store_ref.as_deref(), Some("9007199254740993"));
    assert_eq!(order.display_code.as_deref(), Some("9007199254740995"));
    assert_eq!(
        order.placed_at,
        received_at() - chrono::TimeDelta::minutes(2)
    );
    malformed_at(
        &mutated(|v| v["created_at"] = json!("yesterday")),
        "created_at",
    );
}

#[test]
fn a_scheduled_order_is_for_its_collection_time() {
    let mut scheduled = sample();
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 18, 30, 0)
        .single()
        .expect("time");
    scheduled.scheduled_for = Some(at);
    let body = webhook(&scheduled);
    let value: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(value["extras"]["asap"], json!("false"));
    assert_eq!(value["collect_at"], json!(at.timestamp().to_string()));
    let order = order_of(parse(&signed(&body)).expect("parses"));
    assert_eq!(order.fulfillment.timing, Timing::Scheduled { at });
    malformed_at(
        &mutated(|v| v["extras"]["asap"] = json!("maybe")),
        "extras.asap",
    );
    malformed_at(
        &mutated(|v| {
            v["extras"]["asap"] = json!(false);
            v.as_object_mut().expect("object").remove("collect_at");
        }),
        "collect_at",
    );
}

#[test]
fn fields_of_the_wrong_type_or_meaning_are_malformed_naming_them() {
    malformed_at(
        &mutated(|v| v["items"][0]["price"] = json!("18.99")),
        "items[0].price",
    );
    malformed_at(&mutated(|v| v["type"] = json!("delivery-by-drone")), "type");
    malformed_at(
        &mutated(|v| v["payment_method"] = json!("VOUCHER")),
        "payment_method",
    );
    malformed_at(
        &mutated(|v| {
            v["payment"]
                .as_object_mut()
                .expect("object")
                .remove("final")
                .map(drop)
                .unwrap_or(())
        }),
        "payment",
    );
    malformed_at(
        &mutated(|v| v["items"][0]["quantity"] = json!(0)),
        "items[0].quantity",
    );
    assert_eq!(
        parse(&mutated(|v| v["id"] = json!(" "))),
        Err(ChannelError::Malformed("id: must not be empty".to_owned()))
    );
}

#[test]
fn a_fractional_minor_unit_fails_the_order_naming_the_field() {
    for (change, field) in [
        (json!(["items", 2, "price"]), "items[2].price"),
        (
            json!(["items", 0, "children", 0, "children", 0, "price"]),
            "items[0].children[0].children[0].price",
        ),
    ] {
        let request = mutated(|v| {
            let mut target = &mut *v;
            for step in change.as_array().expect("path") {
                target = match step {
                    Value::String(key) => &mut target[key.as_str()],
                    Value::Number(i) => &mut target[i.as_u64().expect("index") as usize],
                    _ => unreachable!(),
                };
            }
            *target = json!(299.5);
        });
        match parse(&request) {
            Err(error @ ChannelError::Order(_)) => {
                assert!(error.to_string().contains(field), "{error}");
                assert!(!error.is_retryable());
            }
            other => panic!("expected an order error at {field}, got {other:?}"),
        }
    }
}

#[test]
fn adjustments_map_onto_fees_discounts_and_tip() {
    let request = mutated(|v| {
        v["payment"]["adjustments"] = json!([
            { "name": "deliveryFee", "price": { "inc_tax": 240, "tax": 40 } },
            { "name": "serviceCharge", "price": { "inc_tax": 15, "tax": 0 } },
            { "name": "smallOrderFee", "price": { "inc_tax": 100, "tax": 0 } },
            { "name": "bagfee", "price": { "inc_tax": 10, "tax": 0 } },
            { "name": "discount", "price": { "inc_tax": -300, "tax": 0 } },
            { "name": "driverTip", "price": { "inc_tax": 150, "tax": 0 } },
            { "name": "loyaltyCredit", "price": { "inc_tax": -50, "tax": 0 } },
            { "name": "weatherSurcharge", "price": { "inc_tax": 70, "tax": 0 } }
        ]);
    });
    let totals = order_of(parse(&request).expect("parses")).totals;
    assert_eq!(totals.fees.delivery.minor, 200, "before tax");
    assert_eq!(totals.fees.service.minor, 15);
    assert_eq!(totals.fees.small_order.minor, 100);
    assert_eq!(totals.fees.packaging.minor, 10);
    assert_eq!(totals.fees.other.minor, 70);
    assert_eq!(totals.tip.minor, 150);
    let discounts: Vec<_> = totals
        .discounts
        .iter()
        .map(|d| (d.label.as_str(), d.amount.minor))
        .collect();
    assert_eq!(discounts, [("discount", 300), ("loyaltyCredit", 50)]);
}

#[test]
fn unknown_fields_are_ignored() {
    let request = mutated(|v| {
        v["loyalty_tier"] = json!({ "level": "gold" });
        v["items"][0]["allergens"] = json!(["gluten"]);
    });
    assert!(parse(&request).is_ok());
}

// ---------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------

#[test]
fn a_cancellation_names_the_order_and_its_reason_code() {
    let body = serde_json::to_vec(&simulator::order_cancelled(
        "38bb",
        Some("custCancelledChangedMind"),
        Some("customer"),
        received_at(),
    ))
    .expect("JSON");
    let delivery = parse(&signed_at(Some(EVENT_ORDER_CANCELLED), &body)).expect("parses");
    assert_eq!(delivery.dedupe_key, "cancel:38bb");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "38bb".to_owned(),
            reason: Some("custCancelledChangedMind".to_owned()),
        }
    );
    let bare = br#"{"orderID":"38bb"}"#;
    let delivery = parse(&signed_at(Some(EVENT_ORDER_CANCELLED), bare)).expect("parses");
    assert!(matches!(
        delivery.inbound,
        Inbound::Cancelled { reason: None, .. }
    ));
    malformed_at(
        &signed_at(Some(EVENT_ORDER_CANCELLED), br#"{"reason":{"code":"x"}}"#),
        "body",
    );
}

#[test]
fn the_couriers_progress_is_picked_up_then_delivered_and_the_rest_is_ignored() {
    let status = |code: &str| {
        let body = serde_json::to_vec(&simulator::driver_status("38bb", code, received_at()))
            .expect("JSON");
        parse(&signed_at(Some(EVENT_DRIVER_STATUS), &body)).expect("parses")
    };
    let on_its_way = status("onItsWay");
    assert_eq!(on_its_way.dedupe_key, "driver:38bb:onItsWay");
    assert_eq!(
        on_its_way.inbound,
        Inbound::Progress {
            external_order_id: "38bb".to_owned(),
            action: StatusAction::PickedUp
        }
    );
    assert_eq!(
        status("delivered").inbound,
        Inbound::Progress {
            external_order_id: "38bb".to_owned(),
            action: StatusAction::Delivered
        }
    );
    assert_eq!(
        status("driverAtRestaurant").inbound,
        Inbound::Ignored {
            event: "driver-status:driverAtRestaurant".to_owned()
        }
    );
}

#[test]
fn an_unknown_webhook_path_is_unsupported() {
    let body = webhook(&sample());
    let error = parse(&signed_at(Some("menu-status"), &body)).expect_err("no such webhook");
    assert!(matches!(error, ChannelError::Unsupported(_)), "{error}");
    assert_eq!(error.http_status().as_u16(), 404);
    // The Receive Order URL may also be named.
    assert!(parse(&signed_at(Some(EVENT_ORDER), &body)).is_ok());
}

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

#[test]
fn an_order_is_answered_202_and_a_notification_200() {
    let adapter = adapter();
    let order_request = signed(&webhook(&sample()));
    let order = adapter.parse(&order_request).expect("parses");
    for duplicate in [false, true] {
        let reply = adapter.reply(
            &order_request,
            Outcome::Accepted {
                delivery: &order,
                order_id: Some(OrderId::new()),
                duplicate,
            },
        );
        assert_eq!(reply.status.as_u16(), 202);
        assert!(reply.body.is_empty());
    }
    let body = br#"{"orderID":"38bb","reason":{"code":"custCancelledOther"}}"#;
    let cancel_request = signed_at(Some(EVENT_ORDER_CANCELLED), body);
    let cancel = adapter.parse(&cancel_request).expect("parses");
    let reply = adapter.reply(
        &cancel_request,
        Outcome::Accepted {
            delivery: &cancel,
            order_id: None,
            duplicate: false,
        },
    );
    assert_eq!(reply.status.as_u16(), 200);
    let error = ChannelError::Unauthorized("missing header".to_owned());
    let reply = adapter.reply(&order_request, Outcome::Refused(&error));
    assert_eq!(
        reply.status.as_u16(),
        401,
        "JET sends the order to the Orderpad"
    );
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
    let calls: Vec<(StatusAction, Status, Option<&str>)> = vec![
        (
            StatusAction::Accept { prep_minutes: 12 },
            Status::Received,
            Some(CALL_SUCCESS),
        ),
        (
            StatusAction::Reject {
                reason: "closed".into(),
            },
            Status::Received,
            Some(CALL_FAILED),
        ),
        (StatusAction::Preparing, Status::Accepted, None),
        (StatusAction::Ready, Status::Accepted, None),
        (StatusAction::PickedUp, Status::Ready, None),
        (StatusAction::Delivered, Status::PickedUp, None),
        (StatusAction::Complete, Status::Ready, None),
        (
            StatusAction::Cancel {
                reason: "out of dough".into(),
            },
            Status::Received,
            Some(CALL_FAILED),
        ),
        (
            StatusAction::Fail {
                reason: "not accepted in time".into(),
            },
            Status::Received,
            Some(CALL_FAILED),
        ),
        (
            StatusAction::Cancel {
                reason: "out of dough".into(),
            },
            Status::Accepted,
            None,
        ),
        (
            StatusAction::Fail {
                reason: "store offline".into(),
            },
            Status::Preparing,
            None,
        ),
    ];
    for (action, from, expected) in calls {
        match (plan(&change(action.clone(), from)), expected) {
            (Plan::Call { call, .. }, Some(expected)) => assert_eq!(call, expected),
            (Plan::NotApplicable(why), None) => assert!(why.contains("JET Connect"), "{why}"),
            (plan, _) => panic!("{action:?} from {from:?} planned as {plan:?}"),
        }
    }
}

#[test]
fn the_status_bodies_are_jets() {
    let accept = plan(&change(
        StatusAction::Accept { prep_minutes: 12 },
        Status::Received,
    ));
    assert_eq!(
        accept,
        Plan::Call {
            call: CALL_SUCCESS,
            body: json!({ "happenedAt": "2026-11-20T12:00:00+00:00" }),
        }
    );
    let reject = plan(&change(
        StatusAction::Reject {
            reason: "  ".into(),
        },
        Status::Received,
    ));
    assert_eq!(
        reject,
        Plan::Call {
            call: CALL_FAILED,
            body: json!({
                "happenedAt": "2026-11-20T12:00:00+00:00",
                "errorCode": "UNKNOWN",
                "errorMessage": "The store cannot take the order",
            }),
        }
    );
}

#[test]
fn error_codes_are_read_from_the_reason() {
    for (reason, code) in [
        ("Store closed for the night", "STORE_CLOSED"),
        ("Pepperoni out of stock", "MENU_ERROR"),
        ("item unavailable", "MENU_ERROR"),
        (
            "no store is mapped for cdp-ldn-099 (unmapped)",
            "INCORRECT_SETUP",
        ),
        ("not accepted in time: timed out", "TIMEOUT"),
        ("store offline", "INACTIVE"),
        ("too busy", "IN_USE"),
        ("the oven broke", "UNKNOWN"),
    ] {
        assert_eq!(error_code(reason), code, "{reason}");
        assert!(wire::ERROR_CODES.contains(&code));
    }
}

/// The order the adapter makes of the webhook the simulator would send for `id`.
fn stored(sim: &JustEatSim, id: &str) -> Order {
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
    let sim = JustEatSim::start(SimConfig::default())
        .await
        .expect("simulator");
    let adapter = adapter_at(&sim.base_url(), DEV_API_KEY);
    let id = sim.add_order(&sample());
    let order = stored(&sim, &id);
    assert_eq!(sim.status(&id), Some(Status::Received), "pending");
    let mut feed = sim.status_feed().subscribe();

    // Outages and rate limits are retryable.
    let accept = change(StatusAction::Accept { prep_minutes: 12 }, Status::Received);
    sim.faults().push(
        Fault {
            status: Some(503),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = adapter.push(&order, &accept).await.expect_err("503");
    assert!(error.is_retryable(), "{error}");
    sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(7),
            delay: None,
        },
        1,
    );
    let error = adapter.push(&order, &accept).await.expect_err("429");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(feed.try_recv().is_err(), "refused calls are not heard");

    let outcome = adapter.push(&order, &accept).await.expect("accepted");
    assert!(
        matches!(&outcome, PushOutcome::Delivered { detail } if detail.contains("answered 204")),
        "{outcome:?}"
    );
    assert_eq!(sim.status(&id), Some(Status::Accepted));
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (id.clone(), Status::Accepted)
    );
    let calls = sim.calls().all();
    let last = calls.last().expect("a call");
    assert_eq!(last.path, format!("/order/{id}/sent-to-pos-success"));
    assert_eq!(last.headers[API_KEY_HEADER], "<redacted>");
    assert_eq!(last.headers["content-type"], "application/json");
    assert_eq!(
        last.body,
        json!({ "happenedAt": "2026-11-20T12:00:00+00:00" })
    );

    // The order is no longer pending: JET fails any further call, permanently.
    let error = adapter.push(&order, &accept).await.expect_err("400");
    assert!(
        matches!(&error, ChannelError::Platform { status: 400, body } if body.contains("not pending")),
        "{error}"
    );
    assert!(!error.is_retryable());

    let before = sim.calls().all().len();
    for action in [
        StatusAction::Preparing,
        StatusAction::Ready,
        StatusAction::Complete,
    ] {
        assert!(matches!(
            adapter
                .push(&order, &change(action, Status::Accepted))
                .await,
            Ok(PushOutcome::NotApplicable { .. })
        ));
    }
    let cancel = change(
        StatusAction::Cancel {
            reason: "out of dough".into(),
        },
        Status::Accepted,
    );
    assert!(matches!(
        adapter.push(&order, &cancel).await,
        Ok(PushOutcome::NotApplicable { .. })
    ));
    assert_eq!(sim.calls().all().len(), before, "no call for those");

    // A second order is refused: sent-to-pos-failed with a code.
    let refused = sim.add_order(&sample());
    let refused_order = stored(&sim, &refused);
    let reject = change(
        StatusAction::Reject {
            reason: "Store closed early".into(),
        },
        Status::Received,
    );
    assert!(adapter.push(&refused_order, &reject).await.is_ok());
    assert_eq!(sim.status(&refused), Some(Status::Rejected));
    // The refused repeat of the accept was not heard; the rejection was.
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (refused.clone(), Status::Rejected)
    );
    assert_eq!(
        sim.failure(&refused),
        Some(("STORE_CLOSED".to_owned(), "Store closed early".to_owned()))
    );

    let mut unknown = order.clone();
    unknown.order.external_order_id = "nobody/../x".to_owned();
    let error = adapter.push(&unknown, &accept).await.expect_err("404");
    assert!(
        matches!(error, ChannelError::Platform { status: 404, .. }),
        "{error}"
    );

    let forged = adapter_at(&sim.base_url(), "not the key");
    let third = sim.add_order(&sample());
    let error = forged
        .push(&stored(&sim, &third), &accept)
        .await
        .expect_err("401");
    assert!(
        matches!(error, ChannelError::Platform { status: 401, .. }),
        "{error}"
    );
    assert!(!error.is_retryable());
    assert_eq!(sim.status(&third), Some(Status::Received));
    sim.stop().await;
}

/// Regression: a hub whose refusal (`sent-to-pos-failed`) overtakes its own answer to
/// Receive Order. The simulator set the order back to pending when the 202 came, so JET
/// seemed never to have heard of the refusal.
#[tokio::test]
async fn a_refusal_that_overtakes_the_webhook_answer_stands() {
    let sim = JustEatSim::start(SimConfig::default())
        .await
        .expect("simulator");
    let base = sim.base_url();
    let hub = axum::Router::new().route(
        "/webhooks/just_eat",
        axum::routing::post(move |body: Bytes| {
            let base = base.clone();
            async move {
                let order = Order {
                    id: OrderId::new(),
                    received_at: received_at(),
                    updated_at: received_at(),
                    status: Status::Received,
                    store_id: None,
                    flags: Vec::new(),
                    order: order_of(parse(&signed(&body)).expect("parses")),
                };
                let reject = change(
                    StatusAction::Reject {
                        reason: "item unavailable".into(),
                    },
                    Status::Received,
                );
                let pushed = adapter_at(&base, DEV_API_KEY).push(&order, &reject).await;
                assert!(pushed.is_ok(), "{pushed:?}");
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let server = crossdock_channel::sim::SimServer::serve(
        hub,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("hub");
    sim.set_hub_webhook_url(format!("{}/webhooks/just_eat", server.base_url()));
    let placed = sim.place_order(&sample()).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    assert_eq!(
        sim.status(&placed.external_order_id),
        Some(Status::Rejected)
    );
    server.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn an_order_not_answered_in_time_fails_to_inject() {
    let sim = JustEatSim::start(SimConfig {
        accept_deadline: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let adapter = adapter_at(&sim.base_url(), DEV_API_KEY);
    let id = sim.add_order(&sample());
    let order = stored(&sim, &id);
    sim.clock().advance(Duration::from_millis(120));
    assert_eq!(sim.status(&id), Some(Status::Failed));
    let accept = change(StatusAction::Accept { prep_minutes: 12 }, Status::Received);
    let error = adapter.push(&order, &accept).await.expect_err("too late");
    assert!(
        matches!(error, ChannelError::Platform { status: 400, .. }),
        "{error}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_simulator_refuses_bad_status_bodies() {
    let sim = JustEatSim::start(SimConfig::default())
        .await
        .expect("simulator");
    let id = sim.add_order(&sample());
    let http = reqwest::Client::new();
    let post = |call: &str, body: Value| {
        http.post(format!("{}/order/{id}/{call}", sim.base_url()))
            .header(API_KEY_HEADER, DEV_API_KEY)
            .json(&body)
            .send()
    };
    for (call, body) in [
        (CALL_SUCCESS, json!({})),
        (CALL_SUCCESS, json!({ "happenedAt": "yesterday" })),
        (
            CALL_FAILED,
            json!({ "happenedAt": "2026-11-20T12:00:00Z", "errorCode": "NOPE", "errorMessage": "x" }),
        ),
        (
            CALL_FAILED,
            json!({ "happenedAt": "2026-11-20T12:00:00Z", "errorCode": "UNKNOWN", "errorMessage": " " }),
        ),
    ] {
        let answer = post(call, body.clone()).await.expect("answer");
        assert_eq!(answer.status().as_u16(), 400, "{call} {body}");
        let error: Value = answer.json().await.expect("JSON");
        assert!(error["errors"][0]["description"].is_string(), "{error}");
    }
    let answer = post("ready", json!({})).await.expect("answer");
    assert_eq!(answer.status().as_u16(), 404);
    assert_eq!(sim.status(&id), Some(Status::Received), "still pending");
    sim.stop().await;
}

#[tokio::test]
async fn the_simulator_cancels_and_moves_orders_along_and_stops_at_the_end() {
    let sim = JustEatSim::start(SimConfig {
        hub_webhook_url: "http://127.0.0.1:9/webhooks/just_eat".to_owned(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let id = sim.add_order(&delivery(sample()));
    assert!(
        sim.cancel_order(&id, Some("custCancelledChangedMind"))
            .await
            .is_some()
    );
    assert_eq!(sim.status(&id), Some(Status::Cancelled));
    assert_eq!(
        sim.cancel_reason(&id).as_deref(),
        Some("custCancelledChangedMind")
    );
    assert!(
        sim.cancel_order(&id, None).await.is_none(),
        "already finished"
    );
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
    assert!(
        matches!(error, ConfigError::MissingSecret { .. }),
        "{error}"
    );
    assert!(
        Factory
            .build(&settings(
                json!({ "currency": "EUR", "store_currencies": { "cdp-dub-001": "EUR" } }),
                true
            ))
            .is_ok()
    );
    for options in [
        json!({ "base_url": "not a url" }),
        json!({ "base_url": "ftp://example.com" }),
        json!({ "timeout_secs": 0 }),
        json!({ "currency": "EURO" }),
        json!({ "store_currencies": { "cdp-dub-001": "E1" } }),
        json!({ "unknown_option": true }),
    ] {
        assert!(
            Factory.build(&settings(options.clone(), true)).is_err(),
            "{options} was taken"
        );
    }
}

#[test]
fn a_stores_currency_comes_from_the_configuration() {
    let adapter = JustEat::new(
        JustEatConfig {
            store_currencies: [("store-42".to_owned(), "EUR".to_owned())].into(),
            ..JustEatConfig::default()
        },
        SecretString::from(DEV_WEBHOOK_SECRET),
        SecretString::from(DEV_API_KEY),
        reqwest::Client::new(),
    )
    .expect("adapter");
    let order = order_of(adapter.parse(&signed(&webhook(&sample()))).expect("parses"));
    assert_eq!(order.totals.currency.code(), "EUR");
    let mut other = sample();
    other.store_ref = Some("store-7".to_owned());
    let order = order_of(adapter.parse(&signed(&webhook(&other))).expect("parses"));
    assert_eq!(order.totals.currency.code(), "GBP", "the default");
}
