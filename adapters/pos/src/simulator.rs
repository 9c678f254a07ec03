//! [`PosSim`]: a simulator of the chain's store POS terminals, for tests, the demo and the
//! benchmark.
//!
//! It plays the POS side of the API in the crate docs: it rings up orders built from
//! [`SampleOrder`]s and posts them to the hub as signed `order.created` events, voids them
//! with `order.voided`, and records every request it sent with the hub's answer. It holds the
//! chain's master key, as a fleet of POS terminals would hold their stores' keys: each request
//! is signed with the key of the store it is for (`store_key(master, store)`).
//!
//! It can also misbehave as a POS might: send the same event again ([`PosSim::replay`]), sign
//! with a wrong key ([`PosSim::post_with_key`]), sign at a chosen time
//! ([`PosSim::post_signed_at`], for stale requests), or send any bytes with any headers
//! ([`PosSim::post_raw`]).
//!
//! The hub never calls a POS, so the simulator has no platform endpoint to serve and nothing
//! to fault: its HTTP server only has control routes, for people running the demo (`curl`);
//! tests use the Rust API.
//!
//! | route | what |
//! |---|---|
//! | `POST /_sim/orders` | body: a [`SampleOrder`] (its `store_ref` is the store code); rings it up and posts it; answers `{"external_order_id", "event_id", "hub": {"status", "body"}}` |
//! | `POST /_sim/voids` | body: `{"external_order_id", "reason"?}`; voids it the same way |
//! | `GET /_sim/sent` | every request sent, with the hub's answer |
//! | `GET /_sim/orders` | every order rung up, with what the POS knows of it (`received`, `cancelled`) |
//!
//! What the POS knows of an order is only what it did itself: an order is `received` once
//! posted and `cancelled` once voided. The hub sends nothing back, so its [`StatusFeed`]
//! ([`PosSim::status_feed`], which every simulator has) never hears anything.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use crossdock_channel::sim::{
    SampleFulfillment, SampleItem, SampleOrder, SimServer, StatusFeed, WebhookAnswer, lock,
    post_webhook,
};
use crossdock_model::{Status, StoreId};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::wire::{
    CreatedEvent, Envelope, ORDER_CREATED, ORDER_VOIDED, PosAddress, PosCustomer, PosDiscount,
    PosFees, PosFulfillment, PosFulfillmentType, PosLine, PosLocation, PosModifier, PosOrder,
    PosPayment, PosSource, PosTotals, PosVoid, VoidedEvent,
};
use crate::{API_VERSION, signed_headers, store_key};

/// The register the simulator rings orders up on, unless configured otherwise.
pub const DEFAULT_REGISTER: &str = "R1";

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The hub's POS webhook, e.g. `http://127.0.0.1:8080/webhooks/pos`; may be set later
    /// with [`PosSim::connect`].
    pub hub_webhook_url: String,
    /// The chain's master key ([`crate::DEV_MASTER_KEY`] in development).
    pub master_key: String,
    /// The register name written on every order (`R1`).
    pub register: String,
}

/// Why the simulator could not send what it was asked to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("a POS order needs a store: the sample's store_ref is empty")]
    NoStore,
    #[error("`{0}` is not a store code")]
    BadStore(String),
    #[error("`{0}` is not a POS order id (`<store>:<number>`)")]
    BadOrderId(String),
}

/// One request the simulator sent, and what the hub answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Order of sending, from 1.
    pub seq: u64,
    /// `order.created`, `order.voided`, or `raw` for bytes sent as given.
    pub event: String,
    pub event_id: Option<String>,
    /// The store the request is signed for (as its header says).
    pub store: Option<String>,
    /// `<store>:<number>` of the order it is about.
    pub external_order_id: Option<String>,
    /// The headers sent (authentication headers included).
    pub headers: Vec<(String, String)>,
    /// The exact bytes sent.
    pub body: Vec<u8>,
    pub answer: WebhookAnswer,
}

impl Posted {
    /// The hub took it (2xx).
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answer.status)
    }

    fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "event": self.event,
            "event_id": self.event_id,
            "store": self.store,
            "external_order_id": self.external_order_id,
            "body": serde_json::from_slice::<Value>(&self.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned())),
            "hub": { "status": self.answer.status, "body": self.answer.body },
        })
    }
}

/// What the POS knows of an order it rang up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownOrder {
    pub store: String,
    pub number: String,
    /// `Received` once posted, `Cancelled` once voided.
    pub status: Status,
}

/// The running simulator.
#[derive(Debug)]
pub struct PosSim {
    server: SimServer,
    state: Arc<SimState>,
}

#[derive(Debug)]
struct SimState {
    hub_webhook_url: Mutex<String>,
    master_key: String,
    register: String,
    http: reqwest::Client,
    /// By external order id.
    orders: Mutex<BTreeMap<String, KnownOrder>>,
    sent: Mutex<Vec<Posted>>,
    feed: StatusFeed,
}

impl PosSim {
    /// Starts the server. Errors: the address cannot be bound, or no HTTP client.
    pub async fn start(config: SimConfig) -> io::Result<Self> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(io::Error::other)?;
        let state = Arc::new(SimState {
            hub_webhook_url: Mutex::new(config.hub_webhook_url),
            master_key: config.master_key,
            register: config.register,
            http,
            orders: Mutex::new(BTreeMap::new()),
            sent: Mutex::new(Vec::new()),
            feed: StatusFeed::default(),
        });
        let router = axum::Router::new()
            .route("/_sim/orders", post(place_sample).get(list_orders))
            .route("/_sim/voids", post(void_order))
            .route("/_sim/sent", get(list_sent))
            .with_state(Arc::clone(&state));
        let server = SimServer::serve(router, config.bind).await?;
        tracing::info!(addr = %server.addr, "POS simulator listening.");
        Ok(Self { server, state })
    }

    /// `http://host:port` of the control routes.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Points the simulator at the hub's POS webhook (`{hub}/webhooks/pos`).
    pub fn connect(&self, hub_webhook_url: &str) {
        *lock(&self.state.hub_webhook_url) = hub_webhook_url.to_owned();
    }

    /// Where requests go.
    pub fn hub_webhook_url(&self) -> String {
        lock(&self.state.hub_webhook_url).clone()
    }

    /// The key the simulator signs `store`'s requests with.
    pub fn store_key(&self, store: &str) -> String {
        store_key(self.state.master_key.as_bytes(), store)
    }

    /// Rings up `sample` at its store (`store_ref`) and posts it, signed now.
    pub async fn place_order(&self, sample: &SampleOrder) -> Result<Posted, SimError> {
        self.state.place(sample).await
    }

    /// Voids order `external_order_id` (`<store>:<number>`), signed now by its store.
    pub async fn void(
        &self,
        external_order_id: &str,
        reason: Option<&str>,
    ) -> Result<Posted, SimError> {
        self.state.void(external_order_id, reason).await
    }

    /// Sends a request again: the same bytes and headers, the original timestamp included.
    /// The hub answers it as a duplicate, or as stale once the replay window has passed.
    pub async fn replay(&self, posted: &Posted) -> Posted {
        self.state
            .send(Outgoing {
                event: posted.event.clone(),
                event_id: posted.event_id.clone(),
                store: posted.store.clone(),
                external_order_id: posted.external_order_id.clone(),
                headers: posted.headers.clone(),
                body: posted.body.clone(),
            })
            .await
    }

    /// Sends the same body again, signed now: a POS retrying after a 5xx or no answer.
    pub async fn retry(&self, posted: &Posted) -> Result<Posted, SimError> {
        let store = posted.store.clone().ok_or(SimError::NoStore)?;
        Ok(self
            .post_signed_at(&store, posted.body.clone(), Utc::now().timestamp())
            .await)
    }

    /// Sends `body` signed by `store` at `timestamp` (unix seconds).
    pub async fn post_signed_at(&self, store: &str, body: Vec<u8>, timestamp: i64) -> Posted {
        let key = self.store_key(store);
        self.post_with_key_at(store, &key, body, timestamp).await
    }

    /// Sends `body` for `store`, signed now with `key` instead of the store's key.
    pub async fn post_with_key(&self, store: &str, key: &str, body: Vec<u8>) -> Posted {
        self.post_with_key_at(store, key, body, Utc::now().timestamp())
            .await
    }

    async fn post_with_key_at(
        &self,
        store: &str,
        key: &str,
        body: Vec<u8>,
        timestamp: i64,
    ) -> Posted {
        let envelope = serde_json::from_slice::<Envelope>(&body).ok();
        self.state
            .send(Outgoing {
                event: envelope
                    .as_ref()
                    .map_or_else(|| "raw".to_owned(), |e| e.event.clone()),
                event_id: envelope.map(|e| e.event_id),
                store: Some(store.to_owned()),
                external_order_id: None,
                headers: signed_headers(key, store, timestamp, &body),
                body,
            })
            .await
    }

    /// Sends `body` with exactly `headers` (plus the JSON content type): for missing or
    /// malformed authentication.
    pub async fn post_raw(&self, body: Vec<u8>, headers: Vec<(String, String)>) -> Posted {
        self.state
            .send(Outgoing {
                event: "raw".to_owned(),
                event_id: None,
                store: None,
                external_order_id: None,
                headers,
                body,
            })
            .await
    }

    /// What the POS knows of an order: `Received` once posted, `Cancelled` once voided.
    pub fn status(&self, external_order_id: &str) -> Option<Status> {
        lock(&self.state.orders)
            .get(external_order_id)
            .map(|order| order.status)
    }

    /// Every order rung up, by external order id.
    pub fn orders(&self) -> BTreeMap<String, KnownOrder> {
        lock(&self.state.orders).clone()
    }

    /// Every request sent, with the hub's answers, in order.
    pub fn sent(&self) -> Vec<Posted> {
        lock(&self.state.sent).clone()
    }

    /// The statuses the POS heard from the hub: none, ever. The hub never calls a POS
    /// (what [`PosSim::status`] reads is only what the POS did itself), so nothing is
    /// told to this feed; it is here so that every simulator has one.
    pub fn status_feed(&self) -> &StatusFeed {
        &self.state.feed
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// A request about to be sent.
struct Outgoing {
    event: String,
    event_id: Option<String>,
    store: Option<String>,
    external_order_id: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl SimState {
    async fn send(&self, outgoing: Outgoing) -> Posted {
        let url = lock(&self.hub_webhook_url).clone();
        let answer = post_webhook(
            &self.http,
            &url,
            &outgoing.headers,
            "application/json",
            outgoing.body.clone(),
        )
        .await;
        tracing::debug!(
            event = %outgoing.event,
            store = ?outgoing.store,
            external_order_id = ?outgoing.external_order_id,
            answered = answer.status,
            "Simulated POS posted an event."
        );
        let mut sent = lock(&self.sent);
        let posted = Posted {
            seq: sent.len() as u64 + 1,
            event: outgoing.event,
            event_id: outgoing.event_id,
            store: outgoing.store,
            external_order_id: outgoing.external_order_id,
            headers: outgoing.headers,
            body: outgoing.body,
            answer,
        };
        sent.push(posted.clone());
        posted
    }

    async fn send_event<T: serde::Serialize>(
        &self,
        event: &str,
        event_id: String,
        store: &StoreId,
        external_order_id: String,
        body: &T,
    ) -> Posted {
        let body = to_body(body);
        let key = store_key(self.master_key.as_bytes(), store.as_str());
        self.send(Outgoing {
            event: event.to_owned(),
            event_id: Some(event_id),
            store: Some(store.to_string()),
            external_order_id: Some(external_order_id),
            headers: signed_headers(&key, store.as_str(), Utc::now().timestamp(), &body),
            body,
        })
        .await
    }

    async fn place(&self, sample: &SampleOrder) -> Result<Posted, SimError> {
        let store = sample
            .store_ref
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(SimError::NoStore)?;
        let store = StoreId::parse(store).map_err(|_| SimError::BadStore(store.to_owned()))?;
        let now = Utc::now();
        let number = new_number(&self.register, now);
        let event_id = new_event_id();
        let external_order_id = crate::convert::external_order_id(store.as_str(), &number);
        let event = CreatedEvent {
            envelope: envelope(ORDER_CREATED, &event_id, &store),
            order: pos_order(sample, &number, &self.register, now),
        };
        lock(&self.orders).insert(
            external_order_id.clone(),
            KnownOrder {
                store: store.to_string(),
                number,
                status: Status::Received,
            },
        );
        Ok(self
            .send_event(ORDER_CREATED, event_id, &store, external_order_id, &event)
            .await)
    }

    async fn void(
        &self,
        external_order_id: &str,
        reason: Option<&str>,
    ) -> Result<Posted, SimError> {
        let (store, number) = external_order_id
            .split_once(':')
            .filter(|(_, number)| !number.is_empty())
            .ok_or_else(|| SimError::BadOrderId(external_order_id.to_owned()))?;
        let store = StoreId::parse(store).map_err(|_| SimError::BadStore(store.to_owned()))?;
        let event_id = new_event_id();
        let event = VoidedEvent {
            envelope: envelope(ORDER_VOIDED, &event_id, &store),
            void: PosVoid {
                number: number.to_owned(),
                reason: reason.map(str::to_owned),
            },
        };
        lock(&self.orders)
            .entry(external_order_id.to_owned())
            .and_modify(|order| order.status = Status::Cancelled)
            .or_insert_with(|| KnownOrder {
                store: store.to_string(),
                number: number.to_owned(),
                status: Status::Cancelled,
            });
        Ok(self
            .send_event(
                ORDER_VOIDED,
                event_id,
                &store,
                external_order_id.to_owned(),
                &event,
            )
            .await)
    }
}

fn envelope(event: &str, event_id: &str, store: &StoreId) -> Envelope {
    Envelope {
        version: API_VERSION,
        event: event.to_owned(),
        event_id: event_id.to_owned(),
        store: Some(store.to_string()),
    }
}

/// `R1-20261120-3F9A1C2B`: register, date and 32 random bits (unique across restarts).
fn new_number(register: &str, now: DateTime<Utc>) -> String {
    let random = Uuid::now_v7().simple().to_string();
    let tail = random.get(24..).unwrap_or(&random).to_ascii_uppercase();
    format!("{register}-{}-{tail}", now.format("%Y%m%d"))
}

fn new_event_id() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

fn to_body<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // The wire types are plain strings and numbers; serializing them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The POS order for `sample`, with figures consistent with the sample's own sums. A
/// delivery or a scheduled order was taken by phone; anything else was a walk-in.
fn pos_order(sample: &SampleOrder, number: &str, register: &str, now: DateTime<Utc>) -> PosOrder {
    let phone_order = sample.scheduled_for.is_some()
        || matches!(sample.fulfillment, SampleFulfillment::Delivery { .. });
    let (fulfillment, payment) = match &sample.fulfillment {
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            country,
        } => (
            PosFulfillment {
                kind: PosFulfillmentType::Delivery,
                table: None,
                scheduled_for: sample.scheduled_for.map(|at| at.fixed_offset()),
                address: Some(PosAddress {
                    lines: address_lines.clone(),
                    city: city.clone(),
                    postcode: Some(postcode.clone()).filter(|p| !p.is_empty()),
                    country: country.clone(),
                }),
                location: Some(PosLocation {
                    lat: *lat,
                    lng: *lng,
                }),
                instructions: None,
            },
            PosPayment::CashOnDelivery,
        ),
        SampleFulfillment::Pickup => (
            PosFulfillment {
                kind: PosFulfillmentType::Pickup,
                table: None,
                scheduled_for: sample.scheduled_for.map(|at| at.fixed_offset()),
                address: None,
                location: None,
                instructions: None,
            },
            if phone_order {
                PosPayment::PayAtStore
            } else {
                PosPayment::Counter
            },
        ),
    };
    let customer =
        (!sample.customer_name.is_empty() || sample.customer_phone.is_some()).then(|| {
            PosCustomer {
                name: Some(sample.customer_name.clone()).filter(|n| !n.is_empty()),
                phone: sample.customer_phone.clone(),
            }
        });
    let placed_at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    PosOrder {
        number: number.to_owned(),
        source: if phone_order {
            PosSource::Phone
        } else {
            PosSource::WalkIn
        },
        register: Some(register.to_owned()),
        placed_at: placed_at.fixed_offset(),
        fulfillment,
        customer,
        notes: sample.notes.clone(),
        currency: sample.currency.clone(),
        lines: sample.items.iter().map(pos_line).collect(),
        totals: PosTotals {
            subtotal: sample.subtotal_minor(),
            discounts: if sample.discount_minor > 0 {
                vec![PosDiscount {
                    label: "Promotion".to_owned(),
                    amount: sample.discount_minor,
                }]
            } else {
                Vec::new()
            },
            tax: 0,
            tax_included: false,
            fees: (sample.delivery_fee_minor != 0).then(|| PosFees {
                delivery: sample.delivery_fee_minor,
                ..PosFees::default()
            }),
            tip: sample.tip_minor,
            total: sample.total_minor(),
        },
        payment,
    }
}

fn pos_line(item: &SampleItem) -> PosLine {
    PosLine {
        plu: item.plu.clone(),
        name: item.name.clone(),
        quantity: item.quantity,
        unit_price: item.unit_price_minor,
        total: None,
        notes: item.notes.clone(),
        modifiers: item.modifiers.iter().map(pos_modifier).collect(),
    }
}

fn pos_modifier(item: &SampleItem) -> PosModifier {
    PosModifier {
        group: None,
        plu: Some(item.plu.clone()),
        name: item.name.clone(),
        quantity: item.quantity,
        unit_price: item.unit_price_minor,
        removed: false,
        modifiers: item.modifiers.iter().map(pos_modifier).collect(),
    }
}

fn answer_json(result: Result<Posted, SimError>) -> Response {
    match result {
        Ok(posted) => Json(json!({
            "external_order_id": posted.external_order_id,
            "event_id": posted.event_id,
            "hub": { "status": posted.answer.status, "body": posted.answer.body },
        }))
        .into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "bad_request", "message": error.to_string() })),
        )
            .into_response(),
    }
}

async fn place_sample(
    State(state): State<Arc<SimState>>,
    Json(sample): Json<SampleOrder>,
) -> Response {
    answer_json(state.place(&sample).await)
}

#[derive(Debug, Deserialize)]
struct VoidRequest {
    external_order_id: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn void_order(
    State(state): State<Arc<SimState>>,
    Json(request): Json<VoidRequest>,
) -> Response {
    answer_json(
        state
            .void(&request.external_order_id, request.reason.as_deref())
            .await,
    )
}

async fn list_sent(State(state): State<Arc<SimState>>) -> Response {
    let sent: Vec<Value> = lock(&state.sent).iter().map(Posted::to_json).collect();
    Json(sent).into_response()
}

async fn list_orders(State(state): State<Arc<SimState>>) -> Response {
    let orders: Vec<Value> = lock(&state.orders)
        .iter()
        .map(|(id, order)| {
            json!({
                "external_order_id": id,
                "store": order.store,
                "number": order.number,
                "status": order.status,
            })
        })
        .collect();
    Json(orders).into_response()
}
