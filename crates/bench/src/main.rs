//! `crossdock-bench`: measures the floor and the hub in one run, prints the figures and
//! writes them to a results file; exits 1 if an order was lost or duplicated (the run is
//! then void).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use crossdock_bench::Options;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "crossdock-bench",
    about = "The floor PostgreSQL and RabbitMQ allow per order, then orders through the whole hub at fixed rates: the highest sustained rate, latencies, CPU and memory, and a soak"
)]
struct Cli {
    /// Seconds each step offers orders.
    #[arg(long, default_value_t = 20)]
    step_seconds: u64,
    /// Fixed rates to run, orders a second (comma-separated); without them the run
    /// searches for the highest sustained rate, then runs at half of it.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// The search's first rate, doubled while sustained.
    #[arg(long, default_value_t = 100.0)]
    start_rate: f64,
    /// Orders of the floor.
    #[arg(long, default_value_t = 20_000)]
    floor_orders: u64,
    /// Minutes of a soak at a fixed rate after the steps (0: none).
    #[arg(long, default_value_t = 0)]
    soak_minutes: u64,
    /// The soak's rate (default: half of the highest sustained rate).
    #[arg(long)]
    soak_rate: Option<f64>,
    /// The results file (JSON; the printed summary goes beside it as .txt).
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// The hub's configuration file; the run makes its own database and queues on the
    /// PostgreSQL and RabbitMQ it names.
    #[arg(long, default_value = "config/crossdock.toml")]
    config: PathBuf,
    /// The `crossdock` binary (default: next to this one).
    #[arg(long)]
    hub_bin: Option<PathBuf>,
    /// Keep the run's database, queues and hub log.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                // The simulators log every order they place: quiet, they cost less of the
                // machine the hub is measured on.
                .unwrap_or_else(|_| EnvFilter::new("warn,crossdock_bench=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let options = Options {
        hub_bin: match cli.hub_bin {
            Some(bin) => bin,
            None => crossdock_kit::harness::sibling_bin("crossdock")?,
        },
        config: std::path::absolute(&cli.config)?,
        floor_orders: cli.floor_orders,
        step: Duration::from_secs(cli.step_seconds),
        rates: cli.rates,
        start_rate: cli.start_rate,
        soak: (cli.soak_minutes > 0).then(|| Duration::from_secs(cli.soak_minutes * 60)),
        soak_rate: cli.soak_rate,
        out: cli.out.clone(),
        keep: cli.keep,
    };
    let report = crossdock_bench::run(options).await?;
    println!("{}", crossdock_bench::summary(&report));
    println!(
        "Results: {} and {}",
        cli.out.display(),
        cli.out.with_extension("txt").display()
    );
    Ok(if report.valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
