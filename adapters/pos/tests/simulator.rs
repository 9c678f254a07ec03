//! The POS simulator against a stand-in hub: orders and voids go out signed with each
//! store's key and are verified and parsed with the adapter; replays, wrong keys, stale
//! requests and cross-store requests are answered as the hub would.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use crossdock_adapter_pos::simulator::{DEFAULT_REGISTER, PosSim, SimConfig, SimError};
use crossdock_adapter_pos::{
    DEV_MASTER_KEY, Pos, PosConfig, SIGNATURE_HEADER, STORE_HEADER, TIMESTAMP_HEADER, store_key,
};
use crossdock_channel::sim::{SampleFulfillment, SampleItem, SampleOrder, lock};
use crossdock_channel::{Channel, Inbound, InboundRequest, Outcome};
use crossdock_model::{DeliveredBy, FulfillmentKind, NewOrder, OrderId, Payment, Status, Timing};
use secrecy::SecretString;
use serde_json::{Value, json};

/// A cancellation the stand-in hub took: external order id and reason.
type Cancellation = (String, Option<String>);

/// What the stand-in hub took.
#[derive(Clone)]
struct Hub {
    channel: Arc<Pos>,
    seen: Arc<Mutex<HashSet<String>>>,
    orders: Arc<Mutex<Vec<NewOrder>>>,
    cancelled: Arc<Mutex<Vec<Cancellation>>>,
}

/// The core's ingest path in miniature: verify, parse, dedupe, reply in the channel's way.
async fn webhook(State(hub): State<Hub>, headers: HeaderMap, body: Bytes) -> Response {
    let request = InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "http://hub.test/webhooks/pos".into(),
        query: None,
        headers,
        body,
        received_at: Utc::now(),
    };
    let parsed = hub
        .channel
        .verify(&request)
        .and_then(|()| hub.channel.parse(&request));
    let reply = match parsed {
        Err(error) => hub.channel.reply(&request, Outcome::Refused(&error)),
        Ok(delivery) => {
            let duplicate = !lock(&hub.seen).insert(delivery.dedupe_key.clone());
            if !duplicate {
                match &delivery.inbound {
                    Inbound::Order(order) => {
                        order
                            .check()
                            .expect("the simulator's orders pass the check");
                        lock(&hub.orders).push((**order).clone());
                    }
                    Inbound::Cancelled {
                        external_order_id,
                        reason,
                    } => lock(&hub.cancelled).push((external_order_id.clone(), reason.clone())),
                    other => panic!("unexpected {other:?}"),
                }
            }
            hub.channel.reply(
                &request,
                Outcome::Accepted {
                    delivery: &delivery,
                    order_id: Some(OrderId::new()),
                    duplicate,
                },
            )
        }
    };
    (reply.status, reply.body).into_response()
}

async fn start_hub() -> (Hub, String) {
    let hub = Hub {
        channel: Arc::new(
            Pos::new(PosConfig::default(), SecretString::from(DEV_MASTER_KEY))
                .expect("valid configuration"),
        ),
        seen: Arc::default(),
        orders: Arc::default(),
        cancelled: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/webhooks/pos", axum::routing::post(webhook))
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stand-in hub");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (hub, format!("http://{addr}/webhooks/pos"))
}

async fn start() -> (Hub, PosSim) {
    let (hub, url) = start_hub().await;
    let sim = PosSim::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        hub_webhook_url: String::new(),
        master_key: DEV_MASTER_KEY.into(),
        register: DEFAULT_REGISTER.into(),
    })
    .await
    .expect("start the simulator");
    // Told where the hub is after it started, as the conformance kit does.
    sim.connect(&url);
    assert_eq!(sim.hub_webhook_url(), url);
    (hub, sim)
}

fn item(plu: &str, name: &str, quantity: i64, unit: i64, modifiers: Vec<SampleItem>) -> SampleItem {
    SampleItem {
        plu: plu.into(),
        name: name.into(),
        quantity,
        unit_price_minor: unit,
        notes: None,
        modifiers,
    }
}

fn sample_pickup(store: &str) -> SampleOrder {
    SampleOrder {
        store_ref: Some(store.into()),
        currency: "USD".into(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "Ada Lovelace".into(),
        customer_phone: None,
        items: vec![
            item(
                "PZ-MARG-L",
                "Margherita (Large)",
                2,
                1899,
                vec![item(
                    "MOD-HALF-HALF",
                    "Half & half",
                    1,
                    0,
                    vec![item("MOD-HALF-PEPP", "Pepperoni (half)", 1, 100, vec![])],
                )],
            ),
            item("DR-COLA-500", "Cola (500 ml)", 1, 299, vec![]),
        ],
        notes: Some("ring the bell".into()),
        delivery_fee_minor: 0,
        tip_minor: 200,
        discount_minor: 300,
        scheduled_for: None,
    }
}

fn sample_delivery(store: &str) -> SampleOrder {
    SampleOrder {
        fulfillment: SampleFulfillment::Delivery {
            lat: 40.7463,
            lng: -74.0014,
            address_lines: vec!["450 W 22nd St".into(), "Apt 5C".into()],
            city: "New York".into(),
            postcode: "10011".into(),
            country: "US".into(),
        },
        customer_phone: Some("+1 212 555 0142".into()),
        delivery_fee_minor: 299,
        ..sample_pickup(store)
    }
}

#[tokio::test]
async fn orders_and_voids_reach_the_hub_signed_by_their_store() {
    let (hub, sim) = start().await;
    let mut feed = sim.status_feed().subscribe();

    // A walk-in pickup.
    let walk_in = sim
        .place_order(&sample_pickup("NYC-001"))
        .await
        .expect("placed");
    assert_eq!(walk_in.answer.status, 202, "{}", walk_in.answer.body);
    let answer: Value = serde_json::from_str(&walk_in.answer.body).expect("JSON");
    assert_eq!(answer["duplicate"], json!(false));
    assert!(answer["order_id"].is_string(), "{answer}");
    let external = walk_in.external_order_id.clone().expect("an order id");
    assert!(external.starts_with("NYC-001:R1-"), "{external}");
    assert_eq!(sim.status(&external), Some(Status::Received));
    let header = |name: &str| {
        walk_in
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect("header sent")
    };
    assert_eq!(header(STORE_HEADER), "NYC-001");
    assert!(header(TIMESTAMP_HEADER).parse::<i64>().is_ok());
    assert_eq!(header(SIGNATURE_HEADER).len(), 64);

    // A phone delivery, from another store, and a scheduled phone pickup.
    let delivery = sim
        .place_order(&sample_delivery("NYC-002"))
        .await
        .expect("placed");
    assert!(delivery.accepted(), "{:?}", delivery.answer);
    let later = Utc::now() + TimeDelta::hours(3);
    let later = chrono::DateTime::from_timestamp(later.timestamp(), 0).expect("time");
    let scheduled = SampleOrder {
        scheduled_for: Some(later),
        ..sample_pickup("LDN-001")
    };
    let scheduled = sim.place_order(&scheduled).await.expect("placed");
    assert!(scheduled.accepted(), "{:?}", scheduled.answer);

    let orders = lock(&hub.orders).clone();
    assert_eq!(orders.len(), 3);
    let [walk_in_order, delivery_order, scheduled_order] = &orders[..] else {
        panic!("three orders")
    };
    // The walk-in: store from the signature, figures consistent with the sample's sums.
    assert_eq!(walk_in_order.external_order_id, external);
    assert_eq!(walk_in_order.channel_store_ref.as_deref(), Some("NYC-001"));
    assert_eq!(walk_in_order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(walk_in_order.payment, Payment::Prepaid);
    assert_eq!(walk_in_order.channel_data["source"], "walk_in");
    assert_eq!(walk_in_order.channel_data["register"], DEFAULT_REGISTER);
    // (1899 + 100) × 2 + 299 = 4297; − 300 + 200 tip.
    assert_eq!(walk_in_order.totals.subtotal.minor, 4297);
    assert_eq!(walk_in_order.totals.total.minor, 4197);
    assert_eq!(
        walk_in_order.lines[0].modifiers[0].modifiers[0].name,
        "Pepperoni (half)"
    );
    assert_eq!(walk_in_order.check(), Ok(vec![]));
    // The delivery: a phone order, the store's driver, cash on delivery.
    assert_eq!(delivery_order.channel_store_ref.as_deref(), Some("NYC-002"));
    assert_eq!(
        delivery_order.fulfillment.delivered_by,
        Some(DeliveredBy::Store)
    );
    assert_eq!(delivery_order.payment, Payment::CashOnDelivery);
    assert_eq!(
        delivery_order.totals.cash_due,
        Some(delivery_order.totals.total)
    );
    assert_eq!(delivery_order.totals.fees.delivery.minor, 299);
    assert_eq!(delivery_order.channel_data["source"], "phone");
    assert_eq!(
        delivery_order.customer.phone.as_deref(),
        Some("+1 212 555 0142")
    );
    assert_eq!(delivery_order.check(), Ok(vec![]));
    // The scheduled pickup: a phone order paid on collection.
    assert_eq!(
        scheduled_order.fulfillment.timing,
        Timing::Scheduled { at: later }
    );
    assert_eq!(scheduled_order.payment, Payment::PayAtStore);
    assert_eq!(scheduled_order.check(), Ok(vec![]));

    // Void the walk-in: the hub hears a cancellation of that store's order.
    let void = sim
        .void(&external, Some("Customer left"))
        .await
        .expect("voided");
    assert_eq!(void.answer.status, 202, "{}", void.answer.body);
    assert_eq!(sim.status(&external), Some(Status::Cancelled));
    assert_eq!(
        lock(&hub.cancelled).clone(),
        [(external.clone(), Some("Customer left".to_owned()))]
    );
    // The other orders are untouched, as the POS knows them.
    let delivery_id = delivery.external_order_id.clone().expect("id");
    assert_eq!(sim.status(&delivery_id), Some(Status::Received));
    assert_eq!(sim.status("NYC-001:unknown"), None);

    // Every request is on record with the hub's answer.
    let sent = sim.sent();
    assert_eq!(sent.len(), 4);
    assert_eq!(
        sent.iter().map(|p| p.event.as_str()).collect::<Vec<_>>(),
        [
            "order.created",
            "order.created",
            "order.created",
            "order.voided"
        ]
    );
    assert!(sent.iter().all(|p| p.answer.status == 202));
    assert_eq!(sent.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // What the POS did itself is not heard from the hub: the hub never calls a POS.
    assert!(feed.try_recv().is_err(), "a POS hears nothing");
    sim.stop().await;
}

#[tokio::test]
async fn replays_and_retries_change_nothing() {
    let (hub, sim) = start().await;
    let placed = sim
        .place_order(&sample_pickup("SHA-001"))
        .await
        .expect("placed");
    assert!(placed.accepted());
    // The same bytes and headers again: a duplicate.
    let again = sim.replay(&placed).await;
    assert_eq!(again.answer.status, 202);
    assert_eq!(again.body, placed.body);
    assert_eq!(again.headers, placed.headers);
    let answer: Value = serde_json::from_str(&again.answer.body).expect("JSON");
    assert_eq!(answer["duplicate"], json!(true));
    // The same body signed again later (a POS retrying): a duplicate too.
    let retried = sim.retry(&placed).await.expect("retried");
    let answer: Value = serde_json::from_str(&retried.answer.body).expect("JSON");
    assert_eq!(
        (retried.answer.status, answer["duplicate"].clone()),
        (202, json!(true))
    );
    assert_eq!(lock(&hub.orders).len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn the_hub_refuses_what_a_store_may_not_send() {
    let (hub, sim) = start().await;
    let placed = sim
        .place_order(&sample_pickup("NYC-001"))
        .await
        .expect("placed");
    let body = placed.body.clone();

    // Signed with a wrong key.
    let forged = sim
        .post_with_key("NYC-001", "not-the-key", body.clone())
        .await;
    assert_eq!(forged.answer.status, 401);
    let answer: Value = serde_json::from_str(&forged.answer.body).expect("JSON");
    assert_eq!(answer["error"], "unauthorized");
    // Another store's genuine key, claiming to be NYC-001.
    let other = sim.store_key("NYC-002");
    assert_eq!(other, store_key(DEV_MASTER_KEY.as_bytes(), "NYC-002"));
    let borrowed = sim.post_with_key("NYC-001", &other, body.clone()).await;
    assert_eq!(borrowed.answer.status, 401);
    // NYC-002 signing as itself, for a body that names NYC-001.
    let cross = sim
        .post_signed_at("NYC-002", body.clone(), Utc::now().timestamp())
        .await;
    assert_eq!(cross.answer.status, 401);
    assert!(
        cross.answer.body.contains("signed for store NYC-002"),
        "{}",
        cross.answer.body
    );
    // Signed ten minutes ago.
    let stale = sim
        .post_signed_at("NYC-001", body.clone(), Utc::now().timestamp() - 600)
        .await;
    assert_eq!(stale.answer.status, 401);
    let answer: Value = serde_json::from_str(&stale.answer.body).expect("JSON");
    assert_eq!(answer["error"], "stale");
    // No authentication at all.
    let bare = sim.post_raw(body, Vec::new()).await;
    assert_eq!(bare.answer.status, 401);
    assert!(
        bare.answer
            .body
            .contains("missing header X-Crossdock-Store"),
        "{}",
        bare.answer.body
    );
    // A body that is not the API.
    let junk = sim
        .post_signed_at(
            "NYC-001",
            b"{\"version\": 1}".to_vec(),
            Utc::now().timestamp(),
        )
        .await;
    assert_eq!(junk.answer.status, 400);
    assert!(
        junk.answer.body.contains("missing field `event`"),
        "{}",
        junk.answer.body
    );

    assert_eq!(
        lock(&hub.orders).len(),
        1,
        "only the genuine order was taken"
    );
    // The simulator refuses what it cannot build.
    let mut no_store = sample_pickup("NYC-001");
    no_store.store_ref = None;
    assert_eq!(
        sim.place_order(&no_store).await.unwrap_err(),
        SimError::NoStore
    );
    no_store.store_ref = Some("NYC 001".into());
    assert_eq!(
        sim.place_order(&no_store).await.unwrap_err(),
        SimError::BadStore("NYC 001".into())
    );
    assert_eq!(
        sim.void("R1-0001", None).await.unwrap_err(),
        SimError::BadOrderId("R1-0001".into())
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_control_routes_drive_the_simulator() {
    let (hub, sim) = start().await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let answer: Value = http
        .post(format!("{base}/_sim/orders"))
        .json(&sample_pickup("LDN-003"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["hub"]["status"], 202, "{answer}");
    let external = answer["external_order_id"].as_str().expect("id").to_owned();
    assert!(external.starts_with("LDN-003:"), "{external}");

    let answer: Value = http
        .post(format!("{base}/_sim/voids"))
        .json(&json!({"external_order_id": external, "reason": "Rung up twice"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["hub"]["status"], 202, "{answer}");

    let orders: Value = http
        .get(format!("{base}/_sim/orders"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(orders[0]["external_order_id"], json!(external));
    assert_eq!(orders[0]["store"], "LDN-003");
    assert_eq!(orders[0]["status"], "cancelled");

    let sent: Value = http
        .get(format!("{base}/_sim/sent"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let events: Vec<_> = sent
        .as_array()
        .expect("array")
        .iter()
        .map(|s| (s["event"].clone(), s["hub"]["status"].clone()))
        .collect();
    assert_eq!(
        events,
        [
            (json!("order.created"), json!(202)),
            (json!("order.voided"), json!(202))
        ]
    );
    assert_eq!(sent[0]["body"]["order"]["currency"], "USD");

    let response = http
        .post(format!("{base}/_sim/voids"))
        .json(&json!({"external_order_id": "no-store"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    assert_eq!(lock(&hub.cancelled).len(), 1);
    sim.stop().await;
}
