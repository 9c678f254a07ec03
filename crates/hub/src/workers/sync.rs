//! The sync stage: nudges from the sync queue make the worker push an order's pending
//! status changes (see `crossdock_db::sync`); a sweeper picks up retries that come due and
//! any nudge that was lost.

use std::sync::Arc;
use std::time::Duration;

use crossdock_broker::{Disposition, Incoming};
use crossdock_db::sync::SyncPush;
use tokio::sync::watch;

use super::{OrderMessage, parse, requeue_after_pause};
use crate::app::Shared;

/// Consumes the sync queue; `pusher` is the channels' pusher (metered, see
/// `crate::metrics::MeteredPush`).
pub async fn run(shared: Arc<Shared>, pusher: Arc<dyn SyncPush>, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let queue = shared.topology.sync_queue();
    let concurrency = shared.settings.sync.concurrency.max(1);
    let prefetch = u16::try_from(concurrency * 4).unwrap_or(u16::MAX);
    let handler_shared = shared.clone();
    let link = shared.links.broker_session(queue.clone());
    let result = crossdock_broker::consume(
        config,
        queue,
        prefetch,
        concurrency,
        link,
        stop,
        move |incoming| {
            let shared = handler_shared.clone();
            let pusher = pusher.clone();
            async move { handle(&shared, pusher.as_ref(), incoming).await }
        },
    )
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "Sync consumer stopped.");
    }
}

async fn handle(shared: &Shared, pusher: &dyn SyncPush, incoming: Incoming) -> Disposition {
    let message: OrderMessage = match parse(&incoming) {
        Ok(message) => message,
        Err(disposition) => return disposition,
    };
    match shared.db.run_syncs(message.order_id, pusher).await {
        Ok(_) => {
            shared.relay_wake.notify_one();
            Disposition::Ack
        }
        Err(error) => {
            tracing::warn!(order_id = %message.order_id, %error, "Sync run failed; requeueing.");
            requeue_after_pause(shared).await
        }
    }
}

/// Every few hundred milliseconds, runs the syncs whose retry time has come.
pub async fn sweep(
    shared: Arc<Shared>,
    pusher: Arc<dyn SyncPush>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        if *stop.borrow() {
            return;
        }
        let due = match shared.db.due_syncs(100).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "Cannot list due status syncs.");
                continue;
            }
        };
        for (order_id, _channel) in due {
            if let Err(error) = shared.db.run_syncs(order_id, pusher.as_ref()).await {
                tracing::warn!(%order_id, %error, "Sync retry failed.");
            }
        }
    }
}
