//! The router stage: consumes the unified order queue and assigns each order a store (or
//! rejects it back to its channel with the reason), recording the decision; and the
//! sweeper that takes orders back from stores that did not accept them in time and
//! rejects orders back to their platform before the platform's acceptance deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossdock_broker::{Disposition, Incoming};
use crossdock_db::orders::ChangeError;
use crossdock_db::routing::{Assignment, Decline, Declined, Routing};
use crossdock_model::OrderId;
use tokio::sync::{Semaphore, watch};

use super::{OrderMessage, parse, requeue_after_pause};
use crate::app::Shared;
use crate::metrics::{RejectedBy, RoutingOutcome};

/// Orders routed at once, from the order queue and right where they were committed
/// together ([`RoutingTurns`]).
const CONCURRENCY: usize = 16;

/// Deliveries of the order queue the broker hands over ahead of their routing.
const PREFETCH: u16 = 200;

pub async fn run(shared: Arc<Shared>, turns: RoutingTurns, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let queue = shared.topology.orders_queue();
    let handler_shared = shared.clone();
    let link = shared.links.broker_session(queue.clone());
    let result = crossdock_broker::consume(
        config,
        queue,
        PREFETCH,
        CONCURRENCY,
        link,
        stop,
        move |incoming| {
            let shared = handler_shared.clone();
            let turns = turns.clone();
            async move {
                let Ok(_turn) = turns.0.acquire().await else {
                    return Disposition::Requeue;
                };
                handle(&shared, incoming).await
            }
        },
    )
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "Router consumer stopped.");
    }
}

/// The turns of a process's routings, `CONCURRENCY` of them, shared by the order
/// queue's consumer and the routings run right after the commits that call for them (see
/// [`route_here`]).
#[derive(Clone)]
pub struct RoutingTurns(Arc<Semaphore>);

impl Default for RoutingTurns {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(CONCURRENCY)))
    }
}

/// Routes an order this process has just committed for routing (received, or sent back
/// by a store) here, instead of through the order queue, if it can take it at once: one
/// message fewer, and no hop through the broker before the store has it. Its commit is
/// the routing's, so the routing sees it. Returns `false` when every routing turn is
/// taken: the message then goes by the queue.
/// `routed` hears whether the routing was recorded (or had nothing left to do); when it
/// was not, the message must go by the queue after all.
pub fn route_here(
    shared: &Arc<Shared>,
    here: &RoutingTurns,
    order_id: OrderId,
    routed: impl FnOnce(bool) + Send + 'static,
) -> bool {
    let Ok(permit) = here.0.clone().try_acquire_owned() else {
        return false;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let disposition = route(&shared, order_id).await;
        routed(!matches!(disposition, Disposition::Requeue));
    });
    true
}

async fn handle(shared: &Shared, incoming: Incoming) -> Disposition {
    match parse::<OrderMessage>(&incoming) {
        Ok(message) => route(shared, message.order_id).await,
        Err(disposition) => disposition,
    }
}

/// Routes the order once: what its message's delivery comes to.
async fn route(shared: &Shared, order_id: OrderId) -> Disposition {
    let registry = shared.registry();
    let now = Utc::now();
    let timing = shared.settings.router.accept_timing();
    let mut rule = "";
    // The order's channel and reception time, once the router decided on it (not for an
    // order that already had a store, was finished or waits for HQ).
    let mut decided: Option<(String, chrono::DateTime<Utc>)> = None;
    let started = Instant::now();
    let result = shared
        .db
        .route_order(order_id, &timing, |input| {
            // Stores found full under their row lock: the memory was behind.
            for full in input.full {
                registry.update_active(&full.store, full.active, full.version);
            }
            let order = &input.order.order;
            decided = Some((order.channel.as_str().to_owned(), input.order.received_at));
            let sale = shared
                .channels
                .get(order.channel.as_str())
                .is_some_and(|channel| channel.orders_are_store_sales());
            let decision = if sale {
                crossdock_router::route_sale(&registry, order)
            } else {
                crossdock_router::route(&registry, order, now, input.declined)
            };
            rule = decision.rule;
            let recorded = serde_json::to_value(&decision).unwrap_or(serde_json::Value::Null);
            let routing = match decision.store {
                Some(store) => Routing::To {
                    capacity: if sale {
                        None
                    } else {
                        registry.store(&store).map(|profile| profile.capacity)
                    },
                    store,
                },
                None => Routing::Nowhere {
                    reason: decision
                        .reason
                        .unwrap_or_else(|| "no store can take the order".into()),
                },
            };
            (routing, recorded)
        })
        .await;
    let took = started.elapsed();
    let outcome = match (&result, &decided) {
        (Ok(Assignment::Assigned { .. }), _) => RoutingOutcome::Assigned,
        (Ok(Assignment::Finished(_)), Some(_)) => RoutingOutcome::Rejected,
        (Ok(Assignment::Finished(_)), None) => RoutingOutcome::AlreadyFinished,
        (Ok(Assignment::AlreadyAssigned(_)), _) => RoutingOutcome::AlreadyAssigned,
        (Ok(Assignment::NeedsAttention), _) => RoutingOutcome::NeedsAttention,
        (Err(ChangeError::NotFound(_)), _) => RoutingOutcome::UnknownOrder,
        (Err(_), _) => RoutingOutcome::Failed,
    };
    shared.metrics.routing_decided(outcome, took);
    match (outcome, &decided) {
        (RoutingOutcome::Assigned, Some((channel, received_at))) => {
            shared
                .metrics
                .order_assigned(channel, Utc::now() - *received_at);
        }
        (RoutingOutcome::Rejected, Some((channel, _))) => {
            shared.metrics.order_rejected(channel, RejectedBy::Router);
        }
        _ => {}
    }
    match result {
        Ok(Assignment::Assigned { store, active }) => {
            tracing::info!(%order_id, %store, active, rule, "Order routed.");
            Disposition::Ack
        }
        Ok(Assignment::Finished(status)) => {
            tracing::info!(%order_id, %status, rule, "Order not routed.");
            Disposition::Ack
        }
        // A redelivery of work already done, or an order HQ has to decide on.
        Ok(Assignment::AlreadyAssigned(_) | Assignment::NeedsAttention) => Disposition::Ack,
        Err(ChangeError::NotFound(_)) => {
            tracing::error!(%order_id, "Routing message names an unknown order.");
            Disposition::DeadLetter
        }
        Err(error) => {
            tracing::warn!(%order_id, %error, "Routing could not be recorded; requeueing.");
            requeue_after_pause(shared).await
        }
    }
}

/// Counts an order the deadline guard rejected, under its channel (read back: the guard
/// knows only the order's id).
async fn count_deadline_rejection(shared: &Shared, order_id: crossdock_model::OrderId) {
    match shared.db.order(order_id, None).await {
        Ok(Some(order)) => shared
            .metrics
            .order_rejected(order.order.channel.as_str(), RejectedBy::Deadline),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%order_id, %error, "Rejected order not counted: it could not be read back.");
        }
    }
}

/// Orders one sweep handles of each kind; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 200;

/// Every `router.sweep_ms`: rejects back to their platform the orders no store accepted
/// whose platform deadline is within `router.deadline_margin_ms`, then takes back from
/// their stores the orders whose time to accept ran out (to the next store, or to HQ).
/// Every step locks and re-checks the order, so any number of processes may sweep.
pub async fn sweep(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let settings = &shared.settings.router;
    let every = Duration::from_millis(settings.sweep_ms.max(20));
    let timing = settings.accept_timing();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if *stop.borrow() {
            return;
        }
        match shared
            .db
            .near_platform_deadline(timing.margin, SWEEP_BATCH)
            .await
        {
            Ok(orders) => {
                for order_id in orders {
                    match shared
                        .db
                        .reject_before_deadline(order_id, timing.margin)
                        .await
                    {
                        Ok(true) => {
                            tracing::info!(%order_id, "No store accepted the order; rejected back to its platform before the platform's deadline.");
                            count_deadline_rejection(&shared, order_id).await;
                        }
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(%order_id, %error, "Rejecting an order before its deadline failed; retrying next sweep.");
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "Looking for orders near their deadline failed."),
        }
        match shared.db.overdue_at_store(SWEEP_BATCH).await {
            Ok(orders) => {
                for (order_id, store) in orders {
                    let decline = Decline::TimedOut(store.clone());
                    match shared
                        .db
                        .decline(
                            order_id,
                            &decline,
                            "timed out waiting for the store to accept",
                        )
                        .await
                    {
                        Ok(Declined::Unchanged) => {}
                        Ok(outcome) => {
                            tracing::info!(%order_id, %store, ?outcome, "Store did not accept in time; order taken back.");
                        }
                        Err(error) => {
                            tracing::warn!(%order_id, %error, "Taking back an overdue order failed; retrying next sweep.");
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "Looking for overdue orders failed."),
        }
    }
}
