//! `/api/v1/codes`: a store checks and redeems a code a customer shows at the counter (a
//! voucher bought and paid on a platform). The hub asks the channel's platform; a redeemed
//! code becomes an order of that store, recorded and routed like any other.
//!
//! | method and path | who | what |
//! |---|---|---|
//! | `POST /codes/check` `{"channel", "code", "store"?}` | store, HQ (with `store`) | what the code is worth, without redeeming it |
//! | `POST /codes/redeem` `{"channel", "code", "count"?, "store"?}` | store, HQ (with `store`) | redeem it: `{"order_id", "external_order_id", "duplicate"}` |
//!
//! A body that does not read as that (not JSON, a field missing or of the wrong type, a
//! `count` that is not a whole number) is answered 400 `{"error": "bad_body", "message"}`
//! naming what is wrong, as the other API routes answer; a `count` outside 1 to 100 is
//! `bad_count`.
//!
//! Redeeming is safe to repeat: the platform gets the same idempotency key for the same
//! store, code and count, and the hub never makes a second order of one redemption. It is
//! ingest, and passes the per-source rate limit first (`limit.rs`; 429 with `Retry-After`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use crossdock_channel::{Channel, ChannelError, CodeClaim, Inbound};
use crossdock_db::ingest::RawRecord;
use crossdock_model::StoreId;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ApiError;
use super::api::Caller;
use super::limit::Gate;
use crate::app::Shared;

/// The routes; a redemption is ingest and passes `limit`'s per-source limit first.
pub fn router(limit: Gate) -> Router<Arc<Shared>> {
    Router::new().route("/codes/check", post(check)).route(
        "/codes/redeem",
        post(redeem).route_layer(axum::middleware::from_fn_with_state(
            limit,
            super::limit::gate,
        )),
    )
}

#[derive(Debug, Deserialize)]
struct CodeBody {
    channel: String,
    code: String,
    #[serde(default = "one")]
    count: u32,
    /// HQ redeems on behalf of a store; a store's token names its own store.
    store: Option<String>,
}

fn one() -> u32 {
    1
}

/// The request's body: JSON in the API's error shape when it does not read (not axum's
/// plain-text rejection), naming what is wrong (`count: invalid value: integer `-1`…`).
fn code_body(body: &[u8]) -> Result<CodeBody, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the body must be {{\"channel\", \"code\", \"count\"?, \"store\"?}}: {error}"),
        )
    })
}

/// The channel, the store and the claim a request makes.
fn claim(
    shared: &Shared,
    caller: &Caller,
    body: &CodeBody,
) -> Result<(Arc<dyn Channel>, StoreId, CodeClaim), ApiError> {
    let bad = |code, message: String| ApiError::new(StatusCode::BAD_REQUEST, code, message);
    let store = match (caller, &body.store) {
        (Caller::Store(own), Some(named)) if own.as_str() != named => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a store redeems codes for itself only",
            ));
        }
        (Caller::Store(own), _) => own.clone(),
        (Caller::Hq, Some(named)) => {
            StoreId::parse(named).map_err(|e| bad("bad_store", format!("store: {e}")))?
        }
        (Caller::Hq, None) => {
            return Err(bad(
                "store_required",
                "HQ must name the `store` redeeming the code".into(),
            ));
        }
    };
    let channel = shared.channels.get(&body.channel).cloned().ok_or_else(|| {
        bad(
            "unknown_channel",
            format!("no channel `{}` on this hub", body.channel),
        )
    })?;
    let code = body.code.trim();
    if code.is_empty() || code.len() > 128 {
        return Err(bad(
            "bad_code",
            "code: give the code as the customer shows it (1 to 128 characters)".into(),
        ));
    }
    if !(1..=100).contains(&body.count) {
        return Err(bad("bad_count", "count must be between 1 and 100".into()));
    }
    let registry = shared.registry();
    let profile = registry
        .store(&store)
        .ok_or_else(|| ApiError::unknown_store(&store))?;
    let channel_store_ref = profile
        .channels
        .get(&body.channel)
        .cloned()
        .ok_or_else(|| {
            bad(
                "store_not_on_channel",
                format!(
                    "store {store} has no `{}` id in the chain's configuration",
                    body.channel
                ),
            )
        })?;
    let request_id = hex::encode(
        &Sha256::digest(format!("{}\n{store}\n{code}\n{}", body.channel, body.count).as_bytes())
            [..16],
    );
    Ok((
        channel,
        store,
        CodeClaim {
            channel_store_ref,
            code: code.to_owned(),
            count: body.count,
            request_id,
            claimed_at: Utc::now(),
        },
    ))
}

/// A platform's refusal as the store sees it: permanent ones are the cashier's to act on
/// (wrong or used code), the rest are worth a retry.
fn refused(error: &ChannelError) -> ApiError {
    let status = match error {
        ChannelError::Unsupported(_) => StatusCode::BAD_REQUEST,
        error if error.is_retryable() => StatusCode::BAD_GATEWAY,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, error.kind(), error.to_string())
}

async fn check(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = code_body(&body)?;
    let (channel, store, claim) = claim(&shared, &caller, &body)?;
    let preview = channel.check_code(&claim).await.map_err(|e| refused(&e))?;
    tracing::info!(channel = %channel.id(), %store, "Code checked.");
    Ok(Json(preview))
}

async fn redeem(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = code_body(&body)?;
    let (channel, store, claim) = claim(&shared, &caller, &body)?;
    let channel_id = channel.id().as_str();
    let answer = channel.redeem_code(&claim).await.map_err(|e| refused(&e))?;
    let received_at = Utc::now();
    let headers = json!({ "x-crossdock-claim": serde_json::to_string(&claim).unwrap_or_default() });
    // The code is used on the platform now: an answer the hub cannot take is kept for HQ.
    let raw = RawRecord {
        channel: channel_id,
        dedupe_key: "",
        received_at,
        headers: headers.clone(),
        body: &answer,
    };
    let quarantine = |error: ChannelError| set_aside(&shared, &raw, error);
    let delivery = match channel.parse_redeemed(&claim, &answer) {
        Ok(delivery) => delivery,
        Err(error) => return Err(quarantine(error).await),
    };
    let external_order_id = match &delivery.inbound {
        Inbound::Order(order) => order.external_order_id.clone(),
        other => {
            let error = ChannelError::Malformed(format!(
                "channel {channel_id} read a redemption as {other:?}, not an order"
            ));
            return Err(quarantine(error).await);
        }
    };
    let record = RawRecord {
        dedupe_key: &delivery.dedupe_key,
        headers: headers.clone(),
        ..raw
    };
    match super::webhooks::record(&shared, record, &delivery).await {
        Ok(Ok(recorded)) => {
            tracing::info!(
                channel = channel_id,
                %store,
                order_id = ?recorded.order_id(),
                duplicate = recorded.is_duplicate(),
                "Code redeemed."
            );
            Ok(Json(json!({
                "order_id": recorded.order_id(),
                "external_order_id": external_order_id,
                "duplicate": recorded.is_duplicate(),
            })))
        }
        Ok(Err(error)) => Err(quarantine(error).await),
        Err(error) => Err(ApiError::internal(error)),
    }
}

/// Quarantines the platform's answer to a redemption the hub cannot take, and says why.
async fn set_aside(shared: &Shared, raw: &RawRecord<'_>, error: ChannelError) -> ApiError {
    if let Err(db_error) = shared
        .db
        .quarantine(
            raw.channel,
            raw.received_at,
            error.kind(),
            &error.to_string(),
            &raw.headers,
            raw.body,
        )
        .await
    {
        tracing::error!(channel = raw.channel, error = %db_error, "A redeemed code could not be quarantined.");
    }
    tracing::warn!(channel = raw.channel, error = %error, "Redeemed code set aside for HQ.");
    refused(&error)
}
