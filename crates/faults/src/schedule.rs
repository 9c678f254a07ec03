//! The faults and when they strike. One cycle of faults is spread evenly over a cycle's
//! length; a long run repeats the cycle. Each fault is logged when it strikes and counted
//! for the report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::hub::{HubProcesses, Layout};
use crate::infra::{Postgres, Rabbit};

/// One fault.
#[derive(Debug, Clone)]
pub enum Fault {
    /// SIGKILL the named hub processes (every one for `None`: the whole hub).
    Kill(Option<Vec<&'static str>>),
    /// Kill RabbitMQ with SIGKILL, keep it down for a while, start it on the same data.
    RabbitRestart { down: Duration },
    /// Crash PostgreSQL (immediate stop), keep it down for a while, start it again.
    PostgresRestart { down: Duration },
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::Kill(None) => "SIGKILL every hub process".into(),
            Fault::Kill(Some(names)) => format!("SIGKILL hub process {}", names.join("+")),
            Fault::RabbitRestart { .. } => "RabbitMQ killed and restarted".into(),
            Fault::PostgresRestart { .. } => "PostgreSQL crashed and restarted".into(),
        }
    }
}

/// One cycle of faults for `layout`: every process killed on its own, the whole hub
/// killed, RabbitMQ and PostgreSQL restarted.
pub fn cycle(layout: Layout) -> Vec<Fault> {
    let down = Duration::from_secs(3);
    let mut faults = Vec::new();
    let names: Vec<&'static str> = layout.processes().into_iter().map(|(n, _)| n).collect();
    let mut processes = names.iter();
    // Interleave: a process, an infrastructure restart now and then, the whole hub.
    if let Some(name) = processes.next() {
        faults.push(Fault::Kill(Some(vec![name])));
    }
    faults.push(Fault::RabbitRestart { down });
    if let Some(name) = processes.next() {
        faults.push(Fault::Kill(Some(vec![name])));
    }
    faults.push(Fault::PostgresRestart { down });
    for name in processes {
        faults.push(Fault::Kill(Some(vec![name])));
    }
    faults.push(Fault::Kill(None));
    faults
}

/// What struck, by name, how many times.
pub type Struck = BTreeMap<String, u32>;

/// Plays `faults` over and over until `stop`: in each cycle of `cycle_length`, fault `i`
/// of `n` strikes at `(i + 1) / (n + 1)` of the cycle (a fault whose time has passed while
/// an earlier one was still playing strikes at once). Returns what struck.
pub async fn play(
    faults: Vec<Fault>,
    cycle_length: Duration,
    processes: Arc<HubProcesses>,
    postgres: Arc<Postgres>,
    rabbit: Arc<Rabbit>,
    mut stop: watch::Receiver<bool>,
) -> Struck {
    let mut struck = Struck::new();
    if faults.is_empty() {
        return struck;
    }
    let slots = u32::try_from(faults.len() + 1).unwrap_or(u32::MAX);
    let started = tokio::time::Instant::now();
    for cycle in 0u32.. {
        for (index, fault) in (1u32..).zip(&faults) {
            let at = started + cycle_length * cycle + cycle_length * index / slots;
            tokio::select! {
                _ = stop.changed() => return struck,
                _ = tokio::time::sleep_until(at) => {}
            }
            if *stop.borrow() {
                return struck;
            }
            tracing::info!(fault = %fault.name(), cycle, "Fault strikes.");
            match strike(fault, &processes, &postgres, &rabbit).await {
                Ok(()) => *struck.entry(fault.name()).or_default() += 1,
                Err(error) => {
                    tracing::error!(fault = %fault.name(), error = %format!("{error:#}"), "The fault could not be played.")
                }
            }
        }
    }
    struck
}

async fn strike(
    fault: &Fault,
    processes: &HubProcesses,
    postgres: &Postgres,
    rabbit: &Rabbit,
) -> anyhow::Result<()> {
    match fault {
        Fault::Kill(names) => {
            let killed = processes.kill(names.as_deref());
            anyhow::ensure!(killed > 0, "no such process was running");
        }
        Fault::RabbitRestart { down } => {
            rabbit.kill().await?;
            tokio::time::sleep(*down).await;
            rabbit.start_node().await?;
        }
        Fault::PostgresRestart { down } => {
            postgres.crash().await?;
            tokio::time::sleep(*down).await;
            postgres.start_server().await?;
        }
    }
    Ok(())
}
