//! Serde types of JET Connect's JSON: the webhook bodies it sends (Receive Order, the Cancel
//! Order and Driver Status notifications) and the bodies of the order-injection status
//! calls the adapter makes. They never leave the crate; `convert` turns them into the
//! unified order, and the simulator writes its webhooks with the same types, so the two
//! cannot drift apart.
//!
//! Field names are JET Connect's, as in the Receive Order schema and its three worked
//! examples ("Delivery by partner", "Delivery by restaurant", "Pick-up") of the JET Connect
//! OpenAPI document (crate docs, *Documentation followed*). The rules (CHANNELS.md §10):
//!
//! - unknown fields are ignored (serde's default: never `deny_unknown_fields` on a
//!   platform's body), so JET may add fields without breaking the channel;
//! - an unknown *value* of a field that changes the order's meaning (`type`,
//!   `payment_method`) is refused, naming the field;
//! - ids are text, never parsed as numbers: where JET's documentation allows a number
//!   (`third_party_order_reference` "can be string or number"), [`Text`] keeps the
//!   number's digits as they were written;
//! - money is never an `f64`: see [`Amount`].
//!
//! JET Connect has no envelope: one URL per webhook (crate docs), so each body is read in
//! one pass. Errors name the JSON path of the field ([`WireError`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a body does not parse: the JSON path of the offending value and serde's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// `items[0].price`; empty for the body as a whole.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "body: {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Parses JSON, naming the path of the value that does not fit.
pub(crate) fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        WireError {
            path: if path == "." { String::new() } else { path },
            message: error.into_inner().to_string(),
        }
    })?;
    deserializer.end().map_err(|error| WireError {
        path: String::new(),
        message: error.to_string(),
    })?;
    Ok(value)
}

/// An amount as JET Connect writes it: a JSON integer of minor units ("price: an integer,
/// price in cents (no decimal places)").
///
/// Kept as the JSON number it was, so that `convert` can refuse a fraction (`12.5`) or an
/// overflow as a money error naming the field, instead of rounding it. Never read as `f64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Amount(pub serde_json::Number);

impl From<i64> for Amount {
    fn from(minor: i64) -> Self {
        Amount(serde_json::Number::from(minor))
    }
}

/// A value JET documents as text but may write as a JSON number (ids, unix times). The
/// number keeps its digits exactly (no `f64` in between: serde_json's
/// `arbitrary_precision` is not needed for integers up to 64 bits, and a larger one fails
/// to parse rather than being rounded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Text {
    String(String),
    Number(serde_json::Number),
}

impl Text {
    /// The value as text, trimmed.
    pub fn text(&self) -> String {
        match self {
            Text::String(s) => s.trim().to_owned(),
            Text::Number(n) => n.to_string(),
        }
    }
}

impl From<&str> for Text {
    fn from(value: &str) -> Self {
        Text::String(value.to_owned())
    }
}

/// `type`: who fulfils the order. JET Connect documents exactly these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OrderType {
    /// JET's courier collects the order at the restaurant.
    DeliveryByDeliveryPartner,
    /// The restaurant delivers.
    DeliveryByMerchant,
    /// The customer collects.
    CollectionByCustomer,
}

/// `payment_method`: "allows values CASH or CARD".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum PaymentMethod {
    Card,
    Cash,
}

/// The Receive Order webhook's body: the whole order, pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReceiveOrder {
    /// The JET Connect order id: the `{ORDER_ID}` of the status calls.
    pub id: String,
    /// The order number the customer and courier quote ("can be string or number").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_order_reference: Option<Text>,
    #[serde(rename = "type")]
    pub kind: OrderType,
    /// The restaurant's id as configured at JET Connect (the partner's own location id):
    /// the chain maps it in `fixtures/chain/chain.json`.
    #[serde(rename = "posLocationId")]
    pub pos_location_id: Text,
    /// JET's own location (`id`, `timezone`); informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_reference: Option<String>,
    pub items: Vec<Item>,
    /// Unix seconds, written as a string (`"1606780145"`); older Flyt documents show
    /// RFC 3339.
    pub created_at: Text,
    /// The marketplace the customer ordered on (`Just Eat`, `Skip`, `Menulog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<MarketChannel>,
    /// When the courier or the customer collects (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect_at: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_notes: Option<String>,
    /// When the restaurant's driver is due at the customer (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kitchen_notes: Option<String>,
    pub payment_method: PaymentMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tender_type: Option<String>,
    pub payment: Payment,
    /// JET's courier (partner deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<Person>,
    /// The customer collecting (collections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<Person>,
    /// The customer delivered to (masked with `*` for partner deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Person>,
    /// Free-form: `asap` (`"true"`/`"false"`), `justEatOrderReference`,
    /// `justEatCustomerId`… Not in the schema; seen in published examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<serde_json::Map<String, serde_json::Value>>,
    /// Free items and the like.
    #[serde(default)]
    pub promotions: Vec<Promotion>,
    /// The Flyt documents' "total of the order in cents"; in published JET Connect orders
    /// it is `items_in_cart.inc_tax`. Not read: `payment.final` is what was paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MarketChannel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Text>,
}

/// An item, or an item's option (`children`, recursive: "modifiers are also in the item
/// structure as part of the children array").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// "unique POS identifier": the chain's item code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plu: Option<String>,
    /// One unit, without its children, in minor units, before tax where `payment` lists
    /// tax apart.
    pub price: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Not in JET Connect's item schema (a second burger is a second item); read if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(
        rename = "unitDepositAmount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unit_deposit_amount: Option<Amount>,
    #[serde(default)]
    pub children: Vec<Item>,
}

/// `inc_tax` and `tax` of an amount, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Price {
    pub inc_tax: Amount,
    #[serde(default = "zero")]
    pub tax: Amount,
}

fn zero() -> Amount {
    Amount::from(0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payment {
    /// "the total with tax of all the items in the cart".
    pub items_in_cart: Price,
    /// "negative and positive adjustments to the order total (e.g. delivery fee, combo
    /// discounts)".
    #[serde(default)]
    pub adjustments: Vec<Adjustment>,
    /// "the total with tax of all the items plus negative/positive adjustments": what the
    /// customer paid.
    #[serde(rename = "final")]
    pub paid: Price,
    /// Bottle deposits (`unitDepositAmount` of the items); informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Adjustment {
    /// `deliveryFee`, `serviceCharge`, `discount`, … (see `convert::totals`).
    pub name: String,
    pub price: Price,
}

/// The customer (`delivery`, `collector`) or JET's courier (`driver`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Person {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Often a proxy number; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The code to dial after the proxy number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_masking_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_one: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_two: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// `customer@email.hidden` when JET withholds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
}

/// WGS 84 degrees. (Coordinates are not money: `f64` is right here.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Coordinates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Promotion {
    /// `FREE_ITEM_MIN_BASKET`, …
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The items the promotion gives away.
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_value: Option<Amount>,
}

/// `{"code": …}`, as JET writes reasons and actors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Code {
    pub code: String,
}

/// The Cancel Order notification: JET (the customer, its support, the restaurant on the
/// Orderpad) cancelled an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderCancelled {
    /// The JET Connect order id (`id` of Receive Order).
    #[serde(rename = "orderID")]
    pub order_id: String,
    /// `custCancelledChangedMind`, `restCancelledTooBusy`, `deletedSystemError`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Code>,
    #[serde(
        rename = "initiatedBy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub initiated_by: Option<Code>,
    #[serde(
        rename = "happenedAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub happened_at: Option<String>,
}

/// `driverArrivingAtRestaurant`: JET's courier is on the way to the restaurant.
pub(crate) const DRIVER_ARRIVING: &str = "driverArrivingAtRestaurant";
/// `driverAtRestaurant`.
pub(crate) const DRIVER_AT_RESTAURANT: &str = "driverAtRestaurant";
/// `onItsWay`: the courier collected the order and is on the way to the customer.
pub(crate) const DRIVER_ON_ITS_WAY: &str = "onItsWay";
/// `delivered`.
pub(crate) const DRIVER_DELIVERED: &str = "delivered";

/// The Driver Status notification: where JET's courier is with an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DriverStatus {
    #[serde(rename = "orderID")]
    pub order_id: String,
    #[serde(rename = "driverStatus")]
    pub driver_status: Code,
    #[serde(
        rename = "happenedAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub happened_at: Option<String>,
}

/// The body of `POST /order/{id}/sent-to-pos-success`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SentToPosSuccess {
    /// ISO 8601 with an offset.
    #[serde(rename = "happenedAt")]
    pub happened_at: String,
}

/// The body of `POST /order/{id}/sent-to-pos-failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SentToPosFailed {
    #[serde(rename = "happenedAt")]
    pub happened_at: String,
    /// One of [`ERROR_CODES`].
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

/// The `errorCode`s of `sent-to-pos-failed`, as published client libraries list them.
pub(crate) const ERROR_CODES: &[&str] = &[
    "AUTH_FAILED",
    "INCORRECT_SETUP",
    "IN_USE",
    "INACTIVE",
    "MALFORMED_REQUEST",
    "MENU_ERROR",
    "NOT_SUPPORTED",
    "STORE_CLOSED",
    "TENDER_ERROR",
    "TIMEOUT",
    "UNKNOWN",
];

/// JET's standard error answer (the simulator writes it; the adapter keeps it as text in
/// `ChannelError::Platform`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(rename = "faultId")]
    pub fault_id: String,
    #[serde(rename = "traceId")]
    pub trace_id: String,
    pub errors: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorDetail {
    pub description: String,
    #[serde(rename = "errorCode")]
    pub error_code: String,
}
