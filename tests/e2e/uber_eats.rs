//! Channel uber_eats end to end: signed notification, fetch with a cached OAuth token,
//! the mapped store, status pushes on both API generations, duplicates, cancellation.

use std::time::{Duration, Instant};

use crossdock_adapter_uber_eats::Generation;
use crossdock_adapter_uber_eats::simulator::PlacedOrder;
use serde_json::json;

use crate::helpers::{PosQueue, TestHub, WAIT, channel_store_id, sample_pickup};

fn uber_store_id(store: &str) -> String {
    channel_store_id(store, "uber_eats")
}

/// A pickup placed on Uber for `store` and routed by the hub: the placement, and the
/// hub's id of the order.
async fn routed_pickup(hub: &TestHub, store: &str) -> (PlacedOrder, String) {
    let placed = hub
        .uber
        .place_order(&sample_pickup(&uber_store_id(store), "USD"))
        .await;
    let view = hub
        .routed_order("uber_eats", &placed.external_order_id)
        .await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    (placed, order_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_api_order_is_fetched_routed_to_the_mapped_store_and_synced_back() {
    let hub = TestHub::start_with(Generation::V1).await;
    let placed = hub
        .uber
        .place_order(&sample_pickup(&uber_store_id("NYC-002"), "USD"))
        .await;
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    assert_eq!(placed.answer.body, "", "Uber expects an empty 200");

    let view = hub
        .routed_order("uber_eats", &placed.external_order_id)
        .await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    assert_eq!(view["store_id"], "NYC-002");
    assert_eq!(view["channel_store_ref"], uber_store_id("NYC-002").as_str());
    assert_eq!(view["totals"]["currency"], "USD");
    hub.delivered_to_store(&order_id).await;

    let token = hub.token("NYC-002").to_owned();
    let (status, seen) = hub.get(&token, &format!("/orders/{order_id}")).await;
    assert_eq!(status, 200, "the store sees its order: {seen}");
    assert_eq!(seen["external_order_id"], placed.external_order_id.as_str());
    assert!(seen.get("events").is_none(), "the history is HQ's");
    for (action, body) in [
        ("accept", json!({"prep_minutes": 20})),
        ("ready", json!({})),
        ("complete", json!({})),
    ] {
        let (status, order) = hub
            .post(&token, &format!("/orders/{order_id}/{action}"), body)
            .await;
        assert_eq!(status, 200, "{action}: {order}");
    }
    let id = &placed.external_order_id;
    let calls = hub
        .uber
        .calls()
        .wait_until(WAIT, |calls| calls.len() >= 2)
        .await;
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("/v1/delivery/order/{id}/accept"),
            format!("/v1/delivery/order/{id}/ready")
        ]
    );
    assert!(
        calls[0].body["ready_for_pickup_time"].is_string(),
        "{:?}",
        calls[0].body
    );
    assert!(
        calls
            .iter()
            .all(|c| c.headers.contains_key("authorization"))
    );
    // `complete` has no Uber call: recorded as skipped, not pushed.
    let db = hub.db();
    let oid = crossdock_model::OrderId::parse(&order_id).expect("id");
    let syncs = crate::helpers::wait_for("all syncs settled", WAIT, || async move {
        let syncs = db.syncs(oid).await.ok()?;
        (syncs.len() == 3 && syncs.iter().all(|s| s.1 != "pending")).then_some(syncs)
    })
    .await;
    let states: Vec<&str> = syncs.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(states, ["delivered", "delivered", "skipped"]);
    assert_eq!(
        hub.uber.token_requests(),
        1,
        "one OAuth token, cached across fetch and pushes"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_order_accept_carries_the_fields_uber_expects() {
    let hub = TestHub::start().await;
    let placed = hub
        .uber
        .place_order(&sample_pickup(&uber_store_id("NYC-001"), "USD"))
        .await;
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    let view = hub
        .routed_order("uber_eats", &placed.external_order_id)
        .await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    assert_eq!(view["store_id"], "NYC-001");
    assert_eq!(
        view["customer"]["name"]
            .as_str()
            .map(|n| n.starts_with("Ada")),
        Some(true)
    );
    assert!(view["display_code"].as_str().is_some_and(|c| c.len() == 5));

    let token = hub.token("NYC-001").to_owned();
    let (status, _) = hub
        .post(
            &token,
            &format!("/orders/{order_id}/accept"),
            json!({"prep_minutes": 15}),
        )
        .await;
    assert_eq!(status, 200);
    let calls = hub
        .uber
        .calls()
        .wait_until(WAIT, |calls| !calls.is_empty())
        .await;
    assert_eq!(
        calls[0].path,
        format!(
            "/v1/eats/orders/{}/accept_pos_order",
            placed.external_order_id
        )
    );
    assert_eq!(calls[0].body["external_reference_id"], order_id.as_str());
    assert!(calls[0].body["reason"].is_string());
    assert!(
        calls[0].body["pickup_time"]
            .as_i64()
            .is_some_and(|t| t > chrono::Utc::now().timestamp())
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_delivered_twice_and_concurrently_makes_one_order_one_delivery_one_sync() {
    let hub = TestHub::start().await;
    let mut pos = PosQueue::bind(&hub.infra.settings, "NYC-003").await;
    let placed = hub
        .uber
        .place_order(&sample_pickup(&uber_store_id("NYC-003"), "USD"))
        .await;
    assert_eq!(placed.answer.status, 200);
    let again = hub
        .uber
        .resend_webhook(&placed.event_id)
        .await
        .expect("resend");
    assert_eq!(again.status, 200, "a replay is acknowledged");
    let resends: Vec<_> = (0..8)
        .map(|_| hub.uber.resend_webhook(&placed.event_id))
        .collect();
    for answer in futures::future::join_all(resends).await {
        assert_eq!(answer.expect("resend").status, 200);
    }
    let view = hub
        .routed_order("uber_eats", &placed.external_order_id)
        .await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    hub.delivered_to_store(&order_id).await;
    let (status, all) = hub.get(&hub.admin_token, "/orders?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(all["orders"].as_array().map(Vec::len), Some(1), "one order");
    assert!(pos.next(WAIT).await.is_some());
    assert!(
        pos.next(Duration::from_millis(500)).await.is_none(),
        "one store delivery"
    );

    let token = hub.token("NYC-003").to_owned();
    let (status, _) = hub
        .post(
            &token,
            &format!("/orders/{order_id}/accept"),
            json!({"prep_minutes": 10}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = hub
        .post(
            &token,
            &format!("/orders/{order_id}/accept"),
            json!({"prep_minutes": 10}),
        )
        .await;
    assert_eq!(status, 409, "a second accept is refused");
    hub.uber
        .calls()
        .wait_until(WAIT, |calls| !calls.is_empty())
        .await;
    // Another replay after the accept changes nothing either.
    assert_eq!(
        hub.uber
            .resend_webhook(&placed.event_id)
            .await
            .map(|a| a.status),
        Some(200)
    );
    hub.settled(&order_id).await;
    assert_eq!(
        hub.uber.calls().matching("accept_pos_order").len(),
        1,
        "one sync per status"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_from_uber_reaches_the_store_at_once_and_stops_status_pushes() {
    let hub = TestHub::start().await;
    let mut pos = PosQueue::bind(&hub.infra.settings, "NYC-001").await;
    let (placed, order_id) = routed_pickup(&hub, "NYC-001").await;
    assert_eq!(
        pos.next(WAIT).await.map(|m| m.0),
        Some("order.routed".into())
    );

    let answer = hub.uber.cancel_order(&placed.external_order_id).await;
    assert_eq!(answer.status, 200);
    let (kind, message) = pos.next(WAIT).await.expect("the store is told");
    assert_eq!(kind, "order.cancelled");
    assert_eq!(message["order_id"], order_id.as_str());
    let (_, view) = hub
        .get(&hub.admin_token, &format!("/orders/{order_id}"))
        .await;
    assert_eq!(view["status"], "cancelled");
    let (status, body) = hub
        .post(
            hub.token("NYC-001"),
            &format!("/orders/{order_id}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("finished")),
        "{body}"
    );
    hub.settled(&order_id).await;
    assert!(
        hub.uber.calls().all().is_empty(),
        "nothing pushed for a cancelled order"
    );
    hub.stop().await;
}

/// A store's live stream (`GET /api/v1/stream` with its token), read event by event.
struct StoreStream {
    response: reqwest::Response,
    buffer: String,
    opened: Instant,
}

impl StoreStream {
    async fn open(hub: &TestHub, store: &str) -> StoreStream {
        let opened = Instant::now();
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/stream", hub.base()))
            .bearer_auth(hub.token(store))
            .send()
            .await
            .expect("the stream");
        assert_eq!(response.status(), 200);
        StoreStream {
            response,
            buffer: String::new(),
            opened,
        }
    }

    /// The next event's name and data, or `None` if none comes within `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<(String, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .filter_map(|line| line.strip_prefix(name))
                        .map(str::trim_start)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let (event, data) = (field("event:"), field("data:"));
                if event.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((event, serde_json::from_str(&data).expect("JSON data")));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("the stream goes on")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// Waits for an `order` event of `order_id` whose status is `status`.
    async fn order_event(&mut self, order_id: &str, status: &str) {
        loop {
            let (event, data) = self
                .next(WAIT)
                .await
                .unwrap_or_else(|| panic!("an order event of {order_id}, {status}"));
            if event == "order" && data["id"] == order_id && data["status"] == status {
                return;
            }
        }
    }
}

/// The store's console hears a cancellation from Uber at once, through its live stream
/// (the change of status goes under the store's status key, which the API process's tap
/// binds), not at the stream's next full read of the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_from_uber_reaches_the_store_console_at_once() {
    let hub = TestHub::start().await;
    let mut stream = StoreStream::open(&hub, "NYC-001").await;
    assert_eq!(stream.next(WAIT).await.map(|e| e.0), Some("board".into()));
    let (placed, order_id) = routed_pickup(&hub, "NYC-001").await;
    // The new order reaching the page means the tap is bound by now.
    stream.order_event(&order_id, "received").await;

    let answer = hub.uber.cancel_order(&placed.external_order_id).await;
    assert_eq!(answer.status, 200);
    stream.order_event(&order_id, "cancelled").await;
    assert!(
        stream.opened.elapsed() < crossdock_hub::http::STREAM_RESYNC,
        "heard before the stream read its whole board again"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notified_order_the_hub_cannot_take_is_denied_on_uber_at_once() {
    let hub = TestHub::start().await;
    let mut impossible = sample_pickup(&uber_store_id("NYC-001"), "USD");
    impossible.items[1].quantity = 0;
    let placed = hub.uber.place_order(&impossible).await;
    assert_eq!(
        placed.answer.status, 200,
        "the notification itself is fine: {}",
        placed.answer.body
    );

    let calls = hub
        .uber
        .calls()
        .wait_until(WAIT, |calls| !calls.is_empty())
        .await;
    assert_eq!(
        calls[0].path,
        format!(
            "/v1/eats/orders/{}/deny_pos_order",
            placed.external_order_id
        )
    );
    let explanation = calls[0].body["reason"]["explanation"]
        .as_str()
        .unwrap_or_default();
    assert!(
        explanation.contains("quantity 0"),
        "the reason says what is wrong: {explanation}"
    );
    assert_eq!(
        hub.uber.order_state(&placed.external_order_id).as_deref(),
        Some("DENIED")
    );
    let (_, quarantine) = hub
        .get(&hub.admin_token, "/quarantine?channel=uber_eats")
        .await;
    assert_eq!(
        quarantine["records"][0]["error"], "unacceptable_order",
        "{quarantine}"
    );
    let (_, all) = hub.get(&hub.admin_token, "/orders").await;
    assert_eq!(
        all["orders"].as_array().map(Vec::len),
        Some(0),
        "nothing stored as an order"
    );
    hub.stop().await;
}
