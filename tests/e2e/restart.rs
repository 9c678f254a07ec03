//! Crash safety: the hub process is killed with SIGKILL after an order was committed and
//! acknowledged but before it was published; after a restart the order reaches its store
//! exactly once. The same run's logs (both processes) are checked for phone numbers and
//! secrets: there must be none.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::helpers::{Infra, PosQueue, WAIT, repo_root, sample_pickup, wait_for};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Every line a hub process logged, and a way to wait for one.
#[derive(Clone, Default)]
struct ProcessLog {
    lines: Arc<Mutex<Vec<String>>>,
    grew: Arc<Notify>,
}

impl ProcessLog {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
        self.grew.notify_waiters();
    }

    /// Waits until a logged line contains `needle`.
    async fn wait_for_line(&self, needle: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check, so a line pushed in between still wakes us.
            let grew = self.grew.notified();
            if self.lines().iter().any(|l| l.contains(needle)) {
                return;
            }
            let woken = tokio::time::timeout_at(deadline, grew).await;
            assert!(
                woken.is_ok(),
                "the hub did not log `{needle}` within {timeout:?}"
            );
        }
    }
}

/// Starts `crossdock serve` on `port`, with `failpoint` set in its environment if given;
/// returns the child and its log.
fn spawn_hub(infra: &Infra, port: u16, failpoint: Option<&str>) -> (Child, ProcessLog) {
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
    let stderr = child.stderr.take().expect("stderr");
    let log = ProcessLog::default();
    let sink = log.clone();
    let echo = std::env::var("TEST_LOG").is_ok();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("[hub:{port}] {line}");
            }
            sink.push(line);
        }
    });
    (child, log)
}

/// The hub logs `Listening.` once every stage has started (database and broker connected).
const STARTED: &str = "Listening.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_between_commit_and_publish_delivers_the_order_exactly_once_after_restart() {
    let infra = Infra::new().await;
    let port = free_port();
    let (mut first, first_log) = spawn_hub(&infra, port, Some("relay_before_publish"));
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

    let (mut second, second_log) = spawn_hub(&infra, port, None);
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
    let _ = second.kill().await;
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
