//! The adapter kit's conformance checks for own_app: fixtures, tampering, the full loop
//! through a real hub and the app simulator.

use std::net::SocketAddr;

use async_trait::async_trait;
use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig};
use crossdock_adapter_own_app::{DEV_SIGNING_SECRET, Factory, signed_headers};
use crossdock_channel::sim::SampleOrder;
use crossdock_channel::{ChannelFactory, HeaderName, HeaderValue, InboundRequest};
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct OwnApp;

#[async_trait]
impl Platform for OwnApp {
    type Sim = OwnAppSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    fn signed(&self) -> Signed {
        Signed {
            body: true,
            headers: &["x-crossdock-signature", "x-crossdock-timestamp"],
            query: false,
        }
    }

    fn resign(&self, request: &mut InboundRequest) {
        let timestamp = request.received_at.timestamp();
        for (name, value) in signed_headers(DEV_SIGNING_SECRET.as_bytes(), timestamp, &request.body)
        {
            request.headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(&value).expect("signature headers are ASCII"),
            );
        }
    }

    async fn start(&self) -> anyhow::Result<OwnAppSim> {
        Ok(OwnAppSim::start(SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: String::new(),
            signing_secret: DEV_SIGNING_SECRET.into(),
        })
        .await?)
    }

    fn options(&self, _sim: &OwnAppSim) -> serde_json::Value {
        serde_json::json!({})
    }

    fn connect(&self, sim: &OwnAppSim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!("{}/webhooks/own_app", hub.base));
    }

    async fn place_order(
        &self,
        sim: &OwnAppSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        anyhow::ensure!(
            placed.answer.status == 202,
            "the hub answered {} {}",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &OwnAppSim, external_order_id: &str) -> Option<Status> {
        sim.order_status(external_order_id)
    }

    async fn cancel(&self, sim: &OwnAppSim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim
            .cancel(external_order_id, "customer changed their mind")
            .await;
        anyhow::ensure!(
            answer.status == 202,
            "the hub answered {} {}",
            answer.status,
            answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: OwnAppSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn own_app_passes_the_adapter_kit() {
    crossdock_kit::conformance(OwnApp).await;
}
