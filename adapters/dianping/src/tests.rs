//! Unit tests of the adapter: the refusal of webhooks, fixtures → unified orders (set
//! `UPDATE_EXPECT=1` to rewrite `fixtures/dianping/*.expected.json`, then read the diff),
//! the section-10 rules that apply to vouchers, result codes → errors, push mapping,
//! factory options and secrets.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::body::Bytes;
use chrono::{TimeZone, Utc};
use crossdock_channel::normalize::{normalize_claim, refusal as refusal_document};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, HeaderMap, Inbound, InboundRequest,
    SecretSource,
};
use crossdock_model::{
    FulfillmentKind, FundedBy, MoneyError, NewOrder, Order, OrderError, OrderId, Payment, Status,
    StatusAction, StatusChange,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;

fn adapter() -> Dianping {
    adapter_with(DianpingConfig::default())
}

fn adapter_with(config: DianpingConfig) -> Dianping {
    Dianping::new(
        config,
        SecretString::from(DEV_APP_SECRET),
        SecretString::from(DEV_SESSION),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dianping")
}

fn claim(shop: &str, code: &str, count: u32) -> CodeClaim {
    CodeClaim {
        channel_store_ref: shop.to_owned(),
        code: code.to_owned(),
        count,
        request_id: "req-1".to_owned(),
        claimed_at: chrono::Utc::now(),
    }
}

const SHOP: &str = "5mq395xvm7us1trgmn4jxl3c";

/// One consume answer entry with the given prices (JSON number text).
fn entry(code: &str, price: &str, market: Option<&str>, title: &str) -> String {
    let market = market
        .map(|m| format!(r#""deal_marketprice":{m},"#))
        .unwrap_or_default();
    format!(
        r#"{{{market}"deal_price":{price},"deal_title":"{title}","receipt_code":"{code}","open_shop_uuid":"{SHOP}","deal_id":993507556,"dealgroup_id":794806046,"mobile":"176****5045","order_id":"1693542243"}}"#
    )
}

fn answer(entries: &[String]) -> Vec<u8> {
    format!(
        r#"{{"code":200,"msg":"成功","data":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes()
}

fn order_of(delivery: &Delivery) -> &NewOrder {
    match &delivery.inbound {
        Inbound::Order(order) => order,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn redeem(body: &[u8], claim: &CodeClaim) -> Result<Delivery, ChannelError> {
    adapter().parse_redeemed(claim, body)
}

// ---------------------------------------------------------------------------------------
// No webhooks
// ---------------------------------------------------------------------------------------

fn webhook() -> InboundRequest {
    InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "https://hub.example/webhooks/dianping".to_owned(),
        query: None,
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"{\"code\":\"0332808512\"}"),
        received_at: Utc::now(),
    }
}

#[test]
fn every_webhook_is_refused_because_dianping_never_calls_the_hub() {
    let adapter = adapter();
    match adapter.verify(&webhook()) {
        Err(ChannelError::Unauthorized(message)) => {
            assert!(message.contains("no webhook"), "{message}");
            assert!(message.contains("/api/v1/codes/redeem"), "{message}");
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert!(matches!(
        adapter.parse(&webhook()),
        Err(ChannelError::Unsupported(_))
    ));
}

#[test]
fn fetching_is_not_a_thing_here() {
    let reference = crossdock_channel::FetchRef {
        external_order_id: "x".into(),
        resource: "y".into(),
        scheduled: false,
    };
    assert!(matches!(
        adapter().parse_fetched(&reference, b"{}"),
        Err(ChannelError::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// Every `fixtures/dianping/*.claim.json` with its `*.fetched.json` normalizes to its
/// `*.expected.json`, in the kit's format (an error is `{"error": {kind, message}}`).
#[test]
fn fixtures_normalize_to_their_expected_documents() {
    let adapter = adapter();
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".claim.json")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6, "only {} fixtures", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let path = |suffix: &str| fixtures_dir().join(format!("{name}{suffix}"));
        let claim: CodeClaim =
            serde_json::from_slice(&std::fs::read(path(".claim.json")).expect("claim"))
                .expect("a claim");
        let answer = std::fs::read(path(".fetched.json")).expect("fetched");
        let text = match normalize_claim(&adapter, &claim, &answer) {
            Ok(document) => document.to_pretty() + "\n",
            Err(error) => {
                serde_json::to_string_pretty(&refusal_document(&error)).expect("json") + "\n"
            }
        };
        if update {
            std::fs::write(path(".expected.json"), &text).expect("write expected");
            continue;
        }
        let expected = std::fs::read_to_string(path(".expected.json")).unwrap_or_default();
        let same = serde_json::from_str::<Value>(&expected).ok()
            == serde_json::from_str::<Value>(&text).ok();
        if !same {
            failures.push(format!("{name}: got\n{text}\nexpected\n{expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fixture_stores_are_the_chains_dianping_shops() {
    let chain: Value = serde_json::from_slice(
        &std::fs::read(fixtures_dir().join("../chain/chain.json")).expect("chain"),
    )
    .expect("json");
    let shops: Vec<&str> = chain["stores"]
        .as_array()
        .expect("stores")
        .iter()
        .filter_map(|s| s["channels"]["dianping"].as_str())
        .collect();
    for entry in std::fs::read_dir(fixtures_dir()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".claim.json") {
            let claim: CodeClaim =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("claim");
            assert!(
                shops.contains(&claim.channel_store_ref.as_str()),
                "{}: {} is not a chain shop",
                path.display(),
                claim.channel_store_ref
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Normalization rules
// ---------------------------------------------------------------------------------------

#[test]
fn yuan_are_read_from_their_text_exactly() {
    let body = answer(&[entry("0332808512", "79.9", Some("100.00"), "代金券")]);
    let delivery = redeem(&body, &claim(SHOP, "0332808512", 1)).expect("order");
    let order = order_of(&delivery);
    assert_eq!(order.totals.currency.code(), "CNY");
    assert_eq!(order.lines[0].unit_price.minor, 10000);
    assert_eq!(order.totals.total.minor, 7990);
    assert_eq!(order.totals.discounts[0].amount.minor, 2010);
    // 0.1 + 0.2 style values stay exact.
    let body = answer(&[entry("0332808512", "0.3", None, "x")]);
    let delivery = redeem(&body, &claim(SHOP, "0332808512", 1)).expect("order");
    assert_eq!(order_of(&delivery).totals.total.minor, 30);
}

#[test]
fn a_fractional_fen_fails_the_redemption_naming_the_field() {
    let body = answer(&[entry("0332808512", "88.885", None, "x")]);
    match redeem(&body, &claim(SHOP, "0332808512", 1)) {
        Err(ChannelError::Order(OrderError::MoneyAt { field, source })) => {
            assert_eq!(field, "consume answer data[0].deal_price");
            assert!(matches!(source, MoneyError::FractionalMinorUnit { .. }));
        }
        other => panic!("expected a money error, got {other:?}"),
    }
    let body = answer(&[entry("0332808512", "88", Some("1e2"), "x")]);
    match redeem(&body, &claim(SHOP, "0332808512", 1)) {
        Err(ChannelError::Order(OrderError::MoneyAt { field, .. })) => {
            assert_eq!(field, "consume answer data[0].deal_marketprice")
        }
        other => panic!("expected a money error, got {other:?}"),
    }
}

#[test]
fn a_market_price_above_the_deal_price_is_a_merchant_funded_discount() {
    let body = answer(&[entry("0332808512", "128", Some("142"), "双人套餐")]);
    let delivery = redeem(&body, &claim(SHOP, "0332808512", 1)).expect("order");
    let order = order_of(&delivery);
    assert_eq!(order.lines[0].unit_price.minor, 14200);
    assert_eq!(order.totals.subtotal.minor, 14200);
    assert_eq!(order.totals.discounts.len(), 1);
    assert_eq!(order.totals.discounts[0].amount.minor, 1400);
    assert_eq!(order.totals.discounts[0].funded_by, FundedBy::Merchant);
    assert_eq!(order.totals.total.minor, 12800);
    assert!(order.totals.total_is_derived);
    assert_eq!(order.check(), Ok(vec![]), "the parts add up");

    // No market price, or one not above the deal price: the deal price, no discount.
    for market in [None, Some("128"), Some("100")] {
        let body = answer(&[entry("0332808512", "128", market, "x")]);
        let delivery = redeem(&body, &claim(SHOP, "0332808512", 1)).expect("order");
        let order = order_of(&delivery);
        assert_eq!(order.lines[0].unit_price.minor, 12800, "{market:?}");
        assert!(order.totals.discounts.is_empty(), "{market:?}");
        assert_eq!(order.totals.total.minor, 12800);
    }
}

#[test]
fn vouchers_of_one_deal_are_one_line_with_their_count() {
    let body = answer(&[
        entry("1111111111", "98", Some("98"), "意式辣肠披萨"),
        entry("1111111112", "98", Some("98"), "意式辣肠披萨"),
    ]);
    let delivery = redeem(&body, &claim(SHOP, "1111111111", 2)).expect("order");
    let order = order_of(&delivery);
    assert_eq!(order.lines.len(), 1);
    assert_eq!(order.lines[0].quantity, 2);
    assert_eq!(order.lines[0].total.minor, 19600);
    assert_eq!(order.lines[0].channel_item_id, "993507556");
    assert_eq!(order.totals.total.minor, 19600);
    let receipts = order.channel_data["receipts"].as_array().expect("receipts");
    assert_eq!(receipts.len(), 2, "every voucher is kept for reversal");
}

/// Regression: an answer listing one voucher twice (or thousands of times) made one line
/// of that many vouchers; a negative deal price made an order whose total was negative.
#[test]
fn a_voucher_listed_twice_or_a_negative_price_is_refused() {
    let body = answer(&[
        entry("1111111111", "98", None, "意式辣肠披萨"),
        entry("1111111112", "98", None, "意式辣肠披萨"),
        entry("1111111111", "98", None, "意式辣肠披萨"),
    ]);
    match redeem(&body, &claim(SHOP, "1111111111", 2)) {
        Err(ChannelError::Malformed(message)) => assert_eq!(
            message,
            "consume answer data[2].receipt_code: voucher `1111111111` is listed more than once"
        ),
        other => panic!("expected malformed, got {other:?}"),
    }
    let body = answer(&[entry("1111111111", "-1", Some("88"), "玛格丽特披萨")]);
    let order = order_of(&redeem(&body, &claim(SHOP, "1111111111", 1)).expect("read")).clone();
    assert_eq!(order.totals.total.minor, -100);
    assert!(
        matches!(
            order.check(),
            Err(crossdock_model::OrderError::NegativeTotal { .. })
        ),
        "the hub's order check refuses it: {:?}",
        order.check()
    );
}

#[test]
fn identity_and_dedupe_come_from_the_typed_code() {
    let body = answer(&[entry("0332808512", "88", None, "x")]);
    let delivery = redeem(&body, &claim(SHOP, " 0332-8085 12 ", 1)).expect("order");
    assert_eq!(delivery.dedupe_key, "receipt:0332808512");
    let order = order_of(&delivery);
    assert_eq!(order.external_order_id, "1693542243-0332808512");
    assert_eq!(order.display_code.as_deref(), Some("0332808512"));
    assert_eq!(order.channel_store_ref.as_deref(), Some(SHOP));
    assert_eq!(order.payment, Payment::Prepaid);
    assert_eq!(order.customer.phone.as_deref(), Some("176****5045"));
    // The same answer read twice is the same delivery: a replay is a duplicate.
    let again = redeem(&body, &claim(SHOP, "0332808512", 1)).expect("order");
    assert_eq!(again.dedupe_key, delivery.dedupe_key);
    // Without an order id the code alone names the redemption.
    let body = br#"{"code":200,"data":[{"receipt_code":"0332808512","deal_id":1,"deal_title":"x","deal_price":1}]}"#;
    let delivery = redeem(body, &claim(SHOP, "0332808512", 1)).expect("order");
    assert_eq!(order_of(&delivery).external_order_id, "0332808512");
}

#[test]
fn take_away_deals_are_pickup_and_the_rest_dine_in() {
    for (title, kind) in [
        ("玛格丽特披萨单人餐", FulfillmentKind::DineIn),
        ("【外带】玛格丽特披萨", FulfillmentKind::Pickup),
        ("到店自取 双人餐", FulfillmentKind::Pickup),
        ("Pizza Party TAKEAWAY box", FulfillmentKind::Pickup),
        ("100元代金券", FulfillmentKind::DineIn),
    ] {
        let body = answer(&[entry("0332808512", "88", None, title)]);
        let delivery = redeem(&body, &claim(SHOP, "0332808512", 1)).expect("order");
        assert_eq!(order_of(&delivery).fulfillment.kind, kind, "{title}");
    }
}

#[test]
fn configured_deal_plus_fill_the_line() {
    let mut config = DianpingConfig::default();
    config
        .deal_plu
        .insert("993507556".to_owned(), "PZ-MARG-L".to_owned());
    let body = answer(&[entry("0332808512", "88", None, "玛格丽特")]);
    let delivery = adapter_with(config)
        .parse_redeemed(&claim(SHOP, "0332808512", 1), &body)
        .expect("order");
    assert_eq!(
        order_of(&delivery).lines[0].plu.as_deref(),
        Some("PZ-MARG-L")
    );
}

#[test]
fn unreadable_answers_name_what_is_wrong() {
    let cases: [(&[u8], &str); 6] = [
        (b"not json", "consume answer from Dianping"),
        (br#"{"code":200,"data":[]}"#, "lists no redeemed voucher"),
        (br#"{"code":200}"#, "lists no redeemed voucher"),
        (
            br#"{"code":200,"data":[{"receipt_code":"0332808512","deal_id":1,"deal_price":1}]}"#,
            "data[0].deal_title is missing",
        ),
        (
            br#"{"code":200,"data":[{"receipt_code":"0332808512","deal_title":"x","deal_price":1}]}"#,
            "data[0].deal_id is missing",
        ),
        (
            br#"{"code":200,"data":[{"receipt_code":"9999999999","deal_id":1,"deal_title":"x","deal_price":1}]}"#,
            "do not include the code `0332808512`",
        ),
    ];
    for (body, needle) in cases {
        match redeem(body, &claim(SHOP, "0332808512", 1)) {
            Err(ChannelError::Malformed(message)) => {
                assert!(message.contains(needle), "{message} lacks {needle}")
            }
            other => panic!("expected malformed ({needle}), got {other:?}"),
        }
    }
    let other_shop = br#"{"code":200,"data":[{"receipt_code":"0332808512","deal_id":1,"deal_title":"x","deal_price":1,"open_shop_uuid":"elsewhere"}]}"#;
    assert!(matches!(
        redeem(other_shop, &claim(SHOP, "0332808512", 1)),
        Err(ChannelError::Malformed(m)) if m.contains("open_shop_uuid")
    ));
}

#[test]
fn codes_are_made_canonical_or_refused() {
    assert_eq!(
        convert::normalize_code(" 0332 8085-12\t").expect("ok"),
        "0332808512"
    );
    for bad in ["", "  ", "03328085;12", "券码"] {
        assert!(
            matches!(
                convert::normalize_code(bad),
                Err(ChannelError::Malformed(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn the_cashiers_preview_shows_the_deal() {
    let body = r#"{"code":200,"msg":"验证校验通过","data":{"deal_marketprice":100,"payment_detail":[{"amount":1,"amount_type":10,"payment_detail_id":"4926962768587886220NWL850101"}],"dealgroup_id":794479306,"biz_type":0,"count":2,"mobile":"17612345045","deal_price":79.9,"receiptEndDate":1701359999000,"deal_title":"100元代金券","receipt_code":"5571630793","deal_id":993507556}}"#;
    let envelope = wire::read::<Receipt>(body.as_bytes(), "prepare").expect("reads");
    let preview =
        convert::preview(&adapter().settings, "5571630793", SHOP, envelope).expect("preview");
    assert_eq!(
        preview,
        json!({
            "channel": "dianping",
            "code": "5571630793",
            "store_ref": SHOP,
            "deal_id": "993507556",
            "dealgroup_id": "794479306",
            "deal_title": "100元代金券",
            "deal_price": {"minor": 7990, "currency": "CNY"},
            "market_price": {"minor": 10000, "currency": "CNY"},
            "uses_available": 2,
            "mobile": "176****5045",
            "expires_at": "2023-11-30T15:59:59Z",
            "fulfillment": "dine_in",
        })
    );
    let refused =
        wire::read::<Receipt>(r#"{"code":1001,"msg":"券码不存在"}"#.as_bytes(), "prepare")
            .expect("reads");
    assert!(matches!(
        convert::preview(&adapter().settings, "1", SHOP, refused),
        Err(ChannelError::Platform { status: 404, .. })
    ));
}

#[test]
fn mobiles_are_masked_for_the_cashier() {
    assert_eq!(convert::masked_mobile("176****5045"), "176****5045");
    assert_eq!(convert::masked_mobile("17612345045"), "176****5045");
    assert_eq!(convert::masked_mobile("12"), "****");
}

// ---------------------------------------------------------------------------------------
// Result codes
// ---------------------------------------------------------------------------------------

#[test]
fn result_codes_map_to_permanent_or_retryable_errors() {
    let cases: [(i64, Option<u16>, bool, &str); 13] = [
        (
            codes::UNKNOWN_CODE,
            Some(404),
            false,
            "not a valid Dianping voucher",
        ),
        (codes::ALREADY_USED, Some(409), false, "already used"),
        (codes::NOT_ENOUGH, Some(409), false, "already used"),
        (
            codes::WRONG_SHOP,
            Some(403),
            false,
            "not valid at this store",
        ),
        (codes::EXPIRED, Some(410), false, "expired"),
        (codes::NOT_CONSUMED, Some(409), false, "nothing to undo"),
        (codes::TOO_LATE_TO_REVERSE, Some(409), false, "too late"),
        (codes::BAD_SIGNATURE, Some(401), false, "app_secret"),
        (codes::BAD_SESSION, Some(403), false, "renew the `session`"),
        (codes::BAD_PARAMETER, Some(400), false, "parameters"),
        (503, Some(503), true, "try again"),
        (codes::RATE_LIMITED, None, true, ""),
        (777, Some(422), false, "refused the call"),
    ];
    for (code, status, retryable, needle) in cases {
        let error = refusal(Call::Consume, &code.to_string(), Some("平台说明"));
        assert_eq!(error.is_retryable(), retryable, "{code}: {error}");
        match (&error, status) {
            (ChannelError::Platform { status: got, body }, Some(want)) => {
                assert_eq!(*got, want, "{code}");
                assert!(body.contains(needle), "{code}: {body}");
                assert!(
                    body.contains("平台说明"),
                    "{code} keeps Dianping's msg: {body}"
                );
                assert!(body.contains(&format!("code {code}")), "{body}");
            }
            (ChannelError::RateLimited { .. }, None) => {}
            other => panic!("{code}: unexpected {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Push
// ---------------------------------------------------------------------------------------

fn stored_order(channel_data: Value) -> Order {
    let body = answer(&[entry("0332808512", "88", None, "x")]);
    let delivery = redeem(&body, &claim(SHOP, "0332808512", 1)).expect("order");
    let mut order = order_of(&delivery).clone();
    if !channel_data.is_null() {
        order.channel_data = channel_data;
    }
    Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status: Status::Received,
        store_id: None,
        flags: vec![],
        order,
    }
}

#[tokio::test]
async fn only_reject_and_cancel_have_a_call_on_dianping() {
    // The base URL goes nowhere: an action that needs no call never tries one.
    let adapter = adapter_with(DianpingConfig {
        base_url: "http://127.0.0.1:9".to_owned(),
        ..DianpingConfig::default()
    });
    let order = stored_order(Value::Null);
    for action in [
        StatusAction::Accept { prep_minutes: 10 },
        StatusAction::Preparing,
        StatusAction::Ready,
        StatusAction::PickedUp,
        StatusAction::Delivered,
        StatusAction::Complete,
        StatusAction::Fail { reason: "x".into() },
    ] {
        let change = StatusChange {
            action: action.clone(),
            from: Status::Received,
            at: Utc::now(),
        };
        match adapter.push(&order, &change).await {
            Ok(PushOutcome::NotApplicable { why }) => {
                assert!(why.contains("no order statuses"), "{why}")
            }
            other => panic!("{action:?}: expected not applicable, got {other:?}"),
        }
    }
    // A reject does call (and here fails to connect: retryable).
    let change = StatusChange {
        action: StatusAction::Reject {
            reason: "closed".into(),
        },
        from: Status::Received,
        at: Utc::now(),
    };
    let error = adapter.push(&order, &change).await.expect_err("no server");
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn a_reversal_needs_the_vouchers_in_channel_data() {
    let adapter = adapter();
    let change = StatusChange {
        action: StatusAction::Cancel { reason: "x".into() },
        from: Status::Accepted,
        at: Utc::now(),
    };
    for data in [json!({"receipts": []}), json!({"other": 1})] {
        let order = stored_order(data);
        assert!(matches!(
            adapter.push(&order, &change).await,
            Err(ChannelError::Malformed(m)) if m.contains("channel_data")
        ));
    }
}

#[test]
fn pushes_stay_under_the_assumed_rate() {
    let rate = adapter().push_rate();
    assert_eq!((rate.per_second, rate.burst), (10, 10));
}

// ---------------------------------------------------------------------------------------
// Signing of our calls
// ---------------------------------------------------------------------------------------

#[test]
fn calls_carry_the_common_parameters_and_a_verifiable_sign() {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time");
    let form = adapter().signed_form(&[("receipt_code", "0332808512".to_owned())], at);
    let get = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(get("app_key"), DEV_APP_KEY);
    assert_eq!(get("session"), DEV_SESSION);
    assert_eq!(get("timestamp"), "2026-11-20 20:00:00");
    assert_eq!(get("format"), "json");
    assert_eq!(get("v"), "1");
    assert_eq!(get("sign_method"), "MD5");
    let signature = get("sign");
    assert_eq!(signature.len(), 32);
    assert_eq!(signature, signature.to_ascii_lowercase());
    let pairs = form.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    assert!(sign::verify(pairs.clone(), DEV_APP_SECRET, signature));
    assert!(!sign::verify(pairs, "wrong secret", signature));
}

// ---------------------------------------------------------------------------------------
// Factory
// ---------------------------------------------------------------------------------------

fn settings(options: Value, development: bool, file: BTreeMap<String, String>) -> ChannelSettings {
    let mut secrets = BTreeMap::new();
    if !file.is_empty() {
        secrets.insert(CHANNEL_ID.to_owned(), file);
    }
    ChannelSettings {
        channel: CHANNEL_ID.to_owned(),
        options,
        secrets: SecretSource::new(secrets, development),
        dev_secrets: Factory.dev_secrets(),
        http: reqwest::Client::new(),
    }
}

#[test]
fn the_factory_builds_with_development_defaults() {
    let channel = Factory
        .build(&settings(Value::Null, true, BTreeMap::new()))
        .expect("builds");
    assert_eq!(channel.id().as_str(), "dianping");
    assert_eq!(Factory.id(), CHANNEL_ID);
    assert_eq!(
        Factory.dev_secrets(),
        &[("app_secret", DEV_APP_SECRET), ("session", DEV_SESSION)]
    );
}

#[test]
fn production_needs_both_real_secrets() {
    let error = Factory
        .build(&settings(Value::Null, false, BTreeMap::new()))
        .err()
        .expect("refused");
    assert!(
        matches!(&error, ConfigError::MissingSecret { name, .. } if name == "app_secret"),
        "{error}"
    );
    let only_secret = BTreeMap::from([("app_secret".to_owned(), "s".to_owned())]);
    let error = Factory
        .build(&settings(Value::Null, false, only_secret))
        .err()
        .expect("refused");
    assert!(
        matches!(&error, ConfigError::MissingSecret { name, .. } if name == "session"),
        "{error}"
    );
    let both = BTreeMap::from([
        ("app_secret".to_owned(), "s".to_owned()),
        ("session".to_owned(), "t".to_owned()),
    ]);
    assert!(Factory.build(&settings(Value::Null, false, both)).is_ok());
}

#[test]
fn options_are_typed_and_checked() {
    let good = json!({
        "base_url": "http://127.0.0.1:1234",
        "app_key": "k",
        "app_shop_account": "cashier-7",
        "app_shop_accountname": "收银台 7",
        "currency": "cny",
        "deal_plu": {"993507556": "PZ-MARG-L"},
        "timeout_secs": 3
    });
    assert!(
        Factory
            .build(&settings(good, true, BTreeMap::new()))
            .is_ok()
    );
    for (bad, needle) in [
        (json!({"base_url": "ftp://x"}), "http(s)"),
        (json!({"base_url": "not a url"}), "not a URL"),
        (json!({"currency": "yuan"}), "currency"),
        (json!({"timeout_secs": 0}), "timeout_secs"),
        (json!({"app_shop_account": " "}), "app_shop_account"),
        (json!({"unknown": 1}), "unknown field"),
    ] {
        let error = Factory
            .build(&settings(bad.clone(), true, BTreeMap::new()))
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(error.to_string().contains(needle), "{bad}: {error}");
    }
}
