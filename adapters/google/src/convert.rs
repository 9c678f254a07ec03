//! Google's carts and orders → the unified [`NewOrder`]. All money conversion of the
//! adapter happens here, and nowhere else.
//!
//! Money is `google.type.Money` (`{currencyCode, units, nanos}`): `minor = units × 10^e +
//! nanos / 10^(9 − e)` with `e` the ISO 4217 exponent, in exact integer arithmetic; a
//! `nanos` that is not a whole minor unit fails the order, it is never rounded.
//!
//! The rules follow CHANNELS.md §8 and §10. Where those sections are silent, the choice
//! made is stated on the function that makes it.

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::clip;
use crossdock_channel::convert::ConvertError;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, MoneyError, NewOrder, Payment,
    Timing, Totals,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::wire::{
    Cart, Contact, FoodItemOption, FulfillmentInfo, GoogleMoney, GoogleOrder, Int64, LineItem,
    Location,
};

/// The label of a discount line that has no name.
pub(crate) const DISCOUNT_LABEL: &str = "Google order discount";

type Result<T> = std::result::Result<T, ConvertError>;

/// Names the amount a money error is about.
fn at(field: &str) -> impl FnOnce(MoneyError) -> ConvertError + '_ {
    ConvertError::money_at(field)
}

// ---------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------

/// `google.type.Money` → minor units, exactly. `units` may come as a string (proto3 JSON)
/// or a number; `nanos` must lie within ±999 999 999 and share the sign of `units`.
pub(crate) fn money(value: &GoogleMoney, field: &str) -> Result<Money> {
    let currency = Currency::parse(value.currency_code.trim())
        .map_err(at(&format!("{field}.currencyCode")))?;
    let units = match &value.units {
        None => 0,
        Some(Int64::Number(n)) => *n,
        Some(Int64::Text(text)) => {
            let trimmed = text.trim();
            let digits = trimmed.strip_prefix(['-', '+']).unwrap_or(trimmed);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConvertError::Money {
                    field: format!("{field}.units"),
                    source: MoneyError::NotANumber { value: clip(text) },
                });
            }
            trimmed.parse::<i64>().map_err(|_| ConvertError::Money {
                field: format!("{field}.units"),
                source: MoneyError::Overflow { value: clip(text) },
            })?
        }
    };
    let nanos = value.nanos.unwrap_or(0);
    if !(-999_999_999..=999_999_999).contains(&nanos) {
        return Err(ConvertError::field(
            format!("{field}.nanos"),
            format!("{nanos} is outside -999999999..=999999999"),
        ));
    }
    if (units > 0 && nanos < 0) || (units < 0 && nanos > 0) {
        return Err(ConvertError::field(
            format!("{field}.nanos"),
            format!("{nanos} does not have the sign of units {units}"),
        ));
    }
    let exponent = currency.exponent().min(9);
    let nanos_per_minor = 10_i64.pow(9 - exponent);
    if nanos % nanos_per_minor != 0 {
        return Err(ConvertError::Money {
            field: field.to_owned(),
            source: MoneyError::FractionalMinorUnit {
                value: format!("{units} units + {nanos} nanos"),
                currency,
                exponent,
            },
        });
    }
    let minor = units
        .checked_mul(10_i64.pow(exponent))
        .and_then(|m| m.checked_add(nanos / nanos_per_minor))
        .ok_or_else(|| ConvertError::Money {
            field: field.to_owned(),
            source: MoneyError::Overflow {
                value: format!("{units} units + {nanos} nanos"),
            },
        })?;
    Ok(Money::new(minor, currency))
}

/// Minor units → `google.type.Money`: the exact inverse of [`money`].
pub(crate) fn google_money(amount: Money) -> GoogleMoney {
    let exponent = amount.currency.exponent().min(9);
    let scale = 10_i64.pow(exponent);
    let units = amount.minor / scale;
    let nanos = (amount.minor % scale) * 10_i64.pow(9 - exponent);
    GoogleMoney {
        currency_code: amount.currency.code().to_owned(),
        units: Some(Int64::Text(units.to_string())),
        nanos: (nanos != 0).then_some(nanos),
    }
}

fn add(left: Money, right: Money, field: &str) -> Result<Money> {
    left.checked_add(right).map_err(at(field))
}

// ---------------------------------------------------------------------------------------
// Small readers
// ---------------------------------------------------------------------------------------

/// `Some(trimmed)` for a non-empty text, `None` for an absent or blank one.
fn text(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn timestamp(value: &str, field: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ConvertError::field(
                field,
                format!("`{}` is not an RFC 3339 time: {e}", clip(value)),
            )
        })
}

/// An ISO 8601 duration (`P0M`, `PT45M`, `P1DT2H`) as seconds. Years and months have no
/// fixed length, so only zero is accepted for them (`P0M` is Google's "as soon as
/// possible").
pub(crate) fn iso_duration(value: &str) -> Option<i64> {
    let rest = value.trim().strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut seconds: i64 = 0;
    let mut read = |part: &str, units: &[(char, Option<i64>)]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let position = units[next_unit..].iter().position(|(u, _)| *u == c)? + next_unit;
            next_unit = position + 1;
            let n: i64 = number.parse().ok()?;
            number.clear();
            match units[position].1 {
                Some(factor) => seconds = seconds.checked_add(n.checked_mul(factor)?)?,
                None if n == 0 => {}
                None => return None,
            }
        }
        number.is_empty().then_some(())
    };
    read(
        date,
        &[
            ('Y', None),
            ('M', None),
            ('W', Some(604_800)),
            ('D', Some(86_400)),
        ],
    )?;
    if let Some(time) = time {
        read(time, &[('H', Some(3600)), ('M', Some(60)), ('S', Some(1))])?;
    }
    Some(seconds)
}

/// When the customer wants the order: Google's `deliveryTimeIso8601` or
/// `pickupTimeIso8601`.
///
/// - A zero duration (`P0M`) is as soon as possible.
/// - An RFC 3339 instant is a scheduled order at that instant.
/// - A window `start/end` of instants is scheduled at its start.
/// - A non-zero duration is read as "this long after the order was placed" (assumed; the
///   documentation shows only `P0M` and instants).
fn timing(value: Option<&String>, placed_at: DateTime<Utc>, field: &str) -> Result<Timing> {
    let Some(value) = text(value) else {
        return Ok(Timing::Asap);
    };
    if value.starts_with('P') {
        let seconds = iso_duration(&value).ok_or_else(|| {
            ConvertError::field(
                field,
                format!("`{}` is not an ISO 8601 duration", clip(&value)),
            )
        })?;
        if seconds == 0 {
            return Ok(Timing::Asap);
        }
        let at = TimeDelta::try_seconds(seconds)
            .and_then(|delta| placed_at.checked_add_signed(delta))
            .ok_or_else(|| {
                ConvertError::field(field, format!("`{}` is out of range", clip(&value)))
            })?;
        return Ok(Timing::Scheduled { at });
    }
    let start = value
        .split_once('/')
        .map_or(value.as_str(), |(start, _)| start);
    Ok(Timing::Scheduled {
        at: timestamp(start, field)?,
    })
}

// ---------------------------------------------------------------------------------------
// Carts and orders
// ---------------------------------------------------------------------------------------

/// What a cart says, converted: the parts shared by checkout and submit.
struct CartParts {
    currency: Currency,
    store_ref: Option<String>,
    kind: FulfillmentKind,
    timing_value: Option<String>,
    address: Option<Address>,
    customer: Customer,
    notes: Option<String>,
    lines: Vec<Line>,
}

/// The currency of a cart: that of its first priced line (Google prices a cart in one
/// currency).
fn cart_currency(cart: &Cart, field: &str) -> Result<Currency> {
    let first = cart
        .line_items
        .iter()
        .enumerate()
        .find_map(|(i, item)| item.price.as_ref().map(|p| (i, p)));
    match first {
        Some((i, price)) => Currency::parse(price.amount.currency_code.trim()).map_err(at(
            &format!("{field}.lineItems[{i}].price.amount.currencyCode"),
        )),
        None => Err(ConvertError::field(
            format!("{field}.lineItems"),
            "the cart has no priced line item",
        )),
    }
}

fn cart_parts(cart: &Cart, field: &str) -> Result<CartParts> {
    let currency = cart_currency(cart, field)?;
    let store_ref = cart.merchant.as_ref().and_then(|m| text(Some(&m.id)));
    if store_ref.is_none() {
        return Err(ConvertError::field(
            format!("{field}.merchant.id"),
            "the cart names no merchant",
        ));
    }
    let extension = cart.extension.as_ref();
    let info: Option<&FulfillmentInfo> = extension
        .and_then(|e| e.fulfillment_preference.as_ref())
        .and_then(|p| p.fulfillment_info.as_ref());
    let info_field = format!("{field}.extension.fulfillmentPreference.fulfillmentInfo");
    let (kind, timing_value) = match info {
        Some(FulfillmentInfo {
            delivery: Some(delivery),
            ..
        }) => (
            FulfillmentKind::Delivery,
            delivery.delivery_time_iso8601.clone(),
        ),
        Some(FulfillmentInfo {
            pickup: Some(pickup),
            ..
        }) => (FulfillmentKind::Pickup, pickup.pickup_time_iso8601.clone()),
        _ => {
            return Err(ConvertError::field(
                info_field,
                "neither `delivery` nor `pickup` is chosen",
            ));
        }
    };
    let address = match (kind, extension.and_then(|e| e.location.as_ref())) {
        (FulfillmentKind::Delivery, Some(location)) => Some(address(location)),
        _ => None,
    };
    let customer = customer(extension.and_then(|e| e.contact.as_ref()));
    let lines = cart
        .line_items
        .iter()
        .enumerate()
        .map(|(i, item)| line(item, currency, &format!("{field}.lineItems[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(CartParts {
        currency,
        store_ref,
        kind,
        timing_value,
        address,
        customer,
        notes: text(cart.notes.as_ref()),
        lines,
    })
}

/// The delivery location: `postalAddress.addressLines` (else the formatted address) as
/// lines, `locality`/`postalCode`/`regionCode` (else the legacy `city`/`zipCode`), WGS 84
/// coordinates, and the location's `notes` as the courier's instructions. The
/// `administrativeArea` (state, county) is not kept: the unified address has no field for
/// it and the lines and postcode already place the address.
fn address(location: &Location) -> Address {
    let postal = location.postal_address.as_ref();
    let mut lines: Vec<String> = postal
        .map(|p| {
            p.address_lines
                .iter()
                .filter_map(|l| text(Some(l)))
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        lines.extend(text(location.formatted_address.as_ref()));
    }
    Address {
        lines,
        city: postal
            .and_then(|p| text(p.locality.as_ref()))
            .or_else(|| text(location.city.as_ref())),
        postcode: postal
            .and_then(|p| text(p.postal_code.as_ref()))
            .or_else(|| text(location.zip_code.as_ref())),
        country: postal.and_then(|p| text(p.region_code.as_ref())),
        coordinates: location.coordinates.map(|c| Coordinates {
            lat: c.latitude,
            lng: c.longitude,
            system: CoordSystem::Wgs84,
        }),
        instructions: text(location.notes.as_ref()),
    }
}

/// The customer as staff should see them: `displayName`, else first and last name.
fn customer(contact: Option<&Contact>) -> Customer {
    let Some(contact) = contact else {
        return Customer::default();
    };
    let name = text(contact.display_name.as_ref()).unwrap_or_else(|| {
        [
            text(contact.first_name.as_ref()),
            text(contact.last_name.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
    });
    Customer {
        name,
        phone: text(contact.phone_number.as_ref()),
        phone_pin: None,
        email: text(contact.email.as_ref()),
    }
}

/// One cart line.
///
/// - `price` is the price of the **whole line** (Google's mapping guide prices a line as
///   quantity × unit price, and the sample with quantity 2 matches `SUBTOTAL`); it is the
///   line total. The unit price without options is derived from it:
///   `price / quantity − Σ option (unit with sub-options) × quantity`, and a line total
///   that does not divide by the quantity is refused rather than rounded.
/// - The line `id` is the menu item id, which the chain's menu feed sets to its PLU; the
///   channel's item id is the `offerId` (the id Google matches the menu feed on), else
///   the line id.
/// - Options (`FoodItemExtension.options`, recursively `subOptions`) are modifiers with
///   their unit `price` and their `quantity` per one of their parent (absent means 1).
///   Google names no option group. An option's `note` joins the item's note.
fn line(item: &LineItem, currency: Currency, field: &str) -> Result<Line> {
    let id = text(item.id.as_ref())
        .ok_or_else(|| ConvertError::field(format!("{field}.id"), "the line has no id"))?;
    let name = text(item.name.as_ref())
        .ok_or_else(|| ConvertError::field(format!("{field}.name"), "the line has no name"))?;
    let quantity = item.quantity.ok_or_else(|| {
        ConvertError::field(format!("{field}.quantity"), "the line has no quantity")
    })?;
    let price = item
        .price
        .as_ref()
        .ok_or_else(|| ConvertError::field(format!("{field}.price"), "the line has no price"))?;
    let total_field = format!("{field}.price.amount");
    let total = money(&price.amount, &total_field)?;
    let extension = item.extension.as_ref();
    let options = extension.map(|e| e.options.as_slice()).unwrap_or_default();
    let mut notes: Vec<String> = extension
        .and_then(|e| text(e.note.as_ref()))
        .into_iter()
        .collect();
    let modifiers = options
        .iter()
        .enumerate()
        .map(|(i, option)| {
            modifier(
                option,
                currency,
                &format!("{field}.extension.options[{i}]"),
                &mut notes,
            )
        })
        .collect::<Result<Vec<_>>>()?;

    let mut options_per_unit = Money::zero(total.currency);
    for (i, modifier) in modifiers.iter().enumerate() {
        let option_field = format!("{field}.extension.options[{i}]");
        let each = unit_with_children(modifier, &option_field)?;
        options_per_unit = add(
            options_per_unit,
            each.checked_mul(modifier.quantity)
                .map_err(at(&option_field))?,
            &option_field,
        )?;
    }
    let unit_price = if quantity > 0 {
        if total.minor % quantity != 0 {
            return Err(ConvertError::field(
                total_field,
                format!(
                    "the line total {total} does not divide by the quantity {quantity}; \
                     no whole unit price"
                ),
            ));
        }
        Money::new(total.minor / quantity, total.currency)
            .checked_sub(options_per_unit)
            .map_err(at(&total_field))?
    } else {
        // The order check refuses the quantity with its own message.
        Money::zero(total.currency)
    };
    Ok(Line {
        channel_item_id: text(item.offer_id.as_ref()).unwrap_or_else(|| id.clone()),
        plu: Some(id),
        name,
        quantity,
        unit_price,
        total,
        notes: (!notes.is_empty()).then(|| notes.join("; ")),
        modifiers,
    })
}

/// One of a modifier with its own nested modifiers.
fn unit_with_children(modifier: &Modifier, field: &str) -> Result<Money> {
    let mut sum = modifier.unit_price;
    for (i, child) in modifier.modifiers.iter().enumerate() {
        let child_field = format!("{field}.subOptions[{i}]");
        let each = unit_with_children(child, &child_field)?;
        sum = add(
            sum,
            each.checked_mul(child.quantity).map_err(at(&child_field))?,
            &child_field,
        )?;
    }
    Ok(sum)
}

fn modifier(
    option: &FoodItemOption,
    currency: Currency,
    field: &str,
    notes: &mut Vec<String>,
) -> Result<Modifier> {
    let name = text(option.name.as_ref())
        .ok_or_else(|| ConvertError::field(format!("{field}.name"), "the option has no name"))?;
    if let Some(note) = text(option.note.as_ref()) {
        notes.push(format!("{name}: {note}"));
    }
    let unit_price = match &option.price {
        Some(price) => money(price, &format!("{field}.price"))?,
        None => Money::zero(currency),
    };
    let modifiers = option
        .sub_options
        .iter()
        .enumerate()
        .map(|(i, sub)| modifier(sub, currency, &format!("{field}.subOptions[{i}]"), notes))
        .collect::<Result<Vec<_>>>()?;
    let id = text(option.id.as_ref());
    Ok(Modifier {
        group: None,
        name,
        channel_item_id: text(option.offer_id.as_ref()).or_else(|| id.clone()),
        plu: id,
        quantity: option.quantity.unwrap_or(1),
        unit_price,
        removed: false,
        modifiers,
    })
}

/// Google's typed money lines (`otherItems`) summed by kind.
struct Adjustments {
    subtotal: Option<Money>,
    delivery: Money,
    service: Money,
    small_order: Money,
    packaging: Money,
    other_fees: Money,
    tax: Money,
    tip: Money,
    discounts: Vec<Discount>,
}

/// Reads `otherItems`:
///
/// - `SUBTOTAL` is the subtotal, `TAX` the tax, `DELIVERY` the delivery fee, `GRATUITY`
///   the tip; several lines of one kind add up.
/// - `DISCOUNT` lines are discounts, kept positive whatever sign Google used, each under
///   its own name. Google's order says nothing of who funds one: `unknown`.
/// - `FEE` lines go to `fees.other`, except that a name saying "service", "small order" or
///   "bag"/"packaging" files the fee under that kind (assumed; Google has one fee type).
/// - Any other type is skipped with a warning; the order check then flags the totals.
fn adjustments(items: &[LineItem], currency: Currency, field: &str) -> Result<Adjustments> {
    let zero = Money::zero(currency);
    let mut out = Adjustments {
        subtotal: None,
        delivery: zero,
        service: zero,
        small_order: zero,
        packaging: zero,
        other_fees: zero,
        tax: zero,
        tip: zero,
        discounts: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        let kind = item
            .kind
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        let Some(price) = item.price.as_ref() else {
            return Err(ConvertError::field(
                format!("{item_field}.price"),
                format!("the {kind} line has no price"),
            ));
        };
        let price_field = format!("{item_field}.price.amount");
        let amount = money(&price.amount, &price_field)?;
        let name = text(item.name.as_ref()).unwrap_or_default();
        let lower = name.to_lowercase();
        let slot = match kind.as_str() {
            "SUBTOTAL" => {
                out.subtotal = Some(match out.subtotal {
                    Some(sum) => add(sum, amount, &price_field)?,
                    None => amount,
                });
                continue;
            }
            "DISCOUNT" => {
                out.discounts.push(Discount {
                    label: if name.is_empty() {
                        DISCOUNT_LABEL.to_owned()
                    } else {
                        name
                    },
                    amount: Money::new(amount.minor.saturating_abs(), amount.currency),
                    funded_by: FundedBy::Unknown,
                });
                continue;
            }
            "DELIVERY" => &mut out.delivery,
            "TAX" => &mut out.tax,
            "GRATUITY" => &mut out.tip,
            "FEE" if lower.contains("service") => &mut out.service,
            "FEE" if lower.contains("small order") => &mut out.small_order,
            "FEE" if lower.contains("bag") || lower.contains("packag") => &mut out.packaging,
            "FEE" => &mut out.other_fees,
            other => {
                tracing::warn!(
                    channel = crate::CHANNEL_ID,
                    field = %item_field,
                    kind = %clip(other),
                    "Google money line of an unknown type skipped."
                );
                continue;
            }
        };
        *slot = add(*slot, amount, &price_field)?;
    }
    Ok(out)
}

fn lines_total(lines: &[Line], currency: Currency) -> Result<Money> {
    let mut sum = Money::zero(currency);
    for (i, line) in lines.iter().enumerate() {
        sum = add(sum, line.total, &format!("lineItems[{i}].price.amount"))?;
    }
    Ok(sum)
}

/// The short code staff read out and the customer sees on Google's receipt
/// (`userVisibleOrderId`): `G-` and the last six characters of Google's order id. Google
/// sends no short code of its own.
pub fn display_code(google_order_id: &str) -> String {
    let alnum: Vec<char> = google_order_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let tail: String = alnum[alnum.len().saturating_sub(6)..].iter().collect();
    format!("G-{}", tail.to_ascii_uppercase())
}

/// `channel_data` of a Google order: whether it is a sandbox order (echoed on every
/// asynchronous update).
pub(crate) fn channel_data(is_in_sandbox: bool) -> serde_json::Value {
    serde_json::json!({ "is_in_sandbox": is_in_sandbox })
}

/// A submitted order (`SubmitOrderRequestMessage`) → the unified order.
///
/// - `googleOrderId` is the external id; `orderDate` the time placed.
/// - Google has no couriers: a delivery order is delivered by the store (Google's
///   partner), so it needs its address.
/// - `paymentInfo.paymentType`: `PREPAID` is paid through Google; `ON_FULFILLMENT` is
///   paid at the door (cash on delivery) or at the store (pickup), the total being what to
///   collect.
/// - Money: `SUBTOTAL`, `TAX`, `DELIVERY`, `FEE`, `DISCOUNT`, `GRATUITY` of `otherItems`
///   as given; the total is `totalPrice`. A missing `SUBTOTAL` is the sum of the lines;
///   a missing `totalPrice` is derived from the parts and flagged so.
pub(crate) fn submitted(
    channel: &ChannelId,
    order: &GoogleOrder,
    context: Context,
    field: &str,
) -> Result<NewOrder> {
    let Context {
        is_in_sandbox,
        received_at,
    } = context;
    let external_order_id = text(Some(&order.google_order_id)).ok_or_else(|| {
        ConvertError::field(format!("{field}.googleOrderId"), "the order has no id")
    })?;
    let placed_at = match order.order_date.as_ref() {
        Some(date) => timestamp(date, &format!("{field}.orderDate"))?,
        None => received_at,
    };
    let final_order = &order.final_order;
    let cart_field = format!("{field}.finalOrder.cart");
    let parts = cart_parts(&final_order.cart, &cart_field)?;
    let currency = parts.currency;
    let timing = timing(
        parts.timing_value.as_ref(),
        placed_at,
        &format!("{cart_field}.extension.fulfillmentPreference.fulfillmentInfo"),
    )?;
    let adjustments = adjustments(
        &final_order.other_items,
        currency,
        &format!("{field}.finalOrder.otherItems"),
    )?;
    let subtotal = match adjustments.subtotal {
        Some(subtotal) => subtotal,
        None => lines_total(&parts.lines, currency)?,
    };
    let mut totals = Totals {
        currency,
        subtotal,
        discounts: adjustments.discounts,
        tax: adjustments.tax,
        tax_included: false,
        fees: Fees {
            delivery: adjustments.delivery,
            service: adjustments.service,
            small_order: adjustments.small_order,
            packaging: adjustments.packaging,
            other: adjustments.other_fees,
        },
        tip: adjustments.tip,
        total: Money::zero(currency),
        cash_due: None,
        total_is_derived: false,
    };
    match final_order.total_price.as_ref() {
        Some(price) => {
            totals.total = money(
                &price.amount,
                &format!("{field}.finalOrder.totalPrice.amount"),
            )?;
        }
        None => {
            totals.total = totals
                .expected_total()
                .map_err(at(&format!("{field}.finalOrder.totalPrice")))?;
            totals.total_is_derived = true;
        }
    }
    let payment_type = order
        .payment_info
        .as_ref()
        .and_then(|p| text(p.payment_type.as_ref()))
        .unwrap_or_else(|| "PREPAID".to_owned());
    let payment = match payment_type.as_str() {
        "PREPAID" => Payment::Prepaid,
        "ON_FULFILLMENT" if parts.kind == FulfillmentKind::Delivery => Payment::CashOnDelivery,
        "ON_FULFILLMENT" => Payment::PayAtStore,
        other => {
            return Err(ConvertError::field(
                format!("{field}.paymentInfo.paymentType"),
                format!("unknown payment type `{}`", clip(other)),
            ));
        }
    };
    if payment != Payment::Prepaid {
        totals.cash_due = Some(totals.total);
    }
    let promised_at = match timing {
        Timing::Scheduled { at } => Some(at),
        Timing::Asap => None,
    };
    Ok(NewOrder {
        channel: channel.clone(),
        display_code: Some(display_code(&external_order_id)),
        external_order_id,
        channel_store_ref: parts.store_ref,
        brand: None,
        platform_brand: None,
        placed_at,
        fulfillment: Fulfillment {
            kind: parts.kind,
            delivered_by: (parts.kind == FulfillmentKind::Delivery).then_some(DeliveredBy::Store),
            address: parts.address,
            timing,
            promised_at,
            accept_by: None,
        },
        customer: parts.customer,
        notes: parts.notes,
        lines: parts.lines,
        totals,
        payment,
        channel_data: channel_data(is_in_sandbox),
    })
}

/// What the request says beyond its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Context {
    /// `isInSandbox` of the request.
    pub is_in_sandbox: bool,
    /// When the hub received the request (the time of a checkout; `orderDate` fallback).
    pub received_at: DateTime<Utc>,
}

/// The chain's prices for a checkout in one currency: what we add to the cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pricing {
    /// Delivery fee of a delivery order.
    pub delivery_fee: Option<Money>,
    /// Sales tax as a percentage of the subtotal (`8.875`), rounded half away from zero
    /// to the minor unit.
    pub tax_rate_percent: Option<Decimal>,
}

/// Tax on `subtotal` at `rate` percent, rounded half away from zero to the minor unit.
pub(crate) fn tax_on(subtotal: Money, rate: Decimal) -> Result<Money> {
    let tax = (Decimal::from(subtotal.minor) * rate / Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let minor = tax.to_i64().ok_or_else(|| ConvertError::Money {
        field: "tax".to_owned(),
        source: MoneyError::Overflow {
            value: tax.to_string(),
        },
    })?;
    Ok(Money::new(minor, subtotal.currency))
}

/// A checkout cart (`CheckoutRequestMessage`) → the order it would become, priced as we
/// answer it: subtotal = Σ line totals, the configured delivery fee (delivery orders) and
/// tax rate, the customer's gratuity from the cart's `otherItems`; the total is derived.
/// The cart has no order id yet: the quote's id is `checkout:` and the conversation id
/// (or the cart id). `pays_on_fulfillment`: the payment we offer is Google's
/// `ON_FULFILLMENT` (so the order would be paid at the door or the counter).
pub(crate) fn checkout(
    channel: &ChannelId,
    cart: &Cart,
    quote_id: &str,
    pricing: impl Fn(Currency) -> Pricing,
    pays_on_fulfillment: bool,
    context: Context,
    field: &str,
) -> Result<NewOrder> {
    let Context {
        is_in_sandbox,
        received_at,
    } = context;
    let parts = cart_parts(cart, field)?;
    let currency = parts.currency;
    let timing = timing(
        parts.timing_value.as_ref(),
        received_at,
        &format!("{field}.extension.fulfillmentPreference.fulfillmentInfo"),
    )?;
    let adjustments = adjustments(&cart.other_items, currency, &format!("{field}.otherItems"))?;
    let subtotal = lines_total(&parts.lines, currency)?;
    let pricing = pricing(currency);
    let delivery = match (parts.kind, pricing.delivery_fee) {
        (FulfillmentKind::Delivery, Some(fee)) => fee,
        _ => Money::zero(currency),
    };
    let tax = match pricing.tax_rate_percent {
        Some(rate) => tax_on(subtotal, rate)?,
        None => Money::zero(currency),
    };
    let mut totals = Totals {
        currency,
        subtotal,
        discounts: Vec::new(),
        tax,
        tax_included: false,
        fees: Fees {
            delivery,
            ..Fees::zero(currency)
        },
        tip: adjustments.tip,
        total: Money::zero(currency),
        cash_due: None,
        total_is_derived: true,
    };
    totals.total = totals.expected_total().map_err(at("total"))?;
    let payment = match (pays_on_fulfillment, parts.kind) {
        (false, _) => Payment::Prepaid,
        (true, FulfillmentKind::Delivery) => Payment::CashOnDelivery,
        (true, _) => Payment::PayAtStore,
    };
    if payment != Payment::Prepaid {
        totals.cash_due = Some(totals.total);
    }
    let promised_at = match timing {
        Timing::Scheduled { at } => Some(at),
        Timing::Asap => None,
    };
    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id: quote_id.to_owned(),
        display_code: None,
        channel_store_ref: parts.store_ref,
        brand: None,
        platform_brand: None,
        placed_at: received_at,
        fulfillment: Fulfillment {
            kind: parts.kind,
            delivered_by: (parts.kind == FulfillmentKind::Delivery).then_some(DeliveredBy::Store),
            address: parts.address,
            timing,
            promised_at,
            accept_by: None,
        },
        customer: parts.customer,
        notes: parts.notes,
        lines: parts.lines,
        totals,
        payment,
        channel_data: channel_data(is_in_sandbox),
    })
}
