//! Prometheus metrics: the registry every stage counts into, and `GET /metrics`.
//!
//! One [`Metrics`] per hub, owned by [`Shared`] (never a global registry: tests run many
//! hubs in one process). Counters and histograms are updated where things happen (the
//! webhook handler, the router, the sync worker through [`MeteredPush`], HQ's API); queue
//! depths and the outbox backlog are read when scraped, each read bounded by
//! [`SCRAPE_TIMEOUT`], so a dead broker or database makes the scrape answer quickly with
//! those figures left out and `crossdock_broker_up` / `crossdock_database_up` at 0.
//!
//! The answer is OpenMetrics text (`prometheus-client`'s encoder), which Prometheus
//! scrapes as it is. Label values are channel ids, queue names and fixed words, never a
//! request's own text, so the number of series stays bounded.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use crossdock_broker::{BrokerConfig, BrokerError, DepthProbe, QueueDepth};
use crossdock_db::Db;
use crossdock_db::stats::OutboxStats;
use crossdock_db::sync::{PendingSync, SyncPush, SyncResult};
use crossdock_model::{Order, StatusAction};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::app::Shared;
use crate::http::ApiError;

/// The OpenMetrics text format's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bound of each read a scrape makes (queue depths, outbox backlog; they run side by side).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Every metric name starts with `crossdock_`.
const PREFIX: &str = "crossdock";

/// Latency buckets in seconds, 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Order-age buckets in seconds: routing normally follows within milliseconds, a reroute
/// after a store's time to accept ran out within minutes.
const AGE_BUCKETS: [f64; 19] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn age_histogram() -> Histogram {
    Histogram::new(AGE_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    channel: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedLabels {
    channel: String,
    by: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    channel: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

fn channel(channel: &str) -> ChannelLabel {
    ChannelLabel {
        channel: channel.to_owned(),
    }
}

/// Who rejected an order back to its platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedBy {
    /// The router found no store that can take it.
    Router,
    /// HQ, through the API.
    Hq,
    /// The deadline guard: no store accepted it in time for the platform's deadline.
    Deadline,
}

impl RejectedBy {
    const ALL: [RejectedBy; 3] = [RejectedBy::Router, RejectedBy::Hq, RejectedBy::Deadline];

    fn label(self) -> &'static str {
        match self {
            RejectedBy::Router => "router",
            RejectedBy::Hq => "hq",
            RejectedBy::Deadline => "deadline",
        }
    }
}

/// What routing an order from the order queue came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingOutcome {
    /// Assigned to a store.
    Assigned,
    /// No store can take it: rejected back to its channel.
    Rejected,
    /// A redelivery: the order already had a store.
    AlreadyAssigned,
    /// The order was finished before it was routed (cancelled, or already rejected).
    AlreadyFinished,
    /// The order waits for HQ.
    NeedsAttention,
    /// The message names an order the database does not hold (dead-lettered).
    UnknownOrder,
    /// The routing transaction failed (requeued).
    Failed,
}

impl RoutingOutcome {
    fn label(self) -> &'static str {
        match self {
            RoutingOutcome::Assigned => "assigned",
            RoutingOutcome::Rejected => "rejected",
            RoutingOutcome::AlreadyAssigned => "already_assigned",
            RoutingOutcome::AlreadyFinished => "already_finished",
            RoutingOutcome::NeedsAttention => "needs_attention",
            RoutingOutcome::UnknownOrder => "unknown_order",
            RoutingOutcome::Failed => "failed",
        }
    }
}

/// The status sync metrics, shared with every [`MeteredPush`].
#[derive(Debug, Clone)]
struct SyncMetrics {
    attempts: Family<SyncLabels, Counter>,
    failures: Family<ChannelLabel, Counter>,
    seconds: Histograms<ChannelLabel>,
}

impl SyncMetrics {
    fn record(&self, channel_id: &str, result: &SyncResult, took: Duration) {
        let (label, failed) = match result {
            SyncResult::Delivered { .. } => ("delivered", false),
            SyncResult::Skipped { .. } => ("skipped", false),
            SyncResult::Retry { .. } => ("retry", true),
            SyncResult::Park { .. } => ("parked", true),
        };
        self.attempts
            .get_or_create(&SyncLabels {
                channel: channel_id.to_owned(),
                result: label,
            })
            .inc();
        let labels = channel(channel_id);
        if failed {
            self.failures.get_or_create(&labels).inc();
        }
        self.seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

/// A [`SyncPush`] that times each push of the pusher it wraps and counts its result:
/// `crossdock_sync_attempts_total{channel, result}`, `crossdock_sync_failures_total{channel}`
/// and `crossdock_sync_duration_seconds{channel}` (which includes waiting for the channel's
/// rate limit).
pub struct MeteredPush<P> {
    inner: P,
    metrics: SyncMetrics,
}

#[async_trait]
impl<P: SyncPush> SyncPush for MeteredPush<P> {
    async fn push(&self, order: &Order, sync: &PendingSync) -> SyncResult {
        let started = Instant::now();
        let result = self.inner.push(order, sync).await;
        self.metrics
            .record(order.order.channel.as_str(), &result, started.elapsed());
        result
    }
}

/// What a scrape read from the broker and the database.
struct Scraped {
    depths: Result<Vec<QueueDepth>, BrokerError>,
    outbox: Option<OutboxStats>,
}

/// The hub's metrics: its registry, a handle on every metric in it, and what reads the
/// queue depths at scrape time.
pub struct Metrics {
    registry: Registry,
    ingested: Family<ChannelLabel, Counter>,
    refused: Family<RefusedLabels, Counter>,
    quarantined: Family<ChannelLabel, Counter>,
    rejected: Family<RejectedLabels, Counter>,
    routing: Family<OutcomeLabel, Counter>,
    routing_seconds: Histograms<OutcomeLabel>,
    assignment_age: Histograms<ChannelLabel>,
    ingest_seconds: Histograms<ChannelLabel>,
    sync: SyncMetrics,
    probe: DepthProbe,
    queues: Vec<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("queues", &self.queues)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every metric; the per-channel counters start at 0 for each of `channels`
    /// so that they exist before the first order. `queues` are the queues whose depth a
    /// scrape reads from the broker `broker` names (connecting on the first scrape).
    pub fn new<'a>(
        channels: impl IntoIterator<Item = &'a str>,
        broker: &BrokerConfig,
        queues: Vec<String>,
    ) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);

        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "build_info",
            "The running hub's version (always 1)",
            build_info,
        );

        let ingested = Family::<ChannelLabel, Counter>::default();
        registry.register(
            "orders_ingested",
            "New orders recorded, per channel (replays and duplicates not counted)",
            ingested.clone(),
        );
        let refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "webhooks_refused",
            "Webhook requests the hub refused (answered with an error), per channel and reason kind (the error's kind, `too_large` for a body over the limit, `rate_limited` for a source over the ingest limit; code redemptions over it count as channel `codes`)",
            refused.clone(),
        );
        let quarantined = Family::<ChannelLabel, Counter>::default();
        registry.register(
            "quarantined",
            "Quarantine records written for refused requests and notified orders the hub cannot take, per channel",
            quarantined.clone(),
        );
        let rejected = Family::<RejectedLabels, Counter>::default();
        registry.register(
            "orders_rejected",
            "Orders rejected back to their platform, per channel and by whom (router: no store can take it; hq; deadline: no store accepted in time)",
            rejected.clone(),
        );
        let routing = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "routing_decisions",
            "Messages of the order queue the router handled, per outcome",
            routing.clone(),
        );
        let routing_seconds: Histograms<OutcomeLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "routing_duration",
            "Time of one routing transaction (lock, decide, record), per outcome",
            Unit::Seconds,
            routing_seconds.clone(),
        );
        let assignment_age: Histograms<ChannelLabel> = Family::new_with_constructor(age_histogram);
        registry.register_with_unit(
            "order_age_at_assignment",
            "Time from receiving an order to assigning it a store, per channel",
            Unit::Seconds,
            assignment_age.clone(),
        );
        let ingest_seconds: Histograms<ChannelLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "ingest_duration",
            "Time to handle one webhook request (verify, parse, record, answer), per channel",
            Unit::Seconds,
            ingest_seconds.clone(),
        );
        let sync = SyncMetrics {
            attempts: Family::default(),
            failures: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram),
        };
        registry.register(
            "sync_attempts",
            "Status pushes to the platforms, per channel and result (delivered, skipped, retry, parked)",
            sync.attempts.clone(),
        );
        registry.register(
            "sync_failures",
            "Status pushes that failed (to be retried, or parked for HQ), per channel",
            sync.failures.clone(),
        );
        registry.register_with_unit(
            "sync_duration",
            "Time of one status push, including the wait for the channel's rate limit, per channel",
            Unit::Seconds,
            sync.seconds.clone(),
        );

        // Creating a series shows it at 0 (the guards are dropped at once).
        for id in channels {
            let labels = channel(id);
            let _ = ingested.get_or_create(&labels);
            let _ = quarantined.get_or_create(&labels);
            let _ = sync.failures.get_or_create(&labels);
            for by in RejectedBy::ALL {
                let _ = rejected.get_or_create(&RejectedLabels {
                    channel: id.to_owned(),
                    by: by.label(),
                });
            }
        }

        Self {
            registry,
            ingested,
            refused,
            quarantined,
            rejected,
            routing,
            routing_seconds,
            assignment_age,
            ingest_seconds,
            sync,
            probe: DepthProbe::new(broker.clone(), SCRAPE_TIMEOUT),
            queues,
        }
    }

    /// A new order of `channel` was recorded.
    pub fn order_ingested(&self, channel_id: &str) {
        self.ingested.get_or_create(&channel(channel_id)).inc();
    }

    /// A webhook request of `channel` was refused (`reason`: the error's kind, or
    /// `too_large`, `rate_limited`). A code redemption over the ingest limit counts here as
    /// channel `codes`.
    pub fn webhook_refused(&self, channel_id: &str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabels {
                channel: channel_id.to_owned(),
                reason,
            })
            .inc();
    }

    /// A quarantine record of `channel` was written.
    pub fn quarantined(&self, channel_id: &str) {
        self.quarantined.get_or_create(&channel(channel_id)).inc();
    }

    /// An order of `channel` was rejected back to its platform.
    pub fn order_rejected(&self, channel_id: &str, by: RejectedBy) {
        self.rejected
            .get_or_create(&RejectedLabels {
                channel: channel_id.to_owned(),
                by: by.label(),
            })
            .inc();
    }

    /// The router handled an order message; its routing transaction took `took`.
    pub fn routing_decided(&self, outcome: RoutingOutcome, took: Duration) {
        let label = OutcomeLabel {
            outcome: outcome.label(),
        };
        self.routing.get_or_create(&label).inc();
        self.routing_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// An order of `channel` received `age` ago was just assigned a store.
    pub fn order_assigned(&self, channel_id: &str, age: chrono::TimeDelta) {
        let seconds = age.to_std().map_or(0.0, |age| age.as_secs_f64());
        self.assignment_age
            .get_or_create(&channel(channel_id))
            .observe(seconds);
    }

    /// A webhook request of `channel` (a channel of this hub) was answered after `took`.
    pub fn ingest_took(&self, channel_id: &str, took: Duration) {
        self.ingest_seconds
            .get_or_create(&channel(channel_id))
            .observe(took.as_secs_f64());
    }

    /// The API changed an order's status (`by_hq`: HQ did): counts HQ's rejections.
    pub fn status_changed(&self, order: &Order, action: &StatusAction, by_hq: bool) {
        if by_hq && matches!(action, StatusAction::Reject { .. }) {
            self.order_rejected(order.order.channel.as_str(), RejectedBy::Hq);
        }
    }

    /// `pusher`, its pushes timed and counted here.
    pub fn meter<P: SyncPush>(&self, pusher: P) -> MeteredPush<P> {
        MeteredPush {
            inner: pusher,
            metrics: self.sync.clone(),
        }
    }

    /// Reads the queue depths and the outbox backlog (side by side, each within
    /// [`SCRAPE_TIMEOUT`]) and encodes every metric.
    pub async fn render(&self, db: &Db) -> Result<String, std::fmt::Error> {
        let outbox = async {
            match tokio::time::timeout(SCRAPE_TIMEOUT, db.outbox_stats()).await {
                Ok(Ok(stats)) => Some(stats),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Metrics: the outbox backlog could not be read.");
                    None
                }
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = SCRAPE_TIMEOUT.as_millis(),
                        "Metrics: reading the outbox backlog timed out."
                    );
                    None
                }
            }
        };
        let (depths, outbox) = tokio::join!(self.probe.depths(&self.queues), outbox);
        if let Err(error) = &depths {
            tracing::warn!(%error, "Metrics: queue depths could not be read.");
        }
        self.encode(&Scraped { depths, outbox })
    }

    /// The exposition: the registry, then what the scrape read, then `# EOF`.
    fn encode(&self, scraped: &Scraped) -> Result<String, std::fmt::Error> {
        let mut live = Registry::with_prefix(PREFIX);
        let broker_up = Gauge::<i64>::default();
        live.register(
            "broker_up",
            "Whether this scrape could read the queue depths from RabbitMQ (1) or not (0)",
            broker_up.clone(),
        );
        if let Ok(depths) = &scraped.depths {
            broker_up.set(1);
            let messages = Family::<QueueLabel, Gauge>::default();
            let consumers = Family::<QueueLabel, Gauge>::default();
            for depth in depths {
                let label = QueueLabel {
                    queue: depth.queue.clone(),
                };
                messages
                    .get_or_create(&label)
                    .set(i64::from(depth.messages));
                consumers
                    .get_or_create(&label)
                    .set(i64::from(depth.consumers));
            }
            live.register(
                "queue_depth",
                "Messages ready for delivery in each queue of the topology, read at scrape time",
                messages,
            );
            live.register(
                "queue_consumers",
                "Consumers of each queue of the topology, read at scrape time",
                consumers,
            );
        }
        let database_up = Gauge::<i64>::default();
        live.register(
            "database_up",
            "Whether this scrape could read the outbox backlog from PostgreSQL (1) or not (0)",
            database_up.clone(),
        );
        if let Some(outbox) = &scraped.outbox {
            database_up.set(1);
            let pending = Gauge::<i64>::default();
            pending.set(outbox.pending);
            live.register(
                "outbox_pending",
                "Outbox rows committed and not yet published",
                pending,
            );
            let refused = Gauge::<i64>::default();
            refused.set(outbox.refused);
            live.register(
                "outbox_refused",
                "Outbox rows the broker refused, set aside for HQ",
                refused,
            );
            let oldest = FloatGauge::default();
            oldest.set(outbox.oldest_pending_seconds);
            live.register_with_unit(
                "outbox_oldest_pending_age",
                "Age of the oldest outbox row not yet published (0 when none)",
                Unit::Seconds,
                oldest,
            );
        }
        let mut out = String::with_capacity(16 * 1024);
        encode_registry(&mut out, &self.registry)?;
        encode_registry(&mut out, &live)?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

/// `GET /metrics`: every metric in the OpenMetrics text format, for Prometheus.
///
/// No authentication, as is usual for an operators' scraper on an internal network, like
/// `/healthz`. It names channels and queues and counts orders, but shows no order, customer
/// or secret. The hub serves one port, webhooks included: where that port faces the
/// internet, the proxy in front of it should not pass `/metrics` through.
pub async fn scrape(State(shared): State<Arc<Shared>>) -> Response {
    match shared.metrics.render(&shared.db).await {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(error) => {
            ApiError::internal(format_args!("encoding the metrics: {error}")).into_response()
        }
    }
}

/// Undoes the text format's escaping of a label value (`\\`, `\"`, `\n`).
#[cfg(test)]
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_parse::{Scrape, Value};

    fn parse(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("exposition parses")
    }

    fn value(value: &Value) -> f64 {
        match value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("not a single value: {other:?}"),
        }
    }

    fn metrics(broker: &BrokerConfig) -> Metrics {
        Metrics::new(["own_app", "uber_eats"], broker, vec!["t.orders".into()])
    }

    #[test]
    fn the_exposition_round_trips_through_a_parser_with_label_values_escaped() {
        let metrics = metrics(&BrokerConfig::default());
        // Label values a parser must get back exactly: quotes, backslashes, a newline.
        let odd = "say \"hi\" C:\\path\nnext";
        metrics.order_ingested("own_app");
        metrics.order_ingested("own_app");
        metrics.order_ingested(odd);
        metrics.webhook_refused("uber_eats", "unauthorized");
        metrics.routing_decided(RoutingOutcome::Assigned, Duration::from_millis(3));
        metrics.order_assigned("own_app", chrono::TimeDelta::milliseconds(40));

        let text = metrics
            .encode(&Scraped {
                depths: Ok(vec![QueueDepth {
                    queue: "t.orders".into(),
                    messages: 7,
                    consumers: 1,
                }]),
                outbox: Some(OutboxStats {
                    pending: 2,
                    refused: 1,
                    oldest_pending_seconds: 0.5,
                }),
            })
            .expect("encodes");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains(r#"channel="say \"hi\" C:\\path\nnext""#),
            "escaped in the text: {text}"
        );
        let scrape = parse(&text);
        let find = |name: &str, label: &str, wanted: &str| {
            scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == name && s.labels.get(label).map(unescape).as_deref() == Some(wanted)
                })
                .unwrap_or_else(|| panic!("no {name}{{{label}={wanted:?}}} in {text}"))
        };
        assert_eq!(
            value(&find("crossdock_orders_ingested_total", "channel", "own_app").value),
            2.0
        );
        assert_eq!(
            value(&find("crossdock_orders_ingested_total", "channel", odd).value),
            1.0
        );
        assert_eq!(
            value(&find("crossdock_orders_ingested_total", "channel", "uber_eats").value),
            0.0
        );
        assert_eq!(
            value(&find("crossdock_webhooks_refused_total", "reason", "unauthorized").value),
            1.0
        );
        assert_eq!(
            value(&find("crossdock_build_info", "version", env!("CARGO_PKG_VERSION")).value),
            1.0
        );
        assert_eq!(
            value(&find("crossdock_queue_depth", "queue", "t.orders").value),
            7.0
        );
        assert_eq!(
            value(&find("crossdock_queue_consumers", "queue", "t.orders").value),
            1.0
        );
        assert_eq!(
            value(
                &find(
                    "crossdock_routing_duration_seconds_count",
                    "outcome",
                    "assigned"
                )
                .value
            ),
            1.0
        );
        let Value::Histogram(buckets) =
            &find("crossdock_routing_duration_seconds", "outcome", "assigned").value
        else {
            panic!("routing duration is a histogram: {text}");
        };
        let at = |le: f64| {
            buckets
                .iter()
                .find(|b| b.less_than == le)
                .map(|b| b.count)
                .unwrap_or_else(|| panic!("no bucket {le} in {buckets:?}"))
        };
        assert_eq!((at(0.0025), at(0.005), at(f64::INFINITY)), (0.0, 1.0, 1.0));
        let plain = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .map(|s| value(&s.value))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
        };
        assert_eq!(plain("crossdock_broker_up"), 1.0);
        assert_eq!(plain("crossdock_database_up"), 1.0);
        assert_eq!(plain("crossdock_outbox_pending"), 2.0);
        assert_eq!(plain("crossdock_outbox_refused"), 1.0);
        assert_eq!(plain("crossdock_outbox_oldest_pending_age_seconds"), 0.5);
    }

    #[tokio::test]
    async fn a_dead_broker_makes_the_scrape_quick_with_the_depths_left_out() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("address").port();
        drop(closed);
        let broker = BrokerConfig {
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            ..BrokerConfig::default()
        };
        let metrics = metrics(&broker);
        let started = Instant::now();
        let depths = metrics.probe.depths(&metrics.queues).await;
        assert!(depths.is_err(), "{depths:?}");
        assert!(started.elapsed() <= SCRAPE_TIMEOUT + Duration::from_millis(500));
        let text = metrics
            .encode(&Scraped {
                depths,
                outbox: None,
            })
            .expect("encodes");
        let scrape = parse(&text);
        let names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
        assert!(names.contains(&"crossdock_broker_up"), "{text}");
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric == "crossdock_broker_up" && value(&s.value) == 0.0),
            "{text}"
        );
        assert!(!names.contains(&"crossdock_queue_depth"), "{text}");
        assert!(!names.contains(&"crossdock_outbox_pending"), "{text}");
    }
}
