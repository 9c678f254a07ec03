//! The PostgreSQL layer: migrations, and every read and write the hub makes.
//!
//! # Layout
//!
//! - [`Db`]: the pool and the migrations.
//! - [`chain`]: the store registry (stores, channel store ids, store tokens, live state)
//!   and the chain's menu (the PLUs orders may name).
//! - [`ingest`]: recording a platform's request — inbox (dedupe, raw payload), order,
//!   first events and outbox row, in one transaction.
//! - [`orders`]: reads, status changes (state machine enforced) and store delivery.
//! - [`routing`]: assignment to a store (its load checked under a row lock), stores
//!   declining orders, HQ's re-assignment and attention list, the deadline guard.
//! - [`outbox`]: committed messages handed to this process's publisher, and claimed by
//!   the relay when no one else publishes them.
//! - [`sync`]: the per-order status sync queue.
//! - [`stats`]: figures for monitoring (the outbox backlog).
//! - [`hq`]: HQ's dashboard: the summary, the attention list of every kind, search,
//!   parked status pushes and set-aside messages, and replaying them.
//!
//! Architecture invariant: every state change that must reach the broker is written
//! together with an outbox row, in the same transaction. This crate does not know the
//! broker's topology: the hub supplies the messages through [`Routes`].

pub mod board;
pub mod chain;
pub mod hq;
pub mod ingest;
pub mod orders;
pub mod outbox;
mod pipeline;
pub mod routing;
#[cfg(any(test, feature = "testing"))]
pub mod scratch;
pub mod stats;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use crossdock_model::{OrderId, StoreId};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::NoTls;

pub use outbox::{CommitSink, Committed, OutboxMessage, OutboxRow, Relayed};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Advisory-lock key that serializes concurrent migrations of one database.
const MIGRATION_LOCK: i64 = 0x0C05_5D0C_0001;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL is not valid: {0}")]
    Url(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL: {}", explain(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    /// A transaction went to commit with the answer of a statement it sent unread (a
    /// defect of the hub): it was rolled back.
    #[error("a statement's answer was not read before the commit; the transaction was rolled back")]
    Unread,
}

impl DbError {
    /// Whether PostgreSQL could not be reached (down, starting up or shutting down, the
    /// connection lost or refused, no connection made in time), as opposed to a problem
    /// with the request, the data or the configuration: worth trying again after a pause.
    pub fn is_unreachable(&self) -> bool {
        use deadpool_postgres::PoolError;
        match self {
            DbError::Pool(PoolError::Backend(error)) | DbError::Query(error) => {
                connection_lost(error)
            }
            DbError::Pool(PoolError::Timeout(kind)) => {
                !matches!(kind, deadpool_postgres::TimeoutType::Wait)
            }
            DbError::Pool(_)
            | DbError::Url(_)
            | DbError::Migration(_)
            | DbError::Corrupt(_)
            | DbError::Unread => false,
        }
    }
}

/// A closed connection, an I/O failure, or the server's own "connection exception" (class
/// 08) or "operator intervention" (class 57P: shutting down, starting up, crashed).
/// A PostgreSQL error as a person can act on it: the server's own severity, code and
/// message where it answered one (the client's text alone says only "db error"), else
/// the client's with its cause.
fn explain(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

fn connection_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        let code = code.code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

/// The messages that state changes publish, built by the hub (which knows the topology).
pub trait Routes: Send + Sync + 'static {
    /// A new order for the router.
    fn order_received(&self, order_id: OrderId) -> OutboxMessage;
    /// An order a store declined, back to the router (`attempt`: how many stores have
    /// declined it).
    fn reroute(&self, order_id: OrderId, attempt: usize) -> OutboxMessage;
    /// A notify-then-fetch notification for the fetcher, under its dedupe key.
    fn fetch(&self, channel: &str, dedupe_key: &str, body: serde_json::Value) -> OutboxMessage;
    /// What is handed to a store (`kind`: the order routed to it, or taken back), for its
    /// store's queue.
    fn to_store(&self, store: &StoreId, order_id: OrderId, kind: &str) -> OutboxMessage;
    /// A change of an order's status (`kind`), for the clients of its store (a POS, the
    /// consoles), not its store's queue.
    fn store_status(&self, store: &StoreId, order_id: OrderId, kind: &str) -> OutboxMessage;
    /// A nudge for the status sync worker of an order.
    fn sync(&self, channel: &str, order_id: OrderId) -> OutboxMessage;
    /// A status push that kept failing, for HQ's parking queue.
    fn parked(
        &self,
        channel: &str,
        order_id: OrderId,
        event_id: i64,
        body: serde_json::Value,
    ) -> OutboxMessage;
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: String,
    pub pool_size: usize,
}

#[derive(Clone)]
pub struct Db {
    pool: Pool,
    routes: Arc<dyn Routes>,
    /// Where committed outbox rows go for publishing at once (see [`outbox`]).
    sink: Option<Arc<dyn CommitSink>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl Db {
    /// Builds the pool and checks that a connection can be made (fail fast).
    pub async fn connect(config: &DbConfig, routes: Arc<dyn Routes>) -> Result<Self, DbError> {
        let db = Self {
            pool: build_pool(config)?,
            routes,
            sink: None,
        };
        db.ping().await?;
        Ok(db)
    }

    /// A handle like this one (the same routes and commit sink) on a pool of its own of
    /// `config.pool_size` connections to `config.url`: for work that holds a connection
    /// for long, such as a sync run across its platform call, so that it can never take
    /// the connections every other stage needs. Checks that a connection can be made.
    pub async fn with_own_pool(&self, config: &DbConfig) -> Result<Self, DbError> {
        let db = Self {
            pool: build_pool(config)?,
            ..self.clone()
        };
        db.ping().await?;
        Ok(db)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn routes(&self) -> &dyn Routes {
        self.routes.as_ref()
    }

    /// One round trip: is the database reachable?
    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Applies pending migrations; safe to run from several processes at once.
    pub async fn migrate(url: &str) -> Result<usize, DbError> {
        let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let driver = tokio::spawn(connection);
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = embedded::migrations::runner().run_async(&mut client).await;
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        drop(client);
        let _ = driver.await;
        let report = report.map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(report.applied_migrations().len())
    }

    /// Creates database `name` if it does not exist, connecting with `admin_url`.
    pub async fn create_database(admin_url: &str, name: &str) -> Result<bool, DbError> {
        let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
        let driver = tokio::spawn(connection);
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await?
            .is_some();
        if !exists {
            let quoted = name.replace('"', "\"\"");
            client
                .batch_execute(&format!("CREATE DATABASE \"{quoted}\""))
                .await?;
        }
        drop(client);
        let _ = driver.await;
        Ok(!exists)
    }

    /// Drops database `name` (tests), ending its open connections first.
    pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), DbError> {
        let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
        let driver = tokio::spawn(connection);
        let quoted = name.replace('"', "\"\"");
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)"
            ))
            .await?;
        drop(client);
        let _ = driver.await;
        Ok(())
    }
}

/// A pool of `config.pool_size` connections to `config.url`, none made yet.
fn build_pool(config: &DbConfig) -> Result<Pool, DbError> {
    let pg_config: tokio_postgres::Config = config
        .url
        .parse()
        .map_err(|e: tokio_postgres::Error| DbError::Url(e.to_string()))?;
    // Statements are prepared once per connection, and PostgreSQL's plan cache keeps a
    // generic plan of each once it costs no more than planning with the values: the
    // hot statements then skip planning, a third of the database's CPU per order. Such
    // a plan may be made while the tables are empty and is kept until the next
    // ANALYZE, so every statement of an order's loop finds its rows by a unique key
    // or by their order, whatever the tables held (tests/plans.rs).
    let manager = Manager::from_config(
        pg_config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size)
        .timeouts(Timeouts {
            wait: Some(Duration::from_secs(10)),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Url(e.to_string()))
}
