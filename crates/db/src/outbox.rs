//! The transactional outbox: messages written with the change that causes them, deleted
//! only once the broker confirmed them.
//!
//! A process that can publish registers a [`CommitSink`]: the rows a transaction wrote
//! reach it right after the commit, and it publishes them at once and then forgets them
//! ([`Db::forget_outbox`]). Such rows are marked `direct`, and the relay
//! ([`Db::relay_outbox`]) claims them only once they are older than its grace: by then
//! the committer has published and deleted them, or died (or gave them up to a long
//! broker outage).
//! Rows of a process without a sink are the relay's at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, GenericClient};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::pipeline::{Param, Sent, Unread, params, send_unanswered};
use crate::{Db, DbError};

/// Takes what each transaction this process commits hands on, right after the commit.
/// It must not block: it hands it on (a channel to the publisher).
pub trait CommitSink: Send + Sync + 'static {
    fn committed(&self, committed: Committed);
    /// Whether this process runs the sync nudges of its own commits itself (it has the
    /// sync stage). Then a nudge is written to no outbox row: it comes in
    /// [`Committed::nudges`]. A nudge is only a hint, since the pending sync it names is a
    /// row of the same transaction: one that does not run (the process died first) is
    /// the sync sweeper's.
    fn runs_nudges(&self) -> bool;
}

/// What a committed transaction hands to the [`CommitSink`].
#[derive(Debug, Default)]
pub struct Committed {
    /// The outbox rows it wrote.
    pub rows: Vec<OutboxRow>,
    /// Its sync nudges, with no outbox row behind them, when the sink runs them
    /// ([`CommitSink::runs_nudges`]).
    pub nudges: Vec<OutboxMessage>,
}

impl Committed {
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.nudges.is_empty()
    }
}

/// A transaction that writes outbox rows: it keeps the rows it wrote, and hands them to
/// the database's [`CommitSink`] once it has committed (never when rolled back or
/// dropped). Its statements are the connection's (it derefs to the client).
///
/// Its `BEGIN` costs no round trip of its own: it is sent when the transaction starts,
/// ahead of whatever the transaction sends next, and its answer is left to the connection
/// (a `BEGIN` on a live connection cannot fail; on a dead one, the next statement fails
/// too). Dropped while open (an error, an early return, a cancelled request), it sends
/// `ROLLBACK` the same way, before the connection can go back to the pool.
///
/// Statements may also be sent ahead of reading their answers ([`Tx::send_one`], a
/// [`Sent`]); [`Tx::commit_with`] sends the `COMMIT` behind the last of them, so they
/// and the commit cost one round trip. A commit refuses (and rolls back) while an answer
/// sent ahead is unread or was an error.
pub(crate) struct Tx<'a> {
    client: &'a ClientWrapper,
    sink: Option<Arc<dyn CommitSink>>,
    staged: Arc<Mutex<Committed>>,
    unread: Unread,
    /// Neither committed nor rolled back yet.
    open: bool,
}

impl std::ops::Deref for Tx<'_> {
    type Target = ClientWrapper;
    fn deref(&self) -> &Self::Target {
        self.client
    }
}

impl<'a> Tx<'a> {
    /// Sends a prepared statement whose answer is exactly one row (an error otherwise)
    /// now, ahead of whatever this transaction sends next; the row is read when the
    /// [`Sent`] is awaited.
    pub(crate) fn send_one(&self, statement: &Statement, params: Vec<Param>) -> Sent<'a, Row> {
        let client: &'a ClientWrapper = self.client;
        let statement = statement.clone();
        Sent::now(&self.unread, async move {
            client.query_one(&statement, &param_refs(&params)).await
        })
    }

    /// [`Tx::send_one`] of a statement whose answer is the count of rows it changed.
    pub(crate) fn send_execute(&self, statement: &Statement, params: Vec<Param>) -> Sent<'a, u64> {
        let client: &'a ClientWrapper = self.client;
        let statement = statement.clone();
        Sent::now(&self.unread, async move {
            client.execute(&statement, &param_refs(&params)).await
        })
    }

    /// [`Tx::send_one`] of a statement whose answer is any number of rows.
    pub(crate) fn send_query(
        &self,
        statement: &Statement,
        params: Vec<Param>,
    ) -> Sent<'a, Vec<Row>> {
        let client: &'a ClientWrapper = self.client;
        let statement = statement.clone();
        Sent::now(&self.unread, async move {
            client.query(&statement, &param_refs(&params)).await
        })
    }

    /// [`Tx::send_one`] of a statement without parameters (`SAVEPOINT`, `RELEASE`, ...).
    pub(crate) fn send_simple(&self, sql: &'static str) -> Sent<'a, ()> {
        let client: &'a ClientWrapper = self.client;
        Sent::now(&self.unread, client.batch_execute(sql))
    }

    /// Commits, then hands the rows written to the sink.
    pub(crate) async fn commit(self) -> Result<(), DbError> {
        self.commit_with(Sent::uncounted(std::future::ready(Ok(()))))
            .await
    }

    /// Sends `COMMIT` behind `last` (sent already) and reads both answers: the
    /// transaction's last statements and its commit in one round trip. A failed
    /// statement aborts the transaction, so the `COMMIT` behind it rolls back, and its
    /// error is returned. Then hands the rows written to the sink. Rolls back instead
    /// while the answer of a statement sent before `last` is unread (or was an error
    /// the caller went past): a `COMMIT` behind a failed statement nobody read would be
    /// a silent rollback.
    pub(crate) async fn commit_with<T: Send + 'a>(
        mut self,
        last: Sent<'a, T>,
    ) -> Result<T, DbError> {
        if self.unread.beyond(&last) {
            return Err(DbError::Unread);
        }
        let client: &'a ClientWrapper = self.client;
        let commit = Sent::uncounted(client.batch_execute("COMMIT"));
        self.open = false;
        // Read in the order sent: the error is the first failed statement's.
        let value = last.await?;
        commit.await?;
        let committed = std::mem::take(
            &mut *self
                .staged
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if let Some(sink) = &self.sink
            && !committed.is_empty()
        {
            sink.committed(committed);
        }
        Ok(value)
    }

    /// Rolls back: the rows written are forgotten with it.
    pub(crate) async fn rollback(mut self) -> Result<(), tokio_postgres::Error> {
        self.open = false;
        self.client.batch_execute("ROLLBACK").await
    }
}

fn param_refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| &**param as &(dyn ToSql + Sync))
        .collect()
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = send_unanswered(self.client.batch_execute("ROLLBACK"));
        }
    }
}

/// A message to publish once the surrounding transaction commits.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub routing_key: String,
    /// The message type (`order.received`, `sync.requested`, …).
    pub kind: String,
    /// Stable id: a republish after a crash carries the same id.
    pub message_id: String,
    pub body: serde_json::Value,
}

/// What the relay's publisher did with a claimed batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relayed {
    /// Row ids the broker confirmed: deleted.
    pub confirmed: Vec<i64>,
    /// Row ids the broker refused, with why: set aside for HQ.
    pub refused: Vec<(i64, String)>,
}

/// A committed, not yet confirmed message.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub message: OutboxMessage,
}

/// Writes `message` to the outbox within `tx`; staged for the sink when there is one.
pub(crate) async fn insert(
    tx: &Tx<'_>,
    message: OutboxMessage,
) -> Result<(), tokio_postgres::Error> {
    send_insert(tx, &prepare_insert(tx).await?, message).await
}

/// [`send_insert`]'s statement, prepared.
pub(crate) async fn prepare_insert(tx: &Tx<'_>) -> Result<Statement, tokio_postgres::Error> {
    tx.prepare_cached(
        "INSERT INTO outbox (routing_key, kind, message_id, body, direct)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .await
}

/// Sends the insert of `message` into the outbox ahead ([`Tx::send_one`]); the row is staged
/// for the sink once its answer is read.
pub(crate) fn send_insert<'a>(
    tx: &Tx<'a>,
    statement: &Statement,
    message: OutboxMessage,
) -> Sent<'a, ()> {
    let direct = tx.sink.is_some();
    let staged = tx.staged.clone();
    tx.send_one(
        statement,
        params![
            message.routing_key.clone(),
            message.kind.clone(),
            message.message_id.clone(),
            message.body.clone(),
            direct,
        ],
    )
    .map(move |row| {
        if direct {
            stage(
                &staged,
                [OutboxRow {
                    id: row.get(0),
                    message,
                }],
            );
        }
    })
}

/// Hands committed rows to the sink's share of the transaction, in the order written.
fn stage(staged: &Mutex<Committed>, rows: impl IntoIterator<Item = OutboxRow>) {
    staged
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .rows
        .extend(rows);
}

/// [`send_inserts`]'s statement, prepared.
pub(crate) async fn prepare_inserts(tx: &Tx<'_>) -> Result<Statement, tokio_postgres::Error> {
    tx.prepare_cached(
        "INSERT INTO outbox (routing_key, kind, message_id, body, direct)
         SELECT m.routing_key, m.kind, m.message_id, m.body, $5
           FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
                WITH ORDINALITY AS m (routing_key, kind, message_id, body, n)
          ORDER BY m.n
         RETURNING id",
    )
    .await
}

/// [`send_insert`] of several messages in one statement: their rows are numbered, and
/// staged for the sink, in the order of `messages`.
pub(crate) fn send_inserts<'a>(
    tx: &Tx<'a>,
    statement: &Statement,
    messages: Vec<OutboxMessage>,
) -> Sent<'a, ()> {
    let direct = tx.sink.is_some();
    let staged = tx.staged.clone();
    let column = |field: fn(&OutboxMessage) -> &String| -> Vec<String> {
        messages.iter().map(|m| field(m).clone()).collect()
    };
    let params = params![
        column(|m| &m.routing_key),
        column(|m| &m.kind),
        column(|m| &m.message_id),
        messages.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        direct,
    ];
    tx.send_query(statement, params).map(move |rows| {
        if direct {
            // Ids are drawn in the order the rows are inserted, which is the messages'.
            let mut ids: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
            ids.sort_unstable();
            stage(
                &staged,
                ids.into_iter()
                    .zip(messages)
                    .map(|(id, message)| OutboxRow { id, message }),
            );
        }
    })
}

/// Sends a sync nudge: staged for the sink without an outbox row when the sink runs
/// nudges itself ([`CommitSink::runs_nudges`]), otherwise [`send_insert`].
pub(crate) fn send_nudge<'a>(
    tx: &Tx<'a>,
    statement: &Statement,
    message: OutboxMessage,
) -> Sent<'a, ()> {
    if tx.sink.as_ref().is_some_and(|sink| sink.runs_nudges()) {
        tx.staged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .nudges
            .push(message);
        return Sent::uncounted(std::future::ready(Ok(())));
    }
    send_insert(tx, statement, message)
}

/// Sets the rows the broker refused aside, with why, in one statement.
async fn set_aside(
    client: &impl GenericClient,
    refused: &[(i64, String)],
) -> Result<(), tokio_postgres::Error> {
    if refused.is_empty() {
        return Ok(());
    }
    let (ids, reasons): (Vec<i64>, Vec<&str>) = refused
        .iter()
        .map(|(id, reason)| (*id, reason.as_str()))
        .unzip();
    client
        .execute(
            &client
                .prepare_cached(
                    "UPDATE outbox o SET refused_at = now(), refusal = r.reason
                       FROM unnest($1::bigint[], $2::text[]) AS r(id, reason)
                      WHERE o.id = r.id",
                )
                .await?,
            &[&ids, &reasons],
        )
        .await?;
    Ok(())
}

impl Db {
    /// From now on, the outbox rows of every transaction committed through this handle
    /// (and its clones made after) go to `sink` after the commit, marked for the relay to
    /// leave alone for its grace (and its sync nudges, if the sink runs them, with no row).
    pub fn publishing_commits(mut self, sink: Arc<dyn CommitSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Begins a transaction that hands the outbox rows it writes to the sink on commit.
    pub(crate) fn begin<'a>(
        &self,
        client: &'a mut deadpool_postgres::Client,
    ) -> Result<Tx<'a>, tokio_postgres::Error> {
        let client: &'a ClientWrapper = client;
        send_unanswered(client.batch_execute("BEGIN"))?;
        Ok(Tx {
            client,
            sink: self.sink.clone(),
            staged: Arc::default(),
            unread: Unread::default(),
            open: true,
        })
    }

    /// Deletes outbox rows the broker confirmed, in one statement whose commit does not
    /// wait for the disk (lost in a crash, they are published again: V9's
    /// `forget_outbox`). Returns how many were still there.
    pub async fn forget_outbox(&self, ids: &[i64]) -> Result<u64, DbError> {
        let client = self.pool.get().await?;
        let gone: i64 = client
            .query_one(
                &client.prepare_cached("SELECT forget_outbox($1)").await?,
                &[&ids],
            )
            .await?
            .get(0);
        Ok(u64::try_from(gone).unwrap_or(0))
    }

    /// Sets aside outbox rows the broker refused, with why, for HQ.
    pub async fn set_aside_outbox(&self, refused: &[(i64, String)]) -> Result<(), DbError> {
        let client = self.pool.get().await?;
        set_aside(&client, refused).await?;
        Ok(())
    }

    /// Claims up to `limit` outbox rows (oldest first, skipping rows another relay holds,
    /// rows set aside, and rows a committer publishes itself that are younger than
    /// `grace`), hands them to `publish`, deletes the confirmed ones, sets the refused
    /// ones aside with their reason, and commits. Rows whose outcome is unknown stay for
    /// the next round. Returns the number confirmed.
    pub async fn relay_outbox<F, Fut>(
        &self,
        limit: i64,
        grace: Duration,
        publish: F,
    ) -> Result<usize, DbError>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut,
        Fut: std::future::Future<Output = Relayed>,
    {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                // Oldest first, skipping rows another relay holds, rows set aside and
                // young rows their committer publishes, by a plain index scan (V8, V9).
                &tx.prepare_cached(
                    "SELECT id, routing_key, kind, message_id, body
                       FROM claim_outbox($1, make_interval(secs => $2))",
                )
                .await?,
                &[&limit, &grace.as_secs_f64()],
            )
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let claimed = rows
            .iter()
            .map(|row| OutboxRow {
                id: row.get(0),
                message: OutboxMessage {
                    routing_key: row.get(1),
                    kind: row.get(2),
                    message_id: row.get(3),
                    body: row.get(4),
                },
            })
            .collect();
        let Relayed { confirmed, refused } = publish(claimed).await;
        if !confirmed.is_empty() {
            tx.execute(
                &tx.prepare_cached("DELETE FROM outbox WHERE id = ANY($1)")
                    .await?,
                &[&confirmed],
            )
            .await?;
        }
        set_aside(&tx, &refused).await?;
        tx.commit().await?;
        Ok(confirmed.len())
    }

    /// Messages the broker refused, set aside: (id, routing key, reason).
    pub async fn refused_outbox(&self) -> Result<Vec<(i64, String, String)>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client.prepare_cached("SELECT id, routing_key, coalesce(refusal, '') FROM outbox WHERE refused_at IS NOT NULL ORDER BY id").await?,
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Rows waiting to be published (not counting those set aside).
    pub async fn outbox_backlog(&self) -> Result<i64, DbError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one(
                &client
                    .prepare_cached("SELECT count(*) FROM outbox WHERE refused_at IS NULL")
                    .await?,
                &[],
            )
            .await?
            .get(0))
    }
}
