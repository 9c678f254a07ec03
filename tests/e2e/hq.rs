//! HQ's dashboard API end to end, with the simulators: a status push the own app refuses
//! parks and shows on `/attention` (`sync_parked`) and `/parked`; once the app is healed,
//! HQ's replay pushes the parked statuses in order and the lists empty; a message the
//! broker refuses is set aside and replayed; an order outside every delivery zone shows
//! as `no_store`; `/summary` counts the orders placed, with each store's live state;
//! search by display code, channel order id and order id, a store finding only its own.
//! (Stores' 403 on HQ's endpoints is in `authz.rs`, with every other endpoint.)

use chrono::{DateTime, Utc};
use crossdock_model::{OrderId, Status};
use serde_json::{Value, json};

use crate::helpers::{TestHub, WAIT, chain, sample_delivery, sample_pickup, wait_for};

/// A drop-off point no store of the sample chain delivers to.
const NOWHERE: (f64, f64) = (10.0, 10.0);

/// The entries of HQ's attention list.
async fn attention(hub: &TestHub) -> Vec<Value> {
    let (status, body) = hub.get(&hub.admin_token, "/attention").await;
    assert_eq!(status, 200, "{body}");
    body["orders"].as_array().cloned().unwrap_or_default()
}

/// The entry of `order_id` on HQ's attention list `entries`.
fn attention_entry<'a>(entries: &'a [Value], order_id: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["order"]["id"] == order_id)
        .unwrap_or_else(|| panic!("not on the attention list: {entries:?}"))
}

/// The first event of `kind` in the order's history, as HQ reads it.
async fn event(hub: &TestHub, order_id: &str, kind: &str) -> Value {
    let (_, history) = hub
        .get(&hub.admin_token, &format!("/orders/{order_id}/events"))
        .await;
    history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} event in {history}"))
}

/// HQ replays the order's parked status pushes; returns (status, JSON body).
async fn replay(hub: &TestHub, order_id: &str) -> (u16, Value) {
    hub.post(
        &hub.admin_token,
        &format!("/orders/{order_id}/replay"),
        json!({}),
    )
    .await
}

/// HQ's `/parked`.
async fn parked(hub: &TestHub) -> Value {
    let (status, body) = hub.get(&hub.admin_token, "/parked").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The outbox message `id` as `/parked` lists it among the set-aside ones, if it is.
async fn set_aside(hub: &TestHub, id: i64) -> Option<Value> {
    let body = parked(hub).await;
    body["set_aside"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|row| row["id"] == id)
        .cloned()
}

/// The ids of the orders a search finds, as `token` searches.
async fn search(hub: &TestHub, token: &str, q: &str) -> Vec<String> {
    let (status, body) = hub.get(token, &format!("/orders?q={q}")).await;
    assert_eq!(status, 200, "{body}");
    body["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_status_push_waits_for_hq_and_a_replay_pushes_it_in_order() {
    let hub = TestHub::start().await;
    let token = hub.token("NYC-001").to_owned();
    let placed = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    let external = placed.external_order_id.clone();
    let view = hub.routed_order("own_app", &external).await;
    let order_id = view["id"].as_str().expect("id").to_owned();

    // The app refuses the accept for good: it parks, and `ready` parks behind it.
    hub.fail_app_pushes(400, 1);
    hub.post_actions(&token, &order_id, &["accept", "ready"])
        .await;
    let syncs = hub.settled(&order_id).await;
    assert!(syncs.iter().all(|s| s.1 == "parked"), "{syncs:?}");

    let entries = attention(&hub).await;
    let entry = attention_entry(&entries, &order_id);
    assert_eq!(entry["kind"], "sync_parked", "{entry}");
    assert_eq!(entry["actions"], json!(["replay"]));
    assert!(
        entry["reason"]
            .as_str()
            .is_some_and(|r| r.contains("refused by the platform")),
        "{entry}"
    );
    assert!(entry["since"].is_string(), "{entry}");
    assert_eq!(entry["declined_by"], json!([]));

    let body = parked(&hub).await;
    let rows = body["syncs"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{body}");
    for row in &rows {
        assert_eq!(row["order_id"], order_id.as_str());
        assert_eq!(row["channel"], "own_app");
        assert_eq!(row["display_code"], view["display_code"]);
        assert_eq!(row["store_id"], "NYC-001");
        assert_eq!(row["attempts"], 1);
        assert!(row["parked_at"].is_string(), "{row}");
        assert!(row["event_id"].is_i64(), "{row}");
    }
    assert_eq!(rows[0]["action"]["action"], "accept");
    assert_eq!(rows[1]["action"]["action"], "ready");
    assert!(
        rows[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused by the platform")),
        "{body}"
    );
    assert_eq!(body["set_aside"], json!([]));

    // HQ's view of the order shows each push's state; a store's does not.
    let (_, order) = hub
        .get(&hub.admin_token, &format!("/orders/{order_id}"))
        .await;
    let states: Vec<(&Value, &Value)> = order["syncs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (&s["event_id"], &s["state"]))
        .collect();
    assert_eq!(
        states,
        [
            (&rows[0]["event_id"], &json!("parked")),
            (&rows[1]["event_id"], &json!("parked"))
        ],
        "{order}"
    );
    let (_, own) = hub.get(&token, &format!("/orders/{order_id}")).await;
    assert!(
        own.get("syncs").is_none() && own.get("events").is_none(),
        "{own}"
    );

    // The app is healed; HQ replays; both statuses reach it, in order.
    hub.app.faults().clear();
    let (status, body) = replay(&hub, &order_id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order_id"], order_id.as_str());
    assert_eq!(body["replayed"], 2);
    let calls = hub
        .app
        .calls()
        .wait_until(WAIT, |calls| {
            calls.iter().any(|c| {
                c.answered == 200
                    && c.body["order_id"] == external.as_str()
                    && c.body["status"] == "ready"
            })
        })
        .await;
    let taken: Vec<&Value> = calls
        .iter()
        .filter(|c| c.answered == 200 && c.body["order_id"] == external.as_str())
        .map(|c| &c.body["status"])
        .collect();
    assert_eq!(taken, [&json!("accepted"), &json!("ready")]);
    assert_eq!(hub.app.order_status(&external), Some(Status::Ready));
    let syncs = hub.settled(&order_id).await;
    assert!(syncs.iter().all(|s| s.1 == "delivered"), "{syncs:?}");
    assert_eq!(parked(&hub).await["syncs"], json!([]));
    assert!(
        attention(&hub)
            .await
            .iter()
            .all(|e| e["order"]["id"] != order_id.as_str()),
        "off the attention list"
    );
    let replayed = event(&hub, &order_id, "sync_replayed").await;
    assert_eq!(replayed["source"], "hq");
    assert_eq!(
        replayed["data"]["event_ids"],
        json!([rows[0]["event_id"], rows[1]["event_id"]])
    );

    // Nothing is parked any more; unknown and malformed ids.
    let (status, body) = replay(&hub, &order_id).await;
    assert_eq!((status, &body["error"]), (409, &json!("nothing_parked")));
    let (status, _) = replay(&hub, &OrderId::new().to_string()).await;
    assert_eq!(status, 404);
    let (status, _) = replay(&hub, "not-an-id").await;
    assert_eq!(status, 400);

    // A message the broker refuses (nothing bound to its key) is set aside; HQ replays
    // it and the relay publishes it again (refused again: still nothing bound).
    let client = hub.db().pool().get().await.expect("client");
    let id: i64 = client
        .query_one(
            "INSERT INTO outbox (routing_key, kind, message_id, body)
             VALUES ('nowhere.hq-test', 'test', 'hq-test-1', '{}') RETURNING id",
            &[],
        )
        .await
        .expect("outbox row")
        .get(0);
    drop(client);
    let first = wait_for("the message to be set aside", WAIT, || set_aside(&hub, id)).await;
    assert_eq!(first["routing_key"], "nowhere.hq-test");
    assert_eq!(first["message_id"], "hq-test-1");
    assert!(first["refusal"].is_string(), "{first}");
    let (_, summary) = hub.get(&hub.admin_token, "/summary").await;
    assert_eq!(summary["attention"]["set_aside"], 1, "{summary}");
    let refused_at = |row: &Value| -> DateTime<Utc> {
        serde_json::from_value(row["refused_at"].clone()).expect("a time")
    };
    let (status, body) = hub
        .post(&hub.admin_token, &format!("/outbox/{id}/replay"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["id"], &body["replayed"]), (&json!(id), &json!(true)));
    wait_for("the relay to publish it again", WAIT, || async {
        set_aside(&hub, id)
            .await
            .filter(|row| refused_at(row) > refused_at(&first))
    })
    .await;
    let (status, body) = hub
        .post(&hub.admin_token, "/outbox/999999/replay", json!({}))
        .await;
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_sees_orders_no_store_took_counts_and_finds_orders() {
    let hub = TestHub::start().await;
    let db = hub.db();

    // Own app, picked up at NYC-001 (accepted); Uber Eats at NYC-002 (waiting); own app
    // to a point no store delivers to (rejected back to the app).
    let app_order = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    let app_view = hub
        .routed_order("own_app", &app_order.external_order_id)
        .await;
    let app_id = app_view["id"].as_str().expect("id").to_owned();
    let code = app_view["display_code"]
        .as_str()
        .expect("the app sends a display code")
        .to_owned();
    let (status, body) = hub
        .post(
            hub.token("NYC-001"),
            &format!("/orders/{app_id}/accept"),
            json!({ "prep_minutes": 10 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let uber_order = hub.uber_pickup("NYC-002").await;
    let uber_external = uber_order.external_order_id.clone();
    let uber_view = hub.routed_order("uber_eats", &uber_external).await;
    assert_eq!(uber_view["store_id"], "NYC-002");
    let uber_id = uber_view["id"].as_str().expect("id").to_owned();
    let lost = hub
        .app
        .place_order(&sample_delivery(NOWHERE.0, NOWHERE.1, "USD"))
        .await;
    assert_eq!(lost.answer.status, 202, "{}", lost.answer.body);
    let lost_external = lost.external_order_id.clone();
    let lost_order = wait_for("the order to be rejected", WAIT, || async {
        db.order_by_external("own_app", &lost_external)
            .await
            .ok()
            .flatten()
            .filter(|o| o.status == Status::Rejected)
    })
    .await;
    let lost_id = lost_order.id.to_string();
    hub.settled(&app_id).await;
    hub.settled(&lost_id).await;

    // The rejected order shows, with the router's reason and nothing to do.
    let entries = attention(&hub).await;
    let entry = attention_entry(&entries, &lost_id);
    assert_eq!(entry["kind"], "no_store", "{entry}");
    assert_eq!(entry["actions"], json!([]));
    let routed = event(&hub, &lost_id, "routed").await;
    assert!(
        entry["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{entry}"
    );
    assert_eq!(entry["reason"], routed["reason"], "the router's reason");
    assert_eq!(entries.len(), 1, "nothing else waits: {entries:?}");

    // Live state the summary shows: a pause and an item off at two stores.
    let (status, body) = hub
        .post(
            &hub.admin_token,
            "/stores/NYC-003/pause",
            json!({ "minutes": 30 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = hub
        .post(
            &hub.admin_token,
            "/stores/NYC-001/availability",
            json!({ "unavailable": ["DR-COLA-330"] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The summary counts the three orders; the stores' load arrives with their live state.
    let summary = wait_for("the summary to show both stores' load", WAIT, || async {
        let (status, summary) = hub.get(&hub.admin_token, "/summary?hours=24").await;
        assert_eq!(status, 200, "{summary}");
        let loaded = summary["by_store"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| ["NYC-001", "NYC-002"].contains(&s["store"].as_str().unwrap_or("")))
            .all(|s| s["active"] == 1);
        loaded.then_some(summary)
    })
    .await;
    assert_eq!(summary["hours"], 24);
    assert!(summary["at"].is_string(), "{summary}");
    let by_status = summary["by_status"].as_object().expect("by_status");
    assert_eq!(by_status.len(), 10, "every status: {summary}");
    for (status, n) in by_status {
        let expected = match status.as_str() {
            "received" | "accepted" | "rejected" => 1,
            _ => 0,
        };
        assert_eq!(n, expected, "{status}: {summary}");
    }
    assert_eq!(
        summary["by_channel"],
        json!([
            { "channel": "own_app", "total": 2, "open": 1, "rejected": 1, "cancelled": 0 },
            { "channel": "uber_eats", "total": 1, "open": 1, "rejected": 0, "cancelled": 0 },
        ])
    );
    let stores = summary["by_store"].as_array().expect("by_store");
    assert_eq!(stores.len(), chain().stores.len(), "every store");
    let line = |id: &str| {
        stores
            .iter()
            .find(|s| s["store"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {summary}"))
    };
    let nyc1 = line("NYC-001");
    let nyc2 = line("NYC-002");
    assert_eq!(
        [&nyc1["total"], &nyc1["open"], &nyc1["waiting"]],
        [&json!(1), &json!(1), &json!(0)]
    );
    assert_eq!(
        [&nyc2["total"], &nyc2["open"], &nyc2["waiting"]],
        [&json!(1), &json!(1), &json!(1)]
    );
    assert_eq!(nyc1["unavailable"], json!(["DR-COLA-330"]));
    assert_eq!(nyc1["paused_until"], Value::Null);
    let profile = chain()
        .stores
        .into_iter()
        .find(|s| s.id.as_str() == "NYC-001")
        .expect("NYC-001");
    assert_eq!(nyc1["capacity"], profile.capacity);
    assert_eq!(nyc1["name"], profile.name);
    let nyc3 = line("NYC-003");
    assert!(nyc3["paused_until"].is_string(), "{nyc3}");
    assert_eq!(nyc3["paused"], true);
    let with_orders: Vec<&Value> = stores.iter().take(2).map(|s| &s["store"]).collect();
    assert!(
        with_orders.contains(&&json!("NYC-001")) && with_orders.contains(&&json!("NYC-002")),
        "stores with orders first: {with_orders:?}"
    );
    assert!(stores.iter().skip(2).all(|s| s["total"] == 0));
    assert_eq!(summary["unassigned"], 0);
    assert_eq!(
        summary["attention"],
        json!({ "declined": 0, "timed_out": 0, "no_store": 1, "sync_parked": 0, "set_aside": 0 })
    );
    for bad in ["0", "169", "a day"] {
        let (status, body) = hub
            .get(&hub.admin_token, &format!("/summary?hours={bad}"))
            .await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("bad_hours")),
            "{bad}"
        );
    }

    // Search: by display code (any case), by channel order id, by order id.
    let found = search(&hub, &hub.admin_token, &code.to_uppercase()).await;
    assert!(found.contains(&app_id), "{found:?}");
    let found = search(&hub, &hub.admin_token, &code.to_lowercase()).await;
    assert!(found.contains(&app_id), "{found:?}");
    assert_eq!(
        search(&hub, &hub.admin_token, &uber_external.to_uppercase()).await,
        [uber_id.as_str()]
    );
    assert_eq!(
        search(&hub, &hub.admin_token, &app_order.external_order_id).await,
        [app_id.as_str()]
    );
    assert_eq!(
        search(&hub, &hub.admin_token, &lost_id).await,
        [lost_id.as_str()]
    );
    assert_eq!(
        search(&hub, &hub.admin_token, "no-such-order").await,
        Vec::<String>::new()
    );
    // A store finds its own orders only.
    let found = search(&hub, hub.token("NYC-001"), &code).await;
    assert!(found.contains(&app_id), "{found:?}");
    assert!(
        !search(&hub, hub.token("NYC-002"), &code)
            .await
            .contains(&app_id),
        "another store's order"
    );
    assert_eq!(
        search(&hub, hub.token("NYC-002"), &uber_external).await,
        [uber_id.as_str()]
    );
    assert_eq!(
        search(&hub, hub.token("NYC-001"), &uber_external).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search(&hub, hub.token("NYC-001"), &lost_id).await,
        Vec::<String>::new(),
        "an order of no store is HQ's"
    );
    hub.stop().await;
}
