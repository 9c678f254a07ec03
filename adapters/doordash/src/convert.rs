//! DoorDash's order → the unified [`NewOrder`]. All money conversion of the adapter happens
//! here, and nowhere else.
//!
//! DoorDash sends integer cents and **no currency**: the caller passes the store's currency
//! (from the adapter's options). An amount that is not a whole number of minor units (a
//! `12.5` in a cents field) fails the order; it is never rounded.
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
use serde_json::{Map, Value, json};

use crate::wire::{
    Amount, AppliedDiscount, ConsumerId, Coordinate, DeliveryAddress, Extra, ExtraOption, Item,
    Order,
};

/// The acceptance window the hub plans with: DoorDash fails an order it has not seen
/// confirmed within "3–8 minutes"; the hub counts the conservative 3 from receipt
/// (CHANNELS.md §8.2).
pub(crate) const ACCEPT_WINDOW: TimeDelta = TimeDelta::minutes(3);

/// The label of a promotion that names neither a code nor a campaign.
pub(crate) const PROMOTION_LABEL: &str = "DoorDash promotion";

type Result<T> = std::result::Result<T, ConvertError>;

fn at(field: &str) -> impl FnOnce(MoneyError) -> ConvertError + '_ {
    ConvertError::money_at(field)
}

/// Minor units from DoorDash's amount. An integer is taken as it is; text (a JSON number
/// with a fraction or exponent, or a string) must be a whole number of minor units, written
/// in plain decimal (`"299"`, `350.0`); `12.5` cents is a fractional minor unit.
pub(crate) fn money(amount: &Amount, currency: Currency, field: &str) -> Result<Money> {
    let text = match amount {
        Amount::Whole(minor) => return Ok(Money::new(*minor, currency)),
        Amount::Text(text) => text.as_str(),
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(ConvertError::Money {
            field: field.to_owned(),
            source: MoneyError::NotANumber {
                value: text.to_owned(),
            },
        });
    }
    if fraction.bytes().any(|b| b != b'0') {
        return Err(ConvertError::Money {
            field: field.to_owned(),
            source: MoneyError::FractionalMinorUnit {
                value: format!("{text} (minor units)"),
                currency,
                exponent: currency.exponent(),
            },
        });
    }
    let minor = whole.parse::<i64>().map_err(|_| ConvertError::Money {
        field: field.to_owned(),
        source: MoneyError::Overflow {
            value: text.to_owned(),
        },
    })?;
    Ok(Money::new(if negative { -minor } else { minor }, currency))
}

fn money_or_zero(amount: Option<&Amount>, currency: Currency, field: &str) -> Result<Money> {
    amount.map_or(Ok(Money::zero(currency)), |a| money(a, currency, field))
}

fn add(left: Money, right: Money, field: &str) -> Result<Money> {
    left.checked_add(right).map_err(at(field))
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

/// `Some(trimmed)` for a non-empty text, `None` for an absent or blank one.
fn text(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Who fulfils the order. `fulfillment_type` decides (`dx_delivery`: a Dasher delivers;
/// `mx_fleet_delivery`, or `mx_delivery` as the self-delivery sample spells it: the store
/// delivers; `pickup`); without it, or with a value this adapter does not know, `is_pickup`
/// decides, and a delivery is the store's when DoorDash sent the address (it sends it only
/// for self-delivery), a Dasher's otherwise.
fn fulfillment_kind(order: &Order) -> Result<(FulfillmentKind, Option<DeliveredBy>)> {
    match order.fulfillment_type.as_deref().map(str::trim) {
        Some("dx_delivery") => return Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Platform))),
        Some("mx_fleet_delivery" | "mx_delivery") => {
            return Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Store)));
        }
        Some("pickup") => return Ok((FulfillmentKind::Pickup, None)),
        _ => {}
    }
    match order.is_pickup {
        Some(true) => Ok((FulfillmentKind::Pickup, None)),
        Some(false) if order.delivery_address.is_some() => {
            Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Store)))
        }
        Some(false) => Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Platform))),
        None => Err(ConvertError::field(
            "order.fulfillment_type",
            match &order.fulfillment_type {
                Some(other) => format!(
                    "unknown value `{}` and no `is_pickup` to fall back on",
                    clip(other)
                ),
                None => "missing, and `is_pickup` is missing too".to_owned(),
            },
        )),
    }
}

fn coordinate(value: &Coordinate, field: &str) -> Result<f64> {
    match value {
        Coordinate::Number(number) => Ok(*number),
        Coordinate::Text(text) => text.trim().parse::<f64>().map_err(|_| {
            ConvertError::field(field, format!("`{}` is not a coordinate", clip(text)))
        }),
    }
}

/// DoorDash's delivery address. `street` then `subpremise` are the lines; the state follows
/// the city (`New York, NY`: the unified address has no state field); `lat`/`lng` are
/// strings, parsed as WGS 84 degrees (a blank pair means no coordinates).
fn address(address: &DeliveryAddress) -> Result<Address> {
    let lines = [
        text(address.street.as_ref()),
        text(address.subpremise.as_ref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let city = match (text(address.city.as_ref()), text(address.state.as_ref())) {
        (Some(city), Some(state)) => Some(format!("{city}, {state}")),
        (city, state) => city.or(state),
    };
    let present = |c: &Option<Coordinate>| {
        c.clone()
            .filter(|c| !matches!(c, Coordinate::Text(t) if t.trim().is_empty()))
    };
    let coordinates = match (present(&address.lat), present(&address.lng)) {
        (None, None) => None,
        (Some(lat), Some(lng)) => Some(Coordinates {
            lat: coordinate(&lat, "order.delivery_address.lat")?,
            lng: coordinate(&lng, "order.delivery_address.lng")?,
            system: CoordSystem::Wgs84,
        }),
        _ => {
            return Err(ConvertError::field(
                "order.delivery_address",
                "has only one of `lat` and `lng`",
            ));
        }
    };
    Ok(Address {
        lines,
        city,
        postcode: text(address.zip_code.as_ref()),
        country: text(address.country_code.as_ref()),
        coordinates,
        instructions: text(address.address_instructions.as_ref()),
    })
}

/// The groups of an item or an option: `extras`, then `extra` (one official sample spells
/// it so); both are read when both are present.
fn groups<'a>(extras: &'a Option<Vec<Extra>>, extra: &'a Option<Vec<Extra>>) -> Vec<&'a Extra> {
    extras.iter().chain(extra.iter()).flatten().collect()
}

/// Options of the groups, recursively. An option's `quantity` defaults to 1 and its
/// `price` to 0 when absent; the price is per one of the option, for one of the item it
/// belongs to (CHANNELS.md §9 lists this as an open question).
fn modifiers(groups: &[&Extra], currency: Currency, field: &str) -> Result<Vec<Modifier>> {
    let mut modifiers = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for (o, option) in group.options.iter().flatten().enumerate() {
            let option_field = format!("{field}.extras[{g}].options[{o}]");
            modifiers.push(modifier(
                option,
                text(group.name.as_ref()),
                currency,
                &option_field,
            )?);
        }
    }
    Ok(modifiers)
}

fn modifier(
    option: &ExtraOption,
    group: Option<String>,
    currency: Currency,
    field: &str,
) -> Result<Modifier> {
    Ok(Modifier {
        group,
        name: option.name.clone(),
        channel_item_id: text(option.line_option_id.as_ref()),
        plu: text(option.merchant_supplied_id.as_ref()),
        quantity: option.quantity.unwrap_or(1),
        unit_price: money_or_zero(option.price.as_ref(), currency, &format!("{field}.price"))?,
        removed: false,
        modifiers: modifiers(&groups(&option.extras, &option.extra), currency, field)?,
    })
}

/// A top-level line. DoorDash sends no line total, so it is computed,
/// `(price + Σ option price × quantity) × quantity` (CHANNELS.md §8.3). The line's id is
/// DoorDash's `line_item_id` where sent (what adjustments refer to), else the item's
/// `merchant_supplied_id`, else its place in the payload.
fn line(item: &Item, currency: Currency, field: &str) -> Result<Line> {
    let mut line = Line {
        channel_item_id: text(item.line_item_id.as_ref())
            .or_else(|| text(item.merchant_supplied_id.as_ref()))
            .unwrap_or_else(|| field.trim_start_matches("order.").to_owned()),
        plu: text(item.merchant_supplied_id.as_ref()),
        name: item.name.clone(),
        quantity: item.quantity,
        unit_price: money(&item.price, currency, &format!("{field}.price"))?,
        total: Money::zero(currency),
        notes: text(item.special_instructions.as_ref()),
        modifiers: modifiers(&groups(&item.extras, &item.extra), currency, field)?,
    };
    line.total = line.computed_total().map_err(at(field))?;
    Ok(line)
}

/// One promotion as unified discounts (positive amounts). A co-funded promotion is split
/// into its merchant-funded and DoorDash-funded parts; whatever `total_discount_amount`
/// holds beyond the two parts (all of it when neither part is sent) is a discount of
/// unknown funding. The label is the promo code, else the campaign, else the promo id.
fn discounts_of(
    promotion: &AppliedDiscount,
    about: Option<&str>,
    currency: Currency,
    field: &str,
) -> Result<Vec<Discount>> {
    let amount = |value: &Option<Amount>, name: &str| -> Result<Money> {
        let money = money_or_zero(value.as_ref(), currency, &format!("{field}.{name}"))?;
        Ok(Money::new(money.minor.saturating_abs(), currency))
    };
    let merchant = amount(
        &promotion.merchant_funded_discount_amount,
        "merchant_funded_discount_amount",
    )?;
    let doordash = amount(
        &promotion.doordash_funded_discount_amount,
        "doordash_funded_discount_amount",
    )?;
    let total = amount(&promotion.total_discount_amount, "total_discount_amount")?;
    let name = text(promotion.promo_code.as_ref())
        .or_else(|| text(promotion.external_campaign_id.as_ref()))
        .or_else(|| text(promotion.promo_id.as_ref()))
        .unwrap_or_else(|| PROMOTION_LABEL.to_owned());
    let label = match about {
        Some(item) => format!("{name} ({item})"),
        None => name,
    };
    let parts = add(merchant, doordash, field)?;
    let rest = total.checked_sub(parts).map_err(at(field))?;
    let mut discounts = Vec::new();
    for (amount, funded_by) in [
        (merchant, FundedBy::Merchant),
        (doordash, FundedBy::Platform),
        (rest, FundedBy::Unknown),
    ] {
        if amount.minor > 0 {
            discounts.push(Discount {
                label: label.clone(),
                amount,
                funded_by,
            });
        }
    }
    Ok(discounts)
}

/// What the adapter keeps for later and for people, beyond the unified fields.
fn channel_data(order: &Order, event_status: Option<&str>) -> Value {
    let mut data = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            data.insert(key.to_owned(), value);
        }
    };
    put("event_status", json!(event_status));
    put("fulfillment_type", json!(order.fulfillment_type));
    put(
        "consumer_id",
        match order.consumer.as_ref().and_then(|c| c.id.as_ref()) {
            Some(ConsumerId::Exact(id)) => json!(id),
            Some(ConsumerId::Unreadable) | None => Value::Null,
        },
    );
    put("provider_type", json!(order.store.provider_type));
    put("store_timezone", json!(order.store.timezone));
    put("commission_type", json!(order.commission_type));
    put(
        "is_tax_remitted_by_doordash",
        json!(order.is_tax_remitted_by_doordash),
    );
    put(
        "tax_amount_remitted_by_doordash",
        match &order.tax_amount_remitted_by_doordash {
            Some(Amount::Whole(cents)) => json!(cents),
            Some(Amount::Text(text)) => json!(text),
            None => Value::Null,
        },
    );
    put("tax_transaction_id", json!(order.tax_transaction_id));
    put("cutlery", json!(order.is_plastic_ware_option_selected));
    Value::Object(data)
}

/// Converts DoorDash's order, received at `received_at`, in the store's `currency`.
///
/// - `placed_at` is the receipt time: DoorDash's order carries no creation time and pushes
///   the order when it is placed (or, for a scheduled order, when it releases it).
/// - An order with `is_asap: false` is scheduled for its `estimated_pickup_time`; DoorDash
///   otherwise holds scheduled orders back and sends them as ASAP orders.
/// - `promised_at` is `estimated_pickup_time` (when the Dasher comes for the food).
/// - Totals follow §10 (subtotal as sent; no total is sent, so it is derived and flagged
///   `total_is_derived`); see [`totals`].
pub(crate) fn order(
    channel: &ChannelId,
    order: &Order,
    event_status: Option<&str>,
    currency: Currency,
    received_at: DateTime<Utc>,
) -> Result<NewOrder> {
    if order.id.trim().is_empty() {
        return Err(ConvertError::field("order.id", "is empty"));
    }
    let store_ref = text(Some(&order.store.merchant_supplied_id))
        .ok_or_else(|| ConvertError::field("order.store.merchant_supplied_id", "is empty"))?;
    let (kind, delivered_by) = fulfillment_kind(order)?;
    let address = match (&order.delivery_address, kind) {
        (Some(wire), FulfillmentKind::Delivery) => Some(address(wire)?),
        _ => None,
    };
    let promised_at = order
        .estimated_pickup_time
        .as_ref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| timestamp(t, "order.estimated_pickup_time"))
        .transpose()?;
    let timing = match order.is_asap {
        Some(false) => Timing::Scheduled {
            at: promised_at.ok_or_else(|| {
                ConvertError::field(
                    "order.estimated_pickup_time",
                    "a scheduled order (`is_asap: false`) needs its pickup time",
                )
            })?,
        },
        _ => Timing::Asap,
    };

    let consumer = order.consumer.as_ref();
    let customer = Customer {
        name: [
            consumer.and_then(|c| text(c.first_name.as_ref())),
            consumer.and_then(|c| text(c.last_name.as_ref())),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" "),
        phone: consumer.and_then(|c| text(c.phone.as_ref())),
        phone_pin: None,
        email: consumer.and_then(|c| text(c.email.as_ref())),
    };

    let mut lines = Vec::new();
    let mut discounts = Vec::new();
    for (c, category) in order.categories.iter().flatten().enumerate() {
        for (i, item) in category.items.iter().flatten().enumerate() {
            let field = format!("order.categories[{c}].items[{i}]");
            lines.push(line(item, currency, &field)?);
            for (p, promotion) in item
                .applied_item_discount_details
                .iter()
                .flatten()
                .enumerate()
            {
                discounts.extend(discounts_of(
                    promotion,
                    Some(&item.name),
                    currency,
                    &format!("{field}.applied_item_discount_details[{p}]"),
                )?);
            }
        }
    }
    for (p, promotion) in order.applied_discounts_details.iter().flatten().enumerate() {
        discounts.extend(discounts_of(
            promotion,
            None,
            currency,
            &format!("order.applied_discounts_details[{p}]"),
        )?);
    }

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id: order.id.clone(),
        display_code: text(order.delivery_short_code.as_ref()),
        channel_store_ref: Some(store_ref),
        brand: None,
        platform_brand: text(order.experience.as_ref()),
        placed_at: received_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing,
            promised_at,
            accept_by: Some(received_at + ACCEPT_WINDOW),
        },
        customer,
        notes: text(order.order_special_instructions.as_ref()),
        lines,
        totals: totals(order, discounts, currency)?,
        payment: Payment::Prepaid,
        channel_data: channel_data(order, event_status),
    })
}

/// DoorDash's money (CHANNELS.md §10): subtotal = `subtotal`; no total is sent, so
/// total = subtotal + tax + delivery_fee + taxes_on_fees + extra_cart_order_fee +
/// tip_amount (a missing amount is 0), flagged `total_is_derived`.
///
/// Where §10 is silent:
/// - tax = `tax` + `taxes_on_fees` (both are tax the customer paid);
/// - `delivery_fee` is the delivery fee, `extra_cart_order_fee` an "other" fee;
/// - tip = `tip_amount` (self-delivery) + `merchant_tip_amount` (tips for the staff,
///   pickup orders), and the derived total includes both;
/// - promotions (`applied_discounts_details`, `applied_item_discount_details`) are
///   discounts, and the derived total subtracts them (the subtotal is before discounts).
///
/// So the derived total is exactly `Totals::expected_total`; the hub's reconciliation can
/// still flag a subtotal that the lines do not add up to.
fn totals(order: &Order, discounts: Vec<Discount>, currency: Currency) -> Result<Totals> {
    let or_zero =
        |amount: &Option<Amount>, field: &str| money_or_zero(amount.as_ref(), currency, field);
    let subtotal = money(&order.subtotal, currency, "order.subtotal")?;
    let tax = add(
        or_zero(&order.tax, "order.tax")?,
        or_zero(&order.taxes_on_fees, "order.taxes_on_fees")?,
        "order.taxes_on_fees",
    )?;
    let delivery = or_zero(&order.delivery_fee, "order.delivery_fee")?;
    let other = or_zero(&order.extra_cart_order_fee, "order.extra_cart_order_fee")?;
    let tip = add(
        or_zero(&order.tip_amount, "order.tip_amount")?,
        or_zero(&order.merchant_tip_amount, "order.merchant_tip_amount")?,
        "order.merchant_tip_amount",
    )?;
    let mut totals = Totals {
        currency,
        subtotal,
        discounts,
        tax,
        tax_included: false,
        fees: Fees {
            delivery,
            other,
            ..Fees::zero(currency)
        },
        tip,
        total: Money::zero(currency),
        cash_due: None,
        total_is_derived: true,
    };
    totals.total = totals
        .expected_total()
        .map_err(at("order (derived total)"))?;
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").expect("USD")
    }

    #[test]
    fn whole_cents_are_kept_and_fractions_refused() {
        let text = |t: &str| Amount::Text(t.to_owned());
        assert_eq!(
            money(&Amount::Whole(1299), usd(), "f").map(|m| m.minor),
            Ok(1299)
        );
        assert_eq!(money(&text("350"), usd(), "f").map(|m| m.minor), Ok(350));
        assert_eq!(money(&text("350.00"), usd(), "f").map(|m| m.minor), Ok(350));
        assert_eq!(money(&text("-25"), usd(), "f").map(|m| m.minor), Ok(-25));
        let error = money(&text("12.5"), usd(), "order.tip_amount").expect_err("fraction");
        assert_eq!(
            crossdock_channel::ChannelError::from(error).to_string(),
            "unacceptable order: order.tip_amount: amount `12.5 (minor units)` has more \
             decimals than USD allows (2)"
        );
        assert!(matches!(
            money(&text("1e3"), usd(), "f"),
            Err(ConvertError::Money {
                source: MoneyError::NotANumber { .. },
                ..
            })
        ));
        assert!(matches!(
            money(&text("99999999999999999999"), usd(), "f"),
            Err(ConvertError::Money {
                source: MoneyError::Overflow { .. },
                ..
            })
        ));
        assert!(matches!(
            money(&text(""), usd(), "f"),
            Err(ConvertError::Money {
                source: MoneyError::NotANumber { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_co_funded_promotion_splits_and_the_rest_is_unknown() {
        let promotion = AppliedDiscount {
            promo_id: Some("p-1".to_owned()),
            promo_code: Some("SAVE5".to_owned()),
            external_campaign_id: None,
            total_discount_amount: Some(Amount::Whole(600)),
            merchant_funded_discount_amount: Some(Amount::Whole(200)),
            doordash_funded_discount_amount: Some(Amount::Whole(300)),
        };
        let discounts = discounts_of(&promotion, None, usd(), "d").expect("discounts");
        let got: Vec<(String, i64, FundedBy)> = discounts
            .iter()
            .map(|d| (d.label.clone(), d.amount.minor, d.funded_by))
            .collect();
        assert_eq!(
            got,
            vec![
                ("SAVE5".to_owned(), 200, FundedBy::Merchant),
                ("SAVE5".to_owned(), 300, FundedBy::Platform),
                ("SAVE5".to_owned(), 100, FundedBy::Unknown),
            ]
        );
        let bare = AppliedDiscount {
            promo_id: None,
            promo_code: None,
            external_campaign_id: None,
            total_discount_amount: Some(Amount::Whole(-150)),
            merchant_funded_discount_amount: None,
            doordash_funded_discount_amount: None,
        };
        let discounts = discounts_of(&bare, Some("Cola"), usd(), "d").expect("discounts");
        assert_eq!(discounts.len(), 1);
        assert_eq!(discounts[0].label, "DoorDash promotion (Cola)");
        assert_eq!(discounts[0].amount.minor, 150);
        assert_eq!(discounts[0].funded_by, FundedBy::Unknown);
    }
}
