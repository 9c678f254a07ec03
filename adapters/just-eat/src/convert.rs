//! JET Connect's Receive Order body → the unified [`NewOrder`]. All money conversion of the
//! adapter happens here, and nowhere else.
//!
//! The rules are CHANNELS.md §8 (the unified model) and §10 (normalization):
//!
//! - amounts are integer minor units ("price in cents"); a fractional minor unit or an
//!   overflow fails the order (`ConvertError::Money`, naming the field; the hub answers
//!   "unacceptable order"), never a rounding, and nothing goes through `f64`;
//! - JET sends no currency: it is the adapter's configuration, per store ([`Currencies`]);
//! - a field that is missing or unreadable is `ConvertError::field`, naming it (the hub
//!   answers "malformed", and JET sends the order to the Orderpad);
//! - figures JET reports (`payment.items_in_cart`, `payment.final`, each adjustment) are
//!   kept as sent; JET sends no line totals, so those are computed; the hub's order check
//!   flags parts that do not add up, and never corrects them;
//! - top-level items keep payload order; `children` stay nested under their item;
//! - times are instants (UTC); a scheduled order carries its time in `Timing::Scheduled`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::clip;
use crossdock_channel::convert::ConvertError;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, MoneyError, NewOrder, Payment,
    Timing, Totals,
};
use serde_json::{Value, json};

use crate::wire::{self, Amount};

/// How long JET Connect keeps an order pending after the Receive Order webhook was answered
/// 202, before it marks it "failed to inject" (and sends it to the Orderpad). The order's
/// `accept_by` is the time of receipt plus this; the simulator enforces the same limit.
///
/// The Update Order Status page says 5 minutes; the Receive Order reference says 3 (crate
/// docs, *Assumptions*).
pub const ACCEPT_WINDOW: TimeDelta = TimeDelta::minutes(5);

/// Errors convert into `ChannelError` with `?`: `Malformed` for a field, `Order` for money.
type Result<T> = std::result::Result<T, ConvertError>;

/// The currency of a store's orders: JET Connect's bodies carry none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Currencies {
    /// For stores not listed.
    pub default: Currency,
    /// By `posLocationId`.
    pub by_store: BTreeMap<String, Currency>,
}

impl Currencies {
    /// The currency of the store JET calls `pos_location_id`.
    pub fn currency(&self, pos_location_id: &str) -> Currency {
        self.by_store
            .get(pos_location_id)
            .copied()
            .unwrap_or(self.default)
    }
}

/// Minor units from JET's amount: a JSON integer is taken as it is; a number with a
/// fraction or an exponent (`12.5`, `1e3`) is a fractional minor unit, and an integer
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

/// `inc_tax − tax`: an amount before tax, as JET's examples price items before tax and
/// list the tax apart.
fn before_tax(price: &wire::Price, currency: Currency, field: &str) -> Result<Money> {
    let inc_tax = money(&price.inc_tax, currency, &format!("{field}.inc_tax"))?;
    let tax = money(&price.tax, currency, &format!("{field}.tax"))?;
    inc_tax
        .checked_sub(tax)
        .map_err(ConvertError::money_at(&format!("{field} (inc_tax − tax)")))
}

/// A JET time as an instant: unix seconds (`"1606780145"`, as a string or a number), or
/// RFC 3339 (the older Flyt documents' form).
pub(crate) fn timestamp(value: &wire::Text, field: &str) -> Result<DateTime<Utc>> {
    let text = value.text();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
            .ok_or_else(|| {
                ConvertError::field(
                    field,
                    format!("`{}` is not a unix time in seconds", clip(&text)),
                )
            });
    }
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ConvertError::field(
                field,
                format!(
                    "`{}` is neither unix seconds nor an RFC 3339 time: {e}",
                    clip(&text)
                ),
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

/// Like [`text`], and also `None` for a value JET masked with asterisks (`"****"`), as it
/// masks the customer of a partner delivery.
fn unmasked(value: Option<&String>) -> Option<String> {
    text(value).filter(|v| !v.chars().all(|c| c == '*' || c.is_whitespace()))
}

/// A required text: trimmed, not empty.
pub(crate) fn required(value: &str, field: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ConvertError::field(field, "must not be empty"));
    }
    Ok(value.to_owned())
}

/// The address a restaurant delivers to: `line_one`, `line_two`, `city`, `postcode`, the
/// numeric `coordinates` (WGS 84; both or neither), the order's `delivery_notes` as the
/// courier's instructions. JET sends no country.
fn address(person: &wire::Person, instructions: Option<String>) -> Result<Address> {
    let coordinates = match person
        .coordinates
        .as_ref()
        .map(|c| (c.latitude, c.longitude))
    {
        Some((Some(lat), Some(lng))) => Some(Coordinates {
            lat,
            lng,
            system: CoordSystem::Wgs84,
        }),
        None | Some((None, None)) => None,
        Some(_) => {
            return Err(ConvertError::field(
                "delivery.coordinates",
                "has only one of `latitude` and `longitude`",
            ));
        }
    };
    Ok(Address {
        lines: [&person.line_one, &person.line_two]
            .into_iter()
            .filter_map(|line| unmasked(line.as_ref()))
            .collect(),
        city: unmasked(person.city.as_ref()),
        postcode: unmasked(person.postcode.as_ref()),
        country: None,
        coordinates,
        instructions,
    })
}

/// How many of an item or option: JET's item schema has no quantity (each unit is its own
/// object); a `quantity` is read if one is ever sent.
fn quantity(item: &wire::Item, field: &str) -> Result<i64> {
    match item.quantity {
        None => Ok(1),
        Some(q) if q > 0 => Ok(q),
        Some(q) => Err(ConvertError::field(
            format!("{field}.quantity"),
            format!("must be at least 1, not {q}"),
        )),
    }
}

/// An item's `children`, recursively. `gift` prices them 0 (a promotion's free item).
fn modifiers(
    children: &[wire::Item],
    currency: Currency,
    field: &str,
    gift: bool,
) -> Result<Vec<Modifier>> {
    children
        .iter()
        .enumerate()
        .map(|(i, child)| {
            let field = format!("{field}.children[{i}]");
            Ok(Modifier {
                group: None,
                name: child.name.clone(),
                channel_item_id: None,
                plu: text(child.plu.as_ref()),
                quantity: quantity(child, &field)?,
                unit_price: if gift {
                    Money::zero(currency)
                } else {
                    money(&child.price, currency, &format!("{field}.price"))?
                },
                removed: false,
                modifiers: modifiers(&child.children, currency, &field, gift)?,
            })
        })
        .collect()
}

/// A top-level line. JET sends no line total, so it is `(unit + Σ option unit × quantity) ×
/// quantity` (CHANNELS.md §8.3). JET's items have no id: the line's id is its JSON path
/// (`items[0]`), stable across JET's retries of the same body.
fn line(item: &wire::Item, currency: Currency, field: &str, gift: Option<&str>) -> Result<Line> {
    let mut line = Line {
        channel_item_id: field.to_owned(),
        plu: text(item.plu.as_ref()),
        name: item.name.clone(),
        quantity: quantity(item, field)?,
        unit_price: if gift.is_some() {
            Money::zero(currency)
        } else {
            money(&item.price, currency, &format!("{field}.price"))?
        },
        total: Money::zero(currency),
        notes: match (text(item.notes.as_ref()), gift) {
            (notes, None) => notes,
            (None, Some(promotion)) => Some(format!("Free item ({promotion})")),
            (Some(notes), Some(promotion)) => Some(format!("Free item ({promotion}). {notes}")),
        },
        modifiers: modifiers(&item.children, currency, field, gift.is_some())?,
    };
    line.total = line
        .computed_total()
        .map_err(ConvertError::money_at(&format!("{field} (computed total)")))?;
    Ok(line)
}

/// What an adjustment is, by its `name` (compared without case).
enum AdjustmentKind {
    Fee(fn(&mut Fees) -> &mut Money),
    Discount,
    Tip,
}

fn adjustment_kind(name: &str) -> Option<AdjustmentKind> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "deliveryfee" => AdjustmentKind::Fee(|fees| &mut fees.delivery),
        "servicecharge" | "servicefee" => AdjustmentKind::Fee(|fees| &mut fees.service),
        "smallorderfee" => AdjustmentKind::Fee(|fees| &mut fees.small_order),
        "bagfee" | "packagingfee" => AdjustmentKind::Fee(|fees| &mut fees.packaging),
        "discount" => AdjustmentKind::Discount,
        "tip" | "drivertip" => AdjustmentKind::Tip,
        _ => return None,
    })
}

/// The order's money as JET reports it.
///
/// - `subtotal` is `items_in_cart` before tax (`inc_tax − tax`): JET prices items before
///   tax and lists the tax apart, so this is what the lines add up to.
/// - `tax` is `final.tax` (all tax of the order), not included in the prices.
/// - Each adjustment counts before its tax: `deliveryFee` → `fees.delivery`,
///   `serviceCharge` → `fees.service`, `smallOrderFee` → `fees.small_order`, `bagFee` →
///   `fees.packaging`, `discount` (negative) → a discount of unknown funding, `tip` →
///   `tip`; any other name is a fee (`fees.other`) when positive and a discount labelled
///   with its name when negative.
/// - `total` is `final.inc_tax`, what the customer paid; never recomputed.
fn totals(payment: &wire::Payment, currency: Currency) -> Result<Totals> {
    let mut fees = Fees::zero(currency);
    let mut tip = Money::zero(currency);
    let mut discounts = Vec::new();
    for (i, adjustment) in payment.adjustments.iter().enumerate() {
        let field = format!("payment.adjustments[{i}].price");
        let amount = before_tax(&adjustment.price, currency, &field)?;
        let add = |to: &mut Money| -> Result<()> {
            *to = to
                .checked_add(amount)
                .map_err(ConvertError::money_at(&field))?;
            Ok(())
        };
        let name = adjustment.name.trim();
        match adjustment_kind(name) {
            Some(AdjustmentKind::Fee(slot)) => add(slot(&mut fees))?,
            Some(AdjustmentKind::Tip) => add(&mut tip)?,
            kind @ (Some(AdjustmentKind::Discount) | None) => {
                if kind.is_none() && amount.minor >= 0 {
                    add(&mut fees.other)?;
                } else {
                    discounts.push(Discount {
                        label: if name.is_empty() {
                            "discount".to_owned()
                        } else {
                            name.to_owned()
                        },
                        amount: Money::zero(currency)
                            .checked_sub(amount)
                            .map_err(ConvertError::money_at(&field))?,
                        funded_by: FundedBy::Unknown,
                    });
                }
            }
        }
    }
    let total = money(&payment.paid.inc_tax, currency, "payment.final.inc_tax")?;
    Ok(Totals {
        currency,
        subtotal: before_tax(&payment.items_in_cart, currency, "payment.items_in_cart")?,
        discounts,
        tax: money(&payment.paid.tax, currency, "payment.final.tax")?,
        tax_included: false,
        fees,
        tip,
        total,
        cash_due: None,
        total_is_derived: false,
    })
}

/// Whether the order is wanted as soon as possible: `extras.asap` (`"true"`/`"false"`, or
/// a JSON boolean); an order without it is ASAP. Any other value is refused: it decides
/// when the kitchen starts.
fn asap(order: &wire::ReceiveOrder) -> Result<bool> {
    let Some(value) = order.extras.as_ref().and_then(|extras| extras.get("asap")) else {
        return Ok(true);
    };
    match value {
        Value::Bool(asap) => Ok(*asap),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        other => Err(ConvertError::field(
            "extras.asap",
            format!("`{}` is neither true nor false", clip(&other.to_string())),
        )),
    }
}

/// What the store keeps of JET's order beyond the unified fields: the marketplace's own
/// references and what the unified model has no place for.
fn channel_data(order: &wire::ReceiveOrder) -> Value {
    let mut data = serde_json::Map::new();
    if let Some(location) = &order.location {
        if let Some(id) = &location.id {
            data.insert("location_id".into(), json!(id.text()));
        }
        if let Some(timezone) = text(location.timezone.as_ref()) {
            data.insert("timezone".into(), json!(timezone));
        }
    }
    if let Some(tender) = text(order.tender_type.as_ref()) {
        data.insert("tender_type".into(), json!(tender));
    }
    if let Some(deposit) = &order.payment.deposit {
        data.insert("deposit".into(), json!(deposit.0));
    }
    if let Some(reference) = order
        .extras
        .as_ref()
        .and_then(|e| e.get("justEatOrderReference"))
        .and_then(Value::as_str)
    {
        data.insert("just_eat_order_reference".into(), json!(reference));
    }
    if data.is_empty() {
        Value::Null
    } else {
        Value::Object(data)
    }
}

/// Converts JET's Receive Order body, received at `received_at`.
///
/// - The external order id is `id` (the JET Connect order id of the status calls), the
///   display code `third_party_order_reference`, the store `posLocationId`, all as text.
/// - `type`: `delivery-by-delivery-partner` is a delivery by the platform (no address: JET
///   masks it), `delivery-by-merchant` a delivery by the store (to `delivery`'s address),
///   `collection-by-customer` a pickup.
/// - `placed_at` is `created_at`; `accept_by` is receipt + [`ACCEPT_WINDOW`].
/// - The promised time is `collect_at` (courier or customer collects) or, for the store's
///   own deliveries, `deliver_at`; it is the scheduled time when `extras.asap` is false.
/// - The customer is `collector` (pickups) or `delivery`; masked values are dropped, as is
///   JET's placeholder e-mail; `phone_masking_code` is the phone PIN.
/// - The order note is `kitchen_notes`, then `collection_notes`, then (when there is no
///   address to put them on) `delivery_notes`, one per line.
/// - Promotions' free items are lines priced 0 after the paid items.
/// - `CARD` is prepaid; `CASH` is collected by the store for its own deliveries and
///   pickups (`cash_due` = the total) and by JET's courier for partner deliveries.
pub(crate) fn order(
    channel: &ChannelId,
    order: &wire::ReceiveOrder,
    currencies: &Currencies,
    received_at: DateTime<Utc>,
) -> Result<NewOrder> {
    let external_order_id = required(&order.id, "id")?;
    let store_ref = required(&order.pos_location_id.text(), "posLocationId")?;
    let currency = currencies.currency(&store_ref);
    let placed_at = timestamp(&order.created_at, "created_at")?;

    let (kind, delivered_by, person) = match order.kind {
        wire::OrderType::DeliveryByDeliveryPartner => (
            FulfillmentKind::Delivery,
            Some(DeliveredBy::Platform),
            order.delivery.as_ref(),
        ),
        wire::OrderType::DeliveryByMerchant => (
            FulfillmentKind::Delivery,
            Some(DeliveredBy::Store),
            order.delivery.as_ref(),
        ),
        wire::OrderType::CollectionByCustomer => {
            (FulfillmentKind::Pickup, None, order.collector.as_ref())
        }
    };
    let delivery_notes = text(order.delivery_notes.as_ref());
    let address = match (order.kind, order.delivery.as_ref()) {
        (wire::OrderType::DeliveryByMerchant, Some(delivery)) => {
            Some(address(delivery, delivery_notes.clone())?)
        }
        _ => None,
    };

    let (time, time_field) = match (order.kind, &order.deliver_at, &order.collect_at) {
        (wire::OrderType::DeliveryByMerchant, Some(at), _) => (Some(at), "deliver_at"),
        (_, _, Some(at)) => (Some(at), "collect_at"),
        (_, Some(at), None) => (Some(at), "deliver_at"),
        (_, None, None) => (None, "collect_at"),
    };
    let promised_at = time.map(|t| timestamp(t, time_field)).transpose()?;
    let timing = if asap(order)? {
        Timing::Asap
    } else {
        Timing::Scheduled {
            at: promised_at.ok_or_else(|| {
                ConvertError::field(
                    time_field,
                    "a scheduled order (`extras.asap` false) needs it",
                )
            })?,
        }
    };

    let mut lines = order
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| line(item, currency, &format!("items[{i}]"), None))
        .collect::<Result<Vec<_>>>()?;
    for (p, promotion) in order.promotions.iter().enumerate() {
        let label = text(promotion.kind.as_ref()).unwrap_or_else(|| "promotion".to_owned());
        for (i, item) in promotion.items.iter().enumerate() {
            lines.push(line(
                item,
                currency,
                &format!("promotions[{p}].items[{i}]"),
                Some(&label),
            )?);
        }
    }

    let mut totals = totals(&order.payment, currency)?;
    let payment = match (order.payment_method, order.kind) {
        (wire::PaymentMethod::Card, _) => Payment::Prepaid,
        (wire::PaymentMethod::Cash, wire::OrderType::CollectionByCustomer) => {
            totals.cash_due = Some(totals.total);
            Payment::PayAtStore
        }
        (wire::PaymentMethod::Cash, wire::OrderType::DeliveryByMerchant) => {
            totals.cash_due = Some(totals.total);
            Payment::CashOnDelivery
        }
        (wire::PaymentMethod::Cash, wire::OrderType::DeliveryByDeliveryPartner) => {
            Payment::CashOnDelivery
        }
    };

    let notes = [
        text(order.kitchen_notes.as_ref()),
        text(order.collection_notes.as_ref()),
        if address.is_none() {
            delivery_notes
        } else {
            None
        },
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();

    let name = person
        .map(|p| {
            [&p.first_name, &p.last_name]
                .into_iter()
                .filter_map(|part| unmasked(part.as_ref()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id,
        display_code: order
            .third_party_order_reference
            .as_ref()
            .map(wire::Text::text)
            .filter(|s| !s.is_empty()),
        channel_store_ref: Some(store_ref),
        brand: None,
        platform_brand: order.channel.as_ref().and_then(|c| text(c.name.as_ref())),
        placed_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing,
            promised_at,
            accept_by: Some(received_at + ACCEPT_WINDOW),
        },
        customer: Customer {
            name,
            phone: person.and_then(|p| unmasked(p.phone_number.as_ref())),
            phone_pin: person.and_then(|p| text(p.phone_masking_code.as_ref())),
            email: person
                .and_then(|p| text(p.email.as_ref()))
                .filter(|e| e.contains('@') && !e.ends_with(".hidden")),
        },
        notes: (!notes.is_empty()).then(|| notes.join("\n")),
        lines,
        totals,
        payment,
        channel_data: channel_data(order),
    })
}
