//! The adapter against its simulator, over real HTTP on loopback: signed pushes, status
//! calls with one cached OAuth token, the self-delivery calls, token revocation
//! (`UNAUTHORIZED` → refresh → retry), faults and rate limits, the accept deadline,
//! customer cancellations, courier progress, resends, pings and the `/_sim` endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::routing::any;
use chrono::Utc;
use crossdock_adapter_eleme::simulator::{
    CourierUpdate, DEFAULT_MERCHANT_USER_ID, ElemeSim, RateWindow, SimConfig,
};
use crossdock_adapter_eleme::{DEV_APP_SECRET, Eleme, ElemeConfig};
use crossdock_channel::sim::{
    Fault, SampleFulfillment, SampleItem, SampleOrder, SimServer, next_heard,
};
use crossdock_channel::{Channel, ChannelError, Inbound, InboundRequest, PushOutcome};
use crossdock_model::{
    CoordSystem, DeliveredBy, FulfillmentKind, FundedBy, NewOrder, Order, OrderId, Status,
    StatusAction, StatusChange,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

type Received = (Method, HeaderMap, Bytes);

/// A stand-in for the hub's webhook endpoint: records each request, answers Ele.me's ok.
struct Receiver {
    server: SimServer,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, received) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/webhooks/eleme",
                any(
                    |State(tx): State<mpsc::UnboundedSender<Received>>,
                     method: Method,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let _ = tx.send((method, headers, body));
                        r#"{"message":"ok"}"#
                    },
                ),
            )
            .with_state(tx);
        let server = SimServer::serve(app, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("receiver");
        Receiver { server, received }
    }

    fn url(&self) -> String {
        format!("{}/webhooks/eleme", self.server.base_url())
    }

    async fn next(&mut self) -> InboundRequest {
        let (method, headers, body) =
            tokio::time::timeout(Duration::from_secs(5), self.received.recv())
                .await
                .expect("a push within 5 s")
                .expect("receiver open");
        InboundRequest {
            method,
            event: None,
            url: self.url(),
            query: None,
            headers,
            body,
            received_at: Utc::now(),
        }
    }
}

struct Setup {
    sim: ElemeSim,
    hub: Receiver,
    adapter: Eleme,
}

async fn setup_with(config: SimConfig, adapter: ElemeConfig, secret: &str) -> Setup {
    let hub = Receiver::start().await;
    let sim = ElemeSim::start(SimConfig {
        hub_webhook_url: hub.url(),
        ..config
    })
    .await
    .expect("simulator");
    let adapter = Eleme::new(
        ElemeConfig {
            base_url: sim.base_url(),
            token_url: sim.token_url(),
            timeout_secs: 5,
            ..adapter
        },
        SecretString::from(secret.to_owned()),
        reqwest::Client::new(),
    )
    .expect("adapter");
    Setup { sim, hub, adapter }
}

async fn setup() -> Setup {
    setup_with(
        SimConfig {
            echo_accept: false,
            ..SimConfig::default()
        },
        ElemeConfig::default(),
        DEV_APP_SECRET,
    )
    .await
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

/// A delivery from SHA-001 (静安寺店), with nested and removed options, a discount and a
/// tip Ele.me cannot carry.
fn sample() -> SampleOrder {
    let mut pizza = item(
        "PZ-MARG-L",
        "玛格丽特披萨(大)",
        2,
        8800,
        vec![
            item(
                "MOD-HALF-HALF",
                "半半拼",
                1,
                0,
                vec![item("MOD-HALF-PEPP", "辣香肠(半)", 1, 400, vec![])],
            ),
            item("MOD-TOP-BASL", "罗勒", 0, 0, vec![]),
        ],
    );
    pizza.notes = Some("烤焦一点".to_owned());
    SampleOrder {
        store_ref: Some("501893201".to_owned()),
        currency: "CNY".to_owned(),
        fulfillment: SampleFulfillment::Delivery {
            lat: 31.2236,
            lng: 121.4460,
            address_lines: vec!["南京西路1788号".to_owned(), "12楼".to_owned()],
            city: "上海市".to_owned(),
            postcode: "200040".to_owned(),
            country: "CN".to_owned(),
        },
        customer_name: "李(先生)".to_owned(),
        customer_phone: Some("13812345678".to_owned()),
        items: vec![pizza, item("DR-COLA-500", "可乐(500ml)", 1, 800, vec![])],
        notes: Some("不要辣".to_owned()),
        delivery_fee_minor: 600,
        tip_minor: 500,
        discount_minor: 1000,
        scheduled_for: None,
    }
}

fn pickup() -> SampleOrder {
    SampleOrder {
        fulfillment: SampleFulfillment::Pickup,
        ..sample()
    }
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

/// Receives the next push, verifies and parses it.
async fn inbound(setup: &mut Setup) -> (String, Inbound) {
    let request = setup.hub.next().await;
    setup
        .adapter
        .verify(&request)
        .expect("signed by the simulator");
    let delivery = setup.adapter.parse(&request).expect("parses");
    (delivery.dedupe_key, delivery.inbound)
}

async fn received_order(setup: &mut Setup) -> NewOrder {
    match inbound(setup).await.1 {
        Inbound::Order(order) => *order,
        other => panic!("expected an order, got {other:?}"),
    }
}

async fn push(
    setup: &Setup,
    order: &mut Order,
    action: StatusAction,
) -> Result<PushOutcome, ChannelError> {
    let change = StatusChange {
        action: action.clone(),
        from: order.status,
        at: Utc::now(),
    };
    let result = setup.adapter.push(order, &change).await;
    if matches!(result, Ok(PushOutcome::Delivered { .. })) {
        order.status = action.target();
    }
    result
}

#[tokio::test]
async fn an_order_is_pushed_signed_and_reads_as_the_sample() {
    let mut setup = setup().await;
    let sample = sample();
    let placed = setup.sim.place_order(&sample).await;
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    assert_eq!(placed.external_order_id.len(), 19);
    let order = received_order(&mut setup).await;
    assert_eq!(order.external_order_id, placed.external_order_id);
    assert_eq!(order.channel_store_ref.as_deref(), Some("501893201"));
    assert_eq!(order.display_code.as_deref(), Some("1"));
    assert_eq!(
        order.channel_data["merchant_user_id"],
        DEFAULT_MERCHANT_USER_ID.to_string()
    );
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    let coordinates = order
        .fulfillment
        .address
        .as_ref()
        .and_then(|a| a.coordinates)
        .expect("coordinates");
    assert_eq!(coordinates.system, CoordSystem::Gcj02);
    // GCJ-02 is a few hundred metres off WGS 84 in Shanghai, and never far.
    assert!(
        (coordinates.lng - 121.4460).abs() > 0.001 && (coordinates.lng - 121.4460).abs() < 0.01
    );
    assert!((coordinates.lat - 31.2236).abs() > 0.0005 && (coordinates.lat - 31.2236).abs() < 0.01);
    assert_eq!(order.customer.name, "李(先生)");
    assert_eq!(order.customer.phone.as_deref(), Some("13812345678"));
    assert_eq!(order.notes.as_deref(), Some("不要辣"));

    // Options are folded into the price and flattened.
    let pizza = &order.lines[0];
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!(pizza.quantity, 2);
    assert_eq!(pizza.unit_price.minor, 9200);
    assert_eq!(pizza.total.minor, 18400);
    let options: Vec<(&str, &str)> = pizza
        .modifiers
        .iter()
        .map(|m| (m.group.as_deref().unwrap_or(""), m.name.as_str()))
        .collect();
    assert_eq!(
        options,
        vec![
            ("选项", "半半拼"),
            ("选项", "半半拼 / 辣香肠(半)"),
            ("去除", "罗勒"),
            ("备注", "烤焦一点"),
        ]
    );
    let totals = &order.totals;
    assert_eq!(totals.subtotal.minor, sample.subtotal_minor());
    assert_eq!(totals.fees.delivery.minor, 600);
    assert_eq!(totals.tip.minor, 0, "Ele.me has no tip");
    assert_eq!(totals.total.minor, sample.subtotal_minor() - 1000 + 600);
    assert_eq!(totals.discounts.len(), 1);
    assert_eq!(totals.discounts[0].amount.minor, 1000);
    assert_eq!(totals.discounts[0].funded_by, FundedBy::Platform);
    assert_eq!(order.check(), Ok(vec![]), "the simulator's money adds up");
    setup.sim.stop().await;
}

#[tokio::test]
async fn accept_ready_and_reject_round_trip_with_one_cached_token() {
    let mut setup = setup_with(SimConfig::default(), ElemeConfig::default(), DEV_APP_SECRET).await;
    let placed = setup.sim.place_order(&pickup()).await;
    let order = received_order(&mut setup).await;
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    let mut order = stored(order, Status::Received);
    let mut feed = setup.sim.status_feed().subscribe();
    let id = placed.external_order_id.clone();

    let accepted = push(
        &setup,
        &mut order,
        StatusAction::Accept { prep_minutes: 12 },
    )
    .await
    .expect("accept");
    assert_eq!(
        accepted,
        PushOutcome::Delivered {
            detail: "eleme.order.confirmOrderLite answered ok".to_owned()
        }
    );
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Accepted)
    );
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (id.clone(), Status::Accepted)
    );
    // Ele.me echoes the confirmation (type 12): noted, not acted on.
    assert_eq!(
        inbound(&mut setup).await.1,
        Inbound::Ignored {
            event: "eleme.12.merchant_accepted".to_owned()
        }
    );
    // Preparing has no call and changes nothing on Ele.me.
    let skipped = push(&setup, &mut order, StatusAction::Preparing)
        .await
        .expect("preparing");
    assert!(matches!(skipped, PushOutcome::NotApplicable { .. }));
    push(&setup, &mut order, StatusAction::Ready)
        .await
        .expect("ready");
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Ready)
    );
    // Completing a pickup has no call either.
    let complete = push(&setup, &mut order, StatusAction::Complete)
        .await
        .expect("complete");
    assert!(matches!(complete, PushOutcome::NotApplicable { .. }));
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Ready)
    );

    // The store cancels after all: `cancelOrderLite` on a confirmed order.
    push(
        &setup,
        &mut order,
        StatusAction::Cancel {
            reason: "kitchen too busy".to_owned(),
        },
    )
    .await
    .expect("cancel");
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Cancelled)
    );
    assert_eq!(
        setup.sim.cancellation(&placed.external_order_id),
        Some((
            "restaurantTooBusy".to_owned(),
            "kitchen too busy".to_owned()
        ))
    );

    let second = setup.sim.place_order(&sample()).await;
    let mut rejected = stored(received_order(&mut setup).await, Status::Received);
    push(
        &setup,
        &mut rejected,
        StatusAction::Reject {
            reason: "可乐售罄".to_owned(),
        },
    )
    .await
    .expect("reject");
    assert_eq!(
        setup.sim.order_status(&second.external_order_id),
        Some(Status::Rejected)
    );
    assert_eq!(
        setup.sim.cancellation(&second.external_order_id),
        Some(("foodSoldOut".to_owned(), "可乐售罄".to_owned()))
    );
    // A repeat of the same push is harmless.
    let again = setup
        .adapter
        .push(
            &rejected,
            &StatusChange {
                action: StatusAction::Reject {
                    reason: "可乐售罄".to_owned(),
                },
                from: Status::Received,
                at: Utc::now(),
            },
        )
        .await;
    assert!(again.is_ok(), "{again:?}");
    // Ele.me heard each change once, in order; the repeat changed nothing.
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (id.clone(), Status::Ready)
    );
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (id, Status::Cancelled)
    );
    assert_eq!(
        next_heard(&mut feed)
            .await
            .expect("a status heard in time")
            .into_order_status(),
        (second.external_order_id.clone(), Status::Rejected)
    );
    assert!(feed.try_recv().is_err(), "nothing else heard");

    assert_eq!(setup.sim.token_requests(), 1, "one token for every call");
    let calls = setup.sim.calls().all();
    let actions: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "/api/v1/#eleme.order.confirmOrderLite",
            "/api/v1/#eleme.order.setOrderPrepared",
            "/api/v1/#eleme.order.cancelOrderLite",
            "/api/v1/#eleme.order.cancelOrderLite",
            "/api/v1/#eleme.order.cancelOrderLite",
        ]
    );
    assert!(
        calls
            .iter()
            .all(|c| c.answered == 200 && c.body["token"] == "<redacted>")
    );
    assert_eq!(
        calls[0].body["params"]["orderId"],
        placed.external_order_id.as_str()
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_store_that_delivers_reports_pickup_and_delivery() {
    let mut setup = setup_with(
        SimConfig {
            echo_accept: false,
            ..SimConfig::default()
        },
        ElemeConfig {
            self_delivery_shops: vec!["501893201".to_owned()],
            ..ElemeConfig::default()
        },
        DEV_APP_SECRET,
    )
    .await;
    let placed = setup.sim.place_order(&sample()).await;
    let order = received_order(&mut setup).await;
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let mut order = stored(order, Status::Received);
    push(
        &setup,
        &mut order,
        StatusAction::Accept { prep_minutes: 10 },
    )
    .await
    .expect("accept");
    let ready = push(&setup, &mut order, StatusAction::Ready)
        .await
        .expect("ready");
    assert!(matches!(ready, PushOutcome::NotApplicable { .. }));
    push(&setup, &mut order, StatusAction::PickedUp)
        .await
        .expect("picked up");
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::PickedUp)
    );
    push(&setup, &mut order, StatusAction::Delivered)
        .await
        .expect("delivered");
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Delivered)
    );
    assert_eq!(setup.sim.calls().matching("deliveryBySelfLite").len(), 1);
    assert_eq!(setup.sim.calls().matching("receivedOrderLite").len(), 1);
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_call_retried() {
    let mut setup = setup().await;
    let placed = setup.sim.place_order(&sample()).await;
    let mut order = stored(received_order(&mut setup).await, Status::Received);
    // A first call caches a token; then Ele.me forgets every token.
    let mut ghost = order.clone();
    ghost.order.external_order_id = "3000000000000000009".to_owned();
    let missing = push(&setup, &mut ghost, StatusAction::Ready).await;
    assert!(
        matches!(&missing, Err(ChannelError::Platform { status: 409, body }) if body.starts_with("BIZ_ORDER_NOT_FOUND")),
        "{missing:?}"
    );
    assert!(!missing.as_ref().expect_err("failed").is_retryable());
    setup.sim.revoke_tokens();
    push(
        &setup,
        &mut order,
        StatusAction::Accept { prep_minutes: 10 },
    )
    .await
    .expect("accepted after a refresh");
    assert_eq!(setup.sim.token_requests(), 2);
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Accepted)
    );
    let answered: Vec<u16> = setup.sim.calls().all().iter().map(|c| c.answered).collect();
    assert_eq!(
        answered,
        vec![200, 200, 200],
        "missing order, refused token, accepted"
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn faults_and_limits_become_typed_errors() {
    let mut setup = setup().await;
    setup.sim.place_order(&sample()).await;
    let mut order = stored(received_order(&mut setup).await, Status::Received);
    let accept = StatusAction::Accept { prep_minutes: 10 };

    setup.sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(7),
            delay: None,
        },
        1,
    );
    let error = push(&setup, &mut order, accept.clone())
        .await
        .expect_err("429");
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );

    setup.sim.faults().push(
        Fault {
            status: Some(500),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = push(&setup, &mut order, accept.clone())
        .await
        .expect_err("500");
    assert!(
        matches!(error, ChannelError::Platform { status: 500, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());

    setup.sim.set_rate_limit(Some(RateWindow {
        calls: 0,
        window: Duration::from_secs(60),
    }));
    let error = push(&setup, &mut order, accept.clone())
        .await
        .expect_err("exceeded");
    assert_eq!(error, ChannelError::RateLimited { retry_after: None });
    assert!(error.is_retryable());
    setup.sim.set_rate_limit(None);

    setup.sim.faults().push(
        Fault {
            status: None,
            retry_after_s: None,
            delay: Some(Duration::from_secs(7)),
        },
        1,
    );
    let error = push(&setup, &mut order, accept.clone())
        .await
        .expect_err("slow");
    assert!(matches!(error, ChannelError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());

    push(&setup, &mut order, accept).await.expect("works again");
    setup.sim.stop().await;
}

#[tokio::test]
async fn wrong_app_credentials_are_a_permanent_error() {
    let mut setup = setup_with(
        SimConfig {
            echo_accept: false,
            ..SimConfig::default()
        },
        ElemeConfig::default(),
        "not-the-secret",
    )
    .await;
    setup.sim.place_order(&sample()).await;
    let request = setup.hub.next().await;
    assert!(
        matches!(
            setup.adapter.verify(&request),
            Err(ChannelError::Unauthorized(_))
        ),
        "a push signed with another secret is refused"
    );
    let order = {
        let dev = Eleme::new(
            ElemeConfig::default(),
            SecretString::from(DEV_APP_SECRET),
            reqwest::Client::new(),
        )
        .expect("adapter");
        match dev.parse(&request).expect("parses").inbound {
            Inbound::Order(order) => *order,
            other => panic!("{other:?}"),
        }
    };
    let mut order = stored(order, Status::Received);
    let error = push(&setup, &mut order, StatusAction::Accept { prep_minutes: 5 })
        .await
        .expect_err("refused credentials");
    assert!(
        matches!(error, ChannelError::Platform { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    setup.sim.stop().await;
}

#[tokio::test]
async fn an_unconfirmed_order_is_invalidated_at_the_deadline() {
    let mut setup = setup_with(
        SimConfig {
            accept_deadline: Duration::from_millis(300),
            echo_accept: false,
            ..SimConfig::default()
        },
        ElemeConfig::default(),
        DEV_APP_SECRET,
    )
    .await;
    let placed = setup.sim.place_order(&sample()).await;
    let mut order = stored(received_order(&mut setup).await, Status::Received);
    let (_, cancelled) = inbound(&mut setup).await;
    assert_eq!(
        cancelled,
        Inbound::Cancelled {
            external_order_id: placed.external_order_id.clone(),
            reason: Some(
                "Ele.me: cancelled before acceptance (type 14, by the Ele.me system)".to_owned()
            ),
        }
    );
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Cancelled)
    );
    let late = push(&setup, &mut order, StatusAction::Accept { prep_minutes: 5 })
        .await
        .expect_err("too late");
    assert!(
        matches!(&late, ChannelError::Platform { status: 409, body } if body.starts_with("BIZ_ORDER_STATUS_ERROR")),
        "{late:?}"
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_customer_cancels_before_and_after_acceptance() {
    let mut setup = setup().await;
    let first = setup.sim.place_order(&sample()).await;
    received_order(&mut setup).await;
    assert_eq!(
        setup
            .sim
            .cancel_order(&first.external_order_id)
            .await
            .status,
        200
    );
    let (_, cancelled) = inbound(&mut setup).await;
    assert!(
        matches!(&cancelled, Inbound::Cancelled { external_order_id, reason: Some(reason) }
            if *external_order_id == first.external_order_id && reason.contains("by the customer")),
        "{cancelled:?}"
    );

    let second = setup.sim.place_order(&sample()).await;
    let mut order = stored(received_order(&mut setup).await, Status::Received);
    push(&setup, &mut order, StatusAction::Accept { prep_minutes: 5 })
        .await
        .expect("accept");
    assert_eq!(
        setup
            .sim
            .cancel_order(&second.external_order_id)
            .await
            .status,
        200
    );
    assert_eq!(
        inbound(&mut setup).await.1,
        Inbound::Ignored {
            event: "eleme.20.cancel_requested".to_owned()
        }
    );
    let (_, agreed) = inbound(&mut setup).await;
    assert!(
        matches!(&agreed, Inbound::Cancelled { external_order_id, reason: Some(reason) }
            if *external_order_id == second.external_order_id && reason.contains("type 23")),
        "{agreed:?}"
    );
    assert_eq!(
        setup.sim.order_status(&second.external_order_id),
        Some(Status::Cancelled)
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn courier_progress_and_settlement_reach_the_hub() {
    let mut setup = setup().await;
    let placed = setup.sim.place_order(&sample()).await;
    let mut order = stored(received_order(&mut setup).await, Status::Received);
    push(&setup, &mut order, StatusAction::Accept { prep_minutes: 5 })
        .await
        .expect("accept");
    let id = placed.external_order_id.as_str();
    setup.sim.courier_update(id, CourierUpdate::PickedUp).await;
    assert_eq!(
        inbound(&mut setup).await.1,
        Inbound::Progress {
            external_order_id: id.to_owned(),
            action: StatusAction::PickedUp
        }
    );
    setup.sim.courier_update(id, CourierUpdate::Delivered).await;
    assert_eq!(
        inbound(&mut setup).await.1,
        Inbound::Progress {
            external_order_id: id.to_owned(),
            action: StatusAction::Delivered
        }
    );
    assert_eq!(setup.sim.order_status(id), Some(Status::Delivered));
    setup.sim.settle(id).await;
    assert_eq!(
        inbound(&mut setup).await.1,
        Inbound::Ignored {
            event: "eleme.18.completed".to_owned()
        }
    );
    assert_eq!(setup.sim.order_status(id), Some(Status::Completed));
    setup.sim.stop().await;
}

#[tokio::test]
async fn resends_are_byte_identical_and_pings_are_answered() {
    let mut setup = setup().await;
    let placed = setup.sim.place_order(&sample()).await;
    let first = setup.hub.next().await;
    let answer = setup
        .sim
        .resend(&placed.request_id)
        .await
        .expect("known request");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, r#"{"message":"ok"}"#);
    let again = setup.hub.next().await;
    assert_eq!(first.body, again.body);
    let key = |request: &InboundRequest| setup.adapter.parse(request).expect("parses").dedupe_key;
    assert_eq!(key(&first), placed.request_id);
    assert_eq!(key(&again), placed.request_id);
    assert!(setup.sim.resend("nope").await.is_none());

    let ping = setup.sim.ping().await;
    assert_eq!(ping.status, 200);
    let request = setup.hub.next().await;
    assert_eq!(request.method, Method::GET);
    assert!(request.body.is_empty());
    setup
        .adapter
        .verify(&request)
        .expect("a ping needs no signature");
    assert_eq!(
        setup.adapter.parse(&request).expect("ping").inbound,
        Inbound::Ignored {
            event: "eleme.ping".to_owned()
        }
    );

    let forged = setup
        .sim
        .send_raw(br#"{"requestId":"1","type":10}"#.to_vec())
        .await;
    assert_eq!(forged.status, 200, "the stand-in answers everything");
    let request = setup.hub.next().await;
    assert!(matches!(
        setup.adapter.verify(&request),
        Err(ChannelError::Unauthorized(_))
    ));
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_control_endpoints_place_show_and_cancel_orders() {
    let mut setup = setup().await;
    let http = reqwest::Client::new();
    let placed: serde_json::Value = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .json(&sample())
        .send()
        .await
        .expect("place")
        .json()
        .await
        .expect("json");
    assert_eq!(placed["webhook_status"], 200);
    let id = placed["external_order_id"].as_str().expect("id").to_owned();
    received_order(&mut setup).await;
    let shown: serde_json::Value = http
        .get(format!("{}/_sim/orders/{id}", setup.sim.base_url()))
        .send()
        .await
        .expect("show")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["status"], "unprocessed");
    assert_eq!(shown["unified_status"], "received");
    assert_eq!(shown["order"]["id"], id.as_str());
    let cancelled: serde_json::Value = http
        .post(format!("{}/_sim/orders/{id}/cancel", setup.sim.base_url()))
        .send()
        .await
        .expect("cancel")
        .json()
        .await
        .expect("json");
    assert_eq!(cancelled["webhook_status"], 200);
    assert!(matches!(
        inbound(&mut setup).await.1,
        Inbound::Cancelled { .. }
    ));
    let bad = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .body("{}")
        .send()
        .await
        .expect("place");
    assert_eq!(bad.status(), 400);
    let calls: serde_json::Value = http
        .get(format!("{}/_sim/calls", setup.sim.base_url()))
        .send()
        .await
        .expect("calls")
        .json()
        .await
        .expect("json");
    assert_eq!(calls, serde_json::json!([]));
    setup.sim.stop().await;
}
