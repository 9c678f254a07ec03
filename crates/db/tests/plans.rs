//! How the pool's connections plan their prepared statements, against a real PostgreSQL.

mod common;

use common::TestDb;

/// Every statement is prepared once per connection. A generic plan, cached for the
/// connection's life, would be kept until the next ANALYZE: one made while `orders` was
/// empty looks an order up by its store (`orders_by_store`) instead of by its id, and reads
/// every order of the store once the table has grown (seen in the benchmark's soak, where
/// autovacuum was off). The pool's connections plan each execution with its values.
#[tokio::test]
async fn a_statement_prepared_on_an_empty_table_is_planned_again_once_it_has_grown() {
    let test = TestDb::new().await;
    let client = test.db.pool().get().await.expect("client");
    client
        .batch_execute(
            "PREPARE handed_over(uuid, text) AS
                 SELECT 1 FROM orders WHERE id = $1 AND store_id = $2;
             EXECUTE handed_over('00000000-0000-0000-0000-000000000001', 'NYC-001');
             EXECUTE handed_over('00000000-0000-0000-0000-000000000002', 'NYC-001');
             EXECUTE handed_over('00000000-0000-0000-0000-000000000003', 'NYC-001');
             EXECUTE handed_over('00000000-0000-0000-0000-000000000004', 'NYC-001');
             EXECUTE handed_over('00000000-0000-0000-0000-000000000005', 'NYC-001');
             EXECUTE handed_over('00000000-0000-0000-0000-000000000006', 'NYC-001');
             INSERT INTO stores (id, name, brand, city, timezone, currency, lat, lng, profile)
                  VALUES ('NYC-001', 'Test', 'test', 'New York', 'America/New_York', 'USD', 0, 0, '{}');
             INSERT INTO orders (id, channel, external_order_id, store_id, status, doc, received_at, updated_at)
                  SELECT gen_random_uuid(), 'own_app', 'o' || n, 'NYC-001', 'accepted', '{}', now(), now()
                    FROM generate_series(1, 3000) n;",
        )
        .await
        .expect("an empty table, then 3,000 orders of one store");
    let plan: Vec<String> = client
        .query(
            "EXPLAIN EXECUTE handed_over('00000000-0000-0000-0000-000000000007', 'NYC-001')",
            &[],
        )
        .await
        .expect("explain")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("orders_pkey"),
        "the order is found by its id, not among its store's orders:\n{plan}"
    );
    drop(client);
    test.drop().await;
}
