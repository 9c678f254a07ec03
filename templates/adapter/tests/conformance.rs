//! The conformance kit against the adapter and its simulator: fixtures, tampering,
//! `crossdock normalize`, and the full loop through a real hub (PostgreSQL and RabbitMQ
//! must run: `scripts/services.sh`).
//!
//! `UPDATE_EXPECT=1 cargo test -p crossdock-adapter-@@crate@@ --test conformance` rewrites
//! the fixtures' `*.expected.json`; read every one before keeping it.

use anyhow::Context;
use async_trait::async_trait;
use crossdock_adapter_@@channel@@::simulator::{@@Type@@Sim, SimConfig};
use crossdock_adapter_@@channel@@::{CHANNEL_ID, Factory, SIGNATURE_HEADER};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct @@Type@@Platform;

#[async_trait]
impl Platform for @@Type@@Platform {
    type Sim = @@Type@@Sim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// The HMAC covers the whole body; the signature header carries it.
    ///
    /// PLATFORM: every part the platform's authentication covers (lower-case header
    /// names; `query: true` if it signs URL parameters).
    fn signed(&self) -> Signed {
        Signed {
            body: true,
            headers: &[SIGNATURE_HEADER],
            query: false,
        }
    }

    // PLATFORM: if the signature covers a time (a timestamp header checked against a replay
    // window, a token's expiry), fixtures are signed as of `crossdock_kit::FIXTURE_TIME`,
    // and the kit needs `resign` to sign them again for now before posting them to a live
    // hub: see adapters/pos/tests/conformance.rs. A notify-then-fetch platform implements
    // `serve_fetched` (adapters/uber-eats).

    async fn start(&self) -> anyhow::Result<@@Type@@Sim> {
        @@Type@@Sim::start(SimConfig::default())
            .await
            .context("starting the simulator")
    }

    /// The adapter calls the simulator instead of the platform; the development secrets
    /// are the simulator's.
    fn options(&self, sim: &@@Type@@Sim) -> serde_json::Value {
        serde_json::json!({ "base_url": sim.base_url(), "timeout_secs": 5 })
    }

    fn connect(&self, sim: &@@Type@@Sim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!(
            "{}/webhooks/{CHANNEL_ID}",
            hub.base.trim_end_matches('/')
        ));
    }

    async fn place_order(
        &self,
        sim: &@@Type@@Sim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        // PLATFORM: the status the platform expects for an order it pushed.
        anyhow::ensure!(
            (200..300).contains(&placed.answer.status),
            "the hub answered the order webhook {} {}",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &@@Type@@Sim, external_order_id: &str) -> Option<Status> {
        sim.status(external_order_id)
    }

    /// The customer cancels on the platform; the `order.cancelled` webhook tells the hub.
    async fn cancel(&self, sim: &@@Type@@Sim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim
            .cancel_order(external_order_id, Some("Customer cancelled on the platform"))
            .await
            .context("the platform sends no cancellation for a finished order")?;
        anyhow::ensure!(
            (200..300).contains(&answer.status),
            "the hub answered the cancellation webhook {} {}",
            answer.status,
            answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: @@Type@@Sim) {
        sim.stop().await;
    }
}

/// The fixture writer (`src/tests/fixtures.rs`) signs and dates its cases as the kit
/// receives them.
#[test]
fn the_fixture_writer_uses_the_kits_time() {
    assert_eq!(crossdock_kit::FIXTURE_TIME, "2026-11-20T12:00:00Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    crossdock_kit::conformance(@@Type@@Platform).await;
}
