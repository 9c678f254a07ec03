//! How the statements of an order's loop are planned, against a real PostgreSQL.

mod common;

use std::collections::HashSet;

use chrono::{Duration, Utc};
use common::{TestDb, assign, hub_order, stores};
use crossdock_db::orders::Actor;
use crossdock_db::routing::{Decline, Declined};
use crossdock_db::sync::{PendingSync, SyncPush, SyncResult};
use crossdock_model::{Order, OrderId, StatusAction, StoreId};
use serde_json::Value;

/// A platform that refuses an order's accept the first time, for now (its retry due at
/// once), and takes every other push.
struct RefusesTheFirstAccept;

#[async_trait::async_trait]
impl SyncPush for RefusesTheFirstAccept {
    async fn push(&self, _: &Order, sync: &PendingSync) -> SyncResult {
        if sync.attempts == 0 && matches!(sync.change.action, StatusAction::Accept { .. }) {
            return SyncResult::Retry {
                error: "503 Service Unavailable".into(),
                at: Utc::now() - Duration::seconds(1),
            };
        }
        SyncResult::Delivered {
            detail: "200 OK".into(),
        }
    }
}

const TOKEN: &[u8] = b"hash of the store's token";

/// One order's loop through the database, as the hub's stages run it: recorded, routed,
/// declined by its store and routed again, handed to its store, accepted (the store
/// found by its token) and readied, read back, its statuses pushed to the platform (the
/// accept refused once, then retried), its outbox rows forgotten once published.
async fn an_orders_loop(db: &crossdock_db::Db, store: &StoreId, external: &str) -> OrderId {
    let id = hub_order(db, external).await;
    assign(db, id, store).await;
    let declined = db
        .decline(id, &Decline::Rejected(store.clone()), "too busy")
        .await
        .expect("decline");
    assert_eq!(declined, Declined::Rerouted);
    assign(db, id, store).await;
    db.record_store_deliveries(&[(id, store.clone())])
        .await
        .expect("hand-over");
    let by = db
        .store_for_token(TOKEN)
        .await
        .expect("token lookup")
        .expect("the store of the token");
    db.order(id, Some(&by))
        .await
        .expect("read")
        .expect("the store's order");
    for action in [
        StatusAction::Accept { prep_minutes: 5 },
        StatusAction::Ready,
    ] {
        db.change_status(id, &action, &Actor::Store(by.clone()))
            .await
            .expect("the store's action");
    }
    let refused = db
        .run_syncs(id, &RefusesTheFirstAccept)
        .await
        .expect("sync run");
    assert!(refused.waiting && refused.pushed == 0, "{refused:?}");
    let retried = db
        .run_syncs(id, &RefusesTheFirstAccept)
        .await
        .expect("sync run");
    assert_eq!(retried.pushed, 2, "{retried:?}");
    let client = db.pool().get().await.expect("client");
    let ids: Vec<i64> = client
        .query("SELECT id FROM outbox", &[])
        .await
        .expect("outbox")
        .iter()
        .map(|row| row.get(0))
        .collect();
    drop(client);
    db.forget_outbox(&ids).await.expect("forget");
    id
}

/// Every scan node of an `EXPLAIN (FORMAT JSON)` plan: (node type, relation, index).
fn scans(plan: &Value, found: &mut Vec<(String, String, String)>) {
    let field = |name: &str| plan.get(name).and_then(Value::as_str).unwrap_or_default();
    let node = field("Node Type");
    if node != "ModifyTable" && !field("Relation Name").is_empty() {
        found.push((
            node.to_owned(),
            field("Relation Name").to_owned(),
            field("Index Name").to_owned(),
        ));
    }
    if node == "Bitmap Index Scan" {
        found.push((
            node.to_owned(),
            String::new(),
            field("Index Name").to_owned(),
        ));
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        scans(child, found);
    }
}

/// The pool's connections prepare each statement once and let PostgreSQL's plan cache
/// keep a generic plan of it (planned without its values, for the connection's life).
/// Such a plan is made when the connection first runs the statement, maybe while the
/// tables are empty, and is kept until the next ANALYZE; with autovacuum off, never
/// replaced. So every statement of an order's loop must find its rows by a unique key or
/// by their order, whatever the tables held when it was planned: one made while `orders`
/// was empty once looked an order up among its store's orders (`orders_by_store`), and
/// read all of them once the table had grown. The test forces generic plans from the
/// first execution on an empty database, grows the tables, runs the loop again on the
/// cached plans and reads each one. (Triggers' and foreign keys' statements are cached
/// too; each looks one row up by its primary key.)
#[tokio::test]
async fn every_statement_of_an_orders_loop_finds_its_rows_by_key_whatever_the_tables_held_when_planned()
 {
    let test = TestDb::with_pool_size(1).await;
    let db = &test.db;
    let store = stores(db, 1).await.remove(0);
    assert!(db.set_store_token(&store, TOKEN).await.expect("token"));
    let setup: HashSet<String> = {
        let client = db.pool().get().await.expect("the one connection");
        client
            .batch_execute("SET plan_cache_mode = force_generic_plan")
            .await
            .expect("generic plans from the first execution");
        client
            .query("SELECT name FROM pg_prepared_statements", &[])
            .await
            .expect("the statements of the setup")
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    an_orders_loop(db, &store, "first").await;
    {
        let client = db.pool().get().await.expect("the one connection");
        client
            .batch_execute(&format!(
                "INSERT INTO orders (id, channel, external_order_id, store_id, status, doc,
                                     received_at, updated_at)
                      SELECT gen_random_uuid(), 'own_app', 'grown-' || n, '{store}',
                             'accepted', '{{}}', now(), now()
                        FROM generate_series(1, 3000) n;
                 INSERT INTO order_events (order_id, at, source, kind)
                      SELECT id, now(), 'hub', 'received' FROM orders;
                 INSERT INTO store_deliveries (order_id, store_id, delivered_at)
                      SELECT id, store_id, now() FROM orders WHERE store_id IS NOT NULL
                      ON CONFLICT DO NOTHING;
                 INSERT INTO inbox (channel, dedupe_key, received_at, kind, headers, body)
                      SELECT channel, 'grown-' || external_order_id, now(), 'order', '{{}}', ''
                        FROM orders;"
            ))
            .await
            .expect("3,000 orders of one store, with their history");
    }
    an_orders_loop(db, &store, "second").await;

    let client = db.pool().get().await.expect("the one connection");
    let unique_or_by_order: HashSet<String> = client
        .query(
            "SELECT c.relname FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indisunique OR a.attname = 'order_id'",
            &[],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let statements = client
        .query(
            "SELECT name, statement, cardinality(parameter_types), generic_plans
               FROM pg_prepared_statements WHERE NOT from_sql",
            &[],
        )
        .await
        .expect("the connection's prepared statements");
    let statements: Vec<_> = statements
        .iter()
        .filter(|row| !setup.contains(row.get::<_, &str>(0)))
        .collect();
    assert!(
        statements.len() >= 20,
        "the loop prepared its statements: {}",
        statements.len()
    );
    let mut wrong = Vec::new();
    for row in statements {
        let (name, sql): (String, String) = (row.get(0), row.get(1));
        let params: i32 = row.get(2);
        let generic: i64 = row.get(3);
        assert!(generic > 0, "planned generically: {sql}");
        let nulls = vec!["NULL"; usize::try_from(params).expect("count")].join(", ");
        let explain = if params == 0 {
            format!("EXPLAIN (FORMAT JSON) EXECUTE {name}")
        } else {
            format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({nulls})")
        };
        let plan: Value = client
            .query_one(&explain, &[])
            .await
            .unwrap_or_else(|e| panic!("{explain}: {e}"))
            .get(0);
        let mut found = Vec::new();
        scans(&plan[0]["Plan"], &mut found);
        for (node, relation, index) in found {
            let by_key = match node.as_str() {
                "Index Scan" | "Index Only Scan" | "Bitmap Index Scan" => {
                    unique_or_by_order.contains(&index)
                }
                // A row fetched by its address, found by key in the same statement.
                "Bitmap Heap Scan" | "Tid Scan" => true,
                _ => false,
            };
            if !by_key {
                wrong.push(format!("{node} on {relation} {index}: {sql}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "scans not by a unique key or an order's id:\n{}",
        wrong.join("\n")
    );
    drop(client);
    test.drop().await;
}
