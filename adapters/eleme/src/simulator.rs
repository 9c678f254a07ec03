//! A simulator of the Ele.me open platform: an HTTP server that behaves like Ele.me's
//! documented API, for tests, the demo and the benchmark.
//!
//! It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `POST /token` | OAuth client credentials: `grant_type=client_credentials`, the app key and secret as HTTP Basic (as the SDKs send them) or as form fields `client_id`/`client_secret`; 401 `{"error":"invalid_client"}` on wrong credentials, 400 `{"error":"unsupported_grant_type"}`; else `{access_token, token_type: "Bearer", expires_in, refresh_token}`. Every request is counted. |
//! | `POST /api/v1/` | the JSON-RPC API (below) |
//! | `GET /_sim/calls` | the call log (API calls) as JSON |
//! | `POST /_sim/orders` | body: a [`SampleOrder`]; places it like [`ElemeSim::place_order`] |
//! | `GET /_sim/orders/{id}` | the order as Ele.me holds it, with its unified status |
//! | `POST /_sim/orders/{id}/cancel` | the customer cancels ([`ElemeSim::cancel_order`]) |
//!
//! A call is checked in this order, each failure answered HTTP 200 with Ele.me's
//! `{"id", "result": null, "error": {"code", "message"}}`: scripted [`Faults`] first (an
//! HTTP status override, a delay); a body that is not a call, a `nop` other than `1.0.0`,
//! an `id` not of the form `<32 upper-case hex>|<ms>` or an unknown `app_key` →
//! `ILLEGAL_REQUEST`; an unknown or expired token → `UNAUTHORIZED`; `metas.timestamp`
//! (seconds) more than the configured window away from now → `INVALID_TIMESTAMP`; a
//! wrong signature → `INVALID_SIGNATURE`; more calls than the rate limit allows →
//! `EXCEED_LIMIT`; an action it does not serve → `METHOD_NOT_ALLOWED`; bad params →
//! `VALIDATION_FAILED`; an unknown order → `BIZ_ORDER_NOT_FOUND`; a call the order's state
//! does not allow → `BIZ_ORDER_STATUS_ERROR` (the `BIZ_` codes are the simulator's own
//! names in Ele.me's business-error family). Every call is recorded in the [`CallLog`]
//! (path `/api/v1/#<action>`, the token redacted) with the HTTP status it got. A call
//! answered with a `result` that changes what [`ElemeSim::order_status`] reads is told to
//! the [`StatusFeed`] ([`ElemeSim::status_feed`]).
//!
//! Actions and the order state they drive (Ele.me's `status`, plus what the merchant
//! reported):
//!
//! | action | allowed from | result |
//! |---|---|---|
//! | `eleme.order.confirmOrderLite` | `unprocessed` (a repeat on `valid` is a no-op) | `valid`; a type-12 push follows when `echo_accept` is set |
//! | `eleme.order.cancelOrderLite` | `unprocessed` (rejected), `valid` (cancelled); a repeat on `invalid` is a no-op | `invalid` |
//! | `eleme.order.setOrderPrepared` | `valid` | meal ready (出餐) |
//! | `eleme.order.deliveryBySelfLite` | `valid` | self-delivery started |
//! | `eleme.order.receivedOrderLite` | `valid` | delivered |
//! | `eleme.order.getOrder` | any | the order |
//!
//! An order not confirmed within the accept deadline is invalidated by the system and a
//! type-14 push (role 2) tells the hub. The customer's cancellation
//! ([`ElemeSim::cancel_order`]) is a type-14 push (role 1) before confirmation, and after
//! it the customer's cancel request (type 20) followed by its agreement (type 23, which
//! Ele.me gives itself when the merchant does not answer). The courier's progress
//! ([`ElemeSim::courier_update`]) is a delivery push (55 `delivering`, 56 `completed`).
//!
//! Orders are built from a platform-neutral [`SampleOrder`]: a 19-digit id, the shop's
//! daily number, one `normal` basket whose items carry their PLU as `extendCode` and their
//! price with options folded in (Ele.me has specs, not priced modifiers), options as flat
//! `attributes` (nested ones as `parent / child`, a removed one under `去除`), a platform
//! discount as Ele.me's activity (`elemePart`), WGS 84 sample coordinates converted to
//! GCJ-02, and `orderBusinessType` 1 for a pickup. Ele.me has no tip: a sample's tip is
//! not sent, and the order's total is subtotal − discount + delivery fee.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimServer, StatusFeed,
    WebhookAnswer, lock, lost_on_the_way, post_webhook,
};
use crossdock_model::{Currency, Status};
use serde_json::json;

use crate::convert::BEIJING;
use crate::wire::{
    self, EventMessage, IdText, Metas, NameValue, Num, OActivity, OGoodsGroup, OGoodsItem, OOrder,
    OrderRef, OutEnvelope, RpcRequest, TokenResponse,
};
use crate::{API_PATH, DEV_APP_KEY, DEV_APP_SECRET, message_type};

/// The Ele.me shop used when a sample order names none (the sample chain's SHA-001).
pub const DEFAULT_SHOP_ID: &str = "501893201";
/// The app id in every push.
pub const DEFAULT_APP_ID: u64 = 61_803_397;
/// The authorized merchant account in every push: above 2^53 on purpose, so that a
/// reader that goes through `f64` gets it wrong.
pub const DEFAULT_MERCHANT_USER_ID: u64 = 351_234_567_890_123_457;
/// Lifetime of issued tokens (`expires_in`): one day.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(86_400);
/// How long an order waits for confirmation before the system invalidates it.
pub const DEFAULT_ACCEPT_DEADLINE: Duration = Duration::from_secs(600);

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Where pushes go, e.g. `http://127.0.0.1:8080/webhooks/eleme`.
    pub hub_webhook_url: String,
    pub app_key: String,
    /// Signs pushes; checks call signatures and token requests.
    pub app_secret: String,
    pub app_id: u64,
    pub merchant_user_id: u64,
    pub token_ttl: Duration,
    /// Orders not confirmed this long after they were placed are invalidated (type 14).
    pub accept_deadline: Duration,
    /// At most this many API calls per window, then `EXCEED_LIMIT`; `None`: no limit.
    pub rate_limit: Option<RateWindow>,
    /// How far `metas.timestamp` may be from the simulator's clock.
    pub timestamp_window: Duration,
    /// Push type 12 (merchant accepted) after a confirmation, as Ele.me does.
    pub echo_accept: bool,
}

/// A call budget: `calls` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub calls: usize,
    pub window: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: "http://127.0.0.1:8080/webhooks/eleme".to_owned(),
            app_key: DEV_APP_KEY.to_owned(),
            app_secret: DEV_APP_SECRET.to_owned(),
            app_id: DEFAULT_APP_ID,
            merchant_user_id: DEFAULT_MERCHANT_USER_ID,
            token_ttl: DEFAULT_TOKEN_TTL,
            accept_deadline: DEFAULT_ACCEPT_DEADLINE,
            rate_limit: Some(RateWindow {
                calls: 100,
                window: Duration::from_secs(1),
            }),
            timestamp_window: Duration::from_secs(600),
            echo_accept: true,
        }
    }
}

/// An order the simulator placed, and what the hub answered to its push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub external_order_id: String,
    pub request_id: String,
    pub answer: WebhookAnswer,
}

/// What the courier reports ([`ElemeSim::courier_update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourierUpdate {
    /// Type 55, state `delivering`: the courier has the food.
    PickedUp,
    /// Type 56, state `completed`.
    Delivered,
}

/// Ele.me's order status (`OOrderStatus`) as the simulator tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderStatus {
    Unprocessed,
    Valid,
    /// `rejected`: the merchant cancelled it before confirming.
    Invalid {
        rejected: bool,
    },
    Settled,
}

impl OrderStatus {
    fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Unprocessed => "unprocessed",
            OrderStatus::Valid => "valid",
            OrderStatus::Invalid { .. } => "invalid",
            OrderStatus::Settled => "settled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// The store delivers (`deliveryBySelfLite`) or the courier has the food.
    OnTheWay,
    Delivered,
}

#[derive(Debug, Clone)]
struct SimOrder {
    order: OOrder,
    shop_id: IdText,
    status: OrderStatus,
    prepared: bool,
    delivery: Option<Delivery>,
    /// The `type` and `remark` of the merchant's cancellation.
    cancel: Option<(String, String)>,
}

impl SimOrder {
    /// The unified status of what the platform believes.
    fn unified(&self) -> Status {
        match self.status {
            OrderStatus::Unprocessed => Status::Received,
            OrderStatus::Invalid { rejected: true } => Status::Rejected,
            OrderStatus::Invalid { rejected: false } => Status::Cancelled,
            OrderStatus::Settled => Status::Completed,
            OrderStatus::Valid => match (self.delivery, self.prepared) {
                (Some(Delivery::Delivered), _) => Status::Delivered,
                (Some(Delivery::OnTheWay), _) => Status::PickedUp,
                (None, true) => Status::Ready,
                (None, false) => Status::Accepted,
            },
        }
    }
}

/// A running Ele.me simulator.
#[derive(Debug)]
pub struct ElemeSim {
    inner: Arc<Inner>,
    server: SimServer,
}

/// What the simulator plays, fixed at start.
#[derive(Debug)]
struct Platform {
    app_key: String,
    app_secret: String,
    app_id: u64,
    merchant_user_id: u64,
    token_ttl: Duration,
    accept_deadline: Duration,
    timestamp_window: Duration,
    echo_accept: bool,
}

#[derive(Debug)]
struct Inner {
    platform: Platform,
    rate_limit: Mutex<Option<RateWindow>>,
    recent_calls: Mutex<VecDeque<Instant>>,
    hub_webhook_url: Mutex<String>,
    http: reqwest::Client,
    orders: Mutex<HashMap<String, SimOrder>>,
    day_sn: Mutex<HashMap<String, i64>>,
    tokens: Mutex<HashMap<String, Instant>>,
    token_requests: AtomicUsize,
    pushes: Mutex<HashMap<String, Vec<u8>>>,
    sequence: AtomicU64,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
    myself: OnceLock<Weak<Inner>>,
}

impl ElemeSim {
    /// Starts the simulator's HTTP server.
    pub async fn start(config: SimConfig) -> std::io::Result<ElemeSim> {
        let SimConfig {
            bind,
            hub_webhook_url,
            app_key,
            app_secret,
            app_id,
            merchant_user_id,
            token_ttl,
            accept_deadline,
            rate_limit,
            timestamp_window,
            echo_accept,
        } = config;
        let inner = Arc::new(Inner {
            platform: Platform {
                app_key,
                app_secret,
                app_id,
                merchant_user_id,
                token_ttl,
                accept_deadline,
                timestamp_window,
                echo_accept,
            },
            rate_limit: Mutex::new(rate_limit),
            recent_calls: Mutex::new(VecDeque::new()),
            hub_webhook_url: Mutex::new(hub_webhook_url),
            http: reqwest::Client::new(),
            orders: Mutex::new(HashMap::new()),
            day_sn: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_requests: AtomicUsize::new(0),
            pushes: Mutex::new(HashMap::new()),
            sequence: AtomicU64::new(0),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
            myself: OnceLock::new(),
        });
        let _ = inner.myself.set(Arc::downgrade(&inner));
        let server = SimServer::serve(router(inner.clone()), bind).await?;
        tracing::info!(base_url = %server.base_url(), "Ele.me simulator listening.");
        Ok(ElemeSim { inner, server })
    }

    /// `http://host:port`: the adapter's `base_url` (calls go to `{base_url}/api/v1/`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The token endpoint: the adapter's `token_url`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// Points pushes somewhere else (the hub is often started after the simulator).
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        *lock(&self.inner.hub_webhook_url) = url.into();
    }

    /// Changes the call budget (`None`: unlimited).
    pub fn set_rate_limit(&self, limit: Option<RateWindow>) {
        *lock(&self.inner.rate_limit) = limit;
        lock(&self.inner.recent_calls).clear();
    }

    /// Places an order (type-10 push) and starts its accept deadline.
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample, true).await
    }

    /// Places an order but loses its push on the way: the hub never receives it (the
    /// answer is [`lost_on_the_way`]); [`ElemeSim::resend`] with its request id delivers
    /// it, as Ele.me's resend of an unacknowledged message would.
    pub async fn place_order_lost(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample, false).await
    }

    /// Sends a push already sent once again, byte for byte (Ele.me's resend of an
    /// unacknowledged message). `None` for an unknown request id.
    pub async fn resend(&self, request_id: &str) -> Option<WebhookAnswer> {
        let body = lock(&self.inner.pushes).get(request_id).cloned()?;
        Some(self.inner.post(body).await)
    }

    /// Sends any body as a push (for forged and malformed push tests).
    pub async fn send_raw(&self, body: Vec<u8>) -> WebhookAnswer {
        self.inner.post(body).await
    }

    /// Checks the callback URL as Ele.me does: a GET without a body.
    pub async fn ping(&self) -> WebhookAnswer {
        let url = lock(&self.inner.hub_webhook_url).clone();
        match self
            .inner
            .http
            .get(&url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
        {
            Ok(response) => WebhookAnswer {
                status: response.status().as_u16(),
                body: response.text().await.unwrap_or_default(),
            },
            Err(error) => WebhookAnswer {
                status: 0,
                body: error.to_string(),
            },
        }
    }

    /// Sends a push of any type about an order: `message` is the message's JSON text.
    /// Returns the request id and the hub's answer.
    pub async fn push(&self, kind: i64, shop_id: &str, message: String) -> (String, WebhookAnswer) {
        self.inner
            .push(kind, &IdText(shop_id.to_owned()), message)
            .await
    }

    /// The customer cancels the order: type 14 before confirmation; after it, the cancel
    /// request (type 20) and its agreement (type 23). The answer is the hub's to the
    /// cancelling push. An unknown order gets a type-14 push too (the hub keeps a
    /// tombstone).
    pub async fn cancel_order(&self, external_order_id: &str) -> WebhookAnswer {
        self.inner.cancel_by_customer(external_order_id).await
    }

    /// The courier reports progress on an order Ele.me delivers.
    pub async fn courier_update(
        &self,
        external_order_id: &str,
        update: CourierUpdate,
    ) -> WebhookAnswer {
        self.inner.courier(external_order_id, update).await
    }

    /// Ele.me settles the order (type 18, 完结).
    pub async fn settle(&self, external_order_id: &str) -> WebhookAnswer {
        self.inner.settle(external_order_id).await
    }

    /// What the platform believes the order's status is, as a unified status.
    pub fn order_status(&self, external_order_id: &str) -> Option<Status> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .map(SimOrder::unified)
    }

    /// Ele.me's own status of the order (`unprocessed`, `valid`, `invalid`, `settled`).
    pub fn order_state(&self, external_order_id: &str) -> Option<&'static str> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .map(|o| o.status.as_str())
    }

    /// The `type` and `remark` of the merchant's cancellation, if any.
    pub fn cancellation(&self, external_order_id: &str) -> Option<(String, String)> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.cancel.clone())
    }

    /// Every API call the hub made.
    pub fn calls(&self) -> &CallLog {
        &self.inner.calls
    }

    /// How many times the token endpoint was called.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Invalidates every issued token: the next call answers `UNAUTHORIZED`.
    pub fn revoke_tokens(&self) {
        lock(&self.inner.tokens).clear();
    }

    /// Scripted misbehaviour of API calls.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The statuses Ele.me heard: every call answered with a `result` that changed what
    /// [`ElemeSim::order_status`] reads, with what it reads right after, by order id.
    pub fn status_feed(&self) -> &StatusFeed {
        &self.inner.feed
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Signed pushes
// ---------------------------------------------------------------------------------------

/// A push body as Ele.me sends it: the envelope in Ele.me's key order, signed with
/// `secret`. The fixtures are written with this.
#[allow(clippy::too_many_arguments)]
pub fn signed_push(
    kind: i64,
    message: &str,
    shop_id: &str,
    request_id: &str,
    timestamp_ms: i64,
    app_id: u64,
    merchant_user_id: u64,
    secret: &str,
) -> Vec<u8> {
    let mut envelope = OutEnvelope {
        request_id: request_id.to_owned(),
        kind,
        app_id,
        message: message.to_owned(),
        shop_id: IdText(shop_id.to_owned()),
        timestamp: timestamp_ms,
        signature: String::new(),
        user_id: merchant_user_id,
    };
    envelope.signature = wire::push_signature(&envelope.signed_values(), secret);
    // Serializing these plain fields cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

impl Inner {
    fn next(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A new 18-digit request id (Ele.me's look like `100007375037977242`).
    fn request_id(&self) -> String {
        let random = uuid::Uuid::new_v4().as_u128() % 1_000_000_000;
        format!("1000{:05}{random:09}", self.next() % 100_000)
    }

    /// A new 19-digit order id, unique in this simulator.
    fn order_id(&self) -> String {
        loop {
            let random = uuid::Uuid::new_v4().as_u128() % 100_000_000_000_000_000;
            let id = format!("30{random:017}");
            if !lock(&self.orders).contains_key(&id) {
                return id;
            }
        }
    }

    async fn push(&self, kind: i64, shop_id: &IdText, message: String) -> (String, WebhookAnswer) {
        let (request_id, body) = self.keep_push(kind, shop_id, &message);
        let answer = self.post(body).await;
        tracing::debug!(%request_id, message_type = kind, status = answer.status, "Ele.me simulator pushed.");
        (request_id, answer)
    }

    /// Signs a push and keeps it for sending and resending; returns its request id and
    /// body.
    fn keep_push(&self, kind: i64, shop_id: &IdText, message: &str) -> (String, Vec<u8>) {
        let request_id = self.request_id();
        let body = signed_push(
            kind,
            message,
            shop_id.as_str(),
            &request_id,
            Utc::now().timestamp_millis(),
            self.platform.app_id,
            self.platform.merchant_user_id,
            &self.platform.app_secret,
        );
        lock(&self.pushes).insert(request_id.clone(), body.clone());
        (request_id, body)
    }

    async fn post(&self, body: Vec<u8>) -> WebhookAnswer {
        let url = lock(&self.hub_webhook_url).clone();
        post_webhook(
            &self.http,
            &url,
            &[],
            "application/json; charset=utf-8",
            body,
        )
        .await
    }

    /// A status message (types 12, 14, 15, 17, 18) or a cancel-request message (20–26).
    fn status_message(order_id: &str, shop_id: &IdText, state: &str, role: i64) -> String {
        let message = EventMessage {
            order_id: Some(OrderRef(order_id.to_owned())),
            shop_id: Some(shop_id.clone()),
            state: Some(state.to_owned()),
            role: Some(role),
            update_time: Some(Utc::now().timestamp()),
            ..EventMessage::default()
        };
        serde_json::to_string(&message).unwrap_or_default()
    }

    async fn place(&self, sample: &SampleOrder, deliver: bool) -> PlacedOrder {
        let id = self.order_id();
        let shop = sample
            .store_ref
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SHOP_ID.to_owned());
        let day_sn = {
            let mut day_sn = lock(&self.day_sn);
            let sn = day_sn.entry(shop.clone()).or_insert(0);
            *sn += 1;
            *sn
        };
        let placement = Placement {
            order_id: id.clone(),
            shop_id: shop.clone(),
            day_sn,
            created_at: Utc::now(),
            customer_user_id: 200_000_000 + self.next(),
        };
        let order = build_order(sample, &placement);
        let message = serde_json::to_string(&order).unwrap_or_default();
        let shop_id = IdText(shop);
        lock(&self.orders).insert(
            id.clone(),
            SimOrder {
                order,
                shop_id: shop_id.clone(),
                status: OrderStatus::Unprocessed,
                prepared: false,
                delivery: None,
                cancel: None,
            },
        );
        self.start_deadline(&id);
        let (request_id, answer) = if deliver {
            self.push(message_type::ORDER_EFFECTIVE, &shop_id, message)
                .await
        } else {
            let (request_id, _) = self.keep_push(message_type::ORDER_EFFECTIVE, &shop_id, &message);
            (request_id, lost_on_the_way())
        };
        tracing::info!(
            external_order_id = %id,
            %request_id,
            webhook_status = answer.status,
            "Ele.me simulator placed an order."
        );
        PlacedOrder {
            external_order_id: id,
            request_id,
            answer,
        }
    }

    /// Invalidates the order when its deadline passes unconfirmed, and tells the hub.
    fn start_deadline(&self, order_id: &str) {
        let Some(myself) = self.myself.get().cloned() else {
            return;
        };
        let deadline = self.platform.accept_deadline;
        let order_id = order_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            let Some(inner) = myself.upgrade() else {
                return;
            };
            let shop_id = {
                let mut orders = lock(&inner.orders);
                match orders.get_mut(&order_id) {
                    Some(order) if order.status == OrderStatus::Unprocessed => {
                        order.status = OrderStatus::Invalid { rejected: false };
                        order.shop_id.clone()
                    }
                    _ => return,
                }
            };
            tracing::info!(external_order_id = %order_id, "Ele.me simulator: accept deadline passed; order invalidated.");
            let message = Inner::status_message(&order_id, &shop_id, "invalid", 2);
            inner
                .push(message_type::CANCELLED_BEFORE_ACCEPTANCE, &shop_id, message)
                .await;
        });
    }

    async fn cancel_by_customer(&self, order_id: &str) -> WebhookAnswer {
        let (before, shop_id) = {
            let mut orders = lock(&self.orders);
            match orders.get_mut(order_id) {
                Some(order) => {
                    let before = order.status == OrderStatus::Unprocessed;
                    order.status = OrderStatus::Invalid { rejected: false };
                    (before, order.shop_id.clone())
                }
                None => (true, IdText(DEFAULT_SHOP_ID.to_owned())),
            }
        };
        if before {
            let message = Inner::status_message(order_id, &shop_id, "invalid", 1);
            return self
                .push(message_type::CANCELLED_BEFORE_ACCEPTANCE, &shop_id, message)
                .await
                .1;
        }
        let request = EventMessage {
            order_id: Some(OrderRef(order_id.to_owned())),
            shop_id: Some(shop_id.clone()),
            refund_status: Some("applied".to_owned()),
            reason: Some("用户申请取消".to_owned()),
            update_time: Some(Utc::now().timestamp()),
            ..EventMessage::default()
        };
        self.push(
            message_type::CANCEL_REQUESTED,
            &shop_id,
            serde_json::to_string(&request).unwrap_or_default(),
        )
        .await;
        let agreed = EventMessage {
            refund_status: Some("successful".to_owned()),
            ..request
        };
        self.push(
            message_type::CANCEL_AGREED,
            &shop_id,
            serde_json::to_string(&agreed).unwrap_or_default(),
        )
        .await
        .1
    }

    async fn courier(&self, order_id: &str, update: CourierUpdate) -> WebhookAnswer {
        let shop_id = {
            let mut orders = lock(&self.orders);
            match orders.get_mut(order_id) {
                Some(order) => {
                    order.delivery = Some(match update {
                        CourierUpdate::PickedUp => Delivery::OnTheWay,
                        CourierUpdate::Delivered => Delivery::Delivered,
                    });
                    order.shop_id.clone()
                }
                None => IdText(DEFAULT_SHOP_ID.to_owned()),
            }
        };
        let (kind, state) = match update {
            CourierUpdate::PickedUp => (message_type::DELIVERY_DELIVERING, "delivering"),
            CourierUpdate::Delivered => (message_type::DELIVERY_COMPLETED, "completed"),
        };
        let message = EventMessage {
            order_id: Some(OrderRef(order_id.to_owned())),
            shop_id: Some(shop_id.clone()),
            state: Some(state.to_owned()),
            sub_state: Some("noSubstate".to_owned()),
            name: Some("张师傅".to_owned()),
            phone: Some("13700001234".to_owned()),
            update_at: Some(Utc::now().timestamp_millis()),
            ..EventMessage::default()
        };
        self.push(
            kind,
            &shop_id,
            serde_json::to_string(&message).unwrap_or_default(),
        )
        .await
        .1
    }

    async fn settle(&self, order_id: &str) -> WebhookAnswer {
        let shop_id = {
            let mut orders = lock(&self.orders);
            match orders.get_mut(order_id) {
                Some(order) => {
                    order.status = OrderStatus::Settled;
                    order.shop_id.clone()
                }
                None => IdText(DEFAULT_SHOP_ID.to_owned()),
            }
        };
        let message = Inner::status_message(order_id, &shop_id, "settled", 2);
        self.push(message_type::COMPLETED, &shop_id, message)
            .await
            .1
    }

    fn token_valid(&self, token: &str) -> bool {
        lock(&self.tokens)
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires)
    }

    /// Counts a call against the budget; `false` when over it.
    fn within_rate(&self) -> bool {
        let Some(limit) = *lock(&self.rate_limit) else {
            return true;
        };
        let now = Instant::now();
        let mut recent = lock(&self.recent_calls);
        while recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= limit.window)
        {
            recent.pop_front();
        }
        if recent.len() >= limit.calls {
            return false;
        }
        recent.push_back(now);
        true
    }
}

// ---------------------------------------------------------------------------------------
// Building Ele.me orders from samples
// ---------------------------------------------------------------------------------------

/// The ids and times of an order being placed.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub order_id: String,
    pub shop_id: String,
    pub day_sn: i64,
    pub created_at: DateTime<Utc>,
    pub customer_user_id: u64,
}

/// Yuan as Ele.me's Java serializer writes a double: at least one decimal (`17.0`,
/// `3.5`, `12.34`, `-10.0`).
pub(crate) fn yuan_text(minor: i64, exponent: u32) -> Num {
    let scale = 10_u64.pow(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let whole = abs / scale;
    let fraction = if exponent == 0 {
        "0".to_owned()
    } else {
        let digits = format!("{:0width$}", abs % scale, width = exponent as usize);
        let trimmed = digits.trim_end_matches('0');
        if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        }
    };
    Num(format!("{sign}{whole}.{fraction}"))
}

/// Beijing local time as Ele.me writes it (`2026-11-20T20:00:00`).
pub(crate) fn beijing_text(at: DateTime<Utc>) -> String {
    at.with_timezone(&BEIJING)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// A stable number for a PLU (FNV-1a), for Ele.me's numeric food and sku ids.
fn stable_number(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// WGS 84 → GCJ-02 (the published offset transform; identity outside China).
pub(crate) fn wgs84_to_gcj02(lat: f64, lng: f64) -> (f64, f64) {
    use std::f64::consts::PI;
    const A: f64 = 6_378_245.0;
    const EE: f64 = 0.006_693_421_622_965_943;
    if !(72.004..=137.8347).contains(&lng) || !(0.8293..=55.8271).contains(&lat) {
        return (lat, lng);
    }
    let (x, y) = (lng - 105.0, lat - 35.0);
    let mut dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    dlat += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    dlat += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    dlat += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    let mut dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    dlng += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    dlng += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    dlng += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - EE * radlat.sin() * radlat.sin();
    let sqrt_magic = magic.sqrt();
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    dlng = (dlng * 180.0) / (A / sqrt_magic * radlat.cos() * PI);
    (lat + dlat, lng + dlng)
}

/// A sample's options as Ele.me's flat attributes: `选项` for chosen ones (nested as
/// `parent / child`, a quantity above one as `name ×n`), `去除` for removed ones, then
/// the item's note under `备注`.
fn attributes(item: &SampleItem) -> Vec<NameValue> {
    fn walk(modifiers: &[SampleItem], prefix: &str, out: &mut Vec<NameValue>) {
        for modifier in modifiers {
            let name = if prefix.is_empty() {
                modifier.name.clone()
            } else {
                format!("{prefix} / {}", modifier.name)
            };
            let (group, value) = match modifier.quantity {
                0 => ("去除", name.clone()),
                1 => ("选项", name.clone()),
                n => ("选项", format!("{name} ×{n}")),
            };
            out.push(NameValue {
                name: Some(group.to_owned()),
                value: Some(value),
            });
            walk(&modifier.modifiers, &name, out);
        }
    }
    let mut out = Vec::new();
    walk(&item.modifiers, "", &mut out);
    if let Some(notes) = item.notes.as_deref().filter(|n| !n.trim().is_empty()) {
        out.push(NameValue {
            name: Some("备注".to_owned()),
            value: Some(notes.to_owned()),
        });
    }
    out
}

fn goods_item(item: &SampleItem, exponent: u32) -> OGoodsItem {
    let unit = item.unit_with_modifiers_minor();
    let number = stable_number(&item.plu);
    let food_id = 1_000_000_000 + number % 1_000_000_000;
    OGoodsItem {
        id: Some(IdText(food_id.to_string())),
        sku_id: Some(IdText(format!("200000{:012}", number % 1_000_000_000_000))),
        name: item.name.clone(),
        category_id: Some(IdText("1".to_owned())),
        price: Some(yuan_text(unit, exponent)),
        quantity: item.quantity,
        total: Some(yuan_text(unit.saturating_mul(item.quantity), exponent)),
        additions: Some(Vec::new()),
        new_specs: Some(Vec::new()),
        attributes: Some(attributes(item)),
        extend_code: Some(item.plu.clone()),
        bar_code: Some(String::new()),
        weight: Some(Num("1.0".to_owned())),
        user_price: Some(yuan_text(unit, exponent)),
        shop_price: Some(yuan_text(unit, exponent)),
        vfood_id: Some(IdText(food_id.to_string())),
    }
}

/// The `OOrder` Ele.me would push for `sample`.
pub(crate) fn build_order(sample: &SampleOrder, placement: &Placement) -> OOrder {
    let exponent = Currency::parse(&sample.currency).map_or(2, |c| c.exponent());
    let money = |minor: i64| Some(yuan_text(minor, exponent));
    let subtotal = sample.subtotal_minor();
    let discount = sample.discount_minor;
    let delivery = sample.delivery_fee_minor;
    let total = subtotal.saturating_sub(discount).saturating_add(delivery);
    let created = beijing_text(placement.created_at);
    let (business_type, address, poi, geo) = match &sample.fulfillment {
        SampleFulfillment::Pickup => (1, "到店自取".to_owned(), None, None),
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            ..
        } => {
            let mut parts: Vec<String> = Vec::new();
            if !city.trim().is_empty() {
                parts.push(city.clone());
            }
            parts.extend(address_lines.iter().cloned());
            let (lat, lng) = wgs84_to_gcj02(*lat, *lng);
            (
                0,
                parts.join(" "),
                address_lines.first().cloned(),
                Some(format!("{lng:.8},{lat:.8}")),
            )
        }
    };
    let phone = sample.customer_phone.clone().unwrap_or_else(|| {
        let tail = stable_number(&placement.order_id) % 10_000;
        format!("17091234567,{tail:04}")
    });
    let activities = (discount != 0).then(|| {
        vec![OActivity {
            id: Some(IdText("141587914".to_owned())),
            name: Some("平台满减".to_owned()),
            category_id: Some(12),
            eleme_part: money(-discount),
            restaurant_part: money(0),
            amount: money(-discount),
        }]
    });
    OOrder {
        id: Some(OrderRef(placement.order_id.clone())),
        order_id: Some(OrderRef(placement.order_id.clone())),
        address: Some(address),
        created_at: Some(created.clone()),
        active_at: Some(created),
        deliver_fee: money(delivery),
        deliver_time: sample.scheduled_for.map(beijing_text),
        description: Some(sample.notes.clone().unwrap_or_default()),
        groups: Some(vec![OGoodsGroup {
            name: Some("1号篮子".to_owned()),
            kind: "normal".to_owned(),
            items: Some(
                sample
                    .items
                    .iter()
                    .map(|item| goods_item(item, exponent))
                    .collect(),
            ),
        }]),
        invoice: None,
        book: Some(sample.scheduled_for.is_some()),
        online_paid: Some(true),
        phone_list: Some(vec![phone]),
        shop_id: Some(IdText(placement.shop_id.clone())),
        open_id: Some(format!("cd-{}", placement.shop_id)),
        shop_name: Some("Crossdock 披萨".to_owned()),
        day_sn: Some(placement.day_sn),
        status: Some("unprocessed".to_owned()),
        refund_status: Some("noRefund".to_owned()),
        user_id: Some(IdText(placement.customer_user_id.to_string())),
        total_price: money(total),
        original_price: money(subtotal.saturating_add(delivery)),
        consignee: Some(sample.customer_name.clone()),
        delivery_geo: geo,
        delivery_poi_address: poi,
        invoiced: Some(false),
        income: money(total),
        service_rate: Some(Num("0.0".to_owned())),
        service_fee: money(0),
        hongbao: money(0),
        package_fee: money(0),
        activity_total: money(-discount),
        shop_part: money(0),
        eleme_part: money(-discount),
        downgraded: Some(false),
        vip_delivery_fee_discount: money(0),
        secret_phone_expire_time: None,
        order_activities: activities.or_else(|| Some(Vec::new())),
        invoice_type: None,
        taxpayer_id: Some(String::new()),
        cold_box_fee: money(0),
        order_business_type: Some(business_type),
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    let api = API_PATH.trim_end_matches('/');
    Router::new()
        .route("/token", post(token))
        .route(API_PATH, post(api_call))
        .route(api, post(api_call))
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/orders", post(sim_place))
        .route("/_sim/orders/{id}", get(sim_order))
        .route("/_sim/orders/{id}/cancel", post(sim_cancel))
        .with_state(inner)
}

/// Ele.me's error answer: HTTP 200 with `error`.
fn rpc_error(id: Option<&str>, code: &str, message: impl Into<String>) -> Response {
    axum::Json(json!({
        "id": id,
        "result": null,
        "error": { "code": code, "message": message.into() },
    }))
    .into_response()
}

fn rpc_ok(id: &str, result: serde_json::Value) -> Response {
    axum::Json(json!({ "id": id, "result": result, "error": null })).into_response()
}

/// The app key and secret of a token request: HTTP Basic (URL-encoded parts, as the PHP
/// SDK sends them) or form fields.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (key, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
                .ok()
                .and_then(|mut v| v.pop())
                .map(|(_, v)| v)
        };
        return Some((unescape(key)?, unescape(secret)?));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

async fn token(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    let valid = client_credentials(&headers, &form).is_some_and(|(key, secret)| {
        key == inner.platform.app_key && secret == inner.platform.app_secret
    });
    if !valid {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": "invalid_client", "error_description": "app key or secret is wrong" })),
        )
            .into_response();
    }
    let access_token = uuid::Uuid::new_v4().simple().to_string();
    lock(&inner.tokens).insert(
        access_token.clone(),
        Instant::now() + inner.platform.token_ttl,
    );
    axum::Json(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: inner.platform.token_ttl.as_secs(),
        refresh_token: Some(uuid::Uuid::new_v4().simple().to_string()),
    })
    .into_response()
}

/// Whether `id` is `<32 upper-case hex>|<digits>`.
fn valid_call_id(id: &str) -> bool {
    let Some((uuid, ms)) = id.split_once('|') else {
        return false;
    };
    uuid.len() == 32
        && uuid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        && !ms.is_empty()
        && ms.bytes().all(|b| b.is_ascii_digit())
}

/// The cancel types Ele.me takes (`OInvalidateType`).
const CANCEL_TYPES: &[&str] = &[
    "others",
    "fakeOrder",
    "contactUserFailed",
    "foodSoldOut",
    "restaurantClosed",
    "distanceTooFar",
    "restaurantTooBusy",
    "forceRejectOrder",
    "deliveryFault",
    "notSatisfiedDeliveryRequirement",
];

async fn api_call(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (response, action) = answer_call(&inner, &body).await;
    let mut recorded: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    if let Some(token) = recorded.get_mut("token") {
        *token = json!("<redacted>");
    }
    let recorded = serde_json::to_vec(&recorded).unwrap_or_default();
    inner.calls.record(
        "POST",
        &format!("{API_PATH}#{}", action.as_deref().unwrap_or("?")),
        &headers,
        &recorded,
        response.status().as_u16(),
    );
    response
}

/// Answers a call; also returns its action, when the body names one.
async fn answer_call(inner: &Inner, body: &[u8]) -> (Response, Option<String>) {
    let action = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
    let fault = inner.faults.apply(|status| {
        if status == StatusCode::TOO_MANY_REQUESTS {
            rpc_error(None, "EXCEED_LIMIT", "调用频率超限")
        } else {
            rpc_error(None, "SERVER_ERROR", "Simulated failure.")
        }
    });
    if let Some(response) = fault.await {
        return (response, action);
    }
    (check_and_run(inner, body), action)
}

fn check_and_run(inner: &Inner, body: &[u8]) -> Response {
    let call: RpcRequest = match serde_json::from_slice(body) {
        Ok(call) => call,
        Err(e) => return rpc_error(None, "ILLEGAL_REQUEST", format!("不合法的请求: {e}")),
    };
    let id = call.id.as_str();
    if call.nop != "1.0.0" {
        return rpc_error(Some(id), "ILLEGAL_REQUEST", "nop must be 1.0.0");
    }
    if !valid_call_id(id) {
        return rpc_error(
            Some(id),
            "ILLEGAL_REQUEST",
            "id must be <UUID, upper-case, no dashes>|<ms>",
        );
    }
    if call.metas.app_key != inner.platform.app_key {
        return rpc_error(Some(id), "ILLEGAL_REQUEST", "unknown app_key");
    }
    if !inner.token_valid(&call.token) {
        return rpc_error(Some(id), "UNAUTHORIZED", "token 无效或已过期");
    }
    let skew = (Utc::now().timestamp() - call.metas.timestamp).unsigned_abs();
    if skew > inner.platform.timestamp_window.as_secs() {
        return rpc_error(
            Some(id),
            "INVALID_TIMESTAMP",
            format!(
                "timestamp {} is {skew} s away from now",
                call.metas.timestamp
            ),
        );
    }
    let expected = wire::api_signature(
        &call.action,
        &call.token,
        &Metas {
            app_key: call.metas.app_key.clone(),
            timestamp: call.metas.timestamp,
        },
        &call.params,
        &inner.platform.app_secret,
    );
    if expected != call.signature {
        return rpc_error(Some(id), "INVALID_SIGNATURE", "签名错误");
    }
    if !inner.within_rate() {
        return rpc_error(Some(id), "EXCEED_LIMIT", "调用频率超限");
    }
    run_action(inner, &call)
}

fn run_action(inner: &Inner, call: &RpcRequest) -> Response {
    let id = call.id.as_str();
    let text = |name: &str| call.params.get(name).and_then(|v| v.as_str());
    let Some(order_id) = text("orderId").filter(|o| !o.trim().is_empty()) else {
        if call.action.starts_with("eleme.order.") {
            return rpc_error(Some(id), "VALIDATION_FAILED", "orderId 不能为空");
        }
        return rpc_error(
            Some(id),
            "METHOD_NOT_ALLOWED",
            format!("unknown action {}", call.action),
        );
    };
    let action = call.action.as_str();
    if !matches!(
        action,
        "eleme.order.confirmOrderLite"
            | "eleme.order.cancelOrderLite"
            | "eleme.order.setOrderPrepared"
            | "eleme.order.deliveryBySelfLite"
            | "eleme.order.receivedOrderLite"
            | "eleme.order.getOrder"
    ) {
        return rpc_error(
            Some(id),
            "METHOD_NOT_ALLOWED",
            format!("unknown action {action}"),
        );
    }
    let cancel = if action == "eleme.order.cancelOrderLite" {
        let Some(kind) = text("type").filter(|t| CANCEL_TYPES.contains(t)) else {
            return rpc_error(Some(id), "VALIDATION_FAILED", "type 不合法");
        };
        let Some(remark) = text("remark") else {
            return rpc_error(Some(id), "VALIDATION_FAILED", "remark 必须是字符串");
        };
        Some((kind.to_owned(), remark.to_owned()))
    } else {
        None
    };
    let mut echo = None;
    let response = {
        let mut orders = lock(&inner.orders);
        let Some(order) = orders.get_mut(order_id) else {
            return rpc_error(Some(id), "BIZ_ORDER_NOT_FOUND", "订单不存在");
        };
        let illegal = |order: &SimOrder| {
            rpc_error(
                Some(id),
                "BIZ_ORDER_STATUS_ERROR",
                format!("订单状态 {} 不允许此操作 ({action})", order.status.as_str()),
            )
        };
        let before = order.unified();
        let response = match action {
            "eleme.order.getOrder" => {
                let mut document = serde_json::to_value(&order.order).unwrap_or_default();
                document["status"] = json!(order.status.as_str());
                return rpc_ok(id, document);
            }
            "eleme.order.confirmOrderLite" => match order.status {
                OrderStatus::Unprocessed => {
                    order.status = OrderStatus::Valid;
                    echo = Some((order_id.to_owned(), order.shop_id.clone()));
                    rpc_ok(id, serde_json::Value::Null)
                }
                OrderStatus::Valid => rpc_ok(id, serde_json::Value::Null),
                _ => illegal(order),
            },
            "eleme.order.cancelOrderLite" => match order.status {
                OrderStatus::Unprocessed | OrderStatus::Valid => {
                    order.status = OrderStatus::Invalid {
                        rejected: order.status == OrderStatus::Unprocessed,
                    };
                    order.cancel = cancel;
                    rpc_ok(id, serde_json::Value::Null)
                }
                OrderStatus::Invalid { .. } => rpc_ok(id, serde_json::Value::Null),
                OrderStatus::Settled => illegal(order),
            },
            "eleme.order.setOrderPrepared" => match order.status {
                OrderStatus::Valid => {
                    order.prepared = true;
                    rpc_ok(id, serde_json::Value::Null)
                }
                _ => illegal(order),
            },
            "eleme.order.deliveryBySelfLite" => match (order.status, order.delivery) {
                (OrderStatus::Valid, None | Some(Delivery::OnTheWay)) => {
                    order.delivery = Some(Delivery::OnTheWay);
                    rpc_ok(id, serde_json::Value::Null)
                }
                _ => illegal(order),
            },
            // "eleme.order.receivedOrderLite"
            _ => match order.status {
                OrderStatus::Valid => {
                    order.delivery = Some(Delivery::Delivered);
                    rpc_ok(id, serde_json::Value::Null)
                }
                _ => illegal(order),
            },
        };
        // Only the calls answered with a `result` change the order, so a changed status is
        // a call taken. Heard under the lock, so that the feed's order is the order the
        // calls were taken in.
        let after = order.unified();
        if after != before {
            inner.feed.heard(order_id, after);
        }
        response
    };
    if let (Some((order_id, shop_id)), true) = (echo, inner.platform.echo_accept)
        && let Some(myself) = inner.myself.get().and_then(Weak::upgrade)
    {
        tokio::spawn(async move {
            let message = Inner::status_message(&order_id, &shop_id, "valid", 3);
            myself
                .push(message_type::MERCHANT_ACCEPTED, &shop_id, message)
                .await;
        });
    }
    response
}

async fn sim_calls(State(inner): State<Shared>) -> Response {
    axum::Json(inner.calls.all()).into_response()
}

async fn sim_place(State(inner): State<Shared>, body: Bytes) -> Response {
    let sample: SampleOrder = match serde_json::from_slice(&body) {
        Ok(sample) => sample,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": format!("Body is not a SampleOrder: {e}") })),
            )
                .into_response();
        }
    };
    let placed = inner.place(&sample, true).await;
    axum::Json(json!({
        "external_order_id": placed.external_order_id,
        "request_id": placed.request_id,
        "webhook_status": placed.answer.status,
        "webhook_body": placed.answer.body,
    }))
    .into_response()
}

async fn sim_order(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&inner.orders).get(&id) {
        Some(order) => axum::Json(json!({
            "status": order.status.as_str(),
            "unified_status": order.unified(),
            "prepared": order.prepared,
            "order": order.order,
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "no such order" })),
        )
            .into_response(),
    }
}

async fn sim_cancel(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let answer = inner.cancel_by_customer(&id).await;
    axum::Json(json!({ "webhook_status": answer.status, "webhook_body": answer.body }))
        .into_response()
}
