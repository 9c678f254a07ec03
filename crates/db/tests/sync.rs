//! The status sync bookkeeping on PostgreSQL: which orders the sweeper is given to run,
//! and the sweeper's runs stepping aside for a run under way.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{TestDb, act, assign, new_order, record, stores};
use crossdock_db::orders::Actor;
use crossdock_db::sync::{PendingSync, SyncPush, SyncResult};
use crossdock_model::{Order, OrderId, StatusAction, StoreId};
use tokio::sync::Notify;

/// How long the tests' nudges have to run a new sync before the sweeper lists it.
const GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A platform that refuses every push for a while: each order's retry comes after the
/// seconds its external id names after its `@` ("<name>@<seconds>", negative for a retry
/// already due).
struct RetryAfter;

#[async_trait::async_trait]
impl SyncPush for RetryAfter {
    async fn push(&self, order: &Order, _: &PendingSync) -> SyncResult {
        let seconds: i64 = order
            .order
            .external_order_id
            .rsplit_once('@')
            .and_then(|(_, s)| s.parse().ok())
            .expect("the test names the wait");
        SyncResult::Retry {
            error: "429 Too Many Requests".into(),
            at: Utc::now() + Duration::seconds(seconds),
        }
    }
}

/// An order of `channel` its store accepted and readied: two syncs waiting for their nudge.
/// `accept_by`: the platform's deadline for its answer.
async fn accepted_and_ready(
    db: &crossdock_db::Db,
    store: &StoreId,
    channel: &str,
    external: &str,
    accept_by: Option<DateTime<Utc>>,
) -> OrderId {
    let id = record(db, &new_order(channel, external, None, None, accept_by)).await;
    assign(db, id, store).await;
    let by_store = Actor::Store(store.clone());
    act(db, id, StatusAction::Accept { prep_minutes: 5 }, &by_store).await;
    act(db, id, StatusAction::Ready, &by_store).await;
    id
}

/// An order its store accepted and readied, whose accept the platform refused for now:
/// the accept backs off for `wait` seconds, the ready waits behind it.
async fn refused_for(
    db: &crossdock_db::Db,
    store: &StoreId,
    channel: &str,
    name: &str,
    wait: i64,
    accept_by: Option<DateTime<Utc>>,
) -> OrderId {
    let external = format!("{name}@{wait}");
    let id = accepted_and_ready(db, store, channel, &external, accept_by).await;
    let run = db.run_syncs(id, &RetryAfter).await.expect("sync run");
    assert_eq!(run.pushed, 0);
    id
}

/// The channels the tests' orders come from.
fn channels() -> Vec<String> {
    vec!["own_app".into(), "google".into()]
}

/// The order ids of the sweeper's list: at most `limit`, `per_channel` of each channel,
/// new syncs left to their nudges for `grace`.
async fn due(
    db: &crossdock_db::Db,
    limit: i64,
    per_channel: i64,
    grace: std::time::Duration,
) -> Vec<OrderId> {
    db.due_syncs(&channels(), limit, per_channel, grace)
        .await
        .expect("due syncs")
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// After an outage, the sweeper's list holds the orders whose next push is due, the
/// longest due first. An order whose accept is still backing off is not on it, though the
/// ready behind the accept was written long ago: listing it would spend the sweeper's turns
/// on runs that push nothing, and thousands of them would crowd out the orders that can
/// move. A channel far behind cannot fill the list either. Syncs never tried are left to
/// their nudges until the grace has passed.
#[tokio::test]
async fn the_sweeper_is_given_orders_whose_next_push_is_due_longest_due_first() {
    let test = TestDb::new().await;
    let db = &test.db;
    let store = stores(db, 1).await.remove(0);
    let backing_off = refused_for(db, &store, "own_app", "backing-off", 3600, None).await;
    let due_recently = refused_for(db, &store, "own_app", "recently", -1, None).await;
    let due_longest = refused_for(db, &store, "own_app", "longest", -30, None).await;
    let other_channel = refused_for(db, &store, "google", "google", -5, None).await;
    let fresh = accepted_and_ready(db, &store, "own_app", "fresh", None).await;
    let listed = due(db, 10, 10, GRACE).await;
    assert!(
        !listed.contains(&backing_off),
        "the order whose accept backs off is not listed for the ready behind it"
    );
    assert_eq!(
        listed,
        [due_longest, other_channel, due_recently],
        "only orders whose oldest pending sync is due, longest due first; not {fresh} yet"
    );
    assert_eq!(
        due(db, 1, 10, GRACE).await,
        [due_longest],
        "the limit keeps the longest due"
    );
    assert_eq!(
        due(db, 10, 1, GRACE).await,
        [due_longest, other_channel],
        "one order of each channel: the own app's two longest due leave room for Google's"
    );
    let no_grace = due(db, 10, 10, std::time::Duration::ZERO).await;
    assert!(
        no_grace.contains(&fresh),
        "a sync its nudge did not run in time is the sweeper's"
    );
    assert!(!no_grace.contains(&backing_off));
    // A status recorded while the order's accept backs off waits for it too.
    act(
        db,
        backing_off,
        StatusAction::Complete,
        &Actor::Store(store.clone()),
    )
    .await;
    let no_grace = due(db, 10, 10, std::time::Duration::ZERO).await;
    assert!(
        !no_grace.contains(&backing_off),
        "the completion is not due before the accept ahead of it"
    );
    test.drop().await;
}

/// An answer the platform awaits by its deadline (the accept of an order with
/// `accept_by`) is swept ahead of every other due sync of its channel, the soonest
/// deadline first, however long the others have been due: past the deadline the platform
/// drops the order, while a ready or a late retry loses nothing by waiting a moment. An
/// answer whose deadline has passed waits its turn like any other.
#[tokio::test]
async fn answers_due_by_a_platform_deadline_are_swept_first_soonest_first() {
    let test = TestDb::new().await;
    let db = &test.db;
    let store = stores(db, 1).await.remove(0);
    let in_a = |seconds| Some(Utc::now() + Duration::seconds(seconds));
    let long_due = refused_for(db, &store, "own_app", "long-due", -60, None).await;
    let expired = refused_for(db, &store, "own_app", "expired", -5, in_a(60)).await;
    // Its deadline passes while the accept backs off.
    db.pool()
        .get()
        .await
        .expect("client")
        .execute(
            "UPDATE status_syncs SET due_by = now() - interval '10 seconds' WHERE order_id = $1",
            &[&expired.as_uuid()],
        )
        .await
        .expect("deadline passed");
    let answer_later = refused_for(db, &store, "own_app", "later", -1, in_a(170)).await;
    let answer_soon = refused_for(db, &store, "own_app", "soon", -1, in_a(60)).await;
    let other_channel = refused_for(db, &store, "google", "google", -30, None).await;
    let listed = due(db, 10, 10, GRACE).await;
    assert_eq!(
        listed,
        [answer_soon, answer_later, long_due, other_channel, expired],
        "answers before their deadline first, soonest first; then the longest due"
    );
    assert_eq!(
        due(db, 10, 2, GRACE).await,
        [answer_soon, answer_later, other_channel],
        "a channel's few are its most urgent"
    );
    test.drop().await;
}

/// A platform that holds every push until the test lets it go, and says when one arrived.
#[derive(Default)]
struct Held {
    arrived: Notify,
    release: Notify,
}

#[async_trait::async_trait]
impl SyncPush for Held {
    async fn push(&self, _: &Order, _: &PendingSync) -> SyncResult {
        self.arrived.notify_one();
        self.release.notified().await;
        SyncResult::Delivered {
            detail: "200".into(),
        }
    }
}

/// While a nudged run is pushing an order, the sweeper's run of it steps aside at once
/// instead of holding a turn and a connection until the push ends; once the run is over,
/// the sweeper runs it.
#[tokio::test]
async fn the_sweepers_run_steps_aside_while_another_run_holds_the_order() {
    let test = TestDb::new().await;
    let db = test.db.clone();
    let store = stores(&db, 1).await.remove(0);
    let id = accepted_and_ready(&db, &store, "own_app", "held", None).await;
    let platform = Arc::new(Held::default());
    let nudged = tokio::spawn({
        let (db, platform) = (db.clone(), platform.clone());
        async move { db.run_syncs(id, platform.as_ref()).await }
    });
    platform.arrived.notified().await;
    let swept = db.try_run_syncs(id, platform.as_ref()).await.expect("run");
    assert_eq!(swept, None, "the order is another run's");
    platform.release.notify_one();
    platform.arrived.notified().await;
    platform.release.notify_one();
    let run = nudged.await.expect("nudged run").expect("sync run");
    assert_eq!(
        run.pushed, 2,
        "the nudged run pushed the accept and the ready"
    );
    // A run's unlock is sent without waiting for its answer: the order is free again
    // once the server has read it, a moment after the run returned.
    let started = std::time::Instant::now();
    let swept = loop {
        if let Some(run) = db.try_run_syncs(id, platform.as_ref()).await.expect("run") {
            break run;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the order stayed held after its run returned"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!(swept, Default::default(), "free again, and nothing left");
    test.drop().await;
}
