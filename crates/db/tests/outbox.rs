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
