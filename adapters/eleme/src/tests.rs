//! Unit tests of the adapter: push signatures, envelopes and message types, fixtures →
//! unified orders (every CHANNELS.md §10 rule that applies to Ele.me), money, replies,
//! push planning and the call signature, error classification, the factory, and the
//! simulator's own checks of calls.

mod fixtures;

use std::collections::BTreeMap;

use axum::body::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, Delivery, HeaderMap, Inbound,
    InboundRequest, Method, Outcome, SecretSource, StatusCode,
};
use crossdock_model::{
    CoordSystem, DeliveredBy, FulfillmentKind, FundedBy, MoneyError, NewOrder, Order, OrderError,
    OrderId, Payment, Status, StatusAction, StatusChange, Timing,
};
use secrecy::SecretString;

use self::fixtures::*;
use super::*;
use crate::convert::{beijing_time, plain_decimal, yuan};
use crate::simulator::{DEFAULT_APP_ID, DEFAULT_MERCHANT_USER_ID, signed_push, yuan_text};
use crate::wire::{Num, RpcError};

fn config() -> ElemeConfig {
    ElemeConfig::default()
}

fn adapter_with(config: ElemeConfig) -> Eleme {
    Eleme::new(
        config,
        SecretString::from(DEV_APP_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn adapter() -> Eleme {
    adapter_with(config())
}

fn request(body: &[u8]) -> InboundRequest {
    request_with(Method::POST, body)
}

fn request_with(method: Method, body: &[u8]) -> InboundRequest {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        "application/json; charset=utf-8".parse().expect("header"),
    );
    InboundRequest {
        method,
        event: None,
        url: "https://hub.crossdock.example/webhooks/eleme".to_owned(),
        query: None,
        headers,
        body: Bytes::copy_from_slice(body),
        received_at: Utc::now(),
    }
}

/// A push of `kind` with `message`, signed with the development secret.
fn signed(kind: i64, message: &str, shop: &str) -> Vec<u8> {
    signed_push(
        kind,
        message,
        shop,
        "100007375000000001",
        1_795_176_000_000,
        DEFAULT_APP_ID,
        DEFAULT_MERCHANT_USER_ID,
        DEV_APP_SECRET,
    )
}

/// Verifies and parses, as the hub does.
fn receive(body: &[u8]) -> Result<Delivery, ChannelError> {
    let adapter = adapter();
    let request = request(body);
    adapter.verify(&request)?;
    adapter.parse(&request)
}

fn order_of(name: &str) -> NewOrder {
    match receive(&body(name)).expect("fixture parses").inbound {
        Inbound::Order(order) => *order,
        other => panic!("{name}: expected an order, got {other:?}"),
    }
}

fn minor(order: &NewOrder) -> impl Fn(crossdock_model::Money) -> i64 + '_ {
    move |money| {
        assert_eq!(money.currency, order.totals.currency);
        money.minor
    }
}

/// A signed order push whose order JSON was changed by `change`.
fn order_push_with(name: &str, change: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let envelope: serde_json::Value = serde_json::from_slice(&body(name)).expect("envelope");
    let mut order: serde_json::Value =
        serde_json::from_str(envelope["message"].as_str().expect("message")).expect("order");
    change(&mut order);
    let shop = order["shopId"].to_string();
    signed(10, &order.to_string(), shop.trim_matches('"'))
}

// ---------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------

#[test]
fn md5_is_upper_case_hex() {
    assert_eq!(wire::md5_upper(&[b""]), "D41D8CD98F00B204E9800998ECF8427E");
    assert_eq!(
        wire::md5_upper(&[b"a", b"bc"]),
        "900150983CD24FB0D6963F7D28E17F72"
    );
}

#[test]
fn the_push_signature_concatenates_sorted_pairs_and_the_secret() {
    let values = BTreeMap::from([
        ("type".to_owned(), "10".to_owned()),
        ("appId".to_owned(), "7".to_owned()),
        ("message".to_owned(), r#"{"a":"b"}"#.to_owned()),
        ("userId".to_owned(), "351234567890123457".to_owned()),
    ]);
    let expected =
        wire::md5_upper(&[br#"appId=7message={"a":"b"}type=10userId=351234567890123457secret"#]);
    assert_eq!(wire::push_signature(&values, "secret"), expected);
}

#[test]
fn every_fixture_verifies_as_saved() {
    let adapter = adapter();
    for case in cases() {
        let committed = body(case.name);
        assert!(
            adapter.verify(&request(&committed)).is_ok(),
            "{} fails verification",
            case.name
        );
    }
}

#[test]
fn any_changed_byte_fails_verification_or_parsing() {
    let adapter = adapter();
    for name in ["order-delivery", "cancel-14-before-acceptance"] {
        let body = body(name);
        for index in 0..body.len() {
            let mut tampered = body.clone();
            tampered[index] ^= 0x01;
            let request = request(&tampered);
            let passed = adapter
                .verify(&request)
                .and_then(|()| adapter.parse(&request))
                .is_ok();
            assert!(!passed, "{name}: byte {index} changed but still accepted");
        }
    }
}

#[test]
fn the_message_is_signed_as_its_decoded_text() {
    // The message string carries escaped quotes; the signature covers the JSON document
    // inside it, not the escaped form.
    let message = r#"{"orderId":"3038412207651894401","state":"valid","note":"a \"b\" / 中"}"#;
    let body = signed(12, message, "501893201");
    let text = String::from_utf8(body.clone()).expect("utf-8");
    assert!(text.contains(r#"\"orderId\""#), "{text}");
    let envelope = wire::signed_envelope(&body).expect("readable");
    assert_eq!(envelope.values["message"], message);
    assert!(adapter().verify(&request(&body)).is_ok());
}

#[test]
fn a_64_bit_user_id_is_signed_with_its_exact_digits() {
    let body = signed(12, r#"{"orderId":"1"}"#, "501893201");
    let text = String::from_utf8(body.clone()).expect("utf-8");
    assert!(text.contains(r#""userId":351234567890123457"#), "{text}");
    // The value f64 would give is a different number: a reader that rounds cannot verify.
    let rounded = (DEFAULT_MERCHANT_USER_ID as f64) as u64;
    assert_ne!(rounded, DEFAULT_MERCHANT_USER_ID);
    let envelope = wire::signed_envelope(&body).expect("readable");
    assert_eq!(envelope.values["userId"], "351234567890123457");
    let mut values = envelope.values.clone();
    values.insert("userId".into(), rounded.to_string());
    assert_ne!(
        wire::push_signature(&values, DEV_APP_SECRET),
        envelope.signature
    );
    assert!(adapter().verify(&request(&body)).is_ok());
}

#[test]
fn missing_wrong_case_wrong_key_and_ambiguous_signatures_are_unauthorized() {
    let body = body("order-delivery");
    let envelope: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let signature = envelope["signature"]
        .as_str()
        .expect("signature")
        .to_owned();
    let text = String::from_utf8(body.clone()).expect("utf-8");
    let unauthorized = |body: &[u8]| match adapter().verify(&request(body)) {
        Err(ChannelError::Unauthorized(message)) => message,
        other => panic!("expected unauthorized, got {other:?}"),
    };

    let lower = text.replace(&signature, &signature.to_ascii_lowercase());
    assert!(unauthorized(lower.as_bytes()).contains("upper-case"));

    let missing = text.replace(&format!(r#""signature":"{signature}","#), "");
    assert!(unauthorized(missing.as_bytes()).contains("no `signature`"));

    let other_key = signed_push(
        10,
        envelope["message"].as_str().expect("message"),
        "501893201",
        "200007261120195801",
        1_795_175_885_312,
        DEFAULT_APP_ID,
        DEFAULT_MERCHANT_USER_ID,
        "someone-else",
    );
    assert!(unauthorized(&other_key).contains("does not match"));

    let duplicated = text.replacen('{', r#"{"type":10,"#, 1);
    assert!(unauthorized(duplicated.as_bytes()).contains("appears twice"));

    let nested = text.replacen('{', r#"{"extra":{"a":1},"#, 1);
    assert!(unauthorized(nested.as_bytes()).contains("not a string or a number"));

    assert!(unauthorized(b"[1,2]").contains("not a JSON object"));
    assert!(unauthorized(b"not json").contains("not a JSON object"));
}

// ---------------------------------------------------------------------------------------
// Pings, envelopes and message types
// ---------------------------------------------------------------------------------------

#[test]
fn an_empty_request_is_a_ping_answered_ok() {
    let adapter = adapter();
    for (method, body) in [(Method::GET, &b""[..]), (Method::POST, &b" \n"[..])] {
        let request = request_with(method, body);
        assert!(adapter.verify(&request).is_ok());
        let delivery = adapter.parse(&request).expect("a ping parses");
        assert_eq!(delivery.dedupe_key, PING_KEY);
        assert_eq!(
            delivery.inbound,
            Inbound::Ignored {
                event: "eleme.ping".to_owned()
            }
        );
        let reply = adapter.reply(
            &request,
            Outcome::Accepted {
                delivery: &delivery,
                order_id: None,
                duplicate: true,
            },
        );
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, br#"{"message":"ok"}"#);
    }
}

#[test]
fn the_dedupe_key_is_the_request_id() {
    let delivery = receive(&body("order-delivery")).expect("parses");
    assert_eq!(delivery.dedupe_key, "200007261120195801");
    let delivery = receive(&body("delivery-55-picked-up")).expect("parses");
    assert_eq!(delivery.dedupe_key, "100007375120195909");
}

#[test]
fn cancellations_name_the_order_the_type_and_who() {
    let delivery = receive(&body("cancel-14-before-acceptance")).expect("parses");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: DELIVERY_ORDER_ID.to_owned(),
            reason: Some(
                "Ele.me: cancelled before acceptance (type 14, by the customer)".to_owned()
            ),
        }
    );
    let delivery = receive(&body("cancel-23-request-agreed")).expect("parses");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: DISCOUNT_ORDER_ID.to_owned(),
            reason: Some("Ele.me: cancel request agreed (type 23): 地址填错了".to_owned()),
        }
    );
    for kind in [15, 17, 25] {
        let message = r#"{"orderId":"3038412207651894401","state":"invalid","role":2}"#;
        let inbound = receive(&signed(kind, message, "501893201"))
            .expect("parses")
            .inbound;
        assert!(
            matches!(&inbound, Inbound::Cancelled { external_order_id, reason: Some(reason) }
                if external_order_id == DELIVERY_ORDER_ID && reason.contains(&format!("type {kind}"))
                    && reason.contains("the Ele.me system")),
            "type {kind}: {inbound:?}"
        );
    }
}

#[test]
fn courier_progress_is_read_from_the_delivery_state() {
    let progress = |body: &[u8]| receive(body).expect("parses").inbound;
    assert_eq!(
        progress(&body("delivery-55-picked-up")),
        Inbound::Progress {
            external_order_id: UNICODE_ORDER_ID.to_owned(),
            action: StatusAction::PickedUp,
        }
    );
    assert_eq!(
        progress(&body("delivery-56-delivered")),
        Inbound::Progress {
            external_order_id: UNICODE_ORDER_ID.to_owned(),
            action: StatusAction::Delivered,
        }
    );
    // Without a state, 55 and 56 are read by their type.
    assert_eq!(
        progress(&signed(56, r#"{"orderId":"42"}"#, "501893201")),
        Inbound::Progress {
            external_order_id: "42".to_owned(),
            action: StatusAction::Delivered,
        }
    );
    for (kind, state) in [
        (51, "tobeAssignedMerchant"),
        (52, "tobeAssignedCourier"),
        (53, "tobeFetched"),
        (54, "arrived"),
        (57, "cancelled"),
        (60, "selfDelivery"),
    ] {
        let message = format!(r#"{{"orderId":"42","state":"{state}","subState":"noSubstate"}}"#);
        assert_eq!(
            progress(&signed(kind, &message, "501893201")),
            Inbound::Ignored {
                event: format!("eleme.{kind}.delivery.{state}")
            }
        );
    }
}

#[test]
fn other_types_are_ignored_under_telling_names() {
    let delivery = receive(&body("status-12-merchant-accepted")).expect("parses");
    assert_eq!(
        delivery.inbound,
        Inbound::Ignored {
            event: "eleme.12.merchant_accepted".to_owned()
        }
    );
    for (kind, name) in [
        (18, "completed"),
        (20, "cancel_requested"),
        (21, "cancel_request_withdrawn"),
        (22, "cancel_request_refused_by_merchant"),
        (24, "cancel_request_in_arbitration"),
        (26, "cancel_rejected_by_arbitration"),
        (30, "refund_requested"),
        (33, "refund_agreed_by_merchant"),
        (36, "refund_rejected_by_arbitration"),
        (45, "reminder"),
        (46, "reminder_replied"),
        (91, "shop_status"),
        (92, "shop_status"),
        (100, "unknown"),
    ] {
        let inbound = receive(&signed(kind, r#"{"orderId":"42"}"#, "501893201"))
            .expect("parses")
            .inbound;
        assert_eq!(
            inbound,
            Inbound::Ignored {
                event: format!("eleme.{kind}.{name}")
            }
        );
    }
}

#[test]
fn malformed_pushes_name_what_is_wrong() {
    let malformed = |body: &[u8]| match receive(body) {
        Err(ChannelError::Malformed(message)) => message,
        other => panic!("expected malformed, got {other:?}"),
    };
    assert!(malformed(&signed(10, "not json", "501893201")).starts_with("message: "));
    assert!(
        malformed(&signed(14, r#"{"state":"invalid"}"#, "501893201"))
            .contains("message.orderId: missing")
    );
    let price = order_push_with("order-delivery", |order| {
        order["groups"][0]["items"][1]["price"] = serde_json::json!("eight");
    });
    let message = malformed(&price);
    assert!(
        message.starts_with("message.groups[0].items[1].price: expected a number"),
        "{message}"
    );
    let no_total = order_push_with("order-delivery", |order| {
        order["totalPrice"] = serde_json::Value::Null;
    });
    assert_eq!(malformed(&no_total), "order.totalPrice: missing");
    let group = order_push_with("order-delivery", |order| {
        order["groups"][0]["type"] = serde_json::json!("combo");
    });
    assert!(malformed(&group).starts_with("order.groups[0].type: unknown group type `combo`"));
    let geo = order_push_with("order-delivery", |order| {
        order["deliveryGeo"] = serde_json::json!("31.22");
    });
    assert!(malformed(&geo).starts_with("order.deliveryGeo: `31.22`"));
    let time = order_push_with("order-delivery", |order| {
        order["createdAt"] = serde_json::json!("yesterday");
    });
    assert!(malformed(&time).starts_with("order.createdAt: `yesterday` is not a time"));
    let other_shop = order_push_with("order-delivery", |order| {
        order["shopId"] = serde_json::json!(502117658);
    });
    let body = String::from_utf8(other_shop).expect("utf-8");
    // Re-sign it as if it came for the first shop.
    let envelope: serde_json::Value = serde_json::from_str(&body).expect("json");
    let forged = signed(
        10,
        envelope["message"].as_str().expect("message"),
        "501893201",
    );
    assert!(malformed(&forged).starts_with("order.shopId: the order is for shop 502117658"));
    let big_id = signed(10, r#"{"id":1.5}"#, "501893201");
    assert!(malformed(&big_id).starts_with("message.id: expected an integer or a string id"));
    let no_request_id = String::from_utf8(signed(12, r#"{"orderId":"1"}"#, "501893201"))
        .expect("utf-8")
        .replace(r#""requestId":"100007375000000001""#, r#""requestId":"""#);
    // Re-sign the edited envelope.
    let values = wire::signed_envelope(no_request_id.as_bytes())
        .expect("readable")
        .values;
    let resigned = no_request_id.replace(
        &wire::signed_envelope(no_request_id.as_bytes())
            .expect("readable")
            .signature,
        &wire::push_signature(&values, DEV_APP_SECRET),
    );
    assert_eq!(malformed(resigned.as_bytes()), "envelope.requestId: empty");
}

// ---------------------------------------------------------------------------------------
// Fixtures → unified orders (CHANNELS.md §10)
// ---------------------------------------------------------------------------------------

#[test]
fn the_delivery_fixture_follows_the_rules() {
    let order = order_of("order-delivery");
    let minor = minor(&order);
    assert_eq!(order.channel.as_str(), "eleme");
    assert_eq!(order.external_order_id, DELIVERY_ORDER_ID);
    assert_eq!(order.display_code.as_deref(), Some("12"));
    assert_eq!(order.channel_store_ref.as_deref(), Some(SHOP_JINGAN));
    assert_eq!(order.channel_data["open_id"], "SHA-001");
    assert_eq!(order.channel_data["shop_id"], SHOP_JINGAN);
    // The 64-bit merchant account, exactly.
    assert_eq!(order.channel_data["merchant_user_id"], "351234567890123457");
    // Beijing 19:58:03 is 11:58:03 UTC.
    assert_eq!(
        order.placed_at,
        Utc.with_ymd_and_hms(2026, 11, 20, 11, 58, 3)
            .single()
            .expect("time")
    );
    assert_eq!(
        order.fulfillment.accept_by,
        Some(
            Utc.with_ymd_and_hms(2026, 11, 20, 12, 8, 3)
                .single()
                .expect("time")
        )
    );
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(order.fulfillment.timing, Timing::Asap);
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(
        address.lines,
        vec!["上海市静安区南京西路1788号 国际中心 12楼1203室", "国际中心"]
    );
    assert_eq!(address.country.as_deref(), Some("CN"));
    let coordinates = address.coordinates.expect("coordinates");
    // "lng,lat": longitude first.
    assert_eq!(coordinates.lng, 121.45281532);
    assert_eq!(coordinates.lat, 31.22185904);
    assert_eq!(coordinates.system, CoordSystem::Gcj02);
    assert_eq!(order.customer.name, "李(先生)");
    assert_eq!(order.customer.phone.as_deref(), Some("13812345678"));
    assert_eq!(order.customer.phone_pin, None);
    assert_eq!(order.notes, None, "an empty description is no note");
    assert_eq!(order.payment, Payment::Prepaid);

    assert_eq!(order.lines.len(), 2);
    let pizza = &order.lines[0];
    assert_eq!(pizza.channel_item_id, "1298577560");
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!(pizza.name, "玛格丽特披萨(大)");
    assert_eq!(
        (pizza.quantity, minor(pizza.unit_price), minor(pizza.total)),
        (1, 8800, 8800)
    );
    let options: Vec<(Option<&str>, &str, i64, i64)> = pizza
        .modifiers
        .iter()
        .map(|m| {
            (
                m.group.as_deref(),
                m.name.as_str(),
                m.quantity,
                m.unit_price.minor,
            )
        })
        .collect();
    assert_eq!(
        options,
        vec![
            (Some("规格"), "大份 12寸", 1, 0),
            (Some("饼底"), "经典手抛", 1, 0)
        ]
    );
    let cola = &order.lines[1];
    assert_eq!(
        (cola.quantity, minor(cola.unit_price), minor(cola.total)),
        (2, 800, 1600)
    );

    let totals = &order.totals;
    assert_eq!(totals.currency.code(), "CNY");
    assert_eq!(minor(totals.subtotal), 10400);
    assert_eq!(minor(totals.fees.delivery), 600);
    assert_eq!(minor(totals.fees.packaging), 0);
    assert_eq!(minor(totals.tip), 0);
    assert_eq!(minor(totals.total), 11000);
    assert!(totals.discounts.is_empty());
    assert!(!totals.total_is_derived);
    assert_eq!(order.check(), Ok(vec![]), "the fixture adds up");
}

#[test]
fn the_pickup_fixture_keeps_flat_options_the_note_and_box_fees() {
    let order = order_of("order-pickup-specs-note");
    let minor = minor(&order);
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.delivered_by, None);
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(
        order.notes.as_deref(),
        Some("请切成8块，到店后电话联系，谢谢")
    );
    let pizza = &order.lines[0];
    assert_eq!(
        minor(pizza.unit_price),
        12100,
        "options are folded into the price"
    );
    let names: Vec<(&str, &str)> = pizza
        .modifiers
        .iter()
        .map(|m| (m.group.as_deref().unwrap_or(""), m.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("规格", "大份 12寸"),
            ("饼底", "芝心饼底"),
            ("加料", "额外马苏里拉"),
            ("半半拼", "半份 / 菠萝"),
        ]
    );
    assert!(
        pizza
            .modifiers
            .iter()
            .all(|m| m.modifiers.is_empty() && m.unit_price.minor == 0)
    );
    assert_eq!(order.lines.len(), 2, "the box fee is not a line");
    assert_eq!(minor(order.totals.subtotal), 18300);
    assert_eq!(minor(order.totals.fees.packaging), 200);
    assert_eq!(minor(order.totals.total), 18500);
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn the_discount_fixture_splits_funding_and_keeps_gifts_at_zero() {
    let order = order_of("order-discounts-gift-fees");
    let minor = minor(&order);
    let lines: Vec<(&str, i64, i64, Option<&str>)> = order
        .lines
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                minor(l.unit_price),
                minor(l.total),
                l.notes.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("BBQ烤鸡披萨(大)", 10800, 10800, None),
            ("烤鸡翅(10个)", 4800, 4800, None),
            ("凯撒沙拉", 3800, 3800, None),
            ("巧克力布朗尼", 0, 0, Some(convert::GIFT_NOTE)),
        ]
    );
    assert_eq!(order.lines[3].plu.as_deref(), Some("DS-BROW"));
    let discounts: Vec<(&str, i64, FundedBy)> = order
        .totals
        .discounts
        .iter()
        .map(|d| (d.label.as_str(), minor(d.amount), d.funded_by))
        .collect();
    assert_eq!(
        discounts,
        vec![
            ("满150减30 (商家承担)", 2000, FundedBy::Merchant),
            ("满150减30 (饿了么承担)", 1000, FundedBy::Platform),
            ("红包 (hongbao)", 500, FundedBy::Platform),
        ]
    );
    assert_eq!(
        minor(order.totals.subtotal),
        19400,
        "Σ total of normal items"
    );
    assert_eq!(minor(order.totals.fees.delivery), 500);
    assert_eq!(minor(order.totals.fees.packaging), 300);
    assert_eq!(minor(order.totals.total), 16700, "totalPrice");
    assert_eq!(order.customer.phone.as_deref(), Some("17012345678"));
    assert_eq!(order.customer.phone_pin.as_deref(), Some("3456"));
    assert_eq!(order.check(), Ok(vec![]), "the fixture adds up");
}

#[test]
fn the_scheduled_fixture_is_booked_for_beijing_time() {
    let order = order_of("order-scheduled");
    // 12:30 in Beijing is 04:30 UTC.
    assert_eq!(
        order.fulfillment.timing,
        Timing::Scheduled {
            at: Utc
                .with_ymd_and_hms(2026, 11, 21, 4, 30, 0)
                .single()
                .expect("time")
        }
    );
    assert_eq!(order.notes.as_deref(), Some("预订单，请12点半送到前台"));
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn unicode_and_emoji_survive_names_notes_and_options() {
    let order = order_of("order-unicode-emoji");
    assert_eq!(order.customer.name, "欧阳娜娜(女士) 🌸");
    assert_eq!(
        order.notes.as_deref(),
        Some("不要香菜🌿！门口有狗🐶，请敲门 🚪 \"别按门铃\"")
    );
    assert_eq!(order.lines[0].name, "🍕 玛格丽特披萨(中)");
    assert_eq!(order.lines[0].modifiers[1].name, "微辣🌶️");
    assert_eq!(order.lines[1].modifiers[0].name, "「蒜香」酱 \"特调\"");
    assert_eq!(
        order.fulfillment.address.as_ref().expect("address").lines[0],
        "上海市徐汇区虹桥路1号 港汇恒隆广场 B1层 🍜美食街 “北门”"
    );
    assert_eq!(order.check(), Ok(vec![]));
}

#[test]
fn a_booked_order_without_a_time_is_taken_as_asap() {
    let body = order_push_with("order-scheduled", |order| {
        order["deliverTime"] = serde_json::Value::Null;
    });
    let Inbound::Order(order) = receive(&body).expect("parses").inbound else {
        panic!("an order");
    };
    assert_eq!(order.fulfillment.timing, Timing::Asap);
}

#[test]
fn self_delivery_shops_and_cash_orders_are_marked() {
    let adapter = adapter_with(ElemeConfig {
        self_delivery_shops: vec![SHOP_JINGAN.to_owned()],
        accept_window_secs: 0,
        ..config()
    });
    let body = order_push_with("order-delivery", |order| {
        order["onlinePaid"] = serde_json::json!(false);
    });
    let request = request(&body);
    adapter.verify(&request).expect("signed");
    let Inbound::Order(order) = adapter.parse(&request).expect("parses").inbound else {
        panic!("an order");
    };
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    assert_eq!(order.fulfillment.accept_by, None);
    assert_eq!(order.payment, Payment::CashOnDelivery);
    assert_eq!(order.totals.cash_due.map(|c| c.minor), Some(11000));
}

#[test]
fn activity_totals_without_a_split_and_member_fee_discounts_are_kept() {
    let body = order_push_with("order-discounts-gift-fees", |order| {
        order["shopPart"] = serde_json::json!(0.0);
        order["elemePart"] = serde_json::json!(0.0);
        order["orderActivities"] = serde_json::json!([]);
        order["vipDeliveryFeeDiscount"] = serde_json::json!(-2.0);
        order["packageFee"] = serde_json::Value::Null;
    });
    let Inbound::Order(order) = receive(&body).expect("parses").inbound else {
        panic!("an order");
    };
    let discounts: Vec<(&str, i64, FundedBy)> = order
        .totals
        .discounts
        .iter()
        .map(|d| (d.label.as_str(), d.amount.minor, d.funded_by))
        .collect();
    assert_eq!(
        discounts,
        vec![
            ("饿了么活动", 3000, FundedBy::Unknown),
            ("红包 (hongbao)", 500, FundedBy::Platform),
            ("会员减配送费", 200, FundedBy::Platform),
        ]
    );
    // No packageFee: the extra group's box fees.
    assert_eq!(order.totals.fees.packaging.minor, 300);
}

// ---------------------------------------------------------------------------------------
// Money and times
// ---------------------------------------------------------------------------------------

fn cny() -> crossdock_model::Currency {
    crossdock_model::Currency::parse("CNY").expect("currency")
}

#[test]
fn yuan_are_parsed_from_their_text_never_through_f64() {
    let fen = |text: &str| yuan(&Num(text.to_owned()), cny(), "x").map(|m| m.minor);
    assert_eq!(fen("17.0"), Ok(1700));
    assert_eq!(fen("1.8"), Ok(180));
    assert_eq!(fen("0.1"), Ok(10));
    assert_eq!(fen("-10.0"), Ok(-1000));
    assert_eq!(fen("0.15"), Ok(15));
    assert_eq!(fen("3"), Ok(300));
    // Java writes large doubles in exponent notation; expanded exactly.
    assert_eq!(fen("1.2345678E7"), Ok(1_234_567_800));
    assert_eq!(fen("1.0E-2"), Ok(1));
    // 0.1 + 0.2 in fen is exactly 30.
    assert_eq!(fen("0.1").and_then(|a| fen("0.2").map(|b| a + b)), Ok(30));
    assert!(matches!(
        yuan(&Num("12.345".to_owned()), cny(), "order.groups[0].items[0].price"),
        Err(crossdock_channel::convert::ConvertError::Money {
            field,
            source: MoneyError::FractionalMinorUnit { value, .. }
        }) if field == "order.groups[0].items[0].price" && value == "12.345"
    ));
    assert!(matches!(
        yuan(&Num("1e999".to_owned()), cny(), "x"),
        Err(crossdock_channel::convert::ConvertError::Money {
            source: MoneyError::NotANumber { .. },
            ..
        })
    ));
}

#[test]
fn plain_decimal_moves_the_point_exactly() {
    assert_eq!(plain_decimal("12.5").as_deref(), Some("12.5"));
    assert_eq!(plain_decimal("1.2345678E7").as_deref(), Some("12345678"));
    assert_eq!(plain_decimal("1.5E1").as_deref(), Some("15"));
    assert_eq!(plain_decimal("-2.5e+2").as_deref(), Some("-250"));
    assert_eq!(plain_decimal("1.0E-4").as_deref(), Some("0.00010"));
    assert_eq!(plain_decimal("5E0").as_deref(), Some("5"));
    assert_eq!(plain_decimal("1E41"), None);
    assert_eq!(plain_decimal("x1E2"), None);
}

#[test]
fn a_fractional_fen_fails_the_order_naming_the_amount() {
    let body = order_push_with("order-delivery", |order| {
        order["groups"][0]["items"][0]["price"] = serde_json::json!(88.005);
    });
    match receive(&body) {
        Err(ChannelError::Order(OrderError::MoneyAt { field, source })) => {
            assert_eq!(field, "order.groups[0].items[0].price");
            assert!(matches!(source, MoneyError::FractionalMinorUnit { .. }));
        }
        other => panic!("expected an order error, got {other:?}"),
    }
}

#[test]
fn the_simulator_writes_yuan_as_java_doubles() {
    assert_eq!(yuan_text(1700, 2).as_str(), "17.0");
    assert_eq!(yuan_text(350, 2).as_str(), "3.5");
    assert_eq!(yuan_text(1234, 2).as_str(), "12.34");
    assert_eq!(yuan_text(-1000, 2).as_str(), "-10.0");
    assert_eq!(yuan_text(5, 2).as_str(), "0.05");
    assert_eq!(yuan_text(980, 0).as_str(), "980.0");
    for minor in [0, 1, 99, 100, 12_345, -7] {
        assert_eq!(
            yuan(&yuan_text(minor, 2), cny(), "x").map(|m| m.minor),
            Ok(minor)
        );
    }
}

#[test]
fn ele_me_times_are_beijing_local_time() {
    let at = |text: &str| beijing_time(text, "t").expect("a time");
    let expected = Utc
        .with_ymd_and_hms(2017, 10, 30, 12, 8, 7)
        .single()
        .expect("time");
    assert_eq!(at("2017-10-30T20:08:07"), expected);
    assert_eq!(at("2017-10-30 20:08:07"), expected);
    assert_eq!(at("2017-10-30T20:08:07.000"), expected);
    assert_eq!(at("2017-10-30T12:08:07Z"), expected);
    assert!(beijing_time("2017-13-30T20:08:07", "order.activeAt").is_err());
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

#[test]
fn accepted_pushes_and_duplicates_get_ok_and_refusals_the_error_shape() {
    let adapter = adapter();
    let request = request(&body("order-delivery"));
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
        assert_eq!(reply.body, ACK_BODY.as_bytes());
    }
    let refused = |error: ChannelError| {
        let reply = adapter.reply(&request, Outcome::Refused(&error));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
        assert_ne!(body, serde_json::json!({"message": "ok"}));
        (
            reply.status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(
        refused(ChannelError::Unauthorized("bad".into())),
        (StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE".to_owned())
    );
    assert_eq!(
        refused(ChannelError::Malformed("bad".into())),
        (StatusCode::BAD_REQUEST, "VALIDATION_FAILED".to_owned())
    );
    assert_eq!(
        refused(ChannelError::Order(OrderError::NoLines)),
        (StatusCode::BAD_REQUEST, "VALIDATION_FAILED".to_owned())
    );
}

// ---------------------------------------------------------------------------------------
// Pushes: planning, the call, error classes
// ---------------------------------------------------------------------------------------

fn stored(order: NewOrder, status: Status) -> Order {
    Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status,
        store_id: None,
        flags: vec![],
        order,
    }
}

fn change(action: StatusAction, from: Status) -> StatusChange {
    StatusChange {
        action,
        from,
        at: DateTime::parse_from_rfc3339("2026-11-20T12:01:00Z")
            .expect("time")
            .with_timezone(&Utc),
    }
}

fn planned(order: &Order, action: StatusAction) -> (String, serde_json::Value) {
    match plan(order, &change(action, order.status)).expect("plan") {
        Plan::Call { action, params } => (action.to_owned(), serde_json::Value::Object(params)),
        Plan::NotApplicable(why) => ("n/a".to_owned(), serde_json::json!(why)),
    }
}

#[test]
fn actions_map_onto_ele_me_calls() {
    let order = stored(order_of("order-delivery"), Status::Received);
    let id = DELIVERY_ORDER_ID;
    assert_eq!(
        planned(&order, StatusAction::Accept { prep_minutes: 12 }),
        (
            "eleme.order.confirmOrderLite".into(),
            serde_json::json!({"orderId": id})
        )
    );
    assert_eq!(
        planned(
            &order,
            StatusAction::Reject {
                reason: "Pepperoni sold out".into()
            }
        ),
        (
            "eleme.order.cancelOrderLite".into(),
            serde_json::json!({"orderId": id, "type": "foodSoldOut", "remark": "Pepperoni sold out"})
        )
    );
    assert_eq!(
        planned(
            &order,
            StatusAction::Cancel {
                reason: "store closed early".into()
            }
        )
        .1["type"],
        "restaurantClosed"
    );
    assert_eq!(
        planned(
            &order,
            StatusAction::Fail {
                reason: "printer on fire".into()
            }
        )
        .1["type"],
        "others"
    );
    assert_eq!(
        planned(&order, StatusAction::Ready),
        (
            "eleme.order.setOrderPrepared".into(),
            serde_json::json!({"orderId": id})
        )
    );
    for action in [
        StatusAction::Preparing,
        StatusAction::PickedUp,
        StatusAction::Delivered,
        StatusAction::Complete,
    ] {
        assert_eq!(planned(&order, action.clone()).0, "n/a", "{action:?}");
    }
}

#[test]
fn a_store_that_delivers_reports_pickup_and_delivery_but_not_ready() {
    let mut order = order_of("order-delivery");
    order.fulfillment.delivered_by = Some(DeliveredBy::Store);
    let order = stored(order, Status::Ready);
    assert_eq!(
        planned(&order, StatusAction::PickedUp).0,
        "eleme.order.deliveryBySelfLite"
    );
    assert_eq!(
        planned(&order, StatusAction::Delivered).0,
        "eleme.order.receivedOrderLite"
    );
    assert_eq!(planned(&order, StatusAction::Ready).0, "n/a");
    // Pickup orders are made ready on Ele.me too.
    let pickup = stored(order_of("order-pickup-specs-note"), Status::Preparing);
    assert_eq!(
        planned(&pickup, StatusAction::Ready).0,
        "eleme.order.setOrderPrepared"
    );
}

#[test]
fn remarks_are_cut_and_an_order_without_id_is_refused() {
    let order = stored(order_of("order-delivery"), Status::Accepted);
    let long = "太".repeat(300);
    let (_, params) = planned(&order, StatusAction::Cancel { reason: long });
    assert_eq!(
        params["remark"].as_str().map(|r| r.chars().count()),
        Some(100)
    );
    let mut broken = order.clone();
    broken.order.external_order_id = " ".into();
    assert!(matches!(
        plan(&broken, &change(StatusAction::Ready, Status::Accepted)),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn cancel_types_follow_keywords_and_default_to_others() {
    for (reason, expected) in [
        ("out of dough", "others"),
        ("item unavailable: PZ-MARG-L", "foodSoldOut"),
        ("饮料售罄", "foodSoldOut"),
        (
            "store SHA-001 cannot take the order: paused until 2026-11-20T13:00:00Z",
            "restaurantClosed",
        ),
        ("今天提前打烊", "restaurantClosed"),
        (
            "delivery address is outside every store's delivery zone",
            "distanceTooFar",
        ),
        ("kitchen too busy", "restaurantTooBusy"),
        ("at capacity", "restaurantTooBusy"),
        ("联系不上顾客", "contactUserFailed"),
        ("fake order", "fakeOrder"),
        ("customer asked to cancel", "forceRejectOrder"),
        ("不满足起送要求", "notSatisfiedDeliveryRequirement"),
        ("courier never came", "deliveryFault"),
        (
            "unknown store: eleme store id 1 is not mapped to any store",
            "others",
        ),
    ] {
        assert_eq!(cancel_type(reason), expected, "{reason}");
    }
}

#[test]
fn a_call_is_signed_over_action_token_sorted_json_values_and_secret() {
    let adapter = adapter();
    let now = DateTime::parse_from_rfc3339("2026-11-20T12:00:00.123Z")
        .expect("time")
        .with_timezone(&Utc);
    let mut params = serde_json::Map::new();
    params.insert("orderId".into(), "3038412207651894401".into());
    params.insert("type".into(), "distanceTooFar".into());
    params.insert("remark".into(), "配送/太远 \"A\"".into());
    let call = adapter.rpc_request("eleme.order.cancelOrderLite", params, "tok", now);
    assert_eq!(call.nop, "1.0.0");
    assert_eq!(call.metas.app_key, DEV_APP_KEY);
    assert_eq!(call.metas.timestamp, 1_795_176_000);
    let (uuid, ms) = call.id.split_once('|').expect("id with a bar");
    assert_eq!(ms, "1795176000123");
    assert_eq!(uuid.len(), 32);
    assert!(
        uuid.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    // Built by hand: slashes and unicode unescaped, quotes escaped, strings quoted.
    let base = format!(
        "eleme.order.cancelOrderLitetokapp_key=\"{DEV_APP_KEY}\"orderId=\"3038412207651894401\"remark=\"配送/太远 \\\"A\\\"\"timestamp=1795176000type=\"distanceTooFar\"{DEV_APP_SECRET}"
    );
    assert_eq!(call.signature, wire::md5_upper(&[base.as_bytes()]));
    let body = serde_json::to_value(&call).expect("json");
    assert_eq!(
        body.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec![
            "action".into(),
            "id".into(),
            "metas".into(),
            "nop".into(),
            "params".into(),
            "signature".into(),
            "token".into()
        ])
    );
}

#[test]
fn ele_me_error_codes_map_onto_retryable_or_permanent_failures() {
    let failure = |code: &str| {
        rpc_failure(
            "eleme.order.confirmOrderLite",
            &RpcError {
                code: code.to_owned(),
                message: Some("m".to_owned()),
            },
        )
    };
    assert_eq!(
        failure("EXCEED_LIMIT"),
        ChannelError::RateLimited { retry_after: None }
    );
    for (code, status, retryable) in [
        ("SERVER_ERROR", 503, true),
        ("INVALID_TIMESTAMP", 408, true),
        ("UNAUTHORIZED", 401, false),
        ("INVALID_SIGNATURE", 403, false),
        ("ACCESS_DENIED", 403, false),
        ("PERMISSION_DENIED", 403, false),
        ("METHOD_NOT_ALLOWED", 403, false),
        ("ILLEGAL_REQUEST", 400, false),
        ("VALIDATION_FAILED", 400, false),
        ("BIZ_ORDER_STATUS_ERROR", 409, false),
        ("SOMETHING_NEW", 400, false),
    ] {
        let error = failure(code);
        assert!(
            matches!(&error, ChannelError::Platform { status: s, body } if *s == status && body.starts_with(code)),
            "{code}: {error:?}"
        );
        assert_eq!(error.is_retryable(), retryable, "{code}");
    }
    assert!(failure("EXCEED_LIMIT").is_retryable());
}

#[test]
fn answers_are_read_as_results_or_errors() {
    assert_eq!(
        answer("a", br#"{"id":"x","result":null,"error":null}"#),
        Ok(serde_json::Value::Null)
    );
    assert_eq!(
        answer("a", br#"{"id":"x","result":{"ok":true}}"#),
        Ok(serde_json::json!({"ok": true}))
    );
    assert!(matches!(
        answer("a", br#"{"error":{"code":"BIZ_X","message":"no"}}"#),
        Err(ChannelError::Platform { status: 409, .. })
    ));
    let gateway = answer("a", b"<html>502</html>").expect_err("not JSON-RPC");
    assert!(gateway.is_retryable(), "{gateway:?}");
}

// ---------------------------------------------------------------------------------------
// Factory
// ---------------------------------------------------------------------------------------

fn settings(options: serde_json::Value, development: bool) -> ChannelSettings {
    ChannelSettings {
        channel: CHANNEL_ID.to_owned(),
        options,
        secrets: SecretSource::new(BTreeMap::new(), development),
        dev_secrets: Factory.dev_secrets(),
        http: reqwest::Client::new(),
    }
}

#[test]
fn the_factory_builds_from_defaults_and_refuses_bad_options() {
    assert_eq!(Factory.id(), "eleme");
    assert_eq!(Factory.dev_secrets(), &[("app_secret", DEV_APP_SECRET)]);
    let channel = Factory
        .build(&settings(serde_json::Value::Null, true))
        .expect("defaults build in development");
    assert_eq!(channel.id().as_str(), "eleme");
    assert_eq!(
        channel.push_rate(),
        crossdock_channel::RateLimit {
            per_second: 20,
            burst: 20
        }
    );
    let message = |options: serde_json::Value| {
        Factory
            .build(&settings(options, true))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(message(serde_json::json!({"base_uri": "x"})).contains("unknown field `base_uri`"));
    assert!(message(serde_json::json!({"base_url": "ftp://x"})).contains("must be http(s)"));
    assert!(message(serde_json::json!({"token_url": "nope"})).contains("is not a URL"));
    assert!(message(serde_json::json!({"currency": "yuan"})).contains("currency"));
    assert!(message(serde_json::json!({"timeout_secs": 0})).contains("at least 1"));
    assert!(message(serde_json::json!({"app_key": " "})).contains("app_key"));
    assert!(message(serde_json::json!({"self_delivery_shops": [""]})).contains("empty shop id"));
    let built = Factory.build(&settings(
        serde_json::json!({"base_url": "http://127.0.0.1:9", "self_delivery_shops": ["501893201"]}),
        true,
    ));
    assert!(built.is_ok());
}

#[test]
fn production_needs_the_real_app_secret() {
    let error = Factory
        .build(&settings(serde_json::Value::Null, false))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        error,
        "channel `eleme`: secret `app_secret` is not set; set CROSSDOCK_SECRET_ELEME_APP_SECRET or add it to the secrets file"
    );
    let mut file = BTreeMap::new();
    file.insert(
        "eleme".to_owned(),
        BTreeMap::from([("app_secret".to_owned(), "real-secret".to_owned())]),
    );
    let production = ChannelSettings {
        secrets: SecretSource::new(file, false),
        ..settings(serde_json::Value::Null, false)
    };
    let channel = Factory.build(&production).expect("builds with the secret");
    // Signed with the development secret: refused by a production adapter.
    assert!(matches!(
        channel.verify(&request(&body("order-delivery"))),
        Err(ChannelError::Unauthorized(_))
    ));
}

// ---------------------------------------------------------------------------------------
// The simulator's checks of calls
// ---------------------------------------------------------------------------------------

mod simulator_checks {
    use super::*;
    use crate::simulator::{ElemeSim, RateWindow, SimConfig};

    async fn token(sim: &ElemeSim) -> String {
        let response = reqwest::Client::new()
            .post(sim.token_url())
            .basic_auth(DEV_APP_KEY, Some(DEV_APP_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token endpoint");
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    async fn call(sim: &ElemeSim, body: &serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/", sim.base_url()))
            .json(body)
            .send()
            .await
            .expect("api");
        assert_eq!(response.status(), 200, "Ele.me answers errors with 200");
        response.json().await.expect("json")
    }

    fn error_code(answer: &serde_json::Value) -> &str {
        answer["error"]["code"].as_str().unwrap_or("none")
    }

    #[tokio::test]
    async fn the_simulator_refuses_bad_tokens_signatures_timestamps_ids_and_excess() {
        let sim = ElemeSim::start(SimConfig {
            rate_limit: Some(RateWindow {
                calls: 2,
                window: std::time::Duration::from_secs(60),
            }),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let adapter = adapter_with(ElemeConfig {
            base_url: sim.base_url(),
            token_url: sim.token_url(),
            ..config()
        });
        let token = token(&sim).await;
        let mut params = serde_json::Map::new();
        params.insert("orderId".into(), "3000000000000000001".into());
        let good = |now: DateTime<Utc>, token: &str| {
            serde_json::to_value(adapter.rpc_request(
                "eleme.order.getOrder",
                params.clone(),
                token,
                now,
            ))
            .expect("json")
        };

        // A well-formed call for an order Ele.me does not have.
        let answer = call(&sim, &good(Utc::now(), &token)).await;
        assert_eq!(error_code(&answer), "BIZ_ORDER_NOT_FOUND");

        let answer = call(&sim, &good(Utc::now(), "not-a-token")).await;
        assert_eq!(error_code(&answer), "UNAUTHORIZED");

        let late = Utc::now() - chrono::TimeDelta::minutes(30);
        let answer = call(&sim, &good(late, &token)).await;
        assert_eq!(error_code(&answer), "INVALID_TIMESTAMP");

        let mut forged = good(Utc::now(), &token);
        forged["params"]["orderId"] = serde_json::json!("3000000000000000002");
        assert_eq!(error_code(&call(&sim, &forged).await), "INVALID_SIGNATURE");

        let mut bad_id = good(Utc::now(), &token);
        bad_id["id"] = serde_json::json!("abc");
        assert_eq!(error_code(&call(&sim, &bad_id).await), "ILLEGAL_REQUEST");

        assert_eq!(
            error_code(&call(&sim, &serde_json::json!({"nop": "1.0.0"})).await),
            "ILLEGAL_REQUEST"
        );

        // The second good call uses up the budget of two; the third exceeds it.
        let answer = call(&sim, &good(Utc::now(), &token)).await;
        assert_eq!(error_code(&answer), "BIZ_ORDER_NOT_FOUND");
        let answer = call(&sim, &good(Utc::now(), &token)).await;
        assert_eq!(error_code(&answer), "EXCEED_LIMIT");

        // Every call was recorded, the token redacted.
        let calls = sim.calls().all();
        assert_eq!(calls.len(), 8);
        assert_eq!(calls[0].path, "/api/v1/#eleme.order.getOrder");
        assert_eq!(calls[0].body["token"], "<redacted>");
        sim.stop().await;
    }

    #[tokio::test]
    async fn the_token_endpoint_takes_basic_or_form_credentials_only_when_right() {
        let sim = ElemeSim::start(SimConfig::default())
            .await
            .expect("simulator");
        let http = reqwest::Client::new();
        let form_ok = http
            .post(sim.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEV_APP_KEY),
                ("client_secret", DEV_APP_SECRET),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(form_ok.status(), 200);
        let wrong = http
            .post(sim.token_url())
            .basic_auth(DEV_APP_KEY, Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token");
        assert_eq!(wrong.status(), 401);
        let grant = http
            .post(sim.token_url())
            .basic_auth(DEV_APP_KEY, Some(DEV_APP_SECRET))
            .form(&[("grant_type", "password")])
            .send()
            .await
            .expect("token");
        assert_eq!(grant.status(), 400);
        assert_eq!(sim.token_requests(), 3);
        sim.stop().await;
    }
}
