//! `POST /webhooks/{channel}[/{event}]`: verify, parse, record (one transaction), then
//! answer the platform in its own convention — 2xx only after the commit.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use crossdock_channel::{
    Channel, ChannelError, Delivery, Inbound, InboundRequest, Outcome, Reply, Unservable,
};
use crossdock_db::ingest::{RawRecord, Recorded};
use crossdock_model::mask_phone;
use serde_json::json;

use crate::app::Shared;
use crate::workers::fetch::FetchMessage;

pub async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let response = handle(&shared, &channel, None, method, &uri, headers, body).await;
    observe(&shared, &channel, started);
    response
}

pub async fn receive_event(
    State(shared): State<Arc<Shared>>,
    Path((channel, event)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let response = handle(&shared, &channel, Some(event), method, &uri, headers, body).await;
    observe(&shared, &channel, started);
    response
}

/// Times a request of a channel of this hub (others are not worth a series of their own).
fn observe(shared: &Shared, channel: &str, started: Instant) {
    if shared.channels.contains_key(channel) {
        shared.metrics.ingest_took(channel, started.elapsed());
    }
}

/// What is kept of a request beside its body: the headers worth keeping (never
/// credentials), and the method and query where they carry the request (platforms that
/// push as `GET` with query parameters).
fn kept_headers(request: &InboundRequest) -> serde_json::Value {
    let mut kept: serde_json::Map<String, serde_json::Value> = request
        .headers
        .iter()
        .filter(|(name, _)| !crossdock_channel::is_credential_header(name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                json!(value.to_str().unwrap_or("<binary>")),
            )
        })
        .collect();
    if request.method != Method::POST {
        kept.insert(":method".into(), json!(request.method.as_str()));
    }
    if let Some(query) = &request.query {
        kept.insert(":query".into(), json!(query));
    }
    serde_json::Value::Object(kept)
}

fn to_response(reply: Reply) -> Response {
    let mut response = (reply.status, reply.body).into_response();
    if let Some(content_type) = reply.content_type
        && let Ok(value) = content_type.parse()
    {
        response.headers_mut().insert("content-type", value);
    }
    response
}

async fn handle(
    shared: &Shared,
    channel_id: &str,
    event: Option<String>,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(channel) = shared.channels.get(channel_id) else {
        // Counted under one label: the path's text never becomes a series of its own.
        shared.metrics.webhook_refused("unknown", "unknown_channel");
        let message = format!("no channel `{channel_id}` on this hub");
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "unknown_channel", "message": message })),
        )
            .into_response();
    };
    let request = InboundRequest {
        method,
        event,
        url: format!(
            "{}{}",
            shared.settings.http.public_url.trim_end_matches('/'),
            uri.path()
        ),
        query: uri.query().map(str::to_owned),
        headers,
        body,
        received_at: Utc::now(),
    };
    let delivery = match channel
        .verify(&request)
        .and_then(|()| channel.parse(&request))
    {
        Ok(delivery) => delivery,
        Err(error) => return refuse(shared, channel.as_ref(), &request, error).await,
    };
    if let Inbound::Quote(order) = &delivery.inbound {
        let verdict = quote(shared, order);
        tracing::info!(
            channel = channel_id,
            external_order_id = %order.external_order_id,
            servable = verdict.is_ok(),
            "Quote answered."
        );
        return to_response(channel.reply(&request, Outcome::Quoted { order, verdict }));
    }
    let raw = RawRecord {
        channel: channel_id,
        dedupe_key: &delivery.dedupe_key,
        received_at: request.received_at,
        headers: kept_headers(&request),
        body: &request.body,
    };
    match record(shared, raw, &delivery).await {
        Ok(Ok(recorded)) => {
            if !recorded.is_duplicate() {
                shared.relay_wake.notify_one();
            }
            tracing::info!(
                channel = channel_id,
                order_id = ?recorded.order_id(),
                duplicate = recorded.is_duplicate(),
                "Webhook accepted."
            );
            let outcome = Outcome::Accepted {
                delivery: &delivery,
                order_id: recorded.order_id(),
                duplicate: recorded.is_duplicate(),
            };
            to_response(channel.reply(&request, outcome))
        }
        Ok(Err(error)) => refuse(shared, channel.as_ref(), &request, error).await,
        Err(error) => {
            // Nothing was committed: answer non-2xx so the platform retries.
            tracing::error!(channel = channel_id, %error, "Webhook could not be recorded.");
            let body = json!({ "error": "unavailable", "message": "the order could not be stored; retry" });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

/// Whether the chain could take `order` now: the order check and the router's decision,
/// recording nothing.
fn quote(shared: &Shared, order: &crossdock_model::NewOrder) -> Result<(), Unservable> {
    order
        .check()
        .map_err(|error| Unservable::Invalid(error.to_string()))?;
    let decision = crossdock_router::route(&shared.registry(), order, Utc::now(), &[]);
    match (decision.store, decision.refusal) {
        (Some(_), _) => Ok(()),
        (None, kind) => Err(Unservable::NoStore {
            kind: kind.unwrap_or(crossdock_model::Unroutable::StoreUnavailable),
            reason: decision
                .reason
                .unwrap_or_else(|| "no store can take the order".into()),
        }),
    }
}

/// Records a parsed delivery with the raw request (or platform answer) it came from. The
/// outer error is the database's; the inner one refuses the request (an order the hub
/// cannot take).
pub(super) async fn record(
    shared: &Shared,
    raw: RawRecord<'_>,
    delivery: &Delivery,
) -> Result<Result<Recorded, ChannelError>, crossdock_db::DbError> {
    let channel = raw.channel;
    let received_at = raw.received_at;
    let db = &shared.db;
    let recorded = match &delivery.inbound {
        Inbound::Order(order) => {
            let flags = match order.check() {
                Ok(flags) => flags,
                Err(error) => return Ok(Err(ChannelError::Order(error))),
            };
            if order.channel.as_str() != channel {
                return Ok(Err(ChannelError::Malformed(format!(
                    "adapter produced an order of channel {} on the {channel} webhook",
                    order.channel
                ))));
            }
            let recorded = db.record_order(&raw, order, &flags).await?;
            if !recorded.is_duplicate() {
                shared.metrics.order_ingested(channel);
                tracing::info!(
                    channel,
                    order_id = ?recorded.order_id(),
                    external_order_id = %order.external_order_id,
                    store_ref = ?order.channel_store_ref,
                    lines = order.lines.len(),
                    total = %order.totals.total,
                    customer_phone = ?order.customer.phone.as_deref().map(mask_phone),
                    flags = flags.len(),
                    "Order received."
                );
            }
            recorded
        }
        Inbound::Fetch(reference) => {
            let message = FetchMessage {
                channel: channel.to_owned(),
                dedupe_key: delivery.dedupe_key.clone(),
                reference: reference.clone(),
                received_at,
            };
            let body = serde_json::to_value(&message)
                .map_err(|e| crossdock_db::DbError::Corrupt(e.to_string()))?;
            db.record_fetch(&raw, body).await?
        }
        Inbound::Cancelled {
            external_order_id,
            reason,
        } => {
            db.record_cancellation(&raw, external_order_id, reason.as_deref())
                .await?
        }
        Inbound::Progress {
            external_order_id,
            action,
        } => {
            db.record_progress(&raw, external_order_id, action.clone())
                .await?
        }
        Inbound::Ignored { event } => db.record_ignored(&raw, &format!("ignored:{event}")).await?,
        Inbound::Quote(_) => {
            return Ok(Err(ChannelError::Malformed(
                "a quote is answered, never recorded".into(),
            )));
        }
    };
    Ok(Ok(recorded))
}

/// Quarantines a refused request and answers in the channel's convention.
async fn refuse(
    shared: &Shared,
    channel: &dyn Channel,
    request: &InboundRequest,
    error: ChannelError,
) -> Response {
    let channel_id = channel.id().as_str();
    tracing::warn!(channel = channel_id, error_kind = error.kind(), error = %error, "Webhook refused.");
    shared.metrics.webhook_refused(channel_id, error.kind());
    let headers = kept_headers(request);
    if let Err(db_error) = shared
        .db
        .quarantine(
            channel_id,
            request.received_at,
            error.kind(),
            &error.to_string(),
            &headers,
            &request.body,
        )
        .await
    {
        tracing::error!(channel = channel_id, error = %db_error, "Refused webhook could not be quarantined.");
    } else {
        shared.metrics.quarantined(channel_id);
    }
    to_response(channel.reply(request, Outcome::Refused(&error)))
}
