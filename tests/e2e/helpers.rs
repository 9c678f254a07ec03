//! The test harness: one hub per test, on its own database and broker prefix, with both
//! simulators, the sample chain loaded and store tokens issued.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig as AppSimConfig};
use crossdock_adapter_uber_eats::Generation;
use crossdock_adapter_uber_eats::simulator::{SimConfig as UberSimConfig, UberEatsSim};
use crossdock_broker::Topology;
use crossdock_channel::sim::{SampleFulfillment, SampleItem, SampleOrder};
use crossdock_db::Db;
use crossdock_hub::{HubHandle, Roles, Settings};
use crossdock_model::{ChainFile, StoreId};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn chain() -> ChainFile {
    let text =
        std::fs::read_to_string(repo_root().join("fixtures/chain/chain.json")).expect("chain file");
    serde_json::from_str(&text).expect("chain parses")
}

fn admin_database_url() -> String {
    std::env::var("CROSSDOCK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://crossdock:crossdock@127.0.0.1:5432/crossdock".into())
}

fn init_logs() {
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
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A database and a broker prefix of one test, and the settings that point at them.
pub struct Infra {
    pub settings: Settings,
    pub db_name: String,
    pub db: Db,
    cleaned: bool,
}

impl Infra {
    pub async fn new() -> Infra {
        init_logs();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("crossdock_test_{}", &suffix[..16]);
        let admin = admin_database_url();
        Db::create_database(&admin, &db_name)
            .await
            .expect("create test database");
        let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
        let mut settings =
            Settings::load(Some(&repo_root().join("config/crossdock.toml"))).expect("settings");
        settings.database.url = format!("{base}/{db_name}");
        settings.database.pool_size = 8;
        settings.broker.prefix = format!("t{}", &suffix[..12]);
        settings.broker.store_shards = 4;
        settings.http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
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
        Infra {
            settings,
            db_name,
            db,
            cleaned: false,
        }
    }

    /// Deletes the test's queues and database.
    pub async fn cleanup(mut self) {
        self.cleaned = true;
        remove(&self.settings, &self.db_name).await;
    }
}

/// A test that panicked still removes its queues and database.
impl Drop for Infra {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (settings, db_name) = (self.settings.clone(), self.db_name.clone());
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove(&settings, &db_name));
            }
        });
        let _ = cleanup.join();
    }
}

async fn remove(settings: &Settings, db_name: &str) {
    if let Ok(connection) = crossdock_broker::connect(&settings.broker).await {
        if let Ok(channel) = connection.create_channel().await {
            let _ = Topology::from_config(&settings.broker)
                .delete(&channel)
                .await;
        }
        let _ = connection.close(200, "test done".into()).await;
    }
    let _ = Db::drop_database(&admin_database_url(), db_name).await;
}

/// A running hub with both simulators.
pub struct TestHub {
    pub infra: Infra,
    pub hub: Option<HubHandle>,
    pub base: String,
    pub admin_token: String,
    pub uber: UberEatsSim,
    pub app: OwnAppSim,
    pub http: reqwest::Client,
    tokens: HashMap<String, String>,
}

impl TestHub {
    pub async fn start() -> TestHub {
        Self::start_with(Generation::Classic).await
    }

    /// Starts a hub whose Uber Eats simulator places orders on API generation `uber_api`.
    pub async fn start_with(uber_api: Generation) -> TestHub {
        let mut infra = Infra::new().await;
        let uber = UberEatsSim::start(UberSimConfig {
            api: uber_api,
            ..UberSimConfig::default()
        })
        .await
        .expect("start Uber Eats simulator");
        let uber_options =
            serde_json::json!({ "base_url": uber.base_url(), "token_url": uber.token_url() });
        infra
            .settings
            .channels
            .insert("uber_eats".into(), uber_options);
        let hub = crossdock_hub::start(infra.settings.clone(), Roles::ALL)
            .await
            .expect("start hub");
        let addr = hub.addr.expect("api address");
        let base = format!("http://{addr}");
        uber.set_hub_webhook_url(format!("{base}/webhooks/uber_eats"));
        let app = OwnAppSim::start(AppSimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: format!("{base}/webhooks/own_app"),
            signing_secret: crossdock_adapter_own_app::DEV_SIGNING_SECRET.into(),
        })
        .await
        .expect("start own app simulator");
        let mut tokens = HashMap::new();
        for store in ["NYC-001", "NYC-002", "NYC-003", "LDN-001", "LDN-002"] {
            let id = StoreId::parse(store).expect("store id");
            let token = crossdock_hub::chain::issue_token(&infra.db, &id)
                .await
                .expect("issue token");
            tokens.insert(store.to_owned(), token);
        }
        TestHub {
            infra,
            hub: Some(hub),
            base,
            admin_token: crossdock_hub::config::DEV_ADMIN_TOKEN.into(),
            uber,
            app,
            http: reqwest::Client::new(),
            tokens,
        }
    }

    pub fn db(&self) -> &Db {
        &self.infra.db
    }

    pub fn token(&self, store: &str) -> &str {
        self.tokens
            .get(store)
            .map(String::as_str)
            .expect("a token was issued for this store")
    }

    /// GET `/api/v1{path}` with `token`; returns (status, JSON body).
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST `/api/v1{path}` with `token` and a JSON body.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the channel's order is stored and assigned to a store; returns it (HQ view).
    pub async fn routed_order(&self, channel: &str, external_order_id: &str) -> Value {
        let db = self.db();
        let order = wait_for("the order to be routed", WAIT, || async move {
            db.order_by_external(channel, external_order_id)
                .await
                .ok()
                .flatten()
                .filter(|o| o.store_id.is_some())
        })
        .await;
        let (status, view) = self
            .get(&self.admin_token, &format!("/orders/{}", order.id))
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Waits until the store queue has handed the order over.
    pub async fn delivered_to_store(&self, order_id: &str) {
        let id = crossdock_model::OrderId::parse(order_id).expect("order id");
        let db = self.db();
        wait_for("the store delivery", WAIT, || async move {
            (db.store_handovers(id).await.ok()? >= 1).then_some(())
        })
        .await;
    }

    /// Waits until nothing is left to publish and the order has no pending status sync.
    pub async fn settled(&self, order_id: &str) {
        let id = crossdock_model::OrderId::parse(order_id).expect("order id");
        let db = self.db();
        wait_for("the hub to settle", WAIT, || async move {
            let backlog = db.outbox_backlog().await.ok()?;
            let syncs = db.syncs(id).await.ok()?;
            (backlog == 0 && syncs.iter().all(|s| s.1 != "pending")).then_some(())
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(hub) = self.hub.take() {
            hub.shutdown().await;
        }
        self.uber.stop().await;
        self.app.stop().await;
        self.infra.cleanup().await;
    }
}

/// A queue bound to one store's routing key, as a store's POS would bind it.
pub struct PosQueue {
    consumer: lapin::Consumer,
    _connection: lapin::Connection,
}

impl PosQueue {
    pub async fn bind(settings: &Settings, store: &str) -> PosQueue {
        let topology = Topology::from_config(&settings.broker);
        let connection = crossdock_broker::connect(&settings.broker)
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        topology
            .declare(&channel, settings.broker.delivery_limit)
            .await
            .expect("declare");
        let queue = format!("{}.pos.{store}", settings.broker.prefix);
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
            .expect("declare POS queue");
        channel
            .queue_bind(
                queue.as_str().into(),
                topology.exchange().as_str().into(),
                format!("store.*.{store}").as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind POS queue");
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "pos".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        PosQueue {
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

/// A pickup order at the store the channel knows as `store_ref`.
pub fn sample_pickup(store_ref: &str, currency: &str) -> SampleOrder {
    SampleOrder {
        store_ref: Some(store_ref.to_owned()),
        currency: currency.into(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "Ada Lovelace".into(),
        customer_phone: Some("+1 212 555 0187".into()),
        items: vec![
            SampleItem {
                plu: "PZ-MARG-L".into(),
                name: "Margherita (Large)".into(),
                quantity: 2,
                unit_price_minor: 1899,
                notes: Some("well done".into()),
                modifiers: vec![SampleItem {
                    plu: "MOD-TOP-XCHS".into(),
                    name: "Extra cheese".into(),
                    quantity: 1,
                    unit_price_minor: 250,
                    notes: None,
                    modifiers: vec![],
                }],
            },
            SampleItem {
                plu: "DR-COLA-330".into(),
                name: "Cola 330ml".into(),
                quantity: 1,
                unit_price_minor: 299,
                notes: None,
                modifiers: vec![],
            },
        ],
        notes: Some("ring the bell".into()),
        delivery_fee_minor: 0,
        tip_minor: 200,
        discount_minor: 300,
        scheduled_for: None,
    }
}

/// A delivery order to (lat, lng), for the router to place by delivery zone.
pub fn sample_delivery(lat: f64, lng: f64, currency: &str) -> SampleOrder {
    SampleOrder {
        store_ref: None,
        fulfillment: SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines: vec!["200 Example St".into(), "Apt 4".into()],
            city: "New York".into(),
            postcode: "10011".into(),
            country: "US".into(),
        },
        delivery_fee_minor: 399,
        ..sample_pickup("unused", currency)
    }
}
