//! The store delivery stage: consumes one store shard queue (single active consumer, one
//! batch at a time, so each store's orders stay in order) and records the hand-overs:
//! what waited on the queue together, in one statement, acked at once.
//! The shard queues carry only what is handed to a store (an order routed to it, or
//! taken back); changes of status go to the stores' clients under keys of their own
//! (`Topology::status_routing_key`). The store console and API read from the database; a
//! POS binds its own queue to its store's patterns (`Topology::store_patterns`).

use std::sync::Arc;

use crossdock_broker::{Disposition, Incoming};
use crossdock_db::orders::Handover;
use crossdock_model::{OrderId, StoreId};
use serde::Deserialize;
use tokio::sync::watch;

use super::{parse, requeue_after_pause};
use crate::app::Shared;
use crate::routes::kind;

#[derive(Debug, Deserialize)]
struct StoreMessage {
    order_id: OrderId,
    store_id: StoreId,
    kind: String,
}

/// Deliveries a store worker records together, at most: what waited on its queue while
/// it recorded the previous ones (one statement, one commit and one ack for them all).
const BATCH: usize = 32;

/// Deliveries the broker hands over ahead: the next batch arrives while one is recorded.
const PREFETCH: u16 = 64;

pub async fn run(shared: Arc<Shared>, queue: String, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let handler_shared = shared.clone();
    let link = shared.links.broker_session(queue.clone());
    let result = crossdock_broker::consume_batches(
        config,
        queue.clone(),
        PREFETCH,
        BATCH,
        link,
        stop,
        move |batch| {
            let shared = handler_shared.clone();
            async move { handle(&shared, batch).await }
        },
    )
    .await;
    if let Err(error) = result {
        tracing::error!(%error, queue, "Store queue consumer stopped.");
    }
}

/// Records the hand-overs among `batch`, in one statement; one disposition per message.
async fn handle(shared: &Shared, batch: Vec<Incoming>) -> Vec<Disposition> {
    let mut dispositions = vec![Disposition::Ack; batch.len()];
    // The routed orders: their place in the batch, and the hand-over to record.
    let mut places = Vec::new();
    let mut handovers = Vec::new();
    for (place, incoming) in batch.iter().enumerate() {
        match parse::<StoreMessage>(incoming) {
            Err(disposition) => dispositions[place] = disposition,
            Ok(message) if message.kind != kind::ORDER_ROUTED => {
                tracing::info!(order_id = %message.order_id, store = %message.store_id, kind = %message.kind, "Store notified.");
            }
            Ok(message) => {
                places.push(place);
                handovers.push((message.order_id, message.store_id));
            }
        }
    }
    if handovers.is_empty() {
        return dispositions;
    }
    match shared.db.record_store_deliveries(&handovers).await {
        Ok(recorded) => {
            for ((order_id, store), handover) in handovers.iter().zip(recorded) {
                match handover {
                    Handover::First => {
                        tracing::info!(%order_id, %store, "Order delivered to its store.");
                    }
                    Handover::Again => {
                        tracing::info!(%order_id, %store, "Redelivered order already at its store.");
                    }
                    Handover::NotTheStore => {
                        tracing::info!(%order_id, %store, "Order no longer the store's (declined, timed out or re-assigned); not handed over.");
                    }
                }
            }
        }
        Err(error) => {
            tracing::warn!(orders = handovers.len(), %error, "Store deliveries could not be recorded; requeueing.");
            let disposition = requeue_after_pause(shared).await;
            for place in places {
                dispositions[place] = disposition;
            }
        }
    }
    dispositions
}
