//! Channel `just_eat`: Just Eat Takeaway.com through JET Connect (formerly Flyt), and a
//! simulator of it. JET pushes each whole order to our Receive Order endpoint, signed with
//! `X-JET-Connect-Hash`; we answer 202 (pending) and report the store's answer within the
//! injection window with JET's order-injection status calls (`sent-to-pos-success` /
//! `sent-to-pos-failed`, authenticated with `X-Flyt-API-Key`).
//!
//! # Documentation followed
//!
//! Access to JET Connect is partner-gated; nothing here was checked against a sandbox.
//!
//! - CHANNELS.md §7 (Just Eat Takeaway / JET Connect, brief), §8 (the unified model), §10
//!   (normalization rules).
//! - JET Connect / Flyt, *Update Order Status*
//!   (<https://www.notion.so/Update-Order-Status-1d3cb6498e1e4c28aedc6d582127cae0>):
//!   `POST https://order-injection-status-updater.flyt-platform.com/order/{ORDER_ID}/sent-to-pos-{success|failed}`,
//!   `X-Flyt-API-Key` and `Content-Type: application/json` headers, `ORDER_ID` is "the Flyt
//!   order ID, received as `id` in the Receive Order endpoint body"; orders are pending
//!   after a 202 answer to Receive Order; "requests to this endpoint for an order which is
//!   no longer pending will fail"; "if this endpoint is not called within 5 minutes after
//!   an order is marked as pending, the order status will switch to 'failed to inject'".
//! - JET Connect OpenAPI reference (<https://uk.api.just-eat.io/docs/jetconnect/openapi.yaml>,
//!   tag *JET Connect for Manage Order Status*), read through its transcriptions in public
//!   client code (konfig's Just Eat SDK page, the APIs.guru copy of the Just Eat API at
//!   <https://apis.guru/apis/just-eat.co.uk>):
//!   - *Receive Order* (`POST` to the endpoint we give JET): the body's fields (`id`,
//!     `third_party_order_reference`, `type`, `posLocationId`, `location`,
//!     `menu_reference`, `items`, `created_at`, `channel`, `collect_at`,
//!     `collection_notes`, `deliver_at`, `delivery_notes`, `kitchen_notes`,
//!     `payment_method`, `tender_type`, `payment`, `driver`, `collector`, `delivery`,
//!     `extras`, `promotions`) and its three worked examples ("Delivery by partner",
//!     "Delivery by restaurant", "Pick-up"); the answers: 200 "with an Order Number" when
//!     the order is in the POS, **202** to handle it asynchronously (then Update Order
//!     Status), any other status "taken as a failure and redirected to the tablet to be
//!     hand-keyed", 401 for a failed authorization or HMAC;
//!   - the `X-JET-Connect-Hash` header: `HMAC-SHA256 t=1673428038618,signature=…`, "created
//!     using SHA256, Base64 to encode and UTF-8", `t` "the UNIX timestamp of when the body
//!     was signed", and the test vector: secret `key`, body `example` →
//!     `FGwot7AqiDIthEv6TippJm35DaRpRac5NSLd/wSp9go=` (pinned in the unit tests; it shows
//!     the signature covers the body alone, not `t`);
//!   - `sent-to-pos-success` (`{"happenedAt"}`) and `sent-to-pos-failed` (`{"happenedAt",
//!     "errorCode", "errorMessage"}`, all required): 204 when the status was updated, 400,
//!     429.
//! - Flyt, *Integrate Orders* (<https://developers.flyt.io/integrate-your-pos/integrate%20orders/>):
//!   the order model's data types (`price` "an integer, price in cents"; `item` recursive,
//!   options in `children`; `plu` "unique POS identifier"; `payment_method` CASH or CARD;
//!   `payment.items_in_cart` "total with tax of all the items in the cart", `final` "total
//!   with tax of all the items plus negative/positive adjustments", `adjustments`
//!   "e.g. delivery fee, combo discounts").
//! - Just Eat API overview (<https://apis.guru/apis/just-eat.co.uk>): timestamps sent to
//!   JET are ISO 8601 local time with its offset, or UTC with a `+00:00` offset.
//! - Secondary (no JET page found; public client libraries of JET Connect, e.g.
//!   `food-ticket/jet-connect-client` on GitHub, and integrators' code): the
//!   `sent-to-pos-failed` error codes, the Cancel Order notification (`orderID`,
//!   `reason.code`, `initiatedBy`, `happenedAt`) and the Driver Status notification
//!   (`orderID`, `driverStatus.code`: `driverArrivingAtRestaurant`, `driverAtRestaurant`,
//!   `onItsWay`, `delivered`), `extras.asap`, the default API host `api.flytplatform.com`
//!   some of them use instead of the status-updater host.
//!
//! # How an order flows
//!
//! 1. JET posts the whole order to our Receive Order endpoint, `/webhooks/just_eat` (or
//!    `/webhooks/just_eat/order`), and its notifications to one URL each:
//!    `/webhooks/just_eat/order-cancelled` (Cancel Order) and
//!    `/webhooks/just_eat/driver-status` (Driver Status). These are the URLs we give JET
//!    at onboarding. Each carries [`SIGNATURE_HEADER`], `HMAC-SHA256
//!    t=<ms>,signature=<base64 HMAC-SHA256 of the exact body under the webhook secret>`;
//!    [`verify`](crossdock_channel::Channel::verify) recomputes it over the bytes received
//!    and compares in constant time. `t` is not covered by the signature, so it proves
//!    nothing and is not checked (no replay window).
//! 2. `parse`: Receive Order becomes [`Inbound::Order`] (module `convert`) with dedupe key
//!    the order `id` (JET gives no event id); Cancel Order [`Inbound::Cancelled`] with key
//!    `cancel:{orderID}` and the reason code; Driver Status `onItsWay` and `delivered`
//!    [`Inbound::Progress`] (picked up, delivered) with key `driver:{orderID}:{code}`, the
//!    courier's other codes [`Inbound::Ignored`]. Any other webhook path is `Unsupported`
//!    (404).
//! 3. `reply`: an order, stored or replayed, is answered **202** with an empty body (the
//!    order is pending at JET until the store answers, below); a notification 200; a
//!    refused request the error's 4xx with `{"error", "message"}`, upon which JET sends
//!    the order to the Orderpad (tablet) to be keyed in by hand.
//! 4. `push` reports the store's answer, authenticated with `X-Flyt-API-Key: <api_key>`:
//!
//! | hub action | call |
//! |---|---|
//! | accept | `POST {base_url}/order/{id}/sent-to-pos-success` `{"happenedAt"}` |
//! | reject | `POST {base_url}/order/{id}/sent-to-pos-failed` `{"happenedAt", "errorCode", "errorMessage"}` |
//! | cancel, fail of an order not yet accepted | `sent-to-pos-failed`, as reject |
//! | cancel, fail of an accepted order | none: JET Connect has no call for it (cancel on the Orderpad) |
//! | preparing, ready, picked up, delivered, complete | none ([`PushOutcome::NotApplicable`]) |
//!
//! `happenedAt` is the time of the change, RFC 3339 with a `+00:00` offset; `errorCode` is
//! read from the reason ([`error_code`]). A 2xx answer (JET: 204) is delivered; 408, 429
//! (with `Retry-After`) and 5xx are retried by the hub; any other 4xx is permanent and parks
//! the order's syncs for HQ ([`ChannelError::is_retryable`]), including JET's 400 for an
//! order that is no longer pending.
//!
//! # Layout
//!
//! - this file: [`JustEat`] (the [`Channel`]), [`JustEatConfig`], [`Factory`], the
//!   signature, push planning;
//! - `wire`: serde types of JET Connect's JSON;
//! - `convert`: wire → [`crossdock_model::NewOrder`]; the only place money is converted;
//! - [`simulator`]: [`simulator::JustEatSim`], an HTTP server behaving like JET Connect.
//!
//! # Configuration (`[channels.just_eat]`)
//!
//! | option | default |
//! |---|---|
//! | `base_url` | [`DEFAULT_BASE_URL`]: JET's order-injection status host (the tests point it at the simulator) |
//! | `timeout_secs` | 10: the timeout of one call to JET |
//! | `currency` | `GBP`: the ISO 4217 currency of orders (JET Connect's orders carry none) |
//! | `store_currencies` | `{}`: currency by `posLocationId`, for stores not in `currency` (e.g. `{ "cdp-dub-001" = "EUR" }`) |
//!
//! # Secrets
//!
//! From the environment (`CROSSDOCK_SECRET_JUST_EAT_<NAME>`) or the secrets file
//! (`[just_eat]`); `crossdock channels` lists them:
//!
//! - `webhook_secret` (`CROSSDOCK_SECRET_JUST_EAT_WEBHOOK_SECRET`): the HMAC secret we give
//!   JET to sign its webhooks with (`X-JET-Connect-Hash`);
//! - `api_key` (`CROSSDOCK_SECRET_JUST_EAT_API_KEY`): the `X-Flyt-API-Key` JET issued us
//!   for the status calls.
//!
//! In development mode they default to [`DEV_WEBHOOK_SECRET`] and [`DEV_API_KEY`], which
//! the simulator uses.
//!
//! # Assumptions
//!
//! Where the documentation is silent, second-hand or contradicts itself, and what this
//! adapter chose:
//!
//! - **Injection window.** The Update Order Status page says 5 minutes, the Receive Order
//!   reference (202 answer) says 3, an integrator (HubRise) says 3. [`ACCEPT_WINDOW`] and
//!   the simulator use 5, as CHANNELS.md §7 records; stores should answer well within 3.
//! - **Every webhook is signed.** JET documents `X-JET-Connect-Hash` on order requests
//!   ("omitted if no secret was provided"); we give JET a secret and require the header on
//!   the Cancel Order and Driver Status notifications too. If JET sends those unsigned,
//!   they are refused with 401 and this must change (check in the sandbox).
//! - **`Authorization` not checked.** Integrators also configure a key JET sends back in
//!   `Authorization`; it is not documented on JET's pages we could read, so the HMAC is the
//!   only check.
//! - **No replay window**: `t` is outside the signature (the documented test vector signs
//!   the body alone), so checking it would prove nothing. Replays are harmless: the
//!   dedupe key is the order id.
//! - **Dedupe.** JET sends no event id: an order's key is its `id`, a cancellation's
//!   `cancel:{orderID}`, a courier update's `driver:{orderID}:{code}`.
//! - **One URL per webhook**, as JET asks for an endpoint per webhook; the paths under
//!   `/webhooks/just_eat/` are ours to choose (above).
//! - **Notification bodies are second-hand.** Cancel Order (`orderID`, `reason.code`,
//!   `initiatedBy.code`, `happenedAt`) and Driver Status (`orderID`, `driverStatus.code`)
//!   come from integrators' code, not from a JET page; `orderID` is taken to be the JET
//!   Connect order id (`id` of Receive Order). The reason is kept as JET's code
//!   (`custCancelledChangedMind`).
//! - **Answer 202, always.** The hub stores the order and the store answers later, so
//!   every order is taken asynchronously; a replay is answered 202 too. A 202 carries no
//!   body (JET documents none).
//! - **Currency** is configuration (`currency`, `store_currencies`): JET Connect's orders
//!   name none.
//! - **Money.** Amounts are integer minor units. JET's documented examples price items
//!   before tax and list tax apart (`items_in_cart` 2160 with tax 360 for items of 1800),
//!   so lines are items' `price`, the subtotal `items_in_cart.inc_tax − tax`, each
//!   adjustment counts as `inc_tax − tax`, tax is `final.tax` (not included), and the
//!   total is `final.inc_tax`. Adjustment names beyond `deliveryFee`, `serviceCharge` and
//!   `discount` (seen in examples) are guessed: `smallOrderFee`, `bagFee` (any case),
//!   `tip`/`driverTip`; any other name is `fees.other` if positive, a discount if
//!   negative. Discounts are of unknown funding. `payment.deposit` (bottle deposits) is
//!   kept in `channel_data`, not in the money: the examples do not show it in `final`.
//! - **Quantities.** JET Connect's items have no quantity: each unit is its own object
//!   (the simulator sends two burgers as two items); a `quantity`, if ever sent, is read.
//!   Items have no id either: a line's id is its JSON path (`items[0]`).
//! - **Promotions'** free items (`promotions[].items`) are lines priced 0 (with their
//!   options), noted "Free item (`type`)": the kitchen makes them, the customer did not pay.
//! - **Times.** `created_at`, `collect_at`, `deliver_at` are unix seconds as strings (the
//!   examples); RFC 3339 (older Flyt pages) is read too. An order is scheduled when
//!   `extras.asap` is `"false"` (seen in a published order; not in the schema), for
//!   `collect_at`, or `deliver_at` for the store's own deliveries; the same time is the
//!   promised time of an ASAP order.
//! - **Customer.** A partner delivery's customer is masked with `*`: masked values and the
//!   `customer@email.hidden` placeholder are dropped; no address is kept for it (JET's
//!   courier delivers). Coordinates are the numeric `latitude`/`longitude` (the example's
//!   `*_as_string` values disagree with them). JET sends no country.
//! - **Cash.** `CASH` is cash the store collects (`cash_due`) for pickups and its own
//!   deliveries; for partner deliveries JET's courier collects it (no `cash_due`).
//! - **Notes.** `kitchen_notes`, then `collection_notes` (who collects), then
//!   `delivery_notes` when there is no address for them, one per line.
//! - **Error codes.** `sent-to-pos-failed` takes a code; the set (`STORE_CLOSED`,
//!   `MENU_ERROR`, `INCORRECT_SETUP`, …, `UNKNOWN`) comes from client libraries, and the
//!   code is read from the store's free-text reason by keywords ([`error_code`]).
//! - **Cancel after acceptance** has no JET Connect call ("no longer pending" orders
//!   fail): `NotApplicable`, the store cancels on the Orderpad or with JET support.
//! - **Idempotency.** JET fails any status call on an order no longer pending, so a push
//!   retried after its 204 was lost gets a 400 and is parked for HQ (a person confirms the
//!   order went through); there is no documented call to read an order's injection
//!   status back.
//! - **Error shape.** JET's standard error body (`faultId`, `traceId`, `errors[]`) is
//!   assumed for the status calls; the adapter only keeps it as text.
//! - **Rate.** No published limit (429 is documented): pushes are held to 5 per second
//!   (burst 10).
//! - **Host.** [`DEFAULT_BASE_URL`] is the status-updater host of the Update Order Status
//!   page; client libraries use `https://api.flytplatform.com` with the same paths.
//!   Configure `base_url` as JET tells you. The optional `X-JET-Application` header
//!   ("descriptor of client") is not sent.
//! - **Other webhooks.** JET Connect's *Final Picked Order* (grocery picking), menu
//!   ingestion callbacks and restaurant-offline notifications are not taken: a URL the
//!   adapter does not know is answered 404.
//! - **Fixtures.** Apart from the simulator's cases, `10-doc-example-delivery-by-restaurant`
//!   is the reference's "Delivery by restaurant" example (from a public transcription, not
//!   JET's bytes), with its `posLocationId` changed to a store of the sample chain. No
//!   request captured from JET itself was available.
//!
//! # Simulator control endpoints (for people running it by hand)
//!
//! - `GET /_sim/calls`: every call the hub made to the simulated platform;
//! - `POST /_sim/orders`: body a [`crossdock_channel::sim::SampleOrder`]; places it and
//!   posts the Receive Order webhook to the hub.

pub mod simulator;

mod convert;
mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::SecondsFormat;
use crossdock_channel::config::http_url;
use crossdock_channel::signature::{constant_time_eq, hmac_sha256};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, Inbound,
    InboundRequest, Outcome, PushOutcome, RateLimit, Reply, StatusCode, clip, http,
};
use crossdock_model::{ChannelId, Currency, Order, Status, StatusAction, StatusChange};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use convert::ACCEPT_WINDOW;

/// The channel id, as in `/webhooks/just_eat` and `[channels.just_eat]`.
pub const CHANNEL_ID: &str = "just_eat";

/// The header carrying the webhook's signature (lower case, as header names compare):
/// `X-JET-Connect-Hash: HMAC-SHA256 t=<ms>,signature=<base64>`.
pub const SIGNATURE_HEADER: &str = "x-jet-connect-hash";

/// The header authenticating our status calls.
pub const API_KEY_HEADER: &str = "x-flyt-api-key";

/// `/webhooks/just_eat/order`: Receive Order (the bare `/webhooks/just_eat` too).
pub const EVENT_ORDER: &str = "order";
/// `/webhooks/just_eat/order-cancelled`: the Cancel Order notification.
pub const EVENT_ORDER_CANCELLED: &str = "order-cancelled";
/// `/webhooks/just_eat/driver-status`: the Driver Status notification.
pub const EVENT_DRIVER_STATUS: &str = "driver-status";

/// JET's order-injection status host (Update Order Status).
pub const DEFAULT_BASE_URL: &str = "https://order-injection-status-updater.flyt-platform.com";

/// The development webhook secret; the simulator signs with it. Used by the hub only in
/// development mode.
pub const DEV_WEBHOOK_SECRET: &str = "dev-just_eat-webhook-secret-not-for-production";

/// The development API key; the simulator accepts it. Used by the hub only in development
/// mode.
pub const DEV_API_KEY: &str = "dev-just_eat-api-key-not-for-production";

/// `CROSSDOCK_SECRET_JUST_EAT_WEBHOOK_SECRET`.
const WEBHOOK_SECRET: &str = "webhook_secret";
/// `CROSSDOCK_SECRET_JUST_EAT_API_KEY`.
const API_KEY: &str = "api_key";

const DEV_SECRETS: &[(&str, &str)] =
    &[(WEBHOOK_SECRET, DEV_WEBHOOK_SECRET), (API_KEY, DEV_API_KEY)];

/// The `[channels.just_eat]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JustEatConfig {
    /// The status API host, e.g. [`DEFAULT_BASE_URL`] or the simulator's URL.
    pub base_url: String,
    /// Timeout of one call to JET, in seconds.
    pub timeout_secs: u64,
    /// ISO 4217 currency of the orders of stores not in `store_currencies`.
    pub currency: String,
    /// ISO 4217 currency by `posLocationId`.
    pub store_currencies: BTreeMap<String, String>,
}

impl Default for JustEatConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
            currency: "GBP".to_owned(),
            store_currencies: BTreeMap::new(),
        }
    }
}

/// The channel adapter. Stateless: one instance serves every order, concurrently.
#[derive(Debug)]
pub struct JustEat {
    id: ChannelId,
    base_url: reqwest::Url,
    webhook_secret: SecretString,
    api_key: SecretString,
    timeout: Duration,
    currencies: convert::Currencies,
    http: reqwest::Client,
}

fn currency(field: &str, code: &str) -> Result<Currency, ConfigError> {
    Currency::parse(code.trim())
        .map_err(|e| ConfigError::invalid(CHANNEL_ID, format!("`{field}`: {e}")))
}

impl JustEat {
    /// Builds the adapter; refuses an unusable URL, timeout or currency. (An empty secret
    /// never gets here: [`crossdock_channel::SecretSource`] treats it as missing.)
    pub fn new(
        config: JustEatConfig,
        webhook_secret: SecretString,
        api_key: SecretString,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let id = ChannelId::parse(CHANNEL_ID)
            .map_err(|e| ConfigError::invalid(CHANNEL_ID, e.to_string()))?;
        let base_url = http_url(CHANNEL_ID, "base_url", &config.base_url)?;
        if config.timeout_secs == 0 {
            return Err(ConfigError::invalid(
                CHANNEL_ID,
                "`timeout_secs` must be at least 1",
            ));
        }
        let currencies = convert::Currencies {
            default: currency("currency", &config.currency)?,
            by_store: config
                .store_currencies
                .iter()
                .map(|(store, code)| {
                    Ok((
                        store.trim().to_owned(),
                        currency(&format!("store_currencies.{store}"), code)?,
                    ))
                })
                .collect::<Result<_, ConfigError>>()?,
        };
        Ok(Self {
            id,
            base_url,
            webhook_secret,
            api_key,
            timeout: Duration::from_secs(config.timeout_secs),
            currencies,
            http,
        })
    }

    /// `{base_url}/order/{id}/{call}`, the id percent-encoded as one path segment.
    fn url(&self, external_order_id: &str, call: &str) -> Result<reqwest::Url, ChannelError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                ChannelError::Malformed(format!("`base_url` {} cannot take a path", self.base_url))
            })?
            .pop_if_empty()
            .extend(["order", external_order_id, call]);
        Ok(url)
    }

    fn parse_order(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let order: wire::ReceiveOrder = wire::from_json(&request.body).map_err(malformed)?;
        let order = convert::order(&self.id, &order, &self.currencies, request.received_at)?;
        tracing::debug!(
            channel = CHANNEL_ID,
            external_order_id = %order.external_order_id,
            store = order.channel_store_ref.as_deref().unwrap_or(""),
            lines = order.lines.len(),
            total = %order.totals.total,
            "Order parsed."
        );
        Ok(Delivery {
            dedupe_key: order.external_order_id.clone(),
            inbound: Inbound::Order(Box::new(order)),
        })
    }

    fn parse_cancelled(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let cancelled: wire::OrderCancelled = wire::from_json(&request.body).map_err(malformed)?;
        let external_order_id = convert::required(&cancelled.order_id, "orderID")?;
        let reason = cancelled
            .reason
            .map(|r| r.code.trim().to_owned())
            .filter(|r| !r.is_empty());
        tracing::info!(
            channel = CHANNEL_ID,
            external_order_id = %external_order_id,
            reason = reason.as_deref().map(clip).unwrap_or_default(),
            "JET cancelled an order."
        );
        Ok(Delivery {
            dedupe_key: format!("cancel:{external_order_id}"),
            inbound: Inbound::Cancelled {
                external_order_id,
                reason,
            },
        })
    }

    fn parse_driver(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let status: wire::DriverStatus = wire::from_json(&request.body).map_err(malformed)?;
        let external_order_id = convert::required(&status.order_id, "orderID")?;
        let code = convert::required(&status.driver_status.code, "driverStatus.code")?;
        let dedupe_key = format!("driver:{external_order_id}:{code}");
        let inbound = match code.as_str() {
            wire::DRIVER_ON_ITS_WAY => Inbound::Progress {
                external_order_id,
                action: StatusAction::PickedUp,
            },
            wire::DRIVER_DELIVERED => Inbound::Progress {
                external_order_id,
                action: StatusAction::Delivered,
            },
            other => {
                let known = [wire::DRIVER_ARRIVING, wire::DRIVER_AT_RESTAURANT].contains(&other);
                tracing::info!(
                    channel = CHANNEL_ID,
                    external_order_id = %external_order_id,
                    code = %clip(other),
                    known,
                    "Driver status ignored."
                );
                Inbound::Ignored {
                    event: format!("{EVENT_DRIVER_STATUS}:{}", clip(other)),
                }
            }
        };
        Ok(Delivery {
            dedupe_key,
            inbound,
        })
    }
}

fn malformed(error: wire::WireError) -> ChannelError {
    ChannelError::Malformed(error.to_string())
}

/// The signature in an `X-JET-Connect-Hash` value (`HMAC-SHA256 t=…,signature=<base64>`):
/// the `signature=` parameter, parameters separated by commas or spaces.
pub(crate) fn signature_param(header: &str) -> Option<&str> {
    header
        .split([',', ' '])
        .map(str::trim)
        .find_map(|part| part.strip_prefix("signature="))
        .filter(|signature| !signature.is_empty())
}

/// The `errorCode` of `sent-to-pos-failed` for the store's (or the hub's) free-text reason:
/// `STORE_CLOSED` (closed), `MENU_ERROR` (stock, unavailable, menu, item),
/// `INCORRECT_SETUP` (an unknown or unmapped store), `TIMEOUT` (timed out, too late),
/// `INACTIVE` (offline), `IN_USE` (busy), otherwise `UNKNOWN`.
pub fn error_code(reason: &str) -> &'static str {
    let reason = reason.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| reason.contains(w));
    if has(&["closed", "closing"]) {
        "STORE_CLOSED"
    } else if has(&["stock", "unavailable", "menu", "item", "sold out"]) {
        "MENU_ERROR"
    } else if has(&[
        "unmapped",
        "no store",
        "unknown store",
        "not mapped",
        "setup",
    ]) {
        "INCORRECT_SETUP"
    } else if has(&["timeout", "timed out", "too late", "expired"]) {
        "TIMEOUT"
    } else if has(&["offline", "inactive"]) {
        "INACTIVE"
    } else if has(&["busy"]) {
        "IN_USE"
    } else {
        "UNKNOWN"
    }
}

/// What a status action means on JET Connect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// `POST {base_url}/order/{id}/{call}` with `body`.
    Call {
        call: &'static str,
        body: serde_json::Value,
    },
    NotApplicable(String),
}

/// `sent-to-pos-success`.
pub(crate) const CALL_SUCCESS: &str = "sent-to-pos-success";
/// `sent-to-pos-failed`.
pub(crate) const CALL_FAILED: &str = "sent-to-pos-failed";

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Maps a status change onto JET Connect's call. Pure, for tests.
pub(crate) fn plan(change: &StatusChange) -> Plan {
    let happened_at = change.at.to_rfc3339_opts(SecondsFormat::Secs, false);
    let failed = |reason: &str| {
        let reason = reason.trim();
        let message = if reason.is_empty() {
            "The store cannot take the order".to_owned()
        } else {
            reason.to_owned()
        };
        Plan::Call {
            call: CALL_FAILED,
            body: json(&wire::SentToPosFailed {
                happened_at: happened_at.clone(),
                error_code: error_code(&message).to_owned(),
                error_message: message,
            }),
        }
    };
    match &change.action {
        StatusAction::Accept { .. } => Plan::Call {
            call: CALL_SUCCESS,
            body: json(&wire::SentToPosSuccess {
                happened_at: happened_at.clone(),
            }),
        },
        StatusAction::Reject { reason } => failed(reason),
        StatusAction::Cancel { reason } | StatusAction::Fail { reason }
            if change.from == Status::Received =>
        {
            failed(reason)
        }
        StatusAction::Cancel { .. } | StatusAction::Fail { .. } => Plan::NotApplicable(format!(
            "JET Connect has no call to `{}` an order already sent to the POS (it is no \
             longer pending); cancel it on the Orderpad or with JET support",
            change.action.target()
        )),
        StatusAction::Preparing
        | StatusAction::Ready
        | StatusAction::PickedUp
        | StatusAction::Delivered
        | StatusAction::Complete => Plan::NotApplicable(format!(
            "JET Connect has no call for `{}`: it takes only whether the order reached the \
             POS (sent-to-pos-success or -failed)",
            change.action.target()
        )),
    }
}

#[async_trait]
impl Channel for JustEat {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    /// [`SIGNATURE_HEADER`]'s `signature=` must be the base64 HMAC-SHA256 of the exact body
    /// bytes under the webhook secret, compared (decoded) in constant time.
    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        let header = request.header(SIGNATURE_HEADER).ok_or_else(|| {
            ChannelError::Unauthorized(format!("missing header {SIGNATURE_HEADER}"))
        })?;
        let provided = signature_param(header).ok_or_else(|| {
            ChannelError::Unauthorized(format!(
                "header {SIGNATURE_HEADER} has no `signature=` parameter"
            ))
        })?;
        let provided = BASE64.decode(provided).map_err(|_| {
            ChannelError::Unauthorized(format!(
                "the signature in header {SIGNATURE_HEADER} is not base64"
            ))
        })?;
        let expected = hmac_sha256(
            self.webhook_secret.expose_secret().as_bytes(),
            &[&request.body],
        );
        if constant_time_eq(&provided, &expected) {
            Ok(())
        } else {
            Err(ChannelError::Unauthorized(format!(
                "the signature in header {SIGNATURE_HEADER} is not the HMAC-SHA256 of the \
                 body under the webhook secret"
            )))
        }
    }

    /// One URL per webhook (`request.event`): Receive Order, Cancel Order, Driver Status.
    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        match request.event.as_deref() {
            None | Some(EVENT_ORDER) => self.parse_order(request),
            Some(EVENT_ORDER_CANCELLED) => self.parse_cancelled(request),
            Some(EVENT_DRIVER_STATUS) => self.parse_driver(request),
            Some(other) => Err(ChannelError::Unsupported(format!(
                "no JET Connect webhook at /webhooks/{CHANNEL_ID}/{}; they are \
                 /webhooks/{CHANNEL_ID} (Receive Order), …/{EVENT_ORDER_CANCELLED} and \
                 …/{EVENT_DRIVER_STATUS}",
                clip(other)
            ))),
        }
    }

    /// An order (new or replayed) is answered 202: pending until the store answers, which
    /// `push` reports. Notifications get 200; refusals the error's status and
    /// `{"error", "message"}` (JET then sends the order to the Orderpad).
    fn reply(&self, _request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        match outcome {
            Outcome::Accepted { delivery, .. } => match delivery.inbound {
                Inbound::Order(_) => Reply::empty(StatusCode::ACCEPTED),
                _ => Reply::empty(StatusCode::OK),
            },
            Outcome::Quoted { .. } => Reply::empty(StatusCode::OK),
            Outcome::Refused(error) => Reply::refusal(error),
        }
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let external = order.order.external_order_id.as_str();
        let (call, body) = match plan(change) {
            Plan::Call { call, body } => (call, body),
            Plan::NotApplicable(why) => return Ok(PushOutcome::NotApplicable { why }),
        };
        let url = self.url(external, call)?;
        let request = self
            .http
            .post(url.clone())
            .header(API_KEY_HEADER, self.api_key.expose_secret())
            .json(&body)
            .timeout(self.timeout);
        // `http::send` maps the answer: 2xx is Ok; 429 is `RateLimited` (with
        // `Retry-After`), other statuses `Platform { status, body }` (retryable for 408 and
        // 5xx), transport failures `Transport` (retryable).
        match http::send(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                tracing::info!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %external,
                    call,
                    status,
                    "Status pushed."
                );
                Ok(PushOutcome::Delivered {
                    detail: format!("POST {} answered {status}", url.path()),
                })
            }
            Err(error) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %external,
                    call,
                    error_type = error.kind(),
                    retryable = error.is_retryable(),
                    %error,
                    "Status push failed."
                );
                Err(error)
            }
        }
    }

    /// JET publishes no limit for the status calls (only that it may answer 429).
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 5,
            burst: 10,
        }
    }
}

/// Builds [`JustEat`] from `[channels.just_eat]` and its secrets.
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
        let config: JustEatConfig = settings.options()?;
        let webhook_secret = settings.secret(WEBHOOK_SECRET)?;
        let api_key = settings.secret(API_KEY)?;
        Ok(Arc::new(JustEat::new(
            config,
            webhook_secret,
            api_key,
            settings.http.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests;
