//! Ele.me on the wire: serde types that mirror Ele.me's JSON, and its two MD5 signatures.
//!
//! Four families live here:
//!
//! - the push envelope ([`Envelope`]) and its raw key/value view ([`RawEntries`]), which
//!   the push signature is computed over;
//! - the messages inside `message`: the order of a type-10 push ([`OOrder`], the SDK's
//!   `OOrder` entity) and the small event messages of the other types ([`EventMessage`]);
//! - the JSON-RPC call and answer of `POST /api/v1/` ([`RpcRequest`], [`RpcResponse`]);
//! - the two signature recipes ([`push_signature`], [`api_signature`]).
//!
//! Numbers that must never be rounded are kept as their exact JSON text: money
//! ([`Num`], yuan as Ele.me's doubles) and 64-bit ids ([`IdText`], which also takes ids
//! sent as strings). Nothing here goes through `f64`. Field names follow the public SDKs
//! (CHANNELS.md §5); unknown fields are ignored everywhere. These types never leave the
//! crate: `convert` turns them into the unified order, and the simulator serializes them.

use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest, Md5};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

// ---------------------------------------------------------------------------------------
// Exact numbers
// ---------------------------------------------------------------------------------------

/// A JSON number kept as the exact text it was sent as (`17.0`, `-2.5`, `1.2345678E7`).
/// Serializes back as that same text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Num(pub String);

impl Num {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` has the shape of a JSON number.
fn is_json_number(text: &str) -> bool {
    text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

/// Whether `text` is a JSON integer (an optional `-` and digits only).
fn is_json_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim();
        if is_json_number(text) {
            Ok(Num(text.to_owned()))
        } else {
            Err(de::Error::custom(format!(
                "expected a number, found `{}`",
                crossdock_channel::clip(text)
            )))
        }
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// An id Ele.me sends as a JSON integer (`shopId`, `userId`, item ids, possibly above
/// 2^53) or as a string (`orderId`, `requestId`): its exact text either way. Serializes as
/// a JSON integer when it is one, else as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct IdText(pub String);

impl IdText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim();
        if text.starts_with('"') {
            let value: String = serde_json::from_str(text).map_err(de::Error::custom)?;
            Ok(IdText(value))
        } else if is_json_integer(text) {
            Ok(IdText(text.to_owned()))
        } else {
            Err(de::Error::custom(format!(
                "expected an integer or a string id, found `{}`",
                crossdock_channel::clip(text)
            )))
        }
    }
}

impl Serialize for IdText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if is_json_integer(&self.0) {
            let raw = RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?;
            raw.serialize(serializer)
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

/// An order id: a string on the wire (`"3014728511382982849"`), also taken when sent as a
/// JSON integer; always written as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OrderRef(pub String);

impl OrderRef {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for OrderRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IdText::deserialize(deserializer).map(|id| OrderRef(id.0))
    }
}

impl Serialize for OrderRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------
// The push envelope and its signature
// ---------------------------------------------------------------------------------------

/// The envelope's top-level keys in the order they came, each with its raw JSON value.
/// The push signature is computed over this view, never over a re-encoding.
#[derive(Debug)]
pub(crate) struct RawEntries(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = RawEntries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push((key, value));
                }
                Ok(RawEntries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Why an envelope's signature cannot be checked (the message says which key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignError {
    #[error("the body is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("key `{0}` appears twice")]
    DuplicateKey(String),
    #[error("key `{0}` is not a string or a number; Ele.me signs only those")]
    Unsignable(String),
    #[error("there is no `signature`")]
    Missing,
    #[error("`signature` is not a string")]
    NotAString,
}

/// A signed envelope, read for verification: the text of every signed value, and the
/// signature it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedEnvelope {
    /// `key → value` as Ele.me signs it: strings decoded, numbers as their exact text.
    pub values: BTreeMap<String, String>,
    pub signature: String,
}

/// Reads a push body for signature verification.
pub(crate) fn signed_envelope(body: &[u8]) -> Result<SignedEnvelope, SignError> {
    let RawEntries(entries) =
        serde_json::from_slice(body).map_err(|e| SignError::NotAnObject(e.to_string()))?;
    let mut values = BTreeMap::new();
    let mut signature = None;
    for (key, raw) in entries {
        let text = raw.get().trim();
        if key == "signature" {
            if signature.is_some() {
                return Err(SignError::DuplicateKey(key));
            }
            let value: String = serde_json::from_str(text).map_err(|_| SignError::NotAString)?;
            signature = Some(value);
            continue;
        }
        let value = if text.starts_with('"') {
            serde_json::from_str::<String>(text).map_err(|_| SignError::Unsignable(key.clone()))?
        } else if is_json_number(text) {
            text.to_owned()
        } else {
            return Err(SignError::Unsignable(key));
        };
        if values.insert(key.clone(), value).is_some() {
            return Err(SignError::DuplicateKey(key));
        }
    }
    Ok(SignedEnvelope {
        values,
        signature: signature.ok_or(SignError::Missing)?,
    })
}

/// Upper-case hex MD5 of the concatenated parts.
pub(crate) fn md5_upper(parts: &[&[u8]]) -> String {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode_upper(hasher.finalize())
}

/// The push signature: UPPER(MD5(concat over the sorted keys of `key=value`, no
/// separator, then the app secret)). `values` excludes `signature`; a `BTreeMap` sorts
/// keys by their bytes, as Java's `TreeMap` and PHP's `ksort` do for Ele.me's ASCII keys.
pub(crate) fn push_signature(values: &BTreeMap<String, String>, secret: &str) -> String {
    let mut base = String::new();
    for (key, value) in values {
        base.push_str(key);
        base.push('=');
        base.push_str(value);
    }
    md5_upper(&[base.as_bytes(), secret.as_bytes()])
}

/// The envelope after verification: what the adapter reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    /// Unique per message; Ele.me's resends reuse it (the dedupe key).
    pub request_id: IdText,
    #[serde(rename = "type")]
    pub kind: i64,
    /// The message itself, a JSON document in a string.
    pub message: String,
    pub shop_id: IdText,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// The authorized merchant account (not the customer); may exceed 2^53.
    #[serde(default)]
    pub user_id: Option<IdText>,
}

/// The envelope as the simulator sends it, in Ele.me's key order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutEnvelope {
    pub request_id: String,
    #[serde(rename = "type")]
    pub kind: i64,
    pub app_id: u64,
    pub message: String,
    pub shop_id: IdText,
    pub timestamp: i64,
    pub signature: String,
    pub user_id: u64,
}

impl OutEnvelope {
    /// The values Ele.me signs (every key but `signature`), as text.
    pub fn signed_values(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("requestId".to_owned(), self.request_id.clone()),
            ("type".to_owned(), self.kind.to_string()),
            ("appId".to_owned(), self.app_id.to_string()),
            ("message".to_owned(), self.message.clone()),
            ("shopId".to_owned(), self.shop_id.0.clone()),
            ("timestamp".to_owned(), self.timestamp.to_string()),
            ("userId".to_owned(), self.user_id.to_string()),
        ])
    }
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// The order of a type-10 push (the SDK's `OOrder`). Money is yuan as Ele.me's doubles,
/// kept as text; times are Beijing local time without an offset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OOrder {
    /// The order id (19 digits, a string): every call names the order by it.
    #[serde(default)]
    pub id: Option<OrderRef>,
    #[serde(default)]
    pub order_id: Option<OrderRef>,
    /// The customer's delivery address.
    #[serde(default)]
    pub address: Option<String>,
    /// When the customer ordered.
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the order took effect (was paid).
    #[serde(default)]
    pub active_at: Option<String>,
    #[serde(default)]
    pub deliver_fee: Option<Num>,
    /// The expected delivery time; for a booked order (`book`) the time asked for.
    #[serde(default)]
    pub deliver_time: Option<String>,
    /// The customer's note.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub groups: Option<Vec<OGoodsGroup>>,
    #[serde(default)]
    pub invoice: Option<String>,
    /// A booked (scheduled) order.
    #[serde(default)]
    pub book: Option<bool>,
    #[serde(default)]
    pub online_paid: Option<bool>,
    /// Phone numbers, possibly privacy numbers `number,extension`.
    #[serde(default)]
    pub phone_list: Option<Vec<String>>,
    /// The Ele.me shop: the store the order is for.
    #[serde(default)]
    pub shop_id: Option<IdText>,
    /// The merchant's own code bound to the shop.
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub shop_name: Option<String>,
    /// The shop's daily order number, read out by staff.
    #[serde(default)]
    pub day_sn: Option<i64>,
    /// `pending`, `unprocessed`, `refunding`, `valid`, `invalid` or `settled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub refund_status: Option<String>,
    /// The customer's Ele.me user id.
    #[serde(default)]
    pub user_id: Option<IdText>,
    /// What the customer paid.
    #[serde(default)]
    pub total_price: Option<Num>,
    #[serde(default)]
    pub original_price: Option<Num>,
    /// The customer's name as shown (`李(先生)`).
    #[serde(default)]
    pub consignee: Option<String>,
    /// `"lng,lat"` in GCJ-02, longitude first.
    #[serde(default)]
    pub delivery_geo: Option<String>,
    #[serde(default)]
    pub delivery_poi_address: Option<String>,
    #[serde(default)]
    pub invoiced: Option<bool>,
    /// What the shop receives.
    #[serde(default)]
    pub income: Option<Num>,
    #[serde(default)]
    pub service_rate: Option<Num>,
    /// Ele.me's commission, charged to the shop (negative); not a customer fee.
    #[serde(default)]
    pub service_fee: Option<Num>,
    /// Red packet used by the customer.
    #[serde(default)]
    pub hongbao: Option<Num>,
    /// Box fees.
    #[serde(default)]
    pub package_fee: Option<Num>,
    /// All activities (discounts), negative.
    #[serde(default)]
    pub activity_total: Option<Num>,
    /// The shop's share of the activities, negative.
    #[serde(default)]
    pub shop_part: Option<Num>,
    /// Ele.me's share of the activities, negative.
    #[serde(default)]
    pub eleme_part: Option<Num>,
    #[serde(default)]
    pub downgraded: Option<bool>,
    /// Member delivery-fee reduction.
    #[serde(default)]
    pub vip_delivery_fee_discount: Option<Num>,
    #[serde(default)]
    pub secret_phone_expire_time: Option<String>,
    #[serde(default)]
    pub order_activities: Option<Vec<OActivity>>,
    #[serde(default)]
    pub invoice_type: Option<String>,
    #[serde(default)]
    pub taxpayer_id: Option<String>,
    /// Cold-chain surcharge.
    #[serde(default)]
    pub cold_box_fee: Option<Num>,
    /// 0 delivery, 1 到店自取 (pickup at the shop). Not in the 2017 SDK entity: see the
    /// crate's assumptions.
    #[serde(default)]
    pub order_business_type: Option<i64>,
}

/// A basket (`1号篮子`) or the extra or gift group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OGoodsGroup {
    #[serde(default)]
    pub name: Option<String>,
    /// `normal` (items), `extra` (box fees and the like) or `discount` (gifts).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub items: Option<Vec<OGoodsItem>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OGoodsItem {
    /// The food id (negative for the extra group's fees).
    #[serde(default)]
    pub id: Option<IdText>,
    #[serde(default)]
    pub sku_id: Option<IdText>,
    pub name: String,
    #[serde(default)]
    pub category_id: Option<IdText>,
    /// One unit, options included (a spec is a variant of the food with its own price).
    #[serde(default)]
    pub price: Option<Num>,
    pub quantity: i64,
    /// `price × quantity`.
    #[serde(default)]
    pub total: Option<Num>,
    #[serde(default)]
    pub additions: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub new_specs: Option<Vec<NameValue>>,
    #[serde(default)]
    pub attributes: Option<Vec<NameValue>>,
    /// The merchant's own code of the food: the chain's PLU.
    #[serde(default)]
    pub extend_code: Option<String>,
    #[serde(default)]
    pub bar_code: Option<String>,
    #[serde(default)]
    pub weight: Option<Num>,
    #[serde(default)]
    pub user_price: Option<Num>,
    #[serde(default)]
    pub shop_price: Option<Num>,
    #[serde(default)]
    pub vfood_id: Option<IdText>,
}

/// A spec (`newSpecs`) or an attribute (`attributes`): a flat name/value pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NameValue {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OActivity {
    #[serde(default)]
    pub id: Option<IdText>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub category_id: Option<i64>,
    #[serde(default)]
    pub eleme_part: Option<Num>,
    #[serde(default)]
    pub restaurant_part: Option<Num>,
    #[serde(default)]
    pub amount: Option<Num>,
}

/// The message of every push but type 10. They all name the order; the rest depends on
/// the family:
///
/// - order status (12, 14, 15, 17, 18): `{orderId, state, shopId, updateTime, role}`;
/// - cancel and refund requests (20–26, 30–36): `{orderId, refundStatus, reason, shopId,
///   goodsList, refundType, totalPrice, updateTime}`;
/// - reminders (45, 46): `{orderId, shopId, remindId, userId, updateTime}`;
/// - delivery (51–76): `{orderId, shopId, state, subState, name, phone, updateAt}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventMessage {
    #[serde(default)]
    pub order_id: Option<OrderRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<IdText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_state: Option<String>,
    /// The courier's name (delivery messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The courier's phone (delivery messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds (status and refund messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<i64>,
    /// Unix milliseconds (delivery messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_at: Option<i64>,
}

// ---------------------------------------------------------------------------------------
// JSON-RPC calls and the API signature
// ---------------------------------------------------------------------------------------

/// `POST {base}/api/v1/`: one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RpcRequest {
    /// Always `1.0.0`.
    pub nop: String,
    /// `<UUID upper-case, no dashes>|<unix ms>`.
    pub id: String,
    /// e.g. `eleme.order.confirmOrderLite`.
    pub action: String,
    /// The OAuth access token.
    pub token: String,
    pub metas: Metas,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Metas {
    pub app_key: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// The answer to a call: `result` on success, `error` otherwise (HTTP 200 either way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RpcResponse {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<RpcError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RpcError {
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// The API signature: UPPER(MD5(action + token + concat over the sorted keys of metas ∪
/// params of `key=json(value)` + app secret)). Values are JSON-encoded as PHP's
/// `json_encode(…, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE)` does, which is what
/// `serde_json` writes: strings keep their quotes, `/` and non-ASCII stay as they are.
/// Params win over metas on a shared key, as PHP's `array_merge` does.
pub(crate) fn api_signature(
    action: &str,
    token: &str,
    metas: &Metas,
    params: &serde_json::Map<String, serde_json::Value>,
    secret: &str,
) -> String {
    let mut merged: BTreeMap<&str, String> = BTreeMap::new();
    merged.insert(
        "app_key",
        json_text(&serde_json::Value::from(metas.app_key.as_str())),
    );
    merged.insert("timestamp", metas.timestamp.to_string());
    for (key, value) in params {
        merged.insert(key.as_str(), json_text(value));
    }
    let mut base = String::new();
    base.push_str(action);
    base.push_str(token);
    for (key, value) in merged {
        base.push_str(key);
        base.push('=');
        base.push_str(&value);
    }
    md5_upper(&[base.as_bytes(), secret.as_bytes()])
}

fn json_text(value: &serde_json::Value) -> String {
    // Serializing a `Value` cannot fail (its keys are strings).
    serde_json::to_string(value).unwrap_or_default()
}

/// The OAuth token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default)]
    pub refresh_token: Option<String>,
}
