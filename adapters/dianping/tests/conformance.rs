//! The conformance kit against the Dianping adapter and its simulator: fixtures (claims
//! and Dianping's answers), and the full loop through a real hub, where each order is a
//! voucher bought on the simulator and redeemed by the store through
//! `POST /api/v1/codes/redeem`.

use anyhow::Context;
use async_trait::async_trait;
use crossdock_adapter_dianping::simulator::{DianpingSim, SimConfig};
use crossdock_adapter_dianping::{CHANNEL_ID, Factory};
use crossdock_channel::ChannelFactory;
use crossdock_channel::sim::SampleOrder;
use crossdock_kit::harness::chain;
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;
use serde_json::json;

struct DianpingPlatform;

#[async_trait]
impl Platform for DianpingPlatform {
    type Sim = DianpingSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    /// Nothing inbound to sign: Dianping never calls the hub.
    fn signed(&self) -> Signed {
        Signed {
            body: false,
            headers: &[],
            query: false,
        }
    }

    async fn start(&self) -> anyhow::Result<DianpingSim> {
        Ok(DianpingSim::start(SimConfig {
            // The kit's loop redeems and reverses in bursts; stay clear of the limit.
            rate_limit_per_second: 200,
            ..SimConfig::default()
        })
        .await?)
    }

    fn options(&self, sim: &DianpingSim) -> serde_json::Value {
        json!({ "base_url": sim.base_url() })
    }

    /// Dianping sends nothing to the hub.
    fn connect(&self, _sim: &DianpingSim, _hub: &HubAddress) {}

    /// The customer buys the sample as a voucher; the store redeems it through the hub.
    async fn place_order(
        &self,
        sim: &DianpingSim,
        hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let shop = sample
            .store_ref
            .clone()
            .context("a Dianping voucher is sold at a shop")?;
        let store = chain()
            .stores
            .into_iter()
            .find(|store| store.channels.get(CHANNEL_ID) == Some(&shop))
            .with_context(|| format!("no store of the chain is Dianping shop {shop}"))?;
        let sold = sim.sell_sample(sample);
        let code = sold.codes.first().context("the sale made no voucher")?;
        let (status, answer) = hub
            .post(
                hub.store_token(store.id.as_str()),
                "/codes/redeem",
                json!({ "channel": CHANNEL_ID, "code": code, "count": 1 }),
            )
            .await;
        anyhow::ensure!(
            status == 200,
            "redeeming {code} answered {status}: {answer}"
        );
        answer["external_order_id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no external_order_id in {answer}"))
    }

    fn status(&self, sim: &DianpingSim, external_order_id: &str) -> Option<Status> {
        sim.status(external_order_id)
    }

    /// A redeemed voucher cannot be refunded or cancelled on Dianping's side.
    async fn cancel(&self, _sim: &DianpingSim, _external_order_id: &str) -> anyhow::Result<bool> {
        Ok(false)
    }

    async fn stop(&self, sim: DianpingSim) {
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    crossdock_kit::conformance(DianpingPlatform).await;
}
