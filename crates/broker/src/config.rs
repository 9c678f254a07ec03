//! Broker settings and the one place that opens AMQP connections.

use std::{fmt, time::Duration};

use lapin::{Channel, Connection, ConnectionProperties};
use serde::{Deserialize, Deserializer};

use crate::{
    Topology,
    error::{BrokerError, redact_url},
};

/// How long opening a connection (TCP + AMQP handshake) may take before it counts as failed.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long setting up a new connection (channel, topology, confirms or consumer) may take,
/// on top of [`CONNECT_TIMEOUT`].
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the broker is and how the hub's topology on it is shaped.
///
/// Deserializes with defaults for every missing field; the confirm timeout is read from
/// `confirm_timeout_ms` (milliseconds). `Debug` hides the URL's password.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct BrokerConfig {
    /// AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// Prefix of every queue and exchange name, so several hubs (or tests) share a broker.
    pub prefix: String,
    /// Number of store shard queues. Changing it re-maps stores to shards: drain first.
    pub store_shards: u16,
    /// Failed deliveries (requeues) after which a quorum queue dead-letters a message.
    /// Every declarer of the topology must use the same value.
    pub delivery_limit: u32,
    /// Upper bound for one `publish_batch` to wait for its confirms.
    #[serde(rename = "confirm_timeout_ms", deserialize_with = "millis")]
    pub confirm_timeout: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            prefix: "crossdock".to_owned(),
            store_shards: 16,
            delivery_limit: 10,
            confirm_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("store_shards", &self.store_shards)
            .field("delivery_limit", &self.delivery_limit)
            .field("confirm_timeout", &self.confirm_timeout)
            .finish()
    }
}

fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

/// Opens a new AMQP connection to `config.url`, bounded by a 10 s timeout.
///
/// No automatic recovery is enabled: the publisher and the consumers supervise their own
/// connections and replace them when they break (see the crate docs).
pub async fn connect(config: &BrokerConfig) -> Result<Connection, BrokerError> {
    connect_named(config, "crossdock").await
}

pub(crate) async fn connect_named(
    config: &BrokerConfig,
    name: &str,
) -> Result<Connection, BrokerError> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    let connect = async {
        Connection::connect(&config.url, properties)
            .await
            .map_err(|source| BrokerError::Connect {
                url_without_password: redact_url(&config.url),
                source,
            })
    };
    bounded(config, "connecting", CONNECT_TIMEOUT, connect).await
}

/// Connects (within [`CONNECT_TIMEOUT`]), then opens a channel, declares the topology on it
/// and runs `finish` on it (enabling confirms, starting a consumer), all of that within
/// [`SETUP_TIMEOUT`]; `step` names that part in a timeout error. Used by the publisher and
/// the consumers for every (re)connect, so both set up a connection the same way.
pub(crate) async fn open_declared_channel<T>(
    config: &BrokerConfig,
    topology: &Topology,
    connection_name: &str,
    step: &'static str,
    finish: impl AsyncFnOnce(&Connection, &Channel) -> Result<T, BrokerError>,
) -> Result<(Connection, Channel, T), BrokerError> {
    let connection = connect_named(config, connection_name).await?;
    let setup = async {
        let channel = connection
            .create_channel()
            .await
            .map_err(BrokerError::Channel)?;
        topology.declare(&channel, config.delivery_limit).await?;
        let finished = finish(&connection, &channel).await?;
        Ok((channel, finished))
    };
    let (channel, finished) = bounded(config, step, SETUP_TIMEOUT, setup).await?;
    Ok((connection, channel, finished))
}

/// `future`'s result, or [`BrokerError::Timeout`] for `step` if it takes longer than
/// `timeout`.
pub(crate) async fn bounded<T>(
    config: &BrokerConfig,
    step: &'static str,
    timeout: Duration,
    future: impl Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    tokio::time::timeout(timeout, future)
        .await
        .unwrap_or_else(|_elapsed| {
            Err(BrokerError::Timeout {
                url_without_password: redact_url(&config.url),
                step,
                timeout,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields_and_timeouts_are_milliseconds() {
        let config: BrokerConfig =
            serde_json::from_str(r#"{"prefix": "x", "confirm_timeout_ms": 250}"#)
                .expect("config parses");
        assert_eq!(config.prefix, "x");
        assert_eq!(config.confirm_timeout, Duration::from_millis(250));
        assert_eq!(config.store_shards, 16);
        assert_eq!(config.delivery_limit, 10);
        assert_eq!(config.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    }

    #[test]
    fn debug_hides_the_password() {
        let config = BrokerConfig {
            url: "amqp://user:hunter2@broker:5672/%2f".to_owned(),
            ..BrokerConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user:***@broker"), "{shown}");
    }
}
