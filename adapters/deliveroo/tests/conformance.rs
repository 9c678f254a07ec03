//! The adapter kit's conformance checks for deliveroo: fixtures, tampering, the full loop
//! through a real hub and the Deliveroo simulator.

use async_trait::async_trait;
use crossdock_adapter_deliveroo::Factory;
use crossdock_adapter_deliveroo::simulator::{DeliverooSim, SimConfig};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct Deliveroo;

#[async_trait]
impl Platform for Deliveroo {
    type Sim = DeliverooSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// `X-Deliveroo-Hmac-Sha256` is an HMAC over the sequence GUID and the whole body.
    fn signed(&self) -> Signed {
        Signed {
            body: true,
            headers: &["x-deliveroo-hmac-sha256", "x-deliveroo-sequence-guid"],
            query: false,
        }
    }

    async fn start(&self) -> anyhow::Result<DeliverooSim> {
        Ok(DeliverooSim::start(SimConfig::default()).await?)
    }

    fn options(&self, sim: &DeliverooSim) -> serde_json::Value {
        serde_json::json!({ "base_url": sim.base_url(), "token_url": sim.token_url() })
    }

    fn connect(&self, sim: &DeliverooSim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!("{}/webhooks/deliveroo", hub.base));
    }

    async fn place_order(
        &self,
        sim: &DeliverooSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        anyhow::ensure!(
            placed.answer.status == 200,
            "Deliveroo expects a 2xx; the hub answered {} {}",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &DeliverooSim, external_order_id: &str) -> Option<Status> {
        sim.unified_status(external_order_id)
    }

    /// The customer or Deliveroo support cancels: `order.status_update` with `canceled`.
    async fn cancel(&self, sim: &DeliverooSim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim.cancel_order(external_order_id).await;
        anyhow::ensure!(
            answer.status == 200,
            "Deliveroo expects a 2xx; the hub answered {} {}",
            answer.status,
            answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: DeliverooSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveroo_passes_the_adapter_kit() {
    crossdock_kit::conformance(Deliveroo).await;
}
