//! A real hub for tests: its own PostgreSQL database and RabbitMQ prefix, the sample chain
//! and its menu loaded, store tokens issued, and helpers to drive it over HTTP and to wait
//! on its state.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use crossdock_broker::Topology;
use crossdock_db::Db;
use crossdock_db::scratch::ScratchDatabase;
use crossdock_hub::{HubHandle, Roles, Settings};
use crossdock_model::{ChainFile, OrderId, StoreId};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::Value;

use crate::{FIXTURE_PUBLIC_URL, HubAddress};

/// How long a test waits for the hub to reach a state.
pub const WAIT: Duration = Duration::from_secs(20);

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The sample chain (`fixtures/chain/chain.json`) as the test hubs load it: every store
/// open around the clock, so that no test depends on the hour it runs at (the opening-hours
/// rules have their own tests in the router crate).
pub fn chain() -> ChainFile {
    let path = repo_root().join("fixtures/chain/chain.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut chain: ChainFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for store in &mut chain.stores {
        store.hours = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|day| (day.to_string(), vec![["00:00".into(), "24:00".into()]]))
            .collect();
        store.closed_on.clear();
    }
    chain
}

/// The sample chain's menu (`fixtures/chain/menu.json`), as the test hubs load it: orders
/// naming an item not on it are refused.
pub fn menu() -> crossdock_hub::chain::Menu {
    let path = repo_root().join("fixtures/chain/menu.json");
    crossdock_hub::chain::Menu::read(&path).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Test logs go to the test's output when `TEST_LOG` is set.
pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,lapin=warn")
                .with_test_writer()
                .try_init();
        }
    });
}

/// Polls `check` every 25 ms until it returns `Some`, or panics after `timeout` with `what`.
///
/// Only for conditions on state that announces no change to a client (rows in PostgreSQL,
/// the hub's in-memory registry). Where an event exists, wait on it instead: the
/// simulators' `CallLog::wait_until`, a queue's next delivery, a process's log line.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(timeout, check).await {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// [`wait_for`] that gives `None` after `timeout` instead of panicking, for a test that
/// reports every condition that never held rather than stopping at the first.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A database and a broker prefix of one test, and the settings that point at them.
pub struct Infra {
    pub settings: Settings,
    pub database: ScratchDatabase,
    pub db: Db,
    cleaned: bool,
}

impl Infra {
    pub async fn new() -> Infra {
        init_logs();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let database = ScratchDatabase::create()
            .await
            .expect("create test database (is PostgreSQL up? scripts/services.sh starts it)");
        let mut settings =
            Settings::load(Some(&repo_root().join("config/crossdock.toml"))).expect("settings");
        settings.database.url = database.url.clone();
        settings.database.pool_size = 8;
        settings.broker.prefix = format!("t{}", &suffix[..12]);
        settings.broker.store_shards = 4;
        settings.http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.http.public_url = FIXTURE_PUBLIC_URL.into();
        settings.relay.poll_ms = 50;
        settings.router.refresh_ms = 200;
        settings.sync.first_backoff_ms = 100;
        settings.sync.max_backoff_ms = 1000;
        settings.sync.max_attempts = 4;
        let db = crossdock_hub::app::connect_db(&settings, 4)
            .await
            .expect("migrate and connect the test database");
        crossdock_hub::chain::load(&db, &chain())
            .await
            .expect("load chain");
        crossdock_hub::chain::load_menu(&db, &menu())
            .await
            .expect("load menu");
        Infra {
            settings,
            database,
            db,
            cleaned: false,
        }
    }

    /// Deletes the test's queues and database.
    pub async fn cleanup(mut self) {
        self.cleaned = true;
        remove(&self.settings, &self.database).await;
    }
}

/// A test that panicked still removes its queues and database.
impl Drop for Infra {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (settings, database) = (self.settings.clone(), self.database.clone());
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove(&settings, &database));
            }
        });
        let _ = cleanup.join();
    }
}

/// Removes a test's queues and database, every step bounded ([`Topology::remove`]): a
/// broker or database that does not answer must not hang the test suite.
async fn remove(settings: &Settings, database: &ScratchDatabase) {
    let bounded = Duration::from_secs(10);
    Topology::remove(&settings.broker, &[], bounded).await;
    let _ = tokio::time::timeout(bounded, database.remove()).await;
}

/// What a platform or a store needs to talk to a running hub: its address, the HQ token
/// and every store's token.
#[derive(Clone)]
pub struct HubAccess {
    pub address: HubAddress,
    pub admin_token: String,
    pub http: reqwest::Client,
    tokens: HashMap<String, String>,
}

impl HubAccess {
    /// The store's API token (every store of the sample chain has one).
    pub fn store_token(&self, store: &str) -> &str {
        self.tokens
            .get(store)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no store {store} in the sample chain"))
    }

    /// GET `/api/v1{path}` with `token`; returns (status, JSON body).
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/v1{path}", self.address.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST `/api/v1{path}` with `token` and a JSON body; returns (status, JSON body).
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.address.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// A running hub (every stage in-process) on its own database and broker prefix.
pub struct Hub {
    /// First, so that it is dropped first: a test that panics aborts the hub's stages
    /// before its infrastructure is removed, or their consumers, reconnecting, would
    /// declare the queues again.
    handle: Option<HubHandle>,
    pub infra: Infra,
    pub access: HubAccess,
}

impl Hub {
    /// Starts a hub whose channels get `options` (`[channels.<id>]`, e.g. the simulators'
    /// URLs) and issues a token for every store of the sample chain.
    pub async fn start(options: impl IntoIterator<Item = (String, Value)>) -> Hub {
        let infra = Infra::new().await;
        Self::start_on(infra, options).await
    }

    /// Starts a hub on an existing database and prefix (a restart).
    pub async fn start_on(
        mut infra: Infra,
        options: impl IntoIterator<Item = (String, Value)>,
    ) -> Hub {
        infra.settings.channels.extend(options);
        let handle = crossdock_hub::start(infra.settings.clone(), Roles::ALL)
            .await
            .expect("start hub");
        let addr = handle.addr.expect("api address");
        let mut tokens = HashMap::new();
        for store in chain().stores {
            let token = crossdock_hub::chain::issue_token(&infra.db, &store.id)
                .await
                .expect("issue token");
            tokens.insert(store.id.to_string(), token);
        }
        Hub {
            access: HubAccess {
                address: HubAddress {
                    base: format!("http://{addr}"),
                    public: infra.settings.http.public_url.clone(),
                },
                admin_token: crossdock_hub::config::DEV_ADMIN_TOKEN.into(),
                http: reqwest::Client::new(),
                tokens,
            },
            infra,
            handle: Some(handle),
        }
    }

    pub fn db(&self) -> &Db {
        &self.infra.db
    }

    /// The running hub's handle (its shared state: registry, channels).
    pub fn handle(&self) -> &HubHandle {
        self.handle.as_ref().expect("the hub runs until stopped")
    }

    pub fn base(&self) -> &str {
        &self.access.address.base
    }

    /// Waits until the channel's order is stored and assigned to a store; returns it as HQ
    /// sees it.
    pub async fn routed_order(&self, channel: &str, external_order_id: &str) -> Value {
        let db = self.db();
        let order = wait_for(
            &format!("{channel} order {external_order_id} to be routed"),
            WAIT,
            || async move {
                db.order_by_external(channel, external_order_id)
                    .await
                    .ok()
                    .flatten()
                    .filter(|o| o.store_id.is_some())
            },
        )
        .await;
        let (status, view) = self
            .access
            .get(&self.access.admin_token, &format!("/orders/{}", order.id))
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Waits until the store queue has handed the order over.
    pub async fn delivered_to_store(&self, order_id: &str) {
        let id = OrderId::parse(order_id).expect("order id");
        let db = self.db();
        wait_for("the store delivery", WAIT, || async move {
            (db.store_handovers(id).await.ok()? >= 1).then_some(())
        })
        .await;
    }

    /// Waits until nothing is left to publish and the order has no pending status sync;
    /// returns the order's syncs as (action, state).
    pub async fn settled(&self, order_id: &str) -> Vec<(crossdock_model::StatusAction, String)> {
        let id = OrderId::parse(order_id).expect("order id");
        let db = self.db();
        wait_for("the hub to settle", WAIT, || async move {
            let backlog = db.outbox_backlog().await.ok()?;
            let syncs = db.syncs(id).await.ok()?;
            (backlog == 0 && syncs.iter().all(|s| s.1 != "pending"))
                .then(|| syncs.into_iter().map(|s| (s.0, s.1)).collect())
        })
        .await
    }

    /// Stops the hub and keeps its database and prefix (for a restart).
    pub async fn shutdown(mut self) -> Infra {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
        self.infra
    }

    /// Stops the hub and removes its database and queues.
    pub async fn stop(self) {
        self.shutdown().await.cleanup().await;
    }
}

/// Whether a queue outlives a broker restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A durable quorum queue (the fault suite, whose broker restarts).
    Quorum,
    /// A queue that does not outlive the broker (the benchmark).
    Transient,
}

/// Declares the hub's topology on `config` and the queue `{prefix}.{name}`, bound to
/// everything of every store ([`Topology::ALL_STORES_PATTERNS`]), as a chain's POS
/// integration would bind its own: what the run's stores consume. Returns the queue's name.
pub async fn declare_stores_queue(
    config: &crossdock_broker::BrokerConfig,
    name: &str,
    durability: Durability,
) -> anyhow::Result<String> {
    let queue = format!("{}.{name}", config.prefix);
    declared_stores_queue(config, &queue, durability)
        .await
        .map_err(|error| error.context(format!("declaring the stores' queue {queue}")))?;
    Ok(queue)
}

async fn declared_stores_queue(
    config: &crossdock_broker::BrokerConfig,
    queue: &str,
    durability: Durability,
) -> anyhow::Result<()> {
    let topology = Topology::from_config(config);
    let connection = crossdock_broker::connect(config).await?;
    let channel = connection.create_channel().await?;
    topology.declare(&channel, config.delivery_limit).await?;
    let mut arguments = FieldTable::default();
    if durability == Durability::Quorum {
        arguments.insert(
            "x-queue-type".into(),
            lapin::types::AMQPValue::LongString("quorum".into()),
        );
    }
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: durability == Durability::Quorum,
                ..Default::default()
            },
            arguments,
        )
        .await?;
    for pattern in Topology::ALL_STORES_PATTERNS {
        channel
            .queue_bind(
                queue.into(),
                topology.exchange().as_str().into(),
                pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let _ = connection.close(200, "declared".into()).await;
    Ok(())
}

/// The binary `name` beside the running executable (`target/<profile>/`): the
/// `crossdock` a command of the workspace drives.
pub fn sibling_bin(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no directory", me.display()))?;
    let bin = dir.join(name);
    anyhow::ensure!(
        bin.exists(),
        "no {name} binary at {}: build it (cargo build --release -p crossdock-hub) or pass --hub-bin",
        bin.display()
    );
    Ok(bin)
}

/// A queue bound to everything of one store (what is handed to it and every change of
/// status of its orders), as a store's POS would bind it.
pub struct StoreQueue {
    consumer: lapin::Consumer,
    _connection: lapin::Connection,
}

impl StoreQueue {
    pub async fn bind(settings: &Settings, store: &str) -> StoreQueue {
        let topology = Topology::from_config(&settings.broker);
        let connection = crossdock_broker::connect(&settings.broker)
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        topology
            .declare(&channel, settings.broker.delivery_limit)
            .await
            .expect("declare");
        let queue = format!(
            "{}.pos.{store}.{}",
            settings.broker.prefix,
            uuid::Uuid::new_v4().simple()
        );
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare store queue");
        let store_id = StoreId::parse(store).expect("a store id");
        for pattern in topology.store_patterns(&store_id) {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    topology.exchange().as_str().into(),
                    pattern.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind store queue");
        }
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "pos".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        StoreQueue {
            consumer,
            _connection: connection,
        }
    }

    /// The next message's (type, JSON body), or `None` if none comes within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<(String, Value)> {
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        delivery.ack(BasicAckOptions::default()).await.ok()?;
        let kind = delivery
            .properties
            .kind()
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_default();
        Some((kind, serde_json::from_slice(&delivery.data).ok()?))
    }
}

/// The store code of the sample chain's first store the channel is mapped at, with the
/// channel's id for it and the store's currency.
pub fn store_for(channel: &str) -> (StoreId, String, String) {
    chain()
        .stores
        .into_iter()
        .find_map(|store| {
            let reference = store.channels.get(channel)?.clone();
            Some((store.id.clone(), reference, store.currency.to_string()))
        })
        .unwrap_or_else(|| panic!("no store of the sample chain is mapped for channel {channel}"))
}
