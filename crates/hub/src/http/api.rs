//! `/api/v1`: stores (their own token) list, read and work their orders; HQ (the admin
//! token) reads any order with its full history.
//!
//! | method and path | who | what |
//! |---|---|---|
//! | `GET /orders?status=&limit=` | store, HQ | the store's orders (HQ: all; `store=` filters), newest first |
//! | `GET /orders?q=` | store, HQ | search: orders whose display code or channel order id is `q` (any case), or whose id it is; a store finds only its own |
//! | `GET /orders/{id}` | store, HQ | one order; HQ also gets `events` and `syncs` (each status push's state) |
//! | `GET /orders/{id}/events` | HQ | the order's history |
//! | `POST /orders/{id}/accept` `{"prep_minutes": n}` | store, HQ | accept |
//! | `POST /orders/{id}/reject` `{"reason": "..."}` | store | decline: the order goes to the next store where the hub chose the store, to HQ's attention where the channel named it |
//! | `POST /orders/{id}/reject` `{"reason": "..."}` | HQ | reject back to the channel |
//! | `POST /orders/{id}/assign` `{"store": "...", "force": false}` | HQ | re-assign an order no store has accepted (`force`: even to a store the router would drop) |
//! | `GET /attention?limit=` | HQ | what needs HQ, each with its `kind` and `actions`: orders a store the channel named declined (`declined`) or let time out (`timed_out`), then parked status pushes (`sync_parked`), then orders no store could take in the last 24 h (`no_store`); longest-waiting first |
//! | `POST /orders/{id}/preparing`, `/ready`, `/picked-up`, `/delivered`, `/complete` | store, HQ | progress |
//! | `POST /orders/{id}/cancel` `{"reason": "..."}` | store, HQ | cancel after accepting |
//! | `GET /stores` | HQ | the store registry |
//! | `GET /stores/me` | store | the calling store |
//! | `GET /quarantine?channel=` | HQ | refused requests of a channel |
//!
//! A store's pause and item availability are under `/stores/{id}/…` (see `stores.rs`);
//! codes shown at the counter (vouchers) are checked and redeemed under `/codes` (see
//! `codes.rs`); HQ's dashboard (summary, parked pushes and messages, replay) is in `hq.rs`;
//! the web pages' live stream, `GET /stream`, in `live.rs`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use crossdock_db::orders::{Actor, ChangeError};
use crossdock_db::routing::{AssignError, Assignment, Decline, Declined};
use crossdock_model::{Order, OrderEvent, OrderId, Status, StatusAction, StoreId};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::ApiError;
use crate::app::Shared;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/orders", get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/events", get(get_events))
        .route("/orders/{id}/assign", post(assign))
        .route("/orders/{id}/{action}", post(act))
        .route("/attention", get(attention))
        .route("/stores", get(list_stores))
        .route("/stores/me", get(my_store))
        .route("/quarantine", get(list_quarantine))
}

/// SHA-256 of a store token, as the registry stores it.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Hq,
    Store(StoreId),
}

impl Caller {
    pub(crate) fn scope(&self) -> Option<&StoreId> {
        match self {
            Caller::Hq => None,
            Caller::Store(store) => Some(store),
        }
    }

    pub(crate) fn require_hq(&self) -> Result<(), ApiError> {
        match self {
            Caller::Hq => Ok(()),
            Caller::Store(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this endpoint needs the admin token",
            )),
        }
    }
}

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("send `Authorization: Bearer <token>`"))?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let admin = shared.admin_token.expose_secret().as_bytes();
        if crossdock_channel::signature::constant_time_eq(token.as_bytes(), admin) {
            return Ok(Caller::Hq);
        }
        match shared.db.store_for_token(&hash_token(token)).await {
            Ok(Some(store)) => Ok(Caller::Store(store)),
            Ok(None) => Err(unauthorized("unknown token")),
            Err(error) => Err(ApiError::internal(error)),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    store: Option<String>,
    limit: Option<i64>,
    /// Search: a display code, channel order id or order id.
    q: Option<String>,
}

#[derive(Serialize)]
struct OrderView {
    #[serde(flatten)]
    order: Order,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<OrderEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    syncs: Option<Vec<crossdock_db::hq::SyncState>>,
}

pub(super) fn parse_order_id(id: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(id)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_order_id", e.to_string()))
}

fn not_found(id: OrderId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("order {id} not found"),
    )
}

async fn list_orders(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_status",
                    format!("unknown status `{s}`"),
                )
            })
        })
        .transpose()?;
    let store_filter = match (&caller, query.store) {
        (Caller::Store(store), _) => Some(store.clone()),
        (Caller::Hq, Some(store)) => Some(
            StoreId::parse(store)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_store", e.to_string()))?,
        ),
        (Caller::Hq, None) => None,
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.len() > 200) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "`q` is a display code, channel order id or order id: at most 200 characters",
        ));
    }
    let orders = match search {
        Some(q) => shared
            .db
            .search_orders(store_filter.as_ref(), q, status, limit)
            .await
            .map_err(ApiError::internal)?,
        None => shared
            .db
            .list_orders(store_filter.as_ref(), status, limit)
            .await
            .map_err(ApiError::internal)?,
    };
    Ok(Json(json!({ "orders": orders })))
}

async fn get_order(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let id = parse_order_id(&id)?;
    let order = shared
        .db
        .order(id, caller.scope())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found(id))?;
    let (events, syncs) = match caller {
        Caller::Hq => (
            Some(shared.db.events(id).await.map_err(ApiError::internal)?),
            Some(
                shared
                    .db
                    .sync_states(id)
                    .await
                    .map_err(ApiError::internal)?,
            ),
        ),
        Caller::Store(_) => (None, None),
    };
    Ok(Json(OrderView {
        order,
        events,
        syncs,
    }))
}

async fn get_events(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_hq()?;
    let id = parse_order_id(&id)?;
    shared
        .db
        .order(id, None)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found(id))?;
    let events = shared.db.events(id).await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "order_id": id, "events": events })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    prep_minutes: Option<u32>,
    reason: Option<String>,
}

fn action_from(name: &str, body: ActionBody) -> Result<StatusAction, ApiError> {
    let need_reason = |body: ActionBody| {
        body.reason.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "reason_required",
                format!("`{name}` needs a JSON body with a non-empty \"reason\""),
            )
        })
    };
    Ok(match name {
        "accept" => {
            let prep_minutes = body.prep_minutes.unwrap_or(15);
            if !(1..=240).contains(&prep_minutes) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_prep_minutes",
                    "prep_minutes must be between 1 and 240",
                ));
            }
            StatusAction::Accept { prep_minutes }
        }
        "reject" => StatusAction::Reject {
            reason: need_reason(body)?,
        },
        "cancel" => StatusAction::Cancel {
            reason: need_reason(body)?,
        },
        "preparing" => StatusAction::Preparing,
        "ready" => StatusAction::Ready,
        "picked-up" => StatusAction::PickedUp,
        "delivered" => StatusAction::Delivered,
        "complete" => StatusAction::Complete,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!(
                    "unknown action `{other}`; actions are accept, reject, preparing, ready, picked-up, delivered, complete, cancel"
                ),
            ));
        }
    })
}

/// A JSON body; an empty one reads as the type's default.
pub(crate) fn json_body<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string()))
}

fn change_error(error: ChangeError) -> ApiError {
    match error {
        ChangeError::NotFound(id) => not_found(id),
        ChangeError::Transition(refused) => ApiError::new(
            StatusCode::CONFLICT,
            "illegal_transition",
            refused.to_string(),
        ),
        ChangeError::Db(error) => ApiError::internal(error),
    }
}

async fn act(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_order_id(&id)?;
    let body: ActionBody = json_body(&body)?;
    let action = action_from(&action, body)?;
    if let (Caller::Store(store), StatusAction::Reject { reason }) = (&caller, &action) {
        return decline(&shared, id, store, reason).await;
    }
    let actor = match &caller {
        Caller::Hq => Actor::Hq,
        Caller::Store(store) => Actor::Store(store.clone()),
    };
    let order = shared
        .db
        .change_status(id, &action, &actor)
        .await
        .map_err(change_error)?;
    tracing::info!(order_id = %id, status = %order.status, by = ?caller, "Order status changed.");
    shared
        .metrics
        .status_changed(&order, &action, matches!(caller, Caller::Hq));
    Ok(Json(json!(order)))
}

/// A store's reject: the order leaves the store, to the next candidate or to HQ.
async fn decline(
    shared: &Shared,
    id: OrderId,
    store: &StoreId,
    reason: &str,
) -> Result<Json<serde_json::Value>, ApiError> {
    let outcome = shared
        .db
        .decline(id, &Decline::Rejected(store.clone()), reason)
        .await
        .map_err(change_error)?;
    let next = match outcome {
        Declined::Rerouted => "another_store",
        Declined::NeedsAttention => "hq",
        Declined::Unchanged => "unchanged",
    };
    tracing::info!(order_id = %id, %store, next, "Store declined the order.");
    Ok(Json(
        json!({ "order_id": id, "declined": true, "next": next }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    store: String,
    #[serde(default)]
    force: bool,
}

async fn assign(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_hq()?;
    let id = parse_order_id(&id)?;
    let body: AssignBody = json_body(&body)?;
    let store = StoreId::parse(&body.store)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_store", e.to_string()))?;
    let registry = shared.registry();
    let profile = registry
        .store(&store)
        .ok_or_else(|| ApiError::unknown_store(&store))?;
    let order = shared
        .db
        .order(id, None)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found(id))?;
    let unfit = crossdock_router::unfit(&registry, &store, &order.order, Utc::now());
    if let Some(why) = &unfit
        && !body.force
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "store_cannot_take",
            format!(
                "store {store} cannot take the order: {why}; send \"force\": true to assign it anyway"
            ),
        ));
    }
    let verdict = match &unfit {
        None => "chosen by HQ".to_owned(),
        Some(why) => format!("chosen by HQ over: {why}"),
    };
    let decision = json!({
        "rule": "by_hq",
        "store": store,
        "previous": order.store_id,
        "candidates": [{ "store": store, "verdict": verdict }],
    });
    let capacity = (!body.force).then_some(profile.capacity);
    let timing = shared.settings.router.accept_timing();
    match shared
        .db
        .assign(id, &store, capacity, &timing, &decision)
        .await
    {
        Ok(Assignment::Assigned { store, active }) => {
            tracing::info!(order_id = %id, %store, active, "Order re-assigned by HQ.");
            let order = shared
                .db
                .order(id, None)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| not_found(id))?;
            Ok(Json(json!(order)))
        }
        Ok(other) => Err(ApiError::internal(format!(
            "unexpected assignment {other:?}"
        ))),
        Err(AssignError::NotFound(id)) => Err(not_found(id)),
        Err(AssignError::Db(error)) => Err(ApiError::internal(error)),
        Err(refused) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "cannot_assign",
            refused.to_string(),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct AttentionQuery {
    limit: Option<i64>,
}

async fn attention(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<AttentionQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_hq()?;
    super::hq::attention(&shared, query.limit.unwrap_or(100).clamp(1, 500)).await
}

async fn list_stores(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_hq()?;
    let registry = shared.registry();
    let stores: Vec<_> = registry.stores().collect();
    Ok(Json(json!({ "stores": stores })))
}

async fn my_store(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Caller::Store(store) = caller else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_store",
            "the admin token belongs to no store",
        ));
    };
    let registry = shared.registry();
    let profile = registry.store(&store).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "store not in the registry",
        )
    })?;
    Ok(Json(json!({ "store": profile })))
}

#[derive(Debug, Deserialize)]
struct QuarantineQuery {
    channel: String,
    limit: Option<i64>,
}

async fn list_quarantine(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<QuarantineQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_hq()?;
    let rows = shared
        .db
        .quarantined(&query.channel, query.limit.unwrap_or(50).clamp(1, 500))
        .await
        .map_err(ApiError::internal)?;
    let records: Vec<_> = rows
        .into_iter()
        .map(|(id, kind, reason)| json!({ "id": id, "error": kind, "reason": reason }))
        .collect();
    Ok(Json(
        json!({ "channel": query.channel, "records": records }),
    ))
}
