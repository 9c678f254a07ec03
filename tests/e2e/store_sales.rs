//! A store POS reports sales the store already made: they go to that store even while it is
//! paused for online orders, which a marketplace order to the same store is not.

use std::net::SocketAddr;

use crossdock_adapter_pos::DEV_MASTER_KEY;
use crossdock_adapter_pos::simulator::{DEFAULT_REGISTER, PosSim, SimConfig};
use crossdock_model::StoreId;

use crate::helpers::{TestHub, WAIT, sample_pickup, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_store_still_gets_its_own_pos_sales() {
    let hub = TestHub::start().await;
    let store = StoreId::parse("NYC-002").expect("store id");
    // HQ pauses the store for an hour; the hub that answers sees it at once.
    let (status, live) = hub
        .post(
            &hub.admin_token,
            &format!("/stores/{store}/pause"),
            serde_json::json!({ "minutes": 60, "reason": "oven repair" }),
        )
        .await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["paused"], true, "{live}");

    // An order from the app for the paused store is refused back to the app.
    let placed = hub.app.place_order(&sample_pickup("NYC-002", "USD")).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let db = hub.db();
    let external = placed.external_order_id.clone();
    let refused = wait_for("the app order to be refused", WAIT, || {
        let external = external.clone();
        async move {
            db.order_by_external("own_app", &external)
                .await
                .ok()
                .flatten()
                .filter(|o| o.status == crossdock_model::Status::Rejected)
        }
    })
    .await;
    assert_eq!(refused.store_id, None);

    // The store's POS sale goes to the store all the same.
    let pos = PosSim::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        hub_webhook_url: format!("{}/webhooks/pos", hub.base()),
        master_key: DEV_MASTER_KEY.to_owned(),
        register: DEFAULT_REGISTER.to_owned(),
    })
    .await
    .expect("POS simulator");
    let posted = pos
        .place_order(&sample_pickup("NYC-002", "USD"))
        .await
        .expect("post the sale");
    assert!(posted.accepted(), "{}", posted.answer.body);
    let external = posted.external_order_id.expect("external id");
    let view = hub.routed_order("pos", &external).await;
    assert_eq!(view["store_id"], "NYC-002");
    let (_, events) = hub
        .get(
            &hub.admin_token,
            &format!("/orders/{}/events", view["id"].as_str().expect("id")),
        )
        .await;
    let routed = events["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["kind"] == "routed"))
        .cloned()
        .expect("a routed event");
    assert_eq!(routed["data"]["rule"], "store_sale", "{routed}");
    pos.stop().await;
    hub.stop().await;
}
