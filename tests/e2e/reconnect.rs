//! The hub reconnects to PostgreSQL and RabbitMQ by itself, with backoff, and says so in
//! its logs and `/readyz`. The real `crossdock serve` reaches both through TCP proxies the
//! test cuts and restores: started while neither is reachable, it waits (with backoff) for
//! PostgreSQL and then serves while RabbitMQ is still away; each later outage is logged
//! when it starts and when it ends and shows in `/readyz`; an order acknowledged while
//! RabbitMQ is away reaches its store once it is back, exactly once.

use std::net::{SocketAddr, ToSocketAddrs};

use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig};
use crossdock_kit::proxy::Proxy;
use reqwest::Url;
use serde_json::Value;

use crate::helpers::{Infra, PosQueue, WAIT, sample_pickup, wait_for};
use crate::process::{HubProcess, STARTED, free_port};

/// Where `url` points (host and port, `default_port` if it names none).
fn target_of(url: &str, default_port: u16) -> SocketAddr {
    let parsed = Url::parse(url).expect("a URL");
    let host = parsed.host_str().expect("a host");
    (host, parsed.port().unwrap_or(default_port))
        .to_socket_addrs()
        .expect("resolvable")
        .next()
        .expect("an address")
}

/// `url`, pointed at `proxy` instead.
fn through(url: &str, proxy: &Proxy) -> String {
    let mut parsed = Url::parse(url).expect("a URL");
    parsed
        .set_host(Some(&proxy.addr().ip().to_string()))
        .expect("host");
    parsed.set_port(Some(proxy.addr().port())).expect("port");
    parsed.to_string()
}

/// `/readyz`: (HTTP status, body).
async fn readyz(http: &reqwest::Client, hub: &HubProcess) -> (u16, Value) {
    let response = http
        .get(format!("{}/readyz", hub.base()))
        .send()
        .await
        .expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// Waits until `/readyz` answers `status`; returns its body.
async fn wait_readyz(http: &reqwest::Client, hub: &HubProcess, status: u16) -> Value {
    wait_for(&format!("/readyz to answer {status}"), WAIT, || async {
        let (seen, body) = readyz(http, hub).await;
        (seen == status).then_some(body)
    })
    .await
}

/// Waits until the own app's order reaches its store's queue, and checks the hub handed it
/// over once. (The queue itself may carry a message twice: the broker delivers at least
/// once, and the hub's store worker is what makes the hand-over exactly once.)
async fn arrives(infra: &Infra, store: &mut PosQueue, external_order_id: &str) {
    let order = infra
        .db
        .order_by_external("own_app", external_order_id)
        .await
        .expect("db")
        .expect("the order is stored");
    loop {
        let (kind, message) = store.next(WAIT).await.expect("the order reaches its store");
        if kind == "order.routed" && message["order_id"] == order.id.to_string() {
            break;
        }
    }
    let db = &infra.db;
    wait_for("the hand-over to be recorded", WAIT, || async move {
        (db.store_handovers(order.id).await.ok()? >= 1).then_some(())
    })
    .await;
    assert_eq!(db.store_handovers(order.id).await.expect("db"), 1, "once");
}

/// The own app's simulator, placing its orders with `hub`.
async fn own_app(hub: &HubProcess) -> OwnAppSim {
    OwnAppSim::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        hub_webhook_url: format!("{}/webhooks/own_app", hub.base()),
        signing_secret: crossdock_adapter_own_app::DEV_SIGNING_SECRET.into(),
    })
    .await
    .expect("simulator")
}

fn session_names(ready: &Value) -> Vec<String> {
    ready["broker_sessions"]
        .as_array()
        .expect("broker sessions")
        .iter()
        .map(|session| session["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn sessions_up(ready: &Value) -> Vec<bool> {
    ready["broker_sessions"]
        .as_array()
        .expect("broker sessions")
        .iter()
        .map(|session| session["up"].as_bool().expect("up"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_waits_for_and_reconnects_to_postgres_and_rabbitmq_and_says_so() {
    let infra = Infra::new().await;
    let postgres = Proxy::start(target_of(&infra.settings.database.url, 5432))
        .await
        .expect("PostgreSQL proxy");
    let rabbitmq = Proxy::start(target_of(&infra.settings.broker.url, 5672))
        .await
        .expect("RabbitMQ proxy");
    postgres.cut().await;
    rabbitmq.cut().await;
    let mut hub = HubProcess::spawn(
        &infra,
        free_port(),
        &[
            (
                "CROSSDOCK_DATABASE__URL",
                through(&infra.settings.database.url, &postgres),
            ),
            (
                "CROSSDOCK_BROKER__URL",
                through(&infra.settings.broker.url, &rabbitmq),
            ),
        ],
    );
    let http = reqwest::Client::new();

    // Started with neither service reachable: it waits for PostgreSQL, retrying.
    hub.log
        .wait_for_count("PostgreSQL is not reachable yet", 3, WAIT)
        .await;
    assert!(hub.is_running(), "it waits instead of exiting");
    assert_eq!(
        hub.log.count(STARTED),
        0,
        "nothing served without PostgreSQL"
    );
    postgres.restore();
    hub.log.wait_for_line(STARTED, WAIT).await;
    hub.log.wait_for_line("PostgreSQL reachable;", WAIT).await;

    // RabbitMQ is still away: the hub serves and says it is not ready, and why.
    hub.log
        .wait_for_line("Publisher cannot reach RabbitMQ; retrying.", WAIT)
        .await;
    hub.log
        .wait_for_line("Consumer cannot reach RabbitMQ yet; retrying.", WAIT)
        .await;
    let (status, ready) = readyz(&http, &hub).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["postgres"], true, "{ready}");
    assert_eq!(ready["rabbitmq"], false, "{ready}");
    let names = session_names(&ready);
    let prefix = &infra.settings.broker.prefix;
    for expected in [
        "publisher".to_owned(),
        format!("{prefix}.orders"),
        format!("{prefix}.fetch"),
        format!("{prefix}.sync"),
        format!("{prefix}.store.000"),
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(sessions_up(&ready).iter().all(|up| !up), "{ready}");

    // An order placed now is acknowledged: it waits in the outbox for the broker.
    let mut store = PosQueue::bind(&infra.settings, "NYC-001").await;
    let app = own_app(&hub).await;
    let first = app.place_order(&sample_pickup("NYC-001", "USD")).await;
    assert_eq!(first.answer.status, 202, "{}", first.answer.body);

    rabbitmq.restore();
    let ready = wait_readyz(&http, &hub, 200).await;
    assert_eq!(ready["rabbitmq"], true, "{ready}");
    assert!(sessions_up(&ready).iter().all(|up| *up), "{ready}");
    hub.log
        .wait_for_line("Publisher reconnected to RabbitMQ.", WAIT)
        .await;
    hub.log
        .wait_for_line("Consumer reconnected to RabbitMQ.", WAIT)
        .await;
    arrives(&infra, &mut store, &first.external_order_id).await;

    // PostgreSQL goes away and comes back: logged both ways, and not ready in between.
    postgres.cut().await;
    hub.log.wait_for_line("PostgreSQL unreachable;", WAIT).await;
    let during = wait_readyz(&http, &hub, 503).await;
    assert_eq!(during["postgres"], false, "{during}");
    postgres.restore();
    hub.log
        .wait_for_line("PostgreSQL reachable again.", WAIT)
        .await;
    let after = wait_readyz(&http, &hub, 200).await;
    assert_eq!(after["postgres"], true, "{after}");

    // RabbitMQ goes away: every session notices, an order is still taken, and it arrives
    // once the sessions are back.
    let reconnected = hub.log.count("Consumer reconnected to RabbitMQ.");
    rabbitmq.cut().await;
    hub.log
        .wait_for_line("Consumer lost its broker session; reconnecting.", WAIT)
        .await;
    let during = wait_readyz(&http, &hub, 503).await;
    assert_eq!(during["rabbitmq"], false, "{during}");
    assert_eq!(during["postgres"], true, "{during}");
    let second = app.place_order(&sample_pickup("NYC-001", "USD")).await;
    assert_eq!(second.answer.status, 202, "{}", second.answer.body);
    rabbitmq.restore();
    hub.log
        .wait_for_count("Consumer reconnected to RabbitMQ.", reconnected + 1, WAIT)
        .await;
    let ready = wait_readyz(&http, &hub, 200).await;
    assert!(sessions_up(&ready).iter().all(|up| *up), "{ready}");
    arrives(&infra, &mut store, &second.external_order_id).await;
    assert!(hub.is_running(), "the same process throughout");

    app.stop().await;
    infra.cleanup().await;
}

/// A store's messages keep their order across a broker outage: a status committed while
/// RabbitMQ is away waits, in the committing process, for the broker to come back, and is
/// published before any status committed after it, however long the outage. (The relay's
/// grace is set beyond the test's patience: it must not be the relay that publishes it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_messages_keep_their_order_across_a_broker_outage() {
    let infra = Infra::new().await;
    let rabbitmq = Proxy::start(target_of(&infra.settings.broker.url, 5672))
        .await
        .expect("RabbitMQ proxy");
    let hub = HubProcess::spawn(
        &infra,
        free_port(),
        &[
            (
                "CROSSDOCK_BROKER__URL",
                through(&infra.settings.broker.url, &rabbitmq),
            ),
            ("CROSSDOCK_RELAY__GRACE_MS", "600000".into()),
        ],
    );
    hub.log.wait_for_line(STARTED, WAIT).await;
    let http = reqwest::Client::new();
    wait_readyz(&http, &hub, 200).await;
    let mut store = PosQueue::bind(&infra.settings, "NYC-001").await;
    let app = own_app(&hub).await;
    let placed = app.place_order(&sample_pickup("NYC-001", "USD")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    arrives(&infra, &mut store, &placed.external_order_id).await;
    let order = infra
        .db
        .order_by_external("own_app", &placed.external_order_id)
        .await
        .expect("db")
        .expect("stored");
    let token = crossdock_hub::chain::issue_token(
        &infra.db,
        &crossdock_model::StoreId::parse("NYC-001").expect("store id"),
    )
    .await
    .expect("token");
    let act = |action: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/v1/orders/{}/{action}", hub.base(), order.id);
        let token = token.clone();
        async move {
            let answer = http
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({"prep_minutes": 10}))
                .send()
                .await
                .expect("the API answers");
            assert_eq!(answer.status(), 200, "{action}");
        }
    };

    // Accepted while the broker is away; in preparation once it is back.
    rabbitmq.cut().await;
    hub.log
        .wait_for_line("Consumer lost its broker session; reconnecting.", WAIT)
        .await;
    act("accept").await;
    // Long enough for any patience short of the outage to run out.
    wait_for("the publisher to have been away for 2 s", WAIT, || async {
        let (_, ready) = readyz(&http, &hub).await;
        ready["broker_sessions"]
            .as_array()?
            .iter()
            .any(|session| {
                session["name"] == "publisher"
                    && session["up"] == false
                    && session["for_ms"].as_u64().is_some_and(|ms| ms >= 2000)
            })
            .then_some(())
    })
    .await;
    rabbitmq.restore();
    wait_readyz(&http, &hub, 200).await;
    act("preparing").await;

    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let (kind, message) = store
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("both statuses reach the store, got {kinds:?}"));
        if message["order_id"] == order.id.to_string() && kind != "order.routed" {
            kinds.push(kind);
        }
    }
    assert_eq!(
        kinds,
        ["order.accepted", "order.preparing"],
        "in commit order"
    );
    app.stop().await;
    infra.cleanup().await;
}
