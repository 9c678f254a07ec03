//! Bad input at the door (forged, stale, malformed, too large, too many from one source),
//! illegal status changes, and money that does not add up.

use std::net::IpAddr;
use std::num::NonZeroU32;

use crossdock_adapter_uber_eats::Generation;
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

/// The hub's answer to an own-app webhook: whether it was a duplicate, and its order.
fn own_app_answer(answer: &crossdock_channel::sim::WebhookAnswer) -> (bool, String) {
    assert_eq!(answer.status, 202, "{}", answer.body);
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    let order_id = body["order_id"].as_str().expect("an order id").to_owned();
    (body["duplicate"] == true, order_id)
}

/// Orders that arrive at once are recorded together (the orders desk); each request is
/// answered as if it came alone: every new order once, under an id of its own, and every
/// replay, sent among new orders, as a duplicate of the order it made. Each order
/// reaches its store (24 in all: within the store's capacity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_that_arrive_at_once_are_each_recorded_once_and_replays_among_them_change_nothing() {
    let hub = TestHub::start().await;
    let sample = sample_pickup("NYC-002", "USD");
    let first = futures::future::join_all((0..12).map(|_| hub.app.place_order(&sample))).await;
    let mut ids = std::collections::HashSet::new();
    for placed in &first {
        let (duplicate, order_id) = own_app_answer(&placed.answer);
        assert!(!duplicate, "a new order");
        assert!(ids.insert(order_id), "an id of its own");
    }
    let replays = futures::future::join_all(first.iter().map(|placed| hub.app.resend(placed)));
    let more = futures::future::join_all((0..12).map(|_| hub.app.place_order(&sample)));
    let (replays, more) = tokio::join!(replays, more);
    for (placed, replay) in first.iter().zip(&replays) {
        assert_eq!(
            own_app_answer(replay),
            (true, own_app_answer(&placed.answer).1),
            "a replay answers with the order it made"
        );
    }
    for placed in &more {
        let (duplicate, order_id) = own_app_answer(&placed.answer);
        assert!(!duplicate, "a new order");
        assert!(ids.insert(order_id), "an id of its own");
    }
    assert_eq!(order_count(&hub).await, 24, "each order stored once");
    for placed in first.iter().chain(&more) {
        let view = hub.routed_order("own_app", &placed.external_order_id).await;
        hub.delivered_to_store(view["id"].as_str().expect("id"))
            .await;
    }
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

/// An answer's status, `Retry-After` (when given) and JSON body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: serde_json::Value,
}

/// POSTs `body` to `/webhooks/{path}` from `http`, with `headers`.
async fn post_webhook(
    hub: &TestHub,
    http: &reqwest::Client,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut request = http
        .post(format!("{}/webhooks/{path}", hub.base()))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST webhook");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.parse().expect("Retry-After is whole seconds"));
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

/// Asserts a 429 in the API's shape with a `Retry-After` of at least a second (and at most
/// the 100 s one request takes to come back at 0.01 a second).
fn assert_rate_limited(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 429, "{what}: {}", answer.body);
    assert_eq!(
        answer.body["error"], "rate_limited",
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.body["message"].is_string(),
        "{what}: {}",
        answer.body
    );
    let retry_after = answer.retry_after.expect("Retry-After");
    assert!((1..=100).contains(&retry_after), "{what}: {retry_after}");
}

/// A counter of `/metrics` with these labels (0 when absent).
async fn counter(hub: &TestHub, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = reqwest::get(format!("{}/metrics", hub.base()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .expect("exposition parses");
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(key, value)| s.labels.get(key) == Some(*value))
        })
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name} is not a counter: {other:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_its_ingest_limit_gets_429_per_channel_and_nothing_is_quarantined() {
    // Three requests at once per source and channel, then one every 100 s: nothing comes
    // back while the test runs. 127.0.0.1 is a trusted proxy.
    let hub = TestHub::start_tuned(Generation::Classic, |settings| {
        settings.http.ingest_per_second = 0.01;
        settings.http.ingest_burst = NonZeroU32::new(3).expect("non-zero");
        settings.http.trusted_proxies = vec![IpAddr::from([127, 0, 0, 1])];
    })
    .await;
    let http = reqwest::Client::new();
    let junk = || br#"{"event":"order.created","event_id":"junk"}"#.to_vec();

    // The own app's simulator (127.0.0.1, nothing forwarded): three orders, then 429.
    for _ in 0..3 {
        let placed = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
        assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    }
    let fourth = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    assert_eq!(fourth.answer.status, 429, "{}", fourth.answer.body);
    // Requests the hub would refuse and quarantine are refused before that: 429 only.
    for n in 0..3 {
        let answer = post_webhook(&hub, &http, "own_app", &[], junk()).await;
        assert_rate_limited(&answer, &format!("junk {n}"));
    }
    let limited_events = post_webhook(&hub, &http, "own_app/order.created", &[], junk()).await;
    assert_rate_limited(&limited_events, "the channel's event route");
    assert!(
        hub.db()
            .order_by_external("own_app", &fourth.external_order_id)
            .await
            .expect("db")
            .is_none(),
        "the refused order was not stored"
    );
    assert_eq!(order_count(&hub).await, 3);
    assert!(quarantine(&hub, "own_app").await.is_empty());

    // Another channel from the same source still passes.
    let uber = hub.uber_pickup("NYC-001").await;
    hub.routed_order("uber_eats", &uber.external_order_id).await;

    // Through the trusted proxy, the forwarded client is the source: a bucket of its own,
    // so this one is verified (and refused as unsigned).
    let forwarded = post_webhook(
        &hub,
        &http,
        "own_app",
        &[("x-forwarded-for", "198.51.100.1, 203.0.113.7")],
        junk(),
    )
    .await;
    assert_eq!(forwarded.status, 401, "{}", forwarded.body);

    // An untrusted peer (127.0.0.2) is its own source whatever it forwards.
    let other_peer = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    for n in 0..3 {
        let spoofed = format!("203.0.113.{}", 10 + n);
        let answer = post_webhook(
            &hub,
            &other_peer,
            "own_app",
            &[("x-forwarded-for", spoofed.as_str())],
            junk(),
        )
        .await;
        assert_eq!(answer.status, 401, "{n}: {}", answer.body);
    }
    let answer = post_webhook(
        &hub,
        &other_peer,
        "own_app",
        &[("x-forwarded-for", "203.0.113.99")],
        junk(),
    )
    .await;
    assert_rate_limited(&answer, "a spoofed X-Forwarded-For from an untrusted peer");

    // Only the four requests that were let through and refused are quarantined.
    let records = quarantine(&hub, "own_app").await;
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(
        records.iter().all(|r| r["error"] == "unauthorized"),
        "{records:?}"
    );

    // Code redemptions have their own bucket: three refused by the handler, then 429.
    for _ in 0..3 {
        let (status, body) = hub
            .post(
                hub.token("SHA-001"),
                "/codes/redeem",
                json!({"channel": "nowhere", "code": "1234"}),
            )
            .await;
        assert_eq!((status, &body["error"]), (400, &json!("unknown_channel")));
    }
    let response = hub
        .hub
        .access
        .http
        .post(format!("{}/api/v1/codes/redeem", hub.base()))
        .bearer_auth(hub.token("SHA-001"))
        .json(&json!({"channel": "dianping", "code": "1234"}))
        .send()
        .await
        .expect("POST");
    let answer = Answer {
        status: response.status().as_u16(),
        retry_after: response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
        body: response.json().await.unwrap_or_default(),
    };
    assert_rate_limited(&answer, "the fourth redemption");

    // Counted, each under its own bucket's name.
    let refused = |channel| {
        let hub = &hub;
        async move {
            counter(
                hub,
                "crossdock_webhooks_refused_total",
                &[("channel", channel), ("reason", "rate_limited")],
            )
            .await
        }
    };
    assert_eq!(refused("own_app").await, 6.0);
    assert_eq!(refused("codes").await, 1.0);
    assert_eq!(refused("uber_eats").await, 0.0);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_body_over_the_limit_is_refused_with_413_and_quarantined_on_every_channel() {
    let hub = TestHub::start().await;
    let limit = hub.hub.infra.settings.http.body_limit_bytes;
    let head = crossdock_hub::http::QUARANTINED_HEAD_BYTES;
    assert!(limit > head, "the test shows the head is all that is kept");
    let http = reqwest::Client::new();
    let channels: Vec<&str> = crossdock_hub::channels::factories()
        .iter()
        .map(|f| f.id())
        .collect();
    assert!(channels.len() >= 10, "{channels:?}");
    let client = hub.db().pool().get().await.expect("connection");
    let too_large = |channel: &str| {
        let channel = channel.to_owned();
        let client = &client;
        async move {
            client
                .query(
                    "SELECT reason, headers, length(body) FROM quarantine
                     WHERE channel = $1 AND error_kind = 'too_large'",
                    &[&channel],
                )
                .await
                .expect("quarantine")
        }
    };
    let headers = [
        ("x-request-marker", "oversized"),
        ("authorization", "Bearer not-kept"),
    ];
    for channel in &channels {
        let answer = post_webhook(&hub, &http, channel, &headers, vec![b'x'; limit + 1]).await;
        assert_eq!(answer.status, 413, "{channel}: {}", answer.body);
        assert_eq!(
            answer.body,
            json!({"error": "too_large", "message": format!("body over {limit} bytes")}),
            "{channel}"
        );
        let rows = too_large(channel).await;
        assert_eq!(rows.len(), 1, "{channel}: one quarantine record");
        let reason: String = rows[0].get(0);
        let kept: serde_json::Value = rows[0].get(1);
        let length: i32 = rows[0].get(2);
        assert!(reason.contains(&limit.to_string()), "{channel}: {reason}");
        assert_eq!(kept["x-request-marker"], "oversized", "{channel}: {kept}");
        assert!(kept.get("authorization").is_none(), "{channel}: {kept}");
        assert_eq!(
            usize::try_from(length).expect("length"),
            head,
            "{channel}: only the head is kept"
        );

        // At the limit the body is read and handed to the channel (which refuses junk
        // in its own way, never as too large).
        let answer = post_webhook(&hub, &http, channel, &headers, vec![b'x'; limit]).await;
        assert_ne!(answer.status, 413, "{channel}: {}", answer.body);
        assert_eq!(too_large(channel).await.len(), 1, "{channel}");
    }

    // The event route too, and the API keeps answering 413 in its JSON shape.
    let answer = post_webhook(
        &hub,
        &http,
        "own_app/order.created",
        &[],
        vec![b'x'; limit + 1],
    )
    .await;
    assert_eq!(
        (answer.status, &answer.body["error"]),
        (413, &json!("too_large"))
    );
    assert_eq!(too_large("own_app").await.len(), 2);
    for path in ["/stores/NYC-001/pause", "/codes/redeem"] {
        let response = http
            .post(format!("{}/api/v1{path}", hub.base()))
            .bearer_auth(hub.token("NYC-001"))
            .header("content-type", "application/json")
            .body(vec![b' '; limit + 1])
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 413, "{path}");
        let body: serde_json::Value = response.json().await.expect("a JSON error");
        assert_eq!(
            body,
            json!({"error": "too_large", "message": format!("body over {limit} bytes")}),
            "{path}"
        );
    }
    let (_, live) = hub.get(hub.token("NYC-001"), "/stores/NYC-001/live").await;
    assert_eq!(live["paused"], false, "{live}");
    assert_eq!(
        counter(
            &hub,
            "crossdock_webhooks_refused_total",
            &[("channel", "own_app"), ("reason", "too_large")],
        )
        .await,
        2.0
    );
    hub.stop().await;
}
