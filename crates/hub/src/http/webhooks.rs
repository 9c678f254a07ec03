//! `POST /webhooks/{channel}[/{event}]`: verify, parse, record (one transaction), then
//! answer the platform in its own convention — 2xx only after the commit.
//!
//! The body is read here, up to `http.body_limit_bytes`: one over it answers 413
//! (`{"error": "too_large", …}`) and is quarantined with its first
//! [`QUARANTINED_HEAD_BYTES`] bytes. The per-source rate limit runs before (`limit.rs`).
//!
//! Orders wait at the process's orders desk ([`OrdersDesk`]) for the next recording of
//! its workers, with whatever other orders wait by then: one transaction for them all
//! (an order alone is recorded at once). Each request is answered after that commit.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use crossdock_channel::{
    Channel, ChannelError, Delivery, Inbound, InboundRequest, Outcome, Reply, Unservable,
};
use crossdock_db::DbError;
use crossdock_db::ingest::{OrderRequest, RawRecord, Recorded};
use crossdock_model::{Flag, NewOrder, mask_phone};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::app::Shared;
use crate::desk::Desk;
use crate::workers::fetch::FetchMessage;

/// What a quarantine record keeps of a body over the limit: its first 64 KiB.
pub const QUARANTINED_HEAD_BYTES: usize = 64 * 1024;

/// Orders recorded together at most, in one transaction.
const DESK_BATCH: usize = 64;

/// The orders desk's recordings under way at once.
const DESK_WORKERS: usize = 4;

/// Orders waiting at the desk at most; past it, a request records its order alone.
const DESK_WAITING: usize = 1024;

/// An order request left at the orders desk, and where its answer goes.
pub struct WaitingOrder {
    channel: String,
    dedupe_key: String,
    received_at: DateTime<Utc>,
    headers: serde_json::Value,
    body: Bytes,
    order: NewOrder,
    flags: Vec<Flag>,
    answer: oneshot::Sender<Result<Recorded, DbError>>,
}

/// Where a process's webhooks leave the orders they received, to be recorded together.
pub type OrdersDesk = Desk<WaitingOrder>;

/// The orders desk of a process.
pub fn orders_desk() -> OrdersDesk {
    Desk::new(DESK_WAITING, DESK_BATCH)
}

/// Starts the orders desk's workers.
pub fn spawn_desk(tasks: &mut JoinSet<()>, shared: &Arc<Shared>, stop: &watch::Receiver<bool>) {
    for _ in 0..DESK_WORKERS {
        tasks.spawn(serve_desk(shared.clone(), stop.clone()));
    }
}

/// One of the orders desk's workers: records what waits, batch by batch, until the hub
/// stops. A request it does not answer (PostgreSQL was out of reach for its batch, or
/// the hub stopped while it waited) records its order alone: a second try, once
/// PostgreSQL may be back; a refusal of its own it hears at once.
async fn serve_desk(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    while let Some(mut batch) = shared.orders_desk.next_batch(&mut stop).await {
        let headers: Vec<serde_json::Value> = batch
            .iter_mut()
            .map(|waiting| std::mem::take(&mut waiting.headers))
            .collect();
        let raws: Vec<RawRecord<'_>> = batch
            .iter()
            .zip(headers)
            .map(|(waiting, headers)| RawRecord {
                channel: &waiting.channel,
                dedupe_key: &waiting.dedupe_key,
                received_at: waiting.received_at,
                headers,
                body: &waiting.body,
            })
            .collect();
        let requests: Vec<OrderRequest<'_>> = raws
            .iter()
            .zip(&batch)
            .map(|(raw, waiting)| OrderRequest {
                raw,
                order: &waiting.order,
                flags: &waiting.flags,
            })
            .collect();
        let answers = shared.db.record_orders(&requests).await;
        drop(requests);
        drop(raws);
        match answers {
            Ok(answers) => {
                for (waiting, answer) in batch.into_iter().zip(answers) {
                    // A request gone (its platform hung up) needs no answer.
                    let _ = waiting.answer.send(answer);
                }
            }
            Err(error) => {
                tracing::warn!(orders = batch.len(), %error, "A batch of orders could not be recorded (PostgreSQL out of reach); each request tries alone.");
            }
        }
    }
    drop(shared.orders_desk.close().await);
}

/// Records an order request: at the orders desk, or alone when the desk cannot take it
/// or did not answer.
async fn record_order(
    shared: &Shared,
    raw: &RawRecord<'_>,
    order: &NewOrder,
    flags: &[Flag],
) -> Result<Recorded, DbError> {
    let (answer, answered) = oneshot::channel();
    let waiting = WaitingOrder {
        channel: raw.channel.to_owned(),
        dedupe_key: raw.dedupe_key.to_owned(),
        received_at: raw.received_at,
        headers: raw.headers.clone(),
        body: Bytes::copy_from_slice(raw.body),
        order: order.clone(),
        flags: flags.to_vec(),
        answer,
    };
    if shared.orders_desk.leave(waiting).is_ok()
        && let Ok(recorded) = answered.await
    {
        return recorded;
    }
    shared.db.record_order(raw, order, flags).await
}

pub async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
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
    body: Body,
) -> Response {
    let started = Instant::now();
    let response = handle(&shared, &channel, Some(event), method, &uri, headers, body).await;
    observe(&shared, &channel, started);
    response
}

/// A body that could not be read whole.
#[derive(Debug)]
enum BodyError {
    /// Over the limit: its first [`QUARANTINED_HEAD_BYTES`] bytes (at most).
    TooLarge(Bytes),
    /// The connection failed while the body was sent.
    Read(axum::Error),
}

/// Reads a body of at most `limit` bytes. Nothing past the limit is buffered: a body
/// over it stops being read there, and only its head is kept.
async fn read_body(body: Body, limit: usize, declared: Option<usize>) -> Result<Bytes, BodyError> {
    let mut chunks = body.into_data_stream();
    // The declared length is a hint only, and never reserves more than the head's size.
    let mut buffer =
        BytesMut::with_capacity(declared.unwrap_or(0).min(limit).min(QUARANTINED_HEAD_BYTES));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if buffer.len() + chunk.len() > limit {
            let room = QUARANTINED_HEAD_BYTES.saturating_sub(buffer.len());
            buffer.truncate(QUARANTINED_HEAD_BYTES);
            buffer.extend_from_slice(&chunk[..room.min(chunk.len())]);
            return Err(BodyError::TooLarge(buffer.freeze()));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
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
    keep(&request.method, &request.headers, request.query.as_deref())
}

/// [`kept_headers`] of a request's parts.
fn keep(method: &Method, headers: &HeaderMap, query: Option<&str>) -> serde_json::Value {
    let mut kept: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| !crossdock_channel::is_credential_header(name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                json!(value.to_str().unwrap_or("<binary>")),
            )
        })
        .collect();
    if method != Method::POST {
        kept.insert(":method".into(), json!(method.as_str()));
    }
    if let Some(query) = query {
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
    body: Body,
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
    let received_at = Utc::now();
    let limit = shared.settings.http.body_limit_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let body = match read_body(body, limit, declared).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(head)) => {
            let kept = keep(&method, &headers, uri.query());
            return too_large(shared, channel_id, received_at, &kept, &head).await;
        }
        Err(BodyError::Read(error)) => {
            tracing::info!(channel = channel_id, %error, "Webhook body could not be read.");
            return super::ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the request body could not be read: {error}"),
            )
            .into_response();
        }
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
        received_at,
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
            let recorded = record_order(shared, &raw, order, &flags).await?;
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

/// A body over the limit: 413 in the API's shape and a quarantine record with the kept
/// headers and the body's head, so HQ sees what was sent.
async fn too_large(
    shared: &Shared,
    channel_id: &str,
    received_at: chrono::DateTime<Utc>,
    headers: &serde_json::Value,
    head: &[u8],
) -> Response {
    let limit = shared.settings.http.body_limit_bytes;
    tracing::warn!(
        channel = channel_id,
        error_kind = "too_large",
        limit_bytes = limit,
        "Webhook refused: body over the limit."
    );
    shared.metrics.webhook_refused(channel_id, "too_large");
    let reason = format!(
        "body over the limit of {limit} bytes (http.body_limit_bytes); its first {} bytes are kept",
        head.len()
    );
    match shared
        .db
        .quarantine(channel_id, received_at, "too_large", &reason, headers, head)
        .await
    {
        Ok(_) => shared.metrics.quarantined(channel_id),
        Err(db_error) => {
            tracing::error!(channel = channel_id, error = %db_error, "Oversized webhook could not be quarantined.");
        }
    }
    super::ApiError::too_large(limit).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body sent in chunks of `chunk` bytes, `len` in all.
    fn chunked(len: usize, chunk: usize) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..len)
            .step_by(chunk)
            .map(|start| Ok(Bytes::from(vec![b'x'; chunk.min(len - start)])))
            .collect();
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_read_whole() {
        let limit = 200 * 1024;
        let body = read_body(chunked(limit, 7000), limit, None)
            .await
            .expect("at the limit");
        assert_eq!(body.len(), limit);
        let empty = read_body(Body::empty(), limit, Some(0))
            .await
            .expect("empty");
        assert!(empty.is_empty());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_keeps_only_its_head() {
        let limit = 200 * 1024;
        for chunk in [1, 7000, 100 * 1024, limit + 1] {
            match read_body(chunked(limit + 1, chunk), limit, Some(limit + 1)).await {
                Err(BodyError::TooLarge(head)) => {
                    assert_eq!(head.len(), QUARANTINED_HEAD_BYTES, "chunks of {chunk}");
                }
                other => panic!("chunks of {chunk}: {other:?}"),
            }
        }
        // A limit under the head's size keeps what was read, never more than the head.
        match read_body(chunked(5000, 1000), 4096, None).await {
            Err(BodyError::TooLarge(head)) => assert_eq!(head.len(), 5000),
            other => panic!("{other:?}"),
        }
    }
}
