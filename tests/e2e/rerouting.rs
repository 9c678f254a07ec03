//! Store assignment end to end, with the simulators: a store that rejects an order or does
//! not accept it in time passes it to the next store where the hub chose the store (own
//! app delivery), and to HQ's attention where the platform named it (Uber Eats), where HQ
//! re-assigns it or the hub rejects it back to the platform before the platform's
//! deadline; and the filters that read stores' live state: a pause that runs out, capacity
//! reached and freed, an item marked unavailable at the nearest store.

use chrono::{DateTime, Utc};
use crossdock_adapter_uber_eats::Generation;
use crossdock_model::{Status, StoreId};
use serde_json::{Value, json};

use crate::helpers::{
    PosQueue, TestHub, WAIT, channel_store_id, sample_delivery, sample_pickup, wait_for,
};

/// A drop-off point inside the delivery zones of three New York stores.
const OVERLAP: (f64, f64) = (40.74235, -73.97845);

/// The stores whose zone covers [`OVERLAP`], nearest first.
fn covering(hub: &TestHub) -> Vec<String> {
    hub.handle()
        .shared
        .registry()
        .covering(OVERLAP.0, OVERLAP.1)
        .into_iter()
        .map(|(store, _)| store.id.to_string())
        .collect()
}

/// Waits until the channel's order satisfies `check` (as HQ reads it from the database).
async fn order_where(
    hub: &TestHub,
    what: &str,
    channel: &str,
    external: &str,
    check: impl Fn(&crossdock_model::Order) -> bool,
) -> crossdock_model::Order {
    let db = hub.db();
    let check = &check;
    wait_for(what, WAIT, || async move {
        db.order_by_external(channel, external)
            .await
            .ok()
            .flatten()
            .filter(check)
    })
    .await
}

async fn at_store(
    hub: &TestHub,
    channel: &str,
    external: &str,
    store: &str,
) -> crossdock_model::Order {
    order_where(
        hub,
        &format!("the order to be at {store}"),
        channel,
        external,
        |o| o.store_id.as_ref().map(StoreId::as_str) == Some(store),
    )
    .await
}

async fn with_status(
    hub: &TestHub,
    channel: &str,
    external: &str,
    status: Status,
) -> crossdock_model::Order {
    order_where(
        hub,
        &format!("the order to be {status}"),
        channel,
        external,
        |o| o.status == status,
    )
    .await
}

/// The order's history as HQ reads it.
async fn events(hub: &TestHub, order_id: &str) -> Vec<Value> {
    let (status, body) = hub
        .get(&hub.admin_token, &format!("/orders/{order_id}/events"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// The verdict the routing decision of `event` gave `store`.
fn verdict<'a>(event: &'a Value, store: &str) -> &'a str {
    event["data"]["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["store"] == store)
        .and_then(|c| c["verdict"].as_str())
        .unwrap_or_else(|| panic!("{store} is not a candidate of {event}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_rejects_an_address_order_passes_it_to_the_next_nearest_store() {
    let hub = TestHub::start().await;
    let stores = covering(&hub);
    assert!(stores.len() >= 2, "{stores:?}");
    let (first, second) = (stores[0].as_str(), stores[1].as_str());
    let mut first_queue = PosQueue::bind(&hub.infra.settings, first).await;

    let placed = hub
        .app
        .place_order(&sample_delivery(OVERLAP.0, OVERLAP.1, "USD"))
        .await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let external = placed.external_order_id.clone();
    let order = at_store(&hub, "own_app", &external, first).await;
    let order_id = order.id.to_string();
    let (kind, _) = first_queue
        .next(WAIT)
        .await
        .expect("the order on its queue");
    assert_eq!(kind, "order.routed");

    let (status, answer) = hub
        .post(
            hub.token(first),
            &format!("/orders/{order_id}/reject"),
            json!({ "reason": "out of dough" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["next"], "another_store");
    let (kind, message) = first_queue.next(WAIT).await.expect("news of the order");
    assert_eq!(
        (kind.as_str(), message["order_id"].as_str()),
        ("order.withdrawn", Some(order_id.as_str()))
    );

    at_store(&hub, "own_app", &external, second).await;
    hub.delivered_to_store(&order_id).await;
    // The store that declined no longer sees the order nor can work it.
    let (status, _) = hub
        .get(hub.token(first), &format!("/orders/{order_id}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = hub
        .post(
            hub.token(first),
            &format!("/orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        hub.app.order_status(&external),
        None,
        "the customer's app is told nothing of the store that declined"
    );

    let (status, body) = hub
        .post(
            hub.token(second),
            &format!("/orders/{order_id}/accept"),
            json!({ "prep_minutes": 20 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for("the app to hear of the accept", WAIT, || async {
        (hub.app.order_status(&external) == Some(Status::Accepted)).then_some(())
    })
    .await;

    // HQ reads the whole story: routed, declined, routed again past the store that declined.
    let history = events(&hub, &order_id).await;
    let routed = of_kind(&history, "routed");
    assert_eq!(routed.len(), 2, "{history:?}");
    assert_eq!(routed[0]["data"]["store"], first);
    assert_eq!(routed[1]["data"]["store"], second);
    assert_eq!(verdict(routed[1], first), "declined the order already");
    assert_eq!(verdict(routed[1], second), "chosen");
    let declined = of_kind(&history, "declined");
    assert_eq!(declined.len(), 1, "{history:?}");
    assert_eq!(declined[0]["source"], "store");
    assert_eq!(declined[0]["data"]["by"], "store");
    assert!(
        declined[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(first) && r.contains("out of dough")),
        "{}",
        declined[0]
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_that_do_not_accept_in_time_lose_the_order_in_turn_until_none_is_left() {
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.router.store_accept_ms = 700;
        settings.router.sweep_ms = 50;
    })
    .await;
    let stores = covering(&hub);
    assert_eq!(stores.len(), 3, "{stores:?}");

    let placed = hub
        .app
        .place_order(&sample_delivery(OVERLAP.0, OVERLAP.1, "USD"))
        .await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let external = placed.external_order_id.clone();
    let order = with_status(&hub, "own_app", &external, Status::Rejected).await;
    wait_for("the app to hear of the rejection", WAIT, || async {
        (hub.app.order_status(&external) == Some(Status::Rejected)).then_some(())
    })
    .await;

    // Each store in turn, nearest first, had the order and let the time run out.
    let history = events(&hub, &order.id.to_string()).await;
    let routed: Vec<&Value> = of_kind(&history, "routed");
    let assigned: Vec<&str> = routed
        .iter()
        .filter_map(|e| e["data"]["store"].as_str())
        .collect();
    assert_eq!(assigned, stores, "{history:?}");
    let declined: Vec<(&str, &str)> = of_kind(&history, "declined")
        .iter()
        .map(|e| {
            (
                e["data"]["store"].as_str().unwrap_or_default(),
                e["data"]["by"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        declined,
        stores
            .iter()
            .map(|s| (s.as_str(), "timeout"))
            .collect::<Vec<_>>()
    );
    // The last decision found every covering store had declined.
    let last = routed.last().expect("a last decision");
    assert_eq!(last["data"]["store"], Value::Null);
    for store in &stores {
        assert_eq!(verdict(last, store), "declined the order already");
    }
    hub.stop().await;
}

/// Sets a store's capacity in the database as loading a changed chain file would, and
/// waits until the hub's registry has it (the hub must check its registry version often).
async fn set_capacity(hub: &TestHub, store: &str, capacity: u32) {
    let client = hub.db().pool().get().await.expect("connection");
    client
        .execute(
            "UPDATE stores SET profile = jsonb_set(profile, '{capacity}', to_jsonb($2::integer))
             WHERE id = $1",
            &[&store, &i32::try_from(capacity).expect("capacity")],
        )
        .await
        .expect("capacity");
    let store = StoreId::parse(store).expect("id");
    wait_for("the registry to reload", WAIT, || {
        let now = hub
            .handle()
            .shared
            .registry()
            .store(&store)
            .map(|s| s.capacity);
        async move { (now == Some(capacity)).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_named_by_the_platform_that_rejects_sends_the_order_to_hq_who_reassigns_it() {
    let hub = TestHub::start().await;
    let placed = hub.uber_pickup("NYC-001").await;
    let external = placed.external_order_id.clone();
    let view = hub.routed_order("uber_eats", &external).await;
    assert_eq!(view["store_id"], "NYC-001");
    let order_id = view["id"].as_str().expect("id").to_owned();

    let (status, answer) = hub
        .post(
            hub.token("NYC-001"),
            &format!("/orders/{order_id}/reject"),
            json!({ "reason": "oven broken" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["next"], "hq");
    let (status, attention) = hub.get(&hub.admin_token, "/attention").await;
    assert_eq!(status, 200);
    let waiting = attention["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["order"]["id"] == order_id.as_str())
        .unwrap_or_else(|| panic!("not on the attention list: {attention}"));
    assert!(
        waiting["reason"]
            .as_str()
            .is_some_and(|r| r.contains("NYC-001") && r.contains("oven broken")),
        "{waiting}"
    );
    assert_eq!(waiting["declined_by"], json!(["NYC-001"]));
    assert!(waiting["accept_by"].is_string(), "{waiting}");
    // Stores may not read the attention list; the platform has not been told no.
    let (status, _) = hub.get(hub.token("NYC-001"), "/attention").await;
    assert_eq!(status, 403);
    assert_ne!(hub.uber.order_status(&external), Some(Status::Rejected));

    // HQ gives it to a store nearby, which accepts; the platform hears the accept.
    let (status, body) = hub
        .post(
            hub.token("NYC-002"),
            &format!("/orders/{order_id}/assign"),
            json!({ "store": "NYC-002" }),
        )
        .await;
    assert_eq!(status, 403, "only HQ re-assigns: {body}");
    let (status, body) = hub
        .post(
            &hub.admin_token,
            &format!("/orders/{order_id}/assign"),
            json!({ "store": "NYC-002" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store_id"], "NYC-002");
    let (_, attention) = hub.get(&hub.admin_token, "/attention").await;
    assert_eq!(attention["orders"], json!([]), "{attention}");
    hub.delivered_to_store(&order_id).await;
    let (status, body) = hub
        .post(
            hub.token("NYC-002"),
            &format!("/orders/{order_id}/accept"),
            json!({ "prep_minutes": 15 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for("Uber Eats to record the accept", WAIT, || async {
        (hub.uber.order_status(&external) == Some(Status::Accepted)).then_some(())
    })
    .await;
    // An accepted order is not re-assigned.
    let (status, body) = hub
        .post(
            &hub.admin_token,
            &format!("/orders/{order_id}/assign"),
            json!({ "store": "NYC-001" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    let history = events(&hub, &order_id).await;
    let routed = of_kind(&history, "routed");
    assert_eq!(routed.len(), 2, "{history:?}");
    assert_eq!(routed[1]["source"], "hq");
    assert_eq!(routed[1]["data"]["rule"], "by_hq");
    assert_eq!(of_kind(&history, "needs_attention").len(), 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_no_store_accepts_is_rejected_to_the_platform_before_its_deadline() {
    // Uber Eats gives 690 s to accept; keeping all but 4 s of it as the margin makes the
    // hub's deadline guard act 4 s after the order was placed.
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.router.store_accept_ms = 1000;
        settings.router.deadline_margin_ms = 686_000;
        settings.router.sweep_ms = 50;
    })
    .await;
    let placed = hub.uber_pickup("NYC-003").await;
    let external = placed.external_order_id.clone();
    let order = order_where(
        &hub,
        "the order to wait for HQ",
        "uber_eats",
        &external,
        |_| true,
    )
    .await;
    let order_id = order.id.to_string();
    wait_for("the order to reach HQ's attention list", WAIT, || async {
        let (_, attention) = hub.get(&hub.admin_token, "/attention").await;
        attention["orders"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|item| item["order"]["id"] == order_id.as_str())
            .cloned()
    })
    .await;

    let rejected = with_status(&hub, "uber_eats", &external, Status::Rejected).await;
    wait_for("Uber Eats to record the rejection", WAIT, || async {
        (hub.uber.order_status(&external) == Some(Status::Rejected)).then_some(())
    })
    .await;
    let deadline = rejected
        .order
        .fulfillment
        .accept_by
        .expect("Uber Eats orders have an acceptance deadline");
    let history = events(&hub, &order_id).await;
    let rejection = history
        .iter()
        .find(|e| e["kind"] == "status_changed" && e["status"] == "rejected")
        .expect("a rejection event");
    assert_eq!(rejection["source"], "router");
    assert!(
        rejection["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not accepted in time by NYC-003")),
        "{rejection}"
    );
    let at: DateTime<Utc> = serde_json::from_value(rejection["at"].clone()).expect("time");
    assert!(
        at < deadline,
        "rejected at {at}, after the deadline {deadline}"
    );
    // The platform has the rejection; the hub records its answer right after.
    let delivered = wait_for("the rejection's push recorded", WAIT, || async {
        events(&hub, &order_id)
            .await
            .into_iter()
            .find(|e| e["kind"] == "sync_delivered")
    })
    .await;
    let pushed: DateTime<Utc> = serde_json::from_value(delivered["at"].clone()).expect("time");
    assert!(pushed < deadline, "pushed at {pushed}, deadline {deadline}");
    let (_, attention) = hub.get(&hub.admin_token, "/attention").await;
    assert_eq!(attention["orders"], json!([]), "{attention}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_refuses_orders_until_its_time_passes() {
    let hub = TestHub::start().await;
    let until = Utc::now() + chrono::Duration::milliseconds(1500);
    let (status, live) = hub
        .post(
            hub.token("NYC-003"),
            "/stores/NYC-003/pause",
            json!({ "until": until, "reason": "staff meeting" }),
        )
        .await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["paused"], true);
    assert_eq!(live["pause_reason"], "staff meeting");
    let (status, _) = hub
        .post(
            hub.token("NYC-002"),
            "/stores/NYC-003/pause",
            json!({ "minutes": 5 }),
        )
        .await;
    assert_eq!(status, 403, "a store pauses only itself");

    let placed = hub.app.place_order(&sample_pickup("NYC-003", "USD")).await;
    let refused = with_status(&hub, "own_app", &placed.external_order_id, Status::Rejected).await;
    let history = events(&hub, &refused.id.to_string()).await;
    let reason = history
        .iter()
        .find(|e| e["kind"] == "routed")
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("paused until"), "{reason}");

    wait_for("the pause to run out", WAIT, || async {
        (Utc::now() > until).then_some(())
    })
    .await;
    let placed = hub.app.place_order(&sample_pickup("NYC-003", "USD")).await;
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_eq!(view["store_id"], "NYC-003");
    let (_, live) = hub.get(&hub.admin_token, "/stores/NYC-003/live").await;
    assert_eq!(live["paused"], false, "{live}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_at_capacity_refuses_orders_until_one_is_ready() {
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.router.refresh_ms = 100;
    })
    .await;
    // NYC-010's kitchen takes one order at a time.
    set_capacity(&hub, "NYC-010", 1).await;
    let store = StoreId::parse("NYC-010").expect("id");

    let first = hub.app.place_order(&sample_pickup("NYC-010", "USD")).await;
    let view = hub.routed_order("own_app", &first.external_order_id).await;
    let first_id = view["id"].as_str().expect("id").to_owned();
    let (_, live) = hub.get(hub.token("NYC-010"), "/stores/NYC-010/live").await;
    assert_eq!(
        (live["active"].as_u64(), live["capacity"].as_u64()),
        (Some(1), Some(1))
    );

    let second = hub.app.place_order(&sample_pickup("NYC-010", "USD")).await;
    let refused = with_status(&hub, "own_app", &second.external_order_id, Status::Rejected).await;
    let history = events(&hub, &refused.id.to_string()).await;
    let routed = of_kind(&history, "routed");
    assert!(
        verdict(routed[0], "NYC-010").starts_with("too busy: 1 active orders"),
        "{history:?}"
    );
    wait_for("the app to hear the store is too busy", WAIT, || async {
        (hub.app.order_status(&second.external_order_id) == Some(Status::Rejected)).then_some(())
    })
    .await;

    // The first order is accepted (still in the kitchen), then ready (out of it).
    let token = hub.token("NYC-010").to_owned();
    for action in ["accept", "ready"] {
        let (status, body) = hub
            .post(&token, &format!("/orders/{first_id}/{action}"), json!({}))
            .await;
        assert_eq!(status, 200, "{action}: {body}");
    }
    wait_for("the hub to see the place freed", WAIT, || {
        let active = hub
            .handle()
            .shared
            .registry()
            .live(&store)
            .map(|l| l.active);
        async move { (active == Some(0)).then_some(()) }
    })
    .await;
    let third = hub.app.place_order(&sample_pickup("NYC-010", "USD")).await;
    let view = hub.routed_order("own_app", &third.external_order_id).await;
    assert_eq!(view["store_id"], "NYC-010");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_unavailable_at_the_nearest_store_sends_the_order_to_the_next() {
    let hub = TestHub::start().await;
    let stores = covering(&hub);
    let (nearest, next) = (stores[0].as_str(), stores[1].as_str());
    let (status, live) = hub
        .post(
            hub.token(nearest),
            &format!("/stores/{nearest}/availability"),
            json!({ "unavailable": ["PZ-MARG-L", "DS-BROWNIE"] }),
        )
        .await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["unavailable"], json!(["DS-BROWNIE", "PZ-MARG-L"]));

    // The sample order has a large Margherita.
    let placed = hub
        .app
        .place_order(&sample_delivery(OVERLAP.0, OVERLAP.1, "USD"))
        .await;
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_eq!(view["store_id"], next);
    let history = events(&hub, view["id"].as_str().expect("id")).await;
    let routed = of_kind(&history, "routed");
    assert_eq!(verdict(routed[0], nearest), "item unavailable: PZ-MARG-L");

    // Back on the menu: the nearest store gets the next one.
    let (status, live) = hub
        .post(
            &hub.admin_token,
            &format!("/stores/{nearest}/availability"),
            json!({ "available": ["PZ-MARG-L"] }),
        )
        .await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["unavailable"], json!(["DS-BROWNIE"]));
    let placed = hub
        .app
        .place_order(&sample_delivery(OVERLAP.0, OVERLAP.1, "USD"))
        .await;
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_eq!(view["store_id"], nearest);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_store_that_cannot_take_an_order_is_refused_with_the_platforms_own_reason() {
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.router.refresh_ms = 100;
    })
    .await;
    let uber_store = channel_store_id("NYC-004", "uber_eats");
    let refused_with = |external: String| {
        let hub = &hub;
        async move {
            wait_for("Uber Eats to record the deny", WAIT, || async {
                hub.uber
                    .calls()
                    .matching(&format!("/v1/eats/orders/{external}/deny_pos_order"))
                    .first()
                    .and_then(|call| call.body["reason"]["code"].as_str().map(str::to_owned))
            })
            .await
        }
    };

    // Out of an item.
    let (status, _) = hub
        .post(
            hub.token("NYC-004"),
            "/stores/NYC-004/availability",
            json!({ "unavailable": ["DR-COLA-500"] }),
        )
        .await;
    assert_eq!(status, 200);
    let placed = hub
        .uber
        .place_order(&sample_pickup(&uber_store, "USD"))
        .await;
    assert_eq!(
        refused_with(placed.external_order_id).await,
        "ITEM_AVAILABILITY"
    );
    let (status, _) = hub
        .post(
            hub.token("NYC-004"),
            "/stores/NYC-004/availability",
            json!({ "available": ["DR-COLA-500"] }),
        )
        .await;
    assert_eq!(status, 200);

    // Paused.
    let (status, _) = hub
        .post(&hub.admin_token, "/stores/NYC-004/pause", json!({}))
        .await;
    assert_eq!(status, 200);
    let placed = hub
        .uber
        .place_order(&sample_pickup(&uber_store, "USD"))
        .await;
    assert_eq!(refused_with(placed.external_order_id).await, "STORE_CLOSED");
    let (status, live) = hub
        .post(&hub.admin_token, "/stores/NYC-004/resume", json!({}))
        .await;
    assert_eq!((status, &live["paused"]), (200, &json!(false)));

    // Too busy: a kitchen that takes no order at all right now.
    set_capacity(&hub, "NYC-004", 0).await;
    let placed = hub
        .uber
        .place_order(&sample_pickup(&uber_store, "USD"))
        .await;
    assert_eq!(refused_with(placed.external_order_id).await, "CAPACITY");
    hub.stop().await;
}
