//! The POS wire format, version 1: serde types mirroring the JSON documented in the crate
//! docs. They never leave the crate; [`crate::convert`] turns them into the unified order.
//!
//! Both directions derive `Serialize` and `Deserialize`: the adapter reads these bodies and
//! the simulator writes them. Unknown fields are ignored (serde's default), so a POS may
//! send fields the hub does not know yet; unknown *values* of the enums are refused, since
//! they would change the meaning of an order.
//!
//! A body is read in two passes: first the [`Envelope`] (version, event, ids), so that a
//! body of another version or event is refused for that reason and not for a field it
//! lacks; then the event's own part ([`CreatedBody`] or [`VoidedBody`]).

use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `event` of a sale rung up on the POS.
pub(crate) const ORDER_CREATED: &str = "order.created";
/// `event` of a voided sale.
pub(crate) const ORDER_VOIDED: &str = "order.voided";

/// Why a body does not parse: the JSON path of the offending value and serde's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "body" } else { path.as_str() })]
pub(crate) struct WireError {
    /// `order.lines[0].unit_price`; empty for the top level.
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

/// What every event carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub version: u32,
    pub event: String,
    pub event_id: String,
    /// The store the POS belongs to; optional, and when present it must be the store the
    /// request is signed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// `order.created` as the POS writes it: the envelope's fields plus the order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CreatedEvent {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub order: PosOrder,
}

/// `order.voided` as the POS writes it: the envelope's fields plus what was voided.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VoidedEvent {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub void: PosVoid,
}

/// The second pass over an `order.created` body (the envelope was read in the first).
/// No `flatten` here: it would buffer the body and lose the paths of errors.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreatedBody {
    pub order: PosOrder,
}

/// The second pass over an `order.voided` body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VoidedBody {
    pub void: PosVoid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosVoid {
    /// The voided order's `number`.
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How the sale reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PosSource {
    /// Rung up at the counter for a customer in the store.
    WalkIn,
    /// Taken by phone.
    Phone,
}

impl PosSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PosSource::WalkIn => "walk_in",
            PosSource::Phone => "phone",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PosFulfillmentType {
    DineIn,
    Pickup,
    /// Delivered by the store's own driver.
    Delivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PosPayment {
    /// Settled at the counter when the order was rung up (cash or card).
    Counter,
    /// Paid by card before the order was sent (a card taken over the phone).
    Card,
    /// The driver collects the total in cash.
    CashOnDelivery,
    /// The customer pays at the store: on collection, or at the table after eating.
    PayAtStore,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosOrder {
    /// The POS's order number, unique within its store and never reused.
    pub number: String,
    pub source: PosSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<String>,
    pub placed_at: DateTime<FixedOffset>,
    pub fulfillment: PosFulfillment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<PosCustomer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub currency: String,
    pub lines: Vec<PosLine>,
    pub totals: PosTotals,
    pub payment: PosPayment,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosFulfillment {
    #[serde(rename = "type")]
    pub kind: PosFulfillmentType,
    /// Dine-in: the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A later time the customer wants the order (pickup or delivery time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<DateTime<FixedOffset>>,
    /// Delivery: where to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<PosAddress>,
    /// Delivery: the drop-off point, if the POS geocoded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<PosLocation>,
    /// Delivery: notes for the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosAddress {
    pub lines: Vec<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    pub country: String,
}

/// WGS84 degrees.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct PosLocation {
    pub lat: f64,
    pub lng: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosCustomer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosLine {
    pub plu: String,
    pub name: String,
    pub quantity: i64,
    /// One unit without modifiers, minor units.
    pub unit_price: i64,
    /// The line as the POS rang it up (line discounts included), minor units; computed
    /// from the parts when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<PosModifier>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosModifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plu: Option<String>,
    pub name: String,
    /// Per one unit of the parent.
    pub quantity: i64,
    /// One unit, minor units.
    pub unit_price: i64,
    /// A default ingredient taken off; its quantity may be 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<PosModifier>,
}

/// The money of the sale, integer minor units of the order's currency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosTotals {
    pub subtotal: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<PosDiscount>,
    #[serde(default)]
    pub tax: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tax_included: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fees: Option<PosFees>,
    #[serde(default)]
    pub tip: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PosDiscount {
    pub label: String,
    /// Positive: what the discount takes off.
    pub amount: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PosFees {
    #[serde(default)]
    pub delivery: i64,
    #[serde(default)]
    pub service: i64,
    #[serde(default)]
    pub packaging: i64,
    #[serde(default)]
    pub other: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_path() {
        let error = from_json::<Envelope>(br#"{"version": 1, "event": "x", "event_id": 5}"#)
            .expect_err("event_id is a number");
        assert_eq!(error.path, "event_id");
        let error = from_json::<Envelope>(br#"{"version": "1", "event": "x", "event_id": "e"}"#)
            .expect_err("version is a string");
        assert_eq!(error.path, "version");
        let error = from_json::<Envelope>(br#"{"version": 1, "event": "a", "event_id": "b"} x"#)
            .expect_err("trailing");
        assert!(error.to_string().starts_with("body: "), "{error}");
        let error = from_json::<Envelope>(b"<order/>").expect_err("not json");
        assert!(
            error.to_string().starts_with("body: expected value"),
            "{error}"
        );
    }

    #[test]
    fn the_envelope_ignores_the_event_body() {
        let envelope: Envelope = from_json(
            br#"{"version": 1, "event": "order.voided", "event_id": "e1",
                 "void": {"number": 7}, "future": true}"#,
        )
        .expect("the envelope alone parses");
        assert_eq!(envelope.event, ORDER_VOIDED);
        assert_eq!(envelope.store, None);
    }
}
