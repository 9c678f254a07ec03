//! Translation between the own_app wire types and the unified order: an app order becomes a
//! [`NewOrder`]; a hub status action becomes a status callback.
//!
//! Rules (the crate docs describe the API itself):
//! - `channel_store_ref` is the app's `store_id`, which *is* our store code; it must be a valid
//!   [`StoreId`]. Pickup and dine-in orders need it; a delivery order may leave it out, and the
//!   router then picks the store whose zone holds the drop-off point.
//! - Delivery orders are delivered by the store (`delivered_by: store`), at WGS84 coordinates.
//! - The SKU is both the line's channel item id and its PLU (the app sells the chain's menu).
//! - Line totals are computed with [`Line::computed_total`]; the app's amounts are kept as
//!   sent, never recomputed ([`NewOrder::check`] flags what does not add up).
//! - The one `discount` becomes a merchant-funded discount (the chain runs its own promotions).
//! - `cash` payment sets `cash_due` to the total.
//! - Empty notes, instructions and postcodes mean none.

use chrono::{DateTime, SecondsFormat, Utc};
use crossdock_channel::ChannelError;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, NewOrder, Order, OrderError,
    Payment, StatusAction, StoreId, Timing, Totals,
};

use crate::wire::{
    AppAmounts, AppDelivery, AppFulfillment, AppItem, AppModifier, AppOrder, AppPayment,
    ORDER_STATUS, StatusCallback,
};

/// The key of the callback URL in [`NewOrder::channel_data`].
pub(crate) const CALLBACK_URL_KEY: &str = "callback_url";

fn malformed(field: &str, problem: impl std::fmt::Display) -> ChannelError {
    ChannelError::Malformed(format!("order.{field}: {problem}"))
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

/// Turns an app order into the unified order. It does not run [`NewOrder::check`].
pub(crate) fn new_order(channel: &ChannelId, order: AppOrder) -> Result<NewOrder, ChannelError> {
    if order.id.trim().is_empty() {
        return Err(malformed("id", "must not be empty"));
    }
    let currency =
        Currency::parse(&order.currency).map_err(|error| malformed("currency", error))?;
    let store = match &order.store_id {
        Some(id) => Some(
            StoreId::parse(id.as_str())
                .map_err(|error| malformed("store_id", error))?
                .to_string(),
        ),
        None => None,
    };
    let kind = match order.fulfillment {
        AppFulfillment::Delivery => FulfillmentKind::Delivery,
        AppFulfillment::Pickup => FulfillmentKind::Pickup,
        AppFulfillment::DineIn => FulfillmentKind::DineIn,
    };
    if kind != FulfillmentKind::Delivery && store.is_none() {
        let what = if kind == FulfillmentKind::Pickup {
            "pickup"
        } else {
            "dine_in"
        };
        return Err(malformed(
            "store_id",
            format!("required for {what} orders (the store the customer comes to)"),
        ));
    }
    let address = match (kind, order.delivery) {
        (FulfillmentKind::Delivery, Some(delivery)) => Some(address(delivery)),
        (FulfillmentKind::Delivery, None) => {
            return Err(malformed(
                "delivery",
                "required for delivery orders (address and location)",
            ));
        }
        // A pickup or dine-in order has no drop-off; an address sent anyway is ignored.
        (_, _) => None,
    };
    let callback_url = checked_callback_url(&order.callback_url)
        .map_err(|problem| malformed("callback_url", problem))?;

    let lines = order
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| line(index, item, currency))
        .collect::<Result<Vec<_>, _>>()?;
    let payment = match order.payment {
        AppPayment::Prepaid => Payment::Prepaid,
        AppPayment::Cash => Payment::CashOnDelivery,
        AppPayment::PayAtStore => Payment::PayAtStore,
    };
    let totals = totals(&order.amounts, currency, payment)?;

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id: order.id,
        display_code: non_empty(Some(order.code)),
        channel_store_ref: store,
        brand: non_empty(Some(order.brand)),
        platform_brand: None,
        placed_at: order.placed_at.with_timezone(&Utc),
        fulfillment: Fulfillment {
            kind,
            delivered_by: (kind == FulfillmentKind::Delivery).then_some(DeliveredBy::Store),
            address,
            timing: match order.scheduled_for {
                Some(at) => Timing::Scheduled {
                    at: at.with_timezone(&Utc),
                },
                None => Timing::Asap,
            },
            promised_at: None,
            accept_by: None,
        },
        customer: Customer {
            name: order.customer.name,
            phone: non_empty(order.customer.phone),
            phone_pin: None,
            email: None,
        },
        notes: non_empty(order.notes),
        lines,
        totals,
        payment,
        channel_data: serde_json::json!({ CALLBACK_URL_KEY: callback_url.as_str() }),
    })
}

/// The drop-off address. Coordinates are taken as sent; [`NewOrder::check`] refuses ones
/// out of range.
fn address(delivery: AppDelivery) -> Address {
    let AppDelivery {
        address,
        location,
        instructions,
    } = delivery;
    Address {
        lines: address.lines,
        city: non_empty(Some(address.city)),
        postcode: non_empty(address.postcode),
        country: non_empty(Some(address.country)),
        coordinates: Some(Coordinates {
            lat: location.lat,
            lng: location.lng,
            system: CoordSystem::Wgs84,
        }),
        instructions: non_empty(instructions),
    }
}

fn line(index: usize, item: AppItem, currency: Currency) -> Result<Line, ChannelError> {
    if item.sku.trim().is_empty() {
        return Err(malformed(
            &format!("items[{index}].sku"),
            "must not be empty",
        ));
    }
    let mut line = Line {
        channel_item_id: item.sku.clone(),
        plu: Some(item.sku),
        name: item.name,
        quantity: item.quantity,
        unit_price: Money::new(item.unit_price, currency),
        total: Money::zero(currency),
        notes: non_empty(item.notes),
        modifiers: item
            .modifiers
            .into_iter()
            .map(|m| modifier(m, currency))
            .collect(),
    };
    line.total = line.computed_total().map_err(|source| {
        ChannelError::Order(OrderError::MoneyAt {
            field: format!("order.items[{index}]"),
            source,
        })
    })?;
    Ok(line)
}

fn modifier(modifier: AppModifier, currency: Currency) -> Modifier {
    let sku = non_empty(modifier.sku);
    Modifier {
        group: non_empty(modifier.group),
        name: modifier.name,
        channel_item_id: sku.clone(),
        plu: sku,
        quantity: modifier.quantity,
        unit_price: Money::new(modifier.unit_price, currency),
        removed: modifier.removed,
        modifiers: modifier
            .modifiers
            .into_iter()
            .map(|m| self::modifier(m, currency))
            .collect(),
    }
}

fn totals(
    amounts: &AppAmounts,
    currency: Currency,
    payment: Payment,
) -> Result<Totals, ChannelError> {
    let fields = [
        ("subtotal", amounts.subtotal),
        ("discount", amounts.discount),
        ("delivery_fee", amounts.delivery_fee),
        ("service_fee", amounts.service_fee),
        ("tip", amounts.tip),
        ("tax", amounts.tax),
        ("total", amounts.total),
    ];
    if let Some((name, value)) = fields.iter().find(|(_, value)| *value < 0) {
        return Err(malformed(
            &format!("amounts.{name}"),
            format!("{value} is negative; amounts are positive minor units"),
        ));
    }
    let money = |minor| Money::new(minor, currency);
    let total = money(amounts.total);
    Ok(Totals {
        currency,
        subtotal: money(amounts.subtotal),
        discounts: if amounts.discount > 0 {
            vec![Discount {
                label: "discount".to_owned(),
                amount: money(amounts.discount),
                funded_by: FundedBy::Merchant,
            }]
        } else {
            Vec::new()
        },
        tax: money(amounts.tax),
        tax_included: amounts.tax_included,
        fees: Fees {
            delivery: money(amounts.delivery_fee),
            service: money(amounts.service_fee),
            ..Fees::zero(currency)
        },
        tip: money(amounts.tip),
        total,
        cash_due: (payment == Payment::CashOnDelivery).then_some(total),
        total_is_derived: false,
    })
}

/// An absolute `http` or `https` URL with a host, or why not.
pub(crate) fn checked_callback_url(text: &str) -> Result<reqwest::Url, String> {
    let url =
        reqwest::Url::parse(text).map_err(|error| format!("`{text}` is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    Ok(url)
}

/// The callback URL a stored order carries in its channel data.
pub(crate) fn callback_url(order: &Order) -> Result<reqwest::Url, ChannelError> {
    let text = order
        .order
        .channel_data
        .get(CALLBACK_URL_KEY)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            ChannelError::Malformed(format!(
                "order {} has no `{CALLBACK_URL_KEY}` in its channel data",
                order.id
            ))
        })?;
    checked_callback_url(text).map_err(|problem| {
        ChannelError::Malformed(format!("order {}: callback URL {problem}", order.id))
    })
}

/// The status callback for `action` on `order`, stamped `at`.
pub(crate) fn status_callback(
    order: &Order,
    action: &StatusAction,
    at: DateTime<Utc>,
) -> StatusCallback {
    StatusCallback {
        event: ORDER_STATUS.to_owned(),
        order_id: order.order.external_order_id.clone(),
        hub_order_id: order.id.to_string(),
        status: action.target().as_str().to_owned(),
        prep_minutes: match action {
            StatusAction::Accept { prep_minutes } => Some(*prep_minutes),
            _ => None,
        },
        reason: action.reason().map(str::to_owned),
        at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}
