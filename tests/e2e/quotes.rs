//! A checkout (Google's) is answered from the router's decision and recorded nowhere: a
//! store that can take the order gets the priced cart, a delivery outside every zone gets
//! the platform's "out of service area", a paused store "closed".

use crossdock_adapter_google::simulator::{GoogleSim, SimConfig};
use crossdock_channel::sim::SampleFulfillment;
use serde_json::{Value, json};

use crate::helpers::{TestHub, sample_pickup};

async fn count(hub: &TestHub, table: &str) -> i64 {
    let client = hub.db().pool().get().await.expect("connection");
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// The `FoodErrorExtension` error of a checkout answer, if any.
fn food_error(answer: &str) -> Option<String> {
    let value: Value = serde_json::from_str(answer).expect("JSON answer");
    let text = value.to_string();
    ["OUT_OF_SERVICE_AREA", "CLOSED", "NO_CAPACITY", "INVALID"]
        .iter()
        .find(|code| text.contains(&format!("\"{code}\"")))
        .map(|code| code.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_is_answered_from_the_router_and_recorded_nowhere() {
    let hub = TestHub::start().await;
    let google = GoogleSim::start(SimConfig {
        hub_webhook_url: format!("{}/webhooks/google", hub.base()),
        ..SimConfig::default()
    })
    .await
    .expect("Google simulator");
    let (orders, inbox) = (count(&hub, "orders").await, count(&hub, "inbox").await);

    let servable = google
        .checkout(&sample_pickup("crossdockpizza-nyc-001", "USD"))
        .await;
    assert_eq!(servable.status, 200, "{}", servable.body);
    assert_eq!(food_error(&servable.body), None, "{}", servable.body);

    // A delivery to the middle of the Atlantic: no zone covers it.
    let mut far = sample_pickup("crossdockpizza-nyc-001", "USD");
    far.fulfillment = SampleFulfillment::Delivery {
        lat: 38.0,
        lng: -50.0,
        address_lines: vec!["Mid-Atlantic Ridge".into()],
        city: "Nowhere".into(),
        postcode: "00000".into(),
        country: "US".into(),
    };
    let answer = google.checkout(&far).await;
    assert_eq!(
        food_error(&answer.body).as_deref(),
        Some("OUT_OF_SERVICE_AREA"),
        "{}",
        answer.body
    );

    // A paused store is closed to Google's customers.
    let (status, live) = hub
        .post(
            &hub.admin_token,
            "/stores/NYC-001/pause",
            json!({ "minutes": 60 }),
        )
        .await;
    assert_eq!(status, 200, "{live}");
    let answer = google
        .checkout(&sample_pickup("crossdockpizza-nyc-001", "USD"))
        .await;
    assert_eq!(
        food_error(&answer.body).as_deref(),
        Some("CLOSED"),
        "{}",
        answer.body
    );

    assert_eq!(
        (count(&hub, "orders").await, count(&hub, "inbox").await),
        (orders, inbox),
        "a checkout stores nothing"
    );
    google.stop().await;
    hub.stop().await;
}
