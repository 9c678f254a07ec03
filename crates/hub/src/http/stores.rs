//! `/api/v1/stores/{id}/…`: a store's live state — pause and resume, items it cannot make
//! ("86") — set by HQ (the admin token) or by the store itself (its own token, its own
//! store only). Each change takes effect in this process at once and in every other
//! within `router.live_refresh_ms`.
//!
//! | method and path | body | what |
//! |---|---|---|
//! | `GET /stores/{id}/live` | | pause, unavailable items, active orders and capacity, open now |
//! | `POST /stores/{id}/pause` | `{"until": RFC 3339, "minutes": n, "reason": "..."}` (all optional; neither time: until resumed) | pause |
//! | `POST /stores/{id}/resume` | | end the pause |
//! | `POST /stores/{id}/availability` | `{"unavailable": [PLU…], "available": [PLU…]}` | mark items unavailable / available again |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use crossdock_db::chain::LiveRow;
use crossdock_model::StoreId;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::api::{Caller, json_body};
use crate::app::Shared;
use crate::feed::Change;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/stores/{id}/live", get(live))
        .route("/stores/{id}/pause", post(pause))
        .route("/stores/{id}/resume", post(resume))
        .route("/stores/{id}/availability", post(availability))
}

/// A pause "until resumed" lasts until this instant.
fn until_resumed() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The store a caller may act on: HQ any known store, a store only itself.
fn store_for(shared: &Shared, caller: &Caller, id: &str) -> Result<StoreId, ApiError> {
    let id = StoreId::parse(id)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_store", e.to_string()))?;
    if let Caller::Store(own) = caller
        && *own != id
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a store token acts on its own store only",
        ));
    }
    if shared.registry().store(&id).is_none() {
        return Err(ApiError::unknown_store(&id));
    }
    Ok(id)
}

/// The live state as the API shows it, from the database's row.
fn view(shared: &Shared, row: &LiveRow) -> serde_json::Value {
    live_view(
        shared,
        &row.store,
        row.paused_until,
        row.pause_reason.as_deref(),
        &row.unavailable,
        row.active,
    )
}

/// The store's live state as this process's registry holds it, in the API's shape (the
/// store console's stream sends it); `None` for a store not in the registry.
pub(crate) fn registry_view(shared: &Shared, store: &StoreId) -> Option<serde_json::Value> {
    let live = shared.registry().live(store)?;
    let unavailable: Vec<String> = live.unavailable.into_iter().collect();
    Some(live_view(
        shared,
        store,
        live.paused_until,
        live.pause_reason.as_deref(),
        &unavailable,
        live.active,
    ))
}

fn live_view(
    shared: &Shared,
    store: &StoreId,
    paused_until: Option<DateTime<Utc>>,
    pause_reason: Option<&str>,
    unavailable: &[String],
    active: u32,
) -> serde_json::Value {
    let now = Utc::now();
    let registry = shared.registry();
    let paused = paused_until.is_some_and(|until| until > now);
    let until = paused_until.filter(|_| paused);
    json!({
        "store": store,
        "paused": paused,
        "paused_until": until.filter(|t| *t < until_resumed()),
        "pause_reason": pause_reason.filter(|_| paused),
        "unavailable": unavailable,
        "active": active,
        "capacity": registry.store(store).map(|profile| profile.capacity),
        "open_now": registry.hours(store).map(|hours| hours.is_open(now)),
    })
}

/// Answers with the store's live state as the database returned it, and puts it into this
/// process's registry at once.
fn answer(
    shared: &Shared,
    row: Option<LiveRow>,
    id: &StoreId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let row = row.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_store",
            format!("store {id} is not in the database"),
        )
    })?;
    let body = view(shared, &row);
    let store = row.store.clone();
    shared.note_live(row);
    shared.feed.note(Change::Store(store));
    Ok(Json(body))
}

async fn live(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = store_for(&shared, &caller, &id)?;
    let row = shared.db.live(&id).await.map_err(ApiError::internal)?;
    answer(&shared, row, &id)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    until: Option<DateTime<Utc>>,
    minutes: Option<u32>,
    reason: Option<String>,
}

async fn pause(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = store_for(&shared, &caller, &id)?;
    let body: PauseBody = json_body(&body)?;
    let now = Utc::now();
    let until = match (body.until, body.minutes) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_pause",
                "give `until` or `minutes`, not both",
            ));
        }
        (Some(until), None) => until,
        (None, Some(minutes)) if (1..=7 * 24 * 60).contains(&minutes) => {
            now + chrono::Duration::minutes(i64::from(minutes))
        }
        (None, Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_pause",
                "`minutes` must be between 1 and 10080 (a week)",
            ));
        }
        (None, None) => until_resumed(),
    };
    if until <= now {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_pause",
            format!("`until` ({}) is not in the future", until.to_rfc3339()),
        ));
    }
    let reason = body
        .reason
        .map(|r| r.trim().chars().take(200).collect::<String>())
        .filter(|r| !r.is_empty());
    let row = shared
        .db
        .set_pause(&id, Some(until), reason.as_deref())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(store = %id, until = %until, by = ?caller, "Store paused.");
    answer(&shared, row, &id)
}

async fn resume(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = store_for(&shared, &caller, &id)?;
    let row = shared
        .db
        .set_pause(&id, None, None)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(store = %id, by = ?caller, "Store resumed.");
    answer(&shared, row, &id)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilityBody {
    #[serde(default)]
    unavailable: Vec<String>,
    #[serde(default)]
    available: Vec<String>,
}

/// Item codes as the chain's menu writes them: 1–64 visible ASCII characters.
fn check_plus(list: &[String]) -> Result<(), ApiError> {
    if list.len() > 1000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_items",
            "at most 1000 item codes per request",
        ));
    }
    match list
        .iter()
        .find(|plu| plu.is_empty() || plu.len() > 64 || !plu.bytes().all(|b| b.is_ascii_graphic()))
    {
        Some(bad) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_items",
            format!("`{bad}` is not an item code (PLU): 1–64 visible ASCII characters"),
        )),
        None => Ok(()),
    }
}

async fn availability(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = store_for(&shared, &caller, &id)?;
    let body: AvailabilityBody = json_body(&body)?;
    check_plus(&body.unavailable)?;
    check_plus(&body.available)?;
    if let Some(both) = body
        .unavailable
        .iter()
        .find(|plu| body.available.contains(plu))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_items",
            format!("`{both}` is listed as both unavailable and available"),
        ));
    }
    let row = shared
        .db
        .set_availability(&id, &body.unavailable, &body.available)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(
        store = %id,
        unavailable = ?body.unavailable,
        available = ?body.available,
        by = ?caller,
        "Item availability changed."
    );
    answer(&shared, row, &id)
}
