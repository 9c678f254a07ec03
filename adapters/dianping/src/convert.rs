//! Dianping's answers → what the hub uses: the order a redemption becomes, the cashier's
//! preview of a code, and the errors Dianping's result codes mean. The only place where
//! money is converted (yuan decimal text → integer fen, exactly).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use crossdock_channel::{ChannelError, CodeClaim, Delivery, Inbound, clip};
use crossdock_model::{
    ChannelId, Currency, Customer, Discount, Fees, Fulfillment, FulfillmentKind, FundedBy, Line,
    Money, MoneyError, NewOrder, OrderError, Payment, Timing, Totals,
};
use serde_json::{Value, json};

use crate::sign;
use crate::wire::{Envelope, Receipt};

/// The result code of a successful call.
pub const OK: &str = "200";

/// Dianping's result codes the adapter tells apart. Only `200` is confirmed by public
/// client libraries; the others are this adapter's assumptions (the simulator answers
/// with them), see the crate docs.
pub mod codes {
    /// Missing or malformed parameter.
    pub const BAD_PARAMETER: i64 = 400;
    /// Unknown `app_key` or a `sign` that does not match.
    pub const BAD_SIGNATURE: i64 = 401;
    /// The merchant `session` is unknown or expired, or does not cover the shop.
    pub const BAD_SESSION: i64 = 403;
    /// Too many calls.
    pub const RATE_LIMITED: i64 = 429;
    /// 券码不存在: no such voucher code.
    pub const UNKNOWN_CODE: i64 = 1001;
    /// 券码已使用: the voucher was already redeemed.
    pub const ALREADY_USED: i64 = 1002;
    /// 券码不适用于该门店: the voucher's deal is not sold at this shop.
    pub const WRONG_SHOP: i64 = 1003;
    /// 券码已过期或已退款.
    pub const EXPIRED: i64 = 1004;
    /// 可验证数量不足: fewer unused vouchers than `count`.
    pub const NOT_ENOUGH: i64 = 1005;
    /// 券码未验证: nothing to reverse (never redeemed, or already reversed).
    pub const NOT_CONSUMED: i64 = 1006;
    /// 已超过可撤销时间: too late to reverse the redemption.
    pub const TOO_LATE_TO_REVERSE: i64 = 1007;
}

/// Which call an answer belongs to, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Prepare,
    Consume,
    Reverse,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Prepare => "prepare",
            Call::Consume => "consume",
            Call::Reverse => "reverseconsume",
        }
    }
}

/// The error a `code != 200` answer means. Voucher problems (unknown, used, wrong shop,
/// expired) are permanent, with a message the cashier can act on; the platform's own
/// trouble (rate limit, 5xx) is retryable; credential problems are permanent and name
/// what HQ must fix.
pub fn refusal(call: Call, code: &str, msg: Option<&str>) -> ChannelError {
    let said = match msg.map(str::trim).filter(|m| !m.is_empty()) {
        Some(msg) => format!(
            "Dianping {} answered code {}: {}",
            call.name(),
            clip(code),
            clip(msg)
        ),
        None => format!("Dianping {} answered code {}", call.name(), clip(code)),
    };
    let platform = |status: u16, what: &str| ChannelError::Platform {
        status,
        body: format!("{what} ({said})"),
    };
    match code.trim().parse::<i64>().unwrap_or(-1) {
        codes::RATE_LIMITED => ChannelError::RateLimited { retry_after: None },
        n @ 500..=599 => platform(
            u16::try_from(n).unwrap_or(503),
            "Dianping is unavailable; try again in a moment",
        ),
        codes::UNKNOWN_CODE => platform(
            404,
            "this is not a valid Dianping voucher code: check the digits with the customer",
        ),
        codes::ALREADY_USED | codes::NOT_ENOUGH => platform(
            409,
            "this voucher was already used (or has fewer uses left than asked): do not serve it again",
        ),
        codes::WRONG_SHOP => platform(
            403,
            "this voucher is not valid at this store: the customer bought it for another shop",
        ),
        codes::EXPIRED => platform(410, "this voucher has expired or was refunded"),
        codes::NOT_CONSUMED => {
            platform(409, "the voucher is not redeemed: there is nothing to undo")
        }
        codes::TOO_LATE_TO_REVERSE => platform(
            409,
            "too late to undo the redemption on Dianping: HQ must settle it with Dianping support",
        ),
        codes::BAD_SIGNATURE => platform(
            401,
            "Dianping refused the hub's signature: HQ must check `app_key` and the `app_secret` secret",
        ),
        codes::BAD_SESSION => platform(
            403,
            "Dianping refused the merchant session (expired, or not authorized for this shop): HQ must renew the `session` secret",
        ),
        codes::BAD_PARAMETER => platform(400, "Dianping refused the call's parameters"),
        _ => platform(422, "Dianping refused the call"),
    }
}

/// Fails with the refusal an answer carries, if it is not a success.
pub fn check<T>(call: Call, envelope: &Envelope<T>) -> Result<(), ChannelError> {
    if envelope.code.trim() == OK {
        Ok(())
    } else {
        Err(refusal(call, &envelope.code, envelope.msg.as_deref()))
    }
}

/// A voucher code as cashiers type it, made canonical: spaces and dashes dropped. Refuses
/// an empty code or one with characters no voucher code has.
pub fn normalize_code(code: &str) -> Result<String, ChannelError> {
    let canonical: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if canonical.is_empty() {
        return Err(ChannelError::Malformed(
            "code: the voucher code is empty".to_owned(),
        ));
    }
    if canonical.len() > 64 || !canonical.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ChannelError::Malformed(format!(
            "code: `{}` is not a voucher code (letters and digits only, at most 64)",
            clip(code)
        )));
    }
    Ok(canonical)
}

/// What the conversion needs from the adapter's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub channel: ChannelId,
    pub currency: Currency,
    /// Dianping deal id → the chain's PLU, where HQ mapped one.
    pub deal_plu: BTreeMap<String, String>,
}

/// Words in a deal's title that make it a take-away deal (pickup rather than dine-in).
pub const PICKUP_WORDS: &[&str] = &[
    "外带",
    "外卖",
    "自提",
    "自取",
    "打包",
    "take-away",
    "takeaway",
    "take away",
    "to go",
    "pickup",
    "pick-up",
    "pick up",
];

/// Pickup when a deal's title says take-away; dine-in otherwise (a group-buy voucher is
/// by default eaten at the store).
pub fn fulfillment_of(titles: &[&str]) -> FulfillmentKind {
    let take_away = titles.iter().any(|title| {
        let title = title.to_lowercase();
        PICKUP_WORDS.iter().any(|word| title.contains(word))
    });
    if take_away {
        FulfillmentKind::Pickup
    } else {
        FulfillmentKind::DineIn
    }
}

fn money(text: &str, currency: Currency, field: String) -> Result<Money, ChannelError> {
    let text = text.trim();
    Money::from_major_str(text, currency)
        .map_err(|source| ChannelError::Order(OrderError::MoneyAt { field, source }))
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ChannelError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ChannelError::Malformed(format!("{field} is missing or empty")))
}

/// A voucher of a redemption, read and converted.
struct Voucher {
    receipt_code: String,
    /// `deal_id`, else `product_item_id`.
    item_id: String,
    title: String,
    price: Money,
    market: Option<Money>,
}

fn voucher(index: usize, receipt: &Receipt, currency: Currency) -> Result<Voucher, ChannelError> {
    let at = |field: &str| format!("consume answer data[{index}].{field}");
    let receipt_code = required(&receipt.receipt_code, &at("receipt_code"))?.to_owned();
    let item_id = receipt
        .deal_id
        .as_deref()
        .or(receipt.product_item_id.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ChannelError::Malformed(format!(
                "{} is missing (and so is product_item_id)",
                at("deal_id")
            ))
        })?
        .to_owned();
    let title = required(&receipt.deal_title, &at("deal_title"))?.to_owned();
    let price = money(
        required(&receipt.deal_price, &at("deal_price"))?,
        currency,
        at("deal_price"),
    )?;
    let market = match receipt.deal_marketprice.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(money(text, currency, at("deal_marketprice"))?),
    };
    Ok(Voucher {
        receipt_code,
        item_id,
        title,
        price,
        market,
    })
}

/// The order a redemption becomes. `body` is `consume`'s answer to `claim`; `placed_at` is
/// when the redemption happened (the answer does not say).
///
/// - one line per redeemed deal (vouchers of the same deal at the same price are one line,
///   quantity = how many were redeemed), named by the deal's title, in answer order;
/// - a deal whose market price is above its deal price is a line at the market price with
///   a merchant-funded discount down to what the customer paid;
/// - the total is what the customer paid for the redeemed vouchers (derived: Dianping
///   sends no total), prepaid on the platform;
/// - `external_order_id` = `{order_id}-{typed code}`: one Dianping order can be redeemed
///   on several visits, and a code is redeemed once, so this names one redemption;
/// - dedupe key `receipt:{typed code}`: the same code never makes two orders.
pub fn redeemed(
    settings: &Settings,
    claim: &CodeClaim,
    envelope: Envelope<Vec<Receipt>>,
    placed_at: DateTime<Utc>,
) -> Result<Delivery, ChannelError> {
    check(Call::Consume, &envelope)?;
    let code = normalize_code(&claim.code)?;
    let receipts = envelope.data.unwrap_or_default();
    if receipts.is_empty() {
        return Err(ChannelError::Malformed(
            "consume answer: `data` lists no redeemed voucher".to_owned(),
        ));
    }
    let currency = settings.currency;
    let vouchers = receipts
        .iter()
        .enumerate()
        .map(|(index, receipt)| voucher(index, receipt, currency))
        .collect::<Result<Vec<_>, _>>()?;
    // A voucher is one use: an answer listing one twice would make the store hand over
    // twice what was paid for once.
    let mut seen = std::collections::HashSet::new();
    if let Some((index, twice)) = vouchers
        .iter()
        .enumerate()
        .find(|(_, v)| !seen.insert(v.receipt_code.as_str()))
    {
        return Err(ChannelError::Malformed(format!(
            "consume answer data[{index}].receipt_code: voucher `{}` is listed more than once",
            clip(&twice.receipt_code)
        )));
    }
    let Some(typed) = vouchers.iter().position(|v| v.receipt_code == code) else {
        return Err(ChannelError::Malformed(format!(
            "consume answer: the redeemed vouchers ({}) do not include the code `{code}` that was presented",
            clip(
                &vouchers
                    .iter()
                    .map(|v| v.receipt_code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        )));
    };
    let shop = claim.channel_store_ref.trim();
    for (index, receipt) in receipts.iter().enumerate() {
        if let Some(answered) = receipt.open_shop_uuid.as_deref().map(str::trim)
            && !answered.is_empty()
            && answered != shop
        {
            return Err(ChannelError::Malformed(format!(
                "consume answer data[{index}].open_shop_uuid is `{}` but the code was presented at `{}`",
                clip(answered),
                clip(shop)
            )));
        }
    }
    let order_id = receipts[typed]
        .order_id
        .as_deref()
        .or_else(|| receipts.iter().find_map(|r| r.order_id.as_deref()))
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let external_order_id = match order_id {
        Some(order_id) => format!("{order_id}-{code}"),
        None => code.clone(),
    };

    // Group vouchers into lines: same deal, title and prices → one line.
    let mut groups: Vec<(&Voucher, i64)> = Vec::new();
    for voucher in &vouchers {
        match groups.iter_mut().find(|(first, _)| {
            first.item_id == voucher.item_id
                && first.title == voucher.title
                && first.price == voucher.price
                && first.market == voucher.market
        }) {
            Some((_, quantity)) => *quantity += 1,
            None => groups.push((voucher, 1)),
        }
    }
    let overflow = |what: &str| {
        ChannelError::Order(OrderError::MoneyAt {
            field: what.to_owned(),
            source: MoneyError::Overflow {
                value: what.to_owned(),
            },
        })
    };
    let mut lines = Vec::with_capacity(groups.len());
    let mut subtotal = Money::zero(currency);
    let mut paid = Money::zero(currency);
    let mut discounts = Vec::new();
    for (voucher, quantity) in &groups {
        let list = voucher
            .market
            .filter(|market| market.minor > voucher.price.minor)
            .unwrap_or(voucher.price);
        let total = list
            .checked_mul(*quantity)
            .map_err(|_| overflow("line total"))?;
        let line_paid = voucher
            .price
            .checked_mul(*quantity)
            .map_err(|_| overflow("amount paid"))?;
        subtotal = subtotal
            .checked_add(total)
            .map_err(|_| overflow("subtotal"))?;
        paid = paid.checked_add(line_paid).map_err(|_| overflow("total"))?;
        if list != voucher.price {
            discounts.push(Discount {
                label: format!("团购价 group-buy price: {}", voucher.title),
                amount: total
                    .checked_sub(line_paid)
                    .map_err(|_| overflow("discount"))?,
                funded_by: FundedBy::Merchant,
            });
        }
        lines.push(Line {
            channel_item_id: voucher.item_id.clone(),
            plu: settings.deal_plu.get(&voucher.item_id).cloned(),
            name: voucher.title.clone(),
            quantity: *quantity,
            unit_price: list,
            total,
            notes: None,
            modifiers: Vec::new(),
        });
    }
    let titles: Vec<&str> = vouchers.iter().map(|v| v.title.as_str()).collect();
    let mobile = receipts[typed]
        .mobile
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let order = NewOrder {
        channel: settings.channel.clone(),
        external_order_id,
        display_code: Some(code.clone()),
        channel_store_ref: Some(shop.to_owned()),
        brand: None,
        platform_brand: Some("dianping".to_owned()),
        placed_at,
        fulfillment: Fulfillment {
            kind: fulfillment_of(&titles),
            delivered_by: None,
            address: None,
            timing: Timing::Asap,
            promised_at: None,
            accept_by: None,
        },
        customer: Customer {
            name: "大众点评顾客".to_owned(),
            phone: mobile,
            phone_pin: None,
            email: None,
        },
        notes: None,
        lines,
        totals: Totals {
            currency,
            subtotal,
            discounts,
            tax: Money::zero(currency),
            tax_included: true,
            fees: Fees::zero(currency),
            tip: Money::zero(currency),
            total: paid,
            cash_due: None,
            total_is_derived: true,
        },
        payment: Payment::Prepaid,
        channel_data: json!({
            "order_id": order_id,
            "open_shop_uuid": shop,
            "request_id": claim.request_id,
            "receipts": receipts.iter().zip(&vouchers).map(|(receipt, voucher)| json!({
                "receipt_code": voucher.receipt_code,
                "deal_id": receipt.deal_id,
                "dealgroup_id": receipt.dealgroup_id,
                "product_item_id": receipt.product_item_id,
                "biz_type": receipt.biz_type,
                "deal_price": receipt.deal_price,
                "deal_marketprice": receipt.deal_marketprice,
                "payment_detail": receipt.payment_detail,
            })).collect::<Vec<_>>(),
        }),
    };
    Ok(Delivery {
        dedupe_key: format!("receipt:{code}"),
        inbound: Inbound::Order(Box::new(order)),
    })
}

/// `receiptEndDate` (milliseconds since the epoch) or `receipt_end_date`
/// (`yyyy-MM-dd HH:mm:ss`, Beijing time) as RFC 3339, if readable.
fn expiry(text: &str) -> Option<String> {
    let text = text.trim();
    let at = match text.parse::<i64>() {
        Ok(millis) => Utc.timestamp_millis_opt(millis).single(),
        Err(_) => sign::parse_timestamp(text),
    }?;
    Some(at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A mobile fit for a cashier's screen: Dianping masks it (`176****5045`); one that comes
/// unmasked is masked the same way here.
pub fn masked_mobile(mobile: &str) -> String {
    let mobile = mobile.trim();
    if mobile.contains('*') {
        return mobile.to_owned();
    }
    let chars: Vec<char> = mobile.chars().collect();
    if chars.len() < 7 {
        return "****".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// What the cashier sees for a checked code (`prepare`'s answer).
pub fn preview(
    settings: &Settings,
    code: &str,
    shop: &str,
    envelope: Envelope<Receipt>,
) -> Result<Value, ChannelError> {
    check(Call::Prepare, &envelope)?;
    let receipt = envelope
        .data
        .ok_or_else(|| ChannelError::Malformed("prepare answer: `data` is missing".to_owned()))?;
    let at = |field: &str| format!("prepare answer data.{field}");
    let title = required(&receipt.deal_title, &at("deal_title"))?;
    let price = money(
        required(&receipt.deal_price, &at("deal_price"))?,
        settings.currency,
        at("deal_price"),
    )?;
    let market = match receipt.deal_marketprice.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(money(text, settings.currency, at("deal_marketprice"))?),
    };
    let uses = required(&receipt.count, &at("count"))?;
    let uses: i64 = uses.parse().map_err(|_| {
        ChannelError::Malformed(format!(
            "{} `{}` is not a whole number",
            at("count"),
            clip(uses)
        ))
    })?;
    let deal_id = receipt
        .deal_id
        .as_deref()
        .or(receipt.product_item_id.as_deref())
        .map(str::trim);
    Ok(json!({
        "channel": settings.channel.as_str(),
        "code": receipt.receipt_code.as_deref().map(str::trim).unwrap_or(code),
        "store_ref": shop,
        "deal_id": deal_id,
        "dealgroup_id": receipt.dealgroup_id.as_deref().map(str::trim),
        "deal_title": title,
        "deal_price": price,
        "market_price": market,
        "uses_available": uses,
        "mobile": receipt.mobile.as_deref().map(masked_mobile),
        "expires_at": receipt.receipt_end_date.as_deref().and_then(expiry),
        "fulfillment": fulfillment_of(&[title]),
    }))
}
