//! The platform's order → the unified [`NewOrder`]. All money conversion of the adapter
//! happens here, and nowhere else.
//!
//! The rules are CHANNELS.md §8 (the unified model) and §10 (normalization):
//!
//! - amounts are integer minor units of the order's currency; a fractional minor unit or
//!   an overflow fails the order (`ConvertError::Money`, naming the field; the hub answers
//!   "unacceptable order"), never a rounding, and nothing goes through `f64`;
//! - a field that is missing or unreadable is `ConvertError::field`, naming it (the hub
//!   answers "malformed");
//! - figures the platform reports (line totals, subtotal, total) are kept as sent; the hub's
//!   order check flags parts that do not add up, and never corrects them;
//! - top-level items keep payload order; options stay nested under their item;
//! - times are instants (UTC); a scheduled order carries its time in `Timing::Scheduled`.
//!
//! PLATFORM: rewrite [`order`] for the platform's fields, and state each choice the
//! documentation leaves open on the function that makes it (and in the crate docs'
//! Assumptions).

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::clip;
use crossdock_channel::convert::ConvertError;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, MoneyError, NewOrder, Payment,
    Timing, Totals,
};

use crate::wire::{self, Amount};

/// How long the platform waits for the store's acceptance before it gives the order up.
/// The order's `accept_by` is the time of receipt plus this.
///
/// PLATFORM: the platform's acceptance deadline (or read it from the order, if the
/// platform sends one); the simulator enforces the same limit.
pub const ACCEPT_WINDOW: TimeDelta = TimeDelta::minutes(5);

/// Errors convert into `ChannelError` with `?`: `Malformed` for a field, `Order` for money.
type Result<T> = std::result::Result<T, ConvertError>;

/// Minor units from the platform's amount: a JSON integer is taken as it is; a number with
/// a fraction or an exponent (`12.5`, `1e3`) is a fractional minor unit, and an integer
/// beyond 64 bits an overflow, both failing the order with the field named.
pub(crate) fn money(amount: &Amount, currency: Currency, field: &str) -> Result<Money> {
    match amount.0.as_i64() {
        Some(minor) => Ok(Money::new(minor, currency)),
        None if amount.0.is_u64() => Err(ConvertError::money_at(field)(MoneyError::Overflow {
            value: amount.0.to_string(),
        })),
        None => Err(ConvertError::money_at(field)(
            MoneyError::FractionalMinorUnit {
                value: format!("{} (minor units)", amount.0),
                currency,
                exponent: currency.exponent(),
            },
        )),
    }
}

fn money_or_zero(amount: Option<&Amount>, currency: Currency, field: &str) -> Result<Money> {
    amount.map_or(Ok(Money::zero(currency)), |a| money(a, currency, field))
}

/// An RFC 3339 time as an instant.
pub(crate) fn timestamp(value: &str, field: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ConvertError::field(
                field,
                format!("`{}` is not an RFC 3339 time: {e}", clip(value)),
            )
        })
}

/// `Some(trimmed)` for a non-empty text, `None` for an absent or blank one.
fn text(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A required text: trimmed, not empty.
pub(crate) fn required(value: &str, field: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ConvertError::field(field, "must not be empty"));
    }
    Ok(value.to_owned())
}

/// The delivery address; coordinates only when both are sent (WGS 84).
///
/// PLATFORM: Chinese platforms send GCJ-02 coordinates (`CoordSystem::Gcj02`); some send
/// `"lng,lat"` text.
fn address(address: &wire::Address) -> Result<Address> {
    let coordinates = match (address.lat, address.lng) {
        (Some(lat), Some(lng)) => Some(Coordinates {
            lat,
            lng,
            system: CoordSystem::Wgs84,
        }),
        (None, None) => None,
        _ => {
            return Err(ConvertError::field(
                "order.fulfillment.address",
                "has only one of `lat` and `lng`",
            ));
        }
    };
    Ok(Address {
        lines: address
            .lines
            .iter()
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect(),
        city: text(address.city.as_ref()),
        postcode: text(address.postcode.as_ref()),
        country: text(address.country.as_ref()),
        coordinates,
        instructions: text(address.instructions.as_ref()),
    })
}

fn modifiers(options: &[wire::ItemOption], currency: Currency, field: &str) -> Result<Vec<Modifier>> {
    options
        .iter()
        .enumerate()
        .map(|(i, option)| {
            let field = format!("{field}.options[{i}]");
            Ok(Modifier {
                group: text(option.group.as_ref()),
                name: option.name.clone(),
                channel_item_id: text(option.id.as_ref()),
                plu: text(option.plu.as_ref()),
                quantity: option.quantity,
                unit_price: money(&option.unit_price, currency, &format!("{field}.unit_price"))?,
                removed: false,
                modifiers: modifiers(&option.options, currency, &field)?,
            })
        })
        .collect()
}

/// A top-level line: the platform's `total` where it sends one, otherwise
/// `(unit + Σ option unit × quantity) × quantity` (CHANNELS.md §8.3).
fn line(item: &wire::Item, currency: Currency, field: &str) -> Result<Line> {
    let mut line = Line {
        channel_item_id: required(&item.id, &format!("{field}.id"))?,
        plu: text(item.plu.as_ref()),
        name: item.name.clone(),
        quantity: item.quantity,
        unit_price: money(&item.unit_price, currency, &format!("{field}.unit_price"))?,
        total: Money::zero(currency),
        notes: text(item.notes.as_ref()),
        modifiers: modifiers(&item.options, currency, field)?,
    };
    line.total = match &item.total {
        Some(total) => money(total, currency, &format!("{field}.total"))?,
        None => line
            .computed_total()
            .map_err(ConvertError::money_at(&format!("{field} (computed total)")))?,
    };
    Ok(line)
}

/// The order's money as the platform reports it.
///
/// PLATFORM: map each of the platform's fees onto `fees.delivery`, `service`,
/// `small_order`, `packaging` or `other`; set `tax_included` for VAT prices; if the
/// platform sends no total, derive it (`Totals::expected_total`) and set
/// `total_is_derived`.
fn totals(totals: &wire::Totals, currency: Currency) -> Result<Totals> {
    let field = |name: &str| format!("order.totals.{name}");
    let discounts = totals
        .discounts
        .iter()
        .enumerate()
        .map(|(i, discount)| {
            Ok(Discount {
                label: discount.label.clone(),
                amount: money(
                    &discount.amount,
                    currency,
                    &field(&format!("discounts[{i}].amount")),
                )?,
                funded_by: match discount.funded_by.as_deref() {
                    Some("platform") => FundedBy::Platform,
                    Some("merchant") => FundedBy::Merchant,
                    _ => FundedBy::Unknown,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Totals {
        currency,
        subtotal: money(&totals.subtotal, currency, &field("subtotal"))?,
        discounts,
        tax: money_or_zero(totals.tax.as_ref(), currency, &field("tax"))?,
        tax_included: false,
        fees: Fees {
            delivery: money_or_zero(
                totals.delivery_fee.as_ref(),
                currency,
                &field("delivery_fee"),
            )?,
            service: money_or_zero(totals.service_fee.as_ref(), currency, &field("service_fee"))?,
            ..Fees::zero(currency)
        },
        tip: money_or_zero(totals.tip.as_ref(), currency, &field("tip"))?,
        total: money(&totals.total, currency, &field("total"))?,
        cash_due: None,
        total_is_derived: false,
    })
}

/// Converts the platform's order, received at `received_at`.
///
/// - The external order id is `order.id` and the store `order.store_id`, both as text.
/// - `placed_at` is the platform's `placed_at`; `accept_by` is receipt + [`ACCEPT_WINDOW`].
/// - A delivery with no `courier` is taken as the platform's courier's.
/// - The order is prepaid on the platform.
///
/// PLATFORM: each of these is a choice to check against the platform's documentation.
pub(crate) fn order(
    channel: &ChannelId,
    order: &wire::Order,
    received_at: DateTime<Utc>,
) -> Result<NewOrder> {
    let external_order_id = required(&order.id, "order.id")?;
    let store_ref = required(&order.store_id, "order.store_id")?;
    let currency =
        Currency::parse(order.currency.trim()).map_err(ConvertError::money_at("order.currency"))?;
    let placed_at = timestamp(&order.placed_at, "order.placed_at")?;

    let fulfillment = &order.fulfillment;
    let (kind, delivered_by) = match fulfillment.kind {
        wire::FulfillmentType::Pickup => (FulfillmentKind::Pickup, None),
        wire::FulfillmentType::Delivery => (
            FulfillmentKind::Delivery,
            Some(match fulfillment.courier {
                Some(wire::Courier::Store) => DeliveredBy::Store,
                Some(wire::Courier::Platform) | None => DeliveredBy::Platform,
            }),
        ),
    };
    let address = match (&fulfillment.address, kind) {
        (Some(wire), FulfillmentKind::Delivery) => Some(address(wire)?),
        _ => None,
    };
    let scheduled_for = fulfillment
        .scheduled_for
        .as_deref()
        .map(|at| timestamp(at, "order.fulfillment.scheduled_for"))
        .transpose()?;

    let customer = order.customer.as_ref();
    let lines = order
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| line(item, currency, &format!("order.items[{i}]")))
        .collect::<Result<Vec<_>>>()?;

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id,
        display_code: text(order.short_code.as_ref()),
        channel_store_ref: Some(store_ref),
        brand: None,
        platform_brand: None,
        placed_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing: match scheduled_for {
                Some(at) => Timing::Scheduled { at },
                None => Timing::Asap,
            },
            promised_at: scheduled_for,
            accept_by: Some(received_at + ACCEPT_WINDOW),
        },
        customer: Customer {
            name: customer
                .and_then(|c| text(c.name.as_ref()))
                .unwrap_or_default(),
            phone: customer.and_then(|c| text(c.phone.as_ref())),
            phone_pin: None,
            email: None,
        },
        notes: text(order.notes.as_ref()),
        lines,
        totals: totals(&order.totals, currency)?,
        payment: Payment::Prepaid,
        channel_data: serde_json::Value::Null,
    })
}
