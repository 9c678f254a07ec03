//! The simulator against a stand-in hub: orders go out signed and are verified with the
//! adapter; status pushes from the adapter reach the simulator's callback endpoint, which
//! verifies them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use crossdock_adapter_own_app::simulator::{CALLBACK_PATH, OwnAppSim, SimConfig};
use crossdock_adapter_own_app::{
    DEV_SIGNING_SECRET, OwnApp, OwnAppConfig, SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers,
};
use crossdock_channel::sim::{Fault, SampleFulfillment, SampleItem, SampleOrder, lock, next_heard};
use crossdock_channel::{Channel, ChannelError, Inbound, InboundRequest, Outcome, PushOutcome};
use crossdock_model::{NewOrder, Order, OrderId, Status, StatusAction, StatusChange};
use secrecy::SecretString;
use serde_json::{Value, json};

fn adapter() -> Arc<OwnApp> {
    Arc::new(
        OwnApp::new(
            OwnAppConfig::default(),
            SecretString::from(DEV_SIGNING_SECRET),
            reqwest::Client::new(),
        )
        .expect("valid configuration"),
    )
}

/// What the stand-in hub took.
#[derive(Clone)]
struct Hub {
    channel: Arc<OwnApp>,
    seen: Arc<Mutex<HashSet<String>>>,
    orders: Arc<Mutex<Vec<NewOrder>>>,
    cancelled: Arc<Mutex<Vec<String>>>,
}

/// The core's ingest path in miniature: verify, parse, dedupe, reply in the channel's way.
async fn webhook(State(hub): State<Hub>, headers: HeaderMap, body: Bytes) -> Response {
    let request = InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "http://hub.test/webhooks/own_app".into(),
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
                    Inbound::Order(order) => lock(&hub.orders).push((**order).clone()),
                    Inbound::Cancelled {
                        external_order_id, ..
                    } => lock(&hub.cancelled).push(external_order_id.clone()),
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
        channel: adapter(),
        seen: Arc::default(),
        orders: Arc::default(),
        cancelled: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/webhooks/own_app", axum::routing::post(webhook))
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stand-in hub");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (hub, format!("http://{addr}/webhooks/own_app"))
}

async fn start() -> (Hub, OwnAppSim) {
    let (hub, url) = start_hub().await;
    let sim = OwnAppSim::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        hub_webhook_url: url,
        signing_secret: DEV_SIGNING_SECRET.into(),
    })
    .await
    .expect("start the simulator");
    (hub, sim)
}

fn sample_delivery() -> SampleOrder {
    SampleOrder {
        store_ref: None,
        currency: "USD".into(),
        fulfillment: SampleFulfillment::Delivery {
            lat: 40.7463,
            lng: -74.0014,
            address_lines: vec!["360 W 22nd St".into(), "Apt 4B".into()],
            city: "New York".into(),
            postcode: "10011".into(),
            country: "US".into(),
        },
        customer_name: "Maya Robinson".into(),
        customer_phone: Some("+1 212 555 0142".into()),
        items: vec![
            SampleItem {
                plu: "PZ-MARG-L".into(),
                name: "Margherita (Large)".into(),
                quantity: 2,
                unit_price_minor: 1899,
                notes: Some("Well done".into()),
                modifiers: vec![SampleItem {
                    plu: "MOD-HALF-HALF".into(),
                    name: "Half & half".into(),
                    quantity: 1,
                    unit_price_minor: 0,
                    notes: None,
                    modifiers: vec![SampleItem {
                        plu: "MOD-HALF-PEPP".into(),
                        name: "Pepperoni (half)".into(),
                        quantity: 1,
                        unit_price_minor: 100,
                        notes: None,
                        modifiers: vec![],
                    }],
                }],
            },
            SampleItem {
                plu: "DR-COLA-500".into(),
                name: "Cola (500 ml)".into(),
                quantity: 1,
                unit_price_minor: 299,
                notes: None,
                modifiers: vec![],
            },
        ],
        notes: Some("Ring twice".into()),
        delivery_fee_minor: 299,
        tip_minor: 300,
        discount_minor: 500,
        scheduled_for: None,
    }
}

fn stored(order: NewOrder) -> Order {
    Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status: Status::Received,
        store_id: None,
        flags: vec![],
        order,
    }
}

fn answer_json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("`{body}`: {e}"))
}

#[tokio::test]
async fn placed_orders_reach_the_hub_once_and_status_comes_back_signed() {
    let (hub, sim) = start().await;
    let sample = sample_delivery();

    let placed = sim.place_order(&sample).await;
    assert_eq!(placed.answer.status, 202, "{}", placed.answer.body);
    let answer = answer_json(&placed.answer.body);
    assert_eq!(answer["status"], "received");
    assert_eq!(answer["duplicate"], false);
    assert!(answer["order_id"].is_string());

    // A replay: identical bytes and headers, answered as a duplicate, nothing new stored.
    let replay = sim.resend(&placed).await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(answer_json(&replay.body)["duplicate"], true);

    let order = {
        let orders = hub.orders.lock().unwrap();
        assert_eq!(orders.len(), 1);
        orders[0].clone()
    };
    assert_eq!(order.external_order_id, placed.external_order_id);
    assert_eq!(order.channel_store_ref, None);
    assert_eq!(order.totals.subtotal.minor, sample.subtotal_minor());
    assert_eq!(order.totals.total.minor, sample.total_minor());
    assert_eq!(order.check(), Ok(vec![]), "the simulator's amounts add up");
    assert_eq!(
        order.lines[0].modifiers[0].modifiers[0].plu.as_deref(),
        Some("MOD-HALF-PEPP")
    );
    assert_eq!(
        order.channel_data,
        json!({ "callback_url": sim.callback_url() })
    );
    let sent: Value = serde_json::from_slice(&placed.body).unwrap();
    assert_eq!(sent["event_id"], placed.event_id);

    // Status back through the adapter to the simulator's callback URL.
    let channel = adapter();
    let stored = stored(order);
    let mut feed = sim.status_feed().subscribe();
    let accepted = channel
        .push(&stored, &change(StatusAction::Accept { prep_minutes: 18 }))
        .await
        .unwrap();
    assert!(matches!(accepted, PushOutcome::Delivered { .. }));
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (placed.external_order_id.as_str(), Status::Accepted)
    );
    assert_eq!(
        sim.order_status(&placed.external_order_id),
        Some(Status::Accepted)
    );
    channel
        .push(&stored, &change(StatusAction::Ready))
        .await
        .unwrap();
    let ready = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (ready.external_order_id.as_str(), ready.status),
        (placed.external_order_id.as_str(), Status::Ready)
    );
    assert!(ready.at >= heard.at);

    let calls = sim.calls().all();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for call in &calls {
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, CALLBACK_PATH);
        assert_eq!(call.answered, 200, "the simulator verified the signature");
        assert!(call.headers.contains_key("x-crossdock-signature"));
        assert!(call.headers.contains_key("x-crossdock-timestamp"));
        assert_eq!(call.body["event"], "order.status");
        assert_eq!(call.body["order_id"], placed.external_order_id.as_str());
        assert_eq!(call.body["hub_order_id"], stored.id.to_string());
    }
    assert_eq!(calls[0].body["status"], "accepted");
    assert_eq!(calls[0].body["prep_minutes"], 18);
    assert_eq!(calls[1].body["status"], "ready");
    assert!(calls[1].body.get("prep_minutes").is_none());

    // The same log over HTTP, for people running the demo.
    let listed: Value = reqwest::get(format!("{}/_sim/calls", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["body"]["status"], "accepted");

    // The app cancels.
    let cancelled = sim
        .cancel(&placed.external_order_id, "Customer called")
        .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.body);
    assert_eq!(
        *hub.cancelled.lock().unwrap(),
        vec![placed.external_order_id.clone()]
    );

    sim.stop().await;
}

#[tokio::test]
async fn the_hub_refuses_stale_and_forged_orders() {
    let (hub, sim) = start().await;
    let placed = sim.place_order(&sample_delivery()).await;
    assert_eq!(placed.answer.status, 202);

    let stale = sim
        .send_signed_at(placed.body.clone(), Utc::now().timestamp() - 3600)
        .await;
    assert_eq!(stale.status, 401);
    assert_eq!(answer_json(&stale.body)["error"], "stale");
    let future = sim
        .send_signed_at(placed.body.clone(), Utc::now().timestamp() + 3600)
        .await;
    assert_eq!(answer_json(&future.body)["error"], "stale");

    let timestamp = Utc::now().timestamp();
    let forged = sim
        .send_raw(
            placed.body.clone(),
            signed_headers(b"not-the-secret", timestamp, &placed.body),
        )
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(answer_json(&forged.body)["error"], "unauthorized");

    let unsigned = sim
        .send_raw(
            placed.body.clone(),
            vec![(TIMESTAMP_HEADER.to_owned(), timestamp.to_string())],
        )
        .await;
    assert_eq!(unsigned.status, 401);
    assert!(
        unsigned.body.contains(SIGNATURE_HEADER),
        "{}",
        unsigned.body
    );

    assert_eq!(
        hub.orders.lock().unwrap().len(),
        1,
        "only the genuine order"
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_simulator_refuses_wrongly_signed_callbacks_and_plays_faults() {
    let (hub, sim) = start().await;
    sim.place_order(&sample_delivery()).await;
    let order = hub.orders.lock().unwrap()[0].clone();
    let stored = stored(order);

    // A callback signed with another secret is refused and recorded as refused.
    let body = br#"{"event":"order.status","order_id":"x","hub_order_id":"y","status":"ready","at":"2025-11-23T22:05:20Z"}"#;
    let client = reqwest::Client::new();
    let mut request = client.post(sim.callback_url()).body(body.to_vec());
    for (name, value) in signed_headers(b"wrong-secret", Utc::now().timestamp(), body) {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // Correctly signed but stale.
    let mut request = client.post(sim.callback_url()).body(body.to_vec());
    for (name, value) in signed_headers(
        DEV_SIGNING_SECRET.as_bytes(),
        Utc::now().timestamp() - 3600,
        body,
    ) {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status().as_u16(), 401);
    // Correctly signed, not a status callback.
    let junk = br#"{"event":"order.status","order_id":"x","hub_order_id":"y","status":"teleported","at":"now"}"#;
    let mut request = client.post(sim.callback_url()).body(junk.to_vec());
    for (name, value) in signed_headers(DEV_SIGNING_SECRET.as_bytes(), Utc::now().timestamp(), junk)
    {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status().as_u16(), 400);
    let answered: Vec<u16> = sim.calls().all().iter().map(|c| c.answered).collect();
    assert_eq!(answered, vec![401, 401, 400]);

    // Scripted faults apply to the adapter's pushes, in order.
    let channel = adapter();
    let mut feed = sim.status_feed().subscribe();
    sim.faults().push(
        Fault {
            status: Some(503),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(2),
            delay: Some(Duration::from_millis(50)),
        },
        1,
    );
    let error = channel
        .push(&stored, &change(StatusAction::Preparing))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    let error = channel
        .push(&stored, &change(StatusAction::Preparing))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    channel
        .push(&stored, &change(StatusAction::Preparing))
        .await
        .unwrap();
    let answered: Vec<u16> = sim.calls().all().iter().map(|c| c.answered).collect();
    assert_eq!(answered, vec![401, 401, 400, 503, 429, 200]);
    // Only the callback taken was heard, and a repeat of it is not heard again (the feed
    // is told before the callback is answered).
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (stored.order.external_order_id.as_str(), Status::Preparing)
    );
    channel
        .push(&stored, &change(StatusAction::Preparing))
        .await
        .unwrap();
    assert!(feed.try_recv().is_err(), "nothing else heard");
    sim.stop().await;
}

#[tokio::test]
async fn humans_can_place_orders_over_http() {
    let (hub, sim) = start().await;
    let mut sample = sample_delivery();
    sample.fulfillment = SampleFulfillment::Pickup;
    sample.store_ref = Some("NYC-001".into());
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{}/_sim/orders", sim.base_url()))
        .json(&sample)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["hub"]["status"], 202, "{answer}");
    let external = answer["external_order_id"].as_str().unwrap().to_owned();
    let order = hub.orders.lock().unwrap()[0].clone();
    assert_eq!(order.external_order_id, external);
    assert_eq!(order.channel_store_ref.as_deref(), Some("NYC-001"));

    let answer: Value = client
        .post(format!("{}/_sim/cancellations", sim.base_url()))
        .json(&json!({ "external_order_id": external, "reason": "demo" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["hub"]["status"], 202, "{answer}");
    assert_eq!(*hub.cancelled.lock().unwrap(), vec![external]);

    // A pickup order without a store is refused by the hub, and the simulator says so.
    sample.store_ref = None;
    let placed = sim.place_order(&sample).await;
    assert_eq!(placed.answer.status, 400);
    assert!(
        placed.answer.body.contains("order.store_id"),
        "{}",
        placed.answer.body
    );
    sim.stop().await;
}

/// A status change made now.
fn change(action: StatusAction) -> StatusChange {
    StatusChange {
        action,
        from: Status::Received,
        at: Utc::now(),
    }
}
