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

/// How long a message that failed for want of PostgreSQL is held before it is requeued
/// anyway, at most.
const REQUEUE_PATIENCE: Duration = Duration::from_secs(120);

/// Waits before a requeue so a failing dependency is not hammered: a moment, and while
/// PostgreSQL cannot be reached, until it answers again (at most [`REQUEUE_PATIENCE`]).
/// A message requeued on every try of an outage would use up its deliveries
/// (`broker.delivery_limit`) in a couple of seconds and be dead-lettered: an order lost to
/// a database restart.
pub(crate) async fn requeue_after_pause(shared: &Shared) -> Disposition {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reachable = || async {
        tokio::time::timeout(crate::links::PING_TIMEOUT, shared.db.ping())
            .await
            .is_ok_and(|ping| ping.is_ok())
    };
    wait_until(reachable, REQUEUE_PATIENCE).await;
    Disposition::Requeue
}

/// Asks `ready` with backoff (100 ms doubling to 5 s) until it says yes or `patience` has
/// passed; whether it said yes.
async fn wait_until<F, Fut>(mut ready: F, patience: Duration) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut backoff = crossdock_broker::Backoff::default();
    loop {
        if ready().await {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(backoff.next_delay().min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_requeue_waits_while_the_dependency_is_down_and_no_longer() {
        // Down for the first three asks (a database restarting), then up: one requeue
        // after the outage instead of one every 200 ms. (The delays between asks are the
        // broker's `Backoff`, tested there.)
        let asked = AtomicU32::new(0);
        let up = wait_until(
            || async { asked.fetch_add(1, Ordering::SeqCst) >= 3 },
            Duration::from_secs(120),
        )
        .await;
        assert!(up);
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        // Up at once: asked once.
        let asked = AtomicU32::new(0);
        let up = wait_until(
            || async {
                asked.fetch_add(1, Ordering::SeqCst);
                true
            },
            Duration::from_secs(120),
        )
        .await;
        assert!(up);
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // Never up: it gives up once its patience has passed, having asked more than once.
        let asked = AtomicU32::new(0);
        let up = wait_until(
            || async {
                asked.fetch_add(1, Ordering::SeqCst);
                false
            },
            Duration::from_millis(300),
        )
        .await;
        assert!(!up);
        assert!(asked.load(Ordering::SeqCst) >= 2);
    }
}
