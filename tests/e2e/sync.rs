//! Status sync while a platform is in trouble: a platform whose calls hang holds up only
//! its own orders' pushes, never another channel's.

use std::time::{Duration, Instant};

use crossdock_adapter_uber_eats::Generation;
use crossdock_channel::sim::Fault;
use crossdock_model::{OrderId, StatusAction};

use crate::helpers::{CountingQueue, TestHub, WAIT, sample_pickup, wait_for};

/// Places an order on the simulator of `channel` (Uber Eats or the own app) at NYC-001,
/// waits until it is routed there, and returns its hub id.
async fn routed_at_nyc_001(hub: &TestHub, channel: &str) -> OrderId {
    let (status, body, external_order_id) = match channel {
        "uber_eats" => {
            let placed = hub.uber_pickup("NYC-001").await;
            (
                placed.answer.status,
                placed.answer.body,
                placed.external_order_id,
            )
        }
        _ => {
            let placed = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
            (
                placed.answer.status,
                placed.answer.body,
                placed.external_order_id,
            )
        }
    };
    assert!((200..300).contains(&status), "{body}");
    let view = hub.routed_order(channel, &external_order_id).await;
    assert_eq!(view["store_id"], "NYC-001");
    OrderId::parse(view["id"].as_str().expect("id")).expect("order id")
}

/// Places `orders` Uber Eats orders at NYC-001, makes Uber's calls hang for two minutes,
/// has the store accept them all, and waits until `hanging` of the pushes hang.
async fn hang_uber_accepts(hub: &TestHub, orders: usize, hanging: u64) -> Vec<OrderId> {
    let token = hub.token("NYC-001").to_owned();
    let mut uber_orders = Vec::new();
    for _ in 0..orders {
        uber_orders.push(routed_at_nyc_001(hub, "uber_eats").await);
    }
    hub.uber.faults().hold(
        Fault {
            status: None,
            retry_after_s: None,
            delay: Some(Duration::from_secs(120)),
        },
        Instant::now() + Duration::from_secs(120),
    );
    for id in &uber_orders {
        hub.post_actions(&token, &id.to_string(), &["accept"]).await;
    }
    let uber_faults = hub.uber.faults();
    wait_for("Uber's calls to hang", WAIT, || {
        let played = uber_faults.played();
        async move { (played.delayed >= hanging).then_some(()) }
    })
    .await;
    uber_orders
}

/// Waits until the order's accept was pushed to its platform.
async fn accept_pushed(hub: &TestHub, order: OrderId) {
    let db = hub.db();
    wait_for("the accept to be pushed", WAIT, || async move {
        let syncs = db.syncs(order).await.ok()?;
        syncs
            .iter()
            .any(|(action, state, _, _)| {
                matches!(action, StatusAction::Accept { .. }) && state == "delivered"
            })
            .then_some(())
    })
    .await;
}

/// A sync run holds a database connection across its platform call, so the runs have a
/// pool of their own: with Uber's calls hanging on twice as many runs as the hub's pool
/// has connections, an own-app order is still recorded, routed and accepted, and the app
/// hears the accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_hanging_on_a_platform_leave_the_other_stages_their_connections() {
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.database.pool_size = 2;
        // Four turns for each channel.
        settings.sync.concurrency = 16;
    })
    .await;
    let token = hub.token("NYC-001").to_owned();
    hang_uber_accepts(&hub, 4, 4).await;

    let app_order = routed_at_nyc_001(&hub, "own_app").await;
    hub.post_actions(&token, &app_order.to_string(), &["accept"])
        .await;
    accept_pushed(&hub, app_order).await;
    hub.uber.faults().clear();
    hub.stop().await;
}

/// Uber Eats stops answering (each call hangs past the adapter's 10 s timeout) while the
/// store accepts six of its orders. With four sync turns, Uber's pushes take at most two;
/// the own app's accept, made after them, reaches the app while every one of Uber's calls
/// is still hanging: not one Uber attempt has ended, so the app's push waited for no turn
/// of theirs. Once Uber answers again, every one of its accepts reaches it, those left to
/// the sweeper included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_whose_calls_hang_holds_up_only_its_own_orders() {
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.sync.concurrency = 4;
    })
    .await;
    let token = hub.token("NYC-001").to_owned();
    let uber_orders = hang_uber_accepts(&hub, 6, 2).await;

    let app_order = routed_at_nyc_001(&hub, "own_app").await;
    hub.post_actions(&token, &app_order.to_string(), &["accept"])
        .await;
    accept_pushed(&hub, app_order).await;
    let db = hub.db();
    for id in &uber_orders {
        let syncs = db.syncs(*id).await.expect("syncs");
        assert!(
            syncs
                .iter()
                .all(|(_, state, attempts, _)| state == "pending" && *attempts == 0),
            "Uber's calls still hang, none has ended: {syncs:?}"
        );
    }
    // Uber answers again, and hears every accept: the two whose calls hung, retried, and
    // the four whose nudges found Uber's turns taken and were left to the sweeper.
    hub.uber.faults().clear();
    for id in &uber_orders {
        wait_for(
            "Uber's accepts to be pushed once it answers",
            WAIT,
            || async move {
                let syncs = db.syncs(*id).await.ok()?;
                syncs
                    .iter()
                    .all(|(_, state, _, _)| state == "delivered")
                    .then_some(())
            },
        )
        .await;
    }
    hub.stop().await;
}

/// A nudge this process cannot run at once (as many as the sync queue's consumer would
/// handle are under way here) has no outbox row behind it: it goes by the sync queue,
/// published once, and its order's status still reaches the platform. With one sync turn,
/// four nudges are run here at most: Uber's two (one call hanging, one waiting for the
/// turn) and two of the own app's (waiting for the turn) hold them all, so the third own
/// app accept's nudge is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nudge_the_process_cannot_run_at_once_goes_by_the_sync_queue() {
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.sync.concurrency = 1;
    })
    .await;
    let token = hub.token("NYC-001").to_owned();
    let published = CountingQueue::bind(&hub.infra.settings, "sync.#").await;
    let mut app_orders = Vec::new();
    for _ in 0..3 {
        app_orders.push(routed_at_nyc_001(&hub, "own_app").await);
    }
    let uber_orders = hang_uber_accepts(&hub, 2, 1).await;
    assert_eq!(
        published.count().await,
        0,
        "nudges run here are not published"
    );
    for id in &app_orders {
        hub.post_actions(&token, &id.to_string(), &["accept"]).await;
    }
    wait_for("a nudge published", WAIT, || async {
        (published.count().await >= 1).then_some(())
    })
    .await;

    hub.uber.faults().clear();
    for id in app_orders.iter().chain(&uber_orders) {
        accept_pushed(&hub, *id).await;
    }
    published.close().await;
    hub.stop().await;
}
