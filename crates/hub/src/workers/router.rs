//! The router stage: consumes the unified order queue and assigns each order a store (or
//! rejects it back to its channel with the reason), recording the decision.

use std::sync::Arc;

use chrono::Utc;
use crossdock_broker::{Disposition, Incoming};
use crossdock_db::orders::Assignment;
use tokio::sync::watch;

use super::{OrderMessage, parse, requeue_after_pause};
use crate::app::Shared;

pub async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let queue = shared.topology.orders_queue();
    let handler_shared = shared.clone();
    let result = crossdock_broker::consume(config, queue, 200, 16, stop, move |incoming| {
        let shared = handler_shared.clone();
        async move { handle(&shared, incoming).await }
    })
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "Router consumer stopped.");
    }
}

async fn handle(shared: &Shared, incoming: Incoming) -> Disposition {
    let message: OrderMessage = match parse(&incoming) {
        Ok(message) => message,
        Err(disposition) => return disposition,
    };
    let order = match shared.db.order(message.order_id, None).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            tracing::error!(order_id = %message.order_id, "Routed message names an unknown order.");
            return Disposition::DeadLetter;
        }
        Err(error) => {
            tracing::warn!(order_id = %message.order_id, %error, "Cannot read order; requeueing.");
            return requeue_after_pause().await;
        }
    };
    if order.store_id.is_some() || order.status.is_final() {
        return Disposition::Ack; // a redelivery of work already done
    }
    let decision = crossdock_router::route(&shared.registry(), &order.order, Utc::now());
    let decision_json = serde_json::to_value(&decision).unwrap_or(serde_json::Value::Null);
    let result = match &decision.store {
        Some(store) => {
            shared
                .db
                .assign_store(order.id, store, &decision_json)
                .await
        }
        None => {
            let reason = decision
                .reason
                .clone()
                .unwrap_or_else(|| "no store can take the order".into());
            shared
                .db
                .reject_unroutable(order.id, &reason, &decision_json)
                .await
        }
    };
    match result {
        Ok(assignment) => {
            match &assignment {
                Assignment::Assigned(store) => {
                    tracing::info!(order_id = %order.id, channel = %order.order.channel, store = %store, rule = decision.rule, "Order routed.")
                }
                Assignment::Finished(status) => {
                    tracing::info!(order_id = %order.id, channel = %order.order.channel, %status, reason = ?decision.reason, "Order not routed.")
                }
                Assignment::AlreadyAssigned(_) => {}
            }
            shared.relay_wake.notify_one();
            Disposition::Ack
        }
        Err(error) => {
            tracing::warn!(order_id = %order.id, %error, "Routing could not be recorded; requeueing.");
            requeue_after_pause().await
        }
    }
}
