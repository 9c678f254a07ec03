//! The benchmark: how fast Crossdock is, and how close to what PostgreSQL and RabbitMQ
//! allow on the same machine, measured in one run on the same services.
//!
//! A run makes a database and a broker name prefix of its own on the configured
//! PostgreSQL and RabbitMQ, and first measures the [`floor`] there. Then it loads the
//! sample chain (every store open, capacity unbounded: stores here accept at once and
//! never finish an order), starts every platform simulator ([`platforms`]), one
//! `crossdock serve` process with every stage ([`hub`]), and the stores ([`stores`]).
//! Orders go through the whole pipeline — signed webhook in, stored, queued, routed,
//! delivered to the store, accepted, the accept synced back to its platform — at fixed
//! offered rates, each a step that ends when the pipeline has drained. Without rates
//! given, the steps search for the highest rate the machine sustains, then run at half
//! of it, where the latency targets are judged; a soak runs one rate for minutes and
//! reports memory and latency minute by minute. Every step checks that each order sent
//! reached a store exactly once and completed its loop ([`ledger`]); a step that loses
//! one is void.
//!
//! The platforms' limits on the hub's calls are raised on both sides (the simulators and
//! `sync.push_rates`) to far above the run's rates: the benchmark measures the hub, not
//! the quotas a chain agrees with each platform.

pub mod floor;
pub mod hub;
pub mod ledger;
pub mod platforms;
pub mod stats;
pub mod stores;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use crossdock_db::Db;
use crossdock_hub::Settings;
use crossdock_hub::demo::{Menu, SimLimits, SimPorts, Sims, Traffic};
use serde::Serialize;
use tokio::sync::watch;

use crate::hub::HubProcess;
use crate::ledger::{HubOrder, Ledger, StepFigures};
use crate::platforms::Platforms;
use crate::stats::{Latency, MachineUse, ProcessUse};

pub use crossdock_kit::harness::repo_root;
use crossdock_kit::harness::{Durability, declare_stores_queue};

/// The platforms' limit on the hub's calls during a run, on both sides.
const RAISED_LIMIT: u32 = 100_000;
/// How long a step may take to drain once its orders are all offered.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// A step is given up on when nothing moved for this long while draining.
const STUCK_AFTER: Duration = Duration::from_secs(20);
/// A rate is sustained when every order of its step completed its loop with a p99 under
/// this, at the offered rate.
const SUSTAINED_LOOP_P99_MS: f64 = 1000.0;
/// The targets at half of the highest sustained rate.
const TARGET_WEBHOOK_P99_MS: f64 = 20.0;
const TARGET_INGEST_P99_MS: f64 = 100.0;
const TARGET_ACCEPT_P99_MS: f64 = 100.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `crossdock` binary.
    pub hub_bin: PathBuf,
    /// The hub's configuration file (its database and broker are the run's services).
    pub config: PathBuf,
    /// Orders of the floor.
    pub floor_orders: u64,
    /// How long each step offers orders.
    pub step: Duration,
    /// Fixed rates to run; empty: search for the highest sustained rate, then run at
    /// half of it.
    pub rates: Vec<f64>,
    /// The search's first rate (doubled while sustained).
    pub start_rate: f64,
    /// A soak at a fixed rate for this long (`None`: no soak).
    pub soak: Option<Duration>,
    /// The soak's rate (`None`: half the highest sustained rate, or the last fixed rate).
    pub soak_rate: Option<f64>,
    /// Where the results go (JSON); the printed summary is written beside it (`.txt`).
    pub out: PathBuf,
    /// Keep the run's database, queues and hub log.
    pub keep: bool,
}

/// One step: a rate offered for a while, and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub rate: f64,
    pub seconds: f64,
    #[serde(flatten)]
    pub figures: StepFigures,
    /// Whether the pipeline kept up: nothing lost or duplicated, the rate offered, and
    /// the whole loop's p99 under a second.
    pub sustained: bool,
    /// The hub process's CPU seconds per 1,000 completed orders.
    pub hub_cpu_per_1000: f64,
    /// The rest of the run's process (simulators, load, stores) likewise.
    pub bench_cpu_per_1000: f64,
    /// The machine's busy share over the step, both cores.
    pub machine_busy: f64,
    /// The hub's resident memory at the step's end and the highest of its life, MiB.
    pub hub_rss_mib: f64,
    pub hub_peak_rss_mib: f64,
    /// How long the pipeline took to drain after the last offer.
    pub drain_seconds: f64,
}

/// One minute of a soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakMinute {
    pub minute: usize,
    pub completed: usize,
    pub webhook_ack: Latency,
    pub ingest_to_store: Latency,
    pub accept_to_platform: Latency,
    /// The hub's resident memory at the minute's end, MiB.
    pub hub_rss_mib: f64,
}

/// A soak: its step and its minutes, and whether memory and latency stayed flat.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    pub step: Step,
    pub minutes: Vec<SoakMinute>,
    pub memory_flat: bool,
    pub latency_flat: bool,
}

/// A target at half of the highest sustained rate.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub p99_ms: f64,
    pub limit_ms: f64,
    pub met: bool,
}

/// What the run came to.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: DateTime<Utc>,
    pub machine: String,
    /// The PostgreSQL server and the settings that bear on the figures.
    pub postgres: String,
    pub floor: floor::Floor,
    pub steps: Vec<Step>,
    /// The highest rate sustained, and its completed orders a second.
    pub max_sustained_rate: Option<f64>,
    pub max_sustained_per_second: Option<f64>,
    /// The hub's sustained throughput over the floor's.
    pub ratio_to_floor: Option<f64>,
    pub targets: Vec<Target>,
    pub soak: Option<Soak>,
}

impl Report {
    /// Whether every order of every step completed exactly once.
    pub fn valid(&self) -> bool {
        self.steps
            .iter()
            .chain(self.soak.as_ref().map(|s| &s.step))
            .all(|s| s.figures.faults.is_empty())
    }
}

/// Everything a step needs.
struct Run {
    db: Db,
    hub: HubProcess,
    /// The platforms, and through them the run's ledger.
    platforms: Arc<Platforms>,
    rotation: Traffic,
    steps: usize,
}

/// Runs the benchmark and returns its report (also written to `options.out`).
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let started_at = Utc::now();
    let mut settings = Settings::load(Some(&options.config))?;
    let admin_url = settings.database.url.clone();
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let db_name = format!("crossdock_bench_{id}");
    Db::create_database(&admin_url, &db_name)
        .await
        .context("creating the run's database (is PostgreSQL up? scripts/services.sh)")?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .context("the database URL has no path")?;
    settings.database.url = format!("{base}/{db_name}");
    settings.broker.prefix = format!("bench{id}");
    let work = std::env::temp_dir().join(format!("crossdock-bench-{id}"));
    std::fs::create_dir_all(&work)?;
    let result = run_on(&options, &settings, &work, started_at).await;
    let keep = options.keep || result.is_err();
    if !keep {
        remove(&settings, &admin_url, &db_name).await;
        let _ = std::fs::remove_dir_all(&work);
    } else {
        tracing::info!(database = %db_name, prefix = %settings.broker.prefix, work = %work.display(), "The run's database, queues and hub log are kept.");
    }
    result
}

async fn run_on(
    options: &Options,
    settings: &Settings,
    work: &Path,
    started_at: DateTime<Utc>,
) -> anyhow::Result<Report> {
    let concurrency = settings.database.pool_size;
    tracing::info!(
        orders = options.floor_orders,
        concurrency,
        "Measuring the floor."
    );
    let floor = floor::measure(
        &settings.database.url,
        &settings.broker.url,
        &settings.broker.prefix,
        concurrency,
        options.floor_orders,
    )
    .await
    .context("measuring the floor")?;
    tracing::info!(per_second = floor.per_second, "Floor measured.");

    let db = crossdock_hub::app::connect_db(settings, 4).await?;
    let postgres = postgres_settings(&db).await?;
    let mut chain = crossdock_kit::harness::chain();
    for store in &mut chain.stores {
        store.capacity = 1_000_000;
    }
    crossdock_hub::chain::load(&db, &chain).await?;
    let menu = Menu::read(&repo_root().join("fixtures/chain/menu.json"))?;
    crossdock_hub::chain::load_menu(&db, &menu).await?;
    let mut tokens = HashMap::new();
    for store in &chain.stores {
        tokens.insert(
            store.id.clone(),
            crossdock_hub::chain::issue_token(&db, &store.id).await?,
        );
    }

    let sims = Arc::new(
        Sims::start_with(
            SimPorts::ANY,
            SimLimits::Raised {
                per_second: RAISED_LIMIT,
            },
        )
        .await,
    );
    anyhow::ensure!(
        sims.failed.is_empty(),
        "simulators did not start: {:?}",
        sims.failed
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let api = format!("http://127.0.0.1:{port}");
    let mut env: Vec<(String, String)> = vec![
        (
            "CROSSDOCK_CONFIG".into(),
            options.config.display().to_string(),
        ),
        (
            "CROSSDOCK_DATABASE__URL".into(),
            settings.database.url.clone(),
        ),
        (
            "CROSSDOCK_BROKER__PREFIX".into(),
            settings.broker.prefix.clone(),
        ),
        ("CROSSDOCK_HTTP__BIND".into(), format!("127.0.0.1:{port}")),
        ("CROSSDOCK_HTTP__PUBLIC_URL".into(), api.clone()),
        (
            "RUST_LOG".into(),
            "info,lapin=warn,amq_protocol=warn".into(),
        ),
    ];
    env.extend(sims.hub_env());
    for channel in sims.running() {
        env.push((
            format!(
                "CROSSDOCK_SYNC__PUSH_RATES__{}__PER_SECOND",
                channel.to_ascii_uppercase()
            ),
            RAISED_LIMIT.to_string(),
        ));
    }
    let log = work.join("hub.log");
    let mut hub = HubProcess::start(&options.hub_bin, &env, &log)?;
    let http = reqwest::Client::new();
    let ready = crossdock_kit::harness::poll_until(Duration::from_secs(60), || async {
        let answer = http
            .get(format!("{api}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        answer.is_ok_and(|r| r.status().is_success()).then_some(())
    })
    .await;
    if ready.is_none() || !hub.running() {
        anyhow::bail!("the hub did not become ready; see {}", log.display());
    }
    sims.connect(&api, &api);

    let ledger = Arc::new(Ledger::default());
    let feeds = platforms::listen(&sims, &ledger);
    let queue =
        declare_stores_queue(&settings.broker, "bench.stores", Durability::Transient).await?;
    let (stop_stores, stores_stopped) = watch::channel(false);
    let store_tokens = tokens
        .iter()
        .map(|(store, token)| (store.to_string(), token.clone()))
        .collect();
    let store_task = tokio::spawn(stores::run(
        Arc::new(stores::Stores {
            api: api.clone(),
            tokens: store_tokens,
            ledger: ledger.clone(),
            http: http.clone(),
        }),
        settings.broker.clone(),
        queue,
        stores_stopped,
    ));
    let home = chain
        .stores
        .first()
        .map(|s| s.id.clone())
        .context("the chain has no store")?;
    let rotation = Traffic::new(sims.clone(), &chain, menu, home, tokens, api.clone()).spread();
    let platforms = Arc::new(Platforms::new(sims.clone(), ledger.clone(), api.clone()));
    let mut run = Run {
        db,
        hub,
        platforms,
        rotation,
        steps: 0,
    };
    let outcome = measure(options, &mut run, floor, started_at, postgres).await;
    let _ = stop_stores.send(true);
    let _ = store_task.await;
    drop(feeds);
    run.hub.stop().await;
    let report = outcome?;
    write(&report, &options.out)?;
    Ok(report)
}

/// The steps and the soak.
async fn measure(
    options: &Options,
    run: &mut Run,
    floor: floor::Floor,
    started_at: DateTime<Utc>,
    postgres: String,
) -> anyhow::Result<Report> {
    let mut steps = Vec::new();
    tracing::info!("Warming up.");
    let warm = run_step(run, "warm-up", 50.0, Duration::from_secs(5)).await?;
    steps.push(warm);
    let mut max: Option<(f64, f64)> = None;
    if options.rates.is_empty() {
        let mut good: Option<f64> = None;
        let mut bad: Option<f64> = None;
        let mut rate = options.start_rate;
        for _ in 0..12 {
            let step = run_step(run, "search", rate, options.step).await?;
            let sustained = step.sustained;
            if sustained && max.is_none_or(|(r, _)| rate > r) {
                max = Some((rate, step.figures.completed_per_second));
            }
            steps.push(step);
            if sustained {
                good = Some(rate);
            } else {
                bad = Some(rate);
            }
            rate = match (good, bad) {
                (Some(good), None) => good * 2.0,
                (None, Some(bad)) if bad > 20.0 => bad / 2.0,
                (Some(good), Some(bad)) if bad / good > 1.1 => ((good + bad) / 2.0).round(),
                _ => break,
            };
        }
    } else {
        for &rate in &options.rates {
            let step = run_step(run, "fixed", rate, options.step).await?;
            if step.sustained && max.is_none_or(|(r, _)| rate > r) {
                max = Some((rate, step.figures.completed_per_second));
            }
            steps.push(step);
        }
    }
    let mut targets = Vec::new();
    if let Some((rate, _)) = max.filter(|_| options.rates.is_empty()) {
        let half = (rate / 2.0).round();
        tracing::info!(rate = half, "At half of the highest sustained rate.");
        let step = run_step(run, "half of max", half, options.step).await?;
        let target = |what: &str, latency: &Latency, limit_ms: f64| Target {
            what: what.to_owned(),
            p99_ms: latency.p99_ms,
            limit_ms,
            met: latency.count > 0 && latency.p99_ms < limit_ms,
        };
        targets = vec![
            target(
                "webhook acknowledgement",
                &step.figures.webhook_ack,
                TARGET_WEBHOOK_P99_MS,
            ),
            target(
                "ingest to store delivery",
                &step.figures.ingest_to_store,
                TARGET_INGEST_P99_MS,
            ),
            target(
                "accept to platform",
                &step.figures.accept_to_platform,
                TARGET_ACCEPT_P99_MS,
            ),
        ];
        steps.push(step);
    }
    let soak = match options.soak {
        Some(duration) => {
            let rate = options
                .soak_rate
                .or(max.map(|(rate, _)| (rate / 2.0).round()))
                .or(options.rates.last().copied())
                .context("no rate to soak at: give --soak-rate")?;
            Some(soak(run, rate, duration).await?)
        }
        None => None,
    };
    let (max_sustained_rate, max_sustained_per_second) = match max {
        Some((rate, per_second)) => (Some(rate), Some(per_second)),
        None => (None, None),
    };
    Ok(Report {
        started_at,
        machine: machine(),
        postgres,
        ratio_to_floor: max_sustained_per_second.map(|p| p / floor.per_second),
        floor,
        steps,
        max_sustained_rate,
        max_sustained_per_second,
        targets,
        soak,
    })
}

/// What the step's resources were at its start.
struct Before {
    at: Instant,
    wall: DateTime<Utc>,
    hub: ProcessUse,
    bench: ProcessUse,
    machine: MachineUse,
}

impl Before {
    fn now(run: &Run) -> Before {
        Before {
            at: Instant::now(),
            wall: Utc::now(),
            hub: run.hub.usage().unwrap_or_default(),
            bench: ProcessUse::read(None).unwrap_or_default(),
            machine: MachineUse::read().unwrap_or_default(),
        }
    }
}

/// A step measured, with what the soak reads again minute by minute.
struct Measured {
    step: Step,
    index: usize,
    started: Instant,
    hub_orders: Vec<HubOrder>,
}

/// Offers `rate` orders a second for `duration`, waits for the pipeline to drain, and
/// measures the step.
async fn run_step(
    run: &mut Run,
    name: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Step> {
    Ok(measured_step(run, name, rate, duration).await?.step)
}

/// [`run_step`], with the step's index, start and the hub's record of its orders.
async fn measured_step(
    run: &mut Run,
    name: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let index = run.steps;
    run.steps += 1;
    tracing::info!(step = index, name, rate, ?duration, "Step starts.");
    let before = Before::now(run);
    platforms::offer(&run.platforms, &mut run.rotation, index, rate, duration).await;
    let offered_until = Instant::now();
    drain(run, before.wall).await?;
    let drain_seconds = offered_until.elapsed().as_secs_f64();
    let hub_orders = hub_orders(&run.db, before.wall).await?;
    let step = step_result(run, name, index, rate, &before, &hub_orders, drain_seconds)?;
    Ok(Measured {
        step,
        index,
        started: before.at,
        hub_orders,
    })
}

/// Measures step `index` from `before` until now, against the hub's record of its orders.
fn step_result(
    run: &Run,
    name: &str,
    index: usize,
    rate: f64,
    before: &Before,
    hub_orders: &[HubOrder],
    drain_seconds: f64,
) -> anyhow::Result<Step> {
    let figures = run.platforms.ledger.figures(index, None, hub_orders);
    let hub = run.hub.usage().context("the hub process is gone")?;
    let bench = ProcessUse::read(None).unwrap_or_default();
    let machine = MachineUse::read().unwrap_or_default();
    let per_1000 = |cpu: Duration| {
        if figures.completed == 0 {
            0.0
        } else {
            cpu.as_secs_f64() * 1000.0 / figures.completed as f64
        }
    };
    let machine_total = machine.total.saturating_sub(before.machine.total);
    let sustained = figures.faults.is_empty()
        && figures.completed == figures.offered
        && figures.offered_per_second >= rate * 0.95
        && figures.whole_loop.p99_ms <= SUSTAINED_LOOP_P99_MS;
    let step = Step {
        name: name.to_owned(),
        rate,
        seconds: before.at.elapsed().as_secs_f64() - drain_seconds,
        sustained,
        hub_cpu_per_1000: per_1000(hub.cpu.saturating_sub(before.hub.cpu)),
        bench_cpu_per_1000: per_1000(bench.cpu.saturating_sub(before.bench.cpu)),
        machine_busy: if machine_total.is_zero() {
            0.0
        } else {
            machine
                .busy
                .saturating_sub(before.machine.busy)
                .as_secs_f64()
                / machine_total.as_secs_f64()
        },
        hub_rss_mib: mib(hub.rss),
        hub_peak_rss_mib: mib(hub.peak_rss),
        drain_seconds,
        figures,
    };
    tracing::info!(
        step = index,
        name,
        rate,
        completed_per_second = step.figures.completed_per_second,
        whole_loop_p99_ms = step.figures.whole_loop.p99_ms,
        sustained,
        faults = step.figures.faults.len(),
        "Step done."
    );
    Ok(step)
}

/// Waits until every acknowledged order reached its store and was accepted, the hub's
/// store workers recorded the hand-over of every order of the step (received since
/// `since`) routed to a store, and the hub has no status sync pending and nothing in its
/// outbox.
async fn drain(run: &Run, since: DateTime<Utc>) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = None;
    let mut moved = Instant::now();
    loop {
        let ledger = &run.platforms.ledger;
        let acked = ledger.acked();
        let (at_stores, accepting) = ledger.store_counts();
        let client = run.db.pool().get().await?;
        // The step's orders only (the index on reception time), not every order of the
        // run read again ten times a second while the hub drains.
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM status_syncs WHERE state = 'pending'),
                        (SELECT count(*) FROM outbox WHERE refused_at IS NULL),
                        (SELECT count(*) FROM orders o
                          WHERE o.received_at >= $1 AND o.store_id IS NOT NULL
                            AND NOT EXISTS (SELECT 1 FROM store_deliveries d
                                             WHERE d.order_id = o.id))",
                &[&since],
            )
            .await?;
        drop(client);
        let (pending, outbox, handovers): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if at_stores >= acked && accepting == 0 && pending == 0 && outbox == 0 && handovers == 0 {
            // The platforms' feeds are read by their own tasks: a moment for the last.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        }
        let now = (acked, at_stores, accepting, pending, outbox, handovers);
        if last != Some(now) {
            last = Some(now);
            moved = Instant::now();
        }
        if started.elapsed() > DRAIN_LIMIT || moved.elapsed() > STUCK_AFTER {
            tracing::warn!(
                acked,
                at_stores,
                accepting,
                pending_syncs = pending,
                outbox,
                handovers_to_record = handovers,
                "The pipeline did not drain; the step is measured as it stands."
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The hub's record of the orders received since `since`.
async fn hub_orders(db: &Db, since: DateTime<Utc>) -> anyhow::Result<Vec<HubOrder>> {
    let client = db.pool().get().await?;
    let rows = client
        .query(
            "SELECT o.id, o.channel, o.external_order_id, o.status, s.state, d.handovers
               FROM orders o
               LEFT JOIN status_syncs s ON s.order_id = o.id AND s.from_status = 'received'
               LEFT JOIN store_deliveries d ON d.order_id = o.id
              WHERE o.received_at >= $1",
            &[&(since - chrono::Duration::seconds(1))],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| HubOrder {
            id: row.get(0),
            channel: row.get(1),
            external_order_id: row.get(2),
            status: row.get(3),
            accept_sync: row.get(4),
            handovers: row.get(5),
        })
        .collect())
}

/// Runs `rate` for `duration` and reads it minute by minute.
async fn soak(run: &mut Run, rate: f64, duration: Duration) -> anyhow::Result<Soak> {
    let (done, mut finished) = watch::channel(false);
    // The hub's memory, sampled at the end of every minute while the soak runs.
    let pid = run.hub.pid();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    samples.push(ProcessUse::read(Some(pid)).map_or(0, |u| u.rss));
                }
                _ = finished.changed() => break,
            }
        }
        samples
    });
    let measured = measured_step(run, "soak", rate, duration).await;
    let _ = done.send(true);
    let rss = sampler.await.unwrap_or_default();
    let Measured {
        step,
        index,
        started,
        hub_orders,
    } = measured?;
    let mut minutes = Vec::new();
    let whole = duration.as_secs().div_ceil(60);
    for minute in 0..usize::try_from(whole).unwrap_or(0) {
        let from = started + Duration::from_secs(60 * minute as u64);
        let to = from + Duration::from_secs(60);
        let figures = run
            .platforms
            .ledger
            .figures(index, Some((from, to)), &hub_orders);
        minutes.push(SoakMinute {
            minute: minute + 1,
            completed: figures.completed,
            webhook_ack: figures.webhook_ack,
            ingest_to_store: figures.ingest_to_store,
            accept_to_platform: figures.accept_to_platform,
            hub_rss_mib: rss.get(minute).copied().map(mib).unwrap_or(0.0),
        });
    }
    let (memory_flat, latency_flat) = flatness(&minutes);
    Ok(Soak {
        step,
        minutes,
        memory_flat,
        latency_flat,
    })
}

/// Whether a soak stayed flat, judged from its second minute (the first warms up) to its
/// last: memory grew by at most 10 % (or 16 MiB), and no p99 of the last minute is over
/// twice that of the second (or over it by more than [`FLAT_LATENCY_ALLOWANCE_MS`], so
/// that a few milliseconds' noise on a fast p99 is not a trend). Being under a target is
/// not being flat.
fn flatness(minutes: &[SoakMinute]) -> (bool, bool) {
    let (Some(early), Some(late)) = (minutes.get(1), minutes.last()) else {
        return (true, true);
    };
    let memory = late.hub_rss_mib <= (early.hub_rss_mib * 1.10).max(early.hub_rss_mib + 16.0);
    let flat = |early: &Latency, late: &Latency| {
        late.p99_ms <= (early.p99_ms * 2.0).max(early.p99_ms + FLAT_LATENCY_ALLOWANCE_MS)
    };
    let latency = flat(&early.webhook_ack, &late.webhook_ack)
        && flat(&early.ingest_to_store, &late.ingest_to_store)
        && flat(&early.accept_to_platform, &late.accept_to_platform);
    (memory, latency)
}

/// What a soak's p99 may grow by and still be flat, however small it started.
const FLAT_LATENCY_ALLOWANCE_MS: f64 = 5.0;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The server's version and the settings that bear on the figures, in a line.
async fn postgres_settings(db: &Db) -> anyhow::Result<String> {
    let client = db.pool().get().await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('autovacuum'),
                    current_setting('synchronous_commit'), current_setting('shared_buffers')",
            &[],
        )
        .await?;
    let setting = |i: usize| row.get::<_, String>(i);
    Ok(format!(
        "PostgreSQL {}, autovacuum {}, synchronous_commit {}, shared_buffers {}",
        setting(0),
        setting(1),
        setting(2),
        setting(3)
    ))
}

/// The machine, in a line: its CPU model and cores.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// Writes the report as JSON to `out` and its summary beside it.
fn write(report: &Report, out: &Path) -> anyhow::Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    std::fs::write(out.with_extension("txt"), summary(report))?;
    Ok(())
}

/// The report for a person.
pub fn summary(report: &Report) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let floor = &report.floor;
    let _ = writeln!(
        text,
        "Crossdock benchmark, {} ({}; {})\n",
        report.started_at.format("%Y-%m-%d %H:%M UTC"),
        report.machine,
        report.postgres
    );
    let _ = writeln!(
        text,
        "Floor ({} orders, {} at once; insert + confirmed publish + consume): {:.0} orders/s; \
         commit and confirm p50 {:.1} ms, p99 {:.1} ms; to the consumer p50 {:.1} ms, p99 {:.1} ms\n",
        floor.orders,
        floor.concurrency,
        floor.per_second,
        floor.commit_and_confirm.p50_ms,
        floor.commit_and_confirm.p99_ms,
        floor.to_consumer.p50_ms,
        floor.to_consumer.p99_ms,
    );
    let _ = writeln!(
        text,
        "| step | offered/s | completed/s | webhook ack p50/p99/max ms | ingest→store p50/p99/max ms | accept→platform p50/p99/max ms | hub CPU s/1k | bench CPU s/1k | machine busy | hub RSS (peak) MiB | sustained |"
    );
    let _ = writeln!(text, "|---|---:|---:|---|---|---|---:|---:|---:|---:|---|");
    let latency = |l: &Latency| format!("{:.1} / {:.1} / {:.0}", l.p50_ms, l.p99_ms, l.max_ms);
    for step in report
        .steps
        .iter()
        .chain(report.soak.as_ref().map(|s| &s.step))
    {
        let f = &step.figures;
        let _ = writeln!(
            text,
            "| {} {:.0}/s | {:.0} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.0} % | {:.0} ({:.0}) | {}{} |",
            step.name,
            step.rate,
            f.offered_per_second,
            f.completed_per_second,
            latency(&f.webhook_ack),
            latency(&f.ingest_to_store),
            latency(&f.accept_to_platform),
            step.hub_cpu_per_1000,
            step.bench_cpu_per_1000,
            step.machine_busy * 100.0,
            step.hub_rss_mib,
            step.hub_peak_rss_mib,
            if step.sustained { "yes" } else { "no" },
            if f.faults.is_empty() {
                String::new()
            } else {
                format!(" — VOID: {}", f.faults.join("; "))
            },
        );
    }
    match (
        report.max_sustained_rate,
        report.max_sustained_per_second,
        report.ratio_to_floor,
    ) {
        (Some(rate), Some(per_second), Some(ratio)) => {
            let _ = writeln!(
                text,
                "\nHighest sustained: {rate:.0} orders/s offered, {per_second:.0} completed end to end = {:.1} % of the floor (target 50 %: {}).",
                ratio * 100.0,
                if ratio >= 0.5 { "met" } else { "not met" }
            );
        }
        _ => {
            let _ = writeln!(text, "\nNo rate was sustained.");
        }
    }
    for target in &report.targets {
        let _ = writeln!(
            text,
            "At half of it: {} p99 {:.1} ms (target under {:.0} ms: {}).",
            target.what,
            target.p99_ms,
            target.limit_ms,
            if target.met { "met" } else { "not met" }
        );
    }
    if let Some(soak) = &report.soak {
        let _ = writeln!(
            text,
            "\nSoak at {:.0}/s for {:.0} min: memory {}, latency {}.",
            soak.step.rate,
            soak.step.seconds / 60.0,
            if soak.memory_flat { "flat" } else { "NOT flat" },
            if soak.latency_flat {
                "flat"
            } else {
                "NOT flat"
            }
        );
        let _ = writeln!(
            text,
            "| minute | completed | webhook ack p99 ms | ingest→store p99 ms | accept→platform p99 ms | hub RSS MiB |"
        );
        let _ = writeln!(text, "|---:|---:|---:|---:|---:|---:|");
        for m in &soak.minutes {
            let _ = writeln!(
                text,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
                m.minute,
                m.completed,
                m.webhook_ack.p99_ms,
                m.ingest_to_store.p99_ms,
                m.accept_to_platform.p99_ms,
                m.hub_rss_mib
            );
        }
    }
    let _ = writeln!(
        text,
        "\nEvery order exactly once at its store and completed: {}.",
        if report.valid() {
            "yes"
        } else {
            "NO — the run is void"
        }
    );
    text
}

/// Removes the run's queues and database.
async fn remove(settings: &Settings, admin_url: &str, db_name: &str) {
    let bounded = Duration::from_secs(10);
    let stores_queue = format!("{}.bench.stores", settings.broker.prefix);
    crossdock_broker::Topology::remove(&settings.broker, &[stores_queue], bounded).await;
    let _ = tokio::time::timeout(bounded, Db::drop_database(admin_url, db_name)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(minute: usize, p99_ms: f64, rss: f64) -> SoakMinute {
        let latency = Latency {
            count: 1,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms,
        };
        SoakMinute {
            minute,
            completed: 1,
            webhook_ack: latency,
            ingest_to_store: latency,
            accept_to_platform: latency,
            hub_rss_mib: rss,
        }
    }

    #[test]
    fn a_soak_is_flat_only_when_its_last_minute_is_about_its_second() {
        // The first minute warms up and is not judged.
        let steady = [
            minute(1, 70.0, 200.0),
            minute(2, 12.0, 210.0),
            minute(3, 20.0, 212.0),
        ];
        assert_eq!(flatness(&steady), (true, true));
        // Under the targets (100 ms) but four times the second minute: not flat.
        let rising = [
            minute(1, 10.0, 200.0),
            minute(2, 12.0, 210.0),
            minute(3, 46.0, 210.0),
        ];
        assert_eq!(flatness(&rising), (true, false));
        // A fast p99 may move by a few milliseconds.
        let noisy = [
            minute(1, 2.0, 200.0),
            minute(2, 2.0, 210.0),
            minute(3, 6.5, 210.0),
        ];
        assert_eq!(flatness(&noisy), (true, true));
        // Memory: 10 % or 16 MiB, whichever is more.
        let growing = [
            minute(1, 5.0, 200.0),
            minute(2, 5.0, 210.0),
            minute(3, 5.0, 240.0),
        ];
        assert_eq!(flatness(&growing), (false, true));
    }
}
