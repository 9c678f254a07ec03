//! Ele.me's order (`OOrder`, the message of a type-10 push) → the unified [`NewOrder`].
//! All money conversion of the adapter happens here, and nowhere else: Ele.me sends yuan
//! as doubles, which are read as their exact JSON text ([`Num`]) and parsed as decimals
//! ([`yuan`]); a value that does not land on a whole fen fails the order, it is never
//! rounded, and nothing goes through `f64`.
//!
//! The rules follow CHANNELS.md §5.2, §8 and §10. Where those sections are silent the
//! choice made is stated on the function that makes it (and listed in the crate docs).

use crossdock_channel::convert::ConvertError;
use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeDelta, TimeZone, Utc};
use crossdock_channel::clip;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, MoneyError, NewOrder, Payment,
    Timing, Totals,
};

use crate::wire::{IdText, NameValue, Num, OGoodsItem, OOrder, OrderRef};

type Result<T> = std::result::Result<T, ConvertError>;

/// Beijing time (UTC+8, no daylight saving), the zone of every Ele.me time without an
/// offset. Evaluated at compile time: 8 hours is a valid offset.
pub(crate) const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// What the conversion needs besides the order: the channel's options and the envelope.
#[derive(Debug, Clone)]
pub(crate) struct Context<'a> {
    pub channel: &'a ChannelId,
    pub currency: Currency,
    /// Shops (Ele.me `shopId`) whose orders the store delivers itself.
    pub self_delivery_shops: &'a HashSet<String>,
    /// How long Ele.me waits for acceptance (`accept_by` = `activeAt` + this).
    pub accept_window: Option<TimeDelta>,
    /// The envelope's `shopId`: the order must be for that shop.
    pub envelope_shop_id: &'a str,
    /// The envelope's `userId` (the authorized merchant account), kept for later calls.
    pub merchant_user_id: Option<&'a str>,
    /// The envelope's `timestamp` (ms), the order time of last resort.
    pub sent_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------

/// Expands a JSON number in exponent notation (`1.2345678E7`, as Java writes large
/// doubles) into a plain decimal, exactly, by moving the decimal point. A plain number is
/// returned as it is; an exponent beyond ±40 is refused (`None`).
pub(crate) fn plain_decimal(text: &str) -> Option<String> {
    let Some(split) = text.find(['e', 'E']) else {
        return Some(text.to_owned());
    };
    let (mantissa, exponent) = (&text[..split], &text[split + 1..]);
    let exponent: i32 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .ok()?;
    if exponent.abs() > 40 {
        return None;
    }
    let (sign, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all = format!("{whole}{fraction}");
    let point = i32::try_from(whole.len()).ok()? + exponent;
    let text = if point <= 0 {
        format!("0.{}{all}", "0".repeat(usize::try_from(-point).ok()?))
    } else {
        let point = usize::try_from(point).ok()?;
        if point >= all.len() {
            format!("{all}{}", "0".repeat(point - all.len()))
        } else {
            format!("{}.{}", &all[..point], &all[point..])
        }
    };
    Some(format!("{sign}{text}"))
}

/// A yuan amount as Ele.me sent it, exactly, in minor units of `currency`.
pub(crate) fn yuan(value: &Num, currency: Currency, field: &str) -> Result<Money> {
    let at = |source| ConvertError::Money {
        field: field.to_owned(),
        source,
    };
    let plain = plain_decimal(value.as_str()).ok_or_else(|| {
        at(MoneyError::NotANumber {
            value: value.as_str().to_owned(),
        })
    })?;
    Money::from_major_str(&plain, currency).map_err(|source| match source {
        // Name the amount as sent, not its expansion.
        MoneyError::FractionalMinorUnit {
            currency, exponent, ..
        } => at(MoneyError::FractionalMinorUnit {
            value: value.as_str().to_owned(),
            currency,
            exponent,
        }),
        other => at(other),
    })
}

/// An optional amount; absent or `null` is zero.
fn yuan_or_zero(value: Option<&Num>, currency: Currency, field: &str) -> Result<Money> {
    value.map_or(Ok(Money::zero(currency)), |v| yuan(v, currency, field))
}

fn add(left: Money, right: Money, field: &str) -> Result<Money> {
    left.checked_add(right)
        .map_err(|source| ConvertError::Money {
            field: field.to_owned(),
            source,
        })
}

/// The size of a discount, whatever sign Ele.me gave it (activity funding is negative).
fn magnitude(money: Money, field: &str) -> Result<Money> {
    let minor = money
        .minor
        .checked_abs()
        .ok_or_else(|| ConvertError::Money {
            field: field.to_owned(),
            source: MoneyError::Overflow {
                value: money.minor.to_string(),
            },
        })?;
    Ok(Money::new(minor, money.currency))
}

// ---------------------------------------------------------------------------------------
// Times, text, places
// ---------------------------------------------------------------------------------------

/// An Ele.me time: Beijing local time without an offset (`2017-10-30T20:08:07`, also
/// with a space instead of `T`, or with fractional seconds). A time that carries an
/// offset (RFC 3339) is taken as it says.
pub(crate) fn beijing_time(value: &str, field: &str) -> Result<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .ok_or_else(|| {
            ConvertError::field(
                field,
                format!(
                    "`{}` is not a time (expected Beijing local time like 2026-11-20T20:08:07)",
                    clip(value)
                ),
            )
        })?;
    BEIJING
        .from_local_datetime(&local)
        .single()
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| ConvertError::field(field, format!("`{}` is not a valid time", clip(value))))
}

/// `Some(trimmed)` for a non-empty text, `None` for an absent or blank one.
fn text(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn id_text(value: Option<&IdText>) -> Option<String> {
    value
        .map(|v| v.as_str().trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn order_ref(value: Option<&OrderRef>) -> Option<String> {
    value
        .map(|v| v.as_str().trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `deliveryGeo`: `"lng,lat"`, longitude first, in GCJ-02.
fn delivery_geo(value: &str, field: &str) -> Result<Coordinates> {
    let bad = || {
        ConvertError::field(
            field,
            format!("`{}` is not \"longitude,latitude\"", clip(value)),
        )
    };
    let (lng, lat) = value.split_once(',').ok_or_else(bad)?;
    let lng: f64 = lng.trim().parse().map_err(|_| bad())?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    Ok(Coordinates {
        lat,
        lng,
        system: CoordSystem::Gcj02,
    })
}

/// A phone number as Ele.me gives it, split into the number and the extension of a
/// privacy number (`13800138000,1234` → `13800138000` and `1234`).
fn phone_and_pin(value: &str) -> (Option<String>, Option<String>) {
    let value = value.trim();
    match value.split_once([',', '，']) {
        Some((number, pin)) => (
            Some(number.trim().to_owned()).filter(|n| !n.is_empty()),
            Some(pin.trim().to_owned()).filter(|p| !p.is_empty()),
        ),
        None => (Some(value.to_owned()).filter(|n| !n.is_empty()), None),
    }
}

// ---------------------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------------------

/// Specs then attributes, each a modifier of quantity 1 and price 0 grouped by its
/// name: Ele.me folds option prices into the item's price (CHANNELS.md §8.3).
fn modifiers(item: &OGoodsItem, currency: Currency) -> Vec<Modifier> {
    item.new_specs
        .iter()
        .flatten()
        .chain(item.attributes.iter().flatten())
        .filter_map(|pair| modifier(pair, currency))
        .collect()
}

/// A name/value pair as a modifier: the value is the option, the name its group; a pair
/// with only a name is an option without a group; an empty pair is nothing.
fn modifier(pair: &NameValue, currency: Currency) -> Option<Modifier> {
    let (group, name) = match (text(pair.name.as_ref()), text(pair.value.as_ref())) {
        (group, Some(value)) => (group, value),
        (Some(name), None) => (None, name),
        (None, None) => return None,
    };
    Some(Modifier {
        group,
        name,
        channel_item_id: None,
        plu: None,
        quantity: 1,
        unit_price: Money::zero(currency),
        removed: false,
        modifiers: Vec::new(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    Normal,
    Extra,
    Gift,
}

fn group_kind(value: &str, field: &str) -> Result<GroupKind> {
    match value.trim() {
        "normal" => Ok(GroupKind::Normal),
        "extra" => Ok(GroupKind::Extra),
        "discount" => Ok(GroupKind::Gift),
        other => Err(ConvertError::field(
            field,
            format!(
                "unknown group type `{}` (expected normal, extra or discount)",
                clip(other)
            ),
        )),
    }
}

/// The label of a gift line's note.
pub(crate) const GIFT_NOTE: &str = "赠品 (gift)";

/// A line of a `normal` group (prices as sent) or a gift of the `discount` group (price
/// 0: the customer pays nothing for it, whatever `price` says).
fn line(item: &OGoodsItem, kind: GroupKind, currency: Currency, field: &str) -> Result<Line> {
    let channel_item_id = id_text(item.id.as_ref())
        .or_else(|| id_text(item.sku_id.as_ref()))
        .ok_or_else(|| ConvertError::field(format!("{field}.id"), "the item has no id"))?;
    let (unit_price, total) = if kind == GroupKind::Gift {
        (Money::zero(currency), Money::zero(currency))
    } else {
        let price = item
            .price
            .as_ref()
            .ok_or_else(|| ConvertError::field(format!("{field}.price"), "missing"))?;
        let unit_price = yuan(price, currency, &format!("{field}.price"))?;
        let total = match &item.total {
            Some(total) => yuan(total, currency, &format!("{field}.total"))?,
            // No reported total: price × quantity, in minor units.
            None => {
                unit_price
                    .checked_mul(item.quantity)
                    .map_err(|source| ConvertError::Money {
                        field: format!("{field}.total"),
                        source,
                    })?
            }
        };
        (unit_price, total)
    };
    Ok(Line {
        channel_item_id,
        plu: text(item.extend_code.as_ref()),
        name: item.name.trim().to_owned(),
        quantity: item.quantity,
        unit_price,
        total,
        notes: (kind == GroupKind::Gift).then(|| GIFT_NOTE.to_owned()),
        modifiers: modifiers(item, currency),
    })
}

// ---------------------------------------------------------------------------------------
// The order
// ---------------------------------------------------------------------------------------

/// The label of the discounts taken from Ele.me's activity totals: the activities'
/// names, or a generic one.
fn activity_label(order: &OOrder) -> String {
    let names: Vec<String> = order
        .order_activities
        .iter()
        .flatten()
        .filter_map(|a| text(a.name.as_ref()))
        .collect();
    if names.is_empty() {
        "饿了么活动".to_owned()
    } else {
        names.join("、")
    }
}

/// The discounts: `shopPart` (merchant-funded) and `elemePart` (Ele.me-funded) when
/// either is set, else `activityTotal` with unknown funding; then the red packet
/// (`hongbao`, Ele.me-funded) and the member delivery-fee reduction
/// (`vipDeliveryFeeDiscount`, Ele.me-funded). Each as a positive amount whatever sign
/// Ele.me used; zero amounts are left out.
fn discounts(order: &OOrder, currency: Currency) -> Result<Vec<Discount>> {
    let label = activity_label(order);
    let shop = magnitude(
        yuan_or_zero(order.shop_part.as_ref(), currency, "order.shopPart")?,
        "order.shopPart",
    )?;
    let eleme = magnitude(
        yuan_or_zero(order.eleme_part.as_ref(), currency, "order.elemePart")?,
        "order.elemePart",
    )?;
    let total = magnitude(
        yuan_or_zero(
            order.activity_total.as_ref(),
            currency,
            "order.activityTotal",
        )?,
        "order.activityTotal",
    )?;
    let hongbao = magnitude(
        yuan_or_zero(order.hongbao.as_ref(), currency, "order.hongbao")?,
        "order.hongbao",
    )?;
    let vip = magnitude(
        yuan_or_zero(
            order.vip_delivery_fee_discount.as_ref(),
            currency,
            "order.vipDeliveryFeeDiscount",
        )?,
        "order.vipDeliveryFeeDiscount",
    )?;
    let mut discounts = Vec::new();
    let mut push = |label: String, amount: Money, funded_by: FundedBy| {
        if amount.minor != 0 {
            discounts.push(Discount {
                label,
                amount,
                funded_by,
            });
        }
    };
    if shop.minor != 0 || eleme.minor != 0 {
        push(format!("{label} (商家承担)"), shop, FundedBy::Merchant);
        push(format!("{label} (饿了么承担)"), eleme, FundedBy::Platform);
    } else {
        push(label, total, FundedBy::Unknown);
    }
    push("红包 (hongbao)".to_owned(), hongbao, FundedBy::Platform);
    push("会员减配送费".to_owned(), vip, FundedBy::Platform);
    Ok(discounts)
}

/// Converts the order of a type-10 push.
pub(crate) fn order(order: &OOrder, context: &Context<'_>) -> Result<NewOrder> {
    let currency = context.currency;
    let external_order_id = order_ref(order.id.as_ref())
        .or_else(|| order_ref(order.order_id.as_ref()))
        .ok_or_else(|| ConvertError::field("order.id", "the order has no id"))?;
    let shop_id = id_text(order.shop_id.as_ref())
        .unwrap_or_else(|| context.envelope_shop_id.trim().to_owned());
    if shop_id != context.envelope_shop_id.trim() {
        return Err(ConvertError::field(
            "order.shopId",
            format!(
                "the order is for shop {} but the message came for shop {}",
                clip(&shop_id),
                clip(context.envelope_shop_id)
            ),
        ));
    }

    let created_at = order
        .created_at
        .as_deref()
        .map(|v| beijing_time(v, "order.createdAt"))
        .transpose()?;
    let active_at = order
        .active_at
        .as_deref()
        .map(|v| beijing_time(v, "order.activeAt"))
        .transpose()?;
    let placed_at = created_at
        .or(active_at)
        .or(context.sent_at)
        .ok_or_else(|| ConvertError::field("order.createdAt", "missing (and no activeAt)"))?;

    let booked = order.book.unwrap_or(false);
    let deliver_time = order
        .deliver_time
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .map(|v| beijing_time(v, "order.deliverTime"))
        .transpose()?;
    let timing = match (booked, deliver_time) {
        (true, Some(at)) => Timing::Scheduled { at },
        (true, None) => {
            tracing::warn!(
                channel = context.channel.as_str(),
                external_order_id = %external_order_id,
                "Ele.me order is booked but has no deliverTime; taken as ASAP."
            );
            Timing::Asap
        }
        (false, _) => Timing::Asap,
    };

    let pickup = order.order_business_type == Some(1);
    let (kind, delivered_by, address) = if pickup {
        (FulfillmentKind::Pickup, None, None)
    } else {
        let coordinates = order
            .delivery_geo
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(|v| delivery_geo(v, "order.deliveryGeo"))
            .transpose()?;
        let mut lines: Vec<String> = text(order.address.as_ref()).into_iter().collect();
        if let Some(poi) = text(order.delivery_poi_address.as_ref())
            && !lines.contains(&poi)
        {
            lines.push(poi);
        }
        let delivered_by = if context.self_delivery_shops.contains(&shop_id) {
            DeliveredBy::Store
        } else {
            DeliveredBy::Platform
        };
        let address = (!lines.is_empty() || coordinates.is_some()).then(|| Address {
            lines,
            city: None,
            postcode: None,
            country: Some("CN".to_owned()),
            coordinates,
            instructions: None,
        });
        (FulfillmentKind::Delivery, Some(delivered_by), address)
    };

    let (phone, phone_pin) = order
        .phone_list
        .iter()
        .flatten()
        .map(|p| phone_and_pin(p))
        .find(|(phone, _)| phone.is_some())
        .unwrap_or((None, None));
    let customer = Customer {
        name: text(order.consignee.as_ref()).unwrap_or_default(),
        phone,
        phone_pin,
        email: None,
    };

    let mut lines = Vec::new();
    let mut subtotal = Money::zero(currency);
    let mut extras = Money::zero(currency);
    for (g, group) in order.groups.iter().flatten().enumerate() {
        let field = format!("order.groups[{g}]");
        let kind = group_kind(&group.kind, &format!("{field}.type"))?;
        for (i, item) in group.items.iter().flatten().enumerate() {
            let field = format!("{field}.items[{i}]");
            match kind {
                GroupKind::Extra => {
                    let total = match (&item.total, &item.price) {
                        (Some(total), _) => yuan(total, currency, &format!("{field}.total"))?,
                        (None, Some(price)) => yuan(price, currency, &format!("{field}.price"))?
                            .checked_mul(item.quantity)
                            .map_err(|source| ConvertError::Money {
                                field: format!("{field}.total"),
                                source,
                            })?,
                        (None, None) => Money::zero(currency),
                    };
                    extras = add(extras, total, "order.groups (extra)")?;
                }
                GroupKind::Normal | GroupKind::Gift => {
                    let line = line(item, kind, currency, &field)?;
                    if kind == GroupKind::Normal {
                        subtotal = add(subtotal, line.total, "order.groups (subtotal)")?;
                    }
                    lines.push(line);
                }
            }
        }
    }

    let total = order
        .total_price
        .as_ref()
        .ok_or_else(|| ConvertError::field("order.totalPrice", "missing"))?;
    let total = yuan(total, currency, "order.totalPrice")?;
    let packaging = match &order.package_fee {
        Some(fee) => yuan(fee, currency, "order.packageFee")?,
        None => extras,
    };
    let fees = Fees {
        delivery: yuan_or_zero(order.deliver_fee.as_ref(), currency, "order.deliverFee")?,
        packaging,
        other: yuan_or_zero(order.cold_box_fee.as_ref(), currency, "order.coldBoxFee")?,
        ..Fees::zero(currency)
    };
    let online_paid = order.online_paid.unwrap_or(true);
    let (payment, cash_due) = if online_paid {
        (Payment::Prepaid, None)
    } else if kind == FulfillmentKind::Pickup {
        (Payment::PayAtStore, Some(total))
    } else {
        (Payment::CashOnDelivery, Some(total))
    };
    let totals = Totals {
        currency,
        subtotal,
        discounts: discounts(order, currency)?,
        tax: Money::zero(currency),
        tax_included: true,
        fees,
        tip: Money::zero(currency),
        total,
        cash_due,
        total_is_derived: false,
    };

    let accept_by = context
        .accept_window
        .map(|window| active_at.unwrap_or(placed_at) + window);
    let mut channel_data = serde_json::Map::new();
    channel_data.insert("shop_id".into(), shop_id.clone().into());
    if let Some(open_id) = text(order.open_id.as_ref()) {
        channel_data.insert("open_id".into(), open_id.into());
    }
    if let Some(user) = context.merchant_user_id.filter(|u| !u.is_empty()) {
        channel_data.insert("merchant_user_id".into(), user.into());
    }

    Ok(NewOrder {
        channel: context.channel.clone(),
        external_order_id,
        display_code: order.day_sn.map(|sn| sn.to_string()),
        channel_store_ref: Some(shop_id),
        brand: None,
        platform_brand: None,
        placed_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing,
            promised_at: None,
            accept_by,
        },
        customer,
        notes: text(order.description.as_ref()),
        lines,
        totals,
        payment,
        channel_data: serde_json::Value::Object(channel_data),
    })
}
