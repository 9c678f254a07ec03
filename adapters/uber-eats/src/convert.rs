//! Uber's orders → the unified [`NewOrder`]. All money conversion of the adapter happens
//! here, and nowhere else:
//!
//! - classic API (`/v2/eats/order`): integer minor units, taken as they are;
//! - newer API (`/v1/delivery/order`): `amount_e5` (major × 10⁵), through
//!   [`Money::from_e5`]; an amount that does not land on a whole minor unit fails the
//!   order, it is never rounded.
//!
//! The rules follow CHANNELS.md §8 and §10. Where those sections are silent, the choice
//! made is stated on the function that makes it.

use crossdock_channel::convert::ConvertError;
use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, MoneyError, NewOrder, Payment,
    Timing, Totals,
};

use crate::Generation;
use crate::wire::{
    Allergy, ClassicCharges, ClassicEaterDelivery, ClassicItem, ClassicMoney, ClassicOrder,
    MoneyE5, V1Item, V1Order, V1OrderResponse, V1PaymentDetail, V1PriceBreakdown,
};

/// Uber's acceptance window: 11.5 minutes after the order is placed, then it
/// auto-cancels (CHANNELS.md §1.6).
pub(crate) const ACCEPT_WINDOW: TimeDelta = TimeDelta::seconds(690);

/// The label of the platform-funded discount taken from Uber's promotion totals.
pub(crate) const PROMOTION_LABEL: &str = "Uber Eats promotion";

type Result<T> = std::result::Result<T, ConvertError>;

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// Names the amount a money error is about.
fn at(field: &str) -> impl FnOnce(MoneyError) -> ConvertError + '_ {
    ConvertError::money_at(field)
}

fn currency(code: &str, field: &str) -> Result<Currency> {
    Currency::parse(code).map_err(at(field))
}

/// Classic money: integer minor units, as-is.
fn classic_money(money: &ClassicMoney, field: &str) -> Result<Money> {
    Ok(Money::new(
        money.amount,
        currency(&money.currency_code, field)?,
    ))
}

fn classic_money_or_zero(
    money: Option<&ClassicMoney>,
    field: &str,
    order_currency: Currency,
) -> Result<Money> {
    money.map_or(Ok(Money::zero(order_currency)), |m| classic_money(m, field))
}

/// New-API money: `amount_e5 / 10^(5 − exponent)`, exactly.
pub(crate) fn e5_money(money: &MoneyE5, field: &str) -> Result<Money> {
    let code = currency(&money.currency_code, field)?;
    Money::from_e5(money.amount_e5, code).map_err(at(field))
}

fn add(left: Money, right: Money, field: &str) -> Result<Money> {
    left.checked_add(right).map_err(at(field))
}

/// Uber's promotion total (either generation) as the one platform-funded discount, with a
/// positive amount whatever sign Uber used; none when it is zero.
fn promotion_discounts(promotion: Money) -> Vec<Discount> {
    if promotion.minor == 0 {
        return Vec::new();
    }
    vec![Discount {
        label: PROMOTION_LABEL.to_owned(),
        amount: Money::new(promotion.minor.saturating_abs(), promotion.currency),
        funded_by: FundedBy::Platform,
    }]
}

fn timestamp(value: &str, field: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ConvertError::field(field, format!("`{value}` is not an RFC 3339 time: {e}")))
}

fn optional_timestamp(value: Option<&String>, field: &str) -> Result<Option<DateTime<Utc>>> {
    value.map(|v| timestamp(v, field)).transpose()
}

/// `Some(trimmed)` for a non-empty text, `None` for an absent or blank one.
fn text(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn join_name(first: Option<&String>, last: Option<&String>) -> String {
    [text(first), text(last)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Item notes: the special instructions, then the allergy request, `; `-separated.
fn item_notes(special_instructions: Option<&String>, allergy: Option<&Allergy>) -> Option<String> {
    let mut parts: Vec<String> = text(special_instructions).into_iter().collect();
    if let Some(allergy) = allergy {
        let allergens: Vec<String> = allergy
            .allergens_to_exclude
            .iter()
            .flatten()
            .filter_map(|a| match a {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => {
                    o.get("type").and_then(|t| t.as_str()).map(str::to_owned)
                }
                _ => None,
            })
            .collect();
        if !allergens.is_empty() {
            parts.push(format!("Allergens to exclude: {}", allergens.join(", ")));
        }
        if let Some(instructions) = text(allergy.allergy_instructions.as_ref()) {
            parts.push(format!("Allergy: {instructions}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Fulfilment kind and deliverer from Uber's order type (classic `type`, new
/// `fulfillment_type`). Both generations' spellings are accepted.
fn fulfillment_kind(value: &str, field: &str) -> Result<(FulfillmentKind, Option<DeliveredBy>)> {
    match value {
        "DELIVERY_BY_UBER" => Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Platform))),
        "DELIVERY_BY_RESTAURANT" | "DELIVERY_BY_MERCHANT" => {
            Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Store)))
        }
        "PICK_UP" | "PICKUP" => Ok((FulfillmentKind::Pickup, None)),
        "DINE_IN" => Ok((FulfillmentKind::DineIn, None)),
        other => Err(ConvertError::field(
            field,
            format!("unknown order type `{}`", crossdock_channel::clip(other)),
        )),
    }
}

/// Cash to collect, if Uber says there is any, and the matching payment.
fn payment_for(cash_due: Option<Money>, kind: FulfillmentKind) -> (Payment, Option<Money>) {
    match cash_due.filter(|c| c.minor > 0) {
        None => (Payment::Prepaid, None),
        Some(cash) if kind == FulfillmentKind::Delivery => (Payment::CashOnDelivery, Some(cash)),
        Some(cash) => (Payment::PayAtStore, Some(cash)),
    }
}

fn channel_data(generation: Generation) -> serde_json::Value {
    serde_json::json!({ "api": generation.as_str() })
}

// ---------------------------------------------------------------------------------------
// Classic: GET /v2/eats/order/{id}
// ---------------------------------------------------------------------------------------

/// Converts a classic order. `scheduled` says the notification was
/// `orders.scheduled.notification`; the classic payload has no schedule field of its own,
/// so a scheduled order's time is its `estimated_ready_for_pickup_at`.
pub(crate) fn classic(
    channel: &ChannelId,
    order: &ClassicOrder,
    scheduled: bool,
) -> Result<NewOrder> {
    let charges = &order.payment.charges;
    let order_currency = currency(
        &charges.total.currency_code,
        "payment.charges.total.currency_code",
    )?;
    let placed_at = timestamp(&order.placed_at, "placed_at")?;
    let promised_at = optional_timestamp(
        order.estimated_ready_for_pickup_at.as_ref(),
        "estimated_ready_for_pickup_at",
    )?;
    let timing = if scheduled {
        let at = promised_at.ok_or_else(|| {
            ConvertError::field(
                "estimated_ready_for_pickup_at",
                "a scheduled order needs its ready time",
            )
        })?;
        Timing::Scheduled { at }
    } else {
        Timing::Asap
    };

    let (kind, delivered_by) = fulfillment_kind(&order.order_type, "type")?;
    let eater = order.eater.as_ref();
    let address = eater
        .and_then(|e| e.delivery.as_ref())
        .filter(|_| kind == FulfillmentKind::Delivery)
        .map(classic_address);

    let customer = Customer {
        name: eater
            .map(|e| join_name(e.first_name.as_ref(), e.last_name.as_ref()))
            .unwrap_or_default(),
        phone: eater.and_then(|e| text(e.phone.as_ref())),
        phone_pin: eater.and_then(|e| text(e.phone_code.as_ref())),
        email: None,
    };

    let lines = order
        .cart
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| classic_line(index + 1, item))
        .collect::<Result<Vec<_>>>()?;

    let (totals, cash_due) = classic_totals(charges, order_currency)?;
    let (payment, cash_due) = payment_for(cash_due, kind);

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id: order.id.clone(),
        display_code: text(order.display_id.as_ref()),
        channel_store_ref: text(Some(&order.store.id)),
        brand: None,
        platform_brand: text(order.brand.as_ref()),
        placed_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing,
            promised_at,
            accept_by: Some(placed_at + ACCEPT_WINDOW),
        },
        customer,
        notes: text(order.cart.special_instructions.as_ref()),
        lines,
        totals: Totals { cash_due, ..totals },
        payment,
        channel_data: channel_data(Generation::Classic),
    })
}

/// The classic location has one `street_address` line (no separate city or postcode);
/// the unit number and business name follow it as extra lines. Uber reports WGS 84.
fn classic_address(delivery: &ClassicEaterDelivery) -> Address {
    let location = &delivery.location;
    let lines = [
        text(location.street_address.as_ref()),
        text(location.unit_number.as_ref()),
        text(location.business_name.as_ref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let coordinates = match (location.latitude, location.longitude) {
        (Some(lat), Some(lng)) => Some(Coordinates {
            lat,
            lng,
            system: CoordSystem::Wgs84,
        }),
        _ => None,
    };
    Address {
        lines,
        city: None,
        postcode: None,
        country: None,
        coordinates,
        instructions: text(delivery.notes.as_ref()),
    }
}

fn classic_line(number: usize, item: &ClassicItem) -> Result<Line> {
    let field = format!("cart.items[{}]", number - 1);
    Ok(Line {
        channel_item_id: text(item.instance_id.as_ref()).unwrap_or_else(|| item.id.clone()),
        plu: text(item.external_data.as_ref()),
        name: item.title.clone(),
        quantity: item.quantity,
        unit_price: classic_money(
            &item.price.base_unit_price,
            &format!("{field}.price.base_unit_price"),
        )?,
        total: classic_money(
            &item.price.total_price,
            &format!("{field}.price.total_price"),
        )?,
        notes: item_notes(
            item.special_instructions.as_ref(),
            item.special_requests
                .as_ref()
                .and_then(|r| r.allergy.as_ref()),
        ),
        modifiers: classic_modifiers(item, &field)?,
    })
}

/// Selected items then removed items of every group, recursively. A modifier's price is
/// its `base_unit_price` (its own nested modifiers are priced on their own).
fn classic_modifiers(item: &ClassicItem, field: &str) -> Result<Vec<Modifier>> {
    let mut modifiers = Vec::new();
    for (g, group) in item.selected_modifier_groups.iter().flatten().enumerate() {
        let group_field = format!("{field}.selected_modifier_groups[{g}]");
        let selected = group.selected_items.iter().flatten().map(|i| (i, false));
        let removed = group.removed_items.iter().flatten().map(|i| (i, true));
        for (index, (child, removed)) in selected.chain(removed).enumerate() {
            let child_field = format!("{group_field}.item[{index}]");
            modifiers.push(Modifier {
                group: text(Some(&group.title)),
                name: child.title.clone(),
                channel_item_id: text(Some(&child.id)),
                plu: text(child.external_data.as_ref()),
                quantity: child.quantity,
                unit_price: classic_money(
                    &child.price.base_unit_price,
                    &format!("{child_field}.price.base_unit_price"),
                )?,
                removed,
                modifiers: classic_modifiers(child, &child_field)?,
            });
        }
    }
    Ok(modifiers)
}

/// Classic totals (CHANNELS.md §10: subtotal = `sub_total`, total = `total`).
///
/// Where §10 is silent:
/// - tax is `tax` plus the taxes on fees (`total_fee_tax`, `delivery_fee_tax`,
///   `small_order_fee_tax`): everything the customer paid as tax;
/// - `delivery_fee`, `small_order_fee`, `bag_fee` (packaging) and `pick_and_pack_fee`
///   (other) are itemised; `total_fee` is every fee together, so what it holds beyond the
///   itemised fees is the service fee;
/// - `total_promo_applied` is one platform-funded discount (positive);
/// - `cash_amount_due` above zero is cash to collect.
fn classic_totals(
    charges: &ClassicCharges,
    order_currency: Currency,
) -> Result<(Totals, Option<Money>)> {
    let or_zero = |money: Option<&ClassicMoney>, field: &str| {
        classic_money_or_zero(money, field, order_currency)
    };
    let mut tax = or_zero(charges.tax.as_ref(), "payment.charges.tax")?;
    for (money, field) in [
        (&charges.total_fee_tax, "payment.charges.total_fee_tax"),
        (
            &charges.delivery_fee_tax,
            "payment.charges.delivery_fee_tax",
        ),
        (
            &charges.small_order_fee_tax,
            "payment.charges.small_order_fee_tax",
        ),
    ] {
        tax = add(tax, or_zero(money.as_ref(), field)?, field)?;
    }

    let delivery = or_zero(
        charges.delivery_fee.as_ref(),
        "payment.charges.delivery_fee",
    )?;
    let small_order = or_zero(
        charges.small_order_fee.as_ref(),
        "payment.charges.small_order_fee",
    )?;
    let packaging = or_zero(charges.bag_fee.as_ref(), "payment.charges.bag_fee")?;
    let other = or_zero(
        charges.pick_and_pack_fee.as_ref(),
        "payment.charges.pick_and_pack_fee",
    )?;
    let mut service = Money::zero(order_currency);
    if let Some(total_fee) = charges.total_fee.as_ref() {
        let field = "payment.charges.total_fee";
        let total_fee = classic_money(total_fee, field)?;
        let mut itemised = Money::zero(order_currency);
        for fee in [delivery, small_order, packaging, other] {
            itemised = add(itemised, fee, field)?;
        }
        let rest = total_fee.checked_sub(itemised).map_err(at(field))?;
        if rest.minor > 0 {
            service = rest;
        }
    }

    let promotion = or_zero(
        charges.total_promo_applied.as_ref(),
        "payment.charges.total_promo_applied",
    )?;
    let cash_due = charges
        .cash_amount_due
        .as_ref()
        .map(|m| classic_money(m, "payment.charges.cash_amount_due"))
        .transpose()?;

    let totals = Totals {
        currency: order_currency,
        subtotal: classic_money(&charges.sub_total, "payment.charges.sub_total")?,
        discounts: promotion_discounts(promotion),
        tax,
        tax_included: false,
        fees: Fees {
            delivery,
            service,
            small_order,
            packaging,
            other,
        },
        tip: or_zero(charges.tip.as_ref(), "payment.charges.tip")?,
        total: classic_money(&charges.total, "payment.charges.total")?,
        cash_due: None,
        total_is_derived: false,
    };
    Ok((totals, cash_due))
}

// ---------------------------------------------------------------------------------------
// New API: GET /v1/delivery/order/{id}
// ---------------------------------------------------------------------------------------

/// Converts a new-API order. It is scheduled when it carries
/// `scheduled_order_target_delivery_time_range` (its `start_time` is the time); a
/// `scheduled` notification without that range falls back to
/// `preparation_time.ready_for_pickup_time`.
pub(crate) fn v1(
    channel: &ChannelId,
    response: &V1OrderResponse,
    scheduled: bool,
) -> Result<NewOrder> {
    let order: &V1Order = &response.order;
    let detail = &order.payment.payment_detail;
    let order_currency = currency(
        &detail.order_total.gross.currency_code,
        "order.payment.payment_detail.order_total.gross.currency_code",
    )?;
    let placed_at = timestamp(&order.created_time, "order.created_time")?;
    let promised_at = optional_timestamp(
        order
            .preparation_time
            .as_ref()
            .and_then(|p| p.ready_for_pickup_time.as_ref()),
        "order.preparation_time.ready_for_pickup_time",
    )?;
    let timing = match &order.scheduled_order_target_delivery_time_range {
        Some(range) => Timing::Scheduled {
            at: timestamp(
                &range.start_time,
                "order.scheduled_order_target_delivery_time_range.start_time",
            )?,
        },
        None if scheduled => Timing::Scheduled {
            at: promised_at.ok_or_else(|| {
                ConvertError::field(
                    "order.scheduled_order_target_delivery_time_range",
                    "a scheduled order needs its time range",
                )
            })?,
        },
        None => Timing::Asap,
    };

    let (kind, delivered_by) = fulfillment_kind(&order.fulfillment_type, "order.fulfillment_type")?;
    let address = if kind == FulfillmentKind::Delivery {
        order
            .deliveries
            .iter()
            .flatten()
            .find(|d| d.location.is_some())
            .map(v1_address)
    } else {
        None
    };

    let customers = order.customers.as_deref().unwrap_or_default();
    let primary = customers
        .iter()
        .find(|c| c.is_primary_customer == Some(true))
        .or_else(|| customers.first());
    let phone = primary
        .and_then(|c| c.contact.as_ref())
        .and_then(|c| c.phone.as_ref());
    let customer = Customer {
        name: primary
            .and_then(|c| c.name.as_ref())
            .map(|n| {
                text(n.display_name.as_ref())
                    .unwrap_or_else(|| join_name(n.first_name.as_ref(), n.last_name.as_ref()))
            })
            .unwrap_or_default(),
        phone: phone.and_then(|p| text(p.number.as_ref())),
        phone_pin: phone.and_then(|p| text(p.pin_code.as_ref())),
        email: None,
    };

    let prices: HashMap<&str, &V1PriceBreakdown> = detail
        .item_charges
        .price_breakdown
        .iter()
        .map(|p| (p.cart_item_id.as_str(), p))
        .collect();
    let mut lines = Vec::new();
    for (c, cart) in order.carts.iter().enumerate() {
        for (i, item) in cart.items.iter().enumerate() {
            let field = format!("order.carts[{c}].items[{i}]");
            lines.push(v1_line(item, &field, &prices, order_currency)?);
        }
    }
    let notes: Vec<String> = order
        .carts
        .iter()
        .filter_map(|c| text(c.special_instructions.as_ref()))
        .collect();

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id: order.id.clone(),
        display_code: text(order.display_id.as_ref()),
        channel_store_ref: text(Some(&order.store.id)),
        brand: None,
        platform_brand: text(order.ordering_platform.as_ref()),
        placed_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing,
            promised_at,
            accept_by: Some(placed_at + ACCEPT_WINDOW),
        },
        customer,
        notes: (!notes.is_empty()).then(|| notes.join("\n")),
        lines,
        totals: v1_totals(detail, order_currency)?,
        payment: Payment::Prepaid,
        channel_data: channel_data(Generation::V1),
    })
}

fn v1_address(delivery: &crate::wire::V1Delivery) -> Address {
    let Some(location) = delivery.location.as_ref() else {
        return Address::default();
    };
    let lines = [
        text(location.street_address_line_one.as_ref()),
        text(location.street_address_line_two.as_ref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let coordinates = match (location.latitude, location.longitude) {
        (Some(lat), Some(lng)) => Some(Coordinates {
            lat,
            lng,
            system: CoordSystem::Wgs84,
        }),
        _ => None,
    };
    Address {
        lines,
        city: text(location.city.as_ref()),
        postcode: text(location.postal_code.as_ref()),
        country: text(location.country_iso2.as_ref()),
        coordinates,
        instructions: text(delivery.instructions.as_ref()),
    }
}

/// A top-level line: `unit_price` is its own breakdown `unit` (without modifiers, which
/// have entries of their own); the line total is its breakdown `total` plus the totals of
/// all its selected modifiers, at any depth. A line without a breakdown entry is malformed.
fn v1_line(
    item: &V1Item,
    field: &str,
    prices: &HashMap<&str, &V1PriceBreakdown>,
    order_currency: Currency,
) -> Result<Line> {
    let price = prices.get(item.cart_item_id.as_str()).ok_or_else(|| {
        ConvertError::field(
            "order.payment.payment_detail.item_charges.price_breakdown",
            format!("no price for cart item `{}` ({field})", item.cart_item_id),
        )
    })?;
    let price_field = breakdown_field(&item.cart_item_id);
    let (modifiers, modifiers_total) = v1_modifiers(item, prices, order_currency)?;
    let total = add(
        e5_money(&price.total.gross, &format!("{price_field}.total.gross"))?,
        modifiers_total,
        &price_field,
    )?;
    Ok(Line {
        channel_item_id: item.cart_item_id.clone(),
        plu: text(item.external_data.as_ref()),
        name: item.title.clone(),
        quantity: item.quantity.amount,
        unit_price: e5_money(&price.unit.gross, &format!("{price_field}.unit.gross"))?,
        total,
        notes: item
            .customer_request
            .as_ref()
            .and_then(|r| item_notes(r.special_instructions.as_ref(), r.allergy.as_ref())),
        modifiers,
    })
}

/// `order.payment.payment_detail.item_charges.price_breakdown[{cart_item_id}]`.
fn breakdown_field(cart_item_id: &str) -> String {
    format!("order.payment.payment_detail.item_charges.price_breakdown[{cart_item_id}]")
}

/// Modifiers of a new-API item, recursively, and Σ of the breakdown totals of the selected
/// ones at any depth (what they add to the line), in one walk of the tree. A modifier
/// without a breakdown entry is free; a removed one and everything under it cost nothing.
fn v1_modifiers(
    item: &V1Item,
    prices: &HashMap<&str, &V1PriceBreakdown>,
    order_currency: Currency,
) -> Result<(Vec<Modifier>, Money)> {
    let mut modifiers = Vec::new();
    let mut total = Money::zero(order_currency);
    for group in item.selected_modifier_groups.iter().flatten() {
        let selected = group.selected_items.iter().flatten().map(|i| (i, false));
        let removed = group.removed_items.iter().flatten().map(|i| (i, true));
        for (child, removed) in selected.chain(removed) {
            let field = breakdown_field(&child.cart_item_id);
            let price = prices.get(child.cart_item_id.as_str());
            let unit_price = match price {
                Some(price) => e5_money(&price.unit.gross, &format!("{field}.unit.gross"))?,
                None => Money::zero(order_currency),
            };
            let (children, children_total) = v1_modifiers(child, prices, order_currency)?;
            if !removed {
                if let Some(price) = price {
                    let total_field = format!("{field}.total.gross");
                    let own = e5_money(&price.total.gross, &total_field)?;
                    total = add(total, own, &total_field)?;
                }
                total = add(total, children_total, "modifiers")?;
            }
            modifiers.push(Modifier {
                group: text(Some(&group.title)),
                name: child.title.clone(),
                channel_item_id: text(Some(&child.id)),
                plu: text(child.external_data.as_ref()),
                quantity: child.quantity.amount,
                unit_price,
                removed,
                modifiers: children,
            });
        }
    }
    Ok((modifiers, total))
}

/// New-API totals (CHANNELS.md §10: subtotal = `item_charges.total`, total =
/// `order_total`, both `gross`). Where §10 is silent: tax = `order_total.tax` (with
/// `is_tax_inclusive`); fees by `fees.details[].type` (`DELIVERY_FEE`, `SERVICE_FEE`,
/// `SMALL_ORDER_FEE`, `BAG_FEE`; any other type and any part of `fees.total` not
/// itemised go to `other`); tip = `tips.total`; `promotions.total` is one
/// platform-funded discount.
fn v1_totals(detail: &V1PaymentDetail, order_currency: Currency) -> Result<Totals> {
    const BASE: &str = "order.payment.payment_detail";
    let zero = Money::zero(order_currency);
    let mut fees = Fees::zero(order_currency);
    if let Some(reported) = detail.fees.as_ref() {
        let mut itemised = zero;
        for (index, fee) in reported.details.iter().flatten().enumerate() {
            let field = format!("{BASE}.fees.details[{index}].amount.gross");
            let amount = e5_money(&fee.amount.gross, &field)?;
            let slot = match fee.fee_type.as_str() {
                "DELIVERY_FEE" => &mut fees.delivery,
                "SERVICE_FEE" => &mut fees.service,
                "SMALL_ORDER_FEE" => &mut fees.small_order,
                "BAG_FEE" => &mut fees.packaging,
                _ => &mut fees.other,
            };
            *slot = add(*slot, amount, &field)?;
            itemised = add(itemised, amount, &field)?;
        }
        let field = format!("{BASE}.fees.total.gross");
        let total = e5_money(&reported.total.gross, &field)?;
        let rest = total.checked_sub(itemised).map_err(at(&field))?;
        if rest.minor > 0 {
            fees.other = add(fees.other, rest, &field)?;
        }
    }
    let tip = match detail.tips.as_ref() {
        Some(t) => e5_money(&t.total.gross, &format!("{BASE}.tips.total.gross"))?,
        None => zero,
    };
    let promotion = match detail.promotions.as_ref() {
        Some(p) => e5_money(&p.total.gross, &format!("{BASE}.promotions.total.gross"))?,
        None => zero,
    };
    let tax = match detail.order_total.tax.as_ref() {
        Some(t) => e5_money(t, &format!("{BASE}.order_total.tax"))?,
        None => zero,
    };
    Ok(Totals {
        currency: order_currency,
        subtotal: e5_money(
            &detail.item_charges.total.gross,
            &format!("{BASE}.item_charges.total.gross"),
        )?,
        discounts: promotion_discounts(promotion),
        tax,
        tax_included: detail.order_total.is_tax_inclusive.unwrap_or(false),
        fees,
        tip,
        total: e5_money(
            &detail.order_total.gross,
            &format!("{BASE}.order_total.gross"),
        )?,
        cash_due: None,
        total_is_derived: false,
    })
}
