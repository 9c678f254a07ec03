//! The per-source rate limit of ingest: webhooks (`/webhooks/{channel}[/{event}]`) and code
//! redemptions (`POST /api/v1/codes/redeem`).
//!
//! Each (channel, source address) pair has its own bucket (`http.ingest_per_second`
//! sustained, `http.ingest_burst` at once; redemptions count under the word `codes`, paths
//! naming no channel of the hub under `unknown`). The source is the TCP peer, except for a
//! peer listed in `http.trusted_proxies`, whose `X-Forwarded-For` names it (see
//! [`source_ip`]). A request over the limit answers 429 with `Retry-After` before its body
//! is read: it is counted (`crossdock_webhooks_refused_total{reason="rate_limited"}`), never
//! quarantined (a flood must not fill the database), and logged at most once a second per
//! bucket.
//!
//! Buckets of sources that went quiet are dropped every [`SWEEP_EVERY`] (and sooner when
//! more than [`SWEEP_ABOVE`] are held), so the memory stays bounded by the sources seen in
//! the last few seconds.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ApiError;
use crate::app::Shared;
use crate::config::HttpSettings;
use crate::metrics::Metrics;

/// How often buckets of quiet sources are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Buckets held above which they are swept at once (checked every [`LEN_CHECK_EVERY`]
/// requests).
pub const SWEEP_ABOVE: usize = 100_000;
const LEN_CHECK_EVERY: u64 = 1024;

/// The bucket of a request that names no channel of this hub.
const UNKNOWN: &str = "unknown";
/// The bucket of code redemptions.
const CODES: &str = "codes";

/// What one bucket is for: a channel (or `codes`, `unknown`) and a source address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    scope: Arc<str>,
    source: IpAddr,
}

/// The ingest limiter of one HTTP surface.
pub struct IngestLimiter {
    limiter: DefaultKeyedRateLimiter<Key>,
    /// One warning a second per bucket.
    warnings: DefaultKeyedRateLimiter<Key>,
    trusted: Vec<IpAddr>,
    /// The scopes a request may be counted under (the hub's channels, `codes`, `unknown`),
    /// each allocated once.
    scopes: HashSet<Arc<str>>,
    started: Instant,
    last_sweep_ms: AtomicU64,
    checks: AtomicU64,
}

/// A request over the limit: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After`'s value: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let whole = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            whole + 1
        } else {
            whole
        };
        rounded.max(1)
    }
}

/// The quota of `per_second` sustained and `burst` at once; the interval between two
/// requests is kept within 1 ns and one day.
pub fn quota(per_second: f64, burst: NonZeroU32) -> Quota {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    let interval = if per_second.is_finite() && per_second > 0.0 {
        Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(DAY)
    } else {
        DAY
    };
    let interval = interval.clamp(Duration::from_nanos(1), DAY);
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl IngestLimiter {
    pub fn new<'a>(settings: &HttpSettings, channels: impl IntoIterator<Item = &'a str>) -> Self {
        let mut scopes: HashSet<Arc<str>> = channels.into_iter().map(Arc::from).collect();
        scopes.insert(Arc::from(UNKNOWN));
        scopes.insert(Arc::from(CODES));
        Self {
            limiter: RateLimiter::keyed(quota(settings.ingest_per_second, settings.ingest_burst)),
            warnings: RateLimiter::keyed(Quota::per_second(NonZeroU32::MIN)),
            trusted: settings.trusted_proxies.clone(),
            scopes,
            started: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        }
    }

    /// The scope `name` is counted under: itself when it is a channel of the hub (or
    /// `codes`), `unknown` otherwise, so a path's text never makes a bucket of its own.
    fn scope(&self, name: &str) -> Arc<str> {
        match self.scopes.get(name) {
            Some(scope) => scope.clone(),
            None => self
                .scopes
                .get(UNKNOWN)
                .cloned()
                .unwrap_or_else(|| Arc::from(UNKNOWN)),
        }
    }

    /// Counts one request of `source` under `scope`; `Err` when it is over the limit. The
    /// returned scope is the one the request was counted under.
    pub fn check(&self, scope: &str, source: IpAddr) -> (Arc<str>, Result<(), Limited>) {
        self.upkeep();
        let key = Key {
            scope: self.scope(scope),
            source,
        };
        let result = self.limiter.check_key(&key).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(self.limiter.clock().now()),
        });
        if let Err(limited) = &result
            && self.warnings.check_key(&key).is_ok()
        {
            tracing::warn!(
                scope = %key.scope,
                source = %key.source,
                retry_after_s = limited.retry_after_secs(),
                "Ingest rate limit reached; requests of this source are refused with 429 (logged at most once a second)."
            );
        }
        (key.scope, result)
    }

    /// How many buckets are held (approximate while requests run).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    /// Drops the buckets of quiet sources every [`SWEEP_EVERY`], or at once when more than
    /// [`SWEEP_ABOVE`] are held.
    fn upkeep(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= u64::try_from(SWEEP_EVERY.as_millis()).unwrap_or(0);
        let crowded = || {
            self.checks.fetch_add(1, Ordering::Relaxed) % LEN_CHECK_EVERY == LEN_CHECK_EVERY - 1
                && self.limiter.len() > SWEEP_ABOVE
        };
        if (due || crowded())
            && self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep();
        }
    }

    /// Drops the buckets that are full again (their source has been quiet long enough).
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.warnings.retain_recent();
        self.warnings.shrink_to_fit();
    }
}

/// The source of a request that reached the hub from `peer`: the peer itself, unless it is
/// one of the `trusted` proxies; then the rightmost address in `X-Forwarded-For` (every
/// such header, in order) that is not itself a trusted proxy. Walking from the right, a
/// value that is no address ends the walk at the trusted hop that added it, so a client
/// cannot choose its own bucket by sending garbage; an untrusted peer's header is ignored.
pub fn source_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .collect();
    let mut source = peer;
    for hop in hops.into_iter().rev() {
        match parse_hop(hop) {
            Some(ip) if trusted.contains(&ip) => source = ip,
            Some(ip) => return ip,
            None => return source,
        }
    }
    source
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`,
/// `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse::<IpAddr>().ok())
        })
        .map(|ip| ip.to_canonical())
}

/// What a limited route counts its requests under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The channel named by the route's `{channel}`.
    Webhook,
    /// Code redemptions.
    Codes,
}

/// The middleware's state: the limiter, the route's scope, and where to count refusals.
#[derive(Clone)]
pub struct Gate {
    pub limiter: Arc<IngestLimiter>,
    pub shared: Arc<Shared>,
    pub scope: Scope,
}

/// Middleware: refuses a request over its source's limit with 429 before anything else
/// (the body is not read).
pub async fn gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    // Served without the peer's address (`into_make_service` instead of
    // `into_make_service_with_connect_info`), every request shares one bucket per scope.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    let source = source_ip(peer, request.headers(), &gate.limiter.trusted);
    let (mut parts, body) = request.into_parts();
    let name = match gate.scope {
        Scope::Codes => CODES.to_owned(),
        Scope::Webhook => channel_param(&mut parts)
            .await
            .unwrap_or_else(|| UNKNOWN.to_owned()),
    };
    let request = Request::from_parts(parts, body);
    match gate.limiter.check(&name, source) {
        (_, Ok(())) => next.run(request).await,
        (scope, Err(limited)) => refuse(&gate.shared.metrics, &scope, limited),
    }
}

/// The channel named by a webhook route's `{channel}` (percent-decoded, as the handler
/// reads it).
async fn channel_param(parts: &mut Parts) -> Option<String> {
    let params = RawPathParams::from_request_parts(parts, &()).await.ok()?;
    params
        .iter()
        .find(|(name, _)| *name == "channel")
        .map(|(_, value)| value.to_owned())
}

/// The 429 answer, counted.
fn refuse(metrics: &Metrics, scope: &str, limited: Limited) -> Response {
    metrics.webhook_refused(scope, "rate_limited");
    let seconds = limited.retry_after_secs();
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from this source; retry in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                "x-forwarded-for",
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    fn settings(per_second: f64, burst: u32, trusted: &[&str]) -> HttpSettings {
        HttpSettings {
            bind: "127.0.0.1:0".parse().expect("address"),
            public_url: "http://127.0.0.1".into(),
            body_limit_bytes: 1024,
            ingest_per_second: per_second,
            ingest_burst: NonZeroU32::new(burst).expect("non-zero"),
            trusted_proxies: trusted.iter().map(|t| ip(t)).collect(),
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_source_whatever_it_forwards() {
        let trusted = [ip("10.0.0.1")];
        let spoofed = forwarded(&["203.0.113.7", "10.0.0.1"]);
        assert_eq!(
            source_ip(ip("198.51.100.9"), &spoofed, &trusted),
            ip("198.51.100.9")
        );
        assert_eq!(
            source_ip(ip("198.51.100.9"), &spoofed, &[]),
            ip("198.51.100.9")
        );
        assert_eq!(
            source_ip(ip("198.51.100.9"), &HeaderMap::new(), &trusted),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_rightmost_untrusted_forwarded_address() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client claims to be 1.1.1.1; the outer proxy appended the real peer.
        let headers = forwarded(&["1.1.1.1, 203.0.113.7", "10.0.0.2"]);
        assert_eq!(
            source_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("203.0.113.7")
        );
        // Ports and brackets, and IPv4-mapped IPv6 addresses.
        let headers = forwarded(&["[2001:db8::1]:443"]);
        assert_eq!(
            source_ip(ip("::ffff:10.0.0.1"), &headers, &trusted),
            ip("2001:db8::1")
        );
        let headers = forwarded(&["203.0.113.8:5000"]);
        assert_eq!(
            source_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("203.0.113.8")
        );
    }

    #[test]
    fn a_trusted_proxy_without_a_usable_forwarded_address_is_the_source() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            source_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Only trusted hops: the leftmost of them.
        let headers = forwarded(&["10.0.0.2"]);
        assert_eq!(
            source_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.2")
        );
        // Garbage right of a client's address: the hop that passed it on, not a value the
        // client chose.
        let headers = forwarded(&["203.0.113.7, not-an-address"]);
        assert_eq!(
            source_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_source_over_its_burst_waits_and_other_buckets_do_not() {
        // One request every 100 s, three at once.
        let limiter = IngestLimiter::new(&settings(0.01, 3, &[]), ["own_app", "uber_eats"]);
        let a = ip("203.0.113.7");
        for _ in 0..3 {
            assert_eq!(limiter.check("own_app", a).1, Ok(()));
        }
        let (scope, refused) = limiter.check("own_app", a);
        assert_eq!(&*scope, "own_app");
        let limited = refused.expect_err("the fourth request is over the limit");
        assert!(
            (99..=100).contains(&limited.retry_after_secs()),
            "{limited:?}"
        );
        // Another channel, another source, and redemptions have buckets of their own.
        assert_eq!(limiter.check("uber_eats", a).1, Ok(()));
        assert_eq!(limiter.check("own_app", ip("203.0.113.8")).1, Ok(()));
        assert_eq!(limiter.check(CODES, a).1, Ok(()));
        // A path's text never makes a bucket: every unknown channel shares one.
        for name in ["nope-1", "nope-2", "nope-3"] {
            assert_eq!(limiter.check(name, a).1, Ok(()));
        }
        let (scope, refused) = limiter.check("nope-4", a);
        assert_eq!((&*scope, refused.is_err()), (UNKNOWN, true));
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let secs = |ms| {
            Limited {
                retry_after: Duration::from_millis(ms),
            }
            .retry_after_secs()
        };
        assert_eq!((secs(0), secs(1), secs(999), secs(1000)), (1, 1, 1, 1));
        assert_eq!((secs(1001), secs(2500)), (2, 3));
    }

    #[test]
    fn quiet_sources_are_swept() {
        // A fast rate: buckets are full again almost at once.
        let limiter = IngestLimiter::new(&settings(1_000_000.0, 1, &[]), ["own_app"]);
        for last in 0..50u8 {
            let _ = limiter.check("own_app", IpAddr::from([203, 0, 113, last]));
        }
        assert!(!limiter.is_empty());
        // Each bucket is full again a microsecond after its request.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            limiter.sweep();
            if limiter.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{} buckets left", limiter.len());
            std::thread::yield_now();
        }
    }

    #[test]
    fn quotas_keep_their_interval_within_bounds() {
        let burst = NonZeroU32::new(2000).expect("non-zero");
        assert_eq!(
            quota(1000.0, burst).replenish_interval(),
            Duration::from_millis(1)
        );
        assert_eq!(quota(1000.0, burst).burst_size(), burst);
        assert_eq!(
            quota(1e-12, burst).replenish_interval(),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            quota(1e15, burst).replenish_interval(),
            Duration::from_nanos(1)
        );
    }
}
