//! The hub under measure: one `crossdock serve` process running every stage, as a chain
//! starts it, its log in the run's directory, its CPU time and memory read from `/proc`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::stats::ProcessUse;

pub struct HubProcess {
    child: Child,
    pid: u32,
}

impl HubProcess {
    /// Starts `bin serve` with `env` (the whole configuration), logging to `log`.
    pub fn start(bin: &Path, env: &[(String, String)], log: &Path) -> anyhow::Result<HubProcess> {
        let file = std::fs::File::create(log)
            .with_context(|| format!("creating the hub's log {}", log.display()))?;
        let child = Command::new(bin)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it first: cargo build --release -p crossdock-hub)",
                    bin.display()
                )
            })?;
        let pid = child.id().context("the hub exited at once")?;
        Ok(HubProcess { child, pid })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the process used so far; `None` once it is gone.
    pub fn usage(&self) -> Option<ProcessUse> {
        ProcessUse::read(Some(self.pid))
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it: SIGTERM, then SIGKILL after 10 s.
    pub async fn stop(mut self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
