//! The web pages in a real browser (Debian's headless Chromium through chromedriver): the
//! store console (`/store`) signs in, shows new orders live with the time left to accept,
//! accepts them (the platform's simulator records it), prints kitchen tickets and delivery
//! slips, pauses the store and takes items off, never shows another store's order, and
//! catches up after its connection drops; the HQ dashboard (`/hq`) finds an order by its
//! code and shows its timeline, and replays a parked status sync to the platform.
//! Screenshots of both pages at tablet and desktop size land in `screenshots/`.

use crossdock_adapter_uber_eats::Generation;
use crossdock_kit::browser::{Browser, DESKTOP, TABLET};
use crossdock_kit::proxy::Proxy;
use serde_json::{Value, json};

use crate::helpers::{TestHub, WAIT, channel_store_id, sample_delivery, sample_pickup, wait_for};

/// A drop-off point inside the delivery zone of the New York stores.
const MIDTOWN: (f64, f64) = (40.74235, -73.97845);

async fn browser() -> Browser {
    Browser::start()
        .await
        .unwrap_or_else(|error| panic!("starting the browser: {error}"))
}

/// Signs in to the store console at `base` (the hub, or a proxy in front of it) and waits
/// for the live stream.
async fn open_console(browser: &Browser, base: &str, token: &str) {
    browser
        .goto(&format!("{base}/store"))
        .await
        .expect("console page");
    browser.fill("#token", token).await.expect("token");
    browser.click("#signin-button").await.expect("sign in");
    browser
        .find("body[data-connection='live']")
        .await
        .expect("the console's stream is live");
}

/// Places an Uber Eats pickup at `store` and waits until the hub routed it; returns the
/// hub's view of it.
async fn uber_order_at(hub: &TestHub, store: &str) -> Value {
    let placed = hub
        .uber
        .place_order(&sample_pickup(&channel_store_id(store, "uber_eats"), "USD"))
        .await;
    assert_eq!(placed.answer.status, 200, "{:?}", placed.answer);
    hub.routed_order("uber_eats", &placed.external_order_id)
        .await
}

fn card(order: &Value) -> String {
    format!("#order-{}", order["id"].as_str().expect("id"))
}

fn code(order: &Value) -> String {
    order["display_code"]
        .as_str()
        .or(order["external_order_id"].as_str())
        .expect("a code")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_sees_a_new_order_without_reloading_accepts_it_and_the_platform_hears() {
    let hub = TestHub::start().await;
    let browser = browser().await;
    browser.set_size(TABLET.0, TABLET.1).await.expect("size");
    open_console(&browser, hub.base(), hub.token("NYC-001")).await;
    browser
        .wait_text("#store-name", "", WAIT)
        .await
        .expect("the store's name");
    assert_eq!(browser.count(".card").await.expect("cards"), 0);
    let page_loads = browser
        .eval("return performance.getEntriesByType('navigation').length")
        .await
        .expect("eval");

    // An order from the platform appears on its own, rings, and counts as waiting.
    let order = uber_order_at(&hub, "NYC-001").await;
    let selector = card(&order);
    let text = browser
        .wait_text(&selector, &code(&order), WAIT)
        .await
        .expect("the new order's card");
    for expected in [
        "Uber Eats",
        "Pickup",
        "Margherita (Large)",
        "Extra cheese",
        "well done",
        "Cola 330ml",
        "Ada Lovelace",
        "ring the bell",
        "Accept within",
    ] {
        assert!(
            text.contains(expected),
            "the card lacks {expected:?}: {text}"
        );
    }
    assert!(
        browser
            .count(&format!("#lane-new {selector}"))
            .await
            .expect("lane")
            == 1,
        "a new order waits in the New lane"
    );
    browser
        .wait_text("#waiting", "1 waiting", WAIT)
        .await
        .expect("the waiting count");
    let rings = browser
        .eval("return Number(document.body.dataset.rings || 0)")
        .await
        .expect("eval");
    assert!(rings.as_u64() >= Some(1), "a new order rings: {rings}");
    assert_eq!(
        browser
            .eval("return performance.getEntriesByType('navigation').length")
            .await
            .expect("eval"),
        page_loads,
        "the page was not reloaded"
    );
    browser
        .screenshot("store-console-tablet")
        .await
        .expect("screenshot");

    // The kitchen ticket carries the code, the items with their modifiers and notes.
    browser
        .eval("window.printed = 0; window.print = () => { window.printed += 1; }; return true")
        .await
        .expect("eval");
    browser
        .click(&format!("{selector} button[data-action='ticket']"))
        .await
        .expect("ticket");
    let ticket = browser
        .eval("return [window.printed, document.querySelector('#print').textContent]")
        .await
        .expect("eval");
    assert_eq!(ticket[0], 1, "the ticket went to the printer");
    let ticket = ticket[1].as_str().expect("text");
    for expected in [
        code(&order).as_str(),
        "2× Margherita (Large)",
        "Extra cheese",
        "well done",
        "ring the bell",
    ] {
        assert!(
            ticket.contains(expected),
            "the ticket lacks {expected:?}: {ticket}"
        );
    }

    // Accept with 20 minutes: the card moves to the kitchen and Uber Eats records it.
    browser
        .select(&format!("{selector} select[data-prep]"), "20")
        .await
        .expect("prep minutes");
    browser
        .click(&format!("{selector} button[data-action='accept']"))
        .await
        .expect("accept");
    browser
        .wait_text(&format!("#lane-kitchen {selector}"), "Accepted", WAIT)
        .await
        .expect("the card in the kitchen lane");
    browser
        .wait_text("#waiting", "0 waiting", WAIT)
        .await
        .expect("nothing waits");
    let calls = hub
        .uber
        .calls()
        .wait_until(WAIT, |calls| {
            calls
                .iter()
                .any(|c| c.path.contains("accept_pos_order") && c.answered == 200)
        })
        .await;
    let accepted = calls
        .iter()
        .filter(|c| c.path.contains("accept_pos_order"))
        .count();
    assert_eq!(accepted, 1, "one accept reached Uber Eats: {calls:#?}");

    for (action, lane, label) in [
        ("preparing", "kitchen", "Preparing"),
        ("ready", "ready", "Ready"),
    ] {
        browser
            .click(&format!("{selector} button[data-action='{action}']"))
            .await
            .expect(action);
        browser
            .wait_text(&format!("#lane-{lane} {selector}"), label, WAIT)
            .await
            .expect(label);
    }
    // A second order, waiting, so the desktop picture shows two lanes at work.
    let next = uber_order_at(&hub, "NYC-001").await;
    browser
        .wait_text(&format!("#lane-new {}", card(&next)), &code(&next), WAIT)
        .await
        .expect("the second order");
    browser.set_size(DESKTOP.0, DESKTOP.1).await.expect("size");
    browser
        .screenshot("store-console-desktop")
        .await
        .expect("screenshot");
    browser.close().await.expect("close");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_console_never_shows_another_stores_order_and_rejects_with_a_reason() {
    let hub = TestHub::start().await;
    let (first, second) = tokio::join!(browser(), browser());
    open_console(&first, hub.base(), hub.token("NYC-001")).await;
    open_console(&second, hub.base(), hub.token("NYC-002")).await;

    let theirs = uber_order_at(&hub, "NYC-002").await;
    second
        .wait_text(&card(&theirs), &code(&theirs), WAIT)
        .await
        .expect("NYC-002 sees its order");
    // Then one of NYC-001's own: once it shows, NYC-001's page has seen every change
    // published before it, and NYC-002's order is not among them.
    let ours = uber_order_at(&hub, "NYC-001").await;
    first
        .wait_text(&card(&ours), &code(&ours), WAIT)
        .await
        .expect("NYC-001 sees its order");
    assert_eq!(first.count(".card").await.expect("cards"), 1);
    assert_eq!(first.count(&card(&theirs)).await.expect("cards"), 0);
    assert_eq!(second.count(&card(&ours)).await.expect("cards"), 0);

    // NYC-002 rejects: the dialog offers the reasons channels understand, the card goes, and
    // HQ has the order (Uber Eats named the store).
    second
        .click(&format!("{} button[data-action='reject']", card(&theirs)))
        .await
        .expect("reject");
    second
        .select("#reject-reason", "item unavailable")
        .await
        .expect("reason");
    second.click("#reject-confirm").await.expect("confirm");
    second
        .wait_gone(&card(&theirs), WAIT)
        .await
        .expect("the rejected order leaves the console");
    let db = hub.db();
    let id = crossdock_model::OrderId::parse(theirs["id"].as_str().expect("id")).expect("id");
    let waiting = wait_for("the order on HQ's attention list", WAIT, || async move {
        db.attention_list(50, chrono::Utc::now())
            .await
            .ok()
            .and_then(|items| items.into_iter().find(|item| item.order.id == id))
    })
    .await;
    assert!(
        waiting.reason.contains("item unavailable"),
        "HQ sees the store's reason: {}",
        waiting.reason
    );
    for browser in [first, second] {
        browser.close().await.expect("close");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_catches_up_after_its_connection_drops_with_nothing_missed_or_twice() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(hub.handle().addr.expect("api address"))
        .await
        .expect("proxy");
    let browser = browser().await;
    open_console(&browser, &proxy.url(), hub.token("NYC-001")).await;
    let before = uber_order_at(&hub, "NYC-001").await;
    browser
        .wait_text(&card(&before), &code(&before), WAIT)
        .await
        .expect("the first order");

    // The connection drops. Meanwhile a second order arrives and the platform cancels the
    // first.
    proxy.cut().await;
    browser
        .find("body[data-connection='down']")
        .await
        .expect("the page notices the drop");
    browser
        .wait_text("#banner", "Connection lost", WAIT)
        .await
        .expect("and says so");
    let connections = proxy.connections();
    let during = uber_order_at(&hub, "NYC-001").await;
    let cancelled = hub
        .uber
        .cancel_order(before["external_order_id"].as_str().expect("id"))
        .await;
    assert_eq!(cancelled.status, 200);
    let db = hub.db();
    let id = crossdock_model::OrderId::parse(before["id"].as_str().expect("id")).expect("id");
    wait_for("the cancellation recorded", WAIT, || async move {
        db.order(id, None)
            .await
            .ok()
            .flatten()
            .filter(|o| o.status == crossdock_model::Status::Cancelled)
    })
    .await;
    assert_eq!(
        browser.count(&card(&during)).await.expect("cards"),
        0,
        "nothing reaches a page without a connection"
    );

    proxy.restore();
    proxy
        .wait_connections(connections + 1, WAIT)
        .await
        .expect("the page reconnects");
    browser
        .wait_text(&card(&during), &code(&during), WAIT)
        .await
        .expect("the order that came while the page was away");
    browser
        .wait_text(&format!("#lane-done {}", card(&before)), "Cancelled", WAIT)
        .await
        .expect("the cancellation that came while the page was away");
    browser
        .find("body[data-connection='live']")
        .await
        .expect("live again");
    for order in [&before, &during] {
        assert_eq!(
            browser
                .count(&format!(".card[data-code='{}']", code(order)))
                .await
                .expect("cards"),
            1,
            "{} is shown once",
            code(order)
        );
    }
    assert_eq!(browser.count(".card").await.expect("cards"), 2);
    browser.close().await.expect("close");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pauses_the_store_and_takes_items_off() {
    let hub = TestHub::start().await;
    let browser = browser().await;
    let token = hub.token("NYC-001").to_owned();
    open_console(&browser, hub.base(), &token).await;

    browser.click("#pause-button").await.expect("pause");
    browser
        .select("#pause-minutes", "30")
        .await
        .expect("minutes");
    browser
        .fill("#pause-reason", "oven down")
        .await
        .expect("reason");
    browser.click("#pause-confirm").await.expect("confirm");
    browser
        .wait_text("#pause-state", "Paused until", WAIT)
        .await
        .expect("the console shows the pause");
    browser
        .wait_text("#banner", "oven down", WAIT)
        .await
        .expect("and its reason");
    let (status, live) = hub.get(&token, "/stores/NYC-001/live").await;
    assert_eq!((status, &live["paused"]), (200, &json!(true)), "{live}");
    assert_eq!(live["pause_reason"], "oven down");
    // An address order now goes past the paused store.
    let placed = hub
        .app
        .place_order(&sample_delivery(MIDTOWN.0, MIDTOWN.1, "USD"))
        .await;
    let routed = hub.routed_order("own_app", &placed.external_order_id).await;
    assert_ne!(
        routed["store_id"], "NYC-001",
        "a paused store gets no order"
    );

    browser.click("#resume-button").await.expect("resume");
    browser
        .find("#pause-button")
        .await
        .expect("the store takes orders again");
    let (_, live) = hub.get(&token, "/stores/NYC-001/live").await;
    assert_eq!(live["paused"], false);

    browser.click("#items-button").await.expect("items");
    browser.fill("#plu", "PZ-MARG-L").await.expect("plu");
    browser.click("#mark-unavailable").await.expect("mark");
    browser
        .wait_text("#unavailable-list", "PZ-MARG-L", WAIT)
        .await
        .expect("the item is off");
    let (_, live) = hub.get(&token, "/stores/NYC-001/live").await;
    assert_eq!(live["unavailable"], json!(["PZ-MARG-L"]));
    browser
        .click("#unavailable-list button[data-available='PZ-MARG-L']")
        .await
        .expect("available again");
    browser
        .wait_text("#unavailable-list", "Every item can be made", WAIT)
        .await
        .expect("the item is back");
    let (_, live) = hub.get(&token, "/stores/NYC-001/live").await;
    assert_eq!(live["unavailable"], json!([]));
    browser.close().await.expect("close");
    hub.stop().await;
}

/// Signs in to the dashboard and waits for its first read.
async fn open_dashboard(browser: &Browser, hub: &TestHub) {
    browser
        .goto(&format!("{}/hq", hub.base()))
        .await
        .expect("dashboard page");
    browser
        .fill("#token", &hub.admin_token)
        .await
        .expect("token");
    browser.click("#signin-button").await.expect("sign in");
    browser
        .find("body[data-refreshed]")
        .await
        .expect("the dashboard's first read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_finds_an_order_by_its_code_and_sees_its_whole_timeline() {
    let hub = TestHub::start_with(Generation::Classic).await;
    let order = uber_order_at(&hub, "NYC-001").await;
    let id = order["id"].as_str().expect("id").to_owned();
    let (status, _) = hub
        .post(
            hub.token("NYC-001"),
            &format!("/orders/{id}/accept"),
            json!({"prep_minutes": 10}),
        )
        .await;
    assert_eq!(status, 200);
    hub.settled(&id).await;

    let browser = browser().await;
    browser.set_size(DESKTOP.0, DESKTOP.1).await.expect("size");
    open_dashboard(&browser, &hub).await;
    browser
        .wait_text("#channels-body", "Uber Eats", WAIT)
        .await
        .expect("counts per channel");
    browser
        .wait_text("#stores-body", "NYC-001", WAIT)
        .await
        .expect("counts per store");

    browser.fill("#q", &code(&order)).await.expect("code");
    browser.click("#search button").await.expect("find");
    let timeline = browser
        .wait_text("#order .timeline", "Synced to the channel", WAIT)
        .await
        .expect("the order's timeline");
    for expected in [
        "Received",
        "Routing decision",
        "NYC-001",
        "chosen",
        "Status → accepted",
        "accept (10 min)",
    ] {
        assert!(
            timeline.contains(expected),
            "the timeline lacks {expected:?}: {timeline}"
        );
    }
    assert_eq!(
        browser
            .text("#order [data-field='status']")
            .await
            .expect("status"),
        "accepted"
    );
    // The channel's own order id finds it too.
    browser.click("#close-order").await.expect("close");
    browser
        .fill("#q", order["external_order_id"].as_str().expect("id"))
        .await
        .expect("channel id");
    browser.click("#search button").await.expect("find");
    browser
        .wait_text("#order-title", &code(&order), WAIT)
        .await
        .expect("found by the channel's id");
    browser
        .screenshot("hq-dashboard-desktop")
        .await
        .expect("screenshot");
    browser.set_size(TABLET.0, TABLET.1).await.expect("size");
    browser
        .screenshot("hq-dashboard-tablet")
        .await
        .expect("screenshot");
    browser.close().await.expect("close");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_replays_a_parked_sync_from_the_dashboard_and_it_reaches_the_platform() {
    let hub = TestHub::start().await;
    let token = hub.token("NYC-001").to_owned();
    let placed = hub.app.place_order(&sample_pickup("NYC-001", "USD")).await;
    let view = hub.routed_order("own_app", &placed.external_order_id).await;
    let id = view["id"].as_str().expect("id").to_owned();
    // The app refuses the accept for good: it parks.
    hub.fail_app_pushes(400, 1);
    let (status, _) = hub
        .post(
            &token,
            &format!("/orders/{id}/accept"),
            json!({"prep_minutes": 7}),
        )
        .await;
    assert_eq!(status, 200);
    hub.settled(&id).await;

    let browser = browser().await;
    open_dashboard(&browser, &hub).await;
    browser
        .wait_text(
            &format!("#attention-body tr[data-attention='{id}']"),
            "Sync parked",
            WAIT,
        )
        .await
        .expect("the parked sync needs attention");
    let row = format!("#parked-body tr[data-parked='{id}']");
    browser
        .wait_text(&row, "accept", WAIT)
        .await
        .expect("the parked message");
    let accepted_before = hub
        .app
        .calls()
        .all()
        .iter()
        .filter(|c| c.body["status"] == "accepted" && c.answered == 200)
        .count();
    assert_eq!(accepted_before, 0, "the app refused the only try");

    // The platform is healed (the fault was used up); HQ replays from the dashboard.
    browser
        .click(&format!("{row} button[data-act='replay']"))
        .await
        .expect("replay");
    let calls = hub
        .app
        .calls()
        .wait_until(WAIT, |calls| {
            calls
                .iter()
                .any(|c| c.body["status"] == "accepted" && c.answered == 200)
        })
        .await;
    let accepted: Vec<_> = calls
        .iter()
        .filter(|c| c.body["status"] == "accepted" && c.answered == 200)
        .collect();
    assert_eq!(accepted.len(), 1, "{calls:#?}");
    assert_eq!(accepted[0].body["prep_minutes"], 7);
    browser
        .wait_gone(&row, WAIT)
        .await
        .expect("nothing parked any more");
    browser
        .wait_gone(&format!("#attention-body tr[data-attention='{id}']"), WAIT)
        .await
        .expect("nothing needs attention");
    browser.close().await.expect("close");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_card_shows_where_it_goes_and_prints_a_delivery_slip() {
    let hub = TestHub::start().await;
    let placed = hub
        .app
        .place_order(&sample_delivery(MIDTOWN.0, MIDTOWN.1, "USD"))
        .await;
    let order = hub.routed_order("own_app", &placed.external_order_id).await;
    let store = order["store_id"].as_str().expect("routed").to_owned();
    let browser = browser().await;
    open_console(&browser, hub.base(), hub.token(&store)).await;
    let text = browser
        .wait_text(&card(&order), &code(&order), WAIT)
        .await
        .expect("the delivery's card");
    for expected in [
        "Own app",
        "Delivery",
        "200 Example St",
        "Apt 4",
        "10011 New York",
    ] {
        assert!(
            text.contains(expected),
            "the card lacks {expected:?}: {text}"
        );
    }
    browser
        .eval("window.printed = 0; window.print = () => { window.printed += 1; }; return true")
        .await
        .expect("eval");
    browser
        .click(&format!("{} button[data-action='slip']", card(&order)))
        .await
        .expect("slip");
    let slip = browser
        .eval("return [window.printed, document.querySelector('#print').dataset.kind, document.querySelector('#print').textContent]")
        .await
        .expect("eval");
    assert_eq!((&slip[0], &slip[1]), (&json!(1), &json!("slip")));
    let slip = slip[2].as_str().expect("text");
    for expected in [
        code(&order).as_str(),
        "Ada Lovelace",
        "200 Example St",
        "Apt 4",
        "10011 New York",
        "2× Margherita (Large)",
        "Extra cheese",
        "ring the bell",
    ] {
        assert!(
            slip.contains(expected),
            "the slip lacks {expected:?}: {slip}"
        );
    }
    browser.close().await.expect("close");
    hub.stop().await;
}
