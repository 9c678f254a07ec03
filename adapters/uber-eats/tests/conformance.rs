//! The adapter kit's conformance checks for uber_eats: fixtures, tampering, the full loop
//! through a real hub and the Uber Eats simulator — once with orders on the classic API
//! (the simulator's default), once on the new one, whose `/ready` call the classic API
//! lacks.

use async_trait::async_trait;
use crossdock_adapter_uber_eats::simulator::{SimConfig, UberEatsSim};
use crossdock_adapter_uber_eats::{Factory, Generation};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

/// Uber Eats, its simulator placing the loop's orders on API generation `api`.
#[derive(Default)]
struct UberEats {
    api: Generation,
}

#[async_trait]
impl Platform for UberEats {
    type Sim = UberEatsSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// `X-Uber-Signature` is an HMAC of the whole body; nothing else is signed.
    fn signed(&self) -> Signed {
        Signed {
            body: true,
            headers: &["x-uber-signature"],
            query: false,
        }
    }

    async fn start(&self) -> anyhow::Result<UberEatsSim> {
        Ok(UberEatsSim::start(SimConfig {
            api: self.api,
            ..SimConfig::default()
        })
        .await?)
    }

    /// The fixtures' notifications name orders Uber's API must know.
    fn serve_fetched(&self, sim: &UberEatsSim, answer: &[u8]) -> anyhow::Result<()> {
        sim.serve_order(answer)?;
        Ok(())
    }

    fn options(&self, sim: &UberEatsSim) -> serde_json::Value {
        serde_json::json!({ "base_url": sim.base_url(), "token_url": sim.token_url() })
    }

    fn connect(&self, sim: &UberEatsSim, hub: &HubAddress) {
        sim.set_hub_webhook_url(format!("{}/webhooks/uber_eats", hub.base));
    }

    async fn place_order(
        &self,
        sim: &UberEatsSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        anyhow::ensure!(
            placed.answer.status == 200 && placed.answer.body.is_empty(),
            "Uber expects an empty 200; the hub answered {} {}",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.external_order_id)
    }

    fn status(&self, sim: &UberEatsSim, external_order_id: &str) -> Option<Status> {
        sim.order_status(external_order_id)
    }

    async fn cancel(&self, sim: &UberEatsSim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim.cancel_order(external_order_id).await;
        anyhow::ensure!(
            answer.status == 200 && answer.body.is_empty(),
            "Uber expects an empty 200; the hub answered {} {}",
            answer.status,
            answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: UberEatsSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uber_eats_passes_the_adapter_kit() {
    crossdock_kit::conformance(UberEats::default()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uber_eats_on_the_new_order_api_passes_the_adapter_kit() {
    crossdock_kit::conformance(UberEats {
        api: Generation::V1,
    })
    .await;
}
