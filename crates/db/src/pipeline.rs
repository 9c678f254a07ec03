//! Statements sent before their answer is awaited (pipelined), so that a transaction's
//! last statements and its `COMMIT` cost one round trip.
//!
//! A [`Sent`] is made only by sending: its statement is on the connection when the value
//! exists, so whatever is sent after it runs after it, however the futures are polled.
//! (A future awaited later might first prepare its statement, a round trip of its own,
//! and only then send it: behind a `COMMIT` sent meanwhile, outside the transaction.)
//! The transaction counts what it sent and has not read the answer of; its commit
//! refuses while any is left ([`crate::outbox::Tx`]), since a failed statement nobody
//! read would turn the `COMMIT` behind it into a silent rollback.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use tokio_postgres::types::ToSql;

/// A parameter of a statement sent ahead: owned, since the statement's future outlives
/// the caller's locals.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The boxed parameters of a statement: `params![a, b]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        vec![$(Box::new($value) as $crate::pipeline::Param),*]
    };
}
pub(crate) use params;

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// A statement already sent; awaiting it reads its answer.
#[must_use = "a statement sent must have its answer read: its failure aborts the transaction"]
pub(crate) struct Sent<'a, T> {
    answer: Answer<'a, T>,
    /// Counted among its transaction's unread answers until its answer is read (`None`:
    /// its parts are counted, or it was read).
    counted: Option<Unread>,
    /// How many statements it stands for.
    holds: usize,
}

/// The count of a transaction's statements sent whose answer was not read (or was an
/// error).
#[derive(Clone, Default)]
pub(crate) struct Unread(Arc<AtomicUsize>);

impl Unread {
    /// Whether answers are unread beyond the `holds` statements of `last`, which is about
    /// to be read.
    pub(crate) fn beyond<T>(&self, last: &Sent<'_, T>) -> bool {
        self.0.load(Ordering::Acquire) > last.holds
    }
}

impl<'a, T: Send + 'a> Sent<'a, T> {
    /// Polls `future` once, which sends its statement (a statement already prepared is
    /// written to the connection's queue on the first poll), and keeps it for its answer,
    /// counted among `unread` until it is read.
    pub(crate) fn now(
        unread: &Unread,
        future: impl Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a,
    ) -> Self {
        let mut sent = Self::uncounted(future);
        unread.0.fetch_add(1, Ordering::AcqRel);
        sent.counted = Some(unread.clone());
        sent.holds = 1;
        sent
    }

    /// [`Sent::now`] of a statement no commit waits to have read (the `COMMIT` itself),
    /// or of nothing (`future` ready at once): it stands for no statement.
    pub(crate) fn uncounted(
        future: impl Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a,
    ) -> Self {
        let mut answer: Answer<'a, T> = Box::pin(future);
        if let Poll::Ready(result) = answer
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            answer = Box::pin(std::future::ready(result));
        }
        Sent {
            answer,
            counted: None,
            holds: 0,
        }
    }

    /// What the answer comes to, once read.
    pub(crate) fn map<U: Send + 'a>(self, f: impl FnOnce(T) -> U + Send + 'a) -> Sent<'a, U> {
        let Sent {
            answer,
            counted,
            holds,
        } = self;
        Sent {
            answer: Box::pin(async move { answer.await.map(f) }),
            counted,
            holds,
        }
    }

    /// Both answers read, in the order they were sent, for whether they failed.
    pub(crate) fn also<U: Send + 'a>(self, other: Sent<'a, U>) -> Sent<'a, ()> {
        self.and(other).map(|_| ())
    }

    /// Both answers, read in the order they were sent: the error is the first failed
    /// statement's, not that of one behind it refused for the aborted transaction (both
    /// are sent, so reading one before the other waits for nothing more).
    pub(crate) fn and<U: Send + 'a>(self, other: Sent<'a, U>) -> Sent<'a, (T, U)> {
        let holds = self.holds + other.holds;
        Sent {
            answer: Box::pin(async move { Ok((self.await?, other.await?)) }),
            counted: None,
            holds,
        }
    }
}

impl<T> Future for Sent<'_, T> {
    type Output = Result<T, tokio_postgres::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let poll = self.answer.as_mut().poll(cx);
        if let Poll::Ready(Ok(_)) = &poll
            && let Some(unread) = self.counted.take()
        {
            unread.0.fetch_sub(1, Ordering::AcqRel);
        }
        poll
    }
}

/// Sends a statement without waiting for its answer, which the connection reads and
/// drops: `future` is polled once (a statement already prepared, or a simple query, is
/// written to the connection's queue then) and let go. `Err` only when it could not be
/// sent (the connection is closed).
pub(crate) fn send_unanswered<T>(
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<(), tokio_postgres::Error> {
    let mut sending = std::pin::pin!(future);
    match sending
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Err(error)) => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    //! Statements sent ahead and the commit behind them, on a database of the test's own.

    use std::sync::Arc;

    use crossdock_model::{OrderId, StoreId};

    use tokio_postgres::Statement;

    use crate::outbox::Tx;
    use crate::scratch::ScratchDatabase;
    use crate::{Db, DbConfig, DbError, OutboxMessage, Routes};

    struct Unrouted;

    impl Routes for Unrouted {
        fn order_received(&self, _: OrderId) -> OutboxMessage {
            unreachable!("these tests write no outbox rows")
        }
        fn reroute(&self, _: OrderId, _: usize) -> OutboxMessage {
            unreachable!("these tests write no outbox rows")
        }
        fn fetch(&self, _: &str, _: &str, _: serde_json::Value) -> OutboxMessage {
            unreachable!("these tests write no outbox rows")
        }
        fn to_store(&self, _: &StoreId, _: OrderId, _: &str) -> OutboxMessage {
            unreachable!("these tests write no outbox rows")
        }
        fn store_status(&self, _: &StoreId, _: OrderId, _: &str) -> OutboxMessage {
            unreachable!("these tests write no outbox rows")
        }
        fn sync(&self, _: &str, _: OrderId) -> OutboxMessage {
            unreachable!("these tests write no outbox rows")
        }
        fn parked(&self, _: &str, _: OrderId, _: i64, _: serde_json::Value) -> OutboxMessage {
            unreachable!("these tests write no outbox rows")
        }
    }

    /// Runs `body` on a transaction begun on a database of the test's own, whose one
    /// connection (every statement on one session) has a table `kept (id int PRIMARY
    /// KEY)` and its insert prepared; returns what `body` came to and the ids kept after
    /// it, read on the same session, and removes the database.
    async fn in_transaction<R>(body: impl AsyncFnOnce(Tx<'_>, Statement) -> R) -> (R, Vec<i32>) {
        let database = ScratchDatabase::create().await.expect("create database");
        let config = DbConfig {
            url: database.url.clone(),
            pool_size: 1,
        };
        let db = Db::connect(&config, Arc::new(Unrouted))
            .await
            .expect("connect");
        let mut client = db.pool().get().await.expect("client");
        client
            .batch_execute("CREATE TABLE kept (id int PRIMARY KEY)")
            .await
            .expect("table");
        let tx = db.begin(&mut client).expect("begin");
        let insert = tx
            .prepare_cached("INSERT INTO kept VALUES ($1)")
            .await
            .expect("prepare");
        let outcome = body(tx, insert).await;
        let kept = client
            .query("SELECT id FROM kept ORDER BY id", &[])
            .await
            .expect("the session is usable, with no transaction open")
            .iter()
            .map(|row| row.get(0))
            .collect();
        drop(client);
        drop(db);
        database.remove().await.expect("drop database");
        (outcome, kept)
    }

    /// Two inserts into `kept` sent ahead and committed behind: what the commit came to,
    /// and the ids kept.
    async fn two_inserts_committed(
        first: i32,
        second: i32,
    ) -> (Result<(u64, u64), DbError>, Vec<i32>) {
        in_transaction(async |tx, insert| {
            let sent = tx
                .send_execute(&insert, params![first])
                .and(tx.send_execute(&insert, params![second]));
            tx.commit_with(sent).await
        })
        .await
    }

    #[tokio::test]
    async fn statements_sent_ahead_commit_with_the_commit_behind_them() {
        let (committed, kept) = two_inserts_committed(1, 2).await;
        assert_eq!(committed.expect("commit"), (1, 1));
        assert_eq!(kept, [1, 2]);
    }

    #[tokio::test]
    async fn a_failed_statement_sent_ahead_fails_the_commit_behind_it() {
        let (committed, kept) = two_inserts_committed(1, 1).await;
        let error = committed.expect_err("a duplicate key");
        assert!(
            matches!(&error, DbError::Query(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)),
            "the statement's own error, got {error}"
        );
        assert!(kept.is_empty(), "nothing committed");
    }

    #[tokio::test]
    async fn the_error_of_statements_sent_ahead_is_the_first_failed_ones() {
        // The second insert fails; the third is refused for the aborted transaction.
        let (committed, kept) = in_transaction(async |tx, insert| {
            let sent = tx
                .send_execute(&insert, params![1])
                .also(tx.send_execute(&insert, params![1]))
                .also(tx.send_execute(&insert, params![2]));
            tx.commit_with(sent).await
        })
        .await;
        let error = committed.expect_err("a duplicate key");
        assert!(
            matches!(&error, DbError::Query(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)),
            "the failed statement's own error, got {error}"
        );
        assert!(kept.is_empty(), "nothing committed");
    }

    /// The commit refused for an answer left unread, and nothing kept.
    fn refused_for_unread<T: std::fmt::Debug>((committed, kept): (Result<T, DbError>, Vec<i32>)) {
        let error = committed.expect_err("refused");
        assert!(matches!(error, DbError::Unread), "got {error}");
        assert!(kept.is_empty(), "nothing committed");
    }

    #[tokio::test]
    async fn a_plain_commit_refuses_while_an_answer_sent_ahead_is_unread() {
        let (committed, kept) = in_transaction(async |tx, insert| {
            let forgotten = tx.send_execute(&insert, params![1_i32]);
            let committed = tx.commit().await;
            drop(forgotten);
            committed
        })
        .await;
        refused_for_unread((committed, kept));
    }

    #[tokio::test]
    async fn a_commit_refuses_while_an_answer_sent_ahead_is_unread() {
        let (committed, kept) = in_transaction(async |tx, insert| {
            // A statement that fails, its answer never read: a COMMIT behind it would
            // answer as a rollback, without an error.
            let forgotten = tx.send_execute(&insert, params![Option::<i32>::None]);
            let last = tx.send_execute(&insert, params![2_i32]);
            let committed = tx.commit_with(last).await;
            drop(forgotten);
            committed
        })
        .await;
        refused_for_unread((committed, kept));
    }
}
