//! The hub under test: real `crossdock serve` processes, one per role (`split`) or one with
//! every role (`single`), each restarted a second after it exits as a service manager
//! would, and each killable with SIGKILL. Their logs go to one file per process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How the hub's stages are spread over processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// One process per role: api, relay, router, store, fetch, sync.
    Split,
    /// One process running every role.
    Single,
}

impl Layout {
    /// The processes: (name, `--role` value).
    pub fn processes(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Layout::Split => vec![
                ("api", "api"),
                ("relay", "relay"),
                ("router", "router"),
                ("store", "store"),
                ("fetch", "fetch"),
                ("sync", "sync"),
            ],
            Layout::Single => vec![("hub", "all")],
        }
    }
}

/// One supervised hub process.
struct Slot {
    name: &'static str,
    /// The running child's pid, 0 while none runs.
    pid: AtomicI32,
    /// Times it was started.
    starts: AtomicU32,
}

/// The hub's processes, supervised.
pub struct HubProcesses {
    slots: Vec<Arc<Slot>>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Where each process logs (stderr), by name.
    pub logs: BTreeMap<&'static str, PathBuf>,
}

impl HubProcesses {
    /// Starts `layout`'s processes of `bin` with `env` (the whole configuration), logging
    /// under `log_dir`.
    pub fn start(
        bin: &Path,
        layout: Layout,
        env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<HubProcesses> {
        std::fs::create_dir_all(log_dir)?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut slots = Vec::new();
        let mut logs = BTreeMap::new();
        for (name, role) in layout.processes() {
            let slot = Arc::new(Slot {
                name,
                pid: AtomicI32::new(0),
                starts: AtomicU32::new(0),
            });
            let log = log_dir.join(format!("{name}.log"));
            logs.insert(name, log.clone());
            tasks.spawn(supervise(
                bin.to_path_buf(),
                role,
                env.to_vec(),
                log,
                slot.clone(),
                stopped.clone(),
            ));
            slots.push(slot);
        }
        Ok(HubProcesses {
            slots,
            stop,
            tasks,
            logs,
        })
    }

    /// The process names.
    pub fn names(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.name).collect()
    }

    /// Sends SIGKILL to the named processes (all of them for `None`); returns how many
    /// were running. Their supervisors start them again.
    pub fn kill(&self, names: Option<&[&str]>) -> usize {
        let mut killed = 0;
        for slot in &self.slots {
            if names.is_some_and(|names| !names.contains(&slot.name)) {
                continue;
            }
            let pid = slot.pid.load(Ordering::Acquire);
            if pid > 0 && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        killed
    }

    /// How often each process was started (1 = never restarted).
    pub fn starts(&self) -> Vec<(&'static str, u32)> {
        self.slots
            .iter()
            .map(|s| (s.name, s.starts.load(Ordering::Acquire)))
            .collect()
    }

    /// Stops every process (SIGTERM, then SIGKILL after 10 s) and their supervisors.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs the process, restarting it a second after every exit, until `stop`.
async fn supervise(
    bin: PathBuf,
    role: &'static str,
    env: Vec<(String, String)>,
    log: PathBuf,
    slot: Arc<Slot>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let child = match spawn(&bin, role, &env, &log) {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(process = slot.name, error = %format!("{error:#}"), "Cannot start a hub process.");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut child = child;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        slot.pid.store(pid, Ordering::Release);
        let starts = slot.starts.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::debug!(process = slot.name, pid, starts, "Hub process started.");
        tokio::select! {
            status = child.wait() => {
                slot.pid.store(0, Ordering::Release);
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                tracing::info!(process = slot.name, %status, "Hub process exited; restarting it in 1 s.");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            _ = stop.changed() => {
                slot.pid.store(0, Ordering::Release);
                if pid > 0 {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
                if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                return;
            }
        }
    }
}

fn spawn(
    bin: &Path,
    role: &str,
    env: &[(String, String)],
    log: &Path,
) -> anyhow::Result<tokio::process::Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut command = Command::new(bin);
    command
        .args(["serve", "--role", role])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .kill_on_drop(true);
    command
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}
