//! The conformance kit against the DoorDash adapter and its simulator: fixtures, tampering,
//! `crossdock normalize`, and the full loop through a real hub.
//!
//! `UPDATE_EXPECT=1 cargo test -p crossdock-adapter-doordash --test conformance` rewrites the
//! fixtures' `*.expected.json`; read every one before keeping it.

use anyhow::Context;
use async_trait::async_trait;
use crossdock_adapter_doordash::simulator::{DoorDashSim, SimConfig};
use crossdock_adapter_doordash::{CHANNEL_ID, Factory};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct DoorDashPlatform;

#[async_trait]
impl Platform for DoorDashPlatform {
    type Sim = DoorDashSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// DoorDash signs nothing: the static token in `Authorization` is all there is.
    fn signed(&self) -> Signed {
        Signed {
            body: false,
            headers: &["authorization"],
            query: false,
        }
    }

    async fn start(&self) -> anyhow::Result<DoorDashSim> {
        DoorDashSim::start(SimConfig::default())
            .await
            .context("starting the DoorDash simulator")
    }

    /// The adapter calls the simulator instead of openapi.doordash.com; the development
    /// secrets are the simulator's.
    fn options(&self, sim: &DoorDashSim) -> serde_json::Value {
        serde_json::json!({ "base_url": sim.base_url(), "timeout_secs": 5 })
    }

    fn connect(&self, sim: &DoorDashSim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!(
            "{}/webhooks/{CHANNEL_ID}",
            hub.base.trim_end_matches('/')
        ));
    }

    async fn place_order(
        &self,
        sim: &DoorDashSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        anyhow::ensure!(
            placed.answer.status == 202,
            "the hub answered the DoorDash order {} {} (DoorDash expects 202, then the \
             asynchronous confirmation)",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &DoorDashSim, external_order_id: &str) -> Option<Status> {
        sim.status(external_order_id)
    }

    /// The customer cancels on DoorDash; the Order Canceled webhook tells the hub.
    async fn cancel(&self, sim: &DoorDashSim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim
            .cancel_order(external_order_id)
            .await
            .context("DoorDash sends no cancellation for an order that already failed")?;
        anyhow::ensure!(
            answer.status == 200,
            "the hub answered the Order Canceled webhook {} {}",
            answer.status,
            answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: DoorDashSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    crossdock_kit::conformance(DoorDashPlatform).await;
}
