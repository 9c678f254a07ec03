//! [`OwnAppSim`]: a simulator of the chain's app backend, for tests, the demo and the
//! benchmark.
//!
//! It is a real HTTP server ([`SimServer`]) that plays the app's side of the own_app API:
//! it places orders by sending signed `order.created` webhooks to the hub, cancels them, and
//! receives the hub's status callbacks.
//!
//! | route | what |
//! |---|---|
//! | `POST /callbacks/status` | the callback URL every placed order names. Verifies the hub's signature and timestamp (401 if wrong), checks the body is an `order.status` callback (400 if not), applies the scripted [`Faults`], answers 200 `{"ok": true}`, and records every call, whatever the answer, in the [`CallLog`]; a callback answered 200 that changes the order's status is told to the [`StatusFeed`] |
//! | `GET /_sim/calls` | the call log as JSON |
//! | `POST /_sim/orders` | body: a [`SampleOrder`]; places it and answers `{"external_order_id", "event_id", "hub": {"status", "body"}}` |
//! | `POST /_sim/cancellations` | body: `{"external_order_id", "reason"?}`; cancels it the same way |
//!
//! The `/_sim/` routes are for people running the demo (`curl`); tests use the Rust API.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimServer, StatusFeed,
    WebhookAnswer, lock, lost_on_the_way, post_webhook,
};
use crossdock_model::Status;
use serde::Deserialize;
use uuid::Uuid;

use crate::wire::{
    AppAddress, AppAmounts, AppCustomer, AppDelivery, AppEvent, AppFulfillment, AppItem,
    AppLocation, AppModifier, AppOrder, AppPayment, ORDER_CANCELLED, ORDER_CREATED, ORDER_STATUS,
    StatusCallback,
};
use crate::{DEFAULT_REPLAY_WINDOW_S, signed_headers, verify_signed};

/// The path of the simulator's status callback endpoint.
pub const CALLBACK_PATH: &str = "/callbacks/status";

/// The brand the simulator's orders carry (the chain fixture's brand).
pub const SIM_BRAND: &str = "crossdock-pizza";

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The hub's own_app webhook, e.g. `http://127.0.0.1:8080/webhooks/own_app`.
    pub hub_webhook_url: String,
    /// The secret shared with the hub (`crate::DEV_SIGNING_SECRET` in development).
    pub signing_secret: String,
}

/// An order the simulator placed, with what it sent and what the hub answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    /// The app's order id.
    pub external_order_id: String,
    pub event_id: String,
    /// The `X-Crossdock-Timestamp` it was signed with.
    pub timestamp: i64,
    /// The exact bytes sent.
    pub body: Vec<u8>,
    pub answer: WebhookAnswer,
}

/// The running simulator.
#[derive(Debug)]
pub struct OwnAppSim {
    server: SimServer,
    state: Arc<SimState>,
}

#[derive(Debug)]
struct SimState {
    /// Where webhooks go; settable once the hub's address is known.
    hub_webhook_url: std::sync::RwLock<String>,
    signing_secret: String,
    /// [`SimServer::base_url`], set once the server listens (the port is only known then);
    /// placing an order from `POST /_sim/orders` needs it for the callback URL.
    base_url: OnceLock<String>,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
    /// Each order's status as [`OwnAppSim::order_status`] reads it from the call log (the
    /// last callback taken), kept so that a callback repeating it is not heard again.
    last_taken: Mutex<HashMap<String, Status>>,
    http: reqwest::Client,
}

impl OwnAppSim {
    /// Starts the server. Errors: the address cannot be bound, or no HTTP client.
    pub async fn start(config: SimConfig) -> io::Result<Self> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(io::Error::other)?;
        let state = Arc::new(SimState {
            hub_webhook_url: std::sync::RwLock::new(config.hub_webhook_url),
            signing_secret: config.signing_secret,
            base_url: OnceLock::new(),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
            last_taken: Mutex::new(HashMap::new()),
            http,
        });
        let router = axum::Router::new()
            .route(CALLBACK_PATH, post(receive_callback))
            .route("/_sim/calls", get(list_calls))
            .route("/_sim/orders", post(place_sample))
            .route("/_sim/cancellations", post(cancel_order))
            .with_state(Arc::clone(&state));
        let server = SimServer::serve(router, config.bind).await?;
        let _ = state.base_url.set(server.base_url());
        tracing::info!(addr = %server.addr, "Own app simulator listening.");
        Ok(Self { server, state })
    }

    /// `http://host:port`; an unspecified bind address (`0.0.0.0`) shows as loopback.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The callback URL placed orders carry.
    pub fn callback_url(&self) -> String {
        self.state.callback_url()
    }

    /// Builds the app's `order.created` for `sample` and sends it, signed now.
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.state.place(sample, true).await
    }

    /// Builds the app's `order.created` for `sample` but loses it on the way: the hub
    /// never receives it (the answer is [`lost_on_the_way`]); [`OwnAppSim::resend`]
    /// delivers it, as the app's retry would.
    pub async fn place_order_lost(&self, sample: &SampleOrder) -> PlacedOrder {
        self.state.place(sample, false).await
    }

    /// Sends a placed order again: the same bytes and headers, including the original
    /// timestamp. The hub should answer it as a duplicate (or as stale, once the replay window
    /// has passed).
    pub async fn resend(&self, placed: &PlacedOrder) -> WebhookAnswer {
        self.send_signed_at(placed.body.clone(), placed.timestamp)
            .await
    }

    /// Sends `body` signed as of `timestamp` (unix seconds).
    pub async fn send_signed_at(&self, body: Vec<u8>, timestamp: i64) -> WebhookAnswer {
        self.state.send_signed_at(body, timestamp).await
    }

    /// Sends `body` with exactly `headers` (plus the JSON content type), unsigned: for forged,
    /// missing or malformed signatures.
    pub async fn send_raw(&self, body: Vec<u8>, headers: Vec<(String, String)>) -> WebhookAnswer {
        post_webhook(
            &self.state.http,
            &self.state.hub_webhook_url(),
            &headers,
            "application/json",
            body,
        )
        .await
    }

    /// Sends an `order.cancelled` for `external_order_id`, signed now.
    pub async fn cancel(&self, external_order_id: &str, reason: &str) -> WebhookAnswer {
        self.state.cancel(external_order_id, Some(reason)).await
    }

    /// Sends the next webhooks to `url` (for a hub that started after the simulator).
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        match self.state.hub_webhook_url.write() {
            Ok(mut guard) => *guard = url.into(),
            Err(poisoned) => *poisoned.into_inner() = url.into(),
        }
    }

    /// The order's status as the app knows it: the last status callback the hub made for
    /// it and the app took. `None` before any.
    pub fn order_status(&self, external_order_id: &str) -> Option<Status> {
        self.state
            .calls
            .all()
            .into_iter()
            .rev()
            .filter(|call| (200..300).contains(&call.answered))
            .find(|call| call.body["order_id"] == external_order_id)
            .and_then(|call| Status::parse(call.body["status"].as_str()?))
    }

    /// Every status callback the hub made.
    pub fn calls(&self) -> &CallLog {
        &self.state.calls
    }

    /// Misbehaviour for the next status callbacks.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The statuses the app heard: a status callback answered 200 whose status differs
    /// from the order's before (what [`OwnAppSim::order_status`] reads right after it), by
    /// the callback's `order_id`.
    pub fn status_feed(&self) -> &StatusFeed {
        &self.state.feed
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

impl SimState {
    fn hub_webhook_url(&self) -> String {
        match self.hub_webhook_url.read() {
            Ok(url) => url.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    fn callback_url(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.base_url())
    }

    async fn send_signed_at(&self, body: Vec<u8>, timestamp: i64) -> WebhookAnswer {
        let headers = signed_headers(self.signing_secret.as_bytes(), timestamp, &body);
        post_webhook(
            &self.http,
            &self.hub_webhook_url(),
            &headers,
            "application/json",
            body,
        )
        .await
    }

    async fn place(&self, sample: &SampleOrder, deliver: bool) -> PlacedOrder {
        let now = Utc::now();
        let external_order_id = new_order_id(now);
        let event_id = new_event_id();
        let event = AppEvent {
            event: ORDER_CREATED.to_owned(),
            event_id: event_id.clone(),
            order: Some(app_order(
                sample,
                &external_order_id,
                now,
                self.callback_url(),
            )),
            order_id: None,
            reason: None,
        };
        let body = to_body(&event);
        let timestamp = now.timestamp();
        let answer = if deliver {
            self.send_signed_at(body.clone(), timestamp).await
        } else {
            lost_on_the_way()
        };
        tracing::debug!(
            external_order_id = %external_order_id,
            event_id = %event_id,
            answered = answer.status,
            "Simulated app placed an order."
        );
        PlacedOrder {
            external_order_id,
            event_id,
            timestamp,
            body,
            answer,
        }
    }

    async fn cancel(&self, external_order_id: &str, reason: Option<&str>) -> WebhookAnswer {
        let event = AppEvent {
            event: ORDER_CANCELLED.to_owned(),
            event_id: new_event_id(),
            order: None,
            order_id: Some(external_order_id.to_owned()),
            reason: reason.map(str::to_owned),
        };
        self.send_signed_at(to_body(&event), Utc::now().timestamp())
            .await
    }

    /// The answer to a status callback, and, when it is taken (answered 200), the order
    /// and status it sets.
    async fn judge_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Response, Option<(String, Status)>) {
        let refuse = |status: StatusCode, error: &str, message: String| {
            tracing::debug!(
                answered = status.as_u16(),
                %message,
                "Simulated app refused a status callback."
            );
            (
                status,
                Json(serde_json::json!({ "error": error, "message": message })),
            )
                .into_response()
        };
        if let Err(error) = verify_signed(
            self.signing_secret.as_bytes(),
            headers,
            body,
            Utc::now(),
            DEFAULT_REPLAY_WINDOW_S,
        ) {
            return (
                refuse(StatusCode::UNAUTHORIZED, error.kind(), error.to_string()),
                None,
            );
        }
        let taken = match check_callback(body) {
            Ok(taken) => taken,
            Err(problem) => return (refuse(StatusCode::BAD_REQUEST, "malformed", problem), None),
        };
        let fault = self.faults.apply(|status| {
            Json(serde_json::json!({
                "error": "simulated_fault",
                "message": format!("simulated answer {}", status.as_u16()),
            }))
            .into_response()
        });
        if let Some(answer) = fault.await {
            tracing::debug!(
                answered = answer.status().as_u16(),
                "Simulated app answered a status callback with a scripted fault."
            );
            return (answer, None);
        }
        tracing::debug!("Simulated app took a status callback.");
        (
            (StatusCode::OK, Json(serde_json::json!({ "ok": true }))).into_response(),
            Some(taken),
        )
    }

    /// Tells the feed of a callback taken (and recorded) for `order_id`, unless the order
    /// already had that status.
    fn hear(&self, order_id: &str, status: Status) {
        let mut last_taken = lock(&self.last_taken);
        if last_taken.insert(order_id.to_owned(), status) != Some(status) {
            self.feed.heard(order_id, status);
        }
    }
}

/// Whether a verified callback body is a well-formed `order.status`; if so, its order id
/// and status.
fn check_callback(body: &[u8]) -> Result<(String, Status), String> {
    let callback: StatusCallback = crate::wire::from_json(body).map_err(|e| e.to_string())?;
    if callback.event != ORDER_STATUS {
        return Err(format!(
            "event: `{}` is not `{ORDER_STATUS}`",
            callback.event
        ));
    }
    let Some(status) = Status::parse(&callback.status) else {
        return Err(format!("status: `{}` is not a status", callback.status));
    };
    if DateTime::parse_from_rfc3339(&callback.at).is_err() {
        return Err(format!("at: `{}` is not RFC 3339", callback.at));
    }
    Ok((callback.order_id, status))
}

/// `OA20251123-3F9A1C2B7D40`: the date and 48 random bits.
fn new_order_id(now: DateTime<Utc>) -> String {
    let random = Uuid::now_v7().simple().to_string();
    let tail = random.get(20..).unwrap_or(&random).to_ascii_uppercase();
    format!("OA{}-{tail}", now.format("%Y%m%d"))
}

fn new_event_id() -> String {
    format!("evt_{}", Uuid::now_v7().simple())
}

fn to_body<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // The wire types are plain strings and numbers; serializing them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The app's order for `sample`: amounts consistent with the sample's own sums.
fn app_order(
    sample: &SampleOrder,
    external_order_id: &str,
    now: DateTime<Utc>,
    callback_url: String,
) -> AppOrder {
    let (fulfillment, delivery) = match &sample.fulfillment {
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            country,
        } => (
            AppFulfillment::Delivery,
            Some(AppDelivery {
                address: AppAddress {
                    lines: address_lines.clone(),
                    city: city.clone(),
                    postcode: Some(postcode.clone()).filter(|p| !p.is_empty()),
                    country: country.clone(),
                },
                location: AppLocation {
                    lat: *lat,
                    lng: *lng,
                },
                instructions: None,
            }),
        ),
        SampleFulfillment::Pickup => (AppFulfillment::Pickup, None),
    };
    let code: String = external_order_id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let placed_at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    AppOrder {
        id: external_order_id.to_owned(),
        code,
        brand: SIM_BRAND.to_owned(),
        placed_at: placed_at.fixed_offset(),
        fulfillment,
        store_id: sample.store_ref.clone(),
        scheduled_for: sample.scheduled_for.map(|at| at.fixed_offset()),
        customer: AppCustomer {
            name: sample.customer_name.clone(),
            phone: sample.customer_phone.clone(),
        },
        delivery,
        items: sample.items.iter().map(app_item).collect(),
        currency: sample.currency.clone(),
        amounts: AppAmounts {
            subtotal: sample.subtotal_minor(),
            discount: sample.discount_minor,
            delivery_fee: sample.delivery_fee_minor,
            service_fee: 0,
            tip: sample.tip_minor,
            tax: 0,
            tax_included: false,
            total: sample.total_minor(),
        },
        payment: AppPayment::Prepaid,
        notes: sample.notes.clone(),
        callback_url,
    }
}

fn app_item(item: &SampleItem) -> AppItem {
    AppItem {
        sku: item.plu.clone(),
        name: item.name.clone(),
        quantity: item.quantity,
        unit_price: item.unit_price_minor,
        notes: item.notes.clone(),
        modifiers: item.modifiers.iter().map(app_modifier).collect(),
    }
}

fn app_modifier(item: &SampleItem) -> AppModifier {
    AppModifier {
        group: None,
        name: item.name.clone(),
        sku: Some(item.plu.clone()),
        quantity: item.quantity,
        unit_price: item.unit_price_minor,
        removed: false,
        modifiers: item.modifiers.iter().map(app_modifier).collect(),
    }
}

async fn receive_callback(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, taken) = state.judge_callback(&headers, &body).await;
    state.calls.record(
        "POST",
        CALLBACK_PATH,
        &headers,
        &body,
        answer.status().as_u16(),
    );
    // Heard once recorded: `order_status` reads it from the call log.
    if let Some((order_id, status)) = taken {
        state.hear(&order_id, status);
    }
    answer
}

async fn list_calls(State(state): State<Arc<SimState>>) -> Response {
    Json(state.calls.all()).into_response()
}

fn hub_answer(answer: &WebhookAnswer) -> serde_json::Value {
    serde_json::json!({ "status": answer.status, "body": answer.body })
}

async fn place_sample(
    State(state): State<Arc<SimState>>,
    Json(sample): Json<SampleOrder>,
) -> Response {
    let placed = state.place(&sample, true).await;
    Json(serde_json::json!({
        "external_order_id": placed.external_order_id,
        "event_id": placed.event_id,
        "hub": hub_answer(&placed.answer),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct CancelRequest {
    external_order_id: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn cancel_order(
    State(state): State<Arc<SimState>>,
    Json(request): Json<CancelRequest>,
) -> Response {
    let answer = state
        .cancel(&request.external_order_id, request.reason.as_deref())
        .await;
    Json(serde_json::json!({
        "external_order_id": request.external_order_id,
        "hub": hub_answer(&answer),
    }))
    .into_response()
}
