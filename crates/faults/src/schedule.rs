//! The faults and when they strike. One cycle of faults is spread evenly over a cycle's
//! length; a long run repeats the cycle. Each fault is logged when it strikes and counted
//! for the report.
//!
//! Killing a process and restarting a service play out before the next fault. The faults
//! that last a while are held instead and end on their own, so they overlap whatever
//! strikes next: the platforms' APIs answering 429 with `Retry-After`, 500, or nothing
//! within the hub's timeout (every platform, or a rotating few), and a store that stops
//! acting on new orders (the next open store in turn, city after city). When the schedule
//! stops, every held fault is lifted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossdock_channel::sim::Fault as SimFault;
use crossdock_hub::demo::Sims;
use crossdock_model::StoreProfile;
use crossdock_router::OpeningHours;
use tokio::sync::watch;

use crate::hub::{HubProcesses, Layout};
use crate::infra::{Postgres, Rabbit};
use crate::platforms;
use crate::stores::Stores;

/// How a platform's API misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiAnswer {
    /// 429 with `Retry-After: seconds`.
    RateLimited { retry_after_s: u64 },
    /// 500.
    ServerError,
    /// No answer before the hub's timeout (the answer comes after `delay`).
    Timeout { delay: Duration },
}

/// Which platforms a platform fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platforms {
    All,
    /// The next `n` platforms in turn (each strike moves on).
    Rotating(usize),
}

/// One fault.
#[derive(Debug, Clone)]
pub enum Fault {
    /// SIGKILL the named hub processes (every one for `None`: the whole hub).
    Kill(Option<Vec<&'static str>>),
    /// Kill RabbitMQ with SIGKILL, keep it down for a while, start it on the same data.
    RabbitRestart { down: Duration },
    /// Crash PostgreSQL (immediate stop), keep it down for a while, start it again.
    PostgresRestart { down: Duration },
    /// The platforms' APIs answer so for `hold`, then recover.
    PlatformApis {
        answer: ApiAnswer,
        platforms: Platforms,
        hold: Duration,
    },
    /// The next store in turn stops acting on new orders for `hold` (a tablet offline).
    StoreStall { hold: Duration },
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::Kill(None) => "SIGKILL every hub process".into(),
            Fault::Kill(Some(names)) => format!("SIGKILL hub process {}", names.join("+")),
            Fault::RabbitRestart { .. } => "RabbitMQ killed and restarted".into(),
            Fault::PostgresRestart { .. } => "PostgreSQL crashed and restarted".into(),
            Fault::PlatformApis { answer, .. } => match answer {
                ApiAnswer::RateLimited { .. } => "platform APIs answer 429 with Retry-After".into(),
                ApiAnswer::ServerError => "platform APIs answer 500".into(),
                ApiAnswer::Timeout { .. } => "platform APIs time out".into(),
            },
            Fault::StoreStall { .. } => "a store stops accepting".into(),
        }
    }
}

/// How long a platform answers 429, 500, or times out.
const RATE_LIMITED_FOR: Duration = Duration::from_secs(10);
const FAILING_FOR: Duration = Duration::from_secs(8);
const TIMING_OUT_FOR: Duration = Duration::from_secs(10);
/// How long a timed-out call's answer takes: past every adapter's timeout (10 s at most).
const TIMEOUT_DELAY: Duration = Duration::from_secs(11);
/// How long a store stops accepting: well past the hub's time to accept (see
/// `crate::hub_env`), so that the hub takes orders back from it.
pub const STALL: Duration = Duration::from_secs(25);

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One cycle of faults for `layout`: every process killed on its own, the whole hub
/// killed, RabbitMQ and PostgreSQL restarted, the platforms' APIs answering 429, 500 and
/// timing out, and two stores stopping accepting for a while.
pub fn cycle(layout: Layout) -> Vec<Fault> {
    let down = Duration::from_secs(3);
    let names: Vec<&'static str> = layout.processes().into_iter().map(|(n, _)| n).collect();
    let mut processes = names.iter().map(|name| Fault::Kill(Some(vec![name])));
    let mut others = vec![
        Fault::PlatformApis {
            answer: ApiAnswer::RateLimited { retry_after_s: 2 },
            platforms: Platforms::All,
            hold: RATE_LIMITED_FOR,
        },
        Fault::RabbitRestart { down },
        Fault::StoreStall { hold: STALL },
        Fault::PlatformApis {
            answer: ApiAnswer::ServerError,
            platforms: Platforms::All,
            hold: FAILING_FOR,
        },
        Fault::PostgresRestart { down },
        Fault::PlatformApis {
            answer: ApiAnswer::Timeout {
                delay: TIMEOUT_DELAY,
            },
            platforms: Platforms::Rotating(3),
            hold: TIMING_OUT_FOR,
        },
        Fault::StoreStall { hold: STALL },
    ]
    .into_iter();
    // Interleave: a process, another fault, and so on; the whole hub last.
    let mut faults = Vec::new();
    loop {
        let (process, other) = (processes.next(), others.next());
        if process.is_none() && other.is_none() {
            break;
        }
        faults.extend(process);
        faults.extend(other);
    }
    faults.push(Fault::Kill(None));
    faults
}

/// What struck, by name, how many times.
pub type Struck = BTreeMap<String, u32>;

/// What the faults strike.
pub struct Targets {
    pub processes: Arc<HubProcesses>,
    pub postgres: Arc<Postgres>,
    pub rabbit: Arc<Rabbit>,
    pub sims: Arc<Sims>,
    pub stores: Arc<Stores>,
    /// The stores a stall rotates over, with their opening hours.
    pub chain: Vec<StoreProfile>,
}

/// Turns of the rotating faults.
#[derive(Default)]
struct Turns {
    platform: usize,
    store: usize,
}

/// Plays `faults` over and over until `stop`: in each cycle of `cycle_length`, fault `i`
/// of `n` strikes at `(i + 1) / (n + 1)` of the cycle (a fault whose time has passed while
/// an earlier one was still playing strikes at once). Returns what struck, once every
/// held fault is lifted.
pub async fn play(
    faults: Vec<Fault>,
    cycle_length: Duration,
    targets: Targets,
    mut stop: watch::Receiver<bool>,
) -> Struck {
    let mut struck = Struck::new();
    let mut turns = Turns::default();
    let hours: Vec<(String, Option<OpeningHours>)> = targets
        .chain
        .iter()
        .map(|s| {
            (
                s.id.to_string(),
                OpeningHours::compile(&s.timezone, &s.hours, &s.closed_on).ok(),
            )
        })
        .collect();
    if !faults.is_empty() {
        let slots = u32::try_from(faults.len() + 1).unwrap_or(u32::MAX);
        let started = tokio::time::Instant::now();
        'cycles: for cycle in 0u32.. {
            for (index, fault) in (1u32..).zip(&faults) {
                let at = started + cycle_length * cycle + cycle_length * index / slots;
                tokio::select! {
                    _ = stop.changed() => break 'cycles,
                    _ = tokio::time::sleep_until(at) => {}
                }
                if *stop.borrow() {
                    break 'cycles;
                }
                tracing::info!(fault = %fault.name(), cycle, "Fault strikes.");
                match strike(fault, &targets, &hours, &mut turns).await {
                    Ok(()) => *struck.entry(fault.name()).or_default() += 1,
                    Err(error) => {
                        tracing::error!(fault = %fault.name(), error = %format!("{error:#}"), "The fault could not be played.")
                    }
                }
            }
        }
    }
    for (_, faults) in platforms::api_faults(&targets.sims) {
        faults.clear();
    }
    targets.stores.lift_stalls();
    struck
}

async fn strike(
    fault: &Fault,
    targets: &Targets,
    hours: &[(String, Option<OpeningHours>)],
    turns: &mut Turns,
) -> anyhow::Result<()> {
    match fault {
        Fault::Kill(names) => {
            let killed = targets.processes.kill(names.as_deref());
            anyhow::ensure!(killed > 0, "no such process was running");
        }
        Fault::RabbitRestart { down } => {
            targets.rabbit.kill().await?;
            tokio::time::sleep(*down).await;
            targets.rabbit.start_node().await?;
        }
        Fault::PostgresRestart { down } => {
            targets.postgres.crash().await?;
            tokio::time::sleep(*down).await;
            targets.postgres.start_server().await?;
        }
        Fault::PlatformApis {
            answer,
            platforms,
            hold,
        } => {
            let all = platforms::api_faults(&targets.sims);
            anyhow::ensure!(!all.is_empty(), "no platform simulator runs");
            let chosen: Vec<_> = match platforms {
                Platforms::All => all.iter().collect(),
                Platforms::Rotating(n) => {
                    let start = turns.platform;
                    turns.platform += n;
                    all.iter()
                        .cycle()
                        .skip(start % all.len())
                        .take(*n)
                        .collect()
                }
            };
            let fault = match answer {
                ApiAnswer::RateLimited { retry_after_s } => SimFault {
                    status: Some(429),
                    retry_after_s: Some(*retry_after_s),
                    delay: None,
                },
                ApiAnswer::ServerError => SimFault {
                    status: Some(500),
                    retry_after_s: None,
                    delay: None,
                },
                ApiAnswer::Timeout { delay } => SimFault {
                    status: None,
                    retry_after_s: None,
                    delay: Some(*delay),
                },
            };
            let until = Instant::now() + *hold;
            for (_, faults) in &chosen {
                faults.hold(fault.clone(), until);
            }
            let names: Vec<&str> = chosen.iter().map(|(name, _)| *name).collect();
            tracing::info!(platforms = ?names, ?hold, "Platform APIs misbehave.");
        }
        Fault::StoreStall { hold } => {
            // The next store in turn that is open now (any store if none is).
            let now = Utc::now();
            let open: Vec<&String> = hours
                .iter()
                .filter(|(_, h)| h.as_ref().is_some_and(|h| h.is_open(now)))
                .map(|(id, _)| id)
                .collect();
            let pool: Vec<&String> = if open.is_empty() {
                hours.iter().map(|(id, _)| id).collect()
            } else {
                open
            };
            anyhow::ensure!(!pool.is_empty(), "the chain has no store");
            // Every store in turn, in strides that go from city to city (the chain lists
            // its stores city by city), so that a short run stalls stores of every city.
            let stride = [7, 5, 11, 13, 1]
                .into_iter()
                .find(|s| gcd(*s, pool.len()) == 1)
                .unwrap_or(1);
            let store = pool[(turns.store * stride) % pool.len()];
            turns.store += 1;
            targets.stores.stall(store, Instant::now() + *hold);
            tracing::info!(%store, ?hold, "A store stops accepting.");
        }
    }
    Ok(())
}
