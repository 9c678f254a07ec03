//! Channel `meituan`: Meituan Waimai (美团外卖开放平台, catering), and its simulator.
//!
//! # Documentation followed
//!
//! - CHANNELS.md §4 (Meituan), §8 (unified model, status tables) and §10 (normalization).
//! - Meituan's developer documentation, `https://developer.waimai.meituan.com/home/doc/food/1`
//!   (signature and reply conventions) and the Meituan Shangou (闪购) pages that share the
//!   same `waimaiopen.meituan.com/api/v1` API: order push
//!   `https://open-shangou.meituan.com/home/docDetail/174`, cancel push `…/docDetail/201`,
//!   logistics push `…/docDetail/171`, `/order/cancel` `…/docDetail/114`, `/order/delivering`
//!   `…/docDetail/117`, `/order/arrived` `…/docDetail/120`, `/order/preparationMealComplete`
//!   `…/docDetail/217` (as quoted in the public Go SDK `easynet-cn/go-meituan`).
//! - The public Java SDK `kuangcao/meituanwaimai-sdk` (`MtWmUtils.sigCheck`,
//!   `BaseServiceImpl`, `OrderServiceImpl`, `PushConsumer`, `MtWmError`), which CHANNELS.md
//!   §4 was written from, and the public test harness `Code-Fly/MeituanAPI` (error codes
//!   701/702/703 of push answers).
//!
//! # How an order flows
//!
//! 1. Meituan calls one registered URL per push type; the hub serves them as
//!    `/webhooks/meituan/{event}`: `order` (推送订单, new order), `cancel` (取消订单),
//!    `refund` (退款), `confirmed` (已确认订单), `completed` (已完成订单) and `logistics`
//!    (配送状态). New orders come as `POST application/x-www-form-urlencoded` with the whole
//!    order as form fields (`detail` and `extras` are JSON strings); cancel and refund may
//!    come as `GET` with query parameters. Both are read, query and body together.
//! 2. `verify` checks `sig` ([`sign`]): lower-case hex MD5 of the callback URL (the hub's
//!    public URL + path, no query) + `?` + the sorted `k=v` pairs of every received parameter
//!    but `sig` (values form-decoded once, empty ones included) + the app secret, compared in
//!    constant time; values percent-encoded twice are tolerated. `app_id` must be this app's
//!    and `timestamp` present.
//! 3. `parse` maps the push type (dedupe key `order_id:push type`, see below):
//!
//!    | push | becomes |
//!    |---|---|
//!    | `order` | [`Inbound::Order`] (`convert`) |
//!    | `cancel` | [`Inbound::Cancelled`] with `reason (reason_code)` |
//!    | `refund`, `notify_type=agree` | [`Inbound::Cancelled`]: a whole refund agreed cancels the order |
//!    | `refund`, other `notify_type` (`apply`, `reject`, `cancelRefund`, …) | [`Inbound::Ignored`] `refund.<type>`; `apply` is logged as a cancellation request |
//!    | `logistics`, `logistics_status` 20 / 40 | [`Inbound::Progress`] picked up / delivered |
//!    | `logistics`, any other status | [`Inbound::Ignored`] `logistics.<status>` |
//!    | `completed` | [`Inbound::Progress`] complete |
//!    | `confirmed` | [`Inbound::Ignored`]: the echo of our own confirm |
//!
//! 4. The hub answers `200 {"data":"ok"}` to everything it stored (duplicates too), and a
//!    refusal as `{"data":"ng","error":{"code":…,"msg":…}}` with the refusal's 4xx status.
//! 5. `push` calls Meituan's order API (all `GET`, signed the same way over the full API URL
//!    with `app_id`, `timestamp` and `sig` added to the query, as the SDK's `doGet`):
//!
//!    | hub action | Meituan call |
//!    |---|---|
//!    | accept | `/order/poi_received`, then `/order/confirm` |
//!    | reject, cancel, fail | `/order/cancel` with `reason_code` (2xxx, merchant) and `reason` |
//!    | ready | `/order/preparationMealComplete` (出餐) |
//!    | picked up | `/order/delivering`, unless Meituan's fleet delivers or it is a pickup order |
//!    | delivered | `/order/arrived`, same condition |
//!    | preparing, complete | none ([`PushOutcome::NotApplicable`]) |
//!
//!    Meituan answers `{"data":"ok"}` or `{"data":"ng","error":{"code","msg"}}` (with HTTP
//!    200). After a refusal, the adapter reads `/order/viewstatus`: when the order already is
//!    where the action would put it (a retried confirm or cancel whose first answer was
//!    lost), the push counts as delivered; so pushes are safe to repeat. A meal-ready that
//!    Meituan refuses because its courier already has the order or delivered it (6–8) is
//!    moot and counts as delivered too, rather than waiting for HQ.
//!
//! # Layout
//!
//! - this file: [`Meituan`] (the [`Channel`]), [`MeituanConfig`], [`Factory`], push planning;
//! - [`sign`]: the signature, shared with the simulator;
//! - [`wire`]: `detail` / `extras` entries and API answers; `convert`: push →
//!   [`crossdock_model::NewOrder`];
//! - [`simulator`]: [`simulator::MeituanSim`], an HTTP server behaving like Meituan.
//!
//! # Configuration (`[channels.meituan]`)
//!
//! | option | default |
//! |---|---|
//! | `base_url` | `https://waimaiopen.meituan.com/api/v1` (the simulator's `…/api/v1` in tests) |
//! | `app_id` | [`DEV_APP_ID`] |
//! | `timeout_secs` | 10 (per call to Meituan) |
//! | `accept_window_secs` | 300: Meituan cancels unconfirmed orders (reason 1001) after a deadline it does not publish; `accept_by` = `ctime` + this |
//! | `requests_per_second` | 20: the hub's limit on status pushes |
//!
//! Secret: `app_secret` (environment `CROSSDOCK_SECRET_MEITUAN_APP_SECRET`); in development
//! mode it defaults to [`DEV_APP_SECRET`], which the simulator uses.
//!
//! # Normalization (CHANNELS.md §10, pinned by the tests)
//!
//! - `external_order_id` = `order_id` (never `wm_order_id_view`); `display_code` = `day_seq`
//!   when subscribed and not 0, else `wm_order_id_view`; `channel_store_ref` = `app_poi_code`.
//! - Customer: `recipient_name` as sent (`王(先生)`); `recipient_phone` kept, a privacy number
//!   `13812345678_1234` split into number and `phone_pin`.
//! - Address: `recipient_address` (a `@#`-appended reverse-geocoded address is a second line),
//!   country `CN`, coordinates `latitude`/`longitude` in GCJ-02
//!   ([`crossdock_model::CoordSystem::Gcj02`],
//!   never converted here).
//! - `caution` is the order note; `delivery_time` 0 is ASAP, otherwise the scheduled instant
//!   (unix seconds); `pick_type` 1 is a pickup; `pay_type` 1 is cash (on delivery, or at the
//!   store for a pickup) with `cash_due` = `total`.
//! - Lines in `detail` order, `unit_price` = `price`, line total = `price` × `quantity`;
//!   `spec` and each `food_property` attribute are one level of price-0 modifiers (groups
//!   `spec` and `property`); box fees (`box_num` × `box_price`) go to `fees.packaging`,
//!   never to lines.
//! - Money: yuan decimals via [`crossdock_model::Money::from_major_str`] in CNY (`detail`/`extras` numbers
//!   are read from their JSON text, never through `f64`); subtotal = Σ `price` × `quantity`;
//!   `shipping_fee` → `fees.delivery`; each `extras` entry with a `reduce_fee` is a discount
//!   (split by `mt_charge` / `poi_charge` where they add up), `{}` entries skipped; total =
//!   `total` as sent. `original_price` is kept in `channel_data`.
//!
//! # Assumptions (where the sources are silent; CHANNELS.md `[2nd]` items and §9)
//!
//! - **Dedupe keys** are `order_id:push type`; for `refund` and `logistics` the push type
//!   includes its sub-type (`…:refund.apply`, `…:logistics.20`), because one order gets
//!   several of those and each must count.
//! - **Pickup flag** `pick_type` (0/1), as in the Shangou order push; absent means delivery.
//! - **Coordinates**: decimal degrees; a latitude beyond ±90 or a longitude beyond ±180 is
//!   taken as micro-degrees (× 10⁶, as "坐标需要乘以一百万" describes for some versions);
//!   `0` means none.
//! - **Who delivers**: `logistics_code` `0000` is the store (商家自配), any other code
//!   Meituan's or a partner's fleet; without it `is_third_shipping=1` means a third party,
//!   otherwise unknown. Picked up / delivered are pushed unless the platform delivers.
//! - **Double encoding**: values are tried once-decoded, then decoded a second time, and
//!   read as they verified.
//! - **No replay window**: Meituan documents no freshness check of `timestamp`; replays are
//!   deduplicated.
//! - **Refusal codes** of our answers (Meituan's convention, codes from the SDK and test
//!   harness): 701 a missing parameter (缺少参数), 702 another app's `app_id`, 703 a bad
//!   signature (签名验证错误), 700 any other unreadable push (参数错误). The HTTP status is
//!   the refusal's own, so the hub quarantines it: 401 for `sig`/`app_id`/`timestamp`
//!   problems, 400 for an unreadable order or event, 404 for an unknown push type.
//! - **Meituan's error codes** we act on: 600–699 (system errors) are retried; 700/701
//!   (parameters) and 702/703 (credentials) and every other code (business refusals, e.g. an
//!   order in the wrong state) are permanent. HTTP 429 and an `ng` code 711 (rate limit; the
//!   code is assumed) are rate limiting.
//! - **Merchant cancel codes** from the reason text: 2006 customer asked, 2004 delivery,
//!   2005 complaint, 2001 timeout, 2002 order changed, 2003 other store-side reasons (busy,
//!   closed, sold out), 2007 default.
//! - **Ready** is `/order/preparationMealComplete` with `order_id`, `GET` (`[2nd]`).
//! - **Push rate**: Meituan publishes per-app limits only in its console; 20 calls/s.
//! - **Tips**: Meituan has none; `tip` is always 0.

pub mod sign;
pub mod simulator;
pub mod wire;

mod convert;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, Inbound,
    InboundRequest, Outcome, PushOutcome, RateLimit, Reply, StatusCode, clip, http,
};
use crossdock_model::{
    ChannelId, DeliveredBy, FulfillmentKind, Order, StatusAction, StatusChange, mask_phone,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::convert::{Form, Rules};
use crate::sign::Params;
use crate::wire::ApiAnswer;

/// The channel id, as in `/webhooks/meituan/{event}` and `[channels.meituan]`.
pub const CHANNEL_ID: &str = "meituan";
/// The development app id; the simulator plays this app.
pub const DEV_APP_ID: &str = "6688";
/// The development app secret; the simulator signs and checks with it. Used by the hub only
/// in development mode.
pub const DEV_APP_SECRET: &str = "dev-meituan-app-secret-not-for-production";
pub const DEFAULT_BASE_URL: &str = "https://waimaiopen.meituan.com/api/v1";
/// The name of the channel's one secret (`CROSSDOCK_SECRET_MEITUAN_APP_SECRET`).
const APP_SECRET: &str = "app_secret";

/// Meituan's answer to everything accepted.
pub const OK_BODY: &str = r#"{"data":"ok"}"#;

/// Meituan's push types: the last segment of the callback URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushType {
    /// 推送订单: a new order, in full.
    Order,
    /// 取消订单: the user, customer service or the system cancelled.
    Cancel,
    /// 退款: a refund was applied for, agreed, rejected or withdrawn.
    Refund,
    /// 已确认订单: the order was confirmed.
    Confirmed,
    /// 已完成订单: the order is completed.
    Completed,
    /// 配送状态: Meituan's delivery progressed.
    Logistics,
}

impl PushType {
    pub const ALL: [PushType; 6] = [
        PushType::Order,
        PushType::Cancel,
        PushType::Refund,
        PushType::Confirmed,
        PushType::Completed,
        PushType::Logistics,
    ];

    /// The URL segment (`/webhooks/meituan/{segment}`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PushType::Order => "order",
            PushType::Cancel => "cancel",
            PushType::Refund => "refund",
            PushType::Confirmed => "confirmed",
            PushType::Completed => "completed",
            PushType::Logistics => "logistics",
        }
    }

    pub fn parse(segment: &str) -> Option<PushType> {
        PushType::ALL.into_iter().find(|t| t.as_str() == segment)
    }
}

/// The `[channels.meituan]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeituanConfig {
    /// The API base, up to `/api/v1`: Meituan's or the simulator's.
    pub base_url: String,
    /// The developer app id (开发者id); it signs every call and every push carries it.
    pub app_id: String,
    /// Timeout of one call to Meituan, in seconds.
    pub timeout_secs: u64,
    /// How long Meituan waits for a confirmation before it cancels (reason 1001).
    pub accept_window_secs: u64,
    /// The hub's limit on status pushes to Meituan.
    pub requests_per_second: u32,
}

impl Default for MeituanConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_id: DEV_APP_ID.to_owned(),
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
            accept_window_secs: 300,
            requests_per_second: 20,
        }
    }
}

/// The Meituan channel adapter. One instance serves every order, concurrently.
#[derive(Debug)]
pub struct Meituan {
    id: ChannelId,
    base_url: String,
    app_id: String,
    app_secret: SecretString,
    timeout: Duration,
    rules: Rules,
    rate: RateLimit,
    http: reqwest::Client,
}

impl Meituan {
    /// Builds the adapter; refuses an unusable URL, an empty app id or zero limits.
    pub fn new(
        config: MeituanConfig,
        app_secret: SecretString,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            channel: CHANNEL_ID.to_owned(),
            message,
        };
        let id = ChannelId::parse(CHANNEL_ID).map_err(|e| invalid(e.to_string()))?;
        let url = crossdock_channel::config::http_url(CHANNEL_ID, "base_url", &config.base_url)?;
        if url.query().is_some() {
            return Err(invalid(format!(
                "`base_url` = `{}` must be an http(s) URL without a query",
                config.base_url
            )));
        }
        if config.app_id.trim().is_empty() {
            return Err(invalid("`app_id` must not be empty".to_owned()));
        }
        if config.timeout_secs == 0 {
            return Err(invalid("`timeout_secs` must be at least 1".to_owned()));
        }
        if config.requests_per_second == 0 {
            return Err(invalid(
                "`requests_per_second` must be at least 1".to_owned(),
            ));
        }
        let accept_window = i64::try_from(config.accept_window_secs)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .filter(|window| *window > TimeDelta::zero())
            .ok_or_else(|| invalid("`accept_window_secs` must be between 1 and 2^63 s".into()))?;
        Ok(Self {
            id,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            app_id: config.app_id.trim().to_owned(),
            app_secret,
            timeout: Duration::from_secs(config.timeout_secs),
            rules: Rules { accept_window },
            rate: RateLimit {
                per_second: config.requests_per_second,
                burst: config.requests_per_second,
            },
            http,
        })
    }

    /// Every parameter of a push, query first, then a form body, each decoded once.
    fn received(request: &InboundRequest) -> Params {
        let mut params = request
            .query
            .as_deref()
            .map(|query| sign::decode_form(query.as_bytes()))
            .unwrap_or_default();
        if !request.body.is_empty() {
            params.extend(sign::decode_form(&request.body));
        }
        params
    }

    /// The push's parameters, decoded as they verified.
    fn verified(&self, request: &InboundRequest) -> Result<sign::Verified, ChannelError> {
        sign::verify(
            &request.url,
            Self::received(request),
            &self.app_id,
            self.app_secret.expose_secret(),
        )
        .map_err(|error| ChannelError::Unauthorized(error.to_string()))
    }

    /// One signed `GET {base_url}{path}` with `params`; Meituan's answer, or the error it
    /// amounts to.
    async fn call(&self, path: &str, params: Params) -> Result<ApiAnswer, ChannelError> {
        let url = format!("{}{}", self.base_url, path);
        let signed = sign::signed(
            &url,
            params,
            &self.app_id,
            self.app_secret.expose_secret(),
            Utc::now().timestamp(),
        );
        let request = self
            .http
            .get(format!("{url}?{}", sign::encode_form(&signed)))
            .header("accept", "application/json")
            .timeout(self.timeout);
        let response = http::send(request).await?;
        read_answer(&http::body(response).await?, path)
    }

    /// Meituan's status code of an order (`/order/viewstatus`).
    async fn view_status(&self, order_id: &str) -> Result<i64, ChannelError> {
        let answer = self
            .call("/order/viewstatus", vec![order_param(order_id)])
            .await?;
        let status = answer.data.get("status").and_then(|s| match s {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        status.ok_or_else(|| ChannelError::Platform {
            status: 502,
            body: format!(
                "/order/viewstatus answered without a status: {}",
                clip(&answer.data.to_string())
            ),
        })
    }

    /// Runs a plan's calls in order.
    async fn run(&self, order_id: &str, calls: Vec<Call>) -> Result<String, ChannelError> {
        let mut done = Vec::with_capacity(calls.len());
        for call in calls {
            match self.call(call.path, call.params).await {
                Ok(_) => done.push(format!("GET {} ok", call.path)),
                Err(error) if error.is_retryable() => return Err(error),
                Err(error) if call.best_effort => {
                    tracing::info!(
                        channel = CHANNEL_ID,
                        external_order_id = %order_id,
                        path = call.path,
                        %error,
                        "Meituan refused a best-effort call; going on."
                    );
                    done.push(format!("GET {} refused ({})", call.path, error));
                }
                Err(error) => {
                    // Does Meituan already have the order where this call would put it (a
                    // repeat whose first answer was lost)? A transient failure to tell is
                    // retried; a permanent one leaves the call's own refusal standing.
                    let reached = match call.reached {
                        Some(reached) => match self.view_status(order_id).await {
                            Ok(status) => reached.holds(status).then_some(status),
                            Err(view) if view.is_retryable() => return Err(view),
                            Err(_) => None,
                        },
                        None => None,
                    };
                    match reached {
                        Some(status) => done.push(format!(
                            "GET {} refused, but Meituan already has the order at status {status}",
                            call.path
                        )),
                        None => return Err(error),
                    }
                }
            }
        }
        Ok(done.join("; "))
    }
}

/// Meituan's order parameter.
fn order_param(order_id: &str) -> (String, String) {
    ("order_id".to_owned(), order_id.to_owned())
}

/// Reads an API answer: `ok` (or data) passes, `ng` is the error it amounts to.
pub(crate) fn read_answer(bytes: &[u8], path: &str) -> Result<ApiAnswer, ChannelError> {
    let answer: ApiAnswer = serde_json::from_slice(bytes).map_err(|e| ChannelError::Platform {
        // Unreadable: the call may or may not have taken effect; retrying is safe.
        status: 502,
        body: format!(
            "unreadable answer to {path}: {e}: {}",
            clip(&String::from_utf8_lossy(bytes))
        ),
    })?;
    if !answer.is_error() {
        return Ok(answer);
    }
    let (code, msg) = answer
        .error
        .as_ref()
        .map(|e| (e.code_number(), e.msg.clone()))
        .unwrap_or((None, String::new()));
    Err(ng_error(code, &msg, path))
}

/// Meituan's `ng` answer as an error: system errors (6xx) are retryable, a rate limit is
/// rate limiting, everything else is a permanent refusal (the status is chosen for that:
/// 400 parameters, 401 credentials, 409 the order's state or any other business refusal).
pub(crate) fn ng_error(code: Option<i64>, msg: &str, path: &str) -> ChannelError {
    let code_text = code.map_or_else(|| "?".to_owned(), |c| c.to_string());
    let body = format!("{path} answered ng, error {code_text}: {}", clip(msg));
    let status = match code {
        Some(711) => return ChannelError::RateLimited { retry_after: None },
        Some(600..=699) => 503,
        Some(700 | 701) => 400,
        Some(702 | 703) => 401,
        _ => 409,
    };
    ChannelError::Platform { status, body }
}

/// Meituan's merchant-side cancel code (2001–2007) for a free-text reason.
pub fn merchant_reason_code(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if any(&["customer", "user", "用户", "顾客"]) {
        "2006"
    } else if any(&["courier", "rider", "delivery", "配送", "骑手"]) {
        "2004"
    } else if any(&["complain", "投诉"]) {
        "2005"
    } else if any(&["timeout", "time out", "timed out", "超时"]) {
        "2001"
    } else if any(&["modif", "change", "修改"]) {
        "2002"
    } else if any(&[
        "busy",
        "capacity",
        "closed",
        "closing",
        "sold out",
        "out of",
        "unavailable",
        "stock",
        "太忙",
        "打烊",
        "售完",
        "售罄",
        "缺货",
        "no store",
    ]) {
        "2003"
    } else {
        "2007"
    }
}

/// One call of a plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub path: &'static str,
    /// Business parameters (system parameters are added when sent).
    pub params: Params,
    /// A refusal does not stop the plan (`poi_received` only acknowledges receipt).
    pub best_effort: bool,
    /// After a refusal: the Meituan statuses at which the call's effect is already there.
    pub reached: Option<Reached>,
}

/// Where a call puts an order on Meituan, read back with `/order/viewstatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reached {
    /// 4 confirmed, or any later status but 9.
    Confirmed,
    /// 9.
    Cancelled,
    /// 6 delivering, 7 delivered, 8 completed.
    Delivering,
    /// 7 delivered, 8 completed.
    Arrived,
}

impl Reached {
    pub(crate) fn holds(self, status: i64) -> bool {
        match self {
            Reached::Confirmed => matches!(status, 4 | 6 | 7 | 8),
            Reached::Cancelled => status == 9,
            Reached::Delivering => matches!(status, 6..=8),
            Reached::Arrived => matches!(status, 7 | 8),
        }
    }
}

/// What a status action means on Meituan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    Calls(Vec<Call>),
    NotApplicable(String),
}

/// The calls for `change` of `order`.
pub(crate) fn plan(order: &Order, change: &StatusChange) -> Result<Plan, ChannelError> {
    let id = order.order.external_order_id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(ChannelError::Malformed(format!(
            "external order id `{}` is not a Meituan order id",
            clip(id)
        )));
    }
    let call = |path, params, reached| Call {
        path,
        params,
        best_effort: false,
        reached,
    };
    let cancel = |reason: &str| {
        Plan::Calls(vec![call(
            "/order/cancel",
            vec![
                order_param(id),
                (
                    "reason_code".to_owned(),
                    merchant_reason_code(reason).to_owned(),
                ),
                ("reason".to_owned(), reason.to_owned()),
            ],
            Some(Reached::Cancelled),
        )])
    };
    let fulfillment = &order.order.fulfillment;
    let courier_step = |path: &'static str, reached: Reached| {
        if fulfillment.kind != FulfillmentKind::Delivery {
            Plan::NotApplicable(format!(
                "Meituan has no `{path}` for a {:?} order",
                fulfillment.kind
            ))
        } else if fulfillment.delivered_by == Some(DeliveredBy::Platform) {
            Plan::NotApplicable(format!(
                "Meituan's fleet delivers this order and reports its progress itself; `{path}` is for self-delivery"
            ))
        } else {
            Plan::Calls(vec![call(path, vec![order_param(id)], Some(reached))])
        }
    };
    Ok(match &change.action {
        StatusAction::Accept { .. } => Plan::Calls(vec![
            Call {
                path: "/order/poi_received",
                params: vec![order_param(id)],
                best_effort: true,
                reached: None,
            },
            call(
                "/order/confirm",
                vec![order_param(id)],
                Some(Reached::Confirmed),
            ),
        ]),
        StatusAction::Reject { reason }
        | StatusAction::Cancel { reason }
        | StatusAction::Fail { reason } => cancel(reason),
        // Once Meituan's courier has the order (or delivered it), the meal is long ready:
        // a refusal then is moot.
        StatusAction::Ready => Plan::Calls(vec![call(
            "/order/preparationMealComplete",
            vec![order_param(id)],
            Some(Reached::Delivering),
        )]),
        StatusAction::PickedUp => courier_step("/order/delivering", Reached::Delivering),
        StatusAction::Delivered => courier_step("/order/arrived", Reached::Arrived),
        StatusAction::Preparing | StatusAction::Complete => Plan::NotApplicable(format!(
            "Meituan has no call for `{}`",
            change.action.target()
        )),
    })
}

/// Meituan's error code and message for a refused push.
fn refusal_code(error: &ChannelError) -> (u16, &'static str) {
    let missing = |m: &str| {
        m.starts_with("missing parameter")
            || m.ends_with(": missing")
            || m.contains("more than once")
    };
    match error {
        ChannelError::Unauthorized(m) if missing(m) => (701, "缺少参数，数据不完整"),
        ChannelError::Unauthorized(m) if m.starts_with("app_id") => (702, "app_id不存在"),
        ChannelError::Unauthorized(_) | ChannelError::Stale(_) => (703, "签名验证错误"),
        ChannelError::Malformed(m) if missing(m) => (701, "缺少参数，数据不完整"),
        ChannelError::Malformed(_) | ChannelError::Order(_) | ChannelError::Unsupported(_) => {
            (700, "参数错误")
        }
        ChannelError::Transport(_)
        | ChannelError::RateLimited { .. }
        | ChannelError::Platform { .. } => (600, "内部错误"),
    }
}

/// The push's order id.
fn order_id(form: &Form<'_>) -> Result<String, ChannelError> {
    form.required("order_id")
        .map(str::to_owned)
        .map_err(ChannelError::from)
}

fn reason_text(reason: Option<&str>, code: Option<&str>) -> Option<String> {
    match (reason, code) {
        (Some(reason), Some(code)) => Some(format!("{reason} ({code})")),
        (None, Some(code)) => Some(format!(
            "{} ({code})",
            convert::cancel_reason_text(code).unwrap_or("美团取消")
        )),
        (Some(reason), None) => Some(reason.to_owned()),
        (None, None) => None,
    }
}

#[async_trait]
impl Channel for Meituan {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        self.verified(request).map(|_| ())
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let segment = request.event.as_deref().unwrap_or_default();
        let push = PushType::parse(segment).ok_or_else(|| {
            ChannelError::Unsupported(format!(
                "Meituan push `{}`: the URL must end in one of {}",
                clip(segment),
                PushType::ALL.map(|t| t.as_str()).join(", ")
            ))
        })?;
        for part in [
            request.query.as_deref().unwrap_or_default().as_bytes(),
            &request.body,
        ] {
            if let Some(name) = sign::not_utf8(part) {
                return Err(ChannelError::Malformed(format!(
                    "parameter `{}` is not UTF-8",
                    clip(&name)
                )));
            }
        }
        let verified = self.verified(request)?;
        let form = Form::new(&verified.params);
        let id = order_id(&form)?;
        let (kind, inbound) = match push {
            PushType::Order => {
                let order = convert::order(&self.id, &form, self.rules)?;
                tracing::info!(
                    channel = CHANNEL_ID,
                    external_order_id = %order.external_order_id,
                    store = order.channel_store_ref.as_deref().unwrap_or_default(),
                    lines = order.lines.len(),
                    total = %order.totals.total,
                    customer_phone = %order.customer.phone.as_deref().map(mask_phone).unwrap_or_default(),
                    double_encoded = verified.double_encoded,
                    "Meituan order push parsed."
                );
                ("order".to_owned(), Inbound::Order(Box::new(order)))
            }
            PushType::Cancel => (
                "cancel".to_owned(),
                Inbound::Cancelled {
                    external_order_id: id.clone(),
                    reason: reason_text(form.text("reason"), form.text("reason_code")),
                },
            ),
            PushType::Refund => {
                let notify = form
                    .required("notify_type")
                    .map_err(ChannelError::from)?
                    .to_owned();
                let kind = format!("refund.{notify}");
                let inbound = match notify.as_str() {
                    "agree" => Inbound::Cancelled {
                        external_order_id: id.clone(),
                        reason: Some(match form.text("reason") {
                            Some(reason) => format!("美团退款已同意: {reason}"),
                            None => "美团退款已同意".to_owned(),
                        }),
                    },
                    other => {
                        if other == "apply" {
                            tracing::warn!(
                                channel = CHANNEL_ID,
                                external_order_id = %id,
                                cancel_requested = true,
                                "Meituan customer applied for a refund; the order may be cancelled."
                            );
                        }
                        Inbound::Ignored {
                            event: kind.clone(),
                        }
                    }
                };
                (kind, inbound)
            }
            PushType::Confirmed => (
                "confirmed".to_owned(),
                Inbound::Ignored {
                    event: "confirmed".to_owned(),
                },
            ),
            PushType::Completed => (
                "completed".to_owned(),
                Inbound::Progress {
                    external_order_id: id.clone(),
                    action: StatusAction::Complete,
                },
            ),
            PushType::Logistics => {
                let status = form
                    .required("logistics_status")
                    .map_err(ChannelError::from)?;
                if !status.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ChannelError::Malformed(format!(
                        "logistics_status: `{}` is not a status code",
                        clip(status)
                    )));
                }
                let kind = format!("logistics.{status}");
                let inbound = match status {
                    "20" => Inbound::Progress {
                        external_order_id: id.clone(),
                        action: StatusAction::PickedUp,
                    },
                    "40" => Inbound::Progress {
                        external_order_id: id.clone(),
                        action: StatusAction::Delivered,
                    },
                    _ => Inbound::Ignored {
                        event: kind.clone(),
                    },
                };
                (kind, inbound)
            }
        };
        tracing::debug!(channel = CHANNEL_ID, external_order_id = %id, push = %kind, "Meituan push parsed.");
        Ok(Delivery {
            dedupe_key: format!("{id}:{kind}"),
            inbound,
        })
    }

    fn reply(&self, request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        let _ = request;
        match outcome {
            Outcome::Accepted { .. }
            | Outcome::Quoted {
                verdict: Ok(()), ..
            } => Reply {
                status: StatusCode::OK,
                content_type: Some("application/json"),
                body: OK_BODY.as_bytes().to_vec(),
            },
            Outcome::Quoted {
                verdict: Err(why), ..
            } => ng_reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                700,
                format!("参数错误: {why}"),
            ),
            Outcome::Refused(error) => {
                let (code, label) = refusal_code(error);
                ng_reply(error.http_status(), code, format!("{label}: {error}"))
            }
        }
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let id = order.order.external_order_id.as_str();
        let calls = match plan(order, change)? {
            Plan::Calls(calls) => calls,
            Plan::NotApplicable(why) => return Ok(PushOutcome::NotApplicable { why }),
        };
        match self.run(id, calls).await {
            Ok(detail) => {
                tracing::info!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %id,
                    action = %change.action.target(),
                    %detail,
                    "Status pushed to Meituan."
                );
                Ok(PushOutcome::Delivered { detail })
            }
            Err(error) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %id,
                    action = %change.action.target(),
                    error_type = error.kind(),
                    retryable = error.is_retryable(),
                    %error,
                    "Status push to Meituan failed."
                );
                Err(error)
            }
        }
    }

    fn push_rate(&self) -> RateLimit {
        self.rate
    }
}

/// `{"data":"ng","error":{"code":…,"msg":…}}` with `status`.
fn ng_reply(status: StatusCode, code: u16, msg: String) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({ "data": "ng", "error": { "code": code, "msg": msg } }),
    )
}

/// Builds [`Meituan`] from `[channels.meituan]` and the `app_secret` secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factory;

impl ChannelFactory for Factory {
    fn id(&self) -> &'static str {
        CHANNEL_ID
    }

    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[(APP_SECRET, DEV_APP_SECRET)]
    }

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError> {
        let config: MeituanConfig = settings.options()?;
        let secret = settings.secret(APP_SECRET)?;
        Ok(Arc::new(Meituan::new(
            config,
            secret,
            settings.http.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests;
