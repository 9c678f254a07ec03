//! Bad input at the door, illegal status changes, and money that does not add up.

use serde_json::json;

use crate::helpers::{TestHub, sample_pickup};

async fn quarantine(hub: &TestHub, channel: &str) -> Vec<serde_json::Value> {
    let (status, body) = hub
        .get(&hub.admin_token, &format!("/quarantine?channel={channel}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["records"].as_array().cloned().unwrap_or_default()
}

async fn order_count(hub: &TestHub) -> usize {
    let (_, all) = hub.get(&hub.admin_token, "/orders?limit=500").await;
    all["orders"].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_missing_stale_and_malformed_requests_are_refused_and_quarantined() {
    let hub = TestHub::start().await;
    let body = br#"{"event_id":"e1","event_type":"orders.notification","event_time":1,"meta":{"resource_id":"x","status":"pos","user_id":"u"},"resource_href":"https://api.uber.com/v2/eats/order/x"}"#.to_vec();

    let forged = hub
        .uber
        .send_webhook_raw(body.clone(), Some("00".repeat(32)))
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    let missing = hub.uber.send_webhook_raw(body, None).await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert!(
        missing.body.contains("X-Uber-Signature")
            || missing.body.to_lowercase().contains("x-uber-signature"),
        "{}",
        missing.body
    );
    let records = quarantine(&hub, "uber_eats").await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["error"] == "unauthorized"));

    // Own app: a correctly signed request, but six minutes old.
    let stale_body = serde_json::to_vec(&json!({"event": "order.cancelled", "event_id": "ev-stale", "order_id": "A-1", "reason": "x"})).expect("json");
    let stale = hub
        .app
        .send_signed_at(stale_body, chrono::Utc::now().timestamp() - 360)
        .await;
    assert_eq!(stale.status, 401, "{}", stale.body);
    assert!(stale.body.contains("stale"), "{}", stale.body);

    // Own app: signed, but the order lacks its items.
    let malformed = serde_json::to_vec(
        &json!({"event": "order.created", "event_id": "ev-bad", "order": {"id": "A-2"}}),
    )
    .expect("json");
    let now = chrono::Utc::now().timestamp();
    let answer = hub.app.send_signed_at(malformed, now).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let message: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON error");
    assert_eq!(message["error"], "malformed");
    assert!(
        message["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing field")),
        "{message}"
    );
    let records = quarantine(&hub, "own_app").await;
    assert_eq!(
        records.len(),
        2,
        "stale and malformed requests are quarantined: {records:?}"
    );

    assert_eq!(order_count(&hub).await, 0, "nothing refused was stored");
    // The hub keeps serving valid orders.
    let placed = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    hub.routed_order("own_app", &placed.external_order_id).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_app_replays_are_acknowledged_and_change_nothing() {
    let hub = TestHub::start().await;
    let placed = hub.app.place_order(&sample_pickup("NYC-002", "USD")).await;
    assert_eq!(placed.answer.status, 202);
    let replays: Vec<_> = (0..6).map(|_| hub.app.resend(&placed)).collect();
    for answer in futures::future::join_all(replays).await {
        assert_eq!(answer.status, 202, "{}", answer.body);
        let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(body["duplicate"], true);
    }
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    hub.delivered_to_store(view["id"].as_str().expect("id"))
        .await;
    assert_eq!(order_count(&hub).await, 1);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_status_changes_are_refused_with_a_clear_error() {
    let hub = TestHub::start().await;
    let placed = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    let order_id = view["id"].as_str().expect("id").to_owned();
    let token = hub.token("NYC-001").to_owned();
    let path = |action: &str| format!("/orders/{order_id}/{action}");

    let (status, body) = hub.post(&token, &path("ready"), json!({})).await;
    assert_eq!(status, 409, "ready before accept: {body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("must be accepted first")),
        "{body}"
    );
    let (status, body) = hub.post(&token, &path("reject"), json!({})).await;
    assert_eq!(status, 400, "a rejection needs a reason: {body}");
    let (status, _) = hub
        .post(hub.token("NYC-002"), &path("accept"), json!({}))
        .await;
    assert_eq!(status, 404, "another store cannot touch the order");
    for action in ["accept", "ready", "complete"] {
        assert_eq!(
            hub.post(&token, &path(action), json!({})).await.0,
            200,
            "{action}"
        );
    }
    let (status, body) = hub.post(&token, &path("preparing"), json!({})).await;
    assert_eq!(status, 409, "completed -> preparing: {body}");
    assert_eq!(body["error"], "illegal_transition");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("`completed` to `preparing`")),
        "{body}"
    );
    let (status, _) = hub.post(&token, &path("fly"), json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = hub.get("not-a-token", "/orders").await;
    assert_eq!(status, 401);
    let (status, _) = hub.get(&token, &format!("/orders/{order_id}/events")).await;
    assert_eq!(status, 403, "the history endpoint is HQ's");
    hub.stop().await;
}

/// Sends an own-app pickup order at NYC-001, built by hand, for a Margherita at 18.99 USD
/// with the given `total`; returns the hub's answer.
async fn send_app_order(
    hub: &TestHub,
    id: &str,
    total: i64,
) -> crossdock_channel::sim::WebhookAnswer {
    let order = json!({
        "event": "order.created",
        "event_id": format!("ev-{id}"),
        "order": {
            "id": id, "code": "M1", "brand": "crossdock-pizza",
            "placed_at": chrono::Utc::now().to_rfc3339(),
            "fulfillment": "pickup", "store_id": "NYC-001",
            "customer": {"name": "Grace H"},
            "items": [{"sku": "PZ-MARG-L", "name": "Margherita (Large)", "quantity": 1, "unit_price": 1899, "modifiers": []}],
            "currency": "USD",
            "amounts": {"subtotal": 1899, "discount": 0, "delivery_fee": 0, "service_fee": 0, "tip": 0, "tax": 0, "total": total},
            "payment": "prepaid",
            "callback_url": hub.app.callback_url(),
        }
    });
    let body = serde_json::to_vec(&order).expect("json");
    hub.app
        .send_signed_at(body, chrono::Utc::now().timestamp())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_money_does_not_add_up_is_kept_but_flagged() {
    let hub = TestHub::start().await;
    // A total one cent short.
    let answer = send_app_order(&hub, "APP-MONEY-1", 1898).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let view = hub.routed_order("own_app", "APP-MONEY-1").await;
    assert_eq!(
        view["totals"]["total"]["minor"], 1898,
        "kept as the platform sent it"
    );
    assert_eq!(view["flags"][0]["flag"], "totals_mismatch");
    assert_eq!(view["flags"][0]["expected"]["minor"], 1899);
    let flagged = view["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["kind"] == "flagged");
    assert!(flagged, "the flag is in the order's history");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_that_arrives_before_its_order_keeps_the_order_from_any_store() {
    let hub = TestHub::start().await;
    let cancelled = hub
        .app
        .cancel("APP-EARLY-1", "customer changed their mind")
        .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.body);
    let answer = send_app_order(&hub, "APP-EARLY-1", 1899).await;
    assert_eq!(
        answer.status, 202,
        "the late order is acknowledged: {}",
        answer.body
    );

    let order = hub
        .db()
        .order_by_external("own_app", "APP-EARLY-1")
        .await
        .expect("db")
        .expect("the order is kept, for the record");
    assert_eq!(order.status.as_str(), "cancelled");
    assert_eq!(order.store_id, None, "never routed");
    let (_, view) = hub
        .get(&hub.admin_token, &format!("/orders/{}", order.id))
        .await;
    let cancel = view["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["status"] == "cancelled"))
        .expect("the cancellation is in the history")
        .clone();
    assert_eq!(cancel["source"], "channel");
    assert_eq!(cancel["reason"], "customer changed their mind");
    hub.settled(&order.id.to_string()).await;
    assert_eq!(hub.db().store_handovers(order.id).await.expect("db"), 0);
    assert!(
        hub.app.calls().all().is_empty(),
        "nothing is pushed back for the platform's own cancellation"
    );
    hub.stop().await;
}

/// A platform that pushes as `GET` with query parameters (Meituan's cancel push) has its
/// whole request kept: the query is the push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_push_keeps_its_query_with_the_raw_request() {
    let hub = TestHub::start().await;
    let dir = crate::helpers::repo_root().join("fixtures/meituan");
    let case = crossdock_kit::load_cases("meituan", &dir)
        .into_iter()
        .find(|case| case.name == "cancel_by_user_get")
        .expect("the Meituan GET cancel fixture");
    let request = case.request(chrono::Utc::now()).expect("a request");
    assert_eq!(request.method, reqwest::Method::GET);
    let query = request.query.clone().expect("the push is in the query");
    let path = request
        .url
        .strip_prefix(crossdock_kit::FIXTURE_PUBLIC_URL)
        .expect("fixture URL");
    let answer = hub
        .hub
        .access
        .http
        .get(format!("{}{path}?{query}", hub.base()))
        .send()
        .await
        .expect("GET push");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), r#"{"data":"ok"}"#);
    let client = hub.db().pool().get().await.expect("connection");
    let row = client
        .query_one(
            "SELECT headers, body FROM inbox WHERE channel = 'meituan'",
            &[],
        )
        .await
        .expect("the push is in the inbox");
    let headers: serde_json::Value = row.get(0);
    assert_eq!(headers[":method"], "GET");
    assert_eq!(headers[":query"], json!(query));
    hub.stop().await;
}
