//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::Shared;
use crate::links::PING_TIMEOUT;

pub async fn live() -> &'static str {
    "ok"
}

/// Ready when PostgreSQL answers and every broker session of this process (the relay's
/// publisher, each consumer) is connected. The answer names each session, whether it is up
/// and for how long it has been up or down; why a link is down goes to the log, not here
/// (this endpoint needs no token).
///
/// An API-only process holds no broker session (`"rabbitmq": null`): it takes orders while
/// RabbitMQ is away, as they wait in the outbox.
pub async fn ready(State(shared): State<Arc<Shared>>) -> (StatusCode, Json<Value>) {
    let postgres = matches!(
        tokio::time::timeout(PING_TIMEOUT, shared.db.ping()).await,
        Ok(Ok(()))
    );
    let sessions = shared.links.broker_sessions();
    let rabbitmq = (!sessions.is_empty()).then(|| sessions.iter().all(|(_, link)| link.up));
    let ready = postgres && rabbitmq.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let sessions: Vec<Value> = sessions
        .into_iter()
        .map(|(name, link)| {
            json!({
                "name": name,
                "up": link.up,
                "for_ms": u64::try_from(link.since.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    (
        status,
        Json(json!({
            "ready": ready,
            "postgres": postgres,
            "rabbitmq": rabbitmq,
            "broker_sessions": sessions,
        })),
    )
}
