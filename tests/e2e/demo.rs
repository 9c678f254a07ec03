//! The demo's traffic (`crossdock demo`) against a test hub: every simulator starts, the
//! hub is configured and connected as the demo does it, and the traffic's orders of every
//! channel are routed to the store they were built for, in that store's currency, with
//! item codes from the chain's menu (which the test hub loads, as the demo does: an order
//! naming anything else would be refused). A simulator that cannot reach the hub fails its
//! own orders only.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crossdock_hub::demo::{CHANNELS, Menu, SimPorts, Sims, Traffic};
use crossdock_kit::harness::Hub;
use crossdock_model::StoreId;

use crate::helpers::{chain, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_traffic_brings_orders_of_every_channel_to_their_stores() {
    let sims = Sims::start(SimPorts::ANY).await;
    assert!(
        sims.failed.is_empty(),
        "simulators failed: {:?}",
        sims.failed
    );
    let hub = Hub::start(sims.hub_options()).await;
    sims.connect(&hub.access.address.base, &hub.access.address.public);
    // Ele.me's pushes go nowhere: its orders fail, the others go on.
    let eleme = sims.eleme.as_ref().expect("the Ele.me simulator runs");
    eleme.set_hub_webhook_url("http://127.0.0.1:9/webhooks/eleme");

    let chain = chain();
    let tokens: HashMap<StoreId, String> = chain
        .stores
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                hub.access.store_token(s.id.as_str()).to_owned(),
            )
        })
        .collect();
    let menu = Menu::read(&repo_root().join("fixtures/chain/menu.json")).expect("menu");
    let on_menu: BTreeSet<String> = menu
        .entries()
        .expect("menu entries")
        .into_iter()
        .map(|entry| entry.plu)
        .collect();
    let home = StoreId::parse("NYC-001".to_owned()).expect("store id");
    let mut traffic = Traffic::new(
        Arc::new(sims),
        &chain,
        menu,
        home,
        tokens,
        hub.base().to_owned(),
    );
    assert_eq!(
        traffic.channels(),
        CHANNELS,
        "the traffic rotates over every channel"
    );

    let mut routed = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    // Two rounds: each channel's variants (own-app pickup and delivery by zone, Uber Eats
    // classic and new API).
    for _ in 0..2 * CHANNELS.len() {
        let placed = traffic
            .place_next()
            .await
            .expect("a channel takes the order");
        kinds.insert((placed.channel, placed.kind));
        if placed.channel == "eleme" {
            let error = placed.result.expect_err("Ele.me cannot reach the hub");
            assert!(
                format!("{error:#}").contains("could not reach the hub"),
                "{error:#}"
            );
            continue;
        }
        let external = placed.result.unwrap_or_else(|e| {
            panic!(
                "the {} order for {} failed: {e:#}",
                placed.channel, placed.store
            )
        });
        let view = hub.routed_order(placed.channel, &external).await;
        let store = chain
            .stores
            .iter()
            .find(|s| s.id == placed.store)
            .expect("the order's store is in the chain");
        if placed.names_store {
            assert_eq!(
                view["store_id"],
                placed.store.as_str(),
                "{} order: {view}",
                placed.channel
            );
            assert!(store.channels.contains_key(placed.channel));
        } else {
            assert!(view["store_id"].is_string(), "routed by zone: {view}");
        }
        assert_eq!(
            view["totals"]["currency"],
            store.currency.code(),
            "{} order: {view}",
            placed.channel
        );
        assert_eq!(view["flags"], serde_json::json!([]), "{view}");
        let mut plus = Vec::new();
        plus_of(&view["lines"], &mut plus);
        for plu in plus {
            assert!(
                on_menu.contains(plu),
                "{} order names {plu}, not on the menu: {view}",
                placed.channel
            );
        }
        routed.insert(placed.channel);
    }
    let expected: BTreeSet<&str> = CHANNELS.into_iter().filter(|c| *c != "eleme").collect();
    assert_eq!(routed, expected);
    assert!(kinds.contains(&("own_app", "delivery near the store, routed by zone")));
    assert!(kinds.contains(&("uber_eats", "pickup, new API")));
    hub.stop().await;
}

/// Every PLU of an order's lines and their modifiers, at any depth.
fn plus_of<'a>(lines: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    for line in lines.as_array().into_iter().flatten() {
        out.extend(line["plu"].as_str());
        plus_of(&line["modifiers"], out);
    }
}
