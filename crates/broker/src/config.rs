//! Broker settings and the one place that opens AMQP connections.

use std::{fmt, time::Duration};

use lapin::{Connection, ConnectionProperties};
use serde::{Deserialize, Deserializer};

use crate::error::{BrokerError, redact_url};

/// How long opening a connection (TCP + AMQP handshake) may take before it counts as failed.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(&config.url, properties),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(source)) => Err(BrokerError::Connect {
            url_without_password: redact_url(&config.url),
            source,
        }),
        Err(_elapsed) => Err(BrokerError::Timeout {
            url_without_password: redact_url(&config.url),
            step: "connecting",
            timeout: CONNECT_TIMEOUT,
        }),
    }
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
