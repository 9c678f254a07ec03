//! A simulator of DoorDash Marketplace: an HTTP server that behaves like DoorDash's
//! documented API, for tests, the demo and the benchmark.
//!
//! It sends (to the hub, with the static `Authorization` token DoorDash sends):
//!
//! - the Orders webhook, `{"event": {"type": "OrderCreate", "status": "NEW"}, "order": {…}}`,
//!   to `{hub_webhook_url}`. The hub's answer matters as it does on DoorDash: **200**
//!   confirms the order at once (synchronous confirmation), **202** leaves it waiting for
//!   the asynchronous confirmation, anything else fails it (a POS order error);
//! - the Order Canceled webhook to `{hub_webhook_url}/cancel`;
//! - the Dasher Status webhook to `{hub_webhook_url}/dasher`.
//!
//! It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `PATCH /marketplace/api/v1/orders/{id}` | the confirmation: `success` confirms, `fail` (with `failure_reason`) fails; 400 when already processed or expired |
//! | `PATCH /marketplace/api/v1/orders/{id}/events/order_ready_for_pickup` | the ready signal of a confirmed order (repeatable) |
//! | `PATCH /marketplace/api/v1/orders/{id}/cancellation` | merchant cancellation of a confirmed order (403 unless allowlisted) |
//! | `GET /_sim/calls` | the call log as JSON |
//! | `POST /_sim/orders` | body: a [`SampleOrder`]; places it like [`DoorDashSim::place_order`] |
//!
//! Every API call needs a valid DoorDash JWT ([`crate::jwt::verify`]: header, HS256 under
//! the decoded signing secret, `aud`/`iss`/`kid`, `exp` ≤ 30 min after `iat`) and
//! `auth-version: v2`, else 401. Calls above the configured rate get 429 with
//! `Retry-After`; an unknown order 404; a body of the wrong shape 400 — all in DoorDash's
//! error shape `{"code", "message"}`, answered 202 on success. Scripted [`Faults`] apply
//! before anything else. Each call is recorded in the [`CallLog`] with its answer. A call
//! taken (202) that changes the order's status is told to the [`StatusFeed`]
//! ([`DoorDashSim::status_feed`]).
//!
//! An order not confirmed within `confirm_deadline` (DoorDash: "3–8 minutes"; default 3)
//! fails: its state becomes [`OrderState::TimedOut`], and a late confirmation gets 400
//! "Order has expired".
//!
//! Orders are built from a platform-neutral [`SampleOrder`] in DoorDash's wire format:
//! integer cents and no currency (the store's currency is the hub's configuration), items
//! in categories named after the PLU's prefix (consecutive items of one category share
//! it), each item's modifiers as options of one "Options" extra (recursively; a modifier
//! of quantity 0 is left out: DoorDash has no removed options), `delivery_fee` for
//! deliveries, the tip as `tip_amount` for self-delivery and `merchant_tip_amount` for
//! pickup (a Dasher's tip is not sent to the store), no tax, and no promotion: DoorDash
//! does not send fully DoorDash-funded promotions, so the sample's discount is invisible
//! to the store, as it is on DoorDash.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimClock, SimServer, StatusFeed,
    TokenBucket, WebhookAnswer, lock, lost_on_the_way, post_webhook,
};
use crossdock_model::Status;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::wire::{CancelOrder, ConfirmOrder, ErrorBody, OrderReady};
use crate::{
    API_PREFIX, DEV_DEVELOPER_ID, DEV_KEY_ID, DEV_SIGNING_SECRET, DEV_WEBHOOK_AUTHORIZATION,
    EVENT_CANCEL, EVENT_DASHER, READY_EVENT, jwt,
};

/// The store used when a sample order names none (Crossdock Pizza Chelsea).
pub const DEFAULT_STORE_ID: &str = "xd-nyc-001";
/// The consumer's phone when a sample has none (DoorDash passes a masked number).
pub const CONSUMER_PHONE: &str = "+1 (646) 555-0199";
/// DoorDash's error codes of a failed confirmation (`errors[].code`).
pub const FAILURE_CODES: &[&str] = &[
    "ITEM_OUT_OF_STOCK",
    "STORE_CLOSED",
    "POS_OFFLINE",
    "CAPACITY_THROTTLING",
    "STORE_HOURS_ISSUE",
    "INVALID_ORDER",
    "STALE_PICKUP_TIME",
    "TIME_OUT",
    "INTERNAL_ERROR",
    "CONNECTIVITY_ISSUE",
    "ORDER_ONLINE_DISABLED",
    "OTHER",
];
/// DoorDash's merchant cancellation reasons.
pub const CANCEL_REASONS: &[&str] = &["ITEM_OUT_OF_STOCK", "STORE_CLOSED", "KITCHEN_BUSY", "OTHER"];
/// The Dasher statuses DoorDash reports, in order.
pub const DASHER_STATUSES: &[&str] = &[
    "dasher_confirmed",
    "arriving_at_store",
    "arrived_at_store",
    "dasher_out_for_delivery",
    "dropoff",
];

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The hub's Orders webhook, e.g. `http://127.0.0.1:8080/webhooks/doordash`; the
    /// cancel and Dasher webhooks go to `…/cancel` and `…/dasher` under it.
    pub hub_webhook_url: String,
    /// The `Authorization` value sent with every webhook.
    pub webhook_authorization: String,
    /// The JWT's expected `iss`.
    pub developer_id: String,
    /// The JWT's expected `kid`.
    pub key_id: String,
    /// The access key's signing secret (base64url), checked on every call.
    pub signing_secret: String,
    /// How long an order waits for its confirmation before it fails.
    pub confirm_deadline: Duration,
    /// API calls allowed per second (sustained) and in a burst; more get 429.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// Delivery samples become self-delivery (`mx_fleet_delivery`, address sent) instead
    /// of Dasher delivery (`dx_delivery`).
    pub delivery_by_merchant: bool,
    /// Whether the integration is allowlisted for merchant cancellation (403 otherwise).
    pub cancellation_allowlisted: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: "http://127.0.0.1:8080/webhooks/doordash".to_owned(),
            webhook_authorization: DEV_WEBHOOK_AUTHORIZATION.to_owned(),
            developer_id: DEV_DEVELOPER_ID.to_owned(),
            key_id: DEV_KEY_ID.to_owned(),
            signing_secret: DEV_SIGNING_SECRET.to_owned(),
            confirm_deadline: Duration::from_secs(180),
            rate_per_second: 20,
            rate_burst: 40,
            delivery_by_merchant: false,
            cancellation_allowlisted: true,
        }
    }
}

/// Where an order stands on DoorDash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Sent, answered 202: waiting for the confirmation.
    AwaitingConfirmation,
    Confirmed,
    ReadyForPickup,
    /// The Dasher left the store (`dasher_out_for_delivery`).
    OutForDelivery,
    /// The Dasher dropped it off (`dropoff`).
    Delivered,
    /// The merchant's confirmation said `fail`.
    Failed,
    /// Not confirmed within the deadline.
    TimedOut,
    /// The webhook was not answered 2xx (a POS order error).
    PosError,
    /// Cancelled on DoorDash (customer, support, Dasher).
    Cancelled,
    /// Cancelled by the merchant (`/cancellation`).
    CancelledByMerchant,
}

impl OrderState {
    /// The unified status this state amounts to.
    pub fn status(self) -> Status {
        match self {
            OrderState::AwaitingConfirmation => Status::Received,
            OrderState::Confirmed => Status::Accepted,
            OrderState::ReadyForPickup => Status::Ready,
            OrderState::OutForDelivery => Status::PickedUp,
            OrderState::Delivered => Status::Delivered,
            OrderState::Failed => Status::Rejected,
            OrderState::TimedOut | OrderState::PosError => Status::Failed,
            OrderState::Cancelled | OrderState::CancelledByMerchant => Status::Cancelled,
        }
    }

    fn confirmed(self) -> bool {
        matches!(
            self,
            OrderState::Confirmed | OrderState::ReadyForPickup | OrderState::OutForDelivery
        )
    }
}

/// An order the simulator placed, and what the hub answered to its webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub external_order_id: String,
    pub answer: WebhookAnswer,
}

#[derive(Debug, Clone)]
struct StoredOrder {
    /// The Orders webhook body, byte for byte (for resends).
    webhook: Vec<u8>,
    store_id: String,
    is_asap: bool,
    sent_at: Instant,
    state: OrderState,
    /// Our order id, from the confirmation (`merchant_supplied_id`).
    client_order_id: Option<String>,
    confirmation: Option<ConfirmOrder>,
    cancellation: Option<CancelOrder>,
}

/// What the simulator plays, fixed at start.
#[derive(Debug)]
struct Platform {
    webhook_authorization: String,
    developer_id: String,
    key_id: String,
    signing_key: Vec<u8>,
    confirm_deadline: Duration,
    delivery_by_merchant: bool,
    cancellation_allowlisted: bool,
}

#[derive(Debug)]
struct Inner {
    platform: Platform,
    hub_webhook_url: Mutex<String>,
    http: reqwest::Client,
    orders: Mutex<HashMap<String, StoredOrder>>,
    /// DoorDash's rate limit on API calls.
    rate_limit: TokenBucket,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
    clock: SimClock,
}

/// A running DoorDash simulator.
#[derive(Debug)]
pub struct DoorDashSim {
    inner: Arc<Inner>,
    server: SimServer,
}

impl DoorDashSim {
    /// Starts the simulator's HTTP server. Fails on an undecodable signing secret.
    pub async fn start(config: SimConfig) -> std::io::Result<DoorDashSim> {
        let signing_key = jwt::decode_signing_secret(&config.signing_secret)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let inner = Arc::new(Inner {
            platform: Platform {
                webhook_authorization: config.webhook_authorization,
                developer_id: config.developer_id,
                key_id: config.key_id,
                signing_key,
                confirm_deadline: config.confirm_deadline,
                delivery_by_merchant: config.delivery_by_merchant,
                cancellation_allowlisted: config.cancellation_allowlisted,
            },
            hub_webhook_url: Mutex::new(config.hub_webhook_url),
            http: reqwest::Client::new(),
            orders: Mutex::new(HashMap::new()),
            rate_limit: TokenBucket::new(
                f64::from(config.rate_per_second.max(1)),
                f64::from(config.rate_burst.max(1)),
                Instant::now(),
            ),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
            clock: SimClock::default(),
        });
        let server = SimServer::serve(router(inner.clone()), config.bind).await?;
        tracing::info!(base_url = %server.base_url(), "DoorDash simulator listening.");
        Ok(DoorDashSim { inner, server })
    }

    /// `http://host:port`: the adapter's `base_url`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Points webhooks somewhere else (the hub is often started after the simulator).
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        *lock(&self.inner.hub_webhook_url) = url.into();
    }

    /// Places an order and posts the Orders webhook to the hub.
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample, true).await
    }

    /// Places an order but loses its webhook on the way: the hub never receives it (the
    /// answer is [`lost_on_the_way`]); [`DoorDashSim::resend_order`] delivers it, as
    /// DoorDash's retry would.
    pub async fn place_order_lost(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample, false).await
    }

    /// Posts an order's webhook again, byte for byte (DoorDash retrying). `None` for an
    /// unknown order.
    pub async fn resend_order(&self, external_order_id: &str) -> Option<WebhookAnswer> {
        let body = lock(&self.inner.orders)
            .get(external_order_id)
            .map(|o| o.webhook.clone())?;
        let answer = self.inner.send(None, body).await;
        self.inner
            .take_webhook_answer(external_order_id, answer.status);
        Some(answer)
    }

    /// Posts any body to the Orders endpoint (`event` `None`) or an event endpoint
    /// (`cancel`, `dasher`), with the given `Authorization` (none if `None`): for forged
    /// and malformed webhook tests.
    pub async fn send_raw(
        &self,
        event: Option<&str>,
        body: Vec<u8>,
        authorization: Option<String>,
    ) -> WebhookAnswer {
        self.inner.post(event, body, authorization).await
    }

    /// Cancels an order on DoorDash's side (customer or support) and posts the Order
    /// Canceled webhook. DoorDash sends none for an order that already failed; an unknown
    /// id is sent anyway (the hub must keep a tombstone).
    pub async fn cancel_order(&self, external_order_id: &str) -> Option<WebhookAnswer> {
        let (client_order_id, store_id, is_asap) = {
            let mut orders = lock(&self.inner.orders);
            match orders.get_mut(external_order_id) {
                Some(order) => {
                    self.inner.expire(order);
                    if matches!(
                        order.state,
                        OrderState::Failed | OrderState::TimedOut | OrderState::PosError
                    ) {
                        return None;
                    }
                    order.state = OrderState::Cancelled;
                    (
                        order.client_order_id.clone(),
                        order.store_id.clone(),
                        order.is_asap,
                    )
                }
                None => (None, DEFAULT_STORE_ID.to_owned(), true),
            }
        };
        let body = json!({
            "external_order_id": external_order_id,
            "client_order_id": client_order_id,
            "store": { "provider_type": "crossdock", "merchant_supplied_id": store_id },
            "is_asap": is_asap,
        });
        Some(
            self.inner
                .send(Some(EVENT_CANCEL), body.to_string().into_bytes())
                .await,
        )
    }

    /// A Dasher status for an order, posted to the Dasher Status webhook;
    /// `dasher_out_for_delivery` and `dropoff` move the order on DoorDash's side too.
    pub async fn dasher_status(&self, external_order_id: &str, status: &str) -> WebhookAnswer {
        let client_order_id = {
            let mut orders = lock(&self.inner.orders);
            match orders.get_mut(external_order_id) {
                Some(order) => {
                    // Only a confirmed order has a Dasher on it.
                    if order.state.confirmed() {
                        match status {
                            "dasher_out_for_delivery" => order.state = OrderState::OutForDelivery,
                            "dropoff" => order.state = OrderState::Delivered,
                            _ => {}
                        }
                    }
                    order.client_order_id.clone()
                }
                None => None,
            }
        };
        let body = json!({
            "dasher_status": status,
            "external_order_id": external_order_id,
            "client_order_id": client_order_id,
            "created_at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "dasher": {
                "first_name": "Sam",
                "last_name": "D",
                "phone_number": "+1 (855) 973-1040",
            },
        });
        self.inner
            .send(Some(EVENT_DASHER), body.to_string().into_bytes())
            .await
    }

    /// The order's state on DoorDash (after applying the confirmation deadline).
    pub fn order_state(&self, external_order_id: &str) -> Option<OrderState> {
        let mut orders = lock(&self.inner.orders);
        let order = orders.get_mut(external_order_id)?;
        self.inner.expire(order);
        Some(order.state)
    }

    /// The order's state as a unified status.
    pub fn status(&self, external_order_id: &str) -> Option<Status> {
        self.order_state(external_order_id).map(OrderState::status)
    }

    /// The confirmation the hub sent for the order, if any.
    pub fn confirmation(&self, external_order_id: &str) -> Option<ConfirmOrder> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.confirmation.clone())
    }

    /// The merchant cancellation the hub sent for the order, if any.
    pub fn cancellation(&self, external_order_id: &str) -> Option<CancelOrder> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.cancellation.clone())
    }

    /// The Orders webhook body sent for the order.
    pub fn webhook_body(&self, external_order_id: &str) -> Option<Vec<u8>> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .map(|o| o.webhook.clone())
    }

    /// Every API call the hub made.
    pub fn calls(&self) -> &CallLog {
        &self.inner.calls
    }

    /// Scripted misbehaviour of API calls.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The statuses DoorDash heard: every API call taken (answered 202) that changed what
    /// [`DoorDashSim::status`] reads, with what it reads right after, by order id. The
    /// hub's answer to the Orders webhook is not a call: a synchronous confirmation (200)
    /// is not heard.
    pub fn status_feed(&self) -> &StatusFeed {
        &self.inner.feed
    }

    /// The simulator's clock: advance it to let deadlines and rate-limit windows pass.
    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Placing orders and sending webhooks
// ---------------------------------------------------------------------------------------

impl Inner {
    /// Tells the feed of a call answered `response` that moved order `id` from `before` to
    /// `after`, if it was taken and the status changed.
    fn hear(&self, id: &str, before: Status, after: Status, response: &Response) {
        if response.status().is_success() && after != before {
            self.feed.heard(id, after);
        }
    }

    /// Applies the confirmation deadline.
    fn expire(&self, order: &mut StoredOrder) {
        if order.state == OrderState::AwaitingConfirmation
            && self.clock.since(order.sent_at) > self.platform.confirm_deadline
        {
            order.state = OrderState::TimedOut;
        }
    }

    /// Reads the hub's answer to an order's webhook: a 200 is DoorDash's synchronous
    /// confirmation, another 2xx leaves the order awaiting its confirmation, anything else
    /// is a POS error. A retry that gets a 2xx after an error puts the order back in play,
    /// as DoorDash's own webhook retries do.
    fn take_webhook_answer(&self, id: &str, status: u16) {
        let mut orders = lock(&self.orders);
        let Some(order) = orders.get_mut(id) else {
            return;
        };
        if !matches!(
            order.state,
            OrderState::AwaitingConfirmation | OrderState::PosError
        ) {
            return;
        }
        match status {
            200 => order.state = OrderState::Confirmed,
            201..=299 => order.state = OrderState::AwaitingConfirmation,
            _ if order.state == OrderState::AwaitingConfirmation => {
                order.state = OrderState::PosError;
            }
            _ => {}
        }
    }

    async fn place(&self, sample: &SampleOrder, deliver: bool) -> PlacedOrder {
        let id = Uuid::new_v4().to_string();
        let order = build_order(sample, &id, self.platform.delivery_by_merchant, Utc::now());
        let webhook = json!({
            "event": { "type": "OrderCreate", "status": "NEW" },
            "order": order,
        })
        .to_string()
        .into_bytes();
        let store_id = sample
            .store_ref
            .clone()
            .unwrap_or_else(|| DEFAULT_STORE_ID.to_owned());
        lock(&self.orders).insert(
            id.clone(),
            StoredOrder {
                webhook: webhook.clone(),
                store_id,
                is_asap: sample.scheduled_for.is_none(),
                sent_at: self.clock.now(),
                state: OrderState::AwaitingConfirmation,
                client_order_id: None,
                confirmation: None,
                cancellation: None,
            },
        );
        let answer = if deliver {
            let answer = self.send(None, webhook).await;
            self.take_webhook_answer(&id, answer.status);
            answer
        } else {
            lost_on_the_way()
        };
        tracing::info!(
            external_order_id = %id,
            webhook_status = answer.status,
            "DoorDash simulator placed an order."
        );
        PlacedOrder {
            external_order_id: id,
            answer,
        }
    }

    async fn send(&self, event: Option<&str>, body: Vec<u8>) -> WebhookAnswer {
        let authorization = Some(self.platform.webhook_authorization.clone());
        self.post(event, body, authorization).await
    }

    async fn post(
        &self,
        event: Option<&str>,
        body: Vec<u8>,
        authorization: Option<String>,
    ) -> WebhookAnswer {
        let base = lock(&self.hub_webhook_url).clone();
        let url = match event {
            Some(event) => format!("{}/{event}", base.trim_end_matches('/')),
            None => base,
        };
        let headers: Vec<(String, String)> = authorization
            .map(|value| ("Authorization".to_owned(), value))
            .into_iter()
            .collect();
        post_webhook(&self.http, &url, &headers, "application/json", body).await
    }

    /// Takes one token of the rate limit; `false` when none is left.
    fn take_token(&self) -> bool {
        self.rate_limit.take(self.clock.now())
    }

    /// Checks the JWT and `auth-version`; the error is the 401 message.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), String> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or("missing `Authorization: Bearer <JWT>`")?;
        if headers.get("auth-version").and_then(|v| v.to_str().ok()) != Some(jwt::AUTH_VERSION) {
            return Err(format!(
                "missing or wrong `auth-version` header (expected `{}`)",
                jwt::AUTH_VERSION
            ));
        }
        jwt::verify(
            token,
            &self.platform.signing_key,
            &self.platform.developer_id,
            &self.platform.key_id,
            Utc::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Building DoorDash orders from samples
// ---------------------------------------------------------------------------------------

/// The menu category of a PLU, from its prefix (`PZ-…` is a pizza).
fn category_of(plu: &str) -> (&'static str, &'static str) {
    match plu.split('-').next().unwrap_or_default() {
        "PZ" => ("cat-pizza", "Pizzas"),
        "SD" => ("cat-sides", "Sides"),
        "DR" => ("cat-drinks", "Drinks"),
        "DS" => ("cat-desserts", "Desserts"),
        _ => ("cat-menu", "Menu"),
    }
}

fn option(item: &SampleItem) -> Value {
    json!({
        "name": item.name,
        "merchant_supplied_id": item.plu,
        "price": item.unit_price_minor,
        "quantity": item.quantity,
        "line_option_id": Uuid::new_v4().to_string(),
        "extras": extras(item),
    })
}

/// An item's modifiers as one "Options" extra (none when it has no modifiers).
fn extras(item: &SampleItem) -> Vec<Value> {
    let options: Vec<Value> = item
        .modifiers
        .iter()
        .filter(|m| m.quantity > 0)
        .map(option)
        .collect();
    if options.is_empty() {
        return Vec::new();
    }
    vec![json!({
        "merchant_supplied_id": format!("{}-options", item.plu),
        "name": "Options",
        "options": options,
    })]
}

fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(' ') {
        Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    }
}

/// A six-digit short code, from a uuid.
fn short_code() -> String {
    format!("{:06}", Uuid::new_v4().as_u128() % 1_000_000)
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// DoorDash's order (the `order` of the Orders webhook) for `sample`, as of `now`.
pub fn build_order(
    sample: &SampleOrder,
    id: &str,
    delivery_by_merchant: bool,
    now: DateTime<Utc>,
) -> Value {
    let mut categories: Vec<Value> = Vec::new();
    let mut current: Option<&'static str> = None;
    for item in &sample.items {
        let (category_id, category_name) = category_of(&item.plu);
        let line = json!({
            "name": item.name,
            "merchant_supplied_id": item.plu,
            "price": item.unit_price_minor,
            "quantity": item.quantity,
            "consumer_name": split_name(&sample.customer_name).0,
            "special_instructions": item.notes.clone().unwrap_or_default(),
            "line_item_id": Uuid::new_v4().to_string(),
            "extras": extras(item),
        });
        match categories.last_mut() {
            Some(category) if current == Some(category_id) => {
                if let Some(items) = category["items"].as_array_mut() {
                    items.push(line);
                }
            }
            _ => {
                categories.push(json!({
                    "merchant_supplied_id": category_id,
                    "name": category_name,
                    "items": [line],
                }));
                current = Some(category_id);
            }
        }
    }
    let (first_name, last_name) = split_name(&sample.customer_name);
    let pickup_time = sample.scheduled_for.unwrap_or(now + TimeDelta::minutes(20));
    let store_id = sample
        .store_ref
        .clone()
        .unwrap_or_else(|| DEFAULT_STORE_ID.to_owned());
    let mut order = json!({
        "id": id,
        "tax": 0,
        "subtotal": sample.subtotal_minor(),
        "estimated_pickup_time": rfc3339(pickup_time),
        "is_asap": sample.scheduled_for.is_none(),
        "order_special_instructions": sample.notes.clone().unwrap_or_default(),
        "consumer": {
            // Above 2^53, as DoorDash's consumer ids may be.
            "id": 9_007_199_254_740_993_u64 + u64::from(Uuid::new_v4().as_u128() as u16),
            "first_name": first_name,
            "last_name": last_name,
            "email": "consumer@example.com",
            "phone": sample.customer_phone.clone().unwrap_or_else(|| CONSUMER_PHONE.to_owned()),
        },
        "store": {
            "merchant_supplied_id": store_id,
            "provider_type": "crossdock",
            "timezone": "US/Eastern",
        },
        "categories": categories,
        "delivery_short_code": short_code(),
        "tax_transaction_id": Uuid::new_v4().to_string(),
        "commission_type": "regular",
        "is_tax_remitted_by_doordash": false,
        "tax_amount_remitted_by_doordash": 0,
        "experience": "DOORDASH",
        "is_plastic_ware_option_selected": false,
    });
    let fields = match &sample.fulfillment {
        SampleFulfillment::Pickup => json!({
            "is_pickup": true,
            "fulfillment_type": "pickup",
            "merchant_tip_amount": sample.tip_minor,
        }),
        SampleFulfillment::Delivery { .. } if !delivery_by_merchant => json!({
            "is_pickup": false,
            "fulfillment_type": "dx_delivery",
            "delivery_fee": sample.delivery_fee_minor,
            "taxes_on_fees": 0,
            "extra_cart_order_fee": 0,
        }),
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            country,
        } => json!({
            "is_pickup": false,
            "fulfillment_type": "mx_fleet_delivery",
            "delivery_fee": sample.delivery_fee_minor,
            "taxes_on_fees": 0,
            "extra_cart_order_fee": 0,
            "tip_amount": sample.tip_minor,
            "delivery_address": {
                "street": address_lines.first().cloned().unwrap_or_default(),
                "subpremise": address_lines.get(1..).map(|rest| rest.join(", ")).unwrap_or_default(),
                "city": city,
                "state": "",
                "zip_code": postcode,
                "country_code": country,
                "lat": lat.to_string(),
                "lng": lng.to_string(),
                "address_instructions": "",
            },
        }),
    };
    if let (Some(order), Value::Object(fields)) = (order.as_object_mut(), fields) {
        order.extend(fields);
    }
    order
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route(&format!("{API_PREFIX}/orders/{{id}}"), patch(confirm))
        .route(
            &format!("{API_PREFIX}/orders/{{id}}/events/{{event_type}}"),
            patch(order_event),
        )
        .route(
            &format!("{API_PREFIX}/orders/{{id}}/cancellation"),
            patch(cancellation),
        )
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/orders", post(sim_place))
        .with_state(inner)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            code: code.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "validation_error", message)
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "Order with provided ID does not exist",
    )
}

/// What every API call goes through before its own logic: faults, the rate limit, the
/// JWT. `Some` is the answer that ends the call.
async fn gate(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    let fault = inner.faults.apply(|status| {
        if status == StatusCode::TOO_MANY_REQUESTS {
            error(status, "rate_limited", "Request is rate limited")
        } else {
            error(status, "internal_error", "Simulated failure")
        }
    });
    if let Some(response) = fault.await {
        return Some(response);
    }
    if !inner.take_token() {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Request is rate limited",
        );
        response
            .headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from(1_u32));
        return Some(response);
    }
    if let Err(message) = inner.authenticate(headers) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            message,
        ));
    }
    None
}

/// Reads a request body; the error is the message of the 400 answer.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))
}

async fn confirm(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match gate(&inner, &headers).await {
        Some(response) => response,
        None => answer_confirm(&inner, &id, &body),
    };
    inner.calls.record(
        "PATCH",
        uri.path(),
        &headers,
        &body,
        response.status().as_u16(),
    );
    response
}

fn check_confirmation(confirmation: &ConfirmOrder) -> Result<(), String> {
    if confirmation.merchant_supplied_id.trim().is_empty() {
        return Err("merchant_supplied_id is required".to_owned());
    }
    match confirmation.order_status.as_str() {
        "success" => {}
        "fail" => {
            if confirmation
                .failure_reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
            {
                return Err("failure_reason is required when order_status is fail".to_owned());
            }
        }
        other => return Err(format!("order_status `{other}` is not success or fail")),
    }
    if let Some(prep_time) = &confirmation.prep_time {
        let parsed = DateTime::parse_from_rfc3339(prep_time)
            .map_err(|e| format!("prep_time `{prep_time}` is not a date-time: {e}"))?;
        if parsed.offset().local_minus_utc() != 0 {
            return Err(format!("prep_time `{prep_time}` must be in UTC"));
        }
    }
    if confirmation
        .pickup_instructions
        .as_deref()
        .is_some_and(|p| p.chars().count() > 128)
    {
        return Err("pickup_instructions must be at most 128 characters".to_owned());
    }
    if let Some(bad) = confirmation
        .errors
        .iter()
        .find(|e| !FAILURE_CODES.contains(&e.code.as_str()))
    {
        return Err(format!("errors[].code `{}` is not a known code", bad.code));
    }
    Ok(())
}

fn answer_confirm(inner: &Inner, id: &str, body: &[u8]) -> Response {
    let confirmation: ConfirmOrder = match parse_body(body) {
        Ok(confirmation) => confirmation,
        Err(message) => return bad_request(message),
    };
    if let Err(message) = check_confirmation(&confirmation) {
        return bad_request(message);
    }
    let mut orders = lock(&inner.orders);
    let Some(order) = orders.get_mut(id) else {
        return not_found();
    };
    inner.expire(order);
    let before = order.state.status();
    let response = match order.state {
        OrderState::AwaitingConfirmation => {
            order.state = if confirmation.order_status == "success" {
                OrderState::Confirmed
            } else {
                OrderState::Failed
            };
            order.client_order_id = Some(confirmation.merchant_supplied_id.clone());
            order.confirmation = Some(confirmation);
            accepted()
        }
        OrderState::TimedOut | OrderState::PosError => bad_request("Order has expired"),
        OrderState::Cancelled | OrderState::CancelledByMerchant => {
            bad_request("Order has already been cancelled")
        }
        _ => bad_request("Order has already been processed"),
    };
    inner.hear(id, before, order.state.status(), &response);
    response
}

async fn order_event(
    State(inner): State<Shared>,
    Path((id, event_type)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match gate(&inner, &headers).await {
        Some(response) => response,
        None => answer_event(&inner, &id, &event_type, &body),
    };
    inner.calls.record(
        "PATCH",
        uri.path(),
        &headers,
        &body,
        response.status().as_u16(),
    );
    response
}

fn answer_event(inner: &Inner, id: &str, event_type: &str, body: &[u8]) -> Response {
    if event_type != READY_EVENT {
        return bad_request(format!(
            "Unsupported event type `{event_type}`; supported: {READY_EVENT}"
        ));
    }
    let ready: OrderReady = if body.is_empty() {
        OrderReady {
            merchant_supplied_id: None,
        }
    } else {
        match parse_body(body) {
            Ok(ready) => ready,
            Err(message) => return bad_request(message),
        }
    };
    let mut orders = lock(&inner.orders);
    let Some(order) = orders.get_mut(id) else {
        return not_found();
    };
    inner.expire(order);
    if let (Some(sent), Some(known)) = (&ready.merchant_supplied_id, &order.client_order_id)
        && sent != known
    {
        return bad_request(format!(
            "merchant_supplied_id `{sent}` is not the order's (`{known}`)"
        ));
    }
    let before = order.state.status();
    let response = match order.state {
        OrderState::Confirmed => {
            order.state = OrderState::ReadyForPickup;
            accepted()
        }
        OrderState::ReadyForPickup | OrderState::OutForDelivery | OrderState::Delivered => {
            accepted()
        }
        OrderState::AwaitingConfirmation => bad_request("Order is not confirmed"),
        OrderState::Cancelled | OrderState::CancelledByMerchant => {
            bad_request("Order has been cancelled")
        }
        OrderState::Failed | OrderState::TimedOut | OrderState::PosError => {
            bad_request("Order has expired")
        }
    };
    inner.hear(id, before, order.state.status(), &response);
    response
}

async fn cancellation(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match gate(&inner, &headers).await {
        Some(response) => response,
        None => answer_cancellation(&inner, &id, &body),
    };
    inner.calls.record(
        "PATCH",
        uri.path(),
        &headers,
        &body,
        response.status().as_u16(),
    );
    response
}

fn answer_cancellation(inner: &Inner, id: &str, body: &[u8]) -> Response {
    if !inner.platform.cancellation_allowlisted {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Access is denied: merchant cancellation is not enabled for this integration",
        );
    }
    let cancel: CancelOrder = match parse_body(body) {
        Ok(cancel) => cancel,
        Err(message) => return bad_request(message),
    };
    if !CANCEL_REASONS.contains(&cancel.cancel_reason.as_str()) {
        return bad_request(format!(
            "cancel_reason `{}` is not one of {}",
            cancel.cancel_reason,
            CANCEL_REASONS.join(", ")
        ));
    }
    let mut orders = lock(&inner.orders);
    let Some(order) = orders.get_mut(id) else {
        return not_found();
    };
    inner.expire(order);
    let before = order.state.status();
    let response = match order.state {
        OrderState::Confirmed | OrderState::ReadyForPickup | OrderState::OutForDelivery => {
            order.state = OrderState::CancelledByMerchant;
            order.cancellation = Some(cancel);
            accepted()
        }
        OrderState::Cancelled | OrderState::CancelledByMerchant => {
            bad_request("Order has already been cancelled")
        }
        OrderState::Delivered => bad_request("Order is delivered and cannot be cancelled"),
        OrderState::AwaitingConfirmation
        | OrderState::Failed
        | OrderState::TimedOut
        | OrderState::PosError => bad_request("Order is not confirmed"),
    };
    inner.hear(id, before, order.state.status(), &response);
    response
}

async fn sim_calls(State(inner): State<Shared>) -> Response {
    axum::Json(inner.calls.all()).into_response()
}

async fn sim_place(State(inner): State<Shared>, body: Bytes) -> Response {
    let sample: SampleOrder = match serde_json::from_slice(&body) {
        Ok(sample) => sample,
        Err(e) => return bad_request(format!("Body is not a SampleOrder: {e}")),
    };
    let placed = inner.place(&sample, true).await;
    (
        StatusCode::OK,
        axum::Json(json!({
            "external_order_id": placed.external_order_id,
            "webhook_status": placed.answer.status,
            "webhook_body": placed.answer.body,
        })),
    )
        .into_response()
}
