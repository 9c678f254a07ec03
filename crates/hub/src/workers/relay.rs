//! Publishing the outbox. In a process that runs the relay, every transaction's outbox
//! rows reach [`Outbound`] right after its commit: [`publish_committed`] publishes them
//! at once with publisher confirms (whatever has been committed meanwhile goes in the
//! same batch), and `forget_confirmed` deletes the confirmed ones in batches. No
//! claim, no relay round in between: a message leaves one hop after its commit.
//!
//! The committer keeps its rows, in commit order, until the broker confirmed or refused
//! each: while the broker is away it waits for it, and a row whose outcome the lost link
//! left unknown is published again before the ones behind it. So a store's messages never
//! overtake one another, even across an outage. (A row the broker does not confirm on a
//! live link is left to the relay rather than hold up the rest.)
//!
//! [`run`], the relay, is the fallback: every `relay.poll_ms` it claims the rows no one
//! else publishes — those of processes without a publisher at once, and those a
//! committer published or tried to only once they are older than `relay.grace_ms` (it
//! died, or a long broker outage left it more than `MAX_IN_HAND` rows). Rows this
//! process still has in hand are never claimed by its own relay, however old, so one
//! process never publishes a row twice. Before each round it makes sure the publisher is
//! connected, so while RabbitMQ is away it waits on the publisher's backoff and its link
//! (in `/readyz`) comes back with the broker, not with the next order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossdock_broker::{OutgoingMessage, PublishOutcome, Publisher};
use crossdock_db::{CommitSink, Committed, OutboxMessage, OutboxRow, Relayed};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use super::OrderMessage;
use super::router::{self, RoutingDesk};
use super::sync::{self, SyncRuns};
use crate::app::Shared;
use crate::failpoint;
use crate::feed::Change;
use crate::routes::{self, kind};

/// The most rows one batch publishes or forgets; the rest go in the next.
const MAX_BATCH: usize = 500;

/// The most committed rows a process keeps in memory for its publisher (a broker outage
/// piles them up); past it, new commits are left to the relay.
const MAX_IN_HAND: usize = 100_000;

/// The least time between two deletes of published rows.
const FORGET_PACE: Duration = Duration::from_millis(50);

/// The outbox rows this process has in hand: committed and handed over, not yet deleted
/// (or given up to the relay).
#[derive(Debug, Default)]
pub struct InHand(Mutex<HashSet<i64>>);

impl InHand {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the rows in hand, unless [`MAX_IN_HAND`] are already: whether it did.
    fn take(&self, ids: &[i64]) -> bool {
        let mut held = self.lock();
        if held.len() >= MAX_IN_HAND {
            return false;
        }
        held.extend(ids);
        true
    }

    fn release(&self, ids: &[i64]) {
        let mut held = self.lock();
        for id in ids {
            held.remove(id);
        }
    }

    fn holds(&self, id: i64) -> bool {
        self.lock().contains(&id)
    }
}

/// What a commit hands [`publish_committed`]: an outbox row, or a sync nudge with no row
/// behind it (see [`CommitSink::runs_nudges`]).
#[derive(Debug)]
pub enum Outgoing {
    Row(OutboxRow),
    Nudge(OutboxMessage),
}

/// The database's [`CommitSink`]: committed rows and nudges go to [`publish_committed`].
pub struct Outbound {
    committed: mpsc::UnboundedSender<Vec<Outgoing>>,
    in_hand: Arc<InHand>,
    runs_nudges: bool,
}

impl Outbound {
    /// The sink (`runs_nudges`: this process has the sync stage), and the receiving end
    /// for [`publish_committed`].
    pub fn new(
        in_hand: Arc<InHand>,
        runs_nudges: bool,
    ) -> (Self, mpsc::UnboundedReceiver<Vec<Outgoing>>) {
        let (committed, receiver) = mpsc::unbounded_channel();
        let outbound = Self {
            committed,
            in_hand,
            runs_nudges,
        };
        (outbound, receiver)
    }
}

impl CommitSink for Outbound {
    fn committed(&self, Committed { rows, nudges }: Committed) {
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let rows = if self.in_hand.take(&ids) {
            rows
        } else {
            // A long broker outage: the relay's, once older than its grace.
            Vec::new()
        };
        let outgoing: Vec<Outgoing> = rows
            .into_iter()
            .map(Outgoing::Row)
            .chain(nudges.into_iter().map(Outgoing::Nudge))
            .collect();
        if outgoing.is_empty() {
            return;
        }
        if self.committed.send(outgoing).is_err() {
            // The publisher has stopped (the hub is shutting down): the relay's, and the
            // nudges the sync sweeper's.
            self.in_hand.release(&ids);
        }
    }

    fn runs_nudges(&self) -> bool {
        self.runs_nudges
    }
}

/// Takes what has arrived on `receiver` up to [`MAX_BATCH`] items (waiting for the first),
/// or `None` when the hub stops or the senders are gone.
async fn next_batch<T>(
    receiver: &mut mpsc::UnboundedReceiver<Vec<T>>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<T>> {
    let first = tokio::select! {
        _ = stop.changed() => return None,
        first = receiver.recv() => first?,
    };
    Some(with_waiting(first, receiver, MAX_BATCH))
}

/// `batch` and whatever else is waiting on `receiver`, until it holds `room` items.
fn with_waiting<T>(
    mut batch: Vec<T>,
    receiver: &mut mpsc::UnboundedReceiver<Vec<T>>,
    room: usize,
) -> Vec<T> {
    while batch.len() < room {
        match receiver.try_recv() {
            Ok(more) => batch.extend(more),
            Err(_) => break,
        }
    }
    batch
}

/// The work of its own commits this process does itself instead of publishing it: the
/// sync nudges (with the sync stage) and the routings (with the router stage).
pub struct RunsHere {
    pub sync: Option<Arc<SyncRuns>>,
    pub routing: Option<RoutingDesk>,
}

impl RunsHere {
    /// Whether this process started the routing of `row`'s order itself
    /// ([`router::route_here`]) instead of publishing it. Its row goes to `done` to be
    /// deleted once the routing is recorded; a routing that could not be recorded leaves
    /// its row to the relay. (A nudge has no row where the sync stage runs: see
    /// [`RunsHere::nudge`].)
    fn route(
        &self,
        shared: &Arc<Shared>,
        row: &OutboxRow,
        done: &mpsc::UnboundedSender<Vec<i64>>,
    ) -> bool {
        let message = &row.message;
        if !matches!(
            message.kind.as_str(),
            kind::ORDER_RECEIVED | kind::ORDER_REROUTE
        ) {
            return false;
        }
        let (Some(desk), Ok(OrderMessage { order_id })) =
            (&self.routing, OrderMessage::deserialize(&message.body))
        else {
            return false;
        };
        let id = row.id;
        let (done, in_hand) = (done.clone(), shared.in_hand.clone());
        router::route_here(desk, order_id, move |recorded: bool| {
            if !recorded || done.send(vec![id]).is_err() {
                in_hand.release(&[id]);
            }
        })
    }

    /// Whether this process started the run of a sync nudge itself ([`sync::run_here`]).
    fn nudge(&self, message: &OutboxMessage) -> bool {
        let (Some(runs), Some(channel), Ok(OrderMessage { order_id })) = (
            &self.sync,
            routes::sync_channel(&message.routing_key),
            OrderMessage::deserialize(&message.body),
        ) else {
            return false;
        };
        sync::run_here(runs, channel, order_id)
    }
}

/// Publishes the sync nudges with no row behind them that this process did not run at
/// once (as many as the sync queue's consumer handles were under way): once, whatever
/// comes of it. One the broker does not take is the sync sweeper's, whose pending sync
/// its transaction wrote.
async fn publish_nudges(publisher: &Publisher, nudges: &[OutgoingMessage]) {
    if !publisher.is_connected() {
        tracing::info!(
            nudges = nudges.len(),
            "Sync nudges not published while the broker is away; the sync sweeper runs their orders."
        );
        return;
    }
    let outcomes = publisher.publish_batch(nudges).await;
    let missed = outcomes
        .iter()
        .filter(|outcome| **outcome != PublishOutcome::Confirmed)
        .count();
    if missed > 0 {
        tracing::info!(
            nudges = missed,
            "Sync nudges not taken by the broker; the sync sweeper runs their orders."
        );
    }
}

/// Publishes committed rows as they come, in commit order, then hands the confirmed ones
/// to `forget_confirmed`; refused ones are set aside for HQ. Rows whose outcome is
/// unknown because the link broke stay first in line and are published again, with the
/// same message ids, once the publisher is connected again (it backs off meanwhile): a
/// store's messages never overtake one another, even across an outage. Rows the broker
/// did not confirm on a live link (a nack, or no confirm in time) are left to the relay,
/// so that they cannot hold up everything behind them. Rows whose work this process does
/// itself ([`RunsHere`]) are not published: a routing's row is deleted once the routing
/// is recorded (one that fails leaves its row to the relay, which publishes it after its
/// grace). The nudges of a process with the sync stage come with no row: each is run
/// here, or else published once (`publish_nudges`); a process without it writes them
/// as rows, published like any other.
pub async fn publish_committed(
    shared: Arc<Shared>,
    here: RunsHere,
    mut committed: mpsc::UnboundedReceiver<Vec<Outgoing>>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(publisher) = shared.publisher.as_ref() else {
        return;
    };
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let forgetting = tokio::spawn(forget_confirmed(shared.clone(), done_rx));
    // Messages not yet confirmed, oldest first, and their rows' ids.
    let mut ids: Vec<i64> = Vec::new();
    let mut messages: Vec<OutgoingMessage> = Vec::new();
    let mut backoff = crossdock_broker::Backoff::default();
    loop {
        let fresh = if ids.is_empty() {
            match next_batch(&mut committed, &mut stop).await {
                Some(batch) => batch,
                None => break,
            }
        } else {
            with_waiting(
                Vec::new(),
                &mut committed,
                MAX_BATCH.saturating_sub(ids.len()),
            )
        };
        failpoint::stall_if("before_publish").await;
        let mut ran_here = false;
        let mut nudges = Vec::new();
        for item in fresh {
            match item {
                Outgoing::Row(row) if here.route(&shared, &row, &done_tx) => ran_here = true,
                Outgoing::Row(row) => {
                    ids.push(row.id);
                    messages.push(outgoing(row.message));
                }
                Outgoing::Nudge(nudge) if here.nudge(&nudge) => ran_here = true,
                Outgoing::Nudge(nudge) => nudges.push(outgoing(nudge)),
            }
        }
        if ran_here {
            // This process's streams hear of it as they would of the message.
            shared.feed.note(Change::Chain);
        }
        if !nudges.is_empty() {
            publish_nudges(publisher, &nudges).await;
        }
        if ids.is_empty() {
            continue;
        }
        if !publisher.is_connected() {
            // While the broker is away, wait for it (the publisher backs off and logs).
            let connected = tokio::select! {
                _ = stop.changed() => break,
                connected = publisher.ensure_connected() => connected.is_ok(),
            };
            if !connected {
                continue;
            }
        }
        let outcomes = publisher.publish_batch(&messages).await;
        let (relayed, unknown) = sort_outcomes(&ids, &messages, outcomes);
        if !relayed.refused.is_empty() {
            if let Err(error) = shared.db.set_aside_outbox(&relayed.refused).await {
                tracing::warn!(%error, "Setting refused outbox messages aside failed; the relay retries them.");
            }
            let refused: Vec<i64> = relayed.refused.iter().map(|(id, _)| *id).collect();
            shared.in_hand.release(&refused);
        }
        if !relayed.confirmed.is_empty() && done_tx.send(relayed.confirmed).is_err() {
            break;
        }
        if unknown.is_empty() {
            ids.clear();
            messages.clear();
            backoff = crossdock_broker::Backoff::default();
            continue;
        }
        if publisher.is_connected() {
            // The broker answered on a live link and did not take them (a nack, or no
            // confirm in time): retried first, they could hold up every message behind
            // them. The relay publishes them again after its grace.
            tracing::warn!(
                rows = unknown.len(),
                "Outbox messages not confirmed on a live link; left to the relay."
            );
            shared.in_hand.release(&unknown);
            ids.clear();
            messages.clear();
        } else {
            // The link broke: these go again first, once it is back.
            (ids, messages) = ids
                .into_iter()
                .zip(messages)
                .filter(|(id, _)| unknown.contains(id))
                .unzip();
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
    // Left for the relay (after its grace), as a crash would leave them.
    shared.in_hand.release(&ids);
    drop(done_tx);
    let _ = forgetting.await;
}

/// Deletes confirmed rows in batches (whatever has been confirmed meanwhile, at most one
/// batch every [`FORGET_PACE`]), until [`publish_committed`] has stopped and everything
/// it confirmed is deleted. A delete that fails leaves its rows to the relay, which
/// publishes them again: consumers are idempotent, and the message ids are the same.
async fn forget_confirmed(shared: Arc<Shared>, mut confirmed: mpsc::UnboundedReceiver<Vec<i64>>) {
    while let Some(first) = confirmed.recv().await {
        let ids = with_waiting(first, &mut confirmed, MAX_BATCH);
        if let Err(error) = shared.db.forget_outbox(&ids).await {
            tracing::warn!(%error, rows = ids.len(), "Deleting published outbox rows failed; the relay publishes them again.");
        }
        shared.in_hand.release(&ids);
        // Nothing waits for a delete: let the next batch grow (one statement for many
        // rows, not one a row).
        tokio::time::sleep(FORGET_PACE).await;
    }
}

fn outgoing(message: OutboxMessage) -> OutgoingMessage {
    OutgoingMessage {
        body: message.body.to_string().into_bytes(),
        routing_key: message.routing_key,
        message_id: message.message_id,
        kind: message.kind,
    }
}

/// Sorts a batch's outcomes: confirmed and refused (logged), and the ids whose outcome is
/// unknown (logged).
fn sort_outcomes(
    ids: &[i64],
    messages: &[OutgoingMessage],
    outcomes: Vec<PublishOutcome>,
) -> (Relayed, Vec<i64>) {
    let mut relayed = Relayed::default();
    let mut unknown = Vec::new();
    for ((id, message), outcome) in ids.iter().zip(messages).zip(outcomes) {
        match outcome {
            PublishOutcome::Confirmed => relayed.confirmed.push(*id),
            PublishOutcome::Refused { reason } => {
                tracing::error!(
                    outbox_id = id,
                    routing_key = %message.routing_key,
                    %reason,
                    "Broker refused an outbox message; set aside for HQ."
                );
                relayed.refused.push((*id, reason));
            }
            PublishOutcome::Unknown { reason } => {
                tracing::warn!(
                    outbox_id = id,
                    %reason,
                    "Publish outcome unknown; the message will be published again."
                );
                unknown.push(*id);
            }
        }
    }
    (relayed, unknown)
}

/// The relay: claims what no one else publishes (see the module's docs), every
/// `relay.poll_ms` or when woken, and publishes it.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(shared.settings.relay.poll_ms.max(10));
    let batch = shared.settings.relay.batch.max(1);
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(publisher) = shared.publisher.as_ref() {
            // While the broker is away, wait for it here (the publisher backs off and logs)
            // instead of claiming outbox rows it cannot publish.
            let connected = tokio::select! {
                _ = stop.changed() => return,
                connected = publisher.ensure_connected() => connected.is_ok(),
            };
            if !connected {
                continue;
            }
        }
        match relay_round(&shared, batch).await {
            Ok(published) => {
                failures = 0;
                if published == batch as usize {
                    continue; // more may be waiting
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, "Outbox relay round failed; retrying.");
                let backoff = Duration::from_millis(100 * 2_u64.pow(failures.min(6)));
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(backoff) => continue,
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = shared.relay_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One claim–publish–delete round; returns how many rows it published (confirmed or
/// not).
async fn relay_round(shared: &Shared, batch: i64) -> Result<usize, crossdock_db::DbError> {
    let Some(publisher) = shared.publisher.as_ref() else {
        return Ok(0);
    };
    let grace = Duration::from_millis(shared.settings.relay.grace_ms);
    let mut published = 0;
    shared
        .db
        .relay_outbox(batch, grace, |rows: Vec<OutboxRow>| {
            // This process's own, still in hand, are left alone (see `InHand`).
            let rows: Vec<OutboxRow> = rows
                .into_iter()
                .filter(|row| !shared.in_hand.holds(row.id))
                .collect();
            published = rows.len();
            async move {
                if rows.is_empty() {
                    return Relayed::default();
                }
                failpoint::stall_if("before_publish").await;
                let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
                let messages: Vec<OutgoingMessage> =
                    rows.into_iter().map(|row| outgoing(row.message)).collect();
                let outcomes = publisher.publish_batch(&messages).await;
                sort_outcomes(&ids, &messages, outcomes).0
            }
        })
        .await?;
    Ok(published)
}
