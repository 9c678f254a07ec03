//! Building blocks for platform simulators.
//!
//! Each adapter crate ships a simulator of its platform: an HTTP server that signs and
//! sends webhooks, serves what the platform serves, records every call the hub makes
//! ([`CallLog`]) and can be told to misbehave ([`Faults`]). Tests, the demo and the
//! benchmark all drive the hub through these simulators. Each also tells whoever listens
//! when it took a hub call that changed an order's status ([`StatusFeed`]).

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use crossdock_model::Status;
use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// One call the hub made to a simulated platform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedCall {
    /// Order of arrival, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    /// Request headers, with credentials replaced by `<redacted>`.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON where it parses as JSON, otherwise as a string.
    pub body: serde_json::Value,
    /// The status the simulator answered.
    pub answered: u16,
}

/// Locks a mutex, taking it over even if a thread panicked while holding it: simulator
/// state stays readable after a failed test thread.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The record of calls a simulator received, readable by tests.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<RecordedCall>>>,
    changed: Arc<Notify>,
}

impl CallLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a call. Credentials are redacted ([`crate::is_credential_header`]).
    pub fn record(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        answered: u16,
    ) {
        let headers = headers
            .iter()
            .map(|(name, value)| {
                let name = name.as_str().to_ascii_lowercase();
                let value = if crate::is_credential_header(&name) {
                    "<redacted>".to_owned()
                } else {
                    value.to_str().unwrap_or("<binary>").to_owned()
                };
                (name, value)
            })
            .collect();
        let body = serde_json::from_slice(body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        });
        let mut calls = lock(&self.calls);
        let seq = calls.len() as u64 + 1;
        calls.push(RecordedCall {
            seq,
            at: Utc::now(),
            method: method.to_owned(),
            path: path.to_owned(),
            headers,
            body,
            answered,
        });
        drop(calls);
        self.changed.notify_waiters();
    }

    pub fn all(&self) -> Vec<RecordedCall> {
        lock(&self.calls).clone()
    }

    /// Calls whose path contains `fragment`.
    pub fn matching(&self, fragment: &str) -> Vec<RecordedCall> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.path.contains(fragment))
            .cloned()
            .collect()
    }

    /// Waits until `done` holds for the record, or `timeout` passes; returns the record
    /// either way, so the caller can assert on it and print it.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[RecordedCall]) -> bool,
    ) -> Vec<RecordedCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            {
                let calls = lock(&self.calls);
                if done(&calls) {
                    return calls.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.all();
            }
        }
    }
}

/// A status the platform heard from the hub: the order, the status the hub's call set (in
/// the unified model), and when the simulator took the call.
#[derive(Debug, Clone)]
pub struct Heard {
    /// The platform's id of the order: the channel order id the hub's order carries.
    pub external_order_id: String,
    /// What the simulator's status accessor reads for the order right after the call.
    pub status: Status,
    /// When the simulator took the call (decided to answer it with success).
    pub at: std::time::Instant,
}

impl Heard {
    /// The order and its status, to compare in one go.
    pub fn into_order_status(self) -> (String, Status) {
        (self.external_order_id, self.status)
    }
}

/// How long [`next_heard`] waits: a hub call the simulator should already have taken.
pub const HEARD_PATIENCE: Duration = Duration::from_secs(10);

/// The next status a [`StatusFeed`] listener heard, waiting at most [`HEARD_PATIENCE`];
/// `None` when none came in time (or the simulator is gone).
pub async fn next_heard(listener: &mut mpsc::UnboundedReceiver<Heard>) -> Option<Heard> {
    tokio::time::timeout(HEARD_PATIENCE, listener.recv())
        .await
        .ok()
        .flatten()
}

/// The statuses a simulator heard, for whoever listens (the benchmark): each listener gets
/// every one heard after it subscribed, in order. Nothing is kept when no one listens.
///
/// A simulator tells its feed when it takes a hub call (answers it with success) that
/// changes the order's status as the platform knows it. Calls it refuses (a scripted fault,
/// a bad signature or token, a 4xx or a business error) are not heard, and neither is a
/// call that leaves the status as it was (a retried push): each change is heard once, at
/// the first call that made it. What the platform does on its own (a customer's
/// cancellation, a courier, a deadline) is not heard either.
#[derive(Debug, Clone, Default)]
pub struct StatusFeed {
    listeners: Arc<Mutex<Vec<mpsc::UnboundedSender<Heard>>>>,
}

impl StatusFeed {
    /// A new listener: it gets every status heard from now on, in order, for as long as it
    /// keeps the receiver.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Heard> {
        let (sender, receiver) = mpsc::unbounded_channel();
        lock(&self.listeners).push(sender);
        receiver
    }

    /// Tells every listener (dropping listeners that went away).
    pub fn heard(&self, external_order_id: &str, status: Status) {
        let mut listeners = lock(&self.listeners);
        if listeners.is_empty() {
            return;
        }
        // Taken under the lock, so that each listener's times never go backwards.
        let heard = Heard {
            external_order_id: external_order_id.to_owned(),
            status,
            at: std::time::Instant::now(),
        };
        listeners.retain(|listener| listener.send(heard.clone()).is_ok());
    }
}

/// A misbehaviour to apply to the next matching call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Answer with this status instead of the normal answer (e.g. 429, 500).
    pub status: Option<u16>,
    /// Send `Retry-After` with this many seconds (with a 429).
    pub retry_after_s: Option<u64>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
}

/// A simulator's clock for its own rules (acceptance deadlines, rate-limit windows, token
/// lifetimes): real time plus an offset a test advances, so that a deadline passes without
/// the test sleeping. Times the simulator sends to the hub (signatures, timestamps) stay on
/// the real clock, as the hub checks them against its own.
#[derive(Debug, Default)]
pub struct SimClock {
    offset_ms: std::sync::atomic::AtomicU64,
}

impl SimClock {
    fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// The simulator's monotonic now.
    pub fn now(&self) -> std::time::Instant {
        std::time::Instant::now() + self.offset()
    }

    /// The simulator's wall-clock now.
    pub fn utc(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }

    /// How long since `earlier` (an instant of this clock).
    pub fn since(&self, earlier: std::time::Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms
            .fetch_add(by, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A token-bucket rate limit, as platforms publish theirs: `per_second` sustained, `burst`
/// at once. Time comes from the caller (its [`SimClock`]).
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    state: Mutex<(f64, std::time::Instant)>,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(per_second: f64, burst: f64, now: std::time::Instant) -> Self {
        Self {
            per_second,
            burst,
            state: Mutex::new((burst, now)),
        }
    }

    /// Takes one request; `false` when none is left at `now`.
    pub fn take(&self, now: std::time::Instant) -> bool {
        let mut state = lock(&self.state);
        let (tokens, at) = *state;
        let refill = now.saturating_duration_since(at).as_secs_f64() * self.per_second;
        let tokens = (tokens + refill).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            true
        } else {
            *state = (tokens, now);
            false
        }
    }
}

/// Scripted faults. Each call to [`Faults::next`] (or [`Faults::apply`]) takes the next
/// queued fault ([`Faults::push`]: the next `n` calls); with none queued, a fault held for a
/// while ([`Faults::hold`]: every call until a time, as a platform's outage lasts) applies
/// until that time passes. [`Faults::played`] counts what [`Faults::apply`] played.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    queue: Arc<Mutex<VecDeque<Fault>>>,
    held: Arc<Mutex<Option<(Fault, std::time::Instant)>>>,
    played: Arc<Mutex<FaultsPlayed>>,
}

/// What [`Faults::apply`] played: answers by the status it put on them, and calls it held
/// back (delayed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultsPlayed {
    pub answers: BTreeMap<u16, u64>,
    pub delayed: u64,
}

impl Faults {
    /// Applies `fault` to the next `times` calls.
    pub fn push(&self, fault: Fault, times: usize) {
        let mut queue = lock(&self.queue);
        for _ in 0..times {
            queue.push_back(fault.clone());
        }
    }

    /// Applies `fault` to every call until `until` (after the queued ones), replacing any
    /// fault held before: the platform answers so for a while, then recovers on its own.
    pub fn hold(&self, fault: Fault, until: std::time::Instant) {
        *lock(&self.held) = Some((fault, until));
    }

    /// The fault a call gets now, if any: the next queued one, else the held one while it
    /// holds.
    pub fn next(&self) -> Option<Fault> {
        if let Some(fault) = lock(&self.queue).pop_front() {
            return Some(fault);
        }
        let mut held = lock(&self.held);
        match held.as_ref() {
            Some((fault, until)) if std::time::Instant::now() < *until => Some(fault.clone()),
            Some(_) => {
                *held = None;
                None
            }
            None => None,
        }
    }

    /// Takes the next fault, if any, and plays it: waits its delay, then, if it sets a
    /// status, returns the answer to send instead of the normal one, built by `answer` in
    /// the platform's error shape (the fault's status is set on it whatever `answer` chose)
    /// and with `Retry-After` added when the fault has one.
    /// `None`: answer normally (no fault, or a fault that only delays).
    pub async fn apply(&self, answer: impl FnOnce(StatusCode) -> Response) -> Option<Response> {
        let fault = self.next()?;
        {
            let mut played = lock(&self.played);
            if fault.delay.is_some() {
                played.delayed += 1;
            }
            if let Some(status) = fault.status {
                *played.answers.entry(status).or_default() += 1;
            }
        }
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        let status =
            StatusCode::from_u16(fault.status?).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = answer(status);
        *response.status_mut() = status;
        if let Some(seconds) = fault.retry_after_s {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
        Some(response)
    }

    /// Drops the queued faults and the held one: the platform answers normally again.
    pub fn clear(&self) {
        lock(&self.queue).clear();
        *lock(&self.held) = None;
    }

    /// What [`Faults::apply`] played so far.
    pub fn played(&self) -> FaultsPlayed {
        lock(&self.played).clone()
    }
}

/// A running simulator HTTP server.
#[derive(Debug)]
pub struct SimServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Serves `router` on `addr` (port 0 picks a free port) until stopped or dropped.
    pub async fn serve(router: axum::Router, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::warn!(%error, "Simulator server stopped with an error.");
            }
        });
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// `http://host:port`. A server bound to an unspecified address (`0.0.0.0`, `[::]`) is
    /// shown as loopback, an address a client can call.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}")
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A platform-neutral description of an order for a simulator to place. Each simulator
/// turns it into its platform's own payload (field names, money units, signature).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SampleOrder {
    /// The platform's id of the store (the channel store id of the chain's fixtures);
    /// `None` for address-routed orders.
    pub store_ref: Option<String>,
    /// ISO-4217 code.
    pub currency: String,
    pub fulfillment: SampleFulfillment,
    pub customer_name: String,
    pub customer_phone: Option<String>,
    pub items: Vec<SampleItem>,
    pub notes: Option<String>,
    pub delivery_fee_minor: i64,
    pub tip_minor: i64,
    /// Discount in minor units (positive), funded by the platform.
    pub discount_minor: i64,
    pub scheduled_for: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SampleFulfillment {
    Delivery {
        lat: f64,
        lng: f64,
        address_lines: Vec<String>,
        city: String,
        postcode: String,
        country: String,
    },
    Pickup,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SampleItem {
    /// The chain's item code (PLU).
    pub plu: String,
    pub name: String,
    pub quantity: i64,
    /// One unit, without modifiers, in minor units.
    pub unit_price_minor: i64,
    pub notes: Option<String>,
    #[serde(default)]
    pub modifiers: Vec<SampleItem>,
}

// The sums below saturate rather than overflow: samples may be typed by people
// (`POST /_sim/orders`), and a simulator must not panic on a silly price.

impl SampleItem {
    /// One unit with its modifiers: unit + Σ modifier (unit with its modifiers) × quantity,
    /// recursively (saturating).
    pub fn unit_with_modifiers_minor(&self) -> i64 {
        self.modifiers
            .iter()
            .fold(self.unit_price_minor, |sum, modifier| {
                sum.saturating_add(
                    modifier
                        .unit_with_modifiers_minor()
                        .saturating_mul(modifier.quantity),
                )
            })
    }
}

impl SampleOrder {
    /// Σ over items of unit with modifiers × quantity (saturating).
    pub fn subtotal_minor(&self) -> i64 {
        self.items.iter().fold(0_i64, |sum, item| {
            sum.saturating_add(
                item.unit_with_modifiers_minor()
                    .saturating_mul(item.quantity),
            )
        })
    }

    /// What the customer pays: subtotal − discount + delivery fee + tip (no separate tax;
    /// saturating).
    pub fn total_minor(&self) -> i64 {
        self.subtotal_minor()
            .saturating_sub(self.discount_minor)
            .saturating_add(self.delivery_fee_minor)
            .saturating_add(self.tip_minor)
    }
}

/// What the hub answered to a webhook the simulator sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    pub status: u16,
    pub body: String,
}

/// The answer a simulator records for a webhook it lost on the way (placed with a
/// `place_order_lost`): the hub never received it, as with a transport failure (status 0).
/// The platform's retry (the simulator's resend) delivers it later.
pub fn lost_on_the_way() -> WebhookAnswer {
    WebhookAnswer {
        status: 0,
        body: "lost on the way: the hub never received it".to_owned(),
    }
}

/// Posts a webhook and returns the hub's answer. Transport errors come back as status 0
/// with the error text, so a simulator's caller can count them as not acknowledged.
pub async fn post_webhook(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    content_type: &str,
    body: Vec<u8>,
) -> WebhookAnswer {
    let mut request = http
        .post(url)
        .header("content-type", content_type)
        .timeout(Duration::from_secs(30))
        .body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            WebhookAnswer { status, body }
        }
        Err(error) => WebhookAnswer {
            status: 0,
            body: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bucket_allows_its_burst_then_its_rate() {
        let clock = SimClock::default();
        let bucket = TokenBucket::new(2.0, 3.0, clock.now());
        assert!((0..3).all(|_| bucket.take(clock.now())), "the burst");
        assert!(!bucket.take(clock.now()), "then nothing");
        clock.advance(Duration::from_millis(500));
        assert!(
            bucket.take(clock.now()),
            "one more after half a second at 2/s"
        );
        assert!(!bucket.take(clock.now()));
        clock.advance(Duration::from_secs(60));
        assert!(
            (0..3).all(|_| bucket.take(clock.now())),
            "never more than the burst"
        );
        assert!(!bucket.take(clock.now()));
    }

    #[test]
    fn the_sim_clock_moves_only_forward_and_only_when_told() {
        let clock = SimClock::default();
        let start = clock.now();
        let wall = clock.utc();
        clock.advance(Duration::from_secs(90));
        assert!(clock.since(start) >= Duration::from_secs(90));
        assert!(clock.utc() - wall >= chrono::TimeDelta::seconds(90));
        assert!(clock.since(clock.now() + Duration::from_secs(1)).is_zero());
    }

    #[tokio::test]
    async fn the_call_log_redacts_credentials_and_wakes_waiters() {
        let log = CallLog::new();
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move {
                log.wait_until(Duration::from_secs(5), |c| c.len() == 2)
                    .await
            })
        };
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().expect("header"));
        headers.insert("x-flyt-api-key", "k-123".parse().expect("header"));
        headers.insert("x-request-id", "r1".parse().expect("header"));
        log.record("POST", "/a", &headers, br#"{"x":1}"#, 200);
        log.record("POST", "/b", &HeaderMap::new(), b"plain", 500);
        let calls = waiter.await.expect("join");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].headers["authorization"], "<redacted>");
        assert_eq!(calls[0].headers["x-flyt-api-key"], "<redacted>");
        assert_eq!(calls[0].headers["x-request-id"], "r1");
        assert_eq!(calls[0].body, serde_json::json!({"x": 1}));
        assert_eq!(calls[1].body, serde_json::json!("plain"));
        assert_eq!(calls[1].seq, 2);
        assert_eq!(log.matching("/b").len(), 1);
    }

    #[tokio::test]
    async fn the_status_feed_tells_each_listener_what_was_heard_after_it_subscribed() {
        let feed = StatusFeed::default();
        // No listener: nothing is kept and nothing fails.
        feed.heard("before-anyone", Status::Accepted);

        let mut first = feed.subscribe();
        let started = std::time::Instant::now();
        feed.heard("A-1", Status::Accepted);
        let dropped = feed.subscribe();
        let mut second = feed.clone().subscribe();
        drop(dropped);
        feed.heard("A-1", Status::Ready);
        feed.heard("B-2", Status::Rejected);

        let next = |receiver: &mut mpsc::UnboundedReceiver<Heard>| {
            let heard = receiver.try_recv().expect("a status was heard");
            (heard.external_order_id, heard.status, heard.at)
        };
        let (id, status, first_at) = next(&mut first);
        assert_eq!((id.as_str(), status), ("A-1", Status::Accepted));
        assert!(first_at >= started);
        let (id, status, ready_at) = next(&mut first);
        assert_eq!((id.as_str(), status), ("A-1", Status::Ready));
        assert!(ready_at >= first_at, "in order");
        let (id, status, _) = next(&mut first);
        assert_eq!((id.as_str(), status), ("B-2", Status::Rejected));
        assert!(
            first.try_recv().is_err(),
            "nothing heard before it subscribed"
        );

        // A listener that subscribed later (through a clone) hears only what came after.
        let (id, status, _) = next(&mut second);
        assert_eq!((id.as_str(), status), ("A-1", Status::Ready));
        let (id, status, _) = next(&mut second);
        assert_eq!((id.as_str(), status), ("B-2", Status::Rejected));
        assert!(second.try_recv().is_err());
        assert_eq!(
            lock(&feed.listeners).len(),
            2,
            "the dropped listener was let go"
        );

        // Listeners that all went away leave nothing behind.
        drop(first);
        drop(second);
        feed.heard("C-3", Status::Cancelled);
        assert!(lock(&feed.listeners).is_empty());

        // A listener waits for what is heard from another task.
        let mut waiting = feed.subscribe();
        let teller = feed.clone();
        let task = tokio::spawn(async move { teller.heard("D-4", Status::PickedUp) });
        let heard = tokio::time::timeout(Duration::from_secs(5), waiting.recv())
            .await
            .expect("heard in time")
            .expect("the feed is still there");
        assert_eq!(heard.external_order_id, "D-4");
        assert_eq!(heard.status, Status::PickedUp);
        task.await.expect("join");
    }

    fn sample_item(unit: i64, quantity: i64, modifiers: Vec<SampleItem>) -> SampleItem {
        SampleItem {
            plu: "P".to_owned(),
            name: "p".to_owned(),
            quantity,
            unit_price_minor: unit,
            notes: None,
            modifiers,
        }
    }

    fn sample_order(items: Vec<SampleItem>) -> SampleOrder {
        SampleOrder {
            store_ref: None,
            currency: "USD".to_owned(),
            fulfillment: SampleFulfillment::Pickup,
            customer_name: "Ada".to_owned(),
            customer_phone: None,
            items,
            notes: None,
            delivery_fee_minor: 299,
            tip_minor: 100,
            discount_minor: 50,
            scheduled_for: None,
        }
    }

    #[test]
    fn sample_sums_follow_the_modifier_tree() {
        // (1000 + (150 + 50 × 1) × 2) × 3 = 4200, plus 500.
        let pizza = sample_item(
            1000,
            3,
            vec![sample_item(150, 2, vec![sample_item(50, 1, vec![])])],
        );
        assert_eq!(pizza.unit_with_modifiers_minor(), 1400);
        let order = sample_order(vec![pizza, sample_item(500, 1, vec![])]);
        assert_eq!(order.subtotal_minor(), 4700);
        assert_eq!(order.total_minor(), 4700 - 50 + 299 + 100);
    }

    #[test]
    fn huge_sample_prices_saturate_instead_of_panicking() {
        let huge = sample_item(i64::MAX, 2, vec![sample_item(i64::MAX, i64::MAX, vec![])]);
        assert_eq!(huge.unit_with_modifiers_minor(), i64::MAX);
        let mut order = sample_order(vec![huge.clone(), huge]);
        assert_eq!(order.subtotal_minor(), i64::MAX);
        assert_eq!(order.total_minor(), i64::MAX);
        order.items = vec![sample_item(i64::MIN, 2, vec![])];
        order.discount_minor = i64::MAX;
        assert_eq!(order.subtotal_minor(), i64::MIN);
        // Saturated at the bottom by the discount, then the fee and tip are added.
        assert_eq!(order.total_minor(), i64::MIN + 299 + 100);
    }

    #[test]
    fn base_urls_show_loopback_for_unspecified_addresses() {
        let url = |addr: &str| {
            SimServer {
                addr: addr.parse().expect("address"),
                shutdown: None,
                task: None,
            }
            .base_url()
        };
        assert_eq!(url("0.0.0.0:8081"), "http://127.0.0.1:8081");
        assert_eq!(url("[::]:8081"), "http://[::1]:8081");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80");
    }

    #[tokio::test]
    async fn applied_faults_delay_and_answer_with_retry_after() {
        let faults = Faults::default();
        let answer = |status: StatusCode| {
            axum::response::IntoResponse::into_response((StatusCode::OK, format!("fault {status}")))
        };
        assert!(faults.apply(answer).await.is_none(), "no fault scripted");
        faults.push(
            Fault {
                status: Some(429),
                retry_after_s: Some(7),
                delay: None,
            },
            1,
        );
        faults.push(
            Fault {
                status: None,
                retry_after_s: None,
                delay: Some(Duration::from_millis(50)),
            },
            1,
        );
        let response = faults.apply(answer).await.expect("a fault answer");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "7");
        let started = std::time::Instant::now();
        assert!(faults.apply(answer).await.is_none(), "a delay only");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(faults.next().is_none());
    }

    #[tokio::test]
    async fn a_held_fault_applies_until_its_time_after_the_queued_ones() {
        let faults = Faults::default();
        let rate_limited = Fault {
            status: Some(429),
            retry_after_s: Some(2),
            delay: None,
        };
        let failing = Fault {
            status: Some(500),
            retry_after_s: None,
            delay: None,
        };
        faults.hold(
            rate_limited.clone(),
            std::time::Instant::now() + Duration::from_secs(60),
        );
        faults.push(failing.clone(), 1);
        assert_eq!(faults.next(), Some(failing.clone()), "the queued one first");
        assert_eq!(
            faults.next(),
            Some(rate_limited.clone()),
            "then the held one"
        );
        assert_eq!(faults.next(), Some(rate_limited.clone()), "again and again");
        let answer =
            |_: StatusCode| axum::response::IntoResponse::into_response((StatusCode::OK, "normal"));
        let response = faults.apply(answer).await.expect("a fault answer");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "2");
        // A hold that has run out lets calls through; a new hold replaces the old one.
        faults.hold(failing.clone(), std::time::Instant::now());
        assert_eq!(faults.next(), None, "a hold ends at its time");
        faults.hold(
            failing.clone(),
            std::time::Instant::now() + Duration::from_secs(60),
        );
        assert!(faults.apply(answer).await.is_some());
        faults.clear();
        assert!(faults.apply(answer).await.is_none(), "cleared");
        let played = faults.played();
        assert_eq!(played.answers.get(&429), Some(&1));
        assert_eq!(played.answers.get(&500), Some(&1));
        assert_eq!(played.delayed, 0);
    }

    #[test]
    fn faults_are_taken_in_order() {
        let faults = Faults::default();
        faults.push(
            Fault {
                status: Some(429),
                retry_after_s: Some(1),
                delay: None,
            },
            2,
        );
        assert_eq!(faults.next().and_then(|f| f.status), Some(429));
        assert!(faults.next().is_some());
        assert!(faults.next().is_none());
    }
}
