//! The real `crossdock serve` binary as a child process of a test, with every line it logs
//! kept so the test can wait for one and read them all at the end.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::helpers::{Infra, repo_root};

/// The hub logs this once every stage has started.
pub const STARTED: &str = "Listening.";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Every line a hub process logged, and a way to wait for one.
#[derive(Clone, Default)]
pub struct ProcessLog {
    lines: Arc<Mutex<Vec<String>>>,
    grew: Arc<Notify>,
}

impl ProcessLog {
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
        self.grew.notify_waiters();
    }

    /// How many logged lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until a logged line contains `needle`.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) {
        self.wait_for_count(needle, 1, timeout).await;
    }

    /// Waits until `count` logged lines contain `needle`.
    pub async fn wait_for_count(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check, so a line pushed in between still wakes us.
            let grew = self.grew.notified();
            if self.count(needle) >= count {
                return;
            }
            let woken = tokio::time::timeout_at(deadline, grew).await;
            assert!(
                woken.is_ok(),
                "the hub did not log `{needle}` {count} time(s) within {timeout:?}; its log:\n{}",
                self.lines().join("\n")
            );
        }
    }
}

/// A running `crossdock serve` (killed when dropped).
pub struct HubProcess {
    pub child: Child,
    pub log: ProcessLog,
    pub port: u16,
}

impl HubProcess {
    /// Starts `crossdock serve` on `port` against the test's database and broker prefix,
    /// with `env` added to (or overriding) its environment.
    pub fn spawn(infra: &Infra, port: u16, env: &[(&str, String)]) -> HubProcess {
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
            .env_remove("RUST_LOG")
            .env_remove("CROSSDOCK_FAILPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
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
        HubProcess { child, log, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reaps the process.
    pub async fn sigkill(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id().expect("pid")).expect("pid fits"));
        kill(pid, Signal::SIGKILL).expect("SIGKILL");
        self.child.wait().await.expect("reaped");
    }
}
