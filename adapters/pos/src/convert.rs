//! POS wire order → unified order. The only place the POS's figures become [`Money`].
//!
//! Rules (the crate docs describe the API itself):
//! - The store is the one the request is signed for (`X-Crossdock-Store`), never the body's:
//!   it becomes `channel_store_ref`, and the external order id is `<store>:<number>`, so two
//!   stores' order numbers never collide and one store cannot name another's orders.
//! - `number` is also the display code staff read out.
//! - The PLU is both the line's channel item id and its PLU (the POS sells the chain's
//!   menu); modifiers keep their PLU where the POS sends one.
//! - A line's `total` is kept as sent; without one it is computed with
//!   [`Line::computed_total`]. Totals are kept as sent, never recomputed
//!   ([`NewOrder::check`] flags what does not add up).
//! - Discounts are the chain's own (`funded_by: merchant`).
//! - Delivery orders are delivered by the store, at WGS84 coordinates when the POS sent a
//!   location; `cash_on_delivery` sets `cash_due` to the total.
//! - `source`, `register` and `table` go to `channel_data` (for reports and the ticket).
//! - Empty strings mean none (notes, instructions, postcode, customer name and phone).

use crossdock_channel::ChannelError;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, NewOrder, OrderError, Payment,
    Timing, Totals,
};
use serde_json::{Map, Value};

use crate::wire::{
    PosAddress, PosFulfillment, PosFulfillmentType, PosLine, PosLocation, PosModifier, PosOrder,
    PosPayment, PosTotals,
};

/// The longest order number, event id, register or table the API takes.
pub(crate) const MAX_ID_LEN: usize = 64;

fn malformed(field: &str, problem: impl std::fmt::Display) -> ChannelError {
    ChannelError::Malformed(format!("{field}: {problem}"))
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

/// The external order id of order `number` of `store`.
pub(crate) fn external_order_id(store: &str, number: &str) -> String {
    format!("{store}:{number}")
}

/// Checks an order number: 1 to 64 ASCII letters, digits, `-`, `_`, `.` or `/`.
pub(crate) fn check_number(field: &str, number: &str) -> Result<(), ChannelError> {
    if number.is_empty() {
        return Err(malformed(field, "must not be empty"));
    }
    if number.len() > MAX_ID_LEN {
        return Err(malformed(
            field,
            format!(
                "`{}` is longer than {MAX_ID_LEN} characters",
                crossdock_channel::clip(number)
            ),
        ));
    }
    if !number
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
    {
        return Err(malformed(
            field,
            format!(
                "`{}` may only contain ASCII letters, digits, `-`, `_`, `.` and `/`",
                crossdock_channel::clip(number)
            ),
        ));
    }
    Ok(())
}

/// Turns a POS order of `store` (the authenticated store code) into the unified order. It
/// does not run [`NewOrder::check`]; the hub does.
pub(crate) fn new_order(
    channel: &ChannelId,
    store: &str,
    order: PosOrder,
) -> Result<NewOrder, ChannelError> {
    check_number("order.number", &order.number)?;
    let currency =
        Currency::parse(&order.currency).map_err(|error| malformed("order.currency", error))?;
    let register = non_empty(order.register);
    if let Some(register) = &register
        && register.chars().count() > MAX_ID_LEN
    {
        return Err(malformed(
            "order.register",
            format!("longer than {MAX_ID_LEN} characters"),
        ));
    }
    let payment = payment(order.payment, order.fulfillment.kind)?;
    let (fulfillment, table) = fulfillment(order.fulfillment)?;
    let customer = match order.customer {
        Some(customer) => Customer {
            name: non_empty(customer.name).unwrap_or_default(),
            phone: non_empty(customer.phone),
            phone_pin: None,
            email: None,
        },
        None if fulfillment.kind == FulfillmentKind::Delivery => {
            return Err(malformed(
                "order.customer",
                "required for delivery orders (the driver needs a name or a phone number)",
            ));
        }
        None => Customer::default(),
    };
    if fulfillment.kind == FulfillmentKind::Delivery
        && customer.name.is_empty()
        && customer.phone.is_none()
    {
        return Err(malformed(
            "order.customer",
            "a delivery order needs the customer's name or phone number",
        ));
    }
    let lines = order
        .lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| self::line(index, line, currency))
        .collect::<Result<Vec<_>, _>>()?;
    let totals = totals(&order.totals, currency, payment)?;

    let mut channel_data = Map::new();
    channel_data.insert("source".into(), Value::from(order.source.as_str()));
    if let Some(register) = register {
        channel_data.insert("register".into(), Value::from(register));
    }
    if let Some(table) = table {
        channel_data.insert("table".into(), Value::from(table));
    }

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id: external_order_id(store, &order.number),
        display_code: Some(order.number),
        channel_store_ref: Some(store.to_owned()),
        brand: None,
        platform_brand: None,
        placed_at: order.placed_at.to_utc(),
        fulfillment,
        customer,
        notes: non_empty(order.notes),
        lines,
        totals,
        payment,
        channel_data: Value::Object(channel_data),
    })
}

/// The payment, refused where it cannot happen (cash on delivery of a pickup order).
fn payment(payment: PosPayment, kind: PosFulfillmentType) -> Result<Payment, ChannelError> {
    match (payment, kind) {
        (PosPayment::Counter | PosPayment::Card, _) => Ok(Payment::Prepaid),
        (PosPayment::CashOnDelivery, PosFulfillmentType::Delivery) => Ok(Payment::CashOnDelivery),
        (PosPayment::CashOnDelivery, _) => Err(malformed(
            "order.payment",
            "`cash_on_delivery` is only for delivery orders; use `pay_at_store`",
        )),
        (PosPayment::PayAtStore, PosFulfillmentType::Delivery) => Err(malformed(
            "order.payment",
            "`pay_at_store` is not possible for a delivery order; use `cash_on_delivery`, \
             `card` or `counter`",
        )),
        (PosPayment::PayAtStore, _) => Ok(Payment::PayAtStore),
    }
}

/// The fulfilment and the dine-in table.
fn fulfillment(wire: PosFulfillment) -> Result<(Fulfillment, Option<String>), ChannelError> {
    let PosFulfillment {
        kind,
        table,
        scheduled_for,
        address,
        location,
        instructions,
    } = wire;
    let timing = match scheduled_for {
        Some(at) => Timing::Scheduled { at: at.to_utc() },
        None => Timing::Asap,
    };
    let (kind, address, table) = match kind {
        PosFulfillmentType::DineIn => (FulfillmentKind::DineIn, None, non_empty(table)),
        PosFulfillmentType::Pickup => (FulfillmentKind::Pickup, None, None),
        PosFulfillmentType::Delivery => {
            let address = address.ok_or_else(|| {
                malformed(
                    "order.fulfillment.address",
                    "required for delivery orders (lines, city, country)",
                )
            })?;
            (
                FulfillmentKind::Delivery,
                Some(self::address(address, location, instructions)?),
                None,
            )
        }
    };
    if let Some(table) = &table
        && table.chars().count() > MAX_ID_LEN
    {
        return Err(malformed(
            "order.fulfillment.table",
            format!("longer than {MAX_ID_LEN} characters"),
        ));
    }
    Ok((
        Fulfillment {
            kind,
            delivered_by: (kind == FulfillmentKind::Delivery).then_some(DeliveredBy::Store),
            address,
            timing,
            promised_at: None,
            accept_by: None,
        },
        table,
    ))
}

/// The drop-off address. Coordinates are taken as sent; [`NewOrder::check`] refuses ones
/// out of range.
fn address(
    address: PosAddress,
    location: Option<PosLocation>,
    instructions: Option<String>,
) -> Result<Address, ChannelError> {
    let lines: Vec<String> = address
        .lines
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(malformed(
            "order.fulfillment.address.lines",
            "at least one non-empty line is needed",
        ));
    }
    Ok(Address {
        lines,
        city: non_empty(Some(address.city)),
        postcode: non_empty(address.postcode),
        country: non_empty(Some(address.country)),
        coordinates: location.map(|location| Coordinates {
            lat: location.lat,
            lng: location.lng,
            system: CoordSystem::Wgs84,
        }),
        instructions: non_empty(instructions),
    })
}

fn line(index: usize, wire: PosLine, currency: Currency) -> Result<Line, ChannelError> {
    let field = format!("order.lines[{index}]");
    if wire.plu.trim().is_empty() {
        return Err(malformed(&format!("{field}.plu"), "must not be empty"));
    }
    if let Some(total) = wire.total
        && total < 0
    {
        return Err(malformed(
            &format!("{field}.total"),
            format!("{total} is negative"),
        ));
    }
    let mut line = Line {
        channel_item_id: wire.plu.clone(),
        plu: Some(wire.plu),
        name: wire.name,
        quantity: wire.quantity,
        unit_price: Money::new(wire.unit_price, currency),
        total: Money::zero(currency),
        notes: non_empty(wire.notes),
        modifiers: wire
            .modifiers
            .into_iter()
            .map(|m| modifier(m, currency))
            .collect(),
    };
    line.total = match wire.total {
        Some(total) => Money::new(total, currency),
        None => line.computed_total().map_err(|source| {
            ChannelError::Order(OrderError::MoneyAt {
                field: field.clone(),
                source,
            })
        })?,
    };
    Ok(line)
}

fn modifier(wire: PosModifier, currency: Currency) -> Modifier {
    let plu = non_empty(wire.plu);
    Modifier {
        group: non_empty(wire.group),
        name: wire.name,
        channel_item_id: plu.clone(),
        plu,
        quantity: wire.quantity,
        unit_price: Money::new(wire.unit_price, currency),
        removed: wire.removed,
        modifiers: wire
            .modifiers
            .into_iter()
            .map(|m| modifier(m, currency))
            .collect(),
    }
}

fn totals(wire: &PosTotals, currency: Currency, payment: Payment) -> Result<Totals, ChannelError> {
    let fees = wire.fees.clone().unwrap_or_default();
    let mut fields = vec![
        ("order.totals.subtotal".to_owned(), wire.subtotal),
        ("order.totals.tax".to_owned(), wire.tax),
        ("order.totals.fees.delivery".to_owned(), fees.delivery),
        ("order.totals.fees.service".to_owned(), fees.service),
        ("order.totals.fees.packaging".to_owned(), fees.packaging),
        ("order.totals.fees.other".to_owned(), fees.other),
        ("order.totals.tip".to_owned(), wire.tip),
        ("order.totals.total".to_owned(), wire.total),
    ];
    fields.extend(
        wire.discounts
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("order.totals.discounts[{i}].amount"), d.amount)),
    );
    if let Some((name, value)) = fields.iter().find(|(_, value)| *value < 0) {
        return Err(malformed(
            name,
            format!("{value} is negative; amounts are positive minor units"),
        ));
    }
    let money = |minor| Money::new(minor, currency);
    let total = money(wire.total);
    Ok(Totals {
        currency,
        subtotal: money(wire.subtotal),
        discounts: wire
            .discounts
            .iter()
            .map(|discount| Discount {
                label: non_empty(Some(discount.label.clone()))
                    .unwrap_or_else(|| "discount".to_owned()),
                amount: money(discount.amount),
                funded_by: FundedBy::Merchant,
            })
            .collect(),
        tax: money(wire.tax),
        tax_included: wire.tax_included,
        fees: Fees {
            delivery: money(fees.delivery),
            service: money(fees.service),
            packaging: money(fees.packaging),
            other: money(fees.other),
            ..Fees::zero(currency)
        },
        tip: money(wire.tip),
        total,
        cash_due: (payment == Payment::CashOnDelivery).then_some(total),
        total_is_derived: false,
    })
}
