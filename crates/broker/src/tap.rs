//! A tap on the events exchange: nudges for live views, not work.
//!
//! [`tap`] binds a queue of its own to a few routing-key patterns and hands every message to
//! a callback as it comes. The queue is server-named, exclusive and auto-delete, so it lives
//! exactly as long as the tap's connection and each process gets its own copy of every
//! message; deliveries are not acknowledged (`no_ack`), and the queue keeps at most
//! [`MAX_BACKLOG`] messages, dropping the oldest. So a tap may miss messages — while it
//! reconnects, or when it cannot keep up — and the callback hears [`Tapped::Connected`]
//! after every (re)connect, when the consumer is running: a reader that may have missed
//! something reads the current state again from where the state is kept. Use it for
//! things like pushing changes to web pages, never for work that must be done once.
//!
//! The tap reconnects with the consumers' backoff and declares the topology first, so the
//! exchange exists.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::open_declared_channel;
use crate::consumer::Incoming;
use crate::error::BrokerError;
use crate::{BrokerConfig, Topology};

/// The most messages a tap's queue holds before the broker drops the oldest.
pub const MAX_BACKLOG: i64 = 10_000;

/// A session that ran this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);

/// What a tap hands its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tapped {
    /// The tap (re)connected and consumes again; messages may have been missed before.
    Connected,
    /// A message published to the exchange under one of the tap's patterns.
    Message(Incoming),
}

/// Taps the events exchange for `patterns` (topic patterns such as `store.#`) until
/// `shutdown` turns `true`, calling `on` for each [`Tapped`] event. The callback runs on
/// the tap's task: keep it short (send to a channel). Returns an error only for a pattern
/// AMQP cannot carry.
pub async fn tap<H>(
    config: BrokerConfig,
    patterns: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
    on: H,
) -> Result<(), BrokerError>
where
    H: Fn(Tapped) + Send + Sync + 'static,
{
    for pattern in &patterns {
        crate::topology::short(pattern, "routing-key pattern")?;
    }
    let topology = Topology::from_config(&config);
    let mut backoff = Backoff::default();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let started = tokio::time::Instant::now();
        let Some(error) = session(&config, &topology, &patterns, &on, &mut shutdown).await else {
            return Ok(());
        };
        if started.elapsed() >= HEALTHY_AFTER {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        warn!(%error, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "Tap lost its broker session; reconnecting.");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// One connection's worth of tapping; returns why it ended, or `None` when `shutdown`
/// ended it. A tap shut down while its process goes on closes its connection, so the
/// broker deletes its queue at once.
async fn session<H>(
    config: &BrokerConfig,
    topology: &Topology,
    patterns: &[String],
    on: &H,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<String>
where
    H: Fn(Tapped),
{
    let exchange = topology.exchange();
    let start = async |_connection: &lapin::Connection, channel: &lapin::Channel| {
        let mut arguments = FieldTable::default();
        arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(MAX_BACKLOG));
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString("drop-head".into()),
        );
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await
            .map_err(BrokerError::Channel)?;
        let name: ShortString = queue.name().clone();
        for pattern in patterns {
            channel
                .queue_bind(
                    name.clone(),
                    exchange.as_str().into(),
                    pattern.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(BrokerError::Channel)?;
        }
        channel
            .basic_consume(
                name.clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|source| BrokerError::Consume {
                queue: name.to_string(),
                source,
            })
    };
    let opened = tokio::select! {
        opened = open_declared_channel(
            config,
            topology,
            "crossdock-tap",
            "declaring the tap's queue and starting its consumer",
            start,
        ) => opened,
        _ = shutdown.wait_for(|stop| *stop) => return None,
    };
    let (connection, _channel, mut consumer) = match opened {
        Ok(parts) => parts,
        Err(error) => return Some(error.to_string()),
    };
    info!(patterns = ?patterns, "Tap consuming.");
    on(Tapped::Connected);
    let ended = loop {
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = shutdown.wait_for(|stop| *stop) => break None,
        };
        match next {
            Some(Ok(delivery)) => on(Tapped::Message(Incoming {
                routing_key: delivery.routing_key.to_string(),
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(ToString::to_string),
                kind: delivery.properties.kind().as_ref().map(ToString::to_string),
                body: delivery.data,
                redelivered: delivery.redelivered,
            })),
            Some(Err(error)) => break Some(format!("tap consumer failed: {error}")),
            None => break Some("the broker ended the tap's consumer".to_owned()),
        }
    };
    if let Ok(Err(error)) = tokio::time::timeout(
        Duration::from_secs(2),
        connection.close(200, "tap ending".into()),
    )
    .await
    {
        debug!(%error, "Closing the tap's connection failed.");
    }
    ended
}
