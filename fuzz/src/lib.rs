//! Shared code of the fuzz targets in `fuzz_targets/`: the input format, each channel's
//! adapter built once with development settings, the run of one input through it, the
//! seeds made from `fixtures/`, and the fuzzing of the shared signature helpers.
//!
//! One target per channel (`fuzz_targets/<channel>.rs`) is one line: [`Target::run`]. For
//! each input it builds an [`InboundRequest`](crossdock_channel::InboundRequest)
//! ([`input`]) and calls `verify`, then `parse` whatever `verify` said (so the parser is fuzzed past the signature check), runs the
//! hub's order check and document on what `parse` returned, and asks `reply` for the
//! answer; then `parse_fetched` for notify-then-fetch channels and `parse_redeemed` (and,
//! on request, `check_code` against a stub platform on the loopback) for code channels.
//!
//! What counts as a finding: a panic (an overflow with debug assertions, an index out of
//! range, an `expect`), a stack overflow, an allocation libFuzzer's `-rss_limit_mb` stops,
//! or an input slower than its `-timeout`. A refusal is never a finding: adapters answer
//! bad input with a typed `ChannelError`.
//!
//! Seeds: a target started with [`SEED_ENV`] set writes its seed inputs (every fixture of
//! its channel, as is and re-signed) into that directory and exits (`scripts/fuzz`).

pub mod channels;
pub mod input;
pub mod platform;
pub mod seeds;
pub mod signature;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
use crossdock_channel::normalize;
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, CodeClaim, Delivery, FetchRef, Inbound,
    Outcome, SecretSource, Unservable,
};

pub use channels::Spec;
pub use input::Input;

/// The instant fixtures are signed at (`crossdock_kit::FIXTURE_TIME`); requests are received
/// at this time, give or take the input's skew.
pub const FIXTURE_TIME: &str = "2026-11-20T12:00:00Z";

/// The hub's public URL as fixtures address it (`crossdock_kit::FIXTURE_PUBLIC_URL`).
pub const PUBLIC_URL: &str = "https://hub.crossdock.example";

/// Set to a directory, a target writes its seeds there and exits instead of fuzzing.
pub const SEED_ENV: &str = "CROSSDOCK_FUZZ_WRITE_SEEDS";

/// Set (to anything), a target prints what each call answered: to see what an input
/// (a seed, a crash) does, run the target binary on it with this set.
pub const DEBUG_ENV: &str = "CROSSDOCK_FUZZ_DEBUG";

fn debug(what: &str, result: &dyn std::fmt::Debug) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os(DEBUG_ENV).is_some()) {
        let text = format!("{result:?}");
        let cut = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
        eprintln!("{what}: {}", &text[..cut]);
    }
}

/// [`FIXTURE_TIME`], parsed.
pub fn fixture_time() -> DateTime<Utc> {
    static TIME: OnceLock<DateTime<Utc>> = OnceLock::new();
    *TIME.get_or_init(|| {
        DateTime::parse_from_rfc3339(FIXTURE_TIME)
            .map(|t| t.with_timezone(&Utc))
            .expect("FIXTURE_TIME is RFC 3339")
    })
}

/// One channel's fuzz target: its spec and its adapter, built on first use.
pub struct Target {
    pub spec: &'static Spec,
    channel: OnceLock<Arc<dyn Channel>>,
}

impl Target {
    pub const fn new(spec: &'static Spec) -> Self {
        Self {
            spec,
            channel: OnceLock::new(),
        }
    }

    /// The adapter, built once through its factory with development settings (secrets
    /// fall back to the simulator's development credentials), as the hub builds it.
    pub fn channel(&self) -> &Arc<dyn Channel> {
        self.channel.get_or_init(|| build(self.spec))
    }

    /// The target's `init`: with [`SEED_ENV`] set, writes the seeds and exits.
    pub fn init(&'static self) {
        if let Some(dir) = std::env::var_os(SEED_ENV) {
            let written = seeds::write(self, std::path::Path::new(&dir))
                .unwrap_or_else(|e| panic!("writing seeds into {}: {e}", dir.to_string_lossy()));
            eprintln!(
                "{}: wrote {written} seeds into {}",
                self.spec.id,
                dir.to_string_lossy()
            );
            std::process::exit(0);
        }
        self.channel();
    }

    /// Runs one fuzz input through the adapter.
    pub fn run(&self, data: &[u8]) {
        let spec = self.spec;
        let input = Input::decode(data, spec.headers.len());
        let channel = self.channel().as_ref();
        let request = input.request(spec);

        let verified = channel.verify(&request);
        debug("verify", &verified);
        if let Err(error) = &verified {
            inspect_error(error);
        }
        // Parsed whatever `verify` said: the parser is fuzzed past the signature check.
        let parsed = channel.parse(&request);
        debug("parse", &parsed);
        let fetch = match &parsed {
            Ok(delivery) => {
                inspect_delivery(delivery);
                let _ = channel.reply(
                    &request,
                    Outcome::Accepted {
                        delivery,
                        order_id: None,
                        duplicate: input.alt(),
                    },
                );
                if let Inbound::Quote(order) = &delivery.inbound {
                    let verdict = order
                        .check()
                        .map(|_| ())
                        .map_err(|e| Unservable::Invalid(e.to_string()));
                    let _ = channel.reply(&request, Outcome::Quoted { order, verdict });
                }
                match &delivery.inbound {
                    Inbound::Fetch(reference) => Some(reference.clone()),
                    _ => None,
                }
            }
            Err(error) => {
                inspect_error(error);
                let _ = channel.reply(&request, Outcome::Refused(error));
                None
            }
        };

        if spec.fetches {
            let reference = fetch.unwrap_or_else(|| input.fetch_ref());
            let fetched = channel.parse_fetched(&reference, input.answer);
            debug("parse_fetched", &fetched);
            match fetched {
                Ok(order) => inspect_order(&order),
                Err(error) => inspect_error(&error),
            }
        }
        if spec.codes {
            let claim = input.claim();
            let redeemed = channel.parse_redeemed(&claim, input.answer);
            debug("parse_redeemed", &redeemed);
            match redeemed {
                Ok(delivery) => inspect_delivery(&delivery),
                Err(error) => inspect_error(&error),
            }
            if input.alt() {
                let checked = platform::check_code(channel, &claim, input.answer);
                debug("check_code", &checked);
                match checked {
                    Ok(preview) => drop(preview.to_string()),
                    Err(error) => inspect_error(&error),
                }
            }
        }
    }
}

/// Builds `spec`'s adapter through its factory, in development mode, with its fuzzing
/// options (where it calls a platform: the loopback stub).
pub fn build(spec: &Spec) -> Arc<dyn Channel> {
    let factory: &dyn ChannelFactory = (spec.factory)();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client without proxies builds");
    let settings = ChannelSettings {
        channel: factory.id().to_owned(),
        options: (spec.options)(),
        secrets: SecretSource::new(Default::default(), true),
        dev_secrets: factory.dev_secrets(),
        http,
    };
    factory
        .build(&settings)
        .unwrap_or_else(|e| panic!("building channel {} for fuzzing: {e}", spec.id))
}

/// What the hub does with a parsed delivery that could go wrong on odd input: the order
/// check, and the document `crossdock normalize` prints (the published order shape).
fn inspect_delivery(delivery: &Delivery) {
    match &delivery.inbound {
        Inbound::Order(order) | Inbound::Quote(order) => inspect_order(order),
        _ => {}
    }
    if let Ok(document) = normalize::document(delivery) {
        drop(document.to_value());
    }
}

fn inspect_order(order: &crossdock_model::NewOrder) {
    if let Ok(flags) = order.check() {
        drop(flags);
    }
    drop(serde_json::to_vec(order));
}

/// An error is shown to platforms and people: its text and status must come out.
fn inspect_error(error: &ChannelError) {
    drop(error.to_string());
    let _ = (error.kind(), error.http_status(), error.is_retryable());
}

/// The time of receipt: [`FIXTURE_TIME`] moved by `skew_minutes`.
pub fn received_at(skew_minutes: i8) -> DateTime<Utc> {
    fixture_time() + Duration::minutes(i64::from(skew_minutes))
}

/// A code claim for code channels (see [`Input::claim`]).
pub fn default_claim() -> CodeClaim {
    CodeClaim {
        channel_store_ref: "5mq395xvm7us1trgmn4jxl3c".to_owned(),
        code: "0332808512".to_owned(),
        count: 1,
        request_id: "fuzz".to_owned(),
        claimed_at: fixture_time(),
    }
}

/// A fetch reference for notify-then-fetch channels (see [`Input::fetch_ref`]).
pub fn fetch_ref(resource: &str, external_order_id: Option<&str>, scheduled: bool) -> FetchRef {
    let external_order_id = external_order_id.map(str::to_owned).unwrap_or_else(|| {
        let path = resource.split(['?', '#']).next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or_default().to_owned()
    });
    FetchRef {
        external_order_id,
        resource: resource.to_owned(),
        scheduled,
    }
}
