//! The channel interface: what an adapter crate implements so the hub can take orders from
//! a platform and push status back to it, plus the helpers adapters share.
//!
//! # Layout
//!
//! - [`Channel`]: the trait an adapter implements.
//! - [`ChannelFactory`]: how the hub builds an adapter from configuration; the hub binary
//!   keeps the one list of factories (`crates/hub/src/channels.rs`).
//! - [`InboundRequest`], [`Delivery`], [`Inbound`]: a platform's request and what it means.
//! - [`ChannelError`]: typed failures, split into permanent and retryable.
//! - [`signature`], [`oauth`], [`http`], [`config`]: shared building blocks.
//! - [`normalize`]: the stable JSON document a request becomes (`crossdock normalize`).
//! - [`sim`]: helpers for the platform simulators each adapter crate ships.
//!
//! Architecture invariant: an adapter is a stateless translator. It does no database or
//! broker I/O; the core owns persistence, idempotency, retries and publishing.
//!
//! # Writing an adapter
//!
//! The guide is `docs/adding-a-channel.md`; the smallest complete adapter to read is
//! `adapters/pos` (our own store-POS protocol), the fullest `adapters/uber-eats`. What each
//! method of [`Channel`] must do:
//!
//! | method | must | errors | time budget |
//! |---|---|---|---|
//! | `id` | the channel id, as in `/webhooks/{id}` and `[channels.{id}]` | — | — |
//! | `verify` | authenticate the request over its exact bytes (signature, token, replay window at `received_at`), in constant time | `Unauthorized`, `Stale` | on the webhook path: no I/O, microseconds |
//! | `parse` | say what a verified request means: an order, a fetch, a cancellation, progress, a quote, or nothing to act on; with the platform's dedupe key | `Malformed` naming the field, `Order` for money that is not a whole minor unit | no I/O |
//! | `reply` | the answer in the platform's convention (body, status) for accepted, duplicate, quoted and refused requests | — | no I/O; runs after the commit |
//! | `fetch`, `parse_fetched` | notify-then-fetch platforms: get the order (HTTP), then read the answer (pure) | retryable for 429/5xx/timeouts, permanent otherwise | the adapter's HTTP timeout |
//! | `refuse_notified` | tell the platform the hub cannot take a notified order | as `fetch` | as `fetch` |
//! | `check_code`, `redeem_code`, `parse_redeemed` | code-at-the-counter platforms: check and redeem a customer's code (HTTP, returning the platform's answer), read the answer (pure); idempotent on `request_id` | permanent for a bad or used code (the cashier's message), retryable for outages | as `fetch` |
//! | `push` | report one status change to the platform; idempotent; [`PushOutcome::NotApplicable`] where the platform has no such call | retryable (429 with `retry_after`, 5xx, timeouts) or permanent (parks the order's syncs for HQ) | the adapter's HTTP timeout; the hub rate-limits calls to `push_rate` |
//! | `store_credential` | channels whose requests come from the chain's stores: the key one store signs with | — | no I/O |
//! | `orders_are_store_sales` | `true` where every order is a sale the store already made (a POS): routed to that store as it is | — | — |
//!
//! Every adapter passes the conformance kit (`crossdock-kit`): fixtures, tampering, the
//! `normalize` command and the full loop through a real hub and its simulator.

pub mod config;
pub mod convert;
pub mod error;
pub mod http;
pub mod normalize;
pub mod oauth;
pub mod signature;
pub mod sim;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use crossdock_model::{
    ChannelId, NewOrder, Order, OrderId, StatusAction, StatusChange, Unroutable,
};

pub use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
pub use config::{ChannelSettings, ConfigError, SecretSource};
pub use error::{ChannelError, clip};

/// A platform's HTTP request to `POST /webhooks/{channel}[/{event}]`, exactly as received.
#[derive(Debug, Clone)]
pub struct InboundRequest {
    /// `POST` for almost every platform; some send pings or short events as `GET`.
    pub method: Method,
    /// The `{event}` path segment, for platforms with one callback URL per event.
    pub event: Option<String>,
    /// The public URL the platform called, without the query (Meituan signs it).
    pub url: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The exact body bytes; signatures are checked over these, never over a re-encoding.
    pub body: Bytes,
    pub received_at: DateTime<Utc>,
}

impl InboundRequest {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Whether a header (name in lower case) carries a credential, never to be stored, logged or
/// shown: `authorization`, `proxy-authorization`, `cookie`, and any name that says secret,
/// token, key, password or session (`x-flyt-api-key`). Signatures are not credentials and
/// are kept for forensics.
pub fn is_credential_header(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
        || ["secret", "token", "key", "password", "session", "cookie"]
            .iter()
            .any(|word| name.contains(word))
}

/// Where a notify-then-fetch platform keeps the order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FetchRef {
    pub external_order_id: String,
    /// The URL the notification pointed at.
    pub resource: String,
    /// The notification says the order is scheduled (some platforms tell only in the
    /// event type, not in the order).
    #[serde(default)]
    pub scheduled: bool,
}

/// What a verified request means for the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A complete order.
    Order(Box<NewOrder>),
    /// A notification: the order must be fetched from the platform.
    Fetch(FetchRef),
    /// The platform cancelled an order.
    Cancelled {
        external_order_id: String,
        reason: Option<String>,
    },
    /// The platform reports progress it owns (a courier picked the order up, delivered it),
    /// as the action it amounts to.
    Progress {
        external_order_id: String,
        action: StatusAction,
    },
    /// A question before the customer pays (a checkout): can the chain take this order,
    /// and at what price? The hub runs the order check and the router's decision without
    /// recording anything, and the adapter answers with [`Outcome::Quoted`].
    Quote(Box<NewOrder>),
    /// An event the hub takes note of but does not act on (a ping, an event of no
    /// consequence to stores).
    Ignored { event: String },
}

/// A parsed request: its dedupe key and meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The platform's event or message id. A second request with the same key is a
    /// replay and changes nothing.
    pub dedupe_key: String,
    pub inbound: Inbound,
}

/// How the hub handled a request, for the adapter to answer in its platform's convention.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Stored (or already stored: `duplicate`). `order_id` is known for orders and
    /// order events the hub matched.
    Accepted {
        delivery: &'a Delivery,
        order_id: Option<OrderId>,
        duplicate: bool,
    },
    /// A quote ([`Inbound::Quote`]) was checked: `Ok` when a store can take the order now.
    Quoted {
        order: &'a NewOrder,
        verdict: Result<(), Unservable>,
    },
    /// Refused; nothing stored (apart from a quarantine record).
    Refused(&'a ChannelError),
}

/// Why the chain cannot take a quoted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unservable {
    /// The order check refused it (no items, impossible quantities or money); the message
    /// says what.
    Invalid(String),
    /// No store can take it; `reason` is for people.
    NoStore { kind: Unroutable, reason: String },
}

impl std::fmt::Display for Unservable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unservable::Invalid(message) => f.write_str(message),
            Unservable::NoStore { reason, .. } => f.write_str(reason),
        }
    }
}

/// A code a customer shows at a store (a voucher bought on the platform), as the store
/// presents it to the hub.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeClaim {
    /// The channel's id of the store presenting the code.
    pub channel_store_ref: String,
    /// The code as the customer shows it (typed or scanned).
    pub code: String,
    /// How many uses of the code to redeem.
    pub count: u32,
    /// Idempotency key for the platform: the same claim retried carries the same id.
    pub request_id: String,
    /// When the store presented the code: the order's `placed_at` (redemption answers
    /// carry no time of their own).
    pub claimed_at: DateTime<Utc>,
}

/// An HTTP answer to a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }

    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Some("application/json"),
            body: value.to_string().into_bytes(),
        }
    }

    /// The common answer to a refused request: the error's status and its message.
    pub fn refusal(error: &ChannelError) -> Self {
        Self::json(
            error.http_status(),
            &serde_json::json!({ "error": error.kind(), "message": error.to_string() }),
        )
    }
}

/// The result of pushing a status action to a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The platform took it; `detail` summarises its answer for the order's history.
    Delivered { detail: String },
    /// The platform has no call for this action (e.g. Uber classic has no "preparing").
    NotApplicable { why: String },
}

/// A sustained rate and a burst, for the hub's per-channel limiter on status pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// A channel adapter. One instance serves every order of its channel, concurrently.
///
/// Time budget: `verify`, `parse` and `reply` run on the webhook's request path and must
/// not block; `fetch` and `push` may call the platform and are bounded by the adapter's
/// HTTP timeouts.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The channel id (`uber_eats`), as in `/webhooks/{channel}` and in the configuration.
    fn id(&self) -> &ChannelId;

    /// Authenticates a request over its exact bytes (signature, token, replay window).
    /// Errors: [`ChannelError::Unauthorized`] or [`ChannelError::Stale`].
    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError>;

    /// Parses a verified request. Errors: [`ChannelError::Malformed`] naming what is
    /// wrong, or [`ChannelError::Order`] where the conversion itself fails (money that is
    /// not a whole minor unit). The hub runs `NewOrder::check` on every order it gets from
    /// `parse` or `fetch`; adapters leave that to it.
    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError>;

    /// The answer the platform expects, in its own convention. `request` is the request
    /// being answered. Runs after the hub committed (or refused) and must not block.
    fn reply(&self, request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        let _ = request;
        match outcome {
            Outcome::Accepted { .. } => Reply::empty(StatusCode::OK),
            Outcome::Quoted {
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

    /// Fetches a notified order (notify-then-fetch platforms only). Implement it as an
    /// HTTP call followed by [`Channel::parse_fetched`], so that `crossdock normalize
    /// --fetched` reads a saved answer exactly as the hub reads a live one.
    async fn fetch(&self, reference: &FetchRef) -> Result<NewOrder, ChannelError> {
        Err(ChannelError::Unsupported(format!(
            "channel `{}` pushes whole orders; nothing to fetch for {}",
            self.id(),
            reference.external_order_id
        )))
    }

    /// Reads what the platform's order API answered for `reference` (the body of the
    /// fetch). Pure: no I/O.
    fn parse_fetched(&self, reference: &FetchRef, body: &[u8]) -> Result<NewOrder, ChannelError> {
        let _ = body;
        Err(ChannelError::Unsupported(format!(
            "channel `{}` pushes whole orders; nothing fetched for {}",
            self.id(),
            reference.external_order_id
        )))
    }

    /// Checks a code a customer shows at a store, without redeeming it (code-at-the-counter
    /// platforms only). Answers what the cashier should see: the deal, uses left, price.
    async fn check_code(&self, claim: &CodeClaim) -> Result<serde_json::Value, ChannelError> {
        Err(ChannelError::Unsupported(format!(
            "channel `{}` has no codes to check (asked for store {})",
            self.id(),
            claim.channel_store_ref
        )))
    }

    /// Redeems a code at a store and returns the platform's answer, byte for byte; the hub
    /// keeps it and reads it with [`Channel::parse_redeemed`] into an order of that store
    /// (or, if it cannot, quarantines it: the code is used on the platform either way).
    /// Must be safe to repeat with the same `request_id`. Errors: the platform refused the
    /// redemption (permanent: a bad or used code, with the cashier's message) or could not
    /// be reached (retryable).
    async fn redeem_code(&self, claim: &CodeClaim) -> Result<Bytes, ChannelError> {
        Err(ChannelError::Unsupported(format!(
            "channel `{}` has no codes to redeem (asked for store {})",
            self.id(),
            claim.channel_store_ref
        )))
    }

    /// Reads what the platform answered to a redemption. Pure: no I/O.
    fn parse_redeemed(&self, claim: &CodeClaim, body: &[u8]) -> Result<Delivery, ChannelError> {
        let _ = body;
        Err(ChannelError::Unsupported(format!(
            "channel `{}` has no codes to redeem (asked for store {})",
            self.id(),
            claim.channel_store_ref
        )))
    }

    /// Whether this channel's orders are sales a store already made (a store POS): the
    /// router then assigns each to the store the channel names without asking whether it
    /// can take orders (paused, closed, busy). Default: `false`, orders to be routed.
    fn orders_are_store_sales(&self) -> bool {
        false
    }

    /// The credential a store's own system uses to send this channel's requests, for
    /// channels whose requests come from the chain's stores (a store POS). `None` for
    /// platform channels.
    fn store_credential(&self, channel_store_ref: &str) -> Option<String> {
        let _ = channel_store_ref;
        None
    }

    /// Tells the platform that the hub cannot take an order it was notified of but could
    /// not fetch or read (notify-then-fetch platforms), so that the platform does not wait
    /// for its acceptance deadline. `reason` is for people. Must be safe to repeat.
    async fn refuse_notified(
        &self,
        reference: &FetchRef,
        reason: &str,
    ) -> Result<PushOutcome, ChannelError> {
        let _ = reason;
        Err(ChannelError::Unsupported(format!(
            "channel `{}` has no way to refuse notified order {}",
            self.id(),
            reference.external_order_id
        )))
    }

    /// Pushes one status change of `order` to the platform. `order` is the order as it is
    /// now; `change` says what happened, from which status and when (a push can come later
    /// than the change: retries, replays). Must be safe to repeat: the hub retries on
    /// retryable errors and after crashes.
    async fn push(&self, order: &Order, change: &StatusChange)
    -> Result<PushOutcome, ChannelError>;

    /// The rate at which the hub may call [`Channel::push`].
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 50,
            burst: 50,
        }
    }
}

/// Builds a channel from its configuration. The hub binary holds the one list of factories.
pub trait ChannelFactory: Send + Sync + 'static {
    /// The channel id this factory builds.
    fn id(&self) -> &'static str;

    /// Secrets the channel needs and their development values, which match the channel's
    /// simulator and are used only when the hub runs in development mode.
    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)];

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError>;
}

#[cfg(test)]
mod tests {
    use super::is_credential_header;

    #[test]
    fn credential_headers_are_told_from_signatures() {
        for name in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-flyt-api-key",
            "x-api-token",
            "x-client-secret",
            "x-session",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in [
            "x-uber-signature",
            "x-deliveroo-hmac-sha256",
            "x-jet-connect-hash",
            "x-crossdock-timestamp",
            "content-type",
        ] {
            assert!(!is_credential_header(name), "{name}");
        }
    }
}
