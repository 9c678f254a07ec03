//! Unit tests of the adapter: request JWTs, money, fixtures → unified orders, the
//! CHANNELS.md §10 rules that apply to Google, replies, push planning, configuration.
//! Fixtures live in `fixtures/google/`; `UPDATE_FIXTURES=1` re-signs their `.headers`
//! files with the simulator's development key as of the kit's fixture time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::body::Bytes;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use crossdock_channel::{
    ChannelError, ChannelFactory, ChannelSettings, HeaderMap, Inbound, InboundRequest, Outcome,
    SecretSource, StatusCode, Unservable,
};
use crossdock_model::{
    ChannelId, CoordSystem, Currency, DeliveredBy, Flag, FulfillmentKind, FundedBy, Money,
    MoneyError, NewOrder, Order, OrderError, OrderId, Payment, Status, StatusAction, StatusChange,
    Timing, Unroutable,
};
use serde_json::{Value, json};

use super::*;
use crate::convert::{google_money, iso_duration, money, tax_on};
use crate::jwt::{Audience, RequestClaims};
use crate::simulator::{dev_authorization, sign_request_jwt};
use crate::wire::{GoogleMoney, Int64};

/// The conformance kit's fixture time (`crossdock_kit::FIXTURE_TIME`).
const FIXTURE_TIME: &str = "2026-11-20T12:00:00Z";

fn fixture_time() -> DateTime<Utc> {
    FIXTURE_TIME.parse().expect("fixture time")
}

fn adapter() -> Google {
    adapter_with(GoogleConfig::default())
}

fn adapter_with(config: GoogleConfig) -> Google {
    Google::new(
        config,
        DEV_GOOGLE_PUBLIC_KEY,
        DEV_SERVICE_ACCOUNT_KEY,
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").expect("USD"))
}

fn gbp(minor: i64) -> Money {
    Money::new(minor, Currency::parse("GBP").expect("GBP"))
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/google")
}

fn fixture_body(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(format!("{name}.body"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn request_at(body: &[u8], authorization: Option<&str>, at: DateTime<Utc>) -> InboundRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("header"));
    if let Some(authorization) = authorization {
        headers.insert("authorization", authorization.parse().expect("header"));
    }
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "https://hub.crossdock.example/webhooks/google".to_owned(),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: at,
    }
}

/// A request signed now and received now.
fn signed(body: &[u8]) -> InboundRequest {
    let now = Utc::now();
    request_at(body, Some(&dev_authorization(now).expect("sign")), now)
}

fn parse_fixture(name: &str) -> Delivery {
    let body = fixture_body(name);
    let request = request_at(
        &body,
        Some(&dev_authorization(fixture_time()).expect("sign")),
        fixture_time(),
    );
    let adapter = adapter();
    adapter.verify(&request).expect("verifies");
    adapter.parse(&request).expect("parses")
}

fn order_of(delivery: &Delivery) -> &NewOrder {
    match &delivery.inbound {
        Inbound::Order(order) => order,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn quote_of(delivery: &Delivery) -> &NewOrder {
    match &delivery.inbound {
        Inbound::Quote(order) => order,
        other => panic!("expected a quote, got {other:?}"),
    }
}

fn body_json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("reply is JSON")
}

fn claims(at: DateTime<Utc>) -> RequestClaims {
    RequestClaims {
        iss: GOOGLE_ISSUER.to_owned(),
        aud: Audience::One(DEV_PROJECT_ID.to_owned()),
        iat: at.timestamp(),
        exp: at.timestamp() + 3600,
        sub: None,
    }
}

fn bearer(claims: &RequestClaims, key: &str) -> String {
    format!(
        "Bearer {}",
        jwt::sign(key, Some(DEV_GOOGLE_KEY_ID), claims).expect("sign")
    )
}

// ---------------------------------------------------------------------------------------
// Fixture headers (re-signed on demand)
// ---------------------------------------------------------------------------------------

/// With `UPDATE_FIXTURES=1`, writes each fixture's `.headers` (a JWT signed as of the kit's
/// fixture time with the simulator's key); always checks that each one verifies then.
#[test]
fn fixture_headers_are_signed_as_of_the_fixture_time() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".body").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6, "fixtures: {names:?}");
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        let authorization = dev_authorization(fixture_time()).expect("sign");
        for name in &names {
            let text = format!(
                "# Google Ordering End-to-End request, signed with the simulator's development key \
                 as of {FIXTURE_TIME}\nContent-Type: application/json\nUser-Agent: \
                 Google-Actions-Ordering\nAuthorization: {authorization}\n"
            );
            std::fs::write(fixtures_dir().join(format!("{name}.headers")), text)
                .expect("write headers");
        }
    }
    let adapter = adapter();
    for name in &names {
        let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.headers")))
            .unwrap_or_else(|e| panic!("{name}.headers: {e} (UPDATE_FIXTURES=1 writes it)"));
        let headers = crossdock_channel::normalize::parse_headers(&text).expect("headers");
        let mut request = request_at(&fixture_body(name), None, fixture_time());
        request.headers = headers;
        adapter
            .verify(&request)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        adapter
            .parse(&request)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------
// Request JWTs
// ---------------------------------------------------------------------------------------

#[test]
fn a_fresh_google_jwt_verifies_with_or_without_the_bearer_scheme() {
    let body = fixture_body("submit-delivery-nyc");
    let now = Utc::now();
    let authorization = dev_authorization(now).expect("sign");
    let adapter = adapter();
    assert!(
        adapter
            .verify(&request_at(&body, Some(&authorization), now))
            .is_ok()
    );
    let bare = authorization.trim_start_matches("Bearer ");
    assert!(adapter.verify(&request_at(&body, Some(bare), now)).is_ok());
}

#[test]
fn the_jwt_does_not_cover_the_body() {
    // Documented behaviour: the token proves the sender, not the payload.
    let now = Utc::now();
    let authorization = dev_authorization(now).expect("sign");
    let adapter = adapter();
    assert!(
        adapter
            .verify(&request_at(b"{}", Some(&authorization), now))
            .is_ok()
    );
}

#[test]
fn every_changed_byte_of_the_authorization_header_is_refused() {
    let body = fixture_body("checkout-delivery-nyc");
    let authorization = dev_authorization(fixture_time()).expect("sign");
    let adapter = adapter();
    let mut refused = 0;
    for index in 0..authorization.len() {
        let mut bytes = authorization.clone().into_bytes();
        bytes[index] ^= 0x01;
        let Ok(value) = String::from_utf8(bytes) else {
            continue;
        };
        let Ok(value) = value.parse::<axum::http::HeaderValue>() else {
            continue;
        };
        let request = request_at(&body, value.to_str().ok(), fixture_time());
        let result = adapter.verify(&request);
        assert!(
            matches!(result, Err(ChannelError::Unauthorized(_))),
            "byte {index} changed but got {result:?}"
        );
        refused += 1;
    }
    assert!(refused > 300, "only {refused} variants tried");
}

#[test]
fn missing_garbled_or_foreign_tokens_are_unauthorized() {
    let body = fixture_body("submit-delivery-nyc");
    let now = Utc::now();
    let adapter = adapter();
    let unauthorized = |authorization: Option<&str>| match adapter.verify(&request_at(
        &body,
        authorization,
        now,
    )) {
        Err(ChannelError::Unauthorized(message)) => message,
        other => panic!("{authorization:?}: expected unauthorized, got {other:?}"),
    };
    assert_eq!(
        unauthorized(None),
        "missing Authorization header (Google's signed JWT)"
    );
    assert!(unauthorized(Some("Bearer ")).contains("no token"));
    assert!(unauthorized(Some("Bearer not.a.jwt")).contains("unreadable"));
    // Signed by another key (our own service account's).
    let foreign = bearer(&claims(now), DEV_SERVICE_ACCOUNT_KEY);
    assert!(unauthorized(Some(&foreign)).contains("does not verify"));
    // Another project.
    let mut other = claims(now);
    other.aud = Audience::Many(vec!["someone-elses-project".into()]);
    let message = unauthorized(Some(&bearer(&other, DEV_GOOGLE_PRIVATE_KEY)));
    assert!(
        message.contains("not this project `crossdock-dev-ordering`"),
        "{message}"
    );
    // Not Google.
    let mut other = claims(now);
    other.iss = "https://evil.example".into();
    let message = unauthorized(Some(&bearer(&other, DEV_GOOGLE_PRIVATE_KEY)));
    assert!(message.contains("not by Google"), "{message}");
    // HS256 with the public key as the secret (the classic key-confusion attack).
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(now),
        &jsonwebtoken::EncodingKey::from_secret(DEV_GOOGLE_PUBLIC_KEY.as_bytes()),
    )
    .expect("hs256");
    let message = unauthorized(Some(&format!("Bearer {hs}")));
    assert!(message.contains("RS256"), "{message}");
    // A lower-case scheme is not what Google sends; the value is then not a JWT.
    let lower = dev_authorization(now)
        .expect("sign")
        .replacen("Bearer", "bearer", 1);
    assert!(unauthorized(Some(&lower)).contains("unreadable"));
}

#[test]
fn an_audience_list_naming_the_project_is_accepted() {
    let now = Utc::now();
    let mut many = claims(now);
    many.aud = Audience::Many(vec!["other".into(), DEV_PROJECT_ID.into()]);
    let authorization = bearer(&many, DEV_GOOGLE_PRIVATE_KEY);
    assert!(
        adapter()
            .verify(&request_at(b"{}", Some(&authorization), now))
            .is_ok()
    );
}

#[test]
fn token_times_are_checked_against_the_receipt_time_with_leeway() {
    let signed_at = fixture_time();
    let authorization = dev_authorization(signed_at).expect("sign");
    let adapter = adapter();
    let verify_at =
        |at: DateTime<Utc>| adapter.verify(&request_at(b"{}", Some(&authorization), at));
    assert!(verify_at(signed_at).is_ok());
    assert!(
        verify_at(signed_at + TimeDelta::seconds(3600 + 59)).is_ok(),
        "within leeway"
    );
    assert!(matches!(
        verify_at(signed_at + TimeDelta::seconds(3600 + 60)),
        Err(ChannelError::Stale(m)) if m.contains("expired")
    ));
    assert!(
        verify_at(signed_at - TimeDelta::seconds(59)).is_ok(),
        "clock skew"
    );
    assert!(matches!(
        verify_at(signed_at - TimeDelta::seconds(61)),
        Err(ChannelError::Stale(m)) if m.contains("issued at")
    ));
}

#[test]
fn a_jwks_document_selects_the_key_by_kid() {
    // The development public key as a JWKS entry: n and e from the PEM's DER.
    let jwks = dev_jwks();
    let verifier = jwt::Verifier::new(
        &jwks,
        DEV_PROJECT_ID.into(),
        vec![GOOGLE_ISSUER.into()],
        std::time::Duration::from_secs(0),
    )
    .expect("jwks");
    let now = Utc::now();
    let authorization = dev_authorization(now).expect("sign");
    assert!(verifier.verify(Some(&authorization), now).is_ok());
    // A token whose kid is unknown is tried against every key and still verifies.
    let token = sign_request_jwt(DEV_GOOGLE_PRIVATE_KEY, Some("rotated"), DEV_PROJECT_ID, now)
        .expect("sign");
    assert!(verifier.verify(Some(&token), now).is_ok());
    // A key that is not Google's does not.
    let foreign = bearer(&claims(now), DEV_SERVICE_ACCOUNT_KEY);
    assert!(matches!(
        verifier.verify(Some(&foreign), now),
        Err(ChannelError::Unauthorized(_))
    ));
    // Unusable key material is refused at start-up.
    for bad in [
        "",
        "{\"keys\": []}",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ] {
        assert!(
            jwt::Verifier::new(bad, "p".into(), vec!["i".into()], Default::default()).is_err(),
            "{bad}"
        );
    }
}

/// The development public key as a JWKS document, built from the PEM's DER (SPKI →
/// RSAPublicKey → modulus and exponent).
fn dev_jwks() -> String {
    let b64: String = DEV_GOOGLE_PUBLIC_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64_decode(&b64);
    // Walk the DER: SEQUENCE { SEQUENCE {alg}, BIT STRING { SEQUENCE { INTEGER n, INTEGER e } } }.
    fn read(der: &[u8], at: usize) -> (u8, usize, usize) {
        let tag = der[at];
        let first = der[at + 1] as usize;
        if first < 0x80 {
            (tag, at + 2, first)
        } else {
            let count = first & 0x7f;
            let len = der[at + 2..at + 2 + count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (tag, at + 2 + count, len)
        }
    }
    let (_, outer, _) = read(&der, 0);
    let (_, alg, alg_len) = read(&der, outer);
    let (_, bits, _) = read(&der, alg + alg_len);
    let (_, rsa, _) = read(&der, bits + 1);
    let (_, n_at, n_len) = read(&der, rsa);
    let (_, e_at, e_len) = read(&der, n_at + n_len);
    let trim = |bytes: &[u8]| {
        bytes
            .iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<_>>()
    };
    let n = base64url(&trim(&der[n_at..n_at + n_len]));
    let e = base64url(&trim(&der[e_at..e_at + e_len]));
    json!({ "keys": [ {
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": DEV_GOOGLE_KEY_ID, "n": n, "e": e
    } ] })
    .to_string()
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = B64.iter().position(|b| *b == c).expect("base64") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

fn base64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out.replace('+', "-").replace('/', "_")
}

// ---------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------

fn gm(code: &str, units: Option<Int64>, nanos: Option<i64>) -> GoogleMoney {
    GoogleMoney {
        currency_code: code.to_owned(),
        units,
        nanos,
    }
}

fn text(units: &str) -> Option<Int64> {
    Some(Int64::Text(units.to_owned()))
}

#[test]
fn units_and_nanos_convert_exactly_by_currency_exponent() {
    let cases = [
        (gm("USD", text("39"), Some(600_000_000)), 3960, "USD"),
        (gm("USD", text("0"), Some(990_000_000)), 99, "USD"),
        (gm("USD", None, None), 0, "USD"),
        (
            gm("USD", Some(Int64::Number(12)), Some(50_000_000)),
            1205,
            "USD",
        ),
        (gm("USD", text("-5"), Some(-250_000_000)), -525, "USD"),
        (gm("USD", text("0"), Some(-10_000_000)), -1, "USD"),
        (gm("JPY", text("980"), None), 980, "JPY"),
        (gm("KWD", text("1"), Some(234_000_000)), 1234, "KWD"),
        (gm("gbp", text(" 12 "), Some(340_000_000)), 1234, "GBP"),
        (gm("USD", text("+7"), None), 700, "USD"),
    ];
    for (value, minor, code) in cases {
        let converted = money(&value, "x").unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(converted.minor, minor, "{value:?}");
        assert_eq!(converted.currency.code(), code);
        // And back: the exact inverse.
        assert_eq!(
            money(&google_money(converted), "y"),
            Ok(converted),
            "{value:?}"
        );
    }
}

#[test]
fn money_that_is_not_a_whole_minor_unit_or_not_money_is_refused_with_its_field() {
    let err = |value: GoogleMoney| money(&value, "order.totalPrice.amount").expect_err("refused");
    assert!(matches!(
        err(gm("USD", text("1"), Some(5_000_000))),
        crossdock_channel::convert::ConvertError::Money { field, source: MoneyError::FractionalMinorUnit { .. } }
            if field == "order.totalPrice.amount"
    ));
    assert!(matches!(
        err(gm("JPY", text("980"), Some(500_000_000))),
        crossdock_channel::convert::ConvertError::Money {
            source: MoneyError::FractionalMinorUnit { .. },
            ..
        }
    ));
    assert!(matches!(
        err(gm("USD", text("1.5"), None)),
        crossdock_channel::convert::ConvertError::Money { field, source: MoneyError::NotANumber { .. } }
            if field == "order.totalPrice.amount.units"
    ));
    assert!(matches!(
        err(gm("USD", text("99999999999999999999"), None)),
        crossdock_channel::convert::ConvertError::Money {
            source: MoneyError::Overflow { .. },
            ..
        }
    ));
    assert!(matches!(
        err(gm("USD", text("92233720368547759"), None)),
        crossdock_channel::convert::ConvertError::Money {
            source: MoneyError::Overflow { .. },
            ..
        }
    ));
    assert!(matches!(
        err(gm("US$", text("1"), None)),
        crossdock_channel::convert::ConvertError::Money { field, source: MoneyError::BadCurrency(_) }
            if field == "order.totalPrice.amount.currencyCode"
    ));
    let sign = err(gm("USD", text("1"), Some(-10_000_000))).to_string();
    assert_eq!(
        sign,
        "order.totalPrice.amount.nanos: -10000000 does not have the sign of units 1"
    );
    let range = err(gm("USD", text("1"), Some(1_000_000_000))).to_string();
    assert!(range.contains("outside"), "{range}");
    // As the hub sees it: an unacceptable order naming the amount.
    let error: ChannelError = err(gm("USD", text("1"), Some(5_000_000))).into();
    assert!(matches!(
        error,
        ChannelError::Order(OrderError::MoneyAt { ref field, .. }) if field == "order.totalPrice.amount"
    ));
}

#[test]
fn tax_rounds_half_away_from_zero_in_decimal() {
    let rate = |r: &str| r.parse::<rust_decimal::Decimal>().expect("rate");
    // 24.97 × 8.875 % = 2.2160875 → 2.22
    assert_eq!(tax_on(usd(2497), rate("8.875")), Ok(usd(222)));
    // 2.00 × 12.5 % = 0.25 exactly; 1.00 × 0.5 % = 0.005 → 0.01 (half up)
    assert_eq!(tax_on(usd(200), rate("12.5")), Ok(usd(25)));
    assert_eq!(tax_on(usd(100), rate("0.5")), Ok(usd(1)));
    assert_eq!(tax_on(usd(0), rate("20")), Ok(usd(0)));
}

#[test]
fn iso_durations_are_read_exactly() {
    assert_eq!(iso_duration("P0M"), Some(0));
    assert_eq!(iso_duration("PT0S"), Some(0));
    assert_eq!(iso_duration("P0D"), Some(0));
    assert_eq!(iso_duration("PT45M"), Some(2700));
    assert_eq!(iso_duration("P1DT2H30M"), Some(95_400));
    assert_eq!(iso_duration("P1W"), Some(604_800));
    assert_eq!(iso_duration("P1M"), None, "months have no fixed length");
    assert_eq!(iso_duration("P"), None);
    assert_eq!(iso_duration("PT"), None);
    assert_eq!(iso_duration("P1H"), None, "hours belong after T");
    assert_eq!(iso_duration("PT5M1H"), None, "units out of order");
    assert_eq!(iso_duration("2026-11-20T12:00:00Z"), None);
}

#[test]
fn display_codes_are_the_tail_of_googles_id() {
    assert_eq!(display_code("01412971004192156198"), "G-156198");
    assert_eq!(display_code("ab-c"), "G-ABC");
}

// ---------------------------------------------------------------------------------------
// Fixtures → unified orders (CHANNELS.md §8 and §10)
// ---------------------------------------------------------------------------------------

#[test]
fn a_plain_delivery_order() {
    let delivery = parse_fixture("submit-delivery-nyc");
    assert_eq!(delivery.dedupe_key, "submit:01412971004192156198");
    let order = order_of(&delivery);
    // Identity: the 20-digit id stays a string, leading zero and all.
    assert_eq!(order.external_order_id, "01412971004192156198");
    assert_eq!(order.display_code.as_deref(), Some("G-156198"));
    assert_eq!(
        order.channel_store_ref.as_deref(),
        Some("crossdockpizza-nyc-001")
    );
    assert_eq!(order.channel.as_str(), "google");
    assert_eq!(
        order.placed_at,
        Utc.with_ymd_and_hms(2026, 11, 20, 11, 59, 58)
            .single()
            .expect("t")
            + TimeDelta::milliseconds(412)
    );
    // Fulfilment: delivered by the store, ASAP, WGS 84.
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    assert_eq!(order.fulfillment.promised_at, None);
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(address.lines, vec!["350 W 20th St", "Apt 4B"]);
    assert_eq!(address.city.as_deref(), Some("New York"));
    assert_eq!(address.postcode.as_deref(), Some("10011"));
    assert_eq!(address.country.as_deref(), Some("US"));
    let coordinates = address.coordinates.expect("coordinates");
    assert_eq!((coordinates.lat, coordinates.lng), (40.7443, -74.0022));
    assert_eq!(coordinates.system, CoordSystem::Wgs84);
    // Customer.
    assert_eq!(order.customer.name, "Maya Rodriguez");
    assert_eq!(order.customer.phone.as_deref(), Some("+16465550134"));
    assert_eq!(order.customer.email.as_deref(), Some("maya.r@example.com"));
    // Lines: payload order, line price = line total, unit derived.
    assert_eq!(order.lines.len(), 2);
    let pizza = &order.lines[0];
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!(pizza.channel_item_id, "offer/PZ-MARG-L");
    assert_eq!(
        (pizza.quantity, pizza.unit_price, pizza.total),
        (1, usd(1899), usd(1899))
    );
    // A zero-price option is kept.
    assert_eq!(pizza.modifiers.len(), 1);
    assert_eq!(pizza.modifiers[0].unit_price, usd(0));
    let cola = &order.lines[1];
    assert_eq!(
        (cola.quantity, cola.unit_price, cola.total),
        (2, usd(299), usd(598))
    );
    // Money as given.
    let totals = &order.totals;
    assert_eq!(totals.subtotal, usd(2497));
    assert_eq!(totals.fees.delivery, usd(299));
    assert_eq!(totals.tax, usd(222));
    assert_eq!(totals.total, usd(3018));
    assert!(!totals.total_is_derived);
    assert_eq!(order.payment, Payment::Prepaid);
    assert_eq!(totals.cash_due, None);
    assert_eq!(order.channel_data, json!({ "is_in_sandbox": false }));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn pickup_with_nested_options_and_notes_paid_at_the_store() {
    let order = order_of(&parse_fixture("submit-pickup-nested-options-london")).clone();
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.delivered_by, None);
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(
        order.notes.as_deref(),
        Some("Please cut the pizzas into squares")
    );
    let pizza = &order.lines[0];
    assert_eq!(pizza.quantity, 2);
    assert_eq!(pizza.total, gbp(3778));
    // 37.78 / 2 − (2.50 + 0 + 0.80 + 0.60) = 14.99, the menu price.
    assert_eq!(pizza.unit_price, gbp(1499));
    assert_eq!(
        pizza.notes.as_deref(),
        Some("Well done, please: extra crispy; Half & half: toppings on the left half")
    );
    let names: Vec<&str> = pizza.modifiers.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Cheese-stuffed crust", "Half & half"]);
    let half = &pizza.modifiers[1];
    assert_eq!(half.plu.as_deref(), Some("MOD-HALF-HALF"));
    assert_eq!(half.channel_item_id.as_deref(), Some("offer/MOD-HALF-HALF"));
    let nested: Vec<(&str, Money)> = half
        .modifiers
        .iter()
        .map(|m| (m.plu.as_deref().unwrap_or(""), m.unit_price))
        .collect();
    assert_eq!(
        nested,
        [("MOD-HALF-PEPP", gbp(80)), ("MOD-HALF-MUSH", gbp(60))]
    );
    assert_eq!(pizza.computed_total(), Ok(pizza.total));
    // An option of quantity 2 per item.
    let knots = &order.lines[1];
    assert_eq!(knots.modifiers[0].quantity, 2);
    assert_eq!(knots.unit_price, gbp(499));
    // Options never become top-level lines.
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.payment, Payment::PayAtStore);
    assert_eq!(order.totals.cash_due, Some(gbp(4435)));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn discounts_fees_and_tip() {
    let order = order_of(&parse_fixture("submit-discount-fees-tip-nyc")).clone();
    let totals = &order.totals;
    assert_eq!(totals.subtotal, usd(3827));
    assert_eq!(totals.discounts.len(), 1);
    assert_eq!(totals.discounts[0].label, "FIRSTORDER: $5 off");
    assert_eq!(totals.discounts[0].amount, usd(500), "kept positive");
    assert_eq!(totals.discounts[0].funded_by, FundedBy::Unknown);
    assert_eq!(totals.fees.delivery, usd(349));
    assert_eq!(totals.fees.service, usd(150));
    assert_eq!(totals.fees.packaging, usd(10));
    assert_eq!(totals.fees.other, usd(0));
    assert_eq!(totals.tax, usd(340));
    assert_eq!(totals.tip, usd(400));
    assert_eq!(totals.total, usd(4576));
    assert_eq!(
        order
            .fulfillment
            .address
            .as_ref()
            .and_then(|a| a.instructions.as_deref()),
        Some("Buzz 3R, leave with the doorman")
    );
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_scheduled_pickup() {
    let order = order_of(&parse_fixture("submit-scheduled-pickup-nyc")).clone();
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 23, 30, 0)
        .single()
        .expect("t");
    assert_eq!(order.fulfillment.timing, Timing::Scheduled { at });
    assert_eq!(order.fulfillment.promised_at, Some(at));
    assert_eq!(order.customer.email, None);
    assert_eq!(order.lines[1].unit_price, usd(599));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn unicode_and_emoji_survive_and_escapes_are_decoded() {
    let order = order_of(&parse_fixture("submit-unicode-delivery-london")).clone();
    assert_eq!(order.customer.name, "Zoë Ørsted-Nguyễn 🍕");
    assert_eq!(
        order.notes.as_deref(),
        Some("Birthday order 🎂 — please add a candle if you can ✨")
    );
    let veggie = &order.lines[0];
    assert_eq!(veggie.name, "Garden Veggie (Large) 🌱");
    assert_eq!(veggie.modifiers[0].name, "Jalapeños 🌶️", "\\u00f1 decoded");
    assert_eq!(
        veggie.notes.as_deref(),
        Some("Nö onions, bitte — allergy ⚠️; Jalapeños 🌶️: extra hot 🔥")
    );
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(
        address.lines,
        vec!["Flat 3, Café Building", "1 Rivington St"]
    );
    assert_eq!(
        address.instructions.as_deref(),
        Some("Ring twice 🔔 — 3rd floor, code #1234")
    );
    assert_eq!(order.payment, Payment::CashOnDelivery);
    assert_eq!(order.totals.cash_due, Some(gbp(2347)));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_checkout_is_a_quote_priced_with_the_configured_fees() {
    let delivery = parse_fixture("checkout-delivery-nyc");
    assert_eq!(delivery.dedupe_key, "checkout:Q2hlY2tvdXROWUMwMDE");
    let quote = quote_of(&delivery);
    assert_eq!(quote.external_order_id, "checkout:Q2hlY2tvdXROWUMwMDE");
    assert_eq!(quote.placed_at, fixture_time());
    assert_eq!(quote.totals.subtotal, usd(3548));
    assert_eq!(quote.totals.tip, usd(300), "the customer's gratuity");
    assert_eq!(quote.totals.fees.delivery, usd(0), "no pricing configured");
    assert_eq!(quote.totals.total, usd(3848));
    assert!(quote.totals.total_is_derived);
    assert_eq!(
        quote.payment,
        Payment::CashOnDelivery,
        "ON_FULFILLMENT offered"
    );
    assert_eq!(quote.check(), Ok(vec![]));

    // With prices for USD: the delivery fee and the tax are added.
    let mut config = GoogleConfig::default();
    config.pricing.insert(
        "USD".into(),
        PricingConfig {
            delivery_fee: Some("2.99".into()),
            tax_rate_percent: Some("8.875".into()),
        },
    );
    let adapter = adapter_with(config);
    let request = request_at(
        &fixture_body("checkout-delivery-nyc"),
        Some(&dev_authorization(fixture_time()).expect("sign")),
        fixture_time(),
    );
    let delivery = adapter.parse(&request).expect("parses");
    let quote = quote_of(&delivery);
    assert_eq!(quote.totals.fees.delivery, usd(299));
    // 35.48 × 8.875 % = 3.14885 → 3.15
    assert_eq!(quote.totals.tax, usd(315));
    assert_eq!(quote.totals.total, usd(3548 + 299 + 315 + 300));
}

#[test]
fn a_scheduled_pickup_checkout() {
    let delivery = parse_fixture("checkout-scheduled-pickup-london");
    let quote = quote_of(&delivery);
    assert_eq!(quote.fulfillment.kind, FulfillmentKind::Pickup);
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 18, 45, 0)
        .single()
        .expect("t");
    assert_eq!(quote.fulfillment.timing, Timing::Scheduled { at });
    assert_eq!(quote.totals.total, gbp(2398));
    assert_eq!(quote.payment, Payment::PayAtStore);
}

#[test]
fn every_fixture_parses_into_a_checked_order() {
    for name in [
        "submit-delivery-nyc",
        "submit-pickup-nested-options-london",
        "submit-discount-fees-tip-nyc",
        "submit-scheduled-pickup-nyc",
        "submit-unicode-delivery-london",
        "checkout-delivery-nyc",
        "checkout-scheduled-pickup-london",
    ] {
        let delivery = parse_fixture(name);
        let order = match &delivery.inbound {
            Inbound::Order(order) | Inbound::Quote(order) => order,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(order.check(), Ok(vec![]), "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Parse errors name the field
// ---------------------------------------------------------------------------------------

fn submit_value() -> Value {
    serde_json::from_slice(&fixture_body("submit-delivery-nyc")).expect("json")
}

fn parse_value(value: &Value) -> Result<Delivery, ChannelError> {
    let body = serde_json::to_vec(value).expect("json");
    adapter().parse(&request_at(&body, None, fixture_time()))
}

const ORDER: &str = "/inputs/0/arguments/0/transactionDecisionValue/order";

fn malformed(value: &Value) -> String {
    match parse_value(value) {
        Err(ChannelError::Malformed(message)) => message,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn parse_errors_name_the_field() {
    assert!(malformed(&json!("nope")).starts_with("request: invalid type"));
    assert_eq!(
        malformed(&json!({ "inputs": [] })),
        "request: `inputs` is empty; expected a checkout or a submitted order"
    );
    assert!(
        malformed(&json!({ "inputs": [{ "intent": "actions.intent.MAIN" }] }))
            .starts_with("inputs[0].intent: `actions.intent.MAIN` is neither")
    );

    let mut value2 = submit_value();
    *value2
        .pointer_mut(&format!(
            "{ORDER}/finalOrder/cart/lineItems/1/price/amount/units"
        ))
        .expect("units") = json!(true);
    let message = malformed(&value2);
    assert!(
        message.starts_with(
            "request: inputs[0].arguments[0].transactionDecisionValue.order.finalOrder.cart.lineItems[1].price.amount.units"
        ),
        "{message}"
    );

    let mut value = submit_value();
    value
        .pointer_mut(&format!("{ORDER}/finalOrder/cart/lineItems/0"))
        .expect("line")
        .as_object_mut()
        .expect("object")
        .remove("quantity");
    assert_eq!(
        malformed(&value),
        "inputs[0].arguments[0].transactionDecisionValue.order.finalOrder.cart.lineItems[0].quantity: the line has no quantity"
    );

    let mut value = submit_value();
    *value
        .pointer_mut(&format!("{ORDER}/finalOrder/cart/merchant/id"))
        .expect("id") = json!(" ");
    assert!(malformed(&value).ends_with("finalOrder.cart.merchant.id: the cart names no merchant"));

    let mut value = submit_value();
    *value
        .pointer_mut(&format!(
            "{ORDER}/finalOrder/cart/extension/fulfillmentPreference"
        ))
        .expect("pref") = json!({});
    assert!(
        malformed(&value).ends_with("fulfillmentInfo: neither `delivery` nor `pickup` is chosen")
    );

    let mut value = submit_value();
    *value
        .pointer_mut(&format!("{ORDER}/paymentInfo/paymentType"))
        .expect("type") = json!("BARTER");
    assert!(malformed(&value).ends_with("paymentInfo.paymentType: unknown payment type `BARTER`"));

    let mut value = submit_value();
    *value
        .pointer_mut(&format!("{ORDER}/orderDate"))
        .expect("date") = json!("yesterday");
    assert!(malformed(&value).contains("orderDate: `yesterday` is not an RFC 3339 time"));

    // A line total that does not divide by the quantity has no unit price.
    let mut value = submit_value();
    *value
        .pointer_mut(&format!(
            "{ORDER}/finalOrder/cart/lineItems/1/price/amount/nanos"
        ))
        .expect("nanos") = json!(970_000_000);
    let message = malformed(&value);
    assert!(
        message.contains(
            "lineItems[1].price.amount: the line total 5.97 USD does not divide by the quantity 2"
        ),
        "{message}"
    );

    // A checkout without a cart.
    let checkout = json!({
        "conversation": { "conversationId": "c1" },
        "inputs": [{ "intent": INTENT_CHECKOUT, "arguments": [{}] }]
    });
    assert_eq!(
        malformed(&checkout),
        "inputs[0].arguments[0].extension: the checkout carries no cart"
    );
}

#[test]
fn a_fractional_cent_fails_the_order_naming_the_amount() {
    let mut value = submit_value();
    *value
        .pointer_mut(&format!("{ORDER}/finalOrder/totalPrice/amount/nanos"))
        .expect("nanos") = json!(185_000_000);
    match parse_value(&value) {
        Err(ChannelError::Order(OrderError::MoneyAt { field, source })) => {
            assert_eq!(
                field,
                "inputs[0].arguments[0].transactionDecisionValue.order.finalOrder.totalPrice.amount"
            );
            assert!(matches!(source, MoneyError::FractionalMinorUnit { .. }));
        }
        other => panic!("expected a money error, got {other:?}"),
    }
}

#[test]
fn totals_are_kept_as_sent_and_flagged_not_fixed() {
    let mut value = submit_value();
    *value
        .pointer_mut(&format!("{ORDER}/finalOrder/totalPrice/amount/units"))
        .expect("units") = json!("99");
    let delivery = parse_value(&value).expect("parses");
    let order = order_of(&delivery);
    assert_eq!(order.totals.total, usd(9918));
    assert_eq!(
        order.check(),
        Ok(vec![Flag::TotalsMismatch {
            expected: usd(3018),
            reported: usd(9918)
        }])
    );
}

#[test]
fn a_missing_subtotal_or_total_is_derived() {
    let mut value = submit_value();
    let final_order = value
        .pointer_mut(&format!("{ORDER}/finalOrder"))
        .expect("final");
    final_order
        .as_object_mut()
        .expect("object")
        .remove("totalPrice");
    final_order["otherItems"]
        .as_array_mut()
        .expect("items")
        .remove(0);
    let delivery = parse_value(&value).expect("parses");
    let order = order_of(&delivery);
    assert_eq!(order.totals.subtotal, usd(2497), "Σ lines");
    assert_eq!(order.totals.total, usd(3018));
    assert!(order.totals.total_is_derived);
}

#[test]
fn unknown_fields_are_ignored_and_units_may_be_numbers() {
    let mut value = submit_value();
    value["somethingNew"] = json!({ "nested": [1, 2, 3] });
    *value
        .pointer_mut(&format!(
            "{ORDER}/finalOrder/cart/lineItems/0/price/amount/units"
        ))
        .expect("units") = json!(18);
    value
        .pointer_mut(&format!("{ORDER}/finalOrder/cart/lineItems/0"))
        .expect("line")["futureField"] = json!(true);
    let delivery = parse_value(&value).expect("parses");
    assert_eq!(order_of(&delivery).lines[0].total, usd(1899));
}

#[test]
fn a_nonzero_duration_is_counted_from_the_order_date() {
    let mut value = submit_value();
    *value.pointer_mut(&format!("{ORDER}/finalOrder/cart/extension/fulfillmentPreference/fulfillmentInfo/delivery/deliveryTimeIso8601")).expect("time") = json!("PT2H");
    let delivery = parse_value(&value).expect("parses");
    let order = order_of(&delivery);
    assert_eq!(
        order.fulfillment.timing,
        Timing::Scheduled {
            at: order.placed_at + TimeDelta::hours(2)
        }
    );
    // A window: its start.
    *value.pointer_mut(&format!("{ORDER}/finalOrder/cart/extension/fulfillmentPreference/fulfillmentInfo/delivery/deliveryTimeIso8601")).expect("time") = json!("2026-11-20T19:00:00Z/2026-11-20T19:15:00Z");
    let delivery = parse_value(&value).expect("parses");
    assert_eq!(
        order_of(&delivery).fulfillment.timing,
        Timing::Scheduled {
            at: Utc
                .with_ymd_and_hms(2026, 11, 20, 19, 0, 0)
                .single()
                .expect("t")
        }
    );
}

#[test]
fn a_delivery_without_a_location_is_refused_by_the_order_check() {
    let mut value = submit_value();
    value
        .pointer_mut(&format!("{ORDER}/finalOrder/cart/extension"))
        .expect("ext")
        .as_object_mut()
        .expect("object")
        .remove("location");
    let delivery = parse_value(&value).expect("parses");
    assert_eq!(order_of(&delivery).check(), Err(OrderError::MissingAddress));
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

#[test]
fn a_stored_submit_is_answered_created_with_the_required_fields() {
    let adapter = adapter();
    let request = signed(&fixture_body("submit-delivery-nyc"));
    let delivery = adapter.parse(&request).expect("parses");
    for duplicate in [false, true] {
        let reply = adapter.reply(
            &request,
            Outcome::Accepted {
                delivery: &delivery,
                order_id: Some(OrderId::new()),
                duplicate,
            },
        );
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.content_type, Some("application/json"));
        let body = body_json(&reply);
        let update =
            &body["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["orderUpdate"];
        assert_eq!(update["actionOrderId"], "01412971004192156198");
        assert_eq!(update["orderState"]["state"], "CREATED");
        assert_eq!(update["orderState"]["label"], "Order received");
        assert_eq!(update["receipt"]["userVisibleOrderId"], "G-156198");
        assert_eq!(
            update["updateTime"],
            json!(
                request
                    .received_at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )
        );
        assert_eq!(
            update["orderManagementActions"],
            json!([{
                "type": "CUSTOMER_SERVICE",
                "button": {
                    "title": "Contact customer service",
                    "openUrlAction": { "url": "https://crossdock.example/help" }
                }
            }])
        );
        assert_eq!(body["expectUserResponse"], false);
    }
}

#[test]
fn a_servable_quote_is_answered_with_the_priced_cart() {
    let mut config = GoogleConfig::default();
    config.pricing.insert(
        "USD".into(),
        PricingConfig {
            delivery_fee: Some("2.99".into()),
            tax_rate_percent: Some("8.875".into()),
        },
    );
    let adapter = adapter_with(config);
    let body = fixture_body("checkout-delivery-nyc");
    let request = signed(&body);
    let delivery = adapter.parse(&request).expect("parses");
    let order = quote_of(&delivery);
    let reply = adapter.reply(
        &request,
        Outcome::Quoted {
            order,
            verdict: Ok(()),
        },
    );
    assert_eq!(reply.status, StatusCode::OK);
    let answer = body_json(&reply);
    let checkout = &answer["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["checkoutResponse"];
    let sent: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        checkout["proposedOrder"]["cart"], sent["inputs"][0]["arguments"][0]["extension"],
        "the cart goes back unmodified"
    );
    let other: Vec<(String, String, String, i64)> = checkout["proposedOrder"]["otherItems"]
        .as_array()
        .expect("otherItems")
        .iter()
        .map(|item| {
            (
                item["type"].as_str().unwrap_or("").to_owned(),
                item["price"]["type"].as_str().unwrap_or("").to_owned(),
                item["price"]["amount"]["units"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                item["price"]["amount"]["nanos"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        other,
        [
            (
                "SUBTOTAL".into(),
                "ESTIMATE".into(),
                "35".into(),
                480_000_000
            ),
            (
                "DELIVERY".into(),
                "ESTIMATE".into(),
                "2".into(),
                990_000_000
            ),
            ("TAX".into(), "ESTIMATE".into(), "3".into(), 150_000_000),
            ("GRATUITY".into(), "ESTIMATE".into(), "3".into(), 0),
        ]
    );
    assert_eq!(
        checkout["proposedOrder"]["totalPrice"],
        json!({ "type": "ESTIMATE", "amount": { "currencyCode": "USD", "units": "44", "nanos": 620_000_000 } })
    );
    assert_eq!(
        checkout["proposedOrder"]["extension"]["availableFulfillmentOptions"][0]["fulfillmentInfo"],
        json!({ "delivery": { "deliveryTimeIso8601": "P0M" } })
    );
    assert_eq!(
        checkout["paymentOptions"]["actionProvidedOptions"]["paymentType"],
        "ON_FULFILLMENT"
    );
}

#[test]
fn an_unservable_quote_is_answered_with_the_matching_food_error() {
    let adapter = adapter();
    let request = signed(&fixture_body("checkout-delivery-nyc"));
    let delivery = adapter.parse(&request).expect("parses");
    let order = quote_of(&delivery);
    let cases = [
        (
            Unservable::NoStore {
                kind: Unroutable::OutOfArea,
                reason: "outside every zone".into(),
            },
            "OUT_OF_SERVICE_AREA",
        ),
        (
            Unservable::NoStore {
                kind: Unroutable::NoLocation,
                reason: "no location".into(),
            },
            "OUT_OF_SERVICE_AREA",
        ),
        (
            Unservable::NoStore {
                kind: Unroutable::StoreUnavailable,
                reason: "NYC-001 is closed now".into(),
            },
            "CLOSED",
        ),
        (
            Unservable::NoStore {
                kind: Unroutable::StoreUnavailable,
                reason: "NYC-001 is at capacity".into(),
            },
            "NO_CAPACITY",
        ),
        (
            Unservable::NoStore {
                kind: Unroutable::UnknownStore,
                reason: "no store for merchant x".into(),
            },
            "CLOSED",
        ),
        (
            Unservable::NoStore {
                kind: Unroutable::UnknownItem,
                reason: "item unavailable: PLU PZ-HAWAII is not on the chain's menu".into(),
            },
            "AVAILABILITY_CHANGED",
        ),
        (
            Unservable::Invalid("the order has no items".into()),
            "INVALID",
        ),
    ];
    for (why, expected) in cases {
        let reason = why.to_string();
        let reply = adapter.reply(
            &request,
            Outcome::Quoted {
                order,
                verdict: Err(why),
            },
        );
        assert_eq!(reply.status, StatusCode::OK, "{expected}");
        let body = body_json(&reply);
        let error =
            &body["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["error"];
        assert_eq!(
            error["@type"],
            "type.googleapis.com/google.actions.v2.orders.FoodErrorExtension"
        );
        assert_eq!(error["foodOrderErrors"][0]["error"], expected);
        assert_eq!(error["foodOrderErrors"][0]["description"], json!(reason));
    }
}

#[test]
fn refusals_follow_googles_conventions() {
    let adapter = adapter();
    // A bad JWT: 401, whatever the body.
    let request = request_at(&fixture_body("submit-delivery-nyc"), None, Utc::now());
    let error = adapter.verify(&request).expect_err("unsigned");
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(&reply)["error"], "unauthorized");

    // A submitted order the hub cannot take: a REJECTED order update (200).
    let mut value = submit_value();
    *value
        .pointer_mut(&format!("{ORDER}/finalOrder/totalPrice/amount/nanos"))
        .expect("nanos") = json!(185_000_000);
    let body = serde_json::to_vec(&value).expect("json");
    let request = signed(&body);
    let error = adapter.parse(&request).expect_err("fractional cent");
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::OK);
    let answer = body_json(&reply);
    let update =
        &answer["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["orderUpdate"];
    assert_eq!(update["orderState"]["state"], "REJECTED");
    assert_eq!(update["actionOrderId"], "01412971004192156198");
    assert_eq!(update["rejectionInfo"]["type"], "UNKNOWN");
    assert!(
        update["rejectionInfo"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("totalPrice.amount")
    );
    assert_eq!(
        update["orderManagementActions"][0]["type"],
        "CUSTOMER_SERVICE"
    );

    // The order check's refusal (the hub's, after parsing) is answered the same way.
    let error = ChannelError::Order(OrderError::NoLines);
    let reply = adapter.reply(
        &signed(&fixture_body("submit-delivery-nyc")),
        Outcome::Refused(&error),
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        body_json(&reply)["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["orderUpdate"]
            ["orderState"]["state"],
        "REJECTED"
    );

    // A checkout that cannot be read: FoodErrorExtension INVALID (200).
    let mut value: Value =
        serde_json::from_slice(&fixture_body("checkout-delivery-nyc")).expect("json");
    *value
        .pointer_mut("/inputs/0/arguments/0/extension/lineItems/0/price/amount/nanos")
        .expect("nanos") = json!(1);
    let request = signed(&serde_json::to_vec(&value).expect("json"));
    let error = adapter.parse(&request).expect_err("fraction");
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::OK);
    let answer = body_json(&reply);
    assert_eq!(
        answer["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["error"]["foodOrderErrors"]
            [0]["error"],
        "INVALID"
    );

    // Not a Google request at all: 400.
    let request = signed(b"{\"hello\": 1}");
    let error = adapter.parse(&request).expect_err("not google");
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------------------
// Pushes
// ---------------------------------------------------------------------------------------

fn stored(name: &str, status: Status) -> Order {
    let delivery = parse_fixture(name);
    let new = order_of(&delivery).clone();
    Order {
        id: OrderId::new(),
        received_at: fixture_time(),
        updated_at: fixture_time(),
        status,
        store_id: None,
        flags: vec![],
        order: new,
    }
}

fn change(action: StatusAction, from: Status) -> StatusChange {
    StatusChange {
        action,
        from,
        at: Utc
            .with_ymd_and_hms(2026, 11, 20, 12, 3, 0)
            .single()
            .expect("t"),
    }
}

fn service() -> CustomerService {
    CustomerService {
        title: "Contact customer service".into(),
        url: "tel:+12125550100".into(),
    }
}

fn planned(order: &Order, action: StatusAction, from: Status) -> Plan {
    plan(order, &change(action, from), &service(), 20).expect("plan")
}

fn sent(plan: Plan) -> AsyncOrderUpdateRequest {
    match plan {
        Plan::Send(body) => *body,
        Plan::NotApplicable(why) => panic!("expected an update, got not applicable: {why}"),
    }
}

#[test]
fn each_action_maps_onto_googles_state_per_fulfilment() {
    let delivery = stored("submit-delivery-nyc", Status::Accepted);
    let pickup = stored("submit-pickup-nested-options-london", Status::Accepted);
    let state_of =
        |order: &Order, action: StatusAction, from: Status| match planned(order, action, from) {
            Plan::Send(body) => Some(body.custom_push_message.order_update.order_state.state),
            Plan::NotApplicable(_) => None,
        };
    let accept = || StatusAction::Accept { prep_minutes: 15 };
    for (order, expected) in [
        (
            &delivery,
            [
                Some("CONFIRMED"),
                Some("IN_PREPARATION"),
                None,
                Some("IN_TRANSIT"),
                Some("FULFILLED"),
                Some("FULFILLED"),
            ],
        ),
        (
            &pickup,
            [
                Some("CONFIRMED"),
                Some("IN_PREPARATION"),
                Some("READY_FOR_PICKUP"),
                None,
                Some("FULFILLED"),
                Some("FULFILLED"),
            ],
        ),
    ] {
        let got = [
            state_of(order, accept(), Status::Received),
            state_of(order, StatusAction::Preparing, Status::Accepted),
            state_of(order, StatusAction::Ready, Status::Preparing),
            state_of(order, StatusAction::PickedUp, Status::Ready),
            state_of(order, StatusAction::Delivered, Status::PickedUp),
            state_of(order, StatusAction::Complete, Status::Ready),
        ];
        let expected: Vec<Option<String>> = expected.iter().map(|s| s.map(str::to_owned)).collect();
        assert_eq!(got.to_vec(), expected, "{:?}", order.order.fulfillment.kind);
    }
    // What Google's state reads back as.
    for (google, kind, status) in [
        ("CREATED", FulfillmentKind::Delivery, Status::Received),
        ("CONFIRMED", FulfillmentKind::Pickup, Status::Accepted),
        ("IN_PREPARATION", FulfillmentKind::Pickup, Status::Preparing),
        ("READY_FOR_PICKUP", FulfillmentKind::Pickup, Status::Ready),
        ("IN_TRANSIT", FulfillmentKind::Delivery, Status::PickedUp),
        ("FULFILLED", FulfillmentKind::Delivery, Status::Delivered),
        ("FULFILLED", FulfillmentKind::Pickup, Status::Completed),
        ("REJECTED", FulfillmentKind::Pickup, Status::Rejected),
        ("CANCELLED", FulfillmentKind::Delivery, Status::Cancelled),
    ] {
        assert_eq!(unified_status(google, kind), Some(status), "{google}");
    }
    assert_eq!(unified_status("RETURNED", FulfillmentKind::Pickup), None);
}

#[test]
fn an_update_carries_id_receipt_time_actions_and_the_sandbox_flag() {
    let order = stored("submit-delivery-nyc", Status::Received);
    let body = sent(planned(
        &order,
        StatusAction::Accept { prep_minutes: 15 },
        Status::Received,
    ));
    let value = serde_json::to_value(&body).expect("json");
    assert_eq!(
        value,
        json!({
            "isInSandbox": false,
            "customPushMessage": {
                "orderUpdate": {
                    "actionOrderId": "01412971004192156198",
                    "orderState": { "state": "CONFIRMED", "label": "Order confirmed" },
                    "updateTime": "2026-11-20T12:03:00Z",
                    "receipt": { "userVisibleOrderId": "G-156198" },
                    "orderManagementActions": [{
                        "type": "CUSTOMER_SERVICE",
                        "button": { "title": "Contact customer service", "openUrlAction": { "url": "tel:+12125550100" } }
                    }],
                    "infoExtension": {
                        "@type": "type.googleapis.com/google.actions.v2.orders.FoodOrderUpdateExtension",
                        // 12:03 + 15 min preparation + 20 min delivery, a 15-minute window.
                        "estimatedFulfillmentTimeIso8601": "2026-11-20T12:38:00Z/2026-11-20T12:53:00Z"
                    }
                }
            }
        })
    );
    let mut sandboxed = stored("submit-pickup-nested-options-london", Status::Received);
    sandboxed.order.channel_data = json!({ "is_in_sandbox": true });
    let body = sent(planned(
        &sandboxed,
        StatusAction::Accept { prep_minutes: 10 },
        Status::Received,
    ));
    assert!(body.is_in_sandbox);
    assert_eq!(
        body.custom_push_message
            .order_update
            .info_extension
            .and_then(|e| e.estimated_fulfillment_time_iso8601)
            .as_deref(),
        Some("2026-11-20T12:13:00Z/2026-11-20T12:28:00Z"),
        "pickup: ready after the preparation time"
    );
    // A scheduled order is estimated at its time.
    let scheduled = stored("submit-scheduled-pickup-nyc", Status::Received);
    let body = sent(planned(
        &scheduled,
        StatusAction::Accept { prep_minutes: 10 },
        Status::Received,
    ));
    assert_eq!(
        body.custom_push_message
            .order_update
            .info_extension
            .and_then(|e| e.estimated_fulfillment_time_iso8601)
            .as_deref(),
        Some("2026-11-20T23:30:00Z/2026-11-20T23:45:00Z")
    );
}

#[test]
fn rejections_and_cancellations_carry_their_reasons() {
    let order = stored("submit-delivery-nyc", Status::Received);
    let body = sent(planned(
        &order,
        StatusAction::Reject {
            reason: "Store is closed for a private event".into(),
        },
        Status::Received,
    ));
    let update = body.custom_push_message.order_update;
    assert_eq!(update.order_state.state, "REJECTED");
    let rejection = update.rejection_info.expect("rejectionInfo");
    assert_eq!(rejection.kind, "UNKNOWN");
    assert_eq!(
        rejection.reason.as_deref(),
        Some("Store is closed for a private event")
    );
    assert_eq!(
        update.info_extension.expect("extension").food_order_errors[0].error,
        "CLOSED"
    );

    assert_eq!(
        respond::rejection_type("requested slot is full"),
        "UNAVAILABLE_SLOT"
    );
    assert_eq!(respond::rejection_type("card declined"), "PAYMENT_DECLINED");
    assert_eq!(
        respond::rejection_type("promo code expired"),
        "PROMO_NOT_APPLICABLE"
    );
    assert_eq!(
        respond::rejection_type("customer blocked for fraud"),
        "INELIGIBLE"
    );
    assert_eq!(respond::rejection_type("out of dough"), "UNKNOWN");

    // Fail: a rejection before acceptance, a cancellation after.
    let body = sent(planned(
        &order,
        StatusAction::Fail {
            reason: "no store".into(),
        },
        Status::Received,
    ));
    assert_eq!(
        body.custom_push_message.order_update.order_state.state,
        "REJECTED"
    );
    let body = sent(planned(
        &order,
        StatusAction::Fail {
            reason: "oven broke".into(),
        },
        Status::Preparing,
    ));
    let update = body.custom_push_message.order_update;
    assert_eq!(update.order_state.state, "CANCELLED");
    assert_eq!(
        update.cancellation_info.and_then(|c| c.reason).as_deref(),
        Some("oven broke")
    );

    let body = sent(planned(
        &order,
        StatusAction::Cancel {
            reason: "customer called".into(),
        },
        Status::Accepted,
    ));
    let update = body.custom_push_message.order_update;
    assert_eq!(update.order_state.state, "CANCELLED");
    assert_eq!(update.order_state.label, "Order cancelled");
    assert_eq!(
        update.cancellation_info.and_then(|c| c.reason).as_deref(),
        Some("customer called")
    );
}

#[test]
fn not_applicable_actions_say_why() {
    let delivery = stored("submit-delivery-nyc", Status::Preparing);
    match planned(&delivery, StatusAction::Ready, Status::Preparing) {
        Plan::NotApplicable(why) => assert!(why.contains("READY_FOR_PICKUP"), "{why}"),
        other => panic!("{other:?}"),
    }
    let pickup = stored("submit-pickup-nested-options-london", Status::Ready);
    match planned(&pickup, StatusAction::PickedUp, Status::Ready) {
        Plan::NotApplicable(why) => assert!(why.contains("FULFILLED"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_order_without_an_id_cannot_be_pushed() {
    let mut order = stored("submit-delivery-nyc", Status::Received);
    order.order.external_order_id = " ".into();
    assert!(matches!(
        plan(
            &order,
            &change(StatusAction::Preparing, Status::Accepted),
            &service(),
            20
        ),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn the_push_rate_stays_under_the_simulated_quota() {
    let rate = adapter().push_rate();
    assert_eq!((rate.per_second, rate.burst), (20, 20));
    let sim = simulator::SimConfig::default().rate_limit.expect("limit");
    assert!(f64::from(rate.per_second) < sim.per_second && f64::from(rate.burst) <= sim.burst);
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

fn settings(
    options: Value,
    development: bool,
    file: BTreeMap<String, BTreeMap<String, String>>,
) -> ChannelSettings {
    ChannelSettings {
        channel: CHANNEL_ID.to_owned(),
        options,
        secrets: SecretSource::new(file, development),
        dev_secrets: Factory.dev_secrets(),
        http: reqwest::Client::new(),
    }
}

#[test]
fn the_factory_builds_with_development_defaults() {
    let channel = Factory
        .build(&settings(Value::Null, true, BTreeMap::new()))
        .expect("builds");
    assert_eq!(channel.id().as_str(), "google");
    assert_eq!(Factory.id(), "google");
    let names: Vec<&str> = Factory.dev_secrets().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, SECRETS);
}

#[test]
fn production_needs_real_secrets_and_names_them() {
    let error = Factory
        .build(&settings(Value::Null, false, BTreeMap::new()))
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("CROSSDOCK_SECRET_GOOGLE_VERIFICATION_KEYS"),
        "{error}"
    );
    // With Google's keys (a JWKS) and the service account's JSON key file, it builds.
    let key_file = json!({
        "type": "service_account",
        "client_email": "orders@chain-prod.iam.gserviceaccount.com",
        "private_key": DEV_SERVICE_ACCOUNT_KEY,
        "token_uri": "https://oauth2.googleapis.com/token"
    })
    .to_string();
    let file = BTreeMap::from([(
        "google".to_owned(),
        BTreeMap::from([
            ("verification_keys".to_owned(), dev_jwks()),
            ("service_account_key".to_owned(), key_file.clone()),
        ]),
    )]);
    assert!(
        Factory
            .build(&settings(
                json!({ "project_id": "chain-prod" }),
                false,
                file
            ))
            .is_ok()
    );
    let google = Google::new(
        GoogleConfig::default(),
        DEV_GOOGLE_PUBLIC_KEY,
        &key_file,
        reqwest::Client::new(),
    )
    .expect("builds");
    assert_eq!(
        google.service_account_email(),
        "orders@chain-prod.iam.gserviceaccount.com"
    );
}

#[test]
fn bad_options_and_keys_are_refused_with_what_to_fix() {
    let build = |options: Value| {
        Factory
            .build(&settings(options, true, BTreeMap::new()))
            .err()
            .map(|e| e.to_string())
    };
    assert!(
        build(json!({ "nonsense": 1 }))
            .expect("unknown field")
            .contains("unknown field `nonsense`")
    );
    assert!(
        build(json!({ "api_base_url": "ftp://x" }))
            .expect("scheme")
            .contains("must be http(s)")
    );
    assert!(
        build(json!({ "token_url": "not a url" }))
            .expect("url")
            .contains("is not a URL")
    );
    assert!(
        build(json!({ "customer_service_url": "call us" }))
            .expect("service")
            .contains("https:, tel: or mailto:")
    );
    assert!(
        build(json!({ "timeout_secs": 0 }))
            .expect("timeout")
            .contains("at least 1")
    );
    assert!(
        build(json!({ "project_id": "" }))
            .expect("project")
            .contains("`project_id` is empty")
    );
    assert!(
        build(json!({ "payment_options": [] }))
            .expect("payment")
            .contains("JSON object")
    );
    assert!(
        build(json!({ "pricing": { "USD": { "delivery_fee": "2.999" } } }))
            .expect("fee")
            .contains("pricing.USD.delivery_fee")
    );
    assert!(
        build(json!({ "pricing": { "USD": { "tax_rate_percent": "150" } } }))
            .expect("rate")
            .contains("within 0 to 100")
    );
    assert!(
        build(json!({ "pricing": { "US": {} } }))
            .expect("currency")
            .contains("pricing.US")
    );
    assert!(
        build(
            json!({ "pricing": { "USD": { "delivery_fee": "2.99", "tax_rate_percent": "8.875" } } })
        )
        .is_none()
    );
    let bad_key = Google::new(
        GoogleConfig::default(),
        DEV_GOOGLE_PUBLIC_KEY,
        "not a key",
        reqwest::Client::new(),
    )
    .expect_err("refused")
    .to_string();
    assert!(
        bad_key.contains("secret `service_account_key`"),
        "{bad_key}"
    );
    let bad_keys = Google::new(
        GoogleConfig::default(),
        "nothing",
        DEV_SERVICE_ACCOUNT_KEY,
        reqwest::Client::new(),
    )
    .expect_err("refused")
    .to_string();
    assert!(
        bad_keys.contains("secret `verification_keys`"),
        "{bad_keys}"
    );
}

#[test]
fn the_dev_keys_are_pairs_and_distinct() {
    let now = Utc::now();
    // Google's pair.
    let token = sign_request_jwt(DEV_GOOGLE_PRIVATE_KEY, None, DEV_PROJECT_ID, now).expect("sign");
    assert!(
        adapter()
            .verify(&request_at(b"{}", Some(&token), now))
            .is_ok()
    );
    // The service account's pair: the simulator's key checks the adapter's assertion.
    let assertion = jwt::sign(
        DEV_SERVICE_ACCOUNT_KEY,
        None,
        &json!({ "iss": "x", "exp": now.timestamp() + 60 }),
    )
    .expect("sign");
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(DEV_SERVICE_ACCOUNT_PUBLIC_KEY.as_bytes())
        .expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims.clear();
    assert!(jsonwebtoken::decode::<Value>(&assertion, &key, &validation).is_ok());
    assert_ne!(DEV_GOOGLE_PRIVATE_KEY, DEV_SERVICE_ACCOUNT_KEY);
    let _ = ChannelId::parse(CHANNEL_ID).expect("id");
}
