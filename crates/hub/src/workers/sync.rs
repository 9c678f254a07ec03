//! The sync stage: nudges from the sync queue make the worker push an order's pending
//! status changes (see `crossdock_db::sync`); a sweeper picks up retries that come due and
//! syncs whose nudge did not run them. Both run orders side by side, up to
//! `sync.concurrency` runs at once between them and at most a quarter of those (at least
//! two) for one channel, so that a platform that is slow, down or at its rate limit holds
//! up only its own orders. A nudge that finds its channel's turns taken for a while is
//! acked and left to the sweeper: the pending syncs are rows in the database, the nudge
//! only a hint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossdock_broker::{Disposition, Incoming};
use crossdock_db::sync::SyncPush;
use crossdock_db::{Db, DbConfig, DbError};
use crossdock_model::OrderId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::{OrderMessage, parse, requeue_after_pause};
use crate::app::Shared;

/// How often the sweeper looks for syncs that came due.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// How long a new sync is left to its nudge before the sweeper takes it too: past it, the
/// nudge was lost, left to the sweeper, or is stuck in a backlog the sweeper can help with.
const NUDGE_GRACE: Duration = Duration::from_secs(10);

/// How long a nudge waits for one of its channel's turns before leaving the order to the
/// sweeper, so that a channel far behind cannot fill the consumer with waiting nudges.
const CHANNEL_TURN_PATIENCE: Duration = Duration::from_secs(1);

/// The process's sync runs: the channels' pusher (metered, see
/// `crate::metrics::MeteredPush`), the turns that bound how many orders are pushed at
/// once, each channel's share of them, and the database handle the runs use: each run
/// holds a connection from start to end, platform call included, so the runs have a pool
/// of their own, one connection a turn, and a platform that hangs can never take the
/// connections the other stages need.
pub struct SyncRuns {
    db: Db,
    pusher: Arc<dyn SyncPush>,
    turns: Semaphore,
    concurrency: usize,
    per_channel: usize,
    /// Each configured channel's share of the turns.
    channel_turns: HashMap<String, Arc<Semaphore>>,
    /// Nudges of this process's own commits being run here (see [`run_here`]), at most
    /// as many as the sync queue's consumer handles at once.
    here: Arc<Semaphore>,
    /// The share of the syncs of any other channel (one no longer configured: its runs
    /// park at once, for want of an adapter).
    other_turns: Arc<Semaphore>,
}

impl SyncRuns {
    /// The runs, `concurrency` at once, on a pool of their own of as many connections to
    /// `database_url` beside `db`'s (`Db::with_own_pool`).
    pub async fn connect<'a>(
        db: &Db,
        database_url: &str,
        pusher: Arc<dyn SyncPush>,
        concurrency: usize,
        channels: impl IntoIterator<Item = &'a String>,
    ) -> Result<Arc<Self>, DbError> {
        let concurrency = concurrency.max(1);
        let db = db
            .with_own_pool(&DbConfig {
                url: database_url.to_owned(),
                pool_size: concurrency,
            })
            .await?;
        let per_channel = (concurrency / 4).max(2);
        Ok(Arc::new(Self {
            db,
            pusher,
            turns: Semaphore::new(concurrency),
            concurrency,
            per_channel,
            channel_turns: channels
                .into_iter()
                .map(|channel| (channel.clone(), Arc::new(Semaphore::new(per_channel))))
                .collect(),
            other_turns: Arc::new(Semaphore::new(per_channel)),
            here: Arc::new(Semaphore::new(concurrency * NUDGES_PER_TURN)),
        }))
    }

    fn channel_turns(&self, channel: &str) -> Arc<Semaphore> {
        self.channel_turns
            .get(channel)
            .unwrap_or(&self.other_turns)
            .clone()
    }

    /// One of the channel's turns, if one is free within `patience`.
    async fn channel_turn(
        &self,
        channel: &str,
        patience: Duration,
    ) -> Option<OwnedSemaphorePermit> {
        let turns = self.channel_turns(channel);
        tokio::time::timeout(patience, turns.acquire_owned())
            .await
            .ok()?
            .ok()
    }

    /// One of the channel's turns, if one is free now.
    fn free_channel_turn(&self, channel: &str) -> Option<OwnedSemaphorePermit> {
        self.channel_turns(channel).try_acquire_owned().ok()
    }

    /// Pushes the order's due syncs on a turn of its own, after any run of it under way.
    async fn run(&self, order_id: OrderId) -> anyhow::Result<()> {
        let _turn = self.turns.acquire().await?;
        self.db.run_syncs(order_id, self.pusher.as_ref()).await?;
        Ok(())
    }

    /// Runs a nudged order on one of its channel's turns, if one is free within
    /// [`CHANNEL_TURN_PATIENCE`]; otherwise the order is left to the sweeper.
    async fn run_nudged(&self, channel: &str, order_id: OrderId) -> anyhow::Result<()> {
        let Some(_channel_turn) = self.channel_turn(channel, CHANNEL_TURN_PATIENCE).await else {
            tracing::debug!(
                %order_id, channel,
                "The channel's sync turns are all taken; leaving the order to the sweeper."
            );
            return Ok(());
        };
        self.run(order_id).await
    }

    /// Like [`SyncRuns::run`], but gives the turn back at once if another run holds the
    /// order (it pushes what is due).
    async fn sweep(&self, order_id: OrderId) -> anyhow::Result<()> {
        let _turn = self.turns.acquire().await?;
        self.db
            .try_run_syncs(order_id, self.pusher.as_ref())
            .await?;
        Ok(())
    }
}

/// Nudges handled at once per sync turn: nudges may wait a moment for their channel's
/// turn, so there are more of them than turns, and other channels' nudges get past them.
const NUDGES_PER_TURN: usize = 4;

/// Runs the nudge of a status this process has just committed here, instead of through
/// the sync queue, if it can take it at once: one message fewer, and no hop through the
/// broker before the push. Its commit is the nudge's, so the run sees it. Returns `false`
/// when as many nudges as the queue's consumer would handle are already under way here:
/// the nudge then goes by the queue (published once: a process with this stage writes no
/// outbox row for its nudges, see `crossdock_db::CommitSink::runs_nudges`). A run that
/// fails, or a nudge lost, is the sweeper's.
pub fn run_here(runs: &Arc<SyncRuns>, channel: &str, order_id: OrderId) -> bool {
    let Ok(permit) = runs.here.clone().try_acquire_owned() else {
        return false;
    };
    let runs = runs.clone();
    let channel = channel.to_owned();
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(error) = runs.run_nudged(&channel, order_id).await {
            tracing::warn!(%order_id, %error, "Sync run failed; the sweeper retries it.");
        }
    });
    true
}

/// Consumes the sync queue.
pub async fn run(shared: Arc<Shared>, runs: Arc<SyncRuns>, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let queue = shared.topology.sync_queue();
    let concurrency = runs.concurrency * NUDGES_PER_TURN;
    let prefetch = u16::try_from(concurrency * 2).unwrap_or(u16::MAX);
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
            let runs = runs.clone();
            async move { handle(&shared, &runs, incoming).await }
        },
    )
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "Sync consumer stopped.");
    }
}

async fn handle(shared: &Shared, runs: &SyncRuns, incoming: Incoming) -> Disposition {
    let message: OrderMessage = match parse(&incoming) {
        Ok(message) => message,
        Err(disposition) => return disposition,
    };
    let channel = crate::routes::sync_channel(&incoming.routing_key).unwrap_or_default();
    match runs.run_nudged(channel, message.order_id).await {
        Ok(()) => Disposition::Ack,
        Err(error) => {
            tracing::warn!(order_id = %message.order_id, %error, "Sync run failed; requeueing.");
            requeue_after_pause(shared).await
        }
    }
}

/// Every `SWEEP_EVERY`, starts a run for each order whose next sync came due (a retry,
/// or a new sync its nudge left for longer than `NUDGE_GRACE`), longest due first, not
/// already being run by the sweeper and whose channel has a turn free; a run steps aside
/// if a nudged run holds the order. On stop it lets the runs under way
/// finish: each holds its order's advisory lock on a pooled connection.
pub async fn sweep(shared: Arc<Shared>, runs: Arc<SyncRuns>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut running = JoinSet::new();
    // The sweeper's runs under way, by task, and the order each runs.
    let mut in_flight: HashMap<tokio::task::Id, OrderId> = HashMap::new();
    let channels: Vec<String> = shared.channels.keys().cloned().collect();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(done) = running.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(error) => {
                        tracing::error!(%error, "A sync retry run ended abnormally.");
                        error.id()
                    }
                };
                in_flight.remove(&id);
                continue;
            }
            _ = tick.tick() => {}
        }
        if *stop.borrow() {
            break;
        }
        let room = runs.concurrency.saturating_sub(in_flight.len());
        if room == 0 {
            continue;
        }
        // Runs under way may still be listed: ask for as many as there are turns.
        let want = i64::try_from(runs.concurrency).unwrap_or(i64::MAX);
        let per_channel = i64::try_from(runs.per_channel).unwrap_or(i64::MAX);
        let due = match shared
            .db
            .due_syncs(&channels, want, per_channel, NUDGE_GRACE)
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "Cannot list due status syncs.");
                continue;
            }
        };
        let mut started = 0;
        for (order_id, channel) in due {
            if started == room {
                break;
            }
            if in_flight.values().any(|running| *running == order_id) {
                continue;
            }
            let Some(channel_turn) = runs.free_channel_turn(&channel) else {
                continue;
            };
            started += 1;
            let runs = runs.clone();
            let handle = running.spawn(async move {
                let _channel_turn = channel_turn;
                if let Err(error) = runs.sweep(order_id).await {
                    tracing::warn!(%order_id, %error, "Sync retry failed.");
                }
            });
            in_flight.insert(handle.id(), order_id);
        }
    }
    while running.join_next().await.is_some() {}
}
