//! What the database tests share: a fresh migrated database per test, outbox routes for a
//! database used without a broker, the sample chain's stores, and orders recorded as
//! their channels' requests would record them and moved on by status actions.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crossdock_db::ingest::RawRecord;
use crossdock_db::orders::Actor;
use crossdock_db::routing::AcceptTiming;
use crossdock_db::scratch::ScratchDatabase;
use crossdock_db::{Db, DbConfig, OutboxMessage, Routes};
use crossdock_model::{
    ChainFile, ChannelId, Currency, Customer, Fulfillment, FulfillmentKind, NewOrder, Order,
    OrderId, Payment, StatusAction, StoreId, Timing, Totals,
};
use serde_json::json;

const CHAIN: &str = include_str!("../../../../fixtures/chain/chain.json");

/// Routes for a database used without a broker: every message is named after its kind
/// (a store's names its order and store in its body).
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
    fn to_store(&self, store: &StoreId, order_id: OrderId, kind: &str) -> OutboxMessage {
        OutboxMessage {
            body: json!({ "order_id": order_id, "store_id": store }),
            ..message(kind)
        }
    }
    fn store_status(&self, _: &StoreId, _: OrderId, kind: &str) -> OutboxMessage {
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
    database: ScratchDatabase,
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb::with_pool_size(2).await
    }

    /// A fresh database whose pool holds at most `pool_size` connections (1: every
    /// statement of the test runs on one session).
    pub async fn with_pool_size(pool_size: usize) -> TestDb {
        let database = ScratchDatabase::create().await.expect("create database");
        Db::migrate(&database.url).await.expect("migrate");
        let config = DbConfig {
            url: database.url.clone(),
            pool_size,
        };
        let db = Db::connect(&config, Arc::new(Named))
            .await
            .expect("connect");
        TestDb { db, database }
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
        self.database.remove().await.expect("drop database");
    }
}

/// Registers the first `n` stores of the sample chain; returns their ids.
pub async fn stores(db: &Db, n: usize) -> Vec<StoreId> {
    let chain: ChainFile = serde_json::from_str(CHAIN).expect("chain file");
    assert!(chain.stores.len() >= n, "the sample chain has {n} stores");
    let mut ids = Vec::new();
    for profile in chain.stores.iter().take(n) {
        db.upsert_store(profile).await.expect("upsert store");
        ids.push(profile.id.clone());
    }
    ids
}

/// A store's time to accept of five minutes, and thirty seconds kept for telling the
/// platform no.
pub fn timing() -> AcceptTiming {
    AcceptTiming {
        store_window: Duration::minutes(5),
        margin: Duration::seconds(30),
    }
}

/// A pickup order of `channel`, with the display code `code` if any; `store_ref`: the
/// store the channel names (`None`: the hub chooses); `accept_by`: the platform's
/// acceptance deadline.
pub fn new_order(
    channel: &str,
    external: &str,
    code: Option<&str>,
    store_ref: Option<&str>,
    accept_by: Option<DateTime<Utc>>,
) -> NewOrder {
    let usd = Currency::parse("USD").expect("currency");
    NewOrder {
        channel: ChannelId::parse(channel).expect("channel"),
        external_order_id: external.into(),
        display_code: code.map(str::to_owned),
        channel_store_ref: store_ref.map(str::to_owned),
        brand: Some("crossdock-pizza".into()),
        platform_brand: None,
        placed_at: Utc::now(),
        fulfillment: Fulfillment {
            kind: FulfillmentKind::Pickup,
            delivered_by: None,
            address: None,
            timing: Timing::Asap,
            promised_at: None,
            accept_by,
        },
        customer: Customer::default(),
        notes: None,
        lines: vec![],
        totals: Totals::zero(usd),
        payment: Payment::Prepaid,
        channel_data: serde_json::Value::Null,
    }
}

/// Records `order` as its channel's request would (it must be new); returns its id.
pub async fn record(db: &Db, order: &NewOrder) -> OrderId {
    let key = format!("create-{}", order.external_order_id);
    let raw = RawRecord {
        channel: order.channel.as_str(),
        dedupe_key: &key,
        received_at: Utc::now(),
        headers: json!({}),
        body: b"{}",
    };
    let recorded = db.record_order(&raw, order, &[]).await.expect("record");
    assert!(
        !recorded.is_duplicate(),
        "{} is new",
        order.external_order_id
    );
    recorded.order_id().expect("an order id")
}

/// Records an own-app order the hub chooses the store for, with no platform deadline.
pub async fn hub_order(db: &Db, external: &str) -> OrderId {
    record(db, &new_order("own_app", external, None, None, None)).await
}

/// Routes the order to `store` (no capacity check) with [`timing`]; it must be assigned.
pub async fn assign(db: &Db, id: OrderId, store: &StoreId) {
    use crossdock_db::routing::{Assignment, Routing};
    let assignment = db
        .route_order(id, &timing(), |_| {
            (
                Routing::To {
                    store: store.clone(),
                    capacity: None,
                },
                json!({ "rule": "test" }),
            )
        })
        .await
        .expect("route");
    assert!(
        matches!(assignment, Assignment::Assigned { .. }),
        "{assignment:?}"
    );
}

/// Applies `action` to the order as `actor`; returns the order after it. Panics when the
/// change is refused.
/// One store queue hand-over, a batch of one.
pub async fn hand_over(db: &Db, id: OrderId, store: &StoreId) -> crossdock_db::orders::Handover {
    let recorded = db
        .record_store_deliveries(&[(id, store.clone())])
        .await
        .expect("hand-over");
    assert_eq!(recorded.len(), 1, "one answer per hand-over");
    recorded[0]
}

pub async fn act(db: &Db, id: OrderId, action: StatusAction, actor: &Actor) -> Order {
    db.change_status(id, &action, actor)
        .await
        .unwrap_or_else(|e| panic!("{action:?} by {actor:?}: {e}"))
}

/// The orders waiting for HQ (a store the channel named declined them or let them time
/// out), longest-waiting first: the first kinds of HQ's attention list.
pub async fn waiting_for_hq(db: &crossdock_db::Db) -> Vec<crossdock_db::hq::Attention> {
    use crossdock_db::hq::AttentionKind;
    db.attention_list(50, chrono::Utc::now())
        .await
        .expect("attention list")
        .into_iter()
        .filter(|item| matches!(item.kind, AttentionKind::Declined | AttentionKind::TimedOut))
        .collect()
}
