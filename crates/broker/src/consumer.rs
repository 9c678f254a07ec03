//! Supervised manual-ack consumers.
//!
//! [`consume`] runs one consumer of one queue until shutdown: its own connection, the
//! topology declared, `basic.qos(prefetch)`, `basic.consume` with manual acks, and up to
//! `concurrency` handler futures at once. Each handler's [`Disposition`] is applied on the
//! delivery's own channel as soon as the handler returns:
//!
//! | disposition | AMQP | effect |
//! |---|---|---|
//! | `Ack` | `basic.ack` | done |
//! | `Requeue` | `basic.reject(requeue=true)` | delivered again; counts toward the queue's delivery limit, so a poison message ends in the dead-letter queue |
//! | `DeadLetter` | `basic.reject(requeue=false)` | straight to the dead-letter queue |
//!
//! A handler that panics counts as `Requeue`. With `concurrency` 1 the next delivery is
//! taken only after the previous one is settled, so within one session a
//! single-active-consumer queue (a store shard) is handled strictly in delivery order.
//!
//! [`consume_batches`] hands its handler every delivery that is already waiting (up to a
//! limit) in one call, one call at a time, so a handler can record a backlog in one
//! transaction; when it says `Ack` to each, one `basic.ack` with `multiple` settles
//! them all, otherwise each is settled in turn, in delivery order. Not
//! across sessions: after a session failure, handlers still in flight may run on (up to 5 s)
//! while the broker already redelivers their messages to the next session (or another
//! consumer), so a message may be handled twice, and the two runs may overlap or interleave
//! with the messages that follow it.
//!
//! When the connection or channel fails, or the broker cancels the consumer, the failure is
//! logged, in-flight handlers get a few seconds to finish (their acks will fail; the broker
//! redelivers those messages), and the consumer reconnects after an exponential backoff
//! (100 ms doubling to 5 s, each delay ±20 % at random so consumers do not reconnect in
//! lockstep, reset once a session has consumed for 5 s). Like the publisher,
//! it rebuilds its connection itself instead of relying on lapin's auto-recovery. Its
//! [`LinkState`] is up while it consumes and down, with the reason, in between; the log
//! says when an outage starts ("Consumer lost its broker session"), each retry, and when it
//! ends ("Consumer reconnected to RabbitMQ.", with how long it was down).
//!
//! Every 5 s a session also checks, on a second channel, that its queue still exists and
//! has at least one consumer, ours (passive `queue.declare`, bounded by 10 s). RabbitMQ
//! need not tell a consumer that its queue is gone (earlier runs here saw no `basic.cancel`
//! for a deleted quorum queue, although 3.10.8 sends one when another connection deletes
//! it), so a consumer of a deleted (and maybe re-created) queue could otherwise wait
//! forever, and a hung connection would go unnoticed until the heartbeat. Either way the
//! session is rebuilt, which re-declares the topology.
//!
//! Delivery is at-least-once: handlers must be idempotent and should answer well within
//! RabbitMQ's `consumer_timeout` (30 min by default), after which the broker closes the
//! channel.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt, future::BoxFuture};
use lapin::{
    Acker, Channel, Connection, Consumer,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions,
        BasicRejectOptions, QueueDeclareOptions,
    },
    types::FieldTable,
};
use tokio::{sync::watch, task::JoinSet, time::Instant};
use tracing::{debug, error, info, warn};

use crate::{
    BrokerConfig, LinkState, Topology,
    backoff::Backoff,
    config::open_declared_channel,
    error::{BrokerError, redact_url},
    topology::short,
};

/// A session that consumed this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);
/// How long in-flight handlers may run on after shutdown or a connection failure.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound for one ack/reject and for the polite cancel/close at the end of a session.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a session checks that its queue still exists and the broker still answers.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long that check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a session ends when the consumer's stream does.
const CONSUMER_ENDED: &str =
    "the broker ended the consumer (queue deleted, or the connection closed)";

/// A message handed to a [`consume`] handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub routing_key: String,
    /// The AMQP `message_id` property (the outbox row id), if the publisher set one.
    pub message_id: Option<String>,
    /// The AMQP `type` property, if set.
    pub kind: Option<String>,
    pub body: Vec<u8>,
    /// The broker delivered this message before (to us or another consumer) without an ack.
    pub redelivered: bool,
}

/// What to do with a message once its handler is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Processed (its effect committed): remove it from the queue.
    Ack,
    /// Failed, may succeed later: deliver it again. Counts toward the delivery limit.
    Requeue,
    /// Can never succeed: move it to the dead-letter queue now.
    DeadLetter,
}

/// Consumes `queue` until `shutdown` turns `true` (or its sender is dropped), reconnecting
/// after every failure. See the module docs.
///
/// `concurrency` is the number of handler futures running at once (0 is taken as 1);
/// `prefetch` is the broker-side limit of unacked deliveries and should be at least
/// `concurrency`. `link` is up while the consumer consumes and down, with the reason,
/// while it reconnects. Returns `Ok(())` after shutdown, once in-flight handlers have
/// finished or had 5 s; an error only for a queue name AMQP cannot carry.
pub async fn consume<H, F>(
    config: BrokerConfig,
    queue: String,
    prefetch: u16,
    concurrency: usize,
    link: LinkState,
    shutdown: watch::Receiver<bool>,
    handler: H,
) -> Result<(), BrokerError>
where
    H: Fn(Incoming) -> F + Send + Sync + 'static,
    F: Future<Output = Disposition> + Send + 'static,
{
    let handler = Arc::new(handler);
    let one_at_a_time: BatchHandler = Arc::new(move |mut incoming: Vec<Incoming>| {
        let handler = Arc::clone(&handler);
        async move {
            match incoming.pop() {
                Some(incoming) => vec![(*handler)(incoming).await],
                None => Vec::new(),
            }
        }
        .boxed()
    });
    let shape = Shape {
        prefetch,
        concurrency: concurrency.max(1),
        batch: 1,
    };
    run_consumer(config, queue, shape, link, shutdown, one_at_a_time).await
}

/// Like [`consume`] with one handler call at a time, each given every delivery already
/// waiting, in delivery order, up to `max_batch` (0 is taken as 1); it answers with one
/// [`Disposition`] per message, in the same order (a message it gives none is requeued).
/// When every answer is `Ack`, one `basic.ack` with `multiple` settles the batch. The
/// broker keeps up to `prefetch` deliveries unacked, which should be more than
/// `max_batch` so that the next batch arrives while one is handled.
pub async fn consume_batches<H, F>(
    config: BrokerConfig,
    queue: String,
    prefetch: u16,
    max_batch: usize,
    link: LinkState,
    shutdown: watch::Receiver<bool>,
    handler: H,
) -> Result<(), BrokerError>
where
    H: Fn(Vec<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Vec<Disposition>> + Send + 'static,
{
    let handler: BatchHandler = Arc::new(move |incoming| handler(incoming).boxed());
    let shape = Shape {
        prefetch,
        concurrency: 1,
        batch: max_batch.max(1),
    };
    run_consumer(config, queue, shape, link, shutdown, handler).await
}

/// A handler of a batch of messages, with one disposition per message.
type BatchHandler =
    Arc<dyn Fn(Vec<Incoming>) -> BoxFuture<'static, Vec<Disposition>> + Send + Sync>;

/// How a consumer takes its deliveries.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Unacked deliveries the broker may hand over.
    prefetch: u16,
    /// Handler calls running at once.
    concurrency: usize,
    /// Most deliveries one handler call takes.
    batch: usize,
}

async fn run_consumer(
    config: BrokerConfig,
    queue: String,
    shape: Shape,
    link: LinkState,
    mut shutdown: watch::Receiver<bool>,
    handler: BatchHandler,
) -> Result<(), BrokerError> {
    short(&queue, "queue name")?;
    let session = Session {
        topology: Topology::from_config(&config),
        config,
        queue,
        shape,
        handler,
    };
    info!(
        queue = %session.queue,
        prefetch = shape.prefetch,
        concurrency = shape.concurrency,
        batch = shape.batch,
        url = %redact_url(&session.config.url),
        "Consumer starting."
    );

    let mut backoff = Backoff::default();
    loop {
        if stop_requested(&shutdown) {
            break;
        }
        match session.run(&link, &mut shutdown).await {
            SessionEnd::Shutdown => break,
            SessionEnd::Failed { error, healthy } => {
                if healthy {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                if link.set_down(error.clone()) {
                    warn!(
                        queue = %session.queue,
                        %error,
                        retry_in_ms,
                        "Consumer lost its broker session; reconnecting."
                    );
                } else {
                    warn!(
                        queue = %session.queue,
                        %error,
                        retry_in_ms,
                        "Consumer cannot reach RabbitMQ yet; retrying."
                    );
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopped(&mut shutdown) => break,
                }
            }
        }
    }
    link.set_down("stopped");
    info!(queue = %session.queue, "Consumer stopped.");
    Ok(())
}

enum SessionEnd {
    Shutdown,
    Failed { error: String, healthy: bool },
}

/// Everything one consumer needs across reconnects.
struct Session {
    config: BrokerConfig,
    topology: Topology,
    queue: String,
    shape: Shape,
    handler: BatchHandler,
}

impl Session {
    /// One connection's worth of consuming.
    async fn run(&self, link: &LinkState, shutdown: &mut watch::Receiver<bool>) -> SessionEnd {
        let setup = tokio::select! {
            setup = self.open() => setup,
            () = stopped(shutdown) => return SessionEnd::Shutdown,
        };
        let (connection, channel, probe, mut consumer) = match setup {
            Ok(parts) => parts,
            Err(error) => {
                return SessionEnd::Failed {
                    error: error.to_string(),
                    healthy: false,
                };
            }
        };
        let had_failed = link.snapshot().error.is_some();
        match link.set_up() {
            Some(down_for) if had_failed => info!(
                queue = %self.queue,
                down_ms = u64::try_from(down_for.as_millis()).unwrap_or(u64::MAX),
                "Consumer reconnected to RabbitMQ."
            ),
            _ => debug!(queue = %self.queue, consumer_tag = %consumer.tag(), "Consuming."),
        }
        let started = Instant::now();
        let mut probe_tick = tokio::time::interval_at(started + PROBE_INTERVAL, PROBE_INTERVAL);
        probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let mut in_flight: JoinSet<Result<(), String>> = JoinSet::new();
        let failure = loop {
            tokio::select! {
                biased;
                () = stopped(shutdown) => break None,
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => match joined {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => break Some(error),
                    Err(join_error) => break Some(format!("handler task failed: {join_error}")),
                },
                next = consumer.next(), if in_flight.len() < self.shape.concurrency => match next {
                    Some(Ok(delivery)) => {
                        let mut batch = vec![delivery];
                        // What else is waiting already joins the batch.
                        let mut ended = None;
                        while batch.len() < self.shape.batch {
                            match consumer.next().now_or_never() {
                                Some(Some(Ok(delivery))) => batch.push(delivery),
                                Some(Some(Err(error))) => {
                                    ended = Some(format!("consumer failed: {error}"));
                                    break;
                                }
                                Some(None) => {
                                    ended = Some(CONSUMER_ENDED.to_owned());
                                    break;
                                }
                                None => break,
                            }
                        }
                        in_flight.spawn(handle(
                            Arc::clone(&self.handler),
                            self.queue.clone(),
                            batch,
                        ));
                        if ended.is_some() {
                            break ended;
                        }
                    }
                    Some(Err(error)) => break Some(format!("consumer failed: {error}")),
                    None => break Some(CONSUMER_ENDED.to_owned()),
                },
                _ = probe_tick.tick() => {
                    if let Err(error) = self.probe(&probe).await {
                        break Some(error);
                    }
                }
            }
        };

        if failure.is_none() {
            // Stop taking deliveries; prefetched ones are redelivered once the channel closes.
            let cancel = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default());
            if let Ok(Err(error)) = tokio::time::timeout(CLOSE_TIMEOUT, cancel).await {
                debug!(queue = %self.queue, %error, "Consumer cancel failed.");
            }
        }
        drain(&self.queue, &mut in_flight).await;
        drop(consumer);
        if failure.is_none() {
            let close = connection.close(200, "consumer shutting down".into());
            if let Ok(Err(error)) = tokio::time::timeout(CLOSE_TIMEOUT, close).await {
                debug!(queue = %self.queue, %error, "Closing the consumer connection failed.");
            }
        }
        match failure {
            None => SessionEnd::Shutdown,
            Some(error) => SessionEnd::Failed {
                error,
                healthy: started.elapsed() >= HEALTHY_AFTER,
            },
        }
    }

    /// Checks that the queue still exists and the broker answers.
    async fn probe(&self, probe: &Channel) -> Result<(), String> {
        let queue = short(&self.queue, "queue name").map_err(|error| error.to_string())?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let check = probe.queue_declare(queue, passive, FieldTable::default());
        match tokio::time::timeout(PROBE_TIMEOUT, check).await {
            // Our own consumer counts, so zero means the broker forgot it without telling us.
            Ok(Ok(declared)) if declared.consumer_count() == 0 => Err(format!(
                "queue `{}` has no consumers: ours is gone (queue deleted and re-created?)",
                self.queue
            )),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("queue check failed: {error}")),
            Err(_elapsed) => Err(format!(
                "the broker did not answer a queue check within {PROBE_TIMEOUT:?}"
            )),
        }
    }

    /// Connect, declare, set QoS and start consuming, all bounded (see
    /// [`open_declared_channel`]).
    async fn open(&self) -> Result<(Connection, Channel, Channel, Consumer), BrokerError> {
        let name = format!("crossdock-consumer {}", self.queue);
        let start_consuming = async |connection: &Connection, channel: &Channel| {
            channel
                .basic_qos(self.shape.prefetch, BasicQosOptions::default())
                .await
                .map_err(BrokerError::Channel)?;
            let consumer = channel
                .basic_consume(
                    short(&self.queue, "queue name")?,
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BrokerError::Consume {
                    queue: self.queue.clone(),
                    source,
                })?;
            let probe = connection
                .create_channel()
                .await
                .map_err(BrokerError::Channel)?;
            Ok((probe, consumer))
        };
        let (connection, channel, (probe, consumer)) = open_declared_channel(
            &self.config,
            &self.topology,
            &name,
            "declaring the topology and starting the consumer",
            start_consuming,
        )
        .await?;
        Ok((connection, channel, probe, consumer))
    }
}

/// Runs the handler for a batch of deliveries (one, for [`consume`]) and settles them on
/// their channel.
async fn handle(
    handler: BatchHandler,
    queue: String,
    deliveries: Vec<Delivery>,
) -> Result<(), String> {
    let count = deliveries.len();
    let mut settling = Vec::with_capacity(count);
    let mut incoming = Vec::with_capacity(count);
    for delivery in deliveries {
        let Delivery {
            delivery_tag,
            routing_key,
            redelivered,
            properties,
            data,
            acker,
            ..
        } = delivery;
        let message_id = properties.message_id().as_ref().map(ToString::to_string);
        settling.push((acker, delivery_tag, message_id.clone().unwrap_or_default()));
        incoming.push(Incoming {
            routing_key: routing_key.to_string(),
            message_id,
            kind: properties.kind().as_ref().map(ToString::to_string),
            body: data,
            redelivered,
        });
    }
    let mut dispositions = match AssertUnwindSafe(handler(incoming)).catch_unwind().await {
        Ok(dispositions) => dispositions,
        Err(_panic) => {
            let message_ids: Vec<&str> = settling.iter().map(|(_, _, id)| id.as_str()).collect();
            error!(%queue, ?message_ids, "Message handler panicked; its messages are requeued.");
            Vec::new()
        }
    };
    if dispositions.len() != count {
        if !dispositions.is_empty() {
            error!(
                %queue,
                messages = count,
                dispositions = dispositions.len(),
                "The handler did not answer once per message; the messages it left are requeued."
            );
        }
        dispositions.resize(count, Disposition::Requeue);
    }
    if count > 1 && dispositions.iter().all(|d| *d == Disposition::Ack) {
        // Every earlier delivery of the channel is settled (one batch at a time): a
        // `multiple` ack of the last settles exactly this batch.
        if let Some((acker, _, _)) = settling.last() {
            return settle(acker, Disposition::Ack, true).await;
        }
    }
    for ((acker, delivery_tag, message_id), disposition) in settling.iter().zip(dispositions) {
        if disposition != Disposition::Ack {
            debug!(%queue, %message_id, delivery_tag, ?disposition, "Message not acked.");
        }
        settle(acker, disposition, false).await?;
    }
    Ok(())
}

async fn settle(acker: &Acker, disposition: Disposition, multiple: bool) -> Result<(), String> {
    let request = async {
        match disposition {
            Disposition::Ack => acker.ack(BasicAckOptions { multiple }).await,
            Disposition::Requeue | Disposition::DeadLetter => {
                let requeue = disposition == Disposition::Requeue;
                acker.reject(BasicRejectOptions { requeue }).await
            }
        }
    };
    match tokio::time::timeout(SETTLE_TIMEOUT, request).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(format!(
            "{disposition:?} not sent: the delivery's channel is closed (the broker redelivers it)"
        )),
        Ok(Err(error)) => Err(format!("{disposition:?} failed: {error}")),
        Err(_elapsed) => Err(format!(
            "{disposition:?} not sent within {SETTLE_TIMEOUT:?}"
        )),
    }
}

/// Lets in-flight handlers finish for up to [`DRAIN_TIMEOUT`], then aborts the rest.
async fn drain(queue: &str, in_flight: &mut JoinSet<Result<(), String>>) {
    if in_flight.is_empty() {
        return;
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while !in_flight.is_empty() {
        match tokio::time::timeout_at(deadline, in_flight.join_next()).await {
            Ok(Some(Ok(Err(error)))) => {
                debug!(%queue, %error, "In-flight message not settled.");
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_elapsed) => {
                warn!(
                    %queue,
                    handlers = in_flight.len(),
                    "Handlers still running after the drain timeout; aborting them (their \
                     messages are redelivered)."
                );
                in_flight.abort_all();
                break;
            }
        }
    }
}

fn stop_requested(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves once shutdown is requested or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // `wait_for` errs only when the sender is dropped: nobody can ask us to stop any more,
    // so stop now rather than run unsupervised.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
