//! A simulator of JET Connect: an HTTP server that behaves like its documented order
//! injection, for the conformance kit, the tests and people running it by hand.
//!
//! It sends the hub signed webhooks built from a platform-neutral [`SampleOrder`] in JET
//! Connect's wire format and signed with the adapter's recipe ([`hash_header`]):
//!
//! - Receive Order ([`JustEatSim::place_order`]) to the hub's webhook URL. The hub's
//!   answer decides the order's fate, as at JET: 200 puts it in the POS at once
//!   ([`OrderState::Injected`]), 202 makes it pending until a status call
//!   ([`OrderState::Pending`]), anything else fails the injection (JET sends the order to
//!   the Orderpad: [`OrderState::WebhookRefused`]). A pending order not answered within
//!   `accept_deadline` (5 minutes) is "failed to inject" ([`OrderState::TimedOut`]).
//! - Cancel Order ([`JustEatSim::cancel_order`]) to `{hub webhook}/order-cancelled`.
//! - Driver Status ([`JustEatSim::driver_status`]) to `{hub webhook}/driver-status`.
//!
//! It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `POST /order/{id}/sent-to-pos-success` | `{"happenedAt"}`: a pending order is in the POS; 204 |
//! | `POST /order/{id}/sent-to-pos-failed` | `{"happenedAt", "errorCode", "errorMessage"}`: a pending order failed to inject (JET's backup flow); 204 |
//! | `GET /_sim/calls` | the call log as JSON |
//! | `POST /_sim/orders` | body: a [`SampleOrder`]; places it like [`JustEatSim::place_order`] |
//!
//! Every API call needs `X-Flyt-API-Key` (else 401) and `Content-Type: application/json`
//! (else 400). An unknown order is 404; a body of the wrong shape (a missing or non-RFC 3339
//! `happenedAt`, an `errorCode` JET does not list, an empty `errorMessage`) 400; a call on
//! an order that is no longer pending 400, as JET documents ("will fail"). Errors are in
//! JET's standard shape (`faultId`, `traceId`, `errors[{description, errorCode}]`).
//! Scripted [`Faults`] (429, 5xx, delays) apply before anything else. JET publishes no rate
//! limit for these calls, so none is enforced beyond the faults. Each call is recorded in
//! the [`CallLog`] (with `X-Flyt-API-Key` redacted) with its answer, and each order's state
//! reads back as a unified [`Status`] ([`JustEatSim::status`]). A call taken (204) is told
//! to the [`StatusFeed`] ([`JustEatSim::status_feed`]).

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
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use crossdock_channel::signature::{constant_time_eq, hmac_sha256};
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimClock, SimServer, StatusFeed,
    WebhookAnswer, lock, post_webhook,
};
use crossdock_model::Status;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::wire::{self, Amount, Text};
use crate::{
    ACCEPT_WINDOW, API_KEY_HEADER, CALL_FAILED, CALL_SUCCESS, DEV_API_KEY, DEV_WEBHOOK_SECRET,
    EVENT_DRIVER_STATUS, EVENT_ORDER_CANCELLED,
};

/// The store used when a sample order names none.
pub const DEFAULT_STORE_ID: &str = "store-1";

/// How the signature header is written (JET's capitalisation).
pub const SIGNATURE_HEADER_NAME: &str = "X-JET-Connect-Hash";

/// An item (or option) repeated more than this many times is sent once with a `quantity`
/// instead (JET repeats the object; the simulator must not allocate a typo's billion).
const MAX_REPEAT: i64 = 50;

/// The signature of `body`: base64 HMAC-SHA256 under the webhook secret.
pub fn sign(webhook_secret: &str, body: &[u8]) -> String {
    BASE64.encode(hmac_sha256(webhook_secret.as_bytes(), &[body]))
}

/// The `X-JET-Connect-Hash` value for `body`, signed at `t_ms` (unix milliseconds; not
/// covered by the signature).
pub fn hash_header(webhook_secret: &str, body: &[u8], t_ms: i64) -> String {
    format!(
        "HMAC-SHA256 t={t_ms},signature={}",
        sign(webhook_secret, body)
    )
}

/// The headers a webhook with `body` is sent with, signed at `t_ms`.
pub fn webhook_headers(webhook_secret: &str, body: &[u8], t_ms: i64) -> Vec<(String, String)> {
    vec![(
        SIGNATURE_HEADER_NAME.to_owned(),
        hash_header(webhook_secret, body, t_ms),
    )]
}

/// RFC 3339 with a `Z`.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Unix seconds as JET writes them: a string.
fn unix(time: DateTime<Utc>) -> Text {
    Text::String(time.timestamp().to_string())
}

/// JET's ids of one new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderIds {
    /// The JET Connect order id (`id`).
    pub order_id: String,
    /// The order number the customer quotes (`third_party_order_reference`).
    pub reference: String,
}

impl OrderIds {
    /// Fresh ids, as JET would make them.
    pub fn fresh() -> Self {
        let uuid = Uuid::now_v7();
        let digits: u64 = uuid.as_u128() as u64 % 1_000_000_000;
        Self {
            order_id: uuid.hyphenated().to_string(),
            reference: format!("{digits:09}"),
        }
    }
}

/// What [`SampleOrder`] does not say about a JET order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderStyle {
    /// A delivery by the restaurant's own driver (`delivery-by-merchant`) rather than JET's
    /// courier (`delivery-by-delivery-partner`).
    pub merchant_delivery: bool,
    /// Paid in cash (`CASH`) rather than by card.
    pub cash: bool,
    /// A `serviceCharge` adjustment, in minor units (0: none).
    pub service_charge_minor: i64,
}

/// `n` copies of `make()` (JET repeats an item per unit), or one with a `quantity` beyond
/// [`MAX_REPEAT`].
fn repeated(n: i64, make: impl Fn() -> wire::Item) -> Vec<wire::Item> {
    if n > MAX_REPEAT {
        let mut item = make();
        item.quantity = Some(n);
        vec![item]
    } else {
        (0..n.max(0)).map(|_| make()).collect()
    }
}

fn item(sample: &SampleItem) -> wire::Item {
    wire::Item {
        name: sample.name.clone(),
        description: Some(String::new()),
        plu: Some(sample.plu.clone()),
        price: Amount::from(sample.unit_price_minor),
        notes: sample.notes.clone(),
        quantity: None,
        unit_deposit_amount: None,
        children: sample
            .modifiers
            .iter()
            .flat_map(|modifier| repeated(modifier.quantity, || item(modifier)))
            .collect(),
    }
}

fn names(full: &str) -> (String, String) {
    let full = full.trim();
    match full.split_once(' ') {
        Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
        None => (full.to_owned(), String::new()),
    }
}

fn masked(text: &str) -> Option<String> {
    Some("*".repeat(text.chars().count().max(4)))
}

fn adjustment(name: &str, minor: i64) -> wire::Adjustment {
    wire::Adjustment {
        name: name.to_owned(),
        price: wire::Price {
            inc_tax: Amount::from(minor),
            tax: Amount::from(0),
        },
    }
}

/// JET's location id for a store: any stable number will do for a simulator.
fn location_id(store: &str) -> i64 {
    store
        .bytes()
        .fold(1_000_i64, |sum, b| (sum * 31 + i64::from(b)) % 1_000_000)
}

/// JET's Receive Order body for `sample`, placed at `placed_at`.
///
/// Prices go as they are with no tax apart (UK menu prices include VAT; `tax` 0); the
/// delivery fee, a service charge, the discount (negative) and the tip are adjustments.
pub(crate) fn order(
    sample: &SampleOrder,
    ids: &OrderIds,
    placed_at: DateTime<Utc>,
    style: OrderStyle,
) -> wire::ReceiveOrder {
    let store = sample
        .store_ref
        .clone()
        .unwrap_or_else(|| DEFAULT_STORE_ID.to_owned());
    let (first_name, last_name) = names(&sample.customer_name);
    let customer = |masked_names: bool| wire::Person {
        first_name: if masked_names {
            masked(&first_name)
        } else {
            Some(first_name.clone())
        },
        last_name: if masked_names {
            masked(&last_name)
        } else {
            Some(last_name.clone())
        },
        phone_number: sample.customer_phone.clone(),
        phone_masking_code: Some(String::new()),
        line_one: None,
        line_two: None,
        city: None,
        postcode: None,
        email: None,
        coordinates: None,
    };
    let target = sample.scheduled_for;
    let (kind, collect_at, deliver_at, collector, delivery, driver) = match &sample.fulfillment {
        SampleFulfillment::Pickup => (
            wire::OrderType::CollectionByCustomer,
            Some(target.unwrap_or(placed_at + TimeDelta::minutes(20))),
            None,
            Some(customer(false)),
            None,
            None,
        ),
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            ..
        } if style.merchant_delivery => {
            let line = |i: usize| Some(address_lines.get(i).cloned().unwrap_or_default());
            (
                wire::OrderType::DeliveryByMerchant,
                None,
                Some(target.unwrap_or(placed_at + TimeDelta::minutes(45))),
                None,
                Some(wire::Person {
                    line_one: line(0),
                    line_two: line(1),
                    city: Some(city.clone()),
                    postcode: Some(postcode.clone()),
                    email: Some("customer@email.hidden".to_owned()),
                    coordinates: Some(wire::Coordinates {
                        latitude: Some(*lat),
                        longitude: Some(*lng),
                    }),
                    ..customer(false)
                }),
                None,
            )
        }
        SampleFulfillment::Delivery { city, postcode, .. } => (
            wire::OrderType::DeliveryByDeliveryPartner,
            Some(target.unwrap_or(placed_at + TimeDelta::minutes(25))),
            None,
            None,
            Some(wire::Person {
                line_one: masked("12 Example Street"),
                line_two: Some(String::new()),
                city: masked(city),
                postcode: masked(postcode),
                email: Some("customer@email.hidden".to_owned()),
                ..customer(true)
            }),
            Some(wire::Person {
                first_name: Some("Sam".to_owned()),
                last_name: Some("Rider".to_owned()),
                phone_number: Some("+44 20 7946 0000".to_owned()),
                phone_masking_code: None,
                line_one: None,
                line_two: None,
                city: None,
                postcode: None,
                email: None,
                coordinates: None,
            }),
        ),
    };

    let subtotal = sample.subtotal_minor();
    let mut adjustments = Vec::new();
    if sample.delivery_fee_minor != 0 {
        adjustments.push(adjustment("deliveryFee", sample.delivery_fee_minor));
    }
    if style.service_charge_minor != 0 {
        adjustments.push(adjustment("serviceCharge", style.service_charge_minor));
    }
    if sample.discount_minor != 0 {
        adjustments.push(adjustment(
            "discount",
            sample.discount_minor.saturating_neg(),
        ));
    }
    if sample.tip_minor != 0 {
        adjustments.push(adjustment("tip", sample.tip_minor));
    }
    let paid = sample
        .total_minor()
        .saturating_add(style.service_charge_minor);

    let mut extras = serde_json::Map::new();
    extras.insert(
        "asap".to_owned(),
        json!(if target.is_some() { "false" } else { "true" }),
    );
    extras.insert("justEatOrderReference".to_owned(), json!(ids.order_id));

    wire::ReceiveOrder {
        id: ids.order_id.clone(),
        third_party_order_reference: Some(Text::String(ids.reference.clone())),
        kind,
        pos_location_id: Text::String(store.clone()),
        location: Some(wire::Location {
            id: Some(Text::Number(location_id(&store).into())),
            timezone: Some("Europe/London".to_owned()),
        }),
        menu_reference: Some(String::new()),
        items: sample
            .items
            .iter()
            .flat_map(|sample| repeated(sample.quantity, || item(sample)))
            .collect(),
        created_at: unix(placed_at),
        channel: Some(wire::MarketChannel {
            name: Some("Just Eat".to_owned()),
            id: Some(Text::Number(32.into())),
        }),
        collect_at: collect_at.map(unix),
        collection_notes: None,
        deliver_at: deliver_at.map(unix),
        delivery_notes: None,
        kitchen_notes: sample.notes.clone(),
        payment_method: if style.cash {
            wire::PaymentMethod::Cash
        } else {
            wire::PaymentMethod::Card
        },
        tender_type: Some("Just Eat".to_owned()),
        payment: wire::Payment {
            items_in_cart: wire::Price {
                inc_tax: Amount::from(subtotal),
                tax: Amount::from(0),
            },
            adjustments,
            paid: wire::Price {
                inc_tax: Amount::from(paid),
                tax: Amount::from(0),
            },
            deposit: Some(Amount::from(0)),
        },
        driver,
        collector,
        delivery,
        extras: Some(extras),
        promotions: Vec::new(),
        total: Some(Amount::from(subtotal)),
    }
}

/// The Cancel Order notification of an order JET cancelled at `at`.
pub(crate) fn order_cancelled(
    order_id: &str,
    reason: Option<&str>,
    initiated_by: Option<&str>,
    at: DateTime<Utc>,
) -> wire::OrderCancelled {
    wire::OrderCancelled {
        order_id: order_id.to_owned(),
        reason: reason.map(|code| wire::Code {
            code: code.to_owned(),
        }),
        initiated_by: initiated_by.map(|code| wire::Code {
            code: code.to_owned(),
        }),
        happened_at: Some(rfc3339(at)),
    }
}

/// The Driver Status notification for an order at `at`.
pub(crate) fn driver_status(order_id: &str, code: &str, at: DateTime<Utc>) -> wire::DriverStatus {
    wire::DriverStatus {
        order_id: order_id.to_owned(),
        driver_status: wire::Code {
            code: code.to_owned(),
        },
        happened_at: Some(rfc3339(at)),
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
    /// The hub's Receive Order webhook, e.g. `http://127.0.0.1:8080/webhooks/just_eat`;
    /// notifications go to `…/order-cancelled` and `…/driver-status` under it.
    pub hub_webhook_url: String,
    /// The HMAC secret webhooks are signed with.
    pub webhook_secret: String,
    /// The `X-Flyt-API-Key` status calls must carry.
    pub api_key: String,
    /// How long an order stays pending after a 202 before it fails to inject.
    pub accept_deadline: Duration,
    /// How orders placed by [`JustEatSim::place_order`] are written.
    pub style: OrderStyle,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: format!("http://127.0.0.1:8080/webhooks/{}", crate::CHANNEL_ID),
            webhook_secret: DEV_WEBHOOK_SECRET.to_owned(),
            api_key: DEV_API_KEY.to_owned(),
            accept_deadline: ACCEPT_WINDOW.to_std().unwrap_or(Duration::from_secs(300)),
            style: OrderStyle::default(),
        }
    }
}

/// Where an order stands at JET Connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Receive Order answered 202: waiting for `sent-to-pos-success` or `-failed`.
    Pending,
    /// In the POS: Receive Order answered 200, or `sent-to-pos-success`.
    Injected,
    /// `sent-to-pos-failed`: JET's backup flow sends it to the Orderpad.
    InjectionFailed,
    /// Pending longer than the deadline: "failed to inject".
    TimedOut,
    /// Receive Order was not answered 2xx: failed, to the Orderpad.
    WebhookRefused,
    /// JET's courier collected it (Driver Status `onItsWay`).
    OnItsWay,
    /// JET's courier delivered it (Driver Status `delivered`).
    Delivered,
    /// Cancelled at JET (Cancel Order notification).
    Cancelled,
}

impl OrderState {
    /// The unified status this state amounts to.
    pub fn status(self) -> Status {
        match self {
            OrderState::Pending => Status::Received,
            OrderState::Injected => Status::Accepted,
            OrderState::InjectionFailed => Status::Rejected,
            OrderState::TimedOut | OrderState::WebhookRefused => Status::Failed,
            OrderState::OnItsWay => Status::PickedUp,
            OrderState::Delivered => Status::Delivered,
            OrderState::Cancelled => Status::Cancelled,
        }
    }

    fn finished(self) -> bool {
        !matches!(
            self,
            OrderState::Pending | OrderState::Injected | OrderState::OnItsWay
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
    /// When it became pending (the hub's 202).
    pending_since: Instant,
    state: OrderState,
    /// The `errorCode` and `errorMessage` of `sent-to-pos-failed`.
    failure: Option<(String, String)>,
    /// The last cancellation reason JET sent.
    cancel_reason: Option<String>,
}

#[derive(Debug)]
struct Inner {
    webhook_secret: String,
    api_key: String,
    accept_deadline: Duration,
    style: OrderStyle,
    hub_webhook_url: Mutex<String>,
    http: reqwest::Client,
    orders: Mutex<HashMap<String, StoredOrder>>,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
    clock: SimClock,
}

/// A running simulator.
#[derive(Debug)]
pub struct JustEatSim {
    inner: Arc<Inner>,
    server: SimServer,
}

impl JustEatSim {
    /// Starts the simulator's HTTP server.
    pub async fn start(config: SimConfig) -> std::io::Result<JustEatSim> {
        let inner = Arc::new(Inner {
            webhook_secret: config.webhook_secret,
            api_key: config.api_key,
            accept_deadline: config.accept_deadline,
            style: config.style,
            hub_webhook_url: Mutex::new(config.hub_webhook_url),
            http: reqwest::Client::new(),
            orders: Mutex::new(HashMap::new()),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
            clock: SimClock::default(),
        });
        let server = SimServer::serve(router(inner.clone()), config.bind).await?;
        tracing::info!(
            channel = crate::CHANNEL_ID,
            base_url = %server.base_url(),
            "Simulator listening."
        );
        Ok(JustEatSim { inner, server })
    }

    /// `http://host:port`: the adapter's `base_url`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Points webhooks somewhere else (the hub is often started after the simulator).
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        *lock(&self.inner.hub_webhook_url) = url.into();
    }

    /// Places an order at JET and posts its Receive Order webhook to the hub; the hub's
    /// answer decides the order's state (module docs).
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample).await
    }

    /// Records an order as pending (as if the hub had answered 202), without sending its
    /// webhook (for tests of the status calls alone); returns its id.
    /// [`JustEatSim::webhook_body`] has the webhook it would have sent.
    pub fn add_order(&self, sample: &SampleOrder) -> String {
        self.inner.add(sample)
    }

    /// Posts an order's Receive Order webhook again, byte for byte (JET retrying). `None`
    /// for an unknown order.
    pub async fn resend_order(&self, external_order_id: &str) -> Option<WebhookAnswer> {
        let body = self.webhook_body(external_order_id)?;
        Some(self.inner.send("", body).await)
    }

    /// Posts any body to the Receive Order URL with the given `X-JET-Connect-Hash` value
    /// (none if `None`): for forged and malformed webhook tests.
    pub async fn send_raw(&self, body: Vec<u8>, hash: Option<String>) -> WebhookAnswer {
        let headers: Vec<(String, String)> = hash
            .map(|value| (SIGNATURE_HEADER_NAME.to_owned(), value))
            .into_iter()
            .collect();
        self.inner.post("", headers, body).await
    }

    /// JET cancels the order (the customer, its support) with reason `code`
    /// (`custCancelledChangedMind`, …) and posts the Cancel Order notification. `None` if
    /// the order is already finished (JET sends nothing); an unknown id is sent anyway
    /// (the hub keeps a tombstone).
    pub async fn cancel_order(
        &self,
        external_order_id: &str,
        code: Option<&str>,
    ) -> Option<WebhookAnswer> {
        {
            let mut orders = lock(&self.inner.orders);
            if let Some(order) = orders.get_mut(external_order_id) {
                self.inner.expire(order);
                if order.state.finished() {
                    return None;
                }
                order.state = OrderState::Cancelled;
                order.cancel_reason = code.map(str::to_owned);
            }
        }
        let body = to_bytes(&order_cancelled(
            external_order_id,
            code,
            Some("customer"),
            Utc::now(),
        ));
        Some(
            self.inner
                .send(&format!("/{EVENT_ORDER_CANCELLED}"), body)
                .await,
        )
    }

    /// JET's courier reports `code` (`driverAtRestaurant`, `onItsWay`, `delivered`, …) for
    /// the order: posts the Driver Status notification. `onItsWay` and `delivered` move an
    /// order that is in the POS along.
    pub async fn driver_status(&self, external_order_id: &str, code: &str) -> WebhookAnswer {
        if let Some(order) = lock(&self.inner.orders).get_mut(external_order_id) {
            match (code, order.state) {
                (wire::DRIVER_ON_ITS_WAY, OrderState::Injected) => {
                    order.state = OrderState::OnItsWay;
                }
                (wire::DRIVER_DELIVERED, OrderState::Injected | OrderState::OnItsWay) => {
                    order.state = OrderState::Delivered;
                }
                _ => {}
            }
        }
        let body = to_bytes(&driver_status(external_order_id, code, Utc::now()));
        self.inner
            .send(&format!("/{EVENT_DRIVER_STATUS}"), body)
            .await
    }

    /// The order's state at JET (after applying the injection deadline).
    pub fn order_state(&self, external_order_id: &str) -> Option<OrderState> {
        let mut orders = lock(&self.inner.orders);
        let order = orders.get_mut(external_order_id)?;
        self.inner.expire(order);
        Some(order.state)
    }

    /// The order's state as a unified status; `None` for an order JET does not know.
    pub fn status(&self, external_order_id: &str) -> Option<Status> {
        self.order_state(external_order_id).map(OrderState::status)
    }

    /// The `errorCode` and `errorMessage` the hub sent with `sent-to-pos-failed`.
    pub fn failure(&self, external_order_id: &str) -> Option<(String, String)> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.failure.clone())
    }

    /// The reason code of JET's cancellation of the order.
    pub fn cancel_reason(&self, external_order_id: &str) -> Option<String> {
        lock(&self.inner.orders)
            .get(external_order_id)
            .and_then(|o| o.cancel_reason.clone())
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

    /// The statuses JET heard: every status call taken (answered 204), with what
    /// [`JustEatSim::status`] reads right after (accepted for `sent-to-pos-success`,
    /// rejected for `sent-to-pos-failed`), by order id. Each one changes the status: only a
    /// pending order takes them. The hub's answer to Receive Order is not a call: a 200
    /// that injects the order at once is not heard.
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

impl Inner {
    fn add(&self, sample: &SampleOrder) -> String {
        let ids = OrderIds::fresh();
        let webhook = to_bytes(&order(sample, &ids, Utc::now(), self.style));
        lock(&self.orders).insert(
            ids.order_id.clone(),
            StoredOrder {
                webhook,
                pending_since: self.clock.now(),
                state: OrderState::Pending,
                failure: None,
                cancel_reason: None,
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
        let answer = self.send("", webhook).await;
        if let Some(order) = lock(&self.orders).get_mut(&external_order_id) {
            // The hub's status call may have overtaken its answer to the webhook (its
            // store, or its router, was quicker than the HTTP answer): what it said stands.
            if order.state == OrderState::Pending {
                order.pending_since = self.clock.now();
                order.state = match answer.status {
                    200 => OrderState::Injected,
                    202 => OrderState::Pending,
                    _ => OrderState::WebhookRefused,
                };
            }
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

    /// Applies the injection deadline.
    fn expire(&self, order: &mut StoredOrder) {
        if order.state == OrderState::Pending
            && self.clock.since(order.pending_since) > self.accept_deadline
        {
            order.state = OrderState::TimedOut;
        }
    }

    /// Signs and posts `body` to the hub's webhook URL + `path`.
    async fn send(&self, path: &str, body: Vec<u8>) -> WebhookAnswer {
        let headers = webhook_headers(&self.webhook_secret, &body, Utc::now().timestamp_millis());
        self.post(path, headers, body).await
    }

    async fn post(
        &self,
        path: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> WebhookAnswer {
        let url = format!("{}{path}", lock(&self.hub_webhook_url));
        post_webhook(&self.http, &url, &headers, "application/json", body).await
    }

    /// Checks `X-Flyt-API-Key`; the error is the 401 message.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let key = headers
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or("missing header X-Flyt-API-Key")?;
        if constant_time_eq(key.as_bytes(), self.api_key.as_bytes()) {
            Ok(())
        } else {
            Err("invalid X-Flyt-API-Key")
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/order/{id}/{call}", post(order_call))
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/orders", post(sim_place))
        .with_state(inner)
}

/// An answer in JET's standard error shape.
fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    (
        status,
        axum::Json(wire::ErrorBody {
            fault_id: Uuid::now_v7().hyphenated().to_string(),
            trace_id: Uuid::now_v7().simple().to_string(),
            errors: vec![wire::ErrorDetail {
                description: description.into(),
                error_code: code.to_owned(),
            }],
        }),
    )
        .into_response()
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
            error(status, "TooManyRequests", "too many requests")
        } else {
            error(status, "InternalServerError", "simulated failure")
        }
    });
    let response = match fault.await {
        Some(response) => response,
        None => match inner.authenticate(&headers) {
            Err(message) => error(StatusCode::UNAUTHORIZED, "Unauthorized", message),
            Ok(()) => answer(&inner, &id, &call, &headers, &body),
        },
    };
    // The call log redacts the API key with every other credential header.
    inner.calls.record(
        "POST",
        uri.path(),
        &headers,
        &body,
        response.status().as_u16(),
    );
    response
}

fn happened_at(value: &str) -> Result<(), String> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|_| ())
        .map_err(|e| format!("happenedAt `{value}` is not an ISO 8601 time with an offset: {e}"))
}

/// JET's logic of one status call.
fn answer(inner: &Inner, id: &str, call: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let bad_request = |message: String| error(StatusCode::BAD_REQUEST, "BadRequest", message);
    if call != CALL_SUCCESS && call != CALL_FAILED {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no call `{call}`; calls are {CALL_SUCCESS} and {CALL_FAILED}"),
        );
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("application/json"));
    if !json {
        return bad_request("Content-Type must be application/json".to_owned());
    }
    // The body, checked before the order's state.
    let failure = if call == CALL_SUCCESS {
        match serde_json::from_slice::<wire::SentToPosSuccess>(body) {
            Ok(success) => match happened_at(&success.happened_at) {
                Ok(()) => None,
                Err(message) => return bad_request(message),
            },
            Err(e) => return bad_request(format!("body: {e}")),
        }
    } else {
        match serde_json::from_slice::<wire::SentToPosFailed>(body) {
            Ok(failed) => {
                if let Err(message) = happened_at(&failed.happened_at) {
                    return bad_request(message);
                }
                if !wire::ERROR_CODES.contains(&failed.error_code.as_str()) {
                    return bad_request(format!(
                        "errorCode `{}` is not one of {}",
                        failed.error_code,
                        wire::ERROR_CODES.join(", ")
                    ));
                }
                if failed.error_message.trim().is_empty() {
                    return bad_request("errorMessage is required".to_owned());
                }
                Some((failed.error_code, failed.error_message))
            }
            Err(e) => return bad_request(format!("body: {e}")),
        }
    };
    let mut orders = lock(&inner.orders);
    let Some(order) = orders.get_mut(id) else {
        return error(StatusCode::NOT_FOUND, "NotFound", format!("no order {id}"));
    };
    inner.expire(order);
    if order.state != OrderState::Pending {
        return bad_request(format!(
            "order {id} is not pending (it is {})",
            json!(order.state)
        ));
    }
    match failure {
        None => order.state = OrderState::Injected,
        Some(failure) => {
            order.state = OrderState::InjectionFailed;
            order.failure = Some(failure);
        }
    }
    // Heard under the lock, so that the feed's order is the order the calls were taken in.
    inner.feed.heard(id, order.state.status());
    StatusCode::NO_CONTENT.into_response()
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
                "BadRequest",
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
