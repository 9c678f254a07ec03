//! Serde types mirroring DoorDash's JSON. They never leave the crate (the simulator builds
//! its payloads with the same field names).
//!
//! Inbound bodies are read leniently where DoorDash warns they may change: unknown fields are
//! ignored (DoorDash requires it), ids may come as strings or integers, 64-bit integers are
//! kept exactly (never through `f64`), and amounts are read as [`Amount`] so that a
//! fractional cent becomes a typed error for that order rather than a parse failure.
//!
//! Every body is first read into a [`serde_json::Value`] (where a repeated key keeps its
//! last value, as in DoorDash's own sample order, which repeats `estimated_pickup_time`),
//! then into these types through [`serde_path_to_error`], so that a bad field is named by
//! its path: `order.categories[0].items[1].price: invalid type: …`.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A body that cannot be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// The JSON path of the field (`order.store.merchant_supplied_id`), empty for the body.
    pub path: String,
    pub message: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Reads a JSON body into a value (duplicate keys: the last wins).
pub(crate) fn value(body: &[u8]) -> Result<serde_json::Value, WireError> {
    serde_json::from_slice(body).map_err(|e| WireError {
        path: String::new(),
        message: format!("not JSON: {e}"),
    })
}

/// Reads `value` as `T`; errors name the field's path under `prefix` (`order`).
pub(crate) fn read<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, WireError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = match (prefix.is_empty(), path == ".") {
            (true, true) => String::new(),
            (true, false) => path,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        };
        WireError {
            path,
            message: error.into_inner().to_string(),
        }
    })
}

// ---------------------------------------------------------------------------------------
// Lenient scalars
// ---------------------------------------------------------------------------------------

/// An amount in minor units (cents) as DoorDash sent it: a JSON integer, or anything else
/// (a number with a fraction, a string) kept as text for the converter to judge exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Amount {
    Whole(i64),
    /// The amount's text: a JSON number that is not an `i64` (`12.5`, `1e3`, an integer
    /// above `i64::MAX`), or a JSON string.
    Text(String),
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount in cents (integer)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount::Whole(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(i64::try_from(v).map_or_else(|_| Amount::Text(v.to_string()), Amount::Whole))
            }
            // serde_json hands over a number with a fraction or an exponent as `f64`; its
            // shortest round-trip text is kept, and the converter refuses a fraction.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                Ok(Amount::Text(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                Ok(Amount::Text(v.trim().to_owned()))
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

/// An id that DoorDash may send as a string or an integer, kept as text. Integers are read
/// exactly (64-bit); a number with a fraction is refused.
fn id_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct IdVisitor;
    impl<'de> Visitor<'de> for IdVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an id (string or integer)")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
    }
    deserializer.deserialize_option(IdVisitor)
}

/// A required id (string or integer).
fn required_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    id_text(deserializer)?.ok_or_else(|| de::Error::custom("must not be null"))
}

/// DoorDash's `consumer.id`: a 64-bit integer (above 2^53, so never through `f64`). An
/// integer wider than 64 bits reaches the parser only as a rounded `f64`; it is not kept
/// (`Unreadable`) rather than kept wrong, and the order goes on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConsumerId {
    Exact(String),
    Unreadable,
}

impl<'de> Deserialize<'de> for ConsumerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConsumerIdVisitor;
        impl Visitor<'_> for ConsumerIdVisitor {
            type Value = ConsumerId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a consumer id (integer or string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConsumerId, E> {
                Ok(ConsumerId::Exact(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConsumerId, E> {
                Ok(ConsumerId::Exact(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ConsumerId, E> {
                Ok(ConsumerId::Unreadable)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConsumerId, E> {
                Ok(ConsumerId::Exact(v.to_owned()))
            }
        }
        deserializer.deserialize_any(ConsumerIdVisitor)
    }
}

/// A coordinate: DoorDash sends `lat`/`lng` as strings (`"40.7411"`); a JSON number is
/// accepted too. Kept as text until the converter parses it, so that the error names it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Coordinate {
    Text(String),
    Number(f64),
}

impl<'de> Deserialize<'de> for Coordinate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CoordinateVisitor;
        impl Visitor<'_> for CoordinateVisitor {
            type Value = Coordinate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a coordinate (string or number)")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Coordinate, E> {
                Ok(Coordinate::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Coordinate, E> {
                Ok(Coordinate::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Coordinate, E> {
                Ok(Coordinate::Text(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Coordinate, E> {
                Ok(Coordinate::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(CoordinateVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Orders webhook: {"event": {"type": "OrderCreate", "status": "NEW"}, "order": {…}}
// ---------------------------------------------------------------------------------------

/// The Orders webhook envelope. `order` is read separately, once the event type says how.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Envelope {
    pub event: Event,
    #[serde(default)]
    pub order: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Event {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// Only the id of an order, for events that need nothing else.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OrderRef {
    #[serde(deserialize_with = "required_id")]
    pub id: String,
}

/// The order DoorDash pushes (reference: Marketplace API, model `Order`; sample order and
/// sample self-delivery order).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Order {
    #[serde(deserialize_with = "required_id")]
    pub id: String,
    #[serde(default)]
    pub consumer: Option<Consumer>,
    pub store: Store,
    pub subtotal: Amount,
    #[serde(default)]
    pub tax: Option<Amount>,
    #[serde(default)]
    pub estimated_pickup_time: Option<String>,
    #[serde(default)]
    pub is_pickup: Option<bool>,
    /// Not in the order model DoorDash publishes; named after the Order Canceled webhook's
    /// field. `false` marks a scheduled order (see the crate docs).
    #[serde(default)]
    pub is_asap: Option<bool>,
    #[serde(default)]
    pub categories: Option<Vec<Category>>,
    #[serde(default)]
    pub order_special_instructions: Option<String>,
    #[serde(default)]
    pub is_tax_remitted_by_doordash: Option<bool>,
    #[serde(default)]
    pub tax_amount_remitted_by_doordash: Option<Amount>,
    #[serde(default)]
    pub commission_type: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub delivery_short_code: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub tax_transaction_id: Option<String>,
    #[serde(default)]
    pub fulfillment_type: Option<String>,
    #[serde(default)]
    pub merchant_tip_amount: Option<Amount>,
    #[serde(default)]
    pub tip_amount: Option<Amount>,
    #[serde(default)]
    pub delivery_fee: Option<Amount>,
    #[serde(default)]
    pub taxes_on_fees: Option<Amount>,
    #[serde(default)]
    pub extra_cart_order_fee: Option<Amount>,
    #[serde(default)]
    pub experience: Option<String>,
    #[serde(default)]
    pub is_plastic_ware_option_selected: Option<bool>,
    #[serde(default)]
    pub delivery_address: Option<DeliveryAddress>,
    /// Integrated promotions: order-level (subtotal) promotions.
    #[serde(default)]
    pub applied_discounts_details: Option<Vec<AppliedDiscount>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Consumer {
    #[serde(default)]
    pub id: Option<ConsumerId>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Store {
    #[serde(deserialize_with = "required_id")]
    pub merchant_supplied_id: String,
    #[serde(default)]
    pub provider_type: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A menu category of the order; the unified order keeps its items, in payload order.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Category {
    #[serde(default)]
    pub items: Option<Vec<Item>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Item {
    pub name: String,
    #[serde(default, deserialize_with = "id_text")]
    pub merchant_supplied_id: Option<String>,
    /// Cents, one unit, without options.
    pub price: Amount,
    pub quantity: i64,
    #[serde(default)]
    pub extras: Option<Vec<Extra>>,
    /// One official sample spells the key in the singular.
    #[serde(default)]
    pub extra: Option<Vec<Extra>>,
    #[serde(default)]
    pub special_instructions: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub line_item_id: Option<String>,
    /// Integrated promotions: the item's promotion.
    #[serde(default)]
    pub applied_item_discount_details: Option<Vec<AppliedDiscount>>,
}

/// A group of options ("Crust", "Toppings").
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Extra {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub options: Option<Vec<ExtraOption>>,
}

/// A chosen option; it may open groups of its own (`extras`, or `extra`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ExtraOption {
    pub name: String,
    #[serde(default, deserialize_with = "id_text")]
    pub merchant_supplied_id: Option<String>,
    #[serde(default)]
    pub price: Option<Amount>,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default)]
    pub extras: Option<Vec<Extra>>,
    #[serde(default)]
    pub extra: Option<Vec<Extra>>,
    #[serde(default, deserialize_with = "id_text")]
    pub line_option_id: Option<String>,
}

/// Present for orders the store delivers itself.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DeliveryAddress {
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub subpremise: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub zip_code: Option<String>,
    #[serde(default)]
    pub country_code: Option<String>,
    #[serde(default)]
    pub lat: Option<Coordinate>,
    #[serde(default)]
    pub lng: Option<Coordinate>,
    #[serde(default)]
    pub address_instructions: Option<String>,
}

/// One redeemed promotion (`applied_discounts_details[]`, `applied_item_discount_details[]`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AppliedDiscount {
    #[serde(default, deserialize_with = "id_text")]
    pub promo_id: Option<String>,
    #[serde(default)]
    pub promo_code: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    pub external_campaign_id: Option<String>,
    #[serde(default)]
    pub total_discount_amount: Option<Amount>,
    #[serde(default)]
    pub merchant_funded_discount_amount: Option<Amount>,
    #[serde(default)]
    pub doordash_funded_discount_amount: Option<Amount>,
}

// ---------------------------------------------------------------------------------------
// Order Canceled and Dasher Status webhooks
// ---------------------------------------------------------------------------------------

/// `{external_order_id, client_order_id, store{provider_type, merchant_supplied_id}, is_asap}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CancelNotification {
    #[serde(deserialize_with = "required_id")]
    pub external_order_id: String,
    #[serde(default, deserialize_with = "id_text")]
    pub client_order_id: Option<String>,
}

/// `{dasher_status, external_order_id, client_order_id, created_at, …Dasher details}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DasherStatus {
    pub dasher_status: String,
    #[serde(deserialize_with = "required_id")]
    pub external_order_id: String,
    #[serde(default)]
    pub created_at: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Outbound: what the adapter sends (the simulator reads the same types)
// ---------------------------------------------------------------------------------------

/// `PATCH /marketplace/api/v1/orders/{id}`: the asynchronous order confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmOrder {
    /// Our order id; DoorDash keeps it as `client_order_id`.
    pub merchant_supplied_id: String,
    /// `success` or `fail`.
    pub order_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// When the order will be ready, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prep_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ConfirmError>,
}

/// `errors[]` of a failed confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_supplied_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `PATCH /marketplace/api/v1/orders/{id}/events/order_ready_for_pickup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReady {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_supplied_id: Option<String>,
}

/// `PATCH /marketplace/api/v1/orders/{id}/cancellation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrder {
    /// `ITEM_OUT_OF_STOCK`, `STORE_CLOSED`, `KITCHEN_BUSY` or `OTHER`.
    pub cancel_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_details: Option<String>,
}

/// DoorDash's error body: `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_integers_and_the_text_of_anything_else() {
        let read = |json: &str| serde_json::from_str::<Amount>(json).expect("amount");
        assert_eq!(read("1299"), Amount::Whole(1299));
        assert_eq!(read("-50"), Amount::Whole(-50));
        assert_eq!(read("12.5"), Amount::Text("12.5".to_owned()));
        assert_eq!(read("350.0"), Amount::Text("350".to_owned()));
        assert_eq!(read("\" 299 \""), Amount::Text("299".to_owned()));
        assert_eq!(
            read("18446744073709551615"),
            Amount::Text("18446744073709551615".to_owned())
        );
        assert!(serde_json::from_str::<Amount>("true").is_err());
    }

    #[test]
    fn consumer_ids_above_two_to_the_53_stay_exact() {
        let id: ConsumerId = serde_json::from_str("9007199254740993").expect("id");
        assert_eq!(id, ConsumerId::Exact("9007199254740993".to_owned()));
        let id: ConsumerId = serde_json::from_str("18446744073709551615").expect("u64");
        assert_eq!(id, ConsumerId::Exact("18446744073709551615".to_owned()));
        // Wider than 64 bits: serde_json only has a rounded f64; not kept.
        let id: ConsumerId = serde_json::from_str("36893488147419103232").expect("wider");
        assert_eq!(id, ConsumerId::Unreadable);
        let id: ConsumerId = serde_json::from_str("\"abc-1\"").expect("string");
        assert_eq!(id, ConsumerId::Exact("abc-1".to_owned()));
    }

    #[test]
    fn errors_name_the_path_of_the_field() {
        let value = serde_json::json!({"id": "o-1", "store": {"merchant_supplied_id": "s"},
            "subtotal": 100, "categories": [{"items": [{"name": "A", "price": 1, "quantity": "two"}]}]});
        let error = read::<Order>(value, "order").expect_err("bad quantity");
        assert_eq!(error.path, "order.categories[0].items[0].quantity");
        assert!(error.message.contains("invalid type"), "{}", error.message);
        let error = read::<Order>(serde_json::json!({"id": "o"}), "order").expect_err("store");
        assert_eq!(error.path, "order");
        assert!(error.message.contains("store"), "{}", error.message);
    }

    #[test]
    fn ids_may_be_strings_or_integers() {
        let store: Store =
            serde_json::from_value(serde_json::json!({"merchant_supplied_id": 601135}))
                .expect("integer id");
        assert_eq!(store.merchant_supplied_id, "601135");
        assert!(
            serde_json::from_value::<Store>(serde_json::json!({"merchant_supplied_id": null}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<Store>(serde_json::json!({"merchant_supplied_id": 1.5}))
                .is_err()
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let body = br#"{"a": 1, "a": 2}"#;
        assert_eq!(value(body).expect("json")["a"], 2);
    }
}
