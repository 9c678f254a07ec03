//! The public HTTP surface (one port): webhooks, the store and HQ API, health, and the
//! two web pages (`/store`, `/hq`) with their live stream.

mod api;
mod codes;
mod health;
mod hq;
mod limit;
mod live;
mod pages;
mod stores;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::watch;

use crate::app::Shared;

pub use api::hash_token;
pub use limit::{IngestLimiter, source_ip};
pub use live::RESYNC as STREAM_RESYNC;
pub use webhooks::{OrdersDesk, QUARANTINED_HEAD_BYTES, orders_desk, spawn_desk};

/// The whole HTTP surface.
///
/// Webhooks and code redemptions pass the per-source ingest limit first (`limit`); the
/// source is the peer's address, which [`serve`] provides (a router served without it
/// counts every request under one address).
pub fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.settings.http.body_limit_bytes;
    let limiter = Arc::new(IngestLimiter::new(
        &shared.settings.http,
        shared.channels.keys().map(String::as_str),
    ));
    let gate = |scope| limit::Gate {
        limiter: limiter.clone(),
        shared: shared.clone(),
        scope,
    };
    let webhooks = Router::new()
        .route(
            "/webhooks/{channel}",
            post(webhooks::receive).get(webhooks::receive),
        )
        .route(
            "/webhooks/{channel}/{event}",
            post(webhooks::receive_event).get(webhooks::receive_event),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            gate(limit::Scope::Webhook),
            limit::gate,
        ));
    let api = api::router()
        .merge(codes::router(gate(limit::Scope::Codes)))
        .merge(stores::router())
        .merge(hq::router())
        .merge(live::router())
        // A body over the limit (refused by the extractors) answers in the API's shape.
        .layer(axum::middleware::map_response_with_state(
            body_limit,
            too_large_as_json,
        ));
    Router::new()
        .merge(webhooks)
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(crate::metrics::scrape))
        .nest("/api/v1", api)
        .merge(pages::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared)
}

/// Serves until the stop signal, with each connection's peer address (the ingest limit's
/// source).
pub async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared).into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                return;
            }
        }
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "HTTP server stopped with an error.");
    }
}

/// The body limit's refusal (axum's plain-text 413) as `{"error": "too_large", …}`.
async fn too_large_as_json(State(limit): State<usize>, response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        ApiError::too_large(limit).into_response()
    } else {
        response
    }
}

/// An API error: a status, a stable code and a message a person can act on.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// A store the registry does not hold.
    pub fn unknown_store(store: &crossdock_model::StoreId) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_store",
            format!("store {store} is not in the registry"),
        )
    }

    /// A request body over `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body over {limit} bytes"),
        )
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "Request failed.");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong; see the hub's log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}
