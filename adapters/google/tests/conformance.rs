//! The adapter kit's conformance checks for google: fixtures, tampering, `crossdock
//! normalize`, the full loop through a real hub and the Google simulator.

use async_trait::async_trait;
use crossdock_adapter_google::Factory;
use crossdock_adapter_google::simulator::{GoogleSim, SimConfig, dev_authorization};
use crossdock_channel::sim::SampleOrder;
use crossdock_channel::{ChannelFactory, HeaderValue, InboundRequest};
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct Google;

#[async_trait]
impl Platform for Google {
    type Sim = GoogleSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// Google's JWT in `Authorization` authenticates the sender; it does not cover the
    /// body (nor the URL).
    fn signed(&self) -> Signed {
        Signed {
            body: false,
            headers: &["authorization"],
            query: false,
        }
    }

    /// A fresh JWT issued at the receipt time, as Google would sign it then.
    fn resign(&self, request: &mut InboundRequest) {
        let authorization = dev_authorization(request.received_at)
            .unwrap_or_else(|e| panic!("signing with the development key: {e}"));
        let value = HeaderValue::from_str(&authorization).expect("a JWT is a header value");
        request.headers.insert("authorization", value);
    }

    async fn start(&self) -> anyhow::Result<GoogleSim> {
        Ok(GoogleSim::start(SimConfig::default()).await?)
    }

    fn options(&self, sim: &GoogleSim) -> serde_json::Value {
        serde_json::json!({ "api_base_url": sim.base_url(), "token_url": sim.token_url() })
    }

    fn connect(&self, sim: &GoogleSim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!("{}/webhooks/google", hub.base));
    }

    async fn place_order(
        &self,
        sim: &GoogleSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        anyhow::ensure!(
            placed.answer.status == 200,
            "Google expects 200 with an order update; the hub answered {} {}",
            placed.answer.status,
            placed.answer.body
        );
        let order = sim
            .order(&placed.external_order_id)
            .ok_or_else(|| anyhow::anyhow!("the simulator lost the order"))?;
        anyhow::ensure!(
            order.problems.is_empty() && order.state.as_deref() == Some("CREATED"),
            "Google found the submit answer wrong: {:?} (state {:?})",
            order.problems,
            order.state
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &GoogleSim, external_order_id: &str) -> Option<Status> {
        sim.status(external_order_id)
    }

    /// Google has no flow that tells the merchant of a cancellation: the customer uses
    /// the order's customer-service action and the chain cancels.
    async fn cancel(&self, _sim: &GoogleSim, _external_order_id: &str) -> anyhow::Result<bool> {
        Ok(false)
    }

    async fn stop(&self, sim: GoogleSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    crossdock_kit::conformance(Google).await;
}
