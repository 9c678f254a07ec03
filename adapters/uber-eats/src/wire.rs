//! Uber Eats on the wire: serde types that mirror Uber's JSON exactly.
//!
//! Three families live here:
//!
//! - the webhook envelope ([`Envelope`]);
//! - the classic order of `GET /v2/eats/order/{id}` ([`ClassicOrder`]), money as integer
//!   minor units ([`ClassicMoney`]);
//! - the newer order of `GET /v1/delivery/order/{id}?expand=carts,deliveries,payment`
//!   ([`V1OrderResponse`]), money as major units × 10⁵ ([`MoneyE5`]);
//!
//! plus the bodies of the write-back calls. Field names follow CHANNELS.md §1; where
//! that section is silent about the newer API (it is marked [2nd] there) the shape chosen
//! is documented on the type. Lists Uber may send as `null` are `Option<Vec<_>>`.
//! Unknown fields are ignored everywhere. These types never leave the crate: `convert`
//! turns them into the unified order, and the simulator serializes them.

use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------
// Webhook envelope
// ---------------------------------------------------------------------------------------

/// The thin webhook Uber posts to the app's primary webhook URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// Unique per event; Uber's retries reuse it (the dedupe key).
    pub event_id: String,
    /// Unix seconds (milliseconds in some events); kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<serde_json::Number>,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<EnvelopeMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_href: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EnvelopeMeta {
    pub resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The store's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Classic order: GET /v2/eats/order/{id}
// ---------------------------------------------------------------------------------------

/// `{amount, currency_code, formatted_amount}`, `amount` in integer minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicMoney {
    pub amount: i64,
    pub currency_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted_amount: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicOrder {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reference_id: Option<String>,
    /// `CREATED` | `ACCEPTED` | `DENIED` | `FINISHED` | `CANCELED` | `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_state: Option<String>,
    /// `PICK_UP` | `DINE_IN` | `DELIVERY_BY_UBER` | `DELIVERY_BY_RESTAURANT`.
    #[serde(rename = "type")]
    pub order_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    pub store: ClassicStore,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eater: Option<ClassicEater>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eaters: Option<Vec<ClassicEaterRef>>,
    pub cart: ClassicCart,
    pub payment: ClassicPayment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packaging: Option<serde_json::Value>,
    /// ISO-8601 with offset.
    pub placed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_ready_for_pickup_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_manager_client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicStore {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrator_store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrator_brand_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_store_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicEater {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// An Uber proxy number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The PIN to dial after the proxy number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_code: Option<String>,
    /// Present for `DELIVERY_BY_RESTAURANT` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<ClassicEaterDelivery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicEaterRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicEaterDelivery {
    pub location: ClassicLocation,
    /// `DELIVER_TO_DOOR` | `CURBSIDE` | `LEAVE_AT_DOOR`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub delivery_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicLocation {
    /// `STREET_ADDRESS` | `GOOGLE_PLACE`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub location_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_place_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicCart {
    pub items: Vec<ClassicItem>,
    /// The order-level customer note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_issues: Option<Vec<serde_json::Value>>,
}

/// A cart item, and also a selected or removed modifier item (same shape, recursive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicItem {
    /// The menu id we uploaded.
    pub id: String,
    /// Unique per cart line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub title: String,
    /// Our PLU, as set in the menu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_data: Option<String>,
    pub quantity: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_quantity: Option<i64>,
    pub price: ClassicItemPrice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_requests: Option<SpecialRequests>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eater_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_info: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_modifier_groups: Option<Vec<ClassicModifierGroup>>,
}

/// `unit_price` includes the selected modifiers; `base_*` exclude them;
/// `total_* = unit × quantity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicItemPrice {
    pub unit_price: ClassicMoney,
    pub total_price: ClassicMoney,
    pub base_unit_price: ClassicMoney,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_total_price: Option<ClassicMoney>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpecialRequests {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allergy: Option<Allergy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Allergy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allergens_to_exclude: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allergy_instructions: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicModifierGroup {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_items: Option<Vec<ClassicItem>>,
    /// Default ingredients the customer took off (`quantity` 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_items: Option<Vec<ClassicItem>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicPayment {
    pub charges: ClassicCharges,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounting: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotions: Option<serde_json::Value>,
}

/// Every figure of an order, integer minor units. Only `total` and `sub_total` are
/// required; an absent fee is zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClassicCharges {
    pub total: ClassicMoney,
    pub sub_total: ClassicMoney,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<ClassicMoney>,
    /// All fees the eater paid (delivery, service, small order, bag…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_fee: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_fee_tax: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bag_fee: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_fee: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_fee_tax: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub small_order_fee: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub small_order_fee_tax: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick_and_pack_fee: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_promo_applied: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_total_promo_applied: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_promo_applied: Option<ClassicMoney>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_amount_due: Option<ClassicMoney>,
}

// ---------------------------------------------------------------------------------------
// Newer order API: GET /v1/delivery/order/{id}?expand=carts,deliveries,payment
// ---------------------------------------------------------------------------------------

/// `{amount_e5, currency_code}`: major units × 10⁵.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MoneyE5 {
    pub amount_e5: i64,
    pub currency_code: String,
}

/// A figure with its tax split. Only `gross` is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Amount {
    pub gross: MoneyE5,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<MoneyE5>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<MoneyE5>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_tax_inclusive: Option<bool>,
}

/// The response is wrapped: `{ "order": { … } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1OrderResponse {
    pub order: V1Order,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Order {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `OFFERED` | `ACCEPTED` | `HANDED_OFF` | `SUCCEEDED` | `FAILED` | `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `SCHEDULED` | `ACTIVE` | …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preparation_status: Option<String>,
    /// `UBER_EATS` | `POSTMATES` (the classic `brand`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_platform: Option<String>,
    /// `DELIVERY_BY_UBER` | `DELIVERY_BY_MERCHANT` | `PICKUP` | `DINE_IN`.
    pub fulfillment_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_info: Option<V1FailureInfo>,
    pub store: V1Store,
    /// RFC 3339: when the customer placed the order.
    pub created_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_order_target_delivery_time_range: Option<V1TimeRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preparation_time: Option<V1PreparationTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<Vec<V1Customer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<V1Delivery>>,
    pub carts: Vec<V1Cart>,
    pub payment: V1Payment,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1FailureInfo {
    /// e.g. `POS_DENIED`, `ACCEPT_TIMED_OUT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Store {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reference_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1TimeRange {
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1PreparationTime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_for_pickup_time_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_for_pickup_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<V1Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<V1Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_primary_customer: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Name {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<V1Phone>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Phone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_code: Option<String>,
}

/// A delivery leg. For merchant delivery it carries the drop-off `location`.
/// (Shape chosen here; CHANNELS.md §1.4 does not spell it out.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Delivery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<V1Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address_line_one: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address_line_two: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_iso2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Cart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_instructions: Option<String>,
    pub items: Vec<V1Item>,
}

/// A cart item, and also a modifier item (recursive). Prices are not here: they are in
/// `payment.payment_detail.item_charges.price_breakdown`, keyed by `cart_item_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Item {
    pub id: String,
    pub cart_item_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_data: Option<String>,
    pub quantity: V1Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_quantity: Option<V1Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_request: Option<V1CustomerRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_modifier_groups: Option<Vec<V1ModifierGroup>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Quantity {
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1CustomerRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allergy: Option<Allergy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1ModifierGroup {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_items: Option<Vec<V1Item>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_items: Option<Vec<V1Item>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Payment {
    pub payment_detail: V1PaymentDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1PaymentDetail {
    /// What the customer paid; `tax` is the order's tax.
    pub order_total: Amount,
    pub item_charges: V1ItemCharges,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fees: Option<V1Fees>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tips: Option<V1Total>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotions: Option<V1Total>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Total {
    pub total: Amount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1ItemCharges {
    /// The items with their modifiers, before promotions (the subtotal).
    pub total: Amount,
    pub price_breakdown: Vec<V1PriceBreakdown>,
}

/// The price of one cart item (or modifier item). `unit` is one unit of that item alone
/// (a top-level item's unit excludes its modifiers, which have their own entries);
/// `total` is `unit × quantity` where `quantity` counts every unit in the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1PriceBreakdown {
    pub cart_item_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<V1Quantity>,
    pub unit: Amount,
    pub total: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<V1Total>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Fees {
    pub total: Amount,
    /// The fees one by one (`DELIVERY_FEE`, `SERVICE_FEE`, `SMALL_ORDER_FEE`, `BAG_FEE`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<V1FeeDetail>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1FeeDetail {
    #[serde(rename = "type")]
    pub fee_type: String,
    pub amount: Amount,
}

// ---------------------------------------------------------------------------------------
// Write-back bodies
// ---------------------------------------------------------------------------------------

/// `POST /v1/eats/orders/{id}/accept_pos_order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AcceptPosOrder {
    pub reason: String,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reference_id: Option<String>,
}

/// `POST /v1/eats/orders/{id}/deny_pos_order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DenyPosOrder {
    pub reason: DenyReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DenyReason {
    pub explanation: String,
    pub code: String,
}

/// `POST /v1/eats/orders/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CancelOrder {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// `POST /v1/eats/orders/{id}/restaurantdelivery/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RestaurantDeliveryStatus {
    /// `started` | `arriving` | `delivered`.
    pub status: String,
}

/// `POST /v1/delivery/order/{id}/accept`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Accept {
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_for_pickup_time: Option<String>,
}

/// `POST /v1/delivery/order/{id}/deny`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Deny {
    pub deny_reason: V1DenyReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1DenyReason {
    #[serde(rename = "type")]
    pub reason_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

/// `POST /v1/delivery/order/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1Cancel {
    pub cancellation_reason: V1CancellationReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct V1CancellationReason {
    #[serde(rename = "type")]
    pub reason_type: String,
}

/// The token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
    pub scope: String,
}

/// Uber's error body: `{"message": "...", "code": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub message: String,
    pub code: String,
}
