//! Crash safety: the hub process is killed with SIGKILL after an order was committed and
//! acknowledged but before it was published; after a restart the order reaches its store
//! exactly once. The same run's logs (both processes) are checked for phone numbers and
//! secrets: there must be none.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{Infra, PosQueue, WAIT, repo_root, sample_pickup, wait_for};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Every line a hub process logged.
type Log = Arc<Mutex<Vec<String>>>;

/// Starts `crossdock serve` on `port`; `failpoint` is set in its environment if given.
/// Returns the child and a flag that turns true once the failpoint is reached; appends the
/// process's log lines to `log`.
fn spawn_hub(
    infra: &Infra,
    port: u16,
    failpoint: Option<&str>,
    log: &Log,
) -> (Child, Arc<AtomicBool>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crossdock"));
    command
        .arg("--config")
        .arg(repo_root().join("config/crossdock.toml"))
        .arg("serve")
        .env("CROSSDOCK_DATABASE__URL", &infra.settings.database.url)
        .env("CROSSDOCK_BROKER__PREFIX", &infra.settings.broker.prefix)
        .env(
            "CROSSDOCK_BROKER__STORE_SHARDS",
            infra.settings.broker.store_shards.to_string(),
        )
        .env("CROSSDOCK_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("CROSSDOCK_RELAY__POLL_MS", "50")
        .env("RUST_LOG", "info,lapin=warn")
        .env_remove("CROSSDOCK_FAILPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(name) = failpoint {
        command.env("CROSSDOCK_FAILPOINT", name);
    }
    let mut child = command.spawn().expect("spawn crossdock");
    let reached = Arc::new(AtomicBool::new(false));
    let stderr = child.stderr.take().expect("stderr");
    let flag = reached.clone();
    let log = log.clone();
    let echo = std::env::var("TEST_LOG").is_ok();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Failpoint reached") {
                flag.store(true, Ordering::SeqCst);
            }
            if echo {
                eprintln!("[hub:{port}] {line}");
            }
            log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    (child, reached)
}

async fn wait_healthy(port: u16) {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    wait_for("the hub to be ready", Duration::from_secs(60), || {
        let request = http.get(&url).send();
        async move {
            request
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_between_commit_and_publish_delivers_the_order_exactly_once_after_restart() {
    let infra = Infra::new().await;
    let port = free_port();
    let log = Log::default();
    let (mut first, reached) = spawn_hub(&infra, port, Some("relay_before_publish"), &log);
    wait_healthy(port).await;
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
    wait_for("the relay to reach its failpoint", WAIT, || {
        let reached = reached.load(Ordering::SeqCst);
        async move { reached.then_some(()) }
    })
    .await;
    let pid = Pid::from_raw(i32::try_from(first.id().expect("pid")).expect("pid fits"));
    kill(pid, Signal::SIGKILL).expect("SIGKILL");
    first.wait().await.expect("reaped");

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

    let (mut second, _) = spawn_hub(&infra, port, None, &log);
    wait_healthy(port).await;
    let id = order.id;
    wait_for(
        "the order to reach its store after the restart",
        WAIT,
        || async move { (db.store_handovers(id).await.ok()? == 1).then_some(()) },
    )
    .await;
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
    let _ = second.kill().await;
    let lines = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
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
