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

/// Rebuilds the in-memory store registry whenever the database's changes (checked every
/// `router.refresh_ms`).
pub async fn refresh_registry(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(shared.settings.router.refresh_ms.max(100));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if *stop.borrow() {
            return;
        }
        if let Err(error) = shared.refresh_registry().await {
            tracing::warn!(error = %format!("{error:#}"), "Store registry reload failed; keeping the previous one.");
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
