//! A simulator of Dianping's voucher verification API: an HTTP server that behaves like
//! the open platform's documented endpoints, for tests, the demo and the benchmark.
//!
//! It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `POST /router/tuangou/receipt/prepare` | `receipt_code`, `open_shop_uuid` → the voucher's deal and how many of its vouchers the customer can still use (`data` object) |
//! | `POST /router/tuangou/receipt/consume` | `requestid`, `receipt_code`, `count`, `open_shop_uuid`, `app_shop_account`, `app_shop_accountname` → redeems `count` unused vouchers of the same order and deal, the typed one first (`data` array, one entry per voucher) |
//! | `POST /router/tuangou/receipt/reverseconsume` | `app_deal_id`, `receipt_code`, `open_shop_uuid`, `app_shop_account`, `app_shop_accountname` → undoes one voucher's redemption (`data` array) |
//! | `GET` or `POST /router/tuangou/receipt/getconsumed` | `receipt_code`, `open_shop_uuid` → a redeemed voucher with `verify_time` |
//! | `GET /_sim/calls` | the call log as JSON (`session` and `sign` redacted) |
//! | `POST /_sim/vouchers` | body: a [`SampleOrder`]; sells it as a voucher ([`DianpingSim::sell_sample`]) and answers `{"order_id", "codes", "deal_id"}` |
//! | `GET /_sim/vouchers/{code}` | the voucher's state |
//!
//! Every router call is checked as Dianping would: `app_key` known and `sign` matching
//! (any hex case; code 401), `sign_method=MD5` and a `timestamp` within ten minutes of the
//! simulator's clock (code 400), a valid `session` (code 403); then the business rules:
//! an unknown code is 1001, a redeemed one 1002, a voucher of another shop's deal 1003,
//! an expired one 1004, fewer unused vouchers than `count` 1005, reversing a voucher that
//! is not redeemed 1006, reversing after the reverse window (60 minutes) 1007. Answers are
//! HTTP 200 with `{"code", "msg", "data"}` (or, for a code given one with
//! [`DianpingSim::answer_consume_raw`], any bytes at all). A `requestid` seen before with the same
//! parameters gets the very same answer bytes and uses nothing (with other parameters:
//! 400). More calls per second than the limit get code 429. Scripted [`Faults`] (delay,
//! HTTP status, `Retry-After`) apply first, to every router call. Each router call is
//! recorded in the [`CallLog`] with the HTTP status answered. Each voucher a consume or a
//! reversal answered with code 200 changes is told to the [`StatusFeed`]
//! ([`DianpingSim::status_feed`]).
//!
//! Vouchers come from a [`SampleOrder`]: its items become one deal sold at the store
//! (`store_ref` = `open_shop_uuid`), titled by the items (`Margherita (Large) ×2 + Cola`,
//! prefixed `【外带】` for a pickup sample), its subtotal the market price and subtotal
//! minus discount the deal price; the customer buys one voucher of it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleOrder, SimClock, SimServer, StatusFeed, lock,
};
use crossdock_model::Status;
use rand::Rng;
use serde_json::{Value, json};

use crate::convert::codes;
use crate::{
    CONSUME_PATH, DEV_APP_KEY, DEV_APP_SECRET, DEV_SESSION, GETCONSUMED_PATH, MAX_COUNT,
    PREPARE_PATH, REVERSE_PATH, sign,
};

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    pub app_key: String,
    /// Checks every call's `sign`.
    pub app_secret: String,
    /// Merchant sessions accepted for every shop.
    pub sessions: Vec<String>,
    /// Calls per second before code 429.
    pub rate_limit_per_second: u32,
    /// How long after a redemption it can still be reversed.
    pub reverse_window: Duration,
    /// How far a call's `timestamp` may be from the simulator's clock.
    pub timestamp_window: Duration,
    /// How long sold vouchers stay valid.
    pub voucher_validity: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            app_key: DEV_APP_KEY.to_owned(),
            app_secret: DEV_APP_SECRET.to_owned(),
            sessions: vec![DEV_SESSION.to_owned()],
            rate_limit_per_second: 20,
            reverse_window: Duration::from_secs(3600),
            timestamp_window: Duration::from_secs(600),
            voucher_validity: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// A deal (套餐) sold at one or more shops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub deal_id: i64,
    pub dealgroup_id: i64,
    pub title: String,
    /// What the customer pays for one voucher, in fen.
    pub price_minor: i64,
    /// The list price, in fen.
    pub market_minor: i64,
    /// `open_shop_uuid`s where its vouchers are valid.
    pub shops: Vec<String>,
}

/// Where a voucher is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoucherState {
    Unused,
    Consumed {
        at: DateTime<Utc>,
        requestid: String,
        shop: String,
        account: String,
    },
}

/// One voucher (券): one use of a deal, bought in a Dianping order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub code: String,
    pub order_id: String,
    pub deal_id: i64,
    /// As Dianping shows it (`138****1234`).
    pub mobile: String,
    pub expires_at: DateTime<Utc>,
    pub state: VoucherState,
    /// When its last redemption was reversed, if ever.
    pub reversed_at: Option<DateTime<Utc>>,
}

/// What a sale made: Dianping's order and its voucher codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sold {
    pub order_id: String,
    pub deal_id: i64,
    pub codes: Vec<String>,
}

#[derive(Debug, Default)]
struct Book {
    deals: BTreeMap<i64, Deal>,
    vouchers: HashMap<String, Voucher>,
    /// `requestid` → (what was asked, the answer's bytes).
    requests: HashMap<String, (String, Vec<u8>)>,
    /// `receipt_code` → the bytes every consume of it answers instead
    /// ([`DianpingSim::answer_consume_raw`]).
    raw_consumes: HashMap<String, Vec<u8>>,
    next_deal_id: i64,
}

#[derive(Debug)]
struct Inner {
    config: SimConfig,
    state: Mutex<Book>,
    sessions: Mutex<Vec<String>>,
    window: Mutex<(Instant, u32)>,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
    clock: SimClock,
}

/// A running Dianping simulator.
#[derive(Debug)]
pub struct DianpingSim {
    inner: Arc<Inner>,
    server: SimServer,
}

impl DianpingSim {
    /// Starts the simulator's HTTP server.
    pub async fn start(config: SimConfig) -> std::io::Result<DianpingSim> {
        let bind = config.bind;
        let inner = Arc::new(Inner {
            sessions: Mutex::new(config.sessions.clone()),
            config,
            state: Mutex::new(Book {
                next_deal_id: 993_507_556,
                ..Book::default()
            }),
            window: Mutex::new((Instant::now(), 0)),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
            clock: SimClock::default(),
        });
        let server = SimServer::serve(router(inner.clone()), bind).await?;
        tracing::info!(base_url = %server.base_url(), "Dianping simulator listening.");
        Ok(DianpingSim { inner, server })
    }

    /// `http://host:port`: the adapter's `base_url`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Creates a deal sold at `shops`; returns it.
    pub fn create_deal(
        &self,
        title: &str,
        price_minor: i64,
        market_minor: i64,
        shops: &[&str],
    ) -> Deal {
        self.inner
            .create_deal(title, price_minor, market_minor, shops)
    }

    /// A customer (`mobile`, as Dianping masks it) buys `count` vouchers of a deal in one
    /// order. `None` for an unknown deal.
    pub fn sell(&self, deal_id: i64, count: u32, mobile: &str) -> Option<Sold> {
        self.inner.sell(deal_id, count, mobile)
    }

    /// Sells a [`SampleOrder`]: its items become one deal at its store, bought once.
    pub fn sell_sample(&self, sample: &SampleOrder) -> Sold {
        self.inner.sell_sample(sample)
    }

    pub fn voucher(&self, code: &str) -> Option<Voucher> {
        lock(&self.inner.state).vouchers.get(code).cloned()
    }

    pub fn deal(&self, deal_id: i64) -> Option<Deal> {
        lock(&self.inner.state).deals.get(&deal_id).cloned()
    }

    /// Makes every consume of `code` answer `body` (HTTP 200), byte for byte, whatever it
    /// is (cut short, not JSON, impossible money): a platform answering garbage. The call
    /// is still checked (signature, session, rate) first; the voucher is left as it is.
    pub fn answer_consume_raw(&self, code: &str, body: Vec<u8>) {
        lock(&self.inner.state)
            .raw_consumes
            .insert(code.to_owned(), body);
    }

    /// Makes a voucher expired (for tests).
    pub fn expire(&self, code: &str) {
        if let Some(voucher) = lock(&self.inner.state).vouchers.get_mut(code) {
            voucher.expires_at = Utc::now() - TimeDelta::seconds(1);
        }
    }

    /// Invalidates every merchant session: the next call answers code 403.
    pub fn revoke_sessions(&self) {
        lock(&self.inner.sessions).clear();
    }

    /// What the platform believes a redemption (`external_order_id` = `{order_id}-{code}`,
    /// or the code alone) is, as a unified status: redeemed → `received` (Dianping knows
    /// nothing after the redemption), reversed → `rejected` (a reversal is the only thing
    /// the hub can tell Dianping, for a rejection or a cancellation alike). `None`: no
    /// such voucher, or never redeemed.
    pub fn status(&self, external_order_id: &str) -> Option<Status> {
        let code = external_order_id
            .rsplit_once('-')
            .map_or(external_order_id, |(_, code)| code);
        let state = lock(&self.inner.state);
        let voucher = state.vouchers.get(code)?;
        if let Some((order_id, _)) = external_order_id.rsplit_once('-')
            && order_id != voucher.order_id
        {
            return None;
        }
        match (&voucher.state, voucher.reversed_at) {
            (VoucherState::Consumed { .. }, _) => Some(Status::Received),
            (VoucherState::Unused, Some(_)) => Some(Status::Rejected),
            (VoucherState::Unused, None) => None,
        }
    }

    /// Every router call the hub made.
    pub fn calls(&self) -> &CallLog {
        &self.inner.calls
    }

    /// Scripted misbehaviour of router calls.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The statuses Dianping heard, one per voucher, by `{order_id}-{code}` (what
    /// [`DianpingSim::status`] takes; for the code that was typed, the hub's order id):
    /// `received` when a consume redeemed it, `rejected` when a reversal undid it. A
    /// consume repeated with its `requestid` redeems nothing, so it is not heard again.
    pub fn status_feed(&self) -> &StatusFeed {
        &self.inner.feed
    }

    /// The simulator's clock: advance it to let deadlines and rate-limit windows pass.
    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// A mobile as Dianping shows it: `138****1234` (a random one when the sample has none).
fn masked(phone: Option<&str>) -> String {
    let digits: String = phone
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let digits = digits
        .strip_prefix("86")
        .filter(|d| d.len() == 11)
        .unwrap_or(&digits);
    if digits.len() >= 7 {
        format!("{}****{}", &digits[..3], &digits[digits.len() - 4..])
    } else {
        let mut rng = rand::rng();
        format!("138****{:04}", rng.random_range(0..10_000u32))
    }
}

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

/// Yuan as Dianping writes them: a JSON integer when whole, else a decimal.
fn yuan(minor: i64) -> Value {
    if minor % 100 == 0 {
        json!(minor / 100)
    } else {
        let text = format!(
            "{}{}.{:02}",
            if minor < 0 { "-" } else { "" },
            (minor / 100).unsigned_abs(),
            (minor % 100).unsigned_abs()
        );
        // The simulator plays a platform that sends floats; the adapter reads their text.
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    }
}

fn receipt_json(voucher: &Voucher, deal: &Deal) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("receipt_code".into(), json!(voucher.code));
    map.insert("deal_id".into(), json!(deal.deal_id));
    map.insert("dealgroup_id".into(), json!(deal.dealgroup_id));
    map.insert("deal_title".into(), json!(deal.title));
    map.insert("deal_price".into(), yuan(deal.price_minor));
    map.insert("deal_marketprice".into(), yuan(deal.market_minor));
    map.insert("biz_type".into(), json!(0));
    map.insert("mobile".into(), json!(voucher.mobile));
    map.insert(
        "receiptEndDate".into(),
        json!(voucher.expires_at.timestamp_millis()),
    );
    map
}

fn payment_detail(voucher: &Voucher, deal: &Deal) -> Value {
    json!([{
        "amount": yuan(deal.price_minor),
        "amount_type": 10,
        "payment_detail_id": format!("{}{}", voucher.order_id, &voucher.code[voucher.code.len().saturating_sub(4)..]),
    }])
}

fn answer_bytes(code: i64, msg: &str, data: Option<Value>) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    body.insert("code".into(), json!(code));
    body.insert("msg".into(), json!(msg));
    if let Some(data) = data {
        body.insert("data".into(), data);
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

fn respond(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [("content-type", "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// A business or gateway refusal: HTTP 200 with Dianping's error shape.
fn refuse(code: i64, msg: &str) -> (StatusCode, Vec<u8>) {
    (StatusCode::OK, answer_bytes(code, msg, None))
}

fn ok(data: Value) -> (StatusCode, Vec<u8>) {
    (StatusCode::OK, answer_bytes(200, "成功", Some(data)))
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Prepare,
    Consume,
    Reverse,
    GetConsumed,
}

fn router(inner: Shared) -> Router {
    Router::new()
        .route(
            PREPARE_PATH,
            post(|s, m, u, q, h, b| api(s, m, u, q, h, b, Op::Prepare)),
        )
        .route(
            CONSUME_PATH,
            post(|s, m, u, q, h, b| api(s, m, u, q, h, b, Op::Consume)),
        )
        .route(
            REVERSE_PATH,
            post(|s, m, u, q, h, b| api(s, m, u, q, h, b, Op::Reverse)),
        )
        .route(
            GETCONSUMED_PATH,
            any(|s, m, u, q, h, b| api(s, m, u, q, h, b, Op::GetConsumed)),
        )
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/vouchers", post(sim_sell))
        .route("/_sim/vouchers/{code}", get(sim_voucher))
        .with_state(inner)
}

async fn api(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
    op: Op,
) -> Response {
    let params = read_params(query.as_deref(), &body);
    let fault = inner.faults.apply(|status| {
        let code = i64::from(status.as_u16());
        respond(status, answer_bytes(code, "系统繁忙，请稍后重试", None))
    });
    let response = match (fault.await, &params) {
        (Some(response), _) => response,
        (None, Ok(params)) => {
            let (status, answer) = answer(&inner, params, op);
            respond(status, answer)
        }
        (None, Err(message)) => respond(StatusCode::OK, answer_bytes(400, message, None)),
    };
    let recorded: BTreeMap<&str, &str> = params
        .as_ref()
        .map(|params| {
            params
                .iter()
                .map(|(name, value)| {
                    let value = if matches!(name.as_str(), "session" | "sign") {
                        "<redacted>"
                    } else {
                        value.as_str()
                    };
                    (name.as_str(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    inner.calls.record(
        method.as_str(),
        uri.path(),
        &headers,
        &serde_json::to_vec(&recorded).unwrap_or_default(),
        response.status().as_u16(),
    );
    response
}

/// The call's parameters: the query (GET) and the form body (POST).
fn read_params(query: Option<&str>, body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(query) = query {
        params.extend(
            serde_urlencoded::from_str::<Vec<(String, String)>>(query)
                .map_err(|e| format!("参数错误: query: {e}"))?,
        );
    }
    if !body.is_empty() {
        params.extend(
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .map_err(|e| format!("参数错误: form: {e}"))?,
        );
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn answer(inner: &Inner, params: &[(String, String)], op: Op) -> (StatusCode, Vec<u8>) {
    if !inner.within_rate() {
        return refuse(codes::RATE_LIMITED, "调用频率超过限制");
    }
    if let Err(refusal) = inner.authenticate(params) {
        return refusal;
    }
    let need = |name: &str| {
        param(params, name)
            .ok_or_else(|| refuse(codes::BAD_PARAMETER, &format!("参数错误: 缺少 {name}")))
    };
    let result = match op {
        Op::Prepare => (|| {
            let code = need("receipt_code")?;
            let shop = need("open_shop_uuid")?;
            inner.prepare(code, shop)
        })(),
        Op::Consume => (|| {
            let requestid = need("requestid")?;
            let code = need("receipt_code")?;
            if let Some(raw) = lock(&inner.state).raw_consumes.get(code) {
                return Ok((StatusCode::OK, raw.clone()));
            }
            let count = need("count")?;
            let shop = need("open_shop_uuid")?;
            let account = need("app_shop_account")?;
            need("app_shop_accountname")?;
            inner.consume(requestid, code, count, shop, account)
        })(),
        Op::Reverse => (|| {
            let deal = need("app_deal_id")?;
            let code = need("receipt_code")?;
            let shop = need("open_shop_uuid")?;
            need("app_shop_account")?;
            need("app_shop_accountname")?;
            inner.reverse(deal, code, shop)
        })(),
        Op::GetConsumed => (|| {
            let code = need("receipt_code")?;
            let shop = need("open_shop_uuid")?;
            inner.get_consumed(code, shop)
        })(),
    };
    result.unwrap_or_else(|refusal| refusal)
}

type Answer = Result<(StatusCode, Vec<u8>), (StatusCode, Vec<u8>)>;

impl Inner {
    /// Creates a deal sold at `shops`; returns it.
    fn create_deal(
        &self,
        title: &str,
        price_minor: i64,
        market_minor: i64,
        shops: &[&str],
    ) -> Deal {
        let mut state = lock(&self.state);
        let deal_id = state.next_deal_id;
        state.next_deal_id += 7;
        let deal = Deal {
            deal_id,
            dealgroup_id: deal_id / 10 * 8 + 1,
            title: title.to_owned(),
            price_minor,
            market_minor,
            shops: shops.iter().map(|s| (*s).to_owned()).collect(),
        };
        state.deals.insert(deal_id, deal.clone());
        deal
    }

    /// A customer (`mobile`, as Dianping masks it) buys `count` vouchers of a deal in one
    /// order. `None` for an unknown deal.
    fn sell(&self, deal_id: i64, count: u32, mobile: &str) -> Option<Sold> {
        let mut state = lock(&self.state);
        if !state.deals.contains_key(&deal_id) {
            return None;
        }
        let mut rng = rand::rng();
        let order_id: String = std::iter::once(char::from(b'1' + rng.random_range(0..9u8)))
            .chain((0..23).map(|_| char::from(b'0' + rng.random_range(0..10u8))))
            .collect();
        let expires_at = self.clock.utc()
            + TimeDelta::from_std(self.config.voucher_validity).unwrap_or(TimeDelta::days(90));
        let mut codes = Vec::new();
        while codes.len() < count as usize {
            let code: String = (0..10)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            if state.vouchers.contains_key(&code) || codes.contains(&code) {
                continue;
            }
            codes.push(code);
        }
        for code in &codes {
            state.vouchers.insert(
                code.clone(),
                Voucher {
                    code: code.clone(),
                    order_id: order_id.clone(),
                    deal_id,
                    mobile: mobile.to_owned(),
                    expires_at,
                    state: VoucherState::Unused,
                    reversed_at: None,
                },
            );
        }
        Some(Sold {
            order_id,
            deal_id,
            codes,
        })
    }

    /// Sells a [`SampleOrder`]: its items become one deal at its store, bought once.
    fn sell_sample(&self, sample: &SampleOrder) -> Sold {
        let shop = sample.store_ref.clone().unwrap_or_default();
        let mut title = sample
            .items
            .iter()
            .map(|item| {
                if item.quantity > 1 {
                    format!("{} ×{}", item.name, item.quantity)
                } else {
                    item.name.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" + ");
        if matches!(sample.fulfillment, SampleFulfillment::Pickup) {
            title = format!("【外带】{title}");
        }
        let market = sample.subtotal_minor().max(0);
        let price = market.saturating_sub(sample.discount_minor.max(0)).max(0);
        let deal = self.create_deal(&title, price, market, &[shop.as_str()]);
        let mobile = masked(sample.customer_phone.as_deref());
        // The deal exists: it was created just above.
        self.sell(deal.deal_id, 1, &mobile).unwrap_or(Sold {
            order_id: String::new(),
            deal_id: deal.deal_id,
            codes: Vec::new(),
        })
    }

    fn within_rate(&self) -> bool {
        let mut window = lock(&self.window);
        if self.clock.since(window.0) >= Duration::from_secs(1) {
            *window = (self.clock.now(), 0);
        }
        window.1 += 1;
        window.1 <= self.config.rate_limit_per_second
    }

    fn authenticate(&self, params: &[(String, String)]) -> Result<(), (StatusCode, Vec<u8>)> {
        if param(params, "app_key") != Some(self.config.app_key.as_str()) {
            return Err(refuse(codes::BAD_SIGNATURE, "app_key 无效"));
        }
        let Some(provided) = param(params, "sign") else {
            return Err(refuse(codes::BAD_SIGNATURE, "签名验证失败: 缺少 sign"));
        };
        let pairs = params.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        if !sign::verify(pairs, &self.config.app_secret, provided) {
            return Err(refuse(codes::BAD_SIGNATURE, "签名验证失败"));
        }
        if !param(params, "sign_method").is_some_and(|m| m.eq_ignore_ascii_case("md5")) {
            return Err(refuse(
                codes::BAD_PARAMETER,
                "参数错误: sign_method 须为 MD5",
            ));
        }
        let fresh = param(params, "timestamp")
            .and_then(sign::parse_timestamp)
            .is_some_and(|at| {
                (Utc::now() - at).abs()
                    <= TimeDelta::from_std(self.config.timestamp_window)
                        .unwrap_or(TimeDelta::zero())
            });
        if !fresh {
            return Err(refuse(
                codes::BAD_PARAMETER,
                "参数错误: timestamp 无效或已过期",
            ));
        }
        let session_ok = param(params, "session")
            .is_some_and(|s| lock(&self.sessions).iter().any(|known| known == s));
        if !session_ok {
            return Err(refuse(codes::BAD_SESSION, "session 无效或已过期"));
        }
        Ok(())
    }

    /// The voucher and its deal, checked for the shop and expiry.
    fn usable<'a>(
        state: &'a Book,
        code: &str,
        shop: &str,
    ) -> Result<(&'a Voucher, &'a Deal), (StatusCode, Vec<u8>)> {
        let voucher = state
            .vouchers
            .get(code)
            .ok_or_else(|| refuse(codes::UNKNOWN_CODE, "券码不存在"))?;
        let deal = state
            .deals
            .get(&voucher.deal_id)
            .ok_or_else(|| refuse(codes::UNKNOWN_CODE, "券码不存在"))?;
        if !deal.shops.iter().any(|s| s == shop) {
            return Err(refuse(codes::WRONG_SHOP, "券码不适用于该门店"));
        }
        Ok((voucher, deal))
    }

    fn prepare(&self, code: &str, shop: &str) -> Answer {
        let state = lock(&self.state);
        let (voucher, deal) = Self::usable(&state, code, shop)?;
        if voucher.expires_at <= self.clock.utc() {
            return Err(refuse(codes::EXPIRED, "券码已过期"));
        }
        if matches!(voucher.state, VoucherState::Consumed { .. }) {
            return Err(refuse(codes::ALREADY_USED, "券码已使用"));
        }
        let available = siblings(&state, voucher, self.clock.utc()).len();
        let mut data = receipt_json(voucher, deal);
        data.insert("count".into(), json!(available));
        data.insert("payment_detail".into(), payment_detail(voucher, deal));
        Ok(ok(Value::Object(data)))
    }

    fn consume(
        &self,
        requestid: &str,
        code: &str,
        count: &str,
        shop: &str,
        account: &str,
    ) -> Answer {
        let asked = format!("{code}|{count}|{shop}");
        let mut state = lock(&self.state);
        if let Some((seen, answer)) = state.requests.get(requestid) {
            return if *seen == asked {
                Ok((StatusCode::OK, answer.clone()))
            } else {
                Err(refuse(codes::BAD_PARAMETER, "requestid 已被其他请求使用"))
            };
        }
        let count: usize = match count.parse::<u32>() {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => n as usize,
            _ => return Err(refuse(codes::BAD_PARAMETER, "参数错误: count 须为 1-100")),
        };
        let (voucher, _) = Self::usable(&state, code, shop)?;
        if voucher.expires_at <= self.clock.utc() {
            return Err(refuse(codes::EXPIRED, "券码已过期"));
        }
        if matches!(voucher.state, VoucherState::Consumed { .. }) {
            return Err(refuse(codes::ALREADY_USED, "券码已使用"));
        }
        let available = siblings(&state, voucher, self.clock.utc());
        if available.len() < count {
            return Err(refuse(
                codes::NOT_ENOUGH,
                &format!("可验证数量不足，剩余 {} 张", available.len()),
            ));
        }
        let now = self.clock.utc();
        let chosen: Vec<String> = available.into_iter().take(count).collect();
        let mut data = Vec::new();
        let mut redeemed = Vec::new();
        for code in &chosen {
            let Some(voucher) = state.vouchers.get_mut(code) else {
                continue;
            };
            voucher.state = VoucherState::Consumed {
                at: now,
                requestid: requestid.to_owned(),
                shop: shop.to_owned(),
                account: account.to_owned(),
            };
            redeemed.push(redemption_id(voucher));
            let voucher = voucher.clone();
            let Some(deal) = state.deals.get(&voucher.deal_id) else {
                continue;
            };
            let mut entry = receipt_json(&voucher, deal);
            entry.insert("open_shop_uuid".into(), json!(shop));
            entry.insert("order_id".into(), json!(voucher.order_id));
            entry.insert("payment_detail".into(), payment_detail(&voucher, deal));
            data.push(Value::Object(entry));
        }
        let answer = answer_bytes(200, "成功", Some(Value::Array(data)));
        state
            .requests
            .insert(requestid.to_owned(), (asked, answer.clone()));
        // Heard under the lock, so that the feed's order is the order the calls were
        // taken in.
        for redemption in &redeemed {
            self.feed.heard(redemption, Status::Received);
        }
        Ok((StatusCode::OK, answer))
    }

    fn reverse(&self, deal_id: &str, code: &str, shop: &str) -> Answer {
        let mut state = lock(&self.state);
        let (voucher, deal) = Self::usable(&state, code, shop)?;
        if deal.deal_id.to_string() != deal_id.trim() {
            return Err(refuse(
                codes::BAD_PARAMETER,
                "参数错误: app_deal_id 与券码不匹配",
            ));
        }
        let VoucherState::Consumed { at, .. } = &voucher.state else {
            return Err(refuse(codes::NOT_CONSUMED, "券码未验证，无法撤销"));
        };
        let window = TimeDelta::from_std(self.config.reverse_window).unwrap_or(TimeDelta::zero());
        if self.clock.utc() - *at > window {
            return Err(refuse(codes::TOO_LATE_TO_REVERSE, "已超过可撤销时间"));
        }
        let mut entry = receipt_json(voucher, deal);
        entry.insert("open_shop_uuid".into(), json!(shop));
        let now = self.clock.utc();
        if let Some(voucher) = state.vouchers.get_mut(code) {
            voucher.state = VoucherState::Unused;
            voucher.reversed_at = Some(now);
            self.feed.heard(&redemption_id(voucher), Status::Rejected);
        }
        Ok(ok(json!([Value::Object(entry)])))
    }

    fn get_consumed(&self, code: &str, shop: &str) -> Answer {
        let state = lock(&self.state);
        let (voucher, deal) = Self::usable(&state, code, shop)?;
        let VoucherState::Consumed { at, account, .. } = &voucher.state else {
            return Err(refuse(codes::NOT_CONSUMED, "券码未验证"));
        };
        let mut data = receipt_json(voucher, deal);
        data.insert("verify_account".into(), json!(account));
        data.insert("verify_channel".into(), json!("15"));
        data.insert("verify_time".into(), json!(sign::timestamp(*at)));
        Ok(ok(Value::Object(data)))
    }
}

/// A voucher's redemption as [`DianpingSim::status`] takes it: `{order_id}-{code}`.
fn redemption_id(voucher: &Voucher) -> String {
    format!("{}-{}", voucher.order_id, voucher.code)
}

/// The unused vouchers of `voucher`'s order and deal, `voucher` first, then by code.
fn siblings(state: &Book, voucher: &Voucher, now: DateTime<Utc>) -> Vec<String> {
    let mut others: Vec<String> = state
        .vouchers
        .values()
        .filter(|v| {
            v.order_id == voucher.order_id
                && v.deal_id == voucher.deal_id
                && v.code != voucher.code
                && v.state == VoucherState::Unused
                && v.expires_at > now
        })
        .map(|v| v.code.clone())
        .collect();
    others.sort();
    let mut all = vec![voucher.code.clone()];
    all.extend(others);
    all
}

async fn sim_calls(State(inner): State<Shared>) -> Response {
    axum::Json(inner.calls.all()).into_response()
}

async fn sim_sell(State(inner): State<Shared>, body: Bytes) -> Response {
    let sample: SampleOrder = match serde_json::from_slice(&body) {
        Ok(sample) => sample,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": format!("Body is not a SampleOrder: {e}") })),
            )
                .into_response();
        }
    };
    let sold = inner.sell_sample(&sample);
    axum::Json(json!({
        "order_id": sold.order_id,
        "deal_id": sold.deal_id,
        "codes": sold.codes,
    }))
    .into_response()
}

async fn sim_voucher(State(inner): State<Shared>, Path(code): Path<String>) -> Response {
    let state = lock(&inner.state);
    match state.vouchers.get(&code) {
        Some(voucher) => {
            let (status, redeemed_at) = match &voucher.state {
                VoucherState::Unused => ("unused", None),
                VoucherState::Consumed { at, .. } => ("consumed", Some(at.to_rfc3339())),
            };
            axum::Json(json!({
                "code": voucher.code,
                "order_id": voucher.order_id,
                "deal_id": voucher.deal_id,
                "state": status,
                "redeemed_at": redeemed_at,
                "reversed_at": voucher.reversed_at.map(|at| at.to_rfc3339()),
            }))
            .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "no such voucher" })),
        )
            .into_response(),
    }
}
