//! Channel `doordash`: DoorDash Marketplace (POS integration: the whole order is pushed,
//! status goes back with JWT-authenticated PATCH calls), and its simulator.
//!
//! # Documentation followed
//!
//! - Order integration (webhooks, async confirmation, the 3–8 minute deadline):
//!   <https://developer.doordash.com/en-US/docs/marketplace/how_to/order_integration>
//! - Webhook subscriptions (one endpoint per event type, static auth token, no body
//!   signature): <https://developer.doordash.com/es-US/docs/marketplace/overview/getting_started/create_webhook_subscription_getting_started>
//! - The order model and the sample orders:
//!   <https://developer.doordash.com/en-US/docs/marketplace/reference/sample_order>,
//!   <https://developer.doordash.com/es-US/docs/marketplace/appendix/sample_self-delivery_order>,
//!   and the Marketplace API reference <https://developer.doordash.com/en-US/api/marketplace/>
//!   (Confirm Order, Order Events, Cancel Order, model `Order`).
//! - Confirmation body: <https://developer.doordash.com/en-US/docs/marketplace/reference/sample_order_confirmation>
//! - JWTs: <https://developer.doordash.com/en-US/docs/marketplace/how_to/JWTs>
//! - Merchant cancellation: <https://developer.doordash.com/en-US/docs/marketplace/how_to/merchant_order_cancellation>
//! - Order Canceled webhook: <https://developer.doordash.com/en-US/docs/marketplace/how_to/order_cancellation_webhook>
//! - Dasher Status webhook: <https://developer.doordash.com/en-US/docs/marketplace/how_to/dasher_status_webhooks>
//! - Integrated promotions: <https://developer.doordash.com/en-US/docs/marketplace/how_to/integrated_promotions>
//! - CHANNELS.md §2 (DoorDash), §8 (unified model, status tables), §10 (normalization).
//!
//! # How an order flows
//!
//! 1. DoorDash posts the whole order to `/webhooks/doordash`:
//!    `{"event": {"type": "OrderCreate", "status": "NEW"}, "order": {…}}`, with the static
//!    token configured in the Developer Portal in `Authorization`. **The body is not
//!    signed**: [`DoorDash::verify`](crossdock_channel::Channel::verify) compares the whole
//!    `Authorization` value with the configured secret, in constant time, and that is all
//!    the authentication there is (so only HTTPS keeps the body honest).
//! 2. `parse` normalizes the order (CHANNELS.md §8, §10; module `convert`); the dedupe key
//!    is `order.id`. The hub answers **202** (asynchronous confirmation): DoorDash then
//!    waits for our `PATCH /marketplace/api/v1/orders/{id}`, and fails the order if it
//!    does not come within 3–8 minutes (the order's `accept_by` is receipt + 3 minutes).
//! 3. `push` maps the store's actions onto DoorDash's calls (table below), each signed
//!    with a fresh DoorDash JWT (`DD-JWT-V1`, HS256, module [`jwt`]) and
//!    `auth-version: v2`.
//! 4. DoorDash's own events come to their own endpoints (DoorDash configures each one):
//!    the Order Canceled webhook at `/webhooks/doordash/cancel` becomes
//!    [`Inbound::Cancelled`] (dedupe `cancel:{id}`); the optional Dasher Status webhook at
//!    `/webhooks/doordash/dasher` becomes [`Inbound::Progress`] for
//!    `dasher_out_for_delivery` (picked up) and `dropoff` (delivered), and
//!    [`Inbound::Ignored`] for the other Dasher statuses (dedupe
//!    `dasher:{id}:{dasher_status}`). Both are answered 200.
//!
//! | hub action | DoorDash call |
//! |---|---|
//! | accept | `PATCH /orders/{id}` `{merchant_supplied_id: <our order id>, order_status: "success"}` (+ `prep_time` with `send_prep_time`) |
//! | reject (and cancel or fail before acceptance) | `PATCH /orders/{id}` `{order_status: "fail", failure_reason, errors: [{code, message}]}` |
//! | ready | `PATCH /orders/{id}/events/order_ready_for_pickup` `{merchant_supplied_id}` |
//! | cancel or fail after acceptance | `PATCH /orders/{id}/cancellation` `{cancel_reason, cancel_details}` |
//! | preparing, picked up, delivered, complete | none ([`PushOutcome::NotApplicable`]) |
//!
//! A 400 that says the confirmation or the cancellation was *already* made (and not that
//! the order expired) counts as delivered, so a repeated push is harmless. Other 4xx are
//! permanent, 408/429/5xx retryable ([`ChannelError::is_retryable`]).
//!
//! # Layout
//!
//! - this file: [`DoorDash`] (the [`Channel`]), [`DoorDashConfig`], [`Factory`], push
//!   planning and reason codes;
//! - `wire`: serde types mirroring DoorDash's JSON;
//! - `convert`: wire → [`NewOrder`]; the only place where money is converted;
//! - [`jwt`]: DoorDash's JWT, signed by the adapter and checked by the simulator;
//! - [`simulator`]: [`simulator::DoorDashSim`], an HTTP server behaving like DoorDash.
//!
//! # Configuration (`[channels.doordash]`)
//!
//! | option | default |
//! |---|---|
//! | `base_url` | `https://openapi.doordash.com` (paths are `/marketplace/api/v1/…`) |
//! | `developer_id` | [`DEV_DEVELOPER_ID`] (the JWT's `iss`) |
//! | `key_id` | [`DEV_KEY_ID`] (the JWT's `kid`) |
//! | `currency` | `USD`: DoorDash sends no currency |
//! | `store_currencies` | `{}`: per-store overrides, `{ "xd-ldn-001" = "GBP" }` |
//! | `jwt_ttl_secs` | 300 (DoorDash allows at most 1800) |
//! | `send_prep_time` | `false`: DoorDash recommends leaving `prep_time` out |
//! | `user_agent` | `CrossdockHub/1.0` (DoorDash asks for `<ProviderType>/1.0`) |
//! | `timeout_secs` | 10 (per request to DoorDash) |
//! | `calls_per_second` | 10: status calls to DoorDash per second (bursts of twice as many); DoorDash publishes no rate, so set what your DoorDash contact agrees to |
//!
//! Secrets (environment `CROSSDOCK_SECRET_DOORDASH_<NAME>`):
//! - `webhook_authorization`: the exact `Authorization` value DoorDash sends on every
//!   webhook (as set in the Developer Portal, e.g. `Bearer …` or `Basic …`);
//! - `signing_secret`: the access key's signing secret, base64url as DoorDash shows it.
//!
//! In development mode they default to [`DEV_WEBHOOK_AUTHORIZATION`] and
//! [`DEV_SIGNING_SECRET`], which the simulator uses.
//!
//! # Assumptions (where the documentation is silent or second-hand)
//!
//! - **One webhook token for all three endpoints.** The portal takes a token per endpoint;
//!   the adapter expects the same `Authorization` value on the Orders, Order Canceled and
//!   Dasher Status endpoints.
//! - **Event paths.** DoorDash configures the Order Canceled and Dasher Status webhooks by
//!   hand, at URLs we give: `/webhooks/doordash/cancel` and `/webhooks/doordash/dasher`
//!   (`/webhooks/doordash/orders` is accepted as the Orders endpoint too).
//! - **Other Orders events** ([2nd]): `OrderCancel` is read as a cancellation of `order.id`
//!   (dedupe `cancel:{id}`, the same key as the Order Canceled webhook); `OrderAdjust` and
//!   unknown types are ignored (dedupe on the type, the order id and a hash of the body).
//! - **Currency** comes from the options (`currency`, `store_currencies`), never the wire.
//! - **Money.** `price` is the unit price without options, and an option's `price` is per
//!   one option for one item (CHANNELS.md §9); an option without `quantity` counts 1, without
//!   `price` 0. `tip_amount` is typed "number" in the reference: an integral value is taken
//!   as cents, a fraction fails the order. Tax = `tax` + `taxes_on_fees`;
//!   `extra_cart_order_fee` is an "other" fee; tip = `tip_amount` + `merchant_tip_amount`;
//!   integrated promotions ([2nd]: `applied_discounts_details[]`,
//!   `applied_item_discount_details[]`, with merchant- and DoorDash-funded parts) are
//!   discounts. The derived total is §10's sum, extended by `merchant_tip_amount` and minus
//!   the promotions, i.e. exactly the parts' sum.
//! - **Times.** The order has no creation time: `placed_at` is the receipt time. DoorDash
//!   holds scheduled orders and sends them as ASAP orders; an order that carries
//!   `is_asap: false` (the field of the Order Canceled webhook) is read as scheduled for
//!   its `estimated_pickup_time`. `promised_at` is `estimated_pickup_time`.
//! - **Address.** `delivery_address` is kept for delivery orders only; the state is
//!   appended to the city (`New York, NY`); `lat`/`lng` are strings of WGS 84 degrees.
//! - **Fulfilment.** `fulfillment_type` decides (`dx_delivery`, `mx_fleet_delivery` or
//!   `mx_delivery`, `pickup`); otherwise `is_pickup`, with a present `delivery_address`
//!   meaning self-delivery.
//! - **Ids.** Ids may come as strings or integers; `consumer.id` is kept exactly in
//!   `channel_data.consumer_id` (64-bit; a wider value cannot be read exactly by the JSON
//!   parser and is dropped, not rounded). Item lines use `line_item_id` where sent.
//! - **Not in the unified model**: the plastic-ware choice, the tax-remittance flags, the
//!   store's time zone and the consumer id go to `channel_data`; an item's
//!   `consumer_name` (group orders) is not kept.
//! - **Reason codes.** Confirmation `errors[].code` and `cancel_reason` are chosen by
//!   keywords in the store's reason, falling back to `OTHER`. Note DoorDash's side effects:
//!   a cancellation with `STORE_CLOSED` deactivates the store for 12 hours, `KITCHEN_BUSY`
//!   for 15 minutes.
//! - **Ready signal.** The reference says the Order Events call "may need a separate
//!   token"; this adapter signs it with the same key.
//! - **Rate.** DoorDash publishes no rate for these calls; they are held to
//!   `calls_per_second` (10 by default, burst twice that) and the simulator answers 429
//!   above its configured rate.
//! - **Dasher Status body** ([2nd]): `{dasher_status, external_order_id, client_order_id,
//!   created_at, dasher{…}}`; only the first two are needed.
//!
//! # Simulator control endpoints (for people running the demo)
//!
//! - `GET /_sim/calls`: every call the hub made to the simulated DoorDash;
//! - `POST /_sim/orders`: body a [`crossdock_channel::sim::SampleOrder`]; places it and
//!   posts the order webhook to the hub.

pub mod jwt;
pub mod simulator;

mod convert;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SecondsFormat, TimeDelta, Utc};
use crossdock_channel::signature::constant_time_eq;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, Inbound,
    InboundRequest, Outcome, PushOutcome, RateLimit, Reply, StatusCode, clip, http,
};
use crossdock_model::{
    ChannelId, Currency, DeliveredBy, FulfillmentKind, Order, Status, StatusAction, StatusChange,
    mask_phone,
};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The channel id, as in `/webhooks/doordash` and `[channels.doordash]`.
pub const CHANNEL_ID: &str = "doordash";
/// The development developer id (the JWT's `iss`); the simulator accepts it.
pub const DEV_DEVELOPER_ID: &str = "crossdock-dev-developer";
/// The development access key id (the JWT's `kid`); the simulator accepts it.
pub const DEV_KEY_ID: &str = "crossdock-dev-key";
/// The development signing secret (base64url, as DoorDash shows one). Used by the hub
/// only in development mode.
pub const DEV_SIGNING_SECRET: &str =
    "Y3Jvc3Nkb2NrLWRldi1kb29yZGFzaC1qd3Qta2V5Pj4-Pz8_LW5vdC1mb3ItcHJvZHVjdGlvbg";
/// The development webhook `Authorization` value; the simulator sends it. Used by the hub
/// only in development mode.
pub const DEV_WEBHOOK_AUTHORIZATION: &str = "Bearer dev-doordash-webhook-token-not-for-production";
pub const DEFAULT_BASE_URL: &str = "https://openapi.doordash.com";
pub const DEFAULT_USER_AGENT: &str = "CrossdockHub/1.0";
/// Where the Marketplace API's paths start.
pub const API_PREFIX: &str = "/marketplace/api/v1";
/// The `{event}` path segment of the Order Canceled webhook.
pub const EVENT_CANCEL: &str = "cancel";
/// The `{event}` path segment of the Dasher Status webhook.
pub const EVENT_DASHER: &str = "dasher";
/// The Order Events type of the ready signal.
pub const READY_EVENT: &str = "order_ready_for_pickup";

/// `CROSSDOCK_SECRET_DOORDASH_WEBHOOK_AUTHORIZATION`.
const WEBHOOK_AUTHORIZATION: &str = "webhook_authorization";
/// `CROSSDOCK_SECRET_DOORDASH_SIGNING_SECRET`.
const SIGNING_SECRET: &str = "signing_secret";

/// The `[channels.doordash]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoorDashConfig {
    /// The API host, e.g. `https://openapi.doordash.com` or the simulator's URL.
    pub base_url: String,
    /// The JWT's `iss`.
    pub developer_id: String,
    /// The JWT's `kid`: the access key's id.
    pub key_id: String,
    /// ISO 4217 code of orders of stores without an override.
    pub currency: String,
    /// DoorDash store id (`merchant_supplied_id`) → ISO 4217 code.
    pub store_currencies: BTreeMap<String, String>,
    /// Lifetime of each JWT, 1–1800 seconds.
    pub jwt_ttl_secs: u64,
    /// Send the store's preparation time as `prep_time` when accepting.
    pub send_prep_time: bool,
    pub user_agent: String,
    /// Timeout of one request to DoorDash, in seconds.
    pub timeout_secs: u64,
    /// Status calls to DoorDash per second (bursts of twice as many).
    pub calls_per_second: u32,
}

impl Default for DoorDashConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            developer_id: DEV_DEVELOPER_ID.to_owned(),
            key_id: DEV_KEY_ID.to_owned(),
            currency: "USD".to_owned(),
            store_currencies: BTreeMap::new(),
            jwt_ttl_secs: 300,
            send_prep_time: false,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
            calls_per_second: 10,
        }
    }
}

/// The DoorDash channel adapter. One instance serves every order, concurrently.
#[derive(Debug)]
pub struct DoorDash {
    id: ChannelId,
    base_url: String,
    developer_id: String,
    key_id: String,
    signing_key: SecretSlice<u8>,
    webhook_authorization: SecretString,
    currency: Currency,
    store_currencies: HashMap<String, Currency>,
    jwt_ttl_secs: i64,
    send_prep_time: bool,
    user_agent: String,
    timeout: Duration,
    calls_per_second: u32,
    http: reqwest::Client,
}

impl DoorDash {
    /// Builds the adapter; refuses an unusable URL, currency, signing secret, JWT lifetime
    /// or timeout. (An empty secret never gets here: [`crossdock_channel::SecretSource`]
    /// treats it as missing.)
    pub fn new(
        config: DoorDashConfig,
        webhook_authorization: SecretString,
        signing_secret: SecretString,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            channel: CHANNEL_ID.to_owned(),
            message,
        };
        let id = ChannelId::parse(CHANNEL_ID).map_err(|e| invalid(e.to_string()))?;
        crossdock_channel::config::http_url(CHANNEL_ID, "base_url", &config.base_url)?;
        let currency =
            Currency::parse(&config.currency).map_err(|e| invalid(format!("`currency`: {e}")))?;
        let store_currencies = config
            .store_currencies
            .iter()
            .map(|(store, code)| {
                Currency::parse(code)
                    .map(|c| (store.clone(), c))
                    .map_err(|e| invalid(format!("`store_currencies.{store}`: {e}")))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        if !(1..=jwt::MAX_TTL_SECS.unsigned_abs()).contains(&config.jwt_ttl_secs) {
            return Err(invalid(format!(
                "`jwt_ttl_secs` = {} must be within 1–{} (DoorDash refuses longer tokens)",
                config.jwt_ttl_secs,
                jwt::MAX_TTL_SECS
            )));
        }
        if config.timeout_secs == 0 {
            return Err(invalid("`timeout_secs` must be at least 1".to_owned()));
        }
        if config.calls_per_second == 0 {
            return Err(invalid("`calls_per_second` must be at least 1".to_owned()));
        }
        for (name, value) in [
            ("developer_id", &config.developer_id),
            ("key_id", &config.key_id),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("`{name}` must not be empty")));
            }
        }
        let signing_key = jwt::decode_signing_secret(signing_secret.expose_secret())
            .map_err(|e| invalid(format!("secret `{SIGNING_SECRET}`: {e}")))?;
        if reqwest::header::HeaderValue::from_str(&config.user_agent).is_err() {
            return Err(invalid(
                "`user_agent` is not a valid header value".to_owned(),
            ));
        }
        Ok(Self {
            id,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            developer_id: config.developer_id,
            key_id: config.key_id,
            signing_key: SecretSlice::from(signing_key),
            webhook_authorization,
            currency,
            store_currencies,
            jwt_ttl_secs: i64::try_from(config.jwt_ttl_secs).unwrap_or(jwt::MAX_TTL_SECS),
            send_prep_time: config.send_prep_time,
            user_agent: config.user_agent,
            timeout: Duration::from_secs(config.timeout_secs),
            calls_per_second: config.calls_per_second,
            http,
        })
    }

    /// The currency of a store's orders: its override, else the default.
    pub fn currency_for(&self, store: &str) -> Currency {
        self.store_currencies
            .get(store)
            .copied()
            .unwrap_or(self.currency)
    }

    /// A fresh JWT for one call.
    fn token(&self) -> String {
        jwt::sign(
            self.signing_key.expose_secret(),
            &self.developer_id,
            &self.key_id,
            Utc::now(),
            self.jwt_ttl_secs,
        )
    }

    /// `PATCH {base_url}{path}` with a JSON body, the JWT and `auth-version: v2`.
    async fn patch(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ChannelError> {
        let request = self
            .http
            .patch(format!("{}{}", self.base_url, path))
            .bearer_auth(self.token())
            .header("auth-version", jwt::AUTH_VERSION)
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .json(body)
            .timeout(self.timeout);
        http::send(request).await
    }

    fn parse_orders(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let value = wire::value(&request.body).map_err(malformed("Orders webhook"))?;
        let envelope: wire::Envelope =
            wire::read(value, "").map_err(malformed("Orders webhook"))?;
        let event_type = envelope.event.event_type.trim().to_owned();
        let order_value = envelope.order.ok_or_else(|| {
            ChannelError::Malformed(format!(
                "Orders webhook: `{}` event has no `order`",
                clip(&event_type)
            ))
        })?;
        match event_type.as_str() {
            "OrderCreate" => {
                let order: wire::Order =
                    wire::read(order_value, "order").map_err(malformed("Orders webhook"))?;
                let currency = self.currency_for(order.store.merchant_supplied_id.trim());
                let new_order = convert::order(
                    &self.id,
                    &order,
                    envelope.event.status.as_deref(),
                    currency,
                    request.received_at,
                )?;
                tracing::debug!(
                    channel = CHANNEL_ID,
                    external_order_id = %new_order.external_order_id,
                    store = new_order.channel_store_ref.as_deref().unwrap_or(""),
                    lines = new_order.lines.len(),
                    total = %new_order.totals.total,
                    customer_phone = %new_order.customer.phone.as_deref().map(mask_phone).unwrap_or_default(),
                    "DoorDash order parsed."
                );
                Ok(Delivery {
                    dedupe_key: new_order.external_order_id.clone(),
                    inbound: Inbound::Order(Box::new(new_order)),
                })
            }
            "OrderCancel" => {
                let order: wire::OrderRef =
                    wire::read(order_value, "order").map_err(malformed("Orders webhook"))?;
                let id = non_empty(&order.id, "order.id")?;
                Ok(Delivery {
                    dedupe_key: format!("cancel:{id}"),
                    inbound: Inbound::Cancelled {
                        external_order_id: id,
                        reason: None,
                    },
                })
            }
            other => {
                let id = order_value
                    .get("id")
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                let digest = hex::encode(Sha256::digest(&request.body));
                tracing::info!(channel = CHANNEL_ID, event_type = %clip(other), "DoorDash event ignored.");
                Ok(Delivery {
                    dedupe_key: format!("{}:{}:{}", clip(other), clip(&id), &digest[..16]),
                    inbound: Inbound::Ignored {
                        event: other.to_owned(),
                    },
                })
            }
        }
    }
}

fn malformed(what: &'static str) -> impl Fn(wire::WireError) -> ChannelError {
    move |error| ChannelError::Malformed(format!("{what}: {error}"))
}

fn non_empty(value: &str, field: &str) -> Result<String, ChannelError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ChannelError::Malformed(format!("{field} is empty")));
    }
    Ok(value.to_owned())
}

fn parse_cancel(request: &InboundRequest) -> Result<Delivery, ChannelError> {
    let value = wire::value(&request.body).map_err(malformed("Order Canceled webhook"))?;
    let notification: wire::CancelNotification =
        wire::read(value, "").map_err(malformed("Order Canceled webhook"))?;
    let id = non_empty(&notification.external_order_id, "external_order_id")?;
    tracing::info!(
        channel = CHANNEL_ID,
        external_order_id = %id,
        client_order_id = notification.client_order_id.as_deref().unwrap_or(""),
        "DoorDash cancelled an order."
    );
    Ok(Delivery {
        dedupe_key: format!("cancel:{id}"),
        inbound: Inbound::Cancelled {
            external_order_id: id,
            reason: None,
        },
    })
}

fn parse_dasher(request: &InboundRequest) -> Result<Delivery, ChannelError> {
    let value = wire::value(&request.body).map_err(malformed("Dasher Status webhook"))?;
    let status: wire::DasherStatus =
        wire::read(value, "").map_err(malformed("Dasher Status webhook"))?;
    let id = non_empty(&status.external_order_id, "external_order_id")?;
    let dasher_status = non_empty(&status.dasher_status, "dasher_status")?;
    let inbound = match dasher_status.as_str() {
        "dasher_out_for_delivery" => Inbound::Progress {
            external_order_id: id.clone(),
            action: StatusAction::PickedUp,
        },
        "dropoff" => Inbound::Progress {
            external_order_id: id.clone(),
            action: StatusAction::Delivered,
        },
        other => Inbound::Ignored {
            event: format!("dasher_status:{}", clip(other)),
        },
    };
    tracing::debug!(
        channel = CHANNEL_ID,
        external_order_id = %id,
        dasher_status = %clip(&dasher_status),
        at = status.created_at.as_deref().unwrap_or(""),
        "DoorDash Dasher status."
    );
    Ok(Delivery {
        dedupe_key: format!("dasher:{id}:{}", clip(&dasher_status)),
        inbound,
    })
}

/// An id fit to be a path segment: ASCII letters, digits, `-` and `_`.
fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// DoorDash's `errors[].code` of a failed confirmation, for a free-text reason. DoorDash
/// asks that vague ("OTHER") reasons stay rare, so the keywords are generous.
pub(crate) fn failure_code(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    if contains_any(&text, &["hours", "not open yet", "opening time"]) {
        "STORE_HOURS_ISSUE"
    } else if contains_any(
        &text,
        &[
            "out of stock",
            "sold out",
            "unavailable",
            "not available",
            "unknown item",
            "out of ",
            "86",
        ],
    ) {
        "ITEM_OUT_OF_STOCK"
    } else if contains_any(&text, &["closed", "closing"]) {
        "STORE_CLOSED"
    } else if contains_any(&text, &["offline"]) {
        "POS_OFFLINE"
    } else if contains_any(&text, &["busy", "capacity", "overload", "throttl"]) {
        "CAPACITY_THROTTLING"
    } else if contains_any(&text, &["pickup time", "stale"]) {
        "STALE_PICKUP_TIME"
    } else if contains_any(&text, &["timeout", "timed out", "time out", "too late"]) {
        "TIME_OUT"
    } else if contains_any(&text, &["paused", "disabled", "online ordering"]) {
        "ORDER_ONLINE_DISABLED"
    } else if contains_any(&text, &["connect", "network"]) {
        "CONNECTIVITY_ISSUE"
    } else if contains_any(
        &text,
        &[
            "invalid",
            "malformed",
            "unknown store",
            "price",
            "quantity",
            "address",
        ],
    ) {
        "INVALID_ORDER"
    } else if contains_any(&text, &["internal", "error", "crash"]) {
        "INTERNAL_ERROR"
    } else {
        "OTHER"
    }
}

/// DoorDash's `cancel_reason` for a free-text reason. Beware DoorDash's side effects:
/// `STORE_CLOSED` deactivates the store for 12 hours, `KITCHEN_BUSY` for 15 minutes.
pub(crate) fn cancel_code(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    if contains_any(
        &text,
        &[
            "out of stock",
            "sold out",
            "unavailable",
            "not available",
            "out of ",
            "86",
        ],
    ) {
        "ITEM_OUT_OF_STOCK"
    } else if contains_any(&text, &["closed", "closing"]) {
        "STORE_CLOSED"
    } else if contains_any(&text, &["busy", "capacity", "overload", "paused", "rush"]) {
        "KITCHEN_BUSY"
    } else {
        "OTHER"
    }
}

/// Which DoorDash call a push makes (for its answer's reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Confirm,
    Ready,
    Cancellation,
}

/// What a status action means on DoorDash.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// `PATCH {base_url}{path}` with `body`.
    Call {
        kind: CallKind,
        path: String,
        body: serde_json::Value,
    },
    NotApplicable(String),
}

fn to_value<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn confirm_fail(order: &Order, reason: &str) -> serde_json::Value {
    let reason = reason.trim();
    let reason = if reason.is_empty() {
        "The store cannot take the order"
    } else {
        reason
    };
    to_value(&wire::ConfirmOrder {
        merchant_supplied_id: order.id.to_string(),
        order_status: "fail".to_owned(),
        failure_reason: Some(reason.to_owned()),
        prep_time: None,
        pickup_instructions: None,
        errors: vec![wire::ConfirmError {
            code: failure_code(reason).to_owned(),
            merchant_supplied_id: None,
            message: Some(reason.to_owned()),
        }],
    })
}

/// Maps a status change of an order onto DoorDash's call. Pure, for tests: times count
/// from the change (`change.at`), not from when the push runs.
pub(crate) fn plan(
    order: &Order,
    change: &StatusChange,
    send_prep_time: bool,
) -> Result<Plan, ChannelError> {
    let id = order.order.external_order_id.as_str();
    if !is_safe_id(id) {
        return Err(ChannelError::Malformed(format!(
            "external order id `{}` is not a valid DoorDash order id",
            clip(id)
        )));
    }
    let base = format!("{API_PREFIX}/orders/{id}");
    let confirmed = matches!(
        change.from,
        Status::Accepted | Status::Preparing | Status::Ready | Status::PickedUp
    );
    let confirm = |body: serde_json::Value| {
        Ok(Plan::Call {
            kind: CallKind::Confirm,
            path: base.clone(),
            body,
        })
    };
    let cancellation = |reason: &str| {
        Ok(Plan::Call {
            kind: CallKind::Cancellation,
            path: format!("{base}/cancellation"),
            body: to_value(&wire::CancelOrder {
                cancel_reason: cancel_code(reason).to_owned(),
                cancel_details: Some(reason.trim().to_owned()).filter(|r| !r.is_empty()),
            }),
        })
    };
    let merchant_delivery = order.order.fulfillment.kind == FulfillmentKind::Delivery
        && order.order.fulfillment.delivered_by == Some(DeliveredBy::Store);
    match &change.action {
        StatusAction::Accept { prep_minutes } => {
            let prep_time = (send_prep_time && *prep_minutes > 0).then(|| {
                (change.at + TimeDelta::minutes(i64::from(*prep_minutes)))
                    .to_rfc3339_opts(SecondsFormat::Millis, true)
            });
            confirm(to_value(&wire::ConfirmOrder {
                merchant_supplied_id: order.id.to_string(),
                order_status: "success".to_owned(),
                failure_reason: None,
                prep_time,
                pickup_instructions: None,
                errors: Vec::new(),
            }))
        }
        StatusAction::Reject { reason } => confirm(confirm_fail(order, reason)),
        StatusAction::Cancel { reason } | StatusAction::Fail { reason } if confirmed => {
            cancellation(reason)
        }
        // Never confirmed: DoorDash's way to refuse it is a failed confirmation.
        StatusAction::Cancel { reason } | StatusAction::Fail { reason } => {
            confirm(confirm_fail(order, reason))
        }
        StatusAction::Ready => Ok(Plan::Call {
            kind: CallKind::Ready,
            path: format!("{base}/events/{READY_EVENT}"),
            body: to_value(&wire::OrderReady {
                merchant_supplied_id: Some(order.id.to_string()),
            }),
        }),
        StatusAction::PickedUp | StatusAction::Delivered if merchant_delivery => {
            Ok(Plan::NotApplicable(format!(
                "DoorDash's Marketplace API has no call for `{}` of an order the store delivers",
                change.action.target()
            )))
        }
        StatusAction::PickedUp | StatusAction::Delivered => Ok(Plan::NotApplicable(format!(
            "DoorDash reports `{}` itself (Dasher Status webhook); there is no call for it",
            change.action.target()
        ))),
        StatusAction::Preparing | StatusAction::Complete => Ok(Plan::NotApplicable(format!(
            "DoorDash's Marketplace API has no call for `{}`",
            change.action.target()
        ))),
    }
}

/// A 400 that says the call was already made: a confirmation "already been processed", a
/// cancellation "already been cancelled". One that also says the order expired is a real
/// refusal.
fn already_done(kind: CallKind, body: &str) -> bool {
    let text = body.to_lowercase();
    kind != CallKind::Ready && text.contains("already") && !text.contains("expired")
}

#[async_trait]
impl Channel for DoorDash {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    /// DoorDash does not sign the body: the whole `Authorization` value must equal the
    /// configured one, byte for byte (constant time).
    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        let Some(provided) = request.headers.get("authorization") else {
            return Err(ChannelError::Unauthorized(
                "missing Authorization header".to_owned(),
            ));
        };
        let expected = self.webhook_authorization.expose_secret().as_bytes();
        if constant_time_eq(provided.as_bytes(), expected) {
            Ok(())
        } else {
            Err(ChannelError::Unauthorized(
                "the Authorization header is not the configured DoorDash webhook token".to_owned(),
            ))
        }
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        match request.event.as_deref() {
            None | Some("orders") => self.parse_orders(request),
            Some(EVENT_CANCEL) => parse_cancel(request),
            Some(EVENT_DASHER) => parse_dasher(request),
            Some(other) => Err(ChannelError::Unsupported(format!(
                "DoorDash has no webhook at /webhooks/{CHANNEL_ID}/{}; use /webhooks/{CHANNEL_ID}, \
                 /{EVENT_CANCEL} or /{EVENT_DASHER}",
                clip(other)
            ))),
        }
    }

    /// 202 to an order (the asynchronous confirmation follows as a PATCH: a 200 would
    /// confirm it at once), 200 to the other events; refusals as `{"code", "message"}`
    /// with the error's status (DoorDash counts any non-2xx as a failed delivery).
    fn reply(&self, _request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        match outcome {
            Outcome::Accepted { delivery, .. } => match delivery.inbound {
                Inbound::Order(_) => Reply::empty(StatusCode::ACCEPTED),
                _ => Reply::empty(StatusCode::OK),
            },
            Outcome::Quoted { .. } => Reply::json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({
                    "code": "unsupported",
                    "message": "DoorDash sends no quotes",
                }),
            ),
            Outcome::Refused(error) => Reply::json(
                error.http_status(),
                &serde_json::json!({ "code": error.kind(), "message": error.to_string() }),
            ),
        }
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let action = change.action.target();
        let (kind, path, body) = match plan(order, change, self.send_prep_time)? {
            Plan::Call { kind, path, body } => (kind, path, body),
            Plan::NotApplicable(why) => return Ok(PushOutcome::NotApplicable { why }),
        };
        match self.patch(&path, &body).await {
            Ok(response) => {
                let status = response.status().as_u16();
                tracing::info!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %action,
                    path = %path,
                    status,
                    "Status pushed to DoorDash."
                );
                Ok(PushOutcome::Delivered {
                    detail: format!("PATCH {path} answered {status}"),
                })
            }
            Err(ChannelError::Platform { status: 400, body }) if already_done(kind, &body) => {
                tracing::info!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %action,
                    path = %path,
                    "DoorDash already had this status change."
                );
                Ok(PushOutcome::Delivered {
                    detail: format!("PATCH {path} answered 400, already done: {}", clip(&body)),
                })
            }
            Err(error) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %action,
                    path = %path,
                    error_type = error.kind(),
                    retryable = error.is_retryable(),
                    %error,
                    "Status push to DoorDash failed."
                );
                Err(error)
            }
        }
    }

    /// DoorDash publishes no rate for order calls: `calls_per_second`, by default 10, well
    /// under the simulator's default (20 per second), leaving room for menu and store
    /// calls.
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: self.calls_per_second,
            burst: self.calls_per_second.saturating_mul(2),
        }
    }
}

/// Builds [`DoorDash`] from `[channels.doordash]` and the `webhook_authorization` and
/// `signing_secret` secrets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factory;

impl ChannelFactory for Factory {
    fn id(&self) -> &'static str {
        CHANNEL_ID
    }

    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (WEBHOOK_AUTHORIZATION, DEV_WEBHOOK_AUTHORIZATION),
            (SIGNING_SECRET, DEV_SIGNING_SECRET),
        ]
    }

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError> {
        let config: DoorDashConfig = settings.options()?;
        let webhook_authorization = settings.secret(WEBHOOK_AUTHORIZATION)?;
        let signing_secret = settings.secret(SIGNING_SECRET)?;
        Ok(Arc::new(DoorDash::new(
            config,
            webhook_authorization,
            signing_secret,
            settings.http.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests;
