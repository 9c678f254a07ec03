//! Building and running a hub: the shared state, and one task per stage of the pipeline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use crossdock_broker::{Publisher, Topology};
use crossdock_channel::Channel;
use crossdock_db::chain::{LiveRow, LiveWatermark};
use crossdock_db::{Db, DbConfig};
use crossdock_router::{Registry, StoreLive};
use secrecy::SecretString;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::feed::Feed;
use crate::links::{self, Links};
use crate::routes::TopologyRoutes;
use crate::{channels, feed, http, workers};

/// The stages a process runs (`serve --role api,relay,...`; default all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Webhooks, store and HQ API, health.
    pub api: bool,
    /// Outbox relay: publishes committed messages.
    pub relay: bool,
    /// Router: assigns stores.
    pub router: bool,
    /// Store delivery: consumes the store queues.
    pub store: bool,
    /// Fetcher for notify-then-fetch channels.
    pub fetch: bool,
    /// Status sync to the channels.
    pub sync: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        relay: true,
        router: true,
        store: true,
        fetch: true,
        sync: true,
    };
    pub const NAMES: [&'static str; 6] = ["api", "relay", "router", "store", "fetch", "sync"];
}

impl FromStr for Roles {
    type Err = String;
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut roles = Roles {
            api: false,
            relay: false,
            router: false,
            store: false,
            fetch: false,
            sync: false,
        };
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => roles = Roles::ALL,
                "api" => roles.api = true,
                "relay" => roles.relay = true,
                "router" => roles.router = true,
                "store" => roles.store = true,
                "fetch" => roles.fetch = true,
                "sync" => roles.sync = true,
                other => {
                    return Err(format!(
                        "unknown role `{other}`; roles are {}",
                        Roles::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(roles)
    }
}

/// What every stage shares.
pub struct Shared {
    pub settings: Settings,
    pub db: Db,
    pub topology: Topology,
    pub channels: HashMap<String, Arc<dyn Channel>>,
    pub registry: RwLock<Arc<Registry>>,
    /// The database's registry version the in-memory registry was built from.
    registry_version: AtomicI64,
    /// How far the in-memory registry has read the stores' live state.
    live_watermark: Mutex<LiveWatermark>,
    /// Wakes the relay when HQ put a set-aside message back (other rows are published by
    /// their committer, or found by the relay's poll).
    pub relay_wake: Notify,
    /// The outbox rows this process's publisher has in hand, which its relay leaves alone.
    pub in_hand: Arc<workers::relay::InHand>,
    pub admin_token: SecretString,
    /// Set when this process runs the relay.
    pub publisher: Option<Publisher>,
    /// The state of this process's links to PostgreSQL and RabbitMQ, for `/readyz`.
    pub links: Links,
    /// The Prometheus metrics every stage counts into (`GET /metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Changes for the web pages' live streams (see `feed`).
    pub feed: Feed,
    /// Turns `true` when the hub stops; long-lived responses (the streams) end then.
    pub stopping: watch::Receiver<bool>,
    /// Where the webhooks leave orders to be recorded together (with the API role).
    pub orders_desk: http::OrdersDesk,
}

impl Shared {
    pub fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the in-memory store registry (the stores and the chain's menu) if the
    /// database's has changed since it was last built; returns the number of stores when it
    /// did. The new registry gets every store's live state before it replaces the old one.
    pub async fn refresh_registry(&self) -> anyhow::Result<Option<usize>> {
        let version = self.db.registry_version().await?;
        if version == self.registry_version.load(Ordering::Acquire) {
            return Ok(None);
        }
        let stores = self.db.load_stores().await?;
        let menu = self.db.menu_plus().await?;
        let registry = Registry::build(stores)?.with_menu(menu);
        let (live, watermark) = self.db.live_changes(LiveWatermark::default()).await?;
        for row in live {
            apply_live(&registry, row);
        }
        let count = registry.len();
        match self.registry.write() {
            Ok(mut guard) => *guard = Arc::new(registry),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(registry),
        }
        self.set_live_watermark(watermark);
        // Stores read after the version: a change in between only causes one more rebuild.
        self.registry_version.store(version, Ordering::Release);
        Ok(Some(count))
    }

    /// Reads the stores' live state changed since the last read into the registry;
    /// returns how many stores changed.
    pub async fn refresh_live(&self) -> anyhow::Result<usize> {
        let since = *self
            .live_watermark
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (rows, watermark) = self.db.live_changes(since).await?;
        let registry = self.registry();
        let changed = rows.len();
        for row in rows {
            apply_live(&registry, row);
        }
        self.set_live_watermark(watermark);
        Ok(changed)
    }

    /// Puts a store's live state, as the database just returned it, into the registry at
    /// once (other processes read it within `router.live_refresh_ms`).
    pub fn note_live(&self, row: LiveRow) {
        apply_live(&self.registry(), row);
    }

    fn set_live_watermark(&self, watermark: LiveWatermark) {
        let mut slot = self
            .live_watermark
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = watermark;
    }
}

/// Puts a live row into the registry unless it holds a later version of it: a read that
/// started before a change another task has already applied must not undo it.
fn apply_live(registry: &Registry, row: LiveRow) {
    registry.update_live(
        &row.store,
        StoreLive {
            paused_until: row.paused_until,
            pause_reason: row.pause_reason,
            unavailable: row.unavailable.into_iter().collect(),
            active: row.active,
        },
        row.version,
    );
}

/// A running hub.
pub struct HubHandle {
    /// The API's address, when this process runs the API.
    pub addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl HubHandle {
    /// Stops every stage and waits for them (bounded).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            tracing::warn!("Some stages did not stop within 10 s; aborting them.");
            self.tasks.abort_all();
        }
    }

    /// Runs until one stage ends (which it should not) or ctrl-c / SIGTERM.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("Interrupted; shutting down."),
            _ = terminate.recv() => tracing::info!("Terminated; shutting down."),
            ended = self.tasks.join_next() => {
                if let Some(Err(error)) = ended {
                    tracing::error!(%error, "A stage crashed; shutting down.");
                } else {
                    tracing::error!("A stage ended; shutting down.");
                }
            }
        }
        self.shutdown().await;
        Ok(())
    }
}

/// Applies pending migrations and opens a pool of `pool_size` connections, its outbox
/// messages laid onto the configured broker topology.
pub async fn connect_db(settings: &Settings, pool_size: usize) -> anyhow::Result<Db> {
    let applied = Db::migrate(&settings.database.url)
        .await
        .context("migrating the database")?;
    if applied > 0 {
        tracing::info!(applied, "Database migrations applied.");
    }
    let routes = TopologyRoutes {
        topology: Topology::from_config(&settings.broker),
    };
    let config = DbConfig {
        url: settings.database.url.clone(),
        pool_size,
    };
    Db::connect(&config, Arc::new(routes))
        .await
        .context("connecting to PostgreSQL")
}

/// Connects to PostgreSQL (waiting while it is unreachable), applies migrations, and
/// starts `roles`; their broker sessions connect, and reconnect, by themselves.
pub async fn start(settings: Settings, roles: Roles) -> anyhow::Result<HubHandle> {
    let secrets = settings.secret_source()?;
    let admin_token = settings.admin_token(&secrets)?;
    let http_client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let channel_list = channels::build(&settings, &secrets, &http_client)?;
    let topology = Topology::from_config(&settings.broker);

    let mut db = links::while_postgres_unreachable("migrating and connecting", || {
        connect_db(&settings, settings.database.pool_size)
    })
    .await?;
    let links = Links::default();
    let in_hand = Arc::new(workers::relay::InHand::default());
    // The relay connects (and reconnects) by itself: the broker may come up after the hub.
    // Its publisher publishes this process's commits right after them.
    let mut committed = None;
    let publisher = if roles.relay {
        let publisher = Publisher::new(&settings.broker).context("the broker's settings")?;
        links.register("publisher", publisher.link_state());
        let (outbound, receiver) = workers::relay::Outbound::new(in_hand.clone(), roles.sync);
        db = db.publishing_commits(Arc::new(outbound));
        committed = Some(receiver);
        Some(publisher)
    } else {
        None
    };

    let (stop, stopped) = watch::channel(false);
    let metrics = crate::metrics::Metrics::new(
        channel_list.iter().map(|c| c.id().as_str()),
        &settings.broker,
        crossdock_broker::topology_queues(&topology),
    );
    let shared = Arc::new(Shared {
        channels: channel_list
            .iter()
            .map(|c| (c.id().as_str().to_owned(), c.clone()))
            .collect(),
        settings,
        db,
        topology,
        registry: RwLock::new(Arc::new(Registry::build([])?)),
        registry_version: AtomicI64::new(i64::MIN),
        live_watermark: Mutex::new(LiveWatermark::default()),
        relay_wake: Notify::new(),
        in_hand,
        admin_token,
        publisher,
        links,
        metrics,
        feed: Feed::default(),
        stopping: stopped.clone(),
        orders_desk: http::orders_desk(),
    });
    let stores = links::while_postgres_unreachable("loading the store registry", || async {
        shared
            .refresh_registry()
            .await
            .context("loading the store registry")
    })
    .await?
    .unwrap_or_default();
    let menu_items = shared.registry().menu().map_or(0, |menu| menu.len());
    tracing::info!(
        stores,
        menu_items,
        channels = shared.channels.len(),
        ?roles,
        "Hub starting."
    );
    if menu_items == 0 && (roles.api || roles.router) {
        tracing::warn!(
            "No menu is loaded: orders' items are not checked against the chain's menu \
             (`crossdock load-chain --menu FILE` loads one)."
        );
    }

    let mut tasks = JoinSet::new();
    tasks.spawn(links::watch_postgres(shared.clone(), stopped.clone()));
    let mut addr = None;
    if roles.api {
        let listener = tokio::net::TcpListener::bind(shared.settings.http.bind)
            .await
            .with_context(|| format!("binding {}", shared.settings.http.bind))?;
        addr = Some(listener.local_addr()?);
        tasks.spawn(http::serve(shared.clone(), listener, stopped.clone()));
        http::spawn_desk(&mut tasks, &shared, &stopped);
        tasks.spawn(feed::run(shared.clone(), stopped.clone()));
    }
    if roles.api || roles.router {
        tasks.spawn(workers::refresh_registry(shared.clone(), stopped.clone()));
    }
    let sync_runs = if roles.sync {
        for channel in shared.settings.sync.push_rates.keys() {
            if !shared.channels.contains_key(channel.as_str()) {
                tracing::warn!(
                    channel = %channel,
                    "`sync.push_rates` names a channel that is not configured; its rate is not used."
                );
            }
        }
        let pusher: Arc<dyn crossdock_db::sync::SyncPush> =
            Arc::new(shared.metrics.meter(crossdock_sync::ChannelPusher::new(
                &channel_list,
                shared.settings.sync.policy(),
                &shared.settings.sync.push_rates(),
            )));
        let runs = links::while_postgres_unreachable("connecting the sync runs", || async {
            workers::sync::SyncRuns::connect(
                &shared.db,
                &shared.settings.database.url,
                pusher.clone(),
                shared.settings.sync.concurrency,
                shared.channels.keys(),
            )
            .await
            .context("connecting the sync runs to PostgreSQL")
        })
        .await?;
        Some(runs)
    } else {
        None
    };
    let routing_desk = roles.router.then(workers::router::RoutingDesk::default);
    if let Some(committed) = committed {
        let here = workers::relay::RunsHere {
            sync: sync_runs.clone(),
            routing: routing_desk.clone(),
        };
        tasks.spawn(workers::relay::publish_committed(
            shared.clone(),
            here,
            committed,
            stopped.clone(),
        ));
        tasks.spawn(workers::relay::run(shared.clone(), stopped.clone()));
    }
    if let Some(desk) = &routing_desk {
        workers::router::spawn(&mut tasks, &shared, desk, &stopped);
    }
    if roles.store {
        for queue in shared.topology.store_queues() {
            tasks.spawn(workers::store::run(shared.clone(), queue, stopped.clone()));
        }
    }
    if roles.fetch {
        tasks.spawn(workers::fetch::run(shared.clone(), stopped.clone()));
    }
    if let Some(runs) = sync_runs {
        tasks.spawn(workers::sync::run(
            shared.clone(),
            runs.clone(),
            stopped.clone(),
        ));
        tasks.spawn(workers::sync::sweep(shared.clone(), runs, stopped.clone()));
    }
    Ok(HubHandle {
        addr,
        shared,
        stop,
        tasks,
    })
}
