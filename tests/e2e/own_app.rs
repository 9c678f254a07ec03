//! Channel own_app end to end: pickup by named store, delivery by zone, out-of-zone
//! rejection, status callbacks in order with their fields.

use std::time::Duration;

use serde_json::json;

use crossdock_adapter_uber_eats::Generation;

use crate::helpers::{
    CountingQueue, PosQueue, TestHub, WAIT, chain, sample_delivery, sample_pickup, wait_for,
};

/// Independent oracle: is (lng, lat) inside the ring (ray casting)?
fn inside(ring: &[[f64; 2]], lng: f64, lat: f64) -> bool {
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let ([xi, yi], [xj, yj]) = (ring[i], ring[j]);
        if (yi > lat) != (yj > lat) && lng < (xj - xi) * (lat - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Independent oracle: great-circle distance in metres.
fn haversine(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lng2 - lng1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pickup_order_reaches_its_store_and_every_status_goes_back_to_the_app() {
    let hub = TestHub::start().await;
    let mut pos = PosQueue::bind(&hub.infra.settings, "LDN-002").await;

    let placed = hub.app.place_order(&sample_pickup("LDN-002", "GBP")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let answer: serde_json::Value = serde_json::from_str(&placed.answer.body).expect("JSON answer");
    assert_eq!(answer["status"], "received");
    assert_eq!(answer["duplicate"], false);

    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    assert_eq!(answer["order_id"], order_id.as_str());
    assert_eq!(view["store_id"], "LDN-002");
    assert_eq!(view["status"], "received");
    assert_eq!(view["totals"]["currency"], "GBP");
    assert_eq!(view["lines"][0]["plu"], "PZ-MARG-L");
    assert_eq!(view["lines"][0]["modifiers"][0]["name"], "Extra cheese");
    assert_eq!(view["flags"], json!([]), "consistent money raises no flag");
    hub.delivered_to_store(&order_id).await;
    let (kind, message) = pos
        .next(WAIT)
        .await
        .expect("the store's queue carries the order");
    assert_eq!(kind, "order.routed");
    assert_eq!(message["order_id"], order_id.as_str());

    // The store sees it; another store does not.
    let token = hub.token("LDN-002").to_owned();
    let (status, list) = hub.get(&token, "/orders").await;
    assert_eq!(status, 200);
    assert_eq!(list["orders"].as_array().map(Vec::len), Some(1));
    let (status, _) = hub
        .get(hub.token("LDN-001"), &format!("/orders/{order_id}"))
        .await;
    assert_eq!(status, 404, "a store never reads another store's order");
    let (status, list) = hub.get(hub.token("LDN-001"), "/orders").await;
    assert_eq!(
        (status, list["orders"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    for (action, body) in [
        ("accept", json!({"prep_minutes": 12})),
        ("ready", json!({})),
        ("complete", json!({})),
    ] {
        let (status, order) = hub
            .post(&token, &format!("/orders/{order_id}/{action}"), body)
            .await;
        assert_eq!(status, 200, "{action}: {order}");
    }
    let calls = hub
        .app
        .calls()
        .wait_until(WAIT, |calls| calls.len() >= 3)
        .await;
    let statuses: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.body["status"].as_str())
        .collect();
    assert_eq!(statuses, ["accepted", "ready", "completed"], "{calls:#?}");
    assert_eq!(calls[0].body["prep_minutes"], 12);
    assert_eq!(calls[0].body["order_id"], placed.external_order_id.as_str());
    assert_eq!(calls[0].body["hub_order_id"], order_id.as_str());
    assert!(
        calls.iter().all(|c| c.answered == 200),
        "the app verified every signed callback"
    );

    let (_, view) = hub
        .get(&hub.admin_token, &format!("/orders/{order_id}"))
        .await;
    assert_eq!(view["status"], "completed");
    let kinds: Vec<&str> = view["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for expected in [
        "received",
        "routed",
        "delivered_to_store",
        "status_changed",
        "sync_delivered",
    ] {
        assert!(
            kinds.contains(&expected),
            "history lacks {expected}: {kinds:?}"
        );
    }
    // The queue carries the store's own changes too (its other clients must hear of
    // them), and the order itself exactly once.
    for expected in ["order.accepted", "order.ready", "order.completed"] {
        let (kind, message) = pos.next(WAIT).await.expect("news of the store's change");
        assert_eq!(
            (kind.as_str(), &message["order_id"]),
            (expected, &json!(order_id))
        );
    }
    assert!(
        pos.next(Duration::from_millis(300)).await.is_none(),
        "delivered to the store exactly once"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_goes_to_the_nearest_store_whose_zone_contains_the_point() {
    let hub = TestHub::start().await;
    let stores = chain().stores;
    let a = stores
        .iter()
        .find(|s| s.id.as_str() == "NYC-001")
        .expect("NYC-001");
    let b = stores
        .iter()
        .find(|s| s.id.as_str() == "NYC-002")
        .expect("NYC-002");
    // A point between two stores, closer to B, inside several zones.
    let (lat, lng) = (
        a.location.lat * 0.4 + b.location.lat * 0.6,
        a.location.lng * 0.4 + b.location.lng * 0.6,
    );
    let mut covering: Vec<(f64, &str)> = stores
        .iter()
        .filter(|s| inside(&s.delivery_zone, lng, lat))
        .map(|s| {
            (
                haversine(lat, lng, s.location.lat, s.location.lng),
                s.id.as_str(),
            )
        })
        .collect();
    covering.sort_by(|x, y| x.0.total_cmp(&y.0));
    assert!(
        covering.len() >= 2,
        "the test point should lie in overlapping zones: {covering:?}"
    );
    let expected = covering[0].1;

    let placed = hub.app.place_order(&sample_delivery(lat, lng, "USD")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_eq!(view["store_id"], expected);
    let routed = view["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["kind"] == "routed"))
        .expect("a routing event")
        .clone();
    assert_eq!(routed["data"]["rule"], "by_delivery_zone");
    let considered: Vec<&str> = routed["data"]["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(|c| c["store"].as_str())
        .collect();
    let oracle: Vec<&str> = covering.iter().map(|c| c.1).collect();
    assert_eq!(
        considered, oracle,
        "every covering store considered, nearest first"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_outside_every_zone_is_rejected_back_to_the_app_with_the_reason() {
    let hub = TestHub::start().await;
    // Open water off Sandy Hook: no store delivers there.
    let placed = hub
        .app
        .place_order(&sample_delivery(40.30, -73.70, "USD"))
        .await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let calls = hub
        .app
        .calls()
        .wait_until(WAIT, |calls| !calls.is_empty())
        .await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].body["status"], "rejected");
    assert_eq!(calls[0].body["order_id"], placed.external_order_id.as_str());
    let reason = calls[0].body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("outside every store's delivery zone"),
        "{reason}"
    );
    let order = hub
        .db()
        .order_by_external("own_app", &placed.external_order_id)
        .await
        .expect("db")
        .expect("stored");
    assert_eq!(order.status.as_str(), "rejected");
    assert_eq!(order.store_id, None);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pushes_are_retried_on_5xx_and_parked_when_the_platform_refuses() {
    let hub = TestHub::start().await;
    let token = hub.token("NYC-001").to_owned();
    let db = hub.db();

    // Two 503s, then the app answers: the accept arrives after two retries.
    let first = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    let view = hub.routed_order("own_app", &first.external_order_id).await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    hub.fail_app_pushes(503, 2);
    let (status, _) = hub
        .post(
            &token,
            &format!("/orders/{order_id}/accept"),
            json!({"prep_minutes": 9}),
        )
        .await;
    assert_eq!(status, 200);
    let calls = hub
        .app
        .calls()
        .wait_until(WAIT, |calls| calls.iter().any(|c| c.answered == 200))
        .await;
    let answers: Vec<u16> = calls.iter().map(|c| c.answered).collect();
    assert_eq!(answers, [503, 503, 200]);
    hub.settled(&order_id).await;
    let id = crossdock_model::OrderId::parse(&order_id).expect("id");
    let syncs = db.syncs(id).await.expect("syncs");
    assert_eq!(
        (syncs[0].1.as_str(), syncs[0].2),
        ("delivered", 2),
        "delivered after two failed attempts"
    );

    // A 400 is permanent: the accept is parked, and the later `ready` parks behind it.
    let second = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    let view = hub.routed_order("own_app", &second.external_order_id).await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    hub.fail_app_pushes(400, 1);
    hub.post_actions(&token, &order_id, &["accept", "ready"])
        .await;
    hub.settled(&order_id).await;
    let id = crossdock_model::OrderId::parse(&order_id).expect("id");
    let syncs = db.syncs(id).await.expect("syncs");
    let states: Vec<&str> = syncs.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(states, ["parked", "parked"], "{syncs:?}");
    assert!(
        syncs[0]
            .3
            .as_deref()
            .is_some_and(|e| e.contains("refused by the platform")),
        "{syncs:?}"
    );
    let pushed_for_second = hub
        .app
        .calls()
        .all()
        .iter()
        .filter(|c| c.body["order_id"] == second.external_order_id.as_str())
        .count();
    assert_eq!(
        pushed_for_second, 1,
        "the refused accept was tried once; `ready` never went out of order"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_added_while_the_hub_runs_takes_orders_without_a_restart() {
    let hub = TestHub::start().await;
    let db = hub.db();
    let before = db.registry_version().await.expect("version");
    let existing = crossdock_model::StoreId::parse("NYC-003").expect("id");
    crossdock_hub::chain::issue_token(db, &existing)
        .await
        .expect("token");
    assert_eq!(
        db.registry_version().await.expect("version"),
        before,
        "a token is not a registry change"
    );

    let mut store = chain()
        .stores
        .into_iter()
        .find(|s| s.id == existing)
        .expect("NYC-003");
    store.id = crossdock_model::StoreId::parse("NYC-099").expect("id");
    store.name = "Crossdock Pizza Pop-up".into();
    store.channels = [("own_app".to_owned(), "NYC-099".to_owned())].into();
    db.upsert_store(&store).await.expect("store added");
    assert!(db.registry_version().await.expect("version") > before);
    let shared = &hub.handle().shared;
    wait_for("the hub to rebuild its registry", WAIT, || {
        let known = shared.registry().store(&store.id).is_some();
        async move { known.then_some(()) }
    })
    .await;

    let placed = hub.app.place_order(&sample_pickup("NYC-099", "USD")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_eq!(view["store_id"], "NYC-099");
    hub.stop().await;
}

/// Binds a count of the router's messages and a POS queue of LDN-002, places an own-app
/// pickup there and waits until the store's queue has it routed; returns both and the
/// order's view.
async fn routed_at_ldn_002(hub: &TestHub) -> (CountingQueue, PosQueue, serde_json::Value) {
    let settings = &hub.infra.settings;
    let router_messages = CountingQueue::bind(settings, "order.#").await;
    let mut pos = PosQueue::bind(settings, "LDN-002").await;
    let placed = hub.app.place_order(&sample_pickup("LDN-002", "GBP")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let (kind, message) = pos.next(WAIT).await.expect("the store's queue has it");
    assert_eq!(kind, "order.routed");
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_eq!(message["order_id"], view["id"]);
    assert_eq!(view["store_id"], "LDN-002");
    (router_messages, pos, view)
}

/// A process with the router stage routes the orders it records itself, right after their
/// commit: no `order.received` message goes through the broker. The store's message is
/// published after the routing's commit, so once it has arrived, a message for the router
/// published before it would already be on any queue bound to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_recorded_where_the_router_runs_is_routed_there_without_a_message() {
    let hub = TestHub::start().await;
    let (router_messages, _, _) = routed_at_ldn_002(&hub).await;
    assert_eq!(
        router_messages.count().await,
        0,
        "no message took the order to the router"
    );
    router_messages.close().await;
    hub.stop().await;
}

/// When the routing of an order fails where it was recorded, its outbox row is left to
/// the relay, which publishes it once past its grace: the order goes to the router
/// through the broker after all, and reaches its store once. The database refuses the
/// first routing of any order (a trigger counting attempts in a sequence, which a
/// rollback does not undo).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_routing_fails_where_it_was_recorded_goes_by_the_relay() {
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.relay.grace_ms = 300;
    })
    .await;
    let client = hub.db().pool().get().await.expect("connection");
    client
        .batch_execute(
            "CREATE SEQUENCE routing_attempts;
             CREATE FUNCTION fail_first_routing() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('routing_attempts') = 1 THEN
                     RAISE EXCEPTION 'the first routing fails (test)';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER fail_first_routing BEFORE UPDATE OF store_id ON orders
                 FOR EACH ROW WHEN (OLD.store_id IS NULL AND NEW.store_id IS NOT NULL)
                 EXECUTE FUNCTION fail_first_routing();",
        )
        .await
        .expect("the failing trigger");
    let (router_messages, mut pos, view) = routed_at_ldn_002(&hub).await;
    let attempts: i64 = client
        .query_one("SELECT last_value FROM routing_attempts", &[])
        .await
        .expect("attempts")
        .get(0);
    assert_eq!(attempts, 2, "routed at the second attempt");
    assert_eq!(
        router_messages.count().await,
        1,
        "the relay took the order to the router through the broker"
    );
    let order_id = view["id"].as_str().expect("id");
    hub.delivered_to_store(order_id).await;
    assert!(
        pos.next(Duration::from_millis(300)).await.is_none(),
        "routed to the store once"
    );
    let routed = hub
        .get(&hub.admin_token, &format!("/orders/{order_id}"))
        .await
        .1["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["kind"] == "routed")
        .count();
    assert_eq!(routed, 1, "one routing recorded");
    router_messages.close().await;
    hub.stop().await;
}

/// A store worker's batch of hand-overs that the database refuses is requeued whole and
/// recorded when it comes again: every order handed over once, with one "delivered to
/// store" event. The database refuses the first hand-over statement (a trigger counting
/// attempts in a sequence, which a rollback does not undo), whichever orders it carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_overs_the_database_refuses_are_recorded_once_when_they_come_again() {
    let hub = TestHub::start().await;
    let client = hub.db().pool().get().await.expect("connection");
    client
        .batch_execute(
            "CREATE SEQUENCE handover_attempts;
             CREATE FUNCTION fail_first_handover() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('handover_attempts') = 1 THEN
                     RAISE EXCEPTION 'the first hand-over fails (test)';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER fail_first_handover BEFORE INSERT ON store_deliveries
                 FOR EACH ROW EXECUTE FUNCTION fail_first_handover();",
        )
        .await
        .expect("the failing trigger");
    let sample = sample_pickup("NYC-001", "USD");
    let placed = futures::future::join_all((0..5).map(|_| hub.app.place_order(&sample))).await;
    let mut orders = Vec::new();
    for order in &placed {
        let view = hub.routed_order("own_app", &order.external_order_id).await;
        orders.push(view["id"].as_str().expect("id").to_owned());
    }
    for order_id in &orders {
        hub.delivered_to_store(order_id).await;
    }
    let attempts: i64 = client
        .query_one("SELECT last_value FROM handover_attempts", &[])
        .await
        .expect("attempts")
        .get(0);
    assert!(
        attempts > 5,
        "a hand-over was refused and tried again: {attempts}"
    );
    let db = hub.db();
    for order_id in &orders {
        let id = crossdock_model::OrderId::parse(order_id).expect("order id");
        assert_eq!(
            db.store_handovers(id).await.expect("handovers"),
            1,
            "{order_id}"
        );
        let (_, view) = hub
            .get(&hub.admin_token, &format!("/orders/{order_id}"))
            .await;
        let delivered = view["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|event| event["kind"] == "delivered_to_store")
            .count();
        assert_eq!(delivered, 1, "{order_id}: one delivered event");
    }
    hub.stop().await;
}
