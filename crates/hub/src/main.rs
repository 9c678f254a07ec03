//! `crossdock`: run the hub, migrate the database, load the chain, issue store tokens, run
//! the demo, look at what a platform request becomes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use crossdock_hub::{Roles, Settings, chain, demo, inspect};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: under load, glibc (mostly its allocator) took about
/// a quarter of the hub's CPU (README, "Benchmarks").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "crossdock", version, about = "Crossdock order hub")]
struct Cli {
    /// Configuration file (default: config/crossdock.toml).
    #[arg(long, global = true, env = "CROSSDOCK_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    json_logs: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (all stages, or those named by --role).
    Serve {
        /// Comma-separated stages: api, relay, router, store, fetch, sync (default: all).
        #[arg(long, default_value = "all")]
        role: Roles,
    },
    /// Apply database migrations.
    Migrate,
    /// Load (insert or update) the stores of a chain file, and replace the chain's menu
    /// with a menu file (orders naming an item not on it are refused).
    LoadChain {
        #[arg(default_value = "fixtures/chain/chain.json")]
        file: PathBuf,
        /// The chain's menu: the items and modifier options (PLUs) orders may name.
        #[arg(long, default_value = "fixtures/chain/menu.json")]
        menu: PathBuf,
        /// Load the stores only and leave the menu in the database as it is (with none,
        /// orders' items are not checked).
        #[arg(long, conflicts_with = "menu")]
        no_menu: bool,
    },
    /// Issue a new API token for a store (replaces its previous token).
    IssueToken {
        #[arg(long)]
        store: String,
    },
    /// Run the hub with the platform simulators, the sample chain and demo orders.
    Demo(demo::DemoArgs),
    /// Verify a raw platform request with the configured credentials and print the unified
    /// order or event it becomes (exit 1 and the platform's answer if it is refused).
    Normalize(inspect::NormalizeArgs),
    /// List the channels this hub has, with the secrets each needs in production.
    Channels,
    /// Print the key a store's own system (POS) signs a channel's requests with.
    StoreCredential {
        #[arg(long)]
        channel: String,
        #[arg(long)]
        store: String,
    },
}

fn init_logs(json: bool) {
    // lapin logs every failed connection attempt as errors of its own auto-recovery, which
    // the hub does not use: the broker crate reports each outage once, with its reason,
    // and each retry as a warning (`RUST_LOG=…,lapin=debug` shows lapin's view).
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,lapin=off,amq_protocol=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    init_logs(cli.json_logs);
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { role } => {
            let hub = crossdock_hub::start(settings, role).await?;
            if let Some(addr) = hub.addr {
                tracing::info!(%addr, "Listening.");
            }
            hub.run_until_stopped().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let applied = crossdock_db::Db::migrate(&settings.database.url)
                .await
                .context("migrating")?;
            println!("migrations applied: {applied}");
            Ok(ExitCode::SUCCESS)
        }
        Command::LoadChain {
            file,
            menu,
            no_menu,
        } => {
            // Both files are read and checked before anything is written.
            let chain = chain::read(&file)?;
            let menu = if no_menu {
                None
            } else {
                Some(chain::Menu::read(&menu).with_context(|| {
                    format!(
                        "loading the menu {} (--menu FILE names another; --no-menu loads the stores only)",
                        menu.display()
                    )
                })?)
            };
            let db = connect(&settings).await?;
            let count = chain::load(&db, &chain).await?;
            println!("stores loaded: {count}");
            match menu {
                Some(menu) => {
                    let replaced = chain::load_menu(&db, &menu).await?;
                    println!(
                        "menu loaded: {} items and options ({} new, {} changed, {} removed)",
                        replaced.total(),
                        replaced.added,
                        replaced.changed,
                        replaced.removed
                    );
                }
                None => {
                    let kept = db.menu_plus().await?.len();
                    if kept == 0 {
                        println!(
                            "menu not loaded (--no-menu), and there is none: orders' items are not checked"
                        );
                    } else {
                        println!(
                            "menu not loaded (--no-menu): the menu already loaded stays ({kept} items and options)"
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::IssueToken { store } => {
            let db = connect(&settings).await?;
            let store = crossdock_model::StoreId::parse(store)?;
            println!("{}", chain::issue_token(&db, &store).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            demo::run(settings, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Normalize(args) => {
            // Exit 1: the request is refused (the platform's answer is printed); exit 2: the
            // files or the configuration could not be read.
            let normalized = match inspect::normalize(&settings, &args) {
                Ok(normalized) => normalized,
                Err(error) => {
                    eprintln!("Error: {error:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            println!("{}", normalized.text);
            Ok(if normalized.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Channels => {
            let factories = crossdock_hub::channels::factories();
            let width = factories.iter().map(|f| f.id().len()).max().unwrap_or(0);
            for factory in factories {
                let secrets: Vec<String> = factory
                    .dev_secrets()
                    .iter()
                    .map(|(name, _)| crossdock_channel::SecretSource::env_name(factory.id(), name))
                    .collect();
                println!("{:<width$}  secrets: {}", factory.id(), secrets.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::StoreCredential { channel, store } => {
            println!(
                "{}",
                inspect::store_credential(&settings, &channel, &store)?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<crossdock_db::Db> {
    crossdock_hub::app::connect_db(settings, 2).await
}
