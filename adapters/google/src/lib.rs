//! Channel `google`: Google Ordering End-to-End (Actions Center food ordering, "Order with
//! Google"), and its simulator.
//!
//! # Documentation followed
//!
//! - Fulfillment overview: <https://developers.google.com/maps-booking/verticals/food-ordering/guides/build/fulfillment-api/overview>
//! - Checkout: <https://developers.google.com/actions-center/verticals/ordering/e2e/integration-steps/fulfillment-api/set-up-checkout>
//! - Submit order: <https://developers.google.com/maps-booking/verticals/food-ordering/guides/build/fulfillment-api/set-up-submit-order>
//! - Request verification (JWT): <https://developers.google.com/actions-center/verticals/ordering/e2e/integration-steps/fulfillment-api/authorization-and-verification>
//! - Asynchronous order updates: <https://developers.google.com/maps-booking/verticals/food-ordering/guides/build/async-order-update>
//!   and the examples of <https://developers.google.com/maps-booking/verticals/food-ordering/reference/examples/implement-order-updates-advanced>
//! - Menu feed ↔ cart mapping (line price = quantity × price, `options`/`subOptions`):
//!   <https://developers.google.com/actions-center/verticals/ordering/e2e/reference/fulfillment-api/implement-fulfillment-advanced>
//! - Error and rejection enums: `ErrorType` and `ReasonType` of the Actions on Google
//!   orders reference (<https://developers.google.com/assistant/df-asdk/reference/webhook/rest/Shared.Types/ErrorType>).
//! - CHANNELS.md §6.1, §8 and §10 of the design.
//!
//! # How an order flows
//!
//! Google calls one fulfillment URL, `POST /webhooks/google`, synchronously, with a signed
//! JWT in `Authorization` (RS256, issuer Google, audience our Actions project id).
//! [`Google::verify`](crossdock_channel::Channel::verify) checks it against keys
//! configured up front (never fetched on the request path) and against the request's
//! `received_at`. **The JWT does not cover the body**: it proves that Google sent the
//! request for our project within the token's lifetime, not what the body says.
//!
//! `parse` tells the two calls apart by `inputs[0].intent`:
//!
//! 1. **Checkout** (`actions.foodordering.intent.CHECKOUT`, the cart in
//!    `inputs[0].arguments[0].extension`) → [`Inbound::Quote`]: the cart as an order,
//!    priced with the configured delivery fee and tax rate. The hub runs the order check
//!    and the router without recording anything, and `reply` answers a
//!    `CheckoutResponseMessage`: the cart unmodified, `otherItems` (SUBTOTAL, DELIVERY,
//!    TAX, GRATUITY), `totalPrice` and the payment options; or, when no store can take the
//!    order now, a `FoodErrorExtension` (`OUT_OF_SERVICE_AREA`, `CLOSED`, `NO_CAPACITY`,
//!    `INVALID`). Dedupe key and quote id: `checkout:` + the cart id, else the
//!    conversation id (a quote is never recorded).
//! 2. **Submit** (`actions.intent.TRANSACTION_DECISION`, the order in
//!    `inputs[0].arguments[0].transactionDecisionValue.order`) → [`Inbound::Order`]
//!    (external id `googleOrderId`, dedupe key `submit:` + `googleOrderId`, so Google's
//!    retry of a submit is a replay). Once the hub committed, `reply` answers the
//!    `SubmitOrderResponseMessage` with an `OrderUpdate` in state `CREATED` (the store
//!    decides later): `actionOrderId` = `googleOrderId`, `receipt.userVisibleOrderId` =
//!    the display code, `updateTime` = the receipt time, the `CUSTOMER_SERVICE` action.
//!
//! Status goes back as asynchronous order updates, `POST {api_base_url}/v2/conversations:send`
//! with `customPushMessage.orderUpdate`, authorised by an OAuth 2.0 access token from the
//! service-account JWT-bearer grant (scope `actions.order.developer`):
//!
//! | hub action | Google state |
//! |---|---|
//! | accept | `CONFIRMED`, with an estimated fulfilment window |
//! | reject (and fail before acceptance) | `REJECTED` with `rejectionInfo` |
//! | preparing | `IN_PREPARATION` |
//! | ready | `READY_FOR_PICKUP` for pickup orders; not sent for delivery orders (it would tell the customer to come) |
//! | picked up | `IN_TRANSIT` for delivery orders; not sent for pickup orders (the customer collecting is `FULFILLED`, sent on complete) |
//! | delivered, complete | `FULFILLED` |
//! | cancel (and fail after acceptance) | `CANCELLED` with `cancellationInfo` |
//!
//! **Cancellation by the customer:** Google has no call that tells the merchant of a
//! cancellation. The fulfillment API has two calls (checkout, submit); a customer who
//! wants to cancel uses the order's `CUSTOMER_SERVICE` action (phone, e-mail or web page
//! of the chain), and the chain cancels (`CANCELLED` update). So this adapter never
//! produces [`Inbound::Cancelled`]; cancellations reach the hub through HQ or the store.
//!
//! **Refusals** follow Google's conventions: a JWT that is missing, forged, for another
//! audience or issuer is answered 401 (expired: 401 too, as `stale`); a submitted order
//! the hub cannot take (unreadable money, no items, …) is answered 200 with a `REJECTED`
//! order update and `rejectionInfo` (Google shows the customer the rejection); a checkout
//! that cannot be read is answered 200 with a `FoodErrorExtension` `INVALID`; a body that
//! is not a Google request at all is answered 400.
//!
//! # Layout
//!
//! - this file: [`Google`] (the [`Channel`]), [`GoogleConfig`], [`Factory`], push planning;
//! - `wire`: serde types mirroring Google's JSON;
//! - `convert`: wire → [`crossdock_model::NewOrder`]; the only place money is converted;
//! - `respond`: the answers (checkout, submit, order updates);
//! - [`jwt`]: request verification and the service-account token;
//! - [`simulator`]: [`simulator::GoogleSim`], an HTTP server behaving like Google.
//!
//! # Configuration (`[channels.google]`)
//!
//! | option | default |
//! |---|---|
//! | `project_id` | [`DEV_PROJECT_ID`]: the audience of Google's request JWTs |
//! | `issuers` | `["https://accounts.google.com", "accounts.google.com"]` |
//! | `clock_skew_secs` | 60 (leeway on `iat`/`exp`) |
//! | `api_base_url` | `https://actions.googleapis.com` |
//! | `token_url` | `https://oauth2.googleapis.com/token` |
//! | `service_account_email` | [`DEV_SERVICE_ACCOUNT_EMAIL`] (a JSON key file's `client_email` wins) |
//! | `scope` | `https://www.googleapis.com/auth/actions.order.developer` |
//! | `customer_service_url` | `https://crossdock.example/help`: set the chain's (`https:`, `tel:` or `mailto:`) |
//! | `customer_service_title` | `Contact customer service` |
//! | `pricing` | `{}`: per currency, `{delivery_fee = "2.99", tax_rate_percent = "8.875"}` for checkout |
//! | `payment_options` | Google's `paymentOptions` offered at checkout; default `ON_FULFILLMENT` |
//! | `delivery_minutes` | 20: added to the preparation time in the delivery estimate |
//! | `timeout_secs` | 10 (per request to Google) |
//!
//! Secrets:
//! - `verification_keys` (`CROSSDOCK_SECRET_GOOGLE_VERIFICATION_KEYS`): Google's public
//!   keys, a PEM public key or a JWKS document. Development default: the simulator's
//!   public key ([`DEV_GOOGLE_PUBLIC_KEY`]).
//! - `service_account_key` (`CROSSDOCK_SECRET_GOOGLE_SERVICE_ACCOUNT_KEY`): our service
//!   account's private key, PEM or Google's JSON key file. Development default:
//!   [`DEV_SERVICE_ACCOUNT_KEY`], which the simulator accepts.
//!
//! The development keys are in `adapters/google/dev-keys/`: published test credentials,
//! never for production.
//!
//! # Simulator control endpoints
//!
//! - `GET /_sim/calls`: every call the hub made (token, order updates);
//! - `POST /_sim/orders`: body a [`crossdock_channel::sim::SampleOrder`]; submits it to the
//!   hub and answers `{external_order_id, webhook_status, webhook_body}`;
//! - `POST /_sim/checkout`: the same sample as a checkout; answers the hub's answer;
//! - `GET /_sim/orders/{id}`: the order's Google state and its updates.
//!
//! # Assumptions
//!
//! - \[2nd\] The async update URL and scope (`/v2/conversations:send`,
//!   `actions.order.developer`) are as CHANNELS.md §6.1 recalls them and as Google's public
//!   transactions sample uses the scope; the token is obtained with the standard
//!   service-account JWT-bearer grant (assertion `aud` = the token URL).
//! - The `Authorization` value is `Bearer <jwt>`; a bare JWT is accepted too (Google's
//!   sample passes the header value to the verifier as it is). Google signs with RS256;
//!   `iss` is `https://accounts.google.com` (or without the scheme), `aud` the project id.
//! - A line's `price` is the line total (the mapping guide and the sample with quantity 2
//!   say so), options included; an option's `price` is one option and its `quantity` is
//!   per one of its parent (absent: 1). The unit price is derived; a line total that does
//!   not divide by the quantity is refused.
//! - The chain's Google menu feed uses the PLU as the menu item id (the line `id`) and as
//!   the add-on id (the option `id`); `offerId` is kept as the channel's item id.
//! - A delivery order is delivered by the store (Google has no couriers).
//! - `deliveryTimeIso8601`/`pickupTimeIso8601`: a zero duration (`P0M`) is as soon as
//!   possible; an instant (or the start of an instant window) is a scheduled order; a
//!   non-zero duration counts from `orderDate`.
//! - `ON_FULFILLMENT` payment is cash on delivery for delivery orders and pay at store for
//!   pickup, the total being what to collect.
//! - `FEE` lines are filed by name (service, small order, bag/packaging, else other);
//!   `DISCOUNT` lines are funded by an unknown party.
//! - The order-level note is the cart's `notes`; the courier's note is the location's
//!   `notes`; option notes join their item's note.
//! - The display code (and `userVisibleOrderId`) is `G-` and the last six characters of
//!   `googleOrderId`: Google sends no short code.
//! - Google's limits on asynchronous updates are not published: pushes are held to 20 a
//!   second. Repeating an update in the state the order already has is accepted (a
//!   retried push), as the simulator does.
//! - Checkout pricing (delivery fee, tax) comes from `pricing`; promotions in the cart are
//!   not applied (no `DISCOUNT` is proposed). The payment offered by default is
//!   `ON_FULFILLMENT` (the hub processes no payments); a chain with Google Pay sets
//!   `payment_options` to its `googleProvidedOptions`.
//! - Unservable quotes: an unmapped merchant id (`UnknownStore`) is `CLOSED` (for the
//!   customer the restaurant takes no orders; `NOT_FOUND` is for items and promotions);
//!   an order the check refuses is `INVALID`; a paused or closed store is `CLOSED`, or
//!   `NO_CAPACITY` when the router's reason says it is busy.
//! - A submitted order the hub refuses is answered 200 with a `REJECTED` update, not with a
//!   4xx: Google reads the order's fate from the answer, and a 4xx would only show the
//!   customer an error (and invite a retry).
//! - The estimate sent with `CONFIRMED` is a 15-minute window starting after the
//!   preparation time (plus `delivery_minutes` for delivery), or at a scheduled order's
//!   time.
//! - Google's deadline for answering checkout and submit is not published: the simulator
//!   waits 10 s. The simulator also assumes that `REJECTED` updates need `rejectionInfo`
//!   and `CANCELLED` ones `cancellationInfo` (Google's examples always carry them), and
//!   that `READY_FOR_PICKUP` is for pickup orders and `IN_TRANSIT` for delivery orders.
//! - An update can overtake the submit's answer (the router may reject an order, say for
//!   an item not on the menu, before Google has read the `CREATED` answer). Google is
//!   assumed to answer such an update 409 `ABORTED` (a conflict that resolves by itself,
//!   in Google's API design guide), as the simulator does: the push is retried, never
//!   parked for that. `FAILED_PRECONDITION` (a transition Google forbids) stays permanent.

pub mod jwt;
pub mod simulator;

mod convert;
mod respond;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, ConfigError, Delivery, Inbound,
    InboundRequest, Outcome, PushOutcome, RateLimit, Reply, StatusCode, clip, http,
};
use crossdock_model::{
    ChannelId, Currency, FulfillmentKind, Money, Order, Status, StatusAction, StatusChange, Timing,
    mask_phone,
};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

pub use convert::display_code;
pub use wire::{INTENT_CHECKOUT, INTENT_SUBMIT};

use crate::convert::Pricing;
use crate::respond::CustomerService;
use crate::wire::{AppRequest, AsyncOrderUpdateRequest, CustomPushMessage, state};

/// The channel id, as in `/webhooks/google` and `[channels.google]`.
pub const CHANNEL_ID: &str = "google";
/// The development Actions project id: the audience of the simulator's request JWTs.
pub const DEV_PROJECT_ID: &str = "crossdock-dev-ordering";
/// The development service account; the simulator accepts its assertions.
pub const DEV_SERVICE_ACCOUNT_EMAIL: &str =
    "crossdock-orders@crossdock-dev-ordering.iam.gserviceaccount.com";
/// The simulator's request-signing key (published development credential).
pub const DEV_GOOGLE_PRIVATE_KEY: &str = include_str!("../dev-keys/google-signing-dev.private.pem");
/// Its public key: the hub's development `verification_keys`.
pub const DEV_GOOGLE_PUBLIC_KEY: &str = include_str!("../dev-keys/google-signing-dev.public.pem");
/// The `kid` of the simulator's signing key.
pub const DEV_GOOGLE_KEY_ID: &str = "crossdock-dev-google-1";
/// Our development service account's private key: the hub's development
/// `service_account_key` (published development credential).
pub const DEV_SERVICE_ACCOUNT_KEY: &str =
    include_str!("../dev-keys/service-account-dev.private.pem");
/// Its public key, with which the simulator checks our assertions.
pub const DEV_SERVICE_ACCOUNT_PUBLIC_KEY: &str =
    include_str!("../dev-keys/service-account-dev.public.pem");
/// The issuer of Google's request JWTs.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const DEFAULT_API_BASE_URL: &str = "https://actions.googleapis.com";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/actions.order.developer";
/// The path of asynchronous order updates.
pub const SEND_PATH: &str = "/v2/conversations:send";
/// Secret: Google's public keys (PEM or JWKS).
const VERIFICATION_KEYS: &str = "verification_keys";
/// Secret: our service account's private key (PEM or JSON key file).
const SERVICE_ACCOUNT_KEY: &str = "service_account_key";

/// Checkout prices of one currency, as configured (decimal strings, never floats).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// The delivery fee, in major units (`"2.99"`).
    pub delivery_fee: Option<String>,
    /// Sales tax in percent of the subtotal (`"8.875"`).
    pub tax_rate_percent: Option<String>,
}

/// The `[channels.google]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleConfig {
    /// Our Actions project id: the audience of Google's request JWTs.
    pub project_id: String,
    /// Accepted `iss` values of Google's request JWTs.
    pub issuers: Vec<String>,
    /// Leeway on the JWT's `iat` and `exp`, in seconds.
    pub clock_skew_secs: u64,
    /// Where asynchronous updates go, e.g. `https://actions.googleapis.com` or the
    /// simulator's URL.
    pub api_base_url: String,
    /// The OAuth token endpoint.
    pub token_url: String,
    pub service_account_email: String,
    pub scope: String,
    /// The `CUSTOMER_SERVICE` action's URL (`https:`, `tel:` or `mailto:`).
    pub customer_service_url: String,
    pub customer_service_title: String,
    /// Checkout prices by currency code.
    pub pricing: BTreeMap<String, PricingConfig>,
    /// The `paymentOptions` offered at checkout, as Google's JSON.
    pub payment_options: serde_json::Value,
    /// Minutes added to the preparation time in a delivery order's estimate.
    pub delivery_minutes: u32,
    /// Timeout of one request to Google, in seconds.
    pub timeout_secs: u64,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        Self {
            project_id: DEV_PROJECT_ID.to_owned(),
            issuers: vec![GOOGLE_ISSUER.to_owned(), "accounts.google.com".to_owned()],
            clock_skew_secs: 60,
            api_base_url: DEFAULT_API_BASE_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            service_account_email: DEV_SERVICE_ACCOUNT_EMAIL.to_owned(),
            scope: DEFAULT_SCOPE.to_owned(),
            customer_service_url: "https://crossdock.example/help".to_owned(),
            customer_service_title: "Contact customer service".to_owned(),
            pricing: BTreeMap::new(),
            payment_options: serde_json::json!({
                "actionProvidedOptions": {
                    "paymentType": "ON_FULFILLMENT",
                    "displayName": "Pay when you get your food."
                }
            }),
            delivery_minutes: 20,
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

/// The Google Ordering End-to-End channel adapter.
#[derive(Debug)]
pub struct Google {
    id: ChannelId,
    verifier: jwt::Verifier,
    account: jwt::ServiceAccount,
    send_url: String,
    service: CustomerService,
    pricing: HashMap<Currency, Pricing>,
    payment_options: serde_json::Value,
    pays_on_fulfillment: bool,
    delivery_minutes: u32,
    timeout: Duration,
    http: reqwest::Client,
}

impl Google {
    /// Builds the adapter; refuses unusable URLs, keys, prices or a zero timeout.
    pub fn new(
        config: GoogleConfig,
        verification_keys: &str,
        service_account_key: &str,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            channel: CHANNEL_ID.to_owned(),
            message,
        };
        let id = ChannelId::parse(CHANNEL_ID).map_err(|e| invalid(e.to_string()))?;
        for (name, value) in [
            ("api_base_url", &config.api_base_url),
            ("token_url", &config.token_url),
        ] {
            crossdock_channel::config::http_url(CHANNEL_ID, name, value)?;
        }
        let service_url = config.customer_service_url.trim();
        if !["https://", "http://", "tel:", "mailto:"]
            .iter()
            .any(|scheme| service_url.starts_with(scheme))
        {
            return Err(invalid(format!(
                "`customer_service_url` = `{service_url}` must be an https:, tel: or mailto: URL"
            )));
        }
        if config.project_id.trim().is_empty() {
            return Err(invalid("`project_id` is empty".to_owned()));
        }
        if config.issuers.is_empty() {
            return Err(invalid("`issuers` is empty".to_owned()));
        }
        if config.timeout_secs == 0 {
            return Err(invalid("`timeout_secs` must be at least 1".to_owned()));
        }
        if !config.payment_options.is_object() {
            return Err(invalid(
                "`payment_options` must be a JSON object".to_owned(),
            ));
        }
        let pricing = read_pricing(&config.pricing).map_err(invalid)?;
        let verifier = jwt::Verifier::new(
            verification_keys,
            config.project_id.clone(),
            config.issuers.clone(),
            Duration::from_secs(config.clock_skew_secs),
        )
        .map_err(|e| invalid(format!("secret `{VERIFICATION_KEYS}`: {e}")))?;
        let key = jwt::ServiceAccountKey::read(service_account_key)
            .map_err(|e| invalid(format!("secret `{SERVICE_ACCOUNT_KEY}`: {e}")))?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let account = jwt::ServiceAccount::new(
            http.clone(),
            config.token_url.clone(),
            config.service_account_email.clone(),
            config.scope.clone(),
            key,
            timeout,
        );
        let pays_on_fulfillment = config
            .payment_options
            .pointer("/actionProvidedOptions/paymentType")
            .and_then(|v| v.as_str())
            == Some("ON_FULFILLMENT");
        Ok(Self {
            id,
            verifier,
            account,
            send_url: format!("{}{SEND_PATH}", config.api_base_url.trim_end_matches('/')),
            service: CustomerService {
                title: config.customer_service_title.clone(),
                url: service_url.to_owned(),
            },
            pricing,
            payment_options: config.payment_options.clone(),
            pays_on_fulfillment,
            delivery_minutes: config.delivery_minutes,
            timeout,
            http,
        })
    }

    /// The service account the adapter authenticates as.
    pub fn service_account_email(&self) -> &str {
        self.account.client_email()
    }

    fn pricing_for(&self, currency: Currency) -> Pricing {
        self.pricing.get(&currency).copied().unwrap_or_default()
    }

    /// Sends one asynchronous update; on a 401 drops the token and tries once more.
    async fn send(&self, body: &AsyncOrderUpdateRequest) -> Result<u16, ChannelError> {
        let attempt = |token: String| {
            self.http
                .post(&self.send_url)
                .bearer_auth(token)
                .json(body)
                .timeout(self.timeout)
        };
        let token = self.account.token().await?;
        let response = match http::send(attempt(token.expose_secret().to_owned())).await {
            Err(ChannelError::Platform { status: 401, .. }) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    "Google answered 401; refreshing the access token and retrying once."
                );
                self.account.invalidate().await;
                let token = self.account.token().await?;
                http::send(attempt(token.expose_secret().to_owned())).await?
            }
            // Google has not created the order yet: the submit's answer is still on its
            // way (the router can reject an order before Google has read our answer).
            // Google creates it once the answer is in, so the update is tried again.
            Err(ChannelError::Platform { status: 409, body }) if is_aborted(&body) => {
                return Err(ChannelError::Transport(format!(
                    "Google has not created the order yet (409 ABORTED), retrying: {}",
                    clip(&body)
                )));
            }
            other => other?,
        };
        Ok(response.status().as_u16())
    }
}

/// Whether Google's error body says `ABORTED`: a conflict that resolves by itself, worth
/// another try (Google's API design guide), unlike `FAILED_PRECONDITION`.
fn is_aborted(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/error/status")?
                .as_str()
                .map(|s| s == "ABORTED")
        })
        .unwrap_or(false)
}

fn read_pricing(
    config: &BTreeMap<String, PricingConfig>,
) -> Result<HashMap<Currency, Pricing>, String> {
    let mut out = HashMap::new();
    for (code, prices) in config {
        let currency = Currency::parse(code).map_err(|e| format!("`pricing.{code}`: {e}"))?;
        let delivery_fee = prices
            .delivery_fee
            .as_deref()
            .map(|fee| Money::from_major_str(fee, currency))
            .transpose()
            .map_err(|e| format!("`pricing.{code}.delivery_fee`: {e}"))?;
        if delivery_fee.is_some_and(|fee| fee.minor < 0) {
            return Err(format!("`pricing.{code}.delivery_fee` is negative"));
        }
        let tax_rate_percent = prices
            .tax_rate_percent
            .as_deref()
            .map(|rate| rate.trim().parse::<Decimal>())
            .transpose()
            .map_err(|e| format!("`pricing.{code}.tax_rate_percent`: {e}"))?;
        if tax_rate_percent
            .is_some_and(|rate| rate.is_sign_negative() || rate > Decimal::ONE_HUNDRED)
        {
            return Err(format!(
                "`pricing.{code}.tax_rate_percent` must lie within 0 to 100"
            ));
        }
        out.insert(
            currency,
            Pricing {
                delivery_fee,
                tax_rate_percent,
            },
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Pushes
// ---------------------------------------------------------------------------------------

/// What a status action means on Google.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    Send(Box<AsyncOrderUpdateRequest>),
    NotApplicable(String),
}

/// Width of the estimated fulfilment window Google asks for (a window, not a time).
const ESTIMATE_WINDOW: TimeDelta = TimeDelta::minutes(15);

/// Maps one status change onto the order update Google gets. Times come from the change,
/// never from the clock: a push may run later than the change.
pub(crate) fn plan(
    order: &Order,
    change: &StatusChange,
    service: &CustomerService,
    delivery_minutes: u32,
) -> Result<Plan, ChannelError> {
    let new = &order.order;
    let id = new.external_order_id.trim();
    if id.is_empty() {
        return Err(ChannelError::Malformed(
            "the order has no Google order id".to_owned(),
        ));
    }
    let kind = new.fulfillment.kind;
    let delivery = kind == FulfillmentKind::Delivery;
    let visible = new.display_code.clone().unwrap_or_else(|| display_code(id));
    let is_in_sandbox = new
        .channel_data
        .get("is_in_sandbox")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let accepted = !matches!(change.from, Status::Received);
    let update = |state_name: &str| {
        respond::order_update(
            id,
            &visible,
            state_name,
            respond::label(state_name, kind),
            change.at,
            service,
        )
    };
    let not_applicable = |why: &str| Ok(Plan::NotApplicable(why.to_owned()));
    let order_update = match &change.action {
        StatusAction::Accept { prep_minutes } => {
            let prep = TimeDelta::minutes(i64::from(*prep_minutes));
            let start = match new.fulfillment.timing {
                Timing::Scheduled { at } if at > change.at + prep => at,
                _ if delivery => change.at + prep + TimeDelta::minutes(i64::from(delivery_minutes)),
                _ => change.at + prep,
            };
            let mut confirmed = update(state::CONFIRMED);
            confirmed.info_extension = Some(wire::FoodOrderUpdateExtension {
                type_url: wire::TYPE_FOOD_ORDER_UPDATE_EXTENSION.to_owned(),
                estimated_fulfillment_time_iso8601: Some(format!(
                    "{}/{}",
                    respond::rfc3339(start),
                    respond::rfc3339(start + ESTIMATE_WINDOW)
                )),
                food_order_errors: Vec::new(),
            });
            confirmed
        }
        StatusAction::Reject { reason } => respond::rejected(update(state::REJECTED), reason),
        StatusAction::Fail { reason } if !accepted => {
            respond::rejected(update(state::REJECTED), reason)
        }
        StatusAction::Cancel { reason } | StatusAction::Fail { reason } => {
            let mut cancelled = update(state::CANCELLED);
            cancelled.cancellation_info = Some(wire::CancellationInfo {
                reason: Some(reason.clone()),
            });
            cancelled
        }
        StatusAction::Preparing => update(state::IN_PREPARATION),
        StatusAction::Ready if delivery => {
            return not_applicable(
                "Google's READY_FOR_PICKUP tells the customer to collect; a delivery order \
                 goes from IN_PREPARATION to IN_TRANSIT",
            );
        }
        StatusAction::Ready => update(state::READY_FOR_PICKUP),
        StatusAction::PickedUp if delivery => update(state::IN_TRANSIT),
        StatusAction::PickedUp => {
            return not_applicable(
                "Google has no picked-up state for pickup orders; FULFILLED is sent when the \
                 order is completed",
            );
        }
        StatusAction::Delivered | StatusAction::Complete => update(state::FULFILLED),
    };
    Ok(Plan::Send(Box::new(AsyncOrderUpdateRequest {
        is_in_sandbox,
        custom_push_message: CustomPushMessage { order_update },
    })))
}

/// The unified status Google's state amounts to, for an order of `kind`: what the
/// platform believes (`FULFILLED` is delivered for delivery orders, completed otherwise).
pub fn unified_status(google_state: &str, kind: FulfillmentKind) -> Option<Status> {
    Some(match google_state {
        state::CREATED => Status::Received,
        state::CONFIRMED => Status::Accepted,
        state::IN_PREPARATION => Status::Preparing,
        state::READY_FOR_PICKUP => Status::Ready,
        state::IN_TRANSIT => Status::PickedUp,
        state::FULFILLED if kind == FulfillmentKind::Delivery => Status::Delivered,
        state::FULFILLED => Status::Completed,
        state::REJECTED => Status::Rejected,
        state::CANCELLED => Status::Cancelled,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// The channel
// ---------------------------------------------------------------------------------------

/// The request kind, read leniently from a body (for answering refusals).
fn intent_of(body: &[u8]) -> Option<(String, serde_json::Value)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let intent = value.pointer("/inputs/0/intent")?.as_str()?.to_owned();
    Some((intent, value))
}

#[async_trait]
impl Channel for Google {
    fn id(&self) -> &ChannelId {
        &self.id
    }

    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        let claims = self
            .verifier
            .verify(request.header("authorization"), request.received_at)?;
        tracing::debug!(
            channel = CHANNEL_ID,
            iss = %claims.iss,
            iat = claims.iat,
            exp = claims.exp,
            "Google request JWT verified."
        );
        Ok(())
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let envelope: AppRequest =
            wire::from_slice(&request.body, "request").map_err(ChannelError::Malformed)?;
        let Some(input) = envelope.inputs.first() else {
            return Err(ChannelError::Malformed(
                "request: `inputs` is empty; expected a checkout or a submitted order".to_owned(),
            ));
        };
        let argument = input.arguments.first();
        let conversation = envelope
            .conversation
            .as_ref()
            .and_then(|c| c.conversation_id.as_deref())
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let context = convert::Context {
            is_in_sandbox: envelope.is_in_sandbox,
            received_at: request.received_at,
        };
        let delivery = match input.intent.as_str() {
            INTENT_CHECKOUT => {
                let cart = argument.and_then(|a| a.extension.as_ref()).ok_or_else(|| {
                    ChannelError::Malformed(
                        "inputs[0].arguments[0].extension: the checkout carries no cart".to_owned(),
                    )
                })?;
                let key = cart
                    .id
                    .as_deref()
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .or(conversation)
                    .ok_or_else(|| {
                        ChannelError::Malformed(
                            "conversation.conversationId: the checkout has neither a \
                             conversation id nor a cart id"
                                .to_owned(),
                        )
                    })?;
                let quote_id = format!("checkout:{key}");
                let order = convert::checkout(
                    &self.id,
                    cart,
                    &quote_id,
                    |currency| self.pricing_for(currency),
                    self.pays_on_fulfillment,
                    context,
                    "inputs[0].arguments[0].extension",
                )?;
                Delivery {
                    dedupe_key: quote_id,
                    inbound: Inbound::Quote(Box::new(order)),
                }
            }
            INTENT_SUBMIT => {
                let order = argument
                    .and_then(|a| a.transaction_decision_value.as_ref())
                    .map(|t| &t.order)
                    .ok_or_else(|| {
                        ChannelError::Malformed(
                            "inputs[0].arguments[0].transactionDecisionValue.order: the \
                             submit carries no order"
                                .to_owned(),
                        )
                    })?;
                let order = convert::submitted(
                    &self.id,
                    order,
                    context,
                    "inputs[0].arguments[0].transactionDecisionValue.order",
                )?;
                tracing::debug!(
                    channel = CHANNEL_ID,
                    external_order_id = %order.external_order_id,
                    store = order.channel_store_ref.as_deref().unwrap_or(""),
                    lines = order.lines.len(),
                    customer_phone = %order.customer.phone.as_deref().map(mask_phone).unwrap_or_default(),
                    "Google order parsed."
                );
                Delivery {
                    dedupe_key: format!("submit:{}", order.external_order_id),
                    inbound: Inbound::Order(Box::new(order)),
                }
            }
            other => {
                return Err(ChannelError::Malformed(format!(
                    "inputs[0].intent: `{}` is neither `{INTENT_CHECKOUT}` nor `{INTENT_SUBMIT}`",
                    clip(other)
                )));
            }
        };
        Ok(delivery)
    }

    fn reply(&self, request: &InboundRequest, outcome: Outcome<'_>) -> Reply {
        match outcome {
            Outcome::Accepted { delivery, .. } => match &delivery.inbound {
                Inbound::Order(order) => {
                    let update = respond::order_update(
                        &order.external_order_id,
                        &order
                            .display_code
                            .clone()
                            .unwrap_or_else(|| display_code(&order.external_order_id)),
                        state::CREATED,
                        respond::label(state::CREATED, order.fulfillment.kind),
                        request.received_at,
                        &self.service,
                    );
                    Reply::json(StatusCode::OK, &respond::submit_answer(&update))
                }
                _ => Reply::json(StatusCode::OK, &serde_json::json!({})),
            },
            Outcome::Quoted { order, verdict } => {
                let body = match verdict {
                    Ok(()) => {
                        let cart = intent_of(&request.body)
                            .and_then(|(_, v)| {
                                v.pointer("/inputs/0/arguments/0/extension").cloned()
                            })
                            .unwrap_or(serde_json::Value::Null);
                        respond::checkout_answer(&cart, order, &self.payment_options)
                    }
                    Err(why) => respond::checkout_error(
                        vec![respond::food_error(&why)],
                        &self.payment_options,
                    ),
                };
                Reply::json(StatusCode::OK, &body)
            }
            Outcome::Refused(error) => self.refusal(request, error),
        }
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let body = match plan(order, change, &self.service, self.delivery_minutes)? {
            Plan::Send(body) => body,
            Plan::NotApplicable(why) => return Ok(PushOutcome::NotApplicable { why }),
        };
        let google_state = body
            .custom_push_message
            .order_update
            .order_state
            .state
            .clone();
        match self.send(&body).await {
            Ok(status) => {
                tracing::info!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %change.action.target(),
                    google_state = %google_state,
                    status,
                    "Order update sent to Google."
                );
                Ok(PushOutcome::Delivered {
                    detail: format!("POST {SEND_PATH} {google_state} answered {status}"),
                })
            }
            Err(error) => {
                tracing::warn!(
                    channel = CHANNEL_ID,
                    order_id = %order.id,
                    external_order_id = %order.order.external_order_id,
                    action = %change.action.target(),
                    google_state = %google_state,
                    error_type = error.kind(),
                    retryable = error.is_retryable(),
                    %error,
                    "Order update to Google failed."
                );
                Err(error)
            }
        }
    }

    /// Google publishes no limit for asynchronous updates: 20 a second, burst 20.
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 20,
            burst: 20,
        }
    }
}

impl Google {
    /// A refused request in Google's conventions: authentication failures 401; a submitted
    /// order we cannot take is a `REJECTED` order update (200); a checkout we cannot read
    /// is a `FoodErrorExtension` `INVALID` (200); anything else the common refusal.
    fn refusal(&self, request: &InboundRequest, error: &ChannelError) -> Reply {
        if matches!(
            error,
            ChannelError::Unauthorized(_) | ChannelError::Stale(_)
        ) {
            return Reply::refusal(error);
        }
        if !matches!(error, ChannelError::Malformed(_) | ChannelError::Order(_)) {
            return Reply::refusal(error);
        }
        let Some((intent, value)) = intent_of(&request.body) else {
            return Reply::refusal(error);
        };
        let reason = error.to_string();
        match intent.as_str() {
            INTENT_CHECKOUT => Reply::json(
                StatusCode::OK,
                &respond::checkout_error(
                    vec![wire::FoodOrderError {
                        error: "INVALID".to_owned(),
                        id: None,
                        description: Some(reason),
                    }],
                    &self.payment_options,
                ),
            ),
            INTENT_SUBMIT => {
                let google_order_id = value
                    .pointer("/inputs/0/arguments/0/transactionDecisionValue/order/googleOrderId")
                    .and_then(|v| v.as_str())
                    .map(str::trim)
                    .filter(|id| !id.is_empty());
                let Some(google_order_id) = google_order_id else {
                    return Reply::refusal(error);
                };
                let kind = if value
                    .pointer("/inputs/0/arguments/0/transactionDecisionValue/order/finalOrder/cart/extension/fulfillmentPreference/fulfillmentInfo/pickup")
                    .is_some()
                {
                    FulfillmentKind::Pickup
                } else {
                    FulfillmentKind::Delivery
                };
                let update = respond::order_update(
                    google_order_id,
                    &display_code(google_order_id),
                    state::REJECTED,
                    respond::label(state::REJECTED, kind),
                    request.received_at,
                    &self.service,
                );
                let update = respond::rejected(update, &reason);
                tracing::info!(
                    channel = CHANNEL_ID,
                    external_order_id = %clip(google_order_id),
                    error_kind = error.kind(),
                    "Submitted Google order answered REJECTED."
                );
                Reply::json(StatusCode::OK, &respond::submit_answer(&update))
            }
            _ => Reply::refusal(error),
        }
    }
}

/// Builds [`Google`] from `[channels.google]` and its two secrets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factory;

impl ChannelFactory for Factory {
    fn id(&self) -> &'static str {
        CHANNEL_ID
    }

    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (VERIFICATION_KEYS, DEV_GOOGLE_PUBLIC_KEY),
            (SERVICE_ACCOUNT_KEY, DEV_SERVICE_ACCOUNT_KEY),
        ]
    }

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError> {
        let config: GoogleConfig = settings.options()?;
        let keys = settings.secret(VERIFICATION_KEYS)?;
        let account = settings.secret(SERVICE_ACCOUNT_KEY)?;
        Ok(Arc::new(Google::new(
            config,
            keys.expose_secret(),
            account.expose_secret(),
            settings.http.clone(),
        )?))
    }
}

/// The names of the channel's secrets, for documentation and tests.
pub const SECRETS: [&str; 2] = [VERIFICATION_KEYS, SERVICE_ACCOUNT_KEY];

#[cfg(test)]
mod tests;
