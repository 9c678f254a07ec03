//! The adapter kit's conformance checks for eleme: fixtures, tampering, `crossdock
//! normalize`, and the full loop through a real hub and the Ele.me simulator.
//!
//! `UPDATE_EXPECT=1 cargo test -p crossdock-adapter-eleme --test conformance` rewrites the
//! fixtures' `*.expected.json`; read every one before keeping it.

use async_trait::async_trait;
use crossdock_adapter_eleme::simulator::{ElemeSim, SimConfig};
use crossdock_adapter_eleme::{CHANNEL_ID, Factory};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct ElemePlatform;

#[async_trait]
impl Platform for ElemePlatform {
    type Sim = ElemeSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// The signature is inside the body; no header or query carries a credential.
    fn signed(&self) -> Signed {
        Signed {
            body: true,
            headers: &[],
            query: false,
        }
    }

    // `resign`: the default. Ele.me's signature is not bound to the time of delivery.

    async fn start(&self) -> anyhow::Result<ElemeSim> {
        Ok(ElemeSim::start(SimConfig {
            hub_webhook_url: String::new(),
            ..SimConfig::default()
        })
        .await?)
    }

    fn options(&self, sim: &ElemeSim) -> serde_json::Value {
        serde_json::json!({ "base_url": sim.base_url(), "token_url": sim.token_url() })
    }

    fn connect(&self, sim: &ElemeSim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!("{}/webhooks/{CHANNEL_ID}", hub.base));
    }

    async fn place_order(
        &self,
        sim: &ElemeSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        anyhow::ensure!(
            placed.answer.status == 200 && placed.answer.body == r#"{"message":"ok"}"#,
            "the hub answered {} {}",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &ElemeSim, external_order_id: &str) -> Option<Status> {
        sim.order_status(external_order_id)
    }

    async fn cancel(&self, sim: &ElemeSim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim.cancel_order(external_order_id).await;
        anyhow::ensure!(
            answer.status == 200,
            "the hub answered {} {}",
            answer.status,
            answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: ElemeSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn eleme_passes_the_adapter_kit() {
    crossdock_kit::conformance(ElemePlatform).await;
}
