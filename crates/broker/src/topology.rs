//! The hub's exchanges, queues and bindings, their names, and the store-to-shard hash.
//!
//! ```text
//! {p}.events (topic) ── order.#        ──> {p}.orders
//!                    ── fetch.#        ──> {p}.fetch
//!                    ── sync.#         ──> {p}.sync
//!                    ── store.{n}.#    ──> {p}.store.{nnn}   (single active consumer)
//!                    ── parking.#      ──> {p}.parking
//!                    ── status.#       ──> (no queue of the hub's: a POS's own, taps)
//! {p}.dlx (fanout)  ─────────────────────> {p}.dead-letter
//! ```
//!
//! Every queue is a durable quorum queue. Work queues (orders, fetch, sync, store shards)
//! carry explicit arguments so RabbitMQ 3.10 (no default delivery limit) and 4.x behave the
//! same: `x-delivery-limit`, `x-dead-letter-exchange` = the DLX,
//! `x-dead-letter-strategy=at-least-once` and `x-overflow=reject-publish` (at-least-once
//! dead-lettering silently falls back to at-most-once without the latter). The dead-letter
//! and parking queues have no DLX: what lands there stays until a person or tool drains it.
//!
//! Store shard queues are bound with `store.{n}.#` rather than `store.{n}.*` because a
//! [`StoreId`] may contain `.`, which a topic exchange treats as a word separator.
//!
//! What a store is handed (an order routed to it, or taken back) goes under
//! `store.{n}.{store_id}`, the key of its shard queue; every change of an order's status
//! goes under `status.{store_id}`, which no queue of the hub's binds: the store worker has
//! nothing to do with it, and quorum queues are the dearest part of a message. A store's
//! POS (and a tap) that wants to hear everything of its store binds both
//! ([`Topology::store_patterns`]).

use crossdock_model::StoreId;
use lapin::{
    Channel, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
        QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use std::time::Duration;

use tracing::debug;

use crate::{BrokerConfig, connect, error::BrokerError};

/// The start of every status routing key.
const STATUS_PREFIX: &str = "status.";

/// Names and shape of the hub's RabbitMQ topology under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    store_shards: u16,
}

/// What one queue looks like, as `declare` needs it.
struct QueueSpec {
    name: String,
    /// Routing key it is bound with, and to which exchange.
    binding: (String, String),
    work_queue: bool,
    single_active_consumer: bool,
}

impl Topology {
    /// The topology under `prefix` with `store_shards` store queues (at least 1: a value of 0
    /// is taken as 1).
    pub fn new(prefix: &str, store_shards: u16) -> Self {
        Self {
            prefix: prefix.to_owned(),
            store_shards: store_shards.max(1),
        }
    }

    /// The topology a [`BrokerConfig`] describes.
    pub fn from_config(config: &BrokerConfig) -> Self {
        Self::new(&config.prefix, config.store_shards)
    }

    /// How many store shard queues there are.
    pub fn store_shards(&self) -> u16 {
        self.store_shards
    }

    /// `{p}.events`: the durable topic exchange every message is published to.
    pub fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// `{p}.dlx`: the durable fanout exchange work queues dead-letter into.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// `{p}.orders`: the unified order queue, bound with `order.#`.
    pub fn orders_queue(&self) -> String {
        format!("{}.orders", self.prefix)
    }

    /// `{p}.fetch`: notify-then-fetch work, bound with `fetch.#`.
    pub fn fetch_queue(&self) -> String {
        format!("{}.fetch", self.prefix)
    }

    /// `{p}.sync`: status syncs back to the platforms, bound with `sync.#`.
    pub fn sync_queue(&self) -> String {
        format!("{}.sync", self.prefix)
    }

    /// `{p}.store.{shard:03}`: one shard of the per-store queues, bound with `store.{shard}.#`,
    /// with a single active consumer so each store's messages are handled in order.
    pub fn store_queue(&self, shard: u16) -> String {
        format!("{}.store.{shard:03}", self.prefix)
    }

    /// Every store shard queue, shard 0 first.
    pub fn store_queues(&self) -> Vec<String> {
        (0..self.store_shards)
            .map(|shard| self.store_queue(shard))
            .collect()
    }

    /// `{p}.dead-letter`: bound to the DLX; what the work queues gave up on.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letter", self.prefix)
    }

    /// `{p}.parking`: bound with `parking.#`; messages set aside on purpose.
    pub fn parking_queue(&self) -> String {
        format!("{}.parking", self.prefix)
    }

    /// The shard of a store: FNV-1a (64 bit) over the id's bytes, modulo the shard count.
    ///
    /// This mapping is part of the wire contract (messages in flight are already in their
    /// shard queue); it must never change between versions. The tests pin known values.
    pub fn shard_of(&self, store: &StoreId) -> u16 {
        let shards = u64::from(self.store_shards);
        // The remainder is below `store_shards`, a u16, so it always fits.
        u16::try_from(fnv1a64(store.as_str().as_bytes()) % shards).unwrap_or(0)
    }

    /// `store.{shard}.{store_id}`: the routing key of what is handed to the store (an order
    /// routed to it, or taken back), which reaches the store's shard queue.
    pub fn store_routing_key(&self, store: &StoreId) -> String {
        format!("store.{}.{}", self.shard_of(store), store)
    }

    /// `status.{store_id}`: the routing key of a change of status of one of the store's
    /// orders, for its clients (a POS, the consoles through a tap); no queue of the hub's
    /// binds it.
    pub fn status_routing_key(&self, store: &StoreId) -> String {
        format!("{STATUS_PREFIX}{store}")
    }

    /// The patterns a queue binds to hear everything of one store, as its POS does: what
    /// is handed to it and every change of status of its orders.
    pub fn store_patterns(&self, store: &StoreId) -> [String; 2] {
        [format!("store.*.{store}"), self.status_routing_key(store)]
    }

    /// The patterns a queue binds to hear everything of every store.
    pub const ALL_STORES_PATTERNS: [&'static str; 2] = ["store.#", "status.#"];

    /// Whether a message under `routing_key` must reach a queue (published `mandatory`,
    /// refused when none is bound): all but the changes of status, which are news for
    /// whichever clients of the store listen, if any.
    pub fn needs_a_queue(routing_key: &str) -> bool {
        !routing_key.starts_with(STATUS_PREFIX)
    }

    /// Whether a message under `routing_key` is for one store (handed to it, or a change
    /// of status of one of its orders).
    pub fn is_store_key(routing_key: &str) -> bool {
        routing_key.starts_with("store.") || routing_key.starts_with(STATUS_PREFIX)
    }

    /// Declares every exchange, queue and binding. Idempotent as long as every declarer uses
    /// the same `delivery_limit` (RabbitMQ refuses a re-declaration with other arguments
    /// with `PRECONDITION_FAILED`, which also closes the channel).
    ///
    /// The awaits are not bounded here; the publisher and consumers wrap this call in a
    /// timeout.
    pub async fn declare(&self, channel: &Channel, delivery_limit: u32) -> Result<(), BrokerError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        for (name, kind) in [
            (self.exchange(), ExchangeKind::Topic),
            (self.dead_letter_exchange(), ExchangeKind::Fanout),
        ] {
            let amqp_name = short(&name, "exchange name")?;
            channel
                .exchange_declare(amqp_name, kind, durable, FieldTable::default())
                .await
                .map_err(|source| BrokerError::Declare {
                    what: format!("exchange `{name}`"),
                    source,
                })?;
        }

        for spec in self.queue_specs() {
            let arguments = self.queue_arguments(&spec, delivery_limit);
            let queue = short(&spec.name, "queue name")?;
            channel
                .queue_declare(queue.clone(), QueueDeclareOptions::durable(), arguments)
                .await
                .map_err(|source| BrokerError::Declare {
                    what: format!("queue `{}`", spec.name),
                    source,
                })?;
            let (exchange, routing_key) = &spec.binding;
            channel
                .queue_bind(
                    queue,
                    short(exchange, "exchange name")?,
                    short(routing_key, "routing key")?,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| BrokerError::Declare {
                    what: format!(
                        "binding of queue `{}` to `{exchange}` with `{routing_key}`",
                        spec.name
                    ),
                    source,
                })?;
        }
        debug!(prefix = %self.prefix, store_shards = self.store_shards, "Topology declared.");
        Ok(())
    }

    /// Deletes every queue (with its messages) and both exchanges of this prefix. Meant for
    /// tests; deleting what does not exist is not an error.
    pub async fn delete(&self, channel: &Channel) -> Result<(), BrokerError> {
        for spec in self.queue_specs() {
            channel
                .queue_delete(
                    short(&spec.name, "queue name")?,
                    QueueDeleteOptions::default(),
                )
                .await
                .map_err(|source| BrokerError::Delete {
                    what: format!("queue `{}`", spec.name),
                    source,
                })?;
        }
        for name in [self.exchange(), self.dead_letter_exchange()] {
            channel
                .exchange_delete(
                    short(&name, "exchange name")?,
                    ExchangeDeleteOptions::default(),
                )
                .await
                .map_err(|source| BrokerError::Delete {
                    what: format!("exchange `{name}`"),
                    source,
                })?;
        }
        Ok(())
    }

    /// Deletes the topology of `config`, and the queues `also` made beside it, on a
    /// connection of its own, every step bounded by `bound`, whatever fails: the cleanup
    /// after a test or a benchmark run, which must not hang on a broker that does not
    /// answer (a close whose answer never came was seen once).
    pub async fn remove(config: &BrokerConfig, also: &[String], bound: Duration) {
        let Ok(Ok(connection)) = tokio::time::timeout(bound, connect(config)).await else {
            return;
        };
        if let Ok(Ok(channel)) = tokio::time::timeout(bound, connection.create_channel()).await {
            let topology = Self::from_config(config);
            let _ = tokio::time::timeout(bound, topology.delete(&channel)).await;
            for queue in also {
                if let Ok(name) = short(queue, "queue name") {
                    let deleted = channel.queue_delete(name, QueueDeleteOptions::default());
                    let _ = tokio::time::timeout(bound, deleted).await;
                }
            }
        }
        let _ = tokio::time::timeout(bound, connection.close(200, "cleaned up".into())).await;
    }

    fn queue_specs(&self) -> Vec<QueueSpec> {
        let events = self.exchange();
        let work = |name: String, key: String| QueueSpec {
            name,
            binding: (events.clone(), key),
            work_queue: true,
            single_active_consumer: false,
        };
        let mut specs = vec![
            work(self.orders_queue(), "order.#".to_owned()),
            work(self.fetch_queue(), "fetch.#".to_owned()),
            work(self.sync_queue(), "sync.#".to_owned()),
        ];
        specs.extend((0..self.store_shards).map(|shard| QueueSpec {
            single_active_consumer: true,
            ..work(self.store_queue(shard), format!("store.{shard}.#"))
        }));
        specs.push(QueueSpec {
            name: self.dead_letter_queue(),
            binding: (self.dead_letter_exchange(), String::new()),
            work_queue: false,
            single_active_consumer: false,
        });
        specs.push(QueueSpec {
            name: self.parking_queue(),
            binding: (events, "parking.#".to_owned()),
            work_queue: false,
            single_active_consumer: false,
        });
        specs
    }

    fn queue_arguments(&self, spec: &QueueSpec, delivery_limit: u32) -> FieldTable {
        let mut arguments = FieldTable::default();
        arguments.insert("x-queue-type".into(), long_string("quorum"));
        if spec.work_queue {
            arguments.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(i64::from(delivery_limit)),
            );
            arguments.insert(
                "x-dead-letter-exchange".into(),
                long_string(&self.dead_letter_exchange()),
            );
            arguments.insert(
                "x-dead-letter-strategy".into(),
                long_string("at-least-once"),
            );
            arguments.insert("x-overflow".into(), long_string("reject-publish"));
        }
        if spec.single_active_consumer {
            arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        arguments
    }
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// An AMQP short string, or a typed error instead of lapin's panic for names over 255 bytes.
pub(crate) fn short(value: &str, what: &'static str) -> Result<ShortString, BrokerError> {
    ShortString::try_new(value).map_err(|_| BrokerError::InvalidName {
        what,
        name: value.to_owned(),
    })
}

/// 64-bit FNV-1a. Frozen: changing it moves stores to other shards.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(id: &str) -> StoreId {
        StoreId::parse(id).expect("valid store id")
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn names_follow_the_prefix() {
        let topology = Topology::new("cd", 3);
        assert_eq!(topology.exchange(), "cd.events");
        assert_eq!(topology.dead_letter_exchange(), "cd.dlx");
        assert_eq!(topology.orders_queue(), "cd.orders");
        assert_eq!(topology.fetch_queue(), "cd.fetch");
        assert_eq!(topology.sync_queue(), "cd.sync");
        assert_eq!(topology.dead_letter_queue(), "cd.dead-letter");
        assert_eq!(topology.parking_queue(), "cd.parking");
        assert_eq!(
            topology.store_queues(),
            ["cd.store.000", "cd.store.001", "cd.store.002"]
        );
        assert_eq!(Topology::new("cd", 0).store_shards(), 1);
    }

    #[test]
    fn shards_are_pinned() {
        let topology = Topology::new("crossdock", 16);
        // Frozen values: if this fails, the hash changed and stores would move shards.
        for (id, shard) in PINNED {
            assert_eq!(topology.shard_of(&store(id)), *shard, "store {id}");
            assert_eq!(
                topology.store_routing_key(&store(id)),
                format!("store.{shard}.{id}")
            );
        }
    }

    const PINNED: &[(&str, u16)] = &[
        ("SH-001", 0),
        ("SH-002", 9),
        ("SH-003", 6),
        ("store-42", 15),
        ("a", 12),
        ("BJ.chaoyang.07", 2),
        ("X", 7),
    ];

    #[test]
    fn changes_of_status_have_a_key_of_their_own_that_a_stores_patterns_cover() {
        let topology = Topology::new("crossdock", 16);
        let dotted = store("BJ.chaoyang.07");
        assert_eq!(
            topology.status_routing_key(&dotted),
            "status.BJ.chaoyang.07"
        );
        assert_eq!(
            topology.store_patterns(&dotted),
            ["store.*.BJ.chaoyang.07", "status.BJ.chaoyang.07"]
        );
        for key in [
            topology.store_routing_key(&dotted),
            topology.status_routing_key(&dotted),
        ] {
            assert!(Topology::is_store_key(&key), "{key}");
        }
        assert!(!Topology::is_store_key("order.received"));
        assert!(Topology::needs_a_queue(
            &topology.store_routing_key(&dotted)
        ));
        assert!(Topology::needs_a_queue("order.received"));
        assert!(!Topology::needs_a_queue(
            &topology.status_routing_key(&dotted)
        ));
    }

    #[test]
    fn shards_are_pinned_for_other_shard_counts_too() {
        let topology = Topology::new("crossdock", 7);
        for (id, shard) in [
            ("SH-001", 1),
            ("SH-002", 3),
            ("store-42", 6),
            ("BJ.chaoyang.07", 0),
        ] {
            assert_eq!(topology.shard_of(&store(id)), shard, "store {id}");
        }
    }

    #[test]
    fn shards_spread_over_every_queue() {
        let topology = Topology::new("crossdock", 16);
        let mut counts = [0_u32; 16];
        for n in 0..1000 {
            let shard = topology.shard_of(&store(&format!("SH-{n:04}")));
            counts[usize::from(shard)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 20), "{counts:?}");
    }
}
