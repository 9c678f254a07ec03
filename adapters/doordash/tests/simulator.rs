//! The adapter against its simulator, over real HTTP on loopback: the webhooks DoorDash
//! sends (order, cancel, Dasher status) read by the adapter, every push checked by the
//! simulator's JWT verification and state machine, idempotent repeats, DoorDash's
//! confirmation deadline, the rate limit, faults (429, 500, slow), the allowlist, and the
//! `/_sim` control endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use crossdock_adapter_doordash::jwt;
use crossdock_adapter_doordash::simulator::{DoorDashSim, OrderState, SimConfig};
use crossdock_adapter_doordash::{
    DEV_DEVELOPER_ID, DEV_KEY_ID, DEV_SIGNING_SECRET, DEV_WEBHOOK_AUTHORIZATION, DoorDash,
    DoorDashConfig,
};
use crossdock_channel::sim::{
    Fault, SampleFulfillment, SampleItem, SampleOrder, SimServer, next_heard,
};
use crossdock_channel::{Channel, ChannelError, Inbound, InboundRequest, PushOutcome};
use crossdock_model::{
    DeliveredBy, FulfillmentKind, NewOrder, Order, OrderId, Status, StatusAction, StatusChange,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

type Received = (Option<String>, HeaderMap, Bytes);

/// A stand-in for the hub's webhook endpoints: records each request and answers orders
/// with `order_status` (202 unless told otherwise) and the other events 200.
struct Receiver {
    server: SimServer,
    received: mpsc::UnboundedReceiver<Received>,
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Received>,
    order_status: StatusCode,
}

impl Receiver {
    async fn start(order_status: StatusCode) -> Receiver {
        let (tx, received) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/webhooks/doordash",
                post(
                    |State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes| async move {
                        let _ = state.tx.send((None, headers, body));
                        state.order_status
                    },
                ),
            )
            .route(
                "/webhooks/doordash/{event}",
                post(
                    |State(state): State<ReceiverState>,
                     Path(event): Path<String>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let _ = state.tx.send((Some(event), headers, body));
                        StatusCode::OK
                    },
                ),
            )
            .with_state(ReceiverState { tx, order_status });
        let server = SimServer::serve(app, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("receiver");
        Receiver { server, received }
    }

    fn url(&self) -> String {
        format!("{}/webhooks/doordash", self.server.base_url())
    }

    /// The next webhook, as the hub would hand it to the adapter.
    async fn next(&mut self) -> InboundRequest {
        let (event, headers, body) =
            tokio::time::timeout(Duration::from_secs(5), self.received.recv())
                .await
                .expect("a webhook within 5 s")
                .expect("receiver open");
        InboundRequest {
            method: crossdock_channel::Method::POST,
            url: match &event {
                Some(event) => format!("{}/{event}", self.url()),
                None => self.url(),
            },
            event,
            query: None,
            headers,
            body,
            received_at: Utc::now(),
        }
    }
}

struct Setup {
    sim: DoorDashSim,
    hub: Receiver,
    adapter: DoorDash,
}

fn adapter_for(sim: &DoorDashSim, config: DoorDashConfig, signing_secret: &str) -> DoorDash {
    DoorDash::new(
        DoorDashConfig {
            base_url: sim.base_url(),
            timeout_secs: 1,
            ..config
        },
        SecretString::from(DEV_WEBHOOK_AUTHORIZATION),
        SecretString::from(signing_secret),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

async fn setup_with(config: SimConfig, order_status: StatusCode) -> Setup {
    let hub = Receiver::start(order_status).await;
    let sim = DoorDashSim::start(SimConfig {
        hub_webhook_url: hub.url(),
        ..config
    })
    .await
    .expect("simulator");
    let adapter = adapter_for(&sim, DoorDashConfig::default(), DEV_SIGNING_SECRET);
    Setup { sim, hub, adapter }
}

async fn setup() -> Setup {
    setup_with(SimConfig::default(), StatusCode::ACCEPTED).await
}

fn item(plu: &str, name: &str, quantity: i64, unit: i64, modifiers: Vec<SampleItem>) -> SampleItem {
    SampleItem {
        plu: plu.to_owned(),
        name: name.to_owned(),
        quantity,
        unit_price_minor: unit,
        notes: None,
        modifiers,
    }
}

fn sample(fulfillment: SampleFulfillment) -> SampleOrder {
    SampleOrder {
        store_ref: Some("xd-nyc-004".to_owned()),
        currency: "USD".to_owned(),
        fulfillment,
        customer_name: "Grace Hopper".to_owned(),
        customer_phone: Some("+1 212 555 0110".to_owned()),
        items: vec![
            item(
                "PZ-MARG-L",
                "Margherita (Large)",
                2,
                1899,
                vec![
                    item(
                        "MOD-HALF-HALF",
                        "Half & half",
                        1,
                        0,
                        vec![item("MOD-HALF-HAM", "Ham (half)", 1, 100, vec![])],
                    ),
                    item("MOD-TOP-BASL", "Fresh basil", 0, 100, vec![]),
                ],
            ),
            item("PZ-PEPP-L", "Pepperoni (Large)", 1, 2199, vec![]),
            item("DR-COLA-500", "Cola (500 ml)", 1, 299, vec![]),
        ],
        notes: Some("Ring twice".to_owned()),
        delivery_fee_minor: 299,
        tip_minor: 400,
        discount_minor: 0,
        scheduled_for: None,
    }
}

fn delivery() -> SampleFulfillment {
    SampleFulfillment::Delivery {
        lat: 40.7724,
        lng: -73.9537,
        address_lines: vec!["1500 2nd Ave".to_owned(), "Apt 9".to_owned()],
        city: "New York".to_owned(),
        postcode: "10075".to_owned(),
        country: "US".to_owned(),
    }
}

/// Places an order and reads its webhook through the adapter, as the hub would.
async fn place(setup: &mut Setup, sample: &SampleOrder) -> (String, NewOrder) {
    let placed = setup.sim.place_order(sample).await;
    let request = setup.hub.next().await;
    setup
        .adapter
        .verify(&request)
        .expect("the simulator's token");
    let delivery = setup.adapter.parse(&request).expect("parse");
    assert_eq!(delivery.dedupe_key, placed.external_order_id);
    let Inbound::Order(order) = delivery.inbound else {
        panic!("expected an order");
    };
    (placed.external_order_id, *order)
}

fn stored(order: NewOrder, status: Status) -> Order {
    Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status,
        store_id: None,
        flags: vec![],
        order,
    }
}

async fn push(
    adapter: &DoorDash,
    order: &Order,
    action: StatusAction,
    from: Status,
) -> Result<PushOutcome, ChannelError> {
    adapter
        .push(
            order,
            &StatusChange {
                action,
                from,
                at: Utc::now(),
            },
        )
        .await
}

fn delivered(outcome: Result<PushOutcome, ChannelError>) -> String {
    match outcome {
        Ok(PushOutcome::Delivered { detail }) => detail,
        other => panic!("expected a delivered push, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_placed_order_reads_back_whole_and_adds_up() {
    let mut setup = setup().await;
    let (id, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    assert_eq!(order.external_order_id, id);
    assert_eq!(order.channel_store_ref.as_deref(), Some("xd-nyc-004"));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.customer.name, "Grace Hopper");
    assert_eq!(order.notes.as_deref(), Some("Ring twice"));
    let plus: Vec<&str> = order
        .lines
        .iter()
        .filter_map(|l| l.plu.as_deref())
        .collect();
    assert_eq!(
        plus,
        ["PZ-MARG-L", "PZ-PEPP-L", "DR-COLA-500"],
        "payload order"
    );
    // The half & half opens its own group; the removed basil is not sent.
    let margherita = &order.lines[0];
    assert_eq!(margherita.modifiers.len(), 1);
    assert_eq!(
        margherita.modifiers[0].modifiers[0].plu.as_deref(),
        Some("MOD-HALF-HAM")
    );
    assert_eq!(margherita.total.minor, (1899 + 100) * 2);
    assert_eq!(order.totals.subtotal.minor, (1899 + 100) * 2 + 2199 + 299);
    assert_eq!(
        order.totals.tip.minor, 400,
        "the staff tip of a pickup order"
    );
    assert_eq!(order.check(), Ok(vec![]));
    let consumer_id: u64 = order.channel_data["consumer_id"]
        .as_str()
        .expect("consumer id")
        .parse()
        .expect("digits");
    assert!(consumer_id > 1 << 53);
    // The hub answered 202: DoorDash waits for the confirmation.
    assert_eq!(
        setup.sim.order_state(&id),
        Some(OrderState::AwaitingConfirmation)
    );
    assert_eq!(setup.sim.status(&id), Some(Status::Received));
    setup.sim.stop().await;
}

#[tokio::test]
async fn dasher_and_self_delivery_orders_are_told_apart() {
    let mut setup = setup().await;
    let (_, dasher) = place(&mut setup, &sample(delivery())).await;
    assert_eq!(dasher.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(dasher.fulfillment.address, None);
    assert_eq!(dasher.totals.fees.delivery.minor, 299);
    assert_eq!(
        dasher.totals.tip.minor, 0,
        "a Dasher's tip is not the store's"
    );
    setup.sim.stop().await;

    let mut setup = setup_with(
        SimConfig {
            delivery_by_merchant: true,
            ..SimConfig::default()
        },
        StatusCode::ACCEPTED,
    )
    .await;
    let (_, own) = place(&mut setup, &sample(delivery())).await;
    assert_eq!(own.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = own.fulfillment.address.clone().expect("address");
    assert_eq!(address.lines, ["1500 2nd Ave", "Apt 9"]);
    let coordinates = address.coordinates.expect("coordinates from strings");
    assert_eq!((coordinates.lat, coordinates.lng), (40.7724, -73.9537));
    assert_eq!(own.totals.tip.minor, 400);
    assert_eq!(own.check(), Ok(vec![]));
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_store_works_an_order_and_doordash_follows() {
    let mut setup = setup().await;
    let (id, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Received);
    let adapter = &setup.adapter;
    let mut feed = setup.sim.status_feed().subscribe();

    let detail = delivered(
        push(
            adapter,
            &order,
            StatusAction::Accept { prep_minutes: 15 },
            Status::Received,
        )
        .await,
    );
    assert!(detail.contains("answered 202"), "{detail}");
    assert_eq!(setup.sim.order_state(&id), Some(OrderState::Confirmed));
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (id.as_str(), Status::Accepted)
    );
    let confirmation = setup.sim.confirmation(&id).expect("confirmation");
    assert_eq!(confirmation.merchant_supplied_id, order.id.to_string());
    assert_eq!(confirmation.order_status, "success");
    assert_eq!(
        confirmation.prep_time, None,
        "DoorDash recommends leaving it out"
    );

    // A repeated confirmation (a retry after a lost answer) is harmless.
    let detail = delivered(
        push(
            adapter,
            &order,
            StatusAction::Accept { prep_minutes: 15 },
            Status::Received,
        )
        .await,
    );
    assert!(detail.contains("already"), "{detail}");

    for action in [StatusAction::Preparing, StatusAction::Complete] {
        assert!(matches!(
            push(adapter, &order, action, Status::Accepted).await,
            Ok(PushOutcome::NotApplicable { .. })
        ));
    }
    assert_eq!(setup.sim.status(&id), Some(Status::Accepted));

    delivered(push(adapter, &order, StatusAction::Ready, Status::Preparing).await);
    assert_eq!(setup.sim.status(&id), Some(Status::Ready));
    delivered(push(adapter, &order, StatusAction::Ready, Status::Preparing).await);
    // The refused repeat of the confirmation and the repeated ready were not heard.
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (id.as_str(), Status::Ready)
    );
    assert!(feed.try_recv().is_err(), "nothing else heard");

    // Every call carried a valid JWT, `auth-version: v2` and our User-Agent.
    let calls = setup.sim.calls().all();
    assert_eq!(calls.len(), 4);
    for call in &calls {
        assert_eq!(call.method, "PATCH");
        assert_eq!(call.headers["authorization"], "<redacted>");
        assert_eq!(call.headers["auth-version"], "v2");
        assert_eq!(call.headers["user-agent"], "CrossdockHub/1.0");
    }
    assert_eq!(
        calls.iter().map(|c| c.answered).collect::<Vec<_>>(),
        [202, 400, 202, 202]
    );
    assert_eq!(
        calls[2].path,
        format!("/marketplace/api/v1/orders/{id}/events/order_ready_for_pickup")
    );
    assert_eq!(
        calls[2].body,
        serde_json::json!({"merchant_supplied_id": order.id.to_string()})
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn prep_time_is_sent_when_configured() {
    let mut setup = setup().await;
    setup.adapter = adapter_for(
        &setup.sim,
        DoorDashConfig {
            send_prep_time: true,
            ..DoorDashConfig::default()
        },
        DEV_SIGNING_SECRET,
    );
    let (id, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Received);
    let before = Utc::now();
    delivered(
        push(
            &setup.adapter,
            &order,
            StatusAction::Accept { prep_minutes: 20 },
            Status::Received,
        )
        .await,
    );
    let prep_time = setup
        .sim
        .confirmation(&id)
        .and_then(|c| c.prep_time)
        .expect("prep_time");
    assert!(prep_time.ends_with('Z'), "UTC: {prep_time}");
    let at = chrono::DateTime::parse_from_rfc3339(&prep_time).expect("time");
    let minutes = (at.with_timezone(&Utc) - before).num_minutes();
    assert!((19..=20).contains(&minutes), "{minutes} minutes");
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_rejection_fails_the_order_with_a_reason_code() {
    let mut setup = setup().await;
    let (id, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Received);
    delivered(
        push(
            &setup.adapter,
            &order,
            StatusAction::Reject {
                reason: "Pepperoni is sold out".to_owned(),
            },
            Status::Received,
        )
        .await,
    );
    assert_eq!(setup.sim.order_state(&id), Some(OrderState::Failed));
    assert_eq!(setup.sim.status(&id), Some(Status::Rejected));
    let confirmation = setup.sim.confirmation(&id).expect("confirmation");
    assert_eq!(confirmation.order_status, "fail");
    assert_eq!(
        confirmation.failure_reason.as_deref(),
        Some("Pepperoni is sold out")
    );
    assert_eq!(confirmation.errors[0].code, "ITEM_OUT_OF_STOCK");
    // Too late to accept now: DoorDash refuses, and that is permanent.
    let error = push(
        &setup.adapter,
        &order,
        StatusAction::Ready,
        Status::Accepted,
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(&error, ChannelError::Platform { status: 400, body } if body.contains("expired")),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_merchant_cancellation_after_acceptance() {
    let mut setup = setup().await;
    let (id, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Received);
    let adapter = &setup.adapter;
    delivered(
        push(
            adapter,
            &order,
            StatusAction::Accept { prep_minutes: 10 },
            Status::Received,
        )
        .await,
    );
    let cancel = StatusAction::Cancel {
        reason: "Kitchen overloaded, sorry".to_owned(),
    };
    delivered(push(adapter, &order, cancel.clone(), Status::Accepted).await);
    assert_eq!(
        setup.sim.order_state(&id),
        Some(OrderState::CancelledByMerchant)
    );
    assert_eq!(setup.sim.status(&id), Some(Status::Cancelled));
    let cancellation = setup.sim.cancellation(&id).expect("cancellation");
    assert_eq!(cancellation.cancel_reason, "KITCHEN_BUSY");
    // Repeating it is harmless.
    let detail = delivered(push(adapter, &order, cancel, Status::Accepted).await);
    assert!(detail.contains("already"), "{detail}");
    setup.sim.stop().await;
}

#[tokio::test]
async fn merchant_cancellation_needs_the_allowlist() {
    let mut setup = setup_with(
        SimConfig {
            cancellation_allowlisted: false,
            ..SimConfig::default()
        },
        StatusCode::ACCEPTED,
    )
    .await;
    let (_, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Received);
    delivered(
        push(
            &setup.adapter,
            &order,
            StatusAction::Accept { prep_minutes: 10 },
            Status::Received,
        )
        .await,
    );
    let error = push(
        &setup.adapter,
        &order,
        StatusAction::Cancel {
            reason: "no".to_owned(),
        },
        Status::Accepted,
    )
    .await
    .expect_err("forbidden");
    assert!(
        matches!(error, ChannelError::Platform { status: 403, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    setup.sim.stop().await;
}

#[tokio::test]
async fn doordash_fails_an_order_not_confirmed_in_time() {
    let mut setup = setup_with(
        SimConfig {
            confirm_deadline: Duration::from_millis(200),
            ..SimConfig::default()
        },
        StatusCode::ACCEPTED,
    )
    .await;
    let (id, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    setup.sim.clock().advance(Duration::from_millis(300));
    assert_eq!(setup.sim.order_state(&id), Some(OrderState::TimedOut));
    assert_eq!(setup.sim.status(&id), Some(Status::Failed));
    let error = push(
        &setup.adapter,
        &stored(order, Status::Received),
        StatusAction::Accept { prep_minutes: 5 },
        Status::Received,
    )
    .await
    .expect_err("expired");
    assert!(
        matches!(&error, ChannelError::Platform { status: 400, body } if body.contains("expired")),
        "{error:?}"
    );
    // DoorDash sends no cancellation for an order that failed.
    assert!(setup.sim.cancel_order(&id).await.is_none());
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_hubs_answer_to_an_order_decides_its_fate() {
    // 200 is DoorDash's synchronous confirmation.
    let setup = setup_with(SimConfig::default(), StatusCode::OK).await;
    let placed = setup
        .sim
        .place_order(&sample(SampleFulfillment::Pickup))
        .await;
    assert_eq!(placed.answer.status, 200);
    assert_eq!(
        setup.sim.order_state(&placed.external_order_id),
        Some(OrderState::Confirmed)
    );
    setup.sim.stop().await;
    // Anything but 2xx fails it.
    let setup = setup_with(SimConfig::default(), StatusCode::SERVICE_UNAVAILABLE).await;
    let placed = setup
        .sim
        .place_order(&sample(SampleFulfillment::Pickup))
        .await;
    assert_eq!(
        setup.sim.order_state(&placed.external_order_id),
        Some(OrderState::PosError)
    );
    assert_eq!(
        setup.sim.status(&placed.external_order_id),
        Some(Status::Failed)
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn calls_with_a_wrong_key_are_refused_with_401() {
    let mut setup = setup().await;
    let (_, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Received);
    let wrong_secret = adapter_for(
        &setup.sim,
        DoorDashConfig::default(),
        &jwt::encode_signing_secret(b"someone else's key"),
    );
    let wrong_kid = adapter_for(
        &setup.sim,
        DoorDashConfig {
            key_id: "revoked-key".to_owned(),
            ..DoorDashConfig::default()
        },
        DEV_SIGNING_SECRET,
    );
    for adapter in [&wrong_secret, &wrong_kid] {
        let error = push(
            adapter,
            &order,
            StatusAction::Accept { prep_minutes: 5 },
            Status::Received,
        )
        .await
        .expect_err("unauthorized");
        assert!(
            matches!(&error, ChannelError::Platform { status: 401, body } if body.contains("authentication_error")),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }
    // A raw call without `auth-version` is refused too.
    let token = jwt::sign(
        &jwt::decode_signing_secret(DEV_SIGNING_SECRET).expect("key"),
        DEV_DEVELOPER_ID,
        DEV_KEY_ID,
        Utc::now(),
        60,
    );
    let response = reqwest::Client::new()
        .patch(format!(
            "{}/marketplace/api/v1/orders/{}",
            setup.sim.base_url(),
            order.order.external_order_id
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({"merchant_supplied_id": "x", "order_status": "success"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("auth-version")),
        "{body}"
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn faults_map_onto_retryable_errors() {
    let mut setup = setup().await;
    let (_, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Received);
    let accept = || StatusAction::Accept { prep_minutes: 5 };
    setup.sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(60),
            delay: None,
        },
        1,
    );
    let error = push(&setup.adapter, &order, accept(), Status::Received)
        .await
        .expect_err("429");
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert!(error.is_retryable());
    setup.sim.faults().push(
        Fault {
            status: Some(500),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = push(&setup.adapter, &order, accept(), Status::Received)
        .await
        .expect_err("500");
    assert!(
        matches!(error, ChannelError::Platform { status: 500, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    // Slower than the adapter's timeout (1 s here): a transport error, retryable.
    setup.sim.faults().push(
        Fault {
            status: None,
            retry_after_s: None,
            delay: Some(Duration::from_millis(1500)),
        },
        1,
    );
    let error = push(&setup.adapter, &order, accept(), Status::Received)
        .await
        .expect_err("timeout");
    assert!(matches!(error, ChannelError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_simulator_enforces_its_rate_limit() {
    let mut setup = setup_with(
        SimConfig {
            rate_per_second: 1,
            rate_burst: 2,
            ..SimConfig::default()
        },
        StatusCode::ACCEPTED,
    )
    .await;
    let (_, order) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let order = stored(order, Status::Accepted);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(
            push(
                &setup.adapter,
                &order,
                StatusAction::Ready,
                Status::Accepted,
            )
            .await,
        );
    }
    assert!(answers[0].is_err(), "not confirmed yet: 400");
    assert!(
        matches!(
            answers[2],
            Err(ChannelError::RateLimited {
                retry_after: Some(_)
            })
        ),
        "{:?}",
        answers[2]
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn cancellations_and_dasher_statuses_reach_the_hub() {
    let mut setup = setup().await;
    let (id, order) = place(&mut setup, &sample(delivery())).await;
    let order = stored(order, Status::Received);
    delivered(
        push(
            &setup.adapter,
            &order,
            StatusAction::Accept { prep_minutes: 10 },
            Status::Received,
        )
        .await,
    );

    for (status, expected) in [
        ("dasher_confirmed", None),
        ("arriving_at_store", None),
        ("dasher_out_for_delivery", Some(StatusAction::PickedUp)),
        ("dropoff", Some(StatusAction::Delivered)),
    ] {
        let answer = setup.sim.dasher_status(&id, status).await;
        assert_eq!(answer.status, 200);
        let request = setup.hub.next().await;
        assert_eq!(request.event.as_deref(), Some("dasher"));
        setup.adapter.verify(&request).expect("token");
        let delivery = setup.adapter.parse(&request).expect("parse");
        assert_eq!(delivery.dedupe_key, format!("dasher:{id}:{status}"));
        match expected {
            Some(action) => assert_eq!(
                delivery.inbound,
                Inbound::Progress {
                    external_order_id: id.clone(),
                    action
                }
            ),
            None => assert!(matches!(delivery.inbound, Inbound::Ignored { .. })),
        }
    }
    assert_eq!(setup.sim.status(&id), Some(Status::Delivered));

    // A second order, cancelled by the customer on DoorDash.
    let (other, _) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let answer = setup.sim.cancel_order(&other).await.expect("sent");
    assert_eq!(answer.status, 200);
    let request = setup.hub.next().await;
    assert_eq!(request.event.as_deref(), Some("cancel"));
    setup.adapter.verify(&request).expect("token");
    let delivery = setup.adapter.parse(&request).expect("parse");
    assert_eq!(
        delivery.inbound,
        Inbound::Cancelled {
            external_order_id: other.clone(),
            reason: None
        }
    );
    assert_eq!(setup.sim.status(&other), Some(Status::Cancelled));
    setup.sim.stop().await;
}

#[tokio::test]
async fn duplicates_are_byte_for_byte_and_forgeries_are_refused() {
    let mut setup = setup().await;
    let (id, _) = place(&mut setup, &sample(SampleFulfillment::Pickup)).await;
    let first = setup.sim.webhook_body(&id).expect("body");
    let answer = setup.sim.resend_order(&id).await.expect("known order");
    assert_eq!(answer.status, 202);
    let again = setup.hub.next().await;
    assert_eq!(again.body.as_ref(), first.as_slice());
    assert_eq!(
        setup.adapter.parse(&again).expect("parse").dedupe_key,
        id,
        "same dedupe key"
    );
    assert!(setup.sim.resend_order("unknown").await.is_none());

    setup
        .sim
        .send_raw(None, first.clone(), Some("Bearer forged".to_owned()))
        .await;
    let forged = setup.hub.next().await;
    assert!(matches!(
        setup.adapter.verify(&forged),
        Err(ChannelError::Unauthorized(_))
    ));
    setup
        .sim
        .send_raw(Some("cancel"), b"{}".to_vec(), None)
        .await;
    let bare = setup.hub.next().await;
    assert!(matches!(
        setup.adapter.verify(&bare),
        Err(ChannelError::Unauthorized(_))
    ));
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_control_endpoints_place_orders_and_show_calls() {
    let mut setup = setup().await;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .json(&sample(SampleFulfillment::Pickup))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let placed: serde_json::Value = response.json().await.expect("json");
    assert_eq!(placed["webhook_status"], 202);
    let id = placed["external_order_id"].as_str().expect("id").to_owned();
    let request = setup.hub.next().await;
    let Inbound::Order(order) = setup.adapter.parse(&request).expect("parse").inbound else {
        panic!("an order");
    };
    delivered(
        push(
            &setup.adapter,
            &stored(*order, Status::Received),
            StatusAction::Accept { prep_minutes: 5 },
            Status::Received,
        )
        .await,
    );
    let calls: serde_json::Value = http
        .get(format!("{}/_sim/calls", setup.sim.base_url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(calls[0]["path"], format!("/marketplace/api/v1/orders/{id}"));
    assert_eq!(calls[0]["answered"], 202);
    assert_eq!(calls[0]["body"]["order_status"], "success");
    let response = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 400);
    setup.sim.stop().await;
}
