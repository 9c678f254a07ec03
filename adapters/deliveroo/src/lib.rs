//! Channel `deliveroo`: the Deliveroo Order API (full orders pushed by the Order Events
//! webhook, status written back with an OAuth client-credentials token), and its
//! simulator.
//!
//! # Documentation followed
//!
//! - Authentication (OAuth2 client credentials, 300-second tokens):
//!   <https://api-docs.deliveroo.com/v2.0/docs/authentication>
//! - Securing webhooks (HMAC-SHA256 over `guid + " " + body`, legacy `guid + " \n " + body`):
//!   <https://api-docs.deliveroo.com/v2.0/edit/securing-webhooks> and
//!   <https://developers.deliveroo.com/partner-api/webhook/validation>
//! - Order Events webhook, retries, "treat status_log as the truth":
//!   <https://api-docs.deliveroo.com/v2.0/docs/picking-api-webhook>
//! - Order fields: <https://api-docs.deliveroo.com/docs/fulfillment-types>,
//!   <https://api-docs.deliveroo.com/v2.0/docs/scheduled-orders>,
//!   <https://api-docs.deliveroo.com/v2.0/docs/remake-orders>,
//!   <https://api-docs.deliveroo.com/v2.0/docs/cash-on-delivery-orders>
//! - Accept / reject / confirm: <https://api-docs.deliveroo.com/reference/patch-order-1>
//! - Sync status: <https://api-docs.deliveroo.com/v2.0/reference/create-sync-status-1>
//! - Prep stages: <https://api-docs.deliveroo.com/docs/prep-stages-endpoint>
//! - Rider events: <https://api-docs.deliveroo.com/v2.0/reference/rider-events-webhook-1>
//!   and <https://api-docs.deliveroo.com/docs/signature-webhooks>
//! - CHANNELS.md §3 (Deliveroo), §8 (the unified model and status tables), §10 (the
//!   normalization rules, binding).
//!
//! # How an order flows
//!
//! 1. Deliveroo posts the whole order to `/webhooks/deliveroo` as
//!    `{"event": "order.new", "body": {"order": …}}` with `X-Deliveroo-Sequence-Guid` and
//!    `X-Deliveroo-Hmac-Sha256` = lower-case hex HMAC-SHA256(webhook secret,
//!    `guid + " " + raw body`); the legacy `guid + " \n " + body` is accepted too.
//!    [`Deliveroo`]'s `verify` checks it over the exact bytes, in constant time.
//! 2. `parse` turns it into [`Inbound::Order`]; the dedupe key is the sequence GUID. The
//!    order routes on `location_id`; money is `{fractional, currency_code}` (minor units,
//!    as sent); subtotal and total are `partner_order_subtotal` and `partner_order_total`.
//!    The hub answers 200 with an empty body (Deliveroo retries anything else).
//! 3. `order.status_update` (same URL) carries the order again with its `status_log`:
//!    `canceled` becomes [`Inbound::Cancelled`] (the store hears at once); see
//!    "Assumptions" for `rejected`; the rest are echoes and are ignored.
//! 4. Rider events (`rider.status_update`, at `/webhooks/deliveroo/rider`):
//!    `rider_in_transit` is progress "picked up", `delivered` progress "delivered".
//! 5. `push` writes store actions back (bearer token from `POST /oauth2/token`, cached
//!    until shortly before its 300 s run out, refreshed once on a 401):
//!
//! | hub action | Deliveroo calls |
//! |---|---|
//! | accept | `PATCH /order/v1/orders/{id}` `{"status":"accepted"}`, then `POST …/sync_status` `{"status":"succeeded","occurred_at"}` (not for tabletless sites), then for a scheduled order `PATCH {"status":"confirmed"}` |
//! | reject (and cancel or fail before acceptance) | `PATCH {"status":"rejected","reject_reason","notes"}`, `reject_reason` by keyword: `closing_early`, `busy`, `ingredient_unavailable`, else `other` |
//! | preparing | `POST …/prep_stage` `{"stage":"in_kitchen","occurred_at"}` |
//! | ready | `prep_stage` `ready_for_collection` |
//! | picked up | `prep_stage` `collected` |
//! | delivered, complete, cancel or fail after acceptance | not applicable: Deliveroo has no such call |
//!
//! A 409 answer means "already done, or no longer open" (Deliveroo: "already done or
//! timed out"; a second `sync_status` is a 409): the push counts as delivered, with the
//! 409 in its detail, so a retried push is a no-op. Should the order have been
//! auto-rejected or canceled instead, the `order.status_update` that Deliveroo sends for
//! it brings the hub the truth. 429 and 5xx (and timeouts) are retryable, other 4xx are
//! permanent.
//!
//! # Layout
//!
//! - this file: [`Deliveroo`] (the [`Channel`]), [`DeliverooConfig`], [`Factory`], the
//!   signer ([`sign`], [`sign_legacy`]) and push planning;
//! - `wire`: serde types mirroring Deliveroo's JSON (never leave the crate);
//! - `convert`: wire → [`NewOrder`] and status and rider events → [`Inbound`]; the only
//!   place money is converted;
//! - [`simulator`]: [`simulator::DeliverooSim`], an HTTP server behaving like Deliveroo.
//!
//! # Configuration (`[channels.deliveroo]`)
//!
//! | option | default |
//! |---|---|
//! | `base_url` | `https://api.developers.deliveroo.com` (sandbox: `https://api-sandbox.developers.deliveroo.com`) |
//! | `token_url` | `https://auth.developers.deliveroo.com/oauth2/token` (sandbox: `https://auth-sandbox.developers.deliveroo.com/oauth2/token`) |
//! | `client_id` | [`DEV_CLIENT_ID`] |
//! | `timeout_secs` | 10 (per request to Deliveroo) |
//!
//! Secrets: `client_secret` (the API client's, `CROSSDOCK_SECRET_DELIVEROO_CLIENT_SECRET`)
//! and `webhook_secret` (a separate secret Deliveroo gives for webhooks,
//! `CROSSDOCK_SECRET_DELIVEROO_WEBHOOK_SECRET`). In development mode they default to
//! [`DEV_CLIENT_SECRET`] and [`DEV_WEBHOOK_SECRET`], which the simulator uses.
//!
//! # Assumptions
//!
//! Where CHANNELS.md marks an item [2nd], lists it as an open question (§9), or is silent:
//!
//! - **`rejected` in an `order.status_update` cancels the order in the hub.** The brief
//!   calls `rejected` an echo to ignore; it is one when the hub rejected (the hub then
//!   ignores the cancellation of a final order), but it is also how Deliveroo reports its
//!   own auto-rejection of an ASAP order not accepted within 10 minutes (7 in Kuwait and the
//!   UAE). Cancelling covers both, and makes "a 409 on accept counts as done" safe.
//!   `accepted`, `confirmed`, `placed` and `pending` are ignored
//!   (`order.status_update:{status}`), including an acceptance made on the Deliveroo
//!   tablet rather than through the hub.
//! - `canceled` anywhere in the status log wins (it is final); otherwise the latest entry
//!   by `at` is the status, whatever order the events arrive in.
//! - The sequence GUID is the same on Deliveroo's retries of one event (it is the dedupe
//!   key).
//! - Signatures must be lower-case hex, as the documentation computes them; upper case is
//!   refused with a message saying so.
//! - Rider events: only `rider_in_transit` (picked up) and `delivered` (the Signature API's
//!   terminal status, not documented for order-API rider events) mean anything; the
//!   furthest stage of any rider counts. Other statuses are ignored.
//! - The `delivery` object of restaurant fulfilment (`line1`, `line2`, `city`, `postcode`,
//!   `location{latitude, longitude}`, `delivery_notes`, `delivery_fee`, `customer_name`,
//!   `contact_number`, `contact_access_code`) is taken from integrators' public models;
//!   the country is the order id's market (`gb:` → `GB`).
//! - An item's `total_price` includes its modifiers × quantity; a modifier's quantity is
//!   per unit of its parent. Deliveroo sends no line id (`channel_item_id` is the
//!   `pos_item_id`, or `line-{n}` when that is null), no modifier group name, no item
//!   notes and no "removed" flag.
//! - Money: without `partner_order_subtotal` the subtotal is `subtotal`, else Σ line
//!   totals; without `partner_order_total` the total is `total_price`. `offer_discount`
//!   is one discount of unknown funder; `bag_fee` is packaging, `surcharge` the
//!   small-order fee, `fee_breakdown[]` amounts go to "other", the restaurant-fulfilment
//!   `delivery.delivery_fee` is the delivery fee. Deliveroo sends partners no tip and no
//!   tax (prices include VAT). `promotions[]`, `meal_cards[]` and items'
//!   `discount_amount` are not read.
//! - `cash_due` above zero: cash on delivery for deliveries, pay at store otherwise.
//! - `placed_at` is the `placed` entry of the status log (else its first entry).
//!   `accept_by` is placed + 10 minutes (7 for `kw:` and `ae:` orders) for ASAP orders
//!   and `confirm_at` for scheduled ones.
//! - `cutlery_notes` and `table_number` have no field in the unified order: they are kept
//!   in `channel_data` with `market`, `order_number`, `tabletless` and `remake`.
//! - **Scheduled orders are confirmed at acceptance**: the accept push sends `accepted`
//!   and then `confirmed`. The hub has no separate "release" action, the store's accept
//!   is its commitment to make the order, and the hub's `accept_by` for a scheduled order
//!   is `confirm_at`, so confirming then is always in time. (Waiting for "preparing" was
//!   rejected: a store may skip it, and an unconfirmed order fails at `confirm_at`.)
//! - `sync_status succeeded` is sent right after the acceptance (the hub holds the order),
//!   except for orders with `is_tabletless: true`.
//! - A prep stage older than an hour (a replayed push) is not applicable: Deliveroo
//!   refuses `occurred_at` more than an hour in the past.
//! - Cancel or fail before acceptance is a rejection (`reject_reason` by keyword); after
//!   it Deliveroo has no API (tablet or support only).
//! - `complete` is not pushed: `collected` (picked up) is the last stage a site reports.
//! - Push rate: Deliveroo documents per-order limits only (PATCH 5/min, sync_status
//!   1/10 s), which one order's pushes stay under; the channel-wide rate is 20/s, burst
//!   40, the adapter's choice.
//! - Webhook URL events: `/webhooks/deliveroo` (order events) and
//!   `/webhooks/deliveroo/rider` (rider events); both accept either event kind (Deliveroo
//!   lets a partner register one URL for both); any other path segment is refused.

pub mod simulator;

mod convert;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use crossdock_channel::oauth::ClientCredentials;
use crossdock_channel::signature::{constant_time_eq, hmac_sha256_hex};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, Inbound,
    InboundRequest, Method, Outcome, PushOutcome, RateLimit, Reply, StatusCode, clip, http,
};
use crossdock_model::{ChannelId, Order, Status, StatusAction, StatusChange, Timing, mask_phone};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The channel id, as in `/webhooks/deliveroo` and `[channels.deliveroo]`.
pub const CHANNEL_ID: &str = "deliveroo";
/// The development client id; the simulator accepts it.
pub const DEV_CLIENT_ID: &str = "crossdock-dev-deliveroo";
/// The development API client secret; the simulator accepts it. Development mode only.
pub const DEV_CLIENT_SECRET: &str = "dev-deliveroo-client-secret-not-for-production";
/// The development webhook secret; the simulator signs with it. Development mode only.
pub const DEV_WEBHOOK_SECRET: &str = "dev-deliveroo-webhook-secret-not-for-production";
pub const DEFAULT_BASE_URL: &str = "https://api.developers.deliveroo.com";
pub const DEFAULT_TOKEN_URL: &str = "https://auth.developers.deliveroo.com/oauth2/token";
/// The event's sequence GUID: part of what is signed, and the dedupe key.
pub const GUID_HEADER: &str = "x-deliveroo-sequence-guid";
/// The webhook signature.
pub const SIGNATURE_HEADER: &str = "x-deliveroo-hmac-sha256";
/// `event/order.new`, `event/order.status_update`, `event/rider.status_update`.
pub const PAYLOAD_TYPE_HEADER: &str = "x-deliveroo-payload-type";
pub const WEBHOOK_VERSION_HEADER: &str = "x-deliveroo-webhook-version";
/// The path segment of the rider events webhook: `/webhooks/deliveroo/rider`.
pub const RIDER_EVENTS: &str = "rider";
/// The secret names (`CROSSDOCK_SECRET_DELIVEROO_CLIENT_SECRET`, `…_WEBHOOK_SECRET`).
const CLIENT_SECRET: &str = "client_secret";
const WEBHOOK_SECRET: &str = "webhook_secret";
/// Deliveroo refuses prep stages whose `occurred_at` is more than an hour old.
const PREP_STAGE_MAX_AGE: TimeDelta = TimeDelta::minutes(60);

/// The signature Deliveroo sends: lower-case hex HMAC-SHA256(webhook secret,
/// `guid + " " + body`).
pub fn sign(webhook_secret: &[u8], guid: &str, body: &[u8]) -> String {
    hmac_sha256_hex(webhook_secret, &[guid.as_bytes(), b" ", body])
}

/// The legacy POS webhooks' signature: HMAC-SHA256 over `guid + " \n " + body`.
pub fn sign_legacy(webhook_secret: &[u8], guid: &str, body: &[u8]) -> String {
    hmac_sha256_hex(webhook_secret, &[guid.as_bytes(), b" \n ", body])
}

/// The `[channels.deliveroo]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverooConfig {
    /// The Order API host, e.g. `https://api.developers.deliveroo.com` or the simulator.
    pub base_url: String,
    /// The OAuth token endpoint.
    pub token_url: String,
    pub client_id: String,
    /// Timeout of one request to Deliveroo, in seconds.
    pub timeout_secs: u64,
}

impl Default for DeliverooConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            client_id: DEV_CLIENT_ID.to_owned(),
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

/// The Deliveroo channel adapter. One instance serves every order, concurrently.
#[derive(Debug)]
pub struct Deliveroo {
    id: ChannelId,
    base_url: String,
    webhook_secret: SecretString,
    timeout: Duration,
    http: reqwest::Client,
    tokens: ClientCredentials,
}

impl Deliveroo {
    /// Builds the adapter; refuses unusable URLs or a zero timeout. (Empty secrets never
    /// get here: [`crossdock_channel::SecretSource`] treats them as missing.)
    pub fn new(
        config: DeliverooConfig,
        client_secret: SecretString,
        webhook_secret: SecretString,
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
        if config.client_id.trim().is_empty() {
            return Err(invalid("`client_id` must not be empty".to_owned()));
        }
        // Deliveroo's token endpoint takes no scope; the shared client sends an empty one.
        let tokens = ClientCredentials::new(
            http.clone(),
            config.token_url.clone(),
            config.client_id.clone(),
            client_secret,
            String::new(),
        );
        Ok(Self {
            id,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            webhook_secret,
            timeout: Duration::from_secs(config.timeout_secs),
            http,
            tokens,
        })
    }

    /// Sends one write-back with the bearer token; on a 401 drops the token and tries once
    /// more with a fresh one. Returns the answer's status.
    async fn call(&self, call: &Call, order_id: &str) -> Result<u16, ChannelError> {
        let (method, path) = call.endpoint(order_id);
        let url = format!("{}{}", self.base_url, path);
        let body = call.body();
        let build = |token: &str| {
            self.http
                .request(method.clone(), &url)
                .bearer_auth(token)
                .json(&body)
                .timeout(self.timeout)
        };
        let token = self.tokens.token().await?;
        let response = match http::send(build(token.expose_secret())).await {
            Err(ChannelError::Platform { status: 401, .. }) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    "Deliveroo answered 401; refreshing the OAuth token and retrying once."
                );
                self.tokens.invalidate().await;
                let token = self.tokens.token().await?;
                http::send(build(token.expose_secret())).await
            }
            other => other,
        }?;
        Ok(response.status().as_u16())
    }
}

/// Reads `value` as `T`, naming the JSON path of what does not fit
/// (`body.order.items[1].unit_price`).
fn read<T: DeserializeOwned>(value: serde_json::Value, root: &str) -> Result<T, ChannelError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." {
            root.to_owned()
        } else {
            format!("{root}.{path}")
        };
        ChannelError::Malformed(format!("{at}: {}", error.inner()))
    })
}

/// A header's value as text; a value that is not text counts as absent.
fn header<'a>(request: &'a InboundRequest, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------------------------------
// Push planning
// ---------------------------------------------------------------------------------------

/// One write-back call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// `PATCH /order/v1/orders/{id}`.
    Patch(wire::PatchOrder),
    /// `POST /order/v1/orders/{id}/sync_status`.
    SyncStatus(wire::SyncStatus),
    /// `POST /order/v1/orders/{id}/prep_stage`.
    PrepStage(wire::PrepStage),
}

impl Call {
    pub(crate) fn endpoint(&self, order_id: &str) -> (Method, String) {
        let base = format!("/order/v1/orders/{order_id}");
        match self {
            Call::Patch(_) => (Method::PATCH, base),
            Call::SyncStatus(_) => (Method::POST, format!("{base}/sync_status")),
            Call::PrepStage(_) => (Method::POST, format!("{base}/prep_stage")),
        }
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        let value = match self {
            Call::Patch(body) => serde_json::to_value(body),
            Call::SyncStatus(body) => serde_json::to_value(body),
            Call::PrepStage(body) => serde_json::to_value(body),
        };
        // These bodies are plain structs of strings: they always serialize.
        value.unwrap_or_default()
    }

    /// `accepted`, `sync_status succeeded`, `prep_stage in_kitchen`… for the push's detail.
    fn what(&self) -> String {
        match self {
            Call::Patch(body) => body.status.clone(),
            Call::SyncStatus(body) => format!("sync_status {}", body.status),
            Call::PrepStage(body) => format!("prep_stage {}", body.stage),
        }
    }
}

/// What a status action means on Deliveroo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// These calls, in order.
    Calls(Vec<Call>),
    NotApplicable(String),
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// Deliveroo's `reject_reason` for a free-text reason.
pub(crate) fn reject_reason(reason: &str) -> &'static str {
    let text = reason.to_lowercase();
    if contains_any(&text, &["closing", "closed", "close early", "shutting"]) {
        "closing_early"
    } else if contains_any(
        &text,
        &[
            "busy",
            "capacity",
            "overload",
            "too many",
            "rush",
            "no staff",
            "short-staffed",
        ],
    ) {
        "busy"
    } else if contains_any(
        &text,
        &[
            "out of",
            "sold out",
            "stock",
            "unavailable",
            "ingredient",
            "ran out",
            "run out",
            "no more",
            "unknown item",
        ],
    ) {
        "ingredient_unavailable"
    } else {
        "other"
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Whether `channel_data` says the site has no Deliveroo tablet (`sync_status` is then
/// not needed).
fn tabletless(order: &Order) -> bool {
    order
        .order
        .channel_data
        .get("tabletless")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Maps a status change onto Deliveroo's calls. Pure, for tests: `now` is only used to
/// tell a prep stage too old for Deliveroo; every time sent is the change's.
pub(crate) fn plan(
    order: &Order,
    change: &StatusChange,
    now: DateTime<Utc>,
) -> Result<Plan, ChannelError> {
    let id = order.order.external_order_id.as_str();
    if !convert::is_safe_id(id) {
        return Err(ChannelError::Malformed(format!(
            "external order id `{}` is not a Deliveroo order id",
            clip(id)
        )));
    }
    let at = rfc3339(change.at);
    let scheduled = matches!(order.order.fulfillment.timing, Timing::Scheduled { .. });
    let accepted_before = matches!(
        change.from,
        Status::Accepted | Status::Preparing | Status::Ready | Status::PickedUp
    );
    let reject = |reason: &str| {
        let notes = reason.trim();
        Plan::Calls(vec![Call::Patch(wire::PatchOrder {
            status: "rejected".to_owned(),
            reject_reason: Some(reject_reason(reason).to_owned()),
            notes: (!notes.is_empty()).then(|| notes.chars().take(250).collect()),
        })])
    };
    let prep_stage = |stage: &str| {
        if now - change.at > PREP_STAGE_MAX_AGE {
            return Plan::NotApplicable(format!(
                "Deliveroo takes prep stages up to an hour after they happen; `{stage}` \
                 happened at {at}"
            ));
        }
        Plan::Calls(vec![Call::PrepStage(wire::PrepStage {
            stage: stage.to_owned(),
            occurred_at: at.clone(),
            delay: None,
        })])
    };
    Ok(match &change.action {
        StatusAction::Accept { .. } => {
            let mut calls = vec![Call::Patch(wire::PatchOrder {
                status: "accepted".to_owned(),
                reject_reason: None,
                notes: None,
            })];
            if !tabletless(order) {
                calls.push(Call::SyncStatus(wire::SyncStatus {
                    status: "succeeded".to_owned(),
                    reason: None,
                    notes: None,
                    occurred_at: at.clone(),
                }));
            }
            if scheduled {
                calls.push(Call::Patch(wire::PatchOrder {
                    status: "confirmed".to_owned(),
                    reject_reason: None,
                    notes: None,
                }));
            }
            Plan::Calls(calls)
        }
        StatusAction::Reject { reason } => reject(reason),
        StatusAction::Cancel { reason } | StatusAction::Fail { reason } if !accepted_before => {
            reject(reason)
        }
        StatusAction::Cancel { .. } | StatusAction::Fail { .. } => Plan::NotApplicable(
            "Deliveroo has no API to cancel an accepted order; cancel it on the Deliveroo \
             tablet or through Deliveroo support"
                .to_owned(),
        ),
        StatusAction::Preparing => prep_stage("in_kitchen"),
        StatusAction::Ready => prep_stage("ready_for_collection"),
        StatusAction::PickedUp => prep_stage("collected"),
        StatusAction::Delivered => Plan::NotApplicable(
            "Deliveroo has no call for `delivered`: a site's last stage is `collected`".to_owned(),
        ),
        StatusAction::Complete => Plan::NotApplicable(
            "Deliveroo has no call for `completed`: a site's last stage is `collected`".to_owned(),
        ),
    })
}

// ---------------------------------------------------------------------------------------
// The channel
// ---------------------------------------------------------------------------------------

#[async_trait]
impl Channel for Deliveroo {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        let Some(guid) = header(request, GUID_HEADER).filter(|g| !g.is_empty()) else {
            return Err(ChannelError::Unauthorized(
                "missing X-Deliveroo-Sequence-Guid header".to_owned(),
            ));
        };
        let Some(provided) = request.headers.get(SIGNATURE_HEADER) else {
            return Err(ChannelError::Unauthorized(
                "missing X-Deliveroo-Hmac-Sha256 header".to_owned(),
            ));
        };
        // A value that is not text cannot match any hex signature. Exact bytes: the guid
        // and the signature are compared as sent, never trimmed.
        let provided = provided.to_str().unwrap_or_default().as_bytes();
        let key = self.webhook_secret.expose_secret().as_bytes();
        let current = sign(key, guid, &request.body);
        let legacy = sign_legacy(key, guid, &request.body);
        // Both are computed and compared whatever the first answer, so the time taken
        // does not tell which scheme matched.
        let matches_current = constant_time_eq(provided, current.as_bytes());
        let matches_legacy = constant_time_eq(provided, legacy.as_bytes());
        if matches_current || matches_legacy {
            return Ok(());
        }
        let lowered = provided.to_ascii_lowercase();
        if lowered != provided
            && (constant_time_eq(&lowered, current.as_bytes())
                || constant_time_eq(&lowered, legacy.as_bytes()))
        {
            return Err(ChannelError::Unauthorized(
                "X-Deliveroo-Hmac-Sha256 must be lower-case hex".to_owned(),
            ));
        }
        Err(ChannelError::Unauthorized(
            "X-Deliveroo-Hmac-Sha256 does not match the sequence GUID and body".to_owned(),
        ))
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        match request.event.as_deref() {
            None | Some(RIDER_EVENTS) => {}
            Some(other) => {
                return Err(ChannelError::Malformed(format!(
                    "no Deliveroo webhook at /webhooks/{CHANNEL_ID}/{}: order events go to \
                     /webhooks/{CHANNEL_ID}, rider events to /webhooks/{CHANNEL_ID}/{RIDER_EVENTS}",
                    clip(other)
                )));
            }
        }
        let guid = header(request, GUID_HEADER)
            .filter(|g| !g.trim().is_empty())
            .ok_or_else(|| {
                ChannelError::Malformed(
                    "missing X-Deliveroo-Sequence-Guid header (the event's dedupe key)".to_owned(),
                )
            })?;
        let value: serde_json::Value = serde_json::from_slice(&request.body)
            .map_err(|e| ChannelError::Malformed(format!("webhook body is not JSON: {e}")))?;
        let envelope: wire::Envelope = read(value, "webhook body")?;
        let event = envelope.event.trim();
        if let Some(payload_type) = header(request, PAYLOAD_TYPE_HEADER) {
            let named = payload_type.trim();
            let named = named
                .get(..6)
                .filter(|prefix| prefix.eq_ignore_ascii_case("event/"))
                .map_or(named, |_| &named[6..]);
            if !named.eq_ignore_ascii_case(event) {
                return Err(ChannelError::Malformed(format!(
                    "X-Deliveroo-Payload-Type `{}` does not match the body's event `{}`",
                    clip(payload_type),
                    clip(event)
                )));
            }
        }
        let inbound = match event {
            "order.new" => {
                let body: wire::OrderEventBody = read(envelope.body, "body")?;
                let order = convert::order(&self.id, &body.order, request.received_at)?;
                tracing::debug!(
                    channel = CHANNEL_ID,
                    guid,
                    external_order_id = %order.external_order_id,
                    location_id = order.channel_store_ref.as_deref().unwrap_or_default(),
                    lines = order.lines.len(),
                    customer_phone = %order.customer.phone.as_deref().map(mask_phone).unwrap_or_default(),
                    "Deliveroo order parsed."
                );
                Inbound::Order(Box::new(order))
            }
            "order.status_update" => {
                let body: wire::StatusEventBody = read(envelope.body, "body")?;
                convert::status_event(&body.order)?
            }
            "rider.status_update" => {
                let body: wire::RiderEventBody = read(envelope.body, "body")?;
                convert::rider_event(&body)?
            }
            other => Inbound::Ignored { event: clip(other) },
        };
        if !matches!(inbound, Inbound::Order(_)) {
            tracing::debug!(channel = CHANNEL_ID, guid, event, inbound = ?inbound, "Deliveroo event parsed.");
        }
        Ok(Delivery {
            dedupe_key: guid.to_owned(),
            inbound,
        })
    }

    /// Deliveroo wants any 2xx; it retries everything else with backoff. A stored (or
    /// already stored) event is 200 with an empty body; a refusal is the hub's JSON error
    /// with its 4xx status.
    fn reply(&self, _request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        match outcome {
            Outcome::Accepted { .. }
            | Outcome::Quoted {
                verdict: Ok(()), ..
            } => Reply::empty(StatusCode::OK),
            Outcome::Quoted {
                verdict: Err(why), ..
            } => Reply::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &serde_json::json!({ "error": "unservable", "message": why.to_string() }),
            ),
            Outcome::Refused(error) => Reply::refusal(error),
        }
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let calls = match plan(order, change, Utc::now())? {
            Plan::Calls(calls) => calls,
            Plan::NotApplicable(why) => return Ok(PushOutcome::NotApplicable { why }),
        };
        let external = order.order.external_order_id.as_str();
        let mut details = Vec::with_capacity(calls.len());
        for call in &calls {
            let (method, path) = call.endpoint(external);
            match self.call(call, external).await {
                Ok(status) => {
                    tracing::info!(
                        channel = CHANNEL_ID,
                        order_id = %order.id,
                        external_order_id = %external,
                        action = %change.action.target(),
                        call = %call.what(),
                        status,
                        "Status pushed to Deliveroo."
                    );
                    details.push(format!("{method} {path} {} answered {status}", call.what()));
                }
                Err(ChannelError::Platform { status: 409, body }) => {
                    tracing::warn!(
                        channel = CHANNEL_ID,
                        order_id = %order.id,
                        external_order_id = %external,
                        action = %change.action.target(),
                        call = %call.what(),
                        answer = %clip(&body),
                        "Deliveroo answered 409: already done, or the order is no longer open."
                    );
                    details.push(format!(
                        "{method} {path} {} answered 409 (already done, or no longer open on Deliveroo)",
                        call.what()
                    ));
                }
                Err(error) => {
                    tracing::warn!(
                        channel = CHANNEL_ID,
                        order_id = %order.id,
                        external_order_id = %external,
                        action = %change.action.target(),
                        call = %call.what(),
                        error_type = error.kind(),
                        retryable = error.is_retryable(),
                        %error,
                        "Status push to Deliveroo failed."
                    );
                    return Err(error);
                }
            }
        }
        Ok(PushOutcome::Delivered {
            detail: details.join("; "),
        })
    }

    /// Deliveroo documents per-order limits only (PATCH 5/min, sync_status 1/10 s); the
    /// channel-wide rate is the adapter's choice.
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 20,
            burst: 40,
        }
    }
}

/// Builds [`Deliveroo`] from `[channels.deliveroo]` and the `client_secret` and
/// `webhook_secret` secrets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factory;

impl ChannelFactory for Factory {
    fn id(&self) -> &'static str {
        CHANNEL_ID
    }

    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (CLIENT_SECRET, DEV_CLIENT_SECRET),
            (WEBHOOK_SECRET, DEV_WEBHOOK_SECRET),
        ]
    }

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError> {
        let config: DeliverooConfig = settings.options()?;
        let client_secret = settings.secret(CLIENT_SECRET)?;
        let webhook_secret = settings.secret(WEBHOOK_SECRET)?;
        Ok(Arc::new(Deliveroo::new(
            config,
            client_secret,
            webhook_secret,
            settings.http.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests;
