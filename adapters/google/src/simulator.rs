//! A simulator of Google Ordering End-to-End: an HTTP server that behaves like Google's
//! side of the integration, for tests, the demo and the benchmark.
//!
//! As Google, it calls the hub's fulfillment URL with checkout and submit requests signed
//! with a JWT (RS256, its development key, `iss` Google, `aud` the project id), checks the
//! hub's answers as Google would (a submit answer must carry an `OrderUpdate` in an initial
//! state with the `CUSTOMER_SERVICE` action), and keeps each order's state. It serves:
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `POST /token` | OAuth 2.0 JWT-bearer grant: form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion`. The assertion must be RS256-signed by the service account's key, `iss` its email, `aud` this endpoint's URL, unexpired, with the scope `actions.order.developer`; else 400 `{"error": "invalid_grant" \| "invalid_scope" \| "unsupported_grant_type", "error_description"}`. Answers `{access_token, expires_in, token_type: "Bearer"}`. |
//! | `POST /v2/conversations:send` | an asynchronous order update (`AsyncOrderUpdateRequestMessage`). Bearer token required (401 `UNAUTHENTICATED`); 429 `RESOURCE_EXHAUSTED` past the rate limit; 400 `INVALID_ARGUMENT` for a body or update of the wrong shape (no `CUSTOMER_SERVICE` action, no `rejectionInfo` on `REJECTED`, …); 404 `NOT_FOUND` for an unknown order; 409 `ABORTED` for an order whose submit has not been answered (yet); 400 `FAILED_PRECONDITION` for a transition Google's state rules forbid. Answers 200 `{}`. |
//! | `GET /_sim/calls` | the call log (token and update calls) as JSON |
//! | `POST /_sim/orders` | body a [`SampleOrder`]; submits it to the hub like [`GoogleSim::place_order`] |
//! | `POST /_sim/checkout` | body a [`SampleOrder`]; sends it as a checkout and answers the hub's answer |
//! | `GET /_sim/orders/{id}` | the order's Google state and the updates it received |
//!
//! Google's state rules, as the simulator enforces them: an order starts `CREATED`,
//! `CONFIRMED` or `REJECTED` (the submit answer); `REJECTED` only from `CREATED`;
//! `CANCELLED` from any state that is not final; otherwise states only move forward along
//! `CREATED → CONFIRMED → IN_PREPARATION → READY_FOR_PICKUP | IN_TRANSIT → FULFILLED`
//! (skipping is allowed; `READY_FOR_PICKUP` is for pickup orders, `IN_TRANSIT` for delivery
//! orders); `FULFILLED`, `REJECTED` and `CANCELLED` are final. An update repeating the
//! order's current state is accepted (a retried push, or a changed estimate).
//!
//! Scripted [`Faults`] apply to update calls, before anything else. Every update and token
//! call is recorded in the [`CallLog`] with the status it got. An update taken (200) that
//! changes what [`GoogleSim::status`] reads is told to the [`StatusFeed`]
//! ([`GoogleSim::status_feed`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use crossdock_channel::sim::{
    CallLog, Faults, SampleFulfillment, SampleItem, SampleOrder, SimClock, SimServer, StatusFeed,
    TokenBucket, WebhookAnswer, lock,
};
use crossdock_model::{Currency, FulfillmentKind, Money, Status};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use uuid::Uuid;

use crate::convert::google_money;
use crate::jwt::{self, AssertionClaims, Audience, JWT_BEARER_GRANT, KeyError, RequestClaims};
use crate::wire::{
    ApiError, ApiErrorBody, AppRequest, Argument, AsyncOrderUpdateRequest, Cart, Contact,
    Conversation, DeliveryInfo, FoodCartExtension, FoodItemExtension, FoodItemOption,
    FulfillmentInfo, FulfillmentOption, GoogleMoney, GoogleOrder, INTENT_CHECKOUT, INTENT_SUBMIT,
    Input, LatLng, LineItem, Location, Merchant, OrderUpdate, PaymentInfo, PickupInfo,
    PostalAddress, Price, ProposedOrder, TYPE_CART, TYPE_FOOD_CART_EXTENSION,
    TYPE_FOOD_ITEM_EXTENSION, TYPE_FOOD_ORDER_EXTENSION, TokenResponse, TransactionDecisionValue,
    state,
};
use crate::{
    DEFAULT_SCOPE, DEV_GOOGLE_KEY_ID, DEV_GOOGLE_PRIVATE_KEY, DEV_PROJECT_ID,
    DEV_SERVICE_ACCOUNT_EMAIL, DEV_SERVICE_ACCOUNT_PUBLIC_KEY, GOOGLE_ISSUER, SEND_PATH,
    unified_status,
};

/// The merchant id used when a sample order names none.
pub const DEFAULT_MERCHANT_ID: &str = "crossdockpizza-nyc-001";
/// The phone Google shares when a sample has none.
pub const DEFAULT_PHONE: &str = "+1 212-555-0148";
/// The lifetime of the simulator's request JWTs.
pub const REQUEST_JWT_LIFETIME_S: i64 = 3600;
/// The subject of the simulator's request JWTs.
pub const REQUEST_JWT_SUBJECT: &str = "actions-ordering-end-to-end";

/// A sustained rate and a burst, for the simulator's limit on update calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimRateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The hub's fulfillment URL, e.g. `http://127.0.0.1:8080/webhooks/google`.
    pub hub_webhook_url: String,
    /// The audience of request JWTs (the hub's `project_id`).
    pub project_id: String,
    /// The key request JWTs are signed with (PEM) and its `kid`.
    pub signing_key_pem: String,
    pub signing_key_id: Option<String>,
    /// The service account the token endpoint accepts, and its public key (PEM).
    pub service_account_email: String,
    pub service_account_public_key: String,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_ttl: Duration,
    /// The limit on update calls; `None`: unlimited.
    pub rate_limit: Option<SimRateLimit>,
    /// How long Google waits for the hub's answer to a checkout or submit.
    pub deadline: Duration,
    /// `isInSandbox` of the requests.
    pub sandbox: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: "http://127.0.0.1:8080/webhooks/google".to_owned(),
            project_id: DEV_PROJECT_ID.to_owned(),
            signing_key_pem: DEV_GOOGLE_PRIVATE_KEY.to_owned(),
            signing_key_id: Some(DEV_GOOGLE_KEY_ID.to_owned()),
            service_account_email: DEV_SERVICE_ACCOUNT_EMAIL.to_owned(),
            service_account_public_key: DEV_SERVICE_ACCOUNT_PUBLIC_KEY.to_owned(),
            token_ttl: Duration::from_secs(3599),
            rate_limit: Some(SimRateLimit {
                per_second: 25.0,
                burst: 25.0,
            }),
            deadline: Duration::from_secs(10),
            sandbox: true,
        }
    }
}

/// Signs a request JWT as Google does, issued at `at` for `project_id`.
pub fn sign_request_jwt(
    private_key_pem: &str,
    key_id: Option<&str>,
    project_id: &str,
    at: DateTime<Utc>,
) -> Result<String, KeyError> {
    jwt::Signer::from_pem(private_key_pem, key_id)?.sign(&request_claims(project_id, at))
}

/// The claims of a request JWT issued at `at` for `project_id`.
fn request_claims(project_id: &str, at: DateTime<Utc>) -> RequestClaims {
    RequestClaims {
        iss: GOOGLE_ISSUER.to_owned(),
        aud: Audience::One(project_id.to_owned()),
        iat: at.timestamp(),
        exp: at.timestamp() + REQUEST_JWT_LIFETIME_S,
        sub: Some(REQUEST_JWT_SUBJECT.to_owned()),
    }
}

/// The `Authorization` value of a development request signed at `at` (the default
/// project and key): what fixtures carry.
pub fn dev_authorization(at: DateTime<Utc>) -> Result<String, KeyError> {
    sign_request_jwt(
        DEV_GOOGLE_PRIVATE_KEY,
        Some(DEV_GOOGLE_KEY_ID),
        DEV_PROJECT_ID,
        at,
    )
    .map(|token| format!("Bearer {token}"))
}

/// An order the simulator submitted, and what the hub answered.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedOrder {
    pub external_order_id: String,
    pub answer: WebhookAnswer,
    /// The `OrderUpdate` of the hub's answer, if it had a readable one.
    pub update: Option<OrderUpdate>,
}

/// One order as Google keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimOrder {
    pub google_order_id: String,
    pub kind: FulfillmentKind,
    /// `None` until the hub answered the submit with a valid order update.
    pub state: Option<String>,
    /// Every order update accepted: the submit answer's, then the asynchronous ones.
    pub updates: Vec<OrderUpdate>,
    /// What Google found wrong in the hub's answers.
    pub problems: Vec<String>,
    #[serde(skip)]
    body: Vec<u8>,
}

/// A running Google simulator.
#[derive(Debug)]
pub struct GoogleSim {
    inner: Arc<Inner>,
    server: SimServer,
}

struct Inner {
    project_id: String,
    signer: jwt::Signer,
    /// The last request JWT signed, with the second it was issued in: claims name whole
    /// seconds and RS256 signs deterministically, so every request of that second carries
    /// the same token, signed once.
    last_signed: Mutex<Option<(i64, String)>>,
    service_account_email: String,
    service_account_key: DecodingKey,
    token_ttl: Duration,
    /// The platform's rate limit on API calls, if any.
    rate_limit: Option<TokenBucket>,
    deadline: Duration,
    sandbox: bool,
    hub_webhook_url: Mutex<String>,
    base_url: OnceLock<String>,
    http: reqwest::Client,
    orders: Mutex<HashMap<String, SimOrder>>,
    tokens: Mutex<HashMap<String, Instant>>,
    token_requests: AtomicUsize,
    calls: CallLog,
    faults: Faults,
    feed: StatusFeed,
    clock: SimClock,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("project_id", &self.project_id)
            .field("service_account_email", &self.service_account_email)
            .field("base_url", &self.base_url.get())
            .finish_non_exhaustive()
    }
}

impl GoogleSim {
    /// Starts the simulator's HTTP server.
    pub async fn start(config: SimConfig) -> std::io::Result<GoogleSim> {
        let service_account_key = DecodingKey::from_rsa_pem(
            config.service_account_public_key.as_bytes(),
        )
        .map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("service account public key: {e}"),
            )
        })?;
        // Fail at start, not at the first request.
        let signer =
            jwt::Signer::from_pem(&config.signing_key_pem, config.signing_key_id.as_deref())
                .map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                })?;
        signer
            .sign(&request_claims(&config.project_id, Utc::now()))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let inner = Arc::new(Inner {
            project_id: config.project_id,
            signer,
            last_signed: Mutex::new(None),
            service_account_email: config.service_account_email,
            service_account_key,
            token_ttl: config.token_ttl,
            rate_limit: config
                .rate_limit
                .map(|limit| TokenBucket::new(limit.per_second, limit.burst, Instant::now())),
            deadline: config.deadline,
            sandbox: config.sandbox,
            hub_webhook_url: Mutex::new(config.hub_webhook_url),
            base_url: OnceLock::new(),
            http: reqwest::Client::new(),
            orders: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            token_requests: AtomicUsize::new(0),
            calls: CallLog::new(),
            faults: Faults::default(),
            feed: StatusFeed::default(),
            clock: SimClock::default(),
        });
        let server = SimServer::serve(router(inner.clone()), config.bind).await?;
        let _ = inner.base_url.set(server.base_url());
        tracing::info!(base_url = %server.base_url(), "Google Ordering simulator listening.");
        Ok(GoogleSim { inner, server })
    }

    /// `http://host:port`: the adapter's `api_base_url`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The token endpoint: the adapter's `token_url`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// Points requests somewhere else (the hub is often started after the simulator).
    pub fn set_hub_webhook_url(&self, url: impl Into<String>) {
        *lock(&self.inner.hub_webhook_url) = url.into();
    }

    /// The `Authorization` value Google would send at `at`.
    pub fn authorization(&self, at: DateTime<Utc>) -> String {
        self.inner.authorization(at)
    }

    /// Submits an order built from `sample` to the hub (`SubmitOrderRequestMessage`) and
    /// keeps it with the state the hub's answer gave it.
    pub async fn place_order(&self, sample: &SampleOrder) -> PlacedOrder {
        self.inner.place(sample).await
    }

    /// Sends `sample` as a checkout (`CheckoutRequestMessage`); returns the hub's answer.
    pub async fn checkout(&self, sample: &SampleOrder) -> WebhookAnswer {
        let request = checkout_request(
            sample,
            &Uuid::new_v4().simple().to_string(),
            self.inner.sandbox,
        );
        let body = serde_json::to_vec(&request).unwrap_or_default();
        self.inner.send_signed(body).await
    }

    /// Sends a submit already sent once again, byte for byte, with a fresh JWT (Google
    /// retrying after a timeout). The answer to a retry of a submit never answered creates
    /// the order, as the first answer would have. `None` for an unknown order.
    pub async fn resend_submit(&self, google_order_id: &str) -> Option<WebhookAnswer> {
        let (body, answered) = lock(&self.inner.orders)
            .get(google_order_id)
            .map(|o| (o.body.clone(), o.state.is_some()))?;
        let answer = self.inner.send_signed(body).await;
        if !answered {
            self.inner.take_submit_answer(google_order_id, &answer);
        }
        Some(answer)
    }

    /// Sends any body with the given `Authorization` value (none if `None`): for forged
    /// and malformed request tests.
    pub async fn send_raw(&self, body: Vec<u8>, authorization: Option<String>) -> WebhookAnswer {
        self.inner.send(body, authorization).await
    }

    /// The order's Google state.
    pub fn order_state(&self, google_order_id: &str) -> Option<String> {
        lock(&self.inner.orders)
            .get(google_order_id)
            .and_then(|o| o.state.clone())
    }

    /// What Google believes the order's status is, as a unified status.
    pub fn status(&self, google_order_id: &str) -> Option<Status> {
        let orders = lock(&self.inner.orders);
        let order = orders.get(google_order_id)?;
        unified_status(order.state.as_deref()?, order.kind)
    }

    /// The order as Google keeps it.
    pub fn order(&self, google_order_id: &str) -> Option<SimOrder> {
        lock(&self.inner.orders).get(google_order_id).cloned()
    }

    /// Every token and update call the hub made.
    pub fn calls(&self) -> &CallLog {
        &self.inner.calls
    }

    /// How many times the token endpoint was called.
    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Invalidates every issued access token: the next update answers 401.
    pub fn revoke_tokens(&self) {
        lock(&self.inner.tokens).clear();
    }

    /// Scripted misbehaviour of update calls.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The statuses Google heard: every asynchronous order update taken (answered 200)
    /// that changed what [`GoogleSim::status`] reads, with what it reads right after, by
    /// Google order id. The hub's answer to a submit is not a call: the state it gives
    /// (`CREATED`, or `REJECTED` for a refused order) is not heard.
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
// Building Google's requests from a sample
// ---------------------------------------------------------------------------------------

fn sample_money(minor: i64, code: &str) -> GoogleMoney {
    match Currency::parse(code) {
        Ok(currency) => google_money(Money::new(minor, currency)),
        Err(_) => GoogleMoney {
            currency_code: code.to_owned(),
            units: Some(crate::wire::Int64::Text((minor / 100).to_string())),
            nanos: Some((minor % 100) * 10_000_000),
        },
    }
}

fn price(minor: i64, code: &str) -> Price {
    Price {
        kind: Some("ACTUAL".to_owned()),
        amount: sample_money(minor, code),
    }
}

fn not_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// An add-on; `None` for a removed one (quantity 0: Google has no "without", the item's
/// note says it instead).
fn option(item: &SampleItem, code: &str, removed: &mut Vec<String>) -> Option<FoodItemOption> {
    if item.quantity == 0 {
        removed.push(format!("No {}", item.name));
        return None;
    }
    Some(FoodItemOption {
        id: Some(item.plu.clone()),
        offer_id: Some(format!("offer/{}", item.plu)),
        name: Some(item.name.clone()),
        price: Some(sample_money(item.unit_price_minor, code)),
        note: not_empty(&item.notes),
        quantity: Some(item.quantity),
        sub_options: item
            .modifiers
            .iter()
            .filter_map(|m| option(m, code, removed))
            .collect(),
    })
}

fn line_item(item: &SampleItem, code: &str) -> LineItem {
    let mut removed = Vec::new();
    let options: Vec<FoodItemOption> = item
        .modifiers
        .iter()
        .filter_map(|m| option(m, code, &mut removed))
        .collect();
    let note = not_empty(&item.notes)
        .into_iter()
        .chain(removed)
        .collect::<Vec<_>>()
        .join("; ");
    LineItem {
        id: Some(item.plu.clone()),
        name: Some(item.name.clone()),
        kind: Some("REGULAR".to_owned()),
        quantity: Some(item.quantity),
        price: Some(price(
            item.unit_with_modifiers_minor()
                .saturating_mul(item.quantity),
            code,
        )),
        offer_id: Some(format!("offer/{}", item.plu)),
        description: None,
        extension: Some(FoodItemExtension {
            type_url: Some(TYPE_FOOD_ITEM_EXTENSION.to_owned()),
            options,
            note: (!note.is_empty()).then_some(note),
        }),
    }
}

/// The cart Google builds for `sample`.
pub fn cart(sample: &SampleOrder) -> Cart {
    let code = sample.currency.as_str();
    let at =
        |t: &Option<DateTime<Utc>>| t.map_or_else(|| "P0M".to_owned(), crate::respond::rfc3339);
    let (fulfillment_info, location) = match &sample.fulfillment {
        SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines,
            city,
            postcode,
            country,
        } => (
            FulfillmentInfo {
                delivery: Some(DeliveryInfo {
                    delivery_time_iso8601: Some(at(&sample.scheduled_for)),
                }),
                pickup: None,
            },
            Some(Location {
                coordinates: Some(LatLng {
                    latitude: *lat,
                    longitude: *lng,
                }),
                formatted_address: Some(
                    address_lines
                        .iter()
                        .chain([city, postcode])
                        .map(String::as_str)
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                zip_code: Some(postcode.clone()),
                city: Some(city.clone()),
                postal_address: Some(PostalAddress {
                    region_code: Some(country.clone()),
                    postal_code: Some(postcode.clone()),
                    administrative_area: None,
                    locality: Some(city.clone()),
                    address_lines: address_lines.clone(),
                    recipients: vec![sample.customer_name.clone()],
                }),
                notes: None,
            }),
        ),
        SampleFulfillment::Pickup => (
            FulfillmentInfo {
                delivery: None,
                pickup: Some(PickupInfo {
                    pickup_time_iso8601: Some(at(&sample.scheduled_for)),
                }),
            },
            None,
        ),
    };
    let mut names = sample.customer_name.splitn(2, ' ');
    let first_name = names.next().map(str::to_owned);
    let last_name = names.next().map(str::to_owned);
    Cart {
        type_url: Some(TYPE_CART.to_owned()),
        id: None,
        merchant: Some(Merchant {
            id: sample
                .store_ref
                .clone()
                .unwrap_or_else(|| DEFAULT_MERCHANT_ID.to_owned()),
            name: Some("Crossdock Pizza".to_owned()),
        }),
        line_items: sample.items.iter().map(|i| line_item(i, code)).collect(),
        other_items: Vec::new(),
        notes: not_empty(&sample.notes),
        promotions: Vec::new(),
        extension: Some(FoodCartExtension {
            type_url: Some(TYPE_FOOD_CART_EXTENSION.to_owned()),
            fulfillment_preference: Some(FulfillmentOption {
                fulfillment_info: Some(fulfillment_info),
            }),
            location,
            contact: Some(Contact {
                display_name: Some(sample.customer_name.clone()),
                first_name,
                last_name,
                email: None,
                phone_number: Some(
                    sample
                        .customer_phone
                        .clone()
                        .unwrap_or_else(|| DEFAULT_PHONE.to_owned()),
                ),
            }),
        }),
    }
}

fn typed_line(kind: &str, name: &str, minor: i64, code: &str) -> LineItem {
    LineItem {
        id: Some(kind.to_ascii_lowercase()),
        name: Some(name.to_owned()),
        kind: Some(kind.to_owned()),
        quantity: None,
        price: Some(price(minor, code)),
        offer_id: None,
        description: None,
        extension: None,
    }
}

/// The `CheckoutRequestMessage` for `sample`.
pub fn checkout_request(sample: &SampleOrder, conversation_id: &str, sandbox: bool) -> AppRequest {
    AppRequest {
        user: Some(serde_json::json!({})),
        conversation: Some(Conversation {
            conversation_id: Some(conversation_id.to_owned()),
        }),
        inputs: vec![Input {
            intent: INTENT_CHECKOUT.to_owned(),
            arguments: vec![Argument {
                extension: Some(cart(sample)),
                transaction_decision_value: None,
            }],
        }],
        direct_action_only: Some(true),
        is_in_sandbox: sandbox,
    }
}

/// The `SubmitOrderRequestMessage` for `sample`: its money in `otherItems` (SUBTOTAL,
/// DELIVERY, DISCOUNT, GRATUITY, TAX 0) and `totalPrice`, paid through Google (`PREPAID`).
pub fn submit_request(
    sample: &SampleOrder,
    google_order_id: &str,
    order_date: DateTime<Utc>,
    sandbox: bool,
) -> AppRequest {
    let code = sample.currency.as_str();
    let mut other_items = vec![typed_line(
        "SUBTOTAL",
        "Subtotal",
        sample.subtotal_minor(),
        code,
    )];
    if matches!(sample.fulfillment, SampleFulfillment::Delivery { .. })
        || sample.delivery_fee_minor != 0
    {
        other_items.push(typed_line(
            "DELIVERY",
            "Delivery fee",
            sample.delivery_fee_minor,
            code,
        ));
    }
    if sample.discount_minor != 0 {
        other_items.push(typed_line(
            "DISCOUNT",
            "Google promotion",
            sample.discount_minor.saturating_neg(),
            code,
        ));
    }
    other_items.push(typed_line("TAX", "Tax", 0, code));
    if sample.tip_minor != 0 {
        other_items.push(typed_line("GRATUITY", "Tip", sample.tip_minor, code));
    }
    AppRequest {
        user: Some(serde_json::json!({})),
        conversation: Some(Conversation {
            conversation_id: Some(Uuid::new_v4().simple().to_string()),
        }),
        inputs: vec![Input {
            intent: INTENT_SUBMIT.to_owned(),
            arguments: vec![Argument {
                extension: None,
                transaction_decision_value: Some(TransactionDecisionValue {
                    order: GoogleOrder {
                        final_order: ProposedOrder {
                            id: None,
                            cart: cart(sample),
                            other_items,
                            total_price: Some(Price {
                                kind: Some("ESTIMATE".to_owned()),
                                amount: sample_money(sample.total_minor(), code),
                            }),
                            extension: Some(
                                serde_json::json!({ "@type": TYPE_FOOD_ORDER_EXTENSION }),
                            ),
                        },
                        google_order_id: google_order_id.to_owned(),
                        order_date: Some(crate::respond::rfc3339(order_date)),
                        payment_info: Some(PaymentInfo {
                            display_name: Some("Google Pay".to_owned()),
                            payment_type: Some("PREPAID".to_owned()),
                            google_provided_payment_instrument: None,
                        }),
                    },
                }),
            }],
        }],
        direct_action_only: Some(true),
        is_in_sandbox: sandbox,
    }
}

/// A new Google order id: 20 digits.
pub fn new_google_order_id() -> String {
    format!("{:020}", rand::random::<u64>())
}

// ---------------------------------------------------------------------------------------
// Google's rules on order updates
// ---------------------------------------------------------------------------------------

fn is_final(state_name: &str) -> bool {
    matches!(
        state_name,
        state::FULFILLED | state::REJECTED | state::CANCELLED
    )
}

fn rank(state_name: &str) -> Option<u8> {
    match state_name {
        state::CREATED => Some(0),
        state::CONFIRMED => Some(1),
        state::IN_PREPARATION => Some(2),
        state::READY_FOR_PICKUP | state::IN_TRANSIT => Some(3),
        state::FULFILLED => Some(4),
        _ => None,
    }
}

/// Whether Google lets an order of `kind` go from `from` to `to`.
pub fn transition_allowed(from: &str, to: &str, kind: FulfillmentKind) -> Result<(), String> {
    if from == to {
        return Ok(());
    }
    if is_final(from) {
        return Err(format!(
            "order is in final state {from}; it cannot become {to}"
        ));
    }
    match to {
        state::CREATED => Err("CREATED is an initial state only".to_owned()),
        state::REJECTED if from == state::CREATED => Ok(()),
        state::REJECTED => Err(format!(
            "an order in state {from} can no longer be REJECTED"
        )),
        state::CANCELLED => Ok(()),
        state::READY_FOR_PICKUP if kind == FulfillmentKind::Delivery => {
            Err("READY_FOR_PICKUP is for pickup orders; this is a delivery order".to_owned())
        }
        state::IN_TRANSIT if kind != FulfillmentKind::Delivery => {
            Err("IN_TRANSIT is for delivery orders; this is a pickup order".to_owned())
        }
        _ => match (rank(from), rank(to)) {
            (Some(a), Some(b)) if b > a => Ok(()),
            (_, None) => Err(format!("unknown order state {to}")),
            _ => Err(format!(
                "invalid order state transition from {from} to {to}"
            )),
        },
    }
}

/// Checks an order update's shape as Google does; the error is the 400 message.
pub fn check_update(update: &OrderUpdate) -> Result<(), String> {
    if update.action_order_id.trim().is_empty() {
        return Err("orderUpdate.actionOrderId is required".to_owned());
    }
    if DateTime::parse_from_rfc3339(&update.update_time).is_err() {
        return Err(format!(
            "orderUpdate.updateTime `{}` is not an RFC 3339 time",
            update.update_time
        ));
    }
    if rank(&update.order_state.state).is_none()
        && !matches!(
            update.order_state.state.as_str(),
            state::REJECTED | state::CANCELLED
        )
    {
        return Err(format!(
            "orderUpdate.orderState.state `{}` is not an order state",
            update.order_state.state
        ));
    }
    if update.order_state.label.trim().is_empty() {
        return Err("orderUpdate.orderState.label is required".to_owned());
    }
    let service = update
        .order_management_actions
        .iter()
        .any(|a| a.kind == "CUSTOMER_SERVICE" && !a.button.open_url_action.url.trim().is_empty());
    if !service {
        return Err(
            "orderUpdate.orderManagementActions needs a CUSTOMER_SERVICE action".to_owned(),
        );
    }
    if update
        .receipt
        .as_ref()
        .is_none_or(|r| r.user_visible_order_id.trim().is_empty())
    {
        return Err("orderUpdate.receipt.userVisibleOrderId is required".to_owned());
    }
    if update.order_state.state == state::REJECTED && update.rejection_info.is_none() {
        return Err("a REJECTED orderUpdate needs rejectionInfo".to_owned());
    }
    if update.order_state.state == state::CANCELLED && update.cancellation_info.is_none() {
        return Err("a CANCELLED orderUpdate needs cancellationInfo".to_owned());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Sending requests to the hub
// ---------------------------------------------------------------------------------------

impl Inner {
    fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    fn authorization(&self, at: DateTime<Utc>) -> String {
        let second = at.timestamp();
        if let Some((signed_in, token)) = lock(&self.last_signed).as_ref()
            && *signed_in == second
        {
            return format!("Bearer {token}");
        }
        match self.signer.sign(&request_claims(&self.project_id, at)) {
            Ok(token) => {
                let authorization = format!("Bearer {token}");
                *lock(&self.last_signed) = Some((second, token));
                authorization
            }
            // The key was checked at start.
            Err(error) => format!("Bearer <unsignable: {error}>"),
        }
    }

    async fn send_signed(&self, body: Vec<u8>) -> WebhookAnswer {
        let authorization = self.authorization(Utc::now());
        self.send(body, Some(authorization)).await
    }

    /// Posts to the hub, waiting at most the deadline; a timeout or transport failure is
    /// status 0 with the error.
    async fn send(&self, body: Vec<u8>, authorization: Option<String>) -> WebhookAnswer {
        let url = lock(&self.hub_webhook_url).clone();
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                "Google-Actions-Ordering (crossdock simulator)",
            )
            .timeout(self.deadline)
            .body(body);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                WebhookAnswer { status, body }
            }
            Err(error) => WebhookAnswer {
                status: 0,
                body: error.to_string(),
            },
        }
    }

    async fn place(&self, sample: &SampleOrder) -> PlacedOrder {
        let google_order_id = new_google_order_id();
        let request = submit_request(sample, &google_order_id, Utc::now(), self.sandbox);
        let body = serde_json::to_vec(&request).unwrap_or_default();
        let kind = match sample.fulfillment {
            SampleFulfillment::Delivery { .. } => FulfillmentKind::Delivery,
            SampleFulfillment::Pickup => FulfillmentKind::Pickup,
        };
        lock(&self.orders).insert(
            google_order_id.clone(),
            SimOrder {
                google_order_id: google_order_id.clone(),
                kind,
                state: None,
                updates: Vec::new(),
                problems: Vec::new(),
                body: body.clone(),
            },
        );
        let answer = self.send_signed(body).await;
        let update = self.take_submit_answer(&google_order_id, &answer);
        tracing::info!(
            external_order_id = %google_order_id,
            status = answer.status,
            state = ?update.as_ref().map(|u| u.order_state.state.clone()),
            "Google simulator submitted an order."
        );
        PlacedOrder {
            external_order_id: google_order_id,
            answer,
            update,
        }
    }

    /// Reads the hub's answer to a submit as Google would, and sets the order's state.
    fn take_submit_answer(
        &self,
        google_order_id: &str,
        answer: &WebhookAnswer,
    ) -> Option<OrderUpdate> {
        let mut orders = lock(&self.orders);
        let order = orders.get_mut(google_order_id)?;
        if answer.status != 200 {
            order.problems.push(format!(
                "the submit was answered {}: {}",
                answer.status, answer.body
            ));
            return None;
        }
        let update = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| {
                v.pointer("/finalResponse/richResponse/items/0/structuredResponse/orderUpdate")
                    .cloned()
            })
            .and_then(|v| serde_json::from_value::<OrderUpdate>(v).ok());
        let Some(update) = update else {
            order
                .problems
                .push("the submit answer has no readable orderUpdate".to_owned());
            return None;
        };
        let initial = matches!(
            update.order_state.state.as_str(),
            state::CREATED | state::CONFIRMED | state::REJECTED
        );
        let problem = check_update(&update)
            .err()
            .or_else(|| {
                (!initial).then(|| {
                    format!(
                        "a submitted order starts CREATED, CONFIRMED or REJECTED, not {}",
                        update.order_state.state
                    )
                })
            })
            .or_else(|| {
                (update.action_order_id != google_order_id).then(|| {
                    format!(
                        "the answer is for order {}, not {google_order_id}",
                        update.action_order_id
                    )
                })
            });
        if let Some(problem) = problem {
            order.problems.push(problem);
            return Some(update);
        }
        // A resubmitted order keeps the state it has moved on to.
        if order.state.is_none() {
            order.state = Some(update.order_state.state.clone());
        }
        order.updates.push(update.clone());
        Some(update)
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
            .get(token)
            .is_some_and(|expires| self.clock.now() < *expires)
    }

    /// Takes one request from the rate limit; `false` when none is left.
    fn admit(&self) -> bool {
        self.rate_limit
            .as_ref()
            .is_none_or(|bucket| bucket.take(self.clock.now()))
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/token", post(token))
        .route(SEND_PATH, post(send_update))
        .route("/_sim/calls", get(sim_calls))
        .route("/_sim/orders", post(sim_place))
        .route("/_sim/checkout", post(sim_checkout))
        .route("/_sim/orders/{id}", get(sim_order))
        .with_state(inner)
}

/// Google APIs' error body.
fn api_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ApiErrorBody {
            error: ApiError {
                code: status.as_u16(),
                message: message.into(),
                status: code.to_owned(),
            },
        }),
    )
        .into_response()
}

/// The OAuth token endpoint's error body.
fn oauth_error(error: &str, description: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": error,
            "error_description": description.into(),
        })),
    )
        .into_response()
}

async fn token(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let response = answer_token(&inner, &form);
    // The assertion is a credential: record only that one was sent.
    let recorded = serde_json::json!({
        "grant_type": form.get("grant_type"),
        "assertion": form.get("assertion").map(|_| "<redacted>"),
    });
    inner.calls.record(
        "POST",
        "/token",
        &headers,
        recorded.to_string().as_bytes(),
        response.status().as_u16(),
    );
    response
}

fn answer_token(inner: &Inner, form: &HashMap<String, String>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != JWT_BEARER_GRANT {
        return oauth_error(
            "unsupported_grant_type",
            format!("Invalid grant_type: {}", field("grant_type")),
        );
    }
    let token_url = format!("{}/token", inner.base_url());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[token_url.as_str()]);
    validation.set_issuer(&[inner.service_account_email.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(
        field("assertion"),
        &inner.service_account_key,
        &validation,
    ) {
        Ok(data) => data.claims,
        Err(error) => {
            return oauth_error("invalid_grant", format!("Invalid JWT assertion: {error}"));
        }
    };
    if claims.exp - claims.iat > jwt::ASSERTION_LIFETIME_S {
        return oauth_error(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes)",
        );
    }
    if !claims.scope.split_whitespace().any(|s| s == DEFAULT_SCOPE) {
        return oauth_error(
            "invalid_scope",
            format!("The assertion does not ask for {DEFAULT_SCOPE}"),
        );
    }
    let access_token = format!(
        "ya29.{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    lock(&inner.tokens).insert(access_token.clone(), inner.clock.now() + inner.token_ttl);
    axum::Json(TokenResponse {
        access_token,
        expires_in: inner.token_ttl.as_secs(),
        token_type: "Bearer".to_owned(),
    })
    .into_response()
}

async fn send_update(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let response = answer_update(&inner, &headers, &body).await;
    inner.calls.record(
        "POST",
        SEND_PATH,
        &headers,
        &body,
        response.status().as_u16(),
    );
    response
}

async fn answer_update(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Response {
    let fault = inner.faults.apply(|status| {
        if status == StatusCode::TOO_MANY_REQUESTS {
            api_error(status, "RESOURCE_EXHAUSTED", "Quota exceeded.")
        } else {
            api_error(status, "INTERNAL", "Simulated failure.")
        }
    });
    if let Some(response) = fault.await {
        return response;
    }
    if !inner.admit() {
        let mut response = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for order updates.",
        );
        response
            .headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from(1));
        return response;
    }
    if !inner.token_valid(headers) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    let request: AsyncOrderUpdateRequest = match crate::wire::from_slice(body, "body") {
        Ok(request) => request,
        Err(message) => {
            return api_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message);
        }
    };
    let update = request.custom_push_message.order_update;
    if let Err(message) = check_update(&update) {
        return api_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message);
    }
    let mut orders = lock(&inner.orders);
    let Some(order) = orders.get_mut(&update.action_order_id) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Order {} not found.", update.action_order_id),
        );
    };
    let Some(current) = order.state.clone() else {
        // The submit was sent but its answer has not come back (yet): the merchant's
        // update overtook its own answer. Google creates the order once the answer is in.
        return api_error(
            StatusCode::CONFLICT,
            "ABORTED",
            format!(
                "Order {} is not created yet: its submit has not been answered. Retry.",
                update.action_order_id
            ),
        );
    };
    if let Err(message) = transition_allowed(&current, &update.order_state.state, order.kind) {
        return api_error(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", message);
    }
    let before = unified_status(&current, order.kind);
    let after = unified_status(&update.order_state.state, order.kind);
    order.state = Some(update.order_state.state.clone());
    // Heard under the lock, so that the feed's order is the order the updates were taken
    // in.
    if let Some(after) = after
        && Some(after) != before
    {
        inner.feed.heard(&update.action_order_id, after);
    }
    order.updates.push(update);
    (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
}

async fn sim_calls(State(inner): State<Shared>) -> Response {
    axum::Json(inner.calls.all()).into_response()
}

fn read_sample(body: &[u8]) -> Result<SampleOrder, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            format!("Body is not a SampleOrder: {e}"),
        ))
    })
}

async fn sim_place(State(inner): State<Shared>, body: Bytes) -> Response {
    let sample = match read_sample(&body) {
        Ok(sample) => sample,
        Err(response) => return *response,
    };
    let placed = inner.place(&sample).await;
    axum::Json(serde_json::json!({
        "external_order_id": placed.external_order_id,
        "webhook_status": placed.answer.status,
        "webhook_body": placed.answer.body,
    }))
    .into_response()
}

async fn sim_checkout(State(inner): State<Shared>, body: Bytes) -> Response {
    let sample = match read_sample(&body) {
        Ok(sample) => sample,
        Err(response) => return *response,
    };
    let request = checkout_request(&sample, &Uuid::new_v4().simple().to_string(), inner.sandbox);
    let answer = inner
        .send_signed(serde_json::to_vec(&request).unwrap_or_default())
        .await;
    axum::Json(serde_json::json!({
        "webhook_status": answer.status,
        "webhook_body": serde_json::from_str::<serde_json::Value>(&answer.body)
            .unwrap_or(serde_json::Value::String(answer.body)),
    }))
    .into_response()
}

async fn sim_order(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&inner.orders).get(&id) {
        Some(order) => axum::Json(order).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Order {id} not found."),
        ),
    }
}
