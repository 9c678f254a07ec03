//! HQ's dashboard as the database answers it, against a real PostgreSQL (a fresh database
//! per test): the summary's counts by status, channel and store over a time window; the
//! attention list's kinds (declined, timed out, parked push, no store — and the deadline
//! guard's rejections left out) in their order, and its counts; search by display code,
//! channel order id and order id, scoped to a store, served by migration V3's indexes;
//! replaying an order's parked status pushes (back to pending, an event, a nudge, pushed
//! again in order; nothing left the second time); and replaying a set-aside outbox message.

mod common;

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use common::{TestDb, act, hub_order, new_order, record, stores, timing};
use crossdock_db::hq::{AttentionKind, ReplayError};
use crossdock_db::orders::Actor;
use crossdock_db::routing::{AcceptTiming, Assignment, Decline, Declined, Routing};
use crossdock_db::sync::{PendingSync, SyncPush, SyncResult};
use crossdock_db::{Db, Relayed};
use crossdock_model::{EventKind, EventSource, Order, OrderId, Status, StatusAction, StoreId};
use serde_json::json;

/// Routes an order to `store` (room for fifty orders) with `timing`; it must be assigned.
async fn route_to(db: &Db, id: OrderId, store: &StoreId, timing: &AcceptTiming) {
    let assignment = db
        .route_order(id, timing, |_| {
            (
                Routing::To {
                    store: store.clone(),
                    capacity: Some(50),
                },
                json!({ "rule": "test", "store": store }),
            )
        })
        .await
        .expect("route");
    assert!(
        matches!(assignment, Assignment::Assigned { .. }),
        "{assignment:?}"
    );
}

/// Lets the router find no store for the order: it is rejected back to its channel.
async fn route_nowhere(db: &Db, id: OrderId, reason: &str) {
    let assignment = db
        .route_order(id, &timing(), |_| {
            (
                Routing::Nowhere {
                    reason: reason.into(),
                },
                json!({ "rule": "test", "store": null }),
            )
        })
        .await
        .expect("route");
    assert_eq!(assignment, Assignment::Finished(Status::Rejected));
}

/// Sets an order's received time `hours` back.
async fn received_hours_ago(db: &Db, id: OrderId, hours: i64) {
    let client = db.pool().get().await.expect("client");
    client
        .execute(
            "UPDATE orders SET received_at = now() - make_interval(hours => $2::int) WHERE id = $1",
            &[&id.as_uuid(), &i32::try_from(hours).expect("hours")],
        )
        .await
        .expect("move received_at");
}

/// The kinds of the outbox rows, oldest first.
async fn outbox_kinds(db: &Db) -> Vec<String> {
    let client = db.pool().get().await.expect("client");
    client
        .query("SELECT kind FROM outbox ORDER BY id", &[])
        .await
        .expect("outbox")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// A platform that refuses every push for good, then (once `heal`ed) takes them,
/// remembering the event ids it was given, in order.
#[derive(Default)]
struct Platform {
    healed: Mutex<bool>,
    pushed: Mutex<Vec<i64>>,
}

impl Platform {
    fn heal(&self) {
        *self.healed.lock().expect("lock") = true;
    }

    fn pushed(&self) -> Vec<i64> {
        self.pushed.lock().expect("lock").clone()
    }
}

#[async_trait]
impl SyncPush for Platform {
    async fn push(&self, _: &Order, sync: &PendingSync) -> SyncResult {
        if *self.healed.lock().expect("lock") {
            self.pushed.lock().expect("lock").push(sync.event_id);
            SyncResult::Delivered {
                detail: "200".into(),
            }
        } else {
            SyncResult::Park {
                error: "refused by the platform: 400 unknown order".into(),
            }
        }
    }
}

#[tokio::test]
async fn the_summary_counts_orders_and_what_waits_for_hq() {
    let test = TestDb::new().await;
    let db = &test.db;
    let ids = stores(db, 3).await;
    let (a, b) = (&ids[0], &ids[1]);

    // At store a: one waiting to be accepted, one accepted, one completed.
    let waiting = hub_order(db, "sum-1").await;
    route_to(db, waiting, a, &timing()).await;
    let accepted = hub_order(db, "sum-2").await;
    route_to(db, accepted, a, &timing()).await;
    act(
        db,
        accepted,
        StatusAction::Accept { prep_minutes: 5 },
        &Actor::Store(a.clone()),
    )
    .await;
    let done = hub_order(db, "sum-3").await;
    route_to(db, done, a, &timing()).await;
    for action in [
        StatusAction::Accept { prep_minutes: 5 },
        StatusAction::Complete,
    ] {
        act(db, done, action, &Actor::Store(a.clone())).await;
    }
    // At store b, an Uber Eats order the customer cancelled.
    let cancelled = record(db, &new_order("uber_eats", "sum-4", None, None, None)).await;
    route_to(db, cancelled, b, &timing()).await;
    act(
        db,
        cancelled,
        StatusAction::Cancel {
            reason: "customer changed their mind".into(),
        },
        &Actor::Channel,
    )
    .await;
    // No store for one; one not routed yet; one from two days ago.
    let nowhere = hub_order(db, "sum-5").await;
    route_nowhere(db, nowhere, "no store delivers there").await;
    let _unrouted = hub_order(db, "sum-6").await;
    let old = hub_order(db, "sum-7").await;
    route_to(db, old, b, &timing()).await;
    received_hours_ago(db, old, 48).await;

    let counts = db
        .order_counts(Utc::now() - Duration::hours(24))
        .await
        .expect("counts");
    let by_status: Vec<(&str, i64)> = counts
        .by_status
        .iter()
        .map(|(s, n)| (s.as_str(), *n))
        .collect();
    assert_eq!(
        by_status,
        [
            ("received", 2),
            ("accepted", 1),
            ("preparing", 0),
            ("ready", 0),
            ("picked_up", 0),
            ("delivered", 0),
            ("completed", 1),
            ("rejected", 1),
            ("cancelled", 1),
            ("failed", 0),
        ],
        "every status, the two-day-old order not counted"
    );
    let by_channel: Vec<_> = counts
        .by_channel
        .iter()
        .map(|c| (c.channel.as_str(), c.total, c.open, c.rejected, c.cancelled))
        .collect();
    assert_eq!(
        by_channel,
        [("own_app", 5, 3, 1, 0), ("uber_eats", 1, 0, 0, 1)]
    );
    let at_a = counts.by_store.get(a).copied().expect("store a");
    assert_eq!((at_a.total, at_a.open, at_a.waiting), (3, 2, 1));
    let at_b = counts.by_store.get(b).copied().expect("store b");
    assert_eq!(
        (at_b.total, at_b.open, at_b.waiting),
        (1, 0, 0),
        "the old order is outside the window"
    );
    assert_eq!(counts.by_store.len(), 2, "{:?}", counts.by_store);
    assert_eq!(counts.unassigned, 1, "the order not routed yet");

    let week = db
        .order_counts(Utc::now() - Duration::hours(72))
        .await
        .expect("counts");
    let at_b = week.by_store.get(b).copied().expect("store b");
    assert_eq!((at_b.total, at_b.open, at_b.waiting), (2, 1, 1));

    let waiting_for_hq = db
        .attention_counts(Utc::now() - Duration::hours(24))
        .await
        .expect("attention counts");
    assert_eq!(
        (
            waiting_for_hq.declined,
            waiting_for_hq.timed_out,
            waiting_for_hq.no_store,
            waiting_for_hq.sync_parked,
            waiting_for_hq.set_aside
        ),
        (0, 0, 1, 0, 0)
    );
    test.drop().await;
}

#[tokio::test]
async fn the_attention_list_holds_every_kind_waiting_orders_first() {
    let test = TestDb::new().await;
    let db = &test.db;
    let ids = stores(db, 2).await;
    let a = &ids[0];

    // The channel named store a, which rejects one order and lets another time out.
    let declined = record(
        db,
        &new_order("uber_eats", "att-1", None, Some("NYC-001"), None),
    )
    .await;
    route_to(db, declined, a, &timing()).await;
    assert_eq!(
        db.decline(declined, &Decline::Rejected(a.clone()), "oven broken")
            .await
            .expect("decline"),
        Declined::NeedsAttention
    );
    let late = record(
        db,
        &new_order("uber_eats", "att-2", None, Some("NYC-001"), None),
    )
    .await;
    let no_window = AcceptTiming {
        store_window: Duration::zero(),
        margin: Duration::seconds(30),
    };
    route_to(db, late, a, &no_window).await;
    assert_eq!(
        db.decline(late, &Decline::TimedOut(a.clone()), "no answer")
            .await
            .expect("decline"),
        Declined::NeedsAttention
    );
    // A status push the platform refuses: parked.
    let parked = hub_order(db, "att-3").await;
    route_to(db, parked, a, &timing()).await;
    act(
        db,
        parked,
        StatusAction::Accept { prep_minutes: 5 },
        &Actor::Store(a.clone()),
    )
    .await;
    db.run_syncs(parked, &Platform::default())
        .await
        .expect("sync run");
    // No store for one; the deadline guard rejects another that waited at its store.
    let nowhere = hub_order(db, "att-4").await;
    route_nowhere(db, nowhere, "closed: no store is open").await;
    let guarded = record(
        db,
        &new_order(
            "uber_eats",
            "att-5",
            None,
            Some("NYC-001"),
            Some(Utc::now() + Duration::minutes(10)),
        ),
    )
    .await;
    route_to(db, guarded, a, &timing()).await;
    assert!(
        db.reject_before_deadline(guarded, Duration::hours(1))
            .await
            .expect("deadline guard"),
        "the guard rejects it"
    );

    let since = Utc::now() - Duration::hours(24);
    let list = db.attention_list(100, since).await.expect("attention");
    let seen: Vec<(AttentionKind, OrderId)> = list.iter().map(|i| (i.kind, i.order.id)).collect();
    assert_eq!(
        seen,
        [
            (AttentionKind::Declined, declined),
            (AttentionKind::TimedOut, late),
            (AttentionKind::SyncParked, parked),
            (AttentionKind::NoStore, nowhere),
        ],
        "waiting orders first, longest-waiting first; the deadline guard's rejection is not a store missing"
    );
    assert!(list[0].reason.contains("oven broken"), "{:?}", list[0]);
    assert_eq!(list[0].declined_by, vec![a.clone()]);
    assert!(
        list[1].reason.contains("not accepted in time"),
        "{:?}",
        list[1]
    );
    assert!(
        list[2].reason.contains("refused by the platform"),
        "{:?}",
        list[2]
    );
    assert_eq!(list[3].reason, "closed: no store is open");
    assert!(
        list.windows(2)
            .all(|w| w[0].kind != w[1].kind || w[0].since <= w[1].since)
    );

    let counts = db.attention_counts(since).await.expect("counts");
    assert_eq!(
        (
            counts.declined,
            counts.timed_out,
            counts.no_store,
            counts.sync_parked,
            counts.set_aside
        ),
        (1, 1, 1, 1, 0)
    );
    // The limit holds over every kind; orders no store took age out of the list.
    assert_eq!(
        db.attention_list(3, since).await.expect("attention").len(),
        3
    );
    let later = Utc::now() + Duration::seconds(1);
    let kinds: Vec<AttentionKind> = db
        .attention_list(100, later)
        .await
        .expect("attention")
        .iter()
        .map(|i| i.kind)
        .collect();
    assert!(!kinds.contains(&AttentionKind::NoStore), "{kinds:?}");
    assert_eq!(
        db.attention_counts(later).await.expect("counts").no_store,
        0
    );
    test.drop().await;
}

#[tokio::test]
async fn search_finds_orders_by_code_channel_id_and_uuid_through_the_indexes() {
    let test = TestDb::new().await;
    let db = &test.db;
    let ids = stores(db, 2).await;
    let (a, b) = (&ids[0], &ids[1]);
    let found = record(
        db,
        &new_order("uber_eats", "UE-Order-7f3a", Some("A1B2C"), None, None),
    )
    .await;
    route_to(db, found, a, &timing()).await;
    let other = record(
        db,
        &new_order("own_app", "app-991", Some("ZZ9"), None, None),
    )
    .await;
    route_to(db, other, b, &timing()).await;

    let search = |store: Option<&StoreId>, q: &str| {
        let store = store.cloned();
        let q = q.to_owned();
        async move {
            db.search_orders(store.as_ref(), &q, None, 50)
                .await
                .expect("search")
                .iter()
                .map(|o| o.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search(None, "a1b2c").await, [found], "by code, any case");
    assert_eq!(
        search(None, " ue-ORDER-7F3A ").await,
        [found],
        "by channel id"
    );
    assert_eq!(
        search(None, &found.to_string().to_uppercase()).await,
        [found],
        "by order id"
    );
    assert_eq!(search(None, "A1B2").await, [], "a part is not a match");
    assert_eq!(search(None, "nothing").await, []);
    assert_eq!(search(Some(a), "A1B2C").await, [found], "the store's own");
    assert_eq!(search(Some(b), "A1B2C").await, [], "not another store's");
    assert_eq!(search(Some(b), "zz9").await, [other]);
    assert_eq!(
        db.search_orders(None, "A1B2C", Some(Status::Accepted), 50)
            .await
            .expect("search"),
        [],
        "and of a status"
    );

    // With enough orders for the planner to care, each lookup is an index probe.
    let client = db.pool().get().await.expect("client");
    client
        .batch_execute(
            "INSERT INTO orders (id, channel, external_order_id, status, doc, received_at, updated_at)
             SELECT gen_random_uuid(), 'own_app', 'filler-' || i, 'completed',
                    jsonb_build_object('display_code', 'F' || i), now(), now()
             FROM generate_series(1, 5000) AS i;
             ANALYZE orders;",
        )
        .await
        .expect("filler orders");
    drop(client);
    let plan = db.explain_search("A1B2C").await.expect("explain");
    for index in ["orders_by_display_code", "orders_by_external_id_lower"] {
        assert!(plan.contains(index), "{index} unused:\n{plan}");
    }
    assert!(!plan.contains("Seq Scan"), "{plan}");
    let plan = db
        .explain_search(&found.to_string())
        .await
        .expect("explain");
    assert!(plan.contains("orders_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    test.drop().await;
}

#[tokio::test]
async fn replaying_parked_pushes_sends_them_again_in_order() {
    let test = TestDb::new().await;
    let db = &test.db;
    let ids = stores(db, 1).await;
    let a = &ids[0];
    let id = record(
        db,
        &new_order("own_app", "replay-1", Some("R2D2"), None, None),
    )
    .await;
    route_to(db, id, a, &timing()).await;
    for action in [
        StatusAction::Accept { prep_minutes: 5 },
        StatusAction::Ready,
    ] {
        act(db, id, action, &Actor::Store(a.clone())).await;
    }
    let platform = Platform::default();
    db.run_syncs(id, &platform).await.expect("sync run");

    let parked = db.parked_syncs(10).await.expect("parked");
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert!(parked.iter().all(|p| p.order_id == id
        && p.channel == "own_app"
        && p.display_code.as_deref() == Some("R2D2")
        && p.store_id.as_ref() == Some(a)
        && p.attempts == 1));
    assert_eq!(parked[0].action, StatusAction::Accept { prep_minutes: 5 });
    assert_eq!(parked[1].action, StatusAction::Ready);
    assert!(
        parked[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("refused by the platform")),
        "{parked:?}"
    );
    let parked_events: Vec<i64> = parked.iter().map(|p| p.event_id).collect();
    let nudges = |kinds: Vec<String>| kinds.iter().filter(|k| *k == "sync").count();
    let before = nudges(outbox_kinds(db).await);

    let replayed = db.replay_parked(id).await.expect("replay");
    assert_eq!(replayed.order_id, id);
    assert_eq!(replayed.replayed, 2);
    assert_eq!(replayed.event_ids, parked_events);
    let states = db.sync_states(id).await.expect("sync states");
    assert_eq!(
        states
            .iter()
            .map(|s| (
                s.event_id,
                s.state.as_str(),
                s.attempts,
                s.last_error.clone()
            ))
            .collect::<Vec<_>>(),
        [
            (parked_events[0], "pending", 0, None),
            (parked_events[1], "pending", 0, None)
        ]
    );
    let event = db
        .events(id)
        .await
        .expect("events")
        .pop()
        .expect("an event");
    assert_eq!(
        (event.kind, event.source),
        (EventKind::SyncReplayed, EventSource::Hq)
    );
    assert_eq!(event.data, json!({ "event_ids": parked_events }));
    assert_eq!(
        nudges(outbox_kinds(db).await),
        before + 1,
        "a nudge for the sync worker"
    );
    assert!(db.parked_syncs(10).await.expect("parked").is_empty());

    // Nothing is parked now; an unknown order is not found.
    assert!(matches!(
        db.replay_parked(id).await,
        Err(ReplayError::NothingParked(o)) if o == id
    ));
    assert!(matches!(
        db.replay_parked(OrderId::new()).await,
        Err(ReplayError::NotFound(_))
    ));

    // The sync worker pushes them again, oldest first.
    platform.heal();
    let run = db.run_syncs(id, &platform).await.expect("sync run");
    assert_eq!(run.pushed, 2);
    assert_eq!(platform.pushed(), parked_events);
    let states: Vec<String> = db
        .sync_states(id)
        .await
        .expect("states")
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, ["delivered", "delivered"]);
    test.drop().await;
}

#[tokio::test]
async fn a_set_aside_message_goes_back_to_the_relay() {
    let test = TestDb::new().await;
    let db = &test.db;
    let refused = test.insert("nowhere.at.all").await;
    let fine = test.insert("order.received").await;
    db.relay_outbox(10, std::time::Duration::ZERO, |rows| async move {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        assert_eq!(ids, [refused, fine]);
        Relayed {
            confirmed: vec![fine],
            refused: vec![(refused, "NO_ROUTE: no queue is bound".into())],
        }
    })
    .await
    .expect("relay");

    let aside = db.set_aside(10).await.expect("set aside");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        (
            aside[0].id,
            aside[0].routing_key.as_str(),
            aside[0].kind.as_str(),
            aside[0].refusal.as_deref()
        ),
        (
            refused,
            "nowhere.at.all",
            "test",
            Some("NO_ROUTE: no queue is bound")
        )
    );
    assert!(aside[0].refused_at.is_some());
    assert_eq!(
        db.attention_counts(Utc::now())
            .await
            .expect("counts")
            .set_aside,
        1
    );

    let replayed = db
        .replay_set_aside(refused)
        .await
        .expect("replay")
        .expect("a set-aside row");
    assert_eq!(replayed.id, refused);
    assert_eq!(
        replayed.refusal.as_deref(),
        Some("NO_ROUTE: no queue is bound"),
        "the answer says what it was refused for"
    );
    assert!(db.set_aside(10).await.expect("set aside").is_empty());
    assert_eq!(
        db.replay_set_aside(refused).await.expect("replay"),
        None,
        "no longer set aside"
    );
    assert_eq!(
        db.replay_set_aside(fine).await.expect("replay"),
        None,
        "gone"
    );
    let pending = test.insert("sync.own_app").await;
    assert_eq!(
        db.replay_set_aside(pending).await.expect("replay"),
        None,
        "a message never refused is not replayed"
    );

    // The relay claims it again.
    let claimed = Mutex::new(Vec::new());
    db.relay_outbox(10, std::time::Duration::ZERO, |rows| {
        *claimed.lock().expect("lock") = rows.iter().map(|r| r.id).collect::<Vec<_>>();
        let confirmed = rows.iter().map(|r| r.id).collect();
        async move {
            Relayed {
                confirmed,
                refused: vec![],
            }
        }
    })
    .await
    .expect("relay");
    assert_eq!(*claimed.lock().expect("lock"), [refused, pending]);
    test.drop().await;
}
