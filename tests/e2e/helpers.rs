//! The test harness: the kit's hub (own database and broker prefix, the sample chain, a
//! token for every store) with the Uber Eats and own-app simulators.

use std::net::SocketAddr;
use std::ops::Deref;

use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig as AppSimConfig};
use crossdock_adapter_uber_eats::Generation;
use crossdock_adapter_uber_eats::simulator::{
    PlacedOrder as UberPlacedOrder, SimConfig as UberSimConfig, UberEatsSim,
};
use crossdock_channel::sim::{Fault, SampleFulfillment, SampleItem, SampleOrder};
use crossdock_hub::config::Settings;
use crossdock_kit::harness::Hub;
use serde_json::json;

pub use crossdock_kit::harness::{Infra, StoreQueue as PosQueue, WAIT, chain, repo_root, wait_for};

/// A running hub with both simulators. Derefs to the kit's [`Hub`] (database, waits,
/// the API as HQ and as every store).
pub struct TestHub {
    pub hub: Hub,
    pub admin_token: String,
    pub uber: UberEatsSim,
    pub app: OwnAppSim,
}

impl Deref for TestHub {
    type Target = Hub;

    fn deref(&self) -> &Hub {
        &self.hub
    }
}

impl TestHub {
    pub async fn start() -> TestHub {
        Self::start_with(Generation::Classic).await
    }

    /// Starts a hub whose Uber Eats simulator places orders on API generation `uber_api`.
    pub async fn start_with(uber_api: Generation) -> TestHub {
        Self::start_tuned(uber_api, |_| {}).await
    }

    /// Starts a hub with its settings changed by `tune` (short time limits, say).
    pub async fn start_tuned(uber_api: Generation, tune: impl FnOnce(&mut Settings)) -> TestHub {
        let uber = UberEatsSim::start(UberSimConfig {
            api: uber_api,
            ..UberSimConfig::default()
        })
        .await
        .expect("start Uber Eats simulator");
        let uber_options =
            serde_json::json!({ "base_url": uber.base_url(), "token_url": uber.token_url() });
        let mut infra = Infra::new().await;
        tune(&mut infra.settings);
        let hub = Hub::start_on(infra, [("uber_eats".to_owned(), uber_options)]).await;
        let base = hub.base().to_owned();
        uber.set_hub_webhook_url(format!("{base}/webhooks/uber_eats"));
        let app = OwnAppSim::start(AppSimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            hub_webhook_url: format!("{base}/webhooks/own_app"),
            signing_secret: crossdock_adapter_own_app::DEV_SIGNING_SECRET.into(),
        })
        .await
        .expect("start own app simulator");
        TestHub {
            admin_token: hub.access.admin_token.clone(),
            hub,
            uber,
            app,
        }
    }

    pub fn token(&self, store: &str) -> &str {
        self.hub.access.store_token(store)
    }

    /// GET `/api/v1{path}` with `token`; returns (status, JSON body).
    pub async fn get(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        self.hub.access.get(token, path).await
    }

    /// POST `/api/v1{path}` with `token` and a JSON body.
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.hub.access.post(token, path, body).await
    }

    /// Places a pickup order in US dollars on the Uber Eats simulator at `store` (the
    /// chain's id; the order names the store's Uber Eats id).
    pub async fn uber_pickup(&self, store: &str) -> UberPlacedOrder {
        self.uber
            .place_order(&sample_pickup(&channel_store_id(store, "uber_eats"), "USD"))
            .await
    }

    /// Makes the own-app simulator answer its next `times` status pushes with `status`: a
    /// 5xx the hub retries, a 4xx a refusal for good (the push parks).
    pub fn fail_app_pushes(&self, status: u16, times: usize) {
        self.app.faults().push(
            Fault {
                status: Some(status),
                retry_after_s: None,
                delay: None,
            },
            times,
        );
    }

    /// POSTs each of `actions` (`accept`, `ready`, …) for the order as `token`, in turn,
    /// with an empty body; each must answer 200.
    pub async fn post_actions(&self, token: &str, order_id: &str, actions: &[&str]) {
        for action in actions {
            let (status, body) = self
                .post(token, &format!("/orders/{order_id}/{action}"), json!({}))
                .await;
            assert_eq!(status, 200, "{action}: {body}");
        }
    }

    pub async fn stop(self) {
        self.hub.stop().await;
        self.uber.stop().await;
        self.app.stop().await;
    }
}

/// The channel's id of a store of the sample chain.
pub fn channel_store_id(store: &str, channel: &str) -> String {
    chain()
        .stores
        .into_iter()
        .find(|s| s.id.as_str() == store)
        .and_then(|s| s.channels.get(channel).cloned())
        .unwrap_or_else(|| panic!("{channel} does not list store {store}"))
}

/// A pickup order at the store the channel knows as `store_ref`.
pub fn sample_pickup(store_ref: &str, currency: &str) -> SampleOrder {
    SampleOrder {
        store_ref: Some(store_ref.to_owned()),
        currency: currency.into(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "Ada Lovelace".into(),
        customer_phone: Some("+1 212 555 0187".into()),
        items: vec![
            SampleItem {
                plu: "PZ-MARG-L".into(),
                name: "Margherita (Large)".into(),
                quantity: 2,
                unit_price_minor: 1899,
                notes: Some("well done".into()),
                modifiers: vec![SampleItem {
                    plu: "MOD-TOP-XCHS".into(),
                    name: "Extra cheese".into(),
                    quantity: 1,
                    unit_price_minor: 250,
                    notes: None,
                    modifiers: vec![],
                }],
            },
            SampleItem {
                plu: "DR-COLA-500".into(),
                name: "Cola 330ml".into(),
                quantity: 1,
                unit_price_minor: 299,
                notes: None,
                modifiers: vec![],
            },
        ],
        notes: Some("ring the bell".into()),
        delivery_fee_minor: 0,
        tip_minor: 200,
        discount_minor: 300,
        scheduled_for: None,
    }
}

/// A delivery order to (lat, lng), for the router to place by delivery zone.
pub fn sample_delivery(lat: f64, lng: f64, currency: &str) -> SampleOrder {
    SampleOrder {
        store_ref: None,
        fulfillment: SampleFulfillment::Delivery {
            lat,
            lng,
            address_lines: vec!["200 Example St".into(), "Apt 4".into()],
            city: "New York".into(),
            postcode: "10011".into(),
            country: "US".into(),
        },
        delivery_fee_minor: 399,
        ..sample_pickup("unused", currency)
    }
}

/// A queue of the test's own bound to one routing-key pattern, never consumed: how many
/// messages went under it through the broker.
pub struct CountingQueue {
    channel: lapin::Channel,
    connection: lapin::Connection,
    queue: String,
}

impl CountingQueue {
    pub async fn bind(settings: &Settings, pattern: &str) -> CountingQueue {
        let connection = crossdock_broker::connect(&settings.broker)
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        let queue = format!(
            "{}.counted.{}",
            settings.broker.prefix,
            uuid::Uuid::new_v4().simple()
        );
        let counted = CountingQueue {
            channel,
            connection,
            queue,
        };
        counted.declare(false).await;
        counted
            .channel
            .queue_bind(
                counted.queue.as_str().into(),
                crossdock_broker::Topology::from_config(&settings.broker)
                    .exchange()
                    .as_str()
                    .into(),
                pattern.into(),
                lapin::options::QueueBindOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("bind the counting queue");
        counted
    }

    /// Declares the queue (`passive`: only asks); how many messages it holds.
    async fn declare(&self, passive: bool) -> u32 {
        self.channel
            .queue_declare(
                self.queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive,
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .expect("the counting queue")
            .message_count()
    }

    pub async fn count(&self) -> u32 {
        self.declare(true).await
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "test done".into()).await;
    }
}
