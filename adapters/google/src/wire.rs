//! Serde types mirroring Google's Ordering End-to-End JSON (the `google.actions.v2.orders`
//! messages, proto3 JSON mapping: lowerCamelCase names, 64-bit integers as strings).
//!
//! Inbound (Google → us): [`AppRequest`], the envelope of both the `CheckoutRequestMessage`
//! and the `SubmitOrderRequestMessage`. Outbound (us → Google): [`OrderUpdate`] inside the
//! `SubmitOrderResponseMessage` and the `AsyncOrderUpdateRequestMessage`; the checkout
//! answer is built as JSON in `respond`. Unknown fields are ignored everywhere; the types
//! never leave the crate except through the simulator.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `inputs[0].intent` of a checkout.
pub const INTENT_CHECKOUT: &str = "actions.foodordering.intent.CHECKOUT";
/// `inputs[0].intent` of a submitted order.
pub const INTENT_SUBMIT: &str = "actions.intent.TRANSACTION_DECISION";

pub const TYPE_CART: &str = "type.googleapis.com/google.actions.v2.orders.Cart";
pub const TYPE_FOOD_CART_EXTENSION: &str =
    "type.googleapis.com/google.actions.v2.orders.FoodCartExtension";
pub const TYPE_FOOD_ITEM_EXTENSION: &str =
    "type.googleapis.com/google.actions.v2.orders.FoodItemExtension";
pub const TYPE_FOOD_ORDER_EXTENSION: &str =
    "type.googleapis.com/google.actions.v2.orders.FoodOrderExtension";
pub const TYPE_FOOD_ORDER_UPDATE_EXTENSION: &str =
    "type.googleapis.com/google.actions.v2.orders.FoodOrderUpdateExtension";
pub const TYPE_FOOD_ERROR_EXTENSION: &str =
    "type.googleapis.com/google.actions.v2.orders.FoodErrorExtension";

/// Reads JSON, naming the path of the field that does not fit (`inputs[0].arguments[0]…`).
pub fn from_slice<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        if path == "." || path.is_empty() {
            format!("{what}: {}", error.inner())
        } else {
            format!("{what}: {path}: {}", error.inner())
        }
    })
}

// ---------------------------------------------------------------------------------------
// Requests from Google
// ---------------------------------------------------------------------------------------

/// The request envelope Google posts to the fulfillment URL (checkout and submit alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(default)]
    pub inputs: Vec<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_action_only: Option<bool>,
    /// The payment is a sandbox one (test orders).
    #[serde(default)]
    pub is_in_sandbox: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    pub intent: String,
    #[serde(default)]
    pub arguments: Vec<Argument>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// Checkout: the cart (`@type` … `orders.Cart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Cart>,
    /// Submit: the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_decision_value: Option<TransactionDecisionValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionDecisionValue {
    pub order: GoogleOrder,
}

/// `transactionDecisionValue.order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleOrder {
    pub final_order: ProposedOrder,
    pub google_order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_info: Option<PaymentInfo>,
}

/// The order as the customer confirmed it (`finalOrder`), or as we propose it (checkout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposedOrder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub cart: Cart,
    /// Typed lines: SUBTOTAL, DELIVERY, TAX, DISCOUNT, FEE, GRATUITY.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_items: Vec<LineItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub type_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<Merchant>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    /// Adjustments the user entered (a gratuity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_items: Vec<LineItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<FoodCartExtension>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Merchant {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A cart line or a typed line of `otherItems`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// REGULAR for items; SUBTOTAL, DELIVERY, TAX, DISCOUNT, FEE, GRATUITY in `otherItems`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// For an item: the price of the whole line (quantity × (unit + options)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<FoodItemExtension>,
}

/// `{type: ESTIMATE | ACTUAL, amount: Money}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub amount: GoogleMoney,
}

/// `google.type.Money`: whole `units` (int64, as a string in JSON) plus `nanos`
/// (10⁻⁹ units, same sign as `units`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleMoney {
    pub currency_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<Int64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nanos: Option<i64>,
}

/// An int64 as proto3 JSON writes it (a string), or as a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Int64 {
    Text(String),
    Number(i64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FoodItemExtension {
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub type_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<FoodItemOption>,
    /// The customer's note on the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An add-on of an item (`FoodItemOption`), with its own add-ons in `subOptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FoodItemOption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// One of this option, without its sub-options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<GoogleMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How many of this option per one of its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_options: Vec<FoodItemOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FoodCartExtension {
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub type_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_preference: Option<FulfillmentOption>,
    /// The delivery location (absent for pickup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentOption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_info: Option<FulfillmentInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup: Option<PickupInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryInfo {
    /// `P0M` for as soon as possible, otherwise the requested time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_time_iso8601: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PickupInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_time_iso8601: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<LatLng>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<PostalAddress>,
    /// Notes about the location (for the courier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatLng {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress {
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrative_area: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `PREPAID` (paid through Google) or `ON_FULFILLMENT` (paid at delivery or pickup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_provided_payment_instrument: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------
// Order updates (submit answer and asynchronous updates)
// ---------------------------------------------------------------------------------------

/// The order states of Ordering End-to-End.
pub mod state {
    pub const CREATED: &str = "CREATED";
    pub const CONFIRMED: &str = "CONFIRMED";
    pub const REJECTED: &str = "REJECTED";
    pub const IN_PREPARATION: &str = "IN_PREPARATION";
    pub const READY_FOR_PICKUP: &str = "READY_FOR_PICKUP";
    pub const IN_TRANSIT: &str = "IN_TRANSIT";
    pub const FULFILLED: &str = "FULFILLED";
    pub const CANCELLED: &str = "CANCELLED";
}

/// `OrderUpdate`, as we send it in the submit answer and in asynchronous updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderUpdate {
    /// Google's order id (`googleOrderId` of the submit).
    pub action_order_id: String,
    pub order_state: OrderState,
    /// RFC 3339, UTC.
    pub update_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    #[serde(default)]
    pub order_management_actions: Vec<OrderManagementAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_info: Option<RejectionInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_info: Option<CancellationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info_extension: Option<FoodOrderUpdateExtension>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderState {
    pub state: String,
    /// What the customer reads.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub user_visible_order_id: String,
}

/// `CUSTOMER_SERVICE` (required in every update), `EMAIL`, `CALL_RESTAURANT`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderManagementAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub button: Button,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Button {
    pub title: String,
    pub open_url_action: OpenUrlAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenUrlAction {
    /// `https://…`, `tel:…` or `mailto:…`.
    pub url: String,
}

/// Why an order was rejected: `type` is `UNKNOWN`, `PAYMENT_DECLINED`, `INELIGIBLE`,
/// `PROMO_NOT_APPLICABLE` or `UNAVAILABLE_SLOT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectionInfo {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoodOrderUpdateExtension {
    #[serde(rename = "@type")]
    pub type_url: String,
    /// A window `start/end` (RFC 3339 instants), not a single time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_fulfillment_time_iso8601: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub food_order_errors: Vec<FoodOrderError>,
}

/// One error of a `FoodErrorExtension` (checkout) or of a rejected order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoodOrderError {
    /// `CLOSED`, `OUT_OF_SERVICE_AREA`, `NO_CAPACITY`, `INVALID`, …
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /v2/conversations:send` body (`AsyncOrderUpdateRequestMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsyncOrderUpdateRequest {
    #[serde(default)]
    pub is_in_sandbox: bool,
    pub custom_push_message: CustomPushMessage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomPushMessage {
    pub order_update: OrderUpdate,
}

/// Google's OAuth token answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
}

/// Google APIs' error body: `{"error": {"code", "message", "status"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: u16,
    pub message: String,
    /// `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`, …
    pub status: String,
}
