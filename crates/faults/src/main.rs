//! `crossdock-faults`: runs the fault suite and prints its figures; exits 1 if it failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use crossdock_faults::{Layout, Options};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "crossdock-faults",
    about = "Steady traffic through the hub while processes are killed, RabbitMQ and PostgreSQL restart, platform APIs fail and stores stall; then a reconciliation of every order"
)]
struct Cli {
    /// How long orders are offered, in seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Orders offered per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// One process per role (split) or one process with every role (single).
    #[arg(long, value_enum, default_value = "split")]
    layout: Layout,
    /// Seconds for one cycle of faults (every fault once); default: the whole run, at most
    /// 300.
    #[arg(long)]
    cycle_seconds: Option<u64>,
    /// The `crossdock` binary (default: next to this one).
    #[arg(long)]
    hub_bin: Option<PathBuf>,
    /// Where the services' data and the logs go (default: a new directory under /tmp).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Seconds the pipeline may take to drain after the traffic.
    #[arg(long, default_value_t = 300)]
    drain_seconds: u64,
    /// Share of acknowledged orders delivered a second time.
    #[arg(long, default_value_t = 0.05)]
    duplicates: f64,
    /// Share of the orders of cancelling platforms (own app, Uber Eats, DoorDash,
    /// Deliveroo, Meituan, Ele.me) that the platform cancels.
    #[arg(long, default_value_t = 0.05)]
    cancels: f64,
    /// Share of DoorDash and Meituan orders delivered by the platform's courier, whose
    /// events arrive out of order.
    #[arg(long, default_value_t = 0.05)]
    couriers: f64,
    /// Keep the work directory even when the run passes.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,lapin=warn,amq_protocol=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let duration = Duration::from_secs(cli.seconds);
    let options = Options {
        duration,
        rate: cli.rate,
        layout: cli.layout,
        cycle: Duration::from_secs(cli.cycle_seconds.unwrap_or(cli.seconds.min(300))),
        hub_bin: match cli.hub_bin {
            Some(bin) => bin,
            None => crossdock_kit::harness::sibling_bin("crossdock")?,
        },
        work_dir: cli.work_dir,
        drain: Duration::from_secs(cli.drain_seconds),
        duplicate_share: cli.duplicates,
        cancel_share: cli.cancels,
        courier_share: cli.couriers,
        keep: cli.keep,
    };
    let report = crossdock_faults::run(options).await?;
    println!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
