//! Deliveroo's order → the unified [`NewOrder`], and status and rider events → what they
//! mean for the hub. All money conversion of the adapter happens here: Deliveroo sends
//! `{fractional, currency_code}`, integer minor units, taken as they are.
//!
//! The rules follow CHANNELS.md §3, §8 and §10. Where those sections are silent, the
//! choice made is stated on the function that makes it (and listed in the crate docs).

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::convert::ConvertError;
use crossdock_channel::{Inbound, clip};
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, NewOrder, Payment, StatusAction,
    Timing, Totals,
};

use crate::wire;

/// An ASAP order not accepted within this is auto-rejected by Deliveroo (CHANNELS.md §3.4).
pub(crate) const ACCEPT_WINDOW: TimeDelta = TimeDelta::minutes(10);
/// The window in Kuwait and the United Arab Emirates.
pub(crate) const ACCEPT_WINDOW_GULF: TimeDelta = TimeDelta::minutes(7);
/// The label of the discount taken from `offer_discount`.
pub(crate) const OFFER_LABEL: &str = "Deliveroo offer";
/// Where an order's fields live in the webhook, for error messages.
const ORDER: &str = "body.order";

type Result<T> = std::result::Result<T, ConvertError>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn money(value: &wire::Money, field: &str) -> Result<Money> {
    let currency = Currency::parse(&value.currency_code).map_err(|source| ConvertError::Money {
        field: format!("{field}.currency_code"),
        source,
    })?;
    Ok(Money::new(value.fractional, currency))
}

fn money_or_zero(value: Option<&wire::Money>, field: &str, currency: Currency) -> Result<Money> {
    value.map_or(Ok(Money::zero(currency)), |m| money(m, field))
}

fn add(left: Money, right: Money, field: &str) -> Result<Money> {
    left.checked_add(right)
        .map_err(|source| ConvertError::Money {
            field: field.to_owned(),
            source,
        })
}

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

fn optional_timestamp(value: Option<&String>, field: &str) -> Result<Option<DateTime<Utc>>> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| timestamp(v, field))
        .transpose()
}

/// `Some(trimmed)` for a non-empty text, `None` for an absent or blank one.
fn text(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The market of an order id (`gb` of `gb:…`), lower-case; `None` without a prefix.
pub(crate) fn market(order_id: &str) -> Option<String> {
    let (prefix, rest) = order_id.split_once(':')?;
    (!rest.is_empty() && prefix.len() == 2 && prefix.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| prefix.to_ascii_lowercase())
}

/// An id fit to be a path segment of a write-back: ASCII letters, digits, `-`, `_`, and
/// `:` (the market prefix).
pub(crate) fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

/// The entry that is the order's current status: the latest by `at` (the status log is
/// the truth, whatever order the events arrive in); of equal times, the later in the log.
/// An entry whose time does not parse is refused, naming it.
fn latest<'a>(
    log: &'a [wire::StatusLogEntry],
    field: &str,
) -> Result<Option<(&'a wire::StatusLogEntry, DateTime<Utc>)>> {
    let mut current: Option<(&wire::StatusLogEntry, DateTime<Utc>)> = None;
    for (index, entry) in log.iter().enumerate() {
        let at = timestamp(&entry.at, &format!("{field}[{index}].at"))?;
        if current.is_none_or(|(_, best)| at >= best) {
            current = Some((entry, at));
        }
    }
    Ok(current)
}

// ---------------------------------------------------------------------------------------
// order.new → NewOrder
// ---------------------------------------------------------------------------------------

/// Converts an `order.new` order. `received_at` is the placed time of an order whose
/// `status_log` is empty (the documentation always shows one).
pub(crate) fn order(
    channel: &ChannelId,
    order: &wire::Order,
    received_at: DateTime<Utc>,
) -> Result<NewOrder> {
    let id = order.id.trim();
    if !is_safe_id(id) {
        return Err(ConvertError::field(
            format!("{ORDER}.id"),
            format!("`{}` is not a Deliveroo order id", clip(id)),
        ));
    }
    let location = order.location_id.trim();
    if location.is_empty() {
        return Err(ConvertError::field(
            format!("{ORDER}.location_id"),
            "is empty; the hub routes on it",
        ));
    }
    let market = market(id);

    let total = match (&order.partner_order_total, &order.total_price) {
        (Some(total), _) => money(total, &format!("{ORDER}.partner_order_total"))?,
        (None, Some(paid)) => money(paid, &format!("{ORDER}.total_price"))?,
        (None, None) => {
            return Err(ConvertError::field(
                format!("{ORDER}.partner_order_total"),
                "missing, and so is total_price",
            ));
        }
    };
    let currency = total.currency;

    let placed_at = placed_at(order, received_at)?;
    let promised_at =
        optional_timestamp(order.prepare_for.as_ref(), &format!("{ORDER}.prepare_for"))?;
    let confirm_at = optional_timestamp(order.confirm_at.as_ref(), &format!("{ORDER}.confirm_at"))?;
    let window = match market.as_deref() {
        Some("kw" | "ae") => ACCEPT_WINDOW_GULF,
        _ => ACCEPT_WINDOW,
    };
    let (timing, accept_by) = if order.asap {
        (Timing::Asap, placed_at + window)
    } else {
        let at = promised_at.ok_or_else(|| {
            ConvertError::field(
                format!("{ORDER}.prepare_for"),
                "a scheduled order (`asap: false`) needs its time",
            )
        })?;
        (
            Timing::Scheduled { at },
            confirm_at.unwrap_or(placed_at + window),
        )
    };

    let (kind, delivered_by) = fulfillment_kind(&order.fulfillment_type)?;
    let delivery = order.delivery.as_ref();
    let address = delivery
        .filter(|_| delivered_by == Some(DeliveredBy::Store))
        .map(|d| address(d, market.as_deref()));

    let customer = customer(order);

    let lines = order
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| line(index, item))
        .collect::<Result<Vec<_>>>()?;

    let totals = totals(order, currency, &lines, total)?;
    let payment = match totals.cash_due {
        None => Payment::Prepaid,
        Some(_) if kind == FulfillmentKind::Delivery => Payment::CashOnDelivery,
        Some(_) => Payment::PayAtStore,
    };

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id: id.to_owned(),
        display_code: text(order.display_id.as_ref()),
        channel_store_ref: Some(location.to_owned()),
        brand: None,
        platform_brand: text(order.brand_id.as_ref()),
        placed_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing,
            promised_at,
            accept_by: Some(accept_by),
        },
        customer,
        notes: text(order.order_notes.as_ref()),
        lines,
        totals,
        payment,
        channel_data: channel_data(order, market.as_deref()),
    })
}

/// When the order was placed: the `placed` entry of the status log, else its first entry
/// (`pending`), else when the webhook arrived.
fn placed_at(order: &wire::Order, received_at: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let field = format!("{ORDER}.status_log");
    let entry = order
        .status_log
        .iter()
        .enumerate()
        .find(|(_, e)| e.status == "placed")
        .or_else(|| order.status_log.iter().enumerate().next());
    match entry {
        Some((index, entry)) => timestamp(&entry.at, &format!("{field}[{index}].at")),
        None => Ok(received_at),
    }
}

/// `deliveroo`: a Deliveroo rider delivers; `restaurant`: the site's own fleet delivers
/// (the address is sent); `customer`: collection; `table_service`: dine-in.
fn fulfillment_kind(value: &str) -> Result<(FulfillmentKind, Option<DeliveredBy>)> {
    match value.trim() {
        "deliveroo" => Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Platform))),
        "restaurant" => Ok((FulfillmentKind::Delivery, Some(DeliveredBy::Store))),
        "customer" => Ok((FulfillmentKind::Pickup, None)),
        "table_service" => Ok((FulfillmentKind::DineIn, None)),
        other => Err(ConvertError::field(
            format!("{ORDER}.fulfillment_type"),
            format!(
                "unknown fulfilment type `{}` (expected deliveroo, customer, restaurant or table_service)",
                clip(other)
            ),
        )),
    }
}

/// The `delivery` object of a restaurant-fulfilled order. The country is the order id's
/// market (`gb` → `GB`) [2nd]; coordinates are WGS 84.
fn address(delivery: &wire::Delivery, market: Option<&str>) -> Address {
    Address {
        lines: [text(delivery.line1.as_ref()), text(delivery.line2.as_ref())]
            .into_iter()
            .flatten()
            .collect(),
        city: text(delivery.city.as_ref()),
        postcode: text(delivery.postcode.as_ref()),
        country: market.map(str::to_ascii_uppercase),
        coordinates: delivery.location.map(|l| Coordinates {
            lat: l.latitude,
            lng: l.longitude,
            system: CoordSystem::Wgs84,
        }),
        instructions: text(delivery.delivery_notes.as_ref()),
    }
}

/// CHANNELS.md §10: the name is `delivery.customer_name` when present, else
/// `customer.first_name`. The phone and its PIN come from the same place, `delivery`
/// first. The number is a proxy: never logged.
fn customer(order: &wire::Order) -> Customer {
    let delivery = order.delivery.as_ref();
    let customer = order.customer.as_ref();
    let name = delivery
        .and_then(|d| text(d.customer_name.as_ref()))
        .or_else(|| customer.and_then(|c| text(c.first_name.as_ref())))
        .unwrap_or_default();
    let phone = delivery
        .and_then(|d| text(d.contact_number.as_ref()))
        .or_else(|| customer.and_then(|c| text(c.contact_number.as_ref())));
    let phone_pin = delivery
        .and_then(|d| text(d.contact_access_code.as_ref()))
        .or_else(|| customer.and_then(|c| text(c.contact_access_code.as_ref())));
    Customer {
        name,
        phone,
        phone_pin,
        email: None,
    }
}

/// A top-level item. Deliveroo sends no line id: `channel_item_id` is the `pos_item_id`,
/// or `line-{n}` (1-based) when that is `null` [2nd]. The line total is `total_price` as
/// sent (assumed to include the modifiers × quantity, CHANNELS.md §3.3 [2nd]), computed
/// only when absent. Deliveroo has no item notes.
fn line(index: usize, item: &wire::Item) -> Result<Line> {
    let field = format!("{ORDER}.items[{index}]");
    let unit_price = money(&item.unit_price, &format!("{field}.unit_price"))?;
    let modifiers = modifiers(&item.modifiers, &field)?;
    let mut line = Line {
        channel_item_id: text(item.pos_item_id.as_ref())
            .unwrap_or_else(|| format!("line-{}", index + 1)),
        plu: text(item.pos_item_id.as_ref()),
        name: item.name.trim().to_owned(),
        quantity: item.quantity,
        unit_price,
        total: unit_price,
        notes: None,
        modifiers,
    };
    line.total = match &item.total_price {
        Some(total) => money(total, &format!("{field}.total_price"))?,
        None => line
            .computed_total()
            .map_err(|source| ConvertError::Money {
                field: format!("{field}.total_price"),
                source,
            })?,
    };
    Ok(line)
}

/// Modifiers are item-shaped and nest. Deliveroo names no modifier group and has no
/// "removed" flag (a removal is a modifier of its own, like "No onions"); a modifier's
/// quantity is taken per unit of its parent [2nd].
fn modifiers(items: &[wire::Item], parent: &str) -> Result<Vec<Modifier>> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field = format!("{parent}.modifiers[{index}]");
            Ok(Modifier {
                group: None,
                name: item.name.trim().to_owned(),
                channel_item_id: None,
                plu: text(item.pos_item_id.as_ref()),
                quantity: item.quantity,
                unit_price: money(&item.unit_price, &format!("{field}.unit_price"))?,
                removed: false,
                modifiers: modifiers(&item.modifiers, &field)?,
            })
        })
        .collect()
}

/// CHANNELS.md §10: subtotal = `partner_order_subtotal` and total =
/// `partner_order_total`, as given, never recomputed (the hub flags a mismatch). Where
/// §10 is silent [2nd]:
/// - without `partner_order_subtotal`, the subtotal is `subtotal`, else Σ line totals;
///   without `partner_order_total`, the total is `total_price`;
/// - `offer_discount` above zero is one discount whose funder is unknown;
/// - fees: `delivery.delivery_fee` (restaurant fulfilment) is the delivery fee,
///   `bag_fee` packaging, `surcharge` the small-order fee, and every `fee_breakdown`
///   amount (`DEPOSIT_FEE`, …) goes to `other`;
/// - Deliveroo sends partners no tip and no tax: both are zero, and prices include VAT
///   (`tax_included`);
/// - `cash_due` above zero is cash to collect.
fn totals(order: &wire::Order, currency: Currency, lines: &[Line], total: Money) -> Result<Totals> {
    let subtotal = match (&order.partner_order_subtotal, &order.subtotal) {
        (Some(subtotal), _) => money(subtotal, &format!("{ORDER}.partner_order_subtotal"))?,
        (None, Some(subtotal)) => money(subtotal, &format!("{ORDER}.subtotal"))?,
        (None, None) => {
            let mut sum = Money::zero(currency);
            for line in lines {
                sum = add(sum, line.total, &format!("{ORDER}.items"))?;
            }
            sum
        }
    };
    let discount = money_or_zero(
        order.offer_discount.as_ref(),
        &format!("{ORDER}.offer_discount"),
        currency,
    )?;
    let discounts = if discount.minor == 0 {
        Vec::new()
    } else {
        vec![Discount {
            label: OFFER_LABEL.to_owned(),
            amount: Money::new(discount.minor.saturating_abs(), discount.currency),
            funded_by: FundedBy::Unknown,
        }]
    };
    let mut fees = Fees::zero(currency);
    fees.delivery = money_or_zero(
        order
            .delivery
            .as_ref()
            .and_then(|d| d.delivery_fee.as_ref()),
        &format!("{ORDER}.delivery.delivery_fee"),
        currency,
    )?;
    fees.packaging = money_or_zero(
        order.bag_fee.as_ref(),
        &format!("{ORDER}.bag_fee"),
        currency,
    )?;
    fees.small_order = money_or_zero(
        order.surcharge.as_ref(),
        &format!("{ORDER}.surcharge"),
        currency,
    )?;
    for (index, fee) in order.fee_breakdown.iter().enumerate() {
        let field = format!("{ORDER}.fee_breakdown[{index}].amount");
        fees.other = add(fees.other, money(&fee.amount, &field)?, &field)?;
    }
    let cash_due = order
        .cash_due
        .as_ref()
        .map(|c| money(c, &format!("{ORDER}.cash_due")))
        .transpose()?
        .filter(|c| c.minor > 0);
    Ok(Totals {
        currency,
        subtotal,
        discounts,
        tax: Money::zero(currency),
        tax_included: true,
        fees,
        tip: Money::zero(currency),
        total,
        cash_due,
        total_is_derived: false,
    })
}

/// What the adapter keeps for later, and what staff may want but the unified order has no
/// field for: the market (`gb`), `order_number`, `is_tabletless` (write-backs skip
/// `sync_status` for tabletless sites), `cutlery_notes`, `table_number` and the remake
/// details.
fn channel_data(order: &wire::Order, market: Option<&str>) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    let mut put = |key: &str, value: Option<serde_json::Value>| {
        if let Some(value) = value {
            data.insert(key.to_owned(), value);
        }
    };
    put("market", market.map(serde_json::Value::from));
    put(
        "order_number",
        text(order.order_number.as_ref()).map(serde_json::Value::from),
    );
    put(
        "tabletless",
        Some(serde_json::Value::from(
            order.is_tabletless.unwrap_or(false),
        )),
    );
    put(
        "cutlery_notes",
        text(order.cutlery_notes.as_ref()).map(serde_json::Value::from),
    );
    put(
        "table_number",
        text(order.table_number.as_ref()).map(serde_json::Value::from),
    );
    put(
        "remake",
        order
            .remake_details
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok()),
    );
    serde_json::Value::Object(data)
}

// ---------------------------------------------------------------------------------------
// order.status_update and rider.status_update
// ---------------------------------------------------------------------------------------

/// What an `order.status_update` means. The status log is the truth (events arrive late,
/// twice, and out of order): `canceled` anywhere in it cancels the order (it is final);
/// otherwise the latest entry by time counts, or `status` when the log is empty.
///
/// - `canceled` → [`Inbound::Cancelled`];
/// - `rejected` → [`Inbound::Cancelled`] as well: it is either the echo of the hub's own
///   rejection (the order is already final in the hub, which then ignores it) or
///   Deliveroo's auto-rejection of an order not accepted in time, which the store must hear
///   of at once. A deliberate departure from "echoes are ignored" — see the crate docs;
/// - `placed`, `pending`, `accepted`, `confirmed` (and anything else) →
///   [`Inbound::Ignored`] as `order.status_update:{status}`: echoes of the hub's own pushes
///   or nothing new.
pub(crate) fn status_event(body: &wire::StatusView) -> Result<Inbound> {
    let id = body.id.trim();
    if !is_safe_id(id) {
        return Err(ConvertError::field(
            format!("{ORDER}.id"),
            format!("`{}` is not a Deliveroo order id", clip(id)),
        ));
    }
    let log_field = format!("{ORDER}.status_log");
    for (index, entry) in body.status_log.iter().enumerate() {
        if entry.status.trim() == "canceled" {
            let at = timestamp(&entry.at, &format!("{log_field}[{index}].at"))?;
            return Ok(Inbound::Cancelled {
                external_order_id: id.to_owned(),
                reason: Some(format!(
                    "canceled on Deliveroo at {}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )),
            });
        }
    }
    let (status, at) = match latest(&body.status_log, &log_field)? {
        Some((entry, at)) => (entry.status.trim().to_owned(), Some(at)),
        None => (
            text(body.status.as_ref()).ok_or_else(|| {
                ConvertError::field(
                    format!("{ORDER}.status"),
                    "missing, and the status_log is empty",
                )
            })?,
            None,
        ),
    };
    let when = at
        .map(|at| {
            format!(
                " at {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        })
        .unwrap_or_default();
    Ok(match status.as_str() {
        "canceled" => Inbound::Cancelled {
            external_order_id: id.to_owned(),
            reason: Some(format!("canceled on Deliveroo{when}")),
        },
        "rejected" => Inbound::Cancelled {
            external_order_id: id.to_owned(),
            reason: Some(format!(
                "rejected on Deliveroo{when} (the hub's own rejection, or Deliveroo's \
                 auto-rejection of an order not accepted in time)"
            )),
        },
        other => Inbound::Ignored {
            event: format!("order.status_update:{}", clip(other)),
        },
    })
}

/// What a `rider.status_update` means: the furthest stage any rider's status log reached
/// (a later `rider_unassigned` does not undo a pick-up; the hub never moves backwards
/// anyway).
///
/// - `delivered` → [`Inbound::Progress`] `Delivered` — the order-API rider events document
///   no `delivered` (the Signature API has it); taken as sent if it comes [2nd];
/// - `rider_in_transit` → [`Inbound::Progress`] `PickedUp`;
/// - anything else (`rider_assigned`, `rider_arrived`, `rider_confirmed_at_restaurant`,
///   `rider_unassigned`, …) → [`Inbound::Ignored`] as `rider.status_update:{latest}`.
pub(crate) fn rider_event(body: &wire::RiderEventBody) -> Result<Inbound> {
    let id = body.order_id.trim();
    if !is_safe_id(id) {
        return Err(ConvertError::field(
            "body.order_id",
            format!("`{}` is not a Deliveroo order id", clip(id)),
        ));
    }
    let mut furthest: Option<StatusAction> = None;
    let mut latest_status: Option<(String, DateTime<Utc>)> = None;
    for (r, rider) in body.riders.iter().enumerate() {
        let field = format!("body.riders[{r}].status_log");
        if let Some((entry, at)) = latest(&rider.status_log, &field)?
            && latest_status.as_ref().is_none_or(|(_, best)| at >= *best)
        {
            latest_status = Some((entry.status.trim().to_owned(), at));
        }
        for entry in &rider.status_log {
            match entry.status.trim() {
                "delivered" => furthest = Some(StatusAction::Delivered),
                "rider_in_transit" if furthest.is_none() => {
                    furthest = Some(StatusAction::PickedUp);
                }
                _ => {}
            }
        }
    }
    Ok(match furthest {
        Some(action) => Inbound::Progress {
            external_order_id: id.to_owned(),
            action,
        },
        None => Inbound::Ignored {
            event: format!(
                "rider.status_update:{}",
                latest_status
                    .map(|(status, _)| clip(&status))
                    .unwrap_or_else(|| "no_status".to_owned())
            ),
        },
    })
}
