//! Recording what platforms send, where the order of their requests is not the order of
//! events: a cancellation before the order it cancels, one racing the order's first
//! delivery, and the same cancellation twice. Each order must end cancelled, never live.
//! And an order's first events in their order, and a request or an order that comes
//! again.

mod common;

use chrono::Utc;
use common::{TestDb, new_order};
use crossdock_db::Db;
use crossdock_db::ingest::{OrderRequest, RawRecord, Recorded};
use crossdock_model::{EventKind, Flag, Money, NewOrder, Status, StatusAction};
use serde_json::json;

fn raw<'a>(channel: &'a str, key: &'a str) -> RawRecord<'a> {
    RawRecord {
        channel,
        dedupe_key: key,
        received_at: Utc::now(),
        headers: json!({}),
        body: b"{}",
    }
}

async fn place(db: &Db, order: &NewOrder) -> Recorded {
    let key = format!("create-{}", order.external_order_id);
    db.record_order(&raw(order.channel.as_str(), &key), order, &[])
        .await
        .expect("record the order")
}

async fn cancel(db: &Db, channel: &str, external: &str, key: &str) -> Recorded {
    db.record_cancellation(&raw(channel, key), external, Some("customer cancelled"))
        .await
        .expect("record the cancellation")
}

/// The order's status and whether a tombstone for it is left.
async fn outcome(db: &Db, channel: &str, external: &str) -> (Option<String>, bool) {
    let client = db.pool().get().await.expect("client");
    let status = client
        .query_opt(
            "SELECT status FROM orders WHERE channel = $1 AND external_order_id = $2",
            &[&channel, &external],
        )
        .await
        .expect("order")
        .map(|row| row.get(0));
    let tombstone = client
        .query_opt(
            "SELECT 1 FROM cancellations WHERE channel = $1 AND external_order_id = $2",
            &[&channel, &external],
        )
        .await
        .expect("tombstone")
        .is_some();
    (status, tombstone)
}

/// How many `order.received` messages (routing work) the outbox holds.
async fn routing_messages(db: &Db) -> i64 {
    let client = db.pool().get().await.expect("client");
    client
        .query_one(
            "SELECT count(*) FROM outbox WHERE kind = 'order.received'",
            &[],
        )
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn a_cancellation_before_its_order_and_twice_leaves_the_order_cancelled_and_unrouted() {
    let test = TestDb::new().await;
    let db = &test.db;
    let first = cancel(db, "doordash", "dd-early", "cancel-1").await;
    assert_eq!(first, Recorded::New { order_id: None });
    // The same cancellation again under another key (a platform that numbers each send).
    let second = cancel(db, "doordash", "dd-early", "cancel-2").await;
    assert_eq!(second, Recorded::New { order_id: None });
    // And byte for byte again: a replay.
    assert!(
        cancel(db, "doordash", "dd-early", "cancel-1")
            .await
            .is_duplicate()
    );
    let recorded = place(
        db,
        &new_order("doordash", "dd-early", None, Some("NYC-001"), None),
    )
    .await;
    assert!(!recorded.is_duplicate());
    assert_eq!(
        outcome(db, "doordash", "dd-early").await,
        (Some(Status::Cancelled.as_str().to_owned()), false)
    );
    assert_eq!(
        routing_messages(db).await,
        0,
        "a cancelled order is not routed"
    );
    // A cancellation after the order is taken, twice: the second changes nothing.
    place(
        db,
        &new_order("doordash", "dd-late", None, Some("NYC-001"), None),
    )
    .await;
    cancel(db, "doordash", "dd-late", "cancel-3").await;
    cancel(db, "doordash", "dd-late", "cancel-4").await;
    assert_eq!(
        outcome(db, "doordash", "dd-late").await,
        (Some(Status::Cancelled.as_str().to_owned()), false)
    );
    test.drop().await;
}

/// A platform's cancellation and the order's first delivery in flight at once (the order
/// webhook was retried, the customer cancelled meanwhile): whichever commits first, the
/// order ends cancelled. Before the fix the cancellation could miss the order being
/// inserted and leave a tombstone that nothing would ever read, while the order went live.
#[tokio::test]
async fn a_cancellation_racing_its_order_still_cancels_it() {
    let test = TestDb::new().await;
    let db = &test.db;
    let pairs = 150;
    for i in 0..pairs {
        let external = format!("race-{i}");
        let order = new_order("uber_eats", &external, None, Some("NYC-001"), None);
        let cancel_key = format!("cancel-{i}");
        let (placed, cancelled) = tokio::join!(
            place(db, &order),
            cancel(db, "uber_eats", &external, &cancel_key)
        );
        assert!(!placed.is_duplicate() && !cancelled.is_duplicate());
        let (status, tombstone) = outcome(db, "uber_eats", &external).await;
        assert_eq!(
            (status.as_deref(), tombstone),
            (Some("cancelled"), false),
            "pair {i}: the order must end cancelled with no tombstone left"
        );
    }
    test.drop().await;
}

/// A platform that takes the accept and refuses everything after it, as DoorDash does
/// once its customer cancelled ("400 Order has been cancelled").
struct CancelledOnThePlatform;

#[async_trait::async_trait]
impl crossdock_db::sync::SyncPush for CancelledOnThePlatform {
    async fn push(
        &self,
        _: &crossdock_model::Order,
        sync: &crossdock_db::sync::PendingSync,
    ) -> crossdock_db::sync::SyncResult {
        use crossdock_db::sync::SyncResult;
        if matches!(sync.change.action, StatusAction::Accept { .. }) {
            SyncResult::Delivered {
                detail: "200".into(),
            }
        } else {
            SyncResult::Park {
                error: "refused by the platform: 400 Order has been cancelled".into(),
            }
        }
    }
}

/// The platform cancelled an order while the hub was pushing the store's progress: the
/// push it refused was parked, then the cancellation arrived. The order is cancelled and
/// its refused pushes are moot: skipped, not left parked on HQ's attention list.
#[tokio::test]
async fn a_platform_cancellation_settles_the_pushes_the_platform_refused_for_it() {
    use crossdock_db::orders::Actor;

    let test = TestDb::new().await;
    let db = &test.db;
    let store = common::stores(db, 1).await.remove(0);
    let placed = place(
        db,
        &new_order("doordash", "dd-moot", None, Some("NYC-001"), None),
    )
    .await;
    let id = placed.order_id().expect("an order");
    common::assign(db, id, &store).await;
    let by_store = Actor::Store(store.clone());
    common::act(db, id, StatusAction::Accept { prep_minutes: 5 }, &by_store).await;
    common::act(db, id, StatusAction::Ready, &by_store).await;
    db.run_syncs(id, &CancelledOnThePlatform)
        .await
        .expect("sync run");
    let states = |syncs: Vec<(StatusAction, String, i32, Option<String>)>| {
        syncs
            .into_iter()
            .map(|(_, state, _, _)| state)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(db.syncs(id).await.expect("syncs")),
        ["delivered", "parked"],
        "the ready the platform refused is parked"
    );
    cancel(db, "doordash", "dd-moot", "cancel-moot").await;
    assert_eq!(
        outcome(db, "doordash", "dd-moot").await.0.as_deref(),
        Some("cancelled")
    );
    assert_eq!(
        states(db.syncs(id).await.expect("syncs")),
        ["delivered", "skipped"],
        "the refused push is moot once the platform's cancellation is recorded"
    );
    let waiting = db
        .attention_list(50, Utc::now() - chrono::Duration::hours(1))
        .await
        .expect("attention");
    assert!(
        waiting.iter().all(|item| item.order.id != id),
        "nothing about the cancelled order waits for HQ"
    );
    test.drop().await;
}

/// Routes the order to `store`, which accepts it, readies it and completes it.
async fn worked_at(db: &Db, id: crossdock_model::OrderId, store: &crossdock_model::StoreId) {
    use crossdock_db::orders::Actor;
    common::assign(db, id, store).await;
    let by_store = Actor::Store(store.clone());
    common::act(db, id, StatusAction::Accept { prep_minutes: 5 }, &by_store).await;
    common::act(db, id, StatusAction::Ready, &by_store).await;
    common::act(db, id, StatusAction::Complete, &by_store).await;
}

fn sync_states(syncs: Vec<(StatusAction, String, i32, Option<String>)>) -> Vec<String> {
    syncs.into_iter().map(|(_, state, _, _)| state).collect()
}

/// The customer cancelled on the platform after the store had completed the order, before
/// the hub pushed the store's statuses: the order stays completed (the store did the work),
/// and the statuses the platform would refuse for a cancelled order are not pushed and not
/// left for HQ.
#[tokio::test]
async fn a_cancellation_after_the_order_is_finished_settles_its_unpushed_statuses() {
    let test = TestDb::new().await;
    let db = &test.db;
    let store = common::stores(db, 1).await.remove(0);
    let id = place(
        db,
        &new_order("eleme", "el-late", None, Some("NYC-001"), None),
    )
    .await
    .order_id()
    .expect("an order");
    worked_at(db, id, &store).await;
    assert_eq!(
        sync_states(db.syncs(id).await.expect("syncs")),
        ["pending", "pending", "pending"]
    );
    cancel(db, "eleme", "el-late", "cancel-late").await;
    assert_eq!(
        outcome(db, "eleme", "el-late").await.0.as_deref(),
        Some("completed"),
        "a finished order stays as it is"
    );
    assert_eq!(
        sync_states(db.syncs(id).await.expect("syncs")),
        ["skipped", "skipped", "skipped"]
    );
    test.drop().await;
}

/// A platform that cancels the order while the hub's push is on its way, then refuses the
/// push: the cancellation is recorded during the push.
struct CancelsDuringThePush {
    db: Db,
}

#[async_trait::async_trait]
impl crossdock_db::sync::SyncPush for CancelsDuringThePush {
    async fn push(
        &self,
        order: &crossdock_model::Order,
        _: &crossdock_db::sync::PendingSync,
    ) -> crossdock_db::sync::SyncResult {
        cancel(
            &self.db,
            order.order.channel.as_str(),
            &order.order.external_order_id,
            "cancel-during",
        )
        .await;
        crossdock_db::sync::SyncResult::Park {
            error: "refused by the platform: the order is cancelled".into(),
        }
    }
}

/// The platform's cancellation lands while a push of the order is in flight, and the push
/// then fails: the cancellation settled the push as moot, and the failure must not undo
/// that and park it for HQ.
#[tokio::test]
async fn a_push_that_fails_after_the_cancellation_settled_it_is_not_parked() {
    let test = TestDb::new().await;
    let db = &test.db;
    let store = common::stores(db, 1).await.remove(0);
    let id = place(
        db,
        &new_order("eleme", "el-during", None, Some("NYC-001"), None),
    )
    .await
    .order_id()
    .expect("an order");
    worked_at(db, id, &store).await;
    db.run_syncs(id, &CancelsDuringThePush { db: db.clone() })
        .await
        .expect("sync run");
    assert_eq!(
        sync_states(db.syncs(id).await.expect("syncs")),
        ["skipped", "skipped", "skipped"]
    );
    test.drop().await;
}

/// An order's history reads "received" first, then its flags in their order (the ingest
/// sends its statements together; the events keep their order among them).
#[tokio::test]
async fn an_orders_history_starts_with_received_then_its_flags() {
    let test = TestDb::new().await;
    let db = &test.db;
    let order = new_order("own_app", "flagged-1", None, None, None);
    let usd = crossdock_model::Currency::parse("USD").expect("currency");
    let flags = [
        Flag::TotalsMismatch {
            expected: Money::new(1000, usd),
            reported: Money::new(1100, usd),
        },
        Flag::SubtotalMismatch {
            lines: Money::new(900, usd),
            reported: Money::new(950, usd),
        },
    ];
    let recorded = db
        .record_order(&raw("own_app", "create-flagged-1"), &order, &flags)
        .await
        .expect("record the order");
    let id = recorded.order_id().expect("an order id");
    let kinds: Vec<(EventKind, Option<String>)> = db
        .events(id)
        .await
        .expect("events")
        .into_iter()
        .map(|event| (event.kind, event.reason))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Received, Some("from own_app".to_owned())),
            (EventKind::Flagged, Some("totals_mismatch".to_owned())),
            (EventKind::Flagged, Some("subtotal_mismatch".to_owned())),
        ]
    );
    test.drop().await;
}

/// A request recorded again (the platform's retry) records nothing and answers with the
/// order it made; a second request for an order already stored, under its own key, is
/// kept in the inbox, linked to that order, and makes nothing new either.
#[tokio::test]
async fn a_replayed_request_and_a_second_one_for_a_known_order_make_nothing_new() {
    let test = TestDb::new().await;
    let db = &test.db;
    let order = new_order("own_app", "again-1", None, None, None);
    let first = place(db, &order).await;
    let Recorded::New { order_id: Some(id) } = first else {
        panic!("a new order: {first:?}");
    };
    assert_eq!(
        place(db, &order).await,
        Recorded::Duplicate { order_id: Some(id) },
        "the same request again"
    );
    let second_key = db
        .record_order(&raw("own_app", "again-1-resent"), &order, &[])
        .await
        .expect("record the order again");
    assert_eq!(
        second_key,
        Recorded::Duplicate { order_id: Some(id) },
        "the same order under another key"
    );
    let client = db.pool().get().await.expect("client");
    let counts = client
        .query_one(
            "SELECT (SELECT count(*) FROM orders),
                    (SELECT count(*) FROM order_events),
                    (SELECT count(*) FROM inbox),
                    (SELECT count(*) FROM inbox WHERE order_id = $1)",
            &[&id.as_uuid()],
        )
        .await
        .expect("counts");
    let counts: (i64, i64, i64, i64) = (counts.get(0), counts.get(1), counts.get(2), counts.get(3));
    assert_eq!(
        counts,
        (1, 1, 2, 2),
        "one order with its one event; both requests kept, both linked to it"
    );
    drop(client);
    assert_eq!(routing_messages(db).await, 1, "one routing");
    test.drop().await;
}

/// A batch of order requests is recorded as if each came alone, one after another in the
/// batch's order: a new order stored once, by its first request; a replay (of a request
/// recorded before, or of one earlier in the batch) and a request for an order already
/// stored make nothing new, each answering with its order; an order cancelled before it
/// arrived is stored cancelled and not routed; flags follow "received". Then a batch the
/// database refuses: the request it refuses fails alone, the others are recorded.
#[tokio::test]
async fn a_batch_of_order_requests_records_each_as_if_alone() {
    let test = TestDb::new().await;
    let db = &test.db;
    let known = new_order("own_app", "batch-known", None, None, None);
    let Recorded::New {
        order_id: Some(known_id),
    } = place(db, &known).await
    else {
        panic!("the known order is new at first");
    };
    cancel(db, "doordash", "batch-cancelled", "batch-cancel-1").await;
    let first = new_order("own_app", "batch-new", None, None, None);
    let cancelled = new_order("doordash", "batch-cancelled", None, None, None);
    let flagged = new_order("own_app", "batch-flagged", None, None, None);
    let usd = crossdock_model::Currency::parse("USD").expect("currency");
    let flags = [Flag::TotalsMismatch {
        expected: Money::new(1000, usd),
        reported: Money::new(1100, usd),
    }];
    let raws = [
        raw("own_app", "batch-new-1"),
        raw("own_app", "create-batch-known"),
        raw("own_app", "batch-known-2"),
        raw("own_app", "batch-new-2"),
        raw("own_app", "batch-new-1"),
        raw("doordash", "batch-cancelled-1"),
        raw("own_app", "batch-flagged-1"),
    ];
    let orders = [
        (&first, &[][..]),
        (&known, &[]),
        (&known, &[]),
        (&first, &[]),
        (&first, &[]),
        (&cancelled, &[]),
        (&flagged, &flags[..]),
    ];
    let requests: Vec<OrderRequest<'_>> = raws
        .iter()
        .zip(orders)
        .map(|(raw, (order, flags))| OrderRequest { raw, order, flags })
        .collect();
    let routed_before = routing_messages(db).await;
    let answers: Vec<Recorded> = db
        .record_orders(&requests)
        .await
        .expect("the batch")
        .into_iter()
        .map(|answer| answer.expect("each request recorded"))
        .collect();
    let first_id = answers[0].order_id().expect("the new order's id");
    let cancelled_id = answers[5].order_id().expect("the cancelled order's id");
    let flagged_id = answers[6].order_id().expect("the flagged order's id");
    let duplicate = |id| Recorded::Duplicate { order_id: Some(id) };
    assert_eq!(
        answers,
        [
            Recorded::New {
                order_id: Some(first_id)
            },
            duplicate(known_id),
            duplicate(known_id),
            duplicate(first_id),
            duplicate(first_id),
            Recorded::New {
                order_id: Some(cancelled_id)
            },
            Recorded::New {
                order_id: Some(flagged_id)
            },
        ]
    );
    let history = |id| async move {
        db.events(id)
            .await
            .expect("events")
            .into_iter()
            .map(|event| event.kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(history(first_id).await, [EventKind::Received]);
    assert_eq!(history(known_id).await, [EventKind::Received]);
    assert_eq!(
        history(flagged_id).await,
        [EventKind::Received, EventKind::Flagged]
    );
    assert_eq!(
        outcome(db, "doordash", "batch-cancelled").await,
        (Some("cancelled".to_owned()), false),
        "stored cancelled, its tombstone read"
    );
    assert_eq!(
        routing_messages(db).await - routed_before,
        2,
        "the two live new orders are routed, the cancelled one is not"
    );
    let client = db.pool().get().await.expect("client");
    let links: Vec<(String, Option<uuid::Uuid>)> = client
        .query(
            "SELECT dedupe_key, order_id FROM inbox WHERE dedupe_key LIKE '%batch%'
             ORDER BY dedupe_key COLLATE \"C\"",
            &[],
        )
        .await
        .expect("inbox")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let link = |key: &str, id: crossdock_model::OrderId| (key.to_owned(), Some(id.as_uuid()));
    assert_eq!(
        links,
        [
            ("batch-cancel-1".to_owned(), None),
            link("batch-cancelled-1", cancelled_id),
            link("batch-flagged-1", flagged_id),
            link("batch-known-2", known_id),
            link("batch-new-1", first_id),
            link("batch-new-2", first_id),
            link("create-batch-known", known_id),
        ],
        "each request kept once, linked to its order"
    );
    let orders: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(orders, 4, "each order stored once");

    // The database refuses one order of the next batch: it alone fails.
    client
        .batch_execute(
            "CREATE FUNCTION refuse_order() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
             CREATE TRIGGER refuse_order BEFORE INSERT ON orders FOR EACH ROW
             WHEN (NEW.external_order_id = 'batch-refused') EXECUTE FUNCTION refuse_order();",
        )
        .await
        .expect("a trigger that refuses one order");
    drop(client);
    let refused = new_order("own_app", "batch-refused", None, None, None);
    let after = new_order("own_app", "batch-after", None, None, None);
    let raws = [
        raw("own_app", "batch-refused-1"),
        raw("own_app", "batch-after-1"),
    ];
    let requests = [
        OrderRequest {
            raw: &raws[0],
            order: &refused,
            flags: &[],
        },
        OrderRequest {
            raw: &raws[1],
            order: &after,
            flags: &[],
        },
    ];
    // Alone, the refusal is the request's answer, not the batch's error (the orders desk
    // would try a batch's requests again one by one).
    let alone = db.record_orders(&requests[..1]).await.expect("an answer");
    let refusal = alone[0].as_ref().expect_err("the refused order fails");
    assert!(
        refusal.to_string().contains("refused for the test"),
        "the database's reason: {refusal}"
    );
    let answers = db.record_orders(&requests).await.expect("answers");
    let refusal = answers[0].as_ref().expect_err("the refused order fails");
    assert!(
        refusal.to_string().contains("refused for the test"),
        "the database's reason: {refusal}"
    );
    let after_id = answers[1]
        .as_ref()
        .expect("the other order is recorded")
        .order_id()
        .expect("its id");
    assert_eq!(history(after_id).await, [EventKind::Received]);
    assert_eq!(
        outcome(db, "own_app", "batch-refused").await,
        (None, false),
        "nothing of the refused order"
    );
    test.drop().await;
}
