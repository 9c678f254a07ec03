//! The adapter against its simulator, over real HTTP on loopback: signed pushes (form,
//! query, twice-encoded), signed API calls for every action, Meituan's status rules,
//! repeated and late pushes, faults, rate limits, wrong credentials, the confirmation
//! deadline, platform cancellations and the `/_sim` control endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::Utc;
use crossdock_adapter_meituan::simulator::{MeituanSim, SimConfig, wgs84_to_gcj02};
use crossdock_adapter_meituan::{DEV_APP_SECRET, Meituan, MeituanConfig, PushType};
use crossdock_channel::sim::{
    Fault, SampleFulfillment, SampleItem, SampleOrder, SimServer, next_heard,
};
use crossdock_channel::{
    Channel, ChannelError, Delivery, Inbound, InboundRequest, Outcome, PushOutcome,
};
use crossdock_model::{
    CoordSystem, DeliveredBy, FulfillmentKind, FundedBy, NewOrder, Order, OrderId, Status,
    StatusAction, StatusChange,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

/// What the stand-in hub received: the request and what the adapter made of it.
type Received = (InboundRequest, Result<Delivery, ChannelError>);

/// A stand-in for the hub's `/webhooks/meituan/{event}`: runs the adapter's verify and
/// parse, answers with its reply, and hands each request to the test.
struct Receiver {
    server: SimServer,
    received: mpsc::UnboundedReceiver<Received>,
}

#[derive(Clone)]
struct ReceiverState {
    base: String,
    tx: mpsc::UnboundedSender<Received>,
}

async fn receive(
    State(state): State<ReceiverState>,
    Path(event): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = InboundRequest {
        method,
        event: Some(event),
        url: format!("{}{}", state.base, uri.path()),
        query: uri.query().map(str::to_owned),
        headers,
        body,
        received_at: Utc::now(),
    };
    let adapter = adapter_for("http://127.0.0.1:9/api/v1", DEV_APP_SECRET, 10);
    let parsed = adapter
        .verify(&request)
        .and_then(|()| adapter.parse(&request));
    let reply = match &parsed {
        Ok(delivery) => adapter.reply(
            &request,
            Outcome::Accepted {
                delivery,
                order_id: None,
                duplicate: false,
            },
        ),
        Err(error) => adapter.reply(&request, Outcome::Refused(error)),
    };
    let _ = state.tx.send((request, parsed));
    let mut response = (reply.status, reply.body).into_response();
    if let Some(content_type) = reply.content_type
        && let Ok(value) = content_type.parse()
    {
        response.headers_mut().insert("content-type", value);
    }
    response
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let (tx, received) = mpsc::unbounded_channel();
        let state = ReceiverState {
            base: format!("http://{addr}"),
            tx,
        };
        let app = Router::new()
            .route("/webhooks/meituan/{event}", any(receive))
            .with_state(state);
        let server = SimServer::serve(app, addr).await.expect("receiver");
        Receiver { server, received }
    }

    fn base(&self) -> String {
        format!("{}/webhooks/meituan", self.server.base_url())
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("a push within 5 s")
            .expect("receiver open")
    }

    /// The next push of `event` (skipping others, e.g. 已确认订单 echoes).
    async fn next_of(&mut self, event: &str) -> Received {
        loop {
            let received = self.next().await;
            if received.0.event.as_deref() == Some(event) {
                return received;
            }
        }
    }
}

fn adapter_for(base_url: &str, secret: &str, timeout_secs: u64) -> Meituan {
    Meituan::new(
        MeituanConfig {
            base_url: base_url.to_owned(),
            timeout_secs,
            ..MeituanConfig::default()
        },
        SecretString::from(secret),
        reqwest::Client::new(),
    )
    .expect("adapter")
}

struct Setup {
    sim: MeituanSim,
    hub: Receiver,
    adapter: Meituan,
}

async fn setup_with(config: SimConfig) -> Setup {
    let hub = Receiver::start().await;
    let sim = MeituanSim::start(config).await.expect("simulator");
    sim.set_hub(hub.base(), hub.base());
    let adapter = adapter_for(&sim.api_base(), DEV_APP_SECRET, 10);
    Setup { sim, hub, adapter }
}

async fn setup() -> Setup {
    setup_with(SimConfig::default()).await
}

fn item(
    plu: &str,
    name: &str,
    quantity: i64,
    price: i64,
    modifiers: Vec<SampleItem>,
) -> SampleItem {
    SampleItem {
        plu: plu.to_owned(),
        name: name.to_owned(),
        quantity,
        unit_price_minor: price,
        notes: None,
        modifiers,
    }
}

fn sample(fulfillment: SampleFulfillment) -> SampleOrder {
    SampleOrder {
        store_ref: Some("sh_lujiazui_002".to_owned()),
        currency: "CNY".to_owned(),
        fulfillment,
        customer_name: "刘(先生)".to_owned(),
        customer_phone: None,
        items: vec![
            item(
                "PZ-MARG-L",
                "玛格丽特披萨（大）",
                2,
                8800,
                vec![
                    item("MOD-CRUST-STUFFED", "芝心饼底", 1, 1200, vec![]),
                    item(
                        "MOD-HALF-HALF",
                        "半份半份",
                        1,
                        0,
                        vec![item("MOD-HALF-PINE", "半边菠萝", 1, 300, vec![])],
                    ),
                ],
            ),
            item("DR-COLA-500", "可乐", 3, 800, vec![]),
        ],
        notes: Some("少放酱".to_owned()),
        delivery_fee_minor: 500,
        tip_minor: 300,
        discount_minor: 1000,
        scheduled_for: None,
    }
}

fn delivery() -> SampleFulfillment {
    SampleFulfillment::Delivery {
        lat: 31.2363,
        lng: 121.4967,
        address_lines: vec![
            "浦东新区陆家嘴环路1000号".to_owned(),
            "恒生银行大厦20楼".to_owned(),
        ],
        city: "上海".to_owned(),
        postcode: "200120".to_owned(),
        country: "CN".to_owned(),
    }
}

fn order_of(received: &Received) -> NewOrder {
    match &received.1 {
        Ok(Delivery {
            inbound: Inbound::Order(order),
            ..
        }) => (**order).clone(),
        other => panic!("expected an order, got {other:?}"),
    }
}

fn stored(order: NewOrder, status: Status) -> Order {
    let at = Utc::now();
    Order {
        id: OrderId::new(),
        received_at: at,
        updated_at: at,
        status,
        store_id: None,
        flags: vec![],
        order,
    }
}

async fn push(
    adapter: &Meituan,
    order: &Order,
    action: StatusAction,
) -> Result<PushOutcome, ChannelError> {
    adapter
        .push(
            order,
            &StatusChange {
                action,
                from: order.status,
                at: Utc::now(),
            },
        )
        .await
}

/// Places `sample` and returns the stored order as the hub would hold it.
async fn placed(setup: &mut Setup, sample: &SampleOrder) -> Order {
    let placed = setup.sim.place_order(sample).await;
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    assert_eq!(placed.answer.body, r#"{"data":"ok"}"#);
    let received = setup.hub.next_of("order").await;
    let order = order_of(&received);
    assert_eq!(order.external_order_id, placed.order_id);
    stored(order, Status::Received)
}

// ---------------------------------------------------------------------------------------
// Pushes from the simulator
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_placed_order_arrives_signed_and_normalizes_to_the_sample() {
    let mut setup = setup().await;
    let sample = sample(delivery());
    let placed = setup.sim.place_order(&sample).await;
    assert_eq!(placed.answer.body, r#"{"data":"ok"}"#);
    let received = setup.hub.next_of("order").await;
    let request = &received.0;
    assert_eq!(request.method, Method::POST);
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let delivery = received.1.as_ref().expect("verified and parsed");
    assert_eq!(delivery.dedupe_key, format!("{}:order", placed.order_id));
    let order = order_of(&received);
    assert_eq!(order.external_order_id.len(), 17);
    assert_eq!(order.channel_store_ref.as_deref(), Some("sh_lujiazui_002"));
    assert_eq!(
        order.display_code.as_deref(),
        Some("1"),
        "first day_seq of the store"
    );
    assert_eq!(order.customer.name, "刘(先生)");
    assert_eq!(order.customer.phone.as_deref(), Some("17012345678"));
    assert_eq!(order.customer.phone_pin.as_deref(), Some("4321"));
    assert_eq!(order.notes.as_deref(), Some("少放酱"));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(address.lines, ["浦东新区陆家嘴环路1000号 恒生银行大厦20楼"]);
    let at = address.coordinates.expect("coordinates");
    let (lat, lng) = wgs84_to_gcj02(31.2363, 121.4967);
    assert_eq!(at.system, CoordSystem::Gcj02);
    assert!(
        (at.lat - lat).abs() < 1e-6 && (at.lng - lng).abs() < 1e-6,
        "{at:?}"
    );
    // Modifier prices fold into the unit price; the options become attributes.
    let pizza = &order.lines[0];
    assert_eq!(pizza.unit_price.minor, 8800 + 1200 + 300);
    assert_eq!(pizza.quantity, 2);
    let names: Vec<&str> = pizza.modifiers.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["芝心饼底", "半份半份", "半边菠萝"]);
    let totals = &order.totals;
    assert_eq!(totals.subtotal.minor, sample.subtotal_minor());
    assert_eq!(totals.fees.delivery.minor, 500);
    assert_eq!(totals.discounts.len(), 1);
    assert_eq!(totals.discounts[0].funded_by, FundedBy::Platform);
    assert_eq!(totals.tip.minor, 0, "Meituan has no tips");
    assert_eq!(
        totals.total.minor,
        sample.total_minor() - sample.tip_minor,
        "what the customer paid, without the tip Meituan does not have"
    );
    assert_eq!(order.check(), Ok(vec![]));
    assert_eq!(setup.sim.order_status(&placed.order_id), Some(2));
    assert_eq!(
        setup.sim.unified_status(&placed.order_id),
        Some(Status::Received)
    );
}

#[tokio::test]
async fn twice_encoded_pushes_micro_degrees_and_boxes_still_verify() {
    let mut setup = setup_with(SimConfig {
        double_encode: true,
        micro_degree_coordinates: true,
        box_price_minor: 150,
        ..SimConfig::default()
    })
    .await;
    let sample = sample(delivery());
    let order = placed(&mut setup, &sample).await.order;
    assert_eq!(order.notes.as_deref(), Some("少放酱"));
    assert_eq!(
        order.totals.fees.packaging.minor,
        150 * 5,
        "one box per unit"
    );
    let at = order
        .fulfillment
        .address
        .as_ref()
        .and_then(|a| a.coordinates)
        .expect("coordinates");
    let (lat, lng) = wgs84_to_gcj02(31.2363, 121.4967);
    assert!(
        (at.lat - lat).abs() < 2e-6 && (at.lng - lng).abs() < 2e-6,
        "{at:?}"
    );
    assert_eq!(
        order.totals.total.minor,
        sample.subtotal_minor() + 750 + 500 - 1000
    );
    assert_eq!(order.check(), Ok(vec![]));
}

#[tokio::test]
async fn pickup_samples_are_pickups_with_the_note() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample(SampleFulfillment::Pickup))
        .await
        .order;
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(order.fulfillment.address, None);
    assert_eq!(order.notes.as_deref(), Some("少放酱 到店自取"));
}

// ---------------------------------------------------------------------------------------
// Status pushes to the simulator
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn accept_ready_and_reject_reach_meituan_signed() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample(delivery())).await;
    let id = order.order.external_order_id.clone();
    let mut feed = setup.sim.status_feed().subscribe();

    let outcome = push(
        &setup.adapter,
        &order,
        StatusAction::Accept { prep_minutes: 15 },
    )
    .await
    .expect("accepted");
    assert!(
        matches!(outcome, PushOutcome::Delivered { ref detail } if detail.contains("/order/confirm ok")),
        "{outcome:?}"
    );
    assert_eq!(setup.sim.order_status(&id), Some(4));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Accepted));
    // `poi_received` leaves it received: only the confirmation is heard.
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (id.as_str(), Status::Accepted)
    );
    let calls = setup.sim.calls().all();
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/v1/order/poi_received", "/api/v1/order/confirm"]
    );
    for call in &calls {
        assert_eq!(call.method, "GET");
        assert_eq!(call.answered, 200);
        assert_eq!(call.body["order_id"], serde_json::json!(id));
        assert_eq!(call.body["app_id"], "6688");
        assert_eq!(call.body["sig"].as_str().map(str::len), Some(32));
        assert!(call.body["timestamp"].as_str().is_some());
    }
    // Meituan echoes the confirmation as a 已确认订单 push, which the hub only notes.
    let confirmed = setup.hub.next_of("confirmed").await;
    assert_eq!(
        confirmed.1.expect("verified").inbound,
        Inbound::Ignored {
            event: "confirmed".into()
        }
    );

    let outcome = push(&setup.adapter, &order, StatusAction::Ready)
        .await
        .expect("ready");
    assert!(matches!(outcome, PushOutcome::Delivered { .. }));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Ready));
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (id.as_str(), Status::Ready)
    );
    for action in [
        StatusAction::Preparing,
        StatusAction::PickedUp,
        StatusAction::Complete,
    ] {
        let outcome = push(&setup.adapter, &order, action).await.expect("no call");
        assert!(
            matches!(outcome, PushOutcome::NotApplicable { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(
        setup.sim.calls().all().len(),
        3,
        "no call for not-applicable actions"
    );

    let second = placed(&mut setup, &sample(delivery())).await;
    let second_id = second.order.external_order_id.clone();
    push(
        &setup.adapter,
        &second,
        StatusAction::Reject {
            reason: "store too busy".into(),
        },
    )
    .await
    .expect("rejected");
    assert_eq!(setup.sim.unified_status(&second_id), Some(Status::Rejected));
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (second_id.as_str(), Status::Rejected)
    );
    let cancel = setup.sim.calls().matching("/order/cancel");
    assert_eq!(cancel[0].body["reason_code"], "2003");
    assert_eq!(cancel[0].body["reason"], "store too busy");

    let cancelled = push(
        &setup.adapter,
        &stored(order.order.clone(), Status::Ready),
        StatusAction::Cancel {
            reason: "oven broke".into(),
        },
    )
    .await
    .expect("cancelled");
    assert!(matches!(cancelled, PushOutcome::Delivered { .. }));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Cancelled));
}

#[tokio::test]
async fn self_delivery_progress_is_pushed() {
    let mut setup = setup_with(SimConfig {
        merchant_delivery: true,
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample(delivery())).await;
    assert_eq!(
        order.order.fulfillment.delivered_by,
        Some(DeliveredBy::Store)
    );
    let id = order.order.external_order_id.clone();
    push(
        &setup.adapter,
        &order,
        StatusAction::Accept { prep_minutes: 10 },
    )
    .await
    .expect("accept");
    push(&setup.adapter, &order, StatusAction::PickedUp)
        .await
        .expect("delivering");
    assert_eq!(setup.sim.unified_status(&id), Some(Status::PickedUp));
    push(&setup.adapter, &order, StatusAction::Delivered)
        .await
        .expect("arrived");
    assert_eq!(setup.sim.order_status(&id), Some(8));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Delivered));
}

#[tokio::test]
async fn repeated_and_late_pushes_are_safe() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample(delivery())).await;
    let id = order.order.external_order_id.clone();
    let accept = StatusAction::Accept { prep_minutes: 10 };
    push(&setup.adapter, &order, accept.clone())
        .await
        .expect("accept");
    push(&setup.adapter, &order, accept.clone())
        .await
        .expect("a repeated accept is fine");
    assert_eq!(setup.sim.order_status(&id), Some(4));

    // Meituan cancels (customer service); the store's cancel arrives afterwards: Meituan
    // refuses it, but the order is where the store wants it.
    let answer = setup.sim.cancel_order(&id, "1201", "客服取消").await;
    assert_eq!(answer.status, 200);
    let outcome = push(
        &setup.adapter,
        &order,
        StatusAction::Cancel {
            reason: "customer asked".into(),
        },
    )
    .await
    .expect("already cancelled counts as done");
    assert!(
        matches!(&outcome, PushOutcome::Delivered { detail } if detail.contains("already") && detail.contains("status 9")),
        "{outcome:?}"
    );
    assert_eq!(setup.sim.calls().matching("/order/viewstatus").len(), 1);

    // An accept of an order Meituan cancelled is refused for good.
    let fresh = placed(&mut setup, &sample(delivery())).await;
    setup
        .sim
        .cancel_order(&fresh.order.external_order_id, "1102", "用户取消")
        .await;
    let error = push(&setup.adapter, &fresh, accept)
        .await
        .expect_err("the order is gone");
    assert!(!error.is_retryable(), "{error}");
    assert!(
        matches!(&error, ChannelError::Platform { status: 409, body } if body.contains("808")),
        "{error:?}"
    );
    // An order Meituan never heard of.
    let mut unknown = fresh.clone();
    unknown.order.external_order_id = "27069999999999999".into();
    let error = push(&setup.adapter, &unknown, StatusAction::Ready)
        .await
        .expect_err("unknown");
    assert!(matches!(&error, ChannelError::Platform { status: 409, body } if body.contains("806")));
}

/// Meituan's courier overtakes the store: the order is delivered on Meituan before the
/// store's meal-ready is pushed. Meituan refuses the meal-ready (808), but it is moot: the
/// push counts as delivered instead of waiting for HQ.
#[tokio::test]
async fn a_meal_ready_after_the_courier_delivered_is_done() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample(delivery())).await;
    let id = order.order.external_order_id.clone();
    push(
        &setup.adapter,
        &order,
        StatusAction::Accept { prep_minutes: 10 },
    )
    .await
    .expect("accept");
    let answer = setup.sim.logistics(&id, 40).await;
    assert_eq!(answer.status, 200);
    assert_eq!(setup.sim.order_status(&id), Some(8));
    let outcome = push(&setup.adapter, &order, StatusAction::Ready)
        .await
        .expect("a moot meal-ready counts as done");
    assert!(
        matches!(&outcome, PushOutcome::Delivered { detail } if detail.contains("already") && detail.contains("status 8")),
        "{outcome:?}"
    );
    // A meal-ready Meituan refuses for another reason still fails: an order it cancelled.
    let cancelled = placed(&mut setup, &sample(delivery())).await;
    push(
        &setup.adapter,
        &cancelled,
        StatusAction::Accept { prep_minutes: 10 },
    )
    .await
    .expect("accept");
    setup
        .sim
        .cancel_order(&cancelled.order.external_order_id, "1102", "用户取消")
        .await;
    let error = push(&setup.adapter, &cancelled, StatusAction::Ready)
        .await
        .expect_err("cancelled");
    assert!(
        matches!(&error, ChannelError::Platform { status: 409, body } if body.contains("808")),
        "{error:?}"
    );
}

#[tokio::test]
async fn faults_map_to_retryable_errors() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample(delivery())).await;
    let fault = |status: Option<u16>, retry_after_s: Option<u64>, delay: Option<Duration>| Fault {
        status,
        retry_after_s,
        delay,
    };
    setup.sim.faults().push(fault(Some(429), Some(7), None), 1);
    assert_eq!(
        push(&setup.adapter, &order, StatusAction::Ready).await,
        Err(ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    setup.sim.faults().push(fault(Some(500), None, None), 1);
    let error = push(&setup.adapter, &order, StatusAction::Ready)
        .await
        .expect_err("500");
    assert!(error.is_retryable(), "{error}");
    assert!(matches!(error, ChannelError::Platform { status: 500, .. }));
    // A fault during accept stops the plan before confirm; the retry completes it.
    setup.sim.faults().push(fault(Some(503), None, None), 1);
    let accept = StatusAction::Accept { prep_minutes: 10 };
    assert!(push(&setup.adapter, &order, accept.clone()).await.is_err());
    assert_eq!(
        setup.sim.order_status(&order.order.external_order_id),
        Some(2)
    );
    push(&setup.adapter, &order, accept)
        .await
        .expect("retried accept");
    assert_eq!(
        setup.sim.order_status(&order.order.external_order_id),
        Some(4)
    );

    let slow = adapter_for(&setup.sim.api_base(), DEV_APP_SECRET, 1);
    setup
        .sim
        .faults()
        .push(fault(None, None, Some(Duration::from_millis(1500))), 1);
    let error = push(&slow, &order, StatusAction::Ready)
        .await
        .expect_err("timeout");
    assert!(matches!(error, ChannelError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn the_simulator_enforces_its_rate_limit() {
    let mut setup = setup_with(SimConfig {
        rate_limit_per_second: 2,
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample(delivery())).await;
    push(
        &setup.adapter,
        &order,
        StatusAction::Accept { prep_minutes: 1 },
    )
    .await
    .expect("two calls fit");
    let error = push(&setup.adapter, &order, StatusAction::Ready)
        .await
        .expect_err("third call in the second");
    assert_eq!(error, ChannelError::RateLimited { retry_after: None });
    let limited = setup.sim.calls().matching("preparationMealComplete");
    assert_eq!(limited[0].answered, 429);
    assert_eq!(
        limited[0].body["order_id"],
        serde_json::json!(order.order.external_order_id)
    );
}

#[tokio::test]
async fn wrong_credentials_are_refused_for_good() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample(delivery())).await;
    let wrong_secret = adapter_for(&setup.sim.api_base(), "not-the-secret", 10);
    let error = push(&wrong_secret, &order, StatusAction::Ready)
        .await
        .expect_err("703");
    assert!(
        matches!(&error, ChannelError::Platform { status: 401, body } if body.contains("703")),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    let wrong_app = Meituan::new(
        MeituanConfig {
            base_url: setup.sim.api_base(),
            app_id: "1234".into(),
            ..MeituanConfig::default()
        },
        SecretString::from(DEV_APP_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");
    let error = push(&wrong_app, &order, StatusAction::Ready)
        .await
        .expect_err("702");
    assert!(matches!(&error, ChannelError::Platform { status: 401, body } if body.contains("702")));
    assert_eq!(
        setup.sim.order_status(&order.order.external_order_id),
        Some(2)
    );
}

// ---------------------------------------------------------------------------------------
// Meituan's own flows
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn unconfirmed_orders_are_cancelled_after_the_deadline() {
    let mut setup = setup_with(SimConfig {
        confirm_deadline: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample(delivery())).await;
    let id = order.order.external_order_id.clone();
    let (request, parsed) = setup.hub.next_of("cancel").await;
    assert_eq!(request.method, Method::GET, "cancel pushes come as GET");
    assert!(request.body.is_empty());
    assert_eq!(
        parsed.expect("verified").inbound,
        Inbound::Cancelled {
            external_order_id: id.clone(),
            reason: Some("超时未确认，系统自动取消 (1001)".into()),
        }
    );
    assert_eq!(setup.sim.order_status(&id), Some(9));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Cancelled));
    let error = push(
        &setup.adapter,
        &order,
        StatusAction::Accept { prep_minutes: 5 },
    )
    .await
    .expect_err("too late");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn platform_pushes_cancel_refund_logistics_and_completion() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample(delivery())).await;
    let id = order.order.external_order_id.clone();

    let answer = setup.sim.logistics(&id, 20).await;
    assert_eq!(answer.body, r#"{"data":"ok"}"#);
    let (first, parsed) = setup.hub.next_of("logistics").await;
    let delivery = parsed.expect("verified");
    assert_eq!(delivery.dedupe_key, format!("{id}:logistics.20"));
    assert_eq!(
        delivery.inbound,
        Inbound::Progress {
            external_order_id: id.clone(),
            action: StatusAction::PickedUp
        }
    );
    // A duplicate is the same bytes again.
    setup
        .sim
        .resend(&format!("{id}:logistics.20"))
        .await
        .expect("sent before");
    let (again, _) = setup.hub.next_of("logistics").await;
    assert_eq!(again.body, first.body);

    setup.sim.logistics(&id, 40).await;
    let (_, parsed) = setup.hub.next_of("logistics").await;
    assert_eq!(
        parsed.expect("verified").inbound,
        Inbound::Progress {
            external_order_id: id.clone(),
            action: StatusAction::Delivered
        }
    );
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Delivered));

    setup.sim.complete(&id).await.expect("known order");
    let (_, parsed) = setup.hub.next_of("completed").await;
    assert_eq!(
        parsed.expect("verified").inbound,
        Inbound::Progress {
            external_order_id: id.clone(),
            action: StatusAction::Complete
        }
    );

    setup.sim.refund(&id, "apply", "送餐超时").await;
    let (request, parsed) = setup.hub.next_of("refund").await;
    assert_eq!(request.method, Method::GET);
    assert_eq!(
        parsed.expect("verified").inbound,
        Inbound::Ignored {
            event: "refund.apply".into()
        }
    );
    setup.sim.refund(&id, "agree", "同意退款").await;
    let (_, parsed) = setup.hub.next_of("refund").await;
    assert!(matches!(
        parsed.expect("verified").inbound,
        Inbound::Cancelled { .. }
    ));

    // A cancellation of an order Meituan never pushed still reaches the hub.
    setup
        .sim
        .cancel_order("27060000000000001", "1301", "其他原因")
        .await;
    let (_, parsed) = setup.hub.next_of("cancel").await;
    assert_eq!(
        parsed.expect("verified").inbound,
        Inbound::Cancelled {
            external_order_id: "27060000000000001".into(),
            reason: Some("其他原因 (1301)".into()),
        }
    );
}

#[tokio::test]
async fn forged_and_unsigned_pushes_are_refused_in_meituans_shape() {
    let mut setup = setup().await;
    let params = vec![
        ("order_id".to_owned(), "42".to_owned()),
        ("reason_code".to_owned(), "1101".to_owned()),
    ];
    let answer = setup
        .sim
        .send_push(PushType::Cancel, Method::POST, params.clone(), false)
        .await;
    assert_eq!(answer.status, 401);
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(body["data"], "ng");
    assert_eq!(body["error"]["code"], 701, "{body}");
    let (_, parsed) = setup.hub.next().await;
    assert!(matches!(parsed, Err(ChannelError::Unauthorized(_))));

    // Signed, but for another URL than the one it is sent to.
    setup.sim.set_hub(
        setup.hub.base(),
        "https://elsewhere.example/webhooks/meituan",
    );
    let answer = setup
        .sim
        .send_push(PushType::Cancel, Method::GET, params, true)
        .await;
    assert_eq!(answer.status, 401);
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(body["error"]["code"], 703, "{body}");
}

#[tokio::test]
async fn the_control_endpoints_place_orders_and_show_calls() {
    let mut setup = setup().await;
    let http = reqwest::Client::new();
    let answer: serde_json::Value = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .json(&sample(SampleFulfillment::Pickup))
        .send()
        .await
        .expect("place")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["push_status"], 200, "{answer}");
    let id = answer["order_id"].as_str().expect("order id").to_owned();
    let order = stored(
        order_of(&setup.hub.next_of("order").await),
        Status::Received,
    );
    assert_eq!(order.order.external_order_id, id);
    push(
        &setup.adapter,
        &order,
        StatusAction::Accept { prep_minutes: 3 },
    )
    .await
    .expect("accept");
    let calls: serde_json::Value = http
        .get(format!("{}/_sim/calls", setup.sim.base_url()))
        .send()
        .await
        .expect("calls")
        .json()
        .await
        .expect("JSON");
    assert_eq!(calls.as_array().map(Vec::len), Some(2), "{calls}");
    assert_eq!(calls[1]["path"], "/api/v1/order/confirm");
    let bad = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status().as_u16(), 400);
}
