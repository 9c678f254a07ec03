//! The outbox against a real PostgreSQL: a commit hands its rows to the process's
//! publisher, which forgets them once confirmed, and the relay leaves them for its grace;
//! the relay's claim deletes confirmed rows, sets refused rows aside so they never block
//! the rows behind them, and leaves unknown outcomes. A transaction left without a commit
//! is rolled back before its connection serves anyone else.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestDb, act, assign, hub_order, stores, timing};
use crossdock_db::orders::Actor;
use crossdock_db::{CommitSink, Committed, OutboxMessage, OutboxRow, Relayed};
use crossdock_model::StatusAction;

/// A publisher that only keeps what it is handed (and says whether it runs nudges).
#[derive(Default)]
struct Kept {
    runs_nudges: bool,
    handed: Mutex<Vec<Committed>>,
}

impl CommitSink for Kept {
    fn committed(&self, committed: Committed) {
        self.handed.lock().expect("lock").push(committed);
    }

    fn runs_nudges(&self) -> bool {
        self.runs_nudges
    }
}

impl Kept {
    /// The rows of each commit handed over since the last take.
    fn take(&self) -> Vec<Vec<OutboxRow>> {
        self.take_all()
            .into_iter()
            .map(|committed| committed.rows)
            .collect()
    }

    fn take_all(&self) -> Vec<Committed> {
        std::mem::take(&mut *self.handed.lock().expect("lock"))
    }
}

fn kinds(messages: impl IntoIterator<Item = OutboxMessage>) -> Vec<String> {
    messages.into_iter().map(|message| message.kind).collect()
}

/// A status change's sync nudge is an outbox row, unless the process runs the nudges of
/// its commits itself: then it reaches the sink after the commit with no row behind it
/// (the pending sync it names is the transaction's own row, which the sync sweeper finds
/// if the nudge never runs).
#[tokio::test]
async fn a_sync_nudge_needs_no_outbox_row_where_the_process_runs_it() {
    let test = TestDb::new().await;
    let store = stores(&test.db, 1).await.remove(0);
    for runs_nudges in [false, true] {
        let kept = Arc::new(Kept {
            runs_nudges,
            ..Kept::default()
        });
        let db = test.db.clone().publishing_commits(kept.clone());
        let id = hub_order(&db, &format!("nudged-{runs_nudges}")).await;
        assign(&db, id, &store).await;
        kept.take_all();
        act(
            &db,
            id,
            StatusAction::Accept { prep_minutes: 5 },
            &Actor::Store(store.clone()),
        )
        .await;
        let handed = kept.take_all();
        assert_eq!(handed.len(), 1, "one commit, one hand-over");
        let Committed { rows, nudges } = handed.into_iter().next().expect("one");
        let mut rows = kinds(rows.into_iter().map(|row| row.message));
        rows.sort();
        let nudges = kinds(nudges);
        let client = test.db.pool().get().await.expect("connection");
        let nudge_rows: i64 = client
            .query_one("SELECT count(*) FROM outbox WHERE kind = 'sync'", &[])
            .await
            .expect("count")
            .get(0);
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM status_syncs WHERE order_id = $1 AND state = 'pending'",
                &[&id.as_uuid()],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(pending, 1, "the pending sync is written either way");
        if runs_nudges {
            assert_eq!(
                (rows, nudges),
                (vec!["order.accepted".to_owned()], vec!["sync".to_owned()])
            );
            assert_eq!(
                nudge_rows, 1,
                "no row for this nudge (the one before stays)"
            );
        } else {
            assert_eq!(
                (rows, nudges),
                (vec!["order.accepted".to_owned(), "sync".to_owned()], vec![])
            );
            assert_eq!(nudge_rows, 1, "the nudge's row");
        }
    }
    test.drop().await;
}

#[tokio::test]
async fn a_commit_hands_its_rows_to_the_publisher_and_the_relay_leaves_them_for_its_grace() {
    let test = TestDb::new().await;
    let kept = Arc::new(Kept::default());
    let db = test.db.clone().publishing_commits(kept.clone());

    // An order recorded through a handle with a publisher: its one message is handed over
    // once, after the commit.
    hub_order(&db, "direct-1").await;
    let handed = kept.take();
    assert_eq!(handed.len(), 1, "one commit, one hand-over");
    assert_eq!(
        handed[0]
            .iter()
            .map(|row| row.message.kind.as_str())
            .collect::<Vec<_>>(),
        ["order.received"]
    );
    let id = handed[0][0].id;

    // The relay leaves it while it is younger than the grace…
    let confirmed = db
        .relay_outbox(10, Duration::from_secs(600), |rows| async move {
            panic!("nothing to claim yet: {rows:?}")
        })
        .await
        .expect("round within the grace");
    assert_eq!(confirmed, 0);
    // …but an order recorded through a handle without a publisher is the relay's at once.
    hub_order(&test.db, "relayed-1").await;
    assert!(kept.take().is_empty(), "not this publisher's");
    let mut claimed = Vec::new();
    db.relay_outbox(10, Duration::from_secs(600), |rows| {
        claimed.extend(rows.into_iter().map(|row| row.message.kind));
        async { Relayed::default() }
    })
    .await
    .expect("round");
    assert_eq!(claimed, ["order.received"]);

    // Past the grace (its committer died, or could not publish), the relay takes it too.
    db.relay_outbox(10, Duration::ZERO, |rows| async move {
        assert_eq!(rows[0].id, id, "oldest first");
        assert_eq!(rows.len(), 2);
        Relayed::default()
    })
    .await
    .expect("round past the grace");

    // Confirmed, the publisher forgets it: once.
    assert_eq!(db.forget_outbox(&[id]).await.expect("forget"), 1);
    assert_eq!(db.forget_outbox(&[id]).await.expect("forget"), 0);
    assert_eq!(db.outbox_backlog().await.expect("backlog"), 1);
    test.drop().await;
}

#[tokio::test]
async fn refused_rows_are_set_aside_and_never_block_the_rows_behind_them() {
    let test = TestDb::new().await;
    let first = test.insert("unroutable").await;
    let second = test.insert("order.received").await;
    let third = test.insert("sync.own_app").await;
    let db = &test.db;

    // The broker refuses the oldest row: it is set aside with the reason.
    let confirmed = db
        .relay_outbox(1, Duration::ZERO, |rows| async move {
            assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
            Relayed {
                confirmed: vec![],
                refused: vec![(first, "no queue is bound".into())],
            }
        })
        .await
        .expect("round 1");
    assert_eq!(confirmed, 0);
    assert_eq!(db.outbox_backlog().await.expect("backlog"), 2);

    // The next round starts behind it; an unknown outcome leaves the row for later.
    db.relay_outbox(1, Duration::ZERO, |rows| async move {
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [second]);
        Relayed::default()
    })
    .await
    .expect("round 2");
    let confirmed = db
        .relay_outbox(10, Duration::ZERO, |rows| async move {
            assert_eq!(
                rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                [second, third]
            );
            Relayed {
                confirmed: vec![second, third],
                refused: vec![],
            }
        })
        .await
        .expect("round 3");
    assert_eq!(confirmed, 2);
    assert_eq!(db.outbox_backlog().await.expect("backlog"), 0);
    assert_eq!(
        db.refused_outbox().await.expect("refused"),
        [(
            first,
            "unroutable".to_owned(),
            "no queue is bound".to_owned()
        )],
        "kept for HQ, not deleted"
    );
    test.drop().await;
}

/// The outbox's rows live for milliseconds: its index holds mostly entries of deleted rows
/// until a vacuum. The relay's claim (`claim_outbox`, V8) passes each of them once and
/// marks it, so the next claim does not read them again (a bitmap scan, which the planner
/// chose on a table its statistics called nearly empty, read them all every time).
#[tokio::test]
async fn a_claim_does_not_read_the_entries_of_deleted_rows_again() {
    let test = TestDb::new().await;
    let mut client = test.db.pool().get().await.expect("client");
    client
        .batch_execute(
            // A session whose planner would take a bitmap scan (as it did with the
            // statistics of a table it thought empty) and no vacuum meanwhile.
            "SET enable_indexscan = off;
             ALTER TABLE outbox SET (autovacuum_enabled = false);
             INSERT INTO outbox (routing_key, kind, message_id, body)
                  SELECT 'order.received', 'test', 'm' || n, '{}' FROM generate_series(1, 5000) n;
             DELETE FROM outbox;",
        )
        .await
        .expect("5,000 rows come and go");
    let waiting = test.insert("order.received").await;
    // The deleted rows are dead to every transaction only once none that began before
    // the delete is still open anywhere on the server (a snapshot's horizon counts the
    // other databases' transactions too: tests run side by side). Until then a claim
    // passes them without marking their entries, and the next reads them again.
    let after_delete: i64 = client
        .query_one("SELECT pg_current_xact_id()::text::bigint", &[])
        .await
        .expect("a transaction id")
        .get(0);
    let started = std::time::Instant::now();
    loop {
        let oldest_open: i64 = client
            .query_one(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
                &[],
            )
            .await
            .expect("the oldest open transaction")
            .get(0);
        if oldest_open > after_delete {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "a transaction older than the delete stayed open for 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Index entries a claim reads: this backend's count, not yet flushed, before and after.
    let mut claim = async || {
        let tx = client.transaction().await.expect("transaction");
        let entries_read = async || -> i64 {
            tx.query_one(
                "SELECT pg_stat_get_xact_tuples_returned('outbox_pending'::regclass)",
                &[],
            )
            .await
            .expect("entries read")
            .get(0)
        };
        let before = entries_read().await;
        let claimed: Vec<i64> = tx
            .query("SELECT id FROM claim_outbox(100, interval '0')", &[])
            .await
            .expect("claim")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(claimed, [waiting]);
        let read = entries_read().await - before;
        tx.rollback().await.expect("rollback");
        read
    };
    let first = claim().await;
    assert!(
        first > 5000,
        "the first claim passes the deleted rows: {first}"
    );
    let second = claim().await;
    assert!(
        second < 100,
        "the second claim read {second} index entries: the deleted rows' again"
    );
    drop(client);
    test.drop().await;
}

/// A transaction's `BEGIN` and, when it is left without a commit, its `ROLLBACK` are sent
/// without waiting for their answers. Routing an order that already has a store locks it,
/// then returns without committing: the pool's one connection must be out of that
/// transaction (its lock let go) before it runs the next statement.
#[tokio::test]
async fn a_transaction_left_without_a_commit_is_over_before_its_connection_is_used_again() {
    let test = TestDb::with_pool_size(1).await;
    let db = &test.db;
    let store = stores(db, 1).await.remove(0);
    let id = hub_order(db, "routed-twice").await;
    assign(db, id, &store).await;
    let again = db
        .route_order(id, &timing(), |_| unreachable!("the order has its store"))
        .await
        .expect("route again");
    assert_eq!(
        again,
        crossdock_db::routing::Assignment::AlreadyAssigned(store)
    );
    let client = db.pool().get().await.expect("the one connection");
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_locks
              WHERE pid = pg_backend_pid() AND locktype = 'transactionid'",
            &[],
        )
        .await
        .expect("locks");
    assert_eq!(
        row.get::<_, i64>(0),
        0,
        "the next statement runs in a transaction of its own, not in the routing's"
    );
    drop(client);
    test.drop().await;
}
