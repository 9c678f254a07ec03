//! A Meituan order push (form fields, decoded) → the unified [`NewOrder`]. All money
//! conversion of the adapter happens here: Meituan sends yuan decimals (`"38.5"`), read
//! with [`Money::from_major_str`] in CNY; an amount with a fraction of a fen fails the
//! order, it is never rounded.
//!
//! The rules follow CHANNELS.md §4.3, §8 and §10; where those are silent the choice is
//! stated on the function that makes it.

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::clip;
use crossdock_channel::convert::ConvertError;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Discount, Fees,
    Fulfillment, FulfillmentKind, FundedBy, Line, Modifier, Money, MoneyError, NewOrder, Payment,
    Timing, Totals,
};
use serde_json::value::RawValue;

use crate::wire::{DetailItem, ExtraItem, scalar};

/// Meituan Waimai trades in yuan only.
pub(crate) const CURRENCY: &str = "CNY";

/// `logistics_code` of orders the merchant delivers itself (商家自配).
pub(crate) const SELF_DELIVERY: &str = "0000";

/// The group name of a line's spec modifier (规格).
pub(crate) const SPEC_GROUP: &str = "spec";
/// The group name of a line's attribute modifiers (属性).
pub(crate) const PROPERTY_GROUP: &str = "property";

type Result<T> = std::result::Result<T, ConvertError>;

/// The decoded parameters of a push, read by name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Form<'a> {
    params: &'a [(String, String)],
}

impl<'a> Form<'a> {
    pub(crate) fn new(params: &'a [(String, String)]) -> Self {
        Self { params }
    }

    /// The first value of `name`, as sent.
    pub(crate) fn raw(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, trimmed; `None` when absent or blank.
    pub(crate) fn text(&self, name: &str) -> Option<&'a str> {
        self.raw(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The value of `name`, trimmed and not blank.
    pub(crate) fn required(&self, name: &str) -> Result<&'a str> {
        self.text(name)
            .ok_or_else(|| ConvertError::missing(name.to_owned()))
    }
}

/// The order currency. A constant, so this is no input-dependent panic.
pub(crate) fn cny() -> Currency {
    #[allow(clippy::expect_used)]
    Currency::parse(CURRENCY).expect("CNY is an ISO-4217 code")
}

/// A yuan decimal as money.
fn yuan(text: &str, field: &str) -> Result<Money> {
    Money::from_major_str(text, cny()).map_err(|source| ConvertError::Money {
        field: field.to_owned(),
        source,
    })
}

/// An optional yuan decimal of `detail`/`extras` (raw JSON).
fn json_yuan(raw: Option<&RawValue>, field: &str) -> Result<Option<Money>> {
    scalar(raw)
        .map_err(|message| ConvertError::field(field, message))?
        .map(|text| yuan(&text, field))
        .transpose()
}

fn json_text(raw: Option<&RawValue>, field: &str) -> Result<Option<String>> {
    Ok(scalar(raw)
        .map_err(|message| ConvertError::field(field, message))?
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty()))
}

/// A whole number, as text (`"2"`, `2`); `"2.0"` is accepted, `"2.5"` is not.
fn integer(text: &str, field: &str) -> Result<i64> {
    let text = text.trim();
    let whole = text
        .split_once('.')
        .filter(|(_, fraction)| !fraction.is_empty() && fraction.bytes().all(|b| b == b'0'))
        .map_or(text, |(whole, _)| whole);
    whole
        .parse::<i64>()
        .map_err(|_| ConvertError::field(field, format!("`{}` is not a whole number", clip(text))))
}

/// `money × factor` where `factor` is a decimal text (`"1"`, `"0.5"`), exactly; a result
/// with a fraction of a fen is an error.
fn times_decimal(money: Money, factor: &str, field: &str) -> Result<Money> {
    let text = factor.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = fraction.trim_end_matches('0');
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 6;
    if !well_formed {
        return Err(ConvertError::field(
            field,
            format!("`{}` is not a non-negative decimal", clip(text)),
        ));
    }
    let overflow = || ConvertError::Money {
        field: field.to_owned(),
        source: MoneyError::Overflow {
            value: format!("{} × {text}", money.minor),
        },
    };
    let scale = 10_i64.pow(fraction.len() as u32);
    let units: i64 = format!("{whole}{fraction}")
        .parse()
        .map_err(|_| overflow())?;
    let product = money.minor.checked_mul(units).ok_or_else(overflow)?;
    if product % scale != 0 {
        return Err(ConvertError::Money {
            field: field.to_owned(),
            source: MoneyError::FractionalMinorUnit {
                value: format!("{money} × {text}"),
                currency: money.currency,
                exponent: money.currency.exponent(),
            },
        });
    }
    Ok(Money::new(product / scale, money.currency))
}

/// Unix seconds (Meituan's 10-digit timestamps). A 13-digit value is taken as milliseconds,
/// which some Meituan fields use.
pub(crate) fn unix(text: &str, field: &str) -> Result<DateTime<Utc>> {
    let value = integer(text, field)?;
    let at = if value.abs() >= 100_000_000_000 {
        DateTime::from_timestamp_millis(value)
    } else {
        DateTime::from_timestamp(value, 0)
    };
    at.ok_or_else(|| ConvertError::field(field, format!("`{value}` is not a valid time")))
}

/// A coordinate in GCJ-02 degrees. Meituan sends decimal degrees (`31.225943`); some API
/// versions send micro-degrees (the value × 10⁶ as an integer, `31225943`). A latitude
/// beyond ±90 or a longitude beyond ±180 cannot be degrees, so it is taken as micro-degrees.
/// `0` or an empty value means none.
fn coordinate(text: Option<&str>, limit: f64, field: &str) -> Result<Option<f64>> {
    let Some(text) = text else { return Ok(None) };
    let value: f64 = text
        .parse()
        .map_err(|_| ConvertError::field(field, format!("`{}` is not a number", clip(text))))?;
    if !value.is_finite() {
        return Err(ConvertError::field(
            field,
            format!("`{}` is not finite", clip(text)),
        ));
    }
    if value == 0.0 {
        return Ok(None);
    }
    Ok(Some(if value.abs() > limit {
        value / 1_000_000.0
    } else {
        value
    }))
}

fn coordinates(form: &Form<'_>) -> Result<Option<Coordinates>> {
    let lat = coordinate(form.text("latitude"), 90.0, "latitude")?;
    let lng = coordinate(form.text("longitude"), 180.0, "longitude")?;
    Ok(match (lat, lng) {
        (Some(lat), Some(lng)) => Some(Coordinates {
            lat,
            lng,
            system: CoordSystem::Gcj02,
        }),
        _ => None,
    })
}

/// `recipient_phone`: a real number, a masked one (`138****5678`) or a privacy number with
/// its extension (`13812345678_1234`), split into the number and the PIN to dial after it.
fn phone(form: &Form<'_>) -> (Option<String>, Option<String>) {
    match form.text("recipient_phone") {
        None => (None, None),
        Some(phone) => match phone.split_once('_') {
            Some((number, pin)) if !pin.trim().is_empty() => {
                (Some(number.trim().to_owned()), Some(pin.trim().to_owned()))
            }
            _ => (Some(phone.trim_end_matches('_').to_owned()), None),
        },
    }
}

/// `recipient_address`: what the customer typed, optionally followed by `@#` and Meituan's
/// reverse-geocoded address (subscription field 13); each part is one address line.
fn address(form: &Form<'_>) -> Result<Option<Address>> {
    let lines: Vec<String> = form
        .text("recipient_address")
        .map(|address| {
            address
                .split("@#")
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let coordinates = coordinates(form)?;
    if lines.is_empty() && coordinates.is_none() {
        return Ok(None);
    }
    Ok(Some(Address {
        lines,
        city: None,
        postcode: None,
        // Meituan Waimai serves mainland China only.
        country: Some("CN".to_owned()),
        coordinates,
        instructions: None,
    }))
}

/// `pick_type` (subscription field 28): 0 or absent = delivery, 1 = 到店自取.
fn kind(form: &Form<'_>) -> Result<FulfillmentKind> {
    match form.text("pick_type") {
        None | Some("0") => Ok(FulfillmentKind::Delivery),
        Some("1") => Ok(FulfillmentKind::Pickup),
        Some(other) => Err(ConvertError::field(
            "pick_type",
            format!("unknown pick type `{}` (0 delivery, 1 pickup)", clip(other)),
        )),
    }
}

/// Who delivers: `logistics_code` `0000` is the merchant (商家自配); any other code is a
/// Meituan or partner fleet. Without `logistics_code` (not subscribed), `is_third_shipping=1`
/// means a third-party fleet; otherwise it is unknown (Meituan's own flag does not tell
/// merchant from Meituan delivery).
fn delivered_by(form: &Form<'_>) -> Option<DeliveredBy> {
    match form.text("logistics_code") {
        Some(SELF_DELIVERY) => Some(DeliveredBy::Store),
        Some(_) => Some(DeliveredBy::Platform),
        None if form.text("is_third_shipping") == Some("1") => Some(DeliveredBy::Platform),
        None => None,
    }
}

/// `pay_type`: 1 cash on delivery (collect `total`), 2 or absent online.
fn payment(
    form: &Form<'_>,
    kind: FulfillmentKind,
    total: Money,
) -> Result<(Payment, Option<Money>)> {
    match form.text("pay_type") {
        None | Some("2") => Ok((Payment::Prepaid, None)),
        Some("1") if kind == FulfillmentKind::Pickup => Ok((Payment::PayAtStore, Some(total))),
        Some("1") => Ok((Payment::CashOnDelivery, Some(total))),
        Some(other) => Err(ConvertError::field(
            "pay_type",
            format!("unknown pay type `{}` (1 cash, 2 online)", clip(other)),
        )),
    }
}

fn flat_modifier(group: &str, name: &str, currency: Currency) -> Modifier {
    Modifier {
        group: Some(group.to_owned()),
        name: name.to_owned(),
        channel_item_id: None,
        plu: None,
        quantity: 1,
        unit_price: Money::zero(currency),
        removed: false,
        modifiers: Vec::new(),
    }
}

/// One `detail` entry: the line and its box fee (`box_num × box_price`, for the whole line).
///
/// Meituan has no modifier tree: the spec (`spec`) and the attributes (`food_property`,
/// comma-separated) become one level of modifiers at price 0 (their price is in `price`),
/// in groups `spec` and `property`. The line's id is `sku_id`, else `app_food_code`, else
/// the name; its PLU is `app_food_code`.
fn line(index: usize, item: &DetailItem<'_>, currency: Currency) -> Result<(Line, Money)> {
    let at = |name: &str| format!("detail[{index}].{name}");
    let name = json_text(item.food_name, &at("food_name"))?
        .ok_or_else(|| ConvertError::missing(at("food_name")))?;
    let plu = json_text(item.app_food_code, &at("app_food_code"))?;
    let sku = json_text(item.sku_id, &at("sku_id"))?;
    let quantity_text = json_text(item.quantity, &at("quantity"))?
        .ok_or_else(|| ConvertError::missing(at("quantity")))?;
    let quantity = integer(&quantity_text, &at("quantity"))?;
    let unit_price =
        json_yuan(item.price, &at("price"))?.ok_or_else(|| ConvertError::missing(at("price")))?;
    let box_price = json_yuan(item.box_price, &at("box_price"))?.unwrap_or(Money::zero(currency));
    let box_fee = match json_text(item.box_num, &at("box_num"))? {
        Some(boxes) => times_decimal(box_price, &boxes, &at("box_num"))?,
        None => Money::zero(currency),
    };
    let mut modifiers = Vec::new();
    if let Some(spec) = json_text(item.spec, &at("spec"))? {
        modifiers.push(flat_modifier(SPEC_GROUP, &spec, currency));
    }
    if let Some(properties) = json_text(item.food_property, &at("food_property"))? {
        modifiers.extend(
            properties
                .split([',', '，'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| flat_modifier(PROPERTY_GROUP, p, currency)),
        );
    }
    let total = unit_price
        .checked_mul(quantity)
        .map_err(|source| ConvertError::Money {
            field: at("price"),
            source,
        })?;
    let line = Line {
        channel_item_id: sku
            .clone()
            .or_else(|| plu.clone())
            .unwrap_or_else(|| name.clone()),
        plu,
        name,
        quantity,
        unit_price,
        total,
        notes: None,
        modifiers,
    };
    Ok((line, box_fee))
}

/// One `extras` entry as discounts. `{}` entries and activities that take nothing off
/// (gifts: `reduce_fee` 0) are skipped. When `mt_charge` and `poi_charge` are sent and add up
/// to `reduce_fee`, the discount is split by who funds it (two entries when both do);
/// otherwise it is one discount of unknown funding.
fn discounts(index: usize, extra: &ExtraItem<'_>, currency: Currency) -> Result<Vec<Discount>> {
    let at = |name: &str| format!("extras[{index}].{name}");
    let Some(reduce) = json_yuan(extra.reduce_fee, &at("reduce_fee"))? else {
        return Ok(Vec::new());
    };
    let amount = Money::new(reduce.minor.saturating_abs(), currency);
    if amount.minor == 0 {
        return Ok(Vec::new());
    }
    let label = match (
        json_text(extra.remark, &at("remark"))?,
        json_text(extra.kind, &at("type"))?,
    ) {
        (Some(remark), _) => remark,
        (None, Some(kind)) => format!("美团活动 (type {kind})"),
        (None, None) => "美团活动".to_owned(),
    };
    let positive = |m: Option<Money>| m.map(|m| Money::new(m.minor.saturating_abs(), currency));
    let mt = positive(json_yuan(extra.mt_charge, &at("mt_charge"))?);
    let poi = positive(json_yuan(extra.poi_charge, &at("poi_charge"))?);
    let zero = Money::zero(currency);
    let one = |funded_by| {
        Ok(vec![Discount {
            label: label.clone(),
            amount,
            funded_by,
        }])
    };
    match (mt, poi) {
        (Some(mt), Some(poi)) if mt.checked_add(poi).ok() == Some(amount) => {
            if poi == zero {
                one(FundedBy::Platform)
            } else if mt == zero {
                one(FundedBy::Merchant)
            } else {
                Ok(vec![
                    Discount {
                        label: format!("{label} (美团承担)"),
                        amount: mt,
                        funded_by: FundedBy::Platform,
                    },
                    Discount {
                        label: format!("{label} (商家承担)"),
                        amount: poi,
                        funded_by: FundedBy::Merchant,
                    },
                ])
            }
        }
        (Some(mt), None) if mt == amount => one(FundedBy::Platform),
        (None, Some(poi)) if poi == amount => one(FundedBy::Merchant),
        _ => one(FundedBy::Unknown),
    }
}

fn json_array<'a, T: serde::Deserialize<'a>>(text: &'a str, field: &str) -> Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| {
        ConvertError::field(field, format!("not a JSON array of {field} entries: {e}"))
    })
}

/// What the adapter needs from its configuration to convert an order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Meituan cancels an order that is not confirmed this long after it was placed.
    pub accept_window: TimeDelta,
}

/// Converts a new-order push.
pub(crate) fn order(channel: &ChannelId, form: &Form<'_>, rules: Rules) -> Result<NewOrder> {
    let currency = cny();
    let external_order_id = form.required("order_id")?.to_owned();
    let store = form.required("app_poi_code")?.to_owned();
    let placed_at = unix(form.required("ctime")?, "ctime")?;
    let timing = match form.text("delivery_time") {
        None | Some("0") => Timing::Asap,
        Some(at) => Timing::Scheduled {
            at: unix(at, "delivery_time")?,
        },
    };
    let kind = kind(form)?;
    let (delivered_by, address) = match kind {
        FulfillmentKind::Delivery => (delivered_by(form), address(form)?),
        _ => (None, None),
    };

    let detail = form.required("detail")?;
    let items: Vec<DetailItem<'_>> = json_array(detail, "detail")?;
    let mut lines = Vec::with_capacity(items.len());
    let mut subtotal = Money::zero(currency);
    let mut packaging = Money::zero(currency);
    for (index, item) in items.iter().enumerate() {
        let (line, box_fee) = line(index, item, currency)?;
        let sum = |a: Money, b: Money| {
            a.checked_add(b).map_err(|source| ConvertError::Money {
                field: format!("detail[{index}]"),
                source,
            })
        };
        subtotal = sum(subtotal, line.total)?;
        packaging = sum(packaging, box_fee)?;
        lines.push(line);
    }

    let mut order_discounts = Vec::new();
    if let Some(extras) = form.text("extras") {
        let extras: Vec<ExtraItem<'_>> = json_array(extras, "extras")?;
        for (index, extra) in extras.iter().enumerate() {
            order_discounts.extend(discounts(index, extra, currency)?);
        }
    }

    let delivery_fee = form
        .text("shipping_fee")
        .map(|fee| yuan(fee, "shipping_fee"))
        .transpose()?
        .unwrap_or(Money::zero(currency));
    let total = yuan(form.required("total")?, "total")?;
    let (payment, cash_due) = payment(form, kind, total)?;
    let (phone, phone_pin) = phone(form);
    let display_code = form
        .text("day_seq")
        .filter(|seq| *seq != "0")
        .or_else(|| form.text("wm_order_id_view"))
        .map(str::to_owned);

    let mut channel_data = serde_json::Map::new();
    for name in ["wm_order_id_view", "logistics_code", "original_price"] {
        if let Some(value) = form.text(name) {
            channel_data.insert(name.to_owned(), serde_json::Value::from(value));
        }
    }

    Ok(NewOrder {
        channel: channel.clone(),
        external_order_id,
        display_code,
        channel_store_ref: Some(store),
        brand: None,
        platform_brand: None,
        placed_at,
        fulfillment: Fulfillment {
            kind,
            delivered_by,
            address,
            timing,
            promised_at: None,
            accept_by: Some(placed_at + rules.accept_window),
        },
        customer: Customer {
            name: form.text("recipient_name").unwrap_or_default().to_owned(),
            phone,
            phone_pin,
            email: None,
        },
        notes: form.text("caution").map(str::to_owned),
        lines,
        totals: Totals {
            currency,
            subtotal,
            discounts: order_discounts,
            tax: Money::zero(currency),
            // Chinese menu prices include VAT; Meituan sends no tax.
            tax_included: true,
            fees: Fees {
                delivery: delivery_fee,
                packaging,
                ..Fees::zero(currency)
            },
            tip: Money::zero(currency),
            total,
            cash_due,
            total_is_derived: false,
        },
        payment,
        channel_data: serde_json::Value::Object(channel_data),
    })
}

/// What Meituan's cancel reason codes mean (CHANNELS.md §4.4), for people.
pub(crate) fn cancel_reason_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "1001" => "系统取消：超时未确认",
        "1002" => "系统取消：在线支付订单30分钟未支付",
        "1101" => "用户取消：在线支付中取消",
        "1102" => "用户取消：商家确认前取消",
        "1103" => "用户取消：用户退款取消",
        "1201" | "1202" | "1203" | "1204" => "客服取消",
        "1301" => "其他原因",
        "2001" => "商家取消：超时未接单",
        "2002" => "商家取消：修改订单",
        "2003" => "商家取消：非顾客原因",
        "2004" => "商家取消：配送延迟",
        "2005" => "商家取消：售后投诉",
        "2006" => "商家取消：用户要求取消",
        "2007" => "商家取消：其他原因",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(minor: i64) -> Money {
        Money::new(minor, cny())
    }

    #[test]
    fn box_fees_multiply_exactly_or_fail() {
        assert_eq!(times_decimal(money(150), "2", "b"), Ok(money(300)));
        assert_eq!(times_decimal(money(150), "2.0", "b"), Ok(money(300)));
        assert_eq!(times_decimal(money(100), "0.5", "b"), Ok(money(50)));
        assert!(matches!(
            times_decimal(money(1), "0.5", "b"),
            Err(ConvertError::Money {
                source: MoneyError::FractionalMinorUnit { .. },
                ..
            })
        ));
        assert!(matches!(
            times_decimal(money(100), "-1", "b"),
            Err(ConvertError::Field { .. })
        ));
        assert!(matches!(
            times_decimal(money(i64::MAX), "2", "b"),
            Err(ConvertError::Money {
                source: MoneyError::Overflow { .. },
                ..
            })
        ));
    }

    #[test]
    fn integers_and_times_read_meituans_forms() {
        assert_eq!(integer("2", "q"), Ok(2));
        assert_eq!(integer("2.00", "q"), Ok(2));
        assert!(integer("2.5", "q").is_err());
        assert!(integer("two", "q").is_err());
        assert_eq!(
            unix("1795176000", "t").map(|t| t.to_rfc3339()),
            Ok("2026-11-20T12:00:00+00:00".to_owned())
        );
        assert_eq!(unix("1795176000000", "t"), unix("1795176000", "t"));
    }

    #[test]
    fn coordinates_in_degrees_or_micro_degrees() {
        assert_eq!(
            coordinate(Some("31.225943"), 90.0, "lat"),
            Ok(Some(31.225943))
        );
        assert_eq!(
            coordinate(Some("31225943"), 90.0, "lat"),
            Ok(Some(31.225943))
        );
        assert_eq!(
            coordinate(Some("121475621"), 180.0, "lng"),
            Ok(Some(121.475621))
        );
        assert_eq!(coordinate(Some("0"), 90.0, "lat"), Ok(None));
        assert_eq!(coordinate(None, 90.0, "lat"), Ok(None));
        assert!(coordinate(Some("north"), 90.0, "lat").is_err());
        assert!(coordinate(Some("NaN"), 90.0, "lat").is_err());
    }

    #[test]
    fn privacy_numbers_split_into_number_and_pin() {
        let params = |phone: &str| vec![("recipient_phone".to_owned(), phone.to_owned())];
        let split = |phone: &str| phone_of(&params(phone));
        fn phone_of(params: &[(String, String)]) -> (Option<String>, Option<String>) {
            phone(&Form::new(params))
        }
        assert_eq!(
            split("13812345678_1234"),
            (Some("13812345678".into()), Some("1234".into()))
        );
        assert_eq!(split("138****5678"), (Some("138****5678".into()), None));
        assert_eq!(split(" "), (None, None));
    }

    #[test]
    fn every_documented_cancel_code_has_a_text() {
        for code in [
            "1001", "1002", "1101", "1102", "1103", "1201", "1301", "2001", "2007",
        ] {
            assert!(cancel_reason_text(code).is_some(), "{code}");
        }
        assert_eq!(cancel_reason_text("9999"), None);
    }
}
