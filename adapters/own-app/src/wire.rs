//! The own_app wire format: serde types mirroring the JSON API documented in the crate
//! docs. They never leave the crate; [`crate::convert`] turns them into the unified order.
//!
//! Both directions derive `Serialize` and `Deserialize`: the adapter reads orders and writes
//! status callbacks, and the simulator does the opposite. Unknown fields are ignored so the
//! app may add fields before the hub knows them.

use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `event` of a new order.
pub(crate) const ORDER_CREATED: &str = "order.created";
/// `event` of a cancellation by the app.
pub(crate) const ORDER_CANCELLED: &str = "order.cancelled";
/// `event` of a status callback from the hub to the app.
pub(crate) const ORDER_STATUS: &str = "order.status";

/// Why a body does not parse: the JSON path of the offending value and serde's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "body" } else { path.as_str() })]
pub(crate) struct WireError {
    /// `order.items[0].unit_price`; empty for the top level.
    pub path: String,
    pub message: String,
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

/// A webhook body from the app, of either event, read in one pass:
/// `{"event": "order.created", "event_id": "...", "order": {...}}` or
/// `{"event": "order.cancelled", "event_id": "...", "order_id": "...", "reason": "..."}`.
/// Which of the optional fields an event needs is checked after `event` is known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppEvent {
    pub event: String,
    pub event_id: String,
    /// `order.created` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<AppOrder>,
    /// `order.cancelled` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// `order.cancelled` only, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AppFulfillment {
    Delivery,
    Pickup,
    DineIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AppPayment {
    Prepaid,
    Cash,
    PayAtStore,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppOrder {
    pub id: String,
    pub code: String,
    pub brand: String,
    pub placed_at: DateTime<FixedOffset>,
    pub fulfillment: AppFulfillment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<FixedOffset>>,
    pub customer: AppCustomer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<AppDelivery>,
    pub items: Vec<AppItem>,
    pub currency: String,
    pub amounts: AppAmounts,
    pub payment: AppPayment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub callback_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppCustomer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppDelivery {
    pub address: AppAddress,
    pub location: AppLocation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppAddress {
    pub lines: Vec<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    pub country: String,
}

/// WGS84 degrees.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct AppLocation {
    pub lat: f64,
    pub lng: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppItem {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// One unit without modifiers, minor units.
    pub unit_price: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<AppModifier>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppModifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// Per one unit of the parent.
    pub quantity: i64,
    /// One unit, minor units.
    pub unit_price: i64,
    /// A default ingredient taken off ("no onions"); quantity may then be 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<AppModifier>,
}

/// All integer minor units of the order's currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AppAmounts {
    pub subtotal: i64,
    pub discount: i64,
    pub delivery_fee: i64,
    pub service_fee: i64,
    pub tip: i64,
    pub tax: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tax_included: bool,
    pub total: i64,
}

/// The hub's status callback to the app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusCallback {
    pub event: String,
    pub order_id: String,
    pub hub_order_id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prep_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339, UTC.
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_path() {
        let error = from_json::<AppEvent>(br#"{"event": "x", "event_id": 5}"#)
            .expect_err("event_id is a number");
        assert_eq!(error.path, "event_id");
        let error = from_json::<AppEvent>(br#"{"event": "x", "event_id": "e", "order_id": 7}"#)
            .expect_err("order_id is a number");
        assert_eq!(error.path, "order_id");
        let error = from_json::<AppEvent>(br#"{"event": "a", "event_id": "b"} trailing"#)
            .expect_err("trailing");
        assert!(error.to_string().starts_with("body: "), "{error}");
        let error = from_json::<AppEvent>(b"<order/>").expect_err("not json");
        assert!(
            error.to_string().starts_with("body: expected value"),
            "{error}"
        );
    }
}
