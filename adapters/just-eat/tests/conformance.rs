//! The conformance kit against the adapter and its simulator: fixtures, tampering,
//! `crossdock normalize`, and the full loop through a real hub (PostgreSQL and RabbitMQ
//! must run: `scripts/services.sh`).
//!
//! `UPDATE_EXPECT=1 cargo test -p crossdock-adapter-just-eat --test conformance` rewrites
//! the fixtures' `*.expected.json`; read every one before keeping it.

use anyhow::Context;
use async_trait::async_trait;
use crossdock_adapter_just_eat::simulator::{JustEatSim, SimConfig};
use crossdock_adapter_just_eat::{CHANNEL_ID, Factory};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct JustEatPlatform;

#[async_trait]
impl Platform for JustEatPlatform {
    type Sim = JustEatSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// The HMAC covers the body alone. `X-JET-Connect-Hash` carries it, but also a `t=`
    /// timestamp the signature does not cover (JET's documented test vector signs the body
    /// alone), so the header as a whole is not a signed part: changing a digit of `t`
    /// rightly still verifies. Nothing is time-bound, so there is no `resign`.
    fn signed(&self) -> Signed {
        Signed {
            body: true,
            headers: &[],
            query: false,
        }
    }

    async fn start(&self) -> anyhow::Result<JustEatSim> {
        JustEatSim::start(SimConfig::default())
            .await
            .context("starting the simulator")
    }

    /// The adapter calls the simulator instead of the platform; the development secrets
    /// are the simulator's.
    fn options(&self, sim: &JustEatSim) -> serde_json::Value {
        serde_json::json!({ "base_url": sim.base_url(), "timeout_secs": 5 })
    }

    fn connect(&self, sim: &JustEatSim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!(
            "{}/webhooks/{CHANNEL_ID}",
            hub.base.trim_end_matches('/')
        ));
    }

    async fn place_order(
        &self,
        sim: &JustEatSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        // JET takes 200 (in the POS) or 202 (pending); the hub answers 202.
        anyhow::ensure!(
            placed.answer.status == 202,
            "the hub answered the Receive Order webhook {} {} (JET expects 202 for a pending order)",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &JustEatSim, external_order_id: &str) -> Option<Status> {
        sim.status(external_order_id)
    }

    /// The customer cancels at JET; the Cancel Order notification tells the hub.
    async fn cancel(&self, sim: &JustEatSim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim
            .cancel_order(external_order_id, Some("custCancelledChangedMind"))
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

    async fn stop(&self, sim: JustEatSim) {
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
    crossdock_kit::conformance(JustEatPlatform).await;
}
