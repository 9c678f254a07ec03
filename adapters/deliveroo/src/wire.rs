//! Deliveroo's JSON, as serde types. They mirror the platform's field names and never leave
//! the crate: `convert` turns them into the unified order.
//!
//! Sources: the Order Events webhook payloads of api-docs.deliveroo.com (fulfilment types,
//! scheduled orders, cash on delivery, remake orders) and the public Go models of
//! integrators where the documentation shows no example (`delivery`, `fee_breakdown`,
//! rider events). Fields the adapter does not read are kept only where the simulator sends
//! them, so its payloads look like Deliveroo's; unknown fields are ignored.
//!
//! Deliveroo is lenient with absent and `null` values alike, so optional objects are
//! `Option` and lists read `null` as empty.

use serde::{Deserialize, Deserializer, Serialize};

/// Reads `null` (or an absent field, with `#[serde(default)]`) as an empty list.
fn nullable_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// An identifier sent as a string or as a number (`order_number` is a string in the
/// documentation's examples and a number in some integrators' models): kept as text,
/// never parsed as a number.
fn text_id<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Text(text) => text,
        TextOrNumber::Number(number) => number.to_string(),
    })
}

fn optional_text_id<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "text_id")] String);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
}

/// `{fractional, currency_code}`: an amount in the currency's minor unit (pence, cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub fractional: i64,
    pub currency_code: String,
}

/// Every webhook: `{event, body}`. The body is read according to the event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub event: String,
    #[serde(default)]
    pub body: serde_json::Value,
}

/// The body of `order.new` and `order.status_update`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderEventBody {
    pub order: Order,
}

/// The body of `order.status_update` as far as a status change needs it: which order,
/// and its statuses. Read on its own so that a status event is not refused over a field
/// of the order the adapter does not use.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusEventBody {
    pub order: StatusView,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusView {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable_list")]
    pub status_log: Vec<StatusLogEntry>,
}

/// One entry of an order's (or a rider's) `status_log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusLogEntry {
    pub at: String,
    pub status: String,
}

/// A Deliveroo order, as the Order Events webhook sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// `{market}:{uuid}`, e.g. `gb:…`; used for every write-back.
    pub id: String,
    #[serde(
        default,
        deserialize_with = "optional_text_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub order_number: Option<String>,
    /// The POS location id: what the hub routes on.
    #[serde(deserialize_with = "text_id")]
    pub location_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "optional_text_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable_list")]
    pub status_log: Vec<StatusLogEntry>,
    /// `deliveroo` | `customer` | `restaurant` | `table_service`.
    pub fulfillment_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutlery_notes: Option<String>,
    pub asap: bool,
    /// When the food should be ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepare_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_preparing_at: Option<String>,
    /// Scheduled orders: the latest time to send `confirmed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<Money>,
    /// What the customer paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_order_subtotal: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_order_total: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_discount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_due: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bag_fee: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surcharge: Option<Money>,
    #[serde(default, deserialize_with = "nullable_list")]
    pub fee_breakdown: Vec<FeeBreakdown>,
    #[serde(deserialize_with = "nullable_list")]
    pub items: Vec<Item>,
    /// Not read: their amounts are in `offer_discount` [2nd].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotions: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meal_cards: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remake_details: Option<RemakeDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_tabletless: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Present only for `restaurant` fulfilment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// An item; modifiers are items too, recursively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The item's id in the partner's POS (the chain's PLU); may be `null`.
    #[serde(default)]
    pub pos_item_id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operational_name: Option<String>,
    pub quantity: i64,
    pub unit_price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_unit_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_fees: Option<Vec<serde_json::Value>>,
    #[serde(default, deserialize_with = "nullable_list")]
    pub modifiers: Vec<Item>,
}

/// `fee_breakdown[]`, e.g. `DEPOSIT_FEE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeBreakdown {
    #[serde(rename = "type")]
    pub fee_type: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemakeDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_order_id: Option<String>,
    /// `deliveroo` or `restaurant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_cost: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// A masked or proxy number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_number: Option<String>,
    /// The PIN to dial after the proxy number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_access_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_frequency_at_site: Option<String>,
}

/// Restaurant fulfilment only. The field list is from integrators' models [2nd].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_fee: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_access_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

/// The body of `rider.status_update`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RiderEventBody {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacked_with: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable_list")]
    pub riders: Vec<Rider>,
}

/// One rider of an order (a large order may have several).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_arrival_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_in_meters: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_code: Option<String>,
    #[serde(default, deserialize_with = "nullable_list")]
    pub status_log: Vec<StatusLogEntry>,
}

// ---------------------------------------------------------------------------------------
// Calls the adapter makes
// ---------------------------------------------------------------------------------------

/// `PATCH /order/v1/orders/{id}`: accept, reject, or confirm a scheduled order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOrder {
    /// `accepted` | `rejected` | `confirmed`.
    pub status: String,
    /// Required with `rejected`: `closing_early` | `busy` | `ingredient_unavailable` |
    /// `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// `POST /order/v1/orders/{id}/sync_status`: did the order reach the POS?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// `succeeded` | `failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub occurred_at: String,
}

/// `POST /order/v1/orders/{id}/prep_stage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepStage {
    /// `in_kitchen` | `ready_for_collection_soon` | `ready_for_collection` | `collected`.
    pub stage: String,
    pub occurred_at: String,
    /// Minutes (0, 2, 4, 6, 8 or 10), with `in_kitchen` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u32>,
}

/// The token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
}

/// The simulator's error body. Deliveroo's own error shape is not documented for these
/// endpoints; `{code, message}` is the simulator's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}
