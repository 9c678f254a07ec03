//! Channel `own_app`: the chain's own app and WeChat mini-program, and a simulator of its
//! backend.
//!
//! Unlike the marketplaces, this channel speaks **our own** order API, defined here. The app
//! backend sends each order to the hub as one signed JSON request; the hub sends every status
//! change back to a callback URL the order names, signed the same way.
//!
//! # Layout
//!
//! - this file: [`OwnApp`] (the [`Channel`]), [`Factory`] (the [`ChannelFactory`]),
//!   [`OwnAppConfig`], and the signing helpers [`sign`], [`signed_headers`] and
//!   [`verify_signed`], which the app backend and the simulator use too.
//! - `wire`: the serde types of the API. Private: they never leave the crate.
//! - `convert`: wire order → [`NewOrder`]; hub action → status callback.
//! - [`simulator`]: [`simulator::OwnAppSim`], an HTTP server that plays the app backend.
//!
//! # The own_app order API
//!
//! ## Transport
//!
//! `POST {hub}/webhooks/own_app`, `Content-Type: application/json`, UTF-8, one event per
//! request. Unknown fields are ignored, so the app may send fields the hub does not know yet.
//!
//! ## Authentication (both directions)
//!
//! | header | value |
//! |---|---|
//! | `X-Crossdock-Timestamp` | the time of signing, unix seconds (`1763935512`) |
//! | `X-Crossdock-Signature` | lower-case hex HMAC-SHA256(`signing_secret`, timestamp + `"."` + raw body) |
//!
//! The signature covers the exact bytes sent: sign the body you send, never a re-encoding,
//! and the timestamp header's exact text. The hub compares in constant time and accepts
//! either case of hex. It refuses with **401** and error `unauthorized` when a header is
//! missing (the message names it), the timestamp is not an integer, or the signature does not
//! match; and with **401** and error `stale` when the timestamp is more than
//! `replay_window_s` (default 300) seconds away from the hub's clock, in either direction.
//! Inside the window a replayed request is harmless: the hub deduplicates on `event_id`.
//!
//! ## Events
//!
//! ### `order.created`
//!
//! `{"event": "order.created", "event_id": "…", "order": {…}}`. `event_id` is unique per
//! event (the dedupe key): a retry of the same event must carry the same `event_id`.
//! The order (`?` marks an optional field; money is **integer minor units** of `currency`,
//! and a fractional value is refused):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `id` | string | the app's order id; used in every status callback |
//! | `code` | string | short code shown to staff and the customer |
//! | `brand` | string | the chain's brand id (`crossdock-pizza`) |
//! | `placed_at` | RFC 3339 | when the customer placed the order |
//! | `fulfillment` | `delivery` \| `pickup` \| `dine_in` | |
//! | `store_id` | string? | our store code (`NYC-001`). **Required** for `pickup` and `dine_in`. For `delivery`, leave it out and the hub picks the store whose zone holds the drop-off point; if given, the order goes to that store |
//! | `scheduled_for` | RFC 3339? | wanted time of a scheduled order; absent = as soon as possible |
//! | `customer` | `{name, phone?}` | as staff should see it |
//! | `delivery` | object? | **required** for `delivery`; ignored otherwise |
//! | `delivery.address` | `{lines[], city, postcode?, country}` | `country` as ISO 3166-1 alpha-2; `postcode` may be left out where a country has none |
//! | `delivery.location` | `{lat, lng}` | the drop-off point, WGS84 degrees; a latitude outside -90..90 or a longitude outside -180..180 is refused (`unacceptable_order`) |
//! | `delivery.instructions` | string? | for the courier |
//! | `items[]` | array | at least one, in the order the customer sees them |
//! | `items[].sku` | string | the chain's PLU (`PZ-MARG-L`) |
//! | `items[].name`, `quantity`, `unit_price` | string, integer ≥ 1, integer | `unit_price` is one unit *without* modifiers |
//! | `items[].notes` | string? | special instructions for this item |
//! | `items[].modifiers[]` | array? | `{group?, name, sku?, quantity, unit_price, removed?, modifiers[]?}`; recursive; `quantity` is per one unit of the parent; `removed: true` marks a default ingredient taken off (its quantity may be 0) |
//! | `currency` | string | ISO 4217 (`USD`, `GBP`, `CNY`) |
//! | `amounts` | object | `{subtotal, discount, delivery_fee, service_fee, tip, tax, tax_included?, total}`, all integers ≥ 0; `subtotal` = items with modifiers before the discount; `total` = what the customer pays = subtotal − discount + tax (unless `tax_included`) + fees + tip. The hub keeps the figures as sent and flags an order whose figures do not add up |
//! | `payment` | `prepaid` \| `cash` \| `pay_at_store` | `cash`: collect `total` on delivery |
//! | `notes` | string? | order-level note for the kitchen |
//! | `callback_url` | string | absolute `http`/`https` URL the hub sends status callbacks to |
//!
//! ### `order.cancelled`
//!
//! `{"event": "order.cancelled", "event_id": "…", "order_id": "<the app's order id>",
//! "reason": "…"}` (`reason` optional). The customer or the app cancelled; the store is told at
//! once. A cancellation of an order the hub has not seen yet is kept, so a late
//! `order.created` does not bring the order back.
//!
//! Any other `event` is refused as malformed.
//!
//! ## Replies
//!
//! | status | body | when |
//! |---|---|---|
//! | 202 | `{"order_id": "<hub order id or null>", "status": "received", "duplicate": false}` | stored; the app may stop retrying |
//! | 202 | the same with `"duplicate": true` | the same `event_id` (or order) was already stored; nothing changed |
//! | 400 | `{"error": "malformed", "message": "order.items[0].unit_price: invalid type: floating point `18.99`, expected i64 …"}` | the body does not parse; the message names the field |
//! | 400 | `{"error": "unacceptable_order", "message": "…"}` | a well-formed order the hub cannot take (no items, quantity 0, coordinates out of range, …) |
//! | 401 | `{"error": "unauthorized" \| "stale", "message": "…"}` | see Authentication |
//!
//! A 4xx is final: fix the request, do not retry it as is. On a 5xx or no answer, retry with
//! the same bytes, or re-sign the same body with a new timestamp; the `event_id` makes it safe.
//!
//! ## Status callbacks (hub → app)
//!
//! For every status change of an own_app order the hub sends
//! `POST <callback_url>`, `Content-Type: application/json`, signed with the same two headers
//! and the same secret (so the app verifies the hub as the hub verifies the app):
//!
//! ```json
//! {"event": "order.status", "order_id": "OA20251123-3F9A1C2B7D40", "hub_order_id": "019aad3e-…",
//!  "status": "accepted", "prep_minutes": 15, "at": "2025-11-23T22:05:20Z"}
//! ```
//!
//! `at` is when the status changed in the hub (a retried callback keeps it). `status` is one
//! of `accepted`, `rejected`, `preparing`, `ready`, `picked_up`, `delivered`,
//! `completed`, `cancelled`, `failed`. `prep_minutes` comes with `accepted`; `reason` comes
//! with `rejected`, `cancelled` and `failed`. The app answers any 2xx. On 429 (with
//! `Retry-After` seconds), 5xx or a timeout (10 s) the hub retries with backoff; other 4xx
//! answers are final. A callback may arrive more than once: treat (`order_id`, `status`) as
//! idempotent. Callbacks of one order are sent in order.
//!
//! ## Example
//!
//! ```text
//! POST /webhooks/own_app HTTP/1.1
//! Content-Type: application/json
//! X-Crossdock-Timestamp: 1763935512
//! X-Crossdock-Signature: <hex HMAC-SHA256(secret, "1763935512." + body)>
//!
//! {"event": "order.created", "event_id": "evt_0001", "order": {
//!   "id": "OA20251123-0001", "code": "K7Q2", "brand": "crossdock-pizza",
//!   "placed_at": "2025-11-23T17:05:12-05:00", "fulfillment": "pickup", "store_id": "NYC-001",
//!   "customer": {"name": "Maya R.", "phone": "+1 212 555 0142"},
//!   "items": [{"sku": "PZ-MARG-L", "name": "Margherita (Large)", "quantity": 1, "unit_price": 1899,
//!              "modifiers": [{"group": "Crust", "name": "Thin crust", "sku": "MOD-CRUST-THIN",
//!                             "quantity": 1, "unit_price": 0}]}],
//!   "currency": "USD",
//!   "amounts": {"subtotal": 1899, "discount": 0, "delivery_fee": 0, "service_fee": 0,
//!               "tip": 0, "tax": 169, "total": 2068},
//!   "payment": "prepaid", "callback_url": "https://app.example.com/callbacks/status"}}
//!
//! HTTP/1.1 202 Accepted
//! {"order_id": "019aad3e-5b1c-7d2e-9f00-3c4d5e6f7a8b", "status": "received", "duplicate": false}
//! ```
//!
//! Signing in Rust (any HMAC-SHA256 library does the same):
//!
//! ```
//! let body = br#"{"event":"order.cancelled","event_id":"evt_2","order_id":"OA-1"}"#;
//! let headers = crossdock_adapter_own_app::signed_headers(b"secret", 1763935512, body);
//! assert_eq!(headers[0], ("X-Crossdock-Timestamp".to_owned(), "1763935512".to_owned()));
//! assert_eq!(headers[1].1.len(), 64);
//! ```
//!
//! More complete bodies are in `fixtures/own_app/`.
//!
//! # Configuration
//!
//! `[channels.own_app]` takes `replay_window_s` (seconds, default 300). The secret
//! `signing_secret` comes from `CROSSDOCK_SECRET_OWN_APP_SIGNING_SECRET` or the secrets file;
//! in development mode it defaults to [`DEV_SIGNING_SECRET`], which the simulator uses.

pub mod simulator;

mod convert;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdock_channel::signature::Timestamped;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, HeaderMap,
    Inbound, InboundRequest, Outcome, PushOutcome, Reply, StatusCode, clip, http,
};
use crossdock_model::{ChannelId, NewOrder, Order, StatusChange};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::wire::{AppEvent, ORDER_CANCELLED, ORDER_CREATED};

/// The channel id, as in `/webhooks/own_app` and `[channels.own_app]`.
pub const CHANNEL_ID: &str = "own_app";

/// The development signing secret, shared by the hub in development mode and the simulator.
/// Never valid in production.
pub const DEV_SIGNING_SECRET: &str = "own-app-dev-signing-secret-do-not-use-in-production";

/// The header carrying the unix time of signing.
pub const TIMESTAMP_HEADER: &str = "X-Crossdock-Timestamp";

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Crossdock-Signature";

/// The default replay window, in seconds.
pub const DEFAULT_REPLAY_WINDOW_S: u64 = 300;

const SIGNING_SECRET: &str = "signing_secret";
const DEV_SECRETS: &[(&str, &str)] = &[(SIGNING_SECRET, DEV_SIGNING_SECRET)];

/// The `[channels.own_app]` options.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnAppConfig {
    /// How far, in seconds, a request's timestamp may be from the time the hub received it,
    /// before or after.
    #[serde(default = "default_replay_window_s")]
    pub replay_window_s: u64,
}

fn default_replay_window_s() -> u64 {
    DEFAULT_REPLAY_WINDOW_S
}

impl Default for OwnAppConfig {
    fn default() -> Self {
        Self {
            replay_window_s: DEFAULT_REPLAY_WINDOW_S,
        }
    }
}

/// The app's signing scheme with a replay window of `window_s` seconds.
fn scheme(window_s: u64) -> Timestamped {
    Timestamped {
        timestamp_header: TIMESTAMP_HEADER,
        signature_header: SIGNATURE_HEADER,
        window_s,
    }
}

/// Lower-case hex HMAC-SHA256 of `timestamp + "." + body` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    Timestamped::sign(secret, timestamp, body)
}

/// The two authentication headers for `body` signed at `timestamp`: timestamp first, then
/// signature.
pub fn signed_headers(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    scheme(DEFAULT_REPLAY_WINDOW_S).headers(secret, timestamp, body)
}

/// Checks the authentication headers of a request (or of a status callback) received at
/// `now`, and returns its timestamp.
///
/// Errors: [`ChannelError::Unauthorized`] naming the missing header or saying the signature
/// is wrong; [`ChannelError::Stale`] for a correct signature outside `window_s`.
pub fn verify_signed(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    window_s: u64,
) -> Result<i64, ChannelError> {
    scheme(window_s).verify(secret, headers, body, now)
}

/// The own_app channel: verifies and parses the app's requests, sends status callbacks.
#[derive(Debug)]
pub struct OwnApp {
    id: ChannelId,
    config: OwnAppConfig,
    signing_secret: SecretString,
    http: reqwest::Client,
}

impl OwnApp {
    /// Errors: [`ConfigError::Invalid`] for a zero replay window. (An empty secret never gets
    /// here: [`crossdock_channel::SecretSource`] treats it as missing.)
    pub fn new(
        config: OwnAppConfig,
        signing_secret: SecretString,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: &str| ConfigError::Invalid {
            channel: CHANNEL_ID.to_owned(),
            message: message.to_owned(),
        };
        if config.replay_window_s == 0 {
            return Err(invalid("`replay_window_s` must be at least 1"));
        }
        let id = ChannelId::parse(CHANNEL_ID).map_err(|error| invalid(&error.to_string()))?;
        Ok(Self {
            id,
            config,
            signing_secret,
            http,
        })
    }

    /// An `order.created`. The hub logs the order it receives (phone masked), so nothing
    /// is logged here.
    fn parse_created(&self, event: AppEvent) -> Result<Delivery, ChannelError> {
        let order = event.order.ok_or_else(|| missing_field("order"))?;
        let order: NewOrder = convert::new_order(&self.id, order)?;
        Ok(Delivery {
            dedupe_key: event.event_id,
            inbound: Inbound::Order(Box::new(order)),
        })
    }

    fn parse_cancelled(&self, event: AppEvent) -> Result<Delivery, ChannelError> {
        let order_id = event.order_id.ok_or_else(|| missing_field("order_id"))?;
        if order_id.trim().is_empty() {
            return Err(ChannelError::Malformed(
                "order_id: must not be empty".to_owned(),
            ));
        }
        tracing::debug!(
            channel = CHANNEL_ID,
            event_id = %event.event_id,
            external_order_id = %order_id,
            "Cancellation parsed."
        );
        Ok(Delivery {
            dedupe_key: event.event_id,
            inbound: Inbound::Cancelled {
                external_order_id: order_id,
                reason: event.reason.filter(|r| !r.trim().is_empty()),
            },
        })
    }
}

fn malformed(error: wire::WireError) -> ChannelError {
    ChannelError::Malformed(error.to_string())
}

/// A field the event needs, in serde's words (as when a required field is missing).
fn missing_field(name: &str) -> ChannelError {
    ChannelError::Malformed(format!("body: missing field `{name}`"))
}

#[async_trait]
impl Channel for OwnApp {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        verify_signed(
            self.signing_secret.expose_secret().as_bytes(),
            &request.headers,
            &request.body,
            request.received_at,
            self.config.replay_window_s,
        )
        .map(|_| ())
        .inspect_err(|error| {
            tracing::debug!(channel = CHANNEL_ID, error = %error, "Request refused.");
        })
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let event: AppEvent = wire::from_json(&request.body).map_err(malformed)?;
        if event.event_id.trim().is_empty() {
            return Err(ChannelError::Malformed(
                "event_id: must not be empty".to_owned(),
            ));
        }
        match event.event.as_str() {
            ORDER_CREATED => self.parse_created(event),
            ORDER_CANCELLED => self.parse_cancelled(event),
            other => Err(ChannelError::Malformed(format!(
                "event: unknown event `{}`; expected `{ORDER_CREATED}` or `{ORDER_CANCELLED}`",
                clip(other)
            ))),
        }
    }

    fn reply(&self, _request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        match outcome {
            Outcome::Accepted {
                order_id,
                duplicate,
                ..
            } => Reply::json(
                StatusCode::ACCEPTED,
                &serde_json::json!({
                    "order_id": order_id.map(|id| id.to_string()),
                    "status": "received",
                    "duplicate": duplicate,
                }),
            ),
            Outcome::Quoted { .. } => Reply::json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({
                    "error": "unsupported",
                    "message": "the own-app API takes orders, not quotes",
                }),
            ),
            Outcome::Refused(error) => Reply::refusal(error),
        }
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let url = convert::callback_url(order)?;
        // `at` in the body is when the status changed; the signature's timestamp is now.
        let now = Utc::now();
        let callback = convert::status_callback(order, &change.action, change.at);
        let body = serde_json::to_vec(&callback).map_err(|error| {
            ChannelError::Malformed(format!("status callback does not serialize: {error}"))
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(http::DEFAULT_TIMEOUT);
        for (name, value) in signed_headers(
            self.signing_secret.expose_secret().as_bytes(),
            now.timestamp(),
            &body,
        ) {
            request = request.header(name, value);
        }
        let response = http::send(request.body(body)).await.inspect_err(|error| {
            tracing::debug!(
                channel = CHANNEL_ID,
                order_id = %order.id,
                status = %callback.status,
                error = %error,
                "Status callback failed."
            );
        })?;
        let answered = response.status().as_u16();
        tracing::debug!(
            channel = CHANNEL_ID,
            order_id = %order.id,
            external_order_id = %callback.order_id,
            status = %callback.status,
            answered,
            "Status callback delivered."
        );
        Ok(PushOutcome::Delivered {
            detail: format!("{} callback to {host} answered {answered}", callback.status),
        })
    }
}

/// Builds [`OwnApp`] from `[channels.own_app]` and the secret `signing_secret`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factory;

impl ChannelFactory for Factory {
    fn id(&self) -> &'static str {
        CHANNEL_ID
    }

    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)] {
        DEV_SECRETS
    }

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError> {
        let config: OwnAppConfig = settings.options()?;
        let secret = settings.secret(SIGNING_SECRET)?;
        Ok(Arc::new(OwnApp::new(
            config,
            secret,
            settings.http.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests;
