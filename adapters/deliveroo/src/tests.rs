//! Unit tests of the adapter: signatures, envelopes, fixtures → unified orders (each
//! CHANNELS.md §10 rule that applies to Deliveroo), status and rider events, replies, push
//! planning, configuration.
//!
//! Fixtures live in `fixtures/deliveroo/`. Their bodies are plain files; their `.headers`
//! (and `.url`) are what the simulator's signer makes of them: set `UPDATE_FIXTURES=1`
//! to rewrite those after changing a body (then review the diff). The `.expected.json`
//! files are the conformance kit's (`UPDATE_EXPECT=1 cargo test -p
//! crossdock-adapter-deliveroo --test conformance`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::body::Bytes;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crossdock_channel::normalize::{self, parse_headers};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, HeaderMap,
    Inbound, InboundRequest, Method, Outcome, SecretSource, StatusCode,
};
use crossdock_model::{
    CoordSystem, DeliveredBy, Flag, FulfillmentKind, FundedBy, Money, NewOrder, Order, OrderError,
    OrderId, Payment, Status, StatusAction, StatusChange, Timing,
};
use secrecy::SecretString;

use super::*;
use crate::convert::OFFER_LABEL;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The instant the kit receives fixtures at (`crossdock_kit::FIXTURE_TIME`).
fn fixture_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time")
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn adapter() -> Deliveroo {
    Deliveroo::new(
        DeliverooConfig::default(),
        SecretString::from(DEV_CLIENT_SECRET),
        SecretString::from(DEV_WEBHOOK_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/deliveroo")
}

fn body(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(format!("{name}.body"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How each fixture is sent: its GUID, its event, whether it is signed the legacy way,
/// and whether it goes to the rider events URL.
struct FixtureCase {
    name: &'static str,
    guid: &'static str,
    event: &'static str,
    legacy: bool,
    rider: bool,
}

const CASES: &[FixtureCase] = &[
    FixtureCase {
        name: "order-new-delivery-by-deliveroo",
        guid: "0d6f1e2a-7b3c-4d58-9e01-a2b3c4d5e6f7",
        event: "order.new",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "order-new-pickup-nested-modifiers",
        guid: "1e7a2f3b-8c4d-4e69-8f12-b3c4d5e6f7a8",
        event: "order.new",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "order-new-restaurant-delivery-discount-fees",
        guid: "2f8b3a4c-9d5e-4f7a-9023-c4d5e6f7a8b9",
        event: "order.new",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "order-new-scheduled",
        guid: "3a9c4b5d-0e6f-4a8b-8134-d5e6f7a8b9c0",
        event: "order.new",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "order-new-unicode-table-service",
        guid: "4b0d5c6e-1f7a-4b9c-9245-e6f7a8b9c0d1",
        event: "order.new",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "order-new-remake-legacy-signature",
        guid: "5c1e6d7f-2a8b-4c0d-8356-f7a8b9c0d1e2",
        event: "order.new",
        legacy: true,
        rider: false,
    },
    FixtureCase {
        name: "order-new-refused-bad-currency",
        guid: "6d2f7e8a-3b9c-4d1e-9467-a8b9c0d1e2f3",
        event: "order.new",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "order-status-update-accepted",
        guid: "7e3a8f9b-4c0d-4e2f-8578-b9c0d1e2f3a4",
        event: "order.status_update",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "order-status-update-canceled",
        guid: "8f4b9a0c-5d1e-4f3a-9689-c0d1e2f3a4b5",
        event: "order.status_update",
        legacy: false,
        rider: false,
    },
    FixtureCase {
        name: "rider-status-update-in-transit",
        guid: "9a5c0b1d-6e2f-4a4b-8790-d1e2f3a4b5c6",
        event: "rider.status_update",
        legacy: false,
        rider: true,
    },
];

fn case(name: &str) -> &'static FixtureCase {
    CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no fixture case {name}"))
}

const PUBLIC_URL: &str = "https://hub.crossdock.example";

/// The `.headers` file of a case: what the simulator's signer sends.
fn headers_file(case: &FixtureCase, body: &[u8]) -> String {
    let key = DEV_WEBHOOK_SECRET.as_bytes();
    let signature = if case.legacy {
        sign_legacy(key, case.guid, body)
    } else {
        sign(key, case.guid, body)
    };
    format!(
        "Content-Type: application/json\nX-Deliveroo-Sequence-Guid: {}\nX-Deliveroo-Hmac-Sha256: {signature}\nX-Deliveroo-Payload-Type: event/{}\nX-Deliveroo-Webhook-Version: 1\n",
        case.guid, case.event
    )
}

fn url_file(case: &FixtureCase) -> Option<String> {
    case.rider
        .then(|| format!("{PUBLIC_URL}/webhooks/{CHANNEL_ID}/{RIDER_EVENTS}\n"))
}

/// A fixture as the hub receives it (its saved headers and URL), at the fixture time.
fn fixture_request(name: &str) -> InboundRequest {
    let case = case(name);
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.headers")))
        .expect("headers file");
    let url = url_file(case).unwrap_or_else(|| format!("{PUBLIC_URL}/webhooks/{CHANNEL_ID}"));
    normalize::request(
        Method::POST,
        url.trim(),
        parse_headers(&text).expect("headers"),
        Bytes::from(body(name)),
        fixture_time(),
    )
}

/// A request to the order events URL with the given GUID and signature headers.
fn request(body: &[u8], guid: Option<&str>, signature: Option<&str>) -> InboundRequest {
    let mut headers = HeaderMap::new();
    if let Some(guid) = guid {
        headers.insert(GUID_HEADER, guid.parse().expect("header"));
    }
    if let Some(signature) = signature {
        headers.insert(SIGNATURE_HEADER, signature.parse().expect("header"));
    }
    InboundRequest {
        method: Method::POST,
        event: None,
        url: format!("{PUBLIC_URL}/webhooks/{CHANNEL_ID}"),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: fixture_time(),
    }
}

/// A correctly signed request.
fn signed(body: &[u8], guid: &str) -> InboundRequest {
    request(
        body,
        Some(guid),
        Some(&sign(DEV_WEBHOOK_SECRET.as_bytes(), guid, body)),
    )
}

fn parse_fixture(name: &str) -> Delivery {
    let request = fixture_request(name);
    let adapter = adapter();
    adapter.verify(&request).expect("verifies");
    adapter.parse(&request).expect("parses")
}

fn order_of(name: &str) -> NewOrder {
    match parse_fixture(name).inbound {
        Inbound::Order(order) => *order,
        other => panic!("{name}: expected an order, got {other:?}"),
    }
}

fn gbp(minor: i64) -> Money {
    Money::new(minor, crossdock_model::Currency::parse("GBP").expect("GBP"))
}

/// A fixture body with a change to its JSON, as a signed request.
fn mutated(name: &str, change: impl FnOnce(&mut serde_json::Value)) -> InboundRequest {
    let mut value: serde_json::Value = serde_json::from_slice(&body(name)).expect("JSON");
    change(&mut value);
    let bytes = serde_json::to_vec(&value).expect("JSON");
    signed(&bytes, "a0b1c2d3-e4f5-4a6b-8c7d-8e9f0a1b2c3d")
}

fn parse(request: &InboundRequest) -> Result<Delivery, ChannelError> {
    adapter().parse(request)
}

fn malformed(result: Result<Delivery, ChannelError>) -> String {
    match result {
        Err(ChannelError::Malformed(message)) => message,
        other => panic!("expected malformed, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Fixture files and signatures
// ---------------------------------------------------------------------------------------

#[test]
fn fixture_headers_are_what_the_simulator_signer_makes() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let dir = fixtures_dir();
    for case in CASES {
        let body = body(case.name);
        let expected = headers_file(case, &body);
        let path = dir.join(format!("{}.headers", case.name));
        if update {
            std::fs::write(&path, &expected).expect("write headers");
            if let Some(url) = url_file(case) {
                std::fs::write(dir.join(format!("{}.url", case.name)), url).expect("write url");
            }
            continue;
        }
        let saved = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_FIXTURES=1 writes it)", path.display()));
        assert_eq!(
            saved,
            expected,
            "{} (UPDATE_FIXTURES=1 rewrites it)",
            path.display()
        );
        let url = std::fs::read_to_string(dir.join(format!("{}.url", case.name))).ok();
        assert_eq!(url, url_file(case), "{}.url", case.name);
    }
    // Every body in the directory is a listed case.
    let mut bodies: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".body").map(str::to_owned))
        .collect();
    bodies.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.name.to_owned()).collect();
    listed.sort();
    assert_eq!(bodies, listed);
}

#[test]
fn every_fixture_verifies_as_saved_including_the_legacy_signature() {
    let adapter = adapter();
    for case in CASES {
        let request = fixture_request(case.name);
        assert!(
            adapter.verify(&request).is_ok(),
            "{} fails verification",
            case.name
        );
    }
}

#[test]
fn both_signature_schemes_are_accepted() {
    let body = br#"{"event":"menu.upload_result","body":{}}"#;
    let guid = "a5b4c3d2-e1f0-4a9b-8c7d-6e5f4a3b2c1d";
    let key = DEV_WEBHOOK_SECRET.as_bytes();
    let adapter = adapter();
    assert!(
        adapter
            .verify(&request(body, Some(guid), Some(&sign(key, guid, body))))
            .is_ok()
    );
    assert!(
        adapter
            .verify(&request(
                body,
                Some(guid),
                Some(&sign_legacy(key, guid, body))
            ))
            .is_ok()
    );
    // The recipe, spelled out: HMAC-SHA256 over guid, one space, body.
    assert_eq!(
        sign(key, guid, body),
        crossdock_channel::signature::hmac_sha256_hex(key, &[format!("{guid} ").as_bytes(), body])
    );
}

#[test]
fn any_changed_byte_of_the_body_or_the_guid_fails_the_signature() {
    let body = body("order-status-update-accepted");
    let guid = "7e3a8f9b-4c0d-4e2f-8578-b9c0d1e2f3a4";
    let signature = sign(DEV_WEBHOOK_SECRET.as_bytes(), guid, &body);
    let adapter = adapter();
    for index in (0..body.len()).step_by(7) {
        let mut tampered = body.clone();
        tampered[index] ^= 0x01;
        let result = adapter.verify(&request(&tampered, Some(guid), Some(&signature)));
        assert!(
            matches!(&result, Err(ChannelError::Unauthorized(m)) if m.contains("does not match")),
            "body byte {index} changed but got {result:?}"
        );
    }
    for index in 0..guid.len() {
        let mut tampered = guid.as_bytes().to_vec();
        tampered[index] ^= 0x01;
        let tampered = String::from_utf8(tampered).expect("ASCII");
        let result = adapter.verify(&request(&body, Some(&tampered), Some(&signature)));
        assert!(result.is_err(), "guid byte {index} changed but verified");
    }
    // A trailing space is a different GUID, not the same one trimmed.
    let spaced = format!("{guid} ");
    let mut request_with_space = request(&body, None, Some(&signature));
    request_with_space.headers.insert(
        GUID_HEADER,
        crossdock_channel::HeaderValue::from_str(&spaced).expect("header"),
    );
    assert!(adapter.verify(&request_with_space).is_err());
}

#[test]
fn a_wrong_key_a_garbled_or_a_missing_signature_is_unauthorized() {
    let body = body("order-status-update-accepted");
    let guid = "7e3a8f9b-4c0d-4e2f-8578-b9c0d1e2f3a4";
    let good = sign(DEV_WEBHOOK_SECRET.as_bytes(), guid, &body);
    let adapter = adapter();
    let unauthorized = |request: InboundRequest| match adapter.verify(&request) {
        Err(ChannelError::Unauthorized(message)) => message,
        other => panic!("expected unauthorized, got {other:?}"),
    };
    let other_key = sign(b"someone-else", guid, &body);
    assert!(unauthorized(request(&body, Some(guid), Some(&other_key))).contains("does not match"));
    assert!(unauthorized(request(&body, Some(guid), Some("not-hex"))).contains("does not match"));
    assert!(unauthorized(request(&body, Some(guid), Some(&good[..40]))).contains("does not match"));
    // Signed for another GUID.
    let moved = sign(DEV_WEBHOOK_SECRET.as_bytes(), "another-guid", &body);
    assert!(unauthorized(request(&body, Some(guid), Some(&moved))).contains("does not match"));
    assert_eq!(
        unauthorized(request(&body, Some(guid), None)),
        "missing X-Deliveroo-Hmac-Sha256 header"
    );
    assert_eq!(
        unauthorized(request(&body, None, Some(&good))),
        "missing X-Deliveroo-Sequence-Guid header"
    );
}

#[test]
fn an_upper_case_signature_is_refused_but_header_names_are_any_case() {
    let body = body("order-status-update-accepted");
    let guid = "7e3a8f9b-4c0d-4e2f-8578-b9c0d1e2f3a4";
    let good = sign(DEV_WEBHOOK_SECRET.as_bytes(), guid, &body);
    let adapter = adapter();
    // Deliveroo sends lower-case hex; the documentation compares it as such.
    match adapter.verify(&request(
        &body,
        Some(guid),
        Some(&good.to_ascii_uppercase()),
    )) {
        Err(ChannelError::Unauthorized(message)) => {
            assert_eq!(message, "X-Deliveroo-Hmac-Sha256 must be lower-case hex");
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    // Header names are case-insensitive, as HTTP has them.
    let headers = parse_headers(&format!(
        "X-DELIVEROO-SEQUENCE-GUID: {guid}\nx-Deliveroo-HMAC-sha256: {good}\n"
    ))
    .expect("headers");
    let mut request = request(&body, None, None);
    request.headers = headers;
    assert!(adapter.verify(&request).is_ok());
}

// ---------------------------------------------------------------------------------------
// order.new → the unified order (CHANNELS.md §10)
// ---------------------------------------------------------------------------------------

#[test]
fn a_delivery_by_a_deliveroo_rider_follows_the_rules() {
    let delivery = parse_fixture("order-new-delivery-by-deliveroo");
    // Dedupe key: the sequence GUID.
    assert_eq!(delivery.dedupe_key, "0d6f1e2a-7b3c-4d58-9e01-a2b3c4d5e6f7");
    let Inbound::Order(order) = delivery.inbound else {
        panic!("expected an order");
    };
    // Identity: the market-prefixed id, the display id, the location id, the brand.
    assert_eq!(order.channel.as_str(), "deliveroo");
    assert_eq!(
        order.external_order_id,
        "gb:3f6c2a8e-9b1d-4c7a-8e5f-1a2b3c4d5e60"
    );
    assert_eq!(order.display_code.as_deref(), Some("4417"));
    assert_eq!(order.channel_store_ref.as_deref(), Some("628401"));
    assert_eq!(order.brand, None);
    assert_eq!(order.platform_brand.as_deref(), Some("crossdock-pizza"));
    // Times: placed is the `placed` entry; accept by placed + 10 minutes.
    assert_eq!(order.placed_at, at("2026-11-20T11:52:05Z"));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(
        order.fulfillment.address, None,
        "Deliveroo keeps its riders' addresses"
    );
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    assert_eq!(
        order.fulfillment.promised_at,
        Some(at("2026-11-20T12:14:00Z"))
    );
    assert_eq!(
        order.fulfillment.accept_by,
        Some(at("2026-11-20T12:02:05Z"))
    );
    // Customer: first name only, the proxy number and its PIN.
    assert_eq!(order.customer.name, "Oliver");
    assert_eq!(order.customer.phone.as_deref(), Some("+44 20 3808 4455"));
    assert_eq!(order.customer.phone_pin.as_deref(), Some("58213749"));
    assert_eq!(order.notes.as_deref(), Some("Please ring the doorbell"));
    // Lines in payload order; the PLU is the pos_item_id.
    let names: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["Pepperoni (Large)", "Cola (500 ml)"]);
    let cola = &order.lines[1];
    assert_eq!(cola.plu.as_deref(), Some("DR-COLA-500"));
    assert_eq!(cola.channel_item_id, "DR-COLA-500");
    assert_eq!(cola.quantity, 2);
    assert_eq!(cola.unit_price, gbp(199));
    assert_eq!(cola.total, gbp(398));
    assert_eq!(cola.modifiers[0].name, "No ice");
    assert_eq!(cola.modifiers[0].plu.as_deref(), Some("MOD-ICE-NONE"));
    // Money: the partner subtotal and total as given; what the customer paid Deliveroo
    // for delivery is not the partner's.
    assert_eq!(order.totals.subtotal, gbp(2097));
    assert_eq!(order.totals.total, gbp(2097));
    assert_eq!(order.totals.fees.delivery, gbp(0));
    assert!(order.totals.discounts.is_empty());
    assert_eq!(order.totals.tip, gbp(0));
    assert_eq!(order.totals.tax, gbp(0));
    assert!(order.totals.tax_included);
    assert_eq!(order.totals.cash_due, None);
    assert_eq!(order.payment, Payment::Prepaid);
    assert_eq!(
        order.channel_data,
        serde_json::json!({
            "market": "gb",
            "order_number": "30184417",
            "tabletless": false,
            "cutlery_notes": "NO CUTLERY",
        })
    );
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_pickup_keeps_nested_modifiers_and_its_note() {
    let order = order_of("order-new-pickup-nested-modifiers");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.delivered_by, None);
    assert_eq!(
        order.notes.as_deref(),
        Some("Sesame allergy: please keep the knots away from the sesame bread. Extra napkins.")
    );
    let pizza = &order.lines[0];
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!(pizza.unit_price, gbp(1499), "one unit without modifiers");
    assert_eq!(pizza.total, gbp(1499 + 250 + 80 + 60 + 2 * 79));
    assert_eq!(pizza.total, pizza.computed_total().expect("sum"));
    let plus: Vec<Option<&str>> = pizza.modifiers.iter().map(|m| m.plu.as_deref()).collect();
    assert_eq!(
        plus,
        [
            Some("MOD-CRUST-STUFFED"),
            Some("MOD-HALF-HALF"),
            Some("MOD-DIP-GARL")
        ]
    );
    let half = &pizza.modifiers[1];
    assert_eq!(half.unit_price, gbp(0));
    assert_eq!(half.group, None, "Deliveroo names no modifier group");
    let second: Vec<(&str, i64)> = half
        .modifiers
        .iter()
        .map(|m| (m.name.as_str(), m.unit_price.minor))
        .collect();
    assert_eq!(second, [("Pepperoni (half)", 80), ("Mushrooms (half)", 60)]);
    assert_eq!(pizza.modifiers[2].quantity, 2);
    // An empty cutlery note is no note.
    assert_eq!(order.channel_data.get("cutlery_notes"), None);
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_restaurant_delivery_has_the_address_the_fees_and_the_discount() {
    let order = order_of("order-new-restaurant-delivery-discount-fees");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(address.lines, ["12 Parkway", "Flat 3"]);
    assert_eq!(address.city.as_deref(), Some("London"));
    assert_eq!(address.postcode.as_deref(), Some("NW1 7AA"));
    assert_eq!(address.country.as_deref(), Some("GB"));
    assert_eq!(
        address.instructions.as_deref(),
        Some("Buzzer 3, leave it with the concierge")
    );
    let coordinates = address.coordinates.expect("coordinates");
    assert_eq!((coordinates.lat, coordinates.lng), (51.5371, -0.1452));
    assert_eq!(coordinates.system, CoordSystem::Wgs84);
    // The name on the delivery wins over the first name.
    assert_eq!(order.customer.name, "Hannah Okafor");
    assert_eq!(order.customer.phone_pin.as_deref(), Some("20571934"));
    // An empty order note is no note.
    assert_eq!(order.notes, None);
    let totals = &order.totals;
    assert_eq!(totals.subtotal, gbp(2 * (1799 + 120) + 449 + 249));
    assert_eq!(totals.discounts.len(), 1);
    assert_eq!(totals.discounts[0].label, OFFER_LABEL);
    assert_eq!(totals.discounts[0].amount, gbp(907));
    assert_eq!(totals.discounts[0].funded_by, FundedBy::Unknown);
    assert_eq!(totals.fees.delivery, gbp(299));
    assert_eq!(totals.fees.packaging, gbp(10));
    assert_eq!(totals.fees.small_order, gbp(0));
    assert_eq!(totals.fees.other, gbp(10), "the DEPOSIT_FEE");
    assert_eq!(totals.tip, gbp(0), "Deliveroo sends partners no tip");
    assert_eq!(totals.total, gbp(4536 - 907 + 299 + 10 + 10));
    assert_eq!(order.check(), Ok(vec![]), "the parts add up");
}

#[test]
fn a_scheduled_order_is_due_at_prepare_for_and_confirmed_by_confirm_at() {
    let order = order_of("order-new-scheduled");
    assert_eq!(
        order.fulfillment.timing,
        Timing::Scheduled {
            at: at("2026-11-20T19:30:00Z")
        }
    );
    assert_eq!(
        order.fulfillment.promised_at,
        Some(at("2026-11-20T19:30:00Z"))
    );
    assert_eq!(
        order.fulfillment.accept_by,
        Some(at("2026-11-20T19:05:00Z")),
        "confirm_at"
    );
    assert_eq!(order.placed_at, at("2026-11-20T11:58:30Z"));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn unicode_and_emoji_pass_through_untouched() {
    let order = order_of("order-new-unicode-table-service");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::DineIn);
    assert_eq!(order.customer.name, "Zoë 😊");
    assert_eq!(
        order.notes.as_deref(),
        Some("Bon appétit ! Pas d'oignons 🧅🚫 — merci beaucoup 🙏")
    );
    assert_eq!(order.lines[0].name, "Margherita (Medium) «Napoletana» 🍕");
    assert_eq!(order.lines[0].modifiers[0].name, "Jalapeños 🌶️");
    assert_eq!(order.lines[1].modifiers[0].name, "Blue cheese dip — «bleu»");
    assert_eq!(
        order.channel_data["cutlery_notes"],
        "Couverts, s'il vous plaît 🍴"
    );
    assert_eq!(order.channel_data["table_number"], "12");
    assert_eq!(order.channel_data["tabletless"], true);
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_remake_keeps_its_zero_total_and_an_unmapped_item() {
    let order = order_of("order-new-remake-legacy-signature");
    let knots = &order.lines[1];
    assert_eq!(knots.plu, None, "pos_item_id is null");
    assert_eq!(knots.channel_item_id, "line-2");
    // The restaurant was at fault: the total is 0, kept as sent and flagged.
    assert_eq!(order.totals.total, gbp(0));
    assert_eq!(order.totals.subtotal, gbp(1899 + 499));
    assert_eq!(
        order.check(),
        Ok(vec![Flag::TotalsMismatch {
            expected: gbp(2398),
            reported: gbp(0)
        }])
    );
    assert_eq!(
        order.channel_data["remake"],
        serde_json::json!({
            "parent_order_id": "gb:0a9b8c7d-6e5f-4d3c-2b1a-0f9e8d7c6b5a",
            "fault": "restaurant",
            "order_cost": 0
        })
    );
}

#[test]
fn a_bad_currency_refuses_the_order_naming_the_amount() {
    let request = fixture_request("order-new-refused-bad-currency");
    let adapter = adapter();
    adapter.verify(&request).expect("signed");
    match adapter.parse(&request) {
        Err(ChannelError::Order(OrderError::MoneyAt { field, .. })) => {
            assert_eq!(field, "body.order.items[1].unit_price.currency_code");
        }
        other => panic!("expected an order error, got {other:?}"),
    }
}

#[test]
fn gulf_orders_have_seven_minutes_to_be_accepted() {
    let request = mutated("order-new-delivery-by-deliveroo", |v| {
        v["body"]["order"]["id"] = "kw:3f6c2a8e-9b1d-4c7a-8e5f-1a2b3c4d5e60".into();
    });
    let Inbound::Order(order) = parse(&request).expect("parse").inbound else {
        panic!("expected an order");
    };
    assert_eq!(
        order.fulfillment.accept_by,
        Some(at("2026-11-20T11:52:05Z") + TimeDelta::minutes(7))
    );
    assert_eq!(order.channel_data["market"], "kw");
}

#[test]
fn cash_due_means_cash_on_delivery_or_pay_at_store() {
    let cash = |name: &str| {
        let request = mutated(name, |v| {
            v["body"]["order"]["cash_due"] =
                serde_json::json!({"fractional": 1500, "currency_code": "GBP"});
        });
        match parse(&request).expect("parse").inbound {
            Inbound::Order(order) => (order.payment, order.totals.cash_due),
            other => panic!("expected an order, got {other:?}"),
        }
    };
    assert_eq!(
        cash("order-new-delivery-by-deliveroo"),
        (Payment::CashOnDelivery, Some(gbp(1500)))
    );
    assert_eq!(
        cash("order-new-pickup-nested-modifiers"),
        (Payment::PayAtStore, Some(gbp(1500)))
    );
}

#[test]
fn missing_totals_fall_back_in_a_stated_order() {
    let order = |change: &dyn Fn(&mut serde_json::Value)| {
        let request = mutated("order-new-delivery-by-deliveroo", |v| {
            change(&mut v["body"]["order"])
        });
        parse(&request).map(|d| match d.inbound {
            Inbound::Order(order) => *order,
            other => panic!("expected an order, got {other:?}"),
        })
    };
    let no_partner_subtotal = order(&|o| {
        o.as_object_mut()
            .map(|o| o.remove("partner_order_subtotal"));
        o["subtotal"]["fractional"] = 2000.into();
    })
    .expect("order");
    assert_eq!(no_partner_subtotal.totals.subtotal, gbp(2000));
    let no_subtotals = order(&|o| {
        o.as_object_mut()
            .map(|o| o.remove("partner_order_subtotal"));
        o.as_object_mut().map(|o| o.remove("subtotal"));
    })
    .expect("order");
    assert_eq!(no_subtotals.totals.subtotal, gbp(1699 + 398), "Σ lines");
    let no_partner_total = order(&|o| {
        o.as_object_mut().map(|o| o.remove("partner_order_total"));
    })
    .expect("order");
    assert_eq!(no_partner_total.totals.total, gbp(2296), "total_price");
    let neither = order(&|o| {
        o.as_object_mut().map(|o| o.remove("partner_order_total"));
        o.as_object_mut().map(|o| o.remove("total_price"));
    });
    assert_eq!(
        malformed(neither.map(|_| unreachable_delivery())),
        "body.order.partner_order_total: missing, and so is total_price"
    );
    // A line without total_price is computed.
    let computed = order(&|o| {
        o["items"][0]
            .as_object_mut()
            .map(|i| i.remove("total_price"));
    })
    .expect("order");
    assert_eq!(computed.lines[0].total, gbp(1699));
}

/// For `malformed()` on a result whose success type is not a delivery.
fn unreachable_delivery() -> Delivery {
    Delivery {
        dedupe_key: String::new(),
        inbound: Inbound::Ignored {
            event: "unexpected success".into(),
        },
    }
}

#[test]
fn parse_errors_name_the_field() {
    let case = |change: &dyn Fn(&mut serde_json::Value)| {
        malformed(parse(&mutated("order-new-pickup-nested-modifiers", |v| {
            change(v)
        })))
    };
    let message = case(&|v| {
        v["body"]["order"]["items"][1]
            .as_object_mut()
            .map(|i| i.remove("unit_price"));
    });
    assert!(
        message.starts_with("body.order.items[1]") && message.contains("unit_price"),
        "{message}"
    );
    let message = case(&|v| {
        v["body"]["order"]["items"][0]["modifiers"][1]["modifiers"][0]["quantity"] = "two".into();
    });
    assert!(
        message.starts_with("body.order.items[0].modifiers[1].modifiers[0].quantity"),
        "{message}"
    );
    assert_eq!(
        case(&|v| v["body"]["order"]["fulfillment_type"] = "drone".into()),
        "body.order.fulfillment_type: unknown fulfilment type `drone` (expected deliveroo, customer, restaurant or table_service)"
    );
    let message = case(&|v| v["body"]["order"]["status_log"][1]["at"] = "yesterday".into());
    assert!(
        message.starts_with("body.order.status_log[1].at: `yesterday` is not an RFC 3339 time"),
        "{message}"
    );
    assert_eq!(
        case(&|v| {
            v["body"]["order"]["asap"] = false.into();
            v["body"]["order"]
                .as_object_mut()
                .map(|o| o.remove("prepare_for"));
        }),
        "body.order.prepare_for: a scheduled order (`asap: false`) needs its time"
    );
    assert_eq!(
        case(&|v| v["body"]["order"]["location_id"] = " ".into()),
        "body.order.location_id: is empty; the hub routes on it"
    );
    assert_eq!(
        case(&|v| v["body"]["order"]["id"] = "gb:../../admin".into()),
        "body.order.id: `gb:../../admin` is not a Deliveroo order id"
    );
    let message = case(&|v| {
        v["body"].as_object_mut().map(|b| b.remove("order"));
    });
    assert!(message.starts_with("body"), "{message}");
    assert!(message.contains("order"), "{message}");
    let message = malformed(parse(&signed(b"not json", "g-1")));
    assert!(message.starts_with("webhook body is not JSON"), "{message}");
    let message = malformed(parse(&signed(br#"{"body":{}}"#, "g-2")));
    assert!(message.contains("event"), "{message}");
}

#[test]
fn a_location_id_sent_as_a_number_is_kept_as_text() {
    let request = mutated("order-new-scheduled", |v| {
        v["body"]["order"]["location_id"] = 633910.into();
        v["body"]["order"]["order_number"] = 30184631.into();
    });
    let Inbound::Order(order) = parse(&request).expect("parse").inbound else {
        panic!("expected an order");
    };
    assert_eq!(order.channel_store_ref.as_deref(), Some("633910"));
    assert_eq!(order.channel_data["order_number"], "30184631");
}

#[test]
fn the_request_must_carry_its_guid_come_to_a_known_path_and_say_its_type() {
    let body = body("order-status-update-accepted");
    // No GUID: no dedupe key.
    let message = malformed(parse(&request(&body, None, None)));
    assert!(message.contains("X-Deliveroo-Sequence-Guid"), "{message}");
    // An unknown path segment.
    let mut wrong_path = signed(&body, "g-3");
    wrong_path.event = Some("menu".into());
    let message = malformed(parse(&wrong_path));
    assert!(message.contains("/webhooks/deliveroo/menu"), "{message}");
    // The payload type header must agree with the body (any case, `event/` optional).
    let mut typed = signed(&body, "g-4");
    typed.headers.insert(
        PAYLOAD_TYPE_HEADER,
        "EVENT/order.status_update".parse().expect("header"),
    );
    assert!(parse(&typed).is_ok());
    typed.headers.insert(
        PAYLOAD_TYPE_HEADER,
        "event/order.new".parse().expect("header"),
    );
    assert_eq!(
        malformed(parse(&typed)),
        "X-Deliveroo-Payload-Type `event/order.new` does not match the body's event `order.status_update`"
    );
}

// ---------------------------------------------------------------------------------------
// order.status_update and rider.status_update
// ---------------------------------------------------------------------------------------

#[test]
fn a_canceled_status_update_cancels_the_order() {
    let delivery = parse_fixture("order-status-update-canceled");
    assert_eq!(delivery.dedupe_key, "8f4b9a0c-5d1e-4f3a-9689-c0d1e2f3a4b5");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "gb:5a9b8c7d-6e5f-4a3b-b2c1-d0e9f8a7b6c5".into(),
            reason: Some("canceled on Deliveroo at 2026-11-20T11:59:40Z".into()),
        }
    );
}

#[test]
fn echoes_of_our_own_pushes_are_ignored_by_name() {
    let delivery = parse_fixture("order-status-update-accepted");
    assert_eq!(
        delivery.inbound,
        Inbound::Ignored {
            event: "order.status_update:accepted".into()
        }
    );
}

fn status_update(status: Option<&str>, log: &[(&str, &str)]) -> Inbound {
    let body = serde_json::json!({
        "event": "order.status_update",
        "body": {"order": {
            "id": "gb:11111111-2222-4333-8444-555555555555",
            "status": status,
            "status_log": log.iter().map(|(at, s)| serde_json::json!({"at": at, "status": s})).collect::<Vec<_>>(),
        }}
    });
    let bytes = serde_json::to_vec(&body).expect("JSON");
    parse(&signed(&bytes, "g-status")).expect("parse").inbound
}

#[test]
fn the_status_log_is_the_truth_whatever_order_events_arrive_in() {
    let id = "gb:11111111-2222-4333-8444-555555555555";
    // Entries out of order: the latest by time counts, not the last in the list or
    // `status`.
    assert_eq!(
        status_update(
            Some("placed"),
            &[
                ("2026-11-20T12:01:00Z", "confirmed"),
                ("2026-11-20T11:50:00Z", "placed"),
                ("2026-11-20T11:51:00Z", "accepted"),
            ]
        ),
        Inbound::Ignored {
            event: "order.status_update:confirmed".into()
        }
    );
    // `canceled` anywhere is final.
    assert!(matches!(
        status_update(
            Some("accepted"),
            &[
                ("2026-11-20T12:05:00Z", "canceled"),
                ("2026-11-20T12:09:00Z", "accepted"),
            ]
        ),
        Inbound::Cancelled { .. }
    ));
    // `rejected` cancels: the echo of our own rejection, or Deliveroo's auto-rejection.
    match status_update(
        None,
        &[
            ("2026-11-20T11:50:00Z", "placed"),
            ("2026-11-20T12:00:00Z", "rejected"),
        ],
    ) {
        Inbound::Cancelled {
            external_order_id,
            reason: Some(reason),
        } => {
            assert_eq!(external_order_id, id);
            assert!(
                reason.starts_with("rejected on Deliveroo at 2026-11-20T12:00:00Z"),
                "{reason}"
            );
        }
        other => panic!("expected a cancellation, got {other:?}"),
    }
    // Without a log, `status` tells.
    assert_eq!(
        status_update(Some("placed"), &[]),
        Inbound::Ignored {
            event: "order.status_update:placed".into()
        }
    );
    assert!(matches!(
        status_update(Some("canceled"), &[]),
        Inbound::Cancelled { reason: Some(r), .. } if r == "canceled on Deliveroo"
    ));
    let bytes =
        br#"{"event":"order.status_update","body":{"order":{"id":"gb:1","status_log":[]}}}"#;
    assert_eq!(
        malformed(parse(&signed(bytes, "g-5"))),
        "body.order.status: missing, and the status_log is empty"
    );
}

#[test]
fn rider_in_transit_is_a_pick_up() {
    let request = fixture_request("rider-status-update-in-transit");
    assert_eq!(request.event.as_deref(), Some("rider"));
    let delivery = parse_fixture("rider-status-update-in-transit");
    assert_eq!(delivery.dedupe_key, "9a5c0b1d-6e2f-4a4b-8790-d1e2f3a4b5c6");
    assert_eq!(
        delivery.inbound,
        Inbound::Progress {
            external_order_id: "gb:3f6c2a8e-9b1d-4c7a-8e5f-1a2b3c4d5e60".into(),
            action: StatusAction::PickedUp,
        }
    );
}

fn rider_event(riders: serde_json::Value) -> Inbound {
    let body = serde_json::json!({
        "event": "rider.status_update",
        "body": {"order_id": "gb:22222222-3333-4444-8555-666666666666", "stacked_with": [], "riders": riders}
    });
    let bytes = serde_json::to_vec(&body).expect("JSON");
    let mut request = signed(&bytes, "g-rider");
    request.event = Some(RIDER_EVENTS.into());
    parse(&request).expect("parse").inbound
}

#[test]
fn rider_events_count_the_furthest_stage_of_any_rider() {
    let log = |entries: &[(&str, &str)]| serde_json::json!({"status_log": entries.iter().map(|(at, s)| serde_json::json!({"at": at, "status": s})).collect::<Vec<_>>()});
    let id = "gb:22222222-3333-4444-8555-666666666666";
    assert_eq!(
        rider_event(serde_json::json!([log(&[
            ("2026-11-20T12:05:00Z", "rider_assigned"),
            ("2026-11-20T12:10:00Z", "rider_arrived"),
        ])])),
        Inbound::Ignored {
            event: "rider.status_update:rider_arrived".into()
        }
    );
    // A later unassignment does not undo the pick-up.
    assert_eq!(
        rider_event(serde_json::json!([log(&[
            ("2026-11-20T12:10:00Z", "rider_in_transit"),
            ("2026-11-20T12:11:00Z", "rider_unassigned"),
        ])])),
        Inbound::Progress {
            external_order_id: id.into(),
            action: StatusAction::PickedUp
        }
    );
    // Two riders: the furthest counts.
    assert_eq!(
        rider_event(serde_json::json!([
            log(&[("2026-11-20T12:05:00Z", "rider_assigned")]),
            log(&[
                ("2026-11-20T12:10:00Z", "rider_in_transit"),
                ("2026-11-20T12:25:00Z", "delivered")
            ]),
        ])),
        Inbound::Progress {
            external_order_id: id.into(),
            action: StatusAction::Delivered
        }
    );
    assert_eq!(
        rider_event(serde_json::json!([])),
        Inbound::Ignored {
            event: "rider.status_update:no_status".into()
        }
    );
}

#[test]
fn other_events_are_ignored_under_their_name() {
    let bytes = br#"{"event":"menu.upload_result","body":{"status":"ok"}}"#;
    let delivery = parse(&signed(bytes, "g-6")).expect("parse");
    assert_eq!(delivery.dedupe_key, "g-6");
    assert_eq!(
        delivery.inbound,
        Inbound::Ignored {
            event: "menu.upload_result".into()
        }
    );
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

#[test]
fn stored_events_get_an_empty_200_and_refusals_a_4xx_json_error() {
    let adapter = adapter();
    let request = fixture_request("order-status-update-accepted");
    let delivery = parse_fixture("order-status-update-accepted");
    for duplicate in [false, true] {
        let reply = adapter.reply(
            &request,
            Outcome::Accepted {
                delivery: &delivery,
                order_id: None,
                duplicate,
            },
        );
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.is_empty());
    }
    let error = ChannelError::Unauthorized("missing X-Deliveroo-Hmac-Sha256 header".into());
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(body["error"], "unauthorized");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-Deliveroo-Hmac-Sha256"))
    );
    let error = ChannelError::Malformed("body.order.items[1]: missing field `unit_price`".into());
    assert_eq!(
        adapter.reply(&request, Outcome::Refused(&error)).status,
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------------------------------
// Push planning
// ---------------------------------------------------------------------------------------

fn stored(name: &str, status: Status) -> Order {
    let order = order_of(name);
    Order {
        id: OrderId::new(),
        received_at: fixture_time(),
        updated_at: fixture_time(),
        status,
        store_id: None,
        flags: vec![],
        order,
    }
}

fn change(from: Status, action: StatusAction) -> StatusChange {
    StatusChange {
        action,
        from,
        at: at("2026-11-20T12:03:00Z"),
    }
}

/// The calls of a plan as (method, path, body).
fn calls(plan: Result<Plan, ChannelError>, id: &str) -> Vec<(Method, String, serde_json::Value)> {
    match plan {
        Ok(Plan::Calls(calls)) => calls
            .iter()
            .map(|call| {
                let (method, path) = call.endpoint(id);
                (method, path, call.body())
            })
            .collect(),
        other => panic!("expected calls, got {other:?}"),
    }
}

fn not_applicable(plan: Result<Plan, ChannelError>) -> String {
    match plan {
        Ok(Plan::NotApplicable(why)) => why,
        other => panic!("expected not applicable, got {other:?}"),
    }
}

const NOW: &str = "2026-11-20T12:04:00Z";

#[test]
fn accepting_patches_then_syncs_and_confirms_scheduled_orders() {
    let order = stored("order-new-delivery-by-deliveroo", Status::Received);
    let id = order.order.external_order_id.clone();
    let accept = change(Status::Received, StatusAction::Accept { prep_minutes: 15 });
    assert_eq!(
        calls(plan(&order, &accept, at(NOW)), &id),
        [
            (
                Method::PATCH,
                format!("/order/v1/orders/{id}"),
                serde_json::json!({"status": "accepted"})
            ),
            (
                Method::POST,
                format!("/order/v1/orders/{id}/sync_status"),
                serde_json::json!({"status": "succeeded", "occurred_at": "2026-11-20T12:03:00Z"})
            ),
        ]
    );
    // A tabletless site needs no sync status.
    let tabletless = stored("order-new-unicode-table-service", Status::Received);
    let id = tabletless.order.external_order_id.clone();
    assert_eq!(
        calls(plan(&tabletless, &accept, at(NOW)), &id),
        [(
            Method::PATCH,
            format!("/order/v1/orders/{id}"),
            serde_json::json!({"status": "accepted"})
        )]
    );
    // A scheduled order is confirmed right after it is accepted.
    let scheduled = stored("order-new-scheduled", Status::Received);
    let id = scheduled.order.external_order_id.clone();
    let bodies: Vec<serde_json::Value> = calls(plan(&scheduled, &accept, at(NOW)), &id)
        .into_iter()
        .map(|(_, _, body)| body)
        .collect();
    assert_eq!(bodies[0], serde_json::json!({"status": "accepted"}));
    assert_eq!(bodies[1]["status"], "succeeded");
    assert_eq!(bodies[2], serde_json::json!({"status": "confirmed"}));
}

#[test]
fn rejecting_names_a_documented_reason() {
    let order = stored("order-new-delivery-by-deliveroo", Status::Received);
    let id = order.order.external_order_id.clone();
    let reject = change(
        Status::Received,
        StatusAction::Reject {
            reason: "Out of dough".into(),
        },
    );
    assert_eq!(
        calls(plan(&order, &reject, at(NOW)), &id),
        [(
            Method::PATCH,
            format!("/order/v1/orders/{id}"),
            serde_json::json!({"status": "rejected", "reject_reason": "ingredient_unavailable", "notes": "Out of dough"})
        )]
    );
    // Cancel or fail before acceptance is a rejection too; after it, there is no call.
    for action in [
        StatusAction::Cancel {
            reason: "store closed early".into(),
        },
        StatusAction::Fail {
            reason: "store closed early".into(),
        },
    ] {
        let before = calls(
            plan(&order, &change(Status::Received, action.clone()), at(NOW)),
            &id,
        );
        assert_eq!(before[0].2["reject_reason"], "closing_early");
        let why = not_applicable(plan(&order, &change(Status::Preparing, action), at(NOW)));
        assert!(why.contains("no API to cancel an accepted order"), "{why}");
    }
}

#[test]
fn reject_reasons_follow_keywords_and_default_to_other() {
    for (reason, code) in [
        ("Closing early tonight", "closing_early"),
        ("store closed", "closing_early"),
        ("Too busy", "busy"),
        ("at capacity", "busy"),
        ("out of dough", "ingredient_unavailable"),
        ("Pepperoni sold out", "ingredient_unavailable"),
        ("item unavailable", "ingredient_unavailable"),
        ("customer asked", "other"),
        ("", "other"),
    ] {
        assert_eq!(reject_reason(reason), code, "{reason}");
    }
}

#[test]
fn kitchen_progress_is_a_prep_stage_at_the_time_it_happened() {
    let order = stored("order-new-pickup-nested-modifiers", Status::Accepted);
    let id = order.order.external_order_id.clone();
    for (from, action, stage) in [
        (Status::Accepted, StatusAction::Preparing, "in_kitchen"),
        (
            Status::Preparing,
            StatusAction::Ready,
            "ready_for_collection",
        ),
        (Status::Ready, StatusAction::PickedUp, "collected"),
    ] {
        assert_eq!(
            calls(plan(&order, &change(from, action), at(NOW)), &id),
            [(
                Method::POST,
                format!("/order/v1/orders/{id}/prep_stage"),
                serde_json::json!({"stage": stage, "occurred_at": "2026-11-20T12:03:00Z"})
            )]
        );
    }
    // Replayed more than an hour later: Deliveroo would refuse the time.
    let late = at(NOW) + TimeDelta::hours(2);
    let why = not_applicable(plan(
        &order,
        &change(Status::Accepted, StatusAction::Ready),
        late,
    ));
    assert!(why.contains("up to an hour"), "{why}");
}

#[test]
fn delivered_and_completed_have_no_deliveroo_call() {
    let order = stored(
        "order-new-restaurant-delivery-discount-fees",
        Status::PickedUp,
    );
    for action in [StatusAction::Delivered, StatusAction::Complete] {
        let why = not_applicable(plan(&order, &change(Status::PickedUp, action), at(NOW)));
        assert!(why.contains("`collected`"), "{why}");
    }
}

#[test]
fn a_push_refuses_an_order_id_unfit_for_a_url() {
    let mut order = stored("order-new-delivery-by-deliveroo", Status::Received);
    order.order.external_order_id = "gb:abc/../../admin".into();
    let result = plan(
        &order,
        &change(Status::Received, StatusAction::Accept { prep_minutes: 5 }),
        at(NOW),
    );
    assert!(
        matches!(&result, Err(ChannelError::Malformed(m)) if m.contains("not a Deliveroo order id")),
        "{result:?}"
    );
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

fn development() -> SecretSource {
    SecretSource::new(BTreeMap::new(), true)
}

#[test]
fn the_factory_builds_from_defaults_and_refuses_bad_options() {
    assert_eq!(Factory.id(), "deliveroo");
    assert_eq!(
        Factory.dev_secrets(),
        &[
            ("client_secret", DEV_CLIENT_SECRET),
            ("webhook_secret", DEV_WEBHOOK_SECRET)
        ]
    );
    let channel = Factory
        .build(&settings(serde_json::Value::Null, development()))
        .expect("defaults");
    assert_eq!(channel.id().as_str(), "deliveroo");
    assert_eq!(
        channel.push_rate(),
        crossdock_channel::RateLimit {
            per_second: 20,
            burst: 40
        }
    );
    assert!(
        Factory
            .build(&settings(
                serde_json::json!({
                    "base_url": "http://127.0.0.1:9/",
                    "token_url": "http://127.0.0.1:9/oauth2/token",
                    "client_id": "abc",
                    "timeout_secs": 3
                }),
                development()
            ))
            .is_ok()
    );
    let error = |options: serde_json::Value| {
        Factory
            .build(&settings(options, development()))
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    };
    assert!(error(serde_json::json!({"base_uri": "x"})).contains("base_uri"));
    assert!(error(serde_json::json!({"base_url": "ftp://x"})).contains("must be http(s)"));
    assert!(error(serde_json::json!({"token_url": "not a url"})).contains("is not a URL"));
    assert!(error(serde_json::json!({"timeout_secs": 0})).contains("at least 1"));
    assert!(error(serde_json::json!({"client_id": " "})).contains("client_id"));
    let config = DeliverooConfig::default();
    assert_eq!(config.base_url, "https://api.developers.deliveroo.com");
    assert_eq!(
        config.token_url,
        "https://auth.developers.deliveroo.com/oauth2/token"
    );
}

#[test]
fn production_needs_both_real_secrets() {
    let production = |file: &[(&str, &str)]| {
        let mut secrets = BTreeMap::new();
        secrets.insert(
            CHANNEL_ID.to_owned(),
            file.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        );
        Factory
            .build(&settings(
                serde_json::Value::Null,
                SecretSource::new(secrets, false),
            ))
            .map(|_| ())
    };
    // (These names are not set in the test environment.)
    match production(&[]) {
        Err(ConfigError::MissingSecret { name, env, .. }) => {
            assert_eq!(name, "client_secret");
            assert_eq!(env, "CROSSDOCK_SECRET_DELIVEROO_CLIENT_SECRET");
        }
        other => panic!("expected a missing secret, got {other:?}"),
    }
    match production(&[("client_secret", "real-client-secret")]) {
        Err(ConfigError::MissingSecret { name, env, .. }) => {
            assert_eq!(name, "webhook_secret");
            assert_eq!(env, "CROSSDOCK_SECRET_DELIVEROO_WEBHOOK_SECRET");
        }
        other => panic!("expected a missing secret, got {other:?}"),
    }
    assert!(
        production(&[
            ("client_secret", "real-client-secret"),
            ("webhook_secret", "real-webhook-secret")
        ])
        .is_ok()
    );
}

#[test]
fn a_production_webhook_secret_is_the_one_checked() {
    let mut secrets = BTreeMap::new();
    secrets.insert(
        CHANNEL_ID.to_owned(),
        BTreeMap::from([
            ("client_secret".to_owned(), "real-client-secret".to_owned()),
            (
                "webhook_secret".to_owned(),
                "real-webhook-secret".to_owned(),
            ),
        ]),
    );
    let channel = Factory
        .build(&settings(
            serde_json::Value::Null,
            SecretSource::new(secrets, false),
        ))
        .expect("built");
    let body = body("order-status-update-accepted");
    let guid = "g-prod";
    let dev_signed = signed(&body, guid);
    assert!(
        channel.verify(&dev_signed).is_err(),
        "the dev secret is not accepted in production"
    );
    let real = request(
        &body,
        Some(guid),
        Some(&sign(b"real-webhook-secret", guid, &body)),
    );
    assert!(channel.verify(&real).is_ok());
}
