//! A simulator of Uber Eats: an HTTP server that behaves like Uber's documented API, for
//! tests, the demo and the benchmark.
//!
//! It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `POST /oauth/v2/token` | form `client_id`, `client_secret`, `grant_type=client_credentials`, `scope`; 401 `{"error":"invalid_client"}` on wrong credentials; else `{access_token, expires_in, token_type: "Bearer", scope}`. Every request is counted. |
//! | `GET /v2/eats/order/{id}` | a classic order (bearer token required) |
//! | `GET /v1/delivery/order/{id}` | a new-API order, wrapped in `{"order": …}` |
//! | `POST /v1/eats/orders/{id}/accept_pos_order`, `/deny_pos_order`, `/cancel`, `/restaurantdelivery/status` | classic write-backs: 204 |
//! | `POST /v1/delivery/order/{id}/accept`, `/deny`, `/cancel` | new write-backs: 200 `{}` |
//! | `POST /v1/delivery/order/{id}/ready` | 200 `{"status":"ok"}` |
//! | `GET /_sim/calls` | the call log (write calls) as JSON |
//! | `POST /_sim/orders` | body: a [`SampleOrder`]; places it like [`UberEatsSim::place_order`] |
//!
//! Order reads can be held (answered only once released, see
//! [`UberEatsSim::hold_order_reads`]), and orders saved from Uber's API can be served as
//! they are ([`UberEatsSim::serve_order`]), or answered with any bytes at all
//! ([`UberEatsSim::answer_raw`]). What Uber believes of an order reads back as
//! a unified status with [`UberEatsSim::order_status`].
//!
//! Write calls need a valid token (401 otherwise), answer 404 for an unknown order (or one
//! of the other API generation), 404 for a cancel of an order already in a terminal state
//! (as Uber documents), 409 for an accept or deny of a finished order, and 400 for a body
//! of the wrong shape. Each write call is recorded in the [`CallLog`] with the status it
//! got, and scripted [`Faults`] (delay, status override, `Retry-After`) apply to write
//! calls only, before anything else. A write call taken (2xx) that changes what
//! [`UberEatsSim::order_status`] reads is told to the [`StatusFeed`]
//! ([`UberEatsSim::status_feed`]).
//!
//! Orders are built from a platform-neutral [`SampleOrder`]: uuids for ids, a 5-character
//! `display_id` (the id's last five hex digits, as Uber does), a proxy phone with a
//! `phone_code`, items whose `external_data` is the PLU, modifiers in one "Options" group
//! per item (a modifier of quantity 0 becomes a removed ingredient), and charges that add
//! up to the sample's money (no tax).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{SecondsFormat, TimeDelta, Utc};
use crossdock_channel::signature::hmac_sha256_hex;
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimServer, StatusFeed,
    WebhookAnswer, lock, lost_on_the_way, post_webhook,
};
use crossdock_model::{Currency, Money, Status};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use uuid::Uuid;

use crate::wire::{
    AcceptPosOrder, Amount, CancelOrder, ClassicCart, ClassicCharges, ClassicEater,
    ClassicEaterDelivery, ClassicEaterRef, ClassicItem, ClassicItemPrice, ClassicLocation,
    ClassicModifierGroup, ClassicMoney, ClassicOrder, ClassicPayment, ClassicStore, DenyPosOrder,
    Envelope, EnvelopeMeta, ErrorBody, MoneyE5, RestaurantDeliveryStatus, TokenResponse, V1Accept,
    V1Cancel, V1Cart, V1Contact, V1Customer, V1CustomerRequest, V1Delivery, V1Deny, V1FailureInfo,
    V1FeeDetail, V1Fees, V1Item, V1ItemCharges, V1Location, V1ModifierGroup, V1Name, V1Order,
    V1OrderResponse, V1Payment, V1PaymentDetail, V1Phone, V1PreparationTime, V1PriceBreakdown,
    V1Quantity, V1Store, V1TimeRange, V1Total,
};
use crate::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, Generation, SIGNATURE_HEADER};

/// The Uber store id used when a sample order names none.
pub const DEFAULT_STORE_ID: &str = "3f4c6b0e-9a51-4d2e-8c7a-1b2d3e4f5a60";
/// The default token lifetime Uber documents: 30 days.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(2_592_000);
/// The proxy number given to eaters when a sample has no phone.
pub const PROXY_PHONE: &str = "+1 646-555-0142";

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Where webhooks go, e.g. `http://127.0.0.1:8080/webhooks/uber_eats`.
    pub hub_webhook_url: String,
    pub client_id: String,
    /// Checked at the token endpoint and used to sign webhooks.
    pub client_secret: String,
    /// The API generation of orders placed with [`UberEatsSim::place_order`].
    pub api: Generation,
    /// Lifetime of issued tokens (`expires_in`).
    pub token_ttl: Duration,
    /// Delivery samples become `DELIVERY_BY_RESTAURANT` (address exposed) instead of
    /// `DELIVERY_BY_UBER`.
    pub delivery_by_restaurant: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: "http://127.0.0.1:8080/webhooks/uber_eats".to_owned(),
            client_id: DEV_CLIENT_ID.to_owned(),
            client_secret: DEV_CLIENT_SECRET.to_owned(),
            api: Generation::Classic,
            token_ttl: DEFAULT_TOKEN_TTL,
            delivery_by_restaurant: false,
        }
    }
}

/// An order the simulator placed, and what the hub answered to its webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub external_order_id: String,
    pub event_id: String,
    pub answer: WebhookAnswer,
}

/// A running Uber Eats simulator.
#[derive(Debug)]
pub struct UberEatsSim {
    inner: Arc<Inner>,
    server: SimServer,
}

#[derive(Debug, Clone)]
enum StoredOrder {
    Classic(Box<ClassicOrder>),
    V1(Box<V1OrderResponse>),
}

impl StoredOrder {
    fn generation(&self) -> Generation {
        match self {
            StoredOrder::Classic(_) => Generation::Classic,
            StoredOrder::V1(_) => Generation::V1,
        }
    }

    /// Classic `current_state` or new `state`.
    fn state(&self) -> String {
        match self {
            StoredOrder::Classic(o) => o.current_state.clone().unwrap_or_default(),
            StoredOrder::V1(o) => o.order.state.clone().unwrap_or_default(),
        }
    }

    /// What Uber's view of the order means in the unified model. `delivery_status` is the
    /// last `restaurantdelivery/status` a classic order got (`started`, `arriving`,
    /// `delivered`).
    fn status(&self, delivery_status: Option<&str>) -> Status {
        match self {
            StoredOrder::Classic(o) => match o.current_state.as_deref().unwrap_or_default() {
                "ACCEPTED" if matches!(delivery_status, Some("started" | "arriving")) => {
                    Status::PickedUp
                }
                "ACCEPTED" => Status::Accepted,
                "DENIED" => Status::Rejected,
                "CANCELED" => Status::Cancelled,
                // Only `restaurantdelivery/status delivered` finishes an order here.
                "FINISHED" if o.order_type == "DELIVERY_BY_RESTAURANT" => Status::Delivered,
                "FINISHED" => Status::Completed,
                // CREATED, UNKNOWN: nothing decided yet.
                _ => Status::Received,
            },
            StoredOrder::V1(o) => {
                let order = &o.order;
                let reason = order
                    .failure_info
                    .as_ref()
                    .and_then(|f| f.reason.as_deref());
                match order.state.as_deref().unwrap_or_default() {
                    "ACCEPTED"
                        if order.preparation_status.as_deref() == Some("READY_FOR_HANDOFF") =>
                    {
                        Status::Ready
                    }
                    "ACCEPTED" => Status::Accepted,
                    "HANDED_OFF" => Status::PickedUp,
                    "SUCCEEDED" => Status::Completed,
                    "FAILED" if reason == Some("POS_DENIED") => Status::Rejected,
                    "FAILED" => Status::Cancelled,
                    // OFFERED, UNKNOWN: nothing decided yet.
                    _ => Status::Received,
                }
            }
        }
    }
}

/// What the simulator plays, fixed at start: the [`SimConfig`] without where it listens
/// and where webhooks go.
#[derive(Debug)]
struct Platform {
    client_id: String,
    client_secret: String,
    api: Generation,
    token_ttl: Duration,
    delivery_by_restaurant: bool,
}

#[derive(Debug)]
struct Inner {
    platform: Platform,
    /// Where webhooks go; the one copy, changed by [`UberEatsSim::set_hub_webhook_url`].
    hub_webhook_url: Mutex<String>,
    /// [`SimServer::base_url`], set once the server listens (the port is only known then);
    /// webhooks sent from `POST /_sim/orders` need it for `resource_href`.
    base_url: OnceLock<String>,
    http: reqwest::Client,
    orders: Mutex<HashMap<String, StoredOrder>>,
    /// The last `restaurantdelivery/status` of each classic order that got one. Locked
    /// after `orders` when both are.
    delivery_status: Mutex<HashMap<String, String>>,
    /// While `true`, order reads wait (see [`UberEatsSim::hold_order_reads`]).
    reads_held: watch::Sender<bool>,
    tokens: Mutex<HashMap<String, Instant>>,
    token_requests: AtomicUsize,
    webhooks: Mutex<HashMap<String, Vec<u8>>>,
    /// Answers order reads give byte for byte instead of the stored order
    /// ([`UberEatsSim::answer_raw`]).
    raw_answers: Mutex<HashMap<String, Vec<u8>>>,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
}

impl UberEatsSim {
    /// Starts the simulator's HTTP server.
    pub async fn start(config: SimConfig) -> std::io::Result<UberEatsSim> {
        let SimConfig {
            bind,
            hub_webhook_url,
            client_id,
            client_secret,
            api,
            token_ttl,
            delivery_by_restaurant,
        } = config;
        let inner = Arc::new(Inner {
            platform: Platform {
                client_id,
                client_secret,
                api,
                token_ttl,
                delivery_by_restaurant,
            },
            hub_webhook_url: Mutex::new(hub_webhook_url),
            base_url: OnceLock::new(),
            http: reqwest::Client::new(),
            orders: Mutex::new(HashMap::new()),
            delivery_status: Mutex::new(HashMap::new()),
            reads_held: watch::Sender::new(false),
            tokens: Mutex::new(HashMap::new()),
            token_requests: AtomicUsize::new(0),
            webhooks: Mutex::new(HashMap::new()),
            raw_answers: Mutex::new(HashMap::new()),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
        });
        let server = SimServer::serve(router(inner.clone()), bind).await?;
        let _ = inner.base_url.set(server.base_url());
        tracing::info!(base_url = %server.base_url(), api = inner.platform.api.as_str(), "Uber Eats simulator listening.");
        Ok(UberEatsSim { inner, server })
    }

    /// `http://host:port`: the adapter's `base_url` and the host of `resource_href`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The token endpoint: the adapter's `token_url`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/v2/token", self.base_url())
    }

    /// Points webhooks somewhere else (the hub is often started after the simulator).
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        *lock(&self.inner.hub_webhook_url) = url.into();
    }

    /// Places an order in the configured API generation and notifies the hub.
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner
            .place(sample, self.inner.platform.api, true)
            .await
    }

    /// Places an order in the given API generation and notifies the hub.
    pub async fn place_order_with(&self, sample: &SampleOrder, api: Generation) -> PlacedOrder {
        self.inner.place(sample, api, true).await
    }

    /// Places an order in the given API generation but loses its notification on the
    /// way: the hub never receives it (the answer is [`lost_on_the_way`]);
    /// [`UberEatsSim::resend_webhook`] with its event id delivers it, as Uber's retry
    /// would.
    pub async fn place_order_lost(&self, sample: &SampleOrder, api: Generation) -> PlacedOrder {
        self.inner.place(sample, api, false).await
    }

    /// Sends a webhook already sent once again, byte for byte. `None` for an unknown
    /// event id.
    pub async fn resend_webhook(&self, event_id: &str) -> Option<WebhookAnswer> {
        let body = lock(&self.inner.webhooks).get(event_id).cloned()?;
        Some(self.inner.send_signed(body).await)
    }

    /// Sends any body, with the given signature header (none if `None`): for forged
    /// and malformed webhook tests.
    pub async fn send_webhook_raw(
        &self,
        body: Vec<u8>,
        signature: Option<String>,
    ) -> WebhookAnswer {
        self.inner.send(body, signature).await
    }

    /// Cancels an order on Uber's side (as a customer or Uber support would) and sends
    /// `orders.cancel`. Works for unknown ids too (the hub must tombstone them).
    pub async fn cancel_order(&self, external_order_id: &str) -> WebhookAnswer {
        let (generation, store_id) = {
            let mut orders = lock(&self.inner.orders);
            match orders.get_mut(external_order_id) {
                Some(StoredOrder::Classic(order)) => {
                    order.current_state = Some("CANCELED".to_owned());
                    (Generation::Classic, order.store.id.clone())
                }
                Some(StoredOrder::V1(order)) => {
                    order.order.state = Some("FAILED".to_owned());
                    order.order.failure_info = Some(V1FailureInfo {
                        reason: Some("CANCELED_BY_CUSTOMER".to_owned()),
                    });
                    (Generation::V1, order.order.store.id.clone())
                }
                None => (self.inner.platform.api, DEFAULT_STORE_ID.to_owned()),
            }
        };
        let (_, answer) = self
            .inner
            .notify("orders.cancel", external_order_id, &store_id, generation)
            .await;
        answer
    }

    /// The order's Uber state: classic `current_state` or new `state`.
    pub fn order_state(&self, external_order_id: &str) -> Option<String> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .map(StoredOrder::state)
    }

    /// What Uber believes the order's status is, in the unified model; `None` for an
    /// order it does not know. Classic: `CREATED` received, `ACCEPTED` accepted (picked
    /// up once `restaurantdelivery/status` said `started` or `arriving`), `DENIED`
    /// rejected, `CANCELED` cancelled, `FINISHED` delivered (the restaurant delivered) or
    /// completed. New API: `OFFERED` received, `ACCEPTED` accepted (ready once `/ready`
    /// set `preparation_status` to `READY_FOR_HANDOFF`), `HANDED_OFF` picked up,
    /// `SUCCEEDED` completed, `FAILED` rejected when `failure_info.reason` is
    /// `POS_DENIED`, else cancelled.
    pub fn order_status(&self, external_order_id: &str) -> Option<Status> {
        let orders = lock(&self.inner.orders);
        let order = orders.get(external_order_id)?;
        Some(self.inner.status_of(external_order_id, order))
    }

    /// The statuses Uber heard: every write call taken (answered 2xx) that changed what
    /// [`UberEatsSim::order_status`] reads, with what it reads right after, by order id.
    pub fn status_feed(&self) -> &StatusFeed {
        &self.inner.feed
    }

    /// Serves an order as Uber's order API answered it: a classic order, or a new-API
    /// `{"order": …}`. For replaying saved answers (the adapter's fixtures); returns the
    /// order's id. No webhook is sent.
    pub fn serve_order(&self, api_answer: &[u8]) -> Result<String, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_slice(api_answer)?;
        let (id, order) = if value.get("order").is_some() {
            let order: V1OrderResponse = serde_json::from_value(value)?;
            (order.order.id.clone(), StoredOrder::V1(Box::new(order)))
        } else {
            let order: ClassicOrder = serde_json::from_value(value)?;
            (order.id.clone(), StoredOrder::Classic(Box::new(order)))
        };
        lock(&self.inner.orders).insert(id.clone(), order);
        Ok(id)
    }

    /// What Uber's order API answers for the order now, byte for byte (the body `GET
    /// /v2/eats/order/{id}` or `GET /v1/delivery/order/{id}` serves); `None` for an order it
    /// does not know.
    pub fn order_answer(&self, external_order_id: &str) -> Option<Vec<u8>> {
        if let Some(raw) = lock(&self.inner.raw_answers).get(external_order_id) {
            return Some(raw.clone());
        }
        match lock(&self.inner.orders).get(external_order_id)? {
            StoredOrder::Classic(order) => serde_json::to_vec(order.as_ref()).ok(),
            StoredOrder::V1(order) => serde_json::to_vec(order.as_ref()).ok(),
        }
    }

    /// Makes Uber's order API answer `body` for the order, byte for byte, on either API
    /// generation's path, whatever it is (cut short, not JSON, impossible money): a
    /// platform answering garbage. Write-backs still work on what the simulator knows of
    /// the order (serve it first with [`UberEatsSim::serve_order`]).
    pub fn answer_raw(&self, external_order_id: &str, body: Vec<u8>) {
        lock(&self.inner.raw_answers).insert(external_order_id.to_owned(), body);
    }

    /// Makes order reads (`GET /v2/eats/order/{id}`, `GET /v1/delivery/order/{id}`) wait
    /// until [`UberEatsSim::release_order_reads`]: a slow order API, and a way for a test
    /// to decide when notified orders reach the hub. The caller's own timeout still
    /// applies.
    pub fn hold_order_reads(&self) {
        self.inner.reads_held.send_replace(true);
    }

    /// Answers the held order reads and stops holding new ones.
    pub fn release_order_reads(&self) {
        self.inner.reads_held.send_replace(false);
    }

    /// Every write call the hub made.
    pub fn calls(&self) -> &CallLog {
        &self.inner.calls
    }

    /// How many times the token endpoint was called.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Invalidates every issued token: the next API call answers 401.
    pub fn revoke_tokens(&self) {
        lock(&self.inner.tokens).clear();
    }

    /// Scripted misbehaviour of write calls.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Placing orders and sending webhooks
// ---------------------------------------------------------------------------------------

impl Inner {
    fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    /// What Uber believes the status of `order` (the order `id` of `orders`, locked by the
    /// caller) is, in the unified model.
    fn status_of(&self, id: &str, order: &StoredOrder) -> Status {
        let progress = lock(&self.delivery_status);
        order.status(progress.get(id).map(String::as_str))
    }

    async fn place(&self, sample: &SampleOrder, api: Generation, deliver: bool) -> PlacedOrder {
        let id = Uuid::new_v4().to_string();
        let store_id = sample
            .store_ref
            .clone()
            .unwrap_or_else(|| DEFAULT_STORE_ID.to_owned());
        let order = match api {
            Generation::Classic => StoredOrder::Classic(Box::new(build_classic(
                sample,
                &id,
                &store_id,
                &self.platform,
            ))),
            Generation::V1 => {
                StoredOrder::V1(Box::new(build_v1(sample, &id, &store_id, &self.platform)))
            }
        };
        lock(&self.orders).insert(id.clone(), order);
        let event_type = if sample.scheduled_for.is_some() {
            "orders.scheduled.notification"
        } else {
            "orders.notification"
        };
        let (event_id, answer) = if deliver {
            self.notify(event_type, &id, &store_id, api).await
        } else {
            let (event_id, _) = self.envelope(event_type, &id, &store_id, api);
            (event_id, lost_on_the_way())
        };
        tracing::info!(
            external_order_id = %id,
            %event_id,
            webhook_status = answer.status,
            "Uber Eats simulator placed an order."
        );
        PlacedOrder {
            external_order_id: id,
            event_id,
            answer,
        }
    }

    /// Sends a signed envelope; returns its event id and the hub's answer.
    async fn notify(
        &self,
        event_type: &str,
        order_id: &str,
        store_id: &str,
        api: Generation,
    ) -> (String, WebhookAnswer) {
        let (event_id, body) = self.envelope(event_type, order_id, store_id, api);
        (event_id, self.send_signed(body).await)
    }

    /// Builds a signed envelope's body and keeps it for resending; returns its event id and
    /// the body.
    fn envelope(
        &self,
        event_type: &str,
        order_id: &str,
        store_id: &str,
        api: Generation,
    ) -> (String, Vec<u8>) {
        let event_id = Uuid::new_v4().to_string();
        let envelope = Envelope {
            event_id: event_id.clone(),
            event_time: Some(serde_json::Number::from(Utc::now().timestamp())),
            event_type: event_type.to_owned(),
            meta: Some(EnvelopeMeta {
                resource_id: order_id.to_owned(),
                status: Some("pos".to_owned()),
                user_id: Some(store_id.to_owned()),
            }),
            resource_href: Some(format!("{}{}", self.base_url(), api.order_path(order_id))),
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        lock(&self.webhooks).insert(event_id.clone(), body.clone());
        (event_id, body)
    }

    async fn send_signed(&self, body: Vec<u8>) -> WebhookAnswer {
        let signature = hmac_sha256_hex(self.platform.client_secret.as_bytes(), &[&body]);
        self.send(body, Some(signature)).await
    }

    async fn send(&self, body: Vec<u8>, signature: Option<String>) -> WebhookAnswer {
        let url = lock(&self.hub_webhook_url).clone();
        let mut headers = vec![("X-Environment".to_owned(), "sandbox".to_owned())];
        if let Some(signature) = signature {
            headers.push((SIGNATURE_HEADER.to_owned(), signature));
        }
        post_webhook(&self.http, &url, &headers, "application/json", body).await
    }

    /// Returns once order reads are not held.
    async fn reads_released(&self) {
        let mut held = self.reads_held.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = held.wait_for(|held| !*held).await;
    }

    fn token_valid(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        lock(&self.tokens)
            .get(token.trim())
            .is_some_and(|expires| Instant::now() < *expires)
    }
}

// ---------------------------------------------------------------------------------------
// Building Uber orders from samples
// ---------------------------------------------------------------------------------------

fn now_rfc3339(offset: TimeDelta) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn exponent(code: &str) -> u32 {
    Currency::parse(code).map_or(2, |c| c.exponent())
}

fn classic_money(minor: i64, code: &str) -> ClassicMoney {
    let exp = exponent(code);
    let scale = 10_i64.pow(exp);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let major = abs / scale.unsigned_abs();
    let symbol = match code {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        _ => "",
    };
    let number = if exp == 0 {
        major.to_string()
    } else {
        format!(
            "{major}.{:0width$}",
            abs % scale.unsigned_abs(),
            width = exp as usize
        )
    };
    let formatted = if symbol.is_empty() {
        format!("{sign}{number} {code}")
    } else {
        format!("{sign}{symbol}{number}")
    };
    ClassicMoney {
        amount: minor,
        currency_code: code.to_owned(),
        formatted_amount: Some(formatted),
    }
}

/// Samples may come from people (`POST /_sim/orders`): an amount too large for
/// `amount_e5` saturates, and an unknown currency code (which the adapter refuses anyway)
/// is taken to have two decimals.
pub(crate) fn e5(minor: i64, code: &str) -> MoneyE5 {
    let saturated = if minor < 0 { i64::MIN } else { i64::MAX };
    let amount_e5 = match Currency::parse(code) {
        Ok(currency) => Money::new(minor, currency).to_e5().unwrap_or(saturated),
        Err(_) => minor.checked_mul(1_000).unwrap_or(saturated),
    };
    MoneyE5 {
        amount_e5,
        currency_code: code.to_owned(),
    }
}

fn amount(minor: i64, code: &str) -> Amount {
    Amount {
        gross: e5(minor, code),
        net: None,
        tax: None,
        is_tax_inclusive: None,
    }
}

fn split_name(name: &str) -> (String, Option<String>) {
    let name = name.trim();
    match name.split_once(' ') {
        Some((first, last)) => (first.to_owned(), Some(last.trim().to_owned())),
        None => (name.to_owned(), None),
    }
}

/// A PIN like `123 45 678`, from a random uuid.
fn phone_code() -> String {
    let n = Uuid::new_v4().as_u128() % 100_000_000;
    let digits = format!("{n:08}");
    format!("{} {} {}", &digits[0..3], &digits[3..5], &digits[5..8])
}

/// The last five hex digits of the id, upper-case (Uber's `display_id`).
fn display_id(id: &str) -> String {
    let hex: String = id.chars().filter(char::is_ascii_hexdigit).collect();
    hex[hex.len().saturating_sub(5)..].to_ascii_uppercase()
}

fn not_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.trim().is_empty())
}

fn classic_item(item: &SampleItem, code: &str, eater_id: Option<&str>, top: bool) -> ClassicItem {
    let unit = item.unit_with_modifiers_minor();
    let removed = !top && item.quantity == 0;
    ClassicItem {
        id: item.plu.clone(),
        instance_id: top.then(|| Uuid::new_v4().to_string()),
        title: item.name.clone(),
        external_data: Some(item.plu.clone()),
        quantity: item.quantity,
        default_quantity: Some(if removed { 1 } else { 0 }),
        price: ClassicItemPrice {
            unit_price: classic_money(unit, code),
            total_price: classic_money(unit.saturating_mul(item.quantity), code),
            base_unit_price: classic_money(item.unit_price_minor, code),
            base_total_price: Some(classic_money(
                item.unit_price_minor.saturating_mul(item.quantity),
                code,
            )),
        },
        special_instructions: not_empty(&item.notes),
        special_requests: None,
        eater_id: eater_id.map(str::to_owned),
        tax_info: None,
        selected_modifier_groups: (!item.modifiers.is_empty()).then(|| {
            let selected: Vec<ClassicItem> = item
                .modifiers
                .iter()
                .filter(|m| m.quantity > 0)
                .map(|m| classic_item(m, code, None, false))
                .collect();
            let removed: Vec<ClassicItem> = item
                .modifiers
                .iter()
                .filter(|m| m.quantity == 0)
                .map(|m| classic_item(m, code, None, false))
                .collect();
            vec![ClassicModifierGroup {
                id: format!("{}-OPTIONS", item.plu),
                title: "Options".to_owned(),
                external_data: None,
                selected_items: (!selected.is_empty()).then_some(selected),
                removed_items: (!removed.is_empty()).then_some(removed),
            }]
        }),
    }
}

fn build_classic(
    sample: &SampleOrder,
    id: &str,
    store_id: &str,
    platform: &Platform,
) -> ClassicOrder {
    let code = sample.currency.as_str();
    let eater_id = Uuid::new_v4().to_string();
    let (first_name, last_name) = split_name(&sample.customer_name);
    let (order_type, delivery) = match &sample.fulfillment {
        SampleFulfillment::Pickup => ("PICK_UP", None),
        SampleFulfillment::Delivery { .. } if !platform.delivery_by_restaurant => {
            ("DELIVERY_BY_UBER", None)
        }
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            country,
        } => {
            let mut parts = address_lines.clone();
            parts.push(format!("{city} {postcode}"));
            parts.push(country.clone());
            (
                "DELIVERY_BY_RESTAURANT",
                Some(ClassicEaterDelivery {
                    location: ClassicLocation {
                        location_type: Some("STREET_ADDRESS".to_owned()),
                        street_address: Some(parts.join(", ")),
                        latitude: Some(*lat),
                        longitude: Some(*lng),
                        google_place_id: None,
                        unit_number: None,
                        business_name: None,
                        title: None,
                    },
                    delivery_type: Some("DELIVER_TO_DOOR".to_owned()),
                    notes: None,
                }),
            )
        }
    };
    let subtotal = sample.subtotal_minor();
    let money = |minor: i64| Some(classic_money(minor, code));
    ClassicOrder {
        id: id.to_owned(),
        display_id: Some(display_id(id)),
        external_reference_id: None,
        current_state: Some("CREATED".to_owned()),
        order_type: order_type.to_owned(),
        brand: Some("UBER_EATS".to_owned()),
        store: ClassicStore {
            id: store_id.to_owned(),
            name: Some("Crossdock Pizza".to_owned()),
            integrator_store_id: None,
            integrator_brand_id: None,
            merchant_store_id: None,
        },
        eater: Some(ClassicEater {
            first_name: Some(first_name.clone()),
            last_name,
            phone: Some(
                sample
                    .customer_phone
                    .clone()
                    .unwrap_or_else(|| PROXY_PHONE.to_owned()),
            ),
            phone_code: Some(phone_code()),
            delivery,
        }),
        eaters: Some(vec![ClassicEaterRef {
            id: eater_id.clone(),
            first_name: Some(first_name),
        }]),
        cart: ClassicCart {
            items: sample
                .items
                .iter()
                .map(|i| classic_item(i, code, Some(&eater_id), true))
                .collect(),
            special_instructions: not_empty(&sample.notes),
            fulfillment_issues: None,
        },
        payment: ClassicPayment {
            charges: ClassicCharges {
                total: classic_money(sample.total_minor(), code),
                sub_total: classic_money(subtotal, code),
                tax: money(0),
                total_fee: money(sample.delivery_fee_minor),
                total_fee_tax: None,
                bag_fee: None,
                delivery_fee: money(sample.delivery_fee_minor),
                delivery_fee_tax: None,
                small_order_fee: None,
                small_order_fee_tax: None,
                pick_and_pack_fee: None,
                tip: money(sample.tip_minor),
                total_promo_applied: (sample.discount_minor != 0)
                    .then(|| classic_money(sample.discount_minor, code)),
                sub_total_promo_applied: None,
                tax_promo_applied: None,
                cash_amount_due: None,
            },
            accounting: None,
            promotions: None,
        },
        packaging: Some(serde_json::json!({ "disposable_items": { "should_include": true } })),
        placed_at: now_rfc3339(TimeDelta::zero()),
        estimated_ready_for_pickup_at: Some(match sample.scheduled_for {
            Some(at) => at.to_rfc3339_opts(SecondsFormat::Secs, true),
            None => now_rfc3339(TimeDelta::minutes(15)),
        }),
        order_manager_client_id: Some(platform.client_id.clone()),
        deliveries: None,
    }
}

/// A new-API item and, into `prices`, the breakdown of it and its modifiers. `count` is
/// how many units of this item the whole order holds (its quantity times its parents').
fn v1_item(
    item: &SampleItem,
    code: &str,
    count: i64,
    prices: &mut Vec<V1PriceBreakdown>,
) -> V1Item {
    let cart_item_id = Uuid::new_v4().to_string();
    let removed = item.quantity == 0;
    if !removed {
        prices.push(V1PriceBreakdown {
            cart_item_id: cart_item_id.clone(),
            quantity: Some(V1Quantity {
                amount: count,
                unit: Some("PIECE".to_owned()),
            }),
            unit: amount(item.unit_price_minor, code),
            total: amount(item.unit_price_minor.saturating_mul(count), code),
            discount: None,
        });
    }
    let mut selected = Vec::new();
    let mut removed_items = Vec::new();
    for modifier in &item.modifiers {
        let child = v1_item(
            modifier,
            code,
            count.saturating_mul(modifier.quantity),
            prices,
        );
        if modifier.quantity == 0 {
            removed_items.push(child);
        } else {
            selected.push(child);
        }
    }
    V1Item {
        id: item.plu.clone(),
        cart_item_id,
        title: item.name.clone(),
        external_data: Some(item.plu.clone()),
        quantity: V1Quantity {
            amount: item.quantity,
            unit: Some("PIECE".to_owned()),
        },
        default_quantity: removed.then_some(V1Quantity {
            amount: 1,
            unit: Some("PIECE".to_owned()),
        }),
        customer_request: not_empty(&item.notes).map(|notes| V1CustomerRequest {
            special_instructions: Some(notes),
            allergy: None,
        }),
        selected_modifier_groups: (!item.modifiers.is_empty()).then(|| {
            vec![V1ModifierGroup {
                id: format!("{}-OPTIONS", item.plu),
                title: "Options".to_owned(),
                external_data: None,
                selected_items: (!selected.is_empty()).then_some(selected),
                removed_items: (!removed_items.is_empty()).then_some(removed_items),
            }]
        }),
    }
}

fn build_v1(
    sample: &SampleOrder,
    id: &str,
    store_id: &str,
    platform: &Platform,
) -> V1OrderResponse {
    let code = sample.currency.as_str();
    let (first_name, last_name) = split_name(&sample.customer_name);
    let (fulfillment_type, deliveries) = match &sample.fulfillment {
        SampleFulfillment::Pickup => ("PICKUP", None),
        SampleFulfillment::Delivery { .. } if !platform.delivery_by_restaurant => {
            ("DELIVERY_BY_UBER", None)
        }
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            country,
        } => (
            "DELIVERY_BY_MERCHANT",
            Some(vec![V1Delivery {
                id: Some(Uuid::new_v4().to_string()),
                status: Some("SCHEDULED".to_owned()),
                location: Some(V1Location {
                    street_address_line_one: address_lines.first().cloned(),
                    street_address_line_two: (address_lines.len() > 1)
                        .then(|| address_lines[1..].join(", ")),
                    city: Some(city.clone()),
                    postal_code: Some(postcode.clone()),
                    country_iso2: Some(country.clone()),
                    latitude: Some(*lat),
                    longitude: Some(*lng),
                }),
                instructions: None,
            }]),
        ),
    };
    let mut prices = Vec::new();
    let items = sample
        .items
        .iter()
        .map(|i| v1_item(i, code, i.quantity, &mut prices))
        .collect();
    let ready_at = match sample.scheduled_for {
        Some(at) => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => now_rfc3339(TimeDelta::minutes(15)),
    };
    let fee_details = (sample.delivery_fee_minor != 0).then(|| {
        vec![V1FeeDetail {
            fee_type: "DELIVERY_FEE".to_owned(),
            amount: amount(sample.delivery_fee_minor, code),
        }]
    });
    V1OrderResponse {
        order: V1Order {
            id: id.to_owned(),
            display_id: Some(display_id(id)),
            external_id: None,
            state: Some("OFFERED".to_owned()),
            status: Some(
                if sample.scheduled_for.is_some() {
                    "SCHEDULED"
                } else {
                    "ACTIVE"
                }
                .to_owned(),
            ),
            preparation_status: None,
            ordering_platform: Some("UBER_EATS".to_owned()),
            fulfillment_type: fulfillment_type.to_owned(),
            failure_info: None,
            store: V1Store {
                id: store_id.to_owned(),
                name: Some("Crossdock Pizza".to_owned()),
                external_reference_id: None,
            },
            created_time: now_rfc3339(TimeDelta::zero()),
            scheduled_order_target_delivery_time_range: sample.scheduled_for.map(|at| {
                V1TimeRange {
                    start_time: at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    end_time: Some(
                        (at + TimeDelta::minutes(30)).to_rfc3339_opts(SecondsFormat::Secs, true),
                    ),
                }
            }),
            preparation_time: Some(V1PreparationTime {
                ready_for_pickup_time_secs: Some(900),
                source: Some("PREDICTED_BY_UBER".to_owned()),
                ready_for_pickup_time: Some(ready_at),
            }),
            customers: Some(vec![V1Customer {
                id: Some(Uuid::new_v4().to_string()),
                name: Some(V1Name {
                    display_name: Some(sample.customer_name.trim().to_owned()),
                    first_name: Some(first_name),
                    last_name,
                }),
                contact: Some(V1Contact {
                    phone: Some(V1Phone {
                        number: Some(
                            sample
                                .customer_phone
                                .clone()
                                .unwrap_or_else(|| PROXY_PHONE.to_owned()),
                        ),
                        pin_code: Some(phone_code()),
                    }),
                }),
                is_primary_customer: Some(true),
            }]),
            deliveries,
            carts: vec![V1Cart {
                id: Some(Uuid::new_v4().to_string()),
                special_instructions: not_empty(&sample.notes),
                items,
            }],
            payment: V1Payment {
                payment_detail: V1PaymentDetail {
                    order_total: Amount {
                        gross: e5(sample.total_minor(), code),
                        net: Some(e5(sample.total_minor(), code)),
                        tax: Some(e5(0, code)),
                        is_tax_inclusive: Some(false),
                    },
                    item_charges: V1ItemCharges {
                        total: amount(sample.subtotal_minor(), code),
                        price_breakdown: prices,
                    },
                    fees: Some(V1Fees {
                        total: amount(sample.delivery_fee_minor, code),
                        details: fee_details,
                    }),
                    tips: Some(V1Total {
                        total: amount(sample.tip_minor, code),
                    }),
                    promotions: (sample.discount_minor != 0).then(|| V1Total {
                        total: amount(sample.discount_minor, code),
                    }),
                },
            },
        },
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/oauth/v2/token", post(token))
        .route("/v2/eats/order/{id}", get(get_classic))
        .route("/v1/delivery/order/{id}", get(get_v1))
        .route(
            "/v1/eats/orders/{id}/accept_pos_order",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::ClassicAccept)),
        )
        .route(
            "/v1/eats/orders/{id}/deny_pos_order",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::ClassicDeny)),
        )
        .route(
            "/v1/eats/orders/{id}/cancel",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::ClassicCancel)),
        )
        .route(
            "/v1/eats/orders/{id}/restaurantdelivery/status",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::ClassicDeliveryStatus)),
        )
        .route(
            "/v1/delivery/order/{id}/accept",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::V1Accept)),
        )
        .route(
            "/v1/delivery/order/{id}/deny",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::V1Deny)),
        )
        .route(
            "/v1/delivery/order/{id}/ready",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::V1Ready)),
        )
        .route(
            "/v1/delivery/order/{id}/cancel",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::V1Cancel)),
        )
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/orders", post(sim_place))
        .with_state(inner)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            message: message.into(),
            code: code.to_owned(),
        }),
    )
        .into_response()
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Invalid OAuth 2.0 credentials provided.",
    )
}

async fn token(State(inner): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    if field("client_id") != inner.platform.client_id
        || field("client_secret") != inner.platform.client_secret
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    let access_token = format!("IA.{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    lock(&inner.tokens).insert(
        access_token.clone(),
        Instant::now() + inner.platform.token_ttl,
    );
    axum::Json(TokenResponse {
        access_token,
        expires_in: inner.platform.token_ttl.as_secs(),
        token_type: "Bearer".to_owned(),
        scope: field("scope").to_owned(),
    })
    .into_response()
}

async fn get_classic(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !inner.token_valid(&headers) {
        return unauthorized();
    }
    inner.reads_released().await;
    if let Some(raw) = lock(&inner.raw_answers).get(&id).cloned() {
        return (StatusCode::OK, [("content-type", "application/json")], raw).into_response();
    }
    match lock(&inner.orders).get(&id) {
        Some(StoredOrder::Classic(order)) => axum::Json(order.as_ref()).into_response(),
        _ => error(StatusCode::NOT_FOUND, "not_found", "Order not found."),
    }
}

async fn get_v1(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !inner.token_valid(&headers) {
        return unauthorized();
    }
    inner.reads_released().await;
    if let Some(raw) = lock(&inner.raw_answers).get(&id).cloned() {
        return (StatusCode::OK, [("content-type", "application/json")], raw).into_response();
    }
    match lock(&inner.orders).get(&id) {
        Some(StoredOrder::V1(order)) => axum::Json(order.as_ref()).into_response(),
        _ => error(StatusCode::NOT_FOUND, "not_found", "Order not found."),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ClassicAccept,
    ClassicDeny,
    ClassicCancel,
    ClassicDeliveryStatus,
    V1Accept,
    V1Deny,
    V1Ready,
    V1Cancel,
}

impl Op {
    fn generation(self) -> Generation {
        match self {
            Op::ClassicAccept | Op::ClassicDeny | Op::ClassicCancel | Op::ClassicDeliveryStatus => {
                Generation::Classic
            }
            Op::V1Accept | Op::V1Deny | Op::V1Ready | Op::V1Cancel => Generation::V1,
        }
    }
}

/// Reads a body; the error is the message of the 400 answer.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn ok_json(value: serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

fn conflict(state: &str) -> Response {
    error(
        StatusCode::CONFLICT,
        "conflict",
        format!("Order is in state {state}."),
    )
}

fn terminal_not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "Order not found or already in a terminal state.",
    )
}

/// Every write endpoint: faults, auth, body shape, order lookup, state change, record.
async fn write(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    op: Op,
) -> Response {
    let response = answer_write(&inner, &id, &headers, &body, op).await;
    inner.calls.record(
        "POST",
        uri.path(),
        &headers,
        &body,
        response.status().as_u16(),
    );
    response
}

async fn answer_write(
    inner: &Inner,
    id: &str,
    headers: &HeaderMap,
    raw_body: &[u8],
    op: Op,
) -> Response {
    let fault = inner.faults.apply(|status| {
        if status == StatusCode::TOO_MANY_REQUESTS {
            error(status, "rate_limited", "Exceeded rate limit")
        } else {
            error(status, "injected_fault", "Simulated failure.")
        }
    });
    if let Some(response) = fault.await {
        return response;
    }
    if !inner.token_valid(headers) {
        return unauthorized();
    }
    let body = match parse_write_body(op, raw_body) {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", message),
    };
    let mut orders = lock(&inner.orders);
    let Some(order) = orders
        .get_mut(id)
        .filter(|o| o.generation() == op.generation())
    else {
        return error(StatusCode::NOT_FOUND, "not_found", "Order not found.");
    };
    let before = inner.status_of(id, order);
    let response = change_order(inner, id, order, op, body);
    // Heard under the lock, so that the feed's order is the order the calls were taken in.
    if response.status().is_success()
        && let Some(order) = orders.get(id)
    {
        let after = inner.status_of(id, order);
        if after != before {
            inner.feed.heard(id, after);
        }
    }
    response
}

/// A write call's change to a known order of its API generation, and its answer.
fn change_order(
    inner: &Inner,
    id: &str,
    order: &mut StoredOrder,
    op: Op,
    body: WriteBody,
) -> Response {
    match (op, order) {
        (Op::ClassicAccept, StoredOrder::Classic(o)) => {
            let state = o.current_state.clone().unwrap_or_default();
            match state.as_str() {
                "CREATED" | "ACCEPTED" => {
                    o.current_state = Some("ACCEPTED".to_owned());
                    if let WriteBody::Accept(accept) = body {
                        o.external_reference_id = accept.external_reference_id;
                    }
                    no_content()
                }
                _ => conflict(&state),
            }
        }
        (Op::ClassicDeny, StoredOrder::Classic(o)) => {
            let state = o.current_state.clone().unwrap_or_default();
            match state.as_str() {
                "CREATED" | "DENIED" => {
                    o.current_state = Some("DENIED".to_owned());
                    no_content()
                }
                _ => conflict(&state),
            }
        }
        (Op::ClassicCancel, StoredOrder::Classic(o)) => {
            match o.current_state.as_deref().unwrap_or_default() {
                "CANCELED" | "DENIED" | "FINISHED" => terminal_not_found(),
                _ => {
                    o.current_state = Some("CANCELED".to_owned());
                    no_content()
                }
            }
        }
        (Op::ClassicDeliveryStatus, StoredOrder::Classic(o)) => {
            if o.order_type != "DELIVERY_BY_RESTAURANT" {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Order is not delivered by the restaurant.",
                );
            }
            if matches!(o.current_state.as_deref(), Some("CANCELED" | "DENIED")) {
                return conflict(o.current_state.as_deref().unwrap_or_default());
            }
            if let WriteBody::DeliveryStatus(status) = &body {
                if status.status == "delivered" {
                    o.current_state = Some("FINISHED".to_owned());
                }
                lock(&inner.delivery_status).insert(id.to_owned(), status.status.clone());
            }
            no_content()
        }
        (Op::V1Accept, StoredOrder::V1(o)) => {
            let state = o.order.state.clone().unwrap_or_default();
            match state.as_str() {
                "OFFERED" | "ACCEPTED" => {
                    o.order.state = Some("ACCEPTED".to_owned());
                    ok_json(serde_json::json!({}))
                }
                _ => conflict(&state),
            }
        }
        (Op::V1Deny, StoredOrder::V1(o)) => {
            let state = o.order.state.clone().unwrap_or_default();
            match state.as_str() {
                "OFFERED" => {
                    o.order.state = Some("FAILED".to_owned());
                    o.order.failure_info = Some(V1FailureInfo {
                        reason: Some("POS_DENIED".to_owned()),
                    });
                    ok_json(serde_json::json!({}))
                }
                _ => conflict(&state),
            }
        }
        (Op::V1Ready, StoredOrder::V1(o)) => {
            let state = o.order.state.clone().unwrap_or_default();
            match state.as_str() {
                "FAILED" | "SUCCEEDED" => conflict(&state),
                _ => {
                    o.order.preparation_status = Some("READY_FOR_HANDOFF".to_owned());
                    ok_json(serde_json::json!({ "status": "ok" }))
                }
            }
        }
        (Op::V1Cancel, StoredOrder::V1(o)) => match o.order.state.as_deref().unwrap_or_default() {
            "FAILED" | "SUCCEEDED" => terminal_not_found(),
            _ => {
                o.order.state = Some("FAILED".to_owned());
                o.order.failure_info = Some(V1FailureInfo {
                    reason: Some("MERCHANT_CANCELLED".to_owned()),
                });
                ok_json(serde_json::json!({}))
            }
        },
        _ => error(StatusCode::NOT_FOUND, "not_found", "Order not found."),
    }
}

/// A write call's body, read once: the parts the simulator acts on.
enum WriteBody {
    Accept(AcceptPosOrder),
    DeliveryStatus(RestaurantDeliveryStatus),
    /// Checked for shape only.
    Other,
}

/// Reads a write call's body, refusing one that is not the shape Uber documents for the
/// call (the error is the message of the 400 answer).
fn parse_write_body(op: Op, body: &[u8]) -> Result<WriteBody, String> {
    match op {
        Op::ClassicAccept => parse_body(body).map(WriteBody::Accept),
        Op::ClassicDeny => parse_body::<DenyPosOrder>(body).map(|_| WriteBody::Other),
        Op::ClassicCancel => parse_body::<CancelOrder>(body).map(|_| WriteBody::Other),
        Op::ClassicDeliveryStatus => {
            let status: RestaurantDeliveryStatus = parse_body(body)?;
            match status.status.as_str() {
                "started" | "arriving" | "delivered" => Ok(WriteBody::DeliveryStatus(status)),
                other => Err(format!("Unknown status `{other}`.")),
            }
        }
        Op::V1Accept => parse_body::<V1Accept>(body).map(|_| WriteBody::Other),
        Op::V1Deny => parse_body::<V1Deny>(body).map(|_| WriteBody::Other),
        Op::V1Ready => {
            parse_body::<serde_json::Map<String, serde_json::Value>>(body).map(|_| WriteBody::Other)
        }
        Op::V1Cancel => parse_body::<V1Cancel>(body).map(|_| WriteBody::Other),
    }
}

async fn sim_calls(State(inner): State<Shared>) -> Response {
    axum::Json(inner.calls.all()).into_response()
}

async fn sim_place(State(inner): State<Shared>, body: Bytes) -> Response {
    let sample: SampleOrder = match serde_json::from_slice(&body) {
        Ok(sample) => sample,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("Body is not a SampleOrder: {e}"),
            );
        }
    };
    let placed = inner.place(&sample, inner.platform.api, true).await;
    ok_json(serde_json::json!({
        "external_order_id": placed.external_order_id,
        "event_id": placed.event_id,
        "webhook_status": placed.answer.status,
        "webhook_body": placed.answer.body,
    }))
}
