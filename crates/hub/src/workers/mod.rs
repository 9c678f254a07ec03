//! The pipeline's background stages. Each is a supervised loop that ends when the hub's
//! stop signal turns true; each consumer acks only after its effect has committed.

pub mod fetch;
pub mod relay;
pub mod router;
pub mod store;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use crossdock_broker::{Disposition, Incoming};
use crossdock_model::OrderId;
use serde::Deserialize;
use tokio::sync::watch;

use crate::app::Shared;

/// Keeps the in-memory store registry current: reads the stores' live state (pause,
/// unavailable items, load) every `router.live_refresh_ms`, and rebuilds the registry
/// whenever the database's version changes (checked every `router.refresh_ms`).
pub async fn refresh_registry(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let settings = &shared.settings.router;
    let live_every = Duration::from_millis(settings.live_refresh_ms.max(20));
    let registry_every = Duration::from_millis(settings.refresh_ms.max(100));
    let mut last_rebuild_check = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(live_every) => {}
        }
        if *stop.borrow() {
            return;
        }
        if last_rebuild_check.elapsed() >= registry_every {
            last_rebuild_check = tokio::time::Instant::now();
            if let Err(error) = shared.refresh_registry().await {
                tracing::warn!(error = %format!("{error:#}"), "Store registry reload failed; keeping the previous one.");
            }
        }
        if let Err(error) = shared.refresh_live().await {
            tracing::warn!(error = %format!("{error:#}"), "Reading stores' live state failed; keeping the previous one.");
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct OrderMessage {
    pub order_id: OrderId,
}

/// Parses a message body; an unreadable one can never succeed, so it is dead-lettered.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(incoming: &Incoming) -> Result<T, Disposition> {
    serde_json::from_slice(&incoming.body).map_err(|error| {
        tracing::error!(
            routing_key = %incoming.routing_key,
            message_id = ?incoming.message_id,
            %error,
            "Unreadable message; dead-lettering it."
        );
        Disposition::DeadLetter
    })
}

/// Waits a little before a requeue so a failing dependency is not hammered.
pub(crate) async fn requeue_after_pause() -> Disposition {
    tokio::time::sleep(Duration::from_millis(200)).await;
    Disposition::Requeue
}
