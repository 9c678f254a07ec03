//! Queue depths for monitoring: how many messages wait in each queue, and how many
//! consumers it has, read with a passive `queue.declare` (which creates nothing).
//!
//! [`queue_depths`] opens a connection, reads and closes it; [`DepthProbe`] keeps one
//! connection for repeated reads (a metrics scrape every few seconds) and replaces it when
//! it breaks. Every read is bounded by a timeout, so a dead or stalled broker makes a read
//! fail quickly instead of hanging its caller. A queue that does not exist is left out of
//! the answer rather than failing the whole read.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::sync::Mutex;
use tracing::debug;

use crate::config::{bounded, connect_named};
use crate::error::BrokerError;
use crate::topology::short;
use crate::{BrokerConfig, Topology};

/// One queue's depth, as the broker reports it to a passive declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue's full name (with the topology's prefix).
    pub queue: String,
    /// Messages ready for delivery (not counting those delivered and not yet acknowledged).
    pub messages: u32,
    /// Consumers attached to the queue.
    pub consumers: u32,
}

/// Every queue [`Topology::declare`] declares: orders, fetch, sync, each store shard,
/// dead-letter and parking, in that order.
pub fn topology_queues(topology: &Topology) -> Vec<String> {
    let mut queues = vec![
        topology.orders_queue(),
        topology.fetch_queue(),
        topology.sync_queue(),
    ];
    queues.extend(topology.store_queues());
    queues.push(topology.dead_letter_queue());
    queues.push(topology.parking_queue());
    queues
}

/// Reads the depth of each of `queues` on a connection of its own, closed afterwards; the
/// whole read (connecting included) takes at most `timeout`. Queues that do not exist are
/// left out.
pub async fn queue_depths(
    config: &BrokerConfig,
    queues: &[String],
    timeout: Duration,
) -> Result<Vec<QueueDepth>, BrokerError> {
    let read = async {
        let connection = connect_named(config, "crossdock-depths").await?;
        let depths = read_depths(&connection, queues).await;
        // Dropping the connection would close it too; closing says so to the broker now.
        let _ = connection.close(200, "depths read".into()).await;
        depths
    };
    bounded(config, "reading queue depths", timeout, read).await
}

/// Reads queue depths over one cached connection, opened on first use and replaced after a
/// failure. Concurrent reads take turns on the connection.
pub struct DepthProbe {
    config: BrokerConfig,
    timeout: Duration,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for DepthProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepthProbe")
            .field("config", &self.config)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DepthProbe {
    /// A probe of the broker `config` names; every read (waiting for a concurrent read,
    /// connecting, reading) takes at most `timeout`. Connects on first use.
    pub fn new(config: BrokerConfig, timeout: Duration) -> Self {
        Self {
            config,
            timeout,
            connection: Mutex::new(None),
        }
    }

    /// The depth of each of `queues` that exists, in their order.
    pub async fn depths(&self, queues: &[String]) -> Result<Vec<QueueDepth>, BrokerError> {
        let read = async {
            let mut slot = self.connection.lock().await;
            let connection = match slot.take() {
                Some(connection) if connection.status().connected() => connection,
                _ => connect_named(&self.config, "crossdock-depths").await?,
            };
            let depths = read_depths(&connection, queues).await;
            if depths.is_ok() {
                *slot = Some(connection);
            }
            depths
        };
        // A read cut short by the timeout drops the connection it took out of the slot,
        // so the next read starts on a new one.
        bounded(&self.config, "reading queue depths", self.timeout, read).await
    }
}

/// Passive declares of `queues` on one channel. A missing queue (404) closes the channel,
/// not the connection: it is left out, and the next queue is read on a new channel.
async fn read_depths(
    connection: &Connection,
    queues: &[String],
) -> Result<Vec<QueueDepth>, BrokerError> {
    let mut channel = open(connection).await?;
    let mut depths = Vec::with_capacity(queues.len());
    for queue in queues {
        let declared = channel
            .queue_declare(
                short(queue, "queue name")?,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(declared) => depths.push(QueueDepth {
                queue: queue.clone(),
                messages: declared.message_count(),
                consumers: declared.consumer_count(),
            }),
            Err(error) if connection.status().connected() => {
                debug!(%queue, %error, "Queue left out of the depths (does it exist?).");
                channel = open(connection).await?;
            }
            Err(error) => return Err(BrokerError::Channel(error)),
        }
    }
    let _ = channel.close(200, "depths read".into()).await;
    Ok(depths)
}

async fn open(connection: &Connection) -> Result<Channel, BrokerError> {
    connection
        .create_channel()
        .await
        .map_err(BrokerError::Channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_queue_is_listed_once() {
        let topology = Topology::new("cd", 2);
        assert_eq!(
            topology_queues(&topology),
            [
                "cd.orders",
                "cd.fetch",
                "cd.sync",
                "cd.store.000",
                "cd.store.001",
                "cd.dead-letter",
                "cd.parking"
            ]
        );
    }
}
