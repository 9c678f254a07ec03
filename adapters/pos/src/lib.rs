//! Channel `pos`: the chain's store POS terminals, which post their walk-in and phone
//! orders (and voids) to the hub so that HQ sees every sale of every channel in one
//! pipeline. Also a simulator of a store POS.
//!
//! This channel speaks **our own** API, defined here; no third-party platform is involved.
//! It is one-way: the POS reports sales, the hub takes them in, and nothing is sent back to
//! the POS (every status push answers [`PushOutcome::NotApplicable`]).
//!
//! # Layout
//!
//! - this file: [`Pos`] (the [`Channel`]), [`Factory`] (the [`ChannelFactory`]),
//!   [`PosConfig`], and the authentication helpers [`store_key`], [`sign`],
//!   [`signed_headers`] and [`verify_signed`], which a POS integration may call as they are
//!   (the simulator does).
//! - `wire`: the serde types of the API. Private: they never leave the crate.
//! - `convert`: wire order → [`NewOrder`]; the only place POS figures become money.
//! - [`simulator`]: [`simulator::PosSim`], a store POS that signs and posts orders and voids.
//!
//! # The POS order API, version 1
//!
//! Everything a POS vendor needs to implement the integration is in this section.
//!
//! ## Transport
//!
//! `POST {hub}/webhooks/pos`, `Content-Type: application/json`, UTF-8, one event per request,
//! within the hub's body limit (1 MiB by default). Unknown fields are ignored, so a POS may send more than the hub reads; an
//! unknown *value* of an enumerated field (`source`, `fulfillment.type`, `payment`) is
//! refused, because it would change what the order means.
//!
//! ## Authentication: one key per store
//!
//! Each store's POS has its own key. HQ keeps one chain-wide master secret and derives each
//! store's key from it; the hub's command line prints a store's key (the channel's
//! [`Channel::store_credential`]) for ops to install on that store's POS. The master secret
//! never leaves HQ:
//!
//! ```text
//! store_key = lower-case hex( HMAC-SHA256( master_key, "crossdock-pos-store:" + store_code ) )
//! ```
//!
//! `store_code` is our store code (`NYC-001`, `LDN-003`, `SHA-001`). The store key is the
//! 64-character hex **text**; the POS uses that text, as ASCII bytes, as its HMAC key (it does
//! not hex-decode it). Every request carries three headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Crossdock-Store` | the store code the key belongs to (`NYC-001`) |
//! | `X-Crossdock-Timestamp` | the time of signing, unix seconds (`1795176000`) |
//! | `X-Crossdock-Signature` | lower-case hex HMAC-SHA256(`store_key`, timestamp + `"."` + raw body) |
//!
//! The signature covers the exact bytes sent (sign the body you send, never a re-encoding)
//! and the timestamp header's exact text. The store header is covered too, because the hub
//! derives the key from it: a key works only with its own store code. The hub compares in
//! constant time and accepts either case of hex.
//!
//! The store of every order and void is the **store the request is signed for**: one store's
//! key can never post or void an order of another store. A body may also name its store
//! (`store`); it must then be the same code, or the request is refused.
//!
//! The hub refuses with **401** and error `unauthorized` when a header is missing (the
//! message names it), the store code is not a store code, the timestamp is not an integer,
//! the signature does not match, or the body names another store; and with **401** and error
//! `stale` when the timestamp is more than 300 seconds (`replay_window_s`) away from the hub's
//! clock, in either direction. Keep the POS clock synchronised (NTP).
//!
//! Test vector: master key `example-master-key`, store `NYC-001`, timestamp `1795176000`:
//!
//! ```
//! use crossdock_adapter_pos::{sign, store_key};
//!
//! let key = store_key(b"example-master-key", "NYC-001");
//! assert_eq!(key, "752b16014bd46b6f8d0ee8d0497c694609dc8a1dc392df00942ab19b393533f7");
//! let body = br#"{"version":1,"event":"order.voided","event_id":"evt-1","void":{"number":"1042"}}"#;
//! assert_eq!(
//!     sign(&key, 1795176000, body),
//!     "9361bdc2fe805193194be5c00d3c7a048d67df44d4096470613c8625bd1bb982"
//! );
//! ```
//!
//! ## Events
//!
//! Every body is a JSON object with these fields:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `version` | integer | `1`. Another version is refused (`malformed`) |
//! | `event` | string | `order.created` or `order.voided`; anything else is refused |
//! | `event_id` | string | unique per event, 1–128 characters (a UUID is best). A retry of the same event must carry the same `event_id`: the hub keeps one copy per store and event id |
//! | `store` | string? | the store code; if present it must equal `X-Crossdock-Store` |
//!
//! ### `order.created`: a sale was rung up
//!
//! Plus `order`, an object (`?` marks an optional field; money is **integer minor units** of
//! `currency` — cents, pence, fen — and a fractional or negative amount is refused):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `number` | string | the POS's order number: 1–64 ASCII letters, digits, `-`, `_`, `.`, `/`; unique within the store and never reused (so not a ticket number that restarts each day: prefix the date, `20261120-0042`). Staff see it as the order's code. Voids name it |
//! | `source` | `walk_in` \| `phone` | how the sale reached the store |
//! | `register` | string? | which till rang it up (reports) |
//! | `placed_at` | RFC 3339 with offset | when the sale was rung up (`2026-11-20T06:48:00-05:00`) |
//! | `fulfillment.type` | `dine_in` \| `pickup` \| `delivery` | `delivery` is by the store's own driver |
//! | `fulfillment.table` | string? | dine-in: the table, shown on the ticket |
//! | `fulfillment.scheduled_for` | RFC 3339? | a later time the customer wants the order (pickup or delivery time); absent = now |
//! | `fulfillment.address` | object? | **required** for `delivery`: `{lines[], city, postcode?, country}`, `country` as ISO 3166-1 alpha-2 |
//! | `fulfillment.location` | object? | delivery: `{lat, lng}`, WGS84 degrees, if the POS geocoded the address; out-of-range values are refused (`unacceptable_order`) |
//! | `fulfillment.instructions` | string? | delivery: notes for the driver |
//! | `customer` | object? | `{name?, phone?}` as staff should see them. **Required** for `delivery`, with a name or a phone |
//! | `notes` | string? | order-level note for the kitchen |
//! | `currency` | string | ISO 4217 (`USD`, `GBP`, `CNY`) |
//! | `lines[]` | array | at least one, in the order rung up |
//! | `lines[].plu` | string | the chain's item code (`PZ-MARG-L`) |
//! | `lines[].name`, `quantity`, `unit_price` | string, integer ≥ 1, integer ≥ 0 | `unit_price` is one unit *without* modifiers |
//! | `lines[].total` | integer? | the line as rung up (after a line discount); computed as (unit + modifiers) × quantity when absent |
//! | `lines[].notes` | string? | instructions for this item |
//! | `lines[].modifiers[]` | array? | `{group?, plu?, name, quantity, unit_price, removed?, modifiers[]?}`, recursive (a half-and-half pizza's second-half toppings are modifiers of the "Half & half" modifier); `quantity` is per one unit of the parent; `removed: true` marks a default ingredient taken off (its quantity may be 0) |
//! | `totals.subtotal` | integer | lines with their modifiers, before order discounts |
//! | `totals.discounts[]` | array? | `{label, amount}`, each a positive amount off (staff meal, coupon) |
//! | `totals.tax` | integer? | default 0 |
//! | `totals.tax_included` | bool? | prices include tax (VAT): tax is not added on top. Default false |
//! | `totals.fees` | object? | `{delivery?, service?, packaging?, other?}`, each default 0 |
//! | `totals.tip` | integer? | default 0 |
//! | `totals.total` | integer | what the customer pays: subtotal − discounts + tax (unless included) + fees + tip. The hub keeps every figure as sent and flags an order whose figures do not add up; it never corrects them |
//! | `payment` | `counter` \| `card` \| `cash_on_delivery` \| `pay_at_store` | `counter`: settled at the counter when rung up; `card`: card taken before sending (over the phone); `cash_on_delivery` (delivery only): the driver collects `total`; `pay_at_store` (not for delivery): paid on collection or at the table |
//!
//! ### `order.voided`: a sale was voided
//!
//! Plus `void`: `{"number": "<the order's number>", "reason": "…"}` (`reason` optional). The
//! store is told at once. A void of an order the hub has not seen yet is kept, so that the
//! order posted late (an offline POS catching up) does not come back.
//!
//! ## Replies
//!
//! | status | body | when |
//! |---|---|---|
//! | 202 | `{"order_id": "<hub order id or null>", "duplicate": false}` | stored; stop retrying |
//! | 202 | the same with `"duplicate": true` | this store's `event_id` (or order number) was already stored; nothing changed |
//! | 400 | `{"error": "malformed", "message": "order.lines[0].unit_price: invalid type: floating point `18.99`, expected i64 …"}` | the body does not parse or breaks a rule above; the message names the field |
//! | 400 | `{"error": "unacceptable_order", "message": "…"}` | a well-formed order the hub cannot take (quantity 0, coordinates out of range, …) |
//! | 401 | `{"error": "unauthorized" \| "stale", "message": "…"}` | see Authentication |
//!
//! A 4xx is final: fix the request, do not retry it as is (a `stale` answer means the clock
//! is off, or the request was held too long: sign it again). On a 5xx or no answer, retry
//! with the same body, signed again with a new timestamp: the `event_id` makes it safe. A POS
//! that is offline keeps its events in order and posts them when it is back, each signed when
//! sent; `placed_at` stays the time of the sale.
//!
//! ## Nothing comes back
//!
//! The hub routes a POS order to its own store (the store the request is signed for) and
//! records what the store does with it, but it sends nothing to the POS: no callbacks, and no
//! call the POS must answer.
//!
//! ## Example
//!
//! ```text
//! POST /webhooks/pos HTTP/1.1
//! Content-Type: application/json
//! X-Crossdock-Store: LDN-001
//! X-Crossdock-Timestamp: 1795176000
//! X-Crossdock-Signature: <hex HMAC-SHA256(store_key, "1795176000." + body)>
//!
//! {"version": 1, "event": "order.created", "event_id": "0193f1c2-7a4e-7b21-9d0e-5c3a8f6b2e11",
//!  "store": "LDN-001",
//!  "order": {"number": "R1-20261120-0087", "source": "walk_in", "register": "R1",
//!   "placed_at": "2026-11-20T11:52:10Z", "fulfillment": {"type": "dine_in", "table": "12"},
//!   "currency": "GBP",
//!   "lines": [{"plu": "PZ-MARG-L", "name": "Margherita (Large)", "quantity": 1, "unit_price": 1499,
//!              "modifiers": [{"group": "Crust", "plu": "MOD-CRUST-THIN", "name": "Thin crust",
//!                             "quantity": 1, "unit_price": 0}]}],
//!   "totals": {"subtotal": 1499, "tax": 250, "tax_included": true, "total": 1499},
//!   "payment": "counter"}}
//!
//! HTTP/1.1 202 Accepted
//! {"order_id": "019aad3e-5b1c-7d2e-9f00-3c4d5e6f7a8b", "duplicate": false}
//! ```
//!
//! Signing in Rust (any HMAC-SHA256 library does the same):
//!
//! ```
//! let key = crossdock_adapter_pos::store_key(b"example-master-key", "LDN-001");
//! let body = br#"{"version":1,"event":"order.voided","event_id":"e2","void":{"number":"87"}}"#;
//! let headers = crossdock_adapter_pos::signed_headers(&key, "LDN-001", 1795176000, body);
//! assert_eq!(headers[0], ("X-Crossdock-Store".to_owned(), "LDN-001".to_owned()));
//! assert_eq!(headers[1], ("X-Crossdock-Timestamp".to_owned(), "1795176000".to_owned()));
//! assert_eq!(headers[2].1.len(), 64);
//! ```
//!
//! Complete bodies of every kind are in `fixtures/pos/` (`*.body`, with their signed
//! `*.headers` and what the hub makes of them, `*.expected.json`).
//!
//! # How the hub reads a POS order
//!
//! See `convert` for the rules: the external order id is `<store>:<number>` (`LDN-001:R1-20261120-0087`),
//! the dedupe key `<store>:<event_id>`, the display code the number; discounts are the
//! chain's own (merchant-funded); `source`, `register` and `table` are kept in the order's
//! channel data.
//!
//! # Configuration
//!
//! `[channels.pos]` takes `replay_window_s` (seconds, default 300). The master secret
//! `master_key` comes from `CROSSDOCK_SECRET_POS_MASTER_KEY` or the secrets file; in
//! development mode it defaults to [`DEV_MASTER_KEY`], which the simulator uses.
//!
//! # Documentation followed
//!
//! There is no platform documentation: the protocol is defined here. It follows the design
//! notes of the project (`BRIEF.md`: "store POS (offline orders): POS posts orders so HQ sees
//! all sales in one place; nothing to sync back"; `CHANNELS.md` §8, the unified model, and
//! §10, the normalization rules) and the `own_app` channel's HMAC-with-timestamp scheme, with
//! a key per store derived from one master secret.
//!
//! # Assumptions
//!
//! - POS order numbers are unique per store, not across the chain, so the external order id is
//!   the store code and the number (`<store>:<number>`), and the dedupe key the store code and
//!   the event id. The brief asked for "the number" and "the event id"; qualifying them is
//!   what keeps two stores (or two POS vendors' id schemes) from colliding, and makes voids
//!   store-scoped.
//! - A POS order is paid or settled at the store, so `counter` and `card` both map to
//!   `prepaid` (nothing to collect); the unified model has no "paid at the counter".
//! - Walk-in vs phone, the register and the table have no place in the unified model: they
//!   are kept in `channel_data` (`source`, `register`, `table`).
//! - POS discounts are the chain's own: `funded_by: merchant`.
//! - A walk-in order may have no customer (the name is then empty); a delivery order needs a
//!   customer with a name or a phone number, for the driver.
//! - Delivery coordinates are optional (the store is named, so the router does not need
//!   them) and WGS84, also for Chinese stores: the POS geocodes with its own maps, not a
//!   Chinese platform's.
//! - The body's `store` field is optional; a mismatch with the signed store is refused as
//!   `unauthorized` (it is an attempt to post for another store), not as `malformed`.
//! - Nothing is pushed, so [`Channel::push_rate`] is generous: a push costs no call.

pub mod simulator;

mod convert;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdock_channel::signature::{Timestamped, hmac_sha256_hex};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, HeaderMap,
    Inbound, InboundRequest, Outcome, PushOutcome, RateLimit, Reply, StatusCode, clip,
};
use crossdock_model::{ChannelId, NewOrder, Order, StatusChange, StoreId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::wire::{CreatedBody, Envelope, ORDER_CREATED, ORDER_VOIDED, VoidedBody};

/// The channel id, as in `/webhooks/pos` and `[channels.pos]`.
pub const CHANNEL_ID: &str = "pos";

/// The version of the API this adapter reads (`"version": 1`).
pub const API_VERSION: u32 = 1;

/// The development master secret, shared by the hub in development mode and the simulator.
/// Never valid in production.
pub const DEV_MASTER_KEY: &str = "pos-dev-master-key-do-not-use-in-production";

/// The header naming the store whose key signed the request.
pub const STORE_HEADER: &str = "X-Crossdock-Store";

/// The header carrying the unix time of signing.
pub const TIMESTAMP_HEADER: &str = "X-Crossdock-Timestamp";

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Crossdock-Signature";

/// What a store key is derived from: this prefix and the store code, under the master key.
pub const STORE_KEY_CONTEXT: &str = "crossdock-pos-store:";

/// The default replay window, in seconds.
pub const DEFAULT_REPLAY_WINDOW_S: u64 = 300;

/// The longest `event_id` the API takes.
const MAX_EVENT_ID_LEN: usize = 128;

const MASTER_KEY: &str = "master_key";
const DEV_SECRETS: &[(&str, &str)] = &[(MASTER_KEY, DEV_MASTER_KEY)];

/// The `[channels.pos]` options.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosConfig {
    /// How far, in seconds, a request's timestamp may be from the time the hub received it,
    /// before or after.
    #[serde(default = "default_replay_window_s")]
    pub replay_window_s: u64,
}

fn default_replay_window_s() -> u64 {
    DEFAULT_REPLAY_WINDOW_S
}

impl Default for PosConfig {
    fn default() -> Self {
        Self {
            replay_window_s: DEFAULT_REPLAY_WINDOW_S,
        }
    }
}

/// The key of store `store_code`: lower-case hex HMAC-SHA256(`master_key`,
/// `"crossdock-pos-store:" + store_code`). The POS signs with this hex text as its key.
pub fn store_key(master_key: &[u8], store_code: &str) -> String {
    hmac_sha256_hex(
        master_key,
        &[STORE_KEY_CONTEXT.as_bytes(), store_code.as_bytes()],
    )
}

/// Lower-case hex HMAC-SHA256 of `timestamp + "." + body`, keyed with the store key's text.
pub fn sign(store_key: &str, timestamp: i64, body: &[u8]) -> String {
    Timestamped::sign(store_key.as_bytes(), timestamp, body)
}

/// The three authentication headers for `body` signed by `store_code` at `timestamp`: store,
/// timestamp, signature, in that order.
pub fn signed_headers(
    store_key: &str,
    store_code: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    vec![
        (STORE_HEADER.to_owned(), store_code.to_owned()),
        (TIMESTAMP_HEADER.to_owned(), timestamp.to_string()),
        (
            SIGNATURE_HEADER.to_owned(),
            sign(store_key, timestamp, body),
        ),
    ]
}

/// The store code a request names, if the header is there and is a store code.
fn store_of(headers: &HeaderMap) -> Result<StoreId, ChannelError> {
    let text = header(headers, STORE_HEADER)?;
    StoreId::parse(text).map_err(|error| {
        ChannelError::Unauthorized(format!(
            "header {STORE_HEADER}: {}",
            clip(&error.to_string())
        ))
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ChannelError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| ChannelError::Unauthorized(format!("missing header {name}")))
}

/// Checks the authentication headers of a request received at `now` against the key of the
/// store it names, derived from `master_key`; returns that store.
///
/// Errors: [`ChannelError::Unauthorized`] naming the missing or bad header, or saying the
/// signature is wrong; [`ChannelError::Stale`] for a correct signature outside `window_s`.
pub fn verify_signed(
    master_key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    window_s: u64,
) -> Result<StoreId, ChannelError> {
    let store = store_of(headers)?;
    let key = store_key(master_key, store.as_str());
    let scheme = Timestamped {
        timestamp_header: TIMESTAMP_HEADER,
        signature_header: SIGNATURE_HEADER,
        window_s,
    };
    scheme
        .verify(key.as_bytes(), headers, body, now)
        .map_err(|error| match error {
            ChannelError::Unauthorized(message) if message.contains("does not match") => {
                ChannelError::Unauthorized(format!("{message} under the key of store {store}"))
            }
            other => other,
        })?;
    Ok(store)
}

/// The POS channel: verifies and parses what the stores' POS terminals post. Stateless.
#[derive(Debug)]
pub struct Pos {
    id: ChannelId,
    config: PosConfig,
    master_key: SecretString,
}

impl Pos {
    /// Errors: [`ConfigError::Invalid`] for a zero replay window. (An empty secret never gets
    /// here: [`crossdock_channel::SecretSource`] treats it as missing.)
    pub fn new(config: PosConfig, master_key: SecretString) -> Result<Self, ConfigError> {
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
            master_key,
        })
    }

    fn parse_created(
        &self,
        store: &StoreId,
        envelope: Envelope,
        body: &[u8],
    ) -> Result<Delivery, ChannelError> {
        let CreatedBody { order } = wire::from_json(body).map_err(malformed)?;
        let order: NewOrder = convert::new_order(&self.id, store.as_str(), order)?;
        Ok(Delivery {
            dedupe_key: dedupe_key(store, &envelope.event_id),
            inbound: Inbound::Order(Box::new(order)),
        })
    }

    fn parse_voided(
        &self,
        store: &StoreId,
        envelope: Envelope,
        body: &[u8],
    ) -> Result<Delivery, ChannelError> {
        let VoidedBody { void } = wire::from_json(body).map_err(malformed)?;
        convert::check_number("void.number", &void.number)?;
        let external_order_id = convert::external_order_id(store.as_str(), &void.number);
        tracing::debug!(
            channel = CHANNEL_ID,
            store = %store,
            event_id = %envelope.event_id,
            external_order_id = %external_order_id,
            "Void parsed."
        );
        Ok(Delivery {
            dedupe_key: dedupe_key(store, &envelope.event_id),
            inbound: Inbound::Cancelled {
                external_order_id,
                reason: void.reason.filter(|r| !r.trim().is_empty()),
            },
        })
    }
}

/// The dedupe key of a store's event: event ids are unique per POS, not across the chain.
fn dedupe_key(store: &StoreId, event_id: &str) -> String {
    format!("{store}:{event_id}")
}

fn malformed(error: wire::WireError) -> ChannelError {
    ChannelError::Malformed(error.to_string())
}

/// Reads and checks the envelope: version, event id, and the body's store against the signed
/// one.
fn envelope(store: &StoreId, body: &[u8]) -> Result<Envelope, ChannelError> {
    let envelope: Envelope = wire::from_json(body).map_err(malformed)?;
    if envelope.version != API_VERSION {
        return Err(ChannelError::Malformed(format!(
            "version: {} is not supported; this hub reads version {API_VERSION}",
            envelope.version
        )));
    }
    let event_id = envelope.event_id.as_str();
    if event_id.trim().is_empty() {
        return Err(ChannelError::Malformed(
            "event_id: must not be empty".to_owned(),
        ));
    }
    if event_id.chars().count() > MAX_EVENT_ID_LEN || event_id.chars().any(char::is_control) {
        return Err(ChannelError::Malformed(format!(
            "event_id: `{}` must be 1 to {MAX_EVENT_ID_LEN} characters without control characters",
            clip(event_id)
        )));
    }
    if let Some(named) = &envelope.store
        && named != store.as_str()
    {
        return Err(ChannelError::Unauthorized(format!(
            "store: the body names store `{}` but the request is signed for store {store}; a \
             store's key posts only its own orders",
            clip(named)
        )));
    }
    Ok(envelope)
}

#[async_trait]
impl Channel for Pos {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        verify_signed(
            self.master_key.expose_secret().as_bytes(),
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

    /// Parses a verified request; the store is the one the request is signed for.
    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let store = store_of(&request.headers)?;
        let envelope = envelope(&store, &request.body)?;
        match envelope.event.as_str() {
            ORDER_CREATED => self.parse_created(&store, envelope, &request.body),
            ORDER_VOIDED => self.parse_voided(&store, envelope, &request.body),
            other => Err(ChannelError::Malformed(format!(
                "event: unknown event `{}`; expected `{ORDER_CREATED}` or `{ORDER_VOIDED}`",
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
                    "duplicate": duplicate,
                }),
            ),
            // `parse` never asks for a quote; answer one in the refusal shape all the same.
            Outcome::Quoted { .. } => Reply::refusal(&ChannelError::Unsupported(
                "the POS API takes orders and voids, not quotes".to_owned(),
            )),
            Outcome::Refused(error) => Reply::refusal(error),
        }
    }

    /// Nothing is ever sent to a POS: every action is [`PushOutcome::NotApplicable`].
    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let status = change.action.target();
        Ok(PushOutcome::NotApplicable {
            why: format!(
                "the store POS channel is one-way: the POS reports its sales to HQ and is sent \
                 nothing back, so `{status}` of order {} stays in the hub",
                order.order.external_order_id
            ),
        })
    }

    /// Generous: a push makes no call.
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 1000,
            burst: 1000,
        }
    }

    /// The key to install on the POS of store `channel_store_ref` (our store code); `None`
    /// if it is not a store code (no request could ever name it).
    /// A POS order is a sale its store already made: it goes to that store whatever the
    /// store's state (paused for online orders, outside its hours).
    fn orders_are_store_sales(&self) -> bool {
        true
    }

    fn store_credential(&self, channel_store_ref: &str) -> Option<String> {
        StoreId::parse(channel_store_ref)
            .ok()
            .map(|store| store_key(self.master_key.expose_secret().as_bytes(), store.as_str()))
    }
}

/// Builds [`Pos`] from `[channels.pos]` and the secret `master_key`.
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
        let config: PosConfig = settings.options()?;
        let master_key = settings.secret(MASTER_KEY)?;
        Ok(Arc::new(Pos::new(config, master_key)?))
    }
}

#[cfg(test)]
mod tests;
