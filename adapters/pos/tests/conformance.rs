//! The conformance kit against the POS adapter and its simulator: fixtures, tampering, and
//! the full loop through a real hub.
//!
//! `UPDATE_EXPECT=1 cargo test -p crossdock-adapter-pos --test conformance` rewrites the
//! fixtures' `*.expected.json`; read every one before keeping it.

use std::net::SocketAddr;

use anyhow::Context;
use async_trait::async_trait;
use crossdock_adapter_pos::simulator::{DEFAULT_REGISTER, PosSim, SimConfig};
use crossdock_adapter_pos::{
    DEV_MASTER_KEY, Factory, SIGNATURE_HEADER, STORE_HEADER, TIMESTAMP_HEADER, sign, store_key,
};
use crossdock_channel::sim::SampleOrder;
use crossdock_channel::{ChannelFactory, HeaderValue, InboundRequest};
use crossdock_kit::{HubAccess, HubAddress, Platform, Signed};
use crossdock_model::Status;

struct PosPlatform;

#[async_trait]
impl Platform for PosPlatform {
    type Sim = PosSim;

    fn factory(&self) -> Box<dyn ChannelFactory> {
        Box::new(Factory)
    }

    fn signed(&self) -> Signed {
        Signed {
            body: true,
            headers: &[
                "x-crossdock-signature",
                "x-crossdock-timestamp",
                "x-crossdock-store",
            ],
            query: false,
        }
    }

    /// Signs again at `received_at`, as the store named in the request would.
    fn resign(&self, request: &mut InboundRequest) {
        let Some(store) = request.header(STORE_HEADER).map(str::to_owned) else {
            return;
        };
        let timestamp = request.received_at.timestamp();
        let key = store_key(DEV_MASTER_KEY.as_bytes(), &store);
        let signature = sign(&key, timestamp, &request.body);
        request
            .headers
            .insert(TIMESTAMP_HEADER, HeaderValue::from(timestamp));
        if let Ok(value) = HeaderValue::try_from(signature) {
            request.headers.insert(SIGNATURE_HEADER, value);
        }
    }

    async fn start(&self) -> anyhow::Result<PosSim> {
        PosSim::start(SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: String::new(),
            master_key: DEV_MASTER_KEY.to_owned(),
            register: DEFAULT_REGISTER.to_owned(),
        })
        .await
        .context("starting the POS simulator")
    }

    /// The adapter calls nothing: its defaults (and the development master key) do.
    fn options(&self, _sim: &PosSim) -> serde_json::Value {
        serde_json::json!({})
    }

    fn connect(&self, sim: &PosSim, hub: &HubAddress) {
        sim.connect(&format!("{}/webhooks/pos", hub.base.trim_end_matches('/')));
    }

    async fn place_order(
        &self,
        sim: &PosSim,
        _hub: &HubAccess,
        sample: &SampleOrder,
    ) -> anyhow::Result<String> {
        let posted = sim.place_order(sample).await?;
        anyhow::ensure!(
            posted.accepted(),
            "the hub answered the POS order {} {}",
            posted.answer.status,
            posted.answer.body
        );
        posted
            .external_order_id
            .context("a placed order has an external id")
    }

    /// What the POS itself knows: `Received` once posted, `Cancelled` once voided. Nothing
    /// the hub does changes it (every push is skipped).
    fn status(&self, sim: &PosSim, external_order_id: &str) -> Option<Status> {
        sim.status(external_order_id)
    }

    /// The POS voids the sale.
    async fn cancel(&self, sim: &PosSim, external_order_id: &str) -> anyhow::Result<bool> {
        let posted = sim
            .void(external_order_id, Some("Customer changed their mind"))
            .await?;
        anyhow::ensure!(
            posted.accepted(),
            "the hub answered the void {} {}",
            posted.answer.status,
            posted.answer.body
        );
        Ok(true)
    }

    async fn stop(&self, sim: PosSim) {
        sim.stop().await;
    }
}

#[test]
fn the_unit_tests_sign_fixtures_at_the_kits_time() {
    assert_eq!(crossdock_kit::FIXTURE_TIME, "2026-11-20T12:00:00Z");
    assert_eq!(
        crossdock_kit::FIXTURE_PUBLIC_URL,
        "https://hub.crossdock.example"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    crossdock_kit::conformance(PosPlatform).await;
}
