//! The adapter against its simulator, over real HTTP on loopback: checking and redeeming
//! codes with signed calls, `requestid` idempotency, refused codes (unknown, used, other
//! shop, expired, not enough uses), forged signatures and expired sessions, rate limits
//! and faults, reversals on reject and cancel (repeat-safe, time-bound), and the `/_sim`
//! control endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use crossdock_adapter_dianping::simulator::{DianpingSim, SimConfig, VoucherState};
use crossdock_adapter_dianping::{
    CONSUME_PATH, DEV_APP_KEY, DEV_APP_SECRET, DEV_SESSION, Dianping, DianpingConfig,
    GETCONSUMED_PATH, PREPARE_PATH, signed_form,
};
use crossdock_channel::sim::{Fault, SampleFulfillment, SampleItem, SampleOrder, next_heard};
use crossdock_channel::{Channel, ChannelError, CodeClaim, Inbound, PushOutcome};
use crossdock_model::{
    FulfillmentKind, NewOrder, Order, OrderId, Status, StatusAction, StatusChange,
};
use secrecy::SecretString;
use serde_json::{Value, json};

const SHOP: &str = "5mq395xvm7us1trgmn4jxl3c";
const OTHER_SHOP: &str = "mfi2me5djije27y4buha2dr9";

struct Setup {
    sim: DianpingSim,
    adapter: Dianping,
}

async fn setup_with(config: SimConfig) -> Setup {
    let sim = DianpingSim::start(config).await.expect("simulator");
    let adapter = adapter_for(&sim, DEV_APP_SECRET, DEV_SESSION);
    Setup { sim, adapter }
}

async fn setup() -> Setup {
    setup_with(SimConfig::default()).await
}

/// What the hub does with a redemption: keeps the platform's answer and reads it.
#[derive(Debug)]
struct Redeemed {
    raw: bytes::Bytes,
    delivery: crossdock_channel::Delivery,
}

async fn redeem(adapter: &Dianping, claim: &CodeClaim) -> Result<Redeemed, ChannelError> {
    let raw = adapter.redeem_code(claim).await?;
    let delivery = adapter.parse_redeemed(claim, &raw)?;
    Ok(Redeemed { raw, delivery })
}

fn adapter_for(sim: &DianpingSim, secret: &str, session: &str) -> Dianping {
    Dianping::new(
        DianpingConfig {
            base_url: sim.base_url(),
            ..DianpingConfig::default()
        },
        SecretString::from(secret),
        SecretString::from(session),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

fn claim(shop: &str, code: &str, count: u32, request_id: &str) -> CodeClaim {
    CodeClaim {
        channel_store_ref: shop.to_owned(),
        code: code.to_owned(),
        count,
        request_id: request_id.to_owned(),
        claimed_at: chrono::Utc::now(),
    }
}

fn order_of(inbound: &Inbound) -> &NewOrder {
    match inbound {
        Inbound::Order(order) => order,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn stored(order: &NewOrder) -> Order {
    Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status: Status::Received,
        store_id: None,
        flags: vec![],
        order: order.clone(),
    }
}

fn change(action: StatusAction, from: Status) -> StatusChange {
    StatusChange {
        action,
        from,
        at: Utc::now(),
    }
}

fn platform_status(error: &ChannelError) -> Option<u16> {
    match error {
        ChannelError::Platform { status, .. } => Some(*status),
        _ => None,
    }
}

/// A deal of 88 yuan (list price 108) at `SHOP`, bought `count` times in one order.
fn sell(sim: &DianpingSim, count: u32) -> (i64, Vec<String>) {
    let deal = sim.create_deal("玛格丽特披萨（大）单人餐", 8800, 10800, &[SHOP]);
    let sold = sim.sell(deal.deal_id, count, "176****5045").expect("sold");
    (deal.deal_id, sold.codes)
}

#[tokio::test]
async fn a_checked_code_shows_the_deal_and_uses_nothing() {
    let Setup { sim, adapter } = setup().await;
    let (deal_id, codes) = sell(&sim, 2);
    let preview = adapter
        .check_code(&claim(SHOP, &codes[0], 1, "r1"))
        .await
        .expect("preview");
    assert_eq!(preview["deal_title"], "玛格丽特披萨（大）单人餐");
    assert_eq!(preview["deal_id"], json!(deal_id.to_string()));
    assert_eq!(
        preview["deal_price"],
        json!({"minor": 8800, "currency": "CNY"})
    );
    assert_eq!(
        preview["market_price"],
        json!({"minor": 10800, "currency": "CNY"})
    );
    assert_eq!(preview["uses_available"], 2);
    assert_eq!(preview["mobile"], "176****5045");
    assert_eq!(preview["fulfillment"], "dine_in");
    assert!(
        preview["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        sim.voucher(&codes[0]).expect("voucher").state,
        VoucherState::Unused
    );
    let calls = sim.calls().matching(PREPARE_PATH);
    assert_eq!(calls.len(), 1);
    let form = &calls[0].body;
    assert_eq!(form["receipt_code"], json!(codes[0]));
    assert_eq!(form["open_shop_uuid"], SHOP);
    assert_eq!(form["app_key"], DEV_APP_KEY);
    assert_eq!(
        form["session"], "<redacted>",
        "the call log hides the session"
    );
    assert_eq!(form["sign"], "<redacted>");
    assert_eq!(form["format"], "json");
    assert_eq!(form["v"], "1");
    assert_eq!(form["sign_method"], "MD5");
    assert_eq!(
        calls[0].headers["content-type"],
        "application/x-www-form-urlencoded;charset=UTF-8"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_redeemed_code_becomes_an_order_and_a_retry_uses_nothing_twice() {
    let Setup { sim, adapter } = setup().await;
    let (deal_id, codes) = sell(&sim, 1);
    let the_claim = claim(SHOP, &codes[0], 1, "hub-request-1");
    let redeemed = redeem(&adapter, &the_claim).await.expect("redeemed");
    let order = order_of(&redeemed.delivery.inbound);
    let voucher = sim.voucher(&codes[0]).expect("voucher");
    assert!(
        matches!(voucher.state, VoucherState::Consumed { ref requestid, .. } if requestid == "hub-request-1")
    );
    assert_eq!(
        order.external_order_id,
        format!("{}-{}", voucher.order_id, codes[0])
    );
    assert_eq!(
        redeemed.delivery.dedupe_key,
        format!("receipt:{}", codes[0])
    );
    assert_eq!(order.channel_store_ref.as_deref(), Some(SHOP));
    assert_eq!(order.lines[0].channel_item_id, deal_id.to_string());
    assert_eq!(order.lines[0].unit_price.minor, 10800);
    assert_eq!(order.totals.total.minor, 8800);
    assert_eq!(order.fulfillment.kind, FulfillmentKind::DineIn);
    assert_eq!(
        order.placed_at, the_claim.claimed_at,
        "placed when the code was claimed"
    );
    assert_eq!(order.check(), Ok(vec![]));
    // The raw answer is kept byte for byte, and reads back to the same order.
    let again = adapter
        .parse_redeemed(&the_claim, &redeemed.raw)
        .expect("reads");
    assert_eq!(again, redeemed.delivery);
    let form = &sim.calls().matching(CONSUME_PATH)[0].body;
    assert_eq!(form["requestid"], "hub-request-1");
    assert_eq!(form["count"], "1");
    assert_eq!(form["app_shop_account"], "crossdock-hub");
    assert_eq!(form["app_shop_accountname"], "Crossdock Hub");

    // The hub retries the same claim: same answer bytes, same dedupe key, nothing used.
    let retry = redeem(&adapter, &the_claim).await.expect("same answer");
    assert_eq!(retry.raw, redeemed.raw);
    assert_eq!(retry.delivery.dedupe_key, redeemed.delivery.dedupe_key);

    // A new claim for the same code is refused: already used.
    let error = redeem(&adapter, &claim(SHOP, &codes[0], 1, "hub-request-2"))
        .await
        .expect_err("used");
    assert_eq!(platform_status(&error), Some(409), "{error}");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("券码已使用"), "{error}");
    sim.stop().await;
}

#[tokio::test]
async fn several_uses_of_one_order_are_redeemed_together() {
    let Setup { sim, adapter } = setup().await;
    let (_, codes) = sell(&sim, 3);
    let error = redeem(&adapter, &claim(SHOP, &codes[1], 4, "too-many"))
        .await
        .expect_err("only three");
    assert_eq!(platform_status(&error), Some(409), "{error}");
    assert!(error.to_string().contains("剩余 3 张"), "{error}");
    let redeemed = redeem(&adapter, &claim(SHOP, &codes[1], 2, "two"))
        .await
        .expect("two redeemed");
    let order = order_of(&redeemed.delivery.inbound);
    assert_eq!(order.lines.len(), 1);
    assert_eq!(order.lines[0].quantity, 2);
    assert_eq!(order.totals.total.minor, 17600);
    assert!(
        order.external_order_id.ends_with(&codes[1]),
        "the typed code names it"
    );
    let consumed: Vec<&String> = codes
        .iter()
        .filter(|c| {
            matches!(
                sim.voucher(c).expect("v").state,
                VoucherState::Consumed { .. }
            )
        })
        .collect();
    assert_eq!(consumed.len(), 2);
    assert!(consumed.contains(&&codes[1]));
    // The one left is still redeemable, as its own order.
    let left = codes
        .iter()
        .find(|c| !consumed.contains(c))
        .expect("one left");
    let preview = adapter
        .check_code(&claim(SHOP, left, 1, "x"))
        .await
        .expect("usable");
    assert_eq!(preview["uses_available"], 1);
    let last = redeem(&adapter, &claim(SHOP, left, 1, "last"))
        .await
        .expect("redeemed");
    assert_ne!(
        order_of(&last.delivery.inbound).external_order_id,
        order.external_order_id
    );
    sim.stop().await;
}

#[tokio::test]
async fn refused_codes_tell_the_cashier_why() {
    let Setup { sim, adapter } = setup().await;
    let (_, codes) = sell(&sim, 2);
    let unknown = redeem(&adapter, &claim(SHOP, "9999999999", 1, "u"))
        .await
        .expect_err("unknown");
    assert_eq!(platform_status(&unknown), Some(404), "{unknown}");
    assert!(unknown.to_string().contains("check the digits"));
    let wrong_shop = adapter
        .check_code(&claim(OTHER_SHOP, &codes[0], 1, "w"))
        .await
        .expect_err("other shop");
    assert_eq!(platform_status(&wrong_shop), Some(403), "{wrong_shop}");
    assert!(wrong_shop.to_string().contains("not valid at this store"));
    sim.expire(&codes[1]);
    let expired = redeem(&adapter, &claim(SHOP, &codes[1], 1, "e"))
        .await
        .expect_err("expired");
    assert_eq!(platform_status(&expired), Some(410), "{expired}");
    for error in [&unknown, &wrong_shop, &expired] {
        assert!(!error.is_retryable(), "{error}");
    }
    // Bad input never reaches Dianping.
    let calls = sim.calls().all().len();
    for bad in [
        claim(SHOP, "", 1, "b"),
        claim(SHOP, &codes[0], 0, "b"),
        claim(SHOP, &codes[0], 101, "b"),
        claim("bad shop!", &codes[0], 1, "b"),
        claim(SHOP, &codes[0], 1, ""),
    ] {
        assert!(matches!(
            redeem(&adapter, &bad).await,
            Err(ChannelError::Malformed(_))
        ));
    }
    assert_eq!(sim.calls().all().len(), calls);
    sim.stop().await;
}

#[tokio::test]
async fn forged_signatures_and_dead_sessions_are_refused_as_dianping_does() {
    let Setup { sim, adapter } = setup().await;
    let (_, codes) = sell(&sim, 1);
    let forged = adapter_for(&sim, "not-the-secret", DEV_SESSION);
    let error = redeem(&forged, &claim(SHOP, &codes[0], 1, "f"))
        .await
        .expect_err("forged");
    assert_eq!(platform_status(&error), Some(401), "{error}");
    assert!(error.to_string().contains("签名验证失败"), "{error}");
    let stranger = adapter_for(&sim, DEV_APP_SECRET, "someone-elses-session");
    let error = stranger
        .check_code(&claim(SHOP, &codes[0], 1, "s"))
        .await
        .expect_err("bad session");
    assert_eq!(platform_status(&error), Some(403), "{error}");
    assert!(error.to_string().contains("renew the `session`"), "{error}");
    assert_eq!(
        sim.voucher(&codes[0]).expect("voucher").state,
        VoucherState::Unused,
        "a refused call uses nothing"
    );
    // The session expires while the hub runs.
    sim.revoke_sessions();
    let error = redeem(&adapter, &claim(SHOP, &codes[0], 1, "r"))
        .await
        .expect_err("revoked");
    assert_eq!(platform_status(&error), Some(403), "{error}");
    sim.stop().await;
}

/// Posts a form to the simulator as a client other than the adapter would.
async fn raw_call(sim: &DianpingSim, path: &str, form: &[(String, String)]) -> Value {
    reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .form(form)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn the_simulator_checks_every_part_of_the_signature() {
    let Setup { sim, .. } = setup().await;
    let (_, codes) = sell(&sim, 1);
    let business = [
        ("receipt_code", codes[0].clone()),
        ("open_shop_uuid", SHOP.to_owned()),
    ];
    let good = signed_form(
        DEV_APP_KEY,
        DEV_APP_SECRET,
        DEV_SESSION,
        &business,
        Utc::now(),
    );
    assert_eq!(raw_call(&sim, PREPARE_PATH, &good).await["code"], 200);
    // Upper-case hex (the Taobao-style original) is accepted too.
    let mut upper = good.clone();
    if let Some((_, sign)) = upper.iter_mut().find(|(n, _)| n == "sign") {
        *sign = sign.to_ascii_uppercase();
    }
    assert_eq!(raw_call(&sim, PREPARE_PATH, &upper).await["code"], 200);
    // Any parameter changed after signing.
    for name in [
        "receipt_code",
        "open_shop_uuid",
        "timestamp",
        "session",
        "v",
    ] {
        let mut tampered = good.clone();
        if let Some((_, value)) = tampered.iter_mut().find(|(n, _)| n == name) {
            value.push('0');
        }
        assert_eq!(
            raw_call(&sim, PREPARE_PATH, &tampered).await["code"],
            401,
            "{name}"
        );
    }
    let unsigned: Vec<(String, String)> =
        good.iter().filter(|(n, _)| n != "sign").cloned().collect();
    assert_eq!(raw_call(&sim, PREPARE_PATH, &unsigned).await["code"], 401);
    let mut other_app = good.clone();
    other_app[0].1 = "someone-else".into();
    assert_eq!(raw_call(&sim, PREPARE_PATH, &other_app).await["code"], 401);
    // A correctly signed but stale call.
    let stale = signed_form(
        DEV_APP_KEY,
        DEV_APP_SECRET,
        DEV_SESSION,
        &business,
        Utc::now() - chrono::TimeDelta::minutes(30),
    );
    let answer = raw_call(&sim, PREPARE_PATH, &stale).await;
    assert_eq!(answer["code"], 400, "{answer}");
    // getconsumed of a code not redeemed yet, by GET as the Java demo sends it.
    let form = signed_form(
        DEV_APP_KEY,
        DEV_APP_SECRET,
        DEV_SESSION,
        &business,
        Utc::now(),
    );
    let answer: Value = reqwest::Client::new()
        .get(format!("{}{GETCONSUMED_PATH}", sim.base_url()))
        .query(&form)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["code"], 1006, "{answer}");
    sim.stop().await;
}

#[tokio::test]
async fn rate_limits_and_faults_are_retryable() {
    let Setup { sim, adapter } = setup_with(SimConfig {
        rate_limit_per_second: 2,
        ..SimConfig::default()
    })
    .await;
    let (_, codes) = sell(&sim, 1);
    let preview = claim(SHOP, &codes[0], 1, "p");
    adapter.check_code(&preview).await.expect("first");
    adapter.check_code(&preview).await.expect("second");
    let error = adapter.check_code(&preview).await.expect_err("third");
    assert!(matches!(error, ChannelError::RateLimited { .. }), "{error}");
    assert!(error.is_retryable());
    sim.clock().advance(Duration::from_millis(1100));

    sim.faults().push(
        Fault {
            status: Some(500),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = redeem(&adapter, &claim(SHOP, &codes[0], 1, "f"))
        .await
        .expect_err("500");
    assert_eq!(platform_status(&error), Some(500), "{error}");
    assert!(error.is_retryable());
    sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(3),
            delay: None,
        },
        1,
    );
    let error = redeem(&adapter, &claim(SHOP, &codes[0], 1, "f"))
        .await
        .expect_err("429");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    // The retry (same requestid) finally redeems, once.
    sim.clock().advance(Duration::from_millis(1100));
    redeem(&adapter, &claim(SHOP, &codes[0], 1, "f"))
        .await
        .expect("redeemed");
    assert!(matches!(
        sim.voucher(&codes[0]).expect("v").state,
        VoucherState::Consumed { .. }
    ));
    sim.stop().await;
}

#[tokio::test]
async fn a_reject_or_cancel_reverses_every_voucher_once() {
    let Setup { sim, adapter } = setup().await;
    let (deal_id, codes) = sell(&sim, 2);
    let mut feed = sim.status_feed().subscribe();
    let redeemed = redeem(&adapter, &claim(SHOP, &codes[0], 2, "two"))
        .await
        .expect("redeemed");
    let order = stored(order_of(&redeemed.delivery.inbound));
    let external = order.order.external_order_id.clone();
    assert_eq!(sim.status(&external), Some(Status::Received));
    // Each voucher is heard by `{order_id}-{code}`; the typed one's is the order's id.
    let sibling = format!(
        "{}-{}",
        sim.voucher(&codes[1]).expect("v").order_id,
        codes[1]
    );
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (external.clone(), Status::Received)
    );
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (sibling.clone(), Status::Received)
    );

    // Statuses Dianping has no call for change nothing there.
    let accept = change(StatusAction::Accept { prep_minutes: 10 }, Status::Received);
    assert!(matches!(
        adapter.push(&order, &accept).await,
        Ok(PushOutcome::NotApplicable { .. })
    ));
    assert_eq!(sim.calls().matching("reverseconsume").len(), 0);

    let reject = change(
        StatusAction::Reject {
            reason: "out of dough".into(),
        },
        Status::Received,
    );
    match adapter.push(&order, &reject).await {
        Ok(PushOutcome::Delivered { detail }) => {
            assert!(detail.contains("undid 2 voucher(s)"), "{detail}")
        }
        other => panic!("expected delivered, got {other:?}"),
    }
    for code in &codes {
        assert_eq!(sim.voucher(code).expect("v").state, VoucherState::Unused);
    }
    assert_eq!(sim.status(&external), Some(Status::Rejected));
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (external.clone(), Status::Rejected)
    );
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (sibling.clone(), Status::Rejected)
    );
    let calls = sim.calls().matching("reverseconsume");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].body["app_deal_id"], json!(deal_id.to_string()));
    assert_eq!(calls[0].body["open_shop_uuid"], SHOP);

    // Repeating the push (a retry after a crash) is safe.
    let cancel = change(
        StatusAction::Cancel {
            reason: "again".into(),
        },
        Status::Accepted,
    );
    match adapter.push(&order, &cancel).await {
        Ok(PushOutcome::Delivered { detail }) => {
            assert!(detail.contains("already not redeemed"), "{detail}")
        }
        other => panic!("expected delivered, got {other:?}"),
    }
    assert!(
        feed.try_recv().is_err(),
        "the refused reversals were not heard"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_late_reversal_is_parked_and_a_failed_one_retried() {
    let Setup { sim, adapter } = setup().await;
    let (_, codes) = sell(&sim, 1);
    let redeemed = redeem(&adapter, &claim(SHOP, &codes[0], 1, "one"))
        .await
        .expect("redeemed");
    let order = stored(order_of(&redeemed.delivery.inbound));
    let cancel = change(
        StatusAction::Cancel {
            reason: "customer left".into(),
        },
        Status::Accepted,
    );
    sim.faults().push(
        Fault {
            status: Some(503),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = adapter.push(&order, &cancel).await.expect_err("503");
    assert!(error.is_retryable(), "{error}");
    sim.clock().advance(Duration::from_secs(2 * 3600));
    let error = adapter.push(&order, &cancel).await.expect_err("too late");
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("too late"), "{error}");
    assert!(matches!(
        sim.voucher(&codes[0]).expect("v").state,
        VoucherState::Consumed { .. }
    ));
    sim.stop().await;
}

#[tokio::test]
async fn samples_become_vouchers_through_the_control_endpoints() {
    let Setup { sim, adapter } = setup().await;
    let sample = SampleOrder {
        store_ref: Some(SHOP.to_owned()),
        currency: "CNY".into(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "李雷".into(),
        customer_phone: Some("+86 138 0013 8000".into()),
        items: vec![
            SampleItem {
                plu: "PZ-MARG-L".into(),
                name: "玛格丽特披萨（大）".into(),
                quantity: 2,
                unit_price_minor: 8800,
                notes: None,
                modifiers: vec![],
            },
            SampleItem {
                plu: "DR-COLA-500".into(),
                name: "可乐 🥤".into(),
                quantity: 1,
                unit_price_minor: 800,
                notes: None,
                modifiers: vec![],
            },
        ],
        notes: None,
        delivery_fee_minor: 0,
        tip_minor: 0,
        discount_minor: 1850,
        scheduled_for: None,
    };
    let http = reqwest::Client::new();
    let sold: Value = http
        .post(format!("{}/_sim/vouchers", sim.base_url()))
        .json(&sample)
        .send()
        .await
        .expect("sold")
        .json()
        .await
        .expect("json");
    let code = sold["codes"][0].as_str().expect("a code").to_owned();
    let redeemed = redeem(&adapter, &claim(SHOP, &code, 1, "sample"))
        .await
        .expect("redeemed");
    let order = order_of(&redeemed.delivery.inbound);
    assert_eq!(
        order.lines[0].name,
        "【外带】玛格丽特披萨（大） ×2 + 可乐 🥤"
    );
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.totals.subtotal.minor, 18400);
    assert_eq!(order.totals.total.minor, 16550);
    assert_eq!(order.customer.phone.as_deref(), Some("138****8000"));
    let state: Value = http
        .get(format!("{}/_sim/vouchers/{code}", sim.base_url()))
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["state"], "consumed");
    let calls: Value = http
        .get(format!("{}/_sim/calls", sim.base_url()))
        .send()
        .await
        .expect("calls")
        .json()
        .await
        .expect("json");
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    let missing = http
        .get(format!("{}/_sim/vouchers/0000000000", sim.base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    sim.stop().await;
}

#[tokio::test]
async fn a_simulator_binds_where_it_is_told() {
    let sim = DianpingSim::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(sim.status("nothing-here"), None);
    sim.stop().await;
}
