//! What a raw platform request becomes, as one stable JSON document: the shape
//! `crossdock normalize` prints and every adapter's `fixtures/<channel>/*.expected.json`
//! pins.
//!
//! The document:
//!
//! ```json
//! { "dedupe_key": "…", "kind": "order", "order": { …the unified order…, "flags": […] } }
//! { "dedupe_key": "…", "kind": "fetch", "fetch": { "external_order_id": "…", "resource": "…", "scheduled": false },
//!   "order": { … } }                      // "order" only when the fetched answer was given
//! { "dedupe_key": "…", "kind": "cancelled", "external_order_id": "…", "reason": "…" }
//! { "dedupe_key": "…", "kind": "progress", "external_order_id": "…", "action": { … } }
//! { "dedupe_key": "…", "kind": "quote", "order": { … } }
//! { "dedupe_key": "…", "kind": "ignored", "event": "…" }
//! ```
//!
//! The order is the unified order as the HQ API shows it, without what only the hub
//! assigns (our id, status, store): `crossdock_model::NewOrder`'s serde shape plus the
//! `flags` the order check raised. An order the check refuses is an error, as the hub
//! would refuse it.
//!
//! The same functions build requests from files for the CLI and the conformance kit, so
//! both read a saved request exactly as the hub reads a live one.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crossdock_model::{Flag, NewOrder, StatusAction};

use crate::{
    Channel, ChannelError, CodeClaim, Delivery, FetchRef, HeaderMap, Inbound, InboundRequest,
    Method,
};

/// Reads a headers file: one `Name: value` per line; blank lines and lines starting with
/// `#` are skipped. Names are case-insensitive, as in HTTP.
pub fn parse_headers(text: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected `Name: value`", number + 1))?;
        let name = axum::http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| format!("line {}: header name: {e}", number + 1))?;
        let value = axum::http::HeaderValue::from_str(value.trim())
            .map_err(|e| format!("line {}: header value: {e}", number + 1))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Writes headers in the format [`parse_headers`] reads.
pub fn format_headers(headers: &HeaderMap) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{}: {}\n", name, value.to_str().unwrap_or("<binary>")))
        .collect()
}

/// Builds the request the hub would hand the adapter for a call to `url` (the full URL
/// the platform called, query included): the `{event}` segment is taken from a path of
/// the form `/webhooks/{channel}/{event}`.
pub fn request(
    method: Method,
    url: &str,
    headers: HeaderMap,
    body: Bytes,
    received_at: DateTime<Utc>,
) -> InboundRequest {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query.to_owned())),
        None => (url, None),
    };
    let path = base
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("", |i| &rest[i..]))
        .unwrap_or(base);
    let event = path
        .split('/')
        .skip_while(|segment| *segment != "webhooks")
        .nth(2)
        .filter(|segment| !segment.is_empty())
        .map(str::to_owned);
    InboundRequest {
        method,
        event,
        url: base.to_owned(),
        query,
        headers,
        body,
        received_at,
    }
}

/// The normalized document. Serialized directly (not through `serde_json::Value`) its
/// fields keep the model's order, which is how the expected files read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Document {
    pub dedupe_key: String,
    #[serde(flatten)]
    pub meaning: Meaning,
}

/// What a delivery means, as the document shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Meaning {
    Order {
        order: OrderDocument,
    },
    Fetch {
        fetch: FetchRef,
        /// What the fetched answer becomes, when it was given.
        #[serde(skip_serializing_if = "Option::is_none")]
        order: Option<OrderDocument>,
    },
    Cancelled {
        external_order_id: String,
        reason: Option<String>,
    },
    Progress {
        external_order_id: String,
        action: StatusAction,
    },
    Quote {
        order: OrderDocument,
    },
    Ignored {
        event: String,
    },
}

/// The unified order and the flags the order check raised.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderDocument {
    #[serde(flatten)]
    pub order: NewOrder,
    pub flags: Vec<Flag>,
}

impl Document {
    /// As JSON text, pretty-printed, in the model's field order.
    pub fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Verifies and parses `request` as the hub would, and returns the document. For a
/// notify-then-fetch delivery, `fetched` is what the platform's order API answered; without
/// it the document shows only what must be fetched.
pub fn normalize(
    channel: &dyn Channel,
    request: &InboundRequest,
    fetched: Option<&[u8]>,
) -> Result<Document, ChannelError> {
    channel.verify(request)?;
    let delivery = channel.parse(request)?;
    let mut doc = document(&delivery)?;
    if let (Meaning::Fetch { fetch, order }, Some(body)) = (&mut doc.meaning, fetched) {
        *order = Some(order_document(channel.parse_fetched(fetch, body)?)?);
    }
    Ok(doc)
}

/// What a redeemed code becomes: `answer` is what the platform answered to the
/// redemption of `claim`.
pub fn normalize_claim(
    channel: &dyn Channel,
    claim: &CodeClaim,
    answer: &[u8],
) -> Result<Document, ChannelError> {
    document(&channel.parse_redeemed(claim, answer)?)
}

/// The document for a parsed delivery.
pub fn document(delivery: &Delivery) -> Result<Document, ChannelError> {
    let meaning = match &delivery.inbound {
        Inbound::Order(order) => Meaning::Order {
            order: order_document((**order).clone())?,
        },
        Inbound::Fetch(reference) => Meaning::Fetch {
            fetch: reference.clone(),
            order: None,
        },
        Inbound::Cancelled {
            external_order_id,
            reason,
        } => Meaning::Cancelled {
            external_order_id: external_order_id.clone(),
            reason: reason.clone(),
        },
        Inbound::Progress {
            external_order_id,
            action,
        } => Meaning::Progress {
            external_order_id: external_order_id.clone(),
            action: action.clone(),
        },
        Inbound::Quote(order) => Meaning::Quote {
            order: order_document((**order).clone())?,
        },
        Inbound::Ignored { event } => Meaning::Ignored {
            event: event.clone(),
        },
    };
    Ok(Document {
        dedupe_key: delivery.dedupe_key.clone(),
        meaning,
    })
}

/// The document for a request the hub refuses: the error's kind and message.
pub fn refusal(error: &ChannelError) -> Value {
    json!({ "error": { "kind": error.kind(), "message": error.to_string() } })
}

/// The unified order plus the flags the order check raised; an order the check refuses is
/// the error the hub would answer.
fn order_document(order: NewOrder) -> Result<OrderDocument, ChannelError> {
    let flags = order.check().map_err(ChannelError::Order)?;
    Ok(OrderDocument { order, flags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_files_are_read_and_written_back() {
        let headers = parse_headers(
            "# saved from the platform\nContent-Type: application/json\r\nX-Sig:  abc \n\n",
        )
        .expect("parses");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-sig"], "abc");
        assert_eq!(
            parse_headers(&format_headers(&headers)).expect("round trip"),
            headers
        );
        let error = parse_headers("no colon here").expect_err("refused");
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn the_url_gives_the_event_and_the_query() {
        let request = request(
            Method::POST,
            "https://hub.example/webhooks/meituan/order?app_id=1&sig=x",
            HeaderMap::new(),
            Bytes::new(),
            Utc::now(),
        );
        assert_eq!(request.url, "https://hub.example/webhooks/meituan/order");
        assert_eq!(request.event.as_deref(), Some("order"));
        assert_eq!(request.query.as_deref(), Some("app_id=1&sig=x"));
        let plain = super::request(
            Method::POST,
            "https://hub.example/webhooks/uber_eats",
            HeaderMap::new(),
            Bytes::new(),
            Utc::now(),
        );
        assert_eq!(plain.event, None);
        assert_eq!(plain.query, None);
    }
}
