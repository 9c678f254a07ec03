//! A simulator of Deliveroo: an HTTP server that behaves like Deliveroo's documented Order
//! API, for tests, the demo and the benchmark.
//!
//! It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `POST /oauth2/token` | form `client_id`, `client_secret`, `grant_type=client_credentials`; 401 `{"error":"invalid_client"}` on wrong credentials, 400 `{"error":"unsupported_grant_type"}`; else `{access_token, expires_in: 300, token_type: "Bearer"}`. Every request is counted. |
//! | `PATCH /order/v1/orders/{id}` | `{status: accepted\|rejected\|confirmed, reject_reason, notes}`: 204. Transitions `placed→accepted`, `placed→rejected`, `accepted→confirmed` (scheduled orders only; 400 for an ASAP order); any other is 409 ("already done or timed out"). `rejected` needs a `reject_reason` of `closing_early`, `busy`, `ingredient_unavailable`, `other` (400). At most 5 calls per minute per order (429 with `Retry-After`). |
//! | `POST /order/v1/orders/{id}/sync_status` | `{status: succeeded\|failed, reason, notes, occurred_at}`: 200 `{}`. Once per order (a second is 409), one call per 10 s per order (429 with `Retry-After`), 409 for a rejected or canceled order, 400 for a failure without a documented reason. |
//! | `POST /order/v1/orders/{id}/prep_stage` | `{stage, occurred_at, delay}`: 200 `{}`. Stages `in_kitchen`, `ready_for_collection_soon`, `ready_for_collection`, `collected`; `occurred_at` from 1 h in the past to 5 min in the future; `delay` 0–10 in steps of 2, with `in_kitchen` only (400 otherwise); 409 unless the order is accepted or confirmed. |
//! | `GET /_sim/calls` | every API call the hub made, as a JSON array of `{seq, at, method, path, headers, body, answered}` |
//! | `POST /_sim/orders` | body: a [`SampleOrder`]; places it like [`DeliverooSim::place_order`] and answers `{external_order_id, guid, webhook_status, webhook_body}` |
//! | `GET /_sim/orders/{id}` | the order as the simulator holds it: `{order, status, prep_stage, sync_status, rider_status_log}` |
//! | `POST /_sim/orders/{id}/cancel` | Deliveroo cancels the order (customer or support) and sends `order.status_update` |
//! | `POST /_sim/orders/{id}/rider` | body `{"status": "rider_in_transit"}` (or any rider status): sends `rider.status_update` |
//!
//! API calls need a valid bearer token (401 otherwise) and answer 404 for an unknown
//! order. Each is recorded in the [`CallLog`] with the status it got; scripted [`Faults`]
//! (delay, status override, `Retry-After`) apply to them before anything else. A call
//! taken (2xx) that changes what [`DeliverooSim::unified_status`] reads (a `PATCH`, a prep
//! stage) is told to the [`StatusFeed`] ([`DeliverooSim::status_feed`]).
//!
//! Webhooks go to the hub's order events URL (`…/webhooks/deliveroo`) and rider events
//! URL (the same plus `/rider`), signed as Deliveroo signs them (see [`crate::sign`]),
//! with `X-Deliveroo-Sequence-Guid`, `X-Deliveroo-Payload-Type` and
//! `X-Deliveroo-Webhook-Version: 1`. As Deliveroo does, the simulator sends
//! `order.status_update` (the whole order with its `status_log`) after every status change
//! (accepted, rejected, confirmed, canceled, auto-rejected), unless
//! [`SimConfig::status_webhooks`] is off. An ASAP order not accepted within
//! [`SimConfig::auto_reject_after`] (10 minutes, as Deliveroo) is rejected on its own.
//!
//! Orders are built from a platform-neutral [`SampleOrder`]: `{market}:{uuid}` ids, an
//! eight-digit `order_number` whose last four digits are the `display_id`, the sample's
//! store as `location_id`, items whose `pos_item_id` is the PLU with item-shaped nested
//! modifiers (a modifier of quantity 0, a removed ingredient, becomes "No {name}" at no
//! charge: Deliveroo has no removal flag), the customer's first name only (Deliveroo
//! shares no more) with a proxy number and access code, and money that adds up:
//! `partner_order_subtotal` = Σ item totals, `offer_discount` = the discount,
//! `partner_order_total` = subtotal − discount (+ the delivery fee when the restaurant
//! delivers), `total_price` = what the customer paid (with the delivery fee). Deliveroo
//! shares no tip with partners, so the sample's tip is dropped; it has no item notes
//! either, so the sample's item notes are folded into `order_notes` (`{item}: {note}`),
//! where Deliveroo customers write them.
//! Delivery samples are `fulfillment_type: deliveroo` (no address) unless
//! [`SimConfig::restaurant_delivery`] is set.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimClock, SimServer, StatusFeed,
    WebhookAnswer, lock, lost_on_the_way, post_webhook,
};
use crossdock_model::Status;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::wire::{
    Customer, Delivery, Envelope, ErrorBody, Item, Location, Money, Order, OrderEventBody,
    PatchOrder, PrepStage, Rider, RiderEventBody, StatusLogEntry, SyncStatus, TokenResponse,
};
use crate::{
    DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_WEBHOOK_SECRET, GUID_HEADER, PAYLOAD_TYPE_HEADER,
    RIDER_EVENTS, SIGNATURE_HEADER, WEBHOOK_VERSION_HEADER, sign, sign_legacy,
};

/// The Deliveroo location id used when a sample order names no store (LDN-001's).
pub const DEFAULT_LOCATION_ID: &str = "628401";
/// Deliveroo's brand id for the chain's orders.
pub const BRAND_ID: &str = "crossdock-pizza";
/// Tokens last 300 s, as Deliveroo's do.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);
/// ASAP orders not accepted within 10 minutes are rejected.
pub const DEFAULT_AUTO_REJECT_AFTER: Duration = Duration::from_secs(600);
/// `sync_status`: one call per 10 s per order.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// `PATCH`: 5 calls per minute per order.
pub const PATCH_LIMIT: usize = 5;
pub const PATCH_WINDOW: Duration = Duration::from_secs(60);
/// The proxy number given to customers when a sample has no phone.
pub const PROXY_PHONE: &str = "+44 20 3808 5555";
/// The documented `reject_reason` values.
pub const REJECT_REASONS: [&str; 4] = ["closing_early", "busy", "ingredient_unavailable", "other"];
/// The documented `sync_status` failure reasons.
pub const SYNC_FAILURE_REASONS: [&str; 11] = [
    "price_mismatched",
    "pos_item_id_mismatched",
    "pos_item_id_not_found",
    "items_out_of_stock",
    "location_offline",
    "location_not_supported",
    "unsupported_order_type",
    "webhook_failed",
    "timed_out",
    "no_sync_confirmation",
    "other",
];
/// Prep stages, in the order a kitchen reaches them.
pub const PREP_STAGES: [&str; 4] = [
    "in_kitchen",
    "ready_for_collection_soon",
    "ready_for_collection",
    "collected",
];

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The hub's order events URL, e.g. `http://127.0.0.1:8080/webhooks/deliveroo`; rider
    /// events go to the same plus `/rider`.
    pub hub_webhook_url: String,
    pub client_id: String,
    /// Checked at the token endpoint.
    pub client_secret: String,
    /// Signs webhooks.
    pub webhook_secret: String,
    /// Lifetime of issued tokens (`expires_in`).
    pub token_ttl: Duration,
    /// An ASAP order still `placed` after this is rejected by the platform.
    pub auto_reject_after: Duration,
    /// The smallest gap between two `sync_status` calls for one order.
    pub sync_interval: Duration,
    /// Delivery samples become `fulfillment_type: restaurant` (the address is sent)
    /// instead of `deliveroo`.
    pub restaurant_delivery: bool,
    /// Orders say `is_tabletless: true`.
    pub tabletless: bool,
    /// Send `order.status_update` after every status change, as Deliveroo does.
    pub status_webhooks: bool,
    /// Sign with the legacy `guid + " \n " + body`.
    pub legacy_signature: bool,
    /// The market prefix of order ids (`gb`).
    pub market: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: "http://127.0.0.1:8080/webhooks/deliveroo".to_owned(),
            client_id: DEV_CLIENT_ID.to_owned(),
            client_secret: DEV_CLIENT_SECRET.to_owned(),
            webhook_secret: DEV_WEBHOOK_SECRET.to_owned(),
            token_ttl: DEFAULT_TOKEN_TTL,
            auto_reject_after: DEFAULT_AUTO_REJECT_AFTER,
            sync_interval: DEFAULT_SYNC_INTERVAL,
            restaurant_delivery: false,
            tabletless: false,
            status_webhooks: true,
            legacy_signature: false,
            market: "gb".to_owned(),
        }
    }
}

/// An order the simulator placed, and what the hub answered to its webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub external_order_id: String,
    /// The webhook's sequence GUID.
    pub guid: String,
    pub answer: WebhookAnswer,
}

/// A webhook the simulator sent, kept for [`DeliverooSim::resend_webhook`].
#[derive(Debug, Clone)]
struct SentWebhook {
    url: String,
    event: String,
    body: Vec<u8>,
}

/// What the simulator plays, fixed at start.
#[derive(Debug)]
struct Platform {
    client_id: String,
    client_secret: String,
    webhook_secret: String,
    token_ttl: Duration,
    auto_reject_after: Duration,
    sync_interval: Duration,
    restaurant_delivery: bool,
    tabletless: bool,
    status_webhooks: bool,
    legacy_signature: bool,
    market: String,
}

/// An order and everything the hub told Deliveroo about it.
#[derive(Debug, Clone)]
struct SimOrder {
    order: Order,
    placed: Instant,
    /// The furthest prep stage reported.
    prep_stage: Option<String>,
    sync_status: Option<SyncStatus>,
    rider_log: Vec<StatusLogEntry>,
    /// PATCH calls within the last [`PATCH_WINDOW`].
    patches: VecDeque<Instant>,
    last_sync_call: Option<Instant>,
}

impl SimOrder {
    fn status(&self) -> &str {
        self.order.status.as_deref().unwrap_or("placed")
    }

    fn set_status(&mut self, status: &str, at: DateTime<Utc>) {
        self.order.status = Some(status.to_owned());
        self.order.status_log.push(StatusLogEntry {
            at: rfc3339(at),
            status: status.to_owned(),
        });
    }

    /// Whether Deliveroo's acceptance deadline has passed for this (ASAP, placed) order.
    fn overdue(&self, platform: &Platform, now: Instant) -> bool {
        self.order.asap
            && self.status() == "placed"
            && now.duration_since(self.placed) >= platform.auto_reject_after
    }

    /// The unified status Deliveroo's view amounts to.
    fn unified(&self, platform: &Platform, now: Instant) -> Status {
        if self.overdue(platform, now) {
            return Status::Rejected;
        }
        match self.status() {
            "canceled" => Status::Cancelled,
            "rejected" => Status::Rejected,
            "accepted" | "confirmed" => {
                let rider = |status: &str| self.rider_log.iter().any(|e| e.status == status);
                if rider("delivered") {
                    return Status::Delivered;
                }
                if rider("rider_in_transit") {
                    return Status::PickedUp;
                }
                match self.prep_stage.as_deref() {
                    Some("collected") => Status::PickedUp,
                    Some("ready_for_collection") => Status::Ready,
                    Some("in_kitchen" | "ready_for_collection_soon") => Status::Preparing,
                    _ => Status::Accepted,
                }
            }
            _ => Status::Received,
        }
    }
}

#[derive(Debug)]
struct Inner {
    platform: Platform,
    /// Where order events go; the one copy, changed by [`DeliverooSim::set_hub_webhook_url`].
    hub_webhook_url: Mutex<String>,
    http: reqwest::Client,
    orders: Mutex<HashMap<String, SimOrder>>,
    tokens: Mutex<HashMap<String, Instant>>,
    token_requests: AtomicUsize,
    webhooks: Mutex<HashMap<String, SentWebhook>>,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
    clock: SimClock,
}

/// A running Deliveroo simulator.
#[derive(Debug)]
pub struct DeliverooSim {
    inner: Arc<Inner>,
    server: SimServer,
}

impl DeliverooSim {
    /// Starts the simulator's HTTP server.
    pub async fn start(config: SimConfig) -> std::io::Result<DeliverooSim> {
        let SimConfig {
            bind,
            hub_webhook_url,
            client_id,
            client_secret,
            webhook_secret,
            token_ttl,
            auto_reject_after,
            sync_interval,
            restaurant_delivery,
            tabletless,
            status_webhooks,
            legacy_signature,
            market,
        } = config;
        let inner = Arc::new(Inner {
            platform: Platform {
                client_id,
                client_secret,
                webhook_secret,
                token_ttl,
                auto_reject_after,
                sync_interval,
                restaurant_delivery,
                tabletless,
                status_webhooks,
                legacy_signature,
                market: market.to_ascii_lowercase(),
            },
            hub_webhook_url: Mutex::new(hub_webhook_url),
            http: reqwest::Client::new(),
            orders: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_requests: AtomicUsize::new(0),
            webhooks: Mutex::new(HashMap::new()),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
            clock: SimClock::default(),
        });
        let server = SimServer::serve(router(inner.clone()), bind).await?;
        tracing::info!(base_url = %server.base_url(), "Deliveroo simulator listening.");
        Ok(DeliverooSim { inner, server })
    }

    /// `http://host:port`: the adapter's `base_url`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The token endpoint: the adapter's `token_url`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.base_url())
    }

    /// Points webhooks somewhere else (the hub is often started after the simulator):
    /// the order events URL; rider events go to the same plus `/rider`.
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        *lock(&self.inner.hub_webhook_url) = url.into();
    }

    /// Places an order and sends `order.new` to the hub.
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample, true).await
    }

    /// Places an order but loses its `order.new` on the way: the hub never receives it
    /// (the answer is [`lost_on_the_way`]); [`DeliverooSim::resend_webhook`] with its GUID
    /// delivers it, as Deliveroo's retry would.
    pub async fn place_order_lost(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample, false).await
    }

    /// Sends a webhook already sent once again, byte for byte, with the same GUID (a
    /// Deliveroo retry). `None` for an unknown GUID.
    pub async fn resend_webhook(&self, guid: &str) -> Option<WebhookAnswer> {
        let sent = lock(&self.inner.webhooks).get(guid).cloned()?;
        Some(
            self.inner
                .send_signed(&sent.url, guid, &sent.event, sent.body)
                .await,
        )
    }

    /// Sends any body to the order events URL with exactly these extra headers (for
    /// forged and malformed webhook tests).
    pub async fn send_webhook_raw(
        &self,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> WebhookAnswer {
        let url = lock(&self.inner.hub_webhook_url).clone();
        post_webhook(&self.inner.http, &url, headers, "application/json", body).await
    }

    /// Deliveroo cancels the order (the customer or support did) and sends
    /// `order.status_update`. Works for unknown ids too (the hub must tombstone them).
    pub async fn cancel_order(&self, external_order_id: &str) -> WebhookAnswer {
        self.inner.cancel(external_order_id).await
    }

    /// A rider of the order reaches `status` (`rider_assigned`, `rider_in_transit`,
    /// `delivered`, …); sends `rider.status_update` to the rider events URL. `None` for an
    /// unknown order.
    pub async fn rider_update(
        &self,
        external_order_id: &str,
        status: &str,
    ) -> Option<WebhookAnswer> {
        self.inner.rider(external_order_id, status).await
    }

    /// The order's Deliveroo `status` (`placed`, `accepted`, …).
    pub fn order_status(&self, external_order_id: &str) -> Option<String> {
        let now = self.inner.clock.now();
        lock(&self.inner.orders).get(external_order_id).map(|o| {
            if o.overdue(&self.inner.platform, now) {
                "rejected".to_owned()
            } else {
                o.status().to_owned()
            }
        })
    }

    /// What Deliveroo's view of the order amounts to, as a unified status.
    pub fn unified_status(&self, external_order_id: &str) -> Option<Status> {
        let now = self.inner.clock.now();
        lock(&self.inner.orders)
            .get(external_order_id)
            .map(|o| o.unified(&self.inner.platform, now))
    }

    /// The furthest prep stage the hub reported.
    pub fn prep_stage(&self, external_order_id: &str) -> Option<String> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.prep_stage.clone())
    }

    /// The sync status the hub reported, if any.
    pub fn sync_status(&self, external_order_id: &str) -> Option<(String, Option<String>)> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.sync_status.as_ref())
            .map(|s| (s.status.clone(), s.reason.clone()))
    }

    /// The order as Deliveroo would send it now, as JSON.
    pub fn order_json(&self, external_order_id: &str) -> Option<serde_json::Value> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| serde_json::to_value(&o.order).ok())
    }

    /// Every API call the hub made.
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

    /// Scripted misbehaviour of API calls.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The statuses Deliveroo heard: every API call taken (answered 2xx) that changed what
    /// [`DeliverooSim::unified_status`] reads, with what it reads right after, by order id.
    /// A `sync_status` changes no status, so it is never heard.
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

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `{"event": …, "body": {"order": …}}`, as Deliveroo sends it.
pub(crate) fn order_event(event: &str, order: &Order) -> Vec<u8> {
    let body = serde_json::to_value(OrderEventBody {
        order: order.clone(),
    })
    .unwrap_or_default();
    serde_json::to_vec(&Envelope {
        event: event.to_owned(),
        body,
    })
    .unwrap_or_default()
}

impl Inner {
    fn order_events_url(&self) -> String {
        lock(&self.hub_webhook_url).clone()
    }

    async fn place(self: &Arc<Self>, sample: &SampleOrder, deliver: bool) -> PlacedOrder {
        let id = format!("{}:{}", self.platform.market, Uuid::new_v4());
        let now = Utc::now();
        let order = build_order(sample, &id, &self.platform, now);
        let asap = order.asap;
        let body = order_event("order.new", &order);
        lock(&self.orders).insert(
            id.clone(),
            SimOrder {
                order,
                placed: self.clock.now(),
                prep_stage: None,
                sync_status: None,
                rider_log: Vec::new(),
                patches: VecDeque::new(),
                last_sync_call: None,
            },
        );
        if asap {
            self.auto_reject_later(&id);
        }
        let url = self.order_events_url();
        let (guid, answer) = if deliver {
            self.send_event(&url, "order.new", body).await
        } else {
            (self.keep_event(&url, "order.new", body), lost_on_the_way())
        };
        tracing::info!(
            external_order_id = %id,
            %guid,
            webhook_status = answer.status,
            "Deliveroo simulator placed an order."
        );
        PlacedOrder {
            external_order_id: id,
            guid,
            answer,
        }
    }

    /// Rejects the order once its acceptance deadline passes, if it is still `placed`.
    fn auto_reject_later(self: &Arc<Self>, id: &str) {
        let weak: Weak<Inner> = Arc::downgrade(self);
        let id = id.to_owned();
        let after = self.platform.auto_reject_after;
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let rejected = {
                let mut orders = lock(&inner.orders);
                orders
                    .get_mut(&id)
                    .is_some_and(|order| inner.auto_reject_if_due(order, inner.clock.now()))
            };
            if rejected {
                tracing::info!(external_order_id = %id, "Deliveroo simulator auto-rejected an order nobody accepted.");
                inner.echo(&id);
            }
        });
    }

    /// Rejects an overdue order; true if it did.
    fn auto_reject_if_due(&self, order: &mut SimOrder, now: Instant) -> bool {
        if order.overdue(&self.platform, now) {
            order.set_status("rejected", Utc::now());
            true
        } else {
            false
        }
    }

    /// Sends `order.status_update` with the order as it is now (in the background: the
    /// call that changed the status is answered first, as on Deliveroo).
    fn echo(self: &Arc<Self>, id: &str) {
        if !self.platform.status_webhooks {
            return;
        }
        let Some(order) = lock(&self.orders).get(id).map(|o| o.order.clone()) else {
            return;
        };
        let inner = self.clone();
        tokio::spawn(async move {
            let url = inner.order_events_url();
            let body = order_event("order.status_update", &order);
            let (guid, answer) = inner.send_event(&url, "order.status_update", body).await;
            tracing::debug!(
                external_order_id = %order.id,
                status = order.status.as_deref().unwrap_or_default(),
                %guid,
                webhook_status = answer.status,
                "Deliveroo simulator sent a status update."
            );
        });
    }

    async fn cancel(self: &Arc<Self>, id: &str) -> WebhookAnswer {
        let now = Utc::now();
        let order = {
            let mut orders = lock(&self.orders);
            match orders.get_mut(id) {
                Some(order) => {
                    if !matches!(order.status(), "canceled" | "rejected") {
                        order.set_status("canceled", now);
                    }
                    order.order.clone()
                }
                None => Order {
                    id: id.to_owned(),
                    order_number: None,
                    location_id: DEFAULT_LOCATION_ID.to_owned(),
                    brand_id: None,
                    display_id: None,
                    status: Some("canceled".to_owned()),
                    status_log: vec![StatusLogEntry {
                        at: rfc3339(now),
                        status: "canceled".to_owned(),
                    }],
                    fulfillment_type: "deliveroo".to_owned(),
                    order_notes: None,
                    cutlery_notes: None,
                    asap: true,
                    prepare_for: None,
                    start_preparing_at: None,
                    confirm_at: None,
                    table_number: None,
                    subtotal: None,
                    total_price: None,
                    partner_order_subtotal: None,
                    partner_order_total: None,
                    offer_discount: None,
                    cash_due: None,
                    bag_fee: None,
                    surcharge: None,
                    fee_breakdown: Vec::new(),
                    items: Vec::new(),
                    promotions: None,
                    meal_cards: None,
                    remake_details: None,
                    is_tabletless: None,
                    customer: None,
                    delivery: None,
                },
            }
        };
        let url = self.order_events_url();
        let body = order_event("order.status_update", &order);
        let (_, answer) = self.send_event(&url, "order.status_update", body).await;
        answer
    }

    async fn rider(self: &Arc<Self>, id: &str, status: &str) -> Option<WebhookAnswer> {
        let now = Utc::now();
        let log = {
            let mut orders = lock(&self.orders);
            let order = orders.get_mut(id)?;
            order.rider_log.push(StatusLogEntry {
                at: rfc3339(now),
                status: status.to_owned(),
            });
            order.rider_log.clone()
        };
        let body = RiderEventBody {
            order_id: id.to_owned(),
            stacked_with: Some(Vec::new()),
            riders: vec![Rider {
                estimated_arrival_time: Some(rfc3339(now + TimeDelta::minutes(8))),
                at: Some(rfc3339(now)),
                accuracy_in_meters: Some(serde_json::Value::from(12)),
                lat: Some(51.5136),
                lon: Some(-0.1312),
                full_name: Some("Deliveroo Rider".to_owned()),
                contact_number: Some("+44 20 3808 7000".to_owned()),
                bridge_number: Some("+44 20 3808 7000".to_owned()),
                bridge_code: Some(digits(6)),
                status_log: log,
            }],
        };
        let body = serde_json::to_vec(&Envelope {
            event: "rider.status_update".to_owned(),
            body: serde_json::to_value(body).unwrap_or_default(),
        })
        .unwrap_or_default();
        let url = format!("{}/{RIDER_EVENTS}", self.order_events_url());
        let (_, answer) = self.send_event(&url, "rider.status_update", body).await;
        Some(answer)
    }

    /// Sends a signed webhook with a new GUID; returns the GUID and the hub's answer.
    async fn send_event(&self, url: &str, event: &str, body: Vec<u8>) -> (String, WebhookAnswer) {
        let guid = self.keep_event(url, event, body.clone());
        let answer = self.send_signed(url, &guid, event, body).await;
        (guid, answer)
    }

    /// Keeps a webhook for sending (and resending) under a new GUID; returns the GUID.
    fn keep_event(&self, url: &str, event: &str, body: Vec<u8>) -> String {
        let guid = Uuid::new_v4().to_string();
        lock(&self.webhooks).insert(
            guid.clone(),
            SentWebhook {
                url: url.to_owned(),
                event: event.to_owned(),
                body,
            },
        );
        guid
    }

    async fn send_signed(
        &self,
        url: &str,
        guid: &str,
        event: &str,
        body: Vec<u8>,
    ) -> WebhookAnswer {
        let key = self.platform.webhook_secret.as_bytes();
        let signature = if self.platform.legacy_signature {
            sign_legacy(key, guid, &body)
        } else {
            sign(key, guid, &body)
        };
        let headers = vec![
            (GUID_HEADER.to_owned(), guid.to_owned()),
            (SIGNATURE_HEADER.to_owned(), signature),
            (PAYLOAD_TYPE_HEADER.to_owned(), format!("event/{event}")),
            (WEBHOOK_VERSION_HEADER.to_owned(), "1".to_owned()),
        ];
        post_webhook(&self.http, url, &headers, "application/json", body).await
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
            .is_some_and(|expires| self.clock.now() < *expires)
    }
}

// ---------------------------------------------------------------------------------------
// Building Deliveroo orders from samples
// ---------------------------------------------------------------------------------------

/// `count` decimal digits from a random uuid.
fn digits(count: usize) -> String {
    let n = Uuid::new_v4().as_u128();
    let text = format!("{n:039}");
    text[text.len() - count..].to_owned()
}

fn money(minor: i64, code: &str) -> Money {
    Money {
        fractional: minor,
        currency_code: code.to_owned(),
    }
}

fn not_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty()).cloned()
}

/// A sample item as a Deliveroo item; modifiers nest. A modifier of quantity 0 (a removed
/// ingredient) becomes "No {name}", once, at no charge.
fn item(sample: &SampleItem, code: &str) -> Item {
    let total = sample
        .unit_with_modifiers_minor()
        .saturating_mul(sample.quantity);
    Item {
        pos_item_id: Some(sample.plu.clone()),
        name: sample.name.clone(),
        operational_name: Some(sample.name.clone()),
        quantity: sample.quantity,
        unit_price: money(sample.unit_price_minor, code),
        menu_unit_price: Some(money(sample.unit_price_minor, code)),
        total_price: Some(money(total, code)),
        discount_amount: Some(money(0, code)),
        item_fees: Some(Vec::new()),
        modifiers: sample
            .modifiers
            .iter()
            .map(|modifier| {
                if modifier.quantity == 0 {
                    Item {
                        pos_item_id: Some(modifier.plu.clone()),
                        name: format!("No {}", modifier.name),
                        operational_name: Some(format!("No {}", modifier.name)),
                        quantity: 1,
                        unit_price: money(0, code),
                        menu_unit_price: Some(money(0, code)),
                        total_price: Some(money(0, code)),
                        discount_amount: Some(money(0, code)),
                        item_fees: Some(Vec::new()),
                        modifiers: Vec::new(),
                    }
                } else {
                    item(modifier, code)
                }
            })
            .collect(),
    }
}

/// The order notes: the sample's, then each item's note (Deliveroo has no item notes).
fn order_notes(sample: &SampleOrder) -> Option<String> {
    let mut parts: Vec<String> = not_empty(sample.notes.as_ref()).into_iter().collect();
    for item in &sample.items {
        if let Some(note) = not_empty(item.notes.as_ref()) {
            parts.push(format!("{}: {note}", item.name));
        }
    }
    (!parts.is_empty()).then(|| parts.join("\n"))
}

fn build_order(sample: &SampleOrder, id: &str, platform: &Platform, now: DateTime<Utc>) -> Order {
    let code = sample.currency.as_str();
    let order_number = digits(8);
    let display_id = order_number[order_number.len() - 4..].to_owned();
    let phone = not_empty(sample.customer_phone.as_ref()).unwrap_or_else(|| PROXY_PHONE.to_owned());
    let access_code = digits(8);
    let first_name = sample
        .customer_name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let prepare_for = sample.scheduled_for.unwrap_or(now + TimeDelta::minutes(20));
    let asap = sample.scheduled_for.is_none();

    let (fulfillment_type, delivery) = match &sample.fulfillment {
        SampleFulfillment::Pickup => ("customer", None),
        SampleFulfillment::Delivery { .. } if !platform.restaurant_delivery => ("deliveroo", None),
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            ..
        } => (
            "restaurant",
            Some(Delivery {
                deliver_by: Some(rfc3339(prepare_for + TimeDelta::minutes(20))),
                delivery_fee: Some(money(sample.delivery_fee_minor, code)),
                delivery_notes: None,
                line1: address_lines.first().cloned(),
                line2: (address_lines.len() > 1).then(|| address_lines[1..].join(", ")),
                city: Some(city.clone()),
                postcode: Some(postcode.clone()),
                contact_number: Some(phone.clone()),
                contact_access_code: Some(access_code.clone()),
                customer_name: Some(sample.customer_name.clone()),
                location: Some(Location {
                    latitude: *lat,
                    longitude: *lng,
                }),
            }),
        ),
    };

    let subtotal = sample.subtotal_minor();
    let restaurant_fee = if delivery.is_some() {
        sample.delivery_fee_minor
    } else {
        0
    };
    let partner_total = subtotal
        .saturating_sub(sample.discount_minor)
        .saturating_add(restaurant_fee);
    let paid = subtotal
        .saturating_sub(sample.discount_minor)
        .saturating_add(sample.delivery_fee_minor);

    Order {
        id: id.to_owned(),
        order_number: Some(order_number),
        location_id: sample
            .store_ref
            .clone()
            .unwrap_or_else(|| DEFAULT_LOCATION_ID.to_owned()),
        brand_id: Some(BRAND_ID.to_owned()),
        display_id: Some(display_id),
        status: Some("placed".to_owned()),
        status_log: vec![
            StatusLogEntry {
                at: rfc3339(now - TimeDelta::seconds(1)),
                status: "pending".to_owned(),
            },
            StatusLogEntry {
                at: rfc3339(now),
                status: "placed".to_owned(),
            },
        ],
        fulfillment_type: fulfillment_type.to_owned(),
        order_notes: order_notes(sample),
        cutlery_notes: Some("NO CUTLERY".to_owned()),
        asap,
        prepare_for: Some(rfc3339(prepare_for)),
        start_preparing_at: Some(rfc3339(prepare_for - TimeDelta::minutes(15))),
        confirm_at: (!asap).then(|| rfc3339(prepare_for - TimeDelta::minutes(20))),
        table_number: None,
        subtotal: Some(money(subtotal, code)),
        total_price: Some(money(paid, code)),
        partner_order_subtotal: Some(money(subtotal, code)),
        partner_order_total: Some(money(partner_total, code)),
        offer_discount: Some(money(sample.discount_minor, code)),
        cash_due: Some(money(0, code)),
        bag_fee: Some(money(0, code)),
        surcharge: Some(money(0, code)),
        fee_breakdown: Vec::new(),
        items: sample.items.iter().map(|i| item(i, code)).collect(),
        promotions: Some(Vec::new()),
        meal_cards: Some(Vec::new()),
        remake_details: None,
        is_tabletless: Some(platform.tabletless),
        customer: Some(Customer {
            first_name: Some(first_name),
            contact_number: Some(phone),
            contact_access_code: Some(access_code),
            order_frequency_at_site: Some("NEW CUSTOMER".to_owned()),
        }),
        delivery,
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route(
            "/order/v1/orders/{id}",
            patch(|s, p, u, h, b| write(s, p, u, h, b, Op::Patch)),
        )
        .route(
            "/order/v1/orders/{id}/sync_status",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::SyncStatus)),
        )
        .route(
            "/order/v1/orders/{id}/prep_stage",
            post(|s, p, u, h, b| write(s, p, u, h, b, Op::PrepStage)),
        )
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/orders", post(sim_place))
        .route("/_sim/orders/{id}", get(sim_order))
        .route("/_sim/orders/{id}/cancel", post(sim_cancel))
        .route("/_sim/orders/{id}/rider", post(sim_rider))
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

fn ok_empty_json() -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
}

fn too_many(retry_after: Duration, message: &str) -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(seconds.max(1)));
    response
}

fn conflict(message: impl Into<String>) -> Response {
    error(StatusCode::CONFLICT, "conflict", message)
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
    let access_token = format!(
        "eyJ.{}.{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    lock(&inner.tokens).insert(
        access_token.clone(),
        inner.clock.now() + inner.platform.token_ttl,
    );
    axum::Json(TokenResponse {
        access_token,
        expires_in: inner.platform.token_ttl.as_secs(),
        token_type: "Bearer".to_owned(),
    })
    .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Patch,
    SyncStatus,
    PrepStage,
}

/// A write call's body, read and checked against Deliveroo's documented values.
enum WriteBody {
    Patch(PatchOrder),
    SyncStatus(SyncStatus),
    PrepStage(PrepStage),
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))
}

fn parse_time(value: &str, field: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{field}` is not an ISO-8601 time: {e}"))
}

/// Reads and checks a write call's body (the error is the message of the 400 answer).
fn parse_write_body(op: Op, body: &[u8], now: DateTime<Utc>) -> Result<WriteBody, String> {
    match op {
        Op::Patch => {
            let patch: PatchOrder = parse_body(body)?;
            match patch.status.as_str() {
                "accepted" | "confirmed" => {}
                "rejected" => match patch.reject_reason.as_deref() {
                    Some(reason) if REJECT_REASONS.contains(&reason) => {}
                    Some(other) => {
                        return Err(format!(
                            "`reject_reason` `{other}` is not one of {REJECT_REASONS:?}"
                        ));
                    }
                    None => return Err("`reject_reason` is required with `rejected`".to_owned()),
                },
                other => {
                    return Err(format!(
                        "`status` `{other}` is not one of accepted, rejected, confirmed"
                    ));
                }
            }
            Ok(WriteBody::Patch(patch))
        }
        Op::SyncStatus => {
            let sync: SyncStatus = parse_body(body)?;
            parse_time(&sync.occurred_at, "occurred_at")?;
            match (sync.status.as_str(), sync.reason.as_deref()) {
                ("succeeded", _) => {}
                ("failed", Some(reason)) if SYNC_FAILURE_REASONS.contains(&reason) => {}
                ("failed", _) => {
                    return Err(format!(
                        "a failed sync needs a `reason` of {SYNC_FAILURE_REASONS:?}"
                    ));
                }
                (other, _) => {
                    return Err(format!("`status` `{other}` is not succeeded or failed"));
                }
            }
            Ok(WriteBody::SyncStatus(sync))
        }
        Op::PrepStage => {
            let stage: PrepStage = parse_body(body)?;
            if !PREP_STAGES.contains(&stage.stage.as_str()) {
                return Err(format!(
                    "`stage` `{}` is not one of {PREP_STAGES:?}",
                    stage.stage
                ));
            }
            let at = parse_time(&stage.occurred_at, "occurred_at")?;
            if at < now - TimeDelta::hours(1) || at > now + TimeDelta::minutes(5) {
                return Err(
                    "`occurred_at` must be from 1 hour in the past to 5 minutes in the future"
                        .to_owned(),
                );
            }
            if let Some(delay) = stage.delay {
                if stage.stage != "in_kitchen" {
                    return Err("`delay` is only accepted with `in_kitchen`".to_owned());
                }
                if delay > 10 || delay % 2 != 0 {
                    return Err("`delay` must be 0, 2, 4, 6, 8 or 10".to_owned());
                }
            }
            Ok(WriteBody::PrepStage(stage))
        }
    }
}

/// Every API write: faults, auth, body, order lookup, limits, state change, record.
async fn write(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    op: Op,
) -> Response {
    let response = answer_write(&inner, &id, &headers, &body, op).await;
    let method = if op == Op::Patch { "PATCH" } else { "POST" };
    inner.calls.record(
        method,
        uri.path(),
        &headers,
        &body,
        response.status().as_u16(),
    );
    response
}

async fn answer_write(
    inner: &Shared,
    id: &str,
    headers: &HeaderMap,
    raw_body: &[u8],
    op: Op,
) -> Response {
    let fault = inner.faults.apply(|status| {
        if status == StatusCode::TOO_MANY_REQUESTS {
            error(status, "rate_limited", "Too many requests")
        } else {
            error(status, "injected_fault", "Simulated failure.")
        }
    });
    if let Some(response) = fault.await {
        return response;
    }
    if !inner.token_valid(headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or expired access token.",
        );
    }
    let wall = Utc::now();
    let body = match parse_write_body(op, raw_body, wall) {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", message),
    };
    let now = inner.clock.now();
    let (response, changed) = {
        let mut orders = lock(&inner.orders);
        let Some(order) = orders.get_mut(id) else {
            return error(StatusCode::NOT_FOUND, "not_found", "Order not found.");
        };
        let expired = inner.auto_reject_if_due(order, now);
        let before = order.unified(&inner.platform, now);
        let (response, changed) = match body {
            WriteBody::Patch(patch) => patch_order(order, &patch, now, wall),
            WriteBody::SyncStatus(sync) => (sync_status(inner, order, sync, now), false),
            WriteBody::PrepStage(stage) => (prep_stage(order, stage), false),
        };
        // Heard under the lock, so that the feed's order is the order the calls were
        // taken in.
        let after = order.unified(&inner.platform, now);
        if response.status().is_success() && after != before {
            inner.feed.heard(id, after);
        }
        (response, changed || expired)
    };
    if changed {
        inner.echo(id);
    }
    response
}

/// `PATCH /order/v1/orders/{id}`: the rate limit, then the transition. Returns the answer
/// and whether the status changed.
fn patch_order(
    order: &mut SimOrder,
    patch: &PatchOrder,
    now: Instant,
    wall: DateTime<Utc>,
) -> (Response, bool) {
    while order
        .patches
        .front()
        .is_some_and(|t| now.duration_since(*t) >= PATCH_WINDOW)
    {
        order.patches.pop_front();
    }
    if order.patches.len() >= PATCH_LIMIT {
        let oldest = order.patches.front().copied().unwrap_or(now);
        let wait = PATCH_WINDOW.saturating_sub(now.duration_since(oldest));
        return (
            too_many(wait, "At most 5 order updates per minute per order."),
            false,
        );
    }
    order.patches.push_back(now);
    let current = order.status().to_owned();
    let next = match (patch.status.as_str(), current.as_str()) {
        ("accepted", "placed") => "accepted",
        ("rejected", "placed") => "rejected",
        ("confirmed", _) if order.order.asap => {
            return (
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Only scheduled orders (asap: false) are confirmed.",
                ),
                false,
            );
        }
        ("confirmed", "accepted") => "confirmed",
        (wanted, _) => {
            return (
                conflict(format!(
                    "Cannot move the order from `{current}` to `{wanted}`: already done or timed out."
                )),
                false,
            );
        }
    };
    order.set_status(next, wall);
    (StatusCode::NO_CONTENT.into_response(), true)
}

fn sync_status(inner: &Inner, order: &mut SimOrder, sync: SyncStatus, now: Instant) -> Response {
    if let Some(last) = order.last_sync_call {
        let since = now.duration_since(last);
        if since < inner.platform.sync_interval {
            return too_many(
                inner.platform.sync_interval - since,
                "At most one sync status per 10 seconds per order.",
            );
        }
    }
    order.last_sync_call = Some(now);
    if order.sync_status.is_some() {
        return conflict("A sync status was already received for this order.");
    }
    if matches!(order.status(), "rejected" | "canceled") {
        return conflict(format!("The order is {}.", order.status()));
    }
    order.sync_status = Some(sync);
    ok_empty_json()
}

fn prep_stage(order: &mut SimOrder, stage: PrepStage) -> Response {
    if !matches!(order.status(), "accepted" | "confirmed") {
        return conflict(format!(
            "Prep stages need an accepted order; this one is `{}`.",
            order.status()
        ));
    }
    let rank = |s: &str| PREP_STAGES.iter().position(|p| *p == s);
    let further = match order.prep_stage.as_deref() {
        None => true,
        Some(current) => rank(&stage.stage) > rank(current),
    };
    if further {
        order.prep_stage = Some(stage.stage);
    }
    ok_empty_json()
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
    let placed = inner.place(&sample, true).await;
    axum::Json(serde_json::json!({
        "external_order_id": placed.external_order_id,
        "guid": placed.guid,
        "webhook_status": placed.answer.status,
        "webhook_body": placed.answer.body,
    }))
    .into_response()
}

async fn sim_order(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let now = inner.clock.now();
    let orders = lock(&inner.orders);
    let Some(order) = orders.get(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "Order not found.");
    };
    axum::Json(serde_json::json!({
        "order": order.order,
        "status": order.unified(&inner.platform, now),
        "prep_stage": order.prep_stage,
        "sync_status": order.sync_status,
        "rider_status_log": order.rider_log,
    }))
    .into_response()
}

fn webhook_json(answer: &WebhookAnswer) -> Response {
    axum::Json(serde_json::json!({
        "webhook_status": answer.status,
        "webhook_body": answer.body,
    }))
    .into_response()
}

async fn sim_cancel(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    webhook_json(&inner.cancel(&id).await)
}

async fn sim_rider(State(inner): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct RiderStatus {
        status: String,
    }
    let status: RiderStatus = match serde_json::from_slice(&body) {
        Ok(status) => status,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("Body is not {{\"status\": …}}: {e}"),
            );
        }
    };
    match inner.rider(&id, &status.status).await {
        Some(answer) => webhook_json(&answer),
        None => error(StatusCode::NOT_FOUND, "not_found", "Order not found."),
    }
}
