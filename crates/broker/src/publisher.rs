//! Confirmed, pipelined publishing with a three-way outcome per message.
//!
//! A [`Publisher`] owns one connection and one confirm-mode channel. [`Publisher::publish_batch`]
//! publishes every message of a batch (persistent, `mandatory` unless the topology says
//! its key is news that may have no listener, [`Topology::needs_a_queue`]), then awaits
//! all the confirms within `confirm_timeout` in total, and reports per message:
//!
//! * [`PublishOutcome::Confirmed`]: the broker acked it; it is stored in every queue it
//!   routes to.
//! * [`PublishOutcome::Refused`]: the broker returned it because nothing is bound to its
//!   routing key (lapin hands the `basic.return` over with the ack), or AMQP cannot carry it
//!   (a name over 255 bytes). Publishing it again unchanged will not help.
//! * [`PublishOutcome::Unknown`]: no answer in time, the connection or channel failed, or
//!   the broker nacked it. The message may or may not be stored: publish it again with the
//!   same `message_id` (consumers are idempotent). A nack is temporary: RabbitMQ sends one
//!   on an internal error or when a queue it routes to is full (`x-overflow=reject-publish`,
//!   which every work queue has), and the same message may well be accepted later. A nack
//!   does not break the link.
//!
//! # Reconnection: manual, not lapin's auto-recovery
//!
//! After an `Unknown` the connection is considered broken and dropped; the next call (a
//! batch, or [`Publisher::ensure_connected`], which an idle relay calls) builds a new one
//! (connect, declare the topology, `confirm.select`), waiting first for an exponential
//! backoff (100 ms doubling to 5 s, each delay ±20 % at random, reset by a successful
//! connect). [`Publisher::link_state`] is up while a link is established; the log says when
//! it cannot reach the broker and when it reconnects, with how long it was down. A
//! publisher can be made while the broker is down ([`Publisher::new`]). lapin 4.x can recover connections itself, but on our machines
//! (INFRA.md §3, §5) a recovered
//! publisher once hung for good after a `kill -9` of the broker, and publishes stalled
//! without error for the whole outage. A fresh connection per failure is simple to reason
//! about: no state survives from the broken one, and every pending confirm of the old channel
//! is reported as `Unknown`. Every await is bounded (the connect by 10 s, the channel setup
//! after it by another 10 s, the batch by `confirm_timeout`), so a call never hangs during
//! a broker outage.
//!
//! Concurrent callers are serialized on the channel by a `tokio::sync::Mutex`: one batch at
//! a time, which keeps each batch's publish order and lets confirms be matched per message.

use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use lapin::{
    BasicProperties, Channel, ChannelStatus, Confirmation, Connection, ConnectionStatus,
    PublisherConfirm,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::ShortString,
};
use tokio::{sync::Mutex, time::Instant};
use tracing::{debug, info, warn};

use crate::{
    BrokerConfig, LinkState, Topology,
    backoff::Backoff,
    config::open_declared_channel,
    error::{BrokerError, redact_url},
    topology::short,
};

/// AMQP delivery mode of messages that survive a broker restart.
const PERSISTENT: u8 = 2;

/// One message for [`Publisher::publish_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Topic routing key, e.g. `order.received` or a store routing key.
    pub routing_key: String,
    /// Stable id (the outbox row's), so a republished message can be deduplicated.
    pub message_id: String,
    /// The AMQP `type` property: what the body is.
    pub kind: String,
    /// JSON body.
    pub body: Vec<u8>,
}

/// What became of one published message.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishOutcome {
    /// Acked by the broker: durably stored.
    Confirmed,
    /// Returned as unroutable, or not publishable at all (e.g. a routing key over 255
    /// bytes). Retrying the same message will fail the same way.
    Refused { reason: String },
    /// No answer in time, the connection failed, or the broker nacked it (internal error,
    /// full queue): the message may or may not be stored. Publish it again with the same
    /// `message_id`.
    Unknown { reason: String },
}

/// A confirmed publisher on its own connection. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    config: BrokerConfig,
    topology: Topology,
    /// The topology's exchange, checked once at connect to be a valid AMQP name.
    exchange: ShortString,
    /// The link to the broker; `None` after a failure, until the next call rebuilds it.
    state: Mutex<State>,
    /// Status handles of the current link, for [`Publisher::is_connected`] without the lock.
    status: StdMutex<Option<(ConnectionStatus, ChannelStatus)>>,
    /// Up while a link is established, for readiness reports.
    health: LinkState,
}

struct State {
    link: Option<Link>,
    retry: Retry,
}

/// When the next connection attempt may happen.
struct Retry {
    backoff: Backoff,
    /// Earliest time of the next connection attempt.
    next_attempt: Option<Instant>,
}

struct Link {
    // Dropping the connection closes it; the channel goes with it.
    _connection: Connection,
    channel: Channel,
}

impl Publisher {
    /// A publisher that connects on first use (or [`Publisher::ensure_connected`]): it can
    /// be made while the broker is down. Fails only for a prefix AMQP cannot carry.
    pub fn new(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let topology = Topology::from_config(config);
        let exchange = short(&topology.exchange(), "exchange name")?;
        Ok(Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                topology,
                exchange,
                status: StdMutex::new(None),
                health: LinkState::default(),
                state: Mutex::new(State {
                    link: None,
                    retry: Retry {
                        backoff: Backoff::default(),
                        next_attempt: None,
                    },
                }),
            }),
        })
    }

    /// Connects, declares the topology and enables publisher confirms. Fails if the broker
    /// cannot be reached now; later failures are handled by reconnecting.
    pub async fn connect(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let publisher = Self::new(config)?;
        publisher.ensure_connected().await?;
        Ok(publisher)
    }

    /// Makes sure the link is up: rebuilds it, after the rest of the backoff, when it is
    /// down or broken. A process that publishes only now and then calls this while idle,
    /// so its link (and its readiness) comes back with the broker, not with the next
    /// message.
    pub async fn ensure_connected(&self) -> Result<(), BrokerError> {
        let mut state = self.inner.state.lock().await;
        let State { link, retry } = &mut *state;
        if link.as_ref().is_some_and(Link::is_usable) {
            return Ok(());
        }
        if link.take().is_some() {
            self.set_status(None, Some("the connection or channel closed"));
        }
        *link = Some(self.reconnect(retry).await?);
        Ok(())
    }

    /// The publisher's link: up while connected, with the last failure while not.
    pub fn link_state(&self) -> LinkState {
        self.inner.health.clone()
    }

    /// Whether the publisher's connection and channel are up right now.
    pub fn is_connected(&self) -> bool {
        self.inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|(connection, channel)| connection.connected() && channel.connected())
    }

    /// Publishes `messages` to the topology's exchange and returns one outcome per message,
    /// in the same order. Never fails as a whole.
    ///
    /// Once it has the publisher to itself (concurrent calls wait for each other), a call
    /// waits at most for the rest of the reconnect backoff (up to 6 s), the connect timeout
    /// (10 s) and the setup timeout (10 s) when the link must be rebuilt, plus
    /// `confirm_timeout` for the batch itself.
    pub async fn publish_batch(&self, messages: &[OutgoingMessage]) -> Vec<PublishOutcome> {
        if messages.is_empty() {
            return Vec::new();
        }
        let mut state = self.inner.state.lock().await;
        let State { link, retry } = &mut *state;

        let current = match &mut *link {
            Some(current) if current.is_usable() => current,
            stale => {
                if stale.take().is_some() {
                    self.set_status(None, Some("the connection or channel closed"));
                }
                match self.reconnect(retry).await {
                    Ok(fresh) => stale.insert(fresh),
                    Err(error) => {
                        let reason = format!("not published, broker unreachable: {error}");
                        return vec![PublishOutcome::Unknown { reason }; messages.len()];
                    }
                }
            }
        };

        let (outcomes, broken) = self.publish_on(&current.channel, messages).await;
        if let Some(reason) = broken {
            warn!(
                error = %reason,
                batch = messages.len(),
                "Publisher connection considered broken; it is rebuilt on the next batch."
            );
            *link = None;
            self.set_status(None, Some(&reason));
        }
        outcomes
    }

    /// Publishes every message, then collects the confirms. Returns the outcomes and, if the
    /// link must be dropped, why.
    async fn publish_on(
        &self,
        channel: &Channel,
        messages: &[OutgoingMessage],
    ) -> (Vec<PublishOutcome>, Option<String>) {
        let timeout = self.inner.config.confirm_timeout;
        let deadline = Instant::now() + timeout;

        // Phase 1: publish everything. After a failure, the rest is not attempted.
        let mut pending: Vec<Pending> = Vec::with_capacity(messages.len());
        let mut broken: Option<String> = None;
        for message in messages {
            if let Some(reason) = &broken {
                pending.push(Pending::Done(PublishOutcome::Unknown {
                    reason: format!("not published: {reason}"),
                }));
                continue;
            }
            let (routing_key, properties) = match wire(message) {
                Ok(parts) => parts,
                Err(error) => {
                    pending.push(Pending::Done(PublishOutcome::Refused {
                        reason: error.to_string(),
                    }));
                    continue;
                }
            };
            let publish = channel.basic_publish(
                self.inner.exchange.clone(),
                routing_key,
                BasicPublishOptions {
                    mandatory: Topology::needs_a_queue(&message.routing_key),
                    immediate: false,
                },
                &message.body,
                properties,
            );
            match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(confirm)) => pending.push(Pending::Confirm(confirm)),
                Ok(Err(error)) => {
                    let reason = format!("publish failed: {error}");
                    pending.push(Pending::Done(PublishOutcome::Unknown {
                        reason: reason.clone(),
                    }));
                    broken = Some(reason);
                }
                Err(_elapsed) => {
                    let reason = format!("publish did not complete within {timeout:?}");
                    pending.push(Pending::Done(PublishOutcome::Unknown {
                        reason: reason.clone(),
                    }));
                    broken = Some(reason);
                }
            }
        }

        // Phase 2: await the confirms, all against the same deadline. A confirm that already
        // arrived is still seen after the deadline: `timeout_at` polls the future first.
        let mut outcomes = Vec::with_capacity(messages.len());
        for item in pending {
            let outcome = match item {
                Pending::Done(outcome) => outcome,
                Pending::Confirm(confirm) => match tokio::time::timeout_at(deadline, confirm).await
                {
                    Ok(Ok(confirmation)) => outcome_of(confirmation),
                    Ok(Err(error)) => {
                        let reason = format!("confirm failed: {error}");
                        broken.get_or_insert_with(|| reason.clone());
                        PublishOutcome::Unknown { reason }
                    }
                    Err(_elapsed) => {
                        let reason = format!("no confirm within {timeout:?}");
                        broken.get_or_insert_with(|| reason.clone());
                        PublishOutcome::Unknown { reason }
                    }
                },
            };
            outcomes.push(outcome);
        }
        (outcomes, broken)
    }

    /// Builds a new link after the backoff.
    async fn reconnect(&self, retry: &mut Retry) -> Result<Link, BrokerError> {
        if let Some(at) = retry.next_attempt {
            tokio::time::sleep_until(at).await;
        }
        match open_link(&self.inner.config, &self.inner.topology).await {
            Ok(link) => {
                let url = redact_url(&self.inner.config.url);
                let had_failed = self.inner.health.snapshot().error.is_some();
                match self.set_status(Some(link.status()), None) {
                    Some(down_for) if had_failed => info!(
                        %url,
                        down_ms = u64::try_from(down_for.as_millis()).unwrap_or(u64::MAX),
                        "Publisher reconnected to RabbitMQ."
                    ),
                    _ => info!(%url, "Publisher connected."),
                }
                retry.backoff.reset();
                retry.next_attempt = None;
                Ok(link)
            }
            Err(error) => {
                let delay = retry.backoff.next_delay();
                retry.next_attempt = Some(Instant::now() + delay);
                self.set_status(None, Some(&error.to_string()));
                warn!(
                    %error,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "Publisher cannot reach RabbitMQ; retrying."
                );
                Err(error)
            }
        }
    }

    /// Records the current link's status handles (`None`: no link, for `why`). Returns how
    /// long the link had been down when it comes up.
    fn set_status(
        &self,
        status: Option<(ConnectionStatus, ChannelStatus)>,
        why: Option<&str>,
    ) -> Option<std::time::Duration> {
        let up = status.is_some();
        *self
            .inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status;
        if up {
            self.inner.health.set_up()
        } else {
            self.inner.health.set_down(why.unwrap_or("not connected"));
            None
        }
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("url", &redact_url(&self.inner.config.url))
            .field("exchange", &self.inner.exchange.as_str())
            .field("connected", &self.is_connected())
            .finish()
    }
}

enum Pending {
    Confirm(PublisherConfirm),
    Done(PublishOutcome),
}

impl Link {
    fn is_usable(&self) -> bool {
        let status = self.channel.status();
        status.connected() && status.confirm()
    }

    fn status(&self) -> (ConnectionStatus, ChannelStatus) {
        (
            self._connection.status().clone(),
            self.channel.status().clone(),
        )
    }
}

/// Connects, opens a channel, declares the topology and enables confirms, each bounded
/// (see [`open_declared_channel`]).
async fn open_link(config: &BrokerConfig, topology: &Topology) -> Result<Link, BrokerError> {
    let name = format!("crossdock-publisher {}", config.prefix);
    let enable_confirms = async |_: &Connection, channel: &Channel| {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(BrokerError::Channel)
    };
    let (connection, channel, ()) = open_declared_channel(
        config,
        topology,
        &name,
        "declaring the topology and enabling confirms",
        enable_confirms,
    )
    .await?;
    debug!("Publisher channel in confirm mode.");
    Ok(Link {
        _connection: connection,
        channel,
    })
}

/// The routing key and properties of a message, or why AMQP cannot carry it.
fn wire(message: &OutgoingMessage) -> Result<(ShortString, BasicProperties), BrokerError> {
    let routing_key = short(&message.routing_key, "routing key")?;
    let properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(short(&message.message_id, "message id")?)
        .with_type(short(&message.kind, "message type")?)
        .with_content_type("application/json".into());
    Ok((routing_key, properties))
}

fn outcome_of(confirmation: Confirmation) -> PublishOutcome {
    match confirmation {
        Confirmation::Ack(None) => PublishOutcome::Confirmed,
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
            PublishOutcome::Refused {
                reason: format!(
                    "returned by the broker: {} {} (no queue is bound to routing key `{}`)",
                    returned.reply_code, returned.reply_text, returned.delivery.routing_key
                ),
            }
        }
        // Temporary (internal error, or a full queue that rejects publishes): worth
        // publishing again with the same message id.
        Confirmation::Nack(None) => PublishOutcome::Unknown {
            reason: "nacked by the broker (internal error or a full queue); publish it again"
                .to_owned(),
        },
        // Only without confirm mode, which the link always enables; treat as unknown.
        Confirmation::NotRequested => PublishOutcome::Unknown {
            reason: "channel was not in confirm mode".to_owned(),
        },
    }
}
