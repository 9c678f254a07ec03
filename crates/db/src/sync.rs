//! The status sync queue: every status change the platform must hear of, pushed in order
//! per order by whichever sync worker holds the order's advisory lock.
//!
//! The broker message that nudges a worker carries only the order id; the rows here are
//! the truth. So a lost, duplicated or reordered nudge cannot push a status twice or out of
//! order: the worker always takes the oldest pending row of the order, under the lock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdock_model::{EventKind, EventSource, Order, OrderId, Status, StatusAction, StatusChange};
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;

use crate::orders::{NewEvent, ORDER_COLUMNS, insert_event, order_from_row};
use crate::pipeline::send_unanswered;
use crate::{Db, DbError, outbox};

/// A status change waiting to be pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSync {
    pub event_id: i64,
    pub change: StatusChange,
    /// Failed attempts so far.
    pub attempts: i32,
}

/// What pushing one pending sync came to.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncResult {
    Delivered {
        detail: String,
    },
    /// Nothing to push (the platform has no such call).
    Skipped {
        why: String,
    },
    /// Failed, try again at `at`; later statuses of the order wait behind it.
    Retry {
        error: String,
        at: DateTime<Utc>,
    },
    /// Failed for good: park it for HQ, with every later status of the order.
    Park {
        error: String,
    },
}

/// Pushes one status change to the order's channel.
#[async_trait]
pub trait SyncPush: Send + Sync {
    async fn push(&self, order: &Order, sync: &PendingSync) -> SyncResult;
}

/// What a sync run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncRun {
    pub pushed: usize,
    /// A pending sync waits for its retry time.
    pub waiting: bool,
}

/// The advisory lock key of an order's sync runs (HQ's replay takes it too, so that it
/// never changes an order's syncs in the middle of a run).
pub(crate) fn lock_key(order_id: OrderId) -> i64 {
    let (high, low) = order_id.as_uuid().as_u64_pair();
    (high ^ low) as i64
}

/// The order and its open syncs (pending or parked), oldest first, in one read; the run
/// pushes the pending ones, unless one is parked. A status recorded during a run is not
/// missed: its nudge waits for the run's lock. Open, not just pending: a
/// `state = 'pending'` condition would let a plan read every pending sync through the
/// sweeper's partial index instead of the order's own (tests/plans.rs).
static PENDING_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT o.*, s.state, s.event_id, s.action, s.attempts, s.next_attempt_at,
                s.from_status, s.changed_at
         FROM (SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1) o
         JOIN status_syncs s ON s.order_id = $1 AND s.state IN ('pending', 'parked')
         ORDER BY s.event_id"
    )
});

impl Db {
    /// Pushes the order's due pending syncs, oldest first, stopping at the first that
    /// fails. Serialized per order across processes by a session advisory lock: waits for
    /// a run under way elsewhere to end.
    pub async fn run_syncs(
        &self,
        order_id: OrderId,
        pusher: &dyn SyncPush,
    ) -> Result<SyncRun, DbError> {
        let run = self.run_syncs_if(order_id, pusher, true).await?;
        Ok(run.unwrap_or_default())
    }

    /// Like [`Db::run_syncs`], but leaves the order alone (`None`) while another run holds
    /// it: that run pushes whatever is due. The sweeper's way, so that it never spends a
    /// turn waiting behind a nudged run.
    pub async fn try_run_syncs(
        &self,
        order_id: OrderId,
        pusher: &dyn SyncPush,
    ) -> Result<Option<SyncRun>, DbError> {
        self.run_syncs_if(order_id, pusher, false).await
    }

    async fn run_syncs_if(
        &self,
        order_id: OrderId,
        pusher: &dyn SyncPush,
        wait: bool,
    ) -> Result<Option<SyncRun>, DbError> {
        // One connection for the whole run: the lock lives on its session, and recording
        // each result on it means a run never waits for a second pooled connection.
        let mut client = self.pool.get().await?;
        let key = lock_key(order_id);
        let read = client.prepare_cached(&PENDING_SQL).await?;
        let rows = if wait {
            // The lock and the read are sent together (pipelined), both prepared first so
            // that they are sent in this order: the read runs once the lock is held.
            let lock = client.prepare_cached("SELECT pg_advisory_lock($1)").await?;
            let uuid = order_id.as_uuid();
            let lock_params: [&(dyn ToSql + Sync); 1] = [&key];
            let read_params: [&(dyn ToSql + Sync); 1] = [&uuid];
            let (_, rows) = tokio::try_join!(
                client.execute(&lock, &lock_params),
                client.query(&read, &read_params),
            )?;
            rows
        } else {
            let row = client
                .query_one(
                    &client
                        .prepare_cached("SELECT pg_try_advisory_lock($1)")
                        .await?,
                    &[&key],
                )
                .await?;
            if !row.get::<_, bool>(0) {
                return Ok(None);
            }
            client.query(&read, &[&order_id.as_uuid()]).await?
        };
        let result = self
            .run_syncs_locked(&mut client, order_id, pusher, &rows)
            .await;
        // The unlock is sent without waiting for its answer: whoever uses the connection
        // next sends behind it, and a session that cannot take it is a closed one, whose
        // locks are gone with it.
        let unlocked = match client.prepare_cached("SELECT pg_advisory_unlock($1)").await {
            Ok(unlock) => send_unanswered(client.execute(&unlock, &[&key])),
            Err(error) => Err(error),
        };
        if result.is_err() || unlocked.is_err() {
            // Closing the session is the sure way to release its lock.
            drop(Object::take(client));
        }
        result.map(Some)
    }

    /// Pushes what `rows` (the order's [`PENDING_SQL`], read under its lock) hold.
    async fn run_syncs_locked(
        &self,
        client: &mut Object,
        order_id: OrderId,
        pusher: &dyn SyncPush,
        rows: &[tokio_postgres::Row],
    ) -> Result<SyncRun, DbError> {
        let mut run = SyncRun::default();
        let Some(first) = rows.first() else {
            return Ok(run);
        };
        let order = order_from_row(first)?;
        let parked = |row: &tokio_postgres::Row| row.get::<_, &str>("state") == "parked";
        // Every status behind a parked one parks too, one parked in this run included.
        let mut behind_parked = rows.iter().any(parked);
        for row in rows.iter().filter(|row| !parked(row)) {
            let next_attempt_at: DateTime<Utc> = row.get("next_attempt_at");
            let action: serde_json::Value = row.get("action");
            let from: String = row.get("from_status");
            let pending = PendingSync {
                event_id: row.get("event_id"),
                change: StatusChange {
                    action: serde_json::from_value(action)
                        .map_err(|e| DbError::Corrupt(format!("sync action: {e}")))?,
                    from: Status::parse(&from)
                        .ok_or_else(|| DbError::Corrupt(format!("sync from status {from}")))?,
                    at: row.get("changed_at"),
                },
                attempts: row.get("attempts"),
            };
            let result = if behind_parked {
                SyncResult::Park {
                    error: "waiting behind an earlier parked status of this order".into(),
                }
            } else if next_attempt_at > Utc::now() {
                run.waiting = true;
                return Ok(run);
            } else {
                pusher.push(&order, &pending).await
            };
            let recorded = self
                .record_sync_result(client, order_id, &pending, &result)
                .await?;
            match result {
                SyncResult::Delivered { .. } => run.pushed += 1,
                SyncResult::Skipped { .. } => {}
                // Settled meanwhile (the platform cancelled the order): nothing waits.
                _ if !recorded => {}
                SyncResult::Park { .. } => behind_parked = true,
                SyncResult::Retry { .. } => {
                    run.waiting = true;
                    return Ok(run);
                }
            }
        }
        Ok(run)
    }

    /// Writes a sync's outcome and its history event; `false` if there was nothing to
    /// write: the sync was settled meanwhile and this outcome does not override it.
    async fn record_sync_result(
        &self,
        client: &mut Object,
        order_id: OrderId,
        pending: &PendingSync,
        result: &SyncResult,
    ) -> Result<bool, DbError> {
        // A sync settled while it was being pushed (skipped: the platform cancelled the
        // order meanwhile) keeps that ending unless the push went through after all: a
        // failure of a moot push is not retried or parked.
        const SETTLE: &str =
            "UPDATE status_syncs SET state = $3, attempts = $4, next_attempt_at = $5,
                 last_error = CASE WHEN $3 IN ('delivered', 'skipped') THEN NULL ELSE $6 END,
                 updated_at = now()
             WHERE order_id = $1 AND event_id = $2 AND (state = 'pending' OR $3 = 'delivered')";
        let now = Utc::now();
        let action_json = serde_json::to_value(&pending.change.action)
            .map_err(|e| DbError::Corrupt(e.to_string()))?;
        let (state, kind, reason, attempts, next) = match result {
            SyncResult::Delivered { detail } => (
                "delivered",
                EventKind::SyncDelivered,
                detail,
                pending.attempts,
                now,
            ),
            SyncResult::Skipped { why } => (
                "skipped",
                EventKind::SyncSkipped,
                why,
                pending.attempts,
                now,
            ),
            SyncResult::Retry { error, at } => (
                "pending",
                EventKind::SyncFailed,
                error,
                pending.attempts + 1,
                *at,
            ),
            SyncResult::Park { error } => (
                "parked",
                EventKind::SyncParked,
                error,
                pending.attempts + 1,
                now,
            ),
        };
        let data = serde_json::json!({ "action": action_json, "attempt": attempts.max(1) });
        let uuid = order_id.as_uuid();
        let settle: [&(dyn ToSql + Sync); 6] =
            [&uuid, &pending.event_id, &state, &attempts, &next, reason];
        if matches!(
            result,
            SyncResult::Delivered { .. } | SyncResult::Skipped { .. }
        ) {
            // Most outcomes, in one statement: the sync settled and its history event.
            let event: [&(dyn ToSql + Sync); 4] =
                [&now, &EventSource::Hub.as_str(), &kind.as_str(), &data];
            let written = client
                .execute(
                    &client
                        .prepare_cached(&format!(
                            "WITH settled AS ({SETTLE} RETURNING order_id)
                         INSERT INTO order_events (order_id, at, source, kind, reason, data)
                         SELECT order_id, $7, $8, $9, $6, $10 FROM settled"
                        ))
                        .await?,
                    &[settle.as_slice(), event.as_slice()].concat(),
                )
                .await?;
            return Ok(written > 0);
        }
        let tx = self.begin(client)?;
        let updated = tx
            .execute(&tx.prepare_cached(SETTLE).await?, &settle)
            .await?;
        if updated == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let SyncResult::Retry { at, .. } = result {
            // The order's later syncs wait for this one: due no sooner than it. Open ones,
            // not just pending ones (a parked one's time is set again when HQ replays it):
            // a `state = 'pending'` condition would let a plan read every pending sync
            // through the sweeper's partial index instead of the order's own
            // (tests/plans.rs).
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE status_syncs SET next_attempt_at = $3
                 WHERE order_id = $1 AND event_id > $2 AND next_attempt_at < $3
                   AND state IN ('pending', 'parked')",
                )
                .await?,
                &[&order_id.as_uuid(), &pending.event_id, at],
            )
            .await?;
        }
        insert_event(
            &tx,
            NewEvent {
                order_id,
                at: now,
                source: EventSource::Hub,
                kind,
                status: None,
                reason: Some(reason),
                data: Some(&data),
            },
        )
        .await?;
        if let SyncResult::Park { error } = result {
            let channel: String = tx
                .query_one(
                    &tx.prepare_cached("SELECT channel FROM orders WHERE id = $1")
                        .await?,
                    &[&order_id.as_uuid()],
                )
                .await?
                .get(0);
            let body = serde_json::json!({
                "order_id": order_id, "event_id": pending.event_id, "channel": channel,
                "action": action_json, "error": error,
            });
            outbox::insert(
                &tx,
                self.routes()
                    .parked(&channel, order_id, pending.event_id, body),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Orders whose next sync to push is due, with their channel, at most `limit` and at
    /// most `per_channel` of each of `channels` (the sweeper's work list): retries whose
    /// time has come, and syncs whose nudge has not run them within `nudge_grace` (a nudge
    /// lost, left to the sweeper, or stuck in a backlog). Answers to a platform's offer
    /// whose deadline has not passed come first, the soonest deadline first: a platform
    /// drops an order it has not heard back on in time. Then the rest, the longest due
    /// first. Only an order's oldest pending sync counts: the ones behind it wait for it,
    /// so an order whose first sync is backing off is not listed for them. A channel far
    /// behind (its platform down, or its rate limit reached) cannot fill the list and keep
    /// the other channels' due orders off it. Each channel's few are read from the
    /// `(channel, due_by)` and `(channel, next_attempt_at)` indexes, whatever the backlog.
    pub async fn due_syncs(
        &self,
        channels: &[String],
        limit: i64,
        per_channel: i64,
        nudge_grace: std::time::Duration,
    ) -> Result<Vec<(OrderId, String)>, DbError> {
        // Due now, and the order's next to push.
        const DUE: &str = "s.channel = c.channel AND s.state = 'pending'
            AND s.next_attempt_at <= now()
            AND (s.attempts > 0
                 OR s.next_attempt_at <= now() - make_interval(secs => $4::bigint / 1000.0))
            AND NOT EXISTS (SELECT 1 FROM status_syncs e
                            WHERE e.order_id = s.order_id AND e.state = 'pending'
                              AND e.event_id < s.event_id)";
        let grace_ms = i64::try_from(nudge_grace.as_millis()).unwrap_or(i64::MAX);
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(&format!(
                        "SELECT d.order_id, c.channel
                     FROM unnest($1::text[]) AS c(channel)
                     CROSS JOIN LATERAL (
                         (SELECT s.order_id, s.next_attempt_at, s.due_by FROM status_syncs s
                          WHERE {DUE} AND s.due_by > now()
                          ORDER BY s.due_by LIMIT $3)
                         UNION ALL
                         (SELECT s.order_id, s.next_attempt_at, NULL FROM status_syncs s
                          WHERE {DUE} AND (s.due_by IS NULL OR s.due_by <= now())
                          ORDER BY s.next_attempt_at LIMIT $3)
                         ORDER BY due_by NULLS LAST, next_attempt_at LIMIT $3) d
                     ORDER BY d.due_by NULLS LAST, d.next_attempt_at LIMIT $2"
                    ))
                    .await?,
                &[&channels, &limit, &per_channel, &grace_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (OrderId::from_uuid(r.get(0)), r.get(1)))
            .collect())
    }

    /// The sync rows of an order, oldest first: (action, state, attempts, last error).
    pub async fn syncs(
        &self,
        order_id: OrderId,
    ) -> Result<Vec<(StatusAction, String, i32, Option<String>)>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client.prepare_cached("SELECT action, state, attempts, last_error FROM status_syncs WHERE order_id = $1 ORDER BY event_id").await?,
                &[&order_id.as_uuid()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let action: serde_json::Value = r.get(0);
                let action =
                    serde_json::from_value(action).map_err(|e| DbError::Corrupt(e.to_string()))?;
                Ok((action, r.get(1), r.get(2), r.get(3)))
            })
            .collect()
    }
}
