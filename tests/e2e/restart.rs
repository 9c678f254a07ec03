//! Crash safety: the hub process is killed with SIGKILL after an order was committed and
//! acknowledged but before it was published; after a restart the order reaches its store
//! exactly once. The same run's logs (both processes) are checked for phone numbers and
//! secrets: there must be none.

use std::net::SocketAddr;
use std::time::Duration;

use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig};

use crate::helpers::{Infra, PosQueue, WAIT, sample_pickup, wait_for};
use crate::process::{HubProcess, STARTED, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_between_commit_and_publish_delivers_the_order_exactly_once_after_restart() {
    let infra = Infra::new().await;
    let port = free_port();
    let mut first = HubProcess::spawn(
        &infra,
        port,
        &[("CROSSDOCK_FAILPOINT", "before_publish".into())],
    );
    let first_log = first.log.clone();
    first_log
        .wait_for_line(STARTED, Duration::from_secs(60))
        .await;
    let mut pos = PosQueue::bind(&infra.settings, "NYC-001").await;
    let app = OwnAppSim::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        hub_webhook_url: format!("http://127.0.0.1:{port}/webhooks/own_app"),
        signing_secret: crossdock_adapter_own_app::DEV_SIGNING_SECRET.into(),
    })
    .await
    .expect("simulator");

    let placed = app.place_order(&sample_pickup("NYC-001", "USD")).await;
    assert_eq!(
        placed.answer.status, 202,
        "acknowledged after commit: {}",
        placed.answer.body
    );
    first_log.wait_for_line("Failpoint reached", WAIT).await;
    first.sigkill().await;

    let db = &infra.db;
    let order = db
        .order_by_external("own_app", &placed.external_order_id)
        .await
        .expect("db")
        .expect("committed");
    assert_eq!(order.store_id, None, "killed before anything was published");
    assert_eq!(db.store_handovers(order.id).await.expect("db"), 0);
    assert!(
        db.outbox_backlog().await.expect("db") >= 1,
        "the message waits in the outbox"
    );

    let mut second = HubProcess::spawn(&infra, port, &[]);
    let second_log = second.log.clone();
    second_log
        .wait_for_line(STARTED, Duration::from_secs(60))
        .await;
    second_log
        .wait_for_line("Order delivered to its store.", WAIT)
        .await;
    assert_eq!(db.store_handovers(order.id).await.expect("db"), 1);
    let (kind, message) = pos
        .next(WAIT)
        .await
        .expect("the store's queue carries the order");
    assert_eq!(kind, "order.routed");
    assert_eq!(message["order_id"], order.id.to_string());
    assert!(
        pos.next(Duration::from_millis(500)).await.is_none(),
        "exactly once"
    );
    let routed = db.order(order.id, None).await.expect("db").expect("order");
    assert_eq!(
        routed.store_id.as_ref().map(|s| s.as_str()),
        Some("NYC-001")
    );
    wait_for("the outbox to drain", WAIT, || async move {
        (db.outbox_backlog().await.ok()? == 0).then_some(())
    })
    .await;

    // Status changes reach the logs too: work the order, then read everything logged.
    let token = crossdock_hub::chain::issue_token(
        db,
        &crossdock_model::StoreId::parse("NYC-001").expect("store id"),
    )
    .await
    .expect("token");
    let http = reqwest::Client::new();
    let accept = http
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/orders/{}/accept",
            order.id
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({"prep_minutes": 10}))
        .send()
        .await
        .expect("accept");
    assert_eq!(accept.status(), 200);
    app.calls()
        .wait_until(WAIT, |calls| !calls.is_empty())
        .await;
    let _ = second.child.kill().await;
    let lines = [first_log.lines(), second_log.lines()].concat();
    assert!(
        lines.iter().any(|l| l.contains("Webhook accepted")),
        "the hub's logs were captured"
    );
    let phone = sample_pickup("NYC-001", "USD")
        .customer_phone
        .expect("the sample has a phone");
    let masked = crossdock_model::mask_phone(&phone);
    assert!(
        lines.iter().any(|l| l.contains(&masked)),
        "the phone is logged, masked as {masked}"
    );
    let phone_digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let secrets = [
        crossdock_adapter_own_app::DEV_SIGNING_SECRET,
        crossdock_hub::config::DEV_ADMIN_TOKEN,
        token.as_str(),
        "guest:guest",
    ];
    for line in &lines {
        let digits: String = line.chars().filter(char::is_ascii_digit).collect();
        assert!(
            !digits.contains(&phone_digits),
            "a full phone number in the logs: {line}"
        );
        for secret in secrets {
            assert!(!line.contains(secret), "a secret in the logs: {line}");
        }
    }
    app.stop().await;
    infra.cleanup().await;
}
