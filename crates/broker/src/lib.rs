//! RabbitMQ layer: topology, confirmed publishing, manual-ack consumers, dead-letter and
//! parking queues, reconnection.
//!
//! # Layout
//!
//! * [`config`](BrokerConfig): where the broker is, the topology's prefix and shape, and
//!   [`connect`], the one place connections are opened.
//! * [`topology`](Topology): names of every exchange and queue, the store-to-shard hash
//!   ([`Topology::shard_of`]), and the idempotent [`Topology::declare`]. All queues are
//!   quorum queues declared with explicit arguments, so RabbitMQ 3.10 (CI) and 4.x
//!   (production) behave the same.
//! * [`publisher`](Publisher): one confirm-mode channel; [`Publisher::publish_batch`]
//!   pipelines a batch and reports [`PublishOutcome::Confirmed`], `Refused` or `Unknown`
//!   per message. Used by the outbox relay, which republishes `Unknown` with the same id.
//! * [`consumer`](consume): a supervised manual-ack consumer that hands [`Incoming`]
//!   messages to a handler, one at a time or what waits together ([`consume_batches`]),
//!   and applies its [`Disposition`]s.
//! * [`depth`](queue_depths): queue depths for monitoring (passive declares, every read
//!   bounded by a timeout); [`DepthProbe`] keeps one connection across reads.
//! * [`tap`](tap()): a process's own transient queue on the events exchange, for nudging live
//!   views (web pages); it may miss messages and says when it (re)connects.
//! * [`link`](LinkState): whether a session is up and since when, for readiness reports;
//!   [`Backoff`]: the reconnect delays.
//! * [`error`](BrokerError): typed failures; the URL's password never appears in them.
//!
//! # Architecture invariants
//!
//! * Every await on the broker is bounded by a timeout: a publish can otherwise stall for a
//!   whole broker outage.
//! * Publisher and consumers each own their connection and rebuild it themselves after a
//!   failure; lapin's auto-recovery is not used (see [`publisher`](Publisher) docs).
//! * This crate knows nothing about orders: it moves bytes with a routing key, a message id
//!   and a kind.

mod backoff;
mod config;
mod consumer;
mod depth;
mod error;
mod link;
mod publisher;
mod tap;
mod topology;

pub use backoff::Backoff;
pub use config::{BrokerConfig, connect};
pub use consumer::{Disposition, Incoming, consume, consume_batches};
pub use depth::{DepthProbe, QueueDepth, queue_depths, topology_queues};
pub use error::{BrokerError, redact_url};
pub use link::{LinkSnapshot, LinkState};
pub use publisher::{OutgoingMessage, PublishOutcome, Publisher};
pub use tap::{MAX_BACKLOG, Tapped, tap};
pub use topology::Topology;
