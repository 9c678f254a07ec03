//! `GET /metrics` end to end: orders over both simulators (one assigned and accepted, one
//! rejected by the router, one rejected by HQ), a replay of each channel, a forged webhook;
//! then the whole exposition is parsed as Prometheus text and the counters, histograms and
//! scrape-time gauges are checked against what was sent.

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::helpers::{TestHub, WAIT, sample_delivery, sample_pickup, wait_for};

/// GET `/metrics` (no token) and parse the whole body.
async fn get_metrics(hub: &TestHub) -> Scrape {
    let response = reqwest::get(format!("{}/metrics", hub.base()))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = response.text().await.expect("metrics body");
    assert!(body.ends_with("# EOF\n"), "a complete exposition: {body}");
    Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("exposition parses")
}

/// The sample `name` whose labels include every one of `labels`.
fn sample<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == name
            && labels
                .iter()
                .all(|(key, value)| s.labels.get(key) == Some(*value))
    })
}

/// The value of a counter, gauge or histogram `_count`/`_sum` sample (0 when absent:
/// a counter never incremented).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(other) => panic!("{name} is not a single value: {other:?}"),
        None => 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_hub_did_and_read_the_queues() {
    let hub = TestHub::start().await;

    // Own app: one pickup the hub assigns, one delivery no store reaches (the router
    // rejects it), one pickup HQ rejects.
    let kept = hub.app.place_order(&sample_pickup("LDN-002", "GBP")).await;
    assert_eq!(kept.answer.status, 202, "{}", kept.answer.body);
    let nowhere = hub
        .app
        .place_order(&sample_delivery(40.30, -73.70, "USD"))
        .await;
    assert_eq!(nowhere.answer.status, 202, "{}", nowhere.answer.body);
    let refused = hub.app.place_order(&sample_pickup("LDN-001", "GBP")).await;
    assert_eq!(refused.answer.status, 202, "{}", refused.answer.body);
    // Uber Eats (notify, then fetch): one order, which its store accepts.
    let uber = hub.uber_pickup("NYC-001").await;
    assert_eq!(uber.answer.status, 200, "{}", uber.answer.body);

    hub.routed_order("own_app", &kept.external_order_id).await;
    let view = hub
        .routed_order("own_app", &refused.external_order_id)
        .await;
    let refused_id = view["id"].as_str().expect("id").to_owned();
    let (status, body) = hub
        .post(
            &hub.admin_token,
            &format!("/orders/{refused_id}/reject"),
            json!({ "reason": "kitchen closed early" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let view = hub.routed_order("uber_eats", &uber.external_order_id).await;
    let uber_id = view["id"].as_str().expect("id").to_owned();
    let (status, body) = hub
        .post(
            hub.token("NYC-001"),
            &format!("/orders/{uber_id}/accept"),
            json!({ "prep_minutes": 15 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A replay on each channel is acknowledged and counts nothing new.
    let again = hub.app.resend(&kept).await;
    assert_eq!(again.status, 202, "{}", again.body);
    let again = hub
        .uber
        .resend_webhook(&uber.event_id)
        .await
        .expect("resend");
    assert_eq!(again.status, 200, "{}", again.body);
    // A forged Uber Eats webhook: refused and quarantined.
    let forged_body = br#"{"event_id":"e-forged","event_type":"orders.notification","event_time":1,"meta":{"resource_id":"x","status":"pos","user_id":"u"},"resource_href":"https://api.uber.com/v2/eats/order/x"}"#.to_vec();
    let forged = hub
        .uber
        .send_webhook_raw(forged_body, Some("00".repeat(32)))
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);

    // The workers run on their own: wait until the last of their counts are in.
    let running = &hub;
    let scrape = wait_for("the metrics to count every stage", WAIT, || async move {
        let scrape = get_metrics(running).await;
        let own_syncs = value(
            &scrape,
            "crossdock_sync_attempts_total",
            &[("channel", "own_app"), ("result", "delivered")],
        );
        let uber_syncs = value(
            &scrape,
            "crossdock_sync_attempts_total",
            &[("channel", "uber_eats"), ("result", "delivered")],
        );
        let ingested_uber = value(
            &scrape,
            "crossdock_orders_ingested_total",
            &[("channel", "uber_eats")],
        );
        let rejected_by_router = value(
            &scrape,
            "crossdock_orders_rejected_total",
            &[("channel", "own_app"), ("by", "router")],
        );
        (own_syncs >= 2.0 && uber_syncs >= 1.0 && ingested_uber >= 1.0 && rejected_by_router >= 1.0)
            .then_some(scrape)
    })
    .await;

    let at = |name: &str, labels: &[(&str, &str)]| value(&scrape, name, labels);
    // Ingest: every new order once, replays not counted; the forged request refused and
    // quarantined under its channel.
    assert_eq!(
        at("crossdock_orders_ingested_total", &[("channel", "own_app")]),
        3.0
    );
    assert_eq!(
        at(
            "crossdock_orders_ingested_total",
            &[("channel", "uber_eats")]
        ),
        1.0
    );
    assert_eq!(
        at("crossdock_quarantined_total", &[("channel", "uber_eats")]),
        1.0
    );
    assert_eq!(
        at("crossdock_quarantined_total", &[("channel", "own_app")]),
        0.0
    );
    assert_eq!(
        at(
            "crossdock_webhooks_refused_total",
            &[("channel", "uber_eats"), ("reason", "unauthorized")]
        ),
        1.0
    );
    assert!(
        sample(
            &scrape,
            "crossdock_orders_ingested_total",
            &[("channel", "doordash")]
        )
        .is_some(),
        "every channel's counter exists before its first order"
    );
    // Routing: three orders assigned, one rejected; rejections by whom.
    assert_eq!(
        at(
            "crossdock_routing_decisions_total",
            &[("outcome", "assigned")]
        ),
        3.0
    );
    assert_eq!(
        at(
            "crossdock_routing_decisions_total",
            &[("outcome", "rejected")]
        ),
        1.0
    );
    for (by, count) in [("router", 1.0), ("hq", 1.0), ("deadline", 0.0)] {
        assert_eq!(
            at(
                "crossdock_orders_rejected_total",
                &[("channel", "own_app"), ("by", by)]
            ),
            count,
            "rejected by {by}"
        );
        assert_eq!(
            at(
                "crossdock_orders_rejected_total",
                &[("channel", "uber_eats"), ("by", by)]
            ),
            0.0
        );
    }
    // Sync: Uber hears the accept; the app hears both rejections.
    assert_eq!(
        at(
            "crossdock_sync_attempts_total",
            &[("channel", "uber_eats"), ("result", "delivered")]
        ),
        1.0
    );
    assert_eq!(
        at(
            "crossdock_sync_attempts_total",
            &[("channel", "own_app"), ("result", "delivered")]
        ),
        2.0
    );
    assert_eq!(
        at("crossdock_sync_failures_total", &[("channel", "uber_eats")]),
        0.0
    );

    // Histograms: one observation per request, routing, assignment and push.
    for (name, labels, count) in [
        (
            "crossdock_ingest_duration_seconds",
            vec![("channel", "own_app")],
            4.0,
        ),
        (
            "crossdock_ingest_duration_seconds",
            vec![("channel", "uber_eats")],
            3.0,
        ),
        (
            "crossdock_routing_duration_seconds",
            vec![("outcome", "assigned")],
            3.0,
        ),
        (
            "crossdock_routing_duration_seconds",
            vec![("outcome", "rejected")],
            1.0,
        ),
        (
            "crossdock_order_age_at_assignment_seconds",
            vec![("channel", "own_app")],
            2.0,
        ),
        (
            "crossdock_order_age_at_assignment_seconds",
            vec![("channel", "uber_eats")],
            1.0,
        ),
        (
            "crossdock_sync_duration_seconds",
            vec![("channel", "uber_eats")],
            1.0,
        ),
        (
            "crossdock_sync_duration_seconds",
            vec![("channel", "own_app")],
            2.0,
        ),
    ] {
        assert_eq!(
            at(&format!("{name}_count"), &labels),
            count,
            "{name} {labels:?}"
        );
        assert!(
            at(&format!("{name}_sum"), &labels) > 0.0,
            "{name} {labels:?}"
        );
        let Some(Value::Histogram(buckets)) = sample(&scrape, name, &labels).map(|s| &s.value)
        else {
            panic!("{name} {labels:?} has buckets");
        };
        let inf = buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count);
        assert_eq!(inf, Some(count), "{name} {labels:?}: {buckets:?}");
        assert!(
            buckets.iter().any(|b| b.less_than <= 0.001),
            "buckets start at 1 ms: {buckets:?}"
        );
    }

    // Read at scrape time: every queue's depth, the broker and database up.
    let topology = &hub.handle().shared.topology;
    for queue in crossdock_broker::topology_queues(topology) {
        assert!(
            sample(
                &scrape,
                "crossdock_queue_depth",
                &[("queue", queue.as_str())]
            )
            .is_some(),
            "depth of {queue}"
        );
    }
    assert!(
        sample(
            &scrape,
            "crossdock_queue_depth",
            &[("queue", &topology.orders_queue())]
        )
        .is_some()
    );
    assert!(
        sample(
            &scrape,
            "crossdock_queue_depth",
            &[("queue", &topology.sync_queue())]
        )
        .is_some()
    );
    assert!(
        at(
            "crossdock_queue_consumers",
            &[("queue", &topology.orders_queue())]
        ) >= 1.0,
        "the router consumes the order queue"
    );
    assert_eq!(at("crossdock_broker_up", &[]), 1.0);
    assert_eq!(at("crossdock_database_up", &[]), 1.0);
    assert!(sample(&scrape, "crossdock_outbox_pending", &[]).is_some());
    assert_eq!(at("crossdock_outbox_refused", &[]), 0.0);
    assert_eq!(
        at(
            "crossdock_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // Once everything is published, the outbox backlog reads 0.
    wait_for("the outbox to drain", WAIT, || async move {
        let scrape = get_metrics(running).await;
        (sample(&scrape, "crossdock_outbox_pending", &[]).is_some()
            && value(&scrape, "crossdock_outbox_pending", &[]) == 0.0)
            .then_some(())
    })
    .await;
    hub.stop().await;
}
