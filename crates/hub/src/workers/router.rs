//! The router stage: consumes the unified order queue and assigns each order a store (or
//! rejects it back to its channel with the reason), recording the decision; and the
//! sweeper that takes orders back from stores that did not accept them in time and
//! rejects orders back to their platform before the platform's acceptance deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossdock_broker::{Disposition, Incoming};
use crossdock_db::orders::ChangeError;
use crossdock_db::routing::{Assignment, Decline, Declined, Routing};
use crossdock_model::OrderId;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{OrderMessage, parse, requeue_after_pause};
use crate::app::Shared;
use crate::desk::{Desk, Refused};
use crate::metrics::{RejectedBy, RoutingOutcome};

/// Orders routed together at most, in one transaction.
const BATCH: usize = 64;

/// The desk's routings under way at once (the order queue's consumer routes one batch
/// at a time besides).
const DESK_WORKERS: usize = 4;

/// Orders waiting at the desk at most; past it, an order goes by the order queue.
const DESK_WAITING: usize = 512;

/// Deliveries of the order queue the broker hands over ahead of their routing.
const PREFETCH: u16 = 200;

/// Starts the router stage: the order queue's consumer, the desk's workers (see
/// [`route_here`]) and the sweeper.
pub fn spawn(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    desk: &RoutingDesk,
    stop: &watch::Receiver<bool>,
) {
    tasks.spawn(consume(shared.clone(), stop.clone()));
    for _ in 0..DESK_WORKERS {
        tasks.spawn(serve_desk(shared.clone(), desk.clone(), stop.clone()));
    }
    tasks.spawn(sweep(shared.clone(), stop.clone()));
}

/// Routes what waits on the order queue, up to [`BATCH`] orders a transaction.
async fn consume(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let queue = shared.topology.orders_queue();
    let handler_shared = shared.clone();
    let link = shared.links.broker_session(queue.clone());
    let result = crossdock_broker::consume_batches(
        config,
        queue,
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
        tracing::error!(%error, "Router consumer stopped.");
    }
}

/// An order left at the desk, and who hears whether its routing was recorded.
type Waiting = (OrderId, Box<dyn FnOnce(bool) + Send>);

/// Where a process's own commits leave the orders they call to route ([`route_here`]):
/// its workers take whatever waits, up to [`BATCH`] orders, into one routing
/// transaction.
#[derive(Clone)]
pub struct RoutingDesk(Desk<Waiting>);

impl Default for RoutingDesk {
    fn default() -> Self {
        Self(Desk::new(DESK_WAITING, BATCH))
    }
}

/// Routes an order this process has just committed for routing (received, or sent back
/// by a store) here, instead of through the order queue: one message fewer, and no hop
/// through the broker before the store has it. The order waits at the desk for the next
/// routing transaction of its workers, with whatever else is waiting by then (its commit
/// is the routing's, so the routing sees it). Returns `false` when [`DESK_WAITING`]
/// orders wait already: the message then goes by the queue.
/// `routed` hears whether the routing was recorded (or had nothing left to do); when it
/// was not, the message must go by the queue after all.
pub fn route_here(
    desk: &RoutingDesk,
    order_id: OrderId,
    routed: impl FnOnce(bool) + Send + 'static,
) -> bool {
    match desk.0.leave((order_id, Box::new(routed))) {
        Ok(()) => true,
        Err(Refused::Full(_)) => false,
        // The hub is stopping: not routed here.
        Err(Refused::Closed((_, routed))) => {
            routed(false);
            true
        }
    }
}

/// One of the desk's workers: routes what waits at the desk, batch by batch, until the
/// hub stops.
async fn serve_desk(shared: Arc<Shared>, desk: RoutingDesk, mut stop: watch::Receiver<bool>) {
    while let Some(batch) = desk.0.next_batch(&mut stop).await {
        let ids: Vec<OrderId> = batch.iter().map(|(id, _)| *id).collect();
        let dispositions = route(&shared, &ids).await;
        for ((_, routed), disposition) in batch.into_iter().zip(dispositions) {
            routed(!matches!(disposition, Disposition::Requeue));
        }
    }
    turn_away(&desk).await;
}

/// At the stop: the orders waiting at the desk, and any left there after it, hear they
/// were not routed here.
async fn turn_away(desk: &RoutingDesk) {
    for (_, routed) in desk.0.close().await {
        routed(false);
    }
}

/// Routes the orders of a batch of the order queue's messages together; one disposition
/// per message.
async fn handle(shared: &Shared, batch: Vec<Incoming>) -> Vec<Disposition> {
    let mut dispositions = vec![Disposition::Ack; batch.len()];
    // The orders to route: their place in the batch, and their ids.
    let mut places = Vec::new();
    let mut ids = Vec::new();
    for (place, incoming) in batch.iter().enumerate() {
        match parse::<OrderMessage>(incoming) {
            Ok(message) => {
                places.push(place);
                ids.push(message.order_id);
            }
            Err(disposition) => dispositions[place] = disposition,
        }
    }
    for (place, disposition) in places.into_iter().zip(route(shared, &ids).await) {
        dispositions[place] = disposition;
    }
    dispositions
}

/// What the router learnt of an order it decided on (not of one that already had a
/// store, was finished or waits for HQ): its channel, when it was received, the rule of
/// its decision.
struct Decided {
    channel: String,
    received_at: DateTime<Utc>,
    rule: &'static str,
}

/// Routes the orders once, together: what each one's message delivery comes to, in the
/// order of `ids`.
async fn route(shared: &Shared, ids: &[OrderId]) -> Vec<Disposition> {
    if ids.is_empty() {
        return Vec::new();
    }
    let registry = shared.registry();
    let now = Utc::now();
    let timing = shared.settings.router.accept_timing();
    let mut decided: HashMap<OrderId, Decided> = HashMap::new();
    let started = Instant::now();
    let result = shared
        .db
        .route_orders(ids, &timing, |input| {
            // Stores found full under their row lock: the memory was behind.
            for full in input.full {
                registry.update_active(&full.store, full.active, full.version);
            }
            let order = &input.order.order;
            let sale = shared
                .channels
                .get(order.channel.as_str())
                .is_some_and(|channel| channel.orders_are_store_sales());
            let decision = if sale {
                crossdock_router::route_sale(&registry, order)
            } else {
                crossdock_router::route(&registry, order, now, input.declined)
            };
            decided.insert(
                input.order.id,
                Decided {
                    channel: order.channel.as_str().to_owned(),
                    received_at: input.order.received_at,
                    rule: decision.rule,
                },
            );
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
    let answers = match result {
        Ok(answers) => answers,
        Err(error) => {
            for _ in ids {
                shared.metrics.routing_decided(RoutingOutcome::Failed, took);
            }
            tracing::warn!(orders = ids.len(), %error, "Routing could not be recorded; requeueing.");
            return vec![requeue_after_pause(shared).await; ids.len()];
        }
    };
    let mut dispositions: Vec<Disposition> = ids
        .iter()
        .zip(answers)
        .map(|(order_id, answer)| settle(shared, *order_id, answer, decided.get(order_id), took))
        .collect();
    if dispositions.contains(&Disposition::Requeue) {
        let disposition = requeue_after_pause(shared).await;
        for requeued in dispositions
            .iter_mut()
            .filter(|d| **d == Disposition::Requeue)
        {
            *requeued = disposition;
        }
    }
    dispositions
}

/// Counts, logs and answers one order's routing (a routing to requeue is answered
/// `Requeue`, its pause left to the caller).
fn settle(
    shared: &Shared,
    order_id: OrderId,
    answer: Result<Assignment, ChangeError>,
    decided: Option<&Decided>,
    took: Duration,
) -> Disposition {
    let outcome = match (&answer, decided) {
        (Ok(Assignment::Assigned { .. }), _) => RoutingOutcome::Assigned,
        (Ok(Assignment::Finished(_)), Some(_)) => RoutingOutcome::Rejected,
        (Ok(Assignment::Finished(_)), None) => RoutingOutcome::AlreadyFinished,
        (Ok(Assignment::AlreadyAssigned(_)), _) => RoutingOutcome::AlreadyAssigned,
        (Ok(Assignment::NeedsAttention), _) => RoutingOutcome::NeedsAttention,
        (Err(ChangeError::NotFound(_)), _) => RoutingOutcome::UnknownOrder,
        (Err(_), _) => RoutingOutcome::Failed,
    };
    shared.metrics.routing_decided(outcome, took);
    match (outcome, decided) {
        (RoutingOutcome::Assigned, Some(decided)) => {
            shared
                .metrics
                .order_assigned(&decided.channel, Utc::now() - decided.received_at);
        }
        (RoutingOutcome::Rejected, Some(decided)) => {
            shared
                .metrics
                .order_rejected(&decided.channel, RejectedBy::Router);
        }
        _ => {}
    }
    let rule = decided.map_or("", |decided| decided.rule);
    match answer {
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
            Disposition::Requeue
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
async fn sweep(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    /// Leaves `n` orders at the desk; what each one's `routed` heard goes to `heard`.
    fn leave(desk: &RoutingDesk, n: usize, heard: &Arc<StdMutex<Vec<bool>>>) -> Vec<bool> {
        (0..n)
            .map(|_| {
                let heard = heard.clone();
                route_here(desk, OrderId::new(), move |recorded| {
                    heard.lock().expect("lock").push(recorded);
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn the_desk_takes_orders_up_to_its_limit_and_tells_those_waiting_at_the_stop() {
        let desk = RoutingDesk::default();
        let heard = Arc::new(StdMutex::new(Vec::new()));
        let (stop_tx, mut stop) = watch::channel(false);

        // Past the most that may wait, an order is refused (it goes by the queue), and
        // its `routed` is not called.
        let left = leave(&desk, DESK_WAITING + 1, &heard);
        assert!(left[..DESK_WAITING].iter().all(|taken| *taken));
        assert!(!left[DESK_WAITING]);
        assert!(heard.lock().expect("lock").is_empty());
        let batch = desk.0.next_batch(&mut stop).await.expect("a batch");
        assert_eq!(batch.len(), BATCH);
        drop(batch);

        // At the stop, every order still waiting, and any left after it, hears it was
        // not routed here.
        stop_tx.send(true).expect("stop");
        assert!(desk.0.next_batch(&mut stop).await.is_none());
        turn_away(&desk).await;
        assert_eq!(
            *heard.lock().expect("lock"),
            vec![false; DESK_WAITING - BATCH]
        );
        assert_eq!(leave(&desk, 1, &heard), [true]);
        assert_eq!(
            *heard.lock().expect("lock"),
            vec![false; DESK_WAITING - BATCH + 1]
        );
    }
}
