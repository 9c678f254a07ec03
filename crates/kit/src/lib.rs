//! The adapter conformance kit, and the harness that runs a real hub in tests.
//!
//! An adapter crate proves itself with one line in `tests/conformance.rs`:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     crossdock_kit::conformance(MyPlatform).await;
//! }
//! ```
//!
//! where `MyPlatform` implements [`Platform`]: how to start the adapter's simulator and
//! make it send an order, and what the simulator believes an order's status is. The kit
//! then checks, and panics with what is wrong:
//!
//! 1. **Fixtures** ([`check_fixtures`]): every request saved under `fixtures/<channel>/`
//!    normalizes to its `*.expected.json` (`UPDATE_EXPECT=1` rewrites them); there are at
//!    least six, and at least one is a cancellation or status event.
//! 2. **Tampering** ([`check_tampering`]): every fixture request passes verification as
//!    saved, and fails it (or parsing) once any single byte of the signed parts is changed.
//! 3. **The full loop** ([`check_loop`]): a real hub (PostgreSQL, RabbitMQ, the sample
//!    chain) and the simulator. Each fixture's exact bytes are posted to the hub by HTTP
//!    and answered as the platform expects; a flipped byte is refused and stores nothing.
//!    Then an order placed on the simulator reaches its store, the store works it, and
//!    each status the hub pushed reads back from the simulator as the same unified status
//!    (the status mapping round-trips); a status the platform has no call for is recorded
//!    as skipped. A second order is rejected by the store: the channel named the store, so
//!    the order waits on HQ's attention list, and HQ's reject reads back from the
//!    simulator. A third is cancelled by the platform, which reaches the store at once and
//!    stops further pushes.
//!
//! # Fixture layout
//!
//! For each case `<name>` under `fixtures/<channel>/`:
//!
//! | file | what |
//! |---|---|
//! | `<name>.body` | the request body, byte for byte as the platform sends it |
//! | `<name>.headers` | its headers, one `Name: value` per line (`#` starts a comment) |
//! | `<name>.method` | optional: the HTTP method, default `POST` |
//! | `<name>.url` | optional: the URL called, query included; default `{FIXTURE_PUBLIC_URL}/webhooks/<channel>` |
//! | `<name>.fetched.json` | optional: what the platform's API answered when the order was fetched (notify-then-fetch) |
//! | `<name>.claim.json` | code channels instead of body and headers: the store's claim ([`crossdock_channel::CodeClaim`]); the platform's answer to the redemption is then `<name>.fetched.json` |
//! | `<name>.expected.json` | what `crossdock normalize` prints for it ([`crossdock_channel::normalize`]), or `{"error": {"kind", "message"}}` for a case the hub refuses |
//!
//! Requests whose signature is bound to a time (a replay window, a token's expiry) are
//! signed as of [`FIXTURE_TIME`]; the kit verifies them at that time, and before posting
//! them to a live hub asks [`Platform::resign`] to sign them for now (the body stays
//! byte for byte).
//!
//! # Web pages
//!
//! [`browser::Browser`] drives a headless Chromium (its own chromedriver and profile) for
//! tests of the hub's pages, and [`proxy::Proxy`] sits between it and the hub to drop and
//! restore connections.

pub mod browser;
mod fixtures;
pub mod harness;
pub mod logs;
pub mod proxy;
mod run;

use async_trait::async_trait;
use crossdock_channel::sim::SampleOrder;
use crossdock_channel::{ChannelFactory, InboundRequest};
use crossdock_model::Status;

pub use browser::{Browser, BrowserError};
pub use fixtures::{Case, CaseInput, load_cases};
pub use harness::{Hub, HubAccess, StoreQueue, wait_for};
pub use proxy::{Proxy, ProxyTimeout};
pub use run::{check_fixtures, check_loop, check_tampering, conformance};

/// The instant time-bound fixture requests are signed at.
pub const FIXTURE_TIME: &str = "2026-11-20T12:00:00Z";

/// The hub's public URL as fixture requests address it (Meituan signs the URL); the kit's
/// hubs run with this as `http.public_url`.
pub const FIXTURE_PUBLIC_URL: &str = "https://hub.crossdock.example";

/// Where a running hub is.
#[derive(Debug, Clone)]
pub struct HubAddress {
    /// Where requests reach it (`http://127.0.0.1:PORT`).
    pub base: String,
    /// Its public URL, as platforms have it registered ([`FIXTURE_PUBLIC_URL`] in tests).
    pub public: String,
}

/// Which parts of a request a platform's authentication covers, for the tampering check.
#[derive(Debug, Clone, Copy)]
pub struct Signed {
    /// The body is covered: changing any byte of it must fail verification or parsing.
    pub body: bool,
    /// Headers whose values carry the credential or signature, named in lower case (every
    /// byte is changed in turn). Name at least one, unless `body` is covered by a signature inside it.
    pub headers: &'static [&'static str],
    /// The query string is covered (platforms that sign URL parameters).
    pub query: bool,
}

/// A platform as the conformance kit drives it: the adapter, and the simulator that
/// stands in for the real platform.
#[async_trait]
pub trait Platform: Send + Sync + 'static {
    /// The simulator's handle.
    type Sim: Send + Sync + 'static;

    /// The adapter's factory, the one registered in the hub.
    fn factory(&self) -> Box<dyn ChannelFactory>;

    /// What the platform's authentication covers.
    fn signed(&self) -> Signed;

    /// Signs `request` again as the platform would at `request.received_at`, for schemes
    /// bound to a time; the body must stay unchanged. The default leaves it as it is.
    fn resign(&self, request: &mut InboundRequest) {
        let _ = request;
    }

    /// Starts the simulator (before the hub: the hub's options point at it).
    async fn start(&self) -> anyhow::Result<Self::Sim>;

    /// The hub's `[channels.<id>]` options that point the adapter at `sim` (its API base
    /// URL, token URL…).
    fn options(&self, sim: &Self::Sim) -> serde_json::Value;

    /// Tells the simulator where the hub is, once it runs: its webhooks go to
    /// `{hub.base}/webhooks/{channel}[/{event}]`, and a platform that signs the callback
    /// URL signs it as registered, under `hub.public`.
    fn connect(&self, sim: &Self::Sim, hub: &HubAddress);

    /// Notify-then-fetch platforms: the simulator serves `answer` (a fixture's
    /// `*.fetched.json`, as the platform's order API answered) so that the hub's fetch of
    /// that fixture's notification finds the order. The default ignores it.
    fn serve_fetched(&self, sim: &Self::Sim, answer: &[u8]) -> anyhow::Result<()> {
        let _ = (sim, answer);
        Ok(())
    }

    /// Makes one order happen on the platform for `sample` (its `store_ref` is the
    /// channel's id of a store of the sample chain, its currency that store's) and returns
    /// the platform's order id. For push platforms the simulator sends the webhook; for
    /// code channels, the customer buys a code on the platform and `hub` redeems it as
    /// the store would.
    async fn place_order(
        &self,
        sim: &Self::Sim,
        hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String>;

    /// What the platform believes the order's status is, mapped to the unified status,
    /// from what the hub's pushes told the simulator. `None`: the platform knows nothing
    /// of such an order.
    fn status(&self, sim: &Self::Sim, external_order_id: &str) -> Option<Status>;

    /// The platform cancels the order by its own flow (customer, courier, support), and
    /// tells the hub as it would. `Ok(false)` if the platform has no such flow.
    async fn cancel(&self, sim: &Self::Sim, external_order_id: &str) -> anyhow::Result<bool>;

    /// Stops the simulator.
    async fn stop(&self, sim: Self::Sim);
}
