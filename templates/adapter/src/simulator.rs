//! A simulator of the platform: an HTTP server that behaves like the platform's documented
//! API, for the conformance kit, the tests and people running it by hand.
//!
//! It sends the hub signed webhooks ([`@@Type@@Sim::place_order`],
//! [`@@Type@@Sim::cancel_order`]), built from a platform-neutral [`SampleOrder`] in the
//! platform's wire format and signed with the adapter's recipe ([`sign`]). It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `POST /v1/orders/{id}/accept` | a placed order is accepted; again on an accepted order: 200, nothing changes |
//! | `POST /v1/orders/{id}/reject` | a placed order is rejected (`reason` required) |
//! | `POST /v1/orders/{id}/ready` | an accepted order is ready |
//! | `POST /v1/orders/{id}/cancel` | the merchant cancels an order not yet finished (`reason` required) |
//! | `GET /_sim/calls` | the call log as JSON |
//! | `POST /_sim/orders` | body: a [`SampleOrder`]; places it like [`@@Type@@Sim::place_order`] |
//!
//! Every API call needs `Authorization: Bearer <api_key>` (else 401). An unknown order is
//! 404, a body of the wrong shape 400, a call the order's state does not allow 409, all as
//! `{"error", "message"}`. An order not accepted within `accept_deadline` expires: a late
//! accept gets 409. Scripted [`Faults`] apply before anything else. Each call is recorded
//! in the [`CallLog`] with its answer, and each order's state reads back as a unified
//! [`Status`] ([`@@Type@@Sim::status`]).
//!
//! PLATFORM: make it behave like the platform's documentation says: its webhook bodies and
//! signature, its endpoints, authentication, answers, error shape, time limits and rate
//! limits (adapters/doordash's simulator has a token bucket). The conformance kit reads
//! back what the hub told it, so the order states must map onto the unified statuses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use crossdock_channel::signature::{constant_time_eq, hmac_sha256_hex};
use crossdock_channel::sim::{SimClock, 
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimServer, WebhookAnswer, lock,
    post_webhook,
};
use crossdock_model::Status;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::wire::{self, Amount};
use crate::{ACCEPT_WINDOW, DEV_API_KEY, DEV_WEBHOOK_SECRET, SIGNATURE_HEADER};

/// The store used when a sample order names none.
pub const DEFAULT_STORE_ID: &str = "store-1";

/// The signature of `body`: lower-case hex HMAC-SHA256 under the webhook secret.
///
/// PLATFORM: the platform's signature recipe, exactly as the adapter checks it.
pub fn sign(webhook_secret: &str, body: &[u8]) -> String {
    hmac_sha256_hex(webhook_secret.as_bytes(), &[body])
}

/// The headers a webhook with `body` is sent with.
pub fn webhook_headers(webhook_secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![(SIGNATURE_HEADER.to_owned(), sign(webhook_secret, body))]
}

/// RFC 3339 with a `Z`, as the platform writes times.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The platform's ids of one new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderIds {
    pub order_id: String,
    pub event_id: String,
    pub short_code: String,
}

impl OrderIds {
    /// Fresh ids, as the platform would make them.
    pub fn fresh() -> Self {
        let uuid = Uuid::now_v7().simple().to_string();
        Self {
            order_id: format!("ord_{uuid}"),
            event_id: format!("evt_{}", Uuid::now_v7().simple()),
            short_code: uuid[uuid.len() - 5..].to_ascii_uppercase(),
        }
    }
}

fn option(item: &SampleItem) -> wire::ItemOption {
    wire::ItemOption {
        id: None,
        plu: Some(item.plu.clone()),
        name: item.name.clone(),
        group: None,
        quantity: item.quantity,
        unit_price: Amount::from(item.unit_price_minor),
        options: item.modifiers.iter().map(option).collect(),
    }
}

/// The platform's order for `sample`.
pub(crate) fn order(sample: &SampleOrder, ids: &OrderIds, placed_at: DateTime<Utc>) -> wire::Order {
    let items = sample
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| wire::Item {
            id: format!("{}-{}", ids.order_id, i + 1),
            plu: Some(item.plu.clone()),
            name: item.name.clone(),
            quantity: item.quantity,
            unit_price: Amount::from(item.unit_price_minor),
            total: Some(Amount::from(
                item.unit_with_modifiers_minor()
                    .saturating_mul(item.quantity),
            )),
            notes: item.notes.clone(),
            options: item.modifiers.iter().map(option).collect(),
        })
        .collect();
    let (kind, courier, address, delivery_fee) = match &sample.fulfillment {
        SampleFulfillment::Pickup => (wire::FulfillmentType::Pickup, None, None, None),
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            country,
        } => (
            wire::FulfillmentType::Delivery,
            Some(wire::Courier::Platform),
            Some(wire::Address {
                lines: address_lines.clone(),
                city: Some(city.clone()),
                postcode: Some(postcode.clone()),
                country: Some(country.clone()),
                lat: Some(*lat),
                lng: Some(*lng),
                instructions: None,
            }),
            Some(Amount::from(sample.delivery_fee_minor)),
        ),
    };
    let discounts = (sample.discount_minor > 0)
        .then(|| wire::Discount {
            label: "Platform promotion".to_owned(),
            amount: Amount::from(sample.discount_minor),
            funded_by: Some("platform".to_owned()),
        })
        .into_iter()
        .collect();
    wire::Order {
        id: ids.order_id.clone(),
        short_code: Some(ids.short_code.clone()),
        store_id: sample
            .store_ref
            .clone()
            .unwrap_or_else(|| DEFAULT_STORE_ID.to_owned()),
        placed_at: rfc3339(placed_at),
        currency: sample.currency.clone(),
        fulfillment: wire::Fulfillment {
            kind,
            courier,
            address,
            scheduled_for: sample.scheduled_for.map(rfc3339),
        },
        customer: Some(wire::Customer {
            name: Some(sample.customer_name.clone()),
            phone: sample.customer_phone.clone(),
        }),
        notes: sample.notes.clone(),
        items,
        totals: wire::Totals {
            subtotal: Amount::from(sample.subtotal_minor()),
            discounts,
            tax: None,
            delivery_fee,
            service_fee: None,
            tip: (sample.tip_minor > 0).then(|| Amount::from(sample.tip_minor)),
            total: Amount::from(sample.total_minor()),
        },
    }
}

/// The `order.created` webhook for `sample`, placed at `placed_at`.
pub(crate) fn order_created(
    sample: &SampleOrder,
    ids: &OrderIds,
    placed_at: DateTime<Utc>,
) -> wire::Webhook<wire::OrderCreated> {
    wire::Webhook {
        envelope: wire::Envelope {
            event_id: ids.event_id.clone(),
            event_type: wire::ORDER_CREATED.to_owned(),
            created_at: rfc3339(placed_at),
        },
        event: wire::OrderCreated {
            order: order(sample, ids, placed_at),
        },
    }
}

/// The `order.cancelled` webhook of an order the platform cancelled at `at`.
pub(crate) fn order_cancelled(
    order_id: &str,
    event_id: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> wire::Webhook<wire::OrderCancelled> {
    wire::Webhook {
        envelope: wire::Envelope {
            event_id: event_id.to_owned(),
            event_type: wire::ORDER_CANCELLED.to_owned(),
            created_at: rfc3339(at),
        },
        event: wire::OrderCancelled {
            cancellation: wire::Cancellation {
                order_id: order_id.to_owned(),
                reason: reason.map(str::to_owned),
            },
        },
    }
}

fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The hub's webhook, e.g. `http://127.0.0.1:8080/webhooks/@@channel@@`.
    pub hub_webhook_url: String,
    /// The key webhooks are signed with.
    pub webhook_secret: String,
    /// The bearer token API calls must carry.
    pub api_key: String,
    /// How long a placed order waits for its acceptance before it expires.
    pub accept_deadline: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: format!("http://127.0.0.1:8080/webhooks/{}", crate::CHANNEL_ID),
            webhook_secret: DEV_WEBHOOK_SECRET.to_owned(),
            api_key: DEV_API_KEY.to_owned(),
            accept_deadline: ACCEPT_WINDOW.to_std().unwrap_or(Duration::from_secs(300)),
        }
    }
}

/// Where an order stands on the platform.
///
/// PLATFORM: the platform's order states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Sent and acknowledged: waiting for the store's answer.
    Placed,
    Accepted,
    Ready,
    Rejected,
    /// Cancelled on the platform (customer, support).
    Cancelled,
    /// Cancelled by the merchant (`/cancel`).
    CancelledByMerchant,
    /// Not accepted within the deadline.
    Expired,
    /// The hub did not acknowledge the webhook (non-2xx).
    WebhookRefused,
}

impl OrderState {
    /// The unified status this state amounts to.
    pub fn status(self) -> Status {
        match self {
            OrderState::Placed => Status::Received,
            OrderState::Accepted => Status::Accepted,
            OrderState::Ready => Status::Ready,
            OrderState::Rejected => Status::Rejected,
            OrderState::Cancelled | OrderState::CancelledByMerchant => Status::Cancelled,
            OrderState::Expired | OrderState::WebhookRefused => Status::Failed,
        }
    }

    fn finished(self) -> bool {
        !matches!(
            self,
            OrderState::Placed | OrderState::Accepted | OrderState::Ready
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
    /// The webhook body, byte for byte (for resends).
    webhook: Vec<u8>,
    placed: Instant,
    state: OrderState,
    /// The last reason the hub gave (reject, cancel).
    reason: Option<String>,
    prep_minutes: Option<u32>,
}

#[derive(Debug)]
struct Inner {
    webhook_secret: String,
    api_key: String,
    accept_deadline: Duration,
    hub_webhook_url: Mutex<String>,
    http: reqwest::Client,
    orders: Mutex<HashMap<String, StoredOrder>>,
    calls: CallLog,
    faults: Faults,
    clock: SimClock,
}

/// A running simulator.
#[derive(Debug)]
pub struct @@Type@@Sim {
    inner: Arc<Inner>,
    server: SimServer,
}

impl @@Type@@Sim {
    /// Starts the simulator's HTTP server.
    pub async fn start(config: SimConfig) -> std::io::Result<@@Type@@Sim> {
        let inner = Arc::new(Inner {
            webhook_secret: config.webhook_secret,
            api_key: config.api_key,
            accept_deadline: config.accept_deadline,
            hub_webhook_url: Mutex::new(config.hub_webhook_url),
            http: reqwest::Client::new(),
            orders: Mutex::new(HashMap::new()),
            calls: CallLog::new(),
            faults: Faults::default(),
            clock: SimClock::default(),
        });
        let server = SimServer::serve(router(inner.clone()), config.bind).await?;
        tracing::info!(
            channel = crate::CHANNEL_ID,
            base_url = %server.base_url(),
            "Simulator listening."
        );
        Ok(@@Type@@Sim { inner, server })
    }

    /// `http://host:port`: the adapter's `base_url`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Points webhooks somewhere else (the hub is often started after the simulator).
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        *lock(&self.inner.hub_webhook_url) = url.into();
    }

    /// Places an order on the platform and posts its webhook to the hub. The order waits
    /// for the store's answer if the hub acknowledged it (2xx), and is lost otherwise.
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample).await
    }

    /// Records an order as placed and acknowledged, without sending its webhook (for tests
    /// of the status calls alone); returns its id. [`@@Type@@Sim::webhook_body`] has the
    /// webhook it would have sent.
    pub fn add_order(&self, sample: &SampleOrder) -> String {
        self.inner.add(sample)
    }

    /// Posts an order's webhook again, byte for byte (the platform retrying). `None` for
    /// an unknown order.
    pub async fn resend_order(&self, external_order_id: &str) -> Option<WebhookAnswer> {
        let body = self.webhook_body(external_order_id)?;
        Some(self.inner.send(body).await)
    }

    /// Posts any body with the given signature header (none if `None`): for forged and
    /// malformed webhook tests.
    pub async fn send_raw(&self, body: Vec<u8>, signature: Option<String>) -> WebhookAnswer {
        let headers: Vec<(String, String)> = signature
            .map(|value| (SIGNATURE_HEADER.to_owned(), value))
            .into_iter()
            .collect();
        self.inner.post(headers, body).await
    }

    /// The platform cancels the order (customer, support) and posts the `order.cancelled`
    /// webhook. `None` if the order is already finished (the platform sends nothing); an
    /// unknown id is sent anyway (the hub keeps a tombstone).
    pub async fn cancel_order(
        &self,
        external_order_id: &str,
        reason: Option<&str>,
    ) -> Option<WebhookAnswer> {
        {
            let mut orders = lock(&self.inner.orders);
            if let Some(order) = orders.get_mut(external_order_id) {
                self.inner.expire(order);
                if order.state.finished() {
                    return None;
                }
                order.state = OrderState::Cancelled;
                order.reason = reason.map(str::to_owned);
            }
        }
        let event_id = format!("evt_{}", Uuid::now_v7().simple());
        let body = to_bytes(&order_cancelled(
            external_order_id,
            &event_id,
            reason,
            Utc::now(),
        ));
        Some(self.inner.send(body).await)
    }

    /// The order's state on the platform (after applying the acceptance deadline).
    pub fn order_state(&self, external_order_id: &str) -> Option<OrderState> {
        let mut orders = lock(&self.inner.orders);
        let order = orders.get_mut(external_order_id)?;
        self.inner.expire(order);
        Some(order.state)
    }

    /// The order's state as a unified status; `None` for an order the platform does not
    /// know.
    pub fn status(&self, external_order_id: &str) -> Option<Status> {
        self.order_state(external_order_id).map(OrderState::status)
    }

    /// The last reason the hub gave for the order (reject, cancel).
    pub fn reason(&self, external_order_id: &str) -> Option<String> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.reason.clone())
    }

    /// The preparation time the hub sent with its acceptance.
    pub fn prep_minutes(&self, external_order_id: &str) -> Option<u32> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.prep_minutes)
    }

    /// The webhook body of the order, byte for byte.
    pub fn webhook_body(&self, external_order_id: &str) -> Option<Vec<u8>> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .map(|o| o.webhook.clone())
    }

    /// Every API call the hub made.
    pub fn calls(&self) -> &CallLog {
        &self.inner.calls
    }

    /// Scripted misbehaviour of API calls (429, 5xx, slow answers).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The simulator's clock: advance it to let deadlines and rate-limit windows pass.
    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

impl Inner {
    fn add(&self, sample: &SampleOrder) -> String {
        let ids = OrderIds::fresh();
        let webhook = to_bytes(&order_created(sample, &ids, Utc::now()));
        lock(&self.orders).insert(
            ids.order_id.clone(),
            StoredOrder {
                webhook,
                placed: self.clock.now(),
                state: OrderState::Placed,
                reason: None,
                prep_minutes: None,
            },
        );
        ids.order_id
    }

    async fn place(&self, sample: &SampleOrder) -> PlacedOrder {
        let external_order_id = self.add(sample);
        let webhook = lock(&self.orders)
            .get(&external_order_id)
            .map(|o| o.webhook.clone())
            .unwrap_or_default();
        let answer = self.send(webhook).await;
        if !(200..300).contains(&answer.status)
            && let Some(order) = lock(&self.orders).get_mut(&external_order_id)
        {
            order.state = OrderState::WebhookRefused;
        }
        tracing::info!(
            channel = crate::CHANNEL_ID,
            external_order_id = %external_order_id,
            webhook_status = answer.status,
            "Simulator placed an order."
        );
        PlacedOrder {
            external_order_id,
            answer,
        }
    }

    /// Applies the acceptance deadline.
    fn expire(&self, order: &mut StoredOrder) {
        if order.state == OrderState::Placed && self.clock.since(order.placed) > self.accept_deadline {
            order.state = OrderState::Expired;
        }
    }

    async fn send(&self, body: Vec<u8>) -> WebhookAnswer {
        let headers = webhook_headers(&self.webhook_secret, &body);
        self.post(headers, body).await
    }

    async fn post(&self, headers: Vec<(String, String)>, body: Vec<u8>) -> WebhookAnswer {
        let url = lock(&self.hub_webhook_url).clone();
        post_webhook(&self.http, &url, &headers, "application/json", body).await
    }

    /// Checks the API key; the error is the 401 message.
    ///
    /// PLATFORM: the platform's API authentication, as the adapter sends it.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or("missing `Authorization: Bearer <api key>`")?;
        if constant_time_eq(token.as_bytes(), self.api_key.as_bytes()) {
            Ok(())
        } else {
            Err("invalid API key")
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/v1/orders/{id}/{call}", post(order_call))
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/orders", post(sim_place))
        .with_state(inner)
}

/// An answer in the platform's error shape. PLATFORM: the platform's error body.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(wire::ErrorBody {
            error: code.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn conflict(state: OrderState, call: &str) -> Response {
    error(
        StatusCode::CONFLICT,
        "invalid_state",
        format!("cannot {call} an order that is {}", json!(state)),
    )
}

async fn order_call(
    State(inner): State<Shared>,
    Path((id, call)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = inner.faults.apply(|status| {
        if status == StatusCode::TOO_MANY_REQUESTS {
            error(status, "rate_limited", "too many requests")
        } else {
            error(status, "internal_error", "simulated failure")
        }
    });
    let response = match fault.await {
        Some(response) => response,
        None => match inner.authenticate(&headers) {
            Err(message) => error(StatusCode::UNAUTHORIZED, "unauthorized", message),
            Ok(()) => answer(&inner, &id, &call, &body),
        },
    };
    inner
        .calls
        .record("POST", uri.path(), &headers, &body, response.status().as_u16());
    response
}

/// The platform's logic of one status call.
fn answer(inner: &Inner, id: &str, call: &str, body: &[u8]) -> Response {
    let bad_request = |message: String| error(StatusCode::BAD_REQUEST, "invalid_body", message);
    // The reason of a reject or cancel; the error is the 400's message.
    let reason = || -> Result<String, String> {
        let body: wire::ReasonBody =
            serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
        if body.reason.trim().is_empty() {
            return Err("reason is required".to_owned());
        }
        Ok(body.reason)
    };
    let mut orders = lock(&inner.orders);
    let Some(order) = orders.get_mut(id) else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no order {id}"));
    };
    inner.expire(order);
    let ok = || StatusCode::OK.into_response();
    match (call, order.state) {
        ("accept", OrderState::Placed) => {
            let body: wire::AcceptBody = match serde_json::from_slice(body) {
                Ok(body) => body,
                Err(e) => return bad_request(format!("body: {e}")),
            };
            order.state = OrderState::Accepted;
            order.prep_minutes = Some(body.prep_minutes);
            ok()
        }
        ("accept", OrderState::Accepted) => ok(),
        ("reject", OrderState::Placed) => match reason() {
            Ok(reason) => {
                order.state = OrderState::Rejected;
                order.reason = Some(reason);
                ok()
            }
            Err(message) => bad_request(message),
        },
        ("reject", OrderState::Rejected) => ok(),
        ("ready", OrderState::Accepted) => {
            order.state = OrderState::Ready;
            ok()
        }
        ("ready", OrderState::Ready) => ok(),
        ("cancel", OrderState::Placed | OrderState::Accepted | OrderState::Ready) => {
            match reason() {
                Ok(reason) => {
                    order.state = OrderState::CancelledByMerchant;
                    order.reason = Some(reason);
                    ok()
                }
                Err(message) => bad_request(message),
            }
        }
        ("cancel", OrderState::CancelledByMerchant) => ok(),
        ("accept" | "reject" | "ready" | "cancel", state) => conflict(state, call),
        (other, _) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no call `{other}`; calls are accept, reject, ready and cancel"),
        ),
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
                "invalid_body",
                format!("body is not a SampleOrder: {e}"),
            );
        }
    };
    let placed = inner.place(&sample).await;
    axum::Json(json!({
        "external_order_id": placed.external_order_id,
        "webhook_status": placed.answer.status,
        "webhook_body": placed.answer.body,
    }))
    .into_response()
}
