//! The conformance kit against the Meituan adapter and its simulator: fixtures, tampering,
//! `crossdock normalize`, and the full loop through a real hub (PostgreSQL and RabbitMQ;
//! `scripts/services.sh` starts them).

use async_trait::async_trait;
use crossdock_adapter_meituan::simulator::{MeituanSim, SimConfig};
use crossdock_adapter_meituan::{DEV_APP_ID, Factory};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct Meituan;

#[async_trait]
impl Platform for Meituan {
    type Sim = MeituanSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    fn signed(&self) -> Signed {
        // `sig` signs every parameter, in the form body and in the query alike.
        Signed {
            body: true,
            headers: &[],
            query: true,
        }
    }

    async fn start(&self) -> anyhow::Result<MeituanSim> {
        Ok(MeituanSim::start(SimConfig::default()).await?)
    }

    fn options(&self, sim: &MeituanSim) -> serde_json::Value {
        serde_json::json!({ "base_url": sim.api_base(), "app_id": DEV_APP_ID })
    }

    fn connect(&self, sim: &MeituanSim, hub: &HubAddress) {
        sim.set_hub(
            format!("{}/webhooks/meituan", hub.base),
            format!("{}/webhooks/meituan", hub.public),
        );
    }

    async fn place_order(
        &self,
        sim: &MeituanSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let placed = sim.place_order(sample).await;
        anyhow::ensure!(
            placed.answer.status == 200 && placed.answer.body == r#"{"data":"ok"}"#,
            "the hub answered the order push {} {}",
            placed.answer.status,
            placed.answer.body
        );
        Ok(placed.order_id)
    }

    fn status(&self, sim: &MeituanSim, external_order_id: &str) -> Option<Status> {
        sim.unified_status(external_order_id)
    }

    async fn cancel(&self, sim: &MeituanSim, external_order_id: &str) -> anyhow::Result<bool> {
        let answer = sim
            .cancel_order(external_order_id, "1201", "客服取消：用户来电要求取消")
            .await;
        anyhow::ensure!(
            answer.status == 200,
            "the hub answered the cancel push {} {}",
            answer.status,
            answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: MeituanSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    crossdock_kit::conformance(Meituan).await;
}
