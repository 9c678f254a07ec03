//! Liveness and readiness.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use crate::app::Shared;

pub async fn live() -> &'static str {
    "ok"
}

/// Ready when PostgreSQL answers and (where this process publishes) RabbitMQ is connected.
pub async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, Json<serde_json::Value>) {
    let postgres = matches!(
        tokio::time::timeout(Duration::from_secs(2), shared.db.ping()).await,
        Ok(Ok(()))
    );
    let rabbitmq = shared.publisher.as_ref().map(|p| p.is_connected());
    let ready = postgres && rabbitmq.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "postgres": postgres, "rabbitmq": rabbitmq })),
    )
}
