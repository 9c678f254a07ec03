//! The public HTTP surface (one port): webhooks, the store and HQ API, health, and the
//! two web pages (`/store`, `/hq`) with their live stream.

mod api;
mod codes;
mod health;
mod hq;
mod live;
mod pages;
mod stores;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::watch;

use crate::app::Shared;

pub use api::hash_token;

/// The whole HTTP surface.
pub fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.settings.http.body_limit_bytes;
    Router::new()
        .route(
            "/webhooks/{channel}",
            post(webhooks::receive).get(webhooks::receive),
        )
        .route(
            "/webhooks/{channel}/{event}",
            post(webhooks::receive_event).get(webhooks::receive_event),
        )
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(crate::metrics::scrape))
        .nest(
            "/api/v1",
            api::router()
                .merge(codes::router())
                .merge(stores::router())
                .merge(hq::router())
                .merge(live::router()),
        )
        .merge(pages::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared)
}

/// Serves until the stop signal.
pub async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared);
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
