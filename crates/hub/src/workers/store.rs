//! The store delivery stage: consumes one store shard queue (single active consumer, one
//! message at a time, so each store's orders stay in order) and records the hand-over.
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

pub async fn run(shared: Arc<Shared>, queue: String, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let handler_shared = shared.clone();
    let link = shared.links.broker_session(queue.clone());
    let result =
        crossdock_broker::consume(config, queue.clone(), 16, 1, link, stop, move |incoming| {
            let shared = handler_shared.clone();
            async move { handle(&shared, incoming).await }
        })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, queue, "Store queue consumer stopped.");
    }
}

async fn handle(shared: &Shared, incoming: Incoming) -> Disposition {
    let message: StoreMessage = match parse(&incoming) {
        Ok(message) => message,
        Err(disposition) => return disposition,
    };
    if message.kind != kind::ORDER_ROUTED {
        tracing::info!(order_id = %message.order_id, store = %message.store_id, kind = %message.kind, "Store notified.");
        return Disposition::Ack;
    }
    match shared
        .db
        .record_store_delivery(message.order_id, &message.store_id)
        .await
    {
        Ok(Handover::First) => {
            tracing::info!(order_id = %message.order_id, store = %message.store_id, "Order delivered to its store.");
            Disposition::Ack
        }
        Ok(Handover::Again) => {
            tracing::info!(order_id = %message.order_id, store = %message.store_id, "Redelivered order already at its store.");
            Disposition::Ack
        }
        Ok(Handover::NotTheStore) => {
            tracing::info!(order_id = %message.order_id, store = %message.store_id, "Order no longer the store's (declined, timed out or re-assigned); not handed over.");
            Disposition::Ack
        }
        Err(error) => {
            tracing::warn!(order_id = %message.order_id, %error, "Store delivery could not be recorded; requeueing.");
            requeue_after_pause(shared).await
        }
    }
}
