//! Channel `uber_eats`: Uber Eats Marketplace (notify then fetch), and its simulator.
//!
//! # How an order flows
//!
//! 1. Uber posts a thin webhook (`orders.notification`) signed with `X-Uber-Signature`
//!    (lower-case hex HMAC-SHA256 of the raw body, keyed with the app's client secret).
//!    [`UberEats::verify`](crossdock_channel::Channel::verify) checks it;
//!    `parse` turns it into [`Inbound::Fetch`] (dedupe key: `event_id`), and the hub
//!    answers 200 with an empty body (Uber's convention).
//! 2. The hub calls `fetch`: the adapter takes only the *path* of `resource_href` (never
//!    the host: no SSRF), decides the API generation from it — `/v2/eats/order/{id}` is
//!    the classic API, `/v1/delivery/order/{id}` the newer one — and GETs it from the
//!    configured `base_url` with an OAuth client-credentials bearer token (one token,
//!    cached until expiry; on a 401 it is dropped and the call retried once).
//! 3. `convert` normalizes the order (CHANNELS.md §8 and §10) and records the generation
//!    in `channel_data.api` (`"classic"` or `"v1"`), which `push` needs later.
//! 4. `push` maps each [`StatusAction`] onto Uber's write-back endpoints of that
//!    generation, or answers [`PushOutcome::NotApplicable`] where Uber has no such call.
//!
//! # Layout
//!
//! - this file: [`UberEats`] (the [`Channel`]), [`UberEatsConfig`], [`Factory`], push
//!   planning;
//! - `wire`: serde types mirroring Uber's JSON (never leave the crate);
//! - `convert`: wire → [`NewOrder`]; the only place where money is converted;
//! - [`simulator`]: [`simulator::UberEatsSim`], an HTTP server behaving like Uber.
//!
//! # Configuration (`[channels.uber_eats]`)
//!
//! | option | default |
//! |---|---|
//! | `base_url` | `https://api.uber.com` |
//! | `token_url` | `https://auth.uber.com/oauth/v2/token` |
//! | `client_id` | [`DEV_CLIENT_ID`] |
//! | `scope` | `eats.order eats.store.orders.read` |
//! | `timeout_secs` | 10 (per request to Uber) |
//!
//! Secret: `client_secret` (environment `CROSSDOCK_SECRET_UBER_EATS_CLIENT_SECRET`); in
//! development mode it defaults to [`DEV_CLIENT_SECRET`], which the simulator accepts.
//!
//! # Simulator control endpoints (for people running the demo)
//!
//! Besides Uber's own endpoints the simulator serves:
//!
//! - `GET /_sim/calls`: every write call the hub made (accept, deny, cancel, ready, …),
//!   as a JSON array of `{seq, at, method, path, headers, body, answered}`;
//! - `POST /_sim/orders`: body a [`crossdock_channel::sim::SampleOrder`] as JSON; places
//!   it (stores the Uber order and sends the signed webhook to the hub) and answers
//!   `{"external_order_id", "event_id", "webhook_status", "webhook_body"}`.
//!
//! # Documentation followed
//!
//! CHANNELS.md §1, §8 and §10, and Uber's pages:
//!
//! - webhooks and their signature: <https://developer.uber.com/docs/eats/guides/webhooks>,
//!   <https://developer.uber.com/docs/eats/references/api/webhooks.orders-notification>;
//! - authentication (client credentials, scopes):
//!   <https://developer.uber.com/docs/eats/guides/authentication>;
//! - the classic order: <https://developer.uber.com/docs/eats/references/api/v2/get-eats-order-orderid>;
//! - accept and deny:
//!   <https://developer.uber.com/docs/eats/references/api/v1/post-eats-order-orderid-acceptposorder>,
//!   <https://developer.uber.com/docs/eats/references/api/v1/post-eats-order-orderid-denyposorder>;
//! - cancel: <https://developer.uber.com/docs/deliveries/direct/api/v1/post-eats-orders-orderid-cancel>;
//! - rate limits: <https://developer.uber.com/docs/rate-limiting>;
//! - field names of the newer `/v1/delivery/order` shape where the pages were not readable:
//!   the public models of <https://github.com/MultiSafepay/laravel-ubereats-models>.
//!
//! # Assumptions (where the documentation is silent)
//!
//! - The newer Order API's write-backs (`/accept`, `/deny`, `/ready`, `/cancel` under
//!   `/v1/delivery/order/{id}`) take the classic fields' names; Uber's pages for them were
//!   not readable here.
//! - A classic order has no schedule field; an `orders.scheduled.notification` sets
//!   [`FetchRef::scheduled`], and the order's time is `estimated_ready_for_pickup_at`.
//! - `StatusAction::Fail` is sent as a deny before acceptance and as a cancel after it.
//! - Deny and cancel reason codes are chosen by keyword matching on the reason text,
//!   falling back to `OTHER`.

pub mod simulator;

mod convert;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SecondsFormat, TimeDelta};
use crossdock_channel::oauth::ClientCredentials;
use crossdock_channel::signature::verify_hmac_sha256_hex;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, FetchRef,
    Inbound, InboundRequest, PushOutcome, RateLimit, clip, http,
};
use crossdock_model::{
    ChannelId, DeliveredBy, FulfillmentKind, NewOrder, Order, Status, StatusAction, StatusChange,
    mask_phone,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::wire::Envelope;

/// The channel id, as in `/webhooks/uber_eats` and `[channels.uber_eats]`.
pub const CHANNEL_ID: &str = "uber_eats";
/// The development client id; the simulator accepts it.
pub const DEV_CLIENT_ID: &str = "crossdock-dev-uber-eats";
/// The development client secret; the simulator accepts it and signs webhooks with it.
/// Used by the hub only in development mode.
pub const DEV_CLIENT_SECRET: &str = "dev-uber-eats-client-secret-not-for-production";
pub const DEFAULT_BASE_URL: &str = "https://api.uber.com";
pub const DEFAULT_TOKEN_URL: &str = "https://auth.uber.com/oauth/v2/token";
pub const DEFAULT_SCOPE: &str = "eats.order eats.store.orders.read";
/// The webhook signature header.
pub const SIGNATURE_HEADER: &str = "x-uber-signature";
/// The name of the channel's one secret (`CROSSDOCK_SECRET_UBER_EATS_CLIENT_SECRET`).
const CLIENT_SECRET: &str = "client_secret";

/// Which of Uber's two order APIs an order lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    /// `GET /v2/eats/order/{id}`, integer minor units, `/v1/eats/orders/{id}/…` writes.
    #[default]
    Classic,
    /// `GET /v1/delivery/order/{id}`, `amount_e5` money, `/v1/delivery/order/{id}/…`
    /// writes.
    V1,
}

impl Generation {
    /// The value stored in `channel_data.api`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Generation::Classic => "classic",
            Generation::V1 => "v1",
        }
    }

    /// The path of an order's resource in this generation.
    pub fn order_path(&self, order_id: &str) -> String {
        match self {
            Generation::Classic => format!("/v2/eats/order/{order_id}"),
            Generation::V1 => format!("/v1/delivery/order/{order_id}"),
        }
    }
}

/// The `[channels.uber_eats]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UberEatsConfig {
    /// The API host, e.g. `https://api.uber.com` or the simulator's URL.
    pub base_url: String,
    /// The OAuth token endpoint.
    pub token_url: String,
    pub client_id: String,
    /// Space-separated OAuth scopes.
    pub scope: String,
    /// Timeout of one request to Uber, in seconds.
    pub timeout_secs: u64,
}

impl Default for UberEatsConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            client_id: DEV_CLIENT_ID.to_owned(),
            scope: DEFAULT_SCOPE.to_owned(),
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

/// The Uber Eats channel adapter. One instance serves every order, concurrently.
#[derive(Debug)]
pub struct UberEats {
    id: ChannelId,
    base_url: String,
    client_secret: SecretString,
    timeout: Duration,
    http: reqwest::Client,
    tokens: ClientCredentials,
}

impl UberEats {
    /// Builds the adapter; refuses unusable URLs or a zero timeout. (An empty secret never
    /// gets here: [`crossdock_channel::SecretSource`] treats it as missing.)
    pub fn new(
        config: UberEatsConfig,
        client_secret: SecretString,
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
        if config.timeout_secs == 0 {
            return Err(invalid("`timeout_secs` must be at least 1".to_owned()));
        }
        let tokens = ClientCredentials::new(
            http.clone(),
            config.token_url.clone(),
            config.client_id.clone(),
            client_secret.clone(),
            config.scope.clone(),
        );
        Ok(Self {
            id,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            client_secret,
            timeout: Duration::from_secs(config.timeout_secs),
            http,
            tokens,
        })
    }

    /// `POST {base_url}{path}` with a JSON body and the bearer token.
    async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ChannelError> {
        let url = format!("{}{}", self.base_url, path);
        self.authorized(|token| {
            self.http
                .post(&url)
                .bearer_auth(token)
                .json(body)
                .timeout(self.timeout)
        })
        .await
    }

    /// Sends a request built with a bearer token; on a 401 drops the token and tries
    /// once more with a fresh one.
    async fn authorized(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ChannelError> {
        let token = self.tokens.token().await?;
        match http::send(build(token.expose_secret())).await {
            Err(ChannelError::Platform { status: 401, .. }) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    "Uber answered 401; refreshing the OAuth token and retrying once."
                );
                self.tokens.invalidate().await;
                let token = self.tokens.token().await?;
                http::send(build(token.expose_secret())).await
            }
            other => other,
        }
    }
}

/// Where a notification's order lives: generation and order id, taken from the path of
/// `resource_href` only.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    generation: Generation,
    order_id: String,
    scheduled: bool,
}

/// An id fit to be a path segment: ASCII letters, digits, `-` and `_`.
fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn resolve(reference: &FetchRef) -> Result<Target, ChannelError> {
    let href = reference.resource.trim();
    let path = if href.starts_with('/') {
        let rest = href.split_once('#').map_or(href, |(rest, _)| rest);
        rest.split_once('?').map_or(rest, |(p, _)| p).to_owned()
    } else {
        let url = reqwest::Url::parse(href).map_err(|e| {
            ChannelError::Malformed(format!("resource_href `{}` is not a URL: {e}", clip(href)))
        })?;
        url.path().to_owned()
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (generation, order_id) = match segments.as_slice() {
        ["v2", "eats", "order", id] => (Generation::Classic, *id),
        ["v1", "delivery", "order", id] => (Generation::V1, *id),
        _ => {
            return Err(ChannelError::Malformed(format!(
                "resource_href path `{}` is neither /v2/eats/order/{{id}} nor /v1/delivery/order/{{id}}",
                clip(&path)
            )));
        }
    };
    if !is_safe_id(order_id) {
        return Err(ChannelError::Malformed(format!(
            "resource_href order id `{}` is not a valid Uber order id",
            clip(order_id)
        )));
    }
    if order_id != reference.external_order_id {
        return Err(ChannelError::Malformed(format!(
            "resource_href points at order `{order_id}` but the notification is for `{}`",
            clip(&reference.external_order_id)
        )));
    }
    Ok(Target {
        generation,
        order_id: order_id.to_owned(),
        scheduled: reference.scheduled,
    })
}

/// What a status action means on Uber.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// `POST {base_url}{path}` with `body`.
    Call {
        path: String,
        body: serde_json::Value,
    },
    NotApplicable(String),
}

/// The generation an order was fetched from (`channel_data.api`; absent means classic,
/// the generation of orders stored before the field existed).
fn generation_of(order: &NewOrder) -> Result<Generation, ChannelError> {
    match order.channel_data.get("api") {
        None | Some(serde_json::Value::Null) => Ok(Generation::Classic),
        Some(api) => Generation::deserialize(api)
            .map_err(|error| ChannelError::Malformed(format!("channel_data.api: {error}"))),
    }
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Uber's deny code for a free-text reason (classic `reason.code`, new `deny_reason.type`).
pub(crate) fn deny_code(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    if contains_any(&text, &["closed", "closing"]) {
        "STORE_CLOSED"
    } else if contains_any(&text, &["offline"]) {
        "POS_OFFLINE"
    } else if contains_any(&text, &["not ready", "pos not"]) {
        "POS_NOT_READY"
    } else if contains_any(&text, &["missing item"]) {
        "MISSING_ITEM"
    } else if contains_any(
        &text,
        &[
            "out of stock",
            "sold out",
            "unavailable",
            "availability",
            "out of",
            "unknown item",
        ],
    ) {
        "ITEM_AVAILABILITY"
    } else if contains_any(&text, &["price", "pricing"]) {
        "PRICING"
    } else if contains_any(&text, &["busy", "capacity", "overload"]) {
        "CAPACITY"
    } else if contains_any(&text, &["address", "zone", "too far", "distance"]) {
        "ADDRESS"
    } else if contains_any(&text, &["instruction", "note", "request"]) {
        "SPECIAL_INSTRUCTIONS"
    } else if contains_any(&text, &["missing info", "information"]) {
        "MISSING_INFO"
    } else {
        "OTHER"
    }
}

/// Uber's cancel reason for a free-text reason (classic `reason`, new
/// `cancellation_reason.type`).
pub(crate) fn cancel_code(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    if contains_any(
        &text,
        &["out of", "sold out", "stock", "unavailable", "no more"],
    ) {
        "OUT_OF_ITEMS"
    } else if contains_any(&text, &["closed", "closing", "kitchen"]) {
        "KITCHEN_CLOSED"
    } else if contains_any(&text, &["customer"]) {
        "CUSTOMER_CALLED_TO_CANCEL"
    } else if contains_any(&text, &["busy", "capacity", "overload"]) {
        "RESTAURANT_TOO_BUSY"
    } else if contains_any(&text, &["note", "instruction", "request"]) {
        "CANNOT_COMPLETE_CUSTOMER_NOTE"
    } else {
        "OTHER"
    }
}

fn to_value<T: Serialize>(body: &T) -> serde_json::Value {
    serde_json::to_value(body).unwrap_or(serde_json::Value::Null)
}

/// The deny call for order `id` on API `generation`: path and body.
fn deny_call(generation: Generation, id: &str, reason: &str) -> (String, serde_json::Value) {
    match generation {
        Generation::Classic => (
            format!("/v1/eats/orders/{id}/deny_pos_order"),
            to_value(&wire::DenyPosOrder {
                reason: wire::DenyReason {
                    explanation: reason.to_owned(),
                    code: deny_code(reason).to_owned(),
                },
            }),
        ),
        Generation::V1 => (
            format!("/v1/delivery/order/{id}/deny"),
            to_value(&wire::V1Deny {
                deny_reason: wire::V1DenyReason {
                    reason_type: deny_code(reason).to_owned(),
                    info: Some(reason.to_owned()),
                },
            }),
        ),
    }
}

/// Maps a status action of an order onto Uber's call. Pure, for tests: `now` fixes the
/// pickup time of an accept.
pub(crate) fn plan(order: &Order, change: &StatusChange) -> Result<Plan, ChannelError> {
    let action = &change.action;
    // Times Uber gets (pickup, ready) count from the change, not from when the push runs.
    let now = change.at;
    let generation = generation_of(&order.order)?;
    let id = order.order.external_order_id.as_str();
    if !is_safe_id(id) {
        return Err(ChannelError::Malformed(format!(
            "external order id `{id}` is not a valid Uber order id"
        )));
    }
    let merchant_delivery = order.order.fulfillment.kind == FulfillmentKind::Delivery
        && order.order.fulfillment.delivered_by == Some(DeliveredBy::Store);
    // `Fail` is a deny while the order was never accepted, a cancel afterwards.
    let accepted = matches!(
        change.from,
        Status::Accepted | Status::Preparing | Status::Ready | Status::PickedUp
    );
    let call = |path: String, body: serde_json::Value| Ok(Plan::Call { path, body });
    let not_applicable = |why: String| Ok(Plan::NotApplicable(why));

    match generation {
        Generation::Classic => {
            let base = format!("/v1/eats/orders/{id}");
            let deny = |reason: &str| {
                let (path, body) = deny_call(Generation::Classic, id, reason);
                call(path, body)
            };
            let cancel = |reason: &str| {
                call(
                    format!("{base}/cancel"),
                    to_value(&wire::CancelOrder {
                        reason: cancel_code(reason).to_owned(),
                        details: Some(reason.to_owned()),
                    }),
                )
            };
            match action {
                StatusAction::Accept { prep_minutes } => {
                    let pickup = now + TimeDelta::minutes(i64::from(*prep_minutes));
                    call(
                        format!("{base}/accept_pos_order"),
                        to_value(&wire::AcceptPosOrder {
                            reason: "accepted".to_owned(),
                            pickup_time: Some(pickup.timestamp()),
                            external_reference_id: Some(order.id.to_string()),
                        }),
                    )
                }
                StatusAction::Reject { reason } => deny(reason),
                StatusAction::Cancel { reason } => cancel(reason),
                StatusAction::Fail { reason } if accepted => cancel(reason),
                StatusAction::Fail { reason } => deny(reason),
                StatusAction::PickedUp | StatusAction::Delivered if merchant_delivery => {
                    let status = if *action == StatusAction::PickedUp {
                        "started"
                    } else {
                        "delivered"
                    };
                    call(
                        format!("{base}/restaurantdelivery/status"),
                        to_value(&wire::RestaurantDeliveryStatus {
                            status: status.to_owned(),
                        }),
                    )
                }
                StatusAction::PickedUp | StatusAction::Delivered => not_applicable(format!(
                    "Uber's classic API takes `{}` only for orders the store delivers",
                    action.target()
                )),
                StatusAction::Preparing | StatusAction::Ready | StatusAction::Complete => {
                    not_applicable(format!(
                        "Uber's classic API has no call for `{}`",
                        action.target()
                    ))
                }
            }
        }
        Generation::V1 => {
            let base = format!("/v1/delivery/order/{id}");
            let deny = |reason: &str| {
                let (path, body) = deny_call(Generation::V1, id, reason);
                call(path, body)
            };
            let cancel = |reason: &str| {
                call(
                    format!("{base}/cancel"),
                    to_value(&wire::V1Cancel {
                        cancellation_reason: wire::V1CancellationReason {
                            reason_type: cancel_code(reason).to_owned(),
                        },
                    }),
                )
            };
            match action {
                StatusAction::Accept { prep_minutes } => {
                    let ready = now + TimeDelta::minutes(i64::from(*prep_minutes));
                    call(
                        format!("{base}/accept"),
                        to_value(&wire::V1Accept {
                            ready_for_pickup_time: Some(
                                ready.to_rfc3339_opts(SecondsFormat::Secs, true),
                            ),
                        }),
                    )
                }
                StatusAction::Reject { reason } => deny(reason),
                StatusAction::Ready => call(format!("{base}/ready"), serde_json::json!({})),
                StatusAction::Cancel { reason } => cancel(reason),
                StatusAction::Fail { reason } if accepted => cancel(reason),
                StatusAction::Fail { reason } => deny(reason),
                StatusAction::Preparing
                | StatusAction::PickedUp
                | StatusAction::Delivered
                | StatusAction::Complete => not_applicable(format!(
                    "Uber's order API has no call for `{}`",
                    action.target()
                )),
            }
        }
    }
}

#[async_trait]
impl Channel for UberEats {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        let Some(provided) = request.headers.get(SIGNATURE_HEADER) else {
            return Err(ChannelError::Unauthorized(
                "missing X-Uber-Signature header".to_owned(),
            ));
        };
        // A value that is not text cannot match any hex signature.
        let provided = provided.to_str().unwrap_or_default();
        if verify_hmac_sha256_hex(
            self.client_secret.expose_secret().as_bytes(),
            &[&request.body],
            provided,
        ) {
            Ok(())
        } else {
            Err(ChannelError::Unauthorized(
                "X-Uber-Signature does not match the body".to_owned(),
            ))
        }
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let envelope: Envelope = serde_json::from_slice(&request.body)
            .map_err(|e| ChannelError::Malformed(format!("webhook envelope: {e}")))?;
        if envelope.event_id.trim().is_empty() {
            return Err(ChannelError::Malformed(
                "webhook envelope: `event_id` is empty".to_owned(),
            ));
        }
        let order_id = |envelope: &Envelope| {
            envelope
                .meta
                .as_ref()
                .map(|m| m.resource_id.trim().to_owned())
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    ChannelError::Malformed(format!(
                        "webhook envelope: `{}` needs `meta.resource_id`",
                        clip(&envelope.event_type)
                    ))
                })
        };
        let inbound = match envelope.event_type.as_str() {
            event @ ("orders.notification" | "orders.scheduled.notification") => {
                let external_order_id = order_id(&envelope)?;
                let href = envelope
                    .resource_href
                    .as_deref()
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| {
                        ChannelError::Malformed(format!(
                            "webhook envelope: `{event}` needs `resource_href`"
                        ))
                    })?;
                Inbound::Fetch(FetchRef {
                    external_order_id,
                    resource: href.to_owned(),
                    scheduled: event == "orders.scheduled.notification",
                })
            }
            "orders.cancel" | "orders.failure" => Inbound::Cancelled {
                external_order_id: order_id(&envelope)?,
                reason: None,
            },
            other => Inbound::Ignored {
                event: other.to_owned(),
            },
        };
        tracing::debug!(
            channel = CHANNEL_ID,
            event_id = %envelope.event_id,
            event_type = %envelope.event_type,
            "Uber webhook parsed."
        );
        Ok(Delivery {
            dedupe_key: envelope.event_id,
            inbound,
        })
    }

    // `reply`: the default, 200 with an empty body, is what Uber expects.

    async fn fetch(&self, reference: &FetchRef) -> Result<NewOrder, ChannelError> {
        let target = resolve(reference)?;
        let mut url = format!(
            "{}{}",
            self.base_url,
            target.generation.order_path(&target.order_id)
        );
        if target.generation == Generation::V1 {
            url.push_str("?expand=carts,deliveries,payment");
        }
        let response = self
            .authorized(|token| {
                self.http
                    .get(&url)
                    .bearer_auth(token)
                    .header("accept", "application/json")
                    .timeout(self.timeout)
            })
            .await?;
        let order = self.parse_fetched(reference, &http::body(response).await?)?;
        tracing::info!(
            channel = CHANNEL_ID,
            external_order_id = %order.external_order_id,
            api = target.generation.as_str(),
            store = order.channel_store_ref.as_deref().unwrap_or(""),
            lines = order.lines.len(),
            customer_phone = %order.customer.phone.as_deref().map(mask_phone).unwrap_or_default(),
            "Uber order fetched."
        );
        Ok(order)
    }

    fn parse_fetched(&self, reference: &FetchRef, body: &[u8]) -> Result<NewOrder, ChannelError> {
        let target = resolve(reference)?;
        let order = match target.generation {
            Generation::Classic => {
                let wire: wire::ClassicOrder = http::read_json(body, "classic order")?;
                convert::classic(&self.id, &wire, target.scheduled)?
            }
            Generation::V1 => {
                let wire: wire::V1OrderResponse = http::read_json(body, "order")?;
                convert::v1(&self.id, &wire, target.scheduled)?
            }
        };
        if order.external_order_id != target.order_id {
            return Err(ChannelError::Malformed(format!(
                "Uber answered order `{}` for `{}`",
                order.external_order_id, target.order_id
            )));
        }
        Ok(order)
    }

    /// Denies the order on Uber (`deny_pos_order`, or `/deny` on the new API): an order the
    /// hub cannot take is refused at once rather than left to Uber's 11.5-minute timeout.
    async fn refuse_notified(
        &self,
        reference: &FetchRef,
        reason: &str,
    ) -> Result<PushOutcome, ChannelError> {
        let target = resolve(reference)?;
        let (path, body) = deny_call(target.generation, &target.order_id, reason);
        let response = match self.post_json(&path, &body).await {
            Ok(response) => response,
            // The order is already finished on Uber (denied before, cancelled, timed out):
            // Uber waits for nothing more, which is all a refusal is for. So a repeat is safe.
            Err(ChannelError::Platform { status: 409, .. }) => {
                return Ok(PushOutcome::Delivered {
                    detail: format!(
                        "POST {path} answered 409: the order is already finished on Uber"
                    ),
                });
            }
            Err(error) => return Err(error),
        };
        let status = response.status().as_u16();
        tracing::info!(
            channel = CHANNEL_ID,
            external_order_id = %target.order_id,
            path = %path,
            status,
            "Unreadable order denied on Uber."
        );
        Ok(PushOutcome::Delivered {
            detail: format!("POST {path} answered {status}"),
        })
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let action = &change.action;
        let (path, body) = match plan(order, change)? {
            Plan::Call { path, body } => (path, body),
            Plan::NotApplicable(why) => return Ok(PushOutcome::NotApplicable { why }),
        };
        let result = self.post_json(&path, &body).await;
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                tracing::info!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %action.target(),
                    path = %path,
                    status,
                    "Status pushed to Uber."
                );
                Ok(PushOutcome::Delivered {
                    detail: format!("POST {path} answered {status}"),
                })
            }
            Err(error) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %action.target(),
                    path = %path,
                    error_type = error.kind(),
                    retryable = error.is_retryable(),
                    %error,
                    "Status push to Uber failed."
                );
                Err(error)
            }
        }
    }

    /// Uber allows a burst of 500 requests per 5 s per app; pushes take a fifth of it,
    /// leaving room for fetches and tokens.
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 100,
            burst: 100,
        }
    }
}

/// Builds [`UberEats`] from `[channels.uber_eats]` and the `client_secret` secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factory;

impl ChannelFactory for Factory {
    fn id(&self) -> &'static str {
        CHANNEL_ID
    }

    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[(CLIENT_SECRET, DEV_CLIENT_SECRET)]
    }

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError> {
        let config: UberEatsConfig = settings.options()?;
        let secret = settings.secret(CLIENT_SECRET)?;
        Ok(Arc::new(UberEats::new(
            config,
            secret,
            settings.http.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests;
