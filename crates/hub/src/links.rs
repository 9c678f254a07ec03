//! This process's links to PostgreSQL and RabbitMQ: their state for `/readyz`, waiting for
//! PostgreSQL when the process starts, and a watcher that says in the log when PostgreSQL
//! goes away and when it is back.
//!
//! Every broker session (the relay's publisher, each consumer) registers its
//! [`LinkState`] here and keeps it current itself (see `crossdock_broker`); the tap of the
//! live views is not registered, as it is best effort. PostgreSQL is one pool: the
//! watcher pings it every second, and the pool replaces broken connections on its own.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossdock_broker::{Backoff, LinkSnapshot, LinkState};
use crossdock_db::DbError;
use tokio::sync::watch;

use crate::app::Shared;

/// How often the watcher pings PostgreSQL, and how long a ping may take.
const WATCH_EVERY: Duration = Duration::from_secs(1);
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of every link of this process.
#[derive(Default)]
pub struct Links {
    postgres: LinkState,
    broker: Mutex<Vec<(String, LinkState)>>,
}

impl Links {
    /// A new broker session's link, reported under `name` (its queue, or `publisher`).
    pub fn broker_session(&self, name: impl Into<String>) -> LinkState {
        let link = LinkState::default();
        self.register(name, link.clone());
        link
    }

    /// Reports an existing link (the publisher's) under `name`.
    pub fn register(&self, name: impl Into<String>, link: LinkState) {
        self.broker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.into(), link));
    }

    /// Every broker session's state, in the order they were registered.
    pub fn broker_sessions(&self) -> Vec<(String, LinkSnapshot)> {
        self.broker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, link)| (name.clone(), link.snapshot()))
            .collect()
    }

    /// PostgreSQL's state as the watcher last saw it.
    pub fn postgres(&self) -> LinkSnapshot {
        self.postgres.snapshot()
    }
}

/// Pings PostgreSQL every second until `stop`; logs once when it becomes unreachable and
/// once when it answers again (with how long it was away).
pub async fn watch_postgres(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let link = &shared.links.postgres;
    link.set_up();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
        if *stop.borrow() {
            return;
        }
        let ping = tokio::time::timeout(PING_TIMEOUT, shared.db.ping()).await;
        match ping {
            Ok(Ok(())) => {
                if let Some(down_for) = link.set_up() {
                    tracing::info!(
                        down_ms = u64::try_from(down_for.as_millis()).unwrap_or(u64::MAX),
                        "PostgreSQL reachable again."
                    );
                }
            }
            Ok(Err(error)) => note_postgres_down(link, error.to_string()),
            Err(_elapsed) => {
                note_postgres_down(link, format!("no answer to a ping within {PING_TIMEOUT:?}"))
            }
        }
    }
}

fn note_postgres_down(link: &LinkState, error: String) {
    if link.set_down(error.clone()) {
        tracing::warn!(
            %error,
            "PostgreSQL unreachable; work that needs it waits and retries until it is back."
        );
    }
}

/// Runs `attempt` until it succeeds, waiting with backoff (100 ms doubling to 5 s) while
/// it fails because PostgreSQL cannot be reached, and saying so in the log; any other
/// failure is returned at once. For the start of a process: PostgreSQL may come up after
/// the hub.
pub async fn while_postgres_unreachable<T, F, Fut>(what: &str, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut backoff = Backoff::default();
    let mut waited = None;
    loop {
        match attempt().await {
            Ok(value) => {
                if let Some(since) = waited.map(|since: tokio::time::Instant| since.elapsed()) {
                    tracing::info!(
                        waited_ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
                        "PostgreSQL reachable; {what} done."
                    );
                }
                return Ok(value);
            }
            Err(error) if postgres_unreachable(&error) => {
                waited.get_or_insert_with(tokio::time::Instant::now);
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = %format!("{error:#}"),
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "PostgreSQL is not reachable yet ({what}); waiting."
                );
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether `error` comes from PostgreSQL being unreachable.
fn postgres_unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<DbError>()
            .is_some_and(DbError::is_unreachable)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_reported_in_order_with_their_state() {
        let links = Links::default();
        let orders = links.broker_session("orders");
        let publisher = LinkState::default();
        links.register("publisher", publisher.clone());
        orders.set_up();
        publisher.set_down("refused");
        let sessions = links.broker_sessions();
        let names: Vec<&str> = sessions.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["orders", "publisher"]);
        assert!(sessions[0].1.up);
        assert!(!sessions[1].1.up);
        assert_eq!(sessions[1].1.error.as_deref(), Some("refused"));
    }

    #[tokio::test]
    async fn a_failure_other_than_unreachable_is_returned_at_once() {
        let mut attempts = 0;
        let result: anyhow::Result<()> = while_postgres_unreachable("a test", || {
            attempts += 1;
            async { Err(anyhow::anyhow!(DbError::Migration("V9 failed".into()))) }
        })
        .await;
        assert_eq!(attempts, 1);
        assert!(format!("{:#}", result.expect_err("fails")).contains("V9 failed"));
    }

    #[tokio::test]
    async fn an_unreachable_database_is_waited_for() {
        // Nothing listens on a port just bound and released: a real "connection refused".
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let url = format!("postgres://postgres@{closed}/crossdock");
        let mut attempts = 0;
        let value = while_postgres_unreachable("a test", || {
            attempts += 1;
            let attempt = attempts;
            let url = url.clone();
            async move {
                if attempt < 4 {
                    crossdock_db::Db::migrate(&url)
                        .await
                        .map_err(|error| anyhow::Error::new(error).context("migrating"))?;
                    anyhow::bail!("nothing should listen on {url}");
                }
                Ok(attempt)
            }
        })
        .await
        .expect("reachable in the end");
        assert_eq!(value, 4, "three refused connections waited for");
    }
}
