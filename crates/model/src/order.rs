//! The unified order.
//!
//! [`NewOrder`] is what an adapter produces from a platform's payload; [`Order`] is the
//! stored order with our id, its store and its status. Both serialize to the published
//! unified-order document.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, OrderId, StoreId};
use crate::money::{Currency, Money, MoneyError};
use crate::status::Status;

/// Why an order cannot be taken at all (as opposed to a [`Flag`], which keeps it).
///
/// Not `Eq`: [`OrderError::BadCoordinates`] names the coordinates it refused, which are
/// floating point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("the channel's order id is empty")]
    MissingExternalId,
    #[error("the order has no items")]
    NoLines,
    #[error("item {line} (`{name}`) has quantity {quantity}; quantities must be at least 1")]
    BadQuantity {
        line: usize,
        name: String,
        quantity: i64,
    },
    #[error("item {line} (`{name}`) has a negative unit price")]
    NegativePrice { line: usize, name: String },
    /// The line's unit price (with its modifiers) times its quantity is beyond 64-bit
    /// minor units: no platform charged that, whatever line total it reported.
    #[error("item {line} (`{name}`): unit price with modifiers × quantity {quantity}: {source}")]
    LineOverflow {
        line: usize,
        name: String,
        quantity: i64,
        source: MoneyError,
    },
    #[error("the total {total} is negative; the customer cannot be paid to order")]
    NegativeTotal { total: Money },
    #[error("{field} is in {found} but the order is in {expected}")]
    MixedCurrency {
        field: String,
        found: Currency,
        expected: Currency,
    },
    #[error("a delivery order needs a delivery address")]
    MissingAddress,
    #[error(
        "delivery address coordinates ({lat}, {lng}) are out of range; \
         latitude must be within -90 to 90 and longitude within -180 to 180"
    )]
    BadCoordinates { lat: f64, lng: f64 },
    #[error("money: {0}")]
    Money(#[from] MoneyError),
    /// A money error at a named place of the platform's payload (`order_total.gross`), so
    /// that a quarantined order says which amount was wrong.
    #[error("{field}: {source}")]
    MoneyAt { field: String, source: MoneyError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentKind {
    Delivery,
    Pickup,
    DineIn,
}

/// Who takes a delivery order to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveredBy {
    Platform,
    Store,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordSystem {
    Wgs84,
    /// The Chinese "Mars" datum Meituan and Ele.me use.
    Gcj02,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    pub lat: f64,
    pub lng: f64,
    pub system: CoordSystem,
}

impl Coordinates {
    /// Finite, latitude within -90..=90 and longitude within -180..=180 degrees.
    pub fn in_range(&self) -> bool {
        self.lat.is_finite()
            && self.lng.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lng)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Address {
    pub lines: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
    /// Notes for the courier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Timing {
    Asap,
    Scheduled { at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fulfillment {
    pub kind: FulfillmentKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_by: Option<DeliveredBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub timing: Timing,
    /// When the platform expects the food ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promised_at: Option<DateTime<Utc>>,
    /// The platform's acceptance deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_by: Option<DateTime<Utc>>,
}

impl Fulfillment {
    /// When the platform must have heard of a change out of `from`: the answer to its
    /// offer (the change out of `received`: accepted, rejected, or cancelled by the chain)
    /// is due by the acceptance deadline, if the platform set one; past it the platform
    /// drops the order. Later changes have no deadline.
    pub fn answer_due_by(&self, from: Status) -> Option<DateTime<Utc>> {
        if from == Status::Received {
            self.accept_by
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    /// As the platform gave it (often a proxy number). Never logged in full: use
    /// [`mask_phone`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// PIN to dial after a proxy number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_pin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A phone number fit for logs: only its last three digits.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(3)..].iter().collect();
    format!("***{tail}")
}

/// A modifier (option, extra, removed ingredient) of a line or of another modifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modifier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_item_id: Option<String>,
    /// The chain's item code, where the channel's menu maps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plu: Option<String>,
    pub quantity: i64,
    pub unit_price: Money,
    /// A default ingredient the customer took off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<Modifier>,
}

impl Modifier {
    /// Price of one of this modifier, with its own nested modifiers.
    fn unit_with_children(&self) -> Result<Money, MoneyError> {
        let mut sum = self.unit_price;
        for child in &self.modifiers {
            sum = sum.checked_add(child.unit_with_children()?.checked_mul(child.quantity)?)?;
        }
        Ok(sum)
    }
}

/// One top-level item of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub channel_item_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plu: Option<String>,
    pub name: String,
    pub quantity: i64,
    /// One unit, without modifiers.
    pub unit_price: Money,
    /// The line's total as the platform reported it, or computed where it did not.
    pub total: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<Modifier>,
}

impl Line {
    /// `(unit + Σ modifier unit × qty) × quantity`, for platforms that send no line total.
    pub fn computed_total(&self) -> Result<Money, MoneyError> {
        let mut unit = self.unit_price;
        for modifier in &self.modifiers {
            unit = unit.checked_add(
                modifier
                    .unit_with_children()?
                    .checked_mul(modifier.quantity)?,
            )?;
        }
        unit.checked_mul(self.quantity)
    }
}

/// Who pays for a discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundedBy {
    Platform,
    Merchant,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    pub label: String,
    /// Positive: what the discount takes off.
    pub amount: Money,
    pub funded_by: FundedBy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fees {
    pub delivery: Money,
    pub service: Money,
    pub small_order: Money,
    pub packaging: Money,
    pub other: Money,
}

impl Fees {
    pub fn zero(currency: Currency) -> Self {
        let zero = Money::zero(currency);
        Self {
            delivery: zero,
            service: zero,
            small_order: zero,
            packaging: zero,
            other: zero,
        }
    }

    fn sum(&self) -> Result<Money, MoneyError> {
        self.delivery
            .checked_add(self.service)?
            .checked_add(self.small_order)?
            .checked_add(self.packaging)?
            .checked_add(self.other)
    }
}

/// The money of an order, all in its one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub currency: Currency,
    /// Items with their modifiers, before discounts.
    pub subtotal: Money,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Discount>,
    pub tax: Money,
    /// Prices already include tax (VAT countries): tax is not added on top.
    #[serde(default)]
    pub tax_included: bool,
    pub fees: Fees,
    pub tip: Money,
    /// What the customer paid, as the platform reported it.
    pub total: Money,
    /// Cash to collect on delivery, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cash_due: Option<Money>,
    /// The platform sent no total; the adapter derived it from the parts.
    #[serde(default)]
    pub total_is_derived: bool,
}

impl Totals {
    /// Nothing to pay, in `currency`: the start of a test's or a tool's order.
    pub fn zero(currency: Currency) -> Totals {
        Totals {
            currency,
            subtotal: Money::zero(currency),
            discounts: vec![],
            tax: Money::zero(currency),
            tax_included: false,
            fees: Fees::zero(currency),
            tip: Money::zero(currency),
            total: Money::zero(currency),
            cash_due: None,
            total_is_derived: false,
        }
    }

    /// `subtotal − discounts + tax (unless included) + fees + tip`.
    pub fn expected_total(&self) -> Result<Money, MoneyError> {
        let mut sum = self.subtotal;
        for discount in &self.discounts {
            sum = sum.checked_sub(discount.amount)?;
        }
        if !self.tax_included {
            sum = sum.checked_add(self.tax)?;
        }
        sum.checked_add(self.fees.sum()?)?.checked_add(self.tip)
    }

    fn amounts(&self) -> Vec<(String, Money)> {
        let mut all = vec![
            ("subtotal".to_owned(), self.subtotal),
            ("tax".to_owned(), self.tax),
            ("fees.delivery".to_owned(), self.fees.delivery),
            ("fees.service".to_owned(), self.fees.service),
            ("fees.small_order".to_owned(), self.fees.small_order),
            ("fees.packaging".to_owned(), self.fees.packaging),
            ("fees.other".to_owned(), self.fees.other),
            ("tip".to_owned(), self.tip),
            ("total".to_owned(), self.total),
        ];
        all.extend(
            self.discounts
                .iter()
                .map(|d| (format!("discount `{}`", d.label), d.amount)),
        );
        all.extend(self.cash_due.map(|c| ("cash_due".to_owned(), c)));
        all
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    /// Paid on the platform.
    Prepaid,
    CashOnDelivery,
    PayAtStore,
}

/// Something about an order that a person should look at; the order is kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flag", rename_all = "snake_case")]
pub enum Flag {
    /// The parts do not add up to the total the platform reported.
    TotalsMismatch { expected: Money, reported: Money },
    /// The lines do not add up to the subtotal the platform reported.
    SubtotalMismatch { lines: Money, reported: Money },
}

impl Flag {
    pub fn code(&self) -> &'static str {
        match self {
            Flag::TotalsMismatch { .. } => "totals_mismatch",
            Flag::SubtotalMismatch { .. } => "subtotal_mismatch",
        }
    }
}

/// An order as an adapter normalized it, before the hub has stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrder {
    pub channel: ChannelId,
    /// The platform's id, used for every write-back. Never parsed as a number.
    pub external_order_id: String,
    /// The short code staff and couriers read out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_code: Option<String>,
    /// The channel's id of the store, when the channel names the store; `None` means the
    /// router picks the store from the delivery address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_store_ref: Option<String>,
    /// The chain's brand the order is for, where the channel says (the router only sends
    /// it to stores of that brand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// The platform's own sub-brand or experience (Uber Eats or Postmates, DoorDash or
    /// Caviar), for display and reports; never used for routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_brand: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub fulfillment: Fulfillment,
    pub customer: Customer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub lines: Vec<Line>,
    pub totals: Totals,
    pub payment: Payment,
    /// What the adapter needs later to sync status back (API generation, callback URL…).
    /// Opaque to the core.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub channel_data: serde_json::Value,
}

impl NewOrder {
    /// Whether the hub chooses the store: the channel named none (an address-based order).
    /// When a store declines such an order the router asks the next candidate; an order
    /// whose channel named the store goes to HQ instead.
    pub fn hub_chooses_store(&self) -> bool {
        self.channel_store_ref.is_none()
    }

    /// Refuses an order the hub cannot take, and lists the flags of one it takes with
    /// reservations. Money that does not add up is flagged, never corrected; money that
    /// cannot be is refused: a negative unit price or total, or a line whose unit price
    /// (with its modifiers) times its quantity is beyond 64-bit minor units, whatever line
    /// total the platform reported.
    pub fn check(&self) -> Result<Vec<Flag>, OrderError> {
        if self.external_order_id.trim().is_empty() {
            return Err(OrderError::MissingExternalId);
        }
        if self.lines.is_empty() {
            return Err(OrderError::NoLines);
        }
        if self.fulfillment.kind == FulfillmentKind::Delivery
            && self.fulfillment.delivered_by != Some(DeliveredBy::Platform)
            && self.fulfillment.address.is_none()
        {
            return Err(OrderError::MissingAddress);
        }
        if let Some(coordinates) = self
            .fulfillment
            .address
            .as_ref()
            .and_then(|address| address.coordinates)
            && !coordinates.in_range()
        {
            return Err(OrderError::BadCoordinates {
                lat: coordinates.lat,
                lng: coordinates.lng,
            });
        }
        let currency = self.totals.currency;
        let same = |field: String, money: Money| {
            if money.currency == currency {
                Ok(())
            } else {
                Err(OrderError::MixedCurrency {
                    field,
                    found: money.currency,
                    expected: currency,
                })
            }
        };
        for (field, money) in self.totals.amounts() {
            same(field, money)?;
        }
        for (index, line) in self.lines.iter().enumerate() {
            let number = index + 1;
            if line.quantity < 1 {
                return Err(OrderError::BadQuantity {
                    line: number,
                    name: line.name.clone(),
                    quantity: line.quantity,
                });
            }
            if line.unit_price.minor < 0 {
                return Err(OrderError::NegativePrice {
                    line: number,
                    name: line.name.clone(),
                });
            }
            same(format!("item {number} unit price"), line.unit_price)?;
            same(format!("item {number} total"), line.total)?;
            check_modifiers(number, &line.name, &line.modifiers, currency)?;
            // Platforms that report line totals are never multiplied out by their
            // adapters: an impossible quantity or price would pass as sent.
            line.computed_total()
                .map_err(|source| OrderError::LineOverflow {
                    line: number,
                    name: line.name.clone(),
                    quantity: line.quantity,
                    source,
                })?;
        }
        if self.totals.total.minor < 0 {
            return Err(OrderError::NegativeTotal {
                total: self.totals.total,
            });
        }

        let mut flags = Vec::new();
        let mut lines_sum = Money::zero(currency);
        for line in &self.lines {
            lines_sum = lines_sum.checked_add(line.total)?;
        }
        if lines_sum != self.totals.subtotal {
            flags.push(Flag::SubtotalMismatch {
                lines: lines_sum,
                reported: self.totals.subtotal,
            });
        }
        let expected = self.totals.expected_total()?;
        if expected != self.totals.total {
            flags.push(Flag::TotalsMismatch {
                expected,
                reported: self.totals.total,
            });
        }
        Ok(flags)
    }
}

fn check_modifiers(
    line: usize,
    name: &str,
    modifiers: &[Modifier],
    currency: Currency,
) -> Result<(), OrderError> {
    for modifier in modifiers {
        if modifier.quantity < 0 || (modifier.quantity == 0 && !modifier.removed) {
            return Err(OrderError::BadQuantity {
                line,
                name: format!("{name} / {}", modifier.name),
                quantity: modifier.quantity,
            });
        }
        if modifier.unit_price.currency != currency {
            return Err(OrderError::MixedCurrency {
                field: format!("item {line} modifier `{}`", modifier.name),
                found: modifier.unit_price.currency,
                expected: currency,
            });
        }
        check_modifiers(line, name, &modifier.modifiers, currency)?;
    }
    Ok(())
}

/// A stored order: the unified-order document the API shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: Status,
    /// The store the router assigned, once it has.
    pub store_id: Option<StoreId>,
    #[serde(default)]
    pub flags: Vec<Flag>,
    #[serde(flatten)]
    pub order: NewOrder,
}

/// The kind of reason no store can take an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unroutable {
    /// The channel names a store the chain has not mapped.
    UnknownStore,
    /// The drop-off point is outside every store's delivery zone.
    OutOfArea,
    /// The order names no store and carries no location to route by.
    NoLocation,
    /// Stores exist for the order but none can take it now (paused, closed, other brand).
    StoreUnavailable,
    /// The order names an item or modifier option (by PLU) that is not on the chain's
    /// menu: no store makes it.
    UnknownItem,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").expect("currency"))
    }

    fn sample() -> NewOrder {
        let currency = Currency::parse("USD").expect("currency");
        NewOrder {
            channel: ChannelId::parse("test").expect("channel"),
            external_order_id: "ext-1".into(),
            display_code: Some("A1B2C".into()),
            channel_store_ref: Some("s-1".into()),
            brand: None,
            platform_brand: None,
            placed_at: DateTime::<Utc>::UNIX_EPOCH,
            fulfillment: Fulfillment {
                kind: FulfillmentKind::Pickup,
                delivered_by: None,
                address: None,
                timing: Timing::Asap,
                promised_at: None,
                accept_by: None,
            },
            customer: Customer {
                name: "Ada L".into(),
                ..Customer::default()
            },
            notes: None,
            lines: vec![Line {
                channel_item_id: "i-1".into(),
                plu: Some("PZ-MARG-L".into()),
                name: "Margherita".into(),
                quantity: 2,
                unit_price: usd(1000),
                total: usd(2300),
                notes: None,
                modifiers: vec![Modifier {
                    group: Some("Extras".into()),
                    name: "Basil".into(),
                    channel_item_id: None,
                    plu: None,
                    quantity: 1,
                    unit_price: usd(150),
                    removed: false,
                    modifiers: vec![],
                }],
            }],
            totals: Totals {
                currency,
                subtotal: usd(2300),
                discounts: vec![Discount {
                    label: "promo".into(),
                    amount: usd(300),
                    funded_by: FundedBy::Platform,
                }],
                tax: usd(200),
                tax_included: false,
                fees: Fees {
                    delivery: usd(0),
                    service: usd(100),
                    ..Fees::zero(currency)
                },
                tip: usd(0),
                total: usd(2300),
                cash_due: None,
                total_is_derived: false,
            },
            payment: Payment::Prepaid,
            channel_data: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_consistent_order_has_no_flags() {
        let order = sample();
        assert_eq!(order.lines[0].computed_total(), Ok(usd(2300)));
        assert_eq!(order.check(), Ok(vec![]));
    }

    #[test]
    fn money_that_does_not_add_up_is_flagged_not_corrected() {
        let mut order = sample();
        order.totals.total = usd(9999);
        assert_eq!(
            order.check(),
            Ok(vec![Flag::TotalsMismatch {
                expected: usd(2300),
                reported: usd(9999)
            }])
        );
        assert_eq!(order.totals.total, usd(9999));
    }

    #[test]
    fn impossible_orders_are_refused_with_the_reason() {
        let mut order = sample();
        order.lines[0].quantity = 0;
        assert_eq!(
            order.check().map_err(|e| e.to_string()),
            Err("item 1 (`Margherita`) has quantity 0; quantities must be at least 1".into())
        );
        let mut order = sample();
        order.totals.tip = Money::new(100, Currency::parse("EUR").expect("currency"));
        assert!(matches!(
            order.check(),
            Err(OrderError::MixedCurrency { .. })
        ));
        let mut order = sample();
        order.lines.clear();
        assert_eq!(order.check(), Err(OrderError::NoLines));
        let mut order = sample();
        order.fulfillment.kind = FulfillmentKind::Delivery;
        order.fulfillment.delivered_by = Some(DeliveredBy::Store);
        assert_eq!(order.check(), Err(OrderError::MissingAddress));
    }

    #[test]
    fn impossible_money_is_refused_even_where_the_platform_gave_the_line_total() {
        // A line total as sent, with a quantity no unit price can be multiplied by.
        let mut order = sample();
        order.lines[0].quantity = i64::MAX;
        assert!(
            matches!(
                order.check(),
                Err(OrderError::LineOverflow {
                    line: 1,
                    quantity: i64::MAX,
                    ..
                })
            ),
            "{:?}",
            order.check()
        );
        let mut order = sample();
        order.lines[0].unit_price = usd(i64::MAX);
        let refused = order.check().map_err(|e| e.to_string());
        assert!(
            refused
                .as_ref()
                .is_err_and(|m| m.contains("item 1 (`Margherita`)") && m.contains("overflows")),
            "{refused:?}"
        );
        // A modifier's price counts for every unit of the line.
        let mut order = sample();
        order.lines[0].quantity = 2;
        order.lines[0].modifiers[0].unit_price = usd(i64::MAX / 2);
        assert!(matches!(
            order.check(),
            Err(OrderError::LineOverflow { .. })
        ));
        // The customer never gets paid to order.
        let mut order = sample();
        order.totals.total = usd(-1);
        assert_eq!(
            order.check(),
            Err(OrderError::NegativeTotal { total: usd(-1) })
        );
        let mut order = sample();
        order.totals.total = usd(0);
        assert!(order.check().is_ok(), "a free order is an order");
    }

    #[test]
    fn coordinates_out_of_range_are_refused_with_the_values() {
        let with_coordinates = |lat: f64, lng: f64| {
            let mut order = sample();
            order.fulfillment.kind = FulfillmentKind::Delivery;
            order.fulfillment.delivered_by = Some(DeliveredBy::Store);
            order.fulfillment.address = Some(Address {
                lines: vec!["1 Main St".into()],
                coordinates: Some(Coordinates {
                    lat,
                    lng,
                    system: CoordSystem::Wgs84,
                }),
                ..Address::default()
            });
            order
        };
        for (lat, lng) in [(90.0, 180.0), (-90.0, -180.0), (40.7458, -73.9987)] {
            assert_eq!(
                with_coordinates(lat, lng).check(),
                Ok(vec![]),
                "{lat}, {lng}"
            );
        }
        for (lat, lng) in [(140.7, -73.9), (40.7, -180.5), (90.01, 0.0)] {
            assert_eq!(
                with_coordinates(lat, lng).check(),
                Err(OrderError::BadCoordinates { lat, lng }),
                "{lat}, {lng}"
            );
        }
        assert_eq!(
            with_coordinates(140.7, -73.9)
                .check()
                .map_err(|e| e.to_string()),
            Err(
                "delivery address coordinates (140.7, -73.9) are out of range; \
                 latitude must be within -90 to 90 and longitude within -180 to 180"
                    .into()
            )
        );
        for (lat, lng) in [(f64::NAN, 0.0), (0.0, f64::INFINITY)] {
            let error = with_coordinates(lat, lng).check().expect_err("not finite");
            assert!(
                matches!(error, OrderError::BadCoordinates { .. }),
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_money_error_can_name_its_field() {
        let error = OrderError::MoneyAt {
            field: "order_total.gross".into(),
            source: MoneyError::Overflow {
                value: "1 + 2".into(),
            },
        };
        assert_eq!(
            error.to_string(),
            "order_total.gross: amount `1 + 2` overflows 64-bit minor units"
        );
    }

    #[test]
    fn phones_are_masked_to_their_last_digits() {
        assert_eq!(mask_phone("+1 (555) 010-9876"), "***876");
        assert_eq!(mask_phone("12"), "***12");
    }

    #[test]
    fn only_the_answer_to_an_offer_is_due_by_its_deadline() {
        let deadline = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        let fulfillment = |accept_by| Fulfillment {
            kind: FulfillmentKind::Delivery,
            delivered_by: None,
            address: None,
            timing: Timing::Asap,
            promised_at: None,
            accept_by,
        };
        // Accepted, rejected or cancelled by the chain: all answers out of `received`.
        assert_eq!(
            fulfillment(Some(deadline)).answer_due_by(Status::Received),
            Some(deadline)
        );
        assert_eq!(
            fulfillment(None).answer_due_by(Status::Received),
            None,
            "no deadline set"
        );
        for later in [Status::Accepted, Status::Preparing, Status::Ready] {
            assert_eq!(
                fulfillment(Some(deadline)).answer_due_by(later),
                None,
                "a change out of {later:?} is not the answer"
            );
        }
    }
}
