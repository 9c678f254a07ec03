//! Integration tests against a real RabbitMQ (`amqp://guest:guest@127.0.0.1:5672/%2f`, or
//! `CROSSDOCK_TEST_AMQP_URL`). Each test declares its own topology under a random prefix and
//! deletes it at the end. Waits are on events (deliveries, confirms) with timeouts, never
//! fixed sleeps; broker-side state no client sees an event for (a queue's consumer count,
//! a queue re-declared by a consumer) is polled by `common::eventually`, on a condition. `TEST_LOG=debug` (an
//! `EnvFilter`) shows the crate's logs.

mod common;

use std::{collections::BTreeMap, time::Duration};

use crossdock_broker::{
    BrokerConfig, BrokerError, Disposition, Incoming, LinkState, OutgoingMessage, PublishOutcome,
    Publisher, Topology, connect, consume, consume_batches,
};
use crossdock_model::StoreId;
use lapin::{
    options::{ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable, LongString},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::timeout,
};

use common::{RemovedOnPanic, WAIT, eventually};

struct Fixture {
    config: BrokerConfig,
    topology: Topology,
    admin: lapin::Connection,
    /// Made first in every test, so dropped after its consumers.
    _removed: RemovedOnPanic,
}

impl Fixture {
    async fn new(delivery_limit: u32) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
                .with_test_writer()
                .try_init();
        }
        let config = BrokerConfig {
            url: std::env::var("CROSSDOCK_TEST_AMQP_URL")
                .unwrap_or_else(|_| BrokerConfig::default().url),
            prefix: format!("t-{}", uuid::Uuid::now_v7().simple()),
            store_shards: 4,
            delivery_limit,
            confirm_timeout: Duration::from_secs(10),
        };
        let topology = Topology::from_config(&config);
        let admin = connect(&config).await.expect("RabbitMQ reachable");
        Self {
            _removed: RemovedOnPanic(config.clone()),
            config,
            topology,
            admin,
        }
    }

    async fn channel(&self) -> lapin::Channel {
        self.admin.create_channel().await.expect("channel opens")
    }

    async fn declare(&self) {
        let channel = self.channel().await;
        self.topology
            .declare(&channel, self.config.delivery_limit)
            .await
            .expect("topology declares");
    }

    async fn publisher(&self) -> Publisher {
        Publisher::connect(&self.config)
            .await
            .expect("publisher connects")
    }

    /// Starts `consume` on `queue`, forwarding every message to the returned receiver and
    /// answering `disposition`.
    fn collect(
        &self,
        queue: String,
        concurrency: usize,
        disposition: Disposition,
    ) -> (Running, mpsc::UnboundedReceiver<Incoming>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let running = Running::start(&self.config, queue, concurrency, move |message| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(message);
                disposition
            }
        });
        (running, rx)
    }

    /// The queue as the broker has it now (a passive declare: an error if it is missing).
    async fn inspect(&self, queue: &str) -> Result<lapin::Queue, lapin::Error> {
        self.channel()
            .await
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }

    /// Waits until `queue` has a consumer: the consumer's session declared the topology and
    /// is consuming, so no later re-declare of its races with what the test does next.
    async fn consuming(&self, queue: &str) {
        eventually(&format!("a consumer on {queue}"), || async {
            self.inspect(queue)
                .await
                .ok()
                .filter(|queue| queue.consumer_count() >= 1)
                .map(|_| ())
        })
        .await;
    }

    async fn cleanup(self) {
        let channel = self.channel().await;
        self.topology
            .delete(&channel)
            .await
            .expect("topology deletes");
        let _ = self.admin.close(200, "test done".into()).await;
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), BrokerError>>,
    /// Up while the consumer consumes.
    link: LinkState,
}

impl Running {
    /// Runs `consumer` (a `consume*` call, given its shutdown and its link) on a task of
    /// its own.
    fn spawn<C>(consumer: impl FnOnce(watch::Receiver<bool>, LinkState) -> C) -> Self
    where
        C: Future<Output = Result<(), BrokerError>> + Send + 'static,
    {
        let (stop, shutdown) = watch::channel(false);
        let link = LinkState::default();
        let task = tokio::spawn(consumer(shutdown, link.clone()));
        Self { stop, task, link }
    }

    /// Starts `consume` with a prefetch of 50.
    fn start<H, F>(config: &BrokerConfig, queue: String, concurrency: usize, handler: H) -> Self
    where
        H: Fn(Incoming) -> F + Send + Sync + 'static,
        F: Future<Output = Disposition> + Send + 'static,
    {
        let config = config.clone();
        Self::spawn(|shutdown, link| {
            consume(config, queue, 50, concurrency, link, shutdown, handler)
        })
    }

    /// Starts `consume_batches` with a prefetch of 50.
    fn start_batches<H, F>(
        config: &BrokerConfig,
        queue: String,
        max_batch: usize,
        handler: H,
    ) -> Self
    where
        H: Fn(Vec<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = Vec<Disposition>> + Send + 'static,
    {
        let config = config.clone();
        Self::spawn(|shutdown, link| {
            consume_batches(config, queue, 50, max_batch, link, shutdown, handler)
        })
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        let result = timeout(WAIT, self.task)
            .await
            .expect("consume returns after shutdown")
            .expect("consume task did not panic");
        assert!(result.is_ok(), "{result:?}");
        assert!(!self.link.snapshot().up, "a stopped consumer is not up");
    }
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Incoming>, what: &str) -> Incoming {
    timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("consumer alive")
}

fn message(routing_key: &str, id: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage {
        routing_key: routing_key.to_owned(),
        message_id: id.to_owned(),
        kind: "test.kind".to_owned(),
        body: body.as_bytes().to_vec(),
    }
}

fn store(id: &str) -> StoreId {
    StoreId::parse(id).expect("valid store id")
}

fn every_queue(topology: &Topology) -> Vec<String> {
    let mut queues = vec![
        topology.orders_queue(),
        topology.fetch_queue(),
        topology.sync_queue(),
        topology.dead_letter_queue(),
        topology.parking_queue(),
    ];
    queues.extend(topology.store_queues());
    queues
}

/// The arguments the topology contract promises for `queue`.
fn expected_arguments(
    topology: &Topology,
    queue: &str,
    delivery_limit: i64,
    queue_type: &str,
) -> FieldTable {
    let text = |value: &str| AMQPValue::LongString(LongString::from(value));
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), text(queue_type));
    if queue != topology.dead_letter_queue() && queue != topology.parking_queue() {
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(delivery_limit),
        );
        arguments.insert(
            "x-dead-letter-exchange".into(),
            text(&topology.dead_letter_exchange()),
        );
        arguments.insert("x-dead-letter-strategy".into(), text("at-least-once"));
        arguments.insert("x-overflow".into(), text("reject-publish"));
    }
    if topology.store_queues().iter().any(|q| q == queue) {
        arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    arguments
}

#[tokio::test]
async fn declare_is_idempotent_and_every_queue_is_quorum() {
    let fixture = Fixture::new(10).await;
    fixture.declare().await;
    fixture.declare().await;

    for queue in every_queue(&fixture.topology) {
        // Exists: a passive declare succeeds.
        fixture
            .inspect(&queue)
            .await
            .unwrap_or_else(|e| panic!("queue {queue} missing: {e}"));
        // Declared with exactly the expected arguments: re-declaring with them succeeds,
        // and the same with `x-queue-type=classic` is refused for that argument.
        let expected = expected_arguments(&fixture.topology, &queue, 10, "quorum");
        let channel = fixture.channel().await;
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::durable(),
                expected,
            )
            .await
            .unwrap_or_else(|e| panic!("{queue} has other arguments: {e}"));
        let classic = expected_arguments(&fixture.topology, &queue, 10, "classic");
        let error = channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::durable(),
                classic,
            )
            .await
            .expect_err("a quorum queue cannot be re-declared as classic");
        let text = error.to_string();
        assert!(
            text.contains("x-queue-type") && text.contains("quorum"),
            "{queue}: {text}"
        );
    }

    // Another delivery limit is a different topology: the error says what to fix.
    let channel = fixture.channel().await;
    let error = fixture
        .topology
        .declare(&channel, 3)
        .await
        .expect_err("a different delivery limit is refused");
    assert!(matches!(error, BrokerError::Declare { .. }), "{error:?}");
    assert!(error.to_string().contains("delivery limit"), "{error}");

    fixture.cleanup().await;
}

#[tokio::test]
async fn confirmed_batch_reaches_the_consumer_intact() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;
    assert!(publisher.is_connected());
    let (consumer, mut rx) = fixture.collect(fixture.topology.orders_queue(), 8, Disposition::Ack);

    let batch: Vec<OutgoingMessage> = (0..100)
        .map(|n| {
            message(
                &format!("order.received.{n}"),
                &format!("id-{n}"),
                &format!(r#"{{"n":{n}}}"#),
            )
        })
        .collect();
    let outcomes = publisher.publish_batch(&batch).await;
    assert_eq!(outcomes, vec![PublishOutcome::Confirmed; batch.len()]);

    let mut received = BTreeMap::new();
    while received.len() < batch.len() {
        let incoming = recv(&mut rx, "published messages").await;
        let id = incoming.message_id.clone().expect("message id set");
        assert!(
            received.insert(id, incoming).is_none(),
            "duplicate delivery"
        );
    }
    for sent in &batch {
        let incoming = &received[&sent.message_id];
        assert_eq!(incoming.routing_key, sent.routing_key);
        assert_eq!(incoming.kind.as_deref(), Some("test.kind"));
        assert_eq!(incoming.body, sent.body);
        assert!(!incoming.redelivered);
    }

    consumer.stop().await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn store_routing_keys_reach_exactly_their_shard_queue() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;
    let topology = &fixture.topology;

    // Stores covering every shard, including one with dots in its id.
    let mut stores: Vec<StoreId> = vec![store("BJ.chaoyang.07")];
    let mut n = 0;
    while (0..topology.store_shards())
        .any(|shard| !stores.iter().any(|s| topology.shard_of(s) == shard))
    {
        stores.push(store(&format!("SH-{n:03}")));
        n += 1;
    }

    // One consumer per shard queue, tagging what it receives with its queue.
    let (tx, mut rx) = mpsc::unbounded_channel::<(u16, Incoming)>();
    let consumers: Vec<Running> = (0..topology.store_shards())
        .map(|shard| {
            let tx = tx.clone();
            Running::start(
                &fixture.config,
                topology.store_queue(shard),
                1,
                move |message| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send((shard, message));
                        Disposition::Ack
                    }
                },
            )
        })
        .collect();

    let mut batch: Vec<OutgoingMessage> = stores
        .iter()
        .map(|s| message(&topology.store_routing_key(s), s.as_str(), "{}"))
        .collect();
    // Changes of status go to the stores' clients, not to any shard queue.
    batch.extend(stores.iter().map(|s| {
        message(
            &topology.status_routing_key(s),
            &format!("status-{s}"),
            "{}",
        )
    }));
    // Then one end marker per shard, published after (so enqueued after) the messages.
    for shard in 0..topology.store_shards() {
        let marker = stores
            .iter()
            .find(|s| topology.shard_of(s) == shard)
            .expect("a store per shard");
        batch.push(message(
            &topology.store_routing_key(marker),
            &format!("end-{shard}"),
            "{}",
        ));
    }
    let outcomes = publisher.publish_batch(&batch).await;
    assert_eq!(outcomes, vec![PublishOutcome::Confirmed; batch.len()]);

    let mut ended = 0;
    let mut seen: BTreeMap<String, u16> = BTreeMap::new();
    while ended < topology.store_shards() {
        let (shard, incoming) = timeout(WAIT, rx.recv())
            .await
            .expect("all shards finish")
            .expect("consumers alive");
        let id = incoming.message_id.expect("message id set");
        assert!(!id.starts_with("status-"), "{id} reached shard {shard}");
        if id.starts_with("end-") {
            assert_eq!(id, format!("end-{shard}"), "marker on the wrong queue");
            ended += 1;
        } else {
            assert!(
                seen.insert(id.clone(), shard).is_none(),
                "{id} reached two queues"
            );
        }
    }
    for s in &stores {
        assert_eq!(
            seen.get(s.as_str()),
            Some(&topology.shard_of(s)),
            "store {s} routed by {}",
            topology.store_routing_key(s)
        );
    }

    for consumer in consumers {
        consumer.stop().await;
    }
    fixture.cleanup().await;
}

#[tokio::test]
async fn unroutable_messages_are_refused_in_their_place() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;

    let batch = [
        message("order.a", "1", "{}"),
        message("nothing.is.bound.here", "2", "{}"),
        message("order.b", "3", "{}"),
        message(&"x".repeat(300), "4", "{}"),
        // News for a store's clients needs no listener.
        message(
            &fixture.topology.status_routing_key(&store("NYC-001")),
            "5",
            "{}",
        ),
    ];
    let outcomes = publisher.publish_batch(&batch).await;
    assert_eq!(outcomes[4], PublishOutcome::Confirmed, "{outcomes:?}");
    assert_eq!(outcomes[0], PublishOutcome::Confirmed);
    assert!(
        matches!(&outcomes[1], PublishOutcome::Refused { reason } if reason.contains("NO_ROUTE")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], PublishOutcome::Confirmed);
    assert!(
        matches!(&outcomes[3], PublishOutcome::Refused { reason } if reason.contains("255")),
        "{outcomes:?}"
    );
    assert!(
        publisher.is_connected(),
        "a refusal does not break the link"
    );

    fixture.cleanup().await;
}

#[tokio::test]
async fn a_nack_from_a_full_queue_is_unknown_not_refused() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;

    // A queue that can hold nothing and rejects publishes when full: the broker nacks.
    let full = format!("{}.full", fixture.config.prefix);
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    let channel = fixture.channel().await;
    channel
        .queue_declare(
            full.as_str().into(),
            QueueDeclareOptions::default(),
            arguments,
        )
        .await
        .expect("full queue declared");
    channel
        .queue_bind(
            full.as_str().into(),
            fixture.topology.exchange().as_str().into(),
            "full.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("full queue bound");

    let outcomes = publisher
        .publish_batch(&[
            message("full.x", "nacked-1", "{}"),
            message("order.a", "acked-1", "{}"),
        ])
        .await;
    assert!(
        matches!(&outcomes[0], PublishOutcome::Unknown { reason } if reason.contains("nacked by the broker")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], PublishOutcome::Confirmed);
    assert!(publisher.is_connected(), "a nack does not break the link");

    channel
        .queue_delete(full.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("full queue deleted");
    fixture.cleanup().await;
}

#[tokio::test]
async fn requeued_forever_ends_in_the_dead_letter_queue_after_the_limit() {
    let delivery_limit = 2;
    let fixture = Fixture::new(delivery_limit).await;
    let publisher = fixture.publisher().await;
    let (work, mut attempts) =
        fixture.collect(fixture.topology.orders_queue(), 1, Disposition::Requeue);
    let (dead, mut dead_letters) =
        fixture.collect(fixture.topology.dead_letter_queue(), 1, Disposition::Ack);

    let outcomes = publisher
        .publish_batch(&[message("order.poison", "poison-1", r#"{"bad":true}"#)])
        .await;
    assert_eq!(outcomes, [PublishOutcome::Confirmed]);

    let dead_letter = recv(&mut dead_letters, "the dead-lettered message").await;
    assert_eq!(dead_letter.message_id.as_deref(), Some("poison-1"));
    assert_eq!(dead_letter.body, br#"{"bad":true}"#);
    work.stop().await;
    let mut deliveries = Vec::new();
    while let Ok(attempt) = attempts.try_recv() {
        deliveries.push(attempt.redelivered);
    }
    // First delivery plus `delivery_limit` redeliveries (RabbitMQ 3.10 and 4.x).
    assert_eq!(
        deliveries.len(),
        usize::try_from(delivery_limit).expect("small") + 1,
        "{deliveries:?}"
    );
    assert!(!deliveries[0] && deliveries[1..].iter().all(|r| *r));

    dead.stop().await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn dead_letter_disposition_goes_to_the_dead_letter_queue_at_once() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;
    let (work, mut attempts) =
        fixture.collect(fixture.topology.sync_queue(), 4, Disposition::DeadLetter);
    let (dead, mut dead_letters) =
        fixture.collect(fixture.topology.dead_letter_queue(), 1, Disposition::Ack);

    let outcomes = publisher
        .publish_batch(&[message("sync.status", "hopeless-1", "{}")])
        .await;
    assert_eq!(outcomes, [PublishOutcome::Confirmed]);

    let dead_letter = recv(&mut dead_letters, "the dead-lettered message").await;
    assert_eq!(dead_letter.message_id.as_deref(), Some("hopeless-1"));
    work.stop().await;
    let mut deliveries = 0;
    while attempts.try_recv().is_ok() {
        deliveries += 1;
    }
    assert_eq!(deliveries, 1);

    dead.stop().await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn concurrency_one_keeps_publish_order_on_a_store_shard() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;
    let shop = store("SH-ORDER-1");
    let queue = fixture
        .topology
        .store_queue(fixture.topology.shard_of(&shop));
    let (consumer, mut rx) = fixture.collect(queue, 1, Disposition::Ack);

    let routing_key = fixture.topology.store_routing_key(&shop);
    let batch: Vec<OutgoingMessage> = (0..200)
        .map(|n| message(&routing_key, &n.to_string(), "{}"))
        .collect();
    // Two batches, to also cover order across calls.
    let (first, second) = batch.split_at(100);
    for half in [first, second] {
        let outcomes = publisher.publish_batch(half).await;
        assert_eq!(outcomes, vec![PublishOutcome::Confirmed; half.len()]);
    }

    for expected in 0..200 {
        let incoming = recv(&mut rx, "ordered messages").await;
        assert_eq!(
            incoming.message_id.as_deref(),
            Some(expected.to_string().as_str()),
            "out of order"
        );
    }

    consumer.stop().await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn a_batch_consumer_takes_what_waits_together_and_settles_each_as_answered() {
    let fixture = Fixture::new(10).await;
    fixture.declare().await;
    let publisher = fixture.publisher().await;
    let shop = store("SH-BATCH-1");
    let queue = fixture
        .topology
        .store_queue(fixture.topology.shard_of(&shop));
    let routing_key = fixture.topology.store_routing_key(&shop);
    // A backlog waits before the consumer starts.
    let backlog: Vec<OutgoingMessage> = (0..100)
        .map(|n| message(&routing_key, &n.to_string(), "{}"))
        .collect();
    assert_eq!(
        publisher.publish_batch(&backlog).await,
        vec![PublishOutcome::Confirmed; backlog.len()]
    );
    let (dead, mut dead_letters) =
        fixture.collect(fixture.topology.dead_letter_queue(), 1, Disposition::Ack);

    // Every message acked but "13", which can never succeed, and "42" the first time,
    // which may later; the handler once answers none from "70" to the end of its batch.
    let unanswered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let left = unanswered.clone();
    let (tx, mut batches) = mpsc::unbounded_channel::<Vec<Incoming>>();
    let consumer = Running::start_batches(&fixture.config, queue.clone(), 16, move |batch| {
        let (tx, left) = (tx.clone(), left.clone());
        async move {
            let mut dispositions: Vec<Disposition> = batch
                .iter()
                .map(|incoming| match incoming.message_id.as_deref() {
                    Some("13") => Disposition::DeadLetter,
                    Some("42") if !incoming.redelivered => Disposition::Requeue,
                    _ => Disposition::Ack,
                })
                .collect();
            if let Some(at) = batch.iter().position(|incoming| {
                incoming.message_id.as_deref() == Some("70") && !incoming.redelivered
            }) {
                dispositions.truncate(at);
                left.lock().expect("unpoisoned").extend(
                    batch[at..]
                        .iter()
                        .filter_map(|incoming| incoming.message_id.as_deref()?.parse::<u32>().ok()),
                );
            }
            let _ = tx.send(batch);
            dispositions
        }
    });
    let again_expected = |unanswered: &[u32]| {
        let mut expected = vec![42];
        expected.extend_from_slice(unanswered);
        expected.sort_unstable();
        expected
    };

    let mut first_deliveries = Vec::new();
    let mut again = Vec::new();
    let mut largest = 0;
    while first_deliveries.len() < 100
        || again.len() < again_expected(&unanswered.lock().expect("unpoisoned")).len()
    {
        let batch = timeout(WAIT, batches.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("timed out: first deliveries {first_deliveries:?}, again {again:?}")
            })
            .expect("consumer alive");
        assert!(!batch.is_empty(), "a batch holds at least one message");
        largest = largest.max(batch.len());
        for incoming in batch {
            let id: u32 = incoming
                .message_id
                .as_deref()
                .and_then(|id| id.parse().ok())
                .expect("numbered");
            if incoming.redelivered {
                again.push(id);
            } else {
                first_deliveries.push(id);
            }
        }
    }
    assert_eq!(
        first_deliveries,
        (0..100).collect::<Vec<u32>>(),
        "in delivery order"
    );
    again.sort_unstable();
    let unanswered = unanswered.lock().expect("unpoisoned").clone();
    assert_eq!(unanswered.first(), Some(&70), "{unanswered:?}");
    assert_eq!(
        again,
        again_expected(&unanswered),
        "only the requeued and the unanswered come again"
    );
    assert!(largest > 1, "what waited was taken together");
    assert!(largest <= 16, "no batch over the limit: {largest}");
    let dead_letter = recv(&mut dead_letters, "the dead-lettered message").await;
    assert_eq!(dead_letter.message_id.as_deref(), Some("13"));

    consumer.stop().await;
    // Every message was settled: nothing went back to the queue.
    let waiting = fixture
        .inspect(&queue)
        .await
        .expect("queue exists")
        .message_count();
    assert_eq!(waiting, 0);
    dead.stop().await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn shutdown_makes_consume_return_even_with_a_handler_in_flight() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    // A handler that never finishes: shutdown must still return (after the drain timeout).
    let consumer = Running::start(
        &fixture.config,
        fixture.topology.fetch_queue(),
        1,
        move |_| {
            let started_tx = started_tx.clone();
            async move {
                let _ = started_tx.send(());
                std::future::pending::<Disposition>().await
            }
        },
    );
    let outcomes = publisher
        .publish_batch(&[message("fetch.x", "stuck-1", "{}")])
        .await;
    assert_eq!(outcomes, [PublishOutcome::Confirmed]);
    timeout(WAIT, started.recv())
        .await
        .expect("handler started")
        .expect("consumer alive");
    consumer.stop().await;

    // An idle consumer stops too, and dropping the sender counts as shutdown.
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(consume(
        fixture.config.clone(),
        fixture.topology.parking_queue(),
        10,
        1,
        LinkState::default(),
        shutdown,
        |_| async { Disposition::Ack },
    ));
    drop(stop);
    let result = timeout(WAIT, task)
        .await
        .expect("returns")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");

    // The unacked message went back to the queue and is delivered again, as redelivered.
    let (again, mut rx) = fixture.collect(fixture.topology.fetch_queue(), 1, Disposition::Ack);
    let incoming = recv(&mut rx, "the redelivery").await;
    assert_eq!(incoming.message_id.as_deref(), Some("stuck-1"));
    assert!(incoming.redelivered);
    again.stop().await;

    fixture.cleanup().await;
}

#[tokio::test]
async fn a_publisher_made_while_the_broker_is_unreachable_connects_once_it_is_reachable() {
    let fixture = Fixture::new(10).await;
    // Nothing listens on a port just bound and released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let unreachable = BrokerConfig {
        url: format!("amqp://guest:guest@{closed}/%2f"),
        ..fixture.config.clone()
    };
    let publisher = Publisher::new(&unreachable).expect("made without connecting");
    assert!(!publisher.is_connected());
    let error = publisher
        .ensure_connected()
        .await
        .expect_err("nothing listens there");
    let link = publisher.link_state().snapshot();
    assert!(!link.up);
    assert_eq!(link.error, Some(error.to_string()), "the link says why");
    assert!(
        !link.error.unwrap_or_default().contains("guest:guest"),
        "no password in the reason"
    );
    let outcomes = publisher
        .publish_batch(&[message("order.1", "unreachable", "{}")])
        .await;
    assert!(
        matches!(&outcomes[..], [PublishOutcome::Unknown { .. }]),
        "{outcomes:?}"
    );

    let publisher = Publisher::new(&fixture.config).expect("made");
    assert!(!publisher.link_state().snapshot().up, "not connected yet");
    publisher
        .ensure_connected()
        .await
        .expect("the broker is up");
    assert!(publisher.is_connected());
    assert!(publisher.link_state().snapshot().up);
    publisher
        .ensure_connected()
        .await
        .expect("already connected");
    fixture.cleanup().await;
}

#[tokio::test]
async fn publisher_rebuilds_its_connection_after_a_channel_failure() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;
    let (consumer, mut rx) = fixture.collect(fixture.topology.orders_queue(), 1, Disposition::Ack);
    // The consumer declares the topology when its session starts: let it finish, or its
    // declare may bring the exchange back between the deletion and the publish.
    fixture.consuming(&fixture.topology.orders_queue()).await;

    // Without its exchange, the broker closes the publisher's channel (404) on publish.
    fixture
        .channel()
        .await
        .exchange_delete(
            fixture.topology.exchange().as_str().into(),
            ExchangeDeleteOptions::default(),
        )
        .await
        .expect("exchange deleted");
    let broken = publisher
        .publish_batch(&[
            message("order.1", "during-1", "{}"),
            message("order.2", "during-2", "{}"),
        ])
        .await;
    assert!(
        broken
            .iter()
            .all(|outcome| matches!(outcome, PublishOutcome::Unknown { .. })),
        "{broken:?}"
    );
    assert!(!publisher.is_connected());
    let link = publisher.link_state().snapshot();
    assert!(!link.up);
    assert!(link.error.is_some(), "{link:?}");

    // The next batch reconnects, re-declares the topology and goes through.
    let after = publisher
        .publish_batch(&[message("order.3", "after", "{}")])
        .await;
    assert_eq!(after, [PublishOutcome::Confirmed]);
    assert!(publisher.is_connected());
    assert!(publisher.link_state().snapshot().up);
    let incoming = recv(&mut rx, "the message after recovery").await;
    assert_eq!(incoming.message_id.as_deref(), Some("after"));

    consumer.stop().await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn consumer_rebuilds_its_session_after_its_queue_is_deleted() {
    let fixture = Fixture::new(10).await;
    let publisher = fixture.publisher().await;
    let queue = fixture.topology.orders_queue();
    let (consumer, mut rx) = fixture.collect(queue.clone(), 1, Disposition::Ack);
    let first = publisher
        .publish_batch(&[message("order.1", "before", "{}")])
        .await;
    assert_eq!(first, [PublishOutcome::Confirmed]);
    recv(&mut rx, "the first message").await;

    // The consumer notices (RabbitMQ 3.10.8 here sends basic.cancel; without one, its
    // periodic queue check would), and its new session re-declares the queue and its
    // binding. Only the consumer may re-create it: a queue re-created by anyone else (this
    // test, or the publisher re-declaring after a reconnect) can keep reporting the dead
    // consumer, and a consumer relying on its queue check would never notice.
    assert!(consumer.link.snapshot().up, "consuming: the link is up");
    let before_delete = std::time::Instant::now();
    let channel = fixture.channel().await;
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("queue deleted");

    // Publish "after" until the broker routes it: until then it comes back as unroutable
    // (which leaves the publisher's channel open, unlike a passive declare of a missing
    // queue). Polled: the re-declaration is broker-side state with no client-visible event.
    eventually("the consumer to re-declare its queue", || async {
        let after = publisher
            .publish_batch(&[message("order.2", "after", "{}")])
            .await;
        match &after[..] {
            [PublishOutcome::Confirmed] => Some(()),
            [PublishOutcome::Refused { reason }] if reason.contains("NO_ROUTE") => None,
            // Anything else could make the publisher reconnect and re-declare the queue.
            other => panic!("unexpected outcome while the queue is gone: {other:?}"),
        }
    })
    .await;
    // Routed into the queue the new session declared: its delivery proves the recovery.
    let incoming = recv(&mut rx, "the message after recovery").await;
    assert_eq!(incoming.message_id.as_deref(), Some("after"));
    // The link says so: up again, and the outage's reason was recorded before.
    let link = consumer.link.snapshot();
    assert!(link.up, "{link:?}");
    assert!(
        link.since >= before_delete,
        "the link went down and came back: {link:?}"
    );

    consumer.stop().await;
    fixture.cleanup().await;
}
