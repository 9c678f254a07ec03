//! Serde types of the platform's JSON: the webhook bodies it sends and the bodies of the
//! status calls the adapter makes. They never leave the crate; `convert` turns them into
//! the unified order, and the simulator writes its webhooks with the same types, so the
//! two cannot drift apart.
//!
//! PLATFORM: replace every type here with the platform's documented payloads: copy the
//! example order from its documentation, keep its field names exactly (`#[serde(rename)]`
//! where they are not snake_case), and mark a field `Option` (or `#[serde(default)]`) when
//! the documentation does not promise it. Keep these rules (CHANNELS.md §10):
//!
//! - unknown fields are ignored (serde's default: never `deny_unknown_fields` on a
//!   platform's body), so the platform may add fields without breaking the channel;
//! - an unknown *value* of a field that changes the order's meaning (fulfilment type) is
//!   refused, naming the field;
//! - ids are strings, never parsed as numbers (if the platform sends numbers, read them
//!   with an untagged `String | u64` enum and keep the text);
//! - money is never an `f64`: see [`Amount`].
//!
//! A body is read in two passes: first the [`Envelope`] (event type and id), then the
//! event's own part ([`OrderCreated`] or [`OrderCancelled`]), so that an event of another
//! type is answered for its type and not for a field it lacks. Errors name the JSON path
//! of the field ([`WireError`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `event_type` of a new order. PLATFORM: the platform's name for it.
pub(crate) const ORDER_CREATED: &str = "order.created";
/// `event_type` of an order the platform cancelled. PLATFORM: the platform's name for it.
pub(crate) const ORDER_CANCELLED: &str = "order.cancelled";

/// Why a body does not parse: the JSON path of the offending value and serde's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// `order.items[0].quantity`; empty for the body as a whole.
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

/// An amount as the platform writes it: a JSON integer of minor units (cents).
///
/// Kept as the JSON number it was, so that `convert` can refuse a fraction (`12.5`) or an
/// overflow as a money error naming the field, instead of rounding it. Never read it as
/// `f64`.
///
/// PLATFORM: if the platform sends major units as decimal text (`"12.50"`), make this a
/// `String` and convert with `crossdock_model::Money::from_major_str`; for other units
/// (Uber's `amount_e5`), see `Money::from_e5`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Amount(pub serde_json::Number);

impl From<i64> for Amount {
    fn from(minor: i64) -> Self {
        Amount(serde_json::Number::from(minor))
    }
}

/// What every webhook carries, whatever its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// Unique per delivery; the platform's retries of one event carry the same id. The
    /// dedupe key.
    pub event_id: String,
    /// [`ORDER_CREATED`], [`ORDER_CANCELLED`], or an event the hub ignores.
    pub event_type: String,
    /// When the platform created the event (RFC 3339); informational.
    pub created_at: String,
}

/// A webhook as the platform writes it: the envelope's fields and the event's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Webhook<T> {
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(flatten)]
    pub event: T,
}

/// The second pass over an [`ORDER_CREATED`] body. (No `flatten` on the reading side: it
/// would buffer the body and lose the paths of errors.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OrderCreated {
    pub order: Order,
}

/// The second pass over an [`ORDER_CANCELLED`] body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderCancelled {
    pub cancellation: Cancellation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cancellation {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The platform's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Order {
    /// The platform's order id: the external order id of every status call.
    pub id: String,
    /// The short code staff and couriers read out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_code: Option<String>,
    /// The platform's id of the store: the chain maps it in `fixtures/chain/chain.json`.
    pub store_id: String,
    /// RFC 3339.
    pub placed_at: String,
    /// ISO 4217.
    pub currency: String,
    pub fulfillment: Fulfillment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub items: Vec<Item>,
    pub totals: Totals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FulfillmentType {
    Delivery,
    Pickup,
}

/// Who takes a delivery to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Courier {
    Platform,
    Store,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fulfillment {
    #[serde(rename = "type")]
    pub kind: FulfillmentType,
    /// Deliveries only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<Courier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// RFC 3339; absent for an order wanted as soon as possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Address {
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// WGS 84 degrees. (Coordinates are not money: `f64` is right here.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lng: Option<f64>,
    /// Notes for the courier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Often a proxy number; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Item {
    /// The platform's id of this line.
    pub id: String,
    /// The chain's item code, where the platform's menu carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plu: Option<String>,
    pub name: String,
    pub quantity: i64,
    /// One unit, without options.
    pub unit_price: Amount,
    /// The line with its options, as the platform computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ItemOption>,
}

/// An option (modifier) of an item or of another option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ItemOption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plu: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Per one unit of the parent.
    pub quantity: i64,
    /// One of this option, without its own options.
    pub unit_price: Amount,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ItemOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Totals {
    /// Items with their options, before discounts.
    pub subtotal: Amount,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Discount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_fee: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_fee: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<Amount>,
    /// What the customer paid.
    pub total: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Discount {
    pub label: String,
    /// Positive: what the discount takes off.
    pub amount: Amount,
    /// `platform` or `merchant`; anything else (or nothing) is of unknown funding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funded_by: Option<String>,
}

/// The body of the accept call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AcceptBody {
    pub prep_minutes: u32,
}

/// The body of the reject and cancel calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReasonBody {
    pub reason: String,
}

/// The platform's error answer (the simulator writes it; the adapter keeps it as text in
/// `ChannelError::Platform`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
    pub message: String,
}
