//! The router stage: consumes the unified order queue and assigns each order a store (or
//! rejects it back to its channel with the reason), recording the decision.

use std::sync::Arc;

use chrono::Utc;
use crossdock_broker::{Disposition, Incoming};
use crossdock_db::orders::{Assignment, ChangeError, Routing};
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
    let registry = shared.registry();
    let now = Utc::now();
    let mut rule = "";
    let result = shared
        .db
        .route_order(message.order_id, |order| {
            let sale = shared
                .channels
                .get(order.order.channel.as_str())
                .is_some_and(|channel| channel.orders_are_store_sales());
            let decision = if sale {
                crossdock_router::route_sale(&registry, &order.order)
            } else {
                crossdock_router::route(&registry, &order.order, now)
            };
            rule = decision.rule;
            let recorded = serde_json::to_value(&decision).unwrap_or(serde_json::Value::Null);
            let routing = match decision.store {
                Some(store) => Routing::To(store),
                None => Routing::Nowhere {
                    reason: decision
                        .reason
                        .unwrap_or_else(|| "no store can take the order".into()),
                },
            };
            (routing, recorded)
        })
        .await;
    let order_id = message.order_id;
    match result {
        Ok(Assignment::Assigned(store)) => {
            tracing::info!(%order_id, %store, rule, "Order routed.");
            shared.relay_wake.notify_one();
            Disposition::Ack
        }
        Ok(Assignment::Finished(status)) => {
            tracing::info!(%order_id, %status, rule, "Order not routed.");
            shared.relay_wake.notify_one();
            Disposition::Ack
        }
        // A redelivery of work already done.
        Ok(Assignment::AlreadyAssigned(_)) => Disposition::Ack,
        Err(ChangeError::NotFound(_)) => {
            tracing::error!(%order_id, "Routing message names an unknown order.");
            Disposition::DeadLetter
        }
        Err(error) => {
            tracing::warn!(%order_id, %error, "Routing could not be recorded; requeueing.");
            requeue_after_pause().await
        }
    }
}
