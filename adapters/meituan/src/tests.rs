//! Unit tests of the adapter: signature, parsing, the normalization rules of CHANNELS.md
//! §10, replies, push plans, error classification and configuration.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, HeaderMap,
    Inbound, InboundRequest, Method, Outcome, SecretSource, StatusCode,
};
use crossdock_model::{
    CoordSystem, Currency, DeliveredBy, Flag, FulfillmentKind, FundedBy, Money, MoneyError,
    NewOrder, Order, OrderError, OrderId, Payment, Status, StatusAction, StatusChange, Timing,
};
use secrecy::SecretString;

use super::*;
use crate::sign::{self, Params};

const PUBLIC: &str = "https://hub.crossdock.example/webhooks/meituan";
const CTIME: i64 = 1_795_175_940;

fn adapter() -> Meituan {
    Meituan::new(
        MeituanConfig::default(),
        SecretString::from(DEV_APP_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn p(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn set(params: &mut Params, key: &str, value: &str) {
    params.retain(|(k, _)| k != key);
    params.push((key.to_owned(), value.to_owned()));
}

fn remove(params: &mut Params, key: &str) {
    params.retain(|(k, _)| k != key);
}

const DETAIL: &str = r#"[{"app_food_code":"PZ-MARG-L","food_name":"玛格丽特披萨（大）","sku_id":"PZ-MARG-L","quantity":1,"price":88.0,"box_num":1.0,"box_price":2.5,"unit":"份","food_discount":1.0,"spec":"12寸","food_property":"多加芝士,切8块","cart_id":0},{"app_food_code":"DR-COLA-500","food_name":"可乐 500ml","sku_id":"","quantity":"3","price":"8.8","box_num":0,"box_price":0,"spec":"","food_property":"少冰","cart_id":0}]"#;

/// A delivery order push: 88 + 3 × 8.8 = 114.4, box 2.5, shipping 5, minus 10 → 111.9.
fn order_params() -> Params {
    p(&[
        ("order_id", "27061900338318741"),
        ("wm_order_id_view", "33011287645913078"),
        ("app_poi_code", "sh_jingan_001"),
        ("wm_poi_name", "Crossdock 披萨 静安寺店"),
        (
            "recipient_address",
            "静安区愚园路68号 3号楼1202室@#上海市静安区愚园路68号",
        ),
        ("recipient_phone", "17012345678_4321"),
        ("recipient_name", "王(先生)"),
        ("shipping_fee", "5.0"),
        ("total", "111.9"),
        ("original_price", "121.9"),
        ("caution", "不要辣，谢谢"),
        ("shipper_phone", ""),
        ("status", "2"),
        ("city_id", "310100"),
        ("has_invoiced", "0"),
        ("invoice_title", ""),
        ("ctime", &CTIME.to_string()),
        ("utime", &CTIME.to_string()),
        ("delivery_time", "0"),
        ("is_third_shipping", "0"),
        ("pay_type", "2"),
        ("pick_type", "0"),
        ("latitude", "31.221512"),
        ("longitude", "121.441203"),
        ("day_seq", "12"),
        ("logistics_code", "1001"),
        ("detail", DETAIL),
        (
            "extras",
            r#"[{"act_detail_id":301522,"reduce_fee":10.0,"mt_charge":4.0,"poi_charge":6.0,"remark":"满100减10","type":2},{}]"#,
        ),
    ])
}

/// A signed push request as the hub receives it: POST form, or GET query.
fn request(event: &str, method: Method, params: Params) -> InboundRequest {
    let url = format!("{PUBLIC}/{event}");
    let signed = sign::signed(&url, params, DEV_APP_ID, DEV_APP_SECRET, CTIME + 2);
    raw_request(event, method, &sign::encode_form(&signed))
}

fn raw_request(event: &str, method: Method, encoded: &str) -> InboundRequest {
    let url = format!("{PUBLIC}/{event}");
    let (query, body) = if method == Method::GET {
        (Some(encoded.to_owned()), Bytes::new())
    } else {
        (None, Bytes::from(encoded.to_owned()))
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().expect("header"),
    );
    InboundRequest {
        method,
        event: Some(event.to_owned()),
        url,
        query,
        headers,
        body,
        received_at: Utc::now(),
    }
}

fn delivered(request: &InboundRequest) -> Result<Delivery, ChannelError> {
    let adapter = adapter();
    adapter.verify(request)?;
    adapter.parse(request)
}

fn order_of(params: Params) -> Result<NewOrder, ChannelError> {
    match delivered(&request("order", Method::POST, params))?.inbound {
        Inbound::Order(order) => Ok(*order),
        other => panic!("expected an order, got {other:?}"),
    }
}

fn cny(minor: i64) -> Money {
    Money::new(minor, Currency::parse("CNY").expect("CNY"))
}

// ---------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------

#[test]
fn a_correctly_signed_push_verifies_from_a_form_or_a_query() {
    let adapter = adapter();
    assert_eq!(
        adapter.verify(&request("order", Method::POST, order_params())),
        Ok(())
    );
    let cancel = p(&[("order_id", "1"), ("reason_code", "1101"), ("reason", "")]);
    assert_eq!(
        adapter.verify(&request("cancel", Method::GET, cancel.clone())),
        Ok(())
    );
    // System parameters in the query, business parameters in the body: signed together.
    let url = format!("{PUBLIC}/cancel");
    let signed = sign::signed(&url, cancel, DEV_APP_ID, DEV_APP_SECRET, 7);
    let (system, business): (Params, Params) = signed
        .into_iter()
        .partition(|(k, _)| matches!(k.as_str(), "app_id" | "timestamp" | "sig"));
    let mut split = raw_request("cancel", Method::POST, &sign::encode_form(&business));
    split.query = Some(sign::encode_form(&system));
    assert_eq!(adapter.verify(&split), Ok(()));
}

#[test]
fn any_changed_byte_of_a_signed_push_is_refused() {
    let adapter = adapter();
    let good = request(
        "cancel",
        Method::POST,
        p(&[
            ("order_id", "42"),
            ("reason", "用户取消"),
            ("reason_code", "1101"),
        ]),
    );
    for i in 0..good.body.len() {
        let mut body = good.body.to_vec();
        body[i] ^= 0x01;
        let mut tampered = good.clone();
        tampered.body = Bytes::from(body);
        let passed = adapter
            .verify(&tampered)
            .and_then(|()| adapter.parse(&tampered))
            .is_ok();
        assert!(!passed, "byte {i} changed still passes");
    }
    let mut other_url = good.clone();
    other_url.url = format!("{PUBLIC}/refund");
    assert!(matches!(
        adapter.verify(&other_url),
        Err(ChannelError::Unauthorized(_))
    ));
}

#[test]
fn missing_wrong_case_or_foreign_signatures_are_unauthorized() {
    let adapter = adapter();
    let url = format!("{PUBLIC}/cancel");
    let signed = sign::signed(
        &url,
        p(&[("order_id", "42")]),
        DEV_APP_ID,
        DEV_APP_SECRET,
        7,
    );
    let with = |change: &dyn Fn(&mut Params)| {
        let mut params = signed.clone();
        change(&mut params);
        adapter.verify(&raw_request(
            "cancel",
            Method::POST,
            &sign::encode_form(&params),
        ))
    };
    let message = |result: Result<(), ChannelError>| match result {
        Err(ChannelError::Unauthorized(message)) => message,
        other => panic!("expected unauthorized, got {other:?}"),
    };
    assert_eq!(with(&|_| {}), Ok(()));
    assert_eq!(
        message(with(&|params| remove(params, "sig"))),
        "missing parameter `sig`"
    );
    assert_eq!(
        message(with(&|params| remove(params, "timestamp"))),
        "missing parameter `timestamp`"
    );
    let sig = signed
        .iter()
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.clone())
        .expect("sig");
    assert_ne!(sig, sig.to_ascii_uppercase(), "the fixture sig has letters");
    assert_eq!(
        message(with(&|params| set(
            params,
            "sig",
            &sig.to_ascii_uppercase()
        ))),
        "sig does not match the parameters and the app secret",
        "Meituan's sig is lower-case hex; the SDKs compare it exactly"
    );
    assert!(message(with(&|params| set(params, "app_id", "7777"))).starts_with("app_id"));
    let foreign = Meituan::new(
        MeituanConfig::default(),
        SecretString::from("another-secret"),
        reqwest::Client::new(),
    )
    .expect("adapter");
    assert!(matches!(
        foreign.verify(&request("order", Method::POST, order_params())),
        Err(ChannelError::Unauthorized(_))
    ));
}

#[test]
fn values_percent_encoded_twice_verify_and_read_decoded() {
    let url = format!("{PUBLIC}/order");
    let signed = sign::signed(&url, order_params(), DEV_APP_ID, DEV_APP_SECRET, 7);
    let twice = raw_request("order", Method::POST, &sign::encode_form_twice(&signed));
    let order = match delivered(&twice).expect("verifies").inbound {
        Inbound::Order(order) => order,
        other => panic!("{other:?}"),
    };
    assert_eq!(order.notes.as_deref(), Some("不要辣，谢谢"));
    assert_eq!(order.customer.name, "王(先生)");
    assert_eq!(order.lines.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Orders: the rules of CHANNELS.md §10
// ---------------------------------------------------------------------------------------

#[test]
fn identity_store_display_code_and_dedupe_key() {
    let delivery = delivered(&request("order", Method::POST, order_params())).expect("order");
    assert_eq!(delivery.dedupe_key, "27061900338318741:order");
    let Inbound::Order(order) = delivery.inbound else {
        panic!("an order")
    };
    assert_eq!(order.channel.as_str(), "meituan");
    assert_eq!(
        order.external_order_id, "27061900338318741",
        "order_id, never the view id"
    );
    assert_eq!(order.channel_store_ref.as_deref(), Some("sh_jingan_001"));
    assert_eq!(order.display_code.as_deref(), Some("12"), "day_seq");
    assert_eq!(
        order.channel_data["wm_order_id_view"],
        serde_json::json!("33011287645913078")
    );
    assert_eq!(
        order.channel_data["original_price"],
        serde_json::json!("121.9")
    );
    assert_eq!(
        order.placed_at,
        DateTime::<Utc>::from_timestamp(CTIME, 0).expect("time")
    );
    assert_eq!(
        order.fulfillment.accept_by,
        DateTime::<Utc>::from_timestamp(CTIME + 300, 0)
    );
    // Without day_seq (or with the unpaid 0) the view id is the display code.
    for seq in [None, Some("0")] {
        let mut params = order_params();
        match seq {
            None => remove(&mut params, "day_seq"),
            Some(seq) => set(&mut params, "day_seq", seq),
        }
        let order = order_of(params).expect("order");
        assert_eq!(order.display_code.as_deref(), Some("33011287645913078"));
    }
}

#[test]
fn customer_address_coordinates_and_note() {
    let order = order_of(order_params()).expect("order");
    assert_eq!(order.customer.name, "王(先生)", "as displayed");
    assert_eq!(order.customer.phone.as_deref(), Some("17012345678"));
    assert_eq!(order.customer.phone_pin.as_deref(), Some("4321"));
    assert_eq!(order.notes.as_deref(), Some("不要辣，谢谢"));
    let fulfillment = &order.fulfillment;
    assert_eq!(fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(
        fulfillment.delivered_by,
        Some(DeliveredBy::Platform),
        "logistics 1001"
    );
    assert_eq!(fulfillment.timing, Timing::Asap);
    let address = fulfillment.address.as_ref().expect("address");
    assert_eq!(
        address.lines,
        ["静安区愚园路68号 3号楼1202室", "上海市静安区愚园路68号"]
    );
    assert_eq!(address.country.as_deref(), Some("CN"));
    let at = address.coordinates.expect("coordinates");
    assert_eq!(
        (at.lat, at.lng, at.system),
        (31.221512, 121.441203, CoordSystem::Gcj02)
    );

    // Micro-degrees (some versions) read as degrees; 0 means none; an empty note is none.
    let mut params = order_params();
    set(&mut params, "latitude", "31221512");
    set(&mut params, "longitude", "121441203");
    set(&mut params, "caution", " ");
    let order = order_of(params).expect("order");
    let at = order
        .fulfillment
        .address
        .and_then(|a| a.coordinates)
        .expect("coordinates");
    assert!((at.lat - 31.221512).abs() < 1e-9 && (at.lng - 121.441203).abs() < 1e-9);
    assert_eq!(order.notes, None);
    let mut params = order_params();
    set(&mut params, "latitude", "0");
    set(&mut params, "longitude", "0");
    let order = order_of(params).expect("order");
    assert_eq!(order.fulfillment.address.and_then(|a| a.coordinates), None);
}

#[test]
fn lines_keep_order_flatten_options_and_leave_boxes_out() {
    let order = order_of(order_params()).expect("order");
    assert_eq!(order.lines.len(), 2, "box fees are not lines");
    let pizza = &order.lines[0];
    assert_eq!(pizza.name, "玛格丽特披萨（大）");
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!(pizza.channel_item_id, "PZ-MARG-L");
    assert_eq!(
        (pizza.quantity, pizza.unit_price, pizza.total),
        (1, cny(8800), cny(8800))
    );
    let modifiers: Vec<(Option<&str>, &str, i64, i64)> = pizza
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
        modifiers,
        [
            (Some("spec"), "12寸", 1, 0),
            (Some("property"), "多加芝士", 1, 0),
            (Some("property"), "切8块", 1, 0),
        ]
    );
    assert!(
        pizza.modifiers.iter().all(|m| m.modifiers.is_empty()),
        "one level"
    );
    let cola = &order.lines[1];
    assert_eq!(
        cola.channel_item_id, "DR-COLA-500",
        "app_food_code when sku_id is empty"
    );
    assert_eq!(
        (cola.quantity, cola.unit_price, cola.total),
        (3, cny(880), cny(2640)),
        "string numbers are read too"
    );
    assert_eq!(order.totals.fees.packaging, cny(250));
}

#[test]
fn money_subtotal_discounts_fees_and_total() {
    let order = order_of(order_params()).expect("order");
    let totals = &order.totals;
    assert_eq!(totals.currency.code(), "CNY");
    assert_eq!(totals.subtotal, cny(11440), "Σ price × quantity");
    assert_eq!(totals.fees.delivery, cny(500));
    assert_eq!(totals.fees.packaging, cny(250));
    assert_eq!(totals.total, cny(11190), "total as sent");
    assert_eq!(totals.tip, cny(0));
    assert_eq!(totals.tax, cny(0));
    assert_eq!(order.payment, Payment::Prepaid);
    let discounts: Vec<(&str, i64, FundedBy)> = totals
        .discounts
        .iter()
        .map(|d| (d.label.as_str(), d.amount.minor, d.funded_by))
        .collect();
    assert_eq!(
        discounts,
        [
            ("满100减10 (美团承担)", 400, FundedBy::Platform),
            ("满100减10 (商家承担)", 600, FundedBy::Merchant),
        ],
        "split by who funds it; the `{{}}` entry is skipped"
    );
    assert_eq!(order.check(), Ok(vec![]), "the parts add up");

    // A total that does not add up is kept and flagged, never corrected.
    let mut params = order_params();
    set(&mut params, "total", "100");
    let order = order_of(params).expect("order");
    assert_eq!(order.totals.total, cny(10000));
    assert_eq!(
        order.check(),
        Ok(vec![Flag::TotalsMismatch {
            expected: cny(11190),
            reported: cny(10000)
        }])
    );
}

#[test]
fn discount_funding_follows_mt_and_poi_charges() {
    let with_extras = |extras: &str| {
        let mut params = order_params();
        set(&mut params, "extras", extras);
        order_of(params).expect("order").totals.discounts
    };
    let funded = |extras: &str| -> Vec<(i64, FundedBy)> {
        with_extras(extras)
            .iter()
            .map(|d| (d.amount.minor, d.funded_by))
            .collect()
    };
    assert_eq!(
        funded(r#"[{"reduce_fee":3,"mt_charge":3,"poi_charge":0,"remark":"红包"}]"#),
        [(300, FundedBy::Platform)]
    );
    assert_eq!(
        funded(r#"[{"reduce_fee":"2.5","poi_charge":"2.5"}]"#),
        [(250, FundedBy::Merchant)]
    );
    assert_eq!(
        funded(r#"[{"reduce_fee":5,"remark":"满减"}]"#),
        [(500, FundedBy::Unknown)],
        "no split sent"
    );
    assert_eq!(
        funded(r#"[{"reduce_fee":5,"mt_charge":1,"poi_charge":1}]"#),
        [(500, FundedBy::Unknown)],
        "a split that does not add up"
    );
    assert_eq!(
        funded(r#"[{"reduce_fee":0,"poi_charge":12,"type":5,"remark":"满赠"}]"#),
        [],
        "a gift takes nothing off"
    );
    assert_eq!(funded("[{}]"), []);
    assert_eq!(funded(""), []);
    assert_eq!(
        with_extras(r#"[{"reduce_fee":1,"type":9}]"#)[0].label,
        "美团活动 (type 9)"
    );
}

#[test]
fn scheduled_pickup_and_cash_orders() {
    let mut params = order_params();
    set(&mut params, "delivery_time", "1795233600");
    let order = order_of(params).expect("order");
    assert_eq!(
        order.fulfillment.timing,
        Timing::Scheduled {
            at: Utc
                .with_ymd_and_hms(2026, 11, 21, 4, 0, 0)
                .single()
                .expect("time")
        }
    );

    let mut params = order_params();
    set(&mut params, "pick_type", "1");
    set(&mut params, "pay_type", "1");
    let order = order_of(params).expect("order");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(order.fulfillment.delivered_by, None);
    assert_eq!(order.payment, Payment::PayAtStore);
    assert_eq!(order.totals.cash_due, Some(cny(11190)));

    let mut params = order_params();
    set(&mut params, "pay_type", "1");
    let order = order_of(params).expect("order");
    assert_eq!(order.payment, Payment::CashOnDelivery);

    let mut params = order_params();
    set(&mut params, "logistics_code", "0000");
    let order = order_of(params).expect("order");
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let mut params = order_params();
    remove(&mut params, "logistics_code");
    let order = order_of(params).expect("order");
    assert_eq!(
        order.fulfillment.delivered_by, None,
        "unknown without logistics_code"
    );
    let mut params = order_params();
    remove(&mut params, "logistics_code");
    set(&mut params, "is_third_shipping", "1");
    let order = order_of(params).expect("order");
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
}

fn malformed(params: Params) -> String {
    match order_of(params) {
        Err(ChannelError::Malformed(message)) => message,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn unreadable_orders_name_the_field() {
    let without = |key: &str| {
        let mut params = order_params();
        remove(&mut params, key);
        params
    };
    let with = |key: &str, value: &str| {
        let mut params = order_params();
        set(&mut params, key, value);
        params
    };
    assert_eq!(malformed(without("order_id")), "order_id: missing");
    assert_eq!(malformed(without("app_poi_code")), "app_poi_code: missing");
    assert_eq!(malformed(without("detail")), "detail: missing");
    assert_eq!(malformed(without("total")), "total: missing");
    assert_eq!(malformed(without("ctime")), "ctime: missing");
    assert!(malformed(with("detail", "not json")).starts_with("detail: not a JSON array"));
    assert!(malformed(with("extras", "{")).starts_with("extras: "));
    assert!(
        malformed(with(
            "detail",
            r#"[{"food_name":"a","quantity":1,"price":1},{"food_name":"b","quantity":1}]"#
        )) == "detail[1].price: missing"
    );
    assert_eq!(
        malformed(with(
            "detail",
            r#"[{"food_name":"a","quantity":"two","price":1}]"#
        )),
        "detail[0].quantity: `two` is not a whole number"
    );
    assert_eq!(
        malformed(with(
            "detail",
            r#"[{"food_name":"a","quantity":1,"price":[1]}]"#
        )),
        "detail[0].price: expected a string or a number, found `[1]`"
    );
    assert!(malformed(with("pick_type", "3")).starts_with("pick_type: unknown pick type"));
    assert!(malformed(with("pay_type", "9")).starts_with("pay_type: unknown pay type"));
    assert!(malformed(with("delivery_time", "soon")).starts_with("delivery_time:"));
    assert!(malformed(with("latitude", "north")).starts_with("latitude:"));
}

/// Bytes that are not UTF-8 (Latin-1 "Crème", then 0xFF 0xFE) in a form value are refused
/// as malformed, even when the signature covers what they decode to with replacement
/// characters: the push is never read as `Cr\u{FFFD}me \u{FFFD}\u{FFFD}`.
#[test]
fn a_push_that_is_not_utf8_is_refused_not_read_with_replacement_characters() {
    let url = format!("{PUBLIC}/order");
    let mut params = order_params();
    set(&mut params, "caution", "MARK");
    let encoded = sign::encode_form(&params).replace("MARK", "Cr%E8me+%FF%FE");
    // Signed over what the bytes decode to, replacement characters and all.
    let timestamp = (CTIME + 2).to_string();
    let mut decoded = sign::decode_form(encoded.as_bytes());
    decoded.push(("app_id".to_owned(), DEV_APP_ID.to_owned()));
    decoded.push(("timestamp".to_owned(), timestamp.clone()));
    assert!(
        decoded
            .iter()
            .any(|(k, v)| k == "caution" && v.contains('\u{FFFD}')),
        "the signed values carry replacement characters"
    );
    let sig = sign::sign(&url, &decoded, DEV_APP_SECRET);
    let body = format!("{encoded}&app_id={DEV_APP_ID}&timestamp={timestamp}&sig={sig}");
    let request = raw_request("order", Method::POST, &body);
    let adapter = adapter();
    adapter.verify(&request).expect("the signature covers them");
    assert_eq!(
        adapter.parse(&request),
        Err(ChannelError::Malformed(
            "parameter `caution` is not UTF-8".to_owned()
        ))
    );
    // In the query too, and in the raw bytes of the body.
    let mut raw = raw_request("order", Method::POST, &sign::encode_form(&order_params()));
    raw.body = Bytes::from(b"caution=Cr\xE8me&order_id=1".to_vec());
    assert!(
        matches!(adapter.parse(&raw), Err(ChannelError::Malformed(m)) if m.contains("`caution`"))
    );
    assert_eq!(sign::not_utf8(b"a=%E7%8E%9B&b=+ok"), None);
    assert_eq!(sign::not_utf8(b"ok=1&%FF=2"), Some("%FF".to_owned()));
}

#[test]
fn a_fraction_of_a_fen_fails_the_order_never_rounds() {
    let mut params = order_params();
    set(
        &mut params,
        "detail",
        r#"[{"food_name":"a","quantity":1,"price":12.345}]"#,
    );
    assert_eq!(
        order_of(params),
        Err(ChannelError::Order(OrderError::MoneyAt {
            field: "detail[0].price".into(),
            source: MoneyError::FractionalMinorUnit {
                value: "12.345".into(),
                currency: Currency::parse("CNY").expect("CNY"),
                exponent: 2,
            },
        }))
    );
    let mut params = order_params();
    set(&mut params, "shipping_fee", "0.001");
    assert!(matches!(
        order_of(params),
        Err(ChannelError::Order(OrderError::MoneyAt { field, .. })) if field == "shipping_fee"
    ));
    // Half a box of 0.01 yuan is half a fen.
    let mut params = order_params();
    set(
        &mut params,
        "detail",
        r#"[{"food_name":"a","quantity":1,"price":1,"box_num":0.5,"box_price":0.01}]"#,
    );
    assert!(matches!(
        order_of(params),
        Err(ChannelError::Order(OrderError::MoneyAt { field, .. })) if field == "detail[0].box_num"
    ));
}

// ---------------------------------------------------------------------------------------
// Other pushes
// ---------------------------------------------------------------------------------------

fn inbound(event: &str, method: Method, pairs: &[(&str, &str)]) -> Delivery {
    delivered(&request(event, method, p(pairs))).expect("delivery")
}

#[test]
fn cancel_pushes_cancel_with_the_reason_and_its_code() {
    let delivery = inbound(
        "cancel",
        Method::GET,
        &[
            ("order_id", "42"),
            ("reason_code", "1102"),
            ("reason", "用户取消订单"),
        ],
    );
    assert_eq!(delivery.dedupe_key, "42:cancel");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "42".into(),
            reason: Some("用户取消订单 (1102)".into()),
        }
    );
    let delivery = inbound(
        "cancel",
        Method::POST,
        &[("order_id", "42"), ("reason_code", "1001"), ("reason", "")],
    );
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: "42".into(),
            reason: Some("系统取消：超时未确认 (1001)".into()),
        }
    );
}

#[test]
fn refunds_cancel_only_when_agreed() {
    let agree = inbound(
        "refund",
        Method::GET,
        &[
            ("order_id", "42"),
            ("notify_type", "agree"),
            ("reason", "商品缺货"),
        ],
    );
    assert_eq!(agree.dedupe_key, "42:refund.agree");
    assert_eq!(
        agree.inbound,
        Inbound::Cancelled {
            external_order_id: "42".into(),
            reason: Some("美团退款已同意: 商品缺货".into()),
        }
    );
    for notify in ["apply", "reject", "cancelRefund", "cancelRefundComplaint"] {
        let delivery = inbound(
            "refund",
            Method::GET,
            &[("order_id", "42"), ("notify_type", notify), ("reason", "")],
        );
        assert_eq!(delivery.dedupe_key, format!("42:refund.{notify}"));
        assert_eq!(
            delivery.inbound,
            Inbound::Ignored {
                event: format!("refund.{notify}")
            }
        );
    }
    assert_eq!(
        delivered(&request("refund", Method::GET, p(&[("order_id", "42")]))),
        Err(ChannelError::Malformed("notify_type: missing".into()))
    );
}

#[test]
fn logistics_completed_and_confirmed_pushes() {
    let pairs = |status: &'static str| {
        [
            ("order_id", "42"),
            ("logistics_status", status),
            ("time", "1795176000"),
            ("dispatcher_name", "张师傅"),
            ("dispatcher_mobile", "13900001111_5566"),
        ]
    };
    let picked = inbound("logistics", Method::POST, &pairs("20"));
    assert_eq!(picked.dedupe_key, "42:logistics.20");
    assert_eq!(
        picked.inbound,
        Inbound::Progress {
            external_order_id: "42".into(),
            action: StatusAction::PickedUp
        }
    );
    assert_eq!(
        inbound("logistics", Method::POST, &pairs("40")).inbound,
        Inbound::Progress {
            external_order_id: "42".into(),
            action: StatusAction::Delivered
        }
    );
    let other = inbound("logistics", Method::POST, &pairs("10"));
    assert_eq!(other.dedupe_key, "42:logistics.10");
    assert_eq!(
        other.inbound,
        Inbound::Ignored {
            event: "logistics.10".into()
        }
    );
    assert!(matches!(
        delivered(&request("logistics", Method::POST, p(&pairs("x20")))),
        Err(ChannelError::Malformed(m)) if m.starts_with("logistics_status")
    ));

    let completed = delivered(&request("completed", Method::POST, order_params())).expect("ok");
    assert_eq!(completed.dedupe_key, "27061900338318741:completed");
    assert_eq!(
        completed.inbound,
        Inbound::Progress {
            external_order_id: "27061900338318741".into(),
            action: StatusAction::Complete
        }
    );
    let confirmed = delivered(&request("confirmed", Method::POST, order_params())).expect("ok");
    assert_eq!(confirmed.dedupe_key, "27061900338318741:confirmed");
    assert_eq!(
        confirmed.inbound,
        Inbound::Ignored {
            event: "confirmed".into()
        }
    );
}

#[test]
fn an_unknown_push_type_is_unsupported() {
    let mut request = request("privacy", Method::POST, p(&[("order_id", "42")]));
    assert!(matches!(
        adapter().parse(&request),
        Err(ChannelError::Unsupported(m)) if m.contains("order, cancel, refund, confirmed, completed, logistics")
    ));
    request.event = None;
    assert!(matches!(
        adapter().parse(&request),
        Err(ChannelError::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------

fn body(reply: &crossdock_channel::Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).expect("JSON reply")
}

#[test]
fn accepted_pushes_get_data_ok_and_refusals_meituans_error_shape() {
    let adapter = adapter();
    let request = request("order", Method::POST, order_params());
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
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.content_type, Some("application/json"));
        assert_eq!(reply.body, br#"{"data":"ok"}"#);
    }
    let refused = |error: ChannelError| {
        let reply = adapter.reply(&request, Outcome::Refused(&error));
        let body = body(&reply);
        assert_eq!(body["data"], "ng", "{body}");
        (
            reply.status.as_u16(),
            body["error"]["code"].as_u64().unwrap_or_default(),
            body["error"]["msg"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let (status, code, msg) = refused(ChannelError::Unauthorized(
        "sig does not match the parameters and the app secret".into(),
    ));
    assert_eq!((status, code), (401, 703));
    assert!(msg.starts_with("签名验证错误"), "{msg}");
    assert_eq!(
        refused(ChannelError::Unauthorized(
            "app_id `1` is not this app's".into()
        ))
        .1,
        702
    );
    let (status, code, _) = refused(ChannelError::Unauthorized("missing parameter `sig`".into()));
    assert_eq!((status, code), (401, 701));
    let (status, code, _) = refused(ChannelError::Malformed("order_id: missing".into()));
    assert_eq!((status, code), (400, 701));
    let (status, code, msg) = refused(ChannelError::Malformed("detail: x".into()));
    assert_eq!((status, code), (400, 700));
    assert!(msg.contains("detail: x"), "{msg}");
    assert_eq!(refused(ChannelError::Order(OrderError::NoLines)).0, 400);
    assert_eq!(
        refused(ChannelError::Unsupported("x".into())),
        (404, 700, "参数错误: unsupported: x".into())
    );
}

#[test]
fn refusals_through_verify_and_parse_reply_with_the_right_code() {
    let adapter = adapter();
    let mut params = order_params();
    remove(&mut params, "order_id");
    let request = request("order", Method::POST, params);
    let error = adapter
        .verify(&request)
        .and_then(|()| adapter.parse(&request))
        .expect_err("refused");
    let reply = adapter.reply(&request, Outcome::Refused(&error));
    assert_eq!(reply.status.as_u16(), 400);
    assert_eq!(body(&reply)["error"]["code"], 701);
}

// ---------------------------------------------------------------------------------------
// Push plans
// ---------------------------------------------------------------------------------------

fn stored(change: impl FnOnce(&mut Params), status: Status) -> Order {
    let mut params = order_params();
    change(&mut params);
    let order = order_of(params).expect("order");
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

fn change(order: &Order, action: StatusAction) -> StatusChange {
    StatusChange {
        action,
        from: order.status,
        at: Utc::now(),
    }
}

fn calls(plan: Result<Plan, ChannelError>) -> Vec<(&'static str, Params, bool, Option<Reached>)> {
    match plan {
        Ok(Plan::Calls(calls)) => calls
            .into_iter()
            .map(|c| (c.path, c.params, c.best_effort, c.reached))
            .collect(),
        other => panic!("expected calls, got {other:?}"),
    }
}

fn order_param() -> (String, String) {
    ("order_id".to_owned(), "27061900338318741".to_owned())
}

#[test]
fn accept_is_received_then_confirm() {
    let order = stored(|_| {}, Status::Received);
    assert_eq!(
        calls(plan(
            &order,
            &change(&order, StatusAction::Accept { prep_minutes: 15 })
        )),
        [
            ("/order/poi_received", vec![order_param()], true, None),
            (
                "/order/confirm",
                vec![order_param()],
                false,
                Some(Reached::Confirmed)
            ),
        ]
    );
}

#[test]
fn reject_cancel_and_fail_are_order_cancel_with_a_merchant_code() {
    let order = stored(|_| {}, Status::Received);
    for (action, code, reason) in [
        (
            StatusAction::Reject {
                reason: "out of dough".into(),
            },
            "2003",
            "out of dough",
        ),
        (
            StatusAction::Cancel {
                reason: "Customer called to cancel".into(),
            },
            "2006",
            "Customer called to cancel",
        ),
        (
            StatusAction::Fail {
                reason: "oven broke".into(),
            },
            "2007",
            "oven broke",
        ),
    ] {
        assert_eq!(
            calls(plan(&order, &change(&order, action))),
            [(
                "/order/cancel",
                vec![
                    order_param(),
                    ("reason_code".to_owned(), code.to_owned()),
                    ("reason".to_owned(), reason.to_owned()),
                ],
                false,
                Some(Reached::Cancelled)
            )]
        );
    }
}

#[test]
fn ready_and_courier_steps_depend_on_who_delivers() {
    let platform = stored(|_| {}, Status::Accepted);
    assert_eq!(
        calls(plan(&platform, &change(&platform, StatusAction::Ready))),
        [(
            "/order/preparationMealComplete",
            vec![order_param()],
            false,
            Some(Reached::Delivering)
        )]
    );
    for action in [StatusAction::PickedUp, StatusAction::Delivered] {
        assert!(matches!(
            plan(&platform, &change(&platform, action)),
            Ok(Plan::NotApplicable(why)) if why.contains("fleet")
        ));
    }
    for merchant in [
        stored(|p| set(p, "logistics_code", "0000"), Status::Ready),
        stored(|p| remove(p, "logistics_code"), Status::Ready),
    ] {
        assert_eq!(
            calls(plan(&merchant, &change(&merchant, StatusAction::PickedUp))),
            [(
                "/order/delivering",
                vec![order_param()],
                false,
                Some(Reached::Delivering)
            )]
        );
        assert_eq!(
            calls(plan(&merchant, &change(&merchant, StatusAction::Delivered))),
            [(
                "/order/arrived",
                vec![order_param()],
                false,
                Some(Reached::Arrived)
            )]
        );
    }
    let pickup = stored(|p| set(p, "pick_type", "1"), Status::Ready);
    assert!(matches!(
        plan(&pickup, &change(&pickup, StatusAction::PickedUp)),
        Ok(Plan::NotApplicable(_))
    ));
    for action in [StatusAction::Preparing, StatusAction::Complete] {
        assert!(matches!(
            plan(&platform, &change(&platform, action)),
            Ok(Plan::NotApplicable(why)) if why.starts_with("Meituan has no call")
        ));
    }
    let mut bad = platform.clone();
    bad.order.external_order_id = " ".into();
    assert!(matches!(
        plan(&bad, &change(&bad, StatusAction::Ready)),
        Err(ChannelError::Malformed(_))
    ));
}

#[test]
fn viewstatus_evidence_per_call() {
    assert!(Reached::Confirmed.holds(4) && Reached::Confirmed.holds(8));
    assert!(!Reached::Confirmed.holds(9) && !Reached::Confirmed.holds(3));
    assert!(Reached::Cancelled.holds(9) && !Reached::Cancelled.holds(8));
    assert!(Reached::Delivering.holds(6) && !Reached::Delivering.holds(4));
    assert!(Reached::Arrived.holds(8) && !Reached::Arrived.holds(6));
}

#[test]
fn merchant_reason_codes_follow_keywords() {
    for (reason, code) in [
        ("用户要求取消", "2006"),
        ("rider never came", "2004"),
        ("配送太远", "2004"),
        ("complaint", "2005"),
        ("接单超时", "2001"),
        ("customer changed the order", "2006"),
        ("order modified", "2002"),
        ("store too busy", "2003"),
        ("商品已售完", "2003"),
        ("no store can take the order", "2003"),
        ("", "2007"),
    ] {
        assert_eq!(merchant_reason_code(reason), code, "{reason}");
    }
}

// ---------------------------------------------------------------------------------------
// Meituan's answers
// ---------------------------------------------------------------------------------------

#[test]
fn answers_map_onto_retryable_and_permanent_errors() {
    assert!(read_answer(br#"{"data":"ok"}"#, "/order/confirm").is_ok());
    assert!(read_answer(br#"{"data":{"status":4}}"#, "/order/viewstatus").is_ok());
    let error = |body: &str| read_answer(body.as_bytes(), "/order/confirm").expect_err("ng");
    let system = error(r#"{"data":"ng","error":{"code":600,"msg":"内部错误"}}"#);
    assert!(system.is_retryable(), "{system}");
    let limited = error(r#"{"data":"ng","error":{"code":711,"msg":"超过流量限制"}}"#);
    assert_eq!(limited, ChannelError::RateLimited { retry_after: None });
    for (code, status) in [(700, 400), (701, 400), (702, 401), (703, 401), (808, 409)] {
        let refused = error(&format!(
            r#"{{"data":"ng","error":{{"code":{code},"msg":"x"}}}}"#
        ));
        assert!(!refused.is_retryable(), "{refused}");
        assert!(
            matches!(&refused, ChannelError::Platform { status: s, body } if *s == status && body.contains(&code.to_string())),
            "{refused:?}"
        );
    }
    let garbled = error("<html>bad gateway</html>");
    assert!(
        garbled.is_retryable(),
        "unreadable answers are retried: {garbled}"
    );
    assert!(!error(r#"{"data":"ng"}"#).is_retryable());
}

// ---------------------------------------------------------------------------------------
// Configuration
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
fn the_factory_builds_from_defaults_and_options() {
    assert_eq!(Factory.id(), "meituan");
    assert_eq!(Factory.dev_secrets(), &[("app_secret", DEV_APP_SECRET)]);
    let channel = Factory
        .build(&settings(serde_json::Value::Null, true))
        .expect("defaults");
    assert_eq!(channel.id().as_str(), "meituan");
    assert_eq!(channel.push_rate().per_second, 20);
    let channel = Factory
        .build(&settings(
            serde_json::json!({
                "base_url": "http://127.0.0.1:9/api/v1/",
                "app_id": "1234",
                "timeout_secs": 3,
                "accept_window_secs": 120,
                "requests_per_second": 5
            }),
            true,
        ))
        .expect("options");
    assert_eq!(channel.push_rate().per_second, 5);
    let config = MeituanConfig::default();
    assert_eq!(config.base_url, "https://waimaiopen.meituan.com/api/v1");
    assert_eq!(config.app_id, DEV_APP_ID);
}

#[test]
fn the_factory_refuses_bad_options_and_a_missing_secret_in_production() {
    let build = |options: serde_json::Value| {
        Factory
            .build(&settings(options, true))
            .map(|_| ())
            .expect_err("refused")
    };
    assert!(
        build(serde_json::json!({"base_uri": "x"}))
            .to_string()
            .contains("base_uri")
    );
    assert!(
        build(serde_json::json!({"base_url": "ftp://x"}))
            .to_string()
            .contains("base_url")
    );
    assert!(
        build(serde_json::json!({"base_url": "http://x/?a=1"}))
            .to_string()
            .contains("query")
    );
    assert!(
        build(serde_json::json!({"app_id": " "}))
            .to_string()
            .contains("app_id")
    );
    assert!(
        build(serde_json::json!({"timeout_secs": 0}))
            .to_string()
            .contains("timeout_secs")
    );
    assert!(
        build(serde_json::json!({"accept_window_secs": 0}))
            .to_string()
            .contains("accept_window_secs")
    );
    assert!(
        build(serde_json::json!({"requests_per_second": 0}))
            .to_string()
            .contains("requests_per_second")
    );
    let production = Factory
        .build(&settings(serde_json::Value::Null, false))
        .map(|_| ())
        .expect_err("production needs the real secret");
    assert_eq!(
        production,
        ConfigError::MissingSecret {
            channel: "meituan".into(),
            name: "app_secret".into(),
            env: "CROSSDOCK_SECRET_MEITUAN_APP_SECRET".into(),
        }
    );
}
