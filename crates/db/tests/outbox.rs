//! The outbox relay's claim against a real PostgreSQL: confirmed rows are deleted, refused
//! rows are set aside and never block the rows behind them, unknown outcomes stay.

use std::sync::Arc;

use crossdock_db::{Db, DbConfig, OutboxMessage, Relayed, Routes};
use crossdock_model::{OrderId, StoreId};
use serde_json::json;

/// Routes for a database used without a broker: every message is named after its kind.
struct Named;

fn message(kind: &str) -> OutboxMessage {
    OutboxMessage {
        routing_key: kind.into(),
        kind: kind.into(),
        message_id: kind.into(),
        body: json!({}),
    }
}

impl Routes for Named {
    fn order_received(&self, _: OrderId) -> OutboxMessage {
        message("order.received")
    }
    fn fetch(&self, _: &str, _: &str, _: serde_json::Value) -> OutboxMessage {
        message("fetch")
    }
    fn to_store(&self, _: &StoreId, _: OrderId, kind: &str) -> OutboxMessage {
        message(kind)
    }
    fn sync(&self, _: &str, _: OrderId) -> OutboxMessage {
        message("sync")
    }
    fn parked(&self, _: &str, _: OrderId, _: i64, _: serde_json::Value) -> OutboxMessage {
        message("parked")
    }
}

struct TestDb {
    db: Db,
    admin: String,
    name: String,
}

impl TestDb {
    async fn new() -> TestDb {
        let admin = std::env::var("CROSSDOCK_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://crossdock:crossdock@127.0.0.1:5432/crossdock".into());
        let name = format!(
            "crossdock_test_{}",
            &uuid::Uuid::now_v7().simple().to_string()[16..]
        );
        Db::create_database(&admin, &name)
            .await
            .expect("create database");
        let (base, _) = admin.rsplit_once('/').expect("URL with a database");
        let url = format!("{base}/{name}");
        Db::migrate(&url).await.expect("migrate");
        let db = Db::connect(&DbConfig { url, pool_size: 2 }, Arc::new(Named))
            .await
            .expect("connect");
        TestDb { db, admin, name }
    }

    async fn insert(&self, key: &str) -> i64 {
        let client = self.db.pool().get().await.expect("client");
        let row = client
            .query_one(
                "INSERT INTO outbox (routing_key, kind, message_id, body) VALUES ($1, 'test', $1, '{}') RETURNING id",
                &[&key],
            )
            .await
            .expect("insert");
        row.get(0)
    }

    async fn drop(self) {
        drop(self.db);
        Db::drop_database(&self.admin, &self.name)
            .await
            .expect("drop database");
    }
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
