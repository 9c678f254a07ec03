//! What the database tests share: a fresh migrated database per test, and outbox routes
//! for a database used without a broker.

#![allow(dead_code)]

use std::sync::Arc;

use crossdock_db::{Db, DbConfig, OutboxMessage, Routes};
use crossdock_model::{OrderId, StoreId};
use serde_json::json;

/// Routes for a database used without a broker: every message is named after its kind.
pub struct Named;

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
    fn reroute(&self, _: OrderId, _: usize) -> OutboxMessage {
        message("order.reroute")
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

pub struct TestDb {
    pub db: Db,
    admin: String,
    name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
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

    pub async fn insert(&self, key: &str) -> i64 {
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

    pub async fn drop(self) {
        drop(self.db);
        Db::drop_database(&self.admin, &self.name)
            .await
            .expect("drop database");
    }
}
