//! The chain's menu end to end: an order naming an item or modifier option (PLU) the chain
//! does not sell is refused before any store is asked — an Uber Eats order is acknowledged
//! and then denied with Uber's item-availability reason, an own-app delivery is rejected
//! with a status callback, a Google checkout is answered "item unavailable", each naming
//! the PLU, and HQ's view of the order shows the routing decision that names it. A menu
//! changed in the database reaches the running hub's router; with no menu, items are not
//! checked.

use crossdock_adapter_google::simulator::{GoogleSim, SimConfig};
use crossdock_channel::sim::{SampleItem, SampleOrder};
use crossdock_db::chain::{MenuEntry, MenuKind};
use crossdock_model::Status;
use serde_json::Value;

use crate::helpers::{TestHub, WAIT, channel_store_id, sample_delivery, sample_pickup, wait_for};

/// A drop-off point inside the delivery zones of New York stores.
const MIDTOWN: (f64, f64) = (40.74235, -73.97845);

/// A pizza the sample chain does not sell.
const NOT_ON_MENU: &str = "PZ-HAWAII-XL";

fn item(plu: &str, name: &str, unit_price_minor: i64) -> SampleItem {
    SampleItem {
        plu: plu.into(),
        name: name.into(),
        quantity: 1,
        unit_price_minor,
        notes: None,
        modifiers: vec![],
    }
}

/// `sample` with one more line: the pizza the chain does not sell.
fn with_unknown_line(mut sample: SampleOrder) -> SampleOrder {
    sample
        .items
        .push(item(NOT_ON_MENU, "Hawaiian (Extra large)", 2499));
    sample
}

/// Waits until the channel's order has `status`; returns its id.
async fn order_with(hub: &TestHub, channel: &str, external: &str, status: Status) -> String {
    let db = hub.db();
    let order = wait_for(
        &format!("{channel} order {external} to be {status}"),
        WAIT,
        || async move {
            db.order_by_external(channel, external)
                .await
                .ok()
                .flatten()
                .filter(|o| o.status == status)
        },
    )
    .await;
    assert_eq!(order.store_id, None, "no store was given the order");
    order.id.to_string()
}

/// The order as HQ sees it, and its `routed` event (the routing decision).
async fn hq_view(hub: &TestHub, order_id: &str) -> (Value, Value) {
    let (status, view) = hub
        .get(&hub.admin_token, &format!("/orders/{order_id}"))
        .await;
    assert_eq!(status, 200, "{view}");
    let routed = view["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "routed")
        .cloned()
        .unwrap_or_else(|| panic!("no routed event in {view}"));
    (view, routed)
}

/// Checks that the routing decision refused the order on the menu, naming `plu`, with no
/// store looked at.
fn assert_refused_on_the_menu(routed: &Value, plu: &str) {
    let expected = format!("item unavailable: PLU {plu} is not on the chain's menu");
    assert_eq!(routed["reason"], expected.as_str(), "{routed}");
    let decision = &routed["data"];
    assert_eq!(decision["rule"], "menu", "{routed}");
    assert_eq!(decision["refusal"], "unknown_item", "{routed}");
    assert_eq!(decision["reason"], expected.as_str(), "{routed}");
    assert_eq!(decision["store"], Value::Null, "{routed}");
    assert_eq!(decision["candidates"], serde_json::json!([]), "{routed}");
}

/// The sample menu as the database holds it, with `plu` added as an item.
async fn menu_with(hub: &TestHub, plu: &str) -> Vec<MenuEntry> {
    let mut menu = hub.db().menu().await.expect("the menu");
    assert!(!menu.is_empty(), "the test hub loads the sample menu");
    menu.push(MenuEntry {
        plu: plu.into(),
        name: "Hawaiian (Extra large)".into(),
        kind: MenuKind::Item,
        category: Some("pizza".into()),
        prices: [("USD".to_owned(), 2499)].into(),
    });
    menu
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uber_eats_order_naming_an_item_not_on_the_menu_is_denied_as_item_unavailable() {
    let hub = TestHub::start().await;
    let uber_store = channel_store_id("NYC-001", "uber_eats");
    let placed = hub
        .uber
        .place_order(&with_unknown_line(sample_pickup(&uber_store, "USD")))
        .await;
    // Acknowledged: the order is recorded before anything is decided.
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    let external = placed.external_order_id.clone();

    let denied = hub
        .uber
        .calls()
        .wait_until(WAIT, |calls| {
            calls
                .iter()
                .any(|c| c.path.ends_with(&format!("/{external}/deny_pos_order")))
        })
        .await;
    let deny = denied
        .iter()
        .find(|c| c.path.ends_with(&format!("/{external}/deny_pos_order")))
        .expect("the deny");
    assert_eq!(deny.body["reason"]["code"], "ITEM_AVAILABILITY", "{deny:?}");
    let explanation = deny.body["reason"]["explanation"]
        .as_str()
        .unwrap_or_default();
    assert!(explanation.contains(NOT_ON_MENU), "{explanation}");
    assert!(
        !denied
            .iter()
            .any(|c| c.path.ends_with(&format!("/{external}/accept_pos_order"))),
        "never accepted: {denied:#?}"
    );

    let order_id = order_with(&hub, "uber_eats", &external, Status::Rejected).await;
    let (view, routed) = hq_view(&hub, &order_id).await;
    assert_eq!(view["status"], "rejected", "{view}");
    assert_refused_on_the_menu(&routed, NOT_ON_MENU);

    // The chain adds the item: the running hub's router learns it, and the same order is
    // taken by the store it names.
    hub.db()
        .replace_menu(&menu_with(&hub, NOT_ON_MENU).await)
        .await
        .expect("a new menu");
    let shared = &hub.handle().shared;
    wait_for("the router to read the new menu", WAIT, || async {
        shared.registry().on_menu(NOT_ON_MENU).then_some(())
    })
    .await;
    let placed = hub
        .uber
        .place_order(&with_unknown_line(sample_pickup(&uber_store, "USD")))
        .await;
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    let view = hub
        .routed_order("uber_eats", &placed.external_order_id)
        .await;
    assert_eq!(view["store_id"], "NYC-001", "{view}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_app_delivery_naming_an_unknown_option_is_rejected_with_a_status_callback() {
    let hub = TestHub::start().await;
    let mut sample = sample_delivery(MIDTOWN.0, MIDTOWN.1, "USD");
    // An option nested under a known one: "half & half" with a second half the chain
    // does not make.
    let mut half = item("MOD-HALF-HALF", "Half & half", 0);
    half.modifiers
        .push(item("MOD-HALF-TRUFFLE", "Truffle (half)", 300));
    sample.items[0].modifiers.push(half);
    let placed = hub.app.place_order(&sample).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);

    let calls = hub
        .app
        .calls()
        .wait_until(WAIT, |calls| !calls.is_empty())
        .await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].body["status"], "rejected");
    assert_eq!(calls[0].body["order_id"], placed.external_order_id.as_str());
    assert_eq!(
        calls[0].body["reason"],
        "item unavailable: PLU MOD-HALF-TRUFFLE is not on the chain's menu"
    );

    let order_id = order_with(&hub, "own_app", &placed.external_order_id, Status::Rejected).await;
    let (_, routed) = hq_view(&hub, &order_id).await;
    assert_refused_on_the_menu(&routed, "MOD-HALF-TRUFFLE");

    // The same delivery without the unknown option goes to a store by its zone.
    let placed = hub
        .app
        .place_order(&sample_delivery(MIDTOWN.0, MIDTOWN.1, "USD"))
        .await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert!(view["store_id"].is_string(), "{view}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_checkout_with_an_item_not_on_the_menu_is_answered_item_unavailable() {
    let hub = TestHub::start().await;
    let google = GoogleSim::start(SimConfig {
        hub_webhook_url: format!("{}/webhooks/google", hub.base()),
        ..SimConfig::default()
    })
    .await
    .expect("Google simulator");
    let merchant = channel_store_id("NYC-001", "google");
    let answer = google
        .checkout(&with_unknown_line(sample_pickup(&merchant, "USD")))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON answer");
    let errors = &body["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["error"]
        ["foodOrderErrors"];
    assert_eq!(errors[0]["error"], "AVAILABILITY_CHANGED", "{body}");
    assert!(
        errors[0]["description"]
            .as_str()
            .is_some_and(|d| d.contains(NOT_ON_MENU)),
        "{body}"
    );
    google.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_menu_the_hub_routes_items_it_cannot_check() {
    let hub = TestHub::start().await;
    // HQ clears the menu: nothing left to check items against.
    hub.db().replace_menu(&[]).await.expect("no menu");
    let shared = &hub.handle().shared;
    wait_for("the router to drop the menu", WAIT, || async {
        shared.registry().menu().is_none().then_some(())
    })
    .await;
    let placed = hub
        .app
        .place_order(&with_unknown_line(sample_delivery(
            MIDTOWN.0, MIDTOWN.1, "USD",
        )))
        .await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    assert!(view["store_id"].is_string(), "{view}");
    hub.stop().await;
}
