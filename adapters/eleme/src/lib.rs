//! Channel `eleme`: the Ele.me open platform (饿了么开放平台, restaurant API), and its
//! simulator.
//!
//! # Sources followed
//!
//! Ele.me's own pages (<https://open.shop.ele.me>, API host `open-api.shop.ele.me`) were
//! not readable here, so this adapter follows CHANNELS.md §5 and the public SDKs and
//! integrations it names, read at the source:
//!
//! - <https://github.com/xiangzhanyou/eleme-openapi-php-sdk>: `src/ElemeOpenApi/Protocol/RpcClient.php`
//!   (the JSON-RPC body, the API signature, the error codes), `src/ElemeOpenApi/OAuth/OAuthClient.php`
//!   (client-credentials token at `{host}/token`), `src/ElemeOpenApi/Api/OrderService.php`
//!   (the order actions, including `eleme.order.setOrderPrepared`), `demo/push.php` and
//!   `demo/util.php` (the push reply `{"message":"ok"}` and the push signature);
//! - <https://github.com/dllen/eleme-openapi-java-sdk>: `api/entity/order/*` (`OOrder`,
//!   `OGoodsGroup`, `OGoodsItem`, `OGroupItemSpec`, `OGroupItemAttribute`, `OActivity`),
//!   `api/enumeration/order/*` (`OOrderStatus`, `OOrderDetailGroupType`,
//!   `OInvalidateType`, the delivery `OState`), `api/entity/message/OMessage.java`,
//!   `api/utils/CallbackValidationUtil.java`, `utils/SignatureUtil.java`,
//!   `utils/WebUtils.java`, `config/BasicURL.java`;
//! - public production push handlers (a Java ERP controller with real signed sample
//!   pushes of types 10, 45 and 51–56, a C# integration with the role codes) for the
//!   message types, the delivery states and the shape of each message.
//!
//! # How an order flows
//!
//! 1. Ele.me POSTs a JSON envelope to `/webhooks/eleme`:
//!    `{requestId, type, appId, message, shopId, timestamp, signature, userId}`.
//!    [`Eleme::verify`](crossdock_channel::Channel::verify) recomputes the signature over
//!    the envelope exactly as received: UPPER-case hex MD5 of `key=value` over the sorted
//!    keys but `signature`, no separator, then the app secret; strings are their decoded
//!    text (`message` is the JSON document in the string), numbers their exact text (a
//!    64-bit `userId` is never rounded). Ele.me also pings the URL with an empty request
//!    (GET): that is a ping, answered like any message.
//! 2. `parse` dedupes on `requestId` and reads `type`: 10 is a new order (the `OOrder` in
//!    `message` → [`Inbound::Order`]); 14, 15, 17, 23 and 25 cancel it
//!    ([`Inbound::Cancelled`]); a delivery message (51–76) whose state is `delivering` or
//!    `completed` is the courier's progress ([`Inbound::Progress`]); every other type is
//!    [`Inbound::Ignored`] under a name that says what it was (`eleme.12.merchant_accepted`).
//! 3. The hub answers 200 `{"message":"ok"}` to every message it took, duplicates
//!    included; a refused one gets Ele.me's error shape
//!    `{"error":{"code":"INVALID_SIGNATURE","message":…}}` with the refusal's HTTP status
//!    (401 for a bad signature), so Ele.me sends it again later.
//! 4. `push` calls Ele.me's JSON-RPC API (`POST {base_url}/api/v1/`, body
//!    `{nop, id, action, token, metas:{app_key, timestamp}, params, signature}`, signed
//!    with UPPER(MD5(action + token + sorted `key=json(value)` over metas ∪ params + app
//!    secret))), with an OAuth client-credentials token (one, cached, refreshed once on
//!    `UNAUTHORIZED`):
//!
//!    | hub action | Ele.me call |
//!    |---|---|
//!    | accept | `eleme.order.confirmOrderLite {orderId}` |
//!    | reject, cancel, fail | `eleme.order.cancelOrderLite {orderId, type, remark}` ([`cancel_type`]) |
//!    | ready | `eleme.order.setOrderPrepared {orderId}` (orders Ele.me delivers, and pickups) |
//!    | picked up (store delivers) | `eleme.order.deliveryBySelfLite {orderId}` |
//!    | delivered (store delivers) | `eleme.order.receivedOrderLite {orderId}` |
//!    | preparing, complete; picked up / delivered when Ele.me delivers | none: [`PushOutcome::NotApplicable`] |
//!
//!    Ele.me answers HTTP 200 with `{error:{code,message}}` on failure: `EXCEED_LIMIT` is
//!    [`ChannelError::RateLimited`], `SERVER_ERROR` a retryable 503, `INVALID_TIMESTAMP` a
//!    retryable 408 (a late request; a clock that stays wrong parks the sync), and the
//!    others permanent: `UNAUTHORIZED` 401 (after one token refresh), `INVALID_SIGNATURE`,
//!    `ACCESS_DENIED`, `PERMISSION_DENIED`, `METHOD_NOT_ALLOWED` 403,
//!    `ILLEGAL_REQUEST`, `VALIDATION_FAILED` and unknown codes 400, business errors
//!    (`BIZ_…`, e.g. an order already cancelled) 409. HTTP-level failures map as
//!    [`crossdock_channel::http`] does (429, 5xx retryable).
//!
//! # Normalization (CHANNELS.md §5.2, §8, §10)
//!
//! `id` (a string) is the external id, `daySn` the display code, `shopId` (as a string)
//! the channel store ref, `openId` is kept in `channel_data.open_id`, `consignee` the
//! customer name, `phoneList[0]` the phone (a privacy number `number,ext` is split into
//! phone and PIN), `description` the note, `deliveryGeo` (`"lng,lat"`, longitude first)
//! GCJ-02 coordinates, `book` + `deliverTime` (Beijing local time, +08:00) the schedule.
//! Lines are the items of `normal` groups in payload order, gifts (`discount` group) are
//! lines at price 0 with the note `赠品 (gift)`; `extra` items (box fees) are not lines.
//! Specs (`newSpecs`) and attributes are one level of modifiers at price 0, grouped by
//! their name. Money is yuan as doubles, read as the exact JSON text and parsed as a
//! decimal; subtotal = Σ `total` of `normal` items, total = `totalPrice`, delivery fee
//! `deliverFee`, packaging `packageFee`, other fees `coldBoxFee`; discounts are
//! `shopPart` (merchant) and `elemePart` (Ele.me), or `activityTotal` when neither is
//! set, plus `hongbao` and `vipDeliveryFeeDiscount` (Ele.me), all as positive amounts.
//!
//! # Configuration (`[channels.eleme]`)
//!
//! | option | default |
//! |---|---|
//! | `base_url` | `https://open-api.shop.ele.me` (the API is `{base_url}/api/v1/`; sandbox `https://open-api-sandbox.shop.ele.me`) |
//! | `token_url` | `https://open-api.shop.ele.me/token` |
//! | `app_key` | [`DEV_APP_KEY`] |
//! | `scope` | `all` |
//! | `currency` | `CNY` |
//! | `self_delivery_shops` | `[]`: Ele.me `shopId`s whose orders the store delivers itself |
//! | `accept_window_secs` | 600: `accept_by` = `activeAt` + this; 0 leaves `accept_by` unset |
//! | `timeout_secs` | 10 (per request to Ele.me) |
//!
//! Secret: `app_secret` (environment `CROSSDOCK_SECRET_ELEME_APP_SECRET`), which signs
//! both directions and authenticates the token request; in development mode it defaults
//! to [`DEV_APP_SECRET`], which the simulator uses.
//!
//! # Assumptions (where the sources were silent; CHANNELS.md §9 item 5)
//!
//! - **Ping**: a request with an empty body (Ele.me's GET check of the URL, and the PHP
//!   demo's empty POST) is a ping: not signed, answered `{"message":"ok"}`, recorded as
//!   ignored under the dedupe key `ping`.
//! - **Signature comparison** is exact: Ele.me sends upper-case hex (the PHP demo compares
//!   exactly; the Java SDK ignores case). Every top-level key but `signature` is signed
//!   (the PHP demo; the Java SDK lists the seven known keys); a key whose value is not a
//!   string or a number, or a repeated key, makes the envelope unverifiable.
//! - **No replay window**: Ele.me resends an unacknowledged message later with its
//!   original `timestamp`, so `timestamp` is not checked against the clock; the dedupe
//!   key (`requestId`) makes a replay harmless.
//! - **Refusals** answer Ele.me's JSON-RPC error shape (`INVALID_SIGNATURE`,
//!   `VALIDATION_FAILED`, `METHOD_NOT_ALLOWED`, `SERVER_ERROR`) with the refusal's HTTP
//!   status; the push documentation only says that anything but `{"message":"ok"}` is a
//!   failure that Ele.me retries.
//! - **Message types**: 23 (merchant agreed to the customer's cancel request, which Ele.me
//!   also does on its own when the merchant does not answer) and 25 (arbitration upheld
//!   it) cancel the order, as §8.6 says; 20–22, 24 and 26 only move the cancel request
//!   and are ignored, as are refunds (30–36), which do not undo a delivered order.
//!   Unknown types are ignored (named `eleme.<type>.unknown`), never refused.
//! - **Delivery messages** (51–76) are read by their `state` (the SDK's `OState`):
//!   `delivering` (配送员已取餐; type 55 in the samples) is picked up and `completed`
//!   (配送成功; type 56) is delivered; without a state, 55 and 56 are read by the type.
//!   The other states (to be assigned, to be fetched, arrived, cancelled, exception,
//!   selfDelivery, …) are ignored.
//! - **Pickup**: the 2017 SDK entity has no pickup flag; `orderBusinessType == 1` (到店自取)
//!   marks a pickup order, anything else is a delivery.
//! - **Who delivers**: the order does not say. Orders of the shops listed in
//!   `self_delivery_shops` are delivered by the store (picked-up and delivered pushes go
//!   to `deliveryBySelfLite` / `receivedOrderLite`); every other delivery is Ele.me's.
//!   Newer SDKs also have `startDeliveryBySelf` / `completeDeliveryBySelf` with a courier
//!   phone, which the hub does not know; the `…Lite` calls of CHANNELS.md are used.
//! - **Ready**: `eleme.order.setOrderPrepared` (SDK: "非自配送餐厅标记已出餐", mark the
//!   meal ready for restaurants Ele.me delivers for) is pushed for orders Ele.me delivers
//!   and for pickups; for orders the store delivers there is no call.
//! - **Accept deadline**: not found in the sources; 10 minutes from `activeAt` by default
//!   (`accept_window_secs`). The simulator's deadline is configurable the same way.
//! - **Discount funding**: `shopPart` and `elemePart` are taken as the merchant's and
//!   Ele.me's shares of `activityTotal` (the samples add up so); `hongbao` and
//!   `vipDeliveryFeeDiscount` are taken as Ele.me-funded and not part of `activityTotal`.
//!   Signs do not matter: every discount is its magnitude.
//! - **Packaging**: `packageFee` when present (the `extra` group is its itemisation), else
//!   the sum of the `extra` group's totals.
//! - **Tip and tax**: Ele.me has no customer tip; prices include VAT (`tax_included`, tax 0).
//! - **Cancel types** for `cancelOrderLite` are chosen by keywords of the reason (English
//!   and Chinese; [`cancel_type`]), falling back to `others`; the reason is the `remark`.
//! - **Token request**: the SDKs send the app key and secret as HTTP Basic; the shared
//!   OAuth client sends them as form fields (`client_id`, `client_secret`), which RFC 6749
//!   allows and the simulator accepts, with `scope=all`.
//! - **Rate**: the sources give no number; pushes are limited to 20 a second.
//! - **`metas.timestamp`** is in seconds (PHP SDK); the Java SDK sends milliseconds.
//!
//! # Layout
//!
//! - this file: [`Eleme`] (the [`Channel`]), [`ElemeConfig`], [`Factory`], push planning;
//! - `wire`: serde types mirroring Ele.me's JSON and the two signatures;
//! - `convert`: `OOrder` → [`NewOrder`]; the only place where money is converted;
//! - [`simulator`]: [`simulator::ElemeSim`], an HTTP server behaving like Ele.me.

pub mod simulator;

mod convert;
mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::oauth::ClientCredentials;
use crossdock_channel::signature::constant_time_eq;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, Inbound,
    InboundRequest, Outcome, PushOutcome, RateLimit, Reply, StatusCode, clip, http,
};
use crossdock_model::{
    ChannelId, Currency, DeliveredBy, FulfillmentKind, Order, StatusAction, StatusChange,
    mask_phone,
};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::wire::{EventMessage, Metas, OOrder, RpcError, RpcRequest, RpcResponse};

/// The channel id, as in `/webhooks/eleme` and `[channels.eleme]`.
pub const CHANNEL_ID: &str = "eleme";
/// The development app key; the simulator accepts it.
pub const DEV_APP_KEY: &str = "crossdock-dev-eleme-app-key";
/// The development app secret; the simulator signs pushes and checks calls and token
/// requests with it. Used by the hub only in development mode.
pub const DEV_APP_SECRET: &str = "dev-eleme-app-secret-not-for-production";
pub const DEFAULT_BASE_URL: &str = "https://open-api.shop.ele.me";
pub const DEFAULT_TOKEN_URL: &str = "https://open-api.shop.ele.me/token";
pub const DEFAULT_SCOPE: &str = "all";
/// The JSON-RPC endpoint's path under `base_url`.
pub const API_PATH: &str = "/api/v1/";
/// The dedupe key of a ping (an empty request checking the URL).
pub const PING_KEY: &str = "ping";
/// The body of every acknowledgement Ele.me expects.
pub const ACK_BODY: &str = r#"{"message":"ok"}"#;
/// The default acceptance window (an assumption: not found in the sources).
pub const DEFAULT_ACCEPT_WINDOW_SECS: u64 = 600;
/// The name of the channel's one secret (`CROSSDOCK_SECRET_ELEME_APP_SECRET`).
const APP_SECRET: &str = "app_secret";

/// Ele.me's push message types (CHANNELS.md §5.1).
pub mod message_type {
    pub const ORDER_EFFECTIVE: i64 = 10;
    pub const MERCHANT_ACCEPTED: i64 = 12;
    pub const CANCELLED_BEFORE_ACCEPTANCE: i64 = 14;
    pub const INVALIDATED: i64 = 15;
    pub const FORCIBLY_INVALIDATED: i64 = 17;
    pub const COMPLETED: i64 = 18;
    pub const CANCEL_REQUESTED: i64 = 20;
    pub const CANCEL_AGREED: i64 = 23;
    pub const CANCEL_UPHELD_BY_ARBITRATION: i64 = 25;
    pub const REMINDER: i64 = 45;
    /// Delivery: the courier picked the order up (state `delivering`).
    pub const DELIVERY_DELIVERING: i64 = 55;
    /// Delivery: the courier delivered the order (state `completed`).
    pub const DELIVERY_COMPLETED: i64 = 56;
}

/// The `[channels.eleme]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElemeConfig {
    /// The API host, e.g. `https://open-api.shop.ele.me` or the simulator's URL; calls go
    /// to `{base_url}/api/v1/`.
    pub base_url: String,
    /// The OAuth token endpoint.
    pub token_url: String,
    /// The app key (`metas.app_key`, the OAuth client id). Not a secret: it travels in
    /// every call.
    pub app_key: String,
    pub scope: String,
    /// ISO-4217 currency of the channel's orders (Ele.me sends yuan, with no currency).
    pub currency: String,
    /// Ele.me shop ids (`shopId`) whose orders the store delivers itself.
    pub self_delivery_shops: Vec<String>,
    /// Ele.me's acceptance window, from `activeAt`; 0: no `accept_by`.
    pub accept_window_secs: u64,
    /// Timeout of one request to Ele.me, in seconds.
    pub timeout_secs: u64,
}

impl Default for ElemeConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            app_key: DEV_APP_KEY.to_owned(),
            scope: DEFAULT_SCOPE.to_owned(),
            currency: "CNY".to_owned(),
            self_delivery_shops: Vec::new(),
            accept_window_secs: DEFAULT_ACCEPT_WINDOW_SECS,
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

/// The Ele.me channel adapter. One instance serves every order, concurrently.
#[derive(Debug)]
pub struct Eleme {
    id: ChannelId,
    api_url: String,
    app_key: String,
    app_secret: SecretString,
    currency: Currency,
    self_delivery_shops: HashSet<String>,
    accept_window: Option<TimeDelta>,
    timeout: Duration,
    http: reqwest::Client,
    tokens: ClientCredentials,
}

impl Eleme {
    /// Builds the adapter; refuses unusable URLs, an unknown currency, an empty app key or
    /// a zero timeout. (An empty secret never gets here: [`crossdock_channel::SecretSource`]
    /// treats it as missing.)
    pub fn new(
        config: ElemeConfig,
        app_secret: SecretString,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            channel: CHANNEL_ID.to_owned(),
            message,
        };
        let id = ChannelId::parse(CHANNEL_ID).map_err(|e| invalid(e.to_string()))?;
        for (name, value) in [
            ("base_url", &config.base_url),
            ("token_url", &config.token_url),
        ] {
            crossdock_channel::config::http_url(CHANNEL_ID, name, value)?;
        }
        if config.app_key.trim().is_empty() {
            return Err(invalid("`app_key` must not be empty".to_owned()));
        }
        let currency =
            Currency::parse(&config.currency).map_err(|e| invalid(format!("`currency`: {e}")))?;
        if config.timeout_secs == 0 {
            return Err(invalid("`timeout_secs` must be at least 1".to_owned()));
        }
        if let Some(bad) = config
            .self_delivery_shops
            .iter()
            .find(|shop| shop.trim().is_empty())
        {
            return Err(invalid(format!(
                "`self_delivery_shops` has an empty shop id (`{bad}`)"
            )));
        }
        let accept_window = match config.accept_window_secs {
            0 => None,
            secs => Some(
                i64::try_from(secs)
                    .ok()
                    .and_then(TimeDelta::try_seconds)
                    .ok_or_else(|| invalid("`accept_window_secs` is too large".to_owned()))?,
            ),
        };
        let tokens = ClientCredentials::new(
            http.clone(),
            config.token_url.clone(),
            config.app_key.clone(),
            app_secret.clone(),
            config.scope.clone(),
        );
        Ok(Self {
            id,
            api_url: format!("{}{API_PATH}", config.base_url.trim_end_matches('/')),
            app_key: config.app_key,
            app_secret,
            currency,
            self_delivery_shops: config
                .self_delivery_shops
                .iter()
                .map(|s| s.trim().to_owned())
                .collect(),
            accept_window,
            timeout: Duration::from_secs(config.timeout_secs),
            http,
            tokens,
        })
    }

    /// The JSON-RPC body of a call, signed, as of `now`.
    fn rpc_request(
        &self,
        action: &str,
        params: serde_json::Map<String, serde_json::Value>,
        token: &str,
        now: DateTime<Utc>,
    ) -> RpcRequest {
        let metas = Metas {
            app_key: self.app_key.clone(),
            timestamp: now.timestamp(),
        };
        let signature = wire::api_signature(
            action,
            token,
            &metas,
            &params,
            self.app_secret.expose_secret(),
        );
        RpcRequest {
            nop: "1.0.0".to_owned(),
            id: request_id(now),
            action: action.to_owned(),
            token: token.to_owned(),
            metas,
            params,
            signature,
        }
    }

    /// Calls an action with the cached token; on `UNAUTHORIZED` (or an HTTP 401) drops
    /// the token and tries once more with a fresh one.
    async fn call(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, ChannelError> {
        let token = self.tokens.token().await?;
        match self.call_once(action, params, token.expose_secret()).await {
            Err(ChannelError::Platform { status: 401, .. }) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    action,
                    "Ele.me refused the token; refreshing it and retrying once."
                );
                self.tokens.invalidate().await;
                let token = self.tokens.token().await?;
                self.call_once(action, params, token.expose_secret()).await
            }
            other => other,
        }
    }

    async fn call_once(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
        token: &str,
    ) -> Result<serde_json::Value, ChannelError> {
        let body = self.rpc_request(action, params.clone(), token, Utc::now());
        let request = self
            .http
            .post(&self.api_url)
            .header("content-type", "application/json; charset=utf-8")
            .json(&body)
            .timeout(self.timeout);
        let response = http::send(request).await?;
        let bytes = http::body(response).await?;
        answer(action, &bytes)
    }
}

/// `<UUID, upper-case, no dashes>|<unix ms>`, as the SDKs build a call's `id`.
fn request_id(now: DateTime<Utc>) -> String {
    format!(
        "{}|{}",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase(),
        now.timestamp_millis()
    )
}

/// Reads Ele.me's answer to a call: its `result`, or its `error` as a typed failure.
fn answer(action: &str, body: &[u8]) -> Result<serde_json::Value, ChannelError> {
    let response: RpcResponse = serde_json::from_slice(body).map_err(|e| {
        // A 200 that is not JSON-RPC is a gateway's page, not Ele.me's word: retry.
        ChannelError::Platform {
            status: 502,
            body: format!(
                "{action}: the answer is not a JSON-RPC response ({e}): {}",
                clip(&String::from_utf8_lossy(body))
            ),
        }
    })?;
    match response.error {
        Some(error) => Err(rpc_failure(action, &error)),
        None => Ok(response.result.unwrap_or(serde_json::Value::Null)),
    }
}

/// An `{error:{code,message}}` answer as a typed failure (see the crate docs for the
/// table). The HTTP-like status expresses whether a retry can help.
pub(crate) fn rpc_failure(action: &str, error: &RpcError) -> ChannelError {
    let body = format!(
        "{}: {} ({action})",
        error.code,
        error.message.as_deref().unwrap_or("no message")
    );
    let status = match error.code.as_str() {
        "EXCEED_LIMIT" => return ChannelError::RateLimited { retry_after: None },
        "SERVER_ERROR" => 503,
        "INVALID_TIMESTAMP" => 408,
        "UNAUTHORIZED" => 401,
        "INVALID_SIGNATURE" | "ACCESS_DENIED" | "PERMISSION_DENIED" | "METHOD_NOT_ALLOWED" => 403,
        code if code.starts_with("BIZ_") => 409,
        _ => 400,
    };
    ChannelError::Platform { status, body }
}

// ---------------------------------------------------------------------------------------
// Pushes
// ---------------------------------------------------------------------------------------

/// What a status action means on Ele.me.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    Call {
        action: &'static str,
        params: serde_json::Map<String, serde_json::Value>,
    },
    NotApplicable(String),
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Ele.me's `cancelOrderLite` type (the SDK's `OInvalidateType`) for a free-text reason,
/// by keywords in English and Chinese; `others` when none matches.
pub fn cancel_type(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    if contains_any(
        &text,
        &[
            "sold out",
            "out of stock",
            "unavailable",
            "availability",
            "cannot make",
            "unknown item",
            "售完",
            "售罄",
            "卖完",
            "缺货",
            "估清",
        ],
    ) {
        "foodSoldOut"
    } else if contains_any(
        &text,
        &[
            "closed", "closing", "paused", "not open", "打烊", "关门", "休息", "暂停",
        ],
    ) {
        "restaurantClosed"
    } else if contains_any(
        &text,
        &[
            "too far",
            "distance",
            "zone",
            "out of area",
            "outside",
            "超出配送范围",
            "太远",
        ],
    ) {
        "distanceTooFar"
    } else if contains_any(&text, &["busy", "capacity", "overload", "太忙", "忙不过来"]) {
        "restaurantTooBusy"
    } else if contains_any(
        &text,
        &[
            "contact",
            "unreachable",
            "no answer",
            "联系不上",
            "无法联系",
        ],
    ) {
        "contactUserFailed"
    } else if contains_any(
        &text,
        &[
            "fake",
            "fraud",
            "wrong address",
            "虚假",
            "信息错误",
            "地址错误",
        ],
    ) {
        "fakeOrder"
    } else if contains_any(
        &text,
        &[
            "customer asked",
            "customer request",
            "customer wants",
            "requested by the customer",
            "用户要求",
            "顾客要求",
        ],
    ) {
        "forceRejectOrder"
    } else if contains_any(&text, &["minimum", "起送", "not satisfied", "requirement"]) {
        "notSatisfiedDeliveryRequirement"
    } else if contains_any(&text, &["delivery", "courier", "rider", "配送", "骑手"]) {
        "deliveryFault"
    } else {
        "others"
    }
}

/// The longest `remark` sent with a cancellation, in characters.
const REMARK_MAX_CHARS: usize = 100;

fn params(order_id: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut params = serde_json::Map::new();
    params.insert("orderId".into(), order_id.into());
    params
}

/// Maps one status change of `order` onto Ele.me's call (or none).
pub(crate) fn plan(order: &Order, change: &StatusChange) -> Result<Plan, ChannelError> {
    let id = order.order.external_order_id.trim();
    if id.is_empty() {
        return Err(ChannelError::Malformed(
            "the order has no Ele.me order id to push to".to_owned(),
        ));
    }
    let fulfillment = &order.order.fulfillment;
    let store_delivers = fulfillment.kind == FulfillmentKind::Delivery
        && fulfillment.delivered_by == Some(DeliveredBy::Store);
    let call = |action: &'static str| {
        Ok(Plan::Call {
            action,
            params: params(id),
        })
    };
    let cancel = |reason: &str| {
        let mut params = params(id);
        params.insert("type".into(), cancel_type(reason).into());
        let remark: String = reason.trim().chars().take(REMARK_MAX_CHARS).collect();
        params.insert("remark".into(), remark.into());
        Ok(Plan::Call {
            action: "eleme.order.cancelOrderLite",
            params,
        })
    };
    let not_applicable = |why: &str| Ok(Plan::NotApplicable(why.to_owned()));
    match &change.action {
        StatusAction::Accept { .. } => call("eleme.order.confirmOrderLite"),
        StatusAction::Reject { reason }
        | StatusAction::Cancel { reason }
        | StatusAction::Fail { reason } => cancel(reason),
        StatusAction::Preparing => not_applicable("Ele.me has no call for `preparing`"),
        StatusAction::Ready if store_delivers => not_applicable(
            "Ele.me's setOrderPrepared is for orders Ele.me delivers; this store delivers itself",
        ),
        StatusAction::Ready => call("eleme.order.setOrderPrepared"),
        StatusAction::PickedUp if store_delivers => call("eleme.order.deliveryBySelfLite"),
        StatusAction::Delivered if store_delivers => call("eleme.order.receivedOrderLite"),
        StatusAction::PickedUp | StatusAction::Delivered => not_applicable(
            "Ele.me's courier reports pickup and delivery itself (delivery messages 55 and 56)",
        ),
        StatusAction::Complete => {
            not_applicable("Ele.me settles orders itself (message 18); there is no call")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pushes received
// ---------------------------------------------------------------------------------------

/// What a message type is called in the hub's records (`eleme.<type>.<name>`).
fn type_name(kind: i64) -> &'static str {
    match kind {
        10 => "order_effective",
        12 => "merchant_accepted",
        14 => "cancelled_before_acceptance",
        15 => "invalidated",
        17 => "forcibly_invalidated",
        18 => "completed",
        20 => "cancel_requested",
        21 => "cancel_request_withdrawn",
        22 => "cancel_request_refused_by_merchant",
        23 => "cancel_request_agreed",
        24 => "cancel_request_in_arbitration",
        25 => "cancel_upheld_by_arbitration",
        26 => "cancel_rejected_by_arbitration",
        30 => "refund_requested",
        31 => "refund_request_withdrawn",
        32 => "refund_refused_by_merchant",
        33 => "refund_agreed_by_merchant",
        34 => "refund_in_arbitration",
        35 => "refund_upheld_by_arbitration",
        36 => "refund_rejected_by_arbitration",
        45 => "reminder",
        46 => "reminder_replied",
        51..=76 => "delivery",
        91 | 92 => "shop_status",
        _ => "unknown",
    }
}

/// Who drove a status change (`role` of status messages).
fn role_name(role: i64) -> Option<&'static str> {
    Some(match role {
        1 => "the customer",
        2 => "the Ele.me system",
        3 => "the merchant",
        4 => "Ele.me customer service",
        5 => "the open-platform system",
        6 => "the SMS system",
        7 => "the wireless printer system",
        8 => "the risk-control system",
        _ => return None,
    })
}

/// The action a delivery message reports, if it is one the hub tracks.
fn delivery_progress(kind: i64, state: Option<&str>) -> Option<StatusAction> {
    match state.map(str::trim).filter(|s| !s.is_empty()) {
        Some("delivering") => Some(StatusAction::PickedUp),
        Some("completed") => Some(StatusAction::Delivered),
        Some(_) => None,
        None => match kind {
            message_type::DELIVERY_DELIVERING => Some(StatusAction::PickedUp),
            message_type::DELIVERY_COMPLETED => Some(StatusAction::Delivered),
            _ => None,
        },
    }
}

/// Reads a JSON document, naming the path of what is wrong (`message.groups[0].items[1].price`).
fn read<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, ChannelError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let place = if path == "." || path.is_empty() {
            what.to_owned()
        } else {
            format!("{what}.{path}")
        };
        ChannelError::Malformed(format!("{place}: {}", error.inner()))
    })
}

fn event_order_id(message: &EventMessage, kind: i64) -> Result<String, ChannelError> {
    message
        .order_id
        .as_ref()
        .map(|id| id.as_str().trim().to_owned())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ChannelError::Malformed(format!(
                "message.orderId: missing (a type-{kind} message names its order)"
            ))
        })
}

impl Eleme {
    /// What a verified, non-empty push means.
    fn classify(&self, body: &[u8]) -> Result<Delivery, ChannelError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| ChannelError::Malformed(format!("the body is not UTF-8: {e}")))?;
        let envelope: wire::Envelope = read(text, "envelope")?;
        let dedupe_key = envelope.request_id.as_str().trim().to_owned();
        if dedupe_key.is_empty() {
            return Err(ChannelError::Malformed(
                "envelope.requestId: empty".to_owned(),
            ));
        }
        let kind = envelope.kind;
        let name = type_name(kind);
        let inbound = match kind {
            message_type::ORDER_EFFECTIVE => {
                let order: OOrder = read(&envelope.message, "message")?;
                let sent_at = envelope
                    .timestamp
                    .and_then(DateTime::<Utc>::from_timestamp_millis);
                let context = convert::Context {
                    channel: &self.id,
                    currency: self.currency,
                    self_delivery_shops: &self.self_delivery_shops,
                    accept_window: self.accept_window,
                    envelope_shop_id: envelope.shop_id.as_str(),
                    merchant_user_id: envelope.user_id.as_ref().map(|u| u.as_str()),
                    sent_at,
                };
                let order = convert::order(&order, &context)?;
                tracing::info!(
                    channel = CHANNEL_ID,
                    request_id = %dedupe_key,
                    external_order_id = %order.external_order_id,
                    shop_id = order.channel_store_ref.as_deref().unwrap_or(""),
                    lines = order.lines.len(),
                    total = %order.totals.total,
                    customer_phone = %order.customer.phone.as_deref().map(mask_phone).unwrap_or_default(),
                    "Ele.me order parsed."
                );
                Inbound::Order(Box::new(order))
            }
            message_type::CANCELLED_BEFORE_ACCEPTANCE
            | message_type::INVALIDATED
            | message_type::FORCIBLY_INVALIDATED
            | message_type::CANCEL_AGREED
            | message_type::CANCEL_UPHELD_BY_ARBITRATION => {
                let message: EventMessage = read(&envelope.message, "message")?;
                let external_order_id = event_order_id(&message, kind)?;
                let mut reason = format!("Ele.me: {} (type {kind}", name.replace('_', " "));
                if let Some(role) = message.role.and_then(role_name) {
                    reason.push_str(", by ");
                    reason.push_str(role);
                }
                reason.push(')');
                if let Some(why) = message
                    .reason
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                {
                    reason.push_str(": ");
                    reason.push_str(why);
                }
                Inbound::Cancelled {
                    external_order_id,
                    reason: Some(reason),
                }
            }
            51..=76 => {
                let message: EventMessage = read(&envelope.message, "message")?;
                let external_order_id = event_order_id(&message, kind)?;
                match delivery_progress(kind, message.state.as_deref()) {
                    Some(action) => Inbound::Progress {
                        external_order_id,
                        action,
                    },
                    None => Inbound::Ignored {
                        event: format!(
                            "eleme.{kind}.delivery.{}",
                            message
                                .state
                                .as_deref()
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(clip)
                                .unwrap_or_else(|| "unknown".to_owned())
                        ),
                    },
                }
            }
            _ => Inbound::Ignored {
                event: format!("eleme.{kind}.{name}"),
            },
        };
        tracing::debug!(
            channel = CHANNEL_ID,
            request_id = %dedupe_key,
            message_type = kind,
            "Ele.me push parsed."
        );
        Ok(Delivery {
            dedupe_key,
            inbound,
        })
    }
}

/// Whether a request is a ping: nothing in its body.
fn is_ping(request: &InboundRequest) -> bool {
    request.body.iter().all(u8::is_ascii_whitespace)
}

/// Ele.me's error code for a refusal.
fn refusal_code(error: &ChannelError) -> &'static str {
    match error {
        ChannelError::Unauthorized(_) => "INVALID_SIGNATURE",
        ChannelError::Stale(_) => "INVALID_TIMESTAMP",
        ChannelError::Malformed(_) | ChannelError::Order(_) => "VALIDATION_FAILED",
        ChannelError::Unsupported(_) => "METHOD_NOT_ALLOWED",
        ChannelError::Transport(_)
        | ChannelError::RateLimited { .. }
        | ChannelError::Platform { .. } => "SERVER_ERROR",
    }
}

/// The answer to a refused push, in Ele.me's error shape.
pub fn refusal_reply(error: &ChannelError) -> Reply {
    Reply::json(
        error.http_status(),
        &serde_json::json!({
            "error": { "code": refusal_code(error), "message": error.to_string() }
        }),
    )
}

#[async_trait]
impl Channel for Eleme {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        if is_ping(request) {
            return Ok(());
        }
        let envelope = wire::signed_envelope(&request.body).map_err(|e| {
            ChannelError::Unauthorized(format!("the push's signature cannot be checked: {e}"))
        })?;
        let expected = wire::push_signature(&envelope.values, self.app_secret.expose_secret());
        let provided = envelope.signature.trim();
        if constant_time_eq(expected.as_bytes(), provided.as_bytes()) {
            Ok(())
        } else if constant_time_eq(
            expected.as_bytes(),
            provided.to_ascii_uppercase().as_bytes(),
        ) {
            Err(ChannelError::Unauthorized(
                "signature is not upper-case hex, as Ele.me sends it".to_owned(),
            ))
        } else {
            Err(ChannelError::Unauthorized(
                "signature does not match the message".to_owned(),
            ))
        }
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        if is_ping(request) {
            return Ok(Delivery {
                dedupe_key: PING_KEY.to_owned(),
                inbound: Inbound::Ignored {
                    event: "eleme.ping".to_owned(),
                },
            });
        }
        self.classify(&request.body)
    }

    fn reply(&self, _request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        match outcome {
            Outcome::Accepted { .. } => Reply {
                status: StatusCode::OK,
                content_type: Some("application/json"),
                body: ACK_BODY.as_bytes().to_vec(),
            },
            Outcome::Quoted { .. } => refusal_reply(&ChannelError::Unsupported(
                "Ele.me pushes orders; it asks for no quotes".to_owned(),
            )),
            Outcome::Refused(error) => refusal_reply(error),
        }
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let action = &change.action;
        let (rpc_action, params) = match plan(order, change)? {
            Plan::Call { action, params } => (action, params),
            Plan::NotApplicable(why) => return Ok(PushOutcome::NotApplicable { why }),
        };
        match self.call(rpc_action, &params).await {
            Ok(_) => {
                tracing::info!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %action.target(),
                    rpc_action,
                    "Status pushed to Ele.me."
                );
                Ok(PushOutcome::Delivered {
                    detail: format!("{rpc_action} answered ok"),
                })
            }
            Err(error) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %action.target(),
                    rpc_action,
                    error_type = error.kind(),
                    retryable = error.is_retryable(),
                    %error,
                    "Status push to Ele.me failed."
                );
                Err(error)
            }
        }
    }

    /// The sources give no number for Ele.me's call limits; 20 a second is a cautious
    /// share (Ele.me answers `EXCEED_LIMIT` beyond its limit, which is retried).
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 20,
            burst: 20,
        }
    }
}

/// Builds [`Eleme`] from `[channels.eleme]` and the `app_secret` secret.
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
        let config: ElemeConfig = settings.options()?;
        let secret = settings.secret(APP_SECRET)?;
        Ok(Arc::new(Eleme::new(config, secret, settings.http.clone())?))
    }
}

#[cfg(test)]
mod tests;
