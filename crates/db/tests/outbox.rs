//! The outbox relay's claim against a real PostgreSQL: confirmed rows are deleted, refused
//! rows are set aside and never block the rows behind them, unknown outcomes stay.

mod common;

use common::TestDb;
use crossdock_db::Relayed;

#[tokio::test]
async fn refused_rows_are_set_aside_and_never_block_the_rows_behind_them() {
    let test = TestDb::new().await;
    let first = test.insert("unroutable").await;
    let second = test.insert("order.received").await;
    let third = test.insert("sync.own_app").await;
    let db = &test.db;

    // The broker refuses the oldest row: it is set aside with the reason.
    let confirmed = db
        .relay_outbox(1, |rows| async move {
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
    db.relay_outbox(1, |rows| async move {
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), [second]);
        Relayed::default()
    })
    .await
    .expect("round 2");
    let confirmed = db
        .relay_outbox(10, |rows| async move {
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
            .query("SELECT id FROM claim_outbox(100)", &[])
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
