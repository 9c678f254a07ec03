//! `/api/v1` for HQ's dashboard (the admin token only): the summary of recent orders and
//! of what waits for HQ, the attention list's entries (served at `/attention`, see
//! `api.rs`), status pushes parked for HQ and outbox messages the broker refused, and
//! replaying both. Search (`GET /orders?q=`) and each push's state on `GET /orders/{id}`
//! are in `api.rs`; the queries in `crossdock_db::hq`.
//!
//! | method and path | body | what |
//! |---|---|---|
//! | `GET /summary?hours=24` | | orders received in the last `hours` (1–168) by status, channel and store (every store of the registry, with its live state), open orders with no store, and what waits for HQ by kind |
//! | `GET /parked?limit=` | | `syncs`: status pushes parked for HQ, oldest first; `set_aside`: outbox messages the broker refused |
//! | `POST /orders/{id}/replay` | | the order's parked pushes back to pending, pushed again in order; 409 `nothing_parked` when none |
//! | `POST /outbox/{id}/replay` | | a set-aside outbox message published again; 404 when there is none of that id |

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use crossdock_db::hq::{Attention, AttentionKind, ReplayError, StoreCounts};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::api::{Caller, parse_order_id};
use crate::app::Shared;

/// How far back the attention list shows orders no store could take (nothing can be done
/// about them; HQ must see them, not keep them forever).
pub(crate) const NO_STORE_WINDOW: Duration = Duration::hours(24);

/// The summary's window, in hours: the default and the largest (a week).
const DEFAULT_HOURS: i64 = 24;
const MAX_HOURS: i64 = 168;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/summary", get(summary))
        .route("/parked", get(parked))
        .route("/orders/{id}/replay", post(replay_order))
        .route("/outbox/{id}/replay", post(replay_outbox))
}

/// What HQ can do about an attention entry: the buttons the dashboard shows.
fn actions(kind: AttentionKind) -> &'static [&'static str] {
    match kind {
        AttentionKind::Declined | AttentionKind::TimedOut => &["assign", "reject"],
        AttentionKind::SyncParked => &["replay"],
        AttentionKind::NoStore => &[],
    }
}

fn attention_entry(item: Attention) -> Value {
    json!({
        "kind": item.kind,
        "reason": item.reason,
        "since": item.since,
        "declined_by": item.declined_by,
        "accept_by": item.order.order.fulfillment.accept_by,
        "actions": actions(item.kind),
        "order": item.order,
    })
}

/// `GET /attention`'s answer: every kind of order waiting for HQ, at most `limit`.
pub(super) async fn attention(shared: &Shared, limit: i64) -> Result<Json<Value>, ApiError> {
    let items = shared
        .db
        .attention_list(limit, Utc::now() - NO_STORE_WINDOW)
        .await
        .map_err(ApiError::internal)?;
    let orders: Vec<Value> = items.into_iter().map(attention_entry).collect();
    Ok(Json(json!({ "orders": orders })))
}

#[derive(Debug, Deserialize)]
struct SummaryQuery {
    hours: Option<String>,
}

fn summary_hours(query: &SummaryQuery) -> Result<i64, ApiError> {
    let Some(text) = query.hours.as_deref() else {
        return Ok(DEFAULT_HOURS);
    };
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|hours| (1..=MAX_HOURS).contains(hours))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_hours",
                format!("`hours` must be a whole number from 1 to {MAX_HOURS}, not `{text}`"),
            )
        })
}

/// A store's line of the summary: its orders in the window and its live state as this
/// process's registry holds it.
fn store_line(
    shared: &Shared,
    profile: &crossdock_model::StoreProfile,
    counts: StoreCounts,
    now: DateTime<Utc>,
) -> Value {
    let live = shared.registry().live(&profile.id).unwrap_or_default();
    let paused = live.paused_at(now);
    json!({
        "store": profile.id,
        "name": profile.name,
        "total": counts.total,
        "open": counts.open,
        "waiting": counts.waiting,
        "active": live.active,
        "capacity": profile.capacity,
        "paused": paused,
        "paused_until": live.paused_until.filter(|_| paused),
        "unavailable": live.unavailable,
    })
}

async fn summary(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<SummaryQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_hq()?;
    let hours = summary_hours(&query)?;
    let now = Utc::now();
    let (counts, waiting) = tokio::try_join!(
        shared.db.order_counts(now - Duration::hours(hours)),
        shared.db.attention_counts(now - NO_STORE_WINDOW),
    )
    .map_err(ApiError::internal)?;
    let by_status: serde_json::Map<String, Value> = counts
        .by_status
        .iter()
        .map(|(status, n)| (status.as_str().to_owned(), json!(n)))
        .collect();
    let registry = shared.registry();
    let mut stores: Vec<_> = registry
        .stores()
        .map(|profile| {
            let counts = counts
                .by_store
                .get(&profile.id)
                .copied()
                .unwrap_or_default();
            (counts.total, profile.id.clone(), profile)
        })
        .collect();
    // Stores with orders first (most first), then the rest, by id.
    stores.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let by_store: Vec<Value> = stores
        .into_iter()
        .map(|(_, id, profile)| {
            let counts = counts.by_store.get(&id).copied().unwrap_or_default();
            store_line(&shared, profile, counts, now)
        })
        .collect();
    Ok(Json(json!({
        "at": now,
        "hours": hours,
        "by_status": by_status,
        "by_channel": counts.by_channel,
        "by_store": by_store,
        "unassigned": counts.unassigned,
        "attention": waiting,
    })))
}

#[derive(Debug, Deserialize)]
struct ParkedQuery {
    limit: Option<i64>,
}

async fn parked(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<ParkedQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_hq()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let (syncs, set_aside) =
        tokio::try_join!(shared.db.parked_syncs(limit), shared.db.set_aside(limit),)
            .map_err(ApiError::internal)?;
    Ok(Json(json!({ "syncs": syncs, "set_aside": set_aside })))
}

async fn replay_order(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_hq()?;
    let id = parse_order_id(&id)?;
    let replayed = match shared.db.replay_parked(id).await {
        Ok(replayed) => replayed,
        Err(error @ ReplayError::NotFound(_)) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                error.to_string(),
            ));
        }
        Err(error @ ReplayError::NothingParked(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "nothing_parked",
                error.to_string(),
            ));
        }
        Err(ReplayError::Db(error)) => return Err(ApiError::internal(error)),
    };
    tracing::info!(
        order_id = %id,
        replayed = replayed.replayed,
        event_ids = ?replayed.event_ids,
        "HQ replayed the order's parked status pushes."
    );
    Ok(Json(json!(replayed)))
}

async fn replay_outbox(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_hq()?;
    let id: i64 = id.trim().parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("`{id}` is not an outbox message id (a whole number; see GET /parked)"),
        )
    })?;
    let row = shared
        .db
        .replay_set_aside(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no set-aside outbox message {id} (see GET /parked)"),
            )
        })?;
    tracing::info!(
        outbox_id = id,
        routing_key = %row.routing_key,
        kind = %row.kind,
        refusal = row.refusal.as_deref().unwrap_or(""),
        "HQ replayed a set-aside outbox message."
    );
    shared.relay_wake.notify_one();
    Ok(Json(json!({
        "id": row.id,
        "routing_key": row.routing_key,
        "kind": row.kind,
        "message_id": row.message_id,
        "replayed": true,
    })))
}
